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

use super::catalog::{self, CatalogView, IdAllocator};
use super::table::{mvcc_error, TxnStorage};
use crate::storage::keys::Key;
use crate::storage::locks::WaitOptions;
use crate::storage::mvcc::{Mvcc, Transaction};
use crate::storage::{Cf, WriteBatch};
use rxc_common::gtm::client::GtmClient;
use rxc_common::gtm::proto::{SeqOptions, SessionId};
use rxc_common::sql::binder;
use rxc_common::sql::catalog::Table;
use rxc_common::sql::ddl;
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::exec::{self, Row};
use rxc_common::sql::parser::Statement;
use rxc_common::sql::plan::{BoundQuery, OutputColumn};
use rxc_common::sql::{DataType, Value};
use rxc_common::txn::{Gxid, Isolation, Snapshot};
use sqlparser::ast;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
}

impl Node {
    /// A node over `mvcc` (recovered) talking to `gtm`.
    pub fn new(name: String, mvcc: Arc<Mvcc>, gtm: GtmClient) -> Result<Node> {
        Ok(Node {
            name,
            ids: IdAllocator::open(mvcc.clone())?,
            mvcc,
            gtm,
            sequences: Mutex::new(HashMap::new()),
        })
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
}

struct Txn {
    explicit: bool,
    failed: bool,
    isolation: Isolation,
    gxid: Option<Gxid>,
    mvcc: Option<Transaction>,
    row_ids: u32,
}

/// One client's session.
pub struct Session {
    node: Arc<Node>,
    gtm_session: SessionId,
    txn: Option<Txn>,
    settings: BTreeMap<String, String>,
}

fn gtm_error(e: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        sqlstate::CONNECTION_FAILURE,
        format!("GTM request failed: {e}"),
    )
}

/// The snapshot that sees every locally committed transaction: for describing statements
/// (catalog reads) without a GTM round trip.
fn latest_snapshot() -> Snapshot {
    Snapshot {
        xmin: Gxid(u64::MAX),
        xmax: Gxid(u64::MAX),
        xip: Vec::new(),
        global_xmin: Gxid(0),
    }
}

fn isolation_from_modes(modes: &[ast::TransactionMode]) -> Result<Option<Isolation>> {
    let mut out = None;
    for m in modes {
        if let ast::TransactionMode::IsolationLevel(level) = m {
            out = Some(match level {
                ast::TransactionIsolationLevel::ReadUncommitted
                | ast::TransactionIsolationLevel::ReadCommitted => Isolation::ReadCommitted,
                ast::TransactionIsolationLevel::RepeatableRead => Isolation::RepeatableRead,
                _ => {
                    return Err(SqlError::unsupported(
                        "SERIALIZABLE isolation is not supported yet; use REPEATABLE READ",
                    ))
                }
            });
        }
    }
    Ok(out)
}

fn isolation_name(i: Isolation) -> &'static str {
    match i {
        Isolation::ReadCommitted => "read committed",
        Isolation::RepeatableRead => "repeatable read",
    }
}

/// Whether a statement writes (needs a GXID).
fn writes(stmt: &ast::Statement) -> bool {
    match stmt {
        ast::Statement::Query(q) => !q.locks.is_empty(),
        ast::Statement::Insert(_)
        | ast::Statement::Update(_)
        | ast::Statement::Delete(_)
        | ast::Statement::CreateTable(_)
        | ast::Statement::Drop { .. }
        | ast::Statement::Truncate(_)
        | ast::Statement::AlterTable(_) => true,
        _ => false,
    }
}

impl Session {
    /// A new session of `node`.
    pub fn new(node: Arc<Node>) -> Session {
        let gtm_session = node.gtm.new_session();
        let settings = default_settings();
        Session {
            node,
            gtm_session,
            txn: None,
            settings,
        }
    }

