//! Routes of Twilio Sync v1 → handlers, mounted at `/twilio/sync/v1`.

use super::{items, messages, objects, permissions, services};
use crate::api::twilio::error;
use crate::api::twilio::params::{BODY_LIMIT, read_body_first};
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/Services", get(services::list).post(services::create))
        .route("/Services/{service}", get(services::fetch).post(services::update).delete(services::remove))
        .route("/Services/{service}/Streams/{stream}/Messages", post(messages::create))
        .route("/Services/{service}/{collection}", get(objects::list).post(objects::create))
        .route(
            "/Services/{service}/{collection}/{id}",
            get(objects::fetch).post(objects::update).delete(objects::remove),
        )
        .route("/Services/{service}/{collection}/{id}/Items", get(items::list).post(items::create))
        .route(
            "/Services/{service}/{collection}/{id}/Items/{*item}",
            get(items::fetch).post(items::update).delete(items::remove),
        )
        .route("/Services/{service}/{collection}/{id}/Permissions", get(permissions::list))
        .route(
            "/Services/{service}/{collection}/{id}/Permissions/{*identity}",
            get(permissions::fetch).post(permissions::update).delete(permissions::remove),
        )
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(read_body_first))
}
