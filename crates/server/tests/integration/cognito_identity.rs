//! The Cognito Identity face driven by the official `aws-sdk-cognitoidentity`: every supported
//! operation, the unsigned Mobile-SDK calls, developer-authenticated identities, temporary
//! credentials the engine accepts as signing keys, OpenID tokens checked against the served
//! JWKS, and signing and validation failures in AWS's words.

use super::common::TestServer;
use aws_sdk_cognitoidentity as ci;
use ci::config::{BehaviorVersion, Credentials, Region};
use ci::error::ProvideErrorMetadata;
use ferrosync_core::auth::Principal;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

const FACEBOOK: &str = "graph.facebook.com";
const DEVELOPER: &str = "login.example.app";

fn config(s: &TestServer) -> ci::config::Builder {
    ci::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(s.server.url())
        // A refused call must fail once, not be retried.
        .retry_config(ci::config::retry::RetryConfig::disabled())
}

/// A client signing with `access_key_id` / `secret` (and a session token for temporary
/// credentials).
fn client_with(s: &TestServer, access_key_id: &str, secret: &str, token: Option<String>) -> ci::Client {
    let credentials = Credentials::new(access_key_id, secret, token, None, "test");
    ci::Client::from_conf(config(s).credentials_provider(credentials).build())
}

/// Developer credentials: the account's SID and auth token.
fn developer(s: &TestServer) -> ci::Client {
    client_with(s, &s.account_sid, &s.auth_token, None)
}

/// No credentials at all, as a Mobile SDK starts: only the unsigned operations work.
fn anonymous(s: &TestServer) -> ci::Client {
    ci::Client::from_conf(config(s).build())
}

/// The error code and message of a failed call.
fn refusal<E: ProvideErrorMetadata + std::fmt::Debug, T: std::fmt::Debug>(result: Result<T, E>) -> (String, String) {
    let error = result.expect_err("the call is refused");
    let code = error.code().unwrap_or_else(|| panic!("no error code: {error:?}")).to_owned();
    (code, error.message().unwrap_or_default().to_owned())
}

async fn pool(c: &ci::Client, name: &str, unauthenticated: bool) -> String {
    let created = c
        .create_identity_pool()
        .identity_pool_name(name)
        .allow_unauthenticated_identities(unauthenticated)
        .supported_login_providers(FACEBOOK, "1234567890")
        .developer_provider_name(DEVELOPER)
        .send()
        .await
        .unwrap();
    created.identity_pool_id().to_owned()
}

/// A raw awsJson request; `signed_at` signs it with the developer credentials at that time.
async fn raw(s: &TestServer, target: &str, content_type: &str, body: &str, signed_at: Option<SystemTime>) -> RawResp {
    let url = format!("{}/", s.server.url());
    let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
    headers.push(("x-amz-target".to_owned(), target.to_owned()));
    if let Some(time) = signed_at {
        headers.extend(sign(&url, &headers, body.as_bytes(), time, &s.account_sid, &s.auth_token));
    }
    let mut request = s.http.post(&url).body(body.to_owned());
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let request_id = response.headers().get("x-amzn-requestid").map(|v| v.to_str().unwrap().to_owned());
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    RawResp { status, request_id, content_type, body, text }
}

#[derive(Debug)]
struct RawResp {
    status: u16,
    request_id: Option<String>,
    content_type: Option<String>,
    body: Value,
    text: String,
}

impl RawResp {
    /// An awsJson1.1 error: status, `__type`, the content type and a request id.
    fn error(&self, status: u16, code: &str) -> &str {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["__type"], code, "{}", self.text);
        assert_eq!(self.content_type.as_deref(), Some("application/x-amz-json-1.1"));
        assert!(self.request_id.is_some(), "x-amzn-RequestId on every response");
        self.body["message"].as_str().unwrap_or_default()
    }
}

