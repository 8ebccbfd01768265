//! The binder: turns a parsed query or DML statement into a [`Plan`], resolving names against
//! the [`Catalog`], inferring types (untyped literals and `$n` parameters take the type their
//! context asks for, as in PostgreSQL), and shaping SELECT into the classic pipeline:
//!
//! ```text
//!   FROM (scans, joins) → WHERE → GROUP BY/aggregates → HAVING → select list (+ hidden sort
//!   columns) → DISTINCT → ORDER BY → LIMIT/OFFSET → drop hidden columns
//! ```
//!
//! Aggregation is detected by a first pass over the select list, HAVING and ORDER BY; when
//! present, those clauses are bound again "above" the Aggregate node, where a grouped
//! expression becomes a column of the aggregate's output and a bare column that is neither
//! grouped nor aggregated is PostgreSQL's 42803.
//!
//! After binding, [`super::optimizer`] pushes filters into scans and joins and picks key
//! lookups and hash joins.

use super::catalog::{Catalog, Table};
use super::error::{sqlstate, Result, SqlError};
use super::expr::{Expr, SeqCall, SubqueryKind};
use super::fold;
use super::functions;
use super::indexes;
use super::optimizer;
use super::plan::{
    AggCall, AggFunc, BoundQuery, ConflictAction, JoinKind, OnConflict, OutputColumn, Plan,
    RowLock, SetOp, SortKey, Subquery,
};
use super::value::{BinaryOp, DataType, UnaryOp, Value};
use sqlparser::ast;
use std::sync::Arc;

/// A column visible to expressions.
#[derive(Clone, Debug)]
struct ScopeColumn {
    /// The table name or alias it can be qualified with.
    table: Option<String>,
    name: String,
    data_type: DataType,
    table_id: Option<u64>,
    /// Merged away by a join's USING or NATURAL: reachable only qualified, not part of `*`.
    merged: bool,
}

/// The columns of the row an expression is evaluated over.
#[derive(Clone, Debug, Default)]
struct Scope {
    columns: Vec<ScopeColumn>,
}

impl Scope {
    fn from_output(columns: &[OutputColumn], table: Option<&str>) -> Scope {
        Scope {
            columns: columns
                .iter()
                .map(|c| ScopeColumn {
                    table: table.map(str::to_string),
                    name: c.name.clone(),
                    data_type: c.data_type.clone(),
                    table_id: c.table_id,
                    merged: false,
                })
                .collect(),
        }
    }

    fn join(&self, other: &Scope) -> Scope {
        let mut columns = self.columns.clone();
        columns.extend(other.columns.iter().cloned());
        Scope { columns }
    }

    fn has_table(&self, table: &str) -> bool {
        self.columns
            .iter()
            .any(|c| c.table.as_deref() == Some(table))
    }

    /// Resolves `[table.]name`: Ok(None) when absent, 42702 when ambiguous.
    fn resolve(&self, table: Option<&str>, name: &str) -> Result<Option<usize>> {
        let mut found = None;
        for (i, c) in self.columns.iter().enumerate() {
            if c.name != name
                || (table.is_some() && c.table.as_deref() != table)
                || (table.is_none() && c.merged)
            {
                continue;
            }
            if found.is_some() {
                return Err(SqlError::new(
                    sqlstate::AMBIGUOUS_COLUMN,
                    format!("column reference \"{name}\" is ambiguous"),
                ));
            }
            found = Some(i);
        }
        Ok(found)
    }
}

/// Aggregation state while binding the clauses above an Aggregate node.
#[derive(Clone, Debug)]
struct AggScope {
    /// The scope below the Aggregate (FROM + WHERE).
    input: Scope,
    group_by: Vec<Expr>,
    group_types: Vec<DataType>,
    aggregates: Vec<AggCall>,
}

/// The clause name of an aggregate's arguments, where another aggregate is PostgreSQL's
/// "aggregate function calls cannot be nested".
const NESTED_AGGREGATE_CLAUSE: &str = "aggregate function calls";

/// How expressions of the clause being bound may use aggregates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AggMode {
    /// Not allowed here (WHERE, ON, GROUP BY, VALUES...): 42803 with the clause's name.
    Forbidden(&'static str),
    /// Allowed; the binder is in its first pass and only notes that one was seen.
    Detect,
    /// Allowed; bind above the Aggregate node.
    Above,
}

struct Cx {
    scope: Scope,
    agg_mode: AggMode,
    agg: Option<AggScope>,
    found_aggregate: bool,
}

impl Cx {
    fn plain(scope: Scope, clause: &'static str) -> Cx {
        Cx {
            scope,
            agg_mode: AggMode::Forbidden(clause),
            agg: None,
            found_aggregate: false,
        }
    }
}

/// Binds statements against a catalog.
pub struct Binder<'a> {
    catalog: &'a dyn Catalog,
    subqueries: Vec<Subquery>,
    params: Vec<DataType>,
    /// Enclosing scopes of the subquery being bound, innermost last.
    outer: Vec<Scope>,
    /// Whether each subquery being bound (innermost last) read an enclosing row.
    correlated: Vec<bool>,
    /// Common table expressions in scope: name, plan.
    ctes: Vec<(String, Plan)>,
    /// How many [`Binder::expr`] calls are under way for the current query level; a whole
    /// clause expression (depth 0) is constant-folded once it is bound.
    expr_depth: usize,
}

/// Binds a query or DML statement. `param_types` are the types the client declared for
/// `$1..` (Unknown where it did not).
pub fn bind(
    catalog: &dyn Catalog,
    statement: &ast::Statement,
    param_types: &[DataType],
) -> Result<BoundQuery> {
    let mut binder = Binder {
        catalog,
        subqueries: Vec::new(),
        params: param_types.to_vec(),
        outer: Vec::new(),
        correlated: Vec::new(),
        ctes: Vec::new(),
        expr_depth: 0,
    };
    let root = match statement {
        ast::Statement::Query(q) => binder.query(q)?.0,
        ast::Statement::Insert(i) => binder.insert(i)?,
        ast::Statement::Update(u) => binder.update(u)?,
        ast::Statement::Delete(d) => binder.delete(d)?,
        other => {
            return Err(SqlError::unsupported(format!(
                "statement not supported here: {}",
                first_words(&other.to_string())
            )))
        }
    };
    Ok(BoundQuery {
        root: optimizer::optimize(root),
        subqueries: binder
            .subqueries
            .into_iter()
            .map(|s| Subquery {
                plan: optimizer::optimize(s.plan),
                correlated: s.correlated,
            })
            .collect(),
        params: binder.params,
    })
}

/// Binds a standalone expression with no columns in scope (a column DEFAULT).
pub fn bind_default(catalog: &dyn Catalog, sql: &str, target: &DataType) -> Result<Expr> {
    let expr = parse_expr(sql)?;
    let mut binder = Binder {
        catalog,
        subqueries: Vec::new(),
        params: Vec::new(),
        outer: Vec::new(),
        correlated: Vec::new(),
        ctes: Vec::new(),
        expr_depth: 0,
    };
    let mut cx = Cx::plain(Scope::default(), "DEFAULT expressions");
    let bound = binder.expr(&expr, &mut cx)?;
    binder.coerce_assign(bound, target, "")
}

