//! `ferrosync bench`: the foundation's six figures, measured end to end over real HTTP and
//! WebSocket connections. By default it starts its own server as a child process (so the
//! server's memory can be read apart from the load generator's) on a temporary data dir.

use anyhow::{Context, bail};
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};
use tokio_tungstenite::tungstenite::Message;

mod cognito;
mod compare;
mod cross_node;
mod livequery;
mod matrix;
mod proxy;
mod reconnect;
mod sdk;
mod soak;
use cross_node::cross_node;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Target a running server instead of starting one.
    #[arg(long)]
    pub url: Option<String>,
    /// Root account SID of the --url server.
    #[arg(long, env = "FERROSYNC_ACCOUNT_SID", hide_env_values = true)]
    pub account_sid: Option<String>,
    /// Root auth token of the --url server.
    #[arg(long, env = "FERROSYNC_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// PID of the --url server, to measure its memory per idle connection.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Concurrent HTTP clients doing conditional updates.
    #[arg(long, default_value_t = 64)]
    pub writers: usize,
    /// Seconds the conditional-update phase runs.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// WebSocket subscribers of one document (also the idle connections measured).
    #[arg(long, default_value_t = 10_000)]
    pub subscribers: usize,
    /// Updates the fan-out writer makes.
    #[arg(long, default_value_t = 300)]
    pub fanout_updates: usize,
    /// Updates per second the fan-out writer sends (open loop: it does not wait for acks).
    #[arg(long, default_value_t = 100.0)]
    pub fanout_rate: f64,
    /// Long-polls waiting for one write.
    #[arg(long, default_value_t = 1_000)]
    pub longpolls: usize,
    /// WebSocket subscribers of the reconnect storm: all drop, miss --storm-missed changes, and
    /// reconnect and resume at once.
    #[arg(long, default_value_t = 10_000)]
    pub storm_clients: usize,
    #[arg(long, default_value_t = 10)]
    pub storm_missed: usize,
    /// Store of the servers the bench starts: `sqlite` (default) or a `postgres://` URL. On
    /// PostgreSQL the bench also starts a three-node cluster and measures cross-node delivery.
    #[arg(long)]
    pub store: Option<String>,
    /// Writes per second the cross-node phase makes on one node (open loop).
    #[arg(long, default_value_t = 1_000.0)]
    pub cluster_rate: f64,
    /// Seconds the cross-node phase writes.
    #[arg(long, default_value_t = 5)]
    pub cluster_seconds: u64,
    /// WebSocket subscribers on another node in the cross-node phase.
    #[arg(long, default_value_t = 100)]
    pub cluster_subscribers: usize,
    /// Matrix users, in rooms of --matrix-room-size (each user in one room). A --url server
    /// needs open Matrix registration.
    #[arg(long, default_value_t = 1_000)]
    pub matrix_users: usize,
    /// Members of each Matrix room.
    #[arg(long, default_value_t = 10)]
    pub matrix_room_size: usize,
    /// Messages sent, one at a time, while every Matrix user long-polls `/sync`.
    #[arg(long, default_value_t = 200)]
    pub matrix_sends: usize,
    /// Items of the live-query phase, spread over its Maps (1,000 teams).
    #[arg(long, default_value_t = 100_000)]
    pub livequery_items: usize,
    /// Live queries (`data.team == "t<q>"`), all subscribed before the load starts.
    #[arg(long, default_value_t = 1_000)]
    pub livequeries: usize,
    /// WebSocket connections the live queries are spread over (and Maps the items are in).
    #[arg(long, default_value_t = 50)]
    pub livequery_connections: usize,
    /// Item updates per second in the live-query phase (open loop, for --seconds).
    #[arg(long, default_value_t = 10_000.0)]
    pub livequery_rate: f64,
    /// Small numbers everywhere: a smoke run of the whole bench in seconds.
    #[arg(long)]
    pub quick: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// The same workloads against Ferrosync, NATS JetStream KV and Redis, side by side.
    Compare(compare::CompareArgs),
    /// A long steady load (10,000 subscribers, 30 minutes by default): memory must stay flat
    /// and every event arrive.
    Soak(soak::SoakArgs),
}

