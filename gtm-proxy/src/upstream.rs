//! The proxy's side of the GTM connection: reaching the GTM at startup, waiting for submitted
//! calls without blocking the router, and the admin status view.
//!
//! [`GtmClient::connect`] fails when no address answers, so at startup a [`Connector`] task
//! retries (with backoff, addresses in order) until one GTM answers as active, then hands the
//! client to the router with [`Job::UpstreamReady`]. From then on the client itself keeps the
//! connection: it reconnects, moves along the address list and resends what is in flight.
//!
//! The router submits calls with [`GtmClient::submit_wire`], which queues them in submission
//! order without waiting, and keeps an `InFlight` per call in a `FuturesUnordered` that it
//! polls beside its job queue.

use crate::router::Job;
use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::gtm::proto::{ErrorCode, GtmError, Response, Role, ServerStatus};
use rxc_common::shutdown::Shutdown;
use rxc_common::txn::Gxid;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The answers of one upstream call, in request order.
pub type Answers = Vec<Result<Response, GtmError>>;

/// How long the proxy waits for the GTM's own status when it answers `ServerStatus`.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// The startup connection loop's address list, shared with the router so that `Reconnect`
/// works before the first connection succeeds.
#[derive(Clone, Debug)]
pub struct Connector {
    addresses: Arc<Mutex<Vec<String>>>,
}

impl Connector {
    /// Spawns the loop that connects to the first active GTM of `addresses` (retrying until
    /// one answers or `shutdown`) and sends the client to the router.
    pub(crate) fn spawn(
        addresses: Vec<String>,
        options: ClientOptions,
        jobs: mpsc::UnboundedSender<Job>,
        shutdown: Shutdown,
    ) -> Connector {
        let connector = Connector {
            addresses: Arc::new(Mutex::new(addresses)),
        };
        tokio::spawn(connector.clone().run(options, jobs, shutdown));
        connector
    }

    /// Makes `address` the first one tried (for `Reconnect` before any GTM answered).
    pub fn prefer(&self, address: String) {
        if let Ok(mut addresses) = self.addresses.lock() {
            addresses.retain(|a| *a != address);
            addresses.insert(0, address);
        }
    }

    fn addresses(&self) -> Vec<String> {
        self.addresses.lock().map(|a| a.clone()).unwrap_or_default()
    }

    async fn run(
        self,
        options: ClientOptions,
        jobs: mpsc::UnboundedSender<Job>,
        shutdown: Shutdown,
    ) {
        let mut backoff = Duration::from_millis(50);
        let mut warned = false;
        loop {
            let addresses = self.addresses();
            let attempt = tokio::select! {
                attempt = GtmClient::connect(addresses.clone(), options.clone()) => attempt,
                _ = shutdown.wait() => return,
            };
            match attempt {
                Ok(client) => {
                    // A `Reconnect` that came while this attempt ran (with the old list) has
                    // the last word: move there now.
                    let preferred = self.addresses();
                    if preferred.first() != addresses.first() {
                        if let Some(first) = preferred.first() {
                            if let Err(e) = client.switch_to(first.clone()) {
                                tracing::warn!(address = %first, error = %e, "cannot move to the GTM asked for");
                            }
                        }
                    }
                    let address = client.upstream().unwrap_or_default();
                    if warned {
                        tracing::info!(%address, "GTM reachable; serving");
                    } else {
                        tracing::info!(%address, "connected to the GTM");
                    }
                    let _ = jobs.send(Job::UpstreamReady(client));
                    return;
                }
                Err(e) if !warned => {
                    tracing::warn!(
                        gtm = %addresses.join(","),
                        error = %e,
                        "no GTM reachable; requests wait for one and the proxy keeps trying"
                    );
                    warned = true;
                }
                Err(e) => tracing::debug!(error = %e, "GTM still not reachable"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.wait() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}

/// One submitted upstream call, labelled with what the router must do with its answers.
pub(crate) struct InFlight<K> {
    label: Option<K>,
    answers: oneshot::Receiver<Answers>,
}

impl<K> InFlight<K> {
    pub(crate) fn new(label: K, answers: oneshot::Receiver<Answers>) -> Self {
        InFlight {
            label: Some(label),
            answers,
        }
    }
}

impl<K: Unpin> Future for InFlight<K> {
    type Output = (K, Result<Answers, GtmError>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match Pin::new(&mut this.answers).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(answers) => {
                let label = this
                    .label
                    .take()
                    .expect("an InFlight call is not polled after it completed");
                let answers = answers.map_err(|_| {
                    GtmError::new(ErrorCode::Io, "the GTM client connection task has stopped")
                });
                Poll::Ready((label, answers))
            }
        }
    }
}

/// What the proxy knows of itself, completed with the GTM's counters when the GTM answers
/// within [`STATUS_TIMEOUT`]. `upstream` is the GTM address in use, `None` while none is.
pub(crate) async fn proxy_status(
    name: String,
    clients: u64,
    upstream: Option<GtmClient>,
) -> ServerStatus {
    let mut status = ServerStatus {
        name,
        role: Role::Proxy,
        next_gxid: Gxid(0),
        running: 0,
        global_xmin: Gxid(0),
        prepared: 0,
        sequences: 0,
        clients,
        standby: None,
        upstream: None,
    };
    let Some(client) = upstream else {
        return status;
    };
    match tokio::time::timeout(STATUS_TIMEOUT, client.server_status()).await {
        Ok(Ok(gtm)) => {
            status.next_gxid = gtm.next_gxid;
            status.running = gtm.running;
            status.global_xmin = gtm.global_xmin;
            status.prepared = gtm.prepared;
            status.sequences = gtm.sequences;
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "GTM status not available"),
        Err(_) => tracing::debug!("GTM status not available in time"),
    }
    status.upstream = client.upstream();
    status
}
