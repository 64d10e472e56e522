//! What lists and maps share: items read, written and listed, online or offline.

use super::*;

/// A listing of a list's or map's items: set its order and start, then read it with
/// [`Pager`]'s methods.
///
/// ```no_run
/// # async fn demo(map: ferrosync_client::SyncMap) -> ferrosync_client::Result<()> {
/// use ferrosync_client::Order;
/// let page = map.items().order(Order::Desc).from("m").page(None, Some(100)).await?;
/// if let Some(token) = page.next_page_token.as_deref() {
///     let next = map.items().order(Order::Desc).from("m").page(Some(token), Some(100)).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ItemsQuery {
    pub(super) client: Client,
    pub(super) path: String,
    pub(super) kind: ObjectKind,
    pub(super) sid: String,
    pub(super) order: Order,
    pub(super) from: Option<ItemKey>,
}

impl ItemsQuery {
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Start at this index or key (inclusive).
    pub fn from(mut self, from: impl Into<ItemKey>) -> Self {
        self.from = Some(from.into());
        self
    }

    fn pager(&self) -> Pager<Item> {
        let q = self.clone();
        Pager::new(move |token, url, size| {
            let q = q.clone();
            Box::pin(async move {
                let rest = &q.client.shared.rest;
                let first = token.is_none() && url.is_none();
                let url = match url {
                    Some(u) => u,
                    None => {
                        let mut params = form_params(q.order, q.from.as_ref(), size, token.as_deref());
                        params.insert(0, '?');
                        format!("{}{params}", rest.url(&q.path))
                    }
                };
                let cache = q.client.shared.cache.as_deref();
                let view: PageView<ItemView> = match rest.send_url::<(), _>(Method::GET, &url, None, None).await {
                    Ok(view) => view,
                    // Offline: the whole cached listing as one page.
                    Err(e) if e.is_unreachable() && first && cache.is_some() => {
                        let Some(cache) = cache else { return Err(e) };
                        let items = cache.items(rest.service(), q.kind, &q.sid, q.order, q.from.as_ref())?;
                        return Ok(Page { items, next_page_token: None, next_page_url: None });
                    }
                    Err(e) => return Err(e),
                };
                let items: Vec<Item> = view.items.into_iter().map(Item::from).collect();
                if let Some(cache) = cache {
                    for item in &items {
                        cache.put_item(rest.service(), &q.sid, item)?;
                    }
                }
                Ok(Page { items, next_page_token: view.meta.next_page_token, next_page_url: view.meta.next_page_url })
            })
        })
    }

    /// See [`Pager::list`].
    pub async fn list(&self, limit: Option<usize>, page_size: Option<u32>) -> Result<Vec<Item>> {
        self.pager().list(limit, page_size).await
    }

    /// See [`Pager::stream`].
    pub fn stream(
        &self,
        limit: Option<usize>,
        page_size: Option<u32>,
    ) -> impl Stream<Item = Result<Item>> + Send + use<> {
        self.pager().stream(limit, page_size)
    }

    /// See [`Pager::page`].
    pub async fn page(&self, token: Option<&str>, page_size: Option<u32>) -> Result<Page<Item>> {
        self.pager().page(token, page_size).await
    }

    /// See [`Pager::get_page`].
    pub async fn get_page(&self, url: &str) -> Result<Page<Item>> {
        self.pager().get_page(url).await
    }
}

fn form_params(order: Order, from: Option<&ItemKey>, size: u32, token: Option<&str>) -> String {
    let mut q: Vec<(&str, String)> = Vec::with_capacity(4);
    q.push(("order", if order == Order::Desc { "desc".into() } else { "asc".into() }));
    q.push(("page_size", size.to_string()));
    if let Some(f) = from {
        q.push(("from", f.to_string()));
    }
    if let Some(t) = token {
        q.push(("page_token", t.to_owned()));
    }
    q.iter().map(|(k, v)| format!("{k}={}", segment(v))).collect::<Vec<_>>().join("&")
}

