//! The lock manager of the MVCC layer: row latches, row-lock modes, and waiting for the
//! transaction that holds a row, with PostgreSQL's timeouts and deadlock detection.
//!
//! As in PostgreSQL, a row lock is not an entry in a lock table: it is written on the row
//! version itself (its `deleter`, or a [`RowLocker`] in its `lockers`), so it is as durable as
//! the version — a prepared transaction keeps its locks across a restart. What lives here, in
//! memory only, is what a *waiting* transaction needs:
//!
//! ```text
//!   writer ──latch(row)──▶ read versions ──▶ holder in progress? ──no──▶ write, unlatch
//!                                                   │ yes
//!                              unlatch ◀────────────┘
//!                                 │
//!              wait_for(holder): edge waiter → holder in the wait-for graph
//!                 sleep on `finished` (woken by every commit / abort / prepare /
//!                 COMMIT or ROLLBACK PREPARED, and every 10 ms)
//!                 ├─ holder finished       → retry from the top (re-read the row)
//!                 ├─ cancel flag set       → Canceled (57014, user request)
//!                 ├─ deadline passed       → Canceled (57014, statement timeout)
//!                 ├─ lock_timeout passed   → LockTimeout (55P03)
//!                 └─ every deadlock_timeout: a cycle through the waiter → Deadlock (40P01)
//! ```
//!
//! # Row latches
//!
//! The check of a row's versions and the write that follows are one atomic step under the
//! row's latch: one mutex of a fixed, striped array, chosen by a hash of the row's key, so
//! writers of different rows do not serialize (two rows sharing a stripe only share a short
//! critical section). A write that also checks a unique index latches the indexed values too
//! (the same stripes, hashed from the values' key prefix), so two writers of equal values with
//! different primary keys check and write one after the other. Every latch a step needs is
//! taken at once ([`LockManager::latch_all`]): stripes in ascending order, each once (stripes
//! are not reentrant, and two keys may share one). A latch is never held while waiting for a
//! transaction, and no step takes a latch while it holds one, so latches cannot deadlock.
//!
//! # Waiting, like PostgreSQL's XactLockTableWait
//!
//! A waiter waits for one holder (the first in-progress transaction it found on the row) to
//! finish, then re-reads the row: it may find another holder (e.g. the next of several
//! FOR SHARE lockers) and wait again. "Finished" is read from the transaction's durable status,
//! so a prepared holder holds until COMMIT PREPARED or ROLLBACK PREPARED, also one recovered
//! after a restart. Waiters are woken through one condition variable whenever any transaction
//! finishes; an epoch counter closes the gap between reading the status and going to sleep.
//! Waiters are not queued: after a holder finishes, any of them (or a newcomer) may get the
//! row first. A holder that committed must reach the GTM before its waiter does
//! ([`Transaction::commit_after`](super::mvcc::Transaction::commit_after)).
//!
//! # Deadlocks
//!
//! Each waiter has one edge `waiter → holder` in the wait-for graph (GXIDs) while it waits.
//! After `deadlock_timeout`, and every `deadlock_timeout` after that, a waiter follows the edges
//! from its holder; if they lead back to itself it is the victim: it leaves the graph and fails
//! with [`MvccError::Deadlock`]; the caller aborts it and the others proceed. The check is
//! local to this datanode: a cycle through several datanodes is not seen here.

use super::mvcc::{MvccError, Result};
use rxc_common::txn::Gxid;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How many row latches there are (stripes of the row key hash).
const LATCH_STRIPES: usize = 1024;

/// How many row write counters there are ([`LockManager::slot_writes`]): finer than the latches
/// (a multiple of [`LATCH_STRIPES`], so a counter's writes all happen under one latch), so that
/// a write to one row seldom changes the count of another.
pub(crate) const WRITE_SLOTS: usize = 16 * LATCH_STRIPES;

