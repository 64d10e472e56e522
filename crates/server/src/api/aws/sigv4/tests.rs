//! The verifier against AWS's published signing test suite, and against the `aws-sigv4` signer
//! (what aws-sdk-cognitosync uses) on generated requests, with mutations it must refuse.

use super::*;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use std::path::PathBuf;
use time::format_description::well_known::Rfc3339;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// A key table with one key; a session token, when it has one, must be sent with it.
struct OneKey {
    id: String,
    secret: String,
    token: Option<String>,
}

impl OneKey {
    fn new(id: &str, secret: &str, token: Option<&str>) -> Self {
        OneKey { id: id.into(), secret: secret.into(), token: token.map(Into::into) }
    }
}

impl SigningKeys for OneKey {
    type Principal = String;

    async fn secret(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> Result<SigningSecret<String>, AwsAuthError> {
        if access_key_id != self.id || session_token != self.token.as_deref() {
            return Err(AwsAuthError::UnrecognizedClient);
        }
        Ok(SigningSecret { secret: self.secret.clone(), principal: format!("principal:{access_key_id}") })
    }
}

/// A request parsed from the suite's `*-signed-request.txt`.
struct RawRequest {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl RawRequest {
    fn parse(text: &str) -> Option<RawRequest> {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let request_line = lines.next()?;
        let (method, rest) = request_line.split_once(' ')?;
        let target = rest.strip_suffix(" HTTP/1.1").unwrap_or(rest);
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        let mut headers = HeaderMap::new();
        for line in lines {
            // Folded (obs-fold) header lines cannot be represented in an HTTP header map, and
            // hyper refuses them on the wire.
            if line.starts_with([' ', '\t']) {
                return None;
            }
            let (name, value) = line.split_once(':')?;
            headers.append(HeaderName::from_bytes(name.as_bytes()).ok()?, HeaderValue::from_str(value).ok()?);
        }
        Some(RawRequest { method: method.into(), path, query, headers, body: body.as_bytes().to_vec() })
    }

    fn signed(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            authority: None,
            body: &self.body,
        }
    }
}

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws-signing-test-suite/v4")
}

fn read(dir: &std::path::Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok()
}

/// Runs `f` on a small runtime: the key lookup is async.
fn block_on<F: Future>(f: F) -> F::Output {
    match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt.block_on(f),
        Err(e) => panic!("no runtime: {e}"),
    }
}

#[test]
fn every_suite_vector_verifies_and_canonicalises_as_published() {
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(suite_dir()).expect("suite directory").flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let dir = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(context) = read(&dir, "context.json") else { continue };
        let context: serde_json::Value = serde_json::from_str(&context).expect("context.json");
        let creds = &context["credentials"];
        let keys = OneKey::new(
            creds["access_key_id"].as_str().expect("key id"),
            creds["secret_access_key"].as_str().expect("secret"),
            creds["token"].as_str(),
        );
        let mut settings = SigV4Settings::new(context["service"].as_str().expect("service"));
        settings.regions = vec![context["region"].as_str().expect("region").to_owned()];
        settings.normalize_path = context["normalize"].as_bool().unwrap_or(true);
        let now = OffsetDateTime::parse(context["timestamp"].as_str().expect("timestamp"), &Rfc3339).expect("time");

        for form in ["header", "query"] {
            let signed_text = read(&dir, &format!("{form}-signed-request.txt")).expect("signed request");
            let Some(raw) = RawRequest::parse(&signed_text) else {
                assert_eq!(name, "get-header-value-multiline", "only the folded-header vector is skipped");
                continue;
            };
            let request = raw.signed();
            let result = block_on(verify(&settings, &request, now, &keys));
            if name == "post-sts-header-after" && form == "header" {
                // The token was added after signing: an unsigned x-amz-* header.
                let err = result.expect_err("unsigned security token");
                assert_eq!(err.code(), "IncompleteSignatureException", "{name}: {err}");
                continue;
            }
            if name == "post-sts-header-after" && form == "query" {
                // Signed without the token, which the key table requires: the token is not the key's.
                assert!(result.is_err(), "{name} {form}");
                continue;
            }
            let verified = result.unwrap_or_else(|e| panic!("{name} ({form}) refused: {e}"));
            assert_eq!(verified.principal, format!("principal:{}", keys.id));

            let auth = parse_authorization(&request).expect("authorization");
            let hash = payload_hash(&request).expect("hash");
            let canonical = canonical_request(&settings, &request, &auth, &hash);
            let expected = read(&dir, &format!("{form}-canonical-request.txt")).expect("canonical request");
            assert_eq!(canonical, expected, "{name} ({form}) canonical request");
            let sts = string_to_sign(auth.timestamp, &auth.scope, &canonical);
            assert_eq!(sts, read(&dir, &format!("{form}-string-to-sign.txt")).expect("sts"), "{name} ({form})");
            checked += 1;
        }
    }
    assert!(checked >= 70, "only {checked} vectors checked");
}

