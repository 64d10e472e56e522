//! Firebase Cloud Messaging, HTTP v1: `POST {base}/v1/projects/{project}/messages:send` with an
//! OAuth 2.0 bearer token obtained from a service account (JWT-bearer grant) or configured as is.

use super::{FcmConfig, PushDevice, PushError, SyncPush};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google's assertions may live an hour at most.
const ASSERTION_LIFETIME: u64 = 3600;
/// A token is replaced this long before it expires, so none is sent as it runs out.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

pub struct FcmProvider {
    name: String,
    url: String,
    client: reqwest::Client,
    auth: Auth,
}

enum Auth {
    Static(String),
    ServiceAccount(ServiceAccount),
}

struct ServiceAccount {
    provider: String,
    client_email: String,
    private_key_id: Option<String>,
    key: EncodingKey,
    token_uri: String,
    /// Held across a refresh, so concurrent sends wait for one token request.
    cached: tokio::sync::Mutex<Option<CachedToken>>,
}

struct CachedToken {
    token: String,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct ServiceAccountFile {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl FcmProvider {
    pub fn new(name: &str, config: FcmConfig, client: reqwest::Client) -> Result<Self, PushError> {
        let auth = match (&config.credentials_file, config.access_token) {
            (Some(_), Some(_)) => {
                return Err(PushError::config(name, "set credentials_file or access_token, not both"));
            }
            (None, None) => return Err(PushError::config(name, "needs credentials_file or access_token")),
            (None, Some(token)) => Auth::Static(token),
            (Some(path), None) => Auth::ServiceAccount(ServiceAccount::load(name, path, config.token_uri)?),
        };
        if config.project_id.is_empty() {
            return Err(PushError::config(name, "project_id is empty"));
        }
        let url = format!(
            "{}/v1/projects/{}/messages:send",
            config.base_url.trim_end_matches('/'),
            super::path_segment(&config.project_id)
        );
        Ok(FcmProvider { name: name.to_owned(), url, client, auth })
    }

    pub async fn send(&self, device: &PushDevice, push: &SyncPush) -> Result<(), PushError> {
        let body = serde_json::json!({
            "message": {
                "token": device.token,
                "data": push.data(),
                "android": {"priority": "high"},
                // For iOS apps that receive through FCM: a background (silent) push.
                "apns": {
                    "headers": {"apns-push-type": "background", "apns-priority": "5"},
                    "payload": {"aps": {"content-available": 1}},
                },
            }
        })
        .to_string();
        let token = self.token(None).await?;
        let mut response = self.post(&token, &body).await?;
        if response.status() == StatusCode::UNAUTHORIZED
            && let Auth::ServiceAccount(account) = &self.auth
        {
            // Revoked or expired early: one fresh token, one more try.
            tracing::debug!("FCM refused the access token; fetching a new one");
            let fresh = account.token(&self.client, Some(&token)).await?;
            response = self.post(&fresh, &body).await?;
        }
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(classify(status, &crate::outbound::body_excerpt(response).await))
    }

    async fn post(&self, token: &str, body: &str) -> Result<reqwest::Response, PushError> {
        let mut authorization = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| PushError::config(&self.name, "the access token is not a valid header value"))?;
        authorization.set_sensitive(true);
        Ok(self
            .client
            .post(&self.url)
            .header(AUTHORIZATION, authorization)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await?)
    }

    async fn token(&self, rejected: Option<&str>) -> Result<String, PushError> {
        match &self.auth {
            Auth::Static(token) => Ok(token.clone()),
            Auth::ServiceAccount(account) => account.token(&self.client, rejected).await,
        }
    }
}

impl ServiceAccount {
    fn load(name: &str, path: &std::path::Path, token_uri: Option<String>) -> Result<Self, PushError> {
        let file = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| PushError::config(name, format!("cannot read credentials_file {file}: {e}")))?;
        let parsed: ServiceAccountFile = serde_json::from_str(&text).map_err(|e| {
            PushError::config(name, format!("credentials_file {file} is not a service-account key: {e}"))
        })?;
        let key = rsa_key(&parsed.private_key)
            .map_err(|e| PushError::config(name, format!("credentials_file {file}: private_key: {e}")))?;
        Ok(ServiceAccount {
            provider: name.to_owned(),
            client_email: parsed.client_email,
            private_key_id: parsed.private_key_id,
            key,
            token_uri: token_uri.or(parsed.token_uri).unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned()),
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// The cached token while it is fresh and not the one just `rejected`, else a new one.
    async fn token(&self, client: &reqwest::Client, rejected: Option<&str>) -> Result<String, PushError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.refresh_at > Instant::now()
            && Some(c.token.as_str()) != rejected
        {
            return Ok(c.token.clone());
        }
        // Another send may have replaced the rejected token while this one waited for the lock;
        // then the check above returned it.
        let fetched = self.fetch(client).await?;
        let refresh_at = Instant::now() + Duration::from_secs(fetched.expires_in).saturating_sub(REFRESH_MARGIN);
        *cached = Some(CachedToken { token: fetched.access_token.clone(), refresh_at });
        Ok(fetched.access_token)
    }

