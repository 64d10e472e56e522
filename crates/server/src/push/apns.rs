//! Apple Push Notification service over HTTP/2 with token-based authentication: an ES256 JWT
//! signed with the team's .p8 key, reused for most of its hour of validity.

use super::{ApnsConfig, PushDevice, PushError, SyncPush};
use ferrosync_core::cognito::Platform;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Apple accepts a provider token for an hour and answers TooManyProviderTokenUpdates to new
/// ones more often than every 20 minutes.
const TOKEN_REUSE: Duration = Duration::from_secs(50 * 60);

pub struct ApnsProvider {
    name: String,
    base_url: String,
    sandbox_base_url: String,
    topic: String,
    team_id: String,
    key_id: String,
    key: EncodingKey,
    client: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    reason: String,
}

impl ApnsProvider {
    pub fn new(name: &str, config: ApnsConfig, client: reqwest::Client) -> Result<Self, PushError> {
        let file = config.key_file.display();
        let pem = std::fs::read_to_string(&config.key_file)
            .map_err(|e| PushError::config(name, format!("cannot read key_file {file}: {e}")))?;
        let key = ec_key(&pem).map_err(|e| PushError::config(name, format!("key_file {file}: {e}")))?;
        for (field, value) in [("team_id", &config.team_id), ("key_id", &config.key_id), ("topic", &config.topic)] {
            if value.is_empty() {
                return Err(PushError::config(name, format!("{field} is empty")));
            }
        }
        Ok(ApnsProvider {
            name: name.to_owned(),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            sandbox_base_url: config.sandbox_base_url.trim_end_matches('/').to_owned(),
            topic: config.topic,
            team_id: config.team_id,
            key_id: config.key_id,
            key,
            client,
            token: Mutex::new(None),
        })
    }

    pub async fn send(&self, device: &PushDevice, push: &SyncPush) -> Result<(), PushError> {
        let base = match device.platform {
            Platform::Apns => &self.base_url,
            Platform::ApnsSandbox => &self.sandbox_base_url,
            other => {
                let message = format!("is an APNs provider and cannot reach {} devices", other.as_str());
                return Err(PushError::config(&self.name, message));
            }
        };
        let url = format!("{base}/3/device/{}", super::path_segment(&device.token));
        // `data` beside `aps`: the iOS SDK reads userInfo["data"]["identityId"] and so on.
        let body = serde_json::json!({"aps": {"content-available": 1}, "data": push.data()}).to_string();
        let mut authorization = HeaderValue::from_str(&format!("bearer {}", self.provider_token()?))
            .map_err(|e| PushError::config(&self.name, e.to_string()))?;
        authorization.set_sensitive(true);
        let response = self
            .client
            .post(&url)
            .header(AUTHORIZATION, authorization)
            .header("apns-push-type", "background")
            // Background pushes must go at priority 5; Apple refuses 10 for them.
            .header("apns-priority", "5")
            .header("apns-topic", &self.topic)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = crate::outbound::body_excerpt(response).await;
        let reason = serde_json::from_str::<ErrorBody>(&text).map(|b| b.reason).unwrap_or(text);
        match (status, reason.as_str()) {
            (StatusCode::GONE, _) | (StatusCode::BAD_REQUEST, "BadDeviceToken") => Err(PushError::Unregistered),
            (StatusCode::FORBIDDEN, "ExpiredProviderToken") => {
                // Clock skew or a token kept too long: the next attempt signs a new one.
                self.forget_token();
                Err(PushError::Transient(reason))
            }
            _ => Err(super::status_error(status, reason)),
        }
    }

    fn provider_token(&self) -> Result<String, PushError> {
        let mut token = self.token.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((jwt, signed_at)) = token.as_ref()
            && signed_at.elapsed() < TOKEN_REUSE
        {
            return Ok(jwt.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        header.typ = None;
        let jwt = jsonwebtoken::encode(&header, &Claims { iss: &self.team_id, iat: super::unix_now() }, &self.key)
            .map_err(|e| PushError::config(&self.name, format!("cannot sign the provider token: {e}")))?;
        *token = Some((jwt.clone(), Instant::now()));
        Ok(jwt)
    }

    fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }
}

/// A .p8 key: PKCS#8 PEM holding a P-256 private key.
fn ec_key(pem: &str) -> Result<EncodingKey, String> {
    use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    let key = p256::SecretKey::from_pkcs8_pem(pem).map_err(|e| format!("not a PKCS#8 P-256 private key: {e}"))?;
    // Re-encoded so jsonwebtoken gets plain DER, whatever the file's line endings.
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    Ok(EncodingKey::from_ec_der(der.as_bytes()))
}
