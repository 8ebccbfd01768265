//! SQL types and values, with PostgreSQL 15's semantics for everything a value does on its own:
//! text input and output, casts, operators, comparison, and the total order and hashing that
//! sorting, grouping and hash joins use.
//!
//! rxc behaves like a PostgreSQL cluster initialised with the C locale and run with
//! `DateStyle=ISO`, `TimeZone=UTC` and `extra_float_digits=1`: text compares by bytes, case
//! folding is ASCII-only, timestamps print in UTC, floats print their shortest round-trip form.
//!
//! Representation limits, each reported as an error rather than a wrong answer:
//! - `numeric` is a [`Decimal`]: a 96-bit mantissa and at most 28 fractional digits, with no NaN
//!   or infinities. Results take PostgreSQL's display scale where it fits; beyond about 7.9e28 a
//!   value is 22003 `value overflows numeric format`.
//! - dates and timestamps are chrono's (microsecond precision); `infinity` is refused.
//! - a `char(n)` value is stored padded to `n`; comparisons see the padding, so two `char`
//!   values of different lengths differ where PostgreSQL would ignore trailing spaces.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};
use sqlparser::ast;

use super::error::{sqlstate, Result, SqlError};
use crate::sqlerr;

/// A SQL data type, with its type modifier where it has one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DataType {
    /// `boolean`
    Bool,
    /// `smallint`
    Int2,
    /// `integer`
    Int4,
    /// `bigint`
    Int8,
    /// `real`
    Float4,
    /// `double precision`
    Float8,
    /// `numeric[(precision[, scale])]`
    Numeric(Option<(u32, u32)>),
    /// `text`
    Text,
    /// `character varying[(n)]`
    Varchar(Option<u32>),
    /// `character(n)` (`char` alone is `char(1)`)
    Char(u32),
    /// `date`
    Date,
    /// `timestamp without time zone`
    Timestamp,
    /// `timestamp with time zone`
    TimestampTz,
    /// `bytea`
    Bytea,
    /// The type of an untyped literal or NULL before resolution (PostgreSQL's `unknown`).
    Unknown,
}

/// A SQL value.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Float4(f32),
    Float8(f64),
    Numeric(#[serde(with = "rust_decimal::serde::str")] Decimal),
    /// `text`, `varchar`, `char` (char values keep their padding), and unknown-typed literals.
    Text(String),
    /// Days since 1970-01-01 would lose nothing, but chrono's type reads better.
    Date(chrono::NaiveDate),
    Timestamp(chrono::NaiveDateTime),
    TimestampTz(chrono::DateTime<chrono::Utc>),
    Bytea(Vec<u8>),
}

/// Binary operators of expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Concat,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Like,
    ILike,
    NotLike,
    NotILike,
}

/// Unary arithmetic operators (NOT, IS NULL and the like belong to the executor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Plus,
}

const OPERATOR_HINT: &str =
    "No operator matches the given name and argument types. You might need to add explicit type casts.";
const AMBIGUOUS_OPERATOR_HINT: &str =
    "Could not choose a best candidate operator. You might need to add explicit type casts.";
/// PostgreSQL's longest `varchar`/`char` length.
const MAX_CHAR_LENGTH: i64 = 10_485_760;
/// Digits PostgreSQL's numeric results carry at least (NUMERIC_MIN_SIG_DIGITS).
pub(crate) const MIN_SIG_DIGITS: i32 = 16;

impl DataType {
    /// Resolves a type name as written in SQL. `serial` and friends are the binder's business.
    pub fn from_sql(ty: &ast::DataType) -> Result<DataType> {
        use ast::DataType as T;
        use ast::ExactNumberInfo as N;
        Ok(match ty {
            T::Bool | T::Boolean => DataType::Bool,
            T::Int2(None) | T::SmallInt(None) => DataType::Int2,
            T::Int(None) | T::Int4(None) | T::Integer(None) => DataType::Int4,
            T::Int8(None) | T::BigInt(None) => DataType::Int8,
            T::Real | T::Float4 => DataType::Float4,
            T::Float8 | T::DoublePrecision | T::Double(N::None) | T::Float(N::None) => {
                DataType::Float8
            }
            T::Float(N::Precision(p)) => match *p {
                0 => {
                    return Err(invalid_type_parameter(
                        "precision for type float must be at least 1 bit",
                    ))
                }
                1..=24 => DataType::Float4,
                25..=53 => DataType::Float8,
                _ => {
                    return Err(invalid_type_parameter(
                        "precision for type float must be less than 54 bits",
                    ))
                }
            },
            T::Numeric(info) | T::Decimal(info) | T::Dec(info) => match info {
                N::None => DataType::Numeric(None),
                N::Precision(p) => numeric_type(*p as i64, 0)?,
                N::PrecisionAndScale(p, s) => numeric_type(*p as i64, *s)?,
            },
            T::Text => DataType::Text,
            T::Varchar(len) | T::CharacterVarying(len) | T::CharVarying(len) => {
                DataType::Varchar(character_length(len, "varchar")?)
            }
            T::Char(len) | T::Character(len) => {
                DataType::Char(character_length(len, "char")?.unwrap_or(1))
            }
            T::Date => DataType::Date,
            T::Timestamp(_, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => {
                DataType::Timestamp
            }
            T::Timestamp(_, _) => DataType::TimestampTz,
            T::Bytea => DataType::Bytea,
            T::Int2(Some(_))
            | T::SmallInt(Some(_))
            | T::Int(Some(_))
            | T::Int4(Some(_))
            | T::Integer(Some(_))
            | T::Int8(Some(_))
            | T::BigInt(Some(_)) => return Err(SqlError::syntax("syntax error at or near \"(\"")),
            T::Custom(name, modifiers) => return type_by_name(name, modifiers),
            other => return Err(undefined_type(&other.to_string().to_lowercase())),
        })
    }

    /// The PostgreSQL type OID.
    pub fn oid(&self) -> u32 {
        match self {
            DataType::Bool => 16,
            DataType::Int2 => 21,
            DataType::Int4 => 23,
            DataType::Int8 => 20,
            DataType::Float4 => 700,
            DataType::Float8 => 701,
            DataType::Numeric(_) => 1700,
            DataType::Text => 25,
            DataType::Varchar(_) => 1043,
            DataType::Char(_) => 1042,
            DataType::Date => 1082,
            DataType::Timestamp => 1114,
            DataType::TimestampTz => 1184,
            DataType::Bytea => 17,
            DataType::Unknown => 705,
        }
    }

    /// The type of an OID, without a type modifier. `bpchar` without a length has no
    /// [`DataType`] of its own and comes back as `text`, which accepts the same values.
    pub fn from_oid(oid: u32) -> Option<DataType> {
        Some(match oid {
            16 => DataType::Bool,
            21 => DataType::Int2,
            23 => DataType::Int4,
            20 => DataType::Int8,
            700 => DataType::Float4,
            701 => DataType::Float8,
            1700 => DataType::Numeric(None),
            25 | 1042 => DataType::Text,
            1043 => DataType::Varchar(None),
            1082 => DataType::Date,
            1114 => DataType::Timestamp,
            1184 => DataType::TimestampTz,
            17 => DataType::Bytea,
            705 => DataType::Unknown,
            _ => return None,
        })
    }

    /// The type modifier as `pg_attribute.atttypmod` holds it, -1 for none.
    pub fn typmod(&self) -> i32 {
        match self {
            DataType::Varchar(Some(n)) | DataType::Char(n) => *n as i32 + 4,
            DataType::Numeric(Some((p, s))) => (((*p as i32) << 16) | *s as i32) + 4,
            _ => -1,
        }
    }

    /// The name as PostgreSQL's `format_type` prints it, with the type modifier.
    pub fn name(&self) -> String {
        match self {
            DataType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
            DataType::Varchar(Some(n)) => format!("character varying({n})"),
            DataType::Char(n) => format!("character({n})"),
            other => other.base_name().to_string(),
        }
    }

    /// The name without a type modifier, as PostgreSQL's error messages print types.
    pub(crate) fn base_name(&self) -> &'static str {
        match self {
            DataType::Bool => "boolean",
            DataType::Int2 => "smallint",
            DataType::Int4 => "integer",
            DataType::Int8 => "bigint",
            DataType::Float4 => "real",
            DataType::Float8 => "double precision",
            DataType::Numeric(_) => "numeric",
            DataType::Text => "text",
            DataType::Varchar(_) => "character varying",
            DataType::Char(_) => "character",
            DataType::Date => "date",
            DataType::Timestamp => "timestamp without time zone",
            DataType::TimestampTz => "timestamp with time zone",
            DataType::Bytea => "bytea",
            DataType::Unknown => "unknown",
        }
    }

    /// Whether the type is one of the numeric types: integers, floats, `numeric`.
    pub fn is_numeric(&self) -> bool {
        numeric_rank(self).is_some()
    }

    /// Whether the type is a string type, counting `unknown` (an untyped literal is a string).
    pub fn is_string(&self) -> bool {
        matches!(
            self,
            DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Unknown
        )
    }

