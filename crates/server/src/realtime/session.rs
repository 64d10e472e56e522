//! What every realtime connection shares, whatever its wire protocol: its subscriptions with
//! their change-log cursors and bounded outbound queue, the catch-up read from a cursor, and
//! the clock of its access token.

use super::gate::Gate;
use super::hub::{Delivery, Hub, Overflow, Subscriber};
use super::outlet::Outlet;
use ferrosync_core::engine::Engine;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::StoredEvent;
use ferrosync_core::timestamp::Timestamp;
use ferrosync_core::{CoreError, model::ObjectRef};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// One connection's subscriptions in one service: the hub registrations, the outbound queue
/// the hub fills, and per object the sequence number of the last event the client was sent.
pub struct Subscriptions {
    hub: Arc<Hub>,
    service: Sid,
    conn: u64,
    tx: mpsc::Sender<Arc<Delivery>>,
    overflow: Arc<Overflow>,
    /// The connection's socket, for the hub to write to while the task sleeps.
    outlet: Option<Arc<Outlet>>,
    /// Looked up for every delivery, so hashed with foldhash rather than SipHash (3 % of a
    /// fan-out); its keys are the connection's own few subscriptions. Shared with the hub,
    /// which advances an object's cursor when it writes for the connection.
    cursors: foldhash::HashMap<Sid, Arc<AtomicU64>>,
    /// Which of the cursors are live queries' (by query id) rather than objects'.
    queries: foldhash::HashSet<Sid>,
}

impl Subscriptions {
    /// A connection's subscriptions and the receiving end of its queue of `queue` deliveries;
    /// with an `outlet`, the hub writes the connection's events itself while its task sleeps.
    pub fn open(
        hub: Arc<Hub>,
        service: Sid,
        queue: usize,
        outlet: Option<Arc<Outlet>>,
    ) -> (Self, mpsc::Receiver<Arc<Delivery>>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        if let Some(outlet) = &outlet {
            outlet.wake_through(tx.clone());
        }
        let conn = hub.next_connection_id();
        hub.connections.fetch_add(1, Ordering::Relaxed);
        let subs = Subscriptions {
            hub,
            service,
            conn,
            tx,
            overflow: Arc::new(Overflow::default()),
            outlet,
            cursors: Default::default(),
            queries: Default::default(),
        };
        (subs, rx)
    }

    pub fn connection_id(&self) -> u64 {
        self.conn
    }

    /// Raised when the queue overflows: the connection must go, and its client resume.
    pub fn overflow(&self) -> Arc<Overflow> {
        self.overflow.clone()
    }

    pub fn len(&self) -> usize {
        self.cursors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cursors.is_empty()
    }

    pub fn contains(&self, object: &Sid) -> bool {
        self.cursors.contains_key(object)
    }

    pub fn cursors(&self) -> impl Iterator<Item = (&Sid, u64)> {
        self.cursors.iter().map(|(sid, seq)| (sid, seq.load(Ordering::Relaxed)))
    }

    /// This connection as the hub knows a subscription of it; `cursor` is shared with the hub
    /// for an object, `None` for a live query (whose events always go through the task).
    fn subscriber(&self, cursor: Option<Arc<AtomicU64>>) -> Subscriber {
        Subscriber {
            conn: self.conn,
            tx: self.tx.clone(),
            overflow: self.overflow.clone(),
            outlet: self.outlet.clone(),
            cursor,
        }
    }

    /// Registers with the hub (once per object) *before* the caller reads the log, so every
    /// event committed after this call reaches the queue. Returns whether it was new.
    pub async fn register(&mut self, object: &Sid) -> Result<bool, CoreError> {
        if self.cursors.contains_key(object) {
            return Ok(false);
        }
        // A cursor no event is below until the caller sets the real one; the entry also makes
        // sure a connection that drops midway is unsubscribed.
        let cursor = Arc::new(AtomicU64::new(u64::MAX));
        self.hub.subscribe(&self.service, object, self.subscriber(Some(cursor.clone()))).await?;
        self.cursors.insert(object.clone(), cursor);
        Ok(true)
    }

