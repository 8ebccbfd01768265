//! What a query over several datanodes pushes down to them (design brief §7).
//!
//! A gathered query ([`crate::gather`]) is answered at the coordinator, but the datanodes do
//! as much of the work as can be done on each node's rows alone:
//!
//! - [`partial`]: a one-table aggregate query runs on every node as a partial aggregation
//!   (`count`, `sum`, `min`, `max`; `avg` as sum and count) grouped by the query's GROUP BY
//!   expressions, with the query's WHERE; the coordinator combines the partial rows (sums of
//!   counts and sums, min of mins, ...) and applies HAVING, ORDER BY, DISTINCT and LIMIT.
//! - [`fetch`]: otherwise each table is fetched with only the columns the query names, with
//!   the top-level WHERE conditions that name only that table (not under an outer join), and,
//!   for a one-table query without aggregation, its ORDER BY with LIMIT (as `LIMIT n + offset`
//!   on every node). The coordinator evaluates the whole query again over what came back, so
//!   pushing a condition only ever removes rows that could not have contributed.
//!
//! Everything here works on the statement after its parameters were replaced by typed
//! literals ([`crate::remote::with_params`]), and produces SQL text.

use rxc_common::cluster::{Distribution, Locator};
use rxc_common::sql::binder::{ident_name, object_name};
use rxc_common::sql::catalog::Table;
use rxc_common::sql::error::{Result, SqlError};
use rxc_common::sql::DataType;
use sqlparser::ast::{self, Visit, VisitMut, Visitor, VisitorMut};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::collections::HashSet;
use std::ops::ControlFlow;

/// The name of the relation a combining query reads the partial rows from.
pub const PARTIAL_TABLE: &str = "__rxc_partial";

/// Functions whose value may change between two calls: a condition calling one is evaluated
/// once, at the coordinator.
const VOLATILE: &[&str] = &[
    "random",
    "nextval",
    "currval",
    "setval",
    "lastval",
    "clock_timestamp",
    "timeofday",
    "gen_random_uuid",
    "txid_current",
];

/// Whether `stmt` calls a volatile function: an INSERT's values calling one are computed at
/// the coordinator, once (replicas store the same value; the session's `currval` and
/// `lastval` answer what its `nextval` returned).
pub fn calls_volatile(stmt: &ast::Statement) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(stmt, |e| {
        if let ast::Expr::Function(f) = e {
            if VOLATILE.contains(&object_name(&f.name).unwrap_or_default().as_str()) {
                found = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    found
}

/// The aggregates that split into partial aggregates.
const SPLITTABLE: &[&str] = &["count", "sum", "min", "max", "avg"];

/// The datanodes on which query `stmt` over `tables` (each with its distribution; every
/// table the query names) can run whole, each node joining only its own rows, so that the
/// nodes' answers together are the query's rows (before any aggregation, ordering or limit):
/// the tables distributed by HASH or MODULO alike — same nodes, same key type — and joined on
/// their distribution keys (equalities in inner joins' ON, in WHERE, or in the ON of a LEFT
/// JOIN of a distributed table), the others replicated on every one of those nodes and never
/// the preserved side of an outer join. `None` when that does not hold.
pub fn colocated(stmt: &ast::Statement, tables: &[(&Table, &Distribution)]) -> Option<Vec<String>> {
    let ast::Statement::Query(query) = stmt else {
        return None;
    };
    let ast::SetExpr::Select(select) = &*query.body else {
        return None;
    };
    if query.with.is_some() || !query.locks.is_empty() {
        return None;
    }
    if tables.iter().any(|(t, _)| occurrences(stmt, &t.name) != 1) {
        return None;
    }
    let plain: Vec<&Table> = tables.iter().map(|(t, _)| *t).collect();
    let bindings = from_bindings(select, &plain);
    if bindings.len() != tables.len() || bindings.iter().any(|(_, t)| t.is_none()) {
        return None;
    }
    let index_of = |t: &Table| tables.iter().position(|(x, _)| x.name == t.name);
    let key = |i: usize| match tables[i].1.locator {
        Locator::Hash(c) | Locator::Modulo(c) => Some(c),
        _ => None,
    };
    let distributed: Vec<usize> = (0..tables.len()).filter(|&i| key(i).is_some()).collect();
    let &lead = distributed.first()?;
    let (lead_table, lead_dist) = tables[lead];
    let lead_type = &lead_table.columns[key(lead)?].data_type;
    for (i, (t, d)) in tables.iter().enumerate() {
        let fits = match (&d.locator, &lead_dist.locator) {
            (Locator::Replication, _) => lead_dist.nodes.iter().all(|n| d.nodes.contains(n)),
            (Locator::Hash(c), Locator::Hash(_)) | (Locator::Modulo(c), Locator::Modulo(_)) => {
                d.nodes == lead_dist.nodes && t.columns[*c].data_type == *lead_type
            }
            _ => false,
        };
        if !fits || (key(i).is_none() && d.locator != Locator::Replication) {
            return None;
        }
    }
    // The column a reference names: (table, column).
    let column_of = |e: &ast::Expr| -> Option<(usize, usize)> {
        match e {
            ast::Expr::Identifier(i) => {
                let name = ident_name(i);
                let mut found = tables
                    .iter()
                    .enumerate()
                    .filter_map(|(k, (t, _))| t.column_index(&name).map(|c| (k, c)));
                let first = found.next()?;
                found.next().is_none().then_some(first)
            }
            ast::Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let binding = ident_name(&parts[0]);
                let (_, t) = bindings.iter().find(|(b, _)| *b == binding)?;
                let k = index_of(t.as_ref()?)?;
                Some((k, tables[k].0.column_index(&ident_name(&parts[1]))?))
            }
            _ => None,
        }
    };
    // An equality of two distributed tables' keys: the two tables.
    let key_tie = |e: &ast::Expr| -> Option<(usize, usize)> {
        let ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::Eq,
            right,
        } = e
        else {
            return None;
        };
        let ((a, ca), (b, cb)) = (column_of(left)?, column_of(right)?);
        (key(a) == Some(ca) && key(b) == Some(cb)).then_some((a, b))
    };
    // The conditions that tie rows of two tables together on one node.
    let mut ties: Vec<&ast::Expr> = select.selection.iter().flat_map(conjuncts).collect();
    let table_of = |factor: &ast::TableFactor| match factor {
        ast::TableFactor::Table { name, .. } => object_name(name)
            .ok()
            .and_then(|n| tables.iter().position(|(t, _)| t.name == n)),
        _ => None,
    };
    for from in &select.from {
        let mut before = vec![table_of(&from.relation)?];
        for join in &from.joins {
            let right = table_of(&join.relation)?;
            let on: Vec<&ast::Expr> = match join_constraint(&join.join_operator) {
                Some(ast::JoinConstraint::On(e)) => conjuncts(e),
                Some(ast::JoinConstraint::None) => Vec::new(),
                _ => return None,
            };
            match &join.join_operator {
                op if is_inner(op) => ties.extend(on),
                ast::JoinOperator::Left(_) | ast::JoinOperator::LeftOuter(_) => {
                    // The right side is optional: replicated, it is whole on every node;
                    // distributed, its ON must tie its key to a distributed table's key on
                    // the preserved side (so its matches are on that row's node).
                    if key(right).is_some() {
                        let tied = on.iter().filter_map(|e| key_tie(e)).any(|(a, b)| {
                            (a == right && before.contains(&b))
                                || (b == right && before.contains(&a))
                        });
                        if !tied {
                            return None;
                        }
                        ties.extend(on);
                    }
                }
                _ => return None,
            }
            before.push(right);
        }
    }
    let mut group: Vec<usize> = (0..tables.len()).collect();
    fn root(group: &mut [usize], mut i: usize) -> usize {
        while group[i] != i {
            group[i] = group[group[i]];
            i = group[i];
        }
        i
    }
    for (a, b) in ties.iter().filter_map(|e| key_tie(e)) {
        let (ra, rb) = (root(&mut group, a), root(&mut group, b));
        group[ra] = rb;
    }
    let lead_root = root(&mut group, lead);
    for &i in &distributed {
        if root(&mut group, i) != lead_root {
            return None;
        }
    }
    Some(lead_dist.nodes.clone())
}

/// Parses SQL text built here (or by the rest of the coordinator) into one statement.
pub fn parse_statement(sql: &str) -> Result<ast::Statement> {
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| SqlError::internal(format!("generated SQL does not parse: {e}: {sql}")))?;
    match statements.len() {
        1 => Ok(statements.remove(0)),
        _ => Err(SqlError::internal(format!(
            "generated SQL is not one statement: {sql}"
        ))),
    }
}

