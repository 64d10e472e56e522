//! The Rust SDK's phase: what an application built on `ferrosync-client` sees.
//!
//! * Shared counter: `clients` SDK clients each `mutate` one document (read, add one, write
//!   with If-Match, retried on conflict) for the phase's seconds; increments per second, the
//!   p99 of one increment (retries included), and a check that no increment was lost.
//! * Delivery: one client sets map items (one in flight at a time); another's subscription
//!   receives them; p99 from `set` called to the event out of the `Subscription` stream.

use super::{Target, histogram};
use anyhow::{Context, bail};
use ferrosync_client::{Client, SyncEventKind};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::json;
use std::time::{Duration, Instant};

pub(super) struct Figures {
    pub increments_per_s: f64,
    pub increment: Histogram<u64>,
    pub delivery: Histogram<u64>,
}

async fn client(t: &Target, service: &str, identity: &str) -> anyhow::Result<Client> {
    let token = t.post("/api/v1/tokens", json!({ "service": service, "identity": identity, "ttl": 3600 })).await?;
    let token = token["token"].as_str().context("token")?;
    Ok(Client::connect(&t.base, token).await?)
}

pub(super) async fn run(t: &Target, service: &str, clients: usize, seconds: u64) -> anyhow::Result<Figures> {
    // Shared counter.
    let mut counters = Vec::with_capacity(clients);
    let mut handles = Vec::with_capacity(clients);
    for i in 0..clients {
        let c = client(t, service, &format!("sdk-{i}")).await?;
        handles.push(c.document("sdk-counter").await?);
        counters.push(c);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for doc in handles.clone() {
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                doc.mutate(|d| Some(json!({ "n": d["n"].as_u64().unwrap_or(0) + 1 }))).await?;
                hist.record(t0.elapsed().as_micros() as u64).ok();
                n += 1;
            }
            anyhow::Ok((n, hist))
        }));
    }
    let mut increment = histogram();
    let mut total = 0u64;
    for task in tasks {
        let (n, h) = task.await??;
        total += n;
        increment.add(&h).ok();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let counted = handles.first().context("no clients")?.get().await?["n"].as_u64().unwrap_or(0);
    if counted != total {
        bail!("the shared counter reads {counted} after {total} acknowledged increments");
    }

    // Delivery to another client's subscription.
    let writer = client(t, service, "sdk-writer").await?;
    let reader = client(t, service, "sdk-reader").await?;
    let map = writer.map("sdk-delivery").await?;
    let watched = reader.map("sdk-delivery").await?;
    let mut events = watched.subscribe().await?;
    let mut delivery = histogram();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut i = 0u64;
    while Instant::now() < deadline {
        let key = format!("k{}", i % 100);
        let t0 = Instant::now();
        map.set(&key, json!({ "i": i })).await?;
        loop {
            let e = tokio::time::timeout(Duration::from_secs(10), events.next())
                .await
                .context("no event within 10 s")?
                .context("the subscription ended")?;
            if let SyncEventKind::ItemAdded { item } | SyncEventKind::ItemUpdated { item, .. } = &e.kind
                && item.data["i"] == i
            {
                break;
            }
        }
        delivery.record(t0.elapsed().as_micros() as u64).ok();
        i += 1;
    }
    for c in counters.iter().chain([&writer, &reader]) {
        c.shutdown().await;
    }
    Ok(Figures { increments_per_s: total as f64 / elapsed, increment, delivery })
}
