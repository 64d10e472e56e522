//! The web console at `/console`: hand-written HTML, CSS and ES modules from `console/`,
//! embedded in the binary (debug builds read them from disk, so edits show on reload).
//!
//! The console is a single page that talks to the native API with the credentials the user
//! signs in with. Its files live under `/console/assets/`; every other path under `/console/`
//! is a page of it (a deep link), answered with `index.html` for the page's router to draw.
//! Pages are told from files by that prefix, not by a dot in the name, because the names of
//! documents and maps in page paths may contain dots.

use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

#[derive(rust_embed::Embed)]
#[folder = "console/"]
struct Assets;

/// Scripts and styles come only from the console itself: no inline code, no other origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/console", get(index)).route("/console/", get(index)).route("/console/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path.starts_with(ASSETS) {
        // A missing script or stylesheet fails loudly instead of loading the page's HTML as code.
        return serve(&path, &headers);
    }
    serve("index.html", &headers)
}

/// Where the console's files are, below `/console/`.
const ASSETS: &str = "assets/";

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "not found\n").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let mut response = if request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(file.data.into_owned()))
    };
    let headers = response.headers_mut();
    let mime = file.metadata.mimetype();
    let content_type = if mime.starts_with("text/") || mime.ends_with("javascript") || mime.ends_with("json") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    // Asset names carry no content hash, so every use revalidates (cheap: 304 by ETag) and an
    // upgraded server's modules are never mixed with stale cached ones.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_and_its_modules_are_embedded() {
        assert!(Assets::get("index.html").is_some());
        assert!(Assets::get("assets/style.css").is_some());
        assert!(Assets::get("assets/js/app.js").is_some());
    }
}
