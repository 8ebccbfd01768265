//! Background garbage collection: every `gc_interval_ms` the datanode learns the cluster's
//! `global_xmin` from the GTM (a snapshot it releases at once) and removes the row versions no
//! snapshot at or after it can see, on a blocking thread: first the rows listed as dirty
//! ([`Mvcc::gc_dirty`]: rows that got a deleter or were written by a transaction that
//! aborted), at most [`DIRTY_ROWS`] rows, each once, for at most [`DIRTY_TIME`], then
//! [`SWEEP_STEP`] versions of the sweep over every version ([`Mvcc::gc`]), which finds what the
//! list missed. So storage does not grow without bound under updates, rows updated all the time
//! stay short, and GC never stalls the node for long. The tables' indexes come from the catalog
//! ([`GcCatalog`]), so index entries go with their versions.

use crate::sql::catalog::GcCatalog;
use crate::storage::mvcc::Mvcc;
use rxc_common::gtm::client::GtmClient;
use rxc_common::shutdown::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Dirty rows visited per round at most.
pub const DIRTY_ROWS: usize = 100_000;
/// How long a round visits dirty rows at most (then the rest waits for the next round).
pub const DIRTY_TIME: Duration = Duration::from_millis(200);
/// Versions the sweep over every version examines per round.
pub const SWEEP_STEP: usize = 5_000;
/// Keys of dropped tables and indexes deleted per round (a dropped million-row table goes in
/// about 20 rounds).
pub const DROPPED_STEP: usize = 50_000;

/// Runs garbage collection rounds until `shutdown`.
pub async fn run(mvcc: Arc<Mvcc>, gtm: GtmClient, interval: Duration, shutdown: Shutdown) {
    let session = gtm.new_session();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait() => break,
        }
        let global_xmin = match gtm.snapshot(session).await {
            Ok(snapshot) => {
                let _ = gtm.release_snapshot(session).await;
                snapshot.global_xmin
            }
            Err(e) => {
                tracing::debug!(error = %e, "garbage collection skipped: no GTM snapshot");
                continue;
            }
        };
        let mvcc = mvcc.clone();
        let round = tokio::task::spawn_blocking(move || {
            let catalog = GcCatalog::new(&mvcc);
            // Tables and indexes dropped for good...
            let mut removed = mvcc.gc_dropped(global_xmin, DROPPED_STEP)?;
            // ...the rows known to hold dead versions, as far as they go...
            let deadline = Instant::now() + DIRTY_TIME;
            removed += mvcc
                .gc_dirty(global_xmin, DIRTY_ROWS, Some(deadline), &catalog)?
                .versions;
            // ...and a slice of the sweep over every version, for what the list missed (rows
            // dirtied before a restart, transactions rolled back after a prepare).
            removed += mvcc.gc(global_xmin, SWEEP_STEP, &catalog)?.versions;
            Ok::<usize, crate::storage::mvcc::MvccError>(removed)
        })
        .await;
        match round {
            Ok(Ok(removed)) => {
                if removed > 0 {
                    tracing::debug!(removed, global_xmin = global_xmin.0, "garbage collected");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "garbage collection failed"),
            Err(e) => tracing::warn!(error = %e, "garbage collection task failed"),
        }
    }
    let _ = gtm.end_session(session).await;
}
