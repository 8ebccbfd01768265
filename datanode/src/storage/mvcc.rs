//! Multi-version concurrency control over an [`Engine`]: row versions stamped with the GXID that
//! wrote them, the local commit status of each GXID, the visibility rule of the design brief
//! (§3), and PostgreSQL's write conflicts and row locks. GXIDs and snapshots come from outside
//! (the GTM, through the coordinator): this layer never assigns them.
//!
//! ```text
//!   coordinator / GTM ── gxid, snapshot, isolation ──▶ Mvcc::begin ─▶ Transaction
//!                                                        │ insert/update/delete/lock_row
//!                                                        │   (may wait: locks::LockManager)
//!                                                        │ get/scan (Snapshot::sees)
//!                                                        │ commit/abort/prepare
//!                                                        ▼
//!   cf rows        Row { table_id, pk, version: creator }  →  Version { row, deleter, lockers }
//!                  (a row's versions newest creator first)
//!   cf index       Index { index_id, values, pk }  →  (empty)   (see the index module)
//!   cf txn_status  TxnStatus { gxid }  →  Running | Prepared | Committed | Aborted
//! ```
//!
//! # Writes, commit and abort
//!
//! As in PostgreSQL's heap, a transaction's writes go to the engine at once (unsynced): an
//! insert writes a version under its own GXID; a delete sets `deleter` on the version it
//! deletes; an update does both; a row lock adds a [`RowLocker`] to the version's `lockers`.
//! Those versions are invisible to everyone else until the transaction's status says
//! `Committed` (a lock never changes visibility). Commit is one synced batch writing that status
//! (group commit shares the fsync); abort writes `Aborted` and leaves the dead versions to
//! [`Mvcc::gc`].
//!
//! The first write (or lock) of a transaction also writes status `Running` in the same batch.
//! A missing status and `Running` both mean "in progress"; `Running` lets [`Mvcc::recover`]
//! find, after a restart, every writer that neither committed, aborted nor prepared, and mark it
//! `Aborted` (it crashed). Because the marker travels in the same batch as the first version,
//! no version can reach disk without it.
//!
//! # Visibility
//!
//! A version is visible to a reader iff [`Snapshot::sees`] its creator (the reader's own write,
//! or finished in the snapshot and locally committed) and does not see its deleter. A reader
//! looks at all of a row's versions and takes the one that passes: versions are ordered by
//! creator GXID, which is not always commit order (a READ COMMITTED writer with a smaller GXID
//! may update a row after a larger one committed), so "the first version whose creator is
//! visible" would not do. The chain of updates is serialised by the conflict rules below, so at
//! most one version passes for any snapshot.
//!
//! # Statements without a snapshot of their own
//!
//! A READ COMMITTED statement needs a snapshot taken after it began, but many decide nothing a
//! snapshot could change. [`Transaction::defer_snapshot`] begins one with an older snapshot
//! (any the GTM gave before the statement began) and a way to fetch a fresh one. Until it has
//! fetched, [`Transaction::sees`](Transaction) answers only what every snapshot taken from now
//! on answers alike: its own writes (seen), a locally aborted transaction (never seen), a local
//! commit the older snapshot counts finished (finished in every later one, so seen). Anything
//! else — a commit the older snapshot counts as running, a transaction in progress or prepared —
//! is [`MvccError::NeedSnapshot`]: the operation fetches the snapshot and decides the row again,
//! reading it again (the versions it read before may predate the snapshot); a write releases
//! its latches first. Scans fetch before they read.
//!
//! A row read without a fetch holds no version of a transaction the older snapshot counts as
//! running, so it is the row as a snapshot taken at that moment sees it. That makes one row
//! right, not two: a transfer committing between the reads of its two accounts leaves each read
//! right at its moment and the pair right for no snapshot. So the caller promises that the
//! statement reads one row at most ([`Transaction::one_row_statement`], checked: a second row
//! is an error) or takes the snapshot before it reads ([`Transaction::take_snapshot`]).
//! Commit dependencies ([`Transaction::commit_after`]) are judged with the older snapshot until
//! a fetch: it counts no more transactions finished, so it records no fewer.
//!
//! # Write conflicts and waiting
//!
//! Before a write to a row, its versions are checked under the row's latch, as PostgreSQL's
//! `heap_update` does:
//!
//! - update, delete and [`Transaction::lock_row`] find the row through the statement's snapshot
//!   (else there is nothing to do), then follow the chain of updates from that version: a
//!   version's deleter created the next one (`deleter == creator`), or deleted the row.
//!   - a deleter on the chain, or a locker of its last version whose mode conflicts with the
//!     access (FOR SHARE blocks writes and FOR UPDATE; FOR UPDATE blocks everything), that is
//!     another transaction still in progress or prepared holds the row: the latch is released
//!     and the writer waits for it to finish ([`LockManager`]), then starts over;
//!   - a deleter that aborted does not count;
//!   - a deleter that committed changed the row after the snapshot: REPEATABLE READ fails with
//!     [`MvccError::Serialization`] (40001); READ COMMITTED moves on to the next version
//!     (PostgreSQL's EvalPlanQual), or finds the row deleted.
//!
//!   The version at the end of the chain is the one acted on, and is returned: under READ
//!   COMMITTED it may be newer than the version the statement saw, and the caller re-evaluates
//!   its WHERE clause on it. A statement whose new row depends on the old one (`SET x = x + 1`)
//!   first locks the row with [`RowLockMode::Update`] (which returns the newest version),
//!   computes the new row from it, then updates: the update finds the row locked by itself and
//!   does not wait.
//! - an insert waits for an in-progress creator or deleter of any version of the key; then a
//!   live version (own or committed, visible or not) is a [`MvccError::UniqueViolation`]
//!   (23505), as PostgreSQL's unique check sees committed rows whatever the snapshot. Lockers
//!   do not block inserts. Inserts and updates also write the row's secondary index entries in
//!   the same batch and check its unique indexes the same way, under the latches of the row
//!   and of the values ([`index`](super::index) describes entries and uniqueness).
//! - [`Transaction::lock_conflicting`] (`INSERT ... ON CONFLICT DO UPDATE`) starts from the
//!   live version a unique check found instead of the visible one; a version this
//!   transaction locked that way is what its update then acts on, whatever its snapshot.
//!
//! A row lock ([`RowLockMode::Share`] or [`RowLockMode::Update`]) is recorded on the version at
//! the end of the chain; an in-progress or prepared locker holds the row like a writer for the
//! accesses its mode blocks, a finished one not at all. Locking a row one wrote or already
//! locked as strongly is a no-op. Waiting honours the transaction's [`WaitOptions`]
//! (`lock_timeout`, `deadlock_timeout`, cancel flag, statement deadline); see [`locks`](super::locks).
//!
//! Writers of different rows run in parallel (a latch per row, striped); reads, commits and
//! aborts take no latch. Every commit, abort, prepare and COMMIT/ROLLBACK PREPARED wakes the
//! waiters after writing its status.
//!
//! # Commit order at the GTM
//!
//! A transaction commits on this node before its coordinator reports the commit to the GTM,
//! and snapshots count it as running until then. A waiter wakes at the local commit, so it may
//! write on a version its snapshot (and everyone's) still hides; were its own commit reported
//! first, a snapshot could see its version and the holder's predecessor version both — two
//! live versions of a row, half of another transaction. So a transaction collects
//! [`Transaction::commit_after`]: every transaction it waited for that committed, and every
//! committed transaction its snapshot counts as running whose update, delete or lock it acted
//! on. Whoever reports commits to the GTM must report those first (PostgreSQL gets this for
//! free: its waiters wake only once the holder has left the proc array).
//!
//! # Two-phase commit and recovery
//!
//! [`Transaction::prepare`] writes `Prepared`, synced (which also makes every earlier write and
//! lock of the transaction durable). Prepared versions stay invisible, and prepared writes and
//! locks keep holding their rows; [`Mvcc::commit_prepared`] and [`Mvcc::rollback_prepared`]
//! finish them, also from a fresh `Mvcc` over a reopened engine. [`Mvcc::recover`] must run once
//! at startup, before any transaction begins.
//!
//! A transaction must end with commit, abort or prepare: one dropped without them stays in
//! progress, holding its rows, until the next restart's recovery aborts it.
//!
//! # Garbage collection
//!
//! [`Mvcc::gc`] (in [`gc`](super::gc)) removes the versions no snapshot can see any more, with
//! the index entries that go with them.

