//! What the server sends: replies matched to their requests, events routed to subscribers
//! with each cursor moved past them.

use super::{Connection, Ended, Pending};
use crate::client::ClientEvent;
use crate::error::{ClientError, Result};
use crate::events::{SyncEvent, SyncEventKind};
use crate::local::LocalWrites;
use crate::query::LiveQueryEvent;
use ferrosync_protocol::query::{QueryChange, QueryEvent};
use ferrosync_protocol::ws::{ClientFrame, Delivered, QuerySubscribed, ServerFrame, Subscribed};
use ferrosync_protocol::{ErrorBody, Event};
use serde_json::Value;
use tokio::sync::mpsc;

impl Connection {
    pub(super) async fn on_frame(&mut self, frame: ServerFrame) -> Result<Option<ClientFrame>, Ended> {
        match frame {
            ServerFrame::Event { event } => match *event {
                Delivered::Object(e) => {
                    let admitted = LocalWrites::lock(&self.shared.local).admit(e);
                    if let Some((e, local)) = admitted {
                        self.deliver(e, local).await;
                    }
                }
                Delivered::Query(q) => self.deliver_query(q).await,
            },
            ServerFrame::Reply { id, status, body, error } => return Ok(self.on_reply(id, status, body, error)),
            ServerFrame::TokenAboutToExpire { expires_at } => {
                if !self.warned {
                    self.warned = true;
                    self.shared.emit(ClientEvent::TokenAboutToExpire { expires_at });
                }
            }
            ServerFrame::TokenExpired => {}
            ServerFrame::Overflow { resume } => {
                for r in resume {
                    if let Some(sub) = self.objects.get_mut(&r.object_sid) {
                        sub.since = Some(r.since);
                    }
                }
                return Err(Ended::Resume);
            }
            ServerFrame::Error { error, .. } => tracing::warn!(error = %error, "the server refused a frame"),
            ServerFrame::Connected { .. } => {}
        }
        Ok(None)
    }

    fn on_reply(&mut self, id: u64, status: u16, body: Option<Value>, error: Option<ErrorBody>) -> Option<ClientFrame> {
        let pending = self.pending.remove(&id)?;
        let failure = error
            .map(ClientError::api)
            .or_else(|| (status >= 400).then(|| ClientError::refused(status, 0, "refused".into())));
        match pending {
            Pending::Ignore => None,
            Pending::UpdateToken { done } => {
                let _ = done.send(failure.map_or(Ok(()), Err));
                None
            }
            Pending::Subscribe { sid, done } => match failure {
                None => {
                    let reply = body.and_then(|b| serde_json::from_value::<Subscribed>(b).ok());
                    if let (Some(sub), Some(reply)) = (self.objects.get_mut(&sid), reply) {
                        if sub.since.is_none() {
                            sub.since = Some(reply.since);
                        }
                        if let (Some(doc), Some(object)) = (&sub.doc, reply.object) {
                            let mut d = doc.lock().unwrap_or_else(|e| e.into_inner());
                            if object.revision > d.revision {
                                d.revision = object.revision;
                                d.data = object.data.unwrap_or(Value::Null);
                            }
                        }
                    }
                    if let Some(done) = done {
                        let _ = done.send(Ok(()));
                    }
                    None
                }
                // Retention passed the resume point: start again from now.
                Some(e) if e.status() == Some(410) => {
                    if let Some(sub) = self.objects.get_mut(&sid) {
                        sub.since = None;
                    }
                    Some(self.subscribe_frame(&sid, done))
                }
                Some(e) => {
                    let resumed = self.objects.get(&sid).is_some_and(|s| s.since.is_some());
                    if let Some(sub) = self.objects.remove(&sid) {
                        // Removed while we were away: its subscribers hear so, once.
                        if resumed && e.is_not_found() {
                            let event = SyncEvent {
                                kind: SyncEventKind::Removed { reason: None },
                                is_local: false,
                                object_sid: sid.clone(),
                                identity: String::new(),
                                seq: sub.last_seq,
                                token: sub.since.clone().unwrap_or_default(),
                            };
                            for l in &sub.listeners {
                                let _ = l.try_send(event.clone());
                            }
                        }
                    }
                    if let Some(done) = done {
                        let _ = done.send(Err(e));
                    }
                    None
                }
            },
            Pending::Query { key, done } => {
                match failure {
                    None => {
                        let reply = body.and_then(|b| serde_json::from_value::<QuerySubscribed>(b).ok());
                        match (self.queries.get_mut(&key), reply) {
                            (Some(q), Some(reply)) => {
                                q.server_id = Some(reply.query_id);
                                if q.since.is_none() {
                                    q.since = Some(reply.since);
                                    q.results = reply.items.iter().map(|i| (i.map.clone(), i.key.clone())).collect();
                                }
                                if let Some(done) = done {
                                    let _ = done.send(Ok(reply.items));
                                }
                            }
                            _ => {
                                if let Some(done) = done {
                                    let _ = done.send(Err(ClientError::Decode("subscribe_query reply".into())));
                                }
                            }
                        }
                    }
                    Some(e) => {
                        self.queries.remove(&key);
                        if let Some(done) = done {
                            let _ = done.send(Err(e));
                        }
                    }
                }
                None
            }
        }
    }

