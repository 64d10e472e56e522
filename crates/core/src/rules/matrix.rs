//! The rules of Matrix accounts: one user per id, devices only of live users.

use super::Cx;
use crate::error::{CoreError, NotFoundKind};
use crate::log::EventKind;
use crate::matrix::event::{PREV_STATE, TXN, as_prev_state, event_id_for, event_index, redacted};
use crate::matrix::room::{
    ALIASES, RoomEventDraft, StateSlice, Txn, authorize, entries_for, memberships_name, state_entry, state_name,
    timeline_name,
};
use crate::matrix::{MatrixDevice, MatrixUser};
use crate::model::{ItemKey, ObjectKind, ObjectRef, SyncObject};
use crate::sid::Sid;
use crate::store::{Outcome, StoreError};

impl Cx<'_> {
    pub(super) fn create_matrix_user(&mut self, user: MatrixUser, device: MatrixDevice) -> Result<Outcome, CoreError> {
        if self.tx.matrix_user(&user.user_id)?.is_some() {
            return Err(CoreError::AlreadyExists { what: "user", name: user.user_id });
        }
        self.tx.put_matrix_user(&user)?;
        self.tx.put_matrix_device(&device)?;
        Ok(Outcome::MatrixDevice(device))
    }

    pub(super) fn put_matrix_device(&mut self, device: MatrixDevice) -> Result<Outcome, CoreError> {
        self.live_user(&device.user_id)?;
        self.tx.put_matrix_device(&device)?;
        Ok(Outcome::MatrixDevice(device))
    }

    fn live_user(&mut self, user_id: &str) -> Result<MatrixUser, CoreError> {
        match self.tx.matrix_user(user_id)? {
            Some(user) if !user.deactivated => Ok(user),
            _ => Err(CoreError::not_found(NotFoundKind::MatrixUser, user_id)),
        }
    }

    pub(super) fn put_matrix_filter(
        &mut self,
        user_id: &str,
        filter_id: &str,
        filter: &str,
    ) -> Result<Outcome, CoreError> {
        self.live_user(user_id)?;
        self.tx.put_matrix_filter(user_id, filter_id, filter)?;
        Ok(Outcome::Stored)
    }

    pub(super) fn set_matrix_profile(
        &mut self,
        user_id: &str,
        display_name: Option<Option<String>>,
        avatar_url: Option<Option<String>>,
    ) -> Result<Outcome, CoreError> {
        let mut user = self.live_user(user_id)?;
        if let Some(name) = display_name {
            user.display_name = name;
        }
        if let Some(url) = avatar_url {
            user.avatar_url = url;
        }
        self.tx.put_matrix_user(&user)?;
        Ok(Outcome::MatrixUser(user))
    }

    pub(super) fn rename_matrix_device(
        &mut self,
        user_id: &str,
        device_id: &str,
        name: String,
    ) -> Result<Outcome, CoreError> {
        let mut device = self
            .tx
            .matrix_device(user_id, device_id)?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Device, device_id))?;
        device.display_name = Some(name);
        self.tx.put_matrix_device(&device)?;
        Ok(Outcome::MatrixDevice(device))
    }

    pub(super) fn remove_matrix_devices(
        &mut self,
        user_id: &str,
        device_id: Option<&str>,
    ) -> Result<Outcome, CoreError> {
        Ok(Outcome::MatrixDevicesRemoved(self.tx.delete_matrix_devices(user_id, device_id)?))
    }
}

