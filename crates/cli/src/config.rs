//! The configuration file and logging. Precedence: flags, then `FERROSYNC_*` environment
//! variables, then the file, then defaults.

use anyhow::Context;
use ferrosync_core::Limits;
use ferrosync_server::bootstrap::ConfiguredIndex;
use ferrosync_server::push::PushSettings;
use ferrosync_server::state::Settings;
use ferrosync_server::{ServerConfig, StoreLocation};
use ferrosync_store::sqlite::Durability;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilitySetting {
    #[default]
    Full,
    Normal,
}

/// `ferrosync.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on (default 127.0.0.1:7700).
    pub listen: Option<String>,
    /// Connections the kernel holds before the server accepts them (default 4096).
    pub listen_backlog: Option<u32>,
    /// Data directory (default ./ferrosync-data).
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    /// `full` (fsync every commit, default) or `normal` (survives process crashes only).
    pub durability: Option<DurabilitySetting>,
    /// `sqlite` (the embedded store, default) or a `postgres://` URL shared by a cluster.
    pub store: Option<String>,
    /// `auto` (default: `batch` on one CPU), `batch` or `normal`: how the kernel schedules the
    /// runtime's threads.
    pub thread_scheduling: Option<crate::sched::ThreadScheduling>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub realtime: RealtimeConfig,
    #[serde(default)]
    pub cognito: CognitoConfig,
    /// `[matrix]`: `server_name`, `registration` (open, token, closed), `registration_token`.
    #[serde(default)]
    pub matrix: ferrosync_server::api::matrix::MatrixSettings,
    /// `[[indexes]]`: `service`, `name`, `map` or `map_prefix`, `fields`; declared at start.
    #[serde(default)]
    pub indexes: Vec<ConfiguredIndex>,
}

