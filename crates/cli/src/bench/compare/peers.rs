//! The peers `ferrosync bench compare` measures beside Ferrosync, started from their Debian
//! packages' binaries on a free loopback port, each in a scratch directory: NATS with
//! JetStream (its KV buckets: put with expected revision, watch) and Redis (pub/sub).

use super::super::target::{PORT_ATTEMPTS, free_port, wait_answering};
use super::super::{Samples, histogram, pinned_command};
use super::{RunClock, RunCpu, Sample};
use anyhow::{Context, bail};
use futures_util::StreamExt;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A peer server, stopped when dropped.
pub(super) struct PeerServer {
    pub addr: String,
    pub pid: u32,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a peer's binary is, if installed.
pub(super) fn find(program: &str) -> Option<std::path::PathBuf> {
    ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.exists())
}

/// The first line a peer prints of its version (`nats-server --version`, `redis-server -v`).
pub(super) fn version(program: &std::path::Path, flag: &str) -> String {
    std::process::Command::new(program)
        .arg(flag)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().trim().to_owned())
        .unwrap_or_default()
}

/// How a peer shows itself on a new connection, so that another server which took its port
/// is not measured in its place.
#[derive(Debug, Clone, Copy)]
enum Greeting {
    /// A NATS server speaks first: `INFO {...}`.
    Nats,
    /// Redis answers `PING` with `+PONG`.
    Redis,
}

/// Whether the server at `addr` greets as `greeting` says, within two seconds.
async fn speaks(addr: &str, greeting: Greeting) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let expect: &[u8] = match greeting {
            Greeting::Nats => b"INFO ",
            Greeting::Redis => {
                s.write_all(b"PING\r\n").await?;
                b"+PONG"
            }
        };
        let mut seen = vec![0; expect.len()];
        s.read_exact(&mut seen).await?;
        Ok::<_, std::io::Error>(seen == expect)
    };
    matches!(tokio::time::timeout(Duration::from_secs(2), attempt).await, Ok(Ok(true)))
}

/// Starts `binary` (on `cpu`) with the arguments `args` gives for its scratch directory and
/// port, and waits until it listens and greets as `greeting` says; on another port from
/// `ports` if it exited instead (its port taken), up to `PORT_ATTEMPTS` times.
async fn start(
    binary: &std::path::Path,
    cpu: Option<usize>,
    greeting: Greeting,
    mut ports: impl FnMut() -> anyhow::Result<u16>,
    args: impl Fn(&std::path::Path, u16) -> Vec<std::ffi::OsString>,
) -> anyhow::Result<PeerServer> {
    for _ in 0..PORT_ATTEMPTS {
        let dir = tempfile::tempdir()?;
        let port = ports()?;
        let mut child = pinned_command(binary.as_os_str(), cpu)
            .args(args(dir.path(), port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let addr = format!("127.0.0.1:{port}");
        if wait_answering(&mut child, async || speaks(&addr, greeting).await).await? {
            return Ok(PeerServer { addr, pid: child.id(), child, _dir: dir });
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    bail!("{} did not start as itself on {PORT_ATTEMPTS} ports in turn (each taken, or it exited)", binary.display())
}

/// `nats-server -js` with its store in a scratch directory (JetStream's defaults: file
/// storage, flushed to disk every two minutes rather than on each write).
pub(super) async fn start_nats(binary: &std::path::Path, cpu: Option<usize>) -> anyhow::Result<PeerServer> {
    start(binary, cpu, Greeting::Nats, free_port, nats_args).await
}

fn nats_args(dir: &std::path::Path, port: u16) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> =
        ["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"].iter().map(Into::into).collect();
    a.push(dir.into());
    a
}

/// `redis-server` without persistence, room for 20,000 clients.
pub(super) async fn start_redis(binary: &std::path::Path, cpu: Option<usize>) -> anyhow::Result<PeerServer> {
    start(binary, cpu, Greeting::Redis, free_port, redis_args).await
}

fn redis_args(dir: &std::path::Path, port: u16) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = ["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", ""]
        .iter()
        .chain(&["--appendonly", "no", "--maxclients", "20000", "--protected-mode", "yes", "--dir"])
        .map(Into::into)
        .collect();
    a.push(dir.into());
    a
}

/// A KV bucket, made as `create_key_value` makes one: that call reads account fields the
/// server in Debian 12 (2.9) does not send yet, so the bucket's stream is created directly.
async fn kv_bucket(addr: &str) -> anyhow::Result<async_nats::jetstream::kv::Store> {
    use async_nats::jetstream::stream;
    let client = async_nats::connect(addr).await?;
    let js = async_nats::jetstream::new(client);
    js.create_stream(stream::Config {
        name: "KV_bench".into(),
        subjects: vec!["$KV.bench.>".into()],
        max_messages_per_subject: 1,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        storage: stream::StorageType::File,
        num_replicas: 1,
        ..Default::default()
    })
    .await?;
    Ok(js.get_key_value("bench").await?)
}

/// `writers` clients, each updating its own key with the revision it last wrote
/// (`kv.update`, JetStream's expected-last-subject-sequence), for `seconds`: over one
/// connection they all share, or over a connection each.
pub(super) async fn nats_conditional_writes(
    addr: &str,
    writers: usize,
    seconds: u64,
    shared: bool,
) -> anyhow::Result<Sample> {
    let first = kv_bucket(addr).await?;
    let mut handles = Vec::with_capacity(writers);
    for w in 0..writers {
        handles.push(match (shared, w) {
            (true, _) | (false, 0) => first.clone(),
            (false, _) => async_nats::jetstream::new(async_nats::connect(addr).await?).get_key_value("bench").await?,
        });
    }
    let mut tasks = Vec::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    for (w, kv) in handles.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let key = format!("w{w}");
            let mut revision = kv.put(&key, "0".into()).await?;
            let mut hist = histogram();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                revision = kv.update(&key, format!("{{\"n\":{n}}}").into(), revision).await?;
                let _ = hist.record(t0.elapsed().as_micros() as u64);
                n += 1;
            }
            Ok::<_, anyhow::Error>((n, hist))
        }));
    }
    let (mut total, mut hist) = (0, histogram());
    for t in tasks {
        let (n, h) = t.await??;
        total += n;
        hist.add(h)?;
    }
    Ok(Sample { value: total as f64 / started.elapsed().as_secs_f64(), hist })
}

