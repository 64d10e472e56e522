//! Routes of the twilsock face: the WebSocket mount, and the tunnelled CDS paths → an
//! [`Endpoint`] (parsed before any work, so every request has a stable operation name).

use super::error::{self, CdsError};
use super::request::{CdsReply, CdsRequest, Cx};
use super::{connection, items, objects, queries, streams};
use crate::state::AppState;
use axum::Router;
use axum::routing::get;
use ferrosync_core::model::ObjectKind;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Where the SDK's `twilsock.uri` points.
pub const WS_PATH: &str = "/twilio/twilsock/v3/wsconnect";
/// The path of the `cdsUri` the SDK is given; tunnelled paths start with it.
pub const CDS_PREFIX: &str = "/twilio/cds";

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(WS_PATH, get(connection::upgrade))
}

/// A CDS resource, addressed by the path of a tunnelled request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v4/Subscriptions`
    Subscriptions,
    /// `/v3/{Documents|Lists|Maps|Streams}`
    Collection(ObjectKind),
    /// `/v3/{kind}/{id}`: a SID or unique name.
    Object(ObjectKind, String),
    /// `/v3/{Lists|Maps}/{id}/Items`
    Items(ObjectKind, String),
    /// `/v3/{Lists|Maps}/{id}/Items/{index or key}`
    Item(ObjectKind, String, String),
    /// `/v3/Lists/{id}/Context`
    ListContext(String),
    /// `/v3/Streams/{id}/Messages`
    StreamMessages(String),
    /// `/v3/Insights/{index}/Items`: live and instant queries over an index of the service.
    Insights(String),
}

impl Endpoint {
    /// Parses a tunnelled path, with or without the [`CDS_PREFIX`]. Segments are
    /// percent-decoded (the SDK encodes ids and keys).
    pub fn parse(path: &str) -> Result<Self, CdsError> {
        let unknown = || error::not_found(format!("no CDS resource at {path}"));
        let rest = path.strip_prefix(CDS_PREFIX).unwrap_or(path);
        let mut segments = Vec::new();
        for raw in rest.split('/').filter(|s| !s.is_empty()) {
            segments.push(decode(raw).ok_or_else(|| error::bad_request(format!("{path} is not valid UTF-8")))?);
        }
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let kind = |name: &str| match name {
            "Documents" => Some(ObjectKind::Document),
            "Lists" => Some(ObjectKind::List),
            "Maps" => Some(ObjectKind::Map),
            "Streams" => Some(ObjectKind::Stream),
            _ => None,
        };
        let with_items = |k: ObjectKind| matches!(k, ObjectKind::List | ObjectKind::Map);
        Ok(match seg.as_slice() {
            ["v4", "Subscriptions"] => Endpoint::Subscriptions,
            ["v3", "Insights", index, "Items"] => Endpoint::Insights(index.to_string()),
            ["v3", c] => Endpoint::Collection(kind(c).ok_or_else(unknown)?),
            ["v3", c, id] => Endpoint::Object(kind(c).ok_or_else(unknown)?, id.to_string()),
            ["v3", "Lists", id, "Context"] => Endpoint::ListContext(id.to_string()),
            ["v3", "Streams", id, "Messages"] => Endpoint::StreamMessages(id.to_string()),
            ["v3", c, id, "Items"] => match kind(c) {
                Some(k) if with_items(k) => Endpoint::Items(k, id.to_string()),
                _ => return Err(unknown()),
            },
            ["v3", c, id, "Items", item] => match kind(c) {
                Some(k) if with_items(k) => Endpoint::Item(k, id.to_string(), item.to_string()),
                _ => return Err(unknown()),
            },
            _ => return Err(unknown()),
        })
    }
}