impl Cx<'_> {
    pub(super) fn matrix_room_events(
        &mut self,
        service: &Sid,
        room_id: &str,
        create: bool,
        events: Vec<RoomEventDraft>,
        txn: Option<Txn>,
    ) -> Result<Outcome, CoreError> {
        self.service(service)?;
        if let Some(txn) = &txn {
            let (map, key) = txn.entry();
            if let Some(txns) = self.named_object(service, ObjectKind::Map, map, false)?
                && let Some(done) = self.tx.item(&txns.sid, &ItemKey::Key(key))?
            {
                let id = done.data["event_id"].as_str().unwrap_or_default().to_owned();
                return Ok(Outcome::MatrixEvents(vec![id]));
            }
        }
        let exists =
            self.tx.object(service, ObjectKind::List, &ObjectRef::UniqueName(timeline_name(room_id)))?.is_some();
        match (create, exists) {
            (true, true) => return Err(CoreError::AlreadyExists { what: "room", name: room_id.to_owned() }),
            (false, false) => return Err(CoreError::not_found(NotFoundKind::MatrixRoom, room_id)),
            _ => {}
        }
        let missing = || CoreError::not_found(NotFoundKind::MatrixRoom, room_id);
        let mut timeline =
            self.named_object(service, ObjectKind::List, timeline_name(room_id), create)?.ok_or_else(missing)?;
        let mut state =
            self.named_object(service, ObjectKind::Map, state_name(room_id), create)?.ok_or_else(missing)?;
        let mut ids = Vec::with_capacity(events.len());
        for (n, mut event) in events.into_iter().enumerate() {
            event.event_id = event_id_for(room_id, timeline.next_index);
            // A new room's first event is its m.room.create; every other one passes the rules.
            let creating = create && n == 0;
            if creating != (event.event_type == "m.room.create") {
                return Err(CoreError::Forbidden("m.room.create comes first, and only once".into()));
            }
            if !creating {
                let mut slice = StateSlice::default();
                for (kind, key) in entries_for(&event) {
                    if let Some(item) = self.tx.item(&state.sid, &ItemKey::Key(state_entry(&kind, &key)))? {
                        slice.0.insert((kind, key), item.data["content"].clone());
                    }
                }
                authorize(&event, &slice).map_err(CoreError::Forbidden)?;
            }
            if event.event_type == "m.room.redaction" {
                self.redact(&mut timeline, &mut state, room_id, &event)?;
            }
            let mut json = event.to_json(room_id);
            if event.event_type == "m.room.redaction" {
                // Room versions up to 10 read the target at the top level, 11 in the content.
                json["redacts"] = event.content["redacts"].clone();
            }
            let entry = event.state_key.as_ref().map(|key| state_entry(&event.event_type, key));
            if let Some(entry) = &entry
                && let Some(prev) = self.tx.item(&state.sid, &ItemKey::Key(entry.clone()))?
            {
                json["unsigned"] = serde_json::json!({
                    "replaces_state": prev.data["event_id"],
                    "prev_content": prev.data["content"],
                    "prev_sender": prev.data["sender"],
                });
                json[PREV_STATE] = as_prev_state(&prev.data);
            }
            if let Some(txn) = &txn {
                json[TXN] = serde_json::json!({ "device_id": txn.device_id, "txn_id": txn.txn_id });
            }
            self.push_item(&mut timeline, json.clone(), None, None)?;
            if let (Some(key), Some(entry)) = (&event.state_key, entry) {
                self.put_entry(&mut state, entry, json)?;
                if event.event_type == "m.room.member" {
                    let membership = event.content["membership"].clone();
                    let mut rooms = self
                        .named_object(service, ObjectKind::Map, memberships_name(key), true)?
                        .ok_or_else(missing)?;
                    let entry = serde_json::json!({ "membership": membership, "event_id": event.event_id });
                    self.put_entry(&mut rooms, room_id.to_owned(), entry)?;
                }
            }
            ids.push(event.event_id);
        }
        if let Some(txn) = txn {
            let (map, key) = txn.entry();
            let mut txns = self.named_object(service, ObjectKind::Map, map, true)?.ok_or_else(missing)?;
            let first = ids.first().cloned().unwrap_or_default();
            self.put_entry(&mut txns, key, serde_json::json!({ "event_id": first, "room_id": room_id }))?;
        }
        Ok(Outcome::MatrixEvents(ids))
    }
}

