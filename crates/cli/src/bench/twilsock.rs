//! Twilsock document updates: connections speaking the protocol of Twilio's `twilio-sync` JS
//! SDK (twilsock v3 frames, `init` with an access token, the document opened and subscribed
//! through the tunnel, every notification acknowledged), each subscribed to one of a few
//! documents, while one writer updates the documents round-robin through the Twilio Sync REST
//! face at a fixed rate. Measured: notifications delivered per second, and each one's latency
//! from its update's send; every subscriber must get every update of its document.

use super::target::twilio_call;
use super::{Samples, Target, histogram};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// Where the Twilio Sync REST face is mounted.
const REST: &str = "/twilio/sync/v1";
/// Where twilsock clients connect.
const WS_PATH: &str = "/twilio/twilsock/v3/wsconnect";
/// The prefix of tunnelled CDS paths (the SDK's `cdsUri`).
const CDS: &str = "/twilio/cds";
const MAGIC: &str = "TWILSOCK V3.0 ";
/// The longest one setup step (a frame's answer) may take.
const STEP: Duration = Duration::from_secs(30);
/// The longest all connections together may take to connect and subscribe.
const SETUP: Duration = Duration::from_secs(300);
/// The longest the writes may take to be answered after the last one left.
const WRITES: Duration = Duration::from_secs(60);
/// How long subscribers may take, after the last update was answered, to hold every
/// notification of their document.
const DRAIN: Duration = Duration::from_secs(30);
/// Frames a connection may receive while subscribing before the outcome must have come.
const MAX_SETUP_FRAMES: usize = 64;

#[derive(clap::Args, Debug)]
pub struct TwilsockArgs {
    /// Connections speaking the twilsock protocol of Twilio's `twilio-sync` JS SDK, each
    /// subscribed to one of --twilsock-documents documents.
    #[arg(long = "twilsock-connections", default_value_t = 1_000)]
    pub connections: usize,
    #[arg(long = "twilsock-documents", default_value_t = 10)]
    pub documents: usize,
    /// Updates made through the Twilio Sync REST face, round-robin over the documents.
    #[arg(long = "twilsock-updates", default_value_t = 300)]
    pub updates: usize,
    /// Updates per second of the twilsock phase's writer (open loop).
    #[arg(long = "twilsock-rate", default_value_t = 100.0)]
    pub rate: f64,
}

/// What the phase measured.
pub(super) struct Figures {
    /// Notifications delivered per second, from the first update's send to the last arrival.
    pub per_s: f64,
    /// From an update's send to its notification at a subscriber (µs).
    pub latency: Histogram<u64>,
}

/// A twilsock frame as the SDK writes them; the header gains `payload_size`.
fn encode(mut header: Value, payload: &str) -> Vec<u8> {
    header["payload_size"] = json!(payload.len());
    let header = header.to_string();
    format!("{MAGIC}{}\r\n{header}\r\n{payload}", header.len()).into_bytes()
}

/// A server frame's header and payload (`Null` when the payload is empty).
fn decode(bytes: &[u8]) -> anyhow::Result<(Value, Value)> {
    let rest = bytes.strip_prefix(MAGIC.as_bytes()).context("a frame without the twilsock magic")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let len: usize = std::str::from_utf8(&rest[..digits])?.parse().context("a frame's header length")?;
    let rest = rest[digits..].strip_prefix(b"\r\n").context("a frame's header length without CRLF")?;
    let header: Value = serde_json::from_slice(rest.get(..len).context("a frame shorter than its header")?)?;
    let rest = &rest[len..];
    // An empty payload may come without the separator.
    let payload = rest.strip_prefix(b"\r\n").unwrap_or(rest);
    if header["payload_size"].as_u64() != Some(payload.len() as u64) {
        bail!("payload_size {} but {} bytes follow: {header}", header["payload_size"], payload.len());
    }
    let payload = if payload.is_empty() { Value::Null } else { serde_json::from_slice(payload)? };
    Ok((header, payload))
}

