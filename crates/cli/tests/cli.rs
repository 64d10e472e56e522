//! The command-line tools, run as a user would run them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output};
use std::time::Duration;

fn ferrosync(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrosync"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("FERROSYNC_ACCOUNT_SID")
        .env_remove("FERROSYNC_AUTH_TOKEN")
        .env_remove("FERROSYNC_CONFIG")
        .output()
        .expect("runs")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn credentials_are_created_once_and_kept_private() {
    let dir = tempfile::tempdir().unwrap();
    let first = stdout(&ferrosync(dir.path(), &["credentials"]));
    let second = stdout(&ferrosync(dir.path(), &["credentials"]));
    assert_eq!(first, second, "the same credentials every time");
    assert!(first.starts_with("FERROSYNC_ACCOUNT_SID=AC"));
    assert!(first.contains("FERROSYNC_AUTH_TOKEN="));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("credentials.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn api_keys_and_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let created = stdout(&ferrosync(dir.path(), &["api-key", "create", "--name", "ci"]));
    let sid = created.lines().next().unwrap().trim_start_matches("sid:").trim().to_owned();
    assert!(sid.starts_with("SK") && sid.len() == 34, "{created}");
    assert!(created.contains("secret: "));
    let listed = stdout(&ferrosync(dir.path(), &["api-key", "list"]));
    assert!(listed.contains(&sid) && listed.contains("ci"));
    assert!(!listed.contains("secret"));

    // A token needs an existing service.
    let missing = ferrosync(dir.path(), &["token", "--service", "nope", "--identity", "alice"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    stdout(&ferrosync(dir.path(), &["api-key", "delete", &sid]));
    assert!(!stdout(&ferrosync(dir.path(), &["api-key", "list"])).contains(&sid));
    let again = ferrosync(dir.path(), &["api-key", "delete", &sid]);
    assert!(!again.status.success(), "deleting twice fails");
}

#[test]
fn a_bad_config_file_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferrosync.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:1\"\nunknown_key = 3\n").unwrap();
    let out = ferrosync(dir.path(), &["--config", config.to_str().unwrap(), "credentials"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ferrosync.toml") && err.contains("unknown_key"), "{err}");
}

#[test]
fn openapi_command_prints_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&stdout(&ferrosync(dir.path(), &["openapi"]))).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/services/{service}/changes"]["get"].is_object());
}

/// Runs `bench --quick --json` (with `extra` flags) and checks the figures every store
/// reports; returns the report.
fn bench_report(extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["bench", "--quick", "--json"];
    args.extend_from_slice(extra);
    let out = stdout(&ferrosync(dir.path(), &args));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let mut keys: Vec<&str> = report.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let figures = [
        "conditional_updates_per_s",
        "conditional_update_p99_ms",
        "cognito_syncs_per_s",
        "cognito_sync_p99_ms",
        "proxy_relays_per_s",
        "proxy_relay_p99_ms",
        "fanout_deliveries_per_s",
        "fanout_p99_ms",
        "idle_connection_bytes",
        "longpoll_wake_p99_ms",
        "reconnect_storm_s",
        "reconnect_catch_up_p99_ms",
        "matrix_incremental_sync_p50_ms",
        "matrix_incremental_sync_p99_ms",
        "matrix_longpoll_wake_p50_ms",
        "matrix_longpoll_wake_p99_ms",
        "matrix_setup_s",
        "livequery_updates_per_s",
        "sdk_increments_per_s",
        "sdk_increment_p99_ms",
        "sdk_delivery_p99_ms",
    ];
    let mut expected: Vec<&str> = figures
        .iter()
        .copied()
        .chain(["store", "cross_node_delivery_p99_ms", "cross_node_writes_per_s", "livequery_added_p99_ms"])
        .collect();
    expected.sort_unstable();
    assert_eq!(keys, expected);
    for key in figures {
        let v = report[key].as_f64().unwrap_or_else(|| panic!("{key} is a number: {report}"));
        assert!(v.is_finite() && v >= 0.0, "{key} = {v}");
    }
    assert!(report["conditional_updates_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["fanout_deliveries_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["cognito_syncs_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["proxy_relays_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["matrix_longpoll_wake_p99_ms"].as_f64().unwrap() > 0.0);
    assert!(report["livequery_updates_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["sdk_increments_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["sdk_delivery_p99_ms"].as_f64().unwrap() > 0.0);
    assert!(report["reconnect_storm_s"].as_f64().unwrap() > 0.0);
    // A difference of two p99s: finite, of either sign.
    let added = report["livequery_added_p99_ms"].as_f64().unwrap_or_else(|| panic!("added p99: {report}"));
    assert!(added.is_finite(), "{report}");
    report
}

#[test]
fn bench_prints_all_its_figures_as_json() {
    let report = bench_report(&[]);
    assert_eq!(report["store"], "sqlite");
    assert!(report["cross_node_delivery_p99_ms"].is_null(), "one node has no cross-node figure: {report}");
}

#[test]
fn bench_on_postgres_reports_the_same_figures_and_cross_node_delivery() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(url) = runtime.block_on(ferrosync_store::testing::fresh_postgres_url()) else { return };
    let report = bench_report(&["--store", &url]);
    assert_eq!(report["store"], "postgres");
    let p99 = report["cross_node_delivery_p99_ms"].as_f64().unwrap_or_else(|| panic!("cross-node p99: {report}"));
    assert!(p99 > 0.0 && p99.is_finite(), "{report}");
    assert!(report["cross_node_writes_per_s"].as_f64().unwrap() > 0.0, "{report}");
}

#[test]
fn serve_answers_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrosync"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--log-format", "json"])
        .args(["--matrix-registration", "open", "--matrix-server-name", "cli.example"])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("FERROSYNC_ACCOUNT_SID")
        .env_remove("FERROSYNC_AUTH_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    runtime.block_on(async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while http.get(format!("{base}/readyz")).send().await.map(|r| !r.status().is_success()).unwrap_or(true) {
            assert!(std::time::Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    });
    let creds = stdout(&ferrosync(dir.path(), &["credentials"]));
    let field = |name: &str| creds.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).unwrap().to_owned();
    let (sid, token) = (field("FERROSYNC_ACCOUNT_SID"), field("FERROSYNC_AUTH_TOKEN"));
    runtime.block_on(async {
        let r = http
            .post(format!("{base}/api/v1/services"))
            .basic_auth(&sid, Some(&token))
            .json(&serde_json::json!({ "unique_name": "cli" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    });
    // The Matrix flags reach the server: registration is open, on the named server.
    runtime.block_on(async {
        let body = serde_json::json!({ "username": "cli", "password": "pw", "auth": { "type": "m.login.dummy" } });
        let r = http.post(format!("{base}/_matrix/client/v3/register")).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["user_id"], "@cli:cli.example");
    });
    // A token minted from the command line is accepted by the running server.
    let minted = stdout(&ferrosync(dir.path(), &["token", "--service", "cli", "--identity", "alice", "--ttl", "600"]));
    runtime.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/v1/services/cli/documents"))
            .bearer_auth(minted.trim())
            .json(&serde_json::json!({ "unique_name": "d" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["created_by"], "alice");
    });
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "the server did not stop within 15 s of SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(exit.success(), "clean exit after SIGTERM: {exit:?}");
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    let first = logs.lines().next().unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(first).is_ok(), "--log-format json writes JSON lines: {first}");
}

#[test]
fn token_registration_without_a_token_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferrosync(dir.path(), &["serve", "--listen", "127.0.0.1:0", "--matrix-registration", "token"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("registration_token"), "names what is missing: {stderr}");
}

/// Kills a child process when dropped, so that a failed assertion leaves no server or watcher
/// behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads a pipe line by line on a thread, so that reads can be waited for with a timeout.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(pipe)) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line that satisfies `want`, within `timeout`.
fn wait_for_line(rx: &std::sync::mpsc::Receiver<String>, timeout: Duration, want: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no expected line within {timeout:?} ({e}); saw {seen:?}"),
        }
    }
}

