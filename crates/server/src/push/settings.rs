//! Push providers as the operator configures them (`[cognito.push]` in the configuration file).

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
pub const FCM_BASE_URL: &str = "https://fcm.googleapis.com";
pub const APNS_BASE_URL: &str = "https://api.push.apple.com";
pub const APNS_SANDBOX_BASE_URL: &str = "https://api.sandbox.push.apple.com";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSettings {
    /// By name: the last segment of a pool's `PushSync.ApplicationArns` entries.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// The whole of one request to a push service (or its token endpoint), in seconds in the file.
    #[serde(default = "default_request_timeout", deserialize_with = "seconds")]
    pub request_timeout: Duration,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings { providers: BTreeMap::new(), request_timeout: DEFAULT_REQUEST_TIMEOUT }
    }
}

fn default_request_timeout() -> Duration {
    DEFAULT_REQUEST_TIMEOUT
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    Duration::try_from_secs_f64(secs).map_err(|_| serde::de::Error::custom("expected a positive number of seconds"))
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderConfig {
    Webhook(WebhookConfig),
    Fcm(FcmConfig),
    Apns(ApnsConfig),
}

/// A JSON POST per device, for gateways of the operator's own (or platforms with no provider
/// here, such as ADM).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Signs each body: `X-Ferrosync-Signature: sha256=<hex HMAC-SHA256>`.
    #[serde(default)]
    pub secret: Option<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Firebase Cloud Messaging, HTTP v1 API.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {
    pub project_id: String,
    #[serde(default = "fcm_base_url")]
    pub base_url: String,
    /// A Google service-account key (JSON with `client_email`, `private_key`, `token_uri`).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// A fixed bearer token instead of a service account (for proxies that authenticate
    /// themselves, and tests).
    #[serde(default)]
    pub access_token: Option<String>,
    /// Overrides the service account's `token_uri`.
    #[serde(default)]
    pub token_uri: Option<String>,
}

fn fcm_base_url() -> String {
    FCM_BASE_URL.to_owned()
}

impl FcmConfig {
    /// A provider for `project_id` with no credentials yet.
    pub fn new(project_id: impl Into<String>) -> Self {
        FcmConfig {
            project_id: project_id.into(),
            base_url: fcm_base_url(),
            credentials_file: None,
            access_token: None,
            token_uri: None,
        }
    }
}

impl std::fmt::Debug for FcmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmConfig")
            .field("project_id", &self.project_id)
            .field("base_url", &self.base_url)
            .field("credentials_file", &self.credentials_file)
            .field("access_token", &self.access_token.as_ref().map(|_| "<redacted>"))
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

/// Apple Push Notification service, token-based (.p8 key) authentication.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    #[serde(default = "apns_base_url")]
    pub base_url: String,
    /// For devices registered with platform `APNS_SANDBOX` (development builds).
    #[serde(default = "apns_sandbox_base_url")]
    pub sandbox_base_url: String,
    pub team_id: String,
    pub key_id: String,
    /// The PKCS#8 P-256 key downloaded from the developer account (`AuthKey_<key id>.p8`).
    pub key_file: PathBuf,
    /// The app's bundle id.
    pub topic: String,
}

fn apns_base_url() -> String {
    APNS_BASE_URL.to_owned()
}

fn apns_sandbox_base_url() -> String {
    APNS_SANDBOX_BASE_URL.to_owned()
}

impl ApnsConfig {
    /// A provider on Apple's production and sandbox endpoints.
    pub fn new(
        team_id: impl Into<String>,
        key_id: impl Into<String>,
        key_file: impl Into<PathBuf>,
        topic: impl Into<String>,
    ) -> Self {
        ApnsConfig {
            base_url: apns_base_url(),
            sandbox_base_url: apns_sandbox_base_url(),
            team_id: team_id.into(),
            key_id: key_id.into(),
            key_file: key_file.into(),
            topic: topic.into(),
        }
    }
}
