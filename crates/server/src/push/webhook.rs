//! The webhook provider: one signed JSON POST per device. The receiver answers 2xx when it has
//! taken the push, 410 when the device token is dead, other 4xx to refuse it for good, and 5xx
//! or 429 to have it tried again.

use super::{PushDevice, PushError, SyncPush, WebhookConfig};
use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "X-Ferrosync-Signature";

pub struct WebhookProvider {
    url: String,
    secret: Option<String>,
    client: reqwest::Client,
}

impl WebhookProvider {
    pub fn new(_name: &str, config: WebhookConfig, client: reqwest::Client) -> Self {
        WebhookProvider { url: config.url, secret: config.secret, client }
    }

    pub async fn send(&self, device: &PushDevice, push: &SyncPush) -> Result<(), PushError> {
        let body = serde_json::json!({
            "platform": device.platform.as_str(),
            "token": device.token,
            "deviceId": device.device_id,
            "data": push.data(),
        })
        .to_string();
        let mut request = self.client.post(&self.url).header(CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            let mut value = HeaderValue::from_str(&signature(secret, body.as_bytes()))
                .map_err(|e| PushError::Transient(e.to_string()))?;
            value.set_sensitive(true);
            request = request.header(SIGNATURE_HEADER, value);
        }
        let response = request.body(body).send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status == reqwest::StatusCode::GONE {
            return Err(PushError::Unregistered);
        }
        Err(super::status_error(status, crate::outbound::body_excerpt(response).await))
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    /// RFC 4231 test case 2.
    #[test]
    fn signature_is_hmac_sha256_in_hex() {
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
