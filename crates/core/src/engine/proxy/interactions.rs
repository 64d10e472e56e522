//! Interactions (`KI…`): the messages of a session, each with an inbound leg (what a participant
//! sent) and an outbound leg (what was relayed to the partner); `<KC>/interactions` keyed by SID,
//! so oldest first.
//!
//! What follows a change to the outside world (relaying a message, telling the service's
//! callback of a status, an alert, an out-of-session message) is queued as a [`ProxyJob`] in the
//! `outbox` List, in the same transaction as the change, and done by the server's relay, which
//! follows the change log: nothing acknowledged is lost to a crash.

use super::change::Change;
use super::sessions::{ProxySession, SessionStatus, decode_session, lost_race, sessions_map, unreadable};
use super::{PROXY_SERVICE, ProxyService};
use crate::auth::Principal;
use crate::engine::Engine;
use crate::error::{CoreError, NotFoundKind, ProxyRule};
use crate::model::{Item, ObjectKind};
use crate::page::{Page, PageRequest};
use crate::sid::{Sid, SidKind};
use crate::store::{ObjectWrite, StoreError};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// The queue of work for the relay.
pub const OUTBOX: &str = "outbox";
/// Queued work stays readable (for the curious) this long after it was queued.
const OUTBOX_TTL_SECS: u64 = 7 * 24 * 3600;
/// Alerts are kept as long as Twilio's debugger keeps them.
pub(super) const ALERT_TTL_SECS: u64 = 30 * 24 * 3600;
/// Media URLs of one message, at most (Twilio's limit).
pub const MAX_MEDIA: usize = 10;
/// A message body, at most (Twilio's limit for a concatenated SMS).
pub const MAX_BODY_CHARS: usize = 1600;
const ATTEMPTS: usize = 8;

pub(super) fn interactions_map(session: &Sid) -> String {
    format!("{session}/interactions")
}

pub(super) fn alerts_map(service: &Sid) -> String {
    format!("{service}/alerts")
}

/// The List of a service's alerts in the `proxy` service, as the native API reads it.
pub fn proxy_alerts_list(service: &Sid) -> String {
    alerts_map(service)
}

pub(super) fn job_write(job: &ProxyJob) -> Result<ObjectWrite, CoreError> {
    Ok(ObjectWrite::Append {
        list: OUTBOX.into(),
        data: serde_json::to_value(job).map_err(unreadable)?,
        ttl: Some(OUTBOX_TTL_SECS),
    })
}

/// One message of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyInteraction {
    pub sid: Sid,
    pub session_sid: Sid,
    pub service_sid: Sid,
    /// A JSON string, as Twilio has it: `{"body": "…"}`, with `media` when there is any.
    pub data: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The participant a Message Interaction was sent to.
    pub participant_sid: Option<Sid>,
    pub inbound_participant_sid: Option<Sid>,
    pub inbound_resource_sid: Option<Sid>,
    pub inbound_resource_status: Option<String>,
    pub inbound_resource_type: Option<String>,
    pub outbound_participant_sid: Option<Sid>,
    pub outbound_resource_sid: Option<Sid>,
    pub outbound_resource_status: Option<String>,
    pub outbound_resource_type: Option<String>,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

/// A debugger notification about a service (a conflict that was allowed, a message with no
/// partner), kept in the service's alerts and posted to its callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyAlert {
    pub sid: Sid,
    pub code: u32,
    pub level: String,
    pub service_sid: Sid,
    pub session_sid: Option<Sid>,
    pub participant_sid: Option<Sid>,
    pub message: String,
    pub date_created: Timestamp,
}

impl ProxyAlert {
    pub(super) fn new(
        code: u32,
        service: &Sid,
        session: Option<&Sid>,
        participant: Option<&Sid>,
        message: String,
    ) -> Self {
        ProxyAlert {
            sid: Sid::new(SidKind::Alert),
            code,
            level: if code == 80614 { "warning" } else { "error" }.into(),
            service_sid: service.clone(),
            session_sid: session.cloned(),
            participant_sid: participant.cloned(),
            message,
            date_created: Timestamp::now(),
        }
    }
}

