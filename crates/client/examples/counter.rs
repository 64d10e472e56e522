//! A shared counter on the Document "counter": prints its value, increments it N times
//! (default 1) without losing concurrent increments, and prints the result. With `--watch`,
//! it then prints every change, whoever made it, until Ctrl-C.
//!
//! ```text
//! export FERROSYNC_TOKEN=$(ferrosync token --service SERVICE --identity alice)
//! cargo run -p ferrosync-client --example counter -- 5 --watch
//! ```
//!
//! `FERROSYNC_URL` names the server (default `http://127.0.0.1:7700`). Run several at once:
//! the final value is the sum of all increments.

use ferrosync_client::{Client, SyncEventKind};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut times, mut watch) = (1u64, false);
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--watch" => watch = true,
            n => {
                let Ok(n) = n.parse() else {
                    eprintln!("usage: counter [N] [--watch]; {n:?} is not a count");
                    std::process::exit(2);
                };
                times = n;
            }
        }
    }
    let url = std::env::var("FERROSYNC_URL").unwrap_or_else(|_| "http://127.0.0.1:7700".to_owned());
    let Ok(token) = std::env::var("FERROSYNC_TOKEN") else {
        eprintln!("FERROSYNC_TOKEN is not set: mint one with `ferrosync token --service SERVICE --identity NAME`");
        std::process::exit(2);
    };

    let client = Client::connect(&url, &token).await?;
    let counter = client.document("counter").await?;
    println!("counter: {}", value(&counter.data()));

    // Subscribed before incrementing, so that our own increments show up too (as local).
    let changes = if watch { Some(counter.subscribe().await?) } else { None };

    let mut data = counter.data();
    for _ in 0..times {
        // `mutate` writes with If-Match and, on a conflict, re-reads and re-applies the
        // closure: increments made elsewhere meanwhile are kept, never overwritten.
        data = counter.mutate(|d| Some(json!({ "value": value(d) + 1 }))).await?;
    }
    println!("counter: {} (after {times} increment(s), revision {})", value(&data), counter.revision());

    if let Some(mut changes) = changes {
        let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
        loop {
            let event = tokio::select! {
                event = changes.recv() => event,
                _ = &mut ctrl_c => break,
            };
            let Some(event) = event else { break };
            match event.kind {
                SyncEventKind::Updated { data, previous, revision } => {
                    let previous = previous.as_ref().map_or("-".to_owned(), |p| value(p).to_string());
                    let who = if event.is_local { "me".to_owned() } else { event.identity };
                    println!("counter: {} (was {previous}, revision {revision}, by {who})", value(&data));
                }
                SyncEventKind::Removed { .. } => {
                    println!("the counter was removed");
                    break;
                }
                _ => {}
            }
        }
    }

    client.shutdown().await;
    Ok(())
}

/// The counter's value; a missing or non-numeric one counts as 0.
fn value(data: &Value) -> i64 {
    data["value"].as_i64().unwrap_or(0)
}
