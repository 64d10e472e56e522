//! What every compat suite needs: an in-process server with known credentials and an API key,
//! the suite's tools installed where missing (a Python venv, `npm ci`), and a bounded run of the
//! suite's command whose output is shown and whose exit status must be 0.
//!
//! Installs live under `target/compat/` and are redone only when the requirements (or lock
//! file) change; a lock file serialises them across test binaries running in parallel. A
//! missing interpreter skips the suite with a note, except under `CI=true`, where it fails.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::Settings;

/// The root account every compat server runs with.
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "compat-suite-auth-token-0123456789";

/// How long creating a venv or installing packages may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a command that only reports a version may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// `compat/` at the root of the repository.
pub fn compat_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat");
    dir.canonicalize().unwrap_or(dir)
}

/// `target/compat/`: venvs, markers and the install lock.
pub fn work_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("the target directory").to_path_buf();
    let dir = target.join("compat");
    fs::create_dir_all(&dir).expect("target/compat can be created");
    dir
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether `program` can be run; when it cannot, says so on the terminal (the suite is then
/// skipped) or, under `CI=true`, fails.
pub fn tool_available(program: &str, suite: &str) -> bool {
    use std::os::unix::process::CommandExt;
    let mut probe = Command::new(program);
    probe.arg("--version").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let found = match probe.process_group(0).spawn() {
        Ok(child) => wait_bounded(child, PROBE_TIMEOUT).is_some_and(|status| status.success()),
        Err(_) => false,
    };
    if !found {
        assert!(!ci(), "CI=true but `{program}` is not installed: {suite} cannot be skipped in CI");
        let _ = writeln!(std::io::stderr(), "\nNOTE: `{program}` is not installed, so {suite} was SKIPPED.\n");
    }
    found
}

/// A server on the embedded store with [`ACCOUNT_SID`] / [`AUTH_TOKEN`] as its root account and
/// one API key, created through the native API.
pub struct CompatServer {
    pub server: crate::common::Server<false>,
    pub api_key_sid: String,
    pub api_key_secret: String,
}

impl CompatServer {
    pub async fn start() -> Self {
        let mut settings = Settings::default();
        // The Matrix clients register their own users.
        settings.matrix.registration = ferrosync_server::api::matrix::RegistrationPolicy::Open;
        Self::start_with(settings).await
    }

    pub async fn start_with(settings: Settings) -> Self {
        let server = crate::common::Server::<false>::with(settings, |cfg| {
            cfg.account_sid = Some(ACCOUNT_SID.to_owned());
            cfg.auth_token = Some(AUTH_TOKEN.to_owned());
        })
        .await
        .expect("the embedded store is always available");
        assert_eq!(server.account_sid, ACCOUNT_SID);
        let key = server.post("/keys", json!({ "friendly_name": "compat suite" })).await.ok();
        CompatServer {
            api_key_sid: key["sid"].as_str().expect("the key's sid").to_owned(),
            api_key_secret: key["secret"].as_str().expect("the key's secret").to_owned(),
            server,
        }
    }

    /// Stops serving (closing connections) and removes the data directory.
    pub async fn stop(self) {
        let server = self.server;
        server.server.stop().await.expect("the server stops cleanly");
        // The rest of `server`, its data directory included, is dropped here.
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.server.server.url()
    }

    /// The variables a suite finds the server and its credentials by.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("FERROSYNC_URL", self.url()),
            ("FERROSYNC_ACCOUNT_SID", self.server.account_sid.clone()),
            ("FERROSYNC_AUTH_TOKEN", self.server.auth_token.clone()),
            ("FERROSYNC_API_KEY_SID", self.api_key_sid.clone()),
            ("FERROSYNC_API_KEY_SECRET", self.api_key_secret.clone()),
        ]
    }
}

/// A runtime to serve from while the suite's command runs on the test thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
}

/// Runs `command` with `env` added, prints its output (stdout and stderr, as it comes), and
/// fails the test unless it exits 0 within `timeout`; on timeout it is killed with its children.
pub fn run_suite(mut command: Command, env: &[(&str, String)], timeout: Duration) {
    for (name, value) in env {
        command.env(name, value);
    }
    let what = describe(&command);
    println!("compat: running {what}");
    let (status, _) = run_bounded(command, timeout, true);
    // The output was printed line by line as it came (above the failure, or live with
    // --nocapture); the failure names only the command and how it ended.
    match status {
        Some(status) => assert!(status.success(), "`{what}` failed ({status}); its output is above"),
        None => panic!("`{what}` did not finish within {timeout:?} and was killed; its output is above"),
    }
}

