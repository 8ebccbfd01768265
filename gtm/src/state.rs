//! The GTM state machine: GXIDs, the running set, sessions and the snapshots they hold, the 2PC
//! decision log, sequences, the node registry and the idempotency table.
//!
//! It is deterministic: the active GTM stamps each state-changing request with the time and
//! turns it into a [`Command`]; applying the same commands in the same order to the same state
//! gives the same state and answers. That is how the standby follows: it applies the active's
//! commands. Nothing here does I/O; the server decides when to write the control file (when
//! [`GtmState::take_persist_needed`] says so) and to whom to forward commands.
//!
//! ```text
//!   sessions (client, session) ──owns──▶ running GXIDs ◀──gid── 2PC log (prepared, decision)
//!          │ holds                          │
//!          ▼                                ▼
//!   held snapshot xmins (multiset)   snapshot {xmin, xmax = next_gxid, xip, global_xmin}
//! ```

use crate::sequence::{DurableSequence, Sequence};
use rxc_common::gtm::proto::{
    ClientId, ErrorCode, GtmError, NodeInfo, PreparedTxn, Request, RequestId, Response, SessionId,
    TxnStatus,
};
use rxc_common::txn::{Gxid, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// GXIDs reserved ahead per control-file write.
pub const GXID_BLOCK: u64 = 10_000;
/// Answers remembered per client for idempotent resends.
pub const DEDUP_WINDOW: usize = 16_384;
/// Outcomes of finished GXIDs remembered for status queries.
pub const OUTCOME_WINDOW: usize = 100_000;

/// A state change, as the active GTM applies it and forwards it to its standby.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A client's request, stamped with the active GTM's clock (microseconds since the epoch).
    Request {
        client: ClientId,
        id: RequestId,
        now_us: i64,
        request: Request,
    },
    /// A client's connection is gone and its grace period passed: its sessions end.
    ClientGone { client: ClientId },
}

/// A running GXID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Running {
    /// The session that began it; `None` once prepared (it then outlives its session).
    owner: Option<(ClientId, SessionId)>,
    /// The GID it was prepared under.
    gid: Option<String>,
}

/// What a session owns and holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    gxids: Vec<Gxid>,
    held_xmin: Option<Gxid>,
}

/// Remembered answers of one client, for idempotent resends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Dedup {
    answers: HashMap<RequestId, Result<Response, GtmError>>,
    order: VecDeque<RequestId>,
}

/// What survives a restart: written to `gtm.control`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlFile {
    pub format_version: u32,
    /// Every GXID below this may have been handed out; a restarted GTM starts here.
    pub next_gxid: Gxid,
    pub last_timestamp: i64,
    pub sequences: Vec<DurableSequence>,
    pub prepared: Vec<PreparedTxn>,
    pub nodes: Vec<NodeInfo>,
    /// In a checkpoint: the sequence number of the log record it replaces (see
    /// [`crate::control`]); 0 elsewhere.
    #[serde(default)]
    pub log_seq: u64,
}

/// The control file's format version.
pub const CONTROL_FORMAT: u32 = 1;

/// The whole GTM state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GtmState {
    next_gxid: Gxid,
    /// GXIDs below this are covered by the last control-file write.
    gxid_reserved: Gxid,
    last_timestamp: i64,
    running: BTreeMap<Gxid, Running>,
    sessions: HashMap<(ClientId, SessionId), Session>,
    held_xmins: BTreeMap<Gxid, u32>,
    prepared: BTreeMap<String, PreparedTxn>,
    outcomes: HashMap<Gxid, bool>,
    outcome_order: VecDeque<Gxid>,
    sequences: BTreeMap<String, Sequence>,
    nodes: BTreeMap<String, NodeInfo>,
    dedup: HashMap<ClientId, Dedup>,
    /// Cluster-wide locks: name → (holder, lease end in microseconds since the epoch).
    /// Not in the control file: after a restart every lock is free.
    locks: BTreeMap<String, (String, i64)>,
    #[serde(skip)]
    persist_needed: bool,
}

