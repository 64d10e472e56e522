//! The embedded and PostgreSQL stores' writer thread: mutations queued to it, committed in
//! batches, and each batch's answers sent back to their callers.

/// A store's instruments on its commits, taken once as it opens: a metric named at each use is
/// looked up in the recorder's registry every time, and a commit records two or three. Taken
/// before a recorder is installed, they record nowhere, so a server installs its recorder
/// before it opens a store.
#[derive(Clone)]
pub(crate) struct CommitMetrics {
    /// Seconds from a batch's first statement to its durable `COMMIT`.
    pub(crate) seconds: metrics::Histogram,
    /// Jobs per committed batch.
    pub(crate) batch_size: metrics::Histogram,
    /// Writes committed on their caller's thread (the embedded store's lone writes).
    pub(crate) in_place: metrics::Counter,
    /// Batches rolled back and run again with a savepoint around each job, because one failed
    /// after writing (or, on PostgreSQL, a statement failed).
    pub(crate) rerun: metrics::Counter,
}

impl CommitMetrics {
    pub(crate) fn taken() -> Self {
        Self {
            seconds: metrics::histogram!("ferrosync_store_commit_seconds"),
            batch_size: metrics::histogram!("ferrosync_store_commit_batch_size"),
            in_place: metrics::counter!("ferrosync_store_commits_in_place_total"),
            rerun: metrics::counter!("ferrosync_store_batches_rerun_total"),
        }
    }

    /// A batch of `jobs` durably committed, begun at `started`.
    pub(crate) fn committed(&self, jobs: usize, started: std::time::Instant) {
        self.seconds.record(started.elapsed().as_secs_f64());
        self.batch_size.record(jobs as f64);
    }
}

/// Queues a mutation for a store's writer thread and waits for its answer. With `queued`, the
/// job is counted there from now until the writer commits it (the writer takes it off); a
/// caller that goes away before the job is queued takes it off itself.
pub(crate) async fn queue_write(
    writer: &tokio::sync::mpsc::Sender<WriteJob>,
    actor: ferrosync_core::store::Actor,
    mutation: ferrosync_core::store::Mutation,
    queued: Option<&std::sync::atomic::AtomicUsize>,
) -> Answer {
    use ferrosync_core::store::StoreError;
    /// A count not yet the writer's to take off.
    struct Counted<'a>(Option<&'a std::sync::atomic::AtomicUsize>);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            if let Some(count) = self.0 {
                count.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            }
        }
    }
    if let Some(count) = queued {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
    let mut counted = Counted(queued);
    let (reply, rx) = tokio::sync::oneshot::channel();
    writer
        .send(WriteJob {
            actor,
            mutation: Some(mutation),
            reply: Some(reply),
            runtime: tokio::runtime::Handle::try_current().ok(),
        })
        .await
        .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
    counted.0 = None;
    rx.await.map_err(|_| StoreError::Unavailable("the writer stopped before answering".into()))?
}

/// A mutation waiting for a store's writer thread, and where its answer goes.
pub(crate) struct WriteJob {
    pub(crate) actor: ferrosync_core::store::Actor,
    /// Taken (moved into the rules rather than copied) by a commit that cannot run it again.
    pub(crate) mutation: Option<ferrosync_core::store::Mutation>,
    /// Where the answer goes; none for a job committed in place, whose caller has it at once.
    pub(crate) reply: Option<Reply>,
    /// The runtime the caller waits on, where a batch's answers are best sent from.
    pub(crate) runtime: Option<tokio::runtime::Handle>,
}

impl WriteJob {
    /// A job that writes nothing and waits for no answer: it only wakes the writer thread for
    /// the housekeeping after a batch.
    pub(crate) fn nudge() -> Self {
        WriteJob { actor: ferrosync_core::store::Actor::SYSTEM, mutation: None, reply: None, runtime: None }
    }

    pub(crate) fn is_nudge(&self) -> bool {
        self.mutation.is_none() && self.reply.is_none()
    }
}

pub(crate) type Answer = Result<ferrosync_core::store::Applied, ferrosync_core::CoreError>;
type Reply = tokio::sync::oneshot::Sender<Answer>;

