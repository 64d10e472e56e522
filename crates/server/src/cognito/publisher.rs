//! The Cognito consumers of a pool's change log: streams and push sync, and the bulk publisher.

use super::record::{Change, DatasetChange, StreamRecord, SyncRecord, group};
use super::sink::{SinkError, StreamSink};
use crate::logfeed::{self, Feeds, Follow, Lease, Leased, LogConsumer, Retried, RetryPolicy, Stop, with_retries};
use crate::push::{PushDevice, PushError, PushSender, SyncPush, provider_for};
use ferrosync_core::Engine;
use ferrosync_core::auth::Principal;
use ferrosync_core::cognito::{BulkPublishStatus, IdentityPool, Record};
use ferrosync_core::model::{ObjectKind, ObjectRef};
use ferrosync_core::page::{Cursor, Order, PageRequest};
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{StoreError, StoredEvent, consumers};
use std::sync::Arc;

/// Objects and items read at a time by a bulk publish.
const BULK_PAGE: u32 = 200;

/// What the Cognito consumers share.
pub struct Publisher {
    engine: Arc<Engine>,
    sink: StreamSink,
    retry: RetryPolicy,
    /// `None` when no push provider is configured.
    push: Option<Arc<PushSender>>,
}

/// Starts the streams publisher, the bulk publisher and push sync beside the server.
pub fn spawn(feeds: &Arc<Feeds>, settings: &super::CognitoSettings, push: Option<Arc<PushSender>>) {
    let retry = settings.retry.clone();
    let sink = match StreamSink::new(settings.streams.clone()) {
        Ok(sink) => sink,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Cognito Streams HTTP client; streams are not published");
            return;
        }
    };
    let publisher = Arc::new(Publisher { engine: feeds.engine().clone(), sink, retry, push });
    logfeed::spawn(feeds, Arc::new(Follow(Streams(publisher.clone()))));
    logfeed::spawn(feeds, Arc::new(Follow(Pushes(publisher.clone()))));
    logfeed::spawn(feeds, Arc::new(BulkPublish(publisher)));
}

impl Publisher {
    /// The pool whose datasets `service` holds (its unique name is the pool id).
    async fn pool_of(&self, service: &Sid) -> Result<Option<IdentityPool>, StoreError> {
        let store = self.engine.store();
        let Some(pool_id) = store.service(&ObjectRef::Sid(service.clone())).await?.and_then(|s| s.unique_name) else {
            return Ok(None);
        };
        store.identity_pool(&pool_id).await
    }

    /// Publishes `record` (in several parts when it is big) with retries; the error when it was
    /// given up, `None` when stopped first.
    async fn publish(
        &self,
        pool_id: &str,
        stream: &str,
        record: &StreamRecord,
        lease: &Lease,
    ) -> Option<Result<(), SinkError>> {
        for payload in record.to_payloads() {
            let attempt =
                || self.sink.publish(pool_id, stream, &record.identity_id, &payload, self.engine.webhook_signing_key());
            match with_retries(&self.retry, lease.stopped(), SinkError::is_retryable, attempt).await {
                Retried::Done => {}
                Retried::GaveUp(e) => return Some(Err(e)),
                Retried::Cancelled => return None,
            }
        }
        metrics::counter!("ferrosync_cognito_stream_records_total").increment(1);
        Some(Ok(()))
    }

    /// The stream record of one change.
    async fn stream_record(&self, pool_id: &str, change: DatasetChange) -> Result<StreamRecord, StoreError> {
        let (operation, sync_count, records) = match change.change {
            Change::Synced { sync_count, records, .. } => ("replace", sync_count, records),
            Change::Deleted => {
                let dataset = self.engine.store().dataset(&change.identity_id, &change.dataset).await?;
                let count = dataset.map_or(0, |d| d.deleted_at_sync_count.unwrap_or(d.sync_count));
                ("remove", count, Vec::new())
            }
        };
        Ok(StreamRecord {
            identity_pool_id: pool_id.to_owned(),
            identity_id: change.identity_id,
            dataset_name: change.dataset,
            operation,
            kinesis_sync_records: records,
            last_modified_date: change.date,
            payload_type: "Inline",
            sync_count,
        })
    }
}

/// Cognito Streams: one record per synchronization, in order per pool.
struct Streams(Arc<Publisher>);

struct StreamTarget {
    pool_id: String,
    stream: String,
}

impl LogConsumer for Streams {
    const CONSUMER: &'static str = consumers::COGNITO_STREAMS;
    type Target = StreamTarget;

    async fn target(&self, service: &Sid) -> Result<Option<StreamTarget>, StoreError> {
        Ok(self.0.pool_of(service).await?.filter(|p| p.sync.streams_enabled()).and_then(|p| {
            let stream = p.sync.cognito_streams.and_then(|s| s.stream_name)?;
            Some(StreamTarget { pool_id: p.id, stream })
        }))
    }

