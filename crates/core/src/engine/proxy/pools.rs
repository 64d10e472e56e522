//! A service's pools of proxy identifiers: phone numbers (`PN…`) and short codes (`SC…`), each
//! held by one service at a time through its claim and known by its SID for good.

use super::PROXY_SERVICE;
use crate::auth::Principal;
use crate::engine::Engine;
use crate::error::{CoreError, NotFoundKind};
use crate::model::{Item, ObjectKind};
use crate::page::{Page, PageRequest};
use crate::sid::{Sid, SidKind};
use crate::store::ObjectWrite;
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// A service's pools of proxy identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    PhoneNumbers,
    ShortCodes,
}

impl Pool {
    pub(super) fn map(self, service: &Sid) -> String {
        match self {
            Pool::PhoneNumbers => format!("{service}/phone_numbers"),
            Pool::ShortCodes => format!("{service}/short_codes"),
        }
    }

    /// Who holds each identifier, keyed by the identifier.
    pub(super) fn claims(self) -> &'static str {
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

    pub(super) fn sid_kind(self) -> SidKind {
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

    pub(super) fn not_found(self, id: &str) -> CoreError {
        match self {
            Pool::PhoneNumbers => CoreError::not_found(NotFoundKind::PhoneNumber, id),
            Pool::ShortCodes => CoreError::not_found(NotFoundKind::ShortCode, id),
        }
    }

    /// E.164 numbers (`+`, then 2 to 15 digits, the first not 0); short codes of 3 to 8 digits.
    pub(super) fn check(self, value: &str) -> Result<(), CoreError> {
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

/// An identifier in one of a service's pools: a phone number (`PN…`) or a short code (`SC…`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyNumber {
    pub sid: Sid,
    pub service_sid: Sid,
    /// The E.164 number or the short code's digits.
    pub number: String,
    pub is_reserved: bool,
    /// Active participant pairs that reach their partner through it.
    #[serde(default)]
    pub in_use: u64,
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
pub(super) fn free(pool: Pool, number: &ProxyNumber) -> ObjectWrite {
    let data = serde_json::json!({ "sid": number.sid, "service_sid": null });
    ObjectWrite::Put { map: pool.claims().into(), key: number.number.clone(), data }
}

pub(super) fn decode_number(item: &Item) -> Result<ProxyNumber, CoreError> {
    serde::Deserialize::deserialize(&*item.data)
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
            in_use: 0,
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
