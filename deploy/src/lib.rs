//! `rxc`, the cluster control tool (in the spirit of Postgres-XC's `pgxc_ctl`): it reads a
//! cluster description, `cluster.toml`, and initialises, starts, stops and inspects the
//! components it names — the GTM and its optional standby, GTM proxies, datanodes and
//! coordinators — as detached processes on this machine.
//!
//! ```text
//!   cluster.toml ──▶ cluster::Cluster::load (parse, validate: every mistake named)
//!                        │
//!          ┌─────────────┼───────────────┬─────────────────┐
//!          ▼             ▼               ▼                 ▼
//!     control::init  control::start  control::stop    status::collect
//!          │   (GTM → standby → proxies → datanodes → coordinators; stop in reverse)
//!          ▼
//!     process: spawn detached (own process group, log file, pid file), signals, ports
//!     register: CREATE NODE / ALTER NODE + pgxc_pool_reload() on every coordinator
//! ```
//!
//! `rxc up` ([`up`]) writes a cluster file for a complete local cluster on free ports and runs
//! it in the foreground until Ctrl-C or SIGTERM.
//!
//! # Remote hosts (design note)
//!
//! Validation accepts any host, but only components on this machine (a loopback address,
//! `localhost` or this machine's host name) can be run: the others are refused with "remote
//! hosts (ssh) are not supported yet". The plan for them keeps the same three primitives
//! [`process`] has locally — start detached with a pid file, signal by pid, probe the port —
//! and runs each over `ssh HOST` (OpenSSH's client, so the operator's keys, agent and
//! `~/.ssh/config` apply, as with `pgxc_ctl`):
//!
//! - start: `ssh HOST 'setsid BIN ARGS >>LOG 2>&1 </dev/null & echo $! >PIDFILE'`, the
//!   component's `--config` file copied first (`ssh HOST 'cat >FILE'`);
//! - stop: `ssh HOST 'kill -INT $(cat PIDFILE)'` (the mode's signal), then poll `kill -0`
//!   until it is gone;
//! - state: `ssh HOST 'kill -0 $(cat PIDFILE)'`, and the port probed from here, as locally;
//! - binaries: `bin_dir` per host (a `[hosts.NAME]` table), since the `rxc` executable's own
//!   directory means nothing on another machine;
//! - `init`'s "data directory must be empty" check and `mkdir -p` run remotely too.
//!
//! One ssh connection per host is reused (`ControlMaster`), and a host's components are
//! handled in one command where the order allows it.

pub mod cluster;
pub mod control;
pub mod process;
pub mod register;
pub mod status;
pub mod up;
