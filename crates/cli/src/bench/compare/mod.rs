//! `ferrosync bench compare`: the same workloads against Ferrosync and the peers users would
//! otherwise pick, installed from Debian's packages — NATS JetStream KV (conditional puts,
//! watch), Redis (pub/sub fan-out) and both for the memory an idle subscribed connection
//! holds — in one run on one machine. Each server runs pinned to
//! its own core, away from the load generator; each workload is repeated (three times by
//! default) on a fresh server, and the medians and their ratios to Ferrosync's are printed as a
//! table, written as JSON and drawn as a PNG chart of the latency distributions.

mod chart;
mod peers;

use super::foundation::{open_measured, open_one, subscribe_document};
use super::target::{RunClock, RunCpu};
use super::{NodeOptions, Target, Transport, conditional_updates, fanout, open_idle, spawn_node};
use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// Repetitions of every workload on every system (each on a fresh server).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Seconds each conditional-write run lasts.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Concurrent writers (each on its own key) in the concurrent conditional-write workload.
    #[arg(long, default_value_t = 16)]
    pub writers: usize,
    /// Writes the watch workload makes, paced at --watch-rate: ten seconds' worth, so its p99
    /// is the fiftieth-slowest write rather than the tenth, and its CPU per write resolves to
    /// 2 µs of the kernel's 10 ms ticks.
    #[arg(long, default_value_t = 5_000)]
    pub watch_messages: usize,
    #[arg(long, default_value_t = 500.0)]
    pub watch_rate: f64,
    /// Subscriber counts of the fan-out workloads.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub fanout: Vec<usize>,
    /// Messages each fan-out run publishes, paced at --fanout-rate.
    #[arg(long, default_value_t = 100)]
    pub fanout_messages: usize,
    #[arg(long, default_value_t = 100.0)]
    pub fanout_rate: f64,
    /// Idle subscribed connections whose memory on the server is measured.
    #[arg(long, default_value_t = 10_000)]
    pub idle: usize,
    /// The workloads to run (all by default).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "cas,watch,fanout,idle")]
    pub workloads: Vec<Kind>,
    /// Where the results go as JSON.
    #[arg(long, default_value = "bench-compare.json")]
    pub json_out: PathBuf,
    /// Where the chart of latency distributions goes (PNG).
    #[arg(long, default_value = "bench-compare.png")]
    pub chart: PathBuf,
    /// Leave servers and generator on any core.
    #[arg(long)]
    pub no_pin: bool,
    /// Small numbers everywhere: a smoke run in seconds.
    #[arg(long)]
    pub quick: bool,
}

/// The workloads `--workloads` names.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Conditional writes, one client and --writers clients.
    Cas,
    /// Write to watcher.
    Watch,
    /// Fan-out to each of --fanout subscribers.
    Fanout,
    /// The memory an idle subscribed connection holds on the server.
    Idle,
}

/// What one run measured: its figure (operations or deliveries per second; bytes for the
/// memory workload) and latencies (µs; none for the memory workload).
pub(super) struct Sample {
    pub value: f64,
    pub hist: Histogram<u64>,
}

