//! Participants (`KP…`) of proxy sessions: kept inside their session's record, each reaching its
//! partner through a proxy identifier of the service's pools.

use super::change::{Change, OnConflict};
use super::interactions::ProxyJob;
use super::pools::{Pool, ProxyNumber, decode_number};
use super::sessions::{ATTEMPTS, ProxySession, busy, closed, lost_race};
use super::{PROXY_SERVICE, ProxyService};
use crate::auth::Principal;
use crate::engine::Engine;
use crate::error::{CoreError, NotFoundKind, ProxyRule};
use crate::model::ObjectKind;
use crate::sid::{Sid, SidKind};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Participants of a session, at most (Twilio's limit).
pub const MAX_PARTICIPANTS: usize = 2;
const MAX_IDENTIFIER_CHARS: usize = 191;
const MAX_FRIENDLY_NAME_CHARS: usize = 255;

/// A participant of a session; removing one keeps it, marked deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyParticipant {
    pub sid: Sid,
    pub identifier: String,
    pub friendly_name: Option<String>,
    /// The pool identifier this participant reaches its partner at.
    pub proxy_identifier: String,
    pub proxy_identifier_sid: Sid,
    pub date_deleted: Option<Timestamp>,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

impl ProxyParticipant {
    pub fn active(&self) -> bool {
        self.date_deleted.is_none()
    }

    pub(super) fn pair(&self) -> String {
        pair_key(&self.identifier, &self.proxy_identifier)
    }
}

pub(super) fn pair_key(identifier: &str, proxy: &str) -> String {
    format!("{identifier}\t{proxy}")
}

/// A participant to add: the fields of Participant create, or one element of a session create's
/// `Participants`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParticipantSpec {
    pub identifier: String,
    pub friendly_name: Option<String>,
    pub proxy_identifier: Option<String>,
    pub proxy_identifier_sid: Option<String>,
}

impl ParticipantSpec {
    /// One element of `Participants`: a JSON object whose keys the helper libraries pass on as
    /// the caller wrote them (`Identifier`, `identifier`, `proxy_identifier`, …).
    pub fn from_json(v: &Value) -> Result<Self, CoreError> {
        let Some(fields) = v.as_object() else {
            return Err(CoreError::invalid("Participants", "each must be a JSON object"));
        };
        let mut spec = ParticipantSpec::default();
        let mut identifier = None;
        for (name, value) in fields {
            let text = || {
                value
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| CoreError::invalid("Participants", format!("'{name}' must be a string")))
            };
            let plain: String = name.chars().filter(|c| *c != '_').collect::<String>().to_ascii_lowercase();
            match plain.as_str() {
                "identifier" => identifier = Some(text()?),
                "friendlyname" => spec.friendly_name = Some(text()?),
                "proxyidentifier" => spec.proxy_identifier = Some(text()?),
                "proxyidentifiersid" => spec.proxy_identifier_sid = Some(text()?),
                _ => {
                    return Err(CoreError::invalid(
                        "Participants",
                        format!(
                            "unknown field '{name}': a participant has Identifier, FriendlyName, ProxyIdentifier \
                             and ProxyIdentifierSid"
                        ),
                    ));
                }
            }
        }
        spec.identifier = identifier.ok_or_else(|| CoreError::invalid("Participants", "each needs an Identifier"))?;
        spec.check()?;
        Ok(spec)
    }

    pub fn check(&self) -> Result<(), CoreError> {
        let n = self.identifier.chars().count();
        if n == 0 || n > MAX_IDENTIFIER_CHARS || self.identifier.chars().any(|c| c.is_control() || c == '\t') {
            return Err(CoreError::invalid(
                "Identifier",
                format!("must be 1 to {MAX_IDENTIFIER_CHARS} characters with no control characters"),
            ));
        }
        if self.identifier.strip_prefix("app:").is_some_and(str::is_empty) {
            return Err(CoreError::invalid("Identifier", "'app:' must be followed by an identity"));
        }
        if let Some(name) = &self.friendly_name
            && name.chars().count() > MAX_FRIENDLY_NAME_CHARS
        {
            return Err(CoreError::invalid(
                "FriendlyName",
                format!("must be at most {MAX_FRIENDLY_NAME_CHARS} characters"),
            ));
        }
        if let Some(sid) = &self.proxy_identifier_sid
            && Sid::parse_kind(sid, SidKind::PhoneNumber).is_err()
            && Sid::parse_kind(sid, SidKind::ShortCode).is_err()
        {
            return Err(CoreError::invalid("ProxyIdentifierSid", format!("'{sid}' is not a PN… or SC… SID")));
        }
        if self.proxy_identifier.as_deref() == Some("") {
            return Err(CoreError::invalid("ProxyIdentifier", "may not be empty"));
        }
        Ok(())
    }
}

