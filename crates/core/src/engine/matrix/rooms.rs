//! Rooms: creation, events under the rules, state and membership, aliases.

use super::*;

/// What createRoom asks for (the parts this server honours).
#[derive(Debug, Clone, Default)]
pub struct CreateRoom {
    /// `private_chat`, `trusted_private_chat` or `public_chat`; absent: by `public`.
    pub preset: Option<String>,
    /// `visibility: public`.
    pub public: bool,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub invite: Vec<String>,
    /// `(type, state_key, content)`, applied after the preset.
    pub initial_state: Vec<(String, String, serde_json::Value)>,
    pub power_level_content_override: Option<serde_json::Value>,
    pub creation_content: Option<serde_json::Value>,
    pub room_version: Option<String>,
    /// `room_alias_name`: the room gets `#<name>:<server>` as it is made.
    pub alias_name: Option<String>,
    /// The invites start a direct chat (`is_direct` in their member events).
    pub is_direct: bool,
}

/// The Map of rooms published in the public room directory.
const DIRECTORY: &str = "directory";
/// Rooms per directory page, when not asked, and at most.
const DEFAULT_DIRECTORY_LIMIT: usize = 30;
const MAX_DIRECTORY_LIMIT: usize = 500;

/// The room version new rooms get.
pub const DEFAULT_ROOM_VERSION: &str = "10";

impl Engine {
    fn room_event(
        &self,
        sender: &str,
        event_type: &str,
        state_key: Option<&str>,
        content: serde_json::Value,
    ) -> crate::matrix::room::RoomEventDraft {
        crate::matrix::room::RoomEventDraft {
            // The store names the event after its place in the timeline.
            event_id: String::new(),
            event_type: event_type.to_owned(),
            state_key: state_key.map(str::to_owned),
            sender: sender.to_owned(),
            content,
            origin_server_ts: Timestamp::now().millis(),
        }
    }

    async fn room_write(
        &self,
        room_id: &str,
        create: bool,
        events: Vec<crate::matrix::room::RoomEventDraft>,
        txn: Option<crate::matrix::room::Txn>,
        alias: Option<String>,
    ) -> Result<Vec<String>, CoreError> {
        let svc = self.service(&crate::auth::Principal::Root, crate::engine::services::MATRIX_SERVICE).await?;
        let m = Mutation::MatrixRoomEvents {
            service: svc.sid.clone(),
            room_id: room_id.to_owned(),
            create,
            events,
            txn,
            alias,
        };
        match self.run_logged(&svc, &crate::auth::Principal::Root, m).await?.value {
            Outcome::MatrixEvents(ids) => Ok(ids),
            other => Err(unexpected(other)),
        }
    }

