//! Identity pools: Create, Describe, List, Update, Delete (developer credentials).

use super::error::from_core;
use super::types::{PoolIdInput, PoolInput, encoded, identity_pool, input, next_token};
use crate::api::aws::error::AwsResult;
use ferrosync_core::Engine;
use ferrosync_core::auth::Principal;
use serde_json::{Map, Value, json};

pub async fn create(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let spec = input::<PoolInput>(body)?.into_spec();
    let pool = engine.create_identity_pool(p, spec).await.map_err(from_core)?;
    Ok(identity_pool(&pool))
}

pub async fn describe(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let PoolIdInput { identity_pool_id } = input(body)?;
    let pool = engine.identity_pool(p, &identity_pool_id).await.map_err(from_core)?;
    Ok(identity_pool(&pool))
}

pub async fn list(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let req: super::types::ListInput = input(body)?;
    let page = engine.identity_pools(p, req.max_results, req.next_token.as_deref()).await.map_err(from_core)?;
    let pools: Vec<Value> =
        page.items.iter().map(|pool| json!({"IdentityPoolId": pool.id, "IdentityPoolName": pool.spec.name})).collect();
    let mut out = Map::new();
    out.insert("IdentityPools".into(), Value::Array(pools));
    next_token(&mut out, encoded(page.next));
    Ok(Value::Object(out))
}

/// The input is a whole `IdentityPool`: what it leaves out is reset, as AWS does.
pub async fn update(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let req: PoolInput = input(body)?;
    let pool_id = req.identity_pool_id.clone().unwrap_or_default();
    let pool = engine.update_identity_pool(p, &pool_id, req.into_spec()).await.map_err(from_core)?;
    Ok(identity_pool(&pool))
}

pub async fn delete(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let PoolIdInput { identity_pool_id } = input(body)?;
    engine.delete_identity_pool(p, &identity_pool_id).await.map_err(from_core)?;
    Ok(json!({}))
}
