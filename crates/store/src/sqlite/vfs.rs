//! The VFS the data file is opened through: SQLite's `unix-excl`, with each commit's frames
//! written to the write-ahead log in one `pwrite`.
//!
//! SQLite writes a frame as two `pwrite` calls, its 24-byte header and then its page, so a
//! commit of four pages makes eight calls; on ext4 those cost about four times what one call
//! with the same bytes does (12.4 against 2.9 µs, measured on the bench machine), and they are
//! most of what a lone write costs the kernel. Here the log's file gathers the frames it is
//! given in order and writes them at once when the commit's last frame is complete, before
//! SQLite publishes the commit to the WAL index: by then every byte is in the file, just as
//! SQLite left it. Everything else goes to `unix-excl` as it is:
//!
//! * a write that is not an append (a frame rewritten in place, its checksum recomputed) is
//!   written through at once, after what was gathered;
//! * every other call on the log (read, sync, size, truncate, close, file control) writes
//!   what was gathered first, so SQLite never sees the file otherwise than it wrote it;
//! * the data file and every other file are `unix-excl`'s own.
//!
//! A crash before the gathered frames are written loses only frames of a commit not yet made:
//! SQLite's recovery ignores frames after the last commit frame either way.
//!
//! A commit is known by its last frame's header (bytes 4..8, the database's size, are not
//! zero), written whole before that frame's page. SQLite splits a frame's writes only to pad a
//! commit to a sector boundary, on a device without power-safe overwrite; `unix-excl` reports
//! power-safe overwrite unless a connection is opened with `psow=0`, which the store never is.
#![allow(unsafe_code)] // the VFS is a C interface: SQLite calls it through raw pointers.

use rusqlite::ffi;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

/// The name it is registered under.
pub const NAME: &CStr = c"ferrosync";
/// The VFS it wraps.
const BASE: &CStr = c"unix-excl";
/// A frame's header: bytes 4..8 hold the database's size in pages for a commit frame, 0 otherwise.
const FRAME_HEADER: usize = 24;
/// Most bytes gathered into one write: the unix VFS writes less than 128 KiB per call (it masks
/// a larger length), so a large transaction's frames go out in writes of up to this.
const MAX_GATHERED: usize = 31 * 4096;

/// Registers the VFS once per process; its name, for opening connections through it.
pub fn register() -> Result<&'static str, String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED.get_or_init(register_once).clone()?;
    NAME.to_str().map_err(|e| e.to_string())
}

/// Syncs a connection's data file and then its log, through the handles SQLite holds, so
/// that a later sync of either (the one a checkpoint makes before the log can start over)
/// finds little left to write. The handles are SQLite's own because closing any other
/// descriptor of the data file would drop the process's locks on it.
pub fn sync_files(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let ok = |rc: c_int| match rc {
        ffi::SQLITE_OK => Ok(()),
        rc => Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None)),
    };
    for op in [ffi::SQLITE_FCNTL_FILE_POINTER, ffi::SQLITE_FCNTL_JOURNAL_POINTER] {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: the connection's handle is valid while `conn` is borrowed; both opcodes
        // only store a pointer to a file the pager owns (or its closed, method-less one).
        ok(unsafe { ffi::sqlite3_file_control(conn.handle(), c"main".as_ptr(), op, (&raw mut file).cast()) })?;
        // SAFETY: `file` is null or the pager's file; an open file's methods stay set until the
        // connection closes it, which cannot happen while this thread holds `conn`.
        let Some(sync) = (unsafe { file.as_ref().and_then(|f| f.pMethods.as_ref()).and_then(|m| m.xSync) }) else {
            // A file not opened yet (no log before the first read): nothing to sync.
            continue;
        };
        // SAFETY: the file's own method, called on it with a valid flag.
        ok(unsafe { sync(file, ffi::SQLITE_SYNC_NORMAL) })?;
    }
    Ok(())
}

struct Vfs(ffi::sqlite3_vfs);
// SAFETY: the struct is written once, before registration, and only read after.
unsafe impl Send for Vfs {}
unsafe impl Sync for Vfs {}

