//! The GTM wire protocol, spoken between GTM clients (coordinators, datanodes, the benchmark),
//! GTM proxies and the GTM itself, and between an active GTM and its standby.
//!
//! Transport: TCP, each message one length-delimited frame (4-byte big-endian length, as
//! `tokio_util::codec::LengthDelimitedCodec` writes it) holding a `postcard`-encoded
//! [`ClientFrame`] or [`ServerFrame`].
//!
//! ```text
//! client                                         GTM (or proxy)
//!   Hello { client_id, name, resume_grace_ms } ─▶
//!                                              ◀─ Welcome { role, .. }
//!   Requests [ {id 7, Begin}, {id 8, Snapshot} ] ─▶
//!                                              ◀─ Responses [ {id 7, Began}, {id 8, Snapshot} ]
//! ```
//!
//! Every request carries an id that its answer echoes; one frame may carry a batch, and answers
//! may come back in any grouping. A request's body is encoded on its own, so a body the server
//! cannot decode (an unknown request kind from a newer client, or garbage) gets an error answer
//! with its id while the rest of the frame is served. Requests that change state are idempotent
//! by (client id, request id): a client that resends after a failover gets the first answer again.
//!
//! Sessions: one connection may carry many sessions (a proxy carries all of its clients'). A
//! session owns the GXIDs it began and holds the snapshot it last took; when the session ends
//! (`EndSession`, or its connection is gone past the client's grace period) its running GXIDs
//! that are not prepared are aborted and its snapshot is released.

use crate::txn::{Gxid, Isolation, Snapshot};
use serde::{Deserialize, Serialize};

/// The version of this protocol; a peer with another version is refused at `Hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame either side accepts.
pub const MAX_FRAME_LEN: usize = 64 << 20;

/// Identifies one client process across its reconnections (random, chosen by the client).
pub type ClientId = u64;
/// A session within a client, chosen by the client.
pub type SessionId = u64;
/// A request id, unique within a client; answers echo it.
pub type RequestId = u64;

/// Sequence values are PostgreSQL `bigint`s.
pub type SeqValue = i64;

/// What a client sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// First frame on every connection.
    Hello(Hello),
    /// A batch of requests.
    Requests(Vec<WireRequest>),
    /// A standby acknowledges that it applied (and made durable) replicated batch `seq`.
    ReplicaAck { seq: u64 },
}

/// The first frame of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u32,
    pub client_id: ClientId,
    /// A human-readable name for logs and the status view (e.g. `coord1`, `proxy@host`).
    pub name: String,
    /// How long the GTM keeps this client's sessions after its connection is gone, waiting for
    /// it to reconnect and resend (proxies and failover-aware clients ask for a few seconds).
    /// Zero: sessions end as soon as the connection does.
    pub resume_grace_ms: u32,
    /// Set by a standby GTM that wants the full state and then the replication stream.
    pub standby: Option<String>,
}

/// One request on the wire: its id, and its body encoded separately (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRequest {
    pub id: RequestId,
    pub body: Vec<u8>,
}

/// What a GTM or proxy sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServerFrame {
    /// The answer to `Hello`.
    Welcome(Welcome),
    /// Answers, each with the id of its request.
    Responses(Vec<WireResponse>),
    /// A frame the server could not read at all; the connection stays usable.
    FrameError(GtmError),
    /// To a standby: the full state, after which replicated batches follow.
    ReplicaImage { seq: u64, image: Vec<u8> },
    /// To a standby: the next batch of state-changing commands, in order.
    ReplicaBatch { seq: u64, commands: Vec<u8> },
}

/// The answer to `Hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol_version: u32,
    pub server_name: String,
    pub role: Role,
}

/// An answer on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireResponse {
    pub id: RequestId,
    pub result: Result<Response, GtmError>,
}

/// Whether a GTM serves requests or follows an active one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Active,
    Standby,
    /// A GTM proxy (answers as a GTM would, forwarding upstream).
    Proxy,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Active => "active",
            Role::Standby => "standby",
            Role::Proxy => "proxy",
        })
    }
}

