//! Core errors to the native wire format: `{code, message, status}` with the code table's
//! numbers.

use super::types::{ItemView, ObjectView};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferrosync_core::error::Current;
use ferrosync_core::{CoreError, ErrorCode};

pub use ferrosync_protocol::ErrorBody;

/// An error leaving the native API.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// See [`ErrorBody::current`].
    pub current: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), current: None }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.code(),
            message: self.message.clone(),
            status: self.code.status(),
            current: self.current.clone(),
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let code = e.code();
        if code.status() >= 500 {
            tracing::warn!(error = %e, "request failed");
        }
        // A conditional write that lost a race is about to be retried: the object or item as
        // the writer found it saves the client the read it would make next, and lets its retry
        // leave as soon as the winner's next write does (a read here would send the loser's
        // answer out after the winner's, and the winner would keep winning).
        // Taken by value once the message is written: no copy of the data it holds.
        let message = e.to_string();
        let current = match e {
            CoreError::RevisionMismatch { current: Some(current), .. } => match *current {
                Current::Object(o) => serde_json::to_value(ObjectView::from(o)).ok(),
                Current::Item(i) => serde_json::to_value(ItemView::from(i)).ok(),
            },
            _ => None,
        };
        ApiError { code, message, current }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"ferrosync\", Bearer"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no route for {}", uri.path()))
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, format!("{method} is not allowed on {}", uri.path()))
}

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(ErrorCode::Internal, "internal error").into_response()
}
