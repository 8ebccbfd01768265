//! A client session on the datanode: transaction blocks, statements, and the transaction
//! context they run in.
//!
//! A client connected directly (a DBA with psql) gets its transaction context from the GTM
//! (through the proxy): a snapshot per statement under READ COMMITTED or one per transaction
//! under REPEATABLE READ, and a GXID at the transaction's first write (begin and snapshot in
//! one round trip when both are needed). A statement outside a transaction block runs in its
//! own transaction, committed when it succeeds.
//!
//! Statements execute on a blocking thread (storage reads, lock waits and fsyncs block); the
//! MVCC transaction moves there and back with each statement.
//!
//! Commit order: the local commit (one synced batch) first, then the report to the GTM, so a
//! snapshot that sees the GXID as finished always finds it committed here.
//!
//! The parts: [`settings`] (SET/SHOW, timeouts), [`statement`] (one statement on a blocking
//! thread), [`ddl`] (CREATE/DROP/ALTER TABLE, TRUNCATE), [`prepared`] (two-phase commit).

use super::catalog::{self, CatalogCache, CatalogView, IdAllocator};
use super::plan_cache::{self, Prepared};
use super::roles::{Roles, ROLES_TABLE_ID};
use super::table::mvcc_error;
use crate::session_thread::blocking;
use crate::storage::mvcc::{GxidSlots, Mvcc, SnapshotFetch, Transaction};
use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::gtm::proto::SessionId;
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::exec::Row;
use rxc_common::sql::parser::Statement;
use rxc_common::sql::plan::OutputColumn;
use rxc_common::sql::{DataType, Value};
use rxc_common::txn::{Gxid, Isolation, Snapshot};
use sqlparser::ast;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

mod context;
mod copy;
mod ddl;
mod prepared;
mod roles;
mod sequences;
mod settings;
pub mod snapshots;
mod statement;

use settings::default_settings;
pub use settings::isolation_from_modes;
pub use statement::dml_result;
use statement::run_statement;

/// A connection's cancel key secret and its session's cancel flag.
type CancelKey = (Vec<u8>, Arc<AtomicBool>);

/// What every session of a datanode shares.
pub struct Node {
    /// The node's name.
    pub name: String,
    /// The MVCC layer over the node's storage.
    pub mvcc: Arc<Mvcc>,
    /// Table and index ids.
    pub ids: IdAllocator,
    /// The GTM (or proxy).
    pub gtm: GtmClient,
    /// Cached sequence ranges: name → (next value, values left, increment).
    sequences: Mutex<HashMap<String, (i64, u64, i64)>>,
    /// Sequence changes of prepared transactions, by GID (settled by COMMIT/ROLLBACK
    /// PREPARED; not kept across a restart).
    prepared_sequences: Mutex<HashMap<String, sequences::SequenceChanges>>,
    /// Cancel keys of the open connections: backend pid → (secret, the session's cancel flag).
    cancel_keys: Mutex<HashMap<i32, CancelKey>>,
    /// Decoded table descriptors.
    pub catalog: CatalogCache,
    /// The roles.
    pub roles: Arc<Roles>,
    /// The shared runtime, where the GTM client's connection lives.
    runtime: tokio::runtime::Handle,
    /// Where and how a session thread connects a GTM client of its own, if it does.
    session_gtm: Option<(Vec<String>, ClientOptions)>,
    /// Snapshot answers shared by the sessions' statements.
    pub snapshots: snapshots::SnapshotShare,
    /// Transactions of this node's sessions whose end the GTM has acknowledged lately: a
    /// transaction that waited for one of them need not ask the GTM about it before its own
    /// commit.
    reported: GxidSlots,
}

/// The tag of a GXID in [`Node::reported`].
const REPORTED: u8 = 1;

