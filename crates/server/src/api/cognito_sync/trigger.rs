//! Cognito Events' `SyncTrigger` as a synchronous webhook. When a pool names an http(s) URL for
//! it, an UpdateRecords made with an identity's credentials (never one with developer
//! credentials) first POSTs the Lambda event to that URL: every record of the dataset, the
//! caller's patches marked `replace` or `remove`. The answer, the same JSON with only
//! `datasetRecords` changed, decides what is written: values changed, records removed or
//! added, records left out not written at all.

use super::error::{
    INTERNAL_ERROR, INVALID_LAMBDA_OUTPUT, LAMBDA_SOCKET_TIMEOUT, LAMBDA_THROTTLED, from_core, modeled,
};
use crate::api::aws::error::{AwsError, AwsResult};
use ferrosync_core::Engine;
use ferrosync_core::auth::Principal;
use ferrosync_core::cognito::{PatchOp, Record, RecordPatch, SYNC_TRIGGER_EVENT};
use ferrosync_core::engine::UpdateRecordsRequest;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

/// How long the function may take: Cognito's limit, which AWS does not let anyone raise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read. A dataset holds at most 1 MiB, sent with old and new values.
const MAX_OUTPUT: usize = 8 * 1024 * 1024;
/// The event's fields that the function must hand back unchanged.
const READ_ONLY: [&str; 6] = ["version", "eventType", "region", "identityPoolId", "identityId", "datasetName"];

/// Invokes sync triggers: one HTTP client for the whole server.
pub struct SyncTrigger {
    timeout: Duration,
    client: OnceLock<reqwest::Client>,
}

impl SyncTrigger {
    pub fn new(timeout: Duration) -> Self {
        SyncTrigger { timeout, client: OnceLock::new() }
    }

    fn client(&self) -> AwsResult<&reqwest::Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = crate::outbound::http_client(|| {
            reqwest::Client::builder()
                // The URL is the pool owner's; a redirect could send identities' data elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("ferrosync-sync-trigger/", env!("CARGO_PKG_VERSION")))
                .pool_idle_timeout(Duration::from_secs(30))
        })
        .map_err(|e| {
            tracing::error!(error = %e, "no HTTP client for sync triggers");
            modeled(INTERNAL_ERROR, "An internal error occurred; the request was not completed.")
        })?;
        Ok(self.client.get_or_init(|| client))
    }

    /// The UpdateRecords to write: `req` itself, or what the pool's sync trigger made of it.
    /// Fails, with nothing written, when the function times out, is throttled, fails or
    /// answers something other than the event with its records edited.
    pub async fn apply(
        &self,
        engine: &Engine,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        dataset: &str,
        req: UpdateRecordsRequest,
    ) -> AwsResult<UpdateRecordsRequest> {
        let Principal::CognitoIdentity { pool_id: own_pool, .. } = principal else { return Ok(req) };
        if own_pool != pool_id {
            // Another pool's identity: the engine refuses the call.
            return Ok(req);
        }
        // The caller is the pool's own identity; the events are the pool owner's setting.
        let events = engine.cognito_events(&Principal::Root, pool_id).await.map_err(from_core)?;
        let Some(target) = events.get(SYNC_TRIGGER_EVENT) else { return Ok(req) };
        let Some(url) = webhook_url(target) else {
            tracing::warn!(pool_id, target, "the SyncTrigger is not an http(s) URL; not invoked");
            return Ok(req);
        };
        let records =
            engine.records_before_update(principal, pool_id, identity_id, dataset, &req).await.map_err(from_core)?;
        let region = pool_id.split_once(':').map_or("", |(region, _)| region);
        let event = event(region, pool_id, identity_id, dataset, &records, &req.patches);
        let output = self.invoke(url, &event).await.inspect_err(|e| {
            tracing::warn!(pool_id, identity_id, dataset, code = %e.code, message = %e.message, "the SyncTrigger failed");
        })?;
        let patches = patches_from_output(&event, output, &records, req.patches)?;
        Ok(UpdateRecordsRequest { patches, ..req })
    }

    /// POSTs the event and returns the JSON answered.
    async fn invoke(&self, url: reqwest::Url, event: &Value) -> AwsResult<Value> {
        let client = self.client()?;
        let body = serde_json::to_vec(event).map_err(|e| AwsError::internal(e.to_string()))?;
        let call = async {
            let mut response = client
                .post(url)
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body)
                .send()
                .await?;
            let status = response.status();
            if !status.is_success() {
                return Ok((status, None));
            }
            let mut output = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if output.len() + chunk.len() > MAX_OUTPUT {
                    return Ok((status, None));
                }
                output.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, Some(output)))
        };
        let (status, output) = match tokio::time::timeout(self.timeout, call).await {
            Err(_) => return Err(timed_out(self.timeout)),
            Ok(Err(e)) if e.is_timeout() => return Err(timed_out(self.timeout)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the SyncTrigger could not be called");
                return Err(invalid("The SyncTrigger function could not be invoked"));
            }
            Ok(Ok(answer)) => answer,
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(modeled(LAMBDA_THROTTLED, "The SyncTrigger function is throttled; retry the request later"));
        }
        if !status.is_success() {
            return Err(invalid(format!("The SyncTrigger function failed with HTTP status {}", status.as_u16())));
        }
        let output = output
            .ok_or_else(|| invalid(format!("The SyncTrigger function's output is over {} MiB", MAX_OUTPUT >> 20)))?;
        serde_json::from_slice(&output).map_err(|_| invalid("The SyncTrigger function's output is not JSON"))
    }
}

