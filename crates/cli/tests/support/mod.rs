//! Starting the real `ferrosync` binary for the process-level tests.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `ferrosync serve` on a free loopback port with `dir` as its data directory, the given
/// root credentials and any `extra` flags, and waits until `/readyz` answers 200. Returns the
/// child and its `host:port`.
pub async fn serve(dir: &std::path::Path, sid: &str, token: &str, extra: &[&str]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_ferrosync"))
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
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("http://{addr}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    (child, addr)
}
