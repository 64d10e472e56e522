//! `/services/{service}/streams/{id}/messages`: publishing.

use super::error::ApiResult;
use super::extract::{Auth, JsonBody};
use super::types::{MessageView, PublishMessage};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::sync::Arc;

#[utoipa::path(post, path = "/api/v1/services/{service}/streams/{id}/messages", tag = "streams", request_body = PublishMessage,
    params(("service" = String, Path), ("id" = String, Path, description = "stream SID or unique name")),
    responses((status = 201, body = MessageView), (status = 413, body = super::error::ErrorBody)))]
pub async fn publish(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<PublishMessage>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let message = state.engine.publish(&p, &service, &id, body.data).await?;
    Ok((StatusCode::CREATED, Json(message.into())))
}
