//! The Cognito tokens: sync session tokens, temporary identity credentials and OpenID tokens.
//!
//! Session tokens and credentials are stateless, so any node of a cluster accepts what another
//! issued: their claims are sealed with the deployment's master key ([`SecretBox`]), which
//! also makes them opaque and tamper-evident. OpenID tokens are RS256 JWTs signed with a key
//! generated once per deployment and kept sealed in the store.

use crate::auth::{SecretBox, fill_random};
use crate::error::CoreError;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};

/// What a SyncSessionToken binds: one dataset of one identity, from one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSessionClaims {
    /// Distinguishes the kinds of sealed tokens, so one is never accepted as another.
    typ: String,
    pub pool_id: String,
    pub identity_id: String,
    pub dataset: String,
    /// Milliseconds since the epoch.
    pub issued_at: i64,
}

impl SyncSessionClaims {
    const TYP: &'static str = "sync-session";

    pub fn new(pool_id: &str, identity_id: &str, dataset: &str, issued_at: i64) -> Self {
        SyncSessionClaims {
            typ: Self::TYP.into(),
            pool_id: pool_id.into(),
            identity_id: identity_id.into(),
            dataset: dataset.into(),
            issued_at,
        }
    }

    pub fn seal(&self, secrets: &SecretBox) -> String {
        secrets.seal_token(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// The claims, when `token` is a sync session token this deployment sealed.
    pub fn open(secrets: &SecretBox, token: &str) -> Option<Self> {
        let claims: Self = serde_json::from_slice(&secrets.open_token(token)?).ok()?;
        (claims.typ == Self::TYP).then_some(claims)
    }
}

/// Temporary credentials of one identity, sealed into their session token: the secret key the
/// requests are signed with travels inside, so no node needs to have stored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentitySessionClaims {
    typ: String,
    pub access_key_id: String,
    pub secret_key: String,
    pub identity_id: String,
    pub pool_id: String,
    pub service_sid: String,
    /// Seconds since the epoch.
    pub expires_at: i64,
}

impl IdentitySessionClaims {
    const TYP: &'static str = "identity-credentials";

    pub fn new(identity_id: &str, pool_id: &str, service_sid: &str, expires_at: i64) -> Self {
        IdentitySessionClaims {
            typ: Self::TYP.into(),
            access_key_id: new_access_key_id(),
            secret_key: new_secret_key(),
            identity_id: identity_id.into(),
            pool_id: pool_id.into(),
            service_sid: service_sid.into(),
            expires_at,
        }
    }

    pub fn seal(&self, secrets: &SecretBox) -> String {
        secrets.seal_token(&serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn open(secrets: &SecretBox, token: &str) -> Option<Self> {
        let claims: Self = serde_json::from_slice(&secrets.open_token(token)?).ok()?;
        (claims.typ == Self::TYP).then_some(claims)
    }
}

/// An access key id in the shape of AWS's temporary ones: `ASIA` and 16 base32 characters.
pub fn new_access_key_id() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    let tail: String = bytes.iter().map(|b| ALPHABET[(b & 31) as usize] as char).collect();
    format!("ASIA{tail}")
}

/// A 40-character secret access key, as AWS's (base64 of 30 random bytes).
pub fn new_secret_key() -> String {
    let mut bytes = [0u8; 30];
    fill_random(&mut bytes);
    STANDARD.encode(bytes)
}

/// The claims of a Cognito OpenID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenIdClaims {
    pub iss: String,
    /// The identity id.
    pub sub: String,
    /// The identity pool id.
    pub aud: String,
    /// `authenticated` and the login providers, or `unauthenticated`.
    pub amr: Vec<String>,
    pub iat: i64,
    pub exp: i64,
}

/// The deployment's OpenID signing key.
pub struct OpenIdSigner {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public: Jwk,
}

impl std::fmt::Debug for OpenIdSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenIdSigner({})", self.kid)
    }
}

/// The signing key as kept in the store's meta table, sealed.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    /// PKCS#1 DER, base64.
    der: String,
}

fn key_error(e: impl std::fmt::Display) -> CoreError {
    CoreError::Store(crate::store::StoreError::Corrupt(format!("OpenID signing key: {e}")))
}

impl OpenIdSigner {
    /// A new 2048-bit key, and its sealed form for the store. Takes a moment: run it off the
    /// async threads.
    pub fn generate(secrets: &SecretBox) -> Result<(Self, String), CoreError> {
        let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(key_error)?;
        let der = key.to_pkcs1_der().map_err(key_error)?;
        let mut kid = [0u8; 12];
        fill_random(&mut kid);
        let stored = StoredKey { kid: URL_SAFE_NO_PAD.encode(kid), der: STANDARD.encode(der.as_bytes()) };
        let sealed = secrets.seal(&serde_json::to_string(&stored).map_err(key_error)?);
        Ok((Self::from_stored(stored)?, sealed))
    }

