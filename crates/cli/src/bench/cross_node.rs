//! The cluster phase of `ferrosync bench`: delivery from a write on one node to WebSocket
//! subscribers on others, through the shared PostgreSQL store.

use super::{Target, histogram, open_one};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// Subscribers spread over the `near` nodes watch a document that a writer on `far` updates
/// `rate` times a second (open loop); each delivery is timed from the write's send. Returns the
/// achieved write rate and the delivery latencies.
pub(super) async fn cross_node(
    near: &[&Target],
    far: &Target,
    service: &str,
    subscribers: usize,
    rate: f64,
    seconds: u64,
) -> anyhow::Result<(f64, Histogram<u64>)> {
    let doc = far
        .post(&format!("/api/v1/services/{service}/documents"), json!({ "unique_name": "cross-node", "data": {} }))
        .await?;
    let doc = doc["sid"].as_str().context("doc sid")?.to_owned();
    let token =
        far.post("/api/v1/tokens", json!({ "service": service, "identity": "cross", "ttl": 3600 })).await?["token"]
            .as_str()
            .context("token")?
            .to_owned();
    let updates = (rate * seconds as f64).round().max(1.0) as usize;
    let epoch = Instant::now();
    let ready = Arc::new(Semaphore::new(0));
    let mut readers = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        let node = near[i % near.len()];
        let (mut ws, doc, ready) = (open_one(&node.ws_url(&token)).await?, doc.clone(), ready.clone());
        readers.push(tokio::spawn(async move {
            let sub = json!({ "type": "subscribe", "id": 1, "kind": "document", "object": doc }).to_string();
            ws.send(Message::text(sub)).await?;
            let mut hist = histogram();
            let mut got = 0;
            let mut subscribed = false;
            while got < updates {
                let frame = match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) => text,
                    Ok(Some(Ok(_))) => continue,
                    other => bail!("cross-node subscriber lost its socket after {got} events: {other:?}"),
                };
                let now = epoch.elapsed().as_micros() as u64;
                let v: Value = serde_json::from_str(&frame)?;
                match v["type"].as_str() {
                    Some("reply") if !subscribed => {
                        subscribed = true;
                        ready.add_permits(1);
                    }
                    Some("event") => {
                        let sent = v["event"]["data"]["t"].as_u64().context("timestamp")?;
                        let _ = hist.record(now.saturating_sub(sent).max(1));
                        got += 1;
                    }
                    _ => {}
                }
            }
            Ok::<_, anyhow::Error>(hist)
        }));
    }
    tokio::time::timeout(Duration::from_secs(60), ready.acquire_many(subscribers as u32))
        .await
        .context("cross-node subscribers did not subscribe within 60 s")??
        .forget();
    let url = format!("{}/api/v1/services/{service}/documents/{doc}", far.base);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut writes = Vec::with_capacity(updates);
    for i in 0..updates {
        tick.tick().await;
        let (http, url, sid, token) = (far.http.clone(), url.clone(), far.sid.clone(), far.token.clone());
        let t_us = epoch.elapsed().as_micros() as u64;
        writes.push(tokio::spawn(async move {
            let r =
                http.put(&url).basic_auth(&sid, Some(&token)).json(&json!({ "data": { "t": t_us, "i": i } })).send();
            let r = r.await?;
            if !r.status().is_success() {
                bail!("cross-node update failed: {}", r.status());
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for w in writes {
        w.await??;
    }
    let achieved = updates as f64 / started.elapsed().as_secs_f64();
    let mut hist = histogram();
    for r in readers {
        hist.add(tokio::time::timeout(Duration::from_secs(120), r).await.context("cross-node deliveries")???)?;
    }
    Ok((achieved, hist))
}
