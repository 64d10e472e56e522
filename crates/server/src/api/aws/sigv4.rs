//! AWS Signature Version 4 verification, as the AWS SDKs sign for JSON services (Cognito Sync,
//! Cognito Identity): header (`Authorization: AWS4-HMAC-SHA256 …`) or presigned-query form.
//!
//! Pure: it takes the request's method, raw path and query, headers and body bytes, and a key
//! lookup; nothing here knows about the app's state. Differences from S3's flavour, on purpose:
//! the canonical URI is the wire path encoded once more (so `%3A` becomes `%253A`), the payload
//! hash is computed here over the body (these SDKs send no `x-amz-content-sha256`; when one is
//! sent it must match), and query pairs are sorted as (key, value) tuples, repeats allowed.

use axum::http::{self, HeaderMap, HeaderName};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::future::Future;
use subtle::ConstantTimeEq;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
/// The longest lifetime AWS gives a presigned request (7 days).
const MAX_PRESIGNED_EXPIRES: i64 = 604_800;
const BASIC_DATE_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
/// RFC 7231's IMF-fixdate, the one `Date` format SDKs send.
const HTTP_DATE: &[BorrowedFormatItem<'static>] =
    format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");

/// Characters SigV4 leaves alone: RFC 3986's unreserved set.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// The same for a path, whose `/` separate segments.
const PATH: &AsciiSet = &STRICT.remove(b'/');

/// A signing failure, named and worded as AWS's front ends answer it. The HTTP status depends on
/// the protocol (see `api::aws::error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsAuthError {
    /// Neither an `Authorization` header nor `X-Amz-Algorithm` in the query.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The signature's parts are missing or malformed, or it leaves out a header it must cover.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The credential scope names another region, service, day or terminator.
    #[error("{0}")]
    InvalidScope(String),
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - {window}.)")]
    SignatureExpired { signed: String, earliest: String, now: String, window: String },
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + {window}.)")]
    SignatureNotYetCurrent { signed: String, latest: String, now: String, window: String },
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHashMismatch,
    /// The signature differs from ours. The canonical strings help a client find why; they hold
    /// nothing the client did not send.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your \
         AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n\
         The Canonical String for this request should have been\n'{canonical_request}'\n\n\
         The String-to-Sign should have been\n'{string_to_sign}'\n"
    )]
    SignatureMismatch { canonical_request: String, string_to_sign: String },
    /// Unknown access key id, or a session token that does not belong to it.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// Temporary credentials past their expiry.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    /// The key lookup itself failed (store unavailable): not the client's fault.
    #[error("{0}")]
    Internal(String),
}

impl AwsAuthError {
    /// AWS's error code for the failure (its `x-amzn-ErrorType` / `__type`).
    pub fn code(&self) -> &'static str {
        match self {
            AwsAuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AwsAuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AwsAuthError::InvalidScope(_)
            | AwsAuthError::SignatureExpired { .. }
            | AwsAuthError::SignatureNotYetCurrent { .. }
            | AwsAuthError::PayloadHashMismatch
            | AwsAuthError::SignatureMismatch { .. } => "InvalidSignatureException",
            AwsAuthError::UnrecognizedClient => "UnrecognizedClientException",
            AwsAuthError::ExpiredToken => "ExpiredTokenException",
            AwsAuthError::Internal(_) => "InternalErrorException",
        }
    }
}

/// What a face accepts.
#[derive(Debug, Clone)]
pub struct SigV4Settings {
    /// The signing name, e.g. `cognito-sync` or `cognito-identity`.
    pub service: String,
    /// Regions a credential scope may name; empty accepts any, as a self-hosted server has none
    /// of its own and clients sign with whatever region they are configured for.
    pub regions: Vec<String>,
    /// How far `X-Amz-Date` may be from the server's clock, either way.
    pub max_skew: Duration,
    /// Remove `.`/`..` segments and empty segments before encoding, as the SDKs do for every
    /// service but S3.
    pub normalize_path: bool,
    /// Encode the (already encoded) wire path once more: every service but S3.
    pub double_encode_path: bool,
}

