//! A server's data directory, and durable writes of the small files kept in it.
//!
//! ```text
//!   DIR/
//!     rxc.lock       exclusive lock (flock) held while the server runs; holds its pid
//!     rxc.identity   TOML: format_version, kind, node_name; written once, checked on every open
//!     ...            the server's own files (gtm.control, RocksDB, ...)
//! ```
//!
//! [`DataDir::open`] creates the directory if needed, locks it so two servers never share it, and
//! checks its identity so a datanode never starts on a GTM's directory or on another node's.
//!
//! [`write_durable`] replaces a file so that after a crash either the old or the new content is
//! there, never a mix: write `FILE.tmp`, fsync it, rename it over `FILE`, fsync the directory.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside a data directory.
pub const LOCK_FILE: &str = "rxc.lock";
/// Name of the identity file inside a data directory.
pub const IDENTITY_FILE: &str = "rxc.identity";
/// The identity file format this build writes and accepts.
pub const FORMAT_VERSION: u32 = 1;

/// Why a data directory cannot be used. Each message is one line naming the directory.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// The path exists and is not a directory.
    #[error("data directory {} exists and is not a directory", .path.display())]
    NotADirectory {
        /// The data directory.
        path: PathBuf,
    },
    /// The directory could not be created.
    #[error("cannot create data directory {}: {source}", .path.display())]
    Create {
        /// The data directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The directory exists but its lock file cannot be created or written.
    #[error("data directory {} is not writable: {source}", .path.display())]
    NotWritable {
        /// The data directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Another process holds the directory's lock.
    #[error("data directory {} is in use by another process{}", .path.display(), holder(*.pid))]
    InUse {
        /// The data directory.
        path: PathBuf,
        /// The pid the lock holder wrote into the lock file, if readable.
        pid: Option<u32>,
    },
    /// The identity file cannot be parsed.
    #[error("data directory {}: {IDENTITY_FILE} is corrupt: {reason}", .path.display())]
    CorruptIdentity {
        /// The data directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The identity file was written by an incompatible version.
    #[error(
        "data directory {} has format version {found}; this build supports version {FORMAT_VERSION}",
        .path.display()
    )]
    UnsupportedFormat {
        /// The data directory.
        path: PathBuf,
        /// The version found in the identity file.
        found: u32,
    },
    /// The directory belongs to another node or another kind of server.
    #[error(
        "data directory {} belongs to {found_kind} `{found_name}`, not to {kind} `{node_name}`",
        .path.display()
    )]
    IdentityMismatch {
        /// The data directory.
        path: PathBuf,
        /// The kind recorded in the directory.
        found_kind: String,
        /// The node name recorded in the directory.
        found_name: String,
        /// The kind of the server opening it.
        kind: String,
        /// The node name of the server opening it.
        node_name: String,
    },
    /// Any other I/O failure on a file of the directory.
    #[error("data directory {}: {}: {source}", .path.display(), .file.display())]
    Io {
        /// The data directory.
        path: PathBuf,
        /// The file being read or written.
        file: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!(" (pid {pid})"),
        None => String::new(),
    }
}

/// What `rxc.identity` records: which node, of which kind, owns the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    /// Version of the directory layout; [`FORMAT_VERSION`] when written by this build.
    format_version: u32,
    /// Kind of server: `gtm`, `gtm-proxy`, `coordinator` or `datanode`.
    kind: String,
    /// Node name of the owner.
    node_name: String,
}

/// An open, locked data directory. The lock is released when this value is dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    created: bool,
    _lock: File,
}

