//! Crash safety of the real binary: 100 cycles of writes under load, `kill -9` at a random
//! moment, restart; after each, every acknowledged write is still there, and sequence numbers
//! and revisions continue with no gap and no repeat.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "crash-test-auth-token-0001";

struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// The binary at `durability` (`FERROSYNC_DURABILITY`), or at its default.
    async fn start(dir: &std::path::Path, durability: Option<&str>) -> Server {
        let command = || {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ferrosync"));
            if let Some(durability) = durability {
                command.env("FERROSYNC_DURABILITY", durability);
            }
            command
        };
        let (child, addr) = support::serve_by(command, dir, SID, TOKEN, &[]).await;
        Server { child, base: format!("http://{addr}") }
    }

    fn kill9(mut self) {
        // Child::kill sends SIGKILL on Unix: no shutdown path runs.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn random_below(n: u64) -> u64 {
    let hex = ferrosync_core::auth::random_hex(8);
    u64::from_str_radix(&hex, 16).unwrap() % n
}

/// What the clients saw acknowledged: per document the last revision and its data, per list
/// the item indexes.
#[derive(Default)]
struct Acked {
    docs: HashMap<String, (u64, Value)>,
    list_items: Vec<(u64, Value)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    survive_kill_9(None, cycles()).await;
}

/// The same at `durability = normal`, where a lone write is committed on a runtime thread and
/// writes that arrive together are handed to the writer thread: a crash of the process still
/// loses nothing acknowledged (the OS holds what was written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_without_an_fsync_per_commit() {
    survive_kill_9(Some("normal"), cycles().div_ceil(2)).await;
}

