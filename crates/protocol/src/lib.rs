//! The wire types of Ferrosync's native API, shared by the server that speaks it and the Rust
//! client that calls it, so that the two cannot drift apart.
//!
//! - [`rest`]: request bodies and response views of `/api/v1/…`.
//! - [`ws`]: frames of the WebSocket at `/api/v1/connect`.
//! - [`event`]: change-log events, as long-polls, WebSocket frames and webhooks carry them.
//! - [`query`]: indexes, instant queries and live-query events.
//! - [`sid`], [`timestamp`], [`kinds`]: the values all of them name.
//! - [`json`], [`value`]: JSON written and read faster than `serde_json` alone, to its letter.

pub mod error;
pub mod event;
pub mod json;
pub mod kinds;
pub mod query;
pub mod rest;
pub mod sid;
pub mod timestamp;
pub mod value;
pub mod ws;

pub use error::ErrorBody;
pub use event::{Event, EventKind};
pub use kinds::{ObjectKind, OpenMode, Order};
pub use sid::{Sid, SidKind};
pub use timestamp::Timestamp;
