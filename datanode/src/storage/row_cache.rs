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
use std::sync::{Arc, Mutex};

/// How many rows one write slot keeps (so at most `WRITE_SLOTS * ROWS_PER_SLOT` in all).
const ROWS_PER_SLOT: usize = 8;

/// A row's versions, newest first, as cached.
#[derive(Clone)]
pub(super) struct CachedVersions {
    /// The newest versions (all of them if `complete`).
    pub(super) versions: Arc<Vec<StoredVersion>>,
    /// Whether `versions` are every version of the row.
    pub(super) complete: bool,
}

#[derive(Default)]
struct Slot {
    /// The write count the entries were read at.
    writes: u64,
    rows: HashMap<Vec<u8>, CachedVersions>,
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
    /// The cached versions of the row `prefix` in write slot `slot`, if they were read at write
    /// count `writes` (the slot's count now).
    pub(super) fn get(&self, slot: usize, writes: u64, prefix: &[u8]) -> Option<CachedVersions> {
        let entries = self.slots[slot].lock().unwrap_or_else(|e| e.into_inner());
        if entries.writes != writes {
            return None;
        }
        entries.rows.get(prefix).cloned()
    }

    /// Caches `versions` of the row `prefix` in write slot `slot`, read at write count
    /// `writes` (read before the versions were); a stale count is ignored.
    pub(super) fn put(
        &self,
        slot: usize,
        writes: u64,
        prefix: &[u8],
        versions: Arc<Vec<StoredVersion>>,
        complete: bool,
    ) {
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
        entries
            .rows
            .insert(prefix.to_vec(), CachedVersions { versions, complete });
    }

    /// Caches `versions` (newest first, all of them if `complete`) of the row `prefix`, just
    /// written under its latch, still held (so its write count is the one of what is stored).
    pub(super) fn put_written(
        &self,
        locks: &LockManager,
        prefix: &[u8],
        versions: Vec<StoredVersion>,
        complete: bool,
    ) {
        let slot = write_slot(prefix);
        self.put(
            slot,
            locks.slot_writes(slot),
            prefix,
            Arc::new(versions),
            complete,
        );
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

/// The newest versions of `cached` up to and including the first for which `last` says so;
/// `None` if there is none and the run is not every version (read the engine then).
pub(super) fn upto(
    cached: &CachedVersions,
    mut last: impl FnMut(&StoredVersion) -> Result<bool>,
) -> Result<Option<Vec<StoredVersion>>> {
    for (i, v) in cached.versions.iter().enumerate() {
        if last(v)? {
            return Ok(Some(cached.versions[..=i].to_vec()));
        }
    }
    Ok(cached.complete.then(|| cached.versions.to_vec()))
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
        cache.put(7, 3, b"r", Arc::new(vec![v(1, "a")]), true);
        assert!(cache.get(7, 3, b"r").is_some());
        // A write came (count 4): the entry is dead.
        assert!(cache.get(7, 4, b"r").is_none());
        // A read that began before that write stores nothing over newer entries.
        cache.put(7, 4, b"s", Arc::new(vec![v(1, "s")]), true);
        cache.put(7, 3, b"r", Arc::new(vec![v(1, "old")]), true);
        assert!(cache.get(7, 4, b"r").is_none());
        assert!(cache.get(7, 4, b"s").is_some());
        // A slot keeps a bounded number of rows.
        for i in 0..(ROWS_PER_SLOT as u8 * 2) {
            cache.put(7, 4, &[i], Arc::new(vec![v(1, "x")]), true);
        }
        let kept = (0..=255u8)
            .filter(|i| cache.get(7, 4, &[*i]).is_some())
            .count();
        assert!(kept <= ROWS_PER_SLOT, "{kept} rows kept");
    }

    #[test]
    fn a_reader_takes_the_run_up_to_what_it_sees_or_reads_on() {
        let part = CachedVersions {
            versions: Arc::new(vec![v(1, "new"), v(2, "old")]),
            complete: false,
        };
        let seen = upto(&part, |v| Ok(v.version.row == b"old")).unwrap();
        assert_eq!(rows(&seen.unwrap()), ["new", "old"]);
        assert!(upto(&part, |_| Ok(false)).unwrap().is_none());
        let all = CachedVersions {
            complete: true,
            ..part
        };
        assert_eq!(
            rows(&upto(&all, |_| Ok(false)).unwrap().unwrap()),
            ["new", "old"]
        );
    }
}