/// Parses a SQL expression (defaults and CHECK constraints are stored as text).
pub fn parse_expr(sql: &str) -> Result<ast::Expr> {
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::syntax(format!("invalid stored expression {sql:?}: {e}")))
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// An identifier quoted for SQL text (`"name"`, inner quotes doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Folds an identifier as PostgreSQL does: lower case unless quoted.
pub fn ident_name(ident: &ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// The last part of an object name, folded.
pub fn object_name(name: &ast::ObjectName) -> Result<String> {
    match name.0.last() {
        Some(ast::ObjectNamePart::Identifier(i)) => Ok(ident_name(i)),
        _ => Err(SqlError::syntax(format!("invalid name: {name}"))),
    }
}

fn aggregate_func(name: &str) -> Option<AggFunc> {
    Some(match name {
        "count" => AggFunc::Count,
        "sum" => AggFunc::Sum,
        "avg" => AggFunc::Avg,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        "bool_and" | "every" => AggFunc::BoolAnd,
        "bool_or" => AggFunc::BoolOr,
        "string_agg" => AggFunc::StringAgg,
        _ => return None,
    })
}

fn agg_type(func: AggFunc, arg: Option<&DataType>, fname: &str) -> Result<DataType> {
    let arg = arg.cloned().unwrap_or(DataType::Unknown);
    let undefined = || {
        SqlError::new(
            sqlstate::UNDEFINED_FUNCTION,
            format!("function {fname}({}) does not exist", arg.name()),
        )
        .with_hint("No function matches the given name and argument types. You might need to add explicit type casts.")
    };
    let ambiguous = || {
        SqlError::new(
            sqlstate::AMBIGUOUS_FUNCTION,
            format!("function {fname}(unknown) is not unique"),
        )
        .with_hint("Could not choose a best candidate function. You might need to add explicit type casts.")
    };
    Ok(match func {
        AggFunc::CountStar | AggFunc::Count => DataType::Int8,
        AggFunc::Sum | AggFunc::Avg if arg == DataType::Unknown => return Err(ambiguous()),
        AggFunc::Sum => match arg {
            DataType::Int2 | DataType::Int4 => DataType::Int8,
            DataType::Int8 | DataType::Numeric(_) => DataType::Numeric(None),
            DataType::Float4 => DataType::Float4,
            DataType::Float8 => DataType::Float8,
            _ => return Err(undefined()),
        },
        AggFunc::Avg => match arg {
            DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Numeric(_) => {
                DataType::Numeric(None)
            }
            DataType::Float4 | DataType::Float8 => DataType::Float8,
            _ => return Err(undefined()),
        },
        AggFunc::Min | AggFunc::Max => match arg {
            DataType::Unknown => DataType::Text,
            DataType::Bool | DataType::Bytea => return Err(undefined()),
            DataType::Numeric(_) => DataType::Numeric(None),
            DataType::Varchar(_) => DataType::Varchar(None),
            t => t,
        },
        AggFunc::BoolAnd | AggFunc::BoolOr => match arg {
            DataType::Bool | DataType::Unknown => DataType::Bool,
            _ => return Err(undefined()),
        },
        AggFunc::StringAgg => DataType::Text,
    })
}

fn literal_number(s: &str) -> Result<(Value, DataType)> {
    if let Ok(i) = s.parse::<i32>() {
        return Ok((Value::Int4(i), DataType::Int4));
    }
    if let Ok(i) = s.parse::<i64>() {
        return Ok((Value::Int8(i), DataType::Int8));
    }
    let ty = DataType::Numeric(None);
    Ok((Value::parse(s, &ty)?, ty))
}

fn column_name_of(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(i) => ident_name(i),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map(ident_name).unwrap_or_default(),
        ast::Expr::Function(f) => object_name(&f.name).unwrap_or_else(|_| "?column?".into()),
        ast::Expr::Cast {
            expr, data_type, ..
        } => match **expr {
            ast::Expr::Value(_) => DataType::from_sql(data_type)
                .map(|t| pg_short_type_name(&t))
                .unwrap_or_else(|_| "?column?".into()),
            ref inner => column_name_of(inner),
        },
        ast::Expr::Nested(inner) => column_name_of(inner),
        ast::Expr::Case { .. } => "case".into(),
        ast::Expr::Exists { .. } => "exists".into(),
        ast::Expr::Subquery(q) => match &*q.body {
            ast::SetExpr::Select(s) if s.projection.len() == 1 => match &s.projection[0] {
                ast::SelectItem::UnnamedExpr(e) => column_name_of(e),
                ast::SelectItem::ExprWithAlias { alias, .. } => ident_name(alias),
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        ast::Expr::Extract { .. } => "extract".into(),
        ast::Expr::Substring { .. } => "substring".into(),
        ast::Expr::Trim { .. } => "btrim".into(),
        ast::Expr::Ceil { .. } => "ceil".into(),
        ast::Expr::Floor { .. } => "floor".into(),
        ast::Expr::Position { .. } => "position".into(),
        ast::Expr::TypedString(t) => DataType::from_sql(&t.data_type)
            .map(|t| pg_short_type_name(&t))
            .unwrap_or_else(|_| "?column?".into()),
        _ => "?column?".into(),
    }
}

/// The internal type name PostgreSQL uses for the column name of a cast literal.
fn pg_short_type_name(t: &DataType) -> String {
    match t {
        DataType::Bool => "bool",
        DataType::Int2 => "int2",
        DataType::Int4 => "int4",
        DataType::Int8 => "int8",
        DataType::Float4 => "float4",
        DataType::Float8 => "float8",
        DataType::Numeric(_) => "numeric",
        DataType::Text => "text",
        DataType::Varchar(_) => "varchar",
        DataType::Char(_) => "bpchar",
        DataType::Date => "date",
        DataType::Timestamp => "timestamp",
        DataType::TimestampTz => "timestamptz",
        DataType::Bytea => "bytea",
        DataType::Unknown => "?column?",
    }
    .to_string()
}

fn output(name: String, data_type: DataType) -> OutputColumn {
    OutputColumn {
        name,
        data_type,
        table_id: None,
    }
}

impl<'a> Binder<'a> {
    // ---------------------------------------------------------------- queries

    /// Binds a query; returns its plan and output columns.
    fn query(&mut self, q: &ast::Query) -> Result<(Plan, Vec<OutputColumn>)> {
        let cte_mark = self.ctes.len();
        if let Some(with) = &q.with {
            if with.recursive {
                return Err(SqlError::unsupported("WITH RECURSIVE is not supported"));
            }
            for (i, cte) in with.cte_tables.iter().enumerate() {
                let name = ident_name(&cte.alias.name);
                if with.cte_tables[..i]
                    .iter()
                    .any(|c| ident_name(&c.alias.name) == name)
                {
                    return Err(SqlError::new(
                        sqlstate::DUPLICATE_ALIAS,
                        format!("WITH query name \"{name}\" specified more than once"),
                    ));
                }
                let (plan, mut cols) = self.query(&cte.query)?;
                let what = format!("WITH query \"{name}\"");
                let plan = rename_columns(plan, &mut cols, &cte.alias.columns, &what)?;
                self.ctes.push((name, plan));
            }
        }
        let result = self.query_body(q);
        self.ctes.truncate(cte_mark);
        result
    }

    fn query_body(&mut self, q: &ast::Query) -> Result<(Plan, Vec<OutputColumn>)> {
        let lock = q.locks.first().map(|l| match l.lock_type {
            ast::LockType::Update => RowLock::Update,
            ast::LockType::Share => RowLock::Share,
        });
        let order_by: &[ast::OrderByExpr] = match &q.order_by {
            None => &[],
            Some(o) => match &o.kind {
                ast::OrderByKind::Expressions(e) => e,
                ast::OrderByKind::All(_) => {
                    return Err(SqlError::syntax("syntax error at or near \"ALL\""))
                }
            },
        };
        let (mut plan, columns) = match &*q.body {
            ast::SetExpr::Select(select) => self.select(select, order_by, lock)?,
            body => {
                let (plan, columns) = self.set_expr(body)?;
                let plan = if order_by.is_empty() {
                    plan
                } else {
                    // ORDER BY over a set operation or VALUES names output columns.
                    let scope = Scope::from_output(&columns, None);
                    let mut keys = Vec::new();
                    for o in order_by {
                        let index = match self.output_reference(&o.expr, &columns)? {
                            Some(i) => i,
                            None => {
                                let mut cx = Cx::plain(scope.clone(), "ORDER BY");
                                match self.expr(&o.expr, &mut cx)?.0 {
                                    Expr::Column(i) => i,
                                    _ => return Err(SqlError::unsupported(
                                        "ORDER BY on a UNION/INTERSECT/EXCEPT result must be on one of the result columns",
                                    )),
                                }
                            }
                        };
                        keys.push(sort_key(Expr::Column(index), o));
                    }
                    Plan::Sort {
                        input: Box::new(plan),
                        keys,
                    }
                };
                (plan, columns)
            }
        };
        let (mut limit, offset) = match &q.limit_clause {
            None => (None, None),
            Some(ast::LimitClause::LimitOffset { limit, offset, .. }) => {
                (limit.clone(), offset.as_ref().map(|o| o.value.clone()))
            }
            Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
                (Some(limit.clone()), Some(offset.clone()))
            }
        };
        // FETCH FIRST [n] ROWS ONLY is LIMIT n (1 when n is left out).
        if let Some(fetch) = &q.fetch {
            if fetch.with_ties || fetch.percent {
                return Err(SqlError::unsupported(
                    "FETCH FIRST ... WITH TIES / PERCENT is not supported",
                ));
            }
            if limit.is_some() {
                return Err(SqlError::syntax("multiple LIMIT clauses not allowed"));
            }
            limit =
                Some(fetch.quantity.clone().unwrap_or_else(|| {
                    ast::Expr::value(ast::Value::Number("1".to_string(), false))
                }));
        }
        if limit.is_some() || offset.is_some() {
            let limit = match limit {
                Some(e) => Some(self.limit_expr(&e, "LIMIT")?),
                None => None,
            };
            let offset = match offset {
                Some(e) => Some(self.limit_expr(&e, "OFFSET")?),
                None => None,
            };
            plan = Plan::Limit {
                input: Box::new(plan),
                limit,
                offset,
            };
        }
        Ok((plan, columns))
    }

    fn limit_expr(&mut self, e: &ast::Expr, clause: &'static str) -> Result<Expr> {
        let mut cx = Cx::plain(Scope::default(), clause);
        let bound = self.expr(e, &mut cx)?;
        self.coerce(bound, &DataType::Int8)
    }

    /// `ORDER BY 2` or `ORDER BY alias`: a reference to an output column.
    fn output_reference(
        &mut self,
        e: &ast::Expr,
        columns: &[OutputColumn],
    ) -> Result<Option<usize>> {
        match e {
            ast::Expr::Value(v) => {
                if let ast::Value::Number(n, _) = &v.value {
                    let n: usize = n.parse().unwrap_or(0);
                    if n == 0 || n > columns.len() {
                        return Err(SqlError::new(
                            sqlstate::INVALID_COLUMN_REFERENCE,
                            format!("ORDER BY position {n} is not in select list"),
                        ));
                    }
                    return Ok(Some(n - 1));
                }
                Ok(None)
            }
            ast::Expr::Identifier(i) => {
                let name = ident_name(i);
                let matches: Vec<usize> = columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.name == name)
                    .map(|(i, _)| i)
                    .collect();
                Ok(if matches.len() == 1 {
                    Some(matches[0])
                } else {
                    None
                })
            }
            _ => Ok(None),
        }
    }

    fn set_expr(&mut self, body: &ast::SetExpr) -> Result<(Plan, Vec<OutputColumn>)> {
        match body {
            ast::SetExpr::Select(select) => self.select(select, &[], None),
            ast::SetExpr::Query(q) => self.query(q),
            ast::SetExpr::Values(values) => self.values(values, None),
            ast::SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let (lp, lc) = self.set_expr(left)?;
                let (rp, rc) = self.set_expr(right)?;
                let (op, name) = match op {
                    ast::SetOperator::Union => (SetOp::Union, "UNION"),
                    ast::SetOperator::Intersect => (SetOp::Intersect, "INTERSECT"),
                    ast::SetOperator::Except | ast::SetOperator::Minus => (SetOp::Except, "EXCEPT"),
                };
                if lc.len() != rc.len() {
                    return Err(SqlError::syntax(format!(
                        "each {name} query must have the same number of columns"
                    )));
                }
                let mut columns = Vec::new();
                for (l, r) in lc.iter().zip(&rc) {
                    let t = DataType::common(&l.data_type, &r.data_type, name)?;
                    let t = if t == DataType::Unknown {
                        DataType::Text
                    } else {
                        t
                    };
                    columns.push(output(l.name.clone(), t));
                }
                let lp = cast_plan(lp, &lc, &columns);
                let rp = cast_plan(rp, &rc, &columns);
                let all = matches!(
                    set_quantifier,
                    ast::SetQuantifier::All | ast::SetQuantifier::AllByName
                );
                Ok((
                    Plan::SetOperation {
                        left: Box::new(lp),
                        right: Box::new(rp),
                        op,
                        all,
                        columns: columns.clone(),
                    },
                    columns,
                ))
            }
            ast::SetExpr::Table(t) => {
                let name = t
                    .table_name
                    .as_ref()
                    .ok_or_else(|| SqlError::syntax("TABLE needs a name"))?;
                let (plan, scope) = self.named_relation(&name.to_lowercase(), None, None)?;
                let columns = plan.columns();
                let _ = scope;
                Ok((plan, columns))
            }
            _ => Err(SqlError::unsupported("this query form is not supported")),
        }
    }

    /// `VALUES (...), (...)`; `targets` are the column types an INSERT wants (assignment
    /// coercion per column), else column types are unified across rows.
    fn values(
        &mut self,
        values: &ast::Values,
        targets: Option<&[DataType]>,
    ) -> Result<(Plan, Vec<OutputColumn>)> {
        let width = values.rows.first().map(|r| r.len()).unwrap_or(0);
        let mut bound_rows = Vec::new();
        for row in &values.rows {
            if row.len() != width {
                return Err(SqlError::syntax("VALUES lists must all be the same length"));
            }
            let mut bound = Vec::new();
            for e in row.iter() {
                let mut cx = Cx::plain(Scope::default(), "VALUES");
                bound.push(self.expr(e, &mut cx)?);
            }
            bound_rows.push(bound);
        }
        let mut types = Vec::new();
        for c in 0..width {
            let t = match targets {
                Some(t) => t.get(c).cloned().unwrap_or(DataType::Unknown),
                None => {
                    let mut t = DataType::Unknown;
                    for row in &bound_rows {
                        t = DataType::common(&t, &row[c].1, "VALUES")?;
                    }
                    if t == DataType::Unknown {
                        DataType::Text
                    } else {
                        t
                    }
                }
            };
            types.push(t);
        }
        let mut rows = Vec::new();
        for row in bound_rows {
            let mut out = Vec::new();
            for (c, b) in row.into_iter().enumerate() {
                out.push(match targets {
                    Some(_) => b.0, // the INSERT coerces per target column
                    None => self.coerce(b, &types[c])?,
                });
            }
            rows.push(out);
        }
        let columns: Vec<OutputColumn> = types
            .iter()
            .enumerate()
            .map(|(i, t)| output(format!("column{}", i + 1), t.clone()))
            .collect();
        Ok((
            Plan::Values {
                rows,
                columns: columns.clone(),
            },
            columns,
        ))
    }

    fn select(
        &mut self,
        select: &ast::Select,
        order_by: &[ast::OrderByExpr],
        lock: Option<RowLock>,
    ) -> Result<(Plan, Vec<OutputColumn>)> {
        // FROM
        let (mut plan, scope) = if select.from.is_empty() {
            (
                Plan::Values {
                    rows: vec![vec![]],
                    columns: vec![],
                },
                Scope::default(),
            )
        } else {
            let mut acc: Option<(Plan, Scope)> = None;
            for twj in &select.from {
                let (p, s) = self.table_with_joins(twj, lock)?;
                acc = Some(match acc {
                    None => (p, s),
                    Some((lp, ls)) => (
                        Plan::NestedLoopJoin {
                            left: Box::new(lp),
                            right: Box::new(p),
                            kind: JoinKind::Inner,
                            on: None,
                        },
                        ls.join(&s),
                    ),
                });
            }
            acc.ok_or_else(|| SqlError::internal("empty FROM"))?
        };
        // WHERE
        if let Some(w) = &select.selection {
            let mut cx = Cx::plain(scope.clone(), "WHERE");
            let bound = self.expr(w, &mut cx)?;
            let predicate = self.condition(bound, "WHERE")?;
            plan = Plan::Filter {
                input: Box::new(plan),
                predicate,
            };
        }
        // First pass over the clauses that may aggregate: is there an aggregate at all?
        let group_by: &[ast::Expr] = match &select.group_by {
            ast::GroupByExpr::Expressions(e, _) => e,
            ast::GroupByExpr::All(_) => {
                return Err(SqlError::unsupported("GROUP BY ALL is not supported"))
            }
        };
        let snapshot = (self.params.clone(), self.subqueries.len());
        let mut detect = Cx {
            scope: scope.clone(),
            agg_mode: AggMode::Detect,
            agg: None,
            found_aggregate: false,
        };
        let mut items = Vec::new();
        for item in &select.projection {
            self.select_item(item, &mut detect, &mut items)?;
        }
        if let Some(h) = &select.having {
            self.expr(h, &mut detect)?;
        }
        for o in order_by {
            if !matches!(&o.expr, ast::Expr::Value(_)) {
                let _ = self.expr(&o.expr, &mut detect);
            }
        }
        let aggregating = detect.found_aggregate || !group_by.is_empty() || select.having.is_some();
        let mut cx = if aggregating {
            // Bind again above an Aggregate node.
            self.params = snapshot.0;
            self.subqueries.truncate(snapshot.1);
            let mut group_exprs = Vec::new();
            let mut group_types = Vec::new();
            for g in group_by {
                // GROUP BY 1 / GROUP BY alias refer to select items.
                let target = match g {
                    ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                        let ast::Value::Number(n, _) = &v.value else {
                            unreachable!()
                        };
                        let n: usize = n.parse().unwrap_or(0);
                        let item = items.get(n.wrapping_sub(1)).ok_or_else(|| {
                            SqlError::new(
                                sqlstate::INVALID_COLUMN_REFERENCE,
                                format!("GROUP BY position {n} is not in select list"),
                            )
                        })?;
                        item.0.clone()
                    }
                    _ => g.clone(),
                };
                let mut gcx = Cx::plain(scope.clone(), "GROUP BY");
                let bound = match self.expr(&target, &mut gcx) {
                    Ok(b) => b,
                    Err(e) if e.code == sqlstate::UNDEFINED_COLUMN => {
                        // An output alias.
                        match items.iter().find(|(_, name)| {
                            matches!(g, ast::Expr::Identifier(i) if ident_name(i) == *name)
                        }) {
                            Some((ast_expr, _)) => {
                                let mut gcx = Cx::plain(scope.clone(), "GROUP BY");
                                self.expr(&ast_expr.clone(), &mut gcx)?
                            }
                            None => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                };
                group_exprs.push(bound.0);
                group_types.push(bound.1);
            }
            Cx {
                scope: scope.clone(),
                agg_mode: AggMode::Above,
                agg: Some(AggScope {
                    input: scope.clone(),
                    group_by: group_exprs,
                    group_types,
                    aggregates: Vec::new(),
                }),
                found_aggregate: false,
            }
        } else {
            Cx::plain(scope.clone(), "SELECT")
        };
        if !aggregating {
            cx.agg_mode = AggMode::Forbidden("SELECT");
        }
        // Select list.
        let mut exprs = Vec::new();
        let mut columns = Vec::new();
        for item in &select.projection {
            self.projection(item, &mut cx, &mut exprs, &mut columns)?;
        }
        // HAVING
        let having = match &select.having {
            Some(h) => {
                let b = self.expr(h, &mut cx)?;
                Some(self.condition(b, "HAVING")?)
            }
            None => None,
        };
        // ORDER BY: output references, else expressions (hidden columns when not selected).
        let visible = exprs.len();
        let mut keys = Vec::new();
        for o in order_by {
            let index = match self.output_reference(&o.expr, &columns)? {
                Some(i) => i,
                None => {
                    let (e, t) = self.expr(&o.expr, &mut cx)?;
                    match exprs.iter().position(|x| *x == e) {
                        Some(i) => i,
                        None => {
                            if select.distinct.is_some() {
                                return Err(SqlError::new(
                                    sqlstate::INVALID_COLUMN_REFERENCE,
                                    "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                                ));
                            }
                            exprs.push(e);
                            columns.push(output("?column?".into(), t));
                            exprs.len() - 1
                        }
                    }
                }
            };
            keys.push(sort_key(Expr::Column(index), o));
        }
        if let Some(agg) = cx.agg.take() {
            let mut agg_columns: Vec<OutputColumn> = agg
                .group_types
                .iter()
                .map(|t| output("?column?".into(), t.clone()))
                .collect();
            agg_columns.extend(
                agg.aggregates
                    .iter()
                    .map(|a| output("?column?".into(), a.data_type.clone())),
            );
            plan = Plan::Aggregate {
                input: Box::new(plan),
                group_by: agg.group_by,
                aggregates: agg.aggregates,
                columns: agg_columns,
            };
            if let Some(predicate) = having {
                plan = Plan::Filter {
                    input: Box::new(plan),
                    predicate,
                };
            }
        }
        plan = Plan::Project {
            input: Box::new(plan),
            exprs,
            columns: columns.clone(),
        };
        match &select.distinct {
            None | Some(ast::Distinct::All) => {}
            Some(ast::Distinct::Distinct) => {
                plan = Plan::Distinct {
                    input: Box::new(plan),
                }
            }
            Some(ast::Distinct::On(_)) => {
                return Err(SqlError::unsupported("SELECT DISTINCT ON is not supported"))
            }
        }
        if !keys.is_empty() {
            plan = Plan::Sort {
                input: Box::new(plan),
                keys,
            };
        }
        if columns.len() > visible {
            columns.truncate(visible);
            plan = Plan::Project {
                input: Box::new(plan),
                exprs: (0..visible).map(Expr::Column).collect(),
                columns: columns.clone(),
            };
        }
        Ok((plan, columns))
    }

    /// First-pass select item: notes (expression, name) for GROUP BY references.
    fn select_item(
        &mut self,
        item: &ast::SelectItem,
        cx: &mut Cx,
        items: &mut Vec<(ast::Expr, String)>,
    ) -> Result<()> {
        match item {
            ast::SelectItem::UnnamedExpr(e) => {
                self.expr(e, cx)?;
                items.push((e.clone(), column_name_of(e)));
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                self.expr(expr, cx)?;
                items.push((expr.clone(), ident_name(alias)));
            }
            _ => items.push((
                ast::Expr::Value(ast::Value::Null.with_empty_span()),
                String::new(),
            )),
        }
        Ok(())
    }

    fn projection(
        &mut self,
        item: &ast::SelectItem,
        cx: &mut Cx,
        exprs: &mut Vec<Expr>,
        columns: &mut Vec<OutputColumn>,
    ) -> Result<()> {
        let star = |cx: &mut Cx,
                    table: Option<String>,
                    exprs: &mut Vec<Expr>,
                    columns: &mut Vec<OutputColumn>,
                    binder: &mut Self|
         -> Result<()> {
            let scope = match &cx.agg {
                Some(a) => a.input.clone(),
                None => cx.scope.clone(),
            };
            if let Some(t) = &table {
                if !scope.has_table(t) {
                    return Err(SqlError::new(
                        sqlstate::UNDEFINED_TABLE,
                        format!("missing FROM-clause entry for table \"{t}\""),
                    ));
                }
            }
            if scope.columns.is_empty() {
                return Err(SqlError::syntax(
                    "SELECT * with no tables specified is not valid",
                ));
            }
            for c in scope.columns.iter() {
                if (table.is_some() && c.table != table) || (table.is_none() && c.merged) {
                    continue;
                }
                let ident = ast::Expr::CompoundIdentifier(vec![
                    ast::Ident::with_quote('"', c.table.clone().unwrap_or_default()),
                    ast::Ident::with_quote('"', c.name.clone()),
                ]);
                let ident = if c.table.is_none() {
                    ast::Expr::Identifier(ast::Ident::with_quote('"', c.name.clone()))
                } else {
                    ident
                };
                let (e, t) = binder.expr(&ident, cx)?;
                exprs.push(e);
                columns.push(OutputColumn {
                    name: c.name.clone(),
                    data_type: t,
                    table_id: c.table_id,
                });
            }
            Ok(())
        };
        match item {
            ast::SelectItem::UnnamedExpr(e) => {
                let (b, t) = self.expr(e, cx)?;
                let table_id = self.column_table_id(&b, cx);
                exprs.push(b);
                columns.push(OutputColumn {
                    name: column_name_of(e),
                    data_type: resolve_unknown(t),
                    table_id,
                });
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                let (b, t) = self.expr(expr, cx)?;
                exprs.push(b);
                columns.push(output(ident_name(alias), resolve_unknown(t)));
            }
            ast::SelectItem::Wildcard(_) => star(cx, None, exprs, columns, self)?,
            ast::SelectItem::QualifiedWildcard(kind, _) => {
                let name = match kind {
                    ast::SelectItemQualifiedWildcardKind::ObjectName(n) => object_name(n)?,
                    ast::SelectItemQualifiedWildcardKind::Expr(_) => {
                        return Err(SqlError::unsupported("expression.* is not supported"))
                    }
                };
                star(cx, Some(name), exprs, columns, self)?
            }
            ast::SelectItem::ExprWithAliases { .. } => {
                return Err(SqlError::unsupported("multiple aliases are not supported"))
            }
        }
        Ok(())
    }

    fn column_table_id(&self, e: &Expr, cx: &Cx) -> Option<u64> {
        match (e, &cx.agg) {
            (Expr::Column(i), None) => cx.scope.columns.get(*i).and_then(|c| c.table_id),
            _ => None,
        }
    }

    fn table_with_joins(
        &mut self,
        twj: &ast::TableWithJoins,
        lock: Option<RowLock>,
    ) -> Result<(Plan, Scope)> {
        let (mut plan, mut scope) = self.table_factor(&twj.relation, lock)?;
        for join in &twj.joins {
            let (rp, rs) = self.table_factor(&join.relation, lock)?;
            use ast::JoinOperator as J;
            let (kind, constraint) = match &join.join_operator {
                J::Join(c) | J::Inner(c) => (JoinKind::Inner, Some(c)),
                J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, Some(c)),
                J::Right(c) | J::RightOuter(c) => (JoinKind::Right, Some(c)),
                J::FullOuter(c) => (JoinKind::Full, Some(c)),
                J::CrossJoin(_) => (JoinKind::Inner, None),
                _ => return Err(SqlError::unsupported("this join type is not supported")),
            };
            let joined = scope.join(&rs);
            let using = match constraint {
                Some(ast::JoinConstraint::Using(cols)) => Some(
                    cols.iter()
                        .map(object_name)
                        .collect::<Result<Vec<String>>>()?,
                ),
                Some(ast::JoinConstraint::Natural) => Some(
                    scope
                        .columns
                        .iter()
                        .filter(|c| !c.merged && rs.columns.iter().any(|r| r.name == c.name))
                        .map(|c| c.name.clone())
                        .collect(),
                ),
                _ => None,
            };
            let on = match (constraint, &using) {
                (Some(ast::JoinConstraint::On(e)), _) => {
                    let mut cx = Cx::plain(joined.clone(), "JOIN conditions");
                    let b = self.expr(e, &mut cx)?;
                    Some(self.condition(b, "JOIN/ON")?)
                }
                (_, Some(names)) if !names.is_empty() => {
                    Some(self.using_condition(&scope, &rs, names)?)
                }
                _ => None,
            };
            plan = Plan::NestedLoopJoin {
                left: Box::new(plan),
                right: Box::new(rp),
                kind,
                on,
            };
            scope = joined;
            if let Some(names) = using.filter(|n| !n.is_empty()) {
                (plan, scope) =
                    self.merge_using_columns(plan, scope, rs.columns.len(), kind, &names)?;
            }
        }
        Ok((plan, scope))
    }

    fn using_condition(&mut self, left: &Scope, right: &Scope, names: &[String]) -> Result<Expr> {
        let mut conds = Vec::new();
        for name in names {
            let (l, r) = using_pair(left, right, name)?;
            let lt = left.columns[l].data_type.clone();
            let rt = right.columns[r].data_type.clone();
            BinaryOp::Eq.result_type(&lt, &rt)?;
            conds.push(Expr::Binary(
                BinaryOp::Eq,
                Box::new(Expr::Column(l)),
                Box::new(Expr::Column(left.columns.len() + r)),
            ));
        }
        Expr::conjoin(conds).ok_or_else(|| SqlError::internal("empty USING"))
    }

    /// The output of a join with USING (or NATURAL): one column per USING name first — the
    /// left side's value, the right's for a right join, the first non-NULL for a full join —
    /// then every column of both sides, the merged ones reachable only qualified.
    fn merge_using_columns(
        &mut self,
        plan: Plan,
        joined: Scope,
        right_width: usize,
        kind: JoinKind,
        names: &[String],
    ) -> Result<(Plan, Scope)> {
        let left_width = joined.columns.len() - right_width;
        let left = Scope {
            columns: joined.columns[..left_width].to_vec(),
        };
        let right = Scope {
            columns: joined.columns[left_width..].to_vec(),
        };
        let mut exprs = Vec::new();
        let mut columns = Vec::new();
        let mut scope = Scope::default();
        for name in names {
            let (l, r) = using_pair(&left, &right, name)?;
            let lt = left.columns[l].data_type.clone();
            let rt = right.columns[r].data_type.clone();
            let (e, t) = match kind {
                JoinKind::Inner | JoinKind::Left => (Expr::Column(l), lt),
                JoinKind::Right => (Expr::Column(left_width + r), rt),
                JoinKind::Full => {
                    let t = DataType::common(&lt, &rt, "JOIN/USING")?;
                    let le = self.coerce((Expr::Column(l), lt), &t)?;
                    let re = self.coerce((Expr::Column(left_width + r), rt), &t)?;
                    (Expr::Coalesce(vec![le, re]), t)
                }
            };
            exprs.push(e);
            columns.push(output(name.clone(), t.clone()));
            scope.columns.push(ScopeColumn {
                table: None,
                name: name.clone(),
                data_type: t,
                table_id: None,
                merged: false,
            });
        }
        for (i, c) in joined.columns.iter().enumerate() {
            exprs.push(Expr::Column(i));
            columns.push(output(c.name.clone(), c.data_type.clone()));
            let mut c = c.clone();
            c.merged |= names.contains(&c.name);
            scope.columns.push(c);
        }
        let plan = Plan::Project {
            input: Box::new(plan),
            exprs,
            columns,
        };
        Ok((plan, scope))
    }

    fn table_factor(
        &mut self,
        factor: &ast::TableFactor,
        lock: Option<RowLock>,
    ) -> Result<(Plan, Scope)> {
        match factor {
            ast::TableFactor::Table {
                name, alias, args, ..
            } => {
                if args.is_some() {
                    return Err(SqlError::unsupported("table functions are not supported"));
                }
                let table_name = object_name(name)?;
                self.named_relation(&table_name, alias.as_ref(), lock)
            }
            ast::TableFactor::Derived {
                subquery, alias, ..
            } => {
                let (plan, mut columns) = self.query(subquery)?;
                let Some(alias) = alias else {
                    return Err(SqlError::syntax("subquery in FROM must have an alias"));
                };
                let name = ident_name(&alias.name);
                let what = format!("table \"{name}\"");
                let plan = rename_columns(plan, &mut columns, &alias.columns, &what)?;
                let scope = Scope::from_output(&columns, Some(&name));
                Ok((plan, scope))
            }
            ast::TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                let (plan, mut scope) = self.table_with_joins(table_with_joins, lock)?;
                if let Some(a) = alias {
                    let name = ident_name(&a.name);
                    for c in &mut scope.columns {
                        c.table = Some(name.clone());
                    }
                }
                Ok((plan, scope))
            }
            _ => Err(SqlError::unsupported("this FROM item is not supported")),
        }
    }

    fn named_relation(
        &mut self,
        name: &str,
        alias: Option<&ast::TableAlias>,
        lock: Option<RowLock>,
    ) -> Result<(Plan, Scope)> {
        let qualifier = alias
            .map(|a| ident_name(&a.name))
            .unwrap_or_else(|| name.to_string());
        if let Some((_, plan)) = self.ctes.iter().rev().find(|(n, _)| n == name) {
            let mut plan = plan.clone();
            let mut columns = plan.columns();
            if let Some(a) = alias {
                let what = format!("table \"{qualifier}\"");
                plan = rename_columns(plan, &mut columns, &a.columns, &what)?;
            }
            return Ok((plan, Scope::from_output(&columns, Some(&qualifier))));
        }
        let table = self.table(name)?;
        let mut columns = table
            .columns
            .iter()
            .map(|c| OutputColumn {
                name: c.name.clone(),
                data_type: c.data_type.clone(),
                table_id: Some(table.id),
            })
            .collect::<Vec<_>>();
        let mut plan = Plan::Scan {
            table,
            filter: None,
            lock,
        };
        if let Some(a) = alias {
            let what = format!("table \"{qualifier}\"");
            plan = rename_columns(plan, &mut columns, &a.columns, &what)?;
        }
        Ok((plan, Scope::from_output(&columns, Some(&qualifier))))
    }

    fn table(&self, name: &str) -> Result<Arc<Table>> {
        self.catalog.table(name)?.ok_or_else(|| {
            SqlError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("relation \"{name}\" does not exist"),
            )
        })
    }

    // ---------------------------------------------------------------- DML

    fn insert(&mut self, insert: &ast::Insert) -> Result<Plan> {
        let ast::TableObject::TableName(name) = &insert.table else {
            return Err(SqlError::unsupported(
                "INSERT into this target is not supported",
            ));
        };
        let table = self.table(&object_name(name)?)?;
        let targets: Vec<usize> = if insert.columns.is_empty() {
            (0..table.columns.len()).collect()
        } else {
            let mut t = Vec::new();
            for c in &insert.columns {
                let name = object_name(c)?;
                let i = table.column_index(&name).ok_or_else(|| {
                    SqlError::new(
                        sqlstate::UNDEFINED_COLUMN,
                        format!(
                            "column \"{name}\" of relation \"{}\" does not exist",
                            table.name
                        ),
                    )
                })?;
                if t.contains(&i) {
                    return Err(SqlError::new(
                        sqlstate::DUPLICATE_COLUMN,
                        format!("column \"{name}\" specified more than once"),
                    ));
                }
                t.push(i);
            }
            t
        };
        let target_types: Vec<DataType> = targets
            .iter()
            .map(|&i| table.columns[i].data_type.clone())
            .collect();
        // DEFAULT VALUES: one row, every column its default.
        let default_values = ast::Values {
            explicit_row: false,
            value_keyword: false,
            rows: vec![ast::Parens::with_empty_span(Vec::new())],
        };
        let (source_body, limited) = match &insert.source {
            None => (&ast::SetExpr::Values(default_values), false),
            Some(source) => (
                &*source.body,
                source.order_by.is_some() || source.limit_clause.is_some(),
            ),
        };
        // VALUES binds each row's expressions against the target types; DEFAULT is allowed.
        let (source_plan, source_columns) = match source_body {
            ast::SetExpr::Values(values) if !limited => {
                let mut rows = Vec::new();
                for row in &values.rows {
                    check_insert_width(row.len(), targets.len(), !insert.columns.is_empty())?;
                    let mut out = Vec::new();
                    for (c, e) in row.iter().enumerate() {
                        let col = &table.columns[targets[c]];
                        if is_default_keyword(e) {
                            out.push(self.default_expr(&table, targets[c])?);
                            continue;
                        }
                        let mut cx = Cx::plain(Scope::default(), "VALUES");
                        let b = self.expr(e, &mut cx)?;
                        out.push(self.coerce_assign(b, &col.data_type, &col.name)?);
                    }
                    for &t in targets.iter().skip(row.len()) {
                        out.push(self.default_expr(&table, t)?);
                    }
                    rows.push(out);
                }
                let columns = target_types
                    .iter()
                    .map(|t| output(String::new(), t.clone()))
                    .collect();
                (Plan::Values { rows, columns }, target_types.clone())
            }
            _ => {
                let source = insert
                    .source
                    .as_ref()
                    .ok_or_else(|| SqlError::internal("an INSERT without its source"))?;
                let (plan, columns) = self.query(source)?;
                check_insert_width(columns.len(), targets.len(), !insert.columns.is_empty())?;
                // Coerce each source column to its target.
                let mut exprs = Vec::new();
                for (i, c) in columns.iter().enumerate() {
                    let col = &table.columns[targets[i]];
                    exprs.push(self.coerce_assign(
                        (Expr::Column(i), c.data_type.clone()),
                        &col.data_type,
                        &col.name,
                    )?);
                }
                let out: Vec<OutputColumn> = targets[..columns.len()]
                    .iter()
                    .map(|&t| output(String::new(), table.columns[t].data_type.clone()))
                    .collect();
                let types = out.iter().map(|c| c.data_type.clone()).collect();
                (
                    Plan::Project {
                        input: Box::new(plan),
                        exprs,
                        columns: out,
                    },
                    types,
                )
            }
        };
        let filled = &targets[..source_columns.len()];
        let mut defaults = Vec::new();
        for i in 0..table.columns.len() {
            defaults.push(if filled.contains(&i) {
                None
            } else {
                Some(self.default_expr(&table, i)?)
            });
        }
        let checks = self.checks(&table)?;
        let on_conflict = match &insert.on {
            None => None,
            Some(ast::OnInsert::OnConflict(oc)) => Some(OnConflict {
                arbiters: indexes::arbiters(
                    &table,
                    oc.conflict_target.as_ref(),
                    matches!(oc.action, ast::OnConflictAction::DoUpdate(_)),
                )?,
                action: match &oc.action {
                    ast::OnConflictAction::DoNothing => ConflictAction::DoNothing,
                    ast::OnConflictAction::DoUpdate(du) => {
                        // Expressions see the existing row, then `excluded`.
                        let mut scope = table_scope(&table, &table.name);
                        scope = scope.join(&table_scope(&table, "excluded"));
                        let mut assignments = Vec::new();
                        for a in &du.assignments {
                            assignments.push(self.assignment(&table, a, &scope)?);
                        }
                        let filter = match &du.selection {
                            Some(w) => {
                                let mut cx = Cx::plain(scope.clone(), "WHERE");
                                let b = self.expr(w, &mut cx)?;
                                Some(self.condition(b, "WHERE")?)
                            }
                            None => None,
                        };
                        ConflictAction::DoUpdate {
                            assignments,
                            filter,
                        }
                    }
                },
            }),
            Some(_) => return Err(SqlError::unsupported("ON DUPLICATE KEY is not supported")),
        };
        let returning = self.returning(&table, insert.returning.as_deref())?;
        Ok(Plan::Insert {
            table: table.clone(),
            source: Box::new(source_plan),
            targets: filled.to_vec(),
            defaults,
            checks,
            on_conflict,
            returning,
        })
    }

    fn default_expr(&mut self, table: &Table, column: usize) -> Result<Expr> {
        let col = &table.columns[column];
        match &col.default {
            None => Ok(Expr::Constant(Value::Null)),
            Some(sql) => {
                let e = parse_expr(sql)?;
                let mut cx = Cx::plain(Scope::default(), "DEFAULT expressions");
                let b = self.expr(&e, &mut cx)?;
                self.coerce_assign(b, &col.data_type, &col.name)
            }
        }
    }

    fn checks(&mut self, table: &Table) -> Result<Vec<(String, Expr)>> {
        let scope = table_scope(table, &table.name);
        let mut out = Vec::new();
        for c in &table.checks {
            let e = parse_expr(&c.expr)?;
            let mut cx = Cx::plain(scope.clone(), "check constraints");
            let b = self.expr(&e, &mut cx)?;
            out.push((c.name.clone(), self.condition(b, "CHECK")?));
        }
        Ok(out)
    }

    fn returning(
        &mut self,
        table: &Table,
        items: Option<&[ast::SelectItem]>,
    ) -> Result<Option<(Vec<Expr>, Vec<OutputColumn>)>> {
        let Some(items) = items else {
            return Ok(None);
        };
        let mut cx = Cx::plain(table_scope(table, &table.name), "RETURNING");
        let mut exprs = Vec::new();
        let mut columns = Vec::new();
        for item in items {
            self.projection(item, &mut cx, &mut exprs, &mut columns)?;
        }
        Ok(Some((exprs, columns)))
    }

    fn assignment(
        &mut self,
        table: &Table,
        a: &ast::Assignment,
        scope: &Scope,
    ) -> Result<(usize, Expr)> {
        let ast::AssignmentTarget::ColumnName(name) = &a.target else {
            return Err(SqlError::unsupported(
                "multi-column assignment is not supported",
            ));
        };
        let name = object_name(name)?;
        let i = table.column_index(&name).ok_or_else(|| {
            SqlError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!(
                    "column \"{name}\" of relation \"{}\" does not exist",
                    table.name
                ),
            )
        })?;
        let col = &table.columns[i];
        if is_default_keyword(&a.value) {
            return Ok((i, self.default_expr(table, i)?));
        }
        let mut cx = Cx::plain(scope.clone(), "UPDATE");
        let b = self.expr(&a.value, &mut cx)?;
        Ok((i, self.coerce_assign(b, &col.data_type, &col.name)?))
    }

    fn dml_target(&mut self, relation: &ast::TableFactor) -> Result<(Arc<Table>, String)> {
        let ast::TableFactor::Table { name, alias, .. } = relation else {
            return Err(SqlError::unsupported("this DML target is not supported"));
        };
        let table = self.table(&object_name(name)?)?;
        let qualifier = alias
            .as_ref()
            .map(|a| ident_name(&a.name))
            .unwrap_or_else(|| table.name.clone());
        Ok((table, qualifier))
    }

    fn dml_source(
        &mut self,
        table: &Arc<Table>,
        scope: &Scope,
        selection: Option<&ast::Expr>,
    ) -> Result<Plan> {
        let filter = match selection {
            Some(w) => {
                let mut cx = Cx::plain(scope.clone(), "WHERE");
                let b = self.expr(w, &mut cx)?;
                Some(self.condition(b, "WHERE")?)
            }
            None => None,
        };
        Ok(Plan::Scan {
            table: table.clone(),
            filter,
            lock: None,
        })
    }

    fn update(&mut self, update: &ast::Update) -> Result<Plan> {
        if update.from.is_some() || !update.table.joins.is_empty() {
            return Err(SqlError::unsupported("UPDATE ... FROM is not supported"));
        }
        let (table, qualifier) = self.dml_target(&update.table.relation)?;
        let scope = table_scope(&table, &qualifier);
        let mut assignments = Vec::new();
        for a in &update.assignments {
            let (i, e) = self.assignment(&table, a, &scope)?;
            if assignments.iter().any(|(j, _)| *j == i) {
                return Err(SqlError::new(
                    sqlstate::DUPLICATE_COLUMN,
                    format!(
                        "multiple assignments to same column \"{}\"",
                        table.columns[i].name
                    ),
                ));
            }
            assignments.push((i, e));
        }
        let source = self.dml_source(&table, &scope, update.selection.as_ref())?;
        let checks = self.checks(&table)?;
        let returning = self.returning(&table, update.returning.as_deref())?;
        Ok(Plan::Update {
            table,
            source: Box::new(source),
            assignments,
            checks,
            returning,
        })
    }

    fn delete(&mut self, delete: &ast::Delete) -> Result<Plan> {
        let from = match &delete.from {
            ast::FromTable::WithFromKeyword(f) | ast::FromTable::WithoutKeyword(f) => f,
        };
        if from.len() != 1 || !from[0].joins.is_empty() || delete.using.is_some() {
            return Err(SqlError::unsupported("DELETE ... USING is not supported"));
        }
        let (table, qualifier) = self.dml_target(&from[0].relation)?;
        let scope = table_scope(&table, &qualifier);
        let source = self.dml_source(&table, &scope, delete.selection.as_ref())?;
        let returning = self.returning(&table, delete.returning.as_deref())?;
        Ok(Plan::Delete {
            table,
            source: Box::new(source),
            returning,
        })
    }

    // ---------------------------------------------------------------- expressions

    /// A boolean condition: 42804 unless boolean (an untyped literal is parsed as boolean).
    fn condition(&mut self, (e, t): (Expr, DataType), clause: &str) -> Result<Expr> {
        match t {
            DataType::Bool => Ok(e),
            DataType::Unknown => self.coerce((e, t), &DataType::Bool),
            other => Err(SqlError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!(
                    "argument of {clause} must be type boolean, not type {}",
                    other.name()
                ),
            )),
        }
    }

    /// Implicit coercion of an expression to `target` (literal and parameter typing, and
    /// implicit casts between compatible types).
    fn coerce(&mut self, (e, t): (Expr, DataType), target: &DataType) -> Result<Expr> {
        if t == *target || *target == DataType::Unknown {
            return Ok(e);
        }
        if matches!(t, DataType::Char(_)) && matches!(target, DataType::Text | DataType::Varchar(_))
        {
            // character(n) to text drops the padding, as PostgreSQL's bpchar-to-text cast.
            return self.coerce((char_to_text(e), DataType::Text), target);
        }
        match e {
            Expr::Constant(Value::Null) => Ok(Expr::Constant(Value::Null)),
            Expr::Constant(Value::Text(s)) if t == DataType::Unknown => {
                Ok(Expr::Constant(Value::parse(&s, target)?))
            }
            Expr::Param(i) if self.params.get(i) == Some(&DataType::Unknown) => {
                self.params[i] = target.clone();
                Ok(Expr::Param(i))
            }
            e => Ok(Expr::Cast(Box::new(e), target.clone())),
        }
    }

    /// Assignment coercion into a column: PostgreSQL refuses e.g. text into integer (42804).
    fn coerce_assign(
        &mut self,
        (e, t): (Expr, DataType),
        target: &DataType,
        column: &str,
    ) -> Result<Expr> {
        let compatible = t == DataType::Unknown
            || t == *target
            || (t.is_numeric() && target.is_numeric())
            || (t.is_string() && target.is_string())
            || target.is_string()
            || matches!(
                (&t, target),
                (
                    DataType::Date | DataType::Timestamp | DataType::TimestampTz,
                    DataType::Date | DataType::Timestamp | DataType::TimestampTz
                )
            );
        if !compatible {
            return Err(SqlError::new(
                sqlstate::DATATYPE_MISMATCH,
                format!(
                    "column \"{column}\" is of type {} but expression is of type {}",
                    target.name(),
                    t.name()
                ),
            )
            .with_hint("You will need to rewrite or cast the expression."));
        }
        match e {
            Expr::Constant(Value::Null) => Ok(Expr::Constant(Value::Null)),
            Expr::Constant(Value::Text(s)) if t == DataType::Unknown => {
                Ok(Expr::Constant(Value::parse(&s, target)?))
            }
            Expr::Param(i) if self.params.get(i) == Some(&DataType::Unknown) => {
                self.params[i] = target.clone();
                Ok(Expr::Param(i))
            }
            Expr::Constant(v) => Ok(Expr::Constant(v.cast_assign(target)?)),
            e if t == *target => Ok(e),
            e => Ok(Expr::CastAssign(Box::new(e), target.clone())),
        }
    }

    /// Resolves a column reference, looking outwards through enclosing queries.
    fn column(&mut self, table: Option<&str>, name: &str, cx: &mut Cx) -> Result<(Expr, DataType)> {
        if let Some(i) = cx.scope.resolve(table, name)? {
            return Ok((Expr::Column(i), cx.scope.columns[i].data_type.clone()));
        }
        for (depth, scope) in self.outer.iter().rev().enumerate() {
            if let Some(i) = scope.resolve(table, name)? {
                // Every subquery from the innermost out to the one whose scope this is
                // depends on the enclosing row.
                let n = self.correlated.len();
                for c in &mut self.correlated[n - depth - 1..] {
                    *c = true;
                }
                return Ok((
                    Expr::Outer { depth, index: i },
                    scope.columns[i].data_type.clone(),
                ));
            }
        }
        if let Some(t) = table {
            let known = cx.scope.has_table(t) || self.outer.iter().any(|s| s.has_table(t));
            if !known {
                return Err(SqlError::new(
                    sqlstate::UNDEFINED_TABLE,
                    format!("missing FROM-clause entry for table \"{t}\""),
                ));
            }
            return Err(SqlError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!("column {t}.{name} does not exist"),
            ));
        }
        Err(SqlError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column \"{name}\" does not exist"),
        ))
    }

    /// Binds a subquery with the current scope as its nearest enclosing scope.
    fn subquery(&mut self, q: &ast::Query, cx: &Cx) -> Result<(usize, Vec<OutputColumn>)> {
        let scope = match &cx.agg {
            Some(_) => Scope::default(), // above an aggregate, outer references are not supported
            None => cx.scope.clone(),
        };
        self.outer.push(scope);
        self.correlated.push(false);
        let depth = std::mem::take(&mut self.expr_depth);
        let result = self.query(q);
        self.expr_depth = depth;
        self.outer.pop();
        let correlated = self.correlated.pop().unwrap_or(true);
        let (plan, columns) = result?;
        self.subqueries.push(Subquery { plan, correlated });
        Ok((self.subqueries.len() - 1, columns))
    }

    /// Binds an expression; a whole clause expression comes back constant-folded
    /// ([`fold`]), with PostgreSQL's plan-time errors.
    fn expr(&mut self, mut e: &ast::Expr, cx: &mut Cx) -> Result<(Expr, DataType)> {
        // Parentheses cost no stack: generated WHERE clauses nest them hundreds deep.
        while let ast::Expr::Nested(inner) = e {
            e = inner;
        }
        self.expr_depth += 1;
        let bound = self.expr_unfolded(e, cx);
        self.expr_depth -= 1;
        let (bound, t) = bound?;
        if self.expr_depth == 0 && cx.agg_mode != AggMode::Detect {
            return Ok((fold::fold(bound)?, t));
        }
        Ok((bound, t))
    }

    fn expr_unfolded(&mut self, e: &ast::Expr, cx: &mut Cx) -> Result<(Expr, DataType)> {
        if cx.agg_mode == AggMode::Above {
            if let Some(bound) = self.above_aggregate(e, cx)? {
                return Ok(bound);
            }
        }
        use ast::Expr as E;
        Ok(match e {
            E::Identifier(i) => self.column(None, &ident_name(i), cx)?,
            E::CompoundIdentifier(parts) => {
                let names: Vec<String> = parts.iter().map(ident_name).collect();
                match names.as_slice() {
                    [t, c] => self.column(Some(t), c, cx)?,
                    [_, t, c] => self.column(Some(t), c, cx)?,
                    _ => return Err(SqlError::syntax(format!("improper qualified name: {e}"))),
                }
            }
            E::Value(v) => self.literal(&v.value)?,
            E::TypedString(ts) => {
                let ty = DataType::from_sql(&ts.data_type)?;
                let text = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
                        s.clone()
                    }
                    other => other.to_string(),
                };
                (Expr::Constant(Value::parse(&text, &ty)?), ty)
            }
            E::Nested(inner) => self.expr(inner, cx)?,
            E::BinaryOp { left, op, right } => self.binary(left, op, right, cx)?,
            E::UnaryOp {
                op: op @ (ast::UnaryOperator::Minus | ast::UnaryOperator::Plus),
                expr,
            } if sign_into_power(*op, expr).is_some() => {
                // PostgreSQL's unary minus binds tighter than `^`; sqlparser's looser.
                let regrouped = sign_into_power(*op, expr)
                    .ok_or_else(|| SqlError::internal("sign regrouping"))?;
                return self.expr(&regrouped, cx);
            }
            E::UnaryOp {
                op:
                    op @ (ast::UnaryOperator::PGSquareRoot
                    | ast::UnaryOperator::PGCubeRoot
                    | ast::UnaryOperator::PGAbs),
                expr,
            } => {
                // |/ and ||/ exist for double precision only; @ for every number type.
                let arg = self.expr(expr, cx)?;
                let (name, arg) = match op {
                    ast::UnaryOperator::PGSquareRoot => ("sqrt", self.float8_operand(arg, "|/")?),
                    ast::UnaryOperator::PGCubeRoot => ("cbrt", self.float8_operand(arg, "||/")?),
                    _ => ("abs", arg),
                };
                self.call(name, vec![arg])?
            }
            E::UnaryOp { op, expr } => {
                let (b, t) = self.expr(expr, cx)?;
                match op {
                    ast::UnaryOperator::Not => {
                        let b = self.condition((b, t), "NOT")?;
                        (Expr::Not(Box::new(b)), DataType::Bool)
                    }
                    ast::UnaryOperator::Minus => {
                        // Fold negative literals so -2147483648 is an integer.
                        if let E::Value(v) = &**expr {
                            if let ast::Value::Number(n, _) = &v.value {
                                let (v, t) = literal_number(&format!("-{n}"))?;
                                return Ok((Expr::Constant(v), t));
                            }
                        }
                        if t == DataType::Unknown {
                            // Unary minus exists for numbers and intervals: no best candidate.
                            return Err(SqlError::new(
                                sqlstate::AMBIGUOUS_FUNCTION,
                                "operator is not unique: - unknown",
                            )
                            .with_hint("Could not choose a best candidate operator. You might need to add explicit type casts."));
                        }
                        if !t.is_numeric() {
                            return Err(operator_error("-", None, &t));
                        }
                        (Expr::Unary(UnaryOp::Neg, Box::new(b)), t)
                    }
                    ast::UnaryOperator::Plus => {
                        // Only numbers have unary plus: an untyped operand is the preferred
                        // numeric type, double precision.
                        let t = if t == DataType::Unknown {
                            DataType::Float8
                        } else {
                            t
                        };
                        if !t.is_numeric() {
                            return Err(operator_error("+", None, &t));
                        }
                        let b = self.coerce((b, DataType::Unknown), &t)?;
                        (Expr::Unary(UnaryOp::Plus, Box::new(b)), t)
                    }
                    _ => {
                        return Err(SqlError::unsupported(format!(
                            "operator {op} is not supported"
                        )))
                    }
                }
            }
            E::IsNull(inner) | E::IsNotNull(inner) => {
                let (b, _) = self.expr(inner, cx)?;
                (
                    Expr::IsNull(Box::new(b), matches!(e, E::IsNotNull(_))),
                    DataType::Bool,
                )
            }
            E::IsTrue(inner)
            | E::IsNotTrue(inner)
            | E::IsFalse(inner)
            | E::IsNotFalse(inner)
            | E::IsUnknown(inner)
            | E::IsNotUnknown(inner) => {
                let b = self.expr(inner, cx)?;
                let b = self.condition(b, "IS")?;
                let (want, negated) = match e {
                    E::IsTrue(_) => (Some(true), false),
                    E::IsNotTrue(_) => (Some(true), true),
                    E::IsFalse(_) => (Some(false), false),
                    E::IsNotFalse(_) => (Some(false), true),
                    E::IsUnknown(_) => (None, false),
                    _ => (None, true),
                };
                (Expr::IsBool(Box::new(b), want, negated), DataType::Bool)
            }
            E::IsDistinctFrom(l, r) | E::IsNotDistinctFrom(l, r) => {
                let (l, r, _) = self.comparable(l, r, cx)?;
                (
                    Expr::IsDistinct(
                        Box::new(l),
                        Box::new(r),
                        matches!(e, E::IsNotDistinctFrom(..)),
                    ),
                    DataType::Bool,
                )
            }
            E::InList {
                expr,
                list,
                negated,
            } => {
                let lhs = self.expr(expr, cx)?;
                let mut items = Vec::new();
                for item in list {
                    items.push(self.expr(item, cx)?);
                }
                let mut t = lhs.1.clone();
                for (_, it) in &items {
                    t = DataType::common(&t, it, "IN")?;
                }
                if t == DataType::Unknown {
                    t = DataType::Text;
                }
                let lhs = self.coerce(lhs, &t)?;
                let mut bound = Vec::new();
                for it in items {
                    bound.push(self.coerce(it, &t)?);
                }
                (Expr::InList(Box::new(lhs), bound, *negated), DataType::Bool)
            }
            E::InSubquery {
                expr,
                subquery,
                negated,
            } => {
                let lhs = self.expr(expr, cx)?;
                let (index, columns) = self.subquery(subquery, cx)?;
                if columns.len() != 1 {
                    return Err(SqlError::syntax("subquery has too many columns"));
                }
                BinaryOp::Eq.result_type(&lhs.1, &columns[0].data_type)?;
                let lhs = self.coerce(lhs, &columns[0].data_type)?;
                (
                    Expr::Subquery {
                        index,
                        kind: SubqueryKind::In(Box::new(lhs)),
                        negated: *negated,
                    },
                    DataType::Bool,
                )
            }
            E::AnyOp {
                left,
                compare_op,
                right,
                ..
            } => self.quantified(left, compare_op, right, false, cx)?,
            E::AllOp {
                left,
                compare_op,
                right,
            } => self.quantified(left, compare_op, right, true, cx)?,
            E::Exists { subquery, negated } => {
                let (index, _) = self.subquery(subquery, cx)?;
                (
                    Expr::Subquery {
                        index,
                        kind: SubqueryKind::Exists,
                        negated: *negated,
                    },
                    DataType::Bool,
                )
            }
            E::Subquery(q) => {
                let (index, columns) = self.subquery(q, cx)?;
                if columns.len() != 1 {
                    return Err(SqlError::syntax("subquery must return only one column"));
                }
                (
                    Expr::Subquery {
                        index,
                        kind: SubqueryKind::Scalar,
                        negated: false,
                    },
                    columns[0].data_type.clone(),
                )
            }
            E::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let ge = self.binary(expr, &ast::BinaryOperator::GtEq, low, cx)?;
                let le = self.binary(expr, &ast::BinaryOperator::LtEq, high, cx)?;
                let both = Expr::And(Box::new(ge.0), Box::new(le.0));
                if *negated {
                    (Expr::Not(Box::new(both)), DataType::Bool)
                } else {
                    (both, DataType::Bool)
                }
            }
            E::Like {
                negated,
                expr,
                pattern,
                escape_char,
                any,
            }
            | E::ILike {
                negated,
                expr,
                pattern,
                escape_char,
                any,
            } => {
                if escape_char.is_some() || *any {
                    return Err(SqlError::unsupported(
                        "LIKE ... ESCAPE / ANY is not supported",
                    ));
                }
                let ilike = matches!(e, E::ILike { .. });
                let op = match (ilike, negated) {
                    (false, false) => BinaryOp::Like,
                    (false, true) => BinaryOp::NotLike,
                    (true, false) => BinaryOp::ILike,
                    (true, true) => BinaryOp::NotILike,
                };
                let l = self.expr(expr, cx)?;
                let r = self.expr(pattern, cx)?;
                let l = self.coerce(l, &DataType::Text)?;
                let r = self.coerce(r, &DataType::Text)?;
                (Expr::Binary(op, Box::new(l), Box::new(r)), DataType::Bool)
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(operand.as_deref(), conditions, else_result.as_deref(), cx)?,
            E::Cast {
                expr, data_type, ..
            } => {
                let ty = DataType::from_sql(data_type)?;
                let (b, t) = self.expr(expr, cx)?;
                match b {
                    // A cast of a string literal parses it (and truncates for varchar(n)).
                    Expr::Constant(Value::Text(s)) if t == DataType::Unknown => {
                        (Expr::Constant(Value::Text(s).cast(&ty)?), ty)
                    }
                    Expr::Param(i) if self.params.get(i) == Some(&DataType::Unknown) => {
                        self.params[i] = ty.clone();
                        (Expr::Param(i), ty)
                    }
                    b if matches!(t, DataType::Char(_)) && ty.is_string() => {
                        (self.coerce((b, t), &ty)?, ty)
                    }
                    Expr::Constant(v) => (Expr::Constant(v.cast(&ty)?), ty),
                    b => (Expr::Cast(Box::new(b), ty.clone()), ty),
                }
            }
            E::Function(f) => self.function(f, cx)?,
            E::Extract { field, expr, .. } => {
                let arg = self.expr(expr, cx)?;
                let field_name = field.to_string().to_lowercase();
                let args = vec![
                    (Expr::Constant(Value::Text(field_name)), DataType::Text),
                    arg,
                ];
                self.call("extract", args)?
            }
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.expr(expr, cx)?];
                args.push(match substring_from {
                    Some(f) => self.expr(f, cx)?,
                    None => (Expr::Constant(Value::Int4(1)), DataType::Int4),
                });
                if let Some(f) = substring_for {
                    args.push(self.expr(f, cx)?);
                }
                self.call("substr", args)?
            }
            E::Trim {
                expr,
                trim_where,
                trim_what,
                ..
            } => {
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "btrim",
                };
                let mut args = vec![self.expr(expr, cx)?];
                if let Some(w) = trim_what {
                    args.push(self.expr(w, cx)?);
                }
                self.call(name, args)?
            }
            E::Position { expr, r#in } => {
                let args = vec![self.expr(r#in, cx)?, self.expr(expr, cx)?];
                self.call("strpos", args)?
            }
            E::Ceil { expr, .. } => {
                let args = vec![self.expr(expr, cx)?];
                self.call("ceil", args)?
            }
            E::Floor { expr, .. } => {
                let args = vec![self.expr(expr, cx)?];
                self.call("floor", args)?
            }
            _ => {
                return Err(SqlError::unsupported(format!(
                    "expression not supported: {e}"
                )))
            }
        })
    }

    /// The operand of a prefix operator that takes double precision: numbers and untyped
    /// literals are cast to it, anything else is 42883.
    fn float8_operand(
        &mut self,
        (e, t): (Expr, DataType),
        symbol: &str,
    ) -> Result<(Expr, DataType)> {
        if !(t.is_numeric() || t == DataType::Unknown) {
            return Err(operator_error(symbol, None, &t));
        }
        Ok((self.coerce((e, t), &DataType::Float8)?, DataType::Float8))
    }

    /// `left op ANY (subquery)` or `left op ALL (subquery)`.
    fn quantified(
        &mut self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        all: bool,
        cx: &mut Cx,
    ) -> Result<(Expr, DataType)> {
        let op = comparison_op(op).ok_or_else(|| {
            SqlError::unsupported(format!("operator {op} with ANY/ALL is not supported"))
        })?;
        let mut right = right;
        while let ast::Expr::Nested(inner) = right {
            right = inner;
        }
        let ast::Expr::Subquery(q) = right else {
            return Err(SqlError::unsupported(
                "ANY/ALL over an array is not supported (only over a subquery)",
            ));
        };
        let lhs = self.expr(left, cx)?;
        let (index, columns) = self.subquery(q, cx)?;
        if columns.len() != 1 {
            return Err(SqlError::syntax("subquery has too many columns"));
        }
        let column_type = &columns[0].data_type;
        op.result_type(&lhs.1, column_type)
            .map_err(|_| operator_error(op.symbol(), Some(&lhs.1), column_type))?;
        let lhs = if lhs.1 == DataType::Unknown {
            self.coerce(lhs, column_type)?
        } else {
            lhs.0
        };
        let kind = SubqueryKind::Quantified {
            left: Box::new(lhs),
            op,
            all,
        };
        Ok((
            Expr::Subquery {
                index,
                kind,
                negated: false,
            },
            DataType::Bool,
        ))
    }

    /// Above an Aggregate node: aggregate calls and grouped expressions become columns of
    /// the aggregate's output. Returns None to bind `e` structurally.
    fn above_aggregate(&mut self, e: &ast::Expr, cx: &mut Cx) -> Result<Option<(Expr, DataType)>> {
        let Some(agg) = cx.agg.as_ref() else {
            return Ok(None);
        };
        let groups = agg.group_by.len();
        if let ast::Expr::Function(f) = e {
            let name = object_name(&f.name)?;
            if let Some(func) = aggregate_func(&name) {
                let input = agg.input.clone();
                let call = self.aggregate_call(func, &name, f, input)?;
                let agg = cx
                    .agg
                    .as_mut()
                    .ok_or_else(|| SqlError::internal("agg scope"))?;
                let t = call.data_type.clone();
                let index = match agg.aggregates.iter().position(|a| *a == call) {
                    Some(i) => i,
                    None => {
                        agg.aggregates.push(call);
                        agg.aggregates.len() - 1
                    }
                };
                return Ok(Some((Expr::Column(groups + index), t)));
            }
        }
        // A grouped expression (or one that uses no input column) binds as itself.
        let snapshot = (self.params.clone(), self.subqueries.len());
        let mut plain = Cx::plain(agg.input.clone(), "aggregate");
        plain.agg_mode = AggMode::Forbidden("GROUP BY");
        if let Ok((b, t)) = self.expr(e, &mut plain) {
            // GROUP BY expressions are folded; compare like with like.
            let b = fold::fold(b.clone()).unwrap_or(b);
            if let Some(i) = agg.group_by.iter().position(|g| *g == b) {
                return Ok(Some((Expr::Column(i), agg.group_types[i].clone())));
            }
            if b.columns().is_empty() && !matches!(b, Expr::Subquery { .. }) {
                return Ok(Some((b, t)));
            }
        }
        self.params = snapshot.0;
        self.subqueries.truncate(snapshot.1);
        if let ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) = e {
            let mut probe = Cx::plain(agg.input.clone(), "aggregate");
            if let Ok((Expr::Column(i), _)) = self.expr(e, &mut probe) {
                let c = &agg.input.columns[i];
                let qualified = match &c.table {
                    Some(t) => format!("{t}.{}", c.name),
                    None => c.name.clone(),
                };
                return Err(SqlError::new(
                    sqlstate::GROUPING_ERROR,
                    format!("column \"{qualified}\" must appear in the GROUP BY clause or be used in an aggregate function"),
                ));
            }
        }
        Ok(None)
    }

    fn aggregate_call(
        &mut self,
        func: AggFunc,
        name: &str,
        f: &ast::Function,
        input: Scope,
    ) -> Result<AggCall> {
        let cx = &mut Cx::plain(input.clone(), NESTED_AGGREGATE_CLAUSE);
        let (args, distinct, clauses) = match &f.args {
            ast::FunctionArguments::List(list) => (
                list.args.clone(),
                matches!(
                    list.duplicate_treatment,
                    Some(ast::DuplicateTreatment::Distinct)
                ),
                list.clauses.as_slice(),
            ),
            _ => (vec![], false, &[][..]),
        };
        let mut bound = Vec::new();
        let mut func = func;
        for a in &args {
            match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)
                    if func == AggFunc::Count =>
                {
                    func = AggFunc::CountStar;
                }
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                    bound.push(self.expr(e, cx)?)
                }
                _ => {
                    return Err(SqlError::unsupported(
                        "this aggregate argument is not supported",
                    ))
                }
            }
        }
        let expected = match func {
            AggFunc::CountStar => 0,
            AggFunc::StringAgg => 2,
            _ => 1,
        };
        if bound.len() != expected {
            let types: Vec<String> = bound.iter().map(|(_, t)| t.name()).collect();
            return Err(SqlError::new(
                sqlstate::UNDEFINED_FUNCTION,
                format!("function {name}({}) does not exist", types.join(", ")),
            ));
        }
        let data_type = agg_type(func, bound.first().map(|b| &b.1), name)?;
        let mut exprs = Vec::new();
        for (e, t) in bound {
            let target = match func {
                AggFunc::StringAgg => DataType::Text,
                AggFunc::BoolAnd | AggFunc::BoolOr => DataType::Bool,
                _ if t == DataType::Unknown => DataType::Text,
                _ => t.clone(),
            };
            exprs.push(self.coerce((e, t), &target)?);
        }
        let filter = match &f.filter {
            Some(w) => {
                let b = self.expr(w, cx)?;
                Some(self.condition(b, "FILTER")?)
            }
            None => None,
        };
        let mut order_by = Vec::new();
        for clause in clauses {
            let ast::FunctionArgumentClause::OrderBy(keys) = clause else {
                return Err(SqlError::unsupported(format!(
                    "{clause} in an aggregate call is not supported"
                )));
            };
            for key in keys {
                let (e, _) = self.expr(&key.expr, cx)?;
                if distinct && !exprs.contains(&e) {
                    return Err(SqlError::new(
                        sqlstate::INVALID_COLUMN_REFERENCE,
                        "in an aggregate with DISTINCT, ORDER BY expressions must appear in argument list",
                    ));
                }
                order_by.push(sort_key(e, key));
            }
        }
        Ok(AggCall {
            func,
            args: exprs,
            distinct,
            filter,
            order_by,
            data_type,
        })
    }

    fn literal(&mut self, v: &ast::Value) -> Result<(Expr, DataType)> {
        use ast::Value as V;
        Ok(match v {
            V::Number(n, _) => {
                let (v, t) = literal_number(n)?;
                (Expr::Constant(v), t)
            }
            V::SingleQuotedString(s)
            | V::EscapedStringLiteral(s)
            | V::DollarQuotedString(ast::DollarQuotedString { value: s, .. })
            | V::NationalStringLiteral(s)
            | V::UnicodeStringLiteral(s) => {
                (Expr::Constant(Value::Text(s.clone())), DataType::Unknown)
            }
            V::HexStringLiteral(s) => (
                Expr::Constant(Value::parse(&format!("\\x{s}"), &DataType::Bytea)?),
                DataType::Bytea,
            ),
            V::Boolean(b) => (Expr::Constant(Value::Bool(*b)), DataType::Bool),
            V::Null => (Expr::Constant(Value::Null), DataType::Unknown),
            V::Placeholder(p) => {
                let n: usize = p
                    .trim_start_matches('$')
                    .parse()
                    .map_err(|_| SqlError::syntax(format!("syntax error at or near \"{p}\"")))?;
                if n == 0 {
                    return Err(SqlError::new(
                        sqlstate::UNDEFINED_PARAMETER,
                        format!("there is no parameter ${n}"),
                    ));
                }
                if self.params.len() < n {
                    self.params.resize(n, DataType::Unknown);
                }
                (Expr::Param(n - 1), self.params[n - 1].clone())
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "literal not supported: {other}"
                )))
            }
        })
    }

    /// Binds both sides of a comparison and makes them comparable.
    fn comparable(
        &mut self,
        l: &ast::Expr,
        r: &ast::Expr,
        cx: &mut Cx,
    ) -> Result<(Expr, Expr, DataType)> {
        let l = self.expr(l, cx)?;
        let r = self.expr(r, cx)?;
        self.unify(l, r, "=")
    }

    fn unify(
        &mut self,
        l: (Expr, DataType),
        r: (Expr, DataType),
        op: &str,
    ) -> Result<(Expr, Expr, DataType)> {
        let (lt, rt) = (l.1.clone(), r.1.clone());
        let t = match (&lt, &rt) {
            (DataType::Unknown, DataType::Unknown) => DataType::Text,
            (DataType::Unknown, t) | (t, DataType::Unknown) => t.clone(),
            _ => {
                if lt.is_string() && rt.is_string() {
                    DataType::Text
                } else {
                    // Operands of different numeric or datetime types compare as they are.
                    if lt != rt {
                        BinaryOp::Eq
                            .result_type(&lt, &rt)
                            .map_err(|_| operator_error(op, Some(&lt), &rt))?;
                    }
                    return Ok((l.0, r.0, lt));
                }
            }
        };
        let le = if lt == DataType::Unknown {
            self.coerce(l, &t)?
        } else {
            l.0
        };
        let re = if rt == DataType::Unknown {
            self.coerce(r, &t)?
        } else {
            r.0
        };
        Ok((le, re, t))
    }

    fn binary(
        &mut self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        cx: &mut Cx,
    ) -> Result<(Expr, DataType)> {
        use ast::BinaryOperator as B;
        match op {
            B::And | B::Or => {
                let l = self.expr(left, cx)?;
                let l = self.condition(l, if *op == B::And { "AND" } else { "OR" })?;
                let r = self.expr(right, cx)?;
                let r = self.condition(r, if *op == B::And { "AND" } else { "OR" })?;
                let e = if *op == B::And {
                    Expr::And(Box::new(l), Box::new(r))
                } else {
                    Expr::Or(Box::new(l), Box::new(r))
                };
                return Ok((e, DataType::Bool));
            }
            _ => {}
        }
        let bop = match comparison_op(op) {
            Some(comparison) => comparison,
            None => match op {
                B::Plus => BinaryOp::Add,
                B::Minus => BinaryOp::Sub,
                B::Multiply => BinaryOp::Mul,
                B::Divide => BinaryOp::Div,
                B::Modulo => BinaryOp::Mod,
                B::StringConcat => BinaryOp::Concat,
                B::PGExp => BinaryOp::Pow,
                other => {
                    return Err(SqlError::unsupported(format!(
                        "operator {other} is not supported"
                    )))
                }
            },
        };
        let l = self.expr(left, cx)?;
        let r = self.expr(right, cx)?;
        let comparison = matches!(
            bop,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        );
        if comparison {
            let (le, re, _) = self.unify(l, r, bop.symbol())?;
            return Ok((
                Expr::Binary(bop, Box::new(le), Box::new(re)),
                DataType::Bool,
            ));
        }
        // Arithmetic and concatenation: an untyped side takes the other's type.
        let (mut lt, mut rt) = (l.1.clone(), r.1.clone());
        if bop == BinaryOp::Concat {
            // Untyped sides are text; character(n) sides become text (without padding).
            if matches!(lt, DataType::Unknown | DataType::Char(_)) {
                lt = DataType::Text;
            }
            if matches!(rt, DataType::Unknown | DataType::Char(_)) {
                rt = DataType::Text;
            }
        } else {
            if lt == DataType::Unknown && rt != DataType::Unknown {
                lt = rt.clone();
            }
            if rt == DataType::Unknown && lt != DataType::Unknown {
                rt = lt.clone();
            }
        }
        let result = bop.result_type(&lt, &rt)?;
        let le = self.coerce(l, &lt)?;
        let re = self.coerce(r, &rt)?;
        Ok((Expr::Binary(bop, Box::new(le), Box::new(re)), result))
    }

    fn case(
        &mut self,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        else_result: Option<&ast::Expr>,
        cx: &mut Cx,
    ) -> Result<(Expr, DataType)> {
        let operand = match operand {
            Some(o) => Some(self.expr(o, cx)?),
            None => None,
        };
        let mut whens = Vec::new();
        let mut results = Vec::new();
        for cw in conditions {
            let w = self.expr(&cw.condition, cx)?;
            let w = match &operand {
                Some(o) => {
                    let (_, we, _) = self.unify(o.clone(), w, "=")?;
                    we
                }
                None => self.condition(w, "CASE/WHEN")?,
            };
            whens.push(w);
            results.push(self.expr(&cw.result, cx)?);
        }
        let otherwise = match else_result {
            Some(e) => Some(self.expr(e, cx)?),
            None => None,
        };
        let mut t = DataType::Unknown;
        for (_, rt) in results.iter().chain(otherwise.iter()) {
            t = DataType::common(&t, rt, "CASE")?;
        }
        if t == DataType::Unknown {
            t = DataType::Text;
        }
        let mut pairs = Vec::new();
        for (w, r) in whens.into_iter().zip(results) {
            pairs.push((w, self.coerce(r, &t)?));
        }
        let otherwise = match otherwise {
            Some(o) => Some(Box::new(self.coerce(o, &t)?)),
            None => None,
        };
        let operand = match operand {
            Some((o, ot)) => {
                let ot2 = if ot == DataType::Unknown {
                    DataType::Text
                } else {
                    ot.clone()
                };
                Some(Box::new(self.coerce((o, ot), &ot2)?))
            }
            None => None,
        };
        Ok((
            Expr::Case {
                operand,
                whens: pairs,
                otherwise,
            },
            t,
        ))
    }

    fn function(&mut self, f: &ast::Function, cx: &mut Cx) -> Result<(Expr, DataType)> {
        let name = object_name(&f.name)?;
        if f.over.is_some() {
            return Err(SqlError::unsupported("window functions are not supported"));
        }
        if let Some(func) = aggregate_func(&name) {
            return match cx.agg_mode {
                AggMode::Forbidden(NESTED_AGGREGATE_CLAUSE) => Err(SqlError::new(
                    sqlstate::GROUPING_ERROR,
                    "aggregate function calls cannot be nested",
                )),
                AggMode::Forbidden(clause) => Err(SqlError::new(
                    sqlstate::GROUPING_ERROR,
                    format!("aggregate functions are not allowed in {clause}"),
                )),
                AggMode::Detect => {
                    // A placeholder of the call's result type, so the expression around it
                    // resolves its types as it will above the Aggregate node.
                    cx.found_aggregate = true;
                    let call = self.aggregate_call(func, &name, f, cx.scope.clone())?;
                    Ok((Expr::Constant(Value::Null), call.data_type))
                }
                AggMode::Above => Err(SqlError::internal("aggregate not bound above Aggregate")),
            };
        }
        let args: Vec<ast::Expr> = match &f.args {
            ast::FunctionArguments::None => vec![],
            ast::FunctionArguments::List(list) => {
                let mut out = Vec::new();
                for a in &list.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                            out.push(e.clone())
                        }
                        _ => {
                            return Err(SqlError::unsupported(format!(
                                "argument form not supported in {name}()"
                            )))
                        }
                    }
                }
                out
            }
            ast::FunctionArguments::Subquery(_) => {
                return Err(SqlError::unsupported("subquery function arguments"))
            }
        };
        let mut bound = Vec::new();
        for a in &args {
            bound.push(self.expr(a, cx)?);
        }
        match name.as_str() {
            "coalesce" | "greatest" | "least" if !bound.is_empty() => {
                let mut t = DataType::Unknown;
                for (_, bt) in &bound {
                    t = DataType::common(&t, bt, &name.to_uppercase())?;
                }
                if t == DataType::Unknown {
                    t = DataType::Text;
                }
                let mut exprs = Vec::new();
                for b in bound {
                    exprs.push(self.coerce(b, &t)?);
                }
                Ok(if name == "coalesce" {
                    (Expr::Coalesce(exprs), t)
                } else {
                    (Expr::Function(name, exprs), t)
                })
            }
            "nullif" if bound.len() == 2 => {
                let mut it = bound.into_iter();
                let (a, b) = (
                    it.next().unwrap_or_else(null),
                    it.next().unwrap_or_else(null),
                );
                // The result is the `=` operator's left input: the first argument, promoted
                // where no cross-type `=` exists (integer vs numeric, numeric vs float).
                let t = match (&a.1, &b.1) {
                    (DataType::Unknown, _) => None,
                    (x, y) if x.is_numeric() && y.is_numeric() && !same_family(x, y) => {
                        Some(DataType::common(x, y, "NULLIF")?)
                    }
                    (x, _) => Some(x.clone()),
                };
                let (ae, be, ut) = self.unify(a, b, "=")?;
                match t {
                    Some(t) if t != ut => {
                        let ae = self.coerce((ae, ut), &t)?;
                        Ok((Expr::NullIf(Box::new(ae), Box::new(be)), t))
                    }
                    t => Ok((Expr::NullIf(Box::new(ae), Box::new(be)), t.unwrap_or(ut))),
                }
            }
            "nextval" | "currval" | "setval" | "lastval" => self.sequence_call(&name, bound),
            _ => self.call(&name, bound),
        }
    }

    /// `nextval('s')`, `currval('s')`, `setval('s', value [, is_called])`, `lastval()`: the
    /// sequence named by a constant (PostgreSQL resolves its `regclass` argument once).
    fn sequence_call(
        &mut self,
        name: &str,
        mut args: Vec<(Expr, DataType)>,
    ) -> Result<(Expr, DataType)> {
        let arity = match name {
            "lastval" => 0..=0,
            "setval" => 2..=3,
            _ => 1..=1,
        };
        if !arity.contains(&args.len()) {
            let types: Vec<String> = args.iter().map(|(_, t)| t.name()).collect();
            return Err(SqlError::new(
                sqlstate::UNDEFINED_FUNCTION,
                format!("function {name}({}) does not exist", types.join(", ")),
            ));
        }
        let call = if name == "lastval" {
            SeqCall::Last
        } else {
            let sequence = match args.remove(0) {
                (Expr::Constant(Value::Text(s)), _) => sequence_name(&s),
                _ => {
                    return Err(SqlError::unsupported(format!(
                        "{name}() needs a constant sequence name"
                    )))
                }
            };
            match name {
                "nextval" => SeqCall::Next(sequence),
                "currval" => SeqCall::Curr(sequence),
                _ => SeqCall::Set(sequence),
            }
        };
        let targets = [DataType::Int8, DataType::Bool];
        let args = args
            .into_iter()
            .zip(&targets)
            .map(|(arg, target)| self.coerce(arg, target))
            .collect::<Result<Vec<_>>>()?;
        Ok((Expr::Sequence(call, args), DataType::Int8))
    }

    fn call(&mut self, name: &str, args: Vec<(Expr, DataType)>) -> Result<(Expr, DataType)> {
        // character(n) arguments are text without their padding, except where PostgreSQL
        // has a bpchar variant that keeps it (octet_length) or takes any type (concat).
        let args = if matches!(name, "octet_length" | "concat" | "concat_ws") {
            args
        } else {
            args.into_iter()
                .map(|(e, t)| match t {
                    DataType::Char(_) => (char_to_text(e), DataType::Text),
                    t => (e, t),
                })
                .collect()
        };
        let types: Vec<DataType> = args.iter().map(|(_, t)| t.clone()).collect();
        let ret = functions::return_type(name, &types)?;
        let exprs = args.into_iter().map(|(e, _)| e).collect();
        Ok((Expr::Function(name.to_string(), exprs), ret))
    }
}

