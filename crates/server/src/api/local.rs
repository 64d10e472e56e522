//! Routes served only on the local socket (`ferrosync.sock` in the data directory), for the
//! `ferrosync` commands that used to open the store themselves: the server holds the data
//! file for itself alone, so they ask it instead. Each needs the account's credentials
//! (or an API key), as the native API's own routes do, on top of the socket's file mode.
//!
//! * `GET /local/v1/services/{service}/export`: the service's dump, streamed (see
//!   [`crate::transfer`]); a dump cut short by an error lacks its end line.
//! * `POST /local/v1/import`: a dump as the body, streamed in; answers what it added.
//! * `POST /local/v1/backup` `{"to": "/absolute/dir"}`: a backup of the data directory,
//!   answered as lines of JSON: `{"copied": pages, "total": pages}` as it goes, then
//!   `{"done": {...}}` or `{"error": {...}}`.

use super::native::error::{ApiError, ApiResult};
use super::native::extract::{Auth, JsonBody};
use crate::state::AppState;
use crate::transfer::{self, TransferError};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use ferrosync_core::ErrorCode;
use ferrosync_core::auth::Principal;
use futures_util::TryStreamExt;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::BufWriter;

/// The data directory the local routes act on.
#[derive(Clone)]
pub struct DataDir(pub Arc<PathBuf>);

const NDJSON: &str = "application/x-ndjson";
/// Bytes of dump in flight between the export and the socket.
const EXPORT_PIPE: usize = 64 * 1024;

pub fn router(data_dir: PathBuf) -> Router<Arc<AppState>> {
    Router::new()
        .route("/services/{service}/export", get(export))
        .route("/import", post(import))
        .route("/backup", post(backup))
        .layer(Extension(DataDir(Arc::new(data_dir))))
}

fn require_admin(p: &Principal) -> ApiResult<()> {
    if p.is_admin() {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Forbidden, "this needs server credentials (the account or an API key)"))
    }
}

impl From<TransferError> for ApiError {
    fn from(e: TransferError) -> Self {
        match e {
            TransferError::Core { context, source } => {
                let mut api = ApiError::from(source);
                api.message = format!("{context}: {}", api.message);
                api
            }
            TransferError::Io(e) => {
                ApiError::new(ErrorCode::InvalidRequest, format!("the dump could not be read: {e}"))
            }
            other => ApiError::new(ErrorCode::InvalidRequest, other.to_string()),
        }
    }
}

async fn export(State(state): State<Arc<AppState>>, Auth(p): Auth, Path(service): Path<String>) -> ApiResult<Response> {
    require_admin(&p)?;
    // Asked before the stream starts, so an unknown service is a 404 rather than an empty dump.
    state.engine.service(&p, &service).await?;
    let (pipe, out) = tokio::io::duplex(EXPORT_PIPE);
    tokio::spawn(async move {
        let mut pipe = BufWriter::new(pipe);
        if let Err(e) = transfer::export(&state.engine, &p, &service, &mut pipe, &|_| {}).await {
            // The reader sees the dump end without its end line.
            tracing::warn!(error = %e, %service, "an export over the local socket stopped");
        }
    });
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(out));
    Ok(([(header::CONTENT_TYPE, NDJSON)], body).into_response())
}

async fn import(State(state): State<Arc<AppState>>, Auth(p): Auth, body: Body) -> ApiResult<Json<transfer::Imported>> {
    require_admin(&p)?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let input = tokio::io::BufReader::new(tokio_util::io::StreamReader::new(stream));
    Ok(Json(transfer::import(&state.engine, &p, input).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupRequest {
    to: PathBuf,
}

fn backup_error(e: crate::backup::BackupError) -> ApiError {
    use crate::backup::BackupError as E;
    match e {
        E::Relative(_) | E::NotEmpty(_) => ApiError::new(ErrorCode::InvalidField, format!("to: {e}")),
        other => ApiError::new(ErrorCode::Internal, other.to_string()),
    }
}

fn line(value: &serde_json::Value) -> Bytes {
    let mut v = serde_json::to_vec(value).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

async fn backup(
    Auth(p): Auth,
    Extension(DataDir(data_dir)): Extension<DataDir>,
    JsonBody(request): JsonBody<BackupRequest>,
) -> ApiResult<Response> {
    require_admin(&p)?;
    crate::backup::check(&data_dir, &request.to).map_err(backup_error)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::task::spawn_blocking(move || {
        let progress = |copied: u64, total: u64| {
            // Progress may be dropped when the reader lags; the outcome may not.
            let _ = tx.try_send(line(&serde_json::json!({ "copied": copied, "total": total })));
        };
        let outcome = match crate::backup::backup(&data_dir, &request.to, progress) {
            Ok(done) => serde_json::json!({ "done": done }),
            Err(e) => {
                tracing::warn!(error = %e, to = %request.to.display(), "a backup over the local socket failed");
                serde_json::json!({ "error": backup_error(e).body() })
            }
        };
        let _ = tx.blocking_send(line(&outcome));
    });
    let stream = tokio_stream_of(rx);
    Ok(([(header::CONTENT_TYPE, NDJSON)], Body::from_stream(stream)).into_response())
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|b| b.map(Ok)))
}
