//! Routes of the native API → handlers.

use super::{admin, changes, error, indexes, items, keys, objects, openapi, permissions, services, streams};
use crate::realtime::connection;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;

/// Request bodies above this are refused before parsing (data itself is limited to 16 KiB).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The whole (bounded) body is read before authentication and the other extractors run (see
/// [`crate::api::http::read_body_first`]).
async fn read_body_first(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    crate::api::http::read_body_first(req, next, BODY_LIMIT, || {
        error::ApiError::new(
            ferrosync_core::ErrorCode::TooLarge,
            format!("the request body is larger than the {} KiB limit", BODY_LIMIT / 1024),
        )
        .into_response()
    })
    .await
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route("/connect", get(connection::upgrade))
        .route("/keys", post(keys::create).get(keys::list))
        .route("/keys/{sid}", get(keys::fetch).delete(keys::remove))
        .route("/tokens", post(keys::mint))
        .route("/services", post(services::create).get(services::list))
        .route("/services/{service}", get(services::fetch).post(services::update).delete(services::remove))
        .route("/services/{service}/changes", get(changes::poll))
        .route("/services/{service}/indexes", get(indexes::list))
        .route("/services/{service}/indexes/{name}", get(indexes::fetch).put(indexes::put).delete(indexes::remove))
        .route("/services/{service}/indexes/{name}/query", post(indexes::query))
        .route("/services/{service}/{collection}", post(objects::open).get(objects::list))
        .route(
            "/services/{service}/{collection}/{id}",
            get(objects::fetch).put(objects::update).delete(objects::remove),
        )
        .route("/services/{service}/{collection}/{id}/items", post(items::create).get(items::list))
        .route(
            "/services/{service}/{collection}/{id}/items/{item}",
            get(items::fetch).put(items::set).delete(items::remove),
        )
        .route("/services/{service}/streams/{id}/messages", post(streams::publish))
        .route("/services/{service}/{collection}/{id}/permissions", get(permissions::list))
        .route(
            "/services/{service}/{collection}/{id}/permissions/{identity}",
            get(permissions::fetch).put(permissions::set).delete(permissions::remove),
        )
        // Read-only views of the Cognito and Matrix faces' records, for operators.
        .route("/admin/cognito/pools", get(admin::cognito_pools))
        .route("/admin/cognito/pools/{pool}", get(admin::cognito_pool))
        .route("/admin/cognito/pools/{pool}/identities", get(admin::cognito_identities))
        .route("/admin/cognito/pools/{pool}/identities/{identity}/datasets", get(admin::cognito_datasets))
        .route(
            "/admin/cognito/pools/{pool}/identities/{identity}/datasets/{dataset}/records",
            get(admin::cognito_records),
        )
        .route("/admin/matrix/users", get(admin::matrix_users))
        .route("/admin/matrix/rooms", get(admin::matrix_rooms))
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(read_body_first))
}
