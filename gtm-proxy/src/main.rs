//! `rxc-gtm-proxy`: runs a GTM proxy, or, as `rxc-gtm-proxy status` and
//! `rxc-gtm-proxy reconnect`, talks to one as an administrator.

use clap::{Parser, Subcommand};
use rxc_common::config::{self, LogFormat, ServerArgs};
use rxc_common::gtm::client::{ClientOptions, GtmClient};
use rxc_common::gtm::proto::{Request, Response};
use rxc_common::net::{run_main, Runtime};
use rxc_common::shutdown::Shutdown;
use rxc_gtm_proxy::{ProxyOptions, ProxyServer};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Settings of `rxc-gtm-proxy` (the `--config` TOML file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ProxyConfig {
    /// This proxy's name.
    node_name: String,
    /// `HOST:PORT` to listen on.
    listen: String,
    /// Data directory. The proxy keeps no durable state and never creates it; the setting
    /// exists because every server has it.
    data_dir: PathBuf,
    /// GTM addresses (`HOST:PORT`), in failover order.
    gtm: Vec<String>,
    /// Log format: `text` or `json`.
    log_format: LogFormat,
    /// How long the GTM keeps the proxy's sessions while the proxy reconnects, in ms.
    resume_grace_ms: u32,
    /// How long a forwarded request waits for the GTM's answer (across reconnections), in ms.
    request_timeout_ms: u64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            node_name: "gtm_proxy".into(),
            listen: format!("127.0.0.1:{}", config::DEFAULT_GTM_PROXY_PORT),
            data_dir: PathBuf::from("gtm-proxy-data"),
            gtm: vec![format!("127.0.0.1:{}", config::DEFAULT_GTM_PORT)],
            log_format: LogFormat::Text,
            resume_grace_ms: 10_000,
            request_timeout_ms: 30_000,
        }
    }
}

rxc_common::impl_server_config!(ProxyConfig);

impl ProxyConfig {
    fn check(&self) -> Result<(), String> {
        if self.gtm.is_empty() {
            return Err("gtm: at least one GTM address is needed".into());
        }
        if self.request_timeout_ms == 0 {
            return Err("request_timeout_ms must be greater than 0".into());
        }
        Ok(())
    }
}

/// rxc GTM proxy.
#[derive(Parser, Debug)]
#[command(
    name = "rxc-gtm-proxy",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Admin>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand, Debug)]
enum Admin {
    /// Print a proxy's GTM address and the GTM's counters.
    Status {
        /// The proxy to ask.
        #[arg(long, value_name = "HOST:PORT")]
        proxy: String,
    },
    /// Move a proxy to another GTM now (in-flight requests are resent there).
    Reconnect {
        /// The proxy.
        #[arg(long, value_name = "HOST:PORT")]
        proxy: String,
        /// The GTM to move to.
        #[arg(long, value_name = "HOST:PORT")]
        gtm: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread: the proxy's work is mostly socket calls in short turns, and handing tasks
    // between worker threads costs more than it gains (measured with rxc-gtm-bench).
    run_main("rxc-gtm-proxy", Runtime::CurrentThread, async move {
        match cli.command {
            Some(admin) => run_admin(admin).await,
            None => run_server(cli.server).await,
        }
    })
}

async fn run_server(args: ServerArgs) -> anyhow::Result<()> {
    let config: ProxyConfig = config::load(&args)?;
    config.check().map_err(|e| match &args.config {
        Some(path) => anyhow::anyhow!("config file {}: {e}", path.display()),
        None => anyhow::anyhow!("{e}"),
    })?;
    rxc_common::telemetry::init_tracing(config.log_format);
    let listener = rxc_common::net::bind_listener(&config.listen).await?;
    let options = ProxyOptions {
        name: config.node_name.clone(),
        gtm: config.gtm.clone(),
        resume_grace_ms: config.resume_grace_ms,
        request_timeout: Duration::from_millis(config.request_timeout_ms),
    };
    let server = ProxyServer::new(listener, options);
    tracing::info!(
        name = %config.node_name,
        listen = %server.local_addr()?,
        gtm = %config.gtm.join(","),
        "rxc-gtm-proxy started"
    );
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signal();
    server.run(shutdown).await
}

async fn run_admin(admin: Admin) -> anyhow::Result<()> {
    let (address, request) = match admin {
        Admin::Status { proxy } => (proxy, Request::ServerStatus),
        Admin::Reconnect { proxy, gtm } => (proxy, Request::Reconnect { address: gtm }),
    };
    let target = match &request {
        Request::Reconnect { address } => address.clone(),
        _ => String::new(),
    };
    let options = ClientOptions::new("rxc-gtm-proxy admin");
    let client = GtmClient::connect_admin(&address, options).await?;
    match client.call(request).await? {
        Response::ServerStatus(s) => {
            println!("name:        {}", s.name);
            println!("role:        {}", s.role);
            println!("upstream:    {}", s.upstream.as_deref().unwrap_or("none"));
            println!("clients:     {}", s.clients);
            println!("next_gxid:   {}", s.next_gxid);
            println!("running:     {}", s.running);
            println!("global_xmin: {}", s.global_xmin);
        }
        Response::Ok => println!("reconnecting: {address} moves to the GTM at {target}"),
        other => anyhow::bail!("unexpected answer: {other:?}"),
    }
    Ok(())
}
