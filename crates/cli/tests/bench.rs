//! `ferrosync bench` and its subcommands, run as a user would run them (short runs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;
use support::{ferrosync, run_bounded_for, stdout};

/// Runs `bench --quick --json` (with `extra` flags) and checks the figures every store
/// reports; returns the report.
fn bench_report(extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["bench", "--quick", "--json"];
    args.extend_from_slice(extra);
    let out = stdout(&ferrosync(dir.path(), &args));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let mut keys: Vec<&str> = report.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let figures = [
        "conditional_updates_per_s",
        "conditional_update_p99_ms",
        "cognito_syncs_per_s",
        "cognito_sync_p99_ms",
        "proxy_relays_per_s",
        "proxy_relay_p99_ms",
        "fanout_deliveries_per_s",
        "fanout_p99_ms",
        "twilsock_deliveries_per_s",
        "twilsock_delivery_p50_ms",
        "twilsock_delivery_p99_ms",
        "idle_connection_bytes",
        "longpoll_wake_p99_ms",
        "reconnect_storm_s",
        "reconnect_catch_up_p99_ms",
        "matrix_incremental_sync_p50_ms",
        "matrix_incremental_sync_p99_ms",
        "matrix_longpoll_wake_p50_ms",
        "matrix_longpoll_wake_p99_ms",
        "matrix_setup_s",
        "livequery_updates_per_s",
        "sdk_increments_per_s",
        "sdk_increment_p99_ms",
        "sdk_delivery_p99_ms",
    ];
    let mut expected: Vec<&str> = figures
        .iter()
        .copied()
        .chain(["store", "cross_node_delivery_p99_ms", "cross_node_writes_per_s", "livequery_added_p99_ms"])
        .collect();
    expected.sort_unstable();
    assert_eq!(keys, expected);
    for key in figures {
        let v = report[key].as_f64().unwrap_or_else(|| panic!("{key} is a number: {report}"));
        assert!(v.is_finite() && v >= 0.0, "{key} = {v}");
    }
    assert!(report["conditional_updates_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["fanout_deliveries_per_s"].as_f64().unwrap() > 0.0);
    // The twilsock phase fails the run unless every subscriber got every update of its
    // document exactly once, so a report means all were delivered.
    assert!(report["twilsock_deliveries_per_s"].as_f64().unwrap() > 0.0, "{report}");
    let (p50, p99) =
        (report["twilsock_delivery_p50_ms"].as_f64().unwrap(), report["twilsock_delivery_p99_ms"].as_f64().unwrap());
    assert!(p99 > 0.0 && p50 <= p99, "{report}");
    assert!(report["cognito_syncs_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["proxy_relays_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["matrix_longpoll_wake_p99_ms"].as_f64().unwrap() > 0.0);
    assert!(report["livequery_updates_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["sdk_increments_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["sdk_delivery_p99_ms"].as_f64().unwrap() > 0.0);
    assert!(report["reconnect_storm_s"].as_f64().unwrap() > 0.0);
    // A difference of two p99s: finite, of either sign.
    let added = report["livequery_added_p99_ms"].as_f64().unwrap_or_else(|| panic!("added p99: {report}"));
    assert!(added.is_finite(), "{report}");
    report
}

#[test]
fn bench_prints_all_its_figures_as_json() {
    let report = bench_report(&[]);
    assert_eq!(report["store"], "sqlite");
    assert!(report["cross_node_delivery_p99_ms"].is_null(), "one node has no cross-node figure: {report}");
}

#[test]
fn bench_on_postgres_reports_the_same_figures_and_cross_node_delivery() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(url) = runtime.block_on(ferrosync_store::testing::fresh_postgres_url()) else { return };
    let report = bench_report(&["--store", &url]);
    assert_eq!(report["store"], "postgres");
    let p99 = report["cross_node_delivery_p99_ms"].as_f64().unwrap_or_else(|| panic!("cross-node p99: {report}"));
    assert!(p99 > 0.0 && p99.is_finite(), "{report}");
    assert!(report["cross_node_writes_per_s"].as_f64().unwrap() > 0.0, "{report}");
}

#[test]
fn bench_compare_measures_every_system_and_writes_its_table_json_and_chart() {
    let peers = ["/usr/sbin/nats-server", "/usr/bin/redis-server"];
    if let Some(missing) = peers.iter().find(|p| !std::path::Path::new(p).exists()) {
        assert!(std::env::var("CI").is_err(), "{missing} is not installed (scripts/peers-for-tests installs it)");
        eprintln!("\nNOTE: {missing} is not installed, so `bench compare` was SKIPPED.\n");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (json, chart) = (work.path().join("compare.json"), work.path().join("compare.png"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
    c.args(["bench", "compare", "--quick", "--json-out", json.to_str().unwrap(), "--chart", chart.to_str().unwrap()])
        .env_remove("RUST_LOG");
    let out = run_bounded_for(c, None, Duration::from_secs(300));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["skipped"], serde_json::json!([]));
    let medians = report["medians"].as_array().unwrap();
    let systems = |workload: &str| -> Vec<String> {
        medians.iter().filter(|m| m["workload"] == workload).map(|m| m["system"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(
        systems("conditional write, 1 client"),
        [
            "ferrosync",
            "ferrosync (fsync at checkpoints)",
            "ferrosync websocket (fsync at checkpoints)",
            "nats jetstream kv"
        ]
    );
    // Writers sharing one connection: HTTP/1.1 answers one request at a time, so only sockets.
    assert_eq!(
        systems("conditional writes, one connection"),
        ["ferrosync websocket (fsync at checkpoints)", "nats jetstream kv"]
    );
    assert_eq!(
        systems("write → watcher"),
        [
            "ferrosync",
            "ferrosync (fsync at checkpoints)",
            "ferrosync websocket (fsync at checkpoints)",
            "nats jetstream kv"
        ]
    );
    assert_eq!(systems("fan-out to 50"), ["ferrosync", "ferrosync (fsync at checkpoints)", "redis pub/sub"]);
    let idle = "idle memory, 200 connections";
    assert_eq!(systems(idle), ["ferrosync", "nats jetstream kv", "redis pub/sub"]);
    for m in medians {
        assert!(m["value"].as_f64().unwrap() > 0.0, "{m}");
        assert!(m["value_vs_ferrosync"].as_f64().is_some(), "{m}");
        assert!(table.contains(m["system"].as_str().unwrap()), "the table has a row for {m}");
        if m["workload"] == idle {
            // Memory is not timed: no latencies, none drawn.
            assert_eq!(m["unit"], "bytes/connection");
            assert!(m["p99_ms"].is_null() && m["latency_ms"] == serde_json::json!([]), "{m}");
            // A subscribed connection costs every server something, and less than a megabyte.
            assert!(m["value"].as_f64().unwrap() < 1_048_576.0, "{m}");
        } else {
            assert!(m["p99_ms"].as_f64().unwrap() > 0.0, "{m}");
            assert!(m["p99_ms"].as_f64() >= m["p50_ms"].as_f64(), "{m}");
            // What the timed part cost the server, read from its process (a short run may not
            // reach a 10 ms tick, but a second of conditional writes does).
            let cpu = m["server_cpu_us"].as_f64().unwrap_or_else(|| panic!("the server's CPU per operation: {m}"));
            assert!(cpu >= 0.0 && m["cpu_vs_ferrosync"].as_f64().is_some(), "{m}");
            if m["workload"].as_str().unwrap().starts_with("conditional") {
                assert!(cpu > 0.0, "{m}");
            }
        }
    }
    let png = std::fs::read(&chart).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a drawn chart");
}

#[test]
fn bench_soak_samples_memory_and_counts_every_event() {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
    c.args(["bench", "soak", "--seconds", "6", "--connections", "100", "--documents", "10", "--rate", "20"])
        .args(["--sample-secs", "1", "--max-growth-percent", "1000", "--json"])
        .env_remove("RUST_LOG");
    let out = run_bounded_for(c, None, Duration::from_secs(120));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let writes = report["writes"].as_u64().unwrap();
    assert!(writes >= 60, "{report}");
    // Ten subscribers per document: every write reaches ten.
    assert_eq!(report["expected"].as_u64(), Some(writes * 10));
    assert_eq!(report["delivered"], report["expected"]);
    let samples = report["samples"].as_array().unwrap();
    assert!(samples.len() >= 5 && samples.iter().all(|s| s["rss_bytes"].as_u64() > Some(1 << 20)), "{report}");
}
