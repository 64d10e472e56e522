//! The Cognito Sync workload: identities synchronizing as the Mobile SDKs do — ListRecords
//! (since the last sync count) then UpdateRecords with its session token — every request
//! SigV4-signed with developer credentials. A round trip is both calls.

use anyhow::{Context, bail};
use ferrosync_server::api::aws::sigv4::{ClientCredentials, Signer, sign_request};
use hdrhistogram::Histogram;
use reqwest::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Signs and sends Cognito requests with the account's credentials.
#[derive(Clone)]
struct Aws {
    http: reqwest::Client,
    base: String,
    host: String,
    credentials: ClientCredentials,
}

impl Aws {
    /// One signed call; `path` carries its query. `target` is awsJson's `X-Amz-Target`.
    async fn call(
        &self,
        method: reqwest::Method,
        service: &str,
        path: &str,
        target: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let body = body.map(|b| serde_json::to_vec(&b)).transpose()?.unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(&self.host)?);
        if let Some(target) = target {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
            headers.insert("x-amz-target", HeaderValue::from_str(target)?);
        } else if !body.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let signer = Signer { service, region: "us-east-1", credentials: &self.credentials };
        sign_request(signer, method.as_str(), path, &mut headers, &body, time::OffsetDateTime::now_utc());
        let r = self.http.request(method, format!("{}{path}", self.base)).headers(headers).body(body).send().await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{service} {path}: {status} {v}");
        }
        Ok(v)
    }

    async fn identity(&self, operation: &str, body: Value) -> anyhow::Result<Value> {
        let target = format!("AWSCognitoIdentityService.{operation}");
        self.call(reqwest::Method::POST, "cognito-identity", "/", Some(&target), Some(body)).await
    }
}

/// `clients` identities syncing for `seconds`: round trips per second and their latency.
pub async fn syncs(
    base: &str,
    sid: &str,
    token: &str,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(f64, Histogram<u64>)> {
    let url = reqwest::Url::parse(base)?;
    let host = format!("{}:{}", url.host_str().context("host")?, url.port_or_known_default().context("port")?);
    let aws = Aws {
        http: super::target::http_client(base.starts_with("https://"))?,
        base: base.trim_end_matches('/').to_owned(),
        host,
        credentials: ClientCredentials {
            access_key_id: sid.to_owned(),
            secret_access_key: token.to_owned(),
            session_token: None,
        },
    };
    let pool = aws
        .identity("CreateIdentityPool", json!({ "IdentityPoolName": "bench", "AllowUnauthenticatedIdentities": true }))
        .await?;
    let pool = pool["IdentityPoolId"].as_str().context("pool id")?.to_owned();
    let mut identities = Vec::with_capacity(clients);
    for _ in 0..clients {
        let id = aws.identity("GetId", json!({ "IdentityPoolId": pool })).await?;
        identities.push(id["IdentityId"].as_str().context("identity id")?.to_owned());
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(clients);
    for id in identities {
        let (aws, pool) = (aws.clone(), pool.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = super::histogram();
            // Identity ids hold `:`, sent encoded as the SDKs send them.
            let path = format!(
                "/identitypools/{}/identities/{}/datasets/bench",
                pool.replace(':', "%3A"),
                id.replace(':', "%3A")
            );
            let (mut last, mut n) = (0u64, 0u64);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let list = format!("{path}/records?lastSyncCount={last}");
                let listed = aws.call(reqwest::Method::GET, "cognito-sync", &list, None, None).await?;
                let session = listed["SyncSessionToken"].as_str().context("session token")?;
                let patch = json!({ "Op": "replace", "Key": "n", "Value": n.to_string(), "SyncCount": last });
                let body = json!({ "SyncSessionToken": session, "DeviceId": "bench", "RecordPatches": [patch] });
                let written = aws.call(reqwest::Method::POST, "cognito-sync", &path, None, Some(body)).await?;
                last = written["Records"][0]["SyncCount"].as_u64().context("sync count")?;
                let _ = hist.record(t0.elapsed().as_micros() as u64);
                n += 1;
            }
            Ok::<_, anyhow::Error>((n, hist))
        }));
    }
    let mut total = 0;
    let mut hist = super::histogram();
    for task in tasks {
        let (n, h) = task.await??;
        total += n;
        hist.add(h)?;
    }
    Ok((total as f64 / started.elapsed().as_secs_f64(), hist))
}
