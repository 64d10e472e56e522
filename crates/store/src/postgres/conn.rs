//! A connection of the cluster store: its prepared statements, and what the writer's
//! transaction holds back on it (see [`super::pending`]).

use super::ahead::Ahead;
use super::pending::{Held, Mark};
use ferrosync_core::sid::Sid;
use ferrosync_core::store::StoreError;
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};
use std::collections::HashMap;

pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// SQLSTATEs after which re-running the same mutation can succeed: a deadlock between two
/// nodes' batches, or a unique key another node committed first (the re-run then sees it).
pub(crate) fn is_retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::UNIQUE_VIOLATION
    })
}

pub(crate) fn err(e: postgres::Error) -> StoreError {
    if e.is_closed() || e.code().is_none() {
        // No SQLSTATE: the connection (or the server) is gone, not the query at fault.
        StoreError::Unavailable(format!("postgres: {e}"))
    } else {
        StoreError::Backend(format!("postgres: {e}"))
    }
}

/// A client and its prepared statements.
pub(crate) struct PgConn {
    pub(crate) client: Client,
    statements: HashMap<String, Statement>,
    /// Set when a query met a retryable conflict, which the rules see only as a [`StoreError`];
    /// the writer clears it before each attempt.
    pub(crate) last_retryable: bool,
    /// Objects' rows and events held back while the writer's batch runs (see [`Held`]);
    /// always empty when `holding` is off.
    pub(crate) held: Held,
    /// Objects read ahead for the batch (see [`Ahead`]); empty when `holding` is off.
    pub(crate) ahead: Ahead,
    holding: bool,
    /// What was held when the current mutation began.
    mark: Mark,
    /// Whether the current mutation has written anything to the database (not merely held it):
    /// only then can its failure not be undone by dropping what it held.
    pub(crate) wrote: bool,
    /// Whether a statement failed since holding began: the transaction may be aborted.
    pub(crate) failed: bool,
    /// Statements sent, each a round trip (preparing one aside).
    pub(crate) sent: u64,
    /// How the writer keeps the events it appends (see [`super::format`]).
    pub(crate) event_format: super::format::Known,
}

impl PgConn {
    pub(crate) fn new(client: Client) -> Self {
        PgConn {
            client,
            statements: HashMap::new(),
            last_retryable: false,
            held: Held::default(),
            ahead: Ahead::default(),
            holding: false,
            mark: Mark::default(),
            wrote: false,
            failed: false,
            sent: 0,
            event_format: Default::default(),
        }
    }

    /// The writer's batch begins: objects' rows and events are held back from here on.
    pub(crate) fn hold(&mut self) {
        self.held.clear();
        (self.holding, self.failed) = (true, false);
        self.begin_mutation();
    }

    /// Holding ends, and whatever is held is dropped (the transaction is being rolled back, or
    /// [`PgConn::finish`] sent it).
    pub(crate) fn release(&mut self) {
        self.held.clear();
        self.ahead.clear();
        self.holding = false;
    }

    pub(crate) fn holding(&self) -> bool {
        self.holding
    }

    pub(crate) fn begin_mutation(&mut self) {
        self.mark = self.held.mark();
        self.wrote = false;
    }

    /// The current mutation failed having only read and held: what it held is dropped.
    pub(crate) fn drop_mutation(&mut self) {
        self.held.truncate(self.mark);
    }

    /// Sends what is held, the services' new `heads` and the notifications `payload` on
    /// `channel`, in one statement.
    pub(crate) fn finish(
        &mut self,
        heads: &[(&Sid, u64)],
        channel: &str,
        payload: &[String],
    ) -> Result<(), StoreError> {
        if self.held.grew_since(self.mark) {
            self.wrote = true;
        }
        let held = std::mem::take(&mut self.held);
        self.mark = Mark::default();
        let args = held.args(heads, channel, payload);
        self.send(args.statement(), |c, st| c.execute(st, &args.refs())).map(drop)
    }

    /// Sends what is held before a statement that might read it.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.held.is_empty() {
            return Ok(());
        }
        self.finish(&[], "", &[])
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    fn track(&mut self, e: postgres::Error) -> StoreError {
        self.last_retryable |= is_retryable(&e);
        self.failed = true;
        err(e)
    }

    /// Before any statement: what is held goes first, and a statement that may write counts
    /// as the mutation's write.
    fn before(&mut self, sql: &str) -> Result<(), StoreError> {
        self.flush()?;
        if !sql.trim_start().starts_with("SELECT") {
            self.wrote = true;
            self.ahead.forget_all();
        }
        Ok(())
    }

    /// Runs prepared `sql`: one round trip.
    fn send<T>(
        &mut self,
        sql: &str,
        run: impl FnOnce(&mut Client, &Statement) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        self.sent += 1;
        let r = self.statement(sql).and_then(|st| run(&mut self.client, &st));
        r.map_err(|e| self.track(e))
    }

    pub(crate) fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        self.before(sql)?;
        self.send(sql, |c, st| c.query(st, params))
    }

    /// [`PgConn::query`] of rows nothing held can change, which need not wait for it.
    pub(crate) fn query_past_held(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.send(sql, |c, st| c.query(st, params))
    }

    pub(crate) fn query_opt(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, StoreError> {
        self.before(sql)?;
        self.send(sql, |c, st| c.query_opt(st, params))
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        self.before(sql)?;
        self.send(sql, |c, st| c.execute(st, params))
    }

    pub(crate) fn query_boxed(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        self.query(sql, &refs)
    }

    /// Runs plain SQL (transaction control, savepoints) in one round trip.
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.before(sql)?;
        self.sent += 1;
        let r = self.client.batch_execute(sql);
        r.map_err(|e| self.track(e))
    }
}
