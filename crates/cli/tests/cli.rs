//! The command-line tools, run as a user would run them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

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
        "matrix_incremental_sync_p50_ms",
        "matrix_incremental_sync_p99_ms",
        "matrix_longpoll_wake_p50_ms",
        "matrix_longpoll_wake_p99_ms",
        "matrix_setup_s",
        "livequery_updates_per_s",
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
