//! Indexes and queries: a service's index declarations (kept in its settings), and instant
//! queries answered from the node's in-memory copy of an index, caught up with the change log
//! first so a query sees every write acknowledged before it.

use super::*;
use crate::index::{IndexDef, IndexState, lookups};
use crate::log::Event;
use crate::model::IndexChange;
use crate::page::{Cursor, Order, PageRequest};
use std::collections::HashMap;

/// Events read at a time while catching an index up.
const CATCH_UP_BATCH: u32 = 1024;
/// Items read at a time while building an index.
const BUILD_PAGE: u32 = 1000;

/// Whether a store page of `len` rows asked for with [`BUILD_PAGE`] may have more after it.
/// The store returns one row past the limit when there is more (so that callers can tell),
/// so a full page holds `BUILD_PAGE + 1` rows: every row read is used, and the next page
/// starts after the last one.
fn more_after(len: usize) -> bool {
    len >= BUILD_PAGE as usize
}

/// One index as this node holds it: built on first use, one query at a time moving it along.
type Held = Arc<tokio::sync::Mutex<Option<IndexState>>>;

/// The indexes this node holds, by service and name.
#[derive(Default)]
pub(super) struct IndexCache {
    held: std::sync::Mutex<HashMap<(Sid, String), Held>>,
}

/// One item a query found (the item of the native API's query answers).
pub use ferrosync_protocol::query::QueryItemView as QueryItem;

/// A page of a query's results, as of one point of the change log.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub items: Vec<QueryItem>,
    /// Set when more results follow.
    pub next: Option<crate::page::PageToken>,
    /// The change-log seq the results are as of: a live query continues from here.
    pub seq: u64,
}

/// A parsed query, with its error in the words of the field that carried it.
pub fn parse_query(field: &'static str, query: &str) -> Result<ferrosync_query::Expr, CoreError> {
    ferrosync_query::parse(query).map_err(|e| CoreError::InvalidQuery {
        field,
        message: e.message().to_owned(),
        column: e.column(),
        twilio_code: e.twilio_code(),
    })
}

impl Engine {
    /// The indexes a service declares.
    pub async fn indexes(&self, principal: &Principal, service: &str) -> Result<Vec<IndexDef>, CoreError> {
        let svc = self.service(principal, service).await?;
        Ok(svc.settings.indexes)
    }

    pub async fn index(&self, principal: &Principal, service: &str, name: &str) -> Result<IndexDef, CoreError> {
        let svc = self.service(principal, service).await?;
        declared(&svc, name)
    }

    /// Declares an index, or redeclares one of the same name (which this node then rebuilds).
    pub async fn put_index(&self, principal: &Principal, service: &str, def: IndexDef) -> Result<IndexDef, CoreError> {
        def.check()?;
        let svc = self.service(principal, service).await?;
        if svc.settings.indexes.len() >= crate::index::MAX_INDEXES
            && !svc.settings.indexes.iter().any(|d| d.name == def.name)
        {
            return Err(CoreError::invalid(
                "name",
                format!("a service has at most {} indexes", crate::index::MAX_INDEXES),
            ));
        }
        let settings = ServiceSettingsPatch { index: Some(IndexChange::Put(def.clone())), ..Default::default() };
        self.update_service(principal, service, ServicePatch { settings, ..Default::default() }).await?;
        Ok(def)
    }

