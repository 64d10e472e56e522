//! `ferrosync event-format`: how a cluster's shared PostgreSQL store keeps new events.

use anyhow::{Context, bail};
use ferrosync_server::{ServerConfig, StoreLocation};
use ferrosync_store::PgStore;
use ferrosync_store::postgres::{EVENT_FORMAT_REFRESH, EventFormat};
use std::time::Duration;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// Without the head every reader rebuilds: a third less room per small event. Nodes on
    /// versions before this one would serve such events wrongly: switch once every node runs
    /// this version or later.
    Short,
    /// Whole, as every version reads them; events kept short are rewritten whole.
    Whole,
}

/// Prints the format, or sets it. Switching to `whole` waits `settle` for every node's writer
/// to follow, then rewrites the events kept short, so that a node on an older version can join.
pub async fn run(config: &ServerConfig, to: Option<Format>, settle: Duration) -> anyhow::Result<()> {
    let StoreLocation::Postgres(url) = &config.store else {
        return match to {
            None | Some(Format::Short) => {
                println!("short (the embedded store always keeps events without their head)");
                Ok(())
            }
            Some(Format::Whole) => bail!(
                "the embedded store always keeps events without their head and reads both; \
                 the event format is a PostgreSQL cluster's setting (--store postgres://…)"
            ),
        };
    };
    let store = PgStore::connect(url).await.context("connecting to PostgreSQL")?;
    match to {
        None => println!("{}", store.event_format().await?.as_str()),
        Some(Format::Short) => {
            store.set_event_format(EventFormat::Short).await?;
            println!(
                "short: every node keeps new events without their head within {} s",
                EVENT_FORMAT_REFRESH.as_secs()
            );
        }
        Some(Format::Whole) => {
            store.set_event_format(EventFormat::Whole).await?;
            if !settle.is_zero() {
                eprintln!("waiting {} s for every node's writer to keep events whole…", settle.as_secs());
                tokio::time::sleep(settle).await;
            }
            let rewritten = store.rewrite_short_events().await?;
            println!("whole: {rewritten} events kept short were rewritten whole");
        }
    }
    Ok(())
}
