//! Twilio Proxy's records, kept as objects of the `proxy` service so the change log carries
//! every change (the native API watches them like any other object): Proxy services in the
//! `services` Map keyed by SID, with their unique names claimed in `service_names`; each
//! service's pools of proxy identifiers (phone numbers, short codes) in `<KS>/phone_numbers` and
//! `<KS>/short_codes` keyed by SID, each identifier held by one service at a time through its
//! claim (`numbers`, `short_codes`, keyed by the identifier) and known by its SID for good
//! (`number_sids`, `short_code_sids`).

use super::{Engine, require_admin, unexpected};
use crate::auth::Principal;
use crate::error::{CoreError, NotFoundKind};
use crate::model::{Item, ObjectKind};
use crate::page::{Page, PageRequest};
use crate::sid::{Sid, SidKind};
use crate::store::{Mutation, ObjectWrite, Outcome};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// The service holding the Proxy face's records.
pub const PROXY_SERVICE: &str = "proxy";
const SERVICES: &str = "services";
const SERVICE_NAMES: &str = "service_names";
/// A service's pools of proxy identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    PhoneNumbers,
    ShortCodes,
}

impl Pool {
    fn map(self, service: &Sid) -> String {
        match self {
            Pool::PhoneNumbers => format!("{service}/phone_numbers"),
            Pool::ShortCodes => format!("{service}/short_codes"),
        }
    }

    /// Who holds each identifier, keyed by the identifier.
    fn claims(self) -> &'static str {
        match self {
            Pool::PhoneNumbers => "numbers",
            Pool::ShortCodes => "short_codes",
        }
    }

    /// The identifier of each SID ever given out.
    fn sids(self) -> &'static str {
        match self {
            Pool::PhoneNumbers => "number_sids",
            Pool::ShortCodes => "short_code_sids",
        }
    }

    fn sid_kind(self) -> SidKind {
        match self {
            Pool::PhoneNumbers => SidKind::PhoneNumber,
            Pool::ShortCodes => SidKind::ShortCode,
        }
    }

    /// The request field naming the identifier.
    pub fn field(self) -> &'static str {
        match self {
            Pool::PhoneNumbers => "PhoneNumber",
            Pool::ShortCodes => "ShortCode",
        }
    }

    fn not_found(self, id: &str) -> CoreError {
        match self {
            Pool::PhoneNumbers => CoreError::not_found(NotFoundKind::PhoneNumber, id),
            Pool::ShortCodes => CoreError::not_found(NotFoundKind::ShortCode, id),
        }
    }

    /// E.164 numbers (`+`, then 2 to 15 digits, the first not 0); short codes of 3 to 8 digits.
    fn check(self, value: &str) -> Result<(), CoreError> {
        let ok = match self {
            Pool::PhoneNumbers => {
                let digits = value.strip_prefix('+').unwrap_or_default();
                (2..=15).contains(&digits.len())
                    && digits.chars().all(|c| c.is_ascii_digit())
                    && !digits.starts_with('0')
            }
            Pool::ShortCodes => (3..=8).contains(&value.len()) && value.chars().all(|c| c.is_ascii_digit()),
        };
        let shape = match self {
            Pool::PhoneNumbers => "an E.164 number",
            Pool::ShortCodes => "a short code of 3 to 8 digits",
        };
        if ok { Ok(()) } else { Err(CoreError::invalid(self.field(), format!("'{value}' is not {shape}"))) }
    }

    fn sid_prefix(self) -> &'static str {
        self.sid_kind().prefix()
    }
}

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
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
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
    serde_json::from_value(item.data.clone())
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
        let mut service = ProxyService {
            sid: Sid::new(SidKind::ProxyService),
            unique_name: name.clone(),
            chat_instance_sid: None,
            callback_url: None,
            default_ttl: 0,
            number_selection_behavior: "prefer-sticky".into(),
            geo_match_level: "country".into(),
            intercept_callback_url: None,
            out_of_session_callback_url: None,
            date_created: now,
            date_updated: now,
        };
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

