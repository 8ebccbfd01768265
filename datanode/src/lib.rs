//! `rxc-datanode`: the datanode of rxc, which stores shards of tables in RocksDB and executes
//! SQL on them (design brief §6).
//!
//! - [`storage`]: the [`storage::Engine`] trait with an in-memory and a RocksDB engine, group
//!   commit, the WAL stream for standbys, the order-preserving key encoding, and the MVCC layer
//!   over it ([`storage::mvcc`]).
//! - [`sql`]: the catalog, the executor's storage over MVCC transactions, system views, and the
//!   sessions that run statements with transaction context from the GTM or a coordinator.
//! - [`server`]: the PostgreSQL wire endpoint's handlers; [`wire`]: its connection loop, which
//!   sends each answer in one piece; [`auth`]: client authentication on it.
//! - [`session_thread`]: each connection on a thread of its own, its statements run in place.
//! - [`gc`]: background garbage collection below the GTM's `global_xmin`.
//! - [`launch`]: starting a server built on a node (the datanode, the coordinator).

pub mod auth;
pub mod gc;
pub mod launch;
pub mod server;
pub mod session_thread;
pub mod sql;
pub mod storage;
pub mod wire;
