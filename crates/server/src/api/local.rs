//! Routes served only on the local socket (`ferrosync.sock` in the data directory), for the
//! `ferrosync` commands that used to open the store themselves: the server holds the data
//! file for itself alone, so they ask it instead. Each needs the account's credentials
//! (or an API key), as the native API's own routes do, on top of the socket's file mode.
//!
//! * `GET /local/v1/services/{service}/export`: the service's dump, streamed (see
//!   [`crate::transfer`]); a dump cut short by an error lacks its end line.
//! * `POST /local/v1/import`: a dump as the body, streamed in; answers what it added.
//! * `POST /local/v1/backup`: a snapshot of the store, staged in the data directory and sent
//!   to the caller: lines of JSON, `{"copied": pages, "total": pages}` as the snapshot is
//!   taken, then `{"file": {"bytes": n}}` followed by the file's n bytes (or `{"error": {...}}`).
//!   The staging file is removed once sent, or when the caller goes away.

use super::native::error::{ApiError, ApiResult};
use super::native::extract::Auth;
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
use std::convert::Infallible;
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
    let mut input = tokio::io::BufReader::new(tokio_util::io::StreamReader::new(stream));
    let imported = transfer::import(&state.engine, &p, &mut input).await;
    if imported.is_err() {
        // A dump refused partway is answered once the client has sent the rest: answered first,
        // the connection would close under a client still writing, which would then report a
        // broken pipe instead of the refusal.
        let mut rest = tokio::io::AsyncReadExt::take(&mut input, DRAIN_AFTER_REFUSAL);
        if let Err(e) = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await {
            tracing::debug!(error = %e, "the rest of a refused import was not read");
        }
    }
    Ok(Json(imported?))
}

/// Most bytes of a refused import read (and dropped) before the refusal is sent.
const DRAIN_AFTER_REFUSAL: u64 = 256 * 1024 * 1024;

fn line(value: &serde_json::Value) -> Bytes {
    let mut v = serde_json::to_vec(value).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// Bytes of the staged copy sent at a time.
const BACKUP_CHUNK: usize = 256 * 1024;

async fn backup(Auth(p): Auth, Extension(DataDir(data_dir)): Extension<DataDir>) -> ApiResult<Response> {
    require_admin(&p)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::task::spawn_blocking(move || send_backup(&data_dir, &tx));
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|b| b.map(Ok::<_, Infallible>)));
    Ok(([(header::CONTENT_TYPE, NDJSON)], Body::from_stream(stream)).into_response())
}

/// Stages a snapshot and sends it down `tx`; returns early when the reader has gone, and the
/// staging file goes with the snapshot.
fn send_backup(data_dir: &std::path::Path, tx: &tokio::sync::mpsc::Sender<Bytes>) {
    let progress = |copied: u64, total: u64| {
        // Progress may be dropped when the reader lags; nothing else is.
        let _ = tx.try_send(line(&serde_json::json!({ "copied": copied, "total": total })));
    };
    let staged = match crate::backup::stage(data_dir, progress) {
        Ok(staged) => staged,
        Err(e) => {
            tracing::warn!(error = %e, "a backup over the local socket failed");
            let body = ApiError::new(ErrorCode::Internal, e.to_string()).body();
            let _ = tx.blocking_send(line(&serde_json::json!({ "error": body })));
            return;
        }
    };
    if tx.blocking_send(line(&serde_json::json!({ "file": { "bytes": staged.bytes } }))).is_err() {
        return;
    }
    let mut file = match std::fs::File::open(&staged.path) {
        Ok(f) => f,
        Err(e) => {
            // The reader sees the file end short of its length.
            tracing::warn!(error = %e, path = %staged.path.display(), "cannot read a staged backup");
            return;
        }
    };
    loop {
        let mut chunk = vec![0; BACKUP_CHUNK];
        match std::io::Read::read(&mut file, &mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                chunk.truncate(n);
                if tx.blocking_send(Bytes::from(chunk)).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, path = %staged.path.display(), "cannot read a staged backup");
                return;
            }
        }
    }
}