fn register_once() -> Result<(), String> {
    // SAFETY: sqlite3_vfs_find only reads SQLite's list of VFSes.
    let base = unsafe { ffi::sqlite3_vfs_find(BASE.as_ptr()) };
    if base.is_null() {
        return Err("SQLite has no unix-excl VFS on this platform".into());
    }
    // SAFETY: a VFS SQLite found lives as long as the process.
    let base_vfs = unsafe { &*base };
    let vfs = ffi::sqlite3_vfs {
        iVersion: 2,
        szOsFile: c_int::try_from(REAL_OFFSET).map_err(|e| e.to_string())? + base_vfs.szOsFile,
        mxPathname: base_vfs.mxPathname,
        pNext: std::ptr::null_mut(),
        zName: NAME.as_ptr(),
        pAppData: base.cast(),
        xOpen: Some(open),
        xDelete: Some(delete),
        xAccess: Some(access),
        xFullPathname: Some(full_pathname),
        // Extensions are never loaded into the store's connections.
        xDlOpen: None,
        xDlError: None,
        xDlSym: None,
        xDlClose: None,
        xRandomness: Some(randomness),
        xSleep: Some(sleep),
        xCurrentTime: Some(current_time),
        xGetLastError: Some(last_error),
        xCurrentTimeInt64: Some(current_time_int64),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    };
    let vfs: &'static mut Vfs = Box::leak(Box::new(Vfs(vfs)));
    // SAFETY: the VFS is leaked, so it outlives every connection; not made the default.
    match unsafe { ffi::sqlite3_vfs_register(&mut vfs.0, 0) } {
        ffi::SQLITE_OK => Ok(()),
        rc => Err(format!("cannot register SQLite's VFS {NAME:?}: error {rc}")),
    }
}

/// The wrapped VFS, kept as the registered one's app data.
unsafe fn base(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: set at registration to the base VFS.
    unsafe { (*vfs).pAppData.cast() }
}

/// A log file: its frames gathered, and the base VFS's file after it in the same allocation.
#[repr(C)]
struct LogFile {
    /// First, as SQLite expects: points at [`LOG_METHODS`].
    base: ffi::sqlite3_file,
    gathered: Vec<u8>,
    /// The file offset of `gathered[0]`.
    start: i64,
    /// The end of the furthest byte written through this handle since the log restarted: a
    /// write below it is a rewrite, not an append.
    high: i64,
    /// The last write was a commit frame's header: its page completes the commit.
    commit_next: bool,
}

/// Where the base VFS's file starts in a [`LogFile`]'s allocation.
const REAL_OFFSET: usize = std::mem::size_of::<LogFile>().next_multiple_of(16);

impl LogFile {
    /// The base VFS's file.
    fn real(&mut self) -> *mut ffi::sqlite3_file {
        real_of((self as *mut LogFile).cast())
    }

