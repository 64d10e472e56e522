//! Live and instant queries as the SDK asks for them (`client.liveQuery`,
//! `client.instantQuery`), over the indexes the connection's service declares: an index named
//! `tr-worker` answers Twilio's `tr-worker` queries.
//!
//! * `POST /v3/Insights/{index}/Items` with `{query_string, type?}` runs the query and answers
//!   `{query_id, last_event_id, items: [{key, data, revision}], meta}`. Nothing is kept: the
//!   query id only names the query the client then subscribes to.
//! * `POST /v4/Subscriptions` with `{object_type: "live_query", object_sid: <query id>,
//!   index_name, query_string, last_event_id}` registers the query with the hub, replays what
//!   the log holds after `last_event_id` (judged event by event as the hub judges live ones),
//!   and then pushes `live_query_item_updated` / `live_query_item_removed`.
//!
//! Event ids are change-log positions, as for every object on this face. The SDK also uses an
//! item's `revision` / `item_revision` as that item's event id (`InsightsItem.lastEventId`: it
//! ignores an update whose id is not above the one it holds), so this face sends the position
//! there too: the position of the event for pushes, the position the results are as of for
//! the items of a reply. That keeps the SDK's check right across Maps recreated with fresh item
//! revisions, and lets it drop what a replay sends twice.
//!
//! Keys: an index over one Map gives item keys as they are; an index over a Map prefix, whose
//! Maps may share keys, gives `{map}/{key}`.
//!
//! A removed Map takes all its items out of the results, which a stateless push cannot list.
//! The SDK's answer to that is `live_query_updated`: the whole result set, items it holds
//! but not listed being removed. So on a Map removal this face runs the query again and sends
//! that, at the position it is as of, and skips the events up to that position (the snapshot
//! has them). The same snapshot serves a client whose last event id is older than the log
//! keeps.

use super::connection::{Flow, Session, send, server_frame_id};
use super::error::{self, CdsError, TOO_MANY_SUBSCRIPTIONS, Target};
use super::events::{self, SYNC_EVENT};
use super::request::{CdsReply, CdsRequest, Cx, date};
use super::types::{PageMeta, SubscriptionRequest};
use crate::api::twilio::error::{Subject, TwilioError};
use crate::realtime::hub::Delivery;
use crate::realtime::wire::Writer;
use bytes::Bytes;
use ferrosync_core::CoreError;
use ferrosync_core::engine::QueryItem;
use ferrosync_core::index::transition;
use ferrosync_core::log::Event;
use ferrosync_core::page::{Cursor, Order, PageRequest, PageToken};
use ferrosync_core::sid::{Sid, SidKind};
use ferrosync_core::store::StoredEvent;
use ferrosync_core::timestamp::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// The most items one reply or snapshot holds. A live query matching more is refused (narrow
/// it); an instant query pages (`PageSize`, `PageToken`; the SDK asks for one page only).
pub const MAX_RESULTS: u32 = 10_000;
/// Twilio's code for a query that cannot be run (the SDK uses it for a missing query).
pub const INVALID_QUERY: (u16, u32) = (400, 54507);
/// Log events read at a time while replaying.
const REPLAY_PAGE: u32 = 1000;

