//! Realtime delivery: the per-node hub that fans change-log events out to WebSocket
//! connections, and the native WebSocket protocol itself.

pub mod connection;
pub mod gate;
pub mod hub;
pub mod inflight;
pub mod live;
pub mod outlet;
pub mod session;
pub mod wake;
pub mod wire;

/// Frames of the native WebSocket protocol, shared with the Rust client.
pub use ferrosync_protocol::ws as protocol;
