//! `ferrosync doc|list|map|stream …`: read, write and watch a running server's data.
//!
//! Everything here goes through the Rust SDK (`ferrosync-client`), so the commands behave as
//! an application built on it would: the same REST calls, the same WebSocket subscriptions
//! that resume after a reconnect, the same errors.

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use ferrosync_client::{
    Client, ClientError, ClientEvent, ConnectionState, Item, ItemKey, ItemsQuery, OpenMode, OpenOptions, Order,
    Subscription, SyncEvent, SyncEventKind, TokenInfo,
};
use ferrosync_core::ErrorCode;
use ferrosync_core::auth::Principal;
use ferrosync_server::{ServerConfig, StoreLocation};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::time::Duration;

/// Lifetime of a token minted for a command. A watch renews it before it runs out.
const MINTED_TOKEN_TTL_SECS: u64 = 3600;

/// How long closing the connection may take once a command is done.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const TOKEN_HELP: &str = "\
Authentication: pass an access token with --token (or FERROSYNC_TOKEN); the token names the \
service and the identity. Without one, a token is minted locally exactly as `ferrosync token` \
does: from the server's data directory (--data-dir, --store, --config; it must be the store of \
the server at --url), signed by the account's first API key (one is created if there is none), \
for --service as --identity (default ferrosync-cli), valid for an hour; `watch` renews it \
before it expires. A minted token is an ordinary end-user token: on a service without ACLs \
(the default) it may read and write every object of the service; on a service with \
acl_enabled it reaches only objects it created or was granted (see \
/api/v1/services/{service}/{collection}/{id}/permissions/{identity}).

JSON arguments may be `-` to read the JSON from standard input. Results are printed as JSON; \
`watch` prints one compact JSON line per change until Ctrl-C.";

/// Where the server is and how to authenticate; shared by every data command.
#[derive(Args, Clone)]
pub struct Remote {
    /// The server's base URL.
    #[arg(long, global = true, env = "FERROSYNC_URL", default_value = "http://127.0.0.1:7700")]
    url: String,
    /// An access token; without one, a token is minted locally (see below).
    #[arg(long, global = true, env = "FERROSYNC_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The service (SID or unique name) to mint a token for; ignored with --token, whose
    /// service is the one it names.
    #[arg(long, global = true, env = "FERROSYNC_SERVICE")]
    pub service: Option<String>,
    /// The identity a minted token speaks for; ignored with --token.
    #[arg(long, global = true, env = "FERROSYNC_IDENTITY", default_value = "ferrosync-cli")]
    identity: String,
}

/// The data commands, flattened into the binary's top-level commands.
#[derive(Subcommand)]
pub enum Command {
    /// Read, write and watch documents (one JSON object each).
    #[command(after_long_help = TOKEN_HELP)]
    Doc(DocCommand),
    /// Read, append to, change and watch lists (items in the order they were added).
    #[command(after_long_help = TOKEN_HELP)]
    List(ListCommand),
    /// Read, set, remove and watch map items (JSON by string key).
    #[command(after_long_help = TOKEN_HELP)]
    Map(MapCommand),
    /// Publish to and watch message streams.
    #[command(after_long_help = TOKEN_HELP)]
    Stream(StreamCommand),
    /// Follow a service's change log: one line per change, until Ctrl-C.
    #[command(after_long_help = TOKEN_HELP)]
    Tail(crate::tail::TailCommand),
}

#[derive(Args)]
pub struct DocCommand {
    #[command(flatten, next_help_heading = "Server and token")]
    remote: Remote,
    #[command(subcommand)]
    action: DocAction,
}

