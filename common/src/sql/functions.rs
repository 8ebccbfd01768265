//! Scalar functions, looked up by lower-case name.
//!
//! [`return_type`] resolves a call the way PostgreSQL 15 does for the overloads rxc has: an
//! untyped literal takes the type the function wants (text for string functions, double
//! precision for math), integers widen, and a missing match is 42883 in PostgreSQL's words.
//! [`call`] resolves the same way from the argument values (a string value counts as untyped,
//! so literals the binder left alone still work), casts each argument to its parameter type,
//! and evaluates. Functions are strict, NULL in and NULL out, except `concat`, `concat_ws`,
//! `greatest` and `least`, which skip NULL arguments.
//!
//! The current-time functions read the clock on every call; PostgreSQL's `now()` is the
//! transaction's start, which the executor is expected to supply by evaluating these once per
//! transaction (or statement, for `statement_timestamp`).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};

use super::error::{Result, SqlError};
use super::value::{
    check_float, decimal_to_f64, float_pow, int_out_of_range, normalize_zero, numeric_overflow,
    numeric_pow, numeric_weight, truncate_to_micros, with_scale, BinaryOp, DataType, Value,
    MIN_SIG_DIGITS,
};
use crate::sqlerr;

/// The largest string a function builds, as PostgreSQL's allocation limit (1 GB).
const MAX_ALLOC: usize = (1 << 30) - 1;

/// A resolved call: the types arguments are cast to, and the result type.
struct Signature {
    params: Vec<DataType>,
    result: DataType,
}

/// The type `name(args)` returns, or 42883 `function foo(integer) does not exist`.
pub fn return_type(name: &str, args: &[DataType]) -> Result<DataType> {
    signature(name, args).map(|s| s.result)
}

/// Calls the scalar function `name`.
pub fn call(name: &str, args: &[Value]) -> Result<Value> {
    let types: Vec<DataType> = args
        .iter()
        .map(|a| match a {
            Value::Text(_) | Value::Null => DataType::Unknown,
            v => v.data_type(),
        })
        .collect();
    let strict = !matches!(name, "concat" | "concat_ws" | "greatest" | "least");
    let signature = match signature(name, &types) {
        Ok(signature) => signature,
        // A NULL argument has lost the type the binder resolved the call with.
        Err(_) if strict && args.iter().any(Value::is_null) => return Ok(Value::Null),
        Err(e) => return Err(e),
    };
    let mut values = Vec::with_capacity(args.len());
    for (arg, param) in args.iter().zip(&signature.params) {
        values.push(arg.clone().cast(param)?);
    }
    match name {
        "concat" => {
            return Ok(Value::Text(
                values.iter().filter_map(Value::to_text).collect(),
            ))
        }
        "concat_ws" => {
            return Ok(match values[0].to_text() {
                None => Value::Null,
                Some(sep) => Value::Text(
                    values[1..]
                        .iter()
                        .filter_map(Value::to_text)
                        .collect::<Vec<_>>()
                        .join(&sep),
                ),
            })
        }
        "greatest" | "least" => {
            let want = if name == "greatest" {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Less
            };
            let best = values
                .into_iter()
                .filter(|v| !v.is_null())
                .reduce(|best, v| if v.sort_cmp(&best) == want { v } else { best });
            return Ok(best.unwrap_or(Value::Null));
        }
        _ => {}
    }
    if values.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    evaluate(name, &values)
}

