//! The hub maps (service, object) subscriptions to connections. One tailer per service reads
//! the change log once, frames each event once, and hands every subscriber the same bytes.

use super::outlet::Outlet;
use super::session::advance_cursor;
use bytes::Bytes;
use ferrosync_core::Engine;
use ferrosync_core::index::{FieldValue, IndexDef, field_value, transition};
use ferrosync_core::log::{Event, EventKind};
use ferrosync_core::model::ObjectKind;
use ferrosync_core::model::ObjectRef;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::StoredEvent;
use ferrosync_query::{Expr, Path, Value as QueryValue};
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
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
    native: OnceLock<Bytes>,
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
    pub fn native_frame(&self) -> Bytes {
        self.native
            .get_or_init(|| Bytes::from(format!("{{\"type\":\"event\",\"event\":{}}}", self.event.json.get())))
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
    /// Read on every offer to every subscriber; the token's own check takes a lock, which was
    /// 4 % of a fan-out to 10,000.
    flag: AtomicBool,
    raised: CancellationToken,
}

impl Overflow {
    pub fn raise(&self) {
        self.flag.store(true, Ordering::Release);
        self.raised.cancel();
    }

    pub fn is_raised(&self) -> bool {
        self.flag.load(Ordering::Acquire)
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
    /// The connection's socket, for the hub to write to while its task sleeps (native
    /// connections only; see [`Outlet`]).
    pub outlet: Option<Arc<Outlet>>,
    /// The subscription's cursor, shared with the connection: the hub writing for it drops
    /// events the client was sent already, as the task would. `None` for a live query, whose
    /// events always go through the task.
    pub cursor: Option<Arc<AtomicU64>>,
}

/// A live query held by one connection: the index it watches, its expression, and (for an
/// identity of a service with ACLs) the Maps it may read.
pub struct LiveQuery {
    pub def: IndexDef,
    pub expr: Arc<Expr>,
    pub maps: Option<HashSet<Sid>>,
    pub sub: Subscriber,
}

/// An object's subscribers by connection: iterated in one pass per event like a vector, and a
/// connection leaves in constant time (a scan per leaving connection made 10,000 subscribers
/// dropping at once quadratic, under the lock every event's dispatch takes).
type Subscribers = IndexMap<u64, Subscriber, foldhash::fast::RandomState>;

struct Feed {
    subs: RwLock<HashMap<Sid, Subscribers>>,
    /// Live queries, by id and by the values they pin fields to.
    queries: RwLock<QueryTable>,
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
}

impl Hub {
    pub fn new(engine: Arc<Engine>) -> Arc<Self> {
        Arc::new(Hub {
            engine,
            feeds: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            connections: AtomicI64::new(0),
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
            queries: RwLock::new(QueryTable::default()),
            stop: CancellationToken::new(),
        });
        // Outside tokio's cooperative budget: the hub's writes for sleeping connections are
        // socket writes, and a budget of 128 per poll would turn all but the first 128 of a
        // fan-out back to their connections' tasks.
        tokio::spawn(tokio::task::unconstrained(tail(self.engine.clone(), service.clone(), feed.clone(), head)));
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
        // A connection registers an object once (`Subscriptions::register`); were it to again,
        // the newer registration replaces the older and the interest is counted once.
        if subs.entry(object.clone()).or_default().insert(sub.conn, sub).is_none() {
            self.engine.notifier().add_interest(object);
        }
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
        self.engine.notifier().add_interest(service);
        Ok(())
    }

