//! The client: one REST client and one WebSocket per connection, shared by every handle.

use crate::cache::Cache;
use crate::connection::{Cmd, Connection, DocCell};
use crate::error::{ClientError, Result};
use crate::http::Rest;
use crate::local::{LocalWrites, WriteGuard};
use crate::offline::{Conflict, ConflictHandler, ReplayReport, Resolution, keep_local};
use crate::token::TokenInfo;
use futures_util::{Stream, StreamExt};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// The state of the client's connection.
///
/// ```no_run
/// # async fn demo(client: ferrosync_client::Client) -> ferrosync_client::Result<()> {
/// use ferrosync_client::ConnectionState;
/// if client.connection_state() != ConnectionState::Connected {
///     client.wait_for(ConnectionState::Connected).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    Connected,
    Disconnecting,
    /// Shut down, or stopped because the token expired: [`Client::update_token`] reconnects.
    Disconnected,
    /// The server refused the token: [`Client::update_token`] reconnects.
    Denied,
    /// The last attempt failed; the next one follows after a backoff.
    Error,
}

/// What the client tells the application about itself.
///
/// ```no_run
/// # async fn demo(client: ferrosync_client::Client, fresh_token: impl Fn() -> String) {
/// use ferrosync_client::ClientEvent;
/// let mut events = client.events();
/// while let Some(e) = events.next().await {
///     if let ClientEvent::TokenAboutToExpire { .. } = e {
///         client.update_token(&fresh_token()).await.ok();
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    ConnectionStateChanged(ConnectionState),
    /// A connection attempt failed. `terminal` means no retry follows until a new token.
    ConnectionError {
        terminal: bool,
        message: String,
        http_status: Option<u16>,
        error_code: Option<u32>,
    },
    /// Three minutes before the token expires.
    TokenAboutToExpire {
        expires_at: i64,
    },
    /// The token expired; the connection is closed until [`Client::update_token`].
    TokenExpired,
    /// Changes made offline were sent (see [`ClientBuilder::cache`]).
    OfflineWritesReplayed(ReplayReport),
}

/// State shared by the client, its handles and its connection task.
pub(crate) struct Shared {
    pub rest: Rest,
    pub token: Arc<RwLock<String>>,
    info: RwLock<TokenInfo>,
    pub state: watch::Sender<ConnectionState>,
    events: broadcast::Sender<ClientEvent>,
    pub cmds: mpsc::UnboundedSender<Cmd>,
    pub local: Arc<Mutex<LocalWrites>>,
    pub cache: Option<Arc<Cache>>,
    pub on_conflict: ConflictHandler,
    /// One replay of offline writes at a time.
    pub replaying: tokio::sync::Mutex<()>,
    /// Where datasets keep their records without a cache file.
    memory: std::sync::OnceLock<Arc<Cache>>,
}

impl Shared {
    pub fn emit(&self, e: ClientEvent) {
        let _ = self.events.send(e);
    }

