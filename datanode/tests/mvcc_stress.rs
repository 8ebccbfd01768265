//! Stress tests of the MVCC layer: many threads of transactions against one node, on the
//! memory engine and on RocksDB, with deadlocks and serialization failures retried, while
//! readers check an invariant in every snapshot they take.
//!
//! - Transfers between accounts conserve the total (row locks, READ COMMITTED re-checks,
//!   REPEATABLE READ failures, commit order at the GTM).
//! - Inserts, updates and deletes of values under a unique index never leave two live rows
//!   with one value, in any snapshot, and the index finds every row by its value.
//!
//! Half the READ COMMITTED statements (each of one row) begin without a snapshot of their own
//! ([`Transaction::defer_snapshot`], with the newest snapshot handed out as the older one) and
//! fetch one only when a decision needs it.

use rxc_common::txn::{Gxid, Isolation, Snapshot};
use rxc_datanode::storage::index::{IndexCatalog, IndexRange, IndexSpec, NoIndexes, TableIndexes};
use rxc_datanode::storage::keycode::{Order, Value};
use rxc_datanode::storage::locks::{RowLockMode, WaitOptions};
use rxc_datanode::storage::mvcc::{Mvcc, MvccError, SnapshotFetch, Transaction};
use rxc_datanode::storage::{Engine, MemoryEngine, RocksEngine, RocksOptions, StorageError};
use rxc_tests::TempDir;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The GTM of the stress test: GXIDs and snapshots for many threads.
#[derive(Default)]
struct SharedGtm {
    /// The last GXID handed out and the running ones.
    state: Mutex<(u64, BTreeSet<Gxid>)>,
    /// Signalled when a transaction ends.
    ended: std::sync::Condvar,
    /// The newest snapshot handed out.
    newest: Mutex<Option<Snapshot>>,
    /// Statements begun without a snapshot, and how many of them fetched one.
    deferred: AtomicUsize,
    fetched: Arc<AtomicUsize>,
}

impl SharedGtm {
    fn begin(&self) -> (Gxid, Snapshot) {
        let mut state = self.state.lock().unwrap();
        state.0 = state.0.max(Gxid::FIRST.0 - 1) + 1;
        let gxid = Gxid(state.0);
        state.1.insert(gxid);
        drop(state);
        (gxid, self.snapshot(Some(gxid)))
    }

    fn snapshot(&self, own: Option<Gxid>) -> Snapshot {
        let state = self.state.lock().unwrap();
        let xmax = Gxid(state.0.max(Gxid::FIRST.0 - 1) + 1);
        let xip: Vec<Gxid> = state
            .1
            .iter()
            .copied()
            .filter(|g| Some(*g) != own)
            .collect();
        let xmin = xip.first().copied().unwrap_or(xmax);
        let snapshot = Snapshot {
            xmin,
            xmax,
            xip,
            global_xmin: xmin,
        };
        drop(state);
        let mut newest = self.newest.lock().unwrap();
        if newest.as_ref().is_none_or(|n| n.xmax <= snapshot.xmax) {
            *newest = Some(snapshot.clone());
        }
        snapshot
    }

    /// Begins the next statement of `txn` (READ COMMITTED) with a fresh snapshot, or, when
    /// `defer`, without one: with the newest snapshot handed out as the older one, fetching a
    /// fresh one when a decision needs it.
    fn statement(self: &Arc<Self>, txn: &mut Transaction, defer: bool) {
        let own = txn.gxid();
        let stale = self.newest.lock().unwrap().clone();
        match stale {
            Some(stale) if defer => {
                self.deferred.fetch_add(1, Ordering::Relaxed);
                let gtm = self.clone();
                let fetch: SnapshotFetch = Arc::new(move || {
                    gtm.fetched.fetch_add(1, Ordering::Relaxed);
                    Ok(gtm.snapshot(own))
                });
                txn.defer_snapshot(stale, fetch).unwrap();
                // Each statement of these transactions locks, updates or inserts one row.
                txn.one_row_statement();
            }
            _ => txn.set_snapshot(self.snapshot(own)).unwrap(),
        }
    }

    /// A transaction of the stress tests: deadlocks found after 5 ms, no wait past 20 s.
    fn begin_in(&self, mvcc: &Mvcc, isolation: Isolation) -> (Gxid, Transaction) {
        let (gxid, snapshot) = self.begin();
        let mut txn = mvcc.begin(gxid, snapshot, isolation);
        txn.set_wait(WaitOptions {
            deadlock_timeout: Duration::from_millis(5),
            deadline: Some(Instant::now() + Duration::from_secs(20)),
            ..WaitOptions::default()
        });
        (gxid, txn)
    }

