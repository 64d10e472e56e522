//! Evaluating an expression against one item.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value as Json};

use crate::ast::{Expr, Op, Path, Value};
use crate::lexer::number_literal;

/// What a path resolved to: the item key or a non-null JSON value.
#[derive(Clone, Copy)]
enum Field<'a> {
    Key(&'a str),
    Json(&'a Json),
}

impl Expr {
    /// Whether the item with this key and data matches.
    ///
    /// Semantics, for a field `f` (`key`, or the JSON value at `data.…`) and a literal `v`:
    ///
    /// * **Missing fields.** A path that leads nowhere (a member that is absent, an index past the
    ///   end, a step into a scalar) or to `null` is *missing*: `==`, `in`, `contains`, `<`, `<=`,
    ///   `>`, `>=` and `exists` are false, `!=` and `not_in` are true. `key` is never missing
    ///   and compares as a string.
    /// * **Paths.** Each segment after `data` names an object member; on an array, a segment that
    ///   is a decimal index without leading zeros (`0`, `12`) selects that element.
    /// * **Equality** (`==`, `!=`, `in`, `not_in`, and array elements for `contains`):
    ///   * a string literal equals a JSON string with the same text, or a JSON number or boolean
    ///     whose canonical text is that string (`"30"` equals `30`, `"true"` equals `true`;
    ///     `"30.0"` does not equal `30`). Twilio's values are always strings while data may hold
    ///     numbers;
    ///   * a number literal equals a JSON number with the same numeric value (compared exactly,
    ///     `1` equals `1.0`), or a JSON string that reads as a number literal of this language
    ///     with that value (`5` equals `"5"` and `"5.0"`, not `" 5"`);
    ///   * `true`/`false` equal the JSON boolean, or the JSON string `"true"`/`"false"`;
    ///   * objects, arrays and `null` equal nothing.
    ///
    ///   `!=` is the negation of `==`, `not_in` the negation of `in`; so both are true for a
    ///   missing field and for an object or array.
    /// * **`in`** is true when the field equals one of the array's items.
    /// * **`contains`**: on a JSON string (or `key`), a string literal is a substring of it (the
    ///   empty string is in every string; other literals are false); on a JSON array, some
    ///   element equals the literal; false on anything else.
    /// * **Ranges** (`<`, `<=`, `>`, `>=`): a number literal compares numerically with a JSON
    ///   number, or a JSON string that reads as a number literal; a string literal compares with
    ///   a JSON string byte by byte (lexicographically); anything else is false.
    /// * **`exists`**: the field is present and not `null`.
    ///
    /// An empty `And` is true and an empty `Or` false.
    pub fn matches(&self, key: &str, data: &Json) -> bool {
        match self {
            Self::And(items) => items.iter().all(|item| item.matches(key, data)),
            Self::Or(items) => items.iter().any(|item| item.matches(key, data)),
            Self::Exists { path, .. } => resolve(path, key, data).is_some(),
            Self::Compare { path, op, value, .. } => compare(resolve(path, key, data), *op, value),
        }
    }
}

fn resolve<'a>(path: &Path, key: &'a str, data: &'a Json) -> Option<Field<'a>> {
    let segments = match path {
        Path::Key => return Some(Field::Key(key)),
        Path::Data(segments) => segments,
    };
    let mut current = data;
    for segment in segments {
        current = match current {
            Json::Object(members) => members.get(segment)?,
            Json::Array(items) => items.get(array_index(segment)?)?,
            _ => return None,
        };
    }
    (!current.is_null()).then_some(Field::Json(current))
}

/// A segment read as an array index: decimal digits without leading zeros.
fn array_index(segment: &str) -> Option<usize> {
    let canonical = segment == "0"
        || (segment.starts_with(|c: char| matches!(c, '1'..='9')) && segment.bytes().all(|b| b.is_ascii_digit()));
    if canonical { segment.parse().ok() } else { None }
}

fn compare(field: Option<Field<'_>>, op: Op, value: &Value) -> bool {
    let Some(field) = field else {
        return matches!(op, Op::NotEq | Op::NotIn);
    };
    match op {
        Op::Eq => equals(value, field),
        Op::NotEq => !equals(value, field),
        Op::In => one_of(value, field),
        Op::NotIn => !one_of(value, field),
        Op::Contains => contains(field, value),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let Some(ordering) = order(field, value) else {
                return false;
            };
            match op {
                Op::Lt => ordering == Ordering::Less,
                Op::Le => ordering != Ordering::Greater,
                Op::Gt => ordering == Ordering::Greater,
                _ => ordering != Ordering::Less,
            }
        }
    }
}

