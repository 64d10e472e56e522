//! Core and signing errors as Cognito Identity reports them: the model's error shapes, with the
//! status the model gives each, rendered as awsJson1.1 (`{"__type", "message"}`).

use crate::api::aws::error::{AwsError, Protocol};
use crate::api::aws::model;
use crate::api::aws::sigv4::AwsAuthError;
use axum::http::StatusCode;
use ferrosync_core::CoreError;
use ferrosync_core::error::NotFoundKind;
use ferrosync_core::store::StoreError;

pub const PROTOCOL: Protocol = Protocol::COGNITO_IDENTITY;

/// A modeled error, with the status the model gives its shape.
pub fn modeled(code: &'static str, message: impl Into<String>) -> AwsError {
    let status = model::cognito_identity()
        .error_status(code)
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    AwsError::new(code, status, message)
}

/// A missing or unknown `X-Amz-Target`, worded as AWS's front end answers it.
pub fn unknown_operation(target: Option<&str>) -> AwsError {
    let message = match target {
        Some(t) => format!("Operation '{t}' is not an operation of AWSCognitoIdentityService."),
        None => "The X-Amz-Target header is missing.".to_owned(),
    };
    AwsError::new("UnknownOperationException", StatusCode::BAD_REQUEST, message)
}

/// A body that is not the JSON object of the operation's input, or sent as another media type.
pub fn serialization(message: impl Into<String>) -> AwsError {
    AwsError::new("SerializationException", StatusCode::BAD_REQUEST, message)
}

/// A model operation this server has nothing behind (IAM roles and role mappings, principal
/// tags, classic-flow unlinking). A client error, so that SDKs do not retry it.
pub fn unsupported(operation: &str) -> AwsError {
    AwsError::new(
        "UnsupportedOperationException",
        StatusCode::BAD_REQUEST,
        format!("{operation} is not supported by this server."),
    )
}

pub fn from_auth(error: &AwsAuthError) -> AwsError {
    AwsError::from_auth(error, PROTOCOL)
}

/// The one mapping from the engine's errors to the model's error shapes.
pub fn from_core(error: CoreError) -> AwsError {
    match error {
        CoreError::InvalidField { .. }
        | CoreError::TooLarge { .. }
        | CoreError::InvalidSid(_)
        | CoreError::InvalidPageToken
        | CoreError::InvalidParameter(_) => modeled("InvalidParameterException", error.to_string()),
        CoreError::NotFound { what, id } => modeled("ResourceNotFoundException", not_found_message(what, &id)),
        CoreError::NotAuthorized(_)
        | CoreError::Forbidden(_)
        | CoreError::Unauthenticated
        | CoreError::InvalidCredentials
        | CoreError::InvalidAccessToken(_)
        | CoreError::AccessTokenExpired => modeled("NotAuthorizedException", not_authorized_message(&error)),
        CoreError::ResourceConflict(m) => modeled("ResourceConflictException", m),
        CoreError::AlreadyExists { .. } | CoreError::ItemAlreadyExists { .. } => {
            modeled("ResourceConflictException", error.to_string())
        }
        CoreError::LimitExceeded(m) => modeled("LimitExceededException", m),
        CoreError::DeveloperUserAlreadyRegistered(m) => modeled("DeveloperUserAlreadyRegisteredException", m),
        CoreError::InvalidConfiguration(m) => modeled("InvalidIdentityPoolConfigurationException", m),
        CoreError::Store(StoreError::Unavailable(m)) => {
            tracing::warn!(error = %m, "store unavailable");
            // Throttling is what SDKs retry with backoff, which is what an unavailable store needs.
            modeled("TooManyRequestsException", "The service is temporarily unavailable. Retry later.")
        }
        other => {
            tracing::error!(error = %other, "unexpected error on the Cognito Identity face");
            AwsError::internal("An internal error occurred.")
        }
    }
}

/// AWS's wording: `IdentityPool 'us-east-1:…' not found.`
fn not_found_message(what: NotFoundKind, id: &str) -> String {
    match what {
        NotFoundKind::IdentityPool => format!("IdentityPool '{id}' not found."),
        NotFoundKind::CognitoIdentity => format!("Identity '{id}' not found."),
        NotFoundKind::DeveloperUser => format!("DeveloperUserIdentifier '{id}' not found."),
        other => format!("{other} '{id}' not found."),
    }
}

fn not_authorized_message(error: &CoreError) -> String {
    match error {
        CoreError::NotAuthorized(m) | CoreError::Forbidden(m) => m.clone(),
        CoreError::AccessTokenExpired => "Token is expired.".to_owned(),
        _ => "Invalid login token.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_take_the_model_s_shapes_and_statuses() {
        let e = from_core(CoreError::not_found(NotFoundKind::IdentityPool, "us-east-1:0"));
        assert_eq!((e.code.as_ref(), e.status), ("ResourceNotFoundException", StatusCode::BAD_REQUEST));
        assert_eq!(e.message, "IdentityPool 'us-east-1:0' not found.");
        let e = from_core(CoreError::NotAuthorized("no".into()));
        assert_eq!((e.code.as_ref(), e.message.as_str()), ("NotAuthorizedException", "no"));
        let e = from_core(CoreError::DeveloperUserAlreadyRegistered("taken".into()));
        assert_eq!(e.code, "DeveloperUserAlreadyRegisteredException");
        let e = from_core(CoreError::invalid("MaxResults", "bad"));
        assert_eq!(e.code, "InvalidParameterException");
        let e = from_core(CoreError::Store(StoreError::Backend("boom".into())));
        assert_eq!((e.code.as_ref(), e.status), ("InternalErrorException", StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(e.message, "An internal error occurred.", "internals stay in the log");
    }
}
