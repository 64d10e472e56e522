//! AWS Signature Version 4 on arbitrary input, split at 0xFF bytes into parts.
//!
//! - As received: an `Authorization` header, `X-Amz-Date`, a query and a path go through the
//!   whole check (`verify`): parsing the header or the presigned query, signed headers, clock,
//!   scope, payload hash, signature. Whatever the parts, it answers without panicking.
//! - Round trip: a request signed the way the SDKs sign (any path and query that are valid on
//!   the wire and not a presigned URL's, any extra header value, any body) verifies with the
//!   same secret.

#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue, uri::PathAndQuery};
use ferrosync_server::api::aws::sigv4::{
    self, AwsAuthError, ClientCredentials, SigV4Settings, SignedRequest, Signer, SigningKeys, SigningSecret,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use time::OffsetDateTime;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

struct OneKey;

impl SigningKeys for OneKey {
    type Principal = ();

    async fn secret(&self, _: &str, _: Option<&str>) -> Result<SigningSecret<()>, AwsAuthError> {
        Ok(SigningSecret { secret: SECRET.into(), principal: () })
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("a runtime")).block_on(f)
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0xFF);
    let mut next = || parts.next().unwrap_or_default();
    let (authorization, date, query, path, extra, body) = (next(), next(), next(), next(), next(), next());
    let settings = SigV4Settings::new("cognito-sync");
    let now = OffsetDateTime::from_unix_timestamp(1_750_000_000).expect("a time");

    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
    for (name, value) in [("authorization", authorization), ("x-amz-date", date)] {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (query, path) = (text(query), text(path));
    let received = SignedRequest {
        method: "POST",
        path: &path,
        query: Some(query.as_str()),
        headers: &headers,
        authority: None,
        body,
    };
    let _ = block_on(sigv4::verify(&settings, &received, now, &OneKey));

    // Signed as a client signs it, then checked as the server checks it. A query that names
    // an algorithm is a presigned URL's, which the SDKs never add to a header-signed request.
    let Ok(target) = PathAndQuery::try_from(format!("/{path}?{query}")) else { return };
    if form_urlencoded::parse(target.query().unwrap_or_default().as_bytes()).any(|(k, _)| k == "X-Amz-Algorithm") {
        return;
    }
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
    if let Ok(value) = HeaderValue::from_bytes(extra) {
        headers.insert("x-fuzz", value);
    }
    let credentials =
        ClientCredentials { access_key_id: "AKIDFUZZ".into(), secret_access_key: SECRET.into(), session_token: None };
    let signer = Signer { service: "cognito-sync", region: "us-east-1", credentials: &credentials };
    sigv4::sign_request(signer, "POST", target.as_str(), &mut headers, body, now);
    let sent = SignedRequest {
        method: "POST",
        path: target.path(),
        query: target.query(),
        headers: &headers,
        authority: None,
        body,
    };
    if let Err(e) = block_on(sigv4::verify(&settings, &sent, now, &OneKey)) {
        panic!("a request signed as the SDKs sign fails to verify: {e:?}");
    }
});
