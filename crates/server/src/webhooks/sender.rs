//! Posting one webhook: a shared HTTP client with timeouts and no redirects, a bound on
//! requests in flight, signed form bodies, and bounded retries with backoff.

use super::WebhookSettings;
use super::signature::twilio_signature;
use crate::logfeed::{Retried, with_retries};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("the receiver answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the delivery slots are closed")]
    Closed,
}

/// How a webhook's delivery ended.
#[derive(Debug)]
pub enum Delivered {
    /// A 2xx answer.
    Acknowledged,
    /// Every attempt failed; the last error.
    GaveUp(DeliveryError),
    /// Shutdown (or a lost lease) came first; it will be delivered again.
    Cancelled,
}

pub struct Sender {
    client: reqwest::Client,
    slots: Arc<Semaphore>,
    settings: WebhookSettings,
}

impl Sender {
    pub fn new(settings: WebhookSettings) -> Result<Self, reqwest::Error> {
        let client = crate::outbound::http_client(|| {
            reqwest::Client::builder()
                .timeout(settings.request_timeout)
                .connect_timeout(settings.connect_timeout)
                // A webhook URL is configured by an admin; following redirects would let a
                // receiver point our signed requests anywhere.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("ferrosync-webhooks/", env!("CARGO_PKG_VERSION")))
                .pool_idle_timeout(std::time::Duration::from_secs(30))
        })?;
        Ok(Sender { client, slots: Arc::new(Semaphore::new(settings.max_concurrent.max(1))), settings })
    }

    /// Posts `params` to `url` until it is acknowledged, the attempts run out, or `cancel` fires.
    /// `source` labels the metrics (`log`, `reachability`).
    pub async fn deliver(
        &self,
        url: &str,
        params: &[(&'static str, String)],
        signing_key: &str,
        source: &'static str,
        cancel: &CancellationToken,
    ) -> Delivered {
        let body = form_body(params);
        let signature = twilio_signature(signing_key, url, params);
        let mut first = true;
        let attempt = || {
            if !std::mem::take(&mut first) {
                metrics::counter!("ferrosync_webhook_retries_total", "source" => source).increment(1);
            }
            async {
                let result = self.post(url, &body, &signature).await;
                let outcome = if result.is_ok() { "ok" } else { "failed" };
                metrics::counter!("ferrosync_webhook_deliveries_total", "source" => source, "result" => outcome)
                    .increment(1);
                result
            }
        };
        match with_retries(&self.settings.retry, cancel, |_| true, attempt).await {
            Retried::Done => Delivered::Acknowledged,
            Retried::GaveUp(e) => Delivered::GaveUp(e),
            Retried::Cancelled => Delivered::Cancelled,
        }
    }

    async fn post(&self, url: &str, body: &str, signature: &str) -> Result<(), DeliveryError> {
        let _slot = self.slots.acquire().await.map_err(|_| DeliveryError::Closed)?;
        let mut signature = HeaderValue::from_str(signature).map_err(|_| DeliveryError::Closed)?;
        // Kept out of logs and traces, like credentials.
        signature.set_sensitive(true);
        let started = Instant::now();
        let response = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(body.to_owned())
            .send()
            .await;
        metrics::histogram!("ferrosync_webhook_request_seconds").record(started.elapsed().as_secs_f64());
        let response = response?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = crate::outbound::body_excerpt(response).await;
        Err(DeliveryError::Status { status: status.as_u16(), body })
    }
}

fn form_body(params: &[(&'static str, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}
