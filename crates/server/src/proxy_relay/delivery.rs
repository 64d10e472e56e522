//! Relaying a message to a participant, after the intercept callback let it through, by one of
//! two channels:
//!
//! - **in-app** (`app:IDENTITY`): a message published to the Sync Stream `proxy.IDENTITY` of the
//!   Sync service the Proxy service's `chat_instance_sid` names (else `default`), opened or
//!   created as the root, with a read permission for IDENTITY so that its access token may
//!   subscribe when the service enforces ACLs. The outbound leg becomes `delivered`.
//! - **a delivery webhook** (anything else: a phone number, a channel of a gateway): the JSON
//!   message POSTed to the service's `delivery_callback_url`, signed as Twilio signs JSON webhooks
//!   (`bodySHA256` in the URL, `X-Twilio-Signature` over that URL). A 2xx makes the leg `sent`;
//!   given up after the retries, `failed`; no delivery URL, `undelivered`.

use super::{Done, Relay, RelayError, retry_for};
use ferrosync_core::CoreError;
use ferrosync_core::auth::Principal;
use ferrosync_core::engine::{DEFAULT_SERVICE, OpenRequest, ProxyService};
use ferrosync_core::model::{ObjectKind, OpenMode};
use ferrosync_core::sid::Sid;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Prefix of in-app participants' identifiers.
const APP: &str = "app:";
/// Prefix of the Sync Stream an in-app participant's messages are published to.
const STREAM_PREFIX: &str = "proxy.";

/// An interaction's outbound leg: `body` and `media` `to` a participant, `from` its proxy
/// identifier.
#[derive(Debug, Clone)]
pub(super) struct Leg {
    pub session_sid: Sid,
    pub interaction_sid: Sid,
    pub from: String,
    pub to: String,
    pub body: String,
    pub media: Vec<String>,
}

/// A message to deliver, with the interaction it belongs to (none for a TwiML reply).
pub(super) struct Outgoing<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub body: &'a str,
    pub media: &'a [String],
    pub session_sid: Option<&'a Sid>,
    pub interaction_sid: Option<&'a Sid>,
}

/// How a delivery ended.
#[derive(Debug)]
pub(super) enum Delivered {
    /// Published to the participant's stream.
    InApp,
    /// Acknowledged by the delivery webhook.
    Sent,
    /// No channel: a non-app participant and no delivery URL.
    NoChannel,
    /// Refused, or given up after every attempt.
    Failed(RelayError),
}

impl Delivered {
    /// The outbound leg's status it makes.
    fn status(&self) -> &'static str {
        match self {
            Delivered::InApp => "delivered",
            Delivered::Sent => "sent",
            Delivered::NoChannel => "undelivered",
            Delivered::Failed(_) => "failed",
        }
    }
}

/// The identity of an in-app participant's identifier.
fn app_identity(identifier: &str) -> Option<&str> {
    identifier.strip_prefix(APP).filter(|identity| !identity.is_empty())
}

impl Relay {
    /// The `Relay` job: intercept, deliver, and record the outbound leg's status.
    pub(super) async fn relay(
        &self,
        service_sid: &Sid,
        leg: Leg,
        intercept: bool,
        stop: &CancellationToken,
    ) -> Option<Done> {
        let svc = match self.service(service_sid, stop).await? {
            Ok(Some(svc)) => svc,
            Ok(None) => {
                tracing::info!(service = %service_sid, "the Proxy service is gone; message not relayed");
                return Some(Done::Skipped);
            }
            Err(e) => {
                tracing::error!(service = %service_sid, error = %e, "cannot read the Proxy service; message not relayed");
                return Some(Done::Failed);
            }
        };
        // A job done again after a restart or a lost lease: its leg has left `queued` already
        // (or the interaction is gone with its session), so it is not sent twice.
        let read = || self.engine.proxy_interaction_for_relay(&leg.session_sid, &leg.interaction_sid);
        let recorded = match self.store_op(stop, read).await? {
            Ok(Some(i)) if i.outbound_resource_status.as_deref() == Some("queued") => Some(i),
            Ok(_) => return Some(Done::Skipped),
            // What the job says is enough when the record cannot be read.
            Err(_) => None,
        };
        if intercept
            && let Some(url) = svc.intercept_callback_url.as_deref()
            && !self.intercept(&svc, url, &leg, recorded.as_ref(), stop).await?
        {
            self.set_status(&svc, &leg, "canceled", stop).await?;
            return Some(Done::Blocked);
        }
        let message = Outgoing {
            from: &leg.from,
            to: &leg.to,
            body: &leg.body,
            media: &leg.media,
            session_sid: Some(&leg.session_sid),
            interaction_sid: Some(&leg.interaction_sid),
        };
        let delivered = self.deliver(&svc, &message, stop).await?;
        let done = match &delivered {
            Delivered::InApp | Delivered::Sent => Done::Ok,
            Delivered::NoChannel => {
                tracing::warn!(service = %svc.sid, to = %leg.to,
                    "the Proxy service has no DeliveryCallbackUrl for participants outside the app; message undelivered");
                Done::Undelivered
            }
            Delivered::Failed(e) => {
                tracing::error!(service = %svc.sid, interaction = %leg.interaction_sid, error = %e,
                    "the message could not be delivered");
                Done::Failed
            }
        };
        self.set_status(&svc, &leg, delivered.status(), stop).await?;
        Some(done)
    }