use super::index::{check_order, orphaned_entries, Check, NoIndexes};
use super::index::{TableIndexes, UniqueRule};
use super::keycode::Value;
use super::keys::{self, Key, KeyPrefix};
use super::locks::{Access, CancelReason, LockManager, RowLockMode, RowLocker, WaitOptions};
use super::row_cache::{RowCache, Run};
use super::{Cf, Engine, KeyRange, StorageError, WriteBatch};
use crate::{errdata, errinput};
use rxc_common::txn::{Gxid, Isolation, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// SQLSTATE of a serialization failure.
pub const SQLSTATE_SERIALIZATION_FAILURE: &str = "40001";
/// SQLSTATE of a detected deadlock.
pub const SQLSTATE_DEADLOCK_DETECTED: &str = "40P01";
/// SQLSTATE of a unique violation.
pub const SQLSTATE_UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE of a write in a read-only transaction.
pub const SQLSTATE_READ_ONLY: &str = "25006";
/// SQLSTATE of a failed connection (here: to the GTM, for a snapshot).
pub const SQLSTATE_CONNECTION_FAILURE: &str = "08006";
/// SQLSTATE of a lock not obtained in time (lock_timeout).
pub const SQLSTATE_LOCK_NOT_AVAILABLE: &str = "55P03";
/// SQLSTATE of a canceled statement (cancel request, statement_timeout).
pub const SQLSTATE_QUERY_CANCELED: &str = "57014";

/// The result of an MVCC operation.
pub type Result<T, E = MvccError> = std::result::Result<T, E>;

/// An MVCC failure, grouped by what the caller must do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MvccError {
    /// A REPEATABLE READ transaction met a row changed after its snapshot: abort and retry.
    #[error("could not serialize access due to concurrent update")]
    Serialization,
    /// Waiting for a row closed a cycle of waiting transactions, and this one is the victim:
    /// abort it (the others proceed) and retry.
    #[error("deadlock detected")]
    Deadlock {
        /// PostgreSQL's DETAIL: one line per waiting transaction of the cycle.
        detail: String,
    },
    /// The wait for a row lasted longer than `lock_timeout`: the statement fails.
    #[error("canceling statement due to lock timeout")]
    LockTimeout,
    /// The statement was canceled while it waited: the statement fails.
    #[error("canceling statement due to {0}")]
    Canceled(CancelReason),
    /// A write met a live row with the same primary key, or with equal values in a unique
    /// index.
    #[error("duplicate key value violates unique constraint: table {table_id} {}", describe_violation(*.index_id, .existing))]
    UniqueViolation {
        /// The table.
        table_id: u64,
        /// The unique index violated; `None` for the primary key.
        index_id: Option<u64>,
        /// The primary key of the live row that holds the key or values.
        existing: Vec<Value>,
        /// The row being written (or, building an index, the row checked), whose values the
        /// message shows.
        row: Vec<u8>,
    },
    /// A write in a read-only transaction.
    #[error("cannot write in a read-only transaction")]
    ReadOnly,
    /// Internal: a decision of a statement begun without a snapshot of its own needs one. The
    /// operation takes the snapshot and decides again; the public API never returns this.
    #[error("the statement needs a snapshot it has not taken")]
    NeedSnapshot,
    /// A statement needed a snapshot and the GTM did not give one.
    #[error("cannot get a snapshot from the GTM: {0}")]
    SnapshotUnavailable(String),
    /// The storage failed or the caller misused the API.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl MvccError {
    /// The SQLSTATE a SQL client sees, if the error has one of its own.
    pub fn sqlstate(&self) -> Option<&'static str> {
        match self {
            MvccError::Serialization => Some(SQLSTATE_SERIALIZATION_FAILURE),
            MvccError::Deadlock { .. } => Some(SQLSTATE_DEADLOCK_DETECTED),
            MvccError::LockTimeout => Some(SQLSTATE_LOCK_NOT_AVAILABLE),
            MvccError::Canceled(_) => Some(SQLSTATE_QUERY_CANCELED),
            MvccError::UniqueViolation { .. } => Some(SQLSTATE_UNIQUE_VIOLATION),
            MvccError::ReadOnly => Some(SQLSTATE_READ_ONLY),
            MvccError::SnapshotUnavailable(_) => Some(SQLSTATE_CONNECTION_FAILURE),
            MvccError::NeedSnapshot | MvccError::Storage(_) => None,
        }
    }

    /// The DETAIL a SQL client sees, if the error has one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            MvccError::Deadlock { detail } => Some(detail),
            _ => None,
        }
    }
}

/// The local status of a transaction, in `txn_status`. No entry means in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnStatus {
    /// Has written; not finished (marks writers for [`Mvcc::recover`]).
    Running,
    /// Prepared for two-phase commit; durable, still in progress for everyone else.
    Prepared,
    /// Committed on this node.
    Committed,
    /// Aborted (rolled back, or crashed and recovered).
    Aborted,
}

impl TxnStatus {
    /// Whether the transaction is still in progress (its writes and locks hold their rows).
    pub fn in_progress(status: Option<TxnStatus>) -> bool {
        matches!(
            status,
            None | Some(TxnStatus::Running) | Some(TxnStatus::Prepared)
        )
    }
}

/// The value of a row version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The row's bytes (opaque at this layer).
    pub row: Vec<u8>,
    /// The transaction that deleted or updated this version, if any.
    pub deleter: Option<Gxid>,
    /// Row locks taken on this version (`SELECT ... FOR UPDATE / FOR SHARE`), oldest first;
    /// only those of transactions in progress or prepared still hold.
    pub lockers: Vec<RowLocker>,
}

impl Version {
    /// A new, unlocked version.
    fn new(row: Vec<u8>) -> Self {
        Version {
            row,
            deleter: None,
            lockers: Vec::new(),
        }
    }
}

pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard encoding of MVCC values cannot fail")
}

pub(super) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| errdata!("undecodable MVCC value: {e}").into())
}

fn describe_violation(index_id: Option<u64>, existing: &[Value]) -> String {
    match index_id {
        None => format!("key {existing:?}"),
        Some(id) => format!("index {id} held by row {existing:?}"),
    }
}

/// Reads and caches local transaction statuses for one operation, in front of the node's
/// cache of final statuses ([`FinalStatuses`]). One operation is short enough to cache every
/// status it reads.
pub(super) struct Statuses<'a> {
    engine: &'a dyn Engine,
    finals: Arc<FinalStatuses>,
    cache: HashMap<Gxid, Option<TxnStatus>>,
}

impl<'a> Statuses<'a> {
    pub(super) fn new(engine: &'a dyn Engine, finals: &Arc<FinalStatuses>) -> Self {
        Statuses {
            engine,
            finals: finals.clone(),
            cache: HashMap::new(),
        }
    }

    pub(super) fn get(&mut self, gxid: Gxid) -> Result<Option<TxnStatus>> {
        if let Some(status) = self.cache.get(&gxid) {
            return Ok(*status);
        }
        if let Some(status) = self.finals.get(gxid) {
            return Ok(Some(status));
        }
        let status = read_status(self.engine, gxid)?;
        if let Some(status) = status {
            self.finals.note(gxid, status);
        }
        self.cache.insert(gxid, status);
        Ok(status)
    }

    pub(super) fn in_progress(&mut self, gxid: Gxid) -> Result<bool> {
        Ok(TxnStatus::in_progress(self.get(gxid)?))
    }
}

/// A lossy map from recent GXIDs to a small tag (1 to 3): direct-mapped, one atomic word a
/// slot holding the GXID and the tag, no locks. A GXID may be forgotten (its slot taken by
/// another), never given another's tag.
pub(crate) struct GxidSlots {
    slots: Box<[AtomicU64]>,
}

