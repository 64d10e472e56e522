//! Twilio Sync v1 REST, mounted at `/twilio/sync/v1`: form-encoded requests with PascalCase
//! parameters, Basic auth, snake_case JSON with absolute URLs, and Twilio's error body. Every
//! call goes through the same engine as the native API, so both are one history.

pub mod error;
pub mod extract;
pub mod items;
pub mod messages;
pub mod objects;
pub mod permissions;
pub mod router;
pub mod services;
pub mod types;
