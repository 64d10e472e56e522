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
use ferrosync_server::{ServerConfig, StoreLocation};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::time::Duration;

mod output;
mod session;

use output::{document_json, event_json, item_json, print_pretty};
pub use output::{print_line, print_text};
pub use session::{Session, mint_token};

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
                let Some(event) = event else { bail!("the connection to {} closed", s.url()) };
                if !print_line(&event_json(&event))? {
                    return Ok(()); // The reader went away (`| head -1`).
                }
                if let SyncEventKind::Removed { .. } = event.kind {
                    eprintln!("{what} was removed");
                    return Ok(());
                }
            }
            event = client_events.next() => match event {
                None => bail!("the connection to {} closed", s.url()),
                Some(ClientEvent::TokenAboutToExpire { .. }) if !s.mints_its_token() => {
                    eprintln!("the access token expires in three minutes; the watch stops then");
                }
                Some(ClientEvent::TokenAboutToExpire { .. } | ClientEvent::TokenExpired) => s.renew_token().await?,
                Some(ClientEvent::ConnectionError { terminal: true, message, .. }) => {
                    bail!("{} refused the connection: {message}", s.url())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_arguments_are_checked() {
        assert_eq!(parse_json(r#"{"a": [1]}"#), Ok(json!({"a": [1]})));
        assert_eq!(parse_json("{nope"), Err("not valid JSON: key must be a string at line 1 column 2".to_owned()));
    }
}