#[derive(Subcommand)]
enum DocAction {
    /// Print a document: its sid, unique_name, revision and data.
    #[command(after_long_help = TOKEN_HELP)]
    Get {
        /// The document's SID or unique name.
        id: String,
    },
    /// Replace a document's data (creating the document when missing) and print it.
    #[command(after_long_help = TOKEN_HELP)]
    Set {
        /// The document's SID or unique name.
        id: String,
        /// The new data: a JSON object, or `-` for standard input.
        #[arg(value_parser = parse_json)]
        json: Value,
        /// Write only if the document is at this revision (it must exist then); otherwise
        /// fail with a conflict.
        #[arg(long, value_name = "REV")]
        if_match: Option<u64>,
    },
    /// Merge a JSON object's top-level fields into a document's data (creating the document
    /// when missing), retrying on concurrent changes, and print it.
    #[command(after_long_help = TOKEN_HELP)]
    Update {
        /// The document's SID or unique name.
        id: String,
        /// The fields to merge: a JSON object, or `-` for standard input.
        #[arg(value_parser = parse_json)]
        json: Value,
    },
    /// Remove a document.
    #[command(after_long_help = TOKEN_HELP)]
    Remove {
        /// The document's SID or unique name.
        id: String,
    },
    /// Print one JSON line per change of a document until Ctrl-C.
    #[command(after_long_help = TOKEN_HELP)]
    Watch(WatchArgs),
}

#[derive(Args)]
pub struct ListCommand {
    #[command(flatten, next_help_heading = "Server and token")]
    remote: Remote,
    #[command(subcommand)]
    action: ListAction,
}

#[derive(Subcommand)]
enum ListAction {
    /// Print one item (with INDEX) or the list's items as a JSON array.
    #[command(after_long_help = TOKEN_HELP)]
    Get {
        /// The list's SID or unique name.
        id: String,
        /// Print only the item at this index.
        #[arg(conflicts_with_all = ["limit", "order", "from"])]
        index: Option<u64>,
        #[command(flatten)]
        listing: Listing,
        /// Start at this index (inclusive).
        #[arg(long, value_name = "INDEX")]
        from: Option<u64>,
    },
    /// Append an item (creating the list when missing) and print it with its index.
    #[command(after_long_help = TOKEN_HELP)]
    Push {
        /// The list's SID or unique name.
        id: String,
        /// The item's data: a JSON object, or `-` for standard input.
        #[arg(value_parser = parse_json)]
        json: Value,
    },
    /// Replace the data of an existing item and print it.
    #[command(after_long_help = TOKEN_HELP)]
    Set {
        /// The list's SID or unique name.
        id: String,
        index: u64,
        /// The item's data: a JSON object, or `-` for standard input.
        #[arg(value_parser = parse_json)]
        json: Value,
        /// Write only if the item is at this revision; otherwise fail with a conflict.
        #[arg(long, value_name = "REV")]
        if_match: Option<u64>,
    },
    /// Remove an item.
    #[command(after_long_help = TOKEN_HELP)]
    Remove {
        /// The list's SID or unique name.
        id: String,
        index: u64,
    },
    /// Print one JSON line per change of a list until Ctrl-C.
    #[command(after_long_help = TOKEN_HELP)]
    Watch(WatchArgs),
}

#[derive(Args)]
pub struct MapCommand {
    #[command(flatten, next_help_heading = "Server and token")]
    remote: Remote,
    #[command(subcommand)]
    action: MapAction,
}

#[derive(Subcommand)]
enum MapAction {
    /// Print one item (with KEY) or the map's items as a JSON array.
    #[command(after_long_help = TOKEN_HELP)]
    Get {
        /// The map's SID or unique name.
        id: String,
        /// Print only the item with this key.
        #[arg(conflicts_with_all = ["limit", "order", "from"])]
        key: Option<String>,
        #[command(flatten)]
        listing: Listing,
        /// Start at this key (inclusive).
        #[arg(long, value_name = "KEY")]
        from: Option<String>,
    },
    /// Create or replace an item (creating the map when missing) and print it.
    #[command(after_long_help = TOKEN_HELP)]
    Set {
        /// The map's SID or unique name.
        id: String,
        key: String,
        /// The item's data: a JSON object, or `-` for standard input.
        #[arg(value_parser = parse_json)]
        json: Value,
        /// Write only if the item is at this revision; otherwise fail with a conflict.
        #[arg(long, value_name = "REV")]
        if_match: Option<u64>,
    },
    /// Remove an item.
    #[command(after_long_help = TOKEN_HELP)]
    Remove {
        /// The map's SID or unique name.
        id: String,
        key: String,
    },
    /// Print one JSON line per change of a map until Ctrl-C.
    #[command(after_long_help = TOKEN_HELP)]
    Watch(WatchArgs),
}