/// A venv for the suite whose pinned requirements are `requirements` (a `requirements.txt`),
/// created and installed where missing or stale; returns the venv's `python`.
pub fn ensure_python_venv(name: &str, requirements: &Path) -> PathBuf {
    let venv = work_dir().join(format!("{name}-venv"));
    let python = venv.join("bin").join("python");
    let wanted = fingerprint(&[read(requirements).as_slice(), &version_of("python3")]);
    let marker = venv.join(".ferrosync-installed");
    let _lock = InstallLock::acquire();
    if python.exists() && fs::read_to_string(&marker).is_ok_and(|m| m.trim() == wanted) {
        return python;
    }
    let mut create = Command::new("python3");
    create.args(["-m", "venv", "--clear"]).arg(&venv);
    install_step(create);
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"]).arg(requirements);
    install_step(pip);
    fs::write(&marker, &wanted).expect("the install marker can be written");
    python
}

/// `npm ci` in `dir` (which holds `package.json` and `package-lock.json`), redone only when the
/// lock file changed since the last install.
pub fn ensure_npm(dir: &Path) {
    let lock = dir.join("package-lock.json");
    let wanted = fingerprint(&[read(&lock).as_slice(), &version_of("node")]);
    let marker = dir.join("node_modules").join(".ferrosync-installed");
    let _lock = InstallLock::acquire();
    if fs::read_to_string(&marker).is_ok_and(|m| m.trim() == wanted) {
        return;
    }
    let mut ci = Command::new("npm");
    ci.args(["ci", "--no-audit", "--no-fund"]).current_dir(dir);
    install_step(ci);
    fs::write(&marker, &wanted).expect("the install marker can be written");
}

fn install_step(command: Command) {
    let what = describe(&command);
    println!("compat: installing: {what}");
    let (status, output) = run_bounded(command, INSTALL_TIMEOUT, false);
    match status {
        Some(status) => assert!(status.success(), "`{what}` failed ({status}):\n{}", tail(&output, 100)),
        None => panic!("`{what}` did not finish within {INSTALL_TIMEOUT:?} and was killed:\n{}", tail(&output, 100)),
    }
}

/// Holds `target/compat/install.lock` exclusively while installs run.
struct InstallLock(#[allow(dead_code)] File);

impl InstallLock {
    fn acquire() -> Self {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(work_dir().join("install.lock"))
            .expect("the install lock file can be opened");
        file.lock().expect("the install lock can be taken");
        InstallLock(file)
    }
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `program --version`, to redo an install when the interpreter changed.
fn version_of(program: &str) -> Vec<u8> {
    Command::new(program).arg("--version").output().map(|o| [o.stdout, o.stderr].concat()).unwrap_or_default()
}

/// FNV-1a over the parts, as hex: stable across toolchains, unlike `DefaultHasher`.
fn fingerprint(parts: &[&[u8]]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0xff]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

fn tail(output: &str, lines: usize) -> String {
    let all: Vec<&str> = output.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `command` in its own process group with stdout and stderr piped, collecting (and, when
/// `echo`, printing) every line; kills the whole group when `timeout` passes (the status is then
/// `None`).
fn run_bounded(mut command: Command, timeout: Duration, echo: bool) -> (Option<ExitStatus>, String) {
    use std::os::unix::process::CommandExt;
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let what = describe(&command);
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
    let output = Arc::new(Mutex::new(String::new()));
    let readers = [
        forward(child.stdout.take().expect("piped stdout"), output.clone(), echo),
        forward(child.stderr.take().expect("piped stderr"), output.clone(), echo),
    ];
    let status = wait_bounded(child, timeout);
    for reader in readers {
        let _ = reader.join();
    }
    let output = output.lock().expect("the output buffer").clone();
    (status, output)
}

fn forward(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>, echo: bool) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if echo {
                println!("{line}");
            }
            let mut all = into.lock().expect("the output buffer");
            all.push_str(&line);
            all.push('\n');
        }
    })
}

/// Waits for `child`; past `timeout` kills its process group (it leads one) and returns `None`.
fn wait_bounded(mut child: std::process::Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
