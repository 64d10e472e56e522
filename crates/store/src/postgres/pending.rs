//! Writes the writer's transaction holds back until a statement needs them.
//!
//! Every statement is a round trip to PostgreSQL, and a document update made four: its
//! savepoint, the object's read, the object's row and its event. The row and the event need no
//! answer, so while a batch runs they are kept here and sent together, in one statement, just
//! before the next statement of any other kind (which may read them) or with the batch's
//! heads and notifications at its end. The writer's own reads of an object it holds back are
//! answered from here.

use ferrosync_core::model::{ObjectKind, ObjectRef, SyncObject};
use ferrosync_core::sid::Sid;
use ferrosync_core::timestamp::Timestamp;
use postgres::types::ToSql;

/// One statement: the held objects (the last version of each), the held events, and the
/// services' new heads with their notifications (none when it only sends what is held before
/// another statement); notifications go out when the transaction commits.
pub(super) const FINISH: &str = "WITH o AS (
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
)
SELECT pg_notify($19, p) FROM unnest($20::text[]) AS p";

/// Whether `o` is the object of `kind` that `r` names in `service`.
pub(crate) fn is_named(o: &SyncObject, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> bool {
    o.service_sid == *service
        && o.kind == kind
        && match r {
            ObjectRef::Sid(sid) => o.sid == *sid,
            ObjectRef::UniqueName(name) => o.unique_name.as_deref() == Some(name.as_str()),
        }
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
}

#[derive(Default)]
pub(crate) struct Held {
    objects: Vec<SyncObject>,
    events: Vec<HeldEvent>,
}

impl Held {
    pub(crate) fn is_empty(&self) -> bool {
        self.objects.is_empty() && self.events.is_empty()
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark { objects: self.objects.len(), events: self.events.len() }
    }

    /// Whether anything was held since `mark`.
    pub(crate) fn grew_since(&self, mark: Mark) -> bool {
        self.objects.len() > mark.objects || self.events.len() > mark.events
    }

    pub(crate) fn truncate(&mut self, mark: Mark) {
        self.objects.truncate(mark.objects);
        self.events.truncate(mark.events);
    }

    pub(crate) fn clear(&mut self) {
        self.objects.clear();
        self.events.clear();
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
}

impl FinishArgs<'_> {
    pub(crate) fn refs(&self) -> [&(dyn ToSql + Sync); 20] {
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
        ]
    }
}