    /// `pg_type.typlen`: the fixed size in bytes, -1 for variable length, -2 for `unknown`.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> i16 {
        match self {
            DataType::Bool => 1,
            DataType::Int2 => 2,
            DataType::Int4 | DataType::Float4 | DataType::Date => 4,
            DataType::Int8 | DataType::Float8 | DataType::Timestamp | DataType::TimestampTz => 8,
            DataType::Unknown => -2,
            _ => -1,
        }
    }

    /// The type both sides of a comparison, UNION, CASE, COALESCE or VALUES column resolve to:
    /// PostgreSQL's rules simplified. Numbers widen along int2 < int4 < int8 < numeric < real <
    /// double precision; `unknown` takes the other side (two unknowns stay unknown, which the
    /// caller resolves to text); two string types meet at text (two varchars at varchar);
    /// date < timestamp < timestamptz. `context` names the construct in the error, as in
    /// 42804 `UNION types text and integer cannot be matched`.
    pub fn common(a: &DataType, b: &DataType, context: &str) -> Result<DataType> {
        use DataType::*;
        Ok(match (a, b) {
            (Unknown, t) | (t, Unknown) => t.clone(),
            _ if a == b => a.clone(),
            _ if a.is_numeric() && b.is_numeric() => {
                match if numeric_rank(a) >= numeric_rank(b) {
                    a
                } else {
                    b
                } {
                    Numeric(_) => Numeric(None),
                    wider => wider.clone(),
                }
            }
            (Varchar(_), Varchar(_)) => Varchar(None),
            _ if a.is_string() && b.is_string() => Text,
            (Date, Timestamp) | (Timestamp, Date) => Timestamp,
            (Date | Timestamp, TimestampTz) | (TimestampTz, Date | Timestamp) => TimestampTz,
            _ => {
                return Err(sqlerr!(
                    DATATYPE_MISMATCH,
                    "{context} types {} and {} cannot be matched",
                    a.base_name(),
                    b.base_name()
                ))
            }
        })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The position of a numeric type in PostgreSQL's implicit-cast ladder.
fn numeric_rank(t: &DataType) -> Option<u8> {
    Some(match t {
        DataType::Int2 => 0,
        DataType::Int4 => 1,
        DataType::Int8 => 2,
        DataType::Numeric(_) => 3,
        DataType::Float4 => 4,
        DataType::Float8 => 5,
        _ => return None,
    })
}

fn invalid_type_parameter(message: &str) -> SqlError {
    SqlError::new(sqlstate::INVALID_PARAMETER_VALUE, message)
}

fn undefined_type(name: &str) -> SqlError {
    sqlerr!(UNDEFINED_OBJECT, "type \"{name}\" does not exist")
}

fn numeric_type(precision: i64, scale: i64) -> Result<DataType> {
    if !(1..=1000).contains(&precision) {
        return Err(invalid_type_parameter(&format!(
            "NUMERIC precision {precision} must be between 1 and 1000"
        )));
    }
    if !(-1000..=1000).contains(&scale) {
        return Err(invalid_type_parameter(&format!(
            "NUMERIC scale {scale} must be between -1000 and 1000"
        )));
    }
    if !(0..=28).contains(&scale) {
        return Err(SqlError::unsupported(format!(
            "NUMERIC scale {scale} is not supported (rxc supports 0 to 28)"
        )));
    }
    Ok(DataType::Numeric(Some((precision as u32, scale as u32))))
}

fn check_character_length(length: i64, name: &str) -> Result<u32> {
    if length < 1 {
        return Err(invalid_type_parameter(&format!(
            "length for type {name} must be at least 1"
        )));
    }
    if length > MAX_CHAR_LENGTH {
        return Err(invalid_type_parameter(&format!(
            "length for type {name} cannot exceed {MAX_CHAR_LENGTH}"
        )));
    }
    Ok(length as u32)
}

fn character_length(len: &Option<ast::CharacterLength>, name: &str) -> Result<Option<u32>> {
    match len {
        None => Ok(None),
        Some(ast::CharacterLength::IntegerLength { length, .. }) => {
            check_character_length(i64::try_from(*length).unwrap_or(i64::MAX), name).map(Some)
        }
        Some(ast::CharacterLength::Max) => Err(SqlError::syntax("syntax error at or near \"max\"")),
    }
}

/// A type written as a plain name, e.g. `bpchar`, `"int4"` or `pg_catalog.varchar(3)`.
fn type_by_name(name: &ast::ObjectName, modifiers: &[String]) -> Result<DataType> {
    let name = match name.0.last().and_then(|part| part.as_ident()) {
        Some(ident) if ident.quote_style.is_some() => ident.value.clone(),
        Some(ident) => ident.value.to_lowercase(),
        None => name.to_string(),
    };
    let mods = modifiers
        .iter()
        .map(|m| m.trim().parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| SqlError::syntax(format!("invalid type modifier for type \"{name}\"")))?;
    let plain = match name.as_str() {
        "bool" | "boolean" => DataType::Bool,
        "int2" | "smallint" => DataType::Int2,
        "int4" | "int" | "integer" => DataType::Int4,
        "int8" | "bigint" => DataType::Int8,
        "float4" | "real" => DataType::Float4,
        "float8" => DataType::Float8,
        "text" => DataType::Text,
        "date" => DataType::Date,
        "timestamp" => DataType::Timestamp,
        "timestamptz" => DataType::TimestampTz,
        "bytea" => DataType::Bytea,
        "numeric" | "decimal" => match mods.as_slice() {
            [] => return Ok(DataType::Numeric(None)),
            [p] => return numeric_type(*p, 0),
            [p, s] => return numeric_type(*p, *s),
            _ => return Err(SqlError::syntax("invalid NUMERIC type modifier")),
        },
        "varchar" => match mods.as_slice() {
            [] => return Ok(DataType::Varchar(None)),
            [n] => {
                return Ok(DataType::Varchar(Some(check_character_length(
                    *n, "varchar",
                )?)))
            }
            _ => {
                return Err(SqlError::syntax(
                    "invalid type modifier for type \"varchar\"",
                ))
            }
        },
        "bpchar" | "char" => match mods.as_slice() {
            [] if name == "bpchar" => return Ok(DataType::Text),
            [] => return Ok(DataType::Char(1)),
            [n] => return Ok(DataType::Char(check_character_length(*n, "char")?)),
            _ => return Err(SqlError::syntax("invalid type modifier for type \"char\"")),
        },
        _ => return Err(undefined_type(&name)),
    };
    // timestamp(p) is accepted and its precision ignored: values keep microseconds.
    if mods.is_empty() || matches!(plain, DataType::Timestamp | DataType::TimestampTz) {
        Ok(plain)
    } else {
        Err(SqlError::syntax(format!(
            "type modifier is not allowed for type \"{name}\""
        )))
    }
}

fn no_operator(l: Option<&DataType>, symbol: &str, r: &DataType) -> SqlError {
    match l {
        Some(l) => sqlerr!(
            UNDEFINED_FUNCTION,
            "operator does not exist: {} {symbol} {}",
            l.base_name(),
            r.base_name()
        )
        .with_hint(OPERATOR_HINT),
        None => sqlerr!(UNDEFINED_FUNCTION, "operator does not exist: {symbol} {}", r.base_name())
            .with_hint("No operator matches the given name and argument type. You might need to add an explicit type cast."),
    }
}

fn interval_unsupported() -> SqlError {
    SqlError::unsupported("type interval is not supported")
}

/// 22003 `integer out of range` and its siblings.
pub(crate) fn int_out_of_range(ty: &DataType) -> SqlError {
    let name = match ty {
        DataType::Int2 => "smallint",
        DataType::Int4 => "integer",
        _ => "bigint",
    };
    sqlerr!(NUMERIC_VALUE_OUT_OF_RANGE, "{name} out of range")
}

/// 22003 for a numeric result beyond what [`Decimal`] holds.
pub(crate) fn numeric_overflow() -> SqlError {
    sqlerr!(NUMERIC_VALUE_OUT_OF_RANGE, "value overflows numeric format")
}

pub(crate) fn division_by_zero() -> SqlError {
    sqlerr!(DIVISION_BY_ZERO, "division by zero")
}

/// PostgreSQL's checks on a float result: overflow unless an input was infinite, underflow
/// (a zero result) unless `zero_ok`.
pub(crate) fn check_float(result: f64, inf_ok: bool, zero_ok: bool) -> Result<f64> {
    if result.is_infinite() && !inf_ok {
        return Err(sqlerr!(
            NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: overflow"
        ));
    }
    if result == 0.0 && !zero_ok {
        return Err(sqlerr!(
            NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: underflow"
        ));
    }
    Ok(result)
}

impl BinaryOp {
    /// The operator as PostgreSQL spells it in messages (`LIKE` is `~~`).
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Concat => "||",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::Like => "~~",
            BinaryOp::ILike => "~~*",
            BinaryOp::NotLike => "!~~",
            BinaryOp::NotILike => "!~~*",
        }
    }

    /// The result type of `l op r`, or 42883 `operator does not exist: text + integer`.
    pub fn result_type(self, l: &DataType, r: &DataType) -> Result<DataType> {
        use BinaryOp::*;
        use DataType::*;
        let no_op = || no_operator(Some(l), self.symbol(), r);
        match self {
            Eq | NotEq | Lt | LtEq | Gt | GtEq if comparable(l, r) => Ok(Bool),
            Like | ILike | NotLike | NotILike if l.is_string() && r.is_string() => Ok(Bool),
            Concat => match (l, r) {
                (Bytea, Bytea | Unknown) | (Unknown, Bytea) => Ok(Bytea),
                _ if l.is_string() || r.is_string() => Ok(Text),
                _ => Err(no_op()),
            },
            Add | Sub | Mul | Div | Mod | Pow => self.arithmetic_type(l, r),
            _ => Err(no_op()),
        }
    }

    fn arithmetic_type(self, l: &DataType, r: &DataType) -> Result<DataType> {
        use BinaryOp::*;
        use DataType::*;
        let ambiguous = || {
            sqlerr!(
                AMBIGUOUS_FUNCTION,
                "operator is not unique: {} {} {}",
                l.base_name(),
                self.symbol(),
                r.base_name()
            )
            .with_hint(AMBIGUOUS_OPERATOR_HINT)
        };
        match (self, l, r) {
            (_, Unknown, Unknown) => return Err(ambiguous()),
            (Add, Date, Int2 | Int4) | (Add, Int2 | Int4, Date) | (Sub, Date, Int2 | Int4) => {
                return Ok(Date)
            }
            (Sub, Date, Date) => return Ok(Int4),
            (Add | Sub, Date, Unknown) | (Add, Unknown, Date) => return Err(ambiguous()),
            (Add | Sub, Date | Timestamp | TimestampTz, Unknown | Timestamp | TimestampTz)
            | (Add | Sub, Timestamp | TimestampTz, Date)
            | (Add, Unknown, Timestamp | TimestampTz) => return Err(interval_unsupported()),
            _ => {}
        }
        let l2 = if *l == Unknown { r } else { l };
        let r2 = if *r == Unknown { l } else { r };
        let (Some(lr), Some(rr)) = (numeric_rank(l2), numeric_rank(r2)) else {
            return Err(no_operator(Some(l), self.symbol(), r));
        };
        Ok(match (self, lr.max(rr)) {
            (Pow, 3) => Numeric(None),
            (Pow, _) => Float8,
            (Mod, 4..) => return Err(no_operator(Some(l), self.symbol(), r)),
            (_, 0) => Int2,
            (_, 1) => Int4,
            (_, 2) => Int8,
            (_, 3) => Numeric(None),
            (_, 4) if lr == rr => Float4,
            _ => Float8,
        })
    }
}

/// Whether `=` and friends exist between two types.
fn comparable(l: &DataType, r: &DataType) -> bool {
    fn category(t: &DataType) -> u8 {
        match t {
            DataType::Bool => 0,
            t if t.is_numeric() => 1,
            t if t.is_string() => 2,
            DataType::Date | DataType::Timestamp | DataType::TimestampTz => 3,
            _ => 4,
        }
    }
    *l == DataType::Unknown || *r == DataType::Unknown || category(l) == category(r)
}

/// The result kind of arithmetic on two numbers, in the ladder's order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NumKind {
    Int2,
    Int4,
    Int8,
    Numeric,
    Float4,
    Float8,
}

impl NumKind {
    fn int_type(self) -> DataType {
        match self {
            NumKind::Int2 => DataType::Int2,
            NumKind::Int4 => DataType::Int4,
            _ => DataType::Int8,
        }
    }
}

impl Value {
    /// The value's type as far as the value knows it: `Null` is `unknown`, strings are `text`,
    /// numerics have no type modifier.
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Null => DataType::Unknown,
            Value::Bool(_) => DataType::Bool,
            Value::Int2(_) => DataType::Int2,
            Value::Int4(_) => DataType::Int4,
            Value::Int8(_) => DataType::Int8,
            Value::Float4(_) => DataType::Float4,
            Value::Float8(_) => DataType::Float8,
            Value::Numeric(_) => DataType::Numeric(None),
            Value::Text(_) => DataType::Text,
            Value::Date(_) => DataType::Date,
            Value::Timestamp(_) => DataType::Timestamp,
            Value::TimestampTz(_) => DataType::TimestampTz,
            Value::Bytea(_) => DataType::Bytea,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Parses PostgreSQL's text input for `ty`: what a client sends in text format, a COPY
    /// text field, a quoted literal given a type. `varchar(n)`/`char(n)` input longer than `n`
    /// is 22001 unless the excess is spaces; `char(n)` pads to `n`. `numeric` refuses `NaN`
    /// and infinities (0A000): [`Decimal`] has neither.
    pub fn parse(text: &str, ty: &DataType) -> Result<Value> {
        Ok(match ty {
            DataType::Bool => Value::Bool(parse_bool(text)?),
            DataType::Int2 => Value::Int2(parse_int(text, ty)? as i16),
            DataType::Int4 => Value::Int4(parse_int(text, ty)? as i32),
            DataType::Int8 => Value::Int8(parse_int(text, ty)?),
            DataType::Float4 => Value::Float4(parse_float(text, true)? as f32),
            DataType::Float8 => Value::Float8(parse_float(text, false)?),
            DataType::Numeric(typmod) => {
                Value::Numeric(apply_numeric_typmod(parse_numeric(text)?, *typmod)?)
            }
            DataType::Text | DataType::Unknown | DataType::Varchar(None) => {
                Value::Text(text.to_string())
            }
            DataType::Varchar(Some(n)) => Value::Text(fit_length(text, *n, ty, false)?),
            DataType::Char(n) => Value::Text(pad(fit_length(text, *n, ty, false)?, *n)),
            DataType::Date => Value::Date(parse_datetime(text, DateTimeKind::Date)?.date()),
            DataType::Timestamp => Value::Timestamp(parse_datetime(text, DateTimeKind::Timestamp)?),
            DataType::TimestampTz => {
                Value::TimestampTz(parse_datetime(text, DateTimeKind::TimestampTz)?.and_utc())
            }
            DataType::Bytea => Value::Bytea(parse_bytea(text)?),
        })
    }

