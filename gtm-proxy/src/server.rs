//! The proxy's listener and component connections.
//!
//! Each connection gets the GTM's handshake (`Hello` in, `Welcome { role: Proxy }` out), then a
//! reader loop that hands whole frames to the router and a writer task that sends the answers,
//! coalescing whatever is queued into one flush:
//!
//! ```text
//!   socket ─▶ reader: Hello → Welcome; Requests → Job::Frame ─▶ router
//!   socket ◀─ writer: feed every queued ServerFrame, flush once ◀─ router (answers)
//! ```
//!
//! A frame that cannot be decoded is answered with `ServerFrame::FrameError` and the connection
//! stays up. A standby GTM's `Hello` is refused: standbys attach to the active GTM itself.

use crate::router::{ConnId, Job, Router, RouterOptions};
use crate::upstream::Connector;
use rxc_common::gtm::client::ClientOptions;
use rxc_common::gtm::codec;
use rxc_common::gtm::proto::{ErrorCode, GtmError, Role, ServerFrame, Welcome, PROTOCOL_VERSION};
use rxc_common::gtm::serve;
use rxc_common::shutdown::Shutdown;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// How long shutdown waits for the router to end the sessions at the GTM.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// What a proxy needs to run.
#[derive(Clone, Debug)]
pub struct ProxyOptions {
    /// The proxy's name (in `Welcome`, the status view, and the GTM's client list).
    pub name: String,
    /// GTM addresses, in failover order.
    pub gtm: Vec<String>,
    /// How long the GTM keeps the proxy's sessions while the proxy reconnects, in ms.
    pub resume_grace_ms: u32,
    /// How long a forwarded request waits for its answer, across GTM reconnections.
    pub request_timeout: Duration,
}

/// A running proxy: bind its listener, then [`ProxyServer::run`] until shutdown.
pub struct ProxyServer {
    listener: TcpListener,
    options: ProxyOptions,
}

impl ProxyServer {
    /// A proxy serving on an already-bound listener.
    pub fn new(listener: TcpListener, options: ProxyOptions) -> ProxyServer {
        ProxyServer { listener, options }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` triggers. The GTM need not be reachable: requests wait for it
    /// (up to the request timeout) while the proxy keeps trying.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let mut client_options = ClientOptions::new(self.options.name.clone());
        client_options.resume_grace_ms = self.options.resume_grace_ms;
        client_options.request_timeout = self.options.request_timeout;
        let connector = Connector::spawn(
            self.options.gtm.clone(),
            client_options,
            jobs.clone(),
            shutdown.clone(),
        );
        let router = Router::new(
            RouterOptions {
                name: self.options.name.clone(),
                request_timeout: self.options.request_timeout,
            },
            connector,
        );
        let router_task = tokio::spawn(router.run(jobs_rx));
        let mut next_conn: ConnId = 1;
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let conn = next_conn;
                        next_conn += 1;
                        let span = tracing::debug_span!("conn", conn, %peer, client = tracing::field::Empty);
                        let jobs = jobs.clone();
                        let name = self.options.name.clone();
                        tokio::spawn(
                            async move {
                                if let Err(e) = serve_connection(stream, conn, jobs, name).await {
                                    tracing::debug!(error = %e, "connection ended");
                                }
                            }
                            .instrument(span),
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        let (done, stopped) = oneshot::channel();
        if jobs.send(Job::Shutdown { done }).is_ok()
            && tokio::time::timeout(SHUTDOWN_TIMEOUT, stopped)
                .await
                .is_err()
        {
            tracing::warn!("the GTM did not confirm the end of the proxy's sessions in time");
        }
        router_task.abort();
        tracing::info!("GTM proxy stopped");
        Ok(())
    }
}

/// Serves one component connection: handshake, then frames in, answers out.
async fn serve_connection(
    stream: TcpStream,
    conn: ConnId,
    jobs: mpsc::UnboundedSender<Job>,
    server_name: String,
) -> anyhow::Result<()> {
    let (mut reader, mut writer) = codec::split(stream);
    let Some(hello) = serve::read_hello(&mut reader, &mut writer, "GTM proxy").await? else {
        return Ok(());
    };
    if let Some(standby) = hello.standby {
        tracing::info!(%standby, "refusing a standby GTM: it must follow the active GTM");
        let e = GtmError::new(
            ErrorCode::InvalidState,
            "this is a GTM proxy; a standby GTM follows the active GTM itself",
        );
        codec::send(&mut writer, &ServerFrame::FrameError(e)).await?;
        return Ok(());
    }
    tracing::Span::current().record("client", hello.name.as_str());
    let welcome = Welcome {
        protocol_version: PROTOCOL_VERSION,
        server_name,
        role: Role::Proxy,
    };
    codec::send(&mut writer, &ServerFrame::Welcome(welcome)).await?;

    let (out, out_rx) = mpsc::unbounded_channel();
    let writer_task = tokio::spawn(serve::write_queued(writer, out_rx));
    let connected = Job::Connected {
        conn,
        client: hello.client_id,
        name: hello.name,
        out: out.clone(),
    };
    if jobs.send(connected).is_err() {
        return Ok(()); // shutting down
    }
    let result = serve::read_requests(&mut reader, &out, |requests| {
        jobs.send(Job::Frame { conn, requests }).is_ok()
    })
    .await;
    let _ = jobs.send(Job::Disconnected { conn });
    drop(out);
    let _ = writer_task.await;
    Ok(result?)
}
