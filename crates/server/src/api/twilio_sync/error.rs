//! Core errors as the Sync face reports them: Twilio's table (`twilio::error`), with
//! not-found naming the resource path the way Twilio words it.

use super::extract::MOUNT;
use crate::api::twilio::error::{Subject, TwilioError};
use ferrosync_core::CoreError;

/// Translates a core error for a request to `path` about `subject`.
pub fn fail(path: &str, subject: Subject) -> impl Fn(CoreError) -> TwilioError + '_ {
    move |e| match e {
        CoreError::NotFound { .. } | CoreError::InvalidSid(_) => {
            TwilioError::not_found(path.strip_prefix(MOUNT).unwrap_or(path))
        }
        other => TwilioError::from_core(other, subject),
    }
}
