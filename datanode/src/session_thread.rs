//! A thread for each client connection, as PostgreSQL has a backend process for each.
//!
//! A session's statements block: storage reads, lock waits, fsyncs. On the shared runtime each
//! statement would hop from a worker to a blocking thread and back — two wakeups and two
//! context switches a statement, more than the work of a point statement on a 2-core machine.
//! A session thread instead runs its own single-threaded runtime for the connection's socket
//! and runs the statements right on it: a statement is one wakeup (the client's message), and
//! blocking in it holds up only its own connection. Background work (the GTM client's
//! connection, GC) stays on the shared runtime; a session reaches the GTM through channels,
//! which work across runtimes.

use std::cell::Cell;
use std::future::Future;

thread_local! {
    /// Whether this thread is a session thread (where blocking work runs in place).
    static SESSION_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is a session thread.
pub fn on_session_thread() -> bool {
    SESSION_THREAD.get()
}

/// Serves a connection on a new thread of its own: `serve` runs on a single-threaded runtime
/// there, with the socket registered with that runtime. The thread ends with the connection.
pub fn spawn<F, Fut>(socket: tokio::net::TcpStream, serve: F) -> std::io::Result<()>
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let socket = socket.into_std()?;
    std::thread::Builder::new()
        .name("rxc-session".into())
        .stack_size(rxc_common::net::THREAD_STACK_BYTES)
        .spawn(move || {
            SESSION_THREAD.set(true);
            // Sockets and timers only: signals and child processes are the shared runtime's.
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start a session's runtime");
                    return;
                }
            };
            runtime.block_on(async move {
                match tokio::net::TcpStream::from_std(socket) {
                    Ok(socket) => serve(socket).await,
                    Err(e) => tracing::warn!(error = %e, "cannot register a session's socket"),
                }
            });
        })?;
    Ok(())
}

/// Runs `work`, which may block: in place on a session thread, else on the runtime's
/// blocking pool. Fails only if the blocking task panicked.
pub async fn blocking<T, F>(work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if SESSION_THREAD.get() {
        Ok(work())
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Runs `future` on the shared runtime `runtime` and blocks this thread until it is done: for
/// blocking code (a statement) that needs an answer from the GTM. Works on session threads and
/// blocking threads alike, never on a runtime worker. `None` if the runtime shut down first.
pub fn wait_on<F>(runtime: &tokio::runtime::Handle, future: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().ok()
}
