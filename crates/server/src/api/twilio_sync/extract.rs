//! Extractors of the Sync face: where its resources live and `If-Match`.

use super::types::Urls;
use crate::api::twilio::error::{TwilioError, code};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::sync::Arc;

/// The mount point of this face on the server's own origin.
pub const MOUNT: &str = "/twilio/sync/v1";

impl FromRequestParts<Arc<AppState>> for Urls {
    type Rejection = TwilioError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let origin = crate::api::http::origin(&parts.headers).unwrap_or_default();
        Ok(Urls { base: format!("{origin}{MOUNT}"), account_sid: state.engine.account_sid().to_string() })
    }
}

/// The revision of a conditional write; anything but a revision is Twilio's 54003.
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = TwilioError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        crate::api::http::if_match(&parts.headers).map(IfMatch).map_err(|raw| {
            TwilioError::new(code::INVALID_IF_MATCH, format!("If-Match: '{raw}' is not a valid Sync object revision"))
        })
    }
}
