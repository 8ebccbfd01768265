//! The datanode's key spaces: every key the datanode stores is a [`Key`], encoded with
//! [`keycode`] behind a one-byte space tag, in the column family of its role.
//! [`KeyPrefix`] encodes the leading part of a key for prefix scans.
//!
//! ```text
//!  cf          key                                                              value (later)
//!  meta        0x01 | name: bytes (escaped)                                     setting
//!  meta        0x02 | table_id: u64 BE                                          table descriptor
//!  rows        0x03 | table_id: u64 BE | pk: tuple | !version: u64 BE          row version
//!  index       0x04 | index_id: u64 BE | values: tuple (each ASC or DESC) | pk: tuple   (empty)
//!  txn_status  0x05 | gxid: u64 BE                                              commit status
//!  meta        0x06 | relation_id: u64 BE                                       dropped relation
//! ```
//!
//! - A row's versions sit together, ordered by the inverted GXID of the transaction that wrote
//!   them: a scan of [`KeyPrefix::RowVersions`] meets the newest version first, and a forward
//!   scan of a table meets rows in primary-key order, each row's versions newest first.
//! - Index entries carry the primary key in the key, so equal indexed values still give
//!   distinct keys, in primary-key order. An index column is ascending or descending; a
//!   descending value's bytes are inverted (keycode), which its first byte shows, so an entry
//!   decodes without its index's definition.
//! - Tags are unique across column families, so a key decodes without knowing its family.

use super::keycode::{self, Order, Value};
use super::{Cf, Result};
use crate::errdata;
use rxc_common::txn::Gxid;

const TAG_META: u8 = 0x01;
const TAG_TABLE: u8 = 0x02;
const TAG_ROW: u8 = 0x03;

/// The length of a row key's version suffix (the creator's GXID, inverted).
const VERSION_LEN: usize = 8;

/// Whether `key` is a whole [`Key::Row`] key (tag, table id, a tuple of at least its
/// terminator, version): the domain of [`row_versions_prefix`].
pub fn is_row_key(key: &[u8]) -> bool {
    key.first() == Some(&TAG_ROW) && key.len() > 1 + 8 + VERSION_LEN
}

/// The part of a row key all versions of its row share — [`KeyPrefix::RowVersions`] of the
/// row — what RocksDB's prefix filters of `rows` are built on. Keys of one row are contiguous,
/// since tuples are self-delimiting. Only for [`is_row_key`] keys.
pub fn row_versions_prefix(key: &[u8]) -> &[u8] {
    &key[..key.len().saturating_sub(VERSION_LEN)]
}

/// The key of the version `version` wrote of the row whose versions start with `prefix` (a
/// [`KeyPrefix::RowVersions`]): what [`Key::Row`] encodes.
pub fn row_version_key(prefix: &[u8], version: Gxid) -> Vec<u8> {
    let mut key = prefix.to_vec();
    keycode::encode_u64_desc(&mut key, version.0);
    key
}

/// The smallest key of row versions under `prefix`: where a seek for the row's newest version
/// starts (the version of the largest GXID, whose inverted bytes are all zero).
pub fn first_row_version(prefix: &[u8]) -> Vec<u8> {
    row_version_key(prefix, Gxid(u64::MAX))
}
const TAG_INDEX: u8 = 0x04;
const TAG_TXN_STATUS: u8 = 0x05;
const TAG_DROPPED: u8 = 0x06;

/// A key of the datanode's storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// A named node setting (format version, epoch, ...), in `meta`.
    Meta {
        /// The setting's name.
        name: String,
    },
    /// A table's catalog entry, in `meta`.
    Table {
        /// The table.
        table_id: u64,
    },
    /// One version of a row, in `rows`.
    Row {
        /// The table.
        table_id: u64,
        /// The primary key's values.
        pk: Vec<Value>,
        /// The GXID that wrote this version; encoded inverted, so newer versions sort first.
        version: Gxid,
    },
    /// An index entry, in `index`.
    Index {
        /// The index.
        index_id: u64,
        /// The indexed columns' values.
        values: Vec<Value>,
        /// Each indexed column's order, one per value.
        orders: Vec<Order>,
        /// The primary key of the indexed row.
        pk: Vec<Value>,
    },
    /// The local commit status of a transaction, in `txn_status`.
    TxnStatus {
        /// The transaction.
        gxid: Gxid,
    },
    /// A table or index a transaction dropped, whose stored rows or entries garbage
    /// collection removes once no snapshot can see the relation (in `meta`).
    Dropped {
        /// The table's or index's id.
        relation_id: u64,
    },
}

impl Key {
    /// The column family the key lives in.
    pub fn cf(&self) -> Cf {
        match self {
            Key::Meta { .. } | Key::Table { .. } | Key::Dropped { .. } => Cf::Meta,
            Key::Row { .. } => Cf::Rows,
            Key::Index { .. } => Cf::Index,
            Key::TxnStatus { .. } => Cf::TxnStatus,
        }
    }

