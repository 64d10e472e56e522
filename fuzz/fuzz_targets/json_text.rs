//! Any JSON text the server reads, read as the server reads a document's data (the same value
//! `serde_json` reads, or the same refusal) and written back as the server writes it (in its
//! events, replies and rows): byte for byte what `serde_json` writes, and its counted length
//! (the data size limit) that text's length.

#![no_main]

use ferrosync_protocol::json::{encoded_len, push_value};
use ferrosync_protocol::value::Read;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let read = serde_json::from_slice::<Read>(data).map(|Read(v)| v);
    // serde_json reads a member named with its private raw-value token as raw text; the
    // server's reader keeps it as data.
    if !read.as_ref().is_ok_and(names_raw_value) {
        let theirs = serde_json::from_slice::<Value>(data);
        assert_eq!(read.as_ref().ok(), theirs.as_ref().ok(), "read as serde_json reads it");
    }
    let Ok(value) = read else { return };
    let expected = serde_json::to_vec(&value).expect("a parsed value serialises");
    let mut written = Vec::new();
    push_value(&mut written, &value);
    assert_eq!(written, expected, "written as serde_json writes it");
    assert_eq!(encoded_len(&value), expected.len(), "counted as written");
});

fn names_raw_value(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| k == "$serde_json::private::RawValue" || names_raw_value(v)),
        Value::Array(a) => a.iter().any(names_raw_value),
        _ => false,
    }
}
