//! The Mobile SDK flow end to end with the official AWS SDKs for Rust — GetId,
//! GetCredentialsForIdentity, ListRecords, UpdateRecords, a conflict and its resolution — with
//! Cognito Streams publishing into kinesalite (a Kinesis API server, from npm, pinned in
//! `compat/kinesis/package-lock.json`), push sync reaching the other device through a push
//! provider, and a bulk publish.

use super::harness::{self, CompatServer};
use crate::common::Settings;
use aws_sdk_cognitoidentity as ci;
use aws_sdk_cognitosync as cs;
use base64::Engine as _;
use cs::error::ProvideErrorMetadata;
use cs::types::{BulkPublishStatus, CognitoStreams, Operation, Platform, PushSync, RecordPatch, StreamingStatus};
use ferrosync_server::api::aws::sigv4::{ClientCredentials, Signer, sign_request};
use ferrosync_server::logfeed::{LeaseSettings, RetryPolicy};
use ferrosync_server::push::webhook::signature;
use ferrosync_server::push::{ProviderConfig, WebhookConfig};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STREAM: &str = "cognito-sync-events";
const WAIT: Duration = Duration::from_secs(30);

/// kinesalite on 127.0.0.1, stopped when dropped.
struct Kinesalite {
    child: Child,
    port: u16,
}

