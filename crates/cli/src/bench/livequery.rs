//! The live-query workload of `ferrosync bench`: many live queries over a large index while
//! writers update its items at a steady rate, against the same load on plain Map subscriptions.
//!
//! Set up through the HTTP API, twice: a service with `connections` Maps (`lq-00`, `lq-01`, …)
//! holding `items` items between them (item `i` is `{"team": "t<i % 1000>", "n": i}` under key
//! `i<i>` in Map `i % connections`). The *queried* service also has an index over the Maps'
//! prefix with `fields: ["data.team"]` and `queries` live queries `data.team == "t<q>"` spread
//! over `connections` WebSockets; the *plain* service has one plain Map subscription on each of
//! `connections` WebSockets. No live query exists in the plain service, so its events go from
//! the change log to the sockets without being judged against any.
//!
//! The load is open loop: random items rewritten at `rate` a second (at most `IN_FLIGHT` writes
//! in flight), each write's data stamped with the moment it is sent and its team unchanged, so
//! that it makes one `live_query_item_updated` per query on its team in the queried service, or
//! one `map_item_updated` in the plain one. It alternates between the two services every `SLOT`
//! for twice `seconds`: each is written at `rate` for `seconds` in all, and both meet the server
//! and its store in the same state (a checkpoint's stall falls on both alike, which two phases
//! one after the other do not ensure: see `SLOT`). Each connection sees the same share of its
//! service's events in both, so the two latencies differ by what live queries cost on the way
//! from the commit to the socket: judging each Map event against the queries, and framing a
//! query event.
//!
//! **`livequery_added_p99_ms` = p99(write sent → live-query event read) − p99(write sent → plain
//! Map event read)**, unclamped: negative when the live queries happened to be faster; both
//! p99s are printed beside it.

use super::{CpuMeter, Socket, Target, histogram, open_one};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Distinct `data.team` values among the items.
pub(super) const TEAMS: usize = 1_000;
/// Writes in flight at once, while loading and during the load phases.
const IN_FLIGHT: usize = 256;
/// The longest one HTTP request, one subscription answer or one wait for stragglers may take.
const WAIT: Duration = Duration::from_secs(60);
/// The index the live queries use.
const INDEX: &str = "by-team";
/// The Maps' unique-name prefix.
const PREFIX: &str = "lq-";
/// How long the alternating load writes to one service before it turns to the other. A stall
/// of the store (a checkpoint's fsync: ~200 ms) delays the writes in flight, the last
/// `IN_FLIGHT` sent (~25 ms of the load at 10,000/s), so the slots are shorter than that for a
/// stall to fall on both services alike; with slots of 100 ms it fell on one, and the p99s of
/// the two differed by ±150 ms from run to run.
const SLOT: Duration = Duration::from_millis(10);

/// The workload's size.
pub(super) struct Settings {
    pub items: usize,
    pub queries: usize,
    /// WebSocket connections on each side, and Maps each service's items are spread over.
    pub connections: usize,
    /// Writes per second the load aims at (to one service at a time).
    pub rate: f64,
    /// How long each service is written, in all.
    pub seconds: u64,
    pub quiet: bool,
}

/// One side of the alternating load, as measured.
pub(super) struct Phase {
    /// Writes acknowledged per second, over the side's half of the load's time.
    pub writes_per_s: f64,
    /// Events read per second, over the side's half of the load's time plus however long its
    /// deliveries ran past the load's end.
    pub events_per_s: f64,
    pub events: u64,
    /// From a write's send to the event it made on a subscriber's socket.
    pub latency: Histogram<u64>,
    /// From the write's answer (its commit acknowledged to the writer) to the event, per event
    /// in µs, sorted; negative when the event came first. A stall of the store delays the
    /// answer and the event alike, so this part of the delivery is free of it.
    pub after_answer: Vec<i64>,
}

/// What the workload measured.
pub(super) struct Figures {
    /// Writing both services' items through the API.
    pub load: Duration,
    /// Plain Map subscriptions, no live query.
    pub plain: Phase,
    /// Live queries.
    pub live: Phase,
}