    /// createRoom: the creation event, the creator's join, power levels, the preset's rules,
    /// the initial state, name and topic, then the invites, all in one transaction.
    pub async fn matrix_create_room(
        &self,
        server_name: &str,
        caller: &MatrixCaller,
        req: CreateRoom,
    ) -> Result<String, CoreError> {
        let version = req.room_version.clone().unwrap_or_else(|| DEFAULT_ROOM_VERSION.to_owned());
        if version != DEFAULT_ROOM_VERSION {
            return Err(CoreError::invalid(
                "room_version",
                format!("'{version}' is not supported; use {DEFAULT_ROOM_VERSION}"),
            ));
        }
        let room_id = format!("!{}:{server_name}", random_hex(9));
        let me = caller.user_id.as_str();
        let mut create = req.creation_content.clone().unwrap_or_else(|| serde_json::json!({}));
        if !create.is_object() {
            return Err(CoreError::invalid("creation_content", "must be a JSON object"));
        }
        create["creator"] = serde_json::json!(me);
        create["room_version"] = serde_json::json!(version);
        let preset =
            req.preset.clone().unwrap_or_else(|| if req.public { "public_chat".into() } else { "private_chat".into() });
        let (join_rule, history, guest) = match preset.as_str() {
            "public_chat" => ("public", "shared", "forbidden"),
            "private_chat" | "trusted_private_chat" => ("invite", "shared", "can_join"),
            other => return Err(CoreError::invalid("preset", format!("'{other}' is not a preset"))),
        };
        let mut users = serde_json::Map::new();
        users.insert(me.to_owned(), serde_json::json!(100));
        if preset == "trusted_private_chat" {
            for invitee in &req.invite {
                users.insert(invitee.clone(), serde_json::json!(100));
            }
        }
        let mut levels = serde_json::json!({
            "users": users, "users_default": 0, "events_default": 0, "state_default": 50,
            "ban": 50, "kick": 50, "redact": 50, "invite": 0,
            "events": { "m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
                        "m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
                        "m.room.server_acl": 100, "m.room.encryption": 100 },
        });
        if let Some(overrides) = req.power_level_content_override.as_ref().and_then(|o| o.as_object()) {
            for (k, v) in overrides {
                levels[k] = v.clone();
            }
        }
        let mut events = vec![
            self.room_event(me, "m.room.create", Some(""), create),
            self.room_event(me, "m.room.member", Some(me), serde_json::json!({ "membership": "join" })),
            self.room_event(me, "m.room.power_levels", Some(""), levels),
            self.room_event(me, "m.room.join_rules", Some(""), serde_json::json!({ "join_rule": join_rule })),
            self.room_event(
                me,
                "m.room.history_visibility",
                Some(""),
                serde_json::json!({ "history_visibility": history }),
            ),
            self.room_event(me, "m.room.guest_access", Some(""), serde_json::json!({ "guest_access": guest })),
        ];
        for (kind, key, content) in &req.initial_state {
            events.push(self.room_event(me, kind, Some(key), content.clone()));
        }
        let alias = match &req.alias_name {
            Some(name) => {
                let alias = format!("#{name}:{server_name}");
                check_alias(&alias, server_name)?;
                events.push(self.room_event(
                    me,
                    "m.room.canonical_alias",
                    Some(""),
                    serde_json::json!({ "alias": alias }),
                ));
                Some(alias)
            }
            None => None,
        };
        if let Some(name) = &req.name {
            events.push(self.room_event(me, "m.room.name", Some(""), serde_json::json!({ "name": name })));
        }
        if let Some(topic) = &req.topic {
            events.push(self.room_event(me, "m.room.topic", Some(""), serde_json::json!({ "topic": topic })));
        }
        for invitee in &req.invite {
            let mut content = serde_json::json!({ "membership": "invite" });
            if req.is_direct {
                content["is_direct"] = serde_json::json!(true);
            }
            events.push(self.room_event(me, "m.room.member", Some(invitee), content));
        }
        self.room_write(&room_id, true, events, None, alias).await?;
        if req.public {
            self.matrix_put(DIRECTORY, &room_id, serde_json::json!({})).await?;
        }
        Ok(room_id)
    }

    /// A message event; the same transaction id from the same device answers the first event.
    pub async fn matrix_send(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        event_type: &str,
        content: serde_json::Value,
        txn_id: &str,
    ) -> Result<String, CoreError> {
        if !content.is_object() {
            return Err(CoreError::invalid("content", "must be a JSON object"));
        }
        let txn = crate::matrix::room::Txn {
            user_id: caller.user_id.clone(),
            device_id: caller.device_id.clone(),
            txn_id: txn_id.to_owned(),
        };
        let event = self.room_event(&caller.user_id, event_type, None, content);
        let ids = self.room_write(room_id, false, vec![event], Some(txn), None).await?;
        ids.into_iter().next().ok_or_else(|| internal("a send made no event".into()))
    }

    /// Redacts an event of the room (the caller's own, or any with the `redact` level).
    pub async fn matrix_redact(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        event_id: &str,
        txn_id: &str,
        reason: Option<&str>,
    ) -> Result<String, CoreError> {
        let mut content = serde_json::json!({ "redacts": event_id });
        if let Some(reason) = reason {
            content["reason"] = serde_json::json!(reason);
        }
        // Its own namespace of transaction ids, beside the sends'.
        self.matrix_send(caller, room_id, "m.room.redaction", content, &format!("redact\t{txn_id}")).await
    }

    /// A state event (membership changes included).
    pub async fn matrix_put_state(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        event_type: &str,
        state_key: &str,
        content: serde_json::Value,
    ) -> Result<String, CoreError> {
        if !content.is_object() {
            return Err(CoreError::invalid("content", "must be a JSON object"));
        }
        let event = self.room_event(&caller.user_id, event_type, Some(state_key), content);
        let ids = self.room_write(room_id, false, vec![event], None, None).await?;
        ids.into_iter().next().ok_or_else(|| internal("a state change made no event".into()))
    }

    /// join, leave, invite, kick (leave for another), ban, unban (leave of a ban).
    pub async fn matrix_membership(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        target: &str,
        membership: &str,
        reason: Option<&str>,
    ) -> Result<String, CoreError> {
        let mut content = serde_json::json!({ "membership": membership });
        if let Some(reason) = reason {
            content["reason"] = serde_json::json!(reason);
        }
        if membership == "join"
            && let Ok(profile) = self.matrix_profile(target).await
        {
            if let Some(name) = profile.display_name {
                content["displayname"] = serde_json::json!(name);
            }
            if let Some(url) = profile.avatar_url {
                content["avatar_url"] = serde_json::json!(url);
            }
        }
        self.matrix_put_state(caller, room_id, "m.room.member", target, content).await
    }
}

