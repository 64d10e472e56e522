//! A room's history: `/messages` pages through the timeline List in either direction from a
//! room token or a sync token, and `/context` shows the events around one event.

use super::sync::passes;
use super::*;
use crate::matrix::event::{Viewer, for_client, state_key_of};
use crate::matrix::filter::RoomEventFilter;
use crate::matrix::room::{state_name, timeline_name};
use crate::matrix::sync::{Position, room_token};
use crate::model::ObjectRef;
use crate::page::Order;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Events per page when the client does not say, and at most.
pub const DEFAULT_MESSAGES_LIMIT: u64 = 10;
const MAX_MESSAGES_LIMIT: u64 = 1000;
/// Items read per request at most, whatever the filter drops.
const MAX_SCAN: u64 = 5000;

/// What a timeline scan found.
struct Scan {
    chunk: Vec<Value>,
    first: Option<u64>,
    last: Option<u64>,
    reached_end: bool,
}

/// What `/messages` asks for.
#[derive(Debug, Clone, Default)]
pub struct MessagesRequest {
    pub from: Option<Position>,
    pub to: Option<Position>,
    pub backwards: bool,
    pub limit: Option<u64>,
    pub filter: RoomEventFilter,
}

impl Engine {
    /// How much of the room the caller may read: everything while joined, up to its
    /// membership event once it has left or was banned.
    async fn readable_until(&self, caller: &MatrixCaller, room_id: &str) -> Result<Option<u64>, CoreError> {
        let entry = self.matrix_get(&crate::matrix::room::memberships_name(&caller.user_id), room_id).await?;
        let membership = entry.as_ref().and_then(|e| e["membership"].as_str()).unwrap_or_default();
        match membership {
            "join" => Ok(None),
            "leave" | "ban" => Ok(entry
                .as_ref()
                .and_then(|e| e["event_id"].as_str())
                .and_then(|id| crate::matrix::event::event_index(room_id, id))),
            _ => Err(CoreError::Forbidden(format!("{} is not in room {room_id}", caller.user_id))),
        }
    }

    /// A position as a timeline index: a sync token becomes the place of the room's first event
    /// committed after it (or the end of the timeline).
    async fn position_index(&self, room_id: &str, pos: Position) -> Result<u64, CoreError> {
        match pos {
            Position::Room(index) => Ok(index),
            Position::Sync(seq) => {
                let svc = self.service(&crate::auth::Principal::Root, crate::engine::services::MATRIX_SERVICE).await?;
                let timeline = self
                    .store
                    .object(&svc.sid, ObjectKind::List, &ObjectRef::UniqueName(timeline_name(room_id)))
                    .await?
                    .ok_or_else(|| CoreError::not_found(NotFoundKind::MatrixRoom, room_id))?;
                let after = self.read_events(&svc.sid, seq, Some(&timeline.sid), 1).await?;
                let first = after.first().and_then(|e| {
                    serde_json::from_str::<crate::log::Event>(e.json.get()).ok().and_then(|e| e.item_index)
                });
                Ok(first.unwrap_or(timeline.next_index))
            }
        }
    }

    /// `/messages`: a page of the room's events (newest first when backwards), with its start
    /// and end tokens and, when lazy-loading, the senders' member events.
    pub async fn matrix_messages(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        req: MessagesRequest,
    ) -> Result<Value, CoreError> {
        let cap = self.readable_until(caller, room_id).await?;
        // The query's limit, or the filter's when smaller.
        let limit = req.limit.unwrap_or(DEFAULT_MESSAGES_LIMIT).min(req.filter.events.limit.unwrap_or(u64::MAX));
        let limit = limit.clamp(1, MAX_MESSAGES_LIMIT) as usize;
        let from = match req.from {
            Some(p) => Some(self.position_index(room_id, p).await?),
            None => None,
        };
        let to = match req.to {
            Some(p) => Some(self.position_index(room_id, p).await?),
            None => None,
        };
        // Everything is read as "before position p": backwards from p covers indexes < p.
        let ceiling = cap.map(|c| c + 1);
        let viewer = caller.viewer();
        // Backwards from p covers indexes below p (from the newest when there is no p);
        // forwards from p covers p and above. Either way `to` and the readable ceiling stop it.
        let scan = if req.backwards {
            let below = from.map_or(ceiling, |f| Some(ceiling.map_or(f, |c| f.min(c))));
            if below == Some(0) {
                Scan { chunk: Vec::new(), first: None, last: None, reached_end: true }
            } else {
                let stop = move |i: u64| to.is_some_and(|t| i < t);
                let at = below.map(|p| p - 1);
                self.scan_timeline(room_id, true, at, &stop, limit, &req.filter, &viewer).await?
            }
        } else {
            let stop = move |i: u64| to.is_some_and(|t| i >= t) || ceiling.is_some_and(|c| i >= c);
            let at = Some(from.unwrap_or(0));
            self.scan_timeline(room_id, false, at, &stop, limit, &req.filter, &viewer).await?
        };
        let (chunk, first_seen, last_seen, reached_end) = (scan.chunk, scan.first, scan.last, scan.reached_end);
        let start = match from {
            Some(f) => room_token(f),
            None if req.backwards => room_token(ceiling.or(first_seen.map(|i| i + 1)).unwrap_or(0)),
            None => room_token(0),
        };
        let mut answer = json!({ "start": start, "chunk": chunk });
        if !reached_end && let Some(last) = last_seen {
            answer["end"] = json!(room_token(if req.backwards { last } else { last + 1 }));
        }
        if req.filter.lazy_load_members {
            answer["state"] = json!(self.members_of_senders(room_id, &answer["chunk"], &viewer).await?);
        }
        Ok(answer)
    }