    /// Registers a live query under `query` (its id) *before* its results are read, like
    /// [`Subscriptions::register`].
    pub async fn register_query(
        &mut self,
        query: &Sid,
        def: ferrosync_core::index::IndexDef,
        expr: ferrosync_query::Expr,
        maps: Option<std::collections::HashSet<Sid>>,
    ) -> Result<(), CoreError> {
        let live = super::hub::LiveQuery { def, expr: Arc::new(expr), maps, sub: self.subscriber(None) };
        self.hub.subscribe_query(&self.service, query, live).await?;
        self.cursors.insert(query.clone(), Arc::new(AtomicU64::new(u64::MAX)));
        self.queries.insert(query.clone());
        Ok(())
    }

    /// Sets where the client stands for `object`: events up to `seq` are not delivered again.
    pub fn set_cursor(&mut self, object: &Sid, seq: u64) {
        if let Some(cursor) = self.cursors.get(object) {
            cursor.store(seq, Ordering::Relaxed);
        }
    }

    /// Moves the cursor back to `seq` if it is ahead of it (a second subscription to the same
    /// object from an earlier point).
    pub fn rewind(&mut self, object: &Sid, seq: u64) {
        if let Some(cursor) = self.cursors.get(object) {
            cursor.fetch_min(seq, Ordering::Relaxed);
        }
    }

    pub async fn cancel(&mut self, object: &Sid) -> bool {
        if self.cursors.remove(object).is_some() {
            if self.queries.remove(object) {
                self.hub.unsubscribe_query(&self.service, object).await;
            } else {
                self.hub.unsubscribe(&self.service, object, self.conn).await;
            }
            true
        } else {
            false
        }
    }

    /// Whether a queued delivery is news for this client; advances the object's cursor if so.
    /// Live events for positions a catch-up already sent are dropped here.
    pub fn admit(&mut self, d: &Delivery) -> bool {
        self.cursors.get(&d.object_sid).is_some_and(|cursor| advance_cursor(cursor, d.seq))
    }

    /// Unregisters everything; call when the connection ends.
    pub async fn close(self) {
        for object in self.cursors.keys() {
            if self.queries.contains(object) {
                self.hub.unsubscribe_query(&self.service, object).await;
            } else {
                self.hub.unsubscribe(&self.service, object, self.conn).await;
            }
        }
        self.hub.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether an event at `seq` is news past `cursor`; moves the cursor to it if so. Only one side
/// moves a cursor at a time (the connection's task, or the hub while the task sleeps; the
/// outlet's lock orders the two), so a load and a store suffice.
pub fn advance_cursor(cursor: &AtomicU64, seq: u64) -> bool {
    let news = seq > cursor.load(Ordering::Relaxed);
    if news {
        cursor.store(seq, Ordering::Relaxed);
    }
    news
}

/// Where a subscription's replay starts, and whether that is the head read after the
/// subscription was registered (see [`Replay::new`]).
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub seq: u64,
    pub at_head: bool,
}

/// An object's events after a cursor, read from the store page by page.
pub struct Replay {
    service: Sid,
    object: Sid,
    cursor: u64,
    done: bool,
}

impl Replay {
    const PAGE: u32 = 1000;

    /// A replay of `object`'s events after `start`. From the head read after the subscription
    /// was registered there is nothing to read: every later event commits after that read and
    /// reaches the subscription live, so a fresh subscription costs no log read (a thousand at
    /// once used to queue a thousand empty reads ahead of the first live event).
    pub fn new(service: &Sid, object: &Sid, start: Start) -> Self {
        Replay { service: service.clone(), object: object.clone(), cursor: start.seq, done: start.at_head }
    }

    /// The next page, or `None` once everything committed before the last read was returned.
    pub async fn next_page(&mut self, engine: &Engine) -> Result<Option<Vec<StoredEvent>>, CoreError> {
        if self.done {
            return Ok(None);
        }
        // From the store, not the recent-event cache: the cache may stop short at an event
        // whose commit has not been published yet, which the hub may already have passed, and
        // a catch-up must reach everything committed before its subscription.
        let events = engine.store().events(&self.service, self.cursor, Some(&self.object), Self::PAGE).await?;
        self.done = events.len() < Self::PAGE as usize;
        if let Some(last) = events.last() {
            self.cursor = last.seq;
        }
        Ok(if events.is_empty() { None } else { Some(events) })
    }

