//! Statistics for the busiest tables while they grow, between autovacuum's rounds.
//!
//! Until PostgreSQL has analysed a table it plans with guesses. Looking up an object by name
//! in a service holding many objects of its kind, it then finds `objects_by_kind` as cheap as
//! the `(service, kind, name)` index and walks every object of the kind. A plan a connection
//! keeps is made for the table as it was: one made while `items` held a few pages reads it
//! whole for a lookup by key (a seq scan of 20,000 rows for a batch's entries) and goes on
//! doing so as the table grows. Autovacuum analyses a table at its first round after enough
//! changed (a minute apart by default): long enough for a new deployment's first burst to run
//! an order of magnitude slower. This thread analyses each of these tables once it holds
//! [`ROWS`] changed rows and was never analysed, and again each time it has grown to
//! [`GROWTH`] times the rows it held when last analysed (so a few times in a table's early life
//! and rarely after); analysing replaces the plans connections keep.
//!
//! Every node of a cluster runs this thread against the same tables. A table is analysed under
//! an advisory lock of its own, taken without waiting: a node that finds it taken skips the
//! table, which the node holding it is analysing (two `ANALYZE`s of one table would queue on
//! its lock and do the same work twice), and finds it fresh at its next look.

use super::stop::Stop;
use super::{PgConn, connect};
use ferrosync_core::store::StoreError;
use std::sync::Arc;
use std::time::Duration;

const TABLES: &[&str] = &["objects", "items", "events"];
/// Rows changed in a table never analysed before it is: enough for guesses to go wrong.
pub(super) const ROWS: i64 = 500;
/// How much a table grows past what its statistics say before it is analysed again.
const GROWTH: f64 = 2.0;
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Runs until the store stops.
pub(super) fn analyze_loop(config: postgres::Config, stopped: Arc<Stop>) {
    let mut conn: Option<PgConn> = None;
    while !stopped.is_stopped() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match connect(&config) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot reach PostgreSQL to look at its statistics; retrying");
                    stopped.sleep(CHECK_EVERY);
                    continue;
                }
            },
        };
        match analyze_due(c) {
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(error = %e, "cannot look at PostgreSQL's statistics; retrying");
                conn = None;
            }
        }
        stopped.sleep(CHECK_EVERY);
    }
}

/// Analyses the tables due: never analysed with [`ROWS`] changed rows, or grown to [`GROWTH`]
/// times the rows the planner believes they hold (`reltuples`, from the last analysis or vacuum).
fn analyze_due(conn: &mut PgConn) -> Result<(), StoreError> {
    let due = conn.query(
        "SELECT s.relname, s.n_mod_since_analyze, s.n_live_tup FROM pg_stat_user_tables s
           JOIN pg_class c ON c.oid = s.relid
         WHERE s.schemaname = current_schema() AND s.relname = ANY($1)
           AND (s.last_analyze IS NULL AND s.last_autoanalyze IS NULL AND s.n_mod_since_analyze >= $2
                OR s.n_live_tup >= $2 AND s.n_live_tup >= $3::float8 * GREATEST(c.reltuples, 1)::float8)",
        &[&TABLES, &ROWS, &GROWTH],
    )?;
    for row in due {
        let table: String = super::rows::get(&row, 0, "relname")?;
        let changed: i64 = super::rows::get(&row, 1, "n_mod_since_analyze")?;
        let live: i64 = super::rows::get(&row, 2, "n_live_tup")?;
        // A name from the list above, not from the database.
        let Some(table) = TABLES.iter().find(|t| **t == table) else { continue };
        if !try_lock(conn, table)? {
            tracing::debug!(table, "another node is analysing the table");
            continue;
        }
        let analysed = conn.batch(&format!("ANALYZE {table}"));
        // On an error the caller drops the connection, and the lock with it.
        conn.query_opt(&format!("SELECT pg_advisory_unlock({})", lock_key(table)), &[])?;
        analysed?;
        tracing::info!(table, changed, live, "analysed a table that filled or grew since its statistics");
    }
    Ok(())
}

/// The advisory lock a node holds while it analyses `table`, in this store's schema.
pub(super) fn lock_key(table: &str) -> String {
    format!("hashtext(current_schema() || '.analyze.{table}')")
}

/// Takes `table`'s lock if no other session holds it.
fn try_lock(conn: &mut PgConn, table: &str) -> Result<bool, StoreError> {
    let row = conn.query_opt(&format!("SELECT pg_try_advisory_lock({})", lock_key(table)), &[])?;
    row.map(|r| super::rows::get::<bool>(&r, 0, "locked")).transpose().map(|l| l.unwrap_or(false))
}
