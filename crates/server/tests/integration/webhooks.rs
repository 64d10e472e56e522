//! Service webhooks end to end: a real HTTP receiver on 127.0.0.1 gets Twilio's parameters,
//! signed; REST-made changes only when asked for; every identity's change; in order; retried
//! until acknowledged; resumed after a restart; delivered once by a cluster.

use super::common::{Settings, TestServer, eventually};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use ferrosync_server::logfeed::{LeaseSettings, RetryPolicy};
use ferrosync_server::webhooks::WebhookSettings;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Quick retries and re-checks, so the suite does not wait on production timings.
fn fast() -> Settings {
    Settings {
        webhooks: WebhookSettings {
            retry: RetryPolicy {
                first_retry: Duration::from_millis(100),
                max_retry: Duration::from_millis(400),
                ..Default::default()
            },
            ..Default::default()
        },
        leases: LeaseSettings { recheck: Duration::from_millis(100), lease: Duration::from_secs(3) },
        ..Default::default()
    }
}

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Hit {
    params: BTreeMap<String, String>,
    signature: Option<String>,
    url: String,
    status: u16,
}

#[derive(Default)]
struct Log {
    hits: Vec<Hit>,
    /// Statuses to answer next, in order; 200 when empty (unless `failing`).
    plan: VecDeque<u16>,
    failing: bool,
    /// How long each answer waits after its request is recorded.
    hold: Duration,
}

/// A webhook receiver on 127.0.0.1:0 that records every request.
struct Receiver {
    url: String,
    log: Arc<Mutex<Log>>,
    _stop: tokio_util::sync::DropGuard,
}

impl Receiver {
    async fn start() -> Receiver {
        let log = Arc::new(Mutex::new(Log::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/hooks", axum::routing::post(record)).with_state(log.clone());
        let stop = tokio_util::sync::CancellationToken::new();
        let signal = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(async move { signal.cancelled().await }).await.unwrap();
        });
        // A query string too: the signature covers the whole URL.
        Receiver { url: format!("http://{addr}/hooks?tenant=t1"), log, _stop: stop.drop_guard() }
    }

    fn hits(&self) -> Vec<Hit> {
        self.log.lock().unwrap().hits.clone()
    }

    /// The acknowledged requests' parameters, in arrival order.
    fn acked(&self) -> Vec<BTreeMap<String, String>> {
        self.hits().into_iter().filter(|h| h.status == 200).map(|h| h.params).collect()
    }

    async fn wait_acked(&self, n: usize) -> Vec<BTreeMap<String, String>> {
        eventually(&format!("{n} webhooks acknowledged"), WAIT, || async { self.acked().len() >= n }).await;
        self.acked()
    }

    fn answer(&self, statuses: &[u16]) {
        self.log.lock().unwrap().plan.extend(statuses);
    }

    fn fail_all(&self, failing: bool) {
        self.log.lock().unwrap().failing = failing;
    }

    fn hold_answers(&self, hold: Duration) {
        self.log.lock().unwrap().hold = hold;
    }
}

async fn record(
    State(log): State<Arc<Mutex<Log>>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let params = form_urlencoded::parse(&body).into_owned().collect();
    let signature = headers.get("x-twilio-signature").map(|v| v.to_str().unwrap().to_owned());
    let (status, hold) = {
        let mut log = log.lock().unwrap();
        let status = match log.plan.pop_front() {
            Some(s) => s,
            None if log.failing => 500,
            None => 200,
        };
        let url = format!("http://{}{uri}", headers["host"].to_str().unwrap());
        log.hits.push(Hit { params, signature, url, status });
        (status, log.hold)
    };
    tokio::time::sleep(hold).await;
    StatusCode::from_u16(status).unwrap()
}