    pub fn info(&self) -> TokenInfo {
        self.info.read().map(|i| i.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    pub fn send(&self, cmd: Cmd) -> Result<()> {
        self.cmds.send(cmd).map_err(|_| ClientError::Closed)
    }

    /// The cache file, or else an in-memory one (for datasets).
    pub fn local_store(&self) -> Result<Arc<Cache>> {
        if let Some(c) = &self.cache {
            return Ok(c.clone());
        }
        if let Some(c) = self.memory.get() {
            return Ok(c.clone());
        }
        let c = Arc::new(Cache::in_memory()?);
        Ok(self.memory.get_or_init(|| c).clone())
    }

    /// Marks a write to `sid` in flight (see [`crate::local`]).
    pub fn begin_write(&self, sid: &str) -> WriteGuard {
        let cmds = self.cmds.clone();
        WriteGuard::begin(
            self.local.clone(),
            sid,
            Box::new(move |sid| {
                let _ = cmds.send(Cmd::Release { sid });
            }),
        )
    }
}

/// Options of a client (all optional).
///
/// ```no_run
/// # async fn demo(token: &str) -> ferrosync_client::Result<()> {
/// let client = ferrosync_client::Client::builder("http://127.0.0.1:7700", token)
///     .request_timeout(std::time::Duration::from_secs(10))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
pub struct ClientBuilder {
    url: String,
    token: String,
    timeout: Duration,
    cache: Option<PathBuf>,
    on_conflict: Option<ConflictHandler>,
}

impl ClientBuilder {
    /// How long one REST request may take (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Keeps the objects this client opens, and the items it reads, in a SQLite file, so that
    /// they can be read while the server is out of reach; writes made meanwhile (to documents,
    /// and to map and list items) are kept there and sent when the connection is back, a
    /// revision conflict going to [`ClientBuilder::on_conflict`]'s handler.
    ///
    /// ```no_run
    /// # async fn demo(token: &str) -> ferrosync_client::Result<()> {
    /// use ferrosync_client::{Client, Resolution};
    /// let client = Client::builder("http://127.0.0.1:7700", token)
    ///     .cache("app-cache.sqlite")
    ///     .on_conflict(|c| if c.remote.is_some() { Resolution::KeepRemote } else { Resolution::KeepLocal })
    ///     .connect_lazily()?;
    /// let settings = client.document("settings").await?; // from the cache when offline
    /// # Ok(()) }
    /// ```
    pub fn cache(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache = Some(path.into());
        self
    }

    /// How to settle a change made offline that meets another change on the server (by
    /// default the local change is written over it).
    pub fn on_conflict(mut self, handler: impl Fn(&Conflict) -> Resolution + Send + Sync + 'static) -> Self {
        self.on_conflict = Some(Arc::new(handler));
        self
    }

    /// Connects: fails when the token is unreadable or refused; when the server cannot be
    /// reached, fails too (use [`ClientBuilder::connect_lazily`] to start offline).
    pub async fn connect(self) -> Result<Client> {
        let client = self.build()?;
        match crate::connection::connect(&client.shared).await {
            Ok(ws) => {
                // Connected already, as the caller sees it when this returns.
                client.shared.state.send_replace(ConnectionState::Connected);
                Connection::spawn(client.shared.clone(), client.take_cmds()?, Some(ws));
                client.replay_on_reconnect();
                Ok(client)
            }
            Err(f) => Err(f.into()),
        }
    }

    /// Starts without waiting for the server: the connection is made in the background and
    /// retried until it succeeds; REST calls fail with a transport error meanwhile.
    pub fn connect_lazily(self) -> Result<Client> {
        let client = self.build()?;
        Connection::spawn(client.shared.clone(), client.take_cmds()?, None);
        client.replay_on_reconnect();
        Ok(client)
    }

    fn build(self) -> Result<Client> {
        let info = TokenInfo::parse(&self.token)?;
        let mut http = reqwest::Client::builder().timeout(self.timeout);
        if self.url.starts_with("http://") {
            // Plain HTTP only: no need for the system's CA certificates, which a TLS client
            // reads as it is built, and without which (a minimal container) it is not built.
            http = http.tls_certs_only([]);
        }
        let http = http.build().map_err(|e| ClientError::Transport(e.to_string()))?;
        let token = Arc::new(RwLock::new(self.token));
        let base = self.url.trim_end_matches('/').to_owned();
        let rest = Rest::new(http, base, info.service_sid.clone(), token.clone());
        let (cmds, cmd_rx) = mpsc::unbounded_channel();
        let (state, _) = watch::channel(ConnectionState::Connecting);
        let (events, _) = broadcast::channel(256);
        let cache = match &self.cache {
            Some(path) => Some(Arc::new(Cache::open(path)?)),
            None => None,
        };
        let shared = Arc::new(Shared {
            rest,
            token,
            info: RwLock::new(info),
            state,
            events,
            cmds,
            local: Arc::default(),
            cache,
            on_conflict: self.on_conflict.unwrap_or_else(keep_local),
            replaying: tokio::sync::Mutex::new(()),
            memory: std::sync::OnceLock::new(),
        });
        Ok(Client { shared, pending_rx: Arc::new(Mutex::new(Some(cmd_rx))) })
    }
}

/// A connection to one Ferrosync service as one identity: the service and identity come from
/// the access token. Cheap to clone; every clone shares the connection.
///
/// ```no_run
/// # async fn demo(token: &str) -> ferrosync_client::Result<()> {
/// use ferrosync_client::Client;
/// let client = Client::connect("http://127.0.0.1:7700", token).await?;
/// let doc = client.document("settings").await?;
/// doc.set(serde_json::json!({"theme": "dark"})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    /// The connection task's command queue until it starts.
    pending_rx: Arc<Mutex<Option<mpsc::UnboundedReceiver<Cmd>>>>,
}

impl Client {
    /// Connects to the server at `url` (`http://host:port`) with an access token.
    pub async fn connect(url: &str, token: &str) -> Result<Client> {
        Client::builder(url, token).connect().await
    }

