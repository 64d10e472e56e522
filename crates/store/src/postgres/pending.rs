//! Writes the writer's transaction holds back until a statement needs them.
//!
//! Every statement is a round trip to PostgreSQL, and a document update made four: its
//! savepoint, the object's read, the object's row and its event. The rows and the event need
//! no answer, so while a batch runs they are kept here and sent together, in one statement,
//! just before the next statement of any other kind (which may read them) or with the batch's
//! heads and notifications at its end. Map and List items written or removed are held the same
//! way. The writer's own reads of an object or an item it holds back are answered from here.

use ferrosync_core::model::{Item, ItemKey, ObjectKind, ObjectRef, SyncObject};
use ferrosync_core::sid::Sid;
use ferrosync_core::timestamp::Timestamp;
use postgres::types::ToSql;

/// The writes of [`FINISH`] and [`FINISH_REMOVING`].
macro_rules! held_writes {
    () => {
        "WITH o AS (
    INSERT INTO objects (sid, service_sid, kind, unique_name, data, revision, next_index, date_created, date_updated, date_expires, created_by)
    SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::text[])
    ON CONFLICT (sid) DO UPDATE SET unique_name = excluded.unique_name, data = excluded.data,
      revision = excluded.revision, next_index = excluded.next_index, date_updated = excluded.date_updated,
      date_expires = excluded.date_expires
), e AS (
    INSERT INTO events (service_sid, seq, object_sid, date, body)
    SELECT * FROM unnest($12::text[], $13::int8[], $14::text[], $15::int8[], $16::text[])
), h AS (
    UPDATE services SET head_seq = v.head FROM unnest($17::text[], $18::int8[]) AS v(sid, head) WHERE services.sid = v.sid
), i AS (
    INSERT INTO items (object_sid, item_key, item_index, data, revision, date_created, date_updated, date_expires, created_by)
    SELECT * FROM unnest($21::text[], $22::text[], $23::int8[], $24::text[], $25::int8[], $26::int8[], $27::int8[], $28::int8[], $29::text[])
    ON CONFLICT (object_sid, item_key, item_index) DO UPDATE SET data = excluded.data, revision = excluded.revision,
      date_updated = excluded.date_updated, date_expires = excluded.date_expires
)"
    };
}

/// One statement: the held objects (the last version of each), the held events, the held items
/// (the last write of each), and the services' new heads with their notifications (none when
/// it only sends what is held before another statement); notifications go out when the
/// transaction commits. An item may belong to an object inserted by the same statement: its
/// foreign key is checked when the statement ends.
pub(super) const FINISH: &str = concat!(held_writes!(), "\nSELECT pg_notify($19, p) FROM unnest($20::text[]) AS p");

/// [`FINISH`] with the items held removed. A statement of its own: its removal's cost, as the
/// planner guesses it for arrays of unknown length, keeps PostgreSQL from ever settling on a
/// generic plan, and re-planning every batch's statement costs a third of a millisecond.
pub(super) const FINISH_REMOVING: &str = concat!(
    held_writes!(),
    ", r AS (
    DELETE FROM items USING unnest($30::text[], $31::text[], $32::int8[]) AS g(object_sid, item_key, item_index)
    WHERE items.object_sid = g.object_sid AND items.item_key = g.item_key AND items.item_index = g.item_index
)
SELECT pg_notify($19, p) FROM unnest($20::text[]) AS p"
);

