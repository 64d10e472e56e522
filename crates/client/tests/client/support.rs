//! A server started in-process, restartable on the same port, and the root account's REST
//! calls the tests set up with.

use ferrosync_client::{Client, ClientEvent, ClientEvents};
use ferrosync_server::state::Settings;
use ferrosync_server::{AppState, RunningServer, ServerConfig};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestServer {
    running: Option<RunningServer>,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    pub settings: Settings,
    pub account_sid: String,
    pub auth_token: String,
    http: reqwest::Client,
    pub service: String,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(Settings::default()).await
    }

    pub async fn with(settings: Settings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ServerConfig::new(dir.path());
        let (engine, creds, _) = ferrosync_server::open_engine(&cfg).await.unwrap();
        let running = RunningServer::start(AppState::new(engine, settings.clone())).await.unwrap();
        let mut server = TestServer {
            addr: running.addr,
            running: Some(running),
            dir,
            settings,
            account_sid: creds.account_sid.to_string(),
            auth_token: creds.auth_token,
            http: reqwest::Client::new(),
            service: String::new(),
        };
        server.admin("POST", "/keys", json!({})).await;
        server.service =
            server.admin("POST", "/services", json!({"unique_name": "app"})).await["sid"].as_str().unwrap().to_owned();
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A root-account request to `/api/v1{path}`; panics unless it succeeds.
    pub async fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, value) = self.admin_try(method, path, body).await;
        assert!(status < 300, "{method} {path}: {status} {value}");
        value
    }

    pub async fn admin_try(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}/api/v1{path}", self.url());
        let mut req =
            self.http.request(method.parse().unwrap(), &url).basic_auth(&self.account_sid, Some(&self.auth_token));
        if !body.is_null() {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `/api/v1/services/{service}{path}` as the root account.
    pub async fn svc(&self, method: &str, path: &str, body: Value) -> Value {
        self.admin(method, &format!("/services/{}{path}", self.service), body).await
    }

    pub async fn token(&self, identity: &str, ttl: u64) -> String {
        let minted =
            self.admin("POST", "/tokens", json!({"service": self.service, "identity": identity, "ttl": ttl})).await;
        minted["token"].as_str().unwrap().to_owned()
    }

    pub async fn client(&self, identity: &str) -> Client {
        Client::connect(&self.url(), &self.token(identity, 3600).await).await.unwrap()
    }

    /// Stops serving: connections close and the port is free.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }

    /// Serves the same data on the same port again.
    pub async fn resume(&mut self) {
        let (engine, _, _) = ferrosync_server::open_engine(&ServerConfig::new(self.dir.path())).await.unwrap();
        let state = AppState::new(engine, self.settings.clone());
        self.running = Some(RunningServer::start_at(state, self.addr).await.unwrap());
    }

    /// Runs `f` against the same data served on another port, while clients of this one are
    /// cut off: what it writes is what they must catch up on.
    pub async fn meanwhile<F: AsyncFnOnce(&TestServer)>(&mut self, f: F) {
        let (engine, _, _) = ferrosync_server::open_engine(&ServerConfig::new(self.dir.path())).await.unwrap();
        let other = RunningServer::start(AppState::new(engine, self.settings.clone())).await.unwrap();
        let side = TestServer {
            addr: other.addr,
            running: None,
            dir: tempfile::tempdir().unwrap(),
            settings: self.settings.clone(),
            account_sid: self.account_sid.clone(),
            auth_token: self.auth_token.clone(),
            http: self.http.clone(),
            service: self.service.clone(),
        };
        f(&side).await;
        other.stop().await.unwrap();
    }
}

/// The next client event that `pick` accepts, within [`WAIT`].
pub async fn next_event<T>(events: &mut ClientEvents, mut pick: impl FnMut(&ClientEvent) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = events.next().await.expect("client events ended");
            if let Some(t) = pick(&e) {
                return t;
            }
        }
    })
    .await
    .expect("no such client event in time")
}

/// The next item of `stream` within [`WAIT`].
pub async fn next<S: futures_util::Stream + Unpin>(stream: &mut S) -> S::Item {
    use futures_util::StreamExt;
    tokio::time::timeout(WAIT, stream.next()).await.expect("nothing arrived in time").expect("the stream ended")
}

/// Asserts nothing arrives on `stream` for a moment.
pub async fn quiet<S: futures_util::Stream + Unpin>(stream: &mut S)
where
    S::Item: std::fmt::Debug,
{
    use futures_util::StreamExt;
    if let Ok(Some(x)) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        panic!("unexpected: {x:?}");
    }
}
