//! The writer's connection and its own prepared statements, for those every write runs.
//!
//! rusqlite's statement cache trims, hashes and copies a statement's text into a fresh key on
//! every use, and hashes it again to put the statement back: about 1,500 instructions a use,
//! several uses a write. The writer's hot statements are string constants, so they are found
//! here by the address and length of their text, among a handful, with nothing copied.

use rusqlite::{Connection, Statement};
use std::cell::RefCell;

/// Most statements kept; past that, statements go through rusqlite's cache (a bound no
/// build reaches: the writer names fewer than this).
const KEPT: usize = 16;

pub(crate) struct HotStatements<'c> {
    conn: &'c Connection,
    kept: RefCell<Vec<(usize, usize, Statement<'c>)>>,
}

impl<'c> HotStatements<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        HotStatements { conn, kept: RefCell::new(Vec::with_capacity(KEPT)) }
    }

    pub(crate) fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// Runs `run` on the statement of `sql`, prepared the first time it is named.
    pub(crate) fn with<T>(
        &self,
        sql: &'static str,
        run: impl FnOnce(&mut Statement<'c>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let key = (sql.as_ptr() as usize, sql.len());
        // Taken out while it runs, so a statement run inside `run` cannot borrow the list twice.
        let found = {
            let mut kept = self.kept.borrow_mut();
            kept.iter().position(|&(at, len, _)| (at, len) == key).map(|i| kept.swap_remove(i).2)
        };
        let mut statement = match found {
            Some(statement) => statement,
            None => self.conn.prepare(sql)?,
        };
        let result = run(&mut statement);
        let mut kept = self.kept.borrow_mut();
        if kept.len() < KEPT && !kept.iter().any(|&(at, len, _)| (at, len) == key) {
            kept.push((key.0, key.1, statement));
        }
        result
    }

    /// Runs a statement without parameters (`BEGIN`, `COMMIT`, savepoints).
    pub(crate) fn run(&self, sql: &'static str) -> rusqlite::Result<()> {
        self.with(sql, |st| st.execute([]).map(drop))
    }
}

self_cell::self_cell!(
    /// The writer's connection and the statements prepared on it, as one value, so that the
    /// two move together between the writer thread and callers committing in place.
    pub(super) struct WriterConn {
        owner: Connection,
        #[not_covariant]
        dependent: HotStatements,
    }
);

// SAFETY: the statements are those of the connection beside them, and go wherever it goes.
// A connection moves between threads (rusqlite's `Connection` is `Send`, its own statement
// cache included): SQLite allows a connection and its statements on any thread, one thread at
// a time. The statements are `!Send` only because they borrow a `!Sync` connection; here they
// are used only through `with_dependent` by whoever holds the writer's turn, alone.
#[allow(unsafe_code)]
unsafe impl Send for WriterConn {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_prepared_once_and_answers_each_run() {
        let conn = Connection::open_in_memory().expect("opens");
        conn.execute_batch("CREATE TABLE t (n INTEGER)").expect("a table");
        let hot = HotStatements::new(&conn);
        const INSERT: &str = "INSERT INTO t (n) VALUES (?1)";
        const COUNT: &str = "SELECT COUNT(*), COALESCE(SUM(n), 0) FROM t";
        for n in 1..=5_i64 {
            hot.with(INSERT, |st| st.execute([n])).expect("inserts");
            // A statement run inside another's turn is its own.
            let (count, sum): (i64, i64) = hot
                .with(INSERT, |st| {
                    st.execute([0])?;
                    hot.with(COUNT, |count| count.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
                })
                .expect("counts");
            assert_eq!((count, sum), (2 * n, n * (n + 1) / 2));
        }
        assert_eq!(hot.kept.borrow().len(), 2, "one statement per text");
        assert!(hot.run("DELETE FROM nowhere").is_err(), "a failed prepare is an error, and nothing is kept");
        assert_eq!(hot.kept.borrow().len(), 2);
    }
}