    /// PostgreSQL's text output (DateStyle ISO, TimeZone UTC, shortest round-trip floats);
    /// `None` for NULL.
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => if *b { "t" } else { "f" }.to_string(),
            Value::Int2(i) => i.to_string(),
            Value::Int4(i) => i.to_string(),
            Value::Int8(i) => i.to_string(),
            Value::Float4(f) => format_float(*f as f64, true),
            Value::Float8(f) => format_float(*f, false),
            Value::Numeric(d) => normalize_zero(*d).to_string(),
            Value::Text(s) => s.clone(),
            Value::Date(d) => {
                let (year, bc) = era_year(d.year());
                format!(
                    "{year:04}-{:02}-{:02}{}",
                    d.month(),
                    d.day(),
                    if bc { " BC" } else { "" }
                )
            }
            Value::Timestamp(ts) => format_timestamp(ts, false),
            Value::TimestampTz(ts) => format_timestamp(&ts.naive_utc(), true),
            Value::Bytea(bytes) => {
                let mut s = String::with_capacity(2 + bytes.len() * 2);
                s.push_str("\\x");
                for b in bytes {
                    s.push_str(&format!("{b:02x}"));
                }
                s
            }
        })
    }

    /// The text a cast to a string type produces: the output form, except that booleans
    /// become `true`/`false` (PostgreSQL's bool-to-text cast, also used by `||`).
    pub(crate) fn cast_text(&self) -> String {
        match self {
            Value::Bool(b) => b.to_string(),
            v => v.to_text().unwrap_or_default(),
        }
    }

    /// Assignment cast, for INSERT and UPDATE into a column of type `ty`: an explicit cast,
    /// except that a too long `varchar(n)`/`char(n)` value is 22001 rather than truncated.
    pub fn cast_assign(self, ty: &DataType) -> Result<Value> {
        self.convert(ty, false)
    }

    /// Explicit cast, `v::ty` or `CAST(v AS ty)`: strings parse, anything formats to a string
    /// (truncated to `varchar(n)`/`char(n)`), numbers convert with rounding and range checks,
    /// bool ↔ integer, date ↔ timestamp ↔ timestamptz. Other pairs are 42846.
    pub fn cast(self, ty: &DataType) -> Result<Value> {
        self.convert(ty, true)
    }

    fn convert(self, ty: &DataType, explicit: bool) -> Result<Value> {
        use DataType as T;
        use Value as V;
        let from = self.data_type();
        let cannot = || {
            sqlerr!(
                CANNOT_COERCE,
                "cannot cast type {} to {}",
                from.base_name(),
                ty.base_name()
            )
        };
        Ok(match (self, ty) {
            (V::Null, _) => V::Null,
            (v, T::Unknown) => v,
            (V::Text(s), T::Text | T::Varchar(None)) => V::Text(s),
            (v, T::Text | T::Varchar(None)) => V::Text(v.cast_text()),
            (v, T::Varchar(Some(n))) => {
                V::Text(fit_length(&v.string_for_cast(), *n, ty, explicit)?)
            }
            (v, T::Char(n)) => {
                V::Text(pad(fit_length(&v.string_for_cast(), *n, ty, explicit)?, *n))
            }
            (V::Text(s), t) => Value::parse(&s, t)?,
            (V::Bool(b), T::Bool) => V::Bool(b),
            (V::Bool(b), T::Int4) => V::Int4(b as i32),
            (V::Int4(i), T::Bool) => V::Bool(i != 0),
            (v, T::Int2 | T::Int4 | T::Int8) if v.num_kind().is_some() => {
                int_value(v.to_int_rounded(ty)?, ty)?
            }
            (v, T::Float8) if v.num_kind().is_some() => match v {
                V::Numeric(d) => V::Float8(parse_float(&d.to_string(), false)?),
                v => V::Float8(v.as_f64().unwrap_or_default()),
            },
            (v, T::Float4) if v.num_kind().is_some() => match v {
                V::Numeric(d) => V::Float4(parse_float(&d.to_string(), true)? as f32),
                V::Float8(f) => {
                    let r = f as f32;
                    check_float(r as f64, f.is_infinite(), f == 0.0)?;
                    V::Float4(r)
                }
                V::Int8(i) => V::Float4(i as f32),
                v => V::Float4(v.as_f64().unwrap_or_default() as f32),
            },
            (v, T::Numeric(typmod)) if v.num_kind().is_some() => {
                let d = match v {
                    V::Float4(f) => float_to_numeric(f as f64, true)?,
                    V::Float8(f) => float_to_numeric(f, false)?,
                    v => v.to_decimal().ok_or_else(numeric_overflow)?,
                };
                V::Numeric(apply_numeric_typmod(d, *typmod)?)
            }
            (v @ (V::Date(_) | V::Timestamp(_) | V::TimestampTz(_)), _) => {
                let ts = v.timestamp_utc().ok_or_else(cannot)?;
                match ty {
                    T::Date => V::Date(ts.date()),
                    T::Timestamp => V::Timestamp(ts),
                    T::TimestampTz => V::TimestampTz(ts.and_utc()),
                    _ => return Err(cannot()),
                }
            }
            (V::Bytea(b), T::Bytea) => V::Bytea(b),
            _ => return Err(cannot()),
        })
    }

    /// A string value as is, anything else as a cast to text renders it.
    fn string_for_cast(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Value::Text(s) => std::borrow::Cow::Borrowed(s),
            v => std::borrow::Cow::Owned(v.cast_text()),
        }
    }

    /// Evaluates `l op r`: NULL in, NULL out; overflow, division by zero and the rest as
    /// PostgreSQL reports them. A string meeting a typed operand is read as that type (an
    /// untyped literal the binder left alone).
    pub fn binary_op(op: BinaryOp, l: &Value, r: &Value) -> Result<Value> {
        use BinaryOp::*;
        if l.is_null() || r.is_null() {
            return Ok(Value::Null);
        }
        match op {
            Eq | NotEq | Lt | LtEq | Gt | GtEq => {
                let o = compare_values(l, r, op.symbol())?;
                Ok(Value::Bool(match op {
                    Eq => o == Ordering::Equal,
                    NotEq => o != Ordering::Equal,
                    Lt => o == Ordering::Less,
                    LtEq => o != Ordering::Greater,
                    Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                }))
            }
            Like | ILike | NotLike | NotILike => match (l, r) {
                (Value::Text(s), Value::Text(p)) => {
                    let matched = like(s, p, matches!(op, ILike | NotILike))?;
                    Ok(Value::Bool(matched != matches!(op, NotLike | NotILike)))
                }
                _ => Err(no_operator(
                    Some(&l.data_type()),
                    op.symbol(),
                    &r.data_type(),
                )),
            },
            Concat => match (l, r) {
                (Value::Bytea(_), Value::Text(t)) => {
                    Value::binary_op(op, l, &Value::Bytea(parse_bytea(t)?))
                }
                (Value::Text(t), Value::Bytea(_)) => {
                    Value::binary_op(op, &Value::Bytea(parse_bytea(t)?), r)
                }
                (Value::Bytea(a), Value::Bytea(b)) => {
                    Ok(Value::Bytea([a.as_slice(), b.as_slice()].concat()))
                }
                _ => Ok(Value::Text(l.cast_text() + &r.cast_text())),
            },
            Add | Sub | Mul | Div | Mod | Pow => arithmetic(op, l, r),
        }
    }

    /// Evaluates `-v` or `+v`.
    pub fn unary_op(op: UnaryOp, v: &Value) -> Result<Value> {
        let symbol = if op == UnaryOp::Neg { "-" } else { "+" };
        Ok(match (op, v) {
            (_, Value::Null) => Value::Null,
            (UnaryOp::Plus, v) if v.num_kind().is_some() => v.clone(),
            (UnaryOp::Neg, Value::Int2(i)) => Value::Int2(
                i.checked_neg()
                    .ok_or_else(|| int_out_of_range(&DataType::Int2))?,
            ),
            (UnaryOp::Neg, Value::Int4(i)) => Value::Int4(
                i.checked_neg()
                    .ok_or_else(|| int_out_of_range(&DataType::Int4))?,
            ),
            (UnaryOp::Neg, Value::Int8(i)) => Value::Int8(
                i.checked_neg()
                    .ok_or_else(|| int_out_of_range(&DataType::Int8))?,
            ),
            (UnaryOp::Neg, Value::Float4(f)) => Value::Float4(-f),
            (UnaryOp::Neg, Value::Float8(f)) => Value::Float8(-f),
            (UnaryOp::Neg, Value::Numeric(d)) => Value::Numeric(normalize_zero(-*d)),
            (_, v) => return Err(no_operator(None, symbol, &v.data_type())),
        })
    }

    /// SQL comparison: `None` if either side is NULL; numbers compare by value across types.
    pub fn compare(&self, other: &Value) -> Result<Option<Ordering>> {
        if self.is_null() || other.is_null() {
            return Ok(None);
        }
        compare_values(self, other, "=").map(Some)
    }

    /// The total order of ORDER BY, sorts and merges: NULL after everything, NaN after every
    /// other number and equal to itself, -0 equal to 0, numbers by value across types.
    /// Values of unrelated types order by type family.
    pub fn sort_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => Ordering::Greater,
            (_, Value::Null) => Ordering::Less,
            _ => match self.family().cmp(&other.family()) {
                Ordering::Equal => compare_values(self, other, "=").unwrap_or(Ordering::Equal),
                o => o,
            },
        }
    }

    /// The value as a condition of `context` (WHERE, AND, CHECK...): `None` for NULL, 42804
    /// for a non-boolean.
    pub fn truth(&self, context: &str) -> Result<Option<bool>> {
        match self {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(*b)),
            v => Err(sqlerr!(
                DATATYPE_MISMATCH,
                "argument of {context} must be type boolean, not type {}",
                v.data_type().base_name()
            )),
        }
    }

    /// An integer value as i64.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int2(i) => Some(*i as i64),
            Value::Int4(i) => Some(*i as i64),
            Value::Int8(i) => Some(*i),
            _ => None,
        }
    }

    /// A number as f64 (numerics round to the nearest double).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float4(f) => Some(*f as f64),
            Value::Float8(f) => Some(*f),
            Value::Numeric(d) => Some(decimal_to_f64(d)),
            v => v.as_i64().map(|i| i as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn num_kind(&self) -> Option<NumKind> {
        Some(match self {
            Value::Int2(_) => NumKind::Int2,
            Value::Int4(_) => NumKind::Int4,
            Value::Int8(_) => NumKind::Int8,
            Value::Numeric(_) => NumKind::Numeric,
            Value::Float4(_) => NumKind::Float4,
            Value::Float8(_) => NumKind::Float8,
            _ => return None,
        })
    }

    /// An integer or numeric as a [`Decimal`].
    pub(crate) fn to_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Numeric(d) => Some(*d),
            v => v.as_i64().map(Decimal::from),
        }
    }

    /// A number converted to an integer type: floats round half to even (rint), numerics
    /// half away from zero; out of range is 22003 for `ty`.
    fn to_int_rounded(&self, ty: &DataType) -> Result<i128> {
        let float = |f: f64| {
            let r = f.round_ties_even();
            if r.is_nan() || r.abs() > 1e19 {
                return Err(int_out_of_range(ty));
            }
            Ok(r as i128)
        };
        match self {
            Value::Float4(f) => float(*f as f64),
            Value::Float8(f) => float(*f),
            Value::Numeric(d) => d
                .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
                .to_i128()
                .ok_or_else(|| int_out_of_range(ty)),
            v => Ok(v.as_i64().unwrap_or_default() as i128),
        }
    }

    /// A date or timestamp as a UTC timestamp (a date is its midnight).
    pub(crate) fn timestamp_utc(&self) -> Option<NaiveDateTime> {
        match self {
            Value::Date(d) => Some(d.and_time(NaiveTime::MIN)),
            Value::Timestamp(ts) => Some(*ts),
            Value::TimestampTz(ts) => Some(ts.naive_utc()),
            _ => None,
        }
    }

    /// The type family the total order groups values by.
    fn family(&self) -> u8 {
        match self {
            Value::Bool(_) => 0,
            Value::Int2(_)
            | Value::Int4(_)
            | Value::Int8(_)
            | Value::Float4(_)
            | Value::Float8(_)
            | Value::Numeric(_) => 1,
            Value::Text(_) => 2,
            Value::Date(_) | Value::Timestamp(_) | Value::TimestampTz(_) => 3,
            Value::Bytea(_) => 4,
            Value::Null => 5,
        }
    }
}

/// Equality for grouping, DISTINCT and hash joins: [`Value::sort_cmp`] says equal (so NULL
/// equals NULL, `Int4(1)` equals `Numeric(1.0)`). Mixed numeric types compare the way
/// PostgreSQL's cross-type operators do (floats as doubles, integers with numerics exactly),
/// so equality across three numeric types is not always transitive.
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.sort_cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Value) -> Ordering {
        self.sort_cmp(other)
    }
}

/// Hashes consistently with `==`: numbers hash their value as a double, dates and timestamps
/// their UTC microseconds.
impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.family().hash(state);
        match self {
            Value::Null => {}
            Value::Bool(b) => b.hash(state),
            Value::Text(s) => s.hash(state),
            Value::Bytea(b) => b.hash(state),
            v if v.family() == 1 => {
                let f = v.as_f64().unwrap_or_default();
                let bits = if f.is_nan() {
                    f64::NAN.to_bits()
                } else if f == 0.0 {
                    0
                } else {
                    f.to_bits()
                };
                bits.hash(state);
            }
            v => v
                .timestamp_utc()
                .map(|ts| ts.and_utc().timestamp_micros())
                .hash(state),
        }
    }
}

