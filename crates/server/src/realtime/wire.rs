//! A WebSocket (native or twilsock) on its upgraded connection. Reads go through tungstenite.
//! Writes queue each frame as a few header bytes beside its payload, which is shared: an event
//! framed once for 10,000 subscribers goes out from the same bytes to each, in one vectored
//! write per flush, instead of being copied into 10,000 write buffers (growing them, page by
//! page, was 15 % of a fan-out's CPU).

use super::gate::Gate;
use super::outlet::{Io, Outlet};
use arrayvec::ArrayVec;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use bytes::{Buf, Bytes};
use futures_util::{FutureExt, Stream, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

/// The reading half: tungstenite's parser over a stream whose writes go nowhere. Replies the
/// protocol requires (pong, the close reply) are written by [`Writer`] instead.
///
/// Behind a [`Gate`]: a connection's task polls its reader at every wake-up, most of them for
/// deliveries, and each poll used to go down through the parser to the socket's readiness and
/// re-register two wakers there. Now the parser is asked only after the socket woke it.
pub struct Reader {
    /// Boxed: the parser's state is several hundred bytes, and each future it moved through
    /// kept its own copy (1.3 KB more per idle connection than when it lived behind one pointer).
    ws: Box<WebSocketStream<ReadOnly<Source>>>,
    gate: Gate,
}

impl Stream for Reader {
    type Item = Result<Message, WsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Reader { ws, gate } = &mut *self;
        gate.poll(cx, false, |socket| ws.poll_next_unpin(socket))
    }
}

/// Why a request could not become a WebSocket.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("a WebSocket opens with GET, not {0}")]
    Method(Method),
    #[error("header {0} is missing or wrong: a WebSocket needs {1}")]
    Header(&'static str, &'static str),
    #[error("the connection cannot be upgraded (it is not HTTP/1.1)")]
    NotUpgradable,
}

/// Checks an upgrade request (RFC 6455 §4.2.1) and answers it: the 101 response to return,
/// and the connection it becomes once that response is sent.
pub fn accept(
    method: &Method,
    headers: &HeaderMap,
    on_upgrade: Option<OnUpgrade>,
) -> Result<(Response<Body>, OnUpgrade), HandshakeError> {
    if method != Method::GET {
        return Err(HandshakeError::Method(method.clone()));
    }
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(header::CONNECTION, "upgrade") {
        return Err(HandshakeError::Header("Connection", "Connection: Upgrade"));
    }
    if !has_token(header::UPGRADE, "websocket") {
        return Err(HandshakeError::Header("Upgrade", "Upgrade: websocket"));
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v.as_bytes() != b"13") {
        return Err(HandshakeError::Header("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13"));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err(HandshakeError::Header("Sec-WebSocket-Key", "a Sec-WebSocket-Key"));
    };
    let on_upgrade = on_upgrade.ok_or(HandshakeError::NotUpgradable)?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok((response, on_upgrade))
}

/// What a protocol's data frames carry: the native protocol's JSON goes as text (valid UTF-8 by
/// construction), twilsock's frames as binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    Text,
    Binary,
}

/// The upgraded connection as its two halves.
/// `stall`: how long a write may make no progress before the peer counts as gone.
pub async fn open(upgraded: Upgraded, config: WebSocketConfig, data: Data, stall: Duration) -> (Writer, Reader) {
    // Over HTTP/1.1 the upgraded stream is the TCP socket under hyper's wrappers: taken back
    // out, its halves read and write it directly, and share no lock.
    let (source, io, read) = match hyper_util::server::conn::auto::upgrade::downcast::<TokioIo<TcpStream>>(upgraded) {
        Ok(parts) => {
            let (read, write) = parts.io.into_inner().into_split();
            (Source::Tcp(read), Io::Tcp(write), parts.read_buf)
        }
        Err(upgraded) => {
            let (read, write) = tokio::io::split(TokioIo::new(upgraded));
            (Source::Upgraded(read), Io::stream(write), Bytes::new())
        }
    };
    // What the client sent after its upgrade request, read along with it.
    let ws = WebSocketStream::from_partially_read(ReadOnly(source), read.to_vec(), Role::Server, Some(config)).await;
    (Writer::new(io, data, stall), Reader { ws: Box::new(ws), gate: Gate::new() })
}

