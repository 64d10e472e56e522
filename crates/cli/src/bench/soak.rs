//! `ferrosync bench soak`: a long run at a steady load — thousands of WebSocket subscribers of a
//! hundred documents, writes at a fixed rate — sampling the server's memory, to show that it
//! stays flat and that every event is delivered. Fails when memory grows past a bound.
//!
//! The bound applies to anonymous memory (heap and stacks), where a leak shows: the resident set
//! also holds pages of the program's own file, which the kernel maps in when code first runs and
//! may drop and map in again at any time, a step of megabytes that says nothing of the server.

use super::foundation::subscribe_document;
use super::{NodeOptions, Socket, open_idle, spawn_node};
use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args, Debug, Clone)]
pub struct SoakArgs {
    /// How long the load runs.
    #[arg(long, default_value_t = 1_800)]
    pub seconds: u64,
    /// WebSocket subscribers, spread over --documents documents.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    #[arg(long, default_value_t = 100)]
    pub documents: usize,
    /// Document updates per second (one writer, open loop).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 10)]
    pub sample_secs: u64,
    /// Fail when the server's anonymous memory at the end exceeds that after the warm-up (the
    /// first tenth of the run) by more than this many percent.
    #[arg(long, default_value_t = 10.0)]
    pub max_growth_percent: f64,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Sample {
    at_s: f64,
    rss_bytes: u64,
    anon_bytes: u64,
    /// Of which in transparent huge pages.
    anon_huge_bytes: u64,
    /// The server's thread count.
    threads: u64,
    writes: u64,
    delivered: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    seconds: u64,
    connections: usize,
    writes: u64,
    delivered: u64,
    expected: u64,
    rss_after_warmup_bytes: u64,
    rss_end_bytes: u64,
    anon_after_warmup_bytes: u64,
    anon_end_bytes: u64,
    anon_growth_percent: f64,
    /// Least-squares slope of the anonymous memory samples after the warm-up.
    anon_slope_bytes_per_min: f64,
    samples: Vec<Sample>,
}

/// Subscribes, says so on `ready`, then reads events until told to stop, counting them; answers
/// pings (reading the stream does) so the server keeps the connection through a long run.
async fn subscriber(
    mut ws: Socket,
    doc: String,
    delivered: Arc<AtomicU64>,
    ready: Arc<tokio::sync::Semaphore>,
    stop: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    subscribe_document(&mut ws, &doc).await?;
    ready.add_permits(1);
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => return Ok(()),
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) if t.starts_with("{\"type\":\"event\"") => {
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(_)) => {}
                other => bail!("a subscriber's connection ended: {other:?}"),
            },
        }
    }
}

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let _ = rlimit::increase_nofile_limit(args.connections as u64 * 2 + 1024);
    let sid = format!("AC{}", ferrosync_core::auth::random_hex(16));
    let target = spawn_node(&NodeOptions::default(), &sid, &ferrosync_core::auth::random_hex(16)).await?;
    let service = target.post("/api/v1/services", json!({ "friendly_name": "soak" })).await?;
    let service = service["sid"].as_str().context("service sid")?.to_owned();
    let mut docs = Vec::with_capacity(args.documents);
    for i in 0..args.documents.max(1) {
        let d = target
            .post(
                &format!("/api/v1/services/{service}/documents"),
                json!({ "unique_name": format!("soak{i}"), "data": {} }),
            )
            .await?;
        docs.push(d["sid"].as_str().context("document sid")?.to_owned());
    }
    let ttl = (args.seconds + 600).min(86_400);
    let token = target.post("/api/v1/tokens", json!({ "service": service, "identity": "soak", "ttl": ttl })).await?;
    let token = token["token"].as_str().context("token")?.to_owned();
    let quiet = args.json;
    let say = |m: String| {
        if !quiet {
            eprintln!("bench soak: {m}");
        }
    };
    say(format!("opening {} subscribers of {} documents", args.connections, docs.len()));
    let (sockets, _) = open_idle(&target, &token, args.connections).await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut subscribers = Vec::with_capacity(sockets.len());
    let mut per_doc = vec![0u64; docs.len()];
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    for (i, ws) in sockets.into_iter().enumerate() {
        per_doc[i % docs.len()] += 1;
        let task = subscriber(ws, docs[i % docs.len()].clone(), delivered.clone(), ready.clone(), stop.clone());
        subscribers.push(tokio::spawn(task));
    }
    // Every subscription answered before the load begins: one still on its way would miss the
    // first writes (on a busy machine a fixed pause was not enough).
    let n = u32::try_from(subscribers.len()).context("too many connections")?;
    tokio::time::timeout(Duration::from_secs(120), ready.acquire_many(n))
        .await
        .context("the subscriptions were not all answered within 120 s")??
        .forget();

    say(format!("{} updates/s for {} s, memory every {} s", args.rate, args.seconds, args.sample_secs));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let writes = Arc::new(AtomicU64::new(0));
    let expected = Arc::new(AtomicU64::new(0));
    let writer = {
        let (http, base, sid, token) =
            (target.http.clone(), target.base.clone(), target.sid.clone(), target.token.clone());
        let (docs, per_doc, writes, expected, service) =
            (docs.clone(), per_doc.clone(), writes.clone(), expected.clone(), service.clone());
        let rate = args.rate;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
            let mut n = 0usize;
            while Instant::now() < deadline {
                tick.tick().await;
                let d = n % docs.len();
                let url = format!("{base}/api/v1/services/{service}/documents/{}", docs[d]);
                let r =
                    http.put(url).basic_auth(&sid, Some(&token)).json(&json!({ "data": { "n": n } })).send().await?;
                if !r.status().is_success() {
                    bail!("an update failed: {}", r.status());
                }
                writes.fetch_add(1, Ordering::Relaxed);
                expected.fetch_add(per_doc[d], Ordering::Relaxed);
                n += 1;
            }
            Ok::<_, anyhow::Error>(())
        })
    };
    let mut samples = Vec::new();
    let mut next = started;
    while Instant::now() < deadline {
        next += Duration::from_secs(args.sample_secs.max(1));
        tokio::time::sleep_until(next.min(deadline).into()).await;
        let s = Sample {
            at_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            rss_bytes: target.rss_bytes().unwrap_or(0),
            anon_bytes: target.anon_bytes().unwrap_or(0),
            anon_huge_bytes: target.huge_page_bytes().unwrap_or(0),
            threads: target.threads().unwrap_or(0),
            writes: writes.load(Ordering::Relaxed),
            delivered: delivered.load(Ordering::Relaxed),
        };
        say(format!(
            "{:>7.1} s  rss {:>6.1} MiB  anon {:>6.1} MiB (huge pages {:>6.1})  threads {}  writes {}  events {}",
            s.at_s,
            s.rss_bytes as f64 / 1048576.0,
            s.anon_bytes as f64 / 1048576.0,
            s.anon_huge_bytes as f64 / 1048576.0,
            s.threads,
            s.writes,
            s.delivered
        ));
        samples.push(s);
    }
    writer.await??;
    // Every event delivered: wait for the last ones to arrive.
    let expected = expected.load(Ordering::Relaxed);
    let drain = Instant::now() + Duration::from_secs(30);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.notify_waiters();
    for s in subscribers {
        s.await??;
    }
    let report = summarise(&args, samples, writes.load(Ordering::Relaxed), delivered.load(Ordering::Relaxed), expected);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "soak {} s, {} connections: {} writes, {} of {} events delivered; anonymous memory {:.1} → {:.1} MiB ({:+.1} %, {:+.0} KiB/min); rss {:.1} → {:.1} MiB",
            report.seconds,
            report.connections,
            report.writes,
            report.delivered,
            report.expected,
            report.anon_after_warmup_bytes as f64 / 1048576.0,
            report.anon_end_bytes as f64 / 1048576.0,
            report.anon_growth_percent,
            report.anon_slope_bytes_per_min / 1024.0,
            report.rss_after_warmup_bytes as f64 / 1048576.0,
            report.rss_end_bytes as f64 / 1048576.0
        );
    }
    if report.delivered != report.expected {
        bail!("{} events delivered, {} expected", report.delivered, report.expected);
    }
    if report.anon_growth_percent > args.max_growth_percent {
        bail!(
            "anonymous memory grew {:.1} % after the warm-up (limit {} %)",
            report.anon_growth_percent,
            args.max_growth_percent
        );
    }
    Ok(())
}

