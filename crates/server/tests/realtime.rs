//! The realtime paths end to end over real sockets: WebSocket subscriptions, resume without
//! loss or duplicates, token lifetime, slow consumers, and long-polls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::SinkExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::{Server, next_event, next_json, reply, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_see_rest_writes_and_resume_without_loss_or_duplicates() {
    let s = Server::start(Default::default()).await;
    s.post("/services", json!({ "unique_name": "app" })).await;
    let doc = s.post("/services/app/documents", json!({ "unique_name": "board", "data": { "v": 0 } })).await;
    let token = s.token_for("app", "alice", 3600).await;

    let mut ws = s.connect(&token).await;
    send(&mut ws, json!({ "type": "subscribe", "id": 1, "kind": "document", "object": "board" })).await;
    let sub = reply(&mut ws, 1, &mut vec![]).await;
    assert_eq!(sub["status"], 200);
    assert_eq!(sub["body"]["object"]["sid"], doc["sid"]);
    assert_eq!(sub["body"]["object"]["data"], json!({ "v": 0 }));

    s.put("/services/app/documents/board", json!({ "data": { "v": 1 } })).await;
    let e = next_event(&mut ws).await;
    assert_eq!(e["type"], "document_updated");
    assert_eq!(e["data"], json!({ "v": 1 }));
    assert_eq!(e["revision"], 1);
    assert_eq!(e["identity"], "system");
    let resume_from = e["token"].as_str().unwrap().to_owned();
    let last_seen = e["seq"].as_u64().unwrap();
    drop(ws);

    // While away: five more updates, and noise on another object.
    s.post("/services/app/documents", json!({ "unique_name": "other" })).await;
    for v in 2..=6 {
        s.put("/services/app/documents/board", json!({ "data": { "v": v } })).await;
        s.put("/services/app/documents/other", json!({ "data": { "v": v } })).await;
    }

    let mut ws = s.connect(&token).await;
    send(&mut ws, json!({ "type": "subscribe", "id": 2, "kind": "document", "object": "board", "since": resume_from }))
        .await;
    let mut events = Vec::new();
    assert_eq!(reply(&mut ws, 2, &mut events).await["status"], 200);
    while events.len() < 5 {
        events.push(next_event(&mut ws).await);
    }
    let values: Vec<u64> = events.iter().map(|e| e["data"]["v"].as_u64().unwrap()).collect();
    assert_eq!(values, [2, 3, 4, 5, 6], "exactly the missed updates, in order");
    assert!(events.iter().all(|e| e["object_sid"] == doc["sid"]));
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > last_seen);

    // Then live again, with no repeat of what the catch-up sent.
    s.put("/services/app/documents/board", json!({ "data": { "v": 7 } })).await;
    let live = next_event(&mut ws).await;
    assert_eq!(live["data"], json!({ "v": 7 }));
    assert!(live["seq"].as_u64().unwrap() > *seqs.last().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_over_the_socket_reply_and_reach_other_connections() {
    let s = Server::start(Default::default()).await;
    s.post("/services", json!({ "unique_name": "app" })).await;
    let alice = s.token_for("app", "alice", 3600).await;
    let bob = s.token_for("app", "bob", 3600).await;
    let mut a = s.connect(&alice).await;
    let mut b = s.connect(&bob).await;

    send(&mut a, json!({ "type": "open", "id": 1, "kind": "stream", "unique_name": "typing" })).await;
    let opened = reply(&mut a, 1, &mut vec![]).await;
    assert_eq!(opened["status"], 201);
    send(&mut b, json!({ "type": "subscribe", "id": 1, "kind": "stream", "object": "typing" })).await;
    assert_eq!(reply(&mut b, 1, &mut vec![]).await["status"], 200);
    send(&mut a, json!({ "type": "publish", "id": 2, "stream": "typing", "data": { "who": "alice" } })).await;
    assert_eq!(reply(&mut a, 2, &mut vec![]).await["status"], 201);
    let e = next_event(&mut b).await;
    assert_eq!(e["type"], "stream_message_published");
    assert_eq!(e["data"], json!({ "who": "alice" }));
    assert_eq!(e["identity"], "alice");

    send(&mut a, json!({ "type": "open", "id": 3, "kind": "document", "unique_name": "d", "data": { "n": 1 } })).await;
    assert_eq!(reply(&mut a, 3, &mut vec![]).await["body"]["created_by"], "alice");
    send(
        &mut a,
        json!({ "type": "update", "id": 4, "kind": "document", "object": "d", "data": { "n": 2 }, "if_match": 5 }),
    )
    .await;
    let refused = reply(&mut a, 4, &mut vec![]).await;
    assert_eq!(refused["status"], 412);
    assert_eq!(refused["error"]["code"], 41200);
    let (_, doc) = s.call(reqwest::Method::GET, "/services/app/documents/d", None).await;
    assert_eq!(doc["data"], json!({ "n": 1 }), "a refused write changes nothing");

    send(&mut a, json!({ "type": "open", "id": 5, "kind": "map", "unique_name": "m" })).await;
    reply(&mut a, 5, &mut vec![]).await;
    send(&mut a, json!({ "type": "set_item", "id": 6, "kind": "map", "object": "m", "key": "k", "data": { "x": 1 } }))
        .await;
    assert_eq!(reply(&mut a, 6, &mut vec![]).await["status"], 201);
    send(&mut a, json!({ "type": "open", "id": 7, "kind": "list", "unique_name": "l" })).await;
    reply(&mut a, 7, &mut vec![]).await;
    send(&mut a, json!({ "type": "add_item", "id": 8, "list": "l", "data": { "t": "first" } })).await;
    assert_eq!(reply(&mut a, 8, &mut vec![]).await["body"]["index"], 0);

    // A malformed frame is answered and the connection stays usable.
    a.send(Message::text("{not json")).await.unwrap();
    assert_eq!(next_json(&mut a).await["type"], "error");
    send(&mut a, json!({ "type": "ping", "id": 9 })).await;
    assert_eq!(reply(&mut a, 9, &mut vec![]).await["body"]["pong"], true);

    let fresh = s.token_for("app", "alice", 7200).await;
    send(&mut a, json!({ "type": "update_token", "id": 10, "token": fresh })).await;
    assert_eq!(reply(&mut a, 10, &mut vec![]).await["status"], 200);
    send(&mut a, json!({ "type": "update_token", "id": 11, "token": bob })).await;
    assert_eq!(reply(&mut a, 11, &mut vec![]).await["status"], 403, "another identity's token is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_warns_before_it_expires_and_the_socket_closes_at_exp() {
    let settings = ferrosync_server::state::Settings { token_warning_secs: 2, ..Default::default() };
    let s = Server::start(settings).await;
    s.post("/services", json!({ "unique_name": "app" })).await;
    let token = s.token_for("app", "alice", 3).await;
    let mut ws = s.connect(&token).await;
    assert_eq!(next_json(&mut ws).await["type"], "token_about_to_expire");
    assert_eq!(next_json(&mut ws).await["type"], "token_expired");
    let closed = next_json(&mut ws).await;
    assert_eq!(closed["type"], "closed");
    assert_eq!(closed["code"], 4001);

    // After exp the token is refused everywhere.
    let url = format!("ws://{}/api/v1/connect?token={token}", s.running.addr);
    assert!(tokio_tungstenite::connect_async(url).await.is_err(), "an expired token cannot connect");
    let r = s.http.get(s.url("/services/app/documents")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 40103);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cut_off_with_resume_tokens_and_loses_nothing() {
    let settings = ferrosync_server::state::Settings { outbound_queue: 8, ..Default::default() };
    let s = Arc::new(Server::start(settings).await);
    s.post("/services", json!({ "unique_name": "app" })).await;
    s.post("/services/app/lists", json!({ "unique_name": "feed" })).await;
    let token = s.token_for("app", "slow", 3600).await;
    let mut ws = s.connect(&token).await;
    send(&mut ws, json!({ "type": "subscribe", "id": 1, "kind": "list", "object": "feed" })).await;
    assert_eq!(reply(&mut ws, 1, &mut vec![]).await["status"], 200);

    // Write far more than the queue and the socket buffers hold while the client does not read
    // (about 5 MB).
    let total = 400u64;
    let padding = "x".repeat(12 * 1024);
    let mut writers = Vec::new();
    for w in 0..4 {
        let s = s.clone();
        let padding = padding.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..total / 4 {
                s.post("/services/app/lists/feed/items", json!({ "data": { "w": w, "n": n, "pad": padding } })).await;
            }
        }));
    }
    for w in writers {
        tokio::time::timeout(Duration::from_secs(60), w).await.unwrap().unwrap();
    }

    let mut received = Vec::new();
    let resume = loop {
        let f = next_json(&mut ws).await;
        match f["type"].as_str().unwrap() {
            "event" => received.push(f["event"]["seq"].as_u64().unwrap()),
            "overflow" => break f["resume"].clone(),
            other => panic!("unexpected {other}: {f}"),
        }
    };
    assert_eq!(next_json(&mut ws).await["code"], 4008);
    let points = resume.as_array().unwrap();
    assert_eq!(points.len(), 1);
    let since = points[0]["since"].as_str().unwrap().to_owned();

    let mut ws = s.connect(&token).await;
    send(&mut ws, json!({ "type": "subscribe", "id": 2, "kind": "list", "object": "feed", "since": since })).await;
    let mut rest = Vec::new();
    reply(&mut ws, 2, &mut rest).await;
    let mut all: Vec<u64> = received.clone();
    all.extend(rest.iter().map(|e| e["seq"].as_u64().unwrap()));
    while all.len() < total as usize {
        all.push(next_event(&mut ws).await["seq"].as_u64().unwrap());
    }
    // The list's creation is seq 1, so its items are 2..=total+1, each exactly once, in order.
    let expected: Vec<u64> = (2..=total + 1).collect();
    assert_eq!(all, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_wake_on_a_write_and_continue_without_gaps() {
    let s = Arc::new(Server::start(Default::default()).await);
    s.post("/services", json!({ "unique_name": "app" })).await;
    let (_, head) = s.call(reqwest::Method::GET, "/services/app/changes", None).await;
    let since = head["next"].as_str().unwrap().to_owned();
    assert_eq!(head["events"], json!([]));

    let poller = {
        let s = s.clone();
        let since = since.clone();
        tokio::spawn(async move {
            s.call(reqwest::Method::GET, &format!("/services/app/changes?since={since}&timeout=20"), None).await
        })
    };
    // The poll is waiting (the gauge says so) before the write.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let metrics =
                s.http.get(format!("{}/metrics", s.running.url())).send().await.unwrap().text().await.unwrap();
            if metrics.lines().any(|l| l.starts_with("ferrosync_longpolls_waiting") && l.ends_with(" 1")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    s.post("/services/app/documents", json!({ "unique_name": "d" })).await;
    let (status, got) = tokio::time::timeout(Duration::from_secs(20), poller).await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert_eq!(got["events"][0]["type"], "document_created");

    for n in 0..5 {
        s.put("/services/app/documents/d", json!({ "data": { "n": n } })).await;
    }
    let mut seqs = vec![got["events"][0]["seq"].as_u64().unwrap()];
    let mut next = got["next"].as_str().unwrap().to_owned();
    loop {
        let (_, page) =
            s.call(reqwest::Method::GET, &format!("/services/app/changes?since={next}&limit=2"), None).await;
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            break;
        }
        seqs.extend(events.iter().map(|e| e["seq"].as_u64().unwrap()));
        next = page["next"].as_str().unwrap().to_owned();
    }
    assert_eq!(seqs, (1..=6).collect::<Vec<_>>(), "each event once, in order, across pages");

    // Retention: once the log is pruned past a token, the token gets 410.
    s.engine.prune_log().await.unwrap();
    let (status, _) = s.call(reqwest::Method::GET, &format!("/services/app/changes?since={since}"), None).await;
    assert_eq!(status, 200, "nothing is older than the default retention yet");

    // A token of another service is refused.
    s.post("/services", json!({ "unique_name": "other" })).await;
    let (status, err) = s.call(reqwest::Method::GET, &format!("/services/other/changes?since={since}"), None).await;
    assert_eq!((status, err["code"].as_u64()), (400, Some(40005)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_older_than_retention_get_resync_required() {
    let s = Server::configured(Default::default(), |cfg| cfg.limits.retention_secs = 0).await;
    s.post("/services", json!({ "unique_name": "app" })).await;
    let (_, head) = s.call(reqwest::Method::GET, "/services/app/changes", None).await;
    let old = head["next"].as_str().unwrap().to_owned();
    for n in 0..3 {
        s.post("/services/app/documents", json!({ "unique_name": format!("d{n}") })).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(s.engine.prune_log().await.unwrap(), 3);
    let (status, body) = s.call(reqwest::Method::GET, &format!("/services/app/changes?since={old}"), None).await;
    assert_eq!(status, 410);
    assert_eq!(body["code"], 41000);
    assert!(body["message"].as_str().unwrap().contains("snapshot"));
    // Reading from the start skips what was pruned and says so by its sequence numbers.
    s.post("/services/app/documents", json!({ "unique_name": "after" })).await;
    let (_, fresh) = s.call(reqwest::Method::GET, "/services/app/changes?from_start=true", None).await;
    assert_eq!(fresh["events"][0]["seq"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_respect_the_acl() {
    let s = Server::default().await;
    s.post("/services", json!({ "unique_name": "app", "acl_enabled": true })).await;
    s.post("/services/app/documents", json!({ "unique_name": "private" })).await;
    let token = s.token_for("app", "eve", 3600).await;
    let mut ws = s.connect(&token).await;
    send(&mut ws, json!({ "type": "subscribe", "id": 1, "kind": "document", "object": "private" })).await;
    let refused = reply(&mut ws, 1, &mut vec![]).await;
    assert_eq!((refused["status"].as_u64(), refused["error"]["code"].as_u64()), (Some(403), Some(40300)));
    s.put("/services/app/documents/private/permissions/eve", json!({ "read": true })).await;
    send(&mut ws, json!({ "type": "subscribe", "id": 2, "kind": "document", "object": "private" })).await;
    assert_eq!(reply(&mut ws, 2, &mut vec![]).await["status"], 200);
    s.put("/services/app/documents/private", json!({ "data": { "seen": true } })).await;
    assert_eq!(next_event(&mut ws).await["data"], json!({ "seen": true }));
}
