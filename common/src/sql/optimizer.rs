//! Plan rewrites after binding: filters move into scans and below inner joins, primary-key
//! equalities turn scans into key lookups, filters a secondary index serves turn them into
//! index scans ([`index_scan`](super::index_scan)), and equi-joins become hash joins; the
//! inputs of an inner-join tree are first regrouped so that equi-joined tables meet before any
//! cross product ([`join_order`](super::join_order)).
//!
//! A conjunct that contains a subquery stays where the binder put it: a correlated subquery
//! reads the row of the node it is evaluated at, so it must not move to another row layout.

use super::expr::Expr;
use super::index_scan;
use super::join_order;
use super::plan::{JoinKind, Plan};
use super::value::BinaryOp;

/// Optimizes a plan bottom-up.
pub fn optimize(plan: Plan) -> Plan {
    match plan {
        Plan::Filter { input, predicate } => match join_order::regroup(&input, &predicate) {
            Some(regrouped) => optimize(regrouped),
            None => push_filter(optimize(*input), predicate),
        },
        Plan::Scan {
            table,
            filter: Some(filter),
            lock,
        } => key_lookup(table, filter, lock),
        Plan::Project {
            input,
            exprs,
            columns,
        } => Plan::Project {
            input: Box::new(optimize(*input)),
            exprs,
            columns,
        },
        Plan::Sort { input, keys } => Plan::Sort {
            input: Box::new(optimize(*input)),
            keys,
        },
        Plan::Limit {
            input,
            limit,
            offset,
        } => Plan::Limit {
            input: Box::new(optimize(*input)),
            limit,
            offset,
        },
        Plan::NestedLoopJoin {
            left,
            right,
            kind,
            on,
        } => make_join(optimize(*left), optimize(*right), kind, on),
        Plan::Aggregate {
            input,
            group_by,
            aggregates,
            columns,
        } => Plan::Aggregate {
            input: Box::new(optimize(*input)),
            group_by,
            aggregates,
            columns,
        },
        Plan::Distinct { input } => Plan::Distinct {
            input: Box::new(optimize(*input)),
        },
        Plan::SetOperation {
            left,
            right,
            op,
            all,
            columns,
        } => Plan::SetOperation {
            left: Box::new(optimize(*left)),
            right: Box::new(optimize(*right)),
            op,
            all,
            columns,
        },
        Plan::Insert {
            table,
            source,
            targets,
            defaults,
            checks,
            on_conflict,
            returning,
        } => Plan::Insert {
            table,
            source: Box::new(optimize(*source)),
            targets,
            defaults,
            checks,
            on_conflict,
            returning,
        },
        Plan::Update {
            table,
            source,
            assignments,
            checks,
            returning,
        } => Plan::Update {
            table,
            source: Box::new(optimize(*source)),
            assignments,
            checks,
            returning,
        },
        Plan::Delete {
            table,
            source,
            returning,
        } => Plan::Delete {
            table,
            source: Box::new(optimize(*source)),
            returning,
        },
        other => other,
    }
}

/// Whether `e` contains a subquery (such a conjunct reads its row and never moves).
pub(super) fn has_subquery(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| {
        if matches!(x, Expr::Subquery { .. }) {
            found = true;
        }
    });
    found
}

fn filter(input: Plan, predicate: Option<Expr>) -> Plan {
    match predicate {
        None => input,
        Some(p) => push_filter(input, p),
    }
}

fn push_filter(input: Plan, predicate: Expr) -> Plan {
    match input {
        Plan::Scan {
            table,
            filter: existing,
            lock,
        } => {
            let mut conjuncts = existing.map(Expr::conjuncts).unwrap_or_default();
            conjuncts.extend(predicate.conjuncts());
            match Expr::conjoin(conjuncts) {
                Some(f) => key_lookup(table, f, lock),
                None => Plan::Scan {
                    table,
                    filter: None,
                    lock,
                },
            }
        }
        Plan::NestedLoopJoin {
            left,
            right,
            kind: JoinKind::Inner,
            on,
        } => {
            let mut conjuncts = on.map(Expr::conjuncts).unwrap_or_default();
            conjuncts.extend(predicate.conjuncts());
            make_join(*left, *right, JoinKind::Inner, Expr::conjoin(conjuncts))
        }
        Plan::HashJoin {
            left,
            right,
            kind: JoinKind::Inner,
            left_keys,
            right_keys,
            residual,
        } => {
            // Re-split with the new predicate.
            let nl = left.columns().len();
            let mut conjuncts = residual.map(Expr::conjuncts).unwrap_or_default();
            for (l, r) in left_keys.into_iter().zip(right_keys) {
                conjuncts.push(Expr::Binary(
                    BinaryOp::Eq,
                    Box::new(l),
                    Box::new(r.map_columns(&|i| i + nl)),
                ));
            }
            conjuncts.extend(predicate.conjuncts());
            make_join(*left, *right, JoinKind::Inner, Expr::conjoin(conjuncts))
        }
        other => Plan::Filter {
            input: Box::new(other),
            predicate,
        },
    }
}

