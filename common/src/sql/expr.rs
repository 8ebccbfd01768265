//! Bound expressions: what the binder makes of the AST's expressions once names are resolved
//! to column positions and types are known, and their evaluation over a row.
//!
//! Evaluation is row-at-a-time over a slice of values. Subqueries are evaluated through the
//! [`SubqueryRunner`] the executor provides; a correlated subquery sees the rows of its
//! enclosing queries through [`Expr::Outer`], which counts scopes outwards.

use super::error::{sqlstate, Result, SqlError};
use super::functions;
use super::value::{BinaryOp, DataType, UnaryOp, Value};
use std::fmt;

/// How a subquery is used.
#[derive(Clone, Debug, PartialEq)]
pub enum SubqueryKind {
    /// `(SELECT x ...)`: at most one row, one column; NULL when empty.
    Scalar,
    /// `EXISTS (SELECT ...)`
    Exists,
    /// `x IN (SELECT y ...)` — the left operand is the boxed expression.
    In(Box<Expr>),
    /// `x op ANY (SELECT y ...)` (`all: false`) or `x op ALL (...)` (`all: true`), `op` a
    /// comparison.
    Quantified {
        left: Box<Expr>,
        op: BinaryOp,
        all: bool,
    },
}

/// A bound expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A constant.
    Constant(Value),
    /// A column of the input row.
    Column(usize),
    /// A column of an enclosing query's current row: `depth` 0 is the nearest enclosing query.
    Outer { depth: usize, index: usize },
    /// A statement parameter `$n` (0-based here).
    Param(usize),
    /// `l op r`.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `op e`.
    Unary(UnaryOp, Box<Expr>),
    /// `NOT e`.
    Not(Box<Expr>),
    /// `l AND r` (three-valued).
    And(Box<Expr>, Box<Expr>),
    /// `l OR r` (three-valued).
    Or(Box<Expr>, Box<Expr>),
    /// `e IS [NOT] NULL`.
    IsNull(Box<Expr>, bool),
    /// `e IS [NOT] TRUE/FALSE/UNKNOWN`: `Some(b)` compares with b, `None` means UNKNOWN; the
    /// flag negates.
    IsBool(Box<Expr>, Option<bool>, bool),
    /// `l IS [NOT] DISTINCT FROM r`: the flag is true for `IS NOT DISTINCT FROM`.
    IsDistinct(Box<Expr>, Box<Expr>, bool),
    /// `e [NOT] IN (list)`.
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `CASE [operand] WHEN .. THEN .. ELSE .. END`.
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    /// An explicit cast.
    Cast(Box<Expr>, DataType),
    /// An assignment cast (into a column of that type).
    CastAssign(Box<Expr>, DataType),
    /// A scalar function from the function library.
    Function(String, Vec<Expr>),
    /// `COALESCE(...)`: the first non-NULL.
    Coalesce(Vec<Expr>),
    /// `NULLIF(a, b)`.
    NullIf(Box<Expr>, Box<Expr>),
    /// A sequence function (`nextval('s')`, `currval('s')`, `setval('s', v [, is_called])`,
    /// `lastval()`) with its arguments after the name.
    Sequence(SeqCall, Vec<Expr>),
    /// A subquery, by its index in the plan's subquery list; `negated` for NOT EXISTS/NOT IN.
    Subquery {
        index: usize,
        kind: SubqueryKind,
        negated: bool,
    },
}

/// What evaluation needs from outside the expression.
pub trait EvalContext {
    /// The value of parameter `index`.
    fn param(&self, index: usize) -> Result<Value>;
    /// Column `index` of the enclosing row `depth` levels out.
    fn outer(&self, depth: usize, index: usize) -> Result<Value>;
    /// Runs subquery `index` with `row` as the nearest enclosing row; returns its rows.
    fn subquery(&mut self, index: usize, row: &[Value]) -> Result<Vec<Vec<Value>>>;
    /// A sequence function's value (`args` are the arguments after the sequence's name).
    fn sequence(&mut self, call: &SeqCall, args: &[Value]) -> Result<Value>;
}