impl Default for GtmState {
    fn default() -> Self {
        GtmState::from_control(&ControlFile {
            format_version: CONTROL_FORMAT,
            next_gxid: Gxid::FIRST,
            last_timestamp: 0,
            sequences: Vec::new(),
            prepared: Vec::new(),
            nodes: Vec::new(),
            log_seq: 0,
        })
    }
}

fn err(code: ErrorCode, message: impl Into<String>) -> GtmError {
    GtmError::new(code, message)
}

fn undefined_sequence(name: &str) -> GtmError {
    err(
        ErrorCode::UndefinedRelation,
        format!("relation \"{name}\" does not exist"),
    )
}

impl GtmState {
    /// The state a GTM resumes with after a restart: past every GXID and sequence value it
    /// reserved, with its 2PC log; prepared GXIDs are running again until they are resolved.
    pub fn from_control(control: &ControlFile) -> GtmState {
        let mut state = GtmState {
            next_gxid: control.next_gxid,
            gxid_reserved: control.next_gxid,
            last_timestamp: control.last_timestamp,
            running: BTreeMap::new(),
            sessions: HashMap::new(),
            held_xmins: BTreeMap::new(),
            prepared: BTreeMap::new(),
            outcomes: HashMap::new(),
            outcome_order: VecDeque::new(),
            sequences: control
                .sequences
                .iter()
                .map(|d| (d.name.clone(), Sequence::from_durable(d)))
                .collect(),
            nodes: control
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.clone()))
                .collect(),
            dedup: HashMap::new(),
            locks: BTreeMap::new(),
            persist_needed: false,
        };
        for txn in &control.prepared {
            state.prepared.insert(txn.gid.clone(), txn.clone());
            if txn.gxid < state.next_gxid {
                state.running.insert(
                    txn.gxid,
                    Running {
                        owner: None,
                        gid: Some(txn.gid.clone()),
                    },
                );
            }
        }
        state
    }

    /// What must be durable now.
    pub fn control_file(&self) -> ControlFile {
        ControlFile {
            format_version: CONTROL_FORMAT,
            next_gxid: self.gxid_reserved,
            last_timestamp: self.last_timestamp,
            sequences: self.sequences.values().map(Sequence::durable).collect(),
            prepared: self.prepared.values().cloned().collect(),
            nodes: self.nodes.values().cloned().collect(),
            log_seq: 0,
        }
    }

    /// Whether commands applied since the last call need a control-file write before their
    /// answers go out; resets the flag.
    pub fn take_persist_needed(&mut self) -> bool {
        std::mem::take(&mut self.persist_needed)
    }

    /// The next GXID to be handed out.
    pub fn next_gxid(&self) -> Gxid {
        self.next_gxid
    }

    /// How many GXIDs are running (prepared ones included).
    pub fn running_count(&self) -> usize {
        self.running.len()
    }

    /// Number of sessions known.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of 2PC log entries.
    pub fn prepared_count(&self) -> usize {
        self.prepared.len()
    }

    /// Number of sequences.
    pub fn sequence_count(&self) -> usize {
        self.sequences.len()
    }

    /// Clients that own sessions (for grace timers after a promotion).
    pub fn clients_with_sessions(&self) -> Vec<ClientId> {
        let mut clients: Vec<ClientId> = self.sessions.keys().map(|(c, _)| *c).collect();
        clients.sort_unstable();
        clients.dedup();
        clients
    }

    /// The oldest xmin any held snapshot or running transaction may still need.
    pub fn global_xmin(&self) -> Gxid {
        let xmin = self.xmin();
        match self.held_xmins.keys().next() {
            Some(&held) if held < xmin => held,
            _ => xmin,
        }
    }

    fn xmin(&self) -> Gxid {
        self.running
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_gxid)
    }

    /// Applies a state change and returns its answer. Requests that change nothing are
    /// answered by [`GtmState::read`].
    pub fn apply(&mut self, command: &Command) -> Result<Response, GtmError> {
        match command {
            Command::ClientGone { client } => {
                let sessions: Vec<(ClientId, SessionId)> = self
                    .sessions
                    .keys()
                    .filter(|(c, _)| c == client)
                    .copied()
                    .collect();
                for key in sessions {
                    self.end_session(key);
                }
                self.dedup.remove(client);
                Ok(Response::Ok)
            }
            Command::Request {
                client,
                id,
                now_us,
                request,
            } => {
                if !request.is_mutating() {
                    return self.read(request, *now_us);
                }
                let dedup = deduplicated(request);
                if dedup {
                    if let Some(answer) = self.dedup.get(client).and_then(|d| d.answers.get(id)) {
                        return answer.clone();
                    }
                }
                let answer = self.apply_request(*client, *now_us, request);
                if dedup {
                    let d = self.dedup.entry(*client).or_default();
                    d.answers.insert(*id, answer.clone());
                    d.order.push_back(*id);
                    if d.order.len() > DEDUP_WINDOW {
                        if let Some(old) = d.order.pop_front() {
                            d.answers.remove(&old);
                        }
                    }
                }
                answer
            }
        }
    }

    fn apply_request(
        &mut self,
        client: ClientId,
        now_us: i64,
        request: &Request,
    ) -> Result<Response, GtmError> {
        match request {
            Request::Begin { session, .. } => {
                let gxid = self.next_gxid;
                self.next_gxid = gxid.next();
                if self.next_gxid > self.gxid_reserved {
                    self.gxid_reserved = Gxid(self.next_gxid.0 + GXID_BLOCK);
                    self.persist_needed = true;
                }
                self.running.insert(
                    gxid,
                    Running {
                        owner: Some((client, *session)),
                        gid: None,
                    },
                );
                self.sessions
                    .entry((client, *session))
                    .or_default()
                    .gxids
                    .push(gxid);
                let timestamp = self.stamp(now_us);
                Ok(Response::Began { gxid, timestamp })
            }
            Request::Snapshot { sessions } => {
                let snapshot = self.snapshot();
                for session in sessions {
                    self.hold((client, *session), Some(snapshot.xmin));
                }
                let global_xmin = self.global_xmin();
                Ok(Response::Snapshot(Snapshot {
                    global_xmin,
                    ..snapshot
                }))
            }
            Request::ReleaseSnapshot { session } => {
                self.hold((client, *session), None);
                Ok(Response::Ok)
            }
            Request::EndSession { session } => {
                self.end_session((client, *session));
                Ok(Response::Ok)
            }
            Request::Commit { gxid } => self.finish(*gxid, true).map(|()| Response::Ok),
            Request::Abort { gxid } => self.finish(*gxid, false).map(|()| Response::Ok),
            Request::Prepare {
                gxid,
                gid,
                participants,
                coordinator,
            } => {
                if let Some(existing) = self.prepared.get(gid) {
                    if existing.gxid == *gxid {
                        return Ok(Response::Ok);
                    }
                    return Err(err(
                        ErrorCode::AlreadyExists,
                        format!("transaction identifier \"{gid}\" is already in use"),
                    ));
                }
                let Some(running) = self.running.get_mut(gxid) else {
                    return Err(err(
                        ErrorCode::InvalidState,
                        format!("transaction {gxid} is not running"),
                    ));
                };
                if let Some(other) = &running.gid {
                    return Err(err(
                        ErrorCode::InvalidState,
                        format!("transaction {gxid} is already prepared as \"{other}\""),
                    ));
                }
                running.gid = Some(gid.clone());
                if let Some(owner) = running.owner.take() {
                    if let Some(s) = self.sessions.get_mut(&owner) {
                        s.gxids.retain(|g| g != gxid);
                    }
                }
                let prepared_at = self.stamp(now_us);
                self.prepared.insert(
                    gid.clone(),
                    PreparedTxn {
                        gid: gid.clone(),
                        gxid: *gxid,
                        participants: participants.clone(),
                        coordinator: coordinator.clone(),
                        decision: None,
                        prepared_at,
                    },
                );
                self.persist_needed = true;
                Ok(Response::Ok)
            }
            Request::Decide { gid, commit } => {
                let Some(txn) = self.prepared.get_mut(gid) else {
                    return Err(err(
                        ErrorCode::NotFound,
                        format!("prepared transaction with identifier \"{gid}\" does not exist"),
                    ));
                };
                match txn.decision {
                    Some(d) if d == *commit => Ok(Response::Ok),
                    Some(d) => Err(err(
                        ErrorCode::InvalidState,
                        format!(
                            "global transaction \"{gid}\" was already decided to {}",
                            if d { "commit" } else { "abort" }
                        ),
                    )),
                    None => {
                        txn.decision = Some(*commit);
                        self.persist_needed = true;
                        Ok(Response::Ok)
                    }
                }
            }
            Request::Forget { gid } => {
                let Some(txn) = self.prepared.remove(gid) else {
                    return Ok(Response::Ok);
                };
                self.persist_needed = true;
                if self.running.contains_key(&txn.gxid) {
                    self.remove_running(txn.gxid, txn.decision == Some(true));
                }
                Ok(Response::Ok)
            }
            Request::SeqCreate { name, options } => {
                if self.sequences.contains_key(name) {
                    return Err(err(
                        ErrorCode::DuplicateRelation,
                        format!("relation \"{name}\" already exists"),
                    ));
                }
                let seq = Sequence::create(name, options)?;
                self.sequences.insert(name.clone(), seq);
                self.persist_needed = true;
                Ok(Response::Ok)
            }
            Request::SeqAlter { name, options } => {
                let seq = self
                    .sequences
                    .get_mut(name)
                    .ok_or_else(|| undefined_sequence(name))?;
                seq.alter(options)?;
                self.persist_needed = true;
                Ok(Response::Ok)
            }
            Request::SeqDrop { name, if_exists } => {
                if self.sequences.remove(name).is_none() && !if_exists {
                    return Err(undefined_sequence(name));
                }
                self.persist_needed = true;
                Ok(Response::Ok)
            }
            Request::SeqRename { from, to } => {
                if self.sequences.contains_key(to) {
                    return Err(err(
                        ErrorCode::DuplicateRelation,
                        format!("relation \"{to}\" already exists"),
                    ));
                }
                let mut seq = self
                    .sequences
                    .remove(from)
                    .ok_or_else(|| undefined_sequence(from))?;
                seq.name = to.clone();
                self.sequences.insert(to.clone(), seq);
                self.persist_needed = true;
                Ok(Response::Ok)
            }
            Request::SeqNext { name } => {
                let seq = self
                    .sequences
                    .get_mut(name)
                    .ok_or_else(|| undefined_sequence(name))?;
                let (first, count, persist) = seq.next_range()?;
                self.persist_needed |= persist;
                Ok(Response::SeqRange {
                    first,
                    count,
                    increment: seq.increment,
                })
            }
            Request::SeqSet {
                name,
                value,
                is_called,
            } => {
                let seq = self
                    .sequences
                    .get_mut(name)
                    .ok_or_else(|| undefined_sequence(name))?;
                seq.set(*value, *is_called)?;
                self.persist_needed = true;
                Ok(Response::Ok)
            }
            Request::RegisterNode { node } => {
                self.nodes.insert(node.name.clone(), node.clone());
                self.persist_needed = true;
                Ok(Response::Ok)
            }
            Request::UnregisterNode { name } => {
                if self.nodes.remove(name).is_none() {
                    return Err(err(
                        ErrorCode::NotFound,
                        format!("node \"{name}\" is not registered"),
                    ));
                }
                self.persist_needed = true;
                Ok(Response::Ok)
            }
            Request::Lock {
                name,
                holder,
                lease_ms,
            } => {
                let lease_end = now_us.saturating_add((*lease_ms as i64).saturating_mul(1000));
                match self.locks.get(name) {
                    Some((other, until)) if other != holder && *until > now_us => Err(err(
                        ErrorCode::LockBusy,
                        format!("lock \"{name}\" is held by {other}"),
                    )),
                    _ => {
                        self.locks.insert(name.clone(), (holder.clone(), lease_end));
                        Ok(Response::Ok)
                    }
                }
            }
            Request::Unlock { name, holder } => {
                if self.locks.get(name).is_some_and(|(h, _)| h == holder) {
                    self.locks.remove(name);
                }
                Ok(Response::Ok)
            }
            Request::Status { .. }
            | Request::Timestamp
            | Request::ListPrepared { .. }
            | Request::GetPrepared { .. }
            | Request::SeqGet { .. }
            | Request::ListNodes
            | Request::ServerStatus
            | Request::Promote
            | Request::Reconnect { .. } => self.read(request, now_us),
        }
    }

    /// Answers a request that changes nothing.
    pub fn read(&self, request: &Request, now_us: i64) -> Result<Response, GtmError> {
        match request {
            Request::Status { gxid } => Ok(Response::Status(self.status(*gxid))),
            Request::Timestamp => Ok(Response::Timestamp(now_us.max(self.last_timestamp))),
            Request::ListPrepared { undecided_only } => Ok(Response::Prepared(
                self.prepared
                    .values()
                    .filter(|t| !undecided_only || t.decision.is_none())
                    .cloned()
                    .collect(),
            )),
            Request::GetPrepared { gid } => {
                Ok(Response::PreparedOne(self.prepared.get(gid).cloned()))
            }
            Request::SeqGet { name } => self
                .sequences
                .get(name)
                .map(|s| Response::Sequence(s.info()))
                .ok_or_else(|| undefined_sequence(name)),
            Request::ListNodes => Ok(Response::Nodes(self.nodes.values().cloned().collect())),
            other => Err(err(
                ErrorCode::InvalidState,
                format!(
                    "{} is not answered by the state machine",
                    request_name(other)
                ),
            )),
        }
    }

    /// What the GTM knows of a GXID.
    pub fn status(&self, gxid: Gxid) -> TxnStatus {
        if let Some(r) = self.running.get(&gxid) {
            return match &r.gid {
                Some(gid) => TxnStatus::Prepared { gid: gid.clone() },
                None => TxnStatus::InProgress,
            };
        }
        if gxid >= self.next_gxid {
            return TxnStatus::Future;
        }
        match self.outcomes.get(&gxid) {
            Some(true) => TxnStatus::Committed,
            Some(false) => TxnStatus::Aborted,
            None => TxnStatus::Unknown,
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            xmin: self.xmin(),
            xmax: self.next_gxid,
            xip: self.running.keys().copied().collect(),
            global_xmin: Gxid(0),
        }
    }

    fn stamp(&mut self, now_us: i64) -> i64 {
        self.last_timestamp = now_us.max(self.last_timestamp + 1);
        self.last_timestamp
    }

    fn hold(&mut self, key: (ClientId, SessionId), xmin: Option<Gxid>) {
        let session = match xmin {
            Some(_) => self.sessions.entry(key).or_default(),
            None => match self.sessions.get_mut(&key) {
                Some(s) => s,
                None => return,
            },
        };
        let old = std::mem::replace(&mut session.held_xmin, xmin);
        if let Some(old) = old {
            release_xmin(&mut self.held_xmins, old);
        }
        if let Some(new) = xmin {
            *self.held_xmins.entry(new).or_insert(0) += 1;
        }
    }

    fn end_session(&mut self, key: (ClientId, SessionId)) {
        let Some(session) = self.sessions.remove(&key) else {
            return;
        };
        if let Some(old) = session.held_xmin {
            release_xmin(&mut self.held_xmins, old);
        }
        for gxid in session.gxids {
            if matches!(self.running.get(&gxid), Some(r) if r.gid.is_none()) {
                self.running.remove(&gxid);
                self.record_outcome(gxid, false);
            }
        }
    }

    fn finish(&mut self, gxid: Gxid, commit: bool) -> Result<(), GtmError> {
        let Some(running) = self.running.get(&gxid) else {
            return match self.status(gxid) {
                TxnStatus::Future => Err(err(
                    ErrorCode::NotFound,
                    format!("transaction {gxid} was never started"),
                )),
                TxnStatus::Committed if !commit => Err(err(
                    ErrorCode::InvalidState,
                    format!("transaction {gxid} already committed"),
                )),
                TxnStatus::Aborted if commit => Err(err(
                    ErrorCode::InvalidState,
                    format!("transaction {gxid} already aborted"),
                )),
                _ => Ok(()),
            };
        };
        if let Some(gid) = running.gid.clone() {
            let decision = self.prepared.get(&gid).and_then(|t| t.decision);
            match (decision, commit) {
                (Some(true), false) => {
                    return Err(err(
                        ErrorCode::InvalidState,
                        format!("global transaction \"{gid}\" was decided to commit"),
                    ));
                }
                (Some(false), true) => {
                    return Err(err(
                        ErrorCode::InvalidState,
                        format!("global transaction \"{gid}\" was decided to abort"),
                    ));
                }
                (None, true) => {
                    return Err(err(
                        ErrorCode::InvalidState,
                        format!("global transaction \"{gid}\" has no commit decision logged"),
                    ));
                }
                _ => {}
            }
            self.prepared.remove(&gid);
            self.persist_needed = true;
        }
        self.remove_running(gxid, commit);
        Ok(())
    }

    fn remove_running(&mut self, gxid: Gxid, commit: bool) {
        if let Some(r) = self.running.remove(&gxid) {
            if let Some(owner) = r.owner {
                if let Some(s) = self.sessions.get_mut(&owner) {
                    s.gxids.retain(|g| *g != gxid);
                }
            }
        }
        self.record_outcome(gxid, commit);
    }

    fn record_outcome(&mut self, gxid: Gxid, commit: bool) {
        self.outcomes.insert(gxid, commit);
        self.outcome_order.push_back(gxid);
        if self.outcome_order.len() > OUTCOME_WINDOW {
            if let Some(old) = self.outcome_order.pop_front() {
                self.outcomes.remove(&old);
            }
        }
    }
}