impl Figures {
    /// p99 of live-query delivery minus p99 of plain delivery, in milliseconds; raw, may be
    /// negative.
    pub fn added_p99_ms(&self) -> f64 {
        super::ms(self.live.latency.value_at_quantile(0.99)) - super::ms(self.plain.latency.value_at_quantile(0.99))
    }

    /// The same difference measured from each write's answer instead of its send (see
    /// [`Phase::after_answer`]), in milliseconds.
    pub fn added_p99_after_answer_ms(&self) -> f64 {
        self.live.after_answer_ms(0.99) - self.plain.after_answer_ms(0.99)
    }
}

impl Phase {
    /// A quantile of [`Phase::after_answer`], in milliseconds.
    pub fn after_answer_ms(&self, q: f64) -> f64 {
        signed_quantile(&self.after_answer, q) as f64 / 1000.0
    }
}

/// The `q` quantile of sorted values (the smallest value at or above that share), 0 if none.
fn signed_quantile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// How many of `queries` live queries (query `q` asks for team `q % TEAMS`) hold an item of
/// team `team`.
fn queries_on_team(queries: usize, team: usize) -> u64 {
    (queries / TEAMS + usize::from(team < queries % TEAMS)) as u64
}

/// How many of `items` items are of team `team`.
fn items_of_team(items: usize, team: usize) -> usize {
    items / TEAMS + usize::from(team < items % TEAMS)
}

/// Writes due `elapsed` into a phase at `rate` a second.
fn due(elapsed: Duration, rate: f64) -> u64 {
    (elapsed.as_secs_f64() * rate).floor() as u64
}

/// Item `i`'s data as write number `w` of the load (0 while loading) sends it at `t_us` on
/// the generator's clock.
fn item_data(i: usize, w: u64, t_us: u64) -> Value {
    json!({ "team": format!("t{}", i % TEAMS), "n": i, "t": t_us, "w": w })
}

/// splitmix64: which item each write rewrites (uniform enough, and no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// What a native event frame is, for this workload: its kind, the write's send time and the
/// write's number (`None` for frames that are no event of the load).
fn stamped_event(text: &str) -> anyhow::Result<Option<(String, u64, u64)>> {
    let v: Value = serde_json::from_str(text)?;
    match v["type"].as_str() {
        Some("event") => {
            let kind = v["event"]["type"].as_str().unwrap_or_default().to_owned();
            let data = &v["event"]["data"];
            Ok(data["t"].as_u64().filter(|&t| t > 0).zip(data["w"].as_u64()).map(|(t, w)| (kind, t, w)))
        }
        Some("overflow") => bail!("the server closed a slow consumer (overflow): {text}"),
        Some("error") => bail!("the server sent an error frame: {text}"),
        _ => Ok(None),
    }
}