/// PostgreSQL's checks of an INSERT's width: more values than target columns is always an
/// error; fewer only when the columns were listed (else the rest get their defaults).
fn check_insert_width(given: usize, targets: usize, listed: bool) -> Result<()> {
    if given > targets {
        return Err(SqlError::syntax(
            "INSERT has more expressions than target columns",
        ));
    }
    if given < targets && listed {
        return Err(SqlError::syntax(
            "INSERT has more target columns than expressions",
        ));
    }
    Ok(())
}

fn null() -> (Expr, DataType) {
    (Expr::Constant(Value::Null), DataType::Unknown)
}

fn operator_error(op: &str, l: Option<&DataType>, r: &DataType) -> SqlError {
    let sig = match l {
        Some(l) => format!("{} {op} {}", l.name(), r.name()),
        None => format!("{op} {}", r.name()),
    };
    SqlError::new(
        sqlstate::UNDEFINED_FUNCTION,
        format!("operator does not exist: {sig}"),
    )
    .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts.")
}

fn resolve_unknown(t: DataType) -> DataType {
    if t == DataType::Unknown {
        DataType::Text
    } else {
        t
    }
}

/// The positions of USING column `name` in the left and right scopes (42703 if missing).
fn using_pair(left: &Scope, right: &Scope, name: &str) -> Result<(usize, usize)> {
    let missing = |side: &str| {
        SqlError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column \"{name}\" specified in USING clause does not exist in {side} table"),
        )
    };
    let l = left.resolve(None, name)?.ok_or_else(|| missing("left"))?;
    let r = right.resolve(None, name)?.ok_or_else(|| missing("right"))?;
    Ok((l, r))
}

