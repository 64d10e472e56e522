//! Cognito Sync at the server root, driven by the official `aws-sdk-cognitosync`: every
//! operation, the Mobile SDKs' sync flow with its conflicts and tombstones, the model's
//! validation in AWS's words, identity isolation with temporary credentials, and datasets as
//! Maps of the pool's service. The signed wire is `cognito_sync_wire.rs`'s, the sync trigger
//! `cognito_trigger.rs`'s.

use super::common::TestServer;
use aws_sdk_cognitosync::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cognitosync::error::ProvideErrorMetadata;
use aws_sdk_cognitosync::operation::RequestId;
use aws_sdk_cognitosync::primitives::DateTime;
use aws_sdk_cognitosync::types::{
    BulkPublishStatus, CognitoStreams, Operation, Platform, PushSync, RecordPatch, StreamingStatus,
};
use ferrosync_core::auth::Principal;
use ferrosync_core::cognito::IdentityPoolSpec;
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) const DATASET: &str = "settings";

pub(super) fn client(s: &TestServer, key: &str, secret: &str, token: Option<String>) -> aws_sdk_cognitosync::Client {
    let config = aws_sdk_cognitosync::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(s.server.url())
        .credentials_provider(Credentials::new(key, secret, token, None, "test"))
        .build();
    aws_sdk_cognitosync::Client::from_conf(config)
}

/// A client with the account's developer credentials.
pub(super) fn developer(s: &TestServer) -> aws_sdk_cognitosync::Client {
    client(s, &s.account_sid, &s.auth_token, None)
}

/// A pool that allows unauthenticated identities, created through the engine.
pub(super) async fn pool(s: &TestServer) -> String {
    let spec =
        IdentityPoolSpec { name: "sync test".into(), allow_unauthenticated_identities: true, ..Default::default() };
    s.engine.create_identity_pool(&Principal::Root, spec).await.expect("pool").id
}

pub(super) async fn identity(s: &TestServer, pool: &str) -> String {
    s.engine.get_id(pool, &BTreeMap::new()).await.expect("identity")
}

/// A client holding an identity's temporary credentials (session token included).
pub(super) async fn as_identity(s: &TestServer, identity_id: &str) -> aws_sdk_cognitosync::Client {
    let c = s.engine.credentials_for_identity(identity_id, &BTreeMap::new()).await.expect("credentials");
    client(s, &c.access_key_id, &c.secret_key, Some(c.session_token))
}

pub(super) fn replace(key: &str, value: &str, sync_count: i64) -> RecordPatch {
    RecordPatch::builder().op(Operation::Replace).key(key).value(value).sync_count(sync_count).build().expect("patch")
}

fn remove(key: &str, sync_count: i64) -> RecordPatch {
    RecordPatch::builder().op(Operation::Remove).key(key).sync_count(sync_count).build().expect("patch")
}

/// The error code and message of a refused call.
pub(super) fn refused<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, E>,
) -> (String, String) {
    let e = result.expect_err("the call is refused");
    (e.code().unwrap_or_default().to_owned(), e.message().unwrap_or_default().to_owned())
}

/// ListRecords then UpdateRecords with its session token, as the SDKs push.
pub(super) async fn push(
    c: &aws_sdk_cognitosync::Client,
    pool: &str,
    id: &str,
    dataset: &str,
    patches: Vec<RecordPatch>,
) -> Result<
    aws_sdk_cognitosync::operation::update_records::UpdateRecordsOutput,
    aws_sdk_cognitosync::error::SdkError<aws_sdk_cognitosync::operation::update_records::UpdateRecordsError>,
> {
    let listed = c
        .list_records()
        .identity_pool_id(pool)
        .identity_id(id)
        .dataset_name(dataset)
        .send()
        .await
        .expect("list records");
    c.update_records()
        .identity_pool_id(pool)
        .identity_id(id)
        .dataset_name(dataset)
        .device_id("device-1")
        .sync_session_token(listed.sync_session_token().expect("token"))
        .set_record_patches(Some(patches))
        .send()
        .await
}