/// The body of `POST /v3/Insights/{index}/Items`.
#[derive(Debug, Default, Deserialize)]
struct QueryBody {
    #[serde(default)]
    query_string: Option<Value>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// A live query this connection holds, under the hub key it was registered with. Each
/// registration has a key of its own: the client's query id may be held by another
/// connection too (its previous one, not yet gone), and the hub keys queries per service.
#[derive(Debug, Clone)]
pub(super) struct LiveSub {
    /// The id the client knows the query by.
    pub client_id: Sid,
    pub index: String,
    pub query: String,
    /// A prefix index: keys are qualified by their Map.
    pub many: bool,
}

/// The key the SDK holds an item by.
pub fn item_key(many: bool, map: &str, key: &str) -> String {
    if many { format!("{map}/{key}") } else { key.to_owned() }
}

/// A query error as Twilio reports it: limits with their own codes (54509, 54510), any other
/// query that does not parse 54507, an unknown index 404.
fn query_error(e: CoreError) -> CdsError {
    match e {
        CoreError::InvalidQuery { twilio_code: None, .. } => CdsError::new(INVALID_QUERY, e.to_string()),
        e => TwilioError::from_core(e, Subject::Other),
    }
}

/// `POST /v3/Insights/{index}/Items`.
pub async fn items(cx: &Cx<'_>, req: &CdsRequest<'_>, index: &str) -> Result<CdsReply, CdsError> {
    let body: QueryBody = req.json()?;
    let query = match body.query_string {
        Some(Value::String(q)) => q,
        Some(_) => return Err(CdsError::new(INVALID_QUERY, "query_string must be a string")),
        None => return Err(CdsError::new(INVALID_QUERY, "query_string is required")),
    };
    let live = match body.kind.as_deref() {
        None | Some("instant_query") => false,
        Some("live_query") => true,
        Some(other) => return Err(error::bad_request(format!("unknown query type '{other}'"))),
    };
    let page = if live {
        PageRequest { order: Order::Asc, from: None, after: None, limit: MAX_RESULTS }
    } else {
        page_request(req)?
    };
    let order = page.order;
    let found = cx.engine.query(cx.principal, cx.svc(), index, &query, page).await.map_err(query_error)?;
    if live && found.next.is_some() {
        return Err(error::bad_request(format!(
            "more than {MAX_RESULTS} items match; narrow the query for a live query"
        )));
    }
    let many = cx.engine.index(cx.principal, cx.svc(), index).await.map_err(query_error)?.source.many();
    let previous_token = match (live, found.items.first()) {
        (false, Some(first)) => previous(cx, index, &query, order, &cursor(many, first)).await?,
        _ => None,
    };
    let meta = PageMeta { previous_token, next_token: found.next.map(|t| t.encode()) };
    let items: Vec<Value> = found.items.iter().map(|i| item_view(many, i, found.seq)).collect();
    let reply = json!({
        "query_id": Sid::new(SidKind::LiveQuery),
        "last_event_id": found.seq,
        "items": items,
        "meta": meta,
    });
    Ok(CdsReply::json(200, &reply))
}

fn item_view(many: bool, item: &QueryItem, position: u64) -> Value {
    json!({ "key": item_key(many, &item.map, &item.key), "data": item.data, "revision": position })
}

/// `PageSize` (1 to [`MAX_RESULTS`], all of them by default), `PageToken` and `Order`.
fn page_request(req: &CdsRequest<'_>) -> Result<PageRequest, CdsError> {
    let limit = match req.params.get("PageSize") {
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=MAX_RESULTS).contains(&n) => n,
            _ => return Err(error::bad_request(format!("PageSize must be 1 to {MAX_RESULTS}, got '{s}'"))),
        },
        None => MAX_RESULTS,
    };
    let order = match req.params.get("Order").map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => Order::Asc,
        Some("desc") => Order::Desc,
        Some(other) => return Err(error::bad_request(format!("Order must be asc or desc, got '{other}'"))),
    };
    Ok(match req.params.get("PageToken") {
        Some(t) => {
            let t = PageToken::decode(t).map_err(|e| TwilioError::from_core(e, Subject::Other))?;
            PageRequest { order: t.order, from: None, after: Some(t.after), limit }
        }
        None => PageRequest { order, from: None, after: None, limit },
    })
}

/// Where an item sits in an index's order, as the engine's page tokens say it (the engine's
/// `indexes::cursor`: keep the two alike).
fn cursor(many: bool, item: &QueryItem) -> String {
    if many { format!("{}\u{1f}{}", item.map, item.key) } else { item.key.clone() }
}

/// A token for the page before the one starting at `first`, if anything precedes it.
async fn previous(
    cx: &Cx<'_>,
    index: &str,
    query: &str,
    order: Order,
    first: &str,
) -> Result<Option<String>, CdsError> {
    let back = if order == Order::Asc { Order::Desc } else { Order::Asc };
    let after = Cursor::Key(first.to_owned());
    let probe = PageRequest { order: back, from: None, after: Some(after.clone()), limit: 1 };
    let before = cx.engine.query(cx.principal, cx.svc(), index, query, probe).await.map_err(query_error)?;
    Ok((!before.items.is_empty()).then(|| PageToken { order: back, after }.encode()))
}

/// What a query's event from the hub becomes on this face.
pub(super) enum Rendered {
    Frame(Bytes),
    /// A Map of the index went: the client needs the whole result set again.
    Resync,
    Nothing,
}