    /// Statements begun without a snapshot, and how many fetched one: both paths must have run.
    fn deferred_statements(&self) -> (usize, usize) {
        let deferred = self.deferred.load(Ordering::Relaxed);
        let fetched = self.fetched.load(Ordering::Relaxed);
        assert!(
            0 < fetched && fetched < deferred,
            "deferred statements: {deferred}, of which {fetched} fetched a snapshot"
        );
        (deferred, fetched)
    }

    /// Ends `gxid` once every transaction of `after` has ended (the commit order
    /// [`Transaction::commit_after`] asks for).
    fn end(&self, gxid: Gxid, after: &[Gxid]) {
        let mut state = self.state.lock().unwrap();
        while after.iter().any(|g| state.1.contains(g)) {
            state = self.ended.wait(state).unwrap();
        }
        state.1.remove(&gxid);
        self.ended.notify_all();
    }
}

/// A small xorshift generator: the stress test needs no crate for randomness.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const ACCOUNTS: u64 = 5;
const OPENING_BALANCE: i64 = 1000;

fn account(i: u64) -> Vec<Value> {
    vec![Value::Text(format!("acct{i}"))]
}

fn balance(row: Option<Vec<u8>>) -> i64 {
    let row = row.expect("accounts are never deleted");
    String::from_utf8(row).unwrap().parse().unwrap()
}

/// One transaction of the stress test: a transfer between two accounts (locked FOR UPDATE in
/// random order, then updated), or, one time in five, an audit that locks every account
/// FOR SHARE in random order and checks the total.
fn stress_step(
    txn: &mut Transaction,
    gtm: &Arc<SharedGtm>,
    rng: &mut Rng,
) -> Result<(), MvccError> {
    let statement = |txn: &mut Transaction, rng: &mut Rng| {
        if txn.isolation() == Isolation::ReadCommitted {
            gtm.statement(txn, rng.below(2) == 0);
        }
    };
    if rng.below(5) == 0 {
        let mut order: Vec<u64> = (0..ACCOUNTS).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut total = 0;
        for i in order {
            statement(txn, rng);
            total += balance(txn.lock_row(1, &account(i), RowLockMode::Share)?);
        }
        assert_eq!(
            total,
            ACCOUNTS as i64 * OPENING_BALANCE,
            "audit under share locks"
        );
        return Ok(());
    }
    let from = rng.below(ACCOUNTS);
    let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
    let amount = rng.below(100) as i64 + 1;
    statement(txn, rng);
    let from_balance = balance(txn.lock_row(1, &account(from), RowLockMode::Update)?);
    statement(txn, rng);
    let to_balance = balance(txn.lock_row(1, &account(to), RowLockMode::Update)?);
    for (i, old, new) in [
        (from, from_balance, from_balance - amount),
        (to, to_balance, to_balance + amount),
    ] {
        statement(txn, rng);
        let replaced = txn.update(1, &account(i), new.to_string().into_bytes(), &NoIndexes)?;
        // The row is locked by this transaction: the update acts on the version it locked.
        assert_eq!(balance(replaced), old);
    }
    Ok(())
}

