//! A connection's writing side, shared by its task and the hub.
//!
//! A subscribed connection spends nearly all its life asleep. Waking its task for every event
//! (a queue hand-off, a scheduler pass, its reader, alarms and cursors looked at) cost more
//! than writing the event, and each of those touched memory gone cold since the last event:
//! in a fan-out to 1,000 the server spent three times Redis's user time per delivery. So while
//! the task sleeps with nothing of its own to write, it lets the hub write for it: the hub
//! appends the event's frame here and, once per batch of events, writes what it appended with
//! one vectored write, as Redis's event loop does. The task takes the socket back whenever it
//! wakes ([`crate::realtime::wire::Writer::hold`]), along with anything the hub appended and
//! could not write.
//!
//! Every face that pushes events over a [`super::wire::Writer`] rests this way: the native
//! protocol, whose frame is the event's own, and the twilsock face, which frames events for
//! the `twilio-sync` SDK ([`Outlet::render_with`]) and is not sent the echoes of its own writes
//! ([`Outlet::expect_echo`]).

use super::hub::Delivery;
use super::wire::{Chunk, OpCode, advance, enqueue, slices};
use bytes::Bytes;
use std::collections::{BTreeSet, VecDeque};
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use tokio::io::AsyncWrite;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

/// The socket's writing half.
pub enum Io {
    /// A WebSocket over HTTP/1.1 owns its TCP socket: its writes go to the socket itself, not
    /// through hyper's upgraded stream and a lock its reading half shares.
    Tcp(OwnedWriteHalf),
    /// Any other stream: hyper's upgraded one when it is not a TCP socket, a test's pipe.
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
}

impl Io {
    pub fn stream(io: impl AsyncWrite + Send + Unpin + 'static) -> Io {
        Io::Stream(Box::new(io))
    }

    /// A write that never waits, for the hub; `None` when the socket takes nothing now (or
    /// failed: the task meets the error on its own write).
    fn write_now(&mut self, bufs: &[IoSlice<'_>]) -> Option<usize> {
        match self {
            // Straight to the socket, past tokio's record of its readiness: at a fan-out's
            // scale, reading that record was one more line of memory gone cold per delivery.
            // A stale record is harmless: a task that later finds the socket full learns it
            // from the write itself and waits for room then.
            Io::Tcp(half) => socket2::SockRef::from(half.as_ref()).send_vectored(bufs).ok(),
            // A waker that does nothing: this write never waits. Whoever writes next (the
            // task) registers its own.
            Io::Stream(io) => {
                match Pin::new(&mut **io).poll_write_vectored(&mut Context::from_waker(Waker::noop()), bufs) {
                    Poll::Ready(Ok(n)) => Some(n),
                    _ => None,
                }
            }
        }
    }

    fn writer(&mut self) -> Pin<&mut (dyn AsyncWrite + Send + Unpin)> {
        match self {
            Io::Tcp(half) => Pin::new(half),
            Io::Stream(io) => Pin::new(&mut **io),
        }
    }
}

pub struct Outlet {
    out: Mutex<Out>,
    /// The connection's delivery queue, through which the hub wakes the task when it hands
    /// the turn back.
    wake: OnceLock<mpsc::Sender<Arc<Delivery>>>,
    /// A face with frames of its own; unset (as for the native protocol, and at the cost of
    /// one word on every connection), the event's native frame, and every echo sent.
    face: OnceLock<Box<Face>>,
}

/// A face's event frame; empty for an event the face cannot frame (nothing is sent).
pub type Render = Box<dyn Fn(&Delivery) -> Bytes + Send + Sync>;

struct Face {
    render: Render,
    /// Change-log positions of events this connection wrote, whose echo it is not sent. The
    /// task adds a write's position when it answers the write, before it next rests (under the
    /// outlet's lock, which the hub holds when it writes): the hub finds it here.
    echoes: Mutex<BTreeSet<u64>>,
}

/// Own writes remembered so their echo is not sent back; beyond this the oldest are forgotten.
const MAX_ECHOES: usize = 4096;

pub struct Out {
    /// `None` once the connection's writer is gone.
    io: Option<Io>,
    /// The data frames' opcode.
    data: OpCode,
    /// The task sleeps with nothing queued anywhere: the hub may append and write.
    direct: bool,
    /// Whether the hub's current batch has listed this outlet for its write-out.
    listed: bool,
    /// Frames the hub appended and has not written yet.
    pending: VecDeque<Chunk>,
}

impl Outlet {
    pub(super) fn new(io: Io, data: OpCode) -> Self {
        let out = Out { io: Some(io), data, direct: false, listed: false, pending: VecDeque::new() };
        Outlet { out: Mutex::new(out), wake: OnceLock::new(), face: OnceLock::new() }
    }

