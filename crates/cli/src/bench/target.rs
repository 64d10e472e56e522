//! The server a bench phase loads: started as a child process (pinned to a core if asked) or
//! reached at `--url`, and what the bench reads of it (memory, CPU time).

use super::BenchArgs;
use anyhow::{Context, bail};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(super) struct Target {
    pub base: String,
    pub http: reqwest::Client,
    pub sid: String,
    pub token: String,
    pub pid: Option<u32>,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A size field (`VmRSS:`, `RssAnon:`) of process `pid`'s `/proc` status, in bytes (Linux).
pub(super) fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    proc_number(pid, "status", field).map(|kb| kb * 1024)
}

/// A numeric field of one of process `pid`'s `/proc` files (`status`'s `Threads:`; sizes are
/// in kB).
fn proc_number(pid: u32, file: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The CPU time a process has used so far, every thread (ended ones too), in seconds: in user
/// space and in the kernel, from its `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CpuTimes {
    pub user: f64,
    pub system: f64,
}

impl CpuTimes {
    /// `None` without a process (an external server) or off Linux.
    pub(super) fn of(pid: Option<u32>) -> Option<CpuTimes> {
        parse_stat(&std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?)
    }

    fn since(self, before: CpuTimes) -> CpuTimes {
        CpuTimes { user: self.user - before.user, system: self.system - before.system }
    }

    pub(super) fn total(self) -> f64 {
        self.user + self.system
    }
}

/// A process's CPU time from when the clock started.
pub(super) struct CpuClock {
    pid: Option<u32>,
    start: Option<CpuTimes>,
}

impl CpuClock {
    pub(super) fn start(pid: Option<u32>) -> CpuClock {
        CpuClock { pid, start: CpuTimes::of(pid) }
    }

    /// This process's own.
    fn own() -> CpuClock {
        CpuClock::start(Some(std::process::id()))
    }

    pub(super) fn used(&self) -> Option<CpuTimes> {
        Some(CpuTimes::of(self.pid)?.since(self.start?))
    }
}

/// `utime` and `stime` of a `/proc/PID/stat` line.
fn parse_stat(stat: &str) -> Option<CpuTimes> {
    // The command name, in parentheses, may hold spaces and parentheses: fields are counted
    // after its last `)`, where the third field (the state) begins.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_ascii_whitespace();
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // Clock ticks of USER_HZ, which Linux fixes at 100 for what it shows user space.
    Some(CpuTimes { user: utime / 100.0, system: stime / 100.0 })
}

/// The CPU time a part of a run took: the server's, and the load generator's (this process),
/// which is half of every round trip a lone client waits for.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RunCpu {
    pub server: Option<CpuTimes>,
    pub generator: Option<CpuTimes>,
}

/// Both clocks of a [`RunCpu`].
pub(super) struct RunClock {
    server: CpuClock,
    generator: CpuClock,
}

impl RunClock {
    pub(super) fn start(pid: Option<u32>) -> RunClock {
        RunClock { server: CpuClock::start(pid), generator: CpuClock::own() }
    }

    pub(super) fn used(&self) -> RunCpu {
        RunCpu { server: self.server.used(), generator: self.generator.used() }
    }
}

/// Prints server and generator CPU use of a phase (table mode only).
pub(super) struct CpuMeter {
    clock: RunClock,
    wall: Instant,
}

impl CpuMeter {
    pub(super) fn start(target: &Target) -> Self {
        CpuMeter { clock: RunClock::start(target.pid), wall: Instant::now() }
    }

    pub(super) fn report(self, phase: &str, quiet: bool) {
        if quiet {
            return;
        }
        let wall = self.wall.elapsed().as_secs_f64();
        let used = self.clock.used();
        if let (Some(server), Some(own)) = (used.server.map(CpuTimes::total), used.generator.map(CpuTimes::total)) {
            eprintln!("bench: {phase}: {wall:.1} s wall, server {server:.1} s CPU, generator {own:.1} s CPU");
        }
    }
}

/// The bench's HTTP client. One that never speaks TLS does without the system's CA
/// certificates, which a TLS client reads as it is built (and, on a host with none, is not).
pub(super) fn http_client(tls: bool) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder().pool_max_idle_per_host(4096).tcp_nodelay(true);
    if tls { builder.build() } else { builder.tls_certs_only([]).build() }
}

pub(super) async fn start_target(args: &BenchArgs) -> anyhow::Result<Target> {
    if let Some(url) = &args.url {
        let (Some(sid), Some(token)) = (args.account_sid.clone(), args.auth_token.clone()) else {
            bail!("--url needs --account-sid and --auth-token (or FERROSYNC_ACCOUNT_SID / FERROSYNC_AUTH_TOKEN)");
        };
        return Ok(Target {
            base: url.trim_end_matches('/').to_owned(),
            http: http_client(url.starts_with("https://"))?,
            sid,
            token,
            pid: args.server_pid,
            child: None,
            _dir: None,
        });
    }
    let sid = format!("AC{}", ferrosync_core::auth::random_hex(16));
    let token = ferrosync_core::auth::random_hex(16);
    spawn_node(&NodeOptions { store: args.store.as_deref(), ..NodeOptions::default() }, &sid, &token).await
}

