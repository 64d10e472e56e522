//! The native WebSocket protocol over real sockets: connecting, subscriptions and resume,
//! requests with replies (writes in `websocket_writes.rs`), token lifetime, bad input, and slow
//! consumers.

use super::common::{Settings, TestServer, seqs};
use base64::Engine as _;
use futures_util::SinkExt;
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn connect_three_ways_and_receive_the_connected_frame() {
    let Some(s) = TestServer::start().await else { return };
    let svc = s.service("app").await;
    let token = s.mint_token("app", "alice", 600).await;

    // ?token=
    let url = s.ws_url(&token);
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut client = super::common::WsClient::from(ws);
    let hello = client.recv().await;
    assert_eq!(hello["type"], "connected");
    assert_eq!((&hello["identity"], &hello["service_sid"]), (&json!("alice"), &svc["sid"]));
    assert!(hello["connection_id"].as_u64().is_some());
    let exp = hello["expires_at"].as_i64().unwrap();

    // Authorization: Bearer
    let mut by_header = s.ws_with_header(&token).await.expect("a Bearer header connects");
    let hello2 = by_header.recv().await;
    assert_eq!(
        (&hello2["type"], &hello2["identity"], &hello2["expires_at"]),
        (&json!("connected"), &json!("alice"), &json!(exp))
    );
    assert_ne!(hello2["connection_id"], hello["connection_id"]);

    // A first `authenticate` frame.
    let mut by_frame = s.ws_anonymous().await;
    by_frame.send(json!({ "type": "authenticate", "token": token })).await;
    let hello3 = by_frame.recv().await;
    assert_eq!((&hello3["type"], &hello3["identity"]), (&json!("connected"), &json!("alice")));
    let pong = by_frame.request(json!({ "type": "ping" })).await;
    assert_eq!((&pong["status"], &pong["body"]["pong"]), (&json!(200), &json!(true)));

    // A first frame that is not `authenticate` closes with 4003.
    let mut wrong_first = s.ws_anonymous().await;
    wrong_first.send(json!({ "type": "ping", "id": 1 })).await;
    let closed = wrong_first.recv().await;
    assert_eq!((&closed["type"], &closed["code"]), (&json!("closed"), &json!(4003)), "{closed}");
    // An `authenticate` frame with a bad token closes with 4003 as well.
    let mut bad = s.ws_anonymous().await;
    bad.send(json!({ "type": "authenticate", "token": "not-a-token" })).await;
    let closed = bad.recv().await;
    assert_eq!((&closed["type"], &closed["code"]), (&json!("closed"), &json!(4003)), "{closed}");
    // Server credentials are not an identity: the socket is closed with 4003.
    let basic = format!("{}:{}", s.account_sid, s.auth_token);
    let encoded = base64::engine::general_purpose::STANDARD.encode(basic);
    let mut admin = s.ws_with_authorization(&format!("Basic {encoded}")).await.expect("the handshake succeeds");
    let closed = admin.recv().await;
    assert_eq!((&closed["type"], &closed["code"]), (&json!("closed"), &json!(4003)), "{closed}");
}

