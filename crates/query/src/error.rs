//! Parse errors: what went wrong, where, and on which token.

use std::fmt;

/// The longest token text quoted in an error message; longer ones are cut with `…`.
const QUOTE_LIMIT: usize = 40;

/// Why an expression was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The expression is empty or only whitespace.
    Empty,
    /// The expression is longer than [`MAX_LENGTH`](crate::MAX_LENGTH) bytes.
    TooLong,
    /// The input does not follow the grammar; [`QueryError::expected`] says what would have.
    Syntax,
    /// A field whose root is neither `key` nor `data` (or `key` with sub-fields).
    UnknownField,
    /// 30 or more operators (Twilio error 54509).
    TooManyOperators,
    /// An array of 30 or more items (Twilio error 54510).
    ArrayTooLong,
    /// Parentheses nested deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    TooDeep,
}

/// What the parser was looking for when it met a syntax error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Expected {
    /// `key` or `data…`, or a `(`.
    Field,
    /// A comparison operator or `exists`.
    Operator,
    /// A string, number, `true` or `false`.
    Value,
    /// A number or a string (after `<`, `<=`, `>`, `>=`).
    NumberOrString,
    /// `[` opening an array (after `in`, `not_in`).
    Array,
    /// A value or `]` right after `[`.
    ValueOrCloseBracket,
    /// `,` or `]` after an array item.
    CommaOrCloseBracket,
    /// `and`, `or` or `)` inside parentheses.
    CloseParen,
    /// `and`, `or` or the end after a complete expression.
    EndOfExpression,
    /// The `"` that ends a string.
    ClosingQuote,
    /// A valid escape sequence after `\` in a string.
    Escape,
    /// A well-formed number.
    Number,
    /// A token: the character starts none.
    Token,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Field => "a field",
            Self::Operator => "an operator",
            Self::Value => "a value",
            Self::NumberOrString => "a number or a string",
            Self::Array => "an array",
            Self::ValueOrCloseBracket => "a value or `]`",
            Self::CommaOrCloseBracket => "`,` or `]`",
            Self::CloseParen => "`and`, `or` or `)`",
            Self::EndOfExpression => "`and`, `or` or end of expression",
            Self::ClosingQuote => "`\"` closing the string",
            Self::Escape => "an escape sequence (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
            Self::Number => "a number",
            Self::Token => "a token",
        })
    }
}

/// A rejected expression.
///
/// Carries the [`ErrorKind`], the byte offset and 1-based character column of the offending
/// token, its text (empty at the end of the expression) and a one-line message such as
/// `expected an operator after data.name at column 16, found "foo"`. The column counts
/// characters from the start of the expression, line breaks included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    kind: ErrorKind,
    offset: usize,
    column: usize,
    found: String,
    expected: Option<Expected>,
    message: String,
}

impl QueryError {
    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Byte offset of the offending token in the expression.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// 1-based column of the offending token, in characters.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The offending token's text; empty when the problem is the end of the expression.
    pub fn found(&self) -> &str {
        &self.found
    }

    /// For [`ErrorKind::Syntax`] (and invalid fields), what would have been accepted.
    pub fn expected(&self) -> Option<Expected> {
        self.expected
    }

    /// The message, as `Display` prints it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The Twilio error code for the two documented Live Query limits: 54509 for too many
    /// operators and 54510 for a too long array. `None` for everything else.
    pub fn twilio_code(&self) -> Option<u32> {
        match self.kind {
            ErrorKind::TooManyOperators => Some(54509),
            ErrorKind::ArrayTooLong => Some(54510),
            _ => None,
        }
    }
}

/// Builds errors against one source expression.
pub(crate) struct Reporter<'a> {
    source: &'a str,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(source: &'a str) -> Self {
        Self { source }
    }

    pub(crate) fn column(&self, offset: usize) -> usize {
        let mut end = offset.min(self.source.len());
        while !self.source.is_char_boundary(end) {
            end -= 1;
        }
        self.source[..end].chars().count() + 1
    }

    /// An error with a message of its own.
    pub(crate) fn plain(&self, kind: ErrorKind, offset: usize, found: &str, message: String) -> QueryError {
        self.build(kind, offset, found, None, message)
    }

    fn build(
        &self,
        kind: ErrorKind,
        offset: usize,
        found: &str,
        expected: Option<Expected>,
        message: String,
    ) -> QueryError {
        QueryError { kind, offset, column: self.column(offset), found: found.to_owned(), expected, message }
    }

    /// `expected X [after PREV] at column N, found Y[; NOTE]`.
    pub(crate) fn syntax(
        &self,
        expected: Expected,
        after: Option<&str>,
        offset: usize,
        found: &str,
        note: Option<&str>,
    ) -> QueryError {
        let mut message = format!("expected {expected}");
        if let Some(after) = after {
            message.push_str(" after ");
            message.push_str(&shorten(after));
        }
        message.push_str(&format!(" at column {}, found {}", self.column(offset), describe(found)));
        if let Some(note) = note {
            message.push_str("; ");
            message.push_str(note);
        }
        self.build(ErrorKind::Syntax, offset, found, Some(expected), message)
    }

    /// A lexical or field error with its own wording: `WHAT at column N[: NOTE]`.
    pub(crate) fn custom(
        &self,
        kind: ErrorKind,
        expected: Option<Expected>,
        offset: usize,
        found: &str,
        what: &str,
        note: Option<&str>,
    ) -> QueryError {
        let mut message = format!("{what} at column {}", self.column(offset));
        if let Some(note) = note {
            message.push_str(": ");
            message.push_str(note);
        }
        self.build(kind, offset, found, expected, message)
    }
}

/// How a token is named in a message.
pub(crate) fn describe(found: &str) -> String {
    if found.is_empty() {
        "end of expression".to_owned()
    } else if found.starts_with('"') {
        format!("string {}", shorten(found))
    } else {
        format!("\"{}\"", shorten(found))
    }
}

/// The token text, cut to [`QUOTE_LIMIT`] characters.
pub(crate) fn shorten(text: &str) -> String {
    if text.chars().count() <= QUOTE_LIMIT {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(QUOTE_LIMIT).collect();
        cut.push('…');
        cut
    }
}
