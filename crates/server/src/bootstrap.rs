//! Turning a configuration into a running engine: the data directory, the root credentials,
//! the master key and the store.

use ferrosync_core::auth::{RootCredentials, SecretBox};
use ferrosync_core::sid::{Sid, SidKind};
use ferrosync_core::store::Store;
use ferrosync_core::{Engine, Limits};
use ferrosync_store::PgStore;
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
    pub store: StoreLocation,
}

/// Where the data lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded SQLite store in the data directory (the default).
    #[default]
    Embedded,
    /// A PostgreSQL database that any number of nodes share (a `postgres://` URL).
    Postgres(String),
}

impl StoreLocation {
    /// `sqlite` (or empty) for the embedded store, a `postgres://` / `postgresql://` URL for a
    /// shared one.
    pub fn parse(s: &str) -> Result<Self, BootstrapError> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("sqlite") || s.eq_ignore_ascii_case("embedded") {
            Ok(StoreLocation::Embedded)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreLocation::Postgres(s.to_owned()))
        } else {
            Err(BootstrapError::Invalid(format!(
                "store must be `sqlite` or a postgres:// URL, got `{}`",
                redact_url(s)
            )))
        }
    }

    /// For logs: the location with any password hidden.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Embedded => "embedded SQLite".into(),
            StoreLocation::Postgres(url) => redact_url(url),
        }
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
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
            store: StoreLocation::Embedded,
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

/// The meta key a shared store keeps the cluster's credentials under.
const CREDENTIALS_META_KEY: &str = "credentials";

impl Credentials {
    fn generate() -> Credentials {
        let root = RootCredentials::generate();
        Credentials {
            account_sid: root.account_sid,
            auth_token: root.auth_token,
            master_key: SecretBox::generate_key_hex(),
        }
    }

    /// The credentials of the store `config` names, created on first start. On the embedded
    /// store they live in the data directory; every node of a cluster must share them, so a
    /// shared store keeps them in the database (the first node to start creates them).
    /// Returns whether they were just created, so the caller can print them once.
    pub async fn load_or_create_for(
        config: &ServerConfig,
        store: &dyn Store,
    ) -> Result<(Credentials, bool), BootstrapError> {
        let (creds, created) = match &config.store {
            StoreLocation::Embedded => return Credentials::load_or_create(config),
            StoreLocation::Postgres(_) => {
                let proposed = serde_json::to_string(&Credentials::generate())
                    .map_err(|e| BootstrapError::Invalid(e.to_string()))?;
                let (text, created) = store.claim_meta(CREDENTIALS_META_KEY, &proposed).await?;
                let creds: Credentials = serde_json::from_str(&text).map_err(|e| BootstrapError::BadCredentials {
                    path: PathBuf::from("<database meta: credentials>"),
                    message: e.to_string(),
                })?;
                (creds, created)
            }
        };
        Ok((creds.with_overrides(config)?, created))
    }

    /// Loads the data directory's credentials, creating them on first start. Returns whether
    /// they were just created, so the caller can print them once.
    pub fn load_or_create(config: &ServerConfig) -> Result<(Credentials, bool), BootstrapError> {
        let path = config.data_dir.join(CREDENTIALS_FILE);
        let io = |source| BootstrapError::Io { path: path.clone(), source };
        let (creds, created) = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let c: Credentials = serde_json::from_str(&text)
                    .map_err(|e| BootstrapError::BadCredentials { path: path.clone(), message: e.to_string() })?;
                (c, false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let c = Credentials::generate();
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
        Ok((creds.with_overrides(config)?, created))
    }

    /// Applies the environment's overrides (`FERROSYNC_ACCOUNT_SID`, …).
    fn with_overrides(mut self, config: &ServerConfig) -> Result<Credentials, BootstrapError> {
        let creds = &mut self;
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
        Ok(self)
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

/// Opens (connecting to, migrating) the store `config` names.
pub async fn open_store(config: &ServerConfig) -> Result<Arc<dyn Store>, BootstrapError> {
    Ok(match &config.store {
        StoreLocation::Embedded => {
            Arc::new(SqliteStore::open(&config.data_dir.join(DATABASE_FILE), config.durability)?)
        }
        StoreLocation::Postgres(url) => Arc::new(PgStore::connect(url).await?),
    })
}

/// Opens the store and builds the engine for `config`.
pub async fn open_engine(config: &ServerConfig) -> Result<(Arc<Engine>, Credentials, bool), BootstrapError> {
    let store = open_store(config).await?;
    let (creds, created) = Credentials::load_or_create_for(config, store.as_ref()).await?;
    let secrets = SecretBox::from_hex(&creds.master_key).map_err(|e| BootstrapError::Invalid(e.to_string()))?;
    let engine = Arc::new(Engine::new(store, config.limits.clone(), creds.root(), secrets));
    Ok((engine, creds, created))
}
