//! Realtime delivery: the per-node hub that fans change-log events out to WebSocket
//! connections, and the native WebSocket protocol itself.

pub mod connection;
pub mod hub;
pub mod live;
pub mod session;

/// Frames of the native WebSocket protocol, shared with the Rust client.
pub use ferrosync_protocol::ws as protocol;

/// Bytes of queued frames a WebSocket writes out at, rather than only at a batch's flush. The
/// buffer keeps the largest size it ever reached for the connection's life, so without this
/// bound one burst of events left 10,000 subscribers holding 30–40 KB each (a 64 KB batch is
/// now about four writes instead of one).
pub const WRITE_BUFFER: usize = 16 * 1024;
