//! The Live Query expression language of Twilio Sync, with a few extensions.
//!
//! [`parse`] turns an expression into an [`Expr`]; [`Expr::matches`] evaluates it against an
//! item's key and JSON data; [`Expr::constraints`] tells an index what the expression requires;
//! `Display` prints the canonical form, which parses back to an equal [`Expr`].
//!
//! ```
//! use ferrosync_query::{parse, ErrorKind};
//! use serde_json::json;
//!
//! let expr = parse(r#"data.attributes.worker_name == "Bob" AND data.activity IN ["idle", "ready"]"#)?;
//! let worker = json!({"attributes": {"worker_name": "Bob"}, "activity": "idle"});
//! assert!(expr.matches("WK01", &worker));
//! assert_eq!(
//!     expr.to_string(),
//!     r#"data.attributes.worker_name == "Bob" and data.activity in ["idle", "ready"]"#
//! );
//!
//! let err = parse(r#"data.name foo "x""#).unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Syntax);
//! assert_eq!(err.column(), 11);
//! assert_eq!(err.to_string(), r#"expected an operator after data.name at column 11, found "foo""#);
//! # Ok::<(), ferrosync_query::QueryError>(())
//! ```
//!
//! # Grammar
//!
//! ```text
//! expression := or
//! or         := and (("or" | "||") and)*
//! and        := primary (("and" | "&&") primary)*
//! primary    := "(" or ")" | predicate
//! predicate  := field ("==" | "eq" | "!=" | "not_eq" | "contains") scalar
//!             | field ("in" | "not_in") array
//!             | field ("<" | "<=" | ">" | ">=") (number | string)      extension
//!             | field "exists"                                          extension
//! field      := "key" | "data" ("." segment)*         segment := [A-Za-z0-9_-]+
//! array      := "[" (scalar ("," scalar)*)? "]"
//! scalar     := string | number | "true" | "false"    numbers and booleans: extension
//! string     := '"' (char | escape)* '"'   escape := \" \\ \/ \b \f \n \r \t \uXXXX
//! number     := -?[0-9]+ (.[0-9]+)? ([eE][+-]?[0-9]+)?
//! ```
//!
//! * The documented Twilio language is infix `field operator "value"` with `and`/`AND`/`&&`,
//!   `or`/`OR`/`||`, `in`/`IN`, `not_in`/`NOT_IN`, `eq`/`EQ`/`==`, `not_eq`/`NOT_EQ`/`!=`,
//!   `contains`/`CONTAINS`, parentheses and arrays of double-quoted strings. `and` binds tighter
//!   than `or`. Keywords (`and`, `or`, `in`, `not_in`, `eq`, `not_eq`, `contains`, `exists`,
//!   `true`, `false`) are case-insensitive in any mix of case; the field roots `key` and `data`
//!   and the segments after them are case-sensitive.
//! * Extensions: `<`, `<=`, `>`, `>=`; number and boolean values; postfix `exists`.
//! * Whitespace (space, tab, CR, LF) separates tokens and is otherwise ignored.
//! * `key` is the item key; `data` alone is the whole data; any other field root is an
//!   [`ErrorKind::UnknownField`] error naming the field.
//!
//! # Limits
//!
//! | Limit | Error |
//! |---|---|
//! | at most [`MAX_OPERATORS`] (29) operators: Twilio requires fewer than 30; `and`, `or`, and every comparison and `exists` count one | [`ErrorKind::TooManyOperators`], Twilio code 54509 |
//! | at most [`MAX_ARRAY_ITEMS`] (29) items per array | [`ErrorKind::ArrayTooLong`], Twilio code 54510 |
//! | parentheses nested at most [`MAX_DEPTH`] (20) deep | [`ErrorKind::TooDeep`] |
//! | at most [`MAX_LENGTH`] (4,096) bytes | [`ErrorKind::TooLong`] |
//! | not empty or blank | [`ErrorKind::Empty`] |
//!
//! Every [`QueryError`] carries the byte offset, the 1-based column (in characters) and the
//! text of the offending token; syntax errors also say what was [`Expected`].
//!
//! # Fuzzing
//!
//! The repository's `fuzz/` package (outside the workspace) has a `query_parse` target that feeds
//! arbitrary UTF-8 to [`parse`] and checks that whatever parses prints and parses back to an
//! equal expression. With `cargo install cargo-fuzz`, on a stable toolchain:
//!
//! ```text
//! cargo fuzz run query_parse --sanitizer none
//! ```

mod ast;
mod error;
mod eval;
mod lexer;
mod parser;
mod plan;

pub use ast::{Expr, Op, Path, Span, Value};
pub use error::{ErrorKind, Expected, QueryError};
pub use parser::parse;
pub use plan::{Bound, Constraint};

/// The most operators an expression may have (Twilio: "fewer than 30", error 54509).
pub const MAX_OPERATORS: usize = 29;

/// The most items an array may have (Twilio: "fewer than 30", error 54510).
pub const MAX_ARRAY_ITEMS: usize = 29;

/// The deepest parentheses may nest.
pub const MAX_DEPTH: usize = 20;

/// The longest expression, in bytes.
pub const MAX_LENGTH: usize = 4096;

impl std::str::FromStr for Expr {
    type Err = QueryError;

    /// Same as [`parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}