impl SigV4Settings {
    pub fn new(service: impl Into<String>) -> Self {
        SigV4Settings {
            service: service.into(),
            regions: Vec::new(),
            max_skew: Duration::minutes(5),
            normalize_path: true,
            double_encode_path: true,
        }
    }
}

/// The parts of a request a signature covers, as they arrived.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as on the wire, still percent-encoded.
    pub path: &'a str,
    /// The query as on the wire, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The request's authority when it carries no `Host` header (HTTP/2), default port dropped.
    pub authority: Option<&'a str>,
    pub body: &'a [u8],
}

/// The secret a key lookup found, and who it belongs to.
pub struct SigningSecret<P> {
    pub secret: String,
    pub principal: P,
}

/// Where signing secrets come from: developer credentials (AccountSid + AuthToken, API keys)
/// and temporary identity credentials (which carry a session token).
pub trait SigningKeys {
    type Principal;

    /// The secret for `access_key_id`. `session_token` is the request's `X-Amz-Security-Token`:
    /// temporary credentials must check it belongs to the key. An unknown key or a wrong token is
    /// `AwsAuthError::UnrecognizedClient`; expired temporary credentials `ExpiredToken`.
    fn secret(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> impl Future<Output = Result<SigningSecret<Self::Principal>, AwsAuthError>> + Send;
}

/// A request whose signature checked out.
#[derive(Debug, Clone)]
pub struct Verified<P> {
    pub principal: P,
    pub access_key_id: String,
    pub region: String,
    pub session_token: Option<String>,
    pub signed_at: OffsetDateTime,
}

/// `<date>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    pub date: String,
    pub region: String,
    pub service: String,
    pub terminator: String,
}

impl std::fmt::Display for CredentialScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}/{}", self.date, self.region, self.service, self.terminator)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureLocation {
    Header,
    /// Presigned: `X-Amz-*` parameters in the query, valid for `expires` seconds.
    Query {
        expires: i64,
    },
}

/// A parsed SigV4 authorization, from the header or the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub scope: CredentialScope,
    /// Lower-case names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// `X-Amz-Date` (or `Date`) as sent, and parsed.
    pub timestamp: OffsetDateTime,
    pub session_token: Option<String>,
    pub location: SignatureLocation,
}

/// Verifies `request`'s signature at time `now`, looking the secret up in `keys`.
pub async fn verify<K: SigningKeys>(
    settings: &SigV4Settings,
    request: &SignedRequest<'_>,
    now: OffsetDateTime,
    keys: &K,
) -> Result<Verified<K::Principal>, AwsAuthError> {
    let auth = parse_authorization(request)?;
    check_signed_headers(request, &auth)?;
    check_time(settings, &auth, now)?;
    check_scope(settings, &auth)?;
    let payload_hash = payload_hash(request)?;

    let SigningSecret { secret, principal } = keys.secret(&auth.access_key_id, auth.session_token.as_deref()).await?;

    let canonical = canonical_request(settings, request, &auth, &payload_hash);
    let to_sign = string_to_sign(auth.timestamp, &auth.scope, &canonical);
    let key = signing_key(&secret, &auth.scope.date, &auth.scope.region, &auth.scope.service);
    let expected = hmac_sha256(&key, to_sign.as_bytes());
    let matches = decode_signature(&auth.signature).is_some_and(|provided| bool::from(expected.ct_eq(&provided)));
    if !matches {
        tracing::trace!(canonical_request = %canonical, string_to_sign = %to_sign, "SigV4 signature mismatch");
        return Err(AwsAuthError::SignatureMismatch { canonical_request: canonical, string_to_sign: to_sign });
    }
    Ok(Verified {
        principal,
        access_key_id: auth.access_key_id,
        region: auth.scope.region,
        session_token: auth.session_token,
        signed_at: auth.timestamp,
    })
}

