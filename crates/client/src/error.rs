//! What can go wrong, as one enum.

use ferrosync_protocol::ErrorBody;

/// An error of the client. Errors the server answered carry its code (see the server's error
/// table) and HTTP status; the rest say what failed on the way.
///
/// ```no_run
/// # async fn demo(doc: ferrosync_client::Document) -> ferrosync_client::Result<()> {
/// match doc.set_if(serde_json::json!({"n": 1}), 4).await {
///     Ok(_) => {}
///     Err(e) if e.is_conflict() => println!("changed meanwhile; read again"),
///     Err(e) if e.is_transport() => println!("retry later: {e}"),
///     Err(e) => return Err(e),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request.
    /// (Fields may be added: match it with `..`.)
    #[error("{message} (code {code}, status {status})")]
    #[non_exhaustive]
    Api {
        status: u16,
        code: u32,
        message: String,
        /// On a revision mismatch: the object or item as the server had it (see
        /// [`ClientError::current`]).
        current: Option<Box<serde_json::Value>>,
    },
    /// The connection broke mid-request or timed out: the request may or may not have been
    /// carried out.
    #[error("cannot reach the server: {0}")]
    Transport(String),
    /// The server could not be reached: the request was not sent. With an offline cache,
    /// writes are kept and sent later instead of failing with this.
    #[error("the server is out of reach: {0}")]
    Unreachable(String),
    /// An answer that does not read as the protocol says.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
    /// A value the client refuses before sending it.
    #[error("{field}: {message}")]
    InvalidArgument { field: &'static str, message: String },
    /// The client was shut down.
    #[error("the client is shut down")]
    Closed,
    /// The offline cache could not be read or written.
    #[error("offline cache: {0}")]
    Cache(String),
}

impl ClientError {
    pub(crate) fn api(body: ErrorBody) -> Self {
        ClientError::Api {
            status: body.status,
            code: body.code,
            message: body.message,
            current: body.current.map(Box::new),
        }
    }

    /// A refusal made by the client itself (offline, or a mutator giving up).
    pub(crate) fn refused(status: u16, code: u32, message: String) -> Self {
        ClientError::Api { status, code, message, current: None }
    }

    /// On a revision mismatch of a conditional write: the object or item as the server had it
    /// when it refused (the view a read returns: `revision`, `data`, …), to retry from without
    /// reading it again.
    pub fn current(&self) -> Option<&serde_json::Value> {
        match self {
            ClientError::Api { current, .. } => current.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status the server answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's error code, if it answered.
    pub fn code(&self) -> Option<u32> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True for a revision mismatch (`If-Match` failed): read again and retry.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(412)
    }

    /// True when the object or item does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True when the server could not be reached: the request may be retried later.
    pub fn is_transport(&self) -> bool {
        matches!(self, ClientError::Transport(_) | ClientError::Unreachable(_))
    }

    /// True when the request was never sent because the server could not be reached.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable(_))
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_decode() {
            ClientError::Decode(e.to_string())
        } else if e.is_connect() {
            ClientError::Unreachable(e.to_string())
        } else {
            ClientError::Transport(e.to_string())
        }
    }
}

impl From<rusqlite::Error> for ClientError {
    fn from(e: rusqlite::Error) -> Self {
        ClientError::Cache(e.to_string())
    }
}

/// The client's result.
///
/// ```
/// fn check(n: i64) -> ferrosync_client::Result<i64> {
///     if n < 0 {
///         return Err(ferrosync_client::ClientError::InvalidArgument { field: "n", message: "negative".into() });
///     }
///     Ok(n)
/// }
/// assert_eq!(check(-1).unwrap_err().to_string(), "n: negative");
/// ```
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
