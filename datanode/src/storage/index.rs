//! Secondary index entries in the MVCC layer: what an index is to storage ([`IndexSpec`]), how
//! the layer reads indexed values out of rows it otherwise treats as opaque bytes
//! ([`TableIndexes`]), index scans, unique checks, index builds and which entries GC removes.
//!
//! ```text
//!   cf index   Index { index_id, values (each ASC or DESC), pk }  →  (empty)
//!                 │ points at a row, not at a version
//!                 ▼
//!   cf rows    Row { table_id, pk, version } → Version { row, deleter, lockers }
//!                 └─ TableIndexes::values(row) says which values a version carries
//! ```
//!
//! # MVCC of entries
//!
//! As in PostgreSQL, entries are not versioned: an entry says "some version of row `pk` may
//! carry these values". The entry goes into the same write batch as the version that first
//! carries the values (an insert, or an update that changes them), so a crash never separates
//! them; an update that keeps an index's values adds nothing to that index. A reader
//! ([`Transaction::index_scan`]) takes each entry in range, fetches the row through its
//! snapshot and keeps it only if the visible version carries the entry's values: a row whose
//! values changed is found once, through the entry of the values its snapshot sees, and an
//! entry whose versions are all invisible (aborted, deleted, not yet committed) finds nothing.
//! An entry lives as long as a version of its row carries its values: [`Mvcc::gc`] removes it
//! with the last such version, and a transaction that overwrites its own version in place
//! removes the entries only that version carried.
//!
//! # Uniqueness
//!
//! A write that gives a row values for a unique index (an insert, or an update that changes
//! them) checks, as PostgreSQL's `_bt_check_unique` does, every other row with an entry of those
//! values: a version carrying them whose creator or deleter is another transaction still in
//! progress (or prepared) is waited for, then the check starts over; a version carrying them
//! that is live — created by a transaction that committed (whatever the snapshot) or by this
//! one, and not deleted by a transaction that committed or by this one — is a
//! [`MvccError::UniqueViolation`]. NULLs never conflict unless the index says NULLS NOT
//! DISTINCT. Check and write happen under the latches of the row and of each checked index's
//! values ([`LockManager::latch_all`](super::locks::LockManager::latch_all)), so two writers of
//! equal values with different primary keys are serialized: the second finds the first's
//! entry and waits for it. The rules are checked in [`TableIndexes::check_order`], the primary
//! key first unless the caller says otherwise (`INSERT ... ON CONFLICT` checks its arbiters
//! first, as PostgreSQL's pre-check does).
//!
//! # Builds
//!
//! [`Transaction::build_index`] writes, row by row under the row's latch, the entries of every
//! version that did not abort, so every snapshot that can see a row finds it; for a unique
//! index it first waits for writers of the row still in progress and checks the row's live
//! version like an insert.

use super::keycode::{Order, Value};
use super::keys::{Key, KeyPrefix};
use super::mvcc::TxnStatus;
use super::mvcc::{row_latch_key, MvccError, Result, Statuses, StoredVersion, Transaction};
use super::{prefix_successor, Cf, KeyRange, StorageError, WriteBatch};
use crate::errdata;
use rxc_common::txn::Gxid;
use std::collections::BTreeSet;
use std::ops::Bound;

/// A secondary index as storage maintains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSpec {
    /// The index's storage id.
    pub id: u64,
    /// Each indexed column's order.
    pub orders: Vec<Order>,
    /// Whether two live rows may not carry equal values.
    pub unique: bool,
    /// Whether NULLs are distinct from each other for uniqueness (PostgreSQL's default; false
    /// for UNIQUE NULLS NOT DISTINCT).
    pub nulls_distinct: bool,
}

impl IndexSpec {
    /// The entry saying that row `pk` carries `values`.
    pub fn entry(&self, values: &[Value], pk: &[Value]) -> Key {
        Key::Index {
            index_id: self.id,
            values: values.to_vec(),
            orders: self.orders.clone(),
            pk: pk.to_vec(),
        }
    }

    /// The prefix of every entry of `values` (all the index's columns, or the leading ones).
    fn values_prefix(&self, values: &[Value]) -> Vec<u8> {
        KeyPrefix::IndexValues {
            index_id: self.id,
            values: values.to_vec(),
            orders: self.orders.clone(),
        }
        .encode()
    }

    /// Whether a row carrying `values` must be checked for uniqueness.
    fn checks(&self, values: &[Value]) -> bool {
        self.unique && !(self.nulls_distinct && values.iter().any(|v| matches!(v, Value::Null)))
    }
}

/// A uniqueness rule of a table, in the order [`TableIndexes::check_order`] gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniqueRule {
    /// The primary key (the row key itself).
    PrimaryKey,
    /// The unique index at this position of [`TableIndexes::specs`].
    Index(usize),
}