    /// The key's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Key::Meta { name } => {
                out.push(TAG_META);
                keycode::encode_bytes(&mut out, name.as_bytes());
            }
            Key::Table { table_id } => {
                out.push(TAG_TABLE);
                keycode::encode_u64(&mut out, *table_id);
            }
            Key::Row {
                table_id,
                pk,
                version,
            } => {
                out.push(TAG_ROW);
                keycode::encode_u64(&mut out, *table_id);
                keycode::encode_tuple(&mut out, pk, &[]);
                keycode::encode_u64_desc(&mut out, version.0);
            }
            Key::Index {
                index_id,
                values,
                orders,
                pk,
            } => {
                out.push(TAG_INDEX);
                keycode::encode_u64(&mut out, *index_id);
                keycode::encode_tuple(&mut out, values, orders);
                keycode::encode_tuple(&mut out, pk, &[]);
            }
            Key::TxnStatus { gxid } => {
                out.push(TAG_TXN_STATUS);
                keycode::encode_u64(&mut out, gxid.0);
            }
            Key::Dropped { relation_id } => {
                out.push(TAG_DROPPED);
                keycode::encode_u64(&mut out, *relation_id);
            }
        }
        out
    }

    /// Decodes a key's bytes.
    pub fn decode(bytes: &[u8]) -> Result<Key> {
        let (&tag, mut input) = bytes.split_first().ok_or_else(|| errdata!("empty key"))?;
        let input = &mut input;
        let key = match tag {
            TAG_META => {
                let name = keycode::decode_bytes(input)?;
                Key::Meta {
                    name: String::from_utf8(name)
                        .map_err(|e| errdata!("meta key name is not UTF-8: {e}"))?,
                }
            }
            TAG_TABLE => Key::Table {
                table_id: keycode::decode_u64(input)?,
            },
            TAG_ROW => Key::Row {
                table_id: keycode::decode_u64(input)?,
                pk: keycode::decode_tuple(input, &[])?,
                version: Gxid(keycode::decode_u64_desc(input)?),
            },
            TAG_INDEX => {
                let index_id = keycode::decode_u64(input)?;
                let (values, orders) = keycode::decode_tuple_any(input)?;
                Key::Index {
                    index_id,
                    values,
                    orders,
                    pk: keycode::decode_tuple(input, &[])?,
                }
            }
            TAG_TXN_STATUS => Key::TxnStatus {
                gxid: Gxid(keycode::decode_u64(input)?),
            },
            TAG_DROPPED => Key::Dropped {
                relation_id: keycode::decode_u64(input)?,
            },
            t => return Err(errdata!("unknown key space tag {t:#04x}")),
        };
        if !input.is_empty() {
            return Err(errdata!("{} bytes after a {:?} key", input.len(), key.cf()));
        }
        Ok(key)
    }
}

/// The leading part of [`Key`]s, for prefix scans ([`Engine::scan_prefix`](super::Engine)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyPrefix {
    /// Every node setting.
    Meta,
    /// Every table catalog entry.
    Table,
    /// Every row version of a table, in primary-key order.
    Row {
        /// The table.
        table_id: u64,
    },
    /// Every version of one row, newest first.
    RowVersions {
        /// The table.
        table_id: u64,
        /// The row's primary key.
        pk: Vec<Value>,
    },
    /// Every entry of an index.
    Index {
        /// The index.
        index_id: u64,
    },
    /// The entries of an index whose leading indexed values equal `values` (all of them, or
    /// the first few columns).
    IndexValues {
        /// The index.
        index_id: u64,
        /// Leading indexed values.
        values: Vec<Value>,
        /// Their columns' orders, one per value.
        orders: Vec<Order>,
    },
    /// Every transaction status, oldest GXID first.
    TxnStatus,
    /// Every dropped relation not yet removed.
    Dropped,
}

impl KeyPrefix {
    /// The column family the prefix's keys live in.
    pub fn cf(&self) -> Cf {
        match self {
            KeyPrefix::Meta | KeyPrefix::Table | KeyPrefix::Dropped => Cf::Meta,
            KeyPrefix::Row { .. } | KeyPrefix::RowVersions { .. } => Cf::Rows,
            KeyPrefix::Index { .. } | KeyPrefix::IndexValues { .. } => Cf::Index,
            KeyPrefix::TxnStatus => Cf::TxnStatus,
        }
    }

    /// The prefix's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            KeyPrefix::Meta => out.push(TAG_META),
            KeyPrefix::Table => out.push(TAG_TABLE),
            KeyPrefix::Row { table_id } => {
                out.push(TAG_ROW);
                keycode::encode_u64(&mut out, *table_id);
            }
            KeyPrefix::RowVersions { table_id, pk } => {
                out.push(TAG_ROW);
                keycode::encode_u64(&mut out, *table_id);
                keycode::encode_tuple(&mut out, pk, &[]);
            }
            KeyPrefix::Index { index_id } => {
                out.push(TAG_INDEX);
                keycode::encode_u64(&mut out, *index_id);
            }
            KeyPrefix::IndexValues {
                index_id,
                values,
                orders,
            } => {
                out.push(TAG_INDEX);
                keycode::encode_u64(&mut out, *index_id);
                // No tuple terminator: the values match the leading columns.
                for (i, value) in values.iter().enumerate() {
                    let order = orders.get(i).copied().unwrap_or_default();
                    keycode::encode_value(&mut out, value, order);
                }
            }
            KeyPrefix::TxnStatus => out.push(TAG_TXN_STATUS),
            KeyPrefix::Dropped => out.push(TAG_DROPPED),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(i: i64, s: &str) -> Vec<Value> {
        vec![Value::Int(i), Value::Text(s.into())]
    }

