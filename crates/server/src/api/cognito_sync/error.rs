//! Core and signing errors as Cognito Sync reports them: the model's error shapes, with the
//! status the model gives each, rendered by `AwsError::into_response_for`.

use crate::api::aws::error::{AwsError, Protocol};
use crate::api::aws::model;
use crate::api::aws::sigv4::AwsAuthError;
use axum::http::StatusCode;
use axum::response::Response;
use ferrosync_core::CoreError;
use ferrosync_core::store::StoreError;

pub const INVALID_PARAMETER: &str = "InvalidParameterException";
pub const NOT_AUTHORIZED: &str = "NotAuthorizedException";
pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
pub const RESOURCE_CONFLICT: &str = "ResourceConflictException";
pub const LIMIT_EXCEEDED: &str = "LimitExceededException";
pub const INVALID_CONFIGURATION: &str = "InvalidConfigurationException";
pub const DUPLICATE_REQUEST: &str = "DuplicateRequestException";
pub const ALREADY_STREAMED: &str = "AlreadyStreamedException";
pub const TOO_MANY_REQUESTS: &str = "TooManyRequestsException";
pub const INTERNAL_ERROR: &str = "InternalErrorException";
pub const INVALID_LAMBDA_OUTPUT: &str = "InvalidLambdaFunctionOutputException";
pub const LAMBDA_THROTTLED: &str = "LambdaThrottledException";
/// Not a model shape: Cognito's answer when the sync trigger takes longer than its limit.
pub const LAMBDA_SOCKET_TIMEOUT: &str = "LambdaSocketTimeoutException";
/// Not a model shape: what AWS front ends answer for a path no operation has.
pub const UNKNOWN_OPERATION: &str = "UnknownOperationException";

/// A modeled error of Cognito Sync, with the status its shape declares.
pub fn modeled(code: &'static str, message: impl Into<String>) -> AwsError {
    let status = model::cognito_sync()
        .error_status(code)
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    AwsError::new(code, status, message)
}

/// The one translation of engine errors to Cognito Sync's error shapes.
pub fn from_core(error: CoreError) -> AwsError {
    let message = error.to_string();
    match error {
        CoreError::InvalidField { .. }
        | CoreError::InvalidParameter(_)
        | CoreError::InvalidSid(_)
        | CoreError::InvalidPageToken
        | CoreError::InvalidIfMatch(_)
        | CoreError::InvalidSinceToken(_)
        | CoreError::ForeignSinceToken
        | CoreError::ResyncRequired
        | CoreError::InvalidQuery { .. }
        | CoreError::TooLarge { .. } => modeled(INVALID_PARAMETER, message),
        CoreError::NotAuthorized(_)
        | CoreError::Forbidden(_)
        | CoreError::Unauthenticated
        | CoreError::InvalidCredentials
        | CoreError::InvalidAccessToken(_)
        | CoreError::AccessTokenExpired => modeled(NOT_AUTHORIZED, message),
        CoreError::NotFound { .. } => modeled(RESOURCE_NOT_FOUND, message),
        CoreError::ResourceConflict(_)
        | CoreError::AlreadyExists { .. }
        | CoreError::ItemAlreadyExists { .. }
        | CoreError::RevisionMismatch { .. }
        | CoreError::Proxy { .. }
        | CoreError::DeveloperUserAlreadyRegistered(_) => modeled(RESOURCE_CONFLICT, message),
        CoreError::LimitExceeded(_) => modeled(LIMIT_EXCEEDED, message),
        CoreError::InvalidConfiguration(_) => modeled(INVALID_CONFIGURATION, message),
        CoreError::DuplicateRequest(_) => modeled(DUPLICATE_REQUEST, message),
        CoreError::AlreadyStreamed(_) => modeled(ALREADY_STREAMED, message),
        // The one retry-later error the model has: the SDKs back off and retry it.
        CoreError::Store(StoreError::Unavailable(_)) => {
            tracing::warn!(error = %message, "store unavailable");
            modeled(TOO_MANY_REQUESTS, "The service is temporarily unavailable; retry the request later.")
        }
        CoreError::Store(_) => {
            tracing::error!(error = %message, "store failure");
            modeled(INTERNAL_ERROR, "An internal error occurred; the request was not completed.")
        }
    }
}

/// A signing failure: 403 on this rest-json service (500 when the key lookup itself failed).
pub fn from_auth(error: &AwsAuthError) -> AwsError {
    AwsError::from_auth(error, Protocol::COGNITO_SYNC)
}

pub fn unknown_operation(method: &str, path: &str) -> AwsError {
    AwsError::new(UNKNOWN_OPERATION, StatusCode::NOT_FOUND, format!("No Cognito Sync operation is {method} {path}"))
}

pub fn respond(error: AwsError, request_id: &str) -> Response {
    error.into_response_for(Protocol::COGNITO_SYNC, request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::error::NotFoundKind;

    #[test]
    fn core_errors_take_the_model_s_shapes_and_statuses() {
        let cases = [
            (CoreError::invalid("DatasetName", "bad"), INVALID_PARAMETER, 400),
            (CoreError::NotAuthorized("no".into()), NOT_AUTHORIZED, 403),
            (CoreError::Forbidden("no".into()), NOT_AUTHORIZED, 403),
            (CoreError::not_found(NotFoundKind::Dataset, "d"), RESOURCE_NOT_FOUND, 404),
            (CoreError::ResourceConflict("stale".into()), RESOURCE_CONFLICT, 409),
            (CoreError::LimitExceeded("full".into()), LIMIT_EXCEEDED, 400),
            (CoreError::InvalidConfiguration("no push".into()), INVALID_CONFIGURATION, 400),
            (CoreError::DuplicateRequest("running".into()), DUPLICATE_REQUEST, 400),
            (CoreError::AlreadyStreamed("recent".into()), ALREADY_STREAMED, 400),
            (CoreError::Store(StoreError::Unavailable("down".into())), TOO_MANY_REQUESTS, 429),
            (CoreError::Store(StoreError::Backend("boom".into())), INTERNAL_ERROR, 500),
        ];
        for (error, code, status) in cases {
            let e = from_core(error);
            assert_eq!((e.code.as_ref(), e.status.as_u16()), (code, status));
        }
    }

    #[test]
    fn internal_details_stay_in_the_log() {
        let e = from_core(CoreError::Store(StoreError::Backend("password=secret".into())));
        assert!(!e.message.contains("secret"));
    }
}
