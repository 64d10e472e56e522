//! Health, readiness and metrics.

use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the store answers.
async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match state.engine.store().ping().await {
        Ok(()) if !state.shutdown.is_cancelled() => (StatusCode::OK, "ready\n".to_owned()),
        Ok(()) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".to_owned()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {e}\n")),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    state.hub.record_gauges();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
