//! `/sync`: what changed for one user since a token, read from the Matrix service's change log
//! (mostly the in-memory run of recent commits) and, for rooms seen for the first time, from
//! the room's objects. A long-poll waits on the service's notifier and recomputes on every
//! wake-up, so it returns only once something passes the caller's filter.

use super::*;
use crate::log::{Event, EventKind};
use crate::matrix::event::{Viewer, for_client, project, replaced_state, state_key_of, stripped};
use crate::matrix::filter::{Filter, RoomEventFilter};
use crate::matrix::room::{memberships_name, state_name, timeline_name};
use crate::matrix::sync::{SyncToken, room_token};
use crate::model::Item;
use crate::page::{Cursor, Order, PageRequest};
use crate::sid::Sid;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

/// What a `/sync` asks for.
#[derive(Debug, Clone, Default)]
pub struct SyncParams {
    pub since: Option<SyncToken>,
    pub filter: Filter,
    pub full_state: bool,
    /// How long to wait when there is nothing to say; the face caps it.
    pub timeout: Duration,
    /// `online`, `unavailable` or `offline`; absent counts as online.
    pub set_presence: Option<String>,
}

/// Timeline events per room when the filter does not say.
pub const DEFAULT_TIMELINE_LIMIT: u64 = 10;
/// An incremental sync further behind than this many events rebuilds its rooms from their
/// objects (a gappy, `limited` answer) instead of replaying the log.
const MAX_WINDOW: usize = 20_000;
const LOG_BATCH: u32 = 1024;
/// To-device messages per sync; the rest come with the next one.
const TO_DEVICE_LIMIT: u32 = 100;
/// Unread counts are exact up to this many events after the user's read receipt.
pub const UNREAD_SCAN: u32 = 100;
/// The account data type of push rules.
const PUSH_RULES: &str = "m.push_rules";
/// How many items a room's newest events are read in when the timeline filter drops some.
const TIMELINE_SCAN: u64 = 1000;

/// Where an object of the Matrix service belongs, from its unique name.
enum Owner<'a> {
    Room { room: &'a str, part: &'a str },
    User { user: &'a str, part: &'a str },
    Presence,
    Other,
}

fn owner(name: &str) -> Owner<'_> {
    if name == super::user::PRESENCE_MAP {
        return Owner::Presence;
    }
    match name.split_once('/') {
        Some((room, part)) if room.starts_with('!') => Owner::Room { room, part },
        Some((user, part)) if user.starts_with('@') => Owner::User { user, part },
        _ => Owner::Other,
    }
}

/// Of a change-log event, only the unique name of its object.
#[derive(serde::Deserialize)]
struct EventOwner<'a> {
    #[serde(borrow, default)]
    unique_name: Option<std::borrow::Cow<'a, str>>,
}

/// The changes of one window of the log, sorted by what they concern.
#[derive(Default)]
struct Window {
    /// Per room, the timeline events added, in order: (index, stored event).
    timelines: BTreeMap<String, Vec<(u64, Value)>>,
    /// Rooms whose membership of the caller changed, with the previous membership.
    my_memberships: BTreeMap<String, Option<String>>,
    global_account_data: BTreeMap<String, Value>,
    room_account_data: BTreeMap<String, BTreeMap<String, Value>>,
    presence: BTreeMap<String, Value>,
    typing: BTreeSet<String>,
    receipts: BTreeMap<String, Vec<(String, Value)>>,
    key_changes: BTreeSet<String>,
}

