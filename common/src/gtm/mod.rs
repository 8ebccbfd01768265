//! The global transaction manager's protocol, framing and client, shared by the GTM, the GTM
//! proxy and every component that asks the GTM for GXIDs and snapshots.

pub mod client;
pub mod codec;
pub mod proto;
pub mod serve;
