//! The RocksDB engine: one RocksDB database per datanode, one column family per [`Cf`] role.
//!
//! ```text
//!  <dir>/            RocksDB files: WAL (*.log), SSTs, MANIFEST, OPTIONS
//!    column families  default (unused) · meta · rows · index · txn_status
//!    archive/         WAL files kept after flush for get_updates_since (wal_ttl / size limit)
//! ```
//!
//! - **Writes** all go through the [`GroupCommit`] queue: a leader turns the group's neutral
//!   batches into one RocksDB `WriteBatch` and writes it with `WriteOptions::set_sync` (set if
//!   any batch of the group asks for it), so concurrent commits share one WAL fsync. Since only
//!   the leader writes, `latest_sequence_number()` right after its write is the group's last
//!   LSN.
//! - **WAL** is flushed manually (`manual_wal_flush`): a write appends to RocksDB's WAL buffer,
//!   and a synced batch then runs `FlushWAL(sync)` (outside the queue, shared by the commits
//!   waiting: [`GroupCommit::sync_through`]), which writes and fsyncs everything appended before
//!   it. A statement's unsynced writes cost no `write(2)`; a crash loses only writes no commit
//!   depended on. The WAL stream and checkpoints flush the buffer first.
//! - **Reads** use RocksDB directly: `get_cf`, and iterators bounded with
//!   `iterate_lower_bound`/`iterate_upper_bound` (an iterator reads from an implicit snapshot).
//! - **WAL stream**: `get_updates_since` yields the raw batches; `WriteBatch::iterate_cf` turns
//!   each into the neutral [`WriteBatch`], mapping RocksDB's column family ids back to [`Cf`]
//!   (the ids are learned at open by decoding a probe batch, since the Rust binding exposes no
//!   id getter). WAL files stay in `archive/` after a flush for `wal_ttl_seconds` or until the
//!   archive exceeds `wal_size_limit_mb`: that bounds how far behind a standby may fall.
//! - **Tuning**: LZ4 on the upper levels and ZSTD at the bottom; a shared LRU block cache;
//!   bloom filters for point lookups; background jobs sized to the machine.

use super::group_commit::{GroupCommit, GroupCommitStats};
use super::keys;
use super::{
    check_updates_since, Cf, Engine, KeyRange, Lsn, Result, ScanIter, StorageError, UpdatesIter,
    WriteBatch, WriteOp,
};
use rocksdb::checkpoint::Checkpoint;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    IteratorMode, LruCacheOptions, Options, ReadOptions, SliceTransform, WriteBatchIteratorCf,
    WriteOptions, DB,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings of a [`RocksEngine`].
#[derive(Clone, Debug)]
pub struct RocksOptions {
    /// Size of the block cache shared by all column families, in MiB.
    pub block_cache_mb: usize,
    /// Keep archived WAL files this long for `updates_since` (0: no age limit).
    pub wal_ttl_seconds: u64,
    /// Keep archived WAL files up to this total size for `updates_since` (0: no size limit).
    /// With both limits 0, WAL files are deleted as soon as they are flushed.
    pub wal_size_limit_mb: u64,
    /// How long a group commit leader waits for more writers before writing (0: not at all).
    pub commit_delay: Duration,
}

impl Default for RocksOptions {
    fn default() -> Self {
        RocksOptions {
            block_cache_mb: 128,
            wal_ttl_seconds: 0,
            wal_size_limit_mb: 1024,
            commit_delay: Duration::ZERO,
        }
    }
}

/// An [`Engine`] on one RocksDB database.
pub struct RocksEngine {
    db: DB,
    path: PathBuf,
    /// RocksDB column family id → role, indexed by id.
    cf_by_id: Vec<Option<Cf>>,
    group_commit: GroupCommit,
}

impl std::fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksEngine")
            .field("path", &self.path)
            .finish()
    }
}

fn io_error(e: rocksdb::Error) -> StorageError {
    match e.kind() {
        rocksdb::ErrorKind::Corruption => StorageError::InvalidData(e.into_string()),
        rocksdb::ErrorKind::InvalidArgument => StorageError::InvalidInput(e.into_string()),
        _ => StorageError::Io(e.into_string()),
    }
}

