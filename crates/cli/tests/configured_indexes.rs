//! `[[indexes]]` in the configuration file, through `ferrosync serve` as a user runs it:
//! declared before the server serves, unchanged by a restart with the same file, and a bad
//! entry stops the server before it starts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
log_format = "json"

[[indexes]]
service = "catalog"
name = "by-x"
map = "things"
fields = ["data.x"]

[[indexes]]
service = "catalog"
name = "all-things"
map_prefix = "thing"
"#;

fn ferrosync(dir: &Path, config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
    command
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .env_remove("FERROSYNC_ACCOUNT_SID")
        .env_remove("FERROSYNC_AUTH_TOKEN")
        .env_remove("FERROSYNC_CONFIG")
        .env_remove("FERROSYNC_STORE")
        .env_remove("FERROSYNC_LISTEN");
    command
}

/// `ferrosync serve` on a free port, once it answers `/readyz`.
fn serve(runtime: &tokio::runtime::Runtime, dir: &Path, config: &Path) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = ferrosync(dir, config, &["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/readyz")).send().await.map(|r| !r.status().is_success()).unwrap_or(true) {
            if let Some(exit) = child.try_wait().unwrap() {
                let mut logs = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
                panic!("the server exited ({exit}): {logs}");
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
    (child, base)
}

/// SIGTERM, then the server's log.
fn stop(mut child: Child) -> String {
    support::terminate(&mut child);
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    logs
}

fn succeeded(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

struct Admin {
    http: reqwest::Client,
    base: String,
    sid: String,
    token: String,
}

impl Admin {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request =
            self.http.request(method, format!("{}/api/v1{path}", self.base)).basic_auth(&self.sid, Some(&self.token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.send(method.clone(), path, body).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {body}");
        body
    }
}

/// The JSON log line whose message is `message`.
fn log_line(logs: &str, message: &str) -> Value {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == message)
        .unwrap_or_else(|| panic!("no '{message}' in the log:\n{logs}"))
}

#[test]
fn serve_declares_the_configured_indexes_and_a_restart_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferrosync.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let (child, base) = serve(&runtime, dir.path(), &config);
    let creds = succeeded(&ferrosync(dir.path(), &config, &["credentials"]).output().unwrap());
    let field = |name: &str| creds.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).unwrap().to_owned();
    let mut admin = Admin {
        http: reqwest::Client::new(),
        base,
        sid: field("FERROSYNC_ACCOUNT_SID"),
        token: field("FERROSYNC_AUTH_TOKEN"),
    };
    let before = runtime.block_on(async {
        use reqwest::Method;
        // The service the file names was created, with both indexes.
        let indexes = admin.ok(Method::GET, "/services/catalog/indexes", None).await;
        assert_eq!(
            indexes,
            json!([
                { "name": "by-x", "map": "things", "fields": ["data.x"] },
                { "name": "all-things", "map_prefix": "thing", "fields": [] },
            ])
        );
        admin.ok(Method::POST, "/services/catalog/maps", Some(json!({ "unique_name": "things" }))).await;
        for (key, x) in [("a", "y"), ("b", "z"), ("c", "y")] {
            let path = format!("/services/catalog/maps/things/items/{key}");
            admin.ok(Method::PUT, &path, Some(json!({ "data": { "x": x } }))).await;
        }
        let found = admin
            .ok(Method::POST, "/services/catalog/indexes/by-x/query", Some(json!({ "query": "data.x == \"y\"" })))
            .await;
        let keys: Vec<&str> = found["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
        assert_eq!(keys, ["a", "c"], "{found}");
        // An index declared through the API only.
        admin.ok(Method::PUT, "/services/catalog/indexes/api-only", Some(json!({ "map": "things" }))).await;
        admin.ok(Method::GET, "/services/catalog", None).await
    });
    let logs = stop(child);
    let first = log_line(&logs, "configured indexes declared");
    assert_eq!(first["fields"]["changed"], 2, "{first}");
    assert_eq!(first["fields"]["services_created"], 1, "{first}");

    // The same file again.
    let (child, base) = serve(&runtime, dir.path(), &config);
    admin.base = base;
    runtime.block_on(async {
        use reqwest::Method;
        let after = admin.ok(Method::GET, "/services/catalog", None).await;
        assert_eq!(after["sid"], before["sid"]);
        assert_eq!(after["revision"], before["revision"], "unchanged: {before} {after}");
        let indexes = admin.ok(Method::GET, "/services/catalog/indexes", None).await;
        let names: Vec<&str> = indexes.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["by-x", "all-things", "api-only"], "the API's index is kept");
        let found = admin
            .ok(Method::POST, "/services/catalog/indexes/by-x/query", Some(json!({ "query": "data.x == \"y\"" })))
            .await;
        assert_eq!(found["items"].as_array().map(Vec::len), Some(2), "{found}");
    });
    let logs = stop(child);
    let second = log_line(&logs, "configured indexes declared");
    assert_eq!((second["fields"]["changed"].as_u64(), second["fields"]["unchanged"].as_u64()), (Some(0), Some(2)));
    assert_eq!(second["fields"]["services_created"], 0);
}

#[test]
fn a_bad_index_entry_stops_serve_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferrosync.toml");
    let entry = "[[indexes]]\nservice = \"catalog\"\nname = \"by-x\"\nmap = \"things\"\nmap_prefix = \"thing\"\n";
    std::fs::write(&config, format!("listen = \"127.0.0.1:0\"\n\n{entry}")).unwrap();
    let out = ferrosync(dir.path(), &config, &["serve"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ferrosync.toml") && err.contains("line 3"), "{err}");
    assert!(err.contains("index 'by-x' of service 'catalog'") && err.contains("not both"), "{err}");
    assert!(!dir.path().join("data").exists(), "nothing was created");

    // A service given by SID must exist: the start fails, naming the entry.
    let sid = "IS0123456789abcdef0123456789abcdef";
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:0\"\n[[indexes]]\nservice = \"{sid}\"\nname = \"i\"\nmap = \"m\"\n"),
    )
    .unwrap();
    let out = ferrosync(dir.path(), &config, &["serve"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("index 'i'") && err.contains(sid) && err.contains("not found"), "{err}");
}