/// Puts paced at `rate`, each carrying its send time, and one watcher of the key: the time
/// from a put's send to the watcher's entry. The watcher is another client, on a connection of
/// its own, as Ferrosync's is: over the writer's connection the server would send the put's
/// acknowledgement and the watcher's entry in one write, to one socket.
pub(super) async fn nats_watch(
    addr: &str,
    pid: Option<u32>,
    messages: usize,
    rate: f64,
) -> anyhow::Result<(Sample, RunCpu)> {
    let kv = kv_bucket(addr).await?;
    let watcher = async_nats::jetstream::new(async_nats::connect(addr).await?).get_key_value("bench").await?;
    let mut watch = watcher.watch("w").await?;
    let epoch = Instant::now();
    let reader = tokio::spawn(async move {
        let mut hist = histogram();
        let mut seen = 0;
        while seen < messages {
            let entry = match tokio::time::timeout(Duration::from_secs(30), watch.next()).await {
                Ok(Some(entry)) => entry?,
                Ok(None) => bail!("the watch ended after {seen} entries"),
                Err(_) => bail!("the watch saw {seen} of {messages} entries in time"),
            };
            let sent: u64 = std::str::from_utf8(&entry.value).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
            let _ = hist.record((epoch.elapsed().as_micros() as u64).saturating_sub(sent).max(1));
            seen += 1;
        }
        Ok::<_, anyhow::Error>(hist)
    });
    // The CPU over the rate's span, as Ferrosync's: the bucket and the watch are set up before.
    let cpu = RunClock::start(pid);
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    for _ in 0..messages {
        tick.tick().await;
        let sent = epoch.elapsed().as_micros() as u64;
        kv.put("w", sent.to_string().into()).await?;
    }
    let hist = reader.await??;
    let cpu = cpu.used();
    Ok((Sample { value: messages as f64 / started.elapsed().as_secs_f64(), hist }, cpu))
}

/// The start of every message a subscriber of channel `bench` receives (RESP2 push).
const MESSAGE: &[u8] = b"*3\r\n$7\r\nmessage\r\n$5\r\nbench\r\n$";

/// One whole message at the start of `buf`: its payload and the bytes it takes.
fn next_message(buf: &[u8]) -> Option<(&[u8], usize)> {
    let rest = buf.strip_prefix(MESSAGE)?;
    let digits = rest.iter().position(|b| *b == b'\r')?;
    let len: usize = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let start = MESSAGE.len() + digits + 2;
    let payload = buf.get(start..start + len)?;
    buf.get(start + len + 1)?;
    Some((payload, start + len + 2))
}

