//! A throwaway PostgreSQL 15 server: the oracle that differential tests compare rxc with.
//!
//! [`Postgres::start`] runs `initdb` into a temporary directory and starts `postgres` on a
//! free loopback port (TCP only, no Unix socket), tuned for tests (`fsync=off`, no
//! `synchronous_commit`) and set up like an rxc datanode's session (`TimeZone=UTC`,
//! `DateStyle=ISO, MDY`, C locale, UTF8), so both format values the same way.
//!
//! PostgreSQL refuses to run as root. When the test runs as root (CI does), `initdb` and
//! `postgres` run as the `postgres` OS user that Debian's `postgresql-15` package creates (or
//! `RXC_PG_USER`), through util-linux's `setpriv`; the temporary directory is handed to that
//! user. `setpriv --pdeathsig KILL` also ties the server's life to the test thread that
//! started it, so a test killed outright (a timeout's SIGKILL) leaves no server behind; the
//! normal end, or a failing test's unwinding, stops it with a fast shutdown.
//!
//! The binaries come from `RXC_PG_BIN` if set, else `/usr/lib/postgresql/15/bin`.

use crate::{free_port, Process, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where PostgreSQL 15's server binaries are on Debian.
const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// A running PostgreSQL server in a temporary directory, stopped and removed on drop.
pub struct Postgres {
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    process: Process,
    // Declared after `process`: dropped (removed) once the server is stopped.
    _dir: TempDir,
}

impl Postgres {
    /// Initializes a cluster and starts the server; panics with the reason if it cannot.
    pub fn start(label: &str) -> Postgres {
        let bin_dir = pg_bin_dir();
        let dir = TempDir::new(&format!("pg-{label}"));
        let user = run_as_user();
        if let Some(user) = &user {
            std::os::unix::fs::chown(dir.path(), Some(user.uid), Some(user.gid))
                .unwrap_or_else(|e| panic!("chown {} to {}: {e}", dir.path().display(), user.name));
        }
        let data = dir.join("data");
        let data_s = data.to_string_lossy().into_owned();

        let mut initdb = pg_command(&bin_dir, "initdb", user.as_ref());
        initdb.args(["-D", &data_s, "-U", "postgres", "-A", "trust", "-E", "UTF8"]);
        initdb.args(["--locale=C", "--no-sync", "--no-instructions"]);
        let out = initdb
            .output()
            .unwrap_or_else(|e| panic!("run initdb: {e}"));
        assert!(
            out.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        let port = free_port();
        let mut server = pg_command(&bin_dir, "postgres", user.as_ref());
        server.args(["-D", &data_s, "-p", &port.to_string()]);
        for setting in [
            "listen_addresses=127.0.0.1",
            "unix_socket_directories=",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "TimeZone=UTC",
            "DateStyle=ISO, MDY",
            "max_connections=40",
            "log_min_messages=warning",
        ] {
            server.args(["-c", setting]);
        }
        let process = Process::spawn("postgres", server, dir.join("postgres.log"));
        wait_until_ready(&bin_dir, port, Duration::from_secs(30));
        Postgres {
            port,
            process,
            _dir: dir,
        }
    }

    /// A tokio-postgres connection string for database `dbname`.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname}",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Fast shutdown: open sessions are ended, nothing is waited for.
        self.process.stop("INT", Duration::from_secs(10));
    }
}

/// The directory of PostgreSQL's server binaries.
fn pg_bin_dir() -> PathBuf {
    let dir = std::env::var_os("RXC_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN_DIR));
    assert!(
        dir.join("postgres").exists() && dir.join("initdb").exists(),
        "PostgreSQL 15 server binaries not found in {} (install the postgresql-15 package, \
         as tests/run.sh does, or point RXC_PG_BIN at them)",
        dir.display()
    );
    dir
}

/// The unprivileged OS user PostgreSQL runs as.
struct OsUser {
    name: String,
    uid: u32,
    gid: u32,
}

/// `None` when the test itself is not root (PostgreSQL then runs as the test's user).
fn run_as_user() -> Option<OsUser> {
    if id(&["-u"]) != Some(0) {
        return None;
    }
    let name = std::env::var("RXC_PG_USER").unwrap_or_else(|_| "postgres".to_string());
    let (Some(uid), Some(gid)) = (id(&["-u", &name]), id(&["-g", &name])) else {
        panic!(
            "running as root, and PostgreSQL refuses root: OS user `{name}` does not exist \
             (the postgresql-15 package creates `postgres`; RXC_PG_USER picks another)"
        );
    };
    Some(OsUser { name, uid, gid })
}

/// A numeric id printed by `id ARGS`.
fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// `program` from `bin_dir`, run through `setpriv`: as `user` when given, and killed when the
/// thread that starts it ends.
fn pg_command(bin_dir: &Path, program: &str, user: Option<&OsUser>) -> Command {
    let mut command = Command::new("setpriv");
    if let Some(user) = user {
        command.args([
            "--reuid",
            &user.name,
            "--regid",
            &user.name,
            "--clear-groups",
        ]);
    }
    command.args(["--pdeathsig", "KILL", "--"]);
    command.arg(bin_dir.join(program));
    command.env("LC_ALL", "C");
    command
}

/// Waits until the server accepts connections (`pg_isready`), not merely TCP.
fn wait_until_ready(bin_dir: &Path, port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let port = port.to_string();
    while Instant::now() < deadline {
        let ready = Command::new(bin_dir.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("PostgreSQL on port {port} not ready after {timeout:?}");
}