impl DataDir {
    /// Opens (creating it and its parents if missing) and locks the data directory of node
    /// `node_name` of server kind `kind` (`gtm`, `gtm-proxy`, `coordinator`, `datanode`).
    ///
    /// The first open records the node name and kind in `rxc.identity`; later opens refuse a
    /// directory recorded for another node, kind or format version.
    pub fn open(path: &Path, node_name: &str, kind: &str) -> Result<DataDir, DataDirError> {
        let dir = path.to_path_buf();
        if path.exists() && !path.is_dir() {
            return Err(DataDirError::NotADirectory { path: dir });
        }
        std::fs::create_dir_all(path).map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory => {
                DataDirError::NotADirectory { path: dir.clone() }
            }
            _ => DataDirError::Create {
                path: dir.clone(),
                source,
            },
        })?;
        let lock = lock(path)?;

        let identity_path = path.join(IDENTITY_FILE);
        let io_error = |source| DataDirError::Io {
            path: dir.clone(),
            file: identity_path.clone(),
            source,
        };
        let wanted = Identity {
            format_version: FORMAT_VERSION,
            kind: kind.to_string(),
            node_name: node_name.to_string(),
        };
        let created = match read_optional(&identity_path).map_err(io_error)? {
            None => {
                let text =
                    toml::to_string(&wanted).map_err(|err| DataDirError::CorruptIdentity {
                        path: dir.clone(),
                        reason: err.to_string(),
                    })?;
                write_durable(&identity_path, text.as_bytes()).map_err(io_error)?;
                tracing::info!(path = %path.display(), node_name, kind, "initialised data directory");
                true
            }
            Some(bytes) => {
                check_identity(path, &bytes, &wanted)?;
                false
            }
        };
        Ok(DataDir {
            path: dir,
            created,
            _lock: lock,
        })
    }

    /// The directory's path, as given to [`open`](Self::open).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of file `name` inside the directory.
    pub fn file(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// Whether this open initialised the directory (no identity file existed before).
    pub fn is_new(&self) -> bool {
        self.created
    }
}