/// Whether `o` is the object of `kind` that `r` names in `service`.
pub(crate) fn is_named(o: &SyncObject, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> bool {
    o.service_sid == *service
        && o.kind == kind
        && match r {
            ObjectRef::Sid(sid) => o.sid == *sid,
            ObjectRef::UniqueName(name) => o.unique_name.as_deref() == Some(name.as_str()),
        }
}

/// An item's key as its columns: a Map's key with index 0, or a List's index with key `''`.
pub(crate) fn key_parts(key: &ItemKey) -> (&str, i64) {
    match key {
        ItemKey::Index(i) => ("", *i as i64),
        ItemKey::Key(k) => (k.as_str(), 0),
    }
}

/// An item written (`Some`) or removed (`None`).
struct HeldItem {
    object: Sid,
    key: ItemKey,
    item: Option<Item>,
}

struct HeldEvent {
    service: Sid,
    seq: u64,
    object: Sid,
    date: Timestamp,
    json: String,
}

/// How much was held when a mutation began: what a failed one added is dropped.
#[derive(Clone, Copy, Default)]
pub(crate) struct Mark {
    objects: usize,
    events: usize,
    items: usize,
}

#[derive(Default)]
pub(crate) struct Held {
    objects: Vec<SyncObject>,
    events: Vec<HeldEvent>,
    items: Vec<HeldItem>,
    /// Where each item's last held state is in `items`: a batch of large Cognito syncs holds
    /// thousands of records, each read first.
    item_at: foldhash::HashMap<Sid, foldhash::HashMap<ItemKey, usize>>,
}

impl Held {
    pub(crate) fn is_empty(&self) -> bool {
        self.objects.is_empty() && self.events.is_empty() && self.items.is_empty()
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark { objects: self.objects.len(), events: self.events.len(), items: self.items.len() }
    }

    /// Whether anything was held since `mark`.
    pub(crate) fn grew_since(&self, mark: Mark) -> bool {
        self.objects.len() > mark.objects || self.events.len() > mark.events || self.items.len() > mark.items
    }

    pub(crate) fn truncate(&mut self, mark: Mark) {
        self.objects.truncate(mark.objects);
        self.events.truncate(mark.events);
        if self.items.len() > mark.items {
            self.items.truncate(mark.items);
            // A failed job's items may have hidden earlier states of the same items.
            self.item_at.clear();
            for i in 0..self.items.len() {
                self.index_item(i);
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.objects.clear();
        self.events.clear();
        self.items.clear();
        self.item_at.clear();
    }

    pub(crate) fn put_item(&mut self, item: &Item) {
        self.items.push(HeldItem { object: item.object_sid.clone(), key: item.item_key(), item: Some(item.clone()) });
        self.index_item(self.items.len() - 1);
    }

    pub(crate) fn delete_item(&mut self, object: &Sid, key: &ItemKey) {
        self.items.push(HeldItem { object: object.clone(), key: key.clone(), item: None });
        self.index_item(self.items.len() - 1);
    }

    fn index_item(&mut self, i: usize) {
        if let Some(h) = self.items.get(i) {
            self.item_at.entry(h.object.clone()).or_default().insert(h.key.clone(), i);
        }
    }

    /// The held state of `object`'s item `key`: `Some(None)` when it is held removed, `None`
    /// when nothing of it is held.
    pub(crate) fn item(&self, object: &Sid, key: &ItemKey) -> Option<Option<&Item>> {
        let i = *self.item_at.get(object)?.get(key)?;
        self.items.get(i).map(|h| h.item.as_ref())
    }

    pub(crate) fn put_object(&mut self, object: &SyncObject) {
        self.objects.push(object.clone());
    }

    pub(crate) fn insert_event(&mut self, service: &Sid, seq: u64, object: &Sid, date: Timestamp, json: &str) {
        let (service, object, json) = (service.clone(), object.clone(), json.to_owned());
        self.events.push(HeldEvent { service, seq, object, date, json });
    }

    /// The held version of the object `r` names in `service`, if one is held.
    pub(crate) fn object(&self, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> Option<&SyncObject> {
        self.objects.iter().rev().find(|o| is_named(o, service, kind, r))
    }

    /// The held version of the object `sid`, if one is held.
    pub(crate) fn object_by_sid(&self, sid: &Sid) -> Option<&SyncObject> {
        self.objects.iter().rev().find(|o| o.sid == *sid)
    }

    /// The parameters of [`FINISH`] for what is held, with `heads` and the notifications
    /// `payload` on `channel`. An object held several times is written in its last version:
    /// one statement may not upsert a row twice.
    pub(crate) fn args<'a>(
        &'a self,
        heads: &'a [(&'a Sid, u64)],
        channel: &'a str,
        payload: &'a [String],
    ) -> FinishArgs<'a> {
        let mut seen = std::collections::HashSet::new();
        let last: Vec<&SyncObject> = self.objects.iter().rev().filter(|o| seen.insert(&o.sid)).collect();
        let ints = |f: fn(&SyncObject) -> i64| last.iter().map(|o| f(o)).collect::<Vec<i64>>();
        let mut seen = std::collections::HashSet::new();
        let (written, removed): (Vec<&HeldItem>, Vec<&HeldItem>) =
            self.items.iter().rev().filter(|h| seen.insert((&h.object, &h.key))).partition(|h| h.item.is_some());
        let written: Vec<&Item> = written.iter().filter_map(|h| h.item.as_ref()).collect();
        let item_ints = |f: fn(&Item) -> i64| written.iter().map(|i| f(i)).collect::<Vec<i64>>();
        FinishArgs {
            sid: last.iter().map(|o| o.sid.as_str()).collect(),
            service: last.iter().map(|o| o.service_sid.as_str()).collect(),
            kind: ints(|o| o.kind.code()),
            unique_name: last.iter().map(|o| o.unique_name.as_deref()).collect(),
            data: last.iter().map(|o| o.data.as_ref().map(|d| d.to_string())).collect(),
            revision: ints(|o| o.revision as i64),
            next_index: ints(|o| o.next_index as i64),
            created: ints(|o| o.date_created.0),
            updated: ints(|o| o.date_updated.0),
            expires: last.iter().map(|o| o.date_expires.map(|t| t.0)).collect(),
            created_by: last.iter().map(|o| o.created_by.as_str()).collect(),
            event_service: self.events.iter().map(|e| e.service.as_str()).collect(),
            event_seq: self.events.iter().map(|e| e.seq as i64).collect(),
            event_object: self.events.iter().map(|e| e.object.as_str()).collect(),
            event_date: self.events.iter().map(|e| e.date.0).collect(),
            event_body: self.events.iter().map(|e| e.json.as_str()).collect(),
            head_service: heads.iter().map(|(s, _)| s.as_str()).collect(),
            head: heads.iter().map(|(_, h)| *h as i64).collect(),
            channel,
            payload,
            item_object: written.iter().map(|i| i.object_sid.as_str()).collect(),
            item_key: written.iter().map(|i| i.key.as_deref().unwrap_or("")).collect(),
            item_index: item_ints(|i| i.index.map_or(0, |x| x as i64)),
            item_data: written.iter().map(|i| i.data.to_string()).collect(),
            item_revision: item_ints(|i| i.revision as i64),
            item_created: item_ints(|i| i.date_created.0),
            item_updated: item_ints(|i| i.date_updated.0),
            item_expires: written.iter().map(|i| i.date_expires.map(|t| t.0)).collect(),
            item_created_by: written.iter().map(|i| i.created_by.as_str()).collect(),
            removed_object: removed.iter().map(|h| h.object.as_str()).collect(),
            removed_key: removed.iter().map(|h| key_parts(&h.key).0).collect(),
            removed_index: removed.iter().map(|h| key_parts(&h.key).1).collect(),
        }
    }
}

