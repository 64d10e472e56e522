//! Proxy sessions (`KC…`) and their participants (`KP…`), as records of the `proxy` service:
//!
//! - `<KS>/sessions`: each session keyed by SID, its participants inside it (at most two), so a
//!   session and its participants change together under one revision;
//! - `<KS>/session_names`: unique-name claims;
//! - `<KS>/pairs`: the active identifier / proxy identifier pairs, keyed `identifier\tproxy`,
//!   each naming the sessions it is active in (more than one only where a conflict was allowed).
//!   Inbound messages are routed by it;
//! - `expiries`: one entry per open session keyed by its deadline, read by the expiry sweep;
//! - each pool number counts the active pairs that use it (`in_use`).

use super::change::{Change, OnConflict};
use super::interactions::ProxyJob;
use super::pools::{Pool, ProxyNumber, decode_number};
use super::{PROXY_SERVICE, ProxyService};
use crate::auth::Principal;
use crate::engine::Engine;
use crate::error::{CoreError, NotFoundKind, ProxyRule};
use crate::model::{Item, ObjectKind};
use crate::page::{Order, Page, PageRequest};
use crate::sid::{Sid, SidKind};
use crate::store::{ObjectWrite, StoreError};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const MODES: &[&str] = &["message-only", "voice-only", "voice-and-message"];
/// Participants of a session, at most (Twilio's limit).
pub const MAX_PARTICIPANTS: usize = 2;
const MAX_IDENTIFIER_CHARS: usize = 191;
const MAX_FRIENDLY_NAME_CHARS: usize = 255;
/// A session with neither Ttl nor DateExpiry still ends, as Twilio's do, 90 days after its last
/// activity.
const DEFAULT_LIFETIME_SECS: u64 = 90 * 24 * 3600;
pub(super) const EXPIRIES: &str = "expiries";
/// Tries of a change that lost a race for the records it read.
const ATTEMPTS: usize = 8;
/// The longest Ttl (a year).
pub const MAX_TTL_SECS: u64 = 31_536_000;
/// Expired sessions closed per sweep.
const SWEEP: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionStatus {
    Open,
    InProgress,
    Closed,
    Failed,
    Unknown,
}

impl SessionStatus {
    const ALL: [SessionStatus; 5] = [
        SessionStatus::Open,
        SessionStatus::InProgress,
        SessionStatus::Closed,
        SessionStatus::Failed,
        SessionStatus::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Open => "open",
            SessionStatus::InProgress => "in-progress",
            SessionStatus::Closed => "closed",
            SessionStatus::Failed => "failed",
            SessionStatus::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Result<Self, CoreError> {
        Self::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
            CoreError::invalid(
                "Status",
                format!("must be one of open, in-progress, closed, failed, unknown; got '{s}'"),
            )
        })
    }

    /// Open sessions hold their pairs and relay messages.
    pub fn active(self) -> bool {
        matches!(self, SessionStatus::Open | SessionStatus::InProgress)
    }
}

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxySession {
    pub sid: Sid,
    pub service_sid: Sid,
    pub unique_name: Option<String>,
    pub status: SessionStatus,
    pub mode: String,
    pub ttl: u64,
    pub date_expiry: Option<Timestamp>,
    pub date_started: Timestamp,
    pub date_ended: Option<Timestamp>,
    pub date_last_interaction: Option<Timestamp>,
    pub closed_reason: Option<String>,
    /// Where the Ttl counts from: the create, the re-opening or the last interaction.
    pub ttl_from: Timestamp,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    pub participants: Vec<ProxyParticipant>,
}

impl ProxySession {
    /// When the session closes by itself: at DateExpiry, else Ttl seconds after its last
    /// activity, else 90 days after it.
    pub fn deadline(&self) -> Timestamp {
        match (self.date_expiry, self.ttl) {
            (Some(at), _) => at,
            (None, 0) => self.ttl_from.plus_seconds(DEFAULT_LIFETIME_SECS),
            (None, ttl) => self.ttl_from.plus_seconds(ttl),
        }
    }

    pub(super) fn expiry_key(&self) -> Option<String> {
        self.status
            .active()
            .then(|| format!("{:013}\t{}\t{}", self.deadline().millis().max(0), self.service_sid, self.sid))
    }

    pub fn participant(&self, sid: &str) -> Option<&ProxyParticipant> {
        self.participants.iter().find(|p| p.sid.as_str() == sid)
    }

    pub fn active_participants(&self) -> impl Iterator<Item = &ProxyParticipant> {
        self.participants.iter().filter(|p| p.active())
    }