    /// Whether a transaction block is open (for ReadyForQuery).
    pub fn in_transaction_block(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.explicit)
    }

    /// Whether the open transaction block failed.
    pub fn in_failed_block(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.explicit && t.failed)
    }

    fn default_isolation(&self) -> Result<Isolation> {
        match self
            .settings
            .get("default_transaction_isolation")
            .map(String::as_str)
        {
            Some("repeatable read") => Ok(Isolation::RepeatableRead),
            Some("serializable") => Err(SqlError::unsupported(
                "SERIALIZABLE isolation is not supported yet; use REPEATABLE READ",
            )),
            _ => Ok(Isolation::ReadCommitted),
        }
    }

    /// A setting in milliseconds (PostgreSQL's `lock_timeout`, `statement_timeout`,
    /// `deadlock_timeout`: a number of ms, or with a unit `ms`/`s`/`min`); 0 means none.
    fn setting_ms(&self, name: &str) -> u64 {
        let Some(v) = self.settings.get(name) else {
            return 0;
        };
        let v = v.trim().trim_matches('\'').to_lowercase();
        let (digits, unit): (String, String) = v.chars().partition(|c| c.is_ascii_digit());
        let n: u64 = digits.parse().unwrap_or(0);
        match unit.trim() {
            "s" => n * 1000,
            "min" => n * 60_000,
            _ => n,
        }
    }

    /// How the next statement waits for row locks.
    fn wait_options(&self) -> WaitOptions {
        let lock_timeout = self.setting_ms("lock_timeout");
        let statement_timeout = self.setting_ms("statement_timeout");
        let deadlock_timeout = self.setting_ms("deadlock_timeout");
        WaitOptions {
            lock_timeout: (lock_timeout > 0).then(|| Duration::from_millis(lock_timeout)),
            deadlock_timeout: if deadlock_timeout > 0 {
                Duration::from_millis(deadlock_timeout)
            } else {
                Duration::from_secs(1)
            },
            cancel: None,
            deadline: (statement_timeout > 0)
                .then(|| Instant::now() + Duration::from_millis(statement_timeout)),
        }
    }

    /// Binds a statement to learn its parameter and result types (Describe).
    pub async fn describe(
        &mut self,
        stmt: &Statement,
        param_types: &[DataType],
    ) -> Result<(Vec<DataType>, Vec<OutputColumn>)> {
        let Statement::Sql(ast) = stmt else {
            return Ok((param_types.to_vec(), vec![]));
        };
        if !matches!(
            **ast,
            ast::Statement::Query(_)
                | ast::Statement::Insert(_)
                | ast::Statement::Update(_)
                | ast::Statement::Delete(_)
        ) {
            if let ast::Statement::ShowVariable { variable } = &**ast {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ");
                return Ok((
                    vec![],
                    vec![OutputColumn {
                        name,
                        data_type: DataType::Text,
                        table_id: None,
                    }],
                ));
            }
            return Ok((param_types.to_vec(), vec![]));
        }
        let bound = match self.txn.as_ref().and_then(|t| t.mvcc.as_ref()) {
            Some(txn) => binder::bind(&CatalogView { txn }, ast, param_types)?,
            None => {
                let txn = self.node.mvcc.read_only(latest_snapshot());
                binder::bind(&CatalogView { txn: &txn }, ast, param_types)?
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

    /// Runs one statement with parameter values (already of the described types).
    pub async fn execute(&mut self, stmt: &Statement, params: &[Value]) -> Result<StatementResult> {
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
        }
        if self.in_failed_block() {
            return Err(SqlError::new(
                sqlstate::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        let Statement::Sql(ast) = stmt else {
            return Err(SqlError::internal("unexpected statement"));
        };
        if let Some(result) = self.utility(ast)? {
            return Ok(result);
        }
        let result = self.run_in_transaction(ast.clone(), params.to_vec()).await;
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

    /// Statements that touch neither storage nor the GTM (SET, SHOW, VACUUM, ...).
    fn utility(&mut self, stmt: &ast::Statement) -> Result<Option<StatementResult>> {
        Ok(Some(match stmt {
            ast::Statement::Set(set) => {
                self.set(set)?;
                StatementResult::Command("SET".into())
            }
            ast::Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ");
                let value = match name.as_str() {
                    "transaction isolation level" | "transaction_isolation" => {
                        let i = match &self.txn {
                            Some(t) => t.isolation,
                            None => self.default_isolation()?,
                        };
                        isolation_name(i).to_string()
                    }
                    other => self.settings.get(other).cloned().ok_or_else(|| {
                        SqlError::new(
                            sqlstate::UNDEFINED_OBJECT,
                            format!("unrecognized configuration parameter \"{other}\""),
                        )
                    })?,
                };
                StatementResult::Rows {
                    columns: vec![OutputColumn {
                        name,
                        data_type: DataType::Text,
                        table_id: None,
                    }],
                    rows: vec![vec![Value::Text(value)]],
                    tag: "SHOW".into(),
                }
            }
            ast::Statement::Vacuum(_) => StatementResult::Command("VACUUM".into()),
            ast::Statement::Analyze(_) => StatementResult::Command("ANALYZE".into()),
            ast::Statement::Discard { .. } => StatementResult::Command("DISCARD ALL".into()),
            _ => return Ok(None),
        }))
    }

    fn set(&mut self, set: &ast::Set) -> Result<()> {
        match set {
            ast::Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = variable.to_string().to_lowercase();
                let value = values
                    .iter()
                    .map(|v| match v {
                        ast::Expr::Value(v) => match &v.value {
                            ast::Value::SingleQuotedString(s) => s.clone(),
                            other => other.to_string(),
                        },
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let value = if value.eq_ignore_ascii_case("default") {
                    default_settings().remove(&name).unwrap_or_default()
                } else {
                    value
                };
                if name == "default_transaction_isolation" || name == "transaction_isolation" {
                    let v = value.to_lowercase();
                    if v == "serializable" {
                        return Err(SqlError::unsupported(
                            "SERIALIZABLE isolation is not supported yet; use REPEATABLE READ",
                        ));
                    }
                    if name == "transaction_isolation" {
                        if let Some(t) = &mut self.txn {
                            t.isolation = if v == "repeatable read" {
                                Isolation::RepeatableRead
                            } else {
                                Isolation::ReadCommitted
                            };
                        }
                        return Ok(());
                    }
                }
                self.settings.insert(name, value);
                Ok(())
            }
            ast::Set::SetTimeZone { value, .. } => {
                let v = value.to_string().trim_matches('\'').to_string();
                self.settings.insert("timezone".into(), v);
                Ok(())
            }
            ast::Set::SetTransaction { modes, .. } => {
                if let Some(i) = isolation_from_modes(modes)? {
                    if let Some(t) = &mut self.txn {
                        t.isolation = i;
                    }
                }
                Ok(())
            }
            ast::Set::SetNames { .. } | ast::Set::SetNamesDefault {} => Ok(()),
            _ => Err(SqlError::unsupported(format!("{set} is not supported"))),
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
            _ => {
                self.txn = Some(Txn {
                    explicit: true,
                    failed: false,
                    isolation,
                    gxid: None,
                    mvcc: None,
                    row_ids: 0,
                })
            }
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
            let result =
                tokio::task::spawn_blocking(move || if commit { m.commit() } else { m.abort() })
                    .await
                    .map_err(|e| SqlError::internal(format!("commit task failed: {e}")))?;
            if let Err(e) = result {
                if let Some(g) = txn.gxid {
                    let _ = self.node.gtm.abort(g).await;
                }
                return Err(mvcc_error(e));
            }
        }
        if commit {
            self.await_finished_at_gtm(&commit_after).await?;
        }
        if let Some(g) = txn.gxid {
            let report = if commit {
                self.node.gtm.commit(g).await
            } else {
                self.node.gtm.abort(g).await
            };
            report.map_err(gtm_error)?;
        }
        Ok(())
    }

    /// Waits until the GTM no longer counts any of `gxids` as running (their sessions report
    /// them right after their local commit).
    async fn await_finished_at_gtm(&self, gxids: &[Gxid]) -> Result<()> {
        for &g in gxids {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let status = self.node.gtm.status(g).await.map_err(gtm_error)?;
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
                let _ = tokio::task::spawn_blocking(move || m.abort()).await;
            }
            if let Some(g) = g {
                if let Err(e) = self.node.gtm.abort(g).await {
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
        if self.txn.is_none() {
            self.txn = Some(Txn {
                explicit: false,
                failed: false,
                isolation: self.default_isolation()?,
                gxid: None,
                mvcc: None,
                row_ids: 0,
            });
        }
        let session = self.gtm_session;
        let gtm = self.node.gtm.clone();
        let mvcc = self.node.mvcc.clone();
        let txn = self
            .txn
            .as_mut()
            .ok_or_else(|| SqlError::internal("no txn"))?;
        let fresh_snapshot = txn.mvcc.is_none() || txn.isolation == Isolation::ReadCommitted;
        if write && txn.gxid.is_none() {
            let (gxid, snapshot) = if fresh_snapshot {
                let (gxid, _, snapshot) = gtm
                    .begin_with_snapshot(session, txn.isolation)
                    .await
                    .map_err(gtm_error)?;
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
        if fresh_snapshot {
            let snapshot = gtm.snapshot(session).await.map_err(gtm_error)?;
            match &mut txn.mvcc {
                Some(m) if txn.gxid.is_some() => m.set_snapshot(snapshot).map_err(mvcc_error)?,
                _ => txn.mvcc = Some(mvcc.read_only(snapshot)),
            }
        }
        Ok(())
    }

    async fn run_in_transaction(
        &mut self,
        stmt: Box<ast::Statement>,
        params: Vec<Value>,
    ) -> Result<StatementResult> {
        self.prepare_context(writes(&stmt)).await?;
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
        let handle = tokio::runtime::Handle::current();
        let (mvcc_txn_back, row_ids_back, result) = tokio::task::spawn_blocking(move || {
            let result = run_statement(&node, &handle, &mut mvcc_txn, &mut row_ids, &stmt, &params);
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

    async fn prepare_transaction(&mut self, gid: &str) -> Result<StatementResult> {
        if !self.in_transaction_block() {
            return Err(SqlError::new(
                sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                "PREPARE TRANSACTION can only be used in transaction blocks",
            ));
        }
        if self.in_failed_block() {
            self.finish(false).await?;
            return Ok(StatementResult::End("ROLLBACK".into()));
        }
        let Some(txn) = self.txn.take() else {
            return Ok(StatementResult::End("ROLLBACK".into()));
        };
        let (Some(gxid), Some(m)) = (txn.gxid, txn.mvcc) else {
            // Nothing written: nothing to keep.
            return Ok(StatementResult::End("PREPARE TRANSACTION".into()));
        };
        let key = gid_key(gid);
        if self
            .node
            .mvcc
            .engine()
            .get(Cf::Meta, &key)
            .map_err(catalog::storage_error)?
            .is_some()
        {
            let _ = tokio::task::spawn_blocking(move || m.abort()).await;
            let _ = self.node.gtm.abort(gxid).await;
            return Err(SqlError::new(
                sqlstate::DUPLICATE_PREPARED_TRANSACTION,
                format!("transaction identifier \"{gid}\" is already in use"),
            ));
        }
        // Register at the GTM first, so the GXID outlives this session there.
        self.node
            .gtm
            .prepare(gxid, gid, vec![self.node.name.clone()], &self.node.name)
            .await
            .map_err(gtm_error)?;
        let engine = self.node.mvcc.engine().clone();
        let gid_owned = gid.to_string();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let mut batch = WriteBatch::synced();
            batch.put(Cf::Meta, gid_key(&gid_owned), gxid.0.to_be_bytes().to_vec());
            engine.write(batch).map_err(catalog::storage_error)?;
            m.prepare().map_err(mvcc_error)
        })
        .await
        .map_err(|e| SqlError::internal(format!("prepare task failed: {e}")))??;
        Ok(StatementResult::End("PREPARE TRANSACTION".into()))
    }

    async fn finish_prepared(&mut self, gid: &str, commit: bool) -> Result<StatementResult> {
        if self.in_transaction_block() {
            let what = if commit { "COMMIT" } else { "ROLLBACK" };
            return Err(SqlError::new(
                sqlstate::ACTIVE_SQL_TRANSACTION,
                format!("{what} PREPARED cannot run inside a transaction block"),
            ));
        }
        let key = gid_key(gid);
        let engine = self.node.mvcc.engine().clone();
        let gxid = match engine.get(Cf::Meta, &key).map_err(catalog::storage_error)? {
            Some(bytes) if bytes.len() == 8 => {
                Gxid(u64::from_be_bytes(bytes.try_into().unwrap_or([0; 8])))
            }
            _ => {
                return Err(SqlError::new(
                    sqlstate::UNDEFINED_OBJECT,
                    format!("prepared transaction with identifier \"{gid}\" does not exist"),
                ))
            }
        };
        let mvcc = self.node.mvcc.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            if commit {
                mvcc.commit_prepared(gxid).map_err(mvcc_error)?;
            } else {
                mvcc.rollback_prepared(gxid).map_err(mvcc_error)?;
            }
            let mut batch = WriteBatch::synced();
            batch.delete(Cf::Meta, key);
            mvcc.engine().write(batch).map_err(catalog::storage_error)?;
            Ok(())
        })
        .await
        .map_err(|e| SqlError::internal(format!("task failed: {e}")))??;
        let gtm = &self.node.gtm;
        let _ = gtm.decide(gid, commit).await;
        let report = if commit {
            gtm.commit(gxid).await
        } else {
            gtm.abort(gxid).await
        };
        report.map_err(gtm_error)?;
        let _ = gtm.forget(gid).await;
        Ok(StatementResult::Command(if commit {
            "COMMIT PREPARED".into()
        } else {
            "ROLLBACK PREPARED".into()
        }))
    }

    /// Ends the session: an open transaction aborts.
    pub async fn close(&mut self) {
        let _ = self.finish(false).await;
        let _ = self.node.gtm.end_session(self.gtm_session).await;
    }
}

/// The settings a session starts with (what `SET x = DEFAULT` returns to).
fn default_settings() -> BTreeMap<String, String> {
    [
        ("client_encoding", "UTF8"),
        ("datestyle", "ISO, MDY"),
        ("timezone", "UTC"),
        ("extra_float_digits", "1"),
        ("default_transaction_isolation", "read committed"),
        ("standard_conforming_strings", "on"),
        ("integer_datetimes", "on"),
        ("server_version", "15.0"),
        ("server_encoding", "UTF8"),
        ("application_name", ""),
        ("search_path", "\"$user\", public"),
        ("statement_timeout", "0"),
        ("lock_timeout", "0"),
        ("deadlock_timeout", "1s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn gid_key(gid: &str) -> Vec<u8> {
    Key::Meta {
        name: format!("gid/{gid}"),
    }
    .encode()
}

/// Runs one statement inside `txn` on a blocking thread.
fn run_statement(
    node: &Node,
    handle: &tokio::runtime::Handle,
    txn: &mut Transaction,
    row_ids: &mut u32,
    stmt: &ast::Statement,
    params: &[Value],
) -> Result<StatementResult> {
    let sequences = &|name: &str| nextval(node, handle, name);
    match stmt {
        ast::Statement::CreateTable(ct) => return create_table(node, handle, txn, ct),
        ast::Statement::Drop {
            object_type: ast::ObjectType::Table,
            if_exists,
            names,
            ..
        } => {
            for name in names {
                let name = binder::object_name(name)?;
                if !catalog::delete_table(txn, &name)? && !if_exists {
                    return Err(SqlError::new(
                        sqlstate::UNDEFINED_TABLE,
                        format!("table \"{name}\" does not exist"),
                    ));
                }
            }
            return Ok(StatementResult::Command("DROP TABLE".into()));
        }
        ast::Statement::Truncate(t) => {
            for target in &t.table_names {
                let name = binder::object_name(&target.name)?;
                let table = catalog::get_table(txn, &name)?.ok_or_else(|| {
                    SqlError::new(
                        sqlstate::UNDEFINED_TABLE,
                        format!("relation \"{name}\" does not exist"),
                    )
                })?;
                let mut storage = storage(sequences, txn, row_ids);
                for (id, row) in rxc_common::sql::exec::Storage::scan(&mut storage, &table)? {
                    rxc_common::sql::exec::Storage::delete(&mut storage, &table, &id, &row)?;
                }
            }
            return Ok(StatementResult::Command("TRUNCATE TABLE".into()));
        }
        ast::Statement::AlterTable(alter) => {
            return alter_table(node, sequences, txn, row_ids, alter)
        }
        _ => {}
    }
    let bound: BoundQuery = {
        let view = CatalogView { txn };
        binder::bind(&view, stmt, &vec![DataType::Unknown; params.len()])?
    };
    let columns = bound.root.columns();
    let mut storage = storage(sequences, txn, row_ids);
    let output = exec::execute(&bound, params, &mut storage)?;
    let (verb, has_rows) = match stmt {
        ast::Statement::Insert(i) => ("INSERT 0", i.returning.is_some()),
        ast::Statement::Update(u) => ("UPDATE", u.returning.is_some()),
        ast::Statement::Delete(d) => ("DELETE", d.returning.is_some()),
        _ => ("SELECT", true),
    };
    if has_rows {
        Ok(StatementResult::Rows {
            columns,
            rows: output.rows,
            tag: verb.to_string(),
        })
    } else {
        Ok(StatementResult::Command(format!(
            "{verb} {}",
            output.affected
        )))
    }
}

type Sequences<'a> = &'a dyn Fn(&str) -> Result<i64>;

fn storage<'a>(
    sequences: Sequences<'a>,
    txn: &'a mut Transaction,
    row_ids: &'a mut u32,
) -> TxnStorage<'a> {
    TxnStorage {
        txn,
        row_ids,
        nextval: sequences,
        cancel: &|| Ok(()),
    }
}

fn nextval(node: &Node, handle: &tokio::runtime::Handle, name: &str) -> Result<i64> {
    {
        let mut cache = node.sequences.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((next, left, inc)) = cache.get_mut(name) {
            if *left > 0 {
                let v = *next;
                *next += *inc;
                *left -= 1;
                return Ok(v);
            }
        }
    }
    let (first, count, increment) = handle.block_on(node.gtm.nextval(name)).map_err(|e| {
        if e.to_string().contains("does not exist") {
            SqlError::new(
                sqlstate::UNDEFINED_SEQUENCE,
                format!("relation \"{name}\" does not exist"),
            )
        } else {
            gtm_error(e)
        }
    })?;
    let mut cache = node.sequences.lock().unwrap_or_else(|e| e.into_inner());
    cache.insert(
        name.to_string(),
        (first + increment, count.saturating_sub(1), increment),
    );
    Ok(first)
}

fn create_table(
    node: &Node,
    handle: &tokio::runtime::Handle,
    txn: &mut Transaction,
    ct: &ast::CreateTable,
) -> Result<StatementResult> {
    let def = ddl::create_table(ct)?;
    let mut table: Table = def.table;
    if ct.if_not_exists && catalog::get_table(txn, &table.name)?.is_some() {
        return Ok(StatementResult::Command("CREATE TABLE".into()));
    }
    table.id = node.ids.next()?;
    for index in &mut table.indexes {
        index.id = node.ids.next()?;
    }
    catalog::insert_table(txn, &table)?;
    for seq in def.sequences {
        handle
            .block_on(node.gtm.create_sequence(&seq, SeqOptions::default()))
            .map_err(gtm_error)?;
    }
    Ok(StatementResult::Command("CREATE TABLE".into()))
}

fn alter_table(
    node: &Node,
    sequences: Sequences<'_>,
    txn: &mut Transaction,
    row_ids: &mut u32,
    alter: &ast::AlterTable,
) -> Result<StatementResult> {
    let name = binder::object_name(&alter.name)?;
    let Some(mut table) = catalog::get_table(txn, &name)? else {
        if alter.if_exists {
            return Ok(StatementResult::Command("ALTER TABLE".into()));
        }
        return Err(SqlError::new(
            sqlstate::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        ));
    };
    for op in &alter.operations {
        match op {
            ast::AlterTableOperation::AddConstraint {
                constraint: ast::TableConstraint::PrimaryKey(pk),
                ..
            } => {
                if !table.primary_key.is_empty() {
                    return Err(SqlError::new(
                        sqlstate::INVALID_TABLE_DEFINITION,
                        format!("multiple primary keys for table \"{name}\" are not allowed"),
                    ));
                }
                let mut cols = Vec::new();
                for c in &pk.columns {
                    let cname = match &c.column.expr {
                        ast::Expr::Identifier(i) => binder::ident_name(i),
                        other => {
                            return Err(SqlError::unsupported(format!(
                                "key expressions are not supported: {other}"
                            )))
                        }
                    };
                    cols.push(table.column_index(&cname).ok_or_else(|| {
                        SqlError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!("column \"{cname}\" of relation \"{name}\" does not exist"),
                        )
                    })?);
                }
                if let Some(n) = &pk.name {
                    table.primary_key_name = Some(binder::ident_name(n));
                }
                // Re-key every row under a new table id.
                let old = table.clone();
                ddl::set_primary_key(&mut table, cols)?;
                table.id = node.ids.next()?;
                let rows = {
                    let mut s = storage(sequences, txn, row_ids);
                    rxc_common::sql::exec::Storage::scan(&mut s, &old)?
                };
                let mut s = storage(sequences, txn, row_ids);
                for (_, row) in rows {
                    for &c in &table.primary_key {
                        if row[c].is_null() {
                            return Err(SqlError::new(
                                sqlstate::NOT_NULL_VIOLATION,
                                format!(
                                    "column \"{}\" of relation \"{name}\" contains null values",
                                    table.columns[c].name
                                ),
                            ));
                        }
                    }
                    rxc_common::sql::exec::Storage::insert(&mut s, &table, &row).map_err(|e| {
                        if e.code == sqlstate::UNIQUE_VIOLATION {
                            SqlError::new(
                                sqlstate::UNIQUE_VIOLATION,
                                format!(
                                    "could not create unique index \"{}\"",
                                    table.primary_key_name.clone().unwrap_or_default()
                                ),
                            )
                            .with_detail(
                                e.detail
                                    .clone()
                                    .unwrap_or_default()
                                    .replace(" already exists", " is duplicated"),
                            )
                        } else {
                            e
                        }
                    })?;
                }
            }
            ast::AlterTableOperation::AddColumn { column_def, .. } => {
                let cname = binder::ident_name(&column_def.name);
                if table.column_index(&cname).is_some() {
                    return Err(SqlError::new(
                        sqlstate::DUPLICATE_COLUMN,
                        format!("column \"{cname}\" of relation \"{name}\" already exists"),
                    ));
                }
                let data_type = DataType::from_sql(&column_def.data_type)?;
                let mut nullable = true;
                let mut default = None;
                for o in &column_def.options {
                    match &o.option {
                        ast::ColumnOption::NotNull => nullable = false,
                        ast::ColumnOption::Null => nullable = true,
                        ast::ColumnOption::Default(e) => default = Some(e.to_string()),
                        other => {
                            return Err(SqlError::unsupported(format!(
                                "column option not supported in ADD COLUMN: {other}"
                            )))
                        }
                    }
                }
                // Existing rows get the default (or NULL), rewritten in place.
                let fill = match &default {
                    Some(sql) => {
                        let view = CatalogView { txn };
                        let e = binder::bind_default(&view, sql, &data_type)?;
                        struct NoContext;
                        impl rxc_common::sql::expr::EvalContext for NoContext {
                            fn param(&self, _: usize) -> Result<Value> {
                                Err(SqlError::internal("no parameters here"))
                            }
                            fn outer(&self, _: usize, _: usize) -> Result<Value> {
                                Err(SqlError::internal("no outer rows here"))
                            }
                            fn subquery(&mut self, _: usize, _: &[Value]) -> Result<Vec<Row>> {
                                Err(SqlError::internal("no subqueries here"))
                            }
                            fn nextval(&mut self, _: &str) -> Result<Value> {
                                Err(SqlError::unsupported(
                                    "ADD COLUMN with a volatile default is not supported",
                                ))
                            }
                        }
                        e.eval(&[], &mut NoContext)?
                    }
                    None => Value::Null,
                };
                let old = table.clone();
                table.columns.push(rxc_common::sql::catalog::Column {
                    name: cname.clone(),
                    data_type,
                    nullable,
                    default,
                });
                let rows = {
                    let mut s = storage(sequences, txn, row_ids);
                    rxc_common::sql::exec::Storage::scan(&mut s, &old)?
                };
                if !nullable && fill.is_null() && !rows.is_empty() {
                    return Err(SqlError::new(
                        sqlstate::NOT_NULL_VIOLATION,
                        format!("column \"{cname}\" of relation \"{name}\" contains null values"),
                    ));
                }
                let mut s = storage(sequences, txn, row_ids);
                for (id, row) in rows {
                    let mut new = row.clone();
                    new.push(fill.clone());
                    rxc_common::sql::exec::Storage::update(&mut s, &table, &id, &row, &new)?;
                }
            }
            ast::AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for column_name in column_names {
                    let cname = binder::ident_name(column_name);
                    let Some(index) = table.column_index(&cname) else {
                        if *if_exists {
                            continue;
                        }
                        return Err(SqlError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!("column \"{cname}\" of relation \"{name}\" does not exist"),
                        ));
                    };
                    if table.primary_key.contains(&index) {
                        return Err(SqlError::unsupported(
                            "dropping a primary key column is not supported",
                        ));
                    }
                    let old = table.clone();
                    table.columns.remove(index);
                    for pk in &mut table.primary_key {
                        if *pk > index {
                            *pk -= 1;
                        }
                    }
                    let rows = {
                        let mut s = storage(sequences, txn, row_ids);
                        rxc_common::sql::exec::Storage::scan(&mut s, &old)?
                    };
                    let mut s = storage(sequences, txn, row_ids);
                    for (id, row) in rows {
                        let mut new = row.clone();
                        new.remove(index);
                        rxc_common::sql::exec::Storage::update(&mut s, &table, &id, &row, &new)?;
                    }
                }
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "ALTER TABLE operation not supported: {other}"
                )))
            }
        }
    }
    catalog::update_table(txn, &table)?;
    Ok(StatementResult::Command("ALTER TABLE".into()))
}
