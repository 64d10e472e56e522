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
                        self.timelines.entry(room.to_owned()).or_default().push((index, data));
                    }
                }
                "typing" => {
                    self.typing.insert(room.to_owned());
                }
                "receipts" if e.kind != EventKind::MapItemRemoved => {
                    if let (Some(key), Some(data)) = (e.item_key, e.data) {
                        self.receipts.entry(room.to_owned()).or_default().push((key, data));
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
                        self.global_account_data.insert(key, data);
                    }
                } else if let Some(room) = part.strip_prefix("account_data/")
                    && let Some(data) = e.data
                {
                    self.room_account_data.entry(room.to_owned()).or_default().insert(key, data);
                }
            }
            Owner::Presence => {
                if let (Some(user), Some(data)) = (e.item_key, e.data) {
                    self.presence.insert(user, data);
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

/// Devices that lazy-load members, past which the memory is dropped (it only saves bytes).
const MAX_LAZY_DEVICES: usize = 100_000;

/// Which member events each lazy-loading device holds, per room, so they are not sent again.
/// What an answer carried counts only once the device syncs from that answer's token: an
/// answer that never arrived changes nothing.
#[derive(Debug, Default)]
pub(crate) struct LazyMembers {
    devices: std::sync::Mutex<HashMap<String, DeviceMembers>>,
}

#[derive(Debug, Default)]
struct DeviceMembers {
    confirmed: HashMap<String, HashSet<String>>,
    pending: Option<(String, Vec<(String, String)>)>,
}

impl LazyMembers {
    /// What the device holds when it syncs from `since` (nothing on a first sync).
    fn known(&self, device: &str, since: Option<&str>) -> HashMap<String, HashSet<String>> {
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        let Some(since) = since else {
            devices.remove(device);
            return HashMap::new();
        };
        let Some(d) = devices.get_mut(device) else { return HashMap::new() };
        if let Some((_, sent)) = d.pending.take_if(|(token, _)| token == since) {
            for (room, user) in sent {
                d.confirmed.entry(room).or_default().insert(user);
            }
        }
        d.confirmed.clone()
    }

    /// Notes what the answer with `token` carried.
    fn carried(&self, device: &str, token: String, sent: Vec<(String, String)>) {
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        if devices.len() >= MAX_LAZY_DEVICES && !devices.contains_key(device) {
            devices.clear();
        }
        devices.entry(device.to_owned()).or_default().pending = Some((token, sent));
    }
}

impl Engine {
    /// `/sync`: computes the answer; when there is none and `timeout` allows, waits for the
    /// next change of the Matrix service and computes again.
    pub async fn matrix_sync(&self, caller: &MatrixCaller, params: SyncParams) -> Result<Value, CoreError> {
        let svc = self.service(&crate::auth::Principal::Root, crate::engine::services::MATRIX_SERVICE).await?;
        let mut wake = self.notifier.subscribe(&svc.sid);
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
                let Ok(e) = serde_json::from_str::<Event>(stored.json.get()) else { return Ok(true) };
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
                out.push(item.data);
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
        match self.items(&crate::auth::Principal::Root, crate::engine::services::MATRIX_SERVICE, kind, name, page).await
        {
            Ok(page) => Ok(page.items),
            Err(CoreError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
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

impl Run<'_> {
    fn viewer(&self) -> Viewer<'_> {
        Viewer { user_id: &self.caller.user_id, device_id: &self.caller.device_id, now_ms: self.now_ms }
    }

    /// Where the room's next event will go: the end of its timeline.
    async fn next_index(&self, room: &str) -> Result<u64, CoreError> {
        let newest = self.engine.matrix_page(ObjectKind::List, &timeline_name(room), Order::Desc, None, 1).await?;
        Ok(newest.first().and_then(|i| i.index).map_or(0, |i| i + 1))
    }

    /// The room's current state events (stored form), read once per request.
    async fn state(&mut self, room: &str) -> Result<&Vec<Value>, CoreError> {
        match self.states.entry(room.to_owned()) {
            std::collections::btree_map::Entry::Occupied(o) => Ok(o.into_mut()),
            std::collections::btree_map::Entry::Vacant(v) => {
                let items = self.engine.matrix_items(ObjectKind::Map, &state_name(room)).await?;
                Ok(v.insert(items.into_iter().map(|i| i.data).collect()))
            }
        }
    }

    /// The newest events of a room (up to `upto`, inclusive), as a first sight of it gets
    /// them: the last `limit` events passing the filter, and the state at their start.
    async fn latest(&mut self, room: &str, upto: Option<u64>, limit: usize) -> Result<RoomBuild, CoreError> {
        let filter = &self.filter.room.timeline;
        let mut raw: Vec<(u64, Value)> = Vec::new();
        let mut matched = 0usize;
        let mut from = upto;
        let mut reached_start = false;
        while matched < limit && (raw.len() as u64) < TIMELINE_SCAN {
            let page = self.engine.matrix_page(ObjectKind::List, &timeline_name(room), Order::Desc, from, 100).await?;
            let Some(last) = page.last().and_then(|i| i.index) else {
                reached_start = true;
                break;
            };
            for item in page {
                let Some(index) = item.index else { continue };
                if matched < limit && passes(filter, room, &item.data) {
                    matched += 1;
                }
                raw.push((index, item.data));
                if matched == limit {
                    break;
                }
            }
            if last == 0 {
                reached_start = true;
                break;
            }
            from = Some(last - 1);
        }
        raw.reverse();
        let timeline: Vec<(u64, Value)> =
            raw.iter().filter(|(_, e)| passes(filter, room, e)).cloned().collect::<Vec<_>>();
        let timeline = timeline[timeline.len().saturating_sub(limit)..].to_vec();
        let first = timeline.first().map(|(i, _)| *i).or_else(|| raw.first().map(|(i, _)| *i));
        let first = first.unwrap_or_else(|| upto.map_or(0, |u| u + 1));
        let window: Vec<(u64, Value)> = raw.into_iter().filter(|(i, _)| *i >= first).collect();
        let limited = first > 0 && !(reached_start && timeline.first().map(|(i, _)| *i) == Some(first) && first == 0);
        let state = self.state_at_start(room, first, &window).await?;
        Ok(RoomBuild { timeline, limited, prev_batch: first, state })
    }

    /// A room the caller was already in: the window's events (cut at `upto`, inclusive), the
    /// newest `limit` of them, and the state across the gap when some were left out.
    async fn incremental(
        &mut self,
        room: &str,
        events: &[(u64, Value)],
        limit: usize,
        full_state: bool,
        upto: Option<u64>,
    ) -> Result<RoomBuild, CoreError> {
        let filter = &self.filter.room.timeline;
        let events: Vec<&(u64, Value)> = events.iter().filter(|(i, _)| upto.is_none_or(|u| *i <= u)).collect();
        let passing: Vec<&(u64, Value)> = events.iter().copied().filter(|(_, e)| passes(filter, room, e)).collect();
        let limited = passing.len() > limit;
        let timeline: Vec<(u64, Value)> =
            passing[passing.len().saturating_sub(limit)..].iter().map(|e| (*e).clone()).collect();
        let first = match (timeline.first(), events.last()) {
            (Some((i, _)), _) => *i,
            (None, Some((i, _))) => i + 1,
            (None, None) => self.next_index(room).await?,
        };
        let state = if full_state {
            let window: Vec<(u64, Value)> = events.iter().filter(|(i, _)| *i >= first).map(|e| (*e).clone()).collect();
            self.state_at_start(room, first, &window).await?
        } else if limited {
            // The gap's state changes, last one per key: the state at the start of the timeline
            // differs from the client's in exactly these.
            let mut latest: BTreeMap<(String, String), Value> = BTreeMap::new();
            for (_, e) in events.iter().filter(|(i, _)| *i < first) {
                if let Some((t, k)) = state_key_of(e) {
                    latest.insert((t.to_owned(), k.to_owned()), e.clone());
                }
            }
            latest.into_values().collect()
        } else {
            Vec::new()
        };
        Ok(RoomBuild { timeline, limited, prev_batch: first, state })
    }

    /// The state just before timeline item `first`: the current state, with every entry set
    /// at or after `first` put back to what it replaced. `window` holds the items from `first`
    /// on, so the first change of each entry in it tells what came before.
    async fn state_at_start(
        &mut self,
        room: &str,
        first: u64,
        window: &[(u64, Value)],
    ) -> Result<Vec<Value>, CoreError> {
        let current = self.state(room).await?.clone();
        let mut out = Vec::with_capacity(current.len());
        for e in current {
            if stored_index(room, &e).is_none_or(|i| i < first) {
                out.push(e);
                continue;
            }
            let key = state_key_of(&e);
            let earliest = window.iter().find(|(_, w)| state_key_of(w) == key);
            if let Some(prev) = earliest.and_then(|(_, w)| replaced_state(w)) {
                out.push(prev.clone());
            }
        }
        Ok(out)
    }

    /// Frames a joined room; `None` when it has nothing to say.
    async fn joined_room(
        &mut self,
        room: &str,
        build: Option<RoomBuild>,
        full: bool,
        w: &Window,
        first_sight: bool,
    ) -> Result<Option<Value>, CoreError> {
        let me = self.caller.user_id.clone();
        let ephemeral = self.ephemeral(room, w, first_sight).await?;
        let account_data = self.room_account_data(room, w, first_sight).await?;
        if build.is_none() && ephemeral.is_empty() && account_data.is_empty() {
            return Ok(None);
        }
        let build = match build {
            Some(b) => b,
            None => {
                let next = self.next_index(room).await?;
                RoomBuild { timeline: Vec::new(), limited: false, prev_batch: next, state: Vec::new() }
            }
        };
        let membership_changed =
            build.timeline.iter().map(|(_, e)| e).chain(build.state.iter()).any(|e| e["type"] == "m.room.member");
        let summary = if full || membership_changed { Some(self.summary(room).await?) } else { None };
        let heroes: Vec<String> = summary
            .as_ref()
            .and_then(|s| s["m.heroes"].as_array())
            .map(|h| h.iter().filter_map(|u| u.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let mut lazy_extra = heroes;
        if full {
            lazy_extra.push(me);
        }
        let mut build = build;
        if !full && self.filter.room.state.lazy_load_members {
            // The senders' member events the device does not hold yet.
            let mut have: HashSet<String> =
                build.state.iter().filter_map(|e| e["state_key"].as_str().map(str::to_owned)).collect();
            let senders: Vec<String> =
                build.timeline.iter().filter_map(|(_, e)| e["sender"].as_str().map(str::to_owned)).collect();
            for sender in senders {
                if have.contains(&sender) || self.redundant(room, &sender) {
                    continue;
                }
                let key = crate::matrix::room::state_entry("m.room.member", &sender);
                if let Some(member) = self.engine.matrix_get(&state_name(room), &key).await? {
                    build.state.push(member);
                }
                have.insert(sender);
            }
        }
        let mut entry = self.frame_room(room, build, &lazy_extra, full);
        entry["ephemeral"] = json!({ "events": ephemeral });
        entry["account_data"] = json!({ "events": account_data });
        if let Some(summary) = summary {
            entry["summary"] = summary;
        }
        entry["unread_notifications"] = self.unread(room).await?;
        Ok(Some(entry))
    }

    /// timeline and state of a room as clients get them, lazy-loading members when asked:
    /// only the timeline's senders and `extra` (own membership, heroes); in an incremental,
    /// limited answer the gap's member events always stay.
    fn frame_room(&mut self, room: &str, build: RoomBuild, extra: &[String], full: bool) -> Value {
        let viewer = self.viewer();
        let state_filter = &self.filter.room.state;
        let senders: BTreeSet<&str> = build.timeline.iter().filter_map(|(_, e)| e["sender"].as_str()).collect();
        let lazy = state_filter.lazy_load_members;
        let kept: Vec<&Value> = build
            .state
            .iter()
            .filter(|e| {
                let is_member = e["type"] == "m.room.member";
                if is_member && lazy && full {
                    let key = e["state_key"].as_str().unwrap_or_default();
                    return extra.iter().any(|x| x == key) || (senders.contains(key) && !self.redundant(room, key));
                }
                if is_member && !full {
                    return true;
                }
                passes(state_filter, room, e)
            })
            .collect();
        let carried: Vec<(String, String)> = if lazy {
            kept.iter()
                .filter_map(|e| match state_key_of(e) {
                    Some(("m.room.member", user)) => Some((room.to_owned(), user.to_owned())),
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        let with_room = self.federation_format();
        let state: Vec<Value> = kept.iter().map(|e| self.shape(&for_client(e, &viewer, with_room))).collect();
        let timeline: Vec<Value> =
            build.timeline.iter().map(|(_, e)| self.shape(&for_client(e, &viewer, with_room))).collect();
        self.sent.extend(carried);
        json!({
            "timeline": { "events": timeline, "limited": build.limited, "prev_batch": room_token(build.prev_batch) },
            "state": { "events": state },
        })
    }

    /// Federation-format events name their room; client-format ones in `/sync` do not.
    fn federation_format(&self) -> bool {
        self.filter.event_format == crate::matrix::filter::EventFormat::Federation
    }

    /// `event_fields` of the filter.
    fn shape(&self, event: &Value) -> Value {
        match &self.filter.event_fields {
            Some(fields) => project(event, fields),
            None => event.clone(),
        }
    }

    async fn summary(&mut self, room: &str) -> Result<Value, CoreError> {
        let me = self.caller.user_id.clone();
        let state = self.state(room).await?;
        let mut joined = 0;
        let mut invited = 0;
        let mut others = Vec::new();
        let mut named = false;
        for e in state {
            match state_key_of(e) {
                Some(("m.room.member", user)) => match e["content"]["membership"].as_str() {
                    Some("join") => {
                        joined += 1;
                        if user != me {
                            others.push((stored_index(room, e), user.to_owned()));
                        }
                    }
                    Some("invite") => {
                        invited += 1;
                        if user != me {
                            others.push((stored_index(room, e), user.to_owned()));
                        }
                    }
                    _ => {}
                },
                Some(("m.room.name", "")) if e["content"]["name"].as_str().is_some_and(|n| !n.is_empty()) => {
                    named = true
                }
                Some(("m.room.canonical_alias", "")) if e["content"]["alias"].is_string() => named = true,
                _ => {}
            }
        }
        // In stream order: who came first.
        others.sort();
        let heroes: Vec<String> = others.into_iter().take(5).map(|(_, user)| user).collect();
        let mut summary = json!({ "m.joined_member_count": joined, "m.invited_member_count": invited });
        if !named {
            summary["m.heroes"] = json!(heroes);
        }
        Ok(summary)
    }

    /// Typing and receipts of a room.
    async fn ephemeral(&mut self, room: &str, w: &Window, first_sight: bool) -> Result<Vec<Value>, CoreError> {
        let filter = &self.filter.room.ephemeral;
        let mut out = Vec::new();
        if (first_sight || w.typing.contains(room)) && filter.matches_type(room, "m.typing") {
            let now = Timestamp::now();
            let items = self.engine.matrix_items(ObjectKind::Map, &super::ephemeral::typing_name(room)).await?;
            let users: Vec<String> =
                items.into_iter().filter(|i| i.date_expires.is_none_or(|t| t > now)).filter_map(|i| i.key).collect();
            if first_sight && users.is_empty() {
                // Nothing to tell a client that knows nothing yet.
            } else {
                out.push(json!({ "type": "m.typing", "content": { "user_ids": users } }));
            }
        }
        if filter.matches_type(room, "m.receipt") {
            let receipts: Vec<(String, Value)> = if first_sight {
                self.engine.matrix_entries(&super::ephemeral::receipts_name(room)).await?
            } else {
                w.receipts.get(room).cloned().unwrap_or_default()
            };
            if let Some(content) = super::ephemeral::receipt_content(&receipts, &self.caller.user_id) {
                out.push(json!({ "type": "m.receipt", "content": content }));
            }
        }
        Ok(out)
    }

    async fn room_account_data(&mut self, room: &str, w: &Window, first_sight: bool) -> Result<Vec<Value>, CoreError> {
        let filter = &self.filter.room.account_data;
        let entries: Vec<(String, Value)> = if first_sight {
            let name = super::user::account_data_map(&self.caller.user_id, Some(room));
            self.engine.matrix_entries(&name).await?
        } else {
            w.room_account_data
                .get(room)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        Ok(entries
            .into_iter()
            .filter(|(t, _)| filter.matches_type(room, t))
            .map(|(t, content)| json!({ "type": t, "content": content }))
            .collect())
    }

    async fn global_account_data(&mut self, w: &Window, initial: bool) -> Result<Vec<Value>, CoreError> {
        let filter = &self.filter.account_data;
        let mut entries: Vec<(String, Value)> = if initial {
            let name = super::user::account_data_map(&self.caller.user_id, None);
            self.engine.matrix_entries(&name).await?
        } else {
            w.global_account_data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        // Push rules are kept as the user's changes; clients get the whole rule set, and a
        // first sync always has it.
        let rules = entries.iter().position(|(t, _)| t == PUSH_RULES);
        let stored = rules.map(|at| entries.remove(at).1);
        if initial || stored.is_some() {
            let effective = crate::matrix::push_rules::effective_ruleset(&self.caller.user_id, stored.as_ref());
            entries.push((PUSH_RULES.to_owned(), effective));
        }
        Ok(entries
            .into_iter()
            .filter(|(t, _)| filter.matches_type(t))
            .map(|(t, content)| json!({ "type": t, "content": content }))
            .collect())
    }

    /// Everyone who shares a joined room with the caller, the caller included.
    async fn co_members(
        &mut self,
        memberships: &BTreeMap<String, (String, u64)>,
    ) -> Result<BTreeSet<String>, CoreError> {
        let mut users = BTreeSet::from([self.caller.user_id.clone()]);
        for (room, (membership, _)) in memberships {
            if membership != "join" {
                continue;
            }
            for e in self.state(room).await? {
                if let Some(("m.room.member", user)) = state_key_of(e)
                    && e["content"]["membership"] == "join"
                {
                    users.insert(user.to_owned());
                }
            }
        }
        Ok(users)
    }

    async fn presence(
        &mut self,
        w: &Window,
        initial: bool,
        memberships: &BTreeMap<String, (String, u64)>,
    ) -> Result<Vec<Value>, CoreError> {
        let filter = &self.filter.presence;
        if !filter.matches_type("m.presence") {
            return Ok(Vec::new());
        }
        let entries: Vec<(String, Value)> = if initial {
            self.engine.matrix_entries(super::user::PRESENCE_MAP).await?
        } else {
            w.presence.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let visible = self.co_members(memberships).await?;
        let now = self.now_ms;
        Ok(entries
            .into_iter()
            .filter(|(user, _)| visible.contains(user) && filter.matches("m.presence", user))
            .map(|(user, data)| {
                let mut content = json!({
                    "presence": data["presence"],
                    "last_active_ago": (now - data["last_active_ts"].as_i64().unwrap_or(now)).max(0),
                    "currently_active": data["presence"] == "online",
                });
                if let Some(msg) = data["status_msg"].as_str() {
                    content["status_msg"] = json!(msg);
                }
                json!({ "type": "m.presence", "sender": user, "content": content })
            })
            .collect())
    }

    /// Users whose devices changed and who share a room with the caller, and users who no
    /// longer share any.
    async fn device_lists(
        &mut self,
        w: &Window,
        memberships: &BTreeMap<String, (String, u64)>,
    ) -> Result<Value, CoreError> {
        let me = self.caller.user_id.clone();
        let mut joined_others = BTreeSet::new();
        let mut left_others = BTreeSet::new();
        for (room, events) in &w.timelines {
            if memberships.get(room).is_none_or(|(m, _)| m != "join") {
                continue;
            }
            for (_, e) in events {
                if let Some(("m.room.member", user)) = state_key_of(e)
                    && user != me
                {
                    match e["content"]["membership"].as_str() {
                        Some("join") => {
                            joined_others.insert(user.to_owned());
                        }
                        Some("leave" | "ban") => {
                            left_others.insert(user.to_owned());
                        }
                        _ => {}
                    }
                }
            }
        }
        for (room, before) in &w.my_memberships {
            let now = memberships.get(room).map(|(m, _)| m.as_str());
            if now == Some("join") && before.as_deref() != Some("join") {
                for e in self.state(room).await?.clone() {
                    if let Some(("m.room.member", user)) = state_key_of(&e)
                        && e["content"]["membership"] == "join"
                    {
                        joined_others.insert(user.to_owned());
                    }
                }
            } else if before.as_deref() == Some("join") && now != Some("join") {
                for e in self.state(room).await?.clone() {
                    if let Some(("m.room.member", user)) = state_key_of(&e) {
                        left_others.insert(user.to_owned());
                    }
                }
            }
        }
        if w.key_changes.is_empty() && joined_others.is_empty() && left_others.is_empty() {
            return Ok(json!({ "changed": [], "left": [] }));
        }
        let shared = self.co_members(memberships).await?;
        let mut changed: BTreeSet<String> = w.key_changes.iter().filter(|u| shared.contains(*u)).cloned().collect();
        changed.extend(joined_others.into_iter().filter(|u| shared.contains(u) && u != &me));
        let left: Vec<String> = left_others.into_iter().filter(|u| !shared.contains(u)).collect();
        Ok(json!({ "changed": changed, "left": left }))
    }

    /// Unread counts from the caller's read receipt on (exact up to [`UNREAD_SCAN`] events).
    async fn unread(&mut self, room: &str) -> Result<Value, CoreError> {
        let me = self.caller.user_id.clone();
        let read = self.engine.matrix_read_up_to(&me, room).await?;
        let items =
            self.engine.matrix_page(ObjectKind::List, &timeline_name(room), Order::Desc, None, UNREAD_SCAN).await?;
        let localpart = me.strip_prefix('@').and_then(|u| u.split(':').next()).unwrap_or_default().to_owned();
        let (mut notes, mut highlights) = (0u64, 0u64);
        for item in items {
            if item.index.is_none_or(|i| read.is_some_and(|r| i <= r)) {
                break;
            }
            let e = &item.data;
            if e["sender"] == me.as_str() || e.get("state_key").is_some() || !counts_as_unread(e) {
                continue;
            }
            notes += 1;
            let mentioned = e["content"]["m.mentions"]["user_ids"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|u| u == me.as_str()))
                || e["content"]["body"]
                    .as_str()
                    .is_some_and(|b| b.contains(me.as_str()) || (!localpart.is_empty() && b.contains(&localpart)));
            if mentioned {
                highlights += 1;
            }
        }
        Ok(json!({ "notification_count": notes, "highlight_count": highlights }))
    }
}

/// Events that count towards unread notifications (the default push rules notify for them).
fn counts_as_unread(e: &Value) -> bool {
    matches!(e["type"].as_str(), Some("m.room.message" | "m.room.encrypted" | "m.sticker" | "m.call.invite"))
        && e["content"].as_object().is_some_and(|c| !c.is_empty())
}

pub(super) fn passes(filter: &RoomEventFilter, room: &str, e: &Value) -> bool {
    filter.matches(
        room,
        e["type"].as_str().unwrap_or_default(),
        e["sender"].as_str().unwrap_or_default(),
        &e["content"],
    )
}
