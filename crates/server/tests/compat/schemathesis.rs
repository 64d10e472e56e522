//! schemathesis (pinned in `compat/schemathesis/requirements.txt`) fuzzing the native API from
//! its own OpenAPI document (`/api/v1/openapi.json`): no request may get a 5xx or an answer
//! that the document does not describe. The checks, the bounds and the seed are in
//! `compat/schemathesis/schemathesis.toml`; `hooks.py` keeps the objects it names in place.

use super::harness::{self, CompatServer};
use std::process::Command;
use std::time::Duration;

/// The whole run, installs excluded; a run takes well under a minute (50 examples per
/// operation).
const SUITE_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn native_openapi_document_fuzzed_by_schemathesis_answers_no_5xx() {
    if !harness::tool_available("python3", "the schemathesis compat suite") {
        return;
    }
    let suite = harness::compat_dir().join("schemathesis");
    let python = harness::ensure_python_venv("schemathesis", &suite.join("requirements.txt"));
    let runtime = harness::runtime();
    let server = runtime.block_on(CompatServer::start());
    // schemathesis and Hypothesis keep caches in the directory they run in: not the sources.
    let run_dir = harness::work_dir().join("schemathesis-run");
    std::fs::create_dir_all(&run_dir).expect("target/compat/schemathesis-run can be created");
    let mut schemathesis = Command::new(python);
    schemathesis
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(suite.join("schemathesis.toml"))
        .args(["run", "--no-color"])
        .arg(format!("{}/api/v1/openapi.json", server.url()))
        .current_dir(&run_dir)
        .env("PYTHONPATH", &suite)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    harness::run_suite(schemathesis, &server.env(), SUITE_TIMEOUT);
    runtime.block_on(server.stop());
}