/// The SigV4 headers aws-sigv4 adds to a request, signed at `time`.
fn sign(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    time: SystemTime,
    access_key_id: &str,
    secret: &str,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_smithy_runtime_api::client::identity::Identity;
    let identity: Identity = aws_credential_types::Credentials::new(access_key_id, secret, None, None, "t").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("cognito-identity")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

#[tokio::test]
async fn identity_pools_are_created_described_listed_updated_and_deleted() {
    let Some(s) = TestServer::start().await else { return };
    let dev = developer(&s);
    let created = dev
        .create_identity_pool()
        .identity_pool_name("Game players")
        .allow_unauthenticated_identities(true)
        .allow_classic_flow(false)
        .supported_login_providers(FACEBOOK, "1234567890")
        .developer_provider_name(DEVELOPER)
        .open_id_connect_provider_arns("arn:aws:iam::123456789012:oidc-provider/accounts.example.com")
        .saml_provider_arns("arn:aws:iam::123456789012:saml-provider/corp")
        .cognito_identity_providers(
            ci::types::CognitoIdentityProvider::builder()
                .provider_name("cognito-idp.us-east-1.amazonaws.com/us-east-1_abc")
                .client_id("client1")
                .server_side_token_check(true)
                .build(),
        )
        .identity_pool_tags("team", "games")
        .send()
        .await
        .unwrap();
    let id = created.identity_pool_id().to_owned();
    assert!(id.starts_with("us-east-1:"), "{id}");
    assert_eq!(created.identity_pool_name(), "Game players");
    assert!(created.allow_unauthenticated_identities());
    assert_eq!(created.allow_classic_flow(), Some(false));
    assert_eq!(created.developer_provider_name(), Some(DEVELOPER));
    assert_eq!(created.supported_login_providers().unwrap()[FACEBOOK], "1234567890");
    assert_eq!(created.open_id_connect_provider_arns().len(), 1);
    assert_eq!(created.saml_provider_arns(), ["arn:aws:iam::123456789012:saml-provider/corp"]);
    let provider = &created.cognito_identity_providers()[0];
    assert_eq!((provider.client_id(), provider.server_side_token_check()), (Some("client1"), Some(true)));
    assert_eq!(created.identity_pool_tags().unwrap()["team"], "games");

    let described = dev.describe_identity_pool().identity_pool_id(&id).send().await.unwrap();
    assert_eq!(described.identity_pool_name(), "Game players");
    assert_eq!(described.developer_provider_name(), Some(DEVELOPER));

    let second = pool(&dev, "second", false).await;
    let first_page = dev.list_identity_pools().max_results(1).send().await.unwrap();
    assert_eq!(first_page.identity_pools().len(), 1);
    let token = first_page.next_token().expect("a second page").to_owned();
    let next_page = dev.list_identity_pools().max_results(1).next_token(token).send().await.unwrap();
    let mut listed: Vec<&str> = first_page
        .identity_pools()
        .iter()
        .chain(next_page.identity_pools())
        .filter_map(|p| p.identity_pool_id())
        .collect();
    listed.sort_unstable();
    let mut expected = vec![id.as_str(), second.as_str()];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    assert!(first_page.identity_pools()[0].identity_pool_name().is_some());

    // An update replaces the pool's settings; the developer provider stays once set.
    let updated = dev
        .update_identity_pool()
        .identity_pool_id(&id)
        .identity_pool_name("Renamed")
        .allow_unauthenticated_identities(false)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.identity_pool_name(), "Renamed");
    assert!(!updated.allow_unauthenticated_identities());
    assert!(updated.supported_login_providers().is_none_or(|p| p.is_empty()));
    assert_eq!(updated.developer_provider_name(), Some(DEVELOPER));

    dev.delete_identity_pool().identity_pool_id(&id).send().await.unwrap();
    let (code, message) = refusal(dev.describe_identity_pool().identity_pool_id(&id).send().await);
    assert_eq!(code, "ResourceNotFoundException");
    assert_eq!(message, format!("IdentityPool '{id}' not found."));
    let (code, _) = refusal(dev.delete_identity_pool().identity_pool_id(&id).send().await);
    assert_eq!(code, "ResourceNotFoundException");
}

