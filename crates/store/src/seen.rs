//! Service rows a batch has read, for both stores: every mutation of a batch reads its
//! service, usually the same one, and the row (settings parsed from JSON, on PostgreSQL a
//! locking round trip) is read once per batch instead.

use ferrosync_core::model::{ObjectRef, Service};

/// Rows as read inside the batch's transaction. Anything that writes the services table
/// forgets them, and so does a failed mutation (its savepoint may have been rolled back, and
/// with it what it wrote or, on PostgreSQL, the row lock its read took).
#[derive(Debug, Default)]
pub(crate) struct ServicesSeen(Vec<Service>);

impl ServicesSeen {
    /// The row `r` names, if the batch has read it. Its head is as first read: the caller
    /// overlays the heads the batch allocated.
    pub(crate) fn get(&self, r: &ObjectRef) -> Option<Service> {
        self.0
            .iter()
            .find(|s| match r {
                ObjectRef::Sid(sid) => s.sid == *sid,
                ObjectRef::UniqueName(name) => s.unique_name.as_deref() == Some(name.as_str()),
            })
            .cloned()
    }

    pub(crate) fn note(&mut self, service: &Service) {
        if !self.0.iter().any(|s| s.sid == service.sid) {
            self.0.push(service.clone());
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn forget(&mut self) {
        self.0.clear();
    }

    /// Reads through the cache: `read` runs only for a row the batch has not seen.
    pub(crate) fn read<E>(
        &mut self,
        r: &ObjectRef,
        read: impl FnOnce() -> Result<Option<Service>, E>,
    ) -> Result<Option<Service>, E> {
        if let Some(s) = self.get(r) {
            return Ok(Some(s));
        }
        let found = read()?;
        if let Some(s) = &found {
            self.note(s);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::tests::sid;

    fn service(n: u8, name: Option<&str>) -> Service {
        let mut s = crate::heads::tests::service(&sid(n), 3);
        s.unique_name = name.map(str::to_owned);
        s
    }

    #[test]
    fn a_row_is_read_once_by_sid_or_name_until_forgotten() {
        let mut seen = ServicesSeen::default();
        let a = service(1, Some("alpha"));
        let reads = std::cell::Cell::new(0);
        let read = |s: &Service| {
            reads.set(reads.get() + 1);
            Ok::<_, ()>(Some(s.clone()))
        };
        assert_eq!(seen.read(&ObjectRef::Sid(a.sid.clone()), || read(&a)), Ok(Some(a.clone())));
        assert_eq!(seen.read(&ObjectRef::Sid(a.sid.clone()), || read(&a)), Ok(Some(a.clone())));
        assert_eq!(seen.read(&ObjectRef::UniqueName("alpha".into()), || read(&a)), Ok(Some(a.clone())));
        assert_eq!(reads.get(), 1, "later reads come from the batch's memory");
        // A missing row is not remembered: it may be created later in the batch.
        assert_eq!(seen.read(&ObjectRef::UniqueName("beta".into()), || Ok::<_, ()>(None)), Ok(None));
        let b = service(2, Some("beta"));
        assert_eq!(seen.read(&ObjectRef::UniqueName("beta".into()), || read(&b)), Ok(Some(b.clone())));
        assert_eq!(reads.get(), 2);
        seen.forget();
        assert_eq!(seen.read(&ObjectRef::Sid(a.sid.clone()), || read(&a)), Ok(Some(a)));
        assert_eq!(reads.get(), 3, "a forgotten row is read again");
    }
}
