//! One native WebSocket connection: authentication, subscriptions with resume, requests with
//! replies, batched delivery, keepalive and token lifetime.

use super::hub::Delivery;
use super::inflight::{self, Pipeline};
use super::protocol::{
    CLOSE_SLOW_CONSUMER, CLOSE_TOKEN_EXPIRED, CLOSE_UNAUTHENTICATED, ClientFrame, ItemsPage, QuerySubscribed,
    ReplyFrame, ResumePoint, Return, ServerFrame, Subscribed, Written,
};
use super::session::{Alarm, Alarms, Replay, Start, Subscriptions, TokenAlarm, TokenClock};
use super::wake::{Turns, Woke};
use super::wire::{self, Incoming, Reader, Writer};
use crate::api::native::error::ApiError;
use crate::api::native::extract::authenticate;
use crate::api::native::types::{ItemView, MessageView, ObjectView, Published};
use crate::state::AppState;
use axum::extract::{Query, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ferrosync_core::ErrorCode;
use ferrosync_core::auth::Principal;
use ferrosync_core::engine::{ItemPatch, ObjectPatch, OpenRequest};
use ferrosync_core::index::transition;
use ferrosync_core::log::Event;
use ferrosync_core::log::SinceToken;
use ferrosync_core::model::{ItemKey, ObjectKind, Service, SyncObject};
use ferrosync_core::page::{Order, PageRequest};
use ferrosync_core::sid::{Sid, SidKind};
use ferrosync_core::store::ItemWriteMode;
use futures_util::StreamExt;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::Instrument;

#[derive(serde::Deserialize)]
pub struct ConnectQuery {
    token: Option<String>,
}

/// `GET /api/v1/connect`: the access token may come as `Authorization: Bearer`, as `?token=`,
/// or in a first `authenticate` frame.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ConnectQuery>,
    mut request: Request,
) -> Response {
    let on_upgrade = request.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let (response, on_upgrade) = match wire::accept(request.method(), request.headers(), on_upgrade) {
        Ok(accepted) => accepted,
        Err(e) => return ApiError::new(ErrorCode::InvalidRequest, e.to_string()).into_response(),
    };
    let headers = request.headers();
    let credential = match (headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()), q.token) {
        (Some(h), _) => Some(h.to_owned()),
        (None, Some(t)) => Some(format!("Bearer {t}")),
        (None, None) => None,
    };
    let principal = match credential {
        Some(c) => match authenticate(&state, &c).await {
            Ok(p) => Some(p),
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        // A small read buffer keeps idle connections cheap; client frames are small.
        let config = WebSocketConfig::default().read_buffer_size(1024).max_message_size(Some(256 * 1024));
        let (sink, stream) = wire::open(upgraded, config, wire::Data::Text, state.settings.write_stall()).await;
        serve(sink, stream, state, principal).await;
    });
    response.into_response()
}

struct Session {
    state: Arc<AppState>,
    identity: String,
    token: TokenClock,
    subs: Subscriptions,
    /// Who is connected, shared with the requests in flight; made again with a new token.
    cx: Arc<RequestCx>,
}

/// A request's caller: the connection's principal and service.
struct RequestCx {
    state: Arc<AppState>,
    principal: Principal,
    service: Service,
}

/// Requests in flight, their replies framed; requests naming the same object take turns, by
/// kind and the name the client gave.
type Requests = Pipeline<Bytes>;

async fn serve(mut sink: Writer, mut stream: Reader, state: Arc<AppState>, principal: Option<Principal>) {
    let principal = match principal {
        Some(p) => p,
        None => match Box::pin(first_frame_auth(&state, &mut stream)).await {
            Ok(p) => p,
            Err(e) => {
                sink.close(CLOSE_UNAUTHENTICATED, &e.message).await;
                return;
            }
        },
    };
    let Principal::Identity { identity, service_sid, expires_at } = principal.clone() else {
        sink.close(CLOSE_UNAUTHENTICATED, "connect with an access token (Bearer), not server credentials").await;
        return;
    };
    let service = match state.engine.service(&principal, service_sid.as_str()).await {
        Ok(s) => s,
        Err(e) => {
            sink.close(CLOSE_UNAUTHENTICATED, &e.to_string()).await;
            return;
        }
    };
    let outlet = Some(sink.outlet());
    let (subs, rx) = Subscriptions::open(state.hub.clone(), service.sid.clone(), state.settings.outbound_queue, outlet);
    let token = TokenClock::new(expires_at, state.settings.token_warning_secs);
    let cx = Arc::new(RequestCx { state: state.clone(), principal, service });
    let mut session = Session { state: state.clone(), identity, token, subs, cx };
    let _online = state.webhooks.reachability.online(&session.cx.service.sid, &session.identity);
    session.run(sink, stream, rx).await;
    session.subs.close().await;
}

