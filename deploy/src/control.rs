//! `rxc init`, `start`, `stop` and `restart`: the components of a cluster in order.
//!
//! Start order is GTM, standby, proxies, datanodes, coordinators; the components of one
//! stage start together, and the next stage begins once each of them accepts connections
//! at its port (60 s at most). Stop runs the same stages backwards.
//!
//! - `init` refuses to run over any existing, non-empty data directory (all are checked
//!   before anything starts), creates them, starts everything and registers the nodes on
//!   every coordinator. If a component fails to start, the ones `init` started are stopped
//!   again and the data directories are left for inspection.
//! - `start` leaves a running component alone, refuses a port another process holds, then
//!   brings the node registrations of every running coordinator up to date (a node whose
//!   port changed in the cluster file is `ALTER NODE`d). If a stage fails, the components
//!   started before it keep running. It refuses to start the GTM while the standby runs as
//!   the active GTM (after `rxc-gtm promote`): the cluster would have two.
//! - `stop` stops coordinators first and the GTM last, waiting up to 60 s for each process
//!   to be gone. As `pg_ctl stop`: `--mode fast` (the default) sends SIGINT (a server ends its
//!   sessions, aborting their open transactions, and exits); `--mode smart` sends SIGTERM (a
//!   server refuses new connections and exits once its clients have disconnected);
//!   `--mode immediate` sends SIGKILL.

use crate::cluster::{Cluster, Component, Kind};
use crate::process;
use crate::register;
use crate::status;
use anyhow::{bail, Context, Result};
use rustix::process::Signal;
use rxc_common::gtm::proto::Role;
use std::process::Child;
use std::time::Duration;

/// How long a component may take to accept connections after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a component may take to exit after SIGTERM or SIGINT.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a process may take to be gone after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// How `stop` ends a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StopMode {
    /// SIGTERM: no new connections; the server exits once its clients have disconnected.
    Smart,
    /// SIGINT: the server ends its sessions (open transactions abort) and exits.
    Fast,
    /// SIGKILL: no shutdown at all (committed work is durable; running transactions abort).
    Immediate,
}

/// A component this run of `rxc` started, with its process (to reap it, or just drop).
#[derive(Debug)]
pub struct Started {
    /// The component's name.
    pub name: String,
    /// Its process.
    pub child: Child,
}

/// Refuses components on other hosts: only local ones can be run for now.
pub fn refuse_remote(components: &[&Component]) -> Result<()> {
    let remote: Vec<String> = components
        .iter()
        .filter(|c| !c.is_local())
        .map(|c| format!("{} {} on {}", c.kind, c.name, c.host))
        .collect();
    if !remote.is_empty() {
        bail!(
            "remote hosts (ssh) are not supported yet: {}",
            remote.join(", ")
        );
    }
    Ok(())
}

