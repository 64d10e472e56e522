//! `GET /services/{s}/changes`: the change log by long-poll — immediate answers, waiting polls
//! woken by writes, continuation without gaps or duplicates, foreign and expired tokens.

use super::common::{TestServer, seqs};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

async fn head(s: &TestServer, service: &str) -> String {
    let r = s.get(&format!("/services/{service}/changes")).await.ok();
    assert_eq!(r["events"], json!([]), "without a token only new events are returned");
    r["next"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn existing_events_are_returned_at_once() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let since = head(&s, "app").await;
    let doc = s.post("/services/app/documents", json!({ "unique_name": "d", "data": { "v": 0 } })).await.ok();
    s.put("/services/app/documents/d", json!({ "data": { "v": 1 } })).await.ok();

    // Events exist: a long-poll returns them rather than waiting.
    let r = s.get(&format!("/services/app/changes?since={since}&timeout=5")).await.ok();
    let events = r["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["document_created", "document_updated"]);
    assert!(events.iter().all(|e| e["object_sid"] == doc["sid"] && e["unique_name"] == "d"));
    assert_eq!((&events[1]["data"], &events[1]["revision"]), (&json!({ "v": 1 }), &json!(1)));
    assert_eq!(events[1]["previous_data"], json!({ "v": 0 }));
    assert_eq!(seqs(events), [1, 2]);
    // `next` is the last event's token.
    assert_eq!(r["next"], events[1]["token"]);

    // `object` filters to one object's events.
    let other = s.post("/services/app/documents", json!({ "unique_name": "other" })).await.ok();
    let sid = other["sid"].as_str().unwrap();
    let r = s.get(&format!("/services/app/changes?since={since}&object={sid}")).await.ok();
    assert_eq!(seqs(r["events"].as_array().unwrap()), [3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_poll_returns_the_event_written_meanwhile() {
    let Some(s) = TestServer::start().await else { return };
    let s = Arc::new(s);
    s.service("app").await;
    let since = head(&s, "app").await;

    let poller = {
        let s = s.clone();
        tokio::spawn(async move { s.get(&format!("/services/app/changes?since={since}&timeout=5")).await })
    };
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            // Give the poll a moment to start waiting; the assertion does not depend on it.
            tokio::time::sleep(Duration::from_millis(300)).await;
            s.post("/services/app/documents", json!({ "unique_name": "late", "data": { "n": 42 } })).await.ok()
        })
    };
    let written = tokio::time::timeout(Duration::from_secs(10), writer).await.unwrap().unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), poller).await.unwrap().unwrap();
    let body = r.ok();
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["type"], "document_created");
    assert_eq!(events[0]["object_sid"], written["sid"]);
    assert_eq!(events[0]["data"], json!({ "n": 42 }));

    // A poll with nothing to report comes back empty with the same position.
    let next = body["next"].as_str().unwrap();
    let idle = s.get(&format!("/services/app/changes?since={next}&timeout=1")).await.ok();
    assert_eq!(idle["events"], json!([]));
    assert_eq!(idle["next"], next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_tokens_continue_without_gaps_or_duplicates() {
    let Some(s) = TestServer::start().await else { return };
    let s = Arc::new(s);
    s.service("app").await;
    let mut next = head(&s, "app").await;
    s.post("/services/app/lists", json!({ "unique_name": "l" })).await.ok();
    for n in 0..11 {
        s.post("/services/app/lists/l/items", json!({ "data": { "n": n } })).await.ok();
    }

    let mut all: Vec<Value> = Vec::new();
    // Pages of 4 over what exists, then polls that wait for writes made while they wait.
    for round in 0..8 {
        if round >= 3 {
            let s = s.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                s.post("/services/app/lists/l/items", json!({ "data": { "late": round } })).await.ok();
            });
        }
        let r = s.get(&format!("/services/app/changes?since={next}&limit=4&timeout=5")).await.ok();
        let events = r["events"].as_array().unwrap();
        assert!(!events.is_empty() && events.len() <= 4, "round {round}: {r}");
        assert_eq!(r["next"], events.last().unwrap()["token"]);
        next = r["next"].as_str().unwrap().to_owned();
        all.extend(events.iter().cloned());
    }
    let got = seqs(&all);
    let expected: Vec<u64> = (1..=got.len() as u64).collect();
    assert_eq!(got, expected, "seq increases by one across polls: no gap, no duplicate");
    assert_eq!(got.len(), 12 + 5, "the list, 11 items, and one late item per waiting round");
    let indexes: Vec<u64> = all[1..].iter().map(|e| e["item_index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, (0..16).collect::<Vec<_>>());
    // Every event's own token continues right after it.
    let from_middle = all[5]["token"].as_str().unwrap();
    let r = s.get(&format!("/services/app/changes?since={from_middle}&limit=1")).await.ok();
    assert_eq!(r["events"][0]["seq"], all[6]["seq"]);
}

#[tokio::test]
async fn tokens_of_another_service_or_store_are_refused() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.service("other").await;
    s.post("/services/app/documents", json!({ "unique_name": "d" })).await.ok();
    let app_token = s.get("/services/app/changes?from_start=true").await.ok()["next"].as_str().unwrap().to_owned();

    let r = s.get(&format!("/services/other/changes?since={app_token}")).await;
    r.refused(400, 40005, "another");
    let r = s.get(&format!("/services/other/changes?since={app_token}&timeout=5")).await;
    r.refused(400, 40005, "");

    // Subscriptions refuse it the same way.
    let token = s.mint_token("other", "alice", 600).await;
    s.post("/services/other/documents", json!({ "unique_name": "d" })).await.ok();
    let mut ws = s.ws(&token).await;
    let reply = ws.request(json!({ "type": "subscribe", "kind": "document", "object": "d", "since": app_token })).await;
    assert_eq!((reply["status"].as_u64(), reply["error"]["code"].as_u64()), (Some(400), Some(40005)), "{reply}");

    // Same service name, another store: refused too.
    let Some(elsewhere) = TestServer::start().await else { return };
    elsewhere.service("app").await;
    elsewhere.get(&format!("/services/app/changes?since={app_token}")).await.refused(400, 40005, "");
    // And the other way round.
    elsewhere.post("/services/app/documents", json!({ "unique_name": "d" })).await.ok();
    let theirs = elsewhere.get("/services/app/changes?from_start=true").await.ok()["next"].as_str().unwrap().to_owned();
    s.get(&format!("/services/app/changes?since={theirs}")).await.refused(400, 40005, "");

    // Their own tokens still work.
    let own = s.get(&format!("/services/app/changes?since={app_token}")).await.ok();
    assert_eq!(own["events"], json!([]));
    s.get("/services/app/changes?since=garbage").await.refused(400, 40004, "");
    s.get("/services/app/changes?limit=0").await.refused(400, 40001, "limit");
    s.get("/services/app/changes?limit=1001").await.refused(400, 40001, "limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_older_than_retention_get_410() {
    let Some(s) = TestServer::with(Default::default(), |cfg| cfg.limits.retention_secs = 0).await else { return };
    s.service("app").await;
    let old = head(&s, "app").await;
    for n in 0..3 {
        s.post("/services/app/documents", json!({ "unique_name": format!("d{n}") })).await.ok();
    }
    let recent =
        s.get(&format!("/services/app/changes?since={old}&limit=2")).await.ok()["next"].as_str().unwrap().to_owned();

    // Pruning drops events older than "now - 0 s": those written in an earlier millisecond.
    let mut pruned = 0;
    tokio::time::timeout(Duration::from_secs(5), async {
        while pruned < 3 {
            pruned += s.engine.prune_log().await.unwrap();
            if pruned < 3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    })
    .await
    .expect("the three events are pruned");
    assert_eq!(pruned, 3);

    for token in [&old, &recent] {
        let r = s.get(&format!("/services/app/changes?since={token}")).await;
        r.refused(410, 41000, "snapshot");
    }
    // Subscriptions are refused the same way.
    let token = s.mint_token("app", "alice", 600).await;
    let mut ws = s.ws(&token).await;
    let reply =
        ws.request(json!({ "type": "subscribe", "kind": "document", "object": "d0", "since": old.clone() })).await;
    assert_eq!((reply["status"].as_u64(), reply["error"]["code"].as_u64()), (Some(410), Some(41000)), "{reply}");

    // The head token still works, and reading from the start begins after what was pruned.
    let head_now = head(&s, "app").await;
    s.post("/services/app/documents", json!({ "unique_name": "after" })).await.ok();
    let r = s.get(&format!("/services/app/changes?since={head_now}")).await.ok();
    assert_eq!(seqs(r["events"].as_array().unwrap()), [4]);
    let r = s.get("/services/app/changes?from_start=true").await.ok();
    assert_eq!(seqs(r["events"].as_array().unwrap()), [4]);
}

#[tokio::test]
async fn a_service_recreated_under_the_same_name_has_its_own_change_log() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let old = s.post("/services/app/documents", json!({ "unique_name": "old", "data": { "v": "old" } })).await.ok();
    let events = s.all_changes("app").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["object_sid"], old["sid"]);

    assert_eq!(s.delete("/services/app").await.status, 204);
    let svc = s.service("app").await;
    let new = s.post("/services/app/documents", json!({ "unique_name": "new", "data": { "v": "new" } })).await.ok();
    // Same name, same sequence numbers (the new log starts at 1), but none of the old events.
    for path in ["/services/app/changes?from_start=true&limit=1000", "/services/app/changes?from_start=true"] {
        let r = s.get(path).await.ok();
        let events = r["events"].as_array().unwrap();
        assert_eq!(seqs(events), [1], "{r}");
        assert_eq!((&events[0]["object_sid"], &events[0]["service_sid"]), (&new["sid"], &svc["sid"]), "{r}");
        assert_eq!(events[0]["data"], json!({ "v": "new" }));
    }
}
