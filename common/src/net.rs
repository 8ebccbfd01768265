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
