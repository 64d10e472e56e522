//! A service's change log, followed by long-poll: every change to every object, in order,
//! each once, resumable from any event's token.

use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::http::segment;
use ferrosync_protocol::Event;
use ferrosync_protocol::rest::ChangesView;
use futures_util::Stream;
use reqwest::Method;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// How long one long-poll waits for news (under the REST timeout's default of 30 s).
const LONG_POLL_SECS: u64 = 20;
/// Events asked for per request.
const BATCH: u32 = 1000;
/// The pause after a failed poll before the next.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Where a change feed starts.
///
/// ```
/// use ferrosync_client::ChangesFrom;
/// let resume = ChangesFrom::Token("<the token of the last event seen>".into());
/// assert_ne!(resume, ChangesFrom::Now);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangesFrom {
    /// Changes made from now on.
    Now,
    /// The oldest change the server still keeps (see its retention), then everything after.
    Start,
    /// Changes after the event with this token.
    Token(String),
}

/// The change feed: a [`Stream`] of events. A poll that fails yields the error and the feed
/// carries on from where it was (a second later); `410` (the token is older than the log's
/// retention) and other refusals end it after the error.
///
/// ```no_run
/// # async fn demo(client: ferrosync_client::Client) -> ferrosync_client::Result<()> {
/// use ferrosync_client::ChangesFrom;
/// use futures_util::StreamExt;
/// let mut feed = client.changes(ChangesFrom::Now, None);
/// while let Some(event) = feed.next().await {
///     let event = event?;
///     println!("{} {:?} on {}", event.seq, event.kind, event.object_sid);
/// }
/// # Ok(()) }
/// ```
pub struct ChangeFeed {
    inner: Pin<Box<dyn Stream<Item = Result<Event>> + Send>>,
}

impl Stream for ChangeFeed {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Event>>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct Cursor {
    client: Client,
    from: ChangesFrom,
    object: Option<String>,
    ready: VecDeque<Event>,
    failed: bool,
    ended: bool,
}

impl Cursor {
    fn url(&self) -> String {
        let mut q = format!("/changes?timeout={LONG_POLL_SECS}&limit={BATCH}");
        match &self.from {
            ChangesFrom::Now => {}
            ChangesFrom::Start => q.push_str("&from_start=true"),
            ChangesFrom::Token(t) => {
                q.push_str("&since=");
                q.push_str(&segment(t));
            }
        }
        if let Some(o) = &self.object {
            q.push_str("&object=");
            q.push_str(&segment(o));
        }
        q
    }

    async fn poll(&mut self) -> Result<()> {
        let view: ChangesView = self.client.shared.rest.send::<(), _>(Method::GET, &self.url(), None, None).await?;
        for raw in &view.events {
            let event: Event = serde_json::from_str(raw.get()).map_err(|e| ClientError::Decode(e.to_string()))?;
            self.ready.push_back(event);
        }
        // Continue after the batch, or from the position "now" named when nothing came.
        self.from = ChangesFrom::Token(view.next);
        Ok(())
    }
}

impl Client {
    /// Follows the service's change log from `from`, optionally one object's (by SID) only.
    /// Needs a token of a service without ACLs (the whole log is not an identity's to read
    /// otherwise).
    pub fn changes(&self, from: ChangesFrom, object: Option<&str>) -> ChangeFeed {
        let cursor = Cursor {
            client: self.clone(),
            from,
            object: object.map(str::to_owned),
            ready: VecDeque::new(),
            failed: false,
            ended: false,
        };
        let stream = futures_util::stream::unfold(cursor, |mut c| async move {
            loop {
                if let Some(e) = c.ready.pop_front() {
                    return Some((Ok(e), c));
                }
                if c.ended {
                    return None;
                }
                if c.failed {
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                match c.poll().await {
                    Ok(()) => c.failed = false,
                    Err(e) => {
                        c.failed = true;
                        c.ended = !e.is_transport();
                        return Some((Err(e), c));
                    }
                }
            }
        });
        ChangeFeed { inner: Box::pin(stream) }
    }
}
