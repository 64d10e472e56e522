//! `POST /twilio/proxy/inbound`: where an SMS provider (or an app's backend, for `app:`
//! participants) hands over a message a participant sent to a proxy identifier, as the form of
//! Twilio's incoming-message webhook: `From`, `To`, `Body`, `NumMedia`, `MediaUrl0…`.
//!
//! The caller proves itself with Basic auth (the account or an API key), or by signing the
//! request as Twilio signs its webhooks: `X-Twilio-Signature` over the URL it called (this
//! server's origin as the request names it, path and query) and the form's parameters, keyed
//! with the account's auth token. The message is relayed within its session, or handed to the
//! out-of-session callback; either way the answer is the empty TwiML providers expect.

use crate::api::twilio::auth::BasicAuth;
use crate::api::twilio::error::{TwilioError, TwilioResult, code};
use crate::api::twilio::params::{BODY_LIMIT, Params};
use crate::state::AppState;
use crate::webhooks::twilio_signature;
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ferrosync_core::auth::Principal;
use ferrosync_core::engine::InboundMessage;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Where the route is mounted.
pub const PATH: &str = "/twilio/proxy/inbound";
/// Media of one message, at most (Twilio's limit).
pub const MAX_MEDIA: usize = 10;
const SIGNATURE: &str = "x-twilio-signature";
/// What a provider's webhook is answered with: no further action.
const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// The inbound route, merged into the server's router beside the Proxy face.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(PATH, post(receive))
}

pub async fn receive(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match handle(&state, request).await {
        Ok(()) => ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], EMPTY_TWIML).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &Arc<AppState>, request: Request) -> TwilioResult<()> {
    let (mut parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| {
        TwilioError::new(
            code::TOO_LARGE,
            format!("the request body is larger than the {} KiB limit", BODY_LIMIT / 1024),
        )
    })?;
    let form_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !form_type && !bytes.is_empty() {
        return Err(TwilioError::invalid("Content-Type", "must be application/x-www-form-urlencoded"));
    }
    // Every parameter, empty ones included: the signature covers them all.
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    if !signed(state, &parts.headers, &parts.uri, &pairs) {
        if parts.headers.contains_key(header::AUTHORIZATION) || !parts.headers.contains_key(SIGNATURE) {
            BasicAuth::from_request_parts(&mut parts, state).await?;
        } else {
            return Err(TwilioError::new(
                code::AUTHENTICATE,
                "Authenticate: the X-Twilio-Signature does not match this request (or send Basic auth)",
            ));
        }
    }
    let message = message(&Params::parse(&bytes), &pairs)?;
    state.engine.proxy_inbound(&Principal::Root, message).await?;
    Ok(())
}

/// Whether the request carries a valid `X-Twilio-Signature` for the URL it was sent to.
fn signed(state: &AppState, headers: &HeaderMap, uri: &Uri, pairs: &[(String, String)]) -> bool {
    let Some(given) = headers.get(SIGNATURE).and_then(|v| v.to_str().ok()) else { return false };
    let Some(origin) = crate::api::http::origin(headers) else { return false };
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let expected = twilio_signature(state.engine.webhook_signing_key(), &format!("{origin}{path}"), pairs);
    bool::from(expected.as_bytes().ct_eq(given.trim().as_bytes()))
}

/// The message of the provider's form (`pairs`, every parameter as sent); bad fields are named.
fn message(f: &Params, pairs: &[(String, String)]) -> TwilioResult<InboundMessage> {
    let from = f.required("From")?.to_owned();
    let to = f.required("To")?.to_owned();
    let body = f.string("Body").unwrap_or_default();
    let count = f.u64("NumMedia")?.unwrap_or(0);
    if count > MAX_MEDIA as u64 {
        return Err(TwilioError::invalid("NumMedia", format!("must be at most {MAX_MEDIA}, got {count}")));
    }
    let mut media = Vec::new();
    for i in 0..count {
        let name = format!("MediaUrl{i}");
        let url = f.get(&name).ok_or_else(|| {
            TwilioError::invalid(
                &name,
                format!("is required: NumMedia is {count}, MediaUrl0 to MediaUrl{} must be sent", count - 1),
            )
        })?;
        media.push(url.to_owned());
    }
    let extra = pairs
        .iter()
        .map(|(k, _)| k)
        .find(|k| k.strip_prefix("MediaUrl").and_then(|i| i.parse::<u64>().ok()).is_some_and(|i| i >= count));
    if let Some(name) = extra {
        return Err(TwilioError::invalid(name, format!("is more media than NumMedia ({count}) says")));
    }
    Ok(InboundMessage { from, to, body, media })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(form: &[u8]) -> TwilioResult<InboundMessage> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(form).into_owned().collect();
        super::message(&Params::parse(form), &pairs)
    }

    #[test]
    fn media_must_match_num_media() {
        let ok =
            message(b"From=%2B1555&To=%2B1666&Body=hi&NumMedia=2&MediaUrl0=https%3A%2F%2Fa&MediaUrl1=https%3A%2F%2Fb")
                .expect("valid");
        assert_eq!(ok.media, ["https://a", "https://b"]);
        assert_eq!(message(b"From=a&To=b&Body=hi").expect("no media").media.len(), 0);
        for (form, field) in [
            (&b"To=b&Body=hi"[..], "From"),
            (b"From=a&Body=hi", "To"),
            (b"From=a&To=b&NumMedia=11", "NumMedia"),
            (b"From=a&To=b&NumMedia=x", "NumMedia"),
            (b"From=a&To=b&NumMedia=2&MediaUrl0=https%3A%2F%2Fa", "MediaUrl1"),
            (b"From=a&To=b&NumMedia=1&MediaUrl0=https%3A%2F%2Fa&MediaUrl1=https%3A%2F%2Fb", "MediaUrl1"),
            (b"From=a&To=b&Body=hi&MediaUrl0=https%3A%2F%2Fa", "MediaUrl0"),
            (b"From=a&To=b&Body=hi&NumMedia=0&MediaUrl12=https%3A%2F%2Fa", "MediaUrl12"),
        ] {
            let e = message(form).expect_err("refused");
            assert_eq!(e.status, 400);
            assert!(e.message.starts_with(&format!("{field}:")), "{field}: {}", e.message);
        }
    }
}
