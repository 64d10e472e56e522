//! Cognito identities: GetId and the login rules, developer-authenticated identities, temporary
//! credentials (and the secrets SigV4 checks requests against), OpenID tokens.
//!
//! Logins: a self-hosted server cannot ask Facebook or Google whether a token is good, so a
//! login's value is taken as the provider's identifier of the user, as given. The same login
//! always maps to the same identity. Only the pool's configured providers are accepted, and the
//! developer provider only with developer credentials. Cognito's own OpenID tokens (provider
//! `cognito-identity.amazonaws.com`) are verified: they prove the identity they were issued
//! for.

use super::cognito_pools::{MAX_QUERY_LIMIT, page_after, query_limit, require_developer, validate_cognito_id};
use super::*;
use crate::cognito::{
    COGNITO_PROVIDER, CognitoIdentity, IdentityPool, IdentitySessionClaims, Jwks, Login, OpenIdClaims, OpenIdSigner,
};
use crate::store::ResolveIdentity;
use std::collections::BTreeMap;

/// Most logins one identity may hold (AWS: 20).
const MAX_LOGINS: usize = 20;
/// Where the sealed OpenID signing key is kept in the store's meta table.
const OPENID_KEY_META: &str = "cognito_openid_signing_key";

/// Temporary credentials of an identity (GetCredentialsForIdentity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityCredentials {
    pub identity_id: String,
    pub access_key_id: String,
    pub secret_key: String,
    pub session_token: String,
    pub expiration: Timestamp,
}

/// An OpenID token and the identity it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIdToken {
    pub identity_id: String,
    pub token: String,
}

/// The key a SigV4 request is signed with and who signs with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSecret {
    pub secret: String,
    pub principal: Principal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeveloperIdentityLookup {
    pub identity_id: String,
    pub developer_user_identifiers: Vec<String>,
    pub next_token: Option<String>,
}

/// An identity DeleteIdentities could not delete, with AWS's error code (`AccessDenied` or
/// `InternalServerError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnprocessedIdentity {
    pub identity_id: String,
    pub error_code: String,
}

fn validate_logins(logins: &BTreeMap<String, String>) -> Result<(), CoreError> {
    if logins.len() > 10 {
        return Err(CoreError::invalid("Logins", format!("holds at most 10 logins, got {}", logins.len())));
    }
    for (provider, token) in logins {
        let n = provider.chars().count();
        if n == 0 || n > 128 {
            return Err(CoreError::invalid("Logins", "provider names are 1 to 128 characters long"));
        }
        let n = token.chars().count();
        if n == 0 || n > 50_000 {
            return Err(CoreError::invalid("Logins", "tokens are 1 to 50000 characters long"));
        }
    }
    Ok(())
}

fn validate_developer_user(user: &str) -> Result<(), CoreError> {
    let n = user.chars().count();
    if n == 0 || n > 1024 {
        return Err(CoreError::invalid("DeveloperUserIdentifier", "must be 1 to 1024 characters long"));
    }
    Ok(())
}

/// What an OpenID token's `amr` says of an identity.
fn amr(identity: &CognitoIdentity) -> Vec<String> {
    if identity.logins.is_empty() {
        return vec!["unauthenticated".into()];
    }
    let mut providers: Vec<String> = identity.logins.iter().map(|l| l.provider.clone()).collect();
    providers.dedup();
    std::iter::once("authenticated".to_owned()).chain(providers).collect()
}

/// How a resolution is asked for.
struct Resolve<'a> {
    pool: &'a IdentityPool,
    identity_id: Option<&'a str>,
    logins: &'a BTreeMap<String, String>,
    may_create: bool,
    developer: bool,
}