impl Engine {
    /// Participant create.
    pub async fn add_proxy_participant(
        &self,
        principal: &Principal,
        service: &str,
        session: &str,
        spec: ParticipantSpec,
        fail_on_participant_conflict: bool,
    ) -> Result<ProxyParticipant, CoreError> {
        spec.check()?;
        let mut raced = false;
        for _ in 0..ATTEMPTS {
            let (svc, current, revision) = self.proxy_session_at(principal, service, session).await?;
            if !current.status.active() {
                return Err(closed(&current));
            }
            let mut change = Change::new(&svc.sid);
            let on_conflict =
                if fail_on_participant_conflict { OnConflict::Refuse { raced } } else { OnConflict::Alert(80802) };
            let p = self.new_participant(&svc, &mut change, &current, &spec, on_conflict).await?;
            let mut next = current.clone();
            next.participants.push(p.clone());
            next.date_updated = p.date_created;
            change.put_session(&next, Some(revision))?;
            let writes = change.finish(self).await?;
            match self.proxy_batch(writes).await {
                Ok(()) => return Ok(p),
                Err(e) if lost_race(&e) => raced = true,
                Err(e) => return Err(e),
            }
        }
        Err(busy())
    }

    /// Participant delete: kept in the session, marked deleted, its pair freed.
    pub async fn remove_proxy_participant(
        &self,
        principal: &Principal,
        service: &str,
        session: &str,
        participant: &str,
    ) -> Result<ProxyParticipant, CoreError> {
        for _ in 0..ATTEMPTS {
            let (svc, current, revision) = self.proxy_session_at(principal, service, session).await?;
            let found = current
                .participant(participant)
                .cloned()
                .ok_or_else(|| CoreError::not_found(NotFoundKind::ProxyParticipant, participant))?;
            if !found.active() {
                return Ok(found);
            }
            let now = Timestamp::now();
            let mut change = Change::new(&svc.sid);
            if current.status.active() {
                change.deactivate(self, &current.sid, &found).await?;
            }
            let mut next = current.clone();
            let mut removed = found.clone();
            removed.date_deleted = Some(now);
            removed.date_updated = now;
            for p in &mut next.participants {
                if p.sid == removed.sid {
                    *p = removed.clone();
                }
            }
            next.date_updated = now;
            change.put_session(&next, Some(revision))?;
            let writes = change.finish(self).await?;
            match self.proxy_batch(writes).await {
                Ok(()) => return Ok(removed),
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Err(busy())
    }

    /// A participant chosen for `session`: its proxy identifier as asked for, or picked from the
    /// pool so that its pair is not active elsewhere; its pair made active.
    pub(super) async fn new_participant(
        &self,
        svc: &ProxyService,
        change: &mut Change,
        session: &ProxySession,
        spec: &ParticipantSpec,
        on_conflict: OnConflict,
    ) -> Result<ProxyParticipant, CoreError> {
        if session.active_participants().count() >= MAX_PARTICIPANTS {
            return Err(CoreError::Proxy {
                rule: ProxyRule::TooManyParticipants,
                message: format!(
                    "Identifier: session {} has {MAX_PARTICIPANTS} participants already; a session has at most \
                     {MAX_PARTICIPANTS}",
                    session.sid
                ),
            });
        }
        // A participant once removed cannot come back.
        if session.participants.iter().any(|p| p.identifier == spec.identifier) {
            return Err(CoreError::Proxy {
                rule: ProxyRule::AlreadyParticipant,
                message: format!("{} is already a participant of session {}", spec.identifier, session.sid),
            });
        }
        let number = match (&spec.proxy_identifier, &spec.proxy_identifier_sid) {
            (None, None) => self.pick_number(svc, change, session, &spec.identifier).await?,
            (given, sid) => {
                let number = self.pool_number(svc, given.as_deref(), sid.as_deref()).await?;
                // An identifier asked for by name is never shared.
                let others = change.others(self, &pair_key(&spec.identifier, &number.number), &session.sid).await?;
                if let Some(other) = others.last() {
                    return Err(CoreError::Proxy {
                        rule: ProxyRule::IdentifierInUse,
                        message: format!(
                            "{} is already reached through {} in session {other}",
                            spec.identifier, number.number
                        ),
                    });
                }
                number
            }
        };
        let now = Timestamp::now();
        let p = ProxyParticipant {
            sid: Sid::new(SidKind::ProxyParticipant),
            identifier: spec.identifier.clone(),
            friendly_name: spec.friendly_name.clone(),
            proxy_identifier: number.number.clone(),
            proxy_identifier_sid: number.sid.clone(),
            date_deleted: None,
            date_created: now,
            date_updated: now,
        };
        if session.status.active() {
            change.activate(self, &session.sid, &p, on_conflict).await?;
        }
        if let Some(identity) = p.identifier.strip_prefix("app:") {
            change.job(ProxyJob::OpenInbox { service_sid: svc.sid.clone(), identity: identity.to_owned() });
        }
        Ok(p)
    }

    /// A number of the service's pools named by value and/or SID.
    async fn pool_number(
        &self,
        svc: &ProxyService,
        value: Option<&str>,
        sid: Option<&str>,
    ) -> Result<ProxyNumber, CoreError> {
        let not_in_service = |what: &str| CoreError::Proxy {
            rule: ProxyRule::NotInService,
            message: format!("{what} is not a proxy identifier of service {}", svc.sid),
        };
        let mut found = None;
        for pool in [Pool::PhoneNumbers, Pool::ShortCodes] {
            let by_sid = match (sid, value) {
                (Some(s), _) => Some(s.to_owned()),
                (None, Some(v)) => {
                    self.proxy_entry(pool.claims(), v).await?.and_then(|c| c.data["sid"].as_str().map(str::to_owned))
                }
                (None, None) => None,
            };
            if let Some(key) = by_sid
                && let Some(item) = self.proxy_entry(&pool.map(&svc.sid), &key).await?
            {
                found = Some(decode_number(&item)?);
                break;
            }
        }
        let number = found.ok_or_else(|| not_in_service(value.or(sid).unwrap_or_default()))?;
        if let (Some(v), Some(s)) = (value, sid)
            && number.number != v
        {
            return Err(CoreError::invalid("ProxyIdentifier", format!("{v} is not the identifier of {s}")));
        }
        Ok(number)
    }

    /// Picks an unreserved phone number of the pool whose pair with `identifier` is free, the
    /// least used first; when every one is taken, refuses or shares the least used one.
    async fn pick_number(
        &self,
        svc: &ProxyService,
        change: &mut Change,
        session: &ProxySession,
        identifier: &str,
    ) -> Result<ProxyNumber, CoreError> {
        let map = Pool::PhoneNumbers.map(&svc.sid);
        let mut numbers: Vec<ProxyNumber> = self
            .system_items(PROXY_SERVICE, ObjectKind::Map, &map)
            .await?
            .iter()
            .map(decode_number)
            .collect::<Result<Vec<_>, _>>()?;
        numbers.retain(|n| !n.is_reserved);
        // Numbers already given to this session's other participants count as used.
        for n in &mut numbers {
            n.in_use += session.active_participants().filter(|p| p.proxy_identifier_sid == n.sid).count() as u64;
        }
        numbers.sort_by_key(|n| n.in_use);
        if numbers.is_empty() {
            return Err(CoreError::Proxy {
                rule: ProxyRule::NoProxyAvailable,
                message: format!("service {} has no unreserved phone number to give {identifier}", svc.sid),
            });
        }
        for n in &numbers {
            if change.others(self, &pair_key(identifier, &n.number), &session.sid).await?.is_empty() {
                return Ok(n.clone());
            }
        }
        // Every pair is taken: the conflict is refused or reported when the pair is made active.
        Ok(numbers.swap_remove(0))
    }
}
