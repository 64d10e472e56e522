//! A gate in front of sources a connection's task polls on every wake-up: the sources get the
//! gate's waker, and are asked again only after one of them used it. A task woken to deliver an
//! event then skips its socket reader and its alarms, which would otherwise each re-register
//! their wakers (and take locks) only to answer "not yet".

use futures_util::task::{ArcWake, AtomicWaker, waker_ref};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

/// The gate as its owner (the connection's task) holds it: the part the sources wake, and the
/// task's waker as last registered there.
#[derive(Debug)]
pub struct Gate {
    shared: Arc<Shared>,
    /// The waker `shared` holds, unless a source has taken it since (and raised the flag).
    /// A task polled for every delivery registers its waker again only after a source used
    /// it: registering costs two atomic exchanges per gate per wake-up, for nothing.
    registered: Option<Waker>,
}

/// The task's waker, kept for the sources, and whether one of them has fired since the sources
/// last answered pending.
#[derive(Debug)]
struct Shared {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl ArcWake for Shared {
    fn wake_by_ref(this: &Arc<Self>) {
        this.woken.store(true, Ordering::Release);
        this.task.wake();
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// An open gate: the sources are asked at the first poll, which registers them.
    pub fn new() -> Self {
        Gate { shared: Arc::new(Shared { woken: AtomicBool::new(true), task: AtomicWaker::new() }), registered: None }
    }

    /// Asks the sources through `poll` (with the gate's waker) if one of them fired since they
    /// last answered pending, or if `force`; pending without asking otherwise. After an answer
    /// the gate stays open, since a source that answered once may have more at once (a read
    /// buffer holding a second frame, a second alarm that fired with the first).
    pub fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        force: bool,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let shared = &self.shared;
        // A new waker is registered before the flag is read, so a wake-up between the two is
        // never lost.
        let fresh = !self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if fresh {
            shared.task.register(cx.waker());
            self.registered = Some(cx.waker().clone());
        }
        let woken = shared.woken.swap(false, Ordering::AcqRel);
        if woken && !fresh {
            // The wake-up that raised the flag took the waker, or is about to. Registered again
            // before the sources are asked: a wake-up in between comes from a source that is
            // ready by the time it is asked, and leaves the flag raised for one more look.
            shared.task.register(cx.waker());
        }
        if !(woken || force) {
            // No wake-up since the waker was last registered, so `shared` still holds it.
            return Poll::Pending;
        }
        let waker = waker_ref(shared);
        let answer = poll(&mut Context::from_waker(&waker));
        if answer.is_ready() {
            shared.woken.store(true, Ordering::Release);
        }
        answer
    }

    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        self.shared.woken.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A source is asked once, then only after it used the gate's waker; an answer leaves the
    /// gate open for the next poll.
    #[test]
    fn sources_are_asked_only_after_they_woke_the_gate() {
        let mut gate = Gate::new();
        let asked = AtomicUsize::new(0);
        let mut kept = None;
        let noop = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&noop);
        let mut ask = |ready: bool, kept: &mut Option<std::task::Waker>| {
            gate.poll(&mut cx, false, |sources| {
                asked.fetch_add(1, Ordering::Relaxed);
                *kept = Some(sources.waker().clone());
                if ready { Poll::Ready(()) } else { Poll::Pending }
            })
        };
        assert!(ask(false, &mut kept).is_pending());
        assert_eq!(asked.load(Ordering::Relaxed), 1, "an open gate asks at once");
        for _ in 0..3 {
            assert!(ask(false, &mut kept).is_pending());
        }
        assert_eq!(asked.load(Ordering::Relaxed), 1, "nothing fired, nothing asked");
        kept.take().expect("the source kept the gate's waker").wake();
        assert!(ask(true, &mut kept).is_ready());
        assert!(ask(false, &mut kept).is_pending());
        assert_eq!(asked.load(Ordering::Relaxed), 3, "an answer leaves the gate open once more");
        assert!(ask(false, &mut kept).is_pending());
        assert_eq!(asked.load(Ordering::Relaxed), 3);
        assert!(gate.poll(&mut cx, true, |_| Poll::Ready(())).is_ready(), "forced open");
    }

    /// The task's waker, counting its wake-ups.
    struct Task(AtomicUsize);

    impl ArcWake for Task {
        fn wake_by_ref(this: &Arc<Self>) {
            this.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A source's wake-up takes the task's waker from the gate; the next poll registers it
    /// again, though the task and its waker are the same, so every later wake-up still reaches
    /// the task. Polls with nothing fired leave the registered waker where it is.
    #[test]
    fn every_wake_up_reaches_the_task_though_its_waker_is_registered_once() {
        let task = Arc::new(Task(AtomicUsize::new(0)));
        let waker = futures_util::task::waker(task.clone());
        let mut cx = Context::from_waker(&waker);
        let mut gate = Gate::new();
        let mut source: Option<Waker> = None;
        let mut ask = |gate: &mut Gate, source: &mut Option<Waker>| {
            let mut asked = false;
            let answer: Poll<()> = gate.poll(&mut cx, false, |sources| {
                asked = true;
                *source = Some(sources.waker().clone());
                Poll::Pending
            });
            assert!(answer.is_pending());
            asked
        };
        assert!(ask(&mut gate, &mut source), "an open gate asks at once");
        let fire = |source: &Option<Waker>| source.as_ref().expect("the source kept the gate's waker").wake_by_ref();
        for round in 1..=3 {
            assert!(!ask(&mut gate, &mut source), "nothing fired, nothing asked");
            fire(&source);
            assert_eq!(task.0.load(Ordering::Relaxed), round, "wake-up {round} reaches the task");
            assert!(ask(&mut gate, &mut source), "a source fired: asked");
        }
    }
}
