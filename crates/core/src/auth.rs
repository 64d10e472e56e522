//! Credentials: the root account, API keys, access tokens, and the principal a request acts as.

use crate::error::CoreError;
use crate::sid::{Sid, SidKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Who a request acts as. Handlers must hold one to reach the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The account's root credentials: everything.
    Root,
    /// An API key: everything the account can do, on the server side.
    ApiKey(Sid),
    /// An end user from an access token, confined to one service and its ACLs.
    Identity { identity: String, service_sid: Sid, expires_at: i64 },
    /// A Cognito identity holding temporary credentials: it reaches only its own data in its
    /// pool, through the Cognito operations (never the native or Twilio objects of the pool's
    /// service, where another identity's datasets live).
    CognitoIdentity { identity_id: String, pool_id: String, service_sid: Sid, expires_at: i64 },
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::Root | Principal::ApiKey(_))
    }

    pub fn actor(&self) -> crate::store::Actor {
        match self {
            Principal::Identity { identity, .. } => crate::store::Actor::identity(identity.clone()),
            Principal::CognitoIdentity { identity_id, .. } => crate::store::Actor::identity(identity_id.clone()),
            _ => crate::store::Actor::SYSTEM,
        }
    }
}

/// The root account: works as Twilio Basic auth, SigV4 keys and native admin credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootCredentials {
    pub account_sid: Sid,
    pub auth_token: String,
}

impl RootCredentials {
    pub fn generate() -> Self {
        RootCredentials { account_sid: Sid::random(SidKind::Account), auth_token: random_hex(16) }
    }