struct Target {
    base: String,
    http: reqwest::Client,
    sid: String,
    token: String,
    pid: Option<u32>,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug, serde::Serialize)]
struct Report {
    conditional_updates_per_s: f64,
    conditional_update_p99_ms: f64,
    /// Cognito Sync round trips (ListRecords + UpdateRecords) per second, and their p99.
    cognito_syncs_per_s: f64,
    cognito_sync_p99_ms: f64,
    /// Twilio Proxy messages handed in by webhook and relayed to the partner's in-app Sync
    /// Stream per second, and the p99 from the webhook's send to the message on the stream.
    proxy_relays_per_s: f64,
    proxy_relay_p99_ms: f64,
    fanout_deliveries_per_s: f64,
    fanout_p99_ms: f64,
    idle_connection_bytes: Option<f64>,
    longpoll_wake_p99_ms: f64,
    /// A reconnect storm: --storm-clients subscribers reconnect at once and resume from their
    /// tokens; from the storm's start to the last one holding every change it missed, and the
    /// p99 of one client's.
    reconnect_storm_s: f64,
    reconnect_catch_up_p99_ms: f64,
    /// Incremental Matrix `/sync` (`timeout=0`) covering one new message in the user's room.
    matrix_incremental_sync_p50_ms: f64,
    matrix_incremental_sync_p99_ms: f64,
    /// From a message send's start to a long-polling member's `/sync` answer holding it, with
    /// every Matrix user long-polling.
    matrix_longpoll_wake_p50_ms: f64,
    matrix_longpoll_wake_p99_ms: f64,
    /// Registering the Matrix users, creating and joining their rooms, first syncs.
    matrix_setup_s: f64,
    /// Live-query events (`live_query_item_updated`) read per second across all connections,
    /// with --livequeries queries over --livequery-items items under --livequery-rate updates/s.
    livequery_updates_per_s: f64,
    /// p99 of a write's delivery as a live-query event minus p99 of the same load's delivery to
    /// plain Map subscriptions of a service without live queries, written in alternation with
    /// the queried one (unclamped: may be negative).
    livequery_added_p99_ms: f64,
    /// Increments per second of one shared counter by --writers SDK clients (at most 16),
    /// each `Document::mutate` (If-Match, retried on conflict), and the p99 of one increment.
    sdk_increments_per_s: f64,
    sdk_increment_p99_ms: f64,
    /// From an SDK `SyncMap::set` called to the change out of another SDK client's
    /// subscription stream.
    sdk_delivery_p99_ms: f64,
    /// The store the figures were measured on.
    store: String,
    /// From a write's send on one node to its delivery to a WebSocket subscriber on another
    /// (PostgreSQL only).
    cross_node_delivery_p99_ms: Option<f64>,
    cross_node_writes_per_s: Option<f64>,
}