impl Cx<'_> {
    /// Claims (`room_id`) or removes an alias. `for_new_room`: the room is made in the same
    /// transaction, so it need not exist yet.
    pub(super) fn matrix_alias(
        &mut self,
        service: &Sid,
        alias: &str,
        room_id: Option<&str>,
        user_id: &str,
        for_new_room: bool,
    ) -> Result<Outcome, CoreError> {
        let mut aliases = self
            .named_object(service, ObjectKind::Map, ALIASES.to_owned(), true)?
            .ok_or_else(|| CoreError::Store(StoreError::Backend("the alias Map could not be made".into())))?;
        let key = ItemKey::Key(alias.to_owned());
        let existing = self.tx.item(&aliases.sid, &key)?;
        match room_id {
            Some(room_id) => {
                if existing.is_some() {
                    return Err(CoreError::AlreadyExists { what: "alias", name: alias.to_owned() });
                }
                let room_exists = self
                    .tx
                    .object(service, ObjectKind::List, &ObjectRef::UniqueName(timeline_name(room_id)))?
                    .is_some();
                if !room_exists && !for_new_room {
                    return Err(CoreError::not_found(NotFoundKind::MatrixRoom, room_id));
                }
                let entry = serde_json::json!({ "room_id": room_id, "creator": user_id });
                self.put_entry(&mut aliases, alias.to_owned(), entry)?;
                Ok(Outcome::Stored)
            }
            None => {
                let Some(item) = existing else {
                    return Err(CoreError::not_found(NotFoundKind::MatrixAlias, alias));
                };
                let creator = item.data["creator"].as_str().unwrap_or_default();
                if creator != user_id {
                    let room = item.data["room_id"].as_str().unwrap_or_default().to_owned();
                    self.require_room_level(service, &room, user_id, "m.room.canonical_alias")?;
                }
                self.tx.delete_item(&aliases.sid, &key)?;
                super::touch_container(self.now, &mut aliases, None);
                self.emit_item_removed(&aliases, &item, None)?;
                Ok(Outcome::Removed)
            }
        }
    }

    /// `user_id` is in the room with the power level to send `event_type` as state.
    fn require_room_level(
        &mut self,
        service: &Sid,
        room_id: &str,
        user_id: &str,
        event_type: &str,
    ) -> Result<(), CoreError> {
        let Some(state) = self.tx.object(service, ObjectKind::Map, &ObjectRef::UniqueName(state_name(room_id)))? else {
            return Err(CoreError::Forbidden(format!("{user_id} may not change the room's aliases")));
        };
        let probe = RoomEventDraft {
            event_id: String::new(),
            event_type: event_type.to_owned(),
            state_key: Some(String::new()),
            sender: user_id.to_owned(),
            content: serde_json::json!({}),
            origin_server_ts: 0,
        };
        let mut slice = StateSlice::default();
        for (kind, key) in entries_for(&probe) {
            if let Some(item) = self.tx.item(&state.sid, &ItemKey::Key(state_entry(&kind, &key)))? {
                slice.0.insert((kind, key), item.data["content"].clone());
            }
        }
        authorize(&probe, &slice)
            .map_err(|_| CoreError::Forbidden(format!("{user_id} may not change the room's aliases")))
    }
}

impl Cx<'_> {
    /// Applies a redaction to its target: the timeline item (and the state entry, when the
    /// target is current state) keeps only what the redaction algorithm keeps, and records
    /// the redaction in `unsigned.redacted_because`. The sender redacts its own events, or
    /// needs the room's `redact` level.
    fn redact(
        &mut self,
        timeline: &mut SyncObject,
        state: &mut SyncObject,
        room_id: &str,
        redaction: &RoomEventDraft,
    ) -> Result<(), CoreError> {
        let target_id = redaction.content["redacts"].as_str().unwrap_or_default();
        let missing = || CoreError::not_found(NotFoundKind::MatrixEvent, target_id);
        let index = event_index(room_id, target_id).ok_or_else(missing)?;
        let mut item = self.tx.item(&timeline.sid, &ItemKey::Index(index))?.ok_or_else(missing)?;
        if item.data["event_id"] != target_id {
            return Err(missing());
        }
        if item.data["sender"] != redaction.sender.as_str() {
            let level_key = state_entry("m.room.power_levels", "");
            let levels = self.tx.item(&state.sid, &ItemKey::Key(level_key))?.map(|i| i.data["content"].clone());
            let levels: crate::matrix::room::PowerLevels =
                levels.and_then(|l| serde_json::from_value(l).ok()).unwrap_or_default();
            if levels.user(&redaction.sender) < levels.redact {
                return Err(CoreError::Forbidden(format!(
                    "redacting another user's event needs power level {}",
                    levels.redact
                )));
            }
        }
        let because = redaction.to_json(room_id);
        let previous = item.data.clone();
        redacted(std::sync::Arc::make_mut(&mut item.data), because);
        item.revision += 1;
        item.date_updated = self.now;
        super::touch_container(self.now, timeline, None);
        self.tx.put_item(&item)?;
        self.emit_item_with_container(EventKind::ListItemUpdated, timeline, &item, Some(previous))?;
        if let Some((kind, key)) = crate::matrix::event::state_key_of(&item.data) {
            let entry = state_entry(kind, key);
            let current = self.tx.item(&state.sid, &ItemKey::Key(entry.clone()))?;
            if current.is_some_and(|c| c.data["event_id"] == target_id) {
                let data = serde_json::Value::clone(&item.data);
                self.put_entry(state, entry, data)?;
            }
        }
        Ok(())
    }
}
