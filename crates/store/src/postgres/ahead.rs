//! Objects read ahead for the writer's batch.
//!
//! Nearly every job of a batch reads one object, named in its mutation, and on PostgreSQL each
//! read is a round trip. Once a batch has locked a service (which every writer of its objects
//! must lock first), the objects its jobs name there are read in one statement, and the jobs'
//! reads are answered from it. An object the batch then writes is read afresh (or from what
//! the writer holds), and anything written other than by holding it forgets them all.
//!
//! Items are read ahead the same way: once an object is found, the items of it that the
//! batch's jobs name are wanted, and every item wanted, whatever its object, is read in one
//! statement at the first job's read of one of them.

use super::pending::is_named;
use ferrosync_core::model::{Item, ItemKey, ObjectKind, ObjectRef, SyncObject};
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{Mutation, ObjectWrite};
use std::collections::{HashMap, HashSet};

type Named = (Sid, ObjectKind, ObjectRef);

#[derive(Default)]
pub(crate) struct Ahead {
    /// Named by the batch's jobs and not read yet.
    wanted: Vec<Named>,
    /// Read, with what each named then (`None`: nothing).
    read: Vec<(Named, Option<SyncObject>)>,
    /// Items named by the batch's jobs in objects not found yet.
    items_named: Vec<(Named, ItemKey)>,
    /// Items named by the batch's jobs in objects found, not read yet.
    items_wanted: Vec<(Sid, ItemKey)>,
    /// Items read, with what each was then.
    items_read: HashMap<Sid, HashMap<ItemKey, Option<Item>>>,
}

/// The objects a mutation reads, each with the item it reads there, if any. A batch of writes
/// to named Maps and Lists (the records the Proxy and Matrix faces keep) reads several.
fn reads(m: &Mutation, mut each: impl FnMut(Named, Option<ItemKey>)) {
    let (service, kind, target) = match m {
        Mutation::OpenObject { service, kind, target: Some(target), .. }
        | Mutation::UpdateObject { service, kind, target, .. }
        | Mutation::RemoveObject { service, kind, target, .. }
        | Mutation::WriteItem { service, kind, target, .. }
        | Mutation::RemoveItem { service, kind, target, .. } => (service, *kind, target),
        Mutation::AddListItem { service, target, .. } => (service, ObjectKind::List, target),
        Mutation::Publish { service, target, .. } => (service, ObjectKind::Stream, target),
        Mutation::Batch { service, writes, txn } => {
            let entry = |map: &str, key: &str| {
                (
                    (service.clone(), ObjectKind::Map, ObjectRef::UniqueName(map.to_owned())),
                    Some(ItemKey::Key(key.to_owned())),
                )
            };
            if let Some((map, key)) = txn {
                let (named, key) = entry(map, key);
                each(named, key);
            }
            for write in writes {
                let (named, key) = match write {
                    ObjectWrite::Put { map, key, .. }
                    | ObjectWrite::Create { map, key, .. }
                    | ObjectWrite::Replace { map, key, .. }
                    | ObjectWrite::Remove { map, key } => entry(map, key),
                    ObjectWrite::Append { list, .. } => {
                        ((service.clone(), ObjectKind::List, ObjectRef::UniqueName(list.clone())), None)
                    }
                };
                each(named, key);
            }
            return;
        }
        _ => return,
    };
    let key = match m {
        Mutation::WriteItem { key, .. } | Mutation::RemoveItem { key, .. } => Some(key.clone()),
        _ => None,
    };
    each((service.clone(), kind, target.clone()), key);
}