#[derive(Args)]
pub struct StreamCommand {
    #[command(flatten, next_help_heading = "Server and token")]
    remote: Remote,
    #[command(subcommand)]
    action: StreamAction,
}

#[derive(Subcommand)]
enum StreamAction {
    /// Publish a message (a JSON object of at most 4 KiB; the stream is created when missing)
    /// and print its message_sid.
    #[command(after_long_help = TOKEN_HELP)]
    Publish {
        /// The stream's SID or unique name.
        id: String,
        /// The message: a JSON object, or `-` for standard input.
        #[arg(value_parser = parse_json)]
        json: Value,
    },
    /// Print one JSON line per message published to a stream until Ctrl-C.
    #[command(after_long_help = TOKEN_HELP)]
    Watch(WatchArgs),
}

/// How to list a list's or map's items.
#[derive(Args)]
struct Listing {
    /// Print at most this many items (default: all).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Ascending or descending by index or key.
    #[arg(long, value_enum, default_value_t = SortOrder::Asc)]
    order: SortOrder,
}

#[derive(Args)]
struct WatchArgs {
    /// The object's SID or unique name.
    id: String,
    /// Create the object when it does not exist yet (otherwise that is an error).
    #[arg(long)]
    create: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum SortOrder {
    Asc,
    Desc,
}

impl From<SortOrder> for Order {
    fn from(o: SortOrder) -> Self {
        match o {
            SortOrder::Asc => Order::Asc,
            SortOrder::Desc => Order::Desc,
        }
    }
}

/// Runs a data command against the server at `--url`; `config` locates the data directory a
/// token is minted from when none is given.
pub async fn run(config: &ServerConfig, mut command: Command) -> anyhow::Result<()> {
    if let Command::Tail(t) = &mut command
        && let Some(service) = t.service_name.clone()
    {
        t.remote.service = Some(service);
    }
    let remote = match &command {
        Command::Doc(c) => &c.remote,
        Command::List(c) => &c.remote,
        Command::Map(c) => &c.remote,
        Command::Stream(c) => &c.remote,
        Command::Tail(c) => &c.remote,
    };
    let session = Session::connect(config, remote).await?;
    let outcome = match command {
        Command::Doc(c) => run_doc(&session, c.action).await,
        Command::List(c) => run_list(&session, c.action).await,
        Command::Map(c) => run_map(&session, c.action).await,
        Command::Stream(c) => run_stream(&session, c.action).await,
        Command::Tail(c) => crate::tail::run(&session, c).await,
    };
    // A clean close, so that the server does not log a dropped connection.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, session.client.shutdown()).await;
    outcome
}

/// Opens an object only if it exists: reads and removals must not create what they name.
fn existing() -> OpenOptions {
    OpenOptions { mode: OpenMode::OpenExisting, ..OpenOptions::default() }
}

async fn run_doc(s: &Session, action: DocAction) -> anyhow::Result<()> {
    match action {
        DocAction::Get { id } => {
            let what = format!("document {id}");
            // Opening reads the document: its data and revision come with the answer.
            let doc = s.client.open_document(id, existing()).await.map_err(|e| s.fail(e, &what))?;
            print_pretty(&document_json(&doc))
        }
        DocAction::Set { id, json, if_match } => {
            let what = format!("document {id}");
            let opts = if if_match.is_some() { existing() } else { OpenOptions::default() };
            let doc = s.client.open_document(id, opts).await.map_err(|e| s.fail(e, &what))?;
            let written = match if_match {
                Some(rev) => doc.set_if(json, rev).await,
                None => doc.set(json).await,
            };
            match written {
                Ok(_) => print_pretty(&document_json(&doc)),
                Err(e) if e.is_conflict() => {
                    let rev = if_match.unwrap_or_default();
                    // The conflict answer does not carry the current revision: read it.
                    match doc.get().await {
                        Ok(_) => bail!("conflict: revision is {}, If-Match was {rev}", doc.revision()),
                        Err(_) => bail!("conflict: If-Match was {rev}: {e}"),
                    }
                }
                Err(e) => Err(s.fail(e, &what)),
            }
        }
        DocAction::Update { id, json } => {
            let what = format!("document {id}");
            let doc = s.client.document(id).await.map_err(|e| s.fail(e, &what))?;
            doc.update(json).await.map_err(|e| s.fail(e, &what))?;
            print_pretty(&document_json(&doc))
        }
        DocAction::Remove { id } => {
            let what = format!("document {id}");
            let doc = s.client.open_document(id, existing()).await.map_err(|e| s.fail(e, &what))?;
            doc.remove().await.map_err(|e| s.fail(e, &what))
        }
        DocAction::Watch(w) => {
            let what = format!("document {}", w.id);
            let doc = s.client.open_document(&w.id, w.open_options()).await.map_err(|e| s.fail(e, &what))?;
            let subscription = doc.subscribe().await.map_err(|e| s.fail(e, &what))?;
            watch(s, subscription, &format!("{what} ({})", doc.sid())).await
        }
    }
}

async fn run_list(s: &Session, action: ListAction) -> anyhow::Result<()> {
    match action {
        ListAction::Get { id, index, listing, from } => {
            let what = format!("list {id}");
            let list = s.client.open_list(&id, existing()).await.map_err(|e| s.fail(e, &what))?;
            if let Some(i) = index {
                let item = list.get(i).await.map_err(|e| s.fail(e, &format!("item {i} of list {id}")))?;
                return print_pretty(&item_json(&item));
            }
            print_items(s, list.items(), listing, from, &what).await
        }
        ListAction::Push { id, json } => {
            let what = format!("list {id}");
            let list = s.client.list(id).await.map_err(|e| s.fail(e, &what))?;
            let item = list.push(json).await.map_err(|e| s.fail(e, &what))?;
            print_pretty(&item_json(&item))
        }
        ListAction::Set { id, index, json, if_match } => {
            let list = s.client.open_list(&id, existing()).await.map_err(|e| s.fail(e, &format!("list {id}")))?;
            let written = match if_match {
                Some(rev) => list.set_if(index, json, rev).await,
                None => list.set(index, json).await,
            };
            let item = written.map_err(|e| s.fail(e, &format!("item {index} of list {id}")))?;
            print_pretty(&item_json(&item))
        }
        ListAction::Remove { id, index } => {
            let list = s.client.open_list(&id, existing()).await.map_err(|e| s.fail(e, &format!("list {id}")))?;
            list.remove_item(index).await.map_err(|e| s.fail(e, &format!("item {index} of list {id}")))
        }
        ListAction::Watch(w) => {
            let what = format!("list {}", w.id);
            let list = s.client.open_list(&w.id, w.open_options()).await.map_err(|e| s.fail(e, &what))?;
            let subscription = list.subscribe().await.map_err(|e| s.fail(e, &what))?;
            watch(s, subscription, &format!("{what} ({})", list.sid())).await
        }
    }
}

async fn run_map(s: &Session, action: MapAction) -> anyhow::Result<()> {
    match action {
        MapAction::Get { id, key, listing, from } => {
            let what = format!("map {id}");
            let map = s.client.open_map(&id, existing()).await.map_err(|e| s.fail(e, &what))?;
            if let Some(k) = key {
                let item = map.get(&k).await.map_err(|e| s.fail(e, &format!("key '{k}' in map {id}")))?;
                return print_pretty(&item_json(&item));
            }
            print_items(s, map.items(), listing, from, &what).await
        }
        MapAction::Set { id, key, json, if_match } => {
            let map = s.client.map(&id).await.map_err(|e| s.fail(e, &format!("map {id}")))?;
            let written = match if_match {
                Some(rev) => map.set_if(&key, json, rev).await,
                None => map.set(&key, json).await,
            };
            let item = written.map_err(|e| s.fail(e, &format!("key '{key}' in map {id}")))?;
            print_pretty(&item_json(&item))
        }
        MapAction::Remove { id, key } => {
            let map = s.client.open_map(&id, existing()).await.map_err(|e| s.fail(e, &format!("map {id}")))?;
            map.remove_item(&key).await.map_err(|e| s.fail(e, &format!("key '{key}' in map {id}")))
        }
        MapAction::Watch(w) => {
            let what = format!("map {}", w.id);
            let map = s.client.open_map(&w.id, w.open_options()).await.map_err(|e| s.fail(e, &what))?;
            let subscription = map.subscribe().await.map_err(|e| s.fail(e, &what))?;
            watch(s, subscription, &format!("{what} ({})", map.sid())).await
        }
    }
}

async fn run_stream(s: &Session, action: StreamAction) -> anyhow::Result<()> {
    match action {
        StreamAction::Publish { id, json } => {
            let what = format!("stream {id}");
            let stream = s.client.stream(id).await.map_err(|e| s.fail(e, &what))?;
            let sid = stream.publish(json).await.map_err(|e| s.fail(e, &what))?;
            print_pretty(&json!({ "message_sid": sid }))
        }
        StreamAction::Watch(w) => {
            let what = format!("stream {}", w.id);
            let stream = s.client.open_stream(&w.id, w.open_options()).await.map_err(|e| s.fail(e, &what))?;
            let subscription = stream.subscribe().await.map_err(|e| s.fail(e, &what))?;
            watch(s, subscription, &format!("{what} ({})", stream.sid())).await
        }
    }
}

impl WatchArgs {
    fn open_options(&self) -> OpenOptions {
        if self.create { OpenOptions::default() } else { existing() }
    }
}

/// Prints a list's or map's items in the listing's order, starting at `from`.
async fn print_items(
    s: &Session,
    query: ItemsQuery,
    listing: Listing,
    from: Option<impl Into<ItemKey>>,
    what: &str,
) -> anyhow::Result<()> {
    let mut query = query.order(listing.order.into());
    if let Some(f) = from {
        query = query.from(f);
    }
    let items = query.list(listing.limit, None).await.map_err(|e| s.fail(e, what))?;
    print_pretty(&Value::Array(items.iter().map(item_json).collect()))
}

/// Prints each change as one JSON line until Ctrl-C, the object's removal, or a connection
/// that cannot be restored.
async fn watch(s: &Session, mut subscription: Subscription, what: &str) -> anyhow::Result<()> {
    let mut client_events = s.client.events();
    // Said on stderr, so that stdout stays pure JSON lines; scripts and tests wait for it.
    eprintln!("watching {what}; Ctrl-C stops");
    let ctrl_c = async {
        // Without a signal handler, run until killed rather than stop at once.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(ctrl_c);
    let mut reconnecting = false;
    loop {
        tokio::select! {
            () = &mut ctrl_c => return Ok(()),
            event = subscription.recv() => {
                let Some(event) = event else { bail!("the connection to {} closed", s.explain.url) };
                if !print_line(&event_json(&event))? {
                    return Ok(()); // The reader went away (`| head -1`).
                }
                if let SyncEventKind::Removed { .. } = event.kind {
                    eprintln!("{what} was removed");
                    return Ok(());
                }
            }
            event = client_events.next() => match event {
                None => bail!("the connection to {} closed", s.explain.url),
                Some(ClientEvent::TokenAboutToExpire { .. }) if s.explain.minter.is_none() => {
                    eprintln!("the access token expires in three minutes; the watch stops then");
                }
                Some(ClientEvent::TokenAboutToExpire { .. } | ClientEvent::TokenExpired) => s.renew_token().await?,
                Some(ClientEvent::ConnectionError { terminal: true, message, .. }) => {
                    bail!("{} refused the connection: {message}", s.explain.url)
                }
                Some(ClientEvent::ConnectionError { terminal: false, message, .. }) if !reconnecting => {
                    reconnecting = true;
                    eprintln!("connection lost ({message}); reconnecting");
                }
                Some(ClientEvent::ConnectionStateChanged(ConnectionState::Connected)) if reconnecting => {
                    reconnecting = false;
                    eprintln!("reconnected; watching {what}");
                }
                Some(_) => {}
            },
        }
    }
}

/// The connected client, and what explains its errors and renews its token.
pub struct Session {
    pub client: Client,
    explain: Explain,
}

/// What error messages name: the server, the token's identity, where the token came from.
struct Explain {
    url: String,
    identity: String,
    /// Set when the token was minted here, so it can be minted again.
    minter: Option<Minter>,
}

struct Minter {
    config: ServerConfig,
    service: String,
    identity: String,
}

/// Where a token is minted from, for messages.
fn store_place(config: &ServerConfig) -> String {
    match &config.store {
        StoreLocation::Embedded => format!("the data directory {}", config.data_dir.display()),
        StoreLocation::Postgres(_) => "the PostgreSQL store".to_owned(),
    }
}

impl Minter {
    async fn mint(&self) -> anyhow::Result<String> {
        let context = || {
            format!(
                "no --token given, and no token could be minted for service '{}' from {}",
                self.service,
                store_place(&self.config)
            )
        };
        // Opening the engine would create an empty store (and new credentials) in a data
        // directory that has none; a token from there would be refused anyway.
        if self.config.store == StoreLocation::Embedded
            && !self.config.data_dir.join(ferrosync_server::bootstrap::DATABASE_FILE).exists()
        {
            return Err(anyhow::anyhow!(
                "{} holds no server data: pass --token, or the server's --data-dir",
                self.config.data_dir.display()
            ))
            .with_context(context);
        }
        mint_token(&self.config, &self.service, &self.identity, Some(MINTED_TOKEN_TTL_SECS), None)
            .await
            .with_context(context)
    }
}

impl Session {
    async fn connect(config: &ServerConfig, remote: &Remote) -> anyhow::Result<Session> {
        let (token, minter) = match remote.token.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => (t.to_owned(), None),
            None => {
                let Some(service) = remote.service.clone() else {
                    bail!(
                        "no access token: pass --token (or FERROSYNC_TOKEN), or --service (or FERROSYNC_SERVICE) \
                         to mint one from the data directory"
                    )
                };
                let minter = Minter { config: config.clone(), service, identity: remote.identity.clone() };
                (minter.mint().await?, Some(minter))
            }
        };
        // An unreadable token is refused by `connect` below, with the reason.
        let identity = TokenInfo::parse(&token).map(|i| i.identity).unwrap_or_default();
        let explain = Explain { url: remote.url.trim_end_matches('/').to_owned(), identity, minter };
        // Connecting (rather than connecting lazily) reports a refused token or an unreachable
        // server at once, and a watch needs the WebSocket anyway.
        let client = Client::connect(&explain.url, &token).await.map_err(|e| explain.fail(e, "the connection"))?;
        Ok(Session { client, explain })
    }

    pub fn fail(&self, e: ClientError, what: &str) -> anyhow::Error {
        self.explain.fail(e, what)
    }

    /// Replaces a minted token before it runs out; a given one cannot be renewed here.
    async fn renew_token(&self) -> anyhow::Result<()> {
        let Some(minter) = &self.explain.minter else {
            bail!("the access token has expired: run again with a fresh --token")
        };
        let token = minter.mint().await?;
        self.client.update_token(&token).await.map_err(|e| self.fail(e, "the token renewal"))
    }
}

impl Explain {
    /// The message a user sees for an SDK error while acting on `what` ("document settings").
    fn fail(&self, e: ClientError, what: &str) -> anyhow::Error {
        match &e {
            ClientError::Api { status: 404, code, message } => {
                if *code == ErrorCode::ServiceNotFound.code() {
                    anyhow::anyhow!("not found: {message}")
                } else {
                    anyhow::anyhow!("not found: {what}")
                }
            }
            ClientError::Api { status: 412, message, .. } => anyhow::anyhow!("conflict: {what}: {message}"),
            ClientError::Api { status: 409, message, .. } => anyhow::anyhow!("already exists: {message}"),
            ClientError::Api { status: 401, message, .. } => match &self.minter {
                Some(m) => anyhow::anyhow!(
                    "unauthorized: {message} (the token was minted from {}: is that the store of the server at {}?)",
                    store_place(&m.config),
                    self.url
                ),
                None => anyhow::anyhow!("unauthorized: {message} (check --token)"),
            },
            ClientError::Api { status: 403, message, .. } => anyhow::anyhow!(
                "forbidden: {message} (the service has ACLs enabled: grant identity '{}' access to {what}, or use \
                 the token of an identity that has it)",
                self.identity
            ),
            ClientError::Api { status: 400 | 413 | 415 | 422, message, .. } => {
                anyhow::anyhow!("invalid request for {what}: {message}")
            }
            ClientError::Api { status, message, .. } => anyhow::anyhow!("server error {status} on {what}: {message}"),
            ClientError::Transport(message) | ClientError::Unreachable(message) => {
                anyhow::anyhow!("cannot reach the server at {}: {message}", self.url)
            }
            ClientError::InvalidArgument { field: "token", message } => {
                anyhow::anyhow!("unreadable access token (--token): {message}")
            }
            ClientError::InvalidArgument { .. } => anyhow::anyhow!("{e}"),
            _ => anyhow::anyhow!("{what}: {e}"),
        }
    }
}

/// Mints an access token from the store `config` names, as the root account: signed by
/// `api_key`, or by the account's first key (created when there is none).
pub async fn mint_token(
    config: &ServerConfig,
    service: &str,
    identity: &str,
    ttl: Option<u64>,
    api_key: Option<&str>,
) -> anyhow::Result<String> {
    let (engine, _, _) = ferrosync_server::open_engine(config).await?;
    let minted = match api_key {
        Some(k) => {
            let k = ferrosync_core::Sid::parse_kind(k, ferrosync_core::SidKind::ApiKey)?;
            engine.mint_token_with_key(&Principal::Root, &k, service, identity, ttl).await?
        }
        None => engine.mint_token(&Principal::Root, service, identity, ttl).await?,
    };
    Ok(minted.token)
}

/// A JSON argument, or standard input for `-`; clap calls it while parsing, so bad input
/// fails before anything is sent (or a token minted).
fn parse_json(arg: &str) -> Result<Value, String> {
    if arg == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("standard input is not valid JSON: {e}"))
    } else {
        serde_json::from_str(arg).map_err(|e| format!("not valid JSON: {e}"))
    }
}

