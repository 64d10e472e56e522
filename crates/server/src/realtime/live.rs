//! Live queries' events: what a change-log event does to one query's results, as an event of
//! its own (`live_query_item_updated`, `live_query_item_removed`, `live_query_map_removed`)
//! that carries the query's id, sits at the change-log event's position, and resumes from its
//! token like any other event.

use ferrosync_core::index::QueryChange;
use ferrosync_core::log::Event;
use ferrosync_core::sid::Sid;
use ferrosync_core::store::{EventJson, StoredEvent};
use ferrosync_protocol::query::QueryEvent;

/// The event a query's subscriber gets for `change`, made by `event`.
pub fn query_event(query: &Sid, event: &Event, change: QueryChange) -> Option<StoredEvent> {
    let body = QueryEvent {
        seq: event.seq,
        token: event.token.clone(),
        service_sid: event.service_sid.to_string(),
        query_id: query.to_string(),
        date: event.date,
        change,
    };
    let json = EventJson::serialized(&body).ok()?;
    Some(StoredEvent { seq: event.seq, object_sid: query.clone(), json })
}