impl Node {
    /// A node over `mvcc` (recovered) talking to `gtm`, with `roles` (the built-in ones; the
    /// stored ones are read here); call it on the shared runtime.
    pub fn new(name: String, mvcc: Arc<Mvcc>, gtm: GtmClient, roles: Arc<Roles>) -> Result<Node> {
        roles.load(&mvcc)?;
        Ok(Node {
            runtime: tokio::runtime::Handle::current(),
            session_gtm: None,
            snapshots: snapshots::SnapshotShare::default(),
            reported: GxidSlots::new(1 << 14),
            name,
            ids: IdAllocator::open(mvcc.clone())?,
            mvcc,
            gtm,
            sequences: Mutex::new(HashMap::new()),
            prepared_sequences: Mutex::new(HashMap::new()),
            cancel_keys: Mutex::new(HashMap::new()),
            catalog: CatalogCache::default(),
            roles,
        })
    }

    /// Gives each session on a session thread a GTM client of its own, connected to
    /// `addresses` with `options` (see [`Session`]): a GTM call is then a round trip on the
    /// session's thread, with no hop to the shared runtime and back.
    pub fn with_session_gtm(mut self, addresses: Vec<String>, options: ClientOptions) -> Node {
        self.session_gtm = Some((addresses, options));
        self
    }

    /// Waits, from a statement's blocking code, for `call` to the GTM (run on the shared
    /// runtime, where the GTM client lives).
    pub(crate) fn wait_gtm<F>(&self, call: F) -> Result<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send,
    {
        crate::session_thread::wait_on(&self.runtime, call)
            .ok_or_else(|| SqlError::new(sqlstate::ADMIN_SHUTDOWN, "the datanode is shutting down"))
    }

    /// How a statement's blocking code asks the GTM for the snapshot it deferred: through the
    /// node's client on the shared runtime, sharing answers with the node's other sessions.
    fn snapshot_fetch(node: &Arc<Node>) -> SnapshotFetch {
        let node = node.clone();
        Arc::new(move || {
            let n = node.clone();
            node.wait_gtm(async move { n.snapshots.get(&n.gtm).await })
                .map_err(|e| e.message)?
        })
    }