    /// Reads the timeline one page at a time from `at` (inclusive; `None` backwards: the
    /// newest) until `limit` events pass the filter, `stop` says so, or the scan budget is spent.
    #[allow(clippy::too_many_arguments)]
    async fn scan_timeline(
        &self,
        room_id: &str,
        backwards: bool,
        mut at: Option<u64>,
        stop: &(dyn Fn(u64) -> bool + Send + Sync),
        limit: usize,
        filter: &RoomEventFilter,
        viewer: &Viewer<'_>,
    ) -> Result<Scan, CoreError> {
        let order = if backwards { Order::Desc } else { Order::Asc };
        let mut scan = Scan { chunk: Vec::new(), first: None, last: None, reached_end: false };
        let mut scanned = 0u64;
        loop {
            let page = self.matrix_page(ObjectKind::List, &timeline_name(room_id), order, at, 100).await?;
            if page.is_empty() {
                scan.reached_end = true;
                return Ok(scan);
            }
            for item in page {
                let Some(index) = item.index else { continue };
                if stop(index) {
                    scan.reached_end = true;
                    return Ok(scan);
                }
                scanned += 1;
                scan.first.get_or_insert(index);
                scan.last = Some(index);
                if passes(filter, room_id, &item.data) {
                    scan.chunk.push(for_client(&item.data, viewer, true));
                }
                if scan.chunk.len() >= limit || scanned >= MAX_SCAN {
                    return Ok(scan);
                }
            }
            at = match (backwards, scan.last) {
                (true, Some(0)) | (_, None) => {
                    scan.reached_end = true;
                    return Ok(scan);
                }
                (true, Some(i)) => Some(i - 1),
                (false, Some(i)) => Some(i + 1),
            };
        }
    }

    /// The current member events of the senders of `events`.
    async fn members_of_senders(
        &self,
        room_id: &str,
        events: &Value,
        viewer: &Viewer<'_>,
    ) -> Result<Vec<Value>, CoreError> {
        let senders: BTreeSet<&str> =
            events.as_array().into_iter().flatten().filter_map(|e| e["sender"].as_str()).collect();
        let mut out = Vec::new();
        for sender in senders {
            let key = crate::matrix::room::state_entry("m.room.member", sender);
            if let Some(member) = self.matrix_get(&state_name(room_id), &key).await? {
                out.push(for_client(&member, viewer, true));
            }
        }
        Ok(out)
    }

    /// `/context`: the event, up to `limit` events around it (half before, half after), and
    /// the room's state (members of the senders when lazy-loading).
    pub async fn matrix_context(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        event_id: &str,
        limit: Option<u64>,
        filter: RoomEventFilter,
    ) -> Result<Value, CoreError> {
        let cap = self.readable_until(caller, room_id).await?;
        let index = self.event_position(room_id, event_id).await?;
        if cap.is_some_and(|c| index > c) {
            return Err(CoreError::not_found(NotFoundKind::MatrixEvent, event_id));
        }
        let limit = limit.unwrap_or(DEFAULT_MESSAGES_LIMIT).min(MAX_MESSAGES_LIMIT);
        let before_n = limit / 2;
        let after_n = limit - before_n;
        let viewer = caller.viewer();
        let event = self
            .matrix_page(ObjectKind::List, &timeline_name(room_id), Order::Asc, Some(index), 1)
            .await?
            .into_iter()
            .next()
            .map(|i| for_client(&i.data, &viewer, true))
            .ok_or_else(|| CoreError::not_found(NotFoundKind::MatrixEvent, event_id))?;
        let around = |backwards: bool, from: u64, n: u64| MessagesRequest {
            from: Some(Position::Room(from)),
            to: None,
            backwards,
            limit: Some(n.max(1)),
            filter: filter.clone(),
        };
        let before = if before_n > 0 && index > 0 {
            self.matrix_messages(caller, room_id, around(true, index, before_n)).await?
        } else {
            json!({ "chunk": [], "end": room_token(index) })
        };
        let after = if after_n > 0 {
            self.matrix_messages(caller, room_id, around(false, index + 1, after_n)).await?
        } else {
            json!({ "chunk": [], "end": room_token(index + 1) })
        };
        let state: Vec<Value> = if filter.lazy_load_members {
            let mut all = before["chunk"].as_array().cloned().unwrap_or_default();
            all.extend(after["chunk"].as_array().cloned().unwrap_or_default());
            all.push(event.clone());
            self.members_of_senders(room_id, &Value::Array(all), &viewer).await?
        } else {
            self.matrix_items(ObjectKind::Map, &state_name(room_id))
                .await?
                .iter()
                .filter(|i| state_key_of(&i.data).is_some())
                .map(|i| for_client(&i.data, &viewer, true))
                .collect()
        };
        Ok(json!({
            "event": event,
            "events_before": before["chunk"],
            "events_after": after["chunk"],
            "start": before.get("end").cloned().unwrap_or_else(|| json!(room_token(0))),
            "end": after.get("end").cloned().unwrap_or_else(|| json!(room_token(index + 1))),
            "state": state,
        }))
    }
}
