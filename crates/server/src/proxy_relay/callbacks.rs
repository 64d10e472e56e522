//! The Proxy service's own callbacks, each a form signed with `X-Twilio-Signature` (the
//! account's auth token) in the shape Twilio sends:
//!
//! - `intercept_callback_url`, before a message is relayed: a 2xx lets it through; any other
//!   answer blocks it at once; an unreachable receiver or a 5xx is retried, then blocks.
//! - `callback_url`, on each interaction status change (`interaction…`, `inbound…`,
//!   `outbound…` fields) and for each alert (the debugger webhook's `Sid`, `Level`, `Payload`, …).
//! - `out_of_session_callback_url`, for a message no open session holds, like an inbound SMS
//!   webhook; the `<Message>`s of a TwiML answer go back to the sender through the delivery
//!   channels (best effort).

use super::delivery::{Delivered, Leg, Outgoing};
use super::{Done, Relay, RelayError, twiml};
use ferrosync_core::engine::{InboundMessage, ProxyAlert, ProxyInteraction, ProxyService};
use ferrosync_core::sid::Sid;
use serde_json::json;
use tokio_util::sync::CancellationToken;

type Form = Vec<(String, String)>;

fn push(form: &mut Form, name: &str, value: impl Into<String>) {
    form.push((name.to_owned(), value.into()));
}

/// Pushes `value` when it is present and not empty.
fn push_some<T: ToString>(form: &mut Form, name: &str, value: Option<&T>) {
    if let Some(v) = value.map(ToString::to_string).filter(|v| !v.is_empty()) {
        push(form, name, v);
    }
}

/// An interaction's fields as Twilio's Proxy callbacks carry them; empty ones are left out.
pub(super) fn interaction_form(account_sid: &Sid, i: &ProxyInteraction) -> Form {
    let mut form = Form::new();
    push(&mut form, "interactionSid", i.sid.to_string());
    push(&mut form, "interactionSessionSid", i.session_sid.to_string());
    push(&mut form, "interactionServiceSid", i.service_sid.to_string());
    push(&mut form, "interactionAccountSid", account_sid.to_string());
    push_some(&mut form, "interactionType", Some(&i.kind));
    push_some(&mut form, "interactionData", Some(&i.data));
    push_some(&mut form, "inboundParticipantSid", i.inbound_participant_sid.as_ref());
    push_some(&mut form, "inboundResourceSid", i.inbound_resource_sid.as_ref());
    push_some(&mut form, "inboundResourceStatus", i.inbound_resource_status.as_ref());
    push_some(&mut form, "inboundResourceType", i.inbound_resource_type.as_ref());
    push_some(&mut form, "outboundParticipantSid", i.outbound_participant_sid.as_ref());
    push_some(&mut form, "outboundResourceSid", i.outbound_resource_sid.as_ref());
    push_some(&mut form, "outboundResourceStatus", i.outbound_resource_status.as_ref());
    push_some(&mut form, "outboundResourceType", i.outbound_resource_type.as_ref());
    form
}

/// The intercept callback's form: the interaction as recorded when it can be read (else what
/// the job says of it), and the message's outbound leg as `From`, `To` and `Body`.
fn intercept_form(account_sid: &Sid, svc: &ProxyService, leg: &Leg, recorded: Option<&ProxyInteraction>) -> Form {
    let mut form = match recorded {
        Some(i) => interaction_form(account_sid, i),
        None => {
            let mut data = json!({ "body": leg.body });
            if !leg.media.is_empty() {
                data["media"] = json!(leg.media);
            }
            let mut form = Form::new();
            push(&mut form, "interactionSid", leg.interaction_sid.to_string());
            push(&mut form, "interactionSessionSid", leg.session_sid.to_string());
            push(&mut form, "interactionServiceSid", svc.sid.to_string());
            push(&mut form, "interactionAccountSid", account_sid.to_string());
            push(&mut form, "interactionType", "message");
            push(&mut form, "interactionData", data.to_string());
            form
        }
    };
    push(&mut form, "From", leg.from.clone());
    push(&mut form, "To", leg.to.clone());
    push(&mut form, "Body", leg.body.clone());
    form
}

