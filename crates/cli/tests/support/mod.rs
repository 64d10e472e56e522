//! Starting the real `ferrosync` binary for the process-level tests, running its commands with
//! a time bound, and the data commands' test server.

// Each test binary uses some of these.
#![allow(dead_code)]

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Starts `ferrosync serve` on a free loopback port with `dir` as its data directory, the given
/// root credentials and any `extra` flags, and waits until it is ready. Returns the child and
/// its `host:port`.
pub async fn serve(dir: &std::path::Path, sid: &str, token: &str, extra: &[&str]) -> (Child, String) {
    serve_by(|| Command::new(env!("CARGO_BIN_EXE_ferrosync")), dir, sid, token, extra).await
}

/// [`serve`] by the command `command` makes, which runs the binary (through `taskset`, say).
///
/// A port found free can be taken by another test's server before this one binds it: this one
/// then exits and is started again on another port. A server on the port that does not know
/// these credentials is never taken for this one.
pub async fn serve_by(
    command: impl Fn() -> Command,
    dir: &std::path::Path,
    sid: &str,
    token: &str,
    extra: &[&str],
) -> (Child, String) {
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let mut child = command()
            .args(["serve", "--listen", &addr])
            .args(extra)
            .arg("--data-dir")
            .arg(dir)
            .env("FERROSYNC_ACCOUNT_SID", sid)
            .env("FERROSYNC_AUTH_TOKEN", token)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if child.try_wait().expect("the child's status").is_some() {
                break;
            }
            let ready = http.get(format!("http://{addr}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                let own = http.get(format!("http://{addr}/api/v1/services?page_size=1")).basic_auth(sid, Some(token));
                if own.send().await.is_ok_and(|r| r.status().is_success()) {
                    return (child, addr);
                }
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    panic!("the server could not listen on a free port in five attempts")
}

pub fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Kills a child process when dropped, so that a failed assertion leaves no server or watcher
/// behind.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM and waits up to 15 s for a clean exit.
pub fn terminate(child: &mut Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = exit_within(child, Duration::from_secs(15)).expect("the process stops within 15 s of SIGTERM");
    assert!(exit.success(), "clean exit after SIGTERM: {exit:?}");
}

/// The child's exit status, once it has exited; `None` if it is still running after `timeout`.
fn exit_within(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            return Some(exit);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command to completion within `COMMAND_TIMEOUT`, feeding it `stdin`.
pub fn run_bounded(cmd: Command, stdin: Option<&str>) -> Output {
    run_bounded_for(cmd, stdin, COMMAND_TIMEOUT)
}

/// Runs a command to completion within `timeout`, feeding it `stdin`; its pipes are drained
/// on threads so that a chatty command cannot block.
pub fn run_bounded_for(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Output {
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
    let status =
        exit_within(&mut child.0, timeout).unwrap_or_else(|| panic!("{cmd:?} did not finish within {timeout:?}"));
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

/// The data commands' test server: its address, data directory and root account.
pub struct DataServer {
    _server: KillOnDrop,
    pub dir: tempfile::TempDir,
    pub url: String,
}

pub const DATA_SID: &str = "AC00112233445566778899aabbccddeeff";
pub const DATA_AUTH_TOKEN: &str = "cli-data-commands-auth-token";
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

impl DataServer {
    /// A server on a fresh data directory with the `clidata` service.
    pub fn start() -> (DataServer, tokio::runtime::Runtime) {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (child, addr) = runtime.block_on(serve(dir.path(), DATA_SID, DATA_AUTH_TOKEN, &[]));
        let server = DataServer { _server: KillOnDrop(child), dir, url: format!("http://{addr}") };
        let status = runtime.block_on(server.rest(
            reqwest::Method::POST,
            "/services",
            serde_json::json!({"unique_name": "clidata"}),
        ));
        assert_eq!(status.0, 201);
        (server, runtime)
    }

    /// Kills the server as `kill -9` would, and waits for it to be gone.
    pub fn kill(&mut self) {
        self._server.0.kill().unwrap();
        self._server.0.wait().unwrap();
    }

    pub async fn rest(&self, method: reqwest::Method, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        rest_at(&self.url, method, path, body).await
    }

    /// A command run on the server's data directory with its credentials, so that a token
    /// minted there is signed for the account the server uses.
    pub fn local_command(&self, args: &[&str]) -> Command {
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
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.local_command(args);
        cmd.args(["--url", &self.url])
            .env("FERROSYNC_SERVICE", "clidata")
            .env_remove("FERROSYNC_TOKEN")
            .env_remove("FERROSYNC_IDENTITY");
        cmd
    }

    /// Runs a data command to completion within `COMMAND_TIMEOUT`, feeding it `stdin`.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_bounded(self.command(args), stdin)
    }

    /// Runs a command that must succeed and print JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args, None);
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("`{}` prints JSON: {e}", args.join(" ")))
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn failure(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(!out.status.success(), "`{}` should fail", args.join(" "));
        assert!(out.stdout.is_empty(), "a failure prints nothing on stdout");
        String::from_utf8(out.stderr).unwrap()
    }
}

/// A root-account request to `{url}/api/v1{path}`: status and JSON body.
pub async fn rest_at(
    url: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
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

/// `ferrosync ARGS` on data directory `dir`, to completion.
pub fn ferrosync(dir: &std::path::Path, args: &[&str]) -> Output {
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
