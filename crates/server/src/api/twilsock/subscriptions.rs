//! `POST /v4/Subscriptions`: the SDK's "poke" that establishes or cancels subscriptions.
//! The reply only acknowledges; each object's outcome follows as notifications: for an
//! established one, the events after the client's last seen event id (read from the change
//! log), then `subscription_established` carrying the position it now stands at.

use super::connection::{Flow, Session, send, server_frame_id};
use super::error::{self, CdsError, TOO_MANY_SUBSCRIPTIONS, Target};
use super::events::{self, Channel, SYNC_EVENT};
use super::request::{CdsReply, CdsRequest, Cx, at_position};
use super::types::SubscriptionsPoke;
use crate::realtime::session::{Replay, Start};
use crate::realtime::wire::Writer;
use ferrosync_core::CoreError;
use ferrosync_core::model::{ObjectKind, ObjectRef, SyncObject};
use ferrosync_core::sid::Sid;
use serde_json::{Value, json};

/// How long the SDK should wait for the outcome notifications before poking again. They are
/// sent right after the reply; this only bounds a lost one.
const ESTIMATED_DELIVERY_MS: u64 = 5000;
const MAX_BATCH: usize = 100;

impl Session {
    pub(super) async fn poke(&mut self, sink: &mut Writer, id: &str, req: &CdsRequest<'_>) -> Flow {
        let poke: SubscriptionsPoke = match req.json::<Option<SubscriptionsPoke>>() {
            Ok(Some(p)) => p,
            Ok(None) => return self.reply_error(sink, id, error::bad_request("a subscriptions request body")).await,
            Err(e) => return self.reply_error(sink, id, e).await,
        };
        let ack = json!({
            "estimated_delivery_in_ms": ESTIMATED_DELIVERY_MS,
            "max_batch_size": MAX_BATCH,
            "ttl_in_s": -1,
        });
        if let Flow::Stop = self.reply(sink, id, CdsReply::json(200, &ack)).await {
            return Flow::Stop;
        }
        let correlation = poke.correlation_id.unwrap_or(Value::Null);
        for request in poke.requests.iter().take(MAX_BATCH) {
            let object_type = request.object_type.as_deref().unwrap_or_default();
            let outcome = match poke.action.as_str() {
                "establish" if object_type == "live_query" => self.establish_query(sink, request).await,
                "establish" => {
                    self.establish(sink, &request.object_sid, object_type, request.last_event_id.as_ref()).await
                }
                "cancel" => {
                    if let Ok(sid) = Sid::parse(&request.object_sid)
                        && !self.cancel_query(&sid).await
                    {
                        self.subs.cancel(&sid).await;
                    }
                    Ok(Some((
                        "subscription_canceled",
                        json!({ "object_sid": request.object_sid, "object_type": object_type }),
                    )))
                }
                other => Err(error::bad_request(format!("unknown subscription action '{other}'"))),
            };
            let (event_type, event) = match outcome {
                Ok(Some(outcome)) => outcome,
                // The connection ended while replaying.
                Ok(None) => return Flow::Stop,
                Err(e) => (
                    "subscription_failed",
                    json!({ "object_sid": request.object_sid, "object_type": object_type, "error": e.body() }),
                ),
            };
            let payload = json!({ "event_type": event_type, "correlation_id": correlation, "event": event });
            let frame = events::notification(&server_frame_id(), SYNC_EVENT, payload.to_string().as_bytes());
            if let Flow::Stop = send(sink, frame).await {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Subscribes first, then replays from the change log: an event committed meanwhile is
    /// queued by the hub and dropped by the cursor if the replay already sent it.
    async fn establish(
        &mut self,
        sink: &mut Writer,
        object_sid: &str,
        object_type: &str,
        last_event_id: Option<&Value>,
    ) -> Result<Option<(&'static str, Value)>, CdsError> {
        let kind = match object_type {
            "document" => ObjectKind::Document,
            "list" => ObjectKind::List,
            "map" => ObjectKind::Map,
            "stream" => ObjectKind::Stream,
            other => {
                return Err(error::bad_request(format!("cannot subscribe to a '{other}'")));
            }
        };
        let target = Target::Object(kind);
        let engine = self.state.engine.clone();
        let object = engine
            .readable_object(&self.caller.principal, &self.caller.service, kind, object_sid)
            .await
            .map_err(|e| error::from_core(e, target))?;
        let sid = object.sid;
        let max = self.state.settings.max_subscriptions;
        if !self.subs.contains(&sid) && self.subs.len() >= max {
            let message = format!("a connection may hold at most {max} subscriptions");
            return Err(CdsError::new(TOO_MANY_SUBSCRIPTIONS, message));
        }
        let fresh = self.subs.register(&sid).await.map_err(|e| error::from_core(e, target))?;
        let start = match self.start_position(last_event_id).await {
            Ok(s) => s,
            Err(CoreError::ResyncRequired) if kind == ObjectKind::Document => {
                // What the client missed is gone from the log, but a document's current state
                // says all of it: send that, then carry on from its position.
                let cx = Cx {
                    engine: &engine,
                    principal: &self.caller.principal,
                    service: &self.caller.service,
                    urls: &self.urls,
                };
                let read =
                    || engine.object(&self.caller.principal, self.caller.service.sid.as_str(), kind, sid.as_str());
                let (document, position) = at_position(&cx, target, |o: &SyncObject| o.sid.clone(), read).await?;
                if let Flow::Stop = send(sink, events::snapshot(&document, position)).await {
                    return Ok(None);
                }
                Start { seq: position, at_head: false }
            }
            Err(e) => {
                if fresh {
                    self.subs.cancel(&sid).await;
                }
                return Err(error::from_core(e, Target::Subscriptions));
            }
        };
        self.subs.rewind(&sid, start.seq);
        let mut replay = Replay::new(&self.caller.service.sid, &sid, start);
        while let Some(events) = replay.next_page(&engine).await.map_err(|e| error::from_core(e, target))? {
            for event in events {
                if self.outlet.take_echo(event.seq) {
                    continue;
                }
                if let Some(frame) = events::render(&event, &self.urls, Channel::Replay)
                    && sink.feed(frame).await.is_err()
                {
                    return Ok(None);
                }
            }
        }
        if sink.flush().await.is_err() {
            return Ok(None);
        }
        let position = replay.cursor();
        self.subs.set_cursor(&sid, position);
        let established = json!({
            "object_sid": sid,
            "object_type": object_type,
            "replay_status": "completed",
            "last_event_id": position,
        });
        Ok(Some(("subscription_established", established)))
    }

    /// Where a replay starts: after the client's last seen event, or at the head for a client
    /// that has seen none (streams). A position past the head (from another store) starts at
    /// the head; one older than the retained log cannot be replayed (`ResyncRequired`).
    pub(super) async fn start_position(&self, last_event_id: Option<&Value>) -> Result<Start, CoreError> {
        let service =
            self.state.engine.store().service(&ObjectRef::Sid(self.caller.service.sid.clone())).await?.ok_or_else(
                || CoreError::not_found(ferrosync_core::error::NotFoundKind::Service, self.caller.service.sid.as_str()),
            )?;
        let claimed = match last_event_id {
            Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_i64().map(|_| 0)),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let seq = match claimed {
            None => service.head_seq,
            Some(seq) if seq > service.head_seq => service.head_seq,
            Some(seq) if seq < service.pruned_seq => return Err(CoreError::ResyncRequired),
            Some(seq) => seq,
        };
        Ok(Start { seq, at_head: seq == service.head_seq })
    }
}
