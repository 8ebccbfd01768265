//! Harness for rxc's end-to-end tests: starts the real binaries as child processes on
//! ephemeral loopback ports with temporary data directories, and cleans everything up when the
//! test ends (processes killed, directories removed).
//!
//! The binaries are taken from the cargo target directory the test itself was built into
//! (`target/debug` or `target/release`); `tests/run.sh` builds them before the tests run.

pub mod postgres;
pub mod slt;
pub mod sql;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The directory holding the workspace's binaries.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>
    let deps = exe.parent().expect("deps dir");
    let dir = if deps.ends_with("deps") {
        deps.parent().expect("profile dir")
    } else {
        deps
    };
    dir.to_path_buf()
}

/// The path of a workspace binary, failing clearly if it was not built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --release --workspace` (or the same without --release) first",
        path.display()
    );
    path
}

/// A free loopback port (bound once, then released for the child to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A `127.0.0.1:PORT` address on a free port.
pub fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new, empty directory under the system temp dir.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("rxc-test-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A child process killed on drop; its stderr goes to a log file, shown when the test fails.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts the workspace binary `binary` with `args`, logging to `log`.
    pub fn start(name: &str, binary: &str, args: &[&str], log: PathBuf) -> Process {
        Process::start_env(name, binary, args, &[], log)
    }

    /// As [`Process::start`], with extra environment variables (e.g. `RXC_FAILPOINT`).
    pub fn start_env(
        name: &str,
        binary: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Process {
        let mut command = Command::new(bin(binary));
        command.args(args).env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
        command.envs(env.iter().copied());
        Process::spawn(name, command, log)
    }

    /// Starts `command` (any program), its stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: PathBuf) -> Process {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open log");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log fd"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({command:?}): {e}"));
        Process {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    /// Kills it with SIGKILL (`kill -9`) and waits for it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for a clean exit; returns its exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.stop("TERM", timeout)
    }

    /// Sends `signal` (a name for `kill -s`, e.g. `INT`) and waits up to `timeout` for the
    /// process to exit, killing it with SIGKILL after that; returns its exit status.
    pub fn stop(&mut self, signal: &str, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.signal(signal);
        let status = self.wait_exit(timeout);
        if status.is_none() {
            self.kill9();
        }
        status
    }

    /// Sends `signal` (a name for `kill -s`) and returns at once.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-s", signal])
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.as_mut()?.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its OS process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("----- log of {} -----\n{}", self.name, self.log());
        }
    }
}

/// The resident memory of process `pid` in bytes (`VmRSS` in `/proc/PID/status`), while it
/// runs (Linux).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// Waits until something accepts TCP connections at `addr`.
pub fn wait_for_port(addr: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens at {addr} after {timeout:?}");
}

/// Runs a binary to completion and returns (exit success, stdout, stderr).
pub fn run(binary: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin(binary))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {binary}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A GTM started in a temp data directory on a free port.
#[derive(Debug)]
pub struct Gtm {
    pub addr: String,
    pub process: Process,
    pub dir: PathBuf,
}

impl Gtm {
    /// Starts an active GTM (or a standby of `standby_of`) with its data in `dir`.
    pub fn start(name: &str, dir: &Path, addr: &str, standby_of: Option<&str>) -> Gtm {
        let dir_s = dir.to_string_lossy().into_owned();
        let mut args = vec!["--node-name", name, "--data-dir", &dir_s, "--listen", addr];
        if let Some(active) = standby_of {
            args.extend(["--standby-of", active]);
        }
        let process = Process::start(name, "rxc-gtm", &args, dir.with_extension("log"));
        wait_for_port(addr, Duration::from_secs(10));
        Gtm {
            addr: addr.to_string(),
            process,
            dir: dir.to_path_buf(),
        }
    }
}

/// A datanode process.
pub struct Datanode {
    pub addr: String,
    pub process: Process,
    pub dir: PathBuf,
}

impl Datanode {
    /// Starts a datanode with its data in `dir`, talking to the GTM (or proxy) at `gtm`.
    pub fn start(name: &str, dir: &Path, addr: &str, gtm: &str) -> Datanode {
        Datanode::start_with(name, dir, addr, gtm, &[])
    }

    /// Starts a datanode with extra command-line arguments (e.g. `--config FILE`).
    pub fn start_with(name: &str, dir: &Path, addr: &str, gtm: &str, extra: &[&str]) -> Datanode {
        Datanode::start_binary("rxc-datanode", name, dir, addr, gtm, extra)
    }

    /// Starts a coordinator (it speaks the same wire protocol, so the same handle serves it).
    pub fn start_coordinator(name: &str, dir: &Path, addr: &str, gtm: &str) -> Datanode {
        Datanode::start_binary("rxc-coordinator", name, dir, addr, gtm, &[])
    }

