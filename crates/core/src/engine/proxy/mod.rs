//! Twilio Proxy's records, kept as objects of the `proxy` service so the change log carries
//! every change (the native API watches them like any other object): Proxy services in the
//! `services` Map keyed by SID, with their unique names claimed in `service_names`; each
//! service's pools of proxy identifiers (phone numbers, short codes) in `<KS>/phone_numbers` and
//! `<KS>/short_codes` keyed by SID, each identifier held by one service at a time through its
//! claim (`numbers`, `short_codes`, keyed by the identifier) and known by its SID for good
//! (`number_sids`, `short_code_sids`).

mod change;
mod interactions;
mod participants;
mod pools;
mod sessions;

pub use interactions::{
    InboundMessage, InboundOutcome, OUTBOX, ProxyAlert, ProxyInteraction, ProxyJob, proxy_alerts_list,
};
pub use participants::{ParticipantSpec, ProxyParticipant};
pub use pools::{Pool, ProxyNumber};
pub use sessions::{MODES, ProxySession, SessionCreate, SessionStatus, SessionUpdate};

use super::{Engine, require_admin, unexpected};
use crate::auth::Principal;
use crate::error::{CoreError, NotFoundKind};
use crate::model::{Item, ObjectKind};
use crate::page::{Page, PageRequest};
use crate::sid::{Sid, SidKind};
use crate::store::{Mutation, ObjectWrite, Outcome};
use crate::timestamp::Timestamp;
use pools::{decode_number, free};
use serde::{Deserialize, Serialize};

/// The service holding the Proxy face's records.
pub const PROXY_SERVICE: &str = "proxy";
/// The Map of Proxy services, keyed by SID: a change to one is an event on it.
pub const SERVICES: &str = "services";
const SERVICE_NAMES: &str = "service_names";
/// Unique names, at most (Twilio's limit).
pub const MAX_UNIQUE_NAME_CHARS: usize = 191;
const MAX_URL_CHARS: usize = 2048;
pub const GEO_MATCH_LEVELS: &[&str] = &["area-code", "overlay", "radius", "country"];
pub const NUMBER_SELECTION_BEHAVIORS: &[&str] = &["avoid-sticky", "prefer-sticky"];

/// A Proxy service (`KS…`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyService {
    pub sid: Sid,
    pub unique_name: String,
    pub chat_instance_sid: Option<String>,
    pub callback_url: Option<String>,
    pub default_ttl: u64,
    pub number_selection_behavior: String,
    pub geo_match_level: String,
    pub intercept_callback_url: Option<String>,
    pub out_of_session_callback_url: Option<String>,
    /// Where messages to participants that are not `app:` identities go (a carrier or gateway):
    /// Ferrosync's own setting, beside Twilio's.
    #[serde(default)]
    pub delivery_callback_url: Option<String>,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

impl ProxyService {
    /// A new service named `unique_name`, every setting at Twilio's default.
    pub fn new(unique_name: String, now: Timestamp) -> Self {
        ProxyService {
            sid: Sid::new(SidKind::ProxyService),
            unique_name,
            chat_instance_sid: None,
            callback_url: None,
            default_ttl: 0,
            number_selection_behavior: "prefer-sticky".into(),
            geo_match_level: "country".into(),
            intercept_callback_url: None,
            out_of_session_callback_url: None,
            delivery_callback_url: None,
            date_created: now,
            date_updated: now,
        }
    }
}

/// What a create or update sets; `None` leaves a field as it is (an update) or at its default
/// (a create). `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default)]
pub struct ProxyServicePatch {
    pub unique_name: Option<String>,
    pub chat_instance_sid: Option<Option<String>>,
    pub callback_url: Option<Option<String>>,
    pub default_ttl: Option<u64>,
    pub number_selection_behavior: Option<String>,
    pub geo_match_level: Option<String>,
    pub intercept_callback_url: Option<Option<String>>,
    pub out_of_session_callback_url: Option<Option<String>>,
    pub delivery_callback_url: Option<Option<String>>,
}