/// Compares two non-NULL values, with `symbol` naming the operator in a type error.
fn compare_values(l: &Value, r: &Value, symbol: &str) -> Result<Ordering> {
    use Value as V;
    Ok(match (l, r) {
        (V::Text(a), V::Text(b)) => a.cmp(b),
        (V::Text(s), other) => {
            compare_values(&Value::parse(s, &other.data_type())?, other, symbol)?
        }
        (other, V::Text(s)) => {
            compare_values(other, &Value::parse(s, &other.data_type())?, symbol)?
        }
        (V::Bool(a), V::Bool(b)) => a.cmp(b),
        (V::Bytea(a), V::Bytea(b)) => a.cmp(b),
        _ => match (l.num_kind(), r.num_kind()) {
            (Some(lk), Some(rk)) if lk >= NumKind::Float4 || rk >= NumKind::Float4 => float_cmp(
                l.as_f64().unwrap_or_default(),
                r.as_f64().unwrap_or_default(),
            ),
            (Some(NumKind::Numeric), Some(_)) | (Some(_), Some(NumKind::Numeric)) => {
                l.to_decimal().cmp(&r.to_decimal())
            }
            (Some(_), Some(_)) => l.as_i64().cmp(&r.as_i64()),
            _ => match (l.timestamp_utc(), r.timestamp_utc()) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => return Err(no_operator(Some(&l.data_type()), symbol, &r.data_type())),
            },
        },
    })
}

/// PostgreSQL's float order: NaN equals NaN and is above everything, -0 equals 0.
pub(crate) fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// `+ - * / % ^` on numbers, and date arithmetic with integers.
fn arithmetic(op: BinaryOp, l: &Value, r: &Value) -> Result<Value> {
    use BinaryOp::*;
    use Value as V;
    match (op, l, r) {
        (_, V::Text(s), other) if !matches!(other, V::Text(_)) => {
            return arithmetic(op, &Value::parse(s, &other.data_type())?, r)
        }
        (_, other, V::Text(s)) if !matches!(other, V::Text(_)) => {
            return arithmetic(op, l, &Value::parse(s, &other.data_type())?)
        }
        (Add, V::Date(d), n) | (Add, n, V::Date(d)) if n.as_i64().is_some() => {
            return add_days(*d, n.as_i64().unwrap_or_default())
        }
        (Sub, V::Date(d), n) if n.as_i64().is_some() => {
            return add_days(*d, -n.as_i64().unwrap_or_default())
        }
        (Sub, V::Date(a), V::Date(b)) => return Ok(V::Int4((*a - *b).num_days() as i32)),
        _ => {}
    }
    let (Some(lk), Some(rk)) = (l.num_kind(), r.num_kind()) else {
        if op == Sub && l.timestamp_utc().is_some() && r.timestamp_utc().is_some() {
            return Err(interval_unsupported());
        }
        return Err(no_operator(
            Some(&l.data_type()),
            op.symbol(),
            &r.data_type(),
        ));
    };
    let kind = match (op, lk.max(rk)) {
        (Pow, NumKind::Numeric) => NumKind::Numeric,
        (Pow, _) => NumKind::Float8,
        (Mod, NumKind::Float4 | NumKind::Float8) => {
            return Err(no_operator(
                Some(&l.data_type()),
                op.symbol(),
                &r.data_type(),
            ))
        }
        (_, NumKind::Float4) if lk != rk => NumKind::Float8,
        (_, k) => k,
    };
    match kind {
        NumKind::Int2 | NumKind::Int4 | NumKind::Int8 => {
            let (a, b) = (
                l.as_i64().unwrap_or_default() as i128,
                r.as_i64().unwrap_or_default() as i128,
            );
            let result = match op {
                Add => a + b,
                Sub => a - b,
                Mul => a * b,
                Div | Mod if b == 0 => return Err(division_by_zero()),
                Div => a / b,
                _ => a % b,
            };
            int_value(result, &kind.int_type())
        }
        NumKind::Numeric => {
            let (a, b) = (
                l.to_decimal().unwrap_or_default(),
                r.to_decimal().unwrap_or_default(),
            );
            numeric_arithmetic(op, a, b).map(Value::Numeric)
        }
        NumKind::Float4 | NumKind::Float8 => {
            let (a, b) = (
                l.as_f64().unwrap_or_default(),
                r.as_f64().unwrap_or_default(),
            );
            let result = match op {
                Add => a + b,
                Sub => a - b,
                Mul => a * b,
                Div if b == 0.0 && !a.is_nan() => return Err(division_by_zero()),
                Div => a / b,
                _ => return float_pow(a, b).map(V::Float8),
            };
            // f32 operands' exact results rounded once to f64 and again to f32 equal the
            // correctly rounded f32 result, so float4 arithmetic can run in f64.
            let checked = if kind == NumKind::Float4 {
                result as f32 as f64
            } else {
                result
            };
            let inf_ok = a.is_infinite() || (op != Div && b.is_infinite());
            let zero_ok = match op {
                Mul => a == 0.0 || b == 0.0,
                Div => a == 0.0 || b.is_infinite(),
                _ => true,
            };
            check_float(checked, inf_ok, zero_ok)?;
            Ok(if kind == NumKind::Float4 {
                V::Float4(result as f32)
            } else {
                V::Float8(result)
            })
        }
    }
}

/// Numeric arithmetic with PostgreSQL's result scales: the larger input scale for + - %,
/// their sum for *, [`div_scale`] for /.
fn numeric_arithmetic(op: BinaryOp, a: Decimal, b: Decimal) -> Result<Decimal> {
    let (result, scale) = match op {
        BinaryOp::Add => (a.checked_add(b), a.scale().max(b.scale())),
        BinaryOp::Sub => (a.checked_sub(b), a.scale().max(b.scale())),
        BinaryOp::Mul => (a.checked_mul(b), a.scale() + b.scale()),
        BinaryOp::Div | BinaryOp::Mod if b.is_zero() => return Err(division_by_zero()),
        BinaryOp::Div => (a.checked_div(b), div_scale(&a, &b) as u32),
        BinaryOp::Mod => (a.checked_rem(b), a.scale().max(b.scale())),
        _ => return numeric_pow(a, b),
    };
    result
        .map(|r| with_scale(r, scale as i32))
        .ok_or_else(numeric_overflow)
}

fn add_days(d: NaiveDate, days: i64) -> Result<Value> {
    Duration::try_days(days)
        .and_then(|delta| d.checked_add_signed(delta))
        .map(Value::Date)
        .ok_or_else(|| sqlerr!(DATETIME_FIELD_OVERFLOW, "date out of range"))
}

/// An integer result of type `ty`, or 22003.
fn int_value(v: i128, ty: &DataType) -> Result<Value> {
    let out = || int_out_of_range(ty);
    Ok(match ty {
        DataType::Int2 => Value::Int2(i16::try_from(v).map_err(|_| out())?),
        DataType::Int4 => Value::Int4(i32::try_from(v).map_err(|_| out())?),
        _ => Value::Int8(i64::try_from(v).map_err(|_| out())?),
    })
}

/// `a ^ b` in double precision, with PostgreSQL's errors.
pub(crate) fn float_pow(a: f64, b: f64) -> Result<f64> {
    if a == 0.0 && b < 0.0 {
        return Err(sqlerr!(
            INVALID_ARGUMENT_FOR_POWER_FUNCTION,
            "zero raised to a negative power is undefined"
        ));
    }
    if a < 0.0 && b.is_finite() && b.floor() != b {
        return Err(sqlerr!(
            INVALID_ARGUMENT_FOR_POWER_FUNCTION,
            "a negative number raised to a non-integer power yields a complex result"
        ));
    }
    let finite = a.is_finite() && b.is_finite();
    check_float(a.powf(b), !finite, a == 0.0 || !finite)
}

/// `a ^ b` in numeric, scaled as PostgreSQL's power_var does.
pub(crate) fn numeric_pow(a: Decimal, b: Decimal) -> Result<Decimal> {
    if a.is_zero() && b.is_sign_negative() && !b.is_zero() {
        return Err(sqlerr!(
            INVALID_ARGUMENT_FOR_POWER_FUNCTION,
            "zero raised to a negative power is undefined"
        ));
    }
    if a.is_sign_negative() && !a.is_zero() && !b.fract().is_zero() {
        return Err(sqlerr!(
            INVALID_ARGUMENT_FOR_POWER_FUNCTION,
            "a negative number raised to a non-integer power yields a complex result"
        ));
    }
    let base_scale = a.scale() as i32;
    if a.is_zero() && !b.is_zero() {
        // rust_decimal's powd takes ln(0); 0 ^ positive is 0.
        return Ok(with_scale(Decimal::ZERO, MIN_SIG_DIGITS.max(base_scale)));
    }
    match b.to_i64().filter(|_| b.fract().is_zero()) {
        Some(n) => {
            let r = a.checked_powi(n).ok_or_else(numeric_overflow)?;
            Ok(with_scale(r, MIN_SIG_DIGITS.max(base_scale)))
        }
        None => {
            let weight = decimal_to_f64(&b) * decimal_to_f64(&a).ln() * std::f64::consts::LOG10_E;
            let rscale = (MIN_SIG_DIGITS - weight as i32)
                .max(base_scale)
                .max(b.scale() as i32);
            Ok(with_scale(
                a.checked_powd(b).ok_or_else(numeric_overflow)?,
                rscale,
            ))
        }
    }
}

/// PostgreSQL's base-10000 weight and leading digit of a numeric (0, 0 for zero): the
/// inputs of its result-scale rules.
pub(crate) fn numeric_weight(d: &Decimal) -> (i32, u128) {
    if d.is_zero() {
        return (0, 0);
    }
    let m = d.mantissa().unsigned_abs();
    let ndigits = m.ilog10() as i32 + 1;
    let exponent = ndigits - 1 - d.scale() as i32;
    let weight = exponent.div_euclid(4);
    let lead = exponent - 4 * weight + 1;
    let first = if ndigits >= lead {
        m / 10u128.pow((ndigits - lead) as u32)
    } else {
        m * 10u128.pow((lead - ndigits) as u32)
    };
    (weight, first)
}

/// PostgreSQL's select_div_scale: at least 16 significant digits, at least either input's scale.
fn div_scale(a: &Decimal, b: &Decimal) -> i32 {
    let ((w1, f1), (w2, f2)) = (numeric_weight(a), numeric_weight(b));
    let qweight = w1 - w2 - i32::from(f1 <= f2);
    (MIN_SIG_DIGITS - qweight * 4)
        .max(a.scale() as i32)
        .max(b.scale() as i32)
        .clamp(0, 1000)
}

/// Rounds (half away from zero) or pads `d` to `scale` fractional digits, as far as
/// [`Decimal`] can hold them.
pub(crate) fn with_scale(d: Decimal, scale: i32) -> Decimal {
    let scale = scale.clamp(0, 28) as u32;
    let mut r = d.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(scale);
    normalize_zero(r)
}

/// A zero without a sign: PostgreSQL's numeric has no negative zero.
pub(crate) fn normalize_zero(mut d: Decimal) -> Decimal {
    if d.is_zero() {
        d.set_sign_positive(true);
    }
    d
}

/// The nearest double to a numeric (through its decimal text, which Rust rounds correctly).
pub(crate) fn decimal_to_f64(d: &Decimal) -> f64 {
    d.to_string().parse().unwrap_or(f64::NAN)
}

/// A float as numeric the way PostgreSQL converts it: rounded to 15 significant digits (6 for
/// real), trailing zeros dropped.
fn float_to_numeric(f: f64, real: bool) -> Result<Decimal> {
    if f.is_nan() {
        return Err(SqlError::unsupported("cannot convert NaN to numeric"));
    }
    if f.is_infinite() {
        return Err(SqlError::unsupported("cannot convert infinity to numeric"));
    }
    let s = if real {
        format!("{:.5e}", f as f32)
    } else {
        format!("{f:.14e}")
    };
    let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    parse_numeric(&format!("{mantissa}e{exponent}"))
}

