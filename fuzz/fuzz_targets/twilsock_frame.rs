//! Arbitrary bytes as a twilsock frame. Whatever parses carries exactly its declared payload,
//! and written again it parses back to the same method, id and payload.

#![no_main]

use ferrosync_server::api::twilsock::frame;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = frame::parse(data, LIMIT) else { return };
    assert_eq!(parsed.payload.len(), parsed.header.payload_size);
    let header = serde_json::json!({ "method": parsed.header.method, "id": parsed.header.id });
    let written = frame::encode(&header, parsed.payload);
    let again = frame::parse(&written, usize::MAX).expect("a written frame parses");
    assert_eq!((&again.header.method, &again.header.id), (&parsed.header.method, &parsed.header.id));
    assert_eq!(again.payload, parsed.payload);
});