/// The comparison operator `op` is (`=`, `<>`, `<`, `<=`, `>`, `>=`), if it is one.
fn comparison_op(op: &ast::BinaryOperator) -> Option<BinaryOp> {
    use ast::BinaryOperator as B;
    Some(match op {
        B::Eq => BinaryOp::Eq,
        B::NotEq => BinaryOp::NotEq,
        B::Lt => BinaryOp::Lt,
        B::LtEq => BinaryOp::LtEq,
        B::Gt => BinaryOp::Gt,
        B::GtEq => BinaryOp::GtEq,
        _ => return None,
    })
}

/// Whether two number types have `=` between them without a cast: both integers or both
/// floating point.
/// A sequence's name as a `regclass` text names it: `'s'` and `'S'` are `s`, `'"S"'` is `S`,
/// a schema (`public.s`) is dropped.
fn sequence_name(text: &str) -> String {
    let last = text.rsplit('.').next().unwrap_or(text).trim();
    match last.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => last.to_lowercase(),
    }
}

fn same_family(a: &DataType, b: &DataType) -> bool {
    let integer = |t: &DataType| matches!(t, DataType::Int2 | DataType::Int4 | DataType::Int8);
    let float = |t: &DataType| matches!(t, DataType::Float4 | DataType::Float8);
    let numeric = |t: &DataType| matches!(t, DataType::Numeric(_));
    (integer(a) && integer(b)) || (float(a) && float(b)) || (numeric(a) && numeric(b))
}