fn document_json(doc: &ferrosync_client::Document) -> Value {
    let mut out = Map::new();
    out.insert("sid".into(), doc.sid().into());
    out.insert("unique_name".into(), doc.unique_name().into());
    out.insert("revision".into(), doc.revision().into());
    out.insert("data".into(), doc.data());
    if let Some(expires) = doc.date_expires() {
        out.insert("date_expires".into(), expires.into());
    }
    Value::Object(out)
}

fn insert_key(out: &mut Map<String, Value>, key: &ItemKey) {
    match key {
        ItemKey::Index(i) => out.insert("index".into(), (*i).into()),
        ItemKey::Key(k) => out.insert("key".into(), k.as_str().into()),
    };
}

fn item_json(item: &Item) -> Value {
    let mut out = Map::new();
    insert_key(&mut out, &item.key);
    out.insert("data".into(), item.data.clone());
    out.insert("revision".into(), item.revision.into());
    if let Some(expires) = &item.date_expires {
        out.insert("date_expires".into(), expires.as_str().into());
    }
    Value::Object(out)
}

/// One change as a flat JSON object: `kind`, where (`index`/`key`), `data`, `revision`, and
/// the log position `seq`, the `identity` that made it and `is_local`.
fn event_json(e: &SyncEvent) -> Value {
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_owned(), v);
    };
    match &e.kind {
        SyncEventKind::Updated { data, previous, revision } => {
            put("kind", "updated".into());
            put("data", data.clone());
            put("revision", (*revision).into());
            put("previous", previous.clone().unwrap_or(Value::Null));
        }
        SyncEventKind::ItemAdded { item } => {
            put("kind", "item_added".into());
            if let Value::Object(fields) = item_json(item) {
                out.extend(fields);
            }
        }
        SyncEventKind::ItemUpdated { item, previous } => {
            put("kind", "item_updated".into());
            put("previous", previous.clone().unwrap_or(Value::Null));
            if let Value::Object(fields) = item_json(item) {
                out.extend(fields);
            }
        }
        SyncEventKind::ItemRemoved { key, previous, reason } => {
            put("kind", "item_removed".into());
            put("previous", previous.clone().unwrap_or(Value::Null));
            put("reason", reason.clone().into());
            insert_key(&mut out, key);
        }
        SyncEventKind::MessagePublished { message_sid, data } => {
            put("kind", "message_published".into());
            put("message_sid", message_sid.as_str().into());
            put("data", data.clone());
        }
        SyncEventKind::Removed { reason } => {
            put("kind", "removed".into());
            put("reason", reason.clone().into());
        }
    }
    out.insert("object_sid".into(), e.object_sid.as_str().into());
    out.insert("seq".into(), e.seq.into());
    out.insert("identity".into(), e.identity.as_str().into());
    out.insert("is_local".into(), e.is_local.into());
    Value::Object(out)
}