    pub fn start_binary(
        binary: &str,
        name: &str,
        dir: &Path,
        addr: &str,
        gtm: &str,
        extra: &[&str],
    ) -> Datanode {
        Datanode::start_binary_env(binary, name, dir, addr, gtm, extra, &[])
    }

    /// As [`Datanode::start_binary`], with extra environment variables (e.g. `RXC_FAILPOINT`).
    pub fn start_binary_env(
        binary: &str,
        name: &str,
        dir: &Path,
        addr: &str,
        gtm: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Datanode {
        let dir_s = dir.to_string_lossy().into_owned();
        let mut args = vec![
            "--node-name",
            name,
            "--data-dir",
            &dir_s,
            "--listen",
            addr,
            "--gtm",
            gtm,
        ];
        args.extend_from_slice(extra);
        let process = Process::start_env(name, binary, &args, env, dir.with_extension("log"));
        wait_for_port(addr, Duration::from_secs(20));
        Datanode {
            addr: addr.to_string(),
            process,
            dir: dir.to_path_buf(),
        }
    }

    /// The host and port, for clients.
    pub fn host_port(&self) -> (String, u16) {
        let (host, port) = self.addr.rsplit_once(':').expect("HOST:PORT");
        (host.to_string(), port.parse().expect("port"))
    }

    /// A tokio-postgres connection string for this datanode.
    pub fn conninfo(&self) -> String {
        let (host, port) = self.host_port();
        format!("host={host} port={port} user=postgres dbname=postgres")
    }
}

/// An `[auth]` section for a node's config file: `postgres` is trusted from anywhere (the
/// coordinators' connections and the tests' admin sessions), every other role logs in with
/// SCRAM-SHA-256.
pub const POSTGRES_TRUSTED_OTHERS_SCRAM: &str = r#"
[[auth.rules]]
address = "all"
user = "postgres"
method = "trust"

[[auth.rules]]
address = "all"
method = "scram-sha-256"
"#;

/// A GTM and a datanode using it, in a fresh temporary directory.
pub struct SingleNode {
    pub gtm: Gtm,
    pub datanode: Datanode,
    pub dir: TempDir,
}

impl SingleNode {
    /// Starts a GTM and a datanode `dn1`.
    pub fn start(label: &str) -> SingleNode {
        let dir = TempDir::new(label);
        let gtm = Gtm::start("gtm", &dir.join("gtm"), &free_addr(), None);
        let datanode = Datanode::start("dn1", &dir.join("dn1"), &free_addr(), &gtm.addr);
        SingleNode { gtm, datanode, dir }
    }
}

/// A cluster in a fresh temporary directory: a GTM, a GTM proxy every node reaches the GTM
/// through (as deployed: ARCHITECTURE §2), datanodes `dn1`, `dn2`, ... and a coordinator
/// `coord1`; [`Cluster::register`] makes the datanodes known to the coordinator.
pub struct Cluster {
    pub gtm: Gtm,
    /// The GTM proxy in front of the GTM.
    pub proxy: Process,
    /// Where the nodes reach the GTM: the proxy's address.
    pub gtm_addr: String,
    pub dns: Vec<Datanode>,
    /// `coord1`, `coord2`, ...
    pub coords: Vec<Datanode>,
    /// Last: removed after the processes are gone (and their logs shown, on a failure).
    pub dir: TempDir,
}

/// How to start one coordinator of a [`Cluster`].
#[derive(Clone, Copy, Default)]
pub struct CoordinatorSpec<'a> {
    /// Its TOML configuration file's text.
    pub config: &'a str,
    /// Extra environment variables.
    pub env: &'a [(&'a str, &'a str)],
}

impl Cluster {
    /// Starts a GTM, `datanodes` datanodes and a coordinator.
    pub fn start(label: &str, datanodes: usize) -> Cluster {
        Cluster::start_with(label, datanodes, "")
    }

    /// As [`Cluster::start`], the coordinator with `coordinator_config` as its TOML
    /// configuration file (e.g. `default_distribution = "replication"`).
    pub fn start_with(label: &str, datanodes: usize, coordinator_config: &str) -> Cluster {
        Cluster::start_coordinators(
            label,
            datanodes,
            &[CoordinatorSpec {
                config: coordinator_config,
                env: &[],
            }],
        )
    }

