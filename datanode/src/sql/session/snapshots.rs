//! One GTM snapshot answer for many of the node's sessions at a time.
//!
//! A READ COMMITTED statement needs a snapshot taken after it began: one the GTM made for a
//! request sent after the statement asked. Sessions that ask while such a request is already on
//! its way cannot use its answer (it may predate a commit they must see), but they can all share
//! the next one: a leader/follower round as in group commit.
//!
//! ```text
//!  session A ─ asks: none in flight → A sends fetch 1 ───────────────▶ answer 1 → A
//!  session B ─ asks during fetch 1 → needs fetch ≥ 2, waits ┐
//!  session C ─ asks during fetch 1 → needs fetch ≥ 2, waits ┤ fetch 1 done: B finds none
//!                                                           │ in flight, sends fetch 2
//!                                                           └──────────▶ answer 2 → B and C
//! ```
//!
//! The snapshots are unheld at the GTM ([`GtmClient::unheld_snapshot`]): the node keeps the
//! versions its transactions' snapshots can see itself ([`Mvcc::horizon`]), which is what lets
//! one answer serve sessions of different GTM clients.
//!
//! The share also keeps the newest snapshot the node got from the GTM (from a fetch or a
//! begin): a READ COMMITTED statement begins with it instead of asking for one of its own, and
//! asks only when a decision needs it ([`Transaction::defer_snapshot`]).
//!
//! [`Mvcc::horizon`]: crate::storage::mvcc::Mvcc::horizon
//! [`Transaction::defer_snapshot`]: crate::storage::mvcc::Transaction::defer_snapshot

use rxc_common::gtm::client::GtmClient;
use rxc_common::txn::Snapshot;
use std::sync::Mutex;
use tokio::sync::Notify;

/// The node's shared snapshot fetches.
#[derive(Debug, Default)]
pub struct SnapshotShare {
    state: Mutex<State>,
    done: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// The id the next fetch gets.
    next: u64,
    /// Whether a fetch is on its way.
    in_flight: bool,
    /// The last fetch's id and answer.
    latest: Option<(u64, Result<Snapshot, String>)>,
    /// The newest snapshot the GTM gave the node.
    newest: Option<Snapshot>,
}

impl SnapshotShare {
    /// A snapshot taken after this call began, fetched through `gtm` if this caller leads the
    /// round. The error is the GTM's, as text.
    pub async fn get(&self, gtm: &GtmClient) -> Result<Snapshot, String> {
        let target = self.lock().next;
        loop {
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            let id = {
                let mut state = self.lock();
                if let Some((id, answer)) = &state.latest {
                    if *id >= target {
                        return answer.clone();
                    }
                }
                if state.in_flight {
                    None
                } else {
                    let id = state.next;
                    state.next += 1;
                    state.in_flight = true;
                    Some(id)
                }
            };
            let Some(id) = id else {
                done.await;
                continue;
            };
            // Leader: the round ends (and followers wake) even if this future is dropped.
            let mut round = Round {
                share: self,
                id,
                answer: None,
            };
            let answer = gtm.unheld_snapshot().await.map_err(|e| e.to_string());
            round.answer = Some(answer.clone());
            return answer;
        }
    }

    /// The newest snapshot the node got from the GTM, if any: one taken before anything that
    /// begins now.
    pub fn newest(&self) -> Option<Snapshot> {
        self.lock().newest.clone()
    }

    /// Records a snapshot the GTM gave one of the node's sessions.
    pub fn note(&self, snapshot: &Snapshot) {
        self.lock().note(snapshot);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn note(&mut self, snapshot: &Snapshot) {
        // The GTM hands out GXIDs in order: a larger xmax was taken later.
        if self.newest.as_ref().is_none_or(|n| n.xmax <= snapshot.xmax) {
            self.newest = Some(snapshot.clone());
        }
    }
}

/// A leader's fetch: publishes its answer (or, dropped unanswered, just ends the round) and
/// wakes the followers.
struct Round<'a> {
    share: &'a SnapshotShare,
    id: u64,
    answer: Option<Result<Snapshot, String>>,
}

impl Drop for Round<'_> {
    fn drop(&mut self) {
        let mut state = self.share.lock();
        state.in_flight = false;
        if let Some(answer) = self.answer.take() {
            if let Ok(snapshot) = &answer {
                state.note(snapshot);
            }
            state.latest = Some((self.id, answer));
        }
        drop(state);
        self.share.done.notify_waiters();
    }
}
