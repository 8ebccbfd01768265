//! The datanode's storage layer: an ordered key/value [`Engine`] with four column families, and
//! the key encoding that lays SQL data out in it.
//!
//! ```text
//!   mvcc::Mvcc / Transaction   row versions + txn status, visibility, write conflicts, 2PC, GC
//!        │ index                secondary index entries: scans, unique checks, builds
//!        │ gc                   dead versions and the index entries only they carried
//!        │ row_cache            rows' versions read or written lately, valid per write count
//!        │ keys::Key / KeyPrefix  (keycode: order-preserving bytes)
//!        ▼
//!   Engine trait ── get / scan / scan_rev / write(WriteBatch) -> Lsn / updates_since / checkpoint
//!        ├── MemoryEngine   BTreeMap per column family; a bounded in-memory log of batches
//!        └── RocksEngine    one RocksDB, one column family per role; group commit; WAL = stream
//! ```
//!
//! # Column families
//!
//! Data is split by role ([`Cf`]), as TiKV does: `meta` (catalog and node settings), `rows` (row
//! versions), `index` (index entries), `txn_status` (the local commit status of each GXID). Each
//! role gets its own RocksDB column family, so each can be tuned and compacted on its own.
//!
//! # Write path and LSNs
//!
//! Every change goes through [`Engine::write`] as one [`WriteBatch`]: a list of puts and deletes
//! over any column families, applied atomically. A commit is one batch with `sync = true`.
//! Every operation of a batch consumes one log sequence number ([`Lsn`]), exactly as RocksDB
//! assigns sequence numbers; the LSN of a batch is the LSN of its last operation, and
//! [`Engine::latest_lsn`] is the LSN of the last batch written. In the RocksDB engine LSNs *are*
//! RocksDB sequence numbers; the memory engine counts the same way, so both engines hand out
//! the same LSNs for the same writes (the shared golden scripts check this).
//!
//! # The WAL stream
//!
//! The committed batches, in order, are the replication stream a standby will apply:
//! [`Engine::updates_since`]`(lsn)` yields every batch after `lsn` with its LSN (RocksDB: from
//! its retained WAL via `get_updates_since`; memory: from a bounded log). A standby starts from a
//! base backup ([`Engine::checkpoint`], a RocksDB checkpoint) and asks for the batches after the
//! checkpoint's `latest_lsn`. When the WAL it needs is gone the answer is
//! [`StorageError::WalUnavailable`]: take a new base backup. Applying the stream on a standby
//! (`apply_replicated`, which must keep the primary's LSNs) comes with the replication increment.
//!
//! Under group commit, batches written together are one RocksDB batch, so the stream may carry
//! several commits as one batch; each commit is still atomic and in order within it.

pub mod gc;
pub mod group_commit;
pub mod index;
pub mod keycode;
pub mod keys;
pub mod locks;
pub mod memory;
pub mod mvcc;
pub mod rocksdb;
mod row_cache;

pub use self::group_commit::GroupCommitStats;
pub use self::memory::MemoryEngine;
pub use self::rocksdb::{RocksEngine, RocksOptions};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::path::Path;

/// A log sequence number: the position of a write in the engine's log. In the RocksDB engine it
/// is the RocksDB sequence number. `0` is "nothing written yet".
pub type Lsn = u64;

/// The result of a storage operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A storage failure, grouped by what the caller has to do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// Stored or received bytes cannot be decoded (corruption, or another format version).
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// The caller asked for something impossible (an LSN in the future, an existing
    /// checkpoint directory, a bad key range): a bug or bad input, not a storage failure.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The batches after this LSN are no longer retained (or the LSN is not the end of a
    /// batch); a standby must take a new base backup.
    #[error("WAL after LSN {0} is not available; take a new base backup")]
    WalUnavailable(Lsn),
    /// The engine does not implement the operation (e.g. checkpoints of the memory engine).
    #[error("{operation} is not supported by the {engine} engine")]
    Unsupported {
        /// The engine's name.
        engine: &'static str,
        /// What was asked.
        operation: &'static str,
    },
    /// The disk or the storage engine failed; the operation may or may not have taken effect.
    #[error("storage I/O error: {0}")]
    Io(String),
}

/// `StorageError::InvalidData` from a format string.
#[macro_export]
macro_rules! errdata {
    ($($args:tt)*) => { $crate::storage::StorageError::InvalidData(format!($($args)*)) };
}

