//! Every operation of both models accepts a generated valid input and refuses, for every
//! constraint reachable from its input, an input that breaks just that value; patterns behave as
//! Java's would; captured requests bind and route as the SDKs send them.

use super::*;
use axum::http::HeaderValue;

fn models() -> [&'static ServiceModel; 2] {
    [cognito_sync(), cognito_identity()]
}

/// A value each pattern in the two models accepts, and values it must refuse.
fn pattern_cases(pattern: &str) -> (&'static str, &'static [&'static str]) {
    match pattern {
        r"[\w-]+:[0-9a-f-]+" => (
            "us-east-1:11111111-2222-3333-4444-555555555555",
            &["us-east-1:ABCDEF", "us-east-1", "us east 1:abc", "ü-1:abc", "us-east-1:abc\n"],
        ),
        "[a-zA-Z0-9_.:-]+" => ("my_data.set-1:x", &["bad name!", "ü", "a/b", ""]),
        r"arn:aws:iam::\d+:role/.*" => {
            ("arn:aws:iam::123456789012:role/sync-role", &["arn:aws:iam::12a:role/x", "arn:aws:iam::1:role/a\nb"])
        }
        r"arn:aws:sns:[-0-9a-z]+:\d+:app/[A-Z_]+/[a-zA-Z0-9_.-]+" => {
            ("arn:aws:sns:us-east-1:123456789012:app/GCM/my-app", &["arn:aws:sns:us-east-1:1:app/gcm/x", "x"])
        }
        "(un)?authenticated" => ("unauthenticated", &["authenticatedX", "Authenticated", "un"]),
        r"[\S]+" => ("tok/+=en", &["has space", "tab\there", ""]),
        r"[\p{L}\p{M}\p{S}\p{N}\p{P}]+" => ("claim_名前-1+€", &["has space", "ctrl\u{7}"]),
        r"[\w.;_/-]+" => ("graph.facebook.com;x/y", &["bad space", "é"]),
        r"[\w._-]+" => ("login.example_dev", &["login/example", "é"]),
        r"[\w._:/-]+" => ("cognito-idp.us-east-1.amazonaws.com/us-east-1_abc", &["bad space", "é"]),
        r"[\w\s+=,.@-]+" => ("My Pool+=,.@-", &["bad!", "é"]),
        r"[\w_]+" => ("client_1", &["client-1", "é"]),
        r"\d+" => ("123456789012", &["12a", "١٢"]),
        other => panic!("no cases for pattern {other}: add them"),
    }
}

#[test]
fn both_models_load_with_their_operation_tables() {
    let sync = cognito_sync();
    assert_eq!(sync.metadata.protocol, "rest-json");
    assert_eq!(sync.metadata.endpoint_prefix, "cognito-sync");
    assert_eq!(sync.operations().count(), 17);
    let update = sync.operation("UpdateRecords").expect("UpdateRecords");
    assert_eq!(update.method, "POST");
    assert_eq!(update.request_uri, "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}");
    let context = update.members.iter().find(|m| m.name == "ClientContext").expect("ClientContext");
    assert_eq!((context.location, context.location_name.as_str()), (Location::Header, "x-amz-Client-Context"));
    let patches = update.members.iter().find(|m| m.name == "RecordPatches").expect("RecordPatches");
    assert_eq!(patches.location, Location::Body);
    assert!(update.members.iter().find(|m| m.name == "SyncSessionToken").expect("token").required);
    assert!(sync.operations().all(|op| op.signed));
    assert_eq!(sync.error_status("ResourceConflictException"), Some(409));
    assert_eq!(sync.error_status("InternalErrorException"), Some(500));
    assert_eq!(sync.error_status("TooManyRequestsException"), Some(429));
    assert_eq!(sync.error_status("Dataset"), None);

    let identity = cognito_identity();
    assert_eq!(identity.metadata.protocol, "json");
    assert_eq!(identity.operations().count(), 23);
    let get_id = identity.operation_by_target("AWSCognitoIdentityService.GetId").expect("GetId");
    assert!(!get_id.signed);
    let unsigned: Vec<&str> = identity.operations().filter(|op| !op.signed).map(|op| op.name.as_str()).collect();
    assert_eq!(unsigned, ["GetCredentialsForIdentity", "GetId", "GetOpenIdToken", "UnlinkIdentity"]);
    assert!(identity.operation_by_target("AWSCognitoIdentityService.Nope").is_none());
    assert!(identity.operation_by_target("Other.GetId").is_none());
    // awsJson errors without an httpStatusCode are 400; faults 500.
    assert_eq!(identity.error_status("NotAuthorizedException"), Some(400));
    assert_eq!(identity.error_status("InternalErrorException"), Some(500));
}

#[test]
fn every_pattern_in_both_models_compiles_and_behaves_as_java_s() {
    let mut seen = 0;
    for model in models() {
        for shape in model.shapes.values() {
            let Some((pattern, regex)) = &shape.pattern else { continue };
            let (good, bad) = pattern_cases(pattern);
            assert!(regex.is_match(good), "{pattern} should accept {good:?}");
            for b in bad {
                assert!(!regex.is_match(b), "{pattern} should refuse {b:?}");
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 16, "patterned shapes in the two models");
    // Java's `.` stops at \r too; `\s` is ASCII.
    assert!(!compile_java_pattern("a.b").expect("compiles").is_match("a\rb"));
    assert!(!compile_java_pattern(r"\s").expect("compiles").is_match("\u{a0}"));
    assert!(compile_java_pattern(r"\s").expect("compiles").is_match("\u{b}"));
}

/// A valid value for `shape`, every optional member filled in.
fn example(model: &ServiceModel, shape_name: &str) -> Value {
    let shape = model.shape(shape_name).expect("shape");
    match &shape.kind {
        ShapeKind::String | ShapeKind::Blob => {
            if let Some(values) = &shape.enum_values {
                return Value::String(values[0].clone());
            }
            if let Some((pattern, _)) = &shape.pattern {
                return Value::String(pattern_cases(pattern).0.to_owned());
            }
            let min = shape.min.unwrap_or(1.0).max(1.0) as usize;
            Value::String("v".repeat(min.max(3).min(shape.max.unwrap_or(1e9) as usize)))
        }
        ShapeKind::Integer | ShapeKind::Long => Value::from(shape.min.unwrap_or(1.0).max(1.0) as i64),
        ShapeKind::Float => Value::from(1.5),
        ShapeKind::Boolean => Value::Bool(true),
        ShapeKind::Timestamp => Value::from(1_704_164_645),
        ShapeKind::List { member } => Value::Array(vec![example(model, member)]),
        ShapeKind::Map { key, value } => {
            let key = example(model, key).as_str().expect("string key").to_owned();
            Value::Object([(key, example(model, value))].into_iter().collect())
        }
        ShapeKind::Structure { members, .. } => {
            Value::Object(members.iter().map(|(name, m)| (name.clone(), example(model, &m.shape))).collect())
        }
    }
}

/// A place in an example input: JSON pointer, validator path, the shape there, and whether its
/// structure requires it.
struct Site {
    pointer: String,
    path: Vec<PathSegment>,
    shape: String,
    required: bool,
    map_key: bool,
}

fn sites(
    model: &ServiceModel,
    shape_name: &str,
    value: &Value,
    pointer: String,
    path: Vec<PathSegment>,
    out: &mut Vec<Site>,
) {
    let shape = model.shape(shape_name).expect("shape");
    match (&shape.kind, value) {
        (ShapeKind::List { member }, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let mut p = path.clone();
                p.push(PathSegment::Index(i));
                out.push(Site {
                    pointer: format!("{pointer}/{i}"),
                    path: p.clone(),
                    shape: member.clone(),
                    required: false,
                    map_key: false,
                });
                sites(model, member, item, format!("{pointer}/{i}"), p, out);
            }
        }
        (ShapeKind::Map { key, value: value_shape }, Value::Object(entries)) => {
            for (k, v) in entries {
                let mut p = path.clone();
                p.push(PathSegment::Key(k.clone()));
                let escaped = k.replace('~', "~0").replace('/', "~1");
                out.push(Site {
                    pointer: format!("{pointer}/{escaped}"),
                    path: p.clone(),
                    shape: key.clone(),
                    required: false,
                    map_key: true,
                });
                out.push(Site {
                    pointer: format!("{pointer}/{escaped}"),
                    path: p.clone(),
                    shape: value_shape.clone(),
                    required: false,
                    map_key: false,
                });
                sites(model, value_shape, v, format!("{pointer}/{escaped}"), p, out);
            }
        }
        (ShapeKind::Structure { members, required, .. }, Value::Object(fields)) => {
            for (name, m) in members {
                let mut p = path.clone();
                p.push(PathSegment::Member(name.clone()));
                out.push(Site {
                    pointer: format!("{pointer}/{name}"),
                    path: p.clone(),
                    shape: m.shape.clone(),
                    required: required.contains(name),
                    map_key: false,
                });
                if let Some(v) = fields.get(name) {
                    sites(model, &m.shape, v, format!("{pointer}/{name}"), p, out);
                }
            }
        }
        _ => {}
    }
}

/// Replacement values at a site that break one constraint each, with the constraint expected.
/// Which constraint a replacement value must be reported as breaking.
type Expected = fn(&Constraint) -> bool;

fn breakers(model: &ServiceModel, site: &Site, current: &Value) -> Vec<(Value, Expected)> {
    let shape = model.shape(&site.shape).expect("shape");
    let mut out: Vec<(Value, Expected)> = Vec::new();
    match &shape.kind {
        ShapeKind::String | ShapeKind::Blob => {
            if let Some(max) = shape.max {
                out.push((Value::String("a".repeat(max as usize + 1)), |c| matches!(c, Constraint::MaxLength(_))));
            }
            if let Some(min) = shape.min.filter(|m| *m > 0.0) {
                out.push((Value::String("a".repeat(min as usize - 1)), |c| matches!(c, Constraint::MinLength(_))));
            }
            if let Some((pattern, _)) = &shape.pattern {
                for bad in pattern_cases(pattern).1.iter().filter(|b| !b.is_empty()) {
                    out.push((Value::String((*bad).to_owned()), |c| matches!(c, Constraint::Pattern(_))));
                }
            }
            if shape.enum_values.is_some() {
                out.push((Value::String("NOT_A_VALUE".into()), |c| matches!(c, Constraint::Enum(_))));
            }
            out.push((Value::from(5), |c| matches!(c, Constraint::Type(_))));
        }
        ShapeKind::Integer | ShapeKind::Long => {
            if let Some(max) = shape.max {
                out.push((Value::from(max as i64 + 1), |c| matches!(c, Constraint::MaxValue(_))));
            }
            if let Some(min) = shape.min {
                out.push((Value::from(min as i64 - 1), |c| matches!(c, Constraint::MinValue(_))));
            }
            out.push((Value::String("5".into()), |c| matches!(c, Constraint::Type(_))));
            if matches!(shape.kind, ShapeKind::Integer) {
                out.push((Value::from(1i64 << 40), |c| matches!(c, Constraint::Type(_))));
            }
        }
        ShapeKind::Boolean | ShapeKind::Timestamp | ShapeKind::Float => {
            out.push((Value::String("x".into()), |c| matches!(c, Constraint::Type(_))));
        }
        ShapeKind::List { .. } => {
            if let (Some(max), Some(items)) = (shape.max, current.as_array()) {
                out.push((Value::Array(vec![items[0].clone(); max as usize + 1]), |c| {
                    matches!(c, Constraint::MaxSize(_))
                }));
            }
            if shape.min.is_some_and(|m| m > 0.0) {
                out.push((Value::Array(Vec::new()), |c| matches!(c, Constraint::MinSize(_))));
            }
            out.push((Value::String("x".into()), |c| matches!(c, Constraint::Type(_))));
        }
        ShapeKind::Map { .. } => {
            if let (Some(max), Some(entries)) = (shape.max, current.as_object()) {
                let (_, v) = entries.iter().next().expect("one entry");
                let mut bigger = entries.clone();
                for i in 0..(max as usize) {
                    bigger.insert(format!("extra{i}"), v.clone());
                }
                out.push((Value::Object(bigger), |c| matches!(c, Constraint::MaxSize(_))));
            }
            out.push((Value::from(1), |c| matches!(c, Constraint::Type(_))));
        }
        ShapeKind::Structure { .. } => out.push((Value::from(1), |c| matches!(c, Constraint::Type(_)))),
    }
    out
}

#[test]
fn every_operation_accepts_a_valid_input_and_refuses_each_broken_constraint() {
    let mut refusals = 0;
    for model in models() {
        for op in model.operations() {
            let Some(input_shape) = &op.input else { continue };
            let valid = example(model, input_shape);
            if let Err(v) = model.validate(op, &valid) {
                panic!("{}: valid example refused: {v}\n{valid:#}", op.name);
            }
            let mut all = Vec::new();
            sites(model, input_shape, &valid, String::new(), Vec::new(), &mut all);
            for site in &all {
                let current = valid.pointer(&site.pointer).cloned().unwrap_or(Value::Null);
                if site.required {
                    let mut broken = valid.clone();
                    let (parent, name) = site.pointer.rsplit_once('/').expect("member pointer");
                    let parent = if parent.is_empty() { Some(&mut broken) } else { broken.pointer_mut(parent) };
                    parent.and_then(Value::as_object_mut).expect("parent").remove(name);
                    let err = model.validate(op, &broken).expect_err("missing required member");
                    assert!(
                        err.0.iter().any(|v| v.path == site.path && v.constraint == Constraint::Required),
                        "{}: {}: {err}",
                        op.name,
                        site.pointer
                    );
                    assert!(err.to_string().contains("Member must not be null"));
                    refusals += 1;
                }
                if site.map_key {
                    let key_shape = model.shape(&site.shape).expect("key shape");
                    let bad_keys: Vec<String> = match (&key_shape.pattern, key_shape.max) {
                        (Some((p, _)), _) => pattern_cases(p).1.iter().map(|s| (*s).to_owned()).collect(),
                        (None, Some(max)) => vec!["k".repeat(max as usize + 1)],
                        _ => Vec::new(),
                    };
                    for bad in bad_keys.into_iter().filter(|k| !k.is_empty()) {
                        let mut broken = valid.clone();
                        let (parent, old) = site.pointer.rsplit_once('/').expect("entry pointer");
                        let map = if parent.is_empty() { Some(&mut broken) } else { broken.pointer_mut(parent) };
                        let map = map.and_then(Value::as_object_mut).expect("map");
                        let value = map.remove(old).expect("entry");
                        map.insert(bad.clone(), value);
                        let err = model.validate(op, &broken).expect_err("bad map key");
                        let mut expected_path = site.path.clone();
                        expected_path.pop();
                        expected_path.push(PathSegment::Key(bad.clone()));
                        assert!(
                            err.0
                                .iter()
                                .any(|v| v.path == expected_path && matches!(v.constraint, Constraint::MapKey(_))),
                            "{}: key {bad:?}: {err}",
                            op.name
                        );
                        assert!(err.to_string().contains("Map keys must satisfy constraint"), "{err}");
                        refusals += 1;
                    }
                    continue;
                }
                for (replacement, expected) in breakers(model, site, &current) {
                    let mut broken = valid.clone();
                    *broken.pointer_mut(&site.pointer).expect("site") = replacement.clone();
                    let err = model
                        .validate(op, &broken)
                        .err()
                        .unwrap_or_else(|| panic!("{}: {} = {replacement} accepted", op.name, site.pointer));
                    let hit = err.0.iter().find(|v| v.path == site.path && expected(&v.constraint));
                    let hit = hit.unwrap_or_else(|| panic!("{}: {} = {replacement}: {err}", op.name, site.pointer));
                    let aws_path = hit.aws_path();
                    assert!(
                        err.to_string().contains(&format!("at '{aws_path}' failed to satisfy constraint: ")),
                        "{err}"
                    );
                    refusals += 1;
                }
            }
        }
    }
    assert!(refusals > 300, "only {refusals} refusals checked");
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_static(v));
    }
    h
}