/// A table's secondary indexes, and how to read their values out of its stored rows. The SQL
/// layer implements it: only it knows the row format.
pub trait TableIndexes {
    /// The indexes.
    fn specs(&self) -> &[IndexSpec];

    /// The values `row` carries for each index, in the order of [`TableIndexes::specs`].
    fn values(&self, row: &[u8]) -> Result<Vec<Vec<Value>>, StorageError>;

    /// The uniqueness rules an insert checks before the others, so that a violation of one
    /// of them is the one reported (the arbiters of `INSERT ... ON CONFLICT`). The others
    /// follow in the usual order: the primary key, then the unique indexes in order.
    fn checked_first(&self) -> Vec<UniqueRule> {
        Vec::new()
    }
}

/// The order in which an insert checks `indexes`' uniqueness rules: those
/// [`TableIndexes::checked_first`] names, then the primary key and the unique indexes.
pub(super) fn check_order(indexes: &dyn TableIndexes) -> Vec<UniqueRule> {
    let mut order = indexes.checked_first();
    let usual = std::iter::once(UniqueRule::PrimaryKey).chain(
        (0..indexes.specs().len())
            .filter(|&i| indexes.specs()[i].unique)
            .map(UniqueRule::Index),
    );
    for rule in usual {
        if !order.contains(&rule) {
            order.push(rule);
        }
    }
    order
}

/// A table without secondary indexes (the catalog's own tables).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoIndexes;

impl TableIndexes for NoIndexes {
    fn specs(&self) -> &[IndexSpec] {
        &[]
    }

    fn values(&self, _row: &[u8]) -> Result<Vec<Vec<Value>>, StorageError> {
        Ok(Vec::new())
    }
}

/// Where [`Mvcc::gc`] learns each table's indexes.
pub trait IndexCatalog {
    /// The indexes of `table_id`; `None` for a table without indexes or one no longer known.
    fn table_indexes(&self, table_id: u64) -> Result<Option<Box<dyn TableIndexes + '_>>>;
}

/// A stretch of an index: the leading columns equal to `prefix`, the next column within
/// `lower` and `upper` (unbounded: every value of it, NULL included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexRange {
    /// Values of the leading columns.
    pub prefix: Vec<Value>,
    /// Lower bound of the next column, in SQL order (whatever the column's key order).
    pub lower: Bound<Value>,
    /// Upper bound of the next column, in SQL order.
    pub upper: Bound<Value>,
}

impl IndexRange {
    /// Every entry whose leading values equal `prefix`.
    pub fn equal(prefix: Vec<Value>) -> Self {
        IndexRange {
            prefix,
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
        }
    }

    /// The keys of `spec`'s entries in the range. A descending column stores larger values
    /// first, so its SQL bounds swap ends.
    pub fn key_range(&self, spec: &IndexSpec) -> KeyRange {
        let prefix = spec.values_prefix(&self.prefix);
        let all = KeyRange::prefix(&prefix);
        let column = self.prefix.len();
        if column >= spec.orders.len() {
            return all;
        }
        let (first, last) = match spec.orders[column] {
            Order::Asc => (&self.lower, &self.upper),
            Order::Desc => (&self.upper, &self.lower),
        };
        // The keys of entries whose next value is `v`: [with(v), successor(with(v))).
        let with = |v: &Value| {
            let mut values = self.prefix.clone();
            values.push(v.clone());
            spec.values_prefix(&values)
        };
        // Entry keys start with the index tag, never all 0xff: a successor always exists.
        let after = |v: &Value| prefix_successor(&with(v));
        let start = match first {
            Bound::Unbounded => all.start.clone(),
            Bound::Included(v) => Bound::Included(with(v)),
            Bound::Excluded(v) => after(v).map_or(all.start.clone(), Bound::Included),
        };
        let end = match last {
            Bound::Unbounded => all.end,
            Bound::Included(v) => after(v).map_or(Bound::Unbounded, Bound::Excluded),
            Bound::Excluded(v) => Bound::Excluded(with(v)),
        };
        KeyRange { start, end }
    }
}

/// What checking one uniqueness rule found.
pub(super) enum Check {
    /// No other live row carries the values.
    Free,
    /// A transaction in progress may be about to: wait for it, then check again.
    Wait(Gxid),
    /// This row carries them (its primary key).
    Conflict(Vec<Value>),
}

impl Check {
    /// What the write does next: go on (`None`), wait for the holder, or fail with the
    /// violation of `index_id` (`None`: the primary key) by `row` of `table_id`.
    pub(super) fn next(
        self,
        table_id: u64,
        index_id: Option<u64>,
        row: &[u8],
    ) -> Result<Option<Gxid>> {
        match self {
            Check::Free => Ok(None),
            Check::Wait(holder) => Ok(Some(holder)),
            Check::Conflict(existing) => Err(MvccError::UniqueViolation {
                table_id,
                index_id,
                existing,
                row: row.to_vec(),
            }),
        }
    }
}

