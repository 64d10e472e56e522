//! The botocore service models of Cognito Sync and Cognito Identity, embedded and read once:
//! the operation table (method, request URI, where each input member travels), request binding
//! for rest-json, routing by `requestUri` template, and validation of an input against every
//! constraint the model states, reported as AWS words it.
//!
//! Why the model rather than hand-written checks: the SDKs validate only required members, types
//! and `min` on the client, so patterns, `max` and enums reach the server, which must refuse them
//! with AWS's `InvalidParameterException` text; the model is the one place that states them all.

use axum::http::HeaderMap;
use percent_encoding::percent_decode_str;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

const COGNITO_SYNC_MODEL: &str = include_str!("../../../specs/aws/cognito-sync-2014-06-30.service-2.json");
const COGNITO_IDENTITY_MODEL: &str = include_str!("../../../specs/aws/cognito-identity-2014-06-30.service-2.json");

static COGNITO_SYNC: LazyLock<ServiceModel> =
    LazyLock::new(|| ServiceModel::parse(COGNITO_SYNC_MODEL).unwrap_or_else(|e| panic!("cognito-sync model: {e}")));
static COGNITO_IDENTITY: LazyLock<ServiceModel> = LazyLock::new(|| {
    ServiceModel::parse(COGNITO_IDENTITY_MODEL).unwrap_or_else(|e| panic!("cognito-identity model: {e}"))
});

/// Cognito Sync (rest-json, signing name `cognito-sync`).
pub fn cognito_sync() -> &'static ServiceModel {
    &COGNITO_SYNC
}

/// Cognito Identity (awsJson1.1, `X-Amz-Target: AWSCognitoIdentityService.<Op>`).
pub fn cognito_identity() -> &'static ServiceModel {
    &COGNITO_IDENTITY
}

/// Why an embedded model could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("not a botocore model: {0}")]
    Json(#[from] serde_json::Error),
    #[error("shape {shape}: pattern {pattern} does not compile: {error}")]
    Pattern { shape: String, pattern: String, error: regex::Error },
    #[error("shape {shape}: unsupported type {kind}")]
    UnsupportedType { shape: String, kind: String },
    #[error("{0} refers to shape {1}, which the model lacks")]
    MissingShape(String, String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub api_version: String,
    pub endpoint_prefix: String,
    pub protocol: String,
    pub service_id: String,
    pub signature_version: String,
    #[serde(default)]
    pub json_version: Option<String>,
    #[serde(default)]
    pub target_prefix: Option<String>,
}

/// Where an input member travels in a rest-json request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Body,
    Uri,
    QueryString,
    Header,
    /// A map of all headers with `location_name` as prefix.
    Headers,
}

/// One member of an operation's input, and where it is bound.
#[derive(Debug, Clone)]
pub struct MemberBinding {
    pub name: String,
    pub shape: String,
    pub location: Location,
    /// The wire name: the URI label, query key, header, or JSON key.
    pub location_name: String,
    pub required: bool,
}

