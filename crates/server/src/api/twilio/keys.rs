//! API keys the way Twilio's helper libraries create them, so that their `AccessToken` helpers
//! can sign tokens Ferrosync accepts: the 2010-04-01 API
//! (`/2010-04-01/Accounts/{AccountSid}/Keys.json`, `*_page_uri` paging) and IAM v1
//! (`/v1/Keys`, the `meta` block); both write dates in RFC 2822.

use super::auth::BasicAuth;
use super::error::{TwilioError, TwilioResult};
use super::paging::{Fetched, Listing, page_in_memory};
use super::params::{Form, Query};
use crate::state::AppState;
use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ferrosync_core::auth::Principal;
use ferrosync_core::model::ApiKey;
use ferrosync_core::page::{Cursor, Order};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// Mounted at `/twilio/api` (2010-04-01) and `/twilio/iam` (v1).
pub fn v2010_router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/2010-04-01/Accounts/{account}/Keys.json", get(v2010_list).post(v2010_create))
        .route("/2010-04-01/Accounts/{account}/Keys/{file}", get(v2010_fetch).post(v2010_update).delete(v2010_remove))
        .layer(axum::middleware::from_fn(super::params::read_body_first))
}

pub fn iam_router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/Keys", get(iam_list).post(iam_create))
        .route("/v1/Keys/{sid}", get(iam_fetch).post(iam_update).delete(iam_remove))
}

#[derive(Serialize)]
struct V2010Key {
    sid: String,
    friendly_name: Option<String>,
    date_created: String,
    date_updated: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl V2010Key {
    fn new(k: ApiKey, with_secret: bool) -> Self {
        V2010Key {
            sid: k.sid.to_string(),
            friendly_name: k.friendly_name,
            date_created: k.date_created.to_rfc2822(),
            date_updated: k.date_created.to_rfc2822(),
            secret: with_secret.then_some(k.secret),
        }
    }
}

#[derive(Serialize)]
struct IamKey {
    sid: String,
    friendly_name: Option<String>,
    date_created: String,
    date_updated: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<Value>,
}

impl IamKey {
    fn new(k: ApiKey, with_secret: bool) -> Self {
        IamKey {
            sid: k.sid.to_string(),
            friendly_name: k.friendly_name,
            // RFC 2822, as Twilio's IAM API writes them (its helper libraries parse them so).
            date_created: k.date_created.to_rfc2822(),
            date_updated: k.date_created.to_rfc2822(),
            secret: with_secret.then_some(k.secret),
            policy: with_secret.then_some(Value::Null),
        }
    }
}

/// The path's account must be this server's.
fn check_account(state: &AppState, account: &str, path: &str) -> TwilioResult<()> {
    if account == state.engine.account_sid().as_str() { Ok(()) } else { Err(TwilioError::not_found(path)) }
}

/// `{Sid}.json` → `Sid`.
fn key_sid<'a>(file: &'a str, path: &str) -> TwilioResult<&'a str> {
    file.strip_suffix(".json").ok_or_else(|| TwilioError::not_found(path))
}

/// A missing or malformed key SID is "not found", as Twilio answers it.
fn not_found_as(path: &str) -> impl Fn(ferrosync_core::CoreError) -> TwilioError + '_ {
    move |e| match e {
        ferrosync_core::CoreError::NotFound { .. } | ferrosync_core::CoreError::InvalidSid(_) => {
            TwilioError::not_found(path)
        }
        other => other.into(),
    }
}

fn friendly_name(form: &super::params::Params) -> TwilioResult<Option<String>> {
    Ok(form.string("FriendlyName"))
}

/// This listing's page of the account's keys, in SID order.
async fn key_page(state: &AppState, p: &Principal, listing: &Listing) -> TwilioResult<Fetched<ApiKey>> {
    let keys = state.engine.api_keys(p).await?;
    let by_sid = |k: &ApiKey| Cursor::Key(k.sid.to_string());
    listing.fetch(Order::Asc, None, false, by_sid, |req| async move { Ok(page_in_memory(&keys, by_sid, &req)) }).await
}

async fn create_key(state: &AppState, p: &Principal, name: Option<String>) -> TwilioResult<ApiKey> {
    Ok(state.engine.create_api_key(p, name).await?)
}