pub async fn run(mut args: BenchArgs) -> anyhow::Result<()> {
    match args.command.take() {
        Some(BenchCommand::Compare(compare)) => return compare::run(compare).await,
        Some(BenchCommand::Soak(soak)) => return soak::run(soak).await,
        None => {}
    }
    if args.quick {
        args.writers = args.writers.min(8);
        args.seconds = 1;
        args.subscribers = args.subscribers.min(200);
        args.fanout_updates = args.fanout_updates.min(10);
        args.longpolls = args.longpolls.min(50);
        args.storm_clients = args.storm_clients.min(200);
        args.cluster_seconds = 1;
        args.cluster_subscribers = args.cluster_subscribers.min(10);
        args.cluster_rate = args.cluster_rate.min(100.0);
        args.matrix_users = args.matrix_users.min(50);
        args.matrix_sends = args.matrix_sends.min(10);
        args.livequery_items = args.livequery_items.min(2_000);
        args.livequeries = args.livequeries.min(100);
        args.livequery_connections = args.livequery_connections.min(10);
        args.livequery_rate = args.livequery_rate.min(500.0);
    }
    // 10,000 sockets on each side need more descriptors than the usual soft limit.
    let sockets = args.subscribers.max(args.matrix_users) as u64 + args.longpolls as u64;
    let _ = rlimit::increase_nofile_limit(sockets * 2 + 1024);
    let target = start_target(&args).await?;
    let service = target.post("/api/v1/services", json!({ "friendly_name": "bench" })).await?;
    let service = service["sid"].as_str().context("service sid")?.to_owned();
    let progress = |msg: &str| {
        if !args.json {
            eprintln!("bench: {msg}");
        }
    };

    progress(&format!("conditional updates: {} clients for {} s", args.writers, args.seconds));
    let meter = CpuMeter::start(&target);
    let (updates_per_s, update_hist) = conditional_updates(&target, &service, args.writers, args.seconds).await?;
    meter.report("conditional updates", args.json);

    progress(&format!("Cognito Sync round trips: {} identities for {} s", args.writers, args.seconds));
    let meter = CpuMeter::start(&target);
    let (cognito_per_s, cognito_hist) =
        cognito::syncs(&target.base, &target.sid, &target.token, args.writers, args.seconds).await?;
    meter.report("Cognito Sync round trips", args.json);

    progress(&format!("Proxy relay: {} sessions for {} s", args.writers, args.seconds));
    let meter = CpuMeter::start(&target);
    let relay = proxy::relays(&target, args.writers, args.seconds, args.json).await?;
    meter.report("Proxy relay", args.json);

    progress(&format!("idle connections: opening {}", args.subscribers));
    let identity_token =
        target.post("/api/v1/tokens", json!({ "service": service, "identity": "bench", "ttl": 3600 })).await?["token"]
            .as_str()
            .context("token")?
            .to_owned();
    let (sockets, idle_bytes) = open_idle(&target, &identity_token, args.subscribers).await?;

    progress(&format!(
        "fan-out: {} updates at {}/s to {} subscribers",
        args.fanout_updates, args.fanout_rate, args.subscribers
    ));
    let meter = CpuMeter::start(&target);
    let (fanout_per_s, fanout_hist) = fanout(&target, &service, sockets, args.fanout_updates, args.fanout_rate).await?;
    meter.report("fan-out", args.json);

    progress(&format!("long-poll wake: {} waiting polls", args.longpolls));
    let meter = CpuMeter::start(&target);
    let wake_hist = longpoll_wake(&target, &service, args.longpolls).await?;
    meter.report("long-poll wake", args.json);

    progress(&format!(
        "reconnect storm: {} subscribers reconnect at once, {} changes missed",
        args.storm_clients, args.storm_missed
    ));
    let meter = CpuMeter::start(&target);
    let storm = reconnect::storm(&target, &service, &identity_token, args.storm_clients, args.storm_missed).await?;
    meter.report("reconnect storm", args.json);

    progress(&format!(
        "Matrix: {} users in rooms of {}, {} sends",
        args.matrix_users, args.matrix_room_size, args.matrix_sends
    ));
    let matrix =
        matrix::matrix(&target, args.matrix_users, args.matrix_room_size, args.matrix_sends, args.json).await?;

    progress(&format!(
        "live queries: {} queries over {} items on {} connections, {} updates/s for {} s",
        args.livequeries, args.livequery_items, args.livequery_connections, args.livequery_rate, args.seconds
    ));
    let live = livequery::run(
        &target,
        &livequery::Settings {
            items: args.livequery_items,
            queries: args.livequeries,
            connections: args.livequery_connections,
            rate: args.livequery_rate,
            seconds: args.seconds,
            quiet: args.json,
        },
    )
    .await?;

    let sdk_clients = args.writers.min(16);
    progress(&format!("Rust SDK: {sdk_clients} clients mutating one counter for {} s, then delivery", args.seconds));
    let meter = CpuMeter::start(&target);
    let sdk = sdk::run(&target, &service, sdk_clients, args.seconds).await?;
    meter.report("Rust SDK", args.json);

    let on_postgres = args.store.as_deref().is_some_and(|s| s.starts_with("postgres"));
    let cross = match (&args.store, on_postgres && args.url.is_none()) {
        (Some(store), true) => {
            progress(&format!(
                "cross-node delivery: {} writes/s on node C for {} s, {} subscribers on nodes A and B",
                args.cluster_rate, args.cluster_seconds, args.cluster_subscribers
            ));
            // Nodes B and C join the bench's server (node A): subscribers on A and B, writes on C.
            let node = NodeOptions { store: Some(store.as_str()), ..NodeOptions::default() };
            let mid = spawn_node(&node, &target.sid, &target.token).await?;
            let far = spawn_node(&node, &target.sid, &target.token).await?;
            let (rate, hist) = cross_node(
                &[&target, &mid],
                &far,
                &service,
                args.cluster_subscribers,
                args.cluster_rate,
                args.cluster_seconds,
            )
            .await?;
            Some((rate, hist))
        }
        _ => None,
    };

    let report = Report {
        conditional_updates_per_s: round(updates_per_s),
        conditional_update_p99_ms: ms(update_hist.value_at_quantile(0.99)),
        cognito_syncs_per_s: round(cognito_per_s),
        cognito_sync_p99_ms: ms(cognito_hist.value_at_quantile(0.99)),
        proxy_relays_per_s: round(relay.per_s),
        proxy_relay_p99_ms: ms(relay.relay.value_at_quantile(0.99)),
        fanout_deliveries_per_s: round(fanout_per_s),
        fanout_p99_ms: ms(fanout_hist.value_at_quantile(0.99)),
        idle_connection_bytes: idle_bytes.map(round),
        longpoll_wake_p99_ms: ms(wake_hist.value_at_quantile(0.99)),
        reconnect_storm_s: (storm.all.as_secs_f64() * 100.0).round() / 100.0,
        reconnect_catch_up_p99_ms: ms(storm.caught_up.value_at_quantile(0.99)),
        matrix_incremental_sync_p50_ms: ms(matrix.incremental.value_at_quantile(0.5)),
        matrix_incremental_sync_p99_ms: ms(matrix.incremental.value_at_quantile(0.99)),
        matrix_longpoll_wake_p50_ms: ms(matrix.wake.value_at_quantile(0.5)),
        matrix_longpoll_wake_p99_ms: ms(matrix.wake.value_at_quantile(0.99)),
        matrix_setup_s: round(matrix.setup.as_secs_f64()),
        livequery_updates_per_s: round(live.live.events_per_s),
        livequery_added_p99_ms: (live.added_p99_ms() * 100.0).round() / 100.0,
        sdk_increments_per_s: round(sdk.increments_per_s),
        sdk_increment_p99_ms: ms(sdk.increment.value_at_quantile(0.99)),
        sdk_delivery_p99_ms: ms(sdk.delivery.value_at_quantile(0.99)),
        store: if on_postgres { "postgres".into() } else { "sqlite".into() },
        cross_node_delivery_p99_ms: cross.as_ref().map(|(_, h)| ms(h.value_at_quantile(0.99))),
        cross_node_writes_per_s: cross.as_ref().map(|(r, _)| round(*r)),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{:<34} {:>14} {:>10} {:>10} {:>10}", "figure", "value", "p50 ms", "p99 ms", "max ms");
        let row = |name: &str, value: String, h: Option<&Histogram<u64>>| {
            let (p50, p99, max) = h
                .map(|h| (ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99)), ms(h.max())))
                .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
            println!("{name:<34} {value:>14} {p50:>10.2} {p99:>10.2} {max:>10.2}");
        };
        row(
            &format!("conditional updates/s ({} clients)", args.writers),
            format!("{:.0}", report.conditional_updates_per_s),
            Some(&update_hist),
        );
        row(
            &format!("Cognito syncs/s ({} identities)", args.writers),
            format!("{:.0}", report.cognito_syncs_per_s),
            Some(&cognito_hist),
        );
        row(
            &format!("Proxy relays/s ({} sessions)", args.writers),
            format!("{:.0}", report.proxy_relays_per_s),
            Some(&relay.relay),
        );
        row("fan-out deliveries/s", format!("{:.0}", report.fanout_deliveries_per_s), Some(&fanout_hist));
        row(
            "idle connection bytes",
            report.idle_connection_bytes.map(|b| format!("{b:.0}")).unwrap_or_else(|| "n/a".into()),
            None,
        );
        row("long-poll wake", format!("{} polls", args.longpolls), Some(&wake_hist));
        row(
            &format!("reconnect storm s ({} clients)", args.storm_clients),
            format!("{:.2}", report.reconnect_storm_s),
            Some(&storm.caught_up),
        );
        row("Matrix incremental /sync", format!("{} users", args.matrix_users), Some(&matrix.incremental));
        row("Matrix long-poll wake", format!("{} polls", args.matrix_users), Some(&matrix.wake));
        row("Matrix setup s (register, rooms)", format!("{:.1}", report.matrix_setup_s), None);
        row(
            &format!("live-query events/s ({} queries)", args.livequeries),
            format!("{:.0}", report.livequery_updates_per_s),
            Some(&live.live.latency),
        );
        row("  plain Map events/s, same load", format!("{:.0}", live.plain.events_per_s), Some(&live.plain.latency));
        row(
            "  updates/s achieved (live, plain)",
            format!("{:.0}, {:.0}", live.live.writes_per_s, live.plain.writes_per_s),
            None,
        );
        row("  live query added p99 ms", format!("{:.2}", report.livequery_added_p99_ms), None);
        row("  … from the writes' answers, ms", format!("{:.2}", live.added_p99_after_answer_ms()), None);
        row(&format!("  load s (2 × {} items)", args.livequery_items), format!("{:.1}", live.load.as_secs_f64()), None);
        row(
            &format!("SDK counter increments/s ({sdk_clients})"),
            format!("{:.0}", report.sdk_increments_per_s),
            Some(&sdk.increment),
        );
        row("SDK set → other client's event", format!("{} sets", sdk.delivery.len()), Some(&sdk.delivery));
        if let Some((rate, hist)) = &cross {
            row("cross-node delivery (writes/s)", format!("{rate:.0}"), Some(hist));
        }
    }
    Ok(())
}