/// Reads the signature from the query (`X-Amz-Algorithm` present: presigned) or the
/// `Authorization` header.
pub fn parse_authorization(request: &SignedRequest<'_>) -> Result<Authorization, AwsAuthError> {
    let query_pairs = request.query.map(|q| form_urlencoded::parse(q.as_bytes()).collect::<Vec<_>>());
    let query_param = |name: &str| {
        query_pairs.as_ref().and_then(|pairs| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.to_string()))
    };
    // The query wins: a browser may add an unrelated Authorization header to a presigned URL.
    if let Some(algorithm) = query_param("X-Amz-Algorithm") {
        return parse_presigned(&algorithm, &query_param);
    }
    let Some(value) = request.headers.get(http::header::AUTHORIZATION) else {
        return Err(AwsAuthError::MissingAuthenticationToken);
    };
    let header = String::from_utf8_lossy(value.as_bytes()).into_owned();
    parse_header(&header, request.headers)
}

fn parse_header(header: &str, headers: &HeaderMap) -> Result<Authorization, AwsAuthError> {
    let (algorithm, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    if algorithm == ALGORITHM {
        // AWS splits on commas and whitespace alike: a stray space inside a value shows up as a
        // part without `=`.
        for part in rest.split(|c: char| c == ',' || c.is_ascii_whitespace()).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(AwsAuthError::IncompleteSignature(format!(
                    "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'."
                )));
            };
            match key {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed_headers = Some(value),
                "Signature" => signature = Some(value),
                _ => {}
            }
        }
    } else if algorithm.starts_with("AWS4-") {
        return Err(AwsAuthError::IncompleteSignature(format!("Unsupported AWS 'algorithm': '{algorithm}'")));
    }
    let (date_value, date_format) = match headers.get("x-amz-date") {
        Some(v) => (Some(v), BASIC_DATE_TIME),
        None => (headers.get(http::header::DATE), HTTP_DATE),
    };

    let mut missing = Vec::new();
    for (name, value) in [("Credential", credential), ("Signature", signature), ("SignedHeaders", signed_headers)] {
        if value.is_none() {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if date_value.is_none() {
        missing.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into());
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(date_value)) =
        (credential, signed_headers, signature, date_value)
    else {
        return Err(AwsAuthError::IncompleteSignature(format!("{} Authorization={header}", missing.join(" "))));
    };

    let (access_key_id, scope) = parse_credential(credential)?;
    let date_text = String::from_utf8_lossy(date_value.as_bytes());
    Ok(Authorization {
        access_key_id,
        scope,
        signed_headers: split_signed_headers(signed_headers),
        signature: signature.to_owned(),
        timestamp: parse_timestamp(date_text.trim(), date_format)?,
        session_token: headers.get("x-amz-security-token").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        location: SignatureLocation::Header,
    })
}

fn parse_presigned(algorithm: &str, param: &impl Fn(&str) -> Option<String>) -> Result<Authorization, AwsAuthError> {
    if algorithm != ALGORITHM {
        return Err(AwsAuthError::IncompleteSignature(format!("Unsupported AWS 'algorithm': '{algorithm}'")));
    }
    let (credential, signature, signed_headers, date) =
        (param("X-Amz-Credential"), param("X-Amz-Signature"), param("X-Amz-SignedHeaders"), param("X-Amz-Date"));
    let (Some(credential), Some(signature), Some(signed_headers), Some(date)) =
        (credential.clone(), signature.clone(), signed_headers.clone(), date.clone())
    else {
        let missing: Vec<String> = [
            ("X-Amz-Credential", credential),
            ("X-Amz-Signature", signature),
            ("X-Amz-SignedHeaders", signed_headers),
            ("X-Amz-Date", date),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_none())
        .map(|(name, _)| format!("AWS query-string parameters must include '{name}'."))
        .collect();
        return Err(AwsAuthError::IncompleteSignature(format!(
            "{} Re-examine the query-string parameters.",
            missing.join(" ")
        )));
    };
    let expires = match param("X-Amz-Expires") {
        None => MAX_PRESIGNED_EXPIRES,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=MAX_PRESIGNED_EXPIRES).contains(&n) => n,
            _ => {
                return Err(AwsAuthError::IncompleteSignature(format!(
                    "X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGNED_EXPIRES}, got '{v}'."
                )));
            }
        },
    };
    let (access_key_id, scope) = parse_credential(&credential)?;
    Ok(Authorization {
        access_key_id,
        scope,
        signed_headers: split_signed_headers(&signed_headers),
        signature,
        timestamp: parse_timestamp(&date, BASIC_DATE_TIME)?,
        session_token: param("X-Amz-Security-Token"),
        location: SignatureLocation::Query { expires },
    })
}

