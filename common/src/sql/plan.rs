//! Plan nodes: what the binder produces and the executor runs. Each node's output is a row of
//! values described by [`Plan::columns`]. The coordinator reuses these nodes with its own
//! remote-scan leaf.

use super::catalog::Table;
use super::expr::Expr;
use super::value::DataType;
use std::fmt::Write as _;
use std::ops::Bound;
use std::sync::Arc;

/// An output column of a plan: its name as a client sees it, and its type.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputColumn {
    /// The column name (`?column?` when PostgreSQL would print that).
    pub name: String,
    /// The type.
    pub data_type: DataType,
    /// The table the column comes from, when it is a plain column reference (for the wire
    /// protocol's RowDescription).
    pub table_id: Option<u64>,
}

/// Join kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

/// Set operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOp {
    Union,
    Intersect,
    Except,
}

/// Aggregate functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    BoolAnd,
    BoolOr,
    StringAgg,
}

/// One aggregate call of an Aggregate node.
#[derive(Clone, Debug, PartialEq)]
pub struct AggCall {
    pub func: AggFunc,
    /// Arguments over the input row (none for `count(*)`; two for `string_agg`).
    pub args: Vec<Expr>,
    pub distinct: bool,
    /// FILTER (WHERE ...).
    pub filter: Option<Expr>,
    /// `agg(x ORDER BY ...)`: the order the inputs are aggregated in (keys over the input row).
    pub order_by: Vec<SortKey>,
    /// The result type.
    pub data_type: DataType,
}

/// A sort key.
#[derive(Clone, Debug, PartialEq)]
pub struct SortKey {
    pub expr: Expr,
    pub desc: bool,
    pub nulls_first: bool,
}

/// Row locking of `SELECT ... FOR UPDATE / FOR SHARE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowLock {
    Update,
    Share,
}

/// A uniqueness rule an `INSERT ... ON CONFLICT` arbitrates on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arbiter {
    /// The primary key.
    PrimaryKey,
    /// The unique index with this id.
    Index(u64),
}

/// `INSERT ... ON CONFLICT`: which unique violations it handles, and how. A violation of
/// another unique rule is an error.
#[derive(Clone, Debug, PartialEq)]
pub struct OnConflict {
    /// The rules it arbitrates on (PostgreSQL's arbiter indexes).
    pub arbiters: Vec<Arbiter>,
    /// What it does with a row that violates one.
    pub action: ConflictAction,
}

/// What an INSERT does with a row that violates an arbiter.
#[derive(Clone, Debug, PartialEq)]
pub enum ConflictAction {
    /// Skip the row.
    DoNothing,
    /// Update the existing row: assignments over (existing row ++ excluded row), then an
    /// optional WHERE over the same.
    DoUpdate {
        assignments: Vec<(usize, Expr)>,
        filter: Option<Expr>,
    },
}

/// The stretch of a secondary index an index scan reads: the leading index columns equal to
/// `prefix`, the next one within `lower` and `upper` (all row-independent expressions).
#[derive(Clone, Debug, PartialEq)]
pub struct IndexBounds {
    /// Values of the leading index columns.
    pub prefix: Vec<Expr>,
    /// Lower bound of the next index column (SQL order).
    pub lower: Bound<Expr>,
    /// Upper bound of the next index column (SQL order).
    pub upper: Bound<Expr>,
}

