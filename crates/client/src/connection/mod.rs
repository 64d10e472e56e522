//! The WebSocket half: one task owns the connection, reconnects with jittered backoff, and
//! resumes every subscription from the last change it delivered, so a subscriber sees each
//! change exactly once however often the connection drops.

use crate::client::{ClientEvent, ConnectionState, Shared};
use crate::error::{ClientError, Result};
use crate::events::{SyncEvent, SyncEventKind};
use crate::local::LocalWrites;
use crate::query::{LiveQueryEvent, QueryKey};
use crate::token::now_secs;
use backon::BackoffBuilder;
use ferrosync_protocol::query::{QueryChange, QueryEvent, QueryItemView};
use ferrosync_protocol::ws::{
    CLOSE_SLOW_CONSUMER, CLOSE_TOKEN_EXPIRED, CLOSE_UNAUTHENTICATED, ClientFrame, Delivered, QuerySubscribed,
    ServerFrame, Subscribed,
};
use ferrosync_protocol::{ErrorBody, Event, ObjectKind};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

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

    async fn on_frame(&mut self, frame: ServerFrame) -> Result<Option<ClientFrame>, Ended> {
        match frame {
            ServerFrame::Event { event } => match *event {
                Delivered::Object(e) => {
                    let admitted = LocalWrites::lock(&self.shared.local).admit(e);
                    if let Some((e, local)) = admitted {
                        self.deliver(e, local).await;
                    }
                }
                Delivered::Query(q) => self.deliver_query(q).await,
            },
            ServerFrame::Reply { id, status, body, error } => return Ok(self.on_reply(id, status, body, error)),
            ServerFrame::TokenAboutToExpire { expires_at } => {
                if !self.warned {
                    self.warned = true;
                    self.shared.emit(ClientEvent::TokenAboutToExpire { expires_at });
                }
            }
            ServerFrame::TokenExpired => {}
            ServerFrame::Overflow { resume } => {
                for r in resume {
                    if let Some(sub) = self.objects.get_mut(&r.object_sid) {
                        sub.since = Some(r.since);
                    }
                }
                return Err(Ended::Resume);
            }
            ServerFrame::Error { error, .. } => tracing::warn!(error = %error, "the server refused a frame"),
            ServerFrame::Connected { .. } => {}
        }
        Ok(None)
    }

    fn on_reply(&mut self, id: u64, status: u16, body: Option<Value>, error: Option<ErrorBody>) -> Option<ClientFrame> {
        let pending = self.pending.remove(&id)?;
        let failure = error
            .map(ClientError::api)
            .or_else(|| (status >= 400).then(|| ClientError::Api { status, code: 0, message: "refused".into() }));
        match pending {
            Pending::Ignore => None,
            Pending::UpdateToken { done } => {
                let _ = done.send(failure.map_or(Ok(()), Err));
                None
            }
            Pending::Subscribe { sid, done } => match failure {
                None => {
                    let reply = body.and_then(|b| serde_json::from_value::<Subscribed>(b).ok());
                    if let (Some(sub), Some(reply)) = (self.objects.get_mut(&sid), reply) {
                        if sub.since.is_none() {
                            sub.since = Some(reply.since);
                        }
                        if let (Some(doc), Some(object)) = (&sub.doc, reply.object) {
                            let mut d = doc.lock().unwrap_or_else(|e| e.into_inner());
                            if object.revision > d.revision {
                                d.revision = object.revision;
                                d.data = object.data.unwrap_or(Value::Null);
                            }
                        }
                    }
                    if let Some(done) = done {
                        let _ = done.send(Ok(()));
                    }
                    None
                }
                // Retention passed the resume point: start again from now.
                Some(e) if e.status() == Some(410) => {
                    if let Some(sub) = self.objects.get_mut(&sid) {
                        sub.since = None;
                    }
                    Some(self.subscribe_frame(&sid, done))
                }
                Some(e) => {
                    let resumed = self.objects.get(&sid).is_some_and(|s| s.since.is_some());
                    if let Some(sub) = self.objects.remove(&sid) {
                        // Removed while we were away: its subscribers hear so, once.
                        if resumed && e.is_not_found() {
                            let event = SyncEvent {
                                kind: SyncEventKind::Removed { reason: None },
                                is_local: false,
                                object_sid: sid.clone(),
                                identity: String::new(),
                                seq: sub.last_seq,
                                token: sub.since.clone().unwrap_or_default(),
                            };
                            for l in &sub.listeners {
                                let _ = l.try_send(event.clone());
                            }
                        }
                    }
                    if let Some(done) = done {
                        let _ = done.send(Err(e));
                    }
                    None
                }
            },
            Pending::Query { key, done } => {
                match failure {
                    None => {
                        let reply = body.and_then(|b| serde_json::from_value::<QuerySubscribed>(b).ok());
                        match (self.queries.get_mut(&key), reply) {
                            (Some(q), Some(reply)) => {
                                q.server_id = Some(reply.query_id);
                                if q.since.is_none() {
                                    q.since = Some(reply.since);
                                    q.results = reply.items.iter().map(|i| (i.map.clone(), i.key.clone())).collect();
                                }
                                if let Some(done) = done {
                                    let _ = done.send(Ok(reply.items));
                                }
                            }
                            _ => {
                                if let Some(done) = done {
                                    let _ = done.send(Err(ClientError::Decode("subscribe_query reply".into())));
                                }
                            }
                        }
                    }
                    Some(e) => {
                        self.queries.remove(&key);
                        if let Some(done) = done {
                            let _ = done.send(Err(e));
                        }
                    }
                }
                None
            }
        }
    }

    async fn release(&mut self, sid: &str) {
        let released = LocalWrites::lock(&self.shared.local).release(sid);
        for (e, local) in released {
            self.deliver(e, local).await;
        }
    }

    /// The event's subscribers, with their cursor moved past it; `None` when it is not news.
    fn route(&mut self, e: &Event, is_local: bool) -> Option<(Vec<mpsc::Sender<SyncEvent>>, SyncEvent)> {
        let sub = self.objects.get_mut(e.object_sid.as_str())?;
        if e.seq <= sub.last_seq {
            return None;
        }
        sub.last_seq = e.seq;
        sub.since = Some(e.token.clone());
        let kind = SyncEventKind::from_event(e)?;
        if let (Some(doc), SyncEventKind::Updated { data, revision, .. }) = (&sub.doc, &kind) {
            let mut d = doc.lock().unwrap_or_else(|e| e.into_inner());
            if *revision > d.revision {
                d.revision = *revision;
                d.data = data.clone();
            }
        }
        let event = SyncEvent {
            kind,
            is_local,
            object_sid: e.object_sid.to_string(),
            identity: e.identity.clone(),
            seq: e.seq,
            token: e.token.clone(),
        };
        Some((sub.listeners.clone(), event))
    }

    async fn deliver(&mut self, e: Event, is_local: bool) {
        let Some((listeners, event)) = self.route(&e, is_local) else { return };
        for l in listeners {
            let _ = l.send(event.clone()).await;
        }
    }

    async fn deliver_query(&mut self, q: QueryEvent) {
        let Some(sub) = self.queries.values_mut().find(|s| s.server_id.as_deref() == Some(q.query_id.as_str())) else {
            return;
        };
        if q.seq <= sub.last_seq {
            return;
        }
        sub.last_seq = q.seq;
        sub.since = Some(q.token.clone());
        let events: Vec<LiveQueryEvent> = match q.change {
            QueryChange::ItemUpdated { map, key, data, revision } => {
                sub.results.insert((map.clone(), key.clone()));
                vec![LiveQueryEvent::ItemUpdated { map, key, data, revision }]
            }
            QueryChange::ItemRemoved { map, key } => {
                sub.results.remove(&(map.clone(), key.clone()));
                vec![LiveQueryEvent::ItemRemoved { map, key }]
            }
            QueryChange::MapRemoved { map } => {
                let gone: Vec<(String, String)> = sub.results.iter().filter(|(m, _)| *m == map).cloned().collect();
                gone.into_iter()
                    .map(|(m, k)| {
                        sub.results.remove(&(m.clone(), k.clone()));
                        LiveQueryEvent::ItemRemoved { map: m, key: k }
                    })
                    .collect()
            }
        };
        let listener = sub.listener.clone();
        for e in events {
            let _ = listener.send(e).await;
        }
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

/// Why a connection attempt failed.
pub(crate) struct ConnectFailure {
    pub terminal: bool,
    pub message: String,
    pub http_status: Option<u16>,
    pub error_code: Option<u32>,
}

impl From<ConnectFailure> for ClientError {
    fn from(f: ConnectFailure) -> Self {
        match (f.http_status, f.error_code) {
            (Some(status), code) => ClientError::Api { status, code: code.unwrap_or(0), message: f.message },
            _ => ClientError::Transport(f.message),
        }
    }
}

/// Opens the WebSocket with the current token and waits for the server's `connected`.
pub(crate) async fn connect(shared: &Shared) -> Result<Ws, ConnectFailure> {
    let url = ws_url(shared.rest.base());
    let transport = |message: String| ConnectFailure { terminal: false, message, http_status: None, error_code: None };
    let mut request = url.as_str().into_client_request().map_err(|e| transport(e.to_string()))?;
    let token = shared.token.read().map(|t| t.clone()).unwrap_or_default();
    let bearer = format!("Bearer {token}").parse().map_err(|_| ConnectFailure {
        terminal: true,
        message: "the token is not a valid header value".into(),
        http_status: None,
        error_code: None,
    })?;
    request.headers_mut().insert("authorization", bearer);
    let (mut ws, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(ok) => ok,
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().and_then(|b| serde_json::from_slice::<ErrorBody>(b).ok());
            return Err(ConnectFailure {
                terminal: status == 401 || status == 403,
                message: body.as_ref().map_or_else(|| format!("the server answered {status}"), |b| b.message.clone()),
                http_status: Some(status),
                error_code: body.map(|b| b.code),
            });
        }
        Err(e) => return Err(transport(e.to_string())),
    };
    let hello = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    match hello {
        Ok(Some(Ok(Message::Text(t)))) if matches!(serde_json::from_str(&t), Ok(ServerFrame::Connected { .. })) => {
            Ok(ws)
        }
        Ok(Some(Ok(Message::Close(Some(f))))) => Err(ConnectFailure {
            terminal: u16::from(f.code) == CLOSE_UNAUTHENTICATED || u16::from(f.code) == CLOSE_TOKEN_EXPIRED,
            message: f.reason.to_string(),
            http_status: None,
            error_code: None,
        }),
        _ => Err(transport("the server did not greet the connection".into())),
    }
}

fn ws_url(base: &str) -> String {
    let rest = base.strip_prefix("https://").map(|r| format!("wss://{r}"));
    let url =
        rest.unwrap_or_else(|| base.strip_prefix("http://").map_or_else(|| base.to_owned(), |r| format!("ws://{r}")));
    format!("{url}/api/v1/connect")
}

#[cfg(test)]
mod tests {
    #[test]
    fn websocket_urls_follow_the_scheme() {
        assert_eq!(super::ws_url("http://127.0.0.1:7700"), "ws://127.0.0.1:7700/api/v1/connect");
        assert_eq!(super::ws_url("https://sync.example"), "wss://sync.example/api/v1/connect");
    }
}
