//! One inline snapshot per grammar case: the parsed tree (with spans) or, for spellings of the
//! same thing, the canonical form each parses to.

use ferrosync_query::{Expr, parse};
use insta::{assert_debug_snapshot, assert_snapshot};

/// The canonical form of a valid expression, after checking that it parses back to the same tree.
fn canon(input: &str) -> String {
    let expr = parse(input).unwrap_or_else(|err| panic!("{input:?}: {err}"));
    let printed = expr.to_string();
    let again: Expr = printed.parse().unwrap_or_else(|err| panic!("{printed:?}: {err}"));
    assert_eq!(again, expr, "{printed}");
    printed
}

/// The canonical forms of several spellings, one per line.
fn canons(inputs: &[&str]) -> String {
    inputs.iter().map(|input| format!("{input}  =>  {}", canon(input))).collect::<Vec<_>>().join("\n")
}

#[test]
fn equality() {
    assert_debug_snapshot!(parse(r#"data.attributes.worker_name == "Bob""#), @r#"
        Ok(
            Compare {
                path: Data(
                    [
                        "attributes",
                        "worker_name",
                    ],
                ),
                op: Eq,
                value: Str(
                    "Bob",
                ),
                span: 0..36,
            },
        )
        "#);
}

#[test]
fn equality_spellings() {
    assert_snapshot!(canons(&[
        r#"data.a == "x""#,
        r#"data.a eq "x""#,
        r#"data.a EQ "x""#,
        r#"data.a Eq "x""#,
        r#"data.a=="x""#,
    ]), @r#"
        data.a == "x"  =>  data.a == "x"
        data.a eq "x"  =>  data.a == "x"
        data.a EQ "x"  =>  data.a == "x"
        data.a Eq "x"  =>  data.a == "x"
        data.a=="x"  =>  data.a == "x"
        "#);
}

#[test]
fn inequality_spellings() {
    assert_snapshot!(canons(&[
        r#"data.a != "x""#,
        r#"data.a not_eq "x""#,
        r#"data.a NOT_EQ "x""#,
        r#"data.a nOt_Eq "x""#,
        r#"data.a!="x""#,
    ]), @r#"
        data.a != "x"  =>  data.a != "x"
        data.a not_eq "x"  =>  data.a != "x"
        data.a NOT_EQ "x"  =>  data.a != "x"
        data.a nOt_Eq "x"  =>  data.a != "x"
        data.a!="x"  =>  data.a != "x"
        "#);
}

#[test]
fn in_array() {
    assert_debug_snapshot!(parse(r#"data.lang IN ["es", "en"]"#), @r#"
        Ok(
            Compare {
                path: Data(
                    [
                        "lang",
                    ],
                ),
                op: In,
                value: Array(
                    [
                        Str(
                            "es",
                        ),
                        Str(
                            "en",
                        ),
                    ],
                ),
                span: 0..25,
            },
        )
        "#);
}

#[test]
fn in_spellings() {
    assert_snapshot!(canons(&[
        r#"data.a in ["x"]"#,
        r#"data.a IN ["x"]"#,
        r#"data.a not_in ["x", "y"]"#,
        r#"data.a NOT_IN ["x","y"]"#,
        r#"data.a in []"#,
        r#"data.a in[ "x" ,"y" ]"#,
        r#"data.a in [false, 1, "x"]"#,
    ]), @r#"
        data.a in ["x"]  =>  data.a in ["x"]
        data.a IN ["x"]  =>  data.a in ["x"]
        data.a not_in ["x", "y"]  =>  data.a not_in ["x", "y"]
        data.a NOT_IN ["x","y"]  =>  data.a not_in ["x", "y"]
        data.a in []  =>  data.a in []
        data.a in[ "x" ,"y" ]  =>  data.a in ["x", "y"]
        data.a in [false, 1, "x"]  =>  data.a in [false, 1, "x"]
        "#);
}

#[test]
fn contains() {
    assert_debug_snapshot!(parse(r#"data.tags CONTAINS "vip""#), @r#"
        Ok(
            Compare {
                path: Data(
                    [
                        "tags",
                    ],
                ),
                op: Contains,
                value: Str(
                    "vip",
                ),
                span: 0..24,
            },
        )
        "#);
    assert_snapshot!(canons(&[r#"data.a contains "x""#, r#"data.a Contains 3"#]), @r#"
        data.a contains "x"  =>  data.a contains "x"
        data.a Contains 3  =>  data.a contains 3
        "#);
}

#[test]
fn key_and_whole_data() {
    assert_debug_snapshot!(parse(r#"key == "WK01" or data exists"#), @r#"
        Ok(
            Or(
                [
                    Compare {
                        path: Key,
                        op: Eq,
                        value: Str(
                            "WK01",
                        ),
                        span: 0..13,
                    },
                    Exists {
                        path: Data(
                            [],
                        ),
                        span: 17..28,
                    },
                ],
            ),
        )
        "#);
}

#[test]
fn field_segments() {
    assert_snapshot!(canons(&[
        r#"data.a_b.c-d.0.X9 == "x""#,
        r#"data.items.0 == "x""#,
        r#"data.-.__ == "x""#,
    ]), @r#"
        data.a_b.c-d.0.X9 == "x"  =>  data.a_b.c-d.0.X9 == "x"
        data.items.0 == "x"  =>  data.items.0 == "x"
        data.-.__ == "x"  =>  data.-.__ == "x"
        "#);
}

#[test]
fn and_or_spellings() {
    assert_snapshot!(canons(&[
        r#"data.a == "1" and data.b == "2""#,
        r#"data.a == "1" AND data.b == "2""#,
        r#"data.a == "1" && data.b == "2""#,
        r#"data.a == "1"&&data.b == "2""#,
        r#"data.a == "1" or data.b == "2""#,
        r#"data.a == "1" OR data.b == "2""#,
        r#"data.a == "1" || data.b == "2""#,
        r#"data.a == "1" oR data.b == "2""#,
    ]), @r#"
        data.a == "1" and data.b == "2"  =>  data.a == "1" and data.b == "2"
        data.a == "1" AND data.b == "2"  =>  data.a == "1" and data.b == "2"
        data.a == "1" && data.b == "2"  =>  data.a == "1" and data.b == "2"
        data.a == "1"&&data.b == "2"  =>  data.a == "1" and data.b == "2"
        data.a == "1" or data.b == "2"  =>  data.a == "1" or data.b == "2"
        data.a == "1" OR data.b == "2"  =>  data.a == "1" or data.b == "2"
        data.a == "1" || data.b == "2"  =>  data.a == "1" or data.b == "2"
        data.a == "1" oR data.b == "2"  =>  data.a == "1" or data.b == "2"
        "#);
}

#[test]
fn and_binds_tighter_than_or() {
    assert_debug_snapshot!(parse(r#"data.a == "1" or data.b == "2" and data.c == "3""#), @r#"
        Ok(
            Or(
                [
                    Compare {
                        path: Data(
                            [
                                "a",
                            ],
                        ),
                        op: Eq,
                        value: Str(
                            "1",
                        ),
                        span: 0..13,
                    },
                    And(
                        [
                            Compare {
                                path: Data(
                                    [
                                        "b",
                                    ],
                                ),
                                op: Eq,
                                value: Str(
                                    "2",
                                ),
                                span: 17..30,
                            },
                            Compare {
                                path: Data(
                                    [
                                        "c",
                                    ],
                                ),
                                op: Eq,
                                value: Str(
                                    "3",
                                ),
                                span: 35..48,
                            },
                        ],
                    ),
                ],
            ),
        )
        "#);
    assert_snapshot!(canons(&[
        r#"data.a == "1" and data.b == "2" or data.c == "3""#,
        r#"data.a == "1" or data.b == "2" and data.c == "3" or data.d == "4""#,
    ]), @r#"
        data.a == "1" and data.b == "2" or data.c == "3"  =>  (data.a == "1" and data.b == "2") or data.c == "3"
        data.a == "1" or data.b == "2" and data.c == "3" or data.d == "4"  =>  data.a == "1" or (data.b == "2" and data.c == "3") or data.d == "4"
        "#);
}

#[test]
fn chains_are_flat() {
    assert_snapshot!(canons(&[
        r#"data.a == "1" and data.b == "2" and data.c == "3""#,
        r#"data.a == "1" or data.b == "2" or data.c == "3""#,
    ]), @r#"
        data.a == "1" and data.b == "2" and data.c == "3"  =>  data.a == "1" and data.b == "2" and data.c == "3"
        data.a == "1" or data.b == "2" or data.c == "3"  =>  data.a == "1" or data.b == "2" or data.c == "3"
        "#);
}

#[test]
fn parentheses() {
    // The example from Twilio's documentation.
    assert_debug_snapshot!(
        parse(r#"(data.field == "value" OR data.lang IN ["es", "en"]) AND data.team EQ "engineering""#),
        @r#"
        Ok(
            And(
                [
                    Or(
                        [
                            Compare {
                                path: Data(
                                    [
                                        "field",
                                    ],
                                ),
                                op: Eq,
                                value: Str(
                                    "value",
                                ),
                                span: 1..22,
                            },
                            Compare {
                                path: Data(
                                    [
                                        "lang",
                                    ],
                                ),
                                op: In,
                                value: Array(
                                    [
                                        Str(
                                            "es",
                                        ),
                                        Str(
                                            "en",
                                        ),
                                    ],
                                ),
                                span: 26..51,
                            },
                        ],
                    ),
                    Compare {
                        path: Data(
                            [
                                "team",
                            ],
                        ),
                        op: Eq,
                        value: Str(
                            "engineering",
                        ),
                        span: 57..83,
                    },
                ],
            ),
        )
        "#
    );
}

#[test]
fn parentheses_keep_groups() {
    assert_snapshot!(canons(&[
        r#"(data.a == "1")"#,
        r#"((((data.a == "1"))))"#,
        r#"(data.a == "1" and data.b == "2") and data.c == "3""#,
        r#"data.a == "1" and (data.b == "2" and data.c == "3")"#,
        r#"(data.a == "1" or data.b == "2") or data.c == "3""#,
        r#"data.a == "1" or (data.b == "2" and data.c == "3")"#,
        r#"((data.a == "1" or data.b == "2") and (data.c == "3" or data.d exists))"#,
    ]), @r#"
        (data.a == "1")  =>  data.a == "1"
        ((((data.a == "1"))))  =>  data.a == "1"
        (data.a == "1" and data.b == "2") and data.c == "3"  =>  (data.a == "1" and data.b == "2") and data.c == "3"
        data.a == "1" and (data.b == "2" and data.c == "3")  =>  data.a == "1" and (data.b == "2" and data.c == "3")
        (data.a == "1" or data.b == "2") or data.c == "3"  =>  (data.a == "1" or data.b == "2") or data.c == "3"
        data.a == "1" or (data.b == "2" and data.c == "3")  =>  data.a == "1" or (data.b == "2" and data.c == "3")
        ((data.a == "1" or data.b == "2") and (data.c == "3" or data.d exists))  =>  (data.a == "1" or data.b == "2") and (data.c == "3" or data.d exists)
        "#);
}

#[test]
fn string_escapes() {
    assert_debug_snapshot!(
        parse(r#"data.a in ["q\"q", "b\\s", "n\nt\t", "r\r/\/b\bf\f", "\u00e9\u263A", "\ud83d\ude00", "raw é 日本"]"#),
        @r#"
        Ok(
            Compare {
                path: Data(
                    [
                        "a",
                    ],
                ),
                op: In,
                value: Array(
                    [
                        Str(
                            "q\"q",
                        ),
                        Str(
                            "b\\s",
                        ),
                        Str(
                            "n\nt\t",
                        ),
                        Str(
                            "r\r//b\u{8}f\u{c}",
                        ),
                        Str(
                            "é☺",
                        ),
                        Str(
                            "😀",
                        ),
                        Str(
                            "raw é 日本",
                        ),
                    ],
                ),
                span: 0..101,
            },
        )
        "#
    );
}

#[test]
fn string_printing_escapes() {
    assert_snapshot!(canon(r#"data.a == "q\" b\\ n\n t\t r\r c\u0001 d\u007f é""#), @r#"
        data.a == "q\" b\\ n\n t\t r\r c\u0001 d\u007f é"
        "#);
}

#[test]
fn ranges() {
    assert_debug_snapshot!(parse(r#"data.age >= 30 and data.age < 40.5"#), @r#"
        Ok(
            And(
                [
                    Compare {
                        path: Data(
                            [
                                "age",
                            ],
                        ),
                        op: Ge,
                        value: Number(
                            Number(30),
                        ),
                        span: 0..14,
                    },
                    Compare {
                        path: Data(
                            [
                                "age",
                            ],
                        ),
                        op: Lt,
                        value: Number(
                            Number(40.5),
                        ),
                        span: 19..34,
                    },
                ],
            ),
        )
        "#);
    assert_snapshot!(canons(&[
        r#"data.a < 1"#,
        r#"data.a <= -1"#,
        r#"data.a > 1.5e3"#,
        r#"data.a >= "m""#,
        r#"data.a<1"#,
        r#"data.a>="m""#,
    ]), @r#"
        data.a < 1  =>  data.a < 1
        data.a <= -1  =>  data.a <= -1
        data.a > 1.5e3  =>  data.a > 1500.0
        data.a >= "m"  =>  data.a >= "m"
        data.a<1  =>  data.a < 1
        data.a>="m"  =>  data.a >= "m"
        "#);
}

#[test]
fn numbers_and_booleans() {
    assert_debug_snapshot!(
        parse(r#"data.a in [0, -0, 7, -12, 3.25, 1e3, 2E-2, 18446744073709551615, 99999999999999999999, true, FALSE]"#),
        @r#"
        Ok(
            Compare {
                path: Data(
                    [
                        "a",
                    ],
                ),
                op: In,
                value: Array(
                    [
                        Number(
                            Number(0),
                        ),
                        Number(
                            Number(0),
                        ),
                        Number(
                            Number(7),
                        ),
                        Number(
                            Number(-12),
                        ),
                        Number(
                            Number(3.25),
                        ),
                        Number(
                            Number(1000.0),
                        ),
                        Number(
                            Number(0.02),
                        ),
                        Number(
                            Number(18446744073709551615),
                        ),
                        Number(
                            Number(1e+20),
                        ),
                        Bool(
                            true,
                        ),
                        Bool(
                            false,
                        ),
                    ],
                ),
                span: 0..99,
            },
        )
        "#
    );
}

#[test]
fn number_printing() {
    assert_snapshot!(canons(&[
        "data.a == 007",
        "data.a == 1.0",
        "data.a == 1.50",
        "data.a == 1e3",
        "data.a == -0.0",
        "data.a == 1e300",
        "data.a == 123456789012345678901234567890",
        "data.a == true",
        "data.a == True",
    ]), @r#"
        data.a == 007  =>  data.a == 7
        data.a == 1.0  =>  data.a == 1.0
        data.a == 1.50  =>  data.a == 1.5
        data.a == 1e3  =>  data.a == 1000.0
        data.a == -0.0  =>  data.a == -0.0
        data.a == 1e300  =>  data.a == 1e+300
        data.a == 123456789012345678901234567890  =>  data.a == 1.2345678901234568e+29
        data.a == true  =>  data.a == true
        data.a == True  =>  data.a == true
        "#);
}

#[test]
fn exists() {
    assert_debug_snapshot!(parse("data.a.b exists AND key EXISTS"), @r#"
        Ok(
            And(
                [
                    Exists {
                        path: Data(
                            [
                                "a",
                                "b",
                            ],
                        ),
                        span: 0..15,
                    },
                    Exists {
                        path: Key,
                        span: 20..30,
                    },
                ],
            ),
        )
        "#);
}

#[test]
fn whitespace() {
    assert_snapshot!(canon("\t data.a\n==\r\n\"x\"   "), @r#"
        data.a == "x"
        "#);
}

#[test]
fn twenty_nine_operators_and_items_are_fine() {
    let operands: Vec<String> = (0..15).map(|i| format!("data.f{i} == \"v\"")).collect();
    // 15 comparisons and 14 `and`s.
    let expr = parse(&operands.join(" and "));
    assert!(expr.is_ok(), "{expr:?}");
    let items: Vec<String> = (0..29).map(|i| format!("\"{i}\"")).collect();
    let expr = parse(&format!("data.a in [{}]", items.join(",")));
    assert!(expr.is_ok(), "{expr:?}");
    let deep = format!("{}data.a exists{}", "(".repeat(20), ")".repeat(20));
    assert!(parse(&deep).is_ok());
}