/// A raw connection subscribed to channel `bench`, and what it has read past the confirmation.
pub(super) async fn redis_subscribe(addr: &str) -> anyhow::Result<(tokio::net::TcpStream, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(b"SUBSCRIBE bench\r\n").await?;
    let confirm = b"*3\r\n$9\r\nsubscribe\r\n$5\r\nbench\r\n:1\r\n";
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    while buf.len() < confirm.len() {
        if tcp.read_buf(&mut buf).await? == 0 {
            bail!("Redis closed the connection before confirming the subscription");
        }
    }
    if !buf.starts_with(confirm) {
        bail!("unexpected answer to SUBSCRIBE: {:?}", String::from_utf8_lossy(&buf));
    }
    buf.drain(..confirm.len());
    Ok((tcp, buf))
}

/// A raw NATS connection subscribed to subject `bench`, confirmed by the server's `PONG` (the
/// same kept connection and subscription a NATS client makes, without a client's own
/// buffers on the generator's side).
pub(super) async fn nats_subscribe(addr: &str) -> anyhow::Result<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB bench 1\r\nPING\r\n").await?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    // The server speaks first (INFO), then answers the PING once CONNECT and SUB are done.
    while !buf.windows(6).any(|w| w == b"PONG\r\n") {
        if buf.windows(4).any(|w| w == b"-ERR") {
            bail!("NATS refused the subscription: {:?}", String::from_utf8_lossy(&buf));
        }
        if buf.len() > 64 * 1024 || tcp.read_buf(&mut buf).await? == 0 {
            bail!("NATS did not confirm the subscription: {:?}", String::from_utf8_lossy(&buf));
        }
    }
    Ok(tcp)
}

/// Subscribes a raw connection to `bench` and counts `messages` messages off the socket (as
/// the Ferrosync side counts WebSocket frames: a full client per subscriber would make the
/// generator the bottleneck); `sampled` ones time each delivery.
async fn redis_subscriber(
    addr: &str,
    messages: usize,
    sampled: bool,
    epoch: Instant,
    delivered: &AtomicU64,
    ready: &tokio::sync::Semaphore,
    connecting: tokio::sync::OwnedSemaphorePermit,
) -> anyhow::Result<(Samples, tokio::net::TcpStream)> {
    use tokio::io::AsyncReadExt;
    let (mut tcp, mut buf) = redis_subscribe(addr).await?;
    ready.add_permits(1);
    drop(connecting);
    let mut hist = Samples::default();
    let mut seen = 0;
    loop {
        let mut at = 0;
        while let Some((payload, used)) = next_message(&buf[at..]) {
            seen += 1;
            delivered.fetch_add(1, Ordering::Relaxed);
            if sampled {
                let sent: u64 = std::str::from_utf8(payload).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
                hist.record((epoch.elapsed().as_micros() as u64).saturating_sub(sent));
            }
            at += used;
        }
        buf.drain(..at);
        if seen >= messages {
            return Ok((hist, tcp));
        }
        if tcp.read_buf(&mut buf).await? == 0 {
            bail!("Redis closed the connection after {seen} of {messages} messages");
        }
    }
}

