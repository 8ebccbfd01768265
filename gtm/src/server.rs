//! The GTM server: connection tasks in front, one core task that owns the state behind.
//!
//! ```text
//!  client conn ──read──▶ Job::Requests ─┐
//!  client conn ──read──▶ Job::Requests ─┼─▶ core: drain every waiting job ─▶ apply to GtmState
//!  standby link (replica) ─ Job::Replica┘        │ once per batch: make the state durable if needed,
//!                                                │ forward the commands to the standby, wait ack
//!  client conn ◀─write── answers ◀───────────────┘ then answer every job of the batch
//! ```
//!
//! Batching is what makes the GTM fast under load: however many requests arrive while the core
//! is busy, they share one control-file write and one standby round trip (group commit).
//!
//! Sessions of a client whose connection is gone end after the grace period it asked for in
//! `Hello` (immediately for plain clients), unless it reconnects in time. After a promotion
//! every client that owns sessions gets [`ServerOptions::promote_grace`] to come back.

use crate::state::{request_name, Command, GtmState};
use crate::{control, standby};
use rxc_common::gtm::codec;
use rxc_common::gtm::proto::{
    decode, ClientId, ErrorCode, GtmError, Request, Response, Role, ServerFrame, ServerStatus,
    Welcome, WireRequest, WireResponse, PROTOCOL_VERSION,
};
use rxc_common::gtm::serve;
use rxc_common::net::now_micros;
use rxc_common::shutdown::Shutdown;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// What a GTM server needs to run.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// This GTM's name.
    pub name: String,
    /// Where `gtm.control` and its log live.
    pub data_dir: PathBuf,
    /// The active GTM to follow, for a standby.
    pub standby_of: Option<String>,
    /// How long clients with sessions may take to reconnect after a promotion.
    pub promote_grace: Duration,
    /// How long the active waits for its standby's acknowledgement before it drops the
    /// standby and goes on alone.
    pub standby_ack_timeout: Duration,
}

/// A unit of work for the core.
pub(crate) enum Job {
    Requests {
        client: ClientId,
        requests: Vec<WireRequest>,
        out: mpsc::UnboundedSender<ServerFrame>,
    },
    Connected {
        client: ClientId,
        name: String,
        grace_ms: u32,
    },
    Disconnected {
        client: ClientId,
    },
    Expire {
        client: ClientId,
        generation: u64,
    },
    StandbyAttach {
        name: String,
        link: Box<standby::Link>,
    },
    /// A replicated batch from the active, for a standby; answered once applied and durable.
    ReplicaBatch {
        commands: Vec<Command>,
        done: oneshot::Sender<()>,
    },
    /// A full state image from the active, for a standby.
    ReplicaImage {
        state: Box<GtmState>,
        done: oneshot::Sender<()>,
    },
    /// The standby's link to its active is up or down.
    UpstreamState {
        connected: bool,
    },
}

/// Connection bookkeeping per client.
struct ClientEntry {
    connections: u32,
    grace_ms: u32,
    generation: u64,
    name: String,
}

/// The shared role, readable by connection tasks.
#[derive(Clone)]
pub(crate) struct SharedRole(Arc<AtomicU8>);

impl SharedRole {
    fn new(role: Role) -> Self {
        let r = SharedRole(Arc::new(AtomicU8::new(0)));
        r.set(role);
        r
    }
    pub(crate) fn get(&self) -> Role {
        match self.0.load(Ordering::Acquire) {
            0 => Role::Active,
            _ => Role::Standby,
        }
    }
    fn set(&self, role: Role) {
        self.0
            .store(if role == Role::Active { 0 } else { 1 }, Ordering::Release);
    }
}

/// A running GTM: bind it, then [`GtmServer::run`] until shutdown.
pub struct GtmServer {
    listener: TcpListener,
    options: ServerOptions,
    store: control::ControlStore,
    state: GtmState,
}

