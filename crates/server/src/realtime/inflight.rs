//! A connection's requests in flight. A client may send its next request before the last one
//! is answered; the requests then run at once, so a client's writes share commits with each
//! other. Requests naming the same object run in the order they came, one at a time (a lane
//! each); replies carry the request's id and may arrive in another order than their requests.
//! An event that arrives while requests run waits until they have finished, so a write's reply
//! goes out before its own event, as when requests ran one at a time. Past `MAX_IN_FLIGHT` the
//! connection is not read until one finishes, so a client that floods is held back by its own
//! socket.

use super::hub::Delivery;
use ferrosync_core::model::ObjectKind;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Requests one connection may have running or waiting for their lane.
pub const MAX_IN_FLIGHT: usize = 64;

/// A running request, tagged with its lane: a plain future over the boxed request, so that
/// starting one allocates nothing more.
struct Lane<K, R> {
    lane: Option<K>,
    request: BoxFuture<'static, R>,
}

impl<K: Unpin, R> Future for Lane<K, R> {
    type Output = (Option<K>, R);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let reply = std::task::ready!(self.request.as_mut().poll(cx));
        // Polled no more once ready (a `FuturesUnordered` drops it), so the lane is taken once.
        Poll::Ready((self.lane.take(), reply))
    }
}

pub struct InFlight<K, R> {
    /// Made on the first request: most connections only listen, and an idle one carries
    /// this pointer only.
    inner: Option<Box<Inner<K, R>>>,
}

struct Inner<K, R> {
    running: FuturesUnordered<Lane<K, R>>,
    /// A lane is here while one of its requests runs; it holds the ones queued behind it. A
    /// queued request is a future not yet polled, so it has not started.
    /// Keyed by what the client's requests name, at most `MAX_IN_FLIGHT` lanes at once: a fast
    /// hash, looked up twice per request.
    lanes: HashMap<K, VecDeque<BoxFuture<'static, R>>, foldhash::fast::RandomState>,
    queued: usize,
}

impl<K, R> Default for InFlight<K, R> {
    fn default() -> Self {
        Self { inner: None }
    }
}

impl<K: Eq + Hash + Clone + Unpin + Send + 'static, R: Send + 'static> InFlight<K, R> {
    pub fn is_empty(&self) -> bool {
        self.inner.as_ref().is_none_or(|i| i.running.is_empty())
    }

    /// Whether another request may be read.
    pub fn has_room(&self) -> bool {
        self.inner.as_ref().is_none_or(|i| i.running.len() + i.queued < MAX_IN_FLIGHT)
    }

    /// Starts `request` now, or once the requests before it in its lane have finished.
    pub fn push(&mut self, lane: Option<K>, request: BoxFuture<'static, R>) {
        let inner = self.inner.get_or_insert_with(|| {
            Box::new(Inner { running: FuturesUnordered::new(), lanes: HashMap::default(), queued: 0 })
        });
        if let Some(k) = &lane {
            if let Some(queue) = inner.lanes.get_mut(k) {
                queue.push_back(request);
                inner.queued += 1;
                return;
            }
            inner.lanes.insert(k.clone(), VecDeque::new());
        }
        inner.start(lane, request);
    }

    /// The next request to finish; its lane's next request starts. Cancel-safe: nothing is
    /// taken from the set until a request has finished. Pends forever while none runs (a
    /// caller in `select!` skips it then, so an idle connection's wake-ups do not poll it).
    pub async fn next(&mut self) -> R {
        let Some(inner) = self.inner.as_mut() else {
            return std::future::pending().await;
        };
        let Some((lane, reply)) = inner.running.next().await else {
            return std::future::pending().await;
        };
        inner.finished(lane);
        reply
    }

    /// A request that has finished right now, if any, without waiting.
    pub fn ready(&mut self) -> Option<R> {
        let inner = self.inner.as_mut()?;
        let (lane, reply) = futures_util::FutureExt::now_or_never(inner.running.next()).flatten()?;
        inner.finished(lane);
        Some(reply)
    }
}

impl<K: Eq + Hash + Clone + Unpin + Send + 'static, R: Send + 'static> Inner<K, R> {
    fn start(&mut self, lane: Option<K>, request: BoxFuture<'static, R>) {
        self.running.push(Lane { lane, request });
    }

    fn finished(&mut self, lane: Option<K>) {
        let Some(k) = lane else { return };
        let next = self.lanes.get_mut(&k).and_then(VecDeque::pop_front);
        match next {
            Some(request) => {
                self.queued -= 1;
                self.start(Some(k), request);
            }
            None => {
                self.lanes.remove(&k);
            }
        }
    }
}

