//! Table rows in the MVCC layer: the executor's [`Storage`] for one transaction.
//!
//! A row is stored whole (every column, postcard-encoded) under its primary key; a table
//! without one keys rows by a hidden row id, `gxid << 32 | n`, unique without coordination
//! because GXIDs are. SQL values become key values with an order-preserving mapping (dates
//! and timestamps as integers, numerics as numerics whatever their scale).
//!
//! The table's secondary indexes reach the MVCC layer as [`RowIndexes`]: their storage specs
//! and the key values a stored row carries for each, which is all the layer needs to keep
//! entries, check uniqueness and re-check index scans (see [`crate::storage::index`]).

use super::catalog::storage_error;
use super::roles::Roles;
use super::system;
use crate::storage::index::{self, IndexSpec, TableIndexes, UniqueRule};
use crate::storage::keycode::{Order, Value as KeyValue};
use crate::storage::locks::{RowLockMode, WaitOptions};
use crate::storage::mvcc::{Guarded, MvccError, Transaction};
use crate::storage::StorageError;
use rxc_common::sql::catalog::{Index, Table};
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::exec::{InsertOutcome, Row, RowId, Storage, WriteOutcome};
use rxc_common::sql::expr::SeqCall;
use rxc_common::sql::index_scan::IndexRange;
use rxc_common::sql::plan::{Arbiter, RowLock};
use rxc_common::sql::Value;
use rxc_common::txn::Isolation;
use std::ops::Bound;

/// Maps an MVCC error to its SQL error.
pub fn mvcc_error(e: MvccError) -> SqlError {
    match &e {
        MvccError::Serialization => SqlError::new(
            sqlstate::SERIALIZATION_FAILURE,
            "could not serialize access due to concurrent update",
        ),
        MvccError::ReadOnly => SqlError::new(
            sqlstate::READ_ONLY_SQL_TRANSACTION,
            "cannot execute this statement in a read-only transaction",
        ),
        MvccError::UniqueViolation { .. } => {
            SqlError::new(sqlstate::UNIQUE_VIOLATION, e.to_string())
        }
        _ => match e.sqlstate() {
            Some(code) => {
                let mut err = SqlError::new(static_code(code), e.to_string());
                err.detail = e.detail().map(str::to_string);
                err
            }
            None => storage_error(e),
        },
    }
}

fn static_code(code: &str) -> &'static str {
    match code {
        "40P01" => sqlstate::DEADLOCK_DETECTED,
        "55P03" => sqlstate::LOCK_NOT_AVAILABLE,
        "57014" => sqlstate::QUERY_CANCELED,
        "40001" => sqlstate::SERIALIZATION_FAILURE,
        "23505" => sqlstate::UNIQUE_VIOLATION,
        "25006" => sqlstate::READ_ONLY_SQL_TRANSACTION,
        "08006" => sqlstate::CONNECTION_FAILURE,
        _ => sqlstate::INTERNAL_ERROR,
    }
}

/// The key value of a SQL value.
pub fn key_value(v: &Value) -> Result<KeyValue> {
    Ok(match v {
        Value::Null => KeyValue::Null,
        Value::Bool(b) => KeyValue::Bool(*b),
        Value::Int2(i) => KeyValue::Int(*i as i64),
        Value::Int4(i) => KeyValue::Int(*i as i64),
        Value::Int8(i) => KeyValue::Int(*i),
        Value::Float4(f) => KeyValue::Float(*f as f64),
        Value::Float8(f) => KeyValue::Float(*f),
        Value::Text(s) => KeyValue::Text(s.clone()),
        Value::Bytea(b) => KeyValue::Bytes(b.clone()),
        Value::Date(d) => KeyValue::Int(d.num_days_from_ce() as i64),
        Value::Timestamp(t) => KeyValue::Int(t.and_utc().timestamp_micros()),
        Value::TimestampTz(t) => KeyValue::Int(t.timestamp_micros()),
        Value::Numeric(d) => KeyValue::Numeric(*d),
    })
}

/// A table's secondary indexes as the MVCC layer sees them (see the module doc).
pub struct RowIndexes<'t> {
    table: &'t Table,
    specs: Vec<IndexSpec>,
    first: Vec<UniqueRule>,
}

impl<'t> RowIndexes<'t> {
    /// Every index of `table`.
    pub fn new(table: &'t Table) -> Self {
        let specs = table
            .indexes
            .iter()
            .map(|i| IndexSpec {
                id: i.id,
                orders: i
                    .descending
                    .iter()
                    .map(|&d| if d { Order::Desc } else { Order::Asc })
                    .collect(),
                unique: i.unique,
                nulls_distinct: i.nulls_distinct,
            })
            .collect();
        RowIndexes {
            table,
            specs,
            first: Vec::new(),
        }
    }

