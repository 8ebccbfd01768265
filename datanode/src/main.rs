//! `rxc-datanode`: stores shards in RocksDB and serves SQL over the PostgreSQL wire protocol.

use clap::Parser;
use rxc_common::auth::AuthConfig;
use rxc_common::config::{self, LogFormat, ServerArgs};
use rxc_common::datadir::DataDir;
use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::net::{run_main, Runtime};
use rxc_common::shutdown::Shutdown;
use rxc_datanode::auth::{Authenticator, Credentials};
use rxc_datanode::server::Frontend;
use rxc_datanode::sql::session::{Node, Session};
use rxc_datanode::storage::mvcc::Mvcc;
use rxc_datanode::storage::rocksdb::{RocksEngine, RocksOptions};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc serves the datanode's many short-lived allocations (rows, keys, plan nodes) with
/// less CPU than glibc's malloc under concurrent sessions.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Settings of `rxc-datanode` (the `--config` TOML file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DatanodeConfig {
    /// This datanode's name (`dn1`, ...).
    node_name: String,
    /// `HOST:PORT` to listen on for PostgreSQL clients.
    listen: String,
    /// Data directory; created on first start.
    data_dir: PathBuf,
    /// GTM or GTM proxy addresses (`HOST:PORT`), in failover order.
    gtm: Vec<String>,
    /// Log format: `text` or `json`.
    log_format: LogFormat,
    /// RocksDB block cache, in MiB.
    block_cache_mb: usize,
    /// How often garbage collection removes versions no snapshot can see, in milliseconds.
    gc_interval_ms: u64,
    /// Client authentication: rules (first match wins) and login roles.
    auth: AuthConfig,
}

impl Default for DatanodeConfig {
    fn default() -> Self {
        DatanodeConfig {
            node_name: "dn1".into(),
            listen: format!("127.0.0.1:{}", config::DEFAULT_DATANODE_PORT),
            data_dir: PathBuf::from("datanode-data"),
            gtm: vec![format!("127.0.0.1:{}", config::DEFAULT_GTM_PROXY_PORT)],
            log_format: LogFormat::Text,
            block_cache_mb: 256,
            gc_interval_ms: 1000,
            auth: AuthConfig::default(),
        }
    }
}

rxc_common::impl_server_config!(DatanodeConfig);

/// rxc datanode.
#[derive(Parser, Debug)]
#[command(name = "rxc-datanode", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_main("rxc-datanode", Runtime::MultiThread, run(cli.server))
}

async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config: DatanodeConfig = config::load(&args)?;
    if config.gtm.is_empty() {
        anyhow::bail!("gtm: at least one GTM address is needed");
    }
    rxc_common::telemetry::init_tracing(config.log_format);
    let credentials = Credentials::new(config.auth.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let data_dir = DataDir::open(&config.data_dir, &config.node_name, "datanode")?;
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
    let frontend = Frontend::<Session>::new(node.clone(), Authenticator::new(credentials));
    let listener = rxc_common::net::bind_listener(&config.listen).await?;
    tracing::info!(
        name = %config.node_name,
        listen = %listener.local_addr()?,
        data_dir = %data_dir.path().display(),
        gtm = %config.gtm.join(","),
        "rxc-datanode started"
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
    tracing::info!("rxc-datanode stopped");
    Ok(())
}