/// The debugger webhook's form for an alert.
pub(super) fn alert_form(account_sid: &Sid, alert: &ProxyAlert) -> Form {
    let payload = json!({
        "error_code": alert.code.to_string(),
        "message": alert.message,
        "service_sid": alert.service_sid,
        "session_sid": alert.session_sid,
        "participant_sid": alert.participant_sid,
    });
    let mut form = Form::new();
    push(&mut form, "Sid", alert.sid.to_string());
    push(&mut form, "AccountSid", account_sid.to_string());
    push(&mut form, "Level", alert.level.to_ascii_uppercase());
    push(&mut form, "Timestamp", alert.date_created.to_rfc3339());
    push(&mut form, "PayloadType", "application/json");
    push(&mut form, "Payload", payload.to_string());
    form
}

/// An inbound SMS webhook's form for a message no session holds.
pub(super) fn out_of_session_form(account_sid: &Sid, message: &InboundMessage) -> Form {
    let mut form = Form::new();
    push(&mut form, "AccountSid", account_sid.to_string());
    push(&mut form, "From", message.from.clone());
    push(&mut form, "To", message.to.clone());
    push(&mut form, "Body", message.body.clone());
    push(&mut form, "NumMedia", message.media.len().to_string());
    for (i, url) in message.media.iter().enumerate() {
        push(&mut form, &format!("MediaUrl{i}"), url.clone());
    }
    form
}

impl Relay {
    /// Asks the intercept callback about `leg`, as `recorded` (what the job says when that
    /// could not be read); true when the message may go on. `None` when stopped first.
    pub(super) async fn intercept(
        &self,
        svc: &ProxyService,
        url: &str,
        leg: &Leg,
        recorded: Option<&ProxyInteraction>,
        stop: &CancellationToken,
    ) -> Option<bool> {
        let form = intercept_form(self.engine.account_sid(), svc, leg, recorded);
        match self.post_form(url, &form, "intercept", RelayError::unanswered, stop).await? {
            Ok(_) => Some(true),
            Err(e) => {
                tracing::info!(interaction = %leg.interaction_sid, error = %e, "the intercept callback blocked a message");
                Some(false)
            }
        }
    }

    /// The `Status` job: the interaction as it now is, to `callback_url`.
    pub(super) async fn status(
        &self,
        service_sid: &Sid,
        interaction: &ProxyInteraction,
        stop: &CancellationToken,
    ) -> Option<Done> {
        let Some(svc) = self.callback_target(service_sid, stop).await? else { return Some(Done::Skipped) };
        let Some(url) = svc.callback_url.as_deref() else { return Some(Done::Skipped) };
        let form = interaction_form(self.engine.account_sid(), interaction);
        self.notify(url, &form, "status", stop).await
    }

    /// The `Alert` job: the debugger webhook, to `callback_url`.
    pub(super) async fn alert(&self, service_sid: &Sid, alert: &ProxyAlert, stop: &CancellationToken) -> Option<Done> {
        let Some(svc) = self.callback_target(service_sid, stop).await? else { return Some(Done::Skipped) };
        let Some(url) = svc.callback_url.as_deref() else { return Some(Done::Skipped) };
        let form = alert_form(self.engine.account_sid(), alert);
        self.notify(url, &form, "alert", stop).await
    }