/// Shared by lists and maps.
impl Handle {
    pub(super) async fn get_item(&self, key: &ItemKey) -> Result<Item> {
        let path = format!("{}/{}", self.items_path(), segment(&key.to_string()));
        match self.client.shared.rest.send::<(), ItemView>(Method::GET, &path, None, None).await {
            Ok(view) => self.seen_item(view),
            Err(e) if e.is_not_found() => {
                if let Some(cache) = self.cache() {
                    cache.drop_item(self.service(), &self.sid, key)?;
                }
                Err(e)
            }
            Err(e) if e.is_unreachable() => match self.cached_item(key)? {
                Some(CachedItem::Present { item, .. }) => Ok(item),
                Some(CachedItem::Removed { .. }) => {
                    Err(ClientError::refused(404, 0, format!("{key}: removed (offline)")))
                }
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// An item as the server has it, remembered by the cache.
    fn seen_item(&self, view: ItemView) -> Result<Item> {
        let item = Item::from(view);
        if let Some(cache) = self.cache() {
            cache.put_item(self.service(), &self.sid, &item)?;
        }
        Ok(item)
    }

    pub(super) async fn set_item_ttl(&self, key: &ItemKey, ttl: u64) -> Result<Item> {
        let path = format!("{}/{}", self.items_path(), segment(&key.to_string()));
        let body = WriteItem { data: None, ttl: Some(ttl), collection_ttl: None };
        let view: ItemView = self.client.shared.rest.send(Method::PUT, &path, Some(&body), None).await?;
        Ok(view.into())
    }

    fn cached_item(&self, key: &ItemKey) -> Result<Option<CachedItem>> {
        match self.cache() {
            Some(cache) => cache.item(self.service(), self.kind, &self.sid, key),
            None => Ok(None),
        }
    }

    /// Keeps a write (`Some`) or removal (`None`) made offline in the cache, to be sent later;
    /// `false` when it cannot be: no cache, or a list item the cache does not hold (only a
    /// map item can be created under its name).
    fn write_offline(&self, key: &ItemKey, data: Option<&Value>) -> Result<bool> {
        let Some(cache) = self.cache() else { return Ok(false) };
        if self.kind == ObjectKind::List && !matches!(self.cached_item(key)?, Some(CachedItem::Present { .. })) {
            return Ok(false);
        }
        cache.write_item(self.service(), &self.sid, key, data)?;
        Ok(true)
    }

    /// What an offline write returns: the item as the cache now holds it.
    fn offline_item(&self, key: &ItemKey, data: Value) -> Result<Item> {
        let revision = match self.cached_item(key)? {
            Some(CachedItem::Present { item, .. }) => item.revision,
            _ => 0,
        };
        Ok(Item { key: key.clone(), data, revision, date_expires: None })
    }

    pub(super) async fn put_item(
        &self,
        key: &ItemKey,
        data: Value,
        ttl: Option<u64>,
        if_match: Option<u64>,
    ) -> Result<Item> {
        let guard = self.client.shared.begin_write(&self.sid);
        let path = format!("{}/{}", self.items_path(), segment(&key.to_string()));
        let body = WriteItem { data: Some(data), ttl, collection_ttl: None };
        let view: ItemView = match self.client.shared.rest.send(Method::PUT, &path, Some(&body), if_match).await {
            Ok(view) => view,
            // A TTL is not kept offline: such a write fails rather than lose it.
            Err(e) if e.is_unreachable() && ttl.is_none() => {
                // A conditional write is checked against the cache's revision, its best knowledge.
                if let (Some(expected), Some(CachedItem::Present { item, .. })) = (if_match, self.cached_item(key)?)
                    && item.revision != expected
                {
                    return Err(ClientError::refused(
                        412,
                        0,
                        format!("{key}: revision is {}, not {expected} (offline)", item.revision),
                    ));
                }
                return self.keep_offline(key, body.data.unwrap_or(Value::Null), e);
            }
            Err(e) => return Err(e),
        };
        self.written(guard, key, view)
    }

    /// A write the server took: marked as this client's, and remembered by the cache.
    fn written(&self, guard: WriteGuard, key: &ItemKey, view: ItemView) -> Result<Item> {
        guard.finish(key.to_string(), Some(view.revision));
        let item = Item::from(view);
        if let Some(cache) = self.cache() {
            cache.put_item(self.service(), &self.sid, &item)?;
        }
        Ok(item)
    }

    /// A write that could not reach the server: kept for later if it can be, else `e`.
    fn keep_offline(&self, key: &ItemKey, data: Value, e: ClientError) -> Result<Item> {
        if self.write_offline(key, Some(&data))? { self.offline_item(key, data) } else { Err(e) }
    }

    pub(super) async fn remove_item(&self, key: &ItemKey, if_match: Option<u64>) -> Result<()> {
        let guard = self.client.shared.begin_write(&self.sid);
        let path = format!("{}/{}", self.items_path(), segment(&key.to_string()));
        match self.client.shared.rest.send_empty(Method::DELETE, &path, if_match).await {
            Ok(()) => {}
            Err(e) if e.is_unreachable() => return if self.write_offline(key, None)? { Ok(()) } else { Err(e) },
            Err(e) => return Err(e),
        }
        guard.finish(key.to_string(), None);
        if let Some(cache) = self.cache() {
            cache.drop_item(self.service(), &self.sid, key)?;
        }
        Ok(())
    }

    /// Read–modify–write of one item with `If-Match`; a missing item is given to `f` as `{}`
    /// and created (maps only).
    pub(super) async fn mutate_item(&self, key: &ItemKey, mut f: impl FnMut(&Value) -> Option<Value>) -> Result<Item> {
        let mut pauses = conflict_backoff();
        // The item as a conflict's answer had it, when it did: no need to read it again.
        let mut known: Option<Item> = None;
        for _ in 0..MUTATE_ATTEMPTS {
            let current = match known.take() {
                Some(item) => Some(item),
                None => match self.get_item(key).await {
                    Ok(item) => Some(item),
                    Err(e) if e.is_not_found() && self.kind == ObjectKind::Map => None,
                    Err(e) => return Err(e),
                },
            };
            let base = current.as_ref().map_or_else(|| Value::Object(Default::default()), |i| i.data.clone());
            let Some(next) = f(&base) else {
                return current.ok_or_else(|| ClientError::refused(404, 0, format!("{key}: no such item")));
            };
            let written = match &current {
                Some(item) => self.put_item(key, next, None, Some(item.revision)).await,
                None => self.create_map_item(key, next, None).await,
            };
            match written {
                Ok(item) => return Ok(item),
                Err(e) if e.is_conflict() || e.status() == Some(409) => {
                    match e.current().and_then(|c| ItemView::deserialize(c).ok()) {
                        Some(now) => known = Some(self.seen_item(now)?),
                        None => tokio::time::sleep(pauses.next().unwrap_or(Duration::from_millis(100))).await,
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::refused(412, 41200, format!("mutate: still conflicting after {MUTATE_ATTEMPTS} attempts")))
    }

    async fn create_map_item(&self, key: &ItemKey, data: Value, ttl: Option<u64>) -> Result<Item> {
        let guard = self.client.shared.begin_write(&self.sid);
        let body = CreateMapItem { key: key.to_string(), data, ttl, collection_ttl: None };
        let view: ItemView =
            match self.client.shared.rest.send(Method::POST, &self.items_path(), Some(&body), None).await {
                Ok(view) => view,
                Err(e) if e.is_unreachable() && ttl.is_none() => return self.keep_offline(key, body.data, e),
                Err(e) => return Err(e),
            };
        self.written(guard, key, view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_parameters_are_escaped() {
        let p = form_params(Order::Desc, Some(&ItemKey::Key("a b&c".into())), 20, Some("t/1"));
        assert_eq!(p, "order=desc&page_size=20&from=a%20b%26c&page_token=t%2F1");
    }
}
