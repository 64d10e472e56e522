//! Push-sync providers against local stand-ins for FCM (and Google's token endpoint), APNs
//! (HTTP/2 without TLS) and a webhook receiver: the exact requests they make, and how answers
//! map to errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferrosync_core::cognito::Platform;
use ferrosync_server::push::{
    ApnsConfig, FcmConfig, ProviderConfig, PushDevice, PushError, PushSender, PushSettings, SyncPush, WebhookConfig,
};
use hmac::Mac;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const TEAM_ID: &str = "TEAM123456";
const KEY_ID: &str = "TESTKEY123";
const TOPIC: &str = "com.example.notes";
const CLIENT_EMAIL: &str = "push@my-project.iam.gserviceaccount.com";

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/push")
}

fn apns_key_file() -> PathBuf {
    data_dir().join("AuthKey_TESTKEY123.p8")
}

fn rsa_pem() -> String {
    std::fs::read_to_string(data_dir().join("service-account-key.pem")).unwrap()
}

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    version: Version,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A local HTTP server (HTTP/1.1 and h2c) that records every request and answers from a script
/// per path: `200 {}` once the script runs out, and fresh access tokens on `/token`.
#[derive(Default)]
struct Mock {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<HashMap<String, VecDeque<(u16, String)>>>,
    tokens_issued: AtomicUsize,
}

impl Mock {
    async fn start() -> (Arc<Mock>, String) {
        let mock = Arc::new(Mock::default());
        let app = axum::Router::new().fallback(record).with_state(mock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (mock, url)
    }

    fn answer(&self, path: &str, status: u16, body: &str) {
        self.script.lock().unwrap().entry(path.to_owned()).or_default().push_back((status, body.to_owned()));
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }
}

async fn record(State(mock): State<Arc<Mock>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec();
    let path = parts.uri.path().to_owned();
    mock.requests.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: path.clone(),
        version: parts.version,
        headers: parts.headers,
        body,
    });
    let scripted = mock.script.lock().unwrap().get_mut(&path).and_then(VecDeque::pop_front);
    let (status, body) = match scripted {
        Some(answer) => answer,
        None if path == "/token" => {
            let n = mock.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
            (
                200,
                json!({"access_token": format!("access-{n}"), "expires_in": 3600, "token_type": "Bearer"}).to_string(),
            )
        }
        None => (200, "{}".to_owned()),
    };
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
        .into_response()
}

fn push() -> SyncPush {
    SyncPush {
        identity_pool_id: "us-east-1:0a1b2c3d-0000-4000-8000-000000000001".into(),
        identity_id: "us-east-1:9f8e7d6c-0000-4000-8000-000000000002".into(),
        dataset_name: "notes".into(),
        sync_count: 17,
    }
}

fn expected_data() -> Value {
    json!({
        "source": "cognito-sync",
        "identityPoolId": "us-east-1:0a1b2c3d-0000-4000-8000-000000000001",
        "identityId": "us-east-1:9f8e7d6c-0000-4000-8000-000000000002",
        "datasetName": "notes",
        "syncCount": "17",
    })
}

fn device(platform: Platform, token: &str) -> PushDevice {
    PushDevice { platform, token: token.into(), device_id: "device-1".into() }
}

