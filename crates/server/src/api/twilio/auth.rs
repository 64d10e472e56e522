//! HTTP Basic authentication as Twilio's REST APIs take it: the account (AccountSid:AuthToken)
//! or an API key (SID:secret).

use super::error::{TwilioError, code};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use ferrosync_core::auth::Principal;
use std::sync::Arc;

pub struct BasicAuth(pub Principal);

impl FromRequestParts<Arc<AppState>> for BasicAuth {
    type Rejection = TwilioError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let refuse = |why: &str| {
            TwilioError::new(
                code::AUTHENTICATE,
                format!("Authenticate: {why} (Basic auth with AccountSid:AuthToken or an API key SID:secret)"),
            )
        };
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| refuse("no credentials were sent"))?
            .to_str()
            .map_err(|_| refuse("the Authorization header is not ASCII"))?;
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(refuse("the Authorization scheme must be Basic"));
        }
        let (user, password) = crate::api::http::decode_basic(rest)
            .ok_or_else(|| refuse("the credentials are not base64 of user:password"))?;
        state.engine.authenticate_basic(&user, &password).await.map(BasicAuth).map_err(|e| match e {
            ferrosync_core::CoreError::InvalidCredentials => refuse("the username or password is wrong"),
            other => TwilioError::from(other),
        })
    }
}
