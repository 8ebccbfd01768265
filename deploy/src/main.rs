//! `rxc`: cluster control for rxc. See the library docs (`deploy/src/lib.rs`) for how it
//! works and `deploy/cluster.example.toml` for the cluster file.
//!
//! Exit codes: 0 on success; 1 on an error (one line `rxc: ...` on stderr, or the list of
//! the cluster file's mistakes); `rxc status` exits 3 when a component it shows is not
//! running (as `pg_ctl status` does).

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use rxc::cluster::{Cluster, Kind};
use rxc::control::{self, StopMode};
use rxc::status;
use rxc::up::{self, UpOptions};
use std::convert::Infallible;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `rxc status`'s exit code when a component is not running.
const EXIT_NOT_RUNNING: u8 = 3;

/// rxc cluster control: init, start, stop, status, restart, psql, up.
#[derive(Parser, Debug)]
#[command(name = "rxc", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the cluster file is.
#[derive(Args, Debug)]
struct ClusterArg {
    /// The cluster file, or a directory holding `cluster.toml`.
    #[arg(
        short = 'c',
        long = "cluster",
        value_name = "FILE",
        default_value = "cluster.toml"
    )]
    cluster: PathBuf,
}

impl ClusterArg {
    fn load(&self) -> Result<Cluster> {
        let path = if self.cluster.is_dir() {
            self.cluster.join("cluster.toml")
        } else {
            self.cluster.clone()
        };
        Cluster::load(&path)
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create every data directory (refusing non-empty ones), start every component and
    /// register the nodes on every coordinator.
    Init {
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Start every component, or the one named (a running one is left alone), and bring the
    /// coordinators' node registrations up to date.
    Start {
        #[command(flatten)]
        cluster: ClusterArg,
        /// Only this component.
        component: Option<String>,
    },
    /// Stop every component (coordinators first), or the one named.
    Stop {
        #[command(flatten)]
        cluster: ClusterArg,
        /// fast: SIGINT, sessions are ended; smart: SIGTERM, wait for the clients to
        /// disconnect; immediate: SIGKILL.
        #[arg(long, short = 'm', value_enum, default_value = "fast")]
        mode: StopMode,
        /// Only this component.
        component: Option<String>,
    },
    /// Stop, then start, every component or the one named.
    Restart {
        #[command(flatten)]
        cluster: ClusterArg,
        /// How to stop (see `rxc stop`).
        #[arg(long, short = 'm', value_enum, default_value = "fast")]
        mode: StopMode,
        /// Only this component.
        component: Option<String>,
    },
    /// Show each component's address, state, pid and role; exit 3 if one is not running.
    Status {
        #[command(flatten)]
        cluster: ClusterArg,
        /// Only this component.
        component: Option<String>,
    },
    /// Run psql on a coordinator (default: the first) as user postgres, database postgres.
    Psql {
        #[command(flatten)]
        cluster: ClusterArg,
        /// The coordinator.
        coordinator: Option<String>,
        /// Arguments for psql, after `--`.
        #[arg(last = true)]
        psql_args: Vec<OsString>,
    },
    /// Run a complete local cluster in the foreground (GTM, proxy, coord1, coord2, dn1, dn2 on
    /// free loopback ports); Ctrl-C stops it. Run again on the same directory to restart it.
    Up {
        /// Directory of the cluster file, the data and the logs.
        #[arg(long, value_name = "DIR", default_value = "rxc-cluster")]
        dir: PathBuf,
        /// Stop by itself after SECONDS.
        #[arg(long, value_name = "SECONDS")]
        stop_after: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rxc: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rxc: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<ExitCode> {
    let mut started = Vec::new();
    match command {
        Command::Init { cluster } => {
            let cluster = cluster.load()?;
            control::init(&cluster, &mut started).await?;
            println!(
                "cluster initialised and running; connect with `rxc psql -c {}`",
                cluster.file.display()
            );
        }
        Command::Start { cluster, component } => {
            control::start(&cluster.load()?, component.as_deref(), &mut started).await?
        }
        Command::Stop {
            cluster,
            mode,
            component,
        } => control::stop(&cluster.load()?, component.as_deref(), mode).await?,
        Command::Restart {
            cluster,
            mode,
            component,
        } => control::restart(&cluster.load()?, component.as_deref(), mode, &mut started).await?,
        Command::Status { cluster, component } => {
            let lines = status::collect(&cluster.load()?, component.as_deref()).await?;
            println!("{}", status::render(&lines));
            if lines.iter().any(|l| l.state != status::State::Running) {
                return Ok(ExitCode::from(EXIT_NOT_RUNNING));
            }
        }
        Command::Psql {
            cluster,
            coordinator,
            psql_args,
        } => match psql(&cluster.load()?, coordinator.as_deref(), &psql_args)? {},
        Command::Up { dir, stop_after } => {
            let options = UpOptions {
                dir,
                stop_after: stop_after.map(Duration::from_secs),
            };
            return up::up(&options).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Replaces this process with psql on `coordinator` (default: the first); returns only
/// when that fails.
fn psql(cluster: &Cluster, coordinator: Option<&str>, args: &[OsString]) -> Result<Infallible> {
    let target = match coordinator {
        Some(name) => {
            let c = cluster.component(name)?;
            if c.kind != Kind::Coordinator {
                bail!("{name} is a {}, not a coordinator", c.kind);
            }
            c
        }
        None => cluster
            .coordinators()
            .next()
            .context("the cluster has no coordinator")?,
    };
    let error = std::process::Command::new("psql")
        .args(["-h", &target.host, "-p", &target.port.to_string()])
        .args(["-U", "postgres", "-d", "postgres"])
        .args(args)
        .exec();
    Err(error).context(
        "cannot run psql (install the PostgreSQL client, e.g. apt-get install postgresql-client)",
    )
}