#[tokio::test]
async fn records_sync_as_the_mobile_sdks_sync_them() {
    let Some(s) = TestServer::start().await else { return };
    let (pool, id) = {
        let pool = pool(&s).await;
        let id = identity(&s, &pool).await;
        (pool, id)
    };
    let c = developer(&s);
    let list = |last: Option<i64>| {
        c.list_records().identity_pool_id(&pool).identity_id(&id).dataset_name(DATASET).set_last_sync_count(last).send()
    };

    // A dataset never written: no records, not an error, and a session to write it with.
    let first = list(None).await.expect("first pull");
    assert!(first.records().is_empty());
    assert_eq!((first.count(), first.dataset_sync_count(), first.dataset_exists()), (0, Some(0), false));
    assert!(!first.dataset_deleted_after_requested_sync_count());
    assert!(first.request_id().is_some_and(|r| !r.is_empty()), "x-amzn-RequestId on success");
    let token = first.sync_session_token().expect("session token").to_owned();

    // The first push: both records take the dataset's new sync count, 1.
    let written = c
        .update_records()
        .identity_pool_id(&pool)
        .identity_id(&id)
        .dataset_name(DATASET)
        .device_id("device-a")
        .client_context("eyJjbGllbnQiOnt9fQ==")
        .sync_session_token(&token)
        .record_patches(
            RecordPatch::builder()
                .op(Operation::Replace)
                .key("color")
                .value("blue")
                .sync_count(0)
                .device_last_modified_date(DateTime::from_millis(1_704_164_645_250))
                .build()
                .expect("patch"),
        )
        .record_patches(replace("size", "10", 0))
        .send()
        .await
        .expect("first push");
    let records = written.records();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.sync_count() == Some(1)));
    let color = records.iter().find(|r| r.key() == Some("color")).expect("color");
    assert_eq!(color.value(), Some("blue"));
    assert_eq!(color.last_modified_by(), Some("device-a"));
    assert_eq!(color.device_last_modified_date().map(|d| d.to_millis().expect("millis")), Some(1_704_164_645_250));
    assert!(color.last_modified_date().is_some());

    // Another device, still at sync count 0, pushes a change of `color`: refused whole.
    let stale = c
        .update_records()
        .identity_pool_id(&pool)
        .identity_id(&id)
        .dataset_name(DATASET)
        .device_id("device-b")
        .sync_session_token(&token)
        .record_patches(replace("color", "red", 0))
        .record_patches(replace("shape", "round", 0))
        .send()
        .await;
    assert_eq!(
        refused(stale),
        ("ResourceConflictException".to_owned(), "Current SyncCount for: color is: 1 not: 0".to_owned())
    );
    let after = list(None).await.expect("pull");
    assert_eq!(after.dataset_sync_count(), Some(1), "nothing was written");
    let keys: Vec<_> = after.records().iter().map(|r| (r.key().unwrap_or_default(), r.value())).collect();
    assert_eq!(keys, [("color", Some("blue")), ("size", Some("10"))]);

    // It resolves: pulls from its last count, then pushes against the count it now knows.
    let pulled = list(Some(0)).await.expect("pull since 0");
    assert_eq!(pulled.count(), 2);
    let resolved = c
        .update_records()
        .identity_pool_id(&pool)
        .identity_id(&id)
        .dataset_name(DATASET)
        .device_id("device-b")
        .sync_session_token(pulled.sync_session_token().expect("token"))
        .record_patches(replace("color", "red", 1))
        .send()
        .await
        .expect("resolved push");
    assert_eq!(resolved.records()[0].sync_count(), Some(2));

    // A removal leaves a tombstone: no Value, the new sync count, pulled by later counts only.
    push(&c, &pool, &id, DATASET, vec![remove("size", 1)]).await.expect("remove");
    let since_two = list(Some(2)).await.expect("pull since 2");
    assert_eq!(since_two.dataset_sync_count(), Some(3));
    assert_eq!(since_two.records().len(), 1);
    let tombstone = &since_two.records()[0];
    assert_eq!((tombstone.key(), tombstone.value(), tombstone.sync_count()), (Some("size"), None, Some(3)));
    let since_one = list(Some(1)).await.expect("pull since 1");
    let keys: Vec<_> = since_one.records().iter().map(|r| r.key().unwrap_or_default()).collect();
    assert_eq!(keys, ["color", "size"]);
    assert!(list(Some(3)).await.expect("pull at head").records().is_empty());

    // DescribeDataset counts live records only.
    let described = c
        .describe_dataset()
        .identity_pool_id(&pool)
        .identity_id(&id)
        .dataset_name(DATASET)
        .send()
        .await
        .expect("describe");
    let dataset = described.dataset().expect("dataset");
    assert_eq!((dataset.dataset_name(), dataset.identity_id()), (Some(DATASET), Some(id.as_str())));
    assert_eq!((dataset.num_records(), dataset.data_storage()), (Some(1), Some(("color".len() + "red".len()) as i64)));
    assert!(dataset.creation_date().is_some() && dataset.last_modified_date().is_some());

    // ListDatasets, one page at a time.
    push(&c, &pool, &id, "other", vec![replace("k", "v", 0)]).await.expect("second dataset");
    let page = c.list_datasets().identity_pool_id(&pool).identity_id(&id).max_results(1).send().await.expect("page");
    assert_eq!((page.count(), page.datasets()[0].dataset_name()), (1, Some("other")));
    let rest = c
        .list_datasets()
        .identity_pool_id(&pool)
        .identity_id(&id)
        .max_results(1)
        .next_token(page.next_token().expect("more"))
        .send()
        .await
        .expect("second page");
    assert_eq!(rest.datasets()[0].dataset_name(), Some(DATASET));

    // Deleted: a client that synced it must drop its copy; a fresh client sees nothing.
    let deleted =
        c.delete_dataset().identity_pool_id(&pool).identity_id(&id).dataset_name(DATASET).send().await.expect("delete");
    assert_eq!(deleted.dataset().and_then(|d| d.dataset_name()), Some(DATASET));
    let synced_before = list(Some(3)).await.expect("pull after delete");
    assert!(synced_before.dataset_deleted_after_requested_sync_count());
    assert!(!synced_before.dataset_exists());
    assert!(synced_before.records().is_empty());
    assert!(!list(None).await.expect("fresh pull").dataset_deleted_after_requested_sync_count());
    let gone = c.describe_dataset().identity_pool_id(&pool).identity_id(&id).dataset_name(DATASET).send().await;
    assert_eq!(refused(gone).0, "ResourceNotFoundException");
    let listed = c.list_datasets().identity_pool_id(&pool).identity_id(&id).send().await.expect("list");
    let names: Vec<_> = listed.datasets().iter().map(|d| d.dataset_name().unwrap_or_default()).collect();
    assert_eq!(names, ["other"]);

    // A session token is bound to its dataset.
    let wrong = c
        .update_records()
        .identity_pool_id(&pool)
        .identity_id(&id)
        .dataset_name("other")
        .sync_session_token(&token)
        .record_patches(replace("k", "w", 1))
        .send()
        .await;
    assert_eq!(
        refused(wrong),
        ("InvalidParameterException".to_owned(), "SyncSessionToken not valid for these inputs".to_owned())
    );
}

