//! The configuration reference: every key of `ferrosync.toml` with its default and the
//! environment variable that overrides it, and the variables that have no key. Printed by
//! `ferrosync config-reference` (committed as docs/CONFIGURATION.md); the tests check that
//! every key here is one the file accepts and that every limit is here.

use ferrosync_core::Limits;
use ferrosync_server::api::matrix::MatrixSettings;
use ferrosync_server::cognito::StreamSettings;
use ferrosync_server::push::PushSettings;
use ferrosync_server::state::Settings;
use std::fmt::Write;

/// One key of the file.
pub struct Key {
    /// Dotted path; `<name>` stands for a name of the operator's choosing, `[]` for an array
    /// of tables.
    pub key: &'static str,
    /// The default as TOML, or `None` when unset by default.
    pub default: Option<String>,
    /// A value to show (and to parse in tests) when there is no default.
    pub example: &'static str,
    pub env: Option<&'static str>,
    pub about: &'static str,
}

/// A variable with no key in the file.
pub struct EnvOnly {
    pub name: &'static str,
    pub about: &'static str,
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn key(key: &'static str, default: impl ToString, env: Option<&'static str>, about: &'static str) -> Key {
    Key { key, default: Some(default.to_string()), example: "", env, about }
}

fn unset(key: &'static str, example: &'static str, env: Option<&'static str>, about: &'static str) -> Key {
    Key { key, default: None, example, env, about }
}

/// Every key, in the order the reference lists them.
pub fn keys() -> Vec<Key> {
    let limits = Limits::default();
    let cognito = &limits.cognito;
    let settings = Settings::default();
    let streams = StreamSettings::default();
    let push = PushSettings::default();
    let matrix = MatrixSettings::default();
    vec![
        key("listen", toml_str("127.0.0.1:7700"), Some("FERROSYNC_LISTEN"), "Address to listen on."),
        key(
            "listen_backlog",
            ferrosync_server::DEFAULT_LISTEN_BACKLOG,
            Some("FERROSYNC_LISTEN_BACKLOG"),
            "Connections the kernel holds before the server accepts them (capped by `net.core.somaxconn`); above the clients that may reconnect at once, or their retries wait a second.",
        ),
        key(
            "data_dir",
            toml_str("./ferrosync-data"),
            Some("FERROSYNC_DATA_DIR"),
            "The embedded store and the credentials file.",
        ),
        key(
            "log_format",
            toml_str("text"),
            Some("FERROSYNC_LOG_FORMAT"),
            "`text` or `json` (one JSON object per line).",
        ),
        key(
            "durability",
            toml_str("full"),
            Some("FERROSYNC_DURABILITY"),
            "`full` (fsync every commit: an acknowledged write survives power loss) or `normal` (survives a process crash only; fsync at checkpoints, and a lone write is committed on its request's own thread, with no hand-off to the store's writer).",
        ),
        key(
            "store",
            toml_str("sqlite"),
            Some("FERROSYNC_STORE"),
            "`sqlite` (embedded) or a `postgres://user:password@host/db` URL shared by every node of a cluster.",
        ),
        key(
            "thread_scheduling",
            toml_str("auto"),
            Some("FERROSYNC_THREAD_SCHEDULING"),
            "How Linux schedules the runtime's threads: `batch` (`SCHED_BATCH`: a thread woken by the network waits for the running one to sleep or yield instead of preempting it, so on a core shared with the store's writer a commit is not cut into), `normal` (the kernel's default), or `auto`: `batch` when the process may use one CPU only (its affinity or CPU quota), else `normal`.",
        ),
        key(
            "limits.max_data_bytes",
            limits.max_data_bytes,
            None,
            "Largest document, list item or map item `data` (compact JSON bytes).",
        ),
        key("limits.max_message_bytes", limits.max_message_bytes, None, "Largest stream message (compact JSON bytes)."),
        key("limits.max_name_chars", limits.max_name_chars, None, "Longest unique name or map item key (characters)."),
        key("limits.max_ttl_secs", limits.max_ttl_secs, None, "Largest TTL."),
        key(
            "limits.retention_secs",
            limits.retention_secs,
            Some("FERROSYNC_RETENTION_SECS"),
            "How long change-log events are kept; an older since-token gets 410.",
        ),
        key("limits.max_token_ttl_secs", limits.max_token_ttl_secs, None, "Longest access-token lifetime."),
        key("limits.max_page_size", limits.max_page_size, None, "Largest page a read may ask for."),
        key("limits.default_page_size", limits.default_page_size, None, "Page size when none is asked for."),
        key("limits.max_longpoll_secs", limits.max_longpoll_secs, None, "Longest long-poll wait."),
        key(
            "limits.cognito.region",
            toml_str(&cognito.region),
            None,
            "The region identity pool and identity ids are minted in.",
        ),
        key(
            "limits.cognito.max_datasets_per_identity",
            cognito.max_datasets_per_identity,
            None,
            "Datasets one Cognito identity may hold.",
        ),
        key(
            "limits.cognito.max_records_per_dataset",
            cognito.max_records_per_dataset,
            None,
            "Live records one dataset may hold.",
        ),
        key(
            "limits.cognito.max_dataset_bytes",
            cognito.max_dataset_bytes,
            None,
            "Largest dataset (UTF-8 bytes of its live records' keys and values).",
        ),
        key(
            "limits.cognito.sync_session_ttl_secs",
            cognito.sync_session_ttl_secs,
            None,
            "How long a ListRecords SyncSessionToken is accepted by UpdateRecords.",
        ),
        key(
            "limits.cognito.credentials_ttl_secs",
            cognito.credentials_ttl_secs,
            None,
            "Lifetime of temporary identity credentials.",
        ),
        key(
            "limits.cognito.openid_token_ttl_secs",
            cognito.openid_token_ttl_secs,
            None,
            "Lifetime of a GetOpenIdToken token.",
        ),
        key(
            "limits.cognito.max_openid_token_ttl_secs",
            cognito.max_openid_token_ttl_secs,
            None,
            "Longest TokenDuration GetOpenIdTokenForDeveloperIdentity accepts.",
        ),
        key("limits.cognito.openid_issuer", toml_str(&cognito.openid_issuer), None, "The `iss` of OpenID tokens."),
        key(
            "limits.cognito.bulk_publish_interval_secs",
            cognito.bulk_publish_interval_secs,
            None,
            "Shortest time between successful bulk publishes of a pool.",
        ),
        key(
            "realtime.outbound_queue",
            settings.outbound_queue,
            None,
            "Frames queued per WebSocket before the client is told to resume (close 4008).",
        ),
        key("realtime.keepalive_secs", settings.keepalive_secs, None, "Ping interval on idle WebSockets."),
        key(
            "realtime.write_stall_secs",
            settings.write_stall_secs,
            None,
            "A WebSocket whose writes make no progress this long is dropped; its client resumes when back.",
        ),
        key("realtime.max_subscriptions", settings.max_subscriptions, None, "Subscriptions one connection may hold."),
        key(
            "cognito.streams.kinesis_endpoint",
            toml_str(&streams.kinesis_endpoint),
            None,
            "Kinesis API URL for Cognito Streams; `{region}` is the pool's region.",
        ),
        unset(
            "cognito.streams.region",
            "\"eu-west-1\"",
            None,
            "Sign Kinesis requests for this region instead of the pool's.",
        ),
        unset(
            "cognito.streams.access_key_id",
            "\"AKIA…\"",
            None,
            "Kinesis credentials; without them, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.",
        ),
        unset("cognito.streams.secret_access_key", "\"…\"", None, "See `access_key_id`."),
        unset("cognito.streams.session_token", "\"…\"", None, "See `access_key_id`."),
        key(
            "cognito.streams.request_timeout",
            streams.request_timeout.as_secs_f64(),
            None,
            "One Kinesis request, in seconds.",
        ),
        key(
            "cognito.push.request_timeout",
            push.request_timeout.as_secs_f64(),
            None,
            "One request to a push service, in seconds.",
        ),
        unset(
            "cognito.push.providers.<name>.kind",
            "\"webhook\"",
            None,
            "`webhook`, `fcm` or `apns`; `<name>` is the last segment of a pool's PushSync application ARN.",
        ),
        unset(
            "cognito.push.providers.<name>.url",
            "\"https://push.example/notify\"",
            None,
            "webhook: where each notification is POSTed.",
        ),
        unset(
            "cognito.push.providers.<name>.secret",
            "\"…\"",
            None,
            "webhook: signs each body (`X-Ferrosync-Signature: sha256=…`).",
        ),
        unset("cognito.push.providers.<name>.project_id", "\"my-project\"", None, "fcm: the Firebase project."),
        key(
            "cognito.push.providers.<name>.base_url",
            toml_str(ferrosync_server::push::settings::FCM_BASE_URL),
            None,
            "fcm/apns: the service's URL (APNs: https://api.push.apple.com).",
        ),
        unset(
            "cognito.push.providers.<name>.credentials_file",
            "\"/etc/ferrosync/fcm.json\"",
            None,
            "fcm: a Google service-account key.",
        ),
        unset(
            "cognito.push.providers.<name>.access_token",
            "\"…\"",
            None,
            "fcm: a fixed bearer token instead of a service account.",
        ),
        unset(
            "cognito.push.providers.<name>.token_uri",
            "\"https://oauth2.googleapis.com/token\"",
            None,
            "fcm: overrides the service account's token_uri.",
        ),
        key(
            "cognito.push.providers.<name>.sandbox_base_url",
            toml_str(ferrosync_server::push::settings::APNS_SANDBOX_BASE_URL),
            None,
            "apns: the endpoint for APNS_SANDBOX devices.",
        ),
        unset("cognito.push.providers.<name>.team_id", "\"ABCDE12345\"", None, "apns: the developer team."),
        unset("cognito.push.providers.<name>.key_id", "\"KEY1234567\"", None, "apns: the signing key's id."),
        unset(
            "cognito.push.providers.<name>.key_file",
            "\"/etc/ferrosync/AuthKey.p8\"",
            None,
            "apns: the PKCS#8 P-256 key (.p8).",
        ),
        unset("cognito.push.providers.<name>.topic", "\"com.example.app\"", None, "apns: the app's bundle id."),
        key(
            "matrix.server_name",
            toml_str(&matrix.server_name),
            Some("FERROSYNC_MATRIX_SERVER_NAME"),
            "The server name in Matrix user ids.",
        ),
        key(
            "matrix.registration",
            toml_str("closed"),
            Some("FERROSYNC_MATRIX_REGISTRATION"),
            "Who may register: `open`, `token` or `closed`.",
        ),
        unset(
            "matrix.registration_token",
            "\"…\"",
            None,
            "The token `m.login.registration_token` asks for with `registration = \"token\"`.",
        ),
        key("matrix.max_upload_bytes", matrix.max_upload_bytes, None, "Largest media upload."),
        unset(
            "indexes[].service",
            "\"app\"",
            None,
            "An index declared at start: the service (SID or unique name; created when named and missing).",
        ),
        unset("indexes[].name", "\"workers\"", None, "The index's name."),
        unset("indexes[].map", "\"workers\"", None, "One Map (SID or unique name); or `map_prefix`."),
        unset("indexes[].map_prefix", "\"workers-\"", None, "Every Map whose unique name starts with this."),
        key(
            "indexes[].fields",
            "[]",
            None,
            "Fields kept sorted for `==`, `in` and ranges (e.g. `data.attributes.worker_name`).",
        ),
    ]
}

/// Variables with no key in the file.
pub fn env_only() -> Vec<EnvOnly> {
    vec![
        EnvOnly { name: "FERROSYNC_CONFIG", about: "The configuration file (also `--config`)." },
        EnvOnly {
            name: "FERROSYNC_ACCOUNT_SID",
            about: "The root account's SID, instead of the one stored in the data directory.",
        },
        EnvOnly { name: "FERROSYNC_AUTH_TOKEN", about: "The root account's auth token (with FERROSYNC_ACCOUNT_SID)." },
        EnvOnly {
            name: "FERROSYNC_MASTER_KEY",
            about: "64 hex digits: the key that encrypts stored secrets, instead of the stored one.",
        },
        EnvOnly { name: "RUST_LOG", about: "Log filter (default `info,tower_http=warn`), e.g. `ferrosync=debug`." },
        EnvOnly { name: "FERROSYNC_URL", about: "Data commands and tail: the server (default http://127.0.0.1:7700)." },
        EnvOnly {
            name: "FERROSYNC_TOKEN",
            about: "Data commands and tail: an access token (else one is minted locally).",
        },
        EnvOnly { name: "FERROSYNC_SERVICE", about: "Data commands: the service to mint a token for." },
        EnvOnly {
            name: "FERROSYNC_IDENTITY",
            about: "Data commands: the identity a minted token speaks for (default ferrosync-cli).",
        },
        EnvOnly {
            name: "SSL_CERT_FILE",
            about: "A PEM file of CA certificates that `https://` webhooks, relays, streams, pushes and \
                    data commands trust, instead of the system's. On a host with none, only `http://` \
                    ones are sent (a warning says so at start).",
        },
        EnvOnly { name: "SSL_CERT_DIR", about: "A directory of such certificates (with or instead of SSL_CERT_FILE)." },
    ]
}

/// The reference as Markdown.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated by `ferrosync config-reference` (a test fails when this file is stale).\n\n\
         Precedence: command-line flags, then environment variables, then the file (`--config` or \
         `FERROSYNC_CONFIG`, TOML), then the defaults below. Durations are seconds.\n\n\
         | key | default | environment | meaning |\n|---|---|---|---|\n",
    );
    for k in keys() {
        let default = k.default.as_deref().map_or_else(|| "(unset)".to_owned(), |d| format!("`{d}`"));
        let env = k.env.map_or_else(String::new, |e| format!("`{e}`"));
        let _ = writeln!(out, "| `{}` | {default} | {env} | {} |", k.key, k.about.replace('|', "\\|"));
    }
    out.push_str("\n## Environment only\n\n| variable | meaning |\n|---|---|\n");
    for e in env_only() {
        let _ = writeln!(out, "| `{}` | {} |", e.name, e.about);
    }
    out.push_str("\n## Example\n\n```toml\n");
    out.push_str(&example());
    out.push_str("```\n");
    out
}