fn cpu_seconds(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Prints server and generator CPU use of a phase (table mode only).
struct CpuMeter<'a> {
    target: &'a Target,
    server: Option<f64>,
    own: Option<f64>,
    wall: Instant,
}

impl<'a> CpuMeter<'a> {
    fn start(target: &'a Target) -> Self {
        CpuMeter { target, server: target.server_cpu(), own: cpu_seconds("/proc/self/stat"), wall: Instant::now() }
    }

    fn report(self, phase: &str, quiet: bool) {
        if quiet {
            return;
        }
        let wall = self.wall.elapsed().as_secs_f64();
        let server = self.target.server_cpu().zip(self.server).map(|(b, a)| b - a);
        let own = cpu_seconds("/proc/self/stat").zip(self.own).map(|(b, a)| b - a);
        if let (Some(server), Some(own)) = (server, own) {
            eprintln!("bench: {phase}: {wall:.1} s wall, server {server:.1} s CPU, generator {own:.1} s CPU");
        }
    }
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Microseconds to milliseconds with two decimals.
fn ms(micros: u64) -> f64 {
    (micros as f64 / 10.0).round() / 100.0
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 min with 3 significant digits; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

async fn start_target(args: &BenchArgs) -> anyhow::Result<Target> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(4096).tcp_nodelay(true).build()?;
    if let Some(url) = &args.url {
        let (Some(sid), Some(token)) = (args.account_sid.clone(), args.auth_token.clone()) else {
            bail!("--url needs --account-sid and --auth-token (or FERROSYNC_ACCOUNT_SID / FERROSYNC_AUTH_TOKEN)");
        };
        return Ok(Target {
            base: url.trim_end_matches('/').to_owned(),
            http,
            sid,
            token,
            pid: args.server_pid,
            child: None,
            _dir: None,
        });
    }
    let sid = format!("AC{}", ferrosync_core::auth::random_hex(16));
    let token = ferrosync_core::auth::random_hex(16);
    spawn_node(&NodeOptions { store: args.store.as_deref(), ..NodeOptions::default() }, &sid, &token).await
}

/// How a bench server is started.
#[derive(Debug, Clone, Copy, Default)]
struct NodeOptions<'a> {
    /// `None`: the embedded store in a temporary directory.
    store: Option<&'a str>,
    /// The CPU the server runs on (`taskset`), apart from the load generator's.
    cpu: Option<usize>,
    /// Commits reach the disk at checkpoints only (`synchronous = NORMAL`), not every commit.
    relaxed_durability: bool,
}

