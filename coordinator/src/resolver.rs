//! The in-doubt resolver: every coordinator runs one. It finishes two-phase commits whose
//! coordinator is gone, from the decision the GTM logged, so no transaction stays prepared
//! (holding its rows' locks, invisible) forever.
//!
//! Each round lists the GTM's 2PC log and takes the global transactions that no session is
//! finishing: this coordinator's own that none of its sessions runs (left by an earlier life
//! of the process: a crash between PREPARE and COMMIT PREPARED), and those of other
//! registered coordinators older than `in_doubt_after` (their coordinator died or lost the
//! GTM). For each:
//!
//! - decided: the decision is applied — `COMMIT PREPARED` / `ROLLBACK PREPARED` on every
//!   participant (one that no longer has it finished it already);
//! - undecided: the resolver logs *abort* first. Decisions never change at the GTM, so a
//!   coordinator that was only slow cannot commit afterwards: its own decide fails and it
//!   rolls back. Then as above.
//!
//! Only when every participant finished is the transaction forgotten at the GTM — that is the
//! commit's report, from which on snapshots see it, on every node at once. A participant that
//! cannot be reached keeps the transaction for the next round.
//!
//! Prepared transactions a client made itself on a datanode (`PREPARE TRANSACTION` there,
//! logged with the datanode as coordinator) are the client's to finish: the resolver leaves
//! them alone.

use crate::remote;
use crate::session::{lock, Cluster};
use rxc_common::cluster::NodeKind;
use rxc_common::gtm::proto::{PreparedTxn, Request, Response};
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_datanode::sql::session::gtm_error;
use std::sync::Arc;
use std::time::Duration;

/// How the resolver runs (coordinator settings `resolver_interval_ms`, `in_doubt_after_ms`).
#[derive(Clone, Copy, Debug)]
pub struct ResolverConfig {
    /// Pause between rounds.
    pub interval: Duration,
    /// Age after which another coordinator's unfinished transaction is taken for orphaned.
    pub in_doubt_after: Duration,
}

/// Runs the resolver of `cluster` until the process ends.
pub async fn run(cluster: Arc<Cluster>, config: ResolverConfig) {
    loop {
        tokio::time::sleep(config.interval).await;
        match resolve_once(&cluster, config.in_doubt_after).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(resolved = n, "in-doubt transactions finished"),
            Err(e) => tracing::warn!(error = %e, "in-doubt resolution round failed"),
        }
    }
}

/// One round: finishes what is in doubt; returns how many transactions it finished.
pub async fn resolve_once(cluster: &Cluster, in_doubt_after: Duration) -> Result<usize> {
    let gtm = cluster.gtm();
    let logged = gtm.list_prepared(false).await.map_err(gtm_error)?;
    if logged.is_empty() {
        return Ok(0);
    }
    let now = gtm.timestamp().await.map_err(gtm_error)?;
    let contents = cluster.catalog.snapshot();
    let mut finished = 0;
    for txn in logged {
        if lock(&cluster.in_flight).contains(&txn.gid) {
            continue;
        }
        let orphaned = if txn.coordinator == cluster.name {
            true
        } else {
            let coordinator = contents
                .nodes
                .get(&txn.coordinator)
                .is_some_and(|n| n.kind == NodeKind::Coordinator);
            let age = Duration::from_micros(now.saturating_sub(txn.prepared_at).max(0) as u64);
            coordinator && age >= in_doubt_after
        };
        if !orphaned {
            continue;
        }
        match resolve(cluster, &txn).await {
            Ok(()) => finished += 1,
            Err(e) => {
                tracing::warn!(gid = txn.gid, error = %e, "in-doubt transaction not finished yet")
            }
        }
    }
    Ok(finished)
}

/// Finishes one global transaction everywhere, then forgets it at the GTM.
async fn resolve(cluster: &Cluster, txn: &PreparedTxn) -> Result<()> {
    let gtm = cluster.gtm();
    let commit = match txn.decision {
        Some(d) => d,
        None => match gtm.decide(&txn.gid, false).await {
            Ok(()) => false,
            // Decided meanwhile (its coordinator was alive after all), or already finished.
            Err(_) => match gtm
                .call(Request::GetPrepared {
                    gid: txn.gid.clone(),
                })
                .await
                .map_err(gtm_error)?
            {
                Response::PreparedOne(Some(t)) => t.decision.ok_or_else(|| {
                    SqlError::internal(format!("{}: no decision could be logged", txn.gid))
                })?,
                _ => return Ok(()),
            },
        },
    };
    let sql = if commit {
        format!("COMMIT PREPARED '{}'", txn.gid)
    } else {
        format!("ROLLBACK PREPARED '{}'", txn.gid)
    };
    for node in &txn.participants {
        finish_part(cluster, node, &sql).await?;
    }
    gtm.forget(&txn.gid).await.map_err(gtm_error)?;
    tracing::info!(
        gid = txn.gid,
        coordinator = txn.coordinator,
        commit,
        "in-doubt transaction finished"
    );
    Ok(())
}

/// Runs COMMIT/ROLLBACK PREPARED on participant `node` (this coordinator's own storage or a
/// pooled node); a participant without the transaction finished it before.
async fn finish_part(cluster: &Cluster, node: &str, sql: &str) -> Result<()> {
    let result = if node == cluster.name {
        let mut session = cluster.local_session();
        let stmt = rxc_common::sql::parser::parse_single(sql)?
            .ok_or_else(|| SqlError::internal("empty statement"))?;
        let result = session.execute(&stmt, &[], None).await.map(|_| ());
        session.close().await;
        result
    } else {
        let conn = cluster.pool.get(node).await?;
        let result = remote::run(&conn.client, node, sql).await.map(|_| ());
        cluster.pool.put(conn);
        result
    };
    match result {
        Err(e) if e.code == sqlstate::UNDEFINED_OBJECT => Ok(()),
        other => other,
    }
}