    /// Every prefix, with a key it must prefix and one it must not. The match is exhaustive,
    /// so a new prefix variant fails to compile until it is covered here.
    #[test]
    fn each_prefix_prefixes_its_keys() {
        let cases: Vec<(KeyPrefix, Key, Key)> = vec![
            (
                KeyPrefix::Meta,
                Key::Meta {
                    name: "epoch".into(),
                },
                Key::Table { table_id: 1 },
            ),
            (
                KeyPrefix::Table,
                Key::Table { table_id: 7 },
                Key::Meta { name: "t".into() },
            ),
            (
                KeyPrefix::Row { table_id: 7 },
                Key::Row {
                    table_id: 7,
                    pk: pk(1, "a"),
                    version: Gxid(9),
                },
                Key::Row {
                    table_id: 8,
                    pk: pk(1, "a"),
                    version: Gxid(9),
                },
            ),
            (
                KeyPrefix::RowVersions {
                    table_id: 7,
                    pk: pk(1, "a"),
                },
                Key::Row {
                    table_id: 7,
                    pk: pk(1, "a"),
                    version: Gxid(9),
                },
                Key::Row {
                    table_id: 7,
                    pk: pk(1, "ab"),
                    version: Gxid(9),
                },
            ),
            (
                KeyPrefix::Index { index_id: 3 },
                Key::Index {
                    index_id: 3,
                    values: vec![Value::Null],
                    orders: vec![Order::Asc],
                    pk: pk(1, ""),
                },
                Key::Index {
                    index_id: 4,
                    values: vec![Value::Null],
                    orders: vec![Order::Asc],
                    pk: pk(1, ""),
                },
            ),
            (
                KeyPrefix::IndexValues {
                    index_id: 3,
                    values: vec![Value::Text("x".into())],
                    orders: vec![Order::Desc],
                },
                Key::Index {
                    index_id: 3,
                    values: vec![Value::Text("x".into()), Value::Int(2)],
                    orders: vec![Order::Desc, Order::Asc],
                    pk: pk(1, ""),
                },
                Key::Index {
                    index_id: 3,
                    values: vec![Value::Text("xy".into()), Value::Int(2)],
                    orders: vec![Order::Desc, Order::Asc],
                    pk: pk(1, ""),
                },
            ),
            (
                KeyPrefix::TxnStatus,
                Key::TxnStatus { gxid: Gxid(5) },
                Key::Table { table_id: 5 },
            ),
            (
                KeyPrefix::Dropped,
                Key::Dropped { relation_id: 5 },
                Key::Table { table_id: 5 },
            ),
        ];
        for (prefix, key, other) in cases {
            match prefix {
                KeyPrefix::Meta
                | KeyPrefix::Table
                | KeyPrefix::Row { .. }
                | KeyPrefix::RowVersions { .. }
                | KeyPrefix::Index { .. }
                | KeyPrefix::IndexValues { .. }
                | KeyPrefix::TxnStatus
                | KeyPrefix::Dropped => {}
            }
            let (p, k, o) = (prefix.encode(), key.encode(), other.encode());
            assert!(k.starts_with(&p), "{prefix:?} does not prefix {key:?}");
            assert!(!o.starts_with(&p), "{prefix:?} prefixes {other:?}");
            assert_eq!(prefix.cf(), key.cf(), "{prefix:?}");
            assert_eq!(Key::decode(&k).unwrap(), key);
        }
    }

    #[test]
    fn newest_version_sorts_first_and_rows_follow_the_primary_key() {
        let row = |id: i64, version: u64| {
            Key::Row {
                table_id: 1,
                pk: vec![Value::Int(id)],
                version: Gxid(version),
            }
            .encode()
        };
        let mut keys = [row(2, 5), row(1, 3), row(1, 10), row(-1, 4), row(2, 6)];
        keys.sort();
        let decoded: Vec<_> = keys.iter().map(|k| Key::decode(k).unwrap()).collect();
        let order: Vec<(i64, u64)> = decoded
            .into_iter()
            .map(|k| match k {
                Key::Row { pk, version, .. } => match pk[0] {
                    Value::Int(i) => (i, version.0),
                    _ => unreachable!(),
                },
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(order, vec![(-1, 4), (1, 10), (1, 3), (2, 6), (2, 5)]);
    }

    #[test]
    fn undecodable_keys_are_invalid_data() {
        assert!(Key::decode(&[]).is_err());
        assert!(Key::decode(&[0x77]).is_err());
        assert!(Key::decode(&[TAG_TABLE, 0, 0]).is_err());
        let mut extra = Key::TxnStatus { gxid: Gxid(3) }.encode();
        extra.push(0);
        assert!(Key::decode(&extra).is_err());
    }
}
