//! The async GTM client that coordinators, datanodes, the GTM proxy and the benchmark use,
//! against a GTM or a proxy alike.
//!
//! One client is one connection, shared by any number of tasks and sessions: calls go to a
//! connection task over a channel, and whatever calls are waiting when it writes go out together
//! in one frame. Answers are matched to calls by request id.
//!
//! Failover: the client knows a list of addresses. When its connection breaks, or the server
//! turns out to be a standby, it moves to the next address and resends every request still
//! unanswered, under the same request ids, so the (new) active GTM answers a resend of something
//! it already did with the first answer. A call that finds no active server within its timeout
//! fails with [`ErrorCode::Io`].

use super::codec::{self, FrameReader, FrameWriter};
use super::proto::{
    ClientFrame, ClientId, ErrorCode, GtmError, Hello, NodeInfo, PreparedTxn, Request, RequestId,
    Response, Role, SeqAlterOptions, SeqOptions, SeqValue, SequenceInfo, ServerFrame, ServerStatus,
    SessionId, TxnStatus, WireRequest, WireResponse, PROTOCOL_VERSION,
};
use crate::txn::{Gxid, Isolation, Snapshot};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// How a client connects and waits.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The name the GTM logs and lists for this client.
    pub name: String,
    /// How long the GTM keeps this client's sessions while it reconnects (see [`Hello`]).
    pub resume_grace_ms: u32,
    /// How long a call waits for its answer, across reconnections, before it fails.
    pub request_timeout: Duration,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// Talk to a standby too (administrative clients: status, promote).
    pub accept_standby: bool,
}

impl ClientOptions {
    /// Options for a client called `name`, with defaults: sessions end with the connection,
    /// calls wait up to 30 s.
    pub fn new(name: impl Into<String>) -> Self {
        ClientOptions {
            name: name.into(),
            resume_grace_ms: 0,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            accept_standby: false,
        }
    }
}

/// A connection to a GTM (or proxy), shared by cheap clones.
#[derive(Clone)]
pub struct GtmClient {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::UnboundedSender<Msg>,
    next_request: AtomicU64,
    next_session: AtomicU64,
    client_id: ClientId,
    upstream: Arc<Mutex<Option<String>>>,
}

type Answers = Vec<Result<Response, GtmError>>;

enum Msg {
    Call {
        requests: Vec<WireRequest>,
        reply: oneshot::Sender<Answers>,
    },
    SwitchTo(String),
}

impl std::fmt::Debug for GtmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GtmClient")
            .field("client_id", &self.inner.client_id)
            .finish()
    }
}

/// A random id for a new client.
pub fn random_client_id() -> ClientId {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        return nanos ^ (std::process::id() as u64) << 32;
    }
    u64::from_le_bytes(bytes)
}

