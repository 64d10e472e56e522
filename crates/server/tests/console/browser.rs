//! The console in a real browser: `compat/console/console.test.mjs` (playwright-core, pinned
//! in its package-lock.json) drives Debian's Chromium, headless, against an in-process server:
//! sign-in, a service and a document, a save that conflicts with a change made through the
//! REST API (shown, then resolved both ways), list items, the live inspector, API keys and
//! metrics. Screenshots of each step are left in `target/console-screenshots/`.

use crate::harness::{self, CompatServer};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The whole run, `npm ci` excluded; it takes seconds, but Chromium starts slowly on a busy
/// machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

const CHROMIUM: &str = "/usr/bin/chromium";

/// `target/console-screenshots/`, emptied first so that it holds this run's pictures only.
fn screenshot_dir() -> PathBuf {
    let target = harness::work_dir().parent().expect("the target directory").to_path_buf();
    let dir = target.join("console-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the screenshot directory can be created");
    dir
}

#[test]
fn the_console_works_in_a_real_browser() {
    let what = "the console's browser test";
    if !harness::tool_available("node", what)
        || !harness::tool_available("npm", what)
        || !harness::tool_available(CHROMIUM, what)
    {
        return;
    }
    let suite = harness::compat_dir().join("console");
    harness::ensure_npm(&suite);
    let runtime = harness::runtime();
    let server = runtime.block_on(CompatServer::start());
    let shots = screenshot_dir();
    let mut env = server.env();
    env.push(("CONSOLE_SCREENSHOTS", shots.display().to_string()));
    env.push(("CHROMIUM", CHROMIUM.to_owned()));
    let mut node = Command::new("node");
    node.arg("console.test.mjs").current_dir(&suite);
    harness::run_suite(node, &env, RUN_TIMEOUT);
    println!("console: screenshots in {}", shots.display());
    runtime.block_on(server.stop());
}
