//! The web console at `/console`: how its files are served (content types, caching, the
//! Content-Security-Policy, deep links), the read-only admin endpoints it reads Cognito and
//! Matrix through, and the console itself in a real browser (Playwright driving Debian's
//! Chromium; skipped with a note when node or chromium is missing, except under `CI=true`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "integration/common.rs"]
mod common;

/// The compat suites' harness: tool checks, `npm ci`, bounded runs of external programs.
#[allow(dead_code)]
#[path = "compat/harness.rs"]
mod harness;

mod console {
    mod admin;
    mod browser;
    mod serving;
}