/// `subscribers` connections subscribed to one channel; `messages` PUBLISHes paced at `rate`,
/// each carrying its send time. Every 20th subscriber times its deliveries.
/// Also the server's CPU time (of `pid`) from the first publish to the last delivery.
pub(super) async fn redis_fanout(
    addr: &str,
    pid: Option<u32>,
    subscribers: usize,
    messages: usize,
    rate: f64,
) -> anyhow::Result<(Sample, RunCpu)> {
    let epoch = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    let limit = Arc::new(tokio::sync::Semaphore::new(256));
    let mut readers = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        let (addr, delivered, ready, limit) = (addr.to_owned(), delivered.clone(), ready.clone(), limit.clone());
        readers.push(tokio::spawn(async move {
            let connecting = limit.acquire_owned().await?;
            let (hist, tcp) =
                redis_subscriber(&addr, messages, i % 20 == 0, epoch, &delivered, &ready, connecting).await?;
            // Kept open until every subscriber is done, as the Ferrosync readers are.
            Ok::<_, anyhow::Error>((hist, Instant::now(), tcp))
        }));
    }
    tokio::time::timeout(Duration::from_secs(120), ready.acquire_many(subscribers as u32))
        .await
        .context("Redis subscribers did not all subscribe within 120 s")??
        .forget();
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    // Redis answers a PUBLISH only after writing it to every subscriber, which at 10,000 can take
    // longer than the client's default 500 ms response timeout; the run has its own bound.
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let publisher = client.get_multiplexed_async_connection_with_config(&config).await?;
    let cpu = RunClock::start(pid);
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    // Open loop, as the Ferrosync writer is: Redis answers a PUBLISH only once it has written
    // it to every subscriber, so waiting for each answer would slow the publisher to Redis's
    // pace and keep the backlog (and its latency) out of the measurement.
    let mut publishes = Vec::with_capacity(messages);
    for _ in 0..messages {
        tick.tick().await;
        let sent = epoch.elapsed().as_micros() as u64;
        let mut publisher = publisher.clone();
        publishes.push(tokio::spawn(async move {
            redis::cmd("PUBLISH").arg("bench").arg(sent.to_string()).query_async::<i64>(&mut publisher).await
        }));
    }
    for p in publishes {
        p.await??;
    }
    let (mut hist, mut last, mut finished) = (histogram(), started, Vec::with_capacity(subscribers));
    let wait = async {
        for r in readers {
            let (h, done, tcp) = r.await??;
            h.add_to(&mut hist);
            last = last.max(done);
            finished.push(tcp);
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(300), wait).await.with_context(|| {
        format!(
            "only {} of {} Redis deliveries within 300 s",
            delivered.load(Ordering::Relaxed),
            subscribers * messages
        )
    })??;
    let cpu = cpu.used();
    drop(finished);
    let got = delivered.load(Ordering::Relaxed);
    Ok((Sample { value: got as f64 / last.duration_since(started).as_secs_f64(), hist }, cpu))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server on a loopback port that answers each connection with `answer` (after reading
    /// a line first, if `reads_first`) and closes it; its address.
    async fn foreign(answer: &'static [u8], reads_first: bool) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("its address").to_string();
        let serve = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                if reads_first {
                    let mut line = [0; 64];
                    let _ = s.read(&mut line).await;
                }
                let _ = s.write_all(answer).await;
            }
        });
        (addr, serve)
    }

    #[tokio::test]
    async fn a_peer_is_known_by_its_greeting_and_another_server_is_not() {
        let (nats, _a) = foreign(b"INFO {\"server_id\":\"x\"}\r\n", false).await;
        let (redis, _b) = foreign(b"+PONG\r\n", true).await;
        let (http, _c) = foreign(b"HTTP/1.1 400 Bad Request\r\n\r\n", true).await;
        let (silent, _d) = foreign(b"", false).await;
        assert!(speaks(&nats, Greeting::Nats).await);
        assert!(speaks(&redis, Greeting::Redis).await);
        for (addr, greeting) in [(&nats, Greeting::Redis), (&redis, Greeting::Nats), (&http, Greeting::Nats)] {
            assert!(!speaks(addr, greeting).await, "{addr} taken for {greeting:?}");
        }
        assert!(!speaks(&http, Greeting::Redis).await);
        assert!(!speaks(&silent, Greeting::Nats).await && !speaks(&silent, Greeting::Redis).await);
    }

    #[tokio::test]
    async fn a_peer_whose_port_was_taken_is_started_on_another() {
        // The port taken by a server that is no peer (a Ferrosync node, say); the peer's own
        // bind there fails and it exits.
        let (taken, _server) = foreign(b"HTTP/1.1 400 Bad Request\r\n\r\n", true).await;
        let taken_port: u16 = taken.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
        type Args = fn(&std::path::Path, u16) -> Vec<std::ffi::OsString>;
        let peers: [(&str, Greeting, Args); 2] =
            [("nats-server", Greeting::Nats, nats_args), ("redis-server", Greeting::Redis, redis_args)];
        for (program, greeting, args) in peers {
            let Some(binary) = find(program) else {
                eprintln!("NOTE: {program} is not installed; its start on a taken port is not checked");
                continue;
            };
            let mut asked = 0;
            let ports = || {
                asked += 1;
                if asked == 1 { Ok(taken_port) } else { free_port() }
            };
            let peer = start(&binary, None, greeting, ports, args).await.expect("the peer, on another port");
            assert_ne!(peer.addr, taken, "{program} was taken for the server on its first port");
            assert!(speaks(&peer.addr, greeting).await, "{program} answers on {}", peer.addr);
            assert_eq!(asked, 2, "{program}: one port taken, the next one free");
        }
    }

    #[test]
    fn messages_are_read_whole_or_not_at_all() {
        let two =
            b"*3\r\n$7\r\nmessage\r\n$5\r\nbench\r\n$3\r\n123\r\n*3\r\n$7\r\nmessage\r\n$5\r\nbench\r\n$1\r\n9\r\n";
        let (payload, used) = next_message(two).unwrap_or_default();
        assert_eq!(payload, b"123");
        assert_eq!(next_message(&two[used..]).map(|(p, _)| p), Some(&b"9"[..]));
        for cut in 1..used {
            assert_eq!(next_message(&two[..cut]), None, "cut at {cut}");
        }
    }
}