    async fn deliver(&self, t: &StreamTarget, events: &[StoredEvent], full: bool, lease: &Lease) -> Option<u64> {
        let (changes, settled) = group(events, !full);
        for change in changes {
            let through = change.through;
            let record = match self.0.stream_record(&t.pool_id, change).await {
                Ok(r) => r,
                Err(e) => {
                    // The store is unreachable: stop here, the batch is read again.
                    tracing::warn!(error = %e, "cannot read a dataset for its stream record");
                    return Some(through.saturating_sub(1));
                }
            };
            match self.0.publish(&t.pool_id, &t.stream, &record, lease).await? {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(identity_id = %record.identity_id, dataset = %record.dataset_name,
                        sync_count = record.sync_count, error = %e, "stream record given up after every attempt");
                    metrics::counter!("ferrosync_log_consumer_dropped_total", "consumer" => consumers::COGNITO_STREAMS, "reason" => "gave_up").increment(1);
                }
            }
            if !lease.advance(through).await {
                return None;
            }
        }
        Some(settled)
    }
}

/// Push sync: after each synchronization, a silent push to every other device of the identity
/// subscribed to the dataset, through the provider its platform's application names.
struct Pushes(Arc<Publisher>);

struct PushTarget {
    pool_id: String,
    application_arns: Vec<String>,
}

impl LogConsumer for Pushes {
    const CONSUMER: &'static str = consumers::COGNITO_PUSH;
    type Target = PushTarget;

    async fn target(&self, service: &Sid) -> Result<Option<PushTarget>, StoreError> {
        Ok(self.0.pool_of(service).await?.filter(|p| p.sync.push_enabled()).map(|p| PushTarget {
            application_arns: p.sync.push_sync.map(|s| s.application_arns).unwrap_or_default(),
            pool_id: p.id,
        }))
    }

    async fn deliver(&self, t: &PushTarget, events: &[StoredEvent], full: bool, lease: &Lease) -> Option<u64> {
        let (changes, settled) = group(events, !full);
        for change in changes {
            let Change::Synced { sync_count, modified_by, .. } = &change.change else { continue };
            let devices = match self.0.engine.push_targets(&change.identity_id, &change.dataset, modified_by).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a dataset's subscribers");
                    return Some(change.through.saturating_sub(1));
                }
            };
            let push = SyncPush {
                identity_pool_id: t.pool_id.clone(),
                identity_id: change.identity_id.clone(),
                dataset_name: change.dataset.clone(),
                sync_count: *sync_count,
            };
            for device in devices {
                let device = PushDevice { platform: device.platform, token: device.token, device_id: device.id };
                self.push(t, &device, &push, lease).await?;
            }
            if !lease.advance(change.through).await {
                return None;
            }
        }
        Some(settled)
    }
}

impl Pushes {
    /// One device's push with retries; `None` when stopped first. Failures are logged and
    /// counted: a push is a hint to sync, and the device syncs again anyway when it can.
    async fn push(&self, t: &PushTarget, device: &PushDevice, push: &SyncPush, lease: &Lease) -> Option<()> {
        let dropped = |reason: &'static str| {
            metrics::counter!("ferrosync_log_consumer_dropped_total", "consumer" => consumers::COGNITO_PUSH, "reason" => reason).increment(1);
        };
        let Some(provider) = provider_for(&t.application_arns, device.platform) else {
            tracing::warn!(pool_id = %t.pool_id, platform = device.platform.as_str(),
                "no ApplicationArn of the pool is for this platform; push skipped");
            dropped("no_application");
            return Some(());
        };
        let Some(sender) = self.0.push.as_ref().filter(|s| s.has_provider(provider)) else {
            tracing::warn!(
                provider,
                "no push provider of this name is configured ([cognito.push.providers]); push skipped"
            );
            dropped("no_provider");
            return Some(());
        };
        let attempt = || sender.send(provider, device, push);
        match with_retries(&self.0.retry, lease.stopped(), PushError::is_retryable, attempt).await {
            Retried::Done => Some(()),
            Retried::Cancelled => None,
            Retried::GaveUp(PushError::Unregistered) => {
                tracing::info!(device_id = %device.device_id, "the push service no longer knows this device");
                dropped("unregistered");
                Some(())
            }
            Retried::GaveUp(e) => {
                tracing::error!(device_id = %device.device_id, error = %e, "push given up");
                dropped("gave_up");
                Some(())
            }
        }
    }
}

/// BulkPublish: every dataset of the pool as one stream record each, then SUCCEEDED (or FAILED
/// with the first record given up). A node that takes over a lost lease starts again; AWS too
/// promises no uniqueness for bulk-published records.
struct BulkPublish(Arc<Publisher>);

