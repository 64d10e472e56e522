//! One twilsock connection: the `init` handshake, tunnelled CDS requests answered in reply
//! frames, subscriptions fed by the realtime hub, token warnings and updates, and the close
//! frames that tell the SDK what to do next.

use super::error::{CdsError, code, token_refusal};
use super::events::{self, Channel};
use super::frame::{self, Frame};
use super::queries::LiveSub;
use super::request::{CdsReply, CdsRequest, Cx, Urls};
use super::router::{self, Endpoint, Params};
use super::types::{Header, HttpStatus, InitReply, MessageReply, ServerFrame, Status, StatusReply};
use crate::api::twilio::error::{TwilioError, code as twilio_code};
use crate::realtime::hub::Delivery;
use crate::realtime::inflight::{self, Pipeline};
use crate::realtime::outlet::Outlet;
use crate::realtime::session::{Alarm, Alarms, Subscriptions, TokenAlarm, TokenClock};
use crate::realtime::wake::{Turns, Woke};
use crate::realtime::wire::{self, Incoming, Reader, Writer};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ferrosync_core::auth::{Principal, random_hex};
use ferrosync_core::model::{ObjectKind, Service};
use ferrosync_core::sid::Sid;
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::Instrument;

/// The largest frame a client may send: data is limited to 16 KiB, so this is generous.
pub const MAX_FRAME: usize = 256 * 1024;
/// How long a new socket may take to send `init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// `GET /twilio/twilsock/v3/wsconnect`: the SDK authenticates in its first frame (`init`).
pub async fn upgrade(State(state): State<Arc<AppState>>, mut request: Request) -> Response {
    let on_upgrade = request.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let (response, on_upgrade) = match wire::accept(request.method(), request.headers(), on_upgrade) {
        Ok(accepted) => accepted,
        Err(e) => return TwilioError::new(twilio_code::INVALID_PARAMETER, e.to_string()).into_response(),
    };
    let host = request.headers().get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let urls = Urls::for_host(host);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let config = WebSocketConfig::default().read_buffer_size(4096).max_message_size(Some(MAX_FRAME));
        let (sink, stream) = wire::open(upgraded, config, wire::Data::Binary, state.settings.write_stall()).await;
        serve(sink, stream, state, urls).await;
    });
    response.into_response()
}

pub(super) struct Session {
    pub(super) state: Arc<AppState>,
    pub(super) token: TokenClock,
    pub(super) subs: Subscriptions,
    pub(super) urls: Urls,
    /// The socket's outlet: it frames the connection's events (for the hub too, which writes
    /// them while the task sleeps) and holds the positions of the events this connection wrote,
    /// whose echo is not sent back: the SDK has applied them already (and would report some of
    /// them twice).
    pub(super) outlet: Arc<Outlet>,
    /// Live queries, by the key each registration has with the hub.
    pub(super) live: HashMap<Sid, LiveSub>,
    /// Who is connected, shared with the requests in flight; made again with a new token.
    pub(super) caller: Arc<Caller>,
}

pub(super) struct Caller {
    pub(super) state: Arc<AppState>,
    pub(super) principal: Principal,
    pub(super) service: Service,
}

/// Requests in flight, each finishing with the event it wrote (its echo is not sent back) and
/// its reply frame. An event that arrives while requests run may be such an echo, known only
/// once the reply is, so [`Pipeline`] holds it back until then.
type Requests = Pipeline<(Option<u64>, Bytes)>;

/// A frame [`Session::start`] did not start as a request in flight.
enum Turn {
    /// An unreadable frame: refused, and the connection closed.
    Unreadable(String),
    /// Answered with a status alone (`ping`, a refused message, an unknown method).
    Status(String, Status),
    /// A CDS request refused before it ran.
    Refused(String, CdsError),
    /// `update`: a new token for the connection.
    Token(String, String),
    /// `close`, from the client.
    Close,
    /// A change to the connection's subscriptions, run in turn with the frames around it.
    Subscriptions { id: String, http: Box<super::types::HttpRequest>, payload: Bytes, span: tracing::Span },
}