#[test]
fn double_encoding_vectors_canonicalise_the_path_twice() {
    for name in ["double-encode-path", "double-url-encode"] {
        let dir = suite_dir().join(name);
        let expected = read(&dir, "header-canonical-request.txt").expect("canonical");
        let raw = RawRequest::parse(&read(&dir, "request.txt").expect("request")).expect("parses");
        let uri_line = expected.lines().nth(1).expect("uri line");
        assert_eq!(canonical_uri(&raw.path, true, true), uri_line, "{name}");
    }
    // An identity id as the SDKs put it on the wire.
    assert_eq!(
        canonical_uri("/identitypools/us-east-1%3Aabc/identities/us-east-1%3Adef/datasets/my%20set", true, true),
        "/identitypools/us-east-1%253Aabc/identities/us-east-1%253Adef/datasets/my%2520set"
    );
    assert_eq!(canonical_uri("/a/./b/../c//d/", true, true), "/a/c/d/");
    assert_eq!(canonical_uri("/a/./b/../c//d/", false, true), "/a/./b/../c//d/");
    assert_eq!(canonical_uri("", true, true), "/");
}

#[test]
fn the_lambda_double_encoding_vector_verifies() {
    let dir = suite_dir().join("double-url-encode");
    let raw = RawRequest::parse(&read(&dir, "header-signed-request.txt").expect("signed")).expect("parses");
    let mut settings = SigV4Settings::new("lambda");
    settings.regions = vec!["us-east-2".into()];
    let now = OffsetDateTime::parse("2021-05-11T15:40:45Z", &Rfc3339).expect("time");
    let verified = block_on(verify(&settings, &raw.signed(), now, &OneKey::new("AKIDEXAMPLE", SECRET, None)));
    assert!(verified.is_ok(), "{verified:?}");
}

#[test]
fn canonical_query_sorts_pairs_not_joined_strings() {
    // `a-b` sorts before `a` as a joined string ("a-b=" < "a=") but after it as a key.
    assert_eq!(canonical_query(Some("a-b=1&a=2"), false), "a=2&a-b=1");
    assert_eq!(canonical_query(Some("b=2&a=z&a=y"), false), "a=y&a=z&b=2");
    assert_eq!(canonical_query(Some("nextToken=abc%2F%2B%3D&x"), false), "nextToken=abc%2F%2B%3D&x=");
    assert_eq!(canonical_query(Some("k=a+b"), false), "k=a%20b");
    assert_eq!(canonical_query(Some("X-Amz-Signature=ff&a=1"), true), "a=1");
    assert_eq!(canonical_query(None, false), "");
}

#[test]
fn header_values_are_trimmed_and_inner_spaces_collapsed() {
    assert_eq!(trim_all("  a   b  c "), "a b c");
    assert_eq!(trim_all("\ta  b\t"), "\ta b\t");
    assert_eq!(trim_all(""), "");
}