#[tokio::test]
async fn bad_tokens_are_refused_at_the_handshake_with_401() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    assert_eq!(s.ws_refused_status(&s.ws_url("garbage")).await, 401);
    let token = s.mint_token("app", "alice", 600).await;
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(s.ws_refused_status(&s.ws_url(&tampered)).await, 401);
    match s.ws_with_header("garbage").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 401),
        Err(e) => panic!("expected 401, got {e}"),
        Ok(_) => panic!("a garbage Bearer header must not connect"),
    }
    // The real token still connects.
    let mut ok = s.ws(&token).await;
    assert_eq!(ok.request(json!({ "type": "ping" })).await["status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_receives_rest_updates_with_data_and_revision() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let doc = s.post("/services/app/documents", json!({ "unique_name": "board", "data": { "v": 0 } })).await.ok();
    let token = s.mint_token("app", "alice", 600).await;
    let mut ws = s.ws(&token).await;
    let (reply, catch_up) = ws.subscribe("document", "board", None).await;
    assert!(catch_up.is_empty(), "no since: nothing old is replayed");
    assert_eq!(reply["body"]["object"]["sid"], doc["sid"]);
    assert_eq!(reply["body"]["object"]["data"], json!({ "v": 0 }));
    assert!(reply["body"]["since"].is_string());

    let updated = s.put("/services/app/documents/board", json!({ "data": { "v": 1 } })).await.ok();
    let e = ws.next_event().await;
    assert_eq!(e["type"], "document_updated");
    assert_eq!((&e["object_sid"], &e["data"], &e["revision"]), (&doc["sid"], &json!({ "v": 1 }), &updated["revision"]));
    assert_eq!((&e["previous_data"], &e["identity"]), (&json!({ "v": 0 }), &json!("system")));
    assert!(e["token"].is_string() && e["seq"].as_u64().unwrap() >= 2);

    // Events of objects not subscribed to do not arrive; the next one of ours does.
    s.post("/services/app/documents", json!({ "unique_name": "elsewhere" })).await.ok();
    s.put("/services/app/documents/elsewhere", json!({ "data": { "noise": true } })).await.ok();
    assert_eq!(s.delete("/services/app/documents/board").await.status, 204);
    let e = ws.next_event().await;
    assert_eq!((&e["type"], &e["object_sid"]), (&json!("document_removed"), &doc["sid"]), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_a_disconnect_delivers_exactly_the_missed_events_then_live_ones() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let doc = s.post("/services/app/documents", json!({ "unique_name": "board", "data": { "v": 0 } })).await.ok();
    s.post("/services/app/documents", json!({ "unique_name": "other" })).await.ok();
    let token = s.mint_token("app", "alice", 3600).await;

    let mut ws = s.ws(&token).await;
    ws.subscribe("document", "board", None).await;
    s.put("/services/app/documents/board", json!({ "data": { "v": 1 } })).await.ok();
    let seen = ws.next_event().await;
    assert_eq!(seen["data"], json!({ "v": 1 }));
    let last_token = seen["token"].as_str().unwrap().to_owned();
    let last_seq = seen["seq"].as_u64().unwrap();
    ws.ws.close(None).await.unwrap();
    drop(ws);

    // While away: five updates of ours, interleaved with noise on another object.
    for v in 2..=6 {
        s.put("/services/app/documents/board", json!({ "data": { "v": v } })).await.ok();
        s.put("/services/app/documents/other", json!({ "data": { "v": v } })).await.ok();
    }

    let mut ws = s.ws(&token).await;
    let (reply, mut missed) = ws.subscribe("document", "board", Some(&last_token)).await;
    assert_eq!(reply["body"]["object"]["data"], json!({ "v": 6 }), "the snapshot is current");
    while missed.len() < 5 {
        missed.push(ws.next_event().await);
    }
    let values: Vec<u64> = missed.iter().map(|e| e["data"]["v"].as_u64().unwrap()).collect();
    assert_eq!(values, [2, 3, 4, 5, 6], "exactly the missed updates, in order");
    assert!(missed.iter().all(|e| e["object_sid"] == doc["sid"] && e["type"] == "document_updated"));
    let got = seqs(&missed);
    assert!(got[0] > last_seq && got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    // Every event of ours in the log after the token, and no other.
    let log: Vec<u64> = s
        .all_changes("app")
        .await
        .iter()
        .filter(|e| e["object_sid"] == doc["sid"] && e["seq"].as_u64().unwrap() > last_seq)
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(got, log);

    // Then live, with nothing repeated.
    s.put("/services/app/documents/board", json!({ "data": { "v": 7 } })).await.ok();
    let live = ws.next_event().await;
    assert_eq!(live["data"], json!({ "v": 7 }));
    assert!(live["seq"].as_u64().unwrap() > *got.last().unwrap());
    let pong = ws.request(json!({ "type": "ping" })).await;
    assert_eq!(pong["status"], 200, "no stray event was queued before the reply");
}

/// A write's event goes out to the other connections watching its object before the writer's
/// own reply does: when the reply arrives, the watcher's socket already holds the event. The
/// clients run on a thread of their own, so the writer reads its reply as soon as it is sent.
/// Scheduling is a preference, not a promise (a runtime may poll its timers in between), so
/// most of the writes, not all, are asked to show it.
#[tokio::test]
async fn a_write_reaches_its_watchers_before_its_reply_reaches_the_writer() {
    // At checkpoint durability a lone write commits in place, on the writer's own task, which
    // would otherwise go straight on to its reply.
    let normal =
        |cfg: &mut ferrosync_server::ServerConfig| cfg.durability = ferrosync_store::sqlite::Durability::Normal;
    let Some(s) = TestServer::with(Settings::default(), normal).await else { return };
    if matches!(s.store, ferrosync_server::StoreLocation::Postgres(_)) {
        // There the fan-out often reads the event back from the database (the recent events in
        // memory answer only when they prove no other node's event comes first), and the
        // writer's reply often goes out meanwhile.
        return;
    }
    s.service("app").await;
    s.post("/services/app/documents", json!({ "unique_name": "d", "data": { "n": 0 } })).await.ok();
    let urls = (s.ws_url(&s.mint_token("app", "alice", 3600).await), s.ws_url(&s.mint_token("app", "bob", 3600).await));
    let writes = 20;
    let clients = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async move {
            let connect = async |url: &str| {
                let mut client = super::common::WsClient::from(tokio_tungstenite::connect_async(url).await.expect("connects").0);
                assert_eq!(client.recv().await["type"], "connected");
                client
            };
            let (mut writer, mut watcher) = (connect(&urls.0).await, connect(&urls.1).await);
            watcher.subscribe("document", "d", None).await;
            let mut event_first = 0;
            for n in 1..=writes {
                let update = json!({ "type": "update", "kind": "document", "object": "d", "data": { "n": n }, "if_match": n - 1 });
                let reply = writer.request(update).await;
                assert_eq!(reply["status"], 200, "{reply}");
                if holds_bytes(&watcher) {
                    event_first += 1;
                }
                let event = watcher.next_event().await;
                assert_eq!((&event["data"], &event["revision"]), (&json!({ "n": n }), &json!(n)), "{event}");
            }
            event_first
        })
    });
    let event_first = clients.await.expect("the clients' thread");
    assert!(event_first * 4 >= writes * 3, "the event was out before the reply for {event_first} of {writes} writes");
}