/// The socket's reading half.
enum Source {
    Tcp(OwnedReadHalf),
    Upgraded(ReadHalf<TokioIo<Upgraded>>),
}

impl AsyncRead for Source {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Source::Tcp(half) => Pin::new(half).poll_read(cx, buf),
            Source::Upgraded(half) => Pin::new(half).poll_read(cx, buf),
        }
    }
}

/// A reader that accepts and drops whatever the parser would write.
struct ReadOnly<R>(R);

impl<R: AsyncRead + Unpin> AsyncRead for ReadOnly<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for ReadOnly<R> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum OpCode {
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

/// A frame's header: FIN, opcode, and the payload length in 1, 3 or 9 bytes (a server's frames
/// are not masked).
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    bytes: [u8; 10],
    start: u8,
    end: u8,
}

impl Head {
    pub(super) fn new(op: OpCode, len: usize) -> Self {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | op as u8;
        let end = if len < 126 {
            bytes[1] = len as u8;
            2
        } else if let Ok(short) = u16::try_from(len) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        };
        Head { bytes, start: 0, end }
    }

    fn remaining(&self) -> &[u8] {
        &self.bytes[self.start as usize..self.end as usize]
    }
}

#[derive(Debug)]
pub(super) enum Chunk {
    Head(Head),
    Body(Bytes),
}

impl Chunk {
    fn remaining(&self) -> &[u8] {
        match self {
            Chunk::Head(h) => h.remaining(),
            Chunk::Body(b) => b,
        }
    }
}

/// The writing half: frames queue until [`Writer::flush`], or until [`FLUSH_AT`] bytes are
/// queued, so a catch-up over a long log never holds more than that. The socket itself lives
/// in an [`Outlet`], which the hub may write to while the connection's task sleeps.
pub struct Writer {
    io: Shared,
    /// The data frames' opcode: one protocol speaks in one kind.
    data: OpCode,
    /// A client that stops reading leaves a write pending for as long as TCP keeps the
    /// connection (a quarter of an hour and more), and with it every signal the connection
    /// would act on; a write that makes no progress this long ends the connection instead.
    stall: Duration,
    queue: VecDeque<Chunk>,
    queued: usize,
    /// Whether the hub may have written since [`Writer::rest`].
    resting: bool,
}

/// The outlet's socket as the task writes to it: locked for each write, never across a wait.
struct Shared(Arc<Outlet>);

impl AsyncWrite for Shared {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.0.lock().poll_write_vectored(cx, &[IoSlice::new(buf)])
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.0.lock().poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.0.lock().poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.0.lock().poll_shutdown(cx)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.io.0.lock().close();
    }
}

/// What a read left for the connection once control frames were answered.
pub enum Incoming {
    Text(Utf8Bytes),
    Binary(Bytes),
    /// A control frame, answered already.
    Nothing,
    /// The client closed or the connection failed.
    End,
}

/// Most slices handed to one vectored write (Linux takes up to 1,024).
const SLICES: usize = 64;
/// Queued bytes at which a feed writes out before returning.
pub const FLUSH_AT: usize = 64 * 1024;

impl Writer {
    pub(super) fn new(io: Io, data: Data, stall: Duration) -> Self {
        let data = match data {
            Data::Text => OpCode::Text,
            Data::Binary => OpCode::Binary,
        };
        let io = Shared(Arc::new(Outlet::new(io, data)));
        Writer { io, data, stall, queue: VecDeque::new(), queued: 0, resting: false }
    }

    /// The socket as the hub writes to it (see [`Writer::rest`]).
    pub fn outlet(&self) -> Arc<Outlet> {
        self.io.0.clone()
    }

