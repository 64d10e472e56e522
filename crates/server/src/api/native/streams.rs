//! `/services/{service}/streams/{id}/messages`: publishing.

use super::error::ApiResult;
use super::extract::{Auth, JsonBody, PreferMinimal};
use super::types::{MessagePublished, PublishMessage, Published};
use crate::api::http;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[utoipa::path(post, path = "/api/v1/services/{service}/streams/{id}/messages", tag = "streams", request_body = PublishMessage,
    params(("service" = String, Path), ("id" = String, Path, description = "stream SID or unique name"),
        ("Prefer" = Option<String>, Header, description = "`return=minimal`: answer with the message's SID alone")),
    responses((status = 201, body = MessagePublished, description = "the message; its SID alone under `Prefer: return=minimal`"),
        (status = 413, body = super::error::ErrorBody)))]
pub async fn publish(
    State(state): State<Arc<AppState>>,
    Auth(p): Auth,
    Path((service, id)): Path<(String, String)>,
    PreferMinimal(minimal): PreferMinimal,
    JsonBody(body): JsonBody<PublishMessage>,
) -> ApiResult<Response> {
    let message = state.engine.publish(&p, &service, &id, body.data).await?;
    if minimal {
        let answer = MessagePublished::Minimal(Published { sid: message.sid.to_string() });
        return Ok(http::minimal_applied((StatusCode::CREATED, Json(answer)).into_response()));
    }
    Ok((StatusCode::CREATED, Json(MessagePublished::Message(message.into()))).into_response())
}
