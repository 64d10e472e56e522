//! Reachability: `endpoint_connected` / `endpoint_disconnected` webhooks from client
//! connections, with Twilio's debouncing.
//!
//! Without debouncing, every connection and disconnection of an endpoint is reported at once.
//! With it, an identity is reported online when its first endpoint connects and offline only
//! once its last endpoint has been gone for the service's window: a reconnection by any of its
//! endpoints within the window cancels the pending `endpoint_disconnected` (and, the identity
//! never having been offline, is not reported either).
//!
//! Connections call [`Reachability::connected`] / [`Reachability::disconnected`] (or hold an
//! [`Online`] guard); both only queue a signal, so they never block a connection. One task
//! keeps the presence per (service, identity) and emits [`ReachabilityEvent`]s.

use ferrosync_core::model::ServiceSettings;
use ferrosync_core::sid::Sid;
use ferrosync_core::timestamp::Timestamp;
use futures_util::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Signals queued before the tracker falls behind and new ones are dropped (and counted).
const QUEUE: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReachabilityKind {
    Connected,
    Disconnected,
}

impl ReachabilityKind {
    pub fn event_type(self) -> &'static str {
        match self {
            ReachabilityKind::Connected => "endpoint_connected",
            ReachabilityKind::Disconnected => "endpoint_disconnected",
        }
    }
}

/// A reachability webhook to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachabilityEvent {
    pub service: Sid,
    pub identity: String,
    pub endpoint_id: String,
    pub kind: ReachabilityKind,
    pub at: Timestamp,
}

/// Finds a service's current settings (`None` when it is gone).
pub type SettingsLookup = Arc<dyn Fn(Sid) -> BoxFuture<'static, Option<ServiceSettings>> + Send + Sync>;

#[derive(Debug)]
struct Signal {
    service: Sid,
    identity: String,
    endpoint_id: String,
    kind: ReachabilityKind,
}

/// The handle connections report to; cheap to clone.
#[derive(Clone)]
pub struct Reachability {
    tx: mpsc::Sender<Signal>,
}

/// The receiving side, run by [`Tracker::run`] once the server's background tasks start.
pub struct Tracker {
    rx: mpsc::Receiver<Signal>,
}

impl Reachability {
    pub fn new() -> (Reachability, Tracker) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Reachability { tx }, Tracker { rx })
    }

    pub fn connected(&self, service: &Sid, identity: &str, endpoint_id: &str) {
        self.signal(service, identity, endpoint_id, ReachabilityKind::Connected);
    }

    pub fn disconnected(&self, service: &Sid, identity: &str, endpoint_id: &str) {
        self.signal(service, identity, endpoint_id, ReachabilityKind::Disconnected);
    }

    /// Reports a new endpoint connected, and disconnected when the guard is dropped (however the
    /// connection ends). Its endpoint id is random: the native protocol has none of its own.
    pub fn online(&self, service: &Sid, identity: &str) -> Online {
        let endpoint_id = ferrosync_core::auth::random_hex(12);
        self.connected(service, identity, &endpoint_id);
        Online { reachability: self.clone(), service: service.clone(), identity: identity.to_owned(), endpoint_id }
    }

    fn signal(&self, service: &Sid, identity: &str, endpoint_id: &str, kind: ReachabilityKind) {
        let signal = Signal {
            service: service.clone(),
            identity: identity.to_owned(),
            endpoint_id: endpoint_id.to_owned(),
            kind,
        };
        if self.tx.try_send(signal).is_err() {
            metrics::counter!("ferrosync_webhook_dropped_total", "reason" => "reachability_queue_full").increment(1);
        }
    }
}

/// An endpoint that is online until dropped.
pub struct Online {
    reachability: Reachability,
    service: Sid,
    identity: String,
    endpoint_id: String,
}

impl Online {
    pub fn endpoint_id(&self) -> &str {
        &self.endpoint_id
    }
}

impl Drop for Online {
    fn drop(&mut self) {
        self.reachability.disconnected(&self.service, &self.identity, &self.endpoint_id);
    }
}

/// One identity's endpoints on this node, and its pending `endpoint_disconnected`.
#[derive(Default)]
struct Presence {
    endpoints: HashMap<String, usize>,
    pending: Option<(String, (Instant, u64))>,
}

type Key = (Sid, String);

