//! `gtm.control`: the GTM's durable state — the GXID and sequence reservations, the 2PC
//! decision log and the node registry — as JSON, replaced atomically (temp file, fsync, rename,
//! directory fsync) whenever the state machine says something must be durable.

use crate::state::{ControlFile, CONTROL_FORMAT};
use rxc_common::datadir::{read_optional, write_durable};
use std::io;
use std::path::{Path, PathBuf};

/// The control file's name in the data directory.
pub const CONTROL_FILE: &str = "gtm.control";

/// The control file's path under `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(CONTROL_FILE)
}

/// Reads the control file; `None` for a fresh data directory.
pub fn load(data_dir: &Path) -> io::Result<Option<ControlFile>> {
    let path = path(data_dir);
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
    };
    let control: ControlFile = serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is damaged: {e}", path.display()),
        )
    })?;
    if control.format_version != CONTROL_FORMAT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} has format version {}, this rxc-gtm reads {}",
                path.display(),
                control.format_version,
                CONTROL_FORMAT
            ),
        ));
    }
    Ok(Some(control))
}

/// Writes the control file durably.
pub fn save(data_dir: &Path, control: &ControlFile) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(control).map_err(io::Error::other)?;
    write_durable(&path(data_dir), &bytes)
}
