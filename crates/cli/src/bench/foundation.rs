//! The foundation's phases: conditional updates over HTTP, idle WebSockets and their memory,
//! fan-out to subscribers, long-poll wake; and the raw frame readers that let one generator
//! count what thousands of sockets receive.

use super::target::{RunClock, RunCpu};
use super::{Samples, Target, histogram};
use anyhow::{Context, bail};
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// How a phase sends its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// `PUT` with `If-Match` on a kept-alive HTTP/1.1 connection.
    Http,
    /// `update` frames on the native WebSocket (with `if_match` when conditional), as the SDK
    /// sends them.
    WebSocket,
    /// Every writer's `update` frames on one native WebSocket, as one app process sends them:
    /// each writer still has one write in flight, and replies are matched by id.
    OneWebSocket,
}

/// `writers` clients, each rewriting its own document with the revision it last saw, one
/// write in flight each, for `seconds`: writes per second and their latencies (µs).
pub(super) async fn conditional_updates(
    t: &Target,
    service: &str,
    writers: usize,
    seconds: u64,
    transport: Transport,
) -> anyhow::Result<(f64, Histogram<u64>)> {
    let mut docs = Vec::new();
    for i in 0..writers {
        let d = t
            .post(
                &format!("/api/v1/services/{service}/documents"),
                json!({ "unique_name": format!("w{i}"), "data": {} }),
            )
            .await?;
        docs.push(d["sid"].as_str().context("doc sid")?.to_owned());
    }
    let ws_url = match transport {
        Transport::Http => None,
        Transport::WebSocket | Transport::OneWebSocket => Some(writer_ws_url(t, service).await?),
    };
    if let (Transport::OneWebSocket, Some(url)) = (transport, &ws_url) {
        return one_socket(url, docs, seconds).await;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for doc in docs {
        let writer = match &ws_url {
            None => Writer::Http {
                http: t.http.clone(),
                url: format!("{}/api/v1/services/{service}/documents/{doc}", t.base),
                sid: t.sid.clone(),
                token: t.token.clone(),
            },
            Some(url) => Writer::WebSocket { ws: Box::new(open_one(url).await?), doc },
        };
        tasks.push(tokio::spawn(writer.run(deadline)));
    }
    let mut total = 0;
    let mut hist = histogram();
    for task in tasks {
        let (n, h) = task.await??;
        total += n;
        hist.add(h)?;
    }
    Ok((total as f64 / started.elapsed().as_secs_f64(), hist))
}

/// One socket carrying every writer of `docs`: each rewrites its document with the revision
/// it last saw, one write in flight each, for `seconds`.
async fn one_socket(url: &str, docs: Vec<String>, seconds: u64) -> anyhow::Result<(f64, Histogram<u64>)> {
    struct Lane {
        doc: String,
        revision: u64,
        sent: Instant,
    }
    let frame = |id: u64, lane: &Lane| {
        let n = id / docs.len().max(1) as u64;
        Message::text(
            json!({ "type": "update", "id": id, "kind": "document", "object": lane.doc, "data": { "n": n }, "if_match": lane.revision, "return": "minimal" })
                .to_string(),
        )
    };
    let mut ws = open_one(url).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut lanes: Vec<Lane> = docs.iter().map(|d| Lane { doc: d.clone(), revision: 0, sent: started }).collect();
    // Request ids count up per lane: id % lanes is the lane.
    let width = lanes.len() as u64;
    for (i, lane) in lanes.iter_mut().enumerate() {
        lane.sent = Instant::now();
        ws.feed(frame(i as u64, lane)).await?;
    }
    ws.flush().await?;
    let (mut done, mut in_flight, mut hist) = (0u64, lanes.len(), histogram());
    while in_flight > 0 {
        let v = tokio::time::timeout(Duration::from_secs(30), next_of_type(&mut ws, "reply")).await??;
        let id = v["id"].as_u64().context("reply id")?;
        if v["status"].as_u64() != Some(200) {
            bail!("conditional update failed: {v}");
        }
        let lane = &mut lanes[(id % width) as usize];
        let _ = hist.record(lane.sent.elapsed().as_micros() as u64);
        lane.revision = v["body"]["revision"].as_u64().context("revision")?;
        done += 1;
        if Instant::now() < deadline {
            lane.sent = Instant::now();
            ws.send(frame(id + width, lane)).await?;
        } else {
            in_flight -= 1;
        }
    }
    Ok((done as f64 / started.elapsed().as_secs_f64(), hist))
}

/// The next native frame of type `kind` (`reply`, `event`) a connection brings; other frames
/// are passed over.
pub(super) async fn next_of_type<S>(frames: &mut S, kind: &str) -> anyhow::Result<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let text = match frames.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            other => bail!("the connection ended while waiting for a {kind}: {other:?}"),
        };
        let v: Value = serde_json::from_str(&text)?;
        if v["type"] == kind {
            return Ok(v);
        }
    }
}