/// Opens `DIR/rxc.lock`, takes its exclusive lock and records our pid in it.
fn lock(dir: &Path) -> Result<File, DataDirError> {
    let lock_path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|source| DataDirError::NotWritable {
            path: dir.to_path_buf(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let pid = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Err(DataDirError::InUse {
                path: dir.to_path_buf(),
                pid,
            });
        }
        Err(TryLockError::Error(source)) => {
            return Err(DataDirError::Io {
                path: dir.to_path_buf(),
                file: lock_path,
                source,
            })
        }
    }
    let record_pid = |file: &mut File| -> io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.flush()
    };
    record_pid(&mut file).map_err(|source| DataDirError::NotWritable {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(file)
}

fn check_identity(dir: &Path, bytes: &[u8], wanted: &Identity) -> Result<(), DataDirError> {
    let corrupt = |reason: String| DataDirError::CorruptIdentity {
        path: dir.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|err| corrupt(err.to_string()))?;
    let found: Identity =
        toml::from_str(text).map_err(|err| corrupt(err.message().trim_end().to_string()))?;
    if found.format_version != wanted.format_version {
        return Err(DataDirError::UnsupportedFormat {
            path: dir.to_path_buf(),
            found: found.format_version,
        });
    }
    if found.kind != wanted.kind || found.node_name != wanted.node_name {
        return Err(DataDirError::IdentityMismatch {
            path: dir.to_path_buf(),
            found_kind: found.kind,
            found_name: found.node_name,
            kind: wanted.kind.clone(),
            node_name: wanted.node_name.clone(),
        });
    }
    Ok(())
}

/// Replaces `path` with `bytes` durably and atomically: after a crash the file holds either its
/// old or its new content. Writes `path.tmp`, fsyncs it, renames it over `path` and fsyncs the
/// parent directory.
pub fn write_durable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
        .to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

/// Reads the whole file at `path`, or `None` if it does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, unique path under the temp directory (not created), removed on drop.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(name: &str) -> TempPath {
            let mut random = [0u8; 8];
            getrandom::fill(&mut random).unwrap();
            TempPath(std::env::temp_dir().join(format!(
                "rxc-datadir-test-{name}-{}-{}",
                std::process::id(),
                u64::from_le_bytes(random)
            )))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn fresh_directory_is_created_with_identity() {
        let tmp = TempPath::new("fresh");
        let dir_path = tmp.0.join("a/b/dn1");
        let dir = DataDir::open(&dir_path, "dn1", "datanode").unwrap();
        assert!(dir.is_new());
        assert_eq!(dir.path(), dir_path);
        assert_eq!(dir.file("x"), dir_path.join("x"));
        let identity = std::fs::read_to_string(dir_path.join(IDENTITY_FILE)).unwrap();
        let identity: Identity = toml::from_str(&identity).unwrap();
        assert_eq!(
            identity,
            Identity {
                format_version: 1,
                kind: "datanode".into(),
                node_name: "dn1".into()
            }
        );
        let pid = std::fs::read_to_string(dir_path.join(LOCK_FILE)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
    }

    #[test]
    fn reopen_with_same_identity() {
        let tmp = TempPath::new("reopen");
        drop(DataDir::open(&tmp.0, "gtm", "gtm").unwrap());
        let dir = DataDir::open(&tmp.0, "gtm", "gtm").unwrap();
        assert!(!dir.is_new());
    }

    #[test]
    fn other_node_or_kind_is_refused() {
        let tmp = TempPath::new("other");
        drop(DataDir::open(&tmp.0, "dn1", "datanode").unwrap());
        let err = DataDir::open(&tmp.0, "dn2", "datanode").unwrap_err();
        assert!(
            matches!(err, DataDirError::IdentityMismatch { .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "data directory {} belongs to datanode `dn1`, not to datanode `dn2`",
                tmp.0.display()
            )
        );
        let err = DataDir::open(&tmp.0, "dn1", "coordinator").unwrap_err();
        assert!(
            matches!(err, DataDirError::IdentityMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn other_format_version_is_refused() {
        let tmp = TempPath::new("version");
        drop(DataDir::open(&tmp.0, "dn1", "datanode").unwrap());
        let identity = "format_version = 2\nkind = \"datanode\"\nnode_name = \"dn1\"\n";
        write_durable(&tmp.0.join(IDENTITY_FILE), identity.as_bytes()).unwrap();
        let err = DataDir::open(&tmp.0, "dn1", "datanode").unwrap_err();
        assert!(
            matches!(err, DataDirError::UnsupportedFormat { found: 2, .. }),
            "{err}"
        );
        std::fs::write(tmp.0.join(IDENTITY_FILE), "garbage").unwrap();
        let err = DataDir::open(&tmp.0, "dn1", "datanode").unwrap_err();
        assert!(matches!(err, DataDirError::CorruptIdentity { .. }), "{err}");
    }

    #[test]
    fn locked_directory_is_refused() {
        let tmp = TempPath::new("locked");
        let first = DataDir::open(&tmp.0, "dn1", "datanode").unwrap();
        let err = DataDir::open(&tmp.0, "dn1", "datanode").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "data directory {} is in use by another process (pid {})",
                tmp.0.display(),
                std::process::id()
            )
        );
        drop(first);
        DataDir::open(&tmp.0, "dn1", "datanode").unwrap();
    }

    #[test]
    fn path_that_is_a_file_is_refused() {
        let tmp = TempPath::new("file");
        std::fs::write(&tmp.0, "not a directory").unwrap();
        let err = DataDir::open(&tmp.0, "dn1", "datanode").unwrap_err();
        assert!(matches!(err, DataDirError::NotADirectory { .. }), "{err}");
        // A file in the middle of the path.
        let err = DataDir::open(&tmp.0.join("below"), "dn1", "datanode").unwrap_err();
        assert!(
            matches!(
                err,
                DataDirError::NotADirectory { .. } | DataDirError::Create { .. }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn write_durable_replaces_content() {
        let tmp = TempPath::new("durable");
        std::fs::create_dir_all(&tmp.0).unwrap();
        let path = tmp.0.join("gtm.control");
        assert_eq!(read_optional(&path).unwrap(), None);
        write_durable(&path, b"first version, which is longer").unwrap();
        assert_eq!(
            read_optional(&path).unwrap().as_deref(),
            Some(&b"first version, which is longer"[..])
        );
        write_durable(&path, b"second").unwrap();
        assert_eq!(
            read_optional(&path).unwrap().as_deref(),
            Some(&b"second"[..])
        );
        assert!(!tmp.0.join("gtm.control.tmp").exists());
        // A stale temp file from a crash is simply overwritten.
        std::fs::write(tmp.0.join("gtm.control.tmp"), b"stale garbage").unwrap();
        write_durable(&path, b"third").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"third");
    }
}
