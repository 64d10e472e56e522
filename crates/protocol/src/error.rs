//! The native API's error body, the same over REST and WebSocket replies.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable numeric code from the error table.
    pub code: u32,
    pub message: String,
    /// The HTTP status, repeated for clients that only see the body.
    pub status: u16,
    /// On a revision mismatch (412) of a conditional write: the object or item as it is now
    /// (the view a read would return), so a client retrying its change need not read it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub current: Option<serde_json::Value>,
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {}, status {})", self.message, self.code, self.status)
    }
}
