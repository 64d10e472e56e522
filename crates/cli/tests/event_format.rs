//! `ferrosync event-format` on a cluster of two real nodes: events written before the switch
//! stay whole, both nodes keep later ones short, and the log reads back the same from a node
//! that has none of them in memory; switched back, the short ones are rewritten whole. On the
//! embedded store the command says events are always short there. The cluster part is skipped
//! (saying so) unless `FERROSYNC_TEST_POSTGRES` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use support::{DATA_AUTH_TOKEN as TOKEN, DATA_SID as SID, rest_at};

#[test]
fn the_embedded_store_keeps_events_short_and_has_no_setting() {
    let dir = tempfile::tempdir().unwrap();
    let shown = support::ferrosync(dir.path(), &["event-format"]);
    assert!(support::stdout(&shown).starts_with("short"), "{shown:?}");
    let whole = support::ferrosync(dir.path(), &["event-format", "whole"]);
    assert!(!whole.status.success());
    let said = String::from_utf8_lossy(&whole.stderr);
    assert!(said.contains("PostgreSQL cluster's setting"), "{said}");
    let bad = support::ferrosync(dir.path(), &["event-format", "compact"]);
    assert!(!bad.status.success(), "only short or whole");
}

fn event_format(store: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["event-format", "--store", store];
    all.extend_from_slice(args);
    support::stdout(&support::ferrosync(dir.path(), &all))
}

/// Every event of the service, through `base`'s change feed from the start.
async fn log(base: &str) -> Vec<Value> {
    let (status, r) = rest_at(base, Method::GET, "/services/fmt/changes?from_start=true&limit=1000", Value::Null).await;
    assert_eq!(status, 200, "{r}");
    r["events"].as_array().unwrap_or_else(|| panic!("events in {r}")).clone()
}

async fn write(base: &str, method: Method, path: &str, body: Value) {
    let (status, r) = rest_at(base, method, path, body).await;
    assert!((200..300).contains(&status), "{path}: {status} {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_keeps_events_short_once_told_and_whole_again_after() {
    let Some(store) = ferrosync_store::testing::fresh_postgres_url().await else { return };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, a_addr) = support::serve(dirs[0].path(), SID, TOKEN, &["--store", &store]).await;
    let (b, b_addr) = support::serve(dirs[1].path(), SID, TOKEN, &["--store", &store]).await;
    let _nodes = (support::KillOnDrop(a), support::KillOnDrop(b));
    let (a, b) = (format!("http://{a_addr}"), format!("http://{b_addr}"));
    write(&a, Method::POST, "/services", json!({ "unique_name": "fmt" })).await;
    write(&a, Method::POST, "/services/fmt/documents", json!({ "unique_name": "d", "data": {"n": 0} })).await;
    write(&b, Method::PUT, "/services/fmt/documents/d", json!({ "data": {"n": 1} })).await;

    assert_eq!(event_format(&store, &[]).trim(), "whole", "whole until told");
    assert!(event_format(&store, &["short"]).starts_with("short"));
    assert_eq!(event_format(&store, &[]).trim(), "short");
    // Each node's writer reads the setting again within ten seconds: after that, every event
    // either writes is short.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for n in 2..8 {
        let base = if n % 2 == 0 { &a } else { &b };
        write(base, Method::PUT, "/services/fmt/documents/d", json!({ "data": {"n": n, "s": "é\"x"} })).await;
    }

    // A node with none of the events in memory reads them all from the database.
    let (c, c_addr) = support::serve(dirs[2].path(), SID, TOKEN, &["--store", &store]).await;
    let _c = support::KillOnDrop(c);
    let c = format!("http://{c_addr}");
    let read = log(&c).await;
    assert_eq!(read.len(), 8, "a creation and seven updates: {read:?}");
    for (i, e) in read.iter().enumerate() {
        assert_eq!(e["seq"], json!(i + 1), "numbered without gaps: {e}");
        assert_eq!(e["data"]["n"], json!(i), "{e}");
        assert!(e["token"].as_str().is_some_and(|t| !t.is_empty()) && e["service_sid"].is_string(), "{e}");
    }
    assert_eq!(log(&a).await, read, "the node that wrote half of them reads the same");

    let said = event_format(&store, &["whole", "--settle", "0"]);
    assert_eq!(said.trim(), "whole: 6 events kept short were rewritten whole", "the six after the switch");
    assert_eq!(log(&c).await, read, "rewritten, the log reads the same");
    let again = event_format(&store, &["whole", "--settle", "0"]);
    assert!(again.starts_with("whole: 0 events"), "{again}");
}