impl Engine {
    /// The caller's membership of a room, if any.
    async fn membership_of(&self, user_id: &str, room_id: &str) -> Result<Option<String>, CoreError> {
        let entry = self.matrix_get(&crate::matrix::room::memberships_name(user_id), room_id).await?;
        Ok(entry.and_then(|e| e["membership"].as_str().map(str::to_owned)))
    }

    /// The room's current state events; only for its members.
    pub async fn matrix_room_state(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
    ) -> Result<Vec<serde_json::Value>, CoreError> {
        self.require_member(caller, room_id).await?;
        let items = self.matrix_items(ObjectKind::Map, &crate::matrix::room::state_name(room_id)).await?;
        let viewer = caller.viewer();
        Ok(items.iter().map(|i| crate::matrix::event::for_client(&i.data, &viewer, true)).collect())
    }

    /// One state event's content; only for members.
    pub async fn matrix_state_content(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        event_type: &str,
        state_key: &str,
    ) -> Result<Option<serde_json::Value>, CoreError> {
        self.require_member(caller, room_id).await?;
        let key = crate::matrix::room::state_entry(event_type, state_key);
        Ok(self.matrix_get(&crate::matrix::room::state_name(room_id), &key).await?.map(|e| e["content"].clone()))
    }

    pub(super) async fn require_member(&self, caller: &MatrixCaller, room_id: &str) -> Result<(), CoreError> {
        match self.membership_of(&caller.user_id, room_id).await?.as_deref() {
            Some("join") => Ok(()),
            _ => Err(CoreError::Forbidden(format!("{} is not in room {room_id}", caller.user_id))),
        }
    }

    /// The rooms the caller has joined.
    pub async fn matrix_joined_rooms(&self, caller: &MatrixCaller) -> Result<Vec<String>, CoreError> {
        let items = self.matrix_items(ObjectKind::Map, &crate::matrix::room::memberships_name(&caller.user_id)).await?;
        Ok(items.into_iter().filter(|i| i.data["membership"] == "join").filter_map(|i| i.key).collect())
    }
}

/// `#localpart:server`, on this server, within the id length limit.
fn check_alias(alias: &str, server_name: &str) -> Result<(), CoreError> {
    let local = alias
        .strip_prefix('#')
        .and_then(|rest| rest.strip_suffix(&format!(":{server_name}")))
        .ok_or_else(|| CoreError::invalid("room_alias", format!("'{alias}' is not an alias of {server_name}")))?;
    if local.is_empty() || local.contains(':') || local.chars().any(char::is_whitespace) {
        return Err(CoreError::invalid("room_alias", format!("'{local}' may not be empty or hold ':' or spaces")));
    }
    if alias.len() > crate::matrix::MAX_USER_ID_CHARS {
        return Err(CoreError::invalid(
            "room_alias",
            format!("is longer than {} bytes", crate::matrix::MAX_USER_ID_CHARS),
        ));
    }
    Ok(())
}

impl Engine {
    /// The room an alias points at.
    pub async fn matrix_resolve_alias(&self, alias: &str) -> Result<Option<String>, CoreError> {
        let entry = self.matrix_get(crate::matrix::room::ALIASES, alias).await?;
        Ok(entry.and_then(|e| e["room_id"].as_str().map(str::to_owned)))
    }

    /// Points a new alias at a room the caller is in.
    pub async fn matrix_set_alias(
        &self,
        server_name: &str,
        caller: &MatrixCaller,
        alias: &str,
        room_id: &str,
    ) -> Result<(), CoreError> {
        check_alias(alias, server_name)?;
        self.require_member(caller, room_id).await?;
        self.alias_write(alias, Some(room_id), &caller.user_id).await
    }

    /// Removes an alias: its creator, or a member who may set the room's canonical alias.
    pub async fn matrix_delete_alias(&self, caller: &MatrixCaller, alias: &str) -> Result<(), CoreError> {
        self.alias_write(alias, None, &caller.user_id).await
    }

    async fn alias_write(&self, alias: &str, room_id: Option<&str>, user_id: &str) -> Result<(), CoreError> {
        let svc = self.service(&crate::auth::Principal::Root, crate::engine::services::MATRIX_SERVICE).await?;
        let m = Mutation::MatrixAlias {
            service: svc.sid.clone(),
            alias: alias.to_owned(),
            room_id: room_id.map(str::to_owned),
            user_id: user_id.to_owned(),
        };
        self.run_logged(&svc, &crate::auth::Principal::Root, m).await?;
        Ok(())
    }
}

