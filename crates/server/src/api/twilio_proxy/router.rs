//! Routes of Twilio Proxy v1 → handlers, mounted at `/twilio/proxy/v1`.

use super::{phone_numbers, services};
use crate::api::twilio::error;
use crate::api::twilio::params::{BODY_LIMIT, read_body_first};
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use std::sync::Arc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/Services", get(services::list).post(services::create))
        .route("/Services/{service}", get(services::fetch).post(services::update).delete(services::remove))
        .route("/Services/{service}/PhoneNumbers", get(phone_numbers::list).post(phone_numbers::create))
        .route(
            "/Services/{service}/PhoneNumbers/{number}",
            get(phone_numbers::fetch).post(phone_numbers::update).delete(phone_numbers::remove),
        )
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(read_body_first))
}
