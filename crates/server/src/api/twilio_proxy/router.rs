//! Routes of Twilio Proxy v1 → handlers, mounted at `/twilio/proxy/v1`.

use super::{interactions, participants, pools, services, sessions};
use crate::api::twilio::error;
use crate::api::twilio::params::{BODY_LIMIT, read_body_first};
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use ferrosync_core::engine::Pool;
use std::sync::Arc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/Services", get(services::list).post(services::create))
        .route("/Services/{service}", get(services::fetch).post(services::update).delete(services::remove))
        .route("/Services/{service}/PhoneNumbers", pools::collection(Pool::PhoneNumbers))
        .route("/Services/{service}/PhoneNumbers/{id}", pools::instance(Pool::PhoneNumbers))
        // Short codes left Twilio's current description but their clients remain.
        .route("/Services/{service}/ShortCodes", pools::collection(Pool::ShortCodes))
        .route("/Services/{service}/ShortCodes/{id}", pools::instance(Pool::ShortCodes))
        .route("/Services/{service}/Sessions", get(sessions::list).post(sessions::create))
        .route(
            "/Services/{service}/Sessions/{session}",
            get(sessions::fetch).post(sessions::update).delete(sessions::remove),
        )
        .route(
            "/Services/{service}/Sessions/{session}/Participants",
            get(participants::list).post(participants::create),
        )
        .route(
            "/Services/{service}/Sessions/{session}/Participants/{participant}",
            get(participants::fetch).delete(participants::remove),
        )
        .route(
            "/Services/{service}/Sessions/{session}/Participants/{participant}/MessageInteractions",
            get(interactions::list_sent).post(interactions::send),
        )
        .route(
            "/Services/{service}/Sessions/{session}/Participants/{participant}/MessageInteractions/{id}",
            get(interactions::fetch_sent),
        )
        .route("/Services/{service}/Sessions/{session}/Interactions", get(interactions::list))
        .route(
            "/Services/{service}/Sessions/{session}/Interactions/{id}",
            get(interactions::fetch).delete(interactions::remove),
        )
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(read_body_first))
}
