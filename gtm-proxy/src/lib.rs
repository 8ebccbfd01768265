//! `rxc-gtm-proxy`: the GTM proxy, one per host (design brief §5).
//!
//! Components connect to the proxy exactly as to a GTM (same handshake and frames; the proxy
//! answers `Hello` with `Welcome { role: Proxy }`). The proxy keeps one connection to the GTM and
//! forwards what its components ask over it, so the GTM sees one client per host instead of
//! every backend of every component:
//!
//! ```text
//!   component conn ─read─▶ Job::Frame ─┐
//!   component conn ─read─▶ Job::Frame ─┼─▶ router task ─ submit, in order ─▶ GtmClient ─▶ GTM
//!   component conn ─read─▶ Job::Frame ─┘   │ sessions: (conn, session) → upstream session
//!                                          │ snapshots: one upstream Snapshot per round
//!   component conn ◀─write── answers ◀─────┘ answers: upstream id → (conn, downstream id)
//! ```
//!
//! - [`server`]: the listener, the handshake, one reader and one writer task per connection.
//! - [`router`]: the single task that owns the session map, coalesces snapshots and routes
//!   answers back; it never waits on the GTM, it only submits and collects completions.
//! - [`upstream`]: reaching the GTM (retrying until one answers at startup) and the admin
//!   status view.
//!
//! Failover comes from the shared [`GtmClient`](rxc_common::gtm::client::GtmClient): when the GTM
//! connection breaks it moves to the next address and resends every unanswered request under
//! its original id, and the GTM's (client id, request id) deduplication makes the resend
//! harmless. The proxy asks the GTM to keep its sessions for `resume_grace_ms` meanwhile, so
//! transactions running through the proxy survive a GTM failover.

pub mod router;
pub mod server;
pub mod upstream;

pub use server::{ProxyOptions, ProxyServer};
