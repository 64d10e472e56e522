//! A gate in front of sources a connection's task polls on every wake-up: the sources get the
//! gate's waker, and are asked again only after one of them used it. A task woken to deliver an
//! event then skips its socket reader and its alarms, which would otherwise each re-register
//! their wakers (and take locks) only to answer "not yet".

use futures_util::task::{ArcWake, AtomicWaker, waker_ref};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// The task's waker, kept for the sources, and whether one of them has fired since the sources
/// last answered pending.
#[derive(Debug)]
pub struct Gate {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl ArcWake for Gate {
    fn wake_by_ref(this: &Arc<Self>) {
        this.woken.store(true, Ordering::Release);
        this.task.wake();
    }
}

impl Gate {
    /// An open gate: the sources are asked at the first poll, which registers them.
    pub fn new() -> Arc<Self> {
        Arc::new(Gate { woken: AtomicBool::new(true), task: AtomicWaker::new() })
    }

    /// Asks the sources through `poll` (with the gate's waker) if one of them fired since they
    /// last answered pending, or if `force`; pending without asking otherwise. After an answer
    /// the gate stays open, since a source that answered once may have more at once (a read
    /// buffer holding a second frame, a second alarm that fired with the first).
    pub fn poll<T>(
        self: &Arc<Self>,
        cx: &mut Context<'_>,
        force: bool,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        // Registered before the flag is read, so a wake-up between the two is never lost.
        self.task.register(cx.waker());
        let woken = self.woken.swap(false, Ordering::AcqRel);
        if !(woken || force) {
            return Poll::Pending;
        }
        let waker = waker_ref(self);
        let answer = poll(&mut Context::from_waker(&waker));
        if answer.is_ready() {
            self.woken.store(true, Ordering::Release);
        }
        answer
    }

    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        self.woken.load(Ordering::Acquire)
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
        let gate = Gate::new();
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
}
