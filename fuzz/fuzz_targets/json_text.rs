//! Any JSON text the server reads, written back as the server writes it (a document's data in
//! its events, replies and rows): byte for byte what `serde_json` writes, and its counted
//! length (the data size limit) that text's length.

#![no_main]

use ferrosync_protocol::json::{encoded_len, push_value};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let expected = serde_json::to_vec(&value).expect("a parsed value serialises");
    let mut written = Vec::new();
    push_value(&mut written, &value);
    assert_eq!(written, expected, "written as serde_json writes it");
    assert_eq!(encoded_len(&value), expected.len(), "counted as written");
});
