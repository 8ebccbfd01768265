//! System views of the datanode: tables the binder resolves like any other, whose rows the
//! storage computes when they are scanned instead of reading them from the rows column family.
//! They have ids below the first user object id, so no stored table ever shares one, and they
//! are found before user tables of the same name (as `pg_catalog` comes first on PostgreSQL's
//! search path).
//!
//! - `pg_prepared_xacts` (transaction, gid, prepared, owner, database): the prepared
//!   transactions of this node, from the `gid/<gid>` entries two-phase commit keeps in `meta`.

use super::catalog::storage_error;
use crate::storage::keys::{Key, KeyPrefix};
use crate::storage::{Cf, Engine};
use chrono::{DateTime, Utc};
use rxc_common::sql::catalog::{Column, Table};
use rxc_common::sql::error::Result;
use rxc_common::sql::exec::Row;
use rxc_common::sql::{DataType, Value};
use rxc_common::txn::Gxid;

/// The id of `pg_prepared_xacts`.
pub const PG_PREPARED_XACTS: u64 = 100;

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

/// The system view called `name`, if there is one.
pub fn view(name: &str) -> Option<Table> {
    match name {
        "pg_prepared_xacts" => Some(Table {
            id: PG_PREPARED_XACTS,
            name: name.into(),
            columns: vec![
                column("transaction", DataType::Int8),
                column("gid", DataType::Text),
                column("prepared", DataType::TimestampTz),
                column("owner", DataType::Text),
                column("database", DataType::Text),
            ],
            primary_key: Vec::new(),
            primary_key_name: None,
            indexes: Vec::new(),
            checks: Vec::new(),
        }),
        _ => None,
    }
}

/// Whether `table_id` is a system view.
pub fn is_view(table_id: u64) -> bool {
    table_id == PG_PREPARED_XACTS
}

/// The rows of system view `table_id`.
pub fn rows(engine: &dyn Engine, table_id: u64) -> Result<Vec<Row>> {
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