fn parse_credential(credential: &str) -> Result<(String, CredentialScope), AwsAuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = parts.as_slice() else {
        return Err(AwsAuthError::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    let scope = CredentialScope {
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        terminator: (*terminator).to_owned(),
    };
    Ok(((*key).to_owned(), scope))
}

fn split_signed_headers(value: &str) -> Vec<String> {
    value.split(';').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect()
}

fn parse_timestamp(value: &str, format: &[BorrowedFormatItem<'_>]) -> Result<OffsetDateTime, AwsAuthError> {
    PrimitiveDateTime::parse(value, format).map(PrimitiveDateTime::assume_utc).map_err(|_| {
        AwsAuthError::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })
}

/// `YYYYMMDDTHHMMSSZ`.
pub fn format_basic(t: OffsetDateTime) -> String {
    t.format(BASIC_DATE_TIME).unwrap_or_default()
}

/// `host` must be signed (else the request could be replayed against another host), and so must
/// every `x-amz-*` header present: they carry meaning (the target operation, the client context,
/// the session token).
fn check_signed_headers(request: &SignedRequest<'_>, auth: &Authorization) -> Result<(), AwsAuthError> {
    let signed = |name: &str| auth.signed_headers.iter().any(|h| h == name);
    if !signed("host") {
        return Err(AwsAuthError::IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let presigned = matches!(auth.location, SignatureLocation::Query { .. });
    let mut unsigned: Vec<&str> = request
        .headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|name| name.starts_with("x-amz-") && !signed(name))
        // Presigning SDKs leave these two out of the signature by design.
        .filter(|name| !(presigned && matches!(*name, "x-amz-user-agent" | "x-amz-checksum-mode")))
        .collect();
    unsigned.dedup();
    if !unsigned.is_empty() {
        return Err(AwsAuthError::IncompleteSignature(format!(
            "There were headers present in the request which were not signed: {}",
            unsigned.join(", ")
        )));
    }
    if auth.location == SignatureLocation::Header && !signed("x-amz-date") && !signed("date") {
        return Err(AwsAuthError::IncompleteSignature(
            "'X-Amz-Date' or 'Date' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    for name in &auth.signed_headers {
        let present = request.headers.contains_key(name.as_str()) || (name == "host" && request.authority.is_some());
        if !present {
            return Err(AwsAuthError::IncompleteSignature(format!(
                "The request has no '{name}' header, which SignedHeaders lists."
            )));
        }
    }
    Ok(())
}

fn window_text(d: Duration) -> String {
    let secs = d.whole_seconds();
    if secs % 60 == 0 { format!("{} min", secs / 60) } else { format!("{secs} sec") }
}

fn check_time(settings: &SigV4Settings, auth: &Authorization, now: OffsetDateTime) -> Result<(), AwsAuthError> {
    let signed = auth.timestamp;
    let lifetime = match auth.location {
        SignatureLocation::Header => settings.max_skew,
        SignatureLocation::Query { expires } => Duration::seconds(expires),
    };
    if signed < now - lifetime {
        return Err(AwsAuthError::SignatureExpired {
            signed: format_basic(signed),
            earliest: format_basic(now - lifetime),
            now: format_basic(now),
            window: window_text(lifetime),
        });
    }
    if signed > now + settings.max_skew {
        return Err(AwsAuthError::SignatureNotYetCurrent {
            signed: format_basic(signed),
            latest: format_basic(now + settings.max_skew),
            now: format_basic(now),
            window: window_text(settings.max_skew),
        });
    }
    Ok(())
}

fn check_scope(settings: &SigV4Settings, auth: &Authorization) -> Result<(), AwsAuthError> {
    let scope = &auth.scope;
    if scope.terminator != TERMINATOR {
        return Err(AwsAuthError::InvalidScope(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            scope.terminator
        )));
    }
    if scope.service != settings.service {
        return Err(AwsAuthError::InvalidScope(format!(
            "Credential should be scoped to correct service: '{}'. ",
            settings.service
        )));
    }
    let region_ok =
        if settings.regions.is_empty() { !scope.region.is_empty() } else { settings.regions.contains(&scope.region) };
    if !region_ok {
        return Err(AwsAuthError::InvalidScope(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            scope.region
        )));
    }
    let stamp = format_basic(auth.timestamp);
    let day = stamp.get(..8).unwrap_or_default();
    if scope.date != day {
        return Err(AwsAuthError::InvalidScope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from '{stamp}'.",
            scope.date
        )));
    }
    Ok(())
}

/// The hex SHA-256 of the body, checked against `x-amz-content-sha256` when the client sent one.
fn payload_hash(request: &SignedRequest<'_>) -> Result<String, AwsAuthError> {
    let computed = hex::encode(Sha256::digest(request.body));
    if let Some(declared) = request.headers.get("x-amz-content-sha256")
        && !declared.as_bytes().eq_ignore_ascii_case(computed.as_bytes())
    {
        return Err(AwsAuthError::PayloadHashMismatch);
    }
    Ok(computed)
}

/// The canonical request: method, URI, query, signed headers, their names, payload hash.
pub fn canonical_request(
    settings: &SigV4Settings,
    request: &SignedRequest<'_>,
    auth: &Authorization,
    payload_hash: &str,
) -> String {
    let mut out = String::with_capacity(256 + request.path.len());
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&canonical_uri(request.path, settings.normalize_path, settings.double_encode_path));
    out.push('\n');
    out.push_str(&canonical_query(request.query, matches!(auth.location, SignatureLocation::Query { .. })));
    out.push('\n');
    for name in &auth.signed_headers {
        out.push_str(name);
        out.push(':');
        out.push_str(&canonical_header_value(request, name));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&auth.signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// The path, normalised and encoded per the settings; `/` when empty.
pub fn canonical_uri(path: &str, normalize: bool, double_encode: bool) -> String {
    let path = if normalize { normalize_path(path) } else { Cow::Borrowed(path) };
    let path = if path.is_empty() { Cow::Borrowed("/") } else { path };
    if double_encode { utf8_percent_encode(&path, PATH).to_string() } else { path.into_owned() }
}

/// RFC 3986 §5.2.4 dot-segment removal, plus collapsing empty segments, as the SDK signers do.
fn normalize_path(path: &str) -> Cow<'_, str> {
    let absolute = if path.starts_with('/') { Cow::Borrowed(path) } else { Cow::Owned(format!("/{path}")) };
    if !absolute.contains('.') && !absolute.contains("//") {
        return absolute;
    }
    let mut kept: Vec<&str> = Vec::new();
    for segment in absolute.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    let mut out = format!("/{}", kept.join("/"));
    let trailing = ["/", "/.", "/.."].iter().any(|end| absolute.ends_with(end));
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    Cow::Owned(out)
}

/// Query pairs decoded, re-encoded strictly, sorted by (key, value) and joined; a presigned
/// request's own `X-Amz-Signature` is left out.
pub fn canonical_query(query: Option<&str>, presigned: bool) -> String {
    let Some(query) = query else { return String::new() };
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (utf8_percent_encode(&k, STRICT).to_string(), utf8_percent_encode(&v, STRICT).to_string()))
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        let _ = write!(out, "{k}={v}");
    }
    out
}

