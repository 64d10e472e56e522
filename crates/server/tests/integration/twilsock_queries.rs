//! Live and instant queries on the twilsock face, driven as a raw client the way the
//! `twilio-sync` SDK drives them: `POST /v3/Insights/{index}/Items` (the reply's shape, paging,
//! errors), a live query's subscription through `/v4/Subscriptions` with the items entering,
//! changing and leaving its results as the native REST API writes them, a Map removal, and a
//! new connection resuming from a last event id.

use super::common::{FRAME_TIMEOUT, TestServer};
use super::twilsock::{frame, unframe};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const ENG: &str = r#"data.team == "eng""#;

struct Client {
    ws: super::common::Ws,
    host: String,
    next: u64,
    /// Notifications received so far, in order.
    notes: Vec<Value>,
}

impl Client {
    async fn connect(s: &TestServer, token: &str) -> Self {
        let url = format!("ws://{}/twilio/twilsock/v3/wsconnect", s.server.addr);
        let (ws, _) = tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("the handshake within the timeout")
            .expect("the handshake succeeds");
        let mut c = Client { ws, host: s.server.addr.to_string(), next: 1, notes: Vec::new() };
        let id = c.id();
        c.send(json!({"id": id, "method": "init", "token": token, "capabilities": [], "registrations": null}), "")
            .await;
        let (reply, _) = c.recv().await.expect("an init reply");
        assert_eq!(reply["status"]["code"], 200, "{reply}");
        c
    }

    fn id(&mut self) -> String {
        self.next += 1;
        format!("TM{:032x}", self.next)
    }

    async fn send(&mut self, header: Value, payload: &str) {
        self.ws.send(Message::binary(frame(&header, payload))).await.expect("sent");
    }