/// Runs `work`, the timed part of a run, and adds the CPU time it took.
pub(super) async fn timed_on(
    pid: Option<u32>,
    work: impl Future<Output = anyhow::Result<Sample>>,
) -> anyhow::Result<(Sample, RunCpu)> {
    let clock = RunClock::start(pid);
    let sample = work.await?;
    Ok((sample, clock.used()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Ferrosync,
    /// Ferrosync committing without an fsync per commit, as JetStream's defaults do.
    FerrosyncRelaxed,
    /// The same, written through the native WebSocket (as the SDK does) rather than HTTP: a
    /// kept connection speaking its own protocol, as NATS clients do.
    FerrosyncWebSocket,
    Nats,
    Redis,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Ferrosync => "ferrosync",
            System::FerrosyncRelaxed => "ferrosync (fsync at checkpoints)",
            System::FerrosyncWebSocket => "ferrosync websocket (fsync at checkpoints)",
            System::Nats => "nats jetstream kv",
            System::Redis => "redis pub/sub",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Workload {
    /// One client, one key: read-modify-write with the expected revision, one in flight.
    CasSequential,
    /// --writers clients, each on its own key and its own connection.
    CasConcurrent,
    /// --writers writers, each on its own key, all on one connection (one app process).
    CasShared,
    /// Paced writes to one key, one watcher: write to notification.
    Watch,
    /// Paced writes to n subscribers: write to delivery.
    Fanout(usize),
    /// n connections, each subscribed to one object (document, subject, channel) and idle: the
    /// server's anonymous memory per connection.
    Idle(usize),
}

impl Workload {
    fn name(self) -> String {
        match self {
            Workload::CasSequential => "conditional write, 1 client".into(),
            Workload::CasConcurrent => "conditional writes, concurrent".into(),
            Workload::CasShared => "conditional writes, one connection".into(),
            Workload::Watch => "write → watcher".into(),
            Workload::Fanout(n) => format!("fan-out to {n}"),
            Workload::Idle(n) => format!("idle memory, {n} connections"),
        }
    }

    fn systems(self) -> &'static [System] {
        match self {
            Workload::CasSequential | Workload::CasConcurrent => {
                &[System::Ferrosync, System::FerrosyncRelaxed, System::FerrosyncWebSocket, System::Nats]
            }
            Workload::Watch => &[System::Ferrosync, System::FerrosyncRelaxed, System::FerrosyncWebSocket, System::Nats],
            // HTTP/1.1 answers one request at a time per connection, so only the sockets share.
            Workload::CasShared => &[System::FerrosyncWebSocket, System::Nats],
            Workload::Fanout(_) => &[System::Ferrosync, System::FerrosyncRelaxed, System::Redis],
            Workload::Idle(_) => &[System::Ferrosync, System::Nats, System::Redis],
        }
    }

    /// Whether runs time operations (every workload but the memory one).
    fn timed(self) -> bool {
        !matches!(self, Workload::Idle(_))
    }

    /// What `value` counts.
    fn unit(self) -> &'static str {
        match self {
            Workload::CasSequential | Workload::CasConcurrent | Workload::CasShared => "writes/s",
            Workload::Watch => "writes/s (paced)",
            Workload::Fanout(_) => "deliveries/s",
            Workload::Idle(_) => "bytes/connection",
        }
    }
}

/// Latency quantiles recorded for every run (and drawn).
pub(super) const QUANTILES: [f64; 8] = [0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0];

#[derive(Debug, Clone, Serialize)]
struct Run {
    workload: String,
    system: String,
    rep: usize,
    value: f64,
    /// Latency at each of [`QUANTILES`], in ms (empty when the workload is not timed).
    latency_ms: Vec<f64>,
    samples: u64,
    /// The server's CPU time per operation (write or delivery) in the timed part, µs, in user
    /// space and in the kernel.
    server_user_us: Option<f64>,
    server_kernel_us: Option<f64>,
    /// The load generator's CPU time per operation in the same part, µs (user + kernel).
    generator_us: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct Median {
    workload: String,
    system: String,
    unit: String,
    /// The median of the runs' figures, in `unit`.
    value: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// This system's figure over Ferrosync's: for a rate, below 1 Ferrosync does more; for
    /// memory, above 1 Ferrosync holds less.
    value_vs_ferrosync: Option<f64>,
    /// This system's p99 over Ferrosync's: above 1, Ferrosync answers sooner.
    p99_vs_ferrosync: Option<f64>,
    /// The server's CPU time per operation, µs (user space and kernel; median of the runs).
    server_cpu_us: Option<f64>,
    /// This system's CPU per operation over Ferrosync's: below 1, it spends less.
    cpu_vs_ferrosync: Option<f64>,
    /// The load generator's CPU time per operation, µs (median of the runs): its client's
    /// share of the work.
    generator_cpu_us: Option<f64>,
    /// The run whose p99 is the median, drawn in the chart.
    latency_ms: Vec<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    cpus: usize,
    /// The core the servers ran on, if pinned; the generator had the others.
    server_cpu: Option<usize>,
    reps: usize,
    versions: Vec<(String, String)>,
    medians: Vec<Median>,
    runs: Vec<Run>,
    skipped: Vec<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Pins this process (every thread it has now, and so every thread they start) to all cores
/// but the last, which the servers get. `None` when there is a single core or no `taskset`.
fn pin_generator(cpus: usize) -> Option<usize> {
    if cpus < 2 {
        return None;
    }
    let server = cpus - 1;
    let mine = if server == 1 { "0".to_owned() } else { format!("0-{}", server - 1) };
    let ok = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &mine, &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(server)
}

pub async fn run(mut args: CompareArgs) -> anyhow::Result<()> {
    if args.quick {
        args.reps = args.reps.min(1);
        args.seconds = 1;
        args.writers = args.writers.min(4);
        args.watch_messages = args.watch_messages.min(50);
        args.fanout = args.fanout.iter().map(|n| (*n).min(50)).collect();
        args.fanout.dedup();
        args.fanout_messages = args.fanout_messages.min(10);
        args.idle = args.idle.min(200);
    }
    let most = args.fanout.iter().copied().chain([args.idle]).max().unwrap_or(0) as u64;
    let _ = rlimit::increase_nofile_limit(most * 2 + 1024);
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let server_cpu = if args.no_pin { None } else { pin_generator(cpus) };
    let nats = peers::find("nats-server");
    let redis = peers::find("redis-server");
    let mut versions = vec![("ferrosync".to_owned(), env!("CARGO_PKG_VERSION").to_owned())];
    let mut skipped = Vec::new();
    match &nats {
        Some(p) => versions.push(("nats-server".into(), peers::version(p, "--version"))),
        None => skipped.push("nats-server is not installed (Debian: apt install nats-server)".to_owned()),
    }
    match &redis {
        Some(p) => versions.push(("redis-server".into(), peers::version(p, "-v"))),
        None => skipped.push("redis-server is not installed (Debian: apt install redis-server)".to_owned()),
    }
    for s in &skipped {
        eprintln!("bench compare: {s}: its rows are skipped");
    }
    let mut workloads = Vec::new();
    for kind in &args.workloads {
        match kind {
            Kind::Cas => workloads.extend([Workload::CasSequential, Workload::CasConcurrent, Workload::CasShared]),
            Kind::Watch => workloads.push(Workload::Watch),
            Kind::Fanout => workloads.extend(args.fanout.iter().map(|n| Workload::Fanout(*n))),
            Kind::Idle => workloads.push(Workload::Idle(args.idle)),
        }
    }

    let mut runs = Vec::new();
    for rep in 0..args.reps {
        for &workload in &workloads {
            for &system in workload.systems() {
                let binary = match system {
                    System::Nats => nats.as_deref(),
                    System::Redis => redis.as_deref(),
                    _ => Some(std::path::Path::new("")),
                };
                let Some(binary) = binary else { continue };
                eprintln!("bench compare: {} on {} (run {} of {})", workload.name(), system.name(), rep + 1, args.reps);
                let (sample, cpu) = measure(&args, workload, system, binary, server_cpu)
                    .await
                    .with_context(|| format!("{} on {}", workload.name(), system.name()))?;
                let ops = match workload {
                    Workload::Fanout(n) => (n * args.fanout_messages) as f64,
                    _ => sample.hist.len() as f64,
                };
                let per_op = |seconds: f64| (ops > 0.0).then(|| round(seconds * 1e6 / ops));
                runs.push(Run {
                    server_user_us: cpu.server.and_then(|c| per_op(c.user)),
                    server_kernel_us: cpu.server.and_then(|c| per_op(c.system)),
                    generator_us: cpu.generator.and_then(|c| per_op(c.total())),
                    workload: workload.name(),
                    system: system.name().to_owned(),
                    rep,
                    value: round(sample.value),
                    latency_ms: if workload.timed() {
                        QUANTILES.iter().map(|q| ms(sample.hist.value_at_quantile(*q))).collect()
                    } else {
                        Vec::new()
                    },
                    samples: sample.hist.len(),
                });
            }
        }
    }

    let mut medians = Vec::new();
    for &workload in &workloads {
        let mut rows: Vec<Median> = Vec::new();
        for &system in workload.systems() {
            let mine: Vec<&Run> =
                runs.iter().filter(|r| r.workload == workload.name() && r.system == system.name()).collect();
            if mine.is_empty() {
                continue;
            }
            let quantile = |i: usize| median(mine.iter().filter_map(|r| r.latency_ms.get(i).copied()).collect());
            let p99 = workload.timed().then(|| quantile(4));
            let typical = mine.iter().min_by(|a, b| {
                let off = |r: &Run| r.latency_ms.get(4).map_or(0.0, |v| (v - p99.unwrap_or(0.0)).abs());
                off(a).total_cmp(&off(b))
            });
            rows.push(Median {
                workload: workload.name(),
                system: system.name().to_owned(),
                unit: workload.unit().to_owned(),
                value: round(median(mine.iter().map(|r| r.value).collect())),
                p50_ms: workload.timed().then(|| quantile(0)),
                p99_ms: p99,
                value_vs_ferrosync: None,
                p99_vs_ferrosync: None,
                server_cpu_us: {
                    let cpu: Vec<f64> =
                        mine.iter().filter_map(|r| Some(r.server_user_us? + r.server_kernel_us?)).collect();
                    (!cpu.is_empty()).then(|| round(median(cpu)))
                },
                cpu_vs_ferrosync: None,
                generator_cpu_us: {
                    let cpu: Vec<f64> = mine.iter().filter_map(|r| r.generator_us).collect();
                    (!cpu.is_empty()).then(|| round(median(cpu)))
                },
                latency_ms: typical.map(|r| r.latency_ms.clone()).unwrap_or_default(),
            });
        }
        // Ratios are to the workload's first row: plain Ferrosync where it runs.
        if let Some(base) = rows.first().cloned() {
            for r in &mut rows {
                r.value_vs_ferrosync = Some(ratio(r.value, base.value));
                r.p99_vs_ferrosync = r.p99_ms.zip(base.p99_ms).map(|(a, b)| ratio(a, b));
                r.cpu_vs_ferrosync = r.server_cpu_us.zip(base.server_cpu_us).map(|(a, b)| ratio(a, b));
            }
        }
        medians.extend(rows);
    }

    println!(
        "{:<36} {:<44} {:>12} {:<17} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>10}",
        "workload",
        "system",
        "value",
        "unit",
        "p50 ms",
        "p99 ms",
        "/ferro",
        "p99/ferro",
        "cpu µs/op",
        "cpu/ferro",
        "gen µs/op"
    );
    for m in &medians {
        let r = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
        println!(
            "{:<36} {:<44} {:>12.0} {:<17} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>10}",
            m.workload,
            m.system,
            m.value,
            m.unit,
            r(m.p50_ms),
            r(m.p99_ms),
            r(m.value_vs_ferrosync),
            r(m.p99_vs_ferrosync),
            r(m.server_cpu_us),
            r(m.cpu_vs_ferrosync),
            r(m.generator_cpu_us)
        );
    }
    let report = Report { cpus, server_cpu, reps: args.reps, versions, medians, runs, skipped };
    std::fs::write(&args.json_out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("cannot write {}", args.json_out.display()))?;
    eprintln!("bench compare: results in {}", args.json_out.display());
    let panels: Vec<chart::Panel> = workloads
        .iter()
        .map(|w| chart::Panel {
            title: w.name(),
            series: report
                .medians
                .iter()
                .filter(|m| m.workload == w.name() && !m.latency_ms.is_empty())
                .map(|m| (m.system.clone(), m.latency_ms.clone()))
                .collect(),
        })
        .filter(|p| !p.series.is_empty())
        .collect();
    match chart::draw(&args.chart, &panels) {
        Ok(()) => eprintln!("bench compare: chart in {}", args.chart.display()),
        Err(e) => eprintln!("bench compare: no chart: {e:#}"),
    }
    Ok(())
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn ms(micros: u64) -> f64 {
    (micros as f64 / 10.0).round() / 100.0
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { (a / b * 100.0).round() / 100.0 } else { f64::NAN }
}

async fn measure(
    args: &CompareArgs,
    workload: Workload,
    system: System,
    binary: &std::path::Path,
    cpu: Option<usize>,
) -> anyhow::Result<(Sample, RunCpu)> {
    match system {
        System::Ferrosync | System::FerrosyncRelaxed | System::FerrosyncWebSocket => {
            let options =
                NodeOptions { cpu, relaxed_durability: system != System::Ferrosync, ..NodeOptions::default() };
            let sid = format!("AC{}", ferrosync_core::auth::random_hex(16));
            let target = spawn_node(&options, &sid, &ferrosync_core::auth::random_hex(16)).await?;
            let transport = match (system, workload) {
                (System::FerrosyncWebSocket, Workload::CasShared) => Transport::OneWebSocket,
                (System::FerrosyncWebSocket, _) => Transport::WebSocket,
                _ => Transport::Http,
            };
            ferrosync(args, workload, &target, transport).await
        }
        System::Nats | System::Redis if !workload.timed() => {
            let server = match system {
                System::Nats => peers::start_nats(binary, cpu).await?,
                _ => peers::start_redis(binary, cpu).await?,
            };
            let addr = server.addr.as_str();
            let per = match system {
                System::Nats => open_measured(Some(server.pid), args.idle, || peers::nats_subscribe(addr)).await?.1,
                _ => open_measured(Some(server.pid), args.idle, || peers::redis_subscribe(addr)).await?.1,
            };
            Ok((idle_sample(per)?, RunCpu::default()))
        }
        System::Nats => {
            let server = peers::start_nats(binary, cpu).await?;
            let (addr, pid) = (server.addr.as_str(), Some(server.pid));
            match workload {
                Workload::CasSequential => {
                    timed_on(pid, peers::nats_conditional_writes(addr, 1, args.seconds, false)).await
                }
                Workload::CasConcurrent => {
                    timed_on(pid, peers::nats_conditional_writes(addr, args.writers, args.seconds, false)).await
                }
                Workload::CasShared => {
                    timed_on(pid, peers::nats_conditional_writes(addr, args.writers, args.seconds, true)).await
                }
                Workload::Watch => peers::nats_watch(addr, pid, args.watch_messages, args.watch_rate).await,
                Workload::Fanout(_) | Workload::Idle(_) => anyhow::bail!("not a NATS workload"),
            }
        }
        System::Redis => {
            let server = peers::start_redis(binary, cpu).await?;
            match workload {
                Workload::Fanout(n) => {
                    peers::redis_fanout(&server.addr, Some(server.pid), n, args.fanout_messages, args.fanout_rate).await
                }
                _ => anyhow::bail!("not a Redis workload"),
            }
        }
    }
}

async fn ferrosync(
    args: &CompareArgs,
    workload: Workload,
    target: &Target,
    transport: Transport,
) -> anyhow::Result<(Sample, RunCpu)> {
    let service = target.post("/api/v1/services", json!({ "friendly_name": "compare" })).await?;
    let service = service["sid"].as_str().context("service sid")?.to_owned();
    let sample = |(value, hist)| Sample { value, hist };
    match workload {
        Workload::CasSequential | Workload::CasConcurrent | Workload::CasShared => {
            let writers = if matches!(workload, Workload::CasSequential) { 1 } else { args.writers };
            let run = conditional_updates(target, &service, writers, args.seconds, transport);
            timed_on(target.pid, async { run.await.map(sample) }).await
        }
        Workload::Watch | Workload::Fanout(_) => {
            let (subscribers, messages, rate) = match workload {
                Workload::Fanout(n) => (n, args.fanout_messages, args.fanout_rate),
                _ => (1, args.watch_messages, args.watch_rate),
            };
            let token = subscriber_token(target, &service).await?;
            let (sockets, _) = open_idle(target, &token, subscribers).await?;
            let (value, hist, cpu) = fanout(target, &service, sockets, messages, rate, transport).await?;
            Ok((Sample { value, hist }, cpu))
        }
        Workload::Idle(n) => {
            let token = subscriber_token(target, &service).await?;
            let doc = target
                .post(&format!("/api/v1/services/{service}/documents"), json!({ "unique_name": "idle", "data": {} }))
                .await?;
            let doc = doc["sid"].as_str().context("doc sid")?;
            let url = target.ws_url(&token);
            let open = || async {
                let mut ws = open_one(&url).await?;
                subscribe_document(&mut ws, doc).await?;
                Ok(ws)
            };
            Ok((idle_sample(open_measured(target.pid, n, open).await?.1)?, RunCpu::default()))
        }
    }
}

/// A token for the bench's subscribers in `service`.
async fn subscriber_token(target: &Target, service: &str) -> anyhow::Result<String> {
    let token = target.post("/api/v1/tokens", json!({ "service": service, "identity": "bench", "ttl": 3600 })).await?;
    Ok(token["token"].as_str().context("token")?.to_owned())
}

/// The memory workload's sample: the bytes per connection, no latencies.
fn idle_sample(per_connection: Option<f64>) -> anyhow::Result<Sample> {
    let value = per_connection.context("the server's memory cannot be read (Linux /proc only)")?;
    Ok(Sample { value, hist: Histogram::new(1)? })
}
