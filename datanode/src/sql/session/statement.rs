//! Running one statement inside an MVCC transaction, on a blocking thread: DDL goes to
//! [`ddl`], everything else is bound against the transaction's catalog view and executed over
//! [`TxnStorage`]. Sequence values come from the GTM through a node-wide cache of ranges.

use super::ddl;
use super::{gtm_error, Node, StatementResult};
use crate::sql::catalog::CatalogView;
use crate::sql::plan_cache::{self, Prepared};
use crate::sql::table::{mvcc_error, TxnStorage};
use crate::storage::mvcc::Transaction;
use rxc_common::sql::binder;
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::exec;
use rxc_common::sql::plan::{BoundQuery, OutputColumn};
use rxc_common::sql::{DataType, Value};
use sqlparser::ast;

/// Runs one statement inside `txn` on a blocking thread.
pub(super) fn run_statement(
    node: &Node,
    txn: &mut Transaction,
    row_ids: &mut u32,
    stmt: &ast::Statement,
    params: &[Value],
    prepared: Option<&Prepared>,
) -> Result<StatementResult> {
    let sequences = &|name: &str| nextval(node, name);
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
    let mut storage = storage(sequences, txn, row_ids);
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

pub(super) type Sequences<'a> = &'a dyn Fn(&str) -> Result<i64>;

pub(super) fn storage<'a>(
    sequences: Sequences<'a>,
    txn: &'a mut Transaction,
    row_ids: &'a mut u32,
) -> TxnStorage<'a> {
    let interrupt = txn.wait_options().clone();
    TxnStorage {
        txn,
        row_ids,
        nextval: sequences,
        interrupt,
    }
}

pub(super) fn nextval(node: &Node, name: &str) -> Result<i64> {
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
    let (first, count, increment) = answer.map_err(|e| {
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
        let mut storage = storage(sequences, txn, row_ids);
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