impl GxidSlots {
    /// A map of `slots` slots (rounded up to a power of two).
    pub(crate) fn new(slots: usize) -> Self {
        GxidSlots {
            slots: (0..slots.next_power_of_two())
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    fn slot(&self, gxid: Gxid) -> &AtomicU64 {
        &self.slots[gxid.0 as usize & (self.slots.len() - 1)]
    }

    /// The tag of `gxid`, if it is still there.
    pub(crate) fn get(&self, gxid: Gxid) -> Option<u8> {
        let word = self.slot(gxid).load(Ordering::Acquire);
        (word >> 2 == gxid.0 && word & 3 != 0).then_some((word & 3) as u8)
    }

    /// Gives `gxid` the tag `tag` (1 to 3; a GXID that does not fit 62 bits is not kept).
    pub(crate) fn put(&self, gxid: Gxid, tag: u8) {
        debug_assert!((1..=3).contains(&tag));
        if gxid.0 >> 62 == 0 {
            self.slot(gxid)
                .store(gxid.0 << 2 | u64::from(tag & 3), Ordering::Release);
        }
    }
}

/// The node's cache of final local statuses (committed, aborted: they never change), so that
/// reading a row does not look its creator's status up in RocksDB each time.
pub(super) struct FinalStatuses {
    slots: GxidSlots,
}

/// How many GXIDs [`FinalStatuses`] holds (8 MiB).
const FINAL_STATUS_SLOTS: usize = 1 << 20;

impl Default for FinalStatuses {
    fn default() -> Self {
        FinalStatuses {
            slots: GxidSlots::new(FINAL_STATUS_SLOTS),
        }
    }
}

impl FinalStatuses {
    const COMMITTED: u8 = 1;
    const ABORTED: u8 = 2;

    /// The final status of `gxid`, if cached.
    fn get(&self, gxid: Gxid) -> Option<TxnStatus> {
        match self.slots.get(gxid)? {
            Self::COMMITTED => Some(TxnStatus::Committed),
            Self::ABORTED => Some(TxnStatus::Aborted),
            _ => None,
        }
    }

    /// Caches `status` of `gxid` if it is final.
    fn note(&self, gxid: Gxid, status: TxnStatus) {
        match status {
            TxnStatus::Committed => self.slots.put(gxid, Self::COMMITTED),
            TxnStatus::Aborted => self.slots.put(gxid, Self::ABORTED),
            _ => {}
        }
    }
}

fn read_status(engine: &dyn Engine, gxid: Gxid) -> Result<Option<TxnStatus>> {
    let key = Key::TxnStatus { gxid }.encode();
    engine
        .get(Cf::TxnStatus, &key)?
        .map(|v| decode(&v))
        .transpose()
}

fn put_status(batch: &mut WriteBatch, gxid: Gxid, status: TxnStatus) {
    batch.put(
        Cf::TxnStatus,
        Key::TxnStatus { gxid }.encode(),
        encode(&status),
    );
}

/// The MVCC layer of one datanode.
pub struct Mvcc {
    engine: Arc<dyn Engine>,
    /// Row latches and waiting (see the module doc).
    locks: Arc<LockManager>,
    /// Where the next [`Mvcc::gc`] call continues (the last row key it examined).
    pub(super) gc_cursor: Mutex<Option<Vec<u8>>>,
    /// Rows that may hold dead versions (see [`DirtyRows`]).
    pub(super) dirty: Arc<DirtyRows>,
    /// Final transaction statuses read or written lately.
    pub(super) finals: Arc<FinalStatuses>,
    /// The xmins of the snapshots transactions read with.
    active: Arc<ActiveSnapshots>,
    /// Rows' versions read or written lately.
    rows: Arc<RowCache>,
}

impl Mvcc {
    /// The MVCC layer over `engine`. Call [`Mvcc::recover`] before the first transaction.
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        Mvcc {
            engine,
            locks: Arc::new(LockManager::new()),
            gc_cursor: Mutex::new(None),
            dirty: Arc::default(),
            finals: Arc::default(),
            active: Arc::default(),
            rows: Arc::default(),
        }
    }

    /// The engine underneath.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The lock manager (waits and the wait-for graph).
    pub fn locks(&self) -> &Arc<LockManager> {
        &self.locks
    }

    /// The lock manager (who waits for whom).
    pub fn lock_manager(&self) -> &Arc<LockManager> {
        &self.locks
    }

    /// What garbage collection may remove below: `global_xmin` from the GTM, held down to the
    /// oldest xmin of the snapshots this node's transactions read with. The GTM holds no
    /// snapshot of the node's own sessions (one snapshot answer serves many of them), so the
    /// node keeps the versions they can see itself.
    pub fn horizon(&self, global_xmin: Gxid) -> Gxid {
        self.active
            .oldest()
            .map_or(global_xmin, |xmin| xmin.min(global_xmin))
    }

    /// A writing transaction with the GXID and snapshot the GTM gave it. It waits for rows
    /// with the default [`WaitOptions`] until [`Transaction::set_wait`] says otherwise.
    pub fn begin(&self, gxid: Gxid, snapshot: Snapshot, isolation: Isolation) -> Transaction {
        self.active.add(snapshot.xmin);
        Transaction {
            engine: self.engine.clone(),
            locks: self.locks.clone(),
            gxid: Some(gxid),
            snapshot,
            isolation,
            wrote: false,
            wait: WaitOptions::default(),
            commit_after: Vec::new(),
            dirty: self.dirty.clone(),
            finals: self.finals.clone(),
            active: self.active.clone(),
            rows: self.rows.clone(),
            created: Vec::new(),
            tables: Vec::new(),
            deferred: None,
        }
    }

    /// A read-only transaction (no GXID) reading with `snapshot`.
    pub fn read_only(&self, snapshot: Snapshot) -> Transaction {
        self.active.add(snapshot.xmin);
        Transaction {
            engine: self.engine.clone(),
            locks: self.locks.clone(),
            gxid: None,
            snapshot,
            isolation: Isolation::RepeatableRead,
            wrote: false,
            wait: WaitOptions::default(),
            commit_after: Vec::new(),
            dirty: self.dirty.clone(),
            finals: self.finals.clone(),
            active: self.active.clone(),
            rows: self.rows.clone(),
            created: Vec::new(),
            tables: Vec::new(),
            deferred: None,
        }
    }

    /// Counts a write of the row `prefix`'s versions, made under its latch (still held), and
    /// caches `now`, the versions after it (see [`RowCache::wrote`]).
    pub(super) fn wrote_versions(&self, prefix: &[u8], now: Run) {
        self.rows.wrote(&self.locks, prefix, Some(now));
    }

    /// The local status of `gxid` (`None`: in progress, or never wrote here).
    pub fn status(&self, gxid: Gxid) -> Result<Option<TxnStatus>> {
        read_status(&*self.engine, gxid)
    }

    /// Every prepared transaction on this node, oldest first.
    pub fn prepared(&self) -> Result<Vec<Gxid>> {
        Ok(self
            .statuses()?
            .into_iter()
            .filter(|(_, s)| *s == TxnStatus::Prepared)
            .map(|(g, _)| g)
            .collect())
    }

    fn statuses(&self) -> Result<Vec<(Gxid, TxnStatus)>> {
        let prefix = KeyPrefix::TxnStatus.encode();
        let mut out = Vec::new();
        for item in self.engine.scan_prefix(Cf::TxnStatus, &prefix) {
            let (key, value) = item?;
            let Key::TxnStatus { gxid } = Key::decode(&key)? else {
                return Err(errdata!("not a transaction status key").into());
            };
            out.push((gxid, decode(&value)?));
        }
        Ok(out)
    }

    /// Marks every writer that was running when the node stopped as aborted (it crashed), in one
    /// synced batch, and returns them. Run once at startup, before any transaction begins.
    pub fn recover(&self) -> Result<Vec<Gxid>> {
        let mut batch = WriteBatch::synced();
        let mut aborted = Vec::new();
        for (gxid, status) in self.statuses()? {
            if status == TxnStatus::Running {
                put_status(&mut batch, gxid, TxnStatus::Aborted);
                aborted.push(gxid);
            }
        }
        self.engine.write(batch)?;
        self.locks.transaction_finished();
        Ok(aborted)
    }

    /// Finishes prepared `gxid` — COMMIT PREPARED if `commit`, else ROLLBACK PREPARED —
    /// writing `with` (the caller's own bookkeeping of the transaction) in the same synced
    /// batch, and wakes the transactions waiting for it.
    pub fn finish_prepared(&self, gxid: Gxid, commit: bool, with: WriteBatch) -> Result<()> {
        match self.status(gxid)? {
            Some(TxnStatus::Prepared) => {}
            Some(other) => {
                return Err(errinput!("transaction {gxid} is {other:?}, not prepared").into())
            }
            None => return Err(errinput!("transaction {gxid} is not prepared").into()),
        }
        let status = if commit {
            TxnStatus::Committed
        } else {
            TxnStatus::Aborted
        };
        let mut batch = with;
        batch.sync = true;
        put_status(&mut batch, gxid, status);
        self.engine.write(batch)?;
        self.locks.transaction_finished();
        Ok(())
    }

    /// Commits a prepared transaction (COMMIT PREPARED), waking the transactions waiting for it.
    pub fn commit_prepared(&self, gxid: Gxid) -> Result<()> {
        self.finish_prepared(gxid, true, WriteBatch::new())
    }

    /// Rolls back a prepared transaction (ROLLBACK PREPARED), waking the transactions waiting
    /// for it.
    pub fn rollback_prepared(&self, gxid: Gxid) -> Result<()> {
        self.finish_prepared(gxid, false, WriteBatch::new())
    }
}

/// A row version as [`Transaction::get_version`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionInfo {
    /// The transaction that wrote it.
    pub creator: Gxid,
    /// The transaction that deleted or replaced it, if any (not necessarily finished).
    pub deleter: Option<Gxid>,
    /// The row bytes.
    pub row: Vec<u8>,
}

/// The xmins of the snapshots the node's transactions read with, counted.
#[derive(Debug, Default)]
struct ActiveSnapshots {
    xmins: Mutex<BTreeMap<Gxid, usize>>,
}

impl ActiveSnapshots {
    fn add(&self, xmin: Gxid) {
        let mut xmins = self.xmins.lock().unwrap_or_else(|e| e.into_inner());
        *xmins.entry(xmin).or_default() += 1;
    }

    fn remove(&self, xmin: Gxid) {
        let mut xmins = self.xmins.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = xmins.get_mut(&xmin) {
            *count -= 1;
            if *count == 0 {
                xmins.remove(&xmin);
            }
        }
    }

    fn oldest(&self) -> Option<Gxid> {
        let xmins = self.xmins.lock().unwrap_or_else(|e| e.into_inner());
        xmins.keys().next().copied()
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.settle();
        self.active.remove(self.snapshot.xmin);
    }
}