/// Runs a tunnelled request (all but `/v4/Subscriptions`, which the connection answers).
pub async fn dispatch(cx: &Cx<'_>, req: &CdsRequest<'_>) -> Result<CdsReply, CdsError> {
    use ObjectKind::{List, Map};
    match (req.method.to_ascii_uppercase().as_str(), &req.endpoint) {
        ("GET", Endpoint::Object(kind, id)) => objects::fetch(cx, req, *kind, id).await,
        ("POST", Endpoint::Collection(kind)) => objects::create(cx, req, *kind).await,
        ("POST", Endpoint::Object(kind, id)) => objects::update(cx, req, *kind, id).await,
        ("DELETE", Endpoint::Object(kind, id)) => objects::remove(cx, req, *kind, id).await,
        ("GET", Endpoint::Items(kind, id)) => items::query(cx, req, *kind, id).await,
        ("POST", Endpoint::Items(List, id)) => items::push(cx, req, id).await,
        ("GET", Endpoint::Item(kind, id, key)) => items::fetch(cx, *kind, id, key).await,
        ("PUT", Endpoint::Item(Map, id, key)) => items::put(cx, req, id, key).await,
        ("POST", Endpoint::Item(kind, id, key)) => items::update(cx, req, *kind, id, key).await,
        ("DELETE", Endpoint::Item(kind, id, key)) => items::remove(cx, req, *kind, id, key).await,
        ("GET", Endpoint::ListContext(id)) => items::context(cx, id).await,
        ("POST", Endpoint::StreamMessages(id)) => streams::publish(cx, req, id).await,
        ("POST", Endpoint::Insights(index)) => queries::items(cx, req, index).await,
        (method, _) => Err(error::method_not_allowed(method, req.path)),
    }
}

fn decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

/// Query parameters of a tunnelled request, decoded; for a repeated name the first value.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn from_wire(params: Option<&Map<String, Value>>) -> Result<Self, CdsError> {
        let mut out = HashMap::new();
        for (name, value) in params.into_iter().flatten() {
            let first = match value {
                Value::Array(values) => values.first(),
                other => Some(other),
            };
            let text = match first {
                Some(Value::String(s)) => decode(&s.replace('+', " "))
                    .ok_or_else(|| error::bad_request(format!("query parameter {name} is not valid UTF-8")))?,
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => continue,
            };
            out.insert(name.clone(), text);
        }
        Ok(Params(out))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tunnelled_paths_parse_with_or_without_the_prefix() {
        assert_eq!(Endpoint::parse("/twilio/cds/v4/Subscriptions").expect("ok"), Endpoint::Subscriptions);
        assert_eq!(Endpoint::parse("/v3/Documents").expect("ok"), Endpoint::Collection(ObjectKind::Document));
        assert_eq!(
            Endpoint::parse("/twilio/cds/v3/Documents/My%20Doc").expect("ok"),
            Endpoint::Object(ObjectKind::Document, "My Doc".into())
        );
        assert_eq!(
            Endpoint::parse("/twilio/cds/v3/Maps/m/Items/a%2Fb").expect("ok"),
            Endpoint::Item(ObjectKind::Map, "m".into(), "a/b".into())
        );
        assert_eq!(Endpoint::parse("/v3/Lists/l/Items").expect("ok"), Endpoint::Items(ObjectKind::List, "l".into()));
        assert_eq!(Endpoint::parse("/v3/Streams/s/Messages").expect("ok"), Endpoint::StreamMessages("s".into()));
        assert_eq!(Endpoint::parse("/v3/Lists/l/Context").expect("ok"), Endpoint::ListContext("l".into()));
        assert_eq!(
            Endpoint::parse("/twilio/cds/v3/Insights/tr-worker/Items").expect("ok"),
            Endpoint::Insights("tr-worker".into())
        );
        for bad in [
            "/v3/Insights/tr-worker",
            "/v3/Insights",
            "/v3/Documents/d/Items",
            "/v3/Streams/s/Items/1",
            "/v3/Things",
            "/v5/Subscriptions",
            "/",
            "",
        ] {
            assert_eq!(Endpoint::parse(bad).expect_err(bad).status, 404, "{bad}");
        }
        assert_eq!(Endpoint::parse("/v3/Documents/%ff").expect_err("bad utf-8").status, 400);
    }

    #[test]
    fn params_are_decoded_and_repeats_keep_the_first() {
        let wire = json!({"Key": "a%20b", "PageSize": "10", "Order": ["desc", "asc"], "HideExpired": true});
        let params = Params::from_wire(wire.as_object()).expect("ok");
        assert_eq!(params.get("Key"), Some("a b"));
        assert_eq!(params.get("PageSize"), Some("10"));
        assert_eq!(params.get("Order"), Some("desc"));
        assert_eq!(params.get("HideExpired"), Some("true"));
        assert_eq!(params.get("From"), None);
    }
}
