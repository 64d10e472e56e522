//! `Expr::matches` and `Expr::constraints`.

use ferrosync_query::{Expr, Op, Path, Value, parse};
use insta::assert_debug_snapshot;
use serde_json::{Value as Json, json};

fn worker() -> Json {
    json!({
        "attributes": {
            "worker_name": "Bob",
            "languages": ["en", "es", 7, true, null],
            "skills": {"level": 30, "rank": "7", "ratio": 0.5, "big": 9007199254740993_u64},
            "available": true,
            "flag": "false",
            "nothing": null,
            "empty": "",
        },
        "activity": "idle",
        "tags": [{"a": 1}, "x"],
    })
}

/// Whether `query` matches the worker fixture with key `WK42`.
fn m(query: &str) -> bool {
    let expr = parse(query).unwrap_or_else(|err| panic!("{query}: {err}"));
    expr.matches("WK42", &worker())
}

#[test]
fn equality_of_strings() {
    assert!(m(r#"data.attributes.worker_name == "Bob""#));
    assert!(!m(r#"data.attributes.worker_name == "bob""#));
    assert!(m(r#"data.attributes.worker_name != "bob""#));
    assert!(!m(r#"data.attributes.worker_name != "Bob""#));
    assert!(m(r#"data.attributes.empty == """#));
}

#[test]
fn string_literals_match_canonical_text_of_numbers_and_booleans() {
    assert!(m(r#"data.attributes.skills.level == "30""#));
    assert!(!m(r#"data.attributes.skills.level == "30.0""#));
    assert!(m(r#"data.attributes.skills.ratio == "0.5""#));
    assert!(m(r#"data.attributes.available == "true""#));
    assert!(!m(r#"data.attributes.available == "True""#));
    assert!(m(r#"data.attributes.skills.big == "9007199254740993""#));
}

#[test]
fn number_literals_match_numbers_and_numeric_strings() {
    assert!(m("data.attributes.skills.level == 30"));
    assert!(m("data.attributes.skills.level == 30.0"));
    assert!(m("data.attributes.skills.level == 3e1"));
    assert!(!m("data.attributes.skills.level == 31"));
    assert!(m("data.attributes.skills.rank == 7"));
    assert!(m("data.attributes.skills.rank == 7.0"));
    assert!(!m("data.attributes.worker_name == 7"));
    // Integers are compared exactly, not through f64.
    assert!(m("data.attributes.skills.big == 9007199254740993"));
    assert!(!m("data.attributes.skills.big == 9007199254740992"));
    assert!(!m("data.attributes.skills.big == 9007199254740992.0"));
}

#[test]
fn boolean_literals() {
    assert!(m("data.attributes.available == true"));
    assert!(!m("data.attributes.available == false"));
    assert!(m("data.attributes.flag == false"));
    assert!(!m("data.attributes.worker_name == true"));
}

#[test]
fn missing_and_null_fields() {
    for path in ["data.nope", "data.attributes.nothing", "data.attributes.worker_name.deeper", "data.tags.5"] {
        assert!(!m(&format!(r#"{path} == "x""#)), "{path}");
        assert!(m(&format!(r#"{path} != "x""#)), "{path}");
        assert!(!m(&format!(r#"{path} in ["x"]"#)), "{path}");
        assert!(m(&format!(r#"{path} not_in ["x"]"#)), "{path}");
        assert!(!m(&format!(r#"{path} contains "x""#)), "{path}");
        assert!(!m(&format!("{path} < 1")), "{path}");
        assert!(!m(&format!("{path} >= 1")), "{path}");
        assert!(!m(&format!("{path} exists")), "{path}");
    }
    assert!(m("data.attributes.empty exists"));
    assert!(m("data exists"));
}

#[test]
fn objects_and_arrays_equal_nothing() {
    assert!(!m(r#"data.attributes == "x""#));
    assert!(m(r#"data.attributes != "x""#));
    assert!(!m(r#"data.attributes.languages == "en""#));
}

#[test]
fn in_and_not_in() {
    assert!(m(r#"data.activity in ["busy", "idle"]"#));
    assert!(!m(r#"data.activity in ["busy", "away"]"#));
    assert!(!m(r#"data.activity in []"#));
    assert!(m(r#"data.activity not_in ["busy", "away"]"#));
    assert!(!m(r#"data.activity not_in ["idle"]"#));
    assert!(m(r#"data.attributes.skills.level in ["29", 30]"#));
    // Membership is by value: an array field is not "in" a list of its elements.
    assert!(!m(r#"data.attributes.languages in ["en"]"#));
}

#[test]
fn contains_on_strings_and_arrays() {
    assert!(m(r#"data.attributes.worker_name contains "ob""#));
    assert!(m(r#"data.attributes.worker_name contains """#));
    assert!(!m(r#"data.attributes.worker_name contains "OB""#));
    assert!(m(r#"data.attributes.languages contains "es""#));
    assert!(!m(r#"data.attributes.languages contains "e""#));
    assert!(m(r#"data.attributes.languages contains 7"#));
    assert!(m(r#"data.attributes.languages contains "7""#));
    assert!(m(r#"data.attributes.languages contains true"#));
    // Not a substring search on numbers or objects.
    assert!(!m(r#"data.attributes.skills.level contains "3""#));
    assert!(!m(r#"data.attributes contains "worker_name""#));
    // A non-string literal is never a substring.
    assert!(!m(r#"data.attributes.skills.rank contains 7"#));
}

#[test]
fn ranges() {
    assert!(m("data.attributes.skills.level > 29"));
    assert!(m("data.attributes.skills.level >= 30"));
    assert!(!m("data.attributes.skills.level > 30"));
    assert!(m("data.attributes.skills.level <= 30"));
    assert!(m("data.attributes.skills.level < 30.5"));
    assert!(m("data.attributes.skills.ratio < 1"));
    assert!(m("data.attributes.skills.big > 9007199254740992"));
    // Numeric strings compare numerically with number literals.
    assert!(m("data.attributes.skills.rank > 10e-1"));
    assert!(!m("data.attributes.skills.rank > 10"));
    // Strings compare by bytes.
    assert!(m(r#"data.attributes.worker_name > "Alice""#));
    assert!(m(r#"data.attributes.worker_name < "bob""#));
    assert!(m(r#"data.attributes.worker_name >= "Bob""#));
    assert!(!m(r#"data.attributes.worker_name < "Bob""#));
    // Other pairs are false.
    assert!(!m(r#"data.attributes.skills.level > "1""#));
    assert!(!m("data.attributes.worker_name > 1"));
    assert!(!m("data.attributes.available > 0"));
}

#[test]
fn key() {
    assert!(m(r#"key == "WK42""#));
    assert!(m(r#"key contains "42""#));
    assert!(m(r#"key in ["WK41", "WK42"]"#));
    assert!(m(r#"key > "WK4""#));
    assert!(m("key exists"));
    let expr = parse("key == 42").unwrap_or_else(|err| panic!("{err}"));
    assert!(expr.matches("42", &Json::Null));
}

#[test]
fn array_indexes() {
    assert!(m(r#"data.attributes.languages.0 == "en""#));
    assert!(m(r#"data.tags.0.a == 1"#));
    assert!(m(r#"data.tags.1 == "x""#));
    assert!(!m(r#"data.tags.01 == "x""#));
}

#[test]
fn logic() {
    assert!(m(
        r#"(data.activity == "busy" OR data.attributes.languages contains "es") AND data.attributes.worker_name EQ "Bob""#
    ));
    assert!(!m(
        r#"data.activity == "busy" OR data.attributes.languages contains "es" AND data.attributes.worker_name EQ "Al""#
    ));
    assert!(Expr::And(vec![]).matches("k", &Json::Null));
    assert!(!Expr::Or(vec![]).matches("k", &Json::Null));
}

#[test]
fn hand_built_expressions_do_not_panic() {
    let data = json!({"a": "x"});
    let path = Path::Data(vec!["a".into()]);
    let compare = |op, value| Expr::Compare { path: path.clone(), op, value, span: Default::default() };
    // A scalar after `in` is a one-item list; an array after `==` equals nothing.
    assert!(compare(Op::In, Value::Str("x".into())).matches("k", &data));
    assert!(!compare(Op::Eq, Value::Array(vec![Value::Str("x".into())])).matches("k", &data));
    assert!(!compare(Op::Lt, Value::Bool(true)).matches("k", &data));
}

fn constraints(query: &str) -> Vec<ferrosync_query::Constraint> {
    parse(query).unwrap_or_else(|err| panic!("{query}: {err}")).constraints()
}

#[test]
fn constraints_of_a_conjunction() {
    assert_debug_snapshot!(constraints(
        r#"data.team == "eng" and data.age >= 30 and data.age < 40 and data.x != "y" and key in ["a", "b"]"#
    ), @r#"
        [
            Constraint {
                path: Data(
                    [
                        "team",
                    ],
                ),
                one_of: Some(
                    [
                        Str(
                            "eng",
                        ),
                    ],
                ),
                lower: None,
                upper: None,
            },
            Constraint {
                path: Data(
                    [
                        "age",
                    ],
                ),
                one_of: None,
                lower: Some(
                    Bound {
                        value: Number(
                            Number(30),
                        ),
                        inclusive: true,
                    },
                ),
                upper: Some(
                    Bound {
                        value: Number(
                            Number(40),
                        ),
                        inclusive: false,
                    },
                ),
            },
            Constraint {
                path: Key,
                one_of: Some(
                    [
                        Str(
                            "a",
                        ),
                        Str(
                            "b",
                        ),
                    ],
                ),
                lower: None,
                upper: None,
            },
        ]
        "#);
}

#[test]
fn constraints_merge_per_path() {
    // The smallest equality set, the tightest bounds of one type; nested `and` groups count.
    assert_debug_snapshot!(constraints(
        r#"data.a in ["1", "2", "3"] and (data.a == "2" and data.a > 1) and data.a >= 5 and data.a > "m" and data.a <= 9 and data.a < 9"#
    ), @r#"
        [
            Constraint {
                path: Data(
                    [
                        "a",
                    ],
                ),
                one_of: Some(
                    [
                        Str(
                            "2",
                        ),
                    ],
                ),
                lower: Some(
                    Bound {
                        value: Number(
                            Number(5),
                        ),
                        inclusive: true,
                    },
                ),
                upper: Some(
                    Bound {
                        value: Number(
                            Number(9),
                        ),
                        inclusive: false,
                    },
                ),
            },
        ]
        "#);
}

#[test]
fn constraints_ignore_disjunctions_and_other_operators() {
    assert_debug_snapshot!(constraints(r#"data.a == "1" or data.b == "2""#), @"[]");
    assert_debug_snapshot!(constraints(
        r#"(data.a == "1" or data.b == "2") and data.c contains "x" and data.d exists and data.e not_in ["z"]"#
    ), @"[]");
    assert_debug_snapshot!(constraints(r#"data.a in []"#), @r#"
        [
            Constraint {
                path: Data(
                    [
                        "a",
                    ],
                ),
                one_of: Some(
                    [],
                ),
                lower: None,
                upper: None,
            },
        ]
        "#);
}

#[test]
fn constraints_are_necessary() {
    // Every constraint holds for a matching item; here a numeric string meets a number bound.
    let expr = parse(r#"data.n >= 5 and data.n == "7""#).unwrap_or_else(|err| panic!("{err}"));
    assert!(expr.matches("k", &json!({"n": "7"})));
    assert!(expr.matches("k", &json!({"n": 7})));
    assert_eq!(expr.constraints().len(), 1);
}
