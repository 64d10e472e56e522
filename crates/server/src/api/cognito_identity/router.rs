//! `POST /` → the operation `X-Amz-Target` names, and the OpenID discovery documents.
//!
//! Every request goes the same way: target, content type, signature (for the operations the
//! model signs), body, the model's constraints, then the operation. Whatever fails is answered
//! in the awsJson1.1 error format, with `x-amzn-RequestId` on every response.

use super::error::{PROTOCOL, from_auth, serialization, unknown_operation, unsupported};
use super::{developer, identities, openid, pools, tags};
use crate::api::aws::error::{AwsError, AwsResult, REQUEST_ID, new_request_id};
use crate::api::aws::keys::EngineKeys;
use crate::api::aws::model::{self, Operation};
use crate::api::aws::sigv4::{self, SigV4Settings};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::sync::{Arc, LazyLock};
use tracing::Instrument;

/// Largest request body: ten logins of up to 50,000 characters each fit with room to spare.
pub const BODY_LIMIT: usize = 1024 * 1024;

static SIGV4: LazyLock<SigV4Settings> = LazyLock::new(|| SigV4Settings::new("cognito-identity"));

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/",
            post(dispatch)
                // Other methods on `/` stay the plain not-found they were before this face.
                .fallback(crate::api::native::error::route_not_found)
                .layer(axum::middleware::from_fn(read_body_first)),
        )
        .route("/.well-known/jwks.json", get(openid::jwks))
        .route("/.well-known/openid-configuration", get(openid::configuration))
}

/// The whole (bounded) body is read before anything can refuse the request (see
/// [`crate::api::http::read_body_first`]).
async fn read_body_first(req: Request, next: axum::middleware::Next) -> Response {
    crate::api::http::read_body_first(req, next, BODY_LIMIT, || {
        AwsError::new(
            "RequestEntityTooLargeException",
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than {BODY_LIMIT} bytes."),
        )
        .into_response_for(PROTOCOL, &new_request_id())
    })
    .await
}

async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let request_id = new_request_id();
    let target = request.headers().get("x-amz-target").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let operation = target.as_deref().and_then(|t| model::cognito_identity().operation_by_target(t));
    let span = tracing::info_span!(
        "cognito_identity",
        operation = operation.map_or("unknown", |op| op.name.as_str()),
        request_id = %request_id,
    );
    let result = async {
        let Some(operation) = operation else {
            return Err(unknown_operation(target.as_deref()));
        };
        handle(&state, operation, request).await
    }
    .instrument(span.clone())
    .await;
    match result {
        Ok(body) => {
            let mut response = (StatusCode::OK, body.to_string()).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROTOCOL.content_type()));
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                headers.insert(REQUEST_ID, v);
            }
            response
        }
        Err(error) => {
            span.in_scope(|| tracing::debug!(code = %error.code, status = %error.status, "refused"));
            error.into_response_for(PROTOCOL, &request_id)
        }
    }
}

async fn handle(state: &AppState, operation: &Operation, request: Request) -> AwsResult<Value> {
    let (parts, body) = request.into_parts();
    check_content_type(&parts.headers)?;
    // Already read and bounded by `read_body_first`.
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|e| serialization(e.to_string()))?;
    let engine = &state.engine;

    // Unsigned operations ignore any signature they carry, as AWS does: the Mobile SDKs call
    // them before they hold credentials.
    let principal = if operation.signed {
        let signed = sigv4::signed_request(&parts, &bytes);
        let verified = sigv4::verify(&SIGV4, &signed, time::OffsetDateTime::now_utc(), &EngineKeys(engine))
            .await
            .map_err(|e| from_auth(&e))?;
        Some(verified.principal)
    } else {
        None
    };

    let body = parse_body(&bytes)?;
    model::cognito_identity().validate(operation, &body).map_err(|v| v.to_aws_error())?;

    match (operation.name.as_str(), principal.as_ref()) {
        ("GetId", _) => identities::get_id(engine, body).await,
        ("GetCredentialsForIdentity", _) => identities::get_credentials(engine, body).await,
        ("GetOpenIdToken", _) => identities::get_open_id_token(engine, body).await,
        ("CreateIdentityPool", Some(p)) => pools::create(engine, p, body).await,
        ("DescribeIdentityPool", Some(p)) => pools::describe(engine, p, body).await,
        ("ListIdentityPools", Some(p)) => pools::list(engine, p, body).await,
        ("UpdateIdentityPool", Some(p)) => pools::update(engine, p, body).await,
        ("DeleteIdentityPool", Some(p)) => pools::delete(engine, p, body).await,
        ("ListIdentities", Some(p)) => identities::list(engine, p, body).await,
        ("DescribeIdentity", Some(p)) => identities::describe(engine, p, body).await,
        ("DeleteIdentities", Some(p)) => identities::delete(engine, p, body).await,
        ("GetOpenIdTokenForDeveloperIdentity", Some(p)) => developer::open_id_token(engine, p, body).await,
        ("LookupDeveloperIdentity", Some(p)) => developer::lookup(engine, p, body).await,
        ("MergeDeveloperIdentities", Some(p)) => developer::merge(engine, p, body).await,
        ("UnlinkDeveloperIdentity", Some(p)) => developer::unlink(engine, p, body).await,
        ("ListTagsForResource", Some(p)) => tags::list(engine, p, body).await,
        ("TagResource", Some(p)) => tags::tag(engine, p, body).await,
        ("UntagResource", Some(p)) => tags::untag(engine, p, body).await,
        (other, _) => Err(unsupported(other)),
    }
}

/// awsJson bodies travel as `application/x-amz-json-1.1` (1.0 is accepted too: same encoding).
fn check_content_type(headers: &HeaderMap) -> AwsResult<()> {
    let value = headers.get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let media = value.as_deref().and_then(|v| v.split(';').next()).map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/x-amz-json-1.1" | "application/x-amz-json-1.0") => Ok(()),
        _ => Err(serialization(format!(
            "Unsupported Content-Type '{}': expected application/x-amz-json-1.1.",
            value.unwrap_or_default()
        ))),
    }
}

/// The body as a JSON object; an empty body is an empty input.
fn parse_body(bytes: &[u8]) -> AwsResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(serialization("Start of structure or map expected: the body must be a JSON object.")),
        Err(e) => Err(serialization(format!("The body is not valid JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_aws_json_media_types_are_accepted() {
        let mut h = HeaderMap::new();
        assert_eq!(check_content_type(&h).expect_err("missing").code, "SerializationException");
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1; charset=utf-8"));
        assert!(check_content_type(&h).is_ok());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        assert!(check_content_type(&h).is_err());
    }

    #[test]
    fn bodies_must_be_objects() {
        assert_eq!(parse_body(b"").expect("empty"), serde_json::json!({}));
        assert_eq!(parse_body(b"[1]").expect_err("array").code, "SerializationException");
        assert_eq!(parse_body(b"{").expect_err("broken").code, "SerializationException");
    }
}
