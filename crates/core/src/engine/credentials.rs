//! Authentication, API keys and access tokens.

use super::*;

impl Engine {
    // ----- authentication -------------------------------------------------------------------

    /// Basic auth: the root account or an API key.
    pub async fn authenticate_basic(&self, user: &str, password: &str) -> Result<Principal, CoreError> {
        if self.root.matches(user, password) {
            return Ok(Principal::Root);
        }
        if let Ok(sid) = Sid::parse_kind(user, SidKind::ApiKey)
            && let Some(record) = self.store.api_key(&sid).await?
        {
            let secret = self.secrets.open(&record.sealed_secret)?;
            if auth::constant_time_eq(password, &secret) {
                return Ok(Principal::ApiKey(sid));
            }
        }
        Err(CoreError::InvalidCredentials)
    }

    /// Bearer auth: an access token signed by one of our API keys.
    pub async fn authenticate_token(&self, token: &str) -> Result<Principal, CoreError> {
        let key_sid = auth::access_token_issuer(token)?;
        let record = self
            .store
            .api_key(&key_sid)
            .await?
            .ok_or_else(|| CoreError::InvalidAccessToken("signing key is unknown or was deleted".into()))?;
        let secret = self.secrets.open(&record.sealed_secret)?;
        let claims = auth::verify_access_token(
            token,
            &self.root.account_sid,
            &secret,
            self.limits.max_token_ttl_secs,
            now_secs(),
        )?;
        let identity = claims
            .grants
            .identity
            .filter(|i| !i.is_empty())
            .ok_or_else(|| CoreError::InvalidAccessToken("token has no identity grant".into()))?;
        let service =
            claims.grants.data_sync.and_then(|g| g.service_sid).ok_or_else(|| {
                CoreError::InvalidAccessToken("token has no data_sync grant with a service_sid".into())
            })?;
        let service = self.resolve_service_ref(&service).await?;
        Ok(Principal::Identity { identity, service_sid: service.sid, expires_at: claims.exp })
    }

    /// Mints an access token for `identity` on `service`, signed by `key` (or the first key,
    /// created on demand when the root account asks and none exists).
    pub async fn mint_token(
        &self,
        principal: &Principal,
        service: &str,
        identity: &str,
        ttl: Option<u64>,
    ) -> Result<MintedToken, CoreError> {
        let signer = match principal {
            Principal::ApiKey(sid) => sid.clone(),
            Principal::Root => match self.store.api_keys().await?.into_iter().next() {
                Some(k) => k.sid,
                None => self.create_api_key(principal, Some("default signing key".into())).await?.sid,
            },
            Principal::Identity { .. } | Principal::CognitoIdentity { .. } => {
                return Err(CoreError::Forbidden("identities cannot mint tokens".into()));
            }
        };
        self.mint_token_with_key(principal, &signer, service, identity, ttl).await
    }

    pub async fn mint_token_with_key(
        &self,
        principal: &Principal,
        key: &Sid,
        service: &str,
        identity: &str,
        ttl: Option<u64>,
    ) -> Result<MintedToken, CoreError> {
        require_admin(principal)?;
        validate_identity(identity)?;
        let ttl = ttl.unwrap_or(3600);
        if ttl == 0 || ttl > self.limits.max_token_ttl_secs {
            return Err(CoreError::invalid(
                "ttl",
                format!("must be between 1 and {} seconds, got {ttl}", self.limits.max_token_ttl_secs),
            ));
        }
        let service = self.resolve_service_ref(service).await?;
        let record = self
            .store
            .api_key(key)
            .await?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::ApiKey, key.to_string()))?;
        let secret = self.secrets.open(&record.sealed_secret)?;
        let now = now_secs();
        let token = auth::mint_access_token(&self.root.account_sid, key, &secret, identity, &service.sid, ttl, now)?;
        Ok(MintedToken { token, identity: identity.to_owned(), service_sid: service.sid, expires_at: now + ttl as i64 })
    }

    /// The key webhook requests are signed with (`X-Twilio-Signature`): the account's
    /// AuthToken, as Twilio signs its requests. For the webhook sender only.
    pub fn webhook_signing_key(&self) -> &str {
        &self.root.auth_token
    }

    // ----- API keys -------------------------------------------------------------------------

    pub async fn create_api_key(
        &self,
        principal: &Principal,
        friendly_name: Option<String>,
    ) -> Result<ApiKey, CoreError> {
        require_admin(principal)?;
        if let Some(name) = &friendly_name {
            check_len("friendly_name", name, 64)?;
        }
        let key = ApiKey {
            sid: Sid::random(SidKind::ApiKey),
            friendly_name,
            secret: auth::random_hex(16),
            date_created: Timestamp::now(),
        };
        let record = ApiKeyRecord {
            sid: key.sid.clone(),
            friendly_name: key.friendly_name.clone(),
            sealed_secret: self.secrets.seal(&key.secret),
            date_created: key.date_created,
        };
        self.store.execute(Actor::SYSTEM, Mutation::PutApiKey(record)).await?;
        Ok(key)
    }

    pub async fn api_keys(&self, principal: &Principal) -> Result<Vec<ApiKey>, CoreError> {
        require_admin(principal)?;
        Ok(self.store.api_keys().await?.into_iter().map(public_key).collect())
    }

    pub async fn api_key(&self, principal: &Principal, sid: &str) -> Result<ApiKey, CoreError> {
        require_admin(principal)?;
        let sid = Sid::parse_kind(sid, SidKind::ApiKey)?;
        self.store
            .api_key(&sid)
            .await?
            .map(public_key)
            .ok_or_else(|| CoreError::not_found(NotFoundKind::ApiKey, sid.to_string()))
    }

    pub async fn rename_api_key(
        &self,
        principal: &Principal,
        sid: &str,
        friendly_name: Option<String>,
    ) -> Result<ApiKey, CoreError> {
        require_admin(principal)?;
        if let Some(name) = &friendly_name {
            check_len("friendly_name", name, 64)?;
        }
        let sid = Sid::parse_kind(sid, SidKind::ApiKey)?;
        self.store.execute(Actor::SYSTEM, Mutation::RenameApiKey { sid: sid.clone(), friendly_name }).await?;
        self.api_key(principal, sid.as_str()).await
    }

    pub async fn remove_api_key(&self, principal: &Principal, sid: &str) -> Result<(), CoreError> {
        require_admin(principal)?;
        let sid = Sid::parse_kind(sid, SidKind::ApiKey)?;
        self.store.execute(Actor::SYSTEM, Mutation::RemoveApiKey { sid }).await?;
        Ok(())
    }
}