impl Engine {
    /// Forgets a room the caller has left (or was banned from): it no longer counts among the
    /// caller's rooms. Refused while the caller is still in it or invited.
    pub async fn matrix_forget(&self, caller: &MatrixCaller, room_id: &str) -> Result<(), CoreError> {
        match self.membership_of(&caller.user_id, room_id).await?.as_deref() {
            Some("leave" | "ban") => {}
            None => return Ok(()),
            Some(other) => {
                return Err(CoreError::invalid(
                    "room_id",
                    format!("cannot be forgotten while the membership is '{other}'"),
                ));
            }
        }
        self.matrix_remove(
            ObjectKind::Map,
            &crate::matrix::room::memberships_name(&caller.user_id),
            ItemKey::Key(room_id.to_owned()),
        )
        .await
    }
}

/// One room as the public directory lists it.
fn directory_entry(room_id: &str, state: &[serde_json::Value]) -> serde_json::Value {
    let content = |t: &str| {
        state.iter().find(|e| e["type"] == t && e["state_key"] == "").map(|e| e["content"].clone()).unwrap_or_default()
    };
    let joined = state.iter().filter(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "join").count();
    let mut entry = serde_json::json!({
        "room_id": room_id,
        "num_joined_members": joined,
        "world_readable": content("m.room.history_visibility")["history_visibility"] == "world_readable",
        "guest_can_join": content("m.room.guest_access")["guest_access"] == "can_join",
        "join_rule": content("m.room.join_rules")["join_rule"].as_str().unwrap_or("invite"),
    });
    for (field, kind, key) in [
        ("name", "m.room.name", "name"),
        ("topic", "m.room.topic", "topic"),
        ("canonical_alias", "m.room.canonical_alias", "alias"),
        ("avatar_url", "m.room.avatar", "url"),
    ] {
        if let Some(v) = content(kind)[key].as_str().filter(|v| !v.is_empty()) {
            entry[field] = serde_json::json!(v);
        }
    }
    entry
}

