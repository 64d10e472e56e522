//! The official `twilio-sync` JS SDK (pinned to 4.0.1 in `compat/js/package-lock.json`),
//! unmodified, against the twilsock face: `node --test` over `compat/js/test/`.

use super::harness::{self, CompatServer};
use std::process::Command;
use std::time::Duration;

/// The whole run, the install excluded; the suite itself takes about a minute.
const SUITE_TIMEOUT: Duration = Duration::from_secs(600);

#[test]
fn twilio_sync_js_suite() {
    if !harness::tool_available("node", "the twilio-sync JS compat suite")
        || !harness::tool_available("npm", "the twilio-sync JS compat suite")
    {
        return;
    }
    let suite = harness::compat_dir().join("js");
    harness::ensure_npm(&suite);
    let runtime = harness::runtime();
    let server = runtime.block_on(CompatServer::start());
    let mut node = Command::new("node");
    // One file at a time: the tests wait on pushes, and the machine's cores are shared.
    node.args(["--test", "--test-concurrency=1", "--test-timeout=180000"]).current_dir(&suite);
    harness::run_suite(node, &server.env(), SUITE_TIMEOUT);
    runtime.block_on(server.stop());
}
