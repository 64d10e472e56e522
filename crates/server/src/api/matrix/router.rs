//! The Matrix routes, served under both `/_matrix/client/v3` and the older `r0`.

use super::{account, discovery, error};
use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

fn client_api() -> Router<Arc<AppState>> {
    Router::new()
        .route("/login", get(discovery::login_flows).post(account::login))
        .route("/register", post(account::register))
        .route("/register/available", get(account::available))
        .route("/account/whoami", get(account::whoami))
        .route("/logout", post(account::logout))
        .route("/logout/all", post(account::logout_all))
        .route("/capabilities", get(discovery::capabilities))
        .fallback(error::unrecognized)
        .method_not_allowed_fallback(error::unrecognized)
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/.well-known/matrix/client", get(discovery::well_known))
        .route("/_matrix/client/versions", get(discovery::versions))
        .nest("/_matrix/client/v3", client_api())
        .nest("/_matrix/client/r0", client_api())
        .route("/_matrix/{*rest}", axum::routing::any(error::unrecognized))
}