/// `field in value`; a scalar `value` (only in hand-built expressions) acts as a one-item array.
fn one_of(value: &Value, field: Field<'_>) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|item| equals(item, field)),
        scalar => equals(scalar, field),
    }
}

/// The field as a string, if it is one.
fn as_str<'a>(field: Field<'a>) -> Option<&'a str> {
    match field {
        Field::Key(key) => Some(key),
        Field::Json(Json::String(s)) => Some(s),
        Field::Json(_) => None,
    }
}

/// The text a string literal is compared with: strings as they are, numbers and booleans in
/// their canonical JSON text.
fn as_text(field: Field<'_>) -> Option<Cow<'_, str>> {
    match field {
        Field::Json(Json::Number(n)) => Some(Cow::Owned(n.to_string())),
        Field::Json(Json::Bool(b)) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        other => as_str(other).map(Cow::Borrowed),
    }
}

/// The number a number literal is compared with.
fn as_number(field: Field<'_>) -> Option<Cow<'_, Number>> {
    match field {
        Field::Json(Json::Number(n)) => Some(Cow::Borrowed(n)),
        other => as_str(other).and_then(number_literal).map(Cow::Owned),
    }
}

/// The boolean `true`/`false` is compared with.
fn as_bool(field: Field<'_>) -> Option<bool> {
    match field {
        Field::Json(Json::Bool(b)) => Some(*b),
        other => match as_str(other)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
    }
}

/// The equality of [`Expr::matches`]: the literal `value` against a present field.
fn equals(value: &Value, field: Field<'_>) -> bool {
    match value {
        Value::Str(s) => as_text(field).is_some_and(|text| text == s.as_str()),
        Value::Number(n) => as_number(field).is_some_and(|m| compare_numbers(&m, n) == Some(Ordering::Equal)),
        Value::Bool(b) => as_bool(field) == Some(*b),
        Value::Array(_) => false,
    }
}

fn contains(field: Field<'_>, value: &Value) -> bool {
    match field {
        Field::Json(Json::Array(items)) => items.iter().any(|item| !item.is_null() && equals(value, Field::Json(item))),
        other => match (as_str(other), value) {
            (Some(text), Value::Str(needle)) => text.contains(needle.as_str()),
            _ => false,
        },
    }
}

/// How the field orders against the literal, when the two are comparable.
fn order(field: Field<'_>, value: &Value) -> Option<Ordering> {
    match value {
        Value::Number(n) => compare_numbers(as_number(field)?.as_ref(), n),
        Value::Str(s) => Some(as_str(field)?.as_bytes().cmp(s.as_bytes())),
        Value::Bool(_) | Value::Array(_) => None,
    }
}

/// A JSON number, exactly.
enum Exact {
    Int(i128),
    Float(f64),
}

fn exact(n: &Number) -> Exact {
    if let Some(i) = n.as_i64() {
        Exact::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Exact::Int(i128::from(u))
    } else {
        Exact::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Compares two numbers exactly, integers with floats included.
pub(crate) fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    match (exact(a), exact(b)) {
        (Exact::Int(x), Exact::Int(y)) => Some(x.cmp(&y)),
        (Exact::Float(x), Exact::Float(y)) => x.partial_cmp(&y),
        (Exact::Int(x), Exact::Float(y)) => compare_int_float(x, y),
        (Exact::Float(x), Exact::Int(y)) => compare_int_float(y, x).map(Ordering::reverse),
    }
}

fn compare_int_float(int: i128, float: f64) -> Option<Ordering> {
    /// 2^127: every float below it and at or above its negation truncates into an `i128`.
    const BOUND: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if float.is_nan() {
        return None;
    }
    if float >= BOUND {
        return Some(Ordering::Less);
    }
    if float < -BOUND {
        return Some(Ordering::Greater);
    }
    let whole = float.trunc();
    // In range by the checks above, so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let whole_int = whole as i128;
    Some(int.cmp(&whole_int).then_with(|| {
        // Same integer part: the fraction decides.
        0.0_f64.partial_cmp(&(float - whole)).unwrap_or(Ordering::Equal)
    }))
}
