//! `ferrosync tail SERVICE`: a service's change log as it happens, through the Rust SDK's
//! change feed (long-poll), resumable with `--since`.

use crate::data::{Remote, Session, print_line, print_text};
use anyhow::bail;
use clap::Args;
use ferrosync_client::protocol::Event;
use ferrosync_client::protocol::sid::looks_like_sid;
use ferrosync_client::{ChangesFrom, OpenMode, OpenOptions};
use futures_util::StreamExt;
use serde_json::Value;

#[derive(Args)]
pub struct TailCommand {
    /// The service (SID or unique name); with --token, the token's service is used and this
    /// may be left out.
    #[arg(value_name = "SERVICE")]
    pub service_name: Option<String>,
    /// Continue after the change with this token (printed with each change in --json, and
    /// on stderr when the tail stops).
    #[arg(long, value_name = "TOKEN", conflicts_with = "from_start")]
    since: Option<String>,
    /// Start with the oldest change the server still keeps.
    #[arg(long)]
    from_start: bool,
    /// Only this object's changes (its SID, or the unique name of a document, list, map or
    /// stream).
    #[arg(long, value_name = "ID")]
    object: Option<String>,
    /// One JSON object per line (the change-log event as the API sends it).
    #[arg(long)]
    json: bool,
    #[command(flatten, next_help_heading = "Server and token")]
    pub remote: Remote,
}

/// An object's SID from a SID or a unique name (tried as each kind in turn).
async fn object_sid(s: &Session, id: &str) -> anyhow::Result<String> {
    if looks_like_sid(id) {
        return Ok(id.to_owned());
    }
    let existing = || OpenOptions { mode: OpenMode::OpenExisting, ..OpenOptions::default() };
    if let Ok(d) = s.client.open_document(id, existing()).await {
        return Ok(d.sid().to_owned());
    }
    if let Ok(l) = s.client.open_list(id, existing()).await {
        return Ok(l.sid().to_owned());
    }
    if let Ok(m) = s.client.open_map(id, existing()).await {
        return Ok(m.sid().to_owned());
    }
    if let Ok(st) = s.client.open_stream(id, existing()).await {
        return Ok(st.sid().to_owned());
    }
    bail!("not found: no document, list, map or stream is named {id}")
}

/// One change as a line of text: position, time, type, object, item, who, data.
fn line(e: &Event) -> String {
    let object = match &e.unique_name {
        Some(n) => format!("{} ({n})", e.object_sid),
        None => e.object_sid.to_string(),
    };
    let slot = match (e.item_index, &e.item_key, &e.message_sid) {
        (Some(i), _, _) => format!(" [{i}]"),
        (None, Some(k), _) => format!(" [{k}]"),
        (None, None, Some(m)) => format!(" [{m}]"),
        _ => String::new(),
    };
    let kind = serde_json::to_value(e.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let data = e.data.as_deref().map(Value::to_string).unwrap_or_default();
    format!("{:>8}  {}  {kind:<24} {object}{slot}  {}  {data}", e.seq, e.date.to_rfc3339(), e.identity)
}

pub async fn run(s: &Session, cmd: TailCommand) -> anyhow::Result<()> {
    let object = match &cmd.object {
        Some(id) => Some(object_sid(s, id).await?),
        None => None,
    };
    let from = match (cmd.since, cmd.from_start) {
        (Some(t), _) => ChangesFrom::Token(t),
        (None, true) => ChangesFrom::Start,
        (None, false) => ChangesFrom::Now,
    };
    let mut feed = s.client.changes(from, object.as_deref());
    eprintln!("tailing the change log of service {}; Ctrl-C stops", s.client.service_sid());
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(ctrl_c);
    let mut last: Option<String> = None;
    let mut failing = false;
    let stopped = loop {
        tokio::select! {
            () = &mut ctrl_c => break Ok(()),
            next = feed.next() => match next {
                None => break Ok(()),
                Some(Ok(event)) => {
                    if failing {
                        failing = false;
                        eprintln!("reconnected");
                    }
                    let open = if cmd.json {
                        print_line(&serde_json::to_value(&event)?)?
                    } else {
                        print_text(&line(&event))?
                    };
                    last = Some(event.token.clone());
                    if !open {
                        break Ok(());
                    }
                }
                Some(Err(e)) if e.is_transport() => {
                    if !failing {
                        failing = true;
                        eprintln!("cannot reach the server ({e}); retrying");
                    }
                }
                Some(Err(e)) if e.status() == Some(410) => {
                    break Err(anyhow::anyhow!("the change log no longer reaches back to that token: start again with --from-start"))
                }
                Some(Err(e)) => break Err(s.fail(e, "the change log")),
            },
        }
    };
    if let Some(token) = last {
        eprintln!("resume with: --since {token}");
    }
    stopped
}