impl Window {
    fn add(&mut self, me: &str, e: Event) {
        let Some(name) = e.unique_name.as_deref() else { return };
        let added_or_updated = matches!(
            e.kind,
            EventKind::ListItemAdded | EventKind::MapItemAdded | EventKind::MapItemUpdated | EventKind::MapItemRemoved
        );
        if !added_or_updated {
            return;
        }
        match owner(name) {
            Owner::Room { room, part } => match part {
                "timeline" if e.kind == EventKind::ListItemAdded => {
                    if let (Some(index), Some(data)) = (e.item_index, e.data) {
                        self.timelines
                            .entry(room.to_owned())
                            .or_default()
                            .push((index, std::sync::Arc::unwrap_or_clone(data)));
                    }
                }
                "typing" => {
                    self.typing.insert(room.to_owned());
                }
                "receipts" if e.kind != EventKind::MapItemRemoved => {
                    if let (Some(key), Some(data)) = (e.item_key, e.data) {
                        self.receipts
                            .entry(room.to_owned())
                            .or_default()
                            .push((key, std::sync::Arc::unwrap_or_clone(data)));
                    }
                }
                _ => {}
            },
            Owner::User { user, part } => {
                if part == "keys" {
                    self.key_changes.insert(user.to_owned());
                }
                if user != me || e.kind == EventKind::MapItemRemoved {
                    return;
                }
                let Some(key) = e.item_key else { return };
                if part == "rooms" {
                    let before = e.previous_data.as_ref().and_then(|d| d["membership"].as_str()).map(str::to_owned);
                    // The first change of the window tells what the caller had before it.
                    self.my_memberships.entry(key).or_insert(before);
                } else if part == "account_data" {
                    if let Some(data) = e.data {
                        self.global_account_data.insert(key, std::sync::Arc::unwrap_or_clone(data));
                    }
                } else if let Some(room) = part.strip_prefix("account_data/")
                    && let Some(data) = e.data
                {
                    self.room_account_data
                        .entry(room.to_owned())
                        .or_default()
                        .insert(key, std::sync::Arc::unwrap_or_clone(data));
                }
            }
            Owner::Presence => {
                if let (Some(user), Some(data)) = (e.item_key, e.data) {
                    self.presence.insert(user, std::sync::Arc::unwrap_or_clone(data));
                }
            }
            Owner::Other => {}
        }
    }
}

/// A room's part of the answer, before it is framed.
struct RoomBuild {
    /// Returned timeline events (stored form), oldest first.
    timeline: Vec<(u64, Value)>,
    limited: bool,
    /// The index of the first returned event (or where the next one will go).
    prev_batch: u64,
    state: Vec<Value>,
}

/// One computation of an answer.
struct Computed {
    answer: Value,
    /// Nothing but a token.
    empty: bool,
    /// Member events carried, as (room, user).
    sent: Vec<(String, String)>,
    /// The caller's rooms, whatever the membership.
    rooms: BTreeSet<String>,
    /// The log position the answer covers.
    position: u64,
}

/// Everything one sync computation reads, kept for the request.
struct Run<'a> {
    engine: &'a Engine,
    caller: &'a MatrixCaller,
    filter: &'a Filter,
    now_ms: i64,
    /// Current state of rooms read so far.
    states: BTreeMap<String, Vec<Value>>,
    /// Lazy loading: the member events this device holds already, per room (empty when the
    /// filter wants redundant members).
    known: HashMap<String, HashSet<String>>,
    /// Member events this answer carries, as (room, user).
    sent: Vec<(String, String)>,
}

impl<'a> Run<'a> {
    fn new(engine: &'a Engine, caller: &'a MatrixCaller, filter: &'a Filter) -> Self {
        Run {
            engine,
            caller,
            filter,
            now_ms: Timestamp::now().millis(),
            states: BTreeMap::new(),
            known: HashMap::new(),
            sent: Vec::new(),
        }
    }

    fn redundant(&self, room: &str, user: &str) -> bool {
        self.known.get(room).is_some_and(|users| users.contains(user))
    }
}

mod lazy;
mod rooms;
mod sections;

pub(crate) use lazy::LazyMembers;

impl Engine {
    /// `/sync`: computes the answer; when there is none and `timeout` allows, waits for the
    /// next change of the Matrix service and computes again.
    pub async fn matrix_sync(&self, caller: &MatrixCaller, params: SyncParams) -> Result<Value, CoreError> {
        let svc = self.service(&crate::auth::Principal::Root, crate::engine::services::MATRIX_SERVICE).await?;
        let mut wake = self.published.notifier.subscribe(&svc.sid);
        self.apply_sync_presence(caller, params.set_presence.as_deref()).await?;
        let deadline = tokio::time::Instant::now() + params.timeout;
        let lazy = &params.filter.room.state;
        let device = format!("{}\t{}", caller.user_id, caller.device_id);
        let mut computed = self.sync_once(&svc, caller, &params).await?;
        loop {
            let mut done = !computed.empty || params.since.is_none() || params.full_state;
            // Wake-ups for other users' rooms are looked at in the log (mostly the in-memory
            // run of recent commits) and slept through, so one message does not make every
            // waiting poll recompute its answer.
            let mut checked = computed.position;
            while !done {
                let woke = tokio::select! {
                    changed = wake.changed() => changed.is_ok(),
                    () = tokio::time::sleep_until(deadline) => false,
                };
                if !woke {
                    done = true;
                } else if self.concerns(&svc.sid, &caller.user_id, &computed.rooms, &mut checked).await? {
                    break;
                }
            }
            if done {
                if lazy.lazy_load_members && !lazy.include_redundant_members {
                    let token = computed.answer["next_batch"].as_str().unwrap_or_default().to_owned();
                    self.lazy_members.carried(&device, token, computed.sent);
                }
                return Ok(computed.answer);
            }
            computed = self.sync_once(&svc, caller, &params).await?;
        }
    }

