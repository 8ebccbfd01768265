//! Graceful shutdown: waiting for SIGINT/SIGTERM and telling a server's tasks to stop.
//!
//! A server creates one [`Shutdown`], hands clones to its tasks, and calls
//! [`Shutdown::trigger_on_signal`]. Each task selects on
//! [`Shutdown::wait`] beside its work, or polls [`Shutdown::is_triggered`] between steps.
//!
//! As PostgreSQL's postmaster, a server tells two requests apart: SIGTERM asks for a *smart*
//! shutdown (stop accepting connections; the clients' sessions end on their own), SIGINT for a
//! *fast* one (end the sessions now). [`Shutdown::wait`] completes on either: a task with no
//! sessions to drain simply stops. A server that drains sessions waits for them, or for
//! [`Shutdown::wait_fast`], whichever comes first.
//!
//! ```text
//!   SIGTERM ──▶ trigger_smart() ─┐
//!   SIGINT  ──▶ trigger() ───────┤ (tokio watch channel: running < smart < fast)
//!                                ▼
//!      task A: wait() ◀──────────┼──────────▶ task B: is_triggered() / wait_fast()
//! ```

use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Completes at the next `kind` signal; never, if its handler cannot be installed.
async fn one_signal(kind: SignalKind, name: &'static str) -> &'static str {
    match signal(kind) {
        Ok(mut stream) => {
            stream.recv().await;
        }
        Err(err) => {
            tracing::warn!(signal = name, error = %err, "cannot install signal handler");
            std::future::pending::<()>().await;
        }
    }
    name
}

/// How far a shutdown has gone: the watch channel's value only ever grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Running,
    Smart,
    Fast,
}

/// A cloneable stop flag for a server's tasks. All clones share one flag; once triggered it stays
/// triggered.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: Arc<watch::Sender<Stage>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A new, untriggered flag.
    pub fn new() -> Self {
        Shutdown {
            sender: Arc::new(watch::Sender::new(Stage::Running)),
        }
    }

    /// Tells every task holding a clone to stop now (a fast shutdown). Triggering twice is
    /// harmless.
    pub fn trigger(&self) {
        self.advance(Stage::Fast);
    }

    /// Asks for a smart shutdown: [`wait`](Self::wait) completes, [`wait_fast`](Self::wait_fast)
    /// does not (until [`trigger`](Self::trigger)).
    pub fn trigger_smart(&self) {
        self.advance(Stage::Smart);
    }

    fn advance(&self, to: Stage) {
        self.sender.send_if_modified(|stage| {
            let grows = *stage < to;
            if grows {
                *stage = to;
            }
            grows
        });
    }

    /// Whether a shutdown, smart or fast, has been asked for.
    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow() >= Stage::Smart
    }

    /// Whether a fast shutdown has been asked for.
    pub fn is_fast(&self) -> bool {
        *self.sender.borrow() == Stage::Fast
    }

    /// Completes once a shutdown, smart or fast, is asked for (at once if it already is).
    /// Cancel-safe.
    pub async fn wait(&self) {
        self.wait_for(Stage::Smart).await
    }

    /// Completes once a fast shutdown is asked for (at once if it already is). Cancel-safe.
    pub async fn wait_fast(&self) {
        self.wait_for(Stage::Fast).await
    }

    async fn wait_for(&self, stage: Stage) {
        let mut receiver = self.sender.subscribe();
        // The sender lives as long as `self`, so the channel cannot close while we wait.
        let _ = receiver.wait_for(|now| *now >= stage).await;
    }

    /// Spawns a task that turns signals into requests: SIGTERM a smart shutdown, SIGINT a fast
    /// one (also after a SIGTERM, to cut a smart shutdown short). Call it inside a tokio runtime.
    pub fn trigger_on_signal(&self) -> tokio::task::JoinHandle<()> {
        let shutdown = self.clone();
        tokio::spawn(async move {
            let fast = one_signal(SignalKind::interrupt(), "SIGINT");
            tokio::pin!(fast);
            tokio::select! {
                _ = &mut fast => {}
                _ = one_signal(SignalKind::terminate(), "SIGTERM") => {
                    tracing::info!("received SIGTERM, smart shutdown: no new connections, \
                                    waiting for the sessions to end (SIGINT ends them)");
                    shutdown.trigger_smart();
                    fast.as_mut().await;
                }
            }
            tracing::info!("received SIGINT, fast shutdown");
            shutdown.trigger();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn trigger_wakes_every_clone() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.is_triggered());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let shutdown = shutdown.clone();
                tokio::spawn(async move { shutdown.wait().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        shutdown.trigger();
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("waiter woke")
                .unwrap();
        }
        assert!(shutdown.clone().is_triggered());
    }

    #[tokio::test]
    async fn wait_after_trigger_returns_at_once() {
        let shutdown = Shutdown::default();
        shutdown.trigger();
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), shutdown.wait())
            .await
            .expect("already triggered");
    }

    /// Sends `signal` to this process until `done` completes (the task listening for it
    /// registers at some point after spawning).
    async fn signal_until(signal: &str, done: impl std::future::Future<Output = ()>) {
        tokio::pin!(done);
        let pid = std::process::id().to_string();
        for _ in 0..100 {
            let status = std::process::Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap();
            assert!(status.success());
            if tokio::time::timeout(Duration::from_millis(50), &mut done)
                .await
                .is_ok()
            {
                return;
            }
        }
        panic!("{signal} was not seen");
    }

    #[tokio::test]
    async fn sigterm_is_smart_and_sigint_fast() {
        // Install tokio's handlers first, so the signals sent below never kill the process.
        let _term = signal(SignalKind::terminate()).unwrap();
        let _int = signal(SignalKind::interrupt()).unwrap();
        let shutdown = Shutdown::new();
        let task = shutdown.trigger_on_signal();
        signal_until("-TERM", shutdown.wait()).await;
        assert!(shutdown.is_triggered());
        assert!(!shutdown.is_fast(), "SIGTERM asks for a smart shutdown");
        assert!(
            tokio::time::timeout(Duration::from_millis(20), shutdown.wait_fast())
                .await
                .is_err()
        );
        signal_until("-INT", shutdown.wait_fast()).await;
        assert!(shutdown.is_fast());
        task.await.unwrap();
    }

    #[tokio::test]
    async fn smart_then_fast_never_goes_back() {
        let shutdown = Shutdown::new();
        shutdown.trigger_smart();
        assert!(shutdown.is_triggered() && !shutdown.is_fast());
        shutdown.trigger();
        shutdown.trigger_smart();
        assert!(shutdown.is_fast());
        tokio::time::timeout(Duration::from_secs(5), shutdown.wait_fast())
            .await
            .expect("fast");
    }

    #[tokio::test]
    async fn wait_pends_until_triggered() {
        let shutdown = Shutdown::new();
        let waited = tokio::time::timeout(Duration::from_millis(20), shutdown.wait()).await;
        assert!(waited.is_err());
    }
}
