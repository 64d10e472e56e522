//! Silent pushes for Cognito Sync's push sync: when a dataset changes, the identity's other
//! devices are told so through the push service their app uses.
//!
//! AWS sends them through SNS platform applications named in the pool's `PushSync`
//! configuration (`ApplicationArns`). Here the operator configures named providers instead, and
//! an application ARN's last segment names the provider ([`provider_for`]). Providers speak
//! FCM HTTP v1, APNs (HTTP/2, token auth) or a plain signed JSON webhook. [`PushSender::send`]
//! makes one attempt; the caller decides on retries from [`PushError::is_retryable`].

mod apns;
mod fcm;
pub mod settings;
pub mod webhook;

pub use settings::{ApnsConfig, FcmConfig, ProviderConfig, PushSettings, WebhookConfig};

use ferrosync_core::cognito::Platform;
use std::collections::BTreeMap;
use tracing::Instrument;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("no push provider is named '{0}'")]
    UnknownProvider(String),
    #[error("push provider '{provider}': {message}")]
    Config { provider: String, message: String },
    /// The push service says the device token is dead; the device should be forgotten.
    #[error("the device token is no longer registered")]
    Unregistered,
    /// A permanent refusal: sending the same notification again would fail the same way.
    #[error("the push service rejected the notification ({status}): {reason}")]
    Rejected { status: u16, reason: String },
    /// Server errors, throttling, network failures and timeouts.
    #[error("the push service could not be reached or failed: {0}")]
    Transient(String),
}

impl PushError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, PushError::Transient(_))
    }

    fn config(provider: &str, message: impl Into<String>) -> Self {
        PushError::Config { provider: provider.to_owned(), message: message.into() }
    }

    /// The metrics label.
    fn outcome(&self) -> &'static str {
        match self {
            PushError::UnknownProvider(_) | PushError::Config { .. } => "config",
            PushError::Unregistered => "unregistered",
            PushError::Rejected { .. } => "rejected",
            PushError::Transient(_) => "transient",
        }
    }
}

impl From<reqwest::Error> for PushError {
    fn from(e: reqwest::Error) -> Self {
        // Connection failures, timeouts and broken bodies: all worth another try.
        PushError::Transient(error_chain(&e))
    }
}

use crate::outbound::error_chain;

/// A device registered for push sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDevice {
    pub platform: Platform,
    /// The push service's token (FCM registration token, APNs device token).
    pub token: String,
    /// The DeviceId Cognito Sync gave the device.
    pub device_id: String,
}

/// What changed: the five keys the mobile SDKs read from a push-sync notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPush {
    pub identity_pool_id: String,
    pub identity_id: String,
    pub dataset_name: String,
    pub sync_count: u64,
}

impl SyncPush {
    /// The payload's keys, every value a string: Android reads them with `getString` and parses
    /// `syncCount` itself, and iOS reads them from the `data` dictionary.
    pub fn data(&self) -> serde_json::Value {
        serde_json::json!({
            "source": "cognito-sync",
            "identityPoolId": self.identity_pool_id,
            "identityId": self.identity_id,
            "datasetName": self.dataset_name,
            "syncCount": self.sync_count.to_string(),
        })
    }
}

/// From a pool's `PushSync.ApplicationArns` (`arn:aws:sns:<region>:<account>:app/<PLATFORM>/<name>`),
/// the name of the application for `platform`: the provider to send through.
pub fn provider_for(application_arns: &[String], platform: Platform) -> Option<&str> {
    application_arns.iter().find_map(|arn| {
        let resource = arn.strip_prefix("arn:")?.splitn(5, ':').nth(4)?;
        let mut parts = resource.splitn(3, '/');
        if parts.next()? != "app" {
            return None;
        }
        let app_platform = parts.next()?;
        let name = parts.next().filter(|n| !n.is_empty() && !n.contains('/'))?;
        // SNS names FCM applications GCM, the platform Android devices register with.
        let matches = match platform {
            Platform::Gcm => app_platform == "GCM" || app_platform == "FCM",
            other => app_platform == other.as_str(),
        };
        matches.then_some(name)
    })
}

enum Provider {
    Webhook(webhook::WebhookProvider),
    Fcm(fcm::FcmProvider),
    Apns(apns::ApnsProvider),
}

impl Provider {
    fn kind(&self) -> &'static str {
        match self {
            Provider::Webhook(_) => "webhook",
            Provider::Fcm(_) => "fcm",
            Provider::Apns(_) => "apns",
        }
    }
}

