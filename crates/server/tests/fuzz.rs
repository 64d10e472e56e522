//! The cargo-fuzz targets in `fuzz/` (the query parser, SigV4, twilsock frames, form and JSON
//! bodies through the whole router, JSON text as the server writes it), each run from its seeds for a bounded time
//! (`FERROSYNC_FUZZ_SECS`, 20 s by default). Needs `cargo fuzz` (`.ci/run` installs it);
//! skipped, saying so, without it, never under `CI=true`. Runs on the stable toolchain with
//! `--sanitizer none`: the targets look for panics and broken invariants, which safe Rust turns
//! every memory error into.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGETS: [&str; 6] =
    ["query_parse", "sigv4_authorization", "twilsock_frame", "form_bodies", "json_bodies", "json_text"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A target directory of its own: the instrumented build must not disturb the workspace's.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target")).join("fuzz")
}

fn cargo_fuzz() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.arg("fuzz").current_dir(repo()).env("CARGO_TARGET_DIR", target_dir()).env_remove("RUSTFLAGS");
    c
}

#[test]
fn fuzz_targets_run_clean_for_a_bounded_time() {
    let installed = cargo_fuzz().arg("--version").output().is_ok_and(|o| o.status.success());
    if !installed {
        assert!(std::env::var("CI").is_err(), "cargo-fuzz is not installed (.ci/run installs it)");
        eprintln!("\nNOTE: cargo-fuzz is not installed, so the fuzz targets were SKIPPED.\n");
        return;
    }
    let secs: u64 = std::env::var("FERROSYNC_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let built = cargo_fuzz().args(["build", "--sanitizer", "none", "--dev"]).status().unwrap();
    assert!(built.success(), "the fuzz targets build");
    let mut failures = Vec::new();
    for target in TARGETS {
        let work = tempfile::tempdir().unwrap();
        let (corpus, data) = (work.path().join("corpus"), work.path().join("data"));
        std::fs::create_dir_all(&corpus).unwrap();
        let seeds = repo().join("fuzz/seeds").join(target);
        let out = cargo_fuzz()
            .args(["run", "--sanitizer", "none", "--dev", target])
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            .args(["-timeout=20", "-rss_limit_mb=2048", "-max_len=4096", "-print_final_stats=1"])
            .arg(format!("-artifact_prefix={}/", work.path().display()))
            .env("FERROSYNC_FUZZ_DATA", &data)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        let runs = log.lines().find(|l| l.starts_with("Done ")).unwrap_or("no summary").to_owned();
        eprintln!("{target}: {runs}");
        if !out.status.success() {
            // The input that failed, to replay with `cargo fuzz run <target> <file>`.
            let artifacts: Vec<String> = std::fs::read_dir(work.path())
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().contains('-'))
                .map(|e| {
                    format!("{}: {:?}", e.path().display(), String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()))
                })
                .collect();
            let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
            failures.push(format!("{target} failed; inputs {artifacts:?}\n{}", tail.join("\n")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