/// A plan node.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Literal rows (`VALUES`, and the single empty row of a `SELECT` without FROM).
    Values {
        rows: Vec<Vec<Expr>>,
        columns: Vec<OutputColumn>,
    },
    /// Every visible row of a table, optionally filtered.
    Scan {
        table: Arc<Table>,
        filter: Option<Expr>,
        lock: Option<RowLock>,
    },
    /// Rows by primary key equality: each entry of `keys` is one key (the values of the
    /// primary key columns, row-independent expressions).
    KeyLookup {
        table: Arc<Table>,
        keys: Vec<Vec<Expr>>,
        filter: Option<Expr>,
        lock: Option<RowLock>,
    },
    /// Rows found through the secondary index with id `index` within `bounds`; `filter` (the
    /// whole WHERE clause, bounds included) is re-checked on each.
    IndexScan {
        table: Arc<Table>,
        index: u64,
        bounds: IndexBounds,
        filter: Option<Expr>,
        lock: Option<RowLock>,
    },
    /// Rows passing the predicate.
    Filter { input: Box<Plan>, predicate: Expr },
    /// Computes new columns.
    Project {
        input: Box<Plan>,
        exprs: Vec<Expr>,
        columns: Vec<OutputColumn>,
    },
    /// Sorts.
    Sort {
        input: Box<Plan>,
        keys: Vec<SortKey>,
    },
    /// OFFSET then LIMIT.
    Limit {
        input: Box<Plan>,
        limit: Option<Expr>,
        offset: Option<Expr>,
    },
    /// A join evaluating `on` for each pair of rows.
    NestedLoopJoin {
        left: Box<Plan>,
        right: Box<Plan>,
        kind: JoinKind,
        on: Option<Expr>,
    },
    /// An equi-join: builds a hash table of the right side on `right_keys`.
    HashJoin {
        left: Box<Plan>,
        right: Box<Plan>,
        kind: JoinKind,
        left_keys: Vec<Expr>,
        right_keys: Vec<Expr>,
        residual: Option<Expr>,
    },
    /// Groups by `group_by` and computes `aggregates`; output is the group values then the
    /// aggregate results. Without GROUP BY, one row even for empty input.
    Aggregate {
        input: Box<Plan>,
        group_by: Vec<Expr>,
        aggregates: Vec<AggCall>,
        columns: Vec<OutputColumn>,
    },
    /// Removes duplicate rows (keeps the first of each).
    Distinct { input: Box<Plan> },
    /// UNION / INTERSECT / EXCEPT [ALL].
    SetOperation {
        left: Box<Plan>,
        right: Box<Plan>,
        op: SetOp,
        all: bool,
        columns: Vec<OutputColumn>,
    },
    /// Inserts the source's rows. `targets[i]` is the table column the source's column `i`
    /// fills; other columns get `defaults`.
    Insert {
        table: Arc<Table>,
        source: Box<Plan>,
        targets: Vec<usize>,
        defaults: Vec<Option<Expr>>,
        checks: Vec<(String, Expr)>,
        on_conflict: Option<OnConflict>,
        returning: Option<(Vec<Expr>, Vec<OutputColumn>)>,
    },
    /// Updates the rows the source (a Scan, KeyLookup or IndexScan of the table) yields.
    Update {
        table: Arc<Table>,
        source: Box<Plan>,
        assignments: Vec<(usize, Expr)>,
        checks: Vec<(String, Expr)>,
        returning: Option<(Vec<Expr>, Vec<OutputColumn>)>,
    },
    /// Deletes the rows the source (a Scan, KeyLookup or IndexScan of the table) yields.
    Delete {
        table: Arc<Table>,
        source: Box<Plan>,
        returning: Option<(Vec<Expr>, Vec<OutputColumn>)>,
    },
}

/// A bound statement: its root plan and the subqueries its expressions refer to by index.
#[derive(Clone, Debug, PartialEq)]
pub struct BoundQuery {
    pub root: Plan,
    pub subqueries: Vec<Subquery>,
    /// Parameter types inferred from context (`Unknown` where nothing said).
    pub params: Vec<DataType>,
}

impl BoundQuery {
    /// Whether running it reads at most one stored row (see [`Plan::reads_one_row_at_most`]).
    pub fn reads_one_row_at_most(&self) -> bool {
        self.subqueries.is_empty() && self.root.reads_one_row_at_most()
    }
}

/// A subquery and whether it reads its enclosing rows (if not, its result can be cached).
#[derive(Clone, Debug, PartialEq)]
pub struct Subquery {
    pub plan: Plan,
    pub correlated: bool,
}