pub(super) async fn run(t: &Target, s: &Settings) -> anyhow::Result<Figures> {
    if s.items == 0 || s.connections == 0 || s.rate <= 0.0 || s.seconds == 0 {
        bail!("live queries: items, connections, rate and seconds must be positive");
    }
    let progress = |msg: &str| {
        if !s.quiet {
            eprintln!("bench: live queries: {msg}");
        }
    };
    let started = Instant::now();
    let (live_service, live_maps) = service_with_items(t, "queried", true, s).await?;
    let (plain_service, plain_maps) = service_with_items(t, "plain", false, s).await?;
    let load = started.elapsed();
    progress(&format!(
        "loaded 2 × {} items into 2 × {} Maps in {:.1} s ({:.0} writes/s, {IN_FLIGHT} in flight)",
        s.items,
        s.connections,
        load.as_secs_f64(),
        (2 * s.items) as f64 / load.as_secs_f64()
    ));

    // The plain Map subscriptions, one per connection.
    let token = identity_token(t, &plain_service).await?;
    let mut plain = Vec::with_capacity(plain_maps.len());
    for (m, map) in plain_maps.iter().enumerate() {
        let mut ws = open_one(&t.ws_url(&token)).await?;
        let sub = json!({ "type": "subscribe", "id": 1, "kind": "map", "object": map }).to_string();
        ws.send(Message::text(sub)).await?;
        reply(&mut ws, 1).await.with_context(|| format!("plain subscription to Map {PREFIX}{m:02}"))?;
        plain.push(ws);
    }
    // The live queries, spread over as many connections.
    let started = Instant::now();
    let live = subscribe_queries(t, &identity_token(t, &live_service).await?, s).await?;
    progress(&format!(
        "{} live queries subscribed on {} connections in {:.1} s",
        s.queries,
        live.len(),
        started.elapsed().as_secs_f64()
    ));

    let queries = s.queries;
    let lanes = [
        Lane {
            service: plain_service,
            maps: plain_maps,
            sockets: plain,
            kind: "map_item_updated",
            events_of: Box::new(|_| 1),
        },
        Lane {
            service: live_service,
            maps: live_maps,
            sockets: live,
            kind: "live_query_item_updated",
            events_of: Box::new(move |i| queries_on_team(queries, i % TEAMS)),
        },
    ];
    let before = metric(t, "ferrosync_live_query_updates_total").await;
    let meter = CpuMeter::start(t);
    let [plain, live] = alternate(t, s, lanes).await?;
    meter.report("live queries (both services, alternating)", s.quiet);
    let after = metric(t, "ferrosync_live_query_updates_total").await;
    if let (Some(b), Some(a)) = (before, after) {
        progress(&format!("the server counted {:.0} live-query updates (ferrosync_live_query_updates_total)", a - b));
    }
    let figures = Figures { load, plain, live };
    for (name, p) in [("plain Map subscriptions", &figures.plain), ("live queries", &figures.live)] {
        progress(&format!(
            "{name}: {:.0} writes/s, {} events ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            p.writes_per_s,
            p.events,
            p.events_per_s,
            super::ms(p.latency.value_at_quantile(0.5)),
            super::ms(p.latency.value_at_quantile(0.99)),
            super::ms(p.latency.max()),
        ));
    }
    progress(&format!(
        "added p99 {:.2} ms (live-query p99 − plain p99, from each write's send)",
        figures.added_p99_ms()
    ));
    progress(&format!(
        "from each write's answer: plain p50 {:.2} ms, p99 {:.2} ms; live queries p50 {:.2} ms, p99 {:.2} ms; \
         added p99 {:.2} ms",
        figures.plain.after_answer_ms(0.5),
        figures.plain.after_answer_ms(0.99),
        figures.live.after_answer_ms(0.5),
        figures.live.after_answer_ms(0.99),
        figures.added_p99_after_answer_ms(),
    ));
    Ok(figures)
}

/// A service with `connections` Maps holding `items` items between them; with `index`, the
/// index the live queries use, declared before the items are written.
async fn service_with_items(
    t: &Target,
    label: &str,
    index: bool,
    s: &Settings,
) -> anyhow::Result<(String, Vec<String>)> {
    let suffix = ferrosync_core::auth::random_hex(4);
    let service = t.post("/api/v1/services", json!({ "friendly_name": format!("bench-{label}-{suffix}") })).await?;
    let service = service["sid"].as_str().context("service sid")?.to_owned();
    let mut maps = Vec::with_capacity(s.connections);
    for m in 0..s.connections {
        let map = t
            .post(&format!("/api/v1/services/{service}/maps"), json!({ "unique_name": format!("{PREFIX}{m:02}") }))
            .await?;
        maps.push(map["sid"].as_str().context("map sid")?.to_owned());
    }
    if index {
        let r = t
            .http
            .put(format!("{}/api/v1/services/{service}/indexes/{INDEX}", t.base))
            .basic_auth(&t.sid, Some(&t.token))
            .json(&json!({ "map_prefix": PREFIX, "fields": ["data.team"] }))
            .send()
            .await?;
        if !r.status().is_success() {
            let status = r.status();
            bail!("PUT index {INDEX}: {status} {}", r.text().await.unwrap_or_default());
        }
    }
    load(t, &service, &maps, s.items).await?;
    Ok((service, maps))
}