enum Writer {
    Http { http: reqwest::Client, url: String, sid: String, token: String },
    WebSocket { ws: Box<Socket>, doc: String },
}

impl Writer {
    async fn run(mut self, deadline: Instant) -> anyhow::Result<(u64, Histogram<u64>)> {
        let mut hist = histogram();
        let mut revision = 0u64;
        let mut n = 0u64;
        while Instant::now() < deadline {
            let t0 = Instant::now();
            revision = self.update(n, revision).await?;
            let _ = hist.record(t0.elapsed().as_micros() as u64);
            n += 1;
        }
        Ok((n, hist))
    }

    /// One conditional write of `{"n": n}` expecting `revision`; the new revision.
    async fn update(&mut self, n: u64, revision: u64) -> anyhow::Result<u64> {
        match self {
            Writer::Http { http, url, sid, token } => {
                let r = http
                    .put(url.as_str())
                    .basic_auth(sid.as_str(), Some(token.as_str()))
                    .header("If-Match", revision.to_string())
                    // As NATS's acknowledgement, the answer carries the new revision alone.
                    .header("Prefer", "return=minimal")
                    .json(&json!({ "data": { "n": n } }))
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("conditional update failed: {}", r.status());
                }
                let etag = r.headers().get("etag").and_then(|v| v.to_str().ok());
                etag.and_then(|v| v.parse().ok()).context("the answer's ETag, the new revision")
            }
            Writer::WebSocket { ws, doc } => {
                let frame = json!({
                    "type": "update", "id": n, "kind": "document", "object": doc,
                    "data": { "n": n }, "if_match": revision, "return": "minimal",
                });
                ws.send(Message::text(frame.to_string())).await?;
                loop {
                    let v = next_of_type(ws, "reply").await?;
                    if v["id"].as_u64() != Some(n) {
                        continue;
                    }
                    if v["status"].as_u64() != Some(200) {
                        bail!("conditional update failed: {v}");
                    }
                    return v["body"]["revision"].as_u64().context("revision");
                }
            }
        }
    }
}

pub(super) type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `n` authenticated WebSockets; returns them and the server's memory growth per socket.
pub(super) async fn open_idle(t: &Target, token: &str, n: usize) -> anyhow::Result<(Vec<Socket>, Option<f64>)> {
    let url = t.ws_url(token);
    open_measured(t.pid, n, || open_one(&url)).await
}

