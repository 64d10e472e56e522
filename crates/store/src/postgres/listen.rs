//! The listener: follows other nodes' commits through their `NOTIFY` hints and turns them into
//! [`ChangeHint`]s. After every (re)connection it announces each service's head, covering
//! whatever it missed while away.
//!
//! It waits on its connection and on the store's stop at once, so a store that goes closes the
//! listener's connection at that moment rather than at its next wake-up.

use super::stop::Stop;
use super::{CHANNEL, parse_hint, rows};
use ferrosync_core::store::ChangeHint;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};

/// The first wait before connecting again; it doubles up to [`MAX_BACKOFF`] while connecting
/// fails, and starts over once a connection announced the heads.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Starts the listener's thread; it runs until `stop` is set.
pub(super) fn spawn(
    config: tokio_postgres::Config,
    hints: broadcast::Sender<ChangeHint>,
    stop: Arc<Stop>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("ferrosync-pg-listener".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(error = %e, "the listener cannot start its runtime; other nodes' writes reach readers only when they poll");
                return;
            }
        };
        runtime.block_on(async {
            tokio::select! {
                () = follow(&config, &hints) => {}
                () = stop.stopped() => {}
            }
        });
        // A connection still being made may be resolving its host on a blocking thread: the
        // runtime leaves it rather than wait.
        runtime.shutdown_background();
    })
}

/// Connects, follows, and connects again whenever the connection is lost; never returns.
async fn follow(config: &tokio_postgres::Config, hints: &broadcast::Sender<ChangeHint>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match config.connect(NoTls).await {
            Ok((client, connection)) => match session(client, connection, hints, &mut backoff).await {
                Ok(()) => tracing::warn!("PostgreSQL closed the notification stream; reconnecting"),
                Err(e) => tracing::warn!(error = %e, "lost the PostgreSQL notification stream; reconnecting"),
            },
            Err(e) => tracing::debug!(error = %e, "listener cannot reach PostgreSQL; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: `LISTEN`, announce every service's head, then hand on each notification
/// until the connection ends. `backoff` starts over once the heads are announced.
async fn session(
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    hints: &broadcast::Sender<ChangeHint>,
    backoff: &mut Duration,
) -> Result<(), tokio_postgres::Error> {
    // The connection carries the client's queries too: it is polled here, for both, from the
    // start. A notification that arrives before the heads are announced is handed on at once;
    // the heads read after it are at least as far along.
    let notifications = async {
        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message?
                && let Some(hint) = parse_hint(n.payload())
            {
                let _ = hints.send(hint);
            }
        }
        Ok(())
    };
    let announce = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        let heads = client.query(rows::SERVICE_HEADS, &[]).await?;
        Ok::<_, tokio_postgres::Error>(heads)
    };
    tokio::pin!(notifications);
    let heads = tokio::select! {
        ended = &mut notifications => return ended,
        heads = announce => heads?,
    };
    *backoff = FIRST_BACKOFF;
    for (service, seq) in heads.iter().filter_map(|row| rows::service_head(row).ok()) {
        let _ = hints.send(ChangeHint { service, seq });
    }
    notifications.await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Docs, fresh_postgres_url};
    use ferrosync_core::model::ObjectRef;
    use ferrosync_core::store::Store;

    /// The next hint about `service`, skipping other tests' (the channel is the database's).
    async fn hint_about(hints: &mut broadcast::Receiver<ChangeHint>, service: &ferrosync_core::Sid) -> u64 {
        let wait = async {
            loop {
                match hints.recv().await {
                    Ok(hint) if hint.service == *service => return hint.seq,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => panic!("the hints' sender is gone"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait).await.expect("a hint about the service")
    }

    /// Connections to the test server under `name`, counted from another connection.
    fn backends(url: &str, name: &str) -> i64 {
        let mut client = super::super::parse_url(url).expect("url").connect(postgres::NoTls).expect("connects");
        client
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", &[&name])
            .expect("counts")
            .get(0)
    }

    /// Runs a blocking client's work off the runtime, which that client would otherwise nest.
    async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        tokio::task::spawn_blocking(f).await.expect("a blocking task")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_listener_announces_heads_follows_notifications_and_leaves_at_its_stop() {
        let Some(url) = fresh_postgres_url().await else { return };
        let store = super::super::PgStore::connect(&url).await.expect("connects");
        let docs = Docs::create_service(&store).await;
        let doc = docs.create(&store, "d").await;
        docs.update(&store, &doc, 1).await;
        let service = store.service(&ObjectRef::Sid(docs.svc.clone())).await.expect("reads").expect("a service");
        let head = service.head_seq;
        assert!(head >= 2, "the service's log has its writes: {head}");

        let name = format!("ferrosync-listener-{}", ferrosync_core::auth::random_hex(4));
        let mut config = super::super::parse_config(&url).expect("url");
        config.application_name(&name);
        let (hints, mut received) = broadcast::channel(1024);
        let stop = Arc::new(Stop::default());
        let listener = spawn(config, hints, stop.clone()).expect("a thread");

        assert_eq!(hint_about(&mut received, &docs.svc).await, head, "the head announced on connecting");
        let (notify_url, svc) = (url.clone(), docs.svc.clone());
        blocking(move || {
            let mut client =
                super::super::parse_url(&notify_url).expect("url").connect(postgres::NoTls).expect("connects");
            client.batch_execute(&format!("NOTIFY {CHANNEL}, '{svc}:{}'", head + 40)).expect("notifies");
        })
        .await;
        assert_eq!(hint_about(&mut received, &docs.svc).await, head + 40, "another node's commit, handed on");
        let (count_url, count_name) = (url.clone(), name.clone());
        assert_eq!(blocking(move || backends(&count_url, &count_name)).await, 1, "the listener holds one connection");

        stop.stop();
        blocking(move || listener.join()).await.expect("the listener ended");
        // Its side is closed; the server ends the backend as it reads the close.
        let gone = blocking(move || {
            (0..300).any(|_| {
                let none = backends(&url, &name) == 0;
                if !none {
                    std::thread::sleep(Duration::from_millis(100));
                }
                none
            })
        })
        .await;
        assert!(gone, "the listener's connection closed with it");
    }
}
