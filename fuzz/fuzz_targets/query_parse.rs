//! Feeds arbitrary UTF-8 to the parser. Whatever parses must print to text that parses back to
//! an equal expression (when the print is within the length limit); whatever fails must point at a character of the input. Evaluation and
//! constraint extraction must not panic either.
//!
//! Run with `cargo fuzz run query_parse` from the repository root (see fuzz/README.md).

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|input: &str| {
    match ferrosync_query::parse(input) {
        Ok(expr) => {
            let printed = expr.to_string();
            // Printing escapes control characters, so an input near the length limit can
            // print past it; such a print is not expected to parse again.
            if printed.len() > ferrosync_query::MAX_LENGTH {
                return;
            }
            match ferrosync_query::parse(&printed) {
                Ok(again) => assert_eq!(again, expr, "{input:?} printed as {printed:?}"),
                Err(err) => panic!("{input:?} printed as {printed:?}, which fails: {err}"),
            }
            let data = json!({"a": {"b": [1, "x", true, null]}, "n": 5, "s": "5"});
            let _ = expr.matches("key", &data);
            let _ = expr.constraints();
        }
        Err(err) => {
            assert!(input.is_char_boundary(err.offset()));
            assert_eq!(err.column(), input[..err.offset()].chars().count() + 1);
            assert!(input[err.offset()..].starts_with(err.found()) || err.found().is_empty());
        }
    }
});