fn sender(providers: impl IntoIterator<Item = (&'static str, ProviderConfig)>) -> PushSender {
    let providers: BTreeMap<String, ProviderConfig> = providers.into_iter().map(|(n, c)| (n.to_owned(), c)).collect();
    PushSender::new(PushSettings { providers, ..Default::default() }).unwrap()
}

fn build_error(name: &'static str, config: ProviderConfig) -> String {
    let settings = PushSettings { providers: [(name.to_owned(), config)].into(), ..Default::default() };
    match PushSender::new(settings) {
        Err(e @ PushError::Config { .. }) => e.to_string(),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

// --- webhook -------------------------------------------------------------------------------

fn webhook(url: &str, secret: Option<&str>) -> ProviderConfig {
    ProviderConfig::Webhook(WebhookConfig { url: format!("{url}/hook"), secret: secret.map(str::to_owned) })
}

#[tokio::test]
async fn webhook_posts_the_payload_signed_with_the_secret() {
    let (mock, url) = Mock::start().await;
    let sender = sender([("gateway", webhook(&url, Some("hook-secret")))]);
    sender.send("gateway", &device(Platform::Gcm, "fcm-token-1"), &push()).await.unwrap();

    let [request] = mock.requests().try_into().unwrap();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/hook"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({"platform": "GCM", "token": "fcm-token-1", "deviceId": "device-1", "data": expected_data()})
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").unwrap();
    mac.update(&request.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(request.header("x-ferrosync-signature"), Some(expected.as_str()));
}

#[tokio::test]
async fn webhook_without_a_secret_is_unsigned_and_names_the_platform() {
    let (mock, url) = Mock::start().await;
    let sender = sender([("gateway", webhook(&url, None))]);
    sender.send("gateway", &device(Platform::Adm, "amzn1.adm-registration.1"), &push()).await.unwrap();
    let [request] = mock.requests().try_into().unwrap();
    assert_eq!(request.header("x-ferrosync-signature"), None);
    assert_eq!(request.json()["platform"], "ADM");
    assert_eq!(request.json()["token"], "amzn1.adm-registration.1");
}

#[tokio::test]
async fn webhook_answers_map_to_errors() {
    let (mock, url) = Mock::start().await;
    let sender = sender([("gateway", webhook(&url, None))]);
    let d = device(Platform::Gcm, "t");
    mock.answer("/hook", 410, "");
    mock.answer("/hook", 500, "down");
    mock.answer("/hook", 429, "slow down");
    mock.answer("/hook", 400, "no such app");

    assert!(matches!(sender.send("gateway", &d, &push()).await, Err(PushError::Unregistered)));
    let e = sender.send("gateway", &d, &push()).await.unwrap_err();
    assert!(matches!(e, PushError::Transient(_)) && e.is_retryable(), "{e:?}");
    let e = sender.send("gateway", &d, &push()).await.unwrap_err();
    assert!(matches!(e, PushError::Transient(_)) && e.is_retryable(), "{e:?}");
    match sender.send("gateway", &d, &push()).await {
        Err(e @ PushError::Rejected { status: 400, .. }) => {
            assert!(!e.is_retryable());
            assert!(e.to_string().contains("no such app"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_receiver_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let sender = sender([("gateway", webhook(&url, None))]);
    let e = sender.send("gateway", &device(Platform::Gcm, "t"), &push()).await.unwrap_err();
    assert!(matches!(e, PushError::Transient(_)) && e.is_retryable(), "{e:?}");
}

#[tokio::test]
async fn unknown_providers_are_refused() {
    let (mock, url) = Mock::start().await;
    let sender = sender([("gateway", webhook(&url, None))]);
    assert!(sender.has_provider("gateway"));
    assert!(!sender.has_provider("android"));
    match sender.send("android", &device(Platform::Gcm, "t"), &push()).await {
        Err(e @ PushError::UnknownProvider(_)) => {
            assert!(!e.is_retryable());
            assert!(e.to_string().contains("android"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(mock.requests().is_empty());
}

// --- FCM -----------------------------------------------------------------------------------

const FCM_PATH: &str = "/v1/projects/my-project/messages:send";

fn fcm_static(url: &str) -> ProviderConfig {
    ProviderConfig::Fcm(FcmConfig {
        base_url: url.to_owned(),
        access_token: Some("static-token".into()),
        ..FcmConfig::new("my-project")
    })
}

/// A service-account key file as Google issues them, its token endpoint on the mock.
fn service_account(dir: &Path, token_uri: &str) -> PathBuf {
    let path = dir.join("service-account.json");
    let file = json!({
        "type": "service_account",
        "project_id": "my-project",
        "private_key_id": "key-id-1",
        "private_key": rsa_pem(),
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "token_uri": token_uri,
    });
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

fn fcm_account(url: &str, credentials: PathBuf) -> ProviderConfig {
    ProviderConfig::Fcm(FcmConfig {
        base_url: url.to_owned(),
        credentials_file: Some(credentials),
        ..FcmConfig::new("my-project")
    })
}

fn expected_fcm_body(token: &str) -> Value {
    json!({"message": {
        "token": token,
        "data": expected_data(),
        "android": {"priority": "high"},
        "apns": {
            "headers": {"apns-push-type": "background", "apns-priority": "5"},
            "payload": {"aps": {"content-available": 1}},
        },
    }})
}

#[tokio::test]
async fn fcm_sends_a_data_message_with_the_static_token() {
    let (mock, url) = Mock::start().await;
    let sender = sender([("android", fcm_static(&url))]);
    sender.send("android", &device(Platform::Gcm, "fcm-token-1"), &push()).await.unwrap();
    let [request] = mock.requests().try_into().unwrap();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", FCM_PATH));
    assert_eq!(request.header("authorization"), Some("Bearer static-token"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.json(), expected_fcm_body("fcm-token-1"));
}

#[tokio::test]
async fn fcm_with_a_static_token_does_not_retry_a_401() {
    let (mock, url) = Mock::start().await;
    let sender = sender([("android", fcm_static(&url))]);
    mock.answer(FCM_PATH, 401, r#"{"error": {"code": 401, "message": "bad", "status": "UNAUTHENTICATED"}}"#);
    match sender.send("android", &device(Platform::Gcm, "t"), &push()).await {
        Err(PushError::Rejected { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(mock.requests().len(), 1);
}

/// The assertion's signature and claims, checked with the service account's public key.
fn verify_assertion(form: &[u8], token_uri: &str) -> Value {
    let form: HashMap<String, String> = form_urlencoded::parse(form).into_owned().collect();
    assert_eq!(form.get("grant_type").map(String::as_str), Some("urn:ietf:params:oauth:grant-type:jwt-bearer"));
    let assertion = form.get("assertion").unwrap();
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&rsa_pem()).unwrap();
    let public = key.to_public_key();
    let decoding = DecodingKey::from_rsa_raw_components(&public.n().to_bytes_be(), &public.e().to_bytes_be());
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[token_uri]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    let decoded = jsonwebtoken::decode::<Value>(assertion, &decoding, &validation).unwrap();
    assert_eq!(decoded.header.kid.as_deref(), Some("key-id-1"));
    decoded.claims
}

#[tokio::test]
async fn fcm_gets_a_token_from_the_service_account_once_and_reuses_it() {
    let (mock, url) = Mock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token_uri = format!("{url}/token");
    let sender = sender([("android", fcm_account(&url, service_account(dir.path(), &token_uri)))]);
    sender.send("android", &device(Platform::Gcm, "fcm-token-1"), &push()).await.unwrap();
    sender.send("android", &device(Platform::Gcm, "fcm-token-2"), &push()).await.unwrap();

    let [token_request] = mock.requests_to("/token").try_into().unwrap();
    assert_eq!(token_request.method, "POST");
    assert_eq!(token_request.header("content-type"), Some("application/x-www-form-urlencoded"));
    let claims = verify_assertion(&token_request.body, &token_uri);
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/firebase.messaging");
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 3600);

    let sends = mock.requests_to(FCM_PATH);
    assert_eq!(sends.len(), 2);
    for (request, token) in sends.iter().zip(["fcm-token-1", "fcm-token-2"]) {
        assert_eq!(request.header("authorization"), Some("Bearer access-1"));
        assert_eq!(request.json(), expected_fcm_body(token));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fcm_sends_share_one_token_request() {
    let (mock, url) = Mock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sender = sender([("android", fcm_account(&url, service_account(dir.path(), &format!("{url}/token"))))]);
    let sends = (0..8).map(|i| {
        let (sender, device) = (&sender, device(Platform::Gcm, &format!("t{i}")));
        async move { sender.send("android", &device, &push()).await }
    });
    for result in futures_util::future::join_all(sends).await {
        result.unwrap();
    }
    assert_eq!(mock.requests_to("/token").len(), 1);
    assert_eq!(mock.requests_to(FCM_PATH).len(), 8);
}

#[tokio::test]
async fn fcm_token_uri_override_wins_over_the_files() {
    let (mock, url) = Mock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = service_account(dir.path(), "http://127.0.0.1:9/unused");
    let override_uri = format!("{url}/token");
    let config = ProviderConfig::Fcm(FcmConfig {
        base_url: url.clone(),
        credentials_file: Some(credentials),
        token_uri: Some(override_uri.clone()),
        ..FcmConfig::new("my-project")
    });
    let sender = sender([("android", config)]);
    sender.send("android", &device(Platform::Gcm, "t"), &push()).await.unwrap();
    let [token_request] = mock.requests_to("/token").try_into().unwrap();
    // The assertion's audience is the endpoint it is sent to.
    verify_assertion(&token_request.body, &override_uri);
}

#[tokio::test]
async fn fcm_refreshes_a_refused_token_once() {
    let (mock, url) = Mock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sender = sender([("android", fcm_account(&url, service_account(dir.path(), &format!("{url}/token"))))]);
    let unauthenticated = r#"{"error": {"code": 401, "message": "invalid credentials", "status": "UNAUTHENTICATED"}}"#;

    mock.answer(FCM_PATH, 401, unauthenticated);
    sender.send("android", &device(Platform::Gcm, "t"), &push()).await.unwrap();
    let bearers: Vec<_> =
        mock.requests_to(FCM_PATH).iter().map(|r| r.header("authorization").unwrap().to_owned()).collect();
    assert_eq!(bearers, ["Bearer access-1", "Bearer access-2"]);
    assert_eq!(mock.requests_to("/token").len(), 2);

    // The refreshed token is kept; a second refusal in a row is final.
    mock.answer(FCM_PATH, 401, unauthenticated);
    mock.answer(FCM_PATH, 401, unauthenticated);
    match sender.send("android", &device(Platform::Gcm, "t"), &push()).await {
        Err(e @ PushError::Rejected { status: 401, .. }) => assert!(!e.is_retryable()),
        other => panic!("{other:?}"),
    }
    let bearers: Vec<_> =
        mock.requests_to(FCM_PATH).iter().skip(2).map(|r| r.header("authorization").unwrap().to_owned()).collect();
    assert_eq!(bearers, ["Bearer access-2", "Bearer access-3"]);
    assert_eq!(mock.requests_to("/token").len(), 3);
}

#[tokio::test]
async fn fcm_token_endpoint_failures_map_to_errors() {
    let (mock, url) = Mock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sender = sender([("android", fcm_account(&url, service_account(dir.path(), &format!("{url}/token"))))]);
    mock.answer("/token", 400, r#"{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}"#);
    mock.answer("/token", 503, "unavailable");
    match sender.send("android", &device(Platform::Gcm, "t"), &push()).await {
        Err(PushError::Rejected { status: 400, reason }) => assert!(reason.contains("invalid_grant"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(sender.send("android", &device(Platform::Gcm, "t"), &push()).await.unwrap_err().is_retryable());
    assert!(mock.requests_to(FCM_PATH).is_empty(), "nothing is sent without a token");
    sender.send("android", &device(Platform::Gcm, "t"), &push()).await.unwrap();
}

#[tokio::test]
async fn fcm_answers_map_to_errors() {
    let (mock, url) = Mock::start().await;
    let sender = sender([("android", fcm_static(&url))]);
    let d = device(Platform::Gcm, "t");
    mock.answer(
        FCM_PATH,
        404,
        r#"{"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}}"#,
    );
    mock.answer(
        FCM_PATH,
        400,
        r#"{"error": {"code": 400, "message": "The registration token is not a valid FCM registration token",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"}]}}"#,
    );
    mock.answer(FCM_PATH, 500, r#"{"error": {"code": 500, "message": "internal", "status": "INTERNAL"}}"#);
    mock.answer(
        FCM_PATH,
        400,
        r#"{"error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}}"#,
    );

    assert!(matches!(sender.send("android", &d, &push()).await, Err(PushError::Unregistered)));
    assert!(matches!(sender.send("android", &d, &push()).await, Err(PushError::Unregistered)));
    let e = sender.send("android", &d, &push()).await.unwrap_err();
    assert!(matches!(e, PushError::Transient(_)) && e.is_retryable(), "{e:?}");
    match sender.send("android", &d, &push()).await {
        Err(e @ PushError::Rejected { status: 400, .. }) => assert!(!e.is_retryable()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn fcm_configuration_mistakes_fail_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let e = build_error("android", ProviderConfig::Fcm(FcmConfig::new("p")));
    assert!(e.contains("'android'") && e.contains("credentials_file or access_token"), "{e}");

    let missing = dir.path().join("missing.json");
    let e = build_error(
        "android",
        ProviderConfig::Fcm(FcmConfig { credentials_file: Some(missing.clone()), ..FcmConfig::new("p") }),
    );
    assert!(e.contains("'android'") && e.contains(&missing.display().to_string()), "{e}");

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, json!({"client_email": CLIENT_EMAIL, "private_key": "not a key"}).to_string()).unwrap();
    let e = build_error(
        "android",
        ProviderConfig::Fcm(FcmConfig { credentials_file: Some(broken.clone()), ..FcmConfig::new("p") }),
    );
    assert!(e.contains("private_key") && e.contains(&broken.display().to_string()), "{e}");
}

// --- APNs ----------------------------------------------------------------------------------

fn apns(production: &str, sandbox: &str) -> ProviderConfig {
    ProviderConfig::Apns(ApnsConfig {
        base_url: production.to_owned(),
        sandbox_base_url: sandbox.to_owned(),
        ..ApnsConfig::new(TEAM_ID, KEY_ID, apns_key_file(), TOPIC)
    })
}

/// The provider token's signature and claims, checked with the .p8 key's public half.
fn verify_provider_token(authorization: &str) -> Value {
    let jwt = authorization.strip_prefix("bearer ").unwrap();
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::DecodePrivateKey;
    let key = p256::SecretKey::from_pkcs8_pem(&std::fs::read_to_string(apns_key_file()).unwrap()).unwrap();
    let point = key.public_key().to_encoded_point(false);
    let decoding = DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        &URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    )
    .unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    // Apple's provider tokens carry no expiry: APNs takes them for an hour after `iat`.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.set_issuer(&[TEAM_ID]);
    let decoded = jsonwebtoken::decode::<Value>(jwt, &decoding, &validation).unwrap();
    assert_eq!(decoded.header.alg, Algorithm::ES256);
    assert_eq!(decoded.header.kid.as_deref(), Some(KEY_ID));
    decoded.claims
}

#[tokio::test]
async fn apns_sends_a_background_push_over_http2() {
    let (mock, url) = Mock::start().await;
    let sender = sender([("ios", apns(&url, "http://127.0.0.1:9"))]);
    let token = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    sender.send("ios", &device(Platform::Apns, token), &push()).await.unwrap();

    let [request] = mock.requests().try_into().unwrap();
    assert_eq!(request.version, Version::HTTP_2);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/3/device/{token}"));
    assert_eq!(request.header("apns-push-type"), Some("background"));
    assert_eq!(request.header("apns-priority"), Some("5"));
    assert_eq!(request.header("apns-topic"), Some(TOPIC));
    assert_eq!(request.json(), json!({"aps": {"content-available": 1}, "data": expected_data()}));
    let claims = verify_provider_token(request.header("authorization").unwrap());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat <= now && now - iat < 600, "iat {iat} is not the signing time (now {now})");
}

#[tokio::test]
async fn apns_reuses_its_provider_token() {
    let (mock, url) = Mock::start().await;
    let sender = sender([("ios", apns(&url, &url))]);
    sender.send("ios", &device(Platform::Apns, "aa"), &push()).await.unwrap();
    sender.send("ios", &device(Platform::ApnsSandbox, "bb"), &push()).await.unwrap();
    let [first, second] = mock.requests().try_into().unwrap();
    assert_eq!(first.header("authorization"), second.header("authorization"));
}

#[tokio::test]
async fn apns_sandbox_devices_go_to_the_sandbox() {
    let (production, production_url) = Mock::start().await;
    let (sandbox, sandbox_url) = Mock::start().await;
    let sender = sender([("ios", apns(&production_url, &sandbox_url))]);
    sender.send("ios", &device(Platform::ApnsSandbox, "dev-token"), &push()).await.unwrap();
    assert!(production.requests().is_empty());
    let [request] = sandbox.requests().try_into().unwrap();
    assert_eq!(request.path, "/3/device/dev-token");
    assert_eq!(request.version, Version::HTTP_2);

    sender.send("ios", &device(Platform::Apns, "prod-token"), &push()).await.unwrap();
    assert_eq!(production.requests().len(), 1);
    assert_eq!(sandbox.requests().len(), 1);
}

#[tokio::test]
async fn apns_answers_map_to_errors() {
    let (mock, url) = Mock::start().await;
    let sender = sender([("ios", apns(&url, &url))]);
    let d = device(Platform::Apns, "aa");
    let path = "/3/device/aa";
    mock.answer(path, 410, r#"{"reason": "Unregistered", "timestamp": 1700000000000}"#);
    mock.answer(path, 400, r#"{"reason": "BadDeviceToken"}"#);
    mock.answer(path, 400, r#"{"reason": "BadTopic"}"#);
    mock.answer(path, 500, r#"{"reason": "InternalServerError"}"#);
    mock.answer(path, 429, r#"{"reason": "TooManyRequests"}"#);

    assert!(matches!(sender.send("ios", &d, &push()).await, Err(PushError::Unregistered)));
    assert!(matches!(sender.send("ios", &d, &push()).await, Err(PushError::Unregistered)));
    match sender.send("ios", &d, &push()).await {
        Err(e @ PushError::Rejected { status: 400, .. }) => {
            assert!(!e.is_retryable());
            assert!(matches!(&e, PushError::Rejected { reason, .. } if reason == "BadTopic"), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    let e = sender.send("ios", &d, &push()).await.unwrap_err();
    assert!(matches!(e, PushError::Transient(_)) && e.is_retryable(), "{e:?}");
    assert!(sender.send("ios", &d, &push()).await.unwrap_err().is_retryable());
}

#[tokio::test]
async fn apns_expired_provider_token_is_worth_retrying() {
    let (mock, url) = Mock::start().await;
    let sender = sender([("ios", apns(&url, &url))]);
    let d = device(Platform::Apns, "aa");
    mock.answer("/3/device/aa", 403, r#"{"reason": "ExpiredProviderToken"}"#);
    mock.answer("/3/device/aa", 403, r#"{"reason": "InvalidProviderToken"}"#);
    let e = sender.send("ios", &d, &push()).await.unwrap_err();
    assert!(matches!(e, PushError::Transient(_)), "{e:?}");
    match sender.send("ios", &d, &push()).await {
        Err(PushError::Rejected { status: 403, reason }) => assert_eq!(reason, "InvalidProviderToken"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn apns_refuses_devices_of_other_platforms() {
    let (mock, url) = Mock::start().await;
    let sender = sender([("ios", apns(&url, &url))]);
    match sender.send("ios", &device(Platform::Gcm, "t"), &push()).await {
        Err(e @ PushError::Config { .. }) => assert!(!e.is_retryable()),
        other => panic!("{other:?}"),
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn apns_key_mistakes_fail_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("AuthKey_MISSING.p8");
    let e = build_error("ios", ProviderConfig::Apns(ApnsConfig::new(TEAM_ID, KEY_ID, &missing, TOPIC)));
    assert!(e.contains("'ios'") && e.contains(&missing.display().to_string()), "{e}");

    // An RSA key is a PKCS#8 key too, but not a P-256 one.
    let wrong = dir.path().join("AuthKey_WRONG.p8");
    std::fs::write(&wrong, rsa_pem()).unwrap();
    let e = build_error("ios", ProviderConfig::Apns(ApnsConfig::new(TEAM_ID, KEY_ID, &wrong, TOPIC)));
    assert!(e.contains("'ios'") && e.contains(&wrong.display().to_string()), "{e}");
}
