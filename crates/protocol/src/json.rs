//! A compact JSON object written field by field, byte for byte as `serde_json` writes the same
//! struct, for the few values written once per change (the change-log event).
//!
//! `serde_json` escapes every string one byte at a time, field names included. Here names are
//! written as they are, and a string is scanned in one pass the compiler vectorises; only a
//! string that needs escaping goes through `serde_json`. A [`Value`] is written the same way
//! ([`push_value`]): for a document carrying long strings, `serde_json`'s byte-at-a-time escaping
//! of its data was most of what a write cost.

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
        push_value(&mut self.out, value);
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

/// Appends `value` as `serde_json::to_writer` writes it: compact, a map's entries in its order,
/// byte for byte the same text.
pub fn push_value(out: &mut Vec<u8>, value: &Value) {
    write_value(out, value);
}

/// The length of the text [`push_value`] writes for `value`, counted without writing it.
pub fn encoded_len(value: &Value) -> usize {
    let mut count = Count(0);
    write_value(&mut count, value);
    count.0
}

/// Where JSON text goes: a buffer, or a count of its bytes.
trait Sink {
    fn raw(&mut self, bytes: &[u8]);
    /// `value` as `serde_json` writes it, for the rare part it alone should write.
    fn serialized<T: Serialize + ?Sized>(&mut self, value: &T);
}

impl Sink for Vec<u8> {
    fn raw(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn serialized<T: Serialize + ?Sized>(&mut self, value: &T) {
        // Writing to a Vec fails only on a value that refuses to serialise, which `str`,
        // numbers and `Value` never do; `null` keeps the text well-formed regardless.
        let mark = self.len();
        if serde_json::to_writer(&mut *self, value).is_err() {
            self.truncate(mark);
            self.extend_from_slice(b"null");
        }
    }
}

struct Count(usize);

impl std::io::Write for Count {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink for Count {
    fn raw(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }

    fn serialized<T: Serialize + ?Sized>(&mut self, value: &T) {
        let mark = self.0;
        if serde_json::to_writer(&mut *self, value).is_err() {
            self.0 = mark + "null".len();
        }
    }
}

fn write_value(out: &mut impl Sink, value: &Value) {
    match value {
        Value::Null => out.raw(b"null"),
        Value::Bool(b) => out.raw(if *b { b"true" } else { b"false" }),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => out.raw(itoa::Buffer::new().format(u).as_bytes()),
            (None, Some(i)) => out.raw(itoa::Buffer::new().format(i).as_bytes()),
            // A float: `serde_json`'s shortest form (ryu), with its own rules for the exponent.
            (None, None) => out.serialized(n),
        },
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.raw(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.raw(b",");
                }
                write_value(out, item);
            }
            out.raw(b"]");
        }
        Value::Object(map) => {
            out.raw(b"{");
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.raw(b",");
                }
                write_str(out, key);
                out.raw(b":");
                write_value(out, item);
            }
            out.raw(b"}");
        }
    }
}

fn write_str(out: &mut impl Sink, s: &str) {
    if needs_escape(s) {
        out.serialized(s);
    } else {
        out.raw(b"\"");
        out.raw(s.as_bytes());
        out.raw(b"\"");
    }
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    write_str(out, s);
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
    fn a_value_is_written_and_counted_as_serde_json_writes_it() {
        let long = "x".repeat(20_000);
        let samples = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(-1),
            json!(1.5),
            json!(-0.0),
            json!(1e21),
            json!(1e-7),
            json!(123456789.125),
            json!(f64::MAX),
            json!(""),
            json!("é ☃ 🦀 \u{7f} /"),
            json!("quote\" back\\ tab\t nul\u{0} \u{1f}"),
            json!(long),
            json!([]),
            json!({}),
            json!([1, "two", [3.5, null], { "k": [] }]),
            json!({ "z": 1, "a": { "nested \"key\"": [true, { "\n": -2 }] }, "m": "x\ny" }),
            json!({ "n": 1, "who": "writer-3", "pad": long }),
        ];
        for v in &samples {
            let expected = serde_json::to_vec(v).expect("serialises");
            let mut written = b"prefix".to_vec();
            push_value(&mut written, v);
            assert_eq!(&written[6..], &expected[..], "{v}");
            assert_eq!(encoded_len(v), expected.len(), "{v}");
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
