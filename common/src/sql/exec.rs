//! The executor: runs a bound plan over a [`Storage`] and returns rows.
//!
//! Execution is materialising — each node produces all its rows before its parent consumes
//! them — which keeps every node a short, obviously correct function. Rows are identified to
//! the storage by an opaque [`RowId`] (the primary key, or the hidden row id).
//!
//! Writes follow PostgreSQL's READ COMMITTED re-check: when the storage reports that a row
//! changed under a statement ([`WriteOutcome::Changed`], after waiting for its writer), the
//! executor re-evaluates the statement's WHERE clause on the newest version and, if it still
//! matches, applies the statement to that version.

use super::catalog::{Index, Table};
use super::error::{sqlstate, Result, SqlError};
use super::expr::{EvalContext, Expr, SeqCall};
use super::index_scan::{self, IndexRange};
use super::plan::{
    AggCall, AggFunc, Arbiter, BoundQuery, ConflictAction, JoinKind, Plan, RowLock, SetOp, SortKey,
    Subquery,
};
use super::scan_cache::ScanCache;
use super::value::{BinaryOp, DataType, Value};
use std::collections::{HashMap, HashSet};

/// A row of values.
pub type Row = Vec<Value>;

/// How the storage identifies a row: its primary key values, or its hidden row id.
pub type RowId = Vec<Value>;

/// The outcome of a write to an existing row.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOutcome {
    /// Written.
    Done,
    /// The row no longer exists (deleted by a transaction that committed meanwhile).
    Gone,
    /// The row was changed by a transaction that committed meanwhile: this is its newest
    /// version. Nothing was written; the executor re-checks and retries.
    Changed(RowId, Row),
}

/// The outcome of [`Storage::insert_or_conflict`].
#[derive(Clone, Debug, PartialEq)]
pub enum InsertOutcome {
    /// The row is inserted, with this id.
    Inserted(RowId),
    /// The row violates an arbiter; nothing was written. With a lock asked for, this is the
    /// live row holding the key (its newest version, locked FOR UPDATE).
    Conflict(Option<(RowId, Row)>),
}

/// What the executor needs from storage, inside one transaction.
pub trait Storage {
    /// Every row of `table` the statement sees.
    fn scan(&mut self, table: &Table) -> Result<Vec<(RowId, Row)>>;
    /// The row with primary key `key` (values already of the key columns' types).
    fn lookup(&mut self, table: &Table, key: &[Value]) -> Result<Option<(RowId, Row)>>;
    /// The rows the statement sees whose values of `index`'s columns fall in `range`, in
    /// index order.
    fn index_scan(
        &mut self,
        table: &Table,
        index: &Index,
        range: &IndexRange,
    ) -> Result<Vec<(RowId, Row)>>;
    /// Inserts a row (23505 on a duplicate key or unique index values).
    fn insert(&mut self, table: &Table, row: &Row) -> Result<()>;
    /// Inserts a row unless it violates one of `arbiters` (`INSERT ... ON CONFLICT`): then
    /// returns the live row that holds the key instead, locked FOR UPDATE if `lock`. A
    /// violation of another unique rule is 23505, as for [`Storage::insert`].
    fn insert_or_conflict(
        &mut self,
        table: &Table,
        row: &Row,
        arbiters: &[Arbiter],
        lock: bool,
    ) -> Result<InsertOutcome>;
    /// Replaces row `id` (read as `old`) with `new`.
    fn update(&mut self, table: &Table, id: &RowId, old: &Row, new: &Row) -> Result<WriteOutcome>;
    /// Deletes row `id` (read as `old`).
    fn delete(&mut self, table: &Table, id: &RowId, old: &Row) -> Result<WriteOutcome>;
    /// Locks row `id` for `SELECT ... FOR UPDATE/SHARE`.
    fn lock(&mut self, table: &Table, id: &RowId, mode: RowLock) -> Result<WriteOutcome>;
    /// A sequence function's value (`args` after the sequence's name): the GTM's, with the
    /// session's `currval`/`lastval`.
    fn sequence(&mut self, call: &SeqCall, args: &[Value]) -> Result<Value>;
    /// Fails with 57014 when the statement was cancelled or timed out.
    fn check_cancel(&mut self) -> Result<()> {
        Ok(())
    }
}

