//! Garbage collection of the MVCC layer: row versions no snapshot can see any more, and the
//! index entries that go with them.
//!
//! [`Mvcc::gc`] removes versions of aborted transactions and versions whose deleter committed
//! below `global_xmin`, examining at most `budget` versions per call and continuing where the
//! previous call stopped (wrapping around at the end). Neither kind can carry a lock that
//! still holds (locks sit on live versions, and a deleter waited for every locker), so a
//! prepared transaction's locks are never removed; dead lockers are dropped at the version's
//! next write.
//!
//! A row's dead versions go in one batch under the row's latch, with the index entries that
//! only they carried: for each index, the values of a removed version that no remaining
//! version of the row carries (see [`index`](super::index)). The latch keeps a writer from
//! adding, meanwhile, a version that carries those values again.
//!
//! A dropped table or index (`DROP TABLE`, `DROP INDEX`, the old ids of a table
//! `ALTER TABLE ... ADD PRIMARY KEY` re-keyed) leaves its rows or entries where they are: a
//! snapshot older than the drop still reads them. The dropping transaction records the
//! relation ([`Transaction::drop_relation`], a [`Key::Dropped`] in its own writes); once it
//! committed below `global_xmin` no snapshot sees the relation and nobody can reach it again
//! (ids are never reused), so [`Mvcc::gc_dropped`] deletes its keys, a bounded number a call,
//! and then the record. A record of a transaction that aborted is just deleted.

use super::index::{orphaned_entries, IndexCatalog, TableIndexes};
use super::keycode::Value;
use super::keys::Key;
use super::keys::KeyPrefix;
use super::mvcc::StoredVersion;
use super::mvcc::{decode, encode, read_row_versions, row_latch_key, Mvcc, Result, Statuses};
use super::mvcc::{Transaction, TxnStatus, Version};
use super::row_cache::Run;
use super::{Cf, KeyRange, WriteBatch};
use crate::errdata;
use rxc_common::txn::Gxid;
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// How many dirty rows [`Mvcc::gc_dirty`] takes off the list at a time.
const DIRTY_BATCH: usize = 1_000;
use std::ops::Bound;

