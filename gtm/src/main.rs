//! `rxc-gtm`: runs a GTM (active, or standby with `--standby-of`), or, as `rxc-gtm status` and
//! `rxc-gtm promote`, talks to one as an administrator.

use clap::{Parser, Subcommand};
use rxc_common::config::{self, LogFormat, ServerArgs};
use rxc_common::datadir::DataDir;
use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::gtm::proto::{ErrorCode, Request, Response};
use rxc_common::net::{run_main, Runtime};
use rxc_common::shutdown::Shutdown;
use rxc_gtm::server::{GtmServer, ServerOptions};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Settings of `rxc-gtm` (the `--config` TOML file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct GtmConfig {
    /// This GTM's name.
    node_name: String,
    /// `HOST:PORT` to listen on.
    listen: String,
    /// Data directory (holds `gtm.control`).
    data_dir: PathBuf,
    /// Log format: `text` or `json`.
    log_format: LogFormat,
    /// `HOST:PORT` of the active GTM to follow as its standby.
    standby_of: Option<String>,
    /// How long clients that own sessions may take to reconnect after a promotion, in ms.
    promote_grace_ms: u64,
    /// How long the active waits for its standby's acknowledgement before going on alone, in ms.
    standby_ack_timeout_ms: u64,
}

impl Default for GtmConfig {
    fn default() -> Self {
        GtmConfig {
            node_name: "gtm".into(),
            listen: format!("127.0.0.1:{}", config::DEFAULT_GTM_PORT),
            data_dir: PathBuf::from("gtm-data"),
            log_format: LogFormat::Text,
            standby_of: None,
            promote_grace_ms: 10_000,
            standby_ack_timeout_ms: 5_000,
        }
    }
}

rxc_common::impl_server_config!(GtmConfig, without_gtm);

/// rxc global transaction manager.
#[derive(Parser, Debug)]
#[command(name = "rxc-gtm", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Admin>,
    #[command(flatten)]
    server: ServerArgs,
    /// Run as the synchronous standby of the active GTM at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    standby_of: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Admin {
    /// Print a GTM's role, next GXID, running transactions and standby state.
    Status {
        /// The GTM to ask.
        #[arg(long, value_name = "HOST:PORT")]
        gtm: String,
    },
    /// Make a standby GTM active.
    Promote {
        /// The standby to promote.
        #[arg(long, value_name = "HOST:PORT")]
        gtm: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_main("rxc-gtm", Runtime::MultiThread, async move {
        match cli.command {
            Some(admin) => run_admin(admin).await,
            None => run_server(cli.server, cli.standby_of).await,
        }
    })
}

async fn run_server(args: ServerArgs, standby_of: Option<String>) -> anyhow::Result<()> {
    let mut config: GtmConfig = config::load(&args)?;
    if standby_of.is_some() {
        config.standby_of = standby_of;
    }
    if let Some(active) = &config.standby_of {
        config::split_host_port(active)
            .map_err(|e| anyhow::anyhow!("invalid --standby-of `{active}`: {e}"))?;
    }
    rxc_common::telemetry::init_tracing(config.log_format);
    let data_dir = DataDir::open(&config.data_dir, &config.node_name, "gtm")?;
    let listener = rxc_common::net::bind_listener(&config.listen).await?;
    let options = ServerOptions {
        name: config.node_name.clone(),
        data_dir: data_dir.path().to_path_buf(),
        standby_of: config.standby_of.clone(),
        promote_grace: Duration::from_millis(config.promote_grace_ms),
        standby_ack_timeout: Duration::from_millis(config.standby_ack_timeout_ms),
    };
    let server = GtmServer::new(listener, options)?;
    tracing::info!(
        name = %config.node_name,
        listen = %server.local_addr()?,
        data_dir = %data_dir.path().display(),
        role = if config.standby_of.is_some() { "standby" } else { "active" },
        "rxc-gtm started"
    );
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signal();
    server.run(shutdown).await
}

async fn run_admin(admin: Admin) -> anyhow::Result<()> {
    let (address, request) = match admin {
        Admin::Status { gtm } => (gtm, Request::ServerStatus),
        Admin::Promote { gtm } => (gtm, Request::Promote),
    };
    let client = GtmClient::connect_admin(&address, ClientOptions::new("rxc-gtm admin")).await?;
    // A standby refuses promotion while its active still streams to it; right after the active
    // died the standby may not have noticed yet, so ask again for a few seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let answer = loop {
        match client.call(request.clone()).await {
            Err(e) if e.code == ErrorCode::ActiveStillRunning => {
                if std::time::Instant::now() > deadline {
                    break Err(e);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => break other,
        }
    };
    match answer? {
        Response::ServerStatus(s) => {
            println!("name:        {}", s.name);
            println!("role:        {}", s.role);
            println!("next_gxid:   {}", s.next_gxid);
            println!("running:     {}", s.running);
            println!("global_xmin: {}", s.global_xmin);
            println!("prepared:    {}", s.prepared);
            println!("sequences:   {}", s.sequences);
            println!("clients:     {}", s.clients);
            println!("standby:     {}", s.standby.as_deref().unwrap_or("none"));
            if let Some(upstream) = s.upstream {
                println!("upstream:    {upstream}");
            }
        }
        Response::Ok => println!("promoted: {address} is now the active GTM"),
        other => anyhow::bail!("unexpected answer: {other:?}"),
    }
    Ok(())
}