    fn methods(&mut self) -> &'static ffi::sqlite3_io_methods {
        // SAFETY: the base VFS set them when it opened the file, for as long as it is open.
        unsafe { &*(*self.real()).pMethods }
    }

    /// Writes what was gathered.
    fn flush(&mut self) -> c_int {
        if self.gathered.is_empty() {
            return ffi::SQLITE_OK;
        }
        let rc = self.write_through(self.gathered.as_ptr().cast(), self.gathered.len(), self.start);
        self.gathered.clear();
        rc
    }

    fn write_through(&mut self, data: *const c_void, len: usize, offset: i64) -> c_int {
        let Ok(amount) = c_int::try_from(len) else { return ffi::SQLITE_IOERR_WRITE };
        #[cfg(test)]
        tests::WRITES.with(|w| w.set(w.get() + 1));
        let Some(write) = self.methods().xWrite else { return ffi::SQLITE_IOERR_WRITE };
        // SAFETY: the base's own method on its own open file, with SQLite's arguments.
        unsafe { write(self.real(), data, amount, offset) }
    }

    fn write(&mut self, data: &[u8], offset: i64) -> c_int {
        let completes_commit = std::mem::take(&mut self.commit_next);
        // The log restarts from its header: frames follow it from the top.
        let restarts = offset == 0;
        let appends = restarts
            || match self.gathered.is_empty() {
                true => offset >= self.high,
                false => offset == self.start + self.gathered.len() as i64,
            };
        if !appends || restarts || self.gathered.len() + data.len() > MAX_GATHERED {
            let rc = self.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        if appends {
            if self.gathered.is_empty() {
                self.start = offset;
                if restarts {
                    self.high = 0;
                }
            }
            self.gathered.extend_from_slice(data);
        } else {
            let rc = self.write_through(data.as_ptr().cast(), data.len(), offset);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        self.high = self.high.max(offset + data.len() as i64);
        if completes_commit {
            // The commit frame is whole: out with it before SQLite makes it visible.
            return self.flush();
        }
        self.commit_next = data.len() == FRAME_HEADER && data[4..8] != [0; 4];
        ffi::SQLITE_OK
    }
}

/// The base VFS's file inside the allocation of `file`.
fn real_of(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: the allocation is szOsFile bytes, REAL_OFFSET plus the base's file.
    unsafe { file.cast::<u8>().add(REAL_OFFSET).cast() }
}

/// Runs `f` on the log file behind `file` once what it gathered is written.
unsafe fn flushed(
    file: *mut ffi::sqlite3_file,
    f: impl FnOnce(&ffi::sqlite3_io_methods, *mut ffi::sqlite3_file) -> c_int,
) -> c_int {
    // SAFETY: SQLite calls LOG_METHODS only with a file `open` made a LogFile.
    let log = unsafe { &mut *file.cast::<LogFile>() };
    let rc = log.flush();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    f(log.methods(), log.real())
}

/// Calls the base's method `$m` on the log's file, after a flush, or answers `$none` when the
/// base has no such method.
macro_rules! through {
    ($file:expr, $m:ident, $none:expr $(, $arg:expr)*) => {
        // SAFETY: the base's own method on its own open file, with SQLite's arguments.
        unsafe { flushed($file, |methods, real| match methods.$m { Some(m) => m(real $(, $arg)*), None => $none }) }
    };
}

static LOG_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(log_close),
    xRead: Some(log_read),
    xWrite: Some(log_write),
    xTruncate: Some(log_truncate),
    xSync: Some(log_sync),
    xFileSize: Some(log_file_size),
    xLock: Some(log_lock),
    xUnlock: Some(log_unlock),
    xCheckReservedLock: Some(log_check_reserved_lock),
    xFileControl: Some(log_file_control),
    xSectorSize: Some(log_sector_size),
    xDeviceCharacteristics: Some(log_device_characteristics),
    xShmMap: Some(log_shm_map),
    xShmLock: Some(log_shm_lock),
    xShmBarrier: Some(log_shm_barrier),
    xShmUnmap: Some(log_shm_unmap),
    xFetch: Some(log_fetch),
    xUnfetch: Some(log_unfetch),
};

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: called by SQLite with our VFS and an allocation of our szOsFile bytes.
    unsafe {
        let base = base(vfs);
        let Some(base_open) = (*base).xOpen else { return ffi::SQLITE_CANTOPEN };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            // Not the log: the base's file, at the start of the allocation, is the file.
            return base_open(base, name, file, flags, out_flags);
        }
        let rc = base_open(base, name, real_of(file), flags, out_flags);
        if rc != ffi::SQLITE_OK {
            (*file).pMethods = std::ptr::null();
            return rc;
        }
        file.cast::<LogFile>().write(LogFile {
            base: ffi::sqlite3_file { pMethods: &LOG_METHODS },
            gathered: Vec::new(),
            start: 0,
            high: 0,
            commit_next: false,
        });
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn log_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file `open` made a LogFile once; the LogFile goes once its
    // base's file is closed, which it is even when the last write failed.
    unsafe {
        let log = file.cast::<LogFile>();
        let flushed = (*log).flush();
        let closed = match (*log).methods().xClose {
            Some(close) => close((*log).real()),
            None => ffi::SQLITE_OK,
        };
        std::ptr::drop_in_place(log);
        if flushed == ffi::SQLITE_OK { closed } else { flushed }
    }
}

unsafe extern "C" fn log_read(file: *mut ffi::sqlite3_file, buf: *mut c_void, amount: c_int, offset: i64) -> c_int {
    through!(file, xRead, ffi::SQLITE_IOERR_READ, buf, amount, offset)
}

unsafe extern "C" fn log_write(file: *mut ffi::sqlite3_file, buf: *const c_void, amount: c_int, offset: i64) -> c_int {
    let Ok(len) = usize::try_from(amount) else { return ffi::SQLITE_IOERR_WRITE };
    // SAFETY: SQLite passes a file `open` made a LogFile, and `amount` readable bytes.
    unsafe { (*file.cast::<LogFile>()).write(std::slice::from_raw_parts(buf.cast(), len), offset) }
}

unsafe extern "C" fn log_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    through!(file, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size)
}

