//! Presence on the SyncMap "presence": each client keeps an item under its identity that
//! expires after 60 s unless refreshed, so a client that vanishes without saying goodbye
//! still leaves. Prints who is online, then joins and leaves as they happen, and the
//! connection's state changes; Ctrl-C leaves cleanly.
//!
//! ```text
//! export FERROSYNC_TOKEN=$(ferrosync token --service SERVICE --identity alice)
//! cargo run -p ferrosync-client --example presence
//! ```
//!
//! `FERROSYNC_URL` names the server (default `http://127.0.0.1:7700`).

use ferrosync_client::{Client, ClientEvent, SyncEventKind};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The item lives this long without a refresh; refreshing at half of it survives one failed
/// refresh (say, during a reconnect).
const TTL_SECS: u64 = 60;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FERROSYNC_URL").unwrap_or_else(|_| "http://127.0.0.1:7700".to_owned());
    let Ok(token) = std::env::var("FERROSYNC_TOKEN") else {
        eprintln!("FERROSYNC_TOKEN is not set: mint one with `ferrosync token --service SERVICE --identity NAME`");
        std::process::exit(2);
    };

    let client = Client::connect(&url, &token).await?;
    let mut events = client.events();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            if let ClientEvent::ConnectionStateChanged(state) = event {
                println!("~ connection: {state:?}");
            }
        }
    });

    let me = client.identity();
    let presence = client.map("presence").await?;
    // Subscribe before listing, so that nobody joining in between goes unnoticed.
    let mut changes = presence.subscribe().await?;
    let online: Vec<String> = presence
        .items()
        .list(None, None)
        .await?
        .iter()
        .filter(|i| is_online(&i.data))
        .map(|i| i.key.to_string())
        .collect();
    println!("online: {}", if online.is_empty() { "nobody".to_owned() } else { online.join(", ") });

    let since = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    // The first tick is immediate: that one announces us.
    let mut refresh = tokio::time::interval(Duration::from_secs(TTL_SECS / 2));
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            _ = refresh.tick() => {
                if let Err(e) = presence.set_with_ttl(&me, json!({"online": true, "since": since}), TTL_SECS).await {
                    eprintln!("! refresh failed: {e}");
                }
            }
            event = changes.recv() => {
                let Some(event) = event else { break };
                let you = if event.is_local { " (you)" } else { "" };
                match event.kind {
                    SyncEventKind::ItemAdded { item } if is_online(&item.data) => println!("+ {}{you} joined", item.key),
                    // A refresh rewrites the same data; only a change of `online` is news.
                    SyncEventKind::ItemUpdated { item, previous } => {
                        match (previous.as_ref().is_some_and(is_online), is_online(&item.data)) {
                            (false, true) => println!("+ {}{you} joined", item.key),
                            (true, false) => println!("- {}{you} left", item.key),
                            _ => {}
                        }
                    }
                    SyncEventKind::ItemRemoved { key, reason, .. } => {
                        let timed_out = if reason.as_deref() == Some("expired") { " (timed out)" } else { "" };
                        println!("- {key}{you} left{timed_out}");
                    }
                    _ => {}
                }
            }
            _ = &mut ctrl_c => break,
        }
    }

    // Leave at once rather than lingering until the TTL runs out.
    if let Err(e) = presence.remove_item(&me).await {
        eprintln!("! could not remove {me}: {e}");
    }
    client.shutdown().await;
    Ok(())
}

fn is_online(data: &Value) -> bool {
    data["online"] == true
}