    /// Delivers `message` by its channel; `None` when stopped first.
    pub(super) async fn deliver(
        &self,
        svc: &ProxyService,
        message: &Outgoing<'_>,
        stop: &CancellationToken,
    ) -> Option<Delivered> {
        if let Some(identity) = app_identity(message.to) {
            return Some(match self.publish_in_app(svc, identity, message, stop).await? {
                Ok(()) => Delivered::InApp,
                Err(e) => Delivered::Failed(e.into()),
            });
        }
        let Some(url) = svc.delivery_callback_url.as_deref() else { return Some(Delivered::NoChannel) };
        let body = json!({
            "from": message.from,
            "to": message.to,
            "body": message.body,
            "media": message.media,
            "interaction_sid": message.interaction_sid,
        });
        let attempt = || self.sender.post_json(url, &body, "delivery");
        Some(match retry_for(&self.retry, stop, RelayError::retryable, attempt).await? {
            Ok(_) => Delivered::Sent,
            Err(e) => Delivered::Failed(e),
        })
    }

    /// Publishes to `identity`'s stream, made (with its read permission) when missing.
    async fn publish_in_app(
        &self,
        svc: &ProxyService,
        identity: &str,
        message: &Outgoing<'_>,
        stop: &CancellationToken,
    ) -> Option<Result<(), CoreError>> {
        let sync = svc.chat_instance_sid.as_deref().unwrap_or(DEFAULT_SERVICE);
        let stream = format!("{STREAM_PREFIX}{identity}");
        let data = json!({
            "from": message.from,
            "to": message.to,
            "body": message.body,
            "media": message.media,
            "interaction_sid": message.interaction_sid,
            "session_sid": message.session_sid,
        });
        let engine = &self.engine;
        let publish = || async {
            self.inbox(sync, &stream, identity).await?;
            engine.publish(&Principal::Root, sync, &stream, data.clone()).await.map(|_| ())
        };
        self.store_op(stop, publish).await
    }

    /// The `OpenInbox` job: an in-app participant's stream, ready before its first message.
    pub(super) async fn open_inbox(&self, service_sid: &Sid, identity: &str, stop: &CancellationToken) -> Option<Done> {
        let svc = match self.service(service_sid, stop).await? {
            Ok(Some(svc)) => svc,
            Ok(None) => return Some(Done::Skipped),
            Err(e) => {
                tracing::error!(service = %service_sid, error = %e, "cannot read the Proxy service");
                return Some(Done::Failed);
            }
        };
        let sync = svc.chat_instance_sid.as_deref().unwrap_or(DEFAULT_SERVICE);
        let stream = format!("{STREAM_PREFIX}{identity}");
        match self.store_op(stop, || self.inbox(sync, &stream, identity)).await? {
            Ok(()) => Some(Done::Ok),
            Err(e) => {
                tracing::error!(identity, error = %e, "cannot open an in-app participant's stream");
                Some(Done::Failed)
            }
        }
    }

    /// Opens `stream` of Sync service `sync` (made when missing) with a read permission for
    /// `identity`, keeping what else it was granted.
    async fn inbox(&self, sync: &str, stream: &str, identity: &str) -> Result<(), CoreError> {
        let engine = &self.engine;
        // Every message but a participant's first finds both in place: one read and no write,
        // where opening the stream is a write even when it exists.
        if let Ok(p) = engine.permission(&Principal::Root, sync, ObjectKind::Stream, stream, identity).await
            && p.read
        {
            return Ok(());
        }
        let req = OpenRequest {
            unique_name: Some(stream.to_owned()),
            mode: OpenMode::OpenOrCreate,
            ..OpenRequest::default()
        };
        engine.open(&Principal::Root, sync, ObjectKind::Stream, req).await?;
        let granted = match engine.permission(&Principal::Root, sync, ObjectKind::Stream, stream, identity).await {
            Ok(p) => Some(p),
            Err(CoreError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        if !granted.as_ref().is_some_and(|p| p.read) {
            let (write, manage) = granted.map_or((false, false), |p| (p.write, p.manage));
            engine
                .set_permission(&Principal::Root, sync, ObjectKind::Stream, stream, identity, true, write, manage)
                .await?;
        }
        Ok(())
    }

    /// Records the outbound leg's status (the service's callback hears of it through the
    /// `Status` job this queues); failures are logged.
    async fn set_status(&self, svc: &ProxyService, leg: &Leg, status: &str, stop: &CancellationToken) -> Option<()> {
        let engine = &self.engine;
        let set = || engine.set_proxy_outbound_status(&svc.sid, &leg.session_sid, &leg.interaction_sid, status);
        match self.store_op(stop, set).await? {
            Ok(Some(_)) => tracing::debug!(interaction = %leg.interaction_sid, status, "outbound status recorded"),
            Ok(None) => tracing::debug!(interaction = %leg.interaction_sid, "the interaction is gone"),
            Err(e) => tracing::error!(interaction = %leg.interaction_sid, status, error = %e,
                "cannot record an interaction's outbound status"),
        }
        Some(())
    }
}