impl IndexBounds {
    /// PostgreSQL's `Index Cond` text, with the index's column names: `((a = 1) AND (b > 2))`.
    pub fn describe(&self, columns: &[&str]) -> String {
        let column = |i: usize| columns.get(i).copied().unwrap_or("?");
        let mut conditions: Vec<String> = self
            .prefix
            .iter()
            .enumerate()
            .map(|(i, e)| format!("({} = {e})", column(i)))
            .collect();
        let next = column(self.prefix.len());
        for (bound, inclusive, exclusive) in [(&self.lower, ">=", ">"), (&self.upper, "<=", "<")] {
            match bound {
                Bound::Included(e) => conditions.push(format!("({next} {inclusive} {e})")),
                Bound::Excluded(e) => conditions.push(format!("({next} {exclusive} {e})")),
                Bound::Unbounded => {}
            }
        }
        match conditions.len() {
            1 => conditions.remove(0),
            _ => format!("({})", conditions.join(" AND ")),
        }
    }
}

fn table_columns(table: &Table) -> Vec<OutputColumn> {
    table
        .columns
        .iter()
        .map(|c| OutputColumn {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            table_id: Some(table.id),
        })
        .collect()
}

impl Plan {
    /// Whether running the plan (its expressions aside) reads at most one stored row: a
    /// lookup of one primary key, literal rows, or an insert of literal rows (whose uniqueness
    /// checks read no row's visible version), under nodes that only pass rows on.
    pub fn reads_one_row_at_most(&self) -> bool {
        match self {
            Plan::Values { .. } => true,
            Plan::KeyLookup { keys, .. } => keys.len() <= 1,
            Plan::Filter { input, .. }
            | Plan::Project { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. }
            | Plan::Distinct { input }
            | Plan::Aggregate { input, .. } => input.reads_one_row_at_most(),
            Plan::Update { source, .. } | Plan::Delete { source, .. } => {
                source.reads_one_row_at_most()
            }
            Plan::Insert {
                source,
                on_conflict,
                ..
            } => {
                matches!(**source, Plan::Values { .. })
                    && on_conflict
                        .as_ref()
                        .is_none_or(|c| c.action == ConflictAction::DoNothing)
            }
            Plan::Scan { .. }
            | Plan::IndexScan { .. }
            | Plan::NestedLoopJoin { .. }
            | Plan::HashJoin { .. }
            | Plan::SetOperation { .. } => false,
        }
    }

    /// The output columns.
    pub fn columns(&self) -> Vec<OutputColumn> {
        match self {
            Plan::Values { columns, .. }
            | Plan::Project { columns, .. }
            | Plan::Aggregate { columns, .. }
            | Plan::SetOperation { columns, .. } => columns.clone(),
            Plan::Scan { table, .. }
            | Plan::KeyLookup { table, .. }
            | Plan::IndexScan { table, .. } => table_columns(table),
            Plan::Filter { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. }
            | Plan::Distinct { input } => input.columns(),
            Plan::NestedLoopJoin { left, right, .. } | Plan::HashJoin { left, right, .. } => {
                let mut c = left.columns();
                c.extend(right.columns());
                c
            }
            Plan::Insert { returning, .. }
            | Plan::Update { returning, .. }
            | Plan::Delete { returning, .. } => returning
                .as_ref()
                .map(|(_, c)| c.clone())
                .unwrap_or_default(),
        }
    }