/// Rounds to the type modifier's scale and checks its precision (22003 `numeric field overflow`).
pub(crate) fn apply_numeric_typmod(d: Decimal, typmod: Option<(u32, u32)>) -> Result<Decimal> {
    let Some((precision, scale)) = typmod else {
        return Ok(d);
    };
    let r = with_scale(d, scale as i32);
    let max_digits = precision as i32 - scale as i32;
    if !r.is_zero() {
        let integer_digits = r.mantissa().unsigned_abs().ilog10() as i32 + 1 - r.scale() as i32;
        if integer_digits > max_digits {
            let bound = if max_digits == 0 {
                "1".to_string()
            } else {
                format!("10^{max_digits}")
            };
            return Err(sqlerr!(NUMERIC_VALUE_OUT_OF_RANGE, "numeric field overflow").with_detail(
                format!(
                    "A field with precision {precision}, scale {scale} must round to an absolute value less than {bound}."
                ),
            ));
        }
    }
    Ok(r)
}

/// The whitespace PostgreSQL's input functions skip (C `isspace`).
fn trim_space(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'))
}

fn invalid_syntax(type_name: &str, text: &str) -> SqlError {
    sqlerr!(
        INVALID_TEXT_REPRESENTATION,
        "invalid input syntax for type {type_name}: \"{text}\""
    )
}

/// PostgreSQL's boolean input: unique prefixes of true/false/yes/no, on/off, 1/0, any case.
fn parse_bool(text: &str) -> Result<bool> {
    let t = trim_space(text).to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| t.len() >= min && word.starts_with(t.as_str());
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || t == "1" {
        Ok(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || t == "0" {
        Ok(false)
    } else {
        Err(invalid_syntax("boolean", text))
    }
}

fn parse_int(text: &str, ty: &DataType) -> Result<i64> {
    let name = ty.base_name();
    let t = trim_space(text);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_syntax(name, text));
    }
    let out_of_range = || {
        sqlerr!(
            NUMERIC_VALUE_OUT_OF_RANGE,
            "value \"{text}\" is out of range for type {name}"
        )
    };
    let v: i64 = t.parse().map_err(|_| out_of_range())?;
    let fits = match ty {
        DataType::Int2 => i16::try_from(v).is_ok(),
        DataType::Int4 => i32::try_from(v).is_ok(),
        _ => true,
    };
    if fits {
        Ok(v)
    } else {
        Err(out_of_range())
    }
}

/// `float8in`/`float4in`: decimal and exponent forms, NaN, [-]Infinity, [-]inf.
fn parse_float(text: &str, real: bool) -> Result<f64> {
    let name = if real { "real" } else { "double precision" };
    let t = trim_space(text);
    let body = t.strip_prefix(['+', '-']).unwrap_or(t).to_ascii_lowercase();
    let special = matches!(body.as_str(), "inf" | "infinity" | "nan");
    if !special && !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Err(invalid_syntax(name, text));
    }
    let v = if real {
        t.parse::<f32>().map(f64::from)
    } else {
        t.parse::<f64>()
    }
    .map_err(|_| invalid_syntax(name, text))?;
    let nonzero_digits = body
        .split('e')
        .next()
        .unwrap_or("")
        .bytes()
        .any(|b| (b'1'..=b'9').contains(&b));
    if !special && (v.is_infinite() || (v == 0.0 && nonzero_digits)) {
        return Err(sqlerr!(
            NUMERIC_VALUE_OUT_OF_RANGE,
            "\"{text}\" is out of range for type {name}"
        ));
    }
    Ok(v)
}

/// `numeric_in`: [sign] digits [. digits] [e [sign] digits], rounded to what [`Decimal`] holds.
pub(crate) fn parse_numeric(text: &str) -> Result<Decimal> {
    let t = trim_space(text);
    let syntax = || invalid_syntax("numeric", text);
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if matches!(
        body.to_ascii_lowercase().as_str(),
        "nan" | "inf" | "infinity"
    ) {
        return Err(SqlError::unsupported(format!(
            "numeric value \"{}\" is not supported",
            t
        )));
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return Err(syntax());
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !all_digits(digits) {
                return Err(syntax());
            }
            e.parse().map_err(|_| numeric_overflow())?
        }
    };
    let mut digits = format!("{int}{frac}").trim_start_matches('0').to_string();
    let mut scale = frac.len() as i64 - exponent;
    if digits.is_empty() {
        return Ok(Decimal::new(0, scale.clamp(0, 28) as u32));
    }
    if scale < 0 {
        if digits.len() as i64 - scale > 29 {
            return Err(numeric_overflow());
        }
        digits.push_str(&"0".repeat((-scale) as usize));
        scale = 0;
    }
    loop {
        if scale <= 28 && digits.len() <= 29 {
            if let Ok(m) = digits.parse::<i128>() {
                let m = if negative { -m } else { m };
                if let Ok(d) = Decimal::try_from_i128_with_scale(m, scale as u32) {
                    return Ok(normalize_zero(d));
                }
            }
        }
        if scale == 0 {
            return Err(numeric_overflow());
        }
        round_off_last_digit(&mut digits);
        scale -= 1;
    }
}

/// Drops the last decimal digit, rounding half away from zero.
fn round_off_last_digit(digits: &mut String) {
    let last = digits.pop().unwrap_or('0');
    if last >= '5' {
        let mut bytes = std::mem::take(digits).into_bytes();
        let mut i = bytes.len();
        loop {
            if i == 0 {
                bytes.insert(0, b'1');
                break;
            }
            i -= 1;
            if bytes[i] == b'9' {
                bytes[i] = b'0';
            } else {
                bytes[i] += 1;
                break;
            }
        }
        *digits = String::from_utf8(bytes).unwrap_or_default();
    }
    if digits.is_empty() {
        digits.push('0');
    }
}

/// Cuts `s` to `n` characters: silently when `truncate`, else only when the excess is spaces
/// (22001 otherwise), as PostgreSQL's varchar and bpchar do.
fn fit_length(s: &str, n: u32, ty: &DataType, truncate: bool) -> Result<String> {
    match s.char_indices().nth(n as usize) {
        None => Ok(s.to_string()),
        Some((cut, _)) if truncate || s[cut..].bytes().all(|b| b == b' ') => {
            Ok(s[..cut].to_string())
        }
        Some(_) => Err(sqlerr!(
            STRING_DATA_RIGHT_TRUNCATION,
            "value too long for type {}",
            ty.name()
        )),
    }
}

fn pad(mut s: String, n: u32) -> String {
    let len = s.chars().count();
    s.extend(std::iter::repeat_n(' ', (n as usize).saturating_sub(len)));
    s
}

/// Float output with `extra_float_digits=1`: the shortest digits that read back exactly, in
/// fixed notation for decimal exponents -4 up to 14 (5 for real), else `1.5e+20`.
pub(crate) fn format_float(v: f64, real: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let (digits, exponent) = shortest_digits(v.abs(), real);
    let mut out = String::from(if v.is_sign_negative() { "-" } else { "" });
    if (-4..if real { 6 } else { 15 }).contains(&exponent) {
        if exponent >= 0 {
            let int_len = exponent as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exponent - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        out.push_str(&format!("e{sign}{:02}", exponent.abs()));
    }
    out
}

/// The shortest decimal digits and exponent that read back as `v` (positive and finite). Like
/// PostgreSQL's Ryu, a decimal lying exactly halfway between two floats does not count, even
/// though round-half-even would read it back: Rust's `{:e}` accepts those, so they are
/// detected and replaced by the closest longer form.
fn shortest_digits(v: f64, real: bool) -> (String, i32) {
    let format = |precision: Option<usize>| match (real, precision) {
        (true, None) => format!("{:e}", v as f32),
        (true, Some(p)) => format!("{:.*e}", p, v as f32),
        (false, None) => format!("{v:e}"),
        (false, Some(p)) => format!("{v:.p$e}"),
    };
    let split = |sci: String| {
        let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
        let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
        let digits = digits.trim_end_matches('0').to_string();
        (
            if digits.is_empty() {
                "0".to_string()
            } else {
                digits
            },
            exponent.parse().unwrap_or(0),
        )
    };
    let reads_as = |text: &str| {
        if real {
            text.parse::<f32>().map(f64::from).ok()
        } else {
            text.parse::<f64>().ok()
        }
    };
    // Exactly on a rounding boundary if nudging it by far less than any float spacing in
    // either direction reads back as two different floats.
    let on_boundary = |digits: &str, exponent: i32| {
        let Ok(d) = digits.parse::<u128>() else {
            return false;
        };
        let shift = exponent - digits.len() as i32 + 1 - 41;
        let above = format!("{d}{}1e{shift}", "0".repeat(40));
        let below = format!("{}{}e{shift}", d - 1, "9".repeat(41));
        reads_as(&above) != reads_as(&below)
    };
    let (mut digits, mut exponent) = split(format(None));
    let mut precision = digits.len();
    while on_boundary(&digits, exponent) && precision < 17 {
        (digits, exponent) = split(format(Some(precision)));
        precision += 1;
    }
    // Between two equally close shortest forms PostgreSQL takes the even one; Rust rounds up.
    let n = digits.len();
    let (longer, longer_exponent) = split_raw(&format(Some(n)));
    if longer_exponent == exponent && longer.len() == n + 1 && longer.ends_with('5') {
        let (exact, _) = split_raw(&format(Some(n + 800)));
        let low: u128 = longer[..n].parse().unwrap_or(0);
        let even = low + low % 2;
        let candidate = digits == low.to_string() || digits == (low + 1).to_string();
        if candidate && even.to_string().len() == n && exact[n + 1..].bytes().all(|b| b == b'0') {
            digits = even.to_string().trim_end_matches('0').to_string();
        }
    }
    (digits, exponent)
}

/// The digits and exponent of Rust's `{:e}` output, as printed.
fn split_raw(sci: &str) -> (String, i32) {
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci, "0"));
    (
        mantissa.chars().filter(|c| *c != '.').collect(),
        exponent.parse().unwrap_or(0),
    )
}

/// PostgreSQL's year and era for chrono's astronomical year (0 is 1 BC).
fn era_year(year: i32) -> (i32, bool) {
    if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    }
}

fn format_timestamp(ts: &NaiveDateTime, with_zone: bool) -> String {
    let (year, bc) = era_year(ts.year());
    let mut s = format!(
        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        ts.month(),
        ts.day(),
        ts.hour(),
        ts.minute(),
        ts.second()
    );
    let micros = ts.nanosecond() / 1000;
    if micros > 0 {
        s.push_str(format!(".{micros:06}").trim_end_matches('0'));
    }
    if with_zone {
        s.push_str("+00");
    }
    if bc {
        s.push_str(" BC");
    }
    s
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DateTimeKind {
    Date,
    Timestamp,
    TimestampTz,
}

/// A cursor over date/time input.
struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.s.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let hit = self.s[self.i..].starts_with(word.as_bytes());
        if hit {
            self.i += word.len();
        }
        hit
    }

    fn skip_spaces(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    /// A run of digits as text.
    fn digits(&mut self) -> Option<&str> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        (self.i > start).then(|| std::str::from_utf8(&self.s[start..self.i]).unwrap_or(""))
    }

    fn number(&mut self) -> Option<i64> {
        self.digits().and_then(|d| d.parse().ok())
    }
}