async fn first_frame_auth(state: &AppState, stream: &mut Reader) -> Result<Principal, ApiError> {
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
    let text = match first {
        Ok(Some(Ok(Message::Text(t)))) => t,
        Ok(_) => {
            return Err(ApiError::new(ErrorCode::Unauthenticated, "expected an authenticate frame"));
        }
        Err(_) => {
            return Err(ApiError::new(ErrorCode::Unauthenticated, "no authenticate frame within 10 seconds"));
        }
    };
    match serde_json::from_str::<ClientFrame>(&text) {
        Ok(ClientFrame::Authenticate { token }) => Ok(state.engine.authenticate_token(&token).await?),
        _ => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "the first frame must be {\"type\":\"authenticate\",\"token\":…}",
        )),
    }
}

fn frame(f: &ServerFrame) -> Bytes {
    Bytes::from(serde_json::to_vec(f).unwrap_or_default())
}

/// A success reply, serialised once from its view; views always serialise.
fn reply(id: u64, status: u16, body: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(&ReplyFrame { id, status, body }).unwrap_or_default())
}

/// The reply carrying an object, the one every write gets: written directly, not through serde.
fn object_reply(id: u64, status: u16, object: SyncObject) -> Bytes {
    Bytes::from(ReplyFrame { id, status, body: &ObjectView::from(object) }.to_json())
}

/// The reply of a write that asked for its revision (and a list item's index) alone.
fn written(id: u64, status: u16, index: Option<u64>, revision: u64) -> Bytes {
    Bytes::from(ReplyFrame { id, status, body: &Written { index, revision } }.to_json())
}

/// The body of a reply that has nothing to say.
fn empty() -> serde_json::Map<String, Value> {
    serde_json::Map::new()
}

enum Flow {
    Continue,
    Stop,
}

/// A frame [`Session::start`] did not start as a request in flight.
enum Turn {
    /// Subscribes, unsubscribes or replaces the token: the session itself changes.
    Session(u64, ClientFrame),
    /// Unreadable, or without an id: refused, with the id if one could be read.
    Refused(Option<u64>, ApiError),
}

