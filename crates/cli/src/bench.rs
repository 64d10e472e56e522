//! `ferrosync bench`: the foundation's six figures, measured end to end over real HTTP and
//! WebSocket connections. By default it starts its own server as a child process (so the
//! server's memory can be read apart from the load generator's) on a temporary data dir.

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::json;

mod cognito;
mod compare;
mod cross_node;
mod foundation;
mod livequery;
mod matrix;
mod proxy;
mod reconnect;
mod sdk;
mod soak;
mod target;
mod twilsock;
use cross_node::cross_node;
use foundation::{Socket, Transport, conditional_updates, fanout, longpoll_wake, open_idle, open_one};
use target::{CpuMeter, NodeOptions, Target, pinned_command, spawn_node, start_target};

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
    #[command(flatten)]
    pub twilsock: twilsock::TwilsockArgs,
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
    /// Twilsock notifications (`document_updated`) per second to --twilsock-connections
    /// SDK-protocol subscribers of --twilsock-documents documents updated through the Twilio
    /// Sync REST face, and from an update's send to its notification at a subscriber.
    twilsock_deliveries_per_s: f64,
    twilsock_delivery_p50_ms: f64,
    twilsock_delivery_p99_ms: f64,
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
        args.twilsock.connections = args.twilsock.connections.min(50);
        args.twilsock.updates = args.twilsock.updates.min(10);
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
    let sockets = args.subscribers.max(args.matrix_users).max(args.twilsock.connections) as u64 + args.longpolls as u64;
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
    let (updates_per_s, update_hist) =
        conditional_updates(&target, &service, args.writers, args.seconds, Transport::Http).await?;
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
    let (fanout_per_s, fanout_hist, _) =
        fanout(&target, &service, sockets, args.fanout_updates, args.fanout_rate, Transport::Http).await?;
    meter.report("fan-out", args.json);

    progress(&format!(
        "twilsock: {} updates at {}/s over {} documents to {} SDK-protocol subscribers",
        args.twilsock.updates, args.twilsock.rate, args.twilsock.documents, args.twilsock.connections
    ));
    let meter = CpuMeter::start(&target);
    let twilsock = twilsock::run(&target, &service, &args.twilsock, args.json).await?;
    meter.report("twilsock", args.json);

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
        twilsock_deliveries_per_s: round(twilsock.per_s),
        twilsock_delivery_p50_ms: ms(twilsock.latency.value_at_quantile(0.5)),
        twilsock_delivery_p99_ms: ms(twilsock.latency.value_at_quantile(0.99)),
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
            &format!("twilsock deliveries/s ({} conns)", args.twilsock.connections),
            format!("{:.0}", report.twilsock_deliveries_per_s),
            Some(&twilsock.latency),
        );
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

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Microseconds to milliseconds with two decimals.
fn ms(micros: u64) -> f64 {
    (micros as f64 / 10.0).round() / 100.0
}

/// Latencies (µs) one of many concurrent readers saw, put into a histogram once it is done. A
/// histogram is about 170 KB, and a thousand of them each faulting its pages in (a 2 MB huge
/// page at a time) at its first record stalled the generator for hundreds of milliseconds,
/// just as the first events arrived: that showed as the server's latency.
#[derive(Debug, Default)]
pub(super) struct Samples(Vec<u64>);

impl Samples {
    pub(super) fn record(&mut self, micros: u64) {
        self.0.push(micros.max(1));
    }

    pub(super) fn add_to(&self, hist: &mut Histogram<u64>) {
        for v in &self.0 {
            let _ = hist.record(*v);
        }
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 min with 3 significant digits; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}