/// Threads transfer money between a few accounts, in READ COMMITTED and REPEATABLE READ, with
/// deadlocks and serialization failures retried; readers check every snapshot sees the same
/// total. At the end the total is conserved and no thread hung.
fn stress(engine: Arc<dyn Engine>, threads: u64, steps: usize) {
    let started = Instant::now();
    let mvcc = Arc::new(Mvcc::new(engine));
    mvcc.recover().unwrap();
    let gtm = Arc::new(SharedGtm::default());
    let (gxid, snapshot) = gtm.begin();
    let mut setup = mvcc.begin(gxid, snapshot, Isolation::ReadCommitted);
    for i in 0..ACCOUNTS {
        let row = OPENING_BALANCE.to_string().into_bytes();
        setup.insert(1, &account(i), row, &NoIndexes).unwrap();
    }
    setup.commit().unwrap();
    gtm.end(gxid, &[]);

    let expected = ACCOUNTS as i64 * OPENING_BALANCE;
    let stop = Arc::new(AtomicBool::new(false));
    let (done, finished) = mpsc::channel();
    let mut handles = Vec::new();
    for t in 0..threads {
        let (mvcc, gtm, done) = (mvcc.clone(), gtm.clone(), done.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t + 1).wrapping_mul(0x2545_f491));
            let isolation = if t % 2 == 0 {
                Isolation::ReadCommitted
            } else {
                Isolation::RepeatableRead
            };
            let mut retries = 0;
            for _ in 0..steps {
                loop {
                    let (gxid, mut txn) = gtm.begin_in(&mvcc, isolation);
                    let result = stress_step(&mut txn, &gtm, &mut rng);
                    let after = match result {
                        Ok(()) => {
                            let after = txn.commit_after().to_vec();
                            txn.commit().unwrap();
                            after
                        }
                        Err(MvccError::Deadlock { .. } | MvccError::Serialization) => {
                            txn.abort().unwrap();
                            Vec::new()
                        }
                        Err(e) => panic!("transaction {gxid}: {e}"),
                    };
                    gtm.end(gxid, &after);
                    if result.is_ok() {
                        break;
                    }
                    retries += 1;
                }
            }
            done.send(retries).unwrap();
        }));
    }
    let reader = {
        let (mvcc, gtm, stop) = (mvcc.clone(), gtm.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let txn = mvcc.read_only(gtm.snapshot(None));
                let total: i64 = txn
                    .scan(1)
                    .unwrap()
                    .into_iter()
                    .map(|(_, row)| balance(Some(row)))
                    .sum();
                assert_eq!(total, expected, "a snapshot saw a transfer half done");
                reads += 1;
            }
            reads
        })
    };

    let limit = Instant::now() + Duration::from_secs(60);
    let mut retries = 0;
    for _ in 0..threads {
        let left = limit.saturating_duration_since(Instant::now());
        match finished.recv_timeout(left) {
            Ok(r) => retries += r,
            Err(_) => {
                let graph = mvcc.lock_manager().wait_for_graph();
                panic!("stress threads hung or failed; wait-for graph {graph:?}");
            }
        }
    }
    for handle in handles {
        handle.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    let txn = mvcc.read_only(gtm.snapshot(None));
    let rows = txn.scan(1).unwrap();
    assert_eq!(rows.len() as u64, ACCOUNTS);
    let total: i64 = rows.into_iter().map(|(_, row)| balance(Some(row))).sum();
    assert_eq!(total, expected);
    assert!(mvcc.lock_manager().wait_for_graph().is_empty());
    let (deferred, fetched) = gtm.deferred_statements();
    eprintln!(
        "stress: {threads} threads x {steps} steps, {retries} retries, {reads} audit reads, \
         {deferred} deferred statements ({fetched} fetched), {:?}",
        started.elapsed()
    );
}

#[test]
fn concurrent_transfers_conserve_the_total() {
    stress(Arc::new(MemoryEngine::new()), 8, 50);
    let dir = TempDir::new("mvcc-stress");
    let rocks = RocksEngine::open(dir.path(), &RocksOptions::default()).unwrap();
    stress(Arc::new(rocks), 8, 25);
}

/// The unique index of the second stress test: row `k` carries value `v` as the text `"v"`.
struct ValueIndex(Vec<IndexSpec>);

impl ValueIndex {
    fn new() -> Self {
        ValueIndex(vec![IndexSpec {
            id: 7,
            orders: vec![Order::Asc],
            unique: true,
            nulls_distinct: true,
        }])
    }
}

impl TableIndexes for ValueIndex {
    fn specs(&self) -> &[IndexSpec] {
        &self.0
    }

    fn values(&self, row: &[u8]) -> Result<Vec<Vec<Value>>, StorageError> {
        Ok(vec![vec![Value::Text(
            String::from_utf8_lossy(row).into_owned(),
        )]])
    }
}

impl IndexCatalog for ValueIndex {
    fn table_indexes(&self, _: u64) -> Result<Option<Box<dyn TableIndexes + '_>>, MvccError> {
        Ok(Some(Box::new(ValueIndex::new())))
    }
}

const KEYS: u64 = 16;
const VALUES: u64 = 10;

fn row_key(k: u64) -> Vec<Value> {
    vec![Value::Int(k as i64)]
}

/// One transaction of the unique stress test: a few inserts, updates and deletes of random
/// keys and values; violations, deadlocks and serialization failures end it (the caller
/// aborts), and one in four that succeed abort anyway.
fn unique_step(
    txn: &mut Transaction,
    gtm: &Arc<SharedGtm>,
    rng: &mut Rng,
) -> Result<(), MvccError> {
    let indexes = ValueIndex::new();
    for _ in 0..1 + rng.below(3) {
        if txn.isolation() == Isolation::ReadCommitted {
            gtm.statement(txn, rng.below(2) == 0);
        }
        let key = row_key(rng.below(KEYS));
        let value = rng.below(VALUES).to_string().into_bytes();
        // Let other transactions run between statements, so that they overlap.
        std::thread::yield_now();
        match rng.below(10) {
            0..=4 => txn.insert(1, &key, value, &indexes)?,
            5..=7 => {
                txn.update(1, &key, value, &indexes)?;
            }
            _ => {
                txn.delete(1, &key)?;
            }
        }
    }
    Ok(())
}

