//! The core error type and the single table of the native API's error codes.

use crate::sid::InvalidSid;

/// Every native error code with its HTTP status, in one table so codes stay stable.
macro_rules! error_codes {
    ($($name:ident = $code:literal, $status:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($name,)* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The stable numeric code clients can match on.
            pub const fn code(self) -> u32 {
                match self { $(ErrorCode::$name => $code,)* }
            }

            /// The HTTP status the code travels with.
            pub const fn status(self) -> u16 {
                match self { $(ErrorCode::$name => $status,)* }
            }

            pub const fn name(self) -> &'static str {
                match self { $(ErrorCode::$name => stringify!($name),)* }
            }
        }
    };
}

error_codes! {
    InvalidRequest = 40000, 400;
    InvalidField = 40001, 400;
    InvalidSid = 40002, 400;
    InvalidIfMatch = 40003, 400;
    InvalidSinceToken = 40004, 400;
    ForeignSinceToken = 40005, 400;
    InvalidPageToken = 40006, 400;
    Unauthenticated = 40100, 401;
    InvalidCredentials = 40101, 401;
    InvalidAccessToken = 40102, 401;
    AccessTokenExpired = 40103, 401;
    Forbidden = 40300, 403;
    NotFound = 40400, 404;
    ServiceNotFound = 40401, 404;
    ObjectNotFound = 40402, 404;
    ItemNotFound = 40403, 404;
    ApiKeyNotFound = 40404, 404;
    PermissionNotFound = 40405, 404;
    MethodNotAllowed = 40500, 405;
    AlreadyExists = 40900, 409;
    ItemAlreadyExists = 40901, 409;
    ResyncRequired = 41000, 410;
    RevisionMismatch = 41200, 412;
    TooLarge = 41300, 413;
    UnsupportedMediaType = 41500, 415;
    Internal = 50000, 500;
    StoreUnavailable = 50300, 503;
}

/// The layer of errors that facades translate into their own wire formats.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{field}: {message}")]
    InvalidField { field: &'static str, message: String },
    #[error("{field} is too large: {size} bytes, the limit is {limit} bytes")]
    TooLarge { field: &'static str, size: usize, limit: usize },
    #[error(transparent)]
    InvalidSid(#[from] InvalidSid),
    #[error("{what} '{id}' was not found")]
    NotFound { what: NotFoundKind, id: String },
    #[error("{what} with unique name '{name}' already exists")]
    AlreadyExists { what: &'static str, name: String },
    #[error("item '{key}' already exists")]
    ItemAlreadyExists { key: String },
    #[error("revision mismatch: If-Match was {expected}, the current revision is {actual}")]
    RevisionMismatch { expected: u64, actual: u64 },
    #[error("If-Match must be a revision number, got '{0}'")]
    InvalidIfMatch(String),
    #[error("{0}")]
    InvalidSinceToken(String),
    #[error("the since-token was issued by another store or service; start again without one")]
    ForeignSinceToken,
    #[error(
        "the since-token is older than the change log's retention; fetch a fresh snapshot of the \
         objects and subscribe again without a token"
    )]
    ResyncRequired,
    #[error("invalid page token")]
    InvalidPageToken,
    #[error("authentication required")]
    Unauthenticated,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("invalid access token: {0}")]
    InvalidAccessToken(String),
    #[error("the access token has expired")]
    AccessTokenExpired,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFoundKind {
    Service,
    Object(crate::model::ObjectKind),
    Item,
    ApiKey,
    Permission,
}

impl std::fmt::Display for NotFoundKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotFoundKind::Service => f.write_str("service"),
            NotFoundKind::Object(kind) => f.write_str(kind.as_str()),
            NotFoundKind::Item => f.write_str("item"),
            NotFoundKind::ApiKey => f.write_str("API key"),
            NotFoundKind::Permission => f.write_str("permission"),
        }
    }
}

impl CoreError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        CoreError::InvalidField { field, message: message.into() }
    }

    pub fn not_found(what: NotFoundKind, id: impl Into<String>) -> Self {
        CoreError::NotFound { what, id: id.into() }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::InvalidField { .. } => ErrorCode::InvalidField,
            CoreError::TooLarge { .. } => ErrorCode::TooLarge,
            CoreError::InvalidSid(_) => ErrorCode::InvalidSid,
            CoreError::NotFound { what, .. } => match what {
                NotFoundKind::Service => ErrorCode::ServiceNotFound,
                NotFoundKind::Object(_) => ErrorCode::ObjectNotFound,
                NotFoundKind::Item => ErrorCode::ItemNotFound,
                NotFoundKind::ApiKey => ErrorCode::ApiKeyNotFound,
                NotFoundKind::Permission => ErrorCode::PermissionNotFound,
            },
            CoreError::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            CoreError::ItemAlreadyExists { .. } => ErrorCode::ItemAlreadyExists,
            CoreError::RevisionMismatch { .. } => ErrorCode::RevisionMismatch,
            CoreError::InvalidIfMatch(_) => ErrorCode::InvalidIfMatch,
            CoreError::InvalidSinceToken(_) => ErrorCode::InvalidSinceToken,
            CoreError::ForeignSinceToken => ErrorCode::ForeignSinceToken,
            CoreError::ResyncRequired => ErrorCode::ResyncRequired,
            CoreError::InvalidPageToken => ErrorCode::InvalidPageToken,
            CoreError::Unauthenticated => ErrorCode::Unauthenticated,
            CoreError::InvalidCredentials => ErrorCode::InvalidCredentials,
            CoreError::InvalidAccessToken(_) => ErrorCode::InvalidAccessToken,
            CoreError::AccessTokenExpired => ErrorCode::AccessTokenExpired,
            CoreError::Forbidden(_) => ErrorCode::Forbidden,
            CoreError::Store(e) => match e {
                crate::store::StoreError::Unavailable(_) => ErrorCode::StoreUnavailable,
                _ => ErrorCode::Internal,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_match_their_status_class() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.code()), "duplicate code {}", code.code());
            assert_eq!(code.code() / 100, code.status() as u32, "{} is in the wrong class", code.name());
        }
    }
}