/// Whether the client's socket has bytes the client has not read yet.
fn holds_bytes(client: &super::common::WsClient) -> bool {
    let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = client.ws.get_ref() else { panic!("plain ws:// only") };
    let mut byte = [std::mem::MaybeUninit::uninit()];
    // The socket is non-blocking (tokio's): an empty queue answers WouldBlock at once.
    socket2::SockRef::from(tcp).peek(&mut byte).is_ok_and(|n| n > 0)
}

#[tokio::test]
async fn update_token_accepts_a_fresh_token_of_the_same_identity() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.service("other").await;
    let token = s.mint_token("app", "alice", 600).await;
    let mut ws = s.ws(&token).await;

    let fresh = s.post("/tokens", json!({ "service": "app", "identity": "alice", "ttl": 7200 })).await.ok();
    let reply = ws.request(json!({ "type": "update_token", "token": fresh["token"] })).await;
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(reply["body"]["expires_at"], fresh["expires_at"]);

    let bob = s.mint_token("app", "bob", 600).await;
    let reply = ws.request(json!({ "type": "update_token", "token": bob })).await;
    assert_eq!((&reply["status"], &reply["error"]["code"]), (&json!(403), &json!(40300)));
    let elsewhere = s.mint_token("other", "alice", 600).await;
    let reply = ws.request(json!({ "type": "update_token", "token": elsewhere })).await;
    assert_eq!(reply["status"], 403);
    let reply = ws.request(json!({ "type": "update_token", "token": "garbage" })).await;
    assert_eq!((&reply["status"], &reply["error"]["code"]), (&json!(401), &json!(40102)));
    assert_eq!(ws.request(json!({ "type": "ping" })).await["status"], 200, "still connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_is_warned_then_the_socket_closes_with_4001() {
    let Some(s) = TestServer::with_settings(Settings { token_warning_secs: 1, ..Default::default() }).await else {
        return;
    };
    s.service("app").await;
    let token = s.mint_token("app", "alice", 3).await;
    let mut ws = s.ws(&token).await;
    let frames = tokio::time::timeout(Duration::from_secs(10), async {
        let mut frames = Vec::new();
        loop {
            let f = ws.recv().await;
            let done = matches!(f["type"].as_str(), Some("closed" | "ended"));
            frames.push(f);
            if done {
                return frames;
            }
        }
    })
    .await
    .expect("warning, expiry and close within 10 s");
    let kinds: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["token_about_to_expire", "token_expired", "closed"], "{frames:?}");
    assert!(frames[0]["expires_at"].is_i64());
    assert_eq!(frames[2]["code"], 4001);

    // Afterwards the token is refused everywhere.
    assert_eq!(s.ws_refused_status(&s.ws_url(&token)).await, 401);
    let r = super::common::send(s.bearer(&token, Method::GET, "/services/app")).await;
    r.refused(401, 40103, "expired");
}

