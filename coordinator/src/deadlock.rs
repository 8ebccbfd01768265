//! Deadlock detection across datanodes: every coordinator runs a detector.
//!
//! A datanode breaks the deadlocks it sees itself (a cycle of its own wait-for graph, after
//! `deadlock_timeout`). A cycle through several datanodes — T1 waits for T2 on dn1 while T2
//! waits for T1 on dn2 — no datanode sees: GXIDs are global, so the cycle appears only in the
//! union of the graphs. Each round the detector reads every datanode's graph
//! (`rxc_lock_waits`), joins them, and looks for cycles whose edges lie on two or more
//! datanodes. A cycle seen in two consecutive rounds (so graphs read at slightly different
//! moments cannot make one up) loses its youngest transaction, the highest GXID: the detector
//! ends that transaction's lock waits with `BREAK DEADLOCK gxid` on the nodes where it waits,
//! and the statement fails there with 40P01, as PostgreSQL's victim does; its coordinator
//! rolls it back everywhere. Every detector picks the same victim, so several coordinators
//! seeing the same cycle break it once.

use crate::remote::{self, context_sql};
use crate::session::Cluster;
use rxc_common::sql::error::Result;
use rxc_datanode::sql::session::gtm_error;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// One edge of the joined wait-for graph: `waiter` waits for `holder` on `node`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub node: String,
    pub waiter: u64,
    pub holder: u64,
}

/// Runs the detector of `cluster`, a round every `interval`, until the process ends.
pub async fn run(cluster: Arc<Cluster>, interval: Duration) {
    let mut suspects = HashSet::new();
    loop {
        tokio::time::sleep(interval).await;
        match round(&cluster, &suspects).await {
            Ok(seen) => suspects = seen,
            Err(e) => {
                tracing::debug!(error = %e, "deadlock detection round failed");
                suspects.clear();
            }
        }
    }
}

/// One round: reads the graphs, breaks the cycles that were there in the previous round too
/// (their victims are in `suspects`); returns this round's victims.
async fn round(cluster: &Cluster, suspects: &HashSet<u64>) -> Result<HashSet<u64>> {
    let datanodes = cluster.catalog.snapshot().datanodes();
    if datanodes.len() < 2 {
        return Ok(HashSet::new());
    }
    let snapshot = cluster.gtm().unheld_snapshot().await.map_err(gtm_error)?;
    let sql = format!(
        "{}; SELECT waiter, holder FROM rxc_lock_waits",
        context_sql(None, Some(&snapshot))
    );
    let reads = datanodes.iter().map(|node| read_graph(cluster, node, &sql));
    let mut edges = Vec::new();
    for graph in futures::future::join_all(reads).await {
        edges.extend(graph?);
    }
    let mut seen = HashSet::new();
    for cycle in cycles(&edges) {
        let victim = cycle.victim;
        seen.insert(victim);
        if !suspects.contains(&victim) {
            continue;
        }
        for edge in edges.iter().filter(|e| e.waiter == victim) {
            let conn = cluster.pool.get(&edge.node).await?;
            let broke = remote::run(
                &conn.client,
                &edge.node,
                &format!("BREAK DEADLOCK {victim}"),
            )
            .await;
            cluster.pool.put(conn);
            broke?;
        }
        tracing::info!(
            victim,
            members = ?cycle.members,
            nodes = ?cycle.nodes,
            "deadlock across datanodes broken"
        );
    }
    Ok(seen)
}

/// Datanode `node`'s wait-for graph.
async fn read_graph(cluster: &Cluster, node: &str, sql: &str) -> Result<Vec<Edge>> {
    let conn = cluster.pool.get(node).await?;
    let answers = remote::run(&conn.client, node, sql).await;
    cluster.pool.put(conn);
    let rows = answers?.pop().map(|a| a.rows).unwrap_or_default();
    let number = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<u64>().ok());
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(Edge {
                node: node.to_string(),
                waiter: number(r.first()?)?,
                holder: number(r.get(1)?)?,
            })
        })
        .collect())
}

/// A cycle of the joined graph through two or more datanodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// Its transactions, ascending.
    pub members: Vec<u64>,
    /// The datanodes its edges lie on.
    pub nodes: BTreeSet<String>,
    /// The transaction that is rolled back to break it: the youngest (highest GXID).
    pub victim: u64,
}

/// The cycles of the graph `edges` whose edges lie on two or more datanodes (a cycle on one
/// datanode is that datanode's to break), each once.
pub fn cycles(edges: &[Edge]) -> Vec<Cycle> {
    let mut out: BTreeMap<Vec<u64>, Cycle> = BTreeMap::new();
    let starts: BTreeSet<u64> = edges.iter().map(|e| e.waiter).collect();
    for &start in &starts {
        // Depth-first over simple paths from `start`, looking for an edge back to it.
        let mut stack: Vec<(Vec<u64>, Vec<&Edge>)> = vec![(vec![start], Vec::new())];
        while let Some((members, via)) = stack.pop() {
            let last = *members.last().unwrap_or(&start);
            for e in edges.iter().filter(|e| e.waiter == last) {
                let mut via = via.clone();
                via.push(e);
                if e.holder == start {
                    let nodes: BTreeSet<String> = via.iter().map(|e| e.node.clone()).collect();
                    if nodes.len() < 2 {
                        continue;
                    }
                    let mut sorted = members.clone();
                    sorted.sort_unstable();
                    let victim = *sorted.last().unwrap_or(&start);
                    out.entry(sorted.clone()).or_insert(Cycle {
                        members: sorted,
                        nodes,
                        victim,
                    });
                } else if !members.contains(&e.holder) && members.len() < 64 {
                    let mut members = members.clone();
                    members.push(e.holder);
                    stack.push((members, via));
                }
            }
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(node: &str, waiter: u64, holder: u64) -> Edge {
        Edge {
            node: node.into(),
            waiter,
            holder,
        }
    }

    #[test]
    fn a_cycle_through_two_datanodes_loses_its_youngest() {
        let found = cycles(&[edge("dn1", 10, 12), edge("dn2", 12, 10), edge("dn1", 7, 10)]);
        assert_eq!(
            found,
            vec![Cycle {
                members: vec![10, 12],
                nodes: ["dn1".to_string(), "dn2".to_string()].into(),
                victim: 12,
            }]
        );
    }

    #[test]
    fn a_cycle_on_one_datanode_is_left_to_it() {
        assert!(cycles(&[edge("dn1", 1, 2), edge("dn1", 2, 1)]).is_empty());
    }

    #[test]
    fn no_cycle_no_victim() {
        assert!(cycles(&[edge("dn1", 1, 2), edge("dn2", 2, 3), edge("dn1", 4, 3)]).is_empty());
    }

    #[test]
    fn a_longer_cycle_and_a_waiter_on_two_nodes() {
        // 5 waits on dn1 and on dn2 (a statement over both); the cycle 5 → 6 → 8 → 5.
        let found = cycles(&[
            edge("dn1", 5, 6),
            edge("dn2", 5, 9),
            edge("dn2", 6, 8),
            edge("dn3", 8, 5),
        ]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].members, vec![5, 6, 8]);
        assert_eq!(found[0].victim, 8);
        assert_eq!(found[0].nodes.len(), 3);
    }
}
