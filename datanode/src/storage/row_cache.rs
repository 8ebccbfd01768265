//! The node's cache of rows' versions, so that reading a row the node read or wrote lately
//! costs a hash lookup instead of a RocksDB iterator seek (a TPC-B transaction reads each row it
//! updates twice, and the branch and teller rows are read by every transaction).
//!
//! An entry is the newest-first run of a row's versions as a read found them — every version,
//! or (when the reader stopped at the version it sees) a prefix of them. It is valid while the
//! row's write count ([`LockManager::slot_writes`] of its write slot) is
//! the one read before the versions were: every write of a row's versions counts under the
//! row's latch after it is stored, so an unchanged count means nothing changed in between.
//! Entries are kept per write slot, each slot holding only entries of its current count: a
//! write makes every older entry of the slot dead, and the next entry stored clears them. A
//! writer stores what it wrote, so the next reader of a hot row finds it here.
//!
//! Visibility is not cached: a reader checks the cached versions against its own snapshot and
//! the statuses of their writers, and reads the engine if the run ends before the version it
//! sees (unless the run is every version of the row).

use super::locks::{write_slot, LockManager, WRITE_SLOTS};
use super::mvcc::{Result, StoredVersion};
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

/// How many rows one write slot keeps (so at most `WRITE_SLOTS * ROWS_PER_SLOT` in all).
const ROWS_PER_SLOT: usize = 8;

/// A newest-first run of a row's versions: the first `len` of `versions`, which the cache may
/// share, so that a reader's run costs no copy of the versions. Dereferences to the run.
#[derive(Clone)]
pub(super) struct Run {
    versions: Arc<Vec<StoredVersion>>,
    len: usize,
    /// Whether `versions` are every version of the row.
    complete: bool,
}

impl Deref for Run {
    type Target = [StoredVersion];

    fn deref(&self) -> &[StoredVersion] {
        &self.versions[..self.len]
    }
}

impl Run {
    /// The run of `versions` (every version of the row if `complete`).
    pub(super) fn new(versions: Vec<StoredVersion>, complete: bool) -> Run {
        Run {
            len: versions.len(),
            versions: Arc::new(versions),
            complete,
        }
    }

    /// Whether the run is every version of the row.
    pub(super) fn complete(&self) -> bool {
        self.complete && self.len == self.versions.len()
    }

    /// The run up to and including the first version for which `last` says so; `None` if
    /// there is none and the run is not every version (read the engine then).
    pub(super) fn upto(
        &self,
        mut last: impl FnMut(&StoredVersion) -> Result<bool>,
    ) -> Result<Option<Run>> {
        for (i, v) in self.iter().enumerate() {
            if last(v)? {
                return Ok(Some(Run {
                    len: i + 1,
                    ..self.clone()
                }));
            }
        }
        Ok(self.complete().then(|| self.clone()))
    }

    /// The run after the versions in `written` were stored over it (see [`after_write`]).
    pub(super) fn after_write(&self, written: &[StoredVersion]) -> Option<Run> {
        let complete = self.complete();
        after_write(self, complete, written).map(|now| Run::new(now, complete))
    }
}

#[derive(Default)]
struct Slot {
    /// The write count the entries were read at.
    writes: u64,
    rows: HashMap<Vec<u8>, Run>,
}

/// See the module doc.
pub(super) struct RowCache {
    slots: Box<[Mutex<Slot>]>,
}