/// How a bench server is started.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct NodeOptions<'a> {
    /// `None`: the embedded store in a temporary directory.
    pub store: Option<&'a str>,
    /// The CPU the server runs on (`taskset`), apart from the load generator's.
    pub cpu: Option<usize>,
    /// Commits reach the disk at checkpoints only (`synchronous = NORMAL`), not every commit.
    pub relaxed_durability: bool,
}

/// `program` run through `taskset -c cpu` when a CPU is given.
pub(super) fn pinned_command(program: &std::ffi::OsStr, cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Starts a server as a child process on a free port (on `store`, else the embedded store in a
/// temporary directory) and waits until it is ready. Nodes given the same PostgreSQL store and
/// credentials form one cluster.
///
/// A port found free can be taken by another process before the server binds it. The server
/// then exits, and the bench starts it again on another port; a server answering on the port
/// that does not know the bench's credentials is never taken for it.
pub(super) async fn spawn_node(options: &NodeOptions<'_>, sid: &str, token: &str) -> anyhow::Result<Target> {
    let http = http_client(false)?;
    for _ in 0..PORT_ATTEMPTS {
        let mut target = start_node(options, sid, token, http.clone())?;
        if target.wait_ready().await? {
            return Ok(target);
        }
    }
    bail!("the server could not listen on a free port in {PORT_ATTEMPTS} attempts")
}

/// Ports a server the bench starts is tried on in turn: a port found free ([`free_port`]) can
/// be taken by another process before the server binds it, and the server then exits.
pub(super) const PORT_ATTEMPTS: usize = 5;

/// A loopback port found free a moment ago.
pub(super) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits up to 20 s until the server `child` runs answers as itself (`answers`): true, or
/// false if it exited first (its port was taken). Another program that took the port answers,
/// but not as the server, so it is never taken for it.
pub(super) async fn wait_answering(child: &mut Child, mut answers: impl AsyncFnMut() -> bool) -> anyhow::Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait()?.is_some() {
            return Ok(false);
        }
        if answers().await {
            return Ok(child.try_wait()?.is_none());
        }
        if Instant::now() > deadline {
            bail!("the server did not answer within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A server started on a port found free, not yet waited for.
fn start_node(options: &NodeOptions<'_>, sid: &str, token: &str, http: reqwest::Client) -> anyhow::Result<Target> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let mut command = pinned_command(std::env::current_exe()?.as_os_str(), options.cpu);
    command.args(["serve", "--listen", &format!("127.0.0.1:{port}")]).arg("--data-dir").arg(dir.path());
    if let Some(store) = options.store {
        command.args(["--store", store]);
    }
    if options.relaxed_durability {
        command.env("FERROSYNC_DURABILITY", "normal");
    }
    let child = command
        .env("FERROSYNC_ACCOUNT_SID", sid)
        .env("FERROSYNC_AUTH_TOKEN", token)
        .env("RUST_LOG", "warn")
        // The Matrix phase registers its users through the API.
        .env("FERROSYNC_MATRIX_REGISTRATION", "open")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the server")?;
    Ok(Target {
        base: format!("http://127.0.0.1:{port}"),
        http,
        sid: sid.to_owned(),
        token: token.to_owned(),
        pid: Some(child.id()),
        child: Some(child),
        _dir: Some(dir),
    })
}

impl Target {
    pub(super) async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.sid, Some(&self.token))
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {v}");
        }
        Ok(v)
    }

    /// Waits until the server started is ready and answers to the bench's credentials: true,
    /// or false if it exited first (its port was taken).
    async fn wait_ready(&mut self) -> anyhow::Result<bool> {
        let mut child = self.child.take().context("no server was started")?;
        let answering = wait_answering(&mut child, async || self.answers_as_itself().await).await;
        self.child = Some(child);
        answering
    }

    /// Whether the server on the port is ready and knows the bench's credentials.
    async fn answers_as_itself(&self) -> bool {
        let ready = self.http.get(format!("{}/readyz", self.base)).send().await;
        if !ready.is_ok_and(|r| r.status().is_success()) {
            return false;
        }
        let listed = self
            .http
            .get(format!("{}/api/v1/services?page_size=1", self.base))
            .basic_auth(&self.sid, Some(&self.token))
            .send()
            .await;
        listed.is_ok_and(|r| r.status().is_success())
    }

    pub(super) fn rss_bytes(&self) -> Option<u64> {
        self.status_bytes("VmRSS:")
    }

    /// The anonymous part of the resident set: the heap and stacks, without the program's own
    /// code and files mapped in, which the kernel pages in and out as it likes.
    pub(super) fn anon_bytes(&self) -> Option<u64> {
        self.status_bytes("RssAnon:")
    }

    fn status_bytes(&self, field: &str) -> Option<u64> {
        status_bytes(self.pid?, field)
    }

    /// The server's threads: its runtime's workers and however many blocking threads it has.
    pub(super) fn threads(&self) -> Option<u64> {
        proc_number(self.pid?, "status", "Threads:")
    }

    /// How much of the server's anonymous memory is in transparent huge pages: the kernel's
    /// khugepaged fills a sparsely used 2 MB range up to a whole huge page, growing the resident
    /// set without the program allocating a byte.
    pub(super) fn huge_page_bytes(&self) -> Option<u64> {
        proc_number(self.pid?, "smaps_rollup", "AnonHugePages:").map(|kb| kb * 1024)
    }

    /// CPU seconds the server process has used (Linux), to tell server cost from generator cost.
    pub(super) fn server_cpu(&self) -> Option<f64> {
        CpuTimes::of(self.pid).map(CpuTimes::total)
    }

    pub(super) fn ws_url(&self, token: &str) -> String {
        format!("{}/api/v1/connect?token={token}", self.base.replacen("http", "ws", 1))
    }
}

/// A form body (`application/x-www-form-urlencoded`), as the Twilio faces read them; a name
/// may repeat.
pub(super) fn form(pairs: &[(&str, &str)]) -> String {
    let mut body = reqwest::Url::parse("http://form.invalid/").unwrap_or_else(|_| unreachable!());
    // The encoder of a URL's query is the form encoder.
    body.query_pairs_mut().extend_pairs(pairs);
    body.query().unwrap_or_default().to_owned()
}

/// One form-encoded call of a Twilio face with the account's credentials (`base`, `sid`,
/// `token`); its JSON answer, or an error naming the call and the server's answer.
pub(super) async fn twilio_call(
    http: &reqwest::Client,
    (base, sid, token): (&str, &str, &str),
    method: reqwest::Method,
    path: &str,
    pairs: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let r = http
        .request(method.clone(), format!("{base}{path}"))
        .basic_auth(sid, Some(token))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{method} {path}: {status} {v}");
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on the port that is ready but does not know the bench's credentials (another
    /// process's, which took the port first) is not taken for the bench's: the wait ends when
    /// the bench's own server exits, so that it can be started on another port.
    #[tokio::test]
    async fn a_server_that_took_the_port_first_is_not_taken_for_the_benchs() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("its address").port();
        // Ready, and refusing every credential.
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = vec![0u8; 4096];
                let n = socket.read(&mut request).await.unwrap_or(0);
                let status = if request[..n].starts_with(b"GET /readyz ") { "200 OK" } else { "401 Unauthorized" };
                let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        let mut target = Target {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            sid: "AC0".into(),
            token: "t".into(),
            pid: None,
            // The bench's own server, failing to bind: it exits at once.
            child: Some(Command::new("false").spawn().expect("a child")),
            _dir: None,
        };
        assert!(!target.answers_as_itself().await, "ready, but not with the bench's credentials");
        assert!(!target.wait_ready().await.expect("no error"), "the wait ends with the child's exit");
    }

    #[test]
    fn cpu_times_are_read_past_a_command_name_with_spaces_and_parentheses() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
        let stat = "4242 (ferro (sync) x) S 1 4242 4242 0 -1 4194560 1200 0 3 0 1234 567 0 0 20 0 9 0 100 0";
        assert_eq!(parse_stat(stat), Some(CpuTimes { user: 12.34, system: 5.67 }));
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_stat("no command name"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu_and_time_only_adds_to_it() {
        let clock = CpuClock::own();
        assert!(clock.start.is_some(), "Linux has /proc");
        // Busy until the clock moves (a tick is 10 ms), for at most ten seconds.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        let (mut x, mut used) = (0u64, CpuTimes { user: 0.0, system: 0.0 });
        while used.total() == 0.0 && Instant::now() < deadline {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            used = clock.used().expect("still there");
        }
        assert!(used.user >= 0.0 && used.system >= 0.0, "{used:?}");
        assert!(used.total() > 0.0, "busy work shows in the process's CPU time: {used:?}");
        let total = CpuTimes::of(Some(std::process::id())).map(CpuTimes::total);
        assert_eq!(total.map(|s| s > 0.0), Some(true), "the total the phases print");
        assert_eq!(CpuTimes::of(None), None);
        assert!(CpuClock::start(None).used().is_none(), "no process, no figure");
    }
}