    /// The key from its sealed stored form.
    pub fn open(secrets: &SecretBox, sealed: &str) -> Result<Self, CoreError> {
        let stored: StoredKey = serde_json::from_str(&secrets.open(sealed)?).map_err(key_error)?;
        Self::from_stored(stored)
    }

    fn from_stored(stored: StoredKey) -> Result<Self, CoreError> {
        let der = STANDARD.decode(&stored.der).map_err(key_error)?;
        let key = RsaPrivateKey::from_pkcs1_der(&der).map_err(key_error)?;
        let public = RsaPublicKey::from(&key);
        let jwk = Jwk {
            kty: "RSA".into(),
            alg: "RS256".into(),
            key_use: "sig".into(),
            kid: stored.kid.clone(),
            n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        };
        let decoding = DecodingKey::from_rsa_components(&jwk.n, &jwk.e).map_err(key_error)?;
        Ok(OpenIdSigner { kid: stored.kid, encoding: EncodingKey::from_rsa_der(&der), decoding, public: jwk })
    }

    pub fn sign(&self, claims: &OpenIdClaims) -> Result<String, CoreError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(key_error)
    }

    /// Checks a token this key signed: signature, issuer, and expiry against `now_secs`.
    pub fn verify(&self, token: &str, issuer: &str, now_secs: i64) -> Result<OpenIdClaims, CoreError> {
        let invalid = |why: String| CoreError::NotAuthorized(format!("Invalid login token. {why}"));
        let mut validation = Validation::new(Algorithm::RS256);
        // Expiry is checked below against our own clock; the audience is the pool, which the
        // caller compares.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_issuer(&[issuer]);
        validation.required_spec_claims = ["exp", "iss", "sub", "aud"].iter().map(|s| s.to_string()).collect();
        let claims = jsonwebtoken::decode::<OpenIdClaims>(token, &self.decoding, &validation)
            .map_err(|e| invalid(e.to_string()))?
            .claims;
        if claims.exp <= now_secs {
            return Err(invalid("Token expired.".into()));
        }
        Ok(claims)
    }

    pub fn jwk(&self) -> &Jwk {
        &self.public
    }
}

/// A public key as `.well-known/jwks.json` publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub key_use: String,
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Exponent, base64url.
    pub e: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> SecretBox {
        SecretBox::from_hex(&SecretBox::generate_key_hex()).expect("key")
    }

    #[test]
    fn sealed_claims_open_only_as_their_own_kind() {
        let s = secrets();
        let sync = SyncSessionClaims::new("us-east-1:p", "us-east-1:i", "d", 1000).seal(&s);
        assert_eq!(SyncSessionClaims::open(&s, &sync).map(|c| c.dataset), Some("d".into()));
        assert!(IdentitySessionClaims::open(&s, &sync).is_none(), "a sync token is no credential");
        assert!(SyncSessionClaims::open(&secrets(), &sync).is_none(), "another deployment's key");
        let creds = IdentitySessionClaims::new("us-east-1:i", "us-east-1:p", "IS00", 10);
        assert!(creds.access_key_id.starts_with("ASIA") && creds.access_key_id.len() == 20);
        assert_eq!(creds.secret_key.len(), 40);
        assert_eq!(IdentitySessionClaims::open(&s, &creds.seal(&s)), Some(creds));
    }

    #[test]
    fn openid_tokens_verify_with_the_published_key_only() {
        let s = secrets();
        let (signer, sealed) = OpenIdSigner::generate(&s).expect("generates");
        let reopened = OpenIdSigner::open(&s, &sealed).expect("opens");
        assert_eq!(reopened.jwk(), signer.jwk());
        let claims = OpenIdClaims {
            iss: "https://issuer".into(),
            sub: "us-east-1:i".into(),
            aud: "us-east-1:p".into(),
            amr: vec!["unauthenticated".into()],
            iat: 100,
            exp: 700,
        };
        let token = signer.sign(&claims).expect("signs");
        assert_eq!(reopened.verify(&token, "https://issuer", 200).expect("valid"), claims);
        assert!(reopened.verify(&token, "https://other", 200).is_err());
        assert!(reopened.verify(&token, "https://issuer", 700).is_err(), "expired");
        let jwk = signer.jwk();
        let key = DecodingKey::from_rsa_components(&jwk.n, &jwk.e).expect("jwk");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_audience(&["us-east-1:p"]);
        assert!(jsonwebtoken::decode::<OpenIdClaims>(&token, &key, &validation).is_ok());
        let (other, _) = OpenIdSigner::generate(&s).expect("generates");
        assert!(other.verify(&token, "https://issuer", 200).is_err());
    }
}