    /// The last sequence number returned (or the starting cursor).
    pub fn cursor(&self) -> u64 {
        self.cursor
    }
}

/// The newest sequence number of a service's change log, as the store has it.
pub async fn head_seq(engine: &Engine, service: &Sid) -> Result<u64, CoreError> {
    Ok(engine.store().service(&ObjectRef::Sid(service.clone())).await?.map(|s| s.head_seq).unwrap_or(0))
}

/// What interrupts a connection besides its client and its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alarm {
    /// The server is shutting down.
    Shutdown,
    /// The outbound queue overflowed: the client fell too far behind.
    Overflow,
    /// The token clock's deadline passed: see [`TokenClock::fire`].
    Token,
    /// Time for a keepalive ping.
    Ping,
}

/// A connection's timers and signals. They are created once and kept across wake-ups:
/// re-arming them on every wake-up would cost more than delivering the event.
pub struct Alarms {
    /// Woken by any of the four sources below; until it is, a poll asks none of them.
    gate: Gate,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    overflow: Pin<Box<WaitForCancellationFutureOwned>>,
    token_timer: Pin<Box<tokio::time::Sleep>>,
    armed_for: u64,
    ping: tokio::time::Interval,
}

impl Alarms {
    pub fn new(shutdown: &CancellationToken, overflow: &Overflow, keepalive_secs: u64, clock: &TokenClock) -> Self {
        let keepalive = Duration::from_secs(keepalive_secs.max(1));
        Alarms {
            gate: Gate::new(),
            shutdown: Box::pin(shutdown.clone().cancelled_owned()),
            overflow: Box::pin(overflow.raised()),
            token_timer: Box::pin(tokio::time::sleep_until(clock.deadline())),
            armed_for: clock.generation(),
            ping: tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive),
        }
    }

    /// The next alarm, most urgent first. The token timer follows `clock`: it is re-armed only
    /// when the clock's deadline moved (a fresh token, or the warning went out).
    pub async fn next(&mut self, clock: &TokenClock) -> Alarm {
        std::future::poll_fn(|cx| self.poll_next(clock, cx)).await
    }

    /// A connection's task wakes for every frame it sends or reads, and polls its alarms each
    /// time. The sources (two cancellations, which take locks to ask, and two timers, which
    /// re-register at every poll) are polled with the gate's waker, and only after one of them
    /// woke it: a wake-up for anything else costs one waker registration and one flag.
    fn poll_next(&mut self, clock: &TokenClock, cx: &mut Context<'_>) -> Poll<Alarm> {
        let rearmed = self.armed_for != clock.generation();
        if rearmed {
            self.armed_for = clock.generation();
            self.token_timer.as_mut().reset(clock.deadline());
        }
        let Alarms { gate, shutdown, overflow, token_timer, ping, .. } = self;
        gate.poll(cx, rearmed, |sources| {
            if shutdown.as_mut().poll(sources).is_ready() {
                Poll::Ready(Alarm::Shutdown)
            } else if overflow.as_mut().poll(sources).is_ready() {
                Poll::Ready(Alarm::Overflow)
            } else if token_timer.as_mut().poll(sources).is_ready() {
                Poll::Ready(Alarm::Token)
            } else if ping.poll_tick(sources).is_ready() {
                Poll::Ready(Alarm::Ping)
            } else {
                Poll::Pending
            }
        })
    }
}

