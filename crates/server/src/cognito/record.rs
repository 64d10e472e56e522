//! Cognito Streams records, and the synchronizations they describe read back from the change
//! log: an UpdateRecords writes its records as Map items of the dataset in one transaction, all
//! with the dataset's new sync count, so consecutive item events of one dataset Map with one
//! sync count are one synchronization.

use ferrosync_core::cognito::RecordData;
use ferrosync_core::log::{Event, EventKind};
use ferrosync_core::model::ObjectKind;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::StoredEvent;
use serde::Serialize;

/// Kinesis takes records of up to 1 MiB; a bigger synchronization goes out in several records
/// (AWS would send an S3 URL instead, which a self-hosted server has nowhere to put).
pub const MAX_RECORD_BYTES: usize = 1_000_000;

/// One record on the stream, in the Cognito Streams format (epoch milliseconds, `dataSetName`
/// with a capital S), so existing consumers keep working.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamRecord {
    pub identity_pool_id: String,
    pub identity_id: String,
    #[serde(rename = "dataSetName")]
    pub dataset_name: String,
    /// `replace`, or `remove` for a deleted dataset.
    pub operation: &'static str,
    pub kinesis_sync_records: Vec<SyncRecord>,
    pub last_modified_date: i64,
    /// Always `Inline`: the records are in the payload.
    pub payload_type: &'static str,
    pub sync_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRecord {
    pub key: String,
    /// Absent for a removed record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub sync_count: u64,
    pub last_modified_date: i64,
    pub device_last_modified_date: i64,
    pub op: &'static str,
}

impl StreamRecord {
    /// The record as JSON, split into several records (same sync, records shared out) when it
    /// would exceed [`MAX_RECORD_BYTES`].
    pub fn to_payloads(&self) -> Vec<Vec<u8>> {
        let whole = serde_json::to_vec(self).unwrap_or_default();
        if whole.len() <= MAX_RECORD_BYTES || self.kinesis_sync_records.len() < 2 {
            return vec![whole];
        }
        let (a, b) = self.kinesis_sync_records.split_at(self.kinesis_sync_records.len() / 2);
        let half = |records: &[SyncRecord]| StreamRecord { kinesis_sync_records: records.to_vec(), ..self.clone() };
        let mut out = half(a).to_payloads();
        out.extend(half(b).to_payloads());
        out
    }
}

/// What happened to a dataset in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// An UpdateRecords: the records it wrote, all with `sync_count`.
    Synced { sync_count: u64, records: Vec<SyncRecord>, modified_by: String },
    /// DeleteDataset (or a merge that moved the dataset away).
    Deleted,
}

/// One change to one dataset, with the last change-log sequence number it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetChange {
    pub through: u64,
    pub map: Sid,
    pub identity_id: String,
    pub dataset: String,
    pub date: i64,
    pub change: Change,
}

/// The identity and dataset a Map holds, when it is a dataset's (`<identity id>/<name>`).
fn dataset_of(unique_name: Option<&str>) -> Option<(&str, &str)> {
    let (identity, dataset) = unique_name?.split_once('/')?;
    let (region, uuid) = identity.split_once(':')?;
    (!region.is_empty() && !uuid.is_empty() && !dataset.is_empty() && !dataset.contains('/'))
        .then_some((identity, dataset))
}

fn sync_record(key: String, data: RecordData, date: i64) -> SyncRecord {
    SyncRecord {
        op: if data.value.is_some() { "replace" } else { "remove" },
        key,
        value: data.value,
        sync_count: data.sync_count,
        last_modified_date: date,
        device_last_modified_date: data.device_last_modified.unwrap_or(date),
    }
}

