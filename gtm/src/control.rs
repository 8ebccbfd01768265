//! The GTM's durable state — the GXID and sequence reservations, the 2PC decision log and the
//! node registry — as JSON, in two files of the data directory:
//!
//! - `gtm.control`, the checkpoint, replaced atomically (temp file, fsync, rename, directory
//!   fsync);
//! - `gtm.control.log`, a preallocated file of newer states written in place. Each record is
//!   the whole state with its sequence number and a CRC; one `fdatasync` makes it durable, and
//!   since the file's size never changes that writes data only. A two-phase commit's prepare,
//!   decision and end at the GTM each cost one such write instead of a file replacement (two
//!   fsyncs, a create and a rename).
//!
//! Loading takes the checkpoint, then the log's records from offset 0 as long as each is
//! intact (its CRC matches) and numbered one more than the state before it: the last is the
//! state. When a record does not fit behind the last one, the state is checkpointed and the
//! log starts again at offset 0; the records left behind are numbered at most the
//! checkpoint's, so loading stops at them (and at a record torn by a crash).

use crate::state::{ControlFile, CONTROL_FORMAT};
use rxc_common::datadir::{read_optional, write_durable};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The checkpoint's name in the data directory.
pub const CONTROL_FILE: &str = "gtm.control";
/// The log's name in the data directory.
pub const LOG_FILE: &str = "gtm.control.log";
/// The log's size (preallocated).
const LOG_SIZE: u64 = 4 << 20;
/// A record's header: payload length (u32), CRC-32 of sequence and payload (u32), sequence
/// (u64), little-endian.
const HEADER: usize = 16;

/// The checkpoint's path under `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(CONTROL_FILE)
}

fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LOG_FILE)
}

fn damaged(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} is damaged: {what}", path.display()),
    )
}

fn parse(path: &Path, bytes: &[u8]) -> io::Result<ControlFile> {
    let control: ControlFile = serde_json::from_slice(bytes).map_err(|e| damaged(path, e))?;
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
    Ok(control)
}

/// The durable state's files, open for writing.
pub struct ControlStore {
    data_dir: PathBuf,
    log: File,
    /// The log's size.
    size: u64,
    /// Where the next record goes.
    offset: u64,
    /// The sequence number of the newest durable state.
    seq: u64,
}

impl ControlStore {
    /// Opens (creating and preallocating the log if needed) and loads the newest state; `None`
    /// for a fresh data directory.
    pub fn open(data_dir: &Path) -> io::Result<(ControlStore, Option<ControlFile>)> {
        Self::open_sized(data_dir, LOG_SIZE)
    }

    fn open_sized(data_dir: &Path, size: u64) -> io::Result<(ControlStore, Option<ControlFile>)> {
        let checkpoint_path = path(data_dir);
        let mut newest = match read_optional(&checkpoint_path)? {
            Some(bytes) => Some(parse(&checkpoint_path, &bytes)?),
            None => None,
        };
        let mut seq = newest.as_ref().map_or(0, |c| c.log_seq);
        let log_path = log_path(data_dir);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&log_path)?;
        let mut offset = 0;
        let len = log.metadata()?.len();
        if len < size {
            // Written out once (zeros), so that records later overwrite allocated blocks and
            // their fdatasync has no size or extent to record.
            let zeros = vec![0u8; 1 << 20];
            let mut at = len;
            while at < size {
                let n = zeros.len().min((size - at) as usize);
                log.write_all_at(&zeros[..n], at)?;
                at += n as u64;
            }
            log.sync_all()?;
            File::open(data_dir)?.sync_all()?;
        }
        let mut header = [0u8; HEADER];
        while offset + HEADER as u64 <= size {
            log.read_exact_at(&mut header, offset)?;
            let n = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as u64;
            let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
            let record_seq = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
            if n == 0 || offset + HEADER as u64 + n > size || record_seq != seq + 1 {
                break;
            }
            let mut payload = vec![0u8; n as usize];
            log.read_exact_at(&mut payload, offset + HEADER as u64)?;
            if record_crc(record_seq, &payload) != crc {
                break; // torn by a crash: never acknowledged
            }
            newest = Some(parse(&log_path, &payload)?);
            seq = record_seq;
            offset += HEADER as u64 + n;
        }
        let store = ControlStore {
            data_dir: data_dir.to_path_buf(),
            log,
            size,
            offset,
            seq,
        };
        Ok((store, newest))
    }

    /// Makes `control` the durable state: a record in the log, or a checkpoint when the log is
    /// full (or the record too large for it).
    pub fn save(&mut self, control: &ControlFile) -> io::Result<()> {
        // The payload after room for its header, which is filled in once its length is known.
        let mut record = vec![0u8; HEADER];
        serde_json::to_writer(&mut record, control).map_err(io::Error::other)?;
        let seq = self.seq + 1;
        let size = record.len() as u64;
        if self.offset + size > self.size {
            return self.checkpoint(control);
        }
        let (header, payload) = record.split_at_mut(HEADER);
        header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        header[4..8].copy_from_slice(&record_crc(seq, payload).to_le_bytes());
        header[8..16].copy_from_slice(&seq.to_le_bytes());
        self.log.write_all_at(&record, self.offset)?;
        self.log.sync_data()?;
        self.offset += size;
        self.seq = seq;
        Ok(())
    }

    /// Replaces the checkpoint with `control` and starts the log again at offset 0.
    pub fn checkpoint(&mut self, control: &ControlFile) -> io::Result<()> {
        let seq = self.seq + 1;
        let checkpoint = ControlFile {
            log_seq: seq,
            ..control.clone()
        };
        let bytes = serde_json::to_vec_pretty(&checkpoint).map_err(io::Error::other)?;
        write_durable(&path(&self.data_dir), &bytes)?;
        self.offset = 0;
        self.seq = seq;
        Ok(())
    }
}