#[tokio::test]
async fn usage_of_pools_and_identities() {
    let Some(s) = TestServer::start().await else { return };
    let pool = pool(&s).await;
    let id = identity(&s, &pool).await;
    let c = developer(&s);
    push(&c, &pool, &id, DATASET, vec![replace("a", "bc", 0)]).await.expect("push");

    let usage = c.describe_identity_usage().identity_pool_id(&pool).identity_id(&id).send().await.expect("usage");
    let usage = usage.identity_usage().expect("identity usage");
    assert_eq!((usage.identity_id(), usage.identity_pool_id()), (Some(id.as_str()), Some(pool.as_str())));
    assert_eq!((usage.dataset_count(), usage.data_storage()), (1, Some(3)));
    assert!(usage.last_modified_date().is_some());

    let pool_usage = c.describe_identity_pool_usage().identity_pool_id(&pool).send().await.expect("pool usage");
    let pool_usage = pool_usage.identity_pool_usage().expect("usage");
    assert_eq!(pool_usage.identity_pool_id(), Some(pool.as_str()));
    assert_eq!((pool_usage.sync_sessions_count(), pool_usage.data_storage()), (Some(1), Some(3)));

    let second = self::pool(&s).await;
    let listed = c.list_identity_pool_usage().max_results(1).send().await.expect("list usage");
    assert_eq!((listed.count(), listed.max_results(), listed.identity_pool_usages().len()), (1, 1, 1));
    let rest = c
        .list_identity_pool_usage()
        .max_results(1)
        .next_token(listed.next_token().expect("next"))
        .send()
        .await
        .expect("next page");
    let mut ids: Vec<String> = listed
        .identity_pool_usages()
        .iter()
        .chain(rest.identity_pool_usages())
        .filter_map(|u| u.identity_pool_id().map(str::to_owned))
        .collect();
    ids.sort();
    let mut expected = vec![pool.clone(), second];
    expected.sort();
    assert_eq!(ids, expected);

    let unknown = c
        .describe_identity_usage()
        .identity_pool_id(&pool)
        .identity_id("us-east-1:00000000-0000-0000-0000-000000000000")
        .send()
        .await;
    assert_eq!(refused(unknown).0, "ResourceNotFoundException");
    let no_pool =
        c.describe_identity_pool_usage().identity_pool_id("us-east-1:00000000-0000-0000-0000-000000000000").send();
    assert_eq!(refused(no_pool.await).0, "ResourceNotFoundException");
}

