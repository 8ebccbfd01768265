//! Starting a server built on a datanode [`Node`]: the datanode itself, and the coordinator
//! (whose own storage is a node too). Both open their data directory and RocksDB, recover,
//! connect to the GTM, collect garbage in the background and serve clients on session threads;
//! they differ in what their sessions are ([`Backend`]) and in what those share.

use crate::auth::{Authenticator, Credentials};
use crate::server::{Backend, Frontend};
use crate::sql::roles::Roles;
use crate::sql::session::Node;
use crate::storage::mvcc::Mvcc;
use crate::storage::rocksdb::{RocksEngine, RocksOptions};
use rxc_common::auth::AuthConfig;
use rxc_common::config::LogFormat;
use rxc_common::datadir::DataDir;
use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::shutdown::Shutdown;
use std::path::Path;
use std::sync::Arc;

/// What a server needs from its configuration to start.
#[derive(Debug)]
pub struct Launch<'a> {
    /// The program (`rxc-datanode`), for log lines.
    pub program: &'static str,
    /// The data directory's kind (`datanode`, `coordinator`).
    pub kind: &'static str,
    pub node_name: &'a str,
    pub listen: &'a str,
    pub data_dir: &'a Path,
    pub gtm: &'a [String],
    pub log_format: LogFormat,
    pub block_cache_mb: usize,
    pub gc_interval_ms: u64,
    pub auth: &'a AuthConfig,
}

/// Starts the server `launch` describes and serves until SIGINT/SIGTERM; `shared` makes
/// what its sessions share from its node.
pub async fn run<S: Backend>(
    launch: Launch<'_>,
    shared: impl FnOnce(Arc<Node>) -> anyhow::Result<Arc<S::Shared>>,
) -> anyhow::Result<()> {
    if launch.gtm.is_empty() {
        anyhow::bail!("gtm: at least one GTM address is needed");
    }
    rxc_common::telemetry::init_tracing(launch.log_format);
    let configured: Vec<String> = launch.auth.users.iter().map(|u| u.name.clone()).collect();
    let roles = Arc::new(Roles::new(&configured));
    let credentials =
        Credentials::new(launch.auth.clone(), roles.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let data_dir = DataDir::open(launch.data_dir, launch.node_name, launch.kind)?;
    let options = RocksOptions {
        block_cache_mb: launch.block_cache_mb,
        ..RocksOptions::default()
    };
    let engine = RocksEngine::open(&data_dir.file("rocksdb"), &options)?;
    let mvcc = Arc::new(Mvcc::new(Arc::new(engine)));
    let aborted = mvcc.recover()?;
    if !aborted.is_empty() {
        tracing::info!(
            count = aborted.len(),
            "recovery aborted unfinished transactions"
        );
    }
    let gtm_options = ClientOptions::new(launch.node_name);
    let gtm = GtmClient::connect(launch.gtm.to_vec(), gtm_options.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the GTM at {}: {e}", launch.gtm.join(",")))?;
    let node = Arc::new(
        Node::new(launch.node_name.to_string(), mvcc, gtm, roles)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_session_gtm(launch.gtm.to_vec(), gtm_options),
    );
    let frontend = Frontend::<S>::new(shared(node.clone())?, Authenticator::new(credentials));
    let listener = rxc_common::net::bind_listener(launch.listen).await?;
    tracing::info!(
        name = %launch.node_name,
        listen = %listener.local_addr()?,
        data_dir = %data_dir.path().display(),
        gtm = %launch.gtm.join(","),
        "{} started", launch.program
    );
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signal();
    tokio::spawn(crate::gc::run(
        node.mvcc.clone(),
        node.gtm.clone(),
        std::time::Duration::from_millis(launch.gc_interval_ms.max(10)),
        shutdown.clone(),
    ));
    crate::server::serve_clients(listener, frontend, shutdown).await;
    tracing::info!("{} stopped", launch.program);
    Ok(())
}
