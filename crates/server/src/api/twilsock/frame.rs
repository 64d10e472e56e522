//! The twilsock v3 frame: `TWILSOCK V3.0 <header length>\r\n<header JSON>\r\n<payload>`, the
//! same layout in both directions. The header says how long the payload is (`payload_size`).
//!
//! Parsing never panics and never trusts a length it has not checked against the bytes at
//! hand; anything off is a [`FrameError`] the connection answers or closes on.

use super::types::Header;
use bytes::Bytes;
use serde::Serialize;

const MAGIC: &[u8] = b"TWILSOCK V3.0 ";
/// Digits the header length may have: headers are small, and a longer number is garbage.
const MAX_LENGTH_DIGITS: usize = 7;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("the frame is {size} bytes, the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("the frame does not start with 'TWILSOCK V3.0 '")]
    BadMagic,
    #[error("the header length is not a decimal number followed by CRLF")]
    BadHeaderLength,
    #[error("the frame ends before its {0}")]
    Truncated(&'static str),
    #[error("the header is not UTF-8 JSON with a method: {0}")]
    BadHeader(String),
    #[error("payload_size says {declared} bytes but {actual} follow the header")]
    PayloadSizeMismatch { declared: usize, actual: usize },
}

/// A parsed frame: its typed header and the raw payload bytes.
#[derive(Debug)]
pub struct Frame<'a> {
    pub header: Header<'a>,
    pub payload: &'a [u8],
}

/// Reads one frame of at most `limit` bytes.
pub fn parse(bytes: &[u8], limit: usize) -> Result<Frame<'_>, FrameError> {
    if bytes.len() > limit {
        return Err(FrameError::TooLarge { size: bytes.len(), limit });
    }
    let rest = bytes.strip_prefix(MAGIC).ok_or(FrameError::BadMagic)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > MAX_LENGTH_DIGITS {
        return Err(FrameError::BadHeaderLength);
    }
    let (length, rest) = rest.split_at(digits);
    let rest = rest.strip_prefix(b"\r\n").ok_or(FrameError::BadHeaderLength)?;
    // At most seven ASCII digits, so no overflow.
    let header_len = length.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    if rest.len() < header_len {
        return Err(FrameError::Truncated("header"));
    }
    let (header_bytes, rest) = rest.split_at(header_len);
    // Checked as UTF-8 once, whole: the JSON reader then takes its strings as they are instead
    // of checking each one again.
    let header_text = std::str::from_utf8(header_bytes).map_err(|e| FrameError::BadHeader(e.to_string()))?;
    let header: Header = serde_json::from_str(header_text).map_err(|e| FrameError::BadHeader(e.to_string()))?;
    // The separator is always sent; a frame with an empty payload may stop right after it, or
    // (leniently) without it.
    let payload = match rest.strip_prefix(b"\r\n") {
        Some(p) => p,
        None if rest.is_empty() => rest,
        None => return Err(FrameError::Truncated("header separator")),
    };
    if payload.len() != header.payload_size {
        return Err(FrameError::PayloadSizeMismatch { declared: header.payload_size, actual: payload.len() });
    }
    Ok(Frame { header, payload })
}