    /// Starts a GTM, `datanodes` datanodes and one coordinator per spec.
    pub fn start_coordinators(
        label: &str,
        datanodes: usize,
        coordinators: &[CoordinatorSpec],
    ) -> Cluster {
        let dir = TempDir::new(label);
        let gtm = Gtm::start("gtm", &dir.join("gtm"), &free_addr(), None);
        let (gtm_addr, proxy) = start_proxy("gtm_proxy", &gtm.addr, dir.path());
        let dns = (1..=datanodes)
            .map(|i| {
                let name = format!("dn{i}");
                Datanode::start(&name, &dir.join(&name), &free_addr(), &gtm_addr)
            })
            .collect();
        let coords = coordinators
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let name = format!("coord{}", i + 1);
                Cluster::start_coordinator(&dir, &gtm_addr, &name, &free_addr(), spec)
            })
            .collect();
        Cluster {
            dir,
            gtm,
            proxy,
            gtm_addr,
            dns,
            coords,
        }
    }

    /// Starts (or restarts, on its data directory) coordinator `name` at `addr`.
    pub fn start_coordinator(
        dir: &TempDir,
        gtm: &str,
        name: &str,
        addr: &str,
        spec: &CoordinatorSpec,
    ) -> Datanode {
        let config = dir.join(&format!("{name}.toml"));
        std::fs::write(&config, spec.config).expect("write the coordinator's config");
        let config = config.to_string_lossy().into_owned();
        Datanode::start_binary_env(
            "rxc-coordinator",
            name,
            &dir.join(name),
            addr,
            gtm,
            &["--config", &config],
            spec.env,
        )
    }

    /// The first coordinator.
    pub fn coord(&self) -> &Datanode {
        &self.coords[0]
    }

    /// Registers the datanodes and the other coordinators on every coordinator, and reloads
    /// their pools.
    pub async fn register_all(&self) {
        for (i, coord) in self.coords.iter().enumerate() {
            let c = sql::connect(coord).await;
            for (j, other) in self.coords.iter().enumerate() {
                if i == j {
                    continue;
                }
                let (host, port) = other.host_port();
                c.batch_execute(&format!(
                    "CREATE NODE coord{} WITH (TYPE = 'coordinator', HOST = '{host}', PORT = {port})",
                    j + 1
                ))
                .await
                .unwrap_or_else(|e| panic!("CREATE NODE coord{}: {e}", j + 1));
            }
            self.register(&c).await;
        }
    }

    /// Registers the datanodes on the coordinator (`dn1` primary) with `CREATE NODE` and
    /// reloads its pool.
    pub async fn register(&self, c: &tokio_postgres::Client) {
        for (i, dn) in self.dns.iter().enumerate() {
            let (host, port) = dn.host_port();
            let primary = if i == 0 { ", PRIMARY" } else { "" };
            c.batch_execute(&format!(
                "CREATE NODE dn{} WITH (TYPE = 'datanode', HOST = '{host}', PORT = {port}{primary})",
                i + 1
            ))
            .await
            .unwrap_or_else(|e| panic!("CREATE NODE dn{}: {e}", i + 1));
        }
        let reloaded = sql::rows(c, "SELECT pgxc_pool_reload()").await;
        assert_eq!(reloaded, sql::table(&[&["t"]]), "pgxc_pool_reload()");
    }
}

/// A GTM proxy on a free port in front of `gtm` (a comma-separated failover list).
pub fn start_proxy(name: &str, gtm: &str, log_dir: &Path) -> (String, Process) {
    let addr = free_addr();
    let process = start_proxy_at(name, &addr, gtm, &[], log_dir);
    (addr, process)
}

/// A GTM proxy at `addr` in front of `gtm`, with extra flags.
pub fn start_proxy_at(
    name: &str,
    addr: &str,
    gtm: &str,
    extra: &[&str],
    log_dir: &Path,
) -> Process {
    let mut args = vec!["--node-name", name, "--listen", addr, "--gtm", gtm];
    args.extend_from_slice(extra);
    let process = Process::start(
        name,
        "rxc-gtm-proxy",
        &args,
        log_dir.join(format!("{name}.log")),
    );
    wait_for_port(addr, Duration::from_secs(10));
    process
}

/// The files of a golden-script directory, sorted; fails if there are none.
pub fn script_files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scripts in {}", dir.display());
    paths
}

/// Runs the golden script at `path` with `reference` — checking it, or with
/// `UPDATE_GOLDENFILES=1` rewriting it — then with `other`, whose output must be the very same
/// file (e.g. the RocksDB engine against the in-memory one).
pub fn golden_on_both<A: goldenscript::Runner, B: goldenscript::Runner>(
    path: &Path,
    reference: &mut A,
    other: &mut B,
    other_name: &str,
) {
    let name = path.display();
    goldenscript::run(reference, path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let golden = std::fs::read_to_string(path).expect("read golden script");
    let output = goldenscript::generate(other, &golden)
        .unwrap_or_else(|e| panic!("{other_name}: {name}: {e}"));
    assert_eq!(output, golden, "{other_name} output differs for {name}");
}
