//! Tags of identity pools (ListTagsForResource, TagResource, UntagResource): the pool's
//! `IdentityPoolTags`, addressed by the pool's ARN.

use super::error::{from_core, modeled};
use super::types::input;
use crate::api::aws::error::AwsResult;
use ferrosync_core::Engine;
use ferrosync_core::auth::Principal;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagsInput {
    resource_arn: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

/// The pool id of `arn:<partition>:cognito-identity:<region>:<account>:identitypool/<id>`.
fn pool_id(arn: &str) -> AwsResult<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "cognito-identity", _, _, resource] => match resource.strip_prefix("identitypool/") {
            Some(id) if !id.is_empty() => Ok(id),
            _ => Err(invalid_arn(arn)),
        },
        _ => Err(invalid_arn(arn)),
    }
}

fn invalid_arn(arn: &str) -> crate::api::aws::error::AwsError {
    modeled("InvalidParameterException", format!("'{arn}' is not the ARN of an identity pool."))
}

pub async fn list(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let req: TagsInput = input(body)?;
    let pool = engine.identity_pool(p, pool_id(&req.resource_arn)?).await.map_err(from_core)?;
    Ok(json!({ "Tags": pool.spec.tags }))
}

/// Read, change, write: two concurrent tag changes of one pool may lose one, which tagging
/// tolerates (the last write wins, as with UpdateIdentityPool).
pub async fn tag(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let req: TagsInput = input(body)?;
    let id = pool_id(&req.resource_arn)?;
    let mut spec = engine.identity_pool(p, id).await.map_err(from_core)?.spec;
    spec.tags.extend(req.tags);
    engine.update_identity_pool(p, id, spec).await.map_err(from_core)?;
    Ok(json!({}))
}

pub async fn untag(engine: &Engine, p: &Principal, body: Value) -> AwsResult<Value> {
    let req: TagsInput = input(body)?;
    let id = pool_id(&req.resource_arn)?;
    let mut spec = engine.identity_pool(p, id).await.map_err(from_core)?.spec;
    for key in &req.tag_keys {
        spec.tags.remove(key);
    }
    engine.update_identity_pool(p, id, spec).await.map_err(from_core)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_arns_name_the_pool() {
        let arn = "arn:aws:cognito-identity:us-east-1:123456789012:identitypool/us-east-1:abc-1";
        assert_eq!(pool_id(arn).expect("an identity pool"), "us-east-1:abc-1");
        for bad in ["arn:aws:s3:::bucket", "arn:aws:cognito-identity:us-east-1:1:identitypool/", "identitypool/x"] {
            assert_eq!(pool_id(bad).expect_err(bad).code, "InvalidParameterException");
        }
    }
}
