//! Twilio Proxy's relay end to end: Proxy services, numbers and sessions made over the real
//! REST face; messages handed in at `POST /twilio/proxy/inbound`; in-app participants reached
//! through Sync Streams (read over the native WebSocket), the others through a delivery webhook;
//! the intercept, status, alert and out-of-session callbacks. Every receiver runs on 127.0.0.1
//! and checks Twilio's signature, computed here independently of the server's code.

use super::common::{Resp, Settings, TestServer, eventually, form_body, send};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use ferrosync_server::logfeed::{LeaseSettings, RetryPolicy};
use ferrosync_server::webhooks::WebhookSettings;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MOUNT: &str = "/twilio/proxy/v1";
const WAIT: Duration = Duration::from_secs(30);
const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// Quick retries and re-checks, so the suite does not wait on production timings.
fn fast() -> Settings {
    Settings {
        webhooks: WebhookSettings {
            retry: RetryPolicy {
                attempts: 3,
                first_retry: Duration::from_millis(50),
                max_retry: Duration::from_millis(200),
            },
            ..Default::default()
        },
        leases: LeaseSettings { recheck: Duration::from_millis(100), lease: Duration::from_secs(3) },
        ..Default::default()
    }
}

/// [`fast`] with this retry policy for callbacks.
fn retrying(attempts: usize, first_retry: Duration, max_retry: Duration) -> Settings {
    let mut settings = fast();
    settings.webhooks.retry = RetryPolicy { attempts, first_retry, max_retry };
    settings
}

// ----- the receiver ------------------------------------------------------------------------

/// One request a receiver got; its signature was checked on arrival.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    /// The form's parameters in order (empty for JSON).
    form: Vec<(String, String)>,
    /// The JSON body (`Null` for forms).
    json: Value,
}