impl Default for RowCache {
    fn default() -> Self {
        RowCache {
            slots: (0..WRITE_SLOTS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl RowCache {
    /// The cached run of the row `prefix` in write slot `slot`, if it was read at write count
    /// `writes` (the slot's count now).
    fn get(&self, slot: usize, writes: u64, prefix: &[u8]) -> Option<Run> {
        let entries = self.slots[slot].lock().unwrap_or_else(|e| e.into_inner());
        if entries.writes != writes {
            return None;
        }
        entries.rows.get(prefix).cloned()
    }

    /// Caches `run` of the row `prefix` in write slot `slot`, read at write count `writes`
    /// (read before the versions were); a stale count is ignored.
    fn put(&self, slot: usize, writes: u64, prefix: &[u8], run: Run) {
        let mut entries = self.slots[slot].lock().unwrap_or_else(|e| e.into_inner());
        if writes < entries.writes {
            return;
        }
        if writes > entries.writes {
            entries.rows.clear();
            entries.writes = writes;
        }
        if entries.rows.len() >= ROWS_PER_SLOT && !entries.rows.contains_key(prefix) {
            // Make room: any entry will do (the map's order is arbitrary).
            if let Some(victim) = entries.rows.keys().next().cloned() {
                entries.rows.remove(&victim);
            }
        }
        entries.rows.insert(prefix.to_vec(), run);
    }

    /// The versions of the row `prefix` up to and including the first for which `last` says
    /// so (all of them if none does): from the cache if it holds enough of them at the row's
    /// write count now, else from `read` (the engine), whose run is then cached.
    pub(super) fn read(
        &self,
        locks: &LockManager,
        prefix: &[u8],
        mut last: impl FnMut(&StoredVersion) -> Result<bool>,
        read: impl FnOnce(
            &mut dyn FnMut(&StoredVersion) -> Result<bool>,
        ) -> Result<(Vec<StoredVersion>, bool)>,
    ) -> Result<Run> {
        let slot = write_slot(prefix);
        let writes = locks.slot_writes(slot);
        if let Some(cached) = self.get(slot, writes, prefix) {
            if let Some(run) = cached.upto(&mut last)? {
                return Ok(run);
            }
        }
        let (versions, complete) = read(&mut last)?;
        let run = Run::new(versions, complete);
        self.put(slot, writes, prefix, run.clone());
        Ok(run)
    }

    /// Counts a write of the versions of the row `prefix` — call it under the row's latch,
    /// after the write is stored — and caches `now`, the row's versions after it, if known.
    pub(super) fn wrote(&self, locks: &LockManager, prefix: &[u8], now: Option<Run>) {
        locks.wrote_row(prefix);
        if let Some(run) = now {
            // Under the latch the count stays the one of what is stored.
            let slot = write_slot(prefix);
            self.put(slot, locks.slot_writes(slot), prefix, run);
        }
    }
}

/// The run of a row's versions `versions` (newest first, keys ascending; every version if
/// `complete`) after the versions in `written` were stored: each replaces the version of its
/// key, or joins the run at its place. `None` if one falls past the end of an incomplete run
/// (the run cannot say what lies between).
pub(super) fn after_write(
    versions: &[StoredVersion],
    complete: bool,
    written: &[StoredVersion],
) -> Option<Vec<StoredVersion>> {
    let mut out = versions.to_vec();
    for w in written {
        match out.binary_search_by(|v| v.key.as_slice().cmp(&w.key)) {
            Ok(i) => out[i] = w.clone(),
            Err(i) if i < out.len() || complete => out.insert(i, w.clone()),
            Err(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mvcc::Version;
    use rxc_common::txn::Gxid;

    fn v(key: u8, row: &str) -> StoredVersion {
        StoredVersion {
            key: vec![key],
            creator: Gxid(u64::from(255 - key)),
            version: Version {
                row: row.as_bytes().to_vec(),
                deleter: None,
                lockers: Vec::new(),
            },
        }
    }

    fn rows(versions: &[StoredVersion]) -> Vec<String> {
        versions
            .iter()
            .map(|v| String::from_utf8(v.version.row.clone()).unwrap())
            .collect()
    }

    #[test]
    fn writes_replace_or_join_the_run_in_key_order() {
        let run = [v(2, "b"), v(4, "d")];
        let now = after_write(&run, false, &[v(4, "D"), v(1, "a"), v(3, "c")]).unwrap();
        assert_eq!(rows(&now), ["a", "b", "c", "D"]);
        // Past the end of a run that is not every version: unknown what lies between.
        assert!(after_write(&run, false, &[v(5, "e")]).is_none());
        let all = after_write(&run, true, &[v(5, "e")]).unwrap();
        assert_eq!(rows(&all), ["b", "d", "e"]);
    }

    #[test]
    fn entries_hold_only_at_the_write_count_they_were_read_at() {
        let cache = RowCache::default();
        cache.put(7, 3, b"r", Run::new(vec![v(1, "a")], true));
        assert!(cache.get(7, 3, b"r").is_some());
        // A write came (count 4): the entry is dead.
        assert!(cache.get(7, 4, b"r").is_none());
        // A read that began before that write stores nothing over newer entries.
        cache.put(7, 4, b"s", Run::new(vec![v(1, "s")], true));
        cache.put(7, 3, b"r", Run::new(vec![v(1, "old")], true));
        assert!(cache.get(7, 4, b"r").is_none());
        assert!(cache.get(7, 4, b"s").is_some());
        // A slot keeps a bounded number of rows.
        for i in 0..(ROWS_PER_SLOT as u8 * 2) {
            cache.put(7, 4, &[i], Run::new(vec![v(1, "x")], true));
        }
        let kept = (0..=255u8)
            .filter(|i| cache.get(7, 4, &[*i]).is_some())
            .count();
        assert!(kept <= ROWS_PER_SLOT, "{kept} rows kept");
    }

    #[test]
    fn a_reader_takes_the_run_up_to_what_it_sees_or_reads_on() {
        let part = Run::new(vec![v(1, "new"), v(2, "old")], false);
        let seen = part.upto(|v| Ok(v.version.row == b"old")).unwrap();
        assert_eq!(rows(&seen.unwrap()), ["new", "old"]);
        assert!(part.upto(|_| Ok(false)).unwrap().is_none());
        let all = Run::new(vec![v(1, "new"), v(2, "old")], true);
        assert_eq!(
            rows(&all.upto(|_| Ok(false)).unwrap().unwrap()),
            ["new", "old"]
        );
    }
}
