//! twilio-python (pinned in `compat/python/requirements.txt`) against the Twilio Sync REST face
//! and Twilio's key-creation endpoints, through the library's own calls.

use super::harness::{self, CompatServer};
use std::process::Command;
use std::time::Duration;

/// The whole pytest run, installs excluded.
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn twilio_python_suite() {
    if !harness::tool_available("python3", "the twilio-python compat suite") {
        return;
    }
    let suite = harness::compat_dir().join("python");
    let python = harness::ensure_python_venv("python", &suite.join("requirements.txt"));
    let runtime = harness::runtime();
    let server = runtime.block_on(CompatServer::start());
    let mut pytest = Command::new(python);
    pytest
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", "--color=no"])
        .current_dir(&suite)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("TWILIO_EDGE")
        .env_remove("TWILIO_REGION");
    harness::run_suite(pytest, &server.env(), SUITE_TIMEOUT);
    runtime.block_on(server.stop());
}
