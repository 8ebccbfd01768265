//! Queries whose answer combines the rows of several datanodes (aggregates, grouping,
//! ordering, DISTINCT, LIMIT, set operations, joins of distributed tables): the coordinator
//! fetches the rows of every table the query reads from the nodes that hold them, in the
//! statement's transaction context, and runs the query itself with rxc's executor over them.
//!
//! The query is bound against the tables' descriptors without keys or indexes, so its plan
//! reads them by scans only; nothing is pushed down to the datanodes yet (each table comes
//! whole), which is correct for any query and slow for big tables — pushing filters,
//! projections and partial aggregates down is the next step.

use rxc_common::sql::binder;
use rxc_common::sql::catalog::Index;
use rxc_common::sql::catalog::{Catalog, Table};
use rxc_common::sql::error::{Result, SqlError};
use rxc_common::sql::exec::{self, InsertOutcome, Output, Row, RowId, Storage, WriteOutcome};
use rxc_common::sql::expr::SeqCall;
use rxc_common::sql::index_scan::IndexRange;
use rxc_common::sql::plan::{Arbiter, BoundQuery, RowLock};
use rxc_common::sql::{DataType, Value};
use sqlparser::ast;
use std::collections::HashMap;
use std::sync::Arc;

/// Table descriptors as the gathering plan sees them: without keys and indexes.
pub struct ScanOnly<'a> {
    pub tables: &'a dyn Fn(&str) -> Result<Option<Arc<Table>>>,
}

impl Catalog for ScanOnly<'_> {
    fn table(&self, name: &str) -> Result<Option<Arc<Table>>> {
        Ok((self.tables)(name)?.map(|t| {
            let mut t = (*t).clone();
            t.primary_key.clear();
            t.primary_key_name = None;
            t.indexes.clear();
            Arc::new(t)
        }))
    }
}

/// Binds a read-only query for gathering.
pub fn bind(
    tables: &dyn Fn(&str) -> Result<Option<Arc<Table>>>,
    query: &ast::Statement,
    param_types: &[DataType],
) -> Result<BoundQuery> {
    binder::bind(&ScanOnly { tables }, query, param_types)
}

/// Rows fetched from the datanodes, by table id.
#[derive(Default)]
pub struct Fetched {
    pub rows: HashMap<u64, Vec<Row>>,
}

fn read_only() -> SqlError {
    SqlError::internal("a gathered query does not write")
}

impl Storage for Fetched {
    fn scan(&mut self, table: &Table) -> Result<Vec<(RowId, Row)>> {
        let rows = self.rows.get(&table.id).cloned().unwrap_or_default();
        Ok(rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| (vec![Value::Int8(i as i64)], r))
            .collect())
    }

    fn lookup(&mut self, _table: &Table, _key: &[Value]) -> Result<Option<(RowId, Row)>> {
        Err(SqlError::internal("a gathered query reads by scans only"))
    }

    fn index_scan(
        &mut self,
        _table: &Table,
        _index: &Index,
        _range: &IndexRange,
    ) -> Result<Vec<(RowId, Row)>> {
        Err(SqlError::internal("a gathered query reads by scans only"))
    }

    fn insert(&mut self, _table: &Table, _row: &Row) -> Result<()> {
        Err(read_only())
    }

    fn insert_or_conflict(
        &mut self,
        _table: &Table,
        _row: &Row,
        _arbiters: &[Arbiter],
        _lock: bool,
    ) -> Result<InsertOutcome> {
        Err(read_only())
    }

    fn update(
        &mut self,
        _table: &Table,
        _id: &RowId,
        _old: &Row,
        _new: &Row,
    ) -> Result<WriteOutcome> {
        Err(read_only())
    }

    fn delete(&mut self, _table: &Table, _id: &RowId, _old: &Row) -> Result<WriteOutcome> {
        Err(read_only())
    }

    fn lock(&mut self, _table: &Table, _id: &RowId, _mode: RowLock) -> Result<WriteOutcome> {
        Err(read_only())
    }

    fn sequence(&mut self, call: &SeqCall, _: &[Value]) -> Result<Value> {
        Err(SqlError::unsupported(format!(
            "{}() in a query combining rows of several datanodes is not supported yet",
            call.function()
        )))
    }
}

/// Runs a bound query over fetched rows.
pub fn run(bound: &BoundQuery, params: &[Value], rows: &mut Fetched) -> Result<Output> {
    exec::execute(bound, params, rows)
}