    /// The task is about to sleep: if nothing is queued here and `quiet` holds, the hub writes
    /// the connection's events itself until [`Writer::hold`]. `quiet` (the task's delivery
    /// queue is empty) is asked under the outlet's lock, which the hub also holds when it
    /// queues a delivery instead of writing it: so no delivery queued before the hub's turn can
    /// be overtaken by one written in it.
    pub fn rest(&mut self, quiet: impl FnOnce() -> bool) {
        if !self.queue.is_empty() {
            return;
        }
        if !self.io.0.can_rest() {
            return;
        }
        let mut out = self.io.0.lock();
        if !out.has_pending() && quiet() {
            out.rest();
            self.resting = true;
        }
    }

    /// The task is awake: the hub's turn ends, and what it appended and did not write is
    /// queued first. Every write of the task's own comes after this (`push` and `flush` call
    /// it). True if it queued anything: the caller flushes, as nothing else may soon.
    pub fn hold(&mut self) -> bool {
        if !self.resting {
            return false;
        }
        self.resting = false;
        let pending = self.io.0.lock().hold();
        let took = !pending.is_empty();
        for chunk in pending.into_iter().rev() {
            self.queued += chunk.remaining().len();
            self.queue.push_front(chunk);
        }
        took
    }

    /// Queues a data frame; below [`FLUSH_AT`] queued bytes it waits for the next flush.
    pub async fn feed(&mut self, payload: Bytes) -> std::io::Result<()> {
        self.push(self.data, payload);
        self.bound().await
    }

    /// Queues a data frame and writes everything queued.
    pub async fn send(&mut self, payload: Bytes) -> std::io::Result<()> {
        self.push(self.data, payload);
        self.flush().await
    }

    async fn bound(&mut self) -> std::io::Result<()> {
        if self.queued >= FLUSH_AT { self.flush().await } else { Ok(()) }
    }

    pub async fn ping(&mut self) -> std::io::Result<()> {
        self.push(OpCode::Ping, Bytes::new());
        self.flush().await
    }

    /// Answers a client's ping (its payload is at most 125 bytes: the parser checked).
    pub async fn pong(&mut self, payload: Bytes) -> std::io::Result<()> {
        self.push(OpCode::Pong, payload);
        self.flush().await
    }

    /// Takes what a read from the client brought: answers a ping with its pong and a close with
    /// a close, and says what is left for the connection to handle.
    pub async fn take(&mut self, read: Option<Result<Message, WsError>>) -> Incoming {
        match read {
            Some(Ok(Message::Text(t))) => Incoming::Text(t),
            Some(Ok(Message::Binary(b))) => Incoming::Binary(b),
            Some(Ok(Message::Ping(payload))) => match self.pong(payload).await {
                Ok(()) => Incoming::Nothing,
                Err(_) => Incoming::End,
            },
            Some(Ok(Message::Close(_))) => {
                self.close(1000, "").await;
                Incoming::End
            }
            Some(Ok(Message::Pong(_) | Message::Frame(_))) => Incoming::Nothing,
            None | Some(Err(_)) => Incoming::End,
        }
    }

    /// Sends a close frame and shuts the connection's writing side; errors mean the peer is
    /// gone already.
    pub async fn close(&mut self, code: u16, reason: &str) {
        // A close frame's payload is at most 125 bytes: the code and 123 of reason.
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut payload = Vec::with_capacity(2 + end);
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        self.push(OpCode::Close, Bytes::from(payload));
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }

    fn push(&mut self, op: OpCode, payload: Bytes) {
        let _ = self.hold();
        self.queued += enqueue(&mut self.queue, op, payload);
    }