/// A batch's answers on their way to its callers. Each answer wakes its caller. Sent from the
/// writer thread, that is a wake-up from outside the runtime, and on a core the writer shares
/// with the runtime the woken runtime thread takes the core at once: the writer and the runtime
/// switched back and forth once per answer (two context switches per write where sixteen
/// writers shared a commit). Sent from a task on a caller's runtime, an answer is a push onto
/// that runtime's own queue, and the batch costs one wake-up from outside.
///
/// Dropped with answers left (its task never ran: the runtime shut down first), it sends them.
struct Delivery(Vec<(Reply, Answer)>);

impl Delivery {
    /// The batch's answers paired with the callers waiting for them; the batch is left empty.
    fn of(batch: &mut Vec<WriteJob>, answers: Vec<Answer>) -> Self {
        Delivery(batch.drain(..).map(|job| job.reply).zip(answers).filter_map(|(r, a)| Some((r?, a))).collect())
    }

    /// Sends the answers from `runtime` (that of the first caller still waiting on one, so it is
    /// being driven), or from here when that gains nothing (one answer) or there is none. A
    /// caller on another runtime is still answered, just by a wake-up from outside its own.
    fn send(self, runtime: Option<tokio::runtime::Handle>) {
        match runtime {
            Some(runtime) if self.0.len() > 1 => drop(runtime.spawn(async move { drop(self) })),
            _ => drop(self),
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        for (reply, answer) in self.0.drain(..) {
            // A caller that went away no longer needs its answer; the write stands.
            let _ = reply.send(answer);
        }
    }
}

/// Most mutations one commit carries; bounds the latency a batch adds to its first member.
pub(crate) const MAX_BATCH: usize = 512;

/// The observers of a store's commits ([`ferrosync_core::store::CommitObserver`]), shared by
/// the store (which adds them) and its writer thread (which tells them).
#[derive(Default)]
pub(crate) struct Observers(std::sync::Mutex<Vec<std::sync::Weak<dyn ferrosync_core::store::CommitObserver>>>);

impl Observers {
    pub(crate) fn add(&self, observer: std::sync::Weak<dyn ferrosync_core::store::CommitObserver>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(observer);
    }

    /// Tells every live observer of the batch's committed mutations, in commit order.
    pub(crate) fn tell(&self, results: &[Result<ferrosync_core::store::Applied, ferrosync_core::CoreError>]) {
        let mut observers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        observers.retain(|o| o.strong_count() > 0);
        for observer in observers.iter().filter_map(std::sync::Weak::upgrade) {
            for applied in results.iter().flatten() {
                observer.committed(applied);
            }
        }
    }
}

/// The group-commit loop both stores' writer threads run: takes whatever is queued (up to
/// [`MAX_BATCH`]) as one batch, has `commit` apply it in one transaction and tell the
/// observers (it may put a job handed over to it at the batch's head), answers each caller,
/// then lets `answered` do housekeeping that must not delay an answer. Ends when every sender
/// is gone.
pub(crate) fn run_writer(
    mut rx: tokio::sync::mpsc::Receiver<WriteJob>,
    mut commit: impl FnMut(&mut Vec<WriteJob>) -> Vec<Answer>,
    mut answered: impl FnMut(),
) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        // Let the callers that are ready to write queue their jobs before this batch is
        // taken: on a core shared with the runtime, the writer woken by the first job would
        // otherwise commit it nearly alone while the others wait a whole commit for the next
        // turn. With nothing else runnable on its core, a yield returns at once.
        std::thread::yield_now();
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = commit(&mut batch);
        // A caller on no runtime (blocked on the future by hand) cannot host the sending.
        let runtime = batch
            .iter()
            .filter(|job| job.reply.as_ref().is_some_and(|r| !r.is_closed()))
            .find_map(|job| job.runtime.clone());
        Delivery::of(&mut batch, results).send(runtime);
        // The answers and events have just woken runtime threads. On a core shared with them,
        // let them send, and queue what arrived during the commit, before the housekeeping
        // and the next batch: they would not preempt this thread under SCHED_BATCH.
        std::thread::yield_now();
        answered();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::CoreError;
    use ferrosync_core::store::{Actor, Mutation, StoreError};
    use ferrosync_core::timestamp::Timestamp;