#[tokio::test]
async fn pool_configuration_events_and_bulk_publish_are_stored() {
    let Some(s) = TestServer::start().await else { return };
    let pool = pool(&s).await;
    let c = developer(&s);

    let empty = c.get_identity_pool_configuration().identity_pool_id(&pool).send().await.expect("configuration");
    assert_eq!(empty.identity_pool_id(), Some(pool.as_str()));
    assert!(empty.push_sync().is_none() && empty.cognito_streams().is_none());

    // Bulk publish needs streams.
    let unconfigured = c.bulk_publish().identity_pool_id(&pool).send().await;
    assert_eq!(refused(unconfigured).0, "InvalidConfigurationException");

    let app = "arn:aws:sns:us-east-1:123456789012:app/GCM/my-app";
    let role = "arn:aws:iam::123456789012:role/cognito-sync";
    let set = c
        .set_identity_pool_configuration()
        .identity_pool_id(&pool)
        .push_sync(PushSync::builder().application_arns(app).role_arn(role).build())
        .cognito_streams(
            CognitoStreams::builder()
                .stream_name("sync-stream")
                .role_arn(role)
                .streaming_status(StreamingStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("set configuration");
    assert_eq!(set.push_sync().map(|p| p.application_arns().to_vec()), Some(vec![app.to_owned()]));
    let got = c.get_identity_pool_configuration().identity_pool_id(&pool).send().await.expect("configuration");
    assert_eq!(got.push_sync().and_then(|p| p.role_arn()), Some(role));
    let streams = got.cognito_streams().expect("streams");
    assert_eq!(
        (streams.stream_name(), streams.role_arn(), streams.streaming_status()),
        (Some("sync-stream"), Some(role), Some(&StreamingStatus::Enabled))
    );

    // Cognito events: set, read, cleared by an empty target.
    assert!(
        c.get_cognito_events()
            .identity_pool_id(&pool)
            .send()
            .await
            .expect("events")
            .events()
            .is_none_or(|e| e.is_empty())
    );
    let lambda = "arn:aws:lambda:us-east-1:123456789012:function:f";
    c.set_cognito_events().identity_pool_id(&pool).events("SyncTrigger", lambda).send().await.expect("set events");
    let events = c.get_cognito_events().identity_pool_id(&pool).send().await.expect("events");
    assert_eq!(events.events().and_then(|e| e.get("SyncTrigger")).map(String::as_str), Some(lambda));
    c.set_cognito_events().identity_pool_id(&pool).events("SyncTrigger", "").send().await.expect("clear events");
    let events = c.get_cognito_events().identity_pool_id(&pool).send().await.expect("events");
    assert!(events.events().is_none_or(|e| e.is_empty()));
    let unknown_event = c.set_cognito_events().identity_pool_id(&pool).events("OnLogin", lambda).send().await;
    assert_eq!(refused(unknown_event).0, "InvalidParameterException");

    // Bulk publish: not started, running (a second is a duplicate), then done (too soon again).
    let details = c.get_bulk_publish_details().identity_pool_id(&pool).send().await.expect("details");
    assert_eq!(details.bulk_publish_status(), Some(&BulkPublishStatus::NotStarted));
    assert!(details.bulk_publish_start_time().is_none());
    let started = c.bulk_publish().identity_pool_id(&pool).send().await.expect("bulk publish");
    assert_eq!(started.identity_pool_id(), Some(pool.as_str()));
    let details = c.get_bulk_publish_details().identity_pool_id(&pool).send().await.expect("details");
    assert_eq!(details.bulk_publish_status(), Some(&BulkPublishStatus::InProgress));
    assert!(details.bulk_publish_start_time().is_some() && details.bulk_publish_complete_time().is_none());
    assert_eq!(refused(c.bulk_publish().identity_pool_id(&pool).send().await).0, "DuplicateRequestException");
    s.engine.finish_bulk_publish(&Principal::Root, &pool, None).await.expect("finish");
    let details = c.get_bulk_publish_details().identity_pool_id(&pool).send().await.expect("details");
    assert_eq!(details.bulk_publish_status(), Some(&BulkPublishStatus::Succeeded));
    assert!(details.bulk_publish_complete_time().is_some());
    assert_eq!(refused(c.bulk_publish().identity_pool_id(&pool).send().await).0, "AlreadyStreamedException");

    let missing = c.get_identity_pool_configuration().identity_pool_id("us-east-1:0000000000").send().await;
    assert_eq!(refused(missing).0, "ResourceNotFoundException");
}

#[tokio::test]
async fn push_sync_devices_and_subscriptions_take_identity_credentials() {
    let Some(s) = TestServer::start().await else { return };
    let pool = pool(&s).await;
    let id = identity(&s, &pool).await;
    let dev = developer(&s);
    let me = as_identity(&s, &id).await;
    let register = |c: &aws_sdk_cognitosync::Client| {
        c.register_device().identity_pool_id(&pool).identity_id(&id).platform(Platform::Gcm).token("push-token").send()
    };

    assert_eq!(refused(register(&me).await).0, "InvalidConfigurationException", "push sync is not configured");
    dev.set_identity_pool_configuration()
        .identity_pool_id(&pool)
        .push_sync(PushSync::builder().application_arns("arn:aws:sns:us-east-1:123456789012:app/GCM/my-app").build())
        .send()
        .await
        .expect("configure push");
    let (code, message) = refused(register(&dev).await);
    assert_eq!(code, "NotAuthorizedException", "developer credentials cannot register: {message}");
    let device = register(&me).await.expect("register").device_id().expect("device id").to_owned();
    assert_eq!(register(&me).await.expect("again").device_id(), Some(device.as_str()), "the same device");

    push(&me, &pool, &id, DATASET, vec![replace("k", "v", 0)]).await.expect("write the dataset first");
    let subscribe = |c: &aws_sdk_cognitosync::Client| {
        c.subscribe_to_dataset()
            .identity_pool_id(&pool)
            .identity_id(&id)
            .dataset_name(DATASET)
            .device_id(&device)
            .send()
    };
    assert_eq!(refused(subscribe(&dev).await).0, "NotAuthorizedException");
    subscribe(&me).await.expect("subscribe");
    me.unsubscribe_from_dataset()
        .identity_pool_id(&pool)
        .identity_id(&id)
        .dataset_name(DATASET)
        .device_id(&device)
        .send()
        .await
        .expect("unsubscribe");
    let unknown_dataset = me
        .subscribe_to_dataset()
        .identity_pool_id(&pool)
        .identity_id(&id)
        .dataset_name("never-written")
        .device_id(&device)
        .send()
        .await;
    assert_eq!(refused(unknown_dataset).0, "ResourceNotFoundException");
}

#[tokio::test]
async fn an_identity_reaches_its_own_data_only() {
    let Some(s) = TestServer::start().await else { return };
    let pool = pool(&s).await;
    let (mine, theirs) = (identity(&s, &pool).await, identity(&s, &pool).await);
    let me = as_identity(&s, &mine).await;
    let dev = developer(&s);

    push(&me, &pool, &mine, DATASET, vec![replace("score", "1", 0)]).await.expect("own dataset");
    push(&dev, &pool, &theirs, DATASET, vec![replace("score", "2", 0)]).await.expect("developer writes theirs");
    let own = me.list_records().identity_pool_id(&pool).identity_id(&mine).dataset_name(DATASET).send().await;
    assert_eq!(own.expect("own records").records()[0].value(), Some("1"));
    let listed = me.list_datasets().identity_pool_id(&pool).identity_id(&mine).send().await.expect("own datasets");
    assert_eq!(listed.count(), 1);
    me.describe_identity_usage().identity_pool_id(&pool).identity_id(&mine).send().await.expect("own usage");

    let other = me.list_records().identity_pool_id(&pool).identity_id(&theirs).dataset_name(DATASET).send().await;
    let (code, message) = refused(other);
    assert_eq!(code, "NotAuthorizedException");
    assert!(message.contains(&theirs), "{message}");
    let other = me.describe_dataset().identity_pool_id(&pool).identity_id(&theirs).dataset_name(DATASET).send().await;
    assert_eq!(refused(other).0, "NotAuthorizedException");
    let other = me.delete_dataset().identity_pool_id(&pool).identity_id(&theirs).dataset_name(DATASET).send().await;
    assert_eq!(refused(other).0, "NotAuthorizedException");
    let other = me.list_datasets().identity_pool_id(&pool).identity_id(&theirs).send().await;
    assert_eq!(refused(other).0, "NotAuthorizedException");
    // Developer-only operations refuse identity credentials.
    let usage = me.describe_identity_pool_usage().identity_pool_id(&pool).send().await;
    assert_eq!(refused(usage).0, "NotAuthorizedException");
    assert_eq!(refused(me.list_identity_pool_usage().send().await).0, "NotAuthorizedException");
    let config = me.get_identity_pool_configuration().identity_pool_id(&pool).send().await;
    assert_eq!(refused(config).0, "NotAuthorizedException");

    // Their record is untouched, and the developer still reaches both.
    let theirs_now = dev.list_records().identity_pool_id(&pool).identity_id(&theirs).dataset_name(DATASET).send().await;
    assert_eq!(theirs_now.expect("theirs").records()[0].value(), Some("2"));

    // A session token that does not belong to the access key is refused.
    let c = s.engine.credentials_for_identity(&mine, &BTreeMap::new()).await.expect("credentials");
    let other_creds = s.engine.credentials_for_identity(&theirs, &BTreeMap::new()).await.expect("credentials");
    let forged = client(&s, &c.access_key_id, &c.secret_key, Some(other_creds.session_token));
    let r = forged.list_datasets().identity_pool_id(&pool).identity_id(&mine).send().await;
    assert_eq!(refused(r).0, "UnrecognizedClientException");
}

#[tokio::test]
async fn the_model_s_constraints_are_enforced_in_aws_words() {
    let Some(s) = TestServer::start().await else { return };
    let pool = pool(&s).await;
    let id = identity(&s, &pool).await;
    let c = developer(&s);
    let list = |dataset: &str| c.list_records().identity_pool_id(&pool).identity_id(&id).dataset_name(dataset).send();

    let bad = refused(list("bad name!").await);
    assert_eq!(
        bad,
        (
            "InvalidParameterException".to_owned(),
            "1 validation error detected: Value 'bad name!' at 'datasetName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [a-zA-Z0-9_.:-]+"
                .to_owned()
        )
    );
    let long = "d".repeat(129);
    assert_eq!(
        refused(list(&long).await).1,
        format!(
            "1 validation error detected: Value '{long}' at 'datasetName' failed to satisfy constraint: \
             Member must have length less than or equal to 128"
        )
    );
    let upper = c.describe_identity_pool_usage().identity_pool_id("us-east-1:ABCDEF").send().await;
    assert_eq!(
        refused(upper).1,
        "1 validation error detected: Value 'us-east-1:ABCDEF' at 'identityPoolId' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [\\w-]+:[0-9a-f-]+"
    );

    // Enums the SDK passes through unchecked.
    let listed = list(DATASET).await.expect("list");
    let token = listed.sync_session_token().expect("token");
    let upsert =
        RecordPatch::builder().op(Operation::from("upsert")).key("k").value("v").sync_count(0).build().expect("patch");
    let r = c
        .update_records()
        .identity_pool_id(&pool)
        .identity_id(&id)
        .dataset_name(DATASET)
        .sync_session_token(token)
        .record_patches(upsert)
        .send()
        .await;
    assert_eq!(
        refused(r).1,
        "1 validation error detected: Value 'upsert' at 'recordPatches.1.member.op' failed to satisfy constraint: \
         Member must satisfy enum value set: [replace, remove]"
    );
    let long_key = "k".repeat(1025);
    let r = c
        .update_records()
        .identity_pool_id(&pool)
        .identity_id(&id)
        .dataset_name(DATASET)
        .sync_session_token(token)
        .record_patches(replace("ok", "v", 0))
        .record_patches(replace(&long_key, "v", 0))
        .send()
        .await;
    let (code, message) = refused(r);
    assert_eq!(code, "InvalidParameterException");
    assert!(
        message.starts_with("1 validation error detected: Value '")
            && message.ends_with(
                "at 'recordPatches.2.member.key' failed to satisfy constraint: Member must have length less than or equal to 1024"
            ),
        "{message}"
    );
    let r = c
        .register_device()
        .identity_pool_id(&pool)
        .identity_id(&id)
        .platform(Platform::from("WINDOWS_PHONE"))
        .token("t")
        .send()
        .await;
    assert_eq!(
        refused(r).1,
        "1 validation error detected: Value 'WINDOWS_PHONE' at 'platform' failed to satisfy constraint: \
         Member must satisfy enum value set: [APNS, APNS_SANDBOX, GCM, ADM]"
    );
    let r = c
        .set_identity_pool_configuration()
        .identity_pool_id(&pool)
        .push_sync(PushSync::builder().role_arn("arn:aws:iam::1:user/x").build())
        .send()
        .await;
    let (code, message) = refused(r);
    assert_eq!(code, "InvalidParameterException");
    assert!(message.contains("at 'pushSync.roleArn' failed to satisfy constraint"), "{message}");
    // Nothing was written by any refused call.
    assert!(!list(DATASET).await.expect("list").dataset_exists());
}

#[tokio::test]
async fn datasets_are_maps_of_the_pool_s_service_in_its_change_log() {
    let Some(s) = TestServer::start().await else { return };
    let pool = pool(&s).await;
    let id = identity(&s, &pool).await;
    let me = as_identity(&s, &id).await;
    let start = s.get(&format!("/services/{pool}/changes")).await.ok()["next"].as_str().expect("token").to_owned();

    push(&me, &pool, &id, DATASET, vec![replace("color", "blue", 0), replace("size", "10", 0)]).await.expect("push");
    push(&me, &pool, &id, DATASET, vec![remove("size", 1)]).await.expect("remove");

    let maps = s.get(&format!("/services/{pool}/maps")).await.ok();
    let map_name = format!("{id}/{DATASET}");
    let map = maps["items"]
        .as_array()
        .expect("maps")
        .iter()
        .find(|m| m["unique_name"] == map_name.as_str())
        .unwrap_or_else(|| panic!("the dataset's Map in {maps}"))
        .clone();
    let sid = map["sid"].as_str().expect("sid");
    let items = s.get(&format!("/services/{pool}/maps/{sid}/items")).await.ok();
    let items = items["items"].as_array().expect("items");
    let color = items.iter().find(|i| i["key"] == "color").expect("color item");
    assert_eq!(color["data"]["value"], "blue");
    assert_eq!(color["data"]["sync_count"], 1);
    let size = items.iter().find(|i| i["key"] == "size").expect("the tombstone is an item");
    assert_eq!((&size["data"]["value"], &size["data"]["sync_count"]), (&Value::Null, &serde_json::json!(2)));

    let changes = s.get(&format!("/services/{pool}/changes?since={start}")).await.ok();
    let events: Vec<(&str, &str)> = changes["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["object_sid"] == sid)
        .map(|e| (e["type"].as_str().unwrap_or_default(), e["item_key"].as_str().unwrap_or_default()))
        .collect();
    assert!(events.contains(&("map_item_added", "color")), "{changes}");
    assert!(events.contains(&("map_item_added", "size")), "{changes}");
    assert!(events.iter().any(|(kind, key)| *key == "size" && *kind != "map_item_added"), "{changes}");
}
