//! Join order for a tree of inner joins: tables connected by equality conditions are joined
//! with each other before any cross product.
//!
//! The binder joins `FROM t4, t6, t5, t9 WHERE c5 = a9 AND ...` left-deep in the order written,
//! so the executor (which materialises every join) would build `t4 × t6 × t5` before the
//! equality with `t9` ever filters it — for the SQLite corpus's seven-table joins, more than a
//! gigabyte of intermediate rows for a result of thirteen thousand. Inner joins commute, so
//! the inputs are regrouped: the equality conditions (`a = b` with `a` from one input and `b`
//! from another) connect inputs into groups; each group is joined on its own, starting from its
//! first input in FROM order and taking next the first input connected to what is joined. The
//! groups come first, in the order of their first inputs, and the inputs connected to nothing
//! after them: an equi-join can only shrink what it joins, a cross product only grows it, so
//! every intermediate result stays within the size of the final one. A projection on top puts
//! the columns back in the order the binder bound them.
//!
//! Without statistics, nothing else moves: an order that is already grouped is kept as is.
//! A tree with a condition containing a subquery is not reordered (a correlated subquery reads
//! the row layout of the node it is evaluated at).

use super::expr::Expr;
use super::optimizer::has_subquery;
use super::plan::{JoinKind, Plan};
use super::value::BinaryOp;

/// The inner-join tree `input` filtered by `predicate`, its inputs regrouped (see the module
/// docs): the joins, unoptimized, with every condition in one filter above them and the
/// binder's column order restored on top. `None` when the order stays as written.
pub fn regroup(input: &Plan, predicate: &Expr) -> Option<Plan> {
    if !is_inner_join(input) {
        return None;
    }
    let mut inputs = Vec::new();
    let mut conditions = predicate.clone().conjuncts();
    flatten(input.clone(), 0, &mut inputs, &mut conditions);
    if conditions.iter().any(has_subquery) {
        return None;
    }
    let order = grouped_order(&inputs, &conditions);
    if order.iter().enumerate().all(|(i, &k)| i == k) {
        return None;
    }
    // Where each of the binder's column positions is in the regrouped joins.
    let width: usize = inputs.iter().map(|i| i.width).sum();
    let mut position = vec![0; width];
    let mut next = 0;
    for &k in &order {
        for c in 0..inputs[k].width {
            position[inputs[k].offset + c] = next;
            next += 1;
        }
    }
    let columns = input.columns();
    let mut joined: Option<Plan> = None;
    for &k in &order {
        let plan = inputs[k].plan.clone();
        joined = Some(match joined {
            None => plan,
            Some(left) => Plan::NestedLoopJoin {
                left: Box::new(left),
                right: Box::new(plan),
                kind: JoinKind::Inner,
                on: None,
            },
        });
    }
    let joined = joined?;
    let remapped = conditions
        .iter()
        .map(|c| c.map_columns(&|i| position[i]))
        .collect();
    let filtered = match Expr::conjoin(remapped) {
        Some(predicate) => Plan::Filter {
            input: Box::new(joined),
            predicate,
        },
        None => joined,
    };
    Some(Plan::Project {
        input: Box::new(filtered),
        exprs: (0..width).map(|i| Expr::Column(position[i])).collect(),
        columns,
    })
}

/// One input of the join tree: a plan that is not itself an inner join, and where its columns
/// start in the tree's row.
struct Input {
    plan: Plan,
    offset: usize,
    width: usize,
}

fn is_inner_join(plan: &Plan) -> bool {
    matches!(
        plan,
        Plan::NestedLoopJoin {
            kind: JoinKind::Inner,
            ..
        }
    )
}

/// Collects the inputs of the inner-join tree `plan` (whose row starts at `offset`) and its
/// join conditions, in the whole tree's column positions.
fn flatten(plan: Plan, offset: usize, inputs: &mut Vec<Input>, conditions: &mut Vec<Expr>) {
    match plan {
        Plan::NestedLoopJoin {
            left,
            right,
            kind: JoinKind::Inner,
            on,
        } => {
            let left_width = left.columns().len();
            if let Some(on) = on {
                conditions.extend(
                    on.conjuncts()
                        .iter()
                        .map(|c| c.map_columns(&|i| i + offset)),
                );
            }
            flatten(*left, offset, inputs, conditions);
            flatten(*right, offset + left_width, inputs, conditions);
        }
        plan => {
            let width = plan.columns().len();
            inputs.push(Input {
                plan,
                offset,
                width,
            });
        }
    }
}

/// The input that column position `column` belongs to.
fn input_of(inputs: &[Input], column: usize) -> Option<usize> {
    inputs
        .iter()
        .position(|i| (i.offset..i.offset + i.width).contains(&column))
}

/// The one input every column of `e` belongs to, if there is one.
fn single_input(inputs: &[Input], e: &Expr) -> Option<usize> {
    let mut found = None;
    for c in e.columns() {
        let k = input_of(inputs, c)?;
        if found.is_some_and(|f| f != k) {
            return None;
        }
        found = Some(k);
    }
    found
}

/// The inputs in join order: groups connected by equalities together (see the module docs).
fn grouped_order(inputs: &[Input], conditions: &[Expr]) -> Vec<usize> {
    let n = inputs.len();
    let mut connected = vec![vec![false; n]; n];
    for c in conditions {
        if let Expr::Binary(BinaryOp::Eq, a, b) = c {
            if let (Some(x), Some(y)) = (single_input(inputs, a), single_input(inputs, b)) {
                if x != y {
                    connected[x][y] = true;
                    connected[y][x] = true;
                }
            }
        }
    }
    let mut placed = vec![false; n];
    let mut groups = Vec::new();
    let mut alone = Vec::new();
    for first in 0..n {
        if placed[first] {
            continue;
        }
        placed[first] = true;
        let mut group = vec![first];
        // Take the first input connected to the group until none is.
        while let Some(k) = (0..n).find(|&k| !placed[k] && group.iter().any(|&g| connected[g][k])) {
            placed[k] = true;
            group.push(k);
        }
        if group.len() > 1 {
            groups.extend(group);
        } else {
            alone.extend(group);
        }
    }
    groups.extend(alone);
    groups
}
