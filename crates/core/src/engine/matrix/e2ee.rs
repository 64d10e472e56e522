//! What encrypting clients need of a server: device keys, one-time and fallback keys stored
//! as uploaded and handed out once, to-device messages queued per device, and the users whose
//! devices changed. All of it lives in Maps and Lists of the Matrix service, so `/sync` reports
//! it from the change log like everything else.

use super::*;
use crate::store::ObjectWrite;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// A user's device keys, keyed by device id.
pub(super) fn keys_name(user_id: &str) -> String {
    format!("{user_id}/keys")
}

/// A user's one-time keys, keyed `device \t algorithm:key id`.
fn one_time_name(user_id: &str) -> String {
    format!("{user_id}/one_time_keys")
}

/// A user's fallback keys, keyed `device \t algorithm:key id`.
fn fallback_name(user_id: &str) -> String {
    format!("{user_id}/fallback_keys")
}

/// Per device: `{counts: {algorithm: n}, fallback: [algorithm]}`, which every sync reports.
pub(super) fn counts_name(user_id: &str) -> String {
    format!("{user_id}/otk_counts")
}

/// One-time keys per upload, and to-device messages per request, at most.
const MAX_KEYS_PER_UPLOAD: usize = 1000;
const MAX_TO_DEVICE_TARGETS: usize = 10_000;

impl Engine {
    async fn matrix_batch(&self, writes: Vec<ObjectWrite>, txn: Option<(String, String)>) -> Result<(), CoreError> {
        let svc = self.service(&crate::auth::Principal::Root, crate::engine::services::MATRIX_SERVICE).await?;
        let m = Mutation::Batch { service: svc.sid.clone(), writes, txn };
        self.run_logged(&svc, &crate::auth::Principal::Root, m).await?;
        Ok(())
    }

    /// `/keys/upload`: stores the device's keys as given; answers the one-time key counts.
    pub async fn matrix_upload_keys(
        &self,
        caller: &MatrixCaller,
        device_keys: Option<Value>,
        one_time_keys: Option<Map<String, Value>>,
        fallback_keys: Option<Map<String, Value>>,
    ) -> Result<Value, CoreError> {
        let me = &caller.user_id;
        let device = &caller.device_id;
        let mut writes = Vec::new();
        if let Some(keys) = device_keys {
            if keys["user_id"] != me.as_str() || keys["device_id"] != device.as_str() {
                return Err(CoreError::invalid("device_keys", "must name the caller's user and device"));
            }
            if !keys["keys"].is_object() || !keys["algorithms"].is_array() {
                return Err(CoreError::invalid("device_keys", "needs keys and algorithms"));
            }
            writes.push(ObjectWrite::Put { map: keys_name(me), key: device.clone(), data: keys });
        }
        let one_time = one_time_keys.unwrap_or_default();
        if one_time.len() > MAX_KEYS_PER_UPLOAD {
            return Err(CoreError::invalid("one_time_keys", format!("holds more than {MAX_KEYS_PER_UPLOAD} keys")));
        }
        for (id, key) in one_time {
            check_key_id("one_time_keys", &id)?;
            writes.push(ObjectWrite::Put { map: one_time_name(me), key: format!("{device}\t{id}"), data: key });
        }
        if let Some(fallback) = fallback_keys {
            // A new fallback key replaces the device's old one of the same algorithm.
            let current = self.matrix_entries(&fallback_name(me)).await?;
            for (id, key) in fallback {
                check_key_id("fallback_keys", &id)?;
                let algorithm = id.split(':').next().unwrap_or_default();
                for (old, _) in current.iter().filter(|(k, _)| k.starts_with(&format!("{device}\t{algorithm}:"))) {
                    writes.push(ObjectWrite::Remove { map: fallback_name(me), key: old.clone() });
                }
                writes.push(ObjectWrite::Put { map: fallback_name(me), key: format!("{device}\t{id}"), data: key });
            }
        }
        if !writes.is_empty() {
            self.matrix_batch(writes, None).await?;
        }
        let counts = self.refresh_key_counts(me, device).await?;
        Ok(json!({ "one_time_key_counts": counts["counts"] }))
    }

    /// Recounts a device's one-time keys (and its fallback algorithms) into the entry syncs read.
    async fn refresh_key_counts(&self, user_id: &str, device_id: &str) -> Result<Value, CoreError> {
        let prefix = format!("{device_id}\t");
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for (key, _) in self.matrix_entries(&one_time_name(user_id)).await? {
            if let Some(id) = key.strip_prefix(&prefix) {
                *counts.entry(id.split(':').next().unwrap_or_default().to_owned()).or_default() += 1;
            }
        }
        let fallback: BTreeSet<String> = self
            .matrix_entries(&fallback_name(user_id))
            .await?
            .into_iter()
            .filter(|(_, v)| v["used"] != true)
            .filter_map(|(k, _)| k.strip_prefix(&prefix).map(|id| id.split(':').next().unwrap_or_default().to_owned()))
            .collect();
        let data = json!({ "counts": counts, "fallback": fallback });
        self.matrix_put(&counts_name(user_id), device_id, data.clone()).await?;
        Ok(data)
    }