/// `program` run through `taskset -c cpu` when a CPU is given.
fn pinned_command(program: &std::ffi::OsStr, cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Starts a server as a child process on a free port (on `store`, else the embedded store in a
/// temporary directory) and waits until it is ready. Nodes given the same PostgreSQL store and
/// credentials form one cluster.
async fn spawn_node(options: &NodeOptions<'_>, sid: &str, token: &str) -> anyhow::Result<Target> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(4096).tcp_nodelay(true).build()?;
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut command = pinned_command(std::env::current_exe()?.as_os_str(), options.cpu);
    command.args(["serve", "--listen", &format!("127.0.0.1:{port}")]).arg("--data-dir").arg(dir.path());
    if let Some(store) = options.store {
        command.args(["--store", store]);
    }
    if options.relaxed_durability {
        command.env("FERROSYNC_DURABILITY", "normal");
    }
    let child = command
        .env("FERROSYNC_ACCOUNT_SID", sid)
        .env("FERROSYNC_AUTH_TOKEN", token)
        .env("RUST_LOG", "warn")
        // The Matrix phase registers its users through the API.
        .env("FERROSYNC_MATRIX_REGISTRATION", "open")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the server")?;
    let target = Target {
        base: format!("http://127.0.0.1:{port}"),
        http,
        sid: sid.to_owned(),
        token: token.to_owned(),
        pid: Some(child.id()),
        child: Some(child),
        _dir: Some(dir),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = target.http.get(format!("{}/readyz", target.base)).send().await
            && r.status().is_success()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the server did not become ready within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(target)
}

impl Target {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.sid, Some(&self.token))
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {v}");
        }
        Ok(v)
    }

    fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// CPU seconds the server process has used (Linux), to tell server cost from generator cost.
    fn server_cpu(&self) -> Option<f64> {
        cpu_seconds(&format!("/proc/{}/stat", self.pid?))
    }

    fn ws_url(&self, token: &str) -> String {
        format!("{}/api/v1/connect?token={token}", self.base.replacen("http", "ws", 1))
    }
}

