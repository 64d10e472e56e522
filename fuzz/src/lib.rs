//! What the request-body targets share: one server (embedded store in a scratch directory,
//! commits without fsync for speed) built on first use, its router called in-process, and the
//! objects the targets' requests address, created through the same router.

use axum::body::Body;
use axum::http::{Method, Request, header};
use std::sync::OnceLock;
use tower::ServiceExt;

pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
pub const AUTH_TOKEN: &str = "fuzz-auth-token-0000000000000000";

/// One request a target sends: `{svc}`, `{proxy}`, `{session}`, `{participant}` and
/// `{user}` in the path are replaced by the harness's own objects.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    /// `X-Amz-Target` for the AWS JSON protocol.
    pub amz_target: Option<&'static str>,
    /// Send the Matrix user's access token rather than root credentials.
    pub matrix: bool,
}

impl Endpoint {
    pub const fn root(method: &'static str, path: &'static str) -> Self {
        Endpoint { method, path, amz_target: None, matrix: false }
    }

    pub const fn aws(target: &'static str) -> Self {
        Endpoint { method: "POST", path: "/", amz_target: Some(target), matrix: false }
    }

    pub const fn matrix(method: &'static str, path: &'static str) -> Self {
        Endpoint { method, path, amz_target: None, matrix: true }
    }
}

pub struct Harness {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    names: Vec<(&'static str, String)>,
    matrix_token: String,
}

/// The server, started on first use. The data directory is `FERROSYNC_FUZZ_DATA` when set
/// (the test that runs the targets removes it), else a new one under the system's temp dir.
pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(Harness::start)
}

fn basic_auth() -> String {
    use base64::Engine as _;
    let raw = format!("{ACCOUNT_SID}:{AUTH_TOKEN}");
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

impl Harness {
    fn start() -> Harness {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
        let dir = match std::env::var_os("FERROSYNC_FUZZ_DATA") {
            Some(d) => std::path::PathBuf::from(d),
            None => std::env::temp_dir().join(format!("ferrosync-fuzz-{}", std::process::id())),
        };
        std::fs::create_dir_all(&dir).expect("a data directory");
        let router = runtime.block_on(async {
            let mut config = ferrosync_server::ServerConfig::new(&dir);
            config.account_sid = Some(ACCOUNT_SID.into());
            config.auth_token = Some(AUTH_TOKEN.into());
            config.durability = ferrosync_store::sqlite::Durability::Normal;
            let (engine, ..) = ferrosync_server::open_engine(&config).await.expect("the engine opens");
            let mut settings = ferrosync_server::state::Settings::default();
            settings.matrix.registration = ferrosync_server::api::matrix::RegistrationPolicy::Open;
            ferrosync_server::api::router(ferrosync_server::AppState::new(engine, settings))
        });
        let mut h = Harness { runtime, router, names: Vec::new(), matrix_token: String::new() };
        h.setup();
        h
    }

    /// A service with one object of each kind, a Proxy service with a session and a
    /// participant, and a Matrix user.
    fn setup(&mut self) {
        let json = |h: &Harness, method: &str, path: &str, body: serde_json::Value| {
            let (status, out) = h.call(method, path, "application/json", &basic_auth(), None, body.to_string().into());
            assert!(status < 300, "{path}: {status} {}", String::from_utf8_lossy(&out));
            serde_json::from_slice::<serde_json::Value>(&out).unwrap_or_default()
        };
        let form = |h: &Harness, path: &str, body: &str| {
            let (status, out) = h.call(
                "POST",
                path,
                "application/x-www-form-urlencoded",
                &basic_auth(),
                None,
                body.as_bytes().to_vec(),
            );
            assert!(status < 300, "{path}: {status} {}", String::from_utf8_lossy(&out));
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
            v["sid"].as_str().unwrap_or_default().to_owned()
        };
        let svc = json(self, "POST", "/api/v1/services", serde_json::json!({"unique_name": "fz"}));
        let svc = svc["sid"].as_str().unwrap_or("fz").to_owned();
        for (kind, name) in [("documents", "doc"), ("lists", "log"), ("maps", "m"), ("streams", "s")] {
            json(self, "POST", &format!("/api/v1/services/fz/{kind}"), serde_json::json!({"unique_name": name}));
        }
        json(self, "PUT", "/api/v1/services/fz/maps/m/items/k", serde_json::json!({"data": {"a": 1}}));
        json(self, "POST", "/api/v1/services/fz/lists/log/items", serde_json::json!({"data": {"a": 1}}));
        let proxy = form(self, "/twilio/proxy/v1/Services", "UniqueName=fz");
        form(self, &format!("/twilio/proxy/v1/Services/{proxy}/PhoneNumbers"), "PhoneNumber=%2B15555550199");
        let session = form(self, &format!("/twilio/proxy/v1/Services/{proxy}/Sessions"), "UniqueName=s1");
        let participant = form(
            self,
            &format!("/twilio/proxy/v1/Services/{proxy}/Sessions/{session}/Participants"),
            "Identifier=%2B15555550100&ProxyIdentifier=%2B15555550199",
        );
        let (status, out) = self.call(
            "POST",
            "/_matrix/client/v3/register",
            "application/json",
            "",
            None,
            br#"{"username":"fuzz","password":"fuzz pass word","auth":{"type":"m.login.dummy"}}"#.to_vec(),
        );
        assert!(status < 300, "register: {status} {}", String::from_utf8_lossy(&out));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        self.matrix_token = v["access_token"].as_str().unwrap_or_default().to_owned();
        let user = v["user_id"].as_str().unwrap_or_default().to_owned();
        self.names = vec![
            ("{svc}", svc),
            ("{proxy}", proxy),
            ("{session}", session),
            ("{participant}", participant),
            ("{user}", user),
        ];
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        authorization: &str,
        amz_target: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST))
            .uri(path)
            .header(header::CONTENT_TYPE, content_type);
        if !authorization.is_empty() {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        if let Some(target) = amz_target {
            request = request.header("x-amz-target", target);
        }
        let Ok(request) = request.body(Body::from(body)) else { return (400, Vec::new()) };
        self.runtime.block_on(async {
            let Ok(response) = self.router.clone().oneshot(request).await;
            let status = response.status().as_u16();
            let bytes =
                axum::body::to_bytes(response.into_body(), 1 << 20).await.map(|b| b.to_vec()).unwrap_or_default();
            (status, bytes)
        })
    }

    /// Sends `body` to `endpoint` as `content_type`; the status and response body.
    pub fn send(&self, endpoint: &Endpoint, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut path = endpoint.path.to_owned();
        for (name, value) in &self.names {
            path = path.replace(name, value);
        }
        let authorization = if endpoint.matrix {
            format!("Bearer {}", self.matrix_token)
        } else if endpoint.amz_target.is_some() {
            String::new()
        } else {
            basic_auth()
        };
        self.call(endpoint.method, &path, content_type, &authorization, endpoint.amz_target, body.to_vec())
    }
}

/// Picks an endpoint with the input's first byte and sends the rest as its body; anything
/// but a server error is an answer.
pub fn exercise(endpoints: &[Endpoint], content_type: &str, data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let endpoint = &endpoints[usize::from(pick) % endpoints.len()];
    let (status, out) = harness().send(endpoint, content_type, body);
    assert!(
        status < 500,
        "{} {} answered {status} to {:?}: {}",
        endpoint.method,
        endpoint.path,
        String::from_utf8_lossy(body),
        String::from_utf8_lossy(&out)
    );
}
