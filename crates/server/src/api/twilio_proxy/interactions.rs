//! `/Services/{ServiceSid}/Sessions/{SessionSid}/Interactions[/{Sid}]` and a participant's
//! `MessageInteractions[/{Sid}]`: the messages of a session.

use super::{MAX_PAGE_SIZE, Urls, fail};
use crate::api::twilio::auth::BasicAuth;
use crate::api::twilio::error::TwilioResult;
use crate::api::twilio::paging::{Listing, page_in_memory};
use crate::api::twilio::params::{Form, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use ferrosync_core::CoreError;
use ferrosync_core::engine::ProxyInteraction;
use ferrosync_core::page::{Cursor, Order, Page};
use serde_json::{Value, json};
use std::sync::Arc;

fn session_url(urls: &Urls, i: &ProxyInteraction) -> String {
    format!("{}/Services/{}/Sessions/{}", urls.base, i.service_sid, i.session_sid)
}

/// An interaction; a Message Interaction (`participant` set) also names its participant and
/// lives under it.
pub fn view(urls: &Urls, i: &ProxyInteraction, participant: Option<&str>) -> Value {
    let url = match participant {
        Some(p) => format!("{}/Participants/{p}/MessageInteractions/{}", session_url(urls, i), i.sid),
        None => format!("{}/Interactions/{}", session_url(urls, i), i.sid),
    };
    let mut v = json!({
        "sid": i.sid,
        "session_sid": i.session_sid,
        "service_sid": i.service_sid,
        "account_sid": urls.account_sid,
        "data": i.data,
        "type": i.kind,
        "inbound_participant_sid": i.inbound_participant_sid,
        "inbound_resource_sid": i.inbound_resource_sid,
        "inbound_resource_status": i.inbound_resource_status,
        "inbound_resource_type": i.inbound_resource_type,
        "inbound_resource_url": Value::Null,
        "outbound_participant_sid": i.outbound_participant_sid,
        "outbound_resource_sid": i.outbound_resource_sid,
        "outbound_resource_status": i.outbound_resource_status,
        "outbound_resource_type": i.outbound_resource_type,
        "outbound_resource_url": Value::Null,
        "date_created": i.date_created.to_iso_seconds(),
        "date_updated": i.date_updated.to_iso_seconds(),
        "url": url,
    });
    if participant.is_some() {
        v["participant_sid"] = json!(i.participant_sid);
    }
    v
}

fn key(i: &ProxyInteraction) -> Cursor {
    Cursor::Key(i.sid.to_string())
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
    let base = format!("{}/Services/{}/Sessions/{}/Interactions", urls.base, s.service_sid, s.sid);
    let listing = Listing::new(base, &q, MAX_PAGE_SIZE)?;
    let fetched = listing
        .fetch(Order::Asc, None, false, key, |req| state.engine.proxy_interactions(&p, &service, &session, req))
        .await?;
    Ok(Json(listing.respond("interactions", fetched.map(|i| view(&urls, &i, None)))))
}

pub async fn fetch(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, session, id)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<Json<Value>> {
    let found = state.engine.proxy_interaction(&p, &service, &session, &id).await.map_err(fail(uri.path()))?;
    Ok(Json(view(&urls, &found, None)))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path((service, session, id)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<StatusCode> {
    state.engine.remove_proxy_interaction(&p, &service, &session, &id).await.map_err(fail(uri.path()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Message Interaction create: 200, as Twilio's description has it.
pub async fn send(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, session, participant)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<Json<Value>> {
    let body = f.get("Body").unwrap_or_default();
    let media: Vec<String> = f.all("MediaUrl").map(str::to_owned).collect();
    let made = state
        .engine
        .create_proxy_message_interaction(&p, &service, &session, &participant, body, media)
        .await
        .map_err(fail(uri.path()))?;
    let participant = made.participant_sid.as_ref().map(ToString::to_string).unwrap_or(participant);
    Ok(Json(view(&urls, &made, Some(&participant))))
}

pub async fn list_sent(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, session, participant)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query,
) -> TwilioResult<Json<Value>> {
    let rows = state
        .engine
        .proxy_message_interactions(&p, &service, &session, &participant)
        .await
        .map_err(fail(uri.path()))?;
    let s = state.engine.proxy_session(&p, &service, &session).await.map_err(fail(uri.path()))?;
    let target = s.participant(&participant).map(|x| x.sid.to_string()).unwrap_or(participant);
    let base = format!(
        "{}/Services/{}/Sessions/{}/Participants/{target}/MessageInteractions",
        urls.base, s.service_sid, s.sid
    );
    let listing = Listing::new(base, &q, MAX_PAGE_SIZE)?;
    let fetched = listing
        .fetch(Order::Asc, None, false, key, |req| async move {
            Ok::<Page<ProxyInteraction>, CoreError>(page_in_memory(&rows, key, &req))
        })
        .await?;
    Ok(Json(listing.respond("interactions", fetched.map(|i| view(&urls, &i, Some(&target))))))
}

pub async fn fetch_sent(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    urls: Urls,
    Path((service, session, participant, id)): Path<(String, String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<Json<Value>> {
    let found = state.engine.proxy_interaction(&p, &service, &session, &id).await.map_err(fail(uri.path()))?;
    match &found.participant_sid {
        Some(sent_to) if sent_to.as_str() == participant => Ok(Json(view(&urls, &found, Some(&participant)))),
        _ => Err(super::missing(uri.path())),
    }
}