impl Tracker {
    /// Runs until `shutdown`, sending each event to `out` (dropped, and counted, when full).
    pub async fn run(
        mut self,
        lookup: SettingsLookup,
        out: mpsc::Sender<ReachabilityEvent>,
        shutdown: CancellationToken,
    ) {
        let mut presence: HashMap<Key, Presence> = HashMap::new();
        let mut timers: BTreeMap<(Instant, u64), Key> = BTreeMap::new();
        let mut next_timer = 0u64;
        let emit = |service: &Sid, identity: &str, endpoint_id: &str, kind: ReachabilityKind| {
            let event = ReachabilityEvent {
                service: service.clone(),
                identity: identity.to_owned(),
                endpoint_id: endpoint_id.to_owned(),
                kind,
                at: Timestamp::now(),
            };
            if out.try_send(event).is_err() {
                metrics::counter!("ferrosync_webhook_dropped_total", "reason" => "reachability_queue_full")
                    .increment(1);
            }
        };
        loop {
            let due = timers.keys().next().map(|(at, _)| *at);
            let signal = tokio::select! {
                s = self.rx.recv() => match s {
                    Some(s) => s,
                    None => break,
                },
                () = sleep_until(due) => {
                    let now = Instant::now();
                    while let Some(entry) = timers.first_entry() {
                        if entry.key().0 > now {
                            break;
                        }
                        let (timer, key) = entry.remove_entry();
                        let Some(p) = presence.get_mut(&key) else { continue };
                        if p.pending.as_ref().is_some_and(|(_, t)| *t == timer) && p.endpoints.is_empty() {
                            if let Some((endpoint, _)) = p.pending.take() {
                                emit(&key.0, &key.1, &endpoint, ReachabilityKind::Disconnected);
                            }
                            presence.remove(&key);
                        }
                    }
                    continue;
                }
                () = shutdown.cancelled() => break,
            };
            let settings = lookup(signal.service.clone()).await.unwrap_or_default();
            let key = (signal.service.clone(), signal.identity.clone());
            let p = presence.entry(key.clone()).or_default();
            // Presence is kept even while reachability webhooks are off, so that turning them on
            // finds it right.
            let enabled = settings.reachability_webhooks_enabled;
            let debounced = settings.reachability_debouncing_enabled;
            match signal.kind {
                ReachabilityKind::Connected => {
                    let was_online = !p.endpoints.is_empty();
                    *p.endpoints.entry(signal.endpoint_id.clone()).or_default() += 1;
                    let resumed = p.pending.take().map(|(_, timer)| timers.remove(&timer)).is_some();
                    let report = if debounced { !was_online && !resumed } else { true };
                    if enabled && report {
                        emit(&signal.service, &signal.identity, &signal.endpoint_id, ReachabilityKind::Connected);
                    }
                }
                ReachabilityKind::Disconnected => {
                    if let Some(n) = p.endpoints.get_mut(&signal.endpoint_id) {
                        *n -= 1;
                        if *n == 0 {
                            p.endpoints.remove(&signal.endpoint_id);
                        }
                    }
                    if !debounced {
                        if enabled {
                            emit(
                                &signal.service,
                                &signal.identity,
                                &signal.endpoint_id,
                                ReachabilityKind::Disconnected,
                            );
                        }
                    } else if p.endpoints.is_empty() && enabled {
                        let window = Duration::from_millis(u64::from(settings.reachability_debouncing_window));
                        next_timer += 1;
                        let timer = (Instant::now() + window, next_timer);
                        if let Some((_, old)) = p.pending.replace((signal.endpoint_id.clone(), timer)) {
                            timers.remove(&old);
                        }
                        timers.insert(timer, key.clone());
                    }
                }
            }
            if p.endpoints.is_empty() && p.pending.is_none() {
                presence.remove(&key);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::sid::SidKind;

    struct Harness {
        reach: Reachability,
        events: mpsc::Receiver<ReachabilityEvent>,
        service: Sid,
        _stop: tokio_util::sync::DropGuard,
    }

    fn start(settings: ServiceSettings) -> Harness {
        let (reach, tracker) = Reachability::new();
        let (tx, events) = mpsc::channel(100);
        let lookup: SettingsLookup = Arc::new(move |_| {
            let s = settings.clone();
            Box::pin(async move { Some(s) })
        });
        let stop = CancellationToken::new();
        tokio::spawn(tracker.run(lookup, tx, stop.clone()));
        Harness { reach, events, service: Sid::new(SidKind::Service), _stop: stop.drop_guard() }
    }

    fn settings(debounced: bool) -> ServiceSettings {
        ServiceSettings {
            webhook_url: Some("http://127.0.0.1:1/hooks".into()),
            reachability_webhooks_enabled: true,
            reachability_debouncing_enabled: debounced,
            reachability_debouncing_window: 5000,
            ..Default::default()
        }
    }

    impl Harness {
        /// The next event within `limit` of (paused) time, or `None`.
        async fn next(&mut self, limit: Duration) -> Option<(ReachabilityKind, String)> {
            tokio::time::timeout(limit, self.events.recv()).await.ok().flatten().map(|e| (e.kind, e.endpoint_id))
        }
    }

    use ReachabilityKind::{Connected, Disconnected};

    #[tokio::test(start_paused = true)]
    async fn without_debouncing_every_change_is_reported_at_once() {
        let mut h = start(settings(false));
        h.reach.connected(&h.service, "alice", "e1");
        h.reach.connected(&h.service, "alice", "e2");
        h.reach.disconnected(&h.service, "alice", "e1");
        let second = Duration::from_millis(1);
        assert_eq!(h.next(second).await, Some((Connected, "e1".into())));
        assert_eq!(h.next(second).await, Some((Connected, "e2".into())));
        assert_eq!(h.next(second).await, Some((Disconnected, "e1".into())));
        assert_eq!(h.next(Duration::from_secs(60)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn debouncing_reports_offline_after_the_window() {
        let mut h = start(settings(true));
        h.reach.connected(&h.service, "alice", "e1");
        assert_eq!(h.next(Duration::from_millis(1)).await, Some((Connected, "e1".into())));
        h.reach.disconnected(&h.service, "alice", "e1");
        assert_eq!(h.next(Duration::from_millis(4900)).await, None, "not within the window");
        assert_eq!(h.next(Duration::from_millis(200)).await, Some((Disconnected, "e1".into())));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reconnection_within_the_window_cancels_the_disconnection() {
        let mut h = start(settings(true));
        h.reach.connected(&h.service, "alice", "e1");
        assert_eq!(h.next(Duration::from_millis(1)).await, Some((Connected, "e1".into())));
        h.reach.disconnected(&h.service, "alice", "e1");
        tokio::time::sleep(Duration::from_millis(3000)).await;
        // Another endpoint of the same identity: the identity never went offline.
        h.reach.connected(&h.service, "alice", "e2");
        assert_eq!(h.next(Duration::from_secs(60)).await, None);
        // Now it goes for good: one disconnection, a window later.
        h.reach.disconnected(&h.service, "alice", "e2");
        assert_eq!(h.next(Duration::from_millis(5100)).await, Some((Disconnected, "e2".into())));
    }

    #[tokio::test(start_paused = true)]
    async fn debouncing_reports_the_identity_not_each_endpoint() {
        let mut h = start(settings(true));
        h.reach.connected(&h.service, "alice", "e1");
        h.reach.connected(&h.service, "alice", "e2");
        h.reach.connected(&h.service, "bob", "e3");
        assert_eq!(h.next(Duration::from_millis(1)).await, Some((Connected, "e1".into())));
        assert_eq!(h.next(Duration::from_millis(1)).await, Some((Connected, "e3".into())));
        h.reach.disconnected(&h.service, "alice", "e1");
        assert_eq!(h.next(Duration::from_secs(60)).await, None, "alice is still online on e2");
        h.reach.disconnected(&h.service, "alice", "e2");
        assert_eq!(h.next(Duration::from_millis(5100)).await, Some((Disconnected, "e2".into())));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_reported_when_reachability_webhooks_are_off() {
        let mut h = start(ServiceSettings { reachability_webhooks_enabled: false, ..settings(true) });
        let online = h.reach.online(&h.service, "alice");
        drop(online);
        assert_eq!(h.next(Duration::from_secs(60)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_online_guard_reports_both_ends() {
        let mut h = start(settings(false));
        let online = h.reach.online(&h.service, "alice");
        let endpoint = online.endpoint_id().to_owned();
        assert_eq!(h.next(Duration::from_millis(1)).await, Some((Connected, endpoint.clone())));
        drop(online);
        assert_eq!(h.next(Duration::from_millis(1)).await, Some((Disconnected, endpoint)));
    }
}
