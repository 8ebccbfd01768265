//! Multi-version concurrency control over an [`Engine`]: row versions stamped with the GXID that
//! wrote them, the local commit status of each GXID, and the visibility rule of the design brief
//! (§3). GXIDs and snapshots come from outside (the GTM, through the coordinator): this layer
//! never assigns them.
//!
//! ```text
//!   coordinator / GTM ── gxid, snapshot, isolation ──▶ Mvcc::begin ─▶ Transaction
//!                                                                       │ insert/update/delete
//!                                                                       │ get/scan (Snapshot::sees)
//!                                                                       │ commit/abort/prepare
//!                                                                       ▼
//!   cf rows        Row { table_id, pk, version: creator }  →  Version { row, deleter }
//!                  (a row's versions newest creator first)
//!   cf txn_status  TxnStatus { gxid }  →  Running | Prepared | Committed | Aborted
//! ```
//!
//! # Writes, commit and abort
//!
//! As in PostgreSQL's heap, a transaction's writes go to the engine at once (unsynced): an
//! insert writes a version under its own GXID; a delete sets `deleter` on the version it
//! deletes; an update does both. Those versions are invisible to everyone else until the
//! transaction's status says `Committed`. Commit is one synced batch writing that status (group
//! commit shares the fsync); abort writes `Aborted` and leaves the dead versions to [`Mvcc::gc`].
//!
//! The first write of a transaction also writes status `Running` in the same batch. A missing
//! status and `Running` both mean "in progress"; `Running` lets [`Mvcc::recover`] find, after a
//! restart, every writer that neither committed, aborted nor prepared, and mark it `Aborted`
//! (it crashed). Because the marker travels in the same batch as the first version, no version
//! can reach disk without it.
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
//! # Write conflicts
//!
//! Before a write to a row, every version of it is checked, as PostgreSQL does:
//!
//! - a creator or deleter that is another transaction still in progress (or prepared) holds the
//!   row: [`MvccError::Conflict`] names it. The caller will wait for it and retry; the waiting
//!   itself comes with the lock manager in the next increment.
//! - for update and delete, a version visible to the snapshot must exist (else nothing is
//!   updated). If a writer that committed after the snapshot changed the row since, the write
//!   fails with [`MvccError::Serialization`] (40001) — for REPEATABLE READ as in PostgreSQL,
//!   and for now also for READ COMMITTED, which PostgreSQL would let re-check its WHERE clause
//!   on the newest version (EvalPlanQual); that comes with the lock manager.
//! - an insert over a live version (own or committed, visible or not) is a
//!   [`MvccError::UniqueViolation`] (23505), as PostgreSQL's unique check sees committed rows
//!   whatever the snapshot.
//!
//! The check and the write are one step under a node-wide write latch, so two writers cannot
//! both pass the check for the same row. Reads, commits and aborts do not take it. (A latch per
//! row, or the lock manager that brings waiting, can replace it.)
//!
//! # Two-phase commit and recovery
//!
//! [`Transaction::prepare`] writes `Prepared`, synced. Prepared versions stay invisible and keep
//! conflicting; [`Mvcc::commit_prepared`] and [`Mvcc::rollback_prepared`] finish them, also from
//! a fresh `Mvcc` over a reopened engine. [`Mvcc::recover`] must run once at startup, before any
//! transaction begins.
//!
//! # Garbage collection
//!
//! [`Mvcc::gc`] removes versions of aborted transactions and versions whose deleter committed
//! below `global_xmin` (no snapshot can see them any more), examining at most `budget` versions
//! per call and continuing where the previous call stopped.

use super::keycode::Value;
use super::keys::{Key, KeyPrefix};
use super::{Cf, Engine, KeyRange, StorageError, WriteBatch};
use crate::{errdata, errinput};
use rxc_common::txn::{Gxid, Isolation, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

/// SQLSTATE of a serialization failure.
pub const SQLSTATE_SERIALIZATION_FAILURE: &str = "40001";
/// SQLSTATE of a unique violation.
pub const SQLSTATE_UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE of a write in a read-only transaction.
pub const SQLSTATE_READ_ONLY: &str = "25006";

/// The result of an MVCC operation.
pub type Result<T, E = MvccError> = std::result::Result<T, E>;

/// An MVCC failure, grouped by what the caller must do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MvccError {
    /// Another transaction, still in progress or prepared, has written the row: wait for it to
    /// finish, then retry the write.
    #[error("row is locked by transaction {holder}")]
    Conflict {
        /// The transaction to wait for.
        holder: Gxid,
    },
    /// A REPEATABLE READ transaction met a row changed after its snapshot: abort and retry.
    #[error("could not serialize access due to concurrent update")]
    Serialization,
    /// An insert met a live row with the same primary key.
    #[error("duplicate key value violates unique constraint: table {table_id} key {pk}")]
    UniqueViolation {
        /// The table.
        table_id: u64,
        /// The primary key, for the message.
        pk: String,
    },
    /// A write in a read-only transaction.
    #[error("cannot write in a read-only transaction")]
    ReadOnly,
    /// The storage failed or the caller misused the API.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl MvccError {
    /// The SQLSTATE a SQL client sees, if the error has one of its own.
    pub fn sqlstate(&self) -> Option<&'static str> {
        match self {
            MvccError::Serialization => Some(SQLSTATE_SERIALIZATION_FAILURE),
            MvccError::UniqueViolation { .. } => Some(SQLSTATE_UNIQUE_VIOLATION),
            MvccError::ReadOnly => Some(SQLSTATE_READ_ONLY),
            MvccError::Conflict { .. } | MvccError::Storage(_) => None,
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
    /// Whether the transaction is still in progress (its writes hold their rows).
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
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard encoding of MVCC values cannot fail")
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| errdata!("undecodable MVCC value: {e}").into())
}

