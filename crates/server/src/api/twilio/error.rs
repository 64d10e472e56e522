//! Twilio's REST error body, `{code, message, more_info, status}`, and the one table that turns
//! core errors into Twilio's codes.
//!
//! The body never carries `type` or `title`: with all of `type`, `title`, `status` and `code`
//! twilio-python raises a different exception class than the one Twilio's own API produces.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrosync_core::store::StoreError;
use ferrosync_core::{CoreError, ProxyRule};
use serde::Serialize;

/// What a request acted on, for the codes that differ by resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Document,
    ListItem,
    MapItem,
    Other,
}

/// Twilio's error codes, each with the HTTP status it travels with.
pub mod code {
    pub const INVALID_PARAMETER: (u16, u32) = (400, 20001);
    pub const AUTHENTICATE: (u16, u32) = (401, 20003);
    pub const METHOD_NOT_ALLOWED: (u16, u32) = (405, 20004);
    pub const INVALID_ACCESS_TOKEN: (u16, u32) = (401, 20101);
    pub const ACCESS_TOKEN_EXPIRED: (u16, u32) = (401, 20104);
    pub const FORBIDDEN: (u16, u32) = (403, 20403);
    pub const NOT_FOUND: (u16, u32) = (404, 20404);
    pub const INTERNAL: (u16, u32) = (500, 20500);
    pub const UNAVAILABLE: (u16, u32) = (503, 20503);
    pub const INVALID_IF_MATCH: (u16, u32) = (400, 54003);
    pub const TOO_LARGE: (u16, u32) = (413, 54006);
    pub const INVALID_TTL: (u16, u32) = (400, 54011);
    pub const DOCUMENT_REVISION_MISMATCH: (u16, u32) = (412, 54103);
    pub const LIST_ITEM_REVISION_MISMATCH: (u16, u32) = (412, 54155);
    pub const MAP_ITEM_REVISION_MISMATCH: (u16, u32) = (412, 54205);
    pub const MAP_ITEM_EXISTS: (u16, u32) = (409, 54208);
    pub const INVALID_MAP_ITEM_KEY: (u16, u32) = (400, 54209);
    pub const UNIQUE_NAME_EXISTS: (u16, u32) = (409, 54301);
    // Twilio Proxy.
    pub const PROXY_ALREADY_PARTICIPANT: (u16, u32) = (400, 80103);
    pub const PROXY_NO_NUMBER_AVAILABLE: (u16, u32) = (400, 80203);
    pub const PROXY_IDENTIFIER_IN_USE: (u16, u32) = (400, 80604);
    pub const PROXY_NOT_IN_SERVICE: (u16, u32) = (400, 80605);
    pub const PROXY_SESSION_CLOSED: (u16, u32) = (400, 80607);
    pub const PROXY_INVALID_STATUS: (u16, u32) = (400, 80608);
    pub const PROXY_DUPLICATE_PARTICIPANT: (u16, u32) = (409, 80623);
    pub const PROXY_NON_UNIQUE_SESSION_NAME: (u16, u32) = (409, 80603);
    pub const PROXY_TOO_MANY_PARTICIPANTS: (u16, u32) = (400, 80609);
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: u32,
    pub message: String,
    pub more_info: String,
    pub status: u16,
}

/// An error leaving a Twilio face.
#[derive(Debug)]
pub struct TwilioError {
    pub status: u16,
    pub code: u32,
    pub message: String,
}

pub type TwilioResult<T> = Result<T, TwilioError>;

impl TwilioError {
    pub fn new((status, code): (u16, u32), message: impl Into<String>) -> Self {
        TwilioError { status, code, message: message.into() }
    }

    /// A bad request parameter, named as it travels on the wire.
    pub fn invalid(param: &str, message: impl std::fmt::Display) -> Self {
        Self::new(code::INVALID_PARAMETER, format!("{param}: {message}"))
    }

    pub fn not_found(path: &str) -> Self {
        Self::new(code::NOT_FOUND, format!("The requested resource {path} was not found"))
    }

