//! The syntax tree of a Live Query expression and its canonical printer.

use std::fmt;

/// A byte range `start..end` of the source expression.
///
/// Spans are for diagnostics only: [`Expr`]'s equality ignores them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// A parsed expression.
///
/// `And` and `Or` hold two or more operands when they come from the parser: `a and b and c` is one
/// `And` of three, while `(a and b) and c` keeps the parenthesised group as a nested `And`.
///
/// Equality compares the structure and ignores [`Span`]s, so a parsed expression equals the
/// expression parsed from its [`Display`](fmt::Display) output.
#[derive(Debug, Clone)]
pub enum Expr {
    /// Every operand matches (`and`, `AND`, `&&`). An empty `And` matches everything.
    And(Vec<Expr>),
    /// At least one operand matches (`or`, `OR`, `||`). An empty `Or` matches nothing.
    Or(Vec<Expr>),
    /// `path op value`. `value` is a [`Value::Array`] exactly when `op` is [`Op::In`] or
    /// [`Op::NotIn`].
    Compare {
        /// The field on the left.
        path: Path,
        /// The operator.
        op: Op,
        /// The literal on the right.
        value: Value,
        /// From the field to the end of the value.
        span: Span,
    },
    /// `path exists`: the field is present and not `null`.
    Exists {
        /// The field.
        path: Path,
        /// From the field to the end of `exists`.
        span: Span,
    },
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::And(a), Self::And(b)) | (Self::Or(a), Self::Or(b)) => a == b,
            (
                Self::Compare { path: p1, op: o1, value: v1, span: _ },
                Self::Compare { path: p2, op: o2, value: v2, span: _ },
            ) => p1 == p2 && o1 == o2 && v1 == v2,
            (Self::Exists { path: p1, span: _ }, Self::Exists { path: p2, span: _ }) => p1 == p2,
            _ => false,
        }
    }
}

impl Eq for Expr {}

/// The field an operator looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Path {
    /// `key`: the item's key, compared as a string.
    Key,
    /// `data` followed by `.segment`s: a path into the item's JSON data. No segments means the
    /// whole data. A segment names an object member or, on an array, a decimal index.
    Data(Vec<String>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `==`, `eq`
    Eq,
    /// `!=`, `not_eq`
    NotEq,
    /// `in`
    In,
    /// `not_in`
    NotIn,
    /// `contains`
    Contains,
    /// `<` (extension)
    Lt,
    /// `<=` (extension)
    Le,
    /// `>` (extension)
    Gt,
    /// `>=` (extension)
    Ge,
}

impl Op {
    /// The canonical spelling, as printed by [`Expr`]'s `Display`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::NotEq => "!=",
            Self::In => "in",
            Self::NotIn => "not_in",
            Self::Contains => "contains",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }

    /// `<`, `<=`, `>` or `>=`.
    pub const fn is_range(self) -> bool {
        matches!(self, Self::Lt | Self::Le | Self::Gt | Self::Ge)
    }
}

/// A literal on the right of an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A double-quoted string, escapes resolved.
    Str(String),
    /// A number (extension). Integers that fit are kept exactly; others are finite `f64`s.
    Number(serde_json::Number),
    /// `true` or `false` (extension).
    Bool(bool),
    /// `[a, b, …]`: only after `in` / `not_in`, and only of scalars.
    Array(Vec<Value>),
}

impl fmt::Display for Expr {
    /// The canonical form: lowercase keywords, `==` and `!=`, single spaces, and parentheses
    /// around every `and`/`or` that is an operand of another. It parses back to an equal
    /// expression for every expression the parser can produce.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::And(items) => write_junction(f, items, "and"),
            Self::Or(items) => write_junction(f, items, "or"),
            Self::Compare { path, op, value, .. } => write!(f, "{path} {} {value}", op.as_str()),
            Self::Exists { path, .. } => write!(f, "{path} exists"),
        }
    }
}

fn write_junction(f: &mut fmt::Formatter<'_>, items: &[Expr], word: &str) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            write!(f, " {word} ")?;
        }
        match item {
            Expr::And(_) | Expr::Or(_) => write!(f, "({item})")?,
            _ => write!(f, "{item}")?,
        }
    }
    Ok(())
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key => f.write_str("key"),
            Self::Data(segments) => {
                f.write_str("data")?;
                for segment in segments {
                    write!(f, ".{segment}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => write_string(f, s),
            Self::Number(n) => {
                let text = n.to_string();
                f.write_str(&text)?;
                // A float must print as a float so that it parses back as one.
                if n.is_f64() && !text.contains(['.', 'e', 'E']) {
                    f.write_str(".0")?;
                }
                Ok(())
            }
            Self::Bool(b) => write!(f, "{b}"),
            Self::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{:04x}", u32::from(c))?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}