/// The rows that may hold versions garbage collection can remove — rows that got a deleter,
/// rows an aborted transaction wrote — by their versions' key prefix, so that
/// [`Mvcc::gc_dirty`] visits just those instead of sweeping every version. A restart forgets
/// them; the sweep of [`Mvcc::gc`] finds what is left.
#[derive(Debug, Default)]
pub(super) struct DirtyRows {
    rows: Mutex<HashMap<Vec<u8>, DirtyRow>>,
    /// Rows garbage collection visited, with their floor: no version created below it is left,
    /// and none can be written any more (see [`Mvcc::gc_dirty`]). At most [`MAX_FLOORS`] rows;
    /// a row without one is read to its end.
    floors: Mutex<HashMap<Vec<u8>, Gxid>>,
}

/// How many rows' floors [`DirtyRows`] remembers before it forgets them all and starts over.
const MAX_FLOORS: usize = 100_000;

/// A listed row: its table and primary key.
type DirtyRow = (u64, Vec<Value>);

impl DirtyRows {
    /// Lists row `pk` of `table_id`.
    pub(super) fn add(&self, table_id: u64, pk: &[Value]) {
        let key = row_latch_key(table_id, pk);
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.entry(key).or_insert_with(|| (table_id, pk.to_vec()));
    }

    /// Takes up to `n` listed rows off the list.
    pub(super) fn take(&self, n: usize) -> Vec<(u64, Vec<Value>)> {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<Vec<u8>> = rows.keys().take(n).cloned().collect();
        keys.iter().filter_map(|k| rows.remove(k)).collect()
    }

    /// How many rows are listed.
    pub(super) fn len(&self) -> usize {
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The floor of row `pk` of `table_id`, if known.
    pub(super) fn floor(&self, table_id: u64, pk: &[Value]) -> Option<Gxid> {
        let floors = self.floors.lock().unwrap_or_else(|e| e.into_inner());
        floors.get(&row_latch_key(table_id, pk)).copied()
    }

    /// Records the floor of row `pk` of `table_id`.
    pub(super) fn set_floor(&self, table_id: u64, pk: &[Value], floor: Gxid) {
        let mut floors = self.floors.lock().unwrap_or_else(|e| e.into_inner());
        if floors.len() >= MAX_FLOORS {
            floors.clear();
        }
        floors.insert(row_latch_key(table_id, pk), floor);
    }
}

/// One stored version of a row, decoded.
#[derive(Clone)]
pub(super) struct StoredVersion {
    /// Its key in `rows`.
    pub(super) key: Vec<u8>,
    /// The transaction that wrote it.
    pub(super) creator: Gxid,
    /// Its value.
    pub(super) version: Version,
}

/// Where a write or lock begins following a row's chain of updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// The version the statement's snapshot sees (or one this transaction locked).
    Snapshot,
    /// The live version, whatever the snapshot.
    Live,
}

/// Where a write or lock stands after checking a row's versions.
enum Step {
    /// The version to act on: the newest of the row the statement sees.
    Found(StoredVersion),
    /// The statement does not see the row, or it was deleted meanwhile.
    Missing,
    /// This transaction holds the row: wait for it, then check again.
    Wait(Gxid),
}

/// What a write or lock does with a row, decided under its latch ([`Transaction::decide`]).
enum Decided {
    /// Act on this version (the row's versions, as read, alongside).
    Act(Run, StoredVersion),
    /// The statement does not see the row, or it was deleted meanwhile.
    Missing,
    /// Release the latch, then check again.
    Retry(Retry),
}

/// Why a write or lock checks its row again, once it released the latch.
enum Retry {
    /// A transaction holds the row: wait for it.
    Wait(Gxid),
    /// A decision needs the statement's snapshot (it began without one): take it.
    Snapshot,
}

/// A transaction: a writer with a GXID, or a read-only reader.
pub struct Transaction {
    engine: Arc<dyn Engine>,
    locks: Arc<LockManager>,
    gxid: Option<Gxid>,
    snapshot: Snapshot,
    isolation: Isolation,
    /// Whether the transaction has written or locked (and so has a `Running` status).
    wrote: bool,
    /// How it waits for rows held by others.
    wait: WaitOptions,
    /// Committed transactions its snapshot does not see finished whose outcome this one
    /// waited for or built on, sorted: see [`Transaction::commit_after`].
    commit_after: Vec<Gxid>,
    /// The node's dirty rows: rows this transaction gives a deleter are listed at once.
    dirty: Arc<DirtyRows>,
    /// The node's final statuses.
    pub(super) finals: Arc<FinalStatuses>,
    /// The node's snapshots in use, this one's xmin among them while it lives.
    active: Arc<ActiveSnapshots>,
    /// The node's cache of rows' versions.
    rows: Arc<RowCache>,
    /// Rows this transaction created versions in, listed if it aborts.
    created: Vec<(u64, Vec<Value>)>,
    /// Tables this transaction wrote or locked rows of, sorted.
    tables: Vec<u64>,
    /// The statement began without a snapshot of its own (see "Statements without a snapshot
    /// of their own" in the module doc): `snapshot` is an older one meanwhile.
    deferred: Option<Deferred>,
}

/// Asks the GTM for a snapshot, for a statement that began without one. The error is the
/// GTM's, as text.
pub type SnapshotFetch = Arc<dyn Fn() -> std::result::Result<Snapshot, String> + Send + Sync>;

/// A statement begun without a snapshot of its own.
struct Deferred {
    fetch: SnapshotFetch,
    /// The snapshot fetched, once a decision needed one.
    fetched: OnceLock<Snapshot>,
    /// The statement reads one row at most ([`Transaction::one_row_statement`]), and the row
    /// it decided, once it has.
    one_row: bool,
    row: OnceLock<Vec<u8>>,
}

impl Transaction {
    /// The engine the transaction reads and writes.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The lock manager of the node.
    pub fn locks(&self) -> &Arc<LockManager> {
        &self.locks
    }

    /// The transaction's GXID (`None` for a read-only one).
    pub fn gxid(&self) -> Option<Gxid> {
        self.gxid
    }

    /// The snapshot reads use. For a statement begun without one that has not needed one yet,
    /// the older snapshot it was given: whatever that one counts finished, every snapshot the
    /// statement could take counts finished too.
    pub fn snapshot(&self) -> &Snapshot {
        match self.deferred.as_ref().and_then(|d| d.fetched.get()) {
            Some(fetched) => fetched,
            None => &self.snapshot,
        }
    }