/// A message as an SMS provider hands it over: `From` a participant's identifier, `To` a proxy
/// identifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub from: String,
    pub to: String,
    pub body: String,
    pub media: Vec<String>,
}

impl InboundMessage {
    pub fn check(&self) -> Result<(), CoreError> {
        if self.from.is_empty() {
            return Err(CoreError::invalid("From", "is required"));
        }
        if self.to.is_empty() {
            return Err(CoreError::invalid("To", "is required"));
        }
        check_content(&self.body, &self.media)
    }
}

fn check_content(body: &str, media: &[String]) -> Result<(), CoreError> {
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(CoreError::invalid("Body", format!("must be at most {MAX_BODY_CHARS} characters")));
    }
    if media.len() > MAX_MEDIA {
        return Err(CoreError::invalid("MediaUrl", format!("at most {MAX_MEDIA} media URLs, got {}", media.len())));
    }
    for url in media {
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048 {
            return Err(CoreError::invalid(
                "MediaUrl",
                format!("'{url}' is not an http(s) URL of at most 2048 characters"),
            ));
        }
    }
    if body.is_empty() && media.is_empty() {
        return Err(CoreError::invalid("Body", "is required when there is no media"));
    }
    Ok(())
}

/// What became of an inbound message.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundOutcome {
    /// Recorded in its session, to be relayed.
    Relayed(Box<ProxyInteraction>),
    /// No open session holds the pair: handed to the service's out-of-session callback.
    OutOfSession { service_sid: Sid },
}

/// Work for the relay, queued in the `outbox` with the change that calls for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProxyJob {
    /// Sends an interaction's outbound leg `to` a participant `from` its proxy identifier; an
    /// inbound message passes the service's intercept callback first.
    Relay {
        service_sid: Sid,
        session_sid: Sid,
        interaction_sid: Sid,
        from: String,
        to: String,
        body: String,
        media: Vec<String>,
        intercept: bool,
    },
    /// Tells the service's callback the interaction as it now is.
    Status {
        service_sid: Sid,
        interaction: Box<ProxyInteraction>,
    },
    Alert {
        service_sid: Sid,
        alert: ProxyAlert,
    },
    /// A message no open session holds.
    OutOfSession {
        service_sid: Sid,
        message: InboundMessage,
    },
    /// Makes an in-app participant's stream ready, readable by its identity, so its clients
    /// can subscribe before the first message.
    OpenInbox {
        service_sid: Sid,
        identity: String,
    },
}

impl ProxyJob {
    /// The session whose jobs must go out in order; unrelated ones may run side by side.
    pub fn lane(&self) -> String {
        match self {
            ProxyJob::Relay { session_sid, .. } => session_sid.to_string(),
            ProxyJob::Status { interaction, .. } => interaction.session_sid.to_string(),
            ProxyJob::Alert { alert, .. } => {
                alert.session_sid.as_ref().map_or_else(|| alert.service_sid.to_string(), Sid::to_string)
            }
            ProxyJob::OutOfSession { message, .. } => message.from.clone(),
            ProxyJob::OpenInbox { identity, .. } => format!("app:{identity}"),
        }
    }
}

fn data_string(body: &str, media: &[String]) -> String {
    let mut data = serde_json::json!({ "body": body });
    if !media.is_empty() {
        data["media"] = serde_json::json!(media);
    }
    data.to_string()
}

fn decode_interaction(item: &Item) -> Result<ProxyInteraction, CoreError> {
    serde::Deserialize::deserialize(&*item.data).map_err(unreadable)
}

/// A session after an interaction: in progress, its Ttl counted from now (through
/// `date_last_interaction`; its expiry entry stays where it is).
fn touched(session: &ProxySession, now: Timestamp) -> ProxySession {
    let mut next = session.clone();
    if next.status == SessionStatus::Open {
        next.status = SessionStatus::InProgress;
    }
    next.date_last_interaction = Some(now);
    next.date_updated = now;
    next
}

