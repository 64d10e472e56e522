//! `/Services/{ServiceSid}/PhoneNumbers[/{Sid}]`: a service's pool of proxy numbers.

use super::{MAX_PAGE_SIZE, Urls, fail};
use crate::api::twilio::auth::BasicAuth;
use crate::api::twilio::error::{TwilioError, TwilioResult};
use crate::api::twilio::paging::Listing;
use crate::api::twilio::params::{Form, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrosync_core::CoreError;
use ferrosync_core::engine::ProxyNumber;
use ferrosync_core::page::{Cursor, Order};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Twilio's code for a number that belongs to another Proxy service.
const NUMBER_NOT_AVAILABLE: (u16, u32) = (400, 80601);

#[derive(Serialize)]
pub struct NumberView {
    sid: String,
    account_sid: String,
    service_sid: String,
    date_created: String,
    date_updated: String,
    phone_number: String,
    friendly_name: String,
    iso_country: Option<&'static str>,
    capabilities: Value,
    url: String,
    is_reserved: bool,
    in_use: u64,
}

impl NumberView {
    fn new(urls: &Urls, n: ProxyNumber) -> Self {
        NumberView {
            url: format!("{}/Services/{}/PhoneNumbers/{}", urls.base, n.service_sid, n.sid),
            iso_country: n.iso_country(),
            sid: n.sid.to_string(),
            account_sid: urls.account_sid.clone(),
            service_sid: n.service_sid.to_string(),
            date_created: n.date_created.to_iso_seconds(),
            date_updated: n.date_updated.to_iso_seconds(),
            friendly_name: n.phone_number.clone(),
            phone_number: n.phone_number,
            // Messages and calls both go through a proxy number.
            capabilities: json!({
                "sms_inbound": true, "sms_outbound": true, "mms_inbound": true, "mms_outbound": true,
                "voice_inbound": true, "voice_outbound": true, "fax_inbound": false, "fax_outbound": false,
                "restriction_sms_domestic": false, "restriction_voice_domestic": false,
                "restriction_mms_domestic": false, "restriction_fax_domestic": false,
                "sip_trunking": false,
            }),
            is_reserved: n.is_reserved,
            in_use: 0,
        }
    }
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path(service): Path<String>,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<Response> {
    let reserved = f.bool("IsReserved")?.unwrap_or(false);
    let added =
        state.engine.add_proxy_number(&p, &service, f.get("PhoneNumber"), f.get("Sid"), reserved).await.map_err(
            |e| match e {
                CoreError::ResourceConflict(m) => TwilioError::new(NUMBER_NOT_AVAILABLE, m),
                other => fail(uri.path())(other),
            },
        )?;
    Ok((StatusCode::CREATED, Json(NumberView::new(&urls, added))).into_response())
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path(service): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query,
) -> TwilioResult<Json<Value>> {
    let found = state.engine.proxy_service(&p, &service).await.map_err(fail(uri.path()))?;
    let listing = Listing::new(format!("{}/Services/{}/PhoneNumbers", urls.base, found.sid), &q, MAX_PAGE_SIZE)?;
    let fetched = listing
        .fetch(
            Order::Asc,
            None,
            false,
            |n: &ProxyNumber| Cursor::Key(n.sid.to_string()),
            |req| state.engine.proxy_numbers(&p, &service, req),
        )
        .await
        .map_err(|e| if e.status == 404 { TwilioError::not_found(uri.path()) } else { e })?;
    Ok(Json(listing.respond("phone_numbers", fetched.map(|n| NumberView::new(&urls, n)))))
}

pub async fn fetch(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, number)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<Json<NumberView>> {
    let found = state.engine.proxy_number(&p, &service, &number).await.map_err(fail(uri.path()))?;
    Ok(Json(NumberView::new(&urls, found)))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, number)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<Json<NumberView>> {
    let reserved = f.bool("IsReserved")?;
    let updated = state.engine.update_proxy_number(&p, &service, &number, reserved).await.map_err(fail(uri.path()))?;
    Ok(Json(NumberView::new(&urls, updated)))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path((service, number)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<StatusCode> {
    state.engine.remove_proxy_number(&p, &service, &number).await.map_err(fail(uri.path()))?;
    Ok(StatusCode::NO_CONTENT)
}
