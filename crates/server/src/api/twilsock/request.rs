//! A tunnelled CDS request: who asks, what it carries, what it answers, and the helpers every
//! operation uses (absolute URLs, TTL and If-Match values, event ids read consistently).

use super::error::{self, CdsError, Target};
use super::router::{CDS_PREFIX, Endpoint, Params};
use ferrosync_core::auth::Principal;
use ferrosync_core::engine::Engine;
use ferrosync_core::model::{ItemKey, ObjectKind, Service};
use ferrosync_core::sid::Sid;
use ferrosync_core::{CoreError, Timestamp};
use ferrosync_protocol::rest::revision_of_etag;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::future::Future;

/// Everything an operation may use: the engine, the connection's identity and service, and
/// the base of the URLs it hands out.
pub struct Cx<'a> {
    pub engine: &'a Engine,
    pub principal: &'a Principal,
    pub service: &'a Service,
    pub urls: &'a Urls,
}

impl Cx<'_> {
    /// The service as the engine names it.
    pub fn svc(&self) -> &str {
        self.service.sid.as_str()
    }
}

/// A tunnelled request, parsed.
pub struct CdsRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub endpoint: Endpoint,
    pub params: Params,
    pub if_match: Option<String>,
    pub body: &'a [u8],
}

impl CdsRequest<'_> {
    /// The JSON body as `T`; an absent or non-object body reads as `T::default()` (the SDK's
    /// DELETEs carry the literal payload `"data_sync"`).
    pub fn json<T: DeserializeOwned + Default>(&self) -> Result<T, CdsError> {
        if self.body.is_empty() {
            return Ok(T::default());
        }
        let value: Value = serde_json::from_slice(self.body)
            .map_err(|e| error::bad_request(format!("the request body is not JSON: {e}")))?;
        if !value.is_object() {
            return Ok(T::default());
        }
        serde_json::from_value(value).map_err(|e| error::bad_request(format!("the request body: {e}")))
    }
}

/// A tunnelled answer.
#[derive(Debug)]
pub struct CdsReply {
    pub status: u16,
    pub etag: Option<String>,
    /// The body as JSON text, serialised once from the reply's view.
    pub body: Option<Vec<u8>>,
    /// The change-log position of the event this request wrote, if any: its echo is not sent
    /// back to the connection that caused it (the SDK has applied it already).
    pub wrote: Option<u64>,
}

impl CdsReply {
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        // Views always serialise; `null` stands in should one ever not.
        let body = serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec());
        CdsReply { status, etag: None, body: Some(body), wrote: None }
    }

    pub fn with_etag(mut self, revision: u64) -> Self {
        self.etag = Some(revision.to_string());
        self
    }

    pub fn wrote(mut self, seq: Option<u64>) -> Self {
        self.wrote = seq;
        self
    }
}

/// Absolute URLs under the CDS base the client addressed (the SDK re-tunnels them, and wants
/// them absolute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    base: String,
}

impl Urls {
    /// The base for a client that tunnels requests to `host`.
    pub fn for_host(host: &str) -> Self {
        let host = if host.is_empty() || host.contains(['/', ' ', '?', '#']) { "localhost" } else { host };
        Urls { base: format!("http://{host}{CDS_PREFIX}") }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn object(&self, kind: ObjectKind, sid: &Sid) -> String {
        format!("{}/v3/{}/{sid}", self.base, collection(kind))
    }

    pub fn items(&self, kind: ObjectKind, sid: &Sid) -> String {
        format!("{}/Items", self.object(kind, sid))
    }

    pub fn item(&self, kind: ObjectKind, sid: &Sid, key: &ItemKey) -> String {
        match key {
            ItemKey::Index(i) => format!("{}/{i}", self.items(kind, sid)),
            ItemKey::Key(k) => format!("{}/{}", self.items(kind, sid), utf8_percent_encode(k, NON_ALPHANUMERIC)),
        }
    }

    pub fn link(&self, kind: ObjectKind, sid: &Sid, name: &str) -> String {
        format!("{}/{name}", self.object(kind, sid))
    }
}

fn collection(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Document => "Documents",
        ObjectKind::List => "Lists",
        ObjectKind::Map => "Maps",
        ObjectKind::Stream => "Streams",
    }
}

