//! The hub writing for a sleeping connection, end to end on one engine: what reaches the
//! socket, in what order, and when the turn goes back to the task.

use super::super::hub::Hub;
use super::super::outlet::Io;
use super::super::session::{Subscriptions, head_seq};
use super::super::wire::{Data, Writer};
use bytes::Bytes;
use ferrosync_core::Engine;
use ferrosync_core::auth::Principal;
use ferrosync_core::engine::{ObjectPatch, OpenRequest, ServiceSpec};
use ferrosync_core::model::ObjectKind;
use ferrosync_core::sid::Sid;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

struct Setup {
    engine: Arc<Engine>,
    service: Sid,
    doc: Sid,
    hub: Arc<Hub>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (engine, _, _) = crate::open_engine(&crate::ServerConfig::new(dir.path())).await.expect("engine");
    let service = engine.create_service(&Principal::Root, ServiceSpec::default()).await.expect("service");
    let (doc, _) = engine
        .open(&Principal::Root, service.sid.as_str(), ObjectKind::Document, OpenRequest::default())
        .await
        .expect("document");
    let hub = Hub::new(engine.clone());
    Setup { engine, service: service.sid, doc: doc.sid, hub, _dir: dir }
}

impl Setup {
    /// Writes `n` into the document; its new revision.
    async fn update(&self, n: u64) -> u64 {
        let patch = ObjectPatch { data: Some(json!({ "n": n })), ..ObjectPatch::default() };
        let svc = self.service.as_str();
        let doc = self.doc.as_str();
        self.engine
            .update_object(&Principal::Root, svc, ObjectKind::Document, doc, patch)
            .await
            .expect("update")
            .revision
    }
}

/// What carries a connection's frames to its client.
#[derive(Debug, Clone, Copy)]
enum Transport {
    /// An in-memory pipe holding `capacity` bytes.
    Pipe,
    /// A TCP connection on loopback whose two buffers are asked to hold `capacity` bytes (the
    /// kernel keeps a few kilobytes at least), as a WebSocket over HTTP/1.1 holds its socket.
    Tcp,
}

type Far = Box<dyn AsyncRead + Send + Unpin>;

impl Transport {
    /// The writer's end and the client's.
    async fn connect(self, capacity: usize) -> (Io, Far) {
        match self {
            Transport::Pipe => {
                let (near, far) = tokio::io::duplex(capacity);
                (Io::stream(near), Box::new(far))
            }
            Transport::Tcp => {
                // Set before the connection opens, so the window it advertises is small too;
                // an accepted socket takes its listener's sizes.
                let size = u32::try_from(capacity).expect("a buffer size");
                let listening = tokio::net::TcpSocket::new_v4().expect("a socket");
                listening.set_send_buffer_size(size).expect("send buffer");
                listening.bind("127.0.0.1:0".parse().expect("an address")).expect("bound");
                let listener = listening.listen(1).expect("listening");
                let addr = listener.local_addr().expect("its address");
                let connecting = tokio::net::TcpSocket::new_v4().expect("a socket");
                connecting.set_recv_buffer_size(size).expect("receive buffer");
                let (client, accepted) = tokio::join!(connecting.connect(addr), listener.accept());
                let (client, (server, _)) = (client.expect("connected"), accepted.expect("accepted"));
                let (_, write) = server.into_split();
                (Io::Tcp(write), Box::new(client))
            }
        }
    }
}