/// The native event [`crate::realtime::live::query_event`] made.
#[derive(Deserialize)]
struct NativeQueryEvent {
    seq: u64,
    #[serde(rename = "type")]
    kind: String,
    map: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    data: Option<Value>,
    date: Timestamp,
}

/// The notification for a query event, in the SDK's words.
pub(super) fn render(sub: &LiveSub, internal: &Sid, stored: &StoredEvent) -> Rendered {
    let e: NativeQueryEvent = match serde_json::from_str(stored.json.get()) {
        Ok(e) => e,
        Err(err) => {
            tracing::warn!(seq = stored.seq, error = %err, "a live query event does not parse; not sent over twilsock");
            return Rendered::Nothing;
        }
    };
    let mut event = json!({
        "query_id": sub.client_id,
        "id": e.seq,
        "last_event_id": e.seq,
        "item_revision": e.seq,
        "date_created": date(e.date),
    });
    let key = e.key.as_deref().map(|k| item_key(sub.many, &e.map, k));
    let event_type = match (e.kind.as_str(), key) {
        ("live_query_item_updated", Some(key)) => {
            event["item_key"] = key.into();
            event["item_data"] = e.data.unwrap_or(Value::Null);
            "live_query_item_updated"
        }
        ("live_query_item_removed", Some(key)) => {
            event["item_key"] = key.into();
            "live_query_item_removed"
        }
        ("live_query_map_removed", _) => return Rendered::Resync,
        _ => return Rendered::Nothing,
    };
    // Shared by every frame of this registration at this position: derived, not random.
    let id = format!("TM{}{:016x}", internal.as_str().get(2..18).unwrap_or("0000000000000000"), e.seq);
    Rendered::Frame(notification(&id, event_type, event))
}

/// `live_query_updated`: the whole result set as of `position`.
fn snapshot_frame(sub: &LiveSub, items: &[QueryItem], position: u64) -> Bytes {
    let items: Vec<Value> = items.iter().map(|i| item_view(sub.many, i, position)).collect();
    let event = json!({
        "query_id": sub.client_id,
        "id": position,
        "last_event_id": position,
        "items": items,
    });
    notification(&server_frame_id(), "live_query_updated", event)
}

/// Query notifications travel on the ordered stream and say they are in order: the SDK then
/// moves the query's last event id along with each (it cannot tell otherwise for queries).
fn notification(id: &str, event_type: &str, event: Value) -> Bytes {
    let payload = json!({ "event_type": event_type, "strictly_ordered": true, "event": event });
    events::notification(id, SYNC_EVENT, payload.to_string().as_bytes())
}

