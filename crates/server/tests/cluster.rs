//! Several nodes on one PostgreSQL, in-process, over real HTTP and WebSockets: what one node
//! commits reaches subscribers on the others; conditional updates racing from different nodes
//! form one linear history; a database restart makes nodes unready, then they recover with no
//! acknowledged write lost. Skipped (saying so) unless `FERROSYNC_TEST_POSTGRES` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "integration/common.rs"]
mod common;

use common::{Settings, eventually, send, seqs};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

type Node = common::Server<true>;

/// Three nodes of one cluster, or `None` when the PostgreSQL runs are skipped.
async fn cluster() -> Option<Vec<Arc<Node>>> {
    let first = Node::start().await?;
    let store = first.store.clone();
    let mut nodes = vec![Arc::new(first)];
    for _ in 0..2 {
        nodes.push(Arc::new(Node::node(store.clone(), Settings::default(), |_| {}).await));
    }
    Some(nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_node_sees_writes_made_on_the_others() {
    let Some(nodes) = cluster().await else { return };
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    assert_eq!(a.account_sid, c.account_sid, "one cluster, one root account");
    a.service("app").await;
    // Made on A, used on C: services, objects and tokens are cluster-wide.
    a.post("/services/app/documents", json!({ "unique_name": "board", "data": { "v": 0 } })).await.ok();
    let token = c.mint_token("app", "alice", 3600).await;

    let mut on_a = a.ws(&token).await;
    on_a.subscribe("document", "board", None).await;
    let mut on_b = b.ws(&token).await;
    on_b.subscribe("document", "board", None).await;

    for (v, node) in [(1, c), (2, b), (3, a), (4, c)] {
        node.put("/services/app/documents/board", json!({ "data": { "v": v } })).await.ok();
    }
    for ws in [&mut on_a, &mut on_b] {
        let events = ws.events(4).await;
        let values: Vec<u64> = events.iter().map(|e| e["data"]["v"].as_u64().unwrap()).collect();
        assert_eq!(values, [1, 2, 3, 4], "every write, from whichever node, in commit order");
        let got = seqs(&events);
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "gapless: {got:?}");
    }
    // A since-token from one node resumes on another.
    let log = b.all_changes("app").await;
    let first_update = log.iter().find(|e| e["type"] == "document_updated").unwrap();
    let r = c.get(&format!("/services/app/changes?since={}", first_update["token"].as_str().unwrap())).await.ok();
    let rest: Vec<u64> = r["events"].as_array().unwrap().iter().map(|e| e["data"]["v"].as_u64().unwrap()).collect();
    assert_eq!(rest, [2, 3, 4]);
}

/// One accepted conditional update, as its client saw it.
#[derive(Debug, Clone)]
struct Accepted {
    writer: String,
    expected: u64,
    revision: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_updates_racing_across_nodes_form_one_linear_history() {
    let Some(nodes) = cluster().await else { return };
    nodes[0].service("race").await;
    nodes[0].post("/services/race/documents", json!({ "unique_name": "counter", "data": { "by": "init" } })).await.ok();

    const CLIENTS_PER_NODE: usize = 4;
    const ATTEMPTS: usize = 12;
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for c in 0..CLIENTS_PER_NODE {
            let node = node.clone();
            let writer = format!("n{n}c{c}");
            tasks.push(tokio::spawn(async move {
                let mut accepted = Vec::new();
                let mut refused = 0;
                for attempt in 0..ATTEMPTS {
                    let doc = node.get("/services/race/documents/counter").await.ok();
                    let expected = doc["revision"].as_u64().unwrap();
                    let r = node
                        .put_if(
                            "/services/race/documents/counter",
                            &expected.to_string(),
                            json!({ "data": { "by": writer, "attempt": attempt, "after": expected } }),
                        )
                        .await;
                    match r.status {
                        200 => accepted.push(Accepted {
                            writer: writer.clone(),
                            expected,
                            revision: r.body["revision"].as_u64().unwrap(),
                        }),
                        412 => refused += 1,
                        other => panic!("unexpected {other}: {}", r.text),
                    }
                }
                (accepted, refused)
            }));
        }
    }
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (a, r) = t.await.unwrap();
        accepted.extend(a);
        refused += r;
    }
    assert_eq!(accepted.len() + refused, nodes.len() * CLIENTS_PER_NODE * ATTEMPTS);

    // The history checker: each accepted update moved the revision from exactly the one it
    // expected to the next, each revision has exactly one winner, and together they form one
    // unbroken chain from the initial revision (no lost update).
    let mut by_revision: BTreeMap<u64, Accepted> = BTreeMap::new();
    for a in &accepted {
        assert_eq!(a.revision, a.expected + 1, "an accepted update advances its expected revision: {a:?}");
        if let Some(other) = by_revision.insert(a.revision, a.clone()) {
            panic!("two winners for revision {}: {other:?} and {a:?}", a.revision);
        }
    }
    let revisions: Vec<u64> = by_revision.keys().copied().collect();
    assert_eq!(revisions, (1..=accepted.len() as u64).collect::<Vec<_>>(), "one unbroken chain");

    // Every node reads the same final state: the last winner's data, at the last revision.
    let last = by_revision.values().last().unwrap();
    for node in &nodes {
        let doc = node.get("/services/race/documents/counter").await.ok();
        assert_eq!(doc["revision"], last.revision);
        assert_eq!(doc["data"]["by"], last.writer.as_str());
    }
    // And the change log tells the same history, in sequence order.
    let log = nodes[2].all_changes("race").await;
    let updates: Vec<(u64, String)> = log
        .iter()
        .filter(|e| e["type"] == "document_updated")
        .map(|e| (e["revision"].as_u64().unwrap(), e["data"]["by"].as_str().unwrap().to_owned()))
        .collect();
    let expected: Vec<(u64, String)> = by_revision.values().map(|a| (a.revision, a.writer.clone())).collect();
    assert_eq!(updates, expected);
}

