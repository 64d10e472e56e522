//! A compact JSON object written field by field, byte for byte as `serde_json` writes the same
//! struct, for the few values written once per change (the change-log event).
//!
//! `serde_json` escapes every string one byte at a time, field names included. Here names are
//! written as they are, and a string is scanned in one pass the compiler vectorises; only a
//! string that needs escaping goes through `serde_json`.

use serde::Serialize;
use serde_json::Value;

/// One JSON object being written; [`JsonObject::finish`] closes it.
pub struct JsonObject {
    out: Vec<u8>,
    first: bool,
}

impl JsonObject {
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        JsonObject { out, first: true }
    }

    /// `name` must need no escaping: field names are the program's own constants.
    fn name(&mut self, name: &str) {
        debug_assert!(!needs_escape(name), "field name {name:?} needs escaping");
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    pub fn u64(&mut self, name: &str, value: u64) -> &mut Self {
        self.name(name);
        self.out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    pub fn str(&mut self, name: &str, value: &str) -> &mut Self {
        self.name(name);
        push_str(&mut self.out, value);
        self
    }

    /// `null` when absent, as a derived `Serialize` writes an `Option` it does not skip.
    pub fn opt_str(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.str(name, value),
            None => self.null(name),
        }
    }

    pub fn null(&mut self, name: &str) -> &mut Self {
        self.name(name);
        self.out.extend_from_slice(b"null");
        self
    }

    pub fn value(&mut self, name: &str, value: &Value) -> &mut Self {
        self.value_at(name, value);
        self
    }

    /// [`JsonObject::value`], answering where in the text the value was written.
    pub fn value_at(&mut self, name: &str, value: &Value) -> std::ops::Range<usize> {
        self.name(name);
        let start = self.out.len();
        push_serialized(&mut self.out, value);
        start..self.out.len()
    }

    /// Opens an object as field `name`; its fields follow, up to [`JsonObject::end`].
    pub fn begin(&mut self, name: &str) -> &mut Self {
        self.name(name);
        self.out.push(b'{');
        self.first = true;
        self
    }

    /// Closes the object [`JsonObject::begin`] opened.
    pub fn end(&mut self) -> &mut Self {
        self.out.push(b'}');
        self.first = false;
        self
    }

    pub fn into_bytes(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }

    pub fn finish(self) -> String {
        // Only `&str`s and `serde_json`'s output were written, so this is UTF-8; the check is
        // one fast pass, and keeps the crate free of `unsafe`.
        String::from_utf8(self.into_bytes()).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// True when `s` holds a byte JSON escapes: a control character, `"` or `\`. No early exit,
/// so the loop is a vectorised reduction; the strings are short.
pub fn needs_escape(s: &str) -> bool {
    s.bytes().fold(false, |found, b| found | (b < 0x20) | (b == b'"') | (b == b'\\'))
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s) {
        push_serialized(out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

fn push_serialized<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing to a Vec fails only on a value that refuses to serialise, which `str` and
    // `Value` never do; `null` keeps the object well-formed regardless.
    let mark = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(mark);
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_escaped_exactly_when_serde_json_would() {
        let samples =
            ["", "plain", "quote\"", "back\\slash", "tab\there", "nul\u{0}", "\u{1f}", "é ☃ 🦀", "\u{7f}", "/slash"];
        for s in samples {
            let mut o = JsonObject::with_capacity(16);
            o.str("s", s);
            let written = o.finish();
            assert_eq!(written, serde_json::to_string(&json!({ "s": s })).expect("serialises"), "{s:?}");
            assert_eq!(needs_escape(s), serde_json::to_string(s).expect("serialises").len() != s.len() + 2, "{s:?}");
        }
    }

    #[test]
    fn fields_values_and_nulls_are_written_as_serde_json_writes_them() {
        let data = json!({ "n": 1.5, "s": "a\"b", "list": [1, null, true], "big": u64::MAX, "neg": -3 });
        let mut o = JsonObject::with_capacity(64);
        o.u64("seq", 42).opt_str("name", None).opt_str("other", Some("x")).value("data", &data);
        o.null("none").begin("inner").u64("a", 1).begin("deeper").end().str("b", "c").end().null("gone");
        let expected = json!({
            "seq": 42, "name": null, "other": "x", "data": data, "none": null,
            "inner": { "a": 1, "deeper": {}, "b": "c" }, "gone": null,
        });
        // `json!` sorts keys, so compare parsed; the text order is the call order.
        let written = o.finish();
        assert_eq!(serde_json::from_str::<Value>(&written).expect("valid JSON"), expected);
        assert!(written.starts_with(r#"{"seq":42,"name":null,"other":"x","data":{"#), "{written}");
        assert!(written.ends_with(r#","none":null,"inner":{"a":1,"deeper":{},"b":"c"},"gone":null}"#), "{written}");
    }
}
