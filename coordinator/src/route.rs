//! Which datanodes a statement's rows live on.
//!
//! A HASH or MODULO table's statement whose WHERE clause pins the distribution column to one
//! value (`col = constant` or `col = $n` among its top-level ANDed conditions; `col IN (...)`
//! to a few) goes only to the nodes of those values; anything else goes to every node of the
//! table. A replicated table is read on one node (its preferred node if it has one, else the
//! first) and written on all, the primary node first so that writers of the same rows queue
//! on one node instead of deadlocking across two. An INSERT's rows are routed one by one by
//! their distribution value ([`insert_value`]).

use rxc_common::cluster::{Distribution, Locator, NodeDef};
use rxc_common::sql::catalog::Table;
use rxc_common::sql::error::{Result, SqlError};
use rxc_common::sql::{DataType, Value};
use sqlparser::ast;
use std::collections::BTreeMap;

/// The value of a constant expression of the shipped SQL: a literal, a negated number, NULL
/// or a parameter, cast to `ty`. `None` for anything else.
pub fn constant(e: &ast::Expr, params: &[Value], ty: &DataType) -> Result<Option<Value>> {
    let v = match e {
        ast::Expr::Value(v) => match &v.value {
            // A number for an integer column may have a fraction (assigned with rounding).
            ast::Value::Number(n, _) => match Value::parse(n, ty) {
                Ok(v) => v,
                Err(_) => Value::parse(n, &DataType::Numeric(None))?.cast(ty)?,
            },
            ast::Value::SingleQuotedString(s) => Value::parse(s, ty)?,
            ast::Value::Null => Value::Null,
            ast::Value::Boolean(b) => Value::Bool(*b).cast(ty)?,
            ast::Value::Placeholder(p) => {
                let n: usize = match p.strip_prefix('$').and_then(|n| n.parse().ok()) {
                    Some(n) if n >= 1 => n,
                    _ => return Ok(None),
                };
                match params.get(n - 1) {
                    Some(v) => v.clone().cast(ty)?,
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => match &**expr {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => Value::parse(&format!("-{n}"), ty)?,
                _ => return Ok(None),
            },
            _ => return Ok(None),
        },
        ast::Expr::Nested(inner) => return constant(inner, params, ty),
        ast::Expr::Cast {
            expr, data_type, ..
        } => {
            return match DataType::from_sql(data_type) {
                Ok(from) if from != *ty => constant(expr, params, &from)?
                    .map(|v| v.cast(ty))
                    .transpose(),
                _ => constant(expr, params, ty),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(v))
}

/// Whether `e` names column `column` (bare, or qualified by any table name or alias: the
/// statement has one table).
fn is_column(e: &ast::Expr, column: &str) -> bool {
    match e {
        ast::Expr::Identifier(i) => rxc_common::sql::binder::ident_name(i) == column,
        ast::Expr::CompoundIdentifier(parts) => parts
            .last()
            .is_some_and(|i| rxc_common::sql::binder::ident_name(i) == column),
        ast::Expr::Nested(inner) => is_column(inner, column),
        _ => false,
    }
}

/// The values a WHERE clause pins `column` to, if it does.
fn pinned_values(
    selection: &ast::Expr,
    column: &str,
    params: &[Value],
    ty: &DataType,
) -> Result<Option<Vec<Value>>> {
    match selection {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            if let Some(v) = pinned_values(left, column, params, ty)? {
                return Ok(Some(v));
            }
            pinned_values(right, column, params, ty)
        }
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::Eq,
            right,
        } => {
            let value = if is_column(left, column) {
                constant(right, params, ty)?
            } else if is_column(right, column) {
                constant(left, params, ty)?
            } else {
                None
            };
            Ok(value.map(|v| vec![v]))
        }
        ast::Expr::InList {
            expr,
            list,
            negated: false,
        } if is_column(expr, column) => {
            let mut out = Vec::new();
            for e in list {
                match constant(e, params, ty)? {
                    Some(v) => out.push(v),
                    None => return Ok(None),
                }
            }
            Ok(Some(out))
        }
        ast::Expr::Nested(inner) => pinned_values(inner, column, params, ty),
        _ => Ok(None),
    }
}

/// The node of a replicated table's reads: its preferred node, else its first.
pub fn read_node(dist: &Distribution, nodes: &BTreeMap<String, NodeDef>) -> String {
    dist.nodes
        .iter()
        .find(|n| nodes.get(*n).is_some_and(|d| d.preferred))
        .or_else(|| dist.nodes.first())
        .cloned()
        .unwrap_or_default()
}

/// A replicated table's nodes for a write: the primary first.
pub fn write_nodes(dist: &Distribution, nodes: &BTreeMap<String, NodeDef>) -> Vec<String> {
    let mut out = dist.nodes.clone();
    out.sort_by_key(|n| !nodes.get(n).is_some_and(|d| d.primary));
    out
}

/// The nodes that can hold the rows a statement on `table` with WHERE `selection` touches
/// (reads, or writes with `write`).
pub fn nodes_for(
    table: &Table,
    dist: &Distribution,
    nodes: &BTreeMap<String, NodeDef>,
    selection: Option<&ast::Expr>,
    params: &[Value],
    write: bool,
) -> Result<Vec<String>> {
    match &dist.locator {
        Locator::Replication if write => Ok(write_nodes(dist, nodes)),
        Locator::Replication => Ok(vec![read_node(dist, nodes)]),
        Locator::RoundRobin => Ok(dist.nodes.clone()),
        Locator::Hash(c) | Locator::Modulo(c) => {
            let column = &table.columns[*c];
            let pinned = match selection {
                Some(s) => pinned_values(s, &column.name, params, &column.data_type)?,
                None => None,
            };
            let Some(values) = pinned else {
                return Ok(dist.nodes.clone());
            };
            let mut positions = Vec::new();
            for v in &values {
                let p = dist.node_for(v, &column.data_type)?;
                if !positions.contains(&p) {
                    positions.push(p);
                }
            }
            positions.sort_unstable();
            Ok(positions
                .into_iter()
                .map(|p| dist.nodes[p].clone())
                .collect())
        }
    }
}

/// The distribution value of an INSERT row: the row's expression for the distribution
/// column (`position` in the row), or NULL when the column is not listed and has no default.
pub fn insert_value(
    table: &Table,
    column: usize,
    position: Option<usize>,
    row: &[ast::Expr],
    params: &[Value],
) -> Result<Value> {
    let col = &table.columns[column];
    let Some(position) = position else {
        if col.default.is_some() {
            return Err(SqlError::unsupported(format!(
                "the distribution column \"{}\" of table \"{}\" must be given a value: \
                 defaults of distribution columns are not evaluated on the coordinator yet",
                col.name, table.name
            )));
        }
        return Ok(Value::Null);
    };
    let expr = row
        .get(position)
        .ok_or_else(|| SqlError::syntax("INSERT has more target columns than expressions"))?;
    constant(expr, params, &col.data_type)?.ok_or_else(|| {
        SqlError::unsupported(format!(
            "the value of distribution column \"{}\" must be a constant or a parameter, \
             not \"{expr}\"",
            col.name
        ))
    })
}
