//! Cognito identity pools (Cognito Identity) and their Cognito Sync configuration, plus what
//! every Cognito operation shares: who may call it, id shapes, running a pool's mutations.

use super::*;
use crate::cognito::{
    BulkPublish, CognitoStreams, IdentityPool, IdentityPoolSpec, IdentityPoolUsage, PoolSyncConfig,
    PoolSyncConfigChange, PushSync, SYNC_TRIGGER_EVENT,
};
use std::collections::BTreeMap;

/// Most results one page of ListIdentityPools, ListIdentities or LookupDeveloperIdentity holds
/// (the model's `QueryLimit`).
pub(super) const MAX_QUERY_LIMIT: u32 = 60;

/// Who may call a Cognito operation, per the models' documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Callers {
    /// Developer credentials: the root account or an API key.
    Developer,
    /// Temporary credentials of the identity the operation is about.
    OwnIdentity,
    /// Either of the two.
    DeveloperOrOwnIdentity,
}

pub(super) fn require_developer(principal: &Principal) -> Result<(), CoreError> {
    check_callers(principal, Callers::Developer, "", "")
}

/// Refuses principals the operation does not accept, and identities other than `identity_id`
/// of `pool_id`.
pub(super) fn check_callers(
    principal: &Principal,
    callers: Callers,
    pool_id: &str,
    identity_id: &str,
) -> Result<(), CoreError> {
    match principal {
        Principal::Root | Principal::ApiKey(_) if callers != Callers::OwnIdentity => Ok(()),
        Principal::Root | Principal::ApiKey(_) => Err(CoreError::NotAuthorized(
            "This operation can only be called with Cognito identity credentials, not developer credentials".into(),
        )),
        Principal::CognitoIdentity { .. } if callers == Callers::Developer => Err(CoreError::NotAuthorized(
            "This operation can only be called with developer credentials, not Cognito identity credentials".into(),
        )),
        Principal::CognitoIdentity { identity_id: own, pool_id: own_pool, .. } => {
            if own == identity_id && own_pool == pool_id {
                Ok(())
            } else {
                Err(CoreError::NotAuthorized(format!("Access to Identity '{identity_id}' is forbidden.")))
            }
        }
        Principal::Identity { .. } => Err(CoreError::NotAuthorized(
            "Cognito operations need developer credentials or Cognito identity credentials".into(),
        )),
    }
}

/// Pool and identity ids: `<region>:<lowercase uuid>` (the model's `[\w-]+:[0-9a-f-]+`, 1–55).
pub(super) fn validate_cognito_id(field: &'static str, id: &str) -> Result<(), CoreError> {
    let valid = id.len() <= 55
        && id.split_once(':').is_some_and(|(region, tail)| {
            !region.is_empty()
                && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                && !tail.is_empty()
                && tail.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
        });
    if valid {
        Ok(())
    } else {
        Err(CoreError::invalid(field, format!("'{id}' is not of the form <region>:<id> (lowercase hex and dashes)")))
    }
}

/// A page size of the model's `QueryLimit` (1–60).
pub(super) fn query_limit(max_results: u32) -> Result<u32, CoreError> {
    if (1..=MAX_QUERY_LIMIT).contains(&max_results) {
        Ok(max_results)
    } else {
        Err(CoreError::invalid("MaxResults", format!("must be between 1 and {MAX_QUERY_LIMIT}, got {max_results}")))
    }
}

/// A page request continuing after a NextToken, in id order.
pub(super) fn page_after(next_token: Option<&str>, limit: u32) -> Result<PageRequest, CoreError> {
    let after = next_token.map(|t| crate::page::PageToken::decode(t).map(|t| t.after)).transpose()?;
    Ok(PageRequest { order: crate::page::Order::Asc, from: None, after, limit })
}

fn check_chars(field: &'static str, value: &str, min: usize, max: usize) -> Result<(), CoreError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(CoreError::invalid(field, format!("must be {min} to {max} characters long, got {n}")));
    }
    Ok(())
}

