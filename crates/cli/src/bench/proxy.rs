//! The Twilio Proxy relay workload: sessions of two in-app participants, set up through the
//! Proxy face (`/twilio/proxy/v1`, form-encoded, Basic auth). In each session alice's messages
//! are handed in as an SMS provider's webhook (`POST /twilio/proxy/inbound`) and timed until the
//! relay has published them to bob's Sync Stream (`proxy.bob-N` in the `default` service), read
//! through a subscription over the native WebSocket.

use super::target::{form, twilio_call};
use super::{Socket, Target, histogram, open_one};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Where the Proxy face is mounted.
const MOUNT: &str = "/twilio/proxy/v1";
/// Where an SMS provider hands over a message.
const INBOUND: &str = "/twilio/proxy/inbound";
/// The Sync service in-app participants' streams are in (the Proxy service names no other).
const SYNC: &str = "default";
/// The longest one message may take from its webhook to bob's stream.
const WAIT: Duration = Duration::from_secs(30);
/// The first message of each session is not timed: the relay may have to take its lease on
/// the `proxy` service's change log first (re-checked every 2 s by default), and the first
/// delivery grants bob's read permission on his stream.
const WARM_UP: Duration = Duration::from_secs(60);
/// Phone numbers in the Proxy service's pool: each participant of a session needs its own,
/// and a number serves every session whose participants differ.
const NUMBERS: usize = 2;

/// What the phase measured.
pub(super) struct Figures {
    /// Messages accepted and delivered per second.
    pub per_s: f64,
    /// From the webhook's send to the message's arrival on the recipient's stream.
    pub relay: Histogram<u64>,
}

/// Sends the SMS provider's webhook with the account's credentials.
#[derive(Clone)]
struct Webhook {
    http: reqwest::Client,
    url: String,
    sid: String,
    token: String,
}

/// One session: alice's side sends, bob's socket listens on his stream.
struct Lane {
    index: usize,
    /// alice's identifier and her proxy identifier: the webhook's `From` and `To`.
    from: String,
    to: String,
    ws: Socket,
    sent: u64,
}

/// One call of the Proxy face; its JSON answer.
async fn twilio(t: &Target, method: Method, path: &str, pairs: &[(&str, &str)]) -> anyhow::Result<Value> {
    twilio_call(&t.http, (&t.base, &t.sid, &t.token), method, &format!("{MOUNT}{path}"), pairs).await
}

/// Seven random digits for a `+1555…` number.
fn random_digits() -> anyhow::Result<u32> {
    let hex = ferrosync_core::auth::random_hex(4);
    Ok(u32::from_str_radix(&hex, 16)? % 10_000_000)
}

/// Sets up a Proxy service with `sessions` sessions of two in-app participants, then for
/// `seconds` each session's alice sends one message at a time, waiting for it on bob's stream.
pub(super) async fn relays(t: &Target, sessions: usize, seconds: u64, quiet: bool) -> anyhow::Result<Figures> {
    let suffix = ferrosync_core::auth::random_hex(4);
    let svc = twilio(t, Method::POST, "/Services", &[("UniqueName", &format!("bench-{suffix}"))]).await?;
    let svc = svc["sid"].as_str().context("Proxy service sid")?.to_owned();
    let first = random_digits()?;
    for i in 0..NUMBERS {
        let number = format!("+1555{:07}", (first as usize + i) % 10_000_000);
        twilio(t, Method::POST, &format!("/Services/{svc}/PhoneNumbers"), &[("PhoneNumber", &number)]).await?;
    }
    let mut lanes = Vec::with_capacity(sessions);
    for index in 0..sessions {
        lanes.push(lane(t, &svc, index).await?);
    }

    // Every session's first message, untimed.
    let hook = Webhook {
        http: t.http.clone(),
        url: format!("{}{INBOUND}", t.base),
        sid: t.sid.clone(),
        token: t.token.clone(),
    };
    let warm = futures_util::future::try_join_all(lanes.iter_mut().map(|lane| exchange(&hook, lane, WARM_UP)));
    warm.await?;

    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(sessions);
    for mut lane in lanes {
        let hook = hook.clone();
        tasks.push(tokio::spawn(async move {
            let (mut relay, mut accepted) = (histogram(), histogram());
            let mut n = 0u64;
            while Instant::now() < deadline {
                let (answered, arrived) = exchange(&hook, &mut lane, WAIT).await?;
                let _ = accepted.record(answered.as_micros().max(1) as u64);
                let _ = relay.record(arrived.as_micros().max(1) as u64);
                n += 1;
            }
            Ok::<_, anyhow::Error>((n, relay, accepted))
        }));
    }
    let (mut total, mut relay, mut accepted) = (0, histogram(), histogram());
    for task in tasks {
        let (n, r, a) = task.await??;
        total += n;
        relay.add(r)?;
        accepted.add(a)?;
    }
    let per_s = total as f64 / started.elapsed().as_secs_f64();
    // The webhook's answer (the inbound message recorded) apart from the relay after it.
    if !quiet {
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        eprintln!(
            "bench: Proxy relay: webhook answered p50 {:.2} ms, p99 {:.2} ms; on the stream p50 {:.2} ms, p99 {:.2} ms",
            ms(&accepted, 0.5),
            ms(&accepted, 0.99),
            ms(&relay, 0.5),
            ms(&relay, 0.99)
        );
    }
    Ok(Figures { per_s, relay })
}