impl Mvcc {
    /// Whether the last [`Mvcc::gc`] call finished a pass over every version (the next call
    /// starts over).
    pub fn gc_pass_complete(&self) -> bool {
        self.gc_cursor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// Removes dead versions — those of aborted transactions and those whose deleter committed
    /// below `global_xmin` — with the index entries no remaining version of their row carries
    /// (`catalog` says which indexes a table has). Examines at most `budget` versions,
    /// continuing after the last call's position (and wrapping around at the end).
    /// `global_xmin` is held down to [`Mvcc::horizon`]: what the node's own snapshots see stays.
    pub fn gc(
        &self,
        global_xmin: Gxid,
        budget: usize,
        catalog: &dyn IndexCatalog,
    ) -> Result<GcStats> {
        let global_xmin = self.horizon(global_xmin);
        let mut cursor = self.gc_cursor.lock().expect("gc cursor lock poisoned");
        let mut range = KeyRange::all();
        if let Some(after) = cursor.take() {
            range.start = Bound::Excluded(after);
        }
        let mut statuses = Statuses::new(&**self.engine(), &self.finals);
        let mut tables: HashMap<u64, Option<Box<dyn TableIndexes + '_>>> = HashMap::new();
        let mut stats = GcStats::default();
        // The row being examined and the keys of its dead versions.
        let mut row: Option<(u64, Vec<Value>, BTreeSet<Vec<u8>>)> = None;
        let mut examined = 0;
        let mut last = None;
        for item in self.engine().scan(Cf::Rows, range) {
            if examined == budget {
                break;
            }
            let (key, value) = item?;
            examined += 1;
            let Key::Row {
                table_id,
                pk,
                version,
            } = Key::decode(&key)?
            else {
                return Err(errdata!("not a row key in rows").into());
            };
            if row
                .as_ref()
                .is_some_and(|(t, p, _)| (*t, p) != (table_id, &pk))
            {
                if let Some((t, p, dead)) = row.take() {
                    self.collect(catalog, &mut tables, t, &p, None, None, &dead, &mut stats)?;
                }
            }
            let dead = &mut row.get_or_insert_with(|| (table_id, pk, BTreeSet::new())).2;
            let deleter = decode::<Version>(&value)?.deleter;
            let aborted = statuses.get(version)? == Some(TxnStatus::Aborted);
            let deleted = match deleter {
                Some(d) => d < global_xmin && statuses.get(d)? == Some(TxnStatus::Committed),
                None => false,
            };
            if aborted || deleted {
                dead.insert(key.clone());
            }
            last = Some(key);
        }
        if let Some((t, p, dead)) = row.take() {
            self.collect(catalog, &mut tables, t, &p, None, None, &dead, &mut stats)?;
        }
        // Stopped early: continue after the last key next time; else start over.
        if examined == budget {
            *cursor = last;
        }
        Ok(stats)
    }

    /// Removes the dead versions (and their orphaned index entries) of the rows listed as
    /// dirty — rows that got a deleter, rows an aborted transaction wrote — visiting at most
    /// `max_rows` rows a call, each at most once. A row that still holds a version which may
    /// die later (a deleter not yet below `global_xmin`, a writer in progress) is listed again
    /// when the call ends, so a row written all the time is read once a call, not once per
    /// batch. Visiting only these rows is what keeps rows updated all the time (pgbench's
    /// branches) short without sweeping every version of the node every round. With a
    /// `deadline` it also stops, between batches of rows, once the deadline passed, so a
    /// backlog (a bulk update, a re-keyed table) costs a bounded share of the CPU per call.
    /// `global_xmin` is held down to [`Mvcc::horizon`], as for [`Mvcc::gc`]. A row's versions
    /// are read down to its floor, the oldest version the previous visit kept (at most that
    /// visit's horizon): below it everything is removed, and no writer can add a version there,
    /// since a writer's GXID is at least the horizon.
    pub fn gc_dirty(
        &self,
        global_xmin: Gxid,
        max_rows: usize,
        deadline: Option<Instant>,
        catalog: &dyn IndexCatalog,
    ) -> Result<GcStats> {
        let global_xmin = self.horizon(global_xmin);
        let mut statuses = Statuses::new(&**self.engine(), &self.finals);
        let mut tables: HashMap<u64, Option<Box<dyn TableIndexes + '_>>> = HashMap::new();
        let mut stats = GcStats::default();
        let mut still_dirty = Vec::new();
        let mut visited = 0;
        while visited < max_rows && deadline.is_none_or(|d| Instant::now() < d) {
            let batch = self.dirty.take((max_rows - visited).min(DIRTY_BATCH));
            if batch.is_empty() {
                break;
            }
            visited += batch.len();
            for (table_id, pk) in batch {
                let mut dead = BTreeSet::new();
                let mut pending = false;
                let floor = self.dirty.floor(table_id, &pk);
                let mut new_floor = global_xmin;
                let prefix = row_latch_key(table_id, &pk);
                let writes = self.lock_manager().row_writes(&prefix);
                let (versions, _) =
                    read_row_versions(&**self.engine(), &prefix, floor, |_| Ok(false))?;
                for v in &versions {
                    let creator = statuses.get(v.creator)?;
                    if creator == Some(TxnStatus::Aborted) {
                        dead.insert(v.key.clone());
                        continue;
                    }
                    pending |= TxnStatus::in_progress(creator);
                    let dies = match v.version.deleter {
                        Some(d) => match statuses.get(d)? {
                            Some(TxnStatus::Committed) if d < global_xmin => true,
                            Some(TxnStatus::Aborted) => false,
                            _ => {
                                pending = true;
                                false
                            }
                        },
                        None => false,
                    };
                    if dies {
                        dead.insert(v.key.clone());
                    } else {
                        new_floor = new_floor.min(v.creator);
                    }
                }
                self.collect(
                    catalog,
                    &mut tables,
                    table_id,
                    &pk,
                    floor,
                    Some((writes, versions)),
                    &dead,
                    &mut stats,
                )?;
                // Every version below the new floor is gone now, and no transaction can
                // write one: a writer's GXID is at least `global_xmin`.
                self.dirty.set_floor(table_id, &pk, new_floor);
                if pending {
                    still_dirty.push((table_id, pk));
                }
            }
        }
        for (table_id, pk) in still_dirty {
            self.dirty.add(table_id, &pk);
        }
        Ok(stats)
    }

    /// How many rows are listed for [`Mvcc::gc_dirty`].
    pub fn dirty_rows(&self) -> usize {
        self.dirty.len()
    }

    /// Removes one row's dead versions and orphaned entries, learning the table's indexes
    /// once per GC call. The row's versions are read down to `floor` (or taken from `read`,
    /// see [`Mvcc::collect_row`]).
    #[allow(clippy::too_many_arguments)]
    fn collect<'c>(
        &self,
        catalog: &'c dyn IndexCatalog,
        tables: &mut HashMap<u64, Option<Box<dyn TableIndexes + 'c>>>,
        table_id: u64,
        pk: &[Value],
        floor: Option<Gxid>,
        read: Option<(u64, Vec<StoredVersion>)>,
        dead: &BTreeSet<Vec<u8>>,
        stats: &mut GcStats,
    ) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        let indexes = match tables.entry(table_id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(unknown) => unknown.insert(catalog.table_indexes(table_id)?),
        };
        let indexes = indexes.as_deref();
        let (versions, entries) = self.collect_row(table_id, pk, floor, read, dead, indexes)?;
        stats.versions += versions;
        stats.entries += entries;
        Ok(())
    }

    /// Deletes the dead versions `dead` (keys) of row `pk` of `table_id`, with the index
    /// entries no other version of the row carries, under the row's latch; the row's versions
    /// are read down to `floor` (below it there are none) — unless `read` holds them as read
    /// down to `floor` at a write count (of the row's write slot) that is still the count.
    /// Returns how many versions and entries it removed.
    pub(super) fn collect_row(
        &self,
        table_id: u64,
        pk: &[Value],
        floor: Option<Gxid>,
        read: Option<(u64, Vec<StoredVersion>)>,
        dead: &BTreeSet<Vec<u8>>,
        indexes: Option<&dyn TableIndexes>,
    ) -> Result<(usize, usize)> {
        let prefix = row_latch_key(table_id, pk);
        let _latch = self.lock_manager().latch(&prefix);
        let now = self.lock_manager().row_writes(&prefix);
        let versions = match read {
            Some((writes, versions)) if writes == now => versions,
            _ => read_row_versions(&**self.engine(), &prefix, floor, |_| Ok(false))?.0,
        };
        let (removed, kept): (Vec<StoredVersion>, Vec<StoredVersion>) =
            versions.into_iter().partition(|v| dead.contains(&v.key));
        let mut batch = WriteBatch::new();
        for v in &removed {
            batch.delete(Cf::Rows, v.key.clone());
        }
        let mut entries = 0;
        if let Some(indexes) = indexes {
            let (gone, left): (Vec<_>, Vec<_>) = (removed.iter().collect(), kept.iter().collect());
            for key in orphaned_entries(indexes, pk, &gone, &left)? {
                batch.delete(Cf::Index, key);
                entries += 1;
            }
        }
        self.engine().write(batch)?;
        // What is left is the row's newest versions (all of them when read to the end).
        let removed = removed.len();
        self.wrote_versions(&prefix, Run::new(kept, floor.is_none()));
        Ok((removed, entries))
    }
}

