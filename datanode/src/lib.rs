//! `rxc-datanode`: the datanode of rxc, which stores shards of tables and will execute SQL on
//! them (design brief §6).
//!
//! This first increment is the storage layer ([`storage`]): the [`storage::Engine`] trait with
//! an in-memory and a RocksDB engine, group commit, the WAL stream for standbys, and the
//! order-preserving key encoding, and the MVCC layer over it ([`storage::mvcc`]). The SQL
//! executor, the wire protocol and replication come next.

pub mod server;
pub mod sql;
pub mod storage;