/// One write to a row for [`Executor::follow`]: the storage's outcome and the row it produced.
type RowWrite<'a, E> = dyn FnMut(&mut E, &RowId, &Row) -> Result<(WriteOutcome, Row)> + 'a;

/// The result of running a statement.
#[derive(Debug, Default)]
pub struct Output {
    /// Result rows (SELECT, or RETURNING).
    pub rows: Vec<Row>,
    /// Rows inserted, updated or deleted (for the command tag).
    pub affected: u64,
}

/// Runs `query` with `params` (already of the parameter types) over `storage`.
pub fn execute(query: &BoundQuery, params: &[Value], storage: &mut dyn Storage) -> Result<Output> {
    let mut storage = ScanCache::new(storage);
    let mut exec = Executor {
        storage: &mut storage,
        params,
        subqueries: &query.subqueries,
        outer: Vec::new(),
        cache: HashMap::new(),
        affected: 0,
        touched: HashSet::new(),
    };
    let rows = exec.run(&query.root)?;
    Ok(Output {
        rows,
        affected: exec.affected,
    })
}

struct Executor<'s> {
    storage: &'s mut dyn Storage,
    params: &'s [Value],
    subqueries: &'s [Subquery],
    /// Rows of the enclosing queries, innermost last.
    outer: Vec<Row>,
    cache: HashMap<usize, Vec<Row>>,
    affected: u64,
    /// Rows this statement inserted or updated through `INSERT ... ON CONFLICT`.
    touched: HashSet<RowId>,
}

impl EvalContext for Executor<'_> {
    fn param(&self, index: usize) -> Result<Value> {
        self.params.get(index).cloned().ok_or_else(|| {
            SqlError::new(
                sqlstate::UNDEFINED_PARAMETER,
                format!("there is no parameter ${}", index + 1),
            )
        })
    }

    fn outer(&self, depth: usize, index: usize) -> Result<Value> {
        let n = self.outer.len();
        self.outer
            .get(n.wrapping_sub(depth + 1))
            .and_then(|r| r.get(index))
            .cloned()
            .ok_or_else(|| SqlError::internal("outer reference out of range"))
    }

    fn subquery(&mut self, index: usize, row: &[Value]) -> Result<Vec<Row>> {
        let subqueries = self.subqueries;
        let sub = subqueries
            .get(index)
            .ok_or_else(|| SqlError::internal("no such subquery"))?;
        if !sub.correlated {
            if let Some(rows) = self.cache.get(&index) {
                return Ok(rows.clone());
            }
        }
        self.outer.push(row.to_vec());
        let result = self.run(&sub.plan);
        self.outer.pop();
        let rows = result?;
        if !sub.correlated {
            self.cache.insert(index, rows.clone());
        }
        Ok(rows)
    }

    fn sequence(&mut self, call: &SeqCall, args: &[Value]) -> Result<Value> {
        self.storage.sequence(call, args)
    }
}

fn eval_all(exprs: &[Expr], row: &[Value], ctx: &mut dyn EvalContext) -> Result<Row> {
    exprs.iter().map(|e| e.eval(row, ctx)).collect()
}

fn passes(filter: &Option<Expr>, row: &[Value], ctx: &mut dyn EvalContext) -> Result<bool> {
    match filter {
        None => Ok(true),
        Some(f) => Ok(f.eval(row, ctx)?.truth("WHERE")? == Some(true)),
    }
}

fn nulls(n: usize) -> Row {
    vec![Value::Null; n]
}

fn concat(l: &[Value], r: &[Value]) -> Row {
    let mut out = Vec::with_capacity(l.len() + r.len());
    out.extend_from_slice(l);
    out.extend_from_slice(r);
    out
}