/// Items held back while requests run, for a face that must know what its requests wrote
/// before it passes on what arrives (the twilsock face drops the echoes of its own writes).
/// An item waits until every request running when it arrived has finished, one request's time
/// at most, and items leave in the order they came.
pub struct Holdback<T> {
    issued: u64,
    /// Numbers of the requests running, ascending (they are issued in order): at most
    /// `MAX_IN_FLIGHT`, and a buffer kept across requests, where a tree set allocated a node
    /// for every request on a connection with one running at a time.
    running: VecDeque<u64>,
    /// Items in arrival order, each with the last request number issued when it arrived.
    held: VecDeque<(u64, T)>,
}

impl<T> Default for Holdback<T> {
    fn default() -> Self {
        Self { issued: 0, running: VecDeque::new(), held: VecDeque::new() }
    }
}

impl<T> Holdback<T> {
    /// A request starts: its number, for [`Holdback::finish`].
    pub fn start(&mut self) -> u64 {
        self.issued += 1;
        self.running.push_back(self.issued);
        self.issued
    }

    pub fn finish(&mut self, number: u64) {
        if let Ok(at) = self.running.binary_search(&number) {
            self.running.remove(at);
        }
    }

    /// `item` back at once if nothing holds it; otherwise it waits its turn.
    pub fn offer(&mut self, item: T) -> Option<T> {
        if self.running.is_empty() && self.held.is_empty() {
            return Some(item);
        }
        self.held.push_back((self.issued, item));
        None
    }

    /// The next held item no running request came before.
    pub fn release(&mut self) -> Option<T> {
        let oldest = self.running.front().copied().unwrap_or(u64::MAX);
        match self.held.front() {
            Some((issued, _)) if *issued < oldest => self.held.pop_front().map(|(_, item)| item),
            _ => None,
        }
    }

    /// How many items wait.
    pub fn waiting(&self) -> usize {
        self.held.len()
    }
}

/// The lane of requests naming `object` of `kind`: a hash of the two, so that starting a
/// request copies no name. Two objects whose hashes meet share a lane, and their requests take
/// turns as one object's would: slower, never out of order.
pub fn lane(kind: ObjectKind, object: &str) -> u64 {
    use std::hash::BuildHasher;
    // A fixed seed: the lanes of one connection only need to differ from each other.
    foldhash::fast::FixedState::with_seed(0x6c61_6e65).hash_one((kind, object))
}

/// What runs on one connection: its requests in flight, and the events held back for them so
/// that a request's reply goes out before the events that arrived while it ran (its own
/// write's among them).
pub struct Pipeline<R> {
    requests: InFlight<u64, (u64, R)>,
    events: Holdback<Arc<Delivery>>,
}

impl<R> Default for Pipeline<R> {
    fn default() -> Self {
        Self { requests: InFlight::default(), events: Holdback::default() }
    }
}

