//! A component's process on this machine: started detached, found again through its pid
//! file, signalled, and probed at its port.
//!
//! A component is started in a process group of its own, with stdin from `/dev/null` and
//! stdout and stderr appended to its log file, so it outlives `rxc` and a Ctrl-C in the
//! terminal reaches only `rxc`. Its pid goes to `DATA_DIR/rxc.pid`.
//!
//! A pid file alone proves little: the process may have exited (and, with no parent to reap
//! it, linger as a zombie) or the pid may have been reused. On Linux a pid counts as the
//! component's only while `/proc/PID/cmdline` holds `--data-dir DATA_DIR` — a zombie's
//! command line is empty. Elsewhere `kill(pid, 0)` is all there is.

use crate::cluster::Component;
use anyhow::{bail, Context, Result};
use rustix::process::{Pid, Signal};
use std::ffi::OsStr;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long one connection attempt to a component's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between two looks at a starting or stopping process.
const POLL: Duration = Duration::from_millis(50);

/// Starts `binary` with `args` for `component`, detached (see the module docs), and writes
/// its pid file. The caller may keep the [`Child`] to reap it, or drop it.
pub fn spawn(component: &Component, binary: &Path, args: &[std::ffi::OsString]) -> Result<Child> {
    if let Some(dir) = component.log_file.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create log directory {}", dir.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&component.log_file)
        .with_context(|| format!("cannot open log file {}", component.log_file.display()))?;
    let stderr = log
        .try_clone()
        .with_context(|| format!("cannot open log file {}", component.log_file.display()))?;
    let child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    if let Err(e) = write_pid_file(&component.pid_file(), child.id()) {
        // Untracked, rxc could not stop it later: end it now.
        let mut child = child;
        let pid = child.id();
        return Err(match child.kill().and_then(|()| child.wait()) {
            Ok(_) => e,
            Err(kill) => e.context(format!(
                "pid {pid} is left running (cannot kill it: {kill})"
            )),
        });
    }
    Ok(child)
}

fn write_pid_file(path: &Path, pid: u32) -> Result<()> {
    let mut file = std::fs::File::create(path)
        .with_context(|| format!("cannot write pid file {}", path.display()))?;
    writeln!(file, "{pid}").with_context(|| format!("cannot write pid file {}", path.display()))
}

/// The pid of the component's running process, from its pid file; `None` when there is no
/// pid file or its process is gone (or is not the component's: see the module docs).
pub fn running_pid(component: &Component) -> Result<Option<u32>> {
    let path = component.pid_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let pid: u32 = text
        .trim()
        .parse()
        .with_context(|| format!("pid file {} does not hold a pid", path.display()))?;
    Ok(is_component_process(pid, &component.data_dir).then_some(pid))
}

/// Whether `pid` is a live process started with `--data-dir data_dir`.
fn is_component_process(pid: u32, data_dir: &Path) -> bool {
    let proc_dir = Path::new("/proc");
    if !proc_dir.join("self").exists() {
        return to_pid(pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
    }
    let Ok(cmdline) = std::fs::read(proc_dir.join(pid.to_string()).join("cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let wanted = data_dir.as_os_str().as_bytes();
    args.windows(2)
        .any(|pair| pair[0] == b"--data-dir" && pair[1] == wanted)
}

fn to_pid(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, signal: Signal) -> Result<()> {
    let target = to_pid(pid).with_context(|| format!("{pid} is not a valid pid"))?;
    match rustix::process::kill_process(target, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot signal process {pid}")),
    }
}

/// Waits until the component's process `pid` is gone, for up to `timeout`.
pub async fn wait_gone(component: &Component, pid: u32, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while is_component_process(pid, &component.data_dir) {
        if Instant::now() > deadline {
            bail!(
                "{} {} (pid {pid}) is still running after {} s",
                component.kind,
                component.name,
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// The socket addresses of `host:port` (a name may resolve to several).
fn socket_addrs(host: &str, port: u16) -> Vec<SocketAddr> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    (bare, port)
        .to_socket_addrs()
        .map(|addrs| addrs.collect())
        .unwrap_or_default()
}

/// Whether something accepts TCP connections at `host:port`.
pub async fn port_open(host: &str, port: u16) -> bool {
    for addr in socket_addrs(host, port) {
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr));
        if matches!(attempt.await, Ok(Ok(_))) {
            return true;
        }
    }
    false
}

/// Waits until the component just started as `child` accepts connections at its port, for
/// up to `timeout`; fails early, showing the end of its log, if it exits first.
pub async fn wait_ready(component: &Component, child: &mut Child, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("cannot check on {}", component.name))?
        {
            bail!(
                "{} {} exited during startup ({status}); the end of its log {}:\n{}",
                component.kind,
                component.name,
                component.log_file.display(),
                log_tail(&component.log_file, 15)
            );
        }
        if port_open(&component.host, component.port).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} {} does not accept connections at {} after {} s; see its log {}",
                component.kind,
                component.name,
                component.address(),
                timeout.as_secs(),
                component.log_file.display()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The last `lines` lines of a log file, indented (or a note that it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            all[start..]
                .iter()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("    (cannot read {}: {e})", path.display()),
    }
}

/// Whether the file at `path` names an executable that exists.
pub fn check_binary(path: &Path) -> Result<()> {
    if !path.is_file() {
        let name = path
            .file_name()
            .unwrap_or(OsStr::new("?"))
            .to_string_lossy();
        bail!(
            "{name} not found at {}: build it (cargo build --release --workspace), or say where it is with bin_dir in the cluster file or the RXC_BIN_DIR environment variable",
            path.display()
        );
    }
    Ok(())
}