    /// `/keys/query`: the device keys of the users asked for (all their devices, or those
    /// listed).
    pub async fn matrix_query_keys(&self, wanted: &BTreeMap<String, Vec<String>>) -> Result<Value, CoreError> {
        let mut out = Map::new();
        for (user, devices) in wanted {
            let names: BTreeMap<String, Option<String>> =
                self.store.matrix_devices(user).await?.into_iter().map(|d| (d.device_id, d.display_name)).collect();
            let mut found = Map::new();
            for (device, mut keys) in self.matrix_entries(&keys_name(user)).await? {
                if !names.contains_key(&device) || (!devices.is_empty() && !devices.contains(&device)) {
                    continue;
                }
                if let Some(Some(name)) = names.get(&device) {
                    keys["unsigned"] = json!({ "device_display_name": name });
                }
                found.insert(device, keys);
            }
            out.insert(user.clone(), Value::Object(found));
        }
        Ok(json!({
            "device_keys": out,
            "failures": {},
            "master_keys": {},
            "self_signing_keys": {},
            "user_signing_keys": {},
        }))
    }

    /// `/keys/claim`: one one-time key per (user, device, algorithm), each handed out once;
    /// the device's fallback key when none is left.
    pub async fn matrix_claim_keys(
        &self,
        wanted: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Value, CoreError> {
        let mut out = Map::new();
        for (user, devices) in wanted {
            let mut claimed = Map::new();
            for (device, algorithm) in devices {
                if let Some((id, key)) = self.claim_one(user, device, algorithm).await? {
                    claimed.insert(device.clone(), json!({ id: key }));
                }
            }
            if !claimed.is_empty() {
                out.insert(user.clone(), Value::Object(claimed));
            }
        }
        Ok(json!({ "one_time_keys": out, "failures": {} }))
    }

    async fn claim_one(&self, user: &str, device: &str, algorithm: &str) -> Result<Option<(String, Value)>, CoreError> {
        let prefix = format!("{device}\t{algorithm}:");
        // A claim racing another for the same key loses its remove and tries the next key.
        for _ in 0..4 {
            let candidate =
                self.matrix_entries(&one_time_name(user)).await?.into_iter().find(|(k, _)| k.starts_with(&prefix));
            let Some((key, value)) = candidate else { break };
            let remove = ObjectWrite::Remove { map: one_time_name(user), key: key.clone() };
            match self.matrix_batch(vec![remove], None).await {
                Ok(()) => {
                    self.refresh_key_counts(user, device).await?;
                    let id = key.split_once('\t').map(|(_, id)| id.to_owned()).unwrap_or_default();
                    return Ok(Some((id, value)));
                }
                Err(CoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        let fallback =
            self.matrix_entries(&fallback_name(user)).await?.into_iter().find(|(k, _)| k.starts_with(&prefix));
        let Some((key, mut value)) = fallback else { return Ok(None) };
        let id = key.split_once('\t').map(|(_, id)| id.to_owned()).unwrap_or_default();
        if value["used"] != true {
            value["used"] = json!(true);
            self.matrix_put(&fallback_name(user), &key, value.clone()).await?;
            self.refresh_key_counts(user, device).await?;
        }
        if let Some(obj) = value.as_object_mut() {
            obj.remove("used");
        }
        Ok(Some((id, value)))
    }

    /// Removes what a device leaves behind when it goes: its keys.
    pub(super) async fn forget_device_keys(&self, user_id: &str, device_id: &str) -> Result<(), CoreError> {
        let prefix = format!("{device_id}\t");
        let mut writes = Vec::new();
        for (key, _) in self.matrix_entries(&keys_name(user_id)).await? {
            if key == device_id {
                writes.push(ObjectWrite::Remove { map: keys_name(user_id), key });
            }
        }
        for name in [one_time_name(user_id), fallback_name(user_id)] {
            for (key, _) in self.matrix_entries(&name).await? {
                if key.starts_with(&prefix) {
                    writes.push(ObjectWrite::Remove { map: name.clone(), key });
                }
            }
        }
        if writes.is_empty() { Ok(()) } else { self.matrix_batch(writes, None).await }
    }

    /// `/sendToDevice`: queues a message for each device named (`*`: every device of the
    /// user); the same transaction id from the same device sends once.
    pub async fn matrix_send_to_device(
        &self,
        caller: &MatrixCaller,
        event_type: &str,
        txn_id: &str,
        messages: &BTreeMap<String, BTreeMap<String, Value>>,
    ) -> Result<(), CoreError> {
        let mut writes = Vec::new();
        for (user, devices) in messages {
            let known: Vec<String> = self.store.matrix_devices(user).await?.into_iter().map(|d| d.device_id).collect();
            for (device, content) in devices {
                let targets: Vec<&String> = if device == "*" {
                    known.iter().collect()
                } else {
                    known.iter().filter(|d| *d == device).collect()
                };
                for target in targets {
                    let data = json!({ "type": event_type, "sender": caller.user_id, "content": content });
                    writes.push(ObjectWrite::Append {
                        list: super::sync::to_device_name(user, target),
                        data,
                        ttl: None,
                    });
                }
            }
        }
        if writes.len() > MAX_TO_DEVICE_TARGETS {
            return Err(CoreError::invalid("messages", format!("reach more than {MAX_TO_DEVICE_TARGETS} devices")));
        }
        let txn = crate::matrix::room::Txn {
            user_id: caller.user_id.clone(),
            device_id: caller.device_id.clone(),
            txn_id: format!("to_device\t{txn_id}"),
        };
        self.matrix_batch(writes, Some(txn.entry())).await
    }
}

/// `algorithm:key id`, as the spec names keys.
fn check_key_id(field: &'static str, id: &str) -> Result<(), CoreError> {
    match id.split_once(':') {
        Some((algorithm, key)) if !algorithm.is_empty() && !key.is_empty() && !id.contains('\t') => Ok(()),
        _ => Err(CoreError::invalid(field, format!("'{id}' is not an algorithm:key_id name"))),
    }
}