impl Engine {
    /// The OpenID signing key: read from the store, or generated and stored by the first node
    /// that needs one (the others then use the stored one).
    async fn openid_signer(&self) -> Result<Arc<OpenIdSigner>, CoreError> {
        self.openid
            .get_or_try_init(|| async {
                if let Some(sealed) = self.store.meta(OPENID_KEY_META).await? {
                    return Ok(Arc::new(OpenIdSigner::open(&self.secrets, &sealed)?));
                }
                let secrets = self.secrets.clone();
                let (signer, sealed) =
                    tokio::task::spawn_blocking(move || OpenIdSigner::generate(&secrets))
                        .await
                        .map_err(|e| crate::store::StoreError::Backend(format!("key generation failed: {e}")))??;
                let (stored, ours) = self.store.claim_meta(OPENID_KEY_META, &sealed).await?;
                if ours { Ok(Arc::new(signer)) } else { Ok(Arc::new(OpenIdSigner::open(&self.secrets, &stored)?)) }
            })
            .await
            .cloned()
    }

    /// The public keys OpenID tokens are signed with, for `.well-known/jwks.json`.
    pub async fn openid_jwks(&self) -> Result<Jwks, CoreError> {
        Ok(Jwks { keys: vec![self.openid_signer().await?.jwk().clone()] })
    }

    async fn sign_openid_token(&self, identity: &CognitoIdentity, ttl_secs: u64) -> Result<String, CoreError> {
        let now = now_secs();
        let claims = OpenIdClaims {
            iss: self.limits.cognito.openid_issuer.clone(),
            sub: identity.id.clone(),
            aud: identity.pool_id.clone(),
            amr: amr(identity),
            iat: now,
            exp: now + ttl_secs as i64,
        };
        self.openid_signer().await?.sign(&claims)
    }

    /// Finds the identity that `identity_id` and `logins` name, linking and merging as
    /// ResolveIdentity does. A Cognito OpenID token among the logins proves its identity.
    async fn resolve_identity(&self, r: Resolve<'_>) -> Result<CognitoIdentity, CoreError> {
        validate_logins(r.logins)?;
        let mut logins = r.logins.clone();
        let mut identity_id = r.identity_id.map(str::to_owned);
        let mut proven = r.developer;
        if let Some(token) = logins.remove(COGNITO_PROVIDER) {
            let claims = self.openid_signer().await?.verify(&token, &self.limits.cognito.openid_issuer, now_secs())?;
            if claims.aud != r.pool.id || identity_id.as_ref().is_some_and(|id| id != &claims.sub) {
                return Err(CoreError::NotAuthorized("Invalid login token. Incorrect token audience.".into()));
            }
            identity_id = Some(claims.sub);
            proven = true;
        }
        let m = Mutation::ResolveIdentity(ResolveIdentity {
            service: r.pool.service_sid.clone(),
            pool_id: r.pool.id.clone(),
            identity_id,
            logins,
            new_identity_id: r.may_create.then(|| self.new_cognito_id()),
            proven,
            developer: r.developer,
            max_logins: MAX_LOGINS,
        });
        // GetId and its kin take no credentials: the logins are the caller's claim.
        match self.run_cognito(Actor::SYSTEM, m).await? {
            Outcome::CognitoIdentity { identity, .. } => Ok(identity),
            other => Err(unexpected(other)),
        }
    }