#[tokio::test]
async fn malformed_frames_get_an_error_and_the_connection_stays_usable() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.post("/services/app/documents", json!({ "unique_name": "d" })).await.ok();
    let token = s.mint_token("app", "alice", 600).await;
    let mut ws = s.ws(&token).await;

    ws.send_text("{not json").await;
    let e = ws.recv().await;
    assert_eq!((&e["type"], &e["error"]["code"]), (&json!("error"), &json!(40000)), "{e}");

    ws.send(json!({ "type": "teleport", "id": 77 })).await;
    let e = ws.recv().await;
    assert_eq!((&e["type"], &e["id"], &e["error"]["code"]), (&json!("error"), &json!(77), &json!(40000)), "{e}");

    ws.send(json!({ "type": "get", "id": 78, "kind": "document", "object": "d", "extra": 1 })).await;
    let e = ws.recv().await;
    assert_eq!((&e["type"], &e["id"]), (&json!("error"), &json!(78)), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("extra"));

    ws.ws.send(tokio_tungstenite::tungstenite::Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(ws.recv().await["type"], "error");

    // Still usable: requests, subscriptions and events all work.
    let got = ws.request(json!({ "type": "get", "kind": "document", "object": "d" })).await;
    assert_eq!(got["status"], 200);
    ws.subscribe("document", "d", None).await;
    s.put("/services/app/documents/d", json!({ "data": { "after": "errors" } })).await.ok();
    assert_eq!(ws.next_event().await["data"], json!({ "after": "errors" }));
    let missing = ws.request(json!({ "type": "get", "kind": "document", "object": "nope" })).await;
    assert_eq!((&missing["status"], &missing["error"]["code"]), (&json!(404), &json!(40402)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cut_off_with_resume_tokens_and_loses_nothing() {
    // The client reads again only after the writes: it must not be taken for gone meanwhile.
    let settings = Settings { outbound_queue: 8, write_stall_secs: 600, ..Default::default() };
    let Some(Feed { s, doc_sid, token, mut ws, .. }) = Feed::subscribed(settings, "slow").await else { return };

    // 2,000 updates from 8 concurrent writers while the client reads nothing. Each event
    // carries data and previous_data of ~3 KiB, ~12 MB in all: more than the socket buffers
    // between server and client hold, so the bounded queue must overflow.
    let total = 2000u64;
    flood(&s, "feed", total, 8, 3 * 1024).await;
    let final_revision = s.get("/services/app/documents/feed").await.ok()["revision"].as_u64().unwrap();
    assert_eq!(final_revision, total);
    let last_seq = 1 + total; // seq 1 is the document's creation

    // Now read: events up to where the queue overflowed, then the overflow frame and 4008.
    let mut received = Vec::new();
    let resume = loop {
        let f = ws.recv().await;
        match f["type"].as_str() {
            Some("event") => received.push(f["event"]["seq"].as_u64().unwrap()),
            Some("overflow") => break f["resume"].clone(),
            _ => panic!("unexpected frame {f}"),
        }
    };
    let closed = ws.recv().await;
    assert_eq!((&closed["type"], &closed["code"]), (&json!("closed"), &json!(4008)), "{closed}");
    assert!((received.len() as u64) < total, "the consumer was cut off before the end");
    let points = resume.as_array().unwrap();
    assert_eq!(points.len(), 1, "{resume}");
    assert_eq!(points[0]["object_sid"], doc_sid);
    let since = points[0]["since"].as_str().unwrap().to_owned();
    // What arrived before the cut is a gap-free run.
    let expected_before: Vec<u64> = (2..2 + received.len() as u64).collect();
    if received != expected_before {
        let breaks: Vec<(u64, u64)> = received.windows(2).filter(|w| w[1] != w[0] + 1).map(|w| (w[0], w[1])).collect();
        panic!("{} events before the cut, first {:?}, discontinuities {breaks:?}", received.len(), received.first());
    }

    // Resuming from the token yields the rest, continuing exactly where the cut was.
    let remaining = (last_seq - 1) as usize - received.len();
    let (mut ws, rest) = resume_from(&s, &token, &doc_sid, &since, remaining).await;
    let mut all = received.clone();
    all.extend(seqs(&rest));
    assert_eq!(all, (2..=last_seq).collect::<Vec<_>>(), "every update exactly once, in order");
    assert_eq!(rest.last().unwrap()["revision"], total);
    let pong = ws.request(json!({ "type": "ping" })).await;
    assert_eq!(pong["status"], 200, "nothing beyond the last write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_resumes_without_loss() {
    // The queue holds every event, so only the stalled write can end the connection.
    let settings = Settings { write_stall_secs: 1, ..Default::default() };
    let Some(Feed { s, doc_sid, token, mut ws, start }) = Feed::subscribed(settings, "gone").await else { return };

    // ~18 MB of events (data and previous_data of 6 KiB each) while the client reads nothing:
    // more than the socket buffers between them hold.
    let total = 1500u64;
    flood(&s, "feed", total, 6, 6 * 1024).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // What the socket held arrives, gap-free, then the end: the server gave the connection up
    // rather than waiting on it.
    let mut received = Vec::new();
    let last_token = loop {
        let f = ws.recv().await;
        match f["type"].as_str() {
            Some("event") => received.push(f["event"].clone()),
            Some("ended" | "closed") => {
                break received.last().map_or(start, |e| e["token"].as_str().unwrap().to_owned());
            }
            _ => panic!("unexpected frame {f}"),
        }
    };
    let got = seqs(&received);
    assert!((got.len() as u64) < total, "the connection ended before the last event");
    assert_eq!(got, (2..2 + got.len() as u64).collect::<Vec<_>>(), "a gap-free run from the first update");

    // Resuming from the last event received yields exactly the rest.
    let (_, rest) = resume_from(&s, &token, &doc_sid, &last_token, total as usize - got.len()).await;
    let mut all = got;
    all.extend(seqs(&rest));
    assert_eq!(all, (2..=1 + total).collect::<Vec<_>>(), "every update exactly once, in order");
}

/// A server with the document `feed` in service `app`, and `identity` subscribed to it from the
/// head on a fresh connection.
struct Feed {
    s: Arc<TestServer>,
    doc_sid: String,
    token: String,
    ws: super::common::WsClient,
    /// The subscription's token: where a resume that received nothing starts.
    start: String,
}

impl Feed {
    async fn subscribed(settings: Settings, identity: &str) -> Option<Feed> {
        let s = Arc::new(TestServer::with_settings(settings).await?);
        s.service("app").await;
        let doc = s.post("/services/app/documents", json!({ "unique_name": "feed", "data": { "n": -1 } })).await.ok();
        let doc_sid = doc["sid"].as_str().unwrap().to_owned();
        let token = s.mint_token("app", identity, 3600).await;
        let mut ws = s.ws(&token).await;
        let (reply, catch_up) = ws.subscribe("document", "feed", None).await;
        assert!(catch_up.is_empty(), "a subscription from the head replays nothing");
        let start = reply["body"]["since"].as_str().expect("the subscription's token").to_owned();
        Some(Feed { s, doc_sid, token, ws, start })
    }
}

/// `total` updates of the document `name` of service `app` from `writers` concurrent writers,
/// each update's data padded with `pad` bytes.
async fn flood(s: &Arc<TestServer>, name: &str, total: u64, writers: u64, pad: usize) {
    let padding = "x".repeat(pad);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let s = s.clone();
        let padding = padding.clone();
        let path = format!("/services/app/documents/{name}");
        tasks.push(tokio::spawn(async move {
            for n in 0..total / writers {
                let r = s.put(&path, json!({ "data": { "w": w, "n": n, "pad": padding } })).await;
                assert_eq!(r.status, 200, "{}", r.text);
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(90), t).await.expect("the writes finish").unwrap();
    }
}

/// A new connection resuming the document `doc_sid` from `since`, with the `remaining` events
/// that follow it.
async fn resume_from(
    s: &TestServer,
    token: &str,
    doc_sid: &str,
    since: &str,
    remaining: usize,
) -> (super::common::WsClient, Vec<serde_json::Value>) {
    let mut ws = s.ws(token).await;
    let (_, mut rest) = ws.subscribe("document", doc_sid, Some(since)).await;
    tokio::time::timeout(Duration::from_secs(30), async {
        while rest.len() < remaining {
            rest.push(ws.next_event().await);
        }
    })
    .await
    .expect("the rest arrives");
    (ws, rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_token_postpones_the_expiry() {
    let Some(s) = TestServer::with_settings(Settings { token_warning_secs: 1, ..Default::default() }).await else {
        return;
    };
    s.service("app").await;
    let short = s.mint_token("app", "alice", 3).await;
    let mut ws = s.ws(&short).await;
    let fresh = s.mint_token("app", "alice", 600).await;
    let reply = ws.request(json!({ "type": "update_token", "token": fresh })).await;
    assert_eq!(reply["status"], 200, "{reply}");
    // Past the first token's exp (3 s): the connection is open and nothing was pushed.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pong = ws.request(json!({ "type": "ping" })).await;
    assert_eq!(pong["status"], 200, "no warning, expiry or close came first: {pong}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_with_several_subscriptions_gets_each_objects_events_once_in_order() {
    let Some(s) = TestServer::start().await else { return };
    let s = Arc::new(s);
    s.service("app").await;
    let names = ["a", "b", "c"];
    let mut sids = Vec::new();
    for n in names {
        sids.push(s.post("/services/app/documents", json!({ "unique_name": n })).await.ok()["sid"].clone());
    }
    let token = s.mint_token("app", "alice", 600).await;
    let mut ws = s.ws(&token).await;
    for n in names {
        ws.subscribe("document", n, None).await;
    }
    // Three concurrent writers, one per document, 30 updates each.
    let rounds = 30u64;
    let mut tasks = Vec::new();
    for n in names {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for v in 1..=rounds {
                s.put(&format!("/services/app/documents/{n}"), json!({ "data": { "v": v } })).await.ok();
            }
        }));
    }
    let events = ws.events(3 * rounds as usize).await;
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t).await.unwrap().unwrap();
    }
    for sid in &sids {
        let values: Vec<u64> =
            events.iter().filter(|e| &e["object_sid"] == sid).map(|e| e["data"]["v"].as_u64().unwrap()).collect();
        assert_eq!(values, (1..=rounds).collect::<Vec<_>>(), "{sid}: each update once, in order");
    }
    let mut all = seqs(&events);
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, (4..4 + 3 * rounds).collect::<Vec<_>>(), "every event once");

    // Unsubscribed: b's later events stop; a's still come.
    let reply = ws.request(json!({ "type": "unsubscribe", "kind": "document", "object": "b" })).await;
    assert_eq!(reply["status"], 200);
    s.put("/services/app/documents/b", json!({ "data": { "v": 100 } })).await.ok();
    s.put("/services/app/documents/a", json!({ "data": { "v": 100 } })).await.ok();
    let next = ws.next_event().await;
    assert_eq!((&next["object_sid"], &next["data"]), (&sids[0], &json!({ "v": 100 })), "{next}");
}

/// A fresh subscription (no `since`) reads no log: its snapshot and the live events after it
/// must add up to every change, even while the object is written to as it subscribes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_subscriptions_during_writes_see_the_snapshot_then_every_later_change() {
    let Some(s) = TestServer::start().await else { return };
    let s = Arc::new(s);
    s.service("app").await;
    s.post("/services/app/documents", json!({ "unique_name": "busy", "data": { "v": 0 } })).await.ok();
    let token = s.mint_token("app", "alice", 600).await;
    let last = 80u64;
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for v in 1..=last {
                s.put("/services/app/documents/busy", json!({ "data": { "v": v } })).await.ok();
            }
        })
    };
    // Eight subscriptions, staggered over the writes; each checked once all writes are in.
    let mut subscribed = Vec::new();
    for _ in 0..8 {
        let mut ws = s.ws(&token).await;
        let (reply, catch_up) = ws.subscribe("document", "busy", None).await;
        assert!(catch_up.is_empty(), "no since: nothing old is replayed");
        let seen = reply["body"]["object"]["data"]["v"].as_u64().expect("the snapshot's value");
        subscribed.push((ws, seen));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    tokio::time::timeout(Duration::from_secs(30), writer).await.expect("the writer finishes").expect("no panic");
    // The snapshot is read after the subscription's position, so it may already show a change
    // that then arrives live; what must not happen is a gap after it.
    for (mut ws, seen) in subscribed {
        let mut values = Vec::new();
        while values.last() != Some(&last) {
            values.push(ws.next_event().await["data"]["v"].as_u64().expect("a value"));
        }
        let first = values[0];
        assert!(first <= seen + 1, "after a snapshot at v={seen} the first change seen was v={first}");
        assert_eq!(values, (first..=last).collect::<Vec<_>>(), "after a snapshot at v={seen}: every change once");
    }
}

