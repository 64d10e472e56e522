//! `POST /Services/{ServiceSid}/Streams/{StreamSid}/Messages`: publish only; messages are
//! delivered to subscribers, never listed.

use super::error::fail;
use super::types::MessageView;
use crate::api::twilio::auth::BasicAuth;
use crate::api::twilio::error::{Subject, TwilioError, TwilioResult};
use crate::api::twilio::params::Form;
use crate::state::AppState;
use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use std::sync::Arc;

pub async fn create(
    State(state): State<Arc<AppState>>,
    BasicAuth(p): BasicAuth,
    Path((service, stream)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Form(f): Form,
) -> TwilioResult<(StatusCode, Json<MessageView>)> {
    let data = f.json("Data")?.ok_or_else(|| TwilioError::invalid("Data", "is required"))?;
    let message = state.engine.publish(&p, &service, &stream, data).await.map_err(fail(uri.path(), Subject::Other))?;
    Ok((StatusCode::CREATED, Json(message.into())))
}