fn print_pretty(value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    print_text(&text).map(drop)
}

/// Prints one line and flushes it, so a reader sees each event as it happens. False when
/// stdout is closed.
pub fn print_line(value: &Value) -> anyhow::Result<bool> {
    print_text(&serde_json::to_string(value)?)
}

pub fn print_text(text: &str) -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to standard output"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: SyncEventKind) -> SyncEvent {
        SyncEvent {
            kind,
            is_local: false,
            object_sid: "MPx".into(),
            identity: "alice".into(),
            seq: 7,
            token: "t".into(),
        }
    }

    #[test]
    fn events_print_as_flat_objects() {
        let item = Item { key: ItemKey::Key("k".into()), data: json!({"a": 1}), revision: 2, date_expires: None };
        assert_eq!(
            event_json(&event(SyncEventKind::ItemUpdated { item, previous: Some(json!({"a": 0})) })),
            json!({"kind": "item_updated", "key": "k", "data": {"a": 1}, "revision": 2, "previous": {"a": 0},
                   "object_sid": "MPx", "seq": 7, "identity": "alice", "is_local": false})
        );
        let removed = event_json(&event(SyncEventKind::ItemRemoved {
            key: ItemKey::Index(3),
            previous: None,
            reason: Some("expired".into()),
        }));
        assert_eq!(removed["index"], 3);
        assert_eq!(removed["reason"], "expired");
        let doc = event_json(&event(SyncEventKind::Updated { data: json!({}), previous: None, revision: 4 }));
        assert_eq!((doc["kind"].as_str(), doc["revision"].as_u64()), (Some("updated"), Some(4)));
    }

    #[test]
    fn json_arguments_are_checked() {
        assert_eq!(parse_json(r#"{"a": [1]}"#), Ok(json!({"a": [1]})));
        assert_eq!(parse_json("{nope"), Err("not valid JSON: key must be a string at line 1 column 2".to_owned()));
    }
}
