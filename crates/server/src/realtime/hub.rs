//! The hub maps (service, object) subscriptions to connections. One tailer per service reads
//! the change log once, frames each event once, and hands every subscriber the same bytes.

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use ferrosync_core::Engine;
use ferrosync_core::index::{IndexDef, transition};
use ferrosync_core::log::Event;
use ferrosync_core::model::ObjectKind;
use ferrosync_core::model::ObjectRef;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::StoredEvent;
use ferrosync_query::Expr;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

/// One event, shared by every subscriber of its object. Each wire protocol frames it at most
/// once, when its first subscriber needs it, and every other subscriber gets the same bytes.
#[derive(Debug)]
pub struct Delivery {
    pub seq: u64,
    pub object_sid: Sid,
    pub event: StoredEvent,
    native: OnceLock<Utf8Bytes>,
    /// The twilsock face's frame (see [`SharedFrame`]).
    pub twilsock: SharedFrame,
}

impl Delivery {
    pub fn from_stored(e: StoredEvent) -> Self {
        Delivery {
            seq: e.seq,
            object_sid: e.object_sid.clone(),
            event: e,
            native: OnceLock::new(),
            twilsock: SharedFrame::default(),
        }
    }

    /// The native protocol's event frame.
    pub fn native_frame(&self) -> Utf8Bytes {
        self.native
            .get_or_init(|| Utf8Bytes::from(format!("{{\"type\":\"event\",\"event\":{}}}", self.event.json.get())))
            .clone()
    }
}

/// An event framed once for a face whose frames depend on one connection setting (the
/// twilsock face writes absolute URLs, so its frames depend on the host clients address it by).
/// Connections that share the setting share the bytes; a connection with another setting
/// frames the event for itself.
#[derive(Debug, Default)]
pub struct SharedFrame {
    slot: OnceLock<(String, Bytes)>,
}

impl SharedFrame {
    pub fn get_or_render(&self, key: &str, render: impl FnOnce() -> Bytes) -> Bytes {
        if let Some((k, frame)) = self.slot.get()
            && k == key
        {
            return frame.clone();
        }
        let frame = render();
        let _ = self.slot.set((key.to_owned(), frame.clone()));
        frame
    }
}

/// Raised when a connection's queue is full: the connection must go and resume later.
#[derive(Debug, Default)]
pub struct Overflow {
    raised: CancellationToken,
}

impl Overflow {
    pub fn raise(&self) {
        self.raised.cancel();
    }

    pub fn is_raised(&self) -> bool {
        self.raised.is_cancelled()
    }

    /// Resolves once raised; owned, so a connection can keep it across wake-ups.
    pub fn raised(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.raised.clone().cancelled_owned()
    }
}

#[derive(Clone)]
pub struct Subscriber {
    pub conn: u64,
    pub tx: mpsc::Sender<Arc<Delivery>>,
    pub overflow: Arc<Overflow>,
}

/// A live query held by one connection: the index it watches, its expression, and (for an
/// identity of a service with ACLs) the Maps it may read.
pub struct LiveQuery {
    pub def: IndexDef,
    pub expr: Arc<Expr>,
    pub maps: Option<HashSet<Sid>>,
    pub sub: Subscriber,
}

struct Feed {
    subs: RwLock<HashMap<Sid, Vec<Subscriber>>>,
    /// Live queries by query id.
    queries: RwLock<HashMap<Sid, LiveQuery>>,
    stop: CancellationToken,
}

impl Feed {
    fn is_empty(&self) -> bool {
        self.subs.read().unwrap_or_else(|e| e.into_inner()).is_empty()
            && self.queries.read().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
}

pub struct Hub {
    engine: Arc<Engine>,
    feeds: Mutex<HashMap<Sid, Arc<Feed>>>,
    next_conn: AtomicU64,
    pub connections: AtomicI64,
    pub subscriptions: AtomicI64,
}

impl Hub {
    pub fn new(engine: Arc<Engine>) -> Arc<Self> {
        Arc::new(Hub {
            engine,
            feeds: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            connections: AtomicI64::new(0),
            subscriptions: AtomicI64::new(0),
        })
    }

    pub fn next_connection_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The service's feed, its tailer started when it is the first.
    async fn feed(&self, service: &Sid) -> Result<Arc<Feed>, ferrosync_core::CoreError> {
        let mut feeds = self.feeds.lock().await;
        if let Some(f) = feeds.get(service) {
            return Ok(f.clone());
        }
        // The tailer starts at the head read *before* anyone is registered, so no event
        // committed after a registration can fall below its cursor.
        let head =
            self.engine.store().service(&ObjectRef::Sid(service.clone())).await?.map(|s| s.head_seq).unwrap_or(0);
        let feed = Arc::new(Feed {
            subs: RwLock::new(HashMap::new()),
            queries: RwLock::new(HashMap::new()),
            stop: CancellationToken::new(),
        });
        tokio::spawn(tail(self.engine.clone(), service.clone(), feed.clone(), head));
        feeds.insert(service.clone(), feed.clone());
        Ok(feed)
    }

