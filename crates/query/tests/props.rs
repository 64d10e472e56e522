//! Properties: print∘parse is the identity, the parser never panics, and `matches` agrees with
//! a small brute-force evaluator written here from the documented semantics.

use ferrosync_query::{Expr, MAX_LENGTH, Op, Path, Value, parse};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Number, Value as Json, json};

// ---------------------------------------------------------------------------------------------
// Random syntax trees

fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,6}"
}

fn path() -> impl Strategy<Value = Path> {
    prop_oneof![
        1 => Just(Path::Key),
        4 => vec(segment(), 0..4).prop_map(Path::Data),
    ]
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
        (-1000_i32..1000, 0_u8..4).prop_filter_map("finite", |(mantissa, scale)| {
            Number::from_f64(f64::from(mantissa) / 10_f64.powi(i32::from(scale)))
        }),
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![vec(any::<char>(), 0..8).prop_map(String::from_iter), "[a-z\"\\\\ \n\t]{0,6}",]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![string().prop_map(Value::Str), number().prop_map(Value::Number), any::<bool>().prop_map(Value::Bool),]
}

fn leaf(scalar: BoxedStrategy<Value>, path: BoxedStrategy<Path>) -> BoxedStrategy<Expr> {
    let ops = prop_oneof![
        Just(Op::Eq),
        Just(Op::NotEq),
        Just(Op::Contains),
        Just(Op::Lt),
        Just(Op::Le),
        Just(Op::Gt),
        Just(Op::Ge),
    ];
    let compare = (path.clone(), ops, scalar.clone()).prop_map(|(path, op, value)| {
        // Ranges take numbers and strings only.
        let value = match (op.is_range(), value) {
            (true, Value::Bool(b)) => Value::Str(b.to_string()),
            (_, value) => value,
        };
        Expr::Compare { path, op, value, span: Default::default() }
    });
    let membership = (path.clone(), prop_oneof![Just(Op::In), Just(Op::NotIn)], vec(scalar, 0..5))
        .prop_map(|(path, op, items)| Expr::Compare { path, op, value: Value::Array(items), span: Default::default() });
    let exists = path.prop_map(|path| Expr::Exists { path, span: Default::default() });
    prop_oneof![4 => compare, 2 => membership, 1 => exists].boxed()
}

fn tree(leaf: BoxedStrategy<Expr>) -> impl Strategy<Value = Expr> {
    leaf.prop_recursive(4, 12, 3, |inner| {
        prop_oneof![vec(inner.clone(), 2..4).prop_map(Expr::And), vec(inner, 2..4).prop_map(Expr::Or),]
    })
}

/// The operators an expression counts against the limit.
fn operators(expr: &Expr) -> usize {
    match expr {
        Expr::And(items) | Expr::Or(items) => items.len() - 1 + items.iter().map(operators).sum::<usize>(),
        Expr::Compare { .. } | Expr::Exists { .. } => 1,
    }
}

fn any_expr() -> impl Strategy<Value = Expr> {
    tree(leaf(scalar().boxed(), path().boxed()))
        .prop_filter("within the limits", |expr| operators(expr) < 30 && expr.to_string().len() <= MAX_LENGTH)
}

// ---------------------------------------------------------------------------------------------
// Inputs for the never-panic property: arbitrary text, and near-valid token soup.

fn token_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("data.a".to_owned()),
        Just("data".to_owned()),
        Just("key".to_owned()),
        Just("data..".to_owned()),
        Just("foo".to_owned()),
        Just("==".to_owned()),
        Just("!=".to_owned()),
        Just("<=".to_owned()),
        Just(">".to_owned()),
        Just("=".to_owned()),
        Just("&&".to_owned()),
        Just("||".to_owned()),
        Just("&".to_owned()),
        Just("AND".to_owned()),
        Just("or".to_owned()),
        Just("in".to_owned()),
        Just("NOT_IN".to_owned()),
        Just("contains".to_owned()),
        Just("exists".to_owned()),
        Just("eq".to_owned()),
        Just("true".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just("\"x\"".to_owned()),
        Just("\"\\u00e9\\ud83d\\ude00\"".to_owned()),
        Just("\"\\".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        Just("\"".to_owned()),
        Just("-".to_owned()),
        Just("1.5e3".to_owned()),
        Just("1e999".to_owned()),
        Just("é".to_owned()),
        vec(any::<char>(), 1..3).prop_map(String::from_iter),
    ];
    let gap = prop_oneof![Just(""), Just(" "), Just("\n"), Just("  ")];
    vec((token, gap), 0..40).prop_map(|parts| parts.into_iter().map(|(token, gap)| token + gap).collect::<String>())
}