/// The trigger's URL, when it is one this server can call.
fn webhook_url(target: &str) -> Option<reqwest::Url> {
    reqwest::Url::parse(target).ok().filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn invalid(message: impl Into<String>) -> AwsError {
    modeled(INVALID_LAMBDA_OUTPUT, message)
}

fn timed_out(timeout: Duration) -> AwsError {
    modeled(LAMBDA_SOCKET_TIMEOUT, format!("The SyncTrigger function did not answer within {} ms", timeout.as_millis()))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventRecord<'a> {
    old_value: Option<&'a str>,
    new_value: Option<&'a str>,
    op: &'static str,
}

/// The Lambda event: every live record of the dataset, as it is unless the caller patches it.
fn event(
    region: &str,
    pool_id: &str,
    identity_id: &str,
    dataset: &str,
    records: &[Record],
    patches: &[RecordPatch],
) -> Value {
    let mut entries: BTreeMap<&str, EventRecord> = records
        .iter()
        .filter_map(|r| r.value.as_deref().map(|v| (r.key.as_str(), v)))
        .map(|(key, value)| (key, EventRecord { old_value: Some(value), new_value: Some(value), op: "replace" }))
        .collect();
    for patch in patches {
        let old_value = records.iter().find(|r| r.key == patch.key).and_then(|r| r.value.as_deref());
        let entry = match patch.op {
            PatchOp::Replace => EventRecord { old_value, new_value: patch.value.as_deref(), op: "replace" },
            PatchOp::Remove => EventRecord { old_value, new_value: None, op: "remove" },
        };
        entries.insert(patch.key.as_str(), entry);
    }
    serde_json::json!({
        "version": 2,
        "eventType": SYNC_TRIGGER_EVENT,
        "region": region,
        "identityPoolId": pool_id,
        "identityId": identity_id,
        "datasetName": dataset,
        "datasetRecords": entries,
    })
}

/// What the function decided for one record.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Put(String),
    Remove,
}

fn decision(key: &str, entry: &Value) -> AwsResult<Decision> {
    let Value::Object(entry) = entry else {
        return Err(invalid(format!("datasetRecords.{key} is not an object")));
    };
    let new_value = match entry.get("newValue") {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) => Some(v.clone()),
        Some(_) => return Err(invalid(format!("datasetRecords.{key}.newValue is not a string"))),
    };
    // A null value removes the record, whatever the op says.
    match entry.get("op") {
        Some(Value::String(op)) if op == "remove" => Ok(Decision::Remove),
        Some(Value::String(op)) if op == "replace" => Ok(new_value.map_or(Decision::Remove, Decision::Put)),
        None | Some(Value::Null) => Ok(new_value.map_or(Decision::Remove, Decision::Put)),
        _ => Err(invalid(format!("datasetRecords.{key}.op is neither replace nor remove"))),
    }
}