/// Every request kind. New kinds are appended at the end (postcard encodes the variant index).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Start a transaction: a new GXID owned by `session`, and the transaction's timestamp.
    Begin {
        session: SessionId,
        isolation: Isolation,
    },
    /// A snapshot, held by each of `sessions` (replacing what each held before) until the
    /// session takes another, releases it, or ends. A proxy asks once for many sessions.
    Snapshot { sessions: Vec<SessionId> },
    /// Release the snapshot `session` holds (end of a read-only transaction).
    ReleaseSnapshot { session: SessionId },
    /// Report that a GXID committed everywhere; it leaves the running set.
    Commit { gxid: Gxid },
    /// Report that a GXID aborted; it leaves the running set.
    Abort { gxid: Gxid },
    /// What the GTM knows of a GXID.
    Status { gxid: Gxid },
    /// A cluster-wide monotonic timestamp (microseconds since the Unix epoch).
    Timestamp,
    /// The session ends: its unprepared running GXIDs abort, its snapshot is released.
    EndSession { session: SessionId },

    /// 2PC: register a global transaction being prepared. Durable before it is acknowledged.
    Prepare {
        gxid: Gxid,
        gid: String,
        participants: Vec<String>,
        coordinator: String,
    },
    /// 2PC: log the decision for `gid`. Durable before it is acknowledged; never changes.
    Decide { gid: String, commit: bool },
    /// 2PC: list the logged global transactions (only undecided ones if asked).
    ListPrepared { undecided_only: bool },
    /// 2PC: look up one global transaction.
    GetPrepared { gid: String },
    /// 2PC: forget a finished global transaction.
    Forget { gid: String },

    /// Create a sequence.
    SeqCreate { name: String, options: SeqOptions },
    /// Change a sequence's options (only those given).
    SeqAlter {
        name: String,
        options: SeqAlterOptions,
    },
    /// Drop a sequence.
    SeqDrop { name: String, if_exists: bool },
    /// Rename a sequence.
    SeqRename { from: String, to: String },
    /// The next value(s): a range of up to the sequence's `cache` values at once.
    SeqNext { name: String },
    /// `setval(name, value, is_called)`.
    SeqSet {
        name: String,
        value: SeqValue,
        is_called: bool,
    },
    /// The sequence's definition and current value.
    SeqGet { name: String },

    /// Register a cluster component (replaces an entry of the same name).
    RegisterNode { node: NodeInfo },
    /// Remove a component from the registry.
    UnregisterNode { name: String },
    /// List the registry.
    ListNodes,

    /// Admin: role, counters and standby state.
    ServerStatus,
    /// Admin: make a standby active.
    Promote,
    /// Admin (proxy only): move to this GTM address now.
    Reconnect { address: String },

    /// Take cluster-wide lock `name` for `holder` (e.g. the DDL lock of coordinators), or
    /// renew it: granted when free, held by `holder`, or its lease of `lease_ms` ran out;
    /// otherwise [`ErrorCode::LockBusy`]. Never waits: the caller retries.
    Lock {
        name: String,
        holder: String,
        lease_ms: u64,
    },
    /// Release lock `name` if `holder` holds it.
    Unlock { name: String, holder: String },
}

impl Request {
    /// Whether the request changes GTM state (and so is logged, replicated and deduplicated).
    pub fn is_mutating(&self) -> bool {
        !matches!(
            self,
            Request::Status { .. }
                | Request::Timestamp
                | Request::ListPrepared { .. }
                | Request::GetPrepared { .. }
                | Request::SeqGet { .. }
                | Request::ListNodes
                | Request::ServerStatus
                | Request::Promote
                | Request::Reconnect { .. }
        )
    }
}

/// Every answer kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// A plain success.
    Ok,
    Began {
        gxid: Gxid,
        timestamp: i64,
    },
    Snapshot(Snapshot),
    Status(TxnStatus),
    Timestamp(i64),
    Prepared(Vec<PreparedTxn>),
    PreparedOne(Option<PreparedTxn>),
    /// `count` values starting at `first`, each `increment` apart.
    SeqRange {
        first: SeqValue,
        count: u64,
        increment: SeqValue,
    },
    Sequence(SequenceInfo),
    Nodes(Vec<NodeInfo>),
    ServerStatus(ServerStatus),
}

/// What the GTM knows of a GXID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnStatus {
    /// Handed out and still running.
    InProgress,
    /// Running, and registered as prepared under this GID.
    Prepared {
        gid: String,
    },
    Committed,
    Aborted,
    /// Finished long ago (or before a GTM restart): its outcome is on the datanodes.
    Unknown,
    /// Never handed out.
    Future,
}

/// A global transaction in the 2PC decision log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedTxn {
    pub gid: String,
    pub gxid: Gxid,
    pub participants: Vec<String>,
    pub coordinator: String,
    /// `None` while undecided; `Some(true)` commit, `Some(false)` abort.
    pub decision: Option<bool>,
    /// When it was registered (microseconds since the Unix epoch).
    pub prepared_at: i64,
}

/// Options of `CREATE SEQUENCE`; `None` takes PostgreSQL's default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqOptions {
    pub increment: Option<SeqValue>,
    pub min_value: Option<SeqValue>,
    pub max_value: Option<SeqValue>,
    pub start: Option<SeqValue>,
    pub cache: Option<SeqValue>,
    pub cycle: bool,
}