    pub async fn remove_index(&self, principal: &Principal, service: &str, name: &str) -> Result<(), CoreError> {
        let svc = self.service(principal, service).await?;
        if !svc.settings.indexes.iter().any(|d| d.name == name) {
            return Err(CoreError::not_found(NotFoundKind::Index, name));
        }
        let settings = ServiceSettingsPatch { index: Some(IndexChange::Remove(name.to_owned())), ..Default::default() };
        self.update_service(principal, service, ServicePatch { settings, ..Default::default() }).await?;
        self.indexes.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&(svc.sid, name.to_owned()));
        Ok(())
    }

    /// An instant query: the items of index `name` that `query` matches, in (Map, key) order,
    /// a page at a time; each call sees the data as it is now. An identity sees only the items
    /// of Maps it may read.
    pub async fn query(
        &self,
        principal: &Principal,
        service: &str,
        name: &str,
        query: &str,
        page: PageRequest,
    ) -> Result<QueryResult, CoreError> {
        let expr = parse_query("query", query)?;
        let svc = self.service(principal, service).await?;
        let def = declared(&svc, name)?;
        let slot = {
            let mut held = self.indexes.held.lock().unwrap_or_else(|e| e.into_inner());
            held.entry((svc.sid.clone(), name.to_owned())).or_default().clone()
        };
        let mut guard = slot.lock().await;
        // Redeclared since it was built: built again.
        if guard.as_ref().is_some_and(|s| s.def != def) {
            *guard = None;
        }
        if guard.is_none() {
            *guard = Some(self.build_index(&svc, def).await?);
        }
        let Some(state) = guard.as_mut() else { return Err(CoreError::not_found(NotFoundKind::Index, name)) };
        if !self.catch_up(&svc, state).await? {
            // The log no longer reaches back to where this copy stood.
            *state = self.build_index(&svc, state.def.clone()).await?;
        }
        let seq = state.applied;
        let found = lookups(&expr);
        let mut readable: HashMap<String, bool> = HashMap::new();
        let after = page.after.clone().or(page.from.clone());
        let inclusive = page.after.is_none();
        let mut items = Vec::new();
        let mut more = false;
        let mut rows = state.candidates(&found);
        if page.order == Order::Desc {
            rows.reverse();
        }
        for row in rows {
            let at = cursor(&state.def, &row.map, &row.key);
            if let Some(Cursor::Key(from)) = &after {
                let past = match page.order {
                    Order::Asc => at.as_str() > from.as_str() || (inclusive && at == *from),
                    Order::Desc => at.as_str() < from.as_str() || (inclusive && at == *from),
                };
                if !past {
                    continue;
                }
            }
            if !expr.matches(&row.key, &row.data) {
                continue;
            }
            if !self.may_read(principal, &svc, &row.map, &mut readable).await? {
                continue;
            }
            if items.len() == page.limit as usize {
                more = true;
                break;
            }
            items.push(QueryItem {
                map: row.map.clone(),
                key: row.key.clone(),
                data: row.data.clone(),
                revision: row.revision,
            });
        }
        let next = more
            .then(|| {
                items.last().map(|i| crate::page::PageToken {
                    order: page.order,
                    after: Cursor::Key(cursor(&state.def, &i.map, &i.key)),
                })
            })
            .flatten();
        Ok(QueryResult { items, next, seq })
    }

    /// What a live query watches: the index's declaration, the parsed expression, and for an
    /// identity of a service with ACLs the Maps of the index it may read now (`None`: all of
    /// them, including Maps made later).
    pub async fn live_query_plan(
        &self,
        principal: &Principal,
        service: &str,
        name: &str,
        query: &str,
    ) -> Result<(IndexDef, ferrosync_query::Expr, Option<std::collections::HashSet<Sid>>), CoreError> {
        let expr = parse_query("query", query)?;
        let svc = self.service(principal, service).await?;
        let def = declared(&svc, name)?;
        if principal.is_admin() || !svc.acl_enabled {
            return Ok((def, expr, None));
        }
        let mut readable = std::collections::HashSet::new();
        let mut after = None;
        loop {
            let page = PageRequest { order: Order::Asc, from: None, after: after.take(), limit: BUILD_PAGE };
            let maps = self.store.objects(&svc.sid, ObjectKind::Map, &page).await?;
            for map in &maps {
                if def.source.covers(map.unique_name.as_deref())
                    && self.check(principal, &svc, map, crate::rules::Right::Read).await.is_ok()
                {
                    readable.insert(map.sid.clone());
                }
            }
            match maps.last() {
                Some(l) if more_after(maps.len()) => after = Some(Cursor::Key(l.sid.to_string())),
                _ => break,
            }
        }
        Ok((def, expr, Some(readable)))
    }

    /// Whether `principal` may read the Map `map` (cached per query).
    async fn may_read(
        &self,
        principal: &Principal,
        svc: &Service,
        map: &str,
        cache: &mut HashMap<String, bool>,
    ) -> Result<bool, CoreError> {
        if principal.is_admin() || !svc.acl_enabled {
            return Ok(true);
        }
        if let Some(known) = cache.get(map) {
            return Ok(*known);
        }
        let object = self.find_object(svc, ObjectKind::Map, map).await?;
        let ok = match self.check(principal, svc, &object, crate::rules::Right::Read).await {
            Ok(()) => true,
            Err(CoreError::Forbidden(_) | CoreError::NotAuthorized(_)) => false,
            Err(e) => return Err(e),
        };
        cache.insert(map.to_owned(), ok);
        Ok(ok)
    }

    /// Reads an index's Maps from the store, as of the log's head read first (what commits
    /// during the build is applied again from the log; older revisions are ignored).
    async fn build_index(&self, svc: &Service, def: IndexDef) -> Result<IndexState, CoreError> {
        let head = self
            .store
            .service(&ObjectRef::Sid(svc.sid.clone()))
            .await?
            .map(|s| s.head_seq)
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Service, svc.sid.as_str()))?;
        let mut state = IndexState::new(def, head)?;
        let mut after = None;
        loop {
            let page = PageRequest { order: Order::Asc, from: None, after: after.take(), limit: BUILD_PAGE };
            let maps = self.store.objects(&svc.sid, ObjectKind::Map, &page).await?;
            let last = maps.last().map(|m| Cursor::Key(m.sid.to_string()));
            for map in &maps {
                let Some(name) = map.unique_name.as_deref() else { continue };
                if !state.def.source.covers(Some(name)) {
                    continue;
                }
                state.add_map(&map.sid, name);
                let mut item_after = None;
                loop {
                    let page =
                        PageRequest { order: Order::Asc, from: None, after: item_after.take(), limit: BUILD_PAGE };
                    let items = self.store.items(&map.sid, ObjectKind::Map, &page).await?;
                    for item in &items {
                        if let Some(key) = &item.key {
                            state.put(&map.sid, key, Value::clone(&item.data), item.revision);
                        }
                    }
                    match items.last().and_then(|i| i.key.clone()) {
                        Some(k) if more_after(items.len()) => item_after = Some(Cursor::Key(k)),
                        _ => break,
                    }
                }
            }
            match last {
                Some(l) if more_after(maps.len()) => after = Some(l),
                _ => break,
            }
        }
        // Writes that committed while the Maps were read.
        self.catch_up(svc, &mut state).await?;
        Ok(state)
    }

    /// Applies what the log holds past the index; false when the log no longer reaches back
    /// that far (retention pruned it), so the index must be built again.
    async fn catch_up(&self, svc: &Service, state: &mut IndexState) -> Result<bool, CoreError> {
        loop {
            let events = self.read_events(&svc.sid, state.applied, None, CATCH_UP_BATCH).await?;
            let Some(first) = events.first() else { return Ok(true) };
            if first.seq > state.applied + 1 {
                let pruned = self.store.service(&ObjectRef::Sid(svc.sid.clone())).await?.map_or(0, |s| s.pruned_seq);
                if pruned > state.applied {
                    return Ok(false);
                }
            }
            let full = events.len() == CATCH_UP_BATCH as usize;
            for stored in &events {
                match serde_json::from_str::<Event>(stored.json.get()) {
                    Ok(event) => state.apply(stored.seq, &event),
                    Err(e) => {
                        return Err(CoreError::Store(crate::store::StoreError::Backend(format!(
                            "change-log event {} is unreadable: {e}",
                            stored.seq
                        ))));
                    }
                }
            }
            if !full {
                return Ok(true);
            }
        }
    }
}

/// The index `name` as the service declares it.
fn declared(svc: &Service, name: &str) -> Result<IndexDef, CoreError> {
    svc.settings
        .indexes
        .iter()
        .find(|d| d.name == name)
        .cloned()
        .ok_or_else(|| CoreError::not_found(NotFoundKind::Index, name))
}

/// Where an item sits in results: by key, qualified by its Map in a prefix index.
fn cursor(def: &IndexDef, map: &str, key: &str) -> String {
    if def.source.many() { format!("{map}\u{1f}{key}") } else { key.to_owned() }
}