impl RocksEngine {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path, options: &RocksOptions) -> Result<Self> {
        // Few shards, so that an SST's filter and index blocks (a few MB for a full 64 MB
        // file) fit one: RocksDB's default of a shard per 2 MB of 128 MB would leave a big
        // file's filter uncached, read from disk by every seek.
        let mut cache_opts = LruCacheOptions::default();
        cache_opts.set_capacity(options.block_cache_mb << 20);
        cache_opts.set_num_shard_bits(2);
        let cache = Cache::new_lru_cache_opts(&cache_opts);
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
        db_opts.increase_parallelism(cores);
        db_opts.set_max_background_jobs(cores.clamp(2, 8));
        db_opts.set_bytes_per_sync(1 << 20);
        // The WAL is written to its file only when a commit flushes it (`FlushWAL`, synced):
        // a statement's writes are appended in memory, with no write(2) each. Nothing durable
        // depends on them before a synced write, which flushes everything appended before it.
        db_opts.set_manual_wal_flush(true);
        db_opts.set_wal_ttl_seconds(options.wal_ttl_seconds);
        db_opts.set_wal_size_limit_mb(options.wal_size_limit_mb);
        let descriptors = Cf::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(*cf, &cache)));
        let db = DB::open_cf_descriptors(&db_opts, dir, descriptors).map_err(io_error)?;
        let mut engine = RocksEngine {
            db,
            path: dir.to_path_buf(),
            cf_by_id: Vec::new(),
            group_commit: GroupCommit::new(options.commit_delay),
        };
        engine.cf_by_id = engine.learn_cf_ids()?;
        Ok(engine)
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes every column family's memtable to SST files. The WAL files that held them move
    /// to the archive (or are deleted, with no WAL retention).
    pub fn flush(&self) -> Result<()> {
        let handles: Vec<&ColumnFamily> = Cf::ALL.iter().map(|cf| self.handle(*cf)).collect();
        self.db
            .flush_cfs_opt(&handles, &rocksdb::FlushOptions::default())
            .map_err(io_error)
    }

    /// Counters of the group commit queue (batches, groups, fsyncs).
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        self.group_commit.stats()
    }

    fn handle(&self, cf: Cf) -> &ColumnFamily {
        // Every Cf is created at open, so the handle exists.
        self.db
            .cf_handle(cf.name())
            .unwrap_or_else(|| unreachable!("column family {cf} is created at open"))
    }

    /// RocksDB reports column families in WAL batches by id. Put one key per family into a
    /// batch (never written) and read back the ids RocksDB stamped on them.
    fn learn_cf_ids(&self) -> Result<Vec<Option<Cf>>> {
        let mut probe = rocksdb::WriteBatch::default();
        for cf in Cf::ALL {
            probe.put_cf(self.handle(cf), [cf.index() as u8], []);
        }
        let mut decoder = BatchDecoder::default();
        probe.iterate_cf(&mut decoder);
        let mut by_id = Vec::new();
        for (id, op) in decoder.ops {
            let WriteOp::Put { key, .. } = op else {
                unreachable!("the probe holds puts only")
            };
            let id = id as usize;
            if by_id.len() <= id {
                by_id.resize(id + 1, None);
            }
            by_id[id] = Some(Cf::ALL[key[0] as usize]);
        }
        Ok(by_id)
    }

    fn iterator(&self, cf: Cf, range: &KeyRange, mode: IteratorMode) -> ScanIter<'_> {
        self.iterator_opts(cf, range, mode, false)
    }

    /// A scan of `range`; `one_row` scans one row's versions in `rows` with the prefix filters
    /// (the range starts at the row's versions prefix), everything else in total order.
    fn iterator_opts(
        &self,
        cf: Cf,
        range: &KeyRange,
        mode: IteratorMode,
        one_row: bool,
    ) -> ScanIter<'_> {
        let (lower, upper) = range.to_half_open();
        if let (Some(l), Some(u)) = (&lower, &upper) {
            if l >= u {
                return Box::new(std::iter::empty());
            }
        }
        let mut read_opts = ReadOptions::default();
        // `rows` has a prefix extractor: a seek honours its filters only where asked.
        let seek = match &lower {
            Some(prefix) if one_row => {
                read_opts.set_prefix_same_as_start(true);
                Some(keys::first_row_version(prefix))
            }
            _ => {
                read_opts.set_total_order_seek(true);
                None
            }
        };
        if let Some(lower) = lower {
            read_opts.set_iterate_lower_bound(lower);
        }
        if let Some(upper) = upper {
            read_opts.set_iterate_upper_bound(upper);
        }
        let mut raw = self.db.raw_iterator_cf_opt(self.handle(cf), read_opts);
        let forward = match (mode, seek) {
            (IteratorMode::End, _) => {
                raw.seek_to_last();
                false
            }
            (_, Some(key)) => {
                raw.seek(key);
                true
            }
            _ => {
                raw.seek_to_first();
                true
            }
        };
        Box::new(Lazy {
            raw,
            forward,
            started: false,
            done: false,
        })
    }

    /// Writes one group of batches as one RocksDB batch; returns the group's last LSN.
    fn write_group(&self, batches: &[WriteBatch], sync: bool) -> Result<Lsn> {
        let mut raw = rocksdb::WriteBatch::default();
        for op in batches.iter().flat_map(|b| &b.ops) {
            match op {
                WriteOp::Put { cf, key, value } => raw.put_cf(self.handle(*cf), key, value),
                WriteOp::Delete { cf, key } => raw.delete_cf(self.handle(*cf), key),
            }
        }
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(sync);
        self.db.write_opt(raw, &write_opts).map_err(io_error)?;
        Ok(self.db.latest_sequence_number())
    }

    /// Turns a batch read from the WAL into the neutral form.
    fn decode_batch(&self, raw: &rocksdb::WriteBatch) -> Result<WriteBatch> {
        let mut decoder = BatchDecoder::default();
        raw.iterate_cf(&mut decoder);
        if let Some(e) = decoder.error {
            return Err(e);
        }
        let ops = decoder
            .ops
            .into_iter()
            .map(|(id, op)| {
                let cf = self
                    .cf_by_id
                    .get(id as usize)
                    .copied()
                    .flatten()
                    .ok_or_else(|| {
                        crate::errdata!("WAL batch names unknown column family id {id}")
                    })?;
                Ok(match op {
                    WriteOp::Put { key, value, .. } => WriteOp::Put { cf, key, value },
                    WriteOp::Delete { key, .. } => WriteOp::Delete { cf, key },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(WriteBatch { ops, sync: false })
    }
}

/// A scan that steps the RocksDB iterator only when the next item is asked for. (The crate's
/// iterator steps right after handing out an item: a point read that stops at the row's
/// newest version would pay a step over the tombstones of the older ones it never looks at.)
struct Lazy<'a> {
    raw: rocksdb::DBRawIterator<'a>,
    forward: bool,
    started: bool,
    done: bool,
}

impl Iterator for Lazy<'_> {
    type Item = Result<super::KeyValue>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.started {
            if self.forward {
                self.raw.next();
            } else {
                self.raw.prev();
            }
        }
        self.started = true;
        match self.raw.item() {
            Some((key, value)) => Some(Ok((key.to_vec(), value.to_vec()))),
            None => {
                self.done = true;
                self.raw.status().err().map(|e| Err(io_error(e)))
            }
        }
    }
}

