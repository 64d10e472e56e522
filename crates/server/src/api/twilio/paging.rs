//! Twilio's paging: `PageSize`, `Page` and `PageToken` in, a `meta` block out whose URLs are
//! absolute on the server's own origin, since the helper libraries fetch `next_page_url`
//! verbatim.
//!
//! Tokens go both ways: a forward token continues after the last row of a page, a backward
//! token ends before its first row (read in the reverse order, then turned around), so
//! `previous_page_url` works too.

use super::error::{TwilioError, TwilioResult};
use super::params::Params;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferrosync_core::CoreError;
use ferrosync_core::page::{Cursor, Order, Page, PageRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::future::Future;

pub const DEFAULT_PAGE_SIZE: u32 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Direction {
    #[serde(rename = "f")]
    Forward,
    #[serde(rename = "b")]
    Backward,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Token {
    #[serde(rename = "d")]
    direction: Direction,
    #[serde(rename = "o")]
    order: Order,
    #[serde(rename = "a")]
    anchor: Cursor,
}

impl Token {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(s: &str) -> TwilioResult<Self> {
        URL_SAFE_NO_PAD
            .decode(s)
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .ok_or_else(|| TwilioError::invalid("PageToken", "is not a token this server issued"))
    }
}

/// A listing request: where it was addressed, its filters and its paging parameters.
pub struct Listing {
    /// Absolute URL of the listing without a query string.
    base: String,
    /// Filters repeated in every paging URL (`Order`, `From`, `Bounds`).
    filters: Vec<(&'static str, String)>,
    pub page_size: u32,
    page: u64,
    token: Option<Token>,
}

impl Listing {
    /// Reads `PageSize` (1..=`max_page_size`, default 50), `Page` and `PageToken`.
    pub fn new(base: String, q: &Params, max_page_size: u32) -> TwilioResult<Self> {
        let page_size = match q.u64("PageSize")? {
            None => DEFAULT_PAGE_SIZE.min(max_page_size),
            Some(n) if (1..=max_page_size as u64).contains(&n) => n as u32,
            Some(n) => {
                return Err(TwilioError::invalid(
                    "PageSize",
                    format!("must be between 1 and {max_page_size}, got {n}"),
                ));
            }
        };
        let page = q.u64("Page")?.unwrap_or(0);
        let token = q.get("PageToken").map(Token::decode).transpose()?;
        Ok(Listing { base, filters: Vec::new(), page_size, page, token })
    }

    /// Repeats a filter in the paging URLs.
    pub fn filter(&mut self, name: &'static str, value: impl Into<String>) {
        self.filters.push((name, value.into()));
    }

    fn url(&self, page: u64, token: Option<&Token>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.filters {
            q.append_pair(k, v);
        }
        q.append_pair("PageSize", &self.page_size.to_string());
        q.append_pair("Page", &page.to_string());
        if let Some(t) = token {
            q.append_pair("PageToken", &t.encode());
        }
        format!("{}?{}", self.base, q.finish())
    }

    /// Fetches this page with `fetch` (a core listing call taking a page request), in `order`,
    /// starting at `from` (with `from_exclusive`, just after it) when no token says otherwise.
    pub async fn fetch<T, F, Fut>(
        &self,
        order: Order,
        from: Option<Cursor>,
        from_exclusive: bool,
        cursor: impl Fn(&T) -> Cursor,
        fetch: F,
    ) -> TwilioResult<Fetched<T>>
    where
        F: FnOnce(PageRequest) -> Fut,
        Fut: Future<Output = Result<Page<T>, CoreError>>,
    {
        let limit = self.page_size;
        let (order, direction, req) = match &self.token {
            Some(t) if t.direction == Direction::Backward => {
                let req = PageRequest { order: reverse(t.order), from: None, after: Some(t.anchor.clone()), limit };
                (t.order, Direction::Backward, req)
            }
            Some(t) => (
                t.order,
                Direction::Forward,
                PageRequest { order: t.order, from: None, after: Some(t.anchor.clone()), limit },
            ),
            None => {
                let (from, after) = if from_exclusive { (None, from) } else { (from, None) };
                (order, Direction::Forward, PageRequest { order, from, after, limit })
            }
        };
        let page = fetch(req).await?;
        let more_in_direction = page.next.is_some();
        let mut items = page.items;
        let (next, previous) = match direction {
            Direction::Forward => {
                let next = more_in_direction.then(|| items.last().map(&cursor)).flatten();
                let previous = (self.token.is_some() || self.page > 0).then(|| items.first().map(&cursor)).flatten();
                (next, previous)
            }
            Direction::Backward => {
                items.reverse();
                // The page that asked for this one follows it.
                let next = items.last().map(&cursor);
                let previous = more_in_direction.then(|| items.first().map(&cursor)).flatten();
                (next, previous)
            }
        };
        let token = |direction, anchor| Token { direction, order, anchor };
        Ok(Fetched {
            items,
            next: next.map(|a| token(Direction::Forward, a)),
            previous: previous.map(|a| token(Direction::Backward, a)),
        })
    }

    /// The response: the rows under `key` and the `meta` block.
    pub fn respond<T: Serialize>(&self, key: &str, fetched: Fetched<T>) -> Value {
        let page = self.page;
        let meta = serde_json::json!({
            "page": page,
            "page_size": self.page_size,
            "first_page_url": self.url(0, None),
            "previous_page_url": fetched.previous.as_ref().map(|t| self.url(page.saturating_sub(1), Some(t))),
            "next_page_url": fetched.next.as_ref().map(|t| self.url(page + 1, Some(t))),
            "url": self.url(page, self.token.as_ref()),
            "key": key,
        });
        let mut body = Map::new();
        body.insert(key.to_owned(), serde_json::to_value(fetched.items).unwrap_or(Value::Array(Vec::new())));
        body.insert("meta".to_owned(), meta);
        Value::Object(body)
    }
}

pub struct Fetched<T> {
    pub items: Vec<T>,
    next: Option<Token>,
    previous: Option<Token>,
}

impl<T> Fetched<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Fetched<U> {
        Fetched { items: self.items.into_iter().map(f).collect(), next: self.next, previous: self.previous }
    }
}

fn reverse(order: Order) -> Order {
    match order {
        Order::Asc => Order::Desc,
        Order::Desc => Order::Asc,
    }
}

/// Pages through rows already in memory (small listings such as permissions), in key order.
pub fn page_in_memory<T: Clone>(rows: &[T], key: impl Fn(&T) -> Cursor, req: &PageRequest) -> Page<T> {
    let mut sorted: Vec<&T> = rows.iter().collect();
    sorted.sort_by(|a, b| key(a).cmp_key(&key(b)));
    if req.order == Order::Desc {
        sorted.reverse();
    }
    let after = |r: &&T| match (&req.after, &req.from) {
        (Some(a), _) => match req.order {
            Order::Asc => key(r).cmp_key(a).is_gt(),
            Order::Desc => key(r).cmp_key(a).is_lt(),
        },
        (None, Some(f)) => match req.order {
            Order::Asc => key(r).cmp_key(f).is_ge(),
            Order::Desc => key(r).cmp_key(f).is_le(),
        },
        (None, None) => true,
    };
    let rows: Vec<T> = sorted.into_iter().filter(after).take(req.limit as usize + 1).cloned().collect();
    req.finish(rows, key)
}

trait CmpKey {
    fn cmp_key(&self, other: &Cursor) -> std::cmp::Ordering;
}

impl CmpKey for Cursor {
    fn cmp_key(&self, other: &Cursor) -> std::cmp::Ordering {
        match (self, other) {
            (Cursor::Index(a), Cursor::Index(b)) => a.cmp(b),
            (Cursor::Key(a), Cursor::Key(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Cursor::Index(_), Cursor::Key(_)) => std::cmp::Ordering::Less,
            (Cursor::Key(_), Cursor::Index(_)) => std::cmp::Ordering::Greater,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(query: &str) -> Listing {
        Listing::new("http://h/L".into(), &Params::parse(query.as_bytes()), 100).expect("valid")
    }

    async fn run(l: &Listing, rows: &[u64], order: Order, from: Option<u64>, exclusive: bool) -> Fetched<u64> {
        l.fetch(
            order,
            from.map(Cursor::Index),
            exclusive,
            |n| Cursor::Index(*n),
            |req| async move { Ok(page_in_memory(rows, |n| Cursor::Index(*n), &req)) },
        )
        .await
        .expect("fetched")
    }

    fn follow(url: &str) -> Listing {
        let (base, query) = url.split_once('?').expect("query");
        Listing::new(base.into(), &Params::parse(query.as_bytes()), 100).expect("valid")
    }

    #[tokio::test]
    async fn pages_forward_and_back_with_absolute_urls() {
        let rows: Vec<u64> = (1..=7).collect();
        let mut first = listing("PageSize=3");
        first.filter("Order", "asc");
        let p0 = run(&first, &rows, Order::Asc, None, false).await;
        assert_eq!(p0.items, [1, 2, 3]);
        assert!(p0.previous.is_none());
        let body = first.respond("items", p0);
        let next = body["meta"]["next_page_url"].as_str().expect("next").to_owned();
        assert!(next.starts_with("http://h/L?Order=asc&PageSize=3&Page=1&PageToken="), "{next}");
        assert_eq!(body["meta"]["key"], "items");
        assert_eq!(body["meta"]["previous_page_url"], Value::Null);

        let second = follow(&next);
        let p1 = run(&second, &rows, Order::Asc, None, false).await;
        assert_eq!(p1.items, [4, 5, 6]);
        let body = second.respond("items", p1);
        let prev = body["meta"]["previous_page_url"].as_str().expect("previous").to_owned();
        let back = follow(&prev);
        let p0_again = run(&back, &rows, Order::Asc, None, false).await;
        assert_eq!(p0_again.items, [1, 2, 3]);
        assert!(p0_again.previous.is_none(), "nothing before the first page");

        let third = follow(body["meta"]["next_page_url"].as_str().expect("next"));
        let p2 = run(&third, &rows, Order::Asc, None, false).await;
        assert_eq!(p2.items, [7]);
        assert!(p2.next.is_none());
    }

    #[tokio::test]
    async fn from_and_bounds_and_descending_order() {
        let rows: Vec<u64> = (1..=7).collect();
        let l = listing("PageSize=2");
        assert_eq!(run(&l, &rows, Order::Desc, Some(5), false).await.items, [5, 4]);
        assert_eq!(run(&l, &rows, Order::Desc, Some(5), true).await.items, [4, 3]);
        assert_eq!(run(&l, &rows, Order::Asc, Some(5), true).await.items, [6, 7]);
    }

    #[test]
    fn page_size_and_token_are_checked() {
        assert!(Listing::new("u".into(), &Params::parse(b"PageSize=0"), 100).is_err());
        assert!(Listing::new("u".into(), &Params::parse(b"PageSize=101"), 100).is_err());
        assert!(Listing::new("u".into(), &Params::parse(b"PageSize=1000"), 1000).is_ok());
        let e = Listing::new("u".into(), &Params::parse(b"PageToken=garbage"), 100).err().expect("refused");
        assert_eq!((e.status, e.code), (400, 20001));
    }
}