    /// Whether the log after `checked` holds anything for the user (in its rooms, its own
    /// objects, presence or device keys); moves `checked` past what was read.
    async fn concerns(
        &self,
        service: &Sid,
        me: &str,
        rooms: &BTreeSet<String>,
        checked: &mut u64,
    ) -> Result<bool, CoreError> {
        loop {
            let events = self.read_events(service, *checked, None, LOG_BATCH).await?;
            let full = events.len() == LOG_BATCH as usize;
            for stored in events {
                *checked = stored.seq;
                // Every waiting poll reads every commit: only the object's name is parsed.
                let Ok(e) = serde_json::from_str::<EventOwner>(stored.json.get()) else { return Ok(true) };
                let relevant = match e.unique_name.as_deref().map(owner) {
                    Some(Owner::Room { room, .. }) => rooms.contains(room),
                    Some(Owner::User { user, part }) => user == me || part == "keys",
                    Some(Owner::Presence) => true,
                    Some(Owner::Other) | None => false,
                };
                if relevant {
                    return Ok(true);
                }
            }
            if !full {
                return Ok(false);
            }
        }
    }

    /// Polling marks the user online (or idle) unless it asks not to.
    async fn apply_sync_presence(&self, caller: &MatrixCaller, set: Option<&str>) -> Result<(), CoreError> {
        let wanted = match set {
            Some("offline") => return Ok(()),
            Some(other) => other,
            None => "online",
        };
        let current = self.matrix_get(super::user::PRESENCE_MAP, &caller.user_id).await?;
        if current.as_ref().and_then(|c| c["presence"].as_str()) == Some(wanted) {
            return Ok(());
        }
        let status = current.as_ref().and_then(|c| c["status_msg"].as_str()).map(str::to_owned);
        self.matrix_set_presence(caller, wanted, status.as_deref()).await
    }

