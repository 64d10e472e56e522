//! Statistics for a new database's busiest tables, before autovacuum's first round.
//!
//! Until PostgreSQL has analysed a table it plans with guesses. Looking up an object by name
//! in a service holding many objects of its kind, it then finds `objects_by_kind` as cheap as
//! the `(service, kind, name)` index and walks every object of the kind; a plan a connection
//! keeps goes on doing so. Autovacuum analyses a table at its first round after it filled (a
//! minute apart by default): long enough for a new deployment's first burst to run an order of
//! magnitude slower. This thread analyses each of these tables once it holds
//! [`ROWS`] changed rows and was never analysed, then ends; autovacuum keeps the statistics from
//! there. Analysing replaces the plans connections keep.

use super::{PgConn, connect};
use ferrosync_core::store::StoreError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const TABLES: &[&str] = &["objects", "items", "events"];
/// Rows changed in a table never analysed before it is: enough for guesses to go wrong.
pub(super) const ROWS: i64 = 500;
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Runs until every table of [`TABLES`] was analysed, by this thread, autovacuum or anyone.
pub(super) fn analyze_loop(config: postgres::Config, stopped: Arc<AtomicBool>) {
    let mut conn: Option<PgConn> = None;
    while !stopped.load(Ordering::Relaxed) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match connect(&config) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot reach PostgreSQL to look at its statistics; retrying");
                    std::thread::sleep(CHECK_EVERY);
                    continue;
                }
            },
        };
        match analyze_due(c) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(error = %e, "cannot look at PostgreSQL's statistics; retrying");
                conn = None;
            }
        }
        std::thread::sleep(CHECK_EVERY);
    }
}

/// Analyses the tables due; true when none is left that was never analysed.
fn analyze_due(conn: &mut PgConn) -> Result<bool, StoreError> {
    let tables: Vec<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
    let never = conn.query(
        "SELECT relname, n_mod_since_analyze FROM pg_stat_user_tables
         WHERE schemaname = current_schema() AND relname = ANY($1)
           AND last_analyze IS NULL AND last_autoanalyze IS NULL",
        &[&tables],
    )?;
    if never.is_empty() {
        return Ok(true);
    }
    for row in never {
        let (table, changed): (String, i64) =
            (super::rows::get(&row, 0, "relname")?, super::rows::get(&row, 1, "n_mod_since_analyze")?);
        if changed >= ROWS {
            // A name from the list above, not from the database.
            if let Some(table) = TABLES.iter().find(|t| **t == table) {
                conn.batch(&format!("ANALYZE {table}"))?;
                tracing::info!(table, rows = changed, "analysed a new table before autovacuum's first round");
            }
        }
    }
    Ok(false)
}