fn validate_spec(spec: &IdentityPoolSpec) -> Result<(), CoreError> {
    check_chars("IdentityPoolName", &spec.name, 1, 128)?;
    let name_ok =
        spec.name.chars().all(|c| c.is_alphanumeric() || c == '_' || c.is_whitespace() || "+=,.@-".contains(c));
    if !name_ok {
        return Err(CoreError::invalid("IdentityPoolName", "may hold letters, digits, spaces and _+=,.@- only"));
    }
    if let Some(dp) = &spec.developer_provider_name {
        check_chars("DeveloperProviderName", dp, 1, 128)?;
        if !dp.chars().all(|c| c.is_alphanumeric() || "._-".contains(c)) {
            return Err(CoreError::invalid("DeveloperProviderName", "may hold letters, digits and ._- only"));
        }
        if dp == crate::cognito::COGNITO_PROVIDER || spec.supported_login_providers.contains_key(dp) {
            return Err(CoreError::invalid("DeveloperProviderName", "must differ from every login provider"));
        }
    }
    if spec.supported_login_providers.len() > 10 {
        return Err(CoreError::invalid("SupportedLoginProviders", "holds at most 10 providers"));
    }
    for (provider, app) in &spec.supported_login_providers {
        check_chars("SupportedLoginProviders", provider, 1, 128)?;
        check_chars("SupportedLoginProviders", app, 1, 128)?;
    }
    for arn in spec.open_id_connect_provider_arns.iter().chain(&spec.saml_provider_arns) {
        check_chars("ProviderARN", arn, 20, 2048)?;
    }
    for p in &spec.cognito_identity_providers {
        check_chars("ProviderName", &p.provider_name, 1, 128)?;
        check_chars("ClientId", &p.client_id, 1, 128)?;
    }
    if spec.tags.len() > 50 {
        return Err(CoreError::invalid("IdentityPoolTags", "holds at most 50 tags"));
    }
    for (key, value) in &spec.tags {
        check_chars("IdentityPoolTags", key, 1, 128)?;
        check_chars("IdentityPoolTags", value, 0, 256)?;
    }
    Ok(())
}

impl Engine {
    // ----- shared -----------------------------------------------------------------------------

    /// A fresh pool or identity id in the configured region.
    pub(super) fn new_cognito_id(&self) -> String {
        format!("{}:{}", self.limits.cognito.region, uuid::Uuid::new_v4())
    }