    pub async fn unsubscribe_query(&self, service: &Sid, query: &Sid) {
        let mut feeds = self.feeds.lock().await;
        let Some(feed) = feeds.get(service).cloned() else { return };
        if feed.queries.write().unwrap_or_else(|e| e.into_inner()).remove(query) {
            self.engine.notifier().remove_interest(service, 1);
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
                if list.swap_remove(&conn).is_some() {
                    self.engine.notifier().remove_interest(object, 1);
                }
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
        metrics::gauge!("ferrosync_ws_subscriptions").set(self.engine.notifier().subscriptions() as f64);
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
            // How far fan-out trails the log: events committed (as far as this node has heard)
            // and not yet handed to subscribers once this batch is.
            let head = *wake.borrow();
            metrics::histogram!("ferrosync_changelog_fanout_lag_events").record(head.saturating_sub(cursor) as f64);
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
/// several subscriptions sees the service's events in the order they were committed. Frames
/// for sleeping connections are appended to their outlets, and each outlet written out once
/// at the end: a connection several events behind gets them in one write.
fn dispatch(feed: &Feed, events: Vec<StoredEvent>) {
    let subs = feed.subs.read().unwrap_or_else(|e| e.into_inner());
    let queries = feed.queries.read().unwrap_or_else(|e| e.into_inner());
    let mut listed = Listed::new();
    let mut delivered = Vec::new();
    for event in events {
        if !queries.is_empty() {
            dispatch_queries(&queries, &event);
        }
        let Some(list) = subs.get(&event.object_sid) else { continue };
        let delivery = Arc::new(Delivery::from_stored(event));
        metrics::counter!("ferrosync_events_delivered_total").increment(list.len() as u64);
        for sub in list.values() {
            offer(sub, &delivery, delivered.len(), &mut listed);
        }
        delivered.push(delivery);
    }
    drop((subs, queries));
    write_out(listed, delivered);
}

/// The outlets a batch appended to, each with the batch's index of the first delivery
/// appended there (which wakes its task, should the write-out hand the turn back).
type Listed = Vec<(Arc<Outlet>, usize)>;

/// Outlets written out by one task. A batch for more is shared among tasks: the tailer goes
/// back to the log at once, other tasks (the writers' requests among them) run between the
/// shares, and a runtime with several threads writes the shares side by side. Events the
/// tailer reads meanwhile join what the outlets still hold, and go out in the same write.
const SHARE: usize = 256;

fn write_out(mut listed: Listed, delivered: Vec<Arc<Delivery>>) {
    if listed.len() <= SHARE {
        for (outlet, first) in &listed {
            if let Some(first) = delivered.get(*first) {
                outlet.write_out(first);
            }
        }
        return;
    }
    let delivered = Arc::new(delivered);
    while !listed.is_empty() {
        let part = listed.split_off(listed.len().saturating_sub(SHARE));
        let delivered = delivered.clone();
        // Outside tokio's cooperative budget, as the tailer is (see `Hub::feed`).
        tokio::spawn(tokio::task::unconstrained(async move {
            for (outlet, first) in &part {
                if let Some(first) = delivered.get(*first) {
                    outlet.write_out(first);
                }
            }
        }));
    }
}

fn offer(sub: &Subscriber, delivery: &Arc<Delivery>, at: usize, listed: &mut Listed) {
    if sub.overflow.is_raised() {
        return;
    }
    let Some(outlet) = &sub.outlet else { return queue(sub, delivery.clone()) };
    let mut out = outlet.lock();
    if out.is_direct() {
        let Some(cursor) = &sub.cursor else {
            // A live query's event goes through the task; so must every later one.
            out.stop_direct();
            return queue(sub, delivery.clone());
        };
        if advance_cursor(cursor, delivery.seq) && !outlet.take_echo(delivery.seq) {
            let frame = outlet.frame(delivery);
            if !frame.is_empty() && out.append(frame) {
                listed.push((outlet.clone(), at));
            }
        }
        return;
    }
    // Under the outlet's lock, so the task cannot start to sleep between seeing its queue
    // empty and this delivery entering it (see `Writer::rest`).
    queue(sub, delivery.clone());
}

/// Queues a delivery for the connection's task.
fn queue(sub: &Subscriber, delivery: Arc<Delivery>) {
    if let Err(mpsc::error::TrySendError::Full(_)) = sub.tx.try_send(delivery) {
        metrics::counter!("ferrosync_ws_queue_overflows_total").increment(1);
        sub.overflow.raise();
    }
}

/// A feed's live queries. Most queries pin a field to a few values (`data.team == "eng"`, an
/// `in`): those are filed under each value's text, so an event is judged only against the
/// queries filed under its item's old or new value, plus the queries that pin nothing.
#[derive(Default)]
pub struct QueryTable {
    queries: HashMap<Sid, LiveQuery>,
    /// Field → value text → the queries pinning that field to that value.
    pinned: HashMap<Path, HashMap<String, Vec<Sid>>>,
    /// Queries that pin no field (judged against every Map event).
    loose: Vec<Sid>,
}

/// The field and value texts a query's top-level conjunction pins it to, when every value is a
/// string or a boolean (compared by text; a number literal also equals numeric strings in
/// other spellings, so such a query stays loose).
fn pins(expr: &Expr) -> Option<(Path, Vec<String>)> {
    expr.constraints().into_iter().find_map(|c| {
        let values = c.one_of?;
        let texts = values
            .iter()
            .map(|v| match v {
                QueryValue::Str(s) => Some(s.clone()),
                QueryValue::Bool(b) => Some(b.to_string()),
                QueryValue::Number(_) | QueryValue::Array(_) => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some((c.path, texts))
    })
}

/// An item's field as the text a string literal is compared with (the query language's rule).
fn text_of(path: &Path, key: &str, data: Option<&serde_json::Value>) -> Option<String> {
    let data = data?;
    match field_value(path, key, data)? {
        FieldValue::Str(s) => Some(s.to_owned()),
        FieldValue::Json(serde_json::Value::String(s)) => Some(s.clone()),
        FieldValue::Json(serde_json::Value::Number(n)) => Some(n.to_string()),
        FieldValue::Json(serde_json::Value::Bool(b)) => Some(b.to_string()),
        FieldValue::Json(_) => None,
    }
}

impl QueryTable {
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    fn insert(&mut self, id: Sid, live: LiveQuery) {
        match pins(&live.expr) {
            Some((path, texts)) => {
                let by_text = self.pinned.entry(path).or_default();
                for t in texts {
                    by_text.entry(t).or_default().push(id.clone());
                }
            }
            None => self.loose.push(id.clone()),
        }
        self.queries.insert(id, live);
    }

    fn remove(&mut self, id: &Sid) -> bool {
        let Some(live) = self.queries.remove(id) else { return false };
        match pins(&live.expr) {
            Some((path, texts)) => {
                if let Some(by_text) = self.pinned.get_mut(&path) {
                    for t in texts {
                        if let Some(ids) = by_text.get_mut(&t) {
                            ids.retain(|q| q != id);
                            if ids.is_empty() {
                                by_text.remove(&t);
                            }
                        }
                    }
                    if by_text.is_empty() {
                        self.pinned.remove(&path);
                    }
                }
            }
            None => self.loose.retain(|q| q != id),
        }
        true
    }

    /// The queries `event` may concern: a pinned query whose value neither the old nor the new
    /// item has matches neither, so its results cannot change.
    fn concerned(&self, event: &Event) -> Vec<&Sid> {
        let mut out: Vec<&Sid> = self.loose.iter().collect();
        if event.kind == EventKind::MapRemoved {
            out.extend(self.pinned.values().flat_map(|by| by.values().flatten()));
            return out;
        }
        let key = event.item_key.as_deref().unwrap_or_default();
        for (path, by_text) in &self.pinned {
            let old = text_of(path, key, event.previous_data.as_deref());
            let new = text_of(path, key, event.data.as_deref());
            for text in [&old, &new].into_iter().flatten() {
                out.extend(by_text.get(text).into_iter().flatten());
            }
            // An item removed or changed without its former data: every query pinned here may
            // have held it.
            if matches!(event.kind, EventKind::MapItemRemoved | EventKind::MapItemUpdated)
                && event.previous_data.is_none()
            {
                out.extend(by_text.values().flatten());
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Evaluates a Map event against the live queries it may concern (the event parsed once for
/// all of them) and hands each query whose results it changes its own event.
fn dispatch_queries(table: &QueryTable, stored: &StoredEvent) {
    let Ok(event) = serde_json::from_str::<Event>(stored.json.get()) else { return };
    if event.object_kind != ObjectKind::Map {
        return;
    }
    for id in table.concerned(&event) {
        let Some(live) = table.queries.get(id) else { continue };
        if live.maps.as_ref().is_some_and(|m| !m.contains(&event.object_sid)) {
            continue;
        }
        if let Some(change) = transition(&live.def, &live.expr, &event)
            && let Some(stored) = super::live::query_event(id, &event, change)
        {
            let delivery = Arc::new(Delivery::from_stored(stored));
            metrics::counter!("ferrosync_live_query_updates_total").increment(1);
            offer(&live.sub, &delivery, 0, &mut Listed::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::index::IndexSource;
    use ferrosync_core::sid::SidKind;
    use serde_json::json;

    fn live(q: &str) -> LiveQuery {
        let (tx, _rx) = mpsc::channel(1);
        LiveQuery {
            def: IndexDef { name: "i".into(), source: IndexSource::MapPrefix("m".into()), fields: vec![] },
            expr: Arc::new(ferrosync_query::parse(q).expect("parses")),
            maps: None,
            sub: Subscriber { conn: 1, tx, overflow: Arc::new(Overflow::default()), outlet: None, cursor: None },
        }
    }

    fn event(kind: EventKind, data: Option<serde_json::Value>, previous: Option<serde_json::Value>) -> Event {
        Event {
            seq: 1,
            token: String::new(),
            kind,
            service_sid: Sid::new(SidKind::Service),
            object_sid: Sid::new(SidKind::Map),
            object_kind: ObjectKind::Map,
            unique_name: Some("m1".into()),
            item_index: None,
            item_key: Some("k".into()),
            message_sid: None,
            revision: 1,
            data: data.map(Into::into),
            previous_data: previous.map(Into::into),
            date_expires: None,
            date: ferrosync_core::timestamp::Timestamp::now(),
            identity: "system".into(),
            reason: None,
        }
    }

    #[test]
    fn an_event_concerns_the_queries_pinned_to_its_old_or_new_value_and_the_loose_ones() {
        let mut t = QueryTable::default();
        let ids: Vec<Sid> = (0..5).map(|_| Sid::new(SidKind::LiveQuery)).collect();
        t.insert(ids[0].clone(), live(r#"data.team == "eng""#));
        t.insert(ids[1].clone(), live(r#"data.team in ["ops", "eng"] and data.level > 2"#));
        t.insert(ids[2].clone(), live(r#"data.team == "sales""#));
        t.insert(ids[3].clone(), live(r#"data.level > 2 or data.team == "x""#));
        t.insert(ids[4].clone(), live(r#"data.on == true"#));
        let got = |t: &QueryTable, e: &Event| {
            let mut v: Vec<usize> =
                t.concerned(e).into_iter().filter_map(|id| ids.iter().position(|x| x == id)).collect();
            v.sort_unstable();
            v
        };
        let moved = event(EventKind::MapItemUpdated, Some(json!({"team": "eng"})), Some(json!({"team": "sales"})));
        assert_eq!(got(&t, &moved), vec![0, 1, 2, 3]);
        let flag = event(EventKind::MapItemAdded, Some(json!({"on": true})), None);
        assert_eq!(got(&t, &flag), vec![3, 4]);
        let blind = event(EventKind::MapItemRemoved, None, None);
        assert_eq!(got(&t, &blind), vec![0, 1, 2, 3, 4]);
        assert!(t.remove(&ids[0]) && !t.remove(&ids[0]));
        assert_eq!(got(&t, &moved), vec![1, 2, 3]);
    }

    /// Connections leave an object's subscribers from the front, the back, the middle, and
    /// from a place an earlier removal moved another into: the ones left, and only they, get
    /// the object's next event, and the node's count of subscriptions follows.
    #[tokio::test]
    async fn connections_leave_in_any_order_and_only_those_left_hear_the_object() {
        use ferrosync_core::auth::Principal;
        use ferrosync_core::engine::{ObjectPatch, OpenRequest, ServiceSpec};
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (engine, _, _) = crate::open_engine(&crate::ServerConfig::new(dir.path())).await.expect("engine");
        let root = Principal::Root;
        let service = engine.create_service(&root, ServiceSpec::default()).await.expect("service");
        let svc = service.sid.as_str();
        let (doc, _) = engine.open(&root, svc, ObjectKind::Document, OpenRequest::default()).await.expect("document");
        let hub = Hub::new(engine.clone());
        let mut subscribers = Vec::new();
        for _ in 0..8 {
            let (tx, rx) = mpsc::channel(4);
            let conn = hub.next_connection_id();
            let sub = Subscriber { conn, tx, overflow: Arc::new(Overflow::default()), outlet: None, cursor: None };
            hub.subscribe(&service.sid, &doc.sid, sub).await.expect("subscribe");
            subscribers.push((conn, rx));
        }
        assert_eq!(engine.notifier().subscriptions(), 8);
        let leaving = [0, 7, 3, 6, 0];
        for i in leaving {
            hub.unsubscribe(&service.sid, &doc.sid, subscribers[i].0).await;
        }
        assert_eq!(engine.notifier().subscriptions(), 4, "the second leave of the first changes nothing");
        let patch = ObjectPatch { data: Some(json!({ "n": 1 })), ..ObjectPatch::default() };
        let updated =
            engine.update_object(&root, svc, ObjectKind::Document, doc.sid.as_str(), patch).await.expect("update");
        for (i, (_, rx)) in subscribers.iter_mut().enumerate() {
            let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("an answer in time");
            if leaving.contains(&i) {
                assert!(got.is_none(), "subscriber {i} left, so the hub holds no sender of its queue");
            } else {
                let delivery = got.expect("the update");
                let event: serde_json::Value = serde_json::from_str(delivery.event.json.get()).expect("event JSON");
                assert_eq!(delivery.object_sid, doc.sid, "subscriber {i}");
                assert_eq!(event["revision"], json!(updated.revision), "subscriber {i}");
            }
        }
    }
}
