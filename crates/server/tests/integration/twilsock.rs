//! The twilsock v3 face driven as a raw client: framing, `init` accepted and refused, tunnelled
//! CDS calls, subscriptions with pushes from the native REST API, resuming from a last event
//! id, and malformed frames.

use super::common::{FRAME_TIMEOUT, TestServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws = super::common::Ws;

/// A twilsock frame as the SDK writes them.
pub(super) fn frame(header: &Value, payload: &str) -> Vec<u8> {
    let mut header = header.clone();
    header["payload_size"] = json!(payload.len());
    let header = header.to_string();
    format!("TWILSOCK V3.0 {}\r\n{header}\r\n{payload}", header.len()).into_bytes()
}

/// Splits a server frame into its header and payload (JSON, or `Null` when empty).
pub(super) fn unframe(bytes: &[u8]) -> (Value, Value) {
    let text = std::str::from_utf8(bytes).expect("frames are UTF-8 here");
    let rest = text.strip_prefix("TWILSOCK V3.0 ").expect("the magic");
    let (len, rest) = rest.split_once("\r\n").expect("the length line");
    let len: usize = len.parse().expect("a decimal length");
    let header: Value = serde_json::from_str(&rest[..len]).expect("a JSON header");
    let payload = rest[len..].strip_prefix("\r\n").expect("the separator");
    assert_eq!(header["payload_size"], json!(payload.len()), "payload_size is exact");
    let payload = if payload.is_empty() { Value::Null } else { serde_json::from_str(payload).expect("JSON payload") };
    (header, payload)
}

struct Client {
    ws: Ws,
    host: String,
    next: u64,
}

impl Client {
    async fn connect(s: &TestServer) -> Self {
        let url = format!("ws://{}/twilio/twilsock/v3/wsconnect", s.server.addr);
        let (ws, _) = tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("the handshake within the timeout")
            .expect("the handshake succeeds");
        Client { ws, host: s.server.addr.to_string(), next: 1 }
    }

    fn id(&mut self) -> String {
        self.next += 1;
        format!("TM{:032x}", self.next)
    }

    async fn send(&mut self, header: Value, payload: &str) {
        self.ws.send(Message::binary(frame(&header, payload))).await.expect("sent");
    }

    /// The next frame (header, payload); `None` when the socket ends.
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

    /// Sends `init` and returns the reply's header.
    async fn init(&mut self, token: &str) -> Value {
        let id = self.id();
        let registrations = json!([{"product": "data_sync", "type": "ers", "notification_protocol_version": 0,
            "message_types": ["twilio.sync.event", "com.twilio.rtd.cds.document"]}]);
        let header = json!({"id": id, "method": "init", "token": token, "continuation_token": null,
            "capabilities": ["client_update", "offline_storage", "telemetry.v1"], "registrations": registrations});
        self.send(header, "").await;
        let (reply, _) = self.recv().await.expect("an init reply");
        assert_eq!((&reply["method"], &reply["id"]), (&json!("reply"), &json!(id)), "{reply}");
        reply
    }

    /// A tunnelled CDS request; returns (http status, body) and collects notifications that
    /// arrive before the reply.
    async fn cds(&mut self, method: &str, path: &str, body: Option<Value>, notes: &mut Vec<Value>) -> (u16, Value) {
        self.cds_with(method, path, body, json!({}), notes).await
    }

    async fn cds_with(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: Value,
        notes: &mut Vec<Value>,
    ) -> (u16, Value) {
        let id = self.id();
        let mut http_headers = json!({"Content-Type": "application/json"});
        for (k, v) in headers.as_object().expect("headers") {
            http_headers[k] = v.clone();
        }
        let header = json!({"id": id, "method": "message", "active_grant": "data_sync",
            "payload_type": "application/json",
            "http_request": {"host": self.host, "path": path, "method": method, "params": {}, "headers": http_headers}});
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        self.send(header, &payload).await;
        loop {
            let (h, p) = self.recv().await.expect("a reply before the socket ends");
            match h["method"].as_str() {
                Some("reply") if h["id"] == json!(id) => {
                    assert_eq!(h["status"]["code"], 200, "transport status: {h}");
                    return (h["http_status"]["code"].as_u64().expect("http status") as u16, p);
                }
                Some("notification") => notes.push(p),
                _ => panic!("unexpected frame while waiting for {id}: {h} {p}"),
            }
        }
    }

    /// Notifications until `n` of them satisfy `done`, or panics at the timeout.
    async fn notifications_until(&mut self, notes: &mut Vec<Value>, done: impl Fn(&[Value]) -> bool) {
        while !done(notes) {
            let (h, p) = self.recv().await.expect("the socket stays open");
            assert_eq!(h["method"], "notification", "{h} {p}");
            assert!(h["id"].as_str().is_some_and(|id| id.starts_with("TM")), "{h}");
            notes.push(p);
        }
    }
}

fn of_type<'a>(notes: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    notes.iter().filter(|n| n["event_type"] == event_type).collect()
}