async fn identity_token(t: &Target, service: &str) -> anyhow::Result<String> {
    let token = t.post("/api/v1/tokens", json!({ "service": service, "identity": "livequery", "ttl": 3600 })).await?;
    Ok(token["token"].as_str().context("token")?.to_owned())
}

/// Writes every item once, `IN_FLIGHT` at a time.
async fn load(t: &Target, service: &str, maps: &[String], items: usize) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(IN_FLIGHT);
    for _ in 0..IN_FLIGHT.min(items) {
        let (next, http, base) = (next.clone(), t.http.clone(), t.base.clone());
        let (sid, token, service, maps) = (t.sid.clone(), t.token.clone(), service.to_owned(), maps.to_vec());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items {
                    return Ok::<_, anyhow::Error>(());
                }
                let url = format!("{base}/api/v1/services/{service}/maps/{}/items/i{i}", maps[i % maps.len()]);
                let r = http
                    .put(&url)
                    .basic_auth(&sid, Some(&token))
                    .timeout(WAIT)
                    .json(&json!({ "data": item_data(i, 0, 0) }))
                    .send()
                    .await
                    .with_context(|| format!("loading item i{i}"))?;
                if !r.status().is_success() {
                    let status = r.status();
                    bail!("loading item i{i}: {status} {}", r.text().await.unwrap_or_default());
                }
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(())
}

/// Opens `connections` sockets and subscribes the live queries, query `q` on socket
/// `q % connections`; each answer must hold the team's items.
async fn subscribe_queries(t: &Target, token: &str, s: &Settings) -> anyhow::Result<Vec<Socket>> {
    let mut tasks = Vec::with_capacity(s.connections);
    for c in 0..s.connections {
        let (url, items, queries, connections) = (t.ws_url(token), s.items, s.queries, s.connections);
        tasks.push(tokio::spawn(async move {
            let mut ws = open_one(&url).await?;
            for (id, q) in (c..queries).step_by(connections).enumerate() {
                let id = id as u64 + 1;
                let team = q % TEAMS;
                let query = format!("data.team == \"t{team}\"");
                let frame = json!({ "type": "subscribe_query", "id": id, "index": INDEX, "query": query });
                ws.send(Message::text(frame.to_string())).await?;
                let body = reply(&mut ws, id).await.with_context(|| format!("live query `{query}`"))?;
                let got = body["items"].as_array().map(Vec::len).unwrap_or(0);
                let want = items_of_team(items, team);
                if got != want || body["query_id"].as_str().is_none() {
                    bail!("live query `{query}` answered {got} items, expected {want}: {body}");
                }
            }
            Ok::<_, anyhow::Error>(ws)
        }));
    }
    let mut sockets = Vec::with_capacity(tasks.len());
    for task in tasks {
        sockets.push(task.await??);
    }
    Ok(sockets)
}

/// Reads frames until the reply to request `id`; its body, or an error if it failed.
async fn reply(ws: &mut Socket, id: u64) -> anyhow::Result<Value> {
    let answer = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text)?;
                    if v["type"] == "reply" && v["id"] == id {
                        return Ok(v);
                    }
                }
                Some(Ok(_)) => continue,
                other => bail!("the socket closed before the reply to request {id}: {other:?}"),
            }
        }
    });
    let v = answer.await.with_context(|| format!("no reply to request {id} within {WAIT:?}"))??;
    if v["status"] != 200 {
        bail!("request {id} failed: {v}");
    }
    Ok(v["body"].clone())
}

/// One side of the comparison: a service's Maps, the sockets reading their events, the kind
/// of event a write makes there, and how many (`events_of(i)` for item `i`).
struct Lane {
    service: String,
    maps: Vec<String>,
    sockets: Vec<Socket>,
    kind: &'static str,
    events_of: Box<dyn Fn(usize) -> u64 + Send + Sync>,
}