/// Every value of the header, each trimmed with inner runs of spaces collapsed, joined by `,`.
fn canonical_header_value(request: &SignedRequest<'_>, name: &str) -> String {
    let values: Vec<String> =
        request.headers.get_all(name).iter().map(|v| trim_all(&String::from_utf8_lossy(v.as_bytes()))).collect();
    if values.is_empty() && name == "host" {
        return request.authority.map(trim_all).unwrap_or_default();
    }
    values.join(",")
}

/// Trims spaces (only spaces, as the signers do) and collapses inner runs of them to one.
fn trim_all(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut previous_space = false;
    for c in value.trim_matches(' ').chars() {
        if c == ' ' && previous_space {
            continue;
        }
        previous_space = c == ' ';
        out.push(c);
    }
    out
}

/// `AWS4-HMAC-SHA256 \n <timestamp> \n <scope> \n hex(sha256(canonical request))`.
pub fn string_to_sign(timestamp: OffsetDateTime, scope: &CredentialScope, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        format_basic(timestamp),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The client's hex signature as bytes; `None` when it is not 64 hex digits.
fn decode_signature(signature: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(signature, &mut out).ok().map(|()| out)
}

/// Credentials for signing outgoing requests (Ferrosync as an AWS client, e.g. of Kinesis).
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// Who signs an outgoing request, for which service and region.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    pub service: &'a str,
    pub region: &'a str,
    pub credentials: &'a ClientCredentials,
}

