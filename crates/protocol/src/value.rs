//! A JSON value read as `serde_json` reads a [`Value`], an object's members gathered first and
//! put in order once.
//!
//! `serde_json`'s map (a `BTreeMap` without its `preserve_order` feature, which this project
//! leaves off: signed Matrix JSON and stored data are written with their keys in order) takes
//! each member with an insert that walks and splits the tree. A document of 600 small fields
//! spent 560 k instructions a write on those inserts, a third of its whole write. Here the
//! members are collected, sorted once (a stable sort, cheap when they come in order, as most
//! clients' do) and the tree is built from the sorted run in one pass. Of members with the
//! same key the last wins, as with `serde_json`. One difference, on purpose: `serde_json` (with
//! its `raw_value` feature, which this project uses) reads an object whose first member is named
//! `$serde_json::private::RawValue` as the JSON text that member holds; here it is a member like
//! any other, as the client sent it.

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Reads a [`Value`]: for `#[serde(deserialize_with = "…")]` on a field of type `Value`.
pub fn read_value<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    d.deserialize_any(ValueReader)
}

/// As [`read_value`], for a field of type `Option<Value>` (`null` reads as `None`).
pub fn read_optional_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Option::<Read>::deserialize(d).map(|v| v.map(|Read(v)| v))
}

/// A [`Value`] read by [`read_value`].
#[derive(Debug, Clone, PartialEq)]
pub struct Read(pub Value);

impl<'de> Deserialize<'de> for Read {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        read_value(d).map(Read)
    }
}

/// Members an object takes one insert at a time: what one leaf of `BTreeMap` holds.
const FEW: usize = 11;

struct ValueReader;

impl<'de> DeserializeSeed<'de> for ValueReader {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        read_value(d)
    }
}

impl<'de> Visitor<'de> for ValueReader {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        read_value(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(ValueReader)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        // The first members go straight into the map: while it is one leaf of the tree, an
        // insert is cheaper than gathering and sorting.
        let mut map = Map::new();
        while map.len() < FEW {
            let Some(key) = access.next_key::<String>()? else { return Ok(Value::Object(map)) };
            let value = access.next_value_seed(ValueReader)?;
            map.insert(key, value);
        }
        let mut members: Vec<(String, Value)> = map.into_iter().collect();
        while let Some(key) = access.next_key::<String>()? {
            members.push((key, access.next_value_seed(ValueReader)?));
        }
        // `BTreeMap`'s `FromIterator`: a stable sort (the members taken from the map first,
        // in order, before any later one of the same key), then one pass that keeps the last
        // of equal keys.
        Ok(Value::Object(members.into_iter().collect::<Map<String, Value>>()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(text: &str) -> (Result<Value, String>, Result<Value, String>) {
        let theirs = serde_json::from_str::<Value>(text).map_err(|e| e.to_string());
        let ours = serde_json::from_str::<Read>(text).map(|Read(v)| v).map_err(|e| e.to_string());
        (ours, theirs)
    }

    #[test]
    fn a_value_reads_as_serde_json_reads_it() {
        let many: String = {
            // Keys out of order, in runs and repeated, as a client's map might send them.
            let members: Vec<String> =
                (0..700).map(|i| format!("\"k{}\":{i}", (i * 7919) % 500)).chain(["\"k3\":\"last\"".into()]).collect();
            format!("{{{}}}", members.join(","))
        };
        let samples = [
            "null",
            "true",
            "0",
            "-0",
            "18446744073709551615",
            "-9223372036854775808",
            "1.5e300",
            "-2.5",
            "1e400",
            r#""é\t☃\u0000\ud83e\udd80""#,
            "[]",
            "{}",
            r#"{"b":1,"a":2,"c":{"z":[1,{"y":null,"x":true}],"a":"s"}}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":{"x":1},"b":0,"a":[3]}"#,
            // Around the members taken one insert at a time: eleven, twelve, and a repeat of
            // an early key past them.
            r#"{"k":1,"j":2,"i":3,"h":4,"g":5,"f":6,"e":7,"d":8,"c":9,"b":10,"a":11}"#,
            r#"{"k":1,"j":2,"i":3,"h":4,"g":5,"f":6,"e":7,"d":8,"c":9,"b":10,"a":11,"l":12}"#,
            r#"{"k":1,"j":2,"i":3,"h":4,"g":5,"f":6,"e":7,"d":8,"c":9,"b":10,"k":0,"a":11,"j":{},"z":1,"j":[]}"#,
            r#"[1,[2,[3,[4,{"k":[]}]]]]"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            "[1,2",
            &many,
        ];
        for text in samples {
            let (ours, theirs) = both(text);
            assert_eq!(ours, theirs, "{text}");
        }
        let token = r#"{"$serde_json::private::RawValue":"[1]"}"#;
        assert_eq!(both(token).0, Ok(serde_json::json!({"$serde_json::private::RawValue": "[1]"})));
        let (ours, _) = both(&many);
        let ours = ours.expect("reads");
        assert_eq!(ours.as_object().map(Map::len), Some(500));
        assert_eq!(ours["k3"], "last", "of equal keys the last wins");
        // Nesting as deep as serde_json allows, and one level more refused as it refuses it.
        for depth in [127, 128, 129] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let (ours, theirs) = both(&text);
            assert_eq!(ours, theirs, "depth {depth}");
        }
    }

    #[test]
    fn optional_values_read_null_and_absence_as_none() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Body {
            #[serde(default, deserialize_with = "read_optional_value")]
            data: Option<Value>,
        }
        let read = |text: &str| serde_json::from_str::<Body>(text).expect("reads").data;
        assert_eq!(read("{}"), None);
        assert_eq!(read(r#"{"data":null}"#), None);
        assert_eq!(read(r#"{"data":{"b":1,"a":[]}}"#), Some(serde_json::json!({"a":[],"b":1})));
    }
}