pub(super) enum Flow {
    Continue,
    Stop,
}

async fn serve(mut sink: Writer, mut stream: Reader, state: Arc<AppState>, urls: Urls) {
    let Some((principal, service, expires_at)) = handshake(&state, &mut sink, &mut stream).await else {
        return;
    };
    let identity = match &principal {
        Principal::Identity { identity, .. } => identity.clone(),
        _ => String::new(),
    };
    let outlet = sink.outlet();
    let live_urls = urls.clone();
    outlet.render_with(Box::new(move |d| {
        d.twilsock
            .get_or_render(live_urls.base(), || events::render(&d.event, &live_urls, Channel::Live).unwrap_or_default())
    }));
    let (subs, rx) = Subscriptions::open(
        state.hub.clone(),
        service.sid.clone(),
        state.settings.outbound_queue,
        Some(outlet.clone()),
    );
    let span = tracing::debug_span!("twilsock", conn = subs.connection_id(), identity = %identity);
    let token = TokenClock::new(expires_at, state.settings.token_warning_secs);
    let _online = state.webhooks.reachability.online(&service.sid, &identity);
    let caller = Arc::new(Caller { state: state.clone(), principal, service });
    let mut session = Session { state, token, subs, urls, outlet, live: HashMap::new(), caller };
    session.run(sink, stream, rx).instrument(span).await;
    session.subs.close().await;
}

/// Waits for `init` and answers it. A refused token gets a 401 reply (with 20104 when it has
/// expired, which the SDK reports as `tokenExpired`) and the socket is closed.
async fn handshake(state: &AppState, sink: &mut Writer, stream: &mut Reader) -> Option<(Principal, Service, i64)> {
    let deadline = tokio::time::Instant::now() + INIT_TIMEOUT;
    // Bounded: a client gets a few frames (acks, telemetry) before it must have sent `init`.
    for _ in 0..16 {
        let Ok(read) = tokio::time::timeout_at(deadline, stream.next()).await else { return None };
        let bytes = match sink.take(read).await {
            Incoming::Binary(b) => b,
            Incoming::Text(t) => Bytes::from(t),
            Incoming::Nothing => continue,
            Incoming::End => return None,
        };
        let frame = match frame::parse(&bytes, MAX_FRAME) {
            Ok(f) => f,
            Err(e) => {
                refuse_frame(sink, &e.to_string()).await;
                return None;
            }
        };
        match &*frame.header.method {
            "init" => {}
            "close" => return None,
            _ => continue,
        }
        let id = frame.header.id.as_deref().unwrap_or_default().to_owned();
        let token = frame.header.token.clone().unwrap_or_default();
        let refused = match authenticate(state, &token).await {
            Ok((principal, service, expires_at)) => {
                let reply = InitReply {
                    method: "reply",
                    id: &id,
                    status: Status::OK,
                    continuation_token: format!("CT{}", random_hex(16)),
                    capabilities: vec!["client_update", "offline_storage", "telemetry.v1"],
                    offline_storage: json!({ "data_sync": { "storage_id": format!("SS{}", random_hex(16)) } }),
                    init_registrations: frame.header.registrations.as_ref(),
                };
                if sink.send(frame::encode(&reply, b"")).await.is_err() {
                    return None;
                }
                return Some((principal, service, expires_at));
            }
            Err(refused) => refused,
        };
        let reply = StatusReply { method: "reply", id: &id, status: refused };
        let _ = sink.send(frame::encode(&reply, b"")).await;
        sink.close(1000, "init refused").await;
        return None;
    }
    None
}

