//! A server started in-process on 127.0.0.1 with a temporary data dir, and clients for it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub struct Server {
    pub running: ferrosync_server::RunningServer,
    pub engine: Arc<ferrosync_core::Engine>,
    pub http: reqwest::Client,
    pub sid: String,
    pub token: String,
    _dir: tempfile::TempDir,
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Server {
    pub async fn default() -> Server {
        Server::start(Default::default()).await
    }

    pub async fn start(settings: ferrosync_server::state::Settings) -> Server {
        Server::configured(settings, |_| {}).await
    }

    /// A server whose configuration `adjust` may change first (limits, retention…).
    pub async fn configured(
        settings: ferrosync_server::state::Settings,
        adjust: impl FnOnce(&mut ferrosync_server::ServerConfig),
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ferrosync_server::ServerConfig::new(dir.path());
        adjust(&mut cfg);
        let (engine, creds, _) = ferrosync_server::open_engine(&cfg).unwrap();
        let state = ferrosync_server::AppState::new(engine.clone(), settings);
        let running = ferrosync_server::RunningServer::start(state).await.unwrap();
        Server {
            running,
            engine,
            http: reqwest::Client::new(),
            sid: creds.account_sid.to_string(),
            token: creds.auth_token,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.running.url())
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).basic_auth(&self.sid, Some(&self.token));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!(status < 300, "POST {path}: {status} {v}");
        v
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.call(reqwest::Method::PUT, path, Some(body)).await;
        assert!(status < 300, "PUT {path}: {status} {v}");
        v
    }

    pub async fn token_for(&self, service: &str, identity: &str, ttl: u64) -> String {
        let v = self.post("/tokens", json!({ "service": service, "identity": identity, "ttl": ttl })).await;
        v["token"].as_str().unwrap().to_owned()
    }

    pub async fn connect(&self, token: &str) -> Ws {
        let url = format!("ws://{}/api/v1/connect?token={token}", self.running.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let hello = next_json(&mut ws).await;
        assert_eq!(hello["type"], "connected");
        ws
    }
}

pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame within 10 s");
        match msg.expect("open").expect("readable") {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => return json!({ "type": "closed", "code": c.map(|c| u16::from(c.code)) }),
            _ => continue,
        }
    }
}

pub async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// Reads frames until the reply with `id`, collecting events seen on the way.
pub async fn reply(ws: &mut Ws, id: u64, events: &mut Vec<Value>) -> Value {
    loop {
        let f = next_json(ws).await;
        match f["type"].as_str() {
            Some("reply") if f["id"] == id => return f,
            Some("event") => events.push(f["event"].clone()),
            Some("closed") => panic!("closed while waiting for reply {id}"),
            _ => {}
        }
    }
}

pub async fn next_event(ws: &mut Ws) -> Value {
    loop {
        let f = next_json(ws).await;
        if f["type"] == "event" {
            return f["event"].clone();
        }
        assert_ne!(f["type"], "closed", "closed while waiting for an event");
    }
}