/// Quotes an identifier for SQL text.
pub use rxc_common::sql::binder::quote_ident as quote;

/// One table's rows as a gathered query needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    /// The positions of the columns fetched, in the order the remote query returns them; the
    /// others are NULL at the coordinator (the query does not name them).
    pub columns: Vec<usize>,
    /// The query every node holding the table runs.
    pub sql: String,
}

/// How `table` is fetched for gathered query `stmt`, which names the tables `tables` (each
/// table's descriptor, by name).
pub fn fetch(stmt: &ast::Statement, table: &Table, tables: &[&Table]) -> Fetch {
    let columns = needed_columns(stmt, table);
    let list = columns
        .iter()
        .map(|&c| quote(&table.columns[c].name))
        .collect::<Vec<_>>()
        .join(", ");
    let mut factor = quote(&table.name);
    let mut conditions = Vec::new();
    let mut tail = String::new();
    if let Some((select, query, relation)) = top_level_factor(stmt, table) {
        factor = relation.to_string();
        conditions = pushable_conditions(select, table, tables, &binding_name(relation, table));
        tail = order_and_limit(query, select, table).unwrap_or_default();
    }
    let mut sql = format!("SELECT {list} FROM {factor}");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(&tail);
    Fetch { columns, sql }
}

/// The positions of the columns of `table` that `stmt` may read: every column whose name
/// appears in the statement, or all of them when it has a wildcard, a whole-row reference,
/// NATURAL or USING joins. At least one column (a query naming none still counts rows).
fn needed_columns(stmt: &ast::Statement, table: &Table) -> Vec<usize> {
    struct Names {
        names: HashSet<String>,
        all: bool,
    }
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_query(&mut self, query: &ast::Query) -> ControlFlow<()> {
            let mut bodies = vec![&*query.body];
            while let Some(body) = bodies.pop() {
                match body {
                    ast::SetExpr::Select(s) => {
                        if s.projection.iter().any(|i| {
                            matches!(
                                i,
                                ast::SelectItem::Wildcard(_)
                                    | ast::SelectItem::QualifiedWildcard(..)
                            )
                        }) {
                            self.all = true;
                        }
                        for join in s.from.iter().flat_map(|f| &f.joins) {
                            if let Some(
                                ast::JoinConstraint::Natural | ast::JoinConstraint::Using(_),
                            ) = join_constraint(&join.join_operator)
                            {
                                self.all = true;
                            }
                        }
                    }
                    ast::SetExpr::SetOperation { left, right, .. } => {
                        bodies.push(left);
                        bodies.push(right);
                    }
                    _ => {}
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &ast::Expr) -> ControlFlow<()> {
            match expr {
                ast::Expr::Identifier(i) => {
                    self.names.insert(ident_name(i));
                }
                ast::Expr::CompoundIdentifier(parts) => {
                    self.names.extend(parts.last().map(ident_name));
                }
                ast::Expr::Wildcard(_) | ast::Expr::QualifiedWildcard(..) => self.all = true,
                ast::Expr::Function(f) => {
                    if let ast::FunctionArguments::List(list) = &f.args {
                        if list.args.iter().any(|a| {
                            matches!(
                                a,
                                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::QualifiedWildcard(
                                    _
                                ))
                            )
                        }) {
                            self.all = true;
                        }
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut names = Names {
        names: HashSet::new(),
        all: false,
    };
    let _ = stmt.visit(&mut names);
    // A bare table name or alias used as a value is a whole-row reference (`SELECT t FROM t`);
    // a name that is both a column and the table is a column, as PostgreSQL resolves it.
    if names.all || (names.names.contains(&table.name) && table.column_index(&table.name).is_none())
    {
        return (0..table.columns.len()).collect();
    }
    let columns: Vec<usize> = (0..table.columns.len())
        .filter(|&c| names.names.contains(&table.columns[c].name))
        .collect();
    if columns.is_empty() {
        vec![0]
    } else {
        columns
    }
}

fn join_constraint(op: &ast::JoinOperator) -> Option<&ast::JoinConstraint> {
    use ast::JoinOperator as J;
    match op {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::CrossJoin(c)
        | J::Semi(c)
        | J::LeftSemi(c)
        | J::RightSemi(c)
        | J::Anti(c)
        | J::LeftAnti(c)
        | J::RightAnti(c)
        | J::StraightJoin(c) => Some(c),
        _ => None,
    }
}

fn is_inner(op: &ast::JoinOperator) -> bool {
    matches!(
        op,
        ast::JoinOperator::Join(_) | ast::JoinOperator::Inner(_) | ast::JoinOperator::CrossJoin(_)
    )
}

/// How many times `stmt` names relation `name`.
fn occurrences(stmt: &ast::Statement, name: &str) -> usize {
    let mut n = 0;
    let _ = ast::visit_relations(stmt, |r| {
        if object_name(r).is_ok_and(|r| r == name) {
            n += 1;
        }
        ControlFlow::<()>::Continue(())
    });
    n
}

/// The top-level SELECT of `stmt`, its query and the FROM item that is `table`, when the
/// table is named once, in that FROM, with only inner joins around it (so its conditions in
/// WHERE can be applied before the joins).
fn top_level_factor<'a>(
    stmt: &'a ast::Statement,
    table: &Table,
) -> Option<(&'a ast::Select, &'a ast::Query, &'a ast::TableFactor)> {
    let ast::Statement::Query(query) = stmt else {
        return None;
    };
    if query.with.is_some() || occurrences(stmt, &table.name) != 1 {
        return None;
    }
    let ast::SetExpr::Select(select) = &*query.body else {
        return None;
    };
    if select
        .from
        .iter()
        .flat_map(|f| &f.joins)
        .any(|j| !is_inner(&j.join_operator))
    {
        return None;
    }
    let factor = select
        .from
        .iter()
        .flat_map(|f| std::iter::once(&f.relation).chain(f.joins.iter().map(|j| &j.relation)))
        .find(|f| matches!(f, ast::TableFactor::Table { name, .. } if object_name(name).is_ok_and(|n| n == table.name)))?;
    Some((select, query, factor))
}

/// The name a FROM item is referred to by: its alias, else the table name.
fn binding_name(factor: &ast::TableFactor, table: &Table) -> String {
    match factor {
        ast::TableFactor::Table {
            alias: Some(alias), ..
        } => ident_name(&alias.name),
        _ => table.name.clone(),
    }
}

/// The FROM items of `select` as (binding name, table when it is one of `tables`).
fn from_bindings<'a>(
    select: &ast::Select,
    tables: &[&'a Table],
) -> Vec<(String, Option<&'a Table>)> {
    select
        .from
        .iter()
        .flat_map(|f| std::iter::once(&f.relation).chain(f.joins.iter().map(|j| &j.relation)))
        .map(|factor| match factor {
            ast::TableFactor::Table { name, alias, .. } => {
                let t = object_name(name)
                    .ok()
                    .and_then(|n| tables.iter().copied().find(|t| t.name == n));
                let binding = match (alias, t) {
                    (Some(a), _) => ident_name(&a.name),
                    (None, Some(t)) => t.name.clone(),
                    (None, None) => String::new(),
                };
                (binding, t)
            }
            ast::TableFactor::Derived {
                alias: Some(alias), ..
            } => (ident_name(&alias.name), None),
            _ => (String::new(), None),
        })
        .collect()
}

/// The top-level ANDed conditions of `e`.
fn conjuncts(e: &ast::Expr) -> Vec<&ast::Expr> {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            let mut v = conjuncts(left);
            v.extend(conjuncts(right));
            v
        }
        ast::Expr::Nested(inner) => conjuncts(inner),
        other => vec![other],
    }
}

/// Whether `e` reads nothing but columns of `table` (bound as `binding` among the FROM items
/// `bindings`), has no subquery, no aggregate or window and calls no volatile function.
fn only_reads(
    e: &ast::Expr,
    table: &Table,
    binding: &str,
    bindings: &[(String, Option<&Table>)],
) -> bool {
    let unambiguous = |column: &str| {
        table.column_index(column).is_some()
            && bindings
                .iter()
                .all(|(b, t)| b == binding || t.is_some_and(|t| t.column_index(column).is_none()))
    };
    let mut ok = true;
    let _ = ast::visit_expressions(e, |x| {
        let fine = match x {
            ast::Expr::Identifier(i) => unambiguous(&ident_name(i)),
            ast::Expr::CompoundIdentifier(parts) => {
                let n = parts.len();
                n >= 2
                    && ident_name(&parts[n - 2]) == binding
                    && table.column_index(&ident_name(&parts[n - 1])).is_some()
            }
            ast::Expr::Subquery(_)
            | ast::Expr::Exists { .. }
            | ast::Expr::InSubquery { .. }
            | ast::Expr::Wildcard(_)
            | ast::Expr::QualifiedWildcard(..) => false,
            ast::Expr::Value(v) => !matches!(v.value, ast::Value::Placeholder(_)),
            ast::Expr::Function(f) => {
                let name = object_name(&f.name).unwrap_or_default();
                f.over.is_none()
                    && f.filter.is_none()
                    && !VOLATILE.contains(&name.as_str())
                    && !SPLITTABLE.contains(&name.as_str())
                    && !matches!(f.args, ast::FunctionArguments::Subquery(_))
            }
            _ => true,
        };
        if fine {
            ControlFlow::Continue(())
        } else {
            ok = false;
            ControlFlow::Break(())
        }
    });
    ok
}

/// The conditions of the WHERE clause of `select` that can run on `table`'s nodes, as text.
fn pushable_conditions(
    select: &ast::Select,
    table: &Table,
    tables: &[&Table],
    binding: &str,
) -> Vec<String> {
    let Some(selection) = &select.selection else {
        return Vec::new();
    };
    let bindings = from_bindings(select, tables);
    conjuncts(selection)
        .into_iter()
        .filter(|c| only_reads(c, table, binding, &bindings))
        .map(|c| c.to_string())
        .collect()
}

/// `ORDER BY ... LIMIT n` for a one-table query without aggregation whose ORDER BY names
/// only columns (and LIMIT/OFFSET are numbers): every node returns its first `limit + offset`
/// rows in that order.
fn order_and_limit(query: &ast::Query, select: &ast::Select, table: &Table) -> Option<String> {
    if select.from.len() != 1
        || !select.from[0].joins.is_empty()
        || select.distinct.is_some()
        || select.having.is_some()
        || !matches!(&select.group_by, ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
        || query.fetch.is_some()
        || !query.locks.is_empty()
    {
        return None;
    }
    // A function call in the projection may be an aggregate or a window function.
    let mut calls = false;
    for item in &select.projection {
        let _ = ast::visit_expressions(item, |e| {
            if matches!(e, ast::Expr::Function(_) | ast::Expr::Subquery(_)) {
                calls = true;
            }
            ControlFlow::<()>::Continue(())
        });
    }
    if calls {
        return None;
    }
    let number = |e: &ast::Expr| match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse::<u64>().ok(),
            _ => None,
        },
        _ => None,
    };
    let limit = match &query.limit_clause {
        Some(ast::LimitClause::LimitOffset {
            limit: Some(limit),
            offset,
            limit_by,
        }) if limit_by.is_empty() => {
            let offset = match offset {
                Some(o) => number(&o.value)?,
                None => 0,
            };
            number(limit)?.checked_add(offset)?
        }
        _ => return None,
    };
    let aliases: Vec<String> = select
        .projection
        .iter()
        .filter_map(|i| match i {
            ast::SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
            _ => None,
        })
        .collect();
    let mut text = String::new();
    if let Some(order_by) = &query.order_by {
        let ast::OrderByKind::Expressions(exprs) = &order_by.kind else {
            return None;
        };
        let mut items = Vec::new();
        for o in exprs {
            let column = match &o.expr {
                ast::Expr::Identifier(i) => {
                    let name = ident_name(i);
                    if aliases.contains(&name) {
                        return None;
                    }
                    name
                }
                ast::Expr::CompoundIdentifier(parts) if parts.len() == 2 => ident_name(&parts[1]),
                _ => return None,
            };
            table.column_index(&column)?;
            if o.with_fill.is_some() {
                return None;
            }
            items.push(o.to_string());
        }
        text.push_str(" ORDER BY ");
        text.push_str(&items.join(", "));
    }
    text.push_str(&format!(" LIMIT {limit}"));
    Some(text)
}

/// One aggregate of a query split into partial aggregates.
#[derive(Debug, Clone, PartialEq)]
enum Aggregate {
    /// `count(*)` (no argument) or `count(e)`.
    Count(Option<ast::Expr>),
    Sum(ast::Expr),
    Min(ast::Expr),
    Max(ast::Expr),
    /// Partial sum and count.
    Avg(ast::Expr),
}

/// A one-table aggregate query split into a partial aggregation every node runs and a
/// combining query the coordinator runs over the partial rows.
#[derive(Debug, Clone)]
pub struct Partial {
    /// The query each node runs: group expressions, then the partial aggregates, as columns
    /// `__rxc_c0`, `__rxc_c1`, ...
    pub remote: String,
    groups: usize,
    aggregates: Vec<Aggregate>,
    /// The combining query with `__rxc_g<i>` for group expression i and `__rxc_a<k>` for
    /// aggregate k, resolved by [`Partial::combine`] once the partial columns' types are known.
    template: ast::Query,
}

/// Whether `e` contains a subquery, a window function or an aggregate.
fn has_aggregate_or_subquery(e: &ast::Expr) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(e, |x| {
        found = match x {
            ast::Expr::Subquery(_) | ast::Expr::Exists { .. } | ast::Expr::InSubquery { .. } => {
                true
            }
            ast::Expr::Function(f) => {
                f.over.is_some()
                    || object_name(&f.name).is_ok_and(|n| SPLITTABLE.contains(&n.as_str()))
            }
            _ => false,
        };
        if found {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    found
}

/// The aggregate a function call is, if it is one that splits.
fn splittable(f: &ast::Function) -> Option<Aggregate> {
    let name = object_name(&f.name).ok()?;
    if !SPLITTABLE.contains(&name.as_str())
        || f.over.is_some()
        || f.filter.is_some()
        || !f.within_group.is_empty()
        || !matches!(f.parameters, ast::FunctionArguments::None)
    {
        return None;
    }
    let ast::FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if list.duplicate_treatment == Some(ast::DuplicateTreatment::Distinct)
        || !list.clauses.is_empty()
    {
        return None;
    }
    let arg = match list.args.as_slice() {
        [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)] if name == "count" => None,
        [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] => {
            if has_aggregate_or_subquery(e) {
                return None;
            }
            Some(e.clone())
        }
        _ => return None,
    };
    Some(match (name.as_str(), arg) {
        ("count", a) => Aggregate::Count(a),
        ("sum", Some(a)) => Aggregate::Sum(a),
        ("min", Some(a)) => Aggregate::Min(a),
        ("max", Some(a)) => Aggregate::Max(a),
        ("avg", Some(a)) => Aggregate::Avg(a),
        _ => return None,
    })
}

fn ident(name: String) -> ast::Expr {
    ast::Expr::Identifier(ast::Ident::new(name))
}

/// Replaces group expressions and aggregates by placeholders; gives up (`failed`) on
/// anything that does not split.
struct Splitter<'a> {
    groups: &'a [ast::Expr],
    aggregates: Vec<Aggregate>,
    /// Output names ORDER BY may refer to (left alone there).
    keep: HashSet<String>,
    failed: bool,
}

impl VisitorMut for Splitter<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<()> {
        if let ast::Expr::Identifier(i) = expr {
            if self.keep.contains(&ident_name(i)) {
                return ControlFlow::Continue(());
            }
        }
        if let Some(g) = self.groups.iter().position(|g| g == expr) {
            *expr = ident(format!("__rxc_g{g}"));
            return ControlFlow::Continue(());
        }
        match expr {
            ast::Expr::Function(f) => {
                let name = object_name(&f.name).unwrap_or_default();
                if SPLITTABLE.contains(&name.as_str()) || f.over.is_some() {
                    match splittable(f) {
                        Some(a) => {
                            let k = match self.aggregates.iter().position(|x| *x == a) {
                                Some(k) => k,
                                None => {
                                    self.aggregates.push(a);
                                    self.aggregates.len() - 1
                                }
                            };
                            *expr = ident(format!("__rxc_a{k}"));
                        }
                        None => self.failed = true,
                    }
                } else if VOLATILE.contains(&name.as_str()) {
                    self.failed = true;
                }
            }
            ast::Expr::Subquery(_) | ast::Expr::Exists { .. } | ast::Expr::InSubquery { .. } => {
                self.failed = true
            }
            _ => {}
        }
        if self.failed {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Splits aggregate query `stmt` over `tables` (its output columns named `names`), if it has
/// that shape: one table without joins — or, when the caller made sure they are co-located
/// ([`colocated`]: each node joins only its own rows), the tables joined in its FROM — no
/// CTE, aggregates that split, GROUP BY plain expressions (positions allowed), no window
/// functions or subqueries.
pub fn partial(stmt: &ast::Statement, tables: &[&Table], names: &[String]) -> Option<Partial> {
    let ast::Statement::Query(query) = stmt else {
        return None;
    };
    let ast::SetExpr::Select(select) = &*query.body else {
        return None;
    };
    if query.with.is_some()
        || !query.locks.is_empty()
        || query.fetch.is_some()
        || select.from.is_empty()
        || tables.len() == 1 && (select.from.len() != 1 || !select.from[0].joins.is_empty())
        || select
            .from
            .iter()
            .flat_map(|f| std::iter::once(&f.relation).chain(f.joins.iter().map(|j| &j.relation)))
            .any(|f| !matches!(f, ast::TableFactor::Table { .. }))
        || !matches!(select.distinct, None | Some(ast::Distinct::Distinct))
        || select.top.is_some()
        || select.into.is_some()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.sort_by.is_empty()
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || select.projection.len() != names.len()
    {
        return None;
    }
    let ast::GroupByExpr::Expressions(group_exprs, modifiers) = &select.group_by else {
        return None;
    };
    if !modifiers.is_empty() {
        return None;
    }
    let items: Vec<&ast::Expr> = select
        .projection
        .iter()
        .map(|i| match i {
            ast::SelectItem::UnnamedExpr(e) => Some(e),
            ast::SelectItem::ExprWithAlias { expr, .. } => Some(expr),
            _ => None,
        })
        .collect::<Option<_>>()?;
    // GROUP BY 2 and GROUP BY <output name> mean that output column's expression.
    let mut groups = Vec::new();
    for g in group_exprs {
        let resolved = match g {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => {
                    let i: usize = n.parse().ok()?;
                    (*items.get(i.checked_sub(1)?)?).clone()
                }
                _ => g.clone(),
            },
            ast::Expr::Identifier(i)
                if tables
                    .iter()
                    .all(|t| t.column_index(&ident_name(i)).is_none())
                    && names.contains(&ident_name(i)) =>
            {
                let k = names.iter().position(|n| *n == ident_name(i))?;
                (*items[k]).clone()
            }
            _ => g.clone(),
        };
        if has_aggregate_or_subquery(&resolved) {
            return None;
        }
        groups.push(resolved);
    }
    let mut splitter = Splitter {
        groups: &groups,
        aggregates: Vec::new(),
        keep: HashSet::new(),
        failed: false,
    };
    let mut projection = Vec::new();
    for (e, name) in items.iter().zip(names) {
        let mut e = (*e).clone();
        let _ = VisitMut::visit(&mut e, &mut splitter);
        projection.push(ast::SelectItem::ExprWithAlias {
            expr: e,
            alias: ast::Ident::with_quote('"', name.clone()),
        });
    }
    let mut having = select.having.clone();
    if let Some(h) = &mut having {
        let _ = VisitMut::visit(h, &mut splitter);
    }
    splitter.keep = names.iter().cloned().collect();
    let mut order_by = query.order_by.clone();
    if let Some(o) = &mut order_by {
        let _ = VisitMut::visit(o, &mut splitter);
    }
    if splitter.failed || splitter.aggregates.is_empty() && groups.is_empty() {
        return None;
    }
    let aggregates = splitter.aggregates;
    // What remains may not read the table's columns directly (only through the groups).
    let mut template_select = (**select).clone();
    template_select.projection = projection;
    template_select.having = having;
    template_select.selection = None;
    template_select.from = vec![ast::TableWithJoins {
        relation: ast::TableFactor::Table {
            name: ast::ObjectName::from(vec![ast::Ident::new(PARTIAL_TABLE)]),
            alias: None,
            args: None,
            with_hints: vec![],
            version: None,
            with_ordinality: false,
            partitions: vec![],
            json_path: None,
            sample: None,
            index_hints: vec![],
        },
        joins: vec![],
    }];
    template_select.group_by = ast::GroupByExpr::Expressions(
        (0..groups.len())
            .map(|g| ident(format!("__rxc_g{g}")))
            .collect(),
        vec![],
    );
    let mut reads_table = false;
    let check = |e: &ast::Expr, keep: &[String], reads: &mut bool| {
        let _ = ast::visit_expressions(e, |x| {
            match x {
                ast::Expr::Identifier(i) => {
                    let n = ident_name(i);
                    if !n.starts_with("__rxc_") && !keep.contains(&n) {
                        *reads = true;
                    }
                }
                ast::Expr::CompoundIdentifier(_) => *reads = true,
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
    };
    for item in &template_select.projection {
        if let ast::SelectItem::ExprWithAlias { expr, .. } = item {
            check(expr, &[], &mut reads_table);
        }
    }
    if let Some(h) = &template_select.having {
        check(h, &[], &mut reads_table);
    }
    if let Some(ast::OrderBy {
        kind: ast::OrderByKind::Expressions(exprs),
        ..
    }) = &order_by
    {
        for o in exprs {
            check(&o.expr, names, &mut reads_table);
        }
    }
    if reads_table {
        return None;
    }
    let mut template = (**query).clone();
    template.body = Box::new(ast::SetExpr::Select(Box::new(template_select)));
    template.order_by = order_by;
    // The remote query.
    let mut columns: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    for a in &aggregates {
        match a {
            Aggregate::Count(None) => columns.push("count(*)".into()),
            Aggregate::Count(Some(e)) => columns.push(format!("count({e})")),
            Aggregate::Sum(e) => columns.push(format!("sum({e})")),
            Aggregate::Min(e) => columns.push(format!("min({e})")),
            Aggregate::Max(e) => columns.push(format!("max({e})")),
            Aggregate::Avg(e) => {
                columns.push(format!("sum({e})"));
                columns.push(format!("count({e})"));
            }
        }
    }
    let list = columns
        .iter()
        .enumerate()
        .map(|(j, c)| format!("{c} AS __rxc_c{j}"))
        .collect::<Vec<_>>()
        .join(", ");
    let from = select
        .from
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut remote = format!("SELECT {list} FROM {from}");
    if let Some(w) = &select.selection {
        remote.push_str(&format!(" WHERE {w}"));
    }
    if !groups.is_empty() {
        let g = groups
            .iter()
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        remote.push_str(&format!(" GROUP BY {g}"));
    }
    Some(Partial {
        remote,
        groups: groups.len(),
        aggregates,
        template,
    })
}

impl Partial {
    /// The partial columns' count.
    pub fn width(&self) -> usize {
        self.groups
            + self
                .aggregates
                .iter()
                .map(|a| if matches!(a, Aggregate::Avg(_)) { 2 } else { 1 })
                .sum::<usize>()
    }

    /// The combining query over [`PARTIAL_TABLE`], whose columns `__rxc_c<j>` have `types`
    /// (as the remote query returns them).
    pub fn combine(&self, types: &[DataType]) -> Result<ast::Statement> {
        if types.len() != self.width() {
            return Err(SqlError::internal("partial aggregation: column count"));
        }
        let mut finals = Vec::new();
        let mut j = self.groups;
        for a in &self.aggregates {
            let c = format!("__rxc_c{j}");
            let text = match a {
                Aggregate::Count(_) => format!("CAST(COALESCE(sum({c}), 0) AS bigint)"),
                Aggregate::Sum(_) => format!("CAST(sum({c}) AS {})", types[j]),
                Aggregate::Min(_) => format!("min({c})"),
                Aggregate::Max(_) => format!("max({c})"),
                Aggregate::Avg(_) => {
                    let n = format!("__rxc_c{}", j + 1);
                    let ty = if matches!(types[j], DataType::Float4 | DataType::Float8) {
                        "double precision"
                    } else {
                        "numeric"
                    };
                    j += 1;
                    format!(
                        "CASE WHEN sum({n}) = 0 THEN NULL ELSE \
                         CAST(sum({c}) AS {ty}) / CAST(sum({n}) AS {ty}) END"
                    )
                }
            };
            j += 1;
            finals.push(parse_expr(&text)?);
        }
        struct Resolve<'a> {
            finals: &'a [ast::Expr],
        }
        impl VisitorMut for Resolve<'_> {
            type Break = ();
            fn post_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<()> {
                if let ast::Expr::Identifier(i) = expr {
                    if let Some(g) = i.value.strip_prefix("__rxc_g") {
                        if let Ok(g) = g.parse::<usize>() {
                            *expr = ident(format!("__rxc_c{g}"));
                        }
                    } else if let Some(k) = i.value.strip_prefix("__rxc_a") {
                        if let Some(f) = k.parse::<usize>().ok().and_then(|k| self.finals.get(k)) {
                            *expr = ast::Expr::Nested(Box::new(f.clone()));
                        }
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut query = self.template.clone();
        let _ = VisitMut::visit(&mut query, &mut Resolve { finals: &finals });
        Ok(ast::Statement::Query(Box::new(query)))
    }
}

/// Parses one SQL expression.
pub fn parse_expr(text: &str) -> Result<ast::Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::internal(format!("generated SQL does not parse: {e}: {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxc_common::sql::catalog::Column;

    fn table(name: &str, columns: &[(&str, DataType)]) -> Table {
        Table {
            id: 1,
            name: name.into(),
            columns: columns
                .iter()
                .map(|(n, t)| Column {
                    name: (*n).into(),
                    data_type: t.clone(),
                    nullable: true,
                    default: None,
                })
                .collect(),
            primary_key: vec![0],
            primary_key_name: None,
            indexes: vec![],
            checks: vec![],
        }
    }

    fn t1() -> Table {
        table(
            "t1",
            &[
                ("a", DataType::Int4),
                ("b", DataType::Int4),
                ("c", DataType::Text),
                ("d", DataType::Float8),
            ],
        )
    }

    fn fetch_sql(sql: &str, t: &Table, all: &[&Table]) -> String {
        fetch(&parse_statement(sql).unwrap(), t, all).sql
    }

    #[test]
    fn fetch_pushes_columns_filters_order_and_limit() {
        let t = t1();
        let all = [&t];
        assert_eq!(
            fetch_sql(
                "SELECT a FROM t1 WHERE b > 3 AND c = 'x' ORDER BY a LIMIT 5",
                &t,
                &all
            ),
            "SELECT \"a\", \"b\", \"c\" FROM t1 WHERE b > 3 AND c = 'x' ORDER BY a LIMIT 5"
        );
        assert_eq!(
            fetch_sql(
                "SELECT * FROM t1 ORDER BY b DESC LIMIT 2 OFFSET 3",
                &t,
                &all
            ),
            "SELECT \"a\", \"b\", \"c\", \"d\" FROM t1 ORDER BY b DESC LIMIT 5"
        );
        // ORDER BY an output name, or of an expression: sorted at the coordinator only.
        assert_eq!(
            fetch_sql("SELECT b AS a FROM t1 ORDER BY a LIMIT 1", &t, &all),
            "SELECT \"a\", \"b\" FROM t1"
        );
        assert_eq!(
            fetch_sql("SELECT a FROM t1 ORDER BY a + b LIMIT 1", &t, &all),
            "SELECT \"a\", \"b\" FROM t1"
        );
        // Volatile functions and subqueries stay at the coordinator.
        assert_eq!(
            fetch_sql(
                "SELECT a FROM t1 WHERE random() < 0.5 AND a IN (SELECT 1) ORDER BY a",
                &t,
                &all
            ),
            "SELECT \"a\" FROM t1"
        );
        // count(*) still needs the rows: the first column.
        assert_eq!(
            fetch_sql("SELECT count(*) FROM t1", &t, &all),
            "SELECT \"a\" FROM t1"
        );
        // A whole-row reference needs every column.
        assert_eq!(
            fetch_sql("SELECT t1 FROM t1 ORDER BY 1", &t, &all),
            "SELECT \"a\", \"b\", \"c\", \"d\" FROM t1"
        );
    }

    #[test]
    fn fetch_in_joins_pushes_each_tables_own_conditions() {
        let t = t1();
        let u = table("t2", &[("x", DataType::Int4), ("b", DataType::Int4)]);
        let all = [&t, &u];
        let sql = "SELECT t1.a, u.x FROM t1 JOIN t2 AS u ON t1.b = u.b \
                   WHERE t1.a > 1 AND u.x < 5 AND t1.a < u.x AND d = 2.5 AND b = 1";
        assert_eq!(
            fetch_sql(sql, &t, &all),
            "SELECT \"a\", \"b\", \"d\" FROM t1 WHERE t1.a > 1 AND d = 2.5"
        );
        assert_eq!(
            fetch_sql(sql, &u, &all),
            "SELECT \"x\", \"b\" FROM t2 AS u WHERE u.x < 5"
        );
        // Under an outer join nothing is pushed; a table named twice neither.
        let outer = "SELECT t1.a FROM t1 LEFT JOIN t2 ON t1.b = t2.b WHERE t2.x IS NULL";
        assert_eq!(
            fetch_sql(outer, &u, &all),
            "SELECT \"x\", \"b\" FROM \"t2\""
        );
        let twice = "SELECT p.a FROM t1 p, t1 q WHERE p.a = q.b AND p.a > 1";
        assert_eq!(
            fetch_sql(twice, &t, &all),
            "SELECT \"a\", \"b\" FROM \"t1\""
        );
    }

    #[test]
    fn partial_aggregates_split_and_combine() {
        let t = t1();
        let stmt = parse_statement(
            "SELECT b, count(*), sum(a), avg(d), max(c) FROM t1 WHERE a > 0 GROUP BY b \
             HAVING count(*) > 1 ORDER BY 2 DESC, b LIMIT 3",
        )
        .unwrap();
        let names: Vec<String> = ["b", "count", "sum", "avg", "max"].map(String::from).into();
        let p = partial(&stmt, &[&t], &names).expect("splits");
        assert_eq!(
            p.remote,
            "SELECT b AS __rxc_c0, count(*) AS __rxc_c1, sum(a) AS __rxc_c2, sum(d) AS __rxc_c3, \
             count(d) AS __rxc_c4, max(c) AS __rxc_c5 FROM t1 WHERE a > 0 GROUP BY b"
        );
        let types = [
            DataType::Int4,
            DataType::Int8,
            DataType::Int8,
            DataType::Float8,
            DataType::Int8,
            DataType::Text,
        ];
        assert_eq!(
            p.combine(&types).unwrap().to_string(),
            "SELECT __rxc_c0 AS \"b\", (CAST(COALESCE(sum(__rxc_c1), 0) AS BIGINT)) AS \"count\", \
             (CAST(sum(__rxc_c2) AS BIGINT)) AS \"sum\", (CASE WHEN sum(__rxc_c4) = 0 THEN NULL \
             ELSE CAST(sum(__rxc_c3) AS DOUBLE PRECISION) / CAST(sum(__rxc_c4) AS DOUBLE PRECISION) END) \
             AS \"avg\", (max(__rxc_c5)) AS \"max\" FROM __rxc_partial GROUP BY __rxc_c0 \
             HAVING (CAST(COALESCE(sum(__rxc_c1), 0) AS BIGINT)) > 1 ORDER BY 2 DESC, b LIMIT 3"
        );
    }

    #[test]
    fn partial_refuses_what_does_not_split() {
        let t = t1();
        for sql in [
            "SELECT count(DISTINCT a) FROM t1",
            "SELECT a, count(*) FROM t1 GROUP BY b",
            "SELECT string_agg(c, ',') FROM t1",
            "SELECT sum(a) OVER () FROM t1",
            "SELECT a FROM t1 ORDER BY a",
            "SELECT count(*) FROM t1 JOIN t1 AS x ON true",
        ] {
            let stmt = parse_statement(sql).unwrap();
            let ast::Statement::Query(q) = &stmt else {
                unreachable!()
            };
            let ast::SetExpr::Select(s) = &*q.body else {
                unreachable!()
            };
            let names: Vec<String> = (0..s.projection.len()).map(|i| format!("c{i}")).collect();
            assert!(partial(&stmt, &[&t], &names).is_none(), "{sql}");
        }
    }

    fn dist(locator: Locator, nodes: &[&str]) -> Distribution {
        Distribution {
            locator,
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn colocated_joins_run_whole_on_each_node() {
        let o = table("o", &[("id", DataType::Int4), ("cust", DataType::Int4)]);
        let l = table("l", &[("oid", DataType::Int4), ("qty", DataType::Int4)]);
        let c = table("c", &[("cid", DataType::Int4), ("name", DataType::Text)]);
        let x = table("x", &[("xid", DataType::Int8)]);
        let both = ["dn1", "dn2"];
        let hash = |c| dist(Locator::Hash(c), &both);
        let repl = dist(Locator::Replication, &both);
        let on = |sql: &str, tables: &[(&Table, &Distribution)]| {
            colocated(&parse_statement(sql).unwrap(), tables)
        };
        let nodes = Some(vec!["dn1".to_string(), "dn2".to_string()]);
        let (ho, hl, hx) = (hash(0), hash(0), hash(0));
        let ol = [(&o, &ho), (&l, &hl)];
        // Joined on both distribution keys: in ON, in WHERE, through aliases, with LEFT JOIN.
        for sql in [
            "SELECT * FROM o JOIN l ON o.id = l.oid",
            "SELECT o.cust, sum(qty) FROM o, l WHERE l.oid = o.id AND qty > 1 GROUP BY o.cust",
            "SELECT a.id FROM o AS a INNER JOIN l AS b ON b.oid = a.id",
            "SELECT * FROM o LEFT JOIN l ON o.id = l.oid AND l.qty > 0",
        ] {
            assert_eq!(on(sql, &ol), nodes, "{sql}");
        }
        // Not on the keys, outer joins the wrong way, another key type.
        for sql in [
            "SELECT * FROM o JOIN l ON o.cust = l.oid",
            "SELECT * FROM o, l",
            "SELECT * FROM o RIGHT JOIN l ON o.id = l.oid",
            "SELECT * FROM o FULL JOIN l ON o.id = l.oid",
            "SELECT * FROM o LEFT JOIN l ON o.cust = l.oid",
            "SELECT * FROM o JOIN l ON o.id = l.oid FOR UPDATE",
        ] {
            assert_eq!(on(sql, &ol), None, "{sql}");
        }
        assert_eq!(
            on(
                "SELECT * FROM o JOIN x ON o.id = x.xid",
                &[(&o, &ho), (&x, &hx)]
            ),
            None,
            "int4 and int8 keys hash differently"
        );
        // Different nodes or locators are not co-located.
        let elsewhere = dist(Locator::Hash(0), &["dn1", "dn3"]);
        let modulo = dist(Locator::Modulo(0), &both);
        for other in [&elsewhere, &modulo] {
            assert_eq!(
                on(
                    "SELECT * FROM o JOIN l ON o.id = l.oid",
                    &[(&o, &ho), (&l, other)]
                ),
                None
            );
        }
        // A replicated table joins anything, but is never the preserved side of an outer join.
        let oc = [(&o, &ho), (&c, &repl)];
        assert_eq!(on("SELECT * FROM o JOIN c ON o.cust = c.cid", &oc), nodes);
        assert_eq!(
            on("SELECT * FROM o LEFT JOIN c ON o.cust = c.cid", &oc),
            nodes
        );
        assert_eq!(
            on("SELECT * FROM c LEFT JOIN o ON o.cust = c.cid", &oc),
            None
        );
        let partly = dist(Locator::Replication, &["dn1"]);
        assert_eq!(
            on(
                "SELECT * FROM o JOIN c ON o.cust = c.cid",
                &[(&o, &ho), (&c, &partly)]
            ),
            None,
            "a replicated table missing from a node"
        );
        // Three tables: two co-located on the key, one replicated.
        let three = [(&o, &ho), (&l, &hl), (&c, &repl)];
        assert_eq!(
            on(
                "SELECT c.name, count(*) FROM o JOIN l ON l.oid = o.id JOIN c ON c.cid = o.cust GROUP BY c.name",
                &three
            ),
            nodes
        );
    }

    #[test]
    fn partial_aggregates_over_a_colocated_join() {
        let o = table("o", &[("id", DataType::Int4), ("cust", DataType::Int4)]);
        let l = table("l", &[("oid", DataType::Int4), ("qty", DataType::Int4)]);
        let stmt = parse_statement(
            "SELECT o.cust, sum(l.qty), count(*) FROM o JOIN l ON o.id = l.oid WHERE l.qty > 0 GROUP BY o.cust ORDER BY 1",
        )
        .unwrap();
        let names: Vec<String> = ["cust", "sum", "count"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = partial(&stmt, &[&o, &l], &names).expect("splits");
        assert_eq!(
            p.remote,
            "SELECT o.cust AS __rxc_c0, sum(l.qty) AS __rxc_c1, count(*) AS __rxc_c2 \
             FROM o JOIN l ON o.id = l.oid WHERE l.qty > 0 GROUP BY o.cust"
        );
        // One table still means one table, without joins.
        assert!(partial(&stmt, &[&o], &names).is_none());
    }
}