impl GtmServer {
    /// Loads the state from the data directory (a fresh state for a new one) and takes the
    /// already-bound listener.
    pub fn new(listener: TcpListener, options: ServerOptions) -> anyhow::Result<GtmServer> {
        let (mut store, loaded) = control::ControlStore::open(&options.data_dir)?;
        let state = match loaded {
            Some(c) => {
                tracing::info!(next_gxid = %c.next_gxid, prepared = c.prepared.len(), sequences = c.sequences.len(), "resuming from gtm.control");
                GtmState::from_control(&c)
            }
            None => {
                let state = GtmState::default();
                store.checkpoint(&state.control_file())?;
                state
            }
        };
        Ok(GtmServer {
            listener,
            options,
            store,
            state,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` triggers.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let role = SharedRole::new(if self.options.standby_of.is_some() {
            Role::Standby
        } else {
            Role::Active
        });
        let (jobs, rx) = mpsc::unbounded_channel();
        let core = Core {
            state: self.state,
            store: self.store,
            options: self.options.clone(),
            role: role.clone(),
            clients: HashMap::new(),
            standby: None,
            upstream_connected: false,
            jobs: jobs.clone(),
            replica_stop: Shutdown::new(),
            replica_seq: 0,
        };
        if let Some(active) = &self.options.standby_of {
            tokio::spawn(standby::follow(
                active.clone(),
                self.options.name.clone(),
                jobs.clone(),
                core.replica_stop.clone(),
                shutdown.clone(),
            ));
        }
        let core_task = tokio::spawn(core.run(rx));
        let next_conn = Arc::new(AtomicU64::new(1));
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let jobs = jobs.clone();
                        let role = role.clone();
                        let name = self.options.name.clone();
                        let id = next_conn.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(async move {
                            if let Err(e) = serve_connection(stream, jobs, role, name).await {
                                tracing::debug!(%peer, conn = id, error = %e, "connection ended");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(jobs);
        core_task.abort();
        tracing::info!("GTM stopped");
        Ok(())
    }
}

/// Serves one client connection: handshake, then frames in, answers out.
async fn serve_connection(
    stream: TcpStream,
    jobs: mpsc::UnboundedSender<Job>,
    role: SharedRole,
    server_name: String,
) -> anyhow::Result<()> {
    let (mut reader, mut writer) = codec::split(stream);
    let Some(hello) = serve::read_hello(&mut reader, &mut writer, "GTM").await? else {
        return Ok(());
    };
    let welcome = Welcome {
        protocol_version: PROTOCOL_VERSION,
        server_name,
        role: role.get(),
    };
    codec::send(&mut writer, &ServerFrame::Welcome(welcome)).await?;

    if let Some(standby_name) = hello.standby {
        if role.get() != Role::Active {
            let e = GtmError::new(
                ErrorCode::NotActive,
                "this GTM is a standby; attach to the active one",
            );
            codec::send(&mut writer, &ServerFrame::FrameError(e)).await?;
            return Ok(());
        }
        let link = Box::new(standby::Link::new(reader, writer));
        let _ = jobs.send(Job::StandbyAttach {
            name: standby_name,
            link,
        });
        return Ok(());
    }

    let client = hello.client_id;
    let _ = jobs.send(Job::Connected {
        client,
        name: hello.name.clone(),
        grace_ms: hello.resume_grace_ms,
    });
    let (out, out_rx) = mpsc::unbounded_channel();
    let writer_task = tokio::spawn(serve::write_queued(writer, out_rx));
    let result = serve::read_requests(&mut reader, &out, |requests| {
        jobs.send(Job::Requests {
            client,
            requests,
            out: out.clone(),
        })
        .is_ok()
    })
    .await;
    let _ = jobs.send(Job::Disconnected { client });
    drop(out);
    let _ = writer_task.await;
    Ok(result?)
}

/// The core: owns the state, applies batches, persists, replicates, answers.
struct Core {
    state: GtmState,
    store: control::ControlStore,
    options: ServerOptions,
    role: SharedRole,
    clients: HashMap<ClientId, ClientEntry>,
    standby: Option<(String, standby::Link)>,
    upstream_connected: bool,
    jobs: mpsc::UnboundedSender<Job>,
    replica_stop: Shutdown,
    replica_seq: u64,
}

/// Answers of one job of a batch, sent once the batch is durable and replicated.
struct Outgoing {
    out: mpsc::UnboundedSender<ServerFrame>,
    responses: Vec<WireResponse>,
}

const MAX_BATCH_JOBS: usize = 1024;

impl Core {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Job>) {
        let mut batch = Vec::new();
        while let Some(job) = rx.recv().await {
            batch.push(job);
            while batch.len() < MAX_BATCH_JOBS {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let mut commands = Vec::new();
            let mut outgoing = Vec::new();
            let mut replica_done = Vec::new();
            for job in batch.drain(..) {
                self.handle(job, &mut commands, &mut outgoing, &mut replica_done)
                    .await;
            }
            self.make_durable();
            if !commands.is_empty() {
                self.replicate(&commands).await;
            }
            for Outgoing { out, responses } in outgoing {
                let _ = out.send(ServerFrame::Responses(responses));
            }
            for done in replica_done {
                let _ = done.send(());
            }
        }
    }

    /// Makes the state durable (a `gtm.control.log` record) if the batch changed it.
    fn make_durable(&mut self) {
        if self.state.take_persist_needed() {
            self.persist();
        }
    }

    /// Makes the state durable now. A GTM that cannot make its state durable must not answer: it
    /// stops, so that nothing is handed out twice.
    fn persist(&mut self) {
        if let Err(e) = self.store.save(&self.state.control_file()) {
            tracing::error!(error = %e, "cannot make the GTM state durable; stopping so that nothing is handed out twice");
            std::process::exit(2);
        }
    }

    async fn replicate(&mut self, commands: &[Command]) {
        let Some((name, link)) = self.standby.as_mut() else {
            return;
        };
        self.replica_seq += 1;
        let seq = self.replica_seq;
        let frame = ServerFrame::ReplicaBatch {
            seq,
            commands: rxc_common::gtm::proto::encode(&commands),
        };
        match tokio::time::timeout(self.options.standby_ack_timeout, link.exchange(&frame, seq))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(standby = %name, error = %e, "standby GTM lost; continuing without a standby");
                self.standby = None;
            }
            Err(_) => {
                tracing::warn!(standby = %name, "standby GTM did not acknowledge in time; continuing without a standby");
                self.standby = None;
            }
        }
    }

    async fn handle(
        &mut self,
        job: Job,
        commands: &mut Vec<Command>,
        outgoing: &mut Vec<Outgoing>,
        replica_done: &mut Vec<oneshot::Sender<()>>,
    ) {
        match job {
            Job::Requests {
                client,
                requests,
                out,
            } => {
                let now = now_micros();
                let responses = requests
                    .into_iter()
                    .map(|WireRequest { id, body }| {
                        let result = match decode::<Request>(&body) {
                            Err(e) => Err(GtmError::new(
                                ErrorCode::Malformed,
                                format!("unknown or malformed request: {}", e.message),
                            )),
                            Ok(request) => self.serve(client, id, now, request, commands),
                        };
                        WireResponse { id, result }
                    })
                    .collect();
                outgoing.push(Outgoing { out, responses });
            }
            Job::Connected {
                client,
                name,
                grace_ms,
            } => {
                let entry = self.clients.entry(client).or_insert(ClientEntry {
                    connections: 0,
                    grace_ms,
                    generation: 0,
                    name: name.clone(),
                });
                entry.connections += 1;
                entry.generation += 1;
                entry.grace_ms = grace_ms;
                entry.name = name;
            }
            Job::Disconnected { client } => {
                let Some(entry) = self.clients.get_mut(&client) else {
                    return;
                };
                entry.connections = entry.connections.saturating_sub(1);
                if entry.connections > 0 {
                    return;
                }
                entry.generation += 1;
                if entry.grace_ms == 0 {
                    self.client_gone(client, commands);
                } else {
                    let (generation, grace) = (
                        entry.generation,
                        Duration::from_millis(entry.grace_ms as u64),
                    );
                    self.schedule_expiry(client, generation, grace);
                }
            }
            Job::Expire { client, generation } => {
                let still_gone = match self.clients.get(&client) {
                    Some(e) => e.connections == 0 && e.generation == generation,
                    None => true,
                };
                if still_gone && self.role.get() == Role::Active {
                    tracing::info!(
                        client,
                        "client did not come back within its grace period; ending its sessions"
                    );
                    self.client_gone(client, commands);
                }
            }
            Job::StandbyAttach { name, mut link } => {
                if self.role.get() != Role::Active {
                    return;
                }
                // The image must include everything answered so far: make the batch so far durable
                // and replicated first, then send the image.
                self.make_durable();
                if !commands.is_empty() {
                    self.replicate(commands).await;
                    commands.clear();
                }
                self.replica_seq += 1;
                let seq = self.replica_seq;
                let image = rxc_common::gtm::proto::encode(&self.state);
                let frame = ServerFrame::ReplicaImage { seq, image };
                match tokio::time::timeout(Duration::from_secs(30), link.exchange(&frame, seq))
                    .await
                {
                    Ok(Ok(())) => {
                        tracing::info!(standby = %name, "standby GTM attached and in sync");
                        self.standby = Some((name, *link));
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(standby = %name, error = %e, "standby GTM failed to attach")
                    }
                    Err(_) => {
                        tracing::warn!(standby = %name, "standby GTM did not take the state image in time")
                    }
                }
            }
            Job::ReplicaBatch {
                commands: replicated,
                done,
            } => {
                if self.role.get() == Role::Standby {
                    for command in &replicated {
                        let _ = self.state.apply(command);
                    }
                }
                replica_done.push(done);
            }
            Job::ReplicaImage { state, done } => {
                if self.role.get() == Role::Standby {
                    self.state = *state;
                    // The image's reservations are the active's; write them as ours.
                    self.persist();
                }
                replica_done.push(done);
            }
            Job::UpstreamState { connected } => self.upstream_connected = connected,
        }
    }

    fn client_gone(&mut self, client: ClientId, commands: &mut Vec<Command>) {
        self.clients.remove(&client);
        let command = Command::ClientGone { client };
        let _ = self.state.apply(&command);
        commands.push(command);
    }

    fn schedule_expiry(&self, client: ClientId, generation: u64, after: Duration) {
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = jobs.send(Job::Expire { client, generation });
        });
    }

    /// Serves one decoded request.
    fn serve(
        &mut self,
        client: ClientId,
        id: u64,
        now: i64,
        request: Request,
        commands: &mut Vec<Command>,
    ) -> Result<Response, GtmError> {
        match request {
            Request::ServerStatus => return Ok(Response::ServerStatus(self.status())),
            Request::Promote => return self.promote(),
            Request::Reconnect { .. } => {
                return Err(GtmError::new(
                    ErrorCode::InvalidState,
                    "Reconnect is a GTM proxy request; this is a GTM",
                ))
            }
            _ => {}
        }
        if self.role.get() != Role::Active {
            return Err(GtmError::new(
                ErrorCode::NotActive,
                format!(
                    "this GTM is a standby and does not serve {}",
                    request_name(&request)
                ),
            ));
        }
        if !request.is_mutating() {
            return self.state.read(&request, now);
        }
        let command = Command::Request {
            client,
            id,
            now_us: now,
            request,
        };
        let result = self.state.apply(&command);
        commands.push(command);
        result
    }

    fn status(&self) -> ServerStatus {
        let role = self.role.get();
        ServerStatus {
            name: self.options.name.clone(),
            role,
            next_gxid: self.state.next_gxid(),
            running: self.state.running_count() as u64,
            global_xmin: self.state.global_xmin(),
            prepared: self.state.prepared_count() as u64,
            sequences: self.state.sequence_count() as u64,
            clients: self.clients.values().filter(|c| c.connections > 0).count() as u64,
            standby: self
                .standby
                .as_ref()
                .map(|(name, _)| format!("{name} (synchronous, in sync)")),
            upstream: self
                .options
                .standby_of
                .as_ref()
                .filter(|_| role == Role::Standby)
                .map(|a| {
                    format!(
                        "{a} ({})",
                        if self.upstream_connected {
                            "streaming"
                        } else {
                            "disconnected"
                        }
                    )
                }),
        }
    }

    fn promote(&mut self) -> Result<Response, GtmError> {
        if self.role.get() == Role::Active {
            return Ok(Response::Ok);
        }
        if self.upstream_connected {
            // Two active GTMs would hand out the same GXIDs: refuse while the active streams.
            return Err(GtmError::new(
                ErrorCode::ActiveStillRunning,
                format!(
                    "the active GTM at {} is still streaming to this standby; stop it before promoting",
                    self.options.standby_of.as_deref().unwrap_or("?")
                ),
            ));
        }
        self.replica_stop.trigger();
        self.role.set(Role::Active);
        let clients = self.state.clients_with_sessions();
        tracing::info!(
            next_gxid = %self.state.next_gxid(),
            running = self.state.running_count(),
            clients = clients.len(),
            "promoted to active GTM"
        );
        for client in clients {
            let entry = self.clients.entry(client).or_insert(ClientEntry {
                connections: 0,
                grace_ms: 0,
                generation: 0,
                name: String::new(),
            });
            if entry.connections == 0 {
                entry.generation += 1;
                let generation = entry.generation;
                self.schedule_expiry(client, generation, self.options.promote_grace);
            }
        }
        self.persist();
        Ok(Response::Ok)
    }
}