impl Session {
    /// Establishes a live query: registered first, then the log replayed from the client's
    /// last event id; live events queued meanwhile are filtered by where the replay ended.
    pub(super) async fn establish_query(
        &mut self,
        sink: &mut Writer,
        request: &SubscriptionRequest,
    ) -> Result<Option<(&'static str, Value)>, CdsError> {
        let client_id = Sid::parse_kind(&request.object_sid, SidKind::LiveQuery)
            .map_err(|_| error::bad_request(format!("'{}' is not a live query id", request.object_sid)))?;
        let index = request.index_name.clone().ok_or_else(|| error::bad_request("index_name is required"))?;
        let query =
            request.query_string.clone().ok_or_else(|| CdsError::new(INVALID_QUERY, "query_string is required"))?;
        let engine = self.state.engine.clone();
        let svc = self.caller.service.sid.clone();
        let (def, expr, maps) =
            engine.live_query_plan(&self.caller.principal, svc.as_str(), &index, &query).await.map_err(query_error)?;
        // Poked again (a lost answer, a reconnect): the new registration replaces the old.
        self.cancel_query(&client_id).await;
        let max = self.state.settings.max_subscriptions;
        if self.subs.len() >= max {
            let message = format!("a connection may hold at most {max} subscriptions");
            return Err(CdsError::new(TOO_MANY_SUBSCRIPTIONS, message));
        }
        let internal = Sid::new(SidKind::LiveQuery);
        let sub = LiveSub { client_id: client_id.clone(), index, query, many: def.source.many() };
        self.subs
            .register_query(&internal, def.clone(), expr.clone(), maps.clone())
            .await
            .map_err(|e| error::from_core(e, Target::Subscriptions))?;
        self.live.insert(internal.clone(), sub.clone());
        let mut cursor = match self.start_position(request.last_event_id.as_ref()).await {
            Ok(start) => Some(start.seq),
            // Older than the log: the whole result set says all the client missed.
            Err(CoreError::ResyncRequired) => None,
            Err(e) => {
                self.cancel_query(&client_id).await;
                return Err(error::from_core(e, Target::Subscriptions));
            }
        };
        let failed = |e: CoreError| error::from_core(e, Target::Subscriptions);
        loop {
            let position = match cursor {
                Some(p) => p,
                None => match self.snapshot(sink, &sub, 0).await {
                    Ok(Some(p)) => p,
                    Ok(None) => return Ok(None),
                    Err(e) => {
                        self.cancel_query(&client_id).await;
                        return Err(failed(e));
                    }
                },
            };
            cursor = Some(position);
            let events = match engine.store().events(&svc, position, None, REPLAY_PAGE).await {
                Ok(events) => events,
                Err(e) => {
                    self.cancel_query(&client_id).await;
                    return Err(failed(e.into()));
                }
            };
            let full = events.len() == REPLAY_PAGE as usize;
            let mut resync_at = None;
            for stored in &events {
                cursor = Some(stored.seq);
                let Ok(event) = serde_json::from_str::<Event>(stored.json.get()) else { continue };
                if maps.as_ref().is_some_and(|m| !m.contains(&event.object_sid)) {
                    continue;
                }
                let Some(change) = transition(&def, &expr, &event) else { continue };
                let Some(native) = crate::realtime::live::query_event(&internal, &event, change) else { continue };
                match render(&sub, &internal, &native) {
                    Rendered::Frame(frame) => {
                        if sink.feed(frame).await.is_err() {
                            return Ok(None);
                        }
                    }
                    Rendered::Resync => {
                        resync_at = Some(stored.seq);
                        break;
                    }
                    Rendered::Nothing => {}
                }
            }
            if let Some(seq) = resync_at {
                match self.snapshot(sink, &sub, seq).await {
                    Ok(Some(p)) => cursor = Some(p),
                    Ok(None) => return Ok(None),
                    Err(e) => {
                        self.cancel_query(&client_id).await;
                        return Err(failed(e));
                    }
                }
                continue;
            }
            if !full {
                break;
            }
        }
        if sink.flush().await.is_err() {
            return Ok(None);
        }
        let position = cursor.unwrap_or_default();
        self.subs.set_cursor(&internal, position);
        let established = json!({
            "object_sid": client_id,
            "object_type": "live_query",
            "replay_status": "completed",
            "last_event_id": position,
        });
        Ok(Some(("subscription_established", established)))
    }

    /// Drops this connection's registration of the query the client knows as `client_id`.
    pub(super) async fn cancel_query(&mut self, client_id: &Sid) -> bool {
        let held: Vec<Sid> =
            self.live.iter().filter(|(_, s)| &s.client_id == client_id).map(|(k, _)| k.clone()).collect();
        for internal in &held {
            self.live.remove(internal);
            self.subs.cancel(internal).await;
        }
        !held.is_empty()
    }

    /// Sends a live query's pushed event; on a Map removal, the result set again, after which
    /// events up to its position are skipped. An error ends the connection (the client then
    /// resumes from its last event id).
    pub(super) async fn deliver_query(&mut self, sink: &mut Writer, d: &Delivery) -> std::io::Result<()> {
        let Some(sub) = self.live.get(&d.object_sid).cloned() else { return Ok(()) };
        match render(&sub, &d.object_sid, &d.event) {
            Rendered::Frame(frame) => return sink.feed(frame).await,
            Rendered::Nothing => return Ok(()),
            Rendered::Resync => {}
        }
        match self.snapshot(sink, &sub, d.seq).await {
            Ok(Some(position)) => {
                self.subs.set_cursor(&d.object_sid, position);
                Ok(())
            }
            Ok(None) => Err(std::io::Error::other("the connection ended")),
            Err(e) => {
                tracing::warn!(error = %e, query = %sub.client_id, "a live query's results cannot be read again");
                Err(std::io::Error::other(e))
            }
        }
    }