/// An operation as the model describes it.
#[derive(Debug, Clone)]
pub struct Operation {
    pub name: String,
    pub method: String,
    pub request_uri: String,
    pub input: Option<String>,
    pub output: Option<String>,
    pub errors: Vec<String>,
    pub members: Vec<MemberBinding>,
    /// The member that is the whole body, when the input has a payload member.
    pub payload: Option<String>,
    /// False for the operations the model marks `authtype: none` / `smithy.api#noAuth`
    /// (Cognito Identity's GetId, GetCredentialsForIdentity, GetOpenIdToken, UnlinkIdentity).
    pub signed: bool,
    template: Vec<UriSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum UriSegment {
    Literal(String),
    Label(String),
    /// `{Name+}`: the rest of the path, slashes included.
    Greedy(String),
}

#[derive(Debug, Clone)]
pub enum ShapeKind {
    String,
    Integer,
    Long,
    Float,
    Boolean,
    Timestamp,
    Blob,
    List { member: String },
    Map { key: String, value: String },
    Structure { members: BTreeMap<String, RawMember>, required: Vec<String>, payload: Option<String> },
}

#[derive(Debug, Clone)]
pub struct Shape {
    pub name: String,
    pub kind: ShapeKind,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The model's (Java-style) pattern, and its translation anchored to the whole value.
    pub pattern: Option<(String, Regex)>,
    pub enum_values: Option<Vec<String>>,
    /// An error shape's HTTP status (`error.httpStatusCode`, else 500 for faults, else 400).
    pub error_status: Option<u16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMember {
    pub shape: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub location_name: Option<String>,
}

#[derive(Deserialize)]
struct RawModel {
    metadata: Metadata,
    operations: BTreeMap<String, RawOperation>,
    shapes: BTreeMap<String, RawShape>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOperation {
    http: RawHttp,
    #[serde(default)]
    input: Option<RawRef>,
    #[serde(default)]
    output: Option<RawRef>,
    #[serde(default)]
    errors: Vec<RawRef>,
    #[serde(default)]
    authtype: Option<String>,
    #[serde(default)]
    auth: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHttp {
    method: String,
    request_uri: String,
}

#[derive(Deserialize)]
struct RawRef {
    shape: String,
}

#[derive(Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default, rename = "enum")]
    enum_values: Option<Vec<String>>,
    #[serde(default)]
    members: Option<BTreeMap<String, RawMember>>,
    #[serde(default)]
    required: Option<Vec<String>>,
    #[serde(default)]
    member: Option<RawRef>,
    #[serde(default)]
    key: Option<RawRef>,
    #[serde(default)]
    value: Option<RawRef>,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    exception: bool,
    #[serde(default)]
    fault: bool,
    #[serde(default)]
    error: Option<RawErrorTrait>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawErrorTrait {
    #[serde(default)]
    http_status_code: Option<u16>,
}

/// A parsed service model.
#[derive(Debug)]
pub struct ServiceModel {
    pub metadata: Metadata,
    operations: BTreeMap<String, Operation>,
    shapes: HashMap<String, Shape>,
}

impl ServiceModel {
    pub fn parse(json: &str) -> Result<ServiceModel, ModelError> {
        let raw: RawModel = serde_json::from_str(json)?;
        let mut shapes = HashMap::with_capacity(raw.shapes.len());
        for (name, s) in raw.shapes {
            let shape = build_shape(&name, s)?;
            shapes.insert(name, shape);
        }
        let mut operations = BTreeMap::new();
        for (name, op) in raw.operations {
            let operation = build_operation(&name, op, &shapes)?;
            operations.insert(name, operation);
        }
        let model = ServiceModel { metadata: raw.metadata, operations, shapes };
        model.check_references()?;
        Ok(model)
    }

    fn check_references(&self) -> Result<(), ModelError> {
        for shape in self.shapes.values() {
            let targets: Vec<&String> = match &shape.kind {
                ShapeKind::List { member } => vec![member],
                ShapeKind::Map { key, value } => vec![key, value],
                ShapeKind::Structure { members, .. } => members.values().map(|m| &m.shape).collect(),
                _ => Vec::new(),
            };
            for target in targets {
                if !self.shapes.contains_key(target) {
                    return Err(ModelError::MissingShape(shape.name.clone(), target.clone()));
                }
            }
        }
        Ok(())
    }

    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.operations.values()
    }

    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }

    /// The operation an awsJson `X-Amz-Target` names (`AWSCognitoIdentityService.GetId`).
    pub fn operation_by_target(&self, target: &str) -> Option<&Operation> {
        let prefix = self.metadata.target_prefix.as_deref()?;
        let name = target.strip_prefix(prefix)?.strip_prefix('.')?;
        self.operation(name)
    }

    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    /// The HTTP status of the modeled error `code`, if the model has that error shape.
    pub fn error_status(&self, code: &str) -> Option<u16> {
        self.shapes.get(code).and_then(|s| s.error_status)
    }