impl Kinesalite {
    fn start() -> Kinesalite {
        let dir = harness::compat_dir().join("kinesis");
        harness::ensure_npm(&dir);
        let mut child = Command::new("node")
            .arg("serve.js")
            .arg("0")
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("node starts kinesalite");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("kinesalite prints its port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("kinesalite printed '{line}', not a port"));
        Kinesalite { child, port }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One Kinesis API call, signed as an SDK signs it.
    async fn call(&self, operation: &str, body: Value) -> Value {
        let body = serde_json::to_vec(&body).expect("json");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("host", format!("127.0.0.1:{}", self.port).parse().expect("host"));
        headers.insert("content-type", "application/x-amz-json-1.1".parse().expect("type"));
        headers.insert("x-amz-target", format!("Kinesis_20131202.{operation}").parse().expect("target"));
        let credentials = ClientCredentials {
            access_key_id: "AKIDKINESIS".into(),
            secret_access_key: "kinesis-secret".into(),
            session_token: None,
        };
        let now = time::OffsetDateTime::now_utc();
        sign_request(
            Signer { service: "kinesis", region: "us-east-1", credentials: &credentials },
            "POST",
            "/",
            &mut headers,
            &body,
            now,
        );
        let response =
            reqwest::Client::new().post(self.endpoint()).headers(headers).body(body).send().await.expect("kinesalite");
        let status = response.status();
        let text = response.text().await.expect("body");
        assert!(status.is_success(), "{operation}: {status} {text}");
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("json") }
    }

    /// Every record on the stream's one shard, decoded, waiting until there are `n`.
    async fn records(&self, n: usize) -> Vec<Value> {
        let shards = self.call("ListShards", json!({ "StreamName": STREAM })).await;
        let shard = shards["Shards"][0]["ShardId"].as_str().expect("a shard").to_owned();
        let deadline = Instant::now() + WAIT;
        loop {
            let iterator = self
                .call(
                    "GetShardIterator",
                    json!({ "StreamName": STREAM, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON" }),
                )
                .await;
            let got =
                self.call("GetRecords", json!({ "ShardIterator": iterator["ShardIterator"], "Limit": 100 })).await;
            let records: Vec<Value> = got["Records"]
                .as_array()
                .expect("records")
                .iter()
                .map(|r| {
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(r["Data"].as_str().expect("data"))
                        .expect("base64");
                    let mut record: Value = serde_json::from_slice(&data).expect("a JSON record");
                    record["_partitionKey"] = r["PartitionKey"].clone();
                    record
                })
                .collect();
            if records.len() >= n {
                return records;
            }
            assert!(Instant::now() < deadline, "{} of {n} stream records after {WAIT:?}: {records:#?}", records.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Kinesalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PUSH_SECRET: &str = "push-webhook-secret";

/// A push gateway: the webhook provider's receiver, keeping what it got.
#[derive(Clone, Default)]
struct Gateway {
    pushes: Arc<Mutex<Vec<Value>>>,
}

impl Gateway {
    async fn start() -> (Gateway, String) {
        let gateway = Gateway::default();
        let app = axum::Router::new()
            .route(
                "/push",
                axum::routing::post(
                    |axum::extract::State(g): axum::extract::State<Gateway>,
                     headers: axum::http::HeaderMap,
                     body: axum::body::Bytes| async move {
                        let signed = headers.get("x-ferrosync-signature").and_then(|v| v.to_str().ok());
                        assert_eq!(signed, Some(signature(PUSH_SECRET, &body).as_str()), "signed with the secret");
                        g.pushes.lock().expect("lock").push(serde_json::from_slice(&body).expect("json"));
                        axum::http::StatusCode::OK
                    },
                ),
            )
            .with_state(gateway.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/push", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (gateway, url)
    }

    /// The pushes of one sync count, once there are any (and a moment for more to arrive).
    async fn wait_for_sync(&self, sync_count: &str) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        let of_sync = || -> Vec<Value> {
            let pushes = self.pushes.lock().expect("lock");
            pushes.iter().filter(|p| p["data"]["syncCount"] == sync_count).cloned().collect()
        };
        while of_sync().is_empty() {
            assert!(Instant::now() < deadline, "no push of sync {sync_count} after {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        of_sync()
    }
}

fn settings(kinesis: &Kinesalite, push_url: &str) -> Settings {
    let mut settings = Settings {
        leases: LeaseSettings { recheck: Duration::from_millis(100), lease: Duration::from_secs(5) },
        ..Default::default()
    };
    settings.cognito.streams.kinesis_endpoint = kinesis.endpoint();
    settings.cognito.streams.access_key_id = Some("AKIDKINESIS".into());
    settings.cognito.streams.secret_access_key = Some("kinesis-secret".into());
    settings.cognito.push.providers.insert(
        "android".into(),
        ProviderConfig::Webhook(WebhookConfig { url: push_url.to_owned(), secret: Some(PUSH_SECRET.into()) }),
    );
    settings.cognito.retry =
        RetryPolicy { attempts: 3, first_retry: Duration::from_millis(100), max_retry: Duration::from_millis(300) };
    settings
}

fn identity_client(url: &str, credentials: Option<ci::config::Credentials>) -> ci::Client {
    let mut config = ci::Config::builder()
        .behavior_version(ci::config::BehaviorVersion::latest())
        .region(ci::config::Region::new("us-east-1"))
        .endpoint_url(url);
    if let Some(credentials) = credentials {
        config = config.credentials_provider(credentials);
    }
    ci::Client::from_conf(config.build())
}

fn sync_client(url: &str, key: &str, secret: &str, token: Option<String>) -> cs::Client {
    let config = cs::Config::builder()
        .behavior_version(cs::config::BehaviorVersion::latest())
        .region(cs::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(cs::config::Credentials::new(key, secret, token, None, "test"))
        .retry_config(cs::config::retry::RetryConfig::disabled())
        .build();
    cs::Client::from_conf(config)
}

fn replace(key: &str, value: &str, sync_count: i64) -> RecordPatch {
    RecordPatch::builder().op(Operation::Replace).key(key).value(value).sync_count(sync_count).build().expect("patch")
}

#[test]
fn the_mobile_sdk_flow_with_streams_and_bulk_publish() {
    if !harness::tool_available("node", "the Cognito Streams compat test")
        || !harness::tool_available("npm", "the Cognito Streams compat test")
    {
        return;
    }
    let kinesis = Kinesalite::start();
    let runtime = harness::runtime();
    runtime.block_on(async {
        kinesis.call("CreateStream", json!({ "StreamName": STREAM, "ShardCount": 1 })).await;
        let (gateway, push_url) = Gateway::start().await;
        let server = CompatServer::start_with(settings(&kinesis, &push_url)).await;
        let url = server.url();
        let (sid, token) = (server.server.account_sid.clone(), server.server.auth_token.clone());

        // The developer sets the pool up: unauthenticated identities, streams on.
        let developer = identity_client(&url, Some(ci::config::Credentials::new(&sid, &token, None, None, "dev")));
        let pool = developer
            .create_identity_pool()
            .identity_pool_name("flow")
            .allow_unauthenticated_identities(true)
            .send()
            .await
            .expect("pool")
            .identity_pool_id()
            .to_owned();
        let admin = sync_client(&url, &sid, &token, None);
        let streams = CognitoStreams::builder()
            .stream_name(STREAM)
            .role_arn("arn:aws:iam::123456789012:role/cognito-streams")
            .streaming_status(StreamingStatus::Enabled)
            .build();
        let push = PushSync::builder()
            .application_arns("arn:aws:sns:us-east-1:123456789012:app/GCM/android")
            .role_arn("arn:aws:iam::123456789012:role/cognito-push")
            .build();
        admin
            .set_identity_pool_configuration()
            .identity_pool_id(&pool)
            .cognito_streams(streams)
            .push_sync(push)
            .send()
            .await
            .expect("set");

        // The app: GetId and GetCredentialsForIdentity, unsigned, as the Mobile SDKs call them.
        let anonymous = identity_client(&url, None);
        let id = anonymous.get_id().identity_pool_id(&pool).send().await.expect("GetId").identity_id.expect("id");
        let creds = anonymous
            .get_credentials_for_identity()
            .identity_id(&id)
            .send()
            .await
            .expect("credentials")
            .credentials
            .expect("credentials");
        let app = sync_client(
            &url,
            creds.access_key_id().expect("key"),
            creds.secret_key().expect("secret"),
            creds.session_token().map(str::to_owned),
        );

        // Both devices register for push, as the Android SDK does at start.
        let mut devices = Vec::new();
        for token in ["fcm-token-a", "fcm-token-b"] {
            let registered = app
                .register_device()
                .identity_pool_id(&pool)
                .identity_id(&id)
                .platform(Platform::Gcm)
                .token(token)
                .send()
                .await
                .expect("RegisterDevice");
            devices.push(registered.device_id().expect("device id").to_owned());
        }
        let (device_a, device_b) = (devices[0].clone(), devices[1].clone());

        // Device A syncs a fresh dataset.
        let listed = app.list_records().identity_pool_id(&pool).identity_id(&id).dataset_name("game").send().await;
        let listed = listed.expect("ListRecords");
        assert_eq!(listed.dataset_sync_count(), Some(0));
        let written = app
            .update_records()
            .identity_pool_id(&pool)
            .identity_id(&id)
            .dataset_name("game")
            .device_id(&device_a)
            .sync_session_token(listed.sync_session_token().expect("token"))
            .record_patches(replace("level", "1", 0))
            .record_patches(replace("score", "10", 0))
            .send()
            .await
            .expect("UpdateRecords");
        assert!(written.records().iter().all(|r| r.sync_count() == Some(1)));
        // Once the dataset exists, both devices subscribe to it (the SDKs' subscribeAll).
        for device in [&device_a, &device_b] {
            app.subscribe_to_dataset()
                .identity_pool_id(&pool)
                .identity_id(&id)
                .dataset_name("game")
                .device_id(device)
                .send()
                .await
                .expect("SubscribeToDataset");
        }

        // Device B, still at sync count 0, conflicts; it pulls, resolves and pushes.
        let stale = app.list_records().identity_pool_id(&pool).identity_id(&id).dataset_name("game").send().await;
        let stale_token = stale.expect("ListRecords").sync_session_token().expect("token").to_owned();
        let conflict = app
            .update_records()
            .identity_pool_id(&pool)
            .identity_id(&id)
            .dataset_name("game")
            .device_id(&device_b)
            .sync_session_token(&stale_token)
            .record_patches(replace("level", "2", 0))
            .send()
            .await
            .expect_err("a stale sync count conflicts");
        assert_eq!(conflict.code(), Some("ResourceConflictException"), "{conflict:?}");
        let pulled = app
            .list_records()
            .identity_pool_id(&pool)
            .identity_id(&id)
            .dataset_name("game")
            .last_sync_count(0)
            .send()
            .await
            .expect("ListRecords");
        let server_level = pulled.records().iter().find(|r| r.key() == Some("level")).expect("level");
        assert_eq!((server_level.value(), server_level.sync_count()), (Some("1"), Some(1)));
        let resolved = app
            .update_records()
            .identity_pool_id(&pool)
            .identity_id(&id)
            .dataset_name("game")
            .device_id(&device_b)
            .sync_session_token(pulled.sync_session_token().expect("token"))
            .record_patches(replace("level", "2", 1))
            .send()
            .await
            .expect("the resolved write");
        assert_eq!(resolved.records()[0].sync_count(), Some(2));

        // Device B wrote, so device A alone is told, with the payload the Android SDK reads.
        // (Whether B heard of A's first sync depends on whether it had subscribed by the time
        // that push went out; a writer never hears of its own sync.)
        let pushes = gateway.wait_for_sync("2").await;
        assert_eq!(
            pushes,
            vec![json!({"platform": "GCM", "token": "fcm-token-a", "deviceId": device_a,
                "data": {"source": "cognito-sync", "identityPoolId": pool, "identityId": id,
                    "datasetName": "game", "syncCount": "2"}})]
        );
        let first = gateway.pushes.lock().expect("lock").clone();
        assert!(
            first.iter().all(|p| p["data"]["syncCount"] != "1" || p["deviceId"] == device_b.as_str()),
            "{first:#?}"
        );

        // One stream record per successful synchronization, in Cognito Streams' format.
        let records = kinesis.records(2).await;
        assert_eq!(records.len(), 2, "the refused write publishes nothing: {records:#?}");
        for (record, count) in records.iter().zip([1, 2]) {
            assert_eq!(record["identityPoolId"], pool.as_str());
            assert_eq!(record["identityId"], id.as_str());
            assert_eq!(record["dataSetName"], "game");
            assert_eq!(record["operation"], "replace");
            assert_eq!(record["payloadType"], "Inline");
            assert_eq!(record["syncCount"], count);
            assert_eq!(record["_partitionKey"], id.as_str(), "partitioned by identity");
            assert!(record["lastModifiedDate"].as_i64().is_some_and(|ms| ms > 1_600_000_000_000), "epoch ms");
        }
        let first: Vec<(&str, &str)> = records[0]["kinesisSyncRecords"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| (r["key"].as_str().unwrap_or(""), r["value"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(first, vec![("level", "1"), ("score", "10")]);
        let second = &records[1]["kinesisSyncRecords"][0];
        assert_eq!(
            (second["key"].as_str(), second["value"].as_str(), second["op"].as_str()),
            (Some("level"), Some("2"), Some("replace"))
        );
        assert_eq!(second["syncCount"], 2);

        // A bulk publish sends every dataset once more, then reports SUCCEEDED.
        admin.bulk_publish().identity_pool_id(&pool).send().await.expect("BulkPublish");
        let again = admin.bulk_publish().identity_pool_id(&pool).send().await;
        let code = again.as_ref().err().and_then(|e| e.code().map(str::to_owned));
        assert!(
            matches!(code.as_deref(), Some("DuplicateRequestException" | "AlreadyStreamedException")),
            "one bulk publish at a time, one per day: {again:?}"
        );
        let deadline = Instant::now() + WAIT;
        let details = loop {
            let d = admin.get_bulk_publish_details().identity_pool_id(&pool).send().await.expect("details");
            if d.bulk_publish_status() != Some(&BulkPublishStatus::InProgress) {
                break d;
            }
            assert!(Instant::now() < deadline, "the bulk publish still runs after {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(details.bulk_publish_status(), Some(&BulkPublishStatus::Succeeded), "{details:?}");
        assert!(details.bulk_publish_complete_time().is_some());
        let records = kinesis.records(3).await;
        let bulk = &records[2];
        assert_eq!((bulk["dataSetName"].as_str(), bulk["syncCount"].as_i64()), (Some("game"), Some(2)));
        let mut whole: Vec<(&str, &str)> = bulk["kinesisSyncRecords"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| (r["key"].as_str().unwrap_or(""), r["value"].as_str().unwrap_or("")))
            .collect();
        whole.sort();
        assert_eq!(whole, vec![("level", "2"), ("score", "10")], "the dataset as it stands");
        let again = admin.bulk_publish().identity_pool_id(&pool).send().await;
        assert_eq!(again.expect_err("within a day").code(), Some("AlreadyStreamedException"));
        let after = gateway.wait_for_sync("2").await;
        assert_eq!(after.len(), 1, "one push per sync and device, bulk publishes push nothing");

        server.stop().await;
    });
}
