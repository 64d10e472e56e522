//! Objects read ahead for the writer's batch.
//!
//! Nearly every job of a batch reads one object, named in its mutation, and on PostgreSQL each
//! read is a round trip. Once a batch has locked a service (which every writer of its objects
//! must lock first), the objects its jobs name there are read in one statement, and the jobs'
//! reads are answered from it. An object the batch then writes is read afresh (or from what
//! the writer holds), and anything written other than by holding it forgets them all.

use super::pending::is_named;
use ferrosync_core::model::{ObjectKind, ObjectRef, SyncObject};
use ferrosync_core::sid::Sid;
use ferrosync_core::store::Mutation;

type Named = (Sid, ObjectKind, ObjectRef);

#[derive(Default)]
pub(crate) struct Ahead {
    /// Named by the batch's jobs and not read yet.
    wanted: Vec<Named>,
    /// Read, with what each named then (`None`: nothing).
    read: Vec<(Named, Option<SyncObject>)>,
}

/// The object a mutation reads first, when it names one.
fn named(m: &Mutation) -> Option<Named> {
    let (service, kind, target) = match m {
        Mutation::OpenObject { service, kind, target: Some(target), .. }
        | Mutation::UpdateObject { service, kind, target, .. }
        | Mutation::RemoveObject { service, kind, target, .. }
        | Mutation::WriteItem { service, kind, target, .. }
        | Mutation::RemoveItem { service, kind, target, .. } => (service, *kind, target),
        Mutation::AddListItem { service, target, .. } => (service, ObjectKind::List, target),
        Mutation::Publish { service, target, .. } => (service, ObjectKind::Stream, target),
        _ => return None,
    };
    Some((service.clone(), kind, target.clone()))
}

fn same(named: &Named, service: &Sid, kind: ObjectKind, r: &ObjectRef) -> bool {
    named.0 == *service && named.1 == kind && named.2 == *r
}

impl Ahead {
    /// A batch begins: what its jobs will read.
    pub(crate) fn want<'a>(&mut self, jobs: impl Iterator<Item = &'a Mutation>) {
        self.clear();
        for named in jobs.filter_map(named) {
            if !self.wanted.contains(&named) {
                self.wanted.push(named);
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.wanted.clear();
        self.read.clear();
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
    pub(crate) fn note(&mut self, named: Named, found: &[SyncObject]) {
        let hit = found.iter().find(|o| is_named(o, &named.0, named.1, &named.2));
        self.read.push((named, hit.cloned()));
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
}
