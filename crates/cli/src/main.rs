//! `ferrosync`: the server binary and its command-line tools.

mod alloc;
mod backup;
mod bench;
mod config;
mod data;
mod event_format;
mod local;
mod reference;
mod sched;
mod tail;
mod transfer;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::{FileConfig, LogFormat};
use ferrosync_server::api::matrix::RegistrationPolicy;
use ferrosync_server::state::Settings;
use ferrosync_server::{AppState, ServerConfig};
use std::path::PathBuf;

/// mimalloc: the server allocates small, short-lived buffers on many threads, where glibc's
/// arenas contend and return memory to the kernel too eagerly. Built without asking for
/// transparent huge pages (`no_thp`): the kernel's khugepaged would, twenty minutes or so into a
/// run, fill each sparsely used 2 MB range of the heap up to a whole huge page, a step of tens of
/// MB in the resident set that no allocation made. Asked through its plain entry points where the
/// alignment allows (see `alloc`).
#[global_allocator]
static GLOBAL: alloc::Allocator = alloc::Allocator;

#[derive(Parser)]
#[command(name = "ferrosync", version, about = "A self-hosted real-time sync server")]
struct Cli {
    /// Configuration file (TOML); flags and environment variables override it.
    #[arg(long, global = true, env = "FERROSYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory holding the embedded store and the credentials.
    #[arg(long, global = true, env = "FERROSYNC_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, env = "FERROSYNC_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Where the data lives: `sqlite` (the embedded store in the data directory, the default)
    /// or a `postgres://user:password@host/db` URL that every node of a cluster shares.
    #[arg(long, global = true, env = "FERROSYNC_STORE", hide_env_values = true)]
    store: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "FERROSYNC_LISTEN")]
        listen: Option<String>,
        /// Connections the kernel holds before the server accepts them (default 4096).
        #[arg(long, env = "FERROSYNC_LISTEN_BACKLOG", value_parser = clap::value_parser!(u32).range(1..))]
        listen_backlog: Option<u32>,
        /// Who may register Matrix accounts: open, token (with `[matrix] registration_token`)
        /// or closed (the default).
        #[arg(long, env = "FERROSYNC_MATRIX_REGISTRATION", value_parser = ["open", "token", "closed"])]
        matrix_registration: Option<String>,
        /// The Matrix server name in user ids (default localhost).
        #[arg(long, env = "FERROSYNC_MATRIX_SERVER_NAME")]
        matrix_server_name: Option<String>,
        /// How the kernel schedules the runtime's threads: batch (a thread woken by the
        /// network never preempts the store's writer mid-commit), normal, or auto (the
        /// default: batch when the process may use one CPU only).
        #[arg(long, env = "FERROSYNC_THREAD_SCHEDULING", value_enum)]
        thread_scheduling: Option<sched::ThreadScheduling>,
    },
    /// Print the root account's credentials (created on first use).
    Credentials,
    /// Mint an access token for an identity.
    Token {
        /// Service SID or unique name.
        #[arg(long)]
        service: String,
        #[arg(long)]
        identity: String,
        /// Lifetime in seconds (default 3600, at most 86400).
        #[arg(long)]
        ttl: Option<u64>,
        /// API key that signs the token (default: the first key, created if none exists).
        #[arg(long)]
        api_key: Option<String>,
    },
    /// Manage API keys.
    ApiKey {
        #[command(subcommand)]
        action: ApiKeyAction,
    },
    /// Measure throughput and latency against a fresh server (or --url).
    // Boxed: the bench's many options would make every command as large as it.
    Bench(Box<bench::BenchArgs>),
    /// Print the native API's OpenAPI document.
    Openapi,
    /// Print the configuration reference (every key, its default and environment variable) as
    /// Markdown.
    ConfigReference,
    /// Copy the embedded store into a new directory while the server runs (one consistent
    /// snapshot, with the credentials file).
    Backup {
        /// The directory to create.
        to: PathBuf,
    },
    /// Write a service's objects, items and grants as newline-delimited JSON (SIDs, revisions
    /// and dates kept), from the store the data directory or --store names.
    Export {
        /// The service's SID or unique name.
        service: String,
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Read a dump made by `ferrosync export` into the store (standard input without FILE);
    /// run again after an interruption, it finishes what was left.
    Import {
        /// The dump.
        file: Option<PathBuf>,
    },
    /// Put a backup made by `ferrosync backup` into the data directory (stop the server first).
    Restore {
        /// The backup's directory.
        from: PathBuf,
        /// Replace the database the data directory already holds.
        #[arg(long)]
        force: bool,
    },
    /// How a cluster's PostgreSQL store keeps new events: print it, or set it to `short`
    /// (once every node runs this version or later) or `whole` (before a node on an older
    /// version joins; rewrites the events kept short).
    EventFormat {
        format: Option<event_format::Format>,
        /// Seconds `whole` waits for every node's writer to follow before rewriting (each
        /// reads the setting again every ten seconds).
        #[arg(long, default_value_t = 30)]
        settle: u64,
    },
    /// `doc`, `list`, `map` and `stream`: a running server's data, through the Rust SDK.
    #[command(flatten)]
    Data(data::Command),
}

