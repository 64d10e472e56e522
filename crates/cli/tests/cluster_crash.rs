//! A cluster of real `ferrosync` processes on one PostgreSQL: `kill -9` of a node under write
//! load; its WebSocket clients reconnect to the surviving nodes, resume from their since-tokens
//! and end up with exactly the change log: no event lost, none twice. Skipped (saying so)
//! unless `FERROSYNC_TEST_POSTGRES` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "cluster-test-auth-token-01";

struct Node {
    child: Child,
    base: String,
    addr: String,
}

impl Node {
    async fn start(store: &str, dir: &std::path::Path) -> Node {
        let (child, addr) = support::serve(dir, SID, TOKEN, &["--store", store]).await;
        Node { child, base: format!("http://{addr}"), addr }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one WebSocket client saw, across its reconnections.
struct Seen {
    start_seq: u64,
    seqs: Vec<u64>,
    reconnects: u32,
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `addr`, subscribes to the list (from `since`, or from now), and returns the
/// socket, the subscription's starting token and any catch-up events that came with the reply.
async fn subscribe(addr: &str, token: &str, since: Option<&str>) -> Option<(Ws, String, Vec<Value>)> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/connect?token={token}")).await.ok()?;
    let mut frame = json!({ "type": "subscribe", "id": 1, "kind": "list", "object": "log" });
    if let Some(s) = since {
        frame["since"] = json!(s);
    }
    ws.send(Message::text(frame.to_string())).await.ok()?;
    let mut events = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.ok()??.ok()?;
        let Message::Text(t) = msg else { continue };
        let f: Value = serde_json::from_str(&t).unwrap();
        match f["type"].as_str() {
            Some("connected") => {}
            Some("event") => events.push(f["event"].clone()),
            Some("reply") => {
                assert_eq!(f["status"], 200, "subscribe: {f}");
                let start = f["body"]["since"].as_str().unwrap().to_owned();
                return Some((ws, start, events));
            }
            _ => panic!("unexpected frame {f}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_node_resume_on_another_with_nothing_lost_or_repeated() {
    let Some(store) = ferrosync_store::testing::fresh_postgres_url().await else { return };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for d in &dirs {
        nodes.push(Node::start(&store, d.path()).await);
    }
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let post = |base: &str, path: &str, body: Value| {
        http.post(format!("{base}/api/v1{path}")).basic_auth(SID, Some(TOKEN)).json(&body).send()
    };
    assert_eq!(post(&bases[0], "/services", json!({ "unique_name": "crash" })).await.unwrap().status(), 201);
    assert_eq!(post(&bases[1], "/services/crash/lists", json!({ "unique_name": "log" })).await.unwrap().status(), 201);
    let r: Value = post(&bases[2], "/tokens", json!({ "service": "crash", "identity": "reader", "ttl": 3600 }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["token"].as_str().unwrap().to_owned();

    // Writers, one per node; a writer whose node dies moves on to the next one.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..3usize {
        let (http, bases, stop, acked) = (http.clone(), bases.clone(), stop.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let mut at = w;
            for i in 0..20_000u32 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let r = http
                    .post(format!("{}/api/v1/services/crash/lists/log/items", bases[at]))
                    .basic_auth(SID, Some(TOKEN))
                    .json(&json!({ "data": { "w": w, "i": i } }))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => at = (at + 1) % bases.len(),
                }
            }
        }));
    }

    // Clients on node 0, the one that will be killed.
    let mut clients = Vec::new();
    for c in 0..6usize {
        let (addrs, token) = (addrs.clone(), token.clone());
        let (ws, start, catch_up) = subscribe(&addrs[0], &token, None).await.expect("subscribes on node 0");
        clients.push(tokio::spawn(async move {
            let mut ws = ws;
            let mut last = start.clone();
            let start_seq = ferrosync_core::log::SinceToken::decode(&start).unwrap().seq;
            let mut seen = Seen { start_seq, seqs: Vec::new(), reconnects: 0 };
            let take = |events: Vec<Value>, seen: &mut Seen, last: &mut String| {
                for e in events {
                    seen.seqs.push(e["seq"].as_u64().unwrap());
                    *last = e["token"].as_str().unwrap().to_owned();
                }
            };
            take(catch_up, &mut seen, &mut last);
            // Until told the writers are done and nothing more arrives for a while.
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                assert!(Instant::now() < deadline, "client {c} never went quiet");
                match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
                    Err(_) => break,
                    Ok(Some(Ok(Message::Text(t)))) => {
                        let f: Value = serde_json::from_str(&t).unwrap();
                        if f["type"] == "event" {
                            take(vec![f["event"].clone()], &mut seen, &mut last);
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(None | Some(Err(_))) => {
                        // The node is gone: resume on a survivor from the last token.
                        let target = &addrs[1 + c % 2];
                        let (next, _, catch_up) = loop {
                            if let Some(s) = subscribe(target, &token, Some(&last)).await {
                                break s;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        };
                        seen.reconnects += 1;
                        ws = next;
                        take(catch_up, &mut seen, &mut last);
                    }
                }
            }
            seen
        }));
    }

    tokio::time::sleep(Duration::from_millis(800)).await;
    let before_kill = acked.load(Ordering::Relaxed);
    nodes[0].kill9();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(before_kill > 0 && acked.load(Ordering::Relaxed) > before_kill, "writes went on around the kill");

    // The change log, read from a survivor.
    let mut log: Vec<u64> = Vec::new();
    let mut url = format!("{}/api/v1/services/crash/changes?from_start=true&limit=1000", bases[1]);
    loop {
        let page: Value = http.get(&url).basic_auth(SID, Some(TOKEN)).send().await.unwrap().json().await.unwrap();
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            break;
        }
        log.extend(events.iter().filter(|e| e["type"] == "list_item_added").map(|e| e["seq"].as_u64().unwrap()));
        url = format!("{}/api/v1/services/crash/changes?since={}&limit=1000", bases[1], page["next"].as_str().unwrap());
    }
    assert!(log.len() as u64 >= acked.load(Ordering::Relaxed), "every acknowledged write is in the log");

    for (c, client) in clients.into_iter().enumerate() {
        let seen = client.await.unwrap();
        assert_eq!(seen.reconnects, 1, "client {c} reconnected once, after the kill");
        let expected: Vec<u64> = log.iter().copied().filter(|s| *s > seen.start_seq).collect();
        assert_eq!(seen.seqs, expected, "client {c}: exactly the log after its start, in order");
    }
}