/// The WAL stream of [`RocksEngine::updates_since`]: checks that the batches are contiguous
/// (each starts right after the previous one ended) and reach at least the latest LSN of the
/// moment the stream was opened; a gap means WAL is missing.
struct WalStream<'a> {
    engine: &'a RocksEngine,
    wal: rocksdb::DBWALIterator,
    /// The first LSN of the next batch.
    expected: Lsn,
    latest: Lsn,
    done: bool,
}

impl Iterator for WalStream<'_> {
    type Item = Result<(Lsn, WriteBatch)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = match self.wal.next() {
            None if self.expected > self.latest => return None,
            None => Err(StorageError::WalUnavailable(self.expected - 1)),
            Some(Err(e)) => Err(io_error(e)),
            Some(Ok((first, _))) if first != self.expected => {
                Err(StorageError::WalUnavailable(self.expected - 1))
            }
            Some(Ok((first, raw))) => self.engine.decode_batch(&raw).map(|batch| {
                let last = first + batch.len() as Lsn - 1;
                self.expected = last + 1;
                (last, batch)
            }),
        };
        self.done = result.is_err();
        Some(result)
    }
}

/// Per column family options: compression, bloom filters, the shared block cache.
fn cf_options(cf: Cf, cache: &Cache) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_format_version(5);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    // Bloom filters: whole-key for point lookups (txn status and catalog reads are gets);
    // for `rows`, prefix filters on a key's row (below), which serve its gets too.
    table.set_bloom_filter(10.0, false);
    if cf == Cf::Rows {
        table.set_whole_key_filtering(false);
    }
    let mut opts = Options::default();
    if cf == Cf::Rows {
        // Prefix filters on the row a key is a version of: a point read skips the memtable
        // and the SST files that hold no version of its row (whole-key filters stay, for
        // reads of one version by its key).
        opts.set_prefix_extractor(SliceTransform::create(
            "rxc.row_versions",
            keys::row_versions_prefix,
            Some(keys::is_row_key),
        ));
        opts.set_memtable_prefix_bloom_ratio(0.05);
    }
    opts.set_block_based_table_factory(&table);
    opts.set_level_compaction_dynamic_level_bytes(true);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_bottommost_compression_type(DBCompressionType::Zstd);
    if cf == Cf::TxnStatus {
        // Small values, read by point lookup, found most of the time.
        opts.set_optimize_filters_for_hits(true);
    }
    opts
}