/// One call of the Twilio Sync REST face with the account's credentials; its JSON answer.
async fn rest(
    http: &reqwest::Client,
    t: (&str, &str, &str),
    path: &str,
    pairs: &[(&str, &str)],
) -> anyhow::Result<Value> {
    twilio_call(http, t, reqwest::Method::POST, &format!("{REST}{path}"), pairs).await
}

/// One SDK-like twilsock connection.
struct Client {
    ws: super::Socket,
    /// The host tunnelled requests name, as the SDK's `cdsUri` does.
    host: String,
    next: u64,
}

impl Client {
    async fn connect(url: &str, host: &str) -> anyhow::Result<Self> {
        let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url))
            .await
            .context("no WebSocket handshake in 30 s")??;
        Ok(Client { ws, host: host.to_owned(), next: 0 })
    }

    /// A frame id in the SDK's `TM` + 32 hex form.
    fn id(&mut self) -> String {
        self.next += 1;
        format!("TM{:032x}", self.next)
    }

    async fn send(&mut self, header: Value, payload: &str) -> anyhow::Result<()> {
        self.ws.send(Message::binary(encode(header, payload))).await?;
        Ok(())
    }

    /// The next twilsock frame, within one step's time.
    async fn recv(&mut self) -> anyhow::Result<(Value, Value)> {
        // Bounded: pings and pongs between frames are few.
        for _ in 0..MAX_SETUP_FRAMES {
            match tokio::time::timeout(STEP, self.ws.next()).await.context("no frame in 30 s")? {
                Some(Ok(Message::Binary(b))) => return decode(&b),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => bail!("the connection ended: {other:?}"),
            }
        }
        bail!("only pings, no frame")
    }

    /// The SDK confirms every notification it receives.
    async fn ack(&mut self, id: &Value) -> anyhow::Result<()> {
        let reply = json!({ "method": "reply", "id": id, "payload_type": "application/json",
            "status": { "code": 200, "status": "OK" } });
        self.send(reply, "").await
    }

    async fn init(&mut self, token: &str) -> anyhow::Result<()> {
        let id = self.id();
        let registrations = json!([{ "product": "data_sync", "type": "ers", "notification_protocol_version": 0,
            "message_types": ["twilio.sync.event", "com.twilio.rtd.cds.document"] }]);
        let header = json!({ "id": id, "method": "init", "token": token, "continuation_token": null,
            "capabilities": ["client_update", "offline_storage", "telemetry.v1"], "registrations": registrations });
        self.send(header, "").await?;
        let (reply, _) = self.recv().await?;
        if reply["method"] != "reply" || reply["id"] != json!(id) || reply["status"]["code"] != 200 {
            bail!("init refused: {reply}");
        }
        Ok(())
    }

    /// A tunnelled CDS request; its (HTTP status, body). Notifications before the reply are
    /// acknowledged and left aside: none concern the bench before it subscribes.
    async fn cds(&mut self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<(u64, Value)> {
        let id = self.id();
        let header = json!({ "id": id, "method": "message", "active_grant": "data_sync",
            "payload_type": "application/json",
            "http_request": { "host": self.host, "path": path, "method": method, "params": {},
                "headers": { "Content-Type": "application/json" } } });
        self.send(header, &body.map(Value::to_string).unwrap_or_default()).await?;
        for _ in 0..MAX_SETUP_FRAMES {
            let (h, p) = self.recv().await?;
            match h["method"].as_str() {
                Some("reply") if h["id"] == json!(id) => {
                    if h["status"]["code"] != 200 {
                        bail!("{method} {path} refused by the transport: {h}");
                    }
                    return Ok((h["http_status"]["code"].as_u64().context("an http_status")?, p));
                }
                Some("notification") => self.ack(&h["id"]).await?,
                _ => bail!("unexpected frame while waiting for {method} {path}: {h} {p}"),
            }
        }
        bail!("no reply to {method} {path} among {MAX_SETUP_FRAMES} frames")
    }

    /// Opens the document and subscribes from the position it was read at, as the SDK's
    /// `client.document(name)` does; returns the document's SID once established.
    async fn subscribe(&mut self, name: &str) -> anyhow::Result<String> {
        let (status, doc) = self.cds("GET", &format!("{CDS}/v3/Documents/{name}"), None).await?;
        if status != 200 {
            bail!("GET document {name}: {status} {doc}");
        }
        let sid = doc["sid"].as_str().context("a document sid")?.to_owned();
        let poke = json!({ "event_protocol_version": 4, "action": "establish", "correlation_id": self.next,
            "retried_requests": 0, "ttl_in_s": -1,
            "requests": [{ "object_sid": sid, "object_type": "document", "last_event_id": doc["last_event_id"] }] });
        let (status, ack) = self.cds("POST", &format!("{CDS}/v4/Subscriptions"), Some(&poke)).await?;
        if status != 200 {
            bail!("subscriptions poke: {status} {ack}");
        }
        for _ in 0..MAX_SETUP_FRAMES {
            let (h, p) = self.recv().await?;
            if h["method"] != "notification" {
                continue;
            }
            self.ack(&h["id"]).await?;
            let of_ours = p["event"]["object_sid"] == json!(sid);
            match p["event_type"].as_str() {
                Some("subscription_established") if of_ours => return Ok(sid),
                Some("subscription_failed") if of_ours => bail!("subscription refused: {p}"),
                _ => {}
            }
        }
        bail!("no subscription outcome among {MAX_SETUP_FRAMES} frames")
    }

    /// Reads notifications until every one of the `expected` updates of `doc` has come, each
    /// timed from the send time it carries; a duplicate is an error. Bounded by the caller.
    async fn receive(
        mut self,
        doc: &str,
        expected: usize,
        updates: usize,
        epoch: Instant,
        delivered: &AtomicU64,
    ) -> anyhow::Result<(Samples, Instant)> {
        let mut latency = Samples::default();
        let mut seen = vec![false; updates];
        let mut got = 0;
        let mut last = Instant::now();
        while got < expected {
            let bytes = match self.ws.next().await {
                Some(Ok(Message::Binary(b))) => b,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => bail!("a subscriber's connection ended after {got} of {expected} updates: {other:?}"),
            };
            // Timed on arrival, before any parsing.
            let now = epoch.elapsed().as_micros() as u64;
            let (h, p) = decode(&bytes)?;
            match h["method"].as_str() {
                Some("notification") => self.ack(&h["id"]).await?,
                Some("close") => bail!("the server closed a subscriber after {got} of {expected} updates: {h}"),
                _ => continue,
            }
            let event = &p["event"];
            if p["event_type"] != "document_updated" || event["document_sid"] != doc {
                continue;
            }
            let data = &event["document_data"];
            let (Some(i), Some(sent)) = (data["i"].as_u64(), data["t"].as_u64()) else {
                bail!("an update without its index and send time: {p}");
            };
            let slot = seen.get_mut(i as usize).context("an update index out of range")?;
            if std::mem::replace(slot, true) {
                bail!("update {i} was delivered twice to one subscriber");
            }
            latency.record(now.saturating_sub(sent));
            got += 1;
            last = Instant::now();
            delivered.fetch_add(1, Ordering::Relaxed);
        }
        Ok((latency, last))
    }
}

