//! One change to a service's sessions: what it does to the active identifier / proxy
//! identifier pairs, the pool numbers' counts, the expiry index, alerts and queued jobs,
//! gathered so each record is read once and written once, in one transaction.

use super::PROXY_SERVICE;
use super::interactions::{ProxyAlert, ProxyJob, alerts_map, job_write};
use super::participants::ProxyParticipant;
use super::pools::{Pool, decode_number};
use super::sessions::{EXPIRIES, ProxySession, pairs_map, sessions_map, unreadable};
use crate::engine::Engine;
use crate::error::{CoreError, ProxyRule};
use crate::sid::{Sid, SidKind};
use crate::store::ObjectWrite;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a pair that is already active elsewhere does to a change.
#[derive(Debug, Clone, Copy)]
pub(super) enum OnConflict {
    /// Refused: 80604, or 80623 when the other session got there during this request.
    Refuse { raced: bool },
    /// Allowed, with an alert of this code.
    Alert(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PairUse {
    session: Sid,
    participant: Sid,
}

#[derive(Debug, Clone, Default)]
struct PairState {
    /// `None` when there is no entry yet.
    revision: Option<u64>,
    active: Vec<PairUse>,
}

/// One change to a service's sessions, gathering what it does to pairs and pool numbers so each
/// record is read once and written once, all in one transaction.
pub(super) struct Change {
    service: Sid,
    writes: Vec<ObjectWrite>,
    pairs: BTreeMap<String, PairState>,
    /// Active pairs gained or lost per pool number.
    in_use: BTreeMap<Sid, i64>,
    alerts: Vec<ProxyAlert>,
    jobs: Vec<ProxyJob>,
}

impl Change {
    pub(super) fn new(service: &Sid) -> Self {
        Change {
            service: service.clone(),
            writes: Vec::new(),
            pairs: BTreeMap::new(),
            in_use: BTreeMap::new(),
            alerts: Vec::new(),
            jobs: Vec::new(),
        }
    }

    pub(super) fn write(&mut self, w: ObjectWrite) {
        self.writes.push(w);
    }

    pub(super) fn job(&mut self, job: ProxyJob) {
        self.jobs.push(job);
    }

    pub(super) fn alert(&mut self, alert: ProxyAlert) {
        self.alerts.push(alert);
    }

    async fn pair(&mut self, engine: &Engine, key: &str) -> Result<&mut PairState, CoreError> {
        if !self.pairs.contains_key(key) {
            let state = match engine.system_entry(PROXY_SERVICE, &pairs_map(&self.service), key).await? {
                Some(item) => PairState {
                    revision: Some(item.revision),
                    active: serde_json::from_value(item.data["active"].clone()).map_err(unreadable)?,
                },
                None => PairState::default(),
            };
            self.pairs.insert(key.to_owned(), state);
        }
        self.pairs.get_mut(key).ok_or_else(|| unreadable("a pair went missing"))
    }

    /// The sessions other than `session` where the pair is active.
    pub(super) async fn others(&mut self, engine: &Engine, key: &str, session: &Sid) -> Result<Vec<Sid>, CoreError> {
        let state = self.pair(engine, key).await?;
        Ok(state.active.iter().filter(|u| &u.session != session).map(|u| u.session.clone()).collect())
    }

    /// Makes `p`'s pair active in `session`.
    pub(super) async fn activate(
        &mut self,
        engine: &Engine,
        session: &Sid,
        p: &ProxyParticipant,
        on_conflict: OnConflict,
    ) -> Result<(), CoreError> {
        let key = p.pair();
        let others = self.others(engine, &key, session).await?;
        if let Some(other) = others.last() {
            let what = format!("{} is already reached through {} in session {other}", p.identifier, p.proxy_identifier);
            match on_conflict {
                OnConflict::Refuse { raced: false } => {
                    return Err(CoreError::Proxy { rule: ProxyRule::IdentifierInUse, message: what });
                }
                OnConflict::Refuse { raced: true } => {
                    return Err(CoreError::Proxy {
                        rule: ProxyRule::DuplicateParticipant,
                        message: format!("{what}, made by a request at the same time"),
                    });
                }
                OnConflict::Alert(code) => self.alerts.push(ProxyAlert::new(
                    code,
                    &self.service,
                    Some(session),
                    Some(&p.sid),
                    format!("{what}; both sessions now use the pair, and inbound messages go to the newest"),
                )),
            }
        }
        let state = self.pair(engine, &key).await?;
        state.active.push(PairUse { session: session.clone(), participant: p.sid.clone() });
        *self.in_use.entry(p.proxy_identifier_sid.clone()).or_default() += 1;
        Ok(())
    }

    /// Ends `p`'s pair in `session`.
    pub(super) async fn deactivate(
        &mut self,
        engine: &Engine,
        session: &Sid,
        p: &ProxyParticipant,
    ) -> Result<(), CoreError> {
        let state = self.pair(engine, &p.pair()).await?;
        let before = state.active.len();
        state.active.retain(|u| !(&u.session == session && u.participant == p.sid));
        if state.active.len() < before {
            *self.in_use.entry(p.proxy_identifier_sid.clone()).or_default() -= 1;
        }
        Ok(())
    }

    /// Moves a session's entry in the expiry index from `before` to `after`.
    pub(super) fn reschedule(&mut self, before: Option<&ProxySession>, after: Option<&ProxySession>) {
        let old = before.and_then(ProxySession::expiry_key);
        let new = after.and_then(ProxySession::expiry_key);
        if old == new {
            return;
        }
        if let Some(key) = old {
            self.writes.push(ObjectWrite::Remove { map: EXPIRIES.into(), key });
        }
        if let Some(key) = new {
            self.writes.push(ObjectWrite::Put { map: EXPIRIES.into(), key, data: serde_json::json!({}) });
        }
    }

    /// Writes the session record (`revision` of the one read, `None` for a new one).
    pub(super) fn put_session(&mut self, session: &ProxySession, revision: Option<u64>) -> Result<(), CoreError> {
        let data = serde_json::to_value(session).map_err(unreadable)?;
        let map = sessions_map(&self.service);
        let key = session.sid.to_string();
        self.writes.push(match revision {
            Some(revision) => ObjectWrite::Replace { map, key, data, revision },
            None => ObjectWrite::Create { map, key, data },
        });
        Ok(())
    }

    /// Every write, with pairs, pool counts, alerts and jobs last.
    pub(super) async fn finish(mut self, engine: &Engine) -> Result<Vec<ObjectWrite>, CoreError> {
        let pairs = pairs_map(&self.service);
        for (key, state) in std::mem::take(&mut self.pairs) {
            let data = serde_json::json!({ "active": state.active });
            match (state.revision, state.active.is_empty()) {
                (None, true) => {}
                (None, false) => self.writes.push(ObjectWrite::Create { map: pairs.clone(), key, data }),
                (Some(_), true) => self.writes.push(ObjectWrite::Remove { map: pairs.clone(), key }),
                (Some(revision), false) => {
                    self.writes.push(ObjectWrite::Replace { map: pairs.clone(), key, data, revision });
                }
            }
        }
        for (sid, delta) in std::mem::take(&mut self.in_use) {
            let pool = if sid.as_str().starts_with(SidKind::ShortCode.prefix()) {
                Pool::ShortCodes
            } else {
                Pool::PhoneNumbers
            };
            if delta == 0 {
                continue;
            }
            let map = pool.map(&self.service);
            // A number taken out of the pool meanwhile counts nothing.
            let Some(item) = engine.system_entry(PROXY_SERVICE, &map, sid.as_str()).await? else { continue };
            let mut number = decode_number(&item)?;
            number.in_use = number.in_use.saturating_add_signed(delta);
            let data = serde_json::to_value(&number).map_err(unreadable)?;
            self.writes.push(ObjectWrite::Replace { map, key: sid.to_string(), data, revision: item.revision });
        }
        for alert in std::mem::take(&mut self.alerts) {
            self.writes.push(ObjectWrite::Append {
                list: alerts_map(&self.service),
                data: serde_json::to_value(&alert).map_err(unreadable)?,
                ttl: Some(super::interactions::ALERT_TTL_SECS),
            });
            self.jobs.push(ProxyJob::Alert { service_sid: self.service.clone(), alert });
        }
        for job in std::mem::take(&mut self.jobs) {
            self.writes.push(job_write(&job)?);
        }
        Ok(self.writes)
    }
}
