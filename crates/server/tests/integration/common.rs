//! A server started in-process on 127.0.0.1 with a temporary data directory, an HTTP client
//! that speaks Basic and Bearer auth to it, and a WebSocket client for the native protocol.
//!
//! [`Server`] runs on the embedded store (`Server<false>`) or on PostgreSQL (`Server<true>`,
//! each server in a fresh schema of `FERROSYNC_TEST_POSTGRES`); the suite's modules are
//! compiled once per store, each seeing its own `TestServer`.

#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub use ferrosync_server::state::Settings;

/// How long any single frame or reply may take before a test fails: generous, because the
/// suite runs beside other suites (and a database) on shared cores; a lost event still fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// One answer from the server: status, headers and the JSON body (`Null` when it had none).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// The native error code of an error body.
    pub fn code(&self) -> u64 {
        self.body["code"].as_u64().unwrap_or_else(|| panic!("no error code in {} {}", self.status, self.text))
    }

    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_else(|| panic!("no message in {} {}", self.status, self.text))
    }

    /// Asserts a success status and returns the body.
    pub fn ok(self) -> Value {
        assert!((200..300).contains(&self.status), "expected success, got {} {}", self.status, self.text);
        self.body
    }

    /// Asserts an error in the native format: status, code, `status` repeated in the body, and a
    /// message naming `names` (when not empty).
    pub fn refused(&self, status: u16, code: u64, names: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.code(), code, "{}", self.text);
        assert_eq!(self.body["status"], status, "{}", self.text);
        assert!(self.message().contains(names), "the message names '{names}': {}", self.message());
    }

    pub fn etag(&self) -> String {
        self.headers.get("etag").unwrap_or_else(|| panic!("no ETag: {}", self.text)).to_str().unwrap().to_owned()
    }
}

/// An in-process server; `PG` selects the PostgreSQL store.
pub struct Server<const PG: bool> {
    pub server: ferrosync_server::RunningServer,
    pub engine: Arc<ferrosync_core::Engine>,
    pub http: reqwest::Client,
    pub account_sid: String,
    pub auth_token: String,
    /// The store this server runs on: `Embedded`, or the PostgreSQL URL (with its schema)
    /// that further nodes of the same cluster can be started on.
    pub store: ferrosync_server::StoreLocation,
    _dir: tempfile::TempDir,
}

impl<const PG: bool> Server<PG> {
    /// A server on a fresh store; `None` when this is a PostgreSQL run and none is configured
    /// (the test then returns: the run is skipped, as the harness says once).
    pub async fn start() -> Option<Self> {
        Self::with(Settings::default(), |_| {}).await
    }

    pub async fn with_settings(settings: Settings) -> Option<Self> {
        Self::with(settings, |_| {}).await
    }

    /// A server whose configuration `adjust` may change first (limits, retention, durability).
    pub async fn with(settings: Settings, adjust: impl FnOnce(&mut ferrosync_server::ServerConfig)) -> Option<Self> {
        let store = if PG {
            ferrosync_server::StoreLocation::Postgres(ferrosync_store::testing::fresh_postgres_url().await?)
        } else {
            ferrosync_server::StoreLocation::Embedded
        };
        Some(Self::node(store, settings, adjust).await)
    }