/// Makes `n` connections with `open` (256 at a time) and returns them with the anonymous memory
/// server `pid` gained for each. A twentieth is made first and not charged, so that one-time
/// allocations (thread stacks, pools, caches) do not count as per-connection costs.
pub(super) async fn open_measured<C, F, Fut>(
    pid: Option<u32>,
    n: usize,
    open: F,
) -> anyhow::Result<(Vec<C>, Option<f64>)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<C>>,
{
    let anon = || pid.and_then(|pid| super::target::status_bytes(pid, "RssAnon:"));
    let warm = (n / 20).max(1).min(n);
    let mut held = open_many(&open, warm).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = anon();
    held.extend(open_many(&open, n - warm).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per = match (before, anon()) {
        (Some(b), Some(a)) if n > warm => Some(a.saturating_sub(b) as f64 / (n - warm) as f64),
        _ => None,
    };
    Ok((held, per))
}

async fn open_many<C, F, Fut>(open: &F, count: usize) -> anyhow::Result<Vec<C>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<C>>,
{
    futures_util::stream::iter(0..count)
        .map(|_| async {
            // A burst of connects can overrun the listen backlog; try again, briefly.
            let mut attempt = 0;
            loop {
                attempt += 1;
                match open().await {
                    Ok(c) => return Ok(c),
                    Err(e) if attempt >= 3 => return Err(e),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100 * attempt)).await,
                }
            }
        })
        .buffer_unordered(256)
        .try_collect()
        .await
}

pub(super) async fn open_one(url: &str) -> anyhow::Result<Socket> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    match tokio::time::timeout(Duration::from_secs(30), ws.next()).await? {
        Some(Ok(Message::Text(t))) if t.contains("\"connected\"") => Ok(ws),
        other => bail!("unexpected first frame {other:?}"),
    }
}

/// Subscribes `ws` to document `doc` and waits for the server's reply.
pub(super) async fn subscribe_document(ws: &mut Socket, doc: &str) -> anyhow::Result<()> {
    let sub = json!({ "type": "subscribe", "id": 1, "kind": "document", "object": doc }).to_string();
    ws.send(Message::text(sub)).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if text.contains("\"reply\"") => return Ok(()),
            Some(Ok(_)) => continue,
            other => bail!("subscription failed: {other:?}"),
        }
    }
}

/// Subscribes `sockets` to a new document, writes `updates` to it at `rate` and waits until
/// every subscriber has every event. Returns deliveries per second from the first update to
/// the last delivery, the sampled latencies, and the CPU time over that same span.
pub(super) async fn fanout(
    t: &Target,
    service: &str,
    sockets: Vec<Socket>,
    updates: usize,
    rate: f64,
    transport: Transport,
) -> anyhow::Result<(f64, Histogram<u64>, RunCpu)> {
    let doc = t
        .post(&format!("/api/v1/services/{service}/documents"), json!({ "unique_name": "fanout", "data": {} }))
        .await?;
    let doc = doc["sid"].as_str().context("doc sid")?.to_owned();
    let subscribers = sockets.len();
    let epoch = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let hist = Arc::new(Mutex::new(histogram()));
    let ready = Arc::new(Semaphore::new(0));
    let mut readers = Vec::with_capacity(subscribers);
    for (i, mut ws) in sockets.into_iter().enumerate() {
        let (doc, delivered, hist, ready) = (doc.clone(), delivered.clone(), hist.clone(), ready.clone());
        // Every 20th subscriber reads the timestamp; the rest only count, to spare the generator.
        let sampled = i % 20 == 0;
        readers.push(tokio::spawn(async move {
            subscribe_document(&mut ws, &doc).await?;
            ready.add_permits(1);
            // From here on frames are counted straight off the socket: a full WebSocket client
            // per subscriber would make the generator, not the server, the bottleneck.
            let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.into_inner() else {
                bail!("the bench speaks plain ws:// only");
            };
            let mut tcp = tcp;
            let local = count_events(&mut tcp, updates, sampled, epoch, &delivered).await?;
            local.add_to(&mut *hist.lock().await);
            // The socket is handed back rather than closed: a subscriber that finished early
            // must not make the server tear down its connection while others still wait.
            Ok::<_, anyhow::Error>((Instant::now(), tcp))
        }));
    }
    tokio::time::timeout(Duration::from_secs(120), ready.acquire_many(subscribers as u32))
        .await
        .context("subscribers did not all subscribe within 120 s")??
        .forget();
    // The server's CPU is read over the part the rate is, from the first update to the last
    // delivery: the subscriptions before it are not the fan-out's cost (nor are Redis's).
    let cpu = RunClock::start(t.pid);
    let started = Instant::now();
    let writer = Updates { t, service, doc: &doc, count: updates, rate, epoch };
    match transport {
        Transport::Http => writer.over_http().await?,
        Transport::WebSocket | Transport::OneWebSocket => writer.over_websocket().await?,
    }
    let expected = (subscribers * updates) as u64;
    let mut finished = Vec::with_capacity(readers.len());
    let wait = async {
        let mut last = started;
        for reader in readers {
            let (done, tcp) = reader.await??;
            last = last.max(done);
            finished.push(tcp);
        }
        Ok::<_, anyhow::Error>(last)
    };
    let last = tokio::time::timeout(Duration::from_secs(300), wait).await.with_context(|| {
        format!("only {} of {expected} deliveries within 300 s", delivered.load(Ordering::Relaxed))
    })??;
    let cpu = cpu.used();
    drop(finished);
    let elapsed = last.duration_since(started).as_secs_f64();
    let got = delivered.load(Ordering::Relaxed);
    if got != expected {
        bail!("fan-out delivered {got} events, expected {expected}");
    }
    let hist = hist.lock().await.clone();
    Ok((got as f64 / elapsed, hist, cpu))
}