    /// The pool an identity belongs to.
    async fn pool_of_identity(&self, identity_id: &str) -> Result<(IdentityPool, CognitoIdentity), CoreError> {
        validate_cognito_id("IdentityId", identity_id)?;
        let identity = self
            .store
            .cognito_identity(identity_id)
            .await?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::CognitoIdentity, identity_id))?;
        let pool = self.pool_by_id(&identity.pool_id).await?;
        Ok((pool, identity))
    }

    // ----- public operations (no credentials) -------------------------------------------------

    /// GetId: a new unauthenticated identity (where the pool allows them), or the identity the
    /// logins are linked to (created and linked on their first use).
    pub async fn get_id(&self, pool_id: &str, logins: &BTreeMap<String, String>) -> Result<String, CoreError> {
        let pool = self.pool_by_id(pool_id).await?;
        let r = Resolve { pool: &pool, identity_id: None, logins, may_create: true, developer: false };
        Ok(self.resolve_identity(r).await?.id)
    }

    /// GetOpenIdToken: a token for the identity (valid for the configured lifetime, AWS: 10
    /// minutes), after linking the logins given.
    pub async fn open_id_token(
        &self,
        identity_id: &str,
        logins: &BTreeMap<String, String>,
    ) -> Result<OpenIdToken, CoreError> {
        let (pool, _) = self.pool_of_identity(identity_id).await?;
        let r = Resolve { pool: &pool, identity_id: Some(identity_id), logins, may_create: false, developer: false };
        let identity = self.resolve_identity(r).await?;
        let token = self.sign_openid_token(&identity, self.limits.cognito.openid_token_ttl_secs).await?;
        Ok(OpenIdToken { identity_id: identity.id, token })
    }

    /// GetCredentialsForIdentity: temporary credentials reaching only this identity's data.
    /// They are stateless: the session token seals the identity, its pool and the secret key,
    /// and the access key id is checked against it.
    pub async fn credentials_for_identity(
        &self,
        identity_id: &str,
        logins: &BTreeMap<String, String>,
    ) -> Result<IdentityCredentials, CoreError> {
        let (pool, _) = self.pool_of_identity(identity_id).await?;
        let r = Resolve { pool: &pool, identity_id: Some(identity_id), logins, may_create: false, developer: false };
        let identity = self.resolve_identity(r).await?;
        let expires_at = now_secs() + self.limits.cognito.credentials_ttl_secs as i64;
        let claims = IdentitySessionClaims::new(&identity.id, &pool.id, pool.service_sid.as_str(), expires_at);
        Ok(IdentityCredentials {
            identity_id: identity.id,
            session_token: claims.seal(&self.secrets),
            access_key_id: claims.access_key_id,
            secret_key: claims.secret_key,
            expiration: Timestamp(expires_at * 1000),
        })
    }

    /// The secret a SigV4 request signed with `access_key_id` must be checked against, and the
    /// principal it acts as: developer credentials (the root account: AccountSid / AuthToken;
    /// an API key: SK… / its secret) without a session token, temporary identity credentials
    /// with one.
    pub async fn aws_secret(&self, access_key_id: &str, session_token: Option<&str>) -> Result<AwsSecret, CoreError> {
        let Some(token) = session_token else {
            if auth::constant_time_eq(access_key_id, self.root.account_sid.as_str()) {
                return Ok(AwsSecret { secret: self.root.auth_token.clone(), principal: Principal::Root });
            }
            if let Ok(sid) = Sid::parse_kind(access_key_id, SidKind::ApiKey)
                && let Some(record) = self.store.api_key(&sid).await?
            {
                let secret = self.secrets.open(&record.sealed_secret)?;
                return Ok(AwsSecret { secret, principal: Principal::ApiKey(sid) });
            }
            return Err(CoreError::InvalidCredentials);
        };
        let claims = IdentitySessionClaims::open(&self.secrets, token).ok_or(CoreError::InvalidCredentials)?;
        if !auth::constant_time_eq(access_key_id, &claims.access_key_id) {
            return Err(CoreError::InvalidCredentials);
        }
        if claims.expires_at <= now_secs() {
            return Err(CoreError::AccessTokenExpired);
        }
        // Deleting, merging or disabling an identity ends its credentials at once.
        let live = self.store.cognito_identity(&claims.identity_id).await?.is_some_and(|i| !i.disabled);
        if !live {
            return Err(CoreError::InvalidCredentials);
        }
        let service_sid = Sid::parse_kind(&claims.service_sid, SidKind::Service)?;
        Ok(AwsSecret {
            secret: claims.secret_key,
            principal: Principal::CognitoIdentity {
                identity_id: claims.identity_id,
                pool_id: claims.pool_id,
                service_sid,
                expires_at: claims.expires_at,
            },
        })
    }

    // ----- developer operations ---------------------------------------------------------------

    /// DescribeIdentity.
    pub async fn cognito_identity(
        &self,
        principal: &Principal,
        identity_id: &str,
    ) -> Result<CognitoIdentity, CoreError> {
        require_developer(principal)?;
        Ok(self.pool_of_identity(identity_id).await?.1)
    }

    /// ListIdentities: `max_results` is 1–60; `hide_disabled` leaves out disabled identities.
    pub async fn cognito_identities(
        &self,
        principal: &Principal,
        pool_id: &str,
        max_results: u32,
        next_token: Option<&str>,
        hide_disabled: bool,
    ) -> Result<Page<CognitoIdentity>, CoreError> {
        require_developer(principal)?;
        let pool = self.pool_by_id(pool_id).await?;
        let page = page_after(next_token, query_limit(max_results)?)?;
        let rows = self.store.cognito_identities(&pool.id, hide_disabled, &page).await?;
        Ok(page.finish(rows, |i| Cursor::Key(i.id.clone())))
    }

    /// DeleteIdentities: 1–60 identities, of any pools. Identities that do not exist are
    /// already deleted; those that fail come back as unprocessed.
    pub async fn delete_identities(
        &self,
        principal: &Principal,
        identity_ids: &[String],
    ) -> Result<Vec<UnprocessedIdentity>, CoreError> {
        require_developer(principal)?;
        if identity_ids.is_empty() || identity_ids.len() > MAX_QUERY_LIMIT as usize {
            return Err(CoreError::invalid("IdentityIdsToDelete", "must name 1 to 60 identities"));
        }
        for id in identity_ids {
            validate_cognito_id("IdentityIdsToDelete", id)?;
        }
        let mut unprocessed = Vec::new();
        for id in identity_ids {
            let deleted = async {
                let Some(identity) = self.store.cognito_identity(id).await? else { return Ok(()) };
                let pool = self.pool_by_id(&identity.pool_id).await?;
                let m = Mutation::RemoveCognitoIdentity {
                    service: pool.service_sid,
                    pool_id: pool.id,
                    identity_id: id.clone(),
                };
                self.run_cognito(principal.actor(), m).await.map(drop)
            };
            match deleted.await {
                Ok(()) | Err(CoreError::NotFound { .. }) => {}
                Err(_) => unprocessed
                    .push(UnprocessedIdentity { identity_id: id.clone(), error_code: "InternalServerError".into() }),
            }
        }
        Ok(unprocessed)
    }

    /// GetOpenIdTokenForDeveloperIdentity: the identity of the developer user (created on its
    /// first use, or linked to `identity_id` when given) and a token for it, valid for
    /// `token_duration` seconds (default: the GetOpenIdToken lifetime; at most 24 h). A
    /// developer user already linked to another identity than `identity_id` is refused.
    pub async fn open_id_token_for_developer_identity(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: Option<&str>,
        logins: &BTreeMap<String, String>,
        token_duration: Option<u64>,
    ) -> Result<OpenIdToken, CoreError> {
        require_developer(principal)?;
        let ttl = token_duration.unwrap_or(self.limits.cognito.openid_token_ttl_secs);
        let max = self.limits.cognito.max_openid_token_ttl_secs;
        if ttl == 0 || ttl > max {
            return Err(CoreError::invalid("TokenDuration", format!("must be between 1 and {max} seconds, got {ttl}")));
        }
        if let Some(id) = identity_id {
            validate_cognito_id("IdentityId", id)?;
        }
        let pool = self.pool_by_id(pool_id).await?;
        let provider = pool.spec.developer_provider_name.as_deref().ok_or_else(|| {
            CoreError::InvalidParameter(format!("Identity pool {pool_id} has no DeveloperProviderName"))
        })?;
        match logins.get(provider) {
            Some(user) => validate_developer_user(user)?,
            None => {
                return Err(CoreError::InvalidParameter(format!(
                    "Logins must hold the identity pool's developer provider '{provider}'"
                )));
            }
        }
        let r = Resolve { pool: &pool, identity_id, logins, may_create: true, developer: true };
        let identity = self.resolve_identity(r).await?;
        let token = self.sign_openid_token(&identity, ttl).await?;
        Ok(OpenIdToken { identity_id: identity.id, token })
    }

    /// LookupDeveloperIdentity: the identity of a developer user, or the developer users of an
    /// identity (paged, 1–60, default 60); both given, they must match (else ResourceConflict).
    pub async fn lookup_developer_identity(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: Option<&str>,
        developer_user: Option<&str>,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<DeveloperIdentityLookup, CoreError> {
        require_developer(principal)?;
        let limit = query_limit(max_results.unwrap_or(MAX_QUERY_LIMIT))?;
        let pool = self.pool_by_id(pool_id).await?;
        let provider = pool.spec.developer_provider_name.clone().ok_or_else(|| {
            CoreError::InvalidParameter(format!("Identity pool {pool_id} has no DeveloperProviderName"))
        })?;
        let identity_id = match (identity_id, developer_user) {
            (None, None) => {
                return Err(CoreError::InvalidParameter("IdentityId or DeveloperUserIdentifier is required".into()));
            }
            (given, Some(user)) => {
                validate_developer_user(user)?;
                let login = Login { provider: provider.clone(), user: user.to_owned() };
                let owner = self
                    .store
                    .login_owner(&pool.id, &login)
                    .await?
                    .ok_or_else(|| CoreError::not_found(NotFoundKind::DeveloperUser, user))?;
                if given.is_some_and(|id| id != owner) {
                    return Err(CoreError::ResourceConflict(format!(
                        "Developer user '{user}' is not linked to identity '{}'",
                        given.unwrap_or_default()
                    )));
                }
                owner
            }
            (Some(id), None) => id.to_owned(),
        };
        let (_, identity) = self.pool_of_identity(&identity_id).await?;
        if identity.pool_id != pool.id {
            return Err(CoreError::not_found(NotFoundKind::CognitoIdentity, identity_id));
        }
        let page = page_after(next_token, limit)?;
        let after = match &page.after {
            Some(Cursor::Key(k)) => Some(k.clone()),
            Some(Cursor::Index(_)) => return Err(CoreError::InvalidPageToken),
            None => None,
        };
        let users: Vec<String> = identity
            .logins
            .into_iter()
            .filter(|l| l.provider == provider && after.as_ref().is_none_or(|a| &l.user > a))
            .map(|l| l.user)
            .collect();
        let users = page.finish(users, |u| Cursor::Key(u.clone()));
        Ok(DeveloperIdentityLookup {
            identity_id: identity.id,
            developer_user_identifiers: users.items,
            next_token: users.next.map(|t| t.encode()),
        })
    }

    /// MergeDeveloperIdentities: the source user's identity merges into the destination
    /// user's, which is returned. Its datasets follow as `<name>.<sourceIdentityId>`.
    pub async fn merge_developer_identities(
        &self,
        principal: &Principal,
        pool_id: &str,
        provider: &str,
        source_user: &str,
        destination_user: &str,
    ) -> Result<String, CoreError> {
        require_developer(principal)?;
        validate_developer_user(source_user)?;
        validate_developer_user(destination_user)?;
        let pool = self.pool_by_id(pool_id).await?;
        let m = Mutation::MergeDeveloperIdentities {
            service: pool.service_sid,
            pool_id: pool.id,
            provider: provider.to_owned(),
            source_user: source_user.to_owned(),
            destination_user: destination_user.to_owned(),
            max_logins: MAX_LOGINS,
        };
        match self.run_cognito(principal.actor(), m).await? {
            Outcome::CognitoIdentity { identity, .. } => Ok(identity.id),
            other => Err(unexpected(other)),
        }
    }

    /// UnlinkDeveloperIdentity: an identity left without logins is disabled.
    pub async fn unlink_developer_identity(
        &self,
        principal: &Principal,
        pool_id: &str,
        identity_id: &str,
        provider: &str,
        user: &str,
    ) -> Result<(), CoreError> {
        require_developer(principal)?;
        validate_cognito_id("IdentityId", identity_id)?;
        validate_developer_user(user)?;
        let pool = self.pool_by_id(pool_id).await?;
        let m = Mutation::UnlinkDeveloperIdentity {
            service: pool.service_sid,
            pool_id: pool.id,
            identity_id: identity_id.to_owned(),
            provider: provider.to_owned(),
            user: user.to_owned(),
        };
        self.run_cognito(principal.actor(), m).await.map(drop)
    }
}