#[derive(Subcommand)]
enum ApiKeyAction {
    /// Create a key and print its secret (shown only once).
    Create {
        #[arg(long)]
        name: Option<String>,
    },
    List,
    Delete {
        sid: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = match &cli.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let log_format = cli.log_format.or(file.log_format).unwrap_or_default();
    // The data commands print JSON for scripts: only warnings and errors go to stderr.
    let default_log = if matches!(cli.command, Command::Data(_)) { "warn" } else { "info,tower_http=warn" };
    config::init_logging(log_format, default_log);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Command::Serve { thread_scheduling, .. } = &cli.command {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let policy = thread_scheduling.or(file.thread_scheduling).unwrap_or_default().resolve(cpus);
        tracing::debug!(?policy, cpus, "the runtime's threads' scheduling");
        let warned = std::sync::Once::new();
        runtime.on_thread_start(move || {
            if let Err(e) = sched::apply(policy) {
                warned.call_once(
                    || tracing::warn!(error = %e, ?policy, "the runtime's threads keep the default scheduling"),
                );
            }
        });
    }
    let runtime = runtime.build()?;
    runtime.block_on(async move {
        let server_config = file.server_config(cli.data_dir.clone(), cli.store.clone())?;
        match cli.command {
            Command::Serve { listen, listen_backlog, matrix_registration, matrix_server_name, .. } => {
                let mut settings = file.settings();
                if let Some(policy) = matrix_registration.as_deref().and_then(RegistrationPolicy::parse) {
                    settings.matrix.registration = policy;
                }
                if let Some(name) = matrix_server_name {
                    settings.matrix.server_name = name;
                }
                if settings.matrix.registration == RegistrationPolicy::Token
                    && settings.matrix.registration_token.as_deref().is_none_or(str::is_empty)
                {
                    anyhow::bail!(
                        "Matrix registration by token needs [matrix] registration_token in the configuration"
                    );
                }
                let listener = Listen {
                    address: listen.or(file.listen.clone()).unwrap_or_else(|| "127.0.0.1:7700".to_owned()),
                    backlog: listen_backlog.or(file.listen_backlog).unwrap_or(ferrosync_server::DEFAULT_LISTEN_BACKLOG),
                };
                serve(server_config, settings, listener).await
            }
            Command::Credentials => {
                let creds = match &server_config.store {
                    ferrosync_server::StoreLocation::Embedded => {
                        ferrosync_server::Credentials::load_or_create(&server_config)?.0
                    }
                    ferrosync_server::StoreLocation::Postgres(_) => {
                        let store = ferrosync_server::open_store(&server_config).await?;
                        ferrosync_server::Credentials::load_or_create_for(&server_config, store.as_ref()).await?.0
                    }
                };
                println!("FERROSYNC_ACCOUNT_SID={}", creds.account_sid);
                println!("FERROSYNC_AUTH_TOKEN={}", creds.auth_token);
                Ok(())
            }
            Command::Token { service, identity, ttl, api_key } => {
                let token = data::mint_token(&server_config, &service, &identity, ttl, api_key.as_deref()).await?;
                println!("{token}");
                Ok(())
            }
            Command::ApiKey { action } => {
                let account = local::Account::open(&server_config).await?;
                match action {
                    ApiKeyAction::Create { name } => {
                        let key = account.create_key(name).await?;
                        println!("sid:    {}\nsecret: {}", key.sid, key.secret.unwrap_or_default());
                        eprintln!("Store the secret now: it cannot be shown again.");
                    }
                    ApiKeyAction::List => {
                        for key in account.keys().await? {
                            println!("{}\t{}\t{}", key.sid, key.date_created, key.friendly_name.unwrap_or_default());
                        }
                    }
                    ApiKeyAction::Delete { sid } => {
                        account.remove_key(&sid).await?;
                        println!("deleted {sid}");
                    }
                }
                Ok(())
            }
            Command::Bench(args) => bench::run(*args).await,
            Command::Openapi => {
                println!("{}", ferrosync_server::api::native::openapi::document());
                Ok(())
            }
            Command::ConfigReference => {
                print!("{}", reference::markdown());
                Ok(())
            }
            Command::Export { service, out } => transfer::export(&server_config, &service, out.as_deref()).await,
            Command::Import { file } => transfer::import(&server_config, file).await,
            Command::Backup { to } => backup::run_backup(&server_config, &to).await,
            Command::Restore { from, force } => backup::run_restore(&server_config, &from, force).await,
            Command::EventFormat { format, settle } => {
                event_format::run(&server_config, format, std::time::Duration::from_secs(settle)).await
            }
            Command::Data(command) => data::run(&server_config, command).await,
        }
    })
}

/// Where and how the server listens.
struct Listen {
    address: String,
    backlog: u32,
}

async fn serve(config: ServerConfig, settings: Settings, listen: Listen) -> anyhow::Result<()> {
    let (engine, creds, created) = ferrosync_server::open_engine(&config).await?;
    if created {
        let place = match &config.store {
            ferrosync_server::StoreLocation::Embedded => config.data_dir.display().to_string(),
            ferrosync_server::StoreLocation::Postgres(_) => "the database".to_owned(),
        };
        println!("Created root credentials in {place} (shown once; `ferrosync credentials` prints them again):");
        println!("  FERROSYNC_ACCOUNT_SID={}", creds.account_sid);
        println!("  FERROSYNC_AUTH_TOKEN={}", creds.auth_token);
    }
    if !config.indexes.is_empty() {
        let declared = ferrosync_server::bootstrap::declare_indexes(&engine, &config.indexes)
            .await
            .context("cannot declare the indexes of the configuration")?;
        tracing::info!(
            changed = declared.changed,
            unchanged = declared.unchanged,
            services_created = declared.services_created,
            "configured indexes declared"
        );
    }
    let state = AppState::try_new(engine, settings).context("cannot set up Cognito Sync push providers")?;
    let listener = ferrosync_server::listen_with_backlog(&listen.address, listen.backlog)
        .await
        .with_context(|| format!("cannot listen on {}", listen.address))?;
    // The embedded store is this process's alone: commands reach it through this socket.
    let local = match &config.store {
        ferrosync_server::StoreLocation::Embedded => match ferrosync_server::LocalSocket::bind(&config.data_dir) {
            Ok(socket) => Some(socket),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    data_dir = %config.data_dir.display(),
                    "no local socket: `ferrosync` commands cannot reach this server's store while it runs"
                );
                None
            }
        },
        ferrosync_server::StoreLocation::Postgres(_) => None,
    };
    tracing::info!(
        address = %listener.local_addr()?,
        store = %config.store.describe(),
        data_dir = %config.data_dir.display(),
        local_socket = %local.as_ref().map_or_else(|| "none".to_owned(), |s| s.path().display().to_string()),
        "ferrosync is serving"
    );
    ferrosync_server::run_with_local(listener, local, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown requested; draining connections");
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        // clap checks names, conflicts and defaults of every subcommand here, not at run time.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
