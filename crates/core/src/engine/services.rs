//! Services.

use super::*;

/// The unique name of the service that exists for every account.
pub const DEFAULT_SERVICE: &str = "default";
/// The service that holds the Matrix face's data (account data, presence, rooms), so the
/// native API can read and watch it like any other.
pub const MATRIX_SERVICE: &str = "matrix";

impl Engine {
    // ----- services -------------------------------------------------------------------------

    pub async fn create_service(&self, principal: &Principal, spec: ServiceSpec) -> Result<Service, CoreError> {
        self.create_service_as(principal, Sid::new(SidKind::Service), spec).await
    }

    /// Creates a service under `sid` (a new one, or an exported one being restored).
    pub(super) async fn create_service_as(
        &self,
        principal: &Principal,
        sid: Sid,
        spec: ServiceSpec,
    ) -> Result<Service, CoreError> {
        require_admin(principal)?;
        if let Some(n) = &spec.unique_name {
            self.validate_unique_name(n)?;
        }
        if let Some(n) = &spec.friendly_name {
            check_len("friendly_name", n, 255)?;
        }
        validate_settings(&spec.settings)?;
        let m = Mutation::CreateService {
            sid,
            unique_name: spec.unique_name,
            friendly_name: spec.friendly_name,
            acl_enabled: spec.acl_enabled,
            settings: spec.settings,
        };
        let outcome = self.store.execute(Actor::SYSTEM, m).await?.outcome;
        self.service_cache.clear();
        match outcome {
            Outcome::Service(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    pub async fn update_service(
        &self,
        principal: &Principal,
        service: &str,
        patch: ServicePatch,
    ) -> Result<Service, CoreError> {
        require_admin(principal)?;
        if let Some(Some(n)) = &patch.unique_name {
            self.validate_unique_name(n)?;
        }
        if let Some(Some(n)) = &patch.friendly_name {
            check_len("friendly_name", n, 255)?;
        }
        let svc = self.resolve_service_ref(service).await?;
        let mut merged = svc.settings.clone();
        patch.settings.clone().apply(&mut merged);
        validate_settings(&merged)?;
        let m = Mutation::UpdateService {
            service: svc.sid,
            unique_name: patch.unique_name,
            friendly_name: patch.friendly_name,
            acl_enabled: patch.acl_enabled,
            settings: patch.settings,
        };
        let outcome = self.store.execute(Actor::SYSTEM, m).await?.outcome;
        self.service_cache.clear();
        match outcome {
            Outcome::Service(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    pub async fn remove_service(&self, principal: &Principal, service: &str) -> Result<(), CoreError> {
        require_admin(principal)?;
        let svc = self.resolve_service_ref(service).await?;
        self.store.execute(Actor::SYSTEM, Mutation::RemoveService { service: svc.sid.clone() }).await?;
        self.published.recent.forget(&svc.sid);
        self.service_cache.clear();
        Ok(())
    }

    pub async fn service(&self, principal: &Principal, service: &str) -> Result<Service, CoreError> {
        let svc = self.resolve_service_ref(service).await?;
        check_service_reach(principal, &svc)?;
        Ok(svc)
    }

    pub async fn services(&self, principal: &Principal, page: PageRequest) -> Result<Page<Service>, CoreError> {
        require_admin(principal)?;
        let rows = self.store.services(&page).await?;
        Ok(page.finish(rows, |s| Cursor::Key(s.sid.to_string())))
    }

    /// Finds a service by SID or unique name. Lookups are cached briefly: every request
    /// resolves its service, and services change rarely (local changes invalidate at once).
    pub async fn resolve_service_ref(&self, service: &str) -> Result<Service, CoreError> {
        if let Some(found) = self.service_cache.get(service) {
            return Ok(found);
        }
        let r = ObjectRef::parse(service, SidKind::Service)?;
        let found = match self.store.service(&r).await? {
            Some(found) => found,
            None if service == DEFAULT_SERVICE => self.create_named_service(DEFAULT_SERVICE, "Default Service").await?,
            None if service == MATRIX_SERVICE => self.create_named_service(MATRIX_SERVICE, "Matrix").await?,
            None if service == super::PROXY_SERVICE => self.create_named_service(super::PROXY_SERVICE, "Proxy").await?,
            None => return Err(CoreError::not_found(NotFoundKind::Service, service)),
        };
        self.service_cache.put(service, &found);
        Ok(found)
    }

    /// The services that exist for every account (Twilio's `default`, the Matrix face's
    /// `matrix`, the Proxy face's `proxy`) come into being the first time they are named.
    async fn create_named_service(&self, name: &str, friendly_name: &str) -> Result<Service, CoreError> {
        let m = Mutation::CreateService {
            sid: Sid::new(SidKind::Service),
            unique_name: Some(name.to_owned()),
            friendly_name: Some(friendly_name.to_owned()),
            acl_enabled: false,
            settings: ServiceSettings::default(),
        };
        match self.store.execute(Actor::SYSTEM, m).await {
            Ok(applied) => match applied.outcome {
                Outcome::Service(s) => Ok(s),
                other => Err(unexpected(other)),
            },
            // Another request (or node) created it first.
            Err(CoreError::AlreadyExists { .. }) => self
                .store
                .service(&ObjectRef::UniqueName(name.to_owned()))
                .await?
                .ok_or_else(|| CoreError::not_found(NotFoundKind::Service, name)),
            Err(e) => Err(e),
        }
    }
}

/// Short-lived service lookups by the string a request named them with. Only names of services
/// found are kept, at most `MAX` of them, so a fast hash serves (SipHash cost about 250
/// instructions a lookup, on the path of every write).
#[derive(Default)]
pub(super) struct ServiceCache {
    entries:
        std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Service), foldhash::fast::RandomState>>,
}

impl ServiceCache {
    /// Long enough to spare the store a read per request, short enough that a change made
    /// through another node is seen promptly.
    const TTL: Duration = Duration::from_secs(1);
    const MAX: usize = 10_000;

    fn get(&self, key: &str) -> Option<Service> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).filter(|(at, _)| at.elapsed() < Self::TTL).map(|(_, s)| s.clone())
    }

    fn put(&self, key: &str, service: &Service) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX {
            map.retain(|_, (at, _)| at.elapsed() < Self::TTL);
            if map.len() >= Self::MAX {
                map.clear();
            }
        }
        map.insert(key.to_owned(), (std::time::Instant::now(), service.clone()));
    }

    pub(super) fn clear(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Checks settings the way Twilio does: an absolute http(s) webhook URL and a debouncing window
/// of 1 to 30 seconds.
fn validate_settings(s: &ServiceSettings) -> Result<(), CoreError> {
    if let Some(url) = &s.webhook_url {
        check_len("webhook_url", url, 2048)?;
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            return Err(CoreError::invalid(
                "webhook_url",
                format!("must be an absolute http or https URL, got '{url}'"),
            ));
        }
    }
    let w = s.reachability_debouncing_window;
    if !(1000..=30000).contains(&w) {
        return Err(CoreError::invalid(
            "reachability_debouncing_window",
            format!("must be between 1000 and 30000 milliseconds, got {w}"),
        ));
    }
    Ok(())
}