/// [`FINISH`]'s parameters, borrowed from what is held.
pub(crate) struct FinishArgs<'a> {
    sid: Vec<&'a str>,
    service: Vec<&'a str>,
    kind: Vec<i64>,
    unique_name: Vec<Option<&'a str>>,
    data: Vec<Option<String>>,
    revision: Vec<i64>,
    next_index: Vec<i64>,
    created: Vec<i64>,
    updated: Vec<i64>,
    expires: Vec<Option<i64>>,
    created_by: Vec<&'a str>,
    event_service: Vec<&'a str>,
    event_seq: Vec<i64>,
    event_object: Vec<&'a str>,
    event_date: Vec<i64>,
    event_body: Vec<&'a str>,
    head_service: Vec<&'a str>,
    head: Vec<i64>,
    channel: &'a str,
    payload: &'a [String],
    item_object: Vec<&'a str>,
    item_key: Vec<&'a str>,
    item_index: Vec<i64>,
    item_data: Vec<String>,
    item_revision: Vec<i64>,
    item_created: Vec<i64>,
    item_updated: Vec<i64>,
    item_expires: Vec<Option<i64>>,
    item_created_by: Vec<&'a str>,
    removed_object: Vec<&'a str>,
    removed_key: Vec<&'a str>,
    removed_index: Vec<i64>,
}

