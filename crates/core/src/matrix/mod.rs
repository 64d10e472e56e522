//! Matrix accounts: users (`@localpart:server`) and their devices, each device holding the
//! access token it logged in with. A token is sealed with the server's key and names its user,
//! device and a random token id kept on the device, so checking one is one read and logging a
//! device out (deleting it) revokes its token.

pub mod event;
pub mod filter;
pub mod push_rules;
pub mod room;
pub mod sync;

use crate::error::CoreError;
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// Localparts: the spec's historical grammar, lowercase only for new users.
pub const MAX_USER_ID_CHARS: usize = 255;
pub const MAX_DEVICE_ID_CHARS: usize = 255;
pub const MAX_DISPLAY_NAME_CHARS: usize = 255;
pub const MAX_PASSWORD_BYTES: usize = 512;
/// An `mxc://` URI (avatars).
pub const MAX_URL_CHARS: usize = 1024;
/// An uploaded filter, as JSON.
pub const MAX_FILTER_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixUser {
    /// `@localpart:server`.
    pub user_id: String,
    /// An Argon2id PHC string; `None` for a user that cannot log in with a password.
    pub password_hash: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub deactivated: bool,
    pub date_created: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixDevice {
    pub user_id: String,
    pub device_id: String,
    pub display_name: Option<String>,
    /// The id inside the device's access token: a token whose id differs was replaced.
    pub token_id: String,
    pub date_created: Timestamp,
}

/// An uploaded file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixMedia {
    pub media_id: String,
    /// The uploader.
    pub user_id: String,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    #[serde(with = "base64_bytes")]
    pub content: Vec<u8>,
    pub date_created: Timestamp,
}

/// A Matrix account as `ferrosync export` writes it: the user, its devices (each with the id
/// of its current token, so sessions survive a move when the master key moves too) and its
/// filters by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixAccountDump {
    pub user: MatrixUser,
    pub devices: Vec<MatrixDevice>,
    pub filters: std::collections::BTreeMap<String, String>,
}

/// Media content in a dump: standard base64.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Debug for MatrixMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatrixMedia")
            .field("media_id", &self.media_id)
            .field("content_type", &self.content_type)
            .field("bytes", &self.content.len())
            .finish_non_exhaustive()
    }
}

/// What an access token carries (sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    #[serde(rename = "u")]
    pub user_id: String,
    #[serde(rename = "d")]
    pub device_id: String,
    #[serde(rename = "t")]
    pub token_id: String,
}

/// Checks a new user's localpart: 1–255 characters of `a-z 0-9 . _ = - /` (the spec's grammar
/// for new user ids), the whole id within 255 characters.
pub fn validate_localpart(localpart: &str, server_name: &str) -> Result<(), CoreError> {
    if localpart.is_empty() {
        return Err(CoreError::invalid("username", "must not be empty"));
    }
    if !localpart.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._=-/".contains(&b)) {
        return Err(CoreError::invalid("username", "may only contain a-z, 0-9, '.', '_', '=', '-' and '/'"));
    }
    let full = localpart.len() + server_name.len() + 2;
    if full > MAX_USER_ID_CHARS {
        return Err(CoreError::invalid(
            "username",
            format!("makes a user id of {full} characters; the limit is {MAX_USER_ID_CHARS}"),
        ));
    }
    Ok(())
}

/// `@localpart:server` from a localpart or a full user id of this server; `None` for another
/// server's id or a malformed one.
pub fn user_id_of(user: &str, server_name: &str) -> Option<String> {
    match user.strip_prefix('@') {
        Some(rest) => {
            let (local, server) = rest.split_once(':')?;
            (server == server_name && !local.is_empty()).then(|| format!("@{}:{server_name}", local.to_lowercase()))
        }
        None => (!user.is_empty() && !user.contains(':')).then(|| format!("@{}:{server_name}", user.to_lowercase())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localparts_follow_the_spec_grammar() {
        assert!(validate_localpart("alice", "localhost").is_ok());
        assert!(validate_localpart("a.b_c=d-e/f", "localhost").is_ok());
        assert!(validate_localpart("Alice", "localhost").is_err());
        assert!(validate_localpart("", "localhost").is_err());
        assert!(validate_localpart("a b", "localhost").is_err());
        assert!(validate_localpart(&"a".repeat(250), "localhost").is_err());
    }

    #[test]
    fn users_are_named_by_localpart_or_full_id() {
        assert_eq!(user_id_of("alice", "example.org").as_deref(), Some("@alice:example.org"));
        assert_eq!(user_id_of("@Alice:example.org", "example.org").as_deref(), Some("@alice:example.org"));
        assert_eq!(user_id_of("@alice:elsewhere.org", "example.org"), None);
        assert_eq!(user_id_of("", "example.org"), None);
    }
}
