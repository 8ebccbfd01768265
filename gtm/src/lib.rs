//! `rxc-gtm`: the global transaction manager. It hands out GXIDs and snapshots, keeps
//! sequences and the 2PC decision log, and makes its state durable in `gtm.control` and its log. An active
//! GTM forwards every state change to its standby synchronously.
//!
//! Layout: [`state`] is the deterministic state machine, [`sequence`] the sequence rules,
//! [`control`] the control file, [`server`] the network front end and the batching core,
//! [`standby`] the replication to and from a standby.

pub mod control;
pub mod sequence;
pub mod server;
pub mod standby;
pub mod state;
