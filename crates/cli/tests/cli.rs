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

#[test]
fn bench_prints_all_six_figures_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout(&ferrosync(dir.path(), &["bench", "--quick", "--json"]));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let keys: Vec<&str> = report.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "conditional_updates_per_s",
        "conditional_update_p99_ms",
        "fanout_deliveries_per_s",
        "fanout_p99_ms",
        "idle_connection_bytes",
        "longpoll_wake_p99_ms",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    for key in expected {
        let v = report[key].as_f64().unwrap_or_else(|| panic!("{key} is a number: {report}"));
        assert!(v.is_finite() && v >= 0.0, "{key} = {v}");
    }
    assert!(report["conditional_updates_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["fanout_deliveries_per_s"].as_f64().unwrap() > 0.0);
}
