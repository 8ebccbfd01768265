//! What only the RocksDB engine can show: durability across reopen, the WAL stream from disk
//! (also after flushes), base backups by checkpoint, and group commit under concurrent synced
//! writers. Concurrent writers also run against the memory engine, for comparison.

use rxc_datanode::storage::{
    Cf, Engine, KeyRange, Lsn, MemoryEngine, RocksEngine, RocksOptions, StorageError, WriteBatch,
};
use rxc_tests::TempDir;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Barrier};

fn open(dir: &Path) -> RocksEngine {
    RocksEngine::open(dir, &RocksOptions::default()).unwrap()
}

fn put(engine: &dyn Engine, cf: Cf, key: &str, value: &str) -> Lsn {
    let mut batch = WriteBatch::synced();
    batch.put(cf, key, value);
    engine.write(batch).unwrap()
}

/// Every entry of every column family.
fn dump(engine: &dyn Engine) -> Vec<(Cf, Vec<u8>, Vec<u8>)> {
    Cf::ALL
        .iter()
        .flat_map(|&cf| {
            engine
                .scan(cf, KeyRange::all())
                .map(move |r| r.map(|(k, v)| (cf, k, v)).unwrap())
        })
        .collect()
}

/// The WAL stream after `lsn`, checked to be contiguous.
fn stream(engine: &dyn Engine, lsn: Lsn) -> Vec<(Lsn, WriteBatch)> {
    let batches: Vec<_> = engine
        .updates_since(lsn)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut end = lsn;
    for (lsn, batch) in &batches {
        assert_eq!(*lsn, end + batch.len() as Lsn, "stream not contiguous");
        end = *lsn;
    }
    batches
}

#[test]
fn data_and_wal_survive_reopen_and_flush() {
    let dir = TempDir::new("reopen");
    {
        let engine = open(dir.path());
        put(&engine, Cf::Meta, "epoch", "1");
        put(&engine, Cf::Rows, "r1", "a");
        engine.flush().unwrap();
        let mut batch = WriteBatch::new();
        batch.put(Cf::Rows, "r2", "b").delete(Cf::Rows, "r1");
        assert_eq!(engine.write(batch).unwrap(), 4);
    }
    let engine = open(dir.path());
    assert_eq!(engine.latest_lsn(), 4);
    assert_eq!(engine.get(Cf::Rows, b"r1").unwrap(), None);
    assert_eq!(engine.get(Cf::Rows, b"r2").unwrap(), Some(b"b".to_vec()));
    assert_eq!(engine.get(Cf::Meta, b"epoch").unwrap(), Some(b"1".to_vec()));
    // The flushed batches come from the WAL archive, the rest from the recovered log.
    let lsns: Vec<Lsn> = stream(&engine, 0).iter().map(|(lsn, _)| *lsn).collect();
    assert_eq!(lsns, vec![1, 2, 4]);
    assert_eq!(put(&engine, Cf::Rows, "r3", "c"), 5);
}

#[test]
fn without_retention_flushed_wal_is_unavailable() {
    let dir = TempDir::new("no-retention");
    let options = RocksOptions {
        wal_size_limit_mb: 0,
        wal_ttl_seconds: 0,
        ..RocksOptions::default()
    };
    let engine = RocksEngine::open(dir.path(), &options).unwrap();
    put(&engine, Cf::Rows, "a", "1");
    put(&engine, Cf::Rows, "b", "2");
    engine.flush().unwrap();
    put(&engine, Cf::Rows, "c", "3");
    let err = engine
        .updates_since(0)
        .and_then(|mut updates| updates.next().transpose())
        .unwrap_err();
    assert_eq!(err, StorageError::WalUnavailable(0));
    // The batches still in the live WAL stream as usual.
    assert_eq!(stream(&engine, 2).len(), 1);
}

#[test]
fn checkpoint_is_a_base_backup_the_stream_continues() {
    let dir = TempDir::new("primary");
    let backup_dir = TempDir::new("backup");
    // A checkpoint is made into a directory that does not exist yet.
    let backup = backup_dir.join("checkpoint");
    let primary = open(dir.path());
    put(&primary, Cf::Meta, "table1", "t");
    put(&primary, Cf::Rows, "k1", "v1");
    primary.checkpoint(&backup).unwrap();
    assert!(matches!(
        primary.checkpoint(&backup),
        Err(StorageError::InvalidInput(_))
    ));

    let mut batch = WriteBatch::synced();
    batch
        .put(Cf::Rows, "k2", "v2")
        .delete(Cf::Rows, "k1")
        .put(Cf::TxnStatus, "g", "c");
    primary.write(batch).unwrap();
    put(&primary, Cf::Index, "i", "k2");

    // The standby: open the checkpoint, then apply the stream after its LSN. Written in order,
    // each batch gets the LSN it had on the primary.
    let standby = open(&backup);
    assert_eq!(standby.latest_lsn(), 2);
    assert_eq!(standby.get(Cf::Rows, b"k1").unwrap(), Some(b"v1".to_vec()));
    for (lsn, batch) in stream(&primary, standby.latest_lsn()) {
        assert_eq!(standby.write(batch).unwrap(), lsn);
    }
    assert_eq!(dump(&standby), dump(&primary));
    assert_eq!(standby.latest_lsn(), primary.latest_lsn());
}