unsafe extern "C" fn log_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    #[cfg(test)]
    tests::SYNCS.with(|s| s.set(s.get() + 1));
    through!(file, xSync, ffi::SQLITE_IOERR_FSYNC, flags)
}

unsafe extern "C" fn log_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    through!(file, xFileSize, ffi::SQLITE_IOERR_FSTAT, size)
}

unsafe extern "C" fn log_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    through!(file, xLock, ffi::SQLITE_OK, level)
}

unsafe extern "C" fn log_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    through!(file, xUnlock, ffi::SQLITE_OK, level)
}

unsafe extern "C" fn log_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    through!(file, xCheckReservedLock, ffi::SQLITE_OK, out)
}

unsafe extern "C" fn log_file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    through!(file, xFileControl, ffi::SQLITE_NOTFOUND, op, arg)
}

unsafe extern "C" fn log_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    through!(file, xSectorSize, 4096)
}

unsafe extern "C" fn log_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    through!(file, xDeviceCharacteristics, 0)
}

unsafe extern "C" fn log_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    through!(file, xShmMap, ffi::SQLITE_IOERR_SHMMAP, region, size, extend, out)
}

unsafe extern "C" fn log_shm_lock(file: *mut ffi::sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    through!(file, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, offset, n, flags)
}

unsafe extern "C" fn log_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: as in `through!`; a barrier has no result to report a failed flush with, and
    // SQLite never asks one of the log (its index belongs to the data file).
    unsafe {
        flushed(file, |methods, real| {
            if let Some(barrier) = methods.xShmBarrier {
                barrier(real);
            }
            ffi::SQLITE_OK
        });
    }
}

unsafe extern "C" fn log_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    through!(file, xShmUnmap, ffi::SQLITE_OK, delete)
}

unsafe extern "C" fn log_fetch(
    file: *mut ffi::sqlite3_file,
    offset: i64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: `out` is SQLite's; without a base method nothing is mapped.
    unsafe { *out = std::ptr::null_mut() };
    through!(file, xFetch, ffi::SQLITE_OK, offset, amount, out)
}

unsafe extern "C" fn log_unfetch(file: *mut ffi::sqlite3_file, offset: i64, page: *mut c_void) -> c_int {
    through!(file, xUnfetch, ffi::SQLITE_OK, offset, page)
}

/// Calls the base VFS's method `$m`, or answers `$none` when it has none.
macro_rules! base_call {
    ($vfs:expr, $m:ident, $none:expr $(, $arg:expr)*) => {
        // SAFETY: the base's own method, on the base, with SQLite's arguments.
        unsafe {
            let base = base($vfs);
            match (*base).$m { Some(m) => m(base $(, $arg)*), None => $none }
        }
    };
}

unsafe extern "C" fn delete(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, sync_dir: c_int) -> c_int {
    base_call!(vfs, xDelete, ffi::SQLITE_IOERR_DELETE, name, sync_dir)
}

unsafe extern "C" fn access(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, flags: c_int, out: *mut c_int) -> c_int {
    base_call!(vfs, xAccess, ffi::SQLITE_IOERR_ACCESS, name, flags, out)
}

unsafe extern "C" fn full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    base_call!(vfs, xFullPathname, ffi::SQLITE_CANTOPEN, name, n, out)
}

unsafe extern "C" fn randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    base_call!(vfs, xRandomness, 0, n, out)
}

unsafe extern "C" fn sleep(vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    base_call!(vfs, xSleep, 0, micros)
}

unsafe extern "C" fn current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    base_call!(vfs, xCurrentTime, ffi::SQLITE_ERROR, out)
}

unsafe extern "C" fn last_error(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    base_call!(vfs, xGetLastError, 0, n, out)
}