#[tokio::test]
async fn init_accepts_an_access_token_and_refuses_bad_ones() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let token = s.mint_token("app", "alice", 600).await;
    let mut ok = Client::connect(&s).await;
    let reply = ok.init(&token).await;
    assert_eq!(reply["status"]["code"], 200, "{reply}");
    assert!(reply["continuation_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(reply["offline_storage"]["data_sync"]["storage_id"].is_string());
    assert_eq!(reply["capabilities"], json!(["client_update", "offline_storage", "telemetry.v1"]));
    assert_eq!(reply["init_registrations"][0]["product"], "data_sync");

    let mut bad = Client::connect(&s).await;
    let reply = bad.init("not-a-token").await;
    assert_eq!((&reply["status"]["code"], &reply["status"]["errorCode"]), (&json!(401), &json!(20101)), "{reply}");
    assert!(bad.recv().await.is_none(), "the socket closes after a refused init");

    // Expired tokens carry 20104, which the SDK reports as tokenExpired.
    let key = s.post("/keys", json!({})).await.ok();
    let account = ferrosync_core::Sid::parse(&s.account_sid).expect("the account SID");
    let key_sid = ferrosync_core::Sid::parse(key["sid"].as_str().expect("sid")).expect("a key sid");
    let svc = s.engine.resolve_service_ref("app").await.expect("the service").sid;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let secret = key["secret"].as_str().expect("secret");
    let expired = ferrosync_core::auth::mint_access_token(&account, &key_sid, secret, "alice", &svc, 60, now - 120)
        .expect("minted");
    let mut late = Client::connect(&s).await;
    let reply = late.init(&expired).await;
    assert_eq!((&reply["status"]["code"], &reply["status"]["errorCode"]), (&json!(401), &json!(20104)), "{reply}");

    // A ping before `init` is answered, and a request that is not an upgrade gets Twilio's 400.
    let mut pinged = Client::connect(&s).await;
    pinged.ws.send(Message::Ping(b"twilsock?".to_vec().into())).await.unwrap();
    let pong = tokio::time::timeout(FRAME_TIMEOUT, pinged.ws.next()).await.expect("a pong in time");
    assert!(matches!(pong, Some(Ok(Message::Pong(ref p))) if &p[..] == b"twilsock?"), "{pong:?}");
    assert_eq!(pinged.init(&token).await["status"]["code"], 200);
    let plain = s.http.get(format!("http://{}/twilio/twilsock/v3/wsconnect", s.server.addr)).send().await.unwrap();
    assert_eq!(plain.status(), 400);
    let body: Value = plain.json().await.unwrap();
    assert_eq!((&body["code"], &body["status"]), (&json!(20001), &json!(400)), "{body}");
    assert!(body["message"].as_str().unwrap().contains("Upgrade"), "{body}");
}

#[tokio::test]
async fn documents_open_create_update_and_push_through_the_tunnel() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let token = s.mint_token("app", "alice", 600).await;
    let mut c = Client::connect(&s).await;
    assert_eq!(c.init(&token).await["status"]["code"], 200);
    let mut notes = Vec::new();

    // open_or_create as the SDK does it: GET, 404, POST.
    let (status, body) = c.cds("GET", "/twilio/cds/v3/Documents/MyDoc", None, &mut notes).await;
    assert_eq!((status, &body["code"], &body["status"]), (404, &json!(54100), &json!(404)), "{body}");
    assert!(body["more_info"].as_str().is_some_and(|m| m.ends_with("54100")));
    let create = json!({"unique_name": "MyDoc", "data": {"x": 1}});
    let (status, doc) = c.cds("POST", "/twilio/cds/v3/Documents", Some(create.clone()), &mut notes).await;
    assert_eq!(status, 201, "{doc}");
    let sid = doc["sid"].as_str().expect("sid").to_owned();
    assert_eq!((&doc["revision"], &doc["data"], &doc["unique_name"]), (&json!("0"), &json!({"x": 1}), &json!("MyDoc")));
    assert_eq!(doc["url"], json!(format!("http://{}/twilio/cds/v3/Documents/{sid}", s.server.addr)));
    let created_at = doc["last_event_id"].as_u64().expect("an event id");
    let (status, body) = c.cds("POST", "/twilio/cds/v3/Documents", Some(create), &mut notes).await;
    assert_eq!((status, &body["code"]), (409, &json!(54301)));

    // Subscribe from the position the descriptor gave.
    let poke = json!({"event_protocol_version": 4, "action": "establish", "correlation_id": 17, "retried_requests": 0,
        "ttl_in_s": -1, "requests": [{"object_sid": sid, "object_type": "document", "last_event_id": created_at}]});
    let (status, ack) = c.cds("POST", "/twilio/cds/v4/Subscriptions", Some(poke), &mut notes).await;
    assert_eq!(status, 200);
    assert!(ack["estimated_delivery_in_ms"].as_u64().is_some_and(|ms| ms > 0), "{ack}");
    c.notifications_until(&mut notes, |n| !of_type(n, "subscription_established").is_empty()).await;
    let established = of_type(&notes, "subscription_established")[0].clone();
    assert_eq!(established["correlation_id"], 17);
    assert_eq!(established["event"]["object_sid"], json!(sid));
    assert_eq!(established["event"]["replay_status"], "completed");
    assert_eq!(established["event"]["last_event_id"], json!(created_at));
    notes.clear();

    // An update with a stale If-Match is 412 / 54103; the right one succeeds.
    let (status, body) = c
        .cds_with(
            "POST",
            &format!("/twilio/cds/v3/Documents/{sid}"),
            Some(json!({"data": {"x": 9}})),
            json!({"If-Match": "5"}),
            &mut notes,
        )
        .await;
    assert_eq!((status, &body["code"]), (412, &json!(54103)), "{body}");
    let (status, updated) = c
        .cds_with(
            "POST",
            &format!("/twilio/cds/v3/Documents/{sid}"),
            Some(json!({"data": {"x": 2}})),
            json!({"If-Match": "0"}),
            &mut notes,
        )
        .await;
    assert_eq!((status, &updated["revision"]), (200, &json!("1")), "{updated}");
    let own = updated["last_event_id"].as_u64().expect("the write's event id");
    assert!(own > created_at);

    // A write through the native REST API is pushed; the client's own write is not echoed.
    let r = s.put("/services/app/documents/MyDoc", json!({"data": {"x": 3}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    c.notifications_until(&mut notes, |n| !n.is_empty()).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let pushed = notes[0].clone();
    assert_eq!(pushed["event_type"], "document_updated");
    assert_eq!(pushed["event"]["document_sid"], json!(sid));
    assert_eq!(pushed["event"]["document_data"], json!({"x": 3}));
    assert_eq!(pushed["event"]["document_revision"], "2");
    assert!(pushed["event"]["id"].as_u64().expect("id") > own);

    // GET answers the same descriptor with its position; DELETE (with the SDK's odd payload).
    let (status, fetched) = c.cds("GET", "/twilio/cds/v3/Documents/MyDoc", None, &mut notes).await;
    assert_eq!((status, &fetched["data"]), (200, &json!({"x": 3})));
    assert_eq!(fetched["last_event_id"], pushed["event"]["id"]);
    let id = c.id();
    let header = json!({"id": id, "method": "message", "active_grant": "data_sync", "payload_type": "application/json",
        "http_request": {"host": c.host, "path": format!("/twilio/cds/v3/Documents/{sid}"), "method": "DELETE", "params": {}, "headers": {}}});
    c.send(header, "\"data_sync\"").await;
    let (h, p) = c.recv().await.expect("a reply");
    assert_eq!((&h["id"], &h["http_status"]["code"]), (&json!(id), &json!(200)), "{h} {p}");
}

#[tokio::test]
async fn a_subscription_resumes_from_the_last_event_id_on_a_new_connection() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    s.post("/services/app/lists", json!({"unique_name": "todo"})).await.ok();
    let token = s.mint_token("app", "alice", 600).await;
    let mut notes = Vec::new();

    let mut first = Client::connect(&s).await;
    first.init(&token).await;
    let (_, list) = first.cds("GET", "/twilio/cds/v3/Lists/todo", None, &mut notes).await;
    let sid = list["sid"].as_str().expect("sid").to_owned();
    let seen = list["last_event_id"].as_u64().expect("position");
    assert!(list["links"]["items"].as_str().is_some_and(|u| u.ends_with(&format!("/v3/Lists/{sid}/Items"))));
    drop(first);

    // Away: three items are added through the native API.
    for i in 0..3 {
        let r = s.post("/services/app/lists/todo/items", json!({"data": {"i": i}})).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }

    let mut second = Client::connect(&s).await;
    second.init(&token).await;
    let poke = json!({"event_protocol_version": 4, "action": "establish", "correlation_id": 1,
        "requests": [{"object_sid": sid, "object_type": "list", "last_event_id": seen}]});
    second.cds("POST", "/twilio/cds/v4/Subscriptions", Some(poke), &mut notes).await;
    second.notifications_until(&mut notes, |n| !of_type(n, "subscription_established").is_empty()).await;
    let added = of_type(&notes, "list_item_added");
    assert_eq!(
        added.iter().map(|n| n["event"]["item_index"].clone()).collect::<Vec<_>>(),
        [json!(0), json!(1), json!(2)]
    );
    assert_eq!(added[2]["event"]["item_data"], json!({"i": 2}));
    let ids: Vec<u64> = added.iter().map(|n| n["event"]["id"].as_u64().expect("id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "increasing ids {ids:?}");
    let established = of_type(&notes, "subscription_established")[0];
    assert_eq!(established["event"]["last_event_id"], json!(ids[2]));
    assert!(of_type(&notes, "list_item_added").iter().all(|n| n["event"]["item_url"].is_string()));

    // Then live: a fourth item arrives as a push, once.
    notes.clear();
    s.post("/services/app/lists/todo/items", json!({"data": {"i": 3}})).await.ok();
    second.notifications_until(&mut notes, |n| !n.is_empty()).await;
    assert_eq!(notes[0]["event_type"], "list_item_added");
    assert_eq!(notes[0]["event"]["item_index"], 3);

    // Paging through the tunnel (query parameters travel in `params`): meta tells what lies
    // before and after the page.
    let id = second.id();
    let header = json!({"id": id, "method": "message", "active_grant": "data_sync", "payload_type": "application/json",
        "http_request": {"host": second.host, "path": format!("/twilio/cds/v3/Lists/{sid}/Items"), "method": "GET",
            "params": {"HideExpired": "true", "From": "1", "PageSize": "2", "Order": "asc"}, "headers": {}}});
    second.send(header, "").await;
    let (h, page) = second.recv().await.expect("a reply");
    assert_eq!(h["http_status"]["code"], 200, "{page}");
    assert_eq!(
        page["items"].as_array().expect("items").iter().map(|i| i["index"].clone()).collect::<Vec<_>>(),
        [json!(1), json!(2)]
    );
    assert!(page["meta"]["previous_token"].is_string() && page["meta"]["next_token"].is_string(), "{page}");
}

#[tokio::test]
async fn malformed_frames_are_answered_with_a_close_not_a_crash() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let token = s.mint_token("app", "alice", 600).await;
    let cases: [&[u8]; 5] = [
        b"HELLO",
        b"TWILSOCK V3.0 999\r\n{}",
        b"TWILSOCK V3.0 2\r\n{}\r\n",
        b"TWILSOCK V3.0 x\r\n",
        &[0x54, 0x57, 0xff, 0xfe],
    ];
    for bytes in cases {
        let mut c = Client::connect(&s).await;
        c.init(&token).await;
        c.ws.send(Message::binary(bytes.to_vec())).await.expect("sent");
        let (h, _) = c.recv().await.expect("a close frame");
        assert_eq!((&h["method"], &h["status"]["code"]), (&json!("close"), &json!(406)), "{h}");
        assert!(c.recv().await.is_none(), "then the socket ends");
    }
    // An unknown method with an id gets an error reply, and the connection stays usable.
    let mut c = Client::connect(&s).await;
    c.init(&token).await;
    c.send(json!({"id": "TM1", "method": "frobnicate"}), "").await;
    let (h, _) = c.recv().await.expect("a reply");
    assert_eq!((&h["id"], &h["status"]["code"]), (&json!("TM1"), &json!(400)));
    let mut notes = Vec::new();
    let (status, body) = c.cds("GET", "/twilio/cds/v3/Nothing", None, &mut notes).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) =
        c.cds("POST", "/twilio/cds/v3/Documents", Some(json!({"data": "not an object"})), &mut notes).await;
    assert_eq!(status, 400);
    // The server is still serving.
    assert_eq!(s.get("/services/app").await.status, 200);
}

#[tokio::test]
async fn a_draining_server_tells_clients_to_reconnect_elsewhere() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    let token = s.mint_token("app", "alice", 600).await;
    let mut c = Client::connect(&s).await;
    c.init(&token).await;
    s.server.state.shutdown.cancel();
    // 308 ("offloaded"): the SDK reconnects and resumes from its last event ids.
    let (h, _) = c.recv().await.expect("a close frame");
    assert_eq!((&h["method"], &h["status"]["code"]), (&json!("close"), &json!(308)), "{h}");
    assert!(c.recv().await.is_none());
}

#[tokio::test]
async fn a_last_event_id_older_than_the_retained_log_gets_the_document_as_it_is_now() {
    let Some(s) = TestServer::with(Default::default(), |cfg| cfg.limits.retention_secs = 0).await else { return };
    s.service("app").await;
    s.post("/services/app/documents", json!({"unique_name": "old", "data": {"v": 0}})).await.ok();
    s.post("/services/app/lists", json!({"unique_name": "old-list"})).await.ok();
    for v in 1..=3 {
        s.put("/services/app/documents/old", json!({"data": {"v": v}})).await.ok();
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(s.engine.prune_log().await.expect("pruned") > 0);
    let token = s.mint_token("app", "alice", 600).await;
    let mut c = Client::connect(&s).await;
    c.init(&token).await;
    let mut notes = Vec::new();
    let (_, doc) = c.cds("GET", "/twilio/cds/v3/Documents/old", None, &mut notes).await;
    let (_, list) = c.cds("GET", "/twilio/cds/v3/Lists/old-list", None, &mut notes).await;
    let poke = json!({"action": "establish", "correlation_id": 5, "requests": [
        {"object_sid": doc["sid"], "object_type": "document", "last_event_id": 1},
        {"object_sid": list["sid"], "object_type": "list", "last_event_id": 1}]});
    c.cds("POST", "/twilio/cds/v4/Subscriptions", Some(poke), &mut notes).await;
    c.notifications_until(&mut notes, |n| n.len() >= 3).await;
    assert_eq!(notes[0]["event_type"], "document_updated", "{notes:?}");
    assert_eq!(notes[0]["event"]["document_data"], json!({"v": 3}));
    assert_eq!(notes[0]["event"]["document_revision"], "3");
    assert_eq!(notes[1]["event_type"], "subscription_established");
    assert_eq!(notes[1]["event"]["last_event_id"], notes[0]["event"]["id"]);
    // A list's missed items cannot be rebuilt from its state: the subscription fails, saying so.
    assert_eq!(notes[2]["event_type"], "subscription_failed", "{:?}", notes[2]);
    assert!(notes[2]["event"]["error"]["message"].as_str().is_some_and(|m| m.contains("retention")), "{:?}", notes[2]);
}

#[tokio::test]
async fn a_connection_holds_at_most_max_subscriptions() {
    let settings = super::common::Settings { max_subscriptions: 2, ..Default::default() };
    let Some(s) = TestServer::with_settings(settings).await else { return };
    s.service("capped").await;
    let mut sids = Vec::new();
    for name in ["a", "b", "c"] {
        let doc = s.post("/services/capped/documents", json!({"unique_name": name})).await.ok();
        sids.push(doc["sid"].as_str().expect("sid").to_owned());
    }
    let token = s.mint_token("capped", "alice", 600).await;
    let mut client = Client::connect(&s).await;
    client.init(&token).await;
    let mut notes = Vec::new();
    let requests: Vec<Value> =
        sids.iter().map(|sid| json!({"object_sid": sid, "object_type": "document", "last_event_id": null})).collect();
    let poke = json!({"event_protocol_version": 4, "action": "establish", "correlation_id": 7, "requests": requests});
    client.cds("POST", "/twilio/cds/v4/Subscriptions", Some(poke), &mut notes).await;
    client
        .notifications_until(&mut notes, |n| {
            of_type(n, "subscription_established").len() + of_type(n, "subscription_failed").len() == 3
        })
        .await;
    let established: Vec<&Value> =
        of_type(&notes, "subscription_established").iter().map(|n| &n["event"]["object_sid"]).collect();
    assert_eq!(established, [&json!(sids[0]), &json!(sids[1])]);
    let failed = of_type(&notes, "subscription_failed");
    assert_eq!(failed.len(), 1, "{notes:?}");
    assert_eq!(failed[0]["event"]["object_sid"], json!(sids[2]));
    assert_eq!(failed[0]["event"]["error"]["code"], 54419, "{}", failed[0]);

    // The refused object really is not subscribed: a change to it is not pushed, one to a
    // subscribed object is.
    notes.clear();
    s.put("/services/capped/documents/c", json!({"data": {"n": 1}})).await.ok();
    s.put("/services/capped/documents/a", json!({"data": {"n": 2}})).await.ok();
    client.notifications_until(&mut notes, |n| !n.is_empty()).await;
    assert_eq!(notes[0]["event"]["document_sid"], json!(sids[0]), "{}", notes[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnelled_requests_sent_without_waiting_keep_each_objects_order_and_echo_nothing() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    for name in ["Doc", "Other"] {
        assert_eq!(s.post("/services/app/documents", json!({"unique_name": name})).await.status, 201);
    }
    let token = s.mint_token("app", "alice", 600).await;
    let mut c = Client::connect(&s).await;
    c.init(&token).await;
    let mut notes = Vec::new();
    let mut sids = Vec::new();
    for name in ["Doc", "Other"] {
        let (_, doc) = c.cds("GET", &format!("/twilio/cds/v3/Documents/{name}"), None, &mut notes).await;
        sids.push(doc["sid"].as_str().expect("sid").to_owned());
    }
    let requests: Vec<Value> = sids.iter().map(|sid| json!({"object_sid": sid, "object_type": "document"})).collect();
    let poke = json!({"event_protocol_version": 4, "action": "establish", "correlation_id": 1, "requests": requests});
    c.cds("POST", "/twilio/cds/v4/Subscriptions", Some(poke), &mut notes).await;
    c.notifications_until(&mut notes, |n| of_type(n, "subscription_established").len() == 2).await;
    notes.clear();

    // Twenty conditional updates of one document leave before any reply is read, each followed
    // by a read of it; each update expects the revision the one before it makes, and each read
    // the revision of the update just before it: a read answered from the store as soon as
    // it arrives would overtake the commits, so only the document's lane keeps them in order.
    const WRITES: u64 = 20;
    let mut waiting = std::collections::HashMap::new();
    let path = format!("/twilio/cds/v3/Documents/{}", sids[0]);
    for n in 0..WRITES {
        let id = c.id();
        let header = json!({"id": id, "method": "message", "active_grant": "data_sync", "payload_type": "application/json",
            "http_request": {"host": c.host, "path": path, "method": "POST",
                "params": {}, "headers": {"Content-Type": "application/json", "If-Match": n.to_string()}}});
        c.send(header, &json!({"data": {"n": n + 1}}).to_string()).await;
        waiting.insert(id, n + 1);
        let id = c.id();
        let header = json!({"id": id, "method": "message", "active_grant": "data_sync", "payload_type": "application/json",
            "http_request": {"host": c.host, "path": path, "method": "GET", "params": {}, "headers": {}}});
        c.send(header, "").await;
        waiting.insert(id, n + 1);
    }
    // Someone else writes the other document meanwhile: that is news to this client.
    let r = s.put("/services/app/documents/Other", json!({"data": {"by": "bob"}})).await;
    assert_eq!(r.status, 200, "{}", r.text);

    while !waiting.is_empty() || notes.is_empty() {
        let (h, p) = c.recv().await.expect("the socket stays open");
        match h["method"].as_str() {
            Some("reply") => {
                let id = h["id"].as_str().expect("reply id");
                let revision = waiting.remove(id).unwrap_or_else(|| panic!("one reply per request: {h}"));
                assert_eq!(
                    (&h["http_status"]["code"], &p["revision"], &p["data"]),
                    (&json!(200), &json!(revision.to_string()), &json!({"n": revision})),
                    "{h} {p}"
                );
            }
            Some("notification") => notes.push(p),
            _ => panic!("unexpected frame {h} {p}"),
        }
    }
    assert_eq!(notes.len(), 1, "the client's own writes are not echoed: {notes:?}");
    assert_eq!(
        (&notes[0]["event"]["document_sid"], &notes[0]["event"]["document_data"]),
        (&json!(sids[1]), &json!({"by": "bob"}))
    );

    // The subscription to the written document is live: a write by someone else arrives.
    let r = s.put("/services/app/documents/Doc", json!({"data": {"by": "bob"}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    c.notifications_until(&mut notes, |n| n.len() == 2).await;
    assert_eq!(
        (&notes[1]["event"]["document_sid"], &notes[1]["event"]["document_revision"]),
        (&json!(sids[0]), &json!((WRITES + 1).to_string()))
    );
}

/// A subscription asked for while the client's own writes to the object are still in flight
/// replays from before them: the writes are answered first, and their events are left out of
/// the replay (the SDK applied them already and would report them as another client's), while
/// another client's write after them is pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_asked_for_behind_the_clients_own_writes_leaves_their_echoes_out() {
    let Some(s) = TestServer::start().await else { return };
    s.service("app").await;
    assert_eq!(s.post("/services/app/documents", json!({"unique_name": "Doc"})).await.status, 201);
    let token = s.mint_token("app", "alice", 600).await;
    let mut c = Client::connect(&s).await;
    c.init(&token).await;
    let mut notes = Vec::new();
    let (_, doc) = c.cds("GET", "/twilio/cds/v3/Documents/Doc", None, &mut notes).await;
    let sid = doc["sid"].as_str().expect("sid").to_owned();
    let before = doc["last_event_id"].as_u64().expect("an event id");

    // The writes leave, and right behind them the subscription from before them; no reply is
    // read before all are sent.
    const WRITES: u64 = 10;
    let mut waiting = std::collections::HashSet::new();
    let path = format!("/twilio/cds/v3/Documents/{sid}");
    for n in 0..WRITES {
        let id = c.id();
        let header = json!({"id": id, "method": "message", "active_grant": "data_sync", "payload_type": "application/json",
            "http_request": {"host": c.host, "path": path, "method": "POST", "params": {}, "headers": {"Content-Type": "application/json"}}});
        c.send(header, &json!({"data": {"n": n + 1}}).to_string()).await;
        waiting.insert(id);
    }
    let poke = json!({"event_protocol_version": 4, "action": "establish", "correlation_id": 3,
        "requests": [{"object_sid": sid, "object_type": "document", "last_event_id": before}]});
    let id = c.id();
    let header = json!({"id": id, "method": "message", "active_grant": "data_sync", "payload_type": "application/json",
        "http_request": {"host": c.host, "path": "/twilio/cds/v4/Subscriptions", "method": "POST", "params": {},
            "headers": {"Content-Type": "application/json"}}});
    c.send(header, &poke.to_string()).await;
    waiting.insert(id);

    while !waiting.is_empty() || of_type(&notes, "subscription_established").is_empty() {
        let (h, p) = c.recv().await.expect("the socket stays open");
        match h["method"].as_str() {
            Some("reply") => {
                let id = h["id"].as_str().expect("reply id");
                assert!(waiting.remove(id), "one reply per request: {h}");
                assert_eq!(h["http_status"]["code"], json!(200), "{h} {p}");
            }
            Some("notification") => notes.push(p),
            _ => panic!("unexpected frame {h} {p}"),
        }
    }
    let established = of_type(&notes, "subscription_established")[0].clone();
    assert_eq!(established["event"]["replay_status"], "completed", "{established}");
    assert!(
        established["event"]["last_event_id"].as_u64().is_some_and(|at| at >= before + WRITES),
        "the writes sent before the subscription were answered before its replay, which went past them: {established}"
    );
    let echoes: Vec<&Value> = notes.iter().filter(|n| n["event"]["document_sid"] == json!(sid)).collect();
    assert!(echoes.is_empty(), "the client's own writes are not replayed to it: {echoes:?}");

    let r = s.put("/services/app/documents/Doc", json!({"data": {"by": "bob"}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    c.notifications_until(&mut notes, |n| n.iter().any(|n| n["event"]["document_data"] == json!({"by": "bob"}))).await;
    let pushed: Vec<&Value> = notes.iter().filter(|n| n["event"]["document_sid"] == json!(sid)).collect();
    assert_eq!(pushed.len(), 1, "only another client's write is pushed: {pushed:?}");
}