/// What one [`Mvcc::gc`] call removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Row versions.
    pub versions: usize,
    /// Index entries.
    pub entries: usize,
}

/// A dropped relation: whose keys garbage collection removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Relation {
    /// A table's row versions.
    Table(u64),
    /// An index's entries.
    Index(u64),
}

impl Relation {
    fn id(self) -> u64 {
        match self {
            Relation::Table(id) | Relation::Index(id) => id,
        }
    }

    /// Where the relation's keys are.
    fn keys(self) -> (Cf, Vec<u8>) {
        match self {
            Relation::Table(table_id) => (Cf::Rows, KeyPrefix::Row { table_id }.encode()),
            Relation::Index(index_id) => (Cf::Index, KeyPrefix::Index { index_id }.encode()),
        }
    }
}

/// A [`Key::Dropped`] record: who dropped what.
#[derive(Serialize, Deserialize)]
struct DroppedRecord {
    dropper: Gxid,
    relation: Relation,
}

impl Transaction {
    /// Records that this transaction drops `relation`: once it committed below `global_xmin`,
    /// [`Mvcc::gc_dropped`] deletes the relation's keys (see the module doc).
    pub fn drop_relation(&mut self, relation: Relation) -> Result<()> {
        let record = DroppedRecord {
            dropper: self.writer()?,
            relation,
        };
        let mut batch = WriteBatch::new();
        batch.put(
            Cf::Meta,
            Key::Dropped {
                relation_id: relation.id(),
            }
            .encode(),
            encode(&record),
        );
        self.write(batch)
    }
}

impl Mvcc {
    /// Deletes up to `budget` keys (row versions, index entries) of relations dropped by
    /// transactions that committed below `global_xmin` (held down to [`Mvcc::horizon`]), and
    /// the records of relations whose keys are all gone or whose dropper aborted. Returns how
    /// many keys it deleted.
    pub fn gc_dropped(&self, global_xmin: Gxid, budget: usize) -> Result<usize> {
        let horizon = self.horizon(global_xmin);
        let mut statuses = Statuses::new(&**self.engine(), &self.finals);
        let mut deleted = 0;
        let records: Vec<(Vec<u8>, Vec<u8>)> = self
            .engine()
            .scan_prefix(Cf::Meta, &KeyPrefix::Dropped.encode())
            .collect::<std::result::Result<_, _>>()?;
        for (record_key, value) in records {
            if deleted >= budget {
                break;
            }
            let record: DroppedRecord = decode(&value)?;
            let mut batch = WriteBatch::new();
            match statuses.get(record.dropper)? {
                Some(TxnStatus::Aborted) => {
                    batch.delete(Cf::Meta, record_key);
                }
                Some(TxnStatus::Committed) if record.dropper < horizon => {
                    let (cf, prefix) = record.relation.keys();
                    let mut done = true;
                    for item in self.engine().scan_prefix(cf, &prefix) {
                        if deleted >= budget {
                            done = false;
                            break;
                        }
                        batch.delete(cf, item?.0);
                        deleted += 1;
                    }
                    if done {
                        batch.delete(Cf::Meta, record_key);
                    }
                }
                // Still in progress or prepared, or not below the horizon yet.
                _ => continue,
            }
            self.engine().write(batch)?;
        }
        Ok(deleted)
    }
}
