//! Twilio Proxy v1 (`/twilio/proxy/v1`): the Sync face's conventions (`api::twilio`: form
//! parameters, Basic auth, Twilio's error body, `meta` paging) over the engine's Proxy records.

pub mod inbound;
pub mod interactions;
pub mod participants;
pub mod pools;
pub mod router;
pub mod services;
pub mod sessions;

use crate::api::twilio::error::{Subject, TwilioError};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ferrosync_core::CoreError;
use std::sync::Arc;

/// The mount point of this face on the server's own origin.
pub const MOUNT: &str = "/twilio/proxy/v1";

/// Proxy's page size limit (Sync's is 100).
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Where this face's resources live, absolute on the request's own origin.
pub struct Urls {
    pub base: String,
    pub account_sid: String,
}

impl FromRequestParts<Arc<AppState>> for Urls {
    type Rejection = TwilioError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let origin = crate::api::http::origin(&parts.headers).unwrap_or_default();
        Ok(Urls { base: format!("{origin}{MOUNT}"), account_sid: state.engine.account_sid().to_string() })
    }
}

/// Twilio's not-found for a request to `path`.
pub fn missing(path: &str) -> TwilioError {
    TwilioError::not_found(path.strip_prefix(MOUNT).unwrap_or(path))
}

/// Translates a core error for a request to `path`: not-found names the resource path the way
/// Twilio words it.
pub fn fail(path: &str) -> impl Fn(CoreError) -> TwilioError + '_ {
    move |e| match e {
        CoreError::NotFound { .. } | CoreError::InvalidSid(_) => missing(path),
        other => TwilioError::from_core(other, Subject::Other),
    }
}
