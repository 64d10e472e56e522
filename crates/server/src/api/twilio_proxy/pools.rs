//! `/Services/{ServiceSid}/PhoneNumbers[/{Sid}]` and `/ShortCodes[/{Sid}]`: a service's pools of
//! proxy identifiers. One set of handlers serves both; the pool is the route's.

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
use axum::routing::{MethodRouter, get};
use ferrosync_core::CoreError;
use ferrosync_core::engine::{Pool, ProxyNumber};
use ferrosync_core::page::{Cursor, Order};
use serde_json::{Value, json};
use std::sync::Arc;

/// Twilio's code for an identifier that belongs to another Proxy service.
const NOT_AVAILABLE: (u16, u32) = (400, 80601);

/// The path segment and the listing key of a pool.
fn names(pool: Pool) -> (&'static str, &'static str) {
    match pool {
        Pool::PhoneNumbers => ("PhoneNumbers", "phone_numbers"),
        Pool::ShortCodes => ("ShortCodes", "short_codes"),
    }
}

fn view(urls: &Urls, pool: Pool, n: ProxyNumber) -> Value {
    let (segment, _) = names(pool);
    let mut v = json!({
        "sid": n.sid,
        "account_sid": urls.account_sid,
        "service_sid": n.service_sid,
        "date_created": n.date_created.to_iso_seconds(),
        "date_updated": n.date_updated.to_iso_seconds(),
        "iso_country": n.iso_country(),
        "url": format!("{}/Services/{}/{segment}/{}", urls.base, n.service_sid, n.sid),
        "is_reserved": n.is_reserved,
    });
    match pool {
        Pool::PhoneNumbers => {
            v["phone_number"] = json!(n.number);
            v["friendly_name"] = json!(n.number);
            // Messages and calls both go through a proxy number.
            v["capabilities"] = json!({
                "sms_inbound": true, "sms_outbound": true, "mms_inbound": true, "mms_outbound": true,
                "voice_inbound": true, "voice_outbound": true, "fax_inbound": false, "fax_outbound": false,
                "restriction_sms_domestic": false, "restriction_voice_domestic": false,
                "restriction_mms_domestic": false, "restriction_fax_domestic": false,
                "sip_trunking": false,
            });
            v["in_use"] = json!(n.in_use);
        }
        Pool::ShortCodes => {
            v["short_code"] = json!(n.number);
            v["capabilities"] = json!({ "sms_inbound": true, "sms_outbound": true });
        }
    }
    v
}

async fn create(
    state: &AppState,
    p: &ferrosync_core::auth::Principal,
    urls: &Urls,
    pool: Pool,
    service: &str,
    path: &str,
    f: &Params,
) -> TwilioResult<Response> {
    let reserved = f.bool("IsReserved")?.unwrap_or(false);
    let added =
        state.engine.add_proxy_number(p, pool, service, f.get(pool.field()), f.get("Sid"), reserved).await.map_err(
            |e| match e {
                CoreError::ResourceConflict(m) => TwilioError::new(NOT_AVAILABLE, m),
                other => fail(path)(other),
            },
        )?;
    Ok((StatusCode::CREATED, Json(view(urls, pool, added))).into_response())
}

async fn list(
    state: &AppState,
    p: &ferrosync_core::auth::Principal,
    urls: &Urls,
    pool: Pool,
    service: &str,
    path: &str,
    q: &Params,
) -> TwilioResult<Json<Value>> {
    let found = state.engine.proxy_service(p, service).await.map_err(fail(path))?;
    let (segment, key) = names(pool);
    let listing = Listing::new(format!("{}/Services/{}/{segment}", urls.base, found.sid), q, MAX_PAGE_SIZE)?;
    let fetched = listing
        .fetch(
            Order::Asc,
            None,
            false,
            |n: &ProxyNumber| Cursor::Key(n.sid.to_string()),
            |req| state.engine.proxy_numbers(p, pool, service, req),
        )
        .await?;
    Ok(Json(listing.respond(key, fetched.map(|n| view(urls, pool, n)))))
}

/// `GET` (list) and `POST` (add) of a pool.
pub fn collection(pool: Pool) -> MethodRouter<Arc<AppState>> {
    get(
        move |State(state): State<Arc<AppState>>,
              BasicAuth(p): BasicAuth,
              urls: Urls,
              Path(service): Path<String>,
              OriginalUri(uri): OriginalUri,
              Query(q): Query| async move { list(&state, &p, &urls, pool, &service, uri.path(), &q).await },
    )
    .post(
        move |State(state): State<Arc<AppState>>,
              BasicAuth(p): BasicAuth,
              urls: Urls,
              Path(service): Path<String>,
              OriginalUri(uri): OriginalUri,
              Form(f): Form| async move { create(&state, &p, &urls, pool, &service, uri.path(), &f).await },
    )
}

/// `GET`, `POST` (update) and `DELETE` of one identifier, by SID or by its value.
pub fn instance(pool: Pool) -> MethodRouter<Arc<AppState>> {
    get(
        move |State(state): State<Arc<AppState>>,
              BasicAuth(p): BasicAuth,
              urls: Urls,
              Path((service, id)): Path<(String, String)>,
              OriginalUri(uri): OriginalUri| async move {
            let found = state.engine.proxy_number(&p, pool, &service, &id).await.map_err(fail(uri.path()))?;
            Ok::<_, TwilioError>(Json(view(&urls, pool, found)))
        },
    )
    .post(
        move |State(state): State<Arc<AppState>>,
              BasicAuth(p): BasicAuth,
              urls: Urls,
              Path((service, id)): Path<(String, String)>,
              OriginalUri(uri): OriginalUri,
              Form(f): Form| async move {
            let reserved = f.bool("IsReserved")?;
            let updated =
                state.engine.update_proxy_number(&p, pool, &service, &id, reserved).await.map_err(fail(uri.path()))?;
            Ok::<_, TwilioError>(Json(view(&urls, pool, updated)))
        },
    )
    .delete(
        move |State(state): State<Arc<AppState>>,
              BasicAuth(p): BasicAuth,
              Path((service, id)): Path<(String, String)>,
              OriginalUri(uri): OriginalUri| async move {
            state.engine.remove_proxy_number(&p, pool, &service, &id).await.map_err(fail(uri.path()))?;
            Ok::<_, TwilioError>(StatusCode::NO_CONTENT)
        },
    )
}