async fn conditional_updates(
    t: &Target,
    service: &str,
    writers: usize,
    seconds: u64,
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
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for doc in docs {
        let http = t.http.clone();
        let url = format!("{}/api/v1/services/{service}/documents/{doc}", t.base);
        let (sid, token) = (t.sid.clone(), t.token.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram();
            let mut revision = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let r = http
                    .put(&url)
                    .basic_auth(&sid, Some(&token))
                    .header("If-Match", revision.to_string())
                    .json(&json!({ "data": { "n": n } }))
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("conditional update failed: {}", r.status());
                }
                let v: Value = r.json().await?;
                revision = v["revision"].as_u64().context("revision")?;
                let _ = hist.record(t0.elapsed().as_micros() as u64);
                n += 1;
            }
            Ok::<_, anyhow::Error>((n, hist))
        }));
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

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `n` authenticated WebSockets; returns them and the server's RSS growth per socket.
async fn open_idle(t: &Target, token: &str, n: usize) -> anyhow::Result<(Vec<Socket>, Option<f64>)> {
    let url = t.ws_url(token);
    let connect = |count: usize| {
        let url = url.clone();
        async move {
            let limit = Arc::new(Semaphore::new(256));
            let mut tasks = Vec::with_capacity(count);
            for _ in 0..count {
                let (url, limit) = (url.clone(), limit.clone());
                tasks.push(tokio::spawn(async move {
                    let _permit = limit.acquire_owned().await?;
                    // A burst of connects can overrun the listen backlog; try again, briefly.
                    let mut attempt = 0;
                    loop {
                        attempt += 1;
                        match open_one(&url).await {
                            Ok(ws) => return Ok::<_, anyhow::Error>(ws),
                            Err(e) if attempt >= 3 => return Err(e),
                            Err(_) => tokio::time::sleep(Duration::from_millis(100 * attempt)).await,
                        }
                    }
                }));
            }
            let mut out = Vec::with_capacity(count);
            for task in tasks {
                out.push(task.await??);
            }
            Ok::<_, anyhow::Error>(out)
        }
    };
    // Warm up so one-time allocations are not charged to the connections measured.
    let warm = (n / 20).max(1).min(n);
    let mut sockets = connect(warm).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = t.rss_bytes();
    sockets.extend(connect(n - warm).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = t.rss_bytes();
    let per = match (before, after) {
        (Some(b), Some(a)) if n > warm => Some(a.saturating_sub(b) as f64 / (n - warm) as f64),
        _ => None,
    };
    Ok((sockets, per))
}

async fn open_one(url: &str) -> anyhow::Result<Socket> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    match tokio::time::timeout(Duration::from_secs(30), ws.next()).await? {
        Some(Ok(Message::Text(t))) if t.contains("\"connected\"") => Ok(ws),
        other => bail!("unexpected first frame {other:?}"),
    }
}