    /// Frames the connection's events with `render` rather than as the native protocol's, and
    /// leaves out the echoes of its own writes ([`Outlet::expect_echo`]); set once, before the
    /// connection subscribes to anything.
    pub fn render_with(&self, render: Render) {
        let _ = self.face.set(Box::new(Face { render, echoes: Mutex::new(BTreeSet::new()) }));
    }

    /// An event's frame as the connection's face writes it, whoever writes it.
    pub fn frame(&self, d: &Delivery) -> Bytes {
        match self.face.get() {
            Some(face) => (face.render)(d),
            None => d.native_frame(),
        }
    }

    /// Event `seq` is one this connection wrote: its echo is not sent, by the hub or the task.
    /// The oldest are forgotten past [`MAX_ECHOES`] (an echo that never came: a write to an
    /// object the connection does not follow). A face without frames of its own keeps none.
    pub fn expect_echo(&self, seq: u64) {
        if let Some(face) = self.face.get() {
            let mut echoes = face.echoes.lock().unwrap_or_else(|e| e.into_inner());
            echoes.insert(seq);
            while echoes.len() > MAX_ECHOES {
                echoes.pop_first();
            }
        }
    }

    /// Whether event `seq` is the echo of one of this connection's writes; forgets it if so.
    pub fn take_echo(&self, seq: u64) -> bool {
        self.face.get().is_some_and(|face| face.echoes.lock().unwrap_or_else(|e| e.into_inner()).remove(&seq))
    }

    /// The connection's delivery queue: until it is set, the task never rests.
    pub fn wake_through(&self, queue: mpsc::Sender<Arc<Delivery>>) {
        let _ = self.wake.set(queue);
    }

    pub(super) fn can_rest(&self) -> bool {
        self.wake.get().is_some()
    }

    /// Writes out what the hub appended (see [`Out::write_out`]). Should the turn go back to
    /// the task, `first` (a delivery appended here, which the task's cursor drops) is queued
    /// to wake it.
    pub fn write_out(&self, first: &Arc<Delivery>) {
        self.lock().write_out(|| {
            if let Some(queue) = self.wake.get() {
                // Never full: nothing entered the queue since the task rested.
                let _ = queue.try_send(first.clone());
            }
        });
    }

    /// Held only for a few memory operations or one non-blocking write.
    pub fn lock(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Out {
    /// Whether the hub writes for the connection now.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Ends the hub's turn: whatever it queues next goes through the task, which is woken for
    /// it and then writes what is pending here first.
    pub fn stop_direct(&mut self) {
        self.direct = false;
    }

    /// Appends a data frame for the hub's write-out; true if this outlet was not yet listed
    /// for it (the caller lists it).
    pub fn append(&mut self, payload: Bytes) -> bool {
        enqueue(&mut self.pending, self.data, payload);
        !std::mem::replace(&mut self.listed, true)
    }

    /// Writes what the hub appended, without waiting. If the socket cannot take it all now
    /// (or failed), the turn goes back to the task: `hand_back` runs under the lock and must
    /// wake it, and the task's writer then writes the rest (within its stall bound) or meets
    /// the error.
    fn write_out(&mut self, hand_back: impl FnOnce()) {
        self.listed = false;
        if !self.direct || self.pending.is_empty() {
            return;
        }
        let Out { io, pending, .. } = self;
        if let Some(io) = io {
            loop {
                let Some(n @ 1..) = io.write_now(&slices(pending)) else { break };
                advance(pending, n);
                if pending.is_empty() {
                    return;
                }
            }
        }
        self.direct = false;
        hand_back();
    }

    /// The task starts to sleep: the hub may write for it from now on.
    pub(super) fn rest(&mut self) {
        self.direct = true;
    }

    /// The task takes the socket back; returns what the hub appended and did not write.
    pub(super) fn hold(&mut self) -> VecDeque<Chunk> {
        self.direct = false;
        std::mem::take(&mut self.pending)
    }

    /// Whether the socket's half is a TCP socket's own (see [`Io::Tcp`]).
    #[cfg(test)]
    pub(super) fn holds_tcp(&self) -> bool {
        matches!(self.io, Some(Io::Tcp(_)))
    }

    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The writer is gone: the socket's half closes, and the hub writes nothing more.
    pub(super) fn close(&mut self) {
        self.direct = false;
        self.pending.clear();
        self.io = None;
    }

    pub(super) fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.io {
            Some(io) => io.writer().poll_write_vectored(cx, bufs),
            None => Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
        }
    }

    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.io {
            Some(io) => io.writer().poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    pub(super) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.io {
            Some(io) => io.writer().poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests;