    /// Drops the cached values of sequence `name` (changed or dropped).
    fn forget_sequence(&self, name: &str) {
        self.sequences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// A cancel request: sets the cancel flag of the session with this pid and secret key
    /// (a request with a wrong key is ignored, as in PostgreSQL). Returns whether it matched.
    pub fn cancel(&self, pid: i32, secret: &[u8]) -> bool {
        let keys = self.cancel_keys.lock().unwrap_or_else(|e| e.into_inner());
        match keys.get(&pid) {
            Some((key, flag)) if key.as_slice() == secret => {
                flag.store(true, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }
}

/// What a statement returns to the client.
#[derive(Debug)]
pub enum StatementResult {
    /// Rows, with the command tag's verb (`SELECT`, `INSERT 0`, ...).
    Rows {
        columns: Vec<OutputColumn>,
        rows: Vec<Row>,
        tag: String,
    },
    /// A command with its full tag.
    Command(String),
    /// BEGIN / START TRANSACTION.
    Begin,
    /// COMMIT, ROLLBACK, PREPARE TRANSACTION (the tag says which happened).
    End(String),
    /// COPY FROM STDIN started: the client sends the data next.
    CopyIn { columns: usize, csv: bool },
    /// COPY TO STDOUT: the data, one encoded line per row.
    CopyOut {
        columns: usize,
        csv: bool,
        lines: Vec<Vec<u8>>,
    },
}

struct Txn {
    explicit: bool,
    failed: bool,
    isolation: Isolation,
    gxid: Option<Gxid>,
    mvcc: Option<Transaction>,
    row_ids: u32,
    /// Sequences it created or dropped (settled at the GTM when it ends).
    sequences: sequences::SequenceChanges,
}

impl Txn {
    fn new(explicit: bool, isolation: Isolation) -> Txn {
        Txn {
            explicit,
            failed: false,
            isolation,
            gxid: None,
            mvcc: None,
            row_ids: 0,
            sequences: sequences::SequenceChanges::default(),
        }
    }
}

/// One client's session.
pub struct Session {
    node: Arc<Node>,
    /// The GTM client the session's transactions begin on, with the session's id there:
    /// its own on a session thread if the node says so ([`Node::with_session_gtm`]), else
    /// the node's. Chosen at the first transaction.
    gtm: Option<(GtmClient, SessionId)>,
    txn: Option<Txn>,
    settings: BTreeMap<String, String>,
    copy_in: Option<copy::CopyIn>,
    /// A coordinator's connection: transaction context comes with the statements, and the
    /// GTM is never told of this session's transactions (see [`context`]).
    from_coordinator: bool,
    /// The context the coordinator sent for the next statement.
    pending_context: Option<context::CoordinatorContext>,
    /// Set by a cancel request; cleared when a statement starts.
    cancel: Arc<AtomicBool>,
    /// The backend pid of the connection's cancel key, once registered.
    pid: Option<i32>,
    /// How its statements that began without a snapshot take one ([`Node::snapshot_fetch`]).
    snapshot_fetch: SnapshotFetch,
    /// Its `currval`s and `lastval`.
    session_sequences: Arc<Mutex<statement::SessionSequences>>,
    /// The role it logged in as.
    user: String,
}

/// A failed GTM request as a SQL error (08006: the GTM is the cluster's connection).
pub fn gtm_error(e: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        sqlstate::CONNECTION_FAILURE,
        format!("GTM request failed: {e}"),
    )
}

/// The snapshot that sees every locally committed transaction: for describing statements
/// (catalog reads) without a GTM round trip.
pub(crate) fn latest_snapshot() -> Snapshot {
    Snapshot {
        xmin: Gxid(u64::MAX),
        xmax: Gxid(u64::MAX),
        xip: Vec::new(),
        global_xmin: Gxid(0),
    }
}

/// Whether a statement is a query or DML (bound to a plan), not DDL, EXPLAIN or a utility.
pub fn is_dml(stmt: &ast::Statement) -> bool {
    matches!(
        stmt,
        ast::Statement::Query(_)
            | ast::Statement::Insert(_)
            | ast::Statement::Update(_)
            | ast::Statement::Delete(_)
    )
}

/// Whether a statement writes (needs a GXID).
fn writes(stmt: &ast::Statement) -> bool {
    match stmt {
        ast::Statement::Explain {
            statement,
            analyze: true,
            ..
        } => writes(statement),
        ast::Statement::Query(q) => !q.locks.is_empty(),
        ast::Statement::Insert(_)
        | ast::Statement::Update(_)
        | ast::Statement::Delete(_)
        | ast::Statement::CreateTable(_)
        | ast::Statement::CreateIndex(_)
        | ast::Statement::Drop { .. }
        | ast::Statement::Truncate(_)
        | ast::Statement::AlterTable(_) => true,
        _ => false,
    }
}

impl Session {
    /// A new session of `node`.
    pub fn new(node: Arc<Node>) -> Session {
        let settings = default_settings();
        Session {
            snapshot_fetch: Node::snapshot_fetch(&node),
            node,
            gtm: None,
            txn: None,
            settings,
            copy_in: None,
            from_coordinator: false,
            pending_context: None,
            cancel: Arc::new(AtomicBool::new(false)),
            session_sequences: Arc::default(),
            pid: None,
            user: rxc_common::auth::SUPERUSER.to_string(),
        }
    }

    /// The role the session logged in as.
    pub fn set_user(&mut self, user: &str) {
        self.user = user.to_string();
    }

    /// The role the session runs as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The session's role as committed now (42704 once it was dropped).
    fn actor(&self) -> Result<super::roles::Role> {
        self.node.roles.get(&self.user).ok_or_else(|| {
            SqlError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("role \"{}\" does not exist", self.user),
            )
        })
    }

    /// Whether the session's role is a superuser now.
    pub fn is_superuser(&self) -> bool {
        self.actor().is_ok_and(|r| r.superuser)
    }

    /// Registers the connection's cancel key (backend pid and secret) with the node.
    pub fn register_cancel_key(&mut self, pid: i32, secret: Vec<u8>) {
        let mut keys = self
            .node
            .cancel_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        keys.insert(pid, (secret, self.cancel.clone()));
        self.pid = Some(pid);
    }

    /// Whether a transaction block is open (for ReadyForQuery).
    pub fn in_transaction_block(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.explicit)
    }

    /// Whether the open transaction block failed.
    pub fn in_failed_block(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.explicit && t.failed)
    }