impl ProxyServicePatch {
    fn check(&self) -> Result<(), CoreError> {
        if let Some(name) = &self.unique_name {
            let n = name.chars().count();
            if n == 0 || n > MAX_UNIQUE_NAME_CHARS {
                return Err(CoreError::invalid(
                    "UniqueName",
                    format!("must be 1 to {MAX_UNIQUE_NAME_CHARS} characters long"),
                ));
            }
        }
        if let Some(Some(sid)) = &self.chat_instance_sid {
            Sid::parse_kind(sid, SidKind::Service)
                .map_err(|_| CoreError::invalid("ChatInstanceSid", format!("'{sid}' is not an IS… SID")))?;
        }
        for (field, url) in [
            ("CallbackUrl", &self.callback_url),
            ("InterceptCallbackUrl", &self.intercept_callback_url),
            ("OutOfSessionCallbackUrl", &self.out_of_session_callback_url),
            ("DeliveryCallbackUrl", &self.delivery_callback_url),
        ] {
            if let Some(Some(url)) = url {
                check_url(field, url)?;
            }
        }
        if let Some(level) = &self.geo_match_level
            && !GEO_MATCH_LEVELS.contains(&level.as_str())
        {
            return Err(CoreError::invalid(
                "GeoMatchLevel",
                format!("must be one of {}, got '{level}'", GEO_MATCH_LEVELS.join(", ")),
            ));
        }
        if let Some(b) = &self.number_selection_behavior
            && !NUMBER_SELECTION_BEHAVIORS.contains(&b.as_str())
        {
            return Err(CoreError::invalid(
                "NumberSelectionBehavior",
                format!("must be one of {}, got '{b}'", NUMBER_SELECTION_BEHAVIORS.join(", ")),
            ));
        }
        Ok(())
    }

    fn apply(self, s: &mut ProxyService) {
        if let Some(v) = self.unique_name {
            s.unique_name = v;
        }
        if let Some(v) = self.chat_instance_sid {
            s.chat_instance_sid = v;
        }
        if let Some(v) = self.callback_url {
            s.callback_url = v;
        }
        if let Some(v) = self.default_ttl {
            s.default_ttl = v;
        }
        if let Some(v) = self.number_selection_behavior {
            s.number_selection_behavior = v;
        }
        if let Some(v) = self.geo_match_level {
            s.geo_match_level = v;
        }
        if let Some(v) = self.intercept_callback_url {
            s.intercept_callback_url = v;
        }
        if let Some(v) = self.out_of_session_callback_url {
            s.out_of_session_callback_url = v;
        }
        if let Some(v) = self.delivery_callback_url {
            s.delivery_callback_url = v;
        }
    }
}

fn check_url(field: &'static str, url: &str) -> Result<(), CoreError> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).unwrap_or_default();
    let ok = url.len() <= MAX_URL_CHARS && !rest.is_empty() && !url.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid(field, format!("must be an http(s) URL of at most {MAX_URL_CHARS} characters")))
    }
}

fn decode(item: &Item) -> Result<ProxyService, CoreError> {
    serde::Deserialize::deserialize(&*item.data)
        .map_err(|e| CoreError::Store(crate::store::StoreError::Backend(format!("a Proxy service is unreadable: {e}"))))
}