    pub(super) async fn pool_by_id(&self, pool_id: &str) -> Result<IdentityPool, CoreError> {
        validate_cognito_id("IdentityPoolId", pool_id)?;
        self.store
            .identity_pool(pool_id)
            .await?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::IdentityPool, pool_id))
    }

    /// Runs a Cognito mutation (the store's writer wakes the readers of the events it appended).
    pub(super) async fn run_cognito(&self, actor: Actor, m: Mutation) -> Result<Outcome, CoreError> {
        Ok(self.store.execute(actor, m).await?.outcome)
    }

    async fn run_pool(&self, principal: &Principal, m: Mutation) -> Result<IdentityPool, CoreError> {
        match self.run_cognito(principal.actor(), m).await? {
            Outcome::IdentityPool(pool) => Ok(*pool),
            other => Err(unexpected(other)),
        }
    }

    // ----- pools ------------------------------------------------------------------------------

    pub async fn create_identity_pool(
        &self,
        principal: &Principal,
        spec: IdentityPoolSpec,
    ) -> Result<IdentityPool, CoreError> {
        require_developer(principal)?;
        validate_spec(&spec)?;
        let now = Timestamp::now();
        let pool = IdentityPool {
            id: self.new_cognito_id(),
            service_sid: Sid::new(SidKind::Service),
            spec,
            sync: PoolSyncConfig::default(),
            date_created: now,
            date_updated: now,
        };
        let pool = self.run_pool(principal, Mutation::CreateIdentityPool { pool: Box::new(pool) }).await?;
        self.service_cache.clear();
        Ok(pool)
    }

    pub async fn identity_pool(&self, principal: &Principal, pool_id: &str) -> Result<IdentityPool, CoreError> {
        require_developer(principal)?;
        self.pool_by_id(pool_id).await
    }

    /// ListIdentityPools: `max_results` is 1–60.
    pub async fn identity_pools(
        &self,
        principal: &Principal,
        max_results: u32,
        next_token: Option<&str>,
    ) -> Result<Page<IdentityPool>, CoreError> {
        require_developer(principal)?;
        let page = page_after(next_token, query_limit(max_results)?)?;
        let rows = self.store.identity_pools(&page).await?;
        Ok(page.finish(rows, |p| Cursor::Key(p.id.clone())))
    }

    /// UpdateIdentityPool: the spec replaces the pool's (AWS resets what an update leaves out),
    /// except the developer provider name, which once set stays.
    pub async fn update_identity_pool(
        &self,
        principal: &Principal,
        pool_id: &str,
        spec: IdentityPoolSpec,
    ) -> Result<IdentityPool, CoreError> {
        require_developer(principal)?;
        validate_spec(&spec)?;
        let pool = self.pool_by_id(pool_id).await?;
        self.run_pool(principal, Mutation::UpdateIdentityPool { service: pool.service_sid, pool_id: pool.id, spec })
            .await
    }

    pub async fn delete_identity_pool(&self, principal: &Principal, pool_id: &str) -> Result<(), CoreError> {
        require_developer(principal)?;
        let pool = self.pool_by_id(pool_id).await?;
        let m = Mutation::RemoveIdentityPool { service: pool.service_sid.clone(), pool_id: pool.id };
        self.run_cognito(principal.actor(), m).await?;
        self.published.recent.forget(&pool.service_sid);
        self.service_cache.clear();
        Ok(())
    }

    // ----- Cognito Sync configuration ---------------------------------------------------------

    /// GetIdentityPoolConfiguration (and GetCognitoEvents, GetBulkPublishDetails: all of a
    /// pool's Cognito Sync side).
    pub async fn identity_pool_configuration(
        &self,
        principal: &Principal,
        pool_id: &str,
    ) -> Result<PoolSyncConfig, CoreError> {
        require_developer(principal)?;
        Ok(self.pool_by_id(pool_id).await?.sync)
    }

    /// SetIdentityPoolConfiguration: a part given replaces the pool's; a PushSync with no
    /// application ARNs and no role clears push sync.
    pub async fn set_identity_pool_configuration(
        &self,
        principal: &Principal,
        pool_id: &str,
        push_sync: Option<PushSync>,
        cognito_streams: Option<CognitoStreams>,
    ) -> Result<PoolSyncConfig, CoreError> {
        require_developer(principal)?;
        if let Some(push) = &push_sync {
            for arn in &push.application_arns {
                check_chars("ApplicationArns", arn, 1, 2048)?;
            }
            if let Some(role) = &push.role_arn {
                check_chars("RoleArn", role, 20, 2048)?;
            }
        }
        if let Some(streams) = &cognito_streams {
            if let Some(name) = &streams.stream_name {
                check_chars("StreamName", name, 1, 128)?;
            }
            if let Some(role) = &streams.role_arn {
                check_chars("RoleArn", role, 20, 2048)?;
            }
        }
        let pool = self.pool_by_id(pool_id).await?;
        let change = PoolSyncConfigChange { push_sync, cognito_streams, events: None };
        let m = Mutation::ChangePoolSyncConfig { service: pool.service_sid, pool_id: pool.id, change };
        Ok(self.run_pool(principal, m).await?.sync)
    }

    pub async fn cognito_events(
        &self,
        principal: &Principal,
        pool_id: &str,
    ) -> Result<BTreeMap<String, String>, CoreError> {
        Ok(self.identity_pool_configuration(principal, pool_id).await?.events)
    }

    /// SetCognitoEvents: replaces the events; an empty value removes its event. Only
    /// `SyncTrigger` exists, so the map holds at most one entry.
    pub async fn set_cognito_events(
        &self,
        principal: &Principal,
        pool_id: &str,
        events: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, CoreError> {
        require_developer(principal)?;
        if events.len() > 1 {
            return Err(CoreError::invalid("Events", format!("holds at most 1 event, got {}", events.len())));
        }
        let mut kept = BTreeMap::new();
        for (event, target) in events {
            if event != SYNC_TRIGGER_EVENT {
                return Err(CoreError::invalid(
                    "Events",
                    format!("'{event}' is not an event; the only one is {SYNC_TRIGGER_EVENT}"),
                ));
            }
            if !target.is_empty() {
                check_chars("Events", &target, 1, 2048)?;
                kept.insert(event, target);
            }
        }
        let pool = self.pool_by_id(pool_id).await?;
        let change = PoolSyncConfigChange { events: Some(kept), ..Default::default() };
        let m = Mutation::ChangePoolSyncConfig { service: pool.service_sid, pool_id: pool.id, change };
        Ok(self.run_pool(principal, m).await?.sync.events)
    }

    /// BulkPublish: starts one, refused while one runs (DuplicateRequest), within the interval
    /// after a successful one (AlreadyStreamed), or without enabled streams
    /// (InvalidConfiguration). The publisher reports its end with
    /// [`Engine::finish_bulk_publish`].
    pub async fn bulk_publish(&self, principal: &Principal, pool_id: &str) -> Result<BulkPublish, CoreError> {
        require_developer(principal)?;
        let pool = self.pool_by_id(pool_id).await?;
        let m = Mutation::StartBulkPublish {
            service: pool.service_sid,
            pool_id: pool.id,
            min_interval_secs: self.limits.cognito.bulk_publish_interval_secs,
        };
        Ok(self.run_pool(principal, m).await?.sync.bulk_publish)
    }

    pub async fn bulk_publish_details(&self, principal: &Principal, pool_id: &str) -> Result<BulkPublish, CoreError> {
        Ok(self.identity_pool_configuration(principal, pool_id).await?.bulk_publish)
    }

    /// Ends the running bulk publish: SUCCEEDED, or FAILED with `failure` as its message.
    pub async fn finish_bulk_publish(
        &self,
        principal: &Principal,
        pool_id: &str,
        failure: Option<String>,
    ) -> Result<BulkPublish, CoreError> {
        require_developer(principal)?;
        let pool = self.pool_by_id(pool_id).await?;
        let m = Mutation::FinishBulkPublish { service: pool.service_sid, pool_id: pool.id, failure };
        Ok(self.run_pool(principal, m).await?.sync.bulk_publish)
    }

    // ----- usage ------------------------------------------------------------------------------

    pub async fn identity_pool_usage(
        &self,
        principal: &Principal,
        pool_id: &str,
    ) -> Result<IdentityPoolUsage, CoreError> {
        require_developer(principal)?;
        let pool = self.pool_by_id(pool_id).await?;
        // This node's counts are exact; other nodes' reach the store within a second.
        let _ = self.flush_usage().await;
        Ok(self.store.identity_pool_usage(&pool.id).await?)
    }

    /// ListIdentityPoolUsage: `max_results` defaults to 60 (the model sets no bound; at most
    /// 60 are returned).
    pub async fn identity_pool_usages(
        &self,
        principal: &Principal,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<IdentityPoolUsage>, CoreError> {
        require_developer(principal)?;
        let limit = match max_results {
            Some(0) => return Err(CoreError::invalid("MaxResults", "must be at least 1")),
            Some(n) => n.min(MAX_QUERY_LIMIT),
            None => MAX_QUERY_LIMIT,
        };
        let page = page_after(next_token, limit)?;
        let _ = self.flush_usage().await;
        let pools = self.store.identity_pools(&page).await?;
        let pools = page.finish(pools, |p| Cursor::Key(p.id.clone()));
        let mut usages = Vec::with_capacity(pools.items.len());
        for pool in &pools.items {
            usages.push(self.store.identity_pool_usage(&pool.id).await?);
        }
        Ok(Page { items: usages, next: pools.next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cognito_ids_have_a_region_and_lowercase_hex() {
        assert!(validate_cognito_id("IdentityId", "us-east-1:2f0c5e4e-6b4b-4a0e-9a53-1e2d3c4b5a69").is_ok());
        assert!(validate_cognito_id("IdentityId", "us-east-1:ABC").is_err());
        assert!(validate_cognito_id("IdentityId", "nocolon").is_err());
        assert!(validate_cognito_id("IdentityId", ":abc").is_err());
        assert!(validate_cognito_id("IdentityId", &format!("us-east-1:{}", "a".repeat(50))).is_err());
    }

    #[test]
    fn callers_are_checked_per_operation() {
        let own = Principal::CognitoIdentity {
            identity_id: "r:1".into(),
            pool_id: "r:p".into(),
            service_sid: Sid::new(SidKind::Service),
            expires_at: 0,
        };
        assert!(check_callers(&Principal::Root, Callers::Developer, "", "").is_ok());
        assert!(check_callers(&Principal::Root, Callers::OwnIdentity, "r:p", "r:1").is_err());
        assert!(check_callers(&own, Callers::Developer, "r:p", "r:1").is_err());
        assert!(check_callers(&own, Callers::OwnIdentity, "r:p", "r:1").is_ok());
        assert!(check_callers(&own, Callers::DeveloperOrOwnIdentity, "r:p", "r:2").is_err());
        assert!(check_callers(&own, Callers::DeveloperOrOwnIdentity, "r:q", "r:1").is_err());
    }
}
