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
    InvalidParameter = 40007, 400;
    LimitExceeded = 40008, 400;
    InvalidConfiguration = 40009, 400;
    DuplicateRequest = 40010, 400;
    AlreadyStreamed = 40011, 400;
    ProxyRule = 40012, 400;
    InvalidQuery = 40013, 400;
    Unauthenticated = 40100, 401;
    InvalidCredentials = 40101, 401;
    InvalidAccessToken = 40102, 401;
    AccessTokenExpired = 40103, 401;
    Forbidden = 40300, 403;
    NotAuthorized = 40301, 403;
    NotFound = 40400, 404;
    ServiceNotFound = 40401, 404;
    ObjectNotFound = 40402, 404;
    ItemNotFound = 40403, 404;
    ApiKeyNotFound = 40404, 404;
    PermissionNotFound = 40405, 404;
    IdentityPoolNotFound = 40406, 404;
    IdentityNotFound = 40407, 404;
    DatasetNotFound = 40408, 404;
    DeviceNotFound = 40409, 404;
    DeveloperUserNotFound = 40410, 404;
    UserNotFound = 40411, 404;
    RoomNotFound = 40412, 404;
    MethodNotAllowed = 40500, 405;
    AlreadyExists = 40900, 409;
    ItemAlreadyExists = 40901, 409;
    ResourceConflict = 40902, 409;
    DeveloperUserAlreadyRegistered = 40903, 409;
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
    /// `current`: for a write (not a removal), what it would have replaced, as the writer saw it;
    /// a client retrying the write starts from it instead of reading again.
    #[error("revision mismatch: If-Match was {expected}, the current revision is {actual}")]
    RevisionMismatch { expected: u64, actual: u64, current: Option<Box<Current>> },
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
    /// A parameter the Cognito APIs refuse with a message of their own (AWS's wording where
    /// the references quote it).
    #[error("{0}")]
    InvalidParameter(String),
    /// The credentials do not reach this operation or resource (developer-only, identity-only,
    /// another identity's data, unauthenticated access to a pool that disallows it).
    #[error("{0}")]
    NotAuthorized(String),
    /// A stale sync count in UpdateRecords, or logins that cannot be linked.
    #[error("{0}")]
    ResourceConflict(String),
    /// A quota: datasets per identity, records or bytes per dataset, logins per identity.
    #[error("{0}")]
    LimitExceeded(String),
    /// Push sync (or streams, for a bulk publish) is not configured on the pool.
    #[error("{0}")]
    InvalidConfiguration(String),
    /// A bulk publish is already in progress.
    #[error("{0}")]
    DuplicateRequest(String),
    /// The last successful bulk publish was less than the allowed interval ago.
    #[error("{0}")]
    AlreadyStreamed(String),
    /// The developer user identifier belongs to another identity.
    #[error("{0}")]
    DeveloperUserAlreadyRegistered(String),
    /// A query that does not parse or breaks a limit of the language.
    #[error("{field}: {message}")]
    InvalidQuery { field: &'static str, message: String, column: usize, twilio_code: Option<u32> },
    /// A rule of Proxy sessions a request broke; each face words it with its own code.
    #[error("{message}")]
    Proxy { rule: ProxyRule, message: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The rules of Proxy sessions and participants (Twilio's codes in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyRule {
    /// The identifier / proxy identifier pair is active in another session (80604).
    IdentifierInUse,
    /// Another request made the same pair active at the same time (80623, a conflict).
    DuplicateParticipant,
    /// A status change Twilio does not allow (80608).
    InvalidStatus,
    /// The session is closed (80607).
    SessionClosed,
    /// The identifier is already a participant of the session (80103).
    AlreadyParticipant,
    /// The pool has no number this participant can use (80203).
    NoProxyAvailable,
    /// The proxy identifier is not in this service's pools (80605).
    NotInService,
    /// A session has two participants already (80609).
    TooManyParticipants,
    /// Another session of the service has this unique name (80603, a conflict).
    NonUniqueSessionName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFoundKind {
    Service,
    Object(crate::model::ObjectKind),
    Item,
    ApiKey,
    Permission,
    IdentityPool,
    CognitoIdentity,
    Dataset,
    Device,
    DeveloperUser,
    MatrixUser,
    MatrixRoom,
    MatrixAlias,
    MatrixEvent,
    ProxyService,
    PhoneNumber,
    ShortCode,
    ProxySession,
    ProxyParticipant,
    ProxyInteraction,
    Index,
}

impl std::fmt::Display for NotFoundKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotFoundKind::Service => f.write_str("service"),
            NotFoundKind::Object(kind) => f.write_str(kind.as_str()),
            NotFoundKind::Item => f.write_str("item"),
            NotFoundKind::ApiKey => f.write_str("API key"),
            NotFoundKind::Permission => f.write_str("permission"),
            NotFoundKind::IdentityPool => f.write_str("identity pool"),
            NotFoundKind::CognitoIdentity => f.write_str("identity"),
            NotFoundKind::Dataset => f.write_str("dataset"),
            NotFoundKind::Device => f.write_str("device"),
            NotFoundKind::DeveloperUser => f.write_str("developer user"),
            NotFoundKind::MatrixUser => f.write_str("user"),
            NotFoundKind::MatrixRoom => f.write_str("room"),
            NotFoundKind::MatrixAlias => f.write_str("room alias"),
            NotFoundKind::MatrixEvent => f.write_str("event"),
            NotFoundKind::ProxyService => f.write_str("Proxy service"),
            NotFoundKind::PhoneNumber => f.write_str("phone number"),
            NotFoundKind::ShortCode => f.write_str("short code"),
            NotFoundKind::ProxySession => f.write_str("session"),
            NotFoundKind::ProxyParticipant => f.write_str("participant"),
            NotFoundKind::ProxyInteraction => f.write_str("interaction"),
            NotFoundKind::Index => f.write_str("index"),
        }
    }
}

