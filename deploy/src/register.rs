//! Node registration: every coordinator knows every datanode and every other coordinator.
//!
//! Node DDL is local to the coordinator it runs on (as in Postgres-XC), so rxc connects to
//! each coordinator (user `postgres`, database `postgres`: loopback is trusted by default),
//! reads its `pgxc_node`, and brings it to what the cluster file says:
//!
//! ```text
//!   missing          CREATE NODE "dn2" WITH (TYPE = 'datanode', HOST = 'h', PORT = p [, PRIMARY] [, PREFERRED])
//!   moved / changed  ALTER NODE "dn2" WITH (HOST = 'h', PORT = p, PRIMARY = false, ...)   (changed options only)
//!   anything done    SELECT pgxc_pool_reload()
//! ```
//!
//! A node the file does not name is left alone (rxc never drops nodes) and reported. A node
//! registered with the other type (a datanode where the file has a coordinator) is an error:
//! `ALTER NODE` cannot change a type. Statements that take `PRIMARY` away run before those
//! that give it, since a coordinator accepts one primary at a time.

use crate::cluster::{Cluster, Component, Kind};
use anyhow::{bail, Context, Result};
use rxc_common::cluster::{NodeDef, NodeKind};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// How long a coordinator that just opened its port may refuse connections.
const CONNECT_RETRY: Duration = Duration::from_secs(10);

/// What registering on one coordinator takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The node DDL to run, in order (without the pool reload).
    pub statements: Vec<String>,
    /// Registered nodes the cluster file does not name.
    pub unknown: Vec<String>,
}

/// The nodes `coordinator` should have registered: every datanode and every other
/// coordinator of the cluster.
pub fn wanted(cluster: &Cluster, coordinator: &Component) -> Vec<NodeDef> {
    cluster
        .components
        .iter()
        .filter(|c| c.name != coordinator.name)
        .filter_map(|c| {
            let kind = match c.kind {
                Kind::Datanode => NodeKind::Datanode,
                Kind::Coordinator => NodeKind::Coordinator,
                Kind::Gtm | Kind::GtmStandby | Kind::Proxy => return None,
            };
            Some(NodeDef {
                name: c.name.clone(),
                kind,
                host: c.host.clone(),
                port: c.port,
                primary: c.primary,
                preferred: coordinator.preferred.contains(&c.name),
                id: NodeDef::id_of(&c.name),
            })
        })
        .collect()
}

/// The statements that turn `have` (a coordinator's `pgxc_node`, named `own` itself) into
/// `want`.
pub fn plan(own: &str, have: &[NodeDef], want: &[NodeDef]) -> Result<Plan> {
    // (takes PRIMARY, statement): statements giving PRIMARY sort last.
    let mut statements: Vec<(bool, String)> = Vec::new();
    for node in want {
        let Some(old) = have.iter().find(|h| h.name == node.name) else {
            let mut options = vec![
                format!("TYPE = '{}'", node.kind.name()),
                format!("HOST = {}", literal(&node.host)),
                format!("PORT = {}", node.port),
            ];
            if node.primary {
                options.push("PRIMARY".into());
            }
            if node.preferred {
                options.push("PREFERRED".into());
            }
            statements.push((
                node.primary,
                format!(
                    "CREATE NODE {} WITH ({})",
                    identifier(&node.name),
                    options.join(", ")
                ),
            ));
            continue;
        };
        if old.kind != node.kind {
            bail!(
                "node {} is registered as a {} but the cluster file has a {}: drop it there first (DROP NODE {})",
                node.name,
                old.kind.name(),
                node.kind.name(),
                identifier(&node.name)
            );
        }
        let mut options = Vec::new();
        if old.host != node.host {
            options.push(format!("HOST = {}", literal(&node.host)));
        }
        if old.port != node.port {
            options.push(format!("PORT = {}", node.port));
        }
        if old.primary != node.primary {
            options.push(format!("PRIMARY = {}", node.primary));
        }
        if old.preferred != node.preferred {
            options.push(format!("PREFERRED = {}", node.preferred));
        }
        if !options.is_empty() {
            statements.push((
                node.primary && !old.primary,
                format!(
                    "ALTER NODE {} WITH ({})",
                    identifier(&node.name),
                    options.join(", ")
                ),
            ));
        }
    }
    statements.sort_by_key(|(gives_primary, _)| *gives_primary);
    let unknown = have
        .iter()
        .filter(|h| h.name != own && !want.iter().any(|w| w.name == h.name))
        .map(|h| h.name.clone())
        .collect();
    Ok(Plan {
        statements: statements.into_iter().map(|(_, s)| s).collect(),
        unknown,
    })
}