    /// The other active participant of the session.
    pub fn partner(&self, of: &Sid) -> Option<&ProxyParticipant> {
        self.active_participants().find(|p| &p.sid != of)
    }
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

/// Session create.
#[derive(Debug, Clone, Default)]
pub struct SessionCreate {
    pub unique_name: Option<String>,
    pub date_expiry: Option<Timestamp>,
    /// The service's default when not given.
    pub ttl: Option<u64>,
    pub mode: Option<String>,
    pub status: Option<String>,
    pub participants: Vec<ParticipantSpec>,
    pub fail_on_participant_conflict: bool,
}

/// Session update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SessionUpdate {
    /// `Some(None)` clears it.
    pub date_expiry: Option<Option<Timestamp>>,
    pub ttl: Option<u64>,
    pub status: Option<String>,
    pub fail_on_participant_conflict: bool,
}

pub(super) fn sessions_map(service: &Sid) -> String {
    format!("{service}/sessions")
}

fn session_names_map(service: &Sid) -> String {
    format!("{service}/session_names")
}

pub(super) fn pairs_map(service: &Sid) -> String {
    format!("{service}/pairs")
}

pub(super) fn unreadable(e: impl std::fmt::Display) -> CoreError {
    CoreError::Store(StoreError::Backend(format!("a Proxy record is unreadable: {e}")))
}

pub(super) fn decode_session(item: &Item) -> Result<ProxySession, CoreError> {
    serde_json::from_value(item.data.clone()).map_err(unreadable)
}

/// A write that lost a race with another request for a record it read.
pub(super) fn lost_race(e: &CoreError) -> bool {
    matches!(e, CoreError::RevisionMismatch { .. } | CoreError::AlreadyExists { what: "entry", .. })
}

fn check_mode(mode: &str) -> Result<(), CoreError> {
    if MODES.contains(&mode) {
        Ok(())
    } else {
        Err(CoreError::invalid("Mode", format!("must be one of {}, got '{mode}'", MODES.join(", "))))
    }
}

fn check_ttl(ttl: Option<u64>) -> Result<(), CoreError> {
    match ttl {
        Some(t) if t > MAX_TTL_SECS => {
            Err(CoreError::invalid("Ttl", format!("must be between 0 and {MAX_TTL_SECS} seconds, got {t}")))
        }
        _ => Ok(()),
    }
}

fn check_unique_name(name: &str) -> Result<(), CoreError> {
    let n = name.chars().count();
    if n == 0 || n > super::MAX_UNIQUE_NAME_CHARS {
        return Err(CoreError::invalid(
            "UniqueName",
            format!("must be 1 to {} characters long", super::MAX_UNIQUE_NAME_CHARS),
        ));
    }
    Ok(())
}

fn invalid_status(from: SessionStatus, to: SessionStatus) -> CoreError {
    CoreError::Proxy {
        rule: ProxyRule::InvalidStatus,
        message: format!(
            "a session cannot go from {} to {}: close an open or in-progress session (closed), or re-open a closed \
             one (in-progress)",
            from.as_str(),
            to.as_str()
        ),
    }
}

fn closed(session: &ProxySession) -> CoreError {
    CoreError::Proxy {
        rule: ProxyRule::SessionClosed,
        message: format!("session {} is closed and cannot be updated; re-open it with Status=in-progress", session.sid),
    }
}

impl Engine {
    /// A session of a service, by SID or unique name, and the revision it was read at.
    pub(super) async fn proxy_session_at(
        &self,
        principal: &Principal,
        service: &str,
        id: &str,
    ) -> Result<(ProxyService, ProxySession, u64), CoreError> {
        let (svc, _) = self.proxy_service_at(principal, service).await?;
        let missing = || CoreError::not_found(NotFoundKind::ProxySession, id);
        let sid = if Sid::parse_kind(id, SidKind::ProxySession).is_ok() {
            id.to_owned()
        } else {
            let claim = self.proxy_entry(&session_names_map(&svc.sid), id).await?.ok_or_else(missing)?;
            claim.data["sid"].as_str().ok_or_else(missing)?.to_owned()
        };
        let item = self.proxy_entry(&sessions_map(&svc.sid), &sid).await?.ok_or_else(missing)?;
        Ok((svc, decode_session(&item)?, item.revision))
    }

    pub async fn proxy_session(
        &self,
        principal: &Principal,
        service: &str,
        id: &str,
    ) -> Result<ProxySession, CoreError> {
        Ok(self.proxy_session_at(principal, service, id).await?.1)
    }

