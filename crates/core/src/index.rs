//! Indexes over a service's Maps, for instant and live queries.
//!
//! A service declares named indexes ([`IndexDef`]) over one Map, or over every Map whose unique
//! name starts with a prefix, optionally naming fields to index. A node keeps each index it is
//! asked about in memory ([`IndexState`]): the items of its Maps, and for every indexed field
//! the items by value, built once from the store and then kept current from the change log (the
//! truth), so a query answers from memory after reading only what was committed since.

use crate::error::CoreError;
use crate::model::ObjectKind;
use crate::sid::Sid;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

/// Index names: Twilio's look like `tr-worker`.
const MAX_NAME_CHARS: usize = 64;
/// Indexed fields per index, at most.
pub const MAX_FIELDS: usize = 16;
/// Indexes per service, at most.
pub const MAX_INDEXES: usize = 32;

/// What an index covers: one Map, or every Map whose unique name starts with a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexSource {
    /// A Map by unique name.
    Map(String),
    /// Every Map whose unique name starts with this.
    MapPrefix(String),
}

impl IndexSource {
    /// Whether a Map named `unique_name` belongs to the index.
    pub fn covers(&self, unique_name: Option<&str>) -> bool {
        match (self, unique_name) {
            (IndexSource::Map(name), Some(n)) => n == name,
            (IndexSource::MapPrefix(prefix), Some(n)) => n.starts_with(prefix.as_str()),
            (_, None) => false,
        }
    }

    /// Whether items of different Maps may share a key (a prefix index): their keys in results
    /// are then qualified by the Map.
    pub fn many(&self) -> bool {
        matches!(self, IndexSource::MapPrefix(_))
    }
}

/// A named index of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    pub source: IndexSource,
    /// Field paths kept sorted for lookups (`key`, `data.a.b`); none means every query scans
    /// the index's items in memory.
    #[serde(default)]
    pub fields: Vec<String>,
}

impl IndexDef {
    pub fn check(&self) -> Result<(), CoreError> {
        let n = self.name.chars().count();
        if n == 0
            || n > MAX_NAME_CHARS
            || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(CoreError::invalid(
                "name",
                format!("an index name is 1 to {MAX_NAME_CHARS} letters, digits, '-', '_' or '.'"),
            ));
        }
        match &self.source {
            IndexSource::Map(m) | IndexSource::MapPrefix(m) if m.is_empty() || m.len() > 320 => {
                return Err(CoreError::invalid("map", "must be 1 to 320 characters"));
            }
            _ => {}
        }
        if self.fields.len() > MAX_FIELDS {
            return Err(CoreError::invalid("fields", format!("at most {MAX_FIELDS} fields per index")));
        }
        for field in &self.fields {
            parse_field(field)?;
        }
        Ok(())
    }
}

/// A field path, as the query language writes it: `key`, or `data` and its segments.
pub type FieldPath = ferrosync_query::Path;

/// Reads a field path the way the query language does (it is what queries name).
pub fn parse_field(field: &str) -> Result<FieldPath, CoreError> {
    let bad =
        |why: &str| CoreError::invalid("fields", format!("'{field}' is not a field such as key or data.a.b: {why}"));
    match ferrosync_query::parse(&format!("{field} exists")) {
        Ok(ferrosync_query::Expr::Exists { path, .. }) => Ok(path),
        Ok(_) => Err(bad("not a single field")),
        Err(e) => Err(bad(e.message())),
    }
}

/// The value at `path` of an item, resolved as the query language resolves it: object members
/// by name, array elements by a decimal index without leading zeros; `null` is missing.
pub fn field_value<'a>(path: &FieldPath, key: &'a str, data: &'a Value) -> Option<FieldValue<'a>> {
    match path {
        FieldPath::Key => Some(FieldValue::Str(key)),
        FieldPath::Data(segments) => {
            let mut at = data;
            for s in segments {
                at = match at {
                    Value::Object(m) => m.get(s.as_str())?,
                    Value::Array(items) => {
                        let canonical = s == "0" || (!s.starts_with('0') && s.chars().all(|c| c.is_ascii_digit()));
                        if !canonical {
                            return None;
                        }
                        items.get(s.parse::<usize>().ok()?)?
                    }
                    _ => return None,
                };
            }
            (!at.is_null()).then_some(FieldValue::Json(at))
        }
    }
}

