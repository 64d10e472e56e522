//! The client against a real server started in-process on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "client/support.rs"]
mod support;

#[path = "client/objects.rs"]
mod objects;
#[path = "client/offline.rs"]
mod offline;
#[path = "client/queries.rs"]
mod queries;
#[path = "client/resume.rs"]
mod resume;
#[path = "client/subscriptions.rs"]
mod subscriptions;
#[path = "client/tokens.rs"]
mod tokens;
