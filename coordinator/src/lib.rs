//! `rxc-coordinator`: the coordinator of rxc, the PostgreSQL endpoint applications talk to
//! (design brief §2, §7). It owns the cluster catalog, routes each statement to the datanodes
//! that hold its rows, and commits transactions that wrote several nodes with two-phase commit.
//!
//! A coordinator is built on the datanode's pieces, as a Postgres-XC coordinator is a
//! PostgreSQL server whose tables' rows live elsewhere: its own storage holds the catalog
//! (table descriptors, exactly as a datanode keeps them, with no rows) and the cluster catalog
//! ([`catalog`]); a local datanode session, driven with coordinator context like any
//! datanode, binds statements and runs what is the coordinator's own (system views, SET/SHOW,
//! the local half of DDL); the wire endpoint is the datanode's, over a [`session::CoordSession`].
//!
//! - [`catalog`]: nodes, node groups and table distributions, persisted.
//! - [`copy`]: COPY FROM STDIN into distributed tables, in routed batches; COPY TO STDOUT.
//! - [`deadlock`]: the detector of deadlocks across datanodes.
//! - [`gather`]: queries that combine several nodes' rows, run at the coordinator.
//! - [`pushdown`]: what a query over several nodes has each node do (filters, columns,
//!   partial aggregates, ORDER BY with LIMIT).
//! - [`pool`]: pooled connections to the datanodes, reloaded by `pgxc_pool_reload()`.
//! - [`remote`]: the SQL text shipped with its transaction context, and the answers read back.
//! - [`resolver`]: the in-doubt resolver, finishing two-phase commits of dead coordinators.
//! - [`route`]: which datanodes a statement's rows live on.
//! - [`session`]: a client's session — transactions across nodes, node DDL, table DDL,
//!   shipping statements, two-phase commit.

pub mod catalog;
pub mod copy;
pub mod deadlock;
pub mod gather;
pub mod pool;
pub mod pushdown;
pub mod remote;
pub mod resolver;
pub mod route;
pub mod session;
