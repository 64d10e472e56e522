//! `/Services[/{Sid}]`.

use super::error::fail;
use super::types::{ServiceView, Urls};
use crate::api::twilio::auth::BasicAuth;
use crate::api::twilio::error::{Subject, TwilioError, TwilioResult};
use crate::api::twilio::paging::Listing;
use crate::api::twilio::params::{Form, Params, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrosync_core::engine::{ServicePatch, ServiceSpec};
use ferrosync_core::model::{ServiceSettings, ServiceSettingsPatch};
use ferrosync_core::page::{Cursor, Order};
use serde_json::Value;
use std::sync::Arc;

/// Sync's maximum page size.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The SID of the service a request names (by SID or unique name), for the URLs of what it
/// holds.
pub async fn service_sid(
    state: &AppState,
    p: &ferrosync_core::auth::Principal,
    service: &str,
    path: &str,
) -> TwilioResult<String> {
    let svc = state.engine.service(p, service).await.map_err(fail(path, Subject::Other))?;
    Ok(svc.sid.to_string())
}

fn settings_patch(f: &Params) -> TwilioResult<ServiceSettingsPatch> {
    let window = f
        .u64("ReachabilityDebouncingWindow")?
        .map(|w| {
            u32::try_from(w).map_err(|_| {
                TwilioError::invalid("ReachabilityDebouncingWindow", format!("must be between 1000 and 30000, got {w}"))
            })
        })
        .transpose()?;
    Ok(ServiceSettingsPatch {
        // Sent empty, the URL is cleared.
        webhook_url: f.sent("WebhookUrl").then(|| f.string("WebhookUrl")),
        webhooks_from_rest_enabled: f.bool("WebhooksFromRestEnabled")?,
        reachability_webhooks_enabled: f.bool("ReachabilityWebhooksEnabled")?,
        reachability_debouncing_enabled: f.bool("ReachabilityDebouncingEnabled")?,
        reachability_debouncing_window: window,
        index: None,
    })
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<Response> {
    let mut settings = ServiceSettings::default();
    settings_patch(&f)?.apply(&mut settings);
    let spec = ServiceSpec {
        unique_name: f.string("UniqueName"),
        friendly_name: f.string("FriendlyName"),
        acl_enabled: f.bool("AclEnabled")?.unwrap_or(false),
        settings,
    };
    let service = state.engine.create_service(&p, spec).await.map_err(fail(uri.path(), Subject::Other))?;
    Ok((StatusCode::CREATED, Json(ServiceView::new(&urls, service))).into_response())
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
            |s: &ferrosync_core::model::Service| Cursor::Key(s.sid.to_string()),
            |req| state.engine.services(&p, req),
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
    let found = state.engine.service(&p, &service).await.map_err(fail(uri.path(), Subject::Other))?;
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
    let patch = ServicePatch {
        unique_name: f.sent("UniqueName").then(|| f.string("UniqueName")),
        friendly_name: f.sent("FriendlyName").then(|| f.string("FriendlyName")),
        acl_enabled: f.bool("AclEnabled")?,
        settings: settings_patch(&f)?,
    };
    let updated = state.engine.update_service(&p, &service, patch).await.map_err(fail(uri.path(), Subject::Other))?;
    Ok(Json(ServiceView::new(&urls, updated)))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path(service): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<StatusCode> {
    state.engine.remove_service(&p, &service).await.map_err(fail(uri.path(), Subject::Other))?;
    Ok(StatusCode::NO_CONTENT)
}