/// Connects, authenticates and subscribes one client, retrying briefly: a burst of connects
/// can overrun the listen backlog.
async fn open(url: &str, host: &str, token: &str, name: &str) -> anyhow::Result<(Client, String)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let tried = async {
            let mut c = Client::connect(url, host).await?;
            c.init(token).await?;
            let sid = c.subscribe(name).await?;
            Ok::<_, anyhow::Error>((c, sid))
        };
        match tried.await {
            Ok(opened) => return Ok(opened),
            Err(e) if attempt >= 3 => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100 * attempt)).await,
        }
    }
}

pub(super) async fn run(t: &Target, service: &str, s: &TwilsockArgs, quiet: bool) -> anyhow::Result<Figures> {
    let documents = s.documents.max(1);
    let auth = (t.base.as_str(), t.sid.as_str(), t.token.as_str());
    let (mut names, mut sids) = (Vec::with_capacity(documents), Vec::with_capacity(documents));
    for d in 0..documents {
        let name = format!("twilsock{d}");
        let doc =
            rest(&t.http, auth, &format!("/Services/{service}/Documents"), &[("UniqueName", &name), ("Data", "{}")])
                .await?;
        sids.push(doc["sid"].as_str().context("a document sid")?.to_owned());
        names.push(name);
    }
    // One identity per connection, as one user per app instance.
    let mut tokens = Vec::with_capacity(s.connections);
    for i in 0..s.connections {
        let minted =
            t.post("/api/v1/tokens", json!({ "service": service, "identity": format!("twilsock{i}"), "ttl": 3600 }));
        tokens.push(minted.await?["token"].as_str().context("token")?.to_owned());
    }

    let setup_started = Instant::now();
    let url = format!("{}{WS_PATH}", t.base.replacen("http", "ws", 1));
    let host = t.base.trim_start_matches("http://").to_owned();
    let limit = Arc::new(Semaphore::new(256));
    let mut setup = JoinSet::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let (url, host, limit, name) = (url.clone(), host.clone(), limit.clone(), names[i % documents].clone());
        setup.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let (client, sid) = open(&url, &host, &token, &name).await?;
            Ok::<_, anyhow::Error>((i % documents, client, sid))
        });
    }
    let mut clients = Vec::with_capacity(s.connections);
    let all = async {
        while let Some(done) = setup.join_next().await {
            clients.push(done??);
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::time::timeout(SETUP, all).await.context("the twilsock clients did not all subscribe within 300 s")??;
    if !quiet {
        eprintln!(
            "bench: twilsock: {} connections initialised and subscribed in {:.1} s",
            clients.len(),
            setup_started.elapsed().as_secs_f64()
        );
    }

    // Round-robin: update i goes to document i % documents.
    let per_doc = |d: usize| s.updates / documents + usize::from(d < s.updates % documents);
    let expected: u64 = clients.iter().map(|(d, _, _)| per_doc(*d) as u64).sum();
    let epoch = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let mut readers = JoinSet::new();
    for (d, client, sid) in clients {
        if sid != sids[d] {
            bail!("document {} opened as {sid}, created as {}", names[d], sids[d]);
        }
        let (delivered, wanted, updates) = (delivered.clone(), per_doc(d), s.updates);
        readers.spawn(async move { client.receive(&sid, wanted, updates, epoch, &delivered).await });
    }

    let started = Instant::now();
    // Open loop: updates leave on schedule whether or not earlier ones were answered, as
    // independent app servers would send them.
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / s.rate.max(0.1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut writes = JoinSet::new();
    for i in 0..s.updates {
        tick.tick().await;
        let d = i % documents;
        let path = format!("/Services/{service}/Documents/{}", sids[d]);
        let (http, base, sid, token) = (t.http.clone(), t.base.clone(), t.sid.clone(), t.token.clone());
        let t_us = epoch.elapsed().as_micros() as u64;
        writes.spawn(async move {
            let data = json!({ "t": t_us, "i": i }).to_string();
            rest(&http, (&base, &sid, &token), &path, &[("Data", &data)]).await.map(drop)
        });
    }
    let answered = async {
        while let Some(done) = writes.join_next().await {
            done??;
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::time::timeout(WRITES, answered).await.context("the updates were not all answered within 60 s")??;

    let mut latency = histogram();
    let mut last = started;
    let drained = async {
        while let Some(done) = readers.join_next().await {
            let (h, at) = done??;
            h.add_to(&mut latency);
            last = last.max(at);
        }
        Ok::<_, anyhow::Error>(())
    };
    // Dropping the readers' set on a timeout ends those still waiting.
    tokio::time::timeout(DRAIN, drained).await.with_context(|| {
        format!(
            "twilsock: only {} of {expected} notifications within 30 s of the last update",
            delivered.load(Ordering::Relaxed)
        )
    })??;
    let got = delivered.load(Ordering::Relaxed);
    if got != expected {
        bail!("twilsock: {got} notifications delivered, expected {expected}");
    }
    let elapsed = last.duration_since(started).as_secs_f64();
    let per_s = if elapsed > 0.0 { got as f64 / elapsed } else { 0.0 };
    Ok(Figures { per_s, latency })
}