pub enum FieldValue<'a> {
    Str(&'a str),
    Json(&'a Value),
}

/// A number ordered totally, for the sorted maps.
#[derive(Debug, Clone, Copy)]
pub struct Num(pub f64);

impl PartialEq for Num {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for Num {}
impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Num {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Where an index can narrow a query down: the items whose field has one of these values, or
/// lies in these ranges. Always a superset of the matches; results are checked again.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A string's text, or a number's or boolean's canonical text.
    Text(String),
    Number(f64),
    TextRange(Bound<String>, Bound<String>),
    NumberRange(Bound<f64>, Bound<f64>),
}

/// Lookups on one field: an item qualifies when any of them finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldLookup {
    pub field: FieldPath,
    pub any_of: Vec<Lookup>,
}

/// What a query's top-level conjunction lets an index narrow down, per field (see
/// [`ferrosync_query::Expr::constraints`]); a field with nothing usable is left out.
pub fn lookups(expr: &ferrosync_query::Expr) -> Vec<FieldLookup> {
    use ferrosync_query::Value as Lit;
    let exact = |v: &Lit| match v {
        Lit::Str(s) => Some(Lookup::Text(s.clone())),
        Lit::Number(n) => n.as_f64().map(Lookup::Number),
        Lit::Bool(b) => Some(Lookup::Text(b.to_string())),
        Lit::Array(_) => None,
    };
    let bound = |b: &Option<ferrosync_query::Bound>| -> Option<(Bound<Lit>, bool)> {
        match b {
            None => Some((Bound::Unbounded, true)),
            Some(b) if b.inclusive => Some((Bound::Included(b.value.clone()), false)),
            Some(b) => Some((Bound::Excluded(b.value.clone()), false)),
        }
    };
    let mut out = Vec::new();
    for c in expr.constraints() {
        let any_of = match &c.one_of {
            Some(values) => match values.iter().map(exact).collect::<Option<Vec<_>>>() {
                Some(found) => found,
                None => continue,
            },
            None => {
                let (Some((lo, _)), Some((hi, _))) = (bound(&c.lower), bound(&c.upper)) else { continue };
                match range(lo, hi) {
                    Some(r) => vec![r],
                    None => continue,
                }
            }
        };
        out.push(FieldLookup { field: c.path, any_of });
    }
    out
}

/// A range of numbers or of strings; bounds of both kinds keep the lower one only (a wider
/// range is still a superset).
fn range(lo: Bound<ferrosync_query::Value>, hi: Bound<ferrosync_query::Value>) -> Option<Lookup> {
    use ferrosync_query::Value as Lit;
    let kind = |b: &Bound<Lit>| match b {
        Bound::Included(v) | Bound::Excluded(v) => Some(matches!(v, Lit::Number(_))),
        Bound::Unbounded => None,
    };
    let number = |b: Bound<Lit>| match b {
        Bound::Included(Lit::Number(n)) => n.as_f64().map(Bound::Included),
        Bound::Excluded(Lit::Number(n)) => n.as_f64().map(Bound::Excluded),
        _ => Some(Bound::Unbounded),
    };
    let text = |b: Bound<Lit>| match b {
        Bound::Included(Lit::Str(s)) => Bound::Included(s),
        Bound::Excluded(Lit::Str(s)) => Bound::Excluded(s),
        _ => Bound::Unbounded,
    };
    let (lo_kind, hi_kind) = (kind(&lo), kind(&hi));
    let hi = if lo_kind.is_some() && hi_kind.is_some() && lo_kind != hi_kind { Bound::Unbounded } else { hi };
    match lo_kind.or(hi_kind)? {
        true => Some(Lookup::NumberRange(number(lo)?, number(hi)?)),
        false => Some(Lookup::TextRange(text(lo), text(hi))),
    }
}

/// An item of an index.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The unique name of its Map.
    pub map: String,
    pub key: String,
    pub data: Value,
    pub revision: u64,
}

type RowId = (Sid, String);

