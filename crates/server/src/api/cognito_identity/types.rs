//! The model's input shapes as read from a validated body, and its output shapes as written:
//! member names exactly as the model spells them, dates as epoch seconds.

use super::error::serialization;
use crate::api::aws::error::AwsResult;
use ferrosync_core::Timestamp;
use ferrosync_core::cognito::{CognitoIdentity, CognitoIdentityProvider, IdentityPool, IdentityPoolSpec};
use ferrosync_core::engine::IdentityCredentials;
use ferrosync_core::page::PageToken;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Reads an operation's input from a body the model has validated. Members sent as `null` count
/// as absent, as the validator took them.
pub fn input<T: DeserializeOwned>(body: Value) -> AwsResult<T> {
    let body = match body {
        Value::Object(members) => Value::Object(members.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    };
    serde_json::from_value(body).map_err(|e| serialization(e.to_string()))
}

/// awsJson timestamps: epoch seconds, fractional to the millisecond.
pub fn epoch_seconds(t: Timestamp) -> Value {
    serde_json::Number::from_f64(t.0 as f64 / 1000.0).map_or(Value::Null, Value::Number)
}

/// A page's `NextToken` member, when there is a next page.
pub fn next_token(out: &mut Map<String, Value>, next: Option<String>) {
    if let Some(token) = next {
        out.insert("NextToken".into(), Value::String(token));
    }
}

pub fn encoded(next: Option<PageToken>) -> Option<String> {
    next.map(|t| t.encode())
}

// ----- inputs ---------------------------------------------------------------------------------

/// CreateIdentityPoolInput, and the `IdentityPool` UpdateIdentityPool takes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PoolInput {
    #[serde(default)]
    pub identity_pool_id: Option<String>,
    pub identity_pool_name: String,
    pub allow_unauthenticated_identities: bool,
    #[serde(default)]
    pub allow_classic_flow: Option<bool>,
    #[serde(default)]
    pub supported_login_providers: BTreeMap<String, String>,
    #[serde(default)]
    pub developer_provider_name: Option<String>,
    #[serde(default, rename = "OpenIdConnectProviderARNs")]
    pub open_id_connect_provider_arns: Vec<String>,
    #[serde(default)]
    pub cognito_identity_providers: Vec<ProviderInput>,
    #[serde(default, rename = "SamlProviderARNs")]
    pub saml_provider_arns: Vec<String>,
    #[serde(default)]
    pub identity_pool_tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProviderInput {
    #[serde(default)]
    pub provider_name: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub server_side_token_check: bool,
}

impl PoolInput {
    pub fn into_spec(self) -> IdentityPoolSpec {
        IdentityPoolSpec {
            name: self.identity_pool_name,
            allow_unauthenticated_identities: self.allow_unauthenticated_identities,
            allow_classic_flow: self.allow_classic_flow,
            supported_login_providers: self.supported_login_providers,
            developer_provider_name: self.developer_provider_name,
            open_id_connect_provider_arns: self.open_id_connect_provider_arns,
            cognito_identity_providers: self
                .cognito_identity_providers
                .into_iter()
                .map(|p| CognitoIdentityProvider {
                    provider_name: p.provider_name,
                    client_id: p.client_id,
                    server_side_token_check: p.server_side_token_check,
                })
                .collect(),
            saml_provider_arns: self.saml_provider_arns,
            tags: self.identity_pool_tags,
        }
    }
}

/// Inputs naming a pool only: DescribeIdentityPool, DeleteIdentityPool.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PoolIdInput {
    pub identity_pool_id: String,
}

/// ListIdentityPools, ListIdentities.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    #[serde(default)]
    pub identity_pool_id: Option<String>,
    pub max_results: u32,
    #[serde(default)]
    pub next_token: Option<String>,
    #[serde(default)]
    pub hide_disabled: bool,
}

/// GetId (`AccountId` is accepted and ignored: there is one account).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetIdInput {
    pub identity_pool_id: String,
    #[serde(default)]
    pub logins: BTreeMap<String, String>,
}

/// GetCredentialsForIdentity (`CustomRoleArn` is accepted and ignored: there are no IAM roles),
/// GetOpenIdToken, DescribeIdentity.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IdentityInput {
    pub identity_id: String,
    #[serde(default)]
    pub logins: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteIdentitiesInput {
    pub identity_ids_to_delete: Vec<String>,
}

