//! `rxc-datanode`: stores shards in RocksDB and serves SQL over the PostgreSQL wire protocol.

use clap::Parser;
use rxc_common::auth::AuthConfig;
use rxc_common::config::{self, LogFormat, ServerArgs};
use rxc_common::net::{run_main, Runtime};
use rxc_datanode::launch::{self, Launch};
use rxc_datanode::sql::session::Session;
use serde::Deserialize;
use std::path::PathBuf;
use std::process::ExitCode;

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
    let launch = Launch {
        program: "rxc-datanode",
        kind: "datanode",
        node_name: &config.node_name,
        listen: &config.listen,
        data_dir: &config.data_dir,
        gtm: &config.gtm,
        log_format: config.log_format,
        block_cache_mb: config.block_cache_mb,
        gc_interval_ms: config.gc_interval_ms,
        auth: &config.auth,
    };
    launch::run::<Session>(launch, Ok).await
}