    /// One computation: the answer and whether it is empty (nothing but a token).
    async fn sync_once(
        &self,
        svc: &crate::model::Service,
        caller: &MatrixCaller,
        params: &SyncParams,
    ) -> Result<Computed, CoreError> {
        let mut run = Run::new(self, caller, &params.filter);
        let lazy = &params.filter.room.state;
        if lazy.lazy_load_members && !lazy.include_redundant_members {
            let device = format!("{}\t{}", caller.user_id, caller.device_id);
            let since = params.since.map(|t| t.to_string());
            run.known = self.lazy_members.known(&device, since.as_deref());
        }
        let me = caller.user_id.as_str();
        // The head is read before anything else, so nothing committed later is lost: at
        // worst it comes again with the next sync, and clients de-duplicate by event id.
        // The window stops there too: the memberships read next are at least as new as it, so
        // a room joined or left inside the window is never missed.
        let (head, pruned) = self.log_bounds(&svc.sid).await?;
        let memberships = self.memberships(me).await?;
        let mut window = None;
        let mut next_seq = head;
        if let Some(since) = params.since {
            if since.seq > head {
                return Err(CoreError::invalid("since", "is ahead of this server's history"));
            }
            if since.seq >= pruned {
                let (w, last) = self.read_window(&svc.sid, me, since.seq, head).await?;
                next_seq = last;
                window = w;
            }
        }

        let mut join = Map::new();
        let mut invite = Map::new();
        let mut leave = Map::new();
        let mut knock = Map::new();
        let initial = params.since.is_none() || window.is_none();
        let empty_window = Window::default();
        let w = window.as_ref().unwrap_or(&empty_window);
        let timeline_limit = params.filter.room.timeline.events.limit_or(DEFAULT_TIMELINE_LIMIT) as usize;

        for (room, (membership, member_index)) in &memberships {
            if !params.filter.wants_room(room) {
                continue;
            }
            let changed = w.my_memberships.get(room);
            match membership.as_str() {
                "join" => {
                    let newly = changed.is_some_and(|before| before.as_deref() != Some("join"));
                    let build = if initial || newly {
                        Some(run.latest(room, None, timeline_limit).await?)
                    } else if let Some(events) = w.timelines.get(room) {
                        Some(run.incremental(room, events, timeline_limit, params.full_state, None).await?)
                    } else if params.full_state {
                        Some(run.incremental(room, &[], timeline_limit, true, None).await?)
                    } else {
                        None
                    };
                    let full = initial || newly || params.full_state;
                    if let Some(entry) = run.joined_room(room, build, full, w, initial || newly).await? {
                        join.insert(room.clone(), entry);
                    }
                }
                "invite" if initial || changed.is_some() => {
                    let state =
                        run.state(room).await?.iter().filter(|e| invite_state(e, me)).map(stripped).collect::<Vec<_>>();
                    invite.insert(room.clone(), json!({ "invite_state": { "events": state } }));
                }
                "knock" if initial || changed.is_some() => {
                    let state =
                        run.state(room).await?.iter().filter(|e| invite_state(e, me)).map(stripped).collect::<Vec<_>>();
                    knock.insert(room.clone(), json!({ "knock_state": { "events": state } }));
                }
                "leave" | "ban" if (initial && params.filter.room.include_leave) || (!initial && changed.is_some()) => {
                    let build = match w.timelines.get(room) {
                        Some(events) if !initial => {
                            run.incremental(room, events, timeline_limit, params.full_state, Some(*member_index))
                                .await?
                        }
                        _ => run.latest(room, Some(*member_index), timeline_limit).await?,
                    };
                    leave.insert(room.clone(), run.frame_room(room, build, &[], false));
                }
                _ => {}
            }
        }

        let account_data = run.global_account_data(w, initial).await?;
        let presence = run.presence(w, initial, &memberships).await?;
        let (to_device, to_device_next) = self.to_device(caller, params.since.map_or(0, |s| s.to_device)).await?;
        let device_lists =
            if initial { json!({ "changed": [], "left": [] }) } else { run.device_lists(w, &memberships).await? };
        let key_counts = self.matrix_get(&format!("{me}/otk_counts"), &caller.device_id).await?;

        let empty = join.is_empty()
            && invite.is_empty()
            && leave.is_empty()
            && knock.is_empty()
            && account_data.is_empty()
            && presence.is_empty()
            && to_device.is_empty()
            && device_lists["changed"].as_array().is_none_or(Vec::is_empty)
            && device_lists["left"].as_array().is_none_or(Vec::is_empty);
        let token = SyncToken { seq: next_seq, to_device: to_device_next };
        let answer = json!({
            "next_batch": token.to_string(),
            "rooms": { "join": join, "invite": invite, "leave": leave, "knock": knock },
            "account_data": { "events": account_data },
            "presence": { "events": presence },
            "to_device": { "events": to_device },
            "device_lists": device_lists,
            "device_one_time_keys_count": key_counts.as_ref().map_or(json!({}), |c| c["counts"].clone()),
            "device_unused_fallback_key_types": key_counts.as_ref().map_or(json!([]), |c| c["fallback"].clone()),
        });
        let rooms = memberships.into_keys().collect();
        Ok(Computed { answer, empty, sent: run.sent, rooms, position: next_seq })
    }

    /// `/keys/changes`: users sharing a room with the caller whose devices changed after
    /// `from`, and users who no longer share one.
    pub async fn matrix_key_changes(&self, caller: &MatrixCaller, from: u64) -> Result<Value, CoreError> {
        let svc = self.service(&crate::auth::Principal::Root, crate::engine::services::MATRIX_SERVICE).await?;
        let filter = Filter::default();
        let mut run = Run::new(self, caller, &filter);
        let memberships = self.memberships(&caller.user_id).await?;
        let (head, pruned) = self.log_bounds(&svc.sid).await?;
        let window =
            if from >= pruned { self.read_window(&svc.sid, &caller.user_id, from, head).await?.0 } else { None };
        match window {
            Some(w) => run.device_lists(&w, &memberships).await,
            // Too far back to replay: everyone the caller shares a room with may have changed.
            None => Ok(json!({ "changed": run.co_members(&memberships).await?, "left": [] })),
        }
    }

