//! Online backup of the embedded store, and the checks a restore makes.
//!
//! The copy is SQLite's backup API run inside one read transaction on the source: in WAL mode
//! that pins a snapshot, so a server writing meanwhile neither blocks the copy nor makes it
//! start over, and the copy holds exactly the transactions committed when it began.

use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// Pages copied per step (1 MiB of 4 KiB pages): fine-grained progress, few round trips.
const PAGES_PER_STEP: i32 = 256;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {message}")]
    Sqlite { path: String, message: String },
    #[error("{path} failed its integrity check: {message}")]
    Corrupt { path: String, message: String },
    #[error("{path} is not a Ferrosync database (no change log table)")]
    NotFerrosync { path: String },
}

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |e| BackupError::Sqlite { path: path.display().to_string(), message: e.to_string() }
}

/// What a finished backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    pub pages: u64,
    pub bytes: u64,
}

/// Copies the database at `source` (which a server may be writing) to a new file `dest`,
/// calling `progress(copied, total)` in pages as it goes. `dest` must not exist.
pub fn backup(source: &Path, dest: &Path, mut progress: impl FnMut(u64, u64)) -> Result<BackupSummary, BackupError> {
    // Opened as the store opens it: in the server's process, it shares the server's hold on
    // the file; elsewhere it takes that hold for the copy's length.
    let src = super::connect(source, super::Access::Query).map_err(sqlite_err(source))?;
    src.busy_timeout(Duration::from_secs(5)).map_err(sqlite_err(source))?;
    check_is_ferrosync(&src, source)?;
    // The snapshot: every step below reads the database as it was at this point.
    src.execute_batch("BEGIN; SELECT COUNT(*) FROM sqlite_schema;").map_err(sqlite_err(source))?;
    let mut out = Connection::open(dest).map_err(sqlite_err(dest))?;
    {
        let copy = Backup::new(&src, &mut out).map_err(sqlite_err(dest))?;
        loop {
            let step = copy.step(PAGES_PER_STEP).map_err(sqlite_err(dest))?;
            let p = copy.progress();
            let total = p.pagecount.max(0) as u64;
            progress(total.saturating_sub(p.remaining.max(0) as u64), total);
            match step {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                // Only a lock on the destination (nobody else has it) or a busy source: wait.
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
    src.execute_batch("COMMIT;").map_err(sqlite_err(source))?;
    // The copy stands on its own: no WAL beside it.
    out.execute_batch("PRAGMA journal_mode = DELETE;").map_err(sqlite_err(dest))?;
    let pages: i64 = out.query_row("PRAGMA page_count", [], |r| r.get(0)).map_err(sqlite_err(dest))?;
    let page_size: i64 = out.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(sqlite_err(dest))?;
    drop(out);
    verify(dest)?;
    Ok(BackupSummary { pages: pages as u64, bytes: (pages * page_size) as u64 })
}

/// Checks that `path` is a sound Ferrosync database: SQLite's integrity check passes and the
/// schema is ours. Returns the change log's length.
pub fn verify(path: &Path) -> Result<u64, BackupError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sqlite_err(path))?;
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(sqlite_err(path))?;
    if verdict != "ok" {
        return Err(BackupError::Corrupt { path: path.display().to_string(), message: verdict });
    }
    check_is_ferrosync(&conn, path)?;
    let events: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).map_err(sqlite_err(path))?;
    Ok(events as u64)
}

fn check_is_ferrosync(conn: &Connection, path: &Path) -> Result<(), BackupError> {
    let has_log: bool = conn
        .query_row("SELECT COUNT(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'events'", [], |r| r.get(0))
        .map_err(sqlite_err(path))?;
    if has_log { Ok(()) } else { Err(BackupError::NotFerrosync { path: path.display().to_string() }) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_taken_while_another_connection_writes_holds_a_consistent_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.db");
        // The writer holds the file as a store would; the copy joins that hold.
        let w = crate::sqlite::connect(&src, crate::sqlite::Access::ReadWrite).unwrap();
        w.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE events (seq INTEGER PRIMARY KEY, pad BLOB);
             CREATE TABLE totals (n INTEGER); INSERT INTO totals VALUES (0);",
        )
        .unwrap();
        for _ in 0..2000 {
            w.execute("INSERT INTO events (pad) VALUES (zeroblob(2048))", []).unwrap();
        }
        w.execute("UPDATE totals SET n = 2000", []).unwrap();
        let dest = dir.path().join("copy.db");
        let mut steps = 0;
        // Writes land between the copy's steps: none of them may reach the copy half-done.
        let summary = backup(&src, &dest, |_, _| {
            steps += 1;
            w.execute_batch(
                "BEGIN; INSERT INTO events (pad) VALUES (zeroblob(2048)); UPDATE totals SET n = n + 1; COMMIT;",
            )
            .unwrap();
        })
        .unwrap();
        assert!(steps > 1, "copied in several steps");
        assert!(summary.bytes > 4_000_000);
        let copy = Connection::open(&dest).unwrap();
        let (events, total): (i64, i64) = copy
            .query_row("SELECT (SELECT COUNT(*) FROM events), (SELECT n FROM totals)", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(events, total, "the copy is one snapshot");
        assert_eq!(events, 2000, "taken when the copy began");
        assert_eq!(verify(&dest).unwrap(), 2000);
    }

    #[test]
    fn a_foreign_or_damaged_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.db");
        Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x);").unwrap();
        assert!(matches!(verify(&other), Err(BackupError::NotFerrosync { .. })));
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not a database at all, just some bytes that go on for a while").unwrap();
        assert!(verify(&junk).is_err());
    }
}