fn query(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

const POOL: &str = "us-east-1%3A11111111-2222-3333-4444-555555555555";
const ID: &str = "us-east-1%3Aaaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

/// Routes, binds and validates a rest-json request as the Cognito Sync face will.
fn bind(
    method: &str,
    path: &str,
    raw_query: &str,
    h: &HeaderMap,
    body: Option<&str>,
) -> (String, Value, Result<(), Violations>) {
    let model = cognito_sync();
    let (op, labels) = model.route(method, path).unwrap_or_else(|| panic!("no route for {method} {path}"));
    let body: Option<Value> = body.map(|b| serde_json::from_str(b).expect("json"));
    let input = model.bind_rest_json(op, &labels, &query(raw_query), h, body.as_ref());
    let result = model.validate(op, &input);
    (op.name.clone(), input, result)
}

#[test]
fn captured_list_records_binds_labels_and_query() {
    let path = format!("/identitypools/{POOL}/identities/{ID}/datasets/settings/records");
    let q = "lastSyncCount=7&maxResults=2&nextToken=abc%2F%2B%3D&syncSessionToken=tok";
    let (name, input, result) = bind("GET", &path, q, &HeaderMap::new(), None);
    assert_eq!(name, "ListRecords");
    assert_eq!(
        input,
        serde_json::json!({
            "IdentityPoolId": "us-east-1:11111111-2222-3333-4444-555555555555",
            "IdentityId": "us-east-1:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "DatasetName": "settings",
            "LastSyncCount": 7,
            "MaxResults": 2,
            "NextToken": "abc/+=",
            "SyncSessionToken": "tok",
        })
    );
    assert!(result.is_ok(), "{result:?}");

    let (_, _, result) = bind("GET", &path, "maxResults=lots", &HeaderMap::new(), None);
    assert_eq!(
        result.expect_err("not a number").to_string(),
        "1 validation error detected: Value 'lots' at 'maxResults' failed to satisfy constraint: Member must be an integer"
    );
}

#[test]
fn captured_update_records_binds_header_and_body() {
    let path = format!("/identitypools/{POOL}/identities/{ID}/datasets/settings");
    let h = headers(&[("x-amz-client-context", "eyJjbGllbnQiOnt9fQ=="), ("content-type", "application/json")]);
    let body = r#"{"DeviceId": "device-1", "SyncSessionToken": "tok", "RecordPatches": [{"Op": "replace", "Key": "color", "Value": "blue", "SyncCount": 0, "DeviceLastModifiedDate": 1704164645}, {"Op": "remove", "Key": "old", "SyncCount": 3}]}"#;
    let (name, input, result) = bind("POST", &path, "", &h, Some(body));
    assert_eq!(name, "UpdateRecords");
    assert_eq!(input["ClientContext"], "eyJjbGllbnQiOnt9fQ==");
    assert_eq!(input["RecordPatches"][1]["Op"], "remove");
    assert_eq!(input["DeviceId"], "device-1");
    assert!(result.is_ok(), "{result:?}");

    // Four patches, the last one's key too long and another's op unknown.
    let long_key = "k".repeat(1025);
    let body = format!(
        r#"{{"SyncSessionToken": "tok", "RecordPatches": [
            {{"Op": "replace", "Key": "a", "SyncCount": 0}}, {{"Op": "upsert", "Key": "b", "SyncCount": 0}},
            {{"Op": "replace", "Key": "c", "SyncCount": 0}}, {{"Op": "replace", "Key": "{long_key}", "SyncCount": 0}}]}}"#
    );
    let (_, _, result) = bind("POST", &path, "", &h, Some(&body));
    let err = result.expect_err("refused");
    assert_eq!(err.0.len(), 2);
    assert_eq!(err.0[0].to_string(), "RecordPatches[1].Op must be one of replace, remove");
    assert_eq!(err.0[1].to_string(), "RecordPatches[3].Key must be at most 1024 characters");
    let message = err.to_string();
    assert!(message.starts_with(
        "2 validation errors detected: Value 'upsert' at 'recordPatches.2.member.op' failed to satisfy constraint: \
         Member must satisfy enum value set: [replace, remove]; Value 'kkk"
    ));
    assert!(message.ends_with(
        "...' at 'recordPatches.4.member.key' failed to satisfy constraint: Member must have length less than or equal to 1024"
    ));
    assert_eq!(err.to_aws_error().code, "InvalidParameterException");

    // A missing session token.
    let (_, _, result) = bind("POST", &path, "", &h, Some(r#"{"RecordPatches": []}"#));
    assert_eq!(
        result.expect_err("no token").to_string(),
        "1 validation error detected: Value null at 'syncSessionToken' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn dataset_names_and_platforms_are_checked_as_aws_words_it() {
    let path = format!("/identitypools/{POOL}/identities/{ID}/datasets/bad%20name%21");
    let (name, _, result) = bind("GET", &path, "", &HeaderMap::new(), None);
    assert_eq!(name, "DescribeDataset");
    assert_eq!(
        result.expect_err("bad name").to_string(),
        "1 validation error detected: Value 'bad name!' at 'datasetName' failed to satisfy constraint: Member must \
         satisfy regular expression pattern: [a-zA-Z0-9_.:-]+"
    );

    let path = format!("/identitypools/{POOL}/identity/{ID}/device");
    let (name, input, result) =
        bind("POST", &path, "", &HeaderMap::new(), Some(r#"{"Platform": "GCM", "Token": "push-token"}"#));
    assert_eq!(name, "RegisterDevice");
    assert_eq!(input["Platform"], "GCM");
    assert!(result.is_ok());
    let (_, _, result) =
        bind("POST", &path, "", &HeaderMap::new(), Some(r#"{"Platform": "WINDOWS_PHONE", "Token": "push-token"}"#));
    let err = result.expect_err("platform");
    assert_eq!(err.0[0].to_string(), "Platform must be one of APNS, APNS_SANDBOX, GCM, ADM");
    assert_eq!(
        err.to_string(),
        "1 validation error detected: Value 'WINDOWS_PHONE' at 'platform' failed to satisfy constraint: Member must \
         satisfy enum value set: [APNS, APNS_SANDBOX, GCM, ADM]"
    );

    let path = "/identitypools/us-east-1%3AABC/events";
    let (name, _, result) = bind("GET", path, "", &HeaderMap::new(), None);
    assert_eq!(name, "GetCognitoEvents");
    assert!(result.expect_err("upper-case hex").to_string().contains("at 'identityPoolId'"));
}

#[test]
fn every_captured_request_routes_to_its_operation() {
    let cases = [
        ("DELETE", format!("/identitypools/{POOL}/identities/{ID}/datasets/settings"), "DeleteDataset"),
        ("GET", format!("/identitypools/{POOL}/identities/{ID}/datasets/settings"), "DescribeDataset"),
        ("POST", format!("/identitypools/{POOL}/identities/{ID}/datasets/settings"), "UpdateRecords"),
        ("POST", format!("/identitypools/{POOL}/identity/{ID}/device"), "RegisterDevice"),
        (
            "POST",
            format!("/identitypools/{POOL}/identities/{ID}/datasets/settings/subscriptions/device-1"),
            "SubscribeToDataset",
        ),
        (
            "DELETE",
            format!("/identitypools/{POOL}/identities/{ID}/datasets/settings/subscriptions/device-1"),
            "UnsubscribeFromDataset",
        ),
        ("POST", format!("/identitypools/{POOL}/events"), "SetCognitoEvents"),
        ("GET", format!("/identitypools/{POOL}/events"), "GetCognitoEvents"),
        ("POST", format!("/identitypools/{POOL}/bulkpublish"), "BulkPublish"),
        ("POST", format!("/identitypools/{POOL}/getBulkPublishDetails"), "GetBulkPublishDetails"),
        ("GET", format!("/identitypools/{POOL}/configuration"), "GetIdentityPoolConfiguration"),
        ("POST", format!("/identitypools/{POOL}/configuration"), "SetIdentityPoolConfiguration"),
        ("GET", "/identitypools".to_owned(), "ListIdentityPoolUsage"),
        ("GET", format!("/identitypools/{POOL}"), "DescribeIdentityPoolUsage"),
        ("GET", format!("/identitypools/{POOL}/identities/{ID}"), "DescribeIdentityUsage"),
        ("GET", format!("/identitypools/{POOL}/identities/{ID}/datasets"), "ListDatasets"),
        ("GET", format!("/identitypools/{POOL}/identities/{ID}/datasets/settings/records"), "ListRecords"),
    ];
    let model = cognito_sync();
    for (method, path, expected) in &cases {
        let (op, labels) = model.route(method, path).unwrap_or_else(|| panic!("{method} {path}"));
        assert_eq!(op.name, *expected, "{method} {path}");
        if let Some(pool) = labels.get("IdentityPoolId") {
            assert_eq!(pool, "us-east-1:11111111-2222-3333-4444-555555555555");
        }
    }
    assert!(model.route("PUT", &format!("/identitypools/{POOL}")).is_none());
    assert!(model.route("GET", "/identitypools//identities/x").is_none(), "empty label");
    assert!(model.route("GET", "/elsewhere").is_none());

    let (_, input, result) = bind("GET", "/identitypools", "maxResults=5", &HeaderMap::new(), None);
    assert_eq!(input, serde_json::json!({"MaxResults": 5}));
    assert!(result.is_ok());
    let (_, input, result) = bind("POST", &format!("/identitypools/{POOL}/bulkpublish"), "", &HeaderMap::new(), None);
    assert_eq!(input, serde_json::json!({"IdentityPoolId": "us-east-1:11111111-2222-3333-4444-555555555555"}));
    assert!(result.is_ok());
    let events = r#"{"Events": {"SyncTrigger": "arn:aws:lambda:us-east-1:123456789012:function:f"}}"#;
    let (_, _, result) = bind("POST", &format!("/identitypools/{POOL}/events"), "", &HeaderMap::new(), Some(events));
    assert!(result.is_ok());
    let two = r#"{"Events": {"SyncTrigger": "a", "Other": "b"}}"#;
    let (_, _, result) = bind("POST", &format!("/identitypools/{POOL}/events"), "", &HeaderMap::new(), Some(two));
    assert_eq!(
        result.expect_err("two events").to_string(),
        r#"1 validation error detected: Value '{"Other":"b","SyncTrigger":"a"}' at 'events' failed to satisfy constraint: Member must have length less than or equal to 1"#
    );
}

#[test]
fn greedy_labels_take_the_rest_of_the_path() {
    let template = vec![UriSegment::Literal("files".into()), UriSegment::Greedy("Key".into())];
    let labels = match_template(&template, &["files", "a%20b", "c"]).expect("matches");
    assert_eq!(labels["Key"], "a b/c");
    assert!(match_template(&template, &["files"]).is_none());
}

#[test]
fn cognito_identity_inputs_validate_from_the_json_body() {
    let model = cognito_identity();
    let op = model.operation_by_target("AWSCognitoIdentityService.ListIdentityPools").expect("op");
    assert!(model.validate(op, &serde_json::json!({"MaxResults": 60})).is_ok());
    let err = model.validate(op, &serde_json::json!({"MaxResults": 61})).expect_err("too many");
    assert_eq!(
        err.to_string(),
        "1 validation error detected: Value '61' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 60"
    );
    let op = model.operation("SetIdentityPoolRoles").expect("op");
    let err = model
        .validate(op, &serde_json::json!({"IdentityPoolId": "us-east-1:abc", "Roles": {"admin": "arn:aws:iam::1:role/administrator"}}))
        .expect_err("bad role type");
    assert_eq!(
        err.to_string(),
        "1 validation error detected: Value 'admin' at 'roles' failed to satisfy constraint: Map keys must satisfy \
         constraint: [Member must satisfy regular expression pattern: (un)?authenticated]"
    );
    assert_eq!(err.0[0].member_path(), r#"Roles["admin"]"#);
}
