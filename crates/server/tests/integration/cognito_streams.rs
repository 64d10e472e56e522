//! Cognito Streams to a webhook (a pool whose StreamName is a URL): one signed record per
//! synchronization in order, a deleted dataset as `remove`, delivery that survives a receiver
//! failing and a server restart, a stream turned off and on again starting afresh, and a bulk
//! publish the stream refuses ending FAILED with the reason.

use super::common::{Settings, TestServer};
use axum::http::{HeaderMap, StatusCode};
use ferrosync_core::Engine;
use ferrosync_core::auth::Principal;
use ferrosync_core::cognito::{
    BulkPublishStatus, CognitoStreams, IdentityPoolSpec, PatchOp, RecordPatch, StreamingStatus,
};
use ferrosync_core::engine::{ListRecordsRequest, UpdateRecordsRequest};
use ferrosync_server::logfeed::{LeaseSettings, RetryPolicy};
use ferrosync_server::push::webhook::signature;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

fn fast() -> Settings {
    let mut settings = Settings {
        leases: LeaseSettings { recheck: Duration::from_millis(100), lease: Duration::from_secs(3) },
        ..Default::default()
    };
    settings.cognito.retry =
        RetryPolicy { attempts: 50, first_retry: Duration::from_millis(50), max_retry: Duration::from_millis(200) };
    settings
}

/// A record accepted: parsed, as sent, and its signature header.
type Accepted = (Value, Vec<u8>, String);

