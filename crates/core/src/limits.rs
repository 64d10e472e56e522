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
        }
    }
}
