//! Invalid expressions: kind, position, offending token and message, one snapshot each.

use ferrosync_query::{ErrorKind, QueryError, parse};
use insta::assert_snapshot;

/// `kind offset column found expected twilio-code` and the message on a second line.
fn fail(input: &str) -> String {
    let err = match parse(input) {
        Ok(expr) => panic!("{input:?} parsed as {expr}"),
        Err(err) => err,
    };
    check_position(input, &err);
    format!(
        "{:?} at {} (column {}), found {:?}, expected {:?}, code {:?}\n{err}",
        err.kind(),
        err.offset(),
        err.column(),
        err.found(),
        err.expected(),
        err.twilio_code(),
    )
}

/// The offset and column agree with each other and with the token text.
fn check_position(input: &str, err: &QueryError) {
    assert!(input.is_char_boundary(err.offset()));
    assert_eq!(err.column(), input[..err.offset()].chars().count() + 1);
    if err.kind() != ErrorKind::TooLong {
        assert!(input[err.offset()..].starts_with(err.found()), "{err:?}");
    }
}

#[test]
fn empty() {
    assert_snapshot!(fail(""), @r#"
        Empty at 0 (column 1), found "", expected None, code None
        empty expression
        "#);
    assert_snapshot!(fail(" \t\r\n "), @r#"
        Empty at 0 (column 1), found "", expected None, code None
        empty expression
        "#);
}

#[test]
fn missing_operator() {
    assert_snapshot!(fail(r#"data.name foo "x""#), @r#"
        Syntax at 10 (column 11), found "foo", expected Some(Operator), code None
        expected an operator after data.name at column 11, found "foo"
        "#);
    assert_snapshot!(fail(r#"data.name "Bob""#), @r#"
        Syntax at 10 (column 11), found "\"Bob\"", expected Some(Operator), code None
        expected an operator after data.name at column 11, found string "Bob"
        "#);
    assert_snapshot!(fail("data.name"), @r#"
        Syntax at 9 (column 10), found "", expected Some(Operator), code None
        expected an operator after data.name at column 10, found end of expression
        "#);
}

#[test]
fn missing_value() {
    assert_snapshot!(fail("data.name =="), @r#"
        Syntax at 12 (column 13), found "", expected Some(Value), code None
        expected a value after == at column 13, found end of expression
        "#);
    assert_snapshot!(fail("data.name == Bob"), @r#"
        Syntax at 13 (column 14), found "Bob", expected Some(Value), code None
        expected a value after == at column 14, found "Bob"; strings are double-quoted
        "#);
    assert_snapshot!(fail(r#"data.name == ["Bob"]"#), @r#"
        Syntax at 13 (column 14), found "[", expected Some(Value), code None
        expected a value after == at column 14, found "["; arrays go with `in` and `not_in`
        "#);
    assert_snapshot!(fail("data.name == )"), @r#"
        Syntax at 13 (column 14), found ")", expected Some(Value), code None
        expected a value after == at column 14, found ")"
        "#);
}

#[test]
fn missing_field() {
    assert_snapshot!(fail(r#"== "x""#), @r#"
        Syntax at 0 (column 1), found "==", expected Some(Field), code None
        expected a field at column 1, found "=="
        "#);
    assert_snapshot!(fail(r#"data.a == "x" and"#), @r#"
        Syntax at 17 (column 18), found "", expected Some(Field), code None
        expected a field after and at column 18, found end of expression
        "#);
    assert_snapshot!(fail(r#"and == "x""#), @r#"
        Syntax at 0 (column 1), found "and", expected Some(Field), code None
        expected a field at column 1, found "and"
        "#);
    assert_snapshot!(fail(r#""x" == data.a"#), @r#"
        Syntax at 0 (column 1), found "\"x\"", expected Some(Field), code None
        expected a field at column 1, found string "x"
        "#);
    assert_snapshot!(fail("()"), @r#"
        Syntax at 1 (column 2), found ")", expected Some(Field), code None
        expected a field after ( at column 2, found ")"
        "#);
}

#[test]
fn bad_field_root() {
    assert_snapshot!(fail(r#"attributes.worker_name == "Bob""#), @r#"
        UnknownField at 0 (column 1), found "attributes.worker_name", expected Some(Field), code None
        unknown field "attributes.worker_name" at column 1: a field is `key` or `data` followed by `.name`s, as in data.attributes.name
        "#);
    assert_snapshot!(fail(r#"Data.name == "Bob""#), @r#"
        UnknownField at 0 (column 1), found "Data.name", expected Some(Field), code None
        unknown field "Data.name" at column 1: a field is `key` or `data` followed by `.name`s, as in data.attributes.name
        "#);
    assert_snapshot!(fail(r#"key.sub == "Bob""#), @r#"
        UnknownField at 0 (column 1), found "key.sub", expected Some(Field), code None
        unknown field "key.sub" at column 1: `key` is the item key and has no sub-fields
        "#);
    assert_snapshot!(fail(r#"data..name == "Bob""#), @r#"
        Syntax at 0 (column 1), found "data..name", expected Some(Field), code None
        invalid field "data..name" at column 1: every `.` must be followed by a name of letters, digits, `_` or `-`
        "#);
    assert_snapshot!(fail(r#"data.name. == "Bob""#), @r#"
        Syntax at 0 (column 1), found "data.name.", expected Some(Field), code None
        invalid field "data.name." at column 1: every `.` must be followed by a name of letters, digits, `_` or `-`
        "#);
}

#[test]
fn unterminated_string() {
    assert_snapshot!(fail(r#"data.name == "Bob"#), @r#"
        Syntax at 13 (column 14), found "\"Bob", expected Some(ClosingQuote), code None
        unterminated string starting at column 14: expected `"` closing the string, found end of expression
        "#);
    assert_snapshot!(fail(r#"data.name == "Bob\""#), @r#"
        Syntax at 13 (column 14), found "\"Bob\\\"", expected Some(ClosingQuote), code None
        unterminated string starting at column 14: expected `"` closing the string, found end of expression
        "#);
}

#[test]
fn bad_escapes() {
    assert_snapshot!(fail(r#"data.a == "x\q""#), @r#"
        Syntax at 12 (column 13), found "\\q", expected Some(Escape), code None
        invalid escape "\q" at column 13: expected an escape sequence (\" \\ \/ \b \f \n \r \t \uXXXX)
        "#);
    assert_snapshot!(fail(r#"data.a == "x\u12""#), @r#"
        Syntax at 12 (column 13), found "\\u12", expected Some(Escape), code None
        invalid escape "\u12" at column 13: expected an escape sequence (\" \\ \/ \b \f \n \r \t \uXXXX)
        "#);
    assert_snapshot!(fail(r#"data.a == "x\ud800""#), @r#"
        Syntax at 12 (column 13), found "\\ud800", expected Some(Escape), code None
        invalid escape "\ud800" at column 13: a UTF-16 surrogate must be written as a high and low \uXXXX pair
        "#);
    assert_snapshot!(fail(r#"data.a == "x\udc00""#), @r#"
        Syntax at 12 (column 13), found "\\udc00", expected Some(Escape), code None
        invalid escape "\udc00" at column 13: a UTF-16 surrogate must be written as a high and low \uXXXX pair
        "#);
    assert_snapshot!(fail(r#"data.a == "\é""#), @r#"
        Syntax at 11 (column 12), found "\\é", expected Some(Escape), code None
        invalid escape "\é" at column 12: expected an escape sequence (\" \\ \/ \b \f \n \r \t \uXXXX)
        "#);
}

#[test]
fn bad_numbers() {
    assert_snapshot!(fail("data.a == 1."), @r#"
        Syntax at 10 (column 11), found "1.", expected Some(Number), code None
        invalid number "1." at column 11
        "#);
    assert_snapshot!(fail("data.a == 12abc"), @r#"
        Syntax at 10 (column 11), found "12abc", expected Some(Number), code None
        invalid number "12abc" at column 11
        "#);
    assert_snapshot!(fail("data.a == -"), @r#"
        Syntax at 10 (column 11), found "-", expected Some(Number), code None
        invalid number "-" at column 11
        "#);
    assert_snapshot!(fail("data.a == 1e999"), @r#"
        Syntax at 10 (column 11), found "1e999", expected Some(Number), code None
        number out of range "1e999" at column 11
        "#);
}

#[test]
fn unexpected_characters() {
    assert_snapshot!(fail(r#"data.a = "x""#), @r#"
        Syntax at 7 (column 8), found "=", expected Some(Token), code None
        unexpected character "=" at column 8: write `==` or `eq`
        "#);
    assert_snapshot!(fail(r#"data.a == "x" & data.b == "y""#), @r#"
        Syntax at 14 (column 15), found "&", expected Some(Token), code None
        unexpected character "&" at column 15: write `&&` or `and`
        "#);
    assert_snapshot!(fail(r#"data.a == 'x'"#), @r#"
        Syntax at 10 (column 11), found "'", expected Some(Token), code None
        unexpected character "'" at column 11: strings are double-quoted
        "#);
    assert_snapshot!(fail(r#"data.é == "x""#), @r#"
        Syntax at 5 (column 6), found "é", expected Some(Token), code None
        unexpected character "é" at column 6: names are made of ASCII letters, digits, `_` and `-`
        "#);
    assert_snapshot!(fail(r#"données == "x""#), @r#"
        Syntax at 4 (column 5), found "é", expected Some(Token), code None
        unexpected character "é" at column 5: names are made of ASCII letters, digits, `_` and `-`
        "#);
}

#[test]
fn trailing_tokens() {
    assert_snapshot!(fail(r#"data.a == "x" data.b == "y""#), @r#"
        Syntax at 14 (column 15), found "data.b", expected Some(EndOfExpression), code None
        expected `and`, `or` or end of expression after "x" at column 15, found "data.b"
        "#);
    assert_snapshot!(fail(r#"data.a == "x" "y""#), @r#"
        Syntax at 14 (column 15), found "\"y\"", expected Some(EndOfExpression), code None
        expected `and`, `or` or end of expression after "x" at column 15, found string "y"
        "#);
}

#[test]
fn unbalanced_parentheses() {
    assert_snapshot!(fail(r#"(data.a == "x""#), @r#"
        Syntax at 14 (column 15), found "", expected Some(CloseParen), code None
        expected `and`, `or` or `)` after "x" at column 15, found end of expression; the `(` at column 1 is not closed
        "#);
    assert_snapshot!(fail(r#"((data.a == "x") or data.b exists"#), @r#"
        Syntax at 33 (column 34), found "", expected Some(CloseParen), code None
        expected `and`, `or` or `)` after exists at column 34, found end of expression; the `(` at column 1 is not closed
        "#);
    assert_snapshot!(fail(r#"data.a == "x")"#), @r#"
        Syntax at 13 (column 14), found ")", expected Some(EndOfExpression), code None
        expected `and`, `or` or end of expression after "x" at column 14, found ")"; no `(` to close
        "#);
    assert_snapshot!(fail(r#"(data.a == "x" data.b exists)"#), @r#"
        Syntax at 15 (column 16), found "data.b", expected Some(CloseParen), code None
        expected `and`, `or` or `)` after "x" at column 16, found "data.b"; the `(` at column 1 is not closed
        "#);
}

#[test]
fn arrays() {
    assert_snapshot!(fail(r#"data.a in "x""#), @r#"
        Syntax at 10 (column 11), found "\"x\"", expected Some(Array), code None
        expected an array after in at column 11, found string "x"; `in` and `not_in` take an array such as ["a", "b"]
        "#);
    assert_snapshot!(fail(r#"data.a in ["x""#), @r#"
        Syntax at 14 (column 15), found "", expected Some(CommaOrCloseBracket), code None
        expected `,` or `]` after "x" at column 15, found end of expression
        "#);
    assert_snapshot!(fail(r#"data.a in ["x",]"#), @r#"
        Syntax at 15 (column 16), found "]", expected Some(Value), code None
        expected a value after , at column 16, found "]"
        "#);
    assert_snapshot!(fail(r#"data.a in ["x" "y"]"#), @r#"
        Syntax at 15 (column 16), found "\"y\"", expected Some(CommaOrCloseBracket), code None
        expected `,` or `]` after "x" at column 16, found string "y"
        "#);
    assert_snapshot!(fail(r#"data.a in [["x"]]"#), @r#"
        Syntax at 11 (column 12), found "[", expected Some(ValueOrCloseBracket), code None
        expected a value or `]` after [ at column 12, found "["; arrays go with `in` and `not_in`
        "#);
    assert_snapshot!(fail(r#"data.a in [,]"#), @r#"
        Syntax at 11 (column 12), found ",", expected Some(ValueOrCloseBracket), code None
        expected a value or `]` after [ at column 12, found ","
        "#);
}

#[test]
fn ranges_take_numbers_or_strings() {
    assert_snapshot!(fail("data.a < true"), @r#"
        Syntax at 9 (column 10), found "true", expected Some(NumberOrString), code None
        expected a number or a string after < at column 10, found "true"
        "#);
    assert_snapshot!(fail("data.a >= [1]"), @r#"
        Syntax at 10 (column 11), found "[", expected Some(NumberOrString), code None
        expected a number or a string after >= at column 11, found "["; arrays go with `in` and `not_in`
        "#);
}

#[test]
fn thirty_operators() {
    let operands: Vec<String> = (0..15).map(|i| format!("data.f{i} == \"v\"")).collect();
    // 15 comparisons and 14 `or`s, then one more `and`: 30.
    let input = format!("{} and key exists", operands.join(" or "));
    assert_snapshot!(fail(&input), @r#"
        TooManyOperators at 272 (column 273), found "and", expected None, code Some(54509)
        too many operators at column 273: "and" is operator number 30; an expression may have at most 29 (Twilio error 54509)
        "#);
    let exists: Vec<&str> = vec!["key exists"; 30];
    assert_snapshot!(fail(&exists.join(" && ")), @r#"
        TooManyOperators at 207 (column 208), found "&&", expected None, code Some(54509)
        too many operators at column 208: "&&" is operator number 30; an expression may have at most 29 (Twilio error 54509)
        "#);
}

#[test]
fn thirty_items() {
    let items: Vec<String> = (0..30).map(|i| i.to_string()).collect();
    assert_snapshot!(fail(&format!("data.a in [{}]", items.join(", "))), @r#"
        ArrayTooLong at 117 (column 118), found "29", expected None, code Some(54510)
        array too long at column 118: "29" is item number 30; an array may have at most 29 items (Twilio error 54510)
        "#);
    let items: Vec<String> = (0..40).map(|i| format!("\"{i}\"")).collect();
    assert_snapshot!(fail(&format!("data.a not_in [{}]", items.join(","))), @r#"
        ArrayTooLong at 150 (column 151), found "\"29\"", expected None, code Some(54510)
        array too long at column 151: string "29" is item number 30; an array may have at most 29 items (Twilio error 54510)
        "#);
}

#[test]
fn too_deep() {
    let deep = format!("{}data.a exists{}", "(".repeat(21), ")".repeat(21));
    assert_snapshot!(fail(&deep), @r#"
        TooDeep at 20 (column 21), found "(", expected None, code None
        parentheses nested too deep at column 21: at most 20 levels are allowed
        "#);
    // Far too deep fails fast, without recursing through every parenthesis.
    assert_snapshot!(fail(&"(".repeat(4000)), @r#"
        TooDeep at 20 (column 21), found "(", expected None, code None
        parentheses nested too deep at column 21: at most 20 levels are allowed
        "#);
}

#[test]
fn too_long() {
    let long = format!("data.a == \"{}\"", "x".repeat(4096));
    assert_snapshot!(fail(&long), @r#"
        TooLong at 4096 (column 4097), found "", expected None, code None
        expression too long: 4108 bytes, the limit is 4096
        "#);
    let exactly = format!("data.a == \"{}\"", "x".repeat(4096 - 12));
    assert_eq!(exactly.len(), 4096);
    assert!(parse(&exactly).is_ok());
}

#[test]
fn long_tokens_are_shortened_in_messages() {
    let input = format!("data.a {} \"x\"", "z".repeat(100));
    assert_snapshot!(fail(&input).lines().nth(1).unwrap_or_default(), @r#"
        expected an operator after data.a at column 8, found "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz…"
        "#);
}

#[test]
fn error_is_std_error() {
    let err: Box<dyn std::error::Error> = Box::new(parse("").expect_err("empty"));
    assert_eq!(err.to_string(), "empty expression");
}