/// Authenticates an `init` or `update` token; the refusal is the transport status to reply.
async fn authenticate(state: &AppState, token: &str) -> Result<(Principal, Service, i64), Status> {
    let refuse = |e: ferrosync_core::CoreError| {
        let (code, status, error_code) = token_refusal(&e);
        Status::error(code, status, Some(error_code), e.to_string())
    };
    let principal = state.engine.authenticate_token(token).await.map_err(refuse)?;
    let Principal::Identity { service_sid, expires_at, .. } = &principal else {
        return Err(Status::error(
            403,
            "FORBIDDEN",
            Some(code::FORBIDDEN.1),
            "an access token for an identity is required",
        ));
    };
    let expires_at = *expires_at;
    let service = state.engine.service(&principal, service_sid.as_str()).await.map_err(refuse)?;
    Ok((principal, service, expires_at))
}

/// Answers a frame that cannot be read: the SDK treats a `close` with 406 as "the protocol
/// was not understood", and the socket ends.
async fn refuse_frame(sink: &mut Writer, reason: &str) {
    tracing::debug!(reason, "unreadable twilsock frame");
    let id = server_frame_id();
    let status = Status::error(406, "NOT_ACCEPTABLE", None, reason);
    let _ = sink.send(frame::encode(&close_frame(&id, status), b"")).await;
    sink.close(1003, "unreadable twilsock frame").await;
}

fn close_frame(id: &str, status: Status) -> ServerFrame<'_> {
    ServerFrame {
        method: "close",
        id,
        message_type: None,
        payload_type: None,
        client_update_type: None,
        status: Some(status),
    }
}

/// An id for a frame this server starts, in the SDK's `TM` + 32 hex form.
pub(super) fn server_frame_id() -> String {
    format!("TM{}", random_hex(16))
}