/// Twilio's signature, computed here independently of the server's code: base64 of
/// HMAC-SHA1(AuthToken, URL followed by each parameter's name and value, sorted by name).
fn expected_signature(auth_token: &str, url: &str, params: &BTreeMap<String, String>) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).unwrap();
    let mut signed = url.to_owned();
    for (k, v) in params {
        signed.push_str(k);
        signed.push_str(v);
    }
    mac.update(signed.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A service (made on the Twilio face) whose webhooks go to `receiver`.
async fn service_with_webhook(s: &TestServer, name: &str, receiver: &Receiver, from_rest: bool) -> String {
    let from_rest = from_rest.to_string();
    let form =
        [("UniqueName", name), ("WebhookUrl", receiver.url.as_str()), ("WebhooksFromRestEnabled", from_rest.as_str())];
    let r = s.twilio_post("/Services", &form).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["sid"].as_str().unwrap().to_owned()
}

fn keys(p: &BTreeMap<String, String>) -> Vec<&str> {
    p.keys().map(String::as_str).collect()
}

#[tokio::test]
async fn events_carry_twilios_parameters_and_a_valid_signature() {
    let Some(s) = TestServer::with_settings(fast()).await else { return };
    let receiver = Receiver::start().await;
    let svc = service_with_webhook(&s, "hooked", &receiver, true).await;

    let docs = format!("/Services/{svc}/Documents");
    let doc = s.twilio_post(&docs, &[("UniqueName", "prefs"), ("Data", r#"{"a":1}"#)]).await.ok();
    s.twilio_post(&format!("/Services/{svc}/Documents/prefs"), &[("Data", r#"{"a":2}"#)]).await.ok();
    let list = s.twilio_post(&format!("/Services/{svc}/Lists"), &[("UniqueName", "todo")]).await.ok();
    s.twilio_post(&format!("/Services/{svc}/Lists/todo/Items"), &[("Data", r#"{"t":"milk"}"#)]).await.ok();
    let map = s.twilio_post(&format!("/Services/{svc}/Maps"), &[("UniqueName", "scores")]).await.ok();
    s.twilio_post(&format!("/Services/{svc}/Maps/scores/Items"), &[("Key", "bob/1"), ("Data", r#"{"p":3}"#)])
        .await
        .ok();
    let stream = s.twilio_post(&format!("/Services/{svc}/Streams"), &[("UniqueName", "chat")]).await.ok();
    let message =
        s.twilio_post(&format!("/Services/{svc}/Streams/chat/Messages"), &[("Data", r#"{"m":"hi"}"#)]).await.ok();

    let got = receiver.wait_acked(8).await;
    let types: Vec<&str> = got.iter().map(|p| p["EventType"].as_str()).collect();
    assert_eq!(
        types,
        [
            "document_created",
            "document_updated",
            "list_created",
            "list_item_added",
            "map_created",
            "map_item_added",
            "stream_created",
            "stream_message_published"
        ],
        "every change, in order"
    );
    for p in &got {
        assert_eq!((&p["AccountSid"], &p["ServiceSid"], &p["Identity"]), (&s.account_sid, &svc, &"system".to_owned()));
        assert!(p["DateCreated"].ends_with('Z') && p["DateCreated"].len() == 20, "{p:?}");
        assert!(!p.contains_key("EndpointId"), "REST-made changes have no endpoint");
    }
    for hit in receiver.hits() {
        assert_eq!(hit.url, receiver.url);
        let signature = hit.signature.as_deref().expect("every request is signed");
        assert_eq!(signature, expected_signature(&s.auth_token, &receiver.url, &hit.params), "{:?}", hit.params);
    }

    let common = ["AccountSid", "ServiceSid", "EventType", "Identity", "DateCreated"];
    let with = |extra: &[&'static str]| {
        let mut all: Vec<&str> = common.iter().chain(extra).copied().collect();
        all.sort_unstable();
        all
    };
    let updated = &got[1];
    assert_eq!(keys(updated), with(&["DocumentSid", "DocumentUniqueName", "DocumentRevision", "DocumentData"]));
    assert_eq!(
        (&updated["DocumentSid"], &updated["DocumentUniqueName"], &updated["DocumentRevision"]),
        (&doc["sid"].as_str().unwrap().to_owned(), &"prefs".to_owned(), &"1".to_owned())
    );
    assert_eq!(serde_json::from_str::<Value>(&updated["DocumentData"]).unwrap(), json!({"a": 2}));

    let item = &got[3];
    assert_eq!(keys(item), with(&["ListSid", "ListUniqueName", "ItemIndex", "ItemRevision", "ItemData", "EventId"]));
    assert_eq!((&item["ListSid"], &item["ItemIndex"]), (&list["sid"].as_str().unwrap().to_owned(), &"0".to_owned()));
    assert_eq!(serde_json::from_str::<Value>(&item["ItemData"]).unwrap(), json!({"t": "milk"}));

    let entry = &got[5];
    assert_eq!(keys(entry), with(&["MapSid", "MapUniqueName", "ItemKey", "ItemRevision", "ItemData", "EventId"]));
    assert_eq!((&entry["MapSid"], &entry["ItemKey"]), (&map["sid"].as_str().unwrap().to_owned(), &"bob/1".to_owned()));
    assert_eq!(serde_json::from_str::<Value>(&entry["ItemData"]).unwrap(), json!({"p": 3}));
    let event_ids: Vec<u64> = [item, entry].iter().map(|p| p["EventId"].parse().unwrap()).collect();
    assert!(event_ids[0] < event_ids[1], "EventId follows the order of events: {event_ids:?}");

    let published = &got[7];
    assert_eq!(keys(published), with(&["StreamSid", "StreamUniqueName", "MessageSid", "MessageData"]));
    assert_eq!(
        (&published["StreamSid"], &published["MessageSid"]),
        (&stream["sid"].as_str().unwrap().to_owned(), &message["sid"].as_str().unwrap().to_owned())
    );
    assert_eq!(serde_json::from_str::<Value>(&published["MessageData"]).unwrap(), json!({"m": "hi"}));
}

#[tokio::test]
async fn rest_changes_only_with_webhooks_from_rest_and_identity_changes_always() {
    let Some(s) = TestServer::with_settings(fast()).await else { return };
    let receiver = Receiver::start().await;
    let svc = service_with_webhook(&s, "quiet", &receiver, false).await;
    let token = s.mint_token("quiet", "alice", 600).await;

    // Server credentials: not delivered. Alice's REST write (Bearer): delivered. Order is kept,
    // so once Alice's arrives, the earlier REST-made one would have come first.
    s.post("/services/quiet/documents", json!({"unique_name": "admin-doc"})).await.ok();
    let r = super::common::send(
        s.bearer(&token, reqwest::Method::POST, "/services/quiet/documents").json(&json!({"unique_name": "alice-doc"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let got = receiver.wait_acked(1).await;
    assert_eq!((got[0]["EventType"].as_str(), got[0]["Identity"].as_str()), ("document_created", "alice"));
    assert_eq!(got[0]["DocumentUniqueName"], "alice-doc");

    // Alice on the native WebSocket: delivered.
    let mut ws = s.ws(&token).await;
    let reply =
        ws.request(json!({"type": "update", "kind": "document", "object": "alice-doc", "data": {"v": 1}})).await;
    assert_eq!(reply["status"], 200, "{reply}");
    let got = receiver.wait_acked(2).await;
    assert_eq!((got[1]["EventType"].as_str(), got[1]["Identity"].as_str()), ("document_updated", "alice"));

    // With webhooks_from_rest_enabled, server-made changes are delivered too.
    let r = s.twilio_post(&format!("/Services/{svc}"), &[("WebhooksFromRestEnabled", "true")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    s.put("/services/quiet/documents/admin-doc", json!({"data": {"x": 1}})).await.ok();
    let got = receiver.wait_acked(3).await;
    assert_eq!((got[2]["EventType"].as_str(), got[2]["Identity"].as_str()), ("document_updated", "system"));
    assert_eq!(got.len(), 3, "{got:?}");
}

#[tokio::test]
async fn failures_are_retried_until_acknowledged_in_order_without_duplicates() {
    let Some(s) = TestServer::with_settings(fast()).await else { return };
    let receiver = Receiver::start().await;
    service_with_webhook(&s, "flaky", &receiver, true).await;
    receiver.answer(&[500, 503]);
    for n in 0..3 {
        s.post("/services/flaky/documents", json!({"unique_name": format!("d{n}")})).await.ok();
    }
    let got = receiver.wait_acked(3).await;
    let names: Vec<&str> = got.iter().map(|p| p["DocumentUniqueName"].as_str()).collect();
    assert_eq!(names, ["d0", "d1", "d2"], "each once, in order, after the retries");
    let hits = receiver.hits();
    let statuses: Vec<u16> = hits.iter().map(|h| h.status).collect();
    assert_eq!(statuses, [500, 503, 200, 200, 200]);
    assert!(hits[..3].iter().all(|h| h.params["DocumentUniqueName"] == "d0"), "the first event is retried");

    // Acknowledged events are not sent again: the next one is the only new request.
    s.post("/services/flaky/documents", json!({"unique_name": "d3"})).await.ok();
    let got = receiver.wait_acked(4).await;
    assert_eq!(got[3]["DocumentUniqueName"], "d3");
    assert_eq!(receiver.hits().len(), 6);
}

#[tokio::test]
async fn delivery_resumes_after_a_restart_with_what_was_committed_meanwhile() {
    let Some(s) = TestServer::with_settings(fast()).await else { return };
    let receiver = Receiver::start().await;
    service_with_webhook(&s, "durable", &receiver, true).await;
    s.post("/services/durable/documents", json!({"unique_name": "before"})).await.ok();
    receiver.wait_acked(1).await;

    // The receiver is down: the next event is tried, and the server stops before it gets through.
    receiver.fail_all(true);
    s.post("/services/durable/documents", json!({"unique_name": "during"})).await.ok();
    eventually("a failed attempt", WAIT, || async { receiver.hits().len() >= 2 }).await;

    let s = s
        .restart(fast(), async |engine| {
            // Committed while no server (and no delivery) runs.
            let root = ferrosync_core::auth::Principal::Root;
            let open =
                ferrosync_core::engine::OpenRequest { unique_name: Some("offline".into()), ..Default::default() };
            engine.open(&root, "durable", ferrosync_core::model::ObjectKind::Document, open).await.unwrap();
            receiver.fail_all(false);
        })
        .await;
    let got = receiver.wait_acked(3).await;
    let names: Vec<&str> = got.iter().map(|p| p["DocumentUniqueName"].as_str()).collect();
    assert_eq!(names, ["before", "during", "offline"], "nothing lost, nothing acknowledged twice");

    // And it keeps going.
    s.post("/services/durable/documents", json!({"unique_name": "after"})).await.ok();
    let got = receiver.wait_acked(4).await;
    assert_eq!(got[3]["DocumentUniqueName"], "after");
}

#[tokio::test]
async fn a_delivery_under_way_at_shutdown_is_finished_not_repeated() {
    let Some(s) = TestServer::with_settings(fast()).await else { return };
    let receiver = Receiver::start().await;
    service_with_webhook(&s, "draining", &receiver, true).await;
    // The receiver takes the request and answers late: the server stops in between.
    receiver.hold_answers(Duration::from_millis(700));
    s.post("/services/draining/documents", json!({"unique_name": "under-way"})).await.ok();
    eventually("the request arrived", WAIT, || async { !receiver.hits().is_empty() }).await;
    let s = s.restart(fast(), async |_| {}).await;

    // Its answer was waited for and recorded: after the restart, only the next event is posted.
    receiver.hold_answers(Duration::ZERO);
    s.post("/services/draining/documents", json!({"unique_name": "after"})).await.ok();
    let got = receiver.wait_acked(2).await;
    let names: Vec<&str> = got.iter().map(|p| p["DocumentUniqueName"].as_str()).collect();
    // Delivery is in order: a second posting of the first would have come before the next.
    assert_eq!(names, ["under-way", "after"], "each once");
    assert_eq!(receiver.hits().len(), 2, "nothing was posted again");
}

#[tokio::test]
async fn a_cluster_delivers_each_event_once() {
    let Some(a) = TestServer::with_settings(fast()).await else { return };
    if a.store == ferrosync_server::StoreLocation::Embedded {
        return; // one node per embedded store
    }
    let b = TestServer::node(a.store.clone(), fast(), |_| {}).await;
    let receiver = Receiver::start().await;
    service_with_webhook(&a, "shared", &receiver, true).await;
    for n in 0..20 {
        let node = if n % 2 == 0 { &a } else { &b };
        node.post("/services/shared/documents", json!({"unique_name": format!("d{n}")})).await.ok();
    }
    let got = receiver.wait_acked(20).await;
    let names: Vec<String> = got.iter().map(|p| p["DocumentUniqueName"].clone()).collect();
    let expected: Vec<String> = (0..20).map(|n| format!("d{n}")).collect();
    assert_eq!(names, expected, "in commit order");

    // The node that stops hands its lease over; the other delivers from there.
    a.server.stop().await.unwrap();
    for n in 20..25 {
        b.post("/services/shared/documents", json!({"unique_name": format!("d{n}")})).await.ok();
    }
    let got = receiver.wait_acked(25).await;
    let names: Vec<String> = got.iter().map(|p| p["DocumentUniqueName"].clone()).collect();
    let expected: Vec<String> = (0..25).map(|n| format!("d{n}")).collect();
    assert_eq!(names, expected, "each once, in order");
    assert_eq!(receiver.hits().len(), 25, "no event was posted twice");
}
