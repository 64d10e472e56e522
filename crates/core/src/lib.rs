//! Ferrosync's domain: services and their objects (documents, lists, maps, streams), items,
//! the change log, credentials, and the rules every mutation obeys.
//!
//! Nothing here speaks HTTP or SQL. Facades translate their wire formats into [`Engine`] calls;
//! stores implement [`store::Store`] and run [`rules::apply`] inside their transactions, so the
//! rules exist exactly once whatever the backend.

pub mod auth;
pub mod cognito;
pub mod engine;
pub mod error;
pub mod index;
pub mod limits;
pub mod log;
pub mod matrix;
pub mod model;
pub mod notify;
pub mod page;
pub mod recent;
pub mod rules;
pub mod store;
pub mod wire;

pub use ferrosync_protocol::{sid, timestamp};

pub use engine::Engine;
pub use error::{CoreError, ErrorCode, ProxyRule};
pub use limits::Limits;
pub use sid::{Sid, SidKind};
pub use timestamp::Timestamp;
