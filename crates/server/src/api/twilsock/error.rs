//! Core errors → Twilio error bodies (`{status, code, message, more_info}`) carried in the
//! `http_status` of a tunnelled CDS reply, and the transport-level statuses of `init` and
//! `update` replies.

use ferrosync_core::CoreError;
use ferrosync_core::error::NotFoundKind;
use ferrosync_core::model::ObjectKind;
use ferrosync_core::store::StoreError;
use serde::Serialize;

/// Twilio's generic "not found".
pub const NOT_FOUND: u32 = 20404;
/// The access token is invalid.
pub const TOKEN_INVALID: u32 = 20101;
/// The access token has expired (the SDK fires `tokenExpired` on it).
pub const TOKEN_EXPIRED: u32 = 20104;
/// More subscriptions than a connection may hold.
pub const TOO_MANY_SUBSCRIPTIONS: u32 = 54419;

/// What a CDS operation is about, so that one core error gets the code Twilio uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Object(ObjectKind),
    Item(ObjectKind),
    Subscriptions,
}

/// An error leaving a CDS endpoint.
#[derive(Debug, thiserror::Error, Serialize)]
#[error("{status} {code}: {message}")]
pub struct CdsError {
    pub status: u16,
    pub code: u32,
    pub message: String,
    pub more_info: String,
}

impl CdsError {
    pub fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        CdsError {
            status,
            code,
            message: message.into(),
            more_info: format!("https://www.twilio.com/docs/errors/{code}"),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        CdsError::new(400, INVALID_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        CdsError::new(404, NOT_FOUND, message)
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        CdsError::new(405, 20004, format!("{method} is not allowed on {path}"))
    }

    /// Maps a core error as Twilio reports it for `target`.
    pub fn from_core(e: CoreError, target: Target) -> Self {
        let message = e.to_string();
        let (status, code) = match &e {
            CoreError::NotFound { what, .. } => (404, not_found_code(*what, target)),
            // A SID of another kind never names an object of this one.
            CoreError::InvalidSid(_) => (404, not_found_code(NotFoundKind::Object(kind_of(target)), target)),
            CoreError::RevisionMismatch { .. } => (412, revision_mismatch_code(target)),
            CoreError::InvalidIfMatch(_) => (400, 54003),
            CoreError::TooLarge { .. } => (413, 54006),
            CoreError::InvalidField { field, .. } if field.ends_with("ttl") => (400, 54011),
            CoreError::InvalidField { field: "key", .. } => (400, 54209),
            CoreError::InvalidField { .. } => (400, INVALID_REQUEST),
            CoreError::AlreadyExists { .. } => (409, 54301),
            CoreError::ItemAlreadyExists { .. } => (409, 54208),
            CoreError::InvalidSinceToken(_)
            | CoreError::ForeignSinceToken
            | CoreError::ResyncRequired
            | CoreError::InvalidPageToken => (400, INVALID_REQUEST),
            CoreError::Unauthenticated | CoreError::InvalidCredentials | CoreError::InvalidAccessToken(_) => {
                (401, TOKEN_INVALID)
            }
            CoreError::AccessTokenExpired => (401, TOKEN_EXPIRED),
            CoreError::Forbidden(_) => (403, 54007),
            // The SDK retries 503: the store being away is worth retrying, a bug is not.
            CoreError::Store(StoreError::Unavailable(_)) => (503, 20003),
            CoreError::Store(_) => (500, 20500),
        };
        if status >= 500 {
            tracing::warn!(error = %e, "twilsock CDS request failed");
        }
        CdsError::new(status, code, message)
    }

    /// The reason phrase for the reply's `http_status`.
    pub fn reason(&self) -> &'static str {
        reason_phrase(self.status)
    }
}

/// Twilio's "invalid request body / parameter".
pub const INVALID_REQUEST: u32 = 54008;

fn kind_of(target: Target) -> ObjectKind {
    match target {
        Target::Object(k) | Target::Item(k) => k,
        Target::Subscriptions => ObjectKind::Document,
    }
}