#[test]
fn authorization_header_errors_are_worded_as_aws_words_them() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.com"));
    let request = |headers: &HeaderMap| -> Result<Authorization, AwsAuthError> {
        parse_authorization(&SignedRequest {
            method: "GET",
            path: "/",
            query: None,
            headers,
            authority: None,
            body: b"",
        })
    };
    assert_eq!(request(&headers), Err(AwsAuthError::MissingAuthenticationToken));

    headers.insert("authorization", HeaderValue::from_static("Bearer abc"));
    let err = request(&headers).expect_err("bearer");
    assert_eq!(err.code(), "IncompleteSignatureException");
    assert_eq!(
        err.to_string(),
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' \
         parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires \
         existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=Bearer abc"
    );

    let value =
        "AWS4-HMAC-SHA256 Credential=AKID /20150830/us-east-1/service/aws4_request, SignedHeaders=host, Signature=00";
    headers.insert("authorization", HeaderValue::from_static(value));
    headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
    let err = request(&headers).expect_err("space in credential");
    assert_eq!(
        err.to_string(),
        format!(
            "'/20150830/us-east-1/service/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
        )
    );

    headers.insert(
        "authorization",
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1, SignedHeaders=host, Signature=00",
        ),
    );
    assert!(request(&headers).expect_err("short credential").to_string().starts_with("Credential must have exactly 5"));

    headers.insert("x-amz-date", HeaderValue::from_static("2015-08-30T12:36:00Z"));
    headers.insert(
        "authorization",
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/s/aws4_request, SignedHeaders=host, Signature=00",
        ),
    );
    assert!(
        request(&headers).expect_err("bad date").to_string().starts_with("Date must be in ISO-8601 'basic format'")
    );

    // `Date` serves when there is no `X-Amz-Date`.
    headers.remove("x-amz-date");
    headers.insert("date", HeaderValue::from_static("Sun, 30 Aug 2015 12:36:00 GMT"));
    let auth = request(&headers).expect("date header");
    assert_eq!(format_basic(auth.timestamp), "20150830T123600Z");
}

#[test]
fn expiry_messages_follow_aws() {
    let mut settings = SigV4Settings::new("service");
    settings.regions = vec!["us-east-1".into()];
    let signed = OffsetDateTime::parse("2015-08-30T12:36:00Z", &Rfc3339).expect("time");
    let auth = Authorization {
        access_key_id: "AKID".into(),
        scope: CredentialScope {
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "service".into(),
            terminator: "aws4_request".into(),
        },
        signed_headers: vec!["host".into(), "x-amz-date".into()],
        signature: String::new(),
        timestamp: signed,
        session_token: None,
        location: SignatureLocation::Header,
    };
    let late = check_time(&settings, &auth, signed + Duration::minutes(6)).expect_err("late");
    assert_eq!(
        late.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T124200Z - 5 min.)"
    );
    assert_eq!(late.code(), "InvalidSignatureException");
    let early = check_time(&settings, &auth, signed - Duration::minutes(6)).expect_err("early");
    assert_eq!(
        early.to_string(),
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123500Z (20150830T123000Z + 5 min.)"
    );
    assert!(check_time(&settings, &auth, signed + Duration::minutes(5)).is_ok());
    assert!(check_time(&settings, &auth, signed - Duration::minutes(5)).is_ok());

    let mut other = auth.clone();
    other.scope.region = "eu-west-1".into();
    assert_eq!(
        check_scope(&settings, &other).expect_err("region").to_string(),
        "Credential should be scoped to a valid region, not 'eu-west-1'. "
    );
    let mut other = auth.clone();
    other.scope.service = "s3".into();
    assert_eq!(
        check_scope(&settings, &other).expect_err("service").to_string(),
        "Credential should be scoped to correct service: 'service'. "
    );
    let mut other = auth.clone();
    other.scope.date = "20150829".into();
    assert_eq!(
        check_scope(&settings, &other).expect_err("date").to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150829' != '20150830', from '20150830T123600Z'."
    );
    settings.regions.clear();
    let mut other = auth;
    other.scope.region = "ap-south-1".into();
    assert!(check_scope(&settings, &other).is_ok(), "no configured region accepts any");
}

// ---------------------------------------------------------------------------------------------
// Oracle: requests signed by aws-sigv4 the way aws-sdk-cognitosync signs them.

/// A small deterministic generator: reproducible failures without a property-test framework.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn text(&mut self, alphabet: &[&str], max: usize) -> String {
        let len = 1 + self.below(max);
        (0..len).map(|_| *self.pick(alphabet)).collect()
    }
}

const LABEL_CHARS: &[&str] =
    &["a", "Z", "0", "9", "-", "_", ".", "~", ":", " ", "%", "+", "=", "@", "!", "é", "ሴ", "/", "&", "?", "#", "'"];
const QUERY_KEYS: &[&str] = &["a", "a-b", "A", "b", "nextToken", "maxResults", "lastSyncCount", "syncSessionToken"];

/// How an SDK puts a label or query value on the wire: every byte but the unreserved ones
/// percent-encoded.
fn wire(s: &str) -> String {
    utf8_percent_encode(s, STRICT).to_string()
}

#[derive(Clone)]
struct Generated {
    method: &'static str,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    token: Option<String>,
    time: OffsetDateTime,
    presigned: bool,
}