/// When an access token needs attention: a warning `warning_secs` before it expires, then the
/// expiry itself. A fresh token starts the cycle again.
#[derive(Debug, Clone)]
pub struct TokenClock {
    expires_at: i64,
    warning_secs: u64,
    warned: bool,
    /// Bumped whenever the deadline moves, so a connection re-arms its timer only then.
    generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAlarm {
    /// Time to tell the client its token is about to expire.
    Warn,
    /// The token has expired: the connection must end.
    Expired,
}

impl TokenClock {
    pub fn new(expires_at: i64, warning_secs: u64) -> Self {
        TokenClock { expires_at, warning_secs, warned: false, generation: 0 }
    }

    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn is_expired(&self) -> bool {
        now_secs() >= self.expires_at
    }

    /// When the timer should next fire: the warning, or the expiry itself.
    pub fn deadline(&self) -> tokio::time::Instant {
        if self.warned { instant_at(self.expires_at) } else { instant_at(self.expires_at - self.warning_secs as i64) }
    }

    /// What the timer firing means now; after a warning the clock waits for the expiry.
    pub fn fire(&mut self) -> TokenAlarm {
        if self.warned || self.is_expired() {
            return TokenAlarm::Expired;
        }
        self.warned = true;
        self.generation += 1;
        TokenAlarm::Warn
    }

    /// A fresh token replaced the old one.
    pub fn renew(&mut self, expires_at: i64) {
        self.expires_at = expires_at;
        self.warned = false;
        self.generation += 1;
    }
}

pub fn now_secs() -> i64 {
    Timestamp::now().millis() / 1000
}

fn instant_at(epoch_secs: i64) -> tokio::time::Instant {
    let delta = epoch_secs - now_secs();
    tokio::time::Instant::now() + Duration::from_secs(delta.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sources are polled once, then only after one of them fired; alarms that fire
    /// together all come through, most urgent first, and pings keep their interval.
    #[tokio::test(start_paused = true)]
    async fn alarms_ask_their_sources_only_after_one_fired() {
        let (shutdown, overflow) = (CancellationToken::new(), Overflow::default());
        let clock = TokenClock::new(now_secs() + 3600, 180);
        let mut alarms = Alarms::new(&shutdown, &overflow, 30, &clock);
        let noop = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&noop);
        assert!(alarms.poll_next(&clock, &mut cx).is_pending(), "nothing has fired");
        assert!(!alarms.gate.is_open(), "the sources wait on the gate");
        for _ in 0..3 {
            assert!(alarms.poll_next(&clock, &mut cx).is_pending());
        }
        tokio::time::advance(Duration::from_secs(31)).await;
        overflow.raise();
        assert!(alarms.gate.is_open(), "a firing source opens the gate");
        assert!(matches!(alarms.poll_next(&clock, &mut cx), Poll::Ready(Alarm::Overflow)));
        assert!(matches!(alarms.poll_next(&clock, &mut cx), Poll::Ready(Alarm::Overflow)), "still raised");
        let (shutdown, overflow) = (CancellationToken::new(), Overflow::default());
        let mut alarms = Alarms::new(&shutdown, &overflow, 30, &clock);
        assert!(alarms.poll_next(&clock, &mut cx).is_pending());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(matches!(alarms.next(&clock).await, Alarm::Ping));
        assert!(alarms.poll_next(&clock, &mut cx).is_pending(), "the next ping is an interval away");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(matches!(alarms.next(&clock).await, Alarm::Ping));
        shutdown.cancel();
        assert!(matches!(alarms.next(&clock).await, Alarm::Shutdown));
    }

    #[test]
    fn the_token_clock_warns_once_then_expires_and_starts_over_on_renewal() {
        let now = now_secs();
        let mut clock = TokenClock::new(now + 600, 180);
        assert!(!clock.is_expired());
        let g = clock.generation();
        assert_eq!(clock.fire(), TokenAlarm::Warn);
        assert_ne!(clock.generation(), g, "the deadline moved to the expiry");
        assert_eq!(clock.fire(), TokenAlarm::Expired);
        clock.renew(now + 1200);
        assert_eq!(clock.expires_at(), now + 1200);
        assert_eq!(clock.fire(), TokenAlarm::Warn);
        let mut past = TokenClock::new(now - 1, 180);
        assert_eq!(past.fire(), TokenAlarm::Expired, "an expired token is not warned about");
    }
}