/// The patches to write from the function's answer. The caller's patches keep their sync
/// counts; records the function changed on its own take their current sync count, so a write
/// that lands in between still makes this one conflict.
fn patches_from_output(
    event: &Value,
    output: Value,
    records: &[Record],
    patches: Vec<RecordPatch>,
) -> AwsResult<Vec<RecordPatch>> {
    let Value::Object(mut output) = output else {
        return Err(invalid("The SyncTrigger function's output is not a JSON object"));
    };
    for field in READ_ONLY {
        if output.get(field) != event.get(field) {
            return Err(invalid(format!("The SyncTrigger function changed the read-only field {field}")));
        }
    }
    let answered = match output.remove("datasetRecords") {
        Some(Value::Object(entries)) => entries,
        Some(Value::Null) | None => Map::new(),
        Some(_) => return Err(invalid("datasetRecords is not an object")),
    };
    let mut by_user: BTreeMap<String, RecordPatch> = patches.into_iter().map(|p| (p.key.clone(), p)).collect();
    let current: BTreeMap<&str, &Record> = records.iter().map(|r| (r.key.as_str(), r)).collect();
    let mut written = Vec::new();
    for (key, entry) in answered {
        let decision = decision(&key, &entry)?;
        let (sync_count, device_last_modified) = match by_user.remove(&key) {
            Some(patch) => (patch.sync_count, patch.device_last_modified),
            None => {
                let record = current.get(key.as_str());
                let now = record.and_then(|r| r.value.as_deref());
                let unchanged = match &decision {
                    Decision::Put(v) => now == Some(v.as_str()),
                    Decision::Remove => now.is_none(),
                };
                if unchanged {
                    continue;
                }
                (record.map_or(0, |r| r.sync_count), None)
            }
        };
        let (op, value) = match decision {
            Decision::Put(v) => (PatchOp::Replace, Some(v)),
            Decision::Remove => (PatchOp::Remove, None),
        };
        written.push(RecordPatch { op, key, value, sync_count, device_last_modified });
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::Timestamp;
    use serde_json::json;

    fn record(key: &str, value: Option<&str>, sync_count: u64) -> Record {
        Record {
            key: key.into(),
            value: value.map(str::to_owned),
            sync_count,
            last_modified: Timestamp(0),
            last_modified_by: String::new(),
            device_last_modified: None,
        }
    }

    fn patch(op: PatchOp, key: &str, value: Option<&str>, sync_count: u64) -> RecordPatch {
        RecordPatch { op, key: key.into(), value: value.map(str::to_owned), sync_count, device_last_modified: None }
    }

    #[test]
    fn the_event_holds_every_live_record_and_the_caller_s_patches() {
        let records = [record("a", Some("1"), 1), record("b", Some("2"), 2), record("gone", None, 2)];
        let patches = [patch(PatchOp::Replace, "a", Some("10"), 1), patch(PatchOp::Remove, "b", None, 2)];
        let e = event("us-east-1", "us-east-1:p", "us-east-1:i", "d", &records, &patches);
        assert_eq!(
            e["datasetRecords"],
            json!({
                "a": {"oldValue": "1", "newValue": "10", "op": "replace"},
                "b": {"oldValue": "2", "newValue": null, "op": "remove"},
            })
        );
        let records = [record("c", Some("3"), 1)];
        let e = event("us-east-1", "us-east-1:p", "us-east-1:i", "d", &records, &[]);
        assert_eq!(e["datasetRecords"], json!({"c": {"oldValue": "3", "newValue": "3", "op": "replace"}}));
    }

    #[test]
    fn the_answer_decides_what_is_written() {
        let records = [record("a", Some("1"), 1), record("b", Some("2"), 2), record("c", Some("3"), 3)];
        let patches = vec![patch(PatchOp::Replace, "a", Some("10"), 1), patch(PatchOp::Replace, "n", Some("x"), 0)];
        let e = event("r", "r:p", "r:i", "d", &records, &patches);
        let mut out = e.clone();
        out["datasetRecords"] = json!({
            "a": {"oldValue": "1", "newValue": "11", "op": "replace"},
            "b": {"oldValue": "2", "newValue": null, "op": "replace"},
            "c": {"oldValue": "3", "newValue": "3", "op": "replace"},
            "added": {"newValue": "new", "op": "replace"},
        });
        let written = patches_from_output(&e, out, &records, patches).expect("valid");
        assert_eq!(
            written,
            [
                patch(PatchOp::Replace, "a", Some("11"), 1),
                patch(PatchOp::Replace, "added", Some("new"), 0),
                patch(PatchOp::Remove, "b", None, 2),
            ],
            "c is unchanged and n was left out"
        );
    }

    #[test]
    fn read_only_fields_and_shapes_are_checked() {
        let e = event("r", "r:p", "r:i", "d", &[], &[]);
        let mut changed = e.clone();
        changed["datasetName"] = json!("other");
        assert!(patches_from_output(&e, changed, &[], vec![]).is_err());
        let mut missing = e.clone();
        missing.as_object_mut().expect("an object").remove("version");
        assert!(patches_from_output(&e, missing, &[], vec![]).is_err());
        assert!(patches_from_output(&e, json!([1]), &[], vec![]).is_err());
        for bad in [json!({"k": 1}), json!({"k": {"newValue": 1}}), json!({"k": {"newValue": "v", "op": "add"}})] {
            let mut out = e.clone();
            out["datasetRecords"] = bad;
            let err = patches_from_output(&e, out, &[], vec![]).expect_err("invalid");
            assert_eq!((err.code.as_ref(), err.status.as_u16()), (INVALID_LAMBDA_OUTPUT, 400));
        }
    }

    #[test]
    fn only_http_urls_are_called() {
        assert!(webhook_url("https://example.com/trigger").is_some());
        assert!(webhook_url("http://127.0.0.1:8080/").is_some());
        assert!(webhook_url("arn:aws:lambda:us-east-1:123456789012:function:f").is_none());
        assert!(webhook_url("file:///etc/passwd").is_none());
    }
}