    async fn recv(&mut self) -> Option<(Value, Value)> {
        loop {
            let next = tokio::time::timeout(FRAME_TIMEOUT, self.ws.next()).await.expect("a frame within the timeout");
            match next {
                Some(Ok(Message::Binary(b))) => return Some(unframe(&b)),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(other)) => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// A tunnelled CDS request with query parameters; (http status, body). Notifications that
    /// arrive first are kept.
    async fn cds(&mut self, method: &str, path: &str, params: Value, body: Option<Value>) -> (u16, Value) {
        let id = self.id();
        let header = json!({"id": id, "method": "message", "active_grant": "data_sync",
            "payload_type": "application/json",
            "http_request": {"host": self.host, "path": path, "method": method, "params": params,
                "headers": {"Content-Type": "application/json"}}});
        self.send(header, &body.map(|b| b.to_string()).unwrap_or_default()).await;
        loop {
            let (h, p) = self.recv().await.expect("a reply before the socket ends");
            match h["method"].as_str() {
                Some("reply") if h["id"] == json!(id) => {
                    assert_eq!(h["status"]["code"], 200, "transport status: {h}");
                    return (h["http_status"]["code"].as_u64().expect("http status") as u16, p);
                }
                Some("notification") => self.notes.push(p),
                _ => panic!("unexpected frame while waiting for {id}: {h} {p}"),
            }
        }
    }

    async fn query(&mut self, index: &str, body: Value) -> (u16, Value) {
        self.cds("POST", &format!("/twilio/cds/v3/Insights/{index}/Items"), json!({}), Some(body)).await
    }

    /// Pokes `/v4/Subscriptions` for one live query and waits for its outcome; returns the
    /// notifications up to and including it.
    async fn poke(&mut self, action: &str, query_id: &str, index: &str, query: &str, last: Value) -> Vec<Value> {
        self.notes.clear();
        let poke = json!({"event_protocol_version": 4, "action": action, "correlation_id": 42, "retried_requests": 0,
            "ttl_in_s": -1, "requests": [{"object_sid": query_id, "object_type": "live_query", "last_event_id": last,
            "index_name": index, "query_string": query}]});
        let (status, ack) = self.cds("POST", "/twilio/cds/v4/Subscriptions", json!({}), Some(poke)).await;
        assert_eq!(status, 200, "{ack}");
        self.until(|n| n.iter().any(|e| e["event_type"].as_str().is_some_and(|t| t.starts_with("subscription_"))))
            .await;
        std::mem::take(&mut self.notes)
    }

    /// Notifications until `done` holds for those received since the last call.
    async fn until(&mut self, done: impl Fn(&[Value]) -> bool) {
        while !done(&self.notes) {
            let (h, p) = self.recv().await.expect("the socket stays open");
            assert_eq!(h["method"], "notification", "{h}");
            // Query events travel on the ordered stream; a document's live events do not.
            if p["event_type"].as_str().is_some_and(|t| t.starts_with("live_query_")) {
                assert_eq!(h["message_type"], "twilio.sync.event", "{h}");
            }
            self.notes.push(p);
        }
    }

    /// The next `n` notifications.
    async fn next(&mut self, n: usize) -> Vec<Value> {
        self.until(|notes| notes.len() >= n).await;
        let rest = self.notes.split_off(n);
        std::mem::replace(&mut self.notes, rest)
    }
}

async fn put_item(s: &TestServer, map: &str, key: &str, data: Value) -> u64 {
    let r = s.put(&format!("/services/app/maps/{map}/items/{key}"), json!({ "data": data })).await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
    head(s).await
}

/// The newest event id of the service (what the write just made).
async fn head(s: &TestServer) -> u64 {
    let changes = s.all_changes("app").await;
    changes.last().and_then(|e| e["seq"].as_u64()).expect("an event")
}

/// A service with a prefix index `tr-worker` over `workers-*` and a one-Map index `people`.
async fn setup(s: &TestServer) {
    s.service("app").await;
    for map in ["workers-eu", "workers-us", "people"] {
        s.post("/services/app/maps", json!({ "unique_name": map })).await.ok();
    }
    s.put("/services/app/indexes/tr-worker", json!({"map_prefix": "workers-", "fields": ["data.team"]})).await.ok();
    s.put("/services/app/indexes/people", json!({"map": "people"})).await.ok();
}

/// (event_type, item_key, item_data) of query notifications, to compare at a glance.
fn summary(notes: &[Value]) -> Vec<(String, Value, Value)> {
    notes
        .iter()
        .map(|n| {
            (
                n["event_type"].as_str().unwrap_or_default().to_owned(),
                n["event"]["item_key"].clone(),
                n["event"]["item_data"].clone(),
            )
        })
        .collect()
}

fn keys(reply: &Value) -> Vec<&str> {
    reply["items"].as_array().expect("items").iter().map(|i| i["key"].as_str().expect("a key")).collect()
}

#[tokio::test]
async fn instant_queries_reply_in_the_shape_the_sdk_reads_and_page() {
    let Some(s) = TestServer::start().await else { return };
    setup(&s).await;
    put_item(&s, "workers-eu", "w1", json!({"team": "eng", "name": "Ann"})).await;
    put_item(&s, "workers-eu", "w2", json!({"team": "ops"})).await;
    put_item(&s, "workers-us", "w1", json!({"team": "eng", "name": "Bob"})).await;
    put_item(&s, "workers-us", "w3", json!({"team": "eng"})).await;
    let last = put_item(&s, "people", "p1", json!({"team": "eng"})).await;
    let token = s.mint_token("app", "alice", 600).await;
    let mut c = Client::connect(&s, &token).await;

    // As the SDK's InstantQuery.search sends it: no `type`.
    let (status, found) = c.query("tr-worker", json!({"query_string": ENG})).await;
    assert_eq!(status, 200, "{found}");
    assert!(found["query_id"].as_str().is_some_and(|q| q.starts_with("LQ")), "{found}");
    assert_eq!(found["last_event_id"], json!(last));
    // Maps of a prefix index may share keys: each key says its Map.
    assert_eq!(keys(&found), ["workers-eu/w1", "workers-us/w1", "workers-us/w3"]);
    assert_eq!(
        found["items"][0],
        json!({"key": "workers-eu/w1", "data": {"team": "eng", "name": "Ann"}, "revision": last})
    );
    assert_eq!((&found["meta"]["next_token"], &found["meta"]["previous_token"]), (&Value::Null, &Value::Null));

    // A one-Map index gives keys as they are.
    let (_, people) = c.query("people", json!({"query_string": ENG})).await;
    assert_eq!(keys(&people), ["p1"]);

    // Pages, for clients that ask for them (the SDK does not).
    let path = "/twilio/cds/v3/Insights/tr-worker/Items";
    let (_, first) = c.cds("POST", path, json!({"PageSize": "2"}), Some(json!({"query_string": ENG}))).await;
    assert_eq!(keys(&first), ["workers-eu/w1", "workers-us/w1"]);
    assert_eq!(first["meta"]["previous_token"], Value::Null);
    let next = first["meta"]["next_token"].as_str().expect("a next page").to_owned();
    let (_, second) =
        c.cds("POST", path, json!({"PageSize": "2", "PageToken": next}), Some(json!({"query_string": ENG}))).await;
    assert_eq!(keys(&second), ["workers-us/w3"]);
    assert_eq!(second["meta"]["next_token"], Value::Null);
    let back = second["meta"]["previous_token"].as_str().expect("a previous page").to_owned();
    let (_, before) =
        c.cds("POST", path, json!({"PageSize": "2", "PageToken": back}), Some(json!({"query_string": ENG}))).await;
    assert_eq!(keys(&before), ["workers-us/w1", "workers-eu/w1"], "the page before, nearest first");

    // Errors in Twilio's shape.
    let (status, e) = c.query("tr-nothing", json!({"query_string": ENG})).await;
    assert_eq!((status, &e["code"], &e["status"]), (404, &json!(20404), &json!(404)), "{e}");
    let (status, e) = c.query("tr-worker", json!({"query_string": "data.team == "})).await;
    assert_eq!((status, &e["code"]), (400, &json!(54507)), "{e}");
    assert!(e["more_info"].as_str().is_some_and(|m| m.ends_with("54507")), "{e}");
    let many = (0..30).map(|i| format!(r#"data.team == "t{i}""#)).collect::<Vec<_>>().join(" or ");
    let (status, e) = c.query("tr-worker", json!({"query_string": many})).await;
    assert_eq!((status, &e["code"]), (400, &json!(54509)), "{e}");
    let array = (0..30).map(|i| format!(r#""t{i}""#)).collect::<Vec<_>>().join(",");
    let (status, e) = c.query("tr-worker", json!({"query_string": format!("data.team in [{array}]")})).await;
    assert_eq!((status, &e["code"]), (400, &json!(54510)), "{e}");
    let (status, e) = c.query("tr-worker", json!({})).await;
    assert_eq!((status, &e["code"]), (400, &json!(54507)), "{e}");
    let (status, _) = c.cds("GET", path, json!({}), None).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn a_live_query_pushes_items_entering_changing_and_leaving_and_resumes() {
    let Some(s) = TestServer::start().await else { return };
    setup(&s).await;
    put_item(&s, "workers-eu", "w1", json!({"team": "eng"})).await;
    put_item(&s, "workers-us", "w9", json!({"team": "eng"})).await;
    let token = s.mint_token("app", "alice", 600).await;
    let mut c = Client::connect(&s, &token).await;

    let (status, found) = c.query("tr-worker", json!({"query_string": ENG, "type": "live_query"})).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(keys(&found), ["workers-eu/w1", "workers-us/w9"]);
    let qid = found["query_id"].as_str().expect("a query id").to_owned();
    let start = found["last_event_id"].as_u64().expect("an event id");

    // Written between the query and its subscription: replayed.
    let missed = put_item(&s, "workers-eu", "w2", json!({"team": "eng", "n": 1})).await;
    let notes = c.poke("establish", &qid, "tr-worker", ENG, json!(start)).await;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0]["event_type"], "live_query_item_updated");
    assert_eq!(notes[0]["strictly_ordered"], true);
    assert_eq!(
        notes[0]["event"],
        json!({"query_id": qid, "item_key": "workers-eu/w2", "item_data": {"team": "eng", "n": 1},
               "item_revision": missed, "last_event_id": missed, "id": missed,
               "date_created": notes[0]["event"]["date_created"]})
    );
    assert_eq!(notes[1]["event_type"], "subscription_established");
    assert_eq!(notes[1]["correlation_id"], 42);
    assert_eq!(
        (&notes[1]["event"]["object_sid"], &notes[1]["event"]["object_type"], &notes[1]["event"]["last_event_id"]),
        (&json!(qid), &json!("live_query"), &json!(missed))
    );

    // Live: enter, change, a write outside the results, leave by change, leave by removal.
    let entered = put_item(&s, "workers-us", "w3", json!({"team": "eng"})).await;
    let changed = put_item(&s, "workers-eu", "w2", json!({"team": "eng", "n": 2})).await;
    put_item(&s, "workers-us", "w4", json!({"team": "ops"})).await;
    let left = put_item(&s, "workers-eu", "w1", json!({"team": "ops"})).await;
    s.delete("/services/app/maps/workers-us/items/w3").await.ok();
    let removed = head(&s).await;
    let pushed = c.next(4).await;
    assert_eq!(
        summary(&pushed),
        [
            ("live_query_item_updated".into(), json!("workers-us/w3"), json!({"team": "eng"})),
            ("live_query_item_updated".into(), json!("workers-eu/w2"), json!({"team": "eng", "n": 2})),
            ("live_query_item_removed".into(), json!("workers-eu/w1"), Value::Null),
            ("live_query_item_removed".into(), json!("workers-us/w3"), Value::Null),
        ]
    );
    let ids: Vec<&Value> = pushed.iter().map(|n| &n["event"]["last_event_id"]).collect();
    assert_eq!(ids, [&json!(entered), &json!(changed), &json!(left), &json!(removed)]);
    assert!(
        pushed.iter().all(|n| n["event"]["query_id"] == json!(qid) && n["event"]["item_revision"] == n["event"]["id"])
    );

    // A Map of the index goes: its items leave, so the whole result set comes again.
    s.delete("/services/app/maps/workers-us").await.ok();
    let gone = head(&s).await;
    let snapshot = c.next(1).await;
    assert_eq!(snapshot[0]["event_type"], "live_query_updated", "{snapshot:?}");
    assert_eq!(snapshot[0]["event"]["query_id"], json!(qid));
    assert_eq!(
        snapshot[0]["event"]["items"],
        json!([{"key": "workers-eu/w2", "data": {"team": "eng", "n": 2}, "revision": gone}])
    );
    assert_eq!(snapshot[0]["event"]["last_event_id"], json!(gone));
    let after = put_item(&s, "workers-eu", "w5", json!({"team": "eng"})).await;
    let pushed = c.next(1).await;
    assert_eq!(summary(&pushed), [("live_query_item_updated".into(), json!("workers-eu/w5"), json!({"team": "eng"}))]);
    assert_eq!(pushed[0]["event"]["last_event_id"], json!(after));

    // Another connection (a reconnect) resumes from the last event id it saw: it gets only what
    // came after, in order.
    let mut again = Client::connect(&s, &token).await;
    let notes = again.poke("establish", &qid, "tr-worker", ENG, json!(changed)).await;
    let replayed: Vec<&str> = notes.iter().map(|n| n["event_type"].as_str().unwrap_or_default()).collect();
    assert_eq!(
        replayed,
        ["live_query_item_removed", "live_query_item_removed", "live_query_updated", "subscription_established"],
        "{notes:?}"
    );
    assert_eq!(notes[0]["event"]["last_event_id"], json!(left));
    // The Map's removal is answered with the results as they are now, which hold what came
    // after it: the replay goes on from there.
    assert_eq!(keys(&notes[2]["event"]), ["workers-eu/w2", "workers-eu/w5"]);
    assert_eq!(notes[2]["event"]["last_event_id"], json!(after));
    assert_eq!(notes[3]["event"]["last_event_id"], json!(after));
    // Both connections hold the query id; each still gets pushes.
    let later = put_item(&s, "workers-eu", "w6", json!({"team": "eng"})).await;
    for client in [&mut c, &mut again] {
        let pushed = client.next(1).await;
        assert_eq!(
            (&pushed[0]["event"]["item_key"], &pushed[0]["event"]["id"]),
            (&json!("workers-eu/w6"), &json!(later))
        );
    }

    // Canceled: nothing more for it (a document's event shows what comes next).
    let notes = again.poke("cancel", &qid, "tr-worker", ENG, Value::Null).await;
    assert_eq!(notes[0]["event_type"], "subscription_canceled", "{notes:?}");
    let doc = s.post("/services/app/documents", json!({"unique_name": "marker"})).await.ok();
    let poke = json!({"action": "establish", "correlation_id": 7, "requests": [
        {"object_sid": doc["sid"], "object_type": "document", "last_event_id": null}]});
    again.cds("POST", "/twilio/cds/v4/Subscriptions", json!({}), Some(poke)).await;
    again.until(|n| n.iter().any(|e| e["event_type"] == "subscription_established")).await;
    again.notes.clear();
    put_item(&s, "workers-eu", "w7", json!({"team": "eng"})).await;
    s.put("/services/app/documents/marker", json!({"data": {"v": 1}})).await.ok();
    let next = again.next(1).await;
    assert_eq!(next[0]["event_type"], "document_updated", "{next:?}");
    // The first connection still has it.
    assert_eq!(c.next(1).await[0]["event"]["item_key"], "workers-eu/w7");
}

#[tokio::test]
async fn live_query_subscriptions_fail_in_twilio_shape_and_old_positions_get_the_results() {
    let Some(s) = TestServer::with(Default::default(), |cfg| cfg.limits.retention_secs = 0).await else { return };
    setup(&s).await;
    put_item(&s, "people", "p1", json!({"team": "eng"})).await;
    put_item(&s, "people", "p2", json!({"team": "ops"})).await;
    let token = s.mint_token("app", "alice", 600).await;
    let mut c = Client::connect(&s, &token).await;
    let (_, found) = c.query("people", json!({"query_string": ENG, "type": "live_query"})).await;
    let qid = found["query_id"].as_str().expect("a query id").to_owned();

    let notes = c.poke("establish", &qid, "nope", ENG, json!(1)).await;
    assert_eq!(notes[0]["event_type"], "subscription_failed", "{notes:?}");
    assert_eq!(
        (&notes[0]["event"]["error"]["status"], &notes[0]["event"]["error"]["code"]),
        (&json!(404), &json!(20404))
    );
    let notes = c.poke("establish", &qid, "people", "data.team ==", json!(1)).await;
    assert_eq!(notes[0]["event"]["error"]["code"], 54507, "{notes:?}");
    let notes = c.poke("establish", "not-a-query-id", "people", ENG, json!(1)).await;
    assert_eq!(notes[0]["event"]["error"]["status"], 400, "{notes:?}");

    // Older than the log keeps: the results as they are now, then pushes from there.
    put_item(&s, "people", "p2", json!({"team": "eng"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(s.engine.prune_log().await.expect("pruned") > 0);
    let notes = c.poke("establish", &qid, "people", ENG, json!(1)).await;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0]["event_type"], "live_query_updated");
    let items = notes[0]["event"]["items"].as_array().expect("items");
    assert_eq!(items.iter().map(|i| i["key"].as_str().unwrap_or_default()).collect::<Vec<_>>(), ["p1", "p2"]);
    assert_eq!(notes[1]["event_type"], "subscription_established");
    assert_eq!(notes[1]["event"]["last_event_id"], notes[0]["event"]["last_event_id"]);
    let next = put_item(&s, "people", "p3", json!({"team": "eng"})).await;
    let pushed = c.next(1).await;
    assert_eq!((&pushed[0]["event"]["item_key"], &pushed[0]["event"]["id"]), (&json!("p3"), &json!(next)));
}
