//! Running one statement inside an MVCC transaction, on a blocking thread: DDL goes to
//! [`ddl`], everything else is bound against the transaction's catalog view and executed over
//! [`TxnStorage`]. Sequence values come from the GTM through a node-wide cache of ranges.

use super::ddl;
use super::{gtm_error, Node, StatementResult};
use crate::sql::catalog::CatalogView;
use crate::sql::plan_cache::{self, Prepared};
use crate::sql::table::{mvcc_error, TxnStorage};
use crate::storage::mvcc::Transaction;
use rxc_common::gtm::proto::{ErrorCode, GtmError};
use rxc_common::sql::binder;
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::exec;
use rxc_common::sql::expr::SeqCall;
use rxc_common::sql::plan::{BoundQuery, OutputColumn};
use rxc_common::sql::{DataType, Value};
use sqlparser::ast;
use std::collections::HashMap;
use std::sync::Mutex;

/// Runs one statement inside `txn` on a blocking thread.
pub(super) fn run_statement(
    node: &Node,
    session_sequences: &Mutex<SessionSequences>,
    txn: &mut Transaction,
    row_ids: &mut u32,
    stmt: &ast::Statement,
    params: &[Value],
    prepared: Option<&Prepared>,
) -> Result<StatementResult> {
    let sequences =
        &|call: &SeqCall, args: &[Value]| sequence_call(node, session_sequences, call, args);
    if !super::is_dml(stmt) {
        // DDL, EXPLAIN and the rest read as they please: with a snapshot of their own.
        txn.take_snapshot().map_err(mvcc_error)?;
    }
    if let Some(result) = ddl::run(node, sequences, txn, row_ids, stmt) {
        return result;
    }
    if let ast::Statement::Explain {
        statement, analyze, ..
    } = stmt
    {
        return explain(node, sequences, txn, row_ids, statement, *analyze, params);
    }
    let bound = {
        let view = CatalogView {
            txn,
            cache: &node.catalog,
        };
        match prepared {
            Some(p) => plan_cache::bind(&view, stmt, &p.param_types, Some(&p.slot))?,
            None => plan_cache::bind(&view, stmt, &vec![DataType::Unknown; params.len()], None)?,
        }
    };
    snapshot_for(txn, &bound)?;
    let columns = bound.root.columns();
    let mut storage = storage(node, sequences, txn, row_ids);
    let output = exec::execute(&bound, params, &mut storage)?;
    Ok(dml_result(stmt, columns, output.rows, output.affected))
}

/// The result of a query or DML statement: its rows (a query, or RETURNING) with the command
/// tag's verb, or the command tag with the count of rows it changed.
pub fn dml_result(
    stmt: &ast::Statement,
    columns: Vec<OutputColumn>,
    rows: Vec<exec::Row>,
    count: u64,
) -> StatementResult {
    let (verb, has_rows) = match stmt {
        ast::Statement::Insert(i) => ("INSERT 0", i.returning.is_some()),
        ast::Statement::Update(u) => ("UPDATE", u.returning.is_some()),
        ast::Statement::Delete(d) => ("DELETE", d.returning.is_some()),
        _ => ("SELECT", true),
    };
    if has_rows {
        StatementResult::Rows {
            columns,
            rows,
            tag: verb.to_string(),
        }
    } else {
        StatementResult::Command(format!("{verb} {count}"))
    }
}

/// Before a bound statement runs: one begun without a snapshot goes on without one only if
/// it reads one row at most (see `Transaction::one_row_statement`), else it takes one now.
pub(super) fn snapshot_for(txn: &mut Transaction, bound: &BoundQuery) -> Result<()> {
    if bound.reads_one_row_at_most() {
        txn.one_row_statement();
        Ok(())
    } else {
        txn.take_snapshot().map_err(mvcc_error)
    }
}

pub(super) type Sequences<'a> = &'a dyn Fn(&SeqCall, &[Value]) -> Result<Value>;

/// What a session remembers of its sequence calls: `currval` of each sequence it called
/// `nextval` (or `setval`) on, and `lastval`.
#[derive(Debug, Default)]
pub struct SessionSequences {
    current: HashMap<String, i64>,
    /// The sequence `nextval` was last called on (`lastval` is its `currval`).
    last: Option<String>,
}

impl SessionSequences {
    /// Forgets a dropped sequence.
    pub(super) fn forget(&mut self, name: &str) {
        self.current.remove(name);
    }
}