/// Which sequence function, and of which sequence (a constant name, as PostgreSQL's
/// `regclass` argument resolves to one sequence when the statement is planned).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SeqCall {
    /// `nextval('s')`: the next value (and the session's `currval` from then on).
    Next(String),
    /// `currval('s')`: the value `nextval` last returned in this session.
    Curr(String),
    /// `setval('s', value [, is_called])`.
    Set(String),
    /// `lastval()`: the value `nextval` last returned in this session, of any sequence.
    Last,
}

impl SeqCall {
    /// The function's SQL name.
    pub fn function(&self) -> &'static str {
        match self {
            SeqCall::Next(_) => "nextval",
            SeqCall::Curr(_) => "currval",
            SeqCall::Set(_) => "setval",
            SeqCall::Last => "lastval",
        }
    }

    /// The sequence it names (`lastval()` names none).
    pub fn sequence(&self) -> Option<&str> {
        match self {
            SeqCall::Next(s) | SeqCall::Curr(s) | SeqCall::Set(s) => Some(s),
            SeqCall::Last => None,
        }
    }
}

impl Expr {
    /// A constant expression.
    pub fn constant(v: Value) -> Expr {
        Expr::Constant(v)
    }

    /// Evaluates the expression over `row`.
    pub fn eval(&self, row: &[Value], ctx: &mut dyn EvalContext) -> Result<Value> {
        Ok(match self {
            Expr::Constant(v) => v.clone(),
            Expr::Column(i) => row
                .get(*i)
                .cloned()
                .ok_or_else(|| SqlError::internal(format!("column {i} out of row")))?,
            Expr::Outer { depth, index } => ctx.outer(*depth, *index)?,
            Expr::Param(i) => ctx.param(*i)?,
            Expr::Binary(op, l, r) => {
                let l = l.eval(row, ctx)?;
                let r = r.eval(row, ctx)?;
                Value::binary_op(*op, &l, &r)?
            }
            Expr::Unary(op, e) => Value::unary_op(*op, &e.eval(row, ctx)?)?,
            Expr::Not(e) => match e.eval(row, ctx)?.truth("NOT")? {
                Some(b) => Value::Bool(!b),
                None => Value::Null,
            },
            Expr::And(l, r) => {
                let l = l.eval(row, ctx)?.truth("AND")?;
                if l == Some(false) {
                    return Ok(Value::Bool(false));
                }
                let r = r.eval(row, ctx)?.truth("AND")?;
                match (l, r) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                }
            }
            Expr::Or(l, r) => {
                let l = l.eval(row, ctx)?.truth("OR")?;
                if l == Some(true) {
                    return Ok(Value::Bool(true));
                }
                let r = r.eval(row, ctx)?.truth("OR")?;
                match (l, r) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                }
            }
            Expr::IsNull(e, negated) => Value::Bool(e.eval(row, ctx)?.is_null() != *negated),
            Expr::IsBool(e, want, negated) => {
                let t = e.eval(row, ctx)?.truth("IS")?;
                Value::Bool((t == *want) != *negated)
            }
            Expr::IsDistinct(l, r, not_distinct) => {
                let l = l.eval(row, ctx)?;
                let r = r.eval(row, ctx)?;
                let same = match (l.is_null(), r.is_null()) {
                    (true, true) => true,
                    (false, false) => l.compare(&r)? == Some(std::cmp::Ordering::Equal),
                    _ => false,
                };
                Value::Bool(same == *not_distinct)
            }
            Expr::InList(e, list, negated) => {
                let v = e.eval(row, ctx)?;
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    items.push(item.eval(row, ctx)?);
                }
                in_values(&v, items.iter(), *negated)?
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let operand = match operand {
                    Some(o) => Some(o.eval(row, ctx)?),
                    None => None,
                };
                for (when, then) in whens {
                    let w = when.eval(row, ctx)?;
                    let hit = match &operand {
                        Some(o) => o.compare(&w)? == Some(std::cmp::Ordering::Equal),
                        None => w.truth("CASE")? == Some(true),
                    };
                    if hit {
                        return then.eval(row, ctx);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(row, ctx)?,
                    None => Value::Null,
                }
            }
            Expr::Cast(e, ty) => e.eval(row, ctx)?.cast(ty)?,
            Expr::CastAssign(e, ty) => e.eval(row, ctx)?.cast_assign(ty)?,
            Expr::Function(name, args) => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(a.eval(row, ctx)?);
                }
                functions::call(name, &values)?
            }
            Expr::Coalesce(args) => {
                for a in args {
                    let v = a.eval(row, ctx)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Value::Null
            }
            Expr::NullIf(a, b) => {
                let a = a.eval(row, ctx)?;
                let b = b.eval(row, ctx)?;
                if a.compare(&b)? == Some(std::cmp::Ordering::Equal) {
                    Value::Null
                } else {
                    a
                }
            }
            Expr::Sequence(call, args) => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(a.eval(row, ctx)?);
                }
                ctx.sequence(call, &values)?
            }
            Expr::Subquery {
                index,
                kind,
                negated,
            } => {
                let rows = ctx.subquery(*index, row)?;
                match kind {
                    SubqueryKind::Scalar => {
                        if rows.len() > 1 {
                            return Err(SqlError::new(
                                sqlstate::CARDINALITY_VIOLATION,
                                "more than one row returned by a subquery used as an expression",
                            ));
                        }
                        rows.into_iter()
                            .next()
                            .and_then(|r| r.into_iter().next())
                            .unwrap_or(Value::Null)
                    }
                    SubqueryKind::Exists => Value::Bool(rows.is_empty() == *negated),
                    SubqueryKind::In(e) => {
                        let v = e.eval(row, ctx)?;
                        in_values(&v, rows.iter().filter_map(|r| r.first()), *negated)?
                    }
                    SubqueryKind::Quantified { left, op, all } => {
                        let v = left.eval(row, ctx)?;
                        let items = rows.iter().filter_map(|r| r.first());
                        let result = quantified(&v, *op, *all, items)?;
                        match result {
                            Value::Bool(b) if *negated => Value::Bool(!b),
                            v => v,
                        }
                    }
                }
            }
        })
    }

    /// Whether the expression refers to no column of its input row (it may use parameters,
    /// outer rows and uncorrelated subqueries).
    pub fn is_row_independent(&self) -> bool {
        let mut independent = true;
        self.walk(&mut |e| {
            if matches!(
                e,
                Expr::Column(_) | Expr::Subquery { .. } | Expr::Sequence(..)
            ) {
                independent = false;
            }
        });
        independent
    }

    /// Every column position the expression reads from its input row.
    pub fn columns(&self) -> Vec<usize> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Column(i) = e {
                out.push(*i);
            }
        });
        out
    }

    /// Calls `f` on this expression and every sub-expression (not into subqueries).
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Constant(_) | Expr::Column(_) | Expr::Outer { .. } | Expr::Param(_) => {}
            Expr::Binary(_, l, r)
            | Expr::And(l, r)
            | Expr::Or(l, r)
            | Expr::IsDistinct(l, r, _)
            | Expr::NullIf(l, r) => {
                l.walk(f);
                r.walk(f);
            }
            Expr::Unary(_, e)
            | Expr::Not(e)
            | Expr::IsNull(e, _)
            | Expr::IsBool(e, _, _)
            | Expr::Cast(e, _)
            | Expr::CastAssign(e, _) => e.walk(f),
            Expr::InList(e, list, _) => {
                e.walk(f);
                list.iter().for_each(|x| x.walk(f));
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(o) = operand {
                    o.walk(f);
                }
                for (w, t) in whens {
                    w.walk(f);
                    t.walk(f);
                }
                if let Some(o) = otherwise {
                    o.walk(f);
                }
            }
            Expr::Function(_, args) | Expr::Coalesce(args) | Expr::Sequence(_, args) => {
                args.iter().for_each(|x| x.walk(f))
            }
            Expr::Subquery { kind, .. } => {
                if let SubqueryKind::In(e) | SubqueryKind::Quantified { left: e, .. } = kind {
                    e.walk(f);
                }
            }
        }
    }

    /// Rewrites every column reference with `f` (to move an expression onto another row
    /// layout, e.g. the right side of a join).
    pub fn map_columns(&self, f: &dyn Fn(usize) -> usize) -> Expr {
        let m = |e: &Expr| Box::new(e.map_columns(f));
        match self {
            Expr::Column(i) => Expr::Column(f(*i)),
            Expr::Constant(_) | Expr::Outer { .. } | Expr::Param(_) => self.clone(),
            Expr::Binary(op, l, r) => Expr::Binary(*op, m(l), m(r)),
            Expr::And(l, r) => Expr::And(m(l), m(r)),
            Expr::Or(l, r) => Expr::Or(m(l), m(r)),
            Expr::IsDistinct(l, r, n) => Expr::IsDistinct(m(l), m(r), *n),
            Expr::NullIf(l, r) => Expr::NullIf(m(l), m(r)),
            Expr::Unary(op, e) => Expr::Unary(*op, m(e)),
            Expr::Not(e) => Expr::Not(m(e)),
            Expr::IsNull(e, n) => Expr::IsNull(m(e), *n),
            Expr::IsBool(e, b, n) => Expr::IsBool(m(e), *b, *n),
            Expr::Cast(e, t) => Expr::Cast(m(e), t.clone()),
            Expr::CastAssign(e, t) => Expr::CastAssign(m(e), t.clone()),
            Expr::InList(e, list, n) => {
                Expr::InList(m(e), list.iter().map(|x| x.map_columns(f)).collect(), *n)
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => Expr::Case {
                operand: operand.as_ref().map(|o| m(o)),
                whens: whens
                    .iter()
                    .map(|(w, t)| (w.map_columns(f), t.map_columns(f)))
                    .collect(),
                otherwise: otherwise.as_ref().map(|o| m(o)),
            },
            Expr::Function(name, args) => Expr::Function(
                name.clone(),
                args.iter().map(|x| x.map_columns(f)).collect(),
            ),
            Expr::Coalesce(args) => Expr::Coalesce(args.iter().map(|x| x.map_columns(f)).collect()),
            Expr::Sequence(call, args) => Expr::Sequence(
                call.clone(),
                args.iter().map(|x| x.map_columns(f)).collect(),
            ),
            Expr::Subquery {
                index,
                kind,
                negated,
            } => Expr::Subquery {
                index: *index,
                kind: match kind {
                    SubqueryKind::In(e) => SubqueryKind::In(m(e)),
                    SubqueryKind::Quantified { left, op, all } => SubqueryKind::Quantified {
                        left: m(left),
                        op: *op,
                        all: *all,
                    },
                    k => k.clone(),
                },
                negated: *negated,
            },
        }
    }

    /// Splits a conjunction into its conjuncts.
    pub fn conjuncts(self) -> Vec<Expr> {
        match self {
            Expr::And(l, r) => {
                let mut out = l.conjuncts();
                out.extend(r.conjuncts());
                out
            }
            e => vec![e],
        }
    }

    /// Joins conjuncts back with AND (None when there are none).
    pub fn conjoin(exprs: Vec<Expr>) -> Option<Expr> {
        exprs
            .into_iter()
            .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)))
    }
}