    /// The caller's rooms: membership and the index of its membership event.
    async fn memberships(&self, me: &str) -> Result<BTreeMap<String, (String, u64)>, CoreError> {
        let items = self.matrix_items(ObjectKind::Map, &memberships_name(me)).await?;
        Ok(items
            .into_iter()
            .filter_map(|i| {
                let room = i.key?;
                let membership = i.data["membership"].as_str()?.to_owned();
                let index = i.data["event_id"]
                    .as_str()
                    .and_then(|id| crate::matrix::event::event_index(&room, id))
                    .unwrap_or(u64::MAX);
                Some((room, (membership, index)))
            })
            .collect())
    }

    /// The log after `since`, sorted; `None` when it is too long to replay. Also returns the
    /// position the answer covers.
    /// The service's newest and oldest kept log positions, in one read.
    async fn log_bounds(&self, service: &Sid) -> Result<(u64, u64), CoreError> {
        let svc = self.store.service(&crate::model::ObjectRef::Sid(service.clone())).await?;
        Ok(svc.map_or((0, 0), |s| (s.head_seq, s.pruned_seq)))
    }

    async fn read_window(
        &self,
        service: &Sid,
        me: &str,
        since: u64,
        until: u64,
    ) -> Result<(Option<Window>, u64), CoreError> {
        let mut window = Window::default();
        let mut cursor = since;
        let mut seen = 0usize;
        loop {
            let events = self.read_events(service, cursor, None, LOG_BATCH).await?;
            let full = events.len() == LOG_BATCH as usize;
            for stored in events {
                if stored.seq > until {
                    return Ok((Some(window), cursor));
                }
                cursor = stored.seq;
                seen += 1;
                let e = serde_json::from_str::<Event>(stored.json.get())
                    .map_err(|e| internal(format!("change-log event {} is unreadable: {e}", stored.seq)))?;
                window.add(me, e);
            }
            if seen > MAX_WINDOW {
                return Ok((None, until));
            }
            if !full || cursor >= until {
                return Ok((Some(window), cursor));
            }
        }
    }

    /// The device's to-device queue: messages below `acked` were delivered and go now; the
    /// rest (up to a page) are delivered. Returns them and the next acknowledgement point.
    async fn to_device(&self, caller: &MatrixCaller, acked: u64) -> Result<(Vec<Value>, u64), CoreError> {
        let name = to_device_name(&caller.user_id, &caller.device_id);
        let items = self.matrix_page(ObjectKind::List, &name, Order::Asc, None, TO_DEVICE_LIMIT + 1).await?;
        let mut out = Vec::new();
        let mut next = acked;
        for item in items {
            let Some(index) = item.index else { continue };
            if index < acked {
                self.matrix_remove(ObjectKind::List, &name, ItemKey::Index(index)).await?;
            } else if out.len() < TO_DEVICE_LIMIT as usize {
                out.push(std::sync::Arc::unwrap_or_clone(item.data));
                next = index + 1;
            }
        }
        Ok((out, next))
    }

    /// A page of a Map or List of the Matrix service; empty when it does not exist.
    pub(super) async fn matrix_page(
        &self,
        kind: ObjectKind,
        name: &str,
        order: Order,
        from: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Item>, CoreError> {
        let page = PageRequest { order, from: from.map(Cursor::Index), after: None, limit };
        Ok(self.system_page(crate::engine::services::MATRIX_SERVICE, kind, name, page).await?.items)
    }
}

/// The List of one device's to-device messages.
pub(super) fn to_device_name(user_id: &str, device_id: &str) -> String {
    format!("{user_id}/to_device/{device_id}")
}

/// What an invite or knock shows of the room.
fn invite_state(e: &Value, me: &str) -> bool {
    match state_key_of(e) {
        Some(("m.room.member", key)) => key == me || e["sender"] == key,
        Some((t, "")) => matches!(
            t,
            "m.room.create"
                | "m.room.join_rules"
                | "m.room.name"
                | "m.room.avatar"
                | "m.room.canonical_alias"
                | "m.room.encryption"
                | "m.room.topic"
        ),
        _ => false,
    }
}

fn stored_index(room: &str, e: &Value) -> Option<u64> {
    e["event_id"].as_str().and_then(|id| crate::matrix::event::event_index(room, id))
}

pub(super) fn passes(filter: &RoomEventFilter, room: &str, e: &Value) -> bool {
    filter.matches(
        room,
        e["type"].as_str().unwrap_or_default(),
        e["sender"].as_str().unwrap_or_default(),
        &e["content"],
    )
}