fn summarise(args: &SoakArgs, samples: Vec<Sample>, writes: u64, delivered: u64, expected: u64) -> Report {
    // The first tenth is warm-up: allocators and caches settle.
    let warm = samples.len() / 10;
    let steady = &samples[warm.min(samples.len().saturating_sub(1))..];
    let after_warmup = steady.first().map_or(0, |s| s.anon_bytes);
    let end = steady.last().map_or(0, |s| s.anon_bytes);
    let growth = if after_warmup > 0 { (end as f64 - after_warmup as f64) / after_warmup as f64 * 100.0 } else { 0.0 };
    let n = steady.len() as f64;
    let (mx, my) =
        (steady.iter().map(|s| s.at_s).sum::<f64>() / n, steady.iter().map(|s| s.anon_bytes as f64).sum::<f64>() / n);
    let (sxy, sxx) = steady.iter().fold((0.0, 0.0), |(sxy, sxx), s| {
        let dx = s.at_s - mx;
        (sxy + dx * (s.anon_bytes as f64 - my), sxx + dx * dx)
    });
    let slope = if sxx > 0.0 { sxy / sxx * 60.0 } else { 0.0 };
    Report {
        seconds: args.seconds,
        connections: args.connections,
        writes,
        delivered,
        expected,
        rss_after_warmup_bytes: steady.first().map_or(0, |s| s.rss_bytes),
        rss_end_bytes: steady.last().map_or(0, |s| s.rss_bytes),
        anon_after_warmup_bytes: after_warmup,
        anon_end_bytes: end,
        anon_growth_percent: (growth * 10.0).round() / 10.0,
        anon_slope_bytes_per_min: slope.round(),
        samples,
    }
}