    /// The operation whose `requestUri` template matches `method` and the raw `path`, and its
    /// labels, percent-decoded. Literal segments win over labels when two templates match.
    pub fn route(&self, method: &str, path: &str) -> Option<(&Operation, HashMap<String, String>)> {
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        self.operations
            .values()
            .filter(|op| op.method.eq_ignore_ascii_case(method))
            .filter_map(|op| match_template(&op.template, &segments).map(|labels| (op, labels)))
            .max_by_key(|(op, _)| op.template.iter().filter(|s| matches!(s, UriSegment::Literal(_))).count())
    }

    /// Builds an operation's input from a rest-json request: URI labels (decoded), query pairs
    /// (decoded), headers and the JSON body, each member taken from where the model binds it.
    /// Values that do not convert to the member's type are kept as strings, so that validation
    /// names them.
    pub fn bind_rest_json(
        &self,
        operation: &Operation,
        labels: &HashMap<String, String>,
        query: &[(String, String)],
        headers: &HeaderMap,
        body: Option<&Value>,
    ) -> Value {
        let mut input = Map::new();
        for member in &operation.members {
            let kind = self.shapes.get(&member.shape).map(|s| &s.kind);
            let value = match member.location {
                Location::Uri => labels.get(&member.location_name).map(|v| self.typed_from_text(&member.shape, v)),
                Location::QueryString => match kind {
                    Some(ShapeKind::List { member: item }) => {
                        let items: Vec<Value> = query
                            .iter()
                            .filter(|(k, _)| *k == member.location_name)
                            .map(|(_, v)| self.typed_from_text(item, v))
                            .collect();
                        (!items.is_empty()).then_some(Value::Array(items))
                    }
                    Some(ShapeKind::Map { .. }) => {
                        let bound: Vec<&str> = operation
                            .members
                            .iter()
                            .filter(|m| m.location == Location::QueryString && m.name != member.name)
                            .map(|m| m.location_name.as_str())
                            .collect();
                        let map: Map<String, Value> = query
                            .iter()
                            .filter(|(k, _)| !bound.contains(&k.as_str()))
                            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                            .collect();
                        (!map.is_empty()).then_some(Value::Object(map))
                    }
                    _ => query
                        .iter()
                        .find(|(k, _)| *k == member.location_name)
                        .map(|(_, v)| self.typed_from_text(&member.shape, v)),
                },
                Location::Header => headers
                    .get(member.location_name.as_str())
                    .map(|v| self.typed_from_text(&member.shape, &String::from_utf8_lossy(v.as_bytes()))),
                Location::Headers => {
                    let prefix = member.location_name.to_ascii_lowercase();
                    let map: Map<String, Value> = headers
                        .iter()
                        .filter_map(|(name, v)| {
                            let suffix = name.as_str().strip_prefix(&prefix)?;
                            Some((suffix.to_owned(), Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned())))
                        })
                        .collect();
                    (!map.is_empty()).then_some(Value::Object(map))
                }
                Location::Body => {
                    if operation.payload.as_deref() == Some(member.name.as_str()) {
                        body.cloned()
                    } else {
                        body.and_then(|b| b.get(&member.location_name)).cloned()
                    }
                }
            };
            if let Some(value) = value.filter(|v| !v.is_null()) {
                input.insert(member.name.clone(), value);
            }
        }
        Value::Object(input)
    }