impl Session {
    async fn run(&mut self, mut sink: Writer, stream: Reader, rx: mpsc::Receiver<Arc<Delivery>>) {
        let settings = &self.state.settings;
        let alarms = Alarms::new(&self.state.shutdown, &self.subs.overflow(), settings.keepalive_secs, &self.token);
        let mut turns = Turns::new(stream, rx, alarms);
        let mut flight = Requests::default();
        let outbound = settings.outbound_queue;
        loop {
            let Some(woke) = turns.next(&mut sink, &self.token, &mut flight).await else { return };
            match woke {
                Woke::Alarm(alarm) => match alarm {
                    Alarm::Shutdown => {
                        // Requests already read are answered first, for a while.
                        let _ =
                            tokio::time::timeout(DRAIN_ON_SHUTDOWN, Box::pin(self.drain(&mut sink, &mut flight))).await;
                        // 308 ("offloaded"): the SDK reconnects and resumes its subscriptions.
                        let status = Status::error(308, "OFFLOADED", None, "server shutting down");
                        self.close_with(&mut sink, status, 1001).await;
                        return;
                    }
                    Alarm::Overflow => {
                        // Too far behind: reconnecting makes the SDK resume from its last event ids.
                        self.close_with(&mut sink, Status::error(308, "OFFLOADED", None, "slow consumer"), 1000).await;
                        return;
                    }
                    Alarm::Token => match self.token.fire() {
                        TokenAlarm::Expired => {
                            let status = Status::error(
                                410,
                                "TOKEN_EXPIRED",
                                Some(code::ACCESS_TOKEN_EXPIRED.1),
                                "access token expired",
                            );
                            self.close_with(&mut sink, status, 1000).await;
                            return;
                        }
                        TokenAlarm::Warn => {
                            let id = server_frame_id();
                            let warning = ServerFrame {
                                method: "client_update",
                                id: &id,
                                message_type: None,
                                payload_type: None,
                                client_update_type: Some("token_about_to_expire"),
                                status: None,
                            };
                            if let Flow::Stop = send(&mut sink, frame::encode(&warning, b"")).await {
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
                    if n == 0 || self.deliver(&mut sink, &mut turns.batch, &mut flight).await.is_err() {
                        return;
                    }
                    if flight.waiting() > outbound {
                        // As far behind as a full queue: the SDK resumes from its last event ids.
                        self.close_with(&mut sink, Status::error(308, "OFFLOADED", None, "slow consumer"), 1000).await;
                        return;
                    }
                }
                Woke::Reply(done) => {
                    // Boxed, as request handling is: idle connections should not carry its size.
                    if Box::pin(self.answer(&mut sink, &mut flight, done)).await.is_err() {
                        return;
                    }
                }
                Woke::Read(msg) => {
                    let bytes = match sink.take(msg).await {
                        Incoming::Binary(b) => b,
                        // The SDK sends binary frames; text carrying the same bytes is read alike.
                        Incoming::Text(t) => Bytes::from(t),
                        Incoming::Nothing => continue,
                        Incoming::End => return,
                    };
                    let Some(turn) = self.start(&bytes, &mut flight) else { continue };
                    // A subscription's replay may read the events of writes still in flight: they
                    // are answered first, so their echoes are known as this connection's own
                    // and left out of the replay, as they are left out of live deliveries.
                    if matches!(turn, Turn::Subscriptions { .. })
                        && Box::pin(self.drain(&mut sink, &mut flight)).await.is_err()
                    {
                        return;
                    }
                    // Boxed: handling a frame that needs the session is a large future that idle
                    // connections should not carry.
                    if let Flow::Stop = Box::pin(self.handle(&mut sink, turn)).await {
                        return;
                    }
                }
            }
        }
    }

    /// Answers every request in flight, each reply followed by the events it held back.
    async fn drain(&mut self, sink: &mut Writer, flight: &mut Requests) -> std::io::Result<()> {
        while !flight.is_empty() {
            let done = flight.next().await;
            self.answer(sink, flight, done).await?;
        }
        Ok(())
    }

    async fn close_with(&self, sink: &mut Writer, status: Status, ws_code: u16) {
        let id = server_frame_id();
        let reason = status.description.clone().unwrap_or_default();
        let _ = sink.send(frame::encode(&close_frame(&id, status), b"")).await;
        sink.close(ws_code, &reason).await;
    }

    /// Writes every queued event this client has not seen and no running request waits on,
    /// then flushes once.
    async fn deliver(
        &mut self,
        sink: &mut Writer,
        batch: &mut Vec<Arc<Delivery>>,
        flight: &mut Requests,
    ) -> std::io::Result<()> {
        for d in batch.drain(..) {
            if let Some(d) = flight.offer(d) {
                self.deliver_one(sink, &d).await?;
            }
        }
        sink.flush().await
    }

    async fn deliver_one(&mut self, sink: &mut Writer, d: &Delivery) -> std::io::Result<()> {
        if !self.subs.admit(d) {
            return Ok(());
        }
        // A live query's events are news even for the connection that wrote their item.
        if self.live.contains_key(&d.object_sid) {
            return self.deliver_query(sink, d).await;
        }
        if self.outlet.take_echo(d.seq) {
            return Ok(());
        }
        let frame = self.outlet.frame(d);
        if !frame.is_empty() {
            sink.feed(frame).await?;
        }
        Ok(())
    }

    /// Writes a finished request's reply, and those of any others finished by now; then the
    /// events they held back, less their echoes; then flushes once.
    async fn answer(
        &mut self,
        sink: &mut Writer,
        flight: &mut Requests,
        first: (Option<u64>, Bytes),
    ) -> std::io::Result<()> {
        let mut done = Some(first);
        while let Some((wrote, reply)) = done {
            if let Some(seq) = wrote {
                self.remember_own(seq);
            }
            sink.feed(reply).await?;
            done = flight.ready();
        }
        while let Some(d) = flight.release() {
            self.deliver_one(sink, &d).await?;
        }
        sink.flush().await
    }

    /// Reads a frame, and starts it among the requests in flight if it is a CDS request that
    /// needs nothing of the session but its caller; any other frame comes back for
    /// [`Session::handle`]. Not async: nearly every frame is such a request, and starting one
    /// need not build (and box) the large future `handle` is.
    fn start(&mut self, bytes: &Bytes, flight: &mut Requests) -> Option<Turn> {
        let Frame { header, payload } = match frame::parse(bytes, MAX_FRAME) {
            Ok(f) => f,
            Err(e) => return Some(Turn::Unreadable(e.to_string())),
        };
        // Acks of what this server sent, and telemetry: nothing to answer, nothing to copy.
        if matches!(&*header.method, "reply" | "telemetry.v1") {
            return None;
        }
        let id = header.id.as_deref().unwrap_or_default().to_owned();
        let status = match &*header.method {
            "message" => {
                let payload = bytes.slice_ref(payload);
                return self.message(id, header, payload, flight);
            }
            "update" => return Some(Turn::Token(id, header.token.unwrap_or_default())),
            "close" => return Some(Turn::Close),
            "ping" => Status::OK,
            "init" => Status::error(400, "BAD_REQUEST", None, "already initialised"),
            other => Status::error(400, "BAD_REQUEST", None, format!("unknown method '{other}'")),
        };
        Some(Turn::Status(id, status))
    }

    /// A frame that needs the session, or an answer of its own.
    async fn handle(&mut self, sink: &mut Writer, turn: Turn) -> Flow {
        match turn {
            Turn::Unreadable(reason) => {
                refuse_frame(sink, &reason).await;
                Flow::Stop
            }
            Turn::Status(id, status) => self.send_status(sink, &id, status).await,
            Turn::Refused(id, e) => self.reply_error(sink, &id, e).await,
            Turn::Token(id, token) => self.update_token(sink, &id, &token).await,
            Turn::Close => {
                sink.close(1000, "closed by the client").await;
                Flow::Stop
            }
            Turn::Subscriptions { id, http, payload, span } => {
                match cds_request(&http, Endpoint::Subscriptions, &payload) {
                    Ok(request) => self.poke(sink, &id, &request).instrument(span).await,
                    Err(e) => self.reply_error(sink, &id, e).await,
                }
            }
        }
    }

    async fn send_status(&self, sink: &mut Writer, id: &str, status: Status) -> Flow {
        let reply = StatusReply { method: "reply", id, status };
        send(sink, frame::encode(&reply, b"")).await
    }

    /// `update`: a fresh token for the same identity and service.
    async fn update_token(&mut self, sink: &mut Writer, id: &str, token: &str) -> Flow {
        let status = match authenticate(&self.state, token).await {
            Ok((principal, service, expires_at))
                if principal.actor() == self.caller.principal.actor() && service.sid == self.caller.service.sid =>
            {
                self.token.renew(expires_at);
                self.caller =
                    Arc::new(Caller { state: self.state.clone(), principal, service: self.caller.service.clone() });
                Status::OK
            }
            Ok(_) => Status::error(
                403,
                "FORBIDDEN",
                Some(code::FORBIDDEN.1),
                "the new token must be for the same identity and service",
            ),
            Err(refused) => refused,
        };
        self.send_status(sink, id, status).await
    }

    /// `message`: a tunnelled CDS request. Subscription changes run in turn (handed back);
    /// every other request runs in flight (see [`Pipeline`]).
    fn message(&mut self, id: String, header: Header<'_>, payload: Bytes, flight: &mut Requests) -> Option<Turn> {
        let Some(http) = header.http_request else {
            return Some(Turn::Status(id, Status::error(400, "BAD_REQUEST", None, "a message needs an http_request")));
        };
        if self.token.is_expired() {
            let status = Status::error(401, "UNAUTHORIZED", Some(code::ACCESS_TOKEN_EXPIRED.1), "access token expired");
            return Some(Turn::Status(id, status));
        }
        if let Some(host) = http.host.as_deref() {
            // URLs handed out point where the client tunnels its requests.
            self.urls = Urls::for_host(host);
        }
        let span = tracing::debug_span!("cds", method = %http.method, path = %http.path);
        let endpoint = match Endpoint::parse(&http.path) {
            Ok(e) => e,
            Err(e) => return Some(Turn::Refused(id, e)),
        };
        if endpoint == Endpoint::Subscriptions {
            return Some(Turn::Subscriptions { id, http, payload, span });
        }
        let lane = match &endpoint {
            Endpoint::Object(kind, object) | Endpoint::Items(kind, object) | Endpoint::Item(kind, object, _) => {
                Some(inflight::lane(*kind, object))
            }
            Endpoint::ListContext(list) => Some(inflight::lane(ObjectKind::List, list)),
            Endpoint::StreamMessages(stream) => Some(inflight::lane(ObjectKind::Stream, stream)),
            Endpoint::Subscriptions | Endpoint::Collection(_) | Endpoint::Insights(_) => None,
        };
        let (caller, urls) = (self.caller.clone(), self.urls.clone());
        let run = async move {
            let result = match cds_request(&http, endpoint, &payload) {
                Ok(request) => {
                    let cx = Cx {
                        engine: &caller.state.engine,
                        principal: &caller.principal,
                        service: &caller.service,
                        urls: &urls,
                    };
                    router::dispatch(&cx, &request).await
                }
                Err(e) => Err(e),
            };
            let reply = result.unwrap_or_else(|e| CdsReply::json(e.status, &e.body()));
            (reply.wrote, encode_reply(&id, reply))
        };
        flight.push(lane, run.instrument(span));
        None
    }

    fn remember_own(&mut self, seq: u64) {
        self.outlet.expect_echo(seq);
    }

    pub(super) async fn reply(&self, sink: &mut Writer, id: &str, reply: CdsReply) -> Flow {
        send(sink, encode_reply(id, reply)).await
    }

    pub(super) async fn reply_error(&self, sink: &mut Writer, id: &str, e: CdsError) -> Flow {
        let status = e.status;
        self.reply(sink, id, CdsReply::json(status, &e.body())).await
    }
}

/// How long a shutting-down connection waits for the replies of requests it has read.
const DRAIN_ON_SHUTDOWN: Duration = Duration::from_secs(5);

/// A tunnelled request as the router takes it.
fn cds_request<'a>(
    http: &'a super::types::HttpRequest,
    endpoint: Endpoint,
    payload: &'a [u8],
) -> Result<CdsRequest<'a>, CdsError> {
    let if_match = http.headers.as_ref().and_then(|h| {
        h.iter().find(|(k, _)| k.eq_ignore_ascii_case("if-match")).and_then(|(_, v)| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    });
    Ok(CdsRequest {
        method: &http.method,
        path: &http.path,
        endpoint,
        params: Params::from_wire(http.params.as_ref())?,
        if_match,
        body: payload,
    })
}

/// A CDS reply in its `reply` frame.
fn encode_reply(id: &str, reply: CdsReply) -> Bytes {
    let mut headers = Map::new();
    headers.insert("Content-Type".into(), "application/json".into());
    if let Some(etag) = reply.etag {
        headers.insert("ETag".into(), etag.into());
    }
    let header = MessageReply {
        method: "reply",
        id,
        payload_type: "application/json",
        status: Status::OK,
        http_status: HttpStatus { code: reply.status, status: super::error::reason_phrase(reply.status) },
        http_headers: headers,
    };
    let body = reply.body.unwrap_or_default();
    frame::encode(&header, &body)
}

pub(super) async fn send(sink: &mut Writer, frame: Bytes) -> Flow {
    if sink.send(frame).await.is_err() { Flow::Stop } else { Flow::Continue }
}