    /// Every index of `table`, the uniqueness rules of `arbiters` checked first.
    fn arbiters_first(table: &'t Table, arbiters: &[Arbiter]) -> Self {
        let mut indexes = RowIndexes::new(table);
        indexes.first = arbiters
            .iter()
            .filter_map(|a| match a {
                Arbiter::PrimaryKey => Some(UniqueRule::PrimaryKey),
                Arbiter::Index(id) => table
                    .indexes
                    .iter()
                    .position(|i| i.id == *id)
                    .map(UniqueRule::Index),
            })
            .collect();
        indexes
    }
}

impl TableIndexes for RowIndexes<'_> {
    fn specs(&self) -> &[IndexSpec] {
        &self.specs
    }

    fn values(&self, row: &[u8]) -> std::result::Result<Vec<Vec<KeyValue>>, StorageError> {
        let row = decode_row(row).map_err(|e| StorageError::InvalidData(e.message))?;
        self.table
            .indexes
            .iter()
            .map(|index| {
                // A row written before a column was added is shorter: the column is NULL.
                index
                    .columns
                    .iter()
                    .map(|&c| row.get(c).map_or(Ok(KeyValue::Null), key_value))
                    .collect::<Result<Vec<_>>>()
                    .map_err(|e| StorageError::InvalidData(e.message))
            })
            .collect()
    }

    fn checked_first(&self) -> Vec<UniqueRule> {
        self.first.clone()
    }
}

/// PostgreSQL's unique violation of the primary key (`index_id` None) or a unique index of
/// `table` by `row`: `duplicate key value violates unique constraint "t_a_key"`, detail
/// `Key (a)=(1) already exists.`
pub fn unique_violation(table: &Table, index_id: Option<u64>, row: &[u8]) -> SqlError {
    let (name, columns) = match index_id.and_then(|id| table.indexes.iter().find(|i| i.id == id)) {
        Some(index) => (index.name.clone(), index.columns.clone()),
        None => (
            table.primary_key_name.clone().unwrap_or_default(),
            table.primary_key.clone(),
        ),
    };
    let detail = match decode_row(row) {
        Ok(row) => format!("Key {} already exists.", key_text(table, &columns, &row)),
        Err(_) => String::new(),
    };
    SqlError::new(
        sqlstate::UNIQUE_VIOLATION,
        format!("duplicate key value violates unique constraint \"{name}\""),
    )
    .with_detail(detail)
}

/// `(a, b)=(1, x)`: the columns and `row`'s values of them, as PostgreSQL's key details show.
pub fn key_text(table: &Table, columns: &[usize], row: &[Value]) -> String {
    let names: Vec<&str> = columns
        .iter()
        .map(|&c| table.columns[c].name.as_str())
        .collect();
    let values: Vec<String> = columns
        .iter()
        .map(|&c| {
            row.get(c)
                .and_then(Value::to_text)
                .unwrap_or_else(|| "null".into())
        })
        .collect();
    format!("({})=({})", names.join(", "), values.join(", "))
}

use chrono::Datelike as _;

fn encode_row(row: &Row) -> Result<Vec<u8>> {
    postcard::to_allocvec(row).map_err(storage_error)
}

/// Decodes a stored row.
pub fn decode_row(bytes: &[u8]) -> Result<Row> {
    postcard::from_bytes(bytes).map_err(|e| storage_error(format!("bad row: {e}")))
}

/// The storage's identity of a row: its key values as SQL values.
fn row_id(table: &Table, row: &Row, hidden: Option<i64>) -> RowId {
    match hidden {
        Some(id) => vec![Value::Int8(id)],
        None => table.primary_key.iter().map(|&i| row[i].clone()).collect(),
    }
}

fn key_of(id: &RowId) -> Result<Vec<KeyValue>> {
    id.iter().map(key_value).collect()
}

/// System views are read-only.
fn refuse_view_write(table: &Table) -> Result<()> {
    if system::is_view(table.id) {
        return Err(SqlError::new(
            sqlstate::WRONG_OBJECT_TYPE,
            format!("cannot change system view \"{}\"", table.name),
        ));
    }
    Ok(())
}

/// A stored row with its id: the hidden row id from the key, else the primary key's values.
fn stored_row(table: &Table, pk: &[KeyValue], bytes: &[u8]) -> Result<(RowId, Row)> {
    let row = decode_row(bytes)?;
    let id = if table.has_row_id() {
        match pk.first() {
            Some(KeyValue::Int(i)) => vec![Value::Int8(*i)],
            _ => return Err(storage_error("bad hidden row id")),
        }
    } else {
        row_id(table, &row, None)
    };
    Ok((id, row))
}

