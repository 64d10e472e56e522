//! Paging as the helper libraries do it: `list` (eager), `stream` (lazy), `page` and
//! `get_page`. Page size defaults to 50 and may be at most 1,000.

use crate::error::{ClientError, Result};
use futures_util::Stream;
use futures_util::future::BoxFuture;
use std::sync::Arc;

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 1000;

/// One page of a listing.
///
/// ```no_run
/// # async fn demo(list: ferrosync_client::SyncList) -> ferrosync_client::Result<()> {
/// let mut page = list.items().page(None, Some(200)).await?;
/// loop {
///     for item in &page.items {
///         println!("{}", item.data);
///     }
///     let Some(url) = page.next_page_url.clone() else { break };
///     page = list.items().get_page(&url).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass to [`Pager::page`] for the next page; `None` on the last.
    pub next_page_token: Option<String>,
    /// The next page's full URL, for [`Pager::get_page`]; `None` on the last page and for
    /// query results (which are read with a POST).
    pub next_page_url: Option<String>,
}

type Fetch<T> = Arc<dyn Fn(Option<String>, Option<String>, u32) -> BoxFuture<'static, Result<Page<T>>> + Send + Sync>;

/// A listing read page by page.
///
/// ```no_run
/// # async fn demo(list: ferrosync_client::SyncList) -> ferrosync_client::Result<()> {
/// use futures_util::StreamExt;
/// let first_ten = list.items().list(Some(10), None).await?;
/// let mut all = std::pin::pin!(list.items().stream(None, Some(200)));
/// while let Some(item) = all.next().await {
///     println!("{}", item?.data);
/// }
/// # Ok(()) }
/// ```
pub struct Pager<T> {
    /// (page token, page URL, page size) → page.
    fetch: Fetch<T>,
}

impl<T> Clone for Pager<T> {
    fn clone(&self) -> Self {
        Pager { fetch: self.fetch.clone() }
    }
}

fn page_size(requested: Option<u32>, limit: Option<usize>) -> Result<u32> {
    match requested {
        Some(0) | Some(1001..) => Err(ClientError::InvalidArgument {
            field: "page_size",
            message: format!("must be 1 to {MAX_PAGE_SIZE}, got {}", requested.unwrap_or(0)),
        }),
        Some(n) => Ok(n),
        None => Ok(limit.map_or(DEFAULT_PAGE_SIZE, |l| (l.clamp(1, MAX_PAGE_SIZE as usize)) as u32)),
    }
}

impl<T: Send + 'static> Pager<T> {
    pub(crate) fn new(
        fetch: impl Fn(Option<String>, Option<String>, u32) -> BoxFuture<'static, Result<Page<T>>> + Send + Sync + 'static,
    ) -> Self {
        Pager { fetch: Arc::new(fetch) }
    }

    /// One page: the first, or the one `token` names.
    pub async fn page(&self, token: Option<&str>, page_size: Option<u32>) -> Result<Page<T>> {
        let size = self::page_size(page_size, None)?;
        (self.fetch)(token.map(str::to_owned), None, size).await
    }

    /// The page at `url` (a previous page's `next_page_url`).
    pub async fn get_page(&self, url: &str) -> Result<Page<T>> {
        (self.fetch)(None, Some(url.to_owned()), DEFAULT_PAGE_SIZE).await
    }

    /// Up to `limit` items (all without a limit), read eagerly.
    pub async fn list(&self, limit: Option<usize>, page_size: Option<u32>) -> Result<Vec<T>> {
        let size = self::page_size(page_size, limit)?;
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = (self.fetch)(token.take(), None, size).await?;
            out.extend(page.items);
            if let Some(l) = limit
                && out.len() >= l
            {
                out.truncate(l);
                return Ok(out);
            }
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Up to `limit` items, fetched a page at a time as the stream is read.
    pub fn stream(
        &self,
        limit: Option<usize>,
        page_size: Option<u32>,
    ) -> impl Stream<Item = Result<T>> + Send + use<T> {
        struct State<T> {
            fetch: Fetch<T>,
            buffered: std::collections::VecDeque<T>,
            token: Option<String>,
            done: bool,
            left: Option<usize>,
            size: u32,
            refused: Option<ClientError>,
        }
        let state = State {
            fetch: self.fetch.clone(),
            buffered: Default::default(),
            token: None,
            done: false,
            left: limit,
            size: DEFAULT_PAGE_SIZE,
            refused: None,
        };
        let mut state = state;
        match self::page_size(page_size, limit) {
            Ok(n) => state.size = n,
            Err(e) => state.refused = Some(e),
        }
        futures_util::stream::unfold(state, |mut s| async move {
            if s.left == Some(0) {
                return None;
            }
            loop {
                if let Some(item) = s.buffered.pop_front() {
                    s.left = s.left.map(|l| l - 1);
                    return Some((Ok(item), s));
                }
                if s.done {
                    return None;
                }
                if let Some(e) = s.refused.take() {
                    s.done = true;
                    return Some((Err(e), s));
                }
                match (s.fetch)(s.token.take(), None, s.size).await {
                    Ok(page) => {
                        s.done = page.next_page_token.is_none();
                        s.token = page.next_page_token;
                        s.buffered.extend(page.items);
                    }
                    Err(e) => {
                        s.done = true;
                        return Some((Err(e), s));
                    }
                }
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_follow_the_limit_and_are_bounded() {
        assert_eq!(page_size(None, None).unwrap(), 50);
        assert_eq!(page_size(None, Some(7)).unwrap(), 7);
        assert_eq!(page_size(None, Some(5000)).unwrap(), 1000);
        assert_eq!(page_size(Some(1000), None).unwrap(), 1000);
        for bad in [0, 1001] {
            let e = page_size(Some(bad), None).unwrap_err();
            assert!(e.to_string().starts_with("page_size: must be 1 to 1000"), "{e}");
        }
    }
}
