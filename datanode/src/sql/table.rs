//! Table rows in the MVCC layer: the executor's [`Storage`] for one transaction.
//!
//! A row is stored whole (every column, postcard-encoded) under its primary key; a table
//! without one keys rows by a hidden row id, `gxid << 32 | n`, unique without coordination
//! because GXIDs are. SQL values become key values with an order-preserving mapping (dates
//! and timestamps as integers).

use super::catalog::storage_error;
use super::system;
use crate::storage::keycode::Value as KeyValue;
use crate::storage::locks::{RowLockMode, WaitOptions};
use crate::storage::mvcc::{MvccError, Transaction};
use rxc_common::sql::catalog::Table;
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::exec::{Row, RowId, Storage, WriteOutcome};
use rxc_common::sql::plan::RowLock;
use rxc_common::sql::Value;

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
        Value::Numeric(_) => {
            return Err(SqlError::unsupported(
                "numeric values cannot be stored in a key yet",
            ))
        }
    })
}

use chrono::Datelike as _;

fn encode_row(row: &Row) -> Result<Vec<u8>> {
    postcard::to_allocvec(row).map_err(storage_error)
}

fn decode_row(bytes: &[u8]) -> Result<Row> {
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

/// The executor's storage over one MVCC transaction.
pub struct TxnStorage<'a> {
    pub txn: &'a mut Transaction,
    /// Hidden row ids handed out by this transaction so far.
    pub row_ids: &'a mut u32,
    /// Sequence values (the session fetches ranges from the GTM).
    pub nextval: &'a dyn Fn(&str) -> Result<i64>,
    /// The statement's cancel flag and deadline, checked as it runs.
    pub interrupt: WaitOptions,
}

impl TxnStorage<'_> {
    /// Before changing a row read as `old`: locks it (waiting for a concurrent writer, as
    /// PostgreSQL does) and reports `Changed` with the newest version if a transaction that
    /// committed meanwhile changed it, so the executor re-checks its WHERE clause first.
    /// (REPEATABLE READ gets 40001 from the MVCC layer instead.)
    fn claim(&mut self, table: &Table, id: &RowId, old: &Row) -> Result<WriteOutcome> {
        let newest = self
            .txn
            .lock_row(table.id, &key_of(id)?, RowLockMode::Update)
            .map_err(mvcc_error)?;
        match newest {
            None => Ok(WriteOutcome::Gone),
            Some(bytes) => {
                let newest = decode_row(&bytes)?;
                if newest == *old {
                    Ok(WriteOutcome::Done)
                } else {
                    Ok(WriteOutcome::Changed(id.clone(), newest))
                }
            }
        }
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
            let rows = system::rows(&**self.txn.engine(), table.id)?;
            return Ok((0..).map(|i| vec![Value::Int8(i)]).zip(rows).collect());
        }
        let rows = self.txn.scan(table.id).map_err(mvcc_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for (pk, bytes) in rows {
            let row = decode_row(&bytes)?;
            let id = if table.has_row_id() {
                match pk.first() {
                    Some(KeyValue::Int(i)) => vec![Value::Int8(*i)],
                    _ => return Err(storage_error("bad hidden row id")),
                }
            } else {
                row_id(table, &row, None)
            };
            out.push((id, row));
        }
        Ok(out)
    }

    fn lookup(&mut self, table: &Table, key: &[Value]) -> Result<Option<(RowId, Row)>> {
        let id: RowId = key.to_vec();
        self.read(table, &key_of(&id)?, &id)
    }

    fn insert(&mut self, table: &Table, row: &Row) -> Result<()> {
        refuse_view_write(table)?;
        let id = if table.has_row_id() {
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
            row_id(
                table,
                row,
                Some(((gxid.0 << 32) | *self.row_ids as u64) as i64),
            )
        } else {
            row_id(table, row, None)
        };
        match self.txn.insert(table.id, &key_of(&id)?, encode_row(row)?) {
            Ok(()) => Ok(()),
            Err(MvccError::UniqueViolation { .. }) => {
                let name = table.primary_key_name.clone().unwrap_or_default();
                let cols: Vec<&str> = table
                    .primary_key
                    .iter()
                    .map(|&i| table.columns[i].name.as_str())
                    .collect();
                let vals: Vec<String> = id
                    .iter()
                    .map(|v| v.to_text().unwrap_or_else(|| "null".into()))
                    .collect();
                Err(SqlError::new(
                    sqlstate::UNIQUE_VIOLATION,
                    format!("duplicate key value violates unique constraint \"{name}\""),
                )
                .with_detail(format!(
                    "Key ({})=({}) already exists.",
                    cols.join(", "),
                    vals.join(", ")
                )))
            }
            Err(e) => Err(mvcc_error(e)),
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
        match self.claim(table, id, old)? {
            WriteOutcome::Done => {}
            other => return Ok(other),
        }
        let found = self
            .txn
            .update(table.id, &key_of(id)?, encode_row(new)?)
            .map_err(mvcc_error)?;
        Ok(if found.is_some() {
            WriteOutcome::Done
        } else {
            WriteOutcome::Gone
        })
    }

    fn delete(&mut self, table: &Table, id: &RowId, old: &Row) -> Result<WriteOutcome> {
        refuse_view_write(table)?;
        match self.claim(table, id, old)? {
            WriteOutcome::Done => {}
            other => return Ok(other),
        }
        let found = self
            .txn
            .delete(table.id, &key_of(id)?)
            .map_err(mvcc_error)?;
        Ok(if found.is_some() {
            WriteOutcome::Done
        } else {
            WriteOutcome::Gone
        })
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

    fn nextval(&mut self, sequence: &str) -> Result<i64> {
        (self.nextval)(sequence)
    }

    fn check_cancel(&mut self) -> Result<()> {
        self.interrupt.check_interrupted().map_err(mvcc_error)
    }
}
