//! Graceful shutdown: waiting for SIGINT/SIGTERM and telling a server's tasks to stop.
//!
//! A server creates one [`Shutdown`], hands clones to its tasks, and triggers it when
//! [`shutdown_signal`] completes (or calls [`Shutdown::trigger_on_signal`]). Each task selects on
//! [`Shutdown::wait`] beside its work, or polls [`Shutdown::is_triggered`] between steps.
//!
//! ```text
//!   SIGINT / SIGTERM ──▶ shutdown_signal() ──▶ Shutdown::trigger()
//!                                                   │ (tokio watch channel)
//!                          task A: wait() ◀─────────┼─────────▶ task B: is_triggered()
//! ```

use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Completes when the process receives SIGINT or SIGTERM, logging which one at info level.
///
/// If a handler cannot be installed (which only happens when the process is out of resources),
/// that is logged as a warning and only the other signal is awaited.
pub async fn shutdown_signal() {
    async fn one(kind: SignalKind, name: &'static str) -> &'static str {
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
    let name = tokio::select! {
        name = one(SignalKind::interrupt(), "SIGINT") => name,
        name = one(SignalKind::terminate(), "SIGTERM") => name,
    };
    tracing::info!(signal = name, "received {name}, shutting down");
}

/// A cloneable stop flag for a server's tasks. All clones share one flag; once triggered it stays
/// triggered.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
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
            sender: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Tells every task holding a clone to stop. Triggering twice is harmless.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Whether [`trigger`](Self::trigger) has been called.
    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// Completes once the flag is triggered (at once if it already is). Cancel-safe.
    pub async fn wait(&self) {
        let mut receiver = self.sender.subscribe();
        // The sender lives as long as `self`, so the channel cannot close while we wait.
        let _ = receiver.wait_for(|triggered| *triggered).await;
    }

    /// Spawns a task that triggers this flag on SIGINT or SIGTERM. Call it inside a tokio runtime.
    pub fn trigger_on_signal(&self) -> tokio::task::JoinHandle<()> {
        let shutdown = self.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
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

    #[tokio::test]
    async fn sigterm_triggers() {
        // Install tokio's SIGTERM handler first, so the signals sent below never kill the process.
        let _guard = signal(SignalKind::terminate()).unwrap();
        let shutdown = Shutdown::new();
        let task = shutdown.trigger_on_signal();
        // The task registers its own listener at some point after spawning: signal until it wakes.
        let pid = std::process::id().to_string();
        for _ in 0..100 {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            assert!(status.success());
            if tokio::time::timeout(Duration::from_millis(50), shutdown.wait())
                .await
                .is_ok()
            {
                break;
            }
        }
        assert!(shutdown.is_triggered());
        task.await.unwrap();
    }

    #[tokio::test]
    async fn wait_pends_until_triggered() {
        let shutdown = Shutdown::new();
        let waited = tokio::time::timeout(Duration::from_millis(20), shutdown.wait()).await;
        assert!(waited.is_err());
    }
}
