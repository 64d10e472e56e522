//! Core errors → Twilio error bodies (`{code, message, more_info, status}`) carried in the
//! `http_status` of a tunnelled CDS reply, and the transport-level statuses of `init` and
//! `update` replies.
//!
//! The code table is the Twilio faces' one ([`crate::api::twilio::error`]); this face only
//! refines what the SDK tells apart: which kind of object or item was not found.

use crate::api::twilio::error::{Subject, TwilioError};
pub use crate::api::twilio::error::{TwilioError as CdsError, code};
use ferrosync_core::CoreError;
use ferrosync_core::error::NotFoundKind;
use ferrosync_core::model::ObjectKind;
use ferrosync_core::store::StoreError;

/// More subscriptions than a connection may hold.
pub const TOO_MANY_SUBSCRIPTIONS: (u16, u32) = (429, 54419);
/// A list item index that is not a number names no item.
pub const LIST_ITEM_NOT_FOUND: (u16, u32) = (404, 54151);

/// What a CDS operation is about, so that one core error gets the code Twilio uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Object(ObjectKind),
    Item(ObjectKind),
    Subscriptions,
}

/// Maps a core error as Twilio reports it for `target`.
pub fn from_core(e: CoreError, target: Target) -> CdsError {
    let not_found = match &e {
        CoreError::NotFound { what, .. } => Some(*what),
        // A SID of another kind never names an object of this one.
        CoreError::InvalidSid(_) => Some(NotFoundKind::Object(kind_of(target))),
        _ => None,
    };
    let subject = match target {
        Target::Item(ObjectKind::List) => Subject::ListItem,
        Target::Item(ObjectKind::Map) => Subject::MapItem,
        Target::Object(ObjectKind::Document) => Subject::Document,
        _ => Subject::Other,
    };
    let mut error = TwilioError::from_core(e, subject);
    if let Some(what) = not_found {
        error.status = 404;
        error.code = not_found_code(what, target);
    }
    error
}

pub fn bad_request(message: impl Into<String>) -> CdsError {
    TwilioError::new(code::INVALID_PARAMETER, message)
}

pub fn not_found(message: impl Into<String>) -> CdsError {
    TwilioError::new(code::NOT_FOUND, message)
}

pub fn method_not_allowed(method: &str, path: &str) -> CdsError {
    TwilioError::new(code::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {path}"))
}

fn kind_of(target: Target) -> ObjectKind {
    match target {
        Target::Object(k) | Target::Item(k) => k,
        Target::Subscriptions => ObjectKind::Document,
    }
}

/// The SDK reads these: 54100 and its siblings name the kind that is missing.
fn not_found_code(what: NotFoundKind, target: Target) -> u32 {
    match (what, target) {
        (NotFoundKind::Item, Target::Item(ObjectKind::List)) => LIST_ITEM_NOT_FOUND.1,
        (NotFoundKind::Item, Target::Item(ObjectKind::Map)) => 54201,
        (NotFoundKind::Object(ObjectKind::Document), _) => 54100,
        (NotFoundKind::Object(ObjectKind::List), _) => 54150,
        (NotFoundKind::Object(ObjectKind::Map), _) => 54200,
        (NotFoundKind::Object(ObjectKind::Stream), _) => 54250,
        _ => code::NOT_FOUND.1,
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
        CoreError::AccessTokenExpired => (401, "UNAUTHORIZED", code::ACCESS_TOKEN_EXPIRED.1),
        CoreError::Store(StoreError::Unavailable(_)) => (503, "SERVICE_UNAVAILABLE", code::UNAVAILABLE.1),
        CoreError::Store(_) => (500, "INTERNAL_SERVER_ERROR", code::INTERNAL.1),
        _ => (401, "UNAUTHORIZED", code::INVALID_ACCESS_TOKEN.1),
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
        let mismatch = || CoreError::revision_mismatch(1, 2, None);
        let e = from_core(mismatch(), doc);
        assert_eq!((e.status, e.code), (412, 54103));
        assert_eq!(from_core(mismatch(), list_item).code, 54155);
        assert_eq!(from_core(mismatch(), map_item).code, 54205);
        let missing = |kind| CoreError::not_found(NotFoundKind::Object(kind), "x");
        for (kind, code) in [
            (ObjectKind::Document, 54100),
            (ObjectKind::List, 54150),
            (ObjectKind::Map, 54200),
            (ObjectKind::Stream, 54250),
        ] {
            let e = from_core(missing(kind), Target::Object(kind));
            assert_eq!((e.status, e.code), (404, code));
        }
        assert_eq!(from_core(CoreError::not_found(NotFoundKind::Item, "3"), list_item).code, 54151);
        assert_eq!(from_core(CoreError::not_found(NotFoundKind::Item, "k"), map_item).code, 54201);
        assert_eq!(from_core(CoreError::not_found(NotFoundKind::Service, "s"), doc).code, 20404);
        let taken = from_core(CoreError::AlreadyExists { what: "document", name: "n".into() }, doc);
        assert_eq!((taken.status, taken.code), (409, 54301));
        let big = from_core(CoreError::TooLarge { field: "data", size: 2, limit: 1 }, doc);
        assert_eq!((big.status, big.code), (413, 54006));
        assert_eq!(from_core(CoreError::invalid("ttl", "too long"), doc).code, 54011);
        assert_eq!(from_core(CoreError::InvalidIfMatch("x".into()), doc).code, 54003);
        assert_eq!(taken.body().more_info, "https://www.twilio.com/docs/errors/54301");
    }

    #[test]
    fn refused_tokens_say_whether_they_expired() {
        assert_eq!(token_refusal(&CoreError::AccessTokenExpired).2, 20104);
        assert_eq!(token_refusal(&CoreError::InvalidAccessToken("bad".into())), (401, "UNAUTHORIZED", 20101));
    }
}
