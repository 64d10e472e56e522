//! What Twilio's faces (Sync, Proxy and the key endpoints) share: the error body and code
//! table, form parameters, Basic authentication and paging.

pub mod auth;
pub mod error;
pub mod keys;
pub mod paging;
pub mod params;
