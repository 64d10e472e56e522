//! The Matrix phase of `ferrosync bench`: users in small rooms, set up through the
//! Client-Server API, then two `/sync` figures — an incremental sync after one new message in
//! the user's room, and the wake of long-polling syncs by a message send, timed for every
//! member of the room.

use super::{CpuMeter, Target, histogram};
use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Requests in flight during setup: registration hashes a password with Argon2 on the server's
/// blocking pool, so more would only queue there.
const SETUP_PARALLELISM: usize = 16;
/// Rounds of one message per room followed by one incremental sync per user.
const INCREMENTAL_ROUNDS: usize = 3;
/// The `timeout` of a long-poll, in milliseconds.
const POLL_TIMEOUT_MS: u64 = 30_000;
/// Each send is timed against a quiet server: not before the server has used less than
/// [`QUIET_CPU`] CPU-seconds over one [`QUIET_WINDOW`], so the previous send's wake-ups and the
/// re-polls they cause are over. Without the server's pid, a fixed [`QUIET_WINDOW`] pause.
const QUIET_WINDOW: Duration = Duration::from_millis(100);
const QUIET_CPU: f64 = 0.015;
/// The longest the bench waits for the server to quieten before a send.
const QUIET_LIMIT: Duration = Duration::from_secs(10);
/// No single request of the phase may take longer than this.
const REQUEST_LIMIT: Duration = Duration::from_secs(60);
/// The long-poll part of the phase ends by then, whatever happens.
const WAKE_PHASE_LIMIT: Duration = Duration::from_secs(900);

/// What the phase measured.
pub(super) struct Figures {
    /// Incremental `/sync?timeout=0` round trips, each covering one new message.
    pub incremental: Histogram<u64>,
    /// From a send's start to a waiting member's `/sync` answer holding the message.
    pub wake: Histogram<u64>,
    /// Registration, rooms, joins and first syncs.
    pub setup: Duration,
}

/// One user: its access token, its room (index into the rooms) and its sync position.
struct User {
    token: String,
    room: usize,
    since: String,
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// One Client-Server API call with the user's access token; the JSON answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base)).timeout(REQUEST_LIMIT);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.with_context(|| format!("{method} {path}"))?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path}: {status} {v}");
        }
        Ok(v)
    }

    /// A `/sync` from `since`, read to the end of its body.
    async fn sync(&self, token: &str, since: Option<&str>, timeout_ms: u64) -> anyhow::Result<Value> {
        let mut url = format!("{}/_matrix/client/v3/sync?timeout={timeout_ms}", self.base);
        if let Some(since) = since {
            url.push_str("&since=");
            url.push_str(&encode(since));
        }
        let limit = REQUEST_LIMIT + Duration::from_millis(timeout_ms);
        let r = self.http.get(url).bearer_auth(token).timeout(limit).send().await.context("GET /sync")?;
        let status = r.status();
        let body = r.bytes().await.context("GET /sync body")?;
        if !status.is_success() {
            bail!("GET /sync: {status} {}", String::from_utf8_lossy(&body));
        }
        Ok(serde_json::from_slice(&body)?)
    }
}

/// Percent-encodes everything but unreserved characters (room ids hold `!` and `:`).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The bodies of the timeline messages of `room` in a sync answer.
fn bodies<'a>(answer: &'a Value, room: &str) -> impl Iterator<Item = &'a str> {
    answer["rooms"]["join"][room]["timeline"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["content"]["body"].as_str())
}

fn next_batch(answer: &Value) -> anyhow::Result<String> {
    Ok(answer["next_batch"].as_str().context("a sync answer without next_batch")?.to_owned())
}

/// Runs `f(0..n)` with at most [`SETUP_PARALLELISM`] in flight; results in order.
async fn bounded<T, F, Fut>(n: usize, f: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    stream::iter(0..n).map(f).buffered(SETUP_PARALLELISM).try_collect().await
}

