//! Cognito Sync's one entry point: every `/identitypools…` request goes to [`dispatch`], which
//! finds the operation through the model's `requestUri` templates (so paths match exactly as
//! the SDKs build them), verifies the signature, binds and validates the input, and hands it to
//! the operation's handler.

use super::error::{self, INVALID_PARAMETER, LIMIT_EXCEEDED, from_auth, modeled, respond, unknown_operation};
use super::trigger::SyncTrigger;
use super::{datasets, pools, push, records, usage};
use crate::api::aws::error::{AwsError, AwsResult, Protocol, REQUEST_ID, new_request_id};
use crate::api::aws::keys::EngineKeys;
use crate::api::aws::model::{self, Operation};
use crate::api::aws::sigv4::{self, SigV4Settings};
use crate::state::AppState;
use axum::Router;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use ferrosync_core::Engine;
use ferrosync_core::auth::Principal;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::{Arc, LazyLock};
use time::OffsetDateTime;
use tracing::Instrument;

/// Request bodies above this are refused unread. A dataset holds at most 1 MiB, and one
/// UpdateRecords may write a whole dataset, JSON escaping included.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

static SIGV4: LazyLock<SigV4Settings> = LazyLock::new(|| SigV4Settings::new("cognito-sync"));

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/identitypools", any(dispatch))
        .route("/identitypools/{*rest}", any(dispatch))
        .layer(axum::middleware::from_fn(read_body_first))
}

/// The whole (bounded) body is read before the signature is checked (see
/// [`crate::api::http::read_body_first`]).
async fn read_body_first(req: Request, next: axum::middleware::Next) -> Response {
    crate::api::http::read_body_first(req, next, BODY_LIMIT, || {
        let message = format!("The request body is larger than the {} MiB limit", BODY_LIMIT / (1024 * 1024));
        respond(modeled(LIMIT_EXCEEDED, message), &new_request_id())
    })
    .await
}

/// What an operation's handler works with: the engine, the caller and the validated input.
pub struct Call<'a> {
    pub engine: &'a Engine,
    pub sync_trigger: &'a SyncTrigger,
    pub principal: &'a Principal,
    pub input: Value,
}

impl Call<'_> {
    /// The input as the handler's typed view of it. Validation has checked every member's type
    /// already; what fails here is a value the model allows but the engine's types cannot hold.
    pub fn input<T: DeserializeOwned>(&self) -> AwsResult<T> {
        serde_json::from_value(self.input.clone()).map_err(|e| modeled(INVALID_PARAMETER, e.to_string()))
    }
}

/// Counts the model types as `Long`/`Integer` that the engine counts as unsigned.
pub fn non_negative(field: &str, n: i64) -> AwsResult<u64> {
    u64::try_from(n).map_err(|_| {
        modeled(
            INVALID_PARAMETER,
            format!("1 validation error detected: Value '{n}' at '{field}' failed to satisfy constraint: Member must have value greater than or equal to 0"),
        )
    })
}

/// A page size from `MaxResults`: the model sets no bound, so anything from 1 up is accepted.
pub fn max_results(n: Option<i64>) -> AwsResult<Option<u32>> {
    n.map(|n| match u32::try_from(n) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(modeled(
            INVALID_PARAMETER,
            format!("1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        )),
    })
    .transpose()
}

pub async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let request_id = new_request_id();
    let span = tracing::info_span!("cognito_sync", operation = tracing::field::Empty, request_id = %request_id);
    let outcome = handle(&state, request, &span).instrument(span.clone()).await;
    let _entered = span.enter();
    match outcome {
        Ok(body) => {
            tracing::debug!("answered");
            success(body, &request_id)
        }
        Err(e) => {
            tracing::debug!(code = %e.code, status = e.status.as_u16(), "refused");
            respond(e, &request_id)
        }
    }
}

async fn handle(state: &AppState, request: Request, span: &tracing::Span) -> AwsResult<Value> {
    let engine = &state.engine;
    let (parts, body) = request.into_parts();
    // Already read in full by `read_body_first`: this only takes the buffered bytes.
    let body = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|e| modeled(INVALID_PARAMETER, e.to_string()))?;
    let uri = parts.extensions.get::<OriginalUri>().map_or(&parts.uri, |original| &original.0);
    let (operation, labels) = model::cognito_sync()
        .route(parts.method.as_str(), uri.path())
        .ok_or_else(|| unknown_operation(parts.method.as_str(), uri.path()))?;
    span.record("operation", operation.name.as_str());

    let principal = authenticate(engine, operation, &parts, &body).await?;

    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default();
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| modeled(INVALID_PARAMETER, format!("The request body is not valid JSON: {e}")))?;
        Some(value)
    };
    let model = model::cognito_sync();
    let input = model.bind_rest_json(operation, &labels, &query, &parts.headers, body.as_ref());
    model.validate(operation, &input).map_err(|v| v.to_aws_error())?;

    let call = Call { engine, sync_trigger: &state.sync_trigger, principal: &principal, input };
    match operation.name.as_str() {
        "BulkPublish" => pools::bulk_publish(&call).await,
        "DeleteDataset" => datasets::delete(&call).await,
        "DescribeDataset" => datasets::describe(&call).await,
        "DescribeIdentityPoolUsage" => usage::describe_identity_pool_usage(&call).await,
        "DescribeIdentityUsage" => usage::describe_identity_usage(&call).await,
        "GetBulkPublishDetails" => pools::bulk_publish_details(&call).await,
        "GetCognitoEvents" => pools::cognito_events(&call).await,
        "GetIdentityPoolConfiguration" => pools::configuration(&call).await,
        "ListDatasets" => datasets::list(&call).await,
        "ListIdentityPoolUsage" => usage::list_identity_pool_usage(&call).await,
        "ListRecords" => records::list(&call).await,
        "RegisterDevice" => push::register_device(&call).await,
        "SetCognitoEvents" => pools::set_cognito_events(&call).await,
        "SetIdentityPoolConfiguration" => pools::set_configuration(&call).await,
        "SubscribeToDataset" => push::subscribe(&call).await,
        "UnsubscribeFromDataset" => push::unsubscribe(&call).await,
        "UpdateRecords" => records::update(&call).await,
        other => {
            // The model and this table are both fixed at build time; a test keeps them in step.
            tracing::error!(operation = other, "a Cognito Sync operation without a handler");
            Err(AwsError::internal(format!("{other} is not implemented")))
        }
    }
}