/// How often a waiter wakes on its own, to check its cancel flag and deadlines.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The strength of a row lock (`SELECT ... FOR UPDATE / FOR SHARE`). `FOR NO KEY UPDATE` maps
/// to [`RowLockMode::Update`] and `FOR KEY SHARE` to [`RowLockMode::Share`] (stricter than
/// PostgreSQL, never weaker).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RowLockMode {
    /// FOR SHARE: blocks writers and FOR UPDATE, not other FOR SHARE lockers.
    Share,
    /// FOR UPDATE: blocks every other lock and every write.
    Update,
}

impl fmt::Display for RowLockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RowLockMode::Share => "share",
            RowLockMode::Update => "update",
        })
    }
}

/// A row lock recorded on a row version. Only a locker still in progress (or prepared) holds
/// the row; a committed or aborted one is dead and is dropped at the version's next write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowLocker {
    /// The locking transaction.
    pub gxid: Gxid,
    /// How strongly it locks.
    pub mode: RowLockMode,
}

/// What a transaction is about to do to a row, which decides what blocks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// An update or delete: blocked by every in-progress writer and locker.
    Write,
    /// A row lock in this mode.
    Lock(RowLockMode),
}

impl Access {
    /// Whether an in-progress locker in `mode` blocks this access.
    pub(crate) fn blocked_by_lock(self, mode: RowLockMode) -> bool {
        match self {
            Access::Write | Access::Lock(RowLockMode::Update) => true,
            Access::Lock(RowLockMode::Share) => mode == RowLockMode::Update,
        }
    }
}

/// Why a statement was canceled while it waited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// The cancel flag was set (a cancel request, `pg_cancel_backend`).
    UserRequest,
    /// The statement's deadline passed (`statement_timeout`).
    StatementTimeout,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelReason::UserRequest => "user request",
            CancelReason::StatementTimeout => "statement timeout",
        })
    }
}

/// How a transaction waits for a row held by another one (PostgreSQL's `lock_timeout`,
/// `deadlock_timeout`, `statement_timeout` and cancel request). The default waits for as long
/// as it takes and looks for a deadlock after one second.
#[derive(Clone, Debug)]
pub struct WaitOptions {
    /// The longest one wait for a holder may last, then [`MvccError::LockTimeout`]. `None`
    /// waits without limit; `Some(0)` fails at once (the SQL layer maps `lock_timeout = 0`,
    /// which PostgreSQL reads as "no limit", to `None`).
    pub lock_timeout: Option<Duration>,
    /// How long a waiter waits before it looks for a deadlock, and then again as often.
    pub deadlock_timeout: Duration,
    /// Set (from any thread) to cancel the waiting statement: [`MvccError::Canceled`] with
    /// [`CancelReason::UserRequest`]. The caller clears it for the next statement.
    pub cancel: Option<Arc<AtomicBool>>,
    /// When the current statement must end (its start plus `statement_timeout`):
    /// [`MvccError::Canceled`] with [`CancelReason::StatementTimeout`]. The caller sets it per
    /// statement.
    pub deadline: Option<Instant>,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            lock_timeout: None,
            deadlock_timeout: Duration::from_secs(1),
            cancel: None,
            deadline: None,
        }
    }
}

