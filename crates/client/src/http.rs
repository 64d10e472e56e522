//! The REST half: JSON requests to `/api/v1/services/{service}/…` with the bearer token.

use crate::error::{ClientError, Result};
use ferrosync_protocol::ErrorBody;
use ferrosync_protocol::rest::revision_of_etag;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::{Arc, RwLock};

/// Characters escaped in a path segment: unique names and map keys may hold anything.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Escapes one path segment.
pub(crate) fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

#[derive(Clone)]
pub(crate) struct Rest {
    http: reqwest::Client,
    /// `http(s)://host:port`, without a trailing slash.
    base: String,
    service_sid: String,
    token: Arc<RwLock<String>>,
}

impl Rest {
    pub fn new(http: reqwest::Client, base: String, service_sid: String, token: Arc<RwLock<String>>) -> Self {
        Rest { http, base, service_sid, token }
    }

    pub fn service(&self) -> &str {
        &self.service_sid
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `/api/v1/services/{service}{path}` as a full URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1/services/{}{path}", self.base, self.service_sid)
    }

    fn token(&self) -> String {
        self.token.read().map(|t| t.clone()).unwrap_or_default()
    }

    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        if_match: Option<u64>,
    ) -> Result<T> {
        self.send_url(method, &self.url(path), body, if_match).await
    }

    pub async fn send_url<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&B>,
        if_match: Option<u64>,
    ) -> Result<T> {
        Self::decode(url, self.request(method, url, body, if_match, false).await?).await
    }

    /// A creation asked with `Prefer: return=minimal`: its answer is what the server chose (a
    /// message's SID, an item's index), not the data sent back.
    pub async fn create_minimal<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let url = self.url(path);
        Self::decode(&url, self.request(Method::POST, &url, Some(body), None, true).await?).await
    }

    async fn decode<T: DeserializeOwned>(url: &str, response: reqwest::Response) -> Result<T> {
        let bytes = response.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(format!("{e} in {url}")))
    }

    /// A request whose answer has no body (`204`).
    pub async fn send_empty(&self, method: Method, path: &str, if_match: Option<u64>) -> Result<()> {
        self.request::<()>(method, &self.url(path), None, if_match, false).await.map(drop)
    }

    /// A write whose caller keeps the data it sent: asked with `Prefer: return=minimal`, the
    /// answer is the new revision in `ETag`, not the data sent back.
    pub async fn send_minimal<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        if_match: Option<u64>,
    ) -> Result<u64> {
        let url = self.url(path);
        let response = self.request(method, &url, Some(body), if_match, true).await?;
        let etag = response.headers().get(header::ETAG).and_then(|v| v.to_str().ok()).unwrap_or_default();
        revision_of_etag(etag)
            .ok_or_else(|| ClientError::Decode(format!("the ETag '{etag}' of {url} is not a revision")))
    }

    async fn request<B: Serialize>(
        &self,
        method: Method,
        url: &str,
        body: Option<&B>,
        if_match: Option<u64>,
        minimal: bool,
    ) -> Result<reqwest::Response> {
        let mut req = self.http.request(method, url).bearer_auth(self.token());
        if let Some(rev) = if_match {
            req = req.header(header::IF_MATCH, format!("\"{rev}\""));
        }
        if minimal {
            req = req.header("prefer", "return=minimal");
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let response = req.send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::api(body),
            Err(_) => ClientError::refused(status, 0, text),
        })
    }
}