/// Runs a command to completion within `COMMAND_TIMEOUT`, feeding it `stdin`.
fn run_bounded(cmd: Command, stdin: Option<&str>) -> Output {
    run_bounded_for(cmd, stdin, COMMAND_TIMEOUT)
}

fn run_bounded_for(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        // Dropping the handle closes the pipe: the command reads to its end.
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    }
    // Pipes are drained on threads so that a chatty command cannot block on a full pipe.
    let read_all = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let mut child = KillOnDrop(child);
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{cmd:?} did not finish within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

/// The data commands' test server: its address, data directory and root account.
struct DataServer {
    _server: KillOnDrop,
    dir: tempfile::TempDir,
    url: String,
}

const DATA_SID: &str = "AC00112233445566778899aabbccddeeff";
const DATA_AUTH_TOKEN: &str = "cli-data-commands-auth-token";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

impl DataServer {
    /// A server on a fresh data directory with the `clidata` service.
    fn start() -> (DataServer, tokio::runtime::Runtime) {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (child, addr) = runtime.block_on(support::serve(dir.path(), DATA_SID, DATA_AUTH_TOKEN, &[]));
        let server = DataServer { _server: KillOnDrop(child), dir, url: format!("http://{addr}") };
        let status = runtime.block_on(server.rest(
            reqwest::Method::POST,
            "/services",
            serde_json::json!({"unique_name": "clidata"}),
        ));
        assert_eq!(status.0, 201);
        (server, runtime)
    }

    async fn rest(&self, method: reqwest::Method, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        rest_at(&self.url, method, path, body).await
    }

