//! Stores for Ferrosync: the embedded SQLite store (the default), the PostgreSQL store that
//! several nodes share, and the conformance suite every implementation of
//! [`ferrosync_core::store::Store`] must pass.

pub mod conformance;
pub mod postgres;
pub mod sqlite;
pub mod testing;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;
