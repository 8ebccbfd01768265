//! System views of the datanode: tables the binder resolves like any other, whose rows the
//! storage computes when they are scanned instead of reading them from the rows column family.
//! They have ids below the first user object id, so no stored table ever shares one, and they
//! are found before user tables of the same name (as `pg_catalog` comes first on PostgreSQL's
//! search path).
//!
//! - `pg_prepared_xacts` (transaction, gid, prepared, owner, database): the prepared
//!   transactions of this node, from the `gid/<gid>` entries two-phase commit keeps in `meta`.
//! - `pgxc_node`, `pgxc_group`, `pgxc_class`: the cluster catalog a coordinator keeps in
//!   `meta` (`pgxc_node/<name>`, `pgxc_group/<name>`, `pgxc_class/<table>` entries, postcard
//!   encoded [`rxc_common::cluster`] descriptors); empty on a datanode.
//! - `pg_roles`, `pg_user`: the roles (built in and stored) as the transaction sees them.
//! - `rxc_lock_waits` (waiter, holder): the wait-for graph of this node's lock manager, each
//!   waiting transaction's GXID and the GXID it waits for (a coordinator's deadlock detector
//!   joins every datanode's).

use super::catalog::storage_error;
use crate::storage::keys::{Key, KeyPrefix};
use crate::storage::locks::LockManager;
use crate::storage::{Cf, Engine};
use chrono::{DateTime, Utc};
use rxc_common::cluster::{Distribution, NodeDef, NodeGroup};
use rxc_common::sql::catalog::{Column, Table};
use rxc_common::sql::error::Result;
use rxc_common::sql::exec::Row;
use rxc_common::sql::{DataType, Value};
use rxc_common::txn::Gxid;

/// The id of `pg_prepared_xacts`.
pub const PG_PREPARED_XACTS: u64 = 100;
/// The id of `pgxc_node`.
pub const PGXC_NODE: u64 = 101;
/// The id of `pgxc_group`.
pub const PGXC_GROUP: u64 = 102;
/// The id of `pgxc_class`.
pub const PGXC_CLASS: u64 = 103;
/// The id of `rxc_lock_waits`.
pub const RXC_LOCK_WAITS: u64 = 104;
/// The id of `pg_roles` (its rows come from the roles the transaction sees, see
/// [`super::roles::Roles::rows`]).
pub const PG_ROLES: u64 = 105;
/// The id of `pg_user`.
pub const PG_USER: u64 = 106;

/// The `meta` name prefix of a node's entry (`pgxc_node/<name>`).
pub const NODE_ENTRY: &str = "pgxc_node/";
/// The `meta` name prefix of a node group's entry.
pub const GROUP_ENTRY: &str = "pgxc_group/";
/// The `meta` name prefix of a distributed table's entry (by table name).
pub const CLASS_ENTRY: &str = "pgxc_class/";

/// The `meta` name of a prepared transaction's entry.
pub fn gid_entry_name(gid: &str) -> String {
    format!("gid/{gid}")
}

/// A prepared transaction's `meta` entry: its GXID, and when it was prepared.
pub fn encode_gid_entry(gxid: Gxid, prepared: DateTime<Utc>) -> Vec<u8> {
    let mut out = gxid.0.to_be_bytes().to_vec();
    out.extend_from_slice(&prepared.timestamp_micros().to_be_bytes());
    out
}

/// Reads [`encode_gid_entry`]'s form.
pub fn decode_gid_entry(bytes: &[u8]) -> Option<(Gxid, Option<DateTime<Utc>>)> {
    let gxid = Gxid(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?));
    let prepared = bytes
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .and_then(|b| DateTime::from_timestamp_micros(i64::from_be_bytes(b)));
    Some((gxid, prepared))
}

fn column(name: &str, data_type: DataType) -> Column {
    Column {
        name: name.into(),
        data_type,
        nullable: true,
        default: None,
    }
}

fn view_table(id: u64, name: &str, columns: &[(&str, DataType)]) -> Table {
    Table {
        id,
        name: name.into(),
        columns: columns.iter().map(|(n, t)| column(n, t.clone())).collect(),
        primary_key: Vec::new(),
        primary_key_name: None,
        indexes: Vec::new(),
        checks: Vec::new(),
    }
}