/// A private PostgreSQL instance this test may restart (the shared test server must stay up).
struct OwnPostgres {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    /// `None` when `FERROSYNC_TEST_PG_BIN` is not set (the restart test is then skipped with
    /// the other PostgreSQL runs; under CI it must be set).
    fn create() -> Option<OwnPostgres> {
        ferrosync_store::testing::postgres_configured()?;
        let bin = std::path::PathBuf::from(std::env::var("FERROSYNC_TEST_PG_BIN").ok().filter(|s| !s.is_empty())?);
        let dir = tempfile::Builder::new().prefix("ferrosync-pg-restart").tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if is_root() {
            // PostgreSQL refuses to run as root: the directory goes to its own user.
            let ok = std::process::Command::new("chown").arg("postgres:postgres").arg(dir.path()).status().unwrap();
            assert!(ok.success(), "chown postgres");
        }
        let pg = OwnPostgres { bin, dir, port };
        pg.run("initdb", &["-D", &pg.data(), "-U", "postgres", "-A", "trust", "--no-sync"]);
        pg.start();
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        let out = cmd.args(args).output().unwrap();
        assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn start(&self) {
        let log = self.dir.path().join("server.log").display().to_string();
        let opts = format!("-c listen_addresses=127.0.0.1 -p {} -k {}", self.port, self.dir.path().display());
        self.run("pg_ctl", &["-D", &self.data(), "-l", &log, "-w", "-t", "60", "-o", &opts, "start"]);
    }

    fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-w", "-t", "60", "-m", "fast", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.stop()));
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_makes_nodes_unready_then_they_recover_losing_no_acknowledged_write() {
    let Some(pg) = OwnPostgres::create() else { return };
    let store = ferrosync_server::StoreLocation::Postgres(pg.url());
    let a = Arc::new(Node::node(store.clone(), Settings::default(), |_| {}).await);
    let b = Arc::new(Node::node(store, Settings::default(), |_| {}).await);
    a.service("app").await;
    a.post("/services/app/lists", json!({ "unique_name": "log" })).await.ok();
    let token = b.mint_token("app", "watcher", 3600).await;
    let mut ws = b.ws(&token).await;
    ws.subscribe("list", "log", None).await;

    // Writers on both nodes keep adding items; each remembers what was acknowledged.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for (w, node) in [a.clone(), b.clone(), a.clone()].into_iter().enumerate() {
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut failed = 0u32;
            for i in 0..2000u32 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let r = send(
                    node.admin(Method::POST, "/services/app/lists/log/items")
                        .json(&json!({ "data": { "w": w, "i": i } }))
                        .timeout(Duration::from_secs(10)),
                )
                .await;
                if r.status == 201 {
                    acked.push(format!("{w}-{i}"));
                } else {
                    assert!(r.status >= 500, "only unavailability may refuse a write: {} {}", r.status, r.text);
                    failed += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            (acked, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    pg.stop();
    for node in [&a, &b] {
        eventually("the node reports not ready", Duration::from_secs(15), || async {
            send(node.http.get(node.root("/readyz"))).await.status == 503
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    pg.start();
    for node in [&a, &b] {
        eventually("the node is ready again", Duration::from_secs(30), || async {
            send(node.http.get(node.root("/readyz"))).await.status == 200
        })
        .await;
    }
    // Writes go through again after the restart.
    eventually("writes succeed again", Duration::from_secs(30), || async {
        a.post("/services/app/lists/log/items", json!({ "data": { "probe": true } })).await.status == 201
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut acked = HashSet::new();
    let mut failures = 0;
    for w in writers {
        let (a, f) = w.await.unwrap();
        failures += f;
        acked.extend(a);
    }
    assert!(failures > 0, "the restart happened under load (some writes were refused)");

    // Every acknowledged write is there, once.
    let mut stored = Vec::new();
    let mut path = "/services/app/lists/log/items?page_size=1000".to_owned();
    loop {
        let page = b.get(&path).await.ok();
        stored.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["meta"]["next_page_token"].as_str().or_else(|| page["next_page_token"].as_str()) {
            Some(t) => path = format!("/services/app/lists/log/items?page_size=1000&page_token={t}"),
            None => break,
        }
    }
    let names: Vec<String> = stored
        .iter()
        .filter(|i| i["data"]["w"].is_u64())
        .map(|i| format!("{}-{}", i["data"]["w"], i["data"]["i"]))
        .collect();
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "no item twice");
    for name in &acked {
        assert!(unique.contains(name), "acknowledged write {name} is missing after the restart");
    }

    // The subscriber on b, which lived through the restart, saw every item added, once, in a
    // gapless run of the log.
    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < stored.len() {
        let f = ws.recv_within(Duration::from_secs(20)).await;
        match f["type"].as_str() {
            Some("event") => seen.push(f["event"].clone()),
            Some("closed" | "ended") => panic!("the subscription ended: {f}"),
            _ => {}
        }
    }
    let got = seqs(&seen);
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "no gap, no repeat: {got:?}");
    assert!(seen.iter().all(|e| e["type"] == "list_item_added"), "only the items: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_sweeps_on_every_node_remove_each_object_exactly_once() {
    let Some(nodes) = cluster().await else { return };
    nodes[0].service("ttl").await;
    const DOCS: usize = 30;
    for i in 0..DOCS {
        let node = &nodes[i % nodes.len()];
        let r = node.post("/services/ttl/documents", json!({ "unique_name": format!("d{i}"), "ttl": 1 })).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    nodes[1].post("/services/ttl/documents", json!({ "unique_name": "stays", "ttl": 3600 })).await.ok();
    // All three nodes sweep every 200 ms; each expired document goes once.
    eventually("every short-lived document expired", Duration::from_secs(15), || async {
        let r = nodes[2].get("/services/ttl/documents?page_size=100").await.ok();
        r["items"].as_array().map(|d| d.len()) == Some(1)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let log = nodes[0].all_changes("ttl").await;
    let removed: Vec<&Value> = log.iter().filter(|e| e["type"] == "document_removed").collect();
    assert_eq!(removed.len(), DOCS, "one removal per document: {removed:?}");
    let distinct: HashSet<&str> = removed.iter().map(|e| e["object_sid"].as_str().unwrap()).collect();
    assert_eq!(distinct.len(), DOCS);
    assert!(removed.iter().all(|e| e["reason"] == "expired"));
    assert_eq!(nodes[1].get("/services/ttl/documents/stays").await.status, 200);
}