/// `StorageError::InvalidInput` from a format string.
#[macro_export]
macro_rules! errinput {
    ($($args:tt)*) => { $crate::storage::StorageError::InvalidInput(format!($($args)*)) };
}

/// A column family: the key space of one role. Names are stable (they name RocksDB column
/// families on disk).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Cf {
    /// Catalog entries and node settings.
    Meta,
    /// Row versions, by table, primary key and version (newest first).
    Rows,
    /// Index entries.
    Index,
    /// The local commit status of each GXID.
    TxnStatus,
}

impl Cf {
    /// Every column family, in a fixed order.
    pub const ALL: [Cf; 4] = [Cf::Meta, Cf::Rows, Cf::Index, Cf::TxnStatus];

    /// The stable name: `meta`, `rows`, `index`, `txn_status`.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Meta => "meta",
            Cf::Rows => "rows",
            Cf::Index => "index",
            Cf::TxnStatus => "txn_status",
        }
    }

    /// The column family with this name.
    pub fn from_name(name: &str) -> Option<Cf> {
        Cf::ALL.into_iter().find(|cf| cf.name() == name)
    }

    /// Position in [`Cf::ALL`], for per-family arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Cf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One change in a [`WriteBatch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOp {
    /// Set `key` to `value` in `cf`.
    Put {
        /// Column family.
        cf: Cf,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Remove `key` from `cf` (nothing happens if it is absent).
    Delete {
        /// Column family.
        cf: Cf,
        /// Key.
        key: Vec<u8>,
    },
}

/// Changes applied atomically, in order, by [`Engine::write`]. Engine-neutral: the same type is
/// what [`Engine::updates_since`] yields, and what a standby will apply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteBatch {
    /// The changes, applied in this order.
    pub ops: Vec<WriteOp>,
    /// Whether `write` returns only once the batch is durable (WAL fsynced). The WAL stream does
    /// not carry it: batches from [`Engine::updates_since`] have `sync = false`.
    pub sync: bool,
}

impl WriteBatch {
    /// An empty, unsynced batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch that is synced when written (a commit).
    pub fn synced() -> Self {
        WriteBatch {
            ops: Vec::new(),
            sync: true,
        }
    }

    /// Adds a put.
    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(WriteOp::Put {
            cf,
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(WriteOp::Delete {
            cf,
            key: key.into(),
        });
        self
    }

    /// Number of operations (= the LSNs the batch consumes).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A range of keys for [`Engine::scan`]: any `RangeBounds` over byte strings converts into one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound.
    pub start: Bound<Vec<u8>>,
    /// Upper bound.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        KeyRange {
            start: Bound::Included(prefix.to_vec()),
            end: match prefix_successor(prefix) {
                Some(end) => Bound::Excluded(end),
                None => Bound::Unbounded,
            },
        }
    }

    /// From any range of byte strings (`a..b`, `a..=b`, `..`, `(Bound, Bound)`).
    pub fn from_bounds<K: AsRef<[u8]>>(range: impl RangeBounds<K>) -> Self {
        let own = |b: Bound<&K>| match b {
            Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
            Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        KeyRange {
            start: own(range.start_bound()),
            end: own(range.end_bound()),
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let (lower, upper) = self.to_half_open();
        lower.is_none_or(|l| l.as_slice() <= key) && upper.is_none_or(|u| key < u.as_slice())
    }

    /// The range as half-open `[lower, upper)` byte bounds (`None` = unbounded), the form
    /// RocksDB's iterate bounds take. The successor of `k` in byte order is `k ++ [0]`.
    pub fn to_half_open(&self) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let lower = match &self.start {
            Bound::Included(k) => Some(k.clone()),
            Bound::Excluded(k) => Some([k.as_slice(), &[0]].concat()),
            Bound::Unbounded => None,
        };
        let upper = match &self.end {
            Bound::Included(k) => Some([k.as_slice(), &[0]].concat()),
            Bound::Excluded(k) => Some(k.clone()),
            Bound::Unbounded => None,
        };
        (lower, upper)
    }
}

impl<K: AsRef<[u8]>> From<std::ops::Range<K>> for KeyRange {
    fn from(range: std::ops::Range<K>) -> Self {
        KeyRange::from_bounds(range)
    }
}

impl<K: AsRef<[u8]>> From<std::ops::RangeInclusive<K>> for KeyRange {
    fn from(range: std::ops::RangeInclusive<K>) -> Self {
        KeyRange::from_bounds(range)
    }
}