fn show_pk(pk: &[Value]) -> String {
    format!("{pk:?}")
}

/// Reads and caches local transaction statuses for one operation. Only final statuses could be
/// cached forever; one operation is short enough to cache every status it reads.
struct Statuses<'a> {
    engine: &'a dyn Engine,
    cache: HashMap<Gxid, Option<TxnStatus>>,
}

impl<'a> Statuses<'a> {
    fn new(engine: &'a dyn Engine) -> Self {
        Statuses {
            engine,
            cache: HashMap::new(),
        }
    }

    fn get(&mut self, gxid: Gxid) -> Result<Option<TxnStatus>> {
        if let Some(status) = self.cache.get(&gxid) {
            return Ok(*status);
        }
        let status = read_status(self.engine, gxid)?;
        self.cache.insert(gxid, status);
        Ok(status)
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
    /// Makes each write's conflict check and its write one atomic step (see the module doc).
    write_latch: Arc<Mutex<()>>,
    /// Where the next [`Mvcc::gc`] call continues (the last row key it examined).
    gc_cursor: Mutex<Option<Vec<u8>>>,
}

impl Mvcc {
    /// The MVCC layer over `engine`. Call [`Mvcc::recover`] before the first transaction.
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        Mvcc {
            engine,
            write_latch: Arc::new(Mutex::new(())),
            gc_cursor: Mutex::new(None),
        }
    }

    /// The engine underneath.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// A writing transaction with the GXID and snapshot the GTM gave it.
    pub fn begin(&self, gxid: Gxid, snapshot: Snapshot, isolation: Isolation) -> Transaction {
        Transaction {
            engine: self.engine.clone(),
            write_latch: self.write_latch.clone(),
            gxid: Some(gxid),
            snapshot,
            isolation,
            wrote: false,
        }
    }

    /// A read-only transaction (no GXID) reading with `snapshot`.
    pub fn read_only(&self, snapshot: Snapshot) -> Transaction {
        Transaction {
            engine: self.engine.clone(),
            write_latch: self.write_latch.clone(),
            gxid: None,
            snapshot,
            isolation: Isolation::RepeatableRead,
            wrote: false,
        }
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
        Ok(aborted)
    }

    fn finish_prepared(&self, gxid: Gxid, status: TxnStatus) -> Result<()> {
        match self.status(gxid)? {
            Some(TxnStatus::Prepared) => {}
            Some(other) => {
                return Err(errinput!("transaction {gxid} is {other:?}, not prepared").into())
            }
            None => return Err(errinput!("transaction {gxid} is not prepared").into()),
        }
        let mut batch = WriteBatch::synced();
        put_status(&mut batch, gxid, status);
        self.engine.write(batch)?;
        Ok(())
    }

    /// Commits a prepared transaction (COMMIT PREPARED).
    pub fn commit_prepared(&self, gxid: Gxid) -> Result<()> {
        self.finish_prepared(gxid, TxnStatus::Committed)
    }

    /// Rolls back a prepared transaction (ROLLBACK PREPARED).
    pub fn rollback_prepared(&self, gxid: Gxid) -> Result<()> {
        self.finish_prepared(gxid, TxnStatus::Aborted)
    }

