//! Media: uploads stored with the rest of the data (bounded by `max_upload_bytes`), served back
//! under `mxc://<server_name>/<media_id>` by the authenticated (`/_matrix/client/v1/media`)
//! and the legacy (`/_matrix/media/v3`) endpoints, with headers that keep a browser from
//! running what it downloads.

use super::auth::Caller;
use super::error::{MatrixError, MatrixResult, from_core};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferrosync_core::error::CoreError;
use ferrosync_core::matrix::MatrixMedia;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Synapse's policy for served media: nothing in it may run, style or frame.
const CSP: &str = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; \
                   style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";

/// Types a browser may show inline; everything else downloads as an attachment.
fn inline(content_type: &str) -> bool {
    let base = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    matches!(base.split('/').next(), Some("image" | "audio" | "video")) && base != "image/svg+xml"
        || base == "text/plain"
}

fn too_large(limit: usize) -> MatrixError {
    MatrixError::new(StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE", format!("Uploads are limited to {limit} bytes"))
}

pub async fn config(State(state): State<Arc<AppState>>, _caller: Caller) -> Json<Value> {
    Json(json!({ "m.upload.size": state.settings.matrix.max_upload_bytes }))
}

pub async fn upload(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> MatrixResult<Json<Value>> {
    let settings = &state.settings.matrix;
    let limit = settings.max_upload_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let content = axum::body::to_bytes(body, limit).await.map_err(|_| too_large(limit))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let media_id = state
        .engine
        .matrix_upload(&caller, content_type, q.get("filename").map(String::as_str), content.to_vec(), limit)
        .await
        .map_err(|e| match e {
            CoreError::TooLarge { .. } => too_large(limit),
            other => from_core(other),
        })?;
    Ok(Json(json!({ "content_uri": format!("mxc://{}/{media_id}", settings.server_name) })))
}

async fn find(state: &AppState, server_name: &str, media_id: &str) -> MatrixResult<MatrixMedia> {
    let not_found = || MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Media not found");
    // Remote media would need federation, which this server does not speak.
    if server_name != state.settings.matrix.server_name {
        return Err(not_found());
    }
    state.engine.matrix_media(media_id).await.map_err(from_core)?.ok_or_else(not_found)
}

fn serve(media: MatrixMedia, filename: Option<&str>) -> Response {
    let content_type = media.content_type.clone().unwrap_or_else(|| "application/octet-stream".into());
    let disposition = if inline(&content_type) { "inline" } else { "attachment" };
    let disposition = match filename.or(media.filename.as_deref()) {
        Some(name) => format!("{disposition}; filename*=utf-8''{}", utf8_percent_encode(name, NON_ALPHANUMERIC)),
        None => disposition.to_owned(),
    };
    let mut response = Response::new(Body::from(media.content));
    let headers = response.headers_mut();
    let value =
        |v: &str| HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, value(&content_type));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    // A media id names one immutable content.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400, immutable"));
    response
}

/// `…/download/{serverName}/{mediaId}` and `…/{mediaId}/{fileName}`, authenticated.
pub async fn download(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    Path(parts): Path<Vec<(String, String)>>,
) -> MatrixResult<Response> {
    download_parts(&state, &parts).await
}

/// The legacy, unauthenticated download.
pub async fn legacy_download(
    State(state): State<Arc<AppState>>,
    Path(parts): Path<Vec<(String, String)>>,
) -> MatrixResult<Response> {
    download_parts(&state, &parts).await
}

async fn download_parts(state: &AppState, parts: &[(String, String)]) -> MatrixResult<Response> {
    let part = |name: &str| parts.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let (server, id) = (part("server_name").unwrap_or_default(), part("media_id").unwrap_or_default());
    let media = find(state, server, id).await?;
    Ok(serve(media, part("file_name").filter(|f| !f.is_empty())))
}

/// Thumbnails: images are served as stored (no resizing); other media have none.
pub async fn thumbnail(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    Path((server, id)): Path<(String, String)>,
) -> MatrixResult<Response> {
    legacy_thumbnail(State(state), Path((server, id))).await
}

pub async fn legacy_thumbnail(
    State(state): State<Arc<AppState>>,
    Path((server, id)): Path<(String, String)>,
) -> MatrixResult<Response> {
    let media = find(&state, &server, &id).await?;
    let is_image = media.content_type.as_deref().is_some_and(|t| t.starts_with("image/") && t != "image/svg+xml");
    if !is_image {
        return Err(MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "No thumbnail for this media"));
    }
    Ok(serve(media, None).into_response())
}