/// Sorted positions of one indexed field.
#[derive(Default)]
struct FieldIndex {
    text: BTreeMap<String, BTreeSet<RowId>>,
    numbers: BTreeMap<Num, BTreeSet<RowId>>,
}

/// The texts and numbers an item's field is found by: a string by its text (and its number,
/// when it reads as one), a number by its number and canonical text, a boolean by its text.
fn positions(v: Option<FieldValue<'_>>) -> (Option<String>, Option<f64>) {
    match v {
        Some(FieldValue::Str(s)) => (Some(s.to_owned()), s.parse::<f64>().ok().filter(|n| n.is_finite())),
        Some(FieldValue::Json(Value::String(s))) => (Some(s.clone()), s.parse::<f64>().ok().filter(|n| n.is_finite())),
        Some(FieldValue::Json(Value::Number(n))) => (Some(n.to_string()), n.as_f64()),
        Some(FieldValue::Json(Value::Bool(b))) => (Some(b.to_string()), None),
        _ => (None, None),
    }
}

impl FieldIndex {
    fn insert(&mut self, path: &FieldPath, id: &RowId, row: &Row) {
        let (text, number) = positions(field_value(path, &row.key, &row.data));
        if let Some(t) = text {
            self.text.entry(t).or_default().insert(id.clone());
        }
        if let Some(n) = number {
            self.numbers.entry(Num(n)).or_default().insert(id.clone());
        }
    }

    fn remove(&mut self, path: &FieldPath, id: &RowId, row: &Row) {
        let (text, number) = positions(field_value(path, &row.key, &row.data));
        if let Some(t) = text
            && let Some(set) = self.text.get_mut(&t)
        {
            set.remove(id);
            if set.is_empty() {
                self.text.remove(&t);
            }
        }
        if let Some(n) = number
            && let Some(set) = self.numbers.get_mut(&Num(n))
        {
            set.remove(id);
            if set.is_empty() {
                self.numbers.remove(&Num(n));
            }
        }
    }

    fn find(&self, lookups: &[Lookup]) -> BTreeSet<RowId> {
        let mut out = BTreeSet::new();
        for l in lookups {
            match l {
                Lookup::Text(t) => out.extend(self.text.get(t).into_iter().flatten().cloned()),
                Lookup::Number(n) => out.extend(self.numbers.get(&Num(*n)).into_iter().flatten().cloned()),
                Lookup::TextRange(lo, hi) => {
                    if range_is_valid(lo, hi) {
                        for (_, ids) in self.text.range::<String, _>((lo.clone(), hi.clone())) {
                            out.extend(ids.iter().cloned());
                        }
                    }
                }
                Lookup::NumberRange(lo, hi) => {
                    let lo = lo.map(Num);
                    let hi = hi.map(Num);
                    if range_is_valid(&lo, &hi) {
                        for (_, ids) in self.numbers.range((lo, hi)) {
                            out.extend(ids.iter().cloned());
                        }
                    }
                }
            }
        }
        out
    }
}

/// BTreeMap::range panics on an empty or inverted range; such a range finds nothing.
fn range_is_valid<T: Ord>(lo: &Bound<T>, hi: &Bound<T>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a < b,
        _ => true,
    }
}

/// An index as one node holds it: built from the store, then moved along the change log.
pub struct IndexState {
    pub def: IndexDef,
    fields: Vec<(FieldPath, FieldIndex)>,
    rows: HashMap<RowId, Row>,
    /// The Maps of the index by SID, with their unique names.
    maps: HashMap<Sid, String>,
    /// The last change-log seq applied.
    pub applied: u64,
}