    /// A server on `store`: on PostgreSQL, another node of the cluster an earlier server
    /// started (same data, same credentials).
    pub async fn node(
        store: ferrosync_server::StoreLocation,
        settings: Settings,
        adjust: impl FnOnce(&mut ferrosync_server::ServerConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ferrosync_server::ServerConfig::new(dir.path());
        cfg.store = store.clone();
        adjust(&mut cfg);
        let (engine, creds, _) = ferrosync_server::open_engine(&cfg).await.unwrap();
        // What `ferrosync serve` does before it serves.
        ferrosync_server::bootstrap::declare_indexes(&engine, &cfg.indexes).await.unwrap();
        let state = ferrosync_server::AppState::new(engine.clone(), settings);
        let server = ferrosync_server::RunningServer::start(state).await.unwrap();
        Server {
            store,
            server,
            engine,
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            account_sid: creds.account_sid.to_string(),
            auth_token: creds.auth_token,
            _dir: dir,
        }
    }

    /// Stops this server and starts another on the same data directory and store, as a restart
    /// of the process would. `offline` runs in between, on the reopened engine, while no server
    /// (and no background work) runs.
    pub async fn restart(self, settings: Settings, offline: impl AsyncFnOnce(Arc<ferrosync_core::Engine>)) -> Self {
        let Server { server, engine, store, _dir: dir, .. } = self;
        server.stop().await.unwrap();
        drop(engine);
        let mut cfg = ferrosync_server::ServerConfig::new(dir.path());
        cfg.store = store.clone();
        let (engine, creds, _) = ferrosync_server::open_engine(&cfg).await.unwrap();
        offline(engine.clone()).await;
        let state = ferrosync_server::AppState::new(engine.clone(), settings);
        let server = ferrosync_server::RunningServer::start(state).await.unwrap();
        Server {
            store,
            server,
            engine,
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            account_sid: creds.account_sid.to_string(),
            auth_token: creds.auth_token,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT/api/v1{path}`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server.url())
    }

    /// `http://127.0.0.1:PORT{path}` (operations endpoints).
    pub fn root(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// A request to the native API with the account's Basic credentials.
    pub fn admin(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.api(path)).basic_auth(&self.account_sid, Some(&self.auth_token))
    }

    /// A request to the native API with an identity's access token.
    pub fn bearer(&self, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.api(path)).bearer_auth(token)
    }

    pub async fn get(&self, path: &str) -> Resp {
        send(self.admin(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        send(self.admin(Method::POST, path).json(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        send(self.admin(Method::PUT, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        send(self.admin(Method::DELETE, path)).await
    }

    /// A conditional PUT.
    pub async fn put_if(&self, path: &str, if_match: &str, body: Value) -> Resp {
        send(self.admin(Method::PUT, path).header("If-Match", if_match).json(&body)).await
    }

    /// A conditional DELETE.
    pub async fn delete_if(&self, path: &str, if_match: &str) -> Resp {
        send(self.admin(Method::DELETE, path).header("If-Match", if_match)).await
    }

    /// A request whose body is sent exactly as given, as JSON.
    pub async fn raw(&self, method: Method, path: &str, body: &'static str) -> Resp {
        send(self.admin(method, path).header("content-type", "application/json").body(body)).await
    }

    /// `http://127.0.0.1:PORT/twilio/sync/v1{path}`.
    pub fn twilio(&self, path: &str) -> String {
        format!("{}/twilio/sync/v1{path}", self.server.url())
    }

    /// A request to the Twilio Sync face with the account's Basic credentials.
    pub fn twilio_request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.twilio(path)).basic_auth(&self.account_sid, Some(&self.auth_token))
    }

    /// A form-encoded POST to the Twilio Sync face (repeat a name for an array).
    pub async fn twilio_post(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        send(
            self.twilio_request(Method::POST, path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(form)),
        )
        .await
    }

    pub async fn twilio_get(&self, path: &str) -> Resp {
        send(self.twilio_request(Method::GET, path)).await
    }

    /// Creates a service and returns it.
    pub async fn service(&self, unique_name: &str) -> Value {
        let r = self.post("/services", json!({ "unique_name": unique_name })).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    /// Mints an access token through `POST /tokens`.
    pub async fn mint_token(&self, service: &str, identity: &str, ttl: u64) -> String {
        let r = self.post("/tokens", json!({ "service": service, "identity": identity, "ttl": ttl })).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["identity"], identity);
        r.body["token"].as_str().unwrap().to_owned()
    }

    /// The change log from its start, as the list of events.
    pub async fn all_changes(&self, service: &str) -> Vec<Value> {
        let r = self.get(&format!("/services/{service}/changes?from_start=true&limit=1000")).await;
        r.ok()["events"].as_array().unwrap().clone()
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/api/v1/connect?token={token}", self.server.addr)
    }

    /// Connects with `?token=` and reads the `connected` frame.
    pub async fn ws(&self, token: &str) -> WsClient {
        let (ws, _) = tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(self.ws_url(token)))
            .await
            .expect("the handshake within the timeout")
            .expect("the handshake succeeds");
        let mut client = WsClient { ws, next_id: 1 };
        let hello = client.recv().await;
        assert_eq!(hello["type"], "connected", "{hello}");
        client
    }

    /// Connects with `Authorization: Bearer` instead of `?token=`; returns the raw result.
    pub async fn ws_with_header(&self, token: &str) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        self.ws_with_authorization(&format!("Bearer {token}")).await
    }

    /// Connects with the given `Authorization` header value; returns the raw result.
    pub async fn ws_with_authorization(
        &self,
        authorization: &str,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        let mut request = format!("ws://{}/api/v1/connect", self.server.addr).into_client_request().unwrap();
        request.headers_mut().insert("authorization", authorization.parse().unwrap());
        let (ws, _) = tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .expect("the handshake within the timeout")?;
        Ok(WsClient { ws, next_id: 1 })
    }

    /// Connects with no credential at all (for first-frame authentication).
    pub async fn ws_anonymous(&self) -> WsClient {
        let url = format!("ws://{}/api/v1/connect", self.server.addr);
        let (ws, _) = tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("the handshake within the timeout")
            .expect("the handshake succeeds");
        WsClient { ws, next_id: 1 }
    }

    /// The HTTP status a failed WebSocket handshake was answered with.
    pub async fn ws_refused_status(&self, url: &str) -> u16 {
        let result = tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("the handshake within the timeout");
        match result {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("expected an HTTP refusal, got {other}"),
            Ok(_) => panic!("the handshake was expected to fail"),
        }
    }
}

/// `application/x-www-form-urlencoded` from name/value pairs.
pub fn form_body(form: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        s.append_pair(k, v);
    }
    s.finish()
}

pub async fn send(request: reqwest::RequestBuilder) -> Resp {
    let r = request.send().await.expect("the request is answered");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("the body is readable");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, headers, body, text }
}

/// Polls `check` every 50 ms until it holds; fails the test after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let wait = async {
        loop {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(limit, wait).await.is_err() {
        panic!("{what}: not within {limit:?}");
    }
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A native-protocol client. Frames come back as JSON values; a close frame reads as
/// `{"type": "closed", "code": N}` and the end of the stream as `{"type": "ended"}`.
pub struct WsClient {
    pub ws: Ws,
    next_id: u64,
}

impl From<Ws> for WsClient {
    fn from(ws: Ws) -> Self {
        WsClient { ws, next_id: 1 }
    }
}

impl WsClient {
    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::text(frame.to_string())).await.expect("the frame is sent");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.expect("the frame is sent");
    }

    /// The next frame, within [`FRAME_TIMEOUT`].
    pub async fn recv(&mut self) -> Value {
        self.recv_within(FRAME_TIMEOUT).await
    }

    pub async fn recv_within(&mut self, limit: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no frame within {limit:?}"));
            match next {
                None => return json!({ "type": "ended" }),
                Some(Err(e)) => return json!({ "type": "ended", "error": e.to_string() }),
                Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).expect("frames are JSON"),
                Some(Ok(Message::Close(c))) => {
                    return json!({ "type": "closed", "code": c.map(|c| u16::from(c.code)) });
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Sends `frame` with a fresh `id` and reads up to its reply; events read on the way are
    /// appended to `events`. Returns the reply.
    pub async fn request_collecting(&mut self, mut frame: Value, events: &mut Vec<Value>) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        frame["id"] = json!(id);
        self.send(frame).await;
        loop {
            let f = self.recv().await;
            match f["type"].as_str() {
                Some("reply") if f["id"] == id => return f,
                Some("event") => events.push(f["event"].clone()),
                Some("closed" | "ended") => panic!("the connection ended while waiting for reply {id}: {f}"),
                _ => panic!("unexpected frame while waiting for reply {id}: {f}"),
            }
        }
    }

    /// Sends `frame` and returns its reply; no event may arrive in between.
    pub async fn request(&mut self, frame: Value) -> Value {
        let mut events = Vec::new();
        let reply = self.request_collecting(frame, &mut events).await;
        assert!(events.is_empty(), "unexpected events before the reply: {events:?}");
        reply
    }

    /// Subscribes and returns the reply (which must be 200) and the catch-up events that
    /// arrived with it.
    pub async fn subscribe(&mut self, kind: &str, object: &str, since: Option<&str>) -> (Value, Vec<Value>) {
        let mut frame = json!({ "type": "subscribe", "kind": kind, "object": object });
        if let Some(s) = since {
            frame["since"] = json!(s);
        }
        let mut events = Vec::new();
        let reply = self.request_collecting(frame, &mut events).await;
        assert_eq!(reply["status"], 200, "subscribe: {reply}");
        (reply, events)
    }

    /// The next event; any other frame fails the test.
    pub async fn next_event(&mut self) -> Value {
        let f = self.recv().await;
        assert_eq!(f["type"], "event", "expected an event, got {f}");
        f["event"].clone()
    }

    /// Waits for the given number of events.
    pub async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            out.push(self.next_event().await);
        }
        out
    }
}

pub fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().expect("events carry seq")).collect()
}
