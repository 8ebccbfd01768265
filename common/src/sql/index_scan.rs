//! Index scans: which secondary index serves a scan's filter (planning), and what a plan's
//! bounds come to when the statement runs.
//!
//! A scan becomes an [`Plan::IndexScan`] when its filter pins a prefix of an index's columns
//! by equality to row-independent values (constants, parameters, outer columns), and may
//! bound the next column with `<`, `<=`, `>`, `>=` (BETWEEN is two of those). The filter
//! stays whole on the plan and is re-checked on every row found, so the bounds only have to
//! include every matching row: a bound value that does not convert exactly to the column's
//! type widens to an inclusive bound (or none), while an equality value that does not convert
//! exactly, or NULL, matches nothing. Among the indexes that serve a filter the one with the
//! most equality columns wins, then one with a range, then a unique one; the primary key's
//! [`Plan::KeyLookup`] is preferred to all of them.

use super::catalog::{Index, Table};
use super::error::Result;
use super::expr::Expr;
use super::optimizer::has_subquery;
use super::plan::{IndexBounds, Plan, RowLock};
use super::value::{BinaryOp, DataType, Value};
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

/// The stretch of an index an index scan reads, with values of the index columns' types.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexRange {
    /// Values of the leading index columns.
    pub prefix: Vec<Value>,
    /// Lower bound of the next index column (SQL order, whatever the column's direction).
    pub lower: Bound<Value>,
    /// Upper bound of the next index column (SQL order).
    pub upper: Bound<Value>,
}

/// What one conjunct of a filter says about one column.
enum Condition {
    Equal(usize, Expr),
    Lower(usize, Bound<Expr>),
    Upper(usize, Bound<Expr>),
}

/// `column op value` (either way round) with a row-independent value, as a condition.
fn condition(conjunct: &Expr) -> Option<Condition> {
    let Expr::Binary(op, a, b) = conjunct else {
        return None;
    };
    if has_subquery(conjunct) {
        return None;
    }
    let (column, value, op) = match (&**a, &**b) {
        (Expr::Column(i), v) if v.is_row_independent() => (*i, v.clone(), *op),
        (v, Expr::Column(i)) if v.is_row_independent() => (*i, v.clone(), flip(*op)?),
        _ => return None,
    };
    Some(match op {
        BinaryOp::Eq => Condition::Equal(column, value),
        BinaryOp::Gt => Condition::Lower(column, Bound::Excluded(value)),
        BinaryOp::GtEq => Condition::Lower(column, Bound::Included(value)),
        BinaryOp::Lt => Condition::Upper(column, Bound::Excluded(value)),
        BinaryOp::LtEq => Condition::Upper(column, Bound::Included(value)),
        _ => return None,
    })
}

/// The operator with its operands swapped (`5 < a` is `a > 5`).
fn flip(op: BinaryOp) -> Option<BinaryOp> {
    Some(match op {
        BinaryOp::Eq => BinaryOp::Eq,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        _ => return None,
    })
}

/// The bounds `conditions` give `index`, and how well they serve it (more equality columns,
/// then a range, then uniqueness), if they serve it at all.
fn bounds_for(
    index: &Index,
    conditions: &[Condition],
) -> Option<(IndexBounds, (usize, bool, bool))> {
    let mut prefix = Vec::new();
    for &column in &index.columns {
        let equal = conditions.iter().find_map(|c| match c {
            Condition::Equal(col, e) if *col == column => Some(e.clone()),
            _ => None,
        });
        match equal {
            Some(e) => prefix.push(e),
            None => break,
        }
    }
    let (mut lower, mut upper) = (Bound::Unbounded, Bound::Unbounded);
    if let Some(&next) = index.columns.get(prefix.len()) {
        for c in conditions {
            match c {
                Condition::Lower(col, b) if *col == next && lower == Bound::Unbounded => {
                    lower = b.clone()
                }
                Condition::Upper(col, b) if *col == next && upper == Bound::Unbounded => {
                    upper = b.clone()
                }
                _ => {}
            }
        }
    }
    let ranged = lower != Bound::Unbounded || upper != Bound::Unbounded;
    if prefix.is_empty() && !ranged {
        return None;
    }
    let full = prefix.len() == index.columns.len();
    let score = (prefix.len(), ranged, index.unique && full);
    Some((
        IndexBounds {
            prefix,
            lower,
            upper,
        },
        score,
    ))
}

/// A scan of `table` filtered by `filter`: an index scan if an index serves the filter, else a
/// sequential scan (see the module doc).
pub fn plan(table: Arc<Table>, filter: Expr, lock: Option<RowLock>) -> Plan {
    let conditions: Vec<Condition> = filter
        .clone()
        .conjuncts()
        .iter()
        .filter_map(condition)
        .collect();
    let mut best: Option<(u64, IndexBounds, (usize, bool, bool))> = None;
    for index in &table.indexes {
        if let Some((bounds, score)) = bounds_for(index, &conditions) {
            if best.as_ref().is_none_or(|(_, _, s)| score > *s) {
                best = Some((index.id, bounds, score));
            }
        }
    }
    match best {
        Some((index, bounds, _)) => Plan::IndexScan {
            table,
            index,
            bounds,
            filter: Some(filter),
            lock,
        },
        None => Plan::Scan {
            table,
            filter: Some(filter),
            lock,
        },
    }
}

/// `v` as a value of key column type `ty`, and whether the conversion is exact; `None` when
/// it does not convert. Equality lookups match nothing with an inexact or failed conversion
/// (`id = 1.5` on an integer key).
pub fn key_value(v: &Value, ty: &DataType) -> Result<Option<(Value, bool)>> {
    let Ok(converted) = v.clone().cast(ty) else {
        return Ok(None);
    };
    let exact = v.compare(&converted)? == Some(Ordering::Equal);
    Ok(Some((converted, exact)))
}

/// The range the bounds of a scan of `index` come to, with `eval` evaluating their
/// expressions; `None` when no row can match (an equality with NULL, or with a value the
/// column's type cannot hold exactly).
pub fn range(
    table: &Table,
    index: &Index,
    bounds: &IndexBounds,
    eval: &mut dyn FnMut(&Expr) -> Result<Value>,
) -> Result<Option<IndexRange>> {
    let column_type = |i: usize| &table.columns[index.columns[i]].data_type;
    let mut prefix = Vec::with_capacity(bounds.prefix.len());
    for (i, e) in bounds.prefix.iter().enumerate() {
        let v = eval(e)?;
        if v.is_null() {
            return Ok(None);
        }
        match key_value(&v, column_type(i))? {
            Some((converted, true)) => prefix.push(converted),
            _ => return Ok(None),
        }
    }
    let next = bounds.prefix.len();
    let mut bound = |b: &Bound<Expr>| -> Result<Option<Bound<Value>>> {
        let (e, inclusive) = match b {
            Bound::Unbounded => return Ok(Some(Bound::Unbounded)),
            Bound::Included(e) => (e, true),
            Bound::Excluded(e) => (e, false),
        };
        let v = eval(e)?;
        if v.is_null() {
            return Ok(None); // a comparison with NULL is never true
        }
        Ok(Some(match key_value(&v, column_type(next))? {
            None => Bound::Unbounded,
            Some((converted, true)) if !inclusive => Bound::Excluded(converted),
            Some((converted, _)) => Bound::Included(converted),
        }))
    };
    let (Some(lower), Some(upper)) = (bound(&bounds.lower)?, bound(&bounds.upper)?) else {
        return Ok(None);
    };
    Ok(Some(IndexRange {
        prefix,
        lower,
        upper,
    }))
}
