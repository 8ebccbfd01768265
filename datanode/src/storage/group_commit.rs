//! Group commit: concurrent writers share one engine write and one WAL fsync.
//!
//! ```text
//!  writer A ─┐ enqueue, no leader → A leads: takes the queue [A]        ┐
//!  writer B ─┤ enqueue, A leads → wait                                  │ one write, one fsync
//!  writer C ─┤ enqueue, A leads → wait                                  ┘
//!            │ A done: results out, leader released, everyone woken
//!            │ B finds no result yet, no leader → B leads: takes [B, C] ┐ one write, one fsync
//!            │ C finds its result (B wrote it) → returns                ┘
//! ```
//!
//! Every write goes through the queue (the leader/follower scheme of LevelDB's and RocksDB's
//! write path): a writer enqueues its batch, and if no leader is writing it becomes the leader,
//! takes everything queued, writes it as one engine batch — synced if any of the batches asks
//! for it — and hands each writer its LSN. While a leader waits for its fsync, new writers queue
//! up behind it, so the number of fsyncs adapts to the load: one per writer when alone, one per
//! group under concurrency. `commit_delay` (like PostgreSQL's) makes a leader wait a little
//! before taking the queue, trading latency for larger groups; it is 0 by default.
//!
//! Because only a leader writes, and only one leader writes at a time, the engine's sequence
//! numbers advance exactly by the group's operations: a batch's LSN is the group's last LSN
//! minus the operations queued after it.
//!
//! The fsync can also happen apart from the write ([`GroupCommit::sync_through`]), which is
//! what the RocksDB engine does: every group is appended to the WAL unsynced, and a commit then
//! waits for a WAL fsync that covers its LSN — one writer fsyncs everything appended so far
//! while the others wait for it or for the next one, as PostgreSQL's `XLogFlush`. A statement's
//! unsynced write then never queues behind a commit's fsync. What a commit wrote is readable
//! before it is durable, but nothing reads it as committed before the GTM hears of the commit,
//! which happens after the fsync; and WAL is one sequence, so any later fsync covers it too.

use super::{Lsn, Result, StorageError, WriteBatch};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Counters of a [`GroupCommit`] queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Batches submitted by writers.
    pub batches: u64,
    /// Engine writes done by leaders (one per group).
    pub groups: u64,
    /// WAL fsyncs: groups written synced, and [`GroupCommit::sync_through`] rounds (the
    /// RocksDB engine writes every group unsynced and fsyncs with those).
    pub synced_groups: u64,
    /// The largest group written, in batches.
    pub max_group: u64,
}

/// The queue of batches waiting to be written, and the leader election around it.
#[derive(Debug, Default)]
pub struct GroupCommit {
    state: Mutex<State>,
    wakeup: Condvar,
    commit_delay: Duration,
    /// WAL fsyncs done apart from the writes ([`GroupCommit::sync_through`]).
    syncs: Mutex<Syncs>,
    synced: Condvar,
}

#[derive(Debug, Default)]
struct Syncs {
    /// Everything up to this LSN is durable.
    durable: Lsn,
    /// Whether a writer is fsyncing now.
    syncing: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Batches waiting for a leader, with their writers' tickets, in arrival order.
    queue: Vec<(u64, WriteBatch)>,
    /// Whether a leader is writing a group now.
    leading: bool,
    next_ticket: u64,
    /// Results for writers whose batch a leader wrote, by ticket.
    done: HashMap<u64, Result<Lsn>>,
    stats: GroupCommitStats,
}

