//! Cognito Identity and Cognito Sync, driven through the engine over each store: the sync-count
//! guarantees the Mobile SDKs' `synchronize` relies on (SEMANTICS.md §2 and §6 (a)–(g)),
//! tombstones, conflicts, session tokens, limits, deletion and merges, identities, credentials
//! and OpenID tokens, push devices, bulk publish and usage.

use ferrosync_core::auth::{Principal, RootCredentials, SecretBox};
use ferrosync_core::cognito::{
    BulkPublishStatus, COGNITO_PROVIDER, CognitoStreams, IdentityPool, IdentityPoolSpec, Login, OpenIdClaims, PatchOp,
    PushSync, RecordPatch, StreamingStatus, dataset_map_name,
};
use ferrosync_core::engine::{ListRecordsRequest, UpdateRecordsRequest, UpdatedRecords};
use ferrosync_core::error::{CoreError, NotFoundKind};
use ferrosync_core::model::{ObjectKind, ObjectRef};
use ferrosync_core::page::{Cursor, Order, PageRequest};
use ferrosync_core::store::{Store, consumers};
use ferrosync_core::{Engine, Limits};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

mod identities;
mod restore;
mod sync;

pub(super) async fn run_all<F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    identities::identity_pools_round_trip(make().await).await;
    identities::unauthenticated_identities_follow_the_pool(make().await).await;
    identities::logins_link_and_merge_identities(make().await).await;
    identities::developer_identities_link_look_up_merge_and_unlink(make().await).await;
    identities::identities_are_listed_described_and_deleted(make().await).await;
    identities::temporary_credentials_round_trip(make().await).await;
    identities::openid_tokens_verify_with_the_published_keys(make().await).await;
    sync::sync_counts_go_up_by_one_per_update(make().await).await;
    sync::a_whole_dataset_fits_one_page(make().await).await;
    sync::a_stale_sync_count_refuses_the_whole_batch(make().await).await;
    sync::concurrent_updates_of_one_record_have_one_winner(make().await).await;
    sync::removes_leave_tombstones(make().await).await;
    sync::session_tokens_are_bound_to_their_dataset(make().await).await;
    sync::limits_refuse_without_writing(make().await).await;
    sync::deleted_datasets_report_their_deletion(make().await).await;
    sync::identities_reach_only_their_own_data(make().await).await;
    sync::push_devices_and_subscriptions(make().await).await;
    sync::sync_configuration_and_bulk_publish(make().await).await;
    sync::publishing_cursors_follow_the_pool_configuration(make().await).await;
    sync::usage_counts_sessions_and_storage(make().await).await;
    sync::records_are_map_items_in_the_change_log(make().await).await;
    sync::removing_a_pool_removes_everything_of_it(make().await).await;
    restore::restored_pools_keep_identities_sync_counts_and_devices(make().await, make().await).await;
}

pub(super) fn engine(store: Arc<dyn Store>, limits: Limits) -> Engine {
    let secrets = SecretBox::from_hex(&SecretBox::generate_key_hex()).expect("master key");
    Engine::new(store, limits, RootCredentials::generate(), secrets)
}

pub(super) fn default_engine(store: Arc<dyn Store>) -> Engine {
    engine(store, Limits::default())
}

pub(super) fn spec(name: &str) -> IdentityPoolSpec {
    IdentityPoolSpec {
        name: name.into(),
        allow_unauthenticated_identities: true,
        supported_login_providers: [
            ("graph.facebook.com".to_owned(), "fb-app".to_owned()),
            ("accounts.google.com".to_owned(), "google-app".to_owned()),
        ]
        .into(),
        developer_provider_name: Some("login.example.app".into()),
        ..Default::default()
    }
}

pub(super) async fn pool(engine: &Engine) -> IdentityPool {
    engine.create_identity_pool(&Principal::Root, spec("pool")).await.expect("pool created")
}

pub(super) fn logins(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(p, u)| (p.to_string(), u.to_string())).collect()
}

pub(super) async fn new_identity(engine: &Engine, pool: &IdentityPool) -> String {
    engine.get_id(&pool.id, &BTreeMap::new()).await.expect("unauthenticated identity")
}

pub(super) async fn identity_principal(engine: &Engine, identity: &str, with: &BTreeMap<String, String>) -> Principal {
    let creds = engine.credentials_for_identity(identity, with).await.expect("credentials");
    engine.aws_secret(&creds.access_key_id, Some(&creds.session_token)).await.expect("resolves").principal
}

pub(super) fn replace(key: &str, value: &str, sync_count: u64) -> RecordPatch {
    RecordPatch {
        op: PatchOp::Replace,
        key: key.into(),
        value: Some(value.into()),
        sync_count,
        device_last_modified: Some(ferrosync_core::Timestamp(1_700_000_000_000)),
    }
}

pub(super) fn remove(key: &str, sync_count: u64) -> RecordPatch {
    RecordPatch { op: PatchOp::Remove, key: key.into(), value: None, sync_count, device_last_modified: None }
}

pub(super) fn since(last: u64) -> ListRecordsRequest {
    ListRecordsRequest { last_sync_count: Some(last), ..Default::default() }
}

/// One client round: a ListRecords for the session token, then an UpdateRecords.
pub(super) async fn push(
    engine: &Engine,
    principal: &Principal,
    pool: &IdentityPool,
    identity: &str,
    dataset: &str,
    patches: Vec<RecordPatch>,
) -> Result<UpdatedRecords, CoreError> {
    let listed = engine
        .list_records(principal, &pool.id, identity, dataset, ListRecordsRequest::default())
        .await
        .expect("listed");
    let req = UpdateRecordsRequest { sync_session_token: listed.sync_session_token, device_id: None, patches };
    engine.update_records(principal, &pool.id, identity, dataset, req).await
}

pub(super) fn keys_and_counts(records: &[ferrosync_core::cognito::Record]) -> Vec<(String, Option<String>, u64)> {
    records.iter().map(|r| (r.key.clone(), r.value.clone(), r.sync_count)).collect()
}

// ----- identity pools --------------------------------------------------------------------------