/// A `character(n)` value as text: the padding dropped (constants folded).
fn char_to_text(e: Expr) -> Expr {
    match e {
        Expr::Constant(Value::Text(s)) => {
            Expr::Constant(Value::Text(s.trim_end_matches(' ').to_string()))
        }
        e => Expr::Function("rtrim".to_string(), vec![e]),
    }
}

/// `sign (a ^ b)` as sqlparser reads `- a ^ b`, regrouped the way PostgreSQL reads it:
/// `(-a) ^ b`, with the sign (and any signs under it) on the leftmost operand of the
/// left-associative chain of `^`. `None` when no `^` is under the sign.
fn sign_into_power(sign: ast::UnaryOperator, operand: &ast::Expr) -> Option<ast::Expr> {
    let operand = match operand {
        ast::Expr::UnaryOp {
            op: inner @ (ast::UnaryOperator::Minus | ast::UnaryOperator::Plus),
            expr,
        } => sign_into_power(*inner, expr).unwrap_or_else(|| operand.clone()),
        other => other.clone(),
    };
    fn push(sign: ast::UnaryOperator, e: ast::Expr) -> ast::Expr {
        match e {
            ast::Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::PGExp,
                right,
            } => ast::Expr::BinaryOp {
                left: Box::new(push(sign, *left)),
                op: ast::BinaryOperator::PGExp,
                right,
            },
            other => ast::Expr::UnaryOp {
                op: sign,
                expr: Box::new(other),
            },
        }
    }
    let is_power = matches!(
        operand,
        ast::Expr::BinaryOp {
            op: ast::BinaryOperator::PGExp,
            ..
        }
    );
    is_power.then(|| push(sign, operand))
}