    /// Registers `sub` for `object`'s events. Callers register before reading the log, so
    /// every event committed after this call reaches them live.
    pub async fn subscribe(
        &self,
        service: &Sid,
        object: &Sid,
        sub: Subscriber,
    ) -> Result<(), ferrosync_core::CoreError> {
        let feed = self.feed(service).await?;
        let mut subs = feed.subs.write().unwrap_or_else(|e| e.into_inner());
        subs.entry(object.clone()).or_default().push(sub);
        self.subscriptions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Registers a live query under its id, before its results are read (as [`Hub::subscribe`]).
    pub async fn subscribe_query(
        &self,
        service: &Sid,
        query: &Sid,
        live: LiveQuery,
    ) -> Result<(), ferrosync_core::CoreError> {
        let feed = self.feed(service).await?;
        feed.queries.write().unwrap_or_else(|e| e.into_inner()).insert(query.clone(), live);
        self.subscriptions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub async fn unsubscribe_query(&self, service: &Sid, query: &Sid) {
        let mut feeds = self.feeds.lock().await;
        let Some(feed) = feeds.get(service).cloned() else { return };
        if feed.queries.write().unwrap_or_else(|e| e.into_inner()).remove(query).is_some() {
            self.subscriptions.fetch_sub(1, Ordering::Relaxed);
        }
        if feed.is_empty() {
            feed.stop.cancel();
            feeds.remove(service);
        }
    }

    pub async fn unsubscribe(&self, service: &Sid, object: &Sid, conn: u64) {
        let mut feeds = self.feeds.lock().await;
        let Some(feed) = feeds.get(service).cloned() else {
            return;
        };
        {
            let mut subs = feed.subs.write().unwrap_or_else(|e| e.into_inner());
            if let Some(list) = subs.get_mut(object) {
                let before = list.len();
                list.retain(|s| s.conn != conn);
                self.subscriptions.fetch_sub((before - list.len()) as i64, Ordering::Relaxed);
                if list.is_empty() {
                    subs.remove(object);
                }
            }
        }
        if feed.is_empty() {
            feed.stop.cancel();
            feeds.remove(service);
        }
    }

    pub fn record_gauges(&self) {
        metrics::gauge!("ferrosync_ws_connections").set(self.connections.load(Ordering::Relaxed) as f64);
        metrics::gauge!("ferrosync_ws_subscriptions").set(self.subscriptions.load(Ordering::Relaxed) as f64);
    }
}

const TAIL_BATCH: u32 = 1024;

/// Reads the service's log from `cursor` and dispatches each event to its object's
/// subscribers; waits on the change notifier (a hint) when caught up.
async fn tail(engine: Arc<Engine>, service: Sid, feed: Arc<Feed>, mut cursor: u64) {
    let mut wake = engine.notifier().subscribe(&service);
    loop {
        let events = match engine.read_events(&service, cursor, None, TAIL_BATCH).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(service = %service, error = %e, "tailer cannot read the change log; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    () = feed.stop.cancelled() => return,
                }
            }
        };
        let full = events.len() == TAIL_BATCH as usize;
        if let Some(last) = events.last() {
            cursor = last.seq;
        }
        dispatch(&feed, events);
        if full {
            continue;
        }
        tokio::select! {
            changed = wake.changed() => if changed.is_err() { return },
            () = feed.stop.cancelled() => return,
        }
    }
}

/// Hands a batch of events to their subscribers in sequence order, so that a connection with
/// several subscriptions sees the service's events in the order they were committed.
fn dispatch(feed: &Feed, events: Vec<StoredEvent>) {
    let subs = feed.subs.read().unwrap_or_else(|e| e.into_inner());
    let queries = feed.queries.read().unwrap_or_else(|e| e.into_inner());
    for event in events {
        if !queries.is_empty() {
            dispatch_queries(&queries, &event);
        }
        let Some(list) = subs.get(&event.object_sid) else { continue };
        let delivery = Arc::new(Delivery::from_stored(event));
        metrics::counter!("ferrosync_events_delivered_total").increment(list.len() as u64);
        for sub in list {
            offer(sub, &delivery);
        }
    }
}

fn offer(sub: &Subscriber, delivery: &Arc<Delivery>) {
    if sub.overflow.is_raised() {
        return;
    }
    if let Err(mpsc::error::TrySendError::Full(_)) = sub.tx.try_send(delivery.clone()) {
        metrics::counter!("ferrosync_ws_queue_overflows_total").increment(1);
        sub.overflow.raise();
    }
}

/// Evaluates a Map event against every live query once (the event parsed once for all of
/// them) and hands each query whose results it changes its own event.
fn dispatch_queries(queries: &HashMap<Sid, LiveQuery>, stored: &StoredEvent) {
    let Ok(event) = serde_json::from_str::<Event>(stored.json.get()) else { return };
    if event.object_kind != ObjectKind::Map {
        return;
    }
    for (id, live) in queries {
        if live.maps.as_ref().is_some_and(|m| !m.contains(&event.object_sid)) {
            continue;
        }
        if let Some(change) = transition(&live.def, &live.expr, &event)
            && let Some(stored) = super::live::query_event(id, &event, change)
        {
            let delivery = Arc::new(Delivery::from_stored(stored));
            metrics::counter!("ferrosync_live_query_updates_total").increment(1);
            offer(&live.sub, &delivery);
        }
    }
}
