//! Turning a configuration into a running engine: the data directory, the root credentials,
//! the master key and the store.

use ferrosync_core::auth::{RootCredentials, SecretBox};
use ferrosync_core::sid::{Sid, SidKind};
use ferrosync_core::store::Store;
use ferrosync_core::{Engine, Limits};
use ferrosync_store::sqlite::{Durability, SqliteStore};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid credentials file: {message}")]
    BadCredentials { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] ferrosync_core::store::StoreError),
}

/// Everything needed to open a server's engine.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub limits: Limits,
    /// Overrides the stored root account (`FERROSYNC_ACCOUNT_SID` / `FERROSYNC_AUTH_TOKEN`).
    pub account_sid: Option<String>,
    pub auth_token: Option<String>,
    /// Overrides the stored master key (`FERROSYNC_MASTER_KEY`, 64 hex digits).
    pub master_key: Option<String>,
    pub durability: Durability,
}

impl ServerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            data_dir: data_dir.into(),
            limits: Limits::default(),
            account_sid: None,
            auth_token: None,
            master_key: None,
            durability: Durability::Full,
        }
    }
}

/// The credentials file kept in the data directory (mode 0600).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub account_sid: Sid,
    pub auth_token: String,
    pub master_key: String,
}

pub const CREDENTIALS_FILE: &str = "credentials.json";
pub const DATABASE_FILE: &str = "ferrosync.db";

impl Credentials {
    /// Loads the data directory's credentials, creating them on first start. Returns whether
    /// they were just created, so the caller can print them once.
    pub fn load_or_create(config: &ServerConfig) -> Result<(Credentials, bool), BootstrapError> {
        let path = config.data_dir.join(CREDENTIALS_FILE);
        let io = |source| BootstrapError::Io { path: path.clone(), source };
        let (mut creds, created) = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let c: Credentials = serde_json::from_str(&text)
                    .map_err(|e| BootstrapError::BadCredentials { path: path.clone(), message: e.to_string() })?;
                (c, false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let root = RootCredentials::generate();
                let c = Credentials {
                    account_sid: root.account_sid,
                    auth_token: root.auth_token,
                    master_key: SecretBox::generate_key_hex(),
                };
                std::fs::create_dir_all(&config.data_dir)
                    .map_err(|source| BootstrapError::Io { path: config.data_dir.clone(), source })?;
                match write_private(&path, &serde_json::to_string_pretty(&c).unwrap_or_default()) {
                    Ok(()) => (c, true),
                    // Another process created them first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = std::fs::read_to_string(&path).map_err(io)?;
                        let c: Credentials = serde_json::from_str(&text).map_err(|e| {
                            BootstrapError::BadCredentials { path: path.clone(), message: e.to_string() }
                        })?;
                        (c, false)
                    }
                    Err(e) => return Err(io(e)),
                }
            }
            Err(e) => return Err(io(e)),
        };
        if let Some(sid) = &config.account_sid {
            creds.account_sid = Sid::parse_kind(sid, SidKind::Account)
                .map_err(|e| BootstrapError::Invalid(format!("FERROSYNC_ACCOUNT_SID: {e}")))?;
        }
        if let Some(token) = &config.auth_token {
            if token.len() < 16 {
                return Err(BootstrapError::Invalid("FERROSYNC_AUTH_TOKEN must be at least 16 characters".into()));
            }
            creds.auth_token = token.clone();
        }
        if let Some(key) = &config.master_key {
            creds.master_key = key.clone();
        }
        Ok((creds, created))
    }

    pub fn root(&self) -> RootCredentials {
        RootCredentials { account_sid: self.account_sid.clone(), auth_token: self.auth_token.clone() }
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Opens the store and builds the engine for `config`.
pub fn open_engine(config: &ServerConfig) -> Result<(Arc<Engine>, Credentials, bool), BootstrapError> {
    let (creds, created) = Credentials::load_or_create(config)?;
    let secrets = SecretBox::from_hex(&creds.master_key).map_err(|e| BootstrapError::Invalid(e.to_string()))?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.data_dir.join(DATABASE_FILE), config.durability)?);
    let engine = Arc::new(Engine::new(store, config.limits.clone(), creds.root(), secrets));
    Ok((engine, creds, created))
}