    /// A URI label, query value or header as the member's type, or as-is when it is not one.
    fn typed_from_text(&self, shape: &str, text: &str) -> Value {
        let as_string = || Value::String(text.to_owned());
        match self.shapes.get(shape).map(|s| &s.kind) {
            Some(ShapeKind::Integer | ShapeKind::Long) => {
                text.parse::<i64>().map(Value::from).unwrap_or_else(|_| as_string())
            }
            Some(ShapeKind::Float) => {
                text.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number).unwrap_or_else(as_string)
            }
            Some(ShapeKind::Boolean) => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => as_string(),
            },
            Some(ShapeKind::Timestamp) => {
                text.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number).unwrap_or_else(as_string)
            }
            _ => as_string(),
        }
    }

    /// Checks `input` against every constraint the model states for `operation`'s input shape.
    pub fn validate(&self, operation: &Operation, input: &Value) -> Result<(), Violations> {
        let mut violations = Vec::new();
        if let Some(shape) = &operation.input {
            self.check(shape, Some(input), &mut Vec::new(), &mut violations);
        }
        if violations.is_empty() { Ok(()) } else { Err(Violations(violations)) }
    }

    fn check(&self, shape_name: &str, value: Option<&Value>, path: &mut Vec<PathSegment>, out: &mut Vec<Violation>) {
        let Some(shape) = self.shapes.get(shape_name) else { return };
        let Some(value) = value.filter(|v| !v.is_null()) else { return };
        let here = |constraint: Constraint, path: &[PathSegment]| Violation {
            path: path.to_vec(),
            value: Some(value.clone()),
            constraint,
        };
        let wrong_type = || Constraint::Type(type_name(&shape.kind));
        match &shape.kind {
            ShapeKind::String | ShapeKind::Blob => {
                let Some(text) = value.as_str() else {
                    return out.push(here(wrong_type(), path));
                };
                let mut broken =
                    length_constraints(shape, text.chars().count(), Constraint::MinLength, Constraint::MaxLength);
                if let Some((pattern, regex)) = &shape.pattern
                    && !regex.is_match(text)
                {
                    broken.push(Constraint::Pattern(pattern.clone()));
                }
                if let Some(values) = &shape.enum_values
                    && !values.iter().any(|v| v == text)
                {
                    broken.push(Constraint::Enum(values.clone()));
                }
                out.extend(broken.into_iter().map(|c| here(c, path)));
            }
            ShapeKind::Integer | ShapeKind::Long => {
                let n = value.as_i64().filter(|n| matches!(shape.kind, ShapeKind::Long) || i32::try_from(*n).is_ok());
                match n {
                    Some(n) => out.extend(range_constraints(shape, n as f64).into_iter().map(|c| here(c, path))),
                    None => out.push(here(wrong_type(), path)),
                }
            }
            ShapeKind::Float => match value.as_f64() {
                Some(n) => out.extend(range_constraints(shape, n).into_iter().map(|c| here(c, path))),
                None => out.push(here(wrong_type(), path)),
            },
            ShapeKind::Timestamp => {
                if !value.is_number() {
                    out.push(here(wrong_type(), path));
                }
            }
            ShapeKind::Boolean => {
                if !value.is_boolean() {
                    out.push(here(wrong_type(), path));
                }
            }
            ShapeKind::List { member } => {
                let Some(items) = value.as_array() else {
                    return out.push(here(wrong_type(), path));
                };
                let broken = length_constraints(shape, items.len(), Constraint::MinSize, Constraint::MaxSize);
                out.extend(broken.into_iter().map(|c| here(c, path)));
                for (i, item) in items.iter().enumerate() {
                    path.push(PathSegment::Index(i));
                    if item.is_null() {
                        out.push(Violation { path: path.clone(), value: None, constraint: Constraint::Required });
                    }
                    self.check(member, Some(item), path, out);
                    path.pop();
                }
            }
            ShapeKind::Map { key, value: value_shape } => {
                let Some(entries) = value.as_object() else {
                    return out.push(here(wrong_type(), path));
                };
                let broken = length_constraints(shape, entries.len(), Constraint::MinSize, Constraint::MaxSize);
                out.extend(broken.into_iter().map(|c| here(c, path)));
                for (k, v) in entries {
                    path.push(PathSegment::Key(k.clone()));
                    let mut key_violations = Vec::new();
                    self.check(key, Some(&Value::String(k.clone())), path, &mut key_violations);
                    out.extend(key_violations.into_iter().map(|mut violation| {
                        violation.constraint = Constraint::MapKey(Box::new(violation.constraint));
                        violation
                    }));
                    self.check(value_shape, Some(v), path, out);
                    path.pop();
                }
            }
            ShapeKind::Structure { members, required, .. } => {
                let Some(fields) = value.as_object() else {
                    return out.push(here(wrong_type(), path));
                };
                for (name, member) in members {
                    path.push(PathSegment::Member(name.clone()));
                    let field = fields.get(name).filter(|v| !v.is_null());
                    if field.is_none() && required.contains(name) {
                        out.push(Violation { path: path.clone(), value: None, constraint: Constraint::Required });
                    }
                    self.check(&member.shape, field, path, out);
                    path.pop();
                }
            }
        }
    }
}

