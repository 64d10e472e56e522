//! Developer-authenticated identities: GetOpenIdTokenForDeveloperIdentity, LookupDeveloperIdentity,
//! MergeDeveloperIdentities, UnlinkDeveloperIdentity (developer credentials).

use super::error::from_core;
use super::types::{DeveloperTokenInput, LookupInput, MergeInput, UnlinkInput, input, next_token};
use crate::api::aws::error::AwsResult;
use ferrosync_core::Engine;
use ferrosync_core::auth::Principal;
use serde_json::{Map, Value, json};

pub async fn open_id_token(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let req: DeveloperTokenInput = input(body)?;
    let token = engine
        .open_id_token_for_developer_identity(
            p,
            &req.identity_pool_id,
            req.identity_id.as_deref(),
            &req.logins,
            req.token_duration,
        )
        .await
        .map_err(from_core)?;
    Ok(json!({ "IdentityId": token.identity_id, "Token": token.token }))
}

pub async fn lookup(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let req: LookupInput = input(body)?;
    let found = engine
        .lookup_developer_identity(
            p,
            &req.identity_pool_id,
            req.identity_id.as_deref(),
            req.developer_user_identifier.as_deref(),
            req.max_results,
            req.next_token.as_deref(),
        )
        .await
        .map_err(from_core)?;
    let mut out = Map::new();
    out.insert("IdentityId".into(), json!(found.identity_id));
    out.insert("DeveloperUserIdentifierList".into(), json!(found.developer_user_identifiers));
    next_token(&mut out, found.next_token);
    Ok(Value::Object(out))
}

pub async fn merge(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let req: MergeInput = input(body)?;
    let identity_id = engine
        .merge_developer_identities(
            p,
            &req.identity_pool_id,
            &req.developer_provider_name,
            &req.source_user_identifier,
            &req.destination_user_identifier,
        )
        .await
        .map_err(from_core)?;
    Ok(json!({ "IdentityId": identity_id }))
}

pub async fn unlink(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let req: UnlinkInput = input(body)?;
    engine
        .unlink_developer_identity(
            p,
            &req.identity_pool_id,
            &req.identity_id,
            &req.developer_provider_name,
            &req.developer_user_identifier,
        )
        .await
        .map_err(from_core)?;
    Ok(json!({}))
}