impl From<std::ops::RangeFull> for KeyRange {
    fn from(_: std::ops::RangeFull) -> Self {
        KeyRange::all()
    }
}

/// The smallest byte string greater than every string starting with `prefix`, or `None` when
/// there is none (the prefix is empty or all `0xff`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A key and its value, owned.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// An iterator over a scan's results, in key order (or reverse order for `scan_rev`).
pub type ScanIter<'a> = Box<dyn Iterator<Item = Result<KeyValue>> + 'a>;

/// An iterator over committed batches with their LSNs, oldest first.
pub type UpdatesIter<'a> = Box<dyn Iterator<Item = Result<(Lsn, WriteBatch)>> + 'a>;

/// An ordered key/value store with column families, atomic batches and a replayable log.
///
/// Implementations are safe to share between threads: reads run concurrently with writes, and
/// concurrent `write` calls are ordered by the LSNs they return.
pub trait Engine: Send + Sync {
    /// A short name for messages (`memory`, `rocksdb`).
    fn name(&self) -> &'static str;

    /// The value of `key` in `cf`, if any.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The keys and values of `cf` within `range`, in ascending key order. The iterator sees a
    /// consistent view as of the call (RocksDB: an implicit snapshot; memory: a copy).
    fn scan(&self, cf: Cf, range: KeyRange) -> ScanIter<'_>;

    /// As [`Engine::scan`], in descending key order.
    fn scan_rev(&self, cf: Cf, range: KeyRange) -> ScanIter<'_>;

    /// The keys and values of `cf` that start with `prefix`, in ascending order.
    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> ScanIter<'_> {
        self.scan(cf, KeyRange::prefix(prefix))
    }

    /// The versions of one row in `rows` within `range`, which lies inside the row's
    /// [`keys::row_versions_prefix`] and starts at it (or later), in ascending order: as
    /// [`Engine::scan`], but an engine may skip what cannot hold the row (RocksDB: prefix bloom
    /// filters of the memtable and the SST files).
    fn scan_row_versions(&self, range: KeyRange) -> ScanIter<'_> {
        self.scan(Cf::Rows, range)
    }

    /// Applies `batch` atomically and returns its LSN (the LSN of its last operation). With
    /// `batch.sync` the batch is durable when this returns. An empty batch writes nothing and
    /// returns [`Engine::latest_lsn`].
    fn write(&self, batch: WriteBatch) -> Result<Lsn>;

    /// The LSN of the last batch written (0 if none).
    fn latest_lsn(&self) -> Lsn;

    /// Every batch written after `lsn`, in order, each with its LSN: the WAL stream. `lsn` must
    /// be the LSN of a batch (or 0, or `latest_lsn`); the result is
    /// [`StorageError::WalUnavailable`] if the batches after it are no longer retained, and
    /// [`StorageError::InvalidInput`] if `lsn` is beyond `latest_lsn`.
    fn updates_since(&self, lsn: Lsn) -> Result<UpdatesIter<'_>>;

    /// Writes a consistent copy of the whole store to `dir` (which must not exist) as a base
    /// backup; opened as an engine, its `latest_lsn` is where its WAL stream continues.
    fn checkpoint(&self, dir: &Path) -> Result<()>;
}

/// Checks the arguments of `updates_since` shared by every engine.
fn check_updates_since(lsn: Lsn, latest: Lsn) -> Result<()> {
    if lsn > latest {
        return Err(errinput!("LSN {lsn} is beyond the latest LSN {latest}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_skips_ff() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn key_range_half_open() {
        let r = KeyRange::from(b"a".to_vec()..=b"c".to_vec());
        assert_eq!(
            r.to_half_open(),
            (Some(b"a".to_vec()), Some(b"c\0".to_vec()))
        );
        assert!(r.contains(b"c"));
        assert!(!r.contains(b"c\0"));
        let r = KeyRange {
            start: Bound::Excluded(b"a".to_vec()),
            end: Bound::Unbounded,
        };
        assert_eq!(r.to_half_open(), (Some(b"a\0".to_vec()), None));
        assert!(!r.contains(b"a"));
        assert!(r.contains(b"a\0"));
        let r = KeyRange::prefix(b"ab");
        assert!(r.contains(b"ab") && r.contains(b"ab\xff\xff") && !r.contains(b"ac"));
    }
}