    pub fn matches(&self, user: &str, password: &str) -> bool {
        constant_time_eq(user, self.account_sid.as_str()) & constant_time_eq(password, &self.auth_token)
    }
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fill_random(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn fill_random(buf: &mut [u8]) {
    // The OS generator failing is not something a server can continue through.
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the operating system's random number generator is unavailable");
}

/// Seals secrets that must be read back in plaintext (API key secrets sign HS256 tokens), so a
/// copy of the database alone does not reveal them.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// `key` is 32 bytes as 64 hex digits.
    pub fn from_hex(key: &str) -> Result<Self, CoreError> {
        let bytes = decode_hex(key)
            .filter(|b| b.len() == 32)
            .ok_or_else(|| CoreError::invalid("master_key", "must be 64 hex digits (32 bytes)"))?;
        Ok(SecretBox {
            cipher: ChaCha20Poly1305::new(
                &Key::try_from(bytes.as_slice()).map_err(|_| CoreError::invalid("master_key", "must be 32 bytes"))?,
            ),
        })
    }

    pub fn generate_key_hex() -> String {
        random_hex(32)
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        fill_random(&mut nonce);
        let sealed = self.cipher.encrypt(&Nonce::from(nonce), plaintext.as_bytes()).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    /// Seals `plaintext` into URL-safe text (base64url, no padding): for tokens that travel in
    /// query strings and headers.
    pub fn seal_token(&self, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        fill_random(&mut nonce);
        let sealed = self.cipher.encrypt(&Nonce::from(nonce), plaintext).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Opens a [`SecretBox::seal_token`] token; `None` when it was not sealed with this key or
    /// was altered.
    pub fn open_token(&self, token: &str) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        if raw.len() < 12 {
            return None;
        }
        let (nonce, body) = raw.split_at(12);
        self.cipher.decrypt(&Nonce::try_from(nonce).ok()?, body).ok()
    }

    pub fn open(&self, sealed: &str) -> Result<String, CoreError> {
        let corrupt = || {
            CoreError::Store(crate::store::StoreError::Corrupt(
                "a sealed secret cannot be opened with this master key".into(),
            ))
        };
        let raw = STANDARD.decode(sealed).map_err(|_| corrupt())?;
        if raw.len() < 12 {
            return Err(corrupt());
        }
        let (nonce, body) = raw.split_at(12);
        let nonce = Nonce::try_from(nonce).map_err(|_| corrupt())?;
        let plain = self.cipher.decrypt(&nonce, body).map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The claims of a Twilio-format access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub jti: String,
    pub iss: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    pub exp: i64,
    pub grants: Grants,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grants {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sync: Option<DataSyncGrant>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSyncGrant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
}

/// Mints an access token in Twilio's format: HS256 signed with the API key's secret.
pub fn mint_access_token(
    account_sid: &Sid,
    key_sid: &Sid,
    key_secret: &str,
    identity: &str,
    service_sid: &Sid,
    ttl_secs: u64,
    now_secs: i64,
) -> Result<String, CoreError> {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("JWT".into());
    header.cty = Some("twilio-fpa;v=1".into());
    let claims = AccessTokenClaims {
        jti: format!("{key_sid}-{now_secs}"),
        iss: key_sid.to_string(),
        sub: account_sid.to_string(),
        nbf: Some(now_secs),
        iat: Some(now_secs),
        exp: now_secs + ttl_secs as i64,
        grants: Grants {
            identity: Some(identity.to_owned()),
            data_sync: Some(DataSyncGrant { service_sid: Some(service_sid.to_string()), endpoint_id: None }),
        },
    };
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key_secret.as_bytes()))
        .map_err(|e| CoreError::InvalidAccessToken(e.to_string()))
}

/// Reads the issuer (the API key SID) without checking the signature, to find the key.
pub fn access_token_issuer(token: &str) -> Result<Sid, CoreError> {
    let payload = token.split('.').nth(1).ok_or_else(|| CoreError::InvalidAccessToken("not a JWT".into()))?;
    let raw = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| CoreError::InvalidAccessToken("payload is not base64url".into()))?;
    #[derive(Deserialize)]
    struct Iss {
        iss: String,
    }
    let iss: Iss =
        serde_json::from_slice(&raw).map_err(|_| CoreError::InvalidAccessToken("payload has no issuer".into()))?;
    Sid::parse_kind(&iss.iss, SidKind::ApiKey)
        .map_err(|_| CoreError::InvalidAccessToken("issuer is not an API key SID".into()))
}

/// Verifies an access token's signature and lifetime; `now_secs` lets the expiry be exact.
pub fn verify_access_token(
    token: &str,
    account_sid: &Sid,
    key_secret: &str,
    max_ttl_secs: u64,
    now_secs: i64,
) -> Result<AccessTokenClaims, CoreError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| CoreError::InvalidAccessToken(e.to_string()))?;
    if header.alg != Algorithm::HS256 {
        return Err(CoreError::InvalidAccessToken("only HS256 tokens are accepted".into()));
    }
    let mut validation = Validation::new(Algorithm::HS256);
    // Expiry is checked below against our own clock with no leeway, so that "refused after exp"
    // holds exactly.
    validation.validate_exp = false;
    validation.required_spec_claims = ["exp", "iss", "sub"].iter().map(|s| s.to_string()).collect();
    let data =
        jsonwebtoken::decode::<AccessTokenClaims>(token, &DecodingKey::from_secret(key_secret.as_bytes()), &validation)
            .map_err(|e| CoreError::InvalidAccessToken(e.to_string()))?;
    let claims = data.claims;
    if claims.sub != account_sid.as_str() {
        return Err(CoreError::InvalidAccessToken("token was issued for another account".into()));
    }
    if claims.exp <= now_secs {
        return Err(CoreError::AccessTokenExpired);
    }
    if let Some(nbf) = claims.nbf
        && nbf > now_secs + 60
    {
        return Err(CoreError::InvalidAccessToken("token is not valid yet".into()));
    }
    let issued = claims.nbf.or(claims.iat).unwrap_or(now_secs);
    if claims.exp - issued > max_ttl_secs as i64 + 60 {
        return Err(CoreError::InvalidAccessToken(format!("token lifetime exceeds {max_ttl_secs} seconds")));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_verify_only_with_the_right_secret_and_before_exp() {
        let account = Sid::random(SidKind::Account);
        let key = Sid::random(SidKind::ApiKey);
        let service = Sid::new(SidKind::Service);
        let now = 1_800_000_000;
        let token = mint_access_token(&account, &key, "s3cret", "alice", &service, 3600, now).expect("mints");
        assert_eq!(access_token_issuer(&token).expect("issuer"), key);
        let claims = verify_access_token(&token, &account, "s3cret", 86_400, now + 10).expect("valid");
        assert_eq!(claims.grants.identity.as_deref(), Some("alice"));
        assert_eq!(claims.grants.data_sync.and_then(|g| g.service_sid), Some(service.to_string()));
        assert!(verify_access_token(&token, &account, "wrong", 86_400, now).is_err());
        assert!(matches!(
            verify_access_token(&token, &account, "s3cret", 86_400, now + 3600),
            Err(CoreError::AccessTokenExpired)
        ));
        assert!(verify_access_token(&token, &Sid::random(SidKind::Account), "s3cret", 86_400, now).is_err());
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.cty.as_deref(), Some("twilio-fpa;v=1"));
    }

    #[test]
    fn secret_box_round_trips_and_detects_the_wrong_key() {
        let a = SecretBox::from_hex(&SecretBox::generate_key_hex()).expect("key");
        let b = SecretBox::from_hex(&SecretBox::generate_key_hex()).expect("key");
        let sealed = a.seal("hello");
        assert_ne!(sealed, a.seal("hello"), "nonces differ");
        assert_eq!(a.open(&sealed).expect("opens"), "hello");
        assert!(b.open(&sealed).is_err());
        assert!(SecretBox::from_hex("abc").is_err());
    }

    #[test]
    fn sealed_tokens_are_url_safe_and_tamper_evident() {
        let a = SecretBox::from_hex(&SecretBox::generate_key_hex()).expect("key");
        let token = a.seal_token(b"claims");
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(a.open_token(&token).as_deref(), Some(&b"claims"[..]));
        let mut altered = token.clone().into_bytes();
        altered[20] = if altered[20] == b'A' { b'B' } else { b'A' };
        assert_eq!(a.open_token(&String::from_utf8(altered).expect("ascii")), None);
        assert_eq!(a.open_token("not a token!"), None);
    }
}