impl<R: Send + 'static> Pipeline<R> {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    pub fn has_room(&self) -> bool {
        self.requests.has_room()
    }

    /// Runs `request` in its lane (see [`InFlight::push`] and [`lane`]).
    pub fn push(&mut self, lane: Option<u64>, request: impl Future<Output = R> + Send + 'static) {
        let number = self.events.start();
        // Mapped, not wrapped in an async block, which would hold the request twice over and
        // be moved whole into its box.
        self.requests.push(lane, request.map(move |reply| (number, reply)).boxed());
    }

    /// The next request to finish (cancel-safe, as [`InFlight::next`]).
    pub async fn next(&mut self) -> R {
        let (number, reply) = self.requests.next().await;
        self.events.finish(number);
        reply
    }

    /// A request that has finished right now, if any.
    pub fn ready(&mut self) -> Option<R> {
        let (number, reply) = self.requests.ready()?;
        self.events.finish(number);
        Some(reply)
    }

    /// `d` back at once, or `None` while it waits for the requests running now.
    pub fn offer(&mut self, d: Arc<Delivery>) -> Option<Arc<Delivery>> {
        self.events.offer(d)
    }

    /// The next held event no running request waits on; call after writing the replies.
    pub fn release(&mut self) -> Option<Arc<Delivery>> {
        self.events.release()
    }

    /// Events held back: past the connection's outbound queue, it is a slow consumer.
    pub fn waiting(&self) -> usize {
        self.events.waiting()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::sync::{Arc, Mutex};
    use tokio::sync::oneshot;

    /// A request that finishes when its sender fires, recording when it started.
    fn gated(
        name: &'static str,
        log: &Arc<Mutex<Vec<&'static str>>>,
    ) -> (oneshot::Sender<()>, BoxFuture<'static, &'static str>) {
        let (tx, rx) = oneshot::channel();
        let log = log.clone();
        let fut = async move {
            log.lock().map(|mut l| l.push(name)).ok();
            let _ = rx.await;
            name
        };
        (tx, fut.boxed())
    }

    #[tokio::test]
    async fn one_lane_runs_in_order_while_others_overtake() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut f: InFlight<&'static str, &'static str> = InFlight::default();
        let (a1, fa1) = gated("a1", &log);
        let (a2, fa2) = gated("a2", &log);
        let (b1, fb1) = gated("b1", &log);
        f.push(Some("a"), fa1);
        f.push(Some("a"), fa2);
        f.push(Some("b"), fb1);
        assert!(f.ready().is_none());
        // a2 waits behind a1 in lane a; b1 started at once.
        assert_eq!(*log.lock().expect("the log"), vec!["a1", "b1"]);
        b1.send(()).expect("the request waits");
        assert_eq!(f.next().await, "b1");
        a2.send(()).expect("the request waits");
        assert!(f.ready().is_none(), "a2 must not finish before a1");
        a1.send(()).expect("the request waits");
        assert_eq!(f.next().await, "a1");
        assert_eq!(f.next().await, "a2");
        assert_eq!(*log.lock().expect("the log"), vec!["a1", "b1", "a2"]);
        assert!(f.is_empty());
        assert!(f.inner.as_ref().is_some_and(|i| i.lanes.is_empty() && i.queued == 0));
    }

    #[tokio::test]
    async fn room_counts_running_and_queued_requests() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut f: InFlight<u32, &'static str> = InFlight::default();
        let mut gates = Vec::new();
        for i in 0..MAX_IN_FLIGHT {
            let (tx, fut) = gated("r", &log);
            gates.push(tx);
            // Half share one lane, half have none.
            f.push((i % 2 == 0).then_some(7), fut);
        }
        assert!(!f.has_room());
        assert!(f.ready().is_none());
        assert_eq!(log.lock().expect("the log").len(), MAX_IN_FLIGHT / 2 + 1, "one of lane 7 runs, the rest wait");
        gates.remove(1).send(()).expect("the request waits");
        assert_eq!(f.next().await, "r");
        assert!(f.has_room());
    }

    #[tokio::test]
    async fn next_pends_while_nothing_runs() {
        let mut f: InFlight<u32, u32> = InFlight::default();
        assert!(f.inner.is_none(), "a connection that sends nothing allocates nothing");
        assert!(f.next().now_or_never().is_none());
        f.push(None, async { 5 }.boxed());
        assert_eq!(f.next().await, 5);
    }

    #[test]
    fn held_items_wait_for_the_requests_running_at_their_arrival_and_keep_their_order() {
        let mut h = Holdback::default();
        assert_eq!(h.offer("free"), Some("free"), "nothing runs: nothing waits");
        let one = h.start();
        assert_eq!(h.offer("e1"), None);
        let two = h.start();
        assert_eq!(h.offer("e2"), None);
        h.finish(two);
        assert_eq!(h.release(), None, "e1 waits for request one");
        h.finish(one);
        assert_eq!((h.release(), h.release(), h.release()), (Some("e1"), Some("e2"), None));
        // A request started after an item arrived does not hold it back; items behind one
        // still waiting do not overtake it.
        let three = h.start();
        assert_eq!(h.offer("e3"), None);
        h.finish(three);
        let four = h.start();
        assert_eq!(h.offer("e4"), None);
        assert_eq!((h.release(), h.release()), (Some("e3"), None));
        assert_eq!(h.waiting(), 1);
        h.finish(four);
        assert_eq!(h.release(), Some("e4"));
        assert_eq!(h.offer("free again"), Some("free again"));
    }

    #[test]
    fn a_lane_is_the_same_for_one_object_and_differs_between_objects() {
        assert_eq!(lane(ObjectKind::Document, "ET01"), lane(ObjectKind::Document, &String::from("ET01")));
        assert_ne!(lane(ObjectKind::Document, "ET01"), lane(ObjectKind::Document, "ET02"));
        assert_ne!(lane(ObjectKind::Document, "shared"), lane(ObjectKind::Map, "shared"), "a name is per kind");
    }

    /// Requests finishing out of order release held items only once every earlier one has.
    #[test]
    fn held_items_follow_the_oldest_request_running_whatever_order_requests_finish_in() {
        let mut h = Holdback::default();
        let numbers: Vec<u64> = (0..5).map(|_| h.start()).collect();
        assert_eq!(h.offer("e"), None);
        for &n in numbers.iter().rev().take(4) {
            h.finish(n);
            assert_eq!(h.release(), None, "request {} still runs", numbers[0]);
        }
        h.finish(numbers[0]);
        assert_eq!(h.release(), Some("e"));
        h.finish(numbers[0]);
        assert_eq!(h.offer("free"), Some("free"), "finishing twice changes nothing");
    }
}
