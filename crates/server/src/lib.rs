//! Ferrosync's server: the native REST and WebSocket API over the core engine, realtime
//! fan-out, and the operations endpoints. [`run`] takes its listener and a shutdown future so
//! tests and the binary start it the same way.

pub mod api;
pub mod background;
pub mod backup;
pub mod bootstrap;
pub mod cognito;
pub mod console;
pub mod logfeed;
pub mod observe;
pub mod outbound;
pub mod proxy_relay;
pub mod push;
pub mod realtime;
pub mod state;
pub mod transfer;
pub mod webhooks;

pub use bootstrap::{Credentials, ServerConfig, StoreLocation, open_engine, open_store};
pub use state::AppState;

use std::future::Future;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

/// Connections the kernel may hold for the server before it accepts them, unless configured
/// (`listen_backlog`; the kernel caps it at `net.core.somaxconn`). Tokio's default of 1,024
/// overflowed when ten thousand clients reconnected at once, and each connection the kernel
/// dropped waited out its one-second SYN retry.
pub const DEFAULT_LISTEN_BACKLOG: u32 = 4096;

/// Listens on the first address `addr` resolves to that can be bound, with [`DEFAULT_LISTEN_BACKLOG`].
pub async fn listen(addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<TcpListener> {
    listen_with_backlog(addr, DEFAULT_LISTEN_BACKLOG).await
}

/// As [`listen`], holding up to `backlog` connections the server has not accepted yet.
pub async fn listen_with_backlog(addr: impl tokio::net::ToSocketAddrs, backlog: u32) -> std::io::Result<TcpListener> {
    let mut failed = None;
    for address in tokio::net::lookup_host(addr).await? {
        let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        // As std's bind does: a restarted server takes its port back at once.
        socket.set_reuseaddr(true)?;
        match socket.bind(address) {
            Ok(()) => return socket.listen(backlog),
            Err(e) => failed = Some(e),
        }
    }
    Err(failed.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the address names no host")))
}

/// The local socket a server serves beside its TCP listener: `ferrosync.sock` in the data
/// directory, readable and writable by its owner only. The file is removed when this is dropped.
pub struct LocalSocket {
    listener: tokio::net::UnixListener,
    file: SocketFile,
    data_dir: std::path::PathBuf,
}

/// Removes the socket's file when the socket closes.
struct SocketFile(std::path::PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl LocalSocket {
    /// Binds the local socket of `data_dir`. Call it once the store is open: the store's hold
    /// on the data file says no other server uses this directory, so a socket file (or a
    /// backup's staging file) left there by a server that was killed is stale and replaced.
    pub fn bind(data_dir: &std::path::Path) -> std::io::Result<LocalSocket> {
        backup::remove_stale_staging(data_dir);
        let path = data_dir.join(bootstrap::LOCAL_SOCKET_FILE);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = tokio::net::UnixListener::bind(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(LocalSocket { listener, file: SocketFile(path), data_dir: data_dir.to_owned() })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.file.0
    }
}

/// Serves `state` on `listener` until `shutdown` resolves, then drains connections: WebSockets
/// are closed with "going away" and long-polls return early.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with_local(listener, None, state, shutdown).await
}

/// As [`run`], and serves the local socket too when there is one: the same routes, and those
/// of [`api::local`].
pub async fn run_with_local(
    listener: TcpListener,
    local: Option<LocalSocket>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cancel = state.shutdown.clone();
    let background = background::spawn(state.clone());
    let app = api::router(state.clone());
    let graceful = {
        let cancel = cancel.clone();
        async move {
            tokio::select! {
                () = shutdown => {}
                () = cancel.cancelled() => {}
            }
            cancel.cancel();
        }
    };
    // Small frames must leave at once: Nagle's algorithm would hold them behind unacknowledged
    // data for tens of milliseconds.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let local = local.map(|LocalSocket { listener, file, data_dir }| {
        let app = api::local_router(state.clone(), data_dir);
        let stop = cancel.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app.into_make_service())
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, path = %file.0.display(), "the local socket stopped");
            }
            drop(file);
        })
    });
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(graceful)
        .await;
    cancel.cancel();
    if let Some(local) = local {
        let _ = local.await;
    }
    background.close();
    background.wait().await;
    result
}

/// A server started in the background on 127.0.0.1, for tests and `ferrosync bench`.
pub struct RunningServer {
    pub addr: std::net::SocketAddr,
    pub state: Arc<AppState>,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    pub async fn start(state: Arc<AppState>) -> std::io::Result<Self> {
        Self::start_at(state, "127.0.0.1:0".parse().map_err(std::io::Error::other)?).await
    }

    /// Starts on `addr`: a restarted server takes its predecessor's port, so its clients
    /// reconnect to the address they know.
    pub async fn start_at(state: Arc<AppState>, addr: std::net::SocketAddr) -> std::io::Result<Self> {
        let listener = listen(addr).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let handle = tokio::spawn(run(listener, state.clone(), async move { signal.cancelled().await }));
        Ok(RunningServer { addr, state, stop, handle })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(self) -> std::io::Result<()> {
        self.stop.cancel();
        self.handle.await.map_err(std::io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// More connections than tokio's default backlog (1,024) complete their handshake while the
    /// server accepts none: a burst of reconnects waits in the queue instead of having its
    /// SYNs dropped.
    #[tokio::test]
    async fn the_listener_queues_a_burst_larger_than_tokios_default_backlog() {
        const BURST: usize = 1_200;
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if somaxconn < BURST {
            eprintln!("SKIPPED: net.core.somaxconn is {somaxconn}, below the {BURST} connections this test queues");
            return;
        }
        let _ = rlimit::increase_nofile_limit(BURST as u64 * 2 + 256);
        let listener = listen("127.0.0.1:0").await.expect("listens");
        let addr = listener.local_addr().expect("address");
        let connects =
            (0..BURST).map(|_| tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr)));
        let results = futures_util::future::join_all(connects).await;
        let connected = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(connected, BURST, "connections completed with none accepted");
        drop(listener);
    }

    /// A configured backlog is the one the kernel keeps: with room for four, a burst of
    /// sixty-four mostly waits on its SYN retries (a second away) while nothing is accepted.
    #[tokio::test]
    async fn a_configured_backlog_bounds_the_connections_queued() {
        const BURST: usize = 64;
        let listener = listen_with_backlog("127.0.0.1:0", 4).await.expect("listens");
        let addr = listener.local_addr().expect("address");
        let connects =
            (0..BURST).map(|_| tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(addr)));
        let results = futures_util::future::join_all(connects).await;
        let connected = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert!((1..=8).contains(&connected), "{connected} of {BURST} connections completed with room for 4 queued");
        drop(listener);
    }
}