/// The protocol's own duties: a ping is answered with its payload, a close is answered with a
/// close, and a request that is not a WebSocket upgrade gets a 400 naming what it lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_and_closes_are_answered_and_plain_requests_are_told_what_is_missing() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let token = s.mint_token("app", "alice", 600).await;
    let mut ws = s.ws(&token).await;

    // The next frame `pick` takes, skipping others.
    async fn next_of<T>(ws: &mut super::common::Ws, pick: impl Fn(Message) -> Option<T>) -> T {
        let read = async {
            loop {
                match ws.next().await {
                    Some(Ok(m)) => match pick(m) {
                        Some(t) => return t,
                        None => continue,
                    },
                    other => panic!("the connection ended first: {other:?}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), read).await.expect("the frame within 5 s")
    }

    ws.ws.send(Message::Ping(b"are you there".to_vec().into())).await.unwrap();
    let pong = next_of(&mut ws.ws, |m| if let Message::Pong(p) = m { Some(p) } else { None }).await;
    assert_eq!(&pong[..], b"are you there");
    // Still usable after the ping.
    assert_eq!(ws.request(json!({ "type": "ping" })).await["status"], 200);

    ws.ws.send(Message::Close(None)).await.unwrap();
    let reply = next_of(&mut ws.ws, |m| if let Message::Close(f) = m { Some(f) } else { None }).await;
    assert_eq!(reply.map(|f| u16::from(f.code)), Some(1000), "a normal closure");

    let url = format!("http://{}/api/v1/connect?token={token}", s.server.addr);
    let plain = s.http.get(&url).send().await.unwrap();
    assert_eq!(plain.status(), 400);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(body["code"], 40000, "{body}");
    assert!(body["message"].as_str().unwrap().contains("Connection: Upgrade"), "{body}");
    let old = s
        .http
        .get(&url)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "8")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 400);
    let body: serde_json::Value = old.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("Sec-WebSocket-Version: 13"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_sent_without_waiting_are_all_answered_and_keep_each_objects_order() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let token = s.mint_token("app", "alice", 3600).await;
    let mut a = s.ws(&token).await;
    const DOCS: u64 = 8;
    const ROUNDS: u64 = 10;
    for d in 0..DOCS {
        let opened =
            a.request(json!({ "type": "open", "kind": "document", "unique_name": format!("d{d}"), "data": {} })).await;
        assert_eq!(opened["status"], 201);
    }
    assert_eq!(a.request(json!({ "type": "open", "kind": "list", "unique_name": "l" })).await["status"], 201);

    // Every frame leaves before any reply is read: more than a connection runs at once. Each
    // update expects the revision the one before it on its document makes, so a write run out
    // of its document's order is refused; list items are numbered in the order they land.
    let mut expected = std::collections::HashMap::new();
    let mut id = 1000;
    for round in 0..ROUNDS {
        for d in 0..DOCS {
            id += 1;
            let object = format!("d{d}");
            a.send(json!({ "type": "update", "id": id, "kind": "document", "object": object, "data": { "n": round + 1 }, "if_match": round })).await;
            expected.insert(id, ("update", round + 1));
        }
        id += 1;
        a.send(json!({ "type": "add_item", "id": id, "list": "l", "data": { "t": round } })).await;
        expected.insert(id, ("add_item", round));
    }
    for d in 0..DOCS {
        id += 1;
        a.send(json!({ "type": "get", "id": id, "kind": "document", "object": format!("d{d}") })).await;
        expected.insert(id, ("get", ROUNDS));
    }
    assert!(expected.len() > 64, "the frames outnumber the requests one connection runs at once");

    while !expected.is_empty() {
        let reply = a.recv().await;
        assert_eq!(reply["type"], "reply", "{reply}");
        let id = reply["id"].as_u64().expect("replies carry the request's id");
        let (what, n) = expected.remove(&id).unwrap_or_else(|| panic!("one reply per request: {reply}"));
        match what {
            "update" => assert_eq!((&reply["status"], &reply["body"]["revision"]), (&json!(200), &json!(n)), "{reply}"),
            "add_item" => assert_eq!((&reply["status"], &reply["body"]["index"]), (&json!(201), &json!(n)), "{reply}"),
            _ => assert_eq!(
                (&reply["status"], &reply["body"]["data"], &reply["body"]["revision"]),
                (&json!(200), &json!({ "n": n }), &json!(n)),
                "a read after writes to its object sees them: {reply}"
            ),
        }
    }
    let items = s.get("/services/app/lists/l/items?page_size=50").await.ok();
    let order: Vec<u64> = items["items"].as_array().unwrap().iter().map(|i| i["data"]["t"].as_u64().unwrap()).collect();
    assert_eq!(order, (0..ROUNDS).collect::<Vec<_>>());
}
