//! `/Services[/{Sid}]`: Proxy services.

use super::{MAX_PAGE_SIZE, Urls, fail};
use crate::api::twilio::auth::BasicAuth;
use crate::api::twilio::error::{TwilioError, TwilioResult};
use crate::api::twilio::paging::Listing;
use crate::api::twilio::params::{Form, Params, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrosync_core::engine::{ProxyService, ProxyServicePatch};
use ferrosync_core::page::{Cursor, Order};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

#[derive(Serialize)]
pub struct ServiceView {
    sid: String,
    unique_name: String,
    account_sid: String,
    chat_instance_sid: Option<String>,
    callback_url: Option<String>,
    default_ttl: u64,
    number_selection_behavior: String,
    geo_match_level: String,
    intercept_callback_url: Option<String>,
    out_of_session_callback_url: Option<String>,
    /// Ferrosync's own: where messages for carrier participants go.
    delivery_callback_url: Option<String>,
    date_created: String,
    date_updated: String,
    url: String,
    links: Value,
}

impl ServiceView {
    fn new(urls: &Urls, s: ProxyService) -> Self {
        let url = format!("{}/Services/{}", urls.base, s.sid);
        ServiceView {
            links: serde_json::json!({
                "sessions": format!("{url}/Sessions"),
                "phone_numbers": format!("{url}/PhoneNumbers"),
            }),
            sid: s.sid.to_string(),
            unique_name: s.unique_name,
            account_sid: urls.account_sid.clone(),
            chat_instance_sid: s.chat_instance_sid,
            callback_url: s.callback_url,
            default_ttl: s.default_ttl,
            number_selection_behavior: s.number_selection_behavior,
            geo_match_level: s.geo_match_level,
            intercept_callback_url: s.intercept_callback_url,
            out_of_session_callback_url: s.out_of_session_callback_url,
            delivery_callback_url: s.delivery_callback_url,
            date_created: s.date_created.to_iso_seconds(),
            date_updated: s.date_updated.to_iso_seconds(),
            url,
        }
    }
}

/// The fields a create or update sends; one sent empty clears an optional one.
fn patch(f: &Params) -> TwilioResult<ProxyServicePatch> {
    let optional = |name: &str| f.sent(name).then(|| f.string(name).filter(|v| !v.is_empty()));
    let unique_name = match f.get("UniqueName") {
        Some("") => return Err(TwilioError::invalid("UniqueName", "may not be empty")),
        other => other.map(str::to_owned),
    };
    Ok(ProxyServicePatch {
        unique_name,
        chat_instance_sid: optional("ChatInstanceSid"),
        callback_url: optional("CallbackUrl"),
        default_ttl: f.u64("DefaultTtl")?,
        number_selection_behavior: f.string("NumberSelectionBehavior"),
        geo_match_level: f.string("GeoMatchLevel"),
        intercept_callback_url: optional("InterceptCallbackUrl"),
        out_of_session_callback_url: optional("OutOfSessionCallbackUrl"),
        delivery_callback_url: optional("DeliveryCallbackUrl"),
    })
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<Response> {
    if f.get("UniqueName").is_none() {
        return Err(TwilioError::invalid("UniqueName", "is required"));
    }
    let made = state.engine.create_proxy_service(&p, patch(&f)?).await.map_err(fail(uri.path()))?;
    Ok((StatusCode::CREATED, Json(ServiceView::new(&urls, made))).into_response())
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Query(q): Query,
) -> TwilioResult<Json<Value>> {
    let listing = Listing::new(format!("{}/Services", urls.base), &q, MAX_PAGE_SIZE)?;
    let fetched = listing
        .fetch(
            Order::Asc,
            None,
            false,
            |s: &ProxyService| Cursor::Key(s.sid.to_string()),
            |req| state.engine.proxy_services(&p, req),
        )
        .await?;
    Ok(Json(listing.respond("services", fetched.map(|s| ServiceView::new(&urls, s)))))
}

pub async fn fetch(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path(service): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<Json<ServiceView>> {
    let found = state.engine.proxy_service(&p, &service).await.map_err(fail(uri.path()))?;
    Ok(Json(ServiceView::new(&urls, found)))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path(service): Path<String>,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<Json<ServiceView>> {
    let updated = state.engine.update_proxy_service(&p, &service, patch(&f)?).await.map_err(fail(uri.path()))?;
    Ok(Json(ServiceView::new(&urls, updated)))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path(service): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<StatusCode> {
    state.engine.remove_proxy_service(&p, &service).await.map_err(fail(uri.path()))?;
    Ok(StatusCode::NO_CONTENT)
}
