//! Stores for Ferrosync: the embedded SQLite store (the default) and the conformance suite
//! every implementation of [`ferrosync_core::store::Store`] must pass.

pub mod conformance;
pub mod sqlite;

pub use sqlite::SqliteStore;
