//! Objects the embedded store's writer read or wrote, kept from one batch to the next with
//! where their rows are: the next write to one of them (a client updating its document again,
//! a message to the same stream) needs neither the row's lookup by SID nor its data parsed
//! from JSON, which were about a fifth of the writer's work for an update.
//!
//! The writer is the only connection that writes the file, so a row it wrote and committed
//! stays as it wrote it until it writes it again. What it must forget, it forgets: a job that
//! failed after writing (its writes were rolled back), a batch that failed, any write of an
//! object's row that does not go through [`ObjectsKept::keep`] or [`ObjectsKept::moved`], and
//! every object at once when a service is removed (its objects go with it).

use super::rows::RowAt;
use ferrosync_core::model::{ObjectKind, ObjectRef, SyncObject};
use ferrosync_core::sid::Sid;
use std::collections::HashMap;

type Entry = (SyncObject, RowAt);
/// SIDs are random and the maps are the writer's alone and bounded: a fast hash, not a
/// DoS-hardened one.
type Map = HashMap<Sid, Entry, foldhash::fast::RandomState>;

/// Two generations: entries are added to `recent`; when it is full it becomes `older` (the
/// previous `older` is dropped), and an entry found in `older` moves back to `recent`. So
/// what is used stays, without ordering every access, and at most twice [`Self::GENERATION`]
/// objects are held: with documents of at most 16 KiB, 8 MiB at worst.
#[derive(Default)]
pub(crate) struct ObjectsKept {
    recent: Map,
    older: Map,
    /// Unique names of kept objects, to their SIDs: a hint only, checked against the entry it
    /// leads to, so a name that moved on or an entry dropped since costs only the row's read.
    names: HashMap<String, Sid, foldhash::fast::RandomState>,
}

impl ObjectsKept {
    const GENERATION: usize = 256;

