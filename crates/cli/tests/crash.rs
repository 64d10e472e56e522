//! Crash safety of the real binary: writes under load, `kill -9` at random moments, restart,
//! and every acknowledged write is still there; sequence numbers and revisions continue with no
//! gap and no repeat.

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
    async fn start(dir: &std::path::Path) -> Server {
        let (child, addr) = support::serve(dir, SID, TOKEN, &[]).await;
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
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut server = Server::start(dir.path()).await;
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
    for cycle in 0..5 {
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
        tokio::time::sleep(Duration::from_millis(300 + random_below(700))).await;
        server.kill9();
        for w in writers {
            let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
        }
        server = Server::start(dir.path()).await;
        verify(&http, &server.base, &*acked.lock().await).await;
    }
    server.kill9();
}

async fn verify(http: &reqwest::Client, base: &str, acked: &Acked) {
    assert!(!acked.docs.is_empty(), "some writes were acknowledged before the kill");
    for (doc, (revision, data)) in &acked.docs {
        let v: Value = http
            .get(format!("{base}/api/v1/services/crash/documents/{doc}"))
            .basic_auth(SID, Some(TOKEN))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stored = v["revision"].as_u64().unwrap();
        assert!(stored >= *revision, "{doc}: acknowledged revision {revision} lost (stored {stored})");
        if stored == *revision {
            assert_eq!(&v["data"], data, "{doc}: data of the acknowledged revision");
        }
    }
    for (index, data) in &acked.list_items {
        let r = http
            .get(format!("{base}/api/v1/services/crash/lists/log/items/{index}"))
            .basic_auth(SID, Some(TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged list item {index} lost");
        let v: Value = r.json().await.unwrap();
        assert_eq!(&v["data"], data);
    }
    // The change log: sequence numbers 1..=head with no gap or repeat, and per object the
    // revisions go up by one.
    let mut since: Option<String> = None;
    let mut seqs = Vec::new();
    let mut revisions: HashMap<(String, Option<u64>), u64> = HashMap::new();
    loop {
        let mut url = format!("{base}/api/v1/services/crash/changes?limit=1000");
        match &since {
            Some(s) => url.push_str(&format!("&since={s}")),
            None => url.push_str("&from_start=true"),
        }
        let v: Value = http.get(url).basic_auth(SID, Some(TOKEN)).send().await.unwrap().json().await.unwrap();
        let events = v["events"].as_array().unwrap();
        if events.is_empty() {
            break;
        }
        for e in events {
            seqs.push(e["seq"].as_u64().unwrap());
            let key = (e["object_sid"].as_str().unwrap().to_owned(), e["item_index"].as_u64());
            let rev = e["revision"].as_u64().unwrap();
            if let Some(prev) = revisions.insert(key.clone(), rev)
                && (e["type"] == "document_updated" || e["type"] == "list_item_updated")
            {
                assert_eq!(rev, prev + 1, "revisions of {key:?} continue by one");
            }
        }
        since = Some(v["next"].as_str().unwrap().to_owned());
    }
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "sequence numbers have no gap or repeat");
}
