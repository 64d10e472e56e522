//! What the client reads from its access token: whom and which service it speaks for, and
//! when it expires. The signature is the server's business; the client only schedules.

use crate::error::{ClientError, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The parts of an access token the client uses.
///
/// ```
/// # use base64::Engine as _;
/// # let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
/// # let token = format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#),
/// #     b64(r#"{"exp":2000000000,"grants":{"identity":"alice","data_sync":{"service_sid":"IS00000000000000000000000000000001"}}}"#));
/// let info = ferrosync_client::TokenInfo::parse(&token)?;
/// assert_eq!(info.identity, "alice");
/// # Ok::<(), ferrosync_client::ClientError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub identity: String,
    pub service_sid: String,
    /// Seconds since the epoch.
    pub expires_at: i64,
}

#[derive(Deserialize)]
struct Claims {
    exp: i64,
    grants: Grants,
}

#[derive(Deserialize)]
struct Grants {
    identity: Option<String>,
    data_sync: Option<DataSync>,
}

#[derive(Deserialize)]
struct DataSync {
    service_sid: Option<String>,
}

impl TokenInfo {
    /// Reads a Ferrosync (Twilio-format) access token.
    pub fn parse(token: &str) -> Result<Self> {
        let bad = |why: &str| ClientError::InvalidArgument { field: "token", message: why.to_owned() };
        let payload = token.split('.').nth(1).ok_or_else(|| bad("not a JWT (expected three dot-separated parts)"))?;
        let raw =
            URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|_| bad("the payload is not base64url"))?;
        let claims: Claims = serde_json::from_slice(&raw).map_err(|e| bad(&format!("unreadable claims: {e}")))?;
        let identity = claims.grants.identity.ok_or_else(|| bad("no grants.identity"))?;
        let service_sid = claims
            .grants
            .data_sync
            .and_then(|d| d.service_sid)
            .ok_or_else(|| bad("no grants.data_sync.service_sid"))?;
        Ok(TokenInfo { identity, service_sid, expires_at: claims.exp })
    }

    /// Seconds from now until expiry (negative once expired).
    pub fn remaining_secs(&self) -> i64 {
        self.expires_at - now_secs()
    }
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(claims))
    }

    #[test]
    fn reads_identity_service_and_expiry() {
        let t = jwt(r#"{"exp":1700000000,"grants":{"identity":"alice","data_sync":{"service_sid":"IS1"}}}"#);
        let info = TokenInfo::parse(&t).unwrap();
        assert_eq!(info, TokenInfo { identity: "alice".into(), service_sid: "IS1".into(), expires_at: 1_700_000_000 });
        assert!(info.remaining_secs() < 0);
    }

    #[test]
    fn refuses_what_is_not_an_access_token() {
        for bad in ["", "abc", "a.!!!.c", &jwt(r#"{"exp":1}"#), &jwt(r#"{"exp":1,"grants":{"identity":"a"}}"#)] {
            let err = TokenInfo::parse(bad).unwrap_err();
            assert!(matches!(err, ClientError::InvalidArgument { field: "token", .. }), "{bad}: {err}");
        }
    }
}
