//! `rxc-common`: what two or more rxc components share — configuration loading, the GTM
//! protocol and its client, the transaction model (GXID, snapshot, visibility), telemetry and
//! the shutdown and data-directory helpers every server uses, the SQL engine core, and the
//! client-authentication settings of the PostgreSQL-wire servers.

pub mod auth;
pub mod cluster;
pub mod config;
pub mod datadir;
pub mod failpoint;
pub mod gtm;
pub mod net;
pub mod shutdown;
pub mod sql;
pub mod telemetry;
pub mod txn;