    /// Sends `live_query_updated` with the query's results as of a position at least `min`
    /// (what the client has been sent so far); returns that position, or `None` when the
    /// connection ended.
    async fn snapshot(&self, sink: &mut Writer, sub: &LiveSub, min: u64) -> Result<Option<u64>, CoreError> {
        let engine = &self.state.engine;
        let svc = self.caller.service.sid.as_str();
        let mut attempts = 0;
        let found = loop {
            let page = PageRequest { order: Order::Asc, from: None, after: None, limit: MAX_RESULTS };
            let found = engine.query(&self.caller.principal, svc, &sub.index, &sub.query, page).await?;
            // The index may not have read the latest events yet: wait for it (briefly).
            if found.seq >= min || attempts >= 50 {
                break found;
            }
            attempts += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if found.next.is_some() {
            tracing::warn!(query = %sub.client_id, "a live query's results were cut at {MAX_RESULTS} items");
        }
        let position = found.seq.max(min);
        if let Flow::Stop = send(sink, snapshot_frame(sub, &found.items, position)).await {
            return Ok(None);
        }
        Ok(Some(position))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::twilsock::frame;
    use ferrosync_core::index::QueryChange;
    use ferrosync_core::log::{EventDraft, EventKind};
    use ferrosync_core::model::ObjectKind;

    fn event(kind: EventKind) -> Event {
        let draft = EventDraft {
            kind,
            object_sid: Sid::new(SidKind::Map),
            object_kind: ObjectKind::Map,
            unique_name: Some("workers-eu".into()),
            item_index: None,
            item_key: Some("w1".into()),
            message_sid: None,
            revision: 3,
            data: Some(json!({"team": "eng"}).into()),
            previous_data: None,
            date_expires: None,
            date: Timestamp(1_700_000_000_000),
            identity: "alice".into(),
            reason: None,
        };
        draft.into_event("epoch", Sid::new(SidKind::Service), 42)
    }

    fn payload(r: Rendered) -> Value {
        let Rendered::Frame(bytes) = r else { panic!("a frame") };
        let f = frame::parse(&bytes, 1 << 20).expect("a frame");
        assert_eq!(f.header.method, "notification");
        serde_json::from_slice(f.payload).expect("json")
    }

    #[test]
    fn query_events_become_the_notifications_the_sdk_reads() {
        let internal = Sid::new(SidKind::LiveQuery);
        let sub =
            LiveSub { client_id: Sid::new(SidKind::LiveQuery), index: "tr".into(), query: "x".into(), many: true };
        let e = event(EventKind::MapItemUpdated);
        let change =
            QueryChange::ItemUpdated { map: "workers-eu".into(), key: "w1".into(), data: json!({"a": 1}), revision: 3 };
        let native = crate::realtime::live::query_event(&internal, &e, change).expect("an event");
        let p = payload(render(&sub, &internal, &native));
        assert_eq!(p["event_type"], "live_query_item_updated");
        assert_eq!(p["strictly_ordered"], true);
        assert_eq!(p["event"]["query_id"], json!(sub.client_id), "the client's id, not the hub's");
        assert_eq!(p["event"]["item_key"], "workers-eu/w1");
        assert_eq!(p["event"]["item_data"], json!({"a": 1}));
        assert_eq!((&p["event"]["item_revision"], &p["event"]["last_event_id"]), (&json!(42), &json!(42)));

        let one = LiveSub { many: false, ..sub.clone() };
        let change = QueryChange::ItemRemoved { map: "workers-eu".into(), key: "w1".into() };
        let native = crate::realtime::live::query_event(&internal, &e, change).expect("an event");
        let p = payload(render(&one, &internal, &native));
        assert_eq!(p["event_type"], "live_query_item_removed");
        assert_eq!(p["event"]["item_key"], "w1");

        let native =
            crate::realtime::live::query_event(&internal, &e, QueryChange::MapRemoved { map: "workers-eu".into() })
                .expect("an event");
        assert!(matches!(render(&sub, &internal, &native), Rendered::Resync));
    }

    #[test]
    fn query_errors_carry_twilio_codes() {
        let bad = |code| CoreError::InvalidQuery { field: "query", message: "m".into(), column: 1, twilio_code: code };
        assert_eq!(query_error(bad(None)).code, 54507);
        assert_eq!(query_error(bad(Some(54509))).code, 54509);
        let missing = CoreError::not_found(ferrosync_core::error::NotFoundKind::Index, "tr-worker");
        let e = query_error(missing);
        assert_eq!((e.status, e.code), (404, 20404));
    }
}