/// Collects the operations of a RocksDB batch with their column family ids.
#[derive(Default)]
struct BatchDecoder {
    ops: Vec<(u32, WriteOp)>,
    error: Option<StorageError>,
}

impl WriteBatchIteratorCf for BatchDecoder {
    fn put_cf(&mut self, cf_id: u32, key: &[u8], value: &[u8]) {
        // The cf in the op is a placeholder until the id is mapped.
        self.ops.push((
            cf_id,
            WriteOp::Put {
                cf: Cf::Meta,
                key: key.to_vec(),
                value: value.to_vec(),
            },
        ));
    }

    fn delete_cf(&mut self, cf_id: u32, key: &[u8]) {
        self.ops.push((
            cf_id,
            WriteOp::Delete {
                cf: Cf::Meta,
                key: key.to_vec(),
            },
        ));
    }

    fn merge_cf(&mut self, cf_id: u32, _key: &[u8], _value: &[u8]) {
        self.error
            .get_or_insert_with(|| crate::errdata!("WAL batch holds a merge (cf id {cf_id})"));
    }
}

impl Engine for RocksEngine {
    fn name(&self) -> &'static str {
        "rocksdb"
    }

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.handle(cf), key).map_err(io_error)
    }

    fn scan(&self, cf: Cf, range: KeyRange) -> ScanIter<'_> {
        self.iterator(cf, &range, IteratorMode::Start)
    }

    fn scan_rev(&self, cf: Cf, range: KeyRange) -> ScanIter<'_> {
        self.iterator(cf, &range, IteratorMode::End)
    }

    fn scan_row_versions(&self, range: KeyRange) -> ScanIter<'_> {
        self.iterator_opts(Cf::Rows, &range, IteratorMode::Start, true)
    }

    fn write(&self, mut batch: WriteBatch) -> Result<Lsn> {
        if batch.is_empty() {
            return Ok(self.latest_lsn());
        }
        // Appended unsynced in the write queue; a synced batch then waits for a WAL fsync
        // outside it (see `GroupCommit::sync_through`).
        let sync = std::mem::take(&mut batch.sync);
        let lsn = self
            .group_commit
            .commit(batch, |batches, _| self.write_group(batches, false))?;
        if sync {
            self.group_commit.sync_through(
                lsn,
                || self.db.latest_sequence_number(),
                || self.db.flush_wal(true).map_err(io_error),
            )?;
        }
        Ok(lsn)
    }

    fn latest_lsn(&self) -> Lsn {
        self.db.latest_sequence_number()
    }

    fn updates_since(&self, lsn: Lsn) -> Result<UpdatesIter<'_>> {
        check_updates_since(lsn, self.latest_lsn())?;
        // The WAL reader sees only what is in the files (the WAL is flushed manually).
        self.db.flush_wal(false).map_err(io_error)?;
        // The binding skips batches that start at or before the LSN asked for: asking for `lsn`
        // positions RocksDB on the batch ending at `lsn`, which is skipped, so the stream starts
        // with the next batch. It must start at `lsn + 1`, or WAL is missing.
        let wal = self.db.get_updates_since(lsn).map_err(|e| match e.kind() {
            rocksdb::ErrorKind::NotFound => StorageError::WalUnavailable(lsn),
            _ => io_error(e),
        })?;
        Ok(Box::new(WalStream {
            engine: self,
            wal,
            expected: lsn + 1,
            latest: self.latest_lsn(),
            done: false,
        }))
    }

    fn checkpoint(&self, dir: &Path) -> Result<()> {
        if dir.exists() {
            return Err(crate::errinput!(
                "checkpoint directory {} already exists",
                dir.display()
            ));
        }
        self.db.flush_wal(false).map_err(io_error)?;
        Checkpoint::new(&self.db)
            .and_then(|c| c.create_checkpoint(dir))
            .map_err(io_error)
    }
}
