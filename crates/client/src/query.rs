//! Instant and live queries over a service's indexes.

use crate::client::Client;
use crate::connection::{Cmd, SUBSCRIBER_QUEUE};
use crate::error::{ClientError, Result};
use crate::http::segment;
use crate::paging::{Page, Pager};
use ferrosync_protocol::Order;
use ferrosync_protocol::query::{QueryBody, QueryView};
use futures_util::Stream;
use reqwest::Method;
use serde_json::Value;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};

pub use ferrosync_protocol::query::QueryItemView as QueryItem;

/// Names a live query within this client (the server's id changes with each connection).
pub(crate) type QueryKey = u64;

static NEXT_QUERY: AtomicU64 = AtomicU64::new(1);

/// What happened to a live query's results.
///
/// ```
/// use ferrosync_client::LiveQueryEvent;
/// let e = LiveQueryEvent::ItemRemoved { map: "MP00000000000000000000000000000001".into(), key: "alice".into() };
/// assert!(matches!(e, LiveQueryEvent::ItemRemoved { ref key, .. } if key == "alice"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum LiveQueryEvent {
    /// The item entered the results, or changed while in them.
    ItemUpdated { map: String, key: String, data: Value, revision: u64 },
    /// The item left the results: changed so it no longer matches, or was removed (with its
    /// Map, or alone).
    ItemRemoved { map: String, key: String },
}

/// A live query: its first results, then every change to them, resumed across reconnects
/// with nothing missed or repeated. Dropping it ends the query.
///
/// ```no_run
/// # async fn demo(client: ferrosync_client::Client) -> ferrosync_client::Result<()> {
/// use futures_util::StreamExt;
/// let mut online = client.live_query("people", r#"data.online == true"#).await?;
/// println!("{} online now", online.items().len());
/// while let Some(change) = online.next().await {
///     println!("{change:?}");
/// }
/// # Ok(()) }
/// ```
pub struct LiveQuery {
    items: Vec<QueryItem>,
    rx: mpsc::Receiver<LiveQueryEvent>,
    key: QueryKey,
    cmds: mpsc::UnboundedSender<Cmd>,
}

impl LiveQuery {
    /// The results when the query started.
    pub fn items(&self) -> &[QueryItem] {
        &self.items
    }

    /// The next change; `None` once the client is shut down.
    pub async fn recv(&mut self) -> Option<LiveQueryEvent> {
        self.rx.recv().await
    }
}

impl Stream for LiveQuery {
    type Item = LiveQueryEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LiveQueryEvent>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for LiveQuery {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::EndQuery { key: self.key });
    }
}

impl Client {
    /// The items of index `index` matching `query` (the Live Query language) now, paged in
    /// (Map, key) order.
    ///
    /// ```no_run
    /// # async fn demo(client: ferrosync_client::Client) -> ferrosync_client::Result<()> {
    /// let eng = client.instant_query("people", r#"data.team == "eng""#, ferrosync_client::Order::Asc).list(None, None).await?;
    /// # Ok(()) }
    /// ```
    pub fn instant_query(&self, index: &str, query: &str, order: Order) -> Pager<QueryItem> {
        let client = self.clone();
        let path = format!("/indexes/{}/query", segment(index));
        let query = query.to_owned();
        Pager::new(move |token, url, size| {
            let client = client.clone();
            let path = path.clone();
            let query = query.clone();
            Box::pin(async move {
                if url.is_some() {
                    return Err(ClientError::InvalidArgument {
                        field: "url",
                        message: "query results are paged by token, not by URL".into(),
                    });
                }
                let body = QueryBody { query, page_size: Some(size), page_token: token, order: Some(order) };
                let view: QueryView = client.shared.rest.send(Method::POST, &path, Some(&body), None).await?;
                Ok(Page { items: view.items, next_page_token: view.next_page_token, next_page_url: None })
            })
        })
    }

    /// Starts a live query (needs the connection up).
    pub async fn live_query(&self, index: &str, query: &str) -> Result<LiveQuery> {
        let key = NEXT_QUERY.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let (done, ready) = oneshot::channel();
        self.shared.send(Cmd::LiveQuery {
            key,
            index: index.to_owned(),
            query: query.to_owned(),
            listener: tx,
            done,
        })?;
        let items = ready.await.map_err(|_| ClientError::Closed)??;
        Ok(LiveQuery { items, rx, key, cmds: self.shared.cmds.clone() })
    }
}