/// The stream's receiving end: keeps the bodies it accepted with their signatures.
#[derive(Clone, Default)]
struct Receiver {
    accepted: Arc<Mutex<Vec<Accepted>>>,
    failing: Arc<AtomicBool>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let state = r.clone();
        let app = axum::Router::new().route(
            "/stream",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let r = state.clone();
                async move {
                    if r.failing.load(Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let signed = headers.get("x-ferrosync-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let record = serde_json::from_slice(&body).expect("a JSON record");
                    r.accepted.lock().unwrap().push((record, body.to_vec(), signed.to_owned()));
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/stream", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, url)
    }

    async fn records(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got: Vec<Value> = self.accepted.lock().unwrap().iter().map(|(r, _, _)| r.clone()).collect();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{} of {n} records after {WAIT:?}: {got:#?}", got.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn set_stream(e: &Engine, pool: &str, stream: &str, status: StreamingStatus) {
    let streams = CognitoStreams { stream_name: Some(stream.to_owned()), role_arn: None, streaming_status: status };
    e.set_identity_pool_configuration(&Principal::Root, pool, None, Some(streams)).await.expect("streams set");
}

/// One synchronization: ListRecords, then UpdateRecords of `key` = `value`.
async fn sync(e: &Engine, pool: &str, id: &str, dataset: &str, key: &str, value: Option<&str>) -> u64 {
    let root = Principal::Root;
    let listed = e.list_records(&root, pool, id, dataset, ListRecordsRequest::default()).await.expect("listed");
    let current = listed.records.iter().find(|r| r.key == key).map_or(0, |r| r.sync_count);
    let patch = RecordPatch {
        op: if value.is_some() { PatchOp::Replace } else { PatchOp::Remove },
        key: key.to_owned(),
        value: value.map(str::to_owned),
        sync_count: current,
        device_last_modified: None,
    };
    let req = UpdateRecordsRequest {
        sync_session_token: listed.sync_session_token,
        device_id: Some("device-1".into()),
        patches: vec![patch],
    };
    e.update_records(&root, pool, id, dataset, req).await.expect("written").dataset_sync_count
}

#[tokio::test]
async fn stream_records_reach_a_webhook_in_order_through_failures_and_restarts() {
    let Some(s) = TestServer::with_settings(fast()).await else { return };
    let (receiver, url) = Receiver::start().await;
    let spec =
        IdentityPoolSpec { name: "streams".into(), allow_unauthenticated_identities: true, ..Default::default() };
    let pool = s.engine.create_identity_pool(&Principal::Root, spec).await.expect("pool").id;
    let id = s.engine.get_id(&pool, &BTreeMap::new()).await.expect("identity");
    sync(&s.engine, &pool, &id, "before", "k", Some("not published")).await;
    set_stream(&s.engine, &pool, &url, StreamingStatus::Enabled).await;

    assert_eq!(sync(&s.engine, &pool, &id, "prefs", "theme", Some("dark")).await, 1);
    assert_eq!(sync(&s.engine, &pool, &id, "prefs", "theme", None).await, 2);
    let records = receiver.records(2).await;
    assert_eq!(records.len(), 2, "history before streams were on is bulk publish's: {records:#?}");
    assert_eq!((records[0]["dataSetName"].as_str(), records[0]["syncCount"].as_u64()), (Some("prefs"), Some(1)));
    assert_eq!(records[0]["kinesisSyncRecords"][0]["value"], "dark");
    let removed = &records[1]["kinesisSyncRecords"][0];
    assert_eq!((removed["op"].as_str(), removed.get("value")), (Some("remove"), None), "{removed}");
    for (_, body, signed) in receiver.accepted.lock().unwrap().iter() {
        assert_eq!(signed, &signature(&s.auth_token, body), "signed with the account's auth token");
    }

    // The receiver fails; the write is acknowledged all the same, and the server restarts
    // before the record gets through: it is delivered after the restart, once.
    receiver.failing.store(true, Ordering::SeqCst);
    assert_eq!(sync(&s.engine, &pool, &id, "prefs", "font", Some("serif")).await, 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = s.restart(fast(), async |_| {}).await;
    receiver.failing.store(false, Ordering::SeqCst);
    let records = receiver.records(3).await;
    assert_eq!(records[2]["syncCount"], 3);
    assert_eq!(records[2]["kinesisSyncRecords"][0]["key"], "font");

    // A deleted dataset is one `remove` record with the count it was deleted at.
    s.engine.delete_dataset(&Principal::Root, &pool, &id, "prefs").await.expect("deleted");
    let records = receiver.records(4).await;
    assert_eq!((records[3]["operation"].as_str(), records[3]["syncCount"].as_u64()), (Some("remove"), Some(3)));
    assert_eq!(records[3]["kinesisSyncRecords"], serde_json::json!([]));

    // Streams off: syncs are not published, and on again publishing resumes from then.
    set_stream(&s.engine, &pool, &url, StreamingStatus::Disabled).await;
    assert_eq!(sync(&s.engine, &pool, &id, "game", "level", Some("1")).await, 1);
    set_stream(&s.engine, &pool, &url, StreamingStatus::Enabled).await;
    assert_eq!(sync(&s.engine, &pool, &id, "game", "level", Some("2")).await, 2);
    let records = receiver.records(5).await;
    assert_eq!((records[4]["dataSetName"].as_str(), records[4]["syncCount"].as_u64()), (Some("game"), Some(2)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.accepted.lock().unwrap().len(), 5, "nothing published twice or while off");
}

#[tokio::test]
async fn a_bulk_publish_the_stream_refuses_ends_failed_with_the_reason() {
    let mut settings = fast();
    settings.cognito.retry =
        RetryPolicy { attempts: 2, first_retry: Duration::from_millis(20), max_retry: Duration::from_millis(20) };
    let Some(s) = TestServer::with_settings(settings).await else { return };
    let (receiver, url) = Receiver::start().await;
    receiver.failing.store(true, Ordering::SeqCst);
    let spec = IdentityPoolSpec { name: "bulk".into(), allow_unauthenticated_identities: true, ..Default::default() };
    let pool = s.engine.create_identity_pool(&Principal::Root, spec).await.expect("pool").id;
    let id = s.engine.get_id(&pool, &BTreeMap::new()).await.expect("identity");
    sync(&s.engine, &pool, &id, "prefs", "theme", Some("dark")).await;
    set_stream(&s.engine, &pool, &url, StreamingStatus::Enabled).await;

    let started = s.engine.bulk_publish(&Principal::Root, &pool).await.expect("started");
    assert_eq!(started.status, BulkPublishStatus::InProgress);
    let deadline = Instant::now() + WAIT;
    let details = loop {
        let d = s.engine.bulk_publish_details(&Principal::Root, &pool).await.expect("details");
        if d.status != BulkPublishStatus::InProgress {
            break d;
        }
        assert!(Instant::now() < deadline, "still in progress after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(details.status, BulkPublishStatus::Failed);
    let reason = details.failure_message.unwrap_or_default();
    assert!(reason.contains("prefs") && reason.contains("503"), "names the dataset and the answer: {reason}");
    assert!(details.complete_time.is_some());

    // A failed bulk publish may be retried at once; with the stream back it succeeds.
    receiver.failing.store(false, Ordering::SeqCst);
    s.engine.bulk_publish(&Principal::Root, &pool).await.expect("retried");
    let records = receiver.records(1).await;
    assert_eq!((records[0]["dataSetName"].as_str(), records[0]["syncCount"].as_u64()), (Some("prefs"), Some(1)));
    let deadline = Instant::now() + WAIT;
    while s.engine.bulk_publish_details(&Principal::Root, &pool).await.expect("details").status
        != BulkPublishStatus::Succeeded
    {
        assert!(Instant::now() < deadline, "not SUCCEEDED after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