/// Brings `coordinator`'s registered nodes to what the cluster file says and reloads its
/// pool when anything changed; returns what it did.
pub async fn sync(cluster: &Cluster, coordinator: &Component) -> Result<Plan> {
    let context = || {
        format!(
            "registering nodes on coordinator {} at {}",
            coordinator.name,
            coordinator.address()
        )
    };
    let client = connect(coordinator).await.with_context(context)?;
    let have = registered(&client).await.with_context(context)?;
    let plan =
        plan(&coordinator.name, &have, &wanted(cluster, coordinator)).with_context(context)?;
    for statement in &plan.statements {
        client
            .batch_execute(statement)
            .await
            .with_context(|| statement.clone())
            .with_context(context)?;
    }
    if !plan.statements.is_empty() {
        client
            .batch_execute("SELECT pgxc_pool_reload()")
            .await
            .context("SELECT pgxc_pool_reload()")
            .with_context(context)?;
    }
    Ok(plan)
}

/// Connects to a coordinator as `postgres` on database `postgres`, retrying while it does
/// not accept connections yet.
async fn connect(coordinator: &Component) -> Result<Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&coordinator.host)
        .port(coordinator.port)
        .user("postgres")
        .dbname("postgres")
        .application_name("rxc")
        .connect_timeout(Duration::from_secs(5));
    let start = Instant::now();
    let (client, connection) = loop {
        match config.connect(NoTls).await {
            Ok(pair) => break pair,
            Err(e) if e.as_db_error().is_none() && start.elapsed() < CONNECT_RETRY => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).context("cannot connect as user postgres"),
        }
    };
    tokio::spawn(async move {
        // The connection ends when the client is dropped; its error then is of no interest.
        let _ = connection.await;
    });
    Ok(client)
}

/// A coordinator's `pgxc_node`.
async fn registered(client: &Client) -> Result<Vec<NodeDef>> {
    let query = "SELECT node_name, node_type, node_host, node_port, nodeis_primary, nodeis_preferred FROM pgxc_node";
    let messages = client.simple_query(query).await.context(query)?;
    let mut nodes = Vec::new();
    for message in messages {
        let SimpleQueryMessage::Row(row) = message else {
            continue;
        };
        let field = |i: usize| row.get(i).unwrap_or_default().to_string();
        let kind = match field(1).as_str() {
            "C" => NodeKind::Coordinator,
            "D" => NodeKind::Datanode,
            other => bail!("pgxc_node: unknown node_type `{other}` of {}", field(0)),
        };
        nodes.push(NodeDef {
            name: field(0),
            kind,
            host: field(2),
            port: field(3)
                .parse()
                .with_context(|| format!("pgxc_node: node_port of {}", field(0)))?,
            primary: field(4) == "t",
            preferred: field(5) == "t",
            id: NodeDef::id_of(&field(0)),
        });
    }
    Ok(nodes)
}

/// A SQL identifier, double-quoted (node names keep their case).
fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datanode(name: &str, port: u16, primary: bool) -> NodeDef {
        NodeDef {
            name: name.into(),
            kind: NodeKind::Datanode,
            host: "127.0.0.1".into(),
            port,
            primary,
            preferred: false,
            id: NodeDef::id_of(name),
        }
    }

    #[test]
    fn missing_nodes_are_created() {
        let coord2 = NodeDef {
            kind: NodeKind::Coordinator,
            ..datanode("coord2", 5433, false)
        };
        let mut dn2 = datanode("dn2", 7002, false);
        dn2.preferred = true;
        let want = [datanode("dn1", 7001, true), dn2, coord2];
        let plan = plan("coord1", &[], &want).unwrap();
        assert_eq!(
            plan.statements,
            [
                "CREATE NODE \"dn2\" WITH (TYPE = 'datanode', HOST = '127.0.0.1', PORT = 7002, PREFERRED)",
                "CREATE NODE \"coord2\" WITH (TYPE = 'coordinator', HOST = '127.0.0.1', PORT = 5433)",
                "CREATE NODE \"dn1\" WITH (TYPE = 'datanode', HOST = '127.0.0.1', PORT = 7001, PRIMARY)",
            ]
        );
        assert!(plan.unknown.is_empty());
    }

    #[test]
    fn changed_nodes_are_altered_and_primary_moves_in_order() {
        let have = [
            datanode("dn1", 7001, true),
            datanode("dn2", 7002, false),
            datanode("dn9", 7009, false),
        ];
        let want = [datanode("dn1", 7001, false), datanode("dn2", 7012, true)];
        let plan = plan("coord1", &have, &want).unwrap();
        assert_eq!(
            plan.statements,
            [
                "ALTER NODE \"dn1\" WITH (PRIMARY = false)",
                "ALTER NODE \"dn2\" WITH (PORT = 7012, PRIMARY = true)",
            ]
        );
        assert_eq!(plan.unknown, ["dn9"]);
        assert_eq!(
            super::plan("coord1", &want, &want).unwrap(),
            Plan::default()
        );
    }

    #[test]
    fn a_node_of_the_other_type_is_an_error() {
        let have = [NodeDef {
            kind: NodeKind::Coordinator,
            ..datanode("dn1", 7001, false)
        }];
        let e = plan("coord1", &have, &[datanode("dn1", 7001, false)]).unwrap_err();
        assert!(
            e.to_string().contains(
                "node dn1 is registered as a coordinator but the cluster file has a datanode"
            ),
            "{e}"
        );
    }
}