async fn fanout(
    t: &Target,
    service: &str,
    sockets: Vec<Socket>,
    updates: usize,
    rate: f64,
) -> anyhow::Result<(f64, Histogram<u64>)> {
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
            let sub = json!({ "type": "subscribe", "id": 1, "kind": "document", "object": doc }).to_string();
            ws.send(Message::text(sub)).await?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) if text.contains("\"reply\"") => break,
                    Some(Ok(_)) => continue,
                    other => bail!("subscription failed: {other:?}"),
                }
            }
            ready.add_permits(1);
            // From here on frames are counted straight off the socket: a full WebSocket client
            // per subscriber would make the generator, not the server, the bottleneck.
            let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.into_inner() else {
                bail!("the bench speaks plain ws:// only");
            };
            let local = count_events(tcp, updates, sampled, epoch, &delivered).await?;
            hist.lock().await.add(local)?;
            Ok::<_, anyhow::Error>(Instant::now())
        }));
    }
    tokio::time::timeout(Duration::from_secs(120), ready.acquire_many(subscribers as u32))
        .await
        .context("subscribers did not all subscribe within 120 s")??
        .forget();
    let url = format!("{}/api/v1/services/{service}/documents/{doc}", t.base);
    let started = Instant::now();
    // Open loop: updates leave on schedule whether or not earlier ones were acknowledged, as
    // independent app servers would send them.
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut writes = Vec::with_capacity(updates);
    for i in 0..updates {
        tick.tick().await;
        let (http, url, sid, token) = (t.http.clone(), url.clone(), t.sid.clone(), t.token.clone());
        let t_us = epoch.elapsed().as_micros() as u64;
        writes.push(tokio::spawn(async move {
            let data = json!({ "data": { "t": t_us, "i": i } });
            let r = http.put(&url).basic_auth(&sid, Some(&token)).json(&data).send().await?;
            if !r.status().is_success() {
                bail!("fan-out update failed: {}", r.status());
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for w in writes {
        w.await??;
    }
    let expected = (subscribers * updates) as u64;
    let wait = async {
        let mut last = started;
        for reader in readers {
            last = last.max(reader.await??);
        }
        Ok::<_, anyhow::Error>(last)
    };
    let last = tokio::time::timeout(Duration::from_secs(300), wait).await.with_context(|| {
        format!("only {} of {expected} deliveries within 300 s", delivered.load(Ordering::Relaxed))
    })??;
    let elapsed = last.duration_since(started).as_secs_f64();
    let got = delivered.load(Ordering::Relaxed);
    if got != expected {
        bail!("fan-out delivered {got} events, expected {expected}");
    }
    let hist = hist.lock().await.clone();
    Ok((got as f64 / elapsed, hist))
}

async fn longpoll_wake(t: &Target, service: &str, polls: usize) -> anyhow::Result<Histogram<u64>> {
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
async fn wait_for_polls(t: &Target, n: usize) -> anyhow::Result<()> {
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
async fn count_events(
    mut tcp: tokio::net::TcpStream,
    updates: usize,
    sampled: bool,
    epoch: Instant,
    delivered: &AtomicU64,
) -> anyhow::Result<Histogram<u64>> {
    use tokio::io::AsyncReadExt;
    let mut local = histogram();
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
                if sampled {
                    let v: Value = serde_json::from_slice(payload)?;
                    if let Some(sent) = v["event"]["data"]["t"].as_u64() {
                        let now = epoch.elapsed().as_micros() as u64;
                        let _ = local.record(now.saturating_sub(sent).max(1));
                    }
                }
            }
            at += next;
        }
        buf.drain(..at);
    }
    Ok(local)
}

/// One complete frame at the start of `buf`: (opcode, payload, bytes consumed).
fn next_frame(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
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
fn complete_response(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    buf.len() >= end + 4 + length
}
