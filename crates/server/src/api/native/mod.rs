//! The native API: JSON REST under `/api/v1` and the WebSocket at `/api/v1/connect`.

pub mod admin;
pub mod changes;
pub mod error;
pub mod extract;
pub mod indexes;
pub mod items;
pub mod keys;
pub mod objects;
pub mod openapi;
pub mod permissions;
pub mod router;
pub mod services;
pub mod streams;
pub mod types;