    /// Binds a statement to learn its parameter and result types (Describe).
    pub async fn describe(
        &mut self,
        stmt: &Statement,
        prepared: &Prepared,
    ) -> Result<(Vec<DataType>, Vec<OutputColumn>)> {
        let param_types = &prepared.param_types[..];
        let (Statement::Sql(ast) | Statement::CreateTable { create: ast, .. }) = stmt else {
            return Ok((param_types.to_vec(), vec![]));
        };
        if !is_dml(ast) {
            let text_column = |name: String| OutputColumn {
                name,
                data_type: DataType::Text,
                table_id: None,
            };
            return Ok(match &**ast {
                ast::Statement::ShowVariable { variable } => {
                    let name = variable
                        .iter()
                        .map(|i| i.value.to_lowercase())
                        .collect::<Vec<_>>()
                        .join(" ");
                    (vec![], vec![text_column(name)])
                }
                ast::Statement::Explain { .. } => {
                    (param_types.to_vec(), vec![text_column("QUERY PLAN".into())])
                }
                _ => (param_types.to_vec(), vec![]),
            });
        }
        let bound = match self.txn.as_ref().and_then(|t| t.mvcc.as_ref()) {
            Some(txn) => {
                let view = CatalogView {
                    txn,
                    cache: &self.node.catalog,
                };
                plan_cache::bind(&view, ast, param_types, Some(&prepared.slot))
            }
            None => {
                let txn = self.node.mvcc.read_only(latest_snapshot());
                let view = CatalogView {
                    txn: &txn,
                    cache: &self.node.catalog,
                };
                plan_cache::bind(&view, ast, param_types, Some(&prepared.slot))
            }
        };
        // A statement that fails to bind fails its transaction block, as one that fails to run.
        let bound = match bound {
            Ok(bound) => bound,
            Err(e) => {
                self.fail().await;
                return Err(e);
            }
        };
        let params = bound
            .params
            .iter()
            .map(|t| {
                if *t == DataType::Unknown {
                    DataType::Text
                } else {
                    t.clone()
                }
            })
            .collect();
        Ok((params, bound.root.columns()))
    }