/// The configured providers, their keys loaded and their HTTP clients built.
pub struct PushSender {
    providers: BTreeMap<String, Provider>,
}

impl std::fmt::Debug for PushSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: BTreeMap<&str, &str> = self.providers.iter().map(|(n, p)| (n.as_str(), p.kind())).collect();
        f.debug_struct("PushSender").field("providers", &kinds).finish()
    }
}

impl PushSender {
    /// Reads every provider's key and credential files now, so a bad configuration stops the
    /// server at start rather than at the first push.
    pub fn new(settings: PushSettings) -> Result<PushSender, PushError> {
        // One client per provider kind: they differ in protocol (APNs is HTTP/2 only), and the
        // providers of a kind share connections.
        let mut clients = Clients { timeout: settings.request_timeout, webhook: None, fcm: None, apns: None };
        let mut providers = BTreeMap::new();
        for (name, config) in settings.providers {
            let provider = match config {
                ProviderConfig::Webhook(c) => {
                    Provider::Webhook(webhook::WebhookProvider::new(&name, c, clients.webhook(&name)?))
                }
                ProviderConfig::Fcm(c) => Provider::Fcm(fcm::FcmProvider::new(&name, c, clients.fcm(&name)?)?),
                ProviderConfig::Apns(c) => Provider::Apns(apns::ApnsProvider::new(&name, c, clients.apns(&name)?)?),
            };
            providers.insert(name, provider);
        }
        Ok(PushSender { providers })
    }

    pub fn has_provider(&self, name: &str) -> bool {
        self.providers.contains_key(name)
    }

    /// One attempt at telling `device` that a dataset changed.
    pub async fn send(&self, provider: &str, device: &PushDevice, push: &SyncPush) -> Result<(), PushError> {
        let Some(p) = self.providers.get(provider) else {
            metrics::counter!("ferrosync_push_sent_total", "provider" => provider.to_owned(), "outcome" => "config")
                .increment(1);
            return Err(PushError::UnknownProvider(provider.to_owned()));
        };
        let span = tracing::info_span!(
            "push",
            provider,
            kind = p.kind(),
            platform = device.platform.as_str(),
            device_id = %device.device_id,
            dataset = %push.dataset_name,
            sync_count = push.sync_count,
        );
        let result = async {
            let result = match p {
                Provider::Webhook(w) => w.send(device, push).await,
                Provider::Fcm(f) => f.send(device, push).await,
                Provider::Apns(a) => a.send(device, push).await,
            };
            match &result {
                Ok(()) => tracing::debug!("push sent"),
                Err(e) => tracing::info!(error = %e, retryable = e.is_retryable(), "push failed"),
            }
            result
        }
        .instrument(span)
        .await;
        let outcome = match &result {
            Ok(()) => "ok",
            Err(e) => e.outcome(),
        };
        metrics::counter!("ferrosync_push_sent_total", "provider" => provider.to_owned(), "outcome" => outcome)
            .increment(1);
        result
    }
}

struct Clients {
    timeout: std::time::Duration,
    webhook: Option<reqwest::Client>,
    fcm: Option<reqwest::Client>,
    apns: Option<reqwest::Client>,
}

impl Clients {
    fn builder(timeout: std::time::Duration) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .timeout(timeout)
            // Credentials and signatures go only where the operator pointed them.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ferrosync-push/", env!("CARGO_PKG_VERSION")))
    }

    fn build(
        slot: &mut Option<reqwest::Client>,
        name: &str,
        builder: impl Fn() -> reqwest::ClientBuilder,
    ) -> Result<reqwest::Client, PushError> {
        if let Some(client) = slot {
            return Ok(client.clone());
        }
        let client = crate::outbound::http_client(builder)
            .map_err(|e| PushError::config(name, format!("cannot build the HTTP client: {}", error_chain(&e))))?;
        *slot = Some(client.clone());
        Ok(client)
    }

    fn webhook(&mut self, name: &str) -> Result<reqwest::Client, PushError> {
        let timeout = self.timeout;
        Self::build(&mut self.webhook, name, || Self::builder(timeout))
    }

    fn fcm(&mut self, name: &str) -> Result<reqwest::Client, PushError> {
        let timeout = self.timeout;
        Self::build(&mut self.fcm, name, || Self::builder(timeout))
    }

    fn apns(&mut self, name: &str) -> Result<reqwest::Client, PushError> {
        // APNs speaks HTTP/2 only: ALPN h2 over TLS, and h2c with prior knowledge over plain
        // http (local endpoints).
        let timeout = self.timeout;
        Self::build(&mut self.apns, name, || Self::builder(timeout).http2_prior_knowledge())
    }
}