/// The lane write `n` of an alternating load at `rate` goes to: the writes scheduled in the
/// first `SLOT` go to lane 0, the next `SLOT`'s to lane 1, and so on.
fn lane_of(n: u64, rate: f64) -> usize {
    // The write's time in whole µs, so that slot edges fall on exact multiples.
    let at = (n as f64 * 1e6 / rate).round() as u128;
    (at / SLOT.as_micros() % 2) as usize
}

/// Runs the load for twice `seconds` at `rate`, alternating between the lanes' Maps every
/// `SLOT` (so each lane is written at `rate` for `seconds` in all, and both see the server
/// and its store in the same state, stalls included), while every socket is read.
async fn alternate(t: &Target, s: &Settings, lanes: [Lane; 2]) -> anyhow::Result<[Phase; 2]> {
    let epoch = Instant::now();
    let stop = CancellationToken::new();
    let received: [Arc<AtomicU64>; 2] = Default::default();
    let mut readers: [Vec<_>; 2] = Default::default();
    let mut targets = Vec::with_capacity(2);
    for (l, lane) in lanes.into_iter().enumerate() {
        let Lane { service, maps, sockets, kind, events_of } = lane;
        for mut ws in sockets {
            let (received, stop) = (received[l].clone(), stop.clone());
            readers[l].push(tokio::spawn(async move {
                let mut hist = histogram();
                let mut arrivals = Vec::new();
                let mut last = None;
                loop {
                    let text = tokio::select! {
                        () = stop.cancelled() => break,
                        frame = ws.next() => match frame {
                            Some(Ok(Message::Text(text))) => text,
                            Some(Ok(_)) => continue,
                            other => bail!("a {kind} subscriber's socket closed: {other:?}"),
                        },
                    };
                    let now = Instant::now();
                    let Some((got, sent, w)) = stamped_event(&text)? else { continue };
                    if got != kind {
                        bail!("expected only {kind} events, got {text}");
                    }
                    let at = now.duration_since(epoch).as_micros() as u64;
                    let _ = hist.record(at.saturating_sub(sent).max(1));
                    arrivals.push((w, at));
                    received.fetch_add(1, Ordering::Relaxed);
                    last = Some(now);
                }
                let _ = ws.close(None).await;
                Ok::<_, anyhow::Error>((hist, arrivals, last))
            }));
        }
        let base = format!("{}/api/v1/services/{service}/maps", t.base);
        targets.push((base, maps, kind, events_of));
    }

    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let expected: [Arc<AtomicU64>; 2] = Default::default();
    let acknowledged: [Arc<AtomicU64>; 2] = Default::default();
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let mut rng = Rng(u64::from_str_radix(&ferrosync_core::auth::random_hex(8), 16)?);
    // When each write's answer came (µs on the generator's clock), by write number.
    let answers: Arc<Vec<AtomicU64>> =
        Arc::new((0..=due(Duration::from_secs(2 * s.seconds), s.rate)).map(|_| AtomicU64::new(0)).collect());
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let started = Instant::now();
    let length = Duration::from_secs(2 * s.seconds);
    let mut issued = 0u64;
    loop {
        tick.tick().await;
        let elapsed = started.elapsed();
        let target = due(elapsed.min(length), s.rate);
        while issued < target {
            if let Some(e) = failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
                bail!("{e}");
            }
            let permit = permits.clone().acquire_owned().await?;
            let l = lane_of(issued, s.rate);
            let (base, maps, _, events_of) = &targets[l];
            let i = (rng.next() % s.items as u64) as usize;
            let url = format!("{base}/{}/items/i{i}", maps[i % maps.len()]);
            let (http, sid, token) = (t.http.clone(), t.sid.clone(), t.token.clone());
            let (expected, acknowledged, failure) = (expected[l].clone(), acknowledged[l].clone(), failure.clone());
            let (events, answers, w) = (events_of(i), answers.clone(), issued);
            tokio::spawn(async move {
                let _permit = permit;
                let t_us = epoch.elapsed().as_micros() as u64;
                let sent = http
                    .put(&url)
                    .basic_auth(&sid, Some(&token))
                    .timeout(WAIT)
                    .json(&json!({ "data": item_data(i, w, t_us) }))
                    .send()
                    .await;
                let problem = match sent {
                    Ok(r) if r.status().is_success() => {
                        if let Some(slot) = answers.get(w as usize) {
                            slot.store(epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
                        }
                        expected.fetch_add(events, Ordering::Relaxed);
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Ok(r) => {
                        format!("update of item i{i} failed: {} {}", r.status(), r.text().await.unwrap_or_default())
                    }
                    Err(e) => format!("update of item i{i} failed: {e}"),
                };
                failure.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(problem);
            });
            issued += 1;
        }
        if elapsed >= length {
            break;
        }
    }
    // Every write answered (each holds a permit until then).
    tokio::time::timeout(WAIT, permits.acquire_many(IN_FLIGHT as u32))
        .await
        .with_context(|| format!("writes still unanswered {WAIT:?} after the load ended"))??
        .forget();
    if let Some(e) = failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
        bail!("{e}");
    }
    let ended = Instant::now();
    let expected = expected.map(|e| e.load(Ordering::Relaxed));
    let deadline = Instant::now() + WAIT;
    while (0..2).any(|l| received[l].load(Ordering::Relaxed) < expected[l]) {
        if Instant::now() > deadline || readers.iter().flatten().any(|r| r.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A moment for anything unexpected (a duplicate) to show up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    let mut phases = Vec::with_capacity(2);
    for (l, lane_readers) in readers.into_iter().enumerate() {
        let mut latency = histogram();
        let mut after_answer = Vec::new();
        let mut last = started;
        for reader in lane_readers {
            let (hist, arrivals, at) = tokio::time::timeout(Duration::from_secs(10), reader)
                .await
                .context("a subscriber did not stop within 10 s")???;
            latency.add(hist)?;
            for (w, at) in arrivals {
                let answered = answers.get(w as usize).map_or(0, |a| a.load(Ordering::Relaxed));
                if answered == 0 {
                    bail!("an event of write {w}, which was never answered");
                }
                after_answer.push(at as i64 - answered as i64);
            }
            last = last.max(at.unwrap_or(started));
        }
        after_answer.sort_unstable();
        let (events, kind) = (received[l].load(Ordering::Relaxed), targets[l].2);
        let writes = acknowledged[l].load(Ordering::Relaxed);
        if events != expected[l] {
            bail!(
                "{kind}: {events} events arrived within {WAIT:?} of the load's end for {writes} writes; expected {}",
                expected[l]
            );
        }
        // The lane's share of the load's time, and however long its deliveries ran past it.
        let written = ended.duration_since(started).as_secs_f64() / 2.0;
        let late = last.saturating_duration_since(ended).as_secs_f64();
        phases.push(Phase {
            writes_per_s: writes as f64 / written,
            events_per_s: events as f64 / (written + late),
            events,
            latency,
            after_answer,
        });
    }
    let [plain, live]: [Phase; 2] = phases.try_into().map_err(|_| anyhow::anyhow!("two lanes"))?;
    Ok([plain, live])
}

/// A counter or gauge from the server's `/metrics`, summed over its labels (0 while it has not
/// been set: counters appear with their first increment); `None` if `/metrics` cannot be read.
async fn metric(t: &Target, name: &str) -> Option<f64> {
    let text = t.http.get(format!("{}/metrics", t.base)).send().await.ok()?.text().await.ok()?;
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect();
    Some(values.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_queries_hold_every_team_once() {
        assert!((0..TEAMS).all(|team| queries_on_team(1_000, team) == 1));
        assert_eq!((0..TEAMS).map(|team| queries_on_team(100, team)).sum::<u64>(), 100);
        assert_eq!(queries_on_team(100, 99), 1);
        assert_eq!(queries_on_team(100, 100), 0);
        assert_eq!(queries_on_team(2_500, 499), 3);
        assert_eq!(queries_on_team(2_500, 500), 2);
    }

    #[test]
    fn teams_split_the_items() {
        assert!((0..TEAMS).all(|team| items_of_team(100_000, team) == 100));
        assert_eq!((0..TEAMS).map(|team| items_of_team(2_345, team)).sum::<usize>(), 2_345);
        assert_eq!(items_of_team(2_345, 344), 3);
        assert_eq!(items_of_team(2_345, 345), 2);
        // The data's team is the one counted.
        assert_eq!(item_data(1_344, 3, 7)["team"], "t344");
    }

    #[test]
    fn writes_fall_due_at_the_rate() {
        assert_eq!(due(Duration::from_millis(0), 10_000.0), 0);
        assert_eq!(due(Duration::from_micros(1_550), 10_000.0), 15);
        assert_eq!(due(Duration::from_secs(5), 10_000.0), 50_000);
    }

    #[test]
    fn the_load_alternates_between_the_lanes_every_slot() {
        // At 10,000 writes/s a slot of 10 ms holds 100 writes.
        assert_eq!(lane_of(0, 10_000.0), 0);
        assert_eq!(lane_of(99, 10_000.0), 0);
        assert_eq!(lane_of(100, 10_000.0), 1);
        assert_eq!(lane_of(199, 10_000.0), 1);
        assert_eq!(lane_of(200, 10_000.0), 0);
        // Each lane gets half of a whole number of slot pairs.
        let ones = (0..100_000).filter(|&n| lane_of(n, 10_000.0) == 1).count();
        assert_eq!(ones, 50_000);
    }

    #[test]
    fn events_are_read_with_their_send_time() {
        let live = r#"{"type":"event","event":{"type":"live_query_item_updated","query_id":"LQ1","data":{"team":"t1","n":1,"t":42,"w":5}}}"#;
        assert_eq!(stamped_event(live).expect("parses"), Some(("live_query_item_updated".into(), 42, 5)));
        let loaded = r#"{"type":"event","event":{"type":"map_item_updated","data":{"team":"t1","n":1,"t":0,"w":0}}}"#;
        assert_eq!(stamped_event(loaded).expect("parses"), None);
        assert_eq!(stamped_event(r#"{"type":"reply","id":3,"status":200}"#).expect("parses"), None);
        assert!(stamped_event(r#"{"type":"overflow","resume":[]}"#).is_err());
    }

    #[test]
    fn the_added_p99_is_the_raw_difference() {
        let (mut live, mut plain) = (histogram(), histogram());
        live.record(3_000).expect("in range");
        plain.record(5_000).expect("in range");
        let phase =
            |latency, after_answer| Phase { writes_per_s: 1.0, events_per_s: 1.0, events: 1, latency, after_answer };
        let f = Figures {
            load: Duration::ZERO,
            plain: phase(plain, vec![-500, 4_000]),
            live: phase(live, vec![-700, 1_000]),
        };
        assert!((f.added_p99_ms() - -2.0).abs() < 0.01, "{}", f.added_p99_ms());
        assert!((f.added_p99_after_answer_ms() - -3.0).abs() < 1e-9, "{}", f.added_p99_after_answer_ms());
    }

    #[test]
    fn signed_quantiles_take_the_value_at_the_rank() {
        let v: Vec<i64> = (-50..50).collect();
        assert_eq!(signed_quantile(&v, 0.5), -1);
        assert_eq!(signed_quantile(&v, 0.99), 48);
        assert_eq!(signed_quantile(&v, 1.0), 49);
        assert_eq!(signed_quantile(&v, 0.0), -50);
        assert_eq!(signed_quantile(&[], 0.99), 0);
    }

    #[test]
    fn the_generator_spreads_items() {
        let mut rng = Rng(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[(rng.next() % 10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1_200).contains(&n)), "{seen:?}");
    }
}