    /// A job told apart by its mutation's date, and the answer that names it back.
    fn job(n: i64, runtime: Option<tokio::runtime::Handle>) -> (WriteJob, tokio::sync::oneshot::Receiver<Answer>) {
        let (reply, rx) = tokio::sync::oneshot::channel();
        (
            WriteJob {
                actor: Actor::SYSTEM,
                mutation: Some(Mutation::Prune { before: Timestamp(n) }),
                reply: Some(reply),
                runtime,
            },
            rx,
        )
    }

    fn named(answer: Answer) -> String {
        match answer {
            Err(CoreError::Store(StoreError::Backend(name))) => name,
            other => format!("an unexpected answer {other:?}"),
        }
    }

    /// Answers each job with its own number, so a caller can tell it got its own answer.
    fn echo(batch: &[WriteJob]) -> Vec<Answer> {
        batch
            .iter()
            .map(|job| match &job.mutation {
                Some(Mutation::Prune { before }) => {
                    Err(CoreError::Store(StoreError::Backend(format!("job {}", before.0))))
                }
                _ => Err(CoreError::Store(StoreError::Backend("not a test job".into()))),
            })
            .collect()
    }

    #[test]
    fn every_caller_gets_its_own_answer_whichever_runtime_it_waits_on() {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let writer = std::thread::spawn(move || run_writer(rx, |batch| echo(batch), || {}));
        let runtimes: Vec<tokio::runtime::Runtime> = (0..2)
            .map(|_| tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().expect("a runtime"))
            .collect();
        let mut callers = Vec::new();
        for n in 0..64 {
            let runtime = &runtimes[n % 2];
            let tx = tx.clone();
            let handle = runtime.handle().clone();
            callers.push(runtime.spawn(async move {
                let (job, answer) = job(n as i64, Some(handle));
                tx.send(job).await.map_err(|_| "the writer stopped")?;
                answer.await.map(named).map_err(|_| "no answer")
            }));
        }
        // One more from no runtime at all: it is answered from wherever its batch is sent.
        let (lone, lone_answer) = job(64, None);
        tx.blocking_send(lone).expect("the writer takes it");
        for (n, caller) in callers.into_iter().enumerate() {
            let got = runtimes[0].block_on(caller).expect("the caller ran");
            assert_eq!(got, Ok(format!("job {n}")));
        }
        assert_eq!(lone_answer.blocking_recv().map(named), Ok("job 64".to_owned()));
        drop(tx);
        writer.join().expect("the writer stops when its senders are gone");
    }

    /// A queued write is counted until the writer takes it off; one whose caller went away
    /// before it was queued (the queue full) is no longer counted, so it holds nothing back.
    #[tokio::test]
    async fn a_write_abandoned_before_it_is_queued_is_not_counted() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let queued = AtomicUsize::new(0);
        let (full, _) = job(0, None);
        tx.send(full).await.expect("the queue takes one");
        let waiting = queue_write(&tx, Actor::SYSTEM, Mutation::Prune { before: Timestamp(1) }, Some(&queued));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), waiting).await.is_err(),
            "the queue is full"
        );
        assert_eq!(queued.load(Ordering::Acquire), 0, "an abandoned write is not counted");

        // Queued, it stays counted (the writer takes it off once committed), and is answered.
        rx.recv().await.expect("the first job");
        let sent = queue_write(&tx, Actor::SYSTEM, Mutation::Prune { before: Timestamp(2) }, Some(&queued));
        let answer = async {
            let mut batch = vec![rx.recv().await.expect("the second job")];
            assert_eq!(queued.load(Ordering::Acquire), 1, "counted while queued");
            let answers = echo(&batch);
            Delivery::of(&mut batch, answers).send(None);
        };
        let (got, ()) = tokio::join!(sent, answer);
        assert_eq!(named(got), "job 2");
    }

    #[test]
    fn answers_bound_for_a_runtime_that_shut_down_are_still_sent() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        let handle = runtime.handle().clone();
        drop(runtime);
        let (mut replies, mut answers) = (Vec::new(), Vec::new());
        for n in 0..3 {
            let (reply, rx) = tokio::sync::oneshot::channel();
            replies.push((reply, Err(CoreError::Store(StoreError::Backend(format!("job {n}"))))));
            answers.push(rx);
        }
        // The task that would send them is dropped unrun; the answers go with it, not lost.
        Delivery(replies).send(Some(handle));
        for (n, rx) in answers.into_iter().enumerate() {
            assert_eq!(rx.blocking_recv().map(named), Ok(format!("job {n}")));
        }
    }
}