#[tokio::test]
async fn unauthenticated_identities_come_only_from_pools_that_allow_them() {
    let Some(s) = TestServer::start().await else { return };
    let dev = developer(&s);
    let open = pool(&dev, "open", true).await;
    let closed = pool(&dev, "closed", false).await;
    let mobile = anonymous(&s);

    let guest = mobile.get_id().identity_pool_id(&open).send().await.unwrap();
    let guest = guest.identity_id().unwrap().to_owned();
    assert!(guest.starts_with("us-east-1:"));
    let (code, _) = refusal(mobile.get_id().identity_pool_id(&closed).send().await);
    assert_eq!(code, "NotAuthorizedException");

    // A login of a configured provider always maps to the same identity, even where guests
    // are refused; an unconfigured provider is refused.
    let alice = mobile.get_id().identity_pool_id(&closed).logins(FACEBOOK, "alice").send().await.unwrap();
    let again = mobile.get_id().identity_pool_id(&closed).logins(FACEBOOK, "alice").send().await.unwrap();
    assert_eq!(alice.identity_id(), again.identity_id());
    let (code, _) = refusal(mobile.get_id().identity_pool_id(&closed).logins("accounts.google.com", "x").send().await);
    assert_eq!(code, "NotAuthorizedException");

    let (code, message) =
        refusal(mobile.get_id().identity_pool_id("us-east-1:00000000-0000-0000-0000-000000000000").send().await);
    assert_eq!(code, "ResourceNotFoundException");
    assert!(message.contains("not found"), "{message}");

    // DescribeIdentity and ListIdentities show both, with their logins' providers.
    let described = dev.describe_identity().identity_id(&guest).send().await.unwrap();
    assert_eq!(described.identity_id(), Some(guest.as_str()));
    assert!(described.logins().is_empty());
    assert!(described.creation_date().is_some() && described.last_modified_date().is_some());
    let alice_id = alice.identity_id().unwrap();
    let described = dev.describe_identity().identity_id(alice_id).send().await.unwrap();
    assert_eq!(described.logins(), [FACEBOOK]);

    let listed = dev.list_identities().identity_pool_id(&open).max_results(60).send().await.unwrap();
    assert_eq!(listed.identity_pool_id(), Some(open.as_str()));
    let ids: Vec<&str> = listed.identities().iter().filter_map(|i| i.identity_id()).collect();
    assert_eq!(ids, [guest.as_str()]);
    let listed = dev.list_identities().identity_pool_id(&closed).max_results(1).hide_disabled(true).send().await;
    assert_eq!(listed.unwrap().identities().len(), 1);

    // DeleteIdentities: gone, and an id never issued counts as deleted.
    let deleted = dev
        .delete_identities()
        .identity_ids_to_delete(&guest)
        .identity_ids_to_delete("us-east-1:11111111-1111-1111-1111-111111111111")
        .send()
        .await
        .unwrap();
    assert!(deleted.unprocessed_identity_ids().is_empty());
    let (code, message) = refusal(dev.describe_identity().identity_id(&guest).send().await);
    assert_eq!((code.as_str(), message), ("ResourceNotFoundException", format!("Identity '{guest}' not found.")));
}