fn same(named: &Named, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> bool {
    named.0 == *service && named.1 == kind && named.2 == *r
}

impl Ahead {
    /// A batch begins: what its jobs will read.
    pub(crate) fn want<'a>(&mut self, jobs: impl Iterator<Item = &'a Mutation>) {
        self.clear();
        // A batch of many jobs, or of one large batch of writes, names hundreds: the sets keep
        // each once without comparing every pair.
        let (mut objects, mut items) = (HashSet::new(), HashSet::new());
        for m in jobs {
            reads(m, |named, key| {
                if let Some(key) = key
                    && items.insert((named.clone(), key.clone()))
                {
                    self.items_named.push((named.clone(), key));
                }
                if objects.insert(named.clone()) {
                    self.wanted.push(named);
                }
            });
        }
    }

    pub(crate) fn clear(&mut self) {
        self.wanted.clear();
        self.read.clear();
        self.items_named.clear();
        self.items_wanted.clear();
        self.items_read.clear();
    }

    /// What `r` named when read ahead, if it was.
    pub(crate) fn answer(&self, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> Option<Option<&SyncObject>> {
        self.read.iter().find(|(n, _)| same(n, service, kind, r)).map(|(_, found)| found.as_ref())
    }

    /// The objects wanted in `service` (with `r`, which a job reads now), no longer wanted:
    /// the caller reads them and [`Ahead::note`]s each. Empty when nothing else is wanted there.
    pub(crate) fn take(&mut self, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> Vec<Named> {
        let (mut taken, rest): (Vec<Named>, Vec<Named>) = self.wanted.drain(..).partition(|n| n.0 == *service);
        self.wanted = rest;
        if taken.iter().all(|n| same(n, service, kind, r)) {
            return Vec::new();
        }
        if !taken.iter().any(|n| same(n, service, kind, r)) {
            taken.push((service.clone(), kind, r.clone()));
        }
        taken
    }

    /// Notes what `named` names, among the objects one read found.
    /// Items the batch names in it become wanted by its SID.
    pub(crate) fn note(&mut self, named: Named, found: &[SyncObject]) {
        let hit = found.iter().find(|o| is_named(o, &named.0, named.1, &named.2));
        if let Some(o) = hit {
            let (items, rest): (Vec<_>, Vec<_>) = self.items_named.drain(..).partition(|(n, _)| *n == named);
            self.items_named = rest;
            for (_, key) in items {
                let wanted = (o.sid.clone(), key);
                if !self.items_wanted.contains(&wanted) {
                    self.items_wanted.push(wanted);
                }
            }
        }
        self.read.push((named, hit.cloned()));
    }

    /// What `object`'s item `key` was when read ahead, if it was.
    pub(crate) fn item(&self, object: &Sid, key: &ItemKey) -> Option<Option<&Item>> {
        self.items_read.get(object)?.get(key).map(Option::as_ref)
    }

    /// The items wanted, of every object found (with `object`'s `key`, which a job reads now),
    /// no longer wanted: the caller reads them in one statement and [`Ahead::note_item`]s each.
    /// Empty when nothing else is wanted.
    pub(crate) fn take_items(&mut self, object: &Sid, key: &ItemKey) -> Vec<(Sid, ItemKey)> {
        let mut taken = std::mem::take(&mut self.items_wanted);
        let now = |(o, k): &(Sid, ItemKey)| o == object && k == key;
        if taken.iter().all(now) {
            return Vec::new();
        }
        if !taken.iter().any(now) {
            taken.push((object.clone(), key.clone()));
        }
        taken
    }

    pub(crate) fn note_item(&mut self, object: &Sid, key: &ItemKey, found: Option<Item>) {
        self.items_read.entry(object.clone()).or_default().insert(key.clone(), found);
    }

    /// `object`'s item `key` was written: what was read of it is stale.
    pub(crate) fn forget_item(&mut self, object: &Sid, key: &ItemKey) {
        if let Some(read) = self.items_read.get_mut(object) {
            read.remove(key);
        }
    }

    /// `o` was written: whatever was read of it, or under its SID or name, is stale.
    pub(crate) fn forget(&mut self, o: &SyncObject) {
        self.read.retain(|((service, kind, r), found)| {
            !is_named(o, service, *kind, r) && found.as_ref().is_none_or(|f| f.sid != o.sid)
        });
    }

    /// Something was written other than by holding it: every object read may be stale.
    pub(crate) fn forget_all(&mut self) {
        self.read.clear();
        self.items_read.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::sid::SidKind;
    use ferrosync_core::timestamp::Timestamp;

    fn doc(service: &Sid, name: &str) -> SyncObject {
        SyncObject {
            sid: Sid::new(SidKind::Document),
            service_sid: service.clone(),
            kind: ObjectKind::Document,
            unique_name: Some(name.into()),
            data: None,
            revision: 1,
            next_index: 0,
            date_created: Timestamp(0),
            date_updated: Timestamp(0),
            date_expires: None,
            created_by: "system".into(),
        }
    }

    fn update(service: &Sid, target: ObjectRef) -> Mutation {
        Mutation::UpdateObject {
            service: service.clone(),
            kind: ObjectKind::Document,
            target,
            data: None,
            ttl: None,
            if_match: None,
        }
    }

    /// Objects named by the batch's jobs in one service are read together, the job reading now
    /// among them; a write forgets what was read of the object, by SID or by name, and what a
    /// name was read to miss.
    #[test]
    fn a_batchs_objects_are_read_together_and_forgotten_when_written() {
        let (svc, other) = (Sid::new(SidKind::Service), Sid::new(SidKind::Service));
        let (a, b) = (doc(&svc, "a"), doc(&svc, "b"));
        let by_name = |n: &str| ObjectRef::UniqueName(n.into());
        let jobs = [
            update(&svc, ObjectRef::Sid(a.sid.clone())),
            update(&svc, by_name("b")),
            update(&svc, by_name("b")),
            update(&svc, by_name("new")),
            update(&other, by_name("x")),
        ];
        let mut ahead = Ahead::default();
        ahead.want(jobs.iter());
        let d = ObjectKind::Document;
        let wanted = ahead.take(&svc, d, &ObjectRef::Sid(a.sid.clone()));
        assert_eq!(wanted.len(), 3, "a, b and new, once each, and not the other service's");
        assert!(ahead.take(&svc, d, &by_name("b")).is_empty(), "taken once");
        for named in wanted {
            ahead.note(named, &[a.clone(), b.clone()]);
        }
        assert_eq!(ahead.answer(&svc, d, &ObjectRef::Sid(a.sid.clone())), Some(Some(&a)));
        assert_eq!(ahead.answer(&svc, d, &by_name("b")), Some(Some(&b)));
        assert_eq!(ahead.answer(&svc, d, &by_name("new")), Some(None), "read, and not there");
        assert_eq!(ahead.answer(&svc, ObjectKind::Map, &by_name("b")), None, "another kind was not read");
        // Alone in its service, an object is not read ahead.
        assert!(ahead.take(&other, d, &by_name("x")).is_empty());

        ahead.forget(&b);
        assert_eq!(ahead.answer(&svc, d, &by_name("b")), None);
        ahead.forget(&doc(&svc, "new"));
        assert_eq!(ahead.answer(&svc, d, &by_name("new")), None, "created under the name read to miss");
        assert_eq!(ahead.answer(&svc, d, &ObjectRef::Sid(a.sid.clone())), Some(Some(&a)));
        ahead.forget_all();
        assert_eq!(ahead.answer(&svc, d, &ObjectRef::Sid(a.sid.clone())), None);
    }

    /// The items a batch's jobs name become wanted once their object is found, and are read
    /// together, whatever their object, at the first read of one; a write forgets what was read of that item only.
    #[test]
    fn a_batchs_items_are_wanted_once_their_object_is_found() {
        let svc = Sid::new(SidKind::Service);
        let map = |name: &str| {
            let mut m = doc(&svc, name);
            m.kind = ObjectKind::Map;
            m
        };
        let (m, n) = (map("m"), map("n"));
        let key = |k: &str| ItemKey::Key(k.into());
        let write = |map: &str, k: &str| Mutation::WriteItem {
            service: svc.clone(),
            kind: ObjectKind::Map,
            target: ObjectRef::UniqueName(map.into()),
            key: key(k),
            data: None,
            ttl: None,
            collection_ttl: None,
            if_match: None,
            mode: ferrosync_core::store::ItemWriteMode::Upsert,
        };
        let mut ahead = Ahead::default();
        ahead.want([write("m", "a"), write("m", "b"), write("m", "a"), write("n", "x")].iter());
        assert!(ahead.take_items(&m.sid, &key("a")).is_empty(), "nothing is wanted before m is found");
        for (name, found) in [("m", &m), ("n", &n)] {
            ahead.note((svc.clone(), ObjectKind::Map, ObjectRef::UniqueName(name.into())), std::slice::from_ref(found));
        }
        let mut wanted = ahead.take_items(&m.sid, &key("c"));
        wanted.sort();
        let mut expected = vec![
            (m.sid.clone(), key("a")),
            (m.sid.clone(), key("b")),
            (m.sid.clone(), key("c")),
            (n.sid.clone(), key("x")),
        ];
        expected.sort();
        assert_eq!(wanted, expected, "every Map's, once each, with the key read now");
        assert!(ahead.take_items(&m.sid, &key("a")).is_empty(), "taken once");
        ahead.note_item(&m.sid, &key("a"), None);
        ahead.note_item(&m.sid, &key("b"), None);
        assert_eq!(ahead.item(&m.sid, &key("a")), Some(None), "read, and not there");
        ahead.forget_item(&m.sid, &key("a"));
        assert_eq!(ahead.item(&m.sid, &key("a")), None);
        assert_eq!(ahead.item(&m.sid, &key("b")), Some(None));
        ahead.forget_all();
        assert_eq!(ahead.item(&m.sid, &key("b")), None);
    }

    /// A batch of writes to named Maps and Lists reads each of them once, and each entry it
    /// writes (its transaction's record too) once its Map is found.
    #[test]
    fn a_batch_of_writes_reads_its_maps_and_entries_ahead() {
        let svc = Sid::new(SidKind::Service);
        let put =
            |map: &str, key: &str| ObjectWrite::Put { map: map.into(), key: key.into(), data: serde_json::json!({}) };
        let batch = Mutation::Batch {
            service: svc.clone(),
            writes: vec![
                put("m", "a"),
                ObjectWrite::Remove { map: "m".into(), key: "b".into() },
                ObjectWrite::Append { list: "l".into(), data: serde_json::json!({}), ttl: None },
                put("n", "a"),
            ],
            txn: Some(("txns".into(), "t1".into())),
        };
        let mut ahead = Ahead::default();
        ahead.want(std::iter::once(&batch));
        let by_name = |n: &str| ObjectRef::UniqueName(n.into());
        let mut wanted = ahead.take(&svc, ObjectKind::Map, &by_name("txns"));
        wanted.sort_by_key(|(_, kind, r)| (kind.code(), format!("{r:?}")));
        let names: Vec<_> = wanted.iter().map(|(_, kind, r)| (*kind, r.clone())).collect();
        let expected = [
            (ObjectKind::List, by_name("l")),
            (ObjectKind::Map, by_name("m")),
            (ObjectKind::Map, by_name("n")),
            (ObjectKind::Map, by_name("txns")),
        ];
        assert_eq!(names, expected, "each Map and List once, the transaction's Map too");
        let mut m = doc(&svc, "m");
        m.kind = ObjectKind::Map;
        for named in wanted {
            ahead.note(named, std::slice::from_ref(&m));
        }
        let key = |k: &str| ItemKey::Key(k.into());
        let mut keys: Vec<ItemKey> = ahead.take_items(&m.sid, &key("a")).into_iter().map(|(_, k)| k).collect();
        keys.sort();
        assert_eq!(keys, [key("a"), key("b")], "m's entries, not n's nor the transaction's");
    }
}