/// A TTL as the SDK sends it: a non-negative integer of seconds (0: never expires).
pub fn ttl(value: Option<&Value>) -> Result<Option<u64>, CdsError> {
    let invalid =
        |v: &Value| CdsError::new(error::code::INVALID_TTL, format!("ttl must be an integer of seconds, got {v}"));
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| invalid(&Value::Number(n.clone()))),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid(&Value::String(s.clone()))),
        Some(other) => Err(invalid(other)),
    }
}

/// An If-Match value: a revision, bare or quoted (`-1` is handled by the caller that allows it).
pub fn revision(if_match: &str) -> Result<u64, CoreError> {
    revision_of_etag(if_match).ok_or_else(|| CoreError::InvalidIfMatch(if_match.to_owned()))
}

pub fn date(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// Reads something about `object` together with the change-log position it reflects: the
/// position is the head before the read, unless nothing touched the object between the read
/// and a second look at the head, which is then exact. A client that takes the position as
/// its last seen event id and replays from it sees every later event, and (but for a
/// persistent race) none twice.
pub async fn at_position<T, F, Fut>(
    cx: &Cx<'_>,
    target: Target,
    object: impl Fn(&T) -> Sid,
    read: F,
) -> Result<(T, u64), CdsError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, CoreError>>,
{
    let engine = cx.engine;
    let service = &cx.service.sid;
    let core = |e| error::from_core(e, target);
    let mut attempt = 0;
    loop {
        let before = crate::realtime::session::head_seq(engine, service).await.map_err(core)?;
        let value = read().await.map_err(core)?;
        let after = crate::realtime::session::head_seq(engine, service).await.map_err(core)?;
        if before == after {
            return Ok((value, after));
        }
        let sid = object(&value);
        let touched = engine.store().events(service, before, Some(&sid), 1).await.map_err(|e| core(e.into()))?;
        if touched.first().is_none_or(|e| e.seq > after) {
            return Ok((value, after));
        }
        attempt += 1;
        if attempt >= 3 {
            return Ok((value, before));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ttls_and_revisions_read_as_the_sdk_sends_them() {
        assert_eq!(ttl(Some(&json!(60))).expect("ok"), Some(60));
        assert_eq!(ttl(Some(&json!("60"))).expect("ok"), Some(60));
        assert_eq!(ttl(None).expect("ok"), None);
        assert_eq!(ttl(Some(&json!(-1))).expect_err("negative").code, 54011);
        assert_eq!(ttl(Some(&json!(1.5))).expect_err("fraction").code, 54011);
        assert_eq!(revision("7").expect("bare"), 7);
        assert_eq!(revision("\"7\"").expect("quoted"), 7);
        assert!(matches!(revision("x"), Err(CoreError::InvalidIfMatch(_))));
    }

    #[test]
    fn urls_are_absolute_and_encode_map_keys() {
        let urls = Urls::for_host("127.0.0.1:7700");
        let sid = Sid::new(ferrosync_core::SidKind::Map);
        assert_eq!(urls.object(ObjectKind::Map, &sid), format!("http://127.0.0.1:7700/twilio/cds/v3/Maps/{sid}"));
        assert_eq!(
            urls.item(ObjectKind::Map, &sid, &ItemKey::Key("a b/c".into())),
            format!("http://127.0.0.1:7700/twilio/cds/v3/Maps/{sid}/Items/a%20b%2Fc")
        );
        assert_eq!(Urls::for_host("evil/host").base(), "http://localhost/twilio/cds");
    }
}
