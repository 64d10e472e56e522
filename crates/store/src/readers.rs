//! The read side both stores share: a few connections, each owned by a long-lived thread of its
//! own that takes jobs from one queue. Not the runtime's blocking pool: that pool starts a thread
//! whenever a read arrives while the last one's thread is still on its way back, and kept dozens
//! alive (each with its own allocator heap) to serve four connections.

use ferrosync_core::store::StoreError;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;

/// A read, run on a reader thread with that thread's connection.
type Job<C> = Box<dyn FnOnce(&mut C) + Send>;

/// The jobs waiting for a reader, all of them: a busy reader takes the next one without sleeping,
/// and an idle one sleeps on the condition variable at once. (A channel that spins and yields
/// before it sleeps, as crossbeam's does, spent a tenth of the server's CPU in `sched_yield`
/// while ten thousand clients resumed at once; and callers that queued only once a reader was
/// free made every reader sleep between two reads.)
struct Queue<C> {
    state: Mutex<QueueState<C>>,
    ready: Condvar,
}

struct QueueState<C> {
    jobs: VecDeque<Job<C>>,
    closed: bool,
}

impl<C> Queue<C> {
    /// The next job, or `None` once the pool is dropped and the queue is empty.
    fn take(&self) -> Option<Job<C>> {
        let mut state = self.state.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            self.ready.wait(&mut state);
        }
    }

    /// Queues `job` and wakes one idle reader.
    fn push(&self, job: Job<C>) {
        self.state.lock().jobs.push_back(job);
        self.ready.notify_one();
    }

    /// Lets the readers end once the queue is empty.
    fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
    }
}

pub(crate) struct Readers<C> {
    queue: Arc<Queue<C>>,
}

impl<C: Send + 'static> Readers<C> {
    /// A thread (`{name}-{i}`) for each of `conns`. They end, dropping their connections, when
    /// the pool is dropped.
    pub(crate) fn start(name: &str, conns: Vec<C>) -> Result<Self, StoreError> {
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState { jobs: VecDeque::with_capacity(conns.len()), closed: false }),
            ready: Condvar::new(),
        });
        for (i, mut conn) in conns.into_iter().enumerate() {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    while let Some(job) = queue.take() {
                        // A panicking read fails its caller (its answer is dropped), not the thread.
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn))).is_err() {
                            tracing::error!("a read panicked; its caller gets an error");
                        }
                    }
                })
                .map_err(|e| StoreError::Unavailable(format!("cannot start a reader thread: {e}")))?;
        }
        Ok(Readers { queue })
    }

    /// Runs `f` on a reader's connection, off the async threads, once one is free.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut C) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job<C> = Box::new(move |conn| {
            // A caller that stopped waiting (its client went away) leaves no work behind.
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(f(conn));
        });
        self.queue.push(job);
        answered.await.map_err(|_| StoreError::Backend("a read failed without an answer (it panicked)".into()))?
    }
}

impl<C> Drop for Readers<C> {
    /// The threads finish what is queued, then end and drop their connections.
    fn drop(&mut self) {
        self.queue.close();
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

    /// A connection that says when it is dropped.
    struct Conn(std::sync::mpsc::Sender<()>);

    impl Drop for Conn {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    #[tokio::test]
    async fn dropping_the_pool_ends_its_threads_and_closes_their_connections() {
        let (closed, closes) = std::sync::mpsc::channel();
        let readers = Readers::start("test-reader", vec![Conn(closed.clone()), Conn(closed)]).expect("start");
        // Both threads are asleep on the queue, one having served a read.
        assert_eq!(readers.run(|_| Ok(7)).await.expect("read"), 7);
        assert!(closes.try_recv().is_err(), "no connection closes while the pool lives");
        drop(readers);
        for n in 1..=2 {
            closes
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("connection {n} was not closed within 10 s"));
        }
    }

    #[tokio::test]
    async fn a_read_whose_caller_stopped_waiting_is_skipped() {
        let readers = Readers::start("test-reader", vec![0u32]).expect("start");
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let mut busy = Box::pin(readers.run(move |n| {
            let _ = gate.recv();
            *n += 1;
            Ok(*n)
        }));
        let wait = std::time::Duration::from_millis(50);
        assert!(tokio::time::timeout(wait, &mut busy).await.is_err(), "the only reader is held");
        // Queued behind it, then given up on.
        let abandoned = tokio::time::timeout(
            wait,
            readers.run(|n| {
                *n += 100;
                Ok(*n)
            }),
        )
        .await;
        assert!(abandoned.is_err(), "the second read waits for the held reader");
        open.send(()).expect("the held read is waiting");
        assert_eq!(busy.await.expect("held read"), 1);
        let next = readers.run(|n| {
            *n += 1;
            Ok(*n)
        });
        assert_eq!(next.await.expect("read"), 2, "the abandoned read never ran");
    }
}
