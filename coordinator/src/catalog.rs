//! The coordinator's cluster catalog: the nodes it knows (`CREATE NODE`), node groups and
//! each distributed table's distribution (`pgxc_class`).
//!
//! Entries live in the `meta` column family of the coordinator's own storage, each one
//! postcard-encoded under a name of its own (`pgxc_node/<name>`, `pgxc_group/<name>`,
//! `pgxc_class/<table>`), written synced; the system views `pgxc_node`, `pgxc_group` and
//! `pgxc_class` read them there ([`rxc_datanode::sql::system`]). The catalog keeps a copy in
//! memory, loaded at startup and changed with every write.
//!
//! Node DDL is local to the coordinator it runs on, as in Postgres-XC: it changes this catalog
//! at once, and the pool follows at `pgxc_pool_reload()`. A table's distribution is written
//! before its `CREATE TABLE` commits (and removed again if that transaction rolls back) and
//! removed after its `DROP TABLE` committed, so a committed table always has one; entries a
//! crash left naming no table are removed at startup. Every coordinator records the same
//! distributions: table DDL runs on all of them in one transaction.

use rxc_common::cluster::{Distribution, NodeDef, NodeGroup, NodeKind};
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_datanode::sql::system::{CLASS_ENTRY, GROUP_ENTRY, NODE_ENTRY};
use rxc_datanode::storage::keys::{Key, KeyPrefix};
use rxc_datanode::storage::{Cf, Engine, WriteBatch};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

fn storage_error(e: impl std::fmt::Display) -> SqlError {
    SqlError::internal(format!("cluster catalog: {e}"))
}

/// What the catalog holds.
#[derive(Clone, Debug, Default)]
pub struct Contents {
    pub nodes: BTreeMap<String, NodeDef>,
    pub groups: BTreeMap<String, NodeGroup>,
    /// Distributions by table name.
    pub classes: BTreeMap<String, Distribution>,
}

impl Contents {
    /// The names of the registered datanodes, in name order.
    pub fn datanodes(&self) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.kind == NodeKind::Datanode)
            .map(|n| n.name.clone())
            .collect()
    }

    /// Node `name`, or 42704 naming it.
    pub fn node(&self, name: &str) -> Result<&NodeDef> {
        self.nodes.get(name).ok_or_else(|| {
            SqlError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("PGXC Node {name}: object not defined"),
            )
        })
    }
}

/// The cluster catalog over the coordinator's storage.
pub struct ClusterCatalog {
    engine: Arc<dyn Engine>,
    /// Replaced whole by each write, so a reader's copy is one `Arc` clone.
    contents: RwLock<Arc<Contents>>,
}

impl ClusterCatalog {
    /// Loads the catalog from `engine`.
    pub fn open(engine: Arc<dyn Engine>) -> Result<ClusterCatalog> {
        let mut contents = Contents::default();
        for item in engine.scan_prefix(Cf::Meta, &KeyPrefix::Meta.encode()) {
            let (key, value) = item.map_err(storage_error)?;
            let Ok(Key::Meta { name }) = Key::decode(&key) else {
                continue;
            };
            if let Some(n) = name.strip_prefix(NODE_ENTRY) {
                contents.nodes.insert(n.to_string(), decode(&value)?);
            } else if let Some(g) = name.strip_prefix(GROUP_ENTRY) {
                contents.groups.insert(g.to_string(), decode(&value)?);
            } else if let Some(t) = name.strip_prefix(CLASS_ENTRY) {
                contents.classes.insert(t.to_string(), decode(&value)?);
            }
        }
        Ok(ClusterCatalog {
            engine,
            contents: RwLock::new(Arc::new(contents)),
        })
    }

    /// What the catalog holds now.
    pub fn snapshot(&self) -> Arc<Contents> {
        self.contents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Writes (or with `None` deletes) entry `prefix` + `name`, synced, and applies the same
    /// change to the copy in memory with `apply`.
    fn put<T: Serialize>(
        &self,
        prefix: &str,
        name: &str,
        value: Option<&T>,
        apply: impl FnOnce(&mut Contents),
    ) -> Result<()> {
        let mut contents = self.contents.write().unwrap_or_else(|e| e.into_inner());
        let key = Key::Meta {
            name: format!("{prefix}{name}"),
        }
        .encode();
        let mut batch = WriteBatch::synced();
        match value {
            Some(v) => batch.put(
                Cf::Meta,
                key,
                postcard::to_stdvec(v).map_err(storage_error)?,
            ),
            None => batch.delete(Cf::Meta, key),
        };
        self.engine.write(batch).map_err(storage_error)?;
        apply(Arc::make_mut(&mut contents));
        Ok(())
    }

    /// Registers a node, or replaces its definition.
    pub fn put_node(&self, node: NodeDef) -> Result<()> {
        let entry = node.clone();
        self.put(NODE_ENTRY, &node.name, Some(&node), |c| {
            c.nodes.insert(entry.name.clone(), entry);
        })
    }

    /// Removes node `name`.
    pub fn delete_node(&self, name: &str) -> Result<()> {
        self.put::<NodeDef>(NODE_ENTRY, name, None, |c| {
            c.nodes.remove(name);
        })
    }

    /// Creates or removes node group `name`.
    pub fn put_group(&self, name: &str, group: Option<NodeGroup>) -> Result<()> {
        self.put(GROUP_ENTRY, name, group.as_ref(), |c| {
            match group.clone() {
                Some(g) => c.groups.insert(name.to_string(), g),
                None => c.groups.remove(name),
            };
        })
    }

    /// Records (or with `None` removes) the distribution of table `name`.
    pub fn put_class(&self, table: &str, distribution: Option<Distribution>) -> Result<()> {
        self.put(CLASS_ENTRY, table, distribution.as_ref(), |c| {
            match distribution.clone() {
                Some(d) => c.classes.insert(table.to_string(), d),
                None => c.classes.remove(table),
            };
        })
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(storage_error)
}