fn type_list(args: &[DataType]) -> String {
    args.iter()
        .map(DataType::base_name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn undefined_function(name: &str, args: &[DataType]) -> SqlError {
    sqlerr!(UNDEFINED_FUNCTION, "function {name}({}) does not exist", type_list(args)).with_hint(
        "No function matches the given name and argument types. You might need to add explicit type casts.",
    )
}

fn ambiguous_function(name: &str, args: &[DataType]) -> SqlError {
    sqlerr!(
        AMBIGUOUS_FUNCTION,
        "function {name}({}) is not unique",
        type_list(args)
    )
    .with_hint(
        "Could not choose a best candidate function. You might need to add explicit type casts.",
    )
}

/// The parameter type of a function with double precision and numeric variants.
fn float_or_numeric(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Numeric(_) => Some(DataType::Numeric(None)),
        t if t.is_numeric() || *t == DataType::Unknown => Some(DataType::Float8),
        _ => None,
    }
}

fn signature(name: &str, args: &[DataType]) -> Result<Signature> {
    use DataType::*;
    let text = |i: usize| args[i].is_string();
    let int = |i: usize| matches!(args[i], Int2 | Int4 | Unknown);
    let exact = |i: usize| matches!(args[i], Int2 | Int4 | Int8 | Numeric(_) | Unknown);
    let same = |t: DataType| (vec![t.clone(); args.len()], t);
    let (params, result) = match (name, args.len()) {
        ("abs", 1) => match &args[0] {
            Numeric(_) => same(Numeric(None)),
            Unknown => same(Float8),
            t if t.is_numeric() => same(t.clone()),
            _ => return Err(undefined_function(name, args)),
        },
        (
            "ceil" | "ceiling" | "floor" | "round" | "trunc" | "sign" | "sqrt" | "exp" | "ln"
            | "log" | "log10",
            1,
        ) => match float_or_numeric(&args[0]) {
            Some(t) => same(t),
            None => return Err(undefined_function(name, args)),
        },
        ("cbrt", 1) if float_or_numeric(&args[0]).is_some() => (vec![Float8], Float8),
        ("round" | "trunc", 2) if exact(0) && int(1) => (vec![Numeric(None), Int4], Numeric(None)),
        ("power" | "pow", 2) if args.iter().all(|t| float_or_numeric(t).is_some()) => {
            let float = args.iter().any(|t| matches!(t, Float4 | Float8));
            let numeric = args.iter().any(|t| matches!(t, Numeric(_)));
            same(if numeric && !float {
                Numeric(None)
            } else {
                Float8
            })
        }
        ("log", 2) if exact(0) && exact(1) => same(Numeric(None)),
        ("mod", 2) if exact(0) && exact(1) => match (&args[0], &args[1]) {
            (Unknown, Unknown) => return Err(ambiguous_function(name, args)),
            (Numeric(_), _) | (_, Numeric(_)) => same(Numeric(None)),
            (Unknown, t) | (t, Unknown) => same(t.clone()),
            (a, b) => same(DataType::common(a, b, "mod")?),
        },
        ("random" | "pi", 0) => same(Float8),
        ("length" | "char_length" | "character_length", 1) if text(0) => (vec![Text], Int4),
        ("length" | "octet_length", 1) if args[0] == Bytea => (vec![Bytea], Int4),
        ("octet_length", 1) if text(0) => (vec![Text], Int4),
        ("lower" | "upper" | "initcap" | "reverse" | "md5", 1) if text(0) => same(Text),
        ("md5", 1) if args[0] == Bytea => (vec![Bytea], Text),
        ("btrim" | "ltrim" | "rtrim" | "trim", 1 | 2) if args.iter().all(DataType::is_string) => {
            same(Text)
        }
        ("substr" | "substring", 2) if text(0) && int(1) => (vec![Text, Int4], Text),
        ("substr" | "substring", 3) if text(0) && int(1) && int(2) => {
            (vec![Text, Int4, Int4], Text)
        }
        ("strpos", 2) if text(0) && text(1) => (vec![Text, Text], Int4),
        ("lpad" | "rpad", 2) if text(0) && int(1) => (vec![Text, Int4], Text),
        ("lpad" | "rpad", 3) if text(0) && int(1) && text(2) => (vec![Text, Int4, Text], Text),
        ("left" | "right" | "repeat", 2) if text(0) && int(1) => (vec![Text, Int4], Text),
        ("replace", 3) if args.iter().all(DataType::is_string) => same(Text),
        ("split_part", 3) if text(0) && text(1) && int(2) => (vec![Text, Text, Int4], Text),
        ("concat", 1..) | ("concat_ws", 2..) if name == "concat" || text(0) => {
            let params = args
                .iter()
                .map(|t| if *t == Unknown { Text } else { t.clone() });
            (params.collect(), Text)
        }
        (
            "now"
            | "current_timestamp"
            | "transaction_timestamp"
            | "statement_timestamp"
            | "clock_timestamp",
            0,
        ) => same(TimestampTz),
        ("current_date", 0) => same(Date),
        ("localtimestamp", 0) => same(Timestamp),
        ("date_part" | "extract" | "date_trunc", 2) if text(0) => {
            let source = match &args[1] {
                Unknown => return Err(ambiguous_function(name, args)),
                Date if name == "date_trunc" => TimestampTz,
                t @ (Date | Timestamp | TimestampTz) => t.clone(),
                _ => return Err(undefined_function(name, args)),
            };
            let result = match name {
                "date_part" => Float8,
                "extract" => Numeric(None),
                _ => source.clone(),
            };
            (vec![Text, source], result)
        }
        ("greatest" | "least", 1..) => {
            let context = name.to_uppercase();
            let mut t = Unknown;
            for a in args {
                t = DataType::common(&t, a, &context)?;
            }
            same(if t == Unknown { Text } else { t })
        }
        ("version", 0) => same(Text),
        _ => return Err(undefined_function(name, args)),
    };
    Ok(Signature { params, result })
}

/// Evaluates a strict function on non-NULL arguments already cast to its parameter types.
fn evaluate(name: &str, args: &[Value]) -> Result<Value> {
    use Value as V;
    let unexpected = || SqlError::internal(format!("{name} called with unexpected arguments"));
    Ok(match (name, args) {
        ("abs", [v]) => match v {
            V::Int2(i) => V::Int2(
                i.checked_abs()
                    .ok_or_else(|| int_out_of_range(&DataType::Int2))?,
            ),
            V::Int4(i) => V::Int4(
                i.checked_abs()
                    .ok_or_else(|| int_out_of_range(&DataType::Int4))?,
            ),
            V::Int8(i) => V::Int8(
                i.checked_abs()
                    .ok_or_else(|| int_out_of_range(&DataType::Int8))?,
            ),
            V::Float4(f) => V::Float4(f.abs()),
            V::Float8(f) => V::Float8(f.abs()),
            V::Numeric(d) => V::Numeric(d.abs()),
            _ => return Err(unexpected()),
        },
        ("ceil" | "ceiling", [v]) => map_number(v, f64::ceil, |d| d.ceil())?,
        ("floor", [v]) => map_number(v, f64::floor, |d| d.floor())?,
        ("round", [v]) => map_number(v, f64::round_ties_even, |d| {
            d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        })?,
        ("trunc", [v]) => map_number(v, f64::trunc, |d| d.trunc())?,
        ("sign", [v]) => map_number(
            v,
            |f| {
                if f > 0.0 {
                    1.0
                } else if f < 0.0 {
                    -1.0
                } else if f == 0.0 {
                    0.0
                } else {
                    f
                }
            },
            |d| {
                Decimal::from(if d.is_zero() {
                    0
                } else if d.is_sign_negative() {
                    -1
                } else {
                    1
                })
            },
        )?,
        ("round", [V::Numeric(d), V::Int4(s)]) => {
            V::Numeric(round_to(*d, *s, RoundingStrategy::MidpointAwayFromZero)?)
        }
        ("trunc", [V::Numeric(d), V::Int4(s)]) => {
            V::Numeric(round_to(*d, *s, RoundingStrategy::ToZero)?)
        }
        ("sqrt", [v]) => sqrt(v)?,
        ("cbrt", [V::Float8(f)]) => V::Float8(f.cbrt()),
        ("exp", [V::Float8(f)]) => V::Float8(check_float(f.exp(), !f.is_finite(), !f.is_finite())?),
        ("exp", [V::Numeric(d)]) => {
            let weight = (decimal_to_f64(d) * std::f64::consts::LOG10_E).clamp(-2000.0, 2000.0);
            let rscale = (MIN_SIG_DIGITS - weight as i32).max(d.scale() as i32);
            let r = match d.checked_exp() {
                Some(r) => r,
                None if d.is_sign_negative() => Decimal::ZERO,
                None => return Err(numeric_overflow()),
            };
            V::Numeric(with_scale(r, rscale))
        }
        ("ln" | "log" | "log10", [V::Float8(f)]) => {
            check_log_argument(*f == 0.0, *f < 0.0)?;
            V::Float8(if name == "ln" { f.ln() } else { f.log10() })
        }
        ("ln", [V::Numeric(d)]) => {
            check_log_argument(d.is_zero(), d.is_sign_negative())?;
            let digits = (numeric_weight(d).0 + 1) * 4;
            let rscale = match digits {
                2.. => MIN_SIG_DIGITS - ((digits - 1) as f64).log10() as i32,
                ..=0 => MIN_SIG_DIGITS - ((1 - digits) as f64).log10() as i32,
                _ => MIN_SIG_DIGITS,
            };
            let r = d.checked_ln().ok_or_else(numeric_overflow)?;
            V::Numeric(with_scale(r, rscale.max(d.scale() as i32)))
        }
        ("log" | "log10", [V::Numeric(d)]) => V::Numeric(numeric_log(Decimal::TEN, *d)?),
        ("log", [V::Numeric(base), V::Numeric(d)]) => V::Numeric(numeric_log(*base, *d)?),
        ("power" | "pow", [V::Float8(a), V::Float8(b)]) => V::Float8(float_pow(*a, *b)?),
        ("power" | "pow", [V::Numeric(a), V::Numeric(b)]) => V::Numeric(numeric_pow(*a, *b)?),
        ("mod", [a, b]) => Value::binary_op(BinaryOp::Mod, a, b)?,
        ("random", []) => {
            let bits = getrandom::u64()
                .map_err(|e| SqlError::internal(format!("random source failed: {e}")))?;
            V::Float8((bits >> 11) as f64 / (1u64 << 53) as f64)
        }
        ("pi", []) => V::Float8(std::f64::consts::PI),
        ("length" | "char_length" | "character_length", [V::Text(s)]) => {
            V::Int4(s.chars().count() as i32)
        }
        ("length" | "octet_length", [V::Bytea(b)]) => V::Int4(b.len() as i32),
        ("octet_length", [V::Text(s)]) => V::Int4(s.len() as i32),
        ("lower", [V::Text(s)]) => V::Text(s.to_ascii_lowercase()),
        ("upper", [V::Text(s)]) => V::Text(s.to_ascii_uppercase()),
        ("initcap", [V::Text(s)]) => V::Text(initcap(s)),
        ("reverse", [V::Text(s)]) => V::Text(s.chars().rev().collect()),
        ("md5", [V::Text(s)]) => V::Text(md5_hex(s.as_bytes())),
        ("md5", [V::Bytea(b)]) => V::Text(md5_hex(b)),
        ("btrim" | "trim" | "ltrim" | "rtrim", [V::Text(s), rest @ ..]) => {
            let set = match rest {
                [V::Text(chars)] => chars.as_str(),
                _ => " ",
            };
            let trimmed = match name {
                "ltrim" => s.trim_start_matches(|c| set.contains(c)),
                "rtrim" => s.trim_end_matches(|c| set.contains(c)),
                _ => s.trim_matches(|c| set.contains(c)),
            };
            V::Text(trimmed.to_string())
        }
        ("substr" | "substring", [V::Text(s), V::Int4(start), rest @ ..]) => {
            let len = match rest {
                [V::Int4(len)] => Some(*len),
                _ => None,
            };
            V::Text(substr(s, *start as i64, len.map(i64::from))?)
        }
        ("strpos", [V::Text(s), V::Text(needle)]) => V::Int4(
            s.find(needle.as_str())
                .map_or(0, |i| s[..i].chars().count() as i32 + 1),
        ),
        ("lpad" | "rpad", [V::Text(s), V::Int4(len), rest @ ..]) => {
            let fill = match rest {
                [V::Text(fill)] => fill.as_str(),
                _ => " ",
            };
            V::Text(pad(s, *len, fill, name == "lpad")?)
        }
        ("left" | "right", [V::Text(s), V::Int4(n)]) => {
            let count = s.chars().count() as i64;
            let n = *n as i64;
            let kept = if n >= 0 {
                n.min(count)
            } else {
                (count + n).max(0)
            };
            V::Text(if name == "left" {
                s.chars().take(kept as usize).collect()
            } else {
                s.chars().skip((count - kept) as usize).collect()
            })
        }
        ("repeat", [V::Text(s), V::Int4(n)]) => {
            let n = (*n).max(0) as usize;
            if s.len().saturating_mul(n) > MAX_ALLOC {
                return Err(too_large());
            }
            V::Text(s.repeat(n))
        }
        ("replace", [V::Text(s), V::Text(from), V::Text(to)]) => V::Text(if from.is_empty() {
            s.clone()
        } else {
            s.replace(from.as_str(), to)
        }),
        ("split_part", [V::Text(s), V::Text(delimiter), V::Int4(n)]) => {
            V::Text(split_part(s, delimiter, *n as i64)?)
        }
        (
            "now"
            | "current_timestamp"
            | "transaction_timestamp"
            | "statement_timestamp"
            | "clock_timestamp",
            [],
        ) => V::TimestampTz(truncate_to_micros(Utc::now())),
        ("current_date", []) => V::Date(Utc::now().date_naive()),
        ("localtimestamp", []) => V::Timestamp(truncate_to_micros(Utc::now()).naive_utc()),
        ("date_part" | "extract", [V::Text(unit), v]) => date_part(unit, v, name == "extract")?,
        ("date_trunc", [V::Text(unit), v]) => date_trunc(unit, v)?,
        ("version", []) => V::Text(format!(
            "PostgreSQL 15.0 (rxc {})",
            env!("CARGO_PKG_VERSION")
        )),
        _ => return Err(unexpected()),
    })
}

/// Applies a function with double precision and numeric variants.
fn map_number(v: &Value, float: fn(f64) -> f64, numeric: fn(&Decimal) -> Decimal) -> Result<Value> {
    match v {
        Value::Float8(f) => Ok(Value::Float8(float(*f))),
        Value::Numeric(d) => Ok(Value::Numeric(normalize_zero(numeric(d)))),
        _ => Err(SqlError::internal(
            "numeric function called on a non-number",
        )),
    }
}

/// `round(numeric, s)` / `trunc(numeric, s)`: to `s` fractional digits, or to a multiple of
/// 10^-s for negative `s`.
fn round_to(d: Decimal, s: i32, strategy: RoundingStrategy) -> Result<Decimal> {
    if s >= 0 {
        let scale = s.min(28);
        return Ok(with_scale(
            d.round_dp_with_strategy(scale as u32, strategy),
            scale,
        ));
    }
    if s < -28 {
        return Ok(Decimal::ZERO);
    }
    let unit = Decimal::from_i128_with_scale(10i128.pow(s.unsigned_abs()), 0);
    let q = d
        .checked_div(unit)
        .ok_or_else(numeric_overflow)?
        .round_dp_with_strategy(0, strategy);
    q.checked_mul(unit)
        .map(|r| with_scale(r, 0))
        .ok_or_else(numeric_overflow)
}

fn sqrt(v: &Value) -> Result<Value> {
    let negative = || {
        sqlerr!(
            INVALID_ARGUMENT_FOR_POWER_FUNCTION,
            "cannot take square root of a negative number"
        )
    };
    match v {
        Value::Float8(f) if *f < 0.0 => Err(negative()),
        Value::Float8(f) => Ok(Value::Float8(f.sqrt())),
        Value::Numeric(d) if d.is_sign_negative() && !d.is_zero() => Err(negative()),
        Value::Numeric(d) => {
            let sweight = (numeric_weight(d).0 + 1) * 4 / 2 - 1;
            let rscale = (MIN_SIG_DIGITS - sweight).max(d.scale() as i32);
            let r = d.sqrt().ok_or_else(numeric_overflow)?;
            Ok(Value::Numeric(with_scale(r, rscale)))
        }
        _ => Err(SqlError::internal("sqrt called on a non-number")),
    }
}

fn check_log_argument(zero: bool, negative: bool) -> Result<()> {
    if zero {
        return Err(sqlerr!(
            INVALID_ARGUMENT_FOR_LOGARITHM,
            "cannot take logarithm of zero"
        ));
    }
    if negative {
        return Err(sqlerr!(
            INVALID_ARGUMENT_FOR_LOGARITHM,
            "cannot take logarithm of a negative number"
        ));
    }
    Ok(())
}

/// PostgreSQL's estimate of the decimal weight of ln(d).
fn ln_dweight(d: &Decimal) -> i32 {
    if d.is_sign_negative() || d.is_zero() {
        return 0;
    }
    let (low, high) = (Decimal::new(9, 1), Decimal::new(11, 1));
    if *d >= low && *d <= high {
        let x = *d - Decimal::ONE;
        if x.is_zero() {
            return 0;
        }
        return x.mantissa().unsigned_abs().ilog10() as i32 - x.scale() as i32;
    }
    let ln = decimal_to_f64(d).ln().abs();
    if ln == 0.0 {
        0
    } else {
        ln.log10() as i32
    }
}

/// `log(base, d)` in numeric, scaled as PostgreSQL's log_var does.
fn numeric_log(base: Decimal, d: Decimal) -> Result<Decimal> {
    check_log_argument(
        base.is_zero() || d.is_zero(),
        base.is_sign_negative() || d.is_sign_negative(),
    )?;
    if base == Decimal::ONE {
        return Err(super::value::division_by_zero());
    }
    let rscale = (MIN_SIG_DIGITS - (ln_dweight(&d) - ln_dweight(&base)))
        .max(base.scale() as i32)
        .max(d.scale() as i32);
    let ln = |x: Decimal| x.checked_ln().ok_or_else(numeric_overflow);
    let r = ln(d)?.checked_div(ln(base)?).ok_or_else(numeric_overflow)?;
    Ok(with_scale(r, rscale))
}

fn too_large() -> SqlError {
    sqlerr!(PROGRAM_LIMIT_EXCEEDED, "requested length too large")
}

/// PostgreSQL's text_substr: characters `start .. start + len` (1-based), clipped to the string.
fn substr(s: &str, start: i64, len: Option<i64>) -> Result<String> {
    let begin = start.max(1);
    let end = match len {
        Some(len) if len < 0 => {
            return Err(sqlerr!(
                SUBSTRING_ERROR,
                "negative substring length not allowed"
            ))
        }
        Some(len) => start.saturating_add(len),
        None => i64::MAX,
    };
    if end <= begin {
        return Ok(String::new());
    }
    let count = usize::try_from(end - begin).unwrap_or(usize::MAX);
    Ok(s.chars().skip((begin - 1) as usize).take(count).collect())
}

/// lpad/rpad: pads with `fill` repeated, or truncates, to `len` characters.
fn pad(s: &str, len: i32, fill: &str, left: bool) -> Result<String> {
    let len = len.max(0) as usize;
    if len.saturating_mul(4) > MAX_ALLOC {
        return Err(too_large());
    }
    let count = s.chars().count();
    if count >= len {
        return Ok(s.chars().take(len).collect());
    }
    if fill.is_empty() {
        return Ok(s.to_string());
    }
    let padding: String = fill.chars().cycle().take(len - count).collect();
    Ok(if left {
        padding + s
    } else {
        format!("{s}{padding}")
    })
}

fn split_part(s: &str, delimiter: &str, n: i64) -> Result<String> {
    if n == 0 {
        return Err(sqlerr!(
            INVALID_PARAMETER_VALUE,
            "field position must not be zero"
        ));
    }
    if delimiter.is_empty() {
        return Ok(if n == 1 || n == -1 {
            s.to_string()
        } else {
            String::new()
        });
    }
    let parts: Vec<&str> = s.split(delimiter).collect();
    let index = if n > 0 { n - 1 } else { parts.len() as i64 + n };
    Ok(usize::try_from(index)
        .ok()
        .and_then(|i| parts.get(i))
        .unwrap_or(&"")
        .to_string())
}

/// Upper-cases the first letter of each run of letters and digits, lower-cases the rest
/// (ASCII only, as in the C locale).
fn initcap(s: &str) -> String {
    let mut in_word = false;
    s.chars()
        .map(|c| {
            let out = if in_word {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            };
            in_word = c.is_ascii_alphanumeric();
            out
        })
        .collect()
}

/// The value of `unit` in a date or timestamp: `date_part` (double precision) or `extract`
/// (numeric, with PostgreSQL's scales: 6 for seconds and epochs, 3 for milliseconds).
fn date_part(unit: &str, v: &Value, extract: bool) -> Result<Value> {
    let unit = unit.to_ascii_lowercase();
    let ts = v
        .timestamp_utc()
        .ok_or_else(|| SqlError::internal("date_part of a non-datetime value"))?;
    let date_only = extract && matches!(v, Value::Date(_));
    let type_name = match v {
        _ if date_only => "date",
        Value::TimestampTz(_) => "timestamp with time zone",
        _ => "timestamp without time zone",
    };
    let year = ts.year() as i128;
    let micros_in_minute = ts.second() as i128 * 1_000_000 + (ts.nanosecond() / 1000) as i128;
    let micros_in_day =
        ts.num_seconds_from_midnight() as i128 * 1_000_000 + (ts.nanosecond() / 1000) as i128;
    let days = (ts.date() - DateTime::UNIX_EPOCH.date_naive()).num_days() as i128;
    let julian_day = days + 2_440_588;
    let time_unit = matches!(
        unit.as_str(),
        "hour"
            | "minute"
            | "second"
            | "milliseconds"
            | "microseconds"
            | "timezone"
            | "timezone_hour"
            | "timezone_minute"
    );
    if date_only && time_unit {
        return Err(SqlError::unsupported(format!(
            "unit \"{unit}\" not supported for type date"
        )));
    }
    let (mantissa, scale): (i128, u32) = match unit.as_str() {
        "year" => (if year > 0 { year } else { year - 1 }, 0),
        "month" => (ts.month() as i128, 0),
        "day" => (ts.day() as i128, 0),
        "hour" => (ts.hour() as i128, 0),
        "minute" => (ts.minute() as i128, 0),
        "second" => (micros_in_minute, 6),
        "milliseconds" => (micros_in_minute, 3),
        "microseconds" => (micros_in_minute, 0),
        "dow" => (ts.weekday().num_days_from_sunday() as i128, 0),
        "isodow" => (ts.weekday().number_from_monday() as i128, 0),
        "doy" => (ts.ordinal() as i128, 0),
        "week" => (ts.iso_week().week() as i128, 0),
        "isoyear" => (ts.iso_week().year() as i128, 0),
        "quarter" => ((ts.month() as i128 - 1) / 3 + 1, 0),
        "decade" if year >= 0 => (year / 10, 0),
        "decade" => (-((8 - (year - 1)) / 10), 0),
        "century" if year > 0 => ((year + 99) / 100, 0),
        "century" => (-((99 - (year - 1)) / 100), 0),
        "millennium" if year > 0 => ((year + 999) / 1000, 0),
        "millennium" => (-((999 - (year - 1)) / 1000), 0),
        "epoch" if date_only => (days * 86_400, 0),
        "epoch" => (ts.and_utc().timestamp_micros() as i128, 6),
        "julian" if date_only => (julian_day, 0),
        "julian" => {
            let day = Decimal::from(86_400_000_000i64);
            let micros =
                Decimal::from_i128_with_scale(julian_day * 86_400_000_000 + micros_in_day, 0);
            let r = micros.checked_div(day).ok_or_else(numeric_overflow)?;
            return Ok(number_result(with_scale(r, 20), extract));
        }
        "timezone" | "timezone_hour" | "timezone_minute" if matches!(v, Value::TimestampTz(_)) => {
            (0, 0)
        }
        _ => {
            return Err(sqlerr!(
                INVALID_PARAMETER_VALUE,
                "unit \"{unit}\" not recognized for type {type_name}"
            ))
        }
    };
    Ok(number_result(
        Decimal::from_i128_with_scale(mantissa, scale),
        extract,
    ))
}

fn number_result(d: Decimal, numeric: bool) -> Value {
    if numeric {
        Value::Numeric(d)
    } else {
        Value::Float8(decimal_to_f64(&d))
    }
}

/// Truncates a timestamp to the start of `unit`. A date is truncated as a timestamptz.
fn date_trunc(unit: &str, v: &Value) -> Result<Value> {
    let unit = unit.to_ascii_lowercase();
    let ts = v
        .timestamp_utc()
        .ok_or_else(|| SqlError::internal("date_trunc of a non-datetime value"))?;
    let with_zone = !matches!(v, Value::Timestamp(_));
    let (date, year) = (ts.date(), ts.year());
    let year_start = |y: i32| NaiveDate::from_ymd_opt(y, 1, 1).map(|d| d.and_time(NaiveTime::MIN));
    let truncated: Option<NaiveDateTime> = match unit.as_str() {
        "microseconds" => Some(ts),
        "milliseconds" => ts.with_nanosecond(ts.nanosecond() / 1_000_000 * 1_000_000),
        "second" => ts.with_nanosecond(0),
        "minute" => date.and_hms_opt(ts.hour(), ts.minute(), 0),
        "hour" => date.and_hms_opt(ts.hour(), 0, 0),
        "day" => Some(date.and_time(NaiveTime::MIN)),
        "week" => {
            let monday = date - Duration::days(date.weekday().num_days_from_monday() as i64);
            Some(monday.and_time(NaiveTime::MIN))
        }
        "month" | "quarter" => {
            let month = if unit == "month" {
                ts.month()
            } else {
                (ts.month() - 1) / 3 * 3 + 1
            };
            NaiveDate::from_ymd_opt(year, month, 1).map(|d| d.and_time(NaiveTime::MIN))
        }
        "year" => year_start(year),
        "decade" if year > 0 => year_start(year / 10 * 10),
        "decade" => year_start(-((8 - (year - 1)) / 10) * 10),
        "century" if year > 0 => year_start((year + 99) / 100 * 100 - 99),
        "century" => year_start(-((99 - (year - 1)) / 100) * 100 + 1),
        "millennium" if year > 0 => year_start((year + 999) / 1000 * 1000 - 999),
        "millennium" => year_start(-((999 - (year - 1)) / 1000) * 1000 + 1),
        _ => {
            let type_name = if with_zone {
                "timestamp with time zone"
            } else {
                "timestamp without time zone"
            };
            return Err(sqlerr!(
                INVALID_PARAMETER_VALUE,
                "unit \"{unit}\" not recognized for type {type_name}"
            ));
        }
    };
    let truncated =
        truncated.ok_or_else(|| sqlerr!(DATETIME_FIELD_OVERFLOW, "timestamp out of range"))?;
    Ok(if with_zone {
        Value::TimestampTz(truncated.and_utc())
    } else {
        Value::Timestamp(truncated)
    })
}

/// MD5 (RFC 1321) as lower-case hex.
fn md5_hex(data: &[u8]) -> String {
    const SHIFTS: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&(data.len() as u64).wrapping_mul(8).to_le_bytes());
    let mut state: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    for block in message.chunks_exact(64) {
        let words: Vec<u32> = block
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(K[i]).wrapping_add(words[g]);
            (a, d, c) = (d, c, b);
            b = b.wrapping_add(f.rotate_left(SHIFTS[i / 16 * 4 + i % 4]));
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
    state
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    //! Cases are calls and what PostgreSQL 15 prints for them (see `value::tests`).

    use super::*;
    use crate::sql::value::tests::{check, eval, find_unquoted, sql_type};

    /// Splits `a, f(b, c), 'd,e'` at its top-level commas.
    fn split_args(s: &str) -> Vec<&str> {
        let (mut depth, mut quoted, mut start, mut out) = (0, false, 0, Vec::new());
        for (i, c) in s.char_indices() {
            match c {
                '\'' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => depth -= 1,
                ',' if !quoted && depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        if !s[start..].trim().is_empty() {
            out.push(&s[start..]);
        }
        out
    }

    /// Evaluates `name(arg, ...)` with literal arguments, as the executor calls it, optionally
    /// followed by `|| literal`.
    fn eval_call(expr: &str) -> Result<Value> {
        let expr = expr.trim();
        if let Some(i) = find_unquoted(expr, " || ") {
            return Value::binary_op(
                BinaryOp::Concat,
                &eval_call(&expr[..i])?,
                &eval(&expr[i + 4..])?,
            );
        }
        let (name, rest) = expr.split_once('(').expect("a call");
        let args = split_args(rest.strip_suffix(')').expect("a call"));
        let values = args.iter().map(|a| eval(a)).collect::<Result<Vec<_>>>()?;
        call(name, &values)
    }

    #[test]
    fn math() {
        check(
            r#"
            abs(-5) => 5
            abs(-1.50) => 1.50
            abs(-2.5::float4) => 2.5
            abs('-1') => 1
            abs(-2147483648::int4) => 22003 integer out of range
            ceil(1.2) => 2
            ceil(1.20) => 2
            ceil(-1.2::float8) => -1
            ceil(-0.5::float8) => -0
            ceil(-0.5) => 0
            ceiling(5) => 5
            floor(-1.5) => -2
            floor(1.5::float8) => 1
            floor(-1.25) => -2
            round(2.5) => 3
            round(2.5::float8) => 2
            round(3.5::float8) => 4
            round(-2.5) => -3
            round(-0.4) => 0
            round(-0.4::float8) => -0
            round(-0.5::float8) => -0
            round(2.5::float4) => 2
            round(5) => 5
            round(1.2345, 2) => 1.23
            round(1234.5, -2) => 1200
            round(5, 1) => 5.0
            round(1.5, 0) => 2
            round(-1.55, 1) => -1.6
            round(1e20, -25) => 0
            trunc(1.99) => 1
            trunc(-1.99::float8) => -1
            trunc(-0.5) => 0
            trunc(1.999, 2) => 1.99
            trunc(1999, -2) => 1900
            trunc(-1.55, 1) => -1.5
            trunc(5) => 5
            sqrt(2) => 1.4142135623730951
            sqrt(2::numeric) => 1.414213562373095
            sqrt(4.0) => 2.000000000000000
            sqrt(100::numeric) => 10.000000000000000
            sqrt(0.0001::numeric) => 0.01000000000000000
            sqrt(0.0) => 0.000000000000000
            sqrt(-1) => 2201F cannot take square root of a negative number
            sqrt(-1::numeric) => 2201F cannot take square root of a negative number
            power(2, 10) => 1024
            pow(2.0, 3) => 8.0000000000000000
            power(2::numeric, 0.5) => 1.4142135623730950
            exp(1) => 2.718281828459045
            exp(1.0) => 2.7182818284590452
            exp(1000::float8) => 22003 value out of range: overflow
            exp(-1000::float8) => 22003 value out of range: underflow
            ln(10) => 2.302585092994046
            ln(10.0) => 2.3025850929940457
            log(100) => 2
            log(100.0) => 2.0000000000000000
            log(2, 8) => 3.0000000000000000
            log(2.0, 8.0) => 3.0000000000000000
            log10(1000) => 3
            ln(0) => 2201E cannot take logarithm of zero
            ln(0::float8) => 2201E cannot take logarithm of zero
            ln(-1.0) => 2201E cannot take logarithm of a negative number
            ln(-1::float8) => 2201E cannot take logarithm of a negative number
            log(0) => 2201E cannot take logarithm of zero
            mod(7, 3) => 1
            mod(-7, 3) => -1
            mod(7.5, 2) => 1.5
            mod(7::int2, 2::int2) => 1
            mod(7, '3') => 1
            mod(1, 0) => 22012 division by zero
            sign(-5) => -1
            sign(2.5) => 1
            sign(0::float8) => 0
            sign('-0'::float8) => 0
            pi() => 3.141592653589793
            sqrt(NULL) => NULL
            round(NULL, 2) => NULL
        "#,
            eval_call,
        );
        for _ in 0..100 {
            let r = call("random", &[]).unwrap().as_f64().unwrap();
            assert!((0.0..1.0).contains(&r));
        }
    }

    #[test]
    fn strings() {
        check(
            r#"
            length('héllo') => 5
            octet_length('héllo') => 6
            char_length('ab ') => 3
            octet_length('ab'::char(5)) => 5
            length('\x0102'::bytea) => 2
            length(NULL) => NULL
            lower('ÀBC') => Àbc
            upper('àbc') => àBC
            upper('straße') => STRAßE
            upper(NULL) => NULL
            initcap('hello wORLD foo-bar 1st') => Hello World Foo-Bar 1st
            initcap('éLAN hello_world x1y') => éLan Hello_World X1y
            reverse('abç') => çba
            substr('hello', 2) => ello
            substr('hello', 2, 2) => el
            substr('hello', 0, 3) => he
            substr('hello', -1, 3) => h
            substr('hello', 10) => 
            substring('hello', 2, 10) => ello
            substr('hello', 1, -1) => 22011 negative substring length not allowed
            strpos('hello', 'l') => 3
            strpos('hello', 'z') => 0
            strpos('héllo', 'l') => 3
            strpos('abc', '') => 1
            trim('  a  ') || '|' => a|
            ltrim('  a  ') || '|' => a  |
            rtrim('  a  ') || '|' =>   a|
            btrim('xxaxx', 'x') => a
            ltrim('xyaxy', 'yx') => axy
            rtrim('axyxy', 'xy') => a
            lpad('hi', 5, 'xy') => xyxhi
            lpad('hello', 3) => hel
            lpad('hi', -1) => 
            rpad('hi', 5, 'xy') => hixyx
            rpad('hi', 5, '') => hi
            lpad('hi', 5, '') => hi
            left('hello', 2) => he
            left('hello', -2) => hel
            right('hello', 2) => lo
            right('hello', -2) => llo
            left('hi', 10) => hi
            repeat('ab', 3) => ababab
            repeat('ab', -1) => 
            repeat('ab', 1000000000) => 54000 requested length too large
            lpad('a', 2000000000) => 54000 requested length too large
            replace('hello', 'l', 'L') => heLLo
            replace('hello', '', 'x') => hello
            concat('a', NULL, 1, true, 1.50, NULL) => a1t1.50
            concat(NULL) => 
            concat('a'::char(3), 'b') => a  b
            concat_ws(',', 'a', NULL, 'b', 2) => a,b,2
            concat_ws(',', 'a') => a
            concat_ws(NULL, 'a') => NULL
            split_part('a,b,c', ',', 2) => b
            split_part('a,b,c', ',', 5) => 
            split_part('a,b,c', ',', -1) => c
            split_part('abc', '', 1) => abc
            split_part('abc', '', 2) => 
            split_part('a,b', ',', 0) => 22023 field position must not be zero
            md5('abc') => 900150983cd24fb0d6963f7d28e17f72
            md5('') => d41d8cd98f00b204e9800998ecf8427e
            md5('\x00ff'::bytea) => d07d34efac6328007ad67c7e0a985e00
            greatest(1, 2.5, NULL) => 2.5
            least(1, 2, NULL) => 1
            greatest(NULL::int4, NULL) => NULL
            greatest('a', 'b') => b
            greatest(1.5::float4, 2) => 2
            least('b'::varchar, 'a'::text) => a
        "#,
            eval_call,
        );
        assert!(call("version", &[])
            .unwrap()
            .to_text()
            .unwrap()
            .starts_with("PostgreSQL 15"));
    }

    #[test]
    fn dates() {
        check(
            r#"
            date_part('year', '2024-03-15 12:34:56.5'::timestamp) => 2024
            date_part('second', '2024-03-15 12:34:56.5'::timestamp) => 56.5
            date_part('epoch', '2024-03-15 12:34:56.5'::timestamp) => 1710506096.5
            date_part('dow', '2024-03-15'::date) => 5
            date_part('doy', '2024-03-15'::date) => 75
            date_part('hour', '2024-03-15'::date) => 0
            date_part('epoch', '2024-03-15'::date) => 1710460800
            date_part('quarter', '2024-03-15'::date) => 1
            date_part('week', '2024-01-01'::date) => 1
            date_part('isodow', '2024-03-17'::date) => 7
            date_part('isoyear', '2024-01-01'::date) => 2024
            date_part('century', '2024-01-01'::date) => 21
            date_part('decade', '2024-01-01'::date) => 202
            date_part('millennium', '2024-01-01'::date) => 3
            date_part('milliseconds', '2024-01-01 00:00:01.5'::timestamp) => 1500
            date_part('microseconds', '2024-01-01 00:00:01.5'::timestamp) => 1500000
            date_part('julian', '2024-01-01'::date) => 2460311
            date_part('minute', '2024-01-01 10:11:12'::timestamp) => 11
            date_part('year', '0001-01-01 BC'::date) => -1
            date_part('decade', '0001-01-01 BC'::date) => 0
            date_part('millennium', '0001-01-01 BC'::date) => -1
            date_part('hour', '2024-03-15 23:00:00+00'::timestamptz) => 23
            date_part('foo', '2024-03-15'::timestamp) => 22023 unit "foo" not recognized for type timestamp without time zone
            extract('year', '2024-03-15 12:34:56.5'::timestamp) => 2024
            extract('second', '2024-03-15 12:34:56.5'::timestamp) => 56.500000
            extract('second', '2024-03-15 12:34:56'::timestamp) => 56.000000
            extract('epoch', '2024-03-15 12:34:56.5'::timestamp) => 1710506096.500000
            extract('epoch', '2024-03-15 12:34:56.5+00'::timestamptz) => 1710506096.500000
            extract('epoch', '1969-12-31 23:59:59.5'::timestamp) => -0.500000
            extract('dow', '2024-03-15'::date) => 5
            extract('epoch', '2024-03-15'::date) => 1710460800
            extract('milliseconds', '2024-01-01 00:00:01.5'::timestamp) => 1500.000
            extract('microseconds', '2024-01-01 00:00:01.5'::timestamp) => 1500000
            extract('julian', '2024-01-01'::date) => 2460311
            extract('julian', '2024-01-01 12:00'::timestamp) => 2460311.50000000000000000000
            extract('year', '0001-01-01 BC'::date) => -1
            extract('century', '0001-01-01 BC'::date) => -1
            extract('dow', '2024-03-15 23:00:00+00'::timestamptz) => 5
            extract('timezone', '2024-03-15 23:00:00+00'::timestamptz) => 0
            extract('hour', '2024-03-15'::date) => 0A000 unit "hour" not supported for type date
            extract('foo', '2024-03-15'::timestamp) => 22023 unit "foo" not recognized for type timestamp without time zone
            extract('foo', '2024-03-15'::date) => 22023 unit "foo" not recognized for type date
            date_trunc('month', '2024-03-15 12:34:56.5'::timestamp) => 2024-03-01 00:00:00
            date_trunc('week', '2024-03-15 12:34:56.5'::timestamp) => 2024-03-11 00:00:00
            date_trunc('quarter', '2024-05-15 12:34:56.5'::timestamp) => 2024-04-01 00:00:00
            date_trunc('hour', '2024-03-15 12:34:56.5+00'::timestamptz) => 2024-03-15 12:00:00+00
            date_trunc('day', '2024-03-15'::date) => 2024-03-15 00:00:00+00
            date_trunc('milliseconds', '2024-03-15 12:34:56.123456'::timestamp) => 2024-03-15 12:34:56.123
            date_trunc('decade', '2024-03-15'::timestamp) => 2020-01-01 00:00:00
            date_trunc('century', '2024-03-15'::timestamp) => 2001-01-01 00:00:00
            date_trunc('millennium', '2024-03-15'::timestamp) => 2001-01-01 00:00:00
            date_trunc('YEAR', '2024-03-15'::timestamp) => 2024-01-01 00:00:00
            date_trunc('foo', '2024-03-15'::timestamp) => 22023 unit "foo" not recognized for type timestamp without time zone
            date_trunc('foo', '2024-03-15'::timestamptz) => 22023 unit "foo" not recognized for type timestamp with time zone
            date_part('year', NULL::date) => NULL
        "#,
            eval_call,
        );
        let before = Utc::now() - Duration::seconds(1);
        let now = call("now", &[]).unwrap();
        assert!(matches!(now, Value::TimestampTz(t) if t >= before));
        assert!(matches!(call("current_date", &[]).unwrap(), Value::Date(_)));
    }

    #[test]
    fn return_types() {
        for line in r#"
            abs(unknown) => double precision
            abs(smallint) => smallint
            round(unknown) => double precision
            round(real) => double precision
            round(integer) => double precision
            round(integer, integer) => numeric
            ceil(integer) => double precision
            floor(bigint) => double precision
            sqrt(unknown) => double precision
            sign(unknown) => double precision
            power(integer, integer) => double precision
            power(unknown, integer) => double precision
            power(numeric, unknown) => numeric
            log(unknown, integer) => numeric
            trunc(unknown, integer) => numeric
            mod(smallint, integer) => integer
            mod(bigint, unknown) => bigint
            length(unknown) => integer
            length(character varying(3)) => integer
            upper(character varying) => text
            lpad(unknown, integer) => text
            concat(unknown) => text
            greatest(integer, bigint) => bigint
            greatest(unknown, unknown) => text
            now() => timestamp with time zone
            current_date() => date
            localtimestamp() => timestamp without time zone
            date_part(text, date) => double precision
            extract(text, timestamp) => numeric
            date_trunc(unknown, date) => timestamp with time zone
            date_trunc(unknown, timestamp) => timestamp without time zone
            mod(unknown, unknown) => 42725 function mod(unknown, unknown) is not unique
            date_part(unknown, unknown) => 42725 function date_part(unknown, unknown) is not unique
            date_trunc(unknown, unknown) => 42725 function date_trunc(unknown, unknown) is not unique
            date_part(unknown, text) => 42883 function date_part(unknown, text) does not exist
            round(double precision, integer) => 42883 function round(double precision, integer) does not exist
            length(integer) => 42883 function length(integer) does not exist
            upper(integer) => 42883 function upper(integer) does not exist
            repeat(unknown, bigint) => 42883 function repeat(unknown, bigint) does not exist
            foo(integer, unknown, unknown) => 42883 function foo(integer, unknown, unknown) does not exist
            concat() => 42883 function concat() does not exist
            concat_ws(unknown) => 42883 function concat_ws(unknown) does not exist
            greatest(integer, boolean) => 42804 GREATEST types integer and boolean cannot be matched
        "#
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        {
            let (expr, want) = line.split_once(" => ").unwrap();
            let (name, rest) = expr.split_once('(').unwrap();
            let args: Vec<DataType> = split_args(rest.strip_suffix(')').unwrap())
                .iter()
                .map(|t| match t.trim() {
                    "unknown" => DataType::Unknown,
                    t => sql_type(t).unwrap(),
                })
                .collect();
            let got = match return_type(name, &args) {
                Ok(t) => t.name(),
                Err(e) => format!("{} {}", e.code, e.message),
            };
            assert_eq!(got, want, "{expr}");
        }
        let e = return_type("length", &[DataType::Int4]).unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("No function matches the given name and argument types. You might need to add explicit type casts.")
        );
    }
}
