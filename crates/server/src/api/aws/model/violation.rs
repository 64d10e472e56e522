//! What validation reports: the path to a value, the constraint it broke, and AWS's wording of
//! both (`1 validation error detected: Value '…' at '…' failed to satisfy constraint: …`).

use serde_json::Value;
use std::fmt;

/// A step in the path to a violating value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Member(String),
    Index(usize),
    Key(String),
}

/// A constraint from the model that a value breaks.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    Required,
    Type(&'static str),
    MinLength(f64),
    MaxLength(f64),
    MinSize(f64),
    MaxSize(f64),
    MinValue(f64),
    MaxValue(f64),
    /// The model's pattern, as the model spells it.
    Pattern(String),
    Enum(Vec<String>),
    /// A map key breaks the inner constraint.
    MapKey(Box<Constraint>),
}

impl Constraint {
    /// AWS's wording, after "failed to satisfy constraint: ".
    pub fn aws_text(&self) -> String {
        match self {
            Constraint::Required => "Member must not be null".into(),
            Constraint::Type(t) => format!("Member must be {t}"),
            Constraint::MinLength(n) | Constraint::MinSize(n) => {
                format!("Member must have length greater than or equal to {n}")
            }
            Constraint::MaxLength(n) | Constraint::MaxSize(n) => {
                format!("Member must have length less than or equal to {n}")
            }
            Constraint::MinValue(n) => format!("Member must have value greater than or equal to {n}"),
            Constraint::MaxValue(n) => format!("Member must have value less than or equal to {n}"),
            Constraint::Pattern(p) => format!("Member must satisfy regular expression pattern: {p}"),
            Constraint::Enum(values) => format!("Member must satisfy enum value set: [{}]", values.join(", ")),
            Constraint::MapKey(inner) => format!("Map keys must satisfy constraint: [{}]", inner.aws_text()),
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constraint::Required => write!(f, "is required"),
            Constraint::Type(t) => write!(f, "must be {t}"),
            Constraint::MinLength(n) => write!(f, "must be at least {n} characters"),
            Constraint::MaxLength(n) => write!(f, "must be at most {n} characters"),
            Constraint::MinSize(n) => write!(f, "must have at least {n} entries"),
            Constraint::MaxSize(n) => write!(f, "must have at most {n} entries"),
            Constraint::MinValue(n) => write!(f, "must be at least {n}"),
            Constraint::MaxValue(n) => write!(f, "must be at most {n}"),
            Constraint::Pattern(p) => write!(f, "must match {p}"),
            Constraint::Enum(values) => write!(f, "must be one of {}", values.join(", ")),
            Constraint::MapKey(inner) => write!(f, "(key) {inner}"),
        }
    }
}

/// A value that breaks a constraint, and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub path: Vec<PathSegment>,
    /// `None` when the value is absent.
    pub value: Option<Value>,
    pub constraint: Constraint,
}

/// How long an echoed value may be in a message: a megabyte record value is not repeated back.
const MAX_ECHO: usize = 256;

impl Violation {
    /// The path as the model names members: `RecordPatches[3].Key`, `Logins["graph.facebook.com"]`.
    pub fn member_path(&self) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                PathSegment::Member(m) if out.is_empty() => out.push_str(m),
                PathSegment::Member(m) => {
                    out.push('.');
                    out.push_str(m);
                }
                PathSegment::Index(i) => out.push_str(&format!("[{i}]")),
                PathSegment::Key(k) => out.push_str(&format!("[{k:?}]")),
            }
        }
        out
    }

    /// The path as AWS writes it: members in lowerCamel case, list items 1-based with
    /// `.member`, as `recordPatches.4.member.key`; a map key's violation is the map's.
    pub fn aws_path(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let last = self.path.len().saturating_sub(1);
        for (i, segment) in self.path.iter().enumerate() {
            match segment {
                PathSegment::Member(m) => parts.push(lower_camel(m)),
                PathSegment::Index(n) => {
                    parts.push((n + 1).to_string());
                    parts.push("member".into());
                }
                PathSegment::Key(_) if i == last && matches!(self.constraint, Constraint::MapKey(_)) => {}
                PathSegment::Key(k) => parts.push(k.clone()),
            }
        }
        parts.join(".")
    }

    /// `Value '…' at '…' failed to satisfy constraint: …`.
    pub fn aws_text(&self) -> String {
        let value = match &self.value {
            None => "null".to_owned(),
            Some(v) => {
                let text = match (v, &self.constraint) {
                    (_, Constraint::MapKey(_)) => match self.path.last() {
                        Some(PathSegment::Key(k)) => k.clone(),
                        _ => String::new(),
                    },
                    (Value::String(s), _) => s.clone(),
                    (other, _) => other.to_string(),
                };
                let mut echoed: String = text.chars().take(MAX_ECHO).collect();
                if echoed.len() < text.len() {
                    echoed.push_str("...");
                }
                format!("'{echoed}'")
            }
        };
        format!("Value {value} at '{}' failed to satisfy constraint: {}", self.aws_path(), self.constraint.aws_text())
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.member_path(), self.constraint)
    }
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Every constraint an input breaks; displays as AWS's `InvalidParameterException` message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct Violations(pub Vec<Violation>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        let noun = if n == 1 { "error" } else { "errors" };
        let details: Vec<String> = self.0.iter().map(Violation::aws_text).collect();
        write!(f, "{n} validation {noun} detected: {}", details.join("; "))
    }
}

impl Violations {
    /// The `InvalidParameterException` a face answers with.
    pub fn to_aws_error(&self) -> crate::api::aws::error::AwsError {
        crate::api::aws::error::AwsError::invalid_parameter(self.to_string())
    }
}