fn not_found_code(what: NotFoundKind, target: Target) -> u32 {
    match (what, target) {
        (NotFoundKind::Item, Target::Item(ObjectKind::List)) => 54151,
        (NotFoundKind::Item, Target::Item(ObjectKind::Map)) => 54201,
        (NotFoundKind::Object(ObjectKind::Document), _) => 54100,
        (NotFoundKind::Object(ObjectKind::List), _) => 54150,
        (NotFoundKind::Object(ObjectKind::Map), _) => 54200,
        (NotFoundKind::Object(ObjectKind::Stream), _) => 54250,
        _ => NOT_FOUND,
    }
}

fn revision_mismatch_code(target: Target) -> u32 {
    match target {
        Target::Item(ObjectKind::List) => 54155,
        Target::Item(ObjectKind::Map) => 54205,
        _ => 54103,
    }
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// Why an `init` or `update` token was refused, as the transport status the SDK acts on
/// (401 with 20104 fires `tokenExpired`; any 401 makes the connection `denied`).
pub fn token_refusal(e: &CoreError) -> (u16, &'static str, u32) {
    match e {
        CoreError::AccessTokenExpired => (401, "UNAUTHORIZED", TOKEN_EXPIRED),
        CoreError::Store(StoreError::Unavailable(_)) => (503, "SERVICE_UNAVAILABLE", 20003),
        CoreError::Store(_) => (500, "INTERNAL_SERVER_ERROR", 20500),
        _ => (401, "UNAUTHORIZED", TOKEN_INVALID),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_get_the_code_twilio_uses_for_the_target() {
        let doc = Target::Object(ObjectKind::Document);
        let list_item = Target::Item(ObjectKind::List);
        let map_item = Target::Item(ObjectKind::Map);
        let mismatch = || CoreError::RevisionMismatch { expected: 1, actual: 2 };
        assert_eq!(
            (CdsError::from_core(mismatch(), doc).status, CdsError::from_core(mismatch(), doc).code),
            (412, 54103)
        );
        assert_eq!(CdsError::from_core(mismatch(), list_item).code, 54155);
        assert_eq!(CdsError::from_core(mismatch(), map_item).code, 54205);
        let missing = |kind| CoreError::not_found(NotFoundKind::Object(kind), "x");
        for (kind, code) in [
            (ObjectKind::Document, 54100),
            (ObjectKind::List, 54150),
            (ObjectKind::Map, 54200),
            (ObjectKind::Stream, 54250),
        ] {
            let e = CdsError::from_core(missing(kind), Target::Object(kind));
            assert_eq!((e.status, e.code), (404, code));
        }
        assert_eq!(CdsError::from_core(CoreError::not_found(NotFoundKind::Item, "3"), list_item).code, 54151);
        assert_eq!(CdsError::from_core(CoreError::not_found(NotFoundKind::Item, "k"), map_item).code, 54201);
        assert_eq!(CdsError::from_core(CoreError::not_found(NotFoundKind::Service, "s"), doc).code, 20404);
        let taken = CdsError::from_core(CoreError::AlreadyExists { what: "document", name: "n".into() }, doc);
        assert_eq!((taken.status, taken.code), (409, 54301));
        let big = CdsError::from_core(CoreError::TooLarge { field: "data", size: 2, limit: 1 }, doc);
        assert_eq!((big.status, big.code), (413, 54006));
        assert_eq!(CdsError::from_core(CoreError::invalid("ttl", "too long"), doc).code, 54011);
        assert_eq!(CdsError::from_core(CoreError::InvalidIfMatch("x".into()), doc).code, 54003);
        assert_eq!(taken.more_info, "https://www.twilio.com/docs/errors/54301");
    }

    #[test]
    fn refused_tokens_say_whether_they_expired() {
        assert_eq!(token_refusal(&CoreError::AccessTokenExpired).2, TOKEN_EXPIRED);
        assert_eq!(token_refusal(&CoreError::InvalidAccessToken("bad".into())), (401, "UNAUTHORIZED", TOKEN_INVALID));
    }
}