/// Groups a batch of events into dataset changes. Events that are no dataset's (other objects
/// of the pool's service, unreadable ones) pass without a change. `complete` is false when more
/// events may follow the batch: a trailing synchronization is then left out (its events are
/// read again with the next batch). Returns the changes and the last seq fully grouped.
pub fn group(events: &[StoredEvent], complete: bool) -> (Vec<DatasetChange>, u64) {
    let mut changes: Vec<DatasetChange> = Vec::new();
    // The last seq before the change that is still open (the trailing one).
    let mut settled = 0;
    let mut open = false;
    for stored in events {
        let event: Event = match serde_json::from_str(stored.json.get()) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(seq = stored.seq, error = %e, "a change-log event cannot be read; skipped");
                settled = stored.seq;
                open = false;
                continue;
            }
        };
        let dataset =
            (event.object_kind == ObjectKind::Map).then(|| dataset_of(event.unique_name.as_deref())).flatten();
        let Some((identity_id, dataset)) = dataset else {
            settled = stored.seq;
            open = false;
            continue;
        };
        let date = event.date.millis();
        match event.kind {
            EventKind::MapItemAdded | EventKind::MapItemUpdated => {
                let record =
                    event.data.as_deref().and_then(|d| <RecordData as serde::Deserialize>::deserialize(d).ok());
                let (Some(record), Some(key)) = (record, event.item_key.clone()) else {
                    // Written through the native API, not as a record.
                    settled = stored.seq;
                    open = false;
                    continue;
                };
                if let Some(last) = changes.last_mut().filter(|_| open)
                    && last.map == event.object_sid
                    && let Change::Synced { sync_count, records, .. } = &mut last.change
                    && *sync_count == record.sync_count
                {
                    records.push(sync_record(key, record, date));
                    last.through = stored.seq;
                    last.date = last.date.max(date);
                    continue;
                }
                if open {
                    settled = changes.last().map_or(settled, |c| c.through);
                }
                changes.push(DatasetChange {
                    through: stored.seq,
                    map: event.object_sid.clone(),
                    identity_id: identity_id.to_owned(),
                    dataset: dataset.to_owned(),
                    date,
                    change: Change::Synced {
                        sync_count: record.sync_count,
                        modified_by: record.last_modified_by.clone(),
                        records: vec![sync_record(key, record, date)],
                    },
                });
                open = true;
            }
            EventKind::MapRemoved => {
                changes.push(DatasetChange {
                    through: stored.seq,
                    map: event.object_sid.clone(),
                    identity_id: identity_id.to_owned(),
                    dataset: dataset.to_owned(),
                    date,
                    change: Change::Deleted,
                });
                settled = stored.seq;
                open = false;
            }
            _ => {
                if open {
                    settled = changes.last().map_or(settled, |c| c.through);
                    open = false;
                }
                settled = settled.max(stored.seq);
            }
        }
    }
    if open {
        if complete {
            settled = changes.last().map_or(settled, |c| c.through);
        } else {
            changes.pop();
        }
    }
    (changes, settled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::sid::SidKind;
    use ferrosync_core::store::EventJson;
    use serde_json::{Value, json};

    fn event(seq: u64, kind: &str, map: &Sid, name: &str, key: Option<&str>, data: Option<Value>) -> StoredEvent {
        let mut e = json!({
            "seq": seq, "token": "t", "type": kind, "service_sid": Sid::new(SidKind::Service).as_str(),
            "object_sid": map.as_str(), "object_kind": "map", "unique_name": name, "revision": 1,
            "data": data, "date": "2015-02-24T18:17:04.343Z", "identity": "i",
        });
        if let Some(key) = key {
            e["item_key"] = json!(key);
        }
        StoredEvent { seq, object_sid: map.clone(), json: EventJson::serialized(&e).expect("serialises") }
    }

    fn record(value: Option<&str>, count: u64) -> Option<Value> {
        Some(json!({"value": value, "sync_count": count, "last_modified_by": "device-1", "device_last_modified": null}))
    }

    #[test]
    fn one_transaction_is_one_sync() {
        let map = Sid::new(SidKind::Map);
        let name = "us-east-1:0f5e/settings";
        let events = vec![
            event(1, "map_created", &map, name, None, None),
            event(2, "map_item_added", &map, name, Some("a"), record(Some("1"), 1)),
            event(3, "map_item_added", &map, name, Some("b"), record(Some("2"), 1)),
            event(4, "map_item_updated", &map, name, Some("a"), record(None, 2)),
        ];
        let (changes, through) = group(&events, true);
        assert_eq!(through, 4);
        assert_eq!(changes.len(), 2);
        assert_eq!((changes[0].identity_id.as_str(), changes[0].dataset.as_str()), ("us-east-1:0f5e", "settings"));
        let Change::Synced { sync_count, records, modified_by } = &changes[0].change else { panic!("a sync") };
        assert_eq!((*sync_count, records.len(), modified_by.as_str()), (1, 2, "device-1"));
        assert_eq!(changes[0].through, 3);
        let Change::Synced { records, .. } = &changes[1].change else { panic!("a sync") };
        assert_eq!((records[0].op, records[0].value.as_deref()), ("remove", None));
    }

    #[test]
    fn an_open_sync_at_the_end_of_a_full_batch_waits() {
        let map = Sid::new(SidKind::Map);
        let name = "us-east-1:0f5e/settings";
        let events = vec![
            event(7, "map_item_added", &map, name, Some("a"), record(Some("1"), 1)),
            event(8, "map_item_added", &map, name, Some("a2"), record(Some("1"), 2)),
        ];
        let (changes, through) = group(&events, false);
        assert_eq!((changes.len(), through), (1, 7), "the second sync may go on in the next batch");
        let (changes, through) = group(&events[1..], false);
        assert_eq!((changes.len(), through), (0, 0), "nothing settled yet");
    }

    #[test]
    fn other_objects_and_native_writes_are_passed_over() {
        let map = Sid::new(SidKind::Map);
        let events = vec![
            event(1, "map_item_added", &map, "plain-map", Some("a"), record(Some("1"), 1)),
            event(2, "map_item_added", &map, "us-east-1:0f5e/ds", Some("a"), Some(json!({"anything": 1}))),
            event(3, "map_removed", &map, "us-east-1:0f5e/ds", None, None),
        ];
        let (changes, through) = group(&events, false);
        assert_eq!(through, 3);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].change, Change::Deleted);
    }

    #[test]
    fn the_stream_format_is_cognitos() {
        let r = StreamRecord {
            identity_pool_id: "us-east-1:p".into(),
            identity_id: "us-east-1:i".into(),
            dataset_name: "ds".into(),
            operation: "replace",
            kinesis_sync_records: vec![SyncRecord {
                key: "k".into(),
                value: Some("v".into()),
                sync_count: 3,
                last_modified_date: 1_424_801_824_343,
                device_last_modified_date: 1_424_801_824_000,
                op: "replace",
            }],
            last_modified_date: 1_424_801_824_343,
            payload_type: "Inline",
            sync_count: 3,
        };
        let v: Value = serde_json::from_slice(&r.to_payloads()[0]).expect("json");
        assert_eq!(
            v,
            json!({"identityPoolId": "us-east-1:p", "identityId": "us-east-1:i", "dataSetName": "ds",
                "operation": "replace", "kinesisSyncRecords": [{"key": "k", "value": "v", "syncCount": 3,
                "lastModifiedDate": 1_424_801_824_343_i64, "deviceLastModifiedDate": 1_424_801_824_000_i64,
                "op": "replace"}], "lastModifiedDate": 1_424_801_824_343_i64, "payloadType": "Inline",
                "syncCount": 3})
        );
    }

    #[test]
    fn big_syncs_are_split_under_the_record_limit() {
        let records = (0..40)
            .map(|n| SyncRecord {
                key: format!("k{n}"),
                value: Some("x".repeat(50_000)),
                sync_count: 1,
                last_modified_date: 0,
                device_last_modified_date: 0,
                op: "replace",
            })
            .collect();
        let r = StreamRecord {
            identity_pool_id: "p".into(),
            identity_id: "i".into(),
            dataset_name: "d".into(),
            operation: "replace",
            kinesis_sync_records: records,
            last_modified_date: 0,
            payload_type: "Inline",
            sync_count: 1,
        };
        let payloads = r.to_payloads();
        assert!(payloads.len() >= 2);
        assert!(payloads.iter().all(|p| p.len() <= MAX_RECORD_BYTES));
        let total: usize = payloads
            .iter()
            .map(|p| {
                serde_json::from_slice::<Value>(p).expect("json")["kinesisSyncRecords"].as_array().map_or(0, Vec::len)
            })
            .sum();
        assert_eq!(total, 40, "every record goes out once");
    }
}
