//! AWS's error wire formats. A face builds an `AwsError` (code, status, message) and renders it
//! for its protocol:
//!
//! - rest-json (Cognito Sync): the code travels in `x-amzn-ErrorType`, in the Coral form real
//!   Cognito Sync sends (`ResourceConflictException:http://internal.amazon.com/coral/com.amazonaws.cognito.sync.model/`;
//!   clients keep what precedes the `:`). The body is `{"__type": code, "message": …}`: the
//!   shapes' one member is `message`, and `__type` lets a client that ignores the header (or a
//!   proxy that drops it) still name the error.
//! - awsJson1.1 (Cognito Identity): the body `{"__type": code, "message": …}` names it; the
//!   header carries the bare code too, which the smithy-based SDKs read first.
//!
//! Every response carries `x-amzn-RequestId` (botocore's `ResponseMetadata.RequestId`).

use super::sigv4::AwsAuthError;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
pub const ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");

/// How a face's errors travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// restJson1, with the Coral namespace that follows the code in `x-amzn-ErrorType`.
    RestJson { coral_namespace: &'static str },
    /// awsJson1.1 (`X-Amz-Target` operations on `POST /`).
    AwsJson11,
}

impl Protocol {
    pub const COGNITO_SYNC: Protocol = Protocol::RestJson { coral_namespace: "com.amazonaws.cognito.sync.model" };
    pub const COGNITO_IDENTITY: Protocol = Protocol::AwsJson11;

    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::RestJson { .. } => "application/json",
            Protocol::AwsJson11 => "application/x-amz-json-1.1",
        }
    }

    /// The `x-amzn-ErrorType` value for `code`.
    pub fn error_type(self, code: &str) -> String {
        match self {
            Protocol::RestJson { coral_namespace } => {
                format!("{code}:http://internal.amazon.com/coral/{coral_namespace}/")
            }
            Protocol::AwsJson11 => code.to_owned(),
        }
    }
}

/// An error leaving an AWS face.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct AwsError {
    /// The error shape's name, e.g. `ResourceConflictException`.
    pub code: Cow<'static, str>,
    pub status: StatusCode,
    pub message: String,
}

pub type AwsResult<T> = Result<T, AwsError>;

impl AwsError {
    pub fn new(code: impl Into<Cow<'static, str>>, status: StatusCode, message: impl Into<String>) -> Self {
        AwsError { code: code.into(), status, message: message.into() }
    }

    /// A parameter failed the model's constraints, or a value the service cannot use.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", StatusCode::BAD_REQUEST, message)
    }

    /// Both services model `InternalErrorException` as their one server fault.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalErrorException", StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// A signing failure, with the status AWS's front ends give it: 403 on rest-json services,
    /// 400 on awsJson ones (as DynamoDB, Kinesis and Cognito user pools answer).
    pub fn from_auth(error: &AwsAuthError, protocol: Protocol) -> Self {
        let status = match (error, protocol) {
            (AwsAuthError::Internal(_), _) => StatusCode::INTERNAL_SERVER_ERROR,
            (_, Protocol::RestJson { .. }) => StatusCode::FORBIDDEN,
            (_, Protocol::AwsJson11) => StatusCode::BAD_REQUEST,
        };
        if status.is_server_error() {
            tracing::warn!(%error, "signing key lookup failed");
        }
        Self::new(error.code(), status, error.to_string())
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "__type": self.code, "message": self.message })
    }

    /// The response for `protocol`, stamped with the request's id.
    pub fn into_response_for(self, protocol: Protocol, request_id: &str) -> Response {
        let body = self.body().to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(protocol.content_type()));
        if let Ok(v) = HeaderValue::from_str(&protocol.error_type(&self.code)) {
            headers.insert(ERROR_TYPE, v);
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert(REQUEST_ID, v);
        }
        response
    }
}