    /// The `OutOfSession` job: the message to `out_of_session_callback_url`, and its TwiML
    /// replies back to the sender.
    pub(super) async fn out_of_session(
        &self,
        service_sid: &Sid,
        message: &InboundMessage,
        stop: &CancellationToken,
    ) -> Option<Done> {
        let Some(svc) = self.callback_target(service_sid, stop).await? else { return Some(Done::Skipped) };
        let Some(url) = svc.out_of_session_callback_url.as_deref() else {
            tracing::info!(service = %svc.sid, "a message outside any session, and no OutOfSessionCallbackUrl; dropped");
            return Some(Done::Skipped);
        };
        let form = out_of_session_form(self.engine.account_sid(), message);
        let answer = match self.post_form(url, &form, "out_of_session", RelayError::retryable, stop).await? {
            Ok(answer) => answer,
            Err(e) => {
                tracing::error!(service = %svc.sid, error = %e, "the out-of-session callback was given up");
                return Some(Done::Failed);
            }
        };
        let text = answer.body.trim();
        if text.is_empty() {
            return Some(Done::Ok);
        }
        if answer.truncated {
            tracing::warn!(service = %svc.sid, "the out-of-session callback's answer is too long to read; no reply sent");
            return Some(Done::Ok);
        }
        let replies = match twiml::replies(text) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(service = %svc.sid, content_type = ?answer.content_type, error = %e,
                    "the out-of-session callback's answer is not TwiML; no reply sent");
                return Some(Done::Ok);
            }
        };
        // Best effort: a reply that cannot be delivered is logged, never retried as a whole.
        for reply in replies {
            let out = Outgoing {
                from: &message.to,
                to: &message.from,
                body: &reply.body,
                media: &reply.media,
                session_sid: None,
                interaction_sid: None,
            };
            match self.deliver(&svc, &out, stop).await? {
                Delivered::InApp | Delivered::Sent => {
                    tracing::debug!(to = %message.from, "out-of-session reply delivered")
                }
                Delivered::NoChannel => tracing::warn!(service = %svc.sid, to = %message.from,
                    "no DeliveryCallbackUrl for an out-of-session reply; not delivered"),
                Delivered::Failed(e) => {
                    tracing::warn!(service = %svc.sid, to = %message.from, error = %e, "an out-of-session reply failed")
                }
            }
        }
        Some(Done::Ok)
    }

    /// The Proxy service a callback job is for; `Ok(None)` (skipped) when it is gone or cannot
    /// be read.
    async fn callback_target(&self, sid: &Sid, stop: &CancellationToken) -> Option<Option<ProxyService>> {
        match self.service(sid, stop).await? {
            Ok(svc) => Some(svc),
            Err(e) => {
                tracing::error!(service = %sid, error = %e, "cannot read the Proxy service; its callback is skipped");
                Some(None)
            }
        }
    }

    /// Posts a notification (status, alert) with retries.
    async fn notify(&self, url: &str, form: &Form, callback: &'static str, stop: &CancellationToken) -> Option<Done> {
        match self.post_form(url, form, callback, RelayError::retryable, stop).await? {
            Ok(_) => Some(Done::Ok),
            Err(e) => {
                tracing::error!(callback, error = %e, "a Proxy callback was given up");
                Some(Done::Failed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrosync_core::sid::SidKind;
    use ferrosync_core::timestamp::Timestamp;

    fn names(form: &Form) -> Vec<&str> {
        form.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn callbacks_carry_twilios_fields_and_leave_out_empty_ones() {
        let account = Sid::new(SidKind::Account);
        let now = Timestamp::now();
        let i = ProxyInteraction {
            sid: Sid::new(SidKind::ProxyInteraction),
            session_sid: Sid::new(SidKind::ProxySession),
            service_sid: Sid::new(SidKind::ProxyService),
            data: r#"{"body":"hi"}"#.into(),
            kind: "message".into(),
            participant_sid: None,
            inbound_participant_sid: None,
            inbound_resource_sid: None,
            inbound_resource_status: Some(String::new()),
            inbound_resource_type: None,
            outbound_participant_sid: Some(Sid::new(SidKind::ProxyParticipant)),
            outbound_resource_sid: Some(Sid::new(SidKind::Message)),
            outbound_resource_status: Some("queued".into()),
            outbound_resource_type: Some("Message".into()),
            date_created: now,
            date_updated: now,
        };
        let form = interaction_form(&account, &i);
        assert_eq!(
            names(&form),
            [
                "interactionSid",
                "interactionSessionSid",
                "interactionServiceSid",
                "interactionAccountSid",
                "interactionType",
                "interactionData",
                "outboundParticipantSid",
                "outboundResourceSid",
                "outboundResourceStatus",
                "outboundResourceType"
            ]
        );

        let alert = ProxyAlert {
            sid: Sid::new(SidKind::Alert),
            code: 80802,
            level: "error".into(),
            service_sid: i.service_sid.clone(),
            session_sid: Some(i.session_sid.clone()),
            participant_sid: None,
            message: "conflict".into(),
            date_created: now,
        };
        let form = alert_form(&account, &alert);
        assert_eq!(names(&form), ["Sid", "AccountSid", "Level", "Timestamp", "PayloadType", "Payload"]);
        assert_eq!(form[2].1, "ERROR");
        let payload: serde_json::Value = serde_json::from_str(&form[5].1).expect("JSON");
        assert_eq!((&payload["error_code"], &payload["participant_sid"]), (&json!("80802"), &json!(null)));

        let message = InboundMessage {
            from: "+15550001111".into(),
            to: "+15550009999".into(),
            body: "hello".into(),
            media: vec!["https://m.example/1".into(), "https://m.example/2".into()],
        };
        let form = out_of_session_form(&account, &message);
        assert_eq!(names(&form), ["AccountSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "MediaUrl1"]);
        assert_eq!(form[4].1, "2");
    }
}