/// The next text frame's JSON off the socket, within ten seconds.
async fn next_frame(far: &mut Far) -> Value {
    let read = async {
        let mut head = [0u8; 2];
        far.read_exact(&mut head).await.expect("a frame header");
        assert_eq!(head[0], 0x81, "a final text frame");
        let len = match head[1] {
            126 => {
                let mut ext = [0u8; 2];
                far.read_exact(&mut ext).await.expect("a 16-bit length");
                usize::from(u16::from_be_bytes(ext))
            }
            127 => {
                let mut ext = [0u8; 8];
                far.read_exact(&mut ext).await.expect("a 64-bit length");
                usize::try_from(u64::from_be_bytes(ext)).expect("a length that fits")
            }
            n => usize::from(n),
        };
        let mut payload = vec![0u8; len];
        far.read_exact(&mut payload).await.expect("the payload");
        serde_json::from_slice(&payload).expect("JSON")
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("a frame in time")
}

/// While the task sleeps, the hub writes each event to the socket itself (nothing reaches the
/// task's queue), skipping what the cursor says the client has; once the task holds the
/// socket, the next event goes to its queue instead.
#[tokio::test]
async fn the_hub_writes_for_a_sleeping_connection_until_its_task_holds_the_socket() {
    the_hub_writes_until_the_task_holds_the_socket(Transport::Pipe).await;
}

#[tokio::test]
async fn the_hub_writes_to_a_sleeping_connections_tcp_socket_until_its_task_holds_it() {
    the_hub_writes_until_the_task_holds_the_socket(Transport::Tcp).await;
}

async fn the_hub_writes_until_the_task_holds_the_socket(transport: Transport) {
    let s = setup().await;
    let (near, mut far) = transport.connect(64 * 1024).await;
    let mut writer = Writer::new(near, Data::Text, Duration::from_secs(5));
    let (mut subs, mut rx) = Subscriptions::open(s.hub.clone(), s.service.clone(), 16, Some(writer.outlet()));
    subs.register(&s.doc).await.expect("registered");
    let head = head_seq(&s.engine, &s.service).await.expect("head");
    subs.set_cursor(&s.doc, head);
    writer.rest(|| rx.is_empty());
    let mut revisions = Vec::new();
    for n in 1..=3 {
        revisions.push(s.update(n).await);
    }
    for (n, revision) in (1..=3).zip(&revisions) {
        let frame = next_frame(&mut far).await;
        assert_eq!(frame["type"], "event");
        assert_eq!(frame["event"]["revision"], json!(revision), "event {n} in commit order");
        assert_eq!(frame["event"]["data"], json!({ "n": n }));
    }
    assert!(rx.is_empty(), "nothing was queued for the task");
    let sent: Vec<u64> = subs.cursors().map(|(_, seq)| seq).collect();
    assert!(sent[0] > head, "the hub moved the cursor past what it wrote");

    // A cursor ahead of the next event (as after a catch-up that read it) drops it.
    subs.set_cursor(&s.doc, u64::MAX - 1);
    s.update(4).await;
    subs.set_cursor(&s.doc, sent[0] + 1);
    let revision = s.update(5).await;
    let frame = next_frame(&mut far).await;
    assert_eq!(frame["event"]["revision"], json!(revision), "the event below the cursor was not written");

    assert!(!writer.hold(), "the hub left nothing unwritten");
    let revision = s.update(6).await;
    let queued = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("in time").expect("queued");
    assert!(subs.admit(&queued), "news for the task");
    let event: Value = serde_json::from_str(queued.event.json.get()).expect("event JSON");
    assert_eq!(event["revision"], json!(revision));
    subs.close().await;
}

/// A face with frames of its own (the twilsock face's) rests the same way: the hub writes each
/// event as the face frames it, and skips the echo of a write the connection made itself, which
/// neither the socket nor the task's queue then sees.
#[tokio::test]
async fn the_hub_writes_a_faces_own_frames_and_skips_the_echoes_of_its_writes() {
    let s = setup().await;
    let (near, mut far) = Transport::Pipe.connect(64 * 1024).await;
    let mut writer = Writer::new(near, Data::Text, Duration::from_secs(5));
    let outlet = writer.outlet();
    outlet.render_with(Box::new(|d| {
        let event: Value = serde_json::from_str(d.event.json.get()).expect("event JSON");
        Bytes::from(json!({ "face": "own", "seq": d.seq, "data": event["data"] }).to_string())
    }));
    let (mut subs, rx) = Subscriptions::open(s.hub.clone(), s.service.clone(), 16, Some(outlet.clone()));
    subs.register(&s.doc).await.expect("registered");
    let head = head_seq(&s.engine, &s.service).await.expect("head");
    subs.set_cursor(&s.doc, head);
    // The connection's own write comes next in the service's log.
    outlet.expect_echo(head + 1);
    writer.rest(|| rx.is_empty());
    for n in 1..=3 {
        s.update(n).await;
    }
    for n in 2..=3 {
        let frame = next_frame(&mut far).await;
        assert_eq!(
            frame,
            json!({ "face": "own", "seq": head + n, "data": { "n": n } }),
            "event {n} as the face frames it"
        );
    }
    assert!(rx.is_empty(), "nothing was queued for the task, the echo included");
    assert!(!outlet.take_echo(head + 1), "the echo was taken when it came");
    assert!(!writer.hold(), "the hub left nothing unwritten");
    subs.close().await;
}

/// A socket that cannot take a frame whole hands the turn back: the task is woken through its
/// queue with a delivery its cursor drops, takes what the hub could not write, and writes it;
/// the client gets every frame whole and in order.
#[tokio::test]
async fn a_write_the_socket_cannot_take_whole_goes_back_to_the_task_in_order() {
    // Smaller than one frame: the hub's first write is partial.
    the_turn_goes_back_in_order(Transport::Pipe, 256, 2, 600).await;
}

#[tokio::test]
async fn a_write_the_tcp_socket_cannot_take_whole_goes_back_to_the_task_in_order() {
    // Frames larger than both socket buffers (and the documents' limit near): the hub's first
    // write is partial.
    the_turn_goes_back_in_order(Transport::Tcp, 4096, 8, 16_000).await;
}

async fn the_turn_goes_back_in_order(transport: Transport, capacity: usize, count: u64, pad: usize) {
    let s = setup().await;
    let (near, mut far) = transport.connect(capacity).await;
    let mut writer = Writer::new(near, Data::Text, Duration::from_secs(5));
    let (mut subs, mut rx) = Subscriptions::open(s.hub.clone(), s.service.clone(), 16, Some(writer.outlet()));
    subs.register(&s.doc).await.expect("registered");
    subs.set_cursor(&s.doc, head_seq(&s.engine, &s.service).await.expect("head"));
    writer.rest(|| rx.is_empty());
    let pad = "x".repeat(pad);
    let mut revisions = Vec::new();
    for n in 1..=count {
        let patch = ObjectPatch { data: Some(json!({ "n": n, "pad": pad })), ..ObjectPatch::default() };
        let (svc, doc) = (s.service.as_str(), s.doc.as_str());
        let o = s.engine.update_object(&Principal::Root, svc, ObjectKind::Document, doc, patch).await.expect("update");
        revisions.push(o.revision);
    }
    let mut reader = tokio::spawn(async move {
        let mut frames = Vec::new();
        for _ in 0..count {
            frames.push(next_frame(&mut far).await);
        }
        frames
    });
    // The connection's task, as it runs: woken by its queue, it holds the socket, writes what
    // its cursor admits, and flushes.
    let mut wakes = Vec::new();
    let task = async {
        loop {
            let d = rx.recv().await.expect("a delivery");
            let _ = writer.hold();
            let news = subs.admit(&d);
            wakes.push(news);
            if news {
                writer.feed(d.native_frame()).await.expect("fed");
            }
            writer.flush().await.expect("flushed");
        }
    };
    let frames = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            frames = &mut reader => frames.expect("reader"),
            () = task => unreachable!("the task loops until the reader is done"),
        }
    })
    .await
    .expect("every frame in time");
    assert_eq!(wakes.first(), Some(&false), "woken by a delivery the hub had written in part");
    assert_eq!(frames.len(), revisions.len());
    for (n, (frame, revision)) in (1..=count).zip(frames.iter().zip(&revisions)) {
        assert_eq!(frame["event"]["revision"], json!(revision), "event {n} in order");
        assert_eq!(frame["event"]["data"], json!({ "n": n, "pad": pad }), "event {n} whole");
    }
    subs.close().await;
}

/// Enough sleeping connections for the hub to share a batch's writes among the runtime's
/// threads: every one gets the event, once, and nothing goes through a task's queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_write_out_shared_among_threads_reaches_every_connection() {
    let s = setup().await;
    let head = head_seq(&s.engine, &s.service).await.expect("head");
    let mut connections = Vec::new();
    for _ in 0..600 {
        let (near, far) = Transport::Pipe.connect(4096).await;
        let mut writer = Writer::new(near, Data::Text, Duration::from_secs(5));
        let (mut subs, rx) = Subscriptions::open(s.hub.clone(), s.service.clone(), 4, Some(writer.outlet()));
        subs.register(&s.doc).await.expect("registered");
        subs.set_cursor(&s.doc, head);
        writer.rest(|| rx.is_empty());
        connections.push((writer, subs, rx, far));
    }
    let revision = s.update(1).await;
    for (i, (_, _, rx, far)) in connections.iter_mut().enumerate() {
        let frame = next_frame(far).await;
        assert_eq!(frame["event"]["revision"], json!(revision), "connection {i}");
        assert!(rx.is_empty(), "connection {i}: nothing queued for its task");
    }
    for (writer, subs, _, _) in connections {
        subs.close().await;
        drop(writer);
    }
}
