//! `/Services/{ServiceSid}/Sessions/{SessionSid}/Participants[/{Sid}]`: a session's
//! participants (at most two; a delete keeps them, marked deleted).

use super::{MAX_PAGE_SIZE, Urls, fail};
use crate::api::twilio::auth::BasicAuth;
use crate::api::twilio::error::TwilioResult;
use crate::api::twilio::paging::{Listing, page_in_memory};
use crate::api::twilio::params::{Form, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrosync_core::engine::{ParticipantSpec, ProxyParticipant, ProxySession};
use ferrosync_core::page::{Cursor, Order, Page};
use ferrosync_core::timestamp::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn view(urls: &Urls, s: &ProxySession, p: &ProxyParticipant) -> Value {
    let url = format!("{}/Services/{}/Sessions/{}/Participants/{}", urls.base, s.service_sid, s.sid, p.sid);
    json!({
        "sid": p.sid,
        "session_sid": s.sid,
        "service_sid": s.service_sid,
        "account_sid": urls.account_sid,
        "friendly_name": p.friendly_name,
        "identifier": p.identifier,
        "proxy_identifier": p.proxy_identifier,
        "proxy_identifier_sid": p.proxy_identifier_sid,
        "date_deleted": p.date_deleted.map(Timestamp::to_iso_seconds),
        "date_created": p.date_created.to_iso_seconds(),
        "date_updated": p.date_updated.to_iso_seconds(),
        "links": { "message_interactions": format!("{url}/MessageInteractions") },
        "url": url,
    })
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, session)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<Response> {
    let spec = ParticipantSpec {
        identifier: f.required("Identifier")?.to_owned(),
        friendly_name: f.string("FriendlyName"),
        proxy_identifier: f.string("ProxyIdentifier"),
        proxy_identifier_sid: f.string("ProxyIdentifierSid"),
    };
    let fail_on_conflict = f.bool("FailOnParticipantConflict")?.unwrap_or(false);
    let engine = &state.engine;
    let made =
        engine.add_proxy_participant(&p, &service, &session, spec, fail_on_conflict).await.map_err(fail(uri.path()))?;
    let s = engine.proxy_session(&p, &service, &session).await.map_err(fail(uri.path()))?;
    Ok((StatusCode::CREATED, Json(view(&urls, &s, &made))).into_response())
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, session)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query,
) -> TwilioResult<Json<Value>> {
    let s = state.engine.proxy_session(&p, &service, &session).await.map_err(fail(uri.path()))?;
    let base = format!("{}/Services/{}/Sessions/{}/Participants", urls.base, s.service_sid, s.sid);
    let listing = Listing::new(base, &q, MAX_PAGE_SIZE)?;
    let key = |p: &ProxyParticipant| Cursor::Key(p.sid.to_string());
    let rows = s.participants.clone();
    let fetched = listing
        .fetch(Order::Asc, None, false, key, |req| async move {
            Ok::<Page<ProxyParticipant>, ferrosync_core::CoreError>(page_in_memory(&rows, key, &req))
        })
        .await?;
    Ok(Json(listing.respond("participants", fetched.map(|one| view(&urls, &s, &one)))))
}

pub async fn fetch(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, session, participant)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<Json<Value>> {
    let s = state.engine.proxy_session(&p, &service, &session).await.map_err(fail(uri.path()))?;
    let found = s.participant(&participant).ok_or_else(|| super::missing(uri.path()))?;
    Ok(Json(view(&urls, &s, found)))
}

/// A soft delete: 200 with the participant, `date_deleted` set.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, session, participant)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<Json<Value>> {
    let engine = &state.engine;
    let removed =
        engine.remove_proxy_participant(&p, &service, &session, &participant).await.map_err(fail(uri.path()))?;
    let s = engine.proxy_session(&p, &service, &session).await.map_err(fail(uri.path()))?;
    Ok(Json(view(&urls, &s, &removed)))
}