async fn v2010_create(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path(account): Path<String>,
    OriginalUri(uri): OriginalUri,
    Form(form): Form,
) -> TwilioResult<Response> {
    check_account(&state, &account, uri.path())?;
    let key = create_key(&state, &p, friendly_name(&form)?).await?;
    Ok((StatusCode::CREATED, Json(V2010Key::new(key, true))).into_response())
}

async fn v2010_fetch(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path((account, file)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<Json<V2010Key>> {
    check_account(&state, &account, uri.path())?;
    let sid = key_sid(&file, uri.path())?;
    let key = state.engine.api_key(&p, sid).await.map_err(not_found_as(uri.path()))?;
    Ok(Json(V2010Key::new(key, false)))
}

async fn v2010_update(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path((account, file)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Form(form): Form,
) -> TwilioResult<Json<V2010Key>> {
    check_account(&state, &account, uri.path())?;
    let sid = key_sid(&file, uri.path())?;
    let key = state.engine.rename_api_key(&p, sid, friendly_name(&form)?).await.map_err(not_found_as(uri.path()))?;
    Ok(Json(V2010Key::new(key, false)))
}

async fn v2010_remove(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path((account, file)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<StatusCode> {
    check_account(&state, &account, uri.path())?;
    let sid = key_sid(&file, uri.path())?;
    state.engine.remove_api_key(&p, sid).await.map_err(not_found_as(uri.path()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The 2010-04-01 list shape: the rows beside `page`, `page_size`, `start`, `end` and paging
/// URIs relative to the API's root (the helper libraries prefix their own base URL).
async fn v2010_list(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path(account): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query,
) -> TwilioResult<Json<Value>> {
    check_account(&state, &account, uri.path())?;
    let relative = uri.path().strip_prefix("/twilio/api").unwrap_or(uri.path()).to_owned();
    let listing = Listing::new(relative, &q, 1000)?;
    let fetched = key_page(&state, &p, &listing).await?;
    let body = listing.respond("keys", fetched.map(|k| V2010Key::new(k, false)));
    let meta = &body["meta"];
    let count = body["keys"].as_array().map_or(0, Vec::len) as u64;
    let page = meta["page"].as_u64().unwrap_or(0);
    let start = page * listing.page_size as u64;
    Ok(Json(serde_json::json!({
        "keys": body["keys"],
        "first_page_uri": meta["first_page_url"],
        "next_page_uri": meta["next_page_url"],
        "previous_page_uri": meta["previous_page_url"],
        "page": page,
        "page_size": listing.page_size,
        "start": start,
        "end": (start + count).saturating_sub(1),
        "uri": meta["url"],
    })))
}

async fn iam_create(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    OriginalUri(uri): OriginalUri,
    Form(form): Form,
) -> TwilioResult<Response> {
    let account = form.required("AccountSid")?;
    check_account(&state, account, uri.path())?;
    if let Some(kind) = form.get("KeyType")
        && kind != "restricted"
    {
        return Err(TwilioError::invalid("KeyType", format!("must be 'restricted', got '{kind}'")));
    }
    let key = create_key(&state, &p, friendly_name(&form)?).await?;
    Ok((StatusCode::CREATED, Json(IamKey::new(key, true))).into_response())
}

async fn iam_fetch(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path(sid): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<Json<IamKey>> {
    let key = state.engine.api_key(&p, &sid).await.map_err(not_found_as(uri.path()))?;
    Ok(Json(IamKey::new(key, false)))
}

async fn iam_update(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path(sid): Path<String>,
    OriginalUri(uri): OriginalUri,
    Form(form): Form,
) -> TwilioResult<Json<IamKey>> {
    let key = state.engine.rename_api_key(&p, &sid, friendly_name(&form)?).await.map_err(not_found_as(uri.path()))?;
    Ok(Json(IamKey::new(key, false)))
}

async fn iam_remove(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path(sid): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> TwilioResult<StatusCode> {
    state.engine.remove_api_key(&p, &sid).await.map_err(not_found_as(uri.path()))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn iam_list(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(q): Query,
) -> TwilioResult<Json<Value>> {
    let account = q.required("AccountSid")?;
    check_account(&state, account, uri.path())?;
    let base = format!("{}{}", crate::api::http::origin(&headers).unwrap_or_default(), uri.path());
    let mut listing = Listing::new(base, &q, 1000)?;
    listing.filter("AccountSid", account);
    let fetched = key_page(&state, &p, &listing).await?;
    Ok(Json(listing.respond("keys", fetched.map(|k| IamKey::new(k, false)))))
}
