//! Where Cognito Streams records go: a Kinesis stream (the Kinesis API's `PutRecord`, SigV4
//! signed, at a configurable endpoint, so Kinesis, kinesalite or LocalStack all work), or an
//! http(s) webhook when the pool's StreamName is a URL.

use crate::api::aws::sigv4::{ClientCredentials, Signer, sign_request};
use crate::push::webhook::{SIGNATURE_HEADER, signature};
use base64::Engine as _;
use reqwest::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use serde::Deserialize;
use std::time::Duration;
use time::OffsetDateTime;

/// How Ferrosync reaches Kinesis.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamSettings {
    /// The Kinesis API's URL; `{region}` is replaced by the pool's region (the part of its id
    /// before `:`), as AWS requires the stream to be in the pool's region.
    pub kinesis_endpoint: String,
    /// Signs with this region instead of the pool's.
    pub region: Option<String>,
    /// Credentials for Kinesis; without them, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
    /// `AWS_SESSION_TOKEN` from the environment.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// One request, connecting included.
    #[serde(with = "secs")]
    pub request_timeout: Duration,
}

mod secs {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs_f64(f64::deserialize(d)?))
    }
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            kinesis_endpoint: "https://kinesis.{region}.amazonaws.com".into(),
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl StreamSettings {
    fn credentials(&self) -> Option<ClientCredentials> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let access_key_id = self.access_key_id.clone().or_else(|| env("AWS_ACCESS_KEY_ID"))?;
        let secret_access_key = self.secret_access_key.clone().or_else(|| env("AWS_SECRET_ACCESS_KEY"))?;
        let session_token = self.session_token.clone().or_else(|| env("AWS_SESSION_TOKEN"));
        Some(ClientCredentials { access_key_id, secret_access_key, session_token })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("the request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("{target} answered {status}: {body}")]
    Status { target: &'static str, status: u16, body: String },
    #[error(
        "no Kinesis credentials: set [cognito.streams] access_key_id and secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoCredentials,
    #[error("invalid Kinesis endpoint '{0}'")]
    Endpoint(String),
}

impl SinkError {
    /// Throttling, server errors and network failures pass; a refused request does not.
    pub fn is_retryable(&self) -> bool {
        match self {
            SinkError::Request(_) => true,
            SinkError::Status { status, .. } => *status == 429 || *status >= 500 || *status == 400,
            SinkError::NoCredentials | SinkError::Endpoint(_) => false,
        }
    }
}

/// Publishes stream records.
pub struct StreamSink {
    client: reqwest::Client,
    settings: StreamSettings,
}

impl StreamSink {
    pub fn new(settings: StreamSettings) -> Result<Self, reqwest::Error> {
        let client = crate::outbound::http_client(|| {
            reqwest::Client::builder()
                .timeout(settings.request_timeout)
                .connect_timeout(settings.request_timeout.min(Duration::from_secs(5)))
                // The endpoint is the operator's; a redirect could send identities' data elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("ferrosync-cognito-streams/", env!("CARGO_PKG_VERSION")))
        })?;
        Ok(StreamSink { client, settings })
    }

    /// Publishes one record's payload to `stream`: a webhook URL, or a Kinesis stream name in
    /// `pool_id`'s region, partitioned by identity (so one identity's syncs stay in order).
    pub async fn publish(
        &self,
        pool_id: &str,
        stream: &str,
        identity_id: &str,
        payload: &[u8],
        signing_key: &str,
    ) -> Result<(), SinkError> {
        if is_url(stream) {
            return self.post_webhook(stream, payload, signing_key).await;
        }
        let region = self.settings.region.clone().unwrap_or_else(|| region_of(pool_id).to_owned());
        let endpoint = self.settings.kinesis_endpoint.replace("{region}", &region);
        let url = reqwest::Url::parse(&endpoint).map_err(|_| SinkError::Endpoint(endpoint.clone()))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(SinkError::Endpoint(endpoint)),
        };
        let credentials = self.settings.credentials().ok_or(SinkError::NoCredentials)?;
        let body = serde_json::to_vec(&serde_json::json!({
            "StreamName": stream,
            "PartitionKey": identity_id,
            "Data": base64::engine::general_purpose::STANDARD.encode(payload),
        }))
        .unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(&host).map_err(|_| SinkError::Endpoint(endpoint.clone()))?);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
        headers.insert("x-amz-target", HeaderValue::from_static("Kinesis_20131202.PutRecord"));
        let path = url.path().to_owned();
        sign_request(
            Signer { service: "kinesis", region: &region, credentials: &credentials },
            "POST",
            &path,
            &mut headers,
            &body,
            OffsetDateTime::now_utc(),
        );
        let response = self.client.post(url).headers(headers).body(body).send().await?;
        check(response, "Kinesis").await
    }

    /// POSTs the record as it would reach Kinesis, signed with the account's auth token:
    /// `X-Ferrosync-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    async fn post_webhook(&self, url: &str, payload: &[u8], signing_key: &str) -> Result<(), SinkError> {
        let response = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(signing_key, payload))
            .body(payload.to_vec())
            .send()
            .await?;
        check(response, "the stream webhook").await
    }
}

pub fn is_url(stream: &str) -> bool {
    stream.starts_with("https://") || stream.starts_with("http://")
}

/// A pool's region: its id is `<region>:<uuid>`.
fn region_of(pool_id: &str) -> &str {
    pool_id.split_once(':').map_or(pool_id, |(region, _)| region)
}

async fn check(response: reqwest::Response, target: &'static str) -> Result<(), SinkError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = crate::outbound::body_excerpt(response).await;
    Err(SinkError::Status { target, status: status.as_u16(), body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_urls_or_kinesis_names() {
        assert!(is_url("https://hooks.example/streams"));
        assert!(!is_url("my-stream"));
        assert_eq!(region_of("eu-west-1:0f5e"), "eu-west-1");
    }
}