impl Executor<'_> {
    fn run(&mut self, plan: &Plan) -> Result<Vec<Row>> {
        self.storage.check_cancel()?;
        match plan {
            Plan::Values { rows, .. } => {
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(eval_all(r, &[], self)?);
                }
                Ok(out)
            }
            Plan::Scan { .. } | Plan::KeyLookup { .. } | Plan::IndexScan { .. } => Ok(self
                .source_rows(plan)?
                .into_iter()
                .map(|(_, r)| r)
                .collect()),
            Plan::Filter { input, predicate } => {
                let rows = self.run(input)?;
                let mut out = Vec::new();
                let predicate = Some(predicate.clone());
                for r in rows {
                    if passes(&predicate, &r, self)? {
                        out.push(r);
                    }
                }
                Ok(out)
            }
            Plan::Project { input, exprs, .. } => {
                let rows = self.run(input)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(eval_all(exprs, &r, self)?);
                }
                Ok(out)
            }
            Plan::Sort { input, keys } => {
                let rows = self.run(input)?;
                self.sort(rows, keys)
            }
            Plan::Limit {
                input,
                limit,
                offset,
            } => {
                let rows = self.run(input)?;
                let offset = self.count_expr(offset, "OFFSET")?.unwrap_or(0);
                let limit = self.count_expr(limit, "LIMIT")?;
                let it = rows.into_iter().skip(offset);
                Ok(match limit {
                    Some(l) => it.take(l).collect(),
                    None => it.collect(),
                })
            }
            Plan::NestedLoopJoin {
                left,
                right,
                kind,
                on,
            } => {
                let lrows = self.run(left)?;
                let rrows = self.run(right)?;
                let (lw, rw) = (left.columns().len(), right.columns().len());
                let mut out = Vec::new();
                let mut right_matched = vec![false; rrows.len()];
                for l in &lrows {
                    let mut matched = false;
                    for (j, r) in rrows.iter().enumerate() {
                        let row = concat(l, r);
                        if passes(on, &row, self)? {
                            matched = true;
                            right_matched[j] = true;
                            out.push(row);
                        }
                    }
                    if !matched && matches!(kind, JoinKind::Left | JoinKind::Full) {
                        out.push(concat(l, &nulls(rw)));
                    }
                }
                if matches!(kind, JoinKind::Right | JoinKind::Full) {
                    for (j, r) in rrows.iter().enumerate() {
                        if !right_matched[j] {
                            out.push(concat(&nulls(lw), r));
                        }
                    }
                }
                Ok(out)
            }
            Plan::HashJoin {
                left,
                right,
                kind,
                left_keys,
                right_keys,
                residual,
            } => {
                let rrows = self.run(right)?;
                let rw = right.columns().len();
                let mut table: HashMap<Row, Vec<usize>> = HashMap::new();
                for (j, r) in rrows.iter().enumerate() {
                    let key = eval_all(right_keys, r, self)?;
                    if key.iter().any(Value::is_null) {
                        continue;
                    }
                    table.entry(key).or_default().push(j);
                }
                let lrows = self.run(left)?;
                let mut out = Vec::new();
                for l in &lrows {
                    let key = eval_all(left_keys, l, self)?;
                    let mut matched = false;
                    if !key.iter().any(Value::is_null) {
                        if let Some(js) = table.get(&key) {
                            for &j in js {
                                let row = concat(l, &rrows[j]);
                                if passes(residual, &row, self)? {
                                    matched = true;
                                    out.push(row);
                                }
                            }
                        }
                    }
                    if !matched && *kind == JoinKind::Left {
                        out.push(concat(l, &nulls(rw)));
                    }
                }
                Ok(out)
            }
            Plan::Aggregate {
                input,
                group_by,
                aggregates,
                ..
            } => {
                let rows = self.run(input)?;
                self.aggregate(rows, group_by, aggregates)
            }
            Plan::Distinct { input } => {
                let rows = self.run(input)?;
                let mut seen = HashSet::new();
                Ok(rows
                    .into_iter()
                    .filter(|r| seen.insert(r.clone()))
                    .collect())
            }
            Plan::SetOperation {
                left,
                right,
                op,
                all,
                ..
            } => {
                let l = self.run(left)?;
                let r = self.run(right)?;
                Ok(set_operation(l, r, *op, *all))
            }
            Plan::Insert { .. } => self.insert(plan),
            Plan::Update {
                table,
                source,
                assignments,
                checks,
                returning,
            } => {
                let filter = source_filter(source);
                let mut out = Vec::new();
                let mut update =
                    |ex: &mut Self, id: &RowId, row: &Row| -> Result<(WriteOutcome, Row)> {
                        let mut new = row.clone();
                        for (i, e) in assignments {
                            new[*i] = e.eval(row, ex)?;
                        }
                        ex.check_row(table, &new, checks)?;
                        Ok((ex.storage.update(table, id, row, &new)?, new))
                    };
                for (id, row) in self.source_rows_unlocked(source)? {
                    if let Some((_, new)) = self.follow(&filter, id, row, &mut update)? {
                        self.affected += 1;
                        if let Some((exprs, _)) = returning {
                            out.push(eval_all(exprs, &new, self)?);
                        }
                    }
                }
                Ok(out)
            }
            Plan::Delete {
                table,
                source,
                returning,
            } => {
                let filter = source_filter(source);
                let mut out = Vec::new();
                let mut delete =
                    |ex: &mut Self, id: &RowId, row: &Row| -> Result<(WriteOutcome, Row)> {
                        Ok((ex.storage.delete(table, id, row)?, row.clone()))
                    };
                for (id, row) in self.source_rows_unlocked(source)? {
                    if let Some((_, old)) = self.follow(&filter, id, row, &mut delete)? {
                        self.affected += 1;
                        if let Some((exprs, _)) = returning {
                            out.push(eval_all(exprs, &old, self)?);
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    /// Applies `write` to a row, following it as PostgreSQL's READ COMMITTED does: when the
    /// storage reports the row changed meanwhile, re-checks `filter` on the newest version and
    /// applies `write` there. Returns the id and the row `write` produced, or None when the
    /// row is gone or no longer matches.
    fn follow(
        &mut self,
        filter: &Option<Expr>,
        mut id: RowId,
        mut row: Row,
        write: &mut RowWrite<'_, Self>,
    ) -> Result<Option<(RowId, Row)>> {
        loop {
            let (outcome, produced) = write(self, &id, &row)?;
            match outcome {
                WriteOutcome::Done => return Ok(Some((id, produced))),
                WriteOutcome::Gone => return Ok(None),
                WriteOutcome::Changed(newest_id, newest) => {
                    if !passes(filter, &newest, self)? {
                        return Ok(None);
                    }
                    id = newest_id;
                    row = newest;
                }
            }
        }
    }

    fn count_expr(&mut self, e: &Option<Expr>, what: &str) -> Result<Option<usize>> {
        let Some(e) = e else {
            return Ok(None);
        };
        match e.eval(&[], self)? {
            Value::Null => Ok(None),
            v => {
                let n = v.cast(&DataType::Int8)?.as_i64().unwrap_or(0);
                if n < 0 {
                    let code = if what == "OFFSET" {
                        sqlstate::INVALID_ROW_COUNT_IN_RESULT_OFFSET_CLAUSE
                    } else {
                        sqlstate::INVALID_ROW_COUNT_IN_LIMIT_CLAUSE
                    };
                    return Err(SqlError::new(code, format!("{what} must not be negative")));
                }
                Ok(Some(n as usize))
            }
        }
    }

    /// The rows of a Scan, KeyLookup or IndexScan with their ids, filtered, and locked when
    /// the plan asks (re-checking the filter on rows changed meanwhile).
    fn source_rows(&mut self, plan: &Plan) -> Result<Vec<(RowId, Row)>> {
        let rows = self.source_rows_unlocked(plan)?;
        let (table, lock) = match plan {
            Plan::Scan { table, lock, .. }
            | Plan::KeyLookup { table, lock, .. }
            | Plan::IndexScan { table, lock, .. } => (table, lock),
            _ => return Err(SqlError::internal("not a row source")),
        };
        let Some(mode) = lock else {
            return Ok(rows);
        };
        let filter = source_filter(plan);
        let mut out = Vec::new();
        let mut lock = |ex: &mut Self, id: &RowId, row: &Row| -> Result<(WriteOutcome, Row)> {
            Ok((ex.storage.lock(table, id, *mode)?, row.clone()))
        };
        for (id, row) in rows {
            if let Some(locked) = self.follow(&filter, id, row, &mut lock)? {
                out.push(locked);
            }
        }
        Ok(out)
    }

    /// The rows that pass `filter`, checking for cancellation as it goes.
    fn filtered(
        &mut self,
        rows: Vec<(RowId, Row)>,
        filter: &Option<Expr>,
    ) -> Result<Vec<(RowId, Row)>> {
        let mut out = Vec::new();
        for (i, (id, row)) in rows.into_iter().enumerate() {
            if i % 1024 == 1023 {
                self.storage.check_cancel()?;
            }
            if passes(filter, &row, self)? {
                out.push((id, row));
            }
        }
        Ok(out)
    }

    fn source_rows_unlocked(&mut self, plan: &Plan) -> Result<Vec<(RowId, Row)>> {
        match plan {
            Plan::Scan { table, filter, .. } => {
                let rows = self.storage.scan(table)?;
                self.filtered(rows, filter)
            }
            Plan::KeyLookup {
                table,
                keys,
                filter,
                ..
            } => {
                let mut out = Vec::new();
                let mut seen = HashSet::new();
                'keys: for key in keys {
                    let mut values = Vec::with_capacity(key.len());
                    for (e, &col) in key.iter().zip(&table.primary_key) {
                        let v = e.eval(&[], self)?;
                        if v.is_null() {
                            continue 'keys;
                        }
                        let ty = &table.columns[col].data_type;
                        match index_scan::key_value(&v, ty)? {
                            Some((converted, true)) => values.push(converted),
                            _ => continue 'keys,
                        }
                    }
                    if !seen.insert(values.clone()) {
                        continue;
                    }
                    if let Some((id, row)) = self.storage.lookup(table, &values)? {
                        if passes(filter, &row, self)? {
                            out.push((id, row));
                        }
                    }
                }
                Ok(out)
            }
            Plan::IndexScan {
                table,
                index,
                bounds,
                filter,
                ..
            } => {
                let index = table
                    .indexes
                    .iter()
                    .find(|i| i.id == *index)
                    .ok_or_else(|| SqlError::internal("index scan of an unknown index"))?;
                let mut eval = |e: &Expr| e.eval(&[], &mut *self);
                let Some(range) = index_scan::range(table, index, bounds, &mut eval)? else {
                    return Ok(Vec::new());
                };
                let rows = self.storage.index_scan(table, index, &range)?;
                self.filtered(rows, filter)
            }
            _ => Err(SqlError::internal("not a row source")),
        }
    }

    fn sort(&mut self, rows: Vec<Row>, keys: &[SortKey]) -> Result<Vec<Row>> {
        let mut keyed = Vec::with_capacity(rows.len());
        for r in rows {
            let k: Vec<Value> = keys
                .iter()
                .map(|k| k.expr.eval(&r, self))
                .collect::<Result<_>>()?;
            keyed.push((k, r));
        }
        keyed.sort_by(|(a, _), (b, _)| compare_keys(keys, a, b));
        Ok(keyed.into_iter().map(|(_, r)| r).collect())
    }

    fn aggregate(
        &mut self,
        rows: Vec<Row>,
        group_by: &[Expr],
        aggregates: &[AggCall],
    ) -> Result<Vec<Row>> {
        let mut index: HashMap<Row, usize> = HashMap::new();
        let mut groups: Vec<(Row, Vec<Accumulator>)> = Vec::new();
        if group_by.is_empty() {
            groups.push((vec![], aggregates.iter().map(Accumulator::new).collect()));
            index.insert(vec![], 0);
        }
        for r in rows {
            let key = eval_all(group_by, &r, self)?;
            let g = match index.get(&key) {
                Some(&g) => g,
                None => {
                    groups.push((
                        key.clone(),
                        aggregates.iter().map(Accumulator::new).collect(),
                    ));
                    index.insert(key, groups.len() - 1);
                    groups.len() - 1
                }
            };
            for (a, call) in aggregates.iter().enumerate() {
                if !passes(&call.filter, &r, self)? {
                    continue;
                }
                let args = eval_all(&call.args, &r, self)?;
                if call.order_by.is_empty() {
                    groups[g].1[a].add(call, args)?;
                } else {
                    let keys = call
                        .order_by
                        .iter()
                        .map(|k| k.expr.eval(&r, self))
                        .collect::<Result<Row>>()?;
                    groups[g].1[a].ordered.push((keys, args));
                }
            }
        }
        let mut out = Vec::with_capacity(groups.len());
        for (key, accs) in groups {
            let mut row = key;
            for (acc, call) in accs.into_iter().zip(aggregates) {
                row.push(acc.finish(call)?);
            }
            out.push(row);
        }
        Ok(out)
    }

    fn check_row(&mut self, table: &Table, row: &Row, checks: &[(String, Expr)]) -> Result<()> {
        for (i, c) in table.columns.iter().enumerate() {
            if !c.nullable && row[i].is_null() {
                return Err(SqlError::new(
                    sqlstate::NOT_NULL_VIOLATION,
                    format!(
                        "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                        c.name, table.name
                    ),
                )
                .with_detail(failing_row(row)));
            }
        }
        for (name, check) in checks {
            if check.eval(row, self)?.truth("CHECK")? == Some(false) {
                return Err(SqlError::new(
                    sqlstate::CHECK_VIOLATION,
                    format!(
                        "new row for relation \"{}\" violates check constraint \"{name}\"",
                        table.name
                    ),
                )
                .with_detail(failing_row(row)));
            }
        }
        Ok(())
    }

    fn insert(&mut self, plan: &Plan) -> Result<Vec<Row>> {
        let Plan::Insert {
            table,
            source,
            targets,
            defaults,
            checks,
            on_conflict,
            returning,
        } = plan
        else {
            return Err(SqlError::internal("not an insert"));
        };
        let source_rows = self.run(source)?;
        let mut out = Vec::new();
        for src in source_rows {
            let mut row = nulls(table.columns.len());
            for (i, d) in defaults.iter().enumerate() {
                if let Some(d) = d {
                    row[i] = d.eval(&[], self)?;
                }
            }
            for (v, &t) in src.into_iter().zip(targets) {
                row[t] = v;
            }
            self.check_row(table, &row, checks)?;
            let Some(on_conflict) = on_conflict else {
                self.storage.insert(table, &row)?;
                self.affected += 1;
                if let Some((exprs, _)) = returning {
                    out.push(eval_all(exprs, &row, self)?);
                }
                continue;
            };
            if let Some(written) = self.insert_on_conflict(table, row, on_conflict, checks)? {
                self.affected += 1;
                if let Some((exprs, _)) = returning {
                    out.push(eval_all(exprs, &written, self)?);
                }
            }
        }
        Ok(out)
    }

    /// One row of `INSERT ... ON CONFLICT`, PostgreSQL's way: insert it, or act on the live
    /// row holding the arbiter's key. Returns the row inserted or updated (None: skipped).
    /// Under READ COMMITTED a conflicting row changed or deleted meanwhile starts it over;
    /// `touched` keeps the rows this statement wrote, which DO UPDATE may not update twice.
    fn insert_on_conflict(
        &mut self,
        table: &Table,
        row: Row,
        on_conflict: &super::plan::OnConflict,
        checks: &[(String, Expr)],
    ) -> Result<Option<Row>> {
        let do_update = matches!(on_conflict.action, ConflictAction::DoUpdate { .. });
        loop {
            let outcome =
                self.storage
                    .insert_or_conflict(table, &row, &on_conflict.arbiters, do_update)?;
            let existing = match outcome {
                InsertOutcome::Inserted(id) => {
                    self.touched.insert(id);
                    return Ok(Some(row));
                }
                InsertOutcome::Conflict(locked) => locked,
            };
            let ConflictAction::DoUpdate {
                assignments,
                filter,
            } = &on_conflict.action
            else {
                return Ok(None);
            };
            let (id, existing) = outcome_row(existing)?;
            if self.touched.contains(&id) {
                return Err(SqlError::new(
                    sqlstate::CARDINALITY_VIOLATION,
                    "ON CONFLICT DO UPDATE command cannot affect row a second time",
                )
                .with_hint(
                    "Ensure that no rows proposed for insertion within the same command have \
                     duplicate constrained values.",
                ));
            }
            let both = concat(&existing, &row);
            if !passes(filter, &both, self)? {
                return Ok(None);
            }
            let mut new = existing.clone();
            for (i, e) in assignments {
                new[*i] = e.eval(&both, self)?;
            }
            self.check_row(table, &new, checks)?;
            match self.storage.update(table, &id, &existing, &new)? {
                WriteOutcome::Done => {
                    let new_id = if table.has_row_id() {
                        id
                    } else {
                        table.primary_key.iter().map(|&i| new[i].clone()).collect()
                    };
                    self.touched.insert(new_id);
                    return Ok(Some(new));
                }
                // Changed or deleted since the conflict was found: start over.
                WriteOutcome::Gone | WriteOutcome::Changed(..) => continue,
            }
        }
    }
}

/// The locked row a DO UPDATE conflict must come with.
fn outcome_row(locked: Option<(RowId, Row)>) -> Result<(RowId, Row)> {
    locked.ok_or_else(|| SqlError::internal("ON CONFLICT DO UPDATE without the conflicting row"))
}

fn source_filter(plan: &Plan) -> Option<Expr> {
    match plan {
        Plan::Scan { filter, .. }
        | Plan::KeyLookup { filter, .. }
        | Plan::IndexScan { filter, .. } => filter.clone(),
        _ => None,
    }
}

/// PostgreSQL's `Failing row contains (...)` detail.
pub fn failing_row(row: &[Value]) -> String {
    let values: Vec<String> = row
        .iter()
        .map(|v| v.to_text().unwrap_or_else(|| "null".into()))
        .collect();
    format!("Failing row contains ({}).", values.join(", "))
}

fn set_operation(l: Vec<Row>, r: Vec<Row>, op: SetOp, all: bool) -> Vec<Row> {
    match (op, all) {
        (SetOp::Union, true) => {
            let mut out = l;
            out.extend(r);
            out
        }
        (SetOp::Union, false) => {
            let mut seen = HashSet::new();
            l.into_iter()
                .chain(r)
                .filter(|row| seen.insert(row.clone()))
                .collect()
        }
        (SetOp::Intersect, _) | (SetOp::Except, _) => {
            let mut counts: HashMap<Row, usize> = HashMap::new();
            for row in r {
                *counts.entry(row).or_default() += 1;
            }
            let mut out = Vec::new();
            let mut emitted = HashSet::new();
            for row in l {
                let c = counts.get(&row).copied().unwrap_or(0);
                let keep = match op {
                    SetOp::Intersect => c > 0,
                    _ => c == 0,
                };
                if all {
                    match op {
                        SetOp::Intersect if c > 0 => {
                            counts.insert(row.clone(), c - 1);
                            out.push(row);
                        }
                        SetOp::Except if c > 0 => {
                            counts.insert(row.clone(), c - 1);
                        }
                        SetOp::Except => out.push(row),
                        _ => {}
                    }
                } else if keep && emitted.insert(row.clone()) {
                    out.push(row);
                }
            }
            out
        }
    }
}

/// The order of two rows of sort-key values under `keys` (direction, NULLS FIRST/LAST).
fn compare_keys(keys: &[SortKey], a: &[Value], b: &[Value]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for (i, key) in keys.iter().enumerate() {
        let (x, y) = (&a[i], &b[i]);
        let ord = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) if key.nulls_first => Ordering::Less,
            (true, false) => Ordering::Greater,
            (false, true) if key.nulls_first => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) if key.desc => x.sort_cmp(y).reverse(),
            (false, false) => x.sort_cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// The running state of one aggregate call for one group.
struct Accumulator {
    value: Option<Value>,
    count: i64,
    distinct: Option<HashSet<Row>>,
    /// For `agg(x ORDER BY k)`: (sort keys, arguments) of every input, aggregated in key
    /// order when the group is finished.
    ordered: Vec<(Row, Row)>,
}

impl Accumulator {
    fn new(call: &AggCall) -> Self {
        Accumulator {
            value: None,
            count: 0,
            distinct: call.distinct.then(HashSet::new),
            ordered: Vec::new(),
        }
    }

    fn add(&mut self, call: &AggCall, args: Row) -> Result<()> {
        if call.func != AggFunc::CountStar && args.first().is_none_or(Value::is_null) {
            return Ok(()); // aggregates skip NULL inputs
        }
        if let Some(seen) = &mut self.distinct {
            if !seen.insert(args.clone()) {
                return Ok(());
            }
        }
        self.count += 1;
        let separator = args.get(1).and_then(Value::to_text).unwrap_or_default();
        let v = args.into_iter().next().unwrap_or(Value::Null);
        self.value = Some(match (call.func, self.value.take()) {
            (AggFunc::CountStar | AggFunc::Count, _) => Value::Null,
            (AggFunc::Sum | AggFunc::Avg, None) => v.cast(&accumulator_type(call))?,
            (AggFunc::Sum | AggFunc::Avg, Some(acc)) => {
                Value::binary_op(BinaryOp::Add, &acc, &v.cast(&accumulator_type(call))?)?
            }
            (AggFunc::Min, Some(acc)) => {
                if v.sort_cmp(&acc) == std::cmp::Ordering::Less {
                    v
                } else {
                    acc
                }
            }
            (AggFunc::Max, Some(acc)) => {
                if v.sort_cmp(&acc) == std::cmp::Ordering::Greater {
                    v
                } else {
                    acc
                }
            }
            (AggFunc::Min | AggFunc::Max, None) => v,
            (AggFunc::BoolAnd, acc) => {
                let b = v.truth("bool_and")?.unwrap_or(true);
                Value::Bool(acc.and_then(|a| a.as_bool()).unwrap_or(true) && b)
            }
            (AggFunc::BoolOr, acc) => {
                let b = v.truth("bool_or")?.unwrap_or(false);
                Value::Bool(acc.and_then(|a| a.as_bool()).unwrap_or(false) || b)
            }
            (AggFunc::StringAgg, None) => v,
            (AggFunc::StringAgg, Some(acc)) => Value::Text(format!(
                "{}{}{}",
                acc.to_text().unwrap_or_default(),
                separator,
                v.to_text().unwrap_or_default()
            )),
        });
        Ok(())
    }

    fn finish(mut self, call: &AggCall) -> Result<Value> {
        let mut ordered = std::mem::take(&mut self.ordered);
        ordered.sort_by(|(a, _), (b, _)| compare_keys(&call.order_by, a, b));
        for (_, args) in ordered {
            self.add(call, args)?;
        }
        Ok(match call.func {
            AggFunc::CountStar | AggFunc::Count => Value::Int8(self.count),
            AggFunc::Avg => match self.value {
                None => Value::Null,
                Some(sum) => {
                    let count = Value::Int8(self.count).cast(&accumulator_type(call))?;
                    Value::binary_op(BinaryOp::Div, &sum, &count)?
                }
            },
            _ => self.value.unwrap_or(Value::Null),
        })
    }
}

fn accumulator_type(call: &AggCall) -> DataType {
    match call.func {
        AggFunc::Avg => match call.data_type {
            DataType::Float8 => DataType::Float8,
            _ => DataType::Numeric(None),
        },
        _ => call.data_type.clone(),
    }
}
