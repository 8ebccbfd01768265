//! Logging setup shared by every rxc binary.
//!
//! Logs go to stderr through `tracing-subscriber`, filtered by `RUST_LOG` (an `EnvFilter`
//! directive such as `info,rxc_gtm=debug`; `info` when unset or invalid), as human-readable text
//! or one JSON object per line.

use crate::config::LogFormat;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// Installs the global tracing subscriber. Calling it again does nothing, so tests and binaries
/// may both call it.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // `try_init` fails only when a global subscriber is already installed: keep that one.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_twice_is_harmless() {
        init_tracing(LogFormat::Text);
        init_tracing(LogFormat::Json);
        tracing::info!("logging works after two initialisations");
    }
}
