//! Small networking helpers every server shares.

use tokio::net::TcpListener;

/// Binds a listening socket, with an error that names the address (e.g. a port in use).
pub async fn bind_listener(address: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}"))
}

/// Microseconds since the Unix epoch, by this machine's clock.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// Which tokio runtime a binary runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// One thread (the GTM proxy: short turns of socket calls gain nothing from more).
    CurrentThread,
    /// A worker per core.
    MultiThread,
}

/// The stack of every runtime thread (workers and blocking threads). SQL parsing, binding and
/// evaluation recurse over expression trees, and a long `a AND b AND ...` chain is a deep tree:
/// tokio's default 2 MiB overflows on the SQLite corpus's generated WHERE clauses in debug
/// builds. The size is reserved address space; only the pages touched are memory.
pub const THREAD_STACK_BYTES: usize = 64 << 20;

/// Runs a binary's async main and turns its result into the exit code: on error, one line
/// `NAME: error: cause` on stderr and exit status 1.
pub fn run_main<F>(name: &str, runtime: Runtime, main: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let built = match runtime {
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_stack_size(THREAD_STACK_BYTES)
            .build(),
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_stack_size(THREAD_STACK_BYTES)
            .build(),
    };
    let result = match built {
        Ok(rt) => rt.block_on(main),
        Err(e) => Err(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