impl IndexState {
    pub fn new(def: IndexDef, applied: u64) -> Result<Self, CoreError> {
        let fields = def
            .fields
            .iter()
            .map(|f| Ok((parse_field(f)?, FieldIndex::default())))
            .collect::<Result<_, CoreError>>()?;
        Ok(IndexState { def, fields, rows: HashMap::new(), maps: HashMap::new(), applied })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds a Map of the index (while building, or when one is created).
    pub fn add_map(&mut self, sid: &Sid, unique_name: &str) {
        self.maps.insert(sid.clone(), unique_name.to_owned());
    }

    /// Puts an item; an older revision than the one held is ignored (a build overlapping the
    /// log it then replays).
    pub fn put(&mut self, map: &Sid, key: &str, data: Value, revision: u64) {
        let Some(name) = self.maps.get(map).cloned() else { return };
        let id: RowId = (map.clone(), key.to_owned());
        if let Some(old) = self.rows.get(&id) {
            if old.revision > revision {
                return;
            }
            let old = old.clone();
            for (path, f) in &mut self.fields {
                f.remove(path, &id, &old);
            }
        }
        let row = Row { map: name, key: key.to_owned(), data, revision };
        for (path, f) in &mut self.fields {
            f.insert(path, &id, &row);
        }
        self.rows.insert(id, row);
    }

    pub fn remove(&mut self, map: &Sid, key: &str) {
        let id: RowId = (map.clone(), key.to_owned());
        if let Some(old) = self.rows.remove(&id) {
            for (path, f) in &mut self.fields {
                f.remove(path, &id, &old);
            }
        }
    }

    /// Drops a removed Map and its items.
    pub fn remove_map(&mut self, map: &Sid) {
        if self.maps.remove(map).is_none() {
            return;
        }
        let keys: Vec<String> = self.rows.keys().filter(|(m, _)| m == map).map(|(_, k)| k.clone()).collect();
        for key in keys {
            self.remove(map, &key);
        }
    }

    /// Applies one change-log event of the service (any kind; those of other objects are
    /// ignored).
    pub fn apply(&mut self, seq: u64, event: &crate::log::Event) {
        use crate::log::EventKind;
        if seq <= self.applied {
            return;
        }
        self.applied = seq;
        if event.object_kind != ObjectKind::Map {
            return;
        }
        match event.kind {
            EventKind::MapCreated => {
                if self.def.source.covers(event.unique_name.as_deref())
                    && let Some(name) = &event.unique_name
                {
                    self.add_map(&event.object_sid, name);
                }
            }
            EventKind::MapRemoved => self.remove_map(&event.object_sid),
            EventKind::MapItemAdded | EventKind::MapItemUpdated => {
                if let (Some(key), Some(data)) = (&event.item_key, &event.data) {
                    self.put(&event.object_sid, key, Value::clone(data), event.revision);
                }
            }
            EventKind::MapItemRemoved => {
                if let Some(key) = &event.item_key {
                    self.remove(&event.object_sid, key);
                }
            }
            _ => {}
        }
    }

    /// The rows `lookups` narrow the index down to (all rows without lookups on indexed
    /// fields), in (Map, key) order.
    pub fn candidates(&self, lookups: &[FieldLookup]) -> Vec<&Row> {
        let mut narrowed: Option<BTreeSet<RowId>> = None;
        for l in lookups {
            let Some((_, f)) = self.fields.iter().find(|(p, _)| p == &l.field) else { continue };
            let found = f.find(&l.any_of);
            narrowed = Some(match narrowed {
                None => found,
                Some(before) => before.intersection(&found).cloned().collect(),
            });
        }
        let mut rows: Vec<&Row> = match narrowed {
            Some(ids) => ids.iter().filter_map(|id| self.rows.get(id)).collect(),
            None => self.rows.values().collect(),
        };
        rows.sort_by(|a, b| (a.map.as_str(), a.key.as_str()).cmp(&(b.map.as_str(), b.key.as_str())));
        rows
    }

    /// Whether an indexed field can serve lookups on `field`.
    pub fn indexes(&self, field: &FieldPath) -> bool {
        self.fields.iter().any(|(p, _)| p == field)
    }
}

/// What one change-log event does to a live query's results (as the wire carries it).
pub use ferrosync_protocol::query::QueryChange;

/// The change `event` makes to the results of `expr` over the index `def`; `None` when it
/// makes none. Stateless: an update is judged by the data before and after it, which the
/// change log holds, so a live query can resume from any point of the log.
pub fn transition(def: &IndexDef, expr: &ferrosync_query::Expr, event: &crate::log::Event) -> Option<QueryChange> {
    use crate::log::EventKind;
    if event.object_kind != ObjectKind::Map || !def.source.covers(event.unique_name.as_deref()) {
        return None;
    }
    let map = event.unique_name.clone()?;
    let matches =
        |key: &str, data: &Option<std::sync::Arc<Value>>| data.as_deref().is_some_and(|d| expr.matches(key, d));
    match event.kind {
        EventKind::MapItemAdded | EventKind::MapItemUpdated => {
            let key = event.item_key.clone()?;
            if matches(&key, &event.data) {
                let data = Value::clone(event.data.as_deref()?);
                Some(QueryChange::ItemUpdated { map, key, data, revision: event.revision })
            } else if event.kind == EventKind::MapItemUpdated
                && (event.previous_data.is_none() || matches(&key, &event.previous_data))
            {
                Some(QueryChange::ItemRemoved { map, key })
            } else {
                None
            }
        }
        // Without the data it had, a removed item is reported as leaving (a client drops a key
        // it does not hold).
        EventKind::MapItemRemoved => {
            let key = event.item_key.clone()?;
            (event.previous_data.is_none() || matches(&key, &event.previous_data))
                .then_some(QueryChange::ItemRemoved { map, key })
        }
        EventKind::MapRemoved => Some(QueryChange::MapRemoved { map }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::SidKind;
    use serde_json::json;

    fn state(fields: &[&str]) -> (IndexState, Sid) {
        let def = IndexDef {
            name: "people".into(),
            source: IndexSource::MapPrefix("people".into()),
            fields: fields.iter().map(|f| f.to_string()).collect(),
        };
        let mut s = IndexState::new(def, 0).expect("a valid index");
        let map = Sid::new(SidKind::Map);
        s.add_map(&map, "people-eu");
        (s, map)
    }

    fn keys(rows: Vec<&Row>) -> Vec<&str> {
        rows.into_iter().map(|r| r.key.as_str()).collect()
    }

    #[test]
    fn lookups_find_by_text_number_and_range_and_follow_changes() {
        let (mut s, map) = state(&["data.age", "data.name"]);
        s.put(&map, "a", json!({"name": "Ann", "age": 31}), 1);
        s.put(&map, "b", json!({"name": "Bob", "age": "40"}), 1);
        s.put(&map, "c", json!({"name": "Cy", "age": 25.5}), 1);
        let age = parse_field("data.age").expect("a path");
        let name = parse_field("data.name").expect("a path");
        let find = |s: &IndexState, field: &FieldPath, any_of: Vec<Lookup>| {
            keys(s.candidates(&[FieldLookup { field: field.clone(), any_of }]))
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(find(&s, &age, vec![Lookup::Text("31".into())]), ["a"]);
        assert_eq!(find(&s, &age, vec![Lookup::Number(40.0)]), ["b"], "a numeric string is found by its number");
        assert_eq!(find(&s, &age, vec![Lookup::NumberRange(Bound::Excluded(25.5), Bound::Unbounded)]), ["a", "b"]);
        assert_eq!(
            find(&s, &age, vec![Lookup::NumberRange(Bound::Included(50.0), Bound::Included(10.0))]),
            Vec::<String>::new()
        );
        assert_eq!(
            find(&s, &name, vec![Lookup::TextRange(Bound::Included("B".into()), Bound::Excluded("D".into()))]),
            ["b", "c"]
        );
        assert_eq!(find(&s, &name, vec![Lookup::Text("Ann".into()), Lookup::Text("Cy".into())]), ["a", "c"]);

        // An update moves the item; an older revision is ignored; a removal forgets it.
        s.put(&map, "a", json!({"name": "Ann", "age": 32}), 2);
        s.put(&map, "a", json!({"name": "Ann", "age": 99}), 1);
        assert_eq!(find(&s, &age, vec![Lookup::Number(32.0)]), ["a"]);
        assert!(find(&s, &age, vec![Lookup::Number(31.0)]).is_empty());
        s.remove(&map, "a");
        assert!(find(&s, &name, vec![Lookup::Text("Ann".into())]).is_empty());
        s.remove_map(&map);
        assert!(s.is_empty());
    }

    #[test]
    fn without_an_indexed_field_every_row_is_a_candidate() {
        let (mut s, map) = state(&[]);
        s.put(&map, "b", json!({}), 1);
        s.put(&map, "a", json!({}), 1);
        let lookup = FieldLookup { field: FieldPath::Key, any_of: vec![Lookup::Text("zz".into())] };
        assert_eq!(keys(s.candidates(&[lookup])), ["a", "b"], "in key order");
        assert!(s.put_is_ignored_for_other_maps());
    }

    impl IndexState {
        fn put_is_ignored_for_other_maps(&mut self) -> bool {
            let before = self.len();
            self.put(&Sid::new(SidKind::Map), "x", json!({}), 1);
            self.len() == before
        }
    }

    #[test]
    fn definitions_are_checked() {
        let ok = IndexDef {
            name: "tr-worker".into(),
            source: IndexSource::Map("workers".into()),
            fields: vec!["key".into(), "data.attributes.worker_name".into()],
        };
        assert!(ok.check().is_ok());
        for (name, field) in
            [("", "key"), ("bad name", "key"), ("x", "attributes.name"), ("x", "data..a"), ("x", "data.a b")]
        {
            let def = IndexDef { name: name.into(), source: IndexSource::Map("m".into()), fields: vec![field.into()] };
            assert!(def.check().is_err(), "{name} {field}");
        }
    }

    #[test]
    fn transitions_follow_items_in_and_out_of_the_results() {
        use crate::log::{Event, EventKind};
        let def = IndexDef { name: "w".into(), source: IndexSource::MapPrefix("workers".into()), fields: vec![] };
        let expr = ferrosync_query::parse(r#"data.team == "eng""#).expect("parses");
        let event = |kind, name: &str, data: Option<Value>, previous: Option<Value>| Event {
            seq: 1,
            token: String::new(),
            kind,
            service_sid: Sid::new(SidKind::Service),
            object_sid: Sid::new(SidKind::Map),
            object_kind: ObjectKind::Map,
            unique_name: Some(name.to_owned()),
            item_index: None,
            item_key: Some("k".into()),
            message_sid: None,
            revision: 3,
            data: data.map(Into::into),
            previous_data: previous.map(Into::into),
            date_expires: None,
            date: crate::timestamp::Timestamp::now(),
            identity: "system".into(),
            reason: None,
        };
        let eng = Some(json!({"team": "eng"}));
        let ops = Some(json!({"team": "ops"}));
        let updated = Some(QueryChange::ItemUpdated {
            map: "workers-1".into(),
            key: "k".into(),
            data: json!({"team": "eng"}),
            revision: 3,
        });
        let removed = Some(QueryChange::ItemRemoved { map: "workers-1".into(), key: "k".into() });
        assert_eq!(transition(&def, &expr, &event(EventKind::MapItemAdded, "workers-1", eng.clone(), None)), updated);
        assert_eq!(transition(&def, &expr, &event(EventKind::MapItemAdded, "workers-1", ops.clone(), None)), None);
        assert_eq!(
            transition(&def, &expr, &event(EventKind::MapItemUpdated, "workers-1", eng.clone(), ops.clone())),
            updated,
            "enters"
        );
        assert_eq!(
            transition(&def, &expr, &event(EventKind::MapItemUpdated, "workers-1", ops.clone(), eng.clone())),
            removed,
            "leaves"
        );
        assert_eq!(
            transition(&def, &expr, &event(EventKind::MapItemUpdated, "workers-1", ops.clone(), ops.clone())),
            None,
            "never in"
        );
        assert_eq!(transition(&def, &expr, &event(EventKind::MapItemRemoved, "workers-1", None, eng.clone())), removed);
        assert_eq!(transition(&def, &expr, &event(EventKind::MapItemRemoved, "workers-1", None, ops.clone())), None);
        assert_eq!(
            transition(&def, &expr, &event(EventKind::MapItemAdded, "tasks", eng.clone(), None)),
            None,
            "another Map"
        );
        assert_eq!(
            transition(&def, &expr, &event(EventKind::MapRemoved, "workers-1", None, None)),
            Some(QueryChange::MapRemoved { map: "workers-1".into() })
        );
    }
}
