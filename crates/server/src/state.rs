//! What every handler shares.

use crate::realtime::hub::Hub;
use ferrosync_core::Engine;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub struct AppState {
    pub engine: Arc<Engine>,
    pub hub: Arc<Hub>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub shutdown: CancellationToken,
    pub settings: Settings,
    pub changes_bodies: crate::api::native::changes::ChangesBodies,
    /// Webhook delivery; connections report reachability to `webhooks.reachability`.
    pub webhooks: crate::webhooks::Webhooks,
    /// Cognito Sync's SyncTrigger calls.
    pub sync_trigger: crate::api::cognito_sync::trigger::SyncTrigger,
}

/// Tunables of the realtime layer.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Frames queued per connection before it is cut off as a slow consumer.
    pub outbound_queue: usize,
    /// Seconds between server pings on idle WebSockets.
    pub keepalive_secs: u64,
    /// Seconds before `exp` at which `token_about_to_expire` is pushed.
    pub token_warning_secs: u64,
    /// Subscriptions one connection may hold.
    pub max_subscriptions: usize,
    pub webhooks: crate::webhooks::WebhookSettings,
    /// Cognito Streams and push sync.
    pub cognito: crate::cognito::CognitoSettings,
    /// Leases of the change log's background consumers (webhooks, Cognito streams and push).
    pub leases: crate::logfeed::LeaseSettings,
    /// How long a Cognito Sync trigger may take to answer (AWS: 5 s, fixed).
    pub sync_trigger_timeout: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            outbound_queue: 4096,
            keepalive_secs: 30,
            token_warning_secs: 180,
            max_subscriptions: 2000,
            webhooks: Default::default(),
            leases: Default::default(),
            cognito: Default::default(),
            sync_trigger_timeout: crate::api::cognito_sync::trigger::DEFAULT_TIMEOUT,
        }
    }
}

impl AppState {
    pub fn new(engine: Arc<Engine>, settings: Settings) -> Arc<Self> {
        let hub = Hub::new(engine.clone());
        let webhooks = crate::webhooks::Webhooks::new(settings.webhooks.clone());
        let sync_trigger = crate::api::cognito_sync::trigger::SyncTrigger::new(settings.sync_trigger_timeout);
        Arc::new(AppState {
            engine,
            hub,
            metrics: crate::observe::prometheus(),
            shutdown: CancellationToken::new(),
            settings,
            changes_bodies: Default::default(),
            webhooks,
            sync_trigger,
        })
    }
}