/// Server errors and throttling are worth retrying; other statuses are the service's final word.
fn status_error(status: reqwest::StatusCode, reason: String) -> PushError {
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        PushError::Transient(format!("{}: {reason}", status.as_u16()))
    } else {
        PushError::Rejected { status: status.as_u16(), reason }
    }
}

/// Escapes a value for one URL path segment; RFC 3986's unreserved characters stay as they are.
fn path_segment(value: &str) -> percent_encoding::PercentEncode<'_> {
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(value, SEGMENT)
}

/// Seconds since the epoch, for JWT `iat`.
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arns(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn provider_for_picks_the_application_of_the_devices_platform() {
        let list = arns(&[
            "arn:aws:sns:us-east-1:123456789012:app/APNS/ios-prod",
            "arn:aws:sns:us-east-1:123456789012:app/APNS_SANDBOX/ios-dev",
            "arn:aws:sns:us-east-1:123456789012:app/GCM/android",
            "arn:aws:sns:us-east-1:123456789012:app/ADM/kindle",
        ]);
        assert_eq!(provider_for(&list, Platform::Apns), Some("ios-prod"));
        assert_eq!(provider_for(&list, Platform::ApnsSandbox), Some("ios-dev"));
        assert_eq!(provider_for(&list, Platform::Gcm), Some("android"));
        assert_eq!(provider_for(&list, Platform::Adm), Some("kindle"));
    }

    #[test]
    fn provider_for_does_not_confuse_apns_with_its_sandbox() {
        let list = arns(&["arn:aws:sns:eu-west-1:123456789012:app/APNS_SANDBOX/dev"]);
        assert_eq!(provider_for(&list, Platform::Apns), None);
        assert_eq!(provider_for(&list, Platform::ApnsSandbox), Some("dev"));
        let list = arns(&["arn:aws:sns:eu-west-1:123456789012:app/APNS/prod"]);
        assert_eq!(provider_for(&list, Platform::ApnsSandbox), None);
    }

    #[test]
    fn provider_for_accepts_fcm_applications_for_gcm_devices() {
        let list = arns(&["arn:aws:sns:us-east-1:1:app/FCM/firebase"]);
        assert_eq!(provider_for(&list, Platform::Gcm), Some("firebase"));
        assert_eq!(provider_for(&list, Platform::Apns), None);
    }

    #[test]
    fn provider_for_takes_the_first_match_and_skips_malformed_arns() {
        let list = arns(&[
            "not an arn",
            "arn:aws:sns:us-east-1:1:endpoint/GCM/android/abc",
            "arn:aws:sns:us-east-1:1:app/GCM/",
            "arn:aws:sns:us-east-1:1:app/GCM/a/b",
            "arn:aws:sns:us-east-1:1:app/GCM/first",
            "arn:aws:sns:us-east-1:1:app/GCM/second",
        ]);
        assert_eq!(provider_for(&list, Platform::Gcm), Some("first"));
        assert_eq!(provider_for(&[], Platform::Gcm), None);
    }

    #[test]
    fn payload_values_are_strings() {
        let push = SyncPush {
            identity_pool_id: "us-east-1:pool".into(),
            identity_id: "us-east-1:id".into(),
            dataset_name: "settings".into(),
            sync_count: 42,
        };
        assert_eq!(
            push.data(),
            serde_json::json!({
                "source": "cognito-sync",
                "identityPoolId": "us-east-1:pool",
                "identityId": "us-east-1:id",
                "datasetName": "settings",
                "syncCount": "42",
            })
        );
    }

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(PushError::Transient("x".into()).is_retryable());
        assert!(!PushError::Unregistered.is_retryable());
        assert!(!PushError::Rejected { status: 400, reason: "x".into() }.is_retryable());
        assert!(!PushError::UnknownProvider("x".into()).is_retryable());
        assert!(status_error(reqwest::StatusCode::TOO_MANY_REQUESTS, String::new()).is_retryable());
        assert!(status_error(reqwest::StatusCode::BAD_GATEWAY, String::new()).is_retryable());
        assert!(!status_error(reqwest::StatusCode::FORBIDDEN, String::new()).is_retryable());
    }
}