    async fn fetch(&self, client: &reqwest::Client) -> Result<TokenResponse, PushError> {
        let iat = super::unix_now();
        let claims = AssertionClaims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat,
            exp: iat + ASSERTION_LIFETIME,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.private_key_id.clone();
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| PushError::config(&self.provider, format!("cannot sign the token request: {e}")))?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER)
            .append_pair("assertion", &assertion)
            .finish();
        let response = client
            .post(&self.token_uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let reason = format!("token endpoint: {}", crate::outbound::body_excerpt(response).await);
            return Err(super::status_error(status, reason));
        }
        response.json::<TokenResponse>().await.map_err(|e| {
            PushError::Transient(format!("token endpoint answered without a token: {}", super::error_chain(&e)))
        })
    }
}

/// A service account's `private_key`: PKCS#8 PEM (what Google issues), or PKCS#1.
fn rsa_key(pem: &str) -> Result<EncodingKey, String> {
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
    use rsa::pkcs8::DecodePrivateKey;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|e| rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|_| e))
        .map_err(|e| format!("not an RSA private key in PEM: {e}"))?;
    // jsonwebtoken's RustCrypto backend signs with PKCS#1 DER.
    let der = key.to_pkcs1_der().map_err(|e| e.to_string())?;
    Ok(EncodingKey::from_rsa_der(der.as_bytes()))
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

/// FCM's error answer: `UNREGISTERED` (404), or `INVALID_ARGUMENT` (400) about the token, mean
/// the token is dead; the rest follows the status.
fn classify(status: StatusCode, body: &str) -> PushError {
    let Ok(ErrorBody { error }) = serde_json::from_str::<ErrorBody>(body) else {
        return super::status_error(status, body.to_owned());
    };
    let error_code = error.details.iter().find_map(|d| {
        let is_fcm = d.get("@type")?.as_str()?.ends_with("FcmError");
        is_fcm.then(|| d.get("errorCode")?.as_str()).flatten()
    });
    let token_field = error.details.iter().any(|d| {
        d.get("fieldViolations").and_then(|v| v.as_array()).is_some_and(|violations| {
            violations.iter().any(|v| v.get("field").and_then(|f| f.as_str()) == Some("message.token"))
        })
    });
    let code = error_code.unwrap_or(error.status.as_str());
    let about_token = token_field || error.message.to_ascii_lowercase().contains("registration token");
    if code == "UNREGISTERED" || (status == StatusCode::BAD_REQUEST && code == "INVALID_ARGUMENT" && about_token) {
        return PushError::Unregistered;
    }
    let reason = if error.message.is_empty() { code.to_owned() } else { format!("{code}: {}", error.message) };
    super::status_error(status, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unregistered_tokens_are_recognised() {
        let body = r#"{"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}}"#;
        assert!(matches!(classify(StatusCode::NOT_FOUND, body), PushError::Unregistered));
        let body = r#"{"error": {"code": 400, "message": "The registration token is not a valid FCM registration token",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"}]}}"#;
        assert!(matches!(classify(StatusCode::BAD_REQUEST, body), PushError::Unregistered));
        let body = r#"{"error": {"code": 400, "message": "Invalid value", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                         "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]}]}}"#;
        assert!(matches!(classify(StatusCode::BAD_REQUEST, body), PushError::Unregistered));
    }

    #[test]
    fn other_invalid_arguments_are_rejections() {
        let body = r#"{"error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                         "fieldViolations": [{"field": "message.data", "description": "bad"}]}]}}"#;
        match classify(StatusCode::BAD_REQUEST, body) {
            PushError::Rejected { status: 400, reason } => assert!(reason.contains("INVALID_ARGUMENT"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let body = r#"{"error": {"code": 403, "message": "SenderId mismatch", "status": "PERMISSION_DENIED",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "SENDER_ID_MISMATCH"}]}}"#;
        match classify(StatusCode::FORBIDDEN, body) {
            PushError::Rejected { status: 403, reason } => assert!(reason.contains("SENDER_ID_MISMATCH"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn quota_and_server_errors_are_transient() {
        let body = r#"{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "QUOTA_EXCEEDED"}]}}"#;
        assert!(classify(StatusCode::TOO_MANY_REQUESTS, body).is_retryable());
        assert!(classify(StatusCode::SERVICE_UNAVAILABLE, "<html>unavailable</html>").is_retryable());
    }
}
