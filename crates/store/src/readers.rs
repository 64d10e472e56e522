//! The read side both stores share: a few connections, each owned by a long-lived thread of its
//! own that takes jobs from one queue. Not the runtime's blocking pool: that pool starts a thread
//! whenever a read arrives while the last one's thread is still on its way back, and kept dozens
//! alive (each with its own allocator heap) to serve four connections.

use ferrosync_core::store::StoreError;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A read, run on a reader thread with that thread's connection.
type Job<C> = Box<dyn FnOnce(&mut C) + Send>;

pub(crate) struct Readers<C> {
    jobs: crossbeam_channel::Sender<Job<C>>,
    /// One per connection: a caller waits here, not in the queue, so one that stops waiting
    /// leaves no work behind.
    permits: Arc<Semaphore>,
}

impl<C: Send + 'static> Readers<C> {
    /// A thread (`{name}-{i}`) for each of `conns`. They end, dropping their connections, when
    /// the pool is dropped.
    pub(crate) fn start(name: &str, conns: Vec<C>) -> Result<Self, StoreError> {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job<C>>();
        let permits = Arc::new(Semaphore::new(conns.len()));
        for (i, mut conn) in conns.into_iter().enumerate() {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    for job in queue.iter() {
                        // A panicking read fails its caller (its answer is dropped), not the thread.
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn))).is_err() {
                            tracing::error!("a read panicked; its caller gets an error");
                        }
                    }
                })
                .map_err(|e| StoreError::Unavailable(format!("cannot start a reader thread: {e}")))?;
        }
        Ok(Readers { jobs, permits })
    }

    /// Runs `f` on a reader's connection, off the async threads, once one is free.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut C) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("store is closed".into()))?;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job<C> = Box::new(move |conn| {
            let result = f(conn);
            // Freed with the work done, not when the caller hears: a caller that stopped
            // waiting (its client went away) must not hold a reader's turn.
            drop(permit);
            let _ = answer.send(result);
        });
        self.jobs.send(job).map_err(|_| StoreError::Unavailable("store is closed".into()))?;
        answered.await.map_err(|_| StoreError::Backend("a read failed without an answer (it panicked)".into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_run_on_their_threads_with_their_connections_and_a_panic_fails_only_its_caller() {
        let readers = Readers::start("test-reader", vec![0u32, 100]).expect("start");
        let mut seen = Vec::new();
        for _ in 0..20 {
            let (name, base) = readers
                .run(|conn| {
                    *conn += 1;
                    Ok((std::thread::current().name().unwrap_or_default().to_owned(), *conn / 100))
                })
                .await
                .expect("read");
            assert!(name.starts_with("test-reader-"), "{name}");
            seen.push(base);
        }
        // Every read went to one of the two connections, and each kept its own state.
        assert!(seen.iter().all(|b| *b == 0 || *b == 1), "{seen:?}");
        let failed = readers.run(|_| -> Result<(), StoreError> { panic!("boom") }).await;
        assert!(matches!(failed, Err(StoreError::Backend(_))), "{failed:?}");
        // Both threads still serve: two reads held at once need both.
        let (a, b) = tokio::join!(readers.run(|c| Ok(*c)), readers.run(|c| Ok(*c)));
        assert!(a.is_ok() && b.is_ok());
    }
}
