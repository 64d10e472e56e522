//! The relay's HTTP requests: one shared client with timeouts and no redirects, a bound on
//! requests in flight, and Twilio's two ways of signing a webhook (`X-Twilio-Signature`):
//! forms are signed over the URL and their sorted parameters, JSON bodies over the URL carrying
//! `bodySHA256=<hex SHA-256 of the body>` alone.

use super::RelayError;
use crate::webhooks::{WebhookSettings, twilio_signature};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

/// The most of a 2xx answer read (TwiML of the out-of-session callback); the rest is dropped.
const MAX_ANSWER: usize = 64 * 1024;

/// What a callback answered with a 2xx.
#[derive(Debug)]
pub(super) struct Answer {
    pub content_type: Option<String>,
    /// At most [`MAX_ANSWER`] bytes of it; `truncated` when there was more.
    pub body: String,
    pub truncated: bool,
}

pub(super) struct Sender {
    client: reqwest::Client,
    slots: Arc<Semaphore>,
    signing_key: String,
}

impl Sender {
    pub fn new(settings: &WebhookSettings, signing_key: &str) -> Result<Self, reqwest::Error> {
        let client = crate::outbound::http_client(|| {
            reqwest::Client::builder()
                .timeout(settings.request_timeout)
                .connect_timeout(settings.connect_timeout)
                // The callback URLs are an admin's; following redirects would let a receiver
                // point our signed requests (and participants' messages) anywhere.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("ferrosync-proxy-relay/", env!("CARGO_PKG_VERSION")))
                .pool_idle_timeout(std::time::Duration::from_secs(30))
        })?;
        Ok(Sender {
            client,
            slots: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
            signing_key: signing_key.to_owned(),
        })
    }

    /// POSTs `params` form-encoded to `url`, signed as Twilio signs its form webhooks. `callback`
    /// labels the metrics (`intercept`, `status`, `alert`, `out_of_session`).
    pub async fn post_form(
        &self,
        url: &str,
        params: &[(String, String)],
        callback: &'static str,
    ) -> Result<Answer, RelayError> {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        let signature = twilio_signature(&self.signing_key, url, params);
        let request = self.client.post(url).header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(request, body, &signature, callback).await
    }

    /// POSTs `body` as JSON to `url` with `bodySHA256` added to its query, signed over that URL
    /// with no parameters, as Twilio signs its JSON webhooks.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        callback: &'static str,
    ) -> Result<Answer, RelayError> {
        let bytes = serde_json::to_string(body).map_err(|e| RelayError::Encode(e.to_string()))?;
        let signed = json_url(url, bytes.as_bytes())?;
        let signature = twilio_signature::<&str, &str>(&self.signing_key, &signed, &[]);
        let request = self.client.post(&signed).header(CONTENT_TYPE, "application/json");
        self.send(request, bytes, &signature, callback).await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        body: String,
        signature: &str,
        callback: &'static str,
    ) -> Result<Answer, RelayError> {
        let _slot = self.slots.acquire().await.map_err(|_| RelayError::Closed)?;
        let mut signature = HeaderValue::from_str(signature).map_err(|_| RelayError::Encode("signature".into()))?;
        // Kept out of logs and traces, like credentials.
        signature.set_sensitive(true);
        let started = Instant::now();
        let response = request.header("X-Twilio-Signature", signature).body(body).send().await;
        metrics::histogram!("ferrosync_proxy_relay_request_seconds", "callback" => callback)
            .record(started.elapsed().as_secs_f64());
        let result = match response {
            Ok(response) if response.status().is_success() => Ok(read_answer(response).await),
            Ok(response) => {
                let status = response.status().as_u16();
                Err(RelayError::Status { status, body: crate::outbound::body_excerpt(response).await })
            }
            Err(e) => Err(RelayError::Request(e)),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(RelayError::Status { .. }) => "refused",
            Err(_) => "failed",
        };
        metrics::counter!("ferrosync_proxy_relay_requests_total", "callback" => callback, "result" => outcome)
            .increment(1);
        result
    }
}

/// `url` with `bodySHA256=<hex SHA-256 of body>` added to its query string.
pub(super) fn json_url(url: &str, body: &[u8]) -> Result<String, RelayError> {
    let mut parsed = reqwest::Url::parse(url).map_err(|_| RelayError::Url(url.to_owned()))?;
    parsed.query_pairs_mut().append_pair("bodySHA256", &hex::encode(Sha256::digest(body)));
    Ok(parsed.into())
}

async fn read_answer(mut response: reqwest::Response) -> Answer {
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut bytes = Vec::new();
    let mut truncated = false;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_ANSWER {
                    truncated = true;
                    break;
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            // The 2xx is what counts; a body cut short is only unreadable TwiML.
            Err(_) => {
                truncated = true;
                break;
            }
        }
    }
    Answer { content_type, body: String::from_utf8_lossy(&bytes).into_owned(), truncated }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_are_named_by_their_hash_in_the_signed_url() {
        let body = br#"{"a":1}"#;
        let hash = hex::encode(Sha256::digest(body));
        assert_eq!(
            json_url("https://gw.example/in", body).expect("url"),
            format!("https://gw.example/in?bodySHA256={hash}")
        );
        assert_eq!(
            json_url("https://gw.example/in?tenant=t%201", body).expect("url"),
            format!("https://gw.example/in?tenant=t%201&bodySHA256={hash}"),
            "the query it had stays as it was"
        );
        assert!(json_url("not a url", body).is_err());
    }
}