/// Options of `ALTER SEQUENCE`; only the given ones change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqAlterOptions {
    pub increment: Option<SeqValue>,
    /// `Some(None)`: NO MINVALUE (back to the default).
    pub min_value: Option<Option<SeqValue>>,
    pub max_value: Option<Option<SeqValue>>,
    pub start: Option<SeqValue>,
    /// `RESTART [WITH v]`: `Some(None)` restarts at the start value.
    pub restart: Option<Option<SeqValue>>,
    pub cache: Option<SeqValue>,
    pub cycle: Option<bool>,
}

/// A sequence's definition and state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceInfo {
    pub name: String,
    pub increment: SeqValue,
    pub min_value: SeqValue,
    pub max_value: SeqValue,
    pub start: SeqValue,
    pub cache: SeqValue,
    pub cycle: bool,
    pub last_value: SeqValue,
    pub is_called: bool,
}

/// The kind of a registered component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    Coordinator,
    Datanode,
    GtmProxy,
    Gtm,
}

/// A registered component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub kind: NodeKind,
    pub host: String,
    pub port: u16,
}

/// The answer to `ServerStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub name: String,
    pub role: Role,
    pub next_gxid: Gxid,
    pub running: u64,
    pub global_xmin: Gxid,
    pub prepared: u64,
    pub sequences: u64,
    pub clients: u64,
    /// For an active GTM: its standby, if one is attached (name, address, connected).
    pub standby: Option<String>,
    /// For a standby or proxy: the GTM it follows.
    pub upstream: Option<String>,
}

/// An error answer. `code` says what the caller must do; `sqlstate` is what a SQL client sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct GtmError {
    pub code: ErrorCode,
    pub message: String,
}

/// Error classes of the GTM protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// A frame or request body that could not be decoded, or an unknown request kind.
    Malformed,
    /// The request is not valid in this state (e.g. committing an aborted GXID).
    InvalidState,
    /// An argument is out of range or contradictory.
    InvalidParameter,
    /// No such sequence, GID or GXID.
    NotFound,
    /// A sequence or GID of that name exists.
    AlreadyExists,
    /// nextval past the sequence's limit without CYCLE.
    SequenceLimit,
    /// A value outside the allowed range (setval).
    OutOfRange,
    /// A sequence of that name exists.
    DuplicateRelation,
    /// No sequence of that name.
    UndefinedRelation,
    /// This GTM is a standby (or not reachable upstream): ask the next address.
    NotActive,
    /// The GTM could not make the change durable or replicate it.
    Io,
    /// A standby refuses promotion while its active GTM still streams to it.
    ActiveStillRunning,
    /// A lock is held by another holder.
    LockBusy,
}

impl ErrorCode {
    /// The SQLSTATE a SQL client sees for this error.
    pub fn sqlstate(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "08P01",
            ErrorCode::InvalidState => "55000",
            ErrorCode::InvalidParameter => "22023",
            ErrorCode::NotFound => "42704",
            ErrorCode::AlreadyExists => "42710",
            ErrorCode::SequenceLimit => "2200H",
            ErrorCode::OutOfRange => "22003",
            ErrorCode::DuplicateRelation => "42P07",
            ErrorCode::UndefinedRelation => "42P01",
            ErrorCode::NotActive => "57P03",
            ErrorCode::Io => "58030",
            ErrorCode::ActiveStillRunning => "55006",
            ErrorCode::LockBusy => "55P03",
        }
    }
}

impl GtmError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        GtmError {
            code,
            message: message.into(),
        }
    }
}

/// Encodes a message with postcard.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard encoding of GTM messages cannot fail")
}

/// Decodes a message with postcard, as a `Malformed` error on failure.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, GtmError> {
    postcard::from_bytes(bytes)
        .map_err(|e| GtmError::new(ErrorCode::Malformed, format!("malformed GTM message: {e}")))
}

impl WireRequest {
    /// Encodes a request under its id.
    pub fn new(id: RequestId, request: &Request) -> Self {
        WireRequest {
            id,
            body: encode(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_unknown_kinds_fail_cleanly() {
        let req = Request::Snapshot {
            sessions: vec![1, 2, 3],
        };
        let wire = WireRequest::new(9, &req);
        assert_eq!(decode::<Request>(&wire.body).unwrap(), req);
        // A variant index past the last kind is what a newer client would send.
        let err = decode::<Request>(&[200, 1]).unwrap_err();
        assert_eq!(err.code, ErrorCode::Malformed);
    }

    #[test]
    fn only_reads_are_not_mutating() {
        assert!(Request::Begin {
            session: 1,
            isolation: Isolation::ReadCommitted
        }
        .is_mutating());
        assert!(Request::SeqNext { name: "s".into() }.is_mutating());
        assert!(!Request::Status { gxid: Gxid(5) }.is_mutating());
        assert!(!Request::ServerStatus.is_mutating());
    }
}
