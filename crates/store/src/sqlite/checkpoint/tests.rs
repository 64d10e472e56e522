use super::*;

/// A database in WAL mode with table `t`, checkpointed only by hand: its directory (kept while
/// the test runs), its path and the writer's connection.
fn a_logged_table() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("log.db");
    let writer = Connection::open(&path).expect("the writer opens");
    writer
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x)")
        .expect("the table");
    (dir, path, writer)
}

/// Frames in the log after one more commit, when the checkpointer's pass copied `before`
/// commits while `after` more landed beside it (a reader's snapshot stands in for the race);
/// `writer_turn` says whether the writer then copied the tail, as it does between batches.
fn log_after_a_pass(before: i64, after: i64, writer_turn: bool) -> i64 {
    let (_dir, path, writer) = a_logged_table();
    let checkpointer = Connection::open(&path).expect("the checkpointer opens");
    let reader = Connection::open(&path).expect("the reader opens");
    let insert = |x: i64| {
        writer.execute("INSERT INTO t VALUES (?1)", [x]).expect("a commit");
    };
    (0..before).for_each(insert);
    reader.execute_batch("BEGIN; SELECT count(*) FROM t;").expect("a snapshot");
    (before..before + after).for_each(insert);
    let tail = AtomicBool::new(false);
    checkpoint_pass(&checkpointer, &tail).expect("a pass");
    reader.execute_batch("COMMIT").expect("the snapshot ends");
    assert!(tail.load(Ordering::Acquire), "a pass that leaves a short tail asks the writer for it");
    if writer_turn {
        copy_tail(&writer, &tail);
        assert!(!tail.load(Ordering::Acquire), "the writer took the request");
    }
    insert(-1);
    let frames = checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)).expect("frames");
    let rows: i64 = writer.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).expect("rows");
    assert_eq!(rows, before + after + 1, "every commit is kept");
    frames
}

/// Under steady writes the log must start over rather than grow: without the writer copying
/// what landed during the pass, every later commit extends it.
#[test]
fn the_log_starts_over_once_the_writer_copies_the_tail() {
    let grown = log_after_a_pass(100, 5, false);
    assert!(grown > 105, "without the writer's turn the log keeps every frame: {grown}");
    let restarted = log_after_a_pass(100, 5, true);
    assert!(restarted <= 4, "the next commit writes the log from its start: {restarted} frames");
}

/// Once every frame is copied, the writer's turn starts the log over itself: the header SQLite
/// writes (and syncs) at a restart is not left to the next commit, which appends after it.
#[test]
fn the_writers_turn_starts_the_log_over_so_the_next_commit_only_appends() {
    let (dir, path, writer) = a_logged_table();
    let insert = |x: i64| {
        writer.execute("INSERT INTO t VALUES (?1)", [x]).expect("a commit");
    };
    (0..10).for_each(insert);
    // The log's salts (header bytes 16..24) change whenever it starts over.
    let salts = || std::fs::read(dir.path().join("log.db-wal")).expect("the log")[16..24].to_vec();
    let first = salts();
    let log_size = || writer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)).expect("a pass");

    let tail = AtomicBool::new(true);
    copy_tail(&writer, &tail);
    assert!(!tail.load(Ordering::Acquire), "the writer took the request");
    let restarted = salts();
    assert_ne!(restarted, first, "the writer's turn wrote the new header");

    insert(10);
    assert_eq!(salts(), restarted, "the next commit appended to the log the turn started");
    // (A pass copies the log, so the next commit would start it over again: asked last.)
    assert_eq!(log_size(), 2, "the turn's one page, then the commit's");
    let rows: i64 = writer.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).expect("rows");
    assert_eq!(rows, 11, "every commit is kept");
    let id: i64 = writer.query_row("PRAGMA application_id", [], |r| r.get(0)).expect("the id");
    assert_eq!(id, 0, "the write that started the log over changed nothing");

    // A turn that finds frames it cannot copy (a reader holds them) leaves the log as it is.
    let reader = Connection::open(&path).expect("the reader opens");
    reader.execute_batch("BEGIN; SELECT count(*) FROM t;").expect("a snapshot");
    insert(11);
    let held = salts();
    tail.store(true, Ordering::Release);
    copy_tail(&writer, &tail);
    assert_eq!(salts(), held, "no restart while a reader needs the log");
    reader.execute_batch("COMMIT").expect("the snapshot ends");
}

/// Passes `settle` makes and syncs it asks for, when the passes find the log `sizes` long (the
/// first, the pass before it).
fn settled(sizes: &[i64]) -> (usize, usize, i64) {
    let (mut passes, mut syncs) = (0, 0);
    let mut next = sizes[1..].iter();
    let last = settle(
        sizes[0],
        || {
            passes += 1;
            Ok(*next.next().expect("no more passes than the log's sizes"))
        },
        || {
            syncs += 1;
            Ok(())
        },
    )
    .expect("settled");
    (passes, syncs, last)
}

#[test]
fn passes_follow_while_frames_arrive_and_the_files_are_synced_after_each() {
    // An idle store: one more pass finds nothing new and syncs nothing.
    assert_eq!(settled(&[100, 100]), (1, 0, 100));
    // Writes during the first pass, few during the second: synced after each, then left.
    assert_eq!(settled(&[100, 400, 400 + SHORT_TAIL_PAGES]), (2, 2, 400 + SHORT_TAIL_PAGES));
    // Frames keep arriving: the passes stop at the limit, all synced.
    let busy: Vec<i64> = (1..=8).map(|i| i * 1000).collect();
    let passes = SETTLE_PASSES as usize - 1;
    assert_eq!(settled(&busy), (passes, passes, busy[passes]));
    // The log started over between passes: nothing is waiting on the old one.
    assert_eq!(settled(&[100, 500, 20]), (2, 1, 20));
}

#[cfg(target_os = "linux")]
#[test]
fn the_checkpointer_thread_runs_at_a_lower_cpu_priority() {
    let nice = std::thread::spawn(|| {
        lower_priority();
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("the thread's stat");
        // The fields after the command's closing parenthesis start at the third; nice is the 19th.
        let rest = &stat[stat.rfind(')').expect("the command") + 2..];
        rest.split(' ').nth(16).expect("the nice field").parse::<libc::c_int>().expect("a number")
    })
    .join()
    .expect("the thread");
    assert_eq!(nice, BACKGROUND_NICE);
}
