//! The command-line tools, run as a user would run them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{
    COMMAND_TIMEOUT, DATA_AUTH_TOKEN, DATA_SID, DataServer, KillOnDrop, ferrosync, rest_at, run_bounded, stdout,
};

use std::process::{Command, Output};
use std::time::Duration;

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
    support::terminate(&mut child);
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

/// The scheduling policy of each of a process's threads, by thread name (`/proc`'s `stat`,
/// field 41: 0 is `SCHED_OTHER`, 3 `SCHED_BATCH`).
#[cfg(target_os = "linux")]
fn thread_policies(pid: u32) -> Vec<(String, u32)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|task| {
            let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap();
            let (head, rest) = stat.rsplit_once(')').unwrap();
            let name = head.split_once('(').unwrap().1.to_owned();
            // `rest` starts at field 3.
            (name, rest.split_whitespace().nth(38).unwrap().parse().unwrap())
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn the_runtimes_threads_run_as_a_batch_on_one_cpu_or_when_told() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The runtime's and the store's threads of a server started by `command`, on one CPU
    // (`taskset -c 0`) or on all.
    let policies = |one_cpu: bool, extra: &'static [&'static str]| {
        let bin = env!("CARGO_BIN_EXE_ferrosync");
        let command = || {
            if one_cpu {
                let mut c = Command::new("taskset");
                c.args(["-c", "0", bin]);
                c
            } else {
                Command::new(bin)
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let (child, _) = runtime.block_on(support::serve_by(command, dir.path(), DATA_SID, DATA_AUTH_TOKEN, extra));
        let server = KillOnDrop(child);
        let policies = thread_policies(server.0.id());
        let of = |name: &str| policies.iter().filter(|(n, _)| n == name).map(|(_, p)| *p).collect::<Vec<_>>();
        (of("tokio-rt-worker"), of("ferrosync-sqlit"))
    };
    let all = |policies: &[u32], policy: u32| !policies.is_empty() && policies.iter().all(|&p| p == policy);
    let (workers, store) = policies(true, &[]);
    assert!(all(&workers, 3), "on one CPU, runtime threads under SCHED_BATCH: {workers:?}");
    assert!(all(&store, 0), "the store's threads keep the default: {store:?}");
    let (workers, _) = policies(true, &["--thread-scheduling", "normal"]);
    assert!(all(&workers, 0), "told otherwise: {workers:?}");
    let (workers, _) = policies(false, &["--thread-scheduling", "batch"]);
    assert!(all(&workers, 3), "told to on any number of CPUs: {workers:?}");
    if std::thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
        let (workers, _) = policies(false, &[]);
        assert!(all(&workers, 0), "on several CPUs, the default: {workers:?}");
    }
}

/// On a host without CA certificates (a minimal container image; here `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` name nothing), the server still sends webhooks to an `http://` receiver, and
/// commands still work over the local socket and through the SDK over `http://`. TLS clients
/// refuse to be built there; before, the webhook, Proxy relay and Cognito Streams senders were
/// all left out at start-up, and every such command failed.
#[test]
fn a_host_without_ca_certificates_sends_plain_http_webhooks_and_runs_commands() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("no-certificates");
    let without_cas = |cmd: &mut Command| {
        cmd.env("SSL_CERT_FILE", &nowhere).env("SSL_CERT_DIR", &nowhere);
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let binary = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
        without_cas(&mut cmd);
        cmd
    };
    let (child, addr) = runtime.block_on(support::serve_by(binary, dir.path(), DATA_SID, DATA_AUTH_TOKEN, &[]));
    let _server = KillOnDrop(child);

    // A webhook receiver that answers every request 200 and hands on its text.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let (hits, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let text = read_http_request(&mut stream);
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            if hits.send(text).is_err() {
                return;
            }
        }
    });
    let twilio = |path: &str, form: &[(&str, &str)]| {
        let encode = |v: &str| percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        let request = reqwest::Client::new()
            .post(format!("http://{addr}/twilio/sync/v1{path}"))
            .basic_auth(DATA_SID, Some(DATA_AUTH_TOKEN))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"));
        runtime.block_on(async { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() })
    };
    let service =
        twilio("/Services", &[("UniqueName", "hooked"), ("WebhookUrl", &hook), ("WebhooksFromRestEnabled", "true")]);
    let service = service["sid"].as_str().unwrap().to_owned();
    let doc = twilio(&format!("/Services/{service}/Documents"), &[("UniqueName", "prefs"), ("Data", r#"{"a":1}"#)]);
    assert_eq!(doc["unique_name"], "prefs", "{doc}");
    let request = received.recv_timeout(Duration::from_secs(30)).expect("the webhook is sent");
    assert!(request.starts_with("POST /hook "), "{request}");
    assert!(request.contains("EventType=document_created"), "{request}");

    // A command over the local socket, and one through the SDK over http://.
    let mut local = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
    local
        .args(["api-key", "list", "--data-dir"])
        .arg(dir.path())
        .env("FERROSYNC_ACCOUNT_SID", DATA_SID)
        .env("FERROSYNC_AUTH_TOKEN", DATA_AUTH_TOKEN)
        .env("RUST_BACKTRACE", "0");
    without_cas(&mut local);
    let listed = run_bounded(local, None);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let mut sdk = Command::new(env!("CARGO_BIN_EXE_ferrosync"));
    sdk.args(["doc", "get", "prefs", "--data-dir"])
        .arg(dir.path())
        .args(["--url", &format!("http://{addr}")])
        .env("FERROSYNC_SERVICE", "hooked")
        .env_remove("FERROSYNC_TOKEN")
        .env_remove("FERROSYNC_IDENTITY")
        .env("FERROSYNC_ACCOUNT_SID", DATA_SID)
        .env("FERROSYNC_AUTH_TOKEN", DATA_AUTH_TOKEN)
        .env("RUST_BACKTRACE", "0");
    without_cas(&mut sdk);
    let got = run_bounded(sdk, None);
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    let got: serde_json::Value = serde_json::from_str(&stdout(&got)).unwrap();
    assert_eq!(got["data"], serde_json::json!({"a": 1}));
}

/// One HTTP/1.1 request's head and body (by its `Content-Length`), as text.
fn read_http_request(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&bytes);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return text.into_owned();
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&bytes).into_owned(),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}
