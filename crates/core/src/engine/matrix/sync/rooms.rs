//! One room's part of an answer: its timeline, the state at the start of it, its summary, and
//! how it is framed for the client (lazy-loaded members, event fields and format).

use super::*;

impl Run<'_> {
    pub(super) fn viewer(&self) -> Viewer<'_> {
        Viewer { user_id: &self.caller.user_id, device_id: &self.caller.device_id, now_ms: self.now_ms }
    }

    /// Where the room's next event will go: the end of its timeline.
    pub(super) async fn next_index(&self, room: &str) -> Result<u64, CoreError> {
        let newest = self.engine.matrix_page(ObjectKind::List, &timeline_name(room), Order::Desc, None, 1).await?;
        Ok(newest.first().and_then(|i| i.index).map_or(0, |i| i + 1))
    }

    /// The room's current state events (stored form), read once per request.
    pub(super) async fn state(&mut self, room: &str) -> Result<&Vec<Value>, CoreError> {
        match self.states.entry(room.to_owned()) {
            std::collections::btree_map::Entry::Occupied(o) => Ok(o.into_mut()),
            std::collections::btree_map::Entry::Vacant(v) => {
                let items = self.engine.matrix_items(ObjectKind::Map, &state_name(room)).await?;
                Ok(v.insert(items.into_iter().map(|i| std::sync::Arc::unwrap_or_clone(i.data)).collect()))
            }
        }
    }

    /// The newest events of a room (up to `upto`, inclusive), as a first sight of it gets
    /// them: the last `limit` events passing the filter, and the state at their start.
    pub(super) async fn latest(&mut self, room: &str, upto: Option<u64>, limit: usize) -> Result<RoomBuild, CoreError> {
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
                raw.push((index, std::sync::Arc::unwrap_or_clone(item.data)));
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
    pub(super) async fn incremental(
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
    pub(super) async fn state_at_start(
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
    pub(super) async fn joined_room(
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
    pub(super) fn frame_room(&mut self, room: &str, build: RoomBuild, extra: &[String], full: bool) -> Value {
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
    pub(super) fn federation_format(&self) -> bool {
        self.filter.event_format == crate::matrix::filter::EventFormat::Federation
    }

    /// `event_fields` of the filter.
    pub(super) fn shape(&self, event: &Value) -> Value {
        match &self.filter.event_fields {
            Some(fields) => project(event, fields),
            None => event.clone(),
        }
    }

    pub(super) async fn summary(&mut self, room: &str) -> Result<Value, CoreError> {
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
}