/// A sequence function: values from the GTM (`nextval` through the node's cache of ranges),
/// `currval` and `lastval` from what this session called before.
pub(super) fn sequence_call(
    node: &Node,
    session: &Mutex<SessionSequences>,
    call: &SeqCall,
    args: &[Value],
) -> Result<Value> {
    match call {
        SeqCall::Next(name) => {
            let v = nextval(node, name)?;
            let mut s = lock(session);
            s.current.insert(name.clone(), v);
            s.last = Some(name.clone());
            Ok(Value::Int8(v))
        }
        SeqCall::Curr(name) => {
            if let Some(v) = lock(session).current.get(name) {
                return Ok(Value::Int8(*v));
            }
            // Not called yet here: that is 55000 for a sequence that exists, else 42P01.
            let gtm = node.gtm.clone();
            let owned = name.clone();
            node.wait_gtm(async move { gtm.sequence(&owned).await })?
                .map_err(sequence_error)?;
            Err(SqlError::new(
                sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("currval of sequence \"{name}\" is not yet defined in this session"),
            ))
        }
        SeqCall::Set(name) => {
            let value = match args.first() {
                Some(Value::Int8(v)) => *v,
                _ => return Ok(Value::Null),
            };
            let is_called = match args.get(1) {
                None => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Ok(Value::Null),
            };
            let gtm = node.gtm.clone();
            let owned = name.clone();
            node.wait_gtm(async move { gtm.setval(&owned, value, is_called).await })?
                .map_err(sequence_error)?;
            node.forget_sequence(name);
            if is_called {
                lock(session).current.insert(name.clone(), value);
            }
            Ok(Value::Int8(value))
        }
        SeqCall::Last => {
            let s = lock(session);
            let last = s.last.as_ref().and_then(|name| s.current.get(name));
            last.map(|v| Value::Int8(*v)).ok_or_else(|| {
                SqlError::new(
                    sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "lastval is not yet defined in this session",
                )
            })
        }
    }
}

fn lock(session: &Mutex<SessionSequences>) -> std::sync::MutexGuard<'_, SessionSequences> {
    session.lock().unwrap_or_else(|e| e.into_inner())
}

/// A GTM error of a sequence request as the SQL error: its own SQLSTATE (42P01, 42P07,
/// 2200H, 22003, ...), or a connection failure when the GTM could not be asked.
pub(super) fn sequence_error(e: GtmError) -> SqlError {
    match e.code {
        ErrorCode::NotActive | ErrorCode::Io | ErrorCode::Malformed => gtm_error(e),
        code => SqlError::new(code.sqlstate(), e.message),
    }
}

pub(super) fn storage<'a>(
    node: &'a Node,
    sequences: Sequences<'a>,
    txn: &'a mut Transaction,
    row_ids: &'a mut u32,
) -> TxnStorage<'a> {
    let interrupt = txn.wait_options().clone();
    TxnStorage {
        txn,
        row_ids,
        sequences,
        interrupt,
        roles: &node.roles,
    }
}

fn nextval(node: &Node, name: &str) -> Result<i64> {
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
    let gtm = node.gtm.clone();
    let owned = name.to_string();
    let answer = node.wait_gtm(async move { gtm.nextval(&owned).await })?;
    let (first, count, increment) = answer.map_err(sequence_error)?;
    let mut cache = node.sequences.lock().unwrap_or_else(|e| e.into_inner());
    cache.insert(
        name.to_string(),
        (first + increment, count.saturating_sub(1), increment),
    );
    Ok(first)
}

/// `EXPLAIN [ANALYZE] statement`: the plan, one line per row of a `QUERY PLAN` column;
/// ANALYZE runs the statement too and adds its row count and time.
fn explain(
    node: &Node,
    sequences: Sequences<'_>,
    txn: &mut Transaction,
    row_ids: &mut u32,
    stmt: &ast::Statement,
    analyze: bool,
    params: &[Value],
) -> Result<StatementResult> {
    if !matches!(
        stmt,
        ast::Statement::Query(_)
            | ast::Statement::Insert(_)
            | ast::Statement::Update(_)
            | ast::Statement::Delete(_)
    ) {
        return Err(SqlError::unsupported(format!(
            "EXPLAIN of this statement is not supported: {stmt}"
        )));
    }
    let bound = {
        let view = CatalogView {
            txn,
            cache: &node.catalog,
        };
        binder::bind(&view, stmt, &vec![DataType::Unknown; params.len()])?
    };
    let mut lines = bound.root.explain();
    if analyze {
        let start = std::time::Instant::now();
        let mut storage = storage(node, sequences, txn, row_ids);
        let output = exec::execute(&bound, params, &mut storage)?;
        let rows = if bound.root.columns().is_empty() {
            output.affected
        } else {
            output.rows.len() as u64
        };
        lines.push(format!("Rows: {rows}"));
        lines.push(format!(
            "Execution Time: {:.3} ms",
            start.elapsed().as_secs_f64() * 1000.0
        ));
    }
    Ok(StatementResult::Rows {
        columns: vec![OutputColumn {
            name: "QUERY PLAN".into(),
            data_type: DataType::Text,
            table_id: None,
        }],
        rows: lines.into_iter().map(|l| vec![Value::Text(l)]).collect(),
        tag: "EXPLAIN".into(),
    })
}