    /// Writes everything queued, as few writes as the socket allows.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.hold();
        while !self.queue.is_empty() {
            // Nearly every write completes at once. One that has to wait is boxed: its slices
            // (a kilobyte) live across the wait, and inline they would make every future that
            // flushes, every connection's among them, that much larger.
            let now = self.io.write_vectored(&slices(&self.queue)).now_or_never();
            let written = match now {
                Some(written) => written?,
                None => Box::pin(self.write_waiting()).await?,
            };
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            advance(&mut self.queue, written);
        }
        self.queued = 0;
        self.io.flush().await
    }

    /// A write that could not complete at once, given up once it has made no progress for the
    /// stall bound; only it reads the clock and the runtime's timer.
    async fn write_waiting(&mut self) -> std::io::Result<usize> {
        let slices = slices(&self.queue);
        tokio::time::timeout(self.stall, self.io.write_vectored(&slices))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the peer stopped reading"))?
    }
}

/// Queues a frame as its header beside its payload (shared, not copied); the bytes queued.
pub(super) fn enqueue(queue: &mut VecDeque<Chunk>, op: OpCode, payload: Bytes) -> usize {
    let head = Head::new(op, payload.len());
    let len = head.remaining().len() + payload.len();
    queue.push_back(Chunk::Head(head));
    if !payload.is_empty() {
        queue.push_back(Chunk::Body(payload));
    }
    len
}

/// The queue's first chunks as slices for one vectored write. Only the slices in use are set
/// up: a whole array of empty ones, made for every flush, cost more than the frames it then
/// carried (a flush nearly always has one or two).
pub(super) fn slices(queue: &VecDeque<Chunk>) -> ArrayVec<IoSlice<'_>, SLICES> {
    queue.iter().take(SLICES).map(|chunk| IoSlice::new(chunk.remaining())).collect()
}