    /// A page of a service's sessions, oldest first.
    pub async fn proxy_sessions(
        &self,
        principal: &Principal,
        service: &str,
        page: PageRequest,
    ) -> Result<Page<ProxySession>, CoreError> {
        let (svc, _) = self.proxy_service_at(principal, service).await?;
        let got = self.system_page(PROXY_SERVICE, ObjectKind::Map, &sessions_map(&svc.sid), page).await?;
        let items = got.items.iter().map(decode_session).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next: got.next })
    }

    /// Session create, with its participants, in one transaction.
    pub async fn create_proxy_session(
        &self,
        principal: &Principal,
        service: &str,
        req: SessionCreate,
    ) -> Result<ProxySession, CoreError> {
        if let Some(name) = &req.unique_name {
            check_unique_name(name)?;
        }
        if let Some(mode) = &req.mode {
            check_mode(mode)?;
        }
        check_ttl(req.ttl)?;
        let status = match req.status.as_deref().map(SessionStatus::parse).transpose()? {
            None => SessionStatus::Open,
            Some(s @ (SessionStatus::Open | SessionStatus::InProgress)) => s,
            Some(other) => {
                return Err(CoreError::invalid(
                    "Status",
                    format!("a new session is open or in-progress, not {}", other.as_str()),
                ));
            }
        };
        if req.participants.len() > MAX_PARTICIPANTS {
            return Err(CoreError::Proxy {
                rule: ProxyRule::TooManyParticipants,
                message: format!(
                    "Participants: a session has at most {MAX_PARTICIPANTS} participants, got {}",
                    req.participants.len()
                ),
            });
        }
        for p in &req.participants {
            p.check()?;
        }
        let sid = Sid::new(SidKind::ProxySession);
        let mut raced = false;
        for _ in 0..ATTEMPTS {
            let (svc, _) = self.proxy_service_at(principal, service).await?;
            let now = Timestamp::now();
            let mut session = ProxySession {
                sid: sid.clone(),
                service_sid: svc.sid.clone(),
                unique_name: req.unique_name.clone(),
                status,
                mode: req.mode.clone().unwrap_or_else(|| "voice-and-message".into()),
                ttl: req.ttl.unwrap_or(svc.default_ttl),
                date_expiry: req.date_expiry,
                date_started: now,
                date_ended: None,
                date_last_interaction: None,
                closed_reason: None,
                ttl_from: now,
                date_created: now,
                date_updated: now,
                participants: Vec::new(),
            };
            let mut change = Change::new(&svc.sid);
            if let Some(name) = &req.unique_name {
                let claim = serde_json::json!({ "sid": sid });
                change.write(ObjectWrite::Create { map: session_names_map(&svc.sid), key: name.clone(), data: claim });
            }
            let on_conflict =
                if req.fail_on_participant_conflict { OnConflict::Refuse { raced } } else { OnConflict::Alert(80802) };
            for spec in &req.participants {
                let p = self.new_participant(&svc, &mut change, &session, spec, on_conflict).await?;
                session.participants.push(p);
            }
            change.put_session(&session, None)?;
            change.reschedule(None, Some(&session));
            let writes = change.finish(self).await?;
            match self.proxy_batch(writes).await {
                Ok(()) => return Ok(session),
                Err(CoreError::AlreadyExists { what: "entry", name }) if Some(&name) == req.unique_name.as_ref() => {
                    return Err(CoreError::Proxy {
                        rule: ProxyRule::NonUniqueSessionName,
                        message: format!("UniqueName: another session of the service is named '{name}'"),
                    });
                }
                Err(e) if lost_race(&e) => raced = true,
                Err(e) => return Err(e),
            }
        }
        Err(busy())
    }

    /// Session update: its expiry, or its status (close, or re-open).
    pub async fn update_proxy_session(
        &self,
        principal: &Principal,
        service: &str,
        id: &str,
        req: SessionUpdate,
    ) -> Result<ProxySession, CoreError> {
        let target = req.status.as_deref().map(SessionStatus::parse).transpose()?;
        check_ttl(req.ttl)?;
        let mut raced = false;
        for _ in 0..ATTEMPTS {
            let (svc, current, revision) = self.proxy_session_at(principal, service, id).await?;
            let now = Timestamp::now();
            let mut next = current.clone();
            let mut change = Change::new(&svc.sid);
            match (current.status.active(), target) {
                (_, None) if !current.status.active() => return Err(closed(&current)),
                (_, None) => {}
                (true, Some(SessionStatus::Closed)) => {
                    close(&mut next, "api", now);
                    for p in current.active_participants() {
                        change.deactivate(self, &current.sid, p).await?;
                    }
                }
                (false, Some(SessionStatus::InProgress)) => {
                    next.status = SessionStatus::InProgress;
                    next.closed_reason = None;
                    next.date_ended = None;
                    next.ttl_from = now;
                    let on_conflict = if req.fail_on_participant_conflict {
                        OnConflict::Refuse { raced }
                    } else {
                        OnConflict::Alert(80801)
                    };
                    for p in current.active_participants() {
                        change.activate(self, &current.sid, p, on_conflict).await?;
                    }
                }
                (_, Some(to)) => return Err(invalid_status(current.status, to)),
            }
            if let Some(at) = req.date_expiry {
                next.date_expiry = at;
            }
            if let Some(ttl) = req.ttl {
                next.ttl = ttl;
            }
            next.date_updated = now;
            change.put_session(&next, Some(revision))?;
            change.reschedule(Some(&current), Some(&next));
            let writes = change.finish(self).await?;
            match self.proxy_batch(writes).await {
                Ok(()) => return Ok(next),
                Err(e) if lost_race(&e) => raced = true,
                Err(e) => return Err(e),
            }
        }
        Err(busy())
    }

    /// Session delete: the session, its participants and interactions go for good.
    pub async fn remove_proxy_session(&self, principal: &Principal, service: &str, id: &str) -> Result<(), CoreError> {
        for _ in 0..ATTEMPTS {
            let (svc, current, revision) = self.proxy_session_at(principal, service, id).await?;
            let mut change = Change::new(&svc.sid);
            if current.status.active() {
                for p in current.active_participants() {
                    change.deactivate(self, &current.sid, p).await?;
                }
            }
            // Removed only as the revision read, so a change meanwhile is not lost silently.
            change.put_session(&current, Some(revision))?;
            change.write(ObjectWrite::Remove { map: sessions_map(&svc.sid), key: current.sid.to_string() });
            if let Some(name) = &current.unique_name {
                change.write(ObjectWrite::Remove { map: session_names_map(&svc.sid), key: name.clone() });
            }
            change.reschedule(Some(&current), None);
            let interactions = super::interactions::interactions_map(&current.sid);
            for item in self.system_items(PROXY_SERVICE, ObjectKind::Map, &interactions).await? {
                if let Some(key) = item.key {
                    change.write(ObjectWrite::Remove { map: interactions.clone(), key });
                }
            }
            let writes = change.finish(self).await?;
            match self.proxy_batch(writes).await {
                Ok(()) => return Ok(()),
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Err(busy())
    }

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
    async fn new_participant(
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

    /// Closes every session whose deadline has passed; the number closed.
    pub async fn expire_proxy_sessions(&self) -> Result<usize, CoreError> {
        // Nothing to expire before the Proxy face is first used (and naming its service here
        // would create it).
        let proxy = crate::model::ObjectRef::UniqueName(PROXY_SERVICE.to_owned());
        if self.store().service(&proxy).await?.is_none() {
            return Ok(0);
        }
        let now = Timestamp::now();
        let page = PageRequest { order: Order::Asc, from: None, after: None, limit: SWEEP };
        let due = self.system_page(PROXY_SERVICE, ObjectKind::Map, EXPIRIES, page).await?;
        let mut closed = 0;
        let mut failed = None;
        for item in due.items {
            let Some(key) = item.key else { continue };
            let mut parts = key.split('\t');
            let (Some(at), Some(service), Some(session)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if at.parse::<i64>().map_or(true, |at| at > now.millis()) {
                break;
            }
            match self.expire_session(service, session, &key).await {
                Ok(true) => closed += 1,
                Ok(false) => {}
                // The others still close; the first failure is reported.
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(closed),
        }
    }

    /// Closes one session whose expiry entry `key` is due (any node may be doing the same: the
    /// loser's write finds the revision gone and does nothing).
    async fn expire_session(&self, service: &str, session: &str, key: &str) -> Result<bool, CoreError> {
        let found = self.proxy_session_at(&Principal::Root, service, session).await;
        let (svc, current, revision) = match found {
            Ok(found) => found,
            Err(CoreError::NotFound { .. }) => {
                // A stale entry of a session gone with its service.
                let gone = ObjectWrite::Remove { map: EXPIRIES.into(), key: key.to_owned() };
                return match self.proxy_batch(vec![gone]).await {
                    Ok(()) | Err(CoreError::NotFound { .. }) => Ok(false),
                    Err(e) => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        if current.expiry_key().as_deref() != Some(key) {
            return Ok(false);
        }
        let now = Timestamp::now();
        let mut next = current.clone();
        let reason = if current.date_expiry.is_some() { "date-expiry" } else { "ttl" };
        close(&mut next, reason, now);
        let mut change = Change::new(&svc.sid);
        for p in current.active_participants() {
            change.deactivate(self, &current.sid, p).await?;
        }
        change.put_session(&next, Some(revision))?;
        change.reschedule(Some(&current), Some(&next));
        let writes = change.finish(self).await?;
        match self.proxy_batch(writes).await {
            Ok(()) => Ok(true),
            Err(e) if lost_race(&e) || matches!(e, CoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn close(session: &mut ProxySession, reason: &str, now: Timestamp) {
    session.status = SessionStatus::Closed;
    session.closed_reason = Some(reason.to_owned());
    session.date_ended = Some(now);
    session.date_updated = now;
}

fn busy() -> CoreError {
    CoreError::Store(StoreError::Unavailable("Proxy records kept changing under this request; try again".into()))
}