/// An index range's SQL bound as a key bound.
fn key_bound(bound: &Bound<Value>) -> Result<Bound<KeyValue>> {
    Ok(match bound {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(v) => Bound::Included(key_value(v)?),
        Bound::Excluded(v) => Bound::Excluded(key_value(v)?),
    })
}

/// The executor's storage over one MVCC transaction.
pub struct TxnStorage<'a> {
    pub txn: &'a mut Transaction,
    /// Hidden row ids handed out by this transaction so far.
    pub row_ids: &'a mut u32,
    /// Sequence functions (the session's: values from the GTM, its `currval`).
    pub sequences: &'a dyn Fn(&SeqCall, &[Value]) -> Result<Value>,
    /// The statement's cancel flag and deadline, checked as it runs.
    pub interrupt: WaitOptions,
    /// The node's roles (for `pg_roles`).
    pub roles: &'a Roles,
}

/// A write's MVCC error as the SQL error, naming the unique constraint it violates.
fn write_error(table: &Table, e: MvccError) -> SqlError {
    match e {
        MvccError::UniqueViolation { index_id, row, .. } => unique_violation(table, index_id, &row),
        e => mvcc_error(e),
    }
}

impl TxnStorage<'_> {
    /// The id of a row about to be inserted: a new hidden row id, or its primary key.
    fn new_row_id(&mut self, table: &Table, row: &Row) -> Result<RowId> {
        if !table.has_row_id() {
            return Ok(row_id(table, row, None));
        }
        let gxid = self
            .txn
            .gxid()
            .ok_or_else(|| mvcc_error(MvccError::ReadOnly))?;
        *self.row_ids = self.row_ids.checked_add(1).ok_or_else(|| {
            SqlError::new(
                sqlstate::PROGRAM_LIMIT_EXCEEDED,
                "too many rows inserted in one transaction into tables without a primary key",
            )
        })?;
        Ok(row_id(
            table,
            row,
            Some(((gxid.0 << 32) | *self.row_ids as u64) as i64),
        ))
    }

    fn read(&self, table: &Table, key: &[KeyValue], id: &RowId) -> Result<Option<(RowId, Row)>> {
        match self.txn.get(table.id, key).map_err(mvcc_error)? {
            None => Ok(None),
            Some(bytes) => Ok(Some((id.clone(), decode_row(&bytes)?))),
        }
    }
}