fn release_xmin(held: &mut BTreeMap<Gxid, u32>, xmin: Gxid) {
    if let Some(count) = held.get_mut(&xmin) {
        *count -= 1;
        if *count == 0 {
            held.remove(&xmin);
        }
    }
}

/// Requests whose resend must get the first answer rather than run again.
fn deduplicated(request: &Request) -> bool {
    !matches!(
        request,
        Request::Snapshot { .. }
            | Request::ReleaseSnapshot { .. }
            | Request::EndSession { .. }
            | Request::Commit { .. }
            | Request::Abort { .. }
    )
}

/// A short name of a request kind, for messages and logs.
pub fn request_name(request: &Request) -> &'static str {
    match request {
        Request::Begin { .. } => "Begin",
        Request::Snapshot { .. } => "Snapshot",
        Request::ReleaseSnapshot { .. } => "ReleaseSnapshot",
        Request::Commit { .. } => "Commit",
        Request::Abort { .. } => "Abort",
        Request::Status { .. } => "Status",
        Request::Timestamp => "Timestamp",
        Request::EndSession { .. } => "EndSession",
        Request::Prepare { .. } => "Prepare",
        Request::Decide { .. } => "Decide",
        Request::ListPrepared { .. } => "ListPrepared",
        Request::GetPrepared { .. } => "GetPrepared",
        Request::Forget { .. } => "Forget",
        Request::SeqCreate { .. } => "SeqCreate",
        Request::SeqAlter { .. } => "SeqAlter",
        Request::SeqDrop { .. } => "SeqDrop",
        Request::SeqRename { .. } => "SeqRename",
        Request::SeqNext { .. } => "SeqNext",
        Request::SeqSet { .. } => "SeqSet",
        Request::SeqGet { .. } => "SeqGet",
        Request::RegisterNode { .. } => "RegisterNode",
        Request::UnregisterNode { .. } => "UnregisterNode",
        Request::ListNodes => "ListNodes",
        Request::ServerStatus => "ServerStatus",
        Request::Promote => "Promote",
        Request::Reconnect { .. } => "Reconnect",
        Request::Lock { .. } => "Lock",
        Request::Unlock { .. } => "Unlock",
    }
}