/// Signs an outgoing request in the `Authorization` header, as the AWS SDKs do: adds
/// `X-Amz-Date` (and `X-Amz-Security-Token`) to `headers`, then signs every header in it,
/// which must include `host`. `path` is as on the wire, with its query if any.
pub fn sign_request(
    signer: Signer<'_>,
    method: &str,
    path: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    now: OffsetDateTime,
) {
    let Signer { service, region, credentials } = signer;
    let timestamp = format_basic(now);
    if let Ok(v) = http::HeaderValue::from_str(&timestamp) {
        headers.insert("x-amz-date", v);
    }
    if let Some(token) = credentials.session_token.as_deref().and_then(|t| http::HeaderValue::from_str(t).ok()) {
        headers.insert("x-amz-security-token", token);
    }
    let mut signed_headers: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
    signed_headers.sort();
    signed_headers.dedup();
    let scope = CredentialScope {
        date: timestamp.get(..8).unwrap_or_default().to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        terminator: TERMINATOR.to_owned(),
    };
    let auth = Authorization {
        access_key_id: credentials.access_key_id.clone(),
        scope,
        signed_headers,
        signature: String::new(),
        timestamp: now,
        session_token: credentials.session_token.clone(),
        location: SignatureLocation::Header,
    };
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let request = SignedRequest { method, path, query, headers, authority: None, body };
    let canonical =
        canonical_request(&SigV4Settings::new(service), &request, &auth, &hex::encode(Sha256::digest(body)));
    let to_sign = string_to_sign(now, &auth.scope, &canonical);
    let key = signing_key(&credentials.secret_access_key, &auth.scope.date, region, service);
    let signature = hex::encode(hmac_sha256(&key, to_sign.as_bytes()));
    let value = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={signature}",
        auth.access_key_id,
        auth.scope,
        auth.signed_headers.join(";")
    );
    if let Ok(v) = http::HeaderValue::from_str(&value) {
        headers.insert(http::header::AUTHORIZATION, v);
    }
}

/// The signed parts of an axum request whose body has been read (see
/// `api::http::read_body_first`). Takes the path before any `nest` stripped it, and on HTTP/2,
/// where there is no `Host` header, the authority as the SDKs sign it (default port dropped).
pub fn signed_request<'a>(parts: &'a axum::http::request::Parts, body: &'a [u8]) -> SignedRequest<'a> {
    let uri = parts.extensions.get::<axum::extract::OriginalUri>().map_or(&parts.uri, |original| &original.0);
    let authority = parts.uri.authority().map(|a| {
        let default_port = if parts.uri.scheme_str() == Some("https") { ":443" } else { ":80" };
        a.as_str().strip_suffix(default_port).unwrap_or(a.as_str())
    });
    SignedRequest {
        method: parts.method.as_str(),
        path: uri.path(),
        query: uri.query(),
        headers: &parts.headers,
        authority,
        body,
    }
}

#[cfg(test)]
mod tests;