/// Writes a frame: `header` (which must serialise to a JSON object without a `payload_size`)
/// gains `payload_size` as its last field, where the SDK writes it too. Serialised straight
/// into place, not through a `Value`: every reply and event frame is written here.
pub fn encode(header: &impl Serialize, payload: &[u8]) -> Bytes {
    let mut json = serde_json::to_vec(header).unwrap_or_default();
    if json.len() < 2 || json.last() != Some(&b'}') {
        json = b"{}".to_vec();
    }
    json.pop();
    if json.len() > 1 {
        json.push(b',');
    }
    json.extend_from_slice(b"\"payload_size\":");
    json.extend_from_slice(itoa::Buffer::new().format(payload.len()).as_bytes());
    json.push(b'}');
    let mut length = itoa::Buffer::new();
    let length = length.format(json.len());
    let mut out = Vec::with_capacity(MAGIC.len() + length.len() + json.len() + payload.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(length.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(header: &str, payload: &str) -> Vec<u8> {
        format!("TWILSOCK V3.0 {}\r\n{header}\r\n{payload}", header.len()).into_bytes()
    }

    #[test]
    fn a_valid_frame_parses_with_its_payload() {
        let bytes = raw(r#"{"method":"message","id":"TM1","payload_size":7}"#, r#"{"a":1}"#);
        let frame = parse(&bytes, 1024).expect("valid");
        assert_eq!(frame.header.method, "message");
        assert_eq!(frame.header.id.as_deref(), Some("TM1"));
        assert_eq!(frame.payload, br#"{"a":1}"#);
    }

    /// An acknowledgement's method and id are read in place, not copied; an id with an escape
    /// in it is copied, unescaped.
    #[test]
    fn a_headers_plain_strings_are_borrowed_and_escaped_ones_unescaped() {
        use std::borrow::Cow;
        let bytes = raw(r#"{"method":"reply","id":"TM4","payload_type":"application/json","payload_size":0}"#, "");
        let frame = parse(&bytes, 1024).expect("valid");
        assert!(matches!(frame.header.method, Cow::Borrowed("reply")), "{:?}", frame.header.method);
        assert!(matches!(frame.header.id, Some(Cow::Borrowed("TM4"))), "{:?}", frame.header.id);
        assert!(matches!(frame.header.payload_type, Some(Cow::Borrowed("application/json"))));
        let bytes = raw(r#"{"method":"reply","id":"T\u004d5","payload_size":0}"#, "");
        let frame = parse(&bytes, 1024).expect("valid");
        assert!(matches!(&frame.header.id, Some(Cow::Owned(id)) if id == "TM5"), "{:?}", frame.header.id);
    }

    #[test]
    fn an_empty_payload_may_omit_the_trailing_separator() {
        let header = r#"{"method":"init","id":"TM2","payload_size":0}"#;
        assert!(parse(&raw(header, ""), 1024).expect("with CRLF").payload.is_empty());
        let bare = format!("TWILSOCK V3.0 {}\r\n{header}", header.len()).into_bytes();
        assert!(parse(&bare, 1024).expect("without CRLF").payload.is_empty());
    }

    #[test]
    fn encode_and_parse_round_trip_with_multibyte_text() {
        let bytes = encode(&json!({"method":"reply","id":"TM3"}), "{\"x\":\"é\"}".as_bytes());
        let frame = parse(&bytes, 1024).expect("round trip");
        assert_eq!(frame.header.method, "reply");
        assert_eq!(frame.header.payload_size, "{\"x\":\"é\"}".len());
        assert_eq!(frame.payload, "{\"x\":\"é\"}".as_bytes());
    }

    #[test]
    fn payload_size_is_the_headers_last_field() {
        let header = r#"{"id":"TM3","method":"reply","payload_size":2}"#;
        let expected = format!("TWILSOCK V3.0 {}\r\n{header}\r\n{{}}", header.len());
        assert_eq!(encode(&json!({"method":"reply","id":"TM3"}), b"{}"), expected.as_bytes());
        assert_eq!(encode(&json!({}), b""), "TWILSOCK V3.0 18\r\n{\"payload_size\":0}\r\n".as_bytes());
    }

    #[test]
    fn truncated_frames_are_refused() {
        let bytes = raw(r#"{"method":"message","id":"TM1","payload_size":7}"#, r#"{"a":1}"#);
        for cut in [0, 5, 14, 16, 30, bytes.len() - 1] {
            assert!(parse(&bytes[..cut], 1024).is_err(), "cut at {cut}");
        }
        assert_eq!(parse(&bytes[..20], 1024).expect_err("refused"), FrameError::Truncated("header"));
    }

    #[test]
    fn bad_lengths_are_refused() {
        let header = r#"{"method":"init","payload_size":0}"#;
        let cases: [&[u8]; 5] = [
            b"TWILSOCK V3.0 \r\n{}\r\n",
            b"TWILSOCK V3.0 abc\r\n{}\r\n",
            b"TWILSOCK V3.0 99999999999999999999\r\n{}",
            b"TWILSOCK V3.0 2 {}\r\n",
            b"TWILSOCK V3.0 -2\r\n{}\r\n",
        ];
        for bytes in cases {
            assert_eq!(parse(bytes, 1024).expect_err("refused"), FrameError::BadHeaderLength, "{bytes:?}");
        }
        // A header length one short splits the JSON.
        let short = format!("TWILSOCK V3.0 {}\r\n{header}\r\n", header.len() - 1).into_bytes();
        assert!(matches!(parse(&short, 1024), Err(FrameError::BadHeader(_))));
        // payload_size must match what follows.
        let lying = raw(r#"{"method":"message","payload_size":3}"#, "{}");
        assert_eq!(
            parse(&lying, 1024).expect_err("refused"),
            FrameError::PayloadSizeMismatch { declared: 3, actual: 2 }
        );
    }

    #[test]
    fn other_magic_and_non_utf8_headers_are_refused() {
        assert_eq!(parse(b"TWILSOCK V2.0 2\r\n{}\r\n", 1024).expect_err("refused"), FrameError::BadMagic);
        assert_eq!(parse(b"", 1024).expect_err("refused"), FrameError::BadMagic);
        let mut bytes = b"TWILSOCK V3.0 4\r\n".to_vec();
        bytes.extend_from_slice(&[0x22, 0xff, 0xfe, 0x22]);
        bytes.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&bytes, 1024), Err(FrameError::BadHeader(_))));
        // The whole header is checked, a field nothing reads included; text beyond ASCII is
        // UTF-8 like any other, and still read in place.
        let mut header = br#"{"method":"reply","status":""#.to_vec();
        header.push(0xff);
        header.extend_from_slice(br#"","payload_size":0}"#);
        let mut bytes = format!("TWILSOCK V3.0 {}\r\n", header.len()).into_bytes();
        bytes.extend_from_slice(&header);
        assert!(matches!(parse(&bytes, 1024), Err(FrameError::BadHeader(_))));
        let bytes = raw(r#"{"method":"reply","id":"TMé","payload_size":0}"#, "");
        let frame = parse(&bytes, 1024).expect("UTF-8");
        assert!(matches!(frame.header.id, Some(std::borrow::Cow::Borrowed("TMé"))), "{:?}", frame.header.id);
        // JSON without a method is not a header either.
        assert!(matches!(parse(&raw(r#"{"id":"x","payload_size":0}"#, ""), 1024), Err(FrameError::BadHeader(_))));
    }

    #[test]
    fn oversized_frames_are_refused_before_reading() {
        let bytes = raw(r#"{"method":"message","payload_size":10}"#, &"x".repeat(10));
        assert_eq!(parse(&bytes, 16).expect_err("refused"), FrameError::TooLarge { size: bytes.len(), limit: 16 });
    }
}
