//! Cognito Sync's wire, signed by hand with aws-sigv4 where the SDK would hide it: the
//! model's response shapes and AWS's headers, and signature verification (wrong, expired and
//! out-of-skew signatures).

use super::cognito_sync::{DATASET, client, identity, pool, refused};
use super::common::TestServer;
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// A request signed with aws-sigv4 as the SDKs sign Cognito Sync, at `time`.
fn sign(
    s: &TestServer,
    method: &str,
    path_and_query: &str,
    body: &str,
    (key, secret): (&str, &str),
    time: SystemTime,
) -> reqwest::RequestBuilder {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, sign,
    };
    use aws_smithy_runtime_api::client::identity::Identity;

    let url = format!("{}{path_and_query}", s.server.url());
    let host = url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_owned();
    let identity: Identity = aws_credential_types::Credentials::new(key, secret, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Double;
    settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("cognito-sync")
        .time(time)
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let mut headers = vec![("host", host.as_str())];
    if !body.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    let signable =
        SignableRequest::new(method, url.clone(), headers.clone().into_iter(), SignableBody::Bytes(body.as_bytes()))
            .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut request = s.http.request(method.parse().expect("method"), url).body(body.to_owned());
    for (name, value) in headers.into_iter().filter(|(n, _)| *n != "host") {
        request = request.header(name, value);
    }
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    request
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let r = request.send().await.expect("response");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, headers, body }
}

fn enc(id: &str) -> String {
    id.replace(':', "%3A")
}

#[tokio::test]
async fn responses_have_the_model_s_shapes_and_aws_s_headers() {
    let Some(s) = TestServer::start().await else { return };
    let pool = pool(&s).await;
    let id = identity(&s, &pool).await;
    let keys = (s.account_sid.as_str(), s.auth_token.as_str());
    let dataset_path = format!("/identitypools/{}/identities/{}/datasets/{DATASET}", enc(&pool), enc(&id));

    let listed = answer(sign(&s, "GET", &format!("{dataset_path}/records"), "", keys, SystemTime::now())).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.header("content-type"), "application/json");
    assert!(uuid_like(listed.header("x-amzn-requestid")));
    let token = listed.body["SyncSessionToken"].as_str().expect("token").to_owned();
    let mut keys_of: Vec<&str> = listed.body.as_object().expect("object").keys().map(String::as_str).collect();
    keys_of.sort_unstable();
    assert_eq!(
        keys_of,
        [
            "Count",
            "DatasetDeletedAfterRequestedSyncCount",
            "DatasetExists",
            "DatasetSyncCount",
            "MergedDatasetNames",
            "Records",
            "SyncSessionToken"
        ]
    );

    let body = format!(
        r#"{{"DeviceId":"device-1","SyncSessionToken":"{token}","RecordPatches":[{{"Op":"replace","Key":"color","Value":"blue","SyncCount":0,"DeviceLastModifiedDate":1704164645}}]}}"#
    );
    let written = answer(sign(&s, "POST", &dataset_path, &body, keys, SystemTime::now())).await;
    assert_eq!(written.status, 200, "{}", written.body);
    let record = &written.body["Records"][0];
    assert_eq!(record["Key"], "color");
    assert_eq!(record["SyncCount"], 1);
    assert_eq!(record["DeviceLastModifiedDate"].as_f64(), Some(1_704_164_645.0));
    assert_eq!(record["LastModifiedBy"], "device-1");
    let modified = record["LastModifiedDate"].as_f64().expect("epoch seconds as a number");
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("now").as_secs_f64();
    assert!((now - modified).abs() < 3600.0, "{modified} is epoch seconds");

    let described = answer(sign(&s, "GET", &dataset_path, "", keys, SystemTime::now())).await;
    let mut members: Vec<&str> =
        described.body["Dataset"].as_object().expect("dataset").keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(
        members,
        [
            "CreationDate",
            "DataStorage",
            "DatasetName",
            "IdentityId",
            "LastModifiedBy",
            "LastModifiedDate",
            "NumRecords"
        ]
    );

    // Errors: the status of the shape, the type in the header (Coral form) and the body.
    let conflict = answer(sign(&s, "POST", &dataset_path, &body, keys, SystemTime::now())).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(
        conflict.header("x-amzn-errortype"),
        "ResourceConflictException:http://internal.amazon.com/coral/com.amazonaws.cognito.sync.model/"
    );
    assert_eq!(conflict.body["__type"], "ResourceConflictException");
    assert_eq!(conflict.body["message"], "Current SyncCount for: color is: 1 not: 0");
    assert!(uuid_like(conflict.header("x-amzn-requestid")));

    let missing = answer(sign(&s, "GET", &format!("{dataset_path}x"), "", keys, SystemTime::now())).await;
    assert_eq!((missing.status, missing.body["__type"].as_str()), (404, Some("ResourceNotFoundException")));

    let unknown = answer(sign(&s, "PUT", "/identitypools", "", keys, SystemTime::now())).await;
    assert_eq!((unknown.status, unknown.body["__type"].as_str()), (404, Some("UnknownOperationException")));
    assert!(uuid_like(unknown.header("x-amzn-requestid")));

    let malformed = answer(sign(&s, "POST", &dataset_path, "{not json", keys, SystemTime::now())).await;
    assert_eq!((malformed.status, malformed.body["__type"].as_str()), (400, Some("InvalidParameterException")));

    // The other faces are where they were.
    assert_eq!(s.http.get(s.root("/healthz")).send().await.expect("healthz").status(), 200);
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn signatures_are_verified() {
    let Some(s) = TestServer::start().await else { return };
    let pool = pool(&s).await;
    let path = format!("/identitypools/{}", enc(&pool));
    let good = (s.account_sid.as_str(), s.auth_token.as_str());

    let ok = answer(sign(&s, "GET", &path, "", good, SystemTime::now())).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    // A wrong secret, through the SDK.
    let wrong = client(&s, &s.account_sid, "not-the-auth-token", None);
    let r = wrong.describe_identity_pool_usage().identity_pool_id(&pool).send().await;
    let (code, message) = refused(r);
    assert_eq!(code, "InvalidSignatureException");
    assert!(message.starts_with("The request signature we calculated does not match"), "{message}");

    // Signed ten minutes ago or ahead: outside the ±5 minute window.
    let stale = answer(sign(&s, "GET", &path, "", good, SystemTime::now() - Duration::from_secs(600))).await;
    assert_eq!((stale.status, stale.body["__type"].as_str()), (403, Some("InvalidSignatureException")));
    let message = stale.body["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Signature expired:") && message.ends_with("- 5 min.)"), "{message}");
    let early = answer(sign(&s, "GET", &path, "", good, SystemTime::now() + Duration::from_secs(600))).await;
    assert_eq!((early.status, early.body["__type"].as_str()), (403, Some("InvalidSignatureException")));

    // An unknown key, and no signature at all.
    let unknown = answer(sign(&s, "GET", &path, "", ("AKIDEXAMPLE", "secret"), SystemTime::now())).await;
    assert_eq!((unknown.status, unknown.body["__type"].as_str()), (403, Some("UnrecognizedClientException")));
    let unsigned = answer(s.http.get(s.root(&path))).await;
    assert_eq!(unsigned.status, 403);
    assert_eq!(unsigned.header("x-amzn-errortype").split(':').next(), Some("MissingAuthenticationTokenException"));
    assert!(uuid_like(unsigned.header("x-amzn-requestid")));
}