/// `rxc init`: new data directories, every component started, every node registered.
pub async fn init(cluster: &Cluster, started: &mut Vec<Started>) -> Result<()> {
    let all: Vec<&Component> = cluster.components.iter().collect();
    refuse_remote(&all)?;
    let mut occupied = Vec::new();
    for c in &all {
        match std::fs::read_dir(&c.data_dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    occupied.push(format!(
                        "{} {}: data directory {} exists and is not empty",
                        c.kind,
                        c.name,
                        c.data_dir.display()
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => occupied.push(format!(
                "{} {}: data directory {}: {e}",
                c.kind,
                c.name,
                c.data_dir.display()
            )),
        }
    }
    if !occupied.is_empty() {
        bail!(
            "init refuses to overwrite existing data:\n  {}\n(start an initialised cluster with `rxc start`; remove the directories to initialise anew)",
            occupied.join("\n  ")
        );
    }
    for c in &all {
        check_can_start(cluster, c).await?;
    }
    for c in &all {
        std::fs::create_dir_all(&c.data_dir).with_context(|| {
            format!(
                "{} {}: cannot create data directory {}",
                c.kind,
                c.name,
                c.data_dir.display()
            )
        })?;
    }
    let first_new = started.len();
    if let Err(error) = start(cluster, None, started).await {
        let names: Vec<String> = started[first_new..]
            .iter()
            .map(|s| s.name.clone())
            .collect();
        for name in names.iter().rev() {
            if let Err(e) = stop(cluster, Some(name), StopMode::Fast).await {
                eprintln!("rxc: {e:#}");
            }
        }
        return Err(error.context(
            "init failed; the components it started are stopped again; the data directories are left for inspection: remove them before running init again",
        ));
    }
    Ok(())
}

/// `rxc start [NAME]`: starts the named component, or every one, in order, then brings the
/// node registrations of the running coordinators up to date. The processes it starts are
/// appended to `started`.
pub async fn start(
    cluster: &Cluster,
    only: Option<&str>,
    started: &mut Vec<Started>,
) -> Result<()> {
    let selected = cluster.select(only)?;
    refuse_remote(&selected)?;
    let mut to_start = Vec::new();
    for c in &selected {
        match process::running_pid(c)? {
            Some(pid) => println!("{} {} is running already (pid {pid})", c.kind, c.name),
            None => to_start.push(*c),
        }
    }
    for c in &to_start {
        if !c.data_dir.is_dir() {
            bail!(
                "{} {}: data directory {} does not exist: run `rxc init -c {}` first",
                c.kind,
                c.name,
                c.data_dir.display(),
                cluster.file.display()
            );
        }
        check_can_start(cluster, c).await?;
        if c.kind == Kind::Gtm {
            refuse_second_active_gtm(cluster, c).await?;
        }
    }
    for kind in Kind::ALL {
        let first_of_stage = started.len();
        for c in to_start.iter().filter(|c| c.kind == kind) {
            let child = launch(cluster, c)?;
            started.push(Started {
                name: c.name.clone(),
                child,
            });
        }
        for s in &mut started[first_of_stage..] {
            let c = cluster.component(&s.name)?;
            process::wait_ready(c, &mut s.child, START_TIMEOUT).await?;
            println!(
                "started {} {} at {} (pid {}, log {})",
                c.kind,
                c.name,
                c.address(),
                s.child.id(),
                c.log_file.display()
            );
        }
    }
    register_all(cluster).await
}

/// What must hold before `c` (not running) is started: its binary exists, and nothing else
/// holds its port.
async fn check_can_start(cluster: &Cluster, c: &Component) -> Result<()> {
    process::check_binary(&cluster.binary(c.kind))?;
    if process::port_open(&c.host, c.port).await {
        bail!(
            "{} {}: {} already accepts connections, but {} is not running (no live process in {}): another process holds the port",
            c.kind,
            c.name,
            c.address(),
            c.name,
            c.pid_file().display()
        );
    }
    Ok(())
}

/// Refuses to start `gtm` while its standby runs as the active GTM (it was promoted): the
/// cluster would have two.
async fn refuse_second_active_gtm(cluster: &Cluster, gtm: &Component) -> Result<()> {
    for standby in cluster.of_kind(Kind::GtmStandby) {
        if process::running_pid(standby)?.is_none() {
            continue;
        }
        if let Some(status) = status::server_status(standby).await {
            if status.role == Role::Active {
                bail!(
                    "gtm standby {} at {} is the active GTM now (promoted): starting {} as active too would give the cluster two GTMs; make the promoted one the [gtm] of {} first",
                    standby.name,
                    standby.address(),
                    gtm.name,
                    cluster.file.display()
                );
            }
        }
    }
    Ok(())
}

/// Writes `c`'s config file (or removes a stale one) and starts its process.
fn launch(cluster: &Cluster, c: &Component) -> Result<Child> {
    let config_file = c.config_file();
    match &c.config {
        Some(table) => {
            let text = toml::to_string(table)
                .with_context(|| format!("{} {}: cannot write its config", c.kind, c.name))?;
            std::fs::write(&config_file, text)
                .with_context(|| format!("cannot write {}", config_file.display()))?;
        }
        None => remove_if_present(&config_file)?,
    }
    process::spawn(c, &cluster.binary(c.kind), &c.command_args())
        .with_context(|| format!("{} {}", c.kind, c.name))
}

fn remove_if_present(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Syncs the node registrations of every running coordinator with the cluster file.
async fn register_all(cluster: &Cluster) -> Result<()> {
    for coordinator in cluster.coordinators() {
        if process::running_pid(coordinator)?.is_none() {
            continue;
        }
        let plan = register::sync(cluster, coordinator).await?;
        for statement in &plan.statements {
            println!("{}: {statement}", coordinator.name);
        }
        if !plan.statements.is_empty() {
            println!("{}: SELECT pgxc_pool_reload()", coordinator.name);
        }
        if !plan.unknown.is_empty() {
            println!(
                "{}: also has {} registered, which the cluster file does not name (left as is)",
                coordinator.name,
                plan.unknown.join(", ")
            );
        }
    }
    Ok(())
}

/// `rxc stop [NAME]`: stops the named component, or every one in reverse start order, and
/// waits until each process is gone.
pub async fn stop(cluster: &Cluster, only: Option<&str>, mode: StopMode) -> Result<()> {
    let selected = cluster.select(only)?;
    refuse_remote(&selected)?;
    let (signal, timeout) = match mode {
        StopMode::Smart => (Signal::TERM, STOP_TIMEOUT),
        StopMode::Fast => (Signal::INT, STOP_TIMEOUT),
        StopMode::Immediate => (Signal::KILL, KILL_TIMEOUT),
    };
    let mut failures = Vec::new();
    for kind in Kind::ALL.into_iter().rev() {
        let mut signalled = Vec::new();
        for c in selected.iter().filter(|c| c.kind == kind) {
            match process::running_pid(c)? {
                Some(pid) => {
                    process::signal(pid, signal)
                        .with_context(|| format!("{} {}", c.kind, c.name))?;
                    signalled.push((*c, pid));
                }
                None => {
                    remove_if_present(&c.pid_file())?;
                    println!("{} {} is not running", c.kind, c.name);
                }
            }
        }
        for (c, pid) in signalled {
            match process::wait_gone(c, pid, timeout).await {
                Ok(()) => {
                    remove_if_present(&c.pid_file())?;
                    println!("stopped {} {} (pid {pid})", c.kind, c.name);
                }
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
    }
    if !failures.is_empty() {
        bail!(
            "{}\n(`rxc stop --mode immediate` kills them)",
            failures.join("\n")
        );
    }
    Ok(())
}

/// `rxc restart [NAME]`: stop, then start.
pub async fn restart(
    cluster: &Cluster,
    only: Option<&str>,
    mode: StopMode,
    started: &mut Vec<Started>,
) -> Result<()> {
    stop(cluster, only, mode).await?;
    start(cluster, only, started).await
}