impl Session {
    async fn run(&mut self, mut sink: Writer, stream: Reader, rx: mpsc::Receiver<Arc<Delivery>>) {
        let hello = ServerFrame::Connected {
            connection_id: self.subs.connection_id(),
            identity: self.identity.clone(),
            service_sid: self.cx.service.sid.to_string(),
            expires_at: self.token.expires_at(),
        };
        if sink.send(frame(&hello)).await.is_err() {
            return;
        }
        let settings = &self.state.settings;
        let alarms = Alarms::new(&self.state.shutdown, &self.subs.overflow(), settings.keepalive_secs, &self.token);
        let mut turns = Turns::new(stream, rx, alarms);
        let mut requests = Requests::default();
        let outbound = settings.outbound_queue;
        loop {
            let Some(woke) = turns.next(&mut sink, &self.token, &mut requests).await else { return };
            match woke {
                Woke::Alarm(alarm) => match alarm {
                    Alarm::Shutdown => {
                        // Requests already read are answered first, for a while.
                        let _ = tokio::time::timeout(DRAIN_ON_SHUTDOWN, Box::pin(self.drain(&mut sink, &mut requests)))
                            .await;
                        sink.close(1001, "server shutting down").await;
                        return;
                    }
                    Alarm::Overflow => {
                        self.cut_off(&mut sink).await;
                        return;
                    }
                    Alarm::Token => match self.token.fire() {
                        TokenAlarm::Expired => {
                            let _ = sink.send(frame(&ServerFrame::TokenExpired)).await;
                            sink.close(CLOSE_TOKEN_EXPIRED, "access token expired").await;
                            return;
                        }
                        TokenAlarm::Warn => {
                            let warning = ServerFrame::TokenAboutToExpire { expires_at: self.token.expires_at() };
                            if sink.send(frame(&warning)).await.is_err() {
                                return;
                            }
                        }
                    },
                    Alarm::Ping => {
                        if sink.ping().await.is_err() {
                            return;
                        }
                    }
                },
                Woke::Deliveries(n) => {
                    if n == 0 {
                        return;
                    }
                    if self.deliver(&mut sink, &mut turns.batch, &mut requests).await.is_err() {
                        return;
                    }
                    if requests.waiting() > outbound {
                        // As far behind as a full queue: a slow consumer.
                        self.cut_off(&mut sink).await;
                        return;
                    }
                }
                Woke::Reply(reply) => {
                    // Boxed, as request handling is: idle connections should not carry its size.
                    if Box::pin(self.answer(&mut sink, &mut requests, reply)).await.is_err() {
                        return;
                    }
                }
                Woke::Read(msg) => {
                    let text = match sink.take(msg).await {
                        Incoming::Text(t) => t,
                        Incoming::Binary(_) => {
                            let e = ApiError::new(
                                ErrorCode::InvalidRequest,
                                "binary frames are not supported; send JSON text",
                            );
                            if sink.send(frame(&ServerFrame::Error { id: None, error: e.body() })).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        Incoming::Nothing => continue,
                        Incoming::End => return,
                    };
                    let Some(turn) = self.start(&text, &mut requests) else { continue };
                    // Boxed: handling a frame that needs the session is a large future, and
                    // keeping it inline would make every idle connection carry its size.
                    match Box::pin(self.handle(&mut sink, turn)).await {
                        Flow::Continue => {}
                        Flow::Stop => return,
                    }
                }
            }
        }
    }

    /// Writes every queued event the client has not seen and no running request holds back,
    /// then flushes once.
    async fn deliver(
        &mut self,
        sink: &mut Writer,
        batch: &mut Vec<Arc<Delivery>>,
        requests: &mut Requests,
    ) -> std::io::Result<()> {
        for d in batch.drain(..) {
            if let Some(d) = requests.offer(d) {
                self.deliver_one(sink, &d).await?;
            }
        }
        sink.flush().await
    }

    async fn deliver_one(&mut self, sink: &mut Writer, d: &Delivery) -> std::io::Result<()> {
        if self.subs.admit(d) {
            sink.feed(d.native_frame()).await?;
        }
        Ok(())
    }

    /// Writes a finished request's reply and any others finished by now, then the events they
    /// held back, then flushes once.
    async fn answer(&mut self, sink: &mut Writer, requests: &mut Requests, first: Bytes) -> std::io::Result<()> {
        sink.feed(first).await?;
        while let Some(more) = requests.ready() {
            sink.feed(more).await?;
        }
        while let Some(d) = requests.release() {
            self.deliver_one(sink, &d).await?;
        }
        sink.flush().await
    }

    /// Answers every request in flight.
    async fn drain(&mut self, sink: &mut Writer, requests: &mut Requests) -> std::io::Result<()> {
        while !requests.is_empty() {
            let reply = requests.next().await;
            self.answer(sink, requests, reply).await?;
        }
        Ok(())
    }

    /// Closes a slow consumer's connection, with a resume token per subscription.
    async fn cut_off(&self, sink: &mut Writer) {
        let resume = self.resume_points();
        let _ = sink.send(frame(&ServerFrame::Overflow { resume })).await;
        sink.close(CLOSE_SLOW_CONSUMER, "slow consumer: resume from the tokens sent").await;
    }

    fn resume_points(&self) -> Vec<ResumePoint> {
        self.subs
            .cursors()
            .map(|(object, seq)| ResumePoint { object_sid: object.to_string(), since: self.since_token(seq) })
            .collect()
    }

    fn since_token(&self, seq: u64) -> String {
        SinceToken {
            epoch: self.state.engine.store().epoch().to_owned(),
            service_sid: self.cx.service.sid.clone(),
            seq,
        }
        .encode()
    }

    /// Reads a frame, and starts it among the requests in flight if it needs nothing of the
    /// session but its caller; any other frame comes back for [`Session::handle`]. Not async:
    /// nearly every frame is such a request, and starting one need not build (and box) the
    /// large future `handle` is.
    fn start(&mut self, text: &str, requests: &mut Requests) -> Option<Turn> {
        let request = match ClientFrame::parse(text) {
            Ok(f) => f,
            Err(e) => {
                let id = serde_json::from_str::<Value>(text).ok().and_then(|v| v.get("id").and_then(Value::as_u64));
                return Some(Turn::Refused(
                    id,
                    ApiError::new(ErrorCode::InvalidRequest, format!("unreadable frame: {e}")),
                ));
            }
        };
        let Some(id) = request.id() else {
            let e = ApiError::new(
                ErrorCode::InvalidRequest,
                "already authenticated; use update_token to replace the token",
            );
            return Some(Turn::Refused(None, e));
        };
        if matches!(
            request,
            ClientFrame::Subscribe { .. }
                | ClientFrame::SubscribeQuery { .. }
                | ClientFrame::Unsubscribe { .. }
                | ClientFrame::UnsubscribeQuery { .. }
                | ClientFrame::UpdateToken { .. }
        ) {
            return Some(Turn::Session(id, request));
        }
        let lane = lane(&request);
        let span = tracing::debug_span!("ws_request", id, identity = %self.identity);
        requests.push(lane, run_request(self.cx.clone(), id, request).instrument(span));
        None
    }

    /// A frame that needs the session: a subscription made or ended, a new token, or a refusal.
    async fn handle(&mut self, sink: &mut Writer, turn: Turn) -> Flow {
        let (id, request) = match turn {
            Turn::Refused(id, e) => return self.send(sink, &ServerFrame::Error { id, error: e.body() }).await,
            Turn::Session(id, request) => (id, request),
        };
        if let ClientFrame::Subscribe { kind, object, since, .. } = request {
            return self.subscribe(sink, id, kind, &object, since.as_deref()).await;
        }
        if let ClientFrame::SubscribeQuery { index, query, since, .. } = request {
            return match self.subscribe_query(sink, id, &index, &query, since.as_deref()).await {
                Ok(flow) => flow,
                Err(e) => {
                    let reply = ServerFrame::Reply { id, status: e.code.status(), body: None, error: Some(e.body()) };
                    self.send(sink, &reply).await
                }
            };
        }
        // These change the session itself, so they run in turn with the frames around them.
        let reply = match self.control(id, request).await {
            Ok(reply) => reply,
            Err(e) => failed(id, &e),
        };
        if sink.send(reply).await.is_err() { Flow::Stop } else { Flow::Continue }
    }

    async fn send(&self, sink: &mut Writer, f: &ServerFrame) -> Flow {
        if sink.send(frame(f)).await.is_err() { Flow::Stop } else { Flow::Continue }
    }

    /// Subscribe first, then read: the hub registration precedes the log read, and events that
    /// arrive live for sequence numbers already sent are dropped by the cursor.
    async fn subscribe(
        &mut self,
        sink: &mut Writer,
        id: u64,
        kind: ObjectKind,
        object: &str,
        since: Option<&str>,
    ) -> Flow {
        match self.try_subscribe(sink, id, kind, object, since).await {
            Ok(flow) => flow,
            Err(e) => {
                let reply = ServerFrame::Reply { id, status: e.code.status(), body: None, error: Some(e.body()) };
                self.send(sink, &reply).await
            }
        }
    }

    async fn try_subscribe(
        &mut self,
        sink: &mut Writer,
        id: u64,
        kind: ObjectKind,
        object: &str,
        since: Option<&str>,
    ) -> Result<Flow, ApiError> {
        let engine = self.state.engine.clone();
        let found = engine.readable_object(&self.cx.principal, &self.cx.service, kind, object).await?;
        let sid = found.sid.clone();
        if !self.subs.contains(&sid) && self.subs.len() >= self.state.settings.max_subscriptions {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("a connection may hold at most {} subscriptions", self.state.settings.max_subscriptions),
            ));
        }
        let fresh = self.subs.register(&sid).await?;
        let start = match since {
            Some(t) => engine.since_seq(&self.cx.service, t).await,
            None => engine.head_token(&self.cx.service).await.and_then(|t| Ok(SinceToken::decode(&t)?.seq)),
        };
        let at_head = since.is_none();
        let start = match start {
            Ok(s) => s,
            Err(e) => {
                if fresh {
                    self.subs.cancel(&sid).await;
                }
                return Err(e.into());
            }
        };
        // Live events queued meanwhile wait in the channel and are filtered by the final cursor.
        self.subs.rewind(&sid, start);
        // The snapshot is read after the head, so it reflects at least everything before it.
        let snapshot = engine.readable_object(&self.cx.principal, &self.cx.service, kind, sid.as_str()).await.ok();
        let body = Subscribed { object: snapshot.map(ObjectView::from), since: self.since_token(start) };
        if sink.send(reply(id, 200, &body)).await.is_err() {
            return Ok(Flow::Stop);
        }
        let mut replay = Replay::new(&self.cx.service.sid, &sid, Start { seq: start, at_head });
        while let Some(events) = replay.next_page(&engine).await? {
            for e in events {
                if sink.feed(Delivery::from_stored(e).native_frame()).await.is_err() {
                    return Ok(Flow::Stop);
                }
            }
        }
        if sink.flush().await.is_err() {
            return Ok(Flow::Stop);
        }
        self.subs.set_cursor(&sid, replay.cursor());
        Ok(Flow::Continue)
    }

    /// A live query: registered with the hub first, then its results read (as of a point of
    /// the log) or, resuming, the log replayed from `since`; live changes queued meanwhile are
    /// filtered by that point.
    async fn subscribe_query(
        &mut self,
        sink: &mut Writer,
        id: u64,
        index: &str,
        query: &str,
        since: Option<&str>,
    ) -> Result<Flow, ApiError> {
        let engine = self.state.engine.clone();
        let svc = self.cx.service.sid.to_string();
        let (def, expr, maps) = engine.live_query_plan(&self.cx.principal, &svc, index, query).await?;
        if self.subs.len() >= self.state.settings.max_subscriptions {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("a connection may hold at most {} subscriptions", self.state.settings.max_subscriptions),
            ));
        }
        let qid = Sid::new(SidKind::LiveQuery);
        self.subs.register_query(&qid, def.clone(), expr.clone(), maps.clone()).await?;
        let started = match since {
            None => {
                let page = PageRequest { order: Order::Asc, from: None, after: None, limit: MAX_LIVE_RESULTS };
                match engine.query(&self.cx.principal, &svc, index, query, page).await {
                    Ok(r) if r.next.is_some() => Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        format!("query: more than {MAX_LIVE_RESULTS} items match; narrow it for a live query"),
                    )),
                    Ok(r) => Ok((r.seq, r.items)),
                    Err(e) => Err(e.into()),
                }
            }
            Some(t) => engine.since_seq(&self.cx.service, t).await.map(|seq| (seq, Vec::new())).map_err(ApiError::from),
        };
        let (start, items) = match started {
            Ok(s) => s,
            Err(e) => {
                self.subs.cancel(&qid).await;
                return Err(e);
            }
        };
        let body = QuerySubscribed { query_id: qid.to_string(), items, since: self.since_token(start) };
        if sink.send(reply(id, 200, &body)).await.is_err() {
            return Ok(Flow::Stop);
        }
        // Resuming: what changed since, judged event by event as the hub judges live ones.
        let mut cursor = start;
        if since.is_some() {
            loop {
                let events = engine
                    .store()
                    .events(&self.cx.service.sid, cursor, None, 1000)
                    .await
                    .map_err(ferrosync_core::CoreError::from)?;
                let full = events.len() == 1000;
                for stored in &events {
                    cursor = stored.seq;
                    let Ok(event) = serde_json::from_str::<Event>(stored.json.get()) else { continue };
                    if maps.as_ref().is_some_and(|m| !m.contains(&event.object_sid)) {
                        continue;
                    }
                    if let Some(change) = transition(&def, &expr, &event)
                        && let Some(e) = super::live::query_event(&qid, &event, change)
                        && sink.feed(Delivery::from_stored(e).native_frame()).await.is_err()
                    {
                        return Ok(Flow::Stop);
                    }
                }
                if !full {
                    break;
                }
            }
            if sink.flush().await.is_err() {
                return Ok(Flow::Stop);
            }
        }
        self.subs.set_cursor(&qid, cursor);
        Ok(Flow::Continue)
    }

    /// Runs a request that changes the session (its subscriptions or its token).
    async fn control(&mut self, id: u64, request: ClientFrame) -> Result<Bytes, ApiError> {
        let engine = self.state.engine.clone();
        Ok(match request {
            ClientFrame::Unsubscribe { kind, object, .. } => {
                let found = engine.readable_object(&self.cx.principal, &self.cx.service, kind, &object).await;
                let sid = match found {
                    Ok(o) => o.sid,
                    Err(_) => Sid::parse(&object).map_err(ferrosync_core::CoreError::from)?,
                };
                self.subs.cancel(&sid).await;
                reply(id, 200, &empty())
            }
            ClientFrame::UpdateToken { token, .. } => {
                let fresh = engine.authenticate_token(&token).await?;
                match &fresh {
                    Principal::Identity { identity, service_sid, expires_at }
                        if identity == &self.identity && service_sid == &self.cx.service.sid =>
                    {
                        self.token.renew(*expires_at);
                        self.cx = Arc::new(RequestCx {
                            state: self.state.clone(),
                            principal: fresh.clone(),
                            service: self.cx.service.clone(),
                        });
                        reply(id, 200, &serde_json::json!({ "expires_at": expires_at }))
                    }
                    _ => {
                        return Err(ApiError::new(
                            ErrorCode::Forbidden,
                            "the new token must be for the same identity and service",
                        ));
                    }
                }
            }
            ClientFrame::UnsubscribeQuery { query_id, .. } => {
                let sid = Sid::parse_kind(&query_id, SidKind::LiveQuery).map_err(ferrosync_core::CoreError::from)?;
                self.subs.cancel(&sid).await;
                reply(id, 200, &empty())
            }
            _ => return Err(ApiError::new(ErrorCode::InvalidRequest, "unexpected frame")),
        })
    }
}

