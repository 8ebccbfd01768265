//! The pool of connections to the datanodes: per node, idle tokio-postgres clients connected
//! as a coordinator (`-c rxc.remotetype=coordinator`, so the datanode takes the transaction
//! context from the statements and never asks the GTM).
//!
//! A session takes a connection for each node its transaction uses and gives it back when
//! the transaction ends. The pool serves the node definitions it was last loaded with:
//! `CREATE/ALTER/DROP NODE` change the catalog only, and `pgxc_pool_reload()` loads the
//! catalog's definitions — a node whose address changed (or that was dropped) loses its idle
//! connections, and connections in use are closed when they come back, so new transactions
//! reach the new address while running ones finish where they began.
//!
//! Connections are opened on the shared runtime, where their connection tasks run (a session
//! thread's runtime ends with its session).

use rxc_common::cluster::NodeDef;
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio_postgres::{Client, NoTls};

/// Idle connections kept per node.
const MAX_IDLE: usize = 64;

struct Slot {
    def: NodeDef,
    /// Bumped when the node's definition changes: connections of older generations close.
    generation: u64,
    idle: Vec<Client>,
}

/// A connection taken from the pool.
pub struct Pooled {
    pub client: Client,
    pub node: String,
    generation: u64,
}

/// The coordinator's pool.
pub struct Pool {
    runtime: tokio::runtime::Handle,
    /// The coordinator's name (the datanodes' `application_name` for its connections).
    name: String,
    slots: Mutex<BTreeMap<String, Slot>>,
    next_generation: AtomicU64,
}

/// A datanode's error as the client should see it: its SQLSTATE and message; a failure to
/// talk to the node is 08006 naming it.
pub fn remote_error(node: &str, e: tokio_postgres::Error) -> SqlError {
    match e.as_db_error() {
        Some(db) => {
            let mut out = SqlError::with_code(db.code().code(), db.message());
            out.detail = db.detail().map(str::to_string);
            out.hint = db.hint().map(str::to_string);
            out
        }
        None => SqlError::new(
            sqlstate::CONNECTION_FAILURE,
            format!("datanode {node}: {e}"),
        ),
    }
}

impl Pool {
    /// An empty pool; call it on the shared runtime.
    pub fn new(name: &str) -> Pool {
        Pool {
            runtime: tokio::runtime::Handle::current(),
            name: name.to_string(),
            slots: Mutex::new(BTreeMap::new()),
            next_generation: AtomicU64::new(1),
        }
    }

    fn generation(&self) -> u64 {
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `task` on the shared runtime, detached.
    pub fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(task);
    }

    /// Loads node definitions (`pgxc_pool_reload()`): new nodes are added, dropped ones
    /// removed, changed ones get a new generation. Returns whether anything changed.
    pub fn reload(&self, nodes: &[NodeDef]) -> bool {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let before = slots.len();
        slots.retain(|name, _| nodes.iter().any(|n| &n.name == name));
        let mut changed = slots.len() != before;
        for def in nodes {
            match slots.get_mut(&def.name) {
                Some(slot) if slot.def == *def => {}
                Some(slot) => {
                    slot.def = def.clone();
                    slot.generation = self.generation();
                    slot.idle.clear();
                    changed = true;
                }
                None => {
                    slots.insert(
                        def.name.clone(),
                        Slot {
                            def: def.clone(),
                            generation: self.generation(),
                            idle: Vec::new(),
                        },
                    );
                    changed = true;
                }
            }
        }
        changed
    }

    /// Whether the pool serves exactly `nodes` (`pgxc_pool_check()`).
    pub fn matches(&self, nodes: &[NodeDef]) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.len() == nodes.len()
            && nodes
                .iter()
                .all(|n| slots.get(&n.name).is_some_and(|s| s.def == *n))
    }

    /// Closes the idle connections of `nodes` (all with `None`): `CLEAN CONNECTION`.
    pub fn clean(&self, nodes: Option<&[String]>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        for (name, slot) in slots.iter_mut() {
            if nodes.is_none_or(|n| n.contains(name)) {
                slot.idle.clear();
            }
        }
    }

    /// A connection to node `name`: an idle one, else a new one.
    pub async fn get(&self, name: &str) -> Result<Pooled> {
        let (def, generation) = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let slot = slots.get_mut(name).ok_or_else(|| {
                SqlError::new(
                    sqlstate::CONNECTION_FAILURE,
                    format!("node \"{name}\" is not in the pool: run SELECT pgxc_pool_reload()"),
                )
            })?;
            while let Some(client) = slot.idle.pop() {
                if !client.is_closed() {
                    return Ok(Pooled {
                        client,
                        node: name.to_string(),
                        generation: slot.generation,
                    });
                }
            }
            (slot.def.clone(), slot.generation)
        };
        let conninfo = format!(
            "host={} port={} user=postgres dbname=postgres application_name={} \
             options='-c rxc.remotetype=coordinator'",
            def.host, def.port, self.name
        );
        let node = name.to_string();
        let connected = self
            .runtime
            .spawn(async move {
                let (client, connection) = tokio_postgres::connect(&conninfo, NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "datanode connection ended");
                    }
                });
                Ok::<_, tokio_postgres::Error>(client)
            })
            .await
            .map_err(|e| SqlError::internal(format!("connect task failed: {e}")))?;
        let client = connected.map_err(|e| {
            SqlError::new(
                sqlstate::CONNECTION_FAILURE,
                format!(
                    "cannot connect to node {node} at {}:{}: {e}",
                    def.host, def.port
                ),
            )
        })?;
        Ok(Pooled {
            client,
            node,
            generation,
        })
    }

    /// Gives a connection back (closed if its node changed or went, or it broke).
    pub fn put(&self, pooled: Pooled) {
        if pooled.client.is_closed() {
            return;
        }
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get_mut(&pooled.node) {
            if slot.generation == pooled.generation && slot.idle.len() < MAX_IDLE {
                slot.idle.push(pooled.client);
            }
        }
    }
}
