//! The in-memory engine: one `BTreeMap` per column family behind a `RwLock`, for tests and for
//! checking the RocksDB engine against (the golden scripts run on both).
//!
//! It counts LSNs the way RocksDB counts sequence numbers (one per operation), and keeps the
//! last `log_retention` batches as its "WAL" for [`Engine::updates_since`]. Scans copy the
//! matching entries under the read lock, which gives them the same consistent view a RocksDB
//! iterator has. Nothing is durable; `sync` is ignored and checkpoints are unsupported.

use super::{
    check_updates_since, Cf, Engine, KeyRange, Lsn, Result, ScanIter, StorageError, UpdatesIter,
    WriteBatch, WriteOp,
};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How many batches the memory engine keeps for `updates_since` by default.
pub const DEFAULT_LOG_RETENTION: usize = 10_000;

/// An in-memory [`Engine`].
#[derive(Debug)]
pub struct MemoryEngine {
    inner: RwLock<Inner>,
    log_retention: usize,
}

#[derive(Debug, Default)]
struct Inner {
    cfs: [BTreeMap<Vec<u8>, Vec<u8>>; 4],
    latest_lsn: Lsn,
    /// The retained batches with their LSNs, oldest first.
    log: VecDeque<(Lsn, WriteBatch)>,
}

impl Default for MemoryEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryEngine {
    /// An empty engine retaining [`DEFAULT_LOG_RETENTION`] batches.
    pub fn new() -> Self {
        Self::with_log_retention(DEFAULT_LOG_RETENTION)
    }

    /// An empty engine retaining the last `batches` batches for `updates_since`.
    pub fn with_log_retention(batches: usize) -> Self {
        MemoryEngine {
            inner: RwLock::new(Inner::default()),
            log_retention: batches,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn collect(&self, cf: Cf, range: &KeyRange) -> Vec<(Vec<u8>, Vec<u8>)> {
        let (lower, upper) = range.to_half_open();
        if let (Some(l), Some(u)) = (&lower, &upper) {
            if l >= u {
                return Vec::new();
            }
        }
        let bounds = (
            lower.map_or(Bound::Unbounded, Bound::Included),
            upper.map_or(Bound::Unbounded, Bound::Excluded),
        );
        self.read().cfs[cf.index()]
            .range::<Vec<u8>, _>(bounds)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl Engine for MemoryEngine {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.read().cfs[cf.index()].get(key).cloned())
    }

    fn scan(&self, cf: Cf, range: KeyRange) -> ScanIter<'_> {
        Box::new(self.collect(cf, &range).into_iter().map(Ok))
    }

    fn scan_rev(&self, cf: Cf, range: KeyRange) -> ScanIter<'_> {
        Box::new(self.collect(cf, &range).into_iter().rev().map(Ok))
    }

    fn write(&self, batch: WriteBatch) -> Result<Lsn> {
        let mut inner = self.write_lock();
        if batch.is_empty() {
            return Ok(inner.latest_lsn);
        }
        for op in &batch.ops {
            match op {
                WriteOp::Put { cf, key, value } => {
                    inner.cfs[cf.index()].insert(key.clone(), value.clone());
                }
                WriteOp::Delete { cf, key } => {
                    inner.cfs[cf.index()].remove(key);
                }
            }
        }
        inner.latest_lsn += batch.len() as Lsn;
        let lsn = inner.latest_lsn;
        if self.log_retention > 0 {
            if inner.log.len() == self.log_retention {
                inner.log.pop_front();
            }
            inner.log.push_back((
                lsn,
                WriteBatch {
                    ops: batch.ops,
                    sync: false,
                },
            ));
        }
        Ok(lsn)
    }

    fn latest_lsn(&self) -> Lsn {
        self.read().latest_lsn
    }

    fn updates_since(&self, lsn: Lsn) -> Result<UpdatesIter<'_>> {
        let inner = self.read();
        check_updates_since(lsn, inner.latest_lsn)?;
        // The first batch after `lsn` must begin right after it: otherwise its predecessors
        // were dropped from the log, or `lsn` is inside a batch.
        let first = inner.log.partition_point(|(end, _)| *end <= lsn);
        let batches: Vec<_> = inner.log.range(first..).cloned().collect();
        match batches.first() {
            Some((end, batch)) if end - batch.len() as Lsn != lsn => {
                Err(StorageError::WalUnavailable(lsn))
            }
            None if lsn != inner.latest_lsn => Err(StorageError::WalUnavailable(lsn)),
            _ => Ok(Box::new(batches.into_iter().map(Ok))),
        }
    }

    fn checkpoint(&self, _dir: &Path) -> Result<()> {
        Err(StorageError::Unsupported {
            engine: "memory",
            operation: "checkpoint",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(engine: &MemoryEngine, key: &str) -> Lsn {
        let mut batch = WriteBatch::new();
        batch.put(Cf::Rows, key.as_bytes().to_vec(), b"v".to_vec());
        engine.write(batch).unwrap()
    }

    #[test]
    fn bounded_log_reports_unavailable_wal() {
        let engine = MemoryEngine::with_log_retention(2);
        for key in ["a", "b", "c", "d"] {
            put(&engine, key);
        }
        assert_eq!(engine.latest_lsn(), 4);
        assert_eq!(
            engine.updates_since(1).err(),
            Some(StorageError::WalUnavailable(1))
        );
        let lsns: Vec<Lsn> = engine
            .updates_since(2)
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(lsns, vec![3, 4]);
        assert_eq!(engine.updates_since(4).unwrap().count(), 0);
        assert!(matches!(
            engine.updates_since(5),
            Err(StorageError::InvalidInput(_))
        ));
    }

    #[test]
    fn inverted_range_is_empty() {
        let engine = MemoryEngine::new();
        put(&engine, "a");
        assert_eq!(engine.scan(Cf::Rows, KeyRange::from("b".."a")).count(), 0);
        assert_eq!(engine.scan(Cf::Rows, KeyRange::from("a".."a")).count(), 0);
    }
}
