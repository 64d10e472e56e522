//! Turning a configuration into a running engine: the data directory, the root credentials,
//! the master key and the store; and what the configuration declares in it (indexes).

use ferrosync_core::auth::{Principal, RootCredentials, SecretBox};
use ferrosync_core::engine::ServiceSpec;
use ferrosync_core::error::NotFoundKind;
use ferrosync_core::index::{IndexDef, IndexSource};
use ferrosync_core::model::Service;
use ferrosync_core::sid::{Sid, SidKind, looks_like_sid};
use ferrosync_core::store::Store;
use ferrosync_core::{CoreError, Engine, Limits};
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
    /// A configured index could not be declared (`entry` names it).
    #[error("[[indexes]] {entry}: {source}")]
    Index { entry: String, source: CoreError },
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
    /// Indexes the configuration file declares (`[[indexes]]`), applied by
    /// [`declare_indexes`] before the server starts serving.
    pub indexes: Vec<ConfiguredIndex>,
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
            indexes: Vec::new(),
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
/// The socket a running server answers `ferrosync` commands on, beside its data file.
pub const LOCAL_SOCKET_FILE: &str = "ferrosync.sock";

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
    // A store takes its metric handles as it opens; before a recorder is in place they would
    // record nowhere.
    crate::observe::prometheus();
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

/// An index the configuration file declares, one `[[indexes]]` table: `service` (SID or
/// unique name), `name`, exactly one of `map` / `map_prefix`, and `fields`. Checked as the file
/// is read, so a mistake stops the server before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "IndexEntry")]
pub struct ConfiguredIndex {
    /// The service's SID or unique name. A service given by unique name is created when
    /// missing; one given by SID must exist.
    pub service: String,
    pub def: IndexDef,
}

impl ConfiguredIndex {
    /// How error messages name the entry.
    pub fn describe(&self) -> String {
        format!("index '{}' of service '{}'", self.def.name, self.service)
    }
}

/// An `[[indexes]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexEntry {
    service: String,
    name: String,
    map: Option<String>,
    map_prefix: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
}

impl TryFrom<IndexEntry> for ConfiguredIndex {
    type Error = String;

    fn try_from(e: IndexEntry) -> Result<Self, String> {
        let entry = format!("[[indexes]] index '{}' of service '{}'", e.name, e.service);
        if e.service.trim().is_empty() {
            return Err(format!("{entry}: service must be a service SID or unique name"));
        }
        if looks_like_sid(&e.service) {
            Sid::parse_kind(&e.service, SidKind::Service).map_err(|err| format!("{entry}: service: {err}"))?;
        }
        let source = match (e.map, e.map_prefix) {
            (Some(map), None) => IndexSource::Map(map),
            (None, Some(prefix)) => IndexSource::MapPrefix(prefix),
            (Some(_), Some(_)) => return Err(format!("{entry}: give either map or map_prefix, not both")),
            (None, None) => return Err(format!("{entry}: give one of map and map_prefix")),
        };
        let def = IndexDef { name: e.name, source, fields: e.fields };
        def.check().map_err(|err| format!("{entry}: {err}"))?;
        Ok(ConfiguredIndex { service: e.service, def })
    }
}

/// Refuses a configuration that declares the same index of the same service twice.
pub fn check_configured_indexes(indexes: &[ConfiguredIndex]) -> Result<(), BootstrapError> {
    let mut seen = std::collections::HashSet::new();
    for entry in indexes {
        if !seen.insert((entry.service.as_str(), entry.def.name.as_str())) {
            return Err(BootstrapError::Invalid(format!("[[indexes]] {} is declared twice", entry.describe())));
        }
    }
    Ok(())
}

/// What [`declare_indexes`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeclaredIndexes {
    /// Indexes declared or redeclared (their services' revisions moved).
    pub changed: usize,
    /// Indexes already declared exactly so, left alone.
    pub unchanged: usize,
    /// Services created because the configuration named them.
    pub services_created: usize,
}

/// Declares the configuration's indexes, creating the services they name by unique name when
/// missing. Idempotent: an index already declared identically is left alone (its service's
/// revision does not move), one declared differently is redeclared as configured, and indexes
/// declared only through the API are kept.
pub async fn declare_indexes(engine: &Engine, indexes: &[ConfiguredIndex]) -> Result<DeclaredIndexes, BootstrapError> {
    let mut done = DeclaredIndexes::default();
    // The services first, so an index named twice (by SID and by unique name) declares nothing.
    let mut resolved = Vec::with_capacity(indexes.len());
    let mut seen = std::collections::HashSet::new();
    for entry in indexes {
        let (svc, created) = configured_service(engine, &entry.service)
            .await
            .map_err(|source| BootstrapError::Index { entry: entry.describe(), source })?;
        if created {
            done.services_created += 1;
            tracing::info!(service = %entry.service, sid = %svc.sid, "created the service the configuration names");
        }
        if !seen.insert((svc.sid.clone(), entry.def.name.clone())) {
            return Err(BootstrapError::Invalid(format!("[[indexes]] {} is declared twice", entry.describe())));
        }
        resolved.push((svc.sid, entry));
    }
    for (sid, entry) in resolved {
        let failed = |source| BootstrapError::Index { entry: entry.describe(), source };
        match engine.index(&Principal::Root, sid.as_str(), &entry.def.name).await {
            Ok(current) if current == entry.def => {
                done.unchanged += 1;
                continue;
            }
            Ok(_) | Err(CoreError::NotFound { what: NotFoundKind::Index, .. }) => {}
            Err(e) => return Err(failed(e)),
        }
        engine.put_index(&Principal::Root, sid.as_str(), entry.def.clone()).await.map_err(failed)?;
        done.changed += 1;
        tracing::info!(service = %entry.service, index = %entry.def.name, "declared the configured index");
    }
    Ok(done)
}

/// The service `service` names, created when it is a missing unique name (as `default` is);
/// whether it was created.
async fn configured_service(engine: &Engine, service: &str) -> Result<(Service, bool), CoreError> {
    match engine.service(&Principal::Root, service).await {
        Err(CoreError::NotFound { what: NotFoundKind::Service, .. }) if !looks_like_sid(service) => {
            let spec = ServiceSpec { unique_name: Some(service.to_owned()), ..ServiceSpec::default() };
            match engine.create_service(&Principal::Root, spec).await {
                Ok(svc) => Ok((svc, true)),
                // Another node of the cluster created it first.
                Err(CoreError::AlreadyExists { .. }) => Ok((engine.service(&Principal::Root, service).await?, false)),
                Err(e) => Err(e),
            }
        }
        other => other.map(|svc| (svc, false)),
    }
}
