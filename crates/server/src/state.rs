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
    /// Cognito Sync's push-sync providers; `None` when none is configured.
    pub push: Option<Arc<crate::push::PushSender>>,
}

/// Tunables of the realtime layer.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Frames queued per connection before it is cut off as a slow consumer.
    pub outbound_queue: usize,
    /// Seconds between server pings on idle WebSockets.
    pub keepalive_secs: u64,
    /// Seconds a WebSocket write may make no progress before the connection is dropped (its
    /// client resumes from its tokens when it is back).
    pub write_stall_secs: u64,
    /// Seconds before `exp` at which `token_about_to_expire` is pushed.
    pub token_warning_secs: u64,
    /// Subscriptions one connection may hold.
    pub max_subscriptions: usize,
    pub webhooks: crate::webhooks::WebhookSettings,
    /// The Matrix face: server name and registration policy.
    pub matrix: crate::api::matrix::MatrixSettings,
    /// Cognito Streams and push sync.
    pub cognito: crate::cognito::CognitoSettings,
    /// Leases of the change log's background consumers (webhooks, Cognito streams and push).
    pub leases: crate::logfeed::LeaseSettings,
    /// How long a Cognito Sync trigger may take to answer (AWS: 5 s, fixed).
    pub sync_trigger_timeout: std::time::Duration,
}

impl Settings {
    pub fn write_stall(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.write_stall_secs.max(1))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            outbound_queue: 4096,
            keepalive_secs: 30,
            write_stall_secs: 30,
            token_warning_secs: 180,
            max_subscriptions: 2000,
            webhooks: Default::default(),
            leases: Default::default(),
            cognito: Default::default(),
            matrix: Default::default(),
            sync_trigger_timeout: crate::api::cognito_sync::trigger::DEFAULT_TIMEOUT,
        }
    }
}

impl AppState {
    /// Fails when a push provider cannot be set up (a missing or malformed key file, say).
    pub fn try_new(engine: Arc<Engine>, settings: Settings) -> Result<Arc<Self>, crate::push::PushError> {
        let push = if settings.cognito.push.providers.is_empty() {
            None
        } else {
            Some(Arc::new(crate::push::PushSender::new(settings.cognito.push.clone())?))
        };
        Ok(Self::build(engine, settings, push))
    }

    /// [`AppState::try_new`] for callers that cannot stop on a bad push configuration: it is
    /// logged, and the server runs without push sync.
    pub fn new(engine: Arc<Engine>, settings: Settings) -> Arc<Self> {
        let push = if settings.cognito.push.providers.is_empty() {
            None
        } else {
            match crate::push::PushSender::new(settings.cognito.push.clone()) {
                Ok(sender) => Some(Arc::new(sender)),
                Err(e) => {
                    tracing::error!(error = %e, "push sync is disabled");
                    None
                }
            }
        };
        Self::build(engine, settings, push)
    }

    fn build(engine: Arc<Engine>, settings: Settings, push: Option<Arc<crate::push::PushSender>>) -> Arc<Self> {
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
            push,
        })
    }
}