/// A file setting every key (defaults, or the examples), as the file expects it.
pub fn example() -> String {
    use std::collections::BTreeMap;
    // Group by table: `a.b.c` → table `a.b`, key `c`; `indexes[]` becomes `[[indexes]]`;
    // providers get two names so that each kind's keys sit in a table of that kind.
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for k in keys() {
        // An index names one Map or a prefix, not both.
        if k.key == "indexes[].map" {
            continue;
        }
        let value = k.default.clone().unwrap_or_else(|| k.example.to_owned());
        let (table, leaf) = k.key.rsplit_once('.').unwrap_or(("", k.key));
        let table = table.replace("indexes[]", "[indexes]");
        if table.contains("<name>") {
            let (kind, t) = match leaf {
                "url" | "secret" => ("webhook", table.replace("<name>", "gateway")),
                "project_id" | "credentials_file" | "access_token" | "token_uri" => {
                    ("fcm", table.replace("<name>", "android"))
                }
                "base_url" => ("fcm", table.replace("<name>", "android")),
                "kind" => continue,
                _ => ("apns", table.replace("<name>", "ios")),
            };
            let entry = tables.entry(t).or_default();
            if entry.is_empty() {
                entry.push(format!("kind = \"{kind}\""));
            }
            entry.push(format!("{leaf} = {value}"));
            continue;
        }
        tables.entry(table).or_default().push(format!("{leaf} = {value}"));
    }
    let mut out = String::new();
    for (table, lines) in tables {
        // `[indexes]` comes out as the array table `[[indexes]]`.
        if !table.is_empty() {
            let _ = writeln!(out, "[{table}]");
        }
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_example_setting_every_key_is_a_valid_file() {
        let text = example();
        crate::config::FileConfig::parse(&text).unwrap_or_else(|e| panic!("{e:#}\n{text}"));
    }

    #[test]
    fn every_limit_is_in_the_reference_with_its_default() {
        let listed: std::collections::HashMap<&str, Option<String>> =
            keys().into_iter().map(|k| (k.key, k.default)).collect();
        let limits = toml::Value::try_from(Limits::default()).unwrap();
        fn leaves(prefix: &str, v: &toml::Value, out: &mut Vec<(String, String)>) {
            match v {
                toml::Value::Table(t) => {
                    for (k, v) in t {
                        leaves(&format!("{prefix}.{k}"), v, out);
                    }
                }
                other => out.push((prefix.to_owned(), other.to_string())),
            }
        }
        let mut found = Vec::new();
        leaves("limits", &limits, &mut found);
        assert!(found.len() > 15);
        for (path, value) in found {
            let listed_default = listed.get(path.as_str()).unwrap_or_else(|| panic!("{path} is missing"));
            assert_eq!(listed_default.as_deref(), Some(value.as_str()), "{path}");
        }
    }

    #[test]
    fn the_committed_reference_is_current() {
        let committed = include_str!("../../../docs/CONFIGURATION.md");
        assert!(
            committed == markdown(),
            "docs/CONFIGURATION.md is stale: run `ferrosync config-reference > docs/CONFIGURATION.md`"
        );
    }
}
