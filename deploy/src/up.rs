//! `rxc up`: a complete local cluster in the foreground.
//!
//! The first `rxc up --dir DIR` writes `DIR/cluster.toml` — a GTM, one GTM proxy, datanodes
//! `dn1` (primary) and `dn2`, coordinators `coord1` and `coord2`, on free loopback ports,
//! data directories relative to the file — and initialises that cluster (`rxc init`). A
//! later `rxc up --dir DIR` reads the file and starts the same cluster on its data, on the
//! same ports. Either way it prints a banner with one `postgres://` URL per coordinator and
//! waits; Ctrl-C or SIGTERM (or `--stop-after`) stops every component (fast: SIGINT, wait) and
//! exits 0. If a component exits by itself, the others are stopped and `rxc up` exits 1.
//!
//! The components are ordinary detached components with pid files, so `rxc status -c
//! DIR/cluster.toml` works from another terminal, and `rxc stop -c DIR/cluster.toml` cleans
//! up if `rxc up` itself was killed.

use crate::cluster::{Cluster, ClusterFile, CoordinatorSpec, DatanodeSpec, Kind, ServerSpec};
use crate::control::{self, Started, StopMode};
use crate::process;
use anyhow::{bail, Context, Result};
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// How often `rxc up` looks whether a component exited.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);

/// What `rxc up` runs.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The directory of the cluster file, the data and the logs.
    pub dir: PathBuf,
    /// Stop by itself after this long.
    pub stop_after: Option<Duration>,
}

/// Why `rxc up` ends.
enum End {
    /// Ctrl-C, SIGTERM or `--stop-after`.
    Asked(&'static str),
    /// A component exited by itself.
    Exited(String, std::process::ExitStatus),
}

/// Runs `rxc up`; returns the exit code once the cluster is stopped again.
pub async fn up(options: &UpOptions) -> Result<ExitCode> {
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("cannot create {}", options.dir.display()))?;
    let dir = std::path::absolute(&options.dir)
        .with_context(|| format!("cannot make {} absolute", options.dir.display()))?;
    let file = dir.join("cluster.toml");
    if !file.exists() {
        write_default_cluster(&file)?;
        println!("wrote {}", file.display());
    }
    let cluster = Cluster::load(&file)?;
    for c in &cluster.components {
        if let Some(pid) = process::running_pid(c)? {
            bail!(
                "the cluster of {} is running already ({} {} has pid {pid}): see `rxc status -c {0}`, stop it with `rxc stop -c {0}`",
                file.display(),
                c.kind,
                c.name
            );
        }
    }

    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let fresh = cluster.components.iter().all(|c| !c.data_dir.exists());
    let mut started = Vec::new();
    let startup = async {
        if fresh {
            control::init(&cluster, &mut started).await
        } else {
            control::start(&cluster, None, &mut started).await
        }
    };
    let outcome = tokio::select! {
        result = startup => result.map(|()| None),
        _ = terminate.recv() => Ok(Some("SIGTERM")),
        _ = interrupt.recv() => Ok(Some("SIGINT")),
    };
    match outcome {
        Err(e) => {
            stop_all(&cluster, &mut started).await;
            return Err(e);
        }
        Ok(Some(signal)) => {
            println!("rxc up: {signal} during startup, stopping");
            stop_all(&cluster, &mut started).await;
            return Ok(ExitCode::SUCCESS);
        }
        Ok(None) => {}
    }
    let shown = {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(banner(&cluster, &dir).as_bytes())
            .and_then(|()| stdout.flush())
    };
    if let Err(e) = shown {
        stop_all(&cluster, &mut started).await;
        return Err(e).context("cannot print the banner");
    }