/// Session `index`: alice-N and bob-N in the app, bob subscribed to his stream.
async fn lane(t: &Target, svc: &str, index: usize) -> anyhow::Result<Lane> {
    let (alice, bob) = (format!("app:alice-{index}"), format!("app:bob-{index}"));
    let participants = [json!({ "Identifier": alice }).to_string(), json!({ "Identifier": bob }).to_string()];
    let path = format!("/Services/{svc}/Sessions");
    let session =
        twilio(t, Method::POST, &path, &[("Participants", &participants[0]), ("Participants", &participants[1])])
            .await?;
    let session = session["sid"].as_str().context("Proxy session sid")?.to_owned();
    let listed = twilio(t, Method::GET, &format!("/Services/{svc}/Sessions/{session}/Participants"), &[]).await?;
    let to = listed["participants"]
        .as_array()
        .context("participants")?
        .iter()
        .find(|p| p["identifier"] == alice.as_str())
        .and_then(|p| p["proxy_identifier"].as_str())
        .with_context(|| format!("{alice}'s proxy identifier in {listed}"))?
        .to_owned();

    // bob's stream, opened before anything is sent, and his subscription to it.
    let identity = format!("bob-{index}");
    let stream = format!("proxy.{identity}");
    t.post(&format!("/api/v1/services/{SYNC}/streams"), json!({ "unique_name": stream })).await?;
    let token = t.post("/api/v1/tokens", json!({ "service": SYNC, "identity": identity, "ttl": 3600 })).await?;
    let mut ws = open_one(&t.ws_url(token["token"].as_str().context("token")?)).await?;
    let sub = json!({ "type": "subscribe", "id": 1, "kind": "stream", "object": stream }).to_string();
    ws.send(Message::text(sub)).await?;
    let subscribed = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if text.contains("\"reply\"") => return Ok(text),
                Some(Ok(_)) => continue,
                other => bail!("subscription to {stream} failed: {other:?}"),
            }
        }
    });
    let reply =
        subscribed.await.with_context(|| format!("no answer to the subscription to {stream} within {WAIT:?}"))??;
    if reply.contains("\"error\"") {
        bail!("subscription to {stream} refused: {reply}");
    }
    Ok(Lane { index, from: alice, to, ws, sent: 0 })
}

/// alice's next message: the webhook sent and, side by side, bob's stream read until it holds
/// the message. Times (from the send) of the webhook's answer and of the message's arrival.
async fn exchange(hook: &Webhook, lane: &mut Lane, limit: Duration) -> anyhow::Result<(Duration, Duration)> {
    let Lane { index, from, to, ws, sent } = lane;
    let body = format!("bench {index} {sent}");
    *sent += 1;
    let request = hook
        .http
        .post(&hook.url)
        .basic_auth(&hook.sid, Some(&hook.token))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[("From", from), ("To", to), ("Body", &body)]));
    let t0 = Instant::now();
    let send = async {
        let r = request.send().await?;
        let status = r.status();
        if !status.is_success() {
            bail!("POST {INBOUND} from {from}: {status} {}", r.text().await.unwrap_or_default());
        }
        Ok(t0.elapsed())
    };
    let arrive = async {
        loop {
            let v = super::foundation::next_of_type(&mut *ws, "event")
                .await
                .with_context(|| format!("bob-{index}'s socket, waiting for '{body}'"))?;
            if v["event"]["type"] == "stream_message_published" && v["event"]["data"]["body"] == body.as_str() {
                return Ok(t0.elapsed());
            }
        }
    };
    match tokio::time::timeout(limit, async { tokio::try_join!(send, arrive) }).await {
        Ok(done) => done,
        Err(_) => bail!(
            "Proxy relay: '{body}' (webhook from {from} to {to}) did not reach stream proxy.bob-{index} within {limit:?}"
        ),
    }
}
