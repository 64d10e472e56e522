//! Twilio Sync service webhooks, delivered from the change log.
//!
//! A service with a `webhook_url` has a cursor in the store, followed as
//! [`crate::logfeed`] follows every consumer: each wanted event is posted (signed,
//! form-encoded, as Twilio does) and the cursor moves on only after a 2xx — or after giving up
//! on the event. So delivery is at least once, in order per service, survives restarts, and
//! one node delivers each service at a time. Reachability webhooks come from live connections instead (see
//! [`reachability`]) and are delivered from memory by the node that saw them.

pub mod params;
pub mod reachability;
mod sender;
pub mod signature;
mod worker;

pub use reachability::{Online, Reachability, ReachabilityEvent, ReachabilityKind};
pub use signature::twilio_signature;

use crate::logfeed::RetryPolicy;
use std::sync::Mutex;
use std::time::Duration;

/// Tunables of webhook delivery.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The whole of one request, connecting included.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Requests in flight at once from this node, over all services.
    pub max_concurrent: usize,
    pub retry: RetryPolicy,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_concurrent: 32,
            retry: RetryPolicy::default(),
        }
    }
}

/// What the server holds of webhooks: the reachability handle connections report to, and the
/// parts the background tasks take when they start.
pub struct Webhooks {
    pub reachability: Reachability,
    settings: WebhookSettings,
    tracker: Mutex<Option<reachability::Tracker>>,
}

impl Webhooks {
    pub fn new(settings: WebhookSettings) -> Self {
        let (reachability, tracker) = Reachability::new();
        Webhooks { reachability, settings, tracker: Mutex::new(Some(tracker)) }
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }
}

pub use worker::spawn;
