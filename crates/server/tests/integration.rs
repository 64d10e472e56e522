//! Ferrosync's server end to end: one in-process server per test, driven over real HTTP
//! (reqwest) and real WebSockets (tokio-tungstenite). Every wait is bounded by a timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// Crate roots resolve `mod` beside themselves (tests/), where other test binaries live:
// point each module at its file under tests/integration/.
#[path = "integration/common.rs"]
mod common;

#[path = "integration/acl.rs"]
mod acl;
#[path = "integration/changes.rs"]
mod changes;
#[path = "integration/rest.rs"]
mod rest;
#[path = "integration/ttl.rs"]
mod ttl;
#[path = "integration/websocket.rs"]
mod websocket;
