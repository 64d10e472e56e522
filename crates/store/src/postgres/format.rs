//! How the cluster store keeps events: whole, or without the head every reader rebuilds
//! (`{"seq":…,"token":"…","service_sid":"…",`, a third of a small event), as the embedded store
//! does. Readers take both. Writers keep events short only once the cluster says so, in the
//! `meta` table: a node on an older version would serve a short event as it is, so the switch
//! is the operator's, made once every node runs a version that reads them
//! (`ferrosync event-format`). Each node's writer reads the setting again at most every
//! [`REFRESH`]; switching back waits for every writer to have read it, then rewrites the short
//! events whole.

use super::conn::PgConn;
use super::rows::{get, sid_col};
use ferrosync_core::log::{event_from_body, stored_body};
use ferrosync_core::sid::Sid;
use ferrosync_core::store::StoreError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "event_format";

/// How long a writer keeps the setting it read: a switch reaches every node's writer within
/// it (and a batch it had begun).
pub const REFRESH: Duration = Duration::from_secs(10);

/// How many events one statement rewrites whole.
pub(crate) const REWRITE_BATCH: i64 = 1_000;

/// How new events are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFormat {
    /// The whole text, as every version reads it.
    #[default]
    Whole,
    /// Without the head readers rebuild; read by this version and later.
    Short,
}

impl EventFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            EventFormat::Whole => "whole",
            EventFormat::Short => "short",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "whole" => Some(EventFormat::Whole),
            "short" => Some(EventFormat::Short),
            _ => None,
        }
    }
}

/// The cluster's setting; `Whole` until one is made.
pub(crate) fn read(conn: &mut PgConn) -> Result<EventFormat, StoreError> {
    let Some(row) = conn.query_opt("SELECT value FROM meta WHERE key = $1", &[&KEY])? else {
        return Ok(EventFormat::Whole);
    };
    let value: &str = get(&row, 0, "meta value")?;
    EventFormat::parse(value).ok_or_else(|| StoreError::Corrupt(format!("meta {KEY} is '{value}'")))
}

pub(crate) fn write(conn: &mut PgConn, format: EventFormat) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&KEY, &format.as_str()],
    )
    .map(drop)
}

/// What a writer's connection knows of the setting, and when it read it: a new connection
/// reads it at its first batch.
#[derive(Debug, Default)]
pub(crate) struct Known {
    format: EventFormat,
    read_at: Option<Instant>,
}

impl Known {
    /// What the store keeps of event `seq`'s text `json`.
    pub(crate) fn body<'a>(&self, epoch: &str, service: &Sid, seq: u64, json: &'a str) -> &'a str {
        match self.format {
            EventFormat::Whole => json,
            EventFormat::Short => stored_body(epoch, service, seq, json),
        }
    }
}

/// Reads the setting again on the writer's connection if what it knows is older than
/// [`REFRESH`], or if this node changed it (`changed`). A failed read keeps what was known: a
/// batch is not failed for it.
pub(crate) fn refresh(conn: &mut PgConn, changed: &AtomicBool) {
    let stale = conn.event_format.read_at.is_none_or(|t| t.elapsed() >= REFRESH);
    if !(changed.swap(false, Ordering::AcqRel) || stale) {
        return;
    }
    match read(conn) {
        Ok(format) => conn.event_format = Known { format, read_at: Some(Instant::now()) },
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the event format; keeping {}", conn.event_format.format.as_str())
        }
    }
}

/// Rewrites whole the events kept short among the next `limit` after `from` in the log's key
/// order; returns how many it rewrote and where it stopped (`None` at the end of the log).
pub(crate) fn rewrite_whole(
    conn: &mut PgConn,
    epoch: &str,
    from: Option<(String, i64)>,
    limit: i64,
) -> Result<(u64, Option<(String, i64)>), StoreError> {
    let (service, seq) = from.unwrap_or_default();
    // A walk along the primary key: each event is looked at once, however many are short.
    let rows = conn.query(
        "SELECT service_sid, seq, body FROM events WHERE (service_sid, seq) > ($1, $2)
         ORDER BY service_sid, seq LIMIT $3",
        &[&service, &seq, &limit],
    )?;
    let mut last = None;
    let (mut services, mut seqs, mut bodies) = (Vec::new(), Vec::new(), Vec::new());
    for row in &rows {
        let (service, seq): (String, i64) = (get(row, 0, "event service")?, get(row, 1, "event seq")?);
        let body: String = get(row, 2, "event body")?;
        if !body.starts_with('{') {
            bodies.push(event_from_body(epoch, &sid_col(row, 0)?, seq as u64, body).get().to_owned());
            services.push(service.clone());
            seqs.push(seq);
        }
        last = Some((service, seq));
    }
    let rewritten = if bodies.is_empty() {
        0
    } else {
        conn.execute(
            "UPDATE events e SET body = u.body FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(s, q, body)
             WHERE e.service_sid = u.s AND e.seq = u.q AND left(e.body, 1) <> '{'",
            &[&services, &seqs, &bodies],
        )?
    };
    let more = rows.len() as i64 == limit;
    Ok((rewritten, last.filter(|_| more)))
}