impl Engine {
    /// Whether a room is published in the directory.
    pub async fn matrix_room_visibility(&self, room_id: &str) -> Result<&'static str, CoreError> {
        if self.matrix_get(&crate::matrix::room::state_name(room_id), "m.room.create\t").await?.is_none() {
            return Err(CoreError::not_found(NotFoundKind::MatrixRoom, room_id));
        }
        Ok(if self.matrix_get(DIRECTORY, room_id).await?.is_some() { "public" } else { "private" })
    }

    /// Publishes a room in the directory or withdraws it: members who may set the room's
    /// canonical alias do.
    pub async fn matrix_set_room_visibility(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        public: bool,
    ) -> Result<(), CoreError> {
        self.require_member(caller, room_id).await?;
        let levels = self
            .matrix_get(&crate::matrix::room::state_name(room_id), "m.room.power_levels\t")
            .await?
            .and_then(|e| serde_json::from_value::<crate::matrix::room::PowerLevels>(e["content"].clone()).ok())
            .unwrap_or_default();
        let needed = levels.for_event("m.room.canonical_alias", true);
        if levels.user(&caller.user_id) < needed {
            return Err(CoreError::Forbidden(format!("publishing the room needs power level {needed}")));
        }
        if public {
            return self.matrix_put(DIRECTORY, room_id, serde_json::json!({})).await;
        }
        self.matrix_remove(ObjectKind::Map, DIRECTORY, ItemKey::Key(room_id.to_owned())).await
    }

    /// The public room directory: a page of published rooms, most members first, matching
    /// `term` (in name, topic or alias, ignoring case). `since` is a token of an earlier page.
    pub async fn matrix_public_rooms(
        &self,
        limit: Option<usize>,
        since: Option<&str>,
        term: Option<&str>,
    ) -> Result<serde_json::Value, CoreError> {
        let offset = match since {
            None => 0,
            Some(t) => t
                .strip_prefix('p')
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| CoreError::invalid("since", format!("'{t}' is not a directory token of this server")))?,
        };
        let limit = limit.unwrap_or(DEFAULT_DIRECTORY_LIMIT).clamp(1, MAX_DIRECTORY_LIMIT);
        let term = term.map(str::to_lowercase).filter(|t| !t.is_empty());
        let mut rooms = Vec::new();
        for (room_id, _) in self.matrix_entries(DIRECTORY).await? {
            let state: Vec<serde_json::Value> = self
                .matrix_items(ObjectKind::Map, &crate::matrix::room::state_name(&room_id))
                .await?
                .into_iter()
                .map(|i| std::sync::Arc::unwrap_or_clone(i.data))
                .collect();
            let entry = directory_entry(&room_id, &state);
            let matches = term.as_ref().is_none_or(|t| {
                ["name", "topic", "canonical_alias"]
                    .iter()
                    .any(|f| entry[*f].as_str().is_some_and(|v| v.to_lowercase().contains(t.as_str())))
            });
            if matches {
                rooms.push(entry);
            }
        }
        rooms.sort_by(|a, b| {
            let members = |e: &serde_json::Value| e["num_joined_members"].as_u64().unwrap_or(0);
            members(b).cmp(&members(a)).then_with(|| a["room_id"].as_str().cmp(&b["room_id"].as_str()))
        });
        let total = rooms.len();
        let chunk: Vec<serde_json::Value> = rooms.into_iter().skip(offset).take(limit).collect();
        let mut answer = serde_json::json!({ "chunk": chunk, "total_room_count_estimate": total });
        if offset + limit < total {
            answer["next_batch"] = serde_json::json!(format!("p{}", offset + limit));
        }
        if offset > 0 {
            answer["prev_batch"] = serde_json::json!(format!("p{}", offset.saturating_sub(limit)));
        }
        Ok(answer)
    }

    /// Every room of the server, for operators: a page of rooms in the order their state Maps
    /// were made (by SID), each described as the directory describes rooms, plus `published`.
    /// Rooms have no registry of their own, so the Matrix service's Maps are scanned for room
    /// state Maps (`!room:server/state`); the page token names the last room's Map.
    pub async fn matrix_rooms(
        &self,
        principal: &crate::auth::Principal,
        page: crate::page::PageRequest,
    ) -> Result<crate::page::Page<serde_json::Value>, CoreError> {
        use crate::page::{Cursor, Order, Page, PageRequest, PageToken};
        const SCAN: u32 = 500;
        crate::engine::require_admin(principal)?;
        let service = self.resolve_service_ref(crate::engine::services::MATRIX_SERVICE).await?;
        let published: std::collections::BTreeSet<String> =
            self.matrix_entries(DIRECTORY).await?.into_iter().map(|(room_id, _)| room_id).collect();
        let mut rooms = Vec::new();
        let mut last_taken: Option<Cursor> = None;
        let mut after = page.after.clone();
        loop {
            let batch = PageRequest { order: Order::Asc, from: None, after: after.take(), limit: SCAN };
            let maps = self.store.objects(&service.sid, ObjectKind::Map, &batch).await?;
            let more = maps.len() > SCAN as usize;
            for map in maps.iter().take(SCAN as usize) {
                after = Some(Cursor::Key(map.sid.to_string()));
                let Some(name) = map.unique_name.as_deref() else { continue };
                let Some(room_id) = name.strip_suffix("/state").filter(|r| r.starts_with('!')) else { continue };
                if rooms.len() == page.limit as usize {
                    let next = last_taken.map(|after| PageToken { order: Order::Asc, after });
                    return Ok(Page { items: rooms, next });
                }
                let state: Vec<serde_json::Value> = self
                    .matrix_items(ObjectKind::Map, name)
                    .await?
                    .into_iter()
                    .map(|i| std::sync::Arc::unwrap_or_clone(i.data))
                    .collect();
                let mut entry = directory_entry(room_id, &state);
                entry["published"] = serde_json::json!(published.contains(room_id));
                rooms.push(entry);
                last_taken = Some(Cursor::Key(map.sid.to_string()));
            }
            if !more {
                return Ok(Page { items: rooms, next: None });
            }
        }
    }

    /// Notes that a device was used now (kept at most once a minute per device).
    pub async fn matrix_device_seen(&self, caller: &MatrixCaller, ip: Option<&str>) -> Result<(), CoreError> {
        let now = Timestamp::now().millis();
        let key = format!("{}\t{}", caller.user_id, caller.device_id);
        {
            let mut seen = self.matrix_seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.get(&key).is_some_and(|at| now - at < 60_000) {
                return Ok(());
            }
            seen.insert(key, now);
        }
        let data = serde_json::json!({ "ts": now, "ip": ip });
        self.matrix_put(&format!("{}/devices_seen", caller.user_id), &caller.device_id, data).await
    }

    /// When and from where each of a user's devices was last seen.
    pub async fn matrix_devices_seen(
        &self,
        user_id: &str,
    ) -> Result<std::collections::BTreeMap<String, serde_json::Value>, CoreError> {
        Ok(self.matrix_entries(&format!("{user_id}/devices_seen")).await?.into_iter().collect())
    }
}