/// Date and timestamp input: ISO `YYYY-MM-DD` (or `YYYYMMDD`) `[( |T)HH:MM[:SS[.frac]]][zone][ BC]`, where zone is
/// `Z`, `UTC`, `GMT` or `±HH[[:]MM[[:]SS]]`, plus `epoch`, `now`, `today`, `tomorrow`,
/// `yesterday`. A zone shifts `timestamptz` to UTC and is ignored by the other two types, as
/// in PostgreSQL; a date ignores the time.
fn parse_datetime(text: &str, kind: DateTimeKind) -> Result<NaiveDateTime> {
    let name = match kind {
        DateTimeKind::Date => "date",
        DateTimeKind::Timestamp => "timestamp",
        DateTimeKind::TimestampTz => "timestamp with time zone",
    };
    let syntax = || {
        sqlerr!(
            INVALID_DATETIME_FORMAT,
            "invalid input syntax for type {name}: \"{text}\""
        )
    };
    let range = || {
        sqlerr!(
            DATETIME_FIELD_OVERFLOW,
            "date/time field value out of range: \"{text}\""
        )
    };
    let t = trim_space(text).to_ascii_lowercase();
    let today = Utc::now().date_naive().and_time(NaiveTime::MIN);
    match t.as_str() {
        "epoch" => return Ok(DateTime::UNIX_EPOCH.naive_utc()),
        "now" => return Ok(truncate_to_micros(Utc::now()).naive_utc()),
        "today" => return Ok(today),
        "tomorrow" => return Ok(today + Duration::days(1)),
        "yesterday" => return Ok(today - Duration::days(1)),
        "infinity" | "+infinity" | "-infinity" => {
            return Err(SqlError::unsupported(format!(
                "{name} value \"{text}\" is not supported"
            )))
        }
        _ => {}
    }
    let mut p = Scanner {
        s: t.as_bytes(),
        i: 0,
    };
    let mut date = [0i64; 3];
    let first = p.digits().ok_or_else(syntax)?.to_string();
    if first.len() == 8 && p.s.get(p.i).is_none_or(|c| *c != b'-') {
        // The compact ISO form YYYYMMDD.
        for (k, field) in date.iter_mut().enumerate() {
            let digits = &first[[0, 4, 6][k]..[4, 6, 8][k]];
            *field = digits.parse().map_err(|_| syntax())?;
        }
    } else {
        date[0] = first.parse().map_err(|_| syntax())?;
        for field in &mut date[1..] {
            if !p.eat(b'-') {
                return Err(syntax());
            }
            *field = p.number().ok_or_else(syntax)?;
        }
    }
    let (mut hour, mut minute, mut second, mut micros) = (0, 0, 0, 0i64);
    let time_follows = p.eat(b't') || {
        let save = p.i;
        p.skip_spaces();
        let digit = p.i > save && p.s.get(p.i).is_some_and(u8::is_ascii_digit);
        if !digit {
            p.i = save;
        }
        digit
    };
    if time_follows {
        hour = p.number().ok_or_else(syntax)?;
        if !p.eat(b':') {
            return Err(syntax());
        }
        minute = p.number().ok_or_else(syntax)?;
        if p.eat(b':') {
            second = p.number().ok_or_else(syntax)?;
            if p.eat(b'.') {
                let frac = p.digits().unwrap_or("0");
                let f: f64 = format!("0.{frac}").parse().map_err(|_| syntax())?;
                micros = (f * 1e6).round_ties_even() as i64;
            }
        }
    }
    p.skip_spaces();
    let mut offset = 0i64;
    if p.eat(b'z') || p.eat_word("utc") || p.eat_word("gmt") {
    } else if let Some(sign) = [b'+', b'-'].into_iter().find(|c| p.eat(*c)) {
        let first = p.digits().ok_or_else(syntax)?.to_string();
        let (h, mut m) = match first.len() {
            1 | 2 => (first.parse::<i64>().unwrap_or(0), 0),
            4 => (
                first[..2].parse().unwrap_or(0),
                first[2..].parse().unwrap_or(0),
            ),
            _ => return Err(syntax()),
        };
        let mut s = 0;
        if first.len() <= 2 && p.eat(b':') {
            m = p.number().ok_or_else(syntax)?;
            if p.eat(b':') {
                s = p.number().ok_or_else(syntax)?;
            }
        }
        if h > 15 || m > 59 || s > 59 {
            return Err(sqlerr!(
                DATETIME_FIELD_OVERFLOW,
                "time zone displacement out of range: \"{text}\""
            ));
        }
        offset = (h * 3600 + m * 60 + s) * if sign == b'-' { -1 } else { 1 };
    }
    p.skip_spaces();
    let bc = p.eat_word("bc");
    if !bc {
        p.eat_word("ad");
    }
    p.skip_spaces();
    if p.i != p.s.len() {
        return Err(syntax());
    }
    let [year, month, day] = date;
    if year == 0 || year > 300_000 {
        return Err(range());
    }
    if !(1..=12).contains(&month) {
        let err = range();
        return Err(if month > 12 {
            err.with_hint("Perhaps you need a different \"datestyle\" setting.")
        } else {
            err
        });
    }
    let year = if bc { 1 - year } else { year };
    let date = NaiveDate::from_ymd_opt(year as i32, month as u32, day as u32).ok_or_else(range)?;
    let midnight = date.and_time(NaiveTime::MIN);
    if kind == DateTimeKind::Date {
        return Ok(midnight);
    }
    if hour > 24
        || minute > 59
        || second > 60
        || (hour == 24 && (minute, second, micros) != (0, 0, 0))
    {
        return Err(range());
    }
    let zone = if kind == DateTimeKind::TimestampTz {
        offset
    } else {
        0
    };
    let delta = Duration::seconds(hour * 3600 + minute * 60 + second - zone)
        + Duration::microseconds(micros);
    midnight.checked_add_signed(delta).ok_or_else(range)
}

/// A timestamp with PostgreSQL's precision (chrono's clock has nanoseconds).
pub(crate) fn truncate_to_micros(ts: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(ts.timestamp_micros()).unwrap_or(ts)
}

/// `byteain`: `\x` hex (whitespace between bytes allowed) or the escape format.
fn parse_bytea(text: &str) -> Result<Vec<u8>> {
    if let Some(hex) = text.strip_prefix("\\x") {
        let digit = |i: usize| -> Result<u8> {
            let c = hex[i..].chars().next().unwrap_or(' ');
            c.to_digit(16).map(|d| d as u8).ok_or_else(|| {
                sqlerr!(
                    INVALID_PARAMETER_VALUE,
                    "invalid hexadecimal digit: \"{c}\""
                )
            })
        };
        let bytes = hex.as_bytes();
        let mut out = Vec::with_capacity(bytes.len() / 2);
        let mut i = 0;
        while i < bytes.len() {
            if matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
                continue;
            }
            let high = digit(i)?;
            if i + 1 >= bytes.len() {
                return Err(sqlerr!(
                    INVALID_PARAMETER_VALUE,
                    "invalid hexadecimal data: odd number of digits"
                ));
            }
            out.push(high << 4 | digit(i + 1)?);
            i += 2;
        }
        return Ok(out);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if let Some([a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7']) =
            bytes.get(i + 1..i + 4)
        {
            out.push(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'));
            i += 4;
        } else {
            return Err(sqlerr!(
                INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type bytea"
            ));
        }
    }
    Ok(out)
}

/// `s LIKE pattern` (`%` any run, `_` one character, `\` escapes the next); `fold` for ILIKE,
/// which folds ASCII letters only, as the C locale does.
fn like(s: &str, pattern: &str, fold: bool) -> Result<bool> {
    enum Token {
        Literal(char),
        One,
        Any,
    }
    let fold_char = |c: char| if fold { c.to_ascii_lowercase() } else { c };
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '\\' => Token::Literal(fold_char(chars.next().ok_or_else(|| {
                sqlerr!(
                    INVALID_ESCAPE_SEQUENCE,
                    "LIKE pattern must not end with escape character"
                )
            })?)),
            '%' => Token::Any,
            '_' => Token::One,
            c => Token::Literal(fold_char(c)),
        });
    }
    let s: Vec<char> = s.chars().map(fold_char).collect();
    // Greedy, backtracking to just after the last % on a mismatch: linear for most patterns.
    let (mut si, mut pi) = (0, 0);
    let mut retry: Option<(usize, usize)> = None;
    while si < s.len() {
        match tokens.get(pi) {
            Some(Token::Any) => {
                retry = Some((pi, si));
                pi += 1;
                continue;
            }
            Some(Token::One) => {
                (si, pi) = (si + 1, pi + 1);
                continue;
            }
            Some(Token::Literal(c)) if *c == s[si] => {
                (si, pi) = (si + 1, pi + 1);
                continue;
            }
            _ => {}
        }
        match retry {
            Some((star, from)) => {
                retry = Some((star, from + 1));
                (si, pi) = (from + 1, star + 1);
            }
            None => return Ok(false),
        }
    }
    Ok(tokens[pi..].iter().all(|t| matches!(t, Token::Any)))
}

#[cfg(test)]
pub(crate) mod tests {
    //! Each case is an expression in a small SQL subset and what PostgreSQL 15 prints for it
    //! (psql, TimeZone=UTC, extra_float_digits=1, C locale): the value, or `SQLSTATE message`
    //! with ` | detail` when there is one. `'x'::t` casts an untyped literal as PostgreSQL does,
    //! `INSERT e INTO t` is an assignment cast.

    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;
    use std::hash::DefaultHasher;

    const BINARY_OPS: [(&str, BinaryOp); 17] = [
        (" NOT ILIKE ", BinaryOp::NotILike),
        (" NOT LIKE ", BinaryOp::NotLike),
        (" ILIKE ", BinaryOp::ILike),
        (" LIKE ", BinaryOp::Like),
        (" || ", BinaryOp::Concat),
        (" <= ", BinaryOp::LtEq),
        (" >= ", BinaryOp::GtEq),
        (" <> ", BinaryOp::NotEq),
        (" + ", BinaryOp::Add),
        (" - ", BinaryOp::Sub),
        (" * ", BinaryOp::Mul),
        (" / ", BinaryOp::Div),
        (" % ", BinaryOp::Mod),
        (" ^ ", BinaryOp::Pow),
        (" = ", BinaryOp::Eq),
        (" < ", BinaryOp::Lt),
        (" > ", BinaryOp::Gt),
    ];

    pub(crate) fn sql_type(name: &str) -> Result<DataType> {
        let dialect = PostgreSqlDialect {};
        let mut parser = Parser::new(&dialect).try_with_sql(name).unwrap();
        let ty = parser.parse_data_type().unwrap();
        assert_eq!(
            parser.peek_token().token,
            sqlparser::tokenizer::Token::EOF,
            "{name}"
        );
        DataType::from_sql(&ty)
    }

    /// The byte offset of `needle` in `s` outside single-quoted literals.
    pub(crate) fn find_unquoted(s: &str, needle: &str) -> Option<usize> {
        let mut quoted = false;
        for (i, c) in s.char_indices() {
            if c == '\'' {
                quoted = !quoted;
            } else if !quoted && s[i..].starts_with(needle) {
                return Some(i);
            }
        }
        None
    }

    /// Evaluates a literal (`NULL`, `true`, `42`, `1.5`, `'text'`) with `::type` casts, a
    /// unary minus `-(e)`, a binary operation, or `INSERT e INTO type`.
    pub(crate) fn eval(expr: &str) -> Result<Value> {
        let expr = expr.trim();
        for (symbol, op) in BINARY_OPS {
            if let Some(i) = find_unquoted(expr, symbol) {
                return Value::binary_op(op, &eval(&expr[..i])?, &eval(&expr[i + symbol.len()..])?);
            }
        }
        if let Some((e, ty)) = expr
            .strip_prefix("INSERT ")
            .and_then(|r| r.split_once(" INTO "))
        {
            return eval(e)?.cast_assign(&sql_type(ty)?);
        }
        if let Some(inner) = expr.strip_prefix("-(").and_then(|r| r.strip_suffix(')')) {
            return Value::unary_op(UnaryOp::Neg, &eval(inner)?);
        }
        let (literal, casts) = match expr.strip_prefix('\'') {
            Some(rest) => {
                let end = rest.find('\'').expect("closing quote");
                (Value::Text(rest[..end].to_string()), &rest[end + 1..])
            }
            None => {
                let end = expr.find("::").unwrap_or(expr.len());
                let word = &expr[..end];
                let v = match word.to_ascii_lowercase().as_str() {
                    "null" => Value::Null,
                    "true" | "false" => Value::Bool(word.eq_ignore_ascii_case("true")),
                    _ => match (word.parse::<i32>(), expr[end..].split("::").nth(1)) {
                        (Ok(i), _) => Value::Int4(i),
                        // A numeric literal cast straight to a float reads as that float,
                        // beyond numeric's range too (as the binder should do).
                        (_, Some(t @ ("float4" | "float8"))) => Value::parse(word, &sql_type(t)?)?,
                        _ => Value::Numeric(parse_numeric(word)?),
                    },
                };
                (v, &expr[end..])
            }
        };
        casts
            .split("::")
            .skip(1)
            .try_fold(literal, |v, ty| v.cast(&sql_type(ty)?))
    }

    /// A result as psql shows it: the text, `NULL`, or `SQLSTATE message[ | detail]`.
    pub(crate) fn show(result: Result<Value>) -> String {
        match result {
            Ok(v) => v.to_text().unwrap_or_else(|| "NULL".into()),
            Err(SqlError {
                code,
                message,
                detail: Some(d),
                ..
            }) => format!("{code} {message} | {d}"),
            Err(e) => format!("{} {}", e.code, e.message),
        }
    }