fn record_crc(seq: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::GtmState;
    use rxc_common::txn::Gxid;
    use rxc_tests::TempDir;

    fn state(next: u64) -> ControlFile {
        ControlFile {
            next_gxid: Gxid(next),
            ..GtmState::default().control_file()
        }
    }

    /// The newest saved state is what a reopened store loads, through log records, a
    /// checkpoint and the log wrapping over records of an earlier round.
    #[test]
    fn the_newest_state_survives_reopening() {
        let tmp = TempDir::new("gtm-control-newest");
        let dir = tmp.path();
        const SIZE: u64 = 64 << 10;
        let (mut store, loaded) = ControlStore::open_sized(dir, SIZE).unwrap();
        assert!(loaded.is_none());
        assert_eq!(std::fs::metadata(log_path(dir)).unwrap().len(), SIZE);
        store.checkpoint(&state(1)).unwrap();
        for next in 2..=50 {
            store.save(&state(next)).unwrap();
        }
        drop(store);
        let (mut store, loaded) = ControlStore::open_sized(dir, SIZE).unwrap();
        assert_eq!(loaded.unwrap().next_gxid, Gxid(50));
        // Fill the log so that it wraps: the records of the first round stay behind the new
        // ones and must not be taken for newer.
        let mut next = 50;
        while store.offset != 0 {
            next += 1;
            store.save(&state(next)).unwrap();
        }
        // The checkpoint alone is newest: the old round's records are not taken.
        let (_, loaded) = ControlStore::open_sized(dir, SIZE).unwrap();
        assert_eq!(loaded.unwrap().next_gxid, Gxid(next));
        next += 1;
        store.save(&state(next)).unwrap();
        drop(store);
        let (store, loaded) = ControlStore::open_sized(dir, SIZE).unwrap();
        assert_eq!(loaded.unwrap().next_gxid, Gxid(next));
        assert!(store.offset > 0);
    }

    /// A record torn by a crash (its bytes only partly written) is not loaded: the state
    /// before it is.
    #[test]
    fn a_torn_record_is_ignored() {
        let tmp = TempDir::new("gtm-control-torn");
        let dir = tmp.path();
        let (mut store, _) = ControlStore::open(dir).unwrap();
        store.save(&state(7)).unwrap();
        let offset = store.offset;
        store.save(&state(8)).unwrap();
        drop(store);
        // Damage the second record's payload.
        let log = OpenOptions::new().write(true).open(log_path(dir)).unwrap();
        log.write_all_at(b"XX", offset + HEADER as u64 + 3).unwrap();
        drop(log);
        let (mut store, loaded) = ControlStore::open(dir).unwrap();
        assert_eq!(loaded.unwrap().next_gxid, Gxid(7));
        // Writing goes on after the intact record, numbered after it.
        assert_eq!(store.offset, offset);
        store.save(&state(9)).unwrap();
        drop(store);
        let (_, loaded) = ControlStore::open(dir).unwrap();
        assert_eq!(loaded.unwrap().next_gxid, Gxid(9));
    }

    /// A checkpoint alone (an older data directory, or a log lost) loads.
    #[test]
    fn a_checkpoint_without_log_loads() {
        let tmp = TempDir::new("gtm-control-checkpoint");
        let dir = tmp.path();
        let bytes = serde_json::to_vec_pretty(&state(12)).unwrap();
        write_durable(&path(dir), &bytes).unwrap();
        let (mut store, loaded) = ControlStore::open(dir).unwrap();
        assert_eq!(loaded.unwrap().next_gxid, Gxid(12));
        store.save(&state(13)).unwrap();
        drop(store);
        let (_, loaded) = ControlStore::open(dir).unwrap();
        assert_eq!(loaded.unwrap().next_gxid, Gxid(13));
    }
}
