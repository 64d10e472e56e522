//! `/Services/{ServiceSid}/Sessions[/{Sid}]`: Proxy sessions.

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
use ferrosync_core::engine::{ParticipantSpec, ProxySession, SessionCreate, SessionUpdate};
use ferrosync_core::page::{Cursor, Order};
use ferrosync_core::timestamp::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn view(urls: &Urls, s: &ProxySession) -> Value {
    let url = format!("{}/Services/{}/Sessions/{}", urls.base, s.service_sid, s.sid);
    let iso = |t: Option<Timestamp>| t.map(Timestamp::to_iso_seconds);
    json!({
        "sid": s.sid,
        "service_sid": s.service_sid,
        "account_sid": urls.account_sid,
        "date_started": s.date_started.to_iso_seconds(),
        "date_ended": iso(s.date_ended),
        "date_last_interaction": iso(s.date_last_interaction),
        "date_expiry": iso(s.date_expiry),
        "unique_name": s.unique_name,
        "status": s.status.as_str(),
        "closed_reason": s.closed_reason,
        "ttl": s.ttl,
        "mode": s.mode,
        "date_created": s.date_created.to_iso_seconds(),
        "date_updated": s.date_updated.to_iso_seconds(),
        "links": {
            "interactions": format!("{url}/Interactions"),
            "participants": format!("{url}/Participants"),
        },
        "url": url,
    })
}

/// `DateExpiry` in ISO 8601; sent empty, it clears the date (`Some(None)`).
fn date_expiry(f: &Params) -> TwilioResult<Option<Option<Timestamp>>> {
    if !f.sent("DateExpiry") {
        return Ok(None);
    }
    match f.get("DateExpiry") {
        None => Ok(Some(None)),
        Some(v) => Timestamp::parse_rfc3339(v).map(|t| Some(Some(t))).ok_or_else(|| {
            TwilioError::invalid(
                "DateExpiry",
                format!("must be an ISO 8601 date and time such as 2030-01-01T00:00:00Z, got '{v}'"),
            )
        }),
    }
}

fn fail_on_conflict(f: &Params) -> TwilioResult<bool> {
    Ok(f.bool("FailOnParticipantConflict")?.unwrap_or(false))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path(service): Path<String>,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<Response> {
    let participants = f
        .all("Participants")
        .map(|raw| {
            let v: Value = serde_json::from_str(raw)
                .map_err(|e| TwilioError::invalid("Participants", format!("each must be a JSON object: {e}")))?;
            ParticipantSpec::from_json(&v).map_err(fail(uri.path()))
        })
        .collect::<TwilioResult<Vec<_>>>()?;
    let req = SessionCreate {
        unique_name: f.string("UniqueName"),
        date_expiry: date_expiry(&f)?.flatten(),
        ttl: f.u64("Ttl")?,
        mode: f.string("Mode"),
        status: f.string("Status"),
        participants,
        fail_on_participant_conflict: fail_on_conflict(&f)?,
    };
    let made = state.engine.create_proxy_session(&p, &service, req).await.map_err(fail(uri.path()))?;
    Ok((StatusCode::CREATED, Json(view(&urls, &made))).into_response())
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path(service): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query,
) -> TwilioResult<Json<Value>> {
    let svc = state.engine.proxy_service(&p, &service).await.map_err(fail(uri.path()))?;
    let listing = Listing::new(format!("{}/Services/{}/Sessions", urls.base, svc.sid), &q, MAX_PAGE_SIZE)?;
    let fetched = listing
        .fetch(
            Order::Asc,
            None,
            false,
            |s: &ProxySession| Cursor::Key(s.sid.to_string()),
            |req| state.engine.proxy_sessions(&p, &service, req),
        )
        .await?;
    Ok(Json(listing.respond("sessions", fetched.map(|s| view(&urls, &s)))))
}

pub async fn fetch(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, session)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<Json<Value>> {
    let found = state.engine.proxy_session(&p, &service, &session).await.map_err(fail(uri.path()))?;
    Ok(Json(view(&urls, &found)))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, session)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<Json<Value>> {
    let req = SessionUpdate {
        date_expiry: date_expiry(&f)?,
        ttl: f.u64("Ttl")?,
        status: f.string("Status"),
        fail_on_participant_conflict: fail_on_conflict(&f)?,
    };
    let updated = state.engine.update_proxy_session(&p, &service, &session, req).await.map_err(fail(uri.path()))?;
    Ok(Json(view(&urls, &updated)))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path((service, session)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<StatusCode> {
    state.engine.remove_proxy_session(&p, &service, &session).await.map_err(fail(uri.path()))?;
    Ok(StatusCode::NO_CONTENT)
}