/// Where the build of one row stands.
enum BuildStep {
    /// Its entries are written.
    Done,
    /// Its live version changed between the guess and the latch: once more.
    Again,
    /// A writer of the row (or of a row with equal values) is in progress: wait for it.
    Wait(Gxid),
}

/// The entries only the versions in `removed` carry: each index's values of a removed
/// version that no version of `kept` carries, as keys of row `pk`.
pub(super) fn orphaned_entries(
    indexes: &dyn TableIndexes,
    pk: &[Value],
    removed: &[&StoredVersion],
    kept: &[&StoredVersion],
) -> Result<Vec<Vec<u8>>> {
    let specs = indexes.specs();
    if specs.is_empty() || removed.is_empty() {
        return Ok(Vec::new());
    }
    let mut carried: Vec<BTreeSet<Vec<Value>>> = vec![BTreeSet::new(); specs.len()];
    for v in kept {
        for (i, values) in indexes.values(&v.version.row)?.into_iter().enumerate() {
            carried[i].insert(values);
        }
    }
    let mut out = BTreeSet::new();
    for v in removed {
        for (i, values) in indexes.values(&v.version.row)?.into_iter().enumerate() {
            if !carried[i].contains(&values) {
                out.insert(specs[i].entry(&values, pk).encode());
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// The distinct entries the versions carry.
fn entries_of(
    indexes: &dyn TableIndexes,
    only: Option<usize>,
    pk: &[Value],
    versions: &[&StoredVersion],
) -> Result<BTreeSet<Vec<u8>>> {
    let specs = indexes.specs();
    let mut out = BTreeSet::new();
    for v in versions {
        for (i, values) in indexes.values(&v.version.row)?.into_iter().enumerate() {
            if only.is_none_or(|o| o == i) {
                out.insert(specs[i].entry(&values, pk).encode());
            }
        }
    }
    Ok(out)
}

impl Transaction {
    /// The latch keys of a write of row `pk` carrying `values`: the row's, and those of the
    /// values of each unique index that checks them.
    pub(super) fn write_latches(
        table_id: u64,
        pk: &[Value],
        indexes: &dyn TableIndexes,
        values: &[Vec<Value>],
    ) -> Vec<Vec<u8>> {
        let mut keys = vec![row_latch_key(table_id, pk)];
        for (spec, values) in indexes.specs().iter().zip(values) {
            if spec.checks(values) {
                keys.push(spec.values_prefix(values));
            }
        }
        keys
    }

    /// Checks unique index `i` for row `pk` about to carry `values`: the other rows with an
    /// entry of these values (see "Uniqueness" in the module doc).
    pub(super) fn check_unique_index(
        &mut self,
        statuses: &mut Statuses,
        table_id: u64,
        pk: &[Value],
        indexes: &dyn TableIndexes,
        i: usize,
        values: &[Value],
    ) -> Result<Check> {
        let spec = &indexes.specs()[i];
        if !spec.checks(values) {
            return Ok(Check::Free);
        }
        let own = self.writer()?;
        let engine = self.engine().clone();
        let prefix = spec.values_prefix(values);
        for item in engine.scan_prefix(Cf::Index, &prefix) {
            let (key, _) = item?;
            let Key::Index { pk: other, .. } = Key::decode(&key)? else {
                return Err(errdata!("not an index key in index").into());
            };
            if other == pk {
                continue; // this row: the write replaces its versions
            }
            for v in self.versions(table_id, &other)? {
                if statuses.get(v.creator)? == Some(TxnStatus::Aborted) {
                    continue;
                }
                if indexes.values(&v.version.row)?.get(i).map(Vec::as_slice) != Some(values) {
                    continue; // the entry is another version's
                }
                if v.creator != own && statuses.in_progress(v.creator)? {
                    return Ok(Check::Wait(v.creator));
                }
                let deleted = match v.version.deleter {
                    None => false,
                    Some(d) if d == own => true,
                    Some(d) => match statuses.get(d)? {
                        Some(TxnStatus::Aborted) => false,
                        Some(TxnStatus::Committed) => {
                            // The values are free because of this delete: build on it.
                            self.note_unseen_commit(statuses, d)?;
                            true
                        }
                        _ => return Ok(Check::Wait(d)),
                    },
                };
                if !deleted {
                    return Ok(Check::Conflict(other));
                }
            }
        }
        Ok(Check::Free)
    }

    /// The rows of `table_id` whose entries in index `i` fall in `range` and whose version
    /// this transaction sees still carries the entry's values, in index order.
    pub fn index_scan(
        &self,
        table_id: u64,
        indexes: &dyn TableIndexes,
        i: usize,
        range: &IndexRange,
    ) -> Result<Vec<(Vec<Value>, Vec<u8>)>> {
        // Many rows: one snapshot for all of them, taken before any is read.
        self.take_snapshot()?;
        let spec = indexes
            .specs()
            .get(i)
            .ok_or_else(|| StorageError::InvalidInput(format!("no index at position {i}")))?;
        let engine = self.engine().clone();
        let mut statuses = Statuses::new(&*engine, &self.finals);
        let mut out = Vec::new();
        for item in engine.scan(Cf::Index, range.key_range(spec)) {
            let (key, _) = item?;
            let Key::Index { values, pk, .. } = Key::decode(&key)? else {
                return Err(errdata!("not an index key in index").into());
            };
            let Some(row) = self.visible_row(&mut statuses, table_id, &pk)? else {
                continue;
            };
            if indexes.values(&row)?.get(i) == Some(&values) {
                out.push((pk, row));
            }
        }
        Ok(out)
    }

    /// Writes the entries of index `i` (of `indexes`) for every row of `table_id`, checking
    /// uniqueness for a unique index (see "Builds" in the module doc).
    pub fn build_index(
        &mut self,
        table_id: u64,
        indexes: &dyn TableIndexes,
        i: usize,
    ) -> Result<()> {
        let spec = indexes
            .specs()
            .get(i)
            .ok_or_else(|| StorageError::InvalidInput(format!("no index at position {i}")))?
            .clone();
        let engine = self.engine().clone();
        let mut pks: Vec<Vec<Value>> = Vec::new();
        for item in engine.scan_prefix(Cf::Rows, &KeyPrefix::Row { table_id }.encode()) {
            let (key, _) = item?;
            let Key::Row { pk, .. } = Key::decode(&key)? else {
                return Err(errdata!("not a row key in rows").into());
            };
            if pks.last() != Some(&pk) {
                pks.push(pk);
            }
        }
        let locks = self.lock_manager().clone();
        for pk in pks {
            loop {
                // The live version's values decide the value latch; guessed unlatched, then
                // confirmed under the latches (a latch is never taken while one is held).
                let guess = self.live_values(table_id, &pk, indexes, i)?;
                let mut keys = vec![row_latch_key(table_id, &pk)];
                if let Some(values) = guess.as_ref().filter(|v| spec.checks(v)) {
                    keys.push(spec.values_prefix(values));
                }
                let next = 'step: {
                    let _latches = locks.latch_all(&keys);
                    let mut statuses = Statuses::new(&*engine, &self.finals);
                    let versions = self.versions(table_id, &pk)?;
                    if spec.unique {
                        if let Some(holder) = self.insert_holder(&mut statuses, &versions)? {
                            break 'step BuildStep::Wait(holder);
                        }
                        let live = Transaction::live(&mut statuses, &versions)?;
                        let values = match live {
                            Some(v) => Some(indexes.values(&v.version.row)?.swap_remove(i)),
                            None => None,
                        };
                        if values != guess {
                            break 'step BuildStep::Again; // changed meanwhile: guess again
                        }
                        if let (Some(live), Some(values)) = (live, values) {
                            let check = self.check_unique_index(
                                &mut statuses,
                                table_id,
                                &pk,
                                indexes,
                                i,
                                &values,
                            )?;
                            let row = &live.version.row;
                            if let Some(holder) = check.next(table_id, Some(spec.id), row)? {
                                break 'step BuildStep::Wait(holder);
                            }
                        }
                    }
                    let mut carried = Vec::new();
                    for v in &versions {
                        if statuses.get(v.creator)? != Some(TxnStatus::Aborted) {
                            carried.push(v);
                        }
                    }
                    let mut batch = WriteBatch::new();
                    for key in entries_of(indexes, Some(i), &pk, &carried)? {
                        batch.put(Cf::Index, key, Vec::new());
                    }
                    if !batch.is_empty() {
                        self.write(batch)?;
                    }
                    BuildStep::Done
                };
                match next {
                    BuildStep::Done => break,
                    BuildStep::Again => continue,
                    BuildStep::Wait(holder) => self.wait(holder)?,
                }
            }
        }
        Ok(())
    }

    /// Index `i`'s values of the live version of row `pk`, read without a latch.
    fn live_values(
        &self,
        table_id: u64,
        pk: &[Value],
        indexes: &dyn TableIndexes,
        i: usize,
    ) -> Result<Option<Vec<Value>>> {
        let engine = self.engine().clone();
        let mut statuses = Statuses::new(&*engine, &self.finals);
        let versions = self.versions(table_id, pk)?;
        match Transaction::live(&mut statuses, &versions)? {
            Some(v) => Ok(Some(indexes.values(&v.version.row)?.swap_remove(i))),
            None => Ok(None),
        }
    }
}
