//! `rxc-coordinator`: the PostgreSQL endpoint of an rxc cluster — one database over many
//! datanodes.

use clap::Parser;
use rxc_common::auth::AuthConfig;
use rxc_common::config::{self, LogFormat, ServerArgs};
use rxc_common::datadir::DataDir;
use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::net::{run_main, Runtime};
use rxc_common::shutdown::Shutdown;
use rxc_coordinator::session::{Cluster, CoordSession};
use rxc_datanode::auth::{Authenticator, Credentials};
use rxc_datanode::server::Frontend;
use rxc_datanode::sql::session::Node;
use rxc_datanode::storage::mvcc::Mvcc;
use rxc_datanode::storage::rocksdb::{RocksEngine, RocksOptions};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc, as on the datanode: many short-lived allocations (rows, plans, shipped SQL).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Settings of `rxc-coordinator` (the `--config` TOML file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct CoordinatorConfig {
    /// This coordinator's name (`coord1`, ...).
    node_name: String,
    /// `HOST:PORT` to listen on for PostgreSQL clients.
    listen: String,
    /// Data directory; created on first start.
    data_dir: PathBuf,
    /// GTM or GTM proxy addresses (`HOST:PORT`), in failover order.
    gtm: Vec<String>,
    /// Log format: `text` or `json`.
    log_format: LogFormat,
    /// RocksDB block cache of the coordinator's catalog storage, in MiB.
    block_cache_mb: usize,
    /// How often garbage collection of the catalog storage runs, in milliseconds.
    gc_interval_ms: u64,
    /// Client authentication: rules (first match wins) and login roles.
    auth: AuthConfig,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            node_name: "coord1".into(),
            listen: format!("127.0.0.1:{}", config::DEFAULT_COORDINATOR_PORT),
            data_dir: PathBuf::from("coordinator-data"),
            gtm: vec![format!("127.0.0.1:{}", config::DEFAULT_GTM_PROXY_PORT)],
            log_format: LogFormat::Text,
            block_cache_mb: 64,
            gc_interval_ms: 1000,
            auth: AuthConfig::default(),
        }
    }
}

rxc_common::impl_server_config!(CoordinatorConfig);

/// rxc coordinator.
#[derive(Parser, Debug)]
#[command(name = "rxc-coordinator", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_main("rxc-coordinator", Runtime::MultiThread, run(cli.server))
}

async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config: CoordinatorConfig = config::load(&args)?;
    if config.gtm.is_empty() {
        anyhow::bail!("gtm: at least one GTM address is needed");
    }
    rxc_common::telemetry::init_tracing(config.log_format);
    let credentials = Credentials::new(config.auth.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let data_dir = DataDir::open(&config.data_dir, &config.node_name, "coordinator")?;
    let options = RocksOptions {
        block_cache_mb: config.block_cache_mb,
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
    let gtm = GtmClient::connect(config.gtm.clone(), ClientOptions::new(&config.node_name))
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the GTM at {}: {e}", config.gtm.join(",")))?;
    let node = Arc::new(
        Node::new(config.node_name.clone(), mvcc, gtm)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_session_gtm(config.gtm.clone(), ClientOptions::new(&config.node_name)),
    );
    let cluster = Arc::new(
        Cluster::new(config.node_name.clone(), node.clone()).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let frontend = Frontend::<CoordSession>::new(cluster, Authenticator::new(credentials));
    let listener = rxc_common::net::bind_listener(&config.listen).await?;
    tracing::info!(
        name = %config.node_name,
        listen = %listener.local_addr()?,
        data_dir = %data_dir.path().display(),
        gtm = %config.gtm.join(","),
        "rxc-coordinator started"
    );
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signal();
    tokio::spawn(rxc_datanode::gc::run(
        node.mvcc.clone(),
        node.gtm.clone(),
        std::time::Duration::from_millis(config.gc_interval_ms.max(10)),
        shutdown.clone(),
    ));
    rxc_datanode::server::serve_clients(listener, frontend, shutdown).await;
    tracing::info!("rxc-coordinator stopped");
    Ok(())
}
