//! The router: one task that owns everything the proxy knows about its components' requests.
//!
//! Connection tasks hand it whole frames ([`Job::Frame`]); it answers the proxy's own requests,
//! rewrites what the GTM must see differently, submits the rest upstream and sends each answer
//! back to its connection under the id the component chose. It never waits on the GTM: calls
//! are submitted with [`GtmClient::submit_wire`] (queued in submission order, so the GTM sees
//! them in the order the router decided) and their completions come back through a
//! `FuturesUnordered` that the router polls beside its job queue.
//!
//! Sessions. A session is named by its component's connection and the component's session id;
//! the GTM knows it by an upstream session id from the upstream client's `new_session()`.
//! `Begin`, `Snapshot`, `ReleaseSnapshot` and `EndSession` are rewritten to the upstream ids.
//! When a connection closes, an `EndSession` goes upstream for every session it used, so their
//! unprepared GXIDs abort and their snapshots are released at once.
//!
//! Snapshots are coalesced in rounds:
//!
//! ```text
//!   requests:   s1 s2 s3 │ s4 s5        │ s6
//!   upstream:   ─────────┴▶ Snapshot{1,2,3} ─▶ answer to s1..s3
//!                                        └▶ Snapshot{4,5} ─▶ answer to s4, s5
//! ```
//!
//! Requests that arrive while no round is in flight start one, for all of them; requests that
//! arrive while one is in flight wait for the next. A snapshot taken before a request arrived
//! never answers it: it could miss a commit acknowledged before the request was sent. Every
//! request of a round gets the same snapshot, which the GTM holds for each of their sessions.
//!
//! Everything else is forwarded as it comes, each frame's requests as one call so that they
//! stay one batch; the upstream client writes all calls queued meanwhile in one frame. Within a
//! frame, a snapshot request goes upstream after the frame's other requests (so after a `Begin`
//! in the same frame, as the GTM itself would order them).
//!
//! Answers go back a frame at a time, as the GTM answers: a component's frame is answered once
//! every request in it has its answer, and the frames completed in one turn of the router leave
//! together, as one frame per connection. Fewer, fuller frames are what keeps the proxy and its
//! components cheap per transaction: their cost is mostly socket calls and wake-ups.
//!
//! Until the first GTM connection succeeds, forwarded requests wait in a backlog for up to the
//! request timeout, after which they are answered with [`ErrorCode::NotActive`].

use crate::upstream::{self, Answers, Connector, InFlight};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rxc_common::config::split_host_port;
use rxc_common::gtm::client::GtmClient;
use rxc_common::gtm::proto::{
    decode, ClientId, ErrorCode, GtmError, Request, RequestId, Response, ServerFrame, SessionId,
    WireRequest, WireResponse,
};
use rxc_common::txn::Isolation;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Identifies one component connection to the proxy.
pub type ConnId = u64;

/// Jobs handled at most per turn before the router starts a snapshot round.
const MAX_JOBS_PER_TURN: usize = 1024;
/// How often waiting requests are checked for expiry while no GTM is reachable.
const EXPIRY_TICK: Duration = Duration::from_millis(100);
/// How long a clean shutdown waits for the GTM to end the proxy's sessions.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A unit of work for the router.
pub enum Job {
    /// A component connected (after the handshake); answers for it go to `out`.
    Connected {
        conn: ConnId,
        client: ClientId,
        name: String,
        out: mpsc::UnboundedSender<ServerFrame>,
    },
    /// A frame of requests from a component.
    Frame {
        conn: ConnId,
        requests: Vec<WireRequest>,
    },
    /// A component's connection is gone: its sessions end.
    Disconnected { conn: ConnId },
    /// The first GTM connection succeeded.
    UpstreamReady(GtmClient),
    /// Stop: end every session at the GTM, then report `done`.
    Shutdown { done: oneshot::Sender<()> },
}