fn generate(rng: &mut Rng) -> Generated {
    let method = *rng.pick(&["GET", "POST", "DELETE", "PUT"]);
    let mut path = String::new();
    for _ in 0..(1 + rng.below(5)) {
        path.push('/');
        match rng.below(12) {
            0 => path.push('.'),
            1 => path.push_str(".."),
            2 => {}
            _ => path.push_str(&wire(&rng.text(LABEL_CHARS, 12))),
        }
    }
    let query = (rng.chance(60)).then(|| {
        (0..(1 + rng.below(5)))
            .map(|_| {
                let key = *rng.pick(QUERY_KEYS);
                let value = if rng.chance(15) { String::new() } else { rng.text(LABEL_CHARS, 10) };
                format!("{key}={}", wire(&value))
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    let mut headers = vec![("host".to_owned(), format!("127.0.0.1:{}", 1024 + rng.below(60000)))];
    if rng.chance(50) {
        headers.push(("content-type".into(), "application/json".into()));
    }
    if rng.chance(30) {
        headers.push(("x-amz-client-context".into(), "eyJjbGllbnQiOnt9fQ==".into()));
    }
    if rng.chance(30) {
        headers.push(("x-custom".into(), "  spaced   out  value ".into()));
    }
    if rng.chance(50) {
        // Not signed by the SDKs (excluded), and not an x-amz-* header: may travel unsigned.
        headers.push(("user-agent".into(), "aws-sdk-rust/1.0 os/linux".into()));
    }
    let body = if matches!(method, "POST" | "PUT") && rng.chance(80) {
        rng.text(&["{", "}", "\"", "a", "é", " ", "\n", ":", "1"], 200).into_bytes()
    } else {
        Vec::new()
    };
    let token = rng.chance(40).then(|| format!("session-{}", rng.next()));
    let base = OffsetDateTime::parse("2026-11-22T13:06:12Z", &Rfc3339).expect("time");
    let time = base + Duration::seconds(rng.below(86_400 * 400) as i64);
    Generated { method, path, query, headers, body, token, time, presigned: rng.chance(20) }
}

/// Signs `g` with aws-sigv4 (Cognito Sync's settings) and returns the request as sent.
fn sign_with_sdk(g: &Generated, secret: &str) -> RawRequest {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest,
        SignatureLocation as SdkLocation, SigningSettings, UriPathNormalizationMode, sign,
    };
    use aws_smithy_runtime_api::client::identity::Identity;

    let identity: Identity = Credentials::new("AKIDEXAMPLE", secret, g.token.clone(), None, "test").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Double;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
    settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    settings.session_token_mode = SessionTokenMode::Include;
    if g.presigned {
        settings.signature_location = SdkLocation::QueryParams;
        settings.expires_in = Some(std::time::Duration::from_secs(900));
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("cognito-sync")
        .time(g.time.into())
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let uri = match &g.query {
        Some(q) => format!("{}?{q}", g.path),
        None => g.path.clone(),
    };
    let signable = SignableRequest::new(
        g.method,
        uri,
        g.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&g.body),
    )
    .expect("signable");
    let (instructions, _signature) = sign(signable, &params).expect("signs").into_parts();

    let mut headers = HeaderMap::new();
    for (name, value) in &g.headers {
        headers
            .append(HeaderName::from_bytes(name.as_bytes()).expect("name"), HeaderValue::from_str(value).expect("v"));
    }
    for (name, value) in instructions.headers() {
        headers
            .insert(HeaderName::from_bytes(name.as_bytes()).expect("name"), HeaderValue::from_str(value).expect("v"));
    }
    let mut query: Vec<String> = g.query.iter().cloned().collect();
    for (name, value) in instructions.params() {
        query.push(format!("{}={}", wire(name), wire(value)));
    }
    RawRequest {
        method: g.method.into(),
        path: g.path.clone(),
        query: (!query.is_empty()).then(|| query.join("&")),
        headers,
        body: g.body.clone(),
    }
}

fn cognito_sync_settings() -> SigV4Settings {
    SigV4Settings::new("cognito-sync")
}

#[test]
fn requests_signed_by_aws_sigv4_verify_and_mutations_do_not() {
    let settings = cognito_sync_settings();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for case in 0..400 {
        let g = generate(&mut rng);
        let keys = OneKey::new("AKIDEXAMPLE", SECRET, g.token.as_deref());
        let raw = sign_with_sdk(&g, SECRET);
        let skew = Duration::seconds(rng.below(600) as i64 - 300);
        let now = g.time + skew;
        let context = format!("case {case}: {} {}?{:?} presigned={}", g.method, g.path, raw.query, g.presigned);
        let verified = block_on(verify(&settings, &raw.signed(), now, &keys));
        let verified = verified.unwrap_or_else(|e| panic!("{context}: refused: {e}"));
        assert_eq!(verified.session_token, g.token, "{context}");
        assert_eq!(verified.region, "us-east-1");

        let refused = |raw: &RawRequest, now: OffsetDateTime, keys: &OneKey| -> AwsAuthError {
            block_on(verify(&settings, &raw.signed(), now, keys)).err().unwrap_or_else(|| panic!("{context}: accepted"))
        };
        let mismatch = |e: AwsAuthError, what: &str| {
            assert!(matches!(e, AwsAuthError::SignatureMismatch { .. }), "{context}: {what}: {e:?}");
        };

        // One byte of the body.
        let mut m = sign_with_sdk(&g, SECRET);
        match m.body.first_mut() {
            Some(b) => *b ^= 0x01,
            None => m.body.push(b'x'),
        }
        mismatch(refused(&m, now, &keys), "body");

        // A signed header's value.
        let mut m = sign_with_sdk(&g, SECRET);
        m.headers.insert("host", HeaderValue::from_static("evil.example.com"));
        mismatch(refused(&m, now, &keys), "host");

        // The path.
        let mut m = sign_with_sdk(&g, SECRET);
        m.path.push('x');
        mismatch(refused(&m, now, &keys), "path");

        // A query value.
        if let Some(q) = &g.query {
            let mut m = sign_with_sdk(&g, SECRET);
            m.query = m.query.map(|full| full.replacen(q.as_str(), &format!("{q}0"), 1));
            mismatch(refused(&m, now, &keys), "query");
        }

        // The clock six minutes either way (a presigned request lives 15 minutes).
        let late = if g.presigned { Duration::minutes(16) } else { Duration::minutes(6) };
        let e = refused(&raw, g.time + late, &keys);
        assert!(matches!(e, AwsAuthError::SignatureExpired { .. }), "{context}: {e:?}");
        let e = refused(&raw, g.time - Duration::minutes(6), &keys);
        assert!(matches!(e, AwsAuthError::SignatureNotYetCurrent { .. }), "{context}: {e:?}");

        // The wrong secret.
        let wrong = OneKey::new("AKIDEXAMPLE", "not-the-secret", g.token.as_deref());
        mismatch(refused(&raw, now, &wrong), "secret");

        // An unknown key, or a session token that is not the key's.
        let e = refused(&raw, now, &OneKey::new("AKIDOTHER", SECRET, g.token.as_deref()));
        assert_eq!(e, AwsAuthError::UnrecognizedClient, "{context}");

        // An x-amz-* header added after signing.
        let mut m = sign_with_sdk(&g, SECRET);
        m.headers.insert("x-amz-target", HeaderValue::from_static("AWSCognitoIdentityService.DeleteIdentityPool"));
        let e = refused(&m, now, &keys);
        assert_eq!(e.code(), "IncompleteSignatureException", "{context}: {e}");

        // A declared (and signed) payload hash must be the body's.
        if !g.presigned {
            let mut declared = g.clone();
            declared.headers.push(("x-amz-content-sha256".into(), hex::encode(Sha256::digest(&g.body))));
            let m = sign_with_sdk(&declared, SECRET);
            assert!(block_on(verify(&settings, &m.signed(), now, &keys)).is_ok(), "{context}: declared hash");
            declared.headers.last_mut().expect("pushed").1 = "UNSIGNED-PAYLOAD".into();
            let m = sign_with_sdk(&declared, SECRET);
            assert_eq!(refused(&m, now, &keys), AwsAuthError::PayloadHashMismatch, "{context}");
        }
    }
}

#[test]
fn host_comes_from_the_authority_on_http2() {
    let settings = cognito_sync_settings();
    let mut rng = Rng(42);
    let mut g = generate(&mut rng);
    g.presigned = false;
    let keys = OneKey::new("AKIDEXAMPLE", SECRET, g.token.as_deref());
    let mut raw = sign_with_sdk(&g, SECRET);
    let host = raw.headers.remove("host").expect("host");
    let host = host.to_str().expect("ascii").to_owned();
    let request = SignedRequest { authority: Some(&host), ..raw.signed() };
    assert!(block_on(verify(&settings, &request, g.time, &keys)).is_ok());
    let e = block_on(verify(&settings, &raw.signed(), g.time, &keys)).expect_err("no host at all");
    assert_eq!(e.code(), "IncompleteSignatureException");
}

#[test]
fn the_captured_boto3_request_canonicalises_with_the_path_double_encoded() {
    // ListRecords as boto3 1.44.5 sent it (COGNITO_SYNC_API.md §6); its secret is unknown, so
    // this checks the parts of the canonical request the capture pins down.
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:33317"));
    headers.insert("x-amz-date", HeaderValue::from_static("20261122T130612Z"));
    headers.insert("authorization", HeaderValue::from_static(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/cognito-sync/aws4_request, SignedHeaders=host;x-amz-date, Signature=18cc68f3b5100978c3d8fe4f6873cb2faec7b1bb7b99188acf04fa0efef223a5",
    ));
    headers.insert("user-agent", HeaderValue::from_static("Boto3/1.44.5"));
    headers.insert("amz-sdk-invocation-id", HeaderValue::from_static("4ead2c1a-9507-418d-855f-fc52476c21ec"));
    let request = SignedRequest {
        method: "GET",
        path: "/identitypools/us-east-1%3A11111111-2222-3333-4444-555555555555/identities/us-east-1%3Aaaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/datasets/settings/records",
        query: Some("lastSyncCount=7&maxResults=2&nextToken=abc%2F%2B%3D&syncSessionToken=tok"),
        headers: &headers,
        authority: None,
        body: b"",
    };
    let settings = cognito_sync_settings();
    let auth = parse_authorization(&request).expect("parses");
    assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
    check_signed_headers(&request, &auth).expect("host and x-amz-date signed; the rest need not be");
    check_scope(&settings, &auth).expect("scope");
    let canonical = canonical_request(&settings, &request, &auth, &payload_hash(&request).expect("hash"));
    assert_eq!(
        canonical,
        "GET\n/identitypools/us-east-1%253A11111111-2222-3333-4444-555555555555/identities/us-east-1%253Aaaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/datasets/settings/records\n\
         lastSyncCount=7&maxResults=2&nextToken=abc%2F%2B%3D&syncSessionToken=tok\n\
         host:127.0.0.1:33317\nx-amz-date:20261122T130612Z\n\nhost;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn outgoing_requests_are_signed_exactly_as_the_sdk_signs_them() {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_smithy_runtime_api::client::identity::Identity;

    let now = OffsetDateTime::parse("2026-11-30T12:34:56Z", &Rfc3339).expect("time");
    let body = br#"{"StreamName":"s","PartitionKey":"us-east-1:1","Data":"e30="}"#;
    for token in [None, Some("session-token")] {
        let credentials = ClientCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SECRET.into(),
            session_token: token.map(Into::into),
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:4567"));
        headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
        headers.insert("x-amz-target", HeaderValue::from_static("Kinesis_20131202.PutRecord"));
        let unsigned = headers.clone();
        sign_request(
            Signer { service: "kinesis", region: "eu-west-1", credentials: &credentials },
            "POST",
            "/",
            &mut headers,
            body,
            now,
        );

        let identity: Identity = Credentials::new("AKIDEXAMPLE", SECRET, token.map(Into::into), None, "t").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-1")
            .name("kinesis")
            .time(now.into())
            .settings(SigningSettings::default())
            .build()
            .expect("params")
            .into();
        let signable = SignableRequest::new(
            "POST",
            "/",
            unsigned.iter().map(|(k, v)| (k.as_str(), v.to_str().expect("ascii"))),
            SignableBody::Bytes(body),
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("signs").into_parts();
        for (name, value) in instructions.headers() {
            assert_eq!(headers.get(name).and_then(|v| v.to_str().ok()), Some(value), "{name} (token: {token:?})");
        }
        // And the server's own verifier accepts it.
        let keys = OneKey::new("AKIDEXAMPLE", SECRET, token);
        let request =
            SignedRequest { method: "POST", path: "/", query: None, headers: &headers, authority: None, body };
        assert!(block_on(verify(&SigV4Settings::new("kinesis"), &request, now, &keys)).is_ok());
    }
}
