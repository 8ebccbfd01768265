//! Constant folding at bind time, as PostgreSQL's planner does (`eval_const_expressions`).
//!
//! Every subexpression whose inputs are all constants and whose operator or function is
//! immutable is evaluated once, when the statement is bound — so it is not evaluated again for
//! every row, and, as in PostgreSQL, its errors are the statement's errors whether or not a row
//! ever reaches it (`SELECT 1/0 FROM empty_table` fails; an overflow in a CASE arm whose
//! condition is not constant fails).
//!
//! Folding follows PostgreSQL's order where it decides what is folded at all:
//! - `CASE`: an arm whose condition folds to false or NULL is dropped unfolded; one that folds
//!   to true ends the CASE (it becomes the ELSE); other arms' results are folded.
//! - `COALESCE`: arguments fold left to right and stop at the first non-NULL constant;
//!   NULL constants are dropped.
//! - `AND` / `OR`: a left side that decides the result (false, true) leaves the right unfolded.
//!
//! Volatile and stable calls (`random()`, `now()` and the other clock functions, `nextval`),
//! parameters, outer references and subqueries are never folded.

use super::error::{Result, SqlError};
use super::expr::{EvalContext, Expr, SeqCall, SubqueryKind};
use super::value::Value;

/// Functions whose result is not a function of their arguments alone.
const NOT_IMMUTABLE: &[&str] = &[
    "random",
    "now",
    "current_timestamp",
    "current_date",
    "localtimestamp",
    "transaction_timestamp",
    "statement_timestamp",
    "clock_timestamp",
    "timezone",
    "version",
];

/// Folds the constant parts of `e` (see the module docs); an error is the statement's.
pub fn fold(e: Expr) -> Result<Expr> {
    use Expr as E;
    let b = |e: Box<Expr>| fold(*e).map(Box::new);
    let folded = match e {
        E::Constant(_) | E::Column(_) | E::Outer { .. } | E::Param(_) => return Ok(e),
        // Never folded: each call has its effect, when the statement runs.
        E::Sequence(call, args) => {
            return Ok(E::Sequence(
                call,
                args.into_iter().map(fold).collect::<Result<_>>()?,
            ))
        }
        E::Subquery {
            index,
            kind,
            negated,
        } => {
            let kind = match kind {
                SubqueryKind::In(l) => SubqueryKind::In(b(l)?),
                SubqueryKind::Quantified { left, op, all } => SubqueryKind::Quantified {
                    left: b(left)?,
                    op,
                    all,
                },
                k => k,
            };
            return Ok(E::Subquery {
                index,
                kind,
                negated,
            });
        }
        E::Binary(op, l, r) => E::Binary(op, b(l)?, b(r)?),
        E::Unary(op, x) => E::Unary(op, b(x)?),
        E::Not(x) => E::Not(b(x)?),
        E::And(l, r) => {
            let l = fold(*l)?;
            if is_constant(&l, &Value::Bool(false)) {
                return Ok(l);
            }
            E::And(Box::new(l), b(r)?)
        }
        E::Or(l, r) => {
            let l = fold(*l)?;
            if is_constant(&l, &Value::Bool(true)) {
                return Ok(l);
            }
            E::Or(Box::new(l), b(r)?)
        }
        E::IsNull(x, n) => E::IsNull(b(x)?, n),
        E::IsBool(x, want, n) => E::IsBool(b(x)?, want, n),
        E::IsDistinct(l, r, n) => E::IsDistinct(b(l)?, b(r)?, n),
        E::InList(x, items, n) => E::InList(
            b(x)?,
            items.into_iter().map(fold).collect::<Result<_>>()?,
            n,
        ),
        E::Cast(x, t) => E::Cast(b(x)?, t),
        E::CastAssign(x, t) => E::CastAssign(b(x)?, t),
        E::Function(name, args) => {
            E::Function(name, args.into_iter().map(fold).collect::<Result<_>>()?)
        }
        E::NullIf(l, r) => E::NullIf(b(l)?, b(r)?),
        E::Coalesce(args) => return fold_coalesce(args),
        E::Case {
            operand,
            whens,
            otherwise,
        } => return fold_case(operand, whens, otherwise),
    };
    evaluate_if_constant(folded)
}

