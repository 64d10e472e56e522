//! Limits every facade enforces; defaults follow Twilio Sync's published limits.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest document, list item or map item `data`, in bytes of compact JSON.
    pub max_data_bytes: usize,
    /// Largest stream message, in bytes of compact JSON.
    pub max_message_bytes: usize,
    /// Longest unique name or map item key, in characters.
    pub max_name_chars: usize,
    /// Largest TTL in seconds.
    pub max_ttl_secs: u64,
    /// How long change-log events are kept, in seconds.
    pub retention_secs: u64,
    /// Longest access-token lifetime, in seconds.
    pub max_token_ttl_secs: u64,
    /// Largest page a read may ask for.
    pub max_page_size: u32,
    /// Page size when none is asked for.
    pub default_page_size: u32,
    /// Longest long-poll wait, in seconds.
    pub max_longpoll_secs: u64,
    /// Cognito Identity and Cognito Sync (`[limits.cognito]`).
    pub cognito: CognitoLimits,
}

/// Cognito quotas and lifetimes; the defaults are AWS's published numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CognitoLimits {
    /// The region identity pool and identity ids are minted in (`<region>:<uuid>`).
    pub region: String,
    /// Datasets one identity may hold.
    pub max_datasets_per_identity: u64,
    /// Live records one dataset may hold.
    pub max_records_per_dataset: u64,
    /// Largest dataset: UTF-8 bytes of its live records' keys and values.
    pub max_dataset_bytes: u64,
    /// How long a ListRecords SyncSessionToken is accepted by UpdateRecords, in seconds.
    pub sync_session_ttl_secs: u64,
    /// Lifetime of temporary identity credentials, in seconds.
    pub credentials_ttl_secs: u64,
    /// Lifetime of an OpenID token from GetOpenIdToken (AWS: 10 minutes), in seconds.
    pub openid_token_ttl_secs: u64,
    /// Longest TokenDuration GetOpenIdTokenForDeveloperIdentity accepts, in seconds.
    pub max_openid_token_ttl_secs: u64,
    /// The `iss` of OpenID tokens.
    pub openid_issuer: String,
    /// Shortest time between successful bulk publishes of a pool, in seconds.
    pub bulk_publish_interval_secs: u64,
}

impl Default for CognitoLimits {
    fn default() -> Self {
        CognitoLimits {
            region: "us-east-1".into(),
            max_datasets_per_identity: 20,
            max_records_per_dataset: 1024,
            max_dataset_bytes: 1024 * 1024,
            sync_session_ttl_secs: 3600,
            credentials_ttl_secs: 3600,
            openid_token_ttl_secs: 600,
            max_openid_token_ttl_secs: 24 * 3600,
            openid_issuer: "https://cognito-identity.amazonaws.com".into(),
            bulk_publish_interval_secs: 24 * 3600,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_data_bytes: 16 * 1024,
            max_message_bytes: 4 * 1024,
            max_name_chars: 320,
            max_ttl_secs: 31_536_000,
            retention_secs: 7 * 24 * 3600,
            max_token_ttl_secs: 24 * 3600,
            max_page_size: 1000,
            default_page_size: 50,
            max_longpoll_secs: 55,
            cognito: CognitoLimits::default(),
        }
    }
}