impl GroupCommit {
    /// A queue whose leaders wait `commit_delay` before taking the queue.
    pub fn new(commit_delay: Duration) -> Self {
        GroupCommit {
            commit_delay,
            ..Default::default()
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> GroupCommitStats {
        self.lock().stats
    }

    /// Makes everything up to `lsn` (written by [`GroupCommit::commit`] unsynced) durable, as
    /// PostgreSQL's `XLogFlush` does: if no fsync covers it yet, one writer at a time runs
    /// `sync` (the WAL fsync) for everything written so far (`latest`), and writers who wait
    /// meanwhile share the next one. The fsync happens outside the write queue, so writes —
    /// a statement's unsynced ones above all — never wait for a commit's fsync.
    pub fn sync_through(
        &self,
        lsn: Lsn,
        latest: impl Fn() -> Lsn,
        sync: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let mut syncs = self
            .synced
            .wait_while(self.lock_syncs(), |s| s.durable < lsn && s.syncing)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if syncs.durable >= lsn {
            return Ok(());
        }
        syncs.syncing = true;
        // Written (appended to the WAL) before the fsync starts: covered by it.
        let target = latest().max(lsn);
        drop(syncs);
        let mut round = SyncRound {
            queue: self,
            durable: None,
        };
        let result = sync();
        if result.is_ok() {
            round.durable = Some(target);
            self.lock().stats.synced_groups += 1;
        }
        drop(round);
        result
    }

    fn lock_syncs(&self) -> MutexGuard<'_, Syncs> {
        self.syncs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `batch` and returns its LSN once it is written. If this writer becomes the leader,
    /// `write_group` writes the whole group (with `sync` if any batch asks for it) and returns
    /// the LSN of the group's last operation; followers' `write_group` is not called.
    pub fn commit<F>(&self, batch: WriteBatch, write_group: F) -> Result<Lsn>
    where
        F: FnOnce(&[WriteBatch], bool) -> Result<Lsn>,
    {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.stats.batches += 1;
        state.queue.push((ticket, batch));
        let mut state = self
            .wakeup
            .wait_while(state, |s| !s.done.contains_key(&ticket) && s.leading)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(result) = state.done.remove(&ticket) {
            return result;
        }

        // Leader: our batch is still queued (results are handed out together with the release
        // of the leadership, and we found none for us).
        state.leading = true;
        if !self.commit_delay.is_zero() {
            drop(state);
            std::thread::sleep(self.commit_delay);
            state = self.lock();
        }
        let group = std::mem::take(&mut state.queue);
        drop(state);

        let mut leader = Leadership {
            queue: self,
            tickets: group.iter().map(|(ticket, _)| *ticket).collect(),
            released: false,
        };
        let (tickets, batches): (Vec<u64>, Vec<WriteBatch>) = group.into_iter().unzip();
        let sync = batches.iter().any(|b| b.sync);
        let result = write_group(&batches, sync);

        // Hand out LSNs: each batch ends where the operations after it begin.
        let mut results = Vec::with_capacity(tickets.len());
        let mut after: u64 = batches.iter().map(|b| b.ops.len() as u64).sum();
        for batch in &batches {
            after -= batch.ops.len() as u64;
            results.push(match &result {
                Ok(last) => Ok(last - after),
                Err(e) => Err(e.clone()),
            });
        }
        let mut own = None;
        let mut state = self.lock();
        for (t, r) in tickets.into_iter().zip(results) {
            if t == ticket {
                own = Some(r);
            } else {
                state.done.insert(t, r);
            }
        }
        state.stats.groups += 1;
        state.stats.synced_groups += u64::from(sync);
        state.stats.max_group = state.stats.max_group.max(batches.len() as u64);
        state.leading = false;
        leader.released = true;
        drop(state);
        self.wakeup.notify_all();
        own.unwrap_or_else(|| Err(StorageError::Io("group commit lost a batch".into())))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Ends a [`GroupCommit::sync_through`] round, also if the fsync panics: records what became
/// durable and wakes the writers waiting for it.
struct SyncRound<'a> {
    queue: &'a GroupCommit,
    durable: Option<Lsn>,
}

impl Drop for SyncRound<'_> {
    fn drop(&mut self) {
        let mut syncs = self.queue.lock_syncs();
        syncs.syncing = false;
        if let Some(lsn) = self.durable {
            syncs.durable = syncs.durable.max(lsn);
        }
        drop(syncs);
        self.queue.synced.notify_all();
    }
}

/// Releases the leadership if the leader's write panics, failing its group, so that followers
/// are not left waiting forever.
struct Leadership<'a> {
    queue: &'a GroupCommit,
    tickets: Vec<u64>,
    released: bool,
}

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let mut state = self.queue.lock();
        for t in &self.tickets {
            state.done.insert(
                *t,
                Err(StorageError::Io("the group commit leader failed".into())),
            );
        }
        state.leading = false;
        drop(state);
        self.queue.wakeup.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Cf;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Barrier};

    /// A fake engine: a sequence counter and a slow "fsync".
    fn write_group(seq: &AtomicU64, batches: &[WriteBatch]) -> Result<Lsn> {
        std::thread::sleep(Duration::from_millis(2));
        let n: u64 = batches.iter().map(|b| b.len() as u64).sum();
        Ok(seq.fetch_add(n, Ordering::SeqCst) + n)
    }

    /// Writers that need their LSN durable return only after an fsync that started once it
    /// was written, and writers waiting during one fsync share the next.
    #[test]
    fn sync_through_covers_each_lsn_and_shares_fsyncs() {
        let queue = Arc::new(GroupCommit::default());
        let written = Arc::new(AtomicU64::new(0));
        let durable = Arc::new(AtomicU64::new(0));
        let (writers, per_writer) = (8u64, 20u64);
        let handles: Vec<_> = (0..writers)
            .map(|_| {
                let (queue, written, durable) = (queue.clone(), written.clone(), durable.clone());
                std::thread::spawn(move || {
                    for _ in 0..per_writer {
                        let lsn = written.fetch_add(1, Ordering::SeqCst) + 1;
                        let fsync = || {
                            // What is written when the fsync starts is what it makes durable.
                            let covered = written.load(Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(2));
                            durable.fetch_max(covered, Ordering::SeqCst);
                            Ok(())
                        };
                        queue
                            .sync_through(lsn, || written.load(Ordering::SeqCst), fsync)
                            .unwrap();
                        assert!(durable.load(Ordering::SeqCst) >= lsn, "{lsn} not durable");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let fsyncs = queue.stats().synced_groups;
        assert!(
            fsyncs > 0 && fsyncs < writers * per_writer,
            "{fsyncs} fsyncs"
        );
    }

    #[test]
    fn alone_each_batch_is_its_own_group() {
        let queue = GroupCommit::default();
        let seq = AtomicU64::new(0);
        for i in 1..=3u64 {
            let mut batch = WriteBatch::synced();
            for _ in 0..i {
                batch.put(Cf::Rows, b"k".to_vec(), b"v".to_vec());
            }
            let lsn = queue.commit(batch, |b, _| write_group(&seq, b)).unwrap();
            assert_eq!(lsn, i * (i + 1) / 2);
        }
        let stats = queue.stats();
        assert_eq!(
            (stats.batches, stats.groups, stats.synced_groups),
            (3, 3, 3)
        );
    }

    #[test]
    fn concurrent_writers_share_groups_and_get_distinct_lsns() {
        let queue = Arc::new(GroupCommit::default());
        let seq = Arc::new(AtomicU64::new(0));
        let writers = 8;
        let per_writer = 10;
        let barrier = Arc::new(Barrier::new(writers));
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (queue, seq, barrier) = (queue.clone(), seq.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..per_writer)
                        .map(|_| {
                            let mut batch = WriteBatch::synced();
                            batch.put(Cf::Rows, vec![w as u8], b"v".to_vec());
                            batch.put(Cf::Rows, vec![w as u8, 1], b"v".to_vec());
                            queue.commit(batch, |b, _| write_group(&seq, b)).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut lsns: Vec<Lsn> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        lsns.sort();
        let total = (writers * per_writer) as u64;
        // Every batch of two operations ends on an even LSN, each exactly once.
        assert_eq!(lsns, (1..=total).map(|i| 2 * i).collect::<Vec<_>>());
        let stats = queue.stats();
        assert_eq!(stats.batches, total);
        assert!(stats.synced_groups < total, "no group formed: {stats:?}");
        assert!(stats.max_group > 1);
    }

    #[test]
    fn a_failed_write_fails_its_group_only() {
        let queue = GroupCommit::default();
        let err = queue
            .commit(WriteBatch::synced(), |_, _| {
                Err(StorageError::Io("disk full".into()))
            })
            .unwrap_err();
        assert_eq!(err, StorageError::Io("disk full".into()));
        let lsn = queue.commit(WriteBatch::new(), |_, _| Ok(7)).unwrap();
        assert_eq!(lsn, 7);
    }
}
