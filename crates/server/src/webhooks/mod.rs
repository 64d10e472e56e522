//! Twilio Sync service webhooks, delivered from the change log.
//!
//! A service with a `webhook_url` has a cursor in the store: the last event of its change log
//! that was delivered. A node delivers a service's webhooks only while it holds that service's
//! lease (a row in the store with an expiry, renewed while it works, taken over when it runs out),
//! reads the log in order from the cursor, posts each wanted event (signed, form-encoded, as
//! Twilio does) and moves the cursor on only after a 2xx — or after giving up on the event. So
//! delivery is at least once, in order per service, survives restarts, and one node delivers
//! each service at a time. Reachability webhooks come from live connections instead (see
//! [`reachability`]) and are delivered from memory by the node that saw them.

pub mod params;
pub mod reachability;
mod sender;
pub mod signature;
mod worker;

pub use reachability::{Online, Reachability, ReachabilityEvent, ReachabilityKind};
pub use signature::twilio_signature;

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
    /// Attempts per webhook before it is given up (logged, counted and skipped).
    pub attempts: usize,
    /// The wait before the first retry; each later one waits three times longer, up to `max_retry`.
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// How long a node's claim on a service's deliveries lasts unless renewed (a third of it).
    pub lease: Duration,
    /// How often services are re-checked without a wake-up: new webhook URLs, leases to take
    /// over, and events whose wake-up was lost.
    pub recheck: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        // 5 attempts over about 2.5 minutes: 4 s, 12 s, 36 s and 108 s apart (with jitter).
        WebhookSettings {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_concurrent: 32,
            attempts: 5,
            first_retry: Duration::from_secs(4),
            max_retry: Duration::from_secs(120),
            lease: Duration::from_secs(30),
            recheck: Duration::from_secs(2),
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