    pub(super) async fn release(&mut self, sid: &str) {
        let released = LocalWrites::lock(&self.shared.local).release(sid);
        for (e, local) in released {
            self.deliver(e, local).await;
        }
    }

    /// The event's subscribers, with their cursor moved past it; `None` when it is not news.
    fn route(&mut self, e: &Event, is_local: bool) -> Option<(Vec<mpsc::Sender<SyncEvent>>, SyncEvent)> {
        let sub = self.objects.get_mut(e.object_sid.as_str())?;
        if e.seq <= sub.last_seq {
            return None;
        }
        sub.last_seq = e.seq;
        sub.since = Some(e.token.clone());
        let kind = SyncEventKind::from_event(e)?;
        if let (Some(doc), SyncEventKind::Updated { data, revision, .. }) = (&sub.doc, &kind) {
            let mut d = doc.lock().unwrap_or_else(|e| e.into_inner());
            if *revision > d.revision {
                d.revision = *revision;
                d.data = data.clone();
            }
        }
        let event = SyncEvent {
            kind,
            is_local,
            object_sid: e.object_sid.to_string(),
            identity: e.identity.clone(),
            seq: e.seq,
            token: e.token.clone(),
        };
        Some((sub.listeners.clone(), event))
    }

    async fn deliver(&mut self, e: Event, is_local: bool) {
        let Some((listeners, event)) = self.route(&e, is_local) else { return };
        for l in listeners {
            let _ = l.send(event.clone()).await;
        }
    }

    async fn deliver_query(&mut self, q: QueryEvent) {
        let Some(sub) = self.queries.values_mut().find(|s| s.server_id.as_deref() == Some(q.query_id.as_str())) else {
            return;
        };
        if q.seq <= sub.last_seq {
            return;
        }
        sub.last_seq = q.seq;
        sub.since = Some(q.token.clone());
        let events: Vec<LiveQueryEvent> = match q.change {
            QueryChange::ItemUpdated { map, key, data, revision } => {
                sub.results.insert((map.clone(), key.clone()));
                vec![LiveQueryEvent::ItemUpdated { map, key, data, revision }]
            }
            QueryChange::ItemRemoved { map, key } => {
                sub.results.remove(&(map.clone(), key.clone()));
                vec![LiveQueryEvent::ItemRemoved { map, key }]
            }
            QueryChange::MapRemoved { map } => {
                let gone: Vec<(String, String)> = sub.results.iter().filter(|(m, _)| *m == map).cloned().collect();
                gone.into_iter()
                    .map(|(m, k)| {
                        sub.results.remove(&(m.clone(), k.clone()));
                        LiveQueryEvent::ItemRemoved { map: m, key: k }
                    })
                    .collect()
            }
        };
        let listener = sub.listener.clone();
        for e in events {
            let _ = listener.send(e).await;
        }
    }
}
