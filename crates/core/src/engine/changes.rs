//! Reading the change log, and the background work that writes to it (expiry, retention).

use super::*;

impl Engine {
    // ----- the change log ---------------------------------------------------------------------

    /// The token for "now": a reader starting here sees only later events.
    pub async fn head_token(&self, service: &Service) -> Result<String, CoreError> {
        let fresh = self.store.service(&ObjectRef::Sid(service.sid.clone())).await?.unwrap_or_else(|| service.clone());
        Ok(SinceToken { epoch: self.store.epoch().to_owned(), service_sid: service.sid.clone(), seq: fresh.head_seq }
            .encode())
    }

    /// Resolves a since-token to a sequence number, refusing foreign and expired tokens.
    pub async fn since_seq(&self, service: &Service, since: &str) -> Result<u64, CoreError> {
        let seq = SinceToken::decode(since)?.seq_for(self.store.epoch(), &service.sid)?;
        let fresh = self
            .store
            .service(&ObjectRef::Sid(service.sid.clone()))
            .await?
            .ok_or_else(|| CoreError::not_found(NotFoundKind::Service, service.sid.to_string()))?;
        if seq > fresh.head_seq {
            return Err(CoreError::ForeignSinceToken);
        }
        if seq < fresh.pruned_seq {
            return Err(CoreError::ResyncRequired);
        }
        Ok(seq)
    }

    fn token_at(&self, service: &Sid, seq: u64) -> String {
        SinceToken { epoch: self.store.epoch().to_owned(), service_sid: service.clone(), seq }.encode()
    }

    /// Events after `since`, waiting up to `timeout` for the first.
    pub async fn changes(
        &self,
        principal: &Principal,
        service: &str,
        since: Since<'_>,
        object: Option<&Sid>,
        limit: u32,
        timeout: Duration,
    ) -> Result<Changes, CoreError> {
        let svc = self.service(principal, service).await?;
        if !principal.is_admin() && svc.acl_enabled {
            return Err(CoreError::Forbidden(
                "reading the whole change log needs server credentials when ACLs are enabled".into(),
            ));
        }
        if limit == 0 || limit > self.limits.max_page_size {
            return Err(CoreError::invalid(
                "limit",
                format!("must be between 1 and {}, got {limit}", self.limits.max_page_size),
            ));
        }
        // Subscribe first, then read, then wait: a commit between the read and the wait still wakes us.
        let mut wake = self.published.notifier.subscribe(&svc.sid);
        let mut after = self.start_seq(&svc, since).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let events = self.read_events(&svc.sid, after, object, limit).await?;
            if let Some(last) = events.last() {
                let next = self.token_at(&svc.sid, last.seq);
                return Ok(Changes { events, next });
            }
            if object.is_some() {
                // Nothing for this object: move the cursor to the head read *before* a second
                // read, so later polls do not rescan the same stretch of log and nothing
                // committed in between is skipped.
                let head = self.current_head(&svc.sid).await?;
                let events = self.read_events(&svc.sid, after, object, limit).await?;
                if let Some(last) = events.last() {
                    let next = self.token_at(&svc.sid, last.seq);
                    return Ok(Changes { events, next });
                }
                after = after.max(head);
            }
            if tokio::time::timeout_at(deadline, wake.changed()).await.is_err() {
                return Ok(Changes { events, next: self.token_at(&svc.sid, after) });
            }
        }
    }

    /// The sequence number a reader starting at `since` continues after.
    pub async fn start_seq(&self, service: &Service, since: Since<'_>) -> Result<u64, CoreError> {
        match since {
            Since::Token(t) => self.since_seq(service, t).await,
            Since::Now => self.current_head(&service.sid).await,
            Since::Start => {
                Ok(self.store.service(&ObjectRef::Sid(service.sid.clone())).await?.map(|s| s.pruned_seq).unwrap_or(0))
            }
        }
    }

    /// Events with `seq > after`: from the in-memory run of recent commits when it provably
    /// holds the next one, otherwise from the store.
    pub async fn read_events(
        &self,
        service: &Sid,
        after: u64,
        object: Option<&Sid>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, CoreError> {
        if let Some(events) = self.published.recent.read(service, after, object, limit) {
            return Ok(events);
        }
        Ok(self.store.events(service, after, object, limit).await?)
    }

    pub(crate) async fn current_head(&self, service: &Sid) -> Result<u64, CoreError> {
        Ok(self.store.service(&ObjectRef::Sid(service.clone())).await?.map(|s| s.head_seq).unwrap_or(0))
    }

    // ----- background work --------------------------------------------------------------------

    /// Removes what has expired; returns how many objects and items went.
    pub async fn expire_due(&self) -> Result<u64, CoreError> {
        let now = Timestamp::now();
        // Most sweeps find nothing due: a read says so without queueing a write transaction.
        if self.store.next_expiry().await?.is_none_or(|next| next > now) {
            return Ok(0);
        }
        let applied = self.store.execute(Actor::SYSTEM, Mutation::Expire { now, limit: 500 }).await?;
        Ok(match applied.outcome {
            Outcome::Expired { removed } => removed,
            _ => 0,
        })
    }

    /// Drops change-log events older than the retention window.
    pub async fn prune_log(&self) -> Result<u64, CoreError> {
        let before = Timestamp(Timestamp::now().millis() - (self.limits.retention_secs as i64) * 1000);
        let applied = self.store.execute(Actor::SYSTEM, Mutation::Prune { before }).await?;
        Ok(match applied.outcome {
            Outcome::Pruned { events } => events,
            _ => 0,
        })
    }
}
