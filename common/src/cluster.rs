//! The cluster catalog's descriptors, as a coordinator keeps them (Postgres-XC's `pgxc_node`,
//! `pgxc_group` and `pgxc_class`), and row placement: which datanode holds a row of a
//! distributed table.
//!
//! # Row placement
//!
//! A row of a `HASH (col)` table lives on node `placement_hash(value) % n` of the table's node
//! list (`n` nodes, in the order the list was given); a `MODULO (col)` row on node
//! `value mod n` (the absolute value of the integer); NULL on the first node. The hash is
//! 64-bit FNV-1a over a type-class tag byte and the value's canonical bytes:
//!
//! | type                                  | tag | canonical bytes                                   |
//! |---------------------------------------|-----|---------------------------------------------------|
//! | smallint, integer, bigint             | `i` | the value as a big-endian `i64`                    |
//! | numeric                               | `n` | the normalized decimal text (`1.50` → `1.5`)       |
//! | text, varchar                         | `t` | the UTF-8 bytes                                    |
//! | char(n)                               | `t` | the UTF-8 bytes without trailing spaces            |
//! | boolean                               | `b` | one byte, 0 or 1                                   |
//! | date                                  | `d` | days since 1970-01-01 as a big-endian `i64`        |
//! | timestamp, timestamptz                | `s` | microseconds since 1970-01-01 (UTC) as big-endian `i64` |
//! | bytea                                 | `x` | the bytes                                          |
//!
//! Equal values of a column's type have equal bytes, whatever their spelling; integers of
//! different widths agree. Data placement depends on this function, so it never changes.
//! Floating-point columns cannot be distribution keys (`0.0 = -0.0`, and rounding makes
//! equality a poor key), nor can `MODULO` use anything but an integer column.

use crate::sql::error::{sqlstate, Result, SqlError};
use crate::sql::{DataType, Value};
use serde::{Deserialize, Serialize};

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    Coordinator,
    Datanode,
}

impl NodeKind {
    /// The `TYPE` option's spelling, and `pgxc_node.node_type`'s letter.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Coordinator => "coordinator",
            NodeKind::Datanode => "datanode",
        }
    }

    /// `pgxc_node.node_type`: `C` or `D`.
    pub fn letter(self) -> &'static str {
        match self {
            NodeKind::Coordinator => "C",
            NodeKind::Datanode => "D",
        }
    }
}

/// A node of the cluster, as `CREATE NODE` registered it (`pgxc_node`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDef {
    pub name: String,
    pub kind: NodeKind,
    pub host: String,
    pub port: u16,
    /// Replicated tables are written here first (so writers of a row queue in one place).
    pub primary: bool,
    /// Replicated tables are read here when it holds them.
    pub preferred: bool,
    /// A stable id derived from the name (`pgxc_node.node_id`).
    pub id: i32,
}

impl NodeDef {
    /// The node id of `name`: the FNV-1a hash of the name, as a signed 32-bit number
    /// (Postgres-XC derives its node ids from the name too).
    pub fn id_of(name: &str) -> i32 {
        fnv1a(name.as_bytes()) as u32 as i32
    }
}

/// A node group (`pgxc_group`): a named list of datanodes tables can be distributed to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeGroup {
    pub name: String,
    pub members: Vec<String>,
}

/// How a table's rows are spread over its nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Locator {
    /// Every node holds every row.
    Replication,
    /// Rows go to the nodes in turn.
    RoundRobin,
    /// By the hash of a column (its position).
    Hash(usize),
    /// By an integer column modulo the number of nodes.
    Modulo(usize),
}

impl Locator {
    /// `pgxc_class.pclocatortype`: `R`, `N`, `H` or `M`.
    pub fn letter(&self) -> &'static str {
        match self {
            Locator::Replication => "R",
            Locator::RoundRobin => "N",
            Locator::Hash(_) => "H",
            Locator::Modulo(_) => "M",
        }
    }

    /// The distribution column's position, if the locator has one.
    pub fn column(&self) -> Option<usize> {
        match self {
            Locator::Hash(c) | Locator::Modulo(c) => Some(*c),
            _ => None,
        }
    }
}

/// A distributed table's entry (`pgxc_class`), kept under the table's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    pub locator: Locator,
    /// The datanodes holding the table, in placement order.
    pub nodes: Vec<String>,
}

impl Distribution {
    /// The position in `nodes` of the node that holds a row whose distribution column is
    /// `value` (HASH or MODULO tables; see the module docs).
    pub fn node_for(&self, value: &Value, ty: &DataType) -> Result<usize> {
        let n = self.nodes.len().max(1) as u64;
        if value.is_null() {
            return Ok(0);
        }
        Ok(match self.locator {
            Locator::Modulo(_) => match integer(value) {
                Some(i) => (i.unsigned_abs() % n) as usize,
                None => return Err(not_a_key(ty, "MODULO")),
            },
            _ => (placement_hash(value, ty)? % n) as usize,
        })
    }
}

fn not_a_key(ty: &DataType, how: &str) -> SqlError {
    SqlError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!("column of type {ty} cannot be a {how} distribution key"),
    )
}

fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Int2(i) => Some(i64::from(*i)),
        Value::Int4(i) => Some(i64::from(*i)),
        Value::Int8(i) => Some(*i),
        _ => None,
    }
}

/// Checks that a column of type `ty` can be a distribution key of `locator`'s kind (the
/// error names the column).
pub fn check_key_type(locator: &Locator, column: &str, ty: &DataType) -> Result<()> {
    let ok = match locator {
        Locator::Modulo(_) => matches!(ty, DataType::Int2 | DataType::Int4 | DataType::Int8),
        Locator::Hash(_) => !matches!(ty, DataType::Float4 | DataType::Float8 | DataType::Unknown),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    let how = if matches!(locator, Locator::Modulo(_)) {
        "MODULO"
    } else {
        "HASH"
    };
    Err(SqlError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!("column \"{column}\" of type {ty} cannot be a {how} distribution key"),
    ))
}

/// The placement hash of a non-NULL value of a column of type `ty` (see the module docs).
pub fn placement_hash(value: &Value, ty: &DataType) -> Result<u64> {
    let mut bytes = Vec::with_capacity(16);
    match value {
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => {
            bytes.push(b'i');
            bytes.extend_from_slice(&integer(value).unwrap_or(0).to_be_bytes());
        }
        Value::Numeric(d) => {
            bytes.push(b'n');
            bytes.extend_from_slice(d.normalize().to_string().as_bytes());
        }
        Value::Text(s) => {
            bytes.push(b't');
            let s = if matches!(ty, DataType::Char(_)) {
                s.trim_end_matches(' ')
            } else {
                s
            };
            bytes.extend_from_slice(s.as_bytes());
        }
        Value::Bool(b) => {
            bytes.push(b'b');
            bytes.push(u8::from(*b));
        }
        Value::Date(d) => {
            bytes.push(b'd');
            let days = d
                .signed_duration_since(chrono::NaiveDate::default())
                .num_days();
            bytes.extend_from_slice(&days.to_be_bytes());
        }
        Value::Timestamp(t) => {
            bytes.push(b's');
            bytes.extend_from_slice(&t.and_utc().timestamp_micros().to_be_bytes());
        }
        Value::TimestampTz(t) => {
            bytes.push(b's');
            bytes.extend_from_slice(&t.timestamp_micros().to_be_bytes());
        }
        Value::Bytea(b) => {
            bytes.push(b'x');
            bytes.extend_from_slice(b);
        }
        Value::Float4(_) | Value::Float8(_) | Value::Null => return Err(not_a_key(ty, "HASH")),
    }
    Ok(fnv1a(&bytes))
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn hash(v: Value, ty: DataType) -> u64 {
        placement_hash(&v, &ty).unwrap()
    }

    #[test]
    fn placement_is_fixed_and_spelling_free() {
        // Fixed values (computed by an independent FNV-1a): placement depends on them.
        assert_eq!(hash(Value::Int4(1), DataType::Int4), 0x5b37_847b_c82b_a857);
        assert_eq!(
            hash(Value::Text("abc".into()), DataType::Text),
            0xd927_43ef_0779_9a9d
        );
        // Integer widths agree; numeric spellings agree; char padding does not count.
        assert_eq!(
            hash(Value::Int2(7), DataType::Int2),
            hash(Value::Int8(7), DataType::Int8)
        );
        assert_eq!(
            hash(
                Value::Numeric(Decimal::new(150, 2)),
                DataType::Numeric(None)
            ),
            hash(Value::Numeric(Decimal::new(15, 1)), DataType::Numeric(None))
        );
        assert_eq!(
            hash(Value::Text("ab  ".into()), DataType::Char(4)),
            hash(Value::Text("ab".into()), DataType::Text)
        );
        assert_ne!(
            hash(Value::Int4(1), DataType::Int4),
            hash(Value::Int4(2), DataType::Int4)
        );
    }

    #[test]
    fn rows_spread_over_the_nodes() {
        let d = Distribution {
            locator: Locator::Hash(0),
            nodes: vec!["dn1".into(), "dn2".into(), "dn3".into()],
        };
        let mut counts = [0; 3];
        for i in 0..3000 {
            counts[d.node_for(&Value::Int4(i), &DataType::Int4).unwrap()] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        assert_eq!(d.node_for(&Value::Null, &DataType::Int4).unwrap(), 0);
        let m = Distribution {
            locator: Locator::Modulo(0),
            ..d
        };
        assert_eq!(m.node_for(&Value::Int8(-7), &DataType::Int8).unwrap(), 1);
        assert_eq!(m.node_for(&Value::Int4(5), &DataType::Int4).unwrap(), 2);
    }

    #[test]
    fn key_types_are_checked() {
        assert!(check_key_type(&Locator::Hash(0), "a", &DataType::Text).is_ok());
        let e = check_key_type(&Locator::Hash(0), "f", &DataType::Float8).unwrap_err();
        assert_eq!(e.code, sqlstate::FEATURE_NOT_SUPPORTED);
        assert!(e.message.contains("\"f\""), "{}", e.message);
        assert!(check_key_type(&Locator::Modulo(0), "t", &DataType::Text).is_err());
        assert!(check_key_type(&Locator::Modulo(0), "i", &DataType::Int8).is_ok());
    }
}
