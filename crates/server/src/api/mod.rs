//! The HTTP surface: one module per face, plus the operations endpoints.

pub mod aws;
pub mod cognito_identity;
pub mod cognito_sync;
pub mod http;
pub mod local;
pub mod matrix;
pub mod native;
pub mod ops;
pub mod twilio;
pub mod twilio_proxy;
pub mod twilio_sync;
pub mod twilsock;

use crate::state::AppState;
use axum::Router;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

pub fn router(state: Arc<AppState>) -> Router {
    layered(routes(), state)
}

/// The router of the local socket: every route of [`router`], and the [`local`] ones that act
/// on the data directory.
pub fn local_router(state: Arc<AppState>, data_dir: std::path::PathBuf) -> Router {
    layered(routes().nest("/local/v1", local::router(data_dir)), state)
}

fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .merge(ops::router())
        .merge(cognito_identity::router::router())
        .nest("/api/v1", native::router::router())
        .nest("/twilio/sync/v1", twilio_sync::router::router())
        .nest("/twilio/proxy/v1", twilio_proxy::router::router())
        .merge(twilio_proxy::inbound::router())
        .nest("/twilio/api", twilio::keys::v2010_router().fallback(twilio::error::route_not_found))
        .nest("/twilio/iam", twilio::keys::iam_router().fallback(twilio::error::route_not_found))
        .merge(twilsock::router::router())
        .merge(cognito_sync::router::router())
        .merge(matrix::router())
        .merge(crate::console::router())
}

fn layered(routes: Router<Arc<AppState>>, state: Arc<AppState>) -> Router {
    routes
        .fallback(native::error::route_not_found)
        .layer(axum::middleware::from_fn(crate::observe::track))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::extract::Request| {
            // Debug level: off by default, so a busy server pays nothing for it.
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
        }))
        .layer(SetSensitiveRequestHeadersLayer::new([axum::http::header::AUTHORIZATION]))
        .layer(CatchPanicLayer::custom(native::error::panic_response))
        .with_state(state)
}
