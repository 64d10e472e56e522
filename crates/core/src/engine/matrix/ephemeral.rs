//! Typing notices and read receipts. Both are entries of per-room Maps, so they reach `/sync`
//! through the change log like everything else: a typing entry expires with its timeout (the
//! expiry is itself a change), a receipt is keyed by user, type and thread.

use super::*;
use crate::matrix::event::event_index;
use crate::matrix::room::timeline_name;
use serde_json::{Map, Value, json};

/// Who is typing in a room: one entry per user, expiring with the notice's timeout.
pub(super) fn typing_name(room_id: &str) -> String {
    format!("{room_id}/typing")
}

/// A room's receipts, keyed `user \t type \t thread`.
pub(super) fn receipts_name(room_id: &str) -> String {
    format!("{room_id}/receipts")
}

/// The longest typing notice, whatever the client asks.
const MAX_TYPING_SECS: u64 = 120;
/// Receipt types a client may send (`m.fully_read` goes to account data).
const RECEIPT_TYPES: &[&str] = &["m.read", "m.read.private", "m.fully_read"];

fn receipt_key(user_id: &str, receipt_type: &str, thread: Option<&str>) -> String {
    format!("{user_id}\t{receipt_type}\t{}", thread.unwrap_or_default())
}

/// The `m.receipt` content for these entries (`(key, data)`); private receipts only for
/// their owner. `None` when nothing is left to show.
pub(super) fn receipt_content(entries: &[(String, Value)], viewer: &str) -> Option<Value> {
    let mut content = Map::new();
    for (key, data) in entries {
        let mut parts = key.split('\t');
        let (Some(user), Some(kind)) = (parts.next(), parts.next()) else { continue };
        if kind == "m.read.private" && user != viewer {
            continue;
        }
        let Some(event_id) = data["event_id"].as_str() else { continue };
        let mut receipt = json!({ "ts": data["ts"] });
        if let Some(thread) = data["thread_id"].as_str() {
            receipt["thread_id"] = json!(thread);
        }
        let by_event = content.entry(event_id.to_owned()).or_insert_with(|| json!({}));
        by_event[kind][user] = receipt;
    }
    (!content.is_empty()).then_some(Value::Object(content))
}

impl Engine {
    /// A typing notice: `Some(timeout_ms)` while typing, `None` when stopped.
    pub async fn matrix_typing(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        user_id: &str,
        timeout_ms: Option<u64>,
    ) -> Result<(), CoreError> {
        if user_id != caller.user_id {
            return Err(CoreError::Forbidden(format!("{} cannot set typing for {user_id}", caller.user_id)));
        }
        self.require_member(caller, room_id).await?;
        match timeout_ms {
            Some(ms) => {
                let secs = ms.div_ceil(1000).clamp(1, MAX_TYPING_SECS);
                self.matrix_put_ttl(&typing_name(room_id), user_id, json!({}), Some(secs)).await
            }
            None => self.matrix_remove(ObjectKind::Map, &typing_name(room_id), ItemKey::Key(user_id.to_owned())).await,
        }
    }

    /// A receipt for `event_id`. Receipts only move forward: one for an earlier event than
    /// the user's current one of that type is accepted and changes nothing.
    pub async fn matrix_receipt(
        &self,
        caller: &MatrixCaller,
        room_id: &str,
        receipt_type: &str,
        event_id: &str,
        thread_id: Option<&str>,
    ) -> Result<(), CoreError> {
        if !RECEIPT_TYPES.contains(&receipt_type) {
            return Err(CoreError::invalid(
                "receiptType",
                format!("must be one of {}, got '{receipt_type}'", RECEIPT_TYPES.join(", ")),
            ));
        }
        self.require_member(caller, room_id).await?;
        let index = self.event_position(room_id, event_id).await?;
        if receipt_type == "m.fully_read" {
            return self
                .matrix_put_account_data(caller, Some(room_id), "m.fully_read", json!({ "event_id": event_id }))
                .await;
        }
        let map = receipts_name(room_id);
        let key = receipt_key(&caller.user_id, receipt_type, thread_id);
        if let Some(current) = self.matrix_get(&map, &key).await?
            && current["event_id"].as_str().and_then(|id| event_index(room_id, id)).is_some_and(|i| i >= index)
        {
            return Ok(());
        }
        let mut data = json!({ "event_id": event_id, "ts": Timestamp::now().millis() });
        if let Some(thread) = thread_id {
            data["thread_id"] = json!(thread);
        }
        self.matrix_put(&map, &key, data).await
    }

    /// The timeline index of the newest event the user has read (public or private receipt).
    pub(super) async fn matrix_read_up_to(&self, user_id: &str, room_id: &str) -> Result<Option<u64>, CoreError> {
        let map = receipts_name(room_id);
        let mut newest = None;
        for kind in ["m.read", "m.read.private"] {
            if let Some(r) = self.matrix_get(&map, &receipt_key(user_id, kind, None)).await?
                && let Some(index) = r["event_id"].as_str().and_then(|id| event_index(room_id, id))
            {
                newest = newest.max(Some(index));
            }
        }
        Ok(newest)
    }

    /// Where an event of the room sits in its timeline; NotFound for anything else.
    pub(super) async fn event_position(&self, room_id: &str, event_id: &str) -> Result<u64, CoreError> {
        let missing = || CoreError::not_found(NotFoundKind::MatrixEvent, event_id);
        let index = event_index(room_id, event_id).ok_or_else(missing)?;
        let found = self
            .item(
                &crate::auth::Principal::Root,
                crate::engine::services::MATRIX_SERVICE,
                ObjectKind::List,
                &timeline_name(room_id),
                &ItemKey::Index(index),
            )
            .await;
        match found {
            Ok(item) if item.data["event_id"] == event_id => Ok(index),
            Ok(_) | Err(CoreError::NotFound { .. }) => Err(missing()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_group_by_event_and_private_ones_stay_private() {
        let entries = vec![
            ("@a:x\tm.read\t".to_owned(), json!({ "event_id": "$r_1", "ts": 10 })),
            ("@b:x\tm.read\t".to_owned(), json!({ "event_id": "$r_1", "ts": 11 })),
            ("@b:x\tm.read.private\t".to_owned(), json!({ "event_id": "$r_2", "ts": 12 })),
            ("@a:x\tm.read\tt1".to_owned(), json!({ "event_id": "$r_3", "ts": 13, "thread_id": "t1" })),
        ];
        let for_a = receipt_content(&entries, "@a:x").expect("receipts");
        assert_eq!(for_a["$r_1"]["m.read"], json!({ "@a:x": { "ts": 10 }, "@b:x": { "ts": 11 } }));
        assert!(for_a.get("$r_2").is_none(), "b's private receipt is b's");
        assert_eq!(for_a["$r_3"]["m.read"]["@a:x"], json!({ "ts": 13, "thread_id": "t1" }));
        let for_b = receipt_content(&entries, "@b:x").expect("receipts");
        assert_eq!(for_b["$r_2"]["m.read.private"]["@b:x"]["ts"], 12);
        assert!(receipt_content(&entries[2..3], "@a:x").is_none());
    }
}