/// The native WebSocket URL of a writer: identity `bench-writer`, on `service`.
async fn writer_ws_url(t: &Target, service: &str) -> anyhow::Result<String> {
    let token =
        t.post("/api/v1/tokens", json!({ "service": service, "identity": "bench-writer", "ttl": 3600 })).await?;
    Ok(t.ws_url(token["token"].as_str().context("token")?))
}

/// Updates leave on schedule whether or not earlier ones were acknowledged (open loop), as
/// independent app servers would send them.
fn pace(rate: f64) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    tick
}

/// A fan-out phase's writer: `count` updates of document `doc`, sent on schedule at `rate`
/// per second, each stamped with its send time (µs since `epoch`).
struct Updates<'a> {
    t: &'a Target,
    service: &'a str,
    doc: &'a str,
    count: usize,
    rate: f64,
    epoch: Instant,
}

impl Updates<'_> {
    /// Each update a `PUT` of its own.
    async fn over_http(&self) -> anyhow::Result<()> {
        let (t, service, doc, epoch) = (self.t, self.service, self.doc, self.epoch);
        let url = format!("{}/api/v1/services/{service}/documents/{doc}", t.base);
        let mut tick = pace(self.rate);
        let mut writes = Vec::with_capacity(self.count);
        for i in 0..self.count {
            tick.tick().await;
            let (http, url, sid, token) = (t.http.clone(), url.clone(), t.sid.clone(), t.token.clone());
            let t_us = epoch.elapsed().as_micros() as u64;
            writes.push(tokio::spawn(async move {
                let data = json!({ "data": { "t": t_us, "i": i } });
                // Answered with its revision alone, as Redis answers a PUBLISH with a count.
                let r = http.put(&url).basic_auth(&sid, Some(&token)).header("Prefer", "return=minimal");
                let r = r.json(&data).send().await?;
                if !r.status().is_success() {
                    bail!("fan-out update failed: {}", r.status());
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        for w in writes {
            w.await??;
        }
        Ok(())
    }

    /// `update` frames on one native WebSocket (a kept connection, as NATS clients write);
    /// returns once every one is answered.
    async fn over_websocket(&self) -> anyhow::Result<()> {
        let (count, epoch) = (self.count, self.epoch);
        let ws = open_one(&writer_ws_url(self.t, self.service).await?).await?;
        let (mut frames, mut replies) = ws.split();
        let answered = tokio::spawn(async move {
            let mut answered = 0;
            while answered < count {
                let v = next_of_type(&mut replies, "reply").await?;
                if v["status"].as_u64() != Some(200) {
                    bail!("fan-out update failed: {v}");
                }
                answered += 1;
            }
            Ok(())
        });
        let mut tick = pace(self.rate);
        for i in 0..count {
            tick.tick().await;
            let t_us = epoch.elapsed().as_micros() as u64;
            let frame = json!({
                "type": "update", "id": i, "kind": "document", "object": self.doc, "data": { "t": t_us, "i": i },
                "return": "minimal",
            });
            frames.send(Message::text(frame.to_string())).await?;
        }
        tokio::time::timeout(Duration::from_secs(300), answered)
            .await
            .context("the writer's updates were not all answered within 300 s")???;
        Ok(())
    }
}

pub(super) async fn longpoll_wake(t: &Target, service: &str, polls: usize) -> anyhow::Result<Histogram<u64>> {
    let doc =
        t.post(&format!("/api/v1/services/{service}/documents"), json!({ "unique_name": "wake", "data": {} })).await?;
    let doc = doc["sid"].as_str().context("doc sid")?.to_owned();
    let mut hist = histogram();
    for round in 0..3 {
        let head: Value = t
            .http
            .get(format!("{}/api/v1/services/{service}/changes", t.base))
            .basic_auth(&t.sid, Some(&t.token))
            .send()
            .await?
            .json()
            .await?;
        let since = head["next"].as_str().context("head token")?.to_owned();
        let mut tasks = Vec::with_capacity(polls);
        let host = t.base.trim_start_matches("http://").to_owned();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", t.sid, t.token));
        let request = format!(
            "GET /api/v1/services/{service}/changes?since={since}&timeout=30&object={doc} HTTP/1.1\r\n\
             Host: {host}\r\nAuthorization: Basic {auth}\r\n\r\n"
        );
        for _ in 0..polls {
            let (host, request) = (host.clone(), request.clone());
            // A raw HTTP/1.1 request: the answer is timed at its first byte, so a thousand
            // answers are not queued behind a full client's per-response work.
            tasks.push(tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut tcp = tokio::net::TcpStream::connect(&host).await?;
                tcp.set_nodelay(true)?;
                tcp.write_all(request.as_bytes()).await?;
                let mut response = Vec::with_capacity(4096);
                if tcp.read_buf(&mut response).await? == 0 {
                    bail!("a long-poll was closed without an answer");
                }
                let at = Instant::now();
                // Keep-alive, as real pollers use it: read until the whole body is in.
                while !complete_response(&response) {
                    if tcp.read_buf(&mut response).await? == 0 {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&response);
                if !text.starts_with("HTTP/1.1 200") || !text.contains("\"document_updated\"") {
                    bail!("a long-poll returned without the event: {text}");
                }
                Ok::<_, anyhow::Error>(at)
            }));
        }
        wait_for_polls(t, polls).await?;
        let t0 = Instant::now();
        let r = t
            .http
            .put(format!("{}/api/v1/services/{service}/documents/{doc}", t.base))
            .basic_auth(&t.sid, Some(&t.token))
            .json(&json!({ "data": { "round": round } }))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("long-poll write failed: {}", r.status());
        }
        for task in tasks {
            let at = task.await??;
            let _ = hist.record(at.saturating_duration_since(t0).as_micros().max(1) as u64);
        }
    }
    Ok(hist)
}

/// Waits (bounded) until the server reports `n` long-polls in flight.
pub(super) async fn wait_for_polls(t: &Target, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = t.http.get(format!("{}/metrics", t.base)).send().await?.text().await?;
        let waiting = text
            .lines()
            .find(|l| l.starts_with("ferrosync_longpolls_waiting"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if waiting as usize >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {waiting} of {n} long-polls were waiting after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads unmasked server frames from a raw socket, counting event frames until `updates` have
/// arrived; sampled subscribers also record each event's end-to-end latency.
pub(super) async fn count_events(
    tcp: &mut tokio::net::TcpStream,
    updates: usize,
    sampled: bool,
    epoch: Instant,
    delivered: &AtomicU64,
) -> anyhow::Result<Samples> {
    use tokio::io::AsyncReadExt;
    let mut local = Samples::default();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut seen = 0;
    while seen < updates {
        if tcp.read_buf(&mut buf).await? == 0 {
            bail!("the server closed the connection after {seen} of {updates} events");
        }
        let mut at = 0;
        while let Some((opcode, payload, next)) = next_frame(&buf[at..]) {
            if opcode == 1 && payload.starts_with(b"{\"type\":\"event\"") {
                seen += 1;
                delivered.fetch_add(1, Ordering::Relaxed);
                if sampled && let Some(sent) = sent_at(payload)? {
                    let now = epoch.elapsed().as_micros() as u64;
                    local.record(now.saturating_sub(sent));
                }
            }
            at += next;
        }
        buf.drain(..at);
    }
    Ok(local)
}

/// The send time an update of the bench stamped on its data (`{"t": µs}`), read from an event
/// frame as a client with its own types would: the whole frame is parsed, but only that field
/// kept. A tree of the frame (`Value`) costs the generator about four times as much (1.5
/// against 0.4 µs a frame), which at 10,000 subscribers is its time, not the server's.
pub(super) fn sent_at(frame: &[u8]) -> serde_json::Result<Option<u64>> {
    #[derive(serde::Deserialize)]
    struct Frame {
        event: Stamped,
    }
    #[derive(serde::Deserialize)]
    struct Stamped {
        data: Option<Stamp>,
    }
    #[derive(serde::Deserialize)]
    struct Stamp {
        t: Option<u64>,
    }
    let frame: Frame = serde_json::from_slice(frame)?;
    Ok(frame.event.data.and_then(|d| d.t))
}

/// One complete frame at the start of `buf`: (opcode, payload, bytes consumed).
pub(super) fn next_frame(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (len, mut header) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    if b1 & 0x80 != 0 {
        header += 4;
    }
    let payload = buf.get(header..header + len)?;
    Some((b0 & 0x0f, payload, header + len))
}

/// True once `buf` holds a whole HTTP/1.1 response with a Content-Length body.
pub(super) fn complete_response(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    buf.len() >= end + 4 + length
}

#[cfg(test)]
mod tests {
    use super::{next_frame, sent_at};

    #[test]
    fn a_stamp_is_read_from_an_event_frame_and_its_absence_is_none() {
        let event = br#"{"type":"event","event":{"seq":2,"token":"MS4","data":{"t":123456789,"n":[1,{"t":5}]},"previous_data":{"t":7},"date":"2026-12-07T08:55:37.806Z"}}"#;
        assert_eq!(sent_at(event).ok(), Some(Some(123_456_789)));
        let removed = br#"{"type":"event","event":{"seq":3,"data":null,"previous_data":{"t":7}}}"#;
        assert_eq!(sent_at(removed).ok(), Some(None));
        let unstamped = br#"{"type":"event","event":{"seq":4,"data":{"n":1}}}"#;
        assert_eq!(sent_at(unstamped).ok(), Some(None));
        assert!(sent_at(br#"{"type":"event","event":{"data":{"t":1}}"#).is_err(), "a cut frame is an error");
    }

    #[test]
    fn a_frame_is_read_only_when_whole() {
        // A text frame of 130 bytes: a 16-bit length after the marker 126.
        let payload = [b'x'; 130];
        let mut frame = vec![0x81, 126, 0, 130];
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(&[0x89, 0]); // and an empty ping after it
        let (opcode, read, used) = next_frame(&frame).expect("a whole frame");
        assert_eq!((opcode, read.len(), used), (1, 130, 134));
        assert_eq!(next_frame(&frame[used..]).map(|(o, p, n)| (o, p.len(), n)), Some((9, 0, 2)));
        for cut in 0..used {
            assert!(next_frame(&frame[..cut]).is_none(), "cut at {cut}");
        }
    }
}