impl Engine {
    async fn proxy_batch(&self, writes: Vec<ObjectWrite>) -> Result<(), CoreError> {
        let svc = self.service(&Principal::Root, PROXY_SERVICE).await?;
        let m = Mutation::Batch { service: svc.sid.clone(), writes, txn: None };
        match self.run_logged(&svc, &Principal::Root, m).await?.value {
            Outcome::Stored => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn proxy_entry(&self, map: &str, key: &str) -> Result<Option<Item>, CoreError> {
        self.system_entry(PROXY_SERVICE, map, key).await
    }

    /// A Proxy service and the revision it was read at, by SID or unique name.
    async fn proxy_service_at(&self, principal: &Principal, id: &str) -> Result<(ProxyService, u64), CoreError> {
        require_admin(principal)?;
        let missing = || CoreError::not_found(NotFoundKind::ProxyService, id);
        let sid = if Sid::parse_kind(id, SidKind::ProxyService).is_ok() {
            id.to_owned()
        } else {
            let claim = self.proxy_entry(SERVICE_NAMES, id).await?.ok_or_else(missing)?;
            claim.data["sid"].as_str().ok_or_else(missing)?.to_owned()
        };
        let item = self.proxy_entry(SERVICES, &sid).await?.ok_or_else(missing)?;
        Ok((decode(&item)?, item.revision))
    }

    pub async fn proxy_service(&self, principal: &Principal, id: &str) -> Result<ProxyService, CoreError> {
        Ok(self.proxy_service_at(principal, id).await?.0)
    }

    /// CreateService: the unique name is claimed in the same transaction.
    pub async fn create_proxy_service(
        &self,
        principal: &Principal,
        patch: ProxyServicePatch,
    ) -> Result<ProxyService, CoreError> {
        require_admin(principal)?;
        let Some(name) = patch.unique_name.clone() else {
            return Err(CoreError::invalid("UniqueName", "is required"));
        };
        patch.check()?;
        let now = Timestamp::now();
        let mut service = ProxyService::new(name.clone(), now);
        patch.apply(&mut service);
        let data = serde_json::to_value(&service).map_err(|e| CoreError::invalid("service", e.to_string()))?;
        let claim = serde_json::json!({ "sid": service.sid });
        let writes = vec![
            ObjectWrite::Create { map: SERVICE_NAMES.into(), key: name, data: claim },
            ObjectWrite::Create { map: SERVICES.into(), key: service.sid.to_string(), data },
        ];
        self.proxy_batch(writes).await.map_err(name_taken)?;
        Ok(service)
    }

    /// UpdateService; a new unique name is claimed and the old one freed in one transaction.
    pub async fn update_proxy_service(
        &self,
        principal: &Principal,
        id: &str,
        patch: ProxyServicePatch,
    ) -> Result<ProxyService, CoreError> {
        patch.check()?;
        let (current, revision) = self.proxy_service_at(principal, id).await?;
        let mut next = current.clone();
        patch.apply(&mut next);
        next.date_updated = Timestamp::now();
        let data = serde_json::to_value(&next).map_err(|e| CoreError::invalid("service", e.to_string()))?;
        let mut writes = vec![ObjectWrite::Replace { map: SERVICES.into(), key: next.sid.to_string(), data, revision }];
        if next.unique_name != current.unique_name {
            writes.push(ObjectWrite::Remove { map: SERVICE_NAMES.into(), key: current.unique_name.clone() });
            let claim = serde_json::json!({ "sid": next.sid });
            writes.push(ObjectWrite::Create { map: SERVICE_NAMES.into(), key: next.unique_name.clone(), data: claim });
        }
        self.proxy_batch(writes).await.map_err(name_taken)?;
        Ok(next)
    }

    pub async fn remove_proxy_service(&self, principal: &Principal, id: &str) -> Result<(), CoreError> {
        let (current, _) = self.proxy_service_at(principal, id).await?;
        // Its sessions go first, each with its pairs and interactions, while the service is
        // still there to find them by.
        let sessions = sessions::sessions_map(&current.sid);
        for item in self.system_items(PROXY_SERVICE, ObjectKind::Map, &sessions).await? {
            let Some(session) = item.key else { continue };
            match self.remove_proxy_session(principal, current.sid.as_str(), &session).await {
                Ok(()) | Err(CoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let mut writes = vec![
            ObjectWrite::Remove { map: SERVICES.into(), key: current.sid.to_string() },
            ObjectWrite::Remove { map: SERVICE_NAMES.into(), key: current.unique_name.clone() },
        ];
        // Its numbers and short codes go back to being free.
        for pool in [Pool::PhoneNumbers, Pool::ShortCodes] {
            let map = pool.map(&current.sid);
            for item in self.system_items(PROXY_SERVICE, ObjectKind::Map, &map).await? {
                let number = decode_number(&item)?;
                writes.push(ObjectWrite::Remove { map: map.clone(), key: number.sid.to_string() });
                writes.push(free(pool, &number));
            }
        }
        self.proxy_batch(writes).await
    }

    /// A page of Proxy services, in the order they were made.
    pub async fn proxy_services(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<ProxyService>, CoreError> {
        require_admin(principal)?;
        let got = self.system_page(PROXY_SERVICE, ObjectKind::Map, SERVICES, page).await?;
        let items = got.items.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next: got.next })
    }
}

/// A taken unique name, in the words of the field it came from.
pub(super) fn name_taken(e: CoreError) -> CoreError {
    match e {
        CoreError::AlreadyExists { what: "entry", name } => CoreError::AlreadyExists { what: "service", name },
        other => other,
    }
}
