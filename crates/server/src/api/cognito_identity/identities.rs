//! Identities: the unsigned calls the Mobile SDKs start with (GetId, GetCredentialsForIdentity,
//! GetOpenIdToken) and the developer's view of them (ListIdentities, DescribeIdentity,
//! DeleteIdentities).

use super::error::from_core;
use super::types::{
    DeleteIdentitiesInput, GetIdInput, IdentityInput, ListInput, credentials, encoded, identity_description, input,
    next_token,
};
use crate::api::aws::error::AwsResult;
use ferrosync_core::Engine;
use ferrosync_core::auth::Principal;
use serde_json::{Map, Value, json};

pub async fn get_id(engine: &Engine, body: Value) -> AwsResult<Value> {
    let req: GetIdInput = input(body)?;
    let identity_id = engine.get_id(&req.identity_pool_id, &req.logins).await.map_err(from_core)?;
    Ok(json!({ "IdentityId": identity_id }))
}

pub async fn get_credentials(engine: &Engine, body: Value) -> AwsResult<Value> {
    let req: IdentityInput = input(body)?;
    let issued = engine.credentials_for_identity(&req.identity_id, &req.logins).await.map_err(from_core)?;
    Ok(credentials(&issued))
}

pub async fn get_open_id_token(engine: &Engine, body: Value) -> AwsResult<Value> {
    let req: IdentityInput = input(body)?;
    let token = engine.open_id_token(&req.identity_id, &req.logins).await.map_err(from_core)?;
    Ok(json!({ "IdentityId": token.identity_id, "Token": token.token }))
}

pub async fn list(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let req: ListInput = input(body)?;
    let pool_id = req.identity_pool_id.unwrap_or_default();
    let page = engine
        .cognito_identities(p, &pool_id, req.max_results, req.next_token.as_deref(), req.hide_disabled)
        .await
        .map_err(from_core)?;
    let mut out = Map::new();
    out.insert("IdentityPoolId".into(), json!(pool_id));
    out.insert("Identities".into(), Value::Array(page.items.iter().map(identity_description).collect()));
    next_token(&mut out, encoded(page.next));
    Ok(Value::Object(out))
}

pub async fn describe(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let req: IdentityInput = input(body)?;
    let identity = engine.cognito_identity(p, &req.identity_id).await.map_err(from_core)?;
    Ok(identity_description(&identity))
}

pub async fn delete(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let req: DeleteIdentitiesInput = input(body)?;
    let unprocessed = engine.delete_identities(p, &req.identity_ids_to_delete).await.map_err(from_core)?;
    let unprocessed: Vec<Value> =
        unprocessed.iter().map(|u| json!({"IdentityId": u.identity_id, "ErrorCode": u.error_code})).collect();
    Ok(json!({ "UnprocessedIdentityIds": unprocessed }))
}