/// `[cognito]`: the AWS Cognito faces' background work.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CognitoConfig {
    /// Where Cognito Streams records go, `[cognito.streams]`.
    #[serde(default)]
    pub streams: ferrosync_server::cognito::StreamSettings,
    /// Push-sync providers, `[cognito.push.providers.<name>]`, named by the last segment of
    /// the pools' `PushSync.ApplicationArns`.
    #[serde(default)]
    pub push: PushSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealtimeConfig {
    pub outbound_queue: Option<usize>,
    pub keepalive_secs: Option<u64>,
    pub write_stall_secs: Option<u64>,
    pub max_subscriptions: Option<usize>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid configuration in {}", path.display()))
    }

    /// Reads and checks a configuration file's text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: FileConfig = toml::from_str(text)?;
        anyhow::ensure!(config.listen_backlog != Some(0), "listen_backlog must be at least 1");
        ferrosync_server::bootstrap::check_configured_indexes(&config.indexes)?;
        Ok(config)
    }

    /// `store` comes from the flag or `FERROSYNC_STORE` (clap reads both).
    pub fn server_config(&self, data_dir: Option<PathBuf>, store: Option<String>) -> anyhow::Result<ServerConfig> {
        let dir = data_dir.or_else(|| self.data_dir.clone()).unwrap_or_else(|| PathBuf::from("./ferrosync-data"));
        let mut config = ServerConfig::new(dir);
        if let Some(store) = store.or_else(|| self.store.clone()) {
            config.store = StoreLocation::parse(&store)?;
        }
        config.limits = self.limits.clone();
        config.indexes = self.indexes.clone();
        config.account_sid = std::env::var("FERROSYNC_ACCOUNT_SID").ok().filter(|s| !s.is_empty());
        config.auth_token = std::env::var("FERROSYNC_AUTH_TOKEN").ok().filter(|s| !s.is_empty());
        config.master_key = std::env::var("FERROSYNC_MASTER_KEY").ok().filter(|s| !s.is_empty());
        if let Ok(secs) = std::env::var("FERROSYNC_RETENTION_SECS") {
            config.limits.retention_secs =
                secs.parse().context("FERROSYNC_RETENTION_SECS must be a number of seconds")?;
        }
        let durability = match std::env::var("FERROSYNC_DURABILITY").ok().as_deref() {
            Some("normal") => DurabilitySetting::Normal,
            Some("full") => DurabilitySetting::Full,
            Some(other) => {
                anyhow::bail!("FERROSYNC_DURABILITY must be full or normal, got {other}")
            }
            None => self.durability.unwrap_or_default(),
        };
        config.durability = match durability {
            DurabilitySetting::Full => Durability::Full,
            DurabilitySetting::Normal => Durability::Normal,
        };
        Ok(config)
    }

    pub fn settings(&self) -> Settings {
        let d = Settings::default();
        Settings {
            outbound_queue: self.realtime.outbound_queue.unwrap_or(d.outbound_queue),
            keepalive_secs: self.realtime.keepalive_secs.unwrap_or(d.keepalive_secs),
            write_stall_secs: self.realtime.write_stall_secs.unwrap_or(d.write_stall_secs),
            token_warning_secs: d.token_warning_secs,
            max_subscriptions: self.realtime.max_subscriptions.unwrap_or(d.max_subscriptions),
            webhooks: d.webhooks,
            leases: d.leases,
            cognito: ferrosync_server::cognito::CognitoSettings {
                streams: self.cognito.streams.clone(),
                push: self.cognito.push.clone(),
                ..d.cognito
            },
            sync_trigger_timeout: d.sync_trigger_timeout,
            matrix: self.matrix.clone(),
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides `default_filter`.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_server::push::ProviderConfig;

    #[test]
    fn the_matrix_table_reaches_the_server_settings() {
        let text = "[matrix]\nserver_name = \"example.org\"\nregistration = \"token\"\nregistration_token = \"t\"";
        let config: FileConfig = toml::from_str(text).expect("parses");
        let matrix = config.settings().matrix;
        assert_eq!(matrix.server_name, "example.org");
        assert_eq!(matrix.registration, ferrosync_server::api::matrix::RegistrationPolicy::Token);
        assert_eq!(matrix.registration_token.as_deref(), Some("t"));
        let defaults: FileConfig = toml::from_str("").expect("parses");
        assert_eq!(defaults.settings().matrix.registration, ferrosync_server::api::matrix::RegistrationPolicy::Closed);
        assert!(toml::from_str::<FileConfig>("[matrix]\nregistration = \"maybe\"").is_err());
    }

    #[test]
    fn the_thread_scheduling_is_auto_batch_or_normal() {
        let parse = |text: &str| FileConfig::parse(text).map(|c| c.thread_scheduling);
        assert_eq!(parse("").expect("parses"), None);
        assert_eq!(
            parse("thread_scheduling = \"normal\"").expect("parses"),
            Some(crate::sched::ThreadScheduling::Normal)
        );
        assert_eq!(
            parse("thread_scheduling = \"batch\"").expect("parses"),
            Some(crate::sched::ThreadScheduling::Batch)
        );
        assert_eq!(parse("thread_scheduling = \"auto\"").expect("parses"), Some(crate::sched::ThreadScheduling::Auto));
        assert!(parse("thread_scheduling = \"fifo\"").is_err(), "only these policies");
    }

    #[test]
    fn the_streams_table_reaches_the_server_settings() {
        let text = r#"
            [cognito.streams]
            kinesis_endpoint = "http://127.0.0.1:4567"
            region = "eu-west-1"
            access_key_id = "AKID"
            secret_access_key = "secret"
            request_timeout = 2.5
        "#;
        let config: FileConfig = toml::from_str(text).expect("the sample parses");
        let streams = config.settings().cognito.streams;
        assert_eq!(streams.kinesis_endpoint, "http://127.0.0.1:4567");
        assert_eq!(streams.region.as_deref(), Some("eu-west-1"));
        assert_eq!(streams.request_timeout, std::time::Duration::from_millis(2500));
        let defaults: FileConfig = toml::from_str("").expect("parses");
        assert_eq!(defaults.settings().cognito.streams.kinesis_endpoint, "https://kinesis.{region}.amazonaws.com");
        assert!(toml::from_str::<FileConfig>("[cognito.streams]\nendpoint = \"x\"").is_err(), "unknown keys refused");
    }

    #[test]
    fn indexes_are_declared_as_an_array_of_tables() {
        use ferrosync_core::index::{IndexDef, IndexSource};
        let text = r#"
            [[indexes]]
            service = "taskrouter"
            name = "tr-worker"
            map_prefix = "workers-"
            fields = ["data.attributes.worker_name", "key"]

            [[indexes]]
            service = "ISaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            name = "tasks"
            map = "tasks"
        "#;
        let config = FileConfig::parse(text).expect("the sample parses");
        assert_eq!(config.indexes.len(), 2);
        assert_eq!(config.indexes[0].service, "taskrouter");
        assert_eq!(
            config.indexes[0].def,
            IndexDef {
                name: "tr-worker".into(),
                source: IndexSource::MapPrefix("workers-".into()),
                fields: vec!["data.attributes.worker_name".into(), "key".into()],
            }
        );
        assert_eq!(config.indexes[1].service, "ISaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(config.indexes[1].def.source, IndexSource::Map("tasks".into()));
        assert!(config.indexes[1].def.fields.is_empty(), "fields are optional");
        let server = config.server_config(Some(PathBuf::from("/tmp/x")), None).expect("converts");
        assert_eq!(server.indexes, config.indexes, "carried into the server's configuration");
        assert!(FileConfig::parse("").expect("parses").indexes.is_empty());
    }

    #[test]
    fn index_mistakes_are_refused_naming_the_entry() {
        let entry = |body: &str| format!("[[indexes]]\nservice = \"app\"\nname = \"by-team\"\n{body}");
        let refused = |text: &str| FileConfig::parse(text).map(|_| ()).expect_err(text).to_string();

        let both = refused(&entry("map = \"people\"\nmap_prefix = \"people-\""));
        assert!(both.contains("index 'by-team' of service 'app'") && both.contains("not both"), "{both}");
        let neither = refused(&entry("fields = [\"data.team\"]"));
        assert!(neither.contains("by-team") && neither.contains("map_prefix"), "{neither}");

        let unknown = refused(&entry("map = \"people\"\nfeilds = [\"data.team\"]"));
        assert!(unknown.contains("feilds"), "{unknown}");

        let bad_field = refused(&entry("map = \"people\"\nfields = [\"data.team\", \"team\"]"));
        assert!(bad_field.contains("by-team") && bad_field.contains("'team'"), "{bad_field}");
        let not_a_path = refused(&entry("map = \"people\"\nfields = [\"data.\"]"));
        assert!(not_a_path.contains("fields"), "{not_a_path}");

        let bad_name = refused("[[indexes]]\nservice = \"app\"\nname = \"by team\"\nmap = \"people\"");
        assert!(bad_name.contains("by team") && bad_name.contains("index name"), "{bad_name}");
        let not_a_service =
            refused("[[indexes]]\nservice = \"MPaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\nname = \"i\"\nmap = \"m\"");
        assert!(not_a_service.contains("service"), "{not_a_service}");
        let no_service = refused("[[indexes]]\nname = \"i\"\nmap = \"m\"");
        assert!(no_service.contains("service"), "{no_service}");
        assert!(FileConfig::parse("[indexes]\nservice = \"app\"").is_err(), "a table, not an array of tables");

        let twice = format!("{}\n{}", entry("map = \"a\""), entry("map = \"b\""));
        let twice = refused(&twice);
        assert!(twice.contains("by-team") && twice.contains("twice"), "{twice}");
        FileConfig::parse(&format!("{}\n{}", entry("map = \"a\""), entry("map = \"b\"").replace("app", "other")))
            .expect("the same name in another service");
    }

    #[test]
    fn push_providers_of_every_kind_parse() {
        let text = r#"
            [cognito.push]
            request_timeout = 5

            [cognito.push.providers.android]
            kind = "fcm"
            project_id = "my-project"
            credentials_file = "/etc/ferrosync/firebase.json"

            [cognito.push.providers.ios]
            kind = "apns"
            team_id = "ABCDE12345"
            key_id = "KEY1234567"
            key_file = "/etc/ferrosync/AuthKey_KEY1234567.p8"
            topic = "com.example.app"

            [cognito.push.providers.gateway]
            kind = "webhook"
            url = "https://push.example.com/hook"
            secret = "s3cret"
        "#;
        let config: FileConfig = toml::from_str(text).expect("the sample parses");
        let push = &config.cognito.push;
        assert_eq!(push.request_timeout, std::time::Duration::from_secs(5));
        assert_eq!(push.providers.len(), 3);
        let Some(ProviderConfig::Fcm(fcm)) = push.providers.get("android") else { panic!("{push:?}") };
        assert_eq!(fcm.project_id, "my-project");
        assert_eq!(fcm.base_url, "https://fcm.googleapis.com");
        assert_eq!(fcm.credentials_file.as_deref(), Some(Path::new("/etc/ferrosync/firebase.json")));
        assert_eq!(fcm.access_token, None);
        let Some(ProviderConfig::Apns(apns)) = push.providers.get("ios") else { panic!("{push:?}") };
        assert_eq!(apns.base_url, "https://api.push.apple.com");
        assert_eq!(apns.sandbox_base_url, "https://api.sandbox.push.apple.com");
        assert_eq!((apns.team_id.as_str(), apns.key_id.as_str()), ("ABCDE12345", "KEY1234567"));
        assert_eq!(apns.topic, "com.example.app");
        let Some(ProviderConfig::Webhook(hook)) = push.providers.get("gateway") else { panic!("{push:?}") };
        assert_eq!(hook.url, "https://push.example.com/hook");
        assert_eq!(hook.secret.as_deref(), Some("s3cret"));
        assert_eq!(config.settings().cognito.push, config.cognito.push, "carried into the server's settings");
    }

    #[test]
    fn the_listen_backlog_is_read_and_must_hold_a_connection() {
        assert_eq!(FileConfig::parse("listen_backlog = 16384").expect("parses").listen_backlog, Some(16384));
        assert_eq!(FileConfig::parse("").expect("parses").listen_backlog, None);
        let error = FileConfig::parse("listen_backlog = 0").expect_err("refused").to_string();
        assert!(error.contains("listen_backlog") && error.contains("at least 1"), "{error}");
        assert!(FileConfig::parse("listen_backlog = -1").is_err());
    }

    #[test]
    fn push_settings_default_to_no_providers() {
        let config: FileConfig = toml::from_str("listen = \"127.0.0.1:1\"").expect("parses");
        assert!(config.cognito.push.providers.is_empty());
        assert_eq!(config.cognito.push.request_timeout, std::time::Duration::from_secs(10));
    }

    #[test]
    fn push_provider_mistakes_are_refused() {
        let unknown_kind = "[cognito.push.providers.x]\nkind = \"sns\"\nurl = \"http://h\"";
        assert!(toml::from_str::<FileConfig>(unknown_kind).is_err());
        let misspelt = "[cognito.push.providers.x]\nkind = \"webhook\"\nurl = \"http://h\"\nsecrett = \"s\"";
        let error = toml::from_str::<FileConfig>(misspelt).expect_err("unknown field").to_string();
        assert!(error.contains("secrett"), "{error}");
        let missing_key = "[cognito.push.providers.x]\nkind = \"apns\"\nteam_id = \"T\"\nkey_id = \"K\"\ntopic = \"t\"";
        assert!(toml::from_str::<FileConfig>(missing_key).is_err());
        assert!(toml::from_str::<FileConfig>("[cognito]\npush_sync = 1").is_err());
    }
}