impl Hit {
    fn param(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What a path answers: a status and a body with its content type.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: String,
    content_type: &'static str,
}

impl Answer {
    fn status(status: u16) -> Self {
        Answer { status, body: String::new(), content_type: "text/plain" }
    }
}

struct Log {
    auth_token: String,
    hits: Vec<Hit>,
    /// Signature checks that failed (they fail the test).
    bad: Vec<String>,
    /// Answers to give next per path, in order; then `default` per path; then 200.
    plan: HashMap<String, VecDeque<Answer>>,
    default: HashMap<String, Answer>,
}

/// Callback receivers on 127.0.0.1:0: `/intercept`, `/status`, `/oos`, `/deliver`.
struct Receiver {
    base: String,
    log: Arc<Mutex<Log>>,
    _stop: tokio_util::sync::DropGuard,
}

impl Receiver {
    async fn start(auth_token: &str) -> Receiver {
        let log = Arc::new(Mutex::new(Log {
            auth_token: auth_token.to_owned(),
            hits: Vec::new(),
            bad: Vec::new(),
            plan: HashMap::new(),
            default: HashMap::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(record).with_state(log.clone());
        let stop = tokio_util::sync::CancellationToken::new();
        let signal = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(async move { signal.cancelled().await }).await.unwrap();
        });
        Receiver { base: format!("http://{addr}"), log, _stop: stop.drop_guard() }
    }

    /// A URL of `path`, with a query string: signatures cover the whole URL.
    fn url(&self, path: &str) -> String {
        format!("{}{path}?tenant=t1", self.base)
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        let log = self.log.lock().unwrap();
        assert!(log.bad.is_empty(), "requests with a bad signature: {:?}", log.bad);
        log.hits.iter().filter(|h| h.path == path).cloned().collect()
    }

    async fn wait_hits(&self, path: &str, n: usize) -> Vec<Hit> {
        eventually(&format!("{n} requests to {path}"), WAIT, || async { self.hits(path).len() >= n }).await;
        self.hits(path)
    }

    fn answer_next(&self, path: &str, answers: &[Answer]) {
        self.log.lock().unwrap().plan.entry(path.to_owned()).or_default().extend(answers.iter().cloned());
    }

    fn answer_always(&self, path: &str, answer: Answer) {
        self.log.lock().unwrap().default.insert(path.to_owned(), answer);
    }
}

async fn record(
    State(log): State<Arc<Mutex<Log>>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let url = format!("http://{}{uri}", headers["host"].to_str().unwrap());
    let signature = headers.get("x-twilio-signature").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let is_json = headers.get("content-type").is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
    let mut log = log.lock().unwrap();
    let (form, json) = if is_json {
        // Twilio's JSON webhooks: the body's SHA-256 in the URL, the signature over the URL alone.
        let hash = hex::encode(sha2::Sha256::digest(&body));
        let named = uri.query().unwrap_or_default().split('&').any(|p| p == format!("bodySHA256={hash}"));
        if !named || signature != expected_signature(&log.auth_token, &url, &[]) {
            log.bad.push(format!("JSON to {url}"));
        }
        (Vec::new(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    } else {
        let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        if signature != expected_signature(&log.auth_token, &url, &form) {
            log.bad.push(format!("form to {url}: {form:?}"));
        }
        (form, Value::Null)
    };
    let path = uri.path().to_owned();
    log.hits.push(Hit { path: path.clone(), form, json });
    let answer = match log.plan.get_mut(&path).and_then(VecDeque::pop_front) {
        Some(a) => a,
        None => log.default.get(&path).cloned().unwrap_or(Answer::status(200)),
    };
    let status = StatusCode::from_u16(answer.status).unwrap();
    (status, [("content-type", answer.content_type)], answer.body).into_response()
}

/// Twilio's signature: base64 of HMAC-SHA1(AuthToken, the URL followed by each parameter's name
/// and value, sorted by name).
fn expected_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

// ----- the Proxy face --------------------------------------------------------------------------

async fn proxy(s: &TestServer, method: Method, path: &str, form: &[(&str, &str)]) -> Resp {
    let req = s
        .http
        .request(method, format!("{}{MOUNT}{path}", s.server.url()))
        .basic_auth(&s.account_sid, Some(&s.auth_token))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(form));
    send(req).await
}

/// A Proxy service with these settings and these pool numbers; its SID.
async fn proxy_service(s: &TestServer, settings: &[(&str, &str)], numbers: &[&str]) -> String {
    let r = proxy(s, Method::POST, "/Services", settings).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let svc = r.body["sid"].as_str().unwrap().to_owned();
    for n in numbers {
        let r = proxy(s, Method::POST, &format!("/Services/{svc}/PhoneNumbers"), &[("PhoneNumber", n)]).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    svc
}

/// A session of these participants: its SID, and each participant's proxy identifier by
/// identifier.
async fn session(s: &TestServer, svc: &str, identifiers: &[&str]) -> (String, HashMap<String, String>) {
    let participants: Vec<String> = identifiers.iter().map(|i| json!({ "Identifier": i }).to_string()).collect();
    let form: Vec<(&str, &str)> = participants.iter().map(|p| ("Participants", p.as_str())).collect();
    let r = proxy(s, Method::POST, &format!("/Services/{svc}/Sessions"), &form).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let session = r.body["sid"].as_str().unwrap().to_owned();
    let listed = proxy(s, Method::GET, &format!("/Services/{svc}/Sessions/{session}/Participants"), &[]).await.ok();
    let proxies = listed["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["identifier"].as_str().unwrap().to_owned(), p["proxy_identifier"].as_str().unwrap().to_owned()))
        .collect();
    (session, proxies)
}

/// A server, a receiver, and a Proxy service `name` with these numbers whose delivery webhook
/// is the receiver's `/deliver`; `None` when the store under test is not available.
async fn delivering(settings: Settings, name: &str, numbers: &[&str]) -> Option<(TestServer, Receiver, String)> {
    let s = TestServer::with_settings(settings).await?;
    let rx = Receiver::start(&s.auth_token).await;
    let svc = proxy_service(&s, &[("UniqueName", name), ("DeliveryCallbackUrl", &rx.url("/deliver"))], numbers).await;
    Some((s, rx, svc))
}

async fn interactions(s: &TestServer, svc: &str, session: &str) -> Vec<Value> {
    let r = proxy(s, Method::GET, &format!("/Services/{svc}/Sessions/{session}/Interactions"), &[]).await.ok();
    r["interactions"].as_array().unwrap().clone()
}

/// Waits until the session's interaction `sid` has this outbound status; returns it.
async fn wait_outbound(s: &TestServer, svc: &str, session: &str, sid: &str, status: &str) -> Value {
    let found = Mutex::new(Value::Null);
    eventually(&format!("interaction {sid} {status}"), WAIT, || async {
        let all = interactions(s, svc, session).await;
        let i = all.into_iter().find(|i| i["sid"] == sid).unwrap_or(Value::Null);
        let done = i["outbound_resource_status"] == status;
        *found.lock().unwrap() = i;
        done
    })
    .await;
    found.into_inner().unwrap()
}

/// The newest interaction of a session.
async fn newest(s: &TestServer, svc: &str, session: &str) -> Value {
    interactions(s, svc, session).await.last().cloned().expect("an interaction")
}

/// `POST /twilio/proxy/inbound` with the account's Basic credentials.
async fn inbound(s: &TestServer, form: &[(&str, &str)]) -> Resp {
    let req = s
        .http
        .post(format!("{}/twilio/proxy/inbound", s.server.url()))
        .basic_auth(&s.account_sid, Some(&s.auth_token))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(form));
    send(req).await
}

fn accepted(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/xml"), "{:?}", r.headers);
    assert_eq!(r.text, EMPTY_TWIML);
}

fn twilio_error(r: &Resp, status: u16, code: u64, names: &str) {
    assert_eq!((r.status, &r.body["code"]), (status, &json!(code)), "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains(names), "names {names}: {}", r.text);
}

/// The stream messages published to `stream` of Sync service `sync`, from its change log.
async fn stream_messages(s: &TestServer, sync: &str, stream: &str) -> Vec<Value> {
    s.all_changes(sync)
        .await
        .into_iter()
        .filter(|e| e["type"] == "stream_message_published" && e["unique_name"] == stream)
        .map(|e| e["data"].clone())
        .collect()
}

// ----- the tests ---------------------------------------------------------------------------------

#[tokio::test]
async fn messages_reach_in_app_participants_by_stream_and_others_by_the_delivery_webhook() {
    let Some(s) = TestServer::with_settings(fast()).await else { return };
    let rx = Receiver::start(&s.auth_token).await;
    // In-app participants' streams live in the Sync service the Proxy service names.
    // That service enforces ACLs: bob reads his stream by the permission the relay gives him.
    let chat = s.post("/services", json!({ "unique_name": "chat", "acl_enabled": true })).await.ok();
    let chat = chat["sid"].as_str().unwrap().to_owned();
    let svc = proxy_service(
        &s,
        &[
            ("UniqueName", "rides"),
            ("ChatInstanceSid", &chat),
            ("CallbackUrl", &rx.url("/status")),
            ("DeliveryCallbackUrl", &rx.url("/deliver")),
        ],
        &["+15550009001", "+15550009002"],
    )
    .await;

    // alice ↔ bob, both in the app; their streams are made as they join, so bob listens on
    // his before anything is sent.
    let (a_b, proxies) = session(&s, &svc, &["app:alice", "app:bob"]).await;
    eventually("bob's stream and permission", WAIT, || async {
        s.get(&format!("/services/{chat}/streams/proxy.bob/permissions/bob")).await.status == 200
    })
    .await;
    let token = s.mint_token(&chat, "bob", 600).await;
    let mut bob = s.ws(&token).await;
    bob.subscribe("stream", "proxy.bob", None).await;

    accepted(&inbound(&s, &[("From", "app:alice"), ("To", &proxies["app:alice"]), ("Body", "hi bob")]).await);
    let event = bob.next_event().await;
    assert_eq!(event["type"], "stream_message_published", "{event}");
    let data = &event["data"];
    let first = newest(&s, &svc, &a_b).await;
    assert_eq!(
        data,
        &json!({
            "from": proxies["app:bob"], "to": "app:bob", "body": "hi bob", "media": [],
            "interaction_sid": first["sid"], "session_sid": a_b,
        })
    );
    let first = wait_outbound(&s, &svc, &a_b, first["sid"].as_str().unwrap(), "delivered").await;
    assert_eq!((&first["inbound_resource_status"], &first["type"]), (&json!("received"), &json!("message")));
    assert_eq!(
        first["data"].as_str().map(|d| serde_json::from_str::<Value>(d).unwrap()),
        Some(json!({"body": "hi bob"}))
    );
    // bob may read his stream when the service enforces ACLs.
    let granted = s.get(&format!("/services/{chat}/streams/proxy.bob/permissions/bob")).await.ok();
    assert_eq!((&granted["read"], &granted["write"]), (&json!(true), &json!(false)));

    // The service's callback heard the interaction queued, then delivered.
    let statuses = |hits: Vec<Hit>, sid: &str| -> Vec<String> {
        hits.iter()
            .filter(|h| h.param("interactionSid") == Some(sid))
            .map(|h| h.param("outboundResourceStatus").unwrap_or_default().to_owned())
            .collect()
    };
    let first_sid = first["sid"].as_str().unwrap();
    eventually("both statuses of the first message", WAIT, || async {
        statuses(rx.hits("/status"), first_sid).len() >= 2
    })
    .await;
    assert_eq!(statuses(rx.hits("/status"), first_sid), ["queued", "delivered"]);
    let hit = rx.hits("/status").into_iter().find(|h| h.param("interactionSid") == Some(first_sid)).unwrap();
    assert_eq!(hit.param("interactionAccountSid"), Some(s.account_sid.as_str()));
    assert_eq!(hit.param("interactionSessionSid"), Some(a_b.as_str()));
    assert_eq!(hit.param("inboundResourceStatus"), Some("received"));
    assert_eq!(hit.param("interactionType"), Some("message"));

    // alice ↔ a phone: what alice sends goes to the delivery webhook, signed with bodySHA256.
    let (a_p, proxies) = session(&s, &svc, &["app:alice", "+15550001111"]).await;
    accepted(&inbound(&s, &[("From", "app:alice"), ("To", &proxies["app:alice"]), ("Body", "on my way")]).await);
    let delivered = rx.wait_hits("/deliver", 1).await;
    let sent = newest(&s, &svc, &a_p).await;
    assert_eq!(
        delivered[0].json,
        json!({
            "from": proxies["+15550001111"], "to": "+15550001111", "body": "on my way", "media": [],
            "interaction_sid": sent["sid"],
        })
    );
    wait_outbound(&s, &svc, &a_p, sent["sid"].as_str().unwrap(), "sent").await;

    // The phone answers, with a picture: alice's stream is made (in the chat service) for it.
    let reply = [
        ("From", "+15550001111"),
        ("To", proxies["+15550001111"].as_str()),
        ("Body", "see you"),
        ("NumMedia", "1"),
        ("MediaUrl0", "https://media.example/p.jpg"),
    ];
    accepted(&inbound(&s, &reply).await);
    let answer = newest(&s, &svc, &a_p).await;
    wait_outbound(&s, &svc, &a_p, answer["sid"].as_str().unwrap(), "delivered").await;
    let got = stream_messages(&s, &chat, "proxy.alice").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (&got[0]["body"], &got[0]["media"], &got[0]["from"], &got[0]["interaction_sid"]),
        (&json!("see you"), &json!(["https://media.example/p.jpg"]), &json!(proxies["app:alice"]), &answer["sid"])
    );

    // A message from the application to one participant goes out too (no intercept).
    let phone =
        proxy(&s, Method::GET, &format!("/Services/{svc}/Sessions/{a_p}/Participants"), &[]).await.ok()["participants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["identifier"] == "+15550001111")
            .unwrap()["sid"]
            .as_str()
            .unwrap()
            .to_owned();
    let path = format!("/Services/{svc}/Sessions/{a_p}/Participants/{phone}/MessageInteractions");
    let made = proxy(&s, Method::POST, &path, &[("Body", "your driver is here")]).await.ok();
    let delivered = rx.wait_hits("/deliver", 2).await;
    assert_eq!(
        (&delivered[1].json["body"], &delivered[1].json["interaction_sid"]),
        (&json!("your driver is here"), &made["sid"])
    );
    wait_outbound(&s, &svc, &a_p, made["sid"].as_str().unwrap(), "sent").await;
}

#[tokio::test]
async fn the_intercept_callback_blocks_or_lets_messages_through() {
    let Some(s) = TestServer::with_settings(fast()).await else { return };
    let rx = Receiver::start(&s.auth_token).await;
    let svc = proxy_service(
        &s,
        &[
            ("UniqueName", "guarded"),
            ("InterceptCallbackUrl", &rx.url("/intercept")),
            ("DeliveryCallbackUrl", &rx.url("/deliver")),
        ],
        &["+15550009001"],
    )
    .await;
    let (kc, proxies) = session(&s, &svc, &["+15550001111", "+15550002222"]).await;
    let server = &s;
    let to = proxies["+15550001111"].clone();
    let from_1111 = |body: &'static str| {
        let to = to.clone();
        async move { inbound(server, &[("From", "+15550001111"), ("To", &to), ("Body", body)]).await }
    };

    // Refused: canceled, nothing delivered.
    rx.answer_next("/intercept", &[Answer::status(403)]);
    accepted(&from_1111("buy crypto").await);
    let blocked = newest(&s, &svc, &kc).await;
    wait_outbound(&s, &svc, &kc, blocked["sid"].as_str().unwrap(), "canceled").await;
    let asked = rx.hits("/intercept");
    assert_eq!(asked.len(), 1, "a refusal is not retried");
    assert_eq!(
        (asked[0].param("interactionSid"), asked[0].param("interactionType"), asked[0].param("Body")),
        (blocked["sid"].as_str(), Some("message"), Some("buy crypto"))
    );
    assert_eq!(asked[0].param("interactionData"), Some(r#"{"body":"buy crypto"}"#));
    assert_eq!(asked[0].param("To"), Some("+15550002222"));
    assert_eq!(asked[0].param("interactionServiceSid"), Some(svc.as_str()));

    // A failing receiver is asked again; its 2xx lets the message through.
    rx.answer_next("/intercept", &[Answer::status(503), Answer::status(200)]);
    accepted(&from_1111("hello").await);
    let passed = newest(&s, &svc, &kc).await;
    wait_outbound(&s, &svc, &kc, passed["sid"].as_str().unwrap(), "sent").await;
    assert_eq!(rx.hits("/intercept").len(), 3);
    let delivered = rx.hits("/deliver");
    assert_eq!(delivered.len(), 1, "only the message let through: {delivered:?}");
    assert_eq!((&delivered[0].json["body"], &delivered[0].json["to"]), (&json!("hello"), &json!("+15550002222")));

    // A receiver that never answers well blocks once the attempts are spent.
    rx.answer_always("/intercept", Answer::status(500));
    accepted(&from_1111("anyone?").await);
    let unanswered = newest(&s, &svc, &kc).await;
    wait_outbound(&s, &svc, &kc, unanswered["sid"].as_str().unwrap(), "canceled").await;
    assert_eq!(rx.hits("/intercept").len(), 6, "three attempts");
    assert_eq!(rx.hits("/deliver").len(), 1);
}

#[tokio::test]
async fn out_of_session_messages_reach_their_callback_and_twiml_replies_go_back() {
    let Some(s) = TestServer::with_settings(fast()).await else { return };
    let rx = Receiver::start(&s.auth_token).await;
    proxy_service(
        &s,
        &[
            ("UniqueName", "closed-shop"),
            ("OutOfSessionCallbackUrl", &rx.url("/oos")),
            ("DeliveryCallbackUrl", &rx.url("/deliver")),
        ],
        &["+15550009001"],
    )
    .await;
    let twiml = r#"<?xml version="1.0" encoding="UTF-8"?>
        <Response><Message>We are closed &amp; will call back.</Message><Message><Body>Menu:</Body><Media>https://media.example/menu.pdf</Media></Message></Response>"#;
    rx.answer_always("/oos", Answer { status: 200, body: twiml.into(), content_type: "text/xml" });

    let form = [
        ("From", "+15550003333"),
        ("To", "+15550009001"),
        ("Body", "open?"),
        ("NumMedia", "1"),
        ("MediaUrl0", "https://media.example/q.png"),
    ];
    accepted(&inbound(&s, &form).await);
    let asked = rx.wait_hits("/oos", 1).await;
    let expected: Vec<(String, String)> = [
        ("AccountSid", s.account_sid.as_str()),
        ("From", "+15550003333"),
        ("To", "+15550009001"),
        ("Body", "open?"),
        ("NumMedia", "1"),
        ("MediaUrl0", "https://media.example/q.png"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(asked[0].form, expected);
    let replies = rx.wait_hits("/deliver", 2).await;
    assert_eq!(
        replies.iter().map(|h| h.json.clone()).collect::<Vec<_>>(),
        [
            json!({ "from": "+15550009001", "to": "+15550003333", "body": "We are closed & will call back.",
                    "media": [], "interaction_sid": null }),
            json!({ "from": "+15550009001", "to": "+15550003333", "body": "Menu:",
                    "media": ["https://media.example/menu.pdf"], "interaction_sid": null }),
        ]
    );

    // A sender in the app hears back on its stream, in the `default` Sync service (the Proxy
    // service names no chat instance).
    accepted(&inbound(&s, &[("From", "app:carol"), ("To", "+15550009001"), ("Body", "hello?")]).await);
    rx.wait_hits("/oos", 2).await;
    eventually("carol's replies", WAIT, || async { stream_messages(&s, "default", "proxy.carol").await.len() >= 2 })
        .await;
    let got = stream_messages(&s, "default", "proxy.carol").await;
    assert_eq!(
        (&got[0]["body"], &got[0]["to"], &got[0]["session_sid"]),
        (&json!("We are closed & will call back."), &json!("app:carol"), &json!(null))
    );
    assert_eq!(rx.hits("/deliver").len(), 2, "app replies do not use the webhook");
}

#[tokio::test]
async fn status_changes_and_alerts_reach_the_callback_in_order() {
    let Some(s) = TestServer::with_settings(fast()).await else { return };
    let rx = Receiver::start(&s.auth_token).await;
    // One number: a second session with the same participant must share it (an allowed conflict).
    let svc = proxy_service(
        &s,
        &[("UniqueName", "busy"), ("CallbackUrl", &rx.url("/status")), ("DeliveryCallbackUrl", &rx.url("/deliver"))],
        &["+15550009001"],
    )
    .await;
    let (first, _) = session(&s, &svc, &["+15550001111", "+15550002222"]).await;
    let (second, proxies) = session(&s, &svc, &["+15550001111", "+15550004444"]).await;

    let alert = || rx.hits("/status").into_iter().find(|h| h.param("PayloadType").is_some());
    eventually("the 80802 alert", WAIT, || async { alert().is_some() }).await;
    let alert = alert().unwrap();
    assert_eq!(alert.param("AccountSid"), Some(s.account_sid.as_str()));
    assert_eq!(alert.param("Level"), Some("ERROR"));
    assert_eq!(alert.param("PayloadType"), Some("application/json"));
    assert!(alert.param("Sid").unwrap().starts_with("NO"), "{alert:?}");
    assert!(alert.param("Timestamp").is_some_and(|t| t.contains('T')), "{alert:?}");
    let payload: Value = serde_json::from_str(alert.param("Payload").unwrap()).unwrap();
    assert_eq!((&payload["error_code"], &payload["service_sid"]), (&json!("80802"), &json!(svc)));
    assert_eq!(payload["session_sid"], second);
    assert!(payload["message"].as_str().unwrap().contains("+15550001111"), "{payload}");

    // Three messages in the second session: each one's statuses arrive in order.
    let to = proxies["+15550004444"].clone();
    for body in ["one", "two", "three"] {
        accepted(&inbound(&s, &[("From", "+15550004444"), ("To", &to), ("Body", body)]).await);
    }
    rx.wait_hits("/deliver", 3).await;
    let sent = interactions(&s, &svc, &second).await;
    assert_eq!(sent.len(), 3);
    let sids: Vec<String> = sent.iter().map(|i| i["sid"].as_str().unwrap().to_owned()).collect();
    for sid in &sids {
        wait_outbound(&s, &svc, &second, sid, "sent").await;
    }
    let statuses = || -> Vec<(String, String)> {
        rx.hits("/status")
            .into_iter()
            .filter_map(|h| {
                let sid = h.param("interactionSid")?.to_owned();
                Some((sid, h.param("outboundResourceStatus")?.to_owned()))
            })
            .collect()
    };
    eventually("six status callbacks", WAIT, || async { statuses().len() >= 6 }).await;
    let got = statuses();
    for sid in &sids {
        let mine: Vec<&str> = got.iter().filter(|(s, _)| s == sid).map(|(_, st)| st.as_str()).collect();
        assert_eq!(mine, ["queued", "sent"], "{sid}: {got:?}");
    }
    let queued: Vec<&String> = got.iter().filter(|(_, st)| st == "queued").map(|(s, _)| s).collect();
    assert_eq!(queued, sids.iter().collect::<Vec<_>>(), "the messages in the order they came");
    let deliveries: Vec<Value> = rx.hits("/deliver").iter().map(|h| h.json["body"].clone()).collect();
    assert_eq!(deliveries, [json!("one"), json!("two"), json!("three")]);
    assert!(interactions(&s, &svc, &first).await.is_empty());
}

#[tokio::test]
async fn the_inbound_endpoint_takes_basic_auth_or_a_twilio_signature_and_checks_its_form() {
    let Some(s) = TestServer::with_settings(fast()).await else { return };
    proxy_service(&s, &[("UniqueName", "front-door")], &["+15550009001"]).await;
    let path = "/twilio/proxy/inbound?provider=p1";
    let url = format!("{}{path}", s.server.url());
    let form = [("From", "+15550003333"), ("To", "+15550009001"), ("Body", "hi"), ("SmsSid", "")];
    let pairs: Vec<(String, String)> = form.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let post = |signature: Option<String>, headers: &[(&str, &str)]| {
        let mut req =
            s.http.post(&url).header("content-type", "application/x-www-form-urlencoded").body(form_body(&form));
        if let Some(sig) = signature {
            req = req.header("X-Twilio-Signature", sig);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        send(req)
    };

    twilio_error(&post(None, &[]).await, 401, 20003, "Authenticate");
    let wrong = expected_signature("not-the-token", &url, &pairs);
    twilio_error(&post(Some(wrong), &[]).await, 401, 20003, "X-Twilio-Signature");
    // Signed over another URL (the query left out).
    let other = expected_signature(&s.auth_token, &format!("{}/twilio/proxy/inbound", s.server.url()), &pairs);
    twilio_error(&post(Some(other), &[]).await, 401, 20003, "X-Twilio-Signature");
    accepted(&post(Some(expected_signature(&s.auth_token, &url, &pairs)), &[]).await);
    // Behind a proxy, the URL the provider called is the one signed.
    let public = "https://sms.example.com/twilio/proxy/inbound?provider=p1";
    let forwarded = [("x-forwarded-proto", "https"), ("x-forwarded-host", "sms.example.com")];
    accepted(&post(Some(expected_signature(&s.auth_token, public, &pairs)), &forwarded).await);
    // Basic auth: a wrong password is refused, an API key is accepted.
    let r = send(s.http.post(&url).basic_auth(&s.account_sid, Some("nope")).body(form_body(&form))).await;
    twilio_error(&r, 401, 20003, "Authenticate");
    let key = s.post("/keys", json!({ "friendly_name": "sms gateway" })).await.ok();
    let r = send(
        s.http
            .post(&url)
            .basic_auth(key["sid"].as_str().unwrap(), key["secret"].as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&form)),
    )
    .await;
    accepted(&r);

    // Bad input names its field.
    let base = [("From", "+15550003333"), ("To", "+15550009001"), ("Body", "hi")];
    let with = |extra: &[(&'static str, &'static str)]| base.iter().chain(extra).copied().collect::<Vec<_>>();
    let cases: [(Vec<(&str, &str)>, &str); 5] = [
        (with(&[("NumMedia", "2"), ("MediaUrl0", "https://m.example/a")]), "MediaUrl1"),
        (with(&[("MediaUrl0", "https://m.example/a")]), "MediaUrl0"),
        (with(&[("NumMedia", "11")]), "NumMedia"),
        (with(&[("NumMedia", "many")]), "NumMedia"),
        (vec![("From", "+15550003333"), ("To", "+15550000000"), ("Body", "hi")], "To"),
    ];
    for (form, field) in cases {
        twilio_error(&inbound(&s, &form).await, 400, 20001, field);
    }
    twilio_error(&inbound(&s, &[("To", "+15550009001"), ("Body", "hi")]).await, 400, 20001, "From");
}

/// The relay keeps the Proxy services it read between jobs: a service's change reaches the
/// very next message relayed after it.
#[tokio::test]
async fn a_changed_delivery_url_takes_the_next_message() {
    let Some((s, rx, svc)) = delivering(fast(), "moving", &["+15550009201"]).await else { return };
    let (_, proxies) = session(&s, &svc, &["+15550005555", "+15550006666"]).await;
    let to = proxies["+15550005555"].clone();
    let moves = [("one", "/deliver"), ("two", "/moved"), ("three", "/deliver"), ("four", "/moved")];
    for (n, (body, path)) in moves.into_iter().enumerate() {
        if n > 0 {
            let r =
                proxy(&s, Method::POST, &format!("/Services/{svc}"), &[("DeliveryCallbackUrl", &rx.url(path))]).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        accepted(&inbound(&s, &[("From", "+15550005555"), ("To", &to), ("Body", body)]).await);
        let before = moves[..n].iter().filter(|(_, p)| *p == path).count();
        let hits = rx.wait_hits(path, before + 1).await;
        assert_eq!(hits.last().map(|h| h.json["body"].clone()), Some(json!(body)), "{path}");
    }
    let bodies = |path: &str| rx.hits(path).iter().map(|h| h.json["body"].clone()).collect::<Vec<_>>();
    assert_eq!(bodies("/deliver"), [json!("one"), json!("three")]);
    assert_eq!(bodies("/moved"), [json!("two"), json!("four")]);
}

#[tokio::test]
async fn an_accepted_message_is_delivered_after_a_restart() {
    // Patient retries, so the server goes down while the delivery is still being retried.
    let patient = || retrying(100, Duration::from_millis(100), Duration::from_millis(200));
    let Some((s, rx, svc)) = delivering(patient(), "durable", &["+15550009101"]).await else { return };
    let (kc, proxies) = session(&s, &svc, &["+15550003333", "+15550004444"]).await;
    rx.answer_always("/deliver", Answer::status(503));
    let to = proxies["+15550003333"].clone();
    accepted(&inbound(&s, &[("From", "+15550003333"), ("To", &to), ("Body", "still there?")]).await);
    rx.wait_hits("/deliver", 1).await;
    let ki = newest(&s, &svc, &kc).await["sid"].as_str().unwrap().to_owned();

    let s = s.restart(patient(), async |_| {}).await;
    rx.answer_always("/deliver", Answer::status(200));
    let sent = wait_outbound(&s, &svc, &kc, &ki, "sent").await;
    assert_eq!(sent["inbound_resource_status"], "received");
    let last = rx.hits("/deliver").last().cloned().expect("a delivery");
    assert_eq!((&last.json["body"], &last.json["interaction_sid"]), (&json!("still there?"), &json!(ki)));
}

#[tokio::test]
async fn a_session_whose_delivery_is_retried_holds_back_only_its_own_messages() {
    // The retry after a failed delivery is minutes away: longer than the test waits.
    let slow_retries = || retrying(3, Duration::from_secs(600), Duration::from_secs(600));
    let numbers = ["+15550009201", "+15550009202"];
    let Some((s, rx, svc)) = delivering(slow_retries(), "lanes", &numbers).await else { return };
    let (held, held_proxies) = session(&s, &svc, &["app:carol", "+15550005555"]).await;
    let (flowing, proxies) = session(&s, &svc, &["app:dave", "app:erin"]).await;

    rx.answer_next("/deliver", &[Answer::status(503)]);
    let to = held_proxies["app:carol"].clone();
    accepted(&inbound(&s, &[("From", "app:carol"), ("To", &to), ("Body", "are you there?")]).await);
    rx.wait_hits("/deliver", 1).await;
    let waiting = newest(&s, &svc, &held).await["sid"].as_str().unwrap().to_owned();

    // While carol's message waits for its retry, dave's go out, in order.
    let to = proxies["app:dave"].clone();
    for body in ["one", "two", "three"] {
        accepted(&inbound(&s, &[("From", "app:dave"), ("To", &to), ("Body", body)]).await);
    }
    let bodies = async |s: &TestServer| -> Vec<Value> {
        stream_messages(s, "default", "proxy.erin").await.into_iter().map(|m| m["body"].clone()).collect()
    };
    eventually("dave's three messages on erin's stream", WAIT, || async { bodies(&s).await.len() >= 3 }).await;
    assert_eq!(bodies(&s).await, [json!("one"), json!("two"), json!("three")]);
    for i in interactions(&s, &svc, &flowing).await {
        assert_eq!(i["outbound_resource_status"], "delivered", "{i}");
    }
    let carol = interactions(&s, &svc, &held).await;
    assert_eq!(carol.len(), 1, "{carol:?}");
    assert_eq!((&carol[0]["sid"], &carol[0]["outbound_resource_status"]), (&json!(waiting), &json!("queued")));

    // The relay's cursor stayed before carol's message: after a restart it is delivered, and
    // what went out after it is not relayed again (dave's next message comes after his earlier
    // jobs, done again first).
    let s = s.restart(fast(), async |_| {}).await;
    wait_outbound(&s, &svc, &held, &waiting, "sent").await;
    let last = rx.hits("/deliver").last().cloned().expect("a delivery");
    assert_eq!((&last.json["body"], &last.json["interaction_sid"]), (&json!("are you there?"), &json!(waiting)));
    accepted(&inbound(&s, &[("From", "app:dave"), ("To", &to), ("Body", "four")]).await);
    eventually("dave's fourth message", WAIT, || async { bodies(&s).await.contains(&json!("four")) }).await;
    assert_eq!(bodies(&s).await, [json!("one"), json!("two"), json!("three"), json!("four")]);
}