/// `users` users in rooms of `room_size` (each user in one room), `sends` timed sends while
/// every user long-polls.
pub(super) async fn matrix(
    t: &Target,
    users: usize,
    room_size: usize,
    sends: usize,
    quiet: bool,
) -> anyhow::Result<Figures> {
    let progress = |msg: String| {
        if !quiet {
            eprintln!("bench: {msg}");
        }
    };
    let room_size = room_size.max(1);
    let users = users.max(room_size);
    let rooms = users.div_ceil(room_size);
    let client = Client { http: t.http.clone(), base: t.base.clone() };
    let members = |room: usize| room * room_size..((room + 1) * room_size).min(users);

    let setup_started = Instant::now();
    let meter = CpuMeter::start(t);
    // A fresh prefix per run, so a --url server can be benched more than once.
    let prefix = format!("bench{}", ferrosync_core::auth::random_hex(3));
    let tokens = bounded(users, |i| {
        let (client, username) = (client.clone(), format!("{prefix}_{i}"));
        async move {
            let body =
                json!({ "username": username, "password": "bench-password", "auth": { "type": "m.login.dummy" } });
            let v = client
                .call(Method::POST, "/_matrix/client/v3/register", None, Some(body))
                .await
                .context("Matrix registration failed (a --url server needs `--matrix-registration open`)")?;
            Ok(v["access_token"].as_str().context("registration without an access token")?.to_owned())
        }
    })
    .await?;
    progress(format!("Matrix setup: {users} users registered in {:.1} s", setup_started.elapsed().as_secs_f64()));
    let room_ids = bounded(rooms, |room| {
        let (client, token) = (client.clone(), tokens[members(room).start].clone());
        async move {
            let body = json!({ "preset": "public_chat" });
            let v = client.call(Method::POST, "/_matrix/client/v3/createRoom", Some(&token), Some(body)).await?;
            Ok(v["room_id"].as_str().context("createRoom without a room_id")?.to_owned())
        }
    })
    .await?;
    let joiners: Vec<usize> = (0..users).filter(|&i| members(i / room_size).start != i).collect();
    bounded(joiners.len(), |k| {
        let user = joiners[k];
        let (client, token) = (client.clone(), tokens[user].clone());
        let path = format!("/_matrix/client/v3/rooms/{}/join", encode(&room_ids[user / room_size]));
        async move { client.call(Method::POST, &path, Some(&token), Some(json!({}))).await.map(drop) }
    })
    .await?;
    // A first sync marks each user online, which its room's members then see: a second one
    // takes that in, so the positions measured from hold only what the bench sends.
    let first = bounded(users, |i| {
        let (client, token) = (client.clone(), tokens[i].clone());
        async move { next_batch(&client.sync(&token, None, 0).await?) }
    })
    .await?;
    let since = bounded(users, |i| {
        let (client, token, since) = (client.clone(), tokens[i].clone(), first[i].clone());
        async move { next_batch(&client.sync(&token, Some(&since), 0).await?) }
    })
    .await?;
    let mut people: Vec<User> = tokens
        .into_iter()
        .zip(since)
        .enumerate()
        .map(|(i, (token, since))| User { token, room: i / room_size, since })
        .collect();
    let setup = setup_started.elapsed();
    meter.report("Matrix setup", quiet);
    progress(format!(
        "Matrix setup: {users} users, {rooms} rooms of {room_size}, joined and synced in {:.1} s",
        setup.as_secs_f64()
    ));

    // Incremental sync: one message in every room, then every user syncs once, one at a time.
    let meter = CpuMeter::start(t);
    let mut incremental = histogram();
    for round in 0..INCREMENTAL_ROUNDS {
        bounded(rooms, |room| {
            let sender = &people[members(room).start + round % members(room).len()];
            let (client, token) = (client.clone(), sender.token.clone());
            let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/inc{round}", encode(&room_ids[room]));
            let body = json!({ "msgtype": "m.text", "body": format!("inc {round}") });
            async move { client.call(Method::PUT, &path, Some(&token), Some(body)).await.map(drop) }
        })
        .await?;
        let mut local = histogram();
        let expected = format!("inc {round}");
        for user in &mut people {
            let t0 = Instant::now();
            let answer = client.sync(&user.token, Some(&user.since), 0).await?;
            let _ = local.record(t0.elapsed().as_micros().max(1) as u64);
            if !bodies(&answer, &room_ids[user.room]).any(|b| b == expected) {
                bail!("an incremental sync did not return its room's new message: {answer}");
            }
            user.since = next_batch(&answer)?;
        }
        progress(format!(
            "Matrix incremental sync, round {}: p50 {:.2} ms, p99 {:.2} ms",
            round + 1,
            super::ms(local.value_at_quantile(0.5)),
            super::ms(local.value_at_quantile(0.99))
        ));
        incremental.add(local)?;
    }
    meter.report("Matrix incremental sync", quiet);

    progress(format!("Matrix long-poll wake: {users} polls, {sends} sends"));
    let meter = CpuMeter::start(t);
    let wake = longpoll_wake(t, &client, people, &room_ids, room_size, sends, &progress).await?;
    meter.report("Matrix long-poll wake", quiet);
    Ok(Figures { incremental, wake, setup })
}