impl Storage for TxnStorage<'_> {
    fn scan(&mut self, table: &Table) -> Result<Vec<(RowId, Row)>> {
        if system::is_view(table.id) {
            let rows = match table.id {
                system::PG_ROLES => self.roles.rows(self.txn)?,
                system::PG_USER => self.roles.user_rows(self.txn)?,
                id => system::rows(&**self.txn.engine(), self.txn.locks(), id)?,
            };
            return Ok((0..).map(|i| vec![Value::Int8(i)]).zip(rows).collect());
        }
        let rows = self.txn.scan(table.id).map_err(mvcc_error)?;
        rows.iter()
            .map(|(pk, bytes)| stored_row(table, pk, bytes))
            .collect()
    }

    fn index_scan(
        &mut self,
        table: &Table,
        index: &Index,
        range: &IndexRange,
    ) -> Result<Vec<(RowId, Row)>> {
        let position = table
            .indexes
            .iter()
            .position(|i| i.id == index.id)
            .ok_or_else(|| {
                SqlError::internal(format!("no index {} on {}", index.name, table.name))
            })?;
        let range = index::IndexRange {
            prefix: range.prefix.iter().map(key_value).collect::<Result<_>>()?,
            lower: key_bound(&range.lower)?,
            upper: key_bound(&range.upper)?,
        };
        let rows = self
            .txn
            .index_scan(table.id, &RowIndexes::new(table), position, &range)
            .map_err(mvcc_error)?;
        rows.iter()
            .map(|(pk, bytes)| stored_row(table, pk, bytes))
            .collect()
    }

    fn lookup(&mut self, table: &Table, key: &[Value]) -> Result<Option<(RowId, Row)>> {
        let id: RowId = key.to_vec();
        self.read(table, &key_of(&id)?, &id)
    }

    fn insert(&mut self, table: &Table, row: &Row) -> Result<()> {
        refuse_view_write(table)?;
        let id = self.new_row_id(table, row)?;
        let indexes = RowIndexes::new(table);
        let (key, bytes) = (key_of(&id)?, encode_row(row)?);
        // A hidden row id is new by construction — the GXID above a counter — while the GXID
        // fits 31 bits (beyond, ids of GXIDs 2^32 apart coincide: the insert then checks).
        let fresh = table.has_row_id() && self.txn.gxid().is_some_and(|g| g.0 < 1 << 31);
        self.txn
            .insert_key(table.id, &key, bytes, &indexes, fresh)
            .map_err(|e| write_error(table, e))
    }

    fn insert_or_conflict(
        &mut self,
        table: &Table,
        row: &Row,
        arbiters: &[Arbiter],
        lock: bool,
    ) -> Result<InsertOutcome> {
        refuse_view_write(table)?;
        let indexes = RowIndexes::arbiters_first(table, arbiters);
        loop {
            let id = self.new_row_id(table, row)?;
            let result = self
                .txn
                .insert(table.id, &key_of(&id)?, encode_row(row)?, &indexes);
            let existing = match result {
                Ok(()) => return Ok(InsertOutcome::Inserted(id)),
                Err(MvccError::UniqueViolation {
                    index_id, existing, ..
                }) if arbiters.contains(&match index_id {
                    None => Arbiter::PrimaryKey,
                    Some(id) => Arbiter::Index(id),
                }) =>
                {
                    existing
                }
                Err(e) => return Err(write_error(table, e)),
            };
            if !lock {
                // DO NOTHING; REPEATABLE READ may not skip a row its snapshot cannot see.
                if self.txn.isolation() == Isolation::RepeatableRead
                    && self
                        .txn
                        .get(table.id, &existing)
                        .map_err(mvcc_error)?
                        .is_none()
                {
                    return Err(mvcc_error(MvccError::Serialization));
                }
                return Ok(InsertOutcome::Conflict(None));
            }
            let locked = self
                .txn
                .lock_conflicting(table.id, &existing, RowLockMode::Update)
                .map_err(mvcc_error)?;
            // Gone since the check (its deleter committed): try the insert again.
            if let Some(bytes) = locked {
                let (id, row) = stored_row(table, &existing, &bytes)?;
                return Ok(InsertOutcome::Conflict(Some((id, row))));
            }
        }
    }

    fn update(&mut self, table: &Table, id: &RowId, old: &Row, new: &Row) -> Result<WriteOutcome> {
        refuse_view_write(table)?;
        let new_id = if table.has_row_id() {
            id.clone()
        } else {
            row_id(table, new, None)
        };
        if new_id != *id {
            // The key changed: delete the old row, insert the new one.
            return match self.delete(table, id, old)? {
                WriteOutcome::Done => {
                    self.insert(table, new)?;
                    Ok(WriteOutcome::Done)
                }
                other => Ok(other),
            };
        }
        let indexes = RowIndexes::new(table);
        let unchanged = |bytes: &[u8]| decode_row(bytes).is_ok_and(|row| row == *old);
        let guarded = self
            .txn
            .update_unchanged(
                table.id,
                &key_of(id)?,
                encode_row(new)?,
                &indexes,
                &unchanged,
            )
            .map_err(|e| write_error(table, e))?;
        outcome(id, guarded)
    }

    fn delete(&mut self, table: &Table, id: &RowId, old: &Row) -> Result<WriteOutcome> {
        refuse_view_write(table)?;
        let unchanged = |bytes: &[u8]| decode_row(bytes).is_ok_and(|row| row == *old);
        let guarded = self
            .txn
            .delete_unchanged(table.id, &key_of(id)?, &unchanged)
            .map_err(mvcc_error)?;
        outcome(id, guarded)
    }

    fn lock(&mut self, table: &Table, id: &RowId, mode: RowLock) -> Result<WriteOutcome> {
        let mode = match mode {
            RowLock::Update => RowLockMode::Update,
            RowLock::Share => RowLockMode::Share,
        };
        match self
            .txn
            .lock_row(table.id, &key_of(id)?, mode)
            .map_err(mvcc_error)?
        {
            None => Ok(WriteOutcome::Gone),
            Some(_) => Ok(WriteOutcome::Done),
        }
    }

    fn sequence(&mut self, call: &SeqCall, args: &[Value]) -> Result<Value> {
        (self.sequences)(call, args)
    }

    fn check_cancel(&mut self) -> Result<()> {
        self.interrupt.check_interrupted().map_err(mvcc_error)
    }
}

/// The executor's view of a guarded write: a version changed by a transaction that committed
/// meanwhile comes back for the executor to re-check its WHERE clause against, then write.
/// (REPEATABLE READ gets 40001 from the MVCC layer instead.)
fn outcome(id: &RowId, guarded: Guarded) -> Result<WriteOutcome> {
    Ok(match guarded {
        Guarded::Written(_) => WriteOutcome::Done,
        Guarded::Missing => WriteOutcome::Gone,
        Guarded::Changed(bytes) => WriteOutcome::Changed(id.clone(), decode_row(&bytes)?),
    })
}