impl FinishArgs<'_> {
    /// The statement to send these with: [`FINISH_REMOVING`] only when an item is removed.
    pub(crate) fn statement(&self) -> &'static str {
        if self.removed_object.is_empty() { FINISH } else { FINISH_REMOVING }
    }

    /// The parameters of [`FinishArgs::statement`].
    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut refs = self.all_refs().to_vec();
        if self.removed_object.is_empty() {
            refs.truncate(29);
        }
        refs
    }

    fn all_refs(&self) -> [&(dyn ToSql + Sync); 32] {
        [
            &self.sid,
            &self.service,
            &self.kind,
            &self.unique_name,
            &self.data,
            &self.revision,
            &self.next_index,
            &self.created,
            &self.updated,
            &self.expires,
            &self.created_by,
            &self.event_service,
            &self.event_seq,
            &self.event_object,
            &self.event_date,
            &self.event_body,
            &self.head_service,
            &self.head,
            &self.channel,
            &self.payload,
            &self.item_object,
            &self.item_key,
            &self.item_index,
            &self.item_data,
            &self.item_revision,
            &self.item_created,
            &self.item_updated,
            &self.item_expires,
            &self.item_created_by,
            &self.removed_object,
            &self.removed_key,
            &self.removed_index,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::sid::SidKind;

    fn entry(object: &Sid, key: &str, revision: u64) -> Item {
        Item {
            object_sid: object.clone(),
            index: None,
            key: Some(key.into()),
            data: serde_json::json!({ "r": revision }).into(),
            revision,
            date_created: Timestamp(0),
            date_updated: Timestamp(0),
            date_expires: None,
            created_by: "system".into(),
        }
    }

    /// An item's last held state answers its reads; dropping a failed job's items gives back
    /// the states they hid, and clearing forgets every one.
    #[test]
    fn an_items_last_held_state_answers_until_its_job_is_dropped() {
        let (map, other) = (Sid::new(SidKind::Map), Sid::new(SidKind::Map));
        let (a, b) = (ItemKey::Key("a".into()), ItemKey::Key("b".into()));
        let revision = |held: &Held, object: &Sid, key: &ItemKey| held.item(object, key).map(|i| i.map(|i| i.revision));
        let mut held = Held::default();
        held.put_item(&entry(&map, "a", 1));
        held.put_item(&entry(&map, "a", 2));
        held.delete_item(&map, &b);
        assert_eq!(revision(&held, &map, &a), Some(Some(2)), "the last write");
        assert_eq!(revision(&held, &map, &b), Some(None), "held removed");
        assert_eq!(revision(&held, &other, &a), None, "another map's item is not held");

        let mark = held.mark();
        held.put_item(&entry(&map, "b", 3));
        held.delete_item(&map, &a);
        held.put_item(&entry(&other, "a", 4));
        assert_eq!(revision(&held, &map, &a), Some(None));
        assert_eq!(revision(&held, &map, &b), Some(Some(3)));
        held.truncate(mark);
        assert_eq!(revision(&held, &map, &a), Some(Some(2)), "the state the dropped removal hid");
        assert_eq!(revision(&held, &map, &b), Some(None));
        assert_eq!(revision(&held, &other, &a), None, "dropped with its job");

        held.clear();
        assert_eq!(revision(&held, &map, &a), None);
        assert!(held.is_empty());
    }
}
