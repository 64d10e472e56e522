//! Paging: a request for a page and opaque tokens that mark where the next page starts.

use crate::error::CoreError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

pub use ferrosync_protocol::kinds::Order;

/// A position in an ordered listing: after (asc) or before (desc) this key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cursor {
    Index(u64),
    Key(String),
}

/// What a reader asks for: an order, a starting point and a page size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub order: Order,
    /// Start at this key (inclusive) when there is no `after`.
    pub from: Option<Cursor>,
    /// Continue strictly after this key (from a page token).
    pub after: Option<Cursor>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Set when more items may follow.
    pub next: Option<PageToken>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageToken {
    #[serde(rename = "o")]
    pub order: Order,
    #[serde(rename = "a")]
    pub after: Cursor,
}

impl PageToken {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(s: &str) -> Result<Self, CoreError> {
        let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| CoreError::InvalidPageToken)?;
        serde_json::from_slice(&raw).map_err(|_| CoreError::InvalidPageToken)
    }
}

impl PageRequest {
    /// Builds a request from wire parameters, checking the page size against `max`.
    pub fn new(
        order: Option<Order>,
        from: Option<Cursor>,
        page_token: Option<&str>,
        page_size: Option<u32>,
        limits: &crate::Limits,
    ) -> Result<Self, CoreError> {
        let limit = page_size.unwrap_or(limits.default_page_size);
        if limit == 0 || limit > limits.max_page_size {
            return Err(CoreError::invalid(
                "page_size",
                format!("must be between 1 and {}, got {limit}", limits.max_page_size),
            ));
        }
        let (order, after) = match page_token {
            Some(t) => {
                let t = PageToken::decode(t)?;
                (t.order, Some(t.after))
            }
            None => (order.unwrap_or_default(), None),
        };
        Ok(PageRequest { order, from, after, limit })
    }

    /// Assembles a page from `limit + 1` fetched rows, so "more follows" is known exactly.
    pub fn finish<T>(&self, mut rows: Vec<T>, cursor: impl Fn(&T) -> Cursor) -> Page<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next =
            if more { rows.last().map(|last| PageToken { order: self.order, after: cursor(last) }) } else { None };
        Page { items: rows, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_limits_are_checked() {
        let limits = crate::Limits::default();
        let t = PageToken { order: Order::Desc, after: Cursor::Key("k".into()) };
        let req = PageRequest::new(None, None, Some(&t.encode()), Some(10), &limits).expect("valid");
        assert_eq!(req.order, Order::Desc);
        assert_eq!(req.after, Some(Cursor::Key("k".into())));
        assert!(PageRequest::new(None, None, None, Some(0), &limits).is_err());
        assert!(PageRequest::new(None, None, None, Some(1001), &limits).is_err());
        assert!(matches!(PageRequest::new(None, None, Some("nope"), None, &limits), Err(CoreError::InvalidPageToken)));
        let page = req.finish(vec![1u64, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], |n| Cursor::Index(*n));
        assert_eq!(page.items.len(), 10);
        assert_eq!(page.next.map(|t| t.after), Some(Cursor::Index(10)));
    }
}