/// What the router needs to know besides its jobs.
#[derive(Clone, Debug)]
pub struct RouterOptions {
    /// The proxy's name, for the status view.
    pub name: String,
    /// How long a request waits for a first GTM connection.
    pub request_timeout: Duration,
}

/// A forwarded request, as classified when its frame arrives.
enum Routed {
    /// Joins the next snapshot round, for these (component) sessions.
    Snapshot(Vec<SessionId>),
    Begin {
        session: SessionId,
        isolation: Isolation,
    },
    ReleaseSnapshot {
        session: SessionId,
    },
    EndSession {
        session: SessionId,
    },
    /// Needs no rewriting: its encoded body goes upstream as it came, under a new id.
    Pass(Vec<u8>),
}

/// Identifies one component frame while its answers are collected.
type FrameId = u64;

/// A component frame whose answers are being collected: it is answered in one frame once
/// every request has its answer, as the GTM answers a frame.
struct PendingFrame {
    conn: ConnId,
    /// Requests without an answer yet.
    remaining: usize,
    answers: Vec<WireResponse>,
}

/// Requests of one frame waiting for the first GTM connection.
struct Backlogged {
    conn: ConnId,
    frame: FrameId,
    arrived: Instant,
    requests: Vec<(RequestId, Routed)>,
}

/// What a submitted call's answers are for.
enum Call {
    /// A frame's forwarded requests: their answers, in order, are for these ids.
    Forward { frame: FrameId, ids: Vec<RequestId> },
    /// A snapshot round: its snapshot answers these (frame, component request id).
    Snapshot(Vec<(FrameId, RequestId)>),
    /// The sessions of a closed connection.
    EndSessions { client: ClientId, count: usize },
    /// Every session, at shutdown.
    EndAll,
}

/// A component connection.
struct Conn {
    client: ClientId,
    name: String,
    out: mpsc::UnboundedSender<ServerFrame>,
    /// Component session id → upstream session id.
    sessions: HashMap<SessionId, SessionId>,
    /// Answers of the frames completed this turn, sent as one frame when the turn ends.
    outbox: Vec<WireResponse>,
}

/// The router task's state; see the module doc.
pub struct Router {
    options: RouterOptions,
    upstream: Option<GtmClient>,
    connector: Connector,
    conns: HashMap<ConnId, Conn>,
    /// Connections with answers in their outbox.
    dirty: Vec<ConnId>,
    /// Frames being answered.
    frames: HashMap<FrameId, PendingFrame>,
    next_frame: FrameId,
    /// Snapshot requests for the next round: (frame, component request id).
    waiting: Vec<(FrameId, RequestId)>,
    /// The upstream sessions the next round is for, with their connection.
    waiting_sessions: Vec<(ConnId, SessionId)>,
    /// Whether a snapshot round is submitted and not yet answered.
    round_in_flight: bool,
    backlog: VecDeque<Backlogged>,
    calls: FuturesUnordered<InFlight<Call>>,
}

impl Router {
    /// A router without a GTM connection yet; `connector` delivers one as
    /// [`Job::UpstreamReady`].
    pub(crate) fn new(options: RouterOptions, connector: Connector) -> Router {
        Router {
            options,
            upstream: None,
            connector,
            conns: HashMap::new(),
            dirty: Vec::new(),
            frames: HashMap::new(),
            next_frame: 0,
            waiting: Vec::new(),
            waiting_sessions: Vec::new(),
            round_in_flight: false,
            backlog: VecDeque::new(),
            calls: FuturesUnordered::new(),
        }
    }