/// `writers` threads each write `per_writer` synced batches of two operations at once.
fn concurrent_writers(engine: Arc<dyn Engine>, writers: usize, per_writer: usize) {
    let barrier = Arc::new(Barrier::new(writers));
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (engine, barrier) = (engine.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..per_writer)
                    .map(|i| {
                        let mut batch = WriteBatch::synced();
                        let key = format!("w{w:02}-{i:03}");
                        batch
                            .put(Cf::Rows, key.clone(), "v")
                            .put(Cf::Index, key, "r");
                        engine.write(batch).unwrap()
                    })
                    .collect::<Vec<Lsn>>()
            })
        })
        .collect();
    let lsns: BTreeSet<Lsn> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let total = (writers * per_writer) as Lsn;
    // Every batch got its own LSN, the end of its two operations.
    assert_eq!(lsns, (1..=total).map(|i| 2 * i).collect());
    assert_eq!(engine.latest_lsn(), 2 * total);
    assert_eq!(engine.scan(Cf::Rows, KeyRange::all()).count() as Lsn, total);
    assert_eq!(
        engine.scan(Cf::Index, KeyRange::all()).count() as Lsn,
        total
    );
    // The stream holds every operation, in LSN order.
    let streamed: usize = stream(engine.as_ref(), 0)
        .iter()
        .map(|(_, b)| b.len())
        .sum();
    assert_eq!(streamed as Lsn, 2 * total);
}

#[test]
fn concurrent_synced_writers_share_fsyncs() {
    let dir = TempDir::new("group-commit");
    let engine = Arc::new(open(dir.path()));
    let (writers, per_writer) = (8, 25);
    concurrent_writers(engine.clone(), writers, per_writer);
    let stats = engine.group_commit_stats();
    let batches = (writers * per_writer) as u64;
    assert_eq!(stats.batches, batches);
    assert!(stats.synced_groups > 0, "{stats:?}");
    assert!(
        stats.synced_groups < batches,
        "every batch had its own fsync: {stats:?}"
    );
    // Whether writes also group in the queue depends on timing: a write appends to the WAL
    // buffer in memory (the WAL is flushed by the fsyncs), so it seldom waits for another.
    // The group commit unit tests force groups with a slow writer.
    // Each group is one RocksDB batch, so one batch of the WAL stream.
    assert_eq!(stream(engine.as_ref(), 0).len() as u64, stats.groups);
    eprintln!("{batches} synced batches from {writers} writers: {stats:?}");
}

#[test]
fn concurrent_writers_on_the_memory_engine() {
    concurrent_writers(Arc::new(MemoryEngine::new()), 8, 25);
}

/// The prefix filters of `rows`: a row's versions read through them are exactly what a full
/// scan finds, from the memtable and from SST files (flushed in two generations, so a row's
/// versions are spread over files), for rows whose keys are prefixes of others' bytes
/// ("a" < "a\0" < "ab") and for rows with no version at all.
#[test]
fn row_versions_through_prefix_filters_match_a_full_scan() {
    use rxc_common::txn::Gxid;
    use rxc_datanode::storage::keycode::Value;
    use rxc_datanode::storage::keys::{Key, KeyPrefix};
    let dir = TempDir::new("rxc-rocks-prefix");
    let engine = open(dir.path());
    let pks = ["a", "a\0", "ab", "b", "zz"];
    let write = |versions: std::ops::Range<u64>| {
        let mut batch = WriteBatch::new();
        for pk in pks {
            for v in versions.clone() {
                let key = Key::Row {
                    table_id: 7,
                    pk: vec![Value::Text(pk.into())],
                    version: Gxid(v),
                };
                batch.put(Cf::Rows, key.encode(), format!("{pk}@{v}"));
            }
        }
        engine.write(batch).unwrap();
    };
    write(1..4);
    engine.flush().unwrap();
    write(4..6);
    engine.flush().unwrap();
    write(6..8); // stays in the memtable
    let all: Vec<(Vec<u8>, Vec<u8>)> = engine
        .scan(Cf::Rows, KeyRange::all())
        .collect::<Result<_, _>>()
        .unwrap();
    for pk in pks.iter().copied().chain(["", "a\0\0", "c"]) {
        let prefix = KeyPrefix::RowVersions {
            table_id: 7,
            pk: vec![Value::Text(pk.into())],
        }
        .encode();
        let expected: Vec<_> = all
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && k.len() == prefix.len() + 8)
            .cloned()
            .collect();
        let got: Vec<_> = engine
            .scan_row_versions(KeyRange::prefix(&prefix))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, expected, "versions of {pk:?}");
        let newest_first: Vec<_> = got.iter().map(|(_, v)| v.clone()).collect();
        if pks.contains(&pk) {
            assert_eq!(newest_first.len(), 7, "{pk:?}");
            assert_eq!(newest_first[0], format!("{pk}@7").into_bytes());
        } else {
            assert!(newest_first.is_empty(), "{pk:?}");
        }
    }
}