/// A fresh request id, as AWS issues them (a UUID).
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    async fn parts(response: Response) -> (StatusCode, HeaderMap, serde_json::Value) {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
        (parts.status, parts.headers, serde_json::from_slice(&bytes).expect("json body"))
    }

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// botocore's RestJSONParser: `x-amzn-ErrorType` up to `:` wins, then body `code`/`Code`,
    /// then `__type` after `#`, else the status as a string (COGNITO_SYNC_API.md §3).
    fn botocore_rest_json_code(status: StatusCode, headers: &HeaderMap, body: &serde_json::Value) -> String {
        if let Some(t) = header(headers, "x-amzn-errortype") {
            return t.split(':').next().unwrap_or_default().to_owned();
        }
        for key in ["code", "Code"] {
            if let Some(c) = body[key].as_str() {
                return c.to_owned();
            }
        }
        match body["__type"].as_str() {
            Some(t) => t.rsplit('#').next().unwrap_or_default().to_owned(),
            None => status.as_u16().to_string(),
        }
    }

    /// botocore's JSONParser (awsJson): body `__type` after `#`, else the status.
    fn botocore_json_code(status: StatusCode, body: &serde_json::Value) -> String {
        match body["__type"].as_str() {
            Some(t) => t.rsplit('#').next().unwrap_or_default().to_owned(),
            None => status.as_u16().to_string(),
        }
    }

    /// aws-smithy's error metadata: the header first, then `code`/`__type`, sanitised by cutting
    /// at `:` and after `#`.
    fn smithy_code(headers: &HeaderMap, body: &serde_json::Value) -> String {
        let raw = header(headers, "x-amzn-errortype")
            .map(str::to_owned)
            .or_else(|| body["code"].as_str().map(str::to_owned))
            .or_else(|| body["__type"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let cut = raw.split(':').next().unwrap_or_default();
        cut.rsplit('#').next().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn rest_json_errors_carry_the_coral_error_type_and_a_message() {
        let error = AwsError::new(
            "ResourceConflictException",
            StatusCode::CONFLICT,
            "Current SyncCount for: color is: 1 not: 0",
        );
        let (status, headers, body) = parts(error.into_response_for(Protocol::COGNITO_SYNC, "req-1")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            header(&headers, "x-amzn-ErrorType"),
            Some("ResourceConflictException:http://internal.amazon.com/coral/com.amazonaws.cognito.sync.model/")
        );
        assert_eq!(header(&headers, "x-amzn-RequestId"), Some("req-1"));
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
        assert_eq!(body["message"], "Current SyncCount for: color is: 1 not: 0");
        assert_eq!(botocore_rest_json_code(status, &headers, &body), "ResourceConflictException");
        assert_eq!(smithy_code(&headers, &body), "ResourceConflictException");
        // A proxy that drops the header still leaves the code in the body.
        assert_eq!(botocore_rest_json_code(status, &HeaderMap::new(), &body), "ResourceConflictException");
    }

    #[tokio::test]
    async fn aws_json_errors_name_the_type_in_the_body() {
        let error = AwsError::new("NotAuthorizedException", StatusCode::BAD_REQUEST, "Logins don't match.");
        let (status, headers, body) = parts(error.into_response_for(Protocol::COGNITO_IDENTITY, "req-2")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, serde_json::json!({"__type": "NotAuthorizedException", "message": "Logins don't match."}));
        assert_eq!(header(&headers, "content-type"), Some("application/x-amz-json-1.1"));
        assert_eq!(header(&headers, "x-amzn-RequestId"), Some("req-2"));
        assert_eq!(botocore_json_code(status, &body), "NotAuthorizedException");
        assert_eq!(smithy_code(&headers, &body), "NotAuthorizedException");
    }

    #[test]
    fn signing_failures_take_the_protocol_s_status() {
        let e = AwsError::from_auth(&AwsAuthError::UnrecognizedClient, Protocol::COGNITO_SYNC);
        assert_eq!((e.code.as_ref(), e.status), ("UnrecognizedClientException", StatusCode::FORBIDDEN));
        assert_eq!(e.message, "The security token included in the request is invalid.");
        let e = AwsError::from_auth(&AwsAuthError::MissingAuthenticationToken, Protocol::COGNITO_IDENTITY);
        assert_eq!((e.code.as_ref(), e.status), ("MissingAuthenticationTokenException", StatusCode::BAD_REQUEST));
        let e = AwsError::from_auth(&AwsAuthError::Internal("down".into()), Protocol::COGNITO_SYNC);
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn request_ids_are_uuids() {
        let id = new_request_id();
        assert!(uuid::Uuid::parse_str(&id).is_ok());
        assert_ne!(id, new_request_id());
    }
}
