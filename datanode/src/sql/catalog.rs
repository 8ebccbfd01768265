//! The datanode's catalog: table descriptors stored as rows of a system table in the MVCC
//! layer itself, so DDL is transactional and visible by snapshot like any other write
//! (`CREATE TABLE` in an open transaction is invisible to others until it commits).
//!
//! ```text
//!   table 1 (rxc_tables)   pk: [name]  →  postcard(Table)
//!   meta "next_object_id"               →  next table/index id (u64 BE), advanced in blocks
//! ```
//!
//! Object ids come from a counter in `meta`, reserved in blocks of [`ID_BLOCK`] with a
//! synced write, so a crash never hands out an id twice.

use crate::storage::keycode::Value as KeyValue;
use crate::storage::keys::Key;
use crate::storage::mvcc::{Mvcc, Transaction};
use crate::storage::{Cf, WriteBatch};
use rxc_common::sql::catalog::{Catalog, Table};
use rxc_common::sql::error::{Result, SqlError};
use std::sync::{Arc, Mutex};

/// The table id of the catalog's own table.
pub const CATALOG_TABLE_ID: u64 = 1;
/// The first id handed to user objects.
const FIRST_OBJECT_ID: u64 = 16384;
/// How many ids one durable write reserves.
const ID_BLOCK: u64 = 1000;
const NEXT_ID_KEY: &str = "next_object_id";

/// Hands out table and index ids.
pub struct IdAllocator {
    mvcc: Arc<Mvcc>,
    /// (next id, end of the reserved block)
    state: Mutex<(u64, u64)>,
}

impl IdAllocator {
    /// Reads the counter; the first id handed out is past everything reserved before.
    pub fn open(mvcc: Arc<Mvcc>) -> Result<IdAllocator> {
        let key = Key::Meta {
            name: NEXT_ID_KEY.into(),
        }
        .encode();
        let next = match mvcc.engine().get(Cf::Meta, &key).map_err(storage_error)? {
            Some(bytes) if bytes.len() == 8 => {
                u64::from_be_bytes(bytes.try_into().unwrap_or([0; 8]))
            }
            _ => FIRST_OBJECT_ID,
        };
        Ok(IdAllocator {
            mvcc,
            state: Mutex::new((next, next)),
        })
    }

    /// A new id.
    pub fn next(&self) -> Result<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 == state.1 {
            let end = state.1 + ID_BLOCK;
            let mut batch = WriteBatch::synced();
            let key = Key::Meta {
                name: NEXT_ID_KEY.into(),
            };
            batch.put(Cf::Meta, key.encode(), end.to_be_bytes().to_vec());
            self.mvcc.engine().write(batch).map_err(storage_error)?;
            state.1 = end;
        }
        let id = state.0;
        state.0 += 1;
        Ok(id)
    }
}

pub(crate) fn storage_error(e: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        rxc_common::sql::sqlstate::IO_ERROR,
        format!("storage error: {e}"),
    )
}

fn key(name: &str) -> Vec<KeyValue> {
    vec![KeyValue::Text(name.to_string())]
}

/// The catalog as one transaction sees it.
pub struct CatalogView<'a> {
    pub txn: &'a Transaction,
}

impl Catalog for CatalogView<'_> {
    fn table(&self, name: &str) -> Result<Option<Arc<Table>>> {
        if let Some(view) = super::system::view(name) {
            return Ok(Some(Arc::new(view)));
        }
        get_table(self.txn, name).map(|t| t.map(Arc::new))
    }
}

/// The table called `name`, as `txn` sees the catalog.
pub fn get_table(txn: &Transaction, name: &str) -> Result<Option<Table>> {
    match txn
        .get(CATALOG_TABLE_ID, &key(name))
        .map_err(super::table::mvcc_error)?
    {
        None => Ok(None),
        Some(bytes) => postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| storage_error(format!("bad catalog entry for {name}: {e}"))),
    }
}

/// Every table `txn` sees.
pub fn list_tables(txn: &Transaction) -> Result<Vec<Table>> {
    let rows = txn
        .scan(CATALOG_TABLE_ID)
        .map_err(super::table::mvcc_error)?;
    rows.into_iter()
        .map(|(_, bytes)| {
            postcard::from_bytes(&bytes)
                .map_err(|e| storage_error(format!("bad catalog entry: {e}")))
        })
        .collect()
}

/// Adds a table (42P07 if the name is taken).
pub fn insert_table(txn: &mut Transaction, table: &Table) -> Result<()> {
    let bytes = postcard::to_allocvec(table).map_err(storage_error)?;
    match txn.insert(CATALOG_TABLE_ID, &key(&table.name), bytes) {
        Ok(()) => Ok(()),
        Err(crate::storage::mvcc::MvccError::UniqueViolation { .. }) => Err(SqlError::new(
            rxc_common::sql::sqlstate::DUPLICATE_TABLE,
            format!("relation \"{}\" already exists", table.name),
        )),
        Err(e) => Err(super::table::mvcc_error(e)),
    }
}

/// Replaces a table's descriptor.
pub fn update_table(txn: &mut Transaction, table: &Table) -> Result<()> {
    let bytes = postcard::to_allocvec(table).map_err(storage_error)?;
    txn.update(CATALOG_TABLE_ID, &key(&table.name), bytes)
        .map_err(super::table::mvcc_error)?;
    Ok(())
}

/// Removes a table's descriptor; false if it did not exist.
pub fn delete_table(txn: &mut Transaction, name: &str) -> Result<bool> {
    txn.delete(CATALOG_TABLE_ID, &key(name))
        .map(|old| old.is_some())
        .map_err(super::table::mvcc_error)
}