/// An identifier in one of a service's pools: a phone number (`PN…`) or a short code (`SC…`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyNumber {
    pub sid: Sid,
    pub service_sid: Sid,
    /// The E.164 number or the short code's digits.
    pub number: String,
    pub is_reserved: bool,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

impl ProxyNumber {
    /// The ISO country of the number's calling code, for the codes this server knows.
    pub fn iso_country(&self) -> Option<&'static str> {
        const CODES: &[(&str, &str)] = &[
            ("+1", "US"),
            ("+44", "GB"),
            ("+33", "FR"),
            ("+49", "DE"),
            ("+34", "ES"),
            ("+39", "IT"),
            ("+31", "NL"),
            ("+61", "AU"),
            ("+81", "JP"),
            ("+55", "BR"),
            ("+91", "IN"),
        ];
        CODES.iter().find(|(code, _)| self.number.starts_with(code)).map(|(_, iso)| *iso)
    }
}

/// The claim of an identifier no service holds: it keeps its SID.
fn free(pool: Pool, number: &ProxyNumber) -> ObjectWrite {
    let data = serde_json::json!({ "sid": number.sid, "service_sid": null });
    ObjectWrite::Put { map: pool.claims().into(), key: number.number.clone(), data }
}

fn decode_number(item: &Item) -> Result<ProxyNumber, CoreError> {
    serde_json::from_value(item.data.clone())
        .map_err(|e| CoreError::Store(crate::store::StoreError::Backend(format!("a pool number is unreadable: {e}"))))
}

impl Engine {
    /// Adds an identifier to a pool: by its value, or by the SID it was given before; each is
    /// held by one service at a time.
    pub async fn add_proxy_number(
        &self,
        principal: &Principal,
        pool: Pool,
        service: &str,
        value: Option<&str>,
        sid: Option<&str>,
        is_reserved: bool,
    ) -> Result<ProxyNumber, CoreError> {
        let (svc, _) = self.proxy_service_at(principal, service).await?;
        let field = pool.field();
        let bad_sid = |given: &str| CoreError::invalid("Sid", format!("'{given}' is not a {}… SID", pool.sid_prefix()));
        let number = match (value, sid) {
            (Some(n), _) => {
                pool.check(n)?;
                n.to_owned()
            }
            (None, Some(given)) => {
                Sid::parse_kind(given, pool.sid_kind()).map_err(|_| bad_sid(given))?;
                let known = self.proxy_entry(pool.sids(), given).await?;
                known.and_then(|k| k.data["number"].as_str().map(str::to_owned)).ok_or_else(|| {
                    CoreError::invalid("Sid", format!("{given} is not one this server knows; send {field}"))
                })?
            }
            (None, None) => return Err(CoreError::invalid(field, "is required (or Sid)")),
        };
        // An identifier keeps its SID for good; its claim names the service holding it, if any.
        let claim = self.proxy_entry(pool.claims(), &number).await?;
        let taken = || CoreError::ResourceConflict(format!("{number} belongs to a Proxy service already"));
        if claim.as_ref().is_some_and(|c| !c.data["service_sid"].is_null()) {
            return Err(taken());
        }
        let known = claim.as_ref().and_then(|c| c.data["sid"].as_str().map(str::to_owned));
        let sid = match (known, sid) {
            (Some(known), Some(given)) if known != given => {
                return Err(CoreError::invalid("Sid", format!("{given} is not the SID of {number}")));
            }
            (Some(known), _) => Sid::parse_kind(&known, pool.sid_kind()).map_err(CoreError::InvalidSid)?,
            (None, Some(given)) => Sid::parse_kind(given, pool.sid_kind()).map_err(|_| bad_sid(given))?,
            (None, None) => Sid::new(pool.sid_kind()),
        };
        let now = Timestamp::now();
        let record = ProxyNumber {
            sid: sid.clone(),
            service_sid: svc.sid.clone(),
            number: number.clone(),
            is_reserved,
            date_created: now,
            date_updated: now,
        };
        let data = serde_json::to_value(&record).map_err(|e| CoreError::invalid(field, e.to_string()))?;
        let held = serde_json::json!({ "sid": sid, "service_sid": svc.sid });
        let claim_write = match &claim {
            Some(c) => ObjectWrite::Replace {
                map: pool.claims().into(),
                key: number.clone(),
                data: held,
                revision: c.revision,
            },
            None => ObjectWrite::Create { map: pool.claims().into(), key: number.clone(), data: held },
        };
        let writes = vec![
            claim_write,
            ObjectWrite::Put {
                map: pool.sids().into(),
                key: sid.to_string(),
                data: serde_json::json!({ "number": number }),
            },
            ObjectWrite::Create { map: pool.map(&svc.sid), key: sid.to_string(), data },
        ];
        // Another request claimed it first.
        self.proxy_batch(writes).await.map_err(|e| match e {
            CoreError::AlreadyExists { .. } | CoreError::RevisionMismatch { .. } => taken(),
            other => other,
        })?;
        Ok(record)
    }