    /// The isolation level.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// Replaces the snapshot for the next statement (READ COMMITTED, or a read-only reader).
    pub fn set_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        if self.gxid.is_some() && self.isolation == Isolation::RepeatableRead {
            return Err(errinput!("a REPEATABLE READ transaction keeps its snapshot").into());
        }
        self.settle();
        self.active.add(snapshot.xmin);
        self.active.remove(self.snapshot.xmin);
        self.snapshot = snapshot;
        Ok(())
    }

    /// Begins the next statement (READ COMMITTED, or a read-only reader) without a snapshot of
    /// its own: `stale` is any snapshot the GTM gave before the statement began, and `fetch`
    /// asks the GTM for one at the first decision `stale` cannot make (see "Statements without
    /// a snapshot of their own" in the module doc).
    pub fn defer_snapshot(&mut self, stale: Snapshot, fetch: SnapshotFetch) -> Result<()> {
        self.set_snapshot(stale)?;
        self.defer(fetch);
        Ok(())
    }

    /// [`Transaction::defer_snapshot`] with the snapshot the statement just began with (by
    /// [`Mvcc::begin`], [`Mvcc::read_only`] or [`Transaction::set_snapshot`]) as the stale one.
    pub fn defer(&mut self, fetch: SnapshotFetch) {
        self.deferred = Some(Deferred {
            fetch,
            fetched: OnceLock::new(),
            one_row: false,
            row: OnceLock::new(),
        });
    }

    /// The statement begun without a snapshot (after what it read to plan itself: catalog
    /// rows, which PostgreSQL reads with a catalog snapshot of their own too) reads at most
    /// one row. Only such a statement may go on without a snapshot: one that read two rows
    /// at different moments, each as the older snapshot sees it, could disagree with any
    /// snapshot taken later — a row it read first may have changed before it needs one. Any
    /// other statement calls [`Transaction::take_snapshot`] before it reads.
    pub fn one_row_statement(&mut self) {
        if let Some(deferred) = &mut self.deferred {
            deferred.one_row = true;
        }
    }

    /// Ends the statement: reads until the next statement begins (describing a statement, say)
    /// use the snapshot it took, or else the older one, as a snapshot of their own.
    pub fn end_statement(&mut self) {
        self.settle();
    }

    /// Checks that a one-row statement without its snapshot decides no second row.
    fn deciding_row(&self, prefix: &[u8]) -> Result<()> {
        match &self.deferred {
            Some(d) if d.one_row && d.fetched.get().is_none() => {
                if d.row.get_or_init(|| prefix.to_vec()) != prefix {
                    return Err(errinput!(
                        "a statement promised to read one row without a snapshot read two"
                    )
                    .into());
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Whether the statement began without a snapshot and has not taken one yet.
    fn snapshot_deferred(&self) -> bool {
        self.deferred
            .as_ref()
            .is_some_and(|d| d.fetched.get().is_none())
    }

    /// Takes the snapshot of a statement begun without one, if it has none yet.
    pub fn take_snapshot(&self) -> Result<()> {
        if let Some(deferred) = &self.deferred {
            if deferred.fetched.get().is_none() {
                let snapshot = (deferred.fetch)().map_err(MvccError::SnapshotUnavailable)?;
                self.active.add(snapshot.xmin);
                if let Err(snapshot) = deferred.fetched.set(snapshot) {
                    self.active.remove(snapshot.xmin);
                }
            }
        }
        Ok(())
    }

    /// Ends a deferred statement: the snapshot it took (already counted among the node's
    /// snapshots in use) replaces the older one.
    fn settle(&mut self) {
        if let Some(fetched) = self.deferred.take().and_then(|d| d.fetched.into_inner()) {
            self.active.remove(self.snapshot.xmin);
            self.snapshot = fetched;
        }
    }

    /// Runs `decide` (reads of one row deciding what the statement sees) and, if a decision
    /// needed the snapshot the statement has not taken yet, takes it and runs `decide` again —
    /// reading the row again, after the snapshot.
    fn deciding<T>(
        &self,
        prefix: &[u8],
        mut decide: impl FnMut(&mut Statuses) -> Result<T>,
    ) -> Result<T> {
        self.deciding_row(prefix)?;
        loop {
            let mut statuses = Statuses::new(&*self.engine, &self.finals);
            match decide(&mut statuses) {
                Err(MvccError::NeedSnapshot) => self.take_snapshot()?,
                other => return other,
            }
        }
    }

    /// How the transaction waits for rows held by others, from now on (the caller sets the
    /// statement's deadline before each statement, if it has one).
    pub fn set_wait(&mut self, options: WaitOptions) {
        self.wait = options;
    }

    /// The current wait options.
    pub fn wait_options(&self) -> &WaitOptions {
        &self.wait
    }

    /// The transactions whose commit must be reported to the GTM before this one's: those
    /// it waited for that committed, and those whose committed change or lock it acted on
    /// although its snapshot still counted them as running (they had committed on this node,
    /// not yet at the GTM). Were this one reported first, a snapshot could see its versions
    /// without theirs — two visible versions of one row, half a transfer. PostgreSQL needs no
    /// such rule: a waiter there wakes only once the holder has left the proc array.
    pub fn commit_after(&self) -> &[Gxid] {
        &self.commit_after
    }

    /// Records that this transaction's commit must be reported after `gxid`'s.
    fn commit_after_gxid(&mut self, gxid: Gxid) {
        if let Err(i) = self.commit_after.binary_search(&gxid) {
            self.commit_after.insert(i, gxid);
        }
    }

    /// Records `gxid` as a commit dependency if it committed here while this transaction's
    /// snapshot still counts it as running.
    pub(super) fn note_unseen_commit(&mut self, statuses: &mut Statuses, gxid: Gxid) -> Result<()> {
        // Deferred: the older snapshot counts no more finished than the statement's would.
        if !self.snapshot().is_finished(gxid) && statuses.get(gxid)? == Some(TxnStatus::Committed) {
            self.commit_after_gxid(gxid);
        }
        Ok(())
    }

    pub(super) fn writer(&self) -> Result<Gxid> {
        self.gxid.ok_or(MvccError::ReadOnly)
    }

    /// Whether this transaction sees the writes of `gxid`.
    fn sees(&self, statuses: &mut Statuses, gxid: Gxid) -> Result<bool> {
        if self.gxid == Some(gxid) {
            return Ok(true);
        }
        if self.snapshot_deferred() {
            // What every snapshot taken from now on decides alike; anything else needs one.
            return match statuses.get(gxid)? {
                Some(TxnStatus::Aborted) => Ok(false),
                Some(TxnStatus::Committed) if self.snapshot.is_finished(gxid) => Ok(true),
                _ => Err(MvccError::NeedSnapshot),
            };
        }
        let snapshot = self.snapshot();
        if !snapshot.is_finished(gxid) {
            return Ok(false);
        }
        let committed = statuses.get(gxid)? == Some(TxnStatus::Committed);
        Ok(snapshot.sees(self.gxid, gxid, |_| committed))
    }

    fn visible(&self, statuses: &mut Statuses, v: &StoredVersion) -> Result<bool> {
        if !self.sees(statuses, v.creator)? {
            return Ok(false);
        }
        match v.version.deleter {
            Some(d) => Ok(!self.sees(statuses, d)?),
            None => Ok(true),
        }
    }

    pub(super) fn versions(&self, table_id: u64, pk: &[Value]) -> Result<Vec<StoredVersion>> {
        read_versions(&*self.engine, table_id, pk)
    }

    /// The lock manager.
    pub(super) fn lock_manager(&self) -> &Arc<LockManager> {
        &self.locks
    }

    /// The version of row `pk` of `table_id` this transaction sees, with who wrote it and
    /// who (if anyone) deleted it, for callers that cache what they read.
    pub fn get_version(&self, table_id: u64, pk: &[Value]) -> Result<Option<VersionInfo>> {
        self.deciding(&row_latch_key(table_id, pk), |statuses| {
            self.visible_version(statuses, table_id, pk, |v| VersionInfo {
                creator: v.creator,
                deleter: v.version.deleter,
                row: v.version.row.clone(),
            })
        })
    }

    /// Whether this transaction wrote or locked rows of `table_id`.
    pub fn has_written(&self, table_id: u64) -> bool {
        self.tables.binary_search(&table_id).is_ok()
    }

    /// Records that this transaction wrote rows of `table_id`.
    fn note_table(&mut self, table_id: u64) {
        if let Err(i) = self.tables.binary_search(&table_id) {
            self.tables.insert(i, table_id);
        }
    }

    /// The row `pk` of `table_id` as this transaction sees it.
    pub fn get(&self, table_id: u64, pk: &[Value]) -> Result<Option<Vec<u8>>> {
        self.deciding(&row_latch_key(table_id, pk), |statuses| {
            self.visible_row(statuses, table_id, pk)
        })
    }

    /// The row `pk` of `table_id` as this transaction sees it, with a status cache.
    pub(super) fn visible_row(
        &self,
        statuses: &mut Statuses,
        table_id: u64,
        pk: &[Value],
    ) -> Result<Option<Vec<u8>>> {
        self.visible_version(statuses, table_id, pk, |v| v.version.row.clone())
    }

    /// `take` of the version of row `pk` of `table_id` this transaction sees, if any.
    fn visible_version<T>(
        &self,
        statuses: &mut Statuses,
        table_id: u64,
        pk: &[Value],
        take: impl FnOnce(&StoredVersion) -> T,
    ) -> Result<Option<T>> {
        let versions = self.versions_to_visible(statuses, &row_latch_key(table_id, pk))?;
        Ok(match versions.last() {
            Some(v) if self.visible(statuses, v)? => Some(take(v)),
            _ => None,
        })
    }

    /// The row's versions, newest first, read only as far as the first one this transaction
    /// sees (every version if it sees none). At most one version passes for any snapshot, and
    /// on a row that is updated often the visible one is among the newest, while dead versions
    /// (and the tombstones garbage collection leaves in RocksDB) sort last: reading on would
    /// cost a step per dead version.
    pub(super) fn versions_to_visible(
        &self,
        statuses: &mut Statuses,
        prefix: &[u8],
    ) -> Result<Run> {
        self.rows.read(
            &self.locks,
            prefix,
            |v| self.visible(statuses, v),
            |last| read_row_versions(&*self.engine, prefix, None, last),
        )
    }

    /// The version of row `pk` that `creator` wrote, by its key.
    fn version_by(
        &self,
        table_id: u64,
        pk: &[Value],
        creator: Gxid,
    ) -> Result<Option<StoredVersion>> {
        let key = Key::Row {
            table_id,
            pk: pk.to_vec(),
            version: creator,
        }
        .encode();
        match self.engine.get(Cf::Rows, &key)? {
            Some(value) => Ok(Some(stored(key, &value)?)),
            None => Ok(None),
        }
    }

    /// Every row of `table_id` this transaction sees, in primary-key order.
    pub fn scan(&self, table_id: u64) -> Result<Vec<(Vec<Value>, Vec<u8>)>> {
        // Many rows: one snapshot for all of them, taken before any is read.
        self.take_snapshot()?;
        let mut statuses = Statuses::new(&*self.engine, &self.finals);
        let prefix = KeyPrefix::Row { table_id }.encode();
        let mut out: Vec<(Vec<Value>, Vec<u8>)> = Vec::new();
        for item in self.engine.scan_prefix(Cf::Rows, &prefix) {
            let (key, value) = item?;
            let Key::Row { pk, version, .. } = Key::decode(&key)? else {
                return Err(errdata!("not a row key in rows").into());
            };
            if out.last().is_some_and(|(last, _)| *last == pk) {
                continue; // this row already has its visible version
            }
            let v = StoredVersion {
                key,
                creator: version,
                version: decode(&value)?,
            };
            if self.visible(&mut statuses, &v)? {
                out.push((pk, v.version.row));
            }
        }
        Ok(out)
    }

    /// What a write or lock of the row beginning at `start` does: act on a version (with the
    /// row's versions, newest first, as far as [`Transaction::start`] needed them), find the
    /// row missing, or check again after waiting for a holder or taking the statement's
    /// snapshot (see "Write conflicts and waiting" in the module doc). Call it under the
    /// row's latch.
    fn decide(
        &mut self,
        statuses: &mut Statuses,
        table_id: u64,
        pk: &[Value],
        latch_key: &[u8],
        access: Access,
        start: Start,
    ) -> Result<Decided> {
        self.deciding_row(latch_key)?;
        let versions = match start {
            Start::Snapshot => self.versions_to_visible(statuses, latch_key),
            Start::Live => self.versions(table_id, pk).map(|v| Run::new(v, true)),
        };
        let step = versions.and_then(|versions| {
            let step = self.start(statuses, table_id, pk, &versions, access, start)?;
            Ok((versions, step))
        });
        Ok(match step {
            Err(MvccError::NeedSnapshot) => Decided::Retry(Retry::Snapshot),
            step => match step? {
                (versions, Step::Found(target)) => Decided::Act(versions, target),
                (_, Step::Missing) => Decided::Missing,
                (_, Step::Wait(holder)) => Decided::Retry(Retry::Wait(holder)),
            },
        })
    }

    /// Waits for the holder, or takes the statement's snapshot, before a write or lock checks
    /// its row again (the latch released).
    fn retry(&mut self, retry: Retry) -> Result<()> {
        match retry {
            Retry::Wait(holder) => self.wait(holder),
            Retry::Snapshot => self.take_snapshot(),
        }
    }

    /// Where a write or lock stands, beginning the chain at the version `start` says. `versions`
    /// are the row's versions newest first, at least as far as the first one the snapshot
    /// sees ([`Transaction::versions_to_visible`]), all of them for [`Start::Live`]; a version
    /// further on that the chain of updates leads to is read by its key.
    fn start(
        &mut self,
        statuses: &mut Statuses,
        table_id: u64,
        pk: &[Value],
        versions: &[StoredVersion],
        access: Access,
        start: Start,
    ) -> Result<Step> {
        let own = self.writer()?;
        let mut current = None;
        if start == Start::Snapshot {
            for v in versions {
                if self.visible(statuses, v)? {
                    current = Some(v);
                    break;
                }
            }
        }
        if current.is_none() {
            // The live version, when asked for or when this transaction locked it through
            // `lock_conflicting`: it acts on what it locked, whatever its snapshot.
            current = Self::live(statuses, versions)?.filter(|v| {
                start == Start::Live || v.version.lockers.iter().any(|l| l.gxid == own)
            });
            if let Some(v) = current {
                if self.isolation == Isolation::RepeatableRead && !self.visible(statuses, v)? {
                    return Err(MvccError::Serialization);
                }
                // Acting on a version its snapshot does not see builds on its creator.
                self.note_unseen_commit(statuses, v.creator)?;
            }
        }
        let Some(mut current) = current.cloned() else {
            return Ok(Step::Missing);
        };
        loop {
            if let Some(deleter) = current.version.deleter {
                if deleter != own {
                    match statuses.get(deleter)? {
                        Some(TxnStatus::Aborted) => {
                            return self.unlocked(statuses, current, access)
                        }
                        Some(TxnStatus::Committed) => {
                            if self.isolation == Isolation::RepeatableRead {
                                return Err(MvccError::Serialization);
                            }
                            self.note_unseen_commit(statuses, deleter)?;
                        }
                        _ => return Ok(Step::Wait(deleter)),
                    }
                }
                // Follow the update to the version the deleter wrote, if it wrote one; a
                // version deleted by its own creator (an update, then a delete, in one
                // transaction) ends the chain: the row is gone.
                if deleter == current.creator {
                    return Ok(Step::Missing);
                }
                let next = match versions.iter().find(|v| v.creator == deleter) {
                    Some(v) => Some(v.clone()),
                    None => self.version_by(table_id, pk, deleter)?,
                };
                match next {
                    Some(next) => current = next,
                    None => return Ok(Step::Missing),
                }
            } else {
                return self.unlocked(statuses, current, access);
            }
        }
    }

    /// `version` if no lock of another transaction in progress blocks `access` to it, else
    /// the first such locker to wait for.
    fn unlocked(
        &mut self,
        statuses: &mut Statuses,
        version: StoredVersion,
        access: Access,
    ) -> Result<Step> {
        let own = self.writer()?;
        for locker in &version.version.lockers {
            if locker.gxid != own && access.blocked_by_lock(locker.mode) {
                if statuses.in_progress(locker.gxid)? {
                    return Ok(Step::Wait(locker.gxid));
                }
                self.note_unseen_commit(statuses, locker.gxid)?;
            }
        }
        Ok(Step::Found(version))
    }

    /// The first creator or deleter of any version of the key, other than this transaction,
    /// still in progress: an insert waits for it.
    pub(super) fn insert_holder(
        &self,
        statuses: &mut Statuses,
        versions: &[StoredVersion],
    ) -> Result<Option<Gxid>> {
        let own = self.writer()?;
        for v in versions {
            if statuses.get(v.creator)? == Some(TxnStatus::Aborted) {
                continue;
            }
            for gxid in std::iter::once(v.creator).chain(v.version.deleter) {
                if gxid != own && statuses.in_progress(gxid)? {
                    return Ok(Some(gxid));
                }
            }
        }
        Ok(None)
    }

    /// The live version of a key: created by a transaction that did not abort, and not deleted
    /// by one that did not abort. After [`Transaction::insert_holder`] these are all committed
    /// or own.
    pub(super) fn live<'v>(
        statuses: &mut Statuses,
        versions: &'v [StoredVersion],
    ) -> Result<Option<&'v StoredVersion>> {
        for v in versions {
            if statuses.get(v.creator)? == Some(TxnStatus::Aborted) {
                continue;
            }
            let deleted = match v.version.deleter {
                Some(d) => statuses.get(d)? != Some(TxnStatus::Aborted),
                None => false,
            };
            if !deleted {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Waits for `holder` to finish, under the transaction's wait options.
    /// A holder that committed becomes a commit dependency ([`Transaction::commit_after`]).
    pub(super) fn wait(&mut self, holder: Gxid) -> Result<()> {
        let engine = &*self.engine;
        self.locks
            .wait_for(self.writer()?, holder, &self.wait, || {
                Ok(!TxnStatus::in_progress(read_status(engine, holder)?))
            })?;
        if read_status(engine, holder)? == Some(TxnStatus::Committed) {
            self.commit_after_gxid(holder);
        }
        Ok(())
    }

    /// Writes `batch`, with the `Running` marker on the transaction's first write.
    pub(super) fn write(&mut self, mut batch: WriteBatch) -> Result<()> {
        if !self.wrote {
            put_status(&mut batch, self.writer()?, TxnStatus::Running);
        }
        self.engine.write(batch)?;
        self.wrote = true;
        Ok(())
    }

    /// Inserts row `pk` of `table_id`, with its entries in `indexes`. Waits while another
    /// transaction in progress has written the key, or values of a unique index the row
    /// carries; then a live row with this key or those values is a
    /// [`MvccError::UniqueViolation`] (see [`index`](super::index) for the unique indexes).
    pub fn insert(
        &mut self,
        table_id: u64,
        pk: &[Value],
        row: Vec<u8>,
        indexes: &dyn TableIndexes,
    ) -> Result<()> {
        self.insert_key(table_id, pk, row, indexes, false)
    }

    /// [`Transaction::insert`]; with `new_key` the caller knows no version of the key can
    /// exist yet (a hidden row id made from this transaction's GXID), so the key's versions are
    /// not read (unique indexes are checked as ever).
    pub fn insert_key(
        &mut self,
        table_id: u64,
        pk: &[Value],
        row: Vec<u8>,
        indexes: &dyn TableIndexes,
        new_key: bool,
    ) -> Result<()> {
        let own = self.writer()?;
        let values = indexes.values(&row)?;
        let latches = Transaction::write_latches(table_id, pk, indexes, &values);
        let rules = check_order(indexes);
        let locks = self.locks.clone();
        loop {
            let holder = 'step: {
                let _latches = locks.latch_all(&latches);
                let engine = self.engine.clone();
                let mut statuses = Statuses::new(&*engine, &self.finals);
                let versions = if new_key {
                    Vec::new()
                } else {
                    self.versions(table_id, pk)?
                };
                for &rule in &rules {
                    let check = match rule {
                        UniqueRule::PrimaryKey => {
                            match self.insert_holder(&mut statuses, &versions)? {
                                Some(holder) => Check::Wait(holder),
                                None => match Self::live(&mut statuses, &versions)? {
                                    Some(_) => Check::Conflict(pk.to_vec()),
                                    None => Check::Free,
                                },
                            }
                        }
                        UniqueRule::Index(i) => self.check_unique_index(
                            &mut statuses,
                            table_id,
                            pk,
                            indexes,
                            i,
                            &values[i],
                        )?,
                    };
                    let index_id = match rule {
                        UniqueRule::PrimaryKey => None,
                        UniqueRule::Index(i) => Some(indexes.specs()[i].id),
                    };
                    if let Some(holder) = check.next(table_id, index_id, &row)? {
                        break 'step holder;
                    }
                }
                // The key is free because of deletes: the insert builds on them.
                for v in &versions {
                    if let Some(deleter) = v.version.deleter {
                        self.note_unseen_commit(&mut statuses, deleter)?;
                    }
                }
                let key = Key::Row {
                    table_id,
                    pk: pk.to_vec(),
                    version: own,
                };
                let mut batch = WriteBatch::new();
                for (spec, values) in indexes.specs().iter().zip(&values) {
                    batch.put(Cf::Index, spec.entry(values, pk).encode(), Vec::new());
                }
                batch.put(Cf::Rows, key.encode(), encode(&Version::new(row)));
                self.write(batch)?;
                self.rows
                    .wrote(&self.locks, &row_latch_key(table_id, pk), None);
                self.note_table(table_id);
                self.created.push((table_id, pk.to_vec()));
                return Ok(());
            };
            self.wait(holder)?;
        }
    }

    /// Replaces row `pk` of `table_id` with `row`, adding its entries in `indexes` for values
    /// that changed (checked like an insert's for unique indexes). Returns the version it
    /// replaced, or `None` if the statement does not see the row (or, READ COMMITTED, it was
    /// deleted while this transaction waited). Waits for transactions that hold the row; under
    /// READ COMMITTED the version replaced may be newer than the one the snapshot sees (see
    /// the module doc).
    pub fn update(
        &mut self,
        table_id: u64,
        pk: &[Value],
        row: Vec<u8>,
        indexes: &dyn TableIndexes,
    ) -> Result<Option<Vec<u8>>> {
        self.delete_or_update(table_id, pk, Some(row), indexes, &|_| true)
            .map(Guarded::replaced)
    }

    /// [`Transaction::update`] of the version the statement read: if the version it would
    /// replace (after waiting, the newest under READ COMMITTED) is not the row `unchanged`
    /// accepts, it writes nothing and returns that version as [`Guarded::Changed`], for the
    /// caller to re-check its WHERE clause against — one read and one write where locking the
    /// row first and then updating it would take two of each.
    pub fn update_unchanged(
        &mut self,
        table_id: u64,
        pk: &[Value],
        row: Vec<u8>,
        indexes: &dyn TableIndexes,
        unchanged: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Guarded> {
        self.delete_or_update(table_id, pk, Some(row), indexes, unchanged)
    }

    /// Deletes row `pk` of `table_id`. Returns the version it deleted, or `None`, as
    /// [`Transaction::update`]. Index entries stay: the deleted version still carries them
    /// for the snapshots that see it.
    pub fn delete(&mut self, table_id: u64, pk: &[Value]) -> Result<Option<Vec<u8>>> {
        self.delete_or_update(table_id, pk, None, &NoIndexes, &|_| true)
            .map(Guarded::replaced)
    }

    /// [`Transaction::delete`] of the version the statement read, as
    /// [`Transaction::update_unchanged`].
    pub fn delete_unchanged(
        &mut self,
        table_id: u64,
        pk: &[Value],
        unchanged: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Guarded> {
        self.delete_or_update(table_id, pk, None, &NoIndexes, unchanged)
    }

    fn delete_or_update(
        &mut self,
        table_id: u64,
        pk: &[Value],
        mut new_row: Option<Vec<u8>>,
        indexes: &dyn TableIndexes,
        unchanged: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Guarded> {
        let own = self.writer()?;
        let new_values = match &new_row {
            Some(row) => indexes.values(row)?,
            None => Vec::new(),
        };
        let latches = Transaction::write_latches(table_id, pk, indexes, &new_values);
        let latch_key = row_latch_key(table_id, pk);
        let locks = self.locks.clone();
        loop {
            let retry = 'step: {
                let _latches = locks.latch_all(&latches);
                let engine = self.engine.clone();
                let mut statuses = Statuses::new(&*engine, &self.finals);
                let decided = self.decide(
                    &mut statuses,
                    table_id,
                    pk,
                    &latch_key,
                    Access::Write,
                    Start::Snapshot,
                )?;
                let (versions, target) = match decided {
                    Decided::Act(versions, target) => (versions, target),
                    Decided::Missing => return Ok(Guarded::Missing),
                    Decided::Retry(retry) => break 'step retry,
                };
                if !unchanged(&target.version.row) {
                    return Ok(Guarded::Changed(target.version.row));
                }
                let mut batch = WriteBatch::new();
                if let Some(row) = &new_row {
                    let old_values = indexes.values(&target.version.row)?;
                    for (i, spec) in indexes.specs().iter().enumerate() {
                        if new_values[i] == old_values[i] {
                            continue; // the replaced version carries them: the entry exists
                        }
                        let check = self.check_unique_index(
                            &mut statuses,
                            table_id,
                            pk,
                            indexes,
                            i,
                            &new_values[i],
                        )?;
                        if let Some(holder) = check.next(table_id, Some(spec.id), row)? {
                            break 'step Retry::Wait(holder);
                        }
                        batch.put(
                            Cf::Index,
                            spec.entry(&new_values[i], pk).encode(),
                            Vec::new(),
                        );
                    }
                }
                let mut written = Vec::new();
                match new_row.take() {
                    Some(row) if target.creator == own => {
                        // Updating our own version: replace it in place, with the entries
                        // only it carried.
                        let replacement = StoredVersion {
                            key: target.key.clone(),
                            creator: own,
                            version: Version::new(row),
                        };
                        let all = if indexes.specs().is_empty() {
                            Vec::new()
                        } else {
                            self.versions(table_id, pk)?
                        };
                        let mut kept: Vec<&StoredVersion> =
                            all.iter().filter(|v| v.key != target.key).collect();
                        kept.push(&replacement);
                        for key in orphaned_entries(indexes, pk, &[&target], &kept)? {
                            batch.delete(Cf::Index, key);
                        }
                        batch.put(Cf::Rows, target.key.clone(), encode(&replacement.version));
                        written.push(replacement);
                    }
                    new_row => {
                        // Every other locker has finished: the deleter supersedes them.
                        let old = Version {
                            row: target.version.row.clone(),
                            deleter: Some(own),
                            lockers: Vec::new(),
                        };
                        batch.put(Cf::Rows, target.key.clone(), encode(&old));
                        written.push(StoredVersion {
                            key: target.key.clone(),
                            creator: target.creator,
                            version: old,
                        });
                        if let Some(row) = new_row {
                            let key = Key::Row {
                                table_id,
                                pk: pk.to_vec(),
                                version: own,
                            }
                            .encode();
                            let version = Version::new(row);
                            batch.put(Cf::Rows, key.clone(), encode(&version));
                            written.push(StoredVersion {
                                key,
                                creator: own,
                                version,
                            });
                        }
                    }
                }
                let old = target.version.row.clone();
                let own_version = target.creator == own;
                self.write(batch)?;
                self.rows
                    .wrote(&self.locks, &latch_key, versions.after_write(&written));
                self.note_table(table_id);
                if own_version {
                    self.created.push((table_id, pk.to_vec()));
                } else {
                    self.dirty.add(table_id, pk);
                }
                return Ok(Guarded::Written(old));
            };
            self.retry(retry)?;
        }
    }

    /// Locks row `pk` of `table_id` in `mode` (`SELECT ... FOR UPDATE / FOR SHARE`) and returns
    /// it: the newest version under READ COMMITTED, which the caller re-checks its WHERE
    /// clause against. `None` if the statement does not see the row or it was deleted while
    /// this transaction waited. Waits as an update does; a lock blocks the writes and locks its
    /// mode conflicts with until the transaction ends. Locking a row this transaction wrote, or
    /// locked at least as strongly, changes nothing.
    pub fn lock_row(
        &mut self,
        table_id: u64,
        pk: &[Value],
        mode: RowLockMode,
    ) -> Result<Option<Vec<u8>>> {
        self.lock_version(table_id, pk, mode, Start::Snapshot)
    }

    /// Locks the live version of row `pk` of `table_id` in `mode` whatever the snapshot sees,
    /// and returns it (`INSERT ... ON CONFLICT DO UPDATE` on the row a unique check found, as
    /// PostgreSQL does): READ COMMITTED then updates it; REPEATABLE READ fails with
    /// [`MvccError::Serialization`] if its snapshot does not see it. `None` if the row has no
    /// live version any more.
    pub fn lock_conflicting(
        &mut self,
        table_id: u64,
        pk: &[Value],
        mode: RowLockMode,
    ) -> Result<Option<Vec<u8>>> {
        self.lock_version(table_id, pk, mode, Start::Live)
    }

    fn lock_version(
        &mut self,
        table_id: u64,
        pk: &[Value],
        mode: RowLockMode,
        start: Start,
    ) -> Result<Option<Vec<u8>>> {
        let own = self.writer()?;
        let latch_key = row_latch_key(table_id, pk);
        let locks = self.locks.clone();
        loop {
            let retry = 'step: {
                let _latch = locks.latch(&latch_key);
                let engine = self.engine.clone();
                let mut statuses = Statuses::new(&*engine, &self.finals);
                let access = Access::Lock(mode);
                let decided =
                    self.decide(&mut statuses, table_id, pk, &latch_key, access, start)?;
                let (versions, target) = match decided {
                    Decided::Act(versions, target) => (versions, target),
                    Decided::Missing => return Ok(None),
                    Decided::Retry(retry) => break 'step retry,
                };
                let row = target.version.row.clone();
                let held = target
                    .version
                    .lockers
                    .iter()
                    .any(|l| l.gxid == own && l.mode >= mode);
                if target.creator == own || held {
                    return Ok(Some(row));
                }
                // Keep the lockers that still hold (compatible ones), drop the dead ones.
                let mut lockers = Vec::new();
                for locker in &target.version.lockers {
                    if locker.gxid != own && statuses.in_progress(locker.gxid)? {
                        lockers.push(*locker);
                    }
                }
                lockers.push(RowLocker { gxid: own, mode });
                let locked = Version {
                    row: row.clone(),
                    deleter: target.version.deleter,
                    lockers,
                };
                let mut batch = WriteBatch::new();
                batch.put(Cf::Rows, target.key.clone(), encode(&locked));
                self.write(batch)?;
                let locked = StoredVersion {
                    key: target.key,
                    creator: target.creator,
                    version: locked,
                };
                self.rows
                    .wrote(&self.locks, &latch_key, versions.after_write(&[locked]));
                self.note_table(table_id);
                return Ok(Some(row));
            };
            self.retry(retry)?;
        }
    }

    /// Commits: one synced batch writing status `Committed` (nothing if it never wrote), then
    /// wakes the transactions waiting for it.
    pub fn commit(self) -> Result<()> {
        self.finish(TxnStatus::Committed, true)
    }

    /// Aborts: writes status `Aborted` and wakes the waiters; the dead versions are left to
    /// [`Mvcc::gc`].
    pub fn abort(self) -> Result<()> {
        self.finish(TxnStatus::Aborted, false)
    }

    /// Prepares for two-phase commit: writes status `Prepared`, synced. Its writes and locks
    /// keep holding their rows until [`Mvcc::commit_prepared`] or [`Mvcc::rollback_prepared`].
    pub fn prepare(self) -> Result<()> {
        self.prepare_with(WriteBatch::new())
    }

    /// [`Transaction::prepare`], writing `with` (the caller's record of the prepared
    /// transaction) in the same synced batch: one fsync for both.
    pub fn prepare_with(self, with: WriteBatch) -> Result<()> {
        let gxid = self.writer()?;
        let mut batch = with;
        batch.sync = true;
        put_status(&mut batch, gxid, TxnStatus::Prepared);
        self.engine.write(batch)?;
        self.locks.transaction_finished();
        Ok(())
    }

    fn finish(self, status: TxnStatus, sync: bool) -> Result<()> {
        let Some(gxid) = self.gxid else {
            return Ok(());
        };
        if !self.wrote {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        batch.sync = sync;
        put_status(&mut batch, gxid, status);
        self.engine.write(batch)?;
        self.locks.transaction_finished();
        if status == TxnStatus::Aborted {
            for (table_id, pk) in &self.created {
                self.dirty.add(*table_id, pk);
            }
        }
        Ok(())
    }
}

/// What an update or delete of the version a statement read did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Guarded {
    /// Written: the version it replaced or deleted.
    Written(Vec<u8>),
    /// The statement does not see the row, or (READ COMMITTED) it was deleted meanwhile.
    Missing,
    /// Nothing written: the version to act on is not the one read; here it is.
    Changed(Vec<u8>),
}

impl Guarded {
    /// The version replaced, if written (the unguarded calls never see `Changed`).
    fn replaced(self) -> Option<Vec<u8>> {
        match self {
            Guarded::Written(old) => Some(old),
            Guarded::Missing | Guarded::Changed(_) => None,
        }
    }
}

/// The bytes that choose a row's latch: the prefix of its versions' keys.
pub(super) fn row_latch_key(table_id: u64, pk: &[Value]) -> Vec<u8> {
    KeyPrefix::RowVersions {
        table_id,
        pk: pk.to_vec(),
    }
    .encode()
}

/// Every version of row `pk` of `table_id`, newest creator first.
pub(super) fn read_versions(
    engine: &dyn Engine,
    table_id: u64,
    pk: &[Value],
) -> Result<Vec<StoredVersion>> {
    Ok(read_row_versions(engine, &row_latch_key(table_id, pk), None, |_| Ok(false))?.0)
}

/// The versions of the row whose keys start with `prefix` (its [`row_latch_key`]), newest
/// creator first: created by `floor` or later if there is a floor — reading stops at the
/// floor's key, so the tombstones of the versions garbage collection removed below it are
/// never stepped over — and up to and including the first for which `last` says so. With
/// whether they are all of them (down to the floor): none said so.
pub(super) fn read_row_versions(
    engine: &dyn Engine,
    prefix: &[u8],
    floor: Option<Gxid>,
    mut last: impl FnMut(&StoredVersion) -> Result<bool>,
) -> Result<(Vec<StoredVersion>, bool)> {
    let mut range = KeyRange::prefix(prefix);
    if let Some(floor) = floor {
        range.end = Bound::Included(keys::row_version_key(prefix, floor));
    }
    let mut out = Vec::new();
    for item in engine.scan_row_versions(range) {
        let (key, value) = item?;
        let v = stored(key, &value)?;
        let stop = last(&v)?;
        out.push(v);
        if stop {
            return Ok((out, false));
        }
    }
    Ok((out, true))
}

fn stored(key: Vec<u8>, value: &[u8]) -> Result<StoredVersion> {
    let Key::Row { version, .. } = Key::decode(&key)? else {
        return Err(errdata!("not a row key in rows").into());
    };
    Ok(StoredVersion {
        key,
        creator: version,
        version: decode(value)?,
    })
}

/// Decodes a stored row version's value (for tools and tests).
pub fn decode_version(value: &[u8]) -> Result<Version> {
    decode(value)
}

/// Decodes a stored transaction status (for tools and tests).
pub fn decode_status(value: &[u8]) -> Result<TxnStatus> {
    decode(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates() {
        assert_eq!(MvccError::Serialization.sqlstate(), Some("40001"));
        let unique = MvccError::UniqueViolation {
            table_id: 1,
            index_id: None,
            existing: vec![Value::Text("a".into())],
            row: Vec::new(),
        };
        assert_eq!(unique.sqlstate(), Some("23505"));
        let deadlock = MvccError::Deadlock {
            detail: "Process 3 waits".into(),
        };
        assert_eq!(deadlock.sqlstate(), Some("40P01"));
        assert_eq!(deadlock.to_string(), "deadlock detected");
        assert_eq!(deadlock.detail(), Some("Process 3 waits"));
        assert_eq!(MvccError::LockTimeout.sqlstate(), Some("55P03"));
        assert_eq!(
            MvccError::LockTimeout.to_string(),
            "canceling statement due to lock timeout"
        );
        for (reason, message) in [
            (CancelReason::UserRequest, "user request"),
            (CancelReason::StatementTimeout, "statement timeout"),
        ] {
            let canceled = MvccError::Canceled(reason);
            assert_eq!(canceled.sqlstate(), Some("57014"));
            assert_eq!(
                canceled.to_string(),
                format!("canceling statement due to {message}")
            );
        }
    }

    #[test]
    fn values_roundtrip() {
        let v = Version {
            row: b"x".to_vec(),
            deleter: Some(Gxid(7)),
            lockers: vec![
                RowLocker {
                    gxid: Gxid(8),
                    mode: RowLockMode::Share,
                },
                RowLocker {
                    gxid: Gxid(9),
                    mode: RowLockMode::Update,
                },
            ],
        };
        assert_eq!(decode_version(&encode(&v)).unwrap(), v);
        for s in [
            TxnStatus::Running,
            TxnStatus::Prepared,
            TxnStatus::Committed,
            TxnStatus::Aborted,
        ] {
            assert_eq!(decode_status(&encode(&s)).unwrap(), s);
        }
    }
}
