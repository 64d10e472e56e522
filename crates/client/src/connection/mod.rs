//! The WebSocket half: one task owns the connection, reconnects with jittered backoff, and
//! resumes every subscription from the last change it delivered, so a subscriber sees each
//! change exactly once however often the connection drops.

use crate::client::{ClientEvent, ConnectionState, Shared};
use crate::error::{ClientError, Result};
use crate::events::SyncEvent;
use crate::query::{LiveQueryEvent, QueryKey};
use crate::token::now_secs;
use backon::BackoffBuilder;
use ferrosync_protocol::ObjectKind;
use ferrosync_protocol::query::QueryItemView;
use ferrosync_protocol::ws::{
    CLOSE_SLOW_CONSUMER, CLOSE_TOKEN_EXPIRED, CLOSE_UNAUTHENTICATED, ClientFrame, ServerFrame,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod dial;
mod inbound;

pub(crate) use dial::connect;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How often the client proves the connection alive, and how long a silent one is trusted.
const PING_EVERY: Duration = Duration::from_secs(20);
const SILENCE_LIMIT: Duration = Duration::from_secs(50);
/// Warn this long before the token expires, as the server does.
const TOKEN_WARNING_SECS: i64 = 180;
/// A subscriber's queue. When it is full the connection waits for the subscriber, the server
/// queues, and past its bound the server drops the connection, which resumes from its tokens:
/// memory stays bounded and nothing is lost.
pub(crate) const SUBSCRIBER_QUEUE: usize = 1024;

/// Shared state of an open document: its data as last seen, kept current by its events.
#[derive(Debug, Clone, Default)]
pub(crate) struct DocState {
    pub data: Value,
    pub revision: u64,
}

pub(crate) type DocCell = Arc<Mutex<DocState>>;

pub(crate) enum Cmd {
    Subscribe {
        kind: ObjectKind,
        sid: String,
        listener: mpsc::Sender<SyncEvent>,
        doc: Option<DocCell>,
        done: oneshot::Sender<Result<()>>,
    },
    LiveQuery {
        key: QueryKey,
        index: String,
        query: String,
        listener: mpsc::Sender<LiveQueryEvent>,
        done: oneshot::Sender<Result<Vec<QueryItemView>>>,
    },
    EndQuery {
        key: QueryKey,
    },
    /// A subscriber of this object went away.
    Dropped {
        sid: String,
    },
    /// No write to this object is in flight any more: deliver what was held.
    Release {
        sid: String,
    },
    UpdateToken {
        token: String,
        done: oneshot::Sender<Result<()>>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

struct ObjectSub {
    kind: ObjectKind,
    since: Option<String>,
    last_seq: u64,
    listeners: Vec<mpsc::Sender<SyncEvent>>,
    doc: Option<DocCell>,
}

struct QuerySub {
    index: String,
    query: String,
    since: Option<String>,
    last_seq: u64,
    /// The server's id for this query on the current connection.
    server_id: Option<String>,
    /// The results' (map, key)s: a removed Map is told item by item.
    results: BTreeSet<(String, String)>,
    listener: mpsc::Sender<LiveQueryEvent>,
}

enum Pending {
    Subscribe { sid: String, done: Option<oneshot::Sender<Result<()>>> },
    Query { key: QueryKey, done: Option<oneshot::Sender<Result<Vec<QueryItemView>>>> },
    UpdateToken { done: oneshot::Sender<Result<()>> },
    Ignore,
}

/// How a connection ended.
enum Ended {
    /// Reconnect after a backoff.
    Lost,
    /// Reconnect at once (the server asked us to resume elsewhere).
    Resume,
    /// Wait for `update_token`.
    NeedsToken,
    Shutdown(oneshot::Sender<()>),
}

pub(crate) struct Connection {
    shared: Arc<Shared>,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    objects: HashMap<String, ObjectSub>,
    queries: HashMap<QueryKey, QuerySub>,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    warned: bool,
    expired: bool,
}

impl Connection {
    pub fn spawn(shared: Arc<Shared>, cmds: mpsc::UnboundedReceiver<Cmd>, first: Option<Ws>) {
        let conn = Connection {
            shared,
            cmds,
            objects: HashMap::new(),
            queries: HashMap::new(),
            pending: HashMap::new(),
            next_id: 1,
            warned: false,
            expired: false,
        };
        tokio::spawn(conn.run(first));
    }

    async fn run(mut self, first: Option<Ws>) {
        let mut backoff = new_backoff();
        let mut ws = first;
        loop {
            let ended = match ws.take() {
                Some(socket) => {
                    backoff = new_backoff();
                    self.set_state(ConnectionState::Connected);
                    self.session(socket).await
                }
                None => Ended::Lost,
            };
            let (wait, needs_token) = match ended {
                Ended::Shutdown(done) => return self.finish(done),
                Ended::Resume => (Duration::ZERO, false),
                Ended::Lost => (backoff.next().unwrap_or(Duration::from_secs(30)), false),
                Ended::NeedsToken => (Duration::ZERO, true),
            };
            self.fail_pending();
            if needs_token {
                self.set_state(if self.expired { ConnectionState::Disconnected } else { ConnectionState::Denied });
                if let Some(Ended::Shutdown(done)) = self.idle(None).await {
                    return self.finish(done);
                }
            } else {
                self.set_state(ConnectionState::Connecting);
                if let Some(Ended::Shutdown(done)) = self.idle(Some(Instant::now() + wait)).await {
                    return self.finish(done);
                }
            }
            self.set_state(ConnectionState::Connecting);
            match connect(&self.shared).await {
                Ok(socket) => ws = Some(socket),
                Err(failure) => {
                    let terminal = failure.terminal;
                    self.shared.emit(ClientEvent::ConnectionError {
                        terminal,
                        message: failure.message,
                        http_status: failure.http_status,
                        error_code: failure.error_code,
                    });
                    if terminal {
                        self.set_state(ConnectionState::Denied);
                        match self.idle(None).await {
                            Some(Ended::Shutdown(done)) => return self.finish(done),
                            _ => continue,
                        }
                    }
                    self.set_state(ConnectionState::Error);
                }
            }
        }
    }

    fn finish(self, done: oneshot::Sender<()>) {
        self.set_state(ConnectionState::Disconnected);
        let _ = done.send(());
    }

    fn set_state(&self, state: ConnectionState) {
        let changed = self.shared.state.send_if_modified(|s| {
            let changed = *s != state;
            *s = state;
            changed
        });
        if changed {
            self.shared.emit(ClientEvent::ConnectionStateChanged(state));
        }
    }

    /// Waits without a connection until `until` (or, with `None`, until a new token arrives),
    /// still taking subscriptions and token updates.
    async fn idle(&mut self, until: Option<Instant>) -> Option<Ended> {
        loop {
            let token_alarm = self.token_alarm();
            tokio::select! {
                biased;
                cmd = self.cmds.recv() => {
                    let Some(cmd) = cmd else { return Some(Ended::Shutdown(oneshot::channel().0)) };
                    match cmd {
                        Cmd::Shutdown { done } => return Some(Ended::Shutdown(done)),
                        Cmd::UpdateToken { token, done } => {
                            self.accept_token(&token);
                            let _ = done.send(Ok(()));
                            return None;
                        }
                        other => self.offline_cmd(other).await,
                    }
                }
                () = sleep_until(until) => return None,
                () = sleep_until(token_alarm) => self.token_alarm_fired(),
            }
        }
    }

    /// A command while no connection is up: subscriptions are registered and made when the
    /// connection comes back.
    async fn offline_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Subscribe { kind, sid, listener, doc, done } => {
                self.add_listener(kind, &sid, listener, doc);
                let _ = done.send(Ok(()));
            }
            Cmd::LiveQuery { done, .. } => {
                let _ = done.send(Err(ClientError::Transport("not connected: a live query starts online".into())));
            }
            Cmd::EndQuery { key } => {
                self.queries.remove(&key);
            }
            Cmd::Release { sid } => self.release(&sid).await,
            Cmd::Dropped { sid } => {
                // Nothing to tell the server while offline; forget it here.
                let _ = self.prune(&sid);
            }
            Cmd::UpdateToken { .. } | Cmd::Shutdown { .. } => {}
        }
    }

    fn add_listener(
        &mut self,
        kind: ObjectKind,
        sid: &str,
        listener: mpsc::Sender<SyncEvent>,
        doc: Option<DocCell>,
    ) -> bool {
        match self.objects.get_mut(sid) {
            Some(sub) => {
                sub.listeners.push(listener);
                if sub.doc.is_none() {
                    sub.doc = doc;
                }
                false
            }
            None => {
                self.objects.insert(
                    sid.to_owned(),
                    ObjectSub { kind, since: None, last_seq: 0, listeners: vec![listener], doc },
                );
                true
            }
        }
    }

    fn accept_token(&mut self, token: &str) {
        self.warned = false;
        self.expired = false;
        if let Ok(mut t) = self.shared.token.write() {
            token.clone_into(&mut t);
        }
    }

    fn token_alarm(&self) -> Option<Instant> {
        let exp = self.shared.info().expires_at;
        let at = if !self.warned {
            exp - TOKEN_WARNING_SECS
        } else if !self.expired {
            exp
        } else {
            return None;
        };
        let secs = (at - now_secs()).max(0) as u64;
        Some(Instant::now() + Duration::from_secs(secs))
    }

    fn token_alarm_fired(&mut self) {
        let info = self.shared.info();
        if !self.warned {
            self.warned = true;
            if info.remaining_secs() > 0 {
                self.shared.emit(ClientEvent::TokenAboutToExpire { expires_at: info.expires_at });
            }
        } else if !self.expired && info.remaining_secs() <= 0 {
            self.expired = true;
            self.shared.emit(ClientEvent::TokenExpired);
        }
    }

    fn fail_pending(&mut self) {
        for (_, p) in self.pending.drain() {
            match p {
                // Registered subscriptions are made again on the next connection.
                Pending::Subscribe { done: Some(done), .. } => {
                    let _ = done.send(Ok(()));
                }
                Pending::Query { key, done: Some(done) } => {
                    self.queries.remove(&key);
                    let _ = done.send(Err(ClientError::Transport("the connection closed".into())));
                }
                Pending::UpdateToken { done } => {
                    let _ = done.send(Ok(()));
                }
                _ => {}
            }
        }
        for q in self.queries.values_mut() {
            q.server_id = None;
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    async fn session(&mut self, ws: Ws) -> Ended {
        let (mut sink, mut stream) = ws.split();
        // Every subscription again, from where it stopped.
        let mut frames = Vec::new();
        let sids: Vec<String> = self.objects.keys().cloned().collect();
        for sid in sids {
            frames.push(self.subscribe_frame(&sid, None));
        }
        let keys: Vec<QueryKey> = self.queries.keys().copied().collect();
        for key in keys {
            if let Some(f) = self.query_frame(key, None) {
                frames.push(f);
            }
        }
        for f in frames {
            if sink.feed(text(&f)).await.is_err() {
                return Ended::Lost;
            }
        }
        if sink.flush().await.is_err() {
            return Ended::Lost;
        }
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        let mut last_heard = Instant::now();
        loop {
            let token_alarm = self.token_alarm();
            tokio::select! {
                biased;
                cmd = self.cmds.recv() => {
                    let Some(cmd) = cmd else {
                        let _ = sink.send(Message::Close(None)).await;
                        return Ended::Shutdown(oneshot::channel().0);
                    };
                    let frame = match cmd {
                        Cmd::Shutdown { done } => {
                            self.set_state(ConnectionState::Disconnecting);
                            let _ = sink.send(Message::Close(None)).await;
                            return Ended::Shutdown(done);
                        }
                        Cmd::Subscribe { kind, sid, listener, doc, done } => {
                            if self.add_listener(kind, &sid, listener, doc) {
                                Some(self.subscribe_frame(&sid, Some(done)))
                            } else {
                                let _ = done.send(Ok(()));
                                None
                            }
                        }
                        Cmd::LiveQuery { key, index, query, listener, done } => {
                            self.queries.insert(key, QuerySub {
                                index, query, since: None, last_seq: 0, server_id: None,
                                results: BTreeSet::new(), listener,
                            });
                            self.query_frame(key, Some(done))
                        }
                        Cmd::EndQuery { key } => self.queries.remove(&key).and_then(|q| q.server_id).map(|query_id| {
                            let id = self.next_id();
                            self.pending.insert(id, Pending::Ignore);
                            ClientFrame::UnsubscribeQuery { id, query_id }
                        }),
                        Cmd::Release { sid } => {
                            self.release(&sid).await;
                            None
                        }
                        Cmd::Dropped { sid } => self.prune(&sid),
                        Cmd::UpdateToken { token, done } => {
                            self.accept_token(&token);
                            let id = self.next_id();
                            self.pending.insert(id, Pending::UpdateToken { done });
                            Some(ClientFrame::UpdateToken { id, token })
                        }
                    };
                    if let Some(f) = frame && sink.send(text(&f)).await.is_err() {
                        return Ended::Lost;
                    }
                }
                msg = stream.next() => {
                    last_heard = Instant::now();
                    let raw = match msg {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(frame))) => return self.closed(frame.map(|f| (f.code, f.reason.to_string()))),
                        Some(Ok(_)) => continue,
                        Some(Err(_)) | None => return Ended::Lost,
                    };
                    let frame = match serde_json::from_str::<ServerFrame>(&raw) {
                        Ok(f) => f,
                        Err(e) => {
                            tracing::warn!(error = %e, "unreadable frame from the server");
                            continue;
                        }
                    };
                    match self.on_frame(frame).await {
                        Ok(Some(f)) => if sink.send(text(&f)).await.is_err() { return Ended::Lost },
                        Ok(None) => {}
                        Err(ended) => return ended,
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        return Ended::Lost;
                    }
                    let id = self.next_id();
                    self.pending.insert(id, Pending::Ignore);
                    if sink.send(text(&ClientFrame::Ping { id })).await.is_err() {
                        return Ended::Lost;
                    }
                }
                () = sleep_until(token_alarm) => self.token_alarm_fired(),
            }
        }
    }

    fn closed(&mut self, frame: Option<(CloseCode, String)>) -> Ended {
        match frame.map(|(c, r)| (u16::from(c), r)) {
            Some((CLOSE_TOKEN_EXPIRED, _)) => {
                if !self.expired {
                    self.expired = true;
                    self.shared.emit(ClientEvent::TokenExpired);
                }
                Ended::NeedsToken
            }
            Some((CLOSE_UNAUTHENTICATED, reason)) => {
                self.shared.emit(ClientEvent::ConnectionError {
                    terminal: true,
                    message: reason,
                    http_status: Some(401),
                    error_code: None,
                });
                Ended::NeedsToken
            }
            Some((CLOSE_SLOW_CONSUMER, _)) => Ended::Resume,
            _ => Ended::Lost,
        }
    }

    fn subscribe_frame(&mut self, sid: &str, done: Option<oneshot::Sender<Result<()>>>) -> ClientFrame {
        let id = self.next_id();
        let (kind, since) =
            self.objects.get(sid).map(|s| (s.kind, s.since.clone())).unwrap_or((ObjectKind::Document, None));
        self.pending.insert(id, Pending::Subscribe { sid: sid.to_owned(), done });
        ClientFrame::Subscribe { id, kind, object: sid.to_owned(), since }
    }

    fn query_frame(
        &mut self,
        key: QueryKey,
        done: Option<oneshot::Sender<Result<Vec<QueryItemView>>>>,
    ) -> Option<ClientFrame> {
        let id = self.next_id();
        let q = self.queries.get(&key)?;
        let frame =
            ClientFrame::SubscribeQuery { id, index: q.index.clone(), query: q.query.clone(), since: q.since.clone() };
        self.pending.insert(id, Pending::Query { key, done });
        Some(frame)
    }

    /// Forgets `sid`'s subscribers that went away, and the subscription with the last of them.
    fn prune(&mut self, sid: &str) -> Option<ClientFrame> {
        let sub = self.objects.get_mut(sid)?;
        sub.listeners.retain(|l| !l.is_closed());
        if !sub.listeners.is_empty() {
            return None;
        }
        let sub = self.objects.remove(sid)?;
        let id = self.next_id();
        self.pending.insert(id, Pending::Ignore);
        Some(ClientFrame::Unsubscribe { id, kind: sub.kind, object: sid.to_owned() })
    }
}

fn text(frame: &ClientFrame) -> Message {
    Message::text(serde_json::to_string(frame).unwrap_or_default())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn new_backoff() -> backon::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(30))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}
