//! Per-object linearizability under concurrent writers. Clients read, write and conditionally
//! write (If-Match) a few documents and one map item over REST — on PostgreSQL spread over two
//! nodes of one cluster — recording each operation's interval; every object's history must be
//! linearizable (checked by `ferrosync-history`).

use super::common::{Settings, TestServer};
use ferrosync_history::{Op, OpKind, check};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const CLIENTS: usize = 8;
const OPS_PER_CLIENT: usize = 120;
/// Three documents and one map item.
const OBJECTS: [&str; 4] = ["/documents/d0", "/documents/d1", "/documents/d2", "/maps/m/items/k"];

/// A small deterministic generator per client: runs differ only by timing.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_histories_of_each_object_are_linearizable() {
    let Some(first) = TestServer::start().await else { return };
    let mut nodes = vec![Arc::new(first)];
    if matches!(nodes[0].store, ferrosync_server::StoreLocation::Postgres(_)) {
        let store = nodes[0].store.clone();
        nodes.push(Arc::new(TestServer::node(store, Settings::default(), |_| {}).await));
    }
    let s = &nodes[0];
    s.service("lin").await;
    for d in 0..3 {
        s.post("/services/lin/documents", json!({"unique_name": format!("d{d}"), "data": {"v": "init"}})).await.ok();
    }
    s.post("/services/lin/maps", json!({"unique_name": "m"})).await.ok();
    s.post("/services/lin/maps/m/items", json!({"key": "k", "data": {"v": "init"}})).await.ok();

    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let node = nodes[client % nodes.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (client as u64 + 1));
            let mut last_read = [0u64; OBJECTS.len()];
            let mut history: Vec<(usize, Op<String>)> = Vec::new();
            for n in 0..OPS_PER_CLIENT {
                let object = rng.below(OBJECTS.len() as u64) as usize;
                let path = format!("/services/lin{}", OBJECTS[object]);
                let value = format!("c{client}-{n}");
                let invoked = epoch.elapsed().as_nanos() as u64;
                let kind = match rng.below(10) {
                    0..4 => {
                        let r = node.get(&path).await.ok();
                        let version = r["revision"].as_u64().unwrap();
                        last_read[object] = version;
                        OpKind::Read { version, value: r["data"]["v"].as_str().unwrap().to_owned() }
                    }
                    4..7 => {
                        let r = node.put(&path, json!({"data": {"v": value}})).await.ok();
                        OpKind::Write { version: r["revision"].as_u64().unwrap(), value, expected: None }
                    }
                    _ => {
                        let expected = last_read[object];
                        let r = node.put_if(&path, &expected.to_string(), json!({"data": {"v": value}})).await;
                        match r.status {
                            200 => OpKind::Write {
                                version: r.body["revision"].as_u64().unwrap(),
                                value,
                                expected: Some(expected),
                            },
                            412 => OpKind::Refused { expected },
                            other => panic!("{path}: {other} {}", r.text),
                        }
                    }
                };
                let completed = epoch.elapsed().as_nanos() as u64;
                history.push((object, Op { client, invoked, completed, kind }));
            }
            history
        }));
    }
    let mut per_object: Vec<Vec<Op<String>>> = vec![Vec::new(); OBJECTS.len()];
    for t in tasks {
        for (object, op) in t.await.unwrap() {
            per_object[object].push(op);
        }
    }
    let (mut writes, mut refused) = (0, 0);
    for (object, history) in per_object.iter().enumerate() {
        let summary = check((0, "init".to_owned()), history)
            .unwrap_or_else(|v| panic!("{} is not linearizable: {v}\n{history:#?}", OBJECTS[object]));
        // The server agrees on where each object ended.
        let now = s.get(&format!("/services/lin{}", OBJECTS[object])).await.ok();
        assert_eq!(now["revision"].as_u64(), Some(summary.final_version), "{}", OBJECTS[object]);
        writes += summary.writes;
        refused += summary.refused;
    }
    assert!(writes > CLIENTS * OPS_PER_CLIENT / 4, "{writes} writes acknowledged");
    // Contention happened: conditional writes lost races and were refused.
    assert!(refused > 0, "no conditional write was ever refused");
}