/// `e` is the constant `v`.
fn is_constant(e: &Expr, v: &Value) -> bool {
    matches!(e, Expr::Constant(c) if c.is_null() == v.is_null() && (c.is_null() || c == v))
}

/// Replaces a node whose direct inputs are all constants by its value.
fn evaluate_if_constant(e: Expr) -> Result<Expr> {
    // `walk` visits the node itself first, then every descendant: constants only below it.
    let mut all_constant = true;
    let mut visited = 0;
    e.walk(&mut |x| {
        visited += 1;
        if visited > 1 && !matches!(x, Expr::Constant(_)) {
            all_constant = false;
        }
    });
    if !all_constant {
        return Ok(e);
    }
    if let Expr::Function(name, _) = &e {
        if NOT_IMMUTABLE.contains(&name.as_str()) {
            return Ok(e);
        }
    }
    let value = e.eval(&[], &mut ConstantContext)?;
    Ok(Expr::Constant(value))
}

fn fold_coalesce(args: Vec<Expr>) -> Result<Expr> {
    let mut kept = Vec::new();
    for arg in args {
        let arg = fold(arg)?;
        match arg {
            Expr::Constant(ref v) if v.is_null() => continue,
            Expr::Constant(_) => {
                kept.push(arg);
                break;
            }
            arg => kept.push(arg),
        }
    }
    Ok(match kept.len() {
        0 => Expr::Constant(Value::Null),
        1 if matches!(kept[0], Expr::Constant(_)) => kept.remove(0),
        _ => Expr::Coalesce(kept),
    })
}

fn fold_case(
    operand: Option<Box<Expr>>,
    whens: Vec<(Expr, Expr)>,
    otherwise: Option<Box<Expr>>,
) -> Result<Expr> {
    let operand = operand.map(|o| fold(*o)).transpose()?;
    let mut kept = Vec::new();
    let mut otherwise = otherwise.map(|o| *o);
    for (when, then) in whens {
        let when = fold(when)?;
        // Whether the arm is decided now: Some(true) taken, Some(false) never taken.
        let decided = match (&operand, &when) {
            (None, Expr::Constant(v)) => Some(v.truth("CASE")? == Some(true)),
            (Some(Expr::Constant(o)), Expr::Constant(w)) => {
                Some(o.compare(w)? == Some(std::cmp::Ordering::Equal))
            }
            _ => None,
        };
        match decided {
            Some(false) => continue,
            Some(true) => {
                otherwise = Some(then);
                break;
            }
            None => kept.push((when, fold(then)?)),
        }
    }
    let otherwise = otherwise.map(fold).transpose()?;
    if kept.is_empty() {
        return Ok(otherwise.unwrap_or(Expr::Constant(Value::Null)));
    }
    Ok(Expr::Case {
        operand: operand.map(Box::new),
        whens: kept,
        otherwise: otherwise.map(Box::new),
    })
}

/// The evaluation context of a constant expression: it has no row, parameter, outer row,
/// subquery or sequence to ask for (folding never evaluates a node that would).
pub struct ConstantContext;

impl EvalContext for ConstantContext {
    fn param(&self, _: usize) -> Result<Value> {
        Err(SqlError::internal(
            "a constant expression has no parameters",
        ))
    }

    fn outer(&self, _: usize, _: usize) -> Result<Value> {
        Err(SqlError::internal("a constant expression has no outer row"))
    }

    fn subquery(&mut self, _: usize, _: &[Value]) -> Result<Vec<Vec<Value>>> {
        Err(SqlError::internal(
            "a constant expression has no subqueries",
        ))
    }

    fn sequence(&mut self, _: &SeqCall, _: &[Value]) -> Result<Value> {
        Err(SqlError::internal(
            "a constant expression reads no sequence",
        ))
    }
}
