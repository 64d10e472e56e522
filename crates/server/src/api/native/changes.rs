//! `GET /services/{service}/changes`: the change log by long-poll.

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, QueryParams};
use super::types::{ChangesQuery, ChangesView};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use ferrosync_core::ErrorCode;
use ferrosync_core::engine::Since;
use ferrosync_core::sid::Sid;
use std::sync::Arc;
use std::time::Duration;

#[utoipa::path(get, path = "/api/v1/services/{service}/changes", tag = "changes",
    params(("service" = String, Path), ChangesQuery),
    responses((status = 200, body = ChangesView), (status = 410, description = "resync required", body = super::error::ErrorBody)))]
pub async fn poll(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path(service): Path<String>,
    QueryParams(q): QueryParams<ChangesQuery>,
) -> ApiResult<Json<ChangesView>> {
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
            Ok(Json(ChangesView { events: changes.events.into_iter().map(|e| e.json).collect(), next: changes.next }))
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