/// Drops what a write took from the front of the queue.
pub(super) fn advance(queue: &mut VecDeque<Chunk>, mut written: usize) {
    while written > 0 {
        let Some(front) = queue.front_mut() else { return };
        let len = front.remaining().len();
        if written >= len {
            written -= len;
            queue.pop_front();
            continue;
        }
        match front {
            Chunk::Head(h) => h.start += written as u8,
            Chunk::Body(b) => b.advance(written),
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a client's parser makes of the headers written here, at each length boundary.
    #[test]
    fn headers_carry_the_length_in_the_form_the_protocol_requires() {
        use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
        for len in [0usize, 1, 125, 126, 65_535, 65_536, 1 << 20] {
            let head = Head::new(OpCode::Text, len);
            let mut cursor = std::io::Cursor::new(head.remaining().to_vec());
            let (parsed, parsed_len) =
                FrameHeader::parse(&mut cursor).expect("a well-formed header").expect("a complete header");
            assert_eq!(parsed_len, len as u64, "length {len}");
            assert!(parsed.is_final);
            assert!(parsed.mask.is_none(), "a server's frames are not masked");
            assert_eq!(cursor.position() as usize, head.remaining().len(), "nothing left over at {len}");
        }
    }

    /// A partial write leaves the rest of a header or payload queued, byte-exact.
    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut queue: VecDeque<Chunk> = VecDeque::new();
        queue.push_back(Chunk::Head(Head::new(OpCode::Text, 5)));
        queue.push_back(Chunk::Body(Bytes::from_static(b"hello")));
        queue.push_back(Chunk::Head(Head::new(OpCode::Text, 3)));
        queue.push_back(Chunk::Body(Bytes::from_static(b"abc")));
        let all: Vec<u8> = queue.iter().flat_map(|c| c.remaining().to_vec()).collect();
        for cut in 0..all.len() {
            let mut q: VecDeque<Chunk> = queue
                .iter()
                .map(|c| match c {
                    Chunk::Head(h) => Chunk::Head(*h),
                    Chunk::Body(b) => Chunk::Body(b.clone()),
                })
                .collect();
            advance(&mut q, cut);
            let rest: Vec<u8> = q.iter().flat_map(|c| c.remaining().to_vec()).collect();
            assert_eq!(rest, all[cut..], "after {cut} bytes");
        }
    }

    /// Frames fed without a flush go out once [`FLUSH_AT`] bytes are queued, so a long
    /// catch-up is written as it is read rather than held whole.
    #[tokio::test]
    async fn feeding_writes_out_at_the_bound_without_a_flush() {
        use tokio::io::AsyncReadExt;
        let (near, mut far) = tokio::io::duplex(4 * FLUSH_AT);
        let mut writer = Writer::new(Io::stream(near), Data::Text, Duration::from_secs(5));
        let frame = Bytes::from(vec![b'x'; 1000]);
        let mut fed = 0;
        while fed < FLUSH_AT {
            writer.feed(frame.clone()).await.expect("fed");
            fed += 1004;
        }
        assert!(writer.queue.is_empty(), "written out at the bound");
        let mut got = vec![0u8; fed];
        far.read_exact(&mut got).await.expect("the frames arrived without a flush");
        assert_eq!(&got[..4], &[0x81, 126, 0x03, 0xE8], "a text frame of 1,000 bytes");
        writer.feed(frame).await.expect("fed");
        assert_eq!(writer.queue.len(), 2, "below the bound a frame waits for the flush");
    }

    /// A peer that reads slowly makes writes wait for room: every frame still arrives whole
    /// and in order, more frames than one vectored write takes among them.
    #[tokio::test]
    async fn writes_that_wait_for_a_slow_reader_arrive_whole_and_in_order() {
        use tokio::io::AsyncReadExt;
        let (near, mut far) = tokio::io::duplex(256);
        let mut writer = Writer::new(Io::stream(near), Data::Binary, Duration::from_secs(30));
        // Under 126 bytes each, so every header is the two-byte form.
        let frames: Vec<Bytes> = (0..100u8).map(|i| Bytes::from(vec![i; 20 + usize::from(i)])).collect();
        let expected: Vec<u8> = frames.iter().flat_map(|f| [&[0x82, f.len() as u8][..], &f[..]].concat()).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 100];
            loop {
                match far.read(&mut chunk).await.expect("read") {
                    0 => return got,
                    n => got.extend_from_slice(&chunk[..n]),
                }
                tokio::task::yield_now().await;
            }
        });
        for frame in &frames {
            writer.push(OpCode::Binary, frame.clone());
        }
        assert!(writer.queue.len() > 2 * SLICES, "more chunks than one write takes");
        writer.flush().await.expect("flushed once the reader made room");
        assert!(writer.queue.is_empty());
        drop(writer);
        assert_eq!(reader.await.expect("reader"), expected);
    }

    /// What the test server's WebSocket saw: whether its writer holds the TCP socket's half,
    /// and the first message it read.
    type Opened = (bool, Option<Message>);

    /// An app whose `/ws` opens a WebSocket, reads one message, answers "pong" and reports.
    fn reporting_app(opened: tokio::sync::mpsc::Sender<Opened>) -> axum::Router {
        use axum::extract::Request;
        axum::Router::new().route(
            "/ws",
            axum::routing::get(move |mut request: Request| {
                let opened = opened.clone();
                async move {
                    let on_upgrade = request.extensions_mut().remove::<OnUpgrade>();
                    let (response, on_upgrade) =
                        accept(request.method(), request.headers(), on_upgrade).expect("a WebSocket request");
                    tokio::spawn(async move {
                        let upgraded = on_upgrade.await.expect("upgraded");
                        let config = WebSocketConfig::default();
                        let (mut writer, mut reader) = open(upgraded, config, Data::Text, Duration::from_secs(5)).await;
                        let first = reader.next().await.and_then(Result::ok);
                        writer.send(Bytes::from_static(b"pong")).await.expect("sent");
                        let holds_tcp = writer.io.0.lock().holds_tcp();
                        opened.send((holds_tcp, first)).await.expect("the test waits");
                    });
                    response
                }
            }),
        )
    }

    /// A client's upgrade request with a masked text frame "ping" behind it, in one write; then
    /// what the server reports, and the server's bytes up to its "pong" frame.
    async fn upgrade_and_ping<S: AsyncRead + AsyncWrite + Unpin>(
        client: &mut S,
        opened: &mut tokio::sync::mpsc::Receiver<Opened>,
    ) -> (Opened, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut bytes = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            .to_vec();
        let mask = [7u8, 1, 9, 3];
        bytes.extend_from_slice(&[0x81, 0x80 | 4]);
        bytes.extend_from_slice(&mask);
        bytes.extend(b"ping".iter().zip(mask).map(|(b, m)| b ^ m));
        client.write_all(&bytes).await.expect("written");
        let reported =
            tokio::time::timeout(Duration::from_secs(10), opened.recv()).await.expect("in time").expect("opened");
        let mut got = Vec::new();
        let read = async {
            while !got.ends_with(&PONG) {
                let mut chunk = [0u8; 512];
                let n = client.read(&mut chunk).await.expect("read");
                assert!(n > 0, "the server closed early: {:?}", String::from_utf8_lossy(&got));
                got.extend_from_slice(&chunk[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read).await.expect("the answer in time");
        (reported, got)
    }

    const PONG: [u8; 6] = [0x81, 4, b'p', b'o', b'n', b'g'];

    /// The frames after the 101 response's head.
    fn after_the_head(got: &[u8]) -> &[u8] {
        assert!(got.starts_with(b"HTTP/1.1 101 "), "{:?}", String::from_utf8_lossy(got));
        let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").expect("the response's head") + 4;
        &got[head_end..]
    }

    /// Served as `axum::serve` serves, a WebSocket over HTTP/1.1 takes its TCP socket back out
    /// of hyper's upgraded stream (so its writes go to the socket itself), and reads first what
    /// the client sent in the same write as its upgrade request.
    #[tokio::test]
    async fn an_http1_websocket_holds_its_tcp_socket_and_reads_what_came_with_the_upgrade() {
        let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel::<Opened>(1);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("its address");
        let server = tokio::spawn(async move { axum::serve(listener, reporting_app(opened_tx)).await });
        let mut client = TcpStream::connect(addr).await.expect("connected");
        let ((holds_tcp, first), got) = upgrade_and_ping(&mut client, &mut opened_rx).await;
        assert!(holds_tcp, "the writer holds the TCP socket's half");
        assert_eq!(first, Some(Message::text("ping")), "the frame sent with the upgrade was read");
        assert_eq!(after_the_head(&got), PONG, "one frame after the response, straight from the socket");
        server.abort();
    }

    /// Over a stream that is not a TCP socket (here an in-memory pipe), the WebSocket reads and
    /// writes through hyper's upgraded stream, which hands over what it read with the request.
    #[tokio::test]
    async fn a_websocket_over_another_stream_goes_through_the_upgraded_stream() {
        use tower::ServiceExt;
        let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel::<Opened>(1);
        let app = reporting_app(opened_tx);
        let (mut client, server_io) = tokio::io::duplex(64 * 1024);
        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        let server = tokio::spawn(async move {
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(server_io), service)
                .await
        });
        let ((holds_tcp, first), got) = upgrade_and_ping(&mut client, &mut opened_rx).await;
        assert!(!holds_tcp, "no TCP socket to hold");
        assert_eq!(first, Some(Message::text("ping")), "the frame sent with the upgrade was read");
        assert_eq!(after_the_head(&got), PONG, "one frame after the response");
        server.abort();
    }

    /// A peer that stops reading fails the write once it has made no progress for the stall
    /// bound, instead of holding the connection's task.
    #[tokio::test(start_paused = true)]
    async fn a_write_that_makes_no_progress_fails_at_the_stall_bound() {
        let (near, _far) = tokio::io::duplex(1024);
        let mut writer = Writer::new(Io::stream(near), Data::Binary, Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        let err = writer.send(Bytes::from(vec![0u8; 4096])).await.expect_err("the peer never reads");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(30), "not given up before the bound (paused clock)");
    }
}
