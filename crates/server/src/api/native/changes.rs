//! `GET /services/{service}/changes`: the change log by long-poll.

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, QueryParams};
use super::types::{ChangesQuery, ChangesView};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ferrosync_core::ErrorCode;
use ferrosync_core::engine::Changes;
use ferrosync_core::engine::Since;
use ferrosync_core::sid::Sid;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

#[utoipa::path(get, path = "/api/v1/services/{service}/changes", tag = "changes",
    params(("service" = String, Path), ChangesQuery),
    responses((status = 200, body = ChangesView), (status = 410, description = "resync required", body = super::error::ErrorBody)))]
pub async fn poll(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path(service): Path<String>,
    QueryParams(q): QueryParams<ChangesQuery>,
) -> ApiResult<Response> {
    let max = state.engine.limits().max_longpoll_secs;
    let timeout = Duration::from_secs(q.timeout.unwrap_or(0).min(max));
    let object = q
        .object
        .as_deref()
        .map(|o| Sid::parse(o).map_err(|e| ApiError::new(ErrorCode::InvalidSid, format!("object: {e}"))))
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    let _waiting = WaitingGauge::enter();
    let since = match (q.since.as_deref(), q.from_start) {
        (Some(_), Some(true)) => {
            return Err(ApiError::new(ErrorCode::InvalidField, "since and from_start: give one or the other"));
        }
        (Some(t), _) => Since::Token(t),
        (None, Some(true)) => Since::Start,
        (None, _) => Since::Now,
    };
    let wait = state.engine.changes(&p, &service, since, object.as_ref(), limit, timeout);
    tokio::select! {
        result = wait => {
            let changes = result?;
            let body = state.changes_bodies.body(object.as_ref(), changes)?;
            Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
        }
        () = state.shutdown.cancelled() => Err(ApiError::new(ErrorCode::StoreUnavailable, "the server is shutting down; poll again")),
    }
}

/// Counts long-polls in flight (`ferrosync_longpolls_waiting`).
struct WaitingGauge;

impl WaitingGauge {
    fn enter() -> Self {
        metrics::gauge!("ferrosync_longpolls_waiting").increment(1.0);
        WaitingGauge
    }
}

impl Drop for WaitingGauge {
    fn drop(&mut self) {
        metrics::gauge!("ferrosync_longpolls_waiting").decrement(1.0);
    }
}

/// The batch's `next` token (it names the store and the service by SID: a service removed and
/// recreated under the same unique name numbers its events from 1 again), object filter, first
/// and last sequence number.
type BodyKey = (String, Option<Sid>, u64, u64);

/// Serialised change batches, shared: a thousand long-polls woken by one commit receive the
/// same batch, which is serialised once. Two answers with the same service, filter and first
/// and last sequence numbers are byte-identical, because the log never changes under them.
#[derive(Default)]
pub struct ChangesBodies {
    entries: Mutex<HashMap<BodyKey, (Instant, Bytes)>>,
}

impl ChangesBodies {
    const KEEP: Duration = Duration::from_secs(2);
    /// Bodies above this are not kept; with at most 256 kept, the cache stays under 16 MiB.
    const LARGEST: usize = 64 * 1024;

    fn body(&self, object: Option<&Sid>, changes: Changes) -> ApiResult<Bytes> {
        let (Some(first), Some(last)) = (changes.events.first(), changes.events.last()) else {
            return serialise(changes);
        };
        let key = (changes.next.clone(), object.cloned(), first.seq, last.seq);
        if let Some((_, body)) = self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(body.clone());
        }
        let body = serialise(changes)?;
        if body.len() > Self::LARGEST {
            return Ok(body);
        }
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 256 {
            map.retain(|_, (at, _)| at.elapsed() < Self::KEEP);
        }
        map.insert(key, (Instant::now(), body.clone()));
        Ok(body)
    }
}

/// A [`ChangesView`], written with each event's stored JSON spliced in as it is.
fn serialise(changes: Changes) -> ApiResult<Bytes> {
    let mut body = Vec::with_capacity(32 + changes.events.iter().map(|e| e.json.get().len() + 1).sum::<usize>());
    body.extend_from_slice(b"{\"events\":[");
    for (i, event) in changes.events.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(event.json.get().as_bytes());
    }
    body.extend_from_slice(b"],\"next\":");
    serde_json::to_writer(&mut body, &changes.next)
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot serialise changes: {e}")))?;
    body.push(b'}');
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::sid::SidKind;
    use ferrosync_core::store::{EventJson, StoredEvent};
    use serde_json::value::RawValue;

    #[test]
    fn the_body_is_the_changes_view_serialised() {
        let texts = [r#"{"seq":1,"data":{"s":"a\"b"}}"#, r#"{"seq":2,"data":null}"#];
        let object = Sid::new(SidKind::Document);
        for count in 0..=texts.len() {
            let events = texts[..count]
                .iter()
                .enumerate()
                .map(|(i, t)| StoredEvent {
                    seq: i as u64 + 1,
                    object_sid: object.clone(),
                    json: EventJson::stored((*t).into()),
                })
                .collect();
            let next = "token \"quoted\"".to_owned();
            let view = ChangesView {
                events: texts[..count].iter().map(|t| RawValue::from_string((*t).into()).expect("json")).collect(),
                next: next.clone(),
            };
            let body = serialise(Changes { events, next }).expect("serialises");
            assert_eq!(&body[..], &serde_json::to_vec(&view).expect("serialises")[..], "{count} events");
        }
    }
}
