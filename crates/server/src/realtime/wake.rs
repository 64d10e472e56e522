//! A connection's task between two turns, the same for every face that pushes events: it lets
//! the hub write for it while it sleeps, waits for whatever comes first, and takes its socket
//! back before it does anything else.

use super::hub::Delivery;
use super::inflight::Pipeline;
use super::session::{Alarm, Alarms, TokenClock};
use super::wire::{Reader, Writer};
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message};

/// What woke a connection's task; `R` is what its requests in flight finish with.
pub enum Woke<R> {
    Alarm(Alarm),
    /// How many deliveries the queue gave (into [`Turns::batch`]); 0 once it closed.
    Deliveries(usize),
    Reply(R),
    Read(Option<Result<Message, tungstenite::Error>>),
}

/// What a connection's task waits on besides its socket's writing side and its requests.
pub struct Turns {
    stream: Reader,
    rx: mpsc::Receiver<Arc<Delivery>>,
    alarms: Alarms,
    /// The deliveries the last turn took from the queue. Allocated on the first delivery, not
    /// up front: idle connections never need it.
    pub batch: Vec<Arc<Delivery>>,
}

impl Turns {
    pub fn new(stream: Reader, rx: mpsc::Receiver<Arc<Delivery>>, alarms: Alarms) -> Self {
        Turns { stream, rx, alarms, batch: Vec::new() }
    }

    /// Waits for the task's next turn. Asleep with nothing of its own to write, the connection
    /// lets the hub write its events meanwhile: a delivery then wakes no task. Awake, the socket
    /// is the task's again before anything else happens, and what the hub appended for it goes
    /// out first; `None` if that write failed and the connection must end.
    pub async fn next<R: Send + 'static>(
        &mut self,
        sink: &mut Writer,
        token: &TokenClock,
        requests: &mut Pipeline<R>,
    ) -> Option<Woke<R>> {
        let Turns { stream, rx, alarms, batch } = self;
        if requests.is_empty() && requests.waiting() == 0 {
            sink.rest(|| rx.is_empty());
        }
        let woke = tokio::select! {
            biased;
            alarm = alarms.next(token) => Woke::Alarm(alarm),
            n = rx.recv_many(batch, 256) => Woke::Deliveries(n),
            reply = requests.next(), if !requests.is_empty() => Woke::Reply(reply),
            msg = stream.next(), if requests.has_room() => Woke::Read(msg),
        };
        if sink.hold() && sink.flush().await.is_err() {
            return None;
        }
        Some(woke)
    }
}