/// `min`/`max` on a string's length in characters, or a list's or map's size.
fn length_constraints(
    shape: &Shape,
    len: usize,
    too_short: fn(f64) -> Constraint,
    too_long: fn(f64) -> Constraint,
) -> Vec<Constraint> {
    let len = len as f64;
    let mut broken = Vec::new();
    if let Some(min) = shape.min.filter(|m| len < *m) {
        broken.push(too_short(min));
    }
    if let Some(max) = shape.max.filter(|m| len > *m) {
        broken.push(too_long(max));
    }
    broken
}

fn range_constraints(shape: &Shape, n: f64) -> Vec<Constraint> {
    let mut broken = Vec::new();
    if let Some(min) = shape.min.filter(|m| n < *m) {
        broken.push(Constraint::MinValue(min));
    }
    if let Some(max) = shape.max.filter(|m| n > *m) {
        broken.push(Constraint::MaxValue(max));
    }
    broken
}

fn type_name(kind: &ShapeKind) -> &'static str {
    match kind {
        ShapeKind::String => "a string",
        ShapeKind::Integer => "an integer",
        ShapeKind::Long => "a long integer",
        ShapeKind::Float => "a number",
        ShapeKind::Boolean => "a boolean",
        ShapeKind::Timestamp => "a timestamp (epoch seconds)",
        ShapeKind::Blob => "a base64 string",
        ShapeKind::List { .. } => "a list",
        ShapeKind::Map { .. } => "a map",
        ShapeKind::Structure { .. } => "a structure",
    }
}

fn build_shape(name: &str, s: RawShape) -> Result<Shape, ModelError> {
    let missing = |what: &str| ModelError::MissingShape(format!("{name}.{what}"), String::new());
    let kind = match s.kind.as_str() {
        "string" => ShapeKind::String,
        "integer" => ShapeKind::Integer,
        "long" => ShapeKind::Long,
        "float" | "double" => ShapeKind::Float,
        "boolean" => ShapeKind::Boolean,
        "timestamp" => ShapeKind::Timestamp,
        "blob" => ShapeKind::Blob,
        "list" => ShapeKind::List { member: s.member.ok_or_else(|| missing("member"))?.shape },
        "map" => ShapeKind::Map {
            key: s.key.ok_or_else(|| missing("key"))?.shape,
            value: s.value.ok_or_else(|| missing("value"))?.shape,
        },
        "structure" => ShapeKind::Structure {
            members: s.members.unwrap_or_default(),
            required: s.required.unwrap_or_default(),
            payload: s.payload,
        },
        other => return Err(ModelError::UnsupportedType { shape: name.to_owned(), kind: other.to_owned() }),
    };
    let pattern = match s.pattern {
        None => None,
        Some(pattern) => {
            let regex = compile_java_pattern(&pattern).map_err(|error| ModelError::Pattern {
                shape: name.to_owned(),
                pattern: pattern.clone(),
                error,
            })?;
            Some((pattern, regex))
        }
    };
    let error_status = (s.exception || s.error.is_some())
        .then(|| s.error.and_then(|e| e.http_status_code).unwrap_or(if s.fault { 500 } else { 400 }));
    Ok(Shape { name: name.to_owned(), kind, min: s.min, max: s.max, pattern, enum_values: s.enum_values, error_status })
}