impl Leased for BulkPublish {
    const CONSUMER: &'static str = consumers::COGNITO_BULK_PUBLISH;

    async fn run(self: Arc<Self>, lease: Arc<Lease>, _cursor: u64) -> Stop {
        let p = &self.0;
        let pool = match p.pool_of(lease.service()).await {
            Ok(Some(pool)) if pool.sync.bulk_publish.status == BulkPublishStatus::InProgress => pool,
            Ok(_) => return Stop::Done,
            Err(e) => {
                // Its cursor stays: the supervisor starts it again.
                tracing::warn!(error = %e, "cannot read the pool for a bulk publish");
                logfeed::pause(std::time::Duration::from_secs(1), lease.stopped()).await;
                return logfeed::stopped(&lease);
            }
        };
        let stream = pool
            .sync
            .cognito_streams
            .as_ref()
            .filter(|_| pool.sync.streams_enabled())
            .and_then(|s| s.stream_name.clone());
        let outcome = match stream {
            None => Err("Cognito streams were disabled during the bulk publish".to_owned()),
            Some(stream) => match self.publish_all(&pool, &stream, &lease).await {
                Some(outcome) => outcome,
                None => return logfeed::stopped(&lease),
            },
        };
        let failure = outcome.err();
        match p.engine.finish_bulk_publish(&Principal::Root, &pool.id, failure.clone()).await {
            Ok(_) => tracing::info!(pool_id = %pool.id, failure, "bulk publish finished"),
            Err(e) => tracing::warn!(pool_id = %pool.id, error = %e, "cannot record the end of a bulk publish"),
        }
        Stop::Done
    }
}

impl BulkPublish {
    /// Publishes every live dataset; `None` when stopped first.
    async fn publish_all(&self, pool: &IdentityPool, stream: &str, lease: &Lease) -> Option<Result<(), String>> {
        let store = self.0.engine.store();
        let mut after = None;
        let mut published = 0u64;
        loop {
            let page = PageRequest { order: Order::Asc, from: None, after: after.clone(), limit: BULK_PAGE };
            let maps = match store.objects(&pool.service_sid, ObjectKind::Map, &page).await {
                Ok(maps) => maps,
                Err(e) => return Some(Err(format!("cannot read the datasets: {e}"))),
            };
            let more = maps.len() > BULK_PAGE as usize;
            for map in maps.iter().take(BULK_PAGE as usize) {
                after = Some(Cursor::Key(map.sid.as_str().to_owned()));
                let Some((identity_id, name)) = map.unique_name.as_deref().and_then(|n| n.split_once('/')) else {
                    continue;
                };
                let dataset = match store.dataset(identity_id, name).await {
                    Ok(Some(d)) if d.map_sid.as_ref() == Some(&map.sid) => d,
                    Ok(_) => continue,
                    Err(e) => return Some(Err(format!("cannot read dataset {name}: {e}"))),
                };
                let records = match self.records(&map.sid).await {
                    Ok(r) => r,
                    Err(e) => return Some(Err(format!("cannot read dataset {name}: {e}"))),
                };
                let record = StreamRecord {
                    identity_pool_id: pool.id.clone(),
                    identity_id: identity_id.to_owned(),
                    dataset_name: name.to_owned(),
                    operation: "replace",
                    kinesis_sync_records: records,
                    last_modified_date: dataset.date_modified.millis(),
                    payload_type: "Inline",
                    sync_count: dataset.sync_count,
                };
                match self.0.publish(&pool.id, stream, &record, lease).await? {
                    Ok(()) => published += 1,
                    Err(e) => return Some(Err(format!("publishing dataset {name} of {identity_id} failed: {e}"))),
                }
            }
            if !more {
                tracing::debug!(pool_id = %pool.id, published, "every dataset published");
                return Some(Ok(()));
            }
        }
    }

    /// A dataset's live records.
    async fn records(&self, map: &Sid) -> Result<Vec<SyncRecord>, String> {
        let store = self.0.engine.store();
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = PageRequest { order: Order::Asc, from: None, after: after.clone(), limit: BULK_PAGE };
            let items = store.items(map, ObjectKind::Map, &page).await.map_err(|e| e.to_string())?;
            let more = items.len() > BULK_PAGE as usize;
            for item in items.iter().take(BULK_PAGE as usize) {
                after = Some(Cursor::Key(item.key.clone().unwrap_or_default()));
                let record = Record::from_item(item).map_err(|e| e.to_string())?;
                let Some(value) = record.value else { continue };
                let modified = record.last_modified.millis();
                out.push(SyncRecord {
                    key: record.key,
                    value: Some(value),
                    sync_count: record.sync_count,
                    last_modified_date: modified,
                    device_last_modified_date: record.device_last_modified.map_or(modified, |t| t.millis()),
                    op: "replace",
                });
            }
            if !more {
                return Ok(out);
            }
        }
    }
}
