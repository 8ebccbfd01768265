//! A per-statement cache of table scans in front of a [`Storage`].
//!
//! A correlated subquery runs its plan once per outer row, and each run scans its tables
//! again; through MVCC and RocksDB that is most of a statement's time (select1's subqueries
//! read a 30-row table 900 times per query). Within one statement every scan of a table returns
//! the same rows — the statement reads one snapshot — so the first scan's rows serve the rest.
//!
//! Primary-key lookups and index scans go to the storage directly: they read few rows.
//!
//! Any write through the cache (insert, update, delete, row lock) empties it: a statement
//! that writes sees what the storage says after its writes, exactly as without the cache.

use super::catalog::{Index, Table};
use super::error::Result;
use super::exec::{InsertOutcome, Row, RowId, Storage, WriteOutcome};
use super::expr::SeqCall;
use super::index_scan::IndexRange;
use super::plan::{Arbiter, RowLock};
use super::value::Value;
use std::collections::HashMap;

/// [`Storage`] with scans cached by table id until the next write.
pub struct ScanCache<'s> {
    inner: &'s mut dyn Storage,
    scans: HashMap<u64, Vec<(RowId, Row)>>,
}

impl<'s> ScanCache<'s> {
    /// A cache in front of `inner`, empty.
    pub fn new(inner: &'s mut dyn Storage) -> Self {
        ScanCache {
            inner,
            scans: HashMap::new(),
        }
    }
}

impl Storage for ScanCache<'_> {
    fn scan(&mut self, table: &Table) -> Result<Vec<(RowId, Row)>> {
        if let Some(rows) = self.scans.get(&table.id) {
            return Ok(rows.clone());
        }
        let rows = self.inner.scan(table)?;
        self.scans.insert(table.id, rows.clone());
        Ok(rows)
    }

    fn lookup(&mut self, table: &Table, key: &[Value]) -> Result<Option<(RowId, Row)>> {
        self.inner.lookup(table, key)
    }

    fn index_scan(
        &mut self,
        table: &Table,
        index: &Index,
        range: &IndexRange,
    ) -> Result<Vec<(RowId, Row)>> {
        self.inner.index_scan(table, index, range)
    }

    fn insert(&mut self, table: &Table, row: &Row) -> Result<()> {
        self.scans.clear();
        self.inner.insert(table, row)
    }

    fn insert_or_conflict(
        &mut self,
        table: &Table,
        row: &Row,
        arbiters: &[Arbiter],
        lock: bool,
    ) -> Result<InsertOutcome> {
        self.scans.clear();
        self.inner.insert_or_conflict(table, row, arbiters, lock)
    }

    fn update(&mut self, table: &Table, id: &RowId, old: &Row, new: &Row) -> Result<WriteOutcome> {
        self.scans.clear();
        self.inner.update(table, id, old, new)
    }

    fn delete(&mut self, table: &Table, id: &RowId, old: &Row) -> Result<WriteOutcome> {
        self.scans.clear();
        self.inner.delete(table, id, old)
    }

    fn lock(&mut self, table: &Table, id: &RowId, mode: RowLock) -> Result<WriteOutcome> {
        self.scans.clear();
        self.inner.lock(table, id, mode)
    }

    fn sequence(&mut self, call: &SeqCall, args: &[Value]) -> Result<Value> {
        self.inner.sequence(call, args)
    }

    fn check_cancel(&mut self) -> Result<()> {
        self.inner.check_cancel()
    }
}