    /// Removes dead versions: those of aborted transactions and those whose deleter committed
    /// below `global_xmin`. Examines at most `budget` versions, continuing after the last call's
    /// position (and wrapping around at the end). Returns how many versions it removed.
    pub fn gc(&self, global_xmin: Gxid, budget: usize) -> Result<usize> {
        let mut cursor = self.gc_cursor.lock().expect("gc cursor lock poisoned");
        let mut range = KeyRange::all();
        if let Some(after) = cursor.take() {
            range.start = Bound::Excluded(after);
        }
        let mut statuses = Statuses::new(&*self.engine);
        let mut batch = WriteBatch::new();
        let mut examined = 0;
        let mut last = None;
        for item in self.engine.scan(Cf::Rows, range) {
            if examined == budget {
                break;
            }
            let (key, value) = item?;
            examined += 1;
            let Key::Row { version, .. } = Key::decode(&key)? else {
                return Err(errdata!("not a row key in rows").into());
            };
            let deleter = decode::<Version>(&value)?.deleter;
            let aborted = statuses.get(version)? == Some(TxnStatus::Aborted);
            let deleted = match deleter {
                Some(d) => d < global_xmin && statuses.get(d)? == Some(TxnStatus::Committed),
                None => false,
            };
            if aborted || deleted {
                batch.delete(Cf::Rows, key.clone());
            }
            last = Some(key);
        }
        // Stopped early: continue after the last key next time; else start over.
        if examined == budget {
            *cursor = last;
        }
        let removed = batch.len();
        self.engine.write(batch)?;
        Ok(removed)
    }
}

/// One stored version of a row, decoded.
struct StoredVersion {
    key: Vec<u8>,
    creator: Gxid,
    version: Version,
}

/// A transaction: a writer with a GXID, or a read-only reader.
pub struct Transaction {
    engine: Arc<dyn Engine>,
    write_latch: Arc<Mutex<()>>,
    gxid: Option<Gxid>,
    snapshot: Snapshot,
    isolation: Isolation,
    /// Whether the transaction has written (and so has a `Running` status).
    wrote: bool,
}

impl Transaction {
    /// The transaction's GXID (`None` for a read-only one).
    pub fn gxid(&self) -> Option<Gxid> {
        self.gxid
    }