    /// Serves jobs until [`Job::Shutdown`] or until every job sender is gone.
    ///
    /// A turn takes every completed call, or every queued job (up to [`MAX_JOBS_PER_TURN`]),
    /// then starts a snapshot round if none is in flight, then sends each connection the
    /// answers of the turn as one frame.
    pub(crate) async fn run(mut self, mut jobs: mpsc::UnboundedReceiver<Job>) {
        let mut tick = tokio::time::interval(EXPIRY_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                Some(done) = self.calls.next(), if !self.calls.is_empty() => {
                    // Calls answered by the same upstream frame complete together: take them
                    // all, so that their answers leave in one frame per connection.
                    self.complete(done);
                    while let Some(Some(done)) = self.calls.next().now_or_never() {
                        self.complete(done);
                    }
                }
                job = jobs.recv() => {
                    let Some(job) = job else { return };
                    if let Some(done) = self.handle(job) {
                        return self.stop(done).await;
                    }
                    for _ in 0..MAX_JOBS_PER_TURN {
                        let Ok(job) = jobs.try_recv() else { break };
                        if let Some(done) = self.handle(job) {
                            return self.stop(done).await;
                        }
                    }
                }
                _ = tick.tick(), if !self.backlog.is_empty() => self.expire_backlog(),
            }
            self.start_round();
            self.flush();
        }
    }

    /// Handles one job; returns the shutdown acknowledgement when it is time to stop.
    fn handle(&mut self, job: Job) -> Option<oneshot::Sender<()>> {
        match job {
            Job::Connected {
                conn,
                client,
                name,
                out,
            } => {
                tracing::debug!(conn, client, %name, "component connected");
                let entry = Conn {
                    client,
                    name,
                    out,
                    sessions: HashMap::new(),
                    outbox: Vec::new(),
                };
                self.conns.insert(conn, entry);
            }
            Job::Frame { conn, requests } => self.frame(conn, requests),
            Job::Disconnected { conn } => self.disconnected(conn),
            Job::UpstreamReady(client) => {
                self.upstream = Some(client);
                let backlog = std::mem::take(&mut self.backlog);
                if !backlog.is_empty() {
                    tracing::info!(
                        frames = backlog.len(),
                        "forwarding requests that waited for the GTM"
                    );
                }
                for Backlogged {
                    conn,
                    frame,
                    requests,
                    ..
                } in backlog
                {
                    self.forward(conn, frame, requests);
                }
            }
            Job::Shutdown { done } => return Some(done),
        }
        None
    }

    /// Records the answer to request `id` of `frame`; once the frame is fully answered, its
    /// answers go to the connection's outbox.
    fn reply(&mut self, frame: FrameId, id: RequestId, result: Result<Response, GtmError>) {
        self.settle(frame, Some(WireResponse { id, result }));
    }

    /// Counts one request of `frame` as settled, with its answer (or none: `ServerStatus` is
    /// answered on its own).
    fn settle(&mut self, frame: FrameId, answer: Option<WireResponse>) {
        let Some(pending) = self.frames.get_mut(&frame) else {
            return; // its connection is gone
        };
        pending.answers.extend(answer);
        pending.remaining -= 1;
        if pending.remaining > 0 {
            return;
        }
        let Some(done) = self.frames.remove(&frame) else {
            return;
        };
        if let Some(conn) = self.conns.get_mut(&done.conn) {
            if conn.outbox.is_empty() {
                self.dirty.push(done.conn);
                conn.outbox = done.answers;
            } else {
                conn.outbox.extend(done.answers);
            }
        }
    }

    /// Sends each connection the answers of this turn, as one frame.
    fn flush(&mut self) {
        for conn in self.dirty.drain(..) {
            if let Some(c) = self.conns.get_mut(&conn) {
                if !c.outbox.is_empty() {
                    let answers = std::mem::take(&mut c.outbox);
                    let _ = c.out.send(ServerFrame::Responses(answers));
                }
            }
        }
    }

    /// Classifies a frame's requests: the proxy's own are answered here, the rest forwarded
    /// (or kept until a GTM is reachable).
    fn frame(&mut self, conn: ConnId, requests: Vec<WireRequest>) {
        if !self.conns.contains_key(&conn) || requests.is_empty() {
            return;
        }
        let frame = self.next_frame;
        self.next_frame += 1;
        let pending = PendingFrame {
            conn,
            remaining: requests.len(),
            answers: Vec::with_capacity(requests.len()),
        };
        self.frames.insert(frame, pending);
        let mut routed = Vec::with_capacity(requests.len());
        for WireRequest { id, body } in requests {
            let request = match decode::<Request>(&body) {
                Ok(request) => request,
                Err(e) => {
                    let message = format!("unknown or malformed request: {}", e.message);
                    self.reply(frame, id, Err(GtmError::new(ErrorCode::Malformed, message)));
                    continue;
                }
            };
            let routed_request = match request {
                Request::Snapshot { sessions } => Routed::Snapshot(sessions),
                Request::Begin { session, isolation } => Routed::Begin { session, isolation },
                Request::ReleaseSnapshot { session } => Routed::ReleaseSnapshot { session },
                Request::EndSession { session } => Routed::EndSession { session },
                Request::ServerStatus => {
                    self.status(conn, id);
                    self.settle(frame, None);
                    continue;
                }
                Request::Reconnect { address } => {
                    let result = self.reconnect(address);
                    self.reply(frame, id, result);
                    continue;
                }
                Request::Promote => {
                    let e = GtmError::new(
                        ErrorCode::InvalidState,
                        "Promote is a request for a standby GTM; this is a GTM proxy",
                    );
                    self.reply(frame, id, Err(e));
                    continue;
                }
                _ => Routed::Pass(body),
            };
            routed.push((id, routed_request));
        }
        if routed.is_empty() {
            return;
        }
        if self.upstream.is_some() {
            self.forward(conn, frame, routed);
        } else {
            self.backlog.push_back(Backlogged {
                conn,
                frame,
                arrived: Instant::now(),
                requests: routed,
            });
        }
    }

    /// Rewrites a frame's requests to upstream sessions and ids and submits them as one call;
    /// snapshot requests join the next round.
    fn forward(&mut self, conn_id: ConnId, frame: FrameId, routed: Vec<(RequestId, Routed)>) {
        let Some(client) = self.upstream.as_ref() else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return; // the connection closed while its requests waited
        };
        let mut requests = Vec::with_capacity(routed.len());
        let mut ids = Vec::with_capacity(routed.len());
        let mut unknown_sessions = Vec::new();
        for (id, routed_request) in routed {
            let request = match routed_request {
                Routed::Snapshot(sessions) => {
                    for session in sessions {
                        let upstream = upstream_session(&mut conn.sessions, client, session);
                        self.waiting_sessions.push((conn_id, upstream));
                    }
                    self.waiting.push((frame, id));
                    continue;
                }
                Routed::Begin { session, isolation } => {
                    let session = upstream_session(&mut conn.sessions, client, session);
                    let request = Request::Begin { session, isolation };
                    WireRequest::new(client.next_request_id(), &request)
                }
                Routed::ReleaseSnapshot { session } => {
                    let Some(&session) = conn.sessions.get(&session) else {
                        unknown_sessions.push(id); // it holds nothing
                        continue;
                    };
                    unqueue_session(&mut self.waiting_sessions, session);
                    let request = Request::ReleaseSnapshot { session };
                    WireRequest::new(client.next_request_id(), &request)
                }
                Routed::EndSession { session } => {
                    let Some(session) = conn.sessions.remove(&session) else {
                        unknown_sessions.push(id); // it owns nothing
                        continue;
                    };
                    unqueue_session(&mut self.waiting_sessions, session);
                    let request = Request::EndSession { session };
                    WireRequest::new(client.next_request_id(), &request)
                }
                Routed::Pass(body) => WireRequest {
                    id: client.next_request_id(),
                    body,
                },
            };
            requests.push(request);
            ids.push(id);
        }
        for id in unknown_sessions {
            self.reply(frame, id, Ok(Response::Ok));
        }
        if !requests.is_empty() {
            let call = Call::Forward { frame, ids };
            self.submit(call, requests);
        }
    }

    /// Starts a snapshot round for every waiting request, unless one is in flight.
    fn start_round(&mut self) {
        if self.round_in_flight || self.waiting.is_empty() {
            return;
        }
        let Some(client) = self.upstream.as_ref() else {
            return;
        };
        let sessions = self.waiting_sessions.drain(..).map(|(_, s)| s).collect();
        let request = WireRequest::new(client.next_request_id(), &Request::Snapshot { sessions });
        let waiters = std::mem::take(&mut self.waiting);
        self.round_in_flight = true;
        self.submit(Call::Snapshot(waiters), vec![request]);
    }

    /// Queues a call upstream and tracks its completion.
    fn submit(&mut self, call: Call, requests: Vec<WireRequest>) {
        let Some(client) = self.upstream.as_ref() else {
            return;
        };
        match client.submit_wire(requests) {
            Ok(answers) => self.calls.push(InFlight::new(call, answers)),
            Err(e) => self.complete((call, Err(e))),
        }
    }

    /// Delivers the answers of a completed call.
    fn complete(&mut self, (call, result): (Call, Result<Answers, GtmError>)) {
        match call {
            Call::Forward { frame, ids } => match result {
                Ok(answers) => {
                    let mut answers = answers.into_iter();
                    for id in ids {
                        let result = answers.next().unwrap_or_else(|| Err(missing()));
                        self.reply(frame, id, result);
                    }
                }
                Err(e) => {
                    for id in ids {
                        self.reply(frame, id, Err(e.clone()));
                    }
                }
            },
            Call::Snapshot(waiters) => {
                let snapshot = match result {
                    Ok(answers) => answers.into_iter().next().unwrap_or_else(|| Err(missing())),
                    Err(e) => Err(e),
                };
                if let Err(e) = &snapshot {
                    tracing::warn!(error = %e, waiting = waiters.len(), "GTM snapshot failed");
                }
                for (frame, id) in waiters {
                    self.reply(frame, id, snapshot.clone());
                }
                self.round_in_flight = false;
            }
            Call::EndSessions { client, count } => {
                if let Some(e) = first_error(result) {
                    tracing::warn!(client, sessions = count, error = %e, "could not end a closed connection's sessions at the GTM");
                }
            }
            Call::EndAll => {
                if let Some(e) = first_error(result) {
                    tracing::warn!(error = %e, "could not end the sessions at the GTM on shutdown");
                }
            }
        }
    }

    /// A component connection closed: drop what it still waits for and end its sessions.
    fn disconnected(&mut self, conn_id: ConnId) {
        let Some(conn) = self.conns.remove(&conn_id) else {
            return;
        };
        self.backlog.retain(|b| b.conn != conn_id);
        self.frames.retain(|_, f| f.conn != conn_id);
        // Its sessions end below: a snapshot round submitted later must not hold them again.
        let frames = &self.frames;
        self.waiting.retain(|(f, _)| frames.contains_key(f));
        self.waiting_sessions.retain(|(c, _)| *c != conn_id);
        tracing::debug!(conn = conn_id, client = conn.client, name = %conn.name, sessions = conn.sessions.len(), "component disconnected");
        if conn.sessions.is_empty() {
            return;
        }
        let Some(client) = self.upstream.as_ref() else {
            return;
        };
        let requests = conn
            .sessions
            .values()
            .map(|&session| {
                WireRequest::new(client.next_request_id(), &Request::EndSession { session })
            })
            .collect();
        let call = Call::EndSessions {
            client: conn.client,
            count: conn.sessions.len(),
        };
        self.submit(call, requests);
    }

    /// Answers `ServerStatus` from a separate task (it asks the GTM for its counters).
    fn status(&self, conn: ConnId, id: RequestId) {
        let Some(out) = self.conns.get(&conn).map(|c| c.out.clone()) else {
            return;
        };
        let name = self.options.name.clone();
        let clients = self.conns.len() as u64;
        let upstream = self.upstream.clone();
        tokio::spawn(async move {
            let status = upstream::proxy_status(name, clients, upstream).await;
            let answer = WireResponse {
                id,
                result: Ok(Response::ServerStatus(status)),
            };
            let _ = out.send(ServerFrame::Responses(vec![answer]));
        });
    }

    /// `Reconnect { address }`: move the GTM connection to `address` now.
    fn reconnect(&self, address: String) -> Result<Response, GtmError> {
        if let Err(reason) = split_host_port(&address) {
            return Err(GtmError::new(
                ErrorCode::InvalidParameter,
                format!("invalid GTM address `{address}`: {reason}"),
            ));
        }
        tracing::info!(%address, "reconnecting to the GTM on request");
        match &self.upstream {
            Some(client) => client.switch_to(address)?,
            None => self.connector.prefer(address),
        }
        Ok(Response::Ok)
    }

    /// Answers requests that waited longer than the request timeout for a first GTM
    /// connection.
    fn expire_backlog(&mut self) {
        let now = Instant::now();
        while let Some(front) = self.backlog.front() {
            if now.duration_since(front.arrived) < self.options.request_timeout {
                break;
            }
            let Some(expired) = self.backlog.pop_front() else {
                break;
            };
            let error = GtmError::new(
                ErrorCode::NotActive,
                format!("no GTM reachable within {:?}", self.options.request_timeout),
            );
            for (id, _) in expired.requests {
                self.reply(expired.frame, id, Err(error.clone()));
            }
        }
    }

    /// Ends every session at the GTM (waiting up to [`SHUTDOWN_GRACE`]), then acknowledges.
    async fn stop(mut self, done: oneshot::Sender<()>) {
        let sessions: Vec<SessionId> = self
            .conns
            .values()
            .flat_map(|c| c.sessions.values().copied())
            .collect();
        if let (Some(client), false) = (self.upstream.as_ref(), sessions.is_empty()) {
            let count = sessions.len();
            let requests = sessions
                .into_iter()
                .map(|session| {
                    WireRequest::new(client.next_request_id(), &Request::EndSession { session })
                })
                .collect();
            self.submit(Call::EndAll, requests);
            let ended = tokio::time::timeout(SHUTDOWN_GRACE, async {
                while let Some(completed) = self.calls.next().await {
                    let last = matches!(completed.0, Call::EndAll);
                    self.complete(completed);
                    if last {
                        break;
                    }
                }
            })
            .await;
            if ended.is_ok() {
                tracing::info!(
                    sessions = count,
                    "ended the components' sessions at the GTM"
                );
            }
        }
        let _ = done.send(());
    }
}

/// The upstream session of a component session, made on first use.
fn upstream_session(
    sessions: &mut HashMap<SessionId, SessionId>,
    client: &GtmClient,
    session: SessionId,
) -> SessionId {
    *sessions
        .entry(session)
        .or_insert_with(|| client.new_session())
}

/// Takes `session` out of the next snapshot round (it is being released or ended, and the
/// round, submitted later, must not hold it again).
fn unqueue_session(waiting: &mut Vec<(ConnId, SessionId)>, session: SessionId) {
    if waiting.iter().any(|&(_, s)| s == session) {
        waiting.retain(|&(_, s)| s != session);
    }
}

fn missing() -> GtmError {
    GtmError::new(
        ErrorCode::Io,
        "the GTM answered fewer requests than were sent",
    )
}

fn first_error(result: Result<Answers, GtmError>) -> Option<GtmError> {
    match result {
        Ok(answers) => answers.into_iter().find_map(Result::err),
        Err(e) => Some(e),
    }
}