    /// Whether the plan writes.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Plan::Insert { .. } | Plan::Update { .. } | Plan::Delete { .. }
        ) || self.locks_rows()
    }

    fn locks_rows(&self) -> bool {
        match self {
            Plan::Scan { lock, .. }
            | Plan::KeyLookup { lock, .. }
            | Plan::IndexScan { lock, .. } => lock.is_some(),
            Plan::Filter { input, .. }
            | Plan::Project { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. }
            | Plan::Distinct { input }
            | Plan::Aggregate { input, .. } => input.locks_rows(),
            Plan::NestedLoopJoin { left, right, .. } | Plan::HashJoin { left, right, .. } => {
                left.locks_rows() || right.locks_rows()
            }
            _ => false,
        }
    }

    /// EXPLAIN output, one line per node, children indented.
    pub fn explain(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.explain_into(0, &mut out);
        out
    }

    fn explain_into(&self, depth: usize, out: &mut Vec<String>) {
        let pad = if depth == 0 {
            String::new()
        } else {
            format!("{}->  ", "      ".repeat(depth - 1))
        };
        let detail = " ".repeat(pad.len() + 2);
        let mut line = pad;
        let mut children: Vec<&Plan> = Vec::new();
        let mut extra: Vec<String> = Vec::new();
        match self {
            Plan::Values { rows, .. } => {
                let _ = write!(line, "Values ({} rows)", rows.len());
            }
            Plan::Scan {
                table,
                filter,
                lock,
            } => {
                let _ = write!(line, "Seq Scan on {}", table.name);
                if let Some(f) = filter {
                    extra.push(format!("Filter: {f}"));
                }
                if let Some(l) = lock {
                    extra.push(format!("Lock: {l:?}"));
                }
            }
            Plan::KeyLookup {
                table,
                keys,
                filter,
                ..
            } => {
                let _ = write!(line, "Key Lookup on {} ({} keys)", table.name, keys.len());
                if let Some(f) = filter {
                    extra.push(format!("Filter: {f}"));
                }
            }
            Plan::IndexScan {
                table,
                index,
                bounds,
                filter,
                lock,
            } => {
                let index = table.indexes.iter().find(|i| i.id == *index);
                let name = index.map_or("?", |i| i.name.as_str());
                let _ = write!(line, "Index Scan using {name} on {}", table.name);
                if let Some(index) = index {
                    extra.push(format!(
                        "Index Cond: {}",
                        bounds.describe(&index.column_names(table))
                    ));
                }
                if let Some(f) = filter {
                    extra.push(format!("Filter: {f}"));
                }
                if let Some(l) = lock {
                    extra.push(format!("Lock: {l:?}"));
                }
            }
            Plan::Filter { input, predicate } => {
                line.push_str("Filter");
                extra.push(format!("Filter: {predicate}"));
                children.push(input);
            }
            Plan::Project { input, .. } => {
                line.push_str("Project");
                children.push(input);
            }
            Plan::Sort { input, .. } => {
                line.push_str("Sort");
                children.push(input);
            }
            Plan::Limit { input, .. } => {
                line.push_str("Limit");
                children.push(input);
            }
            Plan::NestedLoopJoin {
                left,
                right,
                kind,
                on,
            } => {
                let _ = write!(line, "Nested Loop {kind:?} Join");
                if let Some(on) = on {
                    extra.push(format!("Join Filter: {on}"));
                }
                children.push(left);
                children.push(right);
            }
            Plan::HashJoin {
                left, right, kind, ..
            } => {
                let _ = write!(line, "Hash {kind:?} Join");
                children.push(left);
                children.push(right);
            }
            Plan::Aggregate {
                input, group_by, ..
            } => {
                line.push_str(if group_by.is_empty() {
                    "Aggregate"
                } else {
                    "HashAggregate"
                });
                children.push(input);
            }
            Plan::Distinct { input } => {
                line.push_str("Unique");
                children.push(input);
            }
            Plan::SetOperation {
                left,
                right,
                op,
                all,
                ..
            } => {
                let _ = write!(line, "{op:?}{}", if *all { " All" } else { "" });
                children.push(left);
                children.push(right);
            }
            Plan::Insert { table, source, .. } => {
                let _ = write!(line, "Insert on {}", table.name);
                children.push(source);
            }
            Plan::Update { table, source, .. } => {
                let _ = write!(line, "Update on {}", table.name);
                children.push(source);
            }
            Plan::Delete { table, source, .. } => {
                let _ = write!(line, "Delete on {}", table.name);
                children.push(source);
            }
        }
        out.push(line);
        for e in extra {
            out.push(format!("{detail}{e}"));
        }
        for c in children {
            c.explain_into(depth + 1, out);
        }
    }
}