    /// The snapshot reads use.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
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
        self.snapshot = snapshot;
        Ok(())
    }

    fn writer(&self) -> Result<Gxid> {
        self.gxid.ok_or(MvccError::ReadOnly)
    }

    /// Whether this transaction sees the writes of `gxid`.
    fn sees(&self, statuses: &mut Statuses, gxid: Gxid) -> Result<bool> {
        if self.gxid == Some(gxid) {
            return Ok(true);
        }
        if !self.snapshot.is_finished(gxid) {
            return Ok(false);
        }
        let committed = statuses.get(gxid)? == Some(TxnStatus::Committed);
        Ok(self.snapshot.sees(self.gxid, gxid, |_| committed))
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

    fn versions(&self, table_id: u64, pk: &[Value]) -> Result<Vec<StoredVersion>> {
        let prefix = KeyPrefix::RowVersions {
            table_id,
            pk: pk.to_vec(),
        };
        let mut out = Vec::new();
        for item in self.engine.scan_prefix(Cf::Rows, &prefix.encode()) {
            let (key, value) = item?;
            out.push(stored(key, &value)?);
        }
        Ok(out)
    }

    /// The row `pk` of `table_id` as this transaction sees it.
    pub fn get(&self, table_id: u64, pk: &[Value]) -> Result<Option<Vec<u8>>> {
        let mut statuses = Statuses::new(&*self.engine);
        for v in self.versions(table_id, pk)? {
            if self.visible(&mut statuses, &v)? {
                return Ok(Some(v.version.row));
            }
        }
        Ok(None)
    }

    /// Every row of `table_id` this transaction sees, in primary-key order.
    pub fn scan(&self, table_id: u64) -> Result<Vec<(Vec<Value>, Vec<u8>)>> {
        let mut statuses = Statuses::new(&*self.engine);
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

    /// Checks the versions of a row before a write: returns the in-progress holder as a
    /// conflict, and under REPEATABLE READ fails if a writer this snapshot does not see
    /// committed a change to the row (only when `check_serialization`).
    fn check_conflicts(
        &self,
        statuses: &mut Statuses,
        versions: &[StoredVersion],
        check_serialization: bool,
    ) -> Result<()> {
        let own = self.writer()?;
        let mut unseen_commit = false;
        for v in versions {
            if statuses.get(v.creator)? == Some(TxnStatus::Aborted) {
                continue;
            }
            let writers = std::iter::once(v.creator).chain(v.version.deleter);
            for gxid in writers {
                if gxid == own {
                    continue;
                }
                let status = statuses.get(gxid)?;
                if TxnStatus::in_progress(status) {
                    return Err(MvccError::Conflict { holder: gxid });
                }
                if status == Some(TxnStatus::Committed) && !self.snapshot.is_finished(gxid) {
                    unseen_commit = true;
                }
            }
        }
        // Until the lock manager brings PostgreSQL's re-check (EvalPlanQual), READ COMMITTED
        // fails too rather than write a row computed from a version that is no longer the
        // newest (a lost update).
        if check_serialization && unseen_commit {
            return Err(MvccError::Serialization);
        }
        Ok(())
    }

    /// The live version of a row: created by a transaction that did not abort, and not deleted
    /// by one that did not abort. After the conflict check these are all committed or own.
    fn live<'v>(
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

    /// Writes `batch`, with the `Running` marker on the transaction's first write.
    fn write(&mut self, mut batch: WriteBatch) -> Result<()> {
        if !self.wrote {
            put_status(&mut batch, self.writer()?, TxnStatus::Running);
        }
        self.engine.write(batch)?;
        self.wrote = true;
        Ok(())
    }

    /// Inserts row `pk` of `table_id`.
    pub fn insert(&mut self, table_id: u64, pk: &[Value], row: Vec<u8>) -> Result<()> {
        let own = self.writer()?;
        let latch = self.write_latch.clone();
        let _latch = latch.lock().unwrap_or_else(|e| e.into_inner());
        let mut statuses = Statuses::new(&*self.engine);
        let versions = self.versions(table_id, pk)?;
        self.check_conflicts(&mut statuses, &versions, false)?;
        if Self::live(&mut statuses, &versions)?.is_some() {
            return Err(MvccError::UniqueViolation {
                table_id,
                pk: show_pk(pk),
            });
        }
        let key = Key::Row {
            table_id,
            pk: pk.to_vec(),
            version: own,
        };
        let mut batch = WriteBatch::new();
        let version = Version { row, deleter: None };
        batch.put(Cf::Rows, key.encode(), encode(&version));
        self.write(batch)
    }

    /// Replaces row `pk` of `table_id` with `row`. Returns whether the row existed.
    pub fn update(&mut self, table_id: u64, pk: &[Value], row: Vec<u8>) -> Result<bool> {
        self.delete_or_update(table_id, pk, Some(row))
    }

    /// Deletes row `pk` of `table_id`. Returns whether the row existed.
    pub fn delete(&mut self, table_id: u64, pk: &[Value]) -> Result<bool> {
        self.delete_or_update(table_id, pk, None)
    }

    fn delete_or_update(
        &mut self,
        table_id: u64,
        pk: &[Value],
        new_row: Option<Vec<u8>>,
    ) -> Result<bool> {
        let own = self.writer()?;
        let latch = self.write_latch.clone();
        let _latch = latch.lock().unwrap_or_else(|e| e.into_inner());
        let mut statuses = Statuses::new(&*self.engine);
        let versions = self.versions(table_id, pk)?;
        // The statement finds the row through its snapshot, or not at all.
        let mut found = false;
        for v in &versions {
            if self.visible(&mut statuses, v)? {
                found = true;
                break;
            }
        }
        if !found {
            return Ok(false);
        }
        self.check_conflicts(&mut statuses, &versions, true)?;
        // READ COMMITTED follows the row to its newest committed version (EvalPlanQual); it
        // may have been deleted meanwhile.
        let Some(live) = Self::live(&mut statuses, &versions)? else {
            return Ok(false);
        };
        let mut batch = WriteBatch::new();
        match new_row {
            Some(row) if live.creator == own => {
                // Updating our own version: replace it in place.
                let version = Version { row, deleter: None };
                batch.put(Cf::Rows, live.key.clone(), encode(&version));
            }
            new_row => {
                let old = Version {
                    row: live.version.row.clone(),
                    deleter: Some(own),
                };
                batch.put(Cf::Rows, live.key.clone(), encode(&old));
                if let Some(row) = new_row {
                    let key = Key::Row {
                        table_id,
                        pk: pk.to_vec(),
                        version: own,
                    };
                    let version = Version { row, deleter: None };
                    batch.put(Cf::Rows, key.encode(), encode(&version));
                }
            }
        }
        self.write(batch)?;
        Ok(true)
    }

    /// Commits: one synced batch writing status `Committed` (nothing if it never wrote).
    pub fn commit(self) -> Result<()> {
        self.finish(TxnStatus::Committed, true)
    }

    /// Aborts: writes status `Aborted`; the dead versions are left to [`Mvcc::gc`].
    pub fn abort(self) -> Result<()> {
        self.finish(TxnStatus::Aborted, false)
    }

    /// Prepares for two-phase commit: writes status `Prepared`, synced. Finish it with
    /// [`Mvcc::commit_prepared`] or [`Mvcc::rollback_prepared`].
    pub fn prepare(self) -> Result<()> {
        let gxid = self.writer()?;
        let mut batch = WriteBatch::synced();
        put_status(&mut batch, gxid, TxnStatus::Prepared);
        self.engine.write(batch)?;
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
        Ok(())
    }
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
            pk: "a".into(),
        };
        assert_eq!(unique.sqlstate(), Some("23505"));
        assert_eq!(MvccError::Conflict { holder: Gxid(3) }.sqlstate(), None);
    }

    #[test]
    fn values_roundtrip() {
        let v = Version {
            row: b"x".to_vec(),
            deleter: Some(Gxid(7)),
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
