//! The datanode's SQL layer: the catalog kept in its own storage, the executor's
//! [`Storage`](rxc_common::sql::exec::Storage) over an MVCC transaction (rows and their
//! secondary indexes), index DDL, system views, and sessions that run statements with
//! transaction context from the GTM.

pub mod catalog;
pub mod index;
pub mod plan_cache;
pub mod roles;
pub mod session;
pub mod system;
pub mod table;