/// Every user long-polls; `sends` messages go one after another to the rooms in turn, and each
/// member's wake is timed from just before the send.
async fn longpoll_wake(
    t: &Target,
    client: &Client,
    people: Vec<User>,
    room_ids: &[String],
    room_size: usize,
    sends: usize,
    progress: &impl Fn(String),
) -> anyhow::Result<Histogram<u64>> {
    let users = people.len();
    let rooms = room_ids.len();
    let deadline = Instant::now() + WAKE_PHASE_LIMIT;
    let waiting = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // (send number, when the member had the answer)
    let (woke, mut wakes) = mpsc::unbounded_channel::<(usize, Instant)>();
    let senders: Vec<String> = people.iter().map(|u| u.token.clone()).collect();
    let mut pollers = Vec::with_capacity(users);
    for user in people {
        let (client, waiting, stop, woke) = (client.clone(), waiting.clone(), stop.clone(), woke.clone());
        let room_id = room_ids[user.room].clone();
        pollers.push(tokio::spawn(async move {
            let mut since = user.since;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                waiting.fetch_add(1, Ordering::SeqCst);
                let answer = client.sync(&user.token, Some(&since), POLL_TIMEOUT_MS).await;
                let at = Instant::now();
                waiting.fetch_sub(1, Ordering::SeqCst);
                let answer = answer?;
                for body in bodies(&answer, &room_id) {
                    if let Some(n) = body.strip_prefix("wake ").and_then(|n| n.parse().ok()) {
                        let _ = woke.send((n, at));
                    }
                }
                since = next_batch(&answer)?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    drop(woke);

    let mut hist = histogram();
    let mut quarters = vec![histogram(); 4];
    // The send's own round trip (its durable commit), to tell it from the wake-ups' delay.
    let mut send_hist = histogram();
    for i in 0..sends {
        let room = i % rooms;
        let first = room * room_size;
        let size = room_size.min(users - first);
        // The room's members in turn, so every user sends sometimes.
        let sender = &senders[first + (i / rooms) % size];
        if Instant::now() > deadline {
            bail!("the Matrix long-poll phase ran past {} s after {i} sends", WAKE_PHASE_LIMIT.as_secs());
        }
        // Every user must have a poll outstanding before the send.
        let ready_by = Instant::now() + Duration::from_secs(30);
        while waiting.load(Ordering::SeqCst) < users {
            if Instant::now() > ready_by {
                bail!(
                    "only {} of {users} Matrix long-polls were outstanding after 30 s",
                    waiting.load(Ordering::SeqCst)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        quiet(t).await;
        let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/wake{i}", encode(&room_ids[room]));
        let body = json!({ "msgtype": "m.text", "body": format!("wake {i}") });
        let t0 = Instant::now();
        client.call(Method::PUT, &path, Some(sender), Some(body)).await?;
        let _ = send_hist.record(t0.elapsed().as_micros().max(1) as u64);
        let mut got = 0;
        while got < size {
            let (n, at) = tokio::time::timeout(Duration::from_secs(30), wakes.recv())
                .await
                .with_context(|| format!("only {got} of {size} members woke within 30 s of send {i}"))?
                .context("every Matrix long-poll ended")?;
            if n == i {
                got += 1;
                let micros = at.saturating_duration_since(t0).as_micros().max(1) as u64;
                let _ = hist.record(micros);
                let _ = quarters[i * 4 / sends.max(1)].record(micros);
            }
        }
    }
    for (q, h) in quarters.iter().enumerate().filter(|(_, h)| !h.is_empty()) {
        progress(format!(
            "Matrix long-poll wake, sends {}–{}: p50 {:.2} ms, p99 {:.2} ms",
            q * sends / 4 + 1,
            (q + 1) * sends / 4,
            super::ms(h.value_at_quantile(0.5)),
            super::ms(h.value_at_quantile(0.99))
        ));
    }

    progress(format!(
        "Matrix long-poll wake: the sends themselves took p50 {:.2} ms, p99 {:.2} ms",
        super::ms(send_hist.value_at_quantile(0.5)),
        super::ms(send_hist.value_at_quantile(0.99))
    ));

    // One last message per room ends every poll, so none is left waiting on the server.
    stop.store(true, Ordering::Relaxed);
    bounded(rooms, |room| {
        let (client, token) = (client.clone(), senders[room * room_size].clone());
        let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/end", encode(&room_ids[room]));
        async move {
            client
                .call(Method::PUT, &path, Some(&token), Some(json!({ "msgtype": "m.text", "body": "end" })))
                .await
                .map(drop)
        }
    })
    .await?;
    let end_by = tokio::time::Instant::now() + REQUEST_LIMIT;
    for poller in pollers {
        let abort = poller.abort_handle();
        match tokio::time::timeout_at(end_by, poller).await {
            Ok(done) => done??,
            Err(_) => abort.abort(),
        }
    }
    Ok(hist)
}

/// Waits (bounded) until the server has been nearly idle for a [`QUIET_WINDOW`].
async fn quiet(t: &Target) {
    let until = Instant::now() + QUIET_LIMIT;
    let mut before = t.server_cpu();
    loop {
        tokio::time::sleep(QUIET_WINDOW).await;
        let now = t.server_cpu();
        match (before, now) {
            (Some(b), Some(n)) if n - b >= QUIET_CPU && Instant::now() < until => before = now,
            _ => return,
        }
    }
}