    pub fn builder(url: &str, token: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            token: token.to_owned(),
            timeout: Duration::from_secs(30),
            cache: None,
            on_conflict: None,
        }
    }

    /// With a cache, sends the changes made offline each time the connection comes up.
    fn replay_on_reconnect(&self) {
        if self.shared.cache.is_none() {
            return;
        }
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let mut states = self.shared.state.subscribe();
        tokio::spawn(async move {
            loop {
                if *states.borrow_and_update() == ConnectionState::Connected {
                    let Some(shared) = weak.upgrade() else { return };
                    let client = Client { shared, pending_rx: Arc::new(Mutex::new(None)) };
                    if let Err(e) = client.flush_offline_writes().await {
                        tracing::debug!(error = %e, "offline writes not sent yet");
                    }
                }
                if states.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    fn take_cmds(&self) -> Result<mpsc::UnboundedReceiver<Cmd>> {
        self.pending_rx.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or(ClientError::Closed)
    }

    /// The identity the token speaks for.
    pub fn identity(&self) -> String {
        self.shared.info().identity
    }

    /// The service's SID.
    pub fn service_sid(&self) -> String {
        self.shared.info().service_sid
    }

    pub fn connection_state(&self) -> ConnectionState {
        *self.shared.state.borrow()
    }

    /// Waits until the connection reaches `state`.
    pub async fn wait_for(&self, state: ConnectionState) -> Result<()> {
        let mut rx = self.shared.state.subscribe();
        rx.wait_for(|s| *s == state).await.map(drop).map_err(|_| ClientError::Closed)
    }

    /// The client's events from now on.
    pub fn events(&self) -> ClientEvents {
        let rx = self.shared.events.subscribe();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((e, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        ClientEvents { inner: Box::pin(stream) }
    }

    /// Replaces the access token: for REST at once, on the live connection with
    /// `update_token`, and to reconnect when the old one expired or was refused. The new
    /// token must be for the same identity and service.
    pub async fn update_token(&self, token: &str) -> Result<()> {
        let info = TokenInfo::parse(token)?;
        let current = self.shared.info();
        if info.identity != current.identity || info.service_sid != current.service_sid {
            return Err(ClientError::InvalidArgument {
                field: "token",
                message: "the new token must be for the same identity and service".into(),
            });
        }
        if let Ok(mut i) = self.shared.info.write() {
            *i = info;
        }
        let (done, rx) = oneshot::channel();
        self.shared.send(Cmd::UpdateToken { token: token.to_owned(), done })?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Closes the connection; handles fail with [`ClientError::Closed`] afterwards.
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.shared.send(Cmd::Shutdown { done }).is_ok() {
            let _ = rx.await;
        }
    }

    pub(crate) fn doc_cell(data: serde_json::Value, revision: u64) -> DocCell {
        Arc::new(Mutex::new(crate::connection::DocState { data, revision }))
    }
}

/// The stream of [`ClientEvent`]s (also a [`Stream`]); events older than the 256 most recent
/// are skipped when the reader falls that far behind.
///
/// ```no_run
/// # async fn demo(client: ferrosync_client::Client) {
/// use ferrosync_client::{ClientEvent, ConnectionState};
/// use futures_util::StreamExt;
/// let mut states = Box::pin(client.events().filter_map(|e| async move {
///     if let ClientEvent::ConnectionStateChanged(s) = e { Some(s) } else { None }
/// }));
/// while let Some(state) = states.next().await {
///     if state == ConnectionState::Denied { break }
/// }
/// # }
/// ```
pub struct ClientEvents {
    inner: Pin<Box<dyn Stream<Item = ClientEvent> + Send>>,
}

impl ClientEvents {
    /// The next event; `None` once the client is dropped.
    pub async fn next(&mut self) -> Option<ClientEvent> {
        self.inner.next().await
    }
}

impl Stream for ClientEvents {
    type Item = ClientEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        self.inner.as_mut().poll_next(cx)
    }
}