fn is_default_keyword(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

fn sort_key(expr: Expr, o: &ast::OrderByExpr) -> SortKey {
    let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
    SortKey {
        expr,
        desc,
        // PostgreSQL: NULLS LAST for ASC, NULLS FIRST for DESC, unless said.
        nulls_first: o.options.nulls_first.unwrap_or(desc),
    }
}

fn table_scope(table: &Table, qualifier: &str) -> Scope {
    Scope {
        columns: table
            .columns
            .iter()
            .map(|c| ScopeColumn {
                table: Some(qualifier.to_string()),
                name: c.name.clone(),
                data_type: c.data_type.clone(),
                table_id: Some(table.id),
                merged: false,
            })
            .collect(),
    }
}

/// Applies a `(a, b, ...)` column alias list to a plan's output; `what` names the relation
/// in the error for too many aliases (`table "x"`, `WITH query "c"`).
fn rename_columns(
    plan: Plan,
    columns: &mut [OutputColumn],
    aliases: &[ast::TableAliasColumnDef],
    what: &str,
) -> Result<Plan> {
    if aliases.is_empty() {
        return Ok(plan);
    }
    if aliases.len() > columns.len() {
        return Err(SqlError::new(
            sqlstate::INVALID_COLUMN_REFERENCE,
            format!(
                "{what} has {} columns available but {} columns specified",
                columns.len(),
                aliases.len()
            ),
        ));
    }
    for (c, a) in columns.iter_mut().zip(aliases) {
        c.name = ident_name(&a.name);
    }
    Ok(Plan::Project {
        exprs: (0..columns.len()).map(Expr::Column).collect(),
        input: Box::new(plan),
        columns: columns.to_vec(),
    })
}

/// Casts a plan's columns to the given types (set operation branches).
fn cast_plan(plan: Plan, have: &[OutputColumn], want: &[OutputColumn]) -> Plan {
    if have
        .iter()
        .zip(want)
        .all(|(h, w)| h.data_type == w.data_type)
    {
        return plan;
    }
    let exprs = have
        .iter()
        .zip(want)
        .enumerate()
        .map(|(i, (h, w))| {
            if h.data_type == w.data_type {
                Expr::Column(i)
            } else {
                Expr::Cast(Box::new(Expr::Column(i)), w.data_type.clone())
            }
        })
        .collect();
    Plan::Project {
        input: Box::new(plan),
        exprs,
        columns: want.to_vec(),
    }
}
