//! The checkpointer: a thread of its own that copies the write-ahead log back into the data
//! file beside the writer, and the writer's share of it, the log's tail, so the log starts over
//! under steady writes.

use super::vfs;
use crate::WriteJob;
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// WAL size (in pages) past which a checkpoint waits for readers to reset the log.
const WAL_TRUNCATE_PAGES: i64 = 64 * 1024;
/// Most pages a pass may leave uncopied for the writer to copy between batches (8 MiB of a
/// new file's 2 KiB pages).
const TAIL_PAGES: i64 = 4 * 1024;
/// Frames logged between two passes few enough that the next leaves the writer a tail it
/// copies in about a millisecond.
const SHORT_TAIL_PAGES: i64 = 64;
/// The checkpointer thread's nice value (the scheduler weighs it about a tenth of a default one).
const BACKGROUND_NICE: libc::c_int = 10;
/// Passes at most before the tail is left to the writer, however long it is.
const SETTLE_PASSES: u32 = 4;

/// Copies the WAL back into the database file every half second, beside the writer, so
/// commits never pay for it; stops once the store (its writer channel) is gone.
pub(super) fn run(conn: Connection, writer_alive: mpsc::WeakSender<WriteJob>, tail: Arc<AtomicBool>) {
    lower_priority();
    while writer_alive.upgrade().is_some() {
        std::thread::sleep(std::time::Duration::from_millis(500));
        if let Err(e) = checkpoint_pass(&conn, &tail) {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
        if tail.load(Ordering::Acquire)
            && let Some(writer) = writer_alive.upgrade()
        {
            // Lone writes commit in place and leave the writer thread asleep: woken, it copies
            // the tail as after any batch. A full queue means it is awake already.
            let _ = writer.try_send(WriteJob::nudge());
        }
    }
}

/// Lowers the calling thread's CPU priority: copying the log is background work, and on a
/// busy core it should wait for the threads answering requests rather than share with them.
#[allow(unsafe_code)] // one libc call about the calling thread
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority only read their arguments; on Linux a thread id given
        // to PRIO_PROCESS names that thread alone.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, BACKGROUND_NICE) };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "the checkpointer keeps its CPU priority");
        }
    }
}

/// One pass of the checkpointer. SQLite starts the log over from its first frame only when a
/// write transaction begins with every frame already copied; under steady writes new frames
/// land during each pass, so that never happens and the log grows (each frame extending the
/// file) until the TRUNCATE threshold. A pass that leaves little behind therefore asks the
/// writer, through `tail`, to copy the rest itself ([`copy_tail`]), between batches.
fn checkpoint_pass(conn: &Connection, tail: &AtomicBool) -> rusqlite::Result<()> {
    let (mut log_pages, copied) = passive(conn)?;
    if log_pages > 0 && log_pages - copied <= TAIL_PAGES {
        log_pages = settle(log_pages, || passive(conn).map(|(log, _)| log), || vfs::sync_files(conn))?;
        tail.store(true, Ordering::Release);
    }
    // Should busy readers keep the log from ever being reset, TRUNCATE (which waits for them)
    // keeps it from growing without bound.
    if log_pages > WAL_TRUNCATE_PAGES {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(())
}

/// Readies the log's tail for the writer, after a pass that found the log `log_pages` long.
/// The writer holds the turn while it copies the tail, so it should find only milliseconds of
/// frames and little to sync. A pass that leaves frames behind syncs neither the data file
/// nor what was logged during it: passes follow (`pass`, answering the log's size), each
/// copying what was logged during the one before, and the files are synced (`sync`) here,
/// beside the writer, until frames stop arriving faster than a pass copies them. Answers the
/// log's size at the last pass.
fn settle(
    mut log_pages: i64,
    mut pass: impl FnMut() -> rusqlite::Result<i64>,
    mut sync: impl FnMut() -> rusqlite::Result<()>,
) -> rusqlite::Result<i64> {
    for _ in 1..SETTLE_PASSES {
        let now = pass()?;
        // Frames logged since the pass before began; negative if the log started over.
        let logged = now - log_pages;
        log_pages = now;
        if logged <= 0 {
            // Nothing was logged during the pass before: had it copied the whole log, SQLite
            // synced both files itself; an idle store syncs nothing.
            break;
        }
        sync()?;
        if logged <= SHORT_TAIL_PAGES {
            break;
        }
    }
    Ok(log_pages)
}

/// Copies what it can of the log into the data file: the log's size and the frames copied, in
/// pages. PASSIVE never blocks the writer or readers; what it cannot copy now waits.
fn passive(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(1)?, r.get(2)?)))
}

/// The writer's share of checkpointing, run after a batch is answered: copies what was written
/// since the checkpointer's last complete pass (milliseconds of frames), so the log starts over
/// from its start, over pages the OS already holds.
///
/// With every frame copied, it also starts the log over itself. The first frame written after
/// a restart comes with a new header, which SQLite syncs before any frame follows it (an
/// out-of-order write after a restart could otherwise corrupt the file); left to the next
/// write, that sync fell inside a caller's commit, one in every few hundred at a steady pace.
/// Here it falls between batches, on a write of page 1 that changes nothing.
pub(super) fn copy_tail(conn: &Connection, tail: &AtomicBool) {
    if !tail.swap(false, Ordering::Acquire) {
        return;
    }
    match passive(conn) {
        Ok((log, copied)) if log > 0 && copied == log => {
            if let Err(e) = conn.execute_batch(RESTART_LOG) {
                tracing::warn!(error = %e, "starting the WAL over failed");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint of the log's tail failed"),
    }
}

/// A write transaction of one page that changes nothing: sets the file's application id, which
/// the store leaves at 0, to 0.
const RESTART_LOG: &str = "PRAGMA application_id = 0";

#[cfg(test)]
mod tests;
