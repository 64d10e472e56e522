//! The parts of an answer beside timelines and state: ephemeral events, account data,
//! presence, device lists and unread counts.

use super::*;

impl Run<'_> {
    /// Typing and receipts of a room.
    pub(super) async fn ephemeral(
        &mut self,
        room: &str,
        w: &Window,
        first_sight: bool,
    ) -> Result<Vec<Value>, CoreError> {
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

    pub(super) async fn room_account_data(
        &mut self,
        room: &str,
        w: &Window,
        first_sight: bool,
    ) -> Result<Vec<Value>, CoreError> {
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

    pub(super) async fn global_account_data(&mut self, w: &Window, initial: bool) -> Result<Vec<Value>, CoreError> {
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
    pub(super) async fn co_members(
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

    pub(super) async fn presence(
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
    pub(super) async fn device_lists(
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
    pub(super) async fn unread(&mut self, room: &str) -> Result<Value, CoreError> {
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