    let stop_after = async {
        match options.stop_after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    let end = tokio::select! {
        _ = terminate.recv() => End::Asked("SIGTERM"),
        _ = interrupt.recv() => End::Asked("SIGINT"),
        _ = stop_after => End::Asked("--stop-after"),
        (name, status) = first_exit(&mut started) => End::Exited(name, status),
    };
    let code = match end {
        End::Asked(why) => {
            println!("rxc up: {why}, stopping the cluster");
            ExitCode::SUCCESS
        }
        End::Exited(name, status) => {
            let tail = cluster.component(&name).map_or(String::new(), |c| {
                format!(
                    " The end of its log {}:\n{}",
                    c.log_file.display(),
                    process::log_tail(&c.log_file, 15)
                )
            });
            eprintln!("rxc up: {name} exited by itself ({status}); stopping the cluster.{tail}");
            ExitCode::FAILURE
        }
    };
    stop_all(&cluster, &mut started).await;
    println!("rxc up: stopped; data and logs are in {}", dir.display());
    Ok(code)
}

/// Waits until one of the started processes exits; returns its name and status.
async fn first_exit(started: &mut [Started]) -> (String, std::process::ExitStatus) {
    loop {
        for s in started.iter_mut() {
            // An error here says nothing about the process: look again next round.
            if let Ok(Some(status)) = s.child.try_wait() {
                return (s.name.clone(), status);
            }
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
}

/// Stops every component (reporting, not returning, a failure: this is the way out) and
/// reaps the processes this run started.
async fn stop_all(cluster: &Cluster, started: &mut [Started]) {
    if let Err(e) = control::stop(cluster, None, StopMode::Fast).await {
        eprintln!("rxc up: {e:#}");
    }
    for s in started.iter_mut() {
        // Gone already (stop waited for that): this only collects its exit status.
        if let Err(e) = s.child.try_wait() {
            eprintln!("rxc up: cannot reap {}: {e}", s.name);
        }
    }
}

/// Writes the default cluster (see the module docs) to `path`, on free loopback ports.
fn write_default_cluster(path: &Path) -> Result<()> {
    // Hold every listener until all ports are picked, so the six are distinct.
    let listeners = (0..6)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot find free loopback ports")?;
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot find free loopback ports")?;
    drop(listeners);
    let host = "127.0.0.1".to_string();
    let server = |name: &str, port: u16| ServerSpec {
        name: name.into(),
        host: host.clone(),
        port,
        data_dir: name.into(),
        args: Vec::new(),
        config: None,
    };
    let datanode = |name: &str, port: u16, primary: bool| DatanodeSpec {
        name: name.into(),
        host: host.clone(),
        port,
        data_dir: name.into(),
        proxy: None,
        primary,
        args: Vec::new(),
        config: None,
    };
    let coordinator = |name: &str, port: u16| CoordinatorSpec {
        name: name.into(),
        host: host.clone(),
        port,
        data_dir: name.into(),
        proxy: None,
        preferred: Vec::new(),
        args: Vec::new(),
        config: None,
    };
    let file = ClusterFile {
        bin_dir: None,
        log_dir: None,
        gtm: server("gtm", ports[0]),
        gtm_standby: None,
        proxies: vec![server("gtm_proxy", ports[1])],
        datanodes: vec![
            datanode("dn1", ports[2], true),
            datanode("dn2", ports[3], false),
        ],
        coordinators: vec![
            coordinator("coord1", ports[4]),
            coordinator("coord2", ports[5]),
        ],
    };
    let text = format!(
        "# The cluster `rxc up` runs from this directory: `rxc up --dir DIR` starts it again,\n\
         # `rxc status -c DIR/cluster.toml` shows it. Data directories are relative to this\n\
         # file; each component logs to DATA_DIR.log. See deploy/cluster.example.toml.\n\n{}",
        toml::to_string(&file).context("cannot write the cluster file")?
    );
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// What `rxc up` prints once the cluster runs.
fn banner(cluster: &Cluster, dir: &Path) -> String {
    let rxc = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "rxc".into());
    let file = cluster.file.display();
    let labels: Vec<String> = cluster
        .components
        .iter()
        .map(|c| format!("{} {}", c.kind, c.name))
        .collect();
    let width = labels.iter().map(String::len).max().unwrap_or(0);
    let mut out = format!("\nrxc is up (data and logs in {}):\n", dir.display());
    for (c, label) in cluster.components.iter().zip(&labels) {
        let note = match c.kind {
            Kind::Datanode if c.primary => "  (primary)",
            Kind::Proxy => "  (the nodes reach the GTM here)",
            _ => "",
        };
        out.push_str(&format!("  {label:width$}  {}{note}\n", c.address()));
    }
    out.push_str(
        "\nConnect to a coordinator (one database; tables hash-distributed over the datanodes):\n",
    );
    for c in cluster.coordinators() {
        out.push_str(&format!("  postgres://postgres@{}/postgres\n", c.address()));
    }
    out.push_str(&format!(
        "\nFrom another terminal:\n  {rxc} status -c {file}\n  {rxc} psql -c {file} [COORDINATOR]\n\nCtrl-C stops the cluster.\n"
    ));
    out
}