    /// Checks `expr => expected` lines; `--` starts a comment line.
    pub(crate) fn check(cases: &str, eval: impl Fn(&str) -> Result<Value>) {
        for line in cases
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("--"))
        {
            let (expr, want) = line.split_once(" =>").expect("expr => expected");
            let want = want.strip_prefix(' ').unwrap_or(want);
            assert_eq!(show(eval(expr)), want, "{expr}");
        }
    }

    #[test]
    fn input_and_output() {
        let cases = r#"
            ' 12 '::int4 => 12
            '+5'::int2 => 5
            '-9223372036854775808'::int8 => -9223372036854775808
            '99999'::int2 => 22003 value "99999" is out of range for type smallint
            '99999999999'::int4 => 22003 value "99999999999" is out of range for type integer
            '99999999999999999999'::int8 => 22003 value "99999999999999999999" is out of range for type bigint
            ''::int4 => 22P02 invalid input syntax for type integer: ""
            '1.5'::int4 => 22P02 invalid input syntax for type integer: "1.5"
            '1e3'::int4 => 22P02 invalid input syntax for type integer: "1e3"
            'NaN'::float8 => NaN
            'Infinity'::float8 => Infinity
            '-Infinity'::float8 => -Infinity
            '  1e10 '::float8 => 10000000000
            'inf'::float8 => Infinity
            '-inf'::float4 => -Infinity
            'nan'::float4 => NaN
            'abc'::float8 => 22P02 invalid input syntax for type double precision: "abc"
            '1e400'::float8 => 22003 "1e400" is out of range for type double precision
            '1e40'::float4 => 22003 "1e40" is out of range for type real
            1e20::float8 => 1e+20
            1e15::float8 => 1e+15
            1e14::float8 => 100000000000000
            123456789012345678::float8 => 1.2345678901234568e+17
            0.0001::float8 => 0.0001
            0.0001234::float8 => 0.0001234
            0.00001::float8 => 1e-05
            '-0.0'::float8 => -0
            0.1::float4 => 0.1
            3.4e38::float4 => 3.4e+38
            1e6::float4 => 1e+06
            999999::float4 => 999999
            1234567::float4 => 1.234567e+06
            16777217::float4 => 1.6777216e+07
            3.14159265358979::float4 => 3.1415927
            123456784::float4 => 1.23456784e+08
            18014398509481992::float8 => 1.8014398509481992e+16
            9007199254740993::float8 => 9.007199254740992e+15
            16777218::float4 => 1.6777218e+07
            3182207.25::float4 => 3.1822072e+06
            '  1.50 '::numeric => 1.50
            '1e3'::numeric => 1000
            '-0.00'::numeric => 0.00
            '1.2e-3'::numeric => 0.0012
            'abc'::numeric => 22P02 invalid input syntax for type numeric: "abc"
            'NaN'::numeric => 0A000 numeric value "NaN" is not supported
            ' t '::bool => t
            'YES'::bool => t
            'of'::bool => f
            'Fa'::bool => f
            'on'::bool => t
            '0'::bool => f
            'o'::bool => 22P02 invalid input syntax for type boolean: "o"
            ''::bool => 22P02 invalid input syntax for type boolean: ""
            ' 2024-01-31 '::date => 2024-01-31
            '2024-1-5'::date => 2024-01-05
            'epoch'::date => 1970-01-01
            '0001-01-01 BC'::date => 0001-01-01 BC
            '10000-01-01'::date => 10000-01-01
            'x'::date => 22007 invalid input syntax for type date: "x"
            '2024-02-30'::date => 22008 date/time field value out of range: "2024-02-30"
            '2024-13-01'::date => 22008 date/time field value out of range: "2024-13-01"
            '2024-01-31 12:34:56.5'::timestamp => 2024-01-31 12:34:56.5
            '2024-01-31T12:34:56'::timestamp => 2024-01-31 12:34:56
            '2024-01-31 12:34'::timestamp => 2024-01-31 12:34:00
            '2024-01-31'::timestamp => 2024-01-31 00:00:00
            '2024-01-31 12:34:56.1234567'::timestamp => 2024-01-31 12:34:56.123457
            '2024-01-31 12:34:56+05'::timestamp => 2024-01-31 12:34:56
            '0001-01-01 00:00:00 BC'::timestamp => 0001-01-01 00:00:00 BC
            '2024-01-31 24:00:00'::timestamp => 2024-02-01 00:00:00
            '2024-01-31 12:00:60'::timestamp => 2024-01-31 12:01:00
            '2024-01-31 25:00:00'::timestamp => 22008 date/time field value out of range: "2024-01-31 25:00:00"
            '2024-01-31 12:61:00'::timestamp => 22008 date/time field value out of range: "2024-01-31 12:61:00"
            'abc'::timestamp => 22007 invalid input syntax for type timestamp: "abc"
            '2024-01-31 12:34:56+02'::timestamptz => 2024-01-31 10:34:56+00
            '2024-01-31 12:34:56+02:30'::timestamptz => 2024-01-31 10:04:56+00
            '2024-01-31 12:34:56Z'::timestamptz => 2024-01-31 12:34:56+00
            '2024-01-31 12:34:56'::timestamptz => 2024-01-31 12:34:56+00
            '2024-01-31 12:34:56.5-0130'::timestamptz => 2024-01-31 14:04:56.5+00
            '2024-01-31 12:34:56 UTC'::timestamptz => 2024-01-31 12:34:56+00
            '2024-01-31T12:34:56.000001+00'::timestamptz => 2024-01-31 12:34:56.000001+00
            '0001-01-01 00:00:00 BC'::timestamptz => 0001-01-01 00:00:00+00 BC
            'abc'::timestamptz => 22007 invalid input syntax for type timestamp with time zone: "abc"
            '\x0102ff'::bytea => \x0102ff
            '\xDEAD BEEF'::bytea => \xdeadbeef
            'abc\\d\001'::bytea => \x6162635c6401
            'a\047b'::bytea => \x612762
            ''::bytea => \x
            'é'::bytea => \xc3a9
            '\x123'::bytea => 22023 invalid hexadecimal data: odd number of digits
            '\xzz'::bytea => 22023 invalid hexadecimal digit: "z"
            'a\9'::bytea => 22P02 invalid input syntax for type bytea
            'a\'::bytea => 22P02 invalid input syntax for type bytea
        "#;
        check(cases, eval);
        // Every value reads back from its own output.
        for line in cases
            .lines()
            .filter(|l| l.contains("::") && !l.contains("=> 2"))
        {
            let expr = line.trim().split_once(" => ").unwrap().0;
            if let Ok(v) = eval(expr) {
                let ty = v.data_type();
                let again = Value::parse(&v.to_text().unwrap(), &ty).unwrap();
                assert_eq!(again.to_text(), v.to_text(), "round trip of {expr}");
            }
        }
    }

    #[test]
    fn casts() {
        check(
            r#"
            2.5::int4 => 3
            -2.5::int4 => -3
            2.5::float8::int4 => 2
            3.5::float8::int4 => 4
            -2.5::float8::int4 => -2
            0.5::float4::int2 => 0
            'NaN'::float8::int4 => 22003 integer out of range
            'Infinity'::float8::int8 => 22003 bigint out of range
            3e9::float8::int4 => 22003 integer out of range
            32767.5::float8::int2 => 22003 smallint out of range
            32768::int2 => 22003 smallint out of range
            40000.4::int2 => 22003 smallint out of range
            1e19::int8 => 22003 bigint out of range
            0.1::float8::numeric => 0.1
            0.30000000000000004::float8::numeric => 0.3
            0.1::float4::numeric => 0.1
            1e20::float8::numeric => 100000000000000000000
            123456789.123456789::float8::numeric => 123456789.123457
            1.23456789012345678::float8 => 1.2345678901234567
            1.1::float4 => 1.1
            0.3333333333333333::float8::float4 => 0.33333334
            1e-50::float8::float4 => 22003 value out of range: underflow
            true::int4 => 1
            -1::bool => t
            0::bool => f
            true::int8 => 42846 cannot cast type boolean to bigint
            1::int8::bool => 42846 cannot cast type bigint to boolean
            1::int2::bool => 42846 cannot cast type smallint to boolean
            true::date => 42846 cannot cast type boolean to date
            1.5::bool => 42846 cannot cast type numeric to boolean
            'abcd'::varchar(3) => abc
            'abcd'::char(3) => abc
            'ab'::char(4) || '|' => ab  |
            'ab  '::varchar(2) => ab
            12345::varchar(3) => 123
            1::char(3) || '|' => 1  |
            true::text => true
            true::varchar => true
            true::char(2) => tr
            1.5::float8::text => 1.5
            'ab'::bytea::text => \x6162
            12.345::numeric(5,2) => 12.35
            12.345::numeric(4,2) => 12.35
            0.5::numeric(1,0) => 1
            -0.5::numeric(1,0) => -1
            1.5::numeric(3) => 2
            5::numeric(1,0) => 5
            123.456::numeric(4,2) => 22003 numeric field overflow | A field with precision 4, scale 2 must round to an absolute value less than 10^2.
            12345::numeric(5,2) => 22003 numeric field overflow | A field with precision 5, scale 2 must round to an absolute value less than 10^3.
            0.999::numeric(2,2) => 22003 numeric field overflow | A field with precision 2, scale 2 must round to an absolute value less than 1.
            10::numeric(1,0) => 22003 numeric field overflow | A field with precision 1, scale 0 must round to an absolute value less than 10^1.
            '2024-03-15 12:34:56.5'::timestamp::date => 2024-03-15
            '2024-03-15'::date::timestamp => 2024-03-15 00:00:00
            '2024-03-15'::date::timestamptz => 2024-03-15 00:00:00+00
            '2024-03-15 23:59:59+00'::timestamptz::date => 2024-03-15
            '2024-03-15 12:00+02'::timestamptz::timestamp => 2024-03-15 10:00:00
            '2024-03-15 12:00'::timestamp::timestamptz => 2024-03-15 12:00:00+00
            NULL::int4 => NULL
            INSERT 'abcd' INTO varchar(3) => 22001 value too long for type character varying(3)
            INSERT 'abcd' INTO char(3) => 22001 value too long for type character(3)
            INSERT 12345 INTO varchar(3) => 22001 value too long for type character varying(3)
            INSERT true INTO varchar(3) => 22001 value too long for type character varying(3)
            INSERT 'abc   ' INTO varchar(3) => abc
            INSERT 'ab    ' INTO char(3) || '|' => ab |
            INSERT 2.5 INTO int2 => 3
            INSERT 40000 INTO int2 => 22003 smallint out of range
            INSERT 2.5::float8 INTO int4 => 2
            INSERT 1.005 INTO numeric(5,2) => 1.01
            INSERT 1000 INTO numeric(5,2) => 22003 numeric field overflow | A field with precision 5, scale 2 must round to an absolute value less than 10^3.
            INSERT 1e18::float8 INTO int8 => 1000000000000000000
        "#,
            eval,
        );
        // Input (COPY, text-format parameters) errors where a cast truncates.
        let e = Value::parse("abcd", &DataType::Varchar(Some(3))).unwrap_err();
        assert_eq!(e.message, "value too long for type character varying(3)");
        assert_eq!(show(Value::parse("ab  ", &DataType::Char(3))), "ab ");
    }

    #[test]
    fn operators() {
        check(
            r#"
            32767::int2 + 1::int2 => 22003 smallint out of range
            2147483647 + 1 => 22003 integer out of range
            9223372036854775807::int8 + 1 => 22003 bigint out of range
            9223372036854775807::int8 * 2 => 22003 bigint out of range
            -9223372036854775808::int8 / -1 => 22003 bigint out of range
            -2147483648::int4 / -1 => 22003 integer out of range
            -2147483648::int4 % -1 => 0
            -32768::int2 / -1::int2 => 22003 smallint out of range
            -32768::int2 * -1::int2 => 22003 smallint out of range
            1 / 0 => 22012 division by zero
            1::int2 / 0::int2 => 22012 division by zero
            1::int8 % 0 => 22012 division by zero
            1.0 / 0 => 22012 division by zero
            1.0 % 0 => 22012 division by zero
            1.0::float8 / 0 => 22012 division by zero
            1.0::float4 / 0::float4 => 22012 division by zero
            0.0::float8 / 0 => 22012 division by zero
            'NaN'::float8 / 0 => NaN
            -7 / 2 => -3
            -10 % 3 => -1
            10::int2 % -3::int2 => 1
            0.1::float8 + 0.2::float8 => 0.30000000000000004
            1e300::float8 * 1e300::float8 => 22003 value out of range: overflow
            1e-300::float8 * 1e-300::float8 => 22003 value out of range: underflow
            'Infinity'::float8 + 1 => Infinity
            1e38::float4 * 10::float4 => 22003 value out of range: overflow
            0.1::float4 + 0.2::float4 => 0.3
            1::float4 / 3::float4 => 0.33333334
            100::float4 * 1.1::float4 => 110
            1.5::float4 + 1.5::float8 => 3
            1.0 / 3 => 0.33333333333333333333
            10::numeric / 4 => 2.5000000000000000
            1::numeric / 3000000 => 0.000000333333333333333333
            12345678901234567890 / 3 => 4115226300411522630
            0.0 / 0.5 => 0.0000000000000000
            5 / 0.3 => 16.6666666666666667
            1 / 7.0 => 0.14285714285714285714
            100000 / 3.0 => 33333.333333333333
            2.50 * 1.5 => 3.750
            1.50 + 1 => 2.50
            7.5 % 2 => 1.5
            -7.5 % 2 => -1.5
            0.00 * -1 => 0.00
            2::numeric ^ 10 => 1024.0000000000000000
            1.5 ^ 2 => 2.2500000000000000
            2::numeric ^ 0.5 => 1.4142135623730950
            2.0 ^ -2 => 0.2500000000000000
            0::numeric ^ 0 => 1.0000000000000000
            3::numeric ^ 3.0 => 27.0000000000000000
            0.0 ^ -1 => 2201F zero raised to a negative power is undefined
            -2.0 ^ 0.5 => 2201F a negative number raised to a non-integer power yields a complex result
            0::float8 ^ -1 => 2201F zero raised to a negative power is undefined
            2 ^ 10 => 1024
            0::float8 ^ 0 => 1
            true || 'a' => truea
            'a' || true => atrue
            'a' || 1.50 => a1.50
            'a'::text || NULL => NULL
            1 + NULL => NULL
            '\x41'::bytea || '\x42'::bytea => \x4142
            '2024-01-31'::date + 1 => 2024-02-01
            1::int2 + '2024-01-31'::date => 2024-02-01
            '2024-03-01'::date - '2024-01-31'::date => 30
            '2024-03-01'::date - 1 => 2024-02-29
            '0001-01-01'::date - 1 => 0001-12-31 BC
            'a' < 'b' => t
            'B' < 'a' => t
            'ab' < 'abc' => t
            'a ' = 'a' => f
            'é' > 'z' => t
            1 = 1.0 => t
            1::int2 = 1::int8 => t
            1 = 1.0::float8 => t
            0.1::float4 = 0.1::float8 => f
            0.1 = 0.1::float8 => t
            'NaN'::float8 = 'NaN'::float8 => t
            'NaN'::float8 > 'Infinity'::float8 => t
            '-0'::float8 = 0::float8 => t
            '2024-01-01'::date = '2024-01-01'::timestamp => t
            '2024-01-01'::timestamp = '2024-01-01 00:00:00+00'::timestamptz => t
            '2024-01-01'::date < '2024-01-01 00:00:01+00'::timestamptz => t
            1 = '1' => t
            1 = 'a' => 22P02 invalid input syntax for type integer: "a"
            1 = true => 42883 operator does not exist: integer = boolean
            1 <> NULL => NULL
            -('-32768'::int2) => 22003 smallint out of range
            -(-2147483648::int4) => 22003 integer out of range
            -('-9223372036854775808'::int8) => 22003 bigint out of range
            -(true) => 42883 operator does not exist: - boolean
            -('a'::text) => 42883 operator does not exist: - text
            -(0.0) => 0.0
            'abc' LIKE 'a%' => t
            'abc' LIKE 'a_c' => t
            'abc' LIKE 'A%' => f
            'abc' ILIKE 'A%' => t
            'a%c' LIKE 'a\%c' => t
            'abc' LIKE 'a\%c' => f
            'abc' NOT LIKE 'b%' => t
            'ABC' NOT ILIKE 'a%' => f
            '' LIKE '%' => t
            'a_c' LIKE 'a\_c' => t
            'é' LIKE '_' => t
            'É' ILIKE 'é' => f
            'aXbXc' LIKE '%b%c' => t
            'abcabd' LIKE '%abd' => t
            'abab' LIKE '%ab%ab' => t
            'ab' LIKE '%ab%ab' => f
            'mississippi' LIKE 'm%iss%ppi' => t
            'abc' LIKE '___' => t
            'abc' LIKE '__' => f
            'a\b' LIKE 'a\\b' => t
            'abc' LIKE 'ab\' => 22025 LIKE pattern must not end with escape character
        "#,
            eval,
        );
        let e = Value::unary_op(UnaryOp::Neg, &Value::Text("a".into())).unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("No operator matches the given name and argument type. You might need to add an explicit type cast.")
        );
    }

    #[test]
    fn operator_and_common_types() {
        let show_type = |r: Result<DataType>| match r {
            Ok(t) => t.name(),
            Err(e) => format!("{} {}", e.code, e.message),
        };
        for line in r#"
            int4 + float4 => double precision
            numeric + float4 => double precision
            float4 + float4 => real
            int2 + int2 => smallint
            int2 + int4 => integer
            int2 + int8 => bigint
            numeric(10,2) + float8 => double precision
            int4 ^ int4 => double precision
            numeric ^ int4 => numeric
            float4 ^ float4 => double precision
            int2 % int2 => smallint
            int4 + unknown => integer
            numeric * unknown => numeric
            unknown || unknown => text
            int4 || unknown => text
            varchar(3) || varchar => text
            date + int4 => date
            int2 + date => date
            date - date => integer
            text < varchar => boolean
            date = timestamptz => boolean
            text + int4 => 42883 operator does not exist: text + integer
            unknown + unknown => 42725 operator is not unique: unknown + unknown
            float8 % int4 => 42883 operator does not exist: double precision % integer
            int4 || int4 => 42883 operator does not exist: integer || integer
            int4 LIKE unknown => 42883 operator does not exist: integer ~~ unknown
            date + unknown => 42725 operator is not unique: date + unknown
            date + int8 => 42883 operator does not exist: date + bigint
            text = int4 => 42883 operator does not exist: text = integer
            int4 = bool => 42883 operator does not exist: integer = boolean
            int4 UNION int8 => bigint
            int4 UNION numeric(10,2) => numeric
            numeric UNION float4 => real
            varchar(3) UNION varchar(5) => character varying
            varchar(3) UNION varchar(3) => character varying(3)
            char(3) UNION text => text
            date CASE timestamp => timestamp without time zone
            timestamp CASE timestamptz => timestamp with time zone
            unknown COALESCE date => date
            unknown VALUES unknown => unknown
            text UNION int4 => 42804 UNION types text and integer cannot be matched
            int4 GREATEST bool => 42804 GREATEST types integer and boolean cannot be matched
        "#
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        {
            let (expr, want) = line.split_once(" => ").unwrap();
            let [l, op, r]: [&str; 3] = expr.split(' ').collect::<Vec<_>>().try_into().unwrap();
            let ty = |name: &str| {
                if name == "unknown" {
                    DataType::Unknown
                } else {
                    sql_type(name).unwrap()
                }
            };
            let got = match BINARY_OPS.iter().find(|(s, _)| s.trim() == op) {
                Some((_, op)) => op.result_type(&ty(l), &ty(r)),
                None => DataType::common(&ty(l), &ty(r), op),
            };
            assert_eq!(show_type(got), want, "{expr}");
        }
        let e = BinaryOp::Add
            .result_type(&DataType::Text, &DataType::Int4)
            .unwrap_err();
        assert_eq!(e.hint.as_deref(), Some(OPERATOR_HINT));
    }

    #[test]
    fn types_from_sql() {
        // format_type, oid, atttypmod and typlen as PostgreSQL's catalog shows them.
        for line in r#"
            int => integer 23 -1 4
            int2 => smallint 21 -1 2
            int8 => bigint 20 -1 8
            real => real 700 -1 4
            float8 => double precision 701 -1 8
            float(10) => real 700 -1 4
            float(30) => double precision 701 -1 8
            numeric => numeric 1700 -1 -1
            numeric(10,2) => numeric(10,2) 1700 655366 -1
            numeric(5) => numeric(5,0) 1700 327684 -1
            decimal(7,3) => numeric(7,3) 1700 458759 -1
            text => text 25 -1 -1
            varchar => character varying 1043 -1 -1
            varchar(3) => character varying(3) 1043 7 -1
            character varying(10) => character varying(10) 1043 14 -1
            char => character(1) 1042 5 -1
            character(5) => character(5) 1042 9 -1
            bool => boolean 16 -1 1
            date => date 1082 -1 4
            timestamp => timestamp without time zone 1114 -1 8
            timestamp without time zone => timestamp without time zone 1114 -1 8
            timestamptz => timestamp with time zone 1184 -1 8
            timestamp with time zone => timestamp with time zone 1184 -1 8
            bytea => bytea 17 -1 -1
            foo => 42704 type "foo" does not exist
            varchar(0) => 22023 length for type varchar must be at least 1
            char(0) => 22023 length for type char must be at least 1
            varchar(10485761) => 22023 length for type varchar cannot exceed 10485760
            float(0) => 22023 precision for type float must be at least 1 bit
            float(54) => 22023 precision for type float must be less than 54 bits
            numeric(0) => 22023 NUMERIC precision 0 must be between 1 and 1000
            numeric(1001) => 22023 NUMERIC precision 1001 must be between 1 and 1000
            text(5) => 42601 type modifier is not allowed for type "text"
        "#
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        {
            let (sql, want) = line.split_once(" => ").unwrap();
            let got = match sql_type(sql) {
                Ok(t) => format!("{} {} {} {}", t.name(), t.oid(), t.typmod(), t.len()),
                Err(e) => format!("{} {}", e.code, e.message),
            };
            assert_eq!(got, want, "{sql}");
            if let Ok(t) = sql_type(sql) {
                let base = DataType::from_oid(t.oid()).unwrap();
                assert!(
                    base == t || t.typmod() != -1,
                    "{sql}: from_oid gives {base}"
                );
            }
        }
        assert_eq!(DataType::from_oid(1042), Some(DataType::Text));
        assert_eq!(DataType::from_oid(705), Some(DataType::Unknown));
        assert_eq!(DataType::from_oid(1), None);
    }

    fn hash(v: &Value) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn order_equality_and_hash() {
        let all_equal = |exprs: &[&str]| {
            let values: Vec<Value> = exprs.iter().map(|e| eval(e).unwrap()).collect();
            for a in &values {
                for b in &values {
                    assert_eq!(a, b);
                    assert_eq!(hash(a), hash(b), "{a:?} {b:?}");
                }
            }
        };
        all_equal(&[
            "1::int2",
            "1",
            "1::int8",
            "1.0",
            "1.00",
            "1::float4",
            "1::float8",
        ]);
        all_equal(&["NULL", "NULL::int4"]);
        all_equal(&["'NaN'::float4", "'NaN'::float8"]);
        all_equal(&["'-0'::float8", "0", "0.000"]);
        all_equal(&[
            "'2024-01-01'::date",
            "'2024-01-01'::timestamp",
            "'2024-01-01'::timestamptz",
        ]);
        assert_ne!(eval("'1'").unwrap(), eval("1").unwrap());
        assert_ne!(eval("'a '").unwrap(), eval("'a'").unwrap());
        // PostgreSQL: SELECT x FROM (VALUES (1.5::float8), (NULL), ('NaN'), ...) v(x) ORDER BY x
        let mut values: Vec<Value> = [
            "1.5::float8",
            "NULL",
            "'NaN'::float8",
            "'-Infinity'::float8",
            "'Infinity'::float8",
            "0",
            "2.0",
        ]
        .iter()
        .map(|e| eval(e).unwrap())
        .collect();
        values.sort();
        let sorted: Vec<String> = values.into_iter().map(|v| show(Ok(v))).collect();
        assert_eq!(
            sorted,
            ["-Infinity", "0", "1.5", "2.0", "Infinity", "NaN", "NULL"]
        );
        assert_eq!(Value::Null.compare(&Value::Int4(1)).unwrap(), None);
        assert_eq!(
            eval("2").unwrap().compare(&eval("10.5").unwrap()).unwrap(),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn truth_and_accessors() {
        assert_eq!(Value::Bool(true).truth("WHERE").unwrap(), Some(true));
        assert_eq!(Value::Null.truth("WHERE").unwrap(), None);
        let e = Value::Int4(1).truth("WHERE").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "42804",
                "argument of WHERE must be type boolean, not type integer"
            )
        );
        assert_eq!(Value::Int2(7).as_i64(), Some(7));
        assert_eq!(eval("2.5").unwrap().as_f64(), Some(2.5));
        assert_eq!(Value::Text("x".into()).as_str(), Some("x"));
        assert_eq!(Value::Bool(false).as_bool(), Some(false));
        assert_eq!(Value::Null.data_type(), DataType::Unknown);
    }
}