/// Parses `input`; checks the error's position invariants, or the round trip of what parsed.
fn check_input(input: &str) -> Result<(), TestCaseError> {
    match parse(input) {
        Ok(expr) => {
            let printed = expr.to_string();
            let again = parse(&printed);
            prop_assert_eq!(again.as_ref(), Ok(&expr), "{:?} printed as {:?}", input, printed);
            let _ = expr.matches("k", &json!({"a": [1, "x"]}));
            let _ = expr.constraints();
        }
        Err(err) => {
            prop_assert!(input.is_char_boundary(err.offset()));
            prop_assert_eq!(err.column(), input[..err.offset()].chars().count() + 1);
            prop_assert!(input[err.offset()..].starts_with(err.found()));
            prop_assert!(!err.to_string().is_empty());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A brute-force evaluator, written from the rustdoc of `Expr::matches` with f64 arithmetic
// (the generated numbers are small, so f64 is exact for them).

fn lookup(path: &Path, key: &str, data: &Json) -> Option<Json> {
    let Path::Data(segments) = path else {
        return Some(Json::String(key.to_owned()));
    };
    let mut here = data.clone();
    for segment in segments {
        here = match here {
            Json::Object(mut members) => members.remove(segment)?,
            Json::Array(items) => {
                let index: usize = segment.parse().ok()?;
                if index.to_string() != *segment {
                    return None;
                }
                items.into_iter().nth(index)?
            }
            _ => return None,
        };
    }
    if here.is_null() { None } else { Some(here) }
}

/// Whether `text` is a number literal: `-?d+(.d+)?([eE][+-]?d+)?`.
fn numeric(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if chars.first() == Some(&'-') {
        i += 1;
    }
    if !digits(&mut i) {
        return false;
    }
    if chars.get(i) == Some(&'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        i += 1;
        if matches!(chars.get(i), Some('+' | '-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == chars.len()
}

fn as_f64(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(t) if numeric(t) => t.parse().ok(),
        _ => None,
    }
}

fn oracle_eq(lit: &Value, v: &Json) -> bool {
    match (lit, v) {
        (Value::Str(s), Json::String(t)) => s == t,
        (Value::Str(s), Json::Number(n)) => *s == n.to_string(),
        (Value::Str(s), Json::Bool(b)) => *s == b.to_string(),
        (Value::Number(n), v) => as_f64(v) == n.as_f64(),
        (Value::Bool(b), Json::Bool(c)) => b == c,
        (Value::Bool(b), Json::String(t)) => *t == b.to_string(),
        _ => false,
    }
}

fn oracle_cmp(v: &Json, lit: &Value) -> Option<std::cmp::Ordering> {
    match (lit, v) {
        (Value::Number(n), v) => as_f64(v)?.partial_cmp(&n.as_f64()?),
        (Value::Str(s), Json::String(t)) => Some(t.as_str().cmp(s.as_str())),
        _ => None,
    }
}

fn oracle(expr: &Expr, key: &str, data: &Json) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match expr {
        Expr::And(items) => items.iter().all(|e| oracle(e, key, data)),
        Expr::Or(items) => items.iter().any(|e| oracle(e, key, data)),
        Expr::Exists { path, .. } => lookup(path, key, data).is_some(),
        Expr::Compare { path, op, value, .. } => {
            let field = lookup(path, key, data);
            let list = match value {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            let Some(v) = field else {
                return matches!(op, Op::NotEq | Op::NotIn);
            };
            match op {
                Op::Eq => oracle_eq(value, &v),
                Op::NotEq => !oracle_eq(value, &v),
                Op::In => list.iter().any(|item| oracle_eq(item, &v)),
                Op::NotIn => !list.iter().any(|item| oracle_eq(item, &v)),
                Op::Contains => match (&v, value) {
                    (Json::String(t), Value::Str(s)) => t.contains(s.as_str()),
                    (Json::Array(items), _) => items.iter().any(|item| oracle_eq(value, item)),
                    _ => false,
                },
                Op::Lt => oracle_cmp(&v, value) == Some(Less),
                Op::Le => matches!(oracle_cmp(&v, value), Some(Less | Equal)),
                Op::Gt => oracle_cmp(&v, value) == Some(Greater),
                Op::Ge => matches!(oracle_cmp(&v, value), Some(Greater | Equal)),
            }
        }
    }
}

// Small pools, so that queries and data often meet.

const WORDS: &[&str] =
    &["", "a", "ab", "b", "5", "5.0", "05", "-3", "1e1", "0.5", "true", "false", " 5", "+5", ".5", "7", "10"];

fn small_path() -> impl Strategy<Value = Path> {
    prop_oneof![
        1 => Just(Path::Key),
        1 => Just(Path::Data(vec![])),
        6 => vec(prop_oneof![Just("a"), Just("b"), Just("0"), Just("1"), Just("01")], 1..3)
            .prop_map(|segments| Path::Data(segments.into_iter().map(str::to_owned).collect())),
    ]
}

fn small_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        (-4_i64..12).prop_map(Number::from),
        (-8_i32..24).prop_filter_map("finite", |half| Number::from_f64(f64::from(half) / 2.0)),
    ]
}

fn small_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::sample::select(WORDS).prop_map(|w| Value::Str(w.to_owned())),
        small_number().prop_map(Value::Number),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn small_json_scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        small_number().prop_map(Json::Number),
        proptest::sample::select(WORDS).prop_map(|w| json!(w)),
    ]
}

fn small_json() -> impl Strategy<Value = Json> {
    small_json_scalar().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Json::Array),
            vec((prop_oneof![Just("a"), Just("b"), Just("0")], inner), 0..3)
                .prop_map(|members| { Json::Object(members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),) }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// (a) A random tree prints to text that parses back to the same tree.
    #[test]
    fn print_then_parse_is_identity(expr in any_expr()) {
        let printed = expr.to_string();
        let parsed = parse(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&expr), "printed: {}", printed);
    }

    /// (b) Arbitrary text never panics the parser, and errors point into the input.
    #[test]
    fn arbitrary_text_never_panics(input in any::<String>()) {
        check_input(&input)?;
    }

    /// (b) The same for near-valid token soup, which reaches deeper into the grammar.
    #[test]
    fn token_soup_never_panics(input in token_soup()) {
        check_input(&input)?;
    }

    /// (c) `matches` agrees with the brute-force evaluator, and every constraint of a
    /// matching expression holds.
    #[test]
    fn matches_agrees_with_brute_force(
        expr in tree(leaf(small_scalar().boxed(), small_path().boxed())),
        key in proptest::sample::select(WORDS),
        data in small_json(),
    ) {
        let expected = oracle(&expr, key, &data);
        prop_assert_eq!(expr.matches(key, &data), expected, "{} on {} / {}", expr, key, data);
        if expected {
            for constraint in expr.constraints() {
                let field = lookup(&constraint.path, key, &data);
                let field = field.as_ref();
                if let Some(values) = &constraint.one_of {
                    prop_assert!(field.is_some_and(|v| values.iter().any(|x| oracle_eq(x, v))));
                }
                if let Some(bound) = &constraint.lower {
                    let ord = field.and_then(|v| oracle_cmp(v, &bound.value));
                    prop_assert!(matches!(ord, Some(std::cmp::Ordering::Greater))
                        || (bound.inclusive && ord == Some(std::cmp::Ordering::Equal)));
                }
                if let Some(bound) = &constraint.upper {
                    let ord = field.and_then(|v| oracle_cmp(v, &bound.value));
                    prop_assert!(matches!(ord, Some(std::cmp::Ordering::Less))
                        || (bound.inclusive && ord == Some(std::cmp::Ordering::Equal)));
                }
            }
        }
    }
}