/// The caller, from the request's SigV4 signature (every Cognito Sync operation is signed).
async fn authenticate(
    engine: &Engine,
    operation: &Operation,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> AwsResult<Principal> {
    if !operation.signed {
        // Cognito Sync has no unsigned operation; a model that grew one would need a caller
        // here, which an unsigned request cannot name.
        return Err(error::modeled(error::NOT_AUTHORIZED, format!("{} takes no credentials", operation.name)));
    }
    let request = sigv4::signed_request(parts, body);
    let verified = sigv4::verify(&SIGV4, &request, OffsetDateTime::now_utc(), &EngineKeys(engine))
        .await
        .map_err(|e| from_auth(&e))?;
    Ok(verified.principal)
}

fn success(body: Value, request_id: &str) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(Protocol::COGNITO_SYNC.content_type()));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, v);
    }
    response
}

/// Serialises an output view.
pub fn json<T: serde::Serialize>(view: &T) -> AwsResult<Value> {
    serde_json::to_value(view).map_err(|e| AwsError::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handler table above names every operation of the model, all of them signed.
    #[test]
    fn every_operation_has_a_handler_and_is_signed() {
        const HANDLED: [&str; 17] = [
            "BulkPublish",
            "DeleteDataset",
            "DescribeDataset",
            "DescribeIdentityPoolUsage",
            "DescribeIdentityUsage",
            "GetBulkPublishDetails",
            "GetCognitoEvents",
            "GetIdentityPoolConfiguration",
            "ListDatasets",
            "ListIdentityPoolUsage",
            "ListRecords",
            "RegisterDevice",
            "SetCognitoEvents",
            "SetIdentityPoolConfiguration",
            "SubscribeToDataset",
            "UnsubscribeFromDataset",
            "UpdateRecords",
        ];
        let ops: Vec<&Operation> = model::cognito_sync().operations().collect();
        assert_eq!(ops.len(), HANDLED.len());
        for op in ops {
            assert!(HANDLED.contains(&op.name.as_str()), "{} has no handler", op.name);
            assert!(op.signed, "{} is unsigned", op.name);
        }
    }

    #[test]
    fn paths_route_to_their_operations() {
        let m = model::cognito_sync();
        let pool = "us-east-1%3A11111111-2222-3333-4444-555555555555";
        let id = "us-east-1%3Aaaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
        let cases = [
            ("GET", "/identitypools".to_owned(), "ListIdentityPoolUsage"),
            ("GET", format!("/identitypools/{pool}"), "DescribeIdentityPoolUsage"),
            ("POST", format!("/identitypools/{pool}/identity/{id}/device"), "RegisterDevice"),
            ("GET", format!("/identitypools/{pool}/identities/{id}/datasets/settings/records"), "ListRecords"),
            ("POST", format!("/identitypools/{pool}/identities/{id}/datasets/settings"), "UpdateRecords"),
            (
                "DELETE",
                format!("/identitypools/{pool}/identities/{id}/datasets/s/subscriptions/d"),
                "UnsubscribeFromDataset",
            ),
        ];
        for (method, path, name) in cases {
            let (op, labels) = m.route(method, &path).expect(name);
            assert_eq!(op.name, name);
            if let Some(p) = labels.get("IdentityPoolId") {
                assert_eq!(p, "us-east-1:11111111-2222-3333-4444-555555555555");
            }
        }
        assert!(m.route("PUT", "/identitypools").is_none());
        assert!(m.route("GET", "/identitypools/a/b/c/d/e/f/g/h/i").is_none());
    }

    #[test]
    fn counts_and_page_sizes_are_checked() {
        assert_eq!(non_negative("lastSyncCount", 3).ok(), Some(3));
        assert!(non_negative("lastSyncCount", -1).is_err());
        assert_eq!(max_results(None).ok(), Some(None));
        assert_eq!(max_results(Some(1024)).ok(), Some(Some(1024)));
        assert!(max_results(Some(0)).is_err());
        assert!(max_results(Some(-5)).is_err());
    }
}
