//! Matrix errors: `{"errcode": "M_…", "error": "…"}` with the spec's status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrosync_core::error::CoreError;
use serde_json::{Map, Value, json};

#[derive(Debug)]
pub struct MatrixError {
    pub status: StatusCode,
    pub errcode: &'static str,
    pub error: String,
    /// More members of the body (`soft_logout`, UIA's `flows`, …).
    pub extra: Map<String, Value>,
}

pub type MatrixResult<T> = Result<T, MatrixError>;

impl MatrixError {
    pub fn new(status: StatusCode, errcode: &'static str, error: impl Into<String>) -> Self {
        MatrixError { status, errcode, error: error.into(), extra: Map::new() }
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    pub fn forbidden(error: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", error)
    }

    pub fn bad_json(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", error)
    }

    pub fn missing_param(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_MISSING_PARAM", error)
    }

    pub fn unknown_token() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN", "Unknown or expired access token")
            .with("soft_logout", Value::Bool(false))
    }

    pub fn missing_token() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN", "Missing access token")
    }

    pub fn unrecognized(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", error)
    }
}

impl IntoResponse for MatrixError {
    fn into_response(self) -> Response {
        let mut body = self.extra;
        body.insert("errcode".into(), json!(self.errcode));
        body.insert("error".into(), json!(self.error));
        (self.status, axum::Json(Value::Object(body))).into_response()
    }
}

/// The engine's errors in Matrix's words.
pub fn from_core(e: CoreError) -> MatrixError {
    match e {
        CoreError::InvalidField { field: "username", message } => {
            MatrixError::new(StatusCode::BAD_REQUEST, "M_INVALID_USERNAME", format!("username {message}"))
        }
        CoreError::InvalidField { field, message } => {
            MatrixError::new(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", format!("{field} {message}"))
        }
        CoreError::NotAuthorized(m) | CoreError::Forbidden(m) => MatrixError::forbidden(m),
        CoreError::AlreadyExists { what: "user", .. } => {
            MatrixError::new(StatusCode::BAD_REQUEST, "M_USER_IN_USE", "User ID already taken.")
        }
        CoreError::NotFound { what, id } => {
            MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", format!("{what} '{id}' was not found"))
        }
        CoreError::Store(_) => {
            tracing::error!(error = %e, "a Matrix request failed in the store");
            MatrixError::new(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", "Internal server error")
        }
        other => MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", other.to_string()),
    }
}

/// Unknown endpoints under `/_matrix`: 404 (or 405 for a known path) with `M_UNRECOGNIZED`.
pub async fn unrecognized() -> MatrixError {
    MatrixError::unrecognized("Unrecognized request")
}