/// `v [NOT] IN (items)` with SQL's NULL rules.
fn in_values<'a>(
    v: &Value,
    items: impl Iterator<Item = &'a Value>,
    negated: bool,
) -> Result<Value> {
    let mut items = items.peekable();
    if v.is_null() {
        // Nothing is in an empty set, not even NULL.
        return Ok(if items.peek().is_none() {
            Value::Bool(negated)
        } else {
            Value::Null
        });
    }
    let mut saw_null = false;
    for item in items {
        match v.compare(item)? {
            Some(std::cmp::Ordering::Equal) => return Ok(Value::Bool(!negated)),
            Some(_) => {}
            None => saw_null = true,
        }
    }
    Ok(if saw_null {
        Value::Null
    } else {
        Value::Bool(negated)
    })
}

/// `v op ANY (items)` / `v op ALL (items)` in three-valued logic: ANY is true if some
/// comparison is true, ALL false if some is false; otherwise NULL if some comparison was NULL,
/// else false for ANY and true for ALL (so over no rows at all).
fn quantified<'a>(
    v: &Value,
    op: BinaryOp,
    all: bool,
    items: impl Iterator<Item = &'a Value>,
) -> Result<Value> {
    let mut saw_null = false;
    for item in items {
        match Value::binary_op(op, v, item)?.as_bool() {
            Some(b) if b != all => return Ok(Value::Bool(b)),
            Some(_) => {}
            None => saw_null = true,
        }
    }
    Ok(if saw_null {
        Value::Null
    } else {
        Value::Bool(all)
    })
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Constant(v) => match v.to_text() {
                None => write!(f, "NULL"),
                Some(t) if matches!(v, Value::Text(_)) => write!(f, "'{}'", t.replace('\'', "''")),
                Some(t) => write!(f, "{t}"),
            },
            Expr::Column(i) => write!(f, "#{i}"),
            Expr::Outer { depth, index } => write!(f, "outer{depth}.#{index}"),
            Expr::Param(i) => write!(f, "${}", i + 1),
            Expr::Binary(op, l, r) => write!(f, "({l} {} {r})", op.symbol()),
            Expr::Unary(UnaryOp::Neg, e) => write!(f, "(- {e})"),
            Expr::Unary(UnaryOp::Plus, e) => write!(f, "(+ {e})"),
            Expr::Not(e) => write!(f, "(NOT {e})"),
            Expr::And(l, r) => write!(f, "({l} AND {r})"),
            Expr::Or(l, r) => write!(f, "({l} OR {r})"),
            Expr::IsNull(e, false) => write!(f, "({e} IS NULL)"),
            Expr::IsNull(e, true) => write!(f, "({e} IS NOT NULL)"),
            Expr::IsBool(e, b, n) => {
                let what = match b {
                    Some(true) => "TRUE",
                    Some(false) => "FALSE",
                    None => "UNKNOWN",
                };
                write!(f, "({e} IS {}{what})", if *n { "NOT " } else { "" })
            }
            Expr::IsDistinct(l, r, n) => {
                write!(
                    f,
                    "({l} IS {}DISTINCT FROM {r})",
                    if *n { "NOT " } else { "" }
                )
            }
            Expr::InList(e, items, n) => {
                write!(
                    f,
                    "({e} {}IN ({}))",
                    if *n { "NOT " } else { "" },
                    list(items)
                )
            }
            Expr::Case { .. } => write!(f, "CASE ... END"),
            Expr::Cast(e, t) | Expr::CastAssign(e, t) => write!(f, "({e})::{}", t.name()),
            Expr::Function(name, args) => write!(f, "{name}({})", list(args)),
            Expr::Coalesce(args) => write!(f, "COALESCE({})", list(args)),
            Expr::NullIf(a, b) => write!(f, "NULLIF({a}, {b})"),
            Expr::Sequence(call, args) => {
                let mut items: Vec<String> = call
                    .sequence()
                    .map(|s| format!("'{s}'"))
                    .into_iter()
                    .collect();
                items.extend(args.iter().map(|x| x.to_string()));
                write!(f, "{}({})", call.function(), items.join(", "))
            }
            Expr::Subquery { index, .. } => write!(f, "(SubPlan {})", index + 1),
        }
    }
}

fn list(exprs: &[Expr]) -> String {
    let items: Vec<String> = exprs.iter().map(|x| x.to_string()).collect();
    items.join(", ")
}