unsafe extern "C" fn current_time_int64(vfs: *mut ffi::sqlite3_vfs, out: *mut i64) -> c_int {
    base_call!(vfs, xCurrentTimeInt64, ffi::SQLITE_ERROR, out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::super::{Access, connect};
    use rusqlite::Connection;
    use std::cell::Cell;
    use std::path::Path;

    thread_local! {
        /// Writes this thread's log files made to the base VFS.
        pub(crate) static WRITES: Cell<u64> = const { Cell::new(0) };
        /// Syncs this thread's log files asked of the base VFS.
        pub(crate) static SYNCS: Cell<u64> = const { Cell::new(0) };
    }

    fn syncs() -> u64 {
        SYNCS.with(Cell::get)
    }

    fn writes() -> u64 {
        WRITES.with(Cell::get)
    }

    fn open(path: &Path) -> Connection {
        let conn = connect(path, Access::ReadWrite).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
        )
        .unwrap();
        conn
    }

    /// What a crash of the process would leave: the data file and its log as they are in the
    /// file system now, opened elsewhere through SQLite's own VFS (which recovers the log).
    /// Its rows' ids and bodies' lengths, once the copy passed SQLite's integrity check.
    fn crash_image(path: &Path) -> Vec<(i64, i64)> {
        let copy = tempfile::tempdir().unwrap();
        let db = copy.path().join("copy.db");
        std::fs::copy(path, &db).unwrap();
        let wal = path.with_extension("db-wal");
        std::fs::copy(&wal, copy.path().join("copy.db-wal")).unwrap();
        let conn = Connection::open(&db).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
        let mut rows = conn.prepare("SELECT id, length(body) FROM t ORDER BY id").unwrap();
        rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    }

    fn insert(conn: &Connection, ids: std::ops::Range<i64>, len: i64) {
        for id in ids {
            conn.execute("INSERT INTO t (id, body) VALUES (?1, zeroblob(?2))", rusqlite::params![id, len]).unwrap();
        }
    }

    #[test]
    fn a_commit_reaches_the_log_in_one_write_and_is_there_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = open(&path);
        // Six rows of 3,000 bytes: a page each, and the pages above them.
        let before = writes();
        let tx = conn.transaction().unwrap();
        insert(&tx, 0..6, 3000);
        tx.commit().unwrap();
        assert_eq!(writes() - before, 1, "one write for the commit's frames");
        let frames = (std::fs::metadata(path.with_extension("db-wal")).unwrap().len() - 32) / (4096 + 24);
        assert!(frames >= 6, "the commit wrote {frames} frames");
        assert_eq!(crash_image(&path), (0..6).map(|id| (id, 3000)).collect::<Vec<_>>());

        // Another of the process's connections reads what was committed.
        let reader = connect(&path, Access::Query).unwrap();
        let n: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 6);
    }

    #[test]
    fn a_connections_files_are_synced_through_its_own_handles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        // Before it reads the database a connection has no log open: the data file alone.
        let fresh = connect(&path, Access::ReadWrite).unwrap();
        let before = syncs();
        super::sync_files(&fresh).unwrap();
        assert_eq!(syncs() - before, 0, "no log to sync yet");
        drop(fresh);

        let conn = open(&path);
        insert(&conn, 0..3, 100);
        let before = syncs();
        super::sync_files(&conn).unwrap();
        assert_eq!(syncs() - before, 1, "the log synced once, through the connection's own file");
        // A sync writes nothing and leaves the log as it was: every commit still in its image.
        assert_eq!(crash_image(&path), (0..3).map(|id| (id, 100)).collect::<Vec<_>>());
    }

    #[test]
    fn spilled_rewritten_and_rolled_back_frames_leave_every_commit_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = open(&path);
        // A cache of a few pages: a transaction's pages spill to the log before its commit,
        // and pages spilled and changed again are rewritten in place, their checksums after.
        conn.execute_batch("PRAGMA cache_size = 2;").unwrap();
        let mut expected: Vec<(i64, i64)> = Vec::new();

        let tx = conn.transaction().unwrap();
        insert(&tx, 0..300, 500);
        tx.execute("UPDATE t SET body = zeroblob(600)", []).unwrap();
        tx.execute("UPDATE t SET body = zeroblob(700) WHERE id % 3 = 0", []).unwrap();
        tx.commit().unwrap();
        expected.extend((0..300).map(|id| (id, if id % 3 == 0 { 700 } else { 600 })));
        assert_eq!(crash_image(&path), expected);

        let tx = conn.transaction().unwrap();
        insert(&tx, 300..600, 800);
        tx.rollback().unwrap();
        conn.execute("INSERT INTO t (id, body) VALUES (1000, zeroblob(10))", []).unwrap();
        expected.push((1000, 10));
        assert_eq!(crash_image(&path), expected, "after a spilled transaction rolled back");

        // The log emptied: the next commit starts it again from its header.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        conn.execute("INSERT INTO t (id, body) VALUES (1001, zeroblob(20))", []).unwrap();
        expected.push((1001, 20));
        assert_eq!(crash_image(&path), expected, "after the log restarted");

        drop(conn);
        let conn = open(&path);
        let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, expected.len() as i64);
    }
}