/// GetOpenIdTokenForDeveloperIdentity (`PrincipalTags` are accepted and ignored: they only feed
/// IAM session tags).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeveloperTokenInput {
    pub identity_pool_id: String,
    #[serde(default)]
    pub identity_id: Option<String>,
    pub logins: BTreeMap<String, String>,
    #[serde(default)]
    pub token_duration: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupInput {
    pub identity_pool_id: String,
    #[serde(default)]
    pub identity_id: Option<String>,
    #[serde(default)]
    pub developer_user_identifier: Option<String>,
    #[serde(default)]
    pub max_results: Option<u32>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MergeInput {
    pub identity_pool_id: String,
    pub developer_provider_name: String,
    pub source_user_identifier: String,
    pub destination_user_identifier: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnlinkInput {
    pub identity_pool_id: String,
    pub identity_id: String,
    pub developer_provider_name: String,
    pub developer_user_identifier: String,
}

// ----- outputs --------------------------------------------------------------------------------

/// The model's `IdentityPool`. Collections are always present (empty when unset), as AWS sends
/// them; optional scalars only when set.
pub fn identity_pool(pool: &IdentityPool) -> Value {
    let spec = &pool.spec;
    let providers: Vec<Value> = spec
        .cognito_identity_providers
        .iter()
        .map(|p| {
            json!({
                "ProviderName": p.provider_name,
                "ClientId": p.client_id,
                "ServerSideTokenCheck": p.server_side_token_check,
            })
        })
        .collect();
    let mut out = Map::new();
    out.insert("IdentityPoolId".into(), json!(pool.id));
    out.insert("IdentityPoolName".into(), json!(spec.name));
    out.insert("AllowUnauthenticatedIdentities".into(), json!(spec.allow_unauthenticated_identities));
    if let Some(classic) = spec.allow_classic_flow {
        out.insert("AllowClassicFlow".into(), json!(classic));
    }
    out.insert("SupportedLoginProviders".into(), json!(spec.supported_login_providers));
    if let Some(dp) = &spec.developer_provider_name {
        out.insert("DeveloperProviderName".into(), json!(dp));
    }
    out.insert("OpenIdConnectProviderARNs".into(), json!(spec.open_id_connect_provider_arns));
    out.insert("CognitoIdentityProviders".into(), Value::Array(providers));
    out.insert("SamlProviderARNs".into(), json!(spec.saml_provider_arns));
    out.insert("IdentityPoolTags".into(), json!(spec.tags));
    Value::Object(out)
}

/// The model's `IdentityDescription`: `Logins` names the providers, never the users.
pub fn identity_description(identity: &CognitoIdentity) -> Value {
    let mut providers: Vec<&str> = identity.logins.iter().map(|l| l.provider.as_str()).collect();
    providers.sort_unstable();
    providers.dedup();
    json!({
        "IdentityId": identity.id,
        "Logins": providers,
        "CreationDate": epoch_seconds(identity.date_created),
        "LastModifiedDate": epoch_seconds(identity.date_updated),
    })
}

/// GetCredentialsForIdentityResponse.
pub fn credentials(c: &IdentityCredentials) -> Value {
    json!({
        "IdentityId": c.identity_id,
        "Credentials": {
            "AccessKeyId": c.access_key_id,
            "SecretKey": c.secret_key,
            "SessionToken": c.session_token,
            "Expiration": epoch_seconds(c.expiration),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_epoch_seconds_numbers() {
        assert_eq!(epoch_seconds(Timestamp(1_700_000_000_500)), json!(1_700_000_000.5));
        assert!(epoch_seconds(Timestamp(1_700_000_000_000)).is_number());
    }

    #[test]
    fn null_members_read_as_absent() {
        let read: GetIdInput = input(json!({"IdentityPoolId": "us-east-1:1", "Logins": null})).expect("reads");
        assert!(read.logins.is_empty());
        let e = input::<GetIdInput>(json!({"Logins": {}})).expect_err("no pool id");
        assert_eq!(e.code, "SerializationException");
    }

    #[test]
    fn pools_render_every_member_the_model_names() {
        let input: PoolInput = input(json!({
            "IdentityPoolName": "p",
            "AllowUnauthenticatedIdentities": true,
            "OpenIdConnectProviderARNs": ["arn:aws:iam::1:oidc-provider/example.com"],
            "SamlProviderARNs": [],
        }))
        .expect("reads");
        let spec = input.into_spec();
        assert_eq!(spec.open_id_connect_provider_arns.len(), 1);
        let pool = IdentityPool {
            id: "us-east-1:1".into(),
            service_sid: ferrosync_core::Sid::new(ferrosync_core::SidKind::Service),
            spec,
            sync: Default::default(),
            date_created: Timestamp(0),
            date_updated: Timestamp(0),
        };
        let view = identity_pool(&pool);
        assert_eq!(view["OpenIdConnectProviderARNs"][0], "arn:aws:iam::1:oidc-provider/example.com");
        assert!(view.get("DeveloperProviderName").is_none());
        assert_eq!(view["IdentityPoolTags"], json!({}));
    }
}