/// How long a shutting-down connection waits for the replies of requests it has read.
const DRAIN_ON_SHUTDOWN: Duration = Duration::from_secs(5);

fn failed(id: u64, e: &ApiError) -> Bytes {
    frame(&ServerFrame::Reply { id, status: e.code.status(), body: None, error: Some(e.body()) })
}

/// The object a request names, as the client named it: requests with the same one take turns.
fn lane(request: &ClientFrame) -> Option<u64> {
    let (kind, object) = match request {
        ClientFrame::Open { kind, sid, unique_name, .. } => (*kind, sid.as_ref().or(unique_name.as_ref())?),
        ClientFrame::Get { kind, object, .. }
        | ClientFrame::Update { kind, object, .. }
        | ClientFrame::Remove { kind, object, .. }
        | ClientFrame::SetItem { kind, object, .. }
        | ClientFrame::RemoveItem { kind, object, .. }
        | ClientFrame::GetItems { kind, object, .. } => (*kind, object),
        ClientFrame::AddItem { list, .. } => (ObjectKind::List, list),
        ClientFrame::Publish { stream, .. } => (ObjectKind::Stream, stream),
        _ => return None,
    };
    Some(inflight::lane(kind, object))
}

/// Runs a request that needs nothing of the session but its caller, and frames its reply.
async fn run_request(cx: Arc<RequestCx>, id: u64, request: ClientFrame) -> Bytes {
    serve_request(&cx, id, request).await.unwrap_or_else(|e| failed(id, &e))
}