    /// A command run on the server's data directory with its credentials, so that a token
    /// minted there is signed for the account the server uses.
    fn local_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
        cmd.args(args)
            .arg("--data-dir")
            .arg(self.dir.path())
            .env("FERROSYNC_ACCOUNT_SID", DATA_SID)
            .env("FERROSYNC_AUTH_TOKEN", DATA_AUTH_TOKEN)
            .env("RUST_BACKTRACE", "0")
            .env_remove("FERROSYNC_CONFIG")
            .env_remove("RUST_LOG");
        cmd
    }

    /// A data command against the server, minting its token for the `clidata` service.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.local_command(args);
        cmd.args(["--url", &self.url])
            .env("FERROSYNC_SERVICE", "clidata")
            .env_remove("FERROSYNC_TOKEN")
            .env_remove("FERROSYNC_IDENTITY");
        cmd
    }

    /// Runs a data command to completion within `COMMAND_TIMEOUT`, feeding it `stdin`.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_bounded(self.command(args), stdin)
    }

    /// Runs a command that must succeed and print JSON.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args, None);
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("`{}` prints JSON: {e}", args.join(" ")))
    }

    /// Runs a command that must fail; returns its stderr.
    fn failure(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(!out.status.success(), "`{}` should fail", args.join(" "));
        assert!(out.stdout.is_empty(), "a failure prints nothing on stdout");
        String::from_utf8(out.stderr).unwrap()
    }
}

