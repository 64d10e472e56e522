//! The Matrix Client-Server API (`/_matrix/client/{v3,r0}/…`, `/.well-known/matrix/client`):
//! discovery, accounts (register, login, whoami, logout), filters, profiles and devices over
//! the engine's Matrix accounts.
//! Errors are `{errcode, error}` with the spec's codes; every body the clients validate is
//! exactly the spec's shape.

pub mod account;
pub mod account_data;
pub mod auth;
pub mod discovery;
pub mod e2ee;
pub mod error;
pub mod media;
pub mod push_rules;
pub mod rooms;
pub mod router;
pub mod sync;
pub mod user;

pub use router::router;

use serde::Deserialize;

/// Who may register.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    /// Anyone, after the `m.login.dummy` stage.
    Open,
    /// Whoever completes `m.login.registration_token` with the configured token.
    Token,
    /// No one (the default): accounts come from an administrator.
    #[default]
    Closed,
}

impl RegistrationPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(RegistrationPolicy::Open),
            "token" => Some(RegistrationPolicy::Token),
            "closed" => Some(RegistrationPolicy::Closed),
            _ => None,
        }
    }
}

/// The Matrix face's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatrixSettings {
    /// The server name in user ids (`@alice:<server_name>`).
    pub server_name: String,
    pub registration: RegistrationPolicy,
    /// The token `m.login.registration_token` asks for when `registration = "token"`.
    pub registration_token: Option<String>,
    /// The largest media upload, in bytes.
    pub max_upload_bytes: usize,
}

impl Default for MatrixSettings {
    fn default() -> Self {
        MatrixSettings {
            server_name: "localhost".into(),
            registration: RegistrationPolicy::Closed,
            registration_token: None,
            max_upload_bytes: 10 * 1024 * 1024,
        }
    }
}
