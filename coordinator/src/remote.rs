//! Statements on a datanode: the SQL text the coordinator ships, and the answers it reads.
//!
//! Everything goes as a simple Query, the transaction context in front of the statement in
//! the same string (the datanode's coordinator interface: `SET TRANSACTION CONTEXT (...);
//! UPDATE ...`), so a statement costs one round trip. Parameters of the client's statement
//! become typed literals (`'42'::integer`) in the shipped text, and result rows come back as
//! text, parsed into values of the types the coordinator bound.

use crate::pool::remote_error;
use rxc_common::sql::error::{Result, SqlError};
use rxc_common::sql::parse_cache::is_ident_byte;
use rxc_common::sql::{DataType, Value};
use rxc_common::txn::{Gxid, Snapshot};
use sqlparser::ast;
use sqlparser::ast::VisitorMut;
use std::ops::ControlFlow;
#[cfg(test)]
use std::sync::Arc;
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

/// A statement's text with its parameters as slots: shipped again with other values without
/// rewriting and displaying its tree each time (a client's prepared statement).
#[derive(Debug)]
pub struct Template {
    /// The text around the slots: one more than `slots`.
    parts: Vec<String>,
    /// Which parameter (from 1) each slot is.
    slots: Vec<usize>,
}

impl Template {
    /// The template of `stmt`'s text, or `None` where the scanner cannot be sure which `$n`
    /// are parameters (dollar quoting, backslashes in the text).
    pub fn new(stmt: &ast::Statement) -> Option<Template> {
        let text = stmt.to_string();
        let bytes = text.as_bytes();
        if bytes.contains(&b'\\') {
            return None;
        }
        let mut parts = Vec::new();
        let mut slots = Vec::new();
        let (mut start, mut i) = (0, 0);
        while i < bytes.len() {
            match bytes[i] {
                quote @ (b'\'' | b'"') => {
                    // To the closing quote; a doubled one is part of the text.
                    i += 1;
                    loop {
                        match bytes.get(i) {
                            None => return None,
                            Some(&b) if b == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
                            Some(&b) if b == quote => break,
                            Some(_) => i += 1,
                        }
                    }
                    i += 1;
                }
                b'$' if i > 0 && is_ident_byte(bytes[i - 1]) => i += 1,
                b'$' => {
                    let digits = bytes[i + 1..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    let end = i + 1 + digits;
                    if digits == 0 || bytes.get(end).is_some_and(|&b| is_ident_byte(b)) {
                        return None; // a dollar quote
                    }
                    slots.push(text[i + 1..end].parse().ok()?);
                    parts.push(text[start..i].to_string());
                    start = end;
                    i = end;
                }
                _ => i += 1,
            }
        }
        parts.push(text[start..].to_string());
        Some(Template { parts, slots })
    }

    /// The text with `params` as literals of `types`, as [`with_params`] displays it; `None`
    /// if a slot names no parameter.
    pub fn render(&self, params: &[Value], types: &[DataType]) -> Option<String> {
        let mut out = String::with_capacity(self.parts.iter().map(String::len).sum::<usize>() + 16);
        for (i, part) in self.parts.iter().enumerate() {
            out.push_str(part);
            if let Some(&n) = self.slots.get(i) {
                let value = params.get(n.checked_sub(1)?)?;
                let ty = types.get(n - 1).cloned().unwrap_or(DataType::Text);
                out.push_str(&literal_expr(value, &ty).to_string());
            }
        }
        Some(out)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rxc_common::sql::parser::{parse_single, Statement};

    fn tree(sql: &str) -> Arc<ast::Statement> {
        match parse_single(sql).unwrap() {
            Some(Statement::Sql(tree)) => tree,
            other => panic!("{sql}: {other:?}"),
        }
    }

    /// A template renders what rewriting the tree and displaying it gives.
    #[test]
    fn a_template_renders_as_the_rewritten_tree() {
        let types = [DataType::Int4, DataType::Text, DataType::Int8];
        let params = [
            Value::Int4(17),
            Value::Text("it's $1 \"x\"".to_string()),
            Value::Null,
        ];
        for sql in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
            "UPDATE t SET b = $2, c = $3 WHERE a = $1 AND b <> 'a''$1'",
            "SELECT \"$1x\", 'say ''$2''' FROM t WHERE a IN ($1, $1 + 1) AND c IS DISTINCT FROM $3",
            "DELETE FROM t",
        ] {
            let tree = tree(sql);
            let template = Template::new(&tree).expect(sql);
            assert_eq!(
                template.render(&params, &types).unwrap(),
                with_params(&tree, &params, &types).unwrap().to_string(),
                "{sql}"
            );
        }
        // A slot past the parameters: no text (with_params gives the error).
        let template = Template::new(&tree("SELECT $4")).unwrap();
        assert!(template.render(&params, &types).is_none());
        // Dollar quoting: the scanner is unsure.
        assert!(Template::new(&tree("SELECT $$a $1$$")).is_none());
    }
}
