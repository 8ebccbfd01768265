//! Background garbage collection: every `gc_interval_ms` the datanode learns the cluster's
//! `global_xmin` from the GTM (a snapshot it releases at once) and removes the row versions no
//! snapshot at or after it can see ([`Mvcc::gc`]), in bounded steps of [`GC_STEP`] versions on a
//! blocking thread, up to [`GC_STEPS_PER_ROUND`] steps a round — so storage does not grow
//! without bound under updates and GC never stalls the node for long. Each step learns the
//! tables' indexes from the catalog ([`GcCatalog`]), so index entries go with their versions.

use crate::sql::catalog::GcCatalog;
use crate::storage::mvcc::Mvcc;
use rxc_common::gtm::client::GtmClient;
use rxc_common::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;

/// Versions examined per GC step.
pub const GC_STEP: usize = 20_000;
/// Steps per round at most.
pub const GC_STEPS_PER_ROUND: usize = 50;

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
            let mut removed = 0;
            for _ in 0..GC_STEPS_PER_ROUND {
                removed += mvcc
                    .gc(global_xmin, GC_STEP, &GcCatalog::new(&mvcc))?
                    .versions;
                if mvcc.gc_pass_complete() {
                    break;
                }
            }
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