#[test]
fn data_commands_read_write_and_watch_through_the_sdk() {
    let (server, runtime) = DataServer::start();

    // Documents: set, get, and a conditional write that is refused when stale.
    let set = server.json(&["doc", "set", "settings", r#"{"theme":"dark"}"#]);
    assert_eq!(set["data"], serde_json::json!({"theme": "dark"}));
    assert_eq!(set["unique_name"], "settings");
    let first = set["revision"].as_u64().unwrap();
    let got = server.json(&["doc", "get", "settings"]);
    assert_eq!((got["data"].clone(), got["revision"].as_u64()), (serde_json::json!({"theme": "dark"}), Some(first)));
    // JSON from stdin with `-`.
    let out = server.run(&["doc", "set", "settings", "-"], Some(r#"{"theme":"dim"}"#));
    let second: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(second["data"]["theme"], "dim");
    let second = second["revision"].as_u64().unwrap();
    assert!(second > first);
    let stale = server.failure(&["doc", "set", "settings", r#"{"theme":"x"}"#, "--if-match", &first.to_string()]);
    assert!(stale.contains(&format!("conflict: revision is {second}, If-Match was {first}")), "{stale}");
    assert_eq!(server.json(&["doc", "get", "settings"])["data"]["theme"], "dim", "a refused write changes nothing");
    let current = server.json(&["doc", "set", "settings", r#"{"theme":"light"}"#, "--if-match", &second.to_string()]);
    assert_eq!(current["data"]["theme"], "light");
    let merged = server.json(&["doc", "update", "settings", r#"{"font":12}"#]);
    assert_eq!(merged["data"], serde_json::json!({"theme": "light", "font": 12}));
    // Reads do not create what they name.
    let missing = server.failure(&["doc", "get", "nosuch"]);
    assert!(missing.contains("not found: document nosuch"), "{missing}");
    let (status, _) = runtime.block_on(server.rest(
        reqwest::Method::GET,
        "/services/clidata/documents/nosuch",
        serde_json::Value::Null,
    ));
    assert_eq!(status, 404);

    // Lists keep the order items were pushed in.
    assert_eq!(server.json(&["list", "push", "todo", r#"{"text":"milk"}"#])["index"], 0);
    assert_eq!(server.json(&["list", "push", "todo", r#"{"text":"eggs"}"#])["index"], 1);
    let items = server.json(&["list", "get", "todo"]);
    let texts: Vec<&str> = items.as_array().unwrap().iter().map(|i| i["data"]["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["milk", "eggs"]);
    let last = server.json(&["list", "get", "todo", "--order", "desc", "--limit", "1"]);
    assert_eq!(last, serde_json::json!([{"index": 1, "data": {"text": "eggs"}, "revision": 0}]));

    // Maps: set and get by key; after a removal the key is not found.
    let item = server.json(&["map", "set", "prefs", "color", r#"{"v":"red"}"#]);
    assert_eq!((item["key"].as_str(), item["data"]["v"].as_str()), (Some("color"), Some("red")));
    assert_eq!(server.json(&["map", "get", "prefs", "color"])["data"], serde_json::json!({"v": "red"}));
    // A conditional item write: a stale revision is refused and changes nothing.
    let rev = item["revision"].as_u64().unwrap().to_string();
    let stale = (item["revision"].as_u64().unwrap() + 7).to_string();
    let refused = server.failure(&["map", "set", "prefs", "color", r#"{"v":"blue"}"#, "--if-match", &stale]);
    assert!(refused.contains("conflict"), "{refused}");
    let moved = server.json(&["map", "set", "prefs", "color", r#"{"v":"green"}"#, "--if-match", &rev]);
    assert_eq!(moved["data"], serde_json::json!({"v": "green"}));
    stdout(&server.run(&["map", "remove", "prefs", "color"], None));
    let gone = server.failure(&["map", "get", "prefs", "color"]);
    assert!(gone.contains("not found") && gone.contains("color"), "{gone}");

    // Streams.
    let published = server.json(&["stream", "publish", "typing", r#"{"who":"alice"}"#]);
    assert!(published["message_sid"].as_str().unwrap().starts_with("TZ"), "{published}");

    // A token given with --token works as well (it names its own service).
    let minted =
        stdout(&run_bounded(server.local_command(&["token", "--service", "clidata", "--identity", "bob"]), None));
    let mut given = server.command(&["doc", "get", "settings", "--token", minted.trim()]);
    given.env_remove("FERROSYNC_SERVICE");
    let out = run_bounded(given, None);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()["data"]["font"], 12);

    // Watching: one JSON line per change made by another invocation.
    let mut watcher = server
        .command(&["doc", "watch", "settings"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (events, notes) = (lines_of(watcher.stdout.take().unwrap()), lines_of(watcher.stderr.take().unwrap()));
    let _watcher = KillOnDrop(watcher);
    // It says so on stderr once subscribed: a change from then on is not missed.
    wait_for_line(&notes, COMMAND_TIMEOUT, |l| l.starts_with("watching document settings"));
    let written = server.json(&["doc", "set", "settings", r#"{"theme":"watched"}"#]);
    let line = wait_for_line(&events, COMMAND_TIMEOUT, |_| true);
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["kind"], "updated", "{line}");
    assert_eq!(event["data"], serde_json::json!({"theme": "watched"}));
    assert_eq!(event["revision"], written["revision"]);
    assert_eq!(event["object_sid"], written["sid"]);
    assert_eq!((event["identity"].as_str(), event["is_local"].as_bool()), (Some("ferrosync-cli"), Some(false)));
    assert!(event["seq"].as_u64().is_some(), "{line}");
}

#[test]
fn tail_follows_the_change_log_and_resumes_from_a_token() {
    let (server, _runtime) = DataServer::start();
    server.json(&["doc", "set", "before", r#"{"n":0}"#]);

    // From now on: what is written after it starts, in order, as JSON lines.
    let mut tail = server
        .command(&["tail", "clidata", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, notes) = (lines_of(tail.stdout.take().unwrap()), lines_of(tail.stderr.take().unwrap()));
    let _tail = KillOnDrop(tail);
    wait_for_line(&notes, COMMAND_TIMEOUT, |l| l.starts_with("tailing the change log"));
    server.json(&["list", "push", "log", r#"{"n":1}"#]);
    server.json(&["map", "set", "prefs", "color", r#"{"v":"red"}"#]);
    let kinds: Vec<serde_json::Value> =
        (0..4).map(|_| serde_json::from_str(&wait_for_line(&lines, COMMAND_TIMEOUT, |_| true)).unwrap()).collect();
    let types: Vec<&str> = kinds.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["list_created", "list_item_added", "map_created", "map_item_added"], "{kinds:?}");
    assert!(kinds.windows(2).all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64()), "in log order");

    // From the start, one object only, as text; and resumed after a token: nothing before it.
    let out = stdout(&run_bounded_until(server.command(&["tail", "clidata", "--from-start", "--object", "before"]), 1));
    assert!(out.contains("document_created") && out.contains("before"), "{out}");
    let token = kinds[1]["token"].as_str().unwrap();
    let out = run_bounded_until(server.command(&["tail", "clidata", "--json", "--since", token]), 2);
    let resumed: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(resumed[0]["type"], "map_created");
    assert_eq!(resumed[1]["item_key"], "color");

    // A token from nowhere is refused plainly.
    let bad = server.failure(&["tail", "clidata", "--since", "not-a-token"]);
    assert!(bad.contains("change log") || bad.contains("token"), "{bad}");
}

/// A root-account request to `{url}/api/v1{path}`: status and JSON body.
async fn rest_at(url: &str, method: reqwest::Method, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{url}/api/v1{path}"))
        .basic_auth(DATA_SID, Some(DATA_AUTH_TOKEN));
    if !body.is_null() {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// Runs a long-running command until it has printed `lines` lines, then stops it.
fn run_bounded_until(mut cmd: Command, lines: usize) -> Output {
    let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let rx = lines_of(child.stdout.take().unwrap());
    let _child = KillOnDrop(child);
    let got: Vec<String> = (0..lines).map(|_| wait_for_line(&rx, COMMAND_TIMEOUT, |_| true)).collect();
    Output {
        status: std::process::ExitStatus::default(),
        stdout: (got.join("\n") + "\n").into_bytes(),
        stderr: Vec::new(),
    }
}

#[test]
fn a_backup_taken_under_writes_restores_every_write_acknowledged_before_it() {
    let (server, runtime) = DataServer::start();
    let list = runtime.block_on(server.rest(
        reqwest::Method::POST,
        "/services/clidata/lists",
        serde_json::json!({"unique_name": "log"}),
    ));
    let list_sid = list.1["sid"].as_str().unwrap().to_owned();
    // A writer keeps appending while the backup runs; it records each acknowledged write.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (acked, stop, url, sid) = (acked.clone(), stop.clone(), server.url.clone(), list_sid.clone());
        runtime.spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 5_000 {
                let path = format!("/services/clidata/lists/{sid}/items");
                let (status, _) =
                    rest_at(&url, reqwest::Method::POST, &path, serde_json::json!({"data": {"n": n}})).await;
                assert_eq!(status, 201);
                n += 1;
                acked.store(n, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    while acked.load(std::sync::atomic::Ordering::SeqCst) < 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before_backup = acked.load(std::sync::atomic::Ordering::SeqCst);
    let backup_dir = tempfile::tempdir().unwrap();
    let dest = backup_dir.path().join("b1");
    let out = run_bounded(server.local_command(&["backup", dest.to_str().unwrap()]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("backed up"), "{}", stdout(&out));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    runtime.block_on(writer).unwrap();
    // A second backup into the same place is refused rather than mixed in.
    let again = run_bounded(server.local_command(&["backup", dest.to_str().unwrap()]), None);
    assert!(!again.status.success());

    // Restored into a new data directory, a server there has every write acknowledged before
    // the backup began, each once and in order.
    let restored = tempfile::tempdir().unwrap();
    let mut restore = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
    restore.args(["restore", dest.to_str().unwrap(), "--data-dir", restored.path().to_str().unwrap()]);
    let out = run_bounded(restore, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Without --force it will not overwrite a database.
    let mut twice = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
    twice.args(["restore", dest.to_str().unwrap(), "--data-dir", restored.path().to_str().unwrap()]);
    let refused = run_bounded(twice, None);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));

    let (child, addr) = runtime.block_on(support::serve(restored.path(), DATA_SID, DATA_AUTH_TOKEN, &[]));
    let _restored_server = KillOnDrop(child);
    let copy_url = format!("http://{addr}");
    let mut seen = Vec::new();
    let mut path = format!("/services/clidata/lists/{list_sid}/items?page_size=1000");
    loop {
        let (status, page) = runtime.block_on(rest_at(&copy_url, reqwest::Method::GET, &path, serde_json::Value::Null));
        assert_eq!(status, 200, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["data"]["n"].as_u64().unwrap()));
        match page["meta"]["next_page_token"].as_str() {
            Some(t) => path = format!("/services/clidata/lists/{list_sid}/items?page_size=1000&page_token={t}"),
            None => break,
        }
    }
    assert!(seen.len() as u64 >= before_backup, "{} restored, {before_backup} acknowledged before", seen.len());
    assert!(seen.iter().enumerate().all(|(i, n)| *n == i as u64), "a gapless prefix of the writes");
}

#[test]
fn the_systemd_unit_example_verifies() {
    let Ok(analyze) = which_systemd_analyze() else {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    // The unit names the installed binary; point it at the one just built.
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib/systemd/ferrosync.service"))
        .unwrap();
    let unit = unit.replace("/usr/local/bin/ferrosync", env!("CARGO_BIN_EXE_ferrosync"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrosync.service");
    std::fs::write(&path, unit).unwrap();
    let out = run_bounded(
        {
            let mut c = Command::new(analyze);
            c.arg("verify").arg(&path);
            c
        },
        None,
    );
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn which_systemd_analyze() -> Result<std::path::PathBuf, ()> {
    ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .ok_or(())
}

#[test]
fn export_and_import_keep_sids_revisions_and_grants_and_finish_a_cut_dump() {
    use reqwest::Method;
    use serde_json::{Value, json};
    let (server, runtime) = DataServer::start();
    let call = |method: Method, path: &str, body: Value| {
        let (status, value) = runtime.block_on(rest_at(&server.url, method, &format!("/services/clidata{path}"), body));
        assert!(status < 300, "{path}: {status} {value}");
        value
    };
    let doc = call(Method::POST, "/documents", json!({"unique_name": "settings", "data": {"v": 1}}));
    let doc_sid = doc["sid"].as_str().unwrap().to_owned();
    call(Method::PUT, &format!("/documents/{doc_sid}"), json!({"data": {"v": 2}}));
    call(Method::PUT, &format!("/documents/{doc_sid}/permissions/alice"), json!({"read": true}));
    let list = call(Method::POST, "/lists", json!({"unique_name": "log"}));
    let list_sid = list["sid"].as_str().unwrap().to_owned();
    for n in 0..3 {
        call(Method::POST, &format!("/lists/{list_sid}/items"), json!({"data": {"n": n}}));
    }
    call(Method::DELETE, &format!("/lists/{list_sid}/items/1"), Value::Null);
    let map = call(Method::POST, "/maps", json!({"unique_name": "big"}));
    let map_sid = map["sid"].as_str().unwrap().to_owned();
    // More items than one page of the export holds.
    for n in 0..600 {
        call(Method::POST, &format!("/maps/{map_sid}/items"), json!({"key": format!("k{n:04}"), "data": {"n": n}}));
    }
    call(Method::PUT, &format!("/maps/{map_sid}/items/k0007"), json!({"data": {"n": "seven"}}));
    let before: Value = call(Method::GET, &format!("/maps/{map_sid}/items/k0007"), Value::Null);

    // Exported while the server runs.
    let work = tempfile::tempdir().unwrap();
    let dump = work.path().join("dump.ndjson");
    let out = run_bounded(server.local_command(&["export", "clidata", "--out", dump.to_str().unwrap()]), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(text.lines().last().unwrap().contains("\"end\""), "the dump ends with its end line");

    let import = |dir: &std::path::Path, file: &std::path::Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
        c.args(["import", file.to_str().unwrap(), "--data-dir", dir.to_str().unwrap()])
            .env("FERROSYNC_ACCOUNT_SID", DATA_SID)
            .env("FERROSYNC_AUTH_TOKEN", DATA_AUTH_TOKEN)
            .env_remove("RUST_LOG");
        run_bounded(c, None)
    };
    // A dump cut short is refused after importing what it holds; the whole dump then finishes it.
    let target = tempfile::tempdir().unwrap();
    let cut = work.path().join("cut.ndjson");
    let half: Vec<&str> = text.lines().take(text.lines().count() / 2).collect();
    std::fs::write(&cut, half.join("\n") + "\n").unwrap();
    let partial = import(target.path(), &cut);
    assert!(!partial.status.success());
    assert!(
        String::from_utf8_lossy(&partial.stderr).contains("ends early"),
        "{}",
        String::from_utf8_lossy(&partial.stderr)
    );
    let full = import(target.path(), &dump);
    assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));
    // Again: nothing new, nothing doubled.
    let again = import(target.path(), &dump);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("0 new objects, 0 new items"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A server on the imported store holds the same objects, revisions, items and grants.
    let (child, addr) = runtime.block_on(support::serve(target.path(), DATA_SID, DATA_AUTH_TOKEN, &[]));
    let _copy = KillOnDrop(child);
    let copy = format!("http://{addr}");
    let get = |path: &str| {
        let (status, value) =
            runtime.block_on(rest_at(&copy, Method::GET, &format!("/services/clidata{path}"), Value::Null));
        assert_eq!(status, 200, "{path}: {value}");
        value
    };
    let restored = get(&format!("/documents/{doc_sid}"));
    assert_eq!((restored["data"].clone(), restored["revision"].as_u64()), (json!({"v": 2}), Some(1)));
    assert_eq!(get(&format!("/documents/{doc_sid}/permissions/alice"))["read"], true);
    let items = get(&format!("/lists/{list_sid}/items"));
    let indexes: Vec<u64> = items["items"].as_array().unwrap().iter().map(|i| i["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [0, 2]);
    // Indexes are never reused: the next push follows the exported list's last.
    let (_, pushed) = runtime.block_on(rest_at(
        &copy,
        Method::POST,
        &format!("/services/clidata/lists/{list_sid}/items"),
        json!({"data": {"n": 3}}),
    ));
    assert_eq!(pushed["index"], 3);
    let seven = get(&format!("/maps/{map_sid}/items/k0007"));
    assert_eq!(
        (seven["data"].clone(), seven["revision"].clone()),
        (before["data"].clone(), before["revision"].clone())
    );
    let mut count = 0;
    let mut path = format!("/maps/{map_sid}/items?page_size=1000");
    loop {
        let page = get(&path);
        count += page["items"].as_array().unwrap().len();
        match page["meta"]["next_page_token"].as_str() {
            Some(t) => path = format!("/maps/{map_sid}/items?page_size=1000&page_token={t}"),
            None => break,
        }
    }
    assert_eq!(count, 600);
}

#[test]
fn export_and_import_carry_a_cognito_pool_with_its_sync_counts() {
    use ferrosync_core::auth::Principal;
    use ferrosync_core::cognito::{IdentityPoolSpec, PatchOp, PushSync, RecordPatch};
    use ferrosync_core::engine::{ListRecordsRequest, UpdateRecordsRequest};
    use ferrosync_server::ServerConfig;
    use std::collections::BTreeMap;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (source, target, work) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = |dir: &std::path::Path| {
        let mut c = ServerConfig::new(dir);
        (c.account_sid, c.auth_token) = (Some(DATA_SID.into()), Some(DATA_AUTH_TOKEN.into()));
        c
    };
    let root = Principal::Root;
    let replace = |key: &str, value: &str, sync_count: u64| RecordPatch {
        op: PatchOp::Replace,
        key: key.into(),
        value: Some(value.into()),
        sync_count,
        device_last_modified: Some(ferrosync_core::Timestamp(1_700_000_000_123)),
    };

    // A pool with an authenticated identity, records written in two syncs, a deleted dataset
    // and a subscribed push device.
    let (pool, alice, phone, before) = runtime.block_on(async {
        let (e, ..) = ferrosync_server::open_engine(&config(source.path())).await.unwrap();
        let spec = IdentityPoolSpec {
            name: "clipool".into(),
            supported_login_providers: [("graph.facebook.com".to_owned(), "app".to_owned())].into(),
            ..Default::default()
        };
        let pool = e.create_identity_pool(&root, spec).await.unwrap();
        let push_sync = PushSync { application_arns: vec!["arn:aws:sns:us-east-1:1:app/GCM/a".into()], role_arn: None };
        e.set_identity_pool_configuration(&root, &pool.id, Some(push_sync), None).await.unwrap();
        let facebook: BTreeMap<String, String> = [("graph.facebook.com".to_owned(), "alice".to_owned())].into();
        let alice = e.get_id(&pool.id, &facebook).await.unwrap();
        let creds = e.credentials_for_identity(&alice, &facebook).await.unwrap();
        let me = e.aws_secret(&creds.access_key_id, Some(&creds.session_token)).await.unwrap().principal;
        for (dataset, patches) in [
            ("notes", vec![replace("a", "1", 0), replace("b", "2", 0)]),
            ("notes", vec![replace("a", "3", 1)]),
            ("gone", vec![replace("x", "y", 0)]),
        ] {
            let listed = e.list_records(&me, &pool.id, &alice, dataset, ListRecordsRequest::default()).await.unwrap();
            let req = UpdateRecordsRequest { sync_session_token: listed.sync_session_token, device_id: None, patches };
            e.update_records(&me, &pool.id, &alice, dataset, req).await.unwrap();
        }
        e.delete_dataset(&me, &pool.id, &alice, "gone").await.unwrap();
        let phone = e.register_device(&me, &pool.id, &alice, "APNS_SANDBOX", "token-1").await.unwrap();
        e.subscribe_to_dataset(&me, &pool.id, &alice, "notes", &phone).await.unwrap();
        let svc = e.service(&root, pool.service_sid.as_str()).await.unwrap();
        let before = (
            e.pool_dump(&root, &svc).await.unwrap().unwrap(),
            e.identity_dumps(&root, &pool.id, None, 100).await.unwrap(),
        );
        (pool, alice, phone, before)
    });

    let dump = work.path().join("pool.ndjson");
    let mut export = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
    export
        .args(["export", pool.service_sid.as_str(), "--out", dump.to_str().unwrap(), "--data-dir"])
        .arg(source.path())
        .env("FERROSYNC_ACCOUNT_SID", DATA_SID)
        .env("FERROSYNC_AUTH_TOKEN", DATA_AUTH_TOKEN)
        .env_remove("RUST_LOG");
    let out = run_bounded(export, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 Cognito identities"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(text.lines().nth(1).unwrap().starts_with("{\"cognito_pool\""), "the pool follows the header");
    let import = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
        c.args(["import", dump.to_str().unwrap(), "--data-dir", target.path().to_str().unwrap()])
            .env("FERROSYNC_ACCOUNT_SID", DATA_SID)
            .env("FERROSYNC_AUTH_TOKEN", DATA_AUTH_TOKEN)
            .env_remove("RUST_LOG");
        run_bounded(c, None)
    };
    let first = import();
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success() && said.contains("1 new Cognito identities"), "{said}");
    let again = import();
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success() && said.contains("0 new Cognito identities"), "{said}");

    runtime.block_on(async {
        let (t, ..) = ferrosync_server::open_engine(&config(target.path())).await.unwrap();
        let svc = t.service(&root, pool.service_sid.as_str()).await.unwrap();
        let after = (
            t.pool_dump(&root, &svc).await.unwrap().unwrap(),
            t.identity_dumps(&root, &pool.id, None, 100).await.unwrap(),
        );
        assert_eq!(after, before, "pool, identity, logins, dataset rows and devices as exported");
        let alice_dump = &after.1[0];
        let counts: Vec<(&str, u64, bool)> =
            alice_dump.datasets.iter().map(|d| (d.name.as_str(), d.sync_count, d.exists())).collect();
        assert_eq!(counts, [("gone", 1, false), ("notes", 2, true)]);
        assert_eq!(alice_dump.devices[0].device.id, phone);
        // Records keep their own sync counts and dates.
        let records = t.list_records(&root, &pool.id, &alice, "notes", ListRecordsRequest::default()).await.unwrap();
        let got: Vec<(String, Option<String>, u64)> =
            records.records.iter().map(|r| (r.key.clone(), r.value.clone(), r.sync_count)).collect();
        assert_eq!(got, [("a".into(), Some("3".into()), 2), ("b".into(), Some("2".into()), 1)]);
        assert_eq!(records.records[0].device_last_modified, Some(ferrosync_core::Timestamp(1_700_000_000_123)));
    });
}

#[test]
fn export_and_import_carry_matrix_accounts_and_uploads() {
    use ferrosync_core::auth::{Principal, SecretBox};
    use ferrosync_core::engine::MatrixRegistration;
    use ferrosync_server::ServerConfig;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (source, target, work) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The same master key on both sides keeps access tokens valid across the move.
    let key = SecretBox::generate_key_hex();
    let config = |dir: &std::path::Path| {
        let mut c = ServerConfig::new(dir);
        (c.account_sid, c.auth_token, c.master_key) =
            (Some(DATA_SID.into()), Some(DATA_AUTH_TOKEN.into()), Some(key.clone()));
        c
    };
    let (token, media_id) = runtime.block_on(async {
        let (e, ..) = ferrosync_server::open_engine(&config(source.path())).await.unwrap();
        let r = MatrixRegistration {
            localpart: Some("alice"),
            password: Some("pass words"),
            device_id: Some("PHONE"),
            device_name: None,
        };
        let session = e.matrix_register("example.org", r).await.unwrap();
        let alice = e.matrix_caller(&session.access_token).await.unwrap().unwrap();
        let media =
            e.matrix_upload(&alice, Some("text/plain"), Some("hi.txt"), b"hello \x00 world".to_vec(), 1 << 20).await;
        (session.access_token, media.unwrap())
    });
    let dump = work.path().join("matrix.ndjson");
    let run = |args: &[&str], dir: &std::path::Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
        c.args(args)
            .arg("--data-dir")
            .arg(dir)
            .env("FERROSYNC_ACCOUNT_SID", DATA_SID)
            .env("FERROSYNC_AUTH_TOKEN", DATA_AUTH_TOKEN)
            .env("FERROSYNC_MASTER_KEY", &key)
            .env_remove("RUST_LOG");
        let out = run_bounded(c, None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = run(&["export", "matrix", "--out", dump.to_str().unwrap()], source.path());
    assert!(said.contains("1 Matrix accounts"), "{said}");
    let said = run(&["import", dump.to_str().unwrap()], target.path());
    assert!(said.contains("1 new Matrix accounts, 1 new uploads"), "{said}");
    let said = run(&["import", dump.to_str().unwrap()], target.path());
    assert!(said.contains("0 new Matrix accounts, 0 new uploads"), "{said}");
    runtime.block_on(async {
        let (t, ..) = ferrosync_server::open_engine(&config(target.path())).await.unwrap();
        let alice = t.matrix_caller(&token).await.unwrap().expect("the session carries over");
        assert_eq!((alice.user_id.as_str(), alice.device_id.as_str()), ("@alice:example.org", "PHONE"));
        let media = t.matrix_media(&media_id).await.unwrap().expect("the upload carries over");
        assert_eq!((media.content.as_slice(), media.filename.as_deref()), (&b"hello \x00 world"[..], Some("hi.txt")));
        let accounts = t.matrix_account_dumps(&Principal::Root, None, 10).await.unwrap();
        assert_eq!(accounts.len(), 1);
    });
}

#[test]
fn bench_compare_measures_every_system_and_writes_its_table_json_and_chart() {
    let peers = ["/usr/sbin/nats-server", "/usr/bin/redis-server"];
    if let Some(missing) = peers.iter().find(|p| !std::path::Path::new(p).exists()) {
        assert!(std::env::var("CI").is_err(), "{missing} is not installed (scripts/peers-for-tests installs it)");
        eprintln!("\nNOTE: {missing} is not installed, so `bench compare` was SKIPPED.\n");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (json, chart) = (work.path().join("compare.json"), work.path().join("compare.png"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
    c.args(["bench", "compare", "--quick", "--json-out", json.to_str().unwrap(), "--chart", chart.to_str().unwrap()])
        .env_remove("RUST_LOG");
    let out = run_bounded_for(c, None, Duration::from_secs(300));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["skipped"], serde_json::json!([]));
    let medians = report["medians"].as_array().unwrap();
    let systems = |workload: &str| -> Vec<String> {
        medians.iter().filter(|m| m["workload"] == workload).map(|m| m["system"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(
        systems("conditional write, 1 client"),
        ["ferrosync", "ferrosync (fsync at checkpoints)", "nats jetstream kv"]
    );
    assert_eq!(systems("write → watcher"), ["ferrosync", "nats jetstream kv"]);
    assert_eq!(systems("fan-out to 50"), ["ferrosync", "redis pub/sub"]);
    for m in medians {
        assert!(m["per_s"].as_f64().unwrap() > 0.0 && m["p99_ms"].as_f64().unwrap() > 0.0, "{m}");
        assert!(m["p99_ms"].as_f64() >= m["p50_ms"].as_f64(), "{m}");
        assert!(m["throughput_vs_ferrosync"].as_f64().is_some(), "{m}");
        assert!(table.contains(m["system"].as_str().unwrap()), "the table has a row for {m}");
    }
    let png = std::fs::read(&chart).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a drawn chart");
}

#[test]
fn bench_soak_samples_memory_and_counts_every_event() {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
    c.args(["bench", "soak", "--seconds", "6", "--connections", "100", "--documents", "10", "--rate", "20"])
        .args(["--sample-secs", "1", "--max-growth-percent", "1000", "--json"])
        .env_remove("RUST_LOG");
    let out = run_bounded_for(c, None, Duration::from_secs(120));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let writes = report["writes"].as_u64().unwrap();
    assert!(writes >= 60, "{report}");
    // Ten subscribers per document: every write reaches ten.
    assert_eq!(report["expected"].as_u64(), Some(writes * 10));
    assert_eq!(report["delivered"], report["expected"]);
    let samples = report["samples"].as_array().unwrap();
    assert!(samples.len() >= 5 && samples.iter().all(|s| s["rss_bytes"].as_u64() > Some(1 << 20)), "{report}");
}