async fn survive_kill_9(durability: Option<&str>, cycles: usize) {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut server = Server::start(dir.path(), durability).await;
    let api = |base: &str, path: &str| format!("{base}/api/v1{path}");
    let svc: Value = http
        .post(api(&server.base, "/services"))
        .basic_auth(SID, Some(TOKEN))
        .json(&json!({ "unique_name": "crash" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(svc["unique_name"], "crash");
    for w in 0..4 {
        let r = http
            .post(api(&server.base, "/services/crash/documents"))
            .basic_auth(SID, Some(TOKEN))
            .json(&json!({ "unique_name": format!("doc{w}"), "data": { "n": 0 } }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = http
        .post(api(&server.base, "/services/crash/lists"))
        .basic_auth(SID, Some(TOKEN))
        .json(&json!({ "unique_name": "log" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut checked = Checked::default();
    for cycle in 0..cycles {
        let base = server.base.clone();
        let mut writers = Vec::new();
        for w in 0..4 {
            let (http, base, acked) = (http.clone(), base.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                let doc = format!("doc{w}");
                for n in 0..10_000u64 {
                    let data = json!({ "writer": w, "n": n, "cycle": cycle });
                    let r = http
                        .put(format!("{base}/api/v1/services/crash/documents/{doc}"))
                        .basic_auth(SID, Some(TOKEN))
                        .json(&json!({ "data": data }))
                        .send()
                        .await;
                    let Ok(r) = r else { return };
                    if !r.status().is_success() {
                        return;
                    }
                    let Ok(v) = r.json::<Value>().await else { return };
                    let revision = v["revision"].as_u64().unwrap();
                    acked.lock().await.docs.insert(doc.clone(), (revision, data));
                }
            }));
        }
        {
            let (http, base, acked) = (http.clone(), base.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for n in 0..10_000u64 {
                    let data = json!({ "n": n, "cycle": cycle });
                    let r = http
                        .post(format!("{base}/api/v1/services/crash/lists/log/items"))
                        .basic_auth(SID, Some(TOKEN))
                        .json(&json!({ "data": data }))
                        .send()
                        .await;
                    let Ok(r) = r else { return };
                    if !r.status().is_success() {
                        return;
                    }
                    let Ok(v) = r.json::<Value>().await else { return };
                    acked.lock().await.list_items.push((v["index"].as_u64().unwrap(), data));
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(100 + random_below(400))).await;
        server.kill9();
        for w in writers {
            let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
        }
        server = Server::start(dir.path(), durability).await;
        // Every item again now and then, and at the end: a later crash must not lose earlier
        // writes either.
        let full = cycle % 10 == 9 || cycle + 1 == cycles;
        verify(&http, &server.base, &*acked.lock().await, &mut checked, full).await;
    }
    let acked = acked.lock().await;
    eprintln!(
        "{cycles} kill -9 cycles ({}): {} acknowledged list items, {} change-log events, all present",
        durability.unwrap_or("default durability"),
        acked.list_items.len(),
        checked.last_seq
    );
    server.kill9();
}

/// Cycles of load, `kill -9` and restart: `FERROSYNC_CRASH_CYCLES`, 100 by default.
fn cycles() -> usize {
    std::env::var("FERROSYNC_CRASH_CYCLES").ok().and_then(|s| s.parse().ok()).unwrap_or(100)
}

/// How far the checks have got, so that each cycle reads only what is new.
#[derive(Default)]
struct Checked {
    /// The change log's resume token after the last event checked, and that event's sequence.
    since: Option<String>,
    last_seq: u64,
    revisions: HashMap<(String, Option<u64>), u64>,
    /// Acknowledged list items already looked up.
    items: usize,
}

async fn verify(http: &reqwest::Client, base: &str, acked: &Acked, checked: &mut Checked, full: bool) {
    assert!(!acked.docs.is_empty(), "some writes were acknowledged before the kill");
    let get = |url: String| async move {
        let r = http.get(url).basic_auth(SID, Some(TOKEN)).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
    };
    for (doc, (revision, data)) in &acked.docs {
        let (_, v) = get(format!("{base}/api/v1/services/crash/documents/{doc}")).await;
        let stored = v["revision"].as_u64().unwrap();
        assert!(stored >= *revision, "{doc}: acknowledged revision {revision} lost (stored {stored})");
        if stored == *revision {
            assert_eq!(&v["data"], data, "{doc}: data of the acknowledged revision");
        }
    }
    if full {
        let mut stored: HashMap<u64, Value> = HashMap::new();
        let mut url = format!("{base}/api/v1/services/crash/lists/log/items?page_size=1000");
        loop {
            let (status, page) = get(url.clone()).await;
            assert_eq!(status, 200, "{page}");
            for item in page["items"].as_array().unwrap() {
                stored.insert(item["index"].as_u64().unwrap(), item["data"].clone());
            }
            match page["meta"]["next_page_token"].as_str() {
                Some(t) => url = format!("{base}/api/v1/services/crash/lists/log/items?page_size=1000&page_token={t}"),
                None => break,
            }
        }
        for (index, data) in &acked.list_items {
            assert_eq!(stored.get(index), Some(data), "acknowledged list item {index}");
        }
    } else {
        for (index, data) in &acked.list_items[checked.items..] {
            let (status, v) = get(format!("{base}/api/v1/services/crash/lists/log/items/{index}")).await;
            assert_eq!(status, 200, "acknowledged list item {index} lost");
            assert_eq!(&v["data"], data);
        }
    }
    checked.items = acked.list_items.len();
    // The change log since the last check: sequence numbers continue with no gap or repeat,
    // and per object the revisions go up by one.
    loop {
        let mut url = format!("{base}/api/v1/services/crash/changes?limit=1000");
        match &checked.since {
            Some(s) => url.push_str(&format!("&since={s}")),
            None => url.push_str("&from_start=true"),
        }
        let (_, v) = get(url).await;
        let events = v["events"].as_array().unwrap();
        if events.is_empty() {
            break;
        }
        for e in events {
            let seq = e["seq"].as_u64().unwrap();
            assert_eq!(seq, checked.last_seq + 1, "sequence numbers have no gap or repeat");
            checked.last_seq = seq;
            let key = (e["object_sid"].as_str().unwrap().to_owned(), e["item_index"].as_u64());
            let rev = e["revision"].as_u64().unwrap();
            if let Some(prev) = checked.revisions.insert(key.clone(), rev)
                && (e["type"] == "document_updated" || e["type"] == "list_item_updated")
            {
                assert_eq!(rev, prev + 1, "revisions of {key:?} continue by one");
            }
        }
        checked.since = Some(v["next"].as_str().unwrap().to_owned());
    }
}