impl GtmClient {
    /// Connects to the first address (in order) whose server is active, and keeps the
    /// connection in a background task. Fails if none answered as active.
    pub async fn connect(
        addresses: Vec<String>,
        options: ClientOptions,
    ) -> Result<GtmClient, GtmError> {
        if addresses.is_empty() {
            return Err(GtmError::new(
                ErrorCode::InvalidParameter,
                "no GTM address given",
            ));
        }
        let client_id = random_client_id();
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            client_id,
            name: options.name.clone(),
            resume_grace_ms: options.resume_grace_ms,
            standby: None,
        };
        let mut conn = Connection {
            addresses,
            current: 0,
            hello,
            options: options.clone(),
            pending: HashMap::new(),
            calls: HashMap::new(),
            next_call: 0,
            upstream: Arc::new(Mutex::new(None)),
        };
        let first = conn.connect_any().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let upstream = conn.upstream.clone();
        tokio::spawn(conn.run(rx, first));
        Ok(GtmClient {
            inner: Arc::new(Inner {
                tx,
                next_request: AtomicU64::new(1),
                next_session: AtomicU64::new(1),
                client_id,
                upstream,
            }),
        })
    }

    /// Connects to one GTM or proxy for administration, whatever its role.
    pub async fn connect_admin(
        address: &str,
        mut options: ClientOptions,
    ) -> Result<GtmClient, GtmError> {
        options.accept_standby = true;
        options.request_timeout = Duration::from_secs(10);
        GtmClient::connect(vec![address.to_string()], options).await
    }

    /// This client's id (what the GTM keys its sessions and resends by).
    pub fn client_id(&self) -> ClientId {
        self.inner.client_id
    }

    /// The address currently connected, if any.
    pub fn upstream(&self) -> Option<String> {
        self.inner.upstream.lock().ok().and_then(|u| u.clone())
    }

    /// A new session id, unique within this client.
    pub fn new_session(&self) -> SessionId {
        self.inner.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Moves to another GTM address now, resending what is in flight.
    pub fn switch_to(&self, address: String) -> Result<(), GtmError> {
        self.inner
            .tx
            .send(Msg::SwitchTo(address))
            .map_err(|_| closed())
    }

    /// Sends requests in one frame and waits for all their answers, in order.
    pub async fn call_batch(&self, requests: &[Request]) -> Result<Answers, GtmError> {
        let wire = requests
            .iter()
            .map(|r| WireRequest::new(self.inner.next_request.fetch_add(1, Ordering::Relaxed), r))
            .collect();
        self.call_wire(wire).await
    }

    /// Sends already-encoded requests (ids chosen by this client's counter via
    /// [`GtmClient::next_request_id`]) and waits for their answers, in order.
    pub async fn call_wire(&self, requests: Vec<WireRequest>) -> Result<Answers, GtmError> {
        let answer = self.submit_wire(requests)?;
        answer.await.map_err(|_| closed())
    }

    /// Queues already-encoded requests now, without waiting: calls reach the server in the
    /// order they are submitted. The receiver gets their answers, in order (it reports an error
    /// only if the connection task stopped). For a forwarder (the GTM proxy) that must keep its
    /// calls in order without awaiting each one.
    pub fn submit_wire(
        &self,
        requests: Vec<WireRequest>,
    ) -> Result<oneshot::Receiver<Answers>, GtmError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .tx
            .send(Msg::Call { requests, reply })
            .map_err(|_| closed())?;
        Ok(answer)
    }

    /// A fresh request id of this client.
    pub fn next_request_id(&self) -> RequestId {
        self.inner.next_request.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends one request and waits for its answer.
    pub async fn call(&self, request: Request) -> Result<Response, GtmError> {
        let mut answers = self.call_batch(std::slice::from_ref(&request)).await?;
        answers.pop().unwrap_or_else(|| Err(closed()))
    }

    /// Starts a transaction for `session`: its GXID and timestamp.
    pub async fn begin(
        &self,
        session: SessionId,
        isolation: Isolation,
    ) -> Result<(Gxid, i64), GtmError> {
        match self.call(Request::Begin { session, isolation }).await? {
            Response::Began { gxid, timestamp } => Ok((gxid, timestamp)),
            other => Err(unexpected(other)),
        }
    }

    /// A snapshot held by `session`.
    pub async fn snapshot(&self, session: SessionId) -> Result<Snapshot, GtmError> {
        match self
            .call(Request::Snapshot {
                sessions: vec![session],
            })
            .await?
        {
            Response::Snapshot(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// A snapshot no session holds, for a caller that keeps what its readers' snapshots need
    /// itself (a datanode keeps its own garbage collection below its transactions' xmins):
    /// one answer may then serve many readers.
    pub async fn unheld_snapshot(&self) -> Result<Snapshot, GtmError> {
        match self
            .call(Request::Snapshot {
                sessions: Vec::new(),
            })
            .await?
        {
            Response::Snapshot(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Begin and snapshot in one round trip.
    pub async fn begin_with_snapshot(
        &self,
        session: SessionId,
        isolation: Isolation,
    ) -> Result<(Gxid, i64, Snapshot), GtmError> {
        self.begin_and_snapshot(session, isolation, vec![session])
            .await
    }

    /// Begin and an unheld snapshot ([`GtmClient::unheld_snapshot`]) in one round trip.
    pub async fn begin_with_unheld_snapshot(
        &self,
        session: SessionId,
        isolation: Isolation,
    ) -> Result<(Gxid, i64, Snapshot), GtmError> {
        self.begin_and_snapshot(session, isolation, Vec::new())
            .await
    }

    async fn begin_and_snapshot(
        &self,
        session: SessionId,
        isolation: Isolation,
        holders: Vec<SessionId>,
    ) -> Result<(Gxid, i64, Snapshot), GtmError> {
        let mut answers = self
            .call_batch(&[
                Request::Begin { session, isolation },
                Request::Snapshot { sessions: holders },
            ])
            .await?
            .into_iter();
        match (answers.next(), answers.next()) {
            (Some(Ok(Response::Began { gxid, timestamp })), Some(Ok(Response::Snapshot(s)))) => {
                Ok((gxid, timestamp, s))
            }
            (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e),
            (a, _) => Err(unexpected_opt(a)),
        }
    }

    /// Reports that `gxid` committed everywhere.
    pub async fn commit(&self, gxid: Gxid) -> Result<(), GtmError> {
        expect_ok(self.call(Request::Commit { gxid }).await?)
    }

    /// Reports that `gxid` aborted.
    pub async fn abort(&self, gxid: Gxid) -> Result<(), GtmError> {
        expect_ok(self.call(Request::Abort { gxid }).await?)
    }

    /// Ends a transaction in one round trip: reports `gxid` (if it has one) committed or
    /// aborted, then releases the snapshot `session` holds (if `release`), then forgets the
    /// two-phase commit `forget` (if its participants all finished it). The report's error is
    /// returned; a failed release is not an error (the session's end releases it too), nor is
    /// a failed forget (the in-doubt resolver forgets what is left).
    pub async fn end_transaction(
        &self,
        gxid: Option<Gxid>,
        commit: bool,
        release: Option<SessionId>,
        forget: Option<&str>,
    ) -> Result<(), GtmError> {
        let mut requests = Vec::with_capacity(3);
        if let Some(gxid) = gxid {
            requests.push(if commit {
                Request::Commit { gxid }
            } else {
                Request::Abort { gxid }
            });
        }
        if let Some(session) = release {
            requests.push(Request::ReleaseSnapshot { session });
        }
        if let Some(gid) = forget {
            requests.push(Request::Forget {
                gid: gid.to_string(),
            });
        }
        if requests.is_empty() {
            return Ok(());
        }
        let mut answers = self.call_batch(&requests).await?.into_iter();
        match (gxid, answers.next()) {
            (Some(_), Some(answer)) => expect_ok(answer?),
            _ => Ok(()),
        }
    }

    /// What the GTM knows of `gxid`.
    pub async fn status(&self, gxid: Gxid) -> Result<TxnStatus, GtmError> {
        match self.call(Request::Status { gxid }).await? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Releases the snapshot `session` holds.
    pub async fn release_snapshot(&self, session: SessionId) -> Result<(), GtmError> {
        expect_ok(self.call(Request::ReleaseSnapshot { session }).await?)
    }

    /// Ends `session`: its unprepared GXIDs abort.
    pub async fn end_session(&self, session: SessionId) -> Result<(), GtmError> {
        expect_ok(self.call(Request::EndSession { session }).await?)
    }

    /// A cluster-wide timestamp.
    pub async fn timestamp(&self) -> Result<i64, GtmError> {
        match self.call(Request::Timestamp).await? {
            Response::Timestamp(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// 2PC: registers `gid` for `gxid` before the participants prepare.
    pub async fn prepare(
        &self,
        gxid: Gxid,
        gid: &str,
        participants: Vec<String>,
        coordinator: &str,
    ) -> Result<(), GtmError> {
        expect_ok(
            self.call(Request::Prepare {
                gxid,
                gid: gid.to_string(),
                participants,
                coordinator: coordinator.to_string(),
            })
            .await?,
        )
    }

    /// 2PC: logs the decision for `gid`.
    pub async fn decide(&self, gid: &str, commit: bool) -> Result<(), GtmError> {
        expect_ok(
            self.call(Request::Decide {
                gid: gid.to_string(),
                commit,
            })
            .await?,
        )
    }

    /// 2PC: the logged global transactions.
    pub async fn list_prepared(&self, undecided_only: bool) -> Result<Vec<PreparedTxn>, GtmError> {
        match self.call(Request::ListPrepared { undecided_only }).await? {
            Response::Prepared(list) => Ok(list),
            other => Err(unexpected(other)),
        }
    }

    /// 2PC: forgets a finished global transaction.
    pub async fn forget(&self, gid: &str) -> Result<(), GtmError> {
        expect_ok(
            self.call(Request::Forget {
                gid: gid.to_string(),
            })
            .await?,
        )
    }

    /// Takes (or renews) cluster-wide lock `name` for `holder` for `lease_ms`; fails with
    /// [`ErrorCode::LockBusy`](crate::gtm::proto::ErrorCode::LockBusy) while another holds it.
    pub async fn lock(&self, name: &str, holder: &str, lease_ms: u64) -> Result<(), GtmError> {
        expect_ok(
            self.call(Request::Lock {
                name: name.to_string(),
                holder: holder.to_string(),
                lease_ms,
            })
            .await?,
        )
    }

    /// Releases lock `name` if `holder` holds it.
    pub async fn unlock(&self, name: &str, holder: &str) -> Result<(), GtmError> {
        expect_ok(
            self.call(Request::Unlock {
                name: name.to_string(),
                holder: holder.to_string(),
            })
            .await?,
        )
    }

    /// Creates a sequence.
    pub async fn create_sequence(&self, name: &str, options: SeqOptions) -> Result<(), GtmError> {
        expect_ok(
            self.call(Request::SeqCreate {
                name: name.to_string(),
                options,
            })
            .await?,
        )
    }

    /// Alters a sequence.
    pub async fn alter_sequence(
        &self,
        name: &str,
        options: SeqAlterOptions,
    ) -> Result<(), GtmError> {
        expect_ok(
            self.call(Request::SeqAlter {
                name: name.to_string(),
                options,
            })
            .await?,
        )
    }

    /// Drops a sequence.
    pub async fn drop_sequence(&self, name: &str, if_exists: bool) -> Result<(), GtmError> {
        expect_ok(
            self.call(Request::SeqDrop {
                name: name.to_string(),
                if_exists,
            })
            .await?,
        )
    }

    /// Renames a sequence.
    pub async fn rename_sequence(&self, from: &str, to: &str) -> Result<(), GtmError> {
        expect_ok(
            self.call(Request::SeqRename {
                from: from.to_string(),
                to: to.to_string(),
            })
            .await?,
        )
    }

    /// The next range of values: `(first, count, increment)`.
    pub async fn nextval(&self, name: &str) -> Result<(SeqValue, u64, SeqValue), GtmError> {
        match self
            .call(Request::SeqNext {
                name: name.to_string(),
            })
            .await?
        {
            Response::SeqRange {
                first,
                count,
                increment,
            } => Ok((first, count, increment)),
            other => Err(unexpected(other)),
        }
    }

    /// `setval`.
    pub async fn setval(
        &self,
        name: &str,
        value: SeqValue,
        is_called: bool,
    ) -> Result<(), GtmError> {
        expect_ok(
            self.call(Request::SeqSet {
                name: name.to_string(),
                value,
                is_called,
            })
            .await?,
        )
    }

    /// A sequence's definition and current value.
    pub async fn sequence(&self, name: &str) -> Result<SequenceInfo, GtmError> {
        match self
            .call(Request::SeqGet {
                name: name.to_string(),
            })
            .await?
        {
            Response::Sequence(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Registers a component.
    pub async fn register_node(&self, node: NodeInfo) -> Result<(), GtmError> {
        expect_ok(self.call(Request::RegisterNode { node }).await?)
    }

    /// Lists registered components.
    pub async fn list_nodes(&self) -> Result<Vec<NodeInfo>, GtmError> {
        match self.call(Request::ListNodes).await? {
            Response::Nodes(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    /// The server's role and counters.
    pub async fn server_status(&self) -> Result<ServerStatus, GtmError> {
        match self.call(Request::ServerStatus).await? {
            Response::ServerStatus(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }
}

fn closed() -> GtmError {
    GtmError::new(ErrorCode::Io, "GTM client connection task has stopped")
}

fn unexpected(response: Response) -> GtmError {
    GtmError::new(
        ErrorCode::Malformed,
        format!("unexpected GTM answer: {response:?}"),
    )
}

fn unexpected_opt(response: Option<Result<Response, GtmError>>) -> GtmError {
    GtmError::new(
        ErrorCode::Malformed,
        format!("unexpected GTM answer: {response:?}"),
    )
}

fn expect_ok(response: Response) -> Result<(), GtmError> {
    match response {
        Response::Ok => Ok(()),
        other => Err(unexpected(other)),
    }
}

/// Performs the handshake on a fresh socket: `Hello` out, `Welcome` back.
pub async fn handshake(
    stream: TcpStream,
    hello: &Hello,
) -> Result<(FrameReader, FrameWriter, Role), GtmError> {
    let (mut reader, mut writer) = codec::split(stream);
    codec::send(&mut writer, &ClientFrame::Hello(hello.clone()))
        .await
        .map_err(io_error)?;
    match codec::recv::<ServerFrame>(&mut reader)
        .await
        .map_err(io_error)?
    {
        Some(Ok(ServerFrame::Welcome(w))) => {
            if w.protocol_version != PROTOCOL_VERSION {
                return Err(GtmError::new(
                    ErrorCode::Malformed,
                    format!(
                        "GTM speaks protocol {}, this client {}",
                        w.protocol_version, PROTOCOL_VERSION
                    ),
                ));
            }
            Ok((reader, writer, w.role))
        }
        Some(Ok(ServerFrame::FrameError(e))) => Err(e),
        Some(Ok(other)) => Err(GtmError::new(
            ErrorCode::Malformed,
            format!("expected Welcome, got {other:?}"),
        )),
        Some(Err(e)) => Err(e),
        None => Err(GtmError::new(
            ErrorCode::Io,
            "GTM closed the connection during the handshake",
        )),
    }
}

/// An I/O error as a GTM error.
pub fn io_error(e: std::io::Error) -> GtmError {
    GtmError::new(ErrorCode::Io, format!("GTM connection: {e}"))
}

/// A call waiting for answers.
struct PendingCall {
    answers: Vec<Option<Result<Response, GtmError>>>,
    remaining: usize,
    reply: Option<oneshot::Sender<Answers>>,
    deadline: Instant,
}

/// The connection task's state.
struct Connection {
    addresses: Vec<String>,
    current: usize,
    hello: Hello,
    options: ClientOptions,
    /// Unanswered requests: id -> (call, index in the call, encoded request for resends).
    pending: HashMap<RequestId, (u64, usize, WireRequest)>,
    calls: HashMap<u64, PendingCall>,
    next_call: u64,
    upstream: Arc<Mutex<Option<String>>>,
}

type Framed = (FrameReader, FrameWriter);

impl Connection {
    /// Tries every address once, starting at the current one.
    async fn connect_any(&mut self) -> Result<Framed, GtmError> {
        let mut last = GtmError::new(ErrorCode::Io, "no GTM address given");
        for _ in 0..self.addresses.len() {
            let address = self.addresses[self.current].clone();
            match self.connect_one(&address).await {
                Ok(framed) => {
                    tracing::debug!(%address, "connected to GTM");
                    if let Ok(mut u) = self.upstream.lock() {
                        *u = Some(address);
                    }
                    return Ok(framed);
                }
                Err(e) => {
                    tracing::debug!(%address, error = %e, "GTM address not usable");
                    last = GtmError::new(e.code, format!("GTM at {address}: {}", e.message));
                    self.current = (self.current + 1) % self.addresses.len();
                }
            }
        }
        Err(last)
    }

    async fn connect_one(&self, address: &str) -> Result<Framed, GtmError> {
        let stream =
            tokio::time::timeout(self.options.connect_timeout, TcpStream::connect(address))
                .await
                .map_err(|_| GtmError::new(ErrorCode::Io, "connection timed out"))?
                .map_err(io_error)?;
        let (reader, writer, role) =
            tokio::time::timeout(self.options.connect_timeout, handshake(stream, &self.hello))
                .await
                .map_err(|_| GtmError::new(ErrorCode::Io, "handshake timed out"))??;
        if role == Role::Standby && !self.options.accept_standby {
            return Err(GtmError::new(
                ErrorCode::NotActive,
                "server is a standby GTM",
            ));
        }
        Ok((reader, writer))
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>, first: Framed) {
        let mut framed = Some(first);
        let mut backoff = Duration::from_millis(20);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            let Some((reader, writer)) = framed.as_mut() else {
                // Disconnected: keep taking calls, fail expired ones, retry the next address.
                if let Ok((r, mut w)) = self.connect_any().await {
                    backoff = Duration::from_millis(20);
                    let resend: Vec<WireRequest> = self.pending_in_order();
                    if !resend.is_empty() {
                        tracing::info!(
                            count = resend.len(),
                            "resending in-flight GTM requests after reconnect"
                        );
                        if codec::send(&mut w, &ClientFrame::Requests(resend))
                            .await
                            .is_err()
                        {
                            continue;
                        }
                    }
                    framed = Some((r, w));
                    continue;
                }
                if let Ok(mut u) = self.upstream.lock() {
                    *u = None;
                }
                let sleep = tokio::time::sleep(backoff);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        msg = rx.recv() => match msg {
                            None => return,
                            Some(Msg::Call { requests, reply }) => { self.add_call(requests, reply); }
                            Some(Msg::SwitchTo(a)) => { self.switch_to(a); break; }
                        },
                    }
                }
                self.expire_calls();
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            };
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { return };
                    // Let the callers woken by the last answers queue their next calls first,
                    // so that they leave in this frame rather than one small frame each.
                    tokio::task::yield_now().await;
                    let mut batch = Vec::new();
                    let mut switch = None;
                    self.take_msg(msg, &mut batch, &mut switch);
                    while batch.len() < 4096 && switch.is_none() {
                        match rx.try_recv() {
                            Ok(m) => self.take_msg(m, &mut batch, &mut switch),
                            Err(_) => break,
                        }
                    }
                    if !batch.is_empty() && codec::send(writer, &ClientFrame::Requests(batch)).await.is_err() {
                        framed = None;
                    }
                    if let Some(address) = switch {
                        self.switch_to(address);
                        framed = None;
                    }
                }
                frame = codec::recv::<ServerFrame>(reader) => match frame {
                    Ok(Some(Ok(ServerFrame::Responses(responses)))) => {
                        if self.take_responses(responses) {
                            // The server is no longer active: move on and resend.
                            self.current = (self.current + 1) % self.addresses.len();
                            framed = None;
                        }
                    }
                    Ok(Some(Ok(ServerFrame::FrameError(e)))) => {
                        tracing::warn!(error = %e, "GTM could not read a frame of ours");
                    }
                    Ok(Some(Ok(other))) => {
                        tracing::warn!(?other, "unexpected frame from GTM");
                    }
                    Ok(Some(Err(e))) => {
                        tracing::warn!(error = %e, "undecodable frame from GTM");
                    }
                    Ok(None) | Err(_) => {
                        tracing::info!(address = %self.addresses[self.current], "GTM connection lost; reconnecting");
                        self.current = (self.current + 1) % self.addresses.len();
                        framed = None;
                    }
                },
                _ = tick.tick() => self.expire_calls(),
            }
        }
    }

    fn switch_to(&mut self, address: String) {
        let index = match self.addresses.iter().position(|a| *a == address) {
            Some(i) => i,
            None => {
                self.addresses.push(address.clone());
                self.addresses.len() - 1
            }
        };
        tracing::info!(%address, "switching GTM address");
        self.current = index;
    }

    fn take_msg(&mut self, msg: Msg, batch: &mut Vec<WireRequest>, switch: &mut Option<String>) {
        match msg {
            Msg::Call { requests, reply } => batch.extend(self.add_call(requests, reply)),
            Msg::SwitchTo(address) => *switch = Some(address),
        }
    }

    /// Registers a call; returns its requests to send now.
    fn add_call(
        &mut self,
        requests: Vec<WireRequest>,
        reply: oneshot::Sender<Answers>,
    ) -> Vec<WireRequest> {
        let call = self.next_call;
        self.next_call += 1;
        let n = requests.len();
        if n == 0 {
            let _ = reply.send(Vec::new());
            return Vec::new();
        }
        self.calls.insert(
            call,
            PendingCall {
                answers: (0..n).map(|_| None).collect(),
                remaining: n,
                reply: Some(reply),
                deadline: Instant::now() + self.options.request_timeout,
            },
        );
        for (i, r) in requests.iter().enumerate() {
            self.pending.insert(r.id, (call, i, r.clone()));
        }
        requests
    }

    /// Records answers; returns true if the server said it is not active.
    fn take_responses(&mut self, responses: Vec<WireResponse>) -> bool {
        let mut not_active = false;
        for WireResponse { id, result } in responses {
            if matches!(&result, Err(e) if e.code == ErrorCode::NotActive) {
                not_active = true;
                continue; // stays pending; resent to the next server
            }
            let Some((call, index, _)) = self.pending.remove(&id) else {
                continue;
            };
            let done = match self.calls.get_mut(&call) {
                Some(c) => {
                    c.answers[index] = Some(result);
                    c.remaining -= 1;
                    c.remaining == 0
                }
                None => false,
            };
            if done {
                if let Some(mut c) = self.calls.remove(&call) {
                    if let Some(reply) = c.reply.take() {
                        let answers = c
                            .answers
                            .into_iter()
                            .map(|a| a.unwrap_or_else(|| Err(closed())))
                            .collect();
                        let _ = reply.send(answers);
                    }
                }
            }
        }
        not_active
    }

    fn pending_in_order(&self) -> Vec<WireRequest> {
        let mut all: Vec<&WireRequest> = self.pending.values().map(|(_, _, w)| w).collect();
        all.sort_by_key(|w| w.id);
        all.into_iter().cloned().collect()
    }

    fn expire_calls(&mut self) {
        let now = Instant::now();
        let expired: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        if expired.is_empty() {
            return;
        }
        self.pending
            .retain(|_, (call, _, _)| !expired.contains(call));
        for call in expired {
            if let Some(mut c) = self.calls.remove(&call) {
                if let Some(reply) = c.reply.take() {
                    let error = GtmError::new(
                        ErrorCode::Io,
                        format!(
                            "no answer from an active GTM within {:?}",
                            self.options.request_timeout
                        ),
                    );
                    let answers = c
                        .answers
                        .into_iter()
                        .map(|a| a.unwrap_or_else(|| Err(error.clone())))
                        .collect();
                    let _ = reply.send(answers);
                }
            }
        }
    }
}