    /// Translates a core error; `subject` picks the revision-mismatch code.
    pub fn from_core(e: CoreError, subject: Subject) -> Self {
        let message = e.to_string();
        let c = match &e {
            CoreError::InvalidField { field, message } => {
                let c = match *field {
                    "ttl" | "collection_ttl" | "item_ttl" => code::INVALID_TTL,
                    "key" => code::INVALID_MAP_ITEM_KEY,
                    _ => code::INVALID_PARAMETER,
                };
                return Self::new(c, format!("{}: {message}", wire_name(field)));
            }
            CoreError::TooLarge { field, size, limit } => {
                return Self::new(
                    code::TOO_LARGE,
                    format!("{} is too large: {size} bytes, the limit is {limit} bytes", wire_name(field)),
                );
            }
            CoreError::InvalidSid(_) | CoreError::NotFound { .. } => code::NOT_FOUND,
            CoreError::AlreadyExists { .. } => code::UNIQUE_NAME_EXISTS,
            CoreError::ItemAlreadyExists { .. } => code::MAP_ITEM_EXISTS,
            CoreError::RevisionMismatch { .. } => match subject {
                Subject::ListItem => code::LIST_ITEM_REVISION_MISMATCH,
                Subject::MapItem => code::MAP_ITEM_REVISION_MISMATCH,
                Subject::Document | Subject::Other => code::DOCUMENT_REVISION_MISMATCH,
            },
            CoreError::InvalidIfMatch(_) => code::INVALID_IF_MATCH,
            CoreError::InvalidPageToken => return Self::invalid("PageToken", "is not a token this server issued"),
            CoreError::InvalidSinceToken(_) | CoreError::ForeignSinceToken | CoreError::ResyncRequired => {
                code::INVALID_PARAMETER
            }
            CoreError::Unauthenticated | CoreError::InvalidCredentials => code::AUTHENTICATE,
            CoreError::InvalidAccessToken(_) => code::INVALID_ACCESS_TOKEN,
            CoreError::AccessTokenExpired => code::ACCESS_TOKEN_EXPIRED,
            CoreError::Forbidden(_) | CoreError::NotAuthorized(_) => code::FORBIDDEN,
            // Cognito's errors; no Twilio operation meets them.
            CoreError::InvalidParameter(_)
            | CoreError::ResourceConflict(_)
            | CoreError::LimitExceeded(_)
            | CoreError::InvalidConfiguration(_)
            | CoreError::DuplicateRequest(_)
            | CoreError::AlreadyStreamed(_)
            | CoreError::DeveloperUserAlreadyRegistered(_) => code::INVALID_PARAMETER,
            // Twilio's codes for the language's limits; a query that does not parse is a bad
            // parameter.
            CoreError::InvalidQuery { twilio_code: Some(code), .. } => (400, *code),
            CoreError::InvalidQuery { .. } => code::INVALID_PARAMETER,
            CoreError::Proxy { rule, .. } => match rule {
                ProxyRule::AlreadyParticipant => code::PROXY_ALREADY_PARTICIPANT,
                ProxyRule::NoProxyAvailable => code::PROXY_NO_NUMBER_AVAILABLE,
                ProxyRule::IdentifierInUse => code::PROXY_IDENTIFIER_IN_USE,
                ProxyRule::NotInService => code::PROXY_NOT_IN_SERVICE,
                ProxyRule::SessionClosed => code::PROXY_SESSION_CLOSED,
                ProxyRule::InvalidStatus => code::PROXY_INVALID_STATUS,
                ProxyRule::DuplicateParticipant => code::PROXY_DUPLICATE_PARTICIPANT,
                ProxyRule::NonUniqueSessionName => code::PROXY_NON_UNIQUE_SESSION_NAME,
                ProxyRule::TooManyParticipants => code::PROXY_TOO_MANY_PARTICIPANTS,
            },
            CoreError::Store(StoreError::Unavailable(_)) => code::UNAVAILABLE,
            CoreError::Store(_) => code::INTERNAL,
        };
        if c.0 >= 500 {
            tracing::warn!(error = %e, "request failed");
        }
        Self::new(c, message)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message.clone(),
            more_info: format!("https://www.twilio.com/docs/errors/{}", self.code),
            status: self.status,
        }
    }
}

impl From<CoreError> for TwilioError {
    fn from(e: CoreError) -> Self {
        Self::from_core(e, Subject::Other)
    }
}

impl IntoResponse for TwilioError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        response
    }
}

/// A core field name (`collection_ttl`) as Twilio's parameters spell it (`CollectionTtl`).
pub fn wire_name(field: &str) -> String {
    field
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

pub async fn route_not_found(uri: axum::http::Uri) -> TwilioError {
    TwilioError::not_found(uri.path())
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> TwilioError {
    TwilioError::new(code::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_get_twilio_codes_and_wire_field_names() {
        let e = TwilioError::from_core(
            CoreError::invalid("collection_ttl", "must be between 0 and 31536000"),
            Subject::Other,
        );
        assert_eq!((e.status, e.code), (400, 54011));
        assert!(e.message.starts_with("CollectionTtl: "), "{}", e.message);
        let e = TwilioError::from_core(CoreError::revision_mismatch(1, 2, None), Subject::MapItem);
        assert_eq!((e.status, e.code), (412, 54205));
        let e =
            TwilioError::from_core(CoreError::TooLarge { field: "data", size: 20000, limit: 16384 }, Subject::Document);
        assert_eq!((e.status, e.code), (413, 54006));
        assert!(e.message.contains("Data") && e.message.contains("16384"), "{}", e.message);
        let body = serde_json::to_value(e.body()).expect("serialises");
        let keys: Vec<_> = body.as_object().expect("object").keys().cloned().collect();
        assert_eq!(keys, ["code", "message", "more_info", "status"]);
    }
}