impl WaitOptions {
    /// The error that ends a wait begun at `start`, if one does at `now`.
    fn interruption(&self, start: Instant, now: Instant) -> Option<MvccError> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Some(MvccError::Canceled(CancelReason::UserRequest));
        }
        if self.deadline.is_some_and(|d| now >= d) {
            return Some(MvccError::Canceled(CancelReason::StatementTimeout));
        }
        if self.lock_timeout.is_some_and(|t| now >= start + t) {
            return Some(MvccError::LockTimeout);
        }
        None
    }

    /// Whether the statement was canceled or ran past its deadline (checked between rows by
    /// the executor, not only while waiting).
    pub fn check_interrupted(&self) -> Result<(), MvccError> {
        let now = Instant::now();
        match self.interruption(now, now) {
            Some(e @ MvccError::Canceled(_)) => Err(e),
            _ => Ok(()),
        }
    }

    /// The next instant at which [`WaitOptions::interruption`] may change its answer.
    fn next_deadline(&self, start: Instant) -> Option<Instant> {
        let lock_deadline = self.lock_timeout.map(|t| start + t);
        match (self.deadline, lock_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The waits in progress, behind the lock manager's mutex.
#[derive(Debug, Default)]
struct WaitState {
    /// Incremented whenever a transaction finishes.
    epoch: u64,
    /// The wait-for graph: each waiting transaction and the one it waits for.
    waits_for: HashMap<Gxid, Gxid>,
    /// Waiters chosen to break a deadlock across datanodes ([`LockManager::break_wait`]).
    victims: HashSet<Gxid>,
}

/// The lock manager of one datanode's MVCC layer: row latches, the wait-for graph and the
/// wake-up of waiters. Shared by the [`Mvcc`](super::mvcc::Mvcc) and its transactions.
#[derive(Debug)]
pub struct LockManager {
    latches: Box<[Mutex<()>]>,
    /// Per write slot, how many row writes happened ([`LockManager::wrote_row`]); slot `s` is
    /// written under the latch of stripe `s % LATCH_STRIPES`.
    writes: Box<[AtomicU64]>,
    state: Mutex<WaitState>,
    finished: Condvar,
}

impl Default for LockManager {
    fn default() -> Self {
        Self::new()
    }
}

impl LockManager {
    /// A lock manager with no waiters.
    pub fn new() -> Self {
        LockManager {
            latches: (0..LATCH_STRIPES).map(|_| Mutex::new(())).collect(),
            writes: (0..WRITE_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            state: Mutex::new(WaitState::default()),
            finished: Condvar::new(),
        }
    }

    /// The latch of the row whose versions start with `row_prefix` (the encoded
    /// `KeyPrefix::RowVersions`), held for one check-and-write.
    pub(crate) fn latch(&self, row_prefix: &[u8]) -> MutexGuard<'_, ()> {
        self.lock_stripe(stripe(row_prefix))
    }

    /// The count of row writes of write slot `slot` ([`write_slot`]). Read before reading a
    /// row and again later: the same count means no write of the row came between, so what
    /// was read is still what is stored.
    pub(crate) fn slot_writes(&self, slot: usize) -> u64 {
        self.writes[slot].load(Ordering::Acquire)
    }

    /// The count of row writes of the write slot of row `row_prefix`.
    pub(crate) fn row_writes(&self, row_prefix: &[u8]) -> u64 {
        self.slot_writes(write_slot(row_prefix))
    }

    /// Counts a write of the versions of row `row_prefix`; call it under the row's latch,
    /// after the write.
    pub(crate) fn wrote_row(&self, row_prefix: &[u8]) {
        self.writes[write_slot(row_prefix)].fetch_add(1, Ordering::Release);
    }

    /// The latches of every key in `keys` (row prefixes and unique index value prefixes), for
    /// one check-and-write: their stripes in ascending order, each once.
    pub(crate) fn latch_all(&self, keys: &[Vec<u8>]) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = keys.iter().map(|k| stripe(k)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes.into_iter().map(|s| self.lock_stripe(s)).collect()
    }

    fn lock_stripe(&self, stripe: usize) -> MutexGuard<'_, ()> {
        self.latches[stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, WaitState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the wait of `waiter` with [`MvccError::Deadlock`]: a coordinator's deadlock
    /// detector found it in a wait-for cycle through several datanodes (no one datanode sees
    /// such a cycle). Returns whether `waiter` was waiting here.
    pub fn break_wait(&self, waiter: Gxid) -> bool {
        let mut state = self.state();
        if !state.waits_for.contains_key(&waiter) {
            return false;
        }
        state.victims.insert(waiter);
        self.finished.notify_all();
        true
    }

    /// Wakes every waiter: a transaction has finished (or prepared). Call after its status is
    /// written.
    pub fn transaction_finished(&self) {
        let mut state = self.state();
        state.epoch += 1;
        self.finished.notify_all();
    }

    /// The transaction `waiter` is waiting for, if it is waiting.
    pub fn waiting_for(&self, waiter: Gxid) -> Option<Gxid> {
        self.state().waits_for.get(&waiter).copied()
    }

    /// The wait-for graph: every waiting transaction and the one it waits for, by waiter.
    pub fn wait_for_graph(&self) -> Vec<(Gxid, Gxid)> {
        let mut edges: Vec<(Gxid, Gxid)> = self
            .state()
            .waits_for
            .iter()
            .map(|(w, h)| (*w, *h))
            .collect();
        edges.sort();
        edges
    }

    /// Waits until `finished()` says `holder` has finished, as `waiter`, under `options`.
    /// `finished` runs without the lock manager's mutex (it reads the engine).
    pub(crate) fn wait_for(
        &self,
        waiter: Gxid,
        holder: Gxid,
        options: &WaitOptions,
        mut finished: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        let start = Instant::now();
        let mut deadlock_check = start + options.deadlock_timeout;
        let mut state = self.state();
        state.waits_for.insert(waiter, holder);
        let result = loop {
            let epoch = state.epoch;
            drop(state);
            let done = finished();
            state = self.state();
            match done {
                Ok(true) => break Ok(()),
                Ok(false) => {}
                Err(e) => break Err(e),
            }
            let now = Instant::now();
            if let Some(e) = options.interruption(start, now) {
                break Err(e);
            }
            if state.victims.remove(&waiter) {
                break Err(MvccError::Deadlock {
                    detail: format!(
                        "Process {waiter} waits for ShareLock on transaction {holder}; a wait-for \
                         cycle through several datanodes leads back to it."
                    ),
                });
            }
            if now >= deadlock_check {
                if let Some(cycle) = find_cycle(&state.waits_for, waiter) {
                    break Err(MvccError::Deadlock {
                        detail: describe_cycle(&cycle),
                    });
                }
                deadlock_check = now + options.deadlock_timeout;
            }
            if state.epoch == epoch {
                let wake = [Some(deadlock_check), options.next_deadline(start)]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(deadlock_check);
                let timeout = wake
                    .saturating_duration_since(now)
                    .clamp(Duration::from_millis(1), POLL_INTERVAL);
                state = self
                    .finished
                    .wait_timeout(state, timeout)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        state.waits_for.remove(&waiter);
        state.victims.remove(&waiter);
        result
    }
}

/// The write slot of a key (a row prefix): FNV-1a of its bytes. Not keyed: the keys are the
/// node's own row keys, and a collision costs a shared latch or a cache miss, nothing more.
pub(crate) fn write_slot(key: &[u8]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (hash % WRITE_SLOTS as u64) as usize
}

/// The latch stripe of a key: the stripe its write slot is written under.
fn stripe(key: &[u8]) -> usize {
    write_slot(key) % LATCH_STRIPES
}

/// The cycle of the wait-for graph through `waiter`, if there is one: `waiter`, the one it
/// waits for, and so on, each waiting for the next and the last for `waiter`.
fn find_cycle(waits_for: &HashMap<Gxid, Gxid>, waiter: Gxid) -> Option<Vec<Gxid>> {
    let mut cycle = vec![waiter];
    let mut current = waiter;
    while let Some(&next) = waits_for.get(&current) {
        if next == waiter {
            return Some(cycle);
        }
        if cycle.contains(&next) {
            return None; // a cycle the waiter only leads into: one of its members breaks it
        }
        cycle.push(next);
        current = next;
    }
    None
}

/// PostgreSQL's deadlock detail, with GXIDs for processes: one line per edge of the cycle.
fn describe_cycle(cycle: &[Gxid]) -> String {
    let lines: Vec<String> = cycle
        .iter()
        .enumerate()
        .map(|(i, waiter)| {
            let holder = cycle[(i + 1) % cycle.len()];
            format!(
                "Process {waiter} waits for ShareLock on transaction {holder}; \
                 blocked by process {holder}."
            )
        })
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::thread;

    fn graph(edges: &[(u64, u64)]) -> HashMap<Gxid, Gxid> {
        edges.iter().map(|&(w, h)| (Gxid(w), Gxid(h))).collect()
    }

    #[test]
    fn cycles_through_the_waiter_only() {
        let g = graph(&[(3, 4), (4, 5), (5, 3), (6, 3)]);
        assert_eq!(
            find_cycle(&g, Gxid(3)),
            Some(vec![Gxid(3), Gxid(4), Gxid(5)])
        );
        assert_eq!(find_cycle(&g, Gxid(6)), None);
        assert_eq!(find_cycle(&graph(&[(3, 4)]), Gxid(3)), None);
        assert_eq!(
            describe_cycle(&[Gxid(3), Gxid(4)]),
            "Process 3 waits for ShareLock on transaction 4; blocked by process 4.\n\
             Process 4 waits for ShareLock on transaction 3; blocked by process 3."
        );
    }

    #[test]
    fn latch_all_takes_shared_stripes_once() {
        let locks = LockManager::new();
        let key = b"row".to_vec();
        // The same key twice is one stripe: taking it twice would deadlock.
        let guards = locks.latch_all(&[key.clone(), key.clone(), b"value".to_vec()]);
        assert!(guards.len() <= 2);
        drop(guards);
        let _again = locks.latch(&key);
    }

    #[test]
    fn share_locks_are_compatible_with_each_other_only() {
        use RowLockMode::*;
        assert!(!Access::Lock(Share).blocked_by_lock(Share));
        assert!(Access::Lock(Share).blocked_by_lock(Update));
        assert!(Access::Lock(Update).blocked_by_lock(Share));
        assert!(Access::Write.blocked_by_lock(Share));
    }

    #[test]
    fn a_waiter_wakes_when_its_holder_finishes() {
        let locks = Arc::new(LockManager::new());
        let done = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (locks, done) = (locks.clone(), done.clone());
            thread::spawn(move || {
                locks.wait_for(Gxid(4), Gxid(3), &WaitOptions::default(), || {
                    Ok(done.load(Ordering::SeqCst))
                })
            })
        };
        while locks.waiting_for(Gxid(4)).is_none() {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(locks.wait_for_graph(), vec![(Gxid(4), Gxid(3))]);
        done.store(true, Ordering::SeqCst);
        locks.transaction_finished();
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert!(locks.wait_for_graph().is_empty());
    }

    #[test]
    fn timeouts_and_cancel_end_a_wait() {
        let locks = LockManager::new();
        let never = || Ok(false);
        let options = WaitOptions {
            lock_timeout: Some(Duration::from_millis(20)),
            ..WaitOptions::default()
        };
        let r = locks.wait_for(Gxid(4), Gxid(3), &options, never);
        assert_eq!(r, Err(MvccError::LockTimeout));
        let options = WaitOptions {
            deadline: Some(Instant::now() + Duration::from_millis(20)),
            ..WaitOptions::default()
        };
        let r = locks.wait_for(Gxid(4), Gxid(3), &options, never);
        assert_eq!(r, Err(MvccError::Canceled(CancelReason::StatementTimeout)));
        let options = WaitOptions {
            cancel: Some(Arc::new(AtomicBool::new(true))),
            ..WaitOptions::default()
        };
        let r = locks.wait_for(Gxid(4), Gxid(3), &options, never);
        assert_eq!(r, Err(MvccError::Canceled(CancelReason::UserRequest)));
        assert!(locks.wait_for_graph().is_empty());
    }
}
