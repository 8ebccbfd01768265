//! `rxc-coordinator`: the PostgreSQL endpoint of an rxc cluster — one database over many
//! datanodes.

use clap::Parser;
use rxc_common::auth::AuthConfig;
use rxc_common::config::{self, LogFormat, ServerArgs};
use rxc_common::net::{run_main, Runtime};
use rxc_coordinator::deadlock;
use rxc_coordinator::resolver::{self, ResolverConfig};
use rxc_coordinator::session::{Cluster, CoordSession, DefaultDistribution};
use rxc_datanode::launch::{self, Launch};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

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
    /// How CREATE TABLE without DISTRIBUTE BY distributes: `hash` (Postgres-XC's default:
    /// the primary key, else the first column that can be a key), `replication` or
    /// `roundrobin`.
    default_distribution: DefaultDistribution,
    /// Pause between rounds of the in-doubt resolver, in milliseconds.
    resolver_interval_ms: u64,
    /// Age (ms) after which another coordinator's unfinished two-phase commit is taken for
    /// orphaned and finished by this coordinator's resolver.
    in_doubt_after_ms: u64,
    /// Pause between rounds of the detector of deadlocks across datanodes, in milliseconds
    /// (a deadlock is broken after two rounds that saw it).
    deadlock_check_ms: u64,
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
            default_distribution: DefaultDistribution::Hash,
            resolver_interval_ms: 2000,
            in_doubt_after_ms: 10_000,
            deadlock_check_ms: 1000,
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
    let launch = Launch {
        program: "rxc-coordinator",
        kind: "coordinator",
        node_name: &config.node_name,
        listen: &config.listen,
        data_dir: &config.data_dir,
        gtm: &config.gtm,
        log_format: config.log_format,
        block_cache_mb: config.block_cache_mb,
        gc_interval_ms: config.gc_interval_ms,
        auth: &config.auth,
    };
    launch::run::<CoordSession>(launch, |node| {
        let cluster = Cluster::new(config.node_name.clone(), node, config.default_distribution)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let cluster = Arc::new(cluster);
        tokio::spawn(resolver::run(
            cluster.clone(),
            ResolverConfig {
                interval: Duration::from_millis(config.resolver_interval_ms.max(10)),
                in_doubt_after: Duration::from_millis(config.in_doubt_after_ms),
            },
        ));
        tokio::spawn(deadlock::run(
            cluster.clone(),
            Duration::from_millis(config.deadlock_check_ms.max(10)),
        ));
        Ok(cluster)
    })
    .await
}