/// Builds a join, pushing one-sided conjuncts of `on` into its inputs where the join kind
/// allows and turning equalities across the sides into hash keys.
fn make_join(left: Plan, right: Plan, kind: JoinKind, on: Option<Expr>) -> Plan {
    let nl = left.columns().len();
    let mut left_only = Vec::new();
    let mut right_only = Vec::new();
    let mut left_keys = Vec::new();
    let mut right_keys = Vec::new();
    let mut rest = Vec::new();
    for c in on.map(Expr::conjuncts).unwrap_or_default() {
        if has_subquery(&c) {
            rest.push(c);
            continue;
        }
        let cols = c.columns();
        let all_left = cols.iter().all(|&i| i < nl);
        let all_right = cols.iter().all(|&i| i >= nl);
        if !cols.is_empty() && all_left && kind == JoinKind::Inner {
            left_only.push(c);
            continue;
        }
        if !cols.is_empty() && all_right && matches!(kind, JoinKind::Inner | JoinKind::Left) {
            right_only.push(c.map_columns(&|i| i - nl));
            continue;
        }
        if let Expr::Binary(BinaryOp::Eq, a, b) = &c {
            let (ac, bc) = (a.columns(), b.columns());
            let side = |cols: &[usize]| {
                if cols.is_empty() {
                    None
                } else if cols.iter().all(|&i| i < nl) {
                    Some(false)
                } else if cols.iter().all(|&i| i >= nl) {
                    Some(true)
                } else {
                    None
                }
            };
            match (side(&ac), side(&bc)) {
                (Some(false), Some(true)) => {
                    left_keys.push((**a).clone());
                    right_keys.push(b.map_columns(&|i| i - nl));
                    continue;
                }
                (Some(true), Some(false)) => {
                    left_keys.push((**b).clone());
                    right_keys.push(a.map_columns(&|i| i - nl));
                    continue;
                }
                _ => {}
            }
        }
        rest.push(c);
    }
    let left = filter(left, Expr::conjoin(left_only));
    let right = filter(right, Expr::conjoin(right_only));
    if !left_keys.is_empty() && matches!(kind, JoinKind::Inner | JoinKind::Left) {
        return Plan::HashJoin {
            left: Box::new(left),
            right: Box::new(right),
            kind,
            left_keys,
            right_keys,
            residual: Expr::conjoin(rest),
        };
    }
    // Put the key equalities back for a nested loop.
    for (l, r) in left_keys.into_iter().zip(right_keys) {
        rest.push(Expr::Binary(
            BinaryOp::Eq,
            Box::new(l),
            Box::new(r.map_columns(&|i| i + nl)),
        ));
    }
    Plan::NestedLoopJoin {
        left: Box::new(left),
        right: Box::new(right),
        kind,
        on: Expr::conjoin(rest),
    }
}

/// A scan whose filter pins every primary-key column to row-independent values becomes a
/// key lookup (the filter is kept and re-checked on the rows found); otherwise an index scan
/// if an index serves the filter.
fn key_lookup(
    table: std::sync::Arc<super::catalog::Table>,
    filter: Expr,
    lock: Option<super::plan::RowLock>,
) -> Plan {
    let pk = table.primary_key.clone();
    if pk.is_empty() {
        return index_scan::plan(table, filter, lock);
    }
    let conjuncts = filter.clone().conjuncts();
    let mut keys: Vec<Option<Vec<Expr>>> = vec![None; pk.len()];
    for c in &conjuncts {
        if has_subquery(c) {
            continue;
        }
        match c {
            Expr::Binary(BinaryOp::Eq, a, b) => {
                let (col, value) = match (&**a, &**b) {
                    (Expr::Column(i), v) if v.is_row_independent() => (*i, v),
                    (v, Expr::Column(i)) if v.is_row_independent() => (*i, v),
                    _ => continue,
                };
                if let Some(pos) = pk.iter().position(|&p| p == col) {
                    keys[pos] = Some(vec![value.clone()]);
                }
            }
            Expr::InList(a, list, false) if pk.len() == 1 => {
                if let Expr::Column(i) = &**a {
                    if *i == pk[0] && list.iter().all(Expr::is_row_independent) {
                        keys[0] = Some(list.clone());
                    }
                }
            }
            _ => {}
        }
    }
    if keys.iter().any(Option::is_none) {
        return index_scan::plan(table, filter, lock);
    }
    let keys: Vec<Vec<Expr>> = keys.into_iter().flatten().collect();
    // One key per combination (only single-column IN lists produce several).
    let lookups = if pk.len() == 1 {
        keys[0].iter().map(|e| vec![e.clone()]).collect()
    } else {
        vec![keys.into_iter().map(|mut v| v.remove(0)).collect()]
    };
    Plan::KeyLookup {
        table,
        keys: lookups,
        filter: Some(filter),
        lock,
    }
}