#[tokio::test]
async fn temporary_credentials_sign_as_their_identity_and_reach_no_developer_operation() {
    let Some(s) = TestServer::start().await else { return };
    let dev = developer(&s);
    let pool_id = pool(&dev, "creds", true).await;
    let mobile = anonymous(&s);
    let identity = mobile.get_id().identity_pool_id(&pool_id).send().await.unwrap();
    let identity = identity.identity_id().unwrap().to_owned();

    let issued = mobile.get_credentials_for_identity().identity_id(&identity).send().await.unwrap();
    assert_eq!(issued.identity_id(), Some(identity.as_str()));
    let creds = issued.credentials().expect("credentials");
    let (akid, secret, token) =
        (creds.access_key_id().unwrap(), creds.secret_key().unwrap(), creds.session_token().unwrap());
    let expiration = creds.expiration().expect("expiration").secs();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(expiration > now, "expires in the future: {expiration} vs {now}");

    // The engine resolves them to this identity: requests signed with them act as it.
    let found = s.engine.aws_secret(akid, Some(token)).await.unwrap();
    assert_eq!(found.secret, secret);
    match found.principal {
        Principal::CognitoIdentity { identity_id, pool_id: p, .. } => {
            assert_eq!((identity_id.as_str(), p.as_str()), (identity.as_str(), pool_id.as_str()));
        }
        other => panic!("not the identity: {other:?}"),
    }

    // Signed with them, developer operations are refused.
    let as_identity = client_with(&s, akid, secret, Some(token.to_owned()));
    let (code, message) = refusal(as_identity.list_identity_pools().max_results(10).send().await);
    assert_eq!(code, "NotAuthorizedException");
    assert!(message.contains("developer credentials"), "{message}");

    // A tampered session token is no credential.
    let forged = client_with(&s, akid, secret, Some(format!("{token}x")));
    let (code, _) = refusal(forged.list_identity_pools().max_results(10).send().await);
    assert_eq!(code, "UnrecognizedClientException");

    // Unknown identity.
    let (code, _) = refusal(
        mobile
            .get_credentials_for_identity()
            .identity_id("us-east-1:22222222-2222-2222-2222-222222222222")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
}

/// The keys served at `/.well-known/jwks.json`, and the claims of `token` verified with them.
async fn verify_token(s: &TestServer, token: &str, audience: &str) -> Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let jwks: JwkSet =
        s.http.get(format!("{}/.well-known/jwks.json", s.server.url())).send().await.unwrap().json().await.unwrap();
    let kid = decode_header(token).unwrap().kid.expect("a kid");
    let jwk = jwks.find(&kid).expect("the token's key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[s.engine.limits().cognito.openid_issuer.as_str()]);
    decode::<Value>(token, &key, &validation).expect("verifies against the JWKS").claims
}

#[tokio::test]
async fn open_id_tokens_verify_against_the_published_keys() {
    let Some(s) = TestServer::start().await else { return };
    let dev = developer(&s);
    let pool_id = pool(&dev, "oidc", true).await;
    let mobile = anonymous(&s);
    let identity = mobile.get_id().identity_pool_id(&pool_id).send().await.unwrap();
    let identity = identity.identity_id().unwrap();

    let issued = mobile.get_open_id_token().identity_id(identity).send().await.unwrap();
    assert_eq!(issued.identity_id(), Some(identity));
    let claims = verify_token(&s, issued.token().unwrap(), &pool_id).await;
    assert_eq!(claims["sub"], identity);
    assert_eq!(claims["amr"], json!(["unauthenticated"]));

    // Discovery names the issuer and where the keys are.
    let url = s.server.url();
    let config: Value =
        s.http.get(format!("{url}/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["issuer"], s.engine.limits().cognito.openid_issuer.as_str());
    assert_eq!(config["jwks_uri"], format!("{url}/.well-known/jwks.json"));
    assert_eq!(config["id_token_signing_alg_values_supported"], json!(["RS256"]));

    // The face leaves the rest of the root alone.
    let health = s.http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let get_root = s.http.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(get_root.status(), 404);
}

#[tokio::test]
async fn developer_identities_are_issued_looked_up_merged_and_unlinked() {
    let Some(s) = TestServer::start().await else { return };
    let dev = developer(&s);
    let pool_id = pool(&dev, "developer", false).await;

    let first = dev
        .get_open_id_token_for_developer_identity()
        .identity_pool_id(&pool_id)
        .logins(DEVELOPER, "user-1")
        .token_duration(900)
        .send()
        .await
        .unwrap();
    let id1 = first.identity_id().unwrap().to_owned();
    let claims = verify_token(&s, first.token().unwrap(), &pool_id).await;
    assert_eq!(claims["sub"], id1.as_str());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
    assert_eq!(claims["amr"][0], "authenticated");

    // The enhanced flow: the token is a login of the identity it was issued for.
    let mobile = anonymous(&s);
    let creds = mobile
        .get_credentials_for_identity()
        .identity_id(&id1)
        .logins("cognito-identity.amazonaws.com", first.token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(creds.identity_id(), Some(id1.as_str()));

    let found = dev.lookup_developer_identity().identity_pool_id(&pool_id).developer_user_identifier("user-1").send();
    let found = found.await.unwrap();
    assert_eq!(found.identity_id(), Some(id1.as_str()));
    assert_eq!(found.developer_user_identifier_list(), ["user-1"]);
    let by_id = dev.lookup_developer_identity().identity_pool_id(&pool_id).identity_id(&id1).max_results(10).send();
    assert_eq!(by_id.await.unwrap().developer_user_identifier_list(), ["user-1"]);

    let second = dev
        .get_open_id_token_for_developer_identity()
        .identity_pool_id(&pool_id)
        .logins(DEVELOPER, "user-2")
        .send()
        .await
        .unwrap();
    let id2 = second.identity_id().unwrap().to_owned();
    assert_ne!(id1, id2);

    // user-1 belongs to id1: naming id2 with it is refused.
    let (code, _) = refusal(
        dev.get_open_id_token_for_developer_identity()
            .identity_pool_id(&pool_id)
            .identity_id(&id2)
            .logins(DEVELOPER, "user-1")
            .send()
            .await,
    );
    assert_eq!(code, "DeveloperUserAlreadyRegisteredException");

    let merged = dev
        .merge_developer_identities()
        .identity_pool_id(&pool_id)
        .developer_provider_name(DEVELOPER)
        .source_user_identifier("user-2")
        .destination_user_identifier("user-1")
        .send()
        .await
        .unwrap();
    assert_eq!(merged.identity_id(), Some(id1.as_str()));
    let found = dev.lookup_developer_identity().identity_pool_id(&pool_id).identity_id(&id1).send().await.unwrap();
    let mut users = found.developer_user_identifier_list().to_vec();
    users.sort_unstable();
    assert_eq!(users, ["user-1", "user-2"]);

    dev.unlink_developer_identity()
        .identity_pool_id(&pool_id)
        .identity_id(&id1)
        .developer_provider_name(DEVELOPER)
        .developer_user_identifier("user-2")
        .send()
        .await
        .unwrap();
    let (code, _) = refusal(
        dev.lookup_developer_identity().identity_pool_id(&pool_id).developer_user_identifier("user-2").send().await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    let (code, _) = refusal(dev.lookup_developer_identity().identity_pool_id(&pool_id).send().await);
    assert_eq!(code, "InvalidParameterException");
}

#[tokio::test]
async fn signatures_are_checked_and_api_keys_are_developer_credentials() {
    let Some(s) = TestServer::start().await else { return };
    let (code, message) = refusal(
        client_with(&s, &s.account_sid, "not-the-token", None).list_identity_pools().max_results(5).send().await,
    );
    assert_eq!(code, "InvalidSignatureException");
    assert!(message.starts_with("The request signature we calculated does not match"), "{message}");
    let (code, _) =
        refusal(client_with(&s, "AKIDEXAMPLE", "secret", None).list_identity_pools().max_results(5).send().await);
    assert_eq!(code, "UnrecognizedClientException");

    let key = s.engine.create_api_key(&Principal::Root, Some("cognito".into())).await.unwrap();
    let by_key = client_with(&s, key.sid.as_str(), &key.secret, None);
    let pool_id = pool(&by_key, "by-key", true).await;
    let listed = by_key.list_identity_pools().max_results(60).send().await.unwrap();
    assert!(listed.identity_pools().iter().any(|p| p.identity_pool_id() == Some(pool_id.as_str())));

    // Outside the ±5 minute window, either way.
    let body = r#"{"MaxResults": 5}"#;
    let target = "AWSCognitoIdentityService.ListIdentityPools";
    let ct = "application/x-amz-json-1.1";
    let ok = raw(&s, target, ct, body, Some(SystemTime::now())).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(ok.request_id.is_some());
    let stale = raw(&s, target, ct, body, Some(SystemTime::now() - Duration::from_secs(600))).await;
    assert!(stale.error(400, "InvalidSignatureException").starts_with("Signature expired:"), "{}", stale.text);
    let early = raw(&s, target, ct, body, Some(SystemTime::now() + Duration::from_secs(600))).await;
    assert!(early.error(400, "InvalidSignatureException").starts_with("Signature not yet current:"));
    let unsigned = raw(&s, target, ct, body, None).await;
    unsigned.error(400, "MissingAuthenticationTokenException");
}

#[tokio::test]
async fn targets_content_types_and_unsupported_operations_are_refused_in_aws_format() {
    let Some(s) = TestServer::start().await else { return };
    let ct = "application/x-amz-json-1.1";
    let r = raw(&s, "AWSCognitoIdentityService.Nope", ct, "{}", None).await;
    r.error(400, "UnknownOperationException");
    let r = raw(&s, "AWSCognitoIdentityService.GetId", "application/x-www-form-urlencoded", "a=b", None).await;
    r.error(400, "SerializationException");
    let r = raw(&s, "AWSCognitoIdentityService.GetId", ct, "[1, 2]", None).await;
    r.error(400, "SerializationException");
    let r = raw(&s, "AWSCognitoIdentityService.GetId", ct, "{\"IdentityPoolId\": ", None).await;
    r.error(400, "SerializationException");
    let r = raw(&s, "AWSCognitoIdentityService.GetId", ct, r#"{"IdentityPoolId": 7}"#, None).await;
    assert!(r.error(400, "InvalidParameterException").contains("Member must be a string"), "{}", r.text);

    // Model operations with nothing behind them: a clear client error.
    let dev = developer(&s);
    let pool_id = pool(&dev, "unsupported", true).await;
    let (code, message) = refusal(dev.get_identity_pool_roles().identity_pool_id(&pool_id).send().await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("UnsupportedOperationException", "GetIdentityPoolRoles is not supported by this server.")
    );
    let (code, _) = refusal(
        dev.set_identity_pool_roles()
            .identity_pool_id(&pool_id)
            .roles("authenticated", "arn:aws:iam::123456789012:role/x")
            .send()
            .await,
    );
    assert_eq!(code, "UnsupportedOperationException");

    // Tags are the pool's IdentityPoolTags, addressed by its ARN.
    let arn = format!("arn:aws:cognito-identity:us-east-1:123456789012:identitypool/{pool_id}");
    dev.tag_resource().resource_arn(&arn).tags("a", "1").tags("b", "2").send().await.unwrap();
    dev.untag_resource().resource_arn(&arn).tag_keys("a").send().await.unwrap();
    let listed = dev.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
    assert_eq!(listed.tags().unwrap().len(), 1);
    assert_eq!(listed.tags().unwrap()["b"], "2");
    let described = dev.describe_identity_pool().identity_pool_id(&pool_id).send().await.unwrap();
    assert_eq!(described.identity_pool_tags().unwrap()["b"], "2");
    let (code, _) = refusal(dev.list_tags_for_resource().resource_arn("arn:aws:s3:::some-bucket-name").send().await);
    assert_eq!(code, "InvalidParameterException");
    let (code, _) = refusal(
        anonymous(&s)
            .unlink_identity()
            .identity_id("us-east-1:33333333-3333-3333-3333-333333333333")
            .logins(FACEBOOK, "x")
            .logins_to_remove(FACEBOOK)
            .send()
            .await,
    );
    assert_eq!(code, "UnsupportedOperationException");
}

#[tokio::test]
async fn invalid_input_is_refused_with_aws_messages() {
    let Some(s) = TestServer::start().await else { return };
    let dev = developer(&s);
    let invalid = |(code, message): (String, String)| {
        assert_eq!(code, "InvalidParameterException", "{message}");
        message
    };

    let m = invalid(refusal(dev.list_identity_pools().max_results(61).send().await));
    assert_eq!(
        m,
        "1 validation error detected: Value '61' at 'maxResults' failed to satisfy constraint: \
         Member must have value less than or equal to 60"
    );
    let m = invalid(refusal(dev.list_identity_pools().max_results(0).send().await));
    assert!(m.ends_with("Member must have value greater than or equal to 1"), "{m}");
    let m = invalid(refusal(
        dev.create_identity_pool().identity_pool_name("bad/name").allow_unauthenticated_identities(true).send().await,
    ));
    assert_eq!(
        m,
        "1 validation error detected: Value 'bad/name' at 'identityPoolName' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [\\w\\s+=,.@-]+"
    );
    let long = "p".repeat(129);
    let m = invalid(refusal(
        dev.create_identity_pool().identity_pool_name(&long).allow_unauthenticated_identities(true).send().await,
    ));
    assert!(
        m.ends_with(
            "at 'identityPoolName' failed to satisfy constraint: Member must have length less than or equal to 128"
        ),
        "{m}"
    );
    let m = invalid(refusal(
        dev.create_identity_pool()
            .identity_pool_name("ok")
            .allow_unauthenticated_identities(true)
            .developer_provider_name("bad provider")
            .send()
            .await,
    ));
    assert!(m.contains("at 'developerProviderName'") && m.contains("pattern: [\\w._-]+"), "{m}");
    let m = invalid(refusal(dev.describe_identity_pool().identity_pool_id("us-east-1:NOT-HEX").send().await));
    assert!(m.contains("Value 'us-east-1:NOT-HEX' at 'identityPoolId'") && m.contains("[\\w-]+:[0-9a-f-]+"), "{m}");

    // The unsigned calls are validated as well.
    let mobile = anonymous(&s);
    let mut get_id = mobile.get_id().identity_pool_id("us-east-1:0000");
    for i in 0..11 {
        get_id = get_id.logins(format!("provider{i}.example.com"), "token");
    }
    let m = invalid(refusal(get_id.send().await));
    assert!(
        m.contains("at 'logins' failed to satisfy constraint: Member must have length less than or equal to 10"),
        "{m}"
    );
    let m = invalid(refusal(mobile.get_open_id_token().identity_id("nocolon").send().await));
    assert!(m.contains("at 'identityId'"), "{m}");

    let pool_id = pool(&dev, "validation", true).await;
    let m = invalid(refusal(
        dev.get_open_id_token_for_developer_identity()
            .identity_pool_id(&pool_id)
            .logins(DEVELOPER, "u")
            .token_duration(86_401)
            .send()
            .await,
    ));
    assert!(
        m.ends_with(
            "at 'tokenDuration' failed to satisfy constraint: Member must have value less than or equal to 86400"
        ),
        "{m}"
    );
    let m = invalid(refusal(
        dev.lookup_developer_identity()
            .identity_pool_id(&pool_id)
            .developer_user_identifier("u".repeat(1025))
            .send()
            .await,
    ));
    assert!(m.contains("at 'developerUserIdentifier'"), "{m}");
    let mut delete = dev.delete_identities();
    for i in 0..61 {
        delete = delete.identity_ids_to_delete(format!("us-east-1:{i:08x}"));
    }
    let m = invalid(refusal(delete.send().await));
    assert!(
        m.contains(
            "at 'identityIdsToDelete' failed to satisfy constraint: Member must have length less than or equal to 60"
        ),
        "{m}"
    );

    // Every violation is reported, counted.
    let m = invalid(refusal(dev.list_identities().identity_pool_id("bad").max_results(99).send().await));
    assert!(m.starts_with("2 validation errors detected: "), "{m}");
}