impl Engine {
    pub async fn proxy_interactions(
        &self,
        principal: &Principal,
        service: &str,
        session: &str,
        page: PageRequest,
    ) -> Result<Page<ProxyInteraction>, CoreError> {
        let (_, s, _) = self.proxy_session_at(principal, service, session).await?;
        let got = self.system_page(PROXY_SERVICE, ObjectKind::Map, &interactions_map(&s.sid), page).await?;
        let items = got.items.iter().map(decode_interaction).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next: got.next })
    }

    /// Every Message Interaction sent to a participant, oldest first.
    pub async fn proxy_message_interactions(
        &self,
        principal: &Principal,
        service: &str,
        session: &str,
        participant: &str,
    ) -> Result<Vec<ProxyInteraction>, CoreError> {
        let (_, s, _) = self.proxy_session_at(principal, service, session).await?;
        let p = s
            .participant(participant)
            .ok_or_else(|| CoreError::not_found(NotFoundKind::ProxyParticipant, participant))?;
        let all = self.system_items(PROXY_SERVICE, ObjectKind::Map, &interactions_map(&s.sid)).await?;
        let mut out = Vec::new();
        for item in &all {
            let i = decode_interaction(item)?;
            if i.participant_sid.as_ref() == Some(&p.sid) {
                out.push(i);
            }
        }
        Ok(out)
    }

    pub async fn proxy_interaction(
        &self,
        principal: &Principal,
        service: &str,
        session: &str,
        id: &str,
    ) -> Result<ProxyInteraction, CoreError> {
        let (_, s, _) = self.proxy_session_at(principal, service, session).await?;
        let item = self
            .proxy_entry(&interactions_map(&s.sid), id)
            .await?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::ProxyInteraction, id))?;
        decode_interaction(&item)
    }

    pub async fn remove_proxy_interaction(
        &self,
        principal: &Principal,
        service: &str,
        session: &str,
        id: &str,
    ) -> Result<(), CoreError> {
        let (_, s, _) = self.proxy_session_at(principal, service, session).await?;
        let gone = ObjectWrite::Remove { map: interactions_map(&s.sid), key: id.to_owned() };
        self.proxy_batch(vec![gone]).await.map_err(|e| match e {
            CoreError::NotFound { .. } => CoreError::not_found(NotFoundKind::ProxyInteraction, id),
            other => other,
        })
    }

    /// Message Interaction create: a message from the application straight to one participant.
    pub async fn create_proxy_message_interaction(
        &self,
        principal: &Principal,
        service: &str,
        session: &str,
        participant: &str,
        body: &str,
        media: Vec<String>,
    ) -> Result<ProxyInteraction, CoreError> {
        check_content(body, &media)?;
        for _ in 0..ATTEMPTS {
            let (svc, current, revision) = self.proxy_session_at(principal, service, session).await?;
            let p = current
                .participant(participant)
                .cloned()
                .ok_or_else(|| CoreError::not_found(NotFoundKind::ProxyParticipant, participant))?;
            if !current.status.active() {
                return Err(CoreError::Proxy {
                    rule: ProxyRule::SessionClosed,
                    message: format!("session {} is closed; re-open it to send messages", current.sid),
                });
            }
            if !p.active() {
                return Err(CoreError::invalid("ParticipantSid", format!("participant {} was removed", p.sid)));
            }
            if current.mode == "voice-only" {
                return Err(CoreError::invalid(
                    "Body",
                    format!("session {} is voice-only: it carries no messages", current.sid),
                ));
            }
            let now = Timestamp::now();
            let interaction = ProxyInteraction {
                sid: Sid::new(SidKind::ProxyInteraction),
                session_sid: current.sid.clone(),
                service_sid: svc.sid.clone(),
                data: data_string(body, &media),
                kind: "message".into(),
                participant_sid: Some(p.sid.clone()),
                inbound_participant_sid: None,
                inbound_resource_sid: None,
                inbound_resource_status: None,
                inbound_resource_type: None,
                outbound_participant_sid: Some(p.sid.clone()),
                outbound_resource_sid: Some(Sid::new(SidKind::Message)),
                outbound_resource_status: Some("queued".into()),
                outbound_resource_type: Some("Message".into()),
                date_created: now,
                date_updated: now,
            };
            let relay = ProxyJob::Relay {
                service_sid: svc.sid.clone(),
                session_sid: current.sid.clone(),
                interaction_sid: interaction.sid.clone(),
                from: p.proxy_identifier.clone(),
                to: p.identifier.clone(),
                body: body.to_owned(),
                media: media.clone(),
                intercept: false,
            };
            match self.record_interaction(&svc, &current, revision, &interaction, Some(relay), now).await {
                Ok(()) => return Ok(interaction),
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Err(CoreError::Store(StoreError::Unavailable("the session kept changing; try again".into())))
    }

    /// Writes a new interaction with what it does to its session, and the jobs that follow it.
    async fn record_interaction(
        &self,
        svc: &ProxyService,
        session: &ProxySession,
        revision: u64,
        interaction: &ProxyInteraction,
        relay: Option<ProxyJob>,
        now: Timestamp,
    ) -> Result<(), CoreError> {
        let next = touched(session, now);
        let mut change = Change::new(&svc.sid);
        change.put_session(&next, Some(revision))?;
        change.reschedule(Some(session), Some(&next));
        change.write(ObjectWrite::Create {
            map: interactions_map(&session.sid),
            key: interaction.sid.to_string(),
            data: serde_json::to_value(interaction).map_err(unreadable)?,
        });
        if interaction.outbound_participant_sid.is_none() {
            change.alert(super::interactions::ProxyAlert::new(
                80614,
                &svc.sid,
                Some(&session.sid),
                interaction.inbound_participant_sid.as_ref(),
                format!("session {} has no partner to relay the message to", session.sid),
            ));
        }
        if let Some(relay) = relay {
            change.job(relay);
        }
        change.job(ProxyJob::Status { service_sid: svc.sid.clone(), interaction: Box::new(interaction.clone()) });
        let writes = change.finish(self).await?;
        self.proxy_batch(writes).await
    }

    /// A message an SMS provider received: relayed within its session, or handed to the
    /// out-of-session callback.
    pub async fn proxy_inbound(&self, principal: &Principal, msg: InboundMessage) -> Result<InboundOutcome, CoreError> {
        super::super::require_admin(principal)?;
        msg.check()?;
        for _ in 0..ATTEMPTS {
            // The proxy identifier names the service.
            let mut owner = None;
            for pool in [super::Pool::PhoneNumbers, super::Pool::ShortCodes] {
                if let Some(claim) = self.proxy_entry(pool.claims(), &msg.to).await?
                    && let Some(service) = claim.data["service_sid"].as_str()
                {
                    owner = Some(service.to_owned());
                    break;
                }
            }
            let service = owner.ok_or_else(|| {
                CoreError::invalid("To", format!("{} is not a proxy identifier of any Proxy service", msg.to))
            })?;
            let (svc, _) = self.proxy_service_at(principal, &service).await?;
            let pair = self
                .proxy_entry(&super::sessions::pairs_map(&svc.sid), &super::participants::pair_key(&msg.from, &msg.to))
                .await?;
            // The newest session holding the pair takes the message.
            let used = pair.and_then(|p| p.data["active"].as_array().and_then(|a| a.last().cloned()));
            let Some(used) = used else {
                let job = ProxyJob::OutOfSession { service_sid: svc.sid.clone(), message: msg.clone() };
                self.proxy_batch(vec![job_write(&job)?]).await?;
                return Ok(InboundOutcome::OutOfSession { service_sid: svc.sid });
            };
            let (Some(session_sid), Some(participant_sid)) = (used["session"].as_str(), used["participant"].as_str())
            else {
                return Err(unreadable("a pair names no session"));
            };
            let Some(item) = self.proxy_entry(&sessions_map(&svc.sid), session_sid).await? else { continue };
            let (current, revision) = (decode_session(&item)?, item.revision);
            // A voice-only session carries no messages: as if no session held the pair.
            if current.mode == "voice-only" {
                let job = ProxyJob::OutOfSession { service_sid: svc.sid.clone(), message: msg.clone() };
                self.proxy_batch(vec![job_write(&job)?]).await?;
                return Ok(InboundOutcome::OutOfSession { service_sid: svc.sid });
            }
            let Some(sender) = current.participant(participant_sid).cloned() else {
                return Err(unreadable("a pair names a participant its session lacks"));
            };
            let partner = current.partner(&sender.sid).cloned();
            let now = Timestamp::now();
            let interaction = ProxyInteraction {
                sid: Sid::new(SidKind::ProxyInteraction),
                session_sid: current.sid.clone(),
                service_sid: svc.sid.clone(),
                data: data_string(&msg.body, &msg.media),
                kind: "message".into(),
                participant_sid: None,
                inbound_participant_sid: Some(sender.sid.clone()),
                inbound_resource_sid: Some(Sid::new(SidKind::Message)),
                inbound_resource_status: Some("received".into()),
                inbound_resource_type: Some("Message".into()),
                outbound_participant_sid: partner.as_ref().map(|p| p.sid.clone()),
                outbound_resource_sid: partner.as_ref().map(|_| Sid::new(SidKind::Message)),
                outbound_resource_status: Some(if partner.is_some() { "queued" } else { "failed" }.into()),
                outbound_resource_type: partner.as_ref().map(|_| "Message".into()),
                date_created: now,
                date_updated: now,
            };
            // The partner hears from the sender at the partner's own proxy identifier.
            let relay = partner.map(|p| ProxyJob::Relay {
                service_sid: svc.sid.clone(),
                session_sid: current.sid.clone(),
                interaction_sid: interaction.sid.clone(),
                from: p.proxy_identifier.clone(),
                to: p.identifier.clone(),
                body: msg.body.clone(),
                media: msg.media.clone(),
                intercept: true,
            });
            match self.record_interaction(&svc, &current, revision, &interaction, relay, now).await {
                Ok(()) => return Ok(InboundOutcome::Relayed(Box::new(interaction))),
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Err(CoreError::Store(StoreError::Unavailable("the session kept changing; try again".into())))
    }

    /// The relay's word on an interaction's outbound leg (`sent`, `delivered`, `failed`,
    /// `canceled` when the intercept callback blocked it, …); the service's callback hears of it.
    /// An interaction deleted meanwhile is left alone.
    pub async fn set_proxy_outbound_status(
        &self,
        service: &Sid,
        session: &Sid,
        interaction: &Sid,
        status: &str,
    ) -> Result<Option<ProxyInteraction>, CoreError> {
        let map = interactions_map(session);
        for _ in 0..ATTEMPTS {
            let Some(item) = self.proxy_entry(&map, interaction.as_str()).await? else { return Ok(None) };
            let mut next = decode_interaction(&item)?;
            if next.outbound_resource_status.as_deref() == Some(status) {
                return Ok(Some(next));
            }
            next.outbound_resource_status = Some(status.to_owned());
            next.date_updated = Timestamp::now();
            let data = serde_json::to_value(&next).map_err(unreadable)?;
            let job = ProxyJob::Status { service_sid: service.clone(), interaction: Box::new(next.clone()) };
            let writes = vec![
                ObjectWrite::Replace { map: map.clone(), key: interaction.to_string(), data, revision: item.revision },
                job_write(&job)?,
            ];
            match self.proxy_batch(writes).await {
                Ok(()) => return Ok(Some(next)),
                Err(CoreError::NotFound { .. }) => return Ok(None),
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Err(CoreError::Store(StoreError::Unavailable("the interaction kept changing".into())))
    }

    /// An interaction as the relay reads it: straight from its session's Map, without the
    /// session (removing a session removes its interactions in the same write); `None` when
    /// gone.
    pub async fn proxy_interaction_for_relay(
        &self,
        session: &Sid,
        interaction: &Sid,
    ) -> Result<Option<ProxyInteraction>, CoreError> {
        self.proxy_entry(&interactions_map(session), interaction.as_str())
            .await?
            .map(|i| decode_interaction(&i))
            .transpose()
    }

    /// A Proxy service as the relay reads it (no credentials of a request involved).
    pub async fn proxy_service_for_relay(&self, service: &Sid) -> Result<Option<ProxyService>, CoreError> {
        match self.proxy_service_at(&Principal::Root, service.as_str()).await {
            Ok((svc, _)) => Ok(Some(svc)),
            Err(CoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
