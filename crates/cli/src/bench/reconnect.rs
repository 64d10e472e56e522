//! A reconnect storm: `clients` WebSocket subscribers of one document lose their connections at
//! once; while they are away the document changes `missed` times; then they all reconnect at
//! once and resubscribe from the token each last saw. Measured: from the storm's start to each
//! client holding every change it missed (and to the last one), each change delivered exactly
//! once to every client.

use super::{Target, histogram, open_idle};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

pub(super) struct Figures {
    /// Storm start to a client holding every change it missed (µs).
    pub caught_up: Histogram<u64>,
    /// Storm start to the last client caught up.
    pub all: Duration,
}

/// Sends `subscribe` and returns the reply's body, collecting events that come before it.
async fn subscribe(ws: &mut super::Socket, doc: &str, since: Option<&str>, events: &mut u64) -> anyhow::Result<Value> {
    let mut frame = json!({ "type": "subscribe", "id": 1, "kind": "document", "object": doc });
    if let Some(since) = since {
        frame["since"] = json!(since);
    }
    ws.send(Message::text(frame.to_string())).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await.context("no reply in 60 s")? {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t)?;
                match v["type"].as_str() {
                    Some("reply") if v["status"].as_u64().is_some_and(|s| s < 300) => return Ok(v["body"].clone()),
                    Some("reply") => bail!("subscribe refused: {v}"),
                    Some("event") => *events += 1,
                    _ => {}
                }
            }
            Some(Ok(_)) => {}
            other => bail!("the connection ended before the reply: {other:?}"),
        }
    }
}

pub(super) async fn storm(
    t: &Target,
    service: &str,
    token: &str,
    clients: usize,
    missed: usize,
) -> anyhow::Result<Figures> {
    let doc =
        t.post(&format!("/api/v1/services/{service}/documents"), json!({ "unique_name": "storm", "data": {} })).await?;
    let doc = doc["sid"].as_str().context("document sid")?.to_owned();
    let (sockets, _) = open_idle(t, token, clients).await?;
    let mut tasks = Vec::with_capacity(clients);
    for mut ws in sockets {
        let doc = doc.clone();
        tasks.push(tokio::spawn(async move {
            let mut events = 0;
            let body = subscribe(&mut ws, &doc, None, &mut events).await?;
            let since = body["since"].as_str().context("since")?.to_owned();
            // Gone without a goodbye, as a phone losing its network.
            drop(ws);
            Ok::<_, anyhow::Error>(since)
        }));
    }
    let mut tokens = Vec::with_capacity(clients);
    for task in tasks {
        tokens.push(task.await??);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let url = format!("{}/api/v1/services/{service}/documents/{doc}", t.base);
    for i in 0..missed {
        let r = t.http.put(&url).basic_auth(&t.sid, Some(&t.token)).json(&json!({ "data": { "i": i } })).send().await?;
        if !r.status().is_success() {
            bail!("an update failed: {}", r.status());
        }
    }

    let started = Instant::now();
    // As many connects in flight as a busy load balancer would let through.
    let limit = Arc::new(Semaphore::new(1024));
    let mut tasks = Vec::with_capacity(clients);
    for since in tokens {
        let (limit, url, doc) = (limit.clone(), t.ws_url(token), doc.clone());
        tasks.push(tokio::spawn(async move {
            let mut ws = {
                let _permit = limit.acquire_owned().await?;
                let mut attempt = 0u64;
                loop {
                    attempt += 1;
                    match super::open_one(&url).await {
                        Ok(ws) => break ws,
                        Err(e) if attempt >= 5 => return Err(e),
                        Err(_) => tokio::time::sleep(Duration::from_millis(50 * attempt)).await,
                    }
                }
            };
            let mut events = 0u64;
            subscribe(&mut ws, &doc, Some(&since), &mut events).await?;
            while events < missed as u64 {
                match tokio::time::timeout(Duration::from_secs(60), ws.next())
                    .await
                    .context("a missed change did not come")?
                {
                    Some(Ok(Message::Text(t))) if t.starts_with("{\"type\":\"event\"") => events += 1,
                    Some(Ok(_)) => {}
                    other => bail!("the connection ended after {events} of {missed} missed changes: {other:?}"),
                }
            }
            let done = started.elapsed();
            // Nothing beyond what was missed.
            if let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(Duration::from_millis(1), ws.next()).await
                && t.starts_with("{\"type\":\"event\"")
            {
                bail!("a change was delivered twice");
            }
            Ok::<_, anyhow::Error>(done)
        }));
    }
    let mut caught_up = histogram();
    let mut all = Duration::ZERO;
    for task in tasks {
        let d = task.await??;
        let _ = caught_up.record(d.as_micros() as u64);
        all = all.max(d);
    }
    Ok(Figures { caught_up, all })
}
