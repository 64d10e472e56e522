//! Compatibility suites: client libraries nobody here wrote (twilio-python, the twilio-sync JS SDK, …), run as external
//! programs against an in-process server. Each suite installs its own tools on first use under
//! `target/compat/` and is skipped, saying so, only when its interpreter is missing (never
//! under `CI=true`). The suites themselves live in `compat/` at the root of the repository.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "integration/common.rs"]
mod common;

mod compat {
    mod cognito;
    pub mod harness;
    mod js;
    mod matrix_js;
    mod python;
    mod schemathesis;
}
