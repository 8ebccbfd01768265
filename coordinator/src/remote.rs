//! Statements on a datanode: the SQL text the coordinator ships, and the answers it reads.
//!
//! Everything goes as a simple Query, the transaction context in front of the statement in
//! the same string (the datanode's coordinator interface: `SET TRANSACTION CONTEXT (...);
//! UPDATE ...`), so a statement costs one round trip. Parameters of the client's statement
//! become typed literals (`'42'::integer`) in the shipped text, and result rows come back as
//! text, parsed into values of the types the coordinator bound.

use crate::pool::remote_error;
use rxc_common::sql::error::{Result, SqlError};
use rxc_common::sql::{DataType, Value};
use rxc_common::txn::{Gxid, Snapshot};
use sqlparser::ast;
use sqlparser::ast::VisitorMut;
use std::ops::ControlFlow;
use tokio_postgres::{Client, SimpleQueryMessage};

/// What one shipped statement returned.
#[derive(Debug, Default)]
pub struct Answer {
    /// Result rows, as text (NULL is `None`).
    pub rows: Vec<Vec<Option<String>>>,
    /// Result column names.
    pub columns: Vec<String>,
    /// The row count of its command tag.
    pub count: u64,
}

/// `SET TRANSACTION CONTEXT (...)` for a statement with `snapshot` (and the transaction's
/// GXID once it has one); no snapshot is `SNAPSHOT LATEST`, the node's choice.
pub fn context_sql(gxid: Option<Gxid>, snapshot: Option<&Snapshot>) -> String {
    let gxid = gxid.map(|g| format!("GXID {}, ", g.0)).unwrap_or_default();
    match snapshot {
        Some(snapshot) => format!(
            "SET TRANSACTION CONTEXT ({gxid}SNAPSHOT '{}', GLOBAL_XMIN {})",
            snapshot.to_text(),
            snapshot.global_xmin.0
        ),
        None => format!("SET TRANSACTION CONTEXT ({gxid}SNAPSHOT LATEST)"),
    }
}

/// The literal of a value as a sqlparser expression (for rewriting a statement's AST).
pub fn literal_expr(v: &Value, ty: &DataType) -> ast::Expr {
    match v.to_text() {
        None => ast::Expr::Value(ast::Value::Null.into()),
        Some(t) => {
            // A parameter nothing gave a type is text, as PostgreSQL takes an unknown literal.
            let ty = match ty {
                DataType::Unknown => DataType::Text,
                ty => ty.clone(),
            };
            ast::Expr::Cast {
                kind: ast::CastKind::DoubleColon,
                expr: Box::new(ast::Expr::Value(ast::Value::SingleQuotedString(t).into())),
                data_type: ast::DataType::Custom(
                    ast::ObjectName::from(vec![ast::Ident::new(ty.to_string())]),
                    vec![],
                ),
                format: None,
            }
        }
    }
}

/// `stmt` with its parameters `$n` replaced by `params` as literals of `types`.
pub fn with_params(
    stmt: &ast::Statement,
    params: &[Value],
    types: &[DataType],
) -> Result<ast::Statement> {
    let mut stmt = stmt.clone();
    if params.is_empty() {
        return Ok(stmt);
    }
    struct Params<'a> {
        params: &'a [Value],
        types: &'a [DataType],
        bad: Option<String>,
    }
    impl VisitorMut for Params<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<()> {
            if let ast::Expr::Value(v) = expr {
                if let ast::Value::Placeholder(p) = &v.value {
                    let n: Option<usize> = p.strip_prefix('$').and_then(|n| n.parse().ok());
                    match n.and_then(|n| Some((self.params.get(n - 1)?, n))) {
                        Some((value, n)) => {
                            let ty = self.types.get(n - 1).cloned().unwrap_or(DataType::Text);
                            *expr = literal_expr(value, &ty);
                        }
                        None => self.bad = Some(p.clone()),
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor = Params {
        params,
        types,
        bad: None,
    };
    let _ = ast::VisitMut::visit(&mut stmt, &mut visitor);
    if let Some(p) = visitor.bad {
        return Err(SqlError::new(
            rxc_common::sql::error::sqlstate::UNDEFINED_PARAMETER,
            format!("there is no parameter {p}"),
        ));
    }
    Ok(stmt)
}

/// Runs `sql` (one or more statements) on `client` of node `node`; returns the answer of each
/// statement, in order.
pub async fn run(client: &Client, node: &str, sql: &str) -> Result<Vec<Answer>> {
    tracing::debug!(node, sql, "shipping");
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| remote_error(node, e))?;
    let mut out = Vec::new();
    let mut current = Answer::default();
    for m in messages {
        match m {
            SimpleQueryMessage::RowDescription(columns) => {
                current.columns = columns.iter().map(|c| c.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(row) => {
                current.rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                );
            }
            SimpleQueryMessage::CommandComplete(n) => {
                current.count = n;
                out.push(std::mem::take(&mut current));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Text rows parsed into values of `types` (one per column).
pub fn parse_rows(rows: Vec<Vec<Option<String>>>, types: &[DataType]) -> Result<Vec<Vec<Value>>> {
    rows.into_iter()
        .map(|row| {
            row.into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    None => Ok(Value::Null),
                    Some(t) => {
                        let ty = types.get(i).cloned().unwrap_or(DataType::Text);
                        Value::parse(&t, &ty)
                    }
                })
                .collect()
        })
        .collect()
}