    /// The object `r` names as last read or written, if it is kept and is of `service` and
    /// `kind` (otherwise the caller reads the row, which answers for a mismatch as well).
    pub(crate) fn get(&mut self, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> Option<Entry> {
        let (sid, name) = match r {
            ObjectRef::Sid(sid) => (sid.clone(), None),
            ObjectRef::UniqueName(name) => (self.names.get(name.as_str())?.clone(), Some(name.as_str())),
        };
        let entry = match self.recent.get(&sid) {
            Some(entry) => entry.clone(),
            None => {
                let entry = self.older.remove(&sid)?;
                self.add(sid, entry.clone());
                entry
            }
        };
        let named = name.is_none_or(|name| entry.0.unique_name.as_deref() == Some(name));
        (entry.0.service_sid == *service && entry.0.kind == kind && named).then_some(entry)
    }

    /// `object` as just read or written, its row at `at`.
    pub(crate) fn keep(&mut self, object: &SyncObject, at: RowAt) {
        if let Some(entry) = self.recent.get_mut(&object.sid) {
            refresh(&mut entry.0, object);
            entry.1 = at;
        } else {
            self.older.remove(&object.sid);
            self.add(object.sid.clone(), (object.clone(), at));
        }
        if let Some(name) = &object.unique_name
            && self.names.get(name.as_str()) != Some(&object.sid)
        {
            // Renames could grow the names alone; they start over well past what is kept.
            if self.names.len() >= 2 * Self::GENERATION {
                self.names.clear();
            }
            self.names.insert(name.clone(), object.sid.clone());
        }
    }

    /// `sid`'s row was written without its new state known here (an event appended to its
    /// stream by SID, say): its stream's end moved.
    pub(crate) fn moved(&mut self, sid: &Sid, at: RowAt) {
        if let Some(entry) = self.recent.get_mut(sid).or_else(|| self.older.get_mut(sid)) {
            entry.1 = at;
        }
    }

    pub(crate) fn drop_one(&mut self, sid: &Sid) {
        self.recent.remove(sid);
        self.older.remove(sid);
    }

    pub(crate) fn forget(&mut self) {
        self.recent.clear();
        self.older.clear();
        self.names.clear();
    }

    fn add(&mut self, sid: Sid, entry: Entry) {
        if self.recent.len() >= Self::GENERATION && !self.recent.contains_key(&sid) {
            self.older = std::mem::take(&mut self.recent);
        }
        self.recent.insert(sid, entry);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.recent.len() + self.older.len()
    }
}

/// `kept` made equal to `written`, reusing its strings: a write changes an object's state, and
/// seldom what names it, so copying only what differs spares an allocation per string.
fn refresh(kept: &mut SyncObject, written: &SyncObject) {
    let SyncObject {
        sid,
        service_sid,
        kind,
        unique_name,
        data,
        revision,
        next_index,
        date_created,
        date_updated,
        date_expires,
        created_by,
    } = written;
    if kept.sid != *sid {
        kept.sid = sid.clone();
    }
    if kept.service_sid != *service_sid {
        kept.service_sid = service_sid.clone();
    }
    if kept.unique_name != *unique_name {
        kept.unique_name.clone_from(unique_name);
    }
    if kept.created_by != *created_by {
        kept.created_by.clone_from(created_by);
    }
    kept.data.clone_from(data);
    (kept.kind, kept.revision, kept.next_index) = (*kind, *revision, *next_index);
    (kept.date_created, kept.date_updated, kept.date_expires) = (*date_created, *date_updated, *date_expires);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::timestamp::Timestamp;

    fn sid(prefix: &str, n: usize) -> Sid {
        Sid::parse(&format!("{prefix}{n:032x}")).expect("a valid sid")
    }

    fn document(n: usize) -> SyncObject {
        SyncObject {
            sid: sid("ET", n),
            service_sid: sid("IS", 1),
            kind: ObjectKind::Document,
            unique_name: None,
            data: Some(serde_json::json!({ "n": n }).into()),
            revision: n as u64,
            next_index: 0,
            date_created: Timestamp(0),
            date_updated: Timestamp(0),
            date_expires: None,
            created_by: "system".into(),
        }
    }

    fn by_sid(object: &SyncObject) -> ObjectRef {
        ObjectRef::Sid(object.sid.clone())
    }

    fn named(name: &str) -> ObjectRef {
        ObjectRef::UniqueName(name.into())
    }

    fn at(n: i64) -> RowAt {
        RowAt { rowid: n, last_seq: n, stream_len: n }
    }

    #[test]
    fn an_object_is_found_only_as_last_written_and_of_its_service_and_kind() {
        let mut kept = ObjectsKept::default();
        let (doc, service) = (document(1), sid("IS", 1));
        assert_eq!(kept.get(&service, ObjectKind::Document, &by_sid(&doc)), None);
        kept.keep(&doc, at(1));
        assert_eq!(kept.get(&service, ObjectKind::Document, &by_sid(&doc)), Some((doc.clone(), at(1))));
        assert_eq!(kept.get(&sid("IS", 2), ObjectKind::Document, &by_sid(&doc)), None, "another service's");
        assert_eq!(kept.get(&service, ObjectKind::List, &by_sid(&doc)), None, "another kind's");

        // Kept again, in place: every field follows, what names it included.
        let mut newer = doc.clone();
        newer.revision += 1;
        newer.unique_name = Some("renamed".into());
        newer.data = Some(serde_json::json!({ "n": "changed" }).into());
        newer.date_updated = Timestamp(7);
        kept.keep(&newer, at(2));
        kept.moved(&doc.sid, at(3));
        assert_eq!(kept.get(&service, ObjectKind::Document, &by_sid(&doc)), Some((newer, at(3))));
        kept.drop_one(&doc.sid);
        assert_eq!(kept.get(&service, ObjectKind::Document, &by_sid(&doc)), None);
    }

    #[test]
    fn a_unique_name_finds_only_the_kept_object_that_has_it_now() {
        let mut kept = ObjectsKept::default();
        let service = sid("IS", 1);
        let mut doc = document(1);
        doc.unique_name = Some("notes".into());
        assert_eq!(kept.get(&service, ObjectKind::Document, &named("notes")), None);
        kept.keep(&doc, at(1));
        assert_eq!(kept.get(&service, ObjectKind::Document, &named("notes")), Some((doc.clone(), at(1))));
        assert_eq!(kept.get(&service, ObjectKind::List, &named("notes")), None, "another kind's");
        assert_eq!(kept.get(&sid("IS", 2), ObjectKind::Document, &named("notes")), None, "another service's");

        // Renamed: the old name finds nothing, the new one the object.
        doc.unique_name = Some("journal".into());
        kept.keep(&doc, at(2));
        assert_eq!(kept.get(&service, ObjectKind::Document, &named("notes")), None);
        assert_eq!(kept.get(&service, ObjectKind::Document, &named("journal")).map(|e| e.1), Some(at(2)));
        // Another object takes the freed name; the first, dropped, is found by neither.
        let mut other = document(2);
        other.unique_name = Some("notes".into());
        kept.keep(&other, at(3));
        kept.drop_one(&doc.sid);
        assert_eq!(kept.get(&service, ObjectKind::Document, &named("notes")).map(|e| e.0), Some(other));
        assert_eq!(kept.get(&service, ObjectKind::Document, &named("journal")), None);
        kept.forget();
        assert_eq!(kept.get(&service, ObjectKind::Document, &named("notes")), None);
    }

    #[test]
    fn what_is_used_stays_and_at_most_two_generations_are_held() {
        let mut kept = ObjectsKept::default();
        let service = sid("IS", 1);
        let hot = document(0);
        kept.keep(&hot, at(0));
        for n in 1..ObjectsKept::GENERATION * 5 {
            kept.keep(&document(n), at(n as i64));
            // Used now and then, the hot object is never dropped with a generation.
            if n % (ObjectsKept::GENERATION / 2) == 0 {
                assert!(kept.get(&service, ObjectKind::Document, &by_sid(&hot)).is_some(), "after {n} others");
            }
            assert!(kept.len() <= 2 * ObjectsKept::GENERATION);
        }
        assert!(kept.get(&service, ObjectKind::Document, &by_sid(&hot)).is_some());
        assert_eq!(kept.get(&service, ObjectKind::Document, &by_sid(&document(1))), None, "long unused");
        let last = document(ObjectsKept::GENERATION * 5 - 1);
        assert_eq!(kept.get(&service, ObjectKind::Document, &by_sid(&last)).map(|e| e.0), Some(last));
        kept.forget();
        assert_eq!(kept.len(), 0);
    }
}
