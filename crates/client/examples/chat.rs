//! A terminal chat room on a SyncList: shows the last 20 messages, then every new one as it
//! arrives, and sends each line typed on stdin. Ctrl-C or end of input leaves.
//!
//! ```text
//! export FERROSYNC_TOKEN=$(ferrosync token --service SERVICE --identity alice)
//! cargo run -p ferrosync-client --example chat -- room
//! ```
//!
//! `FERROSYNC_URL` names the server (default `http://127.0.0.1:7700`); the room defaults to
//! `chat`.

use ferrosync_client::{Client, Item, Order, SyncEvent, SyncEventKind};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let room = std::env::args().nth(1).unwrap_or_else(|| "chat".to_owned());
    let url = std::env::var("FERROSYNC_URL").unwrap_or_else(|_| "http://127.0.0.1:7700".to_owned());
    let Ok(token) = std::env::var("FERROSYNC_TOKEN") else {
        eprintln!("FERROSYNC_TOKEN is not set: mint one with `ferrosync token --service SERVICE --identity NAME`");
        std::process::exit(2);
    };

    let client = Client::connect(&url, &token).await?;
    let me = client.identity();
    let list = client.list(&room).await?;

    // Subscribe before reading the history so that nothing posted in between is missed; what
    // both deliver is shown once, by skipping events at or below the last index shown.
    let mut messages = list.subscribe().await?;
    let mut history = list.items().order(Order::Desc).list(Some(20), None).await?;
    history.reverse();
    for item in &history {
        // Listed items carry no `is_local`; the sender's name stands in for it.
        show(item, item.data["from"] == me.as_str());
    }
    let mut last_shown = history.last().map(|item| item.key.clone());
    println!("-- {me} in #{room}; type a message and press Enter --");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // Pinned once, outside the loop, so that a Ctrl-C between two iterations is not lost.
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(text) if text.trim().is_empty() => {}
                // Shown when it comes back as an event; a failed send (say, while the
                // connection is down) is reported and the room stays open.
                Some(text) => {
                    if let Err(e) = list.push(json!({"from": me, "text": text})).await {
                        eprintln!("-- not sent: {e} --");
                    }
                }
                None => break,
            },
            event = messages.recv() => match event {
                Some(SyncEvent { kind: SyncEventKind::ItemAdded { item }, is_local, .. }) => {
                    if last_shown.as_ref().is_none_or(|last| item.key > *last) {
                        show(&item, is_local);
                        last_shown = Some(item.key);
                    }
                }
                Some(SyncEvent { kind: SyncEventKind::Removed { .. }, .. }) => {
                    println!("-- the room was removed --");
                    break;
                }
                Some(_) => {}
                None => break,
            },
            _ = &mut ctrl_c => break,
        }
    }

    client.shutdown().await;
    // tokio reads stdin on a blocking thread that cannot be cancelled: without this, the
    // runtime would wait for one more line before exiting.
    std::process::exit(0);
}

fn show(item: &Item, mine: bool) {
    let from = item.data["from"].as_str().unwrap_or("?");
    let text = item.data["text"].as_str().unwrap_or_default();
    let marker = if mine { " (you)" } else { "" };
    println!("[{}] {from}{marker}: {text}", item.key);
}
