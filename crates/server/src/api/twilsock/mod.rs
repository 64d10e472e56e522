//! The twilsock v3 face: the WebSocket the official `twilio-sync` JS SDK connects to, with the
//! CDS calls (documents, lists, maps, streams, live and instant queries, subscriptions)
//! tunnelled through it as `message` frames and answered in `reply` frames. Pushes come from
//! the realtime hub, and replays from the change log, so writes through any face reach these
//! clients and a client that reconnects resumes from the last event id it saw.

pub mod connection;
pub mod error;
pub mod events;
pub mod frame;
pub mod items;
pub mod objects;
pub mod queries;
pub mod request;
pub mod router;
pub mod streams;
pub mod subscriptions;
pub mod types;