/// What a conditional write found in place of the revision it expected.
#[derive(Debug, Clone, PartialEq)]
pub enum Current {
    Object(crate::model::SyncObject),
    Item(crate::model::Item),
}

impl CoreError {
    /// A revision mismatch: `current` is left out for removals, which are not retried from it.
    pub fn revision_mismatch(expected: u64, actual: u64, current: Option<Current>) -> Self {
        CoreError::RevisionMismatch { expected, actual, current: current.map(Box::new) }
    }

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
                NotFoundKind::Service | NotFoundKind::ProxyService => ErrorCode::ServiceNotFound,
                NotFoundKind::PhoneNumber
                | NotFoundKind::ShortCode
                | NotFoundKind::ProxySession
                | NotFoundKind::ProxyParticipant
                | NotFoundKind::ProxyInteraction
                | NotFoundKind::Index => ErrorCode::ObjectNotFound,
                NotFoundKind::Object(_) => ErrorCode::ObjectNotFound,
                NotFoundKind::Item => ErrorCode::ItemNotFound,
                NotFoundKind::ApiKey => ErrorCode::ApiKeyNotFound,
                NotFoundKind::Permission => ErrorCode::PermissionNotFound,
                NotFoundKind::IdentityPool => ErrorCode::IdentityPoolNotFound,
                NotFoundKind::CognitoIdentity => ErrorCode::IdentityNotFound,
                NotFoundKind::Dataset => ErrorCode::DatasetNotFound,
                NotFoundKind::Device => ErrorCode::DeviceNotFound,
                NotFoundKind::DeveloperUser => ErrorCode::DeveloperUserNotFound,
                NotFoundKind::MatrixUser => ErrorCode::UserNotFound,
                NotFoundKind::MatrixRoom | NotFoundKind::MatrixAlias | NotFoundKind::MatrixEvent => {
                    ErrorCode::RoomNotFound
                }
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
            CoreError::InvalidParameter(_) => ErrorCode::InvalidParameter,
            CoreError::NotAuthorized(_) => ErrorCode::NotAuthorized,
            CoreError::ResourceConflict(_) => ErrorCode::ResourceConflict,
            CoreError::LimitExceeded(_) => ErrorCode::LimitExceeded,
            CoreError::InvalidConfiguration(_) => ErrorCode::InvalidConfiguration,
            CoreError::DuplicateRequest(_) => ErrorCode::DuplicateRequest,
            CoreError::AlreadyStreamed(_) => ErrorCode::AlreadyStreamed,
            CoreError::DeveloperUserAlreadyRegistered(_) => ErrorCode::DeveloperUserAlreadyRegistered,
            CoreError::Proxy { rule: ProxyRule::DuplicateParticipant | ProxyRule::NonUniqueSessionName, .. } => {
                ErrorCode::ResourceConflict
            }
            CoreError::Proxy { .. } => ErrorCode::ProxyRule,
            CoreError::InvalidQuery { .. } => ErrorCode::InvalidQuery,
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