/// The system view called `name`, if there is one.
pub fn view(name: &str) -> Option<Table> {
    use DataType::*;
    Some(match name {
        "pg_prepared_xacts" => view_table(
            PG_PREPARED_XACTS,
            name,
            &[
                ("transaction", Int8),
                ("gid", Text),
                ("prepared", TimestampTz),
                ("owner", Text),
                ("database", Text),
            ],
        ),
        "pgxc_node" => view_table(
            PGXC_NODE,
            name,
            &[
                ("node_name", Text),
                ("node_type", Text),
                ("node_port", Int4),
                ("node_host", Text),
                ("nodeis_primary", Bool),
                ("nodeis_preferred", Bool),
                ("node_id", Int4),
            ],
        ),
        "pgxc_group" => view_table(
            PGXC_GROUP,
            name,
            &[("group_name", Text), ("group_members", Text)],
        ),
        "pgxc_class" => view_table(
            PGXC_CLASS,
            name,
            &[
                ("pcrelid", Text),
                ("pclocatortype", Text),
                ("pcattnum", Int2),
                ("nodeoids", Text),
            ],
        ),
        "rxc_lock_waits" => view_table(RXC_LOCK_WAITS, name, &[("waiter", Int8), ("holder", Int8)]),
        "pg_roles" => view_table(
            PG_ROLES,
            name,
            &[
                ("rolname", Text),
                ("rolsuper", Bool),
                ("rolinherit", Bool),
                ("rolcreaterole", Bool),
                ("rolcreatedb", Bool),
                ("rolcanlogin", Bool),
                ("rolreplication", Bool),
                ("rolconnlimit", Int4),
                ("rolpassword", Text),
                ("rolvaliduntil", TimestampTz),
                ("rolbypassrls", Bool),
                ("rolconfig", Text),
                ("oid", Int4),
            ],
        ),
        "pg_user" => view_table(
            PG_USER,
            name,
            &[
                ("usename", Text),
                ("usesysid", Int4),
                ("usecreatedb", Bool),
                ("usesuper", Bool),
                ("userepl", Bool),
                ("usebypassrls", Bool),
                ("passwd", Text),
                ("valuntil", TimestampTz),
                ("useconfig", Text),
            ],
        ),
        _ => return None,
    })
}

/// Whether `table_id` is a system view.
pub fn is_view(table_id: u64) -> bool {
    (PG_PREPARED_XACTS..=PG_USER).contains(&table_id)
}

/// The rows of a cluster catalog view: each `meta` entry under `prefix`, decoded and shown.
fn cluster_rows<T: serde::de::DeserializeOwned>(
    engine: &dyn Engine,
    prefix: &str,
    show: impl Fn(&str, T) -> Row,
) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for item in engine.scan_prefix(Cf::Meta, &KeyPrefix::Meta.encode()) {
        let (key, value) = item.map_err(storage_error)?;
        let Ok(Key::Meta { name }) = Key::decode(&key) else {
            continue;
        };
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        if let Ok(entry) = postcard::from_bytes::<T>(&value) {
            out.push(show(rest, entry));
        }
    }
    Ok(out)
}

/// The rows of system view `table_id`.
pub fn rows(engine: &dyn Engine, locks: &LockManager, table_id: u64) -> Result<Vec<Row>> {
    let text = |s: &str| Value::Text(s.to_string());
    match table_id {
        RXC_LOCK_WAITS => {
            return Ok(locks
                .wait_for_graph()
                .into_iter()
                .map(|(w, h)| vec![Value::Int8(w.0 as i64), Value::Int8(h.0 as i64)])
                .collect())
        }
        PGXC_NODE => {
            return cluster_rows(engine, NODE_ENTRY, |_, n: NodeDef| {
                vec![
                    text(&n.name),
                    text(n.kind.letter()),
                    Value::Int4(i32::from(n.port)),
                    text(&n.host),
                    Value::Bool(n.primary),
                    Value::Bool(n.preferred),
                    Value::Int4(n.id),
                ]
            })
        }
        PGXC_GROUP => {
            return cluster_rows(engine, GROUP_ENTRY, |_, g: NodeGroup| {
                vec![text(&g.name), text(&g.members.join(" "))]
            })
        }
        PGXC_CLASS => {
            return cluster_rows(engine, CLASS_ENTRY, |table, d: Distribution| {
                let attnum = d.locator.column().map_or(0, |c| c as i16 + 1);
                vec![
                    text(table),
                    text(d.locator.letter()),
                    Value::Int2(attnum),
                    text(&d.nodes.join(" ")),
                ]
            })
        }
        _ => {}
    }
    let mut out = Vec::new();
    if table_id != PG_PREPARED_XACTS {
        return Ok(out);
    }
    let prefix = KeyPrefix::Meta.encode();
    for item in engine.scan_prefix(Cf::Meta, &prefix) {
        let (key, value) = item.map_err(storage_error)?;
        let Ok(Key::Meta { name }) = Key::decode(&key) else {
            continue;
        };
        let Some(gid) = name.strip_prefix("gid/") else {
            continue;
        };
        let Some((gxid, prepared)) = decode_gid_entry(&value) else {
            continue;
        };
        out.push(vec![
            Value::Int8(gxid.0 as i64),
            Value::Text(gid.to_string()),
            prepared.map(Value::TimestampTz).unwrap_or(Value::Null),
            Value::Text("postgres".into()),
            Value::Text("postgres".into()),
        ]);
    }
    Ok(out)
}
