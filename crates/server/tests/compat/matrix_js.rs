//! The official `matrix-js-sdk` (pinned to 37.5.0 in `compat/matrix-js/package-lock.json`),
//! unmodified and without crypto, against the Matrix Client-Server face: `node --test` over
//! `compat/matrix-js/test/`.

use super::harness::{self, CompatServer};
use std::process::Command;
use std::time::Duration;

/// The whole run, the install excluded; the suite itself takes about ten seconds.
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn matrix_js_sdk_suite() {
    if !harness::tool_available("node", "the matrix-js-sdk compat suite")
        || !harness::tool_available("npm", "the matrix-js-sdk compat suite")
    {
        return;
    }
    let suite = harness::compat_dir().join("matrix-js");
    harness::ensure_npm(&suite);
    let runtime = harness::runtime();
    let server = runtime.block_on(CompatServer::start());
    let mut node = Command::new("node");
    // --test-force-exit: every /sync leaves a timer of up to 110 s behind in the SDK (its
    // timeout ponyfill never clears them), which would otherwise hold each file's process open.
    node.args(["--test", "--test-concurrency=1", "--test-timeout=180000", "--test-force-exit"]).current_dir(&suite);
    harness::run_suite(node, &server.env(), SUITE_TIMEOUT);
    runtime.block_on(server.stop());
}