    async fn proxy_number_at(
        &self,
        principal: &Principal,
        pool: Pool,
        service: &str,
        id: &str,
    ) -> Result<(ProxyNumber, u64), CoreError> {
        let (svc, _) = self.proxy_service_at(principal, service).await?;
        // By SID, or by the identifier itself.
        let sid = if Sid::parse_kind(id, pool.sid_kind()).is_ok() {
            id.to_owned()
        } else {
            let claim = self.proxy_entry(pool.claims(), id).await?.ok_or_else(|| pool.not_found(id))?;
            claim.data["sid"].as_str().ok_or_else(|| pool.not_found(id))?.to_owned()
        };
        let item = self.proxy_entry(&pool.map(&svc.sid), &sid).await?.ok_or_else(|| pool.not_found(id))?;
        Ok((decode_number(&item)?, item.revision))
    }

    pub async fn proxy_number(
        &self,
        principal: &Principal,
        pool: Pool,
        service: &str,
        id: &str,
    ) -> Result<ProxyNumber, CoreError> {
        Ok(self.proxy_number_at(principal, pool, service, id).await?.0)
    }

    /// Updates an identifier of a pool: only whether it is reserved.
    pub async fn update_proxy_number(
        &self,
        principal: &Principal,
        pool: Pool,
        service: &str,
        id: &str,
        is_reserved: Option<bool>,
    ) -> Result<ProxyNumber, CoreError> {
        let (mut number, revision) = self.proxy_number_at(principal, pool, service, id).await?;
        if let Some(reserved) = is_reserved {
            number.is_reserved = reserved;
            number.date_updated = Timestamp::now();
            let data = serde_json::to_value(&number).map_err(|e| CoreError::invalid("IsReserved", e.to_string()))?;
            let key = number.sid.to_string();
            self.proxy_batch(vec![ObjectWrite::Replace { map: pool.map(&number.service_sid), key, data, revision }])
                .await?;
        }
        Ok(number)
    }

    /// Takes an identifier out of its pool, free for another service.
    pub async fn remove_proxy_number(
        &self,
        principal: &Principal,
        pool: Pool,
        service: &str,
        id: &str,
    ) -> Result<(), CoreError> {
        let (number, _) = self.proxy_number_at(principal, pool, service, id).await?;
        self.proxy_batch(vec![
            ObjectWrite::Remove { map: pool.map(&number.service_sid), key: number.sid.to_string() },
            free(pool, &number),
        ])
        .await
    }

    /// A page of a pool, in the order its identifiers were added.
    pub async fn proxy_numbers(
        &self,
        principal: &Principal,
        pool: Pool,
        service: &str,
        page: PageRequest,
    ) -> Result<Page<ProxyNumber>, CoreError> {
        let (svc, _) = self.proxy_service_at(principal, service).await?;
        let got = self.system_page(PROXY_SERVICE, ObjectKind::Map, &pool.map(&svc.sid), page).await?;
        let items = got.items.iter().map(decode_number).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next: got.next })
    }
}

/// A taken unique name, in the words of the field it came from.
fn name_taken(e: CoreError) -> CoreError {
    match e {
        CoreError::AlreadyExists { what: "entry", name } => CoreError::AlreadyExists { what: "service", name },
        other => other,
    }
}