    /// Runs one statement with parameter values (already of the described types); a
    /// prepared statement's plan is kept with it.
    pub async fn execute(
        &mut self,
        stmt: &Statement,
        params: &[Value],
        prepared: Option<Prepared>,
    ) -> Result<StatementResult> {
        // A cancel request only cancels a statement running when it arrives.
        self.cancel.store(false, Ordering::Relaxed);
        // A Postgres-XC CREATE TABLE is the plain one here: distribution is the coordinator's.
        let plain;
        let stmt = match stmt {
            Statement::CreateTable { create, .. } => {
                plain = Statement::Sql(create.clone());
                &plain
            }
            _ => stmt,
        };
        // Transaction control first: it is allowed in a failed block.
        match stmt {
            Statement::PrepareTransaction(gid) => return self.prepare_transaction(gid).await,
            Statement::CommitPrepared(gid) => return self.finish_prepared(gid, true).await,
            Statement::RollbackPrepared(gid) => return self.finish_prepared(gid, false).await,
            Statement::Sql(s) => match &**s {
                ast::Statement::StartTransaction { modes, .. } => return self.begin(modes),
                ast::Statement::Commit { .. } => return self.commit_block().await,
                ast::Statement::Rollback {
                    savepoint: None, ..
                } => return self.rollback_block().await,
                _ => {}
            },
            Statement::Copy(_)
            | Statement::Maintenance { .. }
            | Statement::TransactionContext(_)
            | Statement::BreakDeadlock(_)
            | Statement::CreateNode { .. }
            | Statement::AlterNode { .. }
            | Statement::DropNode { .. }
            | Statement::CreateNodeGroup { .. }
            | Statement::DropNodeGroup { .. }
            | Statement::ExecuteDirect { .. }
            | Statement::CleanConnection { .. }
            | Statement::CreateTable { .. }
            | Statement::CreateSequence { .. }
            | Statement::AlterSequence { .. }
            | Statement::CreateRole { .. }
            | Statement::AlterRole { .. }
            | Statement::DropRole { .. } => {}
        }
        if self.in_failed_block() {
            return Err(SqlError::new(
                sqlstate::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        // Sequence DDL goes to the GTM; a failure fails the block as any statement's.
        match self.sequence_ddl(stmt).await {
            Ok(Some(result)) => return Ok(result),
            Ok(None) => {}
            Err(e) => {
                self.fail().await;
                return Err(e);
            }
        }
        if let Some(result) = self.role_ddl(stmt).await {
            return result;
        }
        let ast = match stmt {
            Statement::Sql(ast) => ast,
            Statement::Copy(copy) => return self.start_copy(copy).await,
            Statement::Maintenance { command, tables } => return self.maintenance(command, tables),
            Statement::TransactionContext(options) => return self.set_context(options),
            Statement::BreakDeadlock(gxid) => return self.break_deadlock(*gxid),
            Statement::CreateNode { .. }
            | Statement::AlterNode { .. }
            | Statement::DropNode { .. }
            | Statement::CreateNodeGroup { .. }
            | Statement::DropNodeGroup { .. }
            | Statement::ExecuteDirect { .. }
            | Statement::CleanConnection { .. } => {
                // Fails its transaction block, as any statement that fails.
                self.fail().await;
                return Err(SqlError::unsupported(format!(
                    "{} runs on a coordinator, not on datanode {}",
                    stmt.command_name(),
                    self.node.name
                )));
            }
            _ => return Err(SqlError::internal("unexpected statement")),
        };
        if let Some(result) = self.utility(ast)? {
            return Ok(result);
        }
        self.run_statement(ast.clone(), params.to_vec(), prepared)
            .await
    }

    /// `VACUUM` / `ANALYZE`: the tables must exist; storage reclaims space in the background
    /// (garbage collection below the GTM's `global_xmin`) and plans need no statistics yet.
    fn maintenance(&self, command: &str, tables: &[String]) -> Result<StatementResult> {
        if command == "VACUUM" && self.in_transaction_block() {
            return Err(SqlError::new(
                sqlstate::ACTIVE_SQL_TRANSACTION,
                "VACUUM cannot run inside a transaction block",
            ));
        }
        let txn = self.node.mvcc.read_only(latest_snapshot());
        for name in tables {
            if catalog::get_table(&txn, name)?.is_none() {
                return Err(SqlError::new(
                    sqlstate::UNDEFINED_TABLE,
                    format!("relation \"{name}\" does not exist"),
                ));
            }
        }
        Ok(StatementResult::Command(command.to_string()))
    }

    /// Runs a statement in the session's transaction and ends that transaction when it is
    /// the statement's own: committed on success; failed on error (a block stays failed).
    async fn run_statement(
        &mut self,
        stmt: Arc<ast::Statement>,
        params: Vec<Value>,
        prepared: Option<Prepared>,
    ) -> Result<StatementResult> {
        let owned = self.owned_sequences(&stmt)?;
        let result = self.run_in_transaction(stmt, params, prepared).await;
        if result.is_ok() {
            if let Some(txn) = self.txn.as_mut() {
                txn.sequences.dropped.extend(owned);
            }
        }
        self.end_statement(result).await
    }

    /// Ends a statement that ran in the session's transaction: commits the transaction when
    /// it is the statement's own and the statement succeeded; fails it (a block stays
    /// failed) when the statement failed.
    async fn end_statement<T>(&mut self, result: Result<T>) -> Result<T> {
        match result {
            Ok(r) => {
                if !self.in_transaction_block() {
                    self.finish(true).await?;
                }
                Ok(r)
            }
            Err(e) => {
                self.fail().await;
                Err(e)
            }
        }
    }

    fn begin(&mut self, modes: &[ast::TransactionMode]) -> Result<StatementResult> {
        let isolation = match isolation_from_modes(modes)? {
            Some(i) => i,
            None => self.default_isolation()?,
        };
        match &mut self.txn {
            Some(t) if t.explicit => {
                // PostgreSQL warns and stays in the block.
                tracing::debug!("BEGIN inside a transaction block");
            }
            _ => self.txn = Some(Txn::new(true, isolation)),
        }
        Ok(StatementResult::Begin)
    }

    async fn commit_block(&mut self) -> Result<StatementResult> {
        let failed = self.txn.as_ref().is_some_and(|t| t.failed);
        if failed {
            self.finish(false).await?;
            return Ok(StatementResult::End("ROLLBACK".into()));
        }
        self.finish(true).await?;
        Ok(StatementResult::End("COMMIT".into()))
    }

    async fn rollback_block(&mut self) -> Result<StatementResult> {
        self.finish(false).await?;
        Ok(StatementResult::End("ROLLBACK".into()))
    }

    /// Ends the current transaction (if any) with a commit or an abort.
    async fn finish(&mut self, commit: bool) -> Result<()> {
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        let commit = commit && !txn.failed;
        // Transactions this one waited for (or acted on after they committed here) must be
        // finished at the GTM before this commit is reported, or a snapshot could see this
        // transaction's change without theirs.
        let commit_after: Vec<Gxid> = txn
            .mvcc
            .as_ref()
            .map(|m| m.commit_after().to_vec())
            .unwrap_or_default();
        if let Some(m) = txn.mvcc {
            let changed_catalog = commit && m.has_written(catalog::CATALOG_TABLE_ID);
            let changed_roles = commit && m.has_written(ROLES_TABLE_ID);
            let result = blocking(move || if commit { m.commit() } else { m.abort() })
                .await
                .map_err(|e| SqlError::internal(format!("commit task failed: {e}")))?;
            if let Err(e) = result {
                if let Some(g) = txn.gxid {
                    let _ = self.report_to_gtm(g, false).await;
                }
                return Err(mvcc_error(e));
            }
            if changed_catalog {
                self.node.catalog.invalidate();
            }
            if changed_roles {
                self.node.roles.load(&self.node.mvcc)?;
            }
        }
        if commit {
            self.await_finished_at_gtm(&commit_after).await?;
        }
        if let Some(g) = txn.gxid {
            self.report_to_gtm(g, commit).await?;
        }
        txn.sequences.settle(&self.node, commit).await;
        Ok(())
    }

    /// Reports a transaction's end to the GTM — unless a coordinator owns it (it reports
    /// once every participant is done).
    async fn report_to_gtm(&self, gxid: Gxid, commit: bool) -> Result<()> {
        if self.from_coordinator {
            return Ok(());
        }
        let report = if commit {
            self.gtm_client().commit(gxid).await
        } else {
            self.gtm_client().abort(gxid).await
        };
        report.map_err(gtm_error)?;
        self.node.reported.put(gxid, REPORTED);
        Ok(())
    }

    /// Waits until the GTM no longer counts any of `gxids` as running (their sessions report
    /// them right after their local commit). One reported here, or finished in the newest
    /// snapshot the node has, needs no asking.
    async fn await_finished_at_gtm(&self, gxids: &[Gxid]) -> Result<()> {
        let newest = self.node.snapshots.newest();
        for &g in gxids.iter().filter(|&&g| {
            self.node.reported.get(g).is_none()
                && !newest.as_ref().is_some_and(|s| s.is_finished(g))
        }) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let status = self.gtm_client().status(g).await.map_err(gtm_error)?;
                if !matches!(
                    status,
                    rxc_common::gtm::proto::TxnStatus::InProgress
                        | rxc_common::gtm::proto::TxnStatus::Prepared { .. }
                ) {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(SqlError::new(
                        sqlstate::SERIALIZATION_FAILURE,
                        format!(
                            "transaction {} this one waited for is not finished at the GTM",
                            g.0
                        ),
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        Ok(())
    }

    /// A statement failed: abort its transaction's writes now; an explicit block stays
    /// open (failed) until ROLLBACK.
    async fn fail(&mut self) {
        let explicit = self.txn.as_ref().is_some_and(|t| t.explicit);
        if let Some(t) = &mut self.txn {
            t.failed = true;
        }
        let taken = self.txn.as_mut().map(|t| (t.mvcc.take(), t.gxid.take()));
        if let Some((m, g)) = taken {
            if let Some(m) = m {
                let _ = blocking(move || m.abort()).await;
            }
            if let Some(g) = g {
                if let Err(e) = self.report_to_gtm(g, false).await {
                    tracing::warn!(gxid = g.0, error = %e, "could not report an abort to the GTM");
                }
            }
        }
        if !explicit {
            self.txn = None;
        }
    }

    /// Makes sure a transaction with the right context is open for a statement.
    async fn prepare_context(&mut self, write: bool) -> Result<()> {
        if self.from_coordinator {
            return self.apply_coordinator_context(write).await;
        }
        if self.txn.is_none() {
            self.txn = Some(Txn::new(false, self.default_isolation()?));
        }
        let (gtm, session) = self.gtm_session().await?;
        let node = self.node.clone();
        let mvcc = self.node.mvcc.clone();
        let txn = self
            .txn
            .as_mut()
            .ok_or_else(|| SqlError::internal("no txn"))?;
        let fresh_snapshot = txn.mvcc.is_none() || txn.isolation == Isolation::ReadCommitted;
        if write && txn.gxid.is_none() {
            let (gxid, snapshot) = if fresh_snapshot {
                let (gxid, _, snapshot) = gtm
                    .begin_with_unheld_snapshot(session, txn.isolation)
                    .await
                    .map_err(gtm_error)?;
                node.snapshots.note(&snapshot);
                (gxid, snapshot)
            } else {
                let (gxid, _) = gtm.begin(session, txn.isolation).await.map_err(gtm_error)?;
                let snapshot = txn
                    .mvcc
                    .as_ref()
                    .map(|m| m.snapshot().clone())
                    .ok_or_else(|| SqlError::internal("no snapshot"))?;
                (gxid, snapshot)
            };
            txn.gxid = Some(gxid);
            txn.mvcc = Some(mvcc.begin(gxid, snapshot, txn.isolation));
            return Ok(());
        }
        if !fresh_snapshot {
            return Ok(());
        }
        if txn.isolation == Isolation::ReadCommitted {
            // The statement begins with the node's newest snapshot and asks the GTM only if a
            // decision needs a snapshot of its own (see `Transaction::defer_snapshot`).
            if let Some(stale) = node.snapshots.newest() {
                let fetch = self.snapshot_fetch.clone();
                match &mut txn.mvcc {
                    Some(m) if txn.gxid.is_some() => {
                        m.defer_snapshot(stale, fetch).map_err(mvcc_error)?
                    }
                    _ => {
                        let mut m = mvcc.read_only(stale);
                        m.defer(fetch);
                        txn.mvcc = Some(m);
                    }
                }
                return Ok(());
            }
        }
        {
            let snapshot = node.snapshots.get(&gtm).await.map_err(gtm_error)?;
            match &mut txn.mvcc {
                Some(m) if txn.gxid.is_some() => m.set_snapshot(snapshot).map_err(mvcc_error)?,
                _ => txn.mvcc = Some(mvcc.read_only(snapshot)),
            }
        }
        Ok(())
    }

    async fn run_in_transaction(
        &mut self,
        stmt: Arc<ast::Statement>,
        params: Vec<Value>,
        prepared: Option<Prepared>,
    ) -> Result<StatementResult> {
        let sequences = self.session_sequences.clone();
        self.on_blocking_thread(writes(&stmt), move |node, txn, row_ids| {
            run_statement(
                node,
                &sequences,
                txn,
                row_ids,
                &stmt,
                &params,
                prepared.as_ref(),
            )
        })
        .await
    }

    /// Runs `work` in the session's transaction (opened with the context a reader or a
    /// writer needs) where it may block (storage reads, lock waits, fsyncs): in place on the
    /// session's thread ([`crate::session_thread`]).
    async fn on_blocking_thread<T, F>(&mut self, write: bool, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Node, &mut Transaction, &mut u32) -> Result<T> + Send + 'static,
    {
        self.prepare_context(write).await?;
        let wait = self.wait_options();
        let txn = self
            .txn
            .as_mut()
            .ok_or_else(|| SqlError::internal("no txn"))?;
        let mut mvcc_txn = txn
            .mvcc
            .take()
            .ok_or_else(|| SqlError::internal("no MVCC transaction"))?;
        mvcc_txn.set_wait(wait);
        let mut row_ids = txn.row_ids;
        let node = self.node.clone();
        let (mvcc_txn_back, row_ids_back, result) = blocking(move || {
            let result = work(&node, &mut mvcc_txn, &mut row_ids);
            mvcc_txn.end_statement();
            (mvcc_txn, row_ids, result)
        })
        .await
        .map_err(|e| SqlError::internal(format!("statement task failed: {e}")))?;
        let txn = self
            .txn
            .as_mut()
            .ok_or_else(|| SqlError::internal("no txn"))?;
        txn.mvcc = Some(mvcc_txn_back);
        txn.row_ids = row_ids_back;
        result
    }

    /// The GTM client and session id to begin transactions on, connecting the session's own
    /// client at the first call if it has one.
    async fn gtm_session(&mut self) -> Result<(GtmClient, SessionId)> {
        if let Some((gtm, session)) = &self.gtm {
            return Ok((gtm.clone(), *session));
        }
        let gtm = match &self.node.session_gtm {
            Some((addresses, options)) if crate::session_thread::on_session_thread() => {
                GtmClient::connect(addresses.clone(), options.clone())
                    .await
                    .map_err(gtm_error)?
            }
            _ => self.node.gtm.clone(),
        };
        let session = gtm.new_session();
        self.gtm = Some((gtm.clone(), session));
        Ok((gtm, session))
    }

    /// The GTM client for calls outside a session's transactions (commit, abort, status):
    /// the session's, once chosen, else the node's; any client may make them.
    fn gtm_client(&self) -> GtmClient {
        match &self.gtm {
            Some((gtm, _)) => gtm.clone(),
            None => self.node.gtm.clone(),
        }
    }

    /// Table `name` as the session's open transaction sees the catalog (its own DDL
    /// included), or as committed when none is open.
    pub fn table(&self, name: &str) -> Result<Option<Arc<rxc_common::sql::catalog::Table>>> {
        use rxc_common::sql::catalog::Catalog;
        match self.txn.as_ref().and_then(|t| t.mvcc.as_ref()) {
            Some(txn) => CatalogView {
                txn,
                cache: &self.node.catalog,
            }
            .table(name),
            None => {
                let txn = self.node.mvcc.read_only(latest_snapshot());
                CatalogView {
                    txn: &txn,
                    cache: &self.node.catalog,
                }
                .table(name)
            }
        }
    }

    /// Ends the session: an open transaction aborts.
    pub async fn close(&mut self) {
        if let Some(pid) = self.pid.take() {
            let mut keys = self
                .node
                .cancel_keys
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            keys.remove(&pid);
        }
        let _ = self.finish(false).await;
        if let Some((gtm, session)) = self.gtm.take() {
            let _ = gtm.end_session(session).await;
        }
    }
}
