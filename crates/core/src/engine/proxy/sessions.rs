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
use super::participants::{MAX_PARTICIPANTS, ParticipantSpec, ProxyParticipant};
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

pub const MODES: &[&str] = &["message-only", "voice-only", "voice-and-message"];
/// A session with neither Ttl nor DateExpiry still ends, as Twilio's do, 90 days after its last
/// activity.
const DEFAULT_LIFETIME_SECS: u64 = 90 * 24 * 3600;
pub(super) const EXPIRIES: &str = "expiries";
/// Tries of a change that lost a race for the records it read.
pub(super) const ATTEMPTS: usize = 8;
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
    /// Where the Ttl counted from when the session was last filed in `expiries`: the create,
    /// the re-opening, or the sweep's filing it again. An interaction since moves the Ttl on
    /// (see [`ProxySession::deadline`]) but not the entry, so a busy session's messages write no
    /// expiry entry each; the sweep files it again when the entry comes due.
    pub ttl_from: Timestamp,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    pub participants: Vec<ProxyParticipant>,
}

impl ProxySession {
    /// When the session closes by itself: at DateExpiry, else Ttl seconds after its last
    /// activity, else 90 days after it.
    pub fn deadline(&self) -> Timestamp {
        self.deadline_from(self.active_from())
    }

    /// Where the Ttl counts from: the create, the re-opening or the last interaction.
    fn active_from(&self) -> Timestamp {
        self.date_last_interaction.map_or(self.ttl_from, |at| at.max(self.ttl_from))
    }

    fn deadline_from(&self, from: Timestamp) -> Timestamp {
        match (self.date_expiry, self.ttl) {
            (Some(at), _) => at,
            (None, 0) => from.plus_seconds(DEFAULT_LIFETIME_SECS),
            (None, ttl) => from.plus_seconds(ttl),
        }
    }

    /// The session's entry in `expiries` (none once it is closed): filed from `ttl_from`, so at
    /// or before its deadline.
    pub(super) fn expiry_key(&self) -> Option<String> {
        self.status.active().then(|| {
            let at = self.deadline_from(self.ttl_from);
            format!("{:013}\t{}\t{}", at.millis().max(0), self.service_sid, self.sid)
        })
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
    serde::Deserialize::deserialize(&*item.data).map_err(unreadable)
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

pub(super) fn closed(session: &ProxySession) -> CoreError {
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

    /// Closes every session whose deadline has passed, and files again at its deadline each one
    /// whose entry came due before it; the number of due entries dealt with.
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
        let mut dealt = 0;
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
                Ok(true) => dealt += 1,
                Ok(false) => {}
                // The others still close; the first failure is reported.
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(dealt),
        }
    }

    /// Closes one session whose expiry entry `key` is due, or files the entry again at its
    /// deadline when interactions have moved that on (any node may be doing the same: the
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
        let mut change = Change::new(&svc.sid);
        if current.deadline() > now {
            next.ttl_from = current.active_from();
        } else {
            let reason = if current.date_expiry.is_some() { "date-expiry" } else { "ttl" };
            close(&mut next, reason, now);
            for p in current.active_participants() {
                change.deactivate(self, &current.sid, p).await?;
            }
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

pub(super) fn busy() -> CoreError {
    CoreError::Store(StoreError::Unavailable("Proxy records kept changing under this request; try again".into()))
}
