//! Ferrosync's server end to end: one in-process server per test, driven over real HTTP
//! (reqwest) and real WebSockets (tokio-tungstenite). Every wait is bounded by a timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod acl;
mod changes;
mod rest;
mod ttl;
mod websocket;
