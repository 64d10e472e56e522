//! Realtime delivery: the per-node hub that fans change-log events out to WebSocket
//! connections, and the native WebSocket protocol itself.

pub mod connection;
pub mod hub;
pub mod live;
pub mod protocol;
pub mod session;
