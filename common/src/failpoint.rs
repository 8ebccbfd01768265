//! Failpoints for crash tests: `RXC_FAILPOINT=<name>` in a process's environment makes it
//! die (as `kill -9` would: no cleanup, no flushing) when it reaches [`hit`]`("<name>")`.
//!
//! The points are the moments a crash is hardest to survive, e.g. a coordinator between
//! PREPARE TRANSACTION on its participants and logging its decision at the GTM. Without the
//! variable a point costs one load of a cached string.

use std::sync::OnceLock;

/// The failpoint this process dies at, read once from `RXC_FAILPOINT`.
fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            std::env::var("RXC_FAILPOINT")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .as_deref()
}

/// Dies at once if failpoint `name` is armed.
pub fn hit(name: &str) {
    if armed() == Some(name) {
        eprintln!("failpoint {name} reached: aborting");
        std::process::abort();
    }
}
