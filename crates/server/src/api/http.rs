//! HTTP pieces every face shares: where a request was addressed and Basic credentials.

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ferrosync_protocol::rest::revision_of_etag;

/// `scheme://host[:port]` the client addressed, honouring proxies' `X-Forwarded-Proto` and
/// `X-Forwarded-Host`; `None` when the request named no host at all (HTTP/1.0 without Host).
pub fn origin(headers: &HeaderMap) -> Option<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(',').next().unwrap_or(s).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let host = header("x-forwarded-host").or_else(|| header("host"))?;
    let proto = header("x-forwarded-proto").unwrap_or_else(|| "http".to_owned());
    Some(format!("{proto}://{host}"))
}

/// The `user` and `password` of a `Basic` credentials value (after the scheme).
pub fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let decoded = STANDARD.decode(encoded.trim()).ok().and_then(|b| String::from_utf8(b).ok())?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// A JSON response carrying `ETag: <revision>` (the revision, bare, as every face sends it).
pub fn with_etag<T: serde::Serialize>(status: StatusCode, revision: u64, body: T) -> Response {
    etagged((status, Json(body)).into_response(), revision)
}

/// The same, for a body already written as JSON.
pub fn json_with_etag(status: StatusCode, revision: u64, json: Vec<u8>) -> Response {
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    etagged((status, content_type, json).into_response(), revision)
}

fn etagged(mut response: Response, revision: u64) -> Response {
    response.headers_mut().insert(header::ETAG, HeaderValue::from(revision));
    response
}

/// Whether the request prefers `return=minimal` (RFC 7240): a write then answers with its
/// status and the new revision in `ETag`, without the body. Preferences are hints, so an
/// unknown or malformed one is ignored, as the RFC asks.
pub fn prefers_minimal(headers: &HeaderMap) -> bool {
    headers
        .get_all(HEADER_PREFER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|pref| pref.split(';').next()?.split_once('='))
        .any(|(name, value)| {
            name.trim().eq_ignore_ascii_case("return") && value.trim().trim_matches('"').eq_ignore_ascii_case("minimal")
        })
}

const HEADER_PREFER: &str = "prefer";

/// A write's answer under `Prefer: return=minimal`: `204` for a change (`201` for a creation)
/// with the revision in `ETag`, and `Preference-Applied` saying the body was left out.
pub fn minimal(status: StatusCode, revision: u64) -> Response {
    let status = if status == StatusCode::OK { StatusCode::NO_CONTENT } else { status };
    etagged(minimal_applied(status.into_response()), revision)
}

/// Says that a write's answer was made minimal, as asked.
pub fn minimal_applied(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(HeaderName::from_static("preference-applied"), HeaderValue::from_static("return=minimal"));
    response
}

/// The revision an `If-Match` header names, bare or quoted (`7`, `"7"`, `W/"7"`); `Err` holds
/// the raw value when it names none.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, String> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    revision_of_etag(raw).map(Some).ok_or_else(|| raw.to_owned())
}

/// Reads a request's whole body (up to `limit` bytes) before any handler or extractor runs.
///
/// A request refused early (bad credentials, a malformed header) would otherwise be answered
/// with its body unread, and the server would then drop the kept-alive connection without
/// saying so: a client that pools connections fails its next call. A body over the limit gets
/// `too_large` with `Connection: close`, as it cannot be drained cheaply.
pub async fn read_body_first(
    req: axum::extract::Request,
    next: axum::middleware::Next,
    limit: usize,
    too_large: impl FnOnce() -> Response,
) -> Response {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Err(_) => {
            let mut response = too_large();
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_minimal_return_is_found_among_preferences_and_nothing_else_is_taken_for_it() {
        let prefers = |values: &[&'static str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("prefer", HeaderValue::from_static(v));
            }
            prefers_minimal(&h)
        };
        for yes in [
            &["return=minimal"][..],
            &["Return = \"MINIMAL\""],
            &["respond-async, return=minimal; x=1"],
            &["wait=5", "return=minimal"],
        ] {
            assert!(prefers(yes), "{yes:?}");
        }
        for no in [
            &[][..],
            &["return=representation"],
            &["return=minimalist"],
            &["minimal"],
            &["x-return=minimal"],
            &["return"],
            &["wait=5; return=minimal"],
        ] {
            assert!(!prefers(no), "{no:?}");
        }
    }

    #[test]
    fn origin_prefers_forwarded_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(origin(&h), None);
        h.insert("host", HeaderValue::from_static("127.0.0.1:7700"));
        assert_eq!(origin(&h).as_deref(), Some("http://127.0.0.1:7700"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https, http"));
        h.insert("x-forwarded-host", HeaderValue::from_static("sync.example.com"));
        assert_eq!(origin(&h).as_deref(), Some("https://sync.example.com"));
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let v = STANDARD.encode("AC1:sec:ret");
        assert_eq!(decode_basic(&v), Some(("AC1".into(), "sec:ret".into())));
        assert_eq!(decode_basic("%%%"), None);
        assert_eq!(decode_basic(&STANDARD.encode("nocolon")), None);
    }
}