async fn serve_request(cx: &RequestCx, id: u64, request: ClientFrame) -> Result<Bytes, ApiError> {
    let (engine, p, svc) = (&cx.state.engine, &cx.principal, cx.service.sid.as_str());
    Ok(match request {
        ClientFrame::Open { kind, sid, unique_name, mode, ttl, data, .. } => {
            if sid.is_some() && unique_name.is_some() {
                return Err(ApiError::new(
                    ErrorCode::InvalidField,
                    "sid and unique_name: give one or the other, not both",
                ));
            }
            let (object, created) =
                engine.open(p, svc, kind, OpenRequest { sid, unique_name, mode, ttl, data }).await?;
            object_reply(id, if created { 201 } else { 200 }, object)
        }
        ClientFrame::Get { kind, object, .. } => object_reply(id, 200, engine.object(p, svc, kind, &object).await?),
        ClientFrame::Update { kind, object, data, ttl, if_match, returning, .. } => {
            let o = engine.update_object(p, svc, kind, &object, ObjectPatch { data, ttl, if_match }).await?;
            match returning {
                Return::Minimal => written(id, 200, None, o.revision),
                Return::Representation => object_reply(id, 200, o),
            }
        }
        ClientFrame::Remove { kind, object, if_match, .. } => {
            engine.remove_object(p, svc, kind, &object, if_match).await?;
            reply(id, 204, &empty())
        }
        ClientFrame::AddItem { list, data, ttl, collection_ttl, returning, .. } => {
            let item = engine.add_list_item(p, svc, &list, data, ttl, collection_ttl).await?;
            match returning {
                Return::Minimal => written(id, 201, item.index, item.revision),
                Return::Representation => reply(id, 201, &ItemView::from(item)),
            }
        }
        ClientFrame::SetItem { kind, object, index, key, data, ttl, collection_ttl, if_match, returning, .. } => {
            let key = item_key(kind, index, key)?;
            let mode = if kind == ObjectKind::List { ItemWriteMode::Update } else { ItemWriteMode::Upsert };
            let patch = ItemPatch { data, ttl, collection_ttl, if_match };
            let (item, created) = engine.write_item(p, svc, kind, &object, key, patch, mode).await?;
            let status = if created { 201 } else { 200 };
            match returning {
                Return::Minimal => written(id, status, None, item.revision),
                Return::Representation => reply(id, status, &ItemView::from(item)),
            }
        }
        ClientFrame::RemoveItem { kind, object, index, key, if_match, .. } => {
            engine.remove_item(p, svc, kind, &object, item_key(kind, index, key)?, if_match).await?;
            reply(id, 204, &empty())
        }
        ClientFrame::GetItems { kind, object, order, page_size, page_token, .. } => {
            let page = PageRequest::new(order, None, page_token.as_deref(), page_size, engine.limits())?;
            let result = engine.items(p, svc, kind, &object, page).await?;
            let items: Vec<ItemView> = result.items.into_iter().map(ItemView::from).collect();
            reply(id, 200, &ItemsPage { items, next_page_token: result.next.map(|t| t.encode()) })
        }
        ClientFrame::Publish { stream, data, returning, .. } => {
            let message = engine.publish(p, svc, &stream, data).await?;
            match returning {
                Return::Minimal => reply(id, 201, &Published { sid: message.sid.to_string() }),
                Return::Representation => reply(id, 201, &MessageView::from(message)),
            }
        }
        ClientFrame::Ping { .. } => reply(id, 200, &serde_json::json!({ "pong": true })),
        _ => return Err(ApiError::new(ErrorCode::InvalidRequest, "unexpected frame")),
    })
}

/// A live query's first results, at most; a query matching more is refused (narrow it).
const MAX_LIVE_RESULTS: u32 = 10_000;

fn item_key(kind: ObjectKind, index: Option<u64>, key: Option<String>) -> Result<ItemKey, ApiError> {
    match (kind, index, key) {
        (ObjectKind::List, Some(i), None) => Ok(ItemKey::Index(i)),
        (ObjectKind::Map, None, Some(k)) => Ok(ItemKey::Key(k)),
        (ObjectKind::List, _, _) => Err(ApiError::new(ErrorCode::InvalidField, "list items are addressed by index")),
        (ObjectKind::Map, _, _) => Err(ApiError::new(ErrorCode::InvalidField, "map items are addressed by key")),
        _ => Err(ApiError::new(ErrorCode::InvalidField, "kind: only lists and maps have items")),
    }
}