/// The values of the rows `txn` sees, checked unique, and each row found through the index.
fn check_unique(txn: &Transaction) -> usize {
    let indexes = ValueIndex::new();
    let rows = txn.scan(1).unwrap();
    let mut seen = BTreeSet::new();
    for (key, row) in &rows {
        let value = String::from_utf8_lossy(row).into_owned();
        assert!(
            seen.insert(value.clone()),
            "two rows with value {value}: {rows:?}"
        );
        let found = txn
            .index_scan(1, &indexes, 0, &IndexRange::equal(vec![Value::Text(value)]))
            .unwrap();
        assert_eq!(
            found,
            vec![(key.clone(), row.clone())],
            "index lookup of {row:?}"
        );
    }
    rows.len()
}

/// Threads insert, update and delete rows under a unique index in READ COMMITTED and
/// REPEATABLE READ; a reader checks that no snapshot sees a value twice and that the index
/// finds every row it sees. GC runs in between; at the end the index holds an entry for
/// every live row and no more than the versions need.
fn unique_stress(engine: Arc<dyn Engine>, threads: u64, steps: usize) {
    let started = Instant::now();
    let mvcc = Arc::new(Mvcc::new(engine));
    mvcc.recover().unwrap();
    let gtm = Arc::new(SharedGtm::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..threads {
        let (mvcc, gtm) = (mvcc.clone(), gtm.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (t + 1).wrapping_mul(0x9e37_79b9));
            let isolation = if t % 2 == 0 {
                Isolation::ReadCommitted
            } else {
                Isolation::RepeatableRead
            };
            let (mut committed, mut ordered) = (0, 0);
            for _ in 0..steps {
                let (gxid, mut txn) = gtm.begin_in(&mvcc, isolation);
                let result = unique_step(&mut txn, &gtm, &mut rng);
                let after = match result {
                    Ok(()) if rng.below(4) != 0 => {
                        let after = txn.commit_after().to_vec();
                        txn.commit().unwrap();
                        committed += 1;
                        ordered += usize::from(!after.is_empty());
                        after
                    }
                    Ok(())
                    | Err(
                        MvccError::UniqueViolation { .. }
                        | MvccError::Deadlock { .. }
                        | MvccError::Serialization,
                    ) => {
                        txn.abort().unwrap();
                        Vec::new()
                    }
                    Err(e) => panic!("transaction {gxid}: {e}"),
                };
                gtm.end(gxid, &after);
            }
            (committed, ordered)
        }));
    }
    let reader = {
        let (mvcc, gtm, stop) = (mvcc.clone(), gtm.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                check_unique(&mvcc.read_only(gtm.snapshot(None)));
                let xmin = gtm.snapshot(None).xmin;
                mvcc.gc(xmin, 50, &ValueIndex::new()).unwrap();
                reads += 1;
            }
            reads
        })
    };
    let (committed, ordered) = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .fold((0, 0), |(c, o), (c2, o2)| (c + c2, o + o2));
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    let rows = check_unique(&mvcc.read_only(gtm.snapshot(None)));
    // With nothing running, GC leaves each live row one version and one entry.
    let xmin = gtm.snapshot(None).xmin;
    while mvcc.gc(xmin, 1000, &ValueIndex::new()).unwrap().versions > 0 {}
    let entries = mvcc
        .engine()
        .scan(
            rxc_datanode::storage::Cf::Index,
            rxc_datanode::storage::KeyRange::all(),
        )
        .count();
    let versions = mvcc
        .engine()
        .scan(
            rxc_datanode::storage::Cf::Rows,
            rxc_datanode::storage::KeyRange::all(),
        )
        .count();
    assert_eq!((versions, entries), (rows, rows), "after GC");
    assert!(mvcc.lock_manager().wait_for_graph().is_empty());
    let (deferred, fetched) = gtm.deferred_statements();
    eprintln!(
        "unique stress: {threads} threads x {steps} steps, {committed} committed ({ordered} \
         after others they waited for or built on), {rows} rows, {reads} checked snapshots, \
         {deferred} deferred statements ({fetched} fetched), {:?}",
        started.elapsed()
    );
}

#[test]
fn concurrent_writers_keep_unique_values_unique() {
    unique_stress(Arc::new(MemoryEngine::new()), 8, 150);
    let dir = TempDir::new("mvcc-unique-stress");
    let rocks = RocksEngine::open(dir.path(), &RocksOptions::default()).unwrap();
    unique_stress(Arc::new(rocks), 8, 80);
}
