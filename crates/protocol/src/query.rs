//! Indexes over Maps, instant queries and live-query events.

use crate::kinds::Order;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An index declaration: over the Map `map`, or every Map whose unique name starts with
/// `map_prefix`; `fields` are kept sorted for equality, `in` and range lookups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IndexView {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_prefix: Option<String>,
    #[serde(default)]
    pub fields: Vec<String>,
}

/// The body of `PUT /indexes/{name}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutIndex {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map_prefix: Option<String>,
    #[serde(default)]
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// An expression of the Live Query language, e.g. `data.team == "eng" and data.age >= 30`.
    pub query: String,
    /// 1 to 1000, default 50.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
    /// `asc` (default) or `desc`, by Map and key.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryItemView {
    pub map: String,
    pub key: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
    pub revision: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryView {
    pub items: Vec<QueryItemView>,
    pub next_page_token: Option<String>,
    /// The change-log position the results are as of: a live query subscribed with it misses
    /// nothing that happened after.
    pub since: String,
}

/// What a change did to one live query's results. It sits at the change's position in the
/// log, so `token` resumes the query right after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryEvent {
    pub seq: u64,
    pub token: String,
    pub service_sid: String,
    pub query_id: String,
    pub date: crate::timestamp::Timestamp,
    #[serde(flatten)]
    pub change: QueryChange,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QueryChange {
    /// The item entered the results or changed while in them.
    #[serde(rename = "live_query_item_updated")]
    ItemUpdated { map: String, key: String, data: Value, revision: u64 },
    /// The item left the results (changed so it no longer matches, or was removed).
    #[serde(rename = "live_query_item_removed")]
    ItemRemoved { map: String, key: String },
    /// The whole Map was removed: every result from it left.
    #[serde(rename = "live_query_map_removed")]
    MapRemoved { map: String },
}