fn build_operation(name: &str, op: RawOperation, shapes: &HashMap<String, Shape>) -> Result<Operation, ModelError> {
    let mut members = Vec::new();
    let mut payload = None;
    if let Some(input) = &op.input {
        let shape =
            shapes.get(&input.shape).ok_or_else(|| ModelError::MissingShape(name.to_owned(), input.shape.clone()))?;
        if let ShapeKind::Structure { members: raw, required, payload: p } = &shape.kind {
            payload = p.clone();
            for (member_name, m) in raw {
                let location = match m.location.as_deref() {
                    Some("uri") => Location::Uri,
                    Some("querystring") => Location::QueryString,
                    Some("header") => Location::Header,
                    Some("headers") => Location::Headers,
                    _ => Location::Body,
                };
                members.push(MemberBinding {
                    name: member_name.clone(),
                    shape: m.shape.clone(),
                    location,
                    location_name: m.location_name.clone().unwrap_or_else(|| member_name.clone()),
                    required: required.contains(member_name),
                });
            }
        }
    }
    let path = op.http.request_uri.split('?').next().unwrap_or_default();
    let template = path
        .strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .map(|segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(label) => match label.strip_suffix('+') {
                Some(greedy) => UriSegment::Greedy(greedy.to_owned()),
                None => UriSegment::Label(label.to_owned()),
            },
            None => UriSegment::Literal(segment.to_owned()),
        })
        .collect();
    let unsigned = op.authtype.as_deref() == Some("none")
        || op.auth.as_ref().is_some_and(|a| a.iter().any(|s| s == "smithy.api#noAuth"));
    Ok(Operation {
        name: name.to_owned(),
        method: op.http.method,
        request_uri: op.http.request_uri,
        input: op.input.map(|r| r.shape),
        output: op.output.map(|r| r.shape),
        errors: op.errors.into_iter().map(|r| r.shape).collect(),
        members,
        payload,
        signed: !unsigned,
        template,
    })
}

fn match_template(template: &[UriSegment], segments: &[&str]) -> Option<HashMap<String, String>> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut labels = HashMap::new();
    for (i, part) in template.iter().enumerate() {
        match part {
            UriSegment::Literal(literal) => {
                if segments.get(i) != Some(&literal.as_str()) {
                    return None;
                }
            }
            UriSegment::Label(name) => {
                let segment = segments.get(i).filter(|s| !s.is_empty())?;
                labels.insert(name.clone(), decode(segment));
            }
            UriSegment::Greedy(name) => {
                let rest = segments.get(i..).filter(|r| !r.is_empty())?.join("/");
                if rest.is_empty() {
                    return None;
                }
                labels.insert(name.clone(), decode(&rest));
                return Some(labels);
            }
        }
    }
    (segments.len() == template.len()).then_some(labels)
}

/// Compiles a botocore (Java `Pattern`) regular expression to match whole values, as Java's
/// `matches()` does. Java's `\w`, `\d`, `\s` are ASCII-only and `.` stops at any line
/// terminator, unlike Rust's Unicode-aware defaults, so those are spelt out; `\p{…}` classes
/// mean the same in both.
pub fn compile_java_pattern(pattern: &str) -> Result<Regex, regex::Error> {
    let mut out = String::with_capacity(pattern.len() + 32);
    let mut chars = pattern.chars();
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('w') => out.push_str("[0-9A-Za-z_]"),
                Some('W') => out.push_str("[^0-9A-Za-z_]"),
                Some('d') => out.push_str("[0-9]"),
                Some('D') => out.push_str("[^0-9]"),
                Some('s') => out.push_str(r"[\t\n\x0B\f\r ]"),
                Some('S') => out.push_str(r"[^\t\n\x0B\f\r ]"),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push_str(r"\\"),
            },
            '[' => {
                class_depth += 1;
                out.push('[');
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
            }
            '.' if class_depth == 0 => out.push_str(r"[^\n\r\u{85}\u{2028}\u{2029}]"),
            other => out.push(other),
        }
    }
    Regex::new(&format!("^(?:{out})$"))
}

mod violation;
pub use violation::{Constraint, PathSegment, Violation, Violations};

#[cfg(test)]
mod tests;
