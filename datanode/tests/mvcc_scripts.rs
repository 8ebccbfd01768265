//! Golden scripts for the MVCC layer (`tests/scripts/mvcc/*`); the stress tests of concurrent
//! transactions are in `mvcc_stress.rs`. Every script runs against the memory engine and
//! against RocksDB (in a temporary directory), and both must produce the recorded output. Rewrite the expected output with
//! `UPDATE_GOLDENFILES=1 cargo test -p rxc-datanode --test mvcc_scripts` and review the diff.
//!
//! The runner plays a tiny GTM: a GXID counter (from 3) and the set of running GXIDs, from which
//! it takes snapshots. A prefix `tN:` names a transaction. Primary keys are one text value, rows
//! are text; an index of a table indexes fields of its rows (split at `.`, the field `null`
//! being NULL), so `row=ann.7` carries `ann` and `7`.
//!
//! ```text
//! tN: begin [rr] [readonly]        a writer (READ COMMITTED unless rr) or a reader; prints its
//!                                  GXID and snapshot
//! tN: snapshot                     a fresh snapshot (READ COMMITTED: the next statement)
//! tN: defer                        the next statement (of one row) begins without a snapshot
//!                                  of its own, with tN's current one as the older snapshot;
//!                                  the snapshot it takes when a decision needs one is the one
//!                                  the runner would hand out now, printed as "took xmin=..."
//! tN: insert TABLE pk=PK row=ROW   prints ok
//! tN: update TABLE pk=PK row=ROW   tN: delete TABLE pk=PK
//!                                  prints "ok, was OLD" (the version acted on) or "not found"
//! tN: lock TABLE pk=PK mode=update|share
//!                                  SELECT ... FOR UPDATE/SHARE: "locked ROW" or "not found"
//! tN: <insert|update|delete|lock ...> [bg]
//!                                  runs the statement on a thread of its own: prints its outcome
//!                                  if it ends at once, else "waiting for GXID" (deterministic:
//!                                  the runner asks the lock manager, no sleeping)
//! tN: blocked                      "waiting for GXID" while the background statement waits for
//!                                  a transaction in progress, else "done"
//! tN: await                        waits for the background statement and prints its outcome
//! tN: cancel                       sets the transaction's cancel flag (cleared by await)
//! tN: set_wait [lock_timeout=MS] [deadlock_timeout=MS] [statement_timeout=MS]
//!                                  wait options of the following statements (default: no lock
//!                                  timeout, deadlock check after 1000 ms, statement timeout of
//!                                  10 s so that a mistaken script fails instead of hanging)
//! tN: commit | abort | prepare     tN: commit_prepared | rollback_prepared   (also after restart)
//! tN: get TABLE PK                 tN: scan TABLE
//! tN: drop table=T | index=I       records that tN drops the table's rows or the index's
//!                                  entries (DROP TABLE, DROP INDEX): GC removes them once tN
//!                                  committed below global_xmin
//! index TABLE ID fields=F[,F] [unique] [nulls_not_distinct] [desc]
//!                                  declares a secondary index of TABLE (the runner is the
//!                                  catalog: later writes maintain it, GC knows it)
//! tN: build TABLE ID [bg]          builds the declared index over the table's rows in tN
//! tN: lookup TABLE ID VALUE[,VALUE] the rows tN finds through the index with these values
//! tN: range TABLE ID [from=V] [to=V] the rows tN finds through the index, bounds inclusive
//! waits                            the wait-for graph, once every background statement settled
//! sleep MS                         lets time pass (for timeouts that must not fire)
//! restart                          drops every transaction and the Mvcc, reopens the engine (the
//!                                  same object for memory), runs recover
//! gc [budget=N]                    GC with the oldest xmin of the open snapshots: dropped
//!                                  relations' keys, then a sweep of versions (budget each)
//! dump                             every row version, index entry and status, decoded
//! ```

use rxc_common::txn::{Gxid, Isolation, Snapshot};
use rxc_datanode::storage::gc::Relation;
use rxc_datanode::storage::index::{IndexCatalog, IndexRange, IndexSpec, TableIndexes};
use rxc_datanode::storage::keycode::{Order, Value};
use rxc_datanode::storage::keys::{Key, KeyPrefix};
use rxc_datanode::storage::locks::{RowLockMode, WaitOptions};
use rxc_datanode::storage::mvcc::{self, Mvcc, MvccError, SnapshotFetch, Transaction, TxnStatus};
use rxc_datanode::storage::{Cf, Engine, KeyRange, MemoryEngine, RocksEngine, RocksOptions};
use rxc_tests::TempDir;
use std::collections::{BTreeSet, HashMap};
use std::error::Error;
use std::fmt::Write as _;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Open = Box<dyn Fn() -> Arc<dyn Engine>>;

/// How long the runner lets a background statement take to settle or finish.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// The declared indexes of one table: each indexes some `.`-separated fields of the row.
#[derive(Clone, Debug, Default)]
struct TestIndexes {
    specs: Vec<IndexSpec>,
    fields: Vec<Vec<usize>>,
}

fn field_value(field: &str) -> Value {
    match field {
        "null" => Value::Null,
        f => Value::Text(f.to_string()),
    }
}

impl TableIndexes for TestIndexes {
    fn specs(&self) -> &[IndexSpec] {
        &self.specs
    }

    fn values(&self, row: &[u8]) -> Result<Vec<Vec<Value>>, rxc_datanode::storage::StorageError> {
        let row = String::from_utf8_lossy(row);
        let parts: Vec<&str> = row.split('.').collect();
        Ok(self
            .fields
            .iter()
            .map(|fields| {
                fields
                    .iter()
                    .map(|&f| parts.get(f).map_or(Value::Null, |p| field_value(p)))
                    .collect()
            })
            .collect())
    }
}

/// The runner's catalog of declared indexes, by table.
#[derive(Default)]
struct TestCatalog(HashMap<u64, TestIndexes>);

impl IndexCatalog for TestCatalog {
    fn table_indexes(
        &self,
        table_id: u64,
    ) -> Result<Option<Box<dyn TableIndexes + '_>>, MvccError> {
        Ok(self
            .0
            .get(&table_id)
            .map(|t| Box::new(t.clone()) as Box<dyn TableIndexes>))
    }
}

/// A statement that may wait.
#[derive(Clone, Debug)]
enum Op {
    Insert {
        table: u64,
        pk: String,
        row: String,
        indexes: TestIndexes,
    },
    Update {
        table: u64,
        pk: String,
        row: String,
        indexes: TestIndexes,
    },
    Delete {
        table: u64,
        pk: String,
    },
    Lock {
        table: u64,
        pk: String,
        mode: RowLockMode,
    },
    Build {
        table: u64,
        position: usize,
        indexes: TestIndexes,
    },
}

impl Op {
    fn run(&self, txn: &mut Transaction) -> Result<String, MvccError> {
        let key = |pk: &str| vec![Value::Text(pk.to_string())];
        let was = |old: Option<Vec<u8>>| match old {
            Some(old) => format!("ok, was {}", show_row(&old)),
            None => "not found".into(),
        };
        Ok(match self {
            Op::Insert {
                table,
                pk,
                row,
                indexes,
            } => {
                txn.insert(*table, &key(pk), row.clone().into_bytes(), indexes)?;
                "ok".into()
            }
            Op::Update {
                table,
                pk,
                row,
                indexes,
            } => was(txn.update(*table, &key(pk), row.clone().into_bytes(), indexes)?),
            Op::Delete { table, pk } => was(txn.delete(*table, &key(pk))?),
            Op::Lock { table, pk, mode } => match txn.lock_row(*table, &key(pk), *mode)? {
                Some(row) => format!("locked {}", show_row(&row)),
                None => "not found".into(),
            },
            Op::Build {
                table,
                position,
                indexes,
            } => {
                txn.build_index(*table, indexes, *position)?;
                "ok".into()
            }
        })
    }
}

/// A transaction's wait settings in the script.
struct WaitConfig {
    lock_timeout: Option<Duration>,
    deadlock_timeout: Duration,
    statement_timeout: Duration,
    cancel: Arc<AtomicBool>,
}

impl Default for WaitConfig {
    fn default() -> Self {
        WaitConfig {
            lock_timeout: None,
            deadlock_timeout: Duration::from_millis(1000),
            statement_timeout: SETTLE_LIMIT,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl WaitConfig {
    /// The options of a statement starting now.
    fn options(&self) -> WaitOptions {
        WaitOptions {
            lock_timeout: self.lock_timeout,
            deadlock_timeout: self.deadlock_timeout,
            cancel: Some(self.cancel.clone()),
            deadline: Some(Instant::now() + self.statement_timeout),
        }
    }
}

/// A statement running on a thread of its own, with its transaction.
struct Background {
    gxid: Gxid,
    xmin: Gxid,
    handle: JoinHandle<(Transaction, Result<String, MvccError>)>,
}

/// Where a background statement stands.
enum Settled {
    Finished,
    Waiting(Gxid),
}

struct Runner {
    open: Open,
    mvcc: Option<Mvcc>,
    /// The fake GTM: the next GXID and the running ones.
    next: u64,
    running: BTreeSet<Gxid>,
    txns: HashMap<String, Transaction>,
    waits: HashMap<String, WaitConfig>,
    background: HashMap<String, Background>,
    /// GXIDs of prepared transactions, by name.
    prepared: HashMap<String, Gxid>,
    /// Declared indexes.
    catalog: TestCatalog,
    /// Snapshots deferred statements took, to print.
    taken: Arc<std::sync::Mutex<Vec<Snapshot>>>,
}

impl Runner {
    fn new(open: Open) -> Self {
        let mvcc = Mvcc::new(open());
        Runner {
            open,
            mvcc: Some(mvcc),
            next: Gxid::FIRST.0,
            running: BTreeSet::new(),
            txns: HashMap::new(),
            waits: HashMap::new(),
            background: HashMap::new(),
            prepared: HashMap::new(),
            catalog: TestCatalog::default(),
            taken: Arc::default(),
        }
    }

    fn indexes(&self, table: u64) -> TestIndexes {
        self.catalog.0.get(&table).cloned().unwrap_or_default()
    }

    /// The position of index `id` among `table`'s declared indexes.
    fn index_position(&self, table: u64, id: u64) -> Result<usize, Box<dyn Error>> {
        self.indexes(table)
            .specs
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| format!("no index {id} on table {table}").into())
    }

    fn mvcc(&self) -> &Mvcc {
        self.mvcc.as_ref().expect("mvcc is open")
    }

    /// The oldest xmin any open transaction holds, or the next GXID.
    fn global_xmin(&self) -> Gxid {
        let held = self.txns.values().map(|t| t.snapshot().xmin);
        let busy = self.background.values().map(|b| b.xmin);
        held.chain(busy)
            .chain([self.running.first().copied().unwrap_or(Gxid(self.next))])
            .min()
            .unwrap_or(Gxid(self.next))
    }

    /// A snapshot for the transaction `own` (which does not list itself as running).
    fn snapshot(&self, own: Option<Gxid>) -> Snapshot {
        let xmax = Gxid(self.next);
        let xip: Vec<Gxid> = self
            .running
            .iter()
            .copied()
            .filter(|g| Some(*g) != own)
            .collect();
        let xmin = xip.first().copied().unwrap_or(xmax);
        let mut snapshot = Snapshot {
            xmin,
            xmax,
            xip,
            global_xmin: xmin,
        };
        snapshot.global_xmin = self.global_xmin().min(xmin);
        snapshot
    }

    fn idle(&self, name: &str) -> Result<(), Box<dyn Error>> {
        if self.background.contains_key(name) {
            return Err(format!("{name} has a statement running in the background").into());
        }
        Ok(())
    }

    fn txn(&mut self, name: &str) -> Result<&mut Transaction, Box<dyn Error>> {
        self.idle(name)?;
        self.txns
            .get_mut(name)
            .ok_or_else(|| format!("no transaction {name}").into())
    }

    fn take(&mut self, name: &str) -> Result<Transaction, Box<dyn Error>> {
        self.idle(name)?;
        self.waits.remove(name);
        self.txns
            .remove(name)
            .ok_or_else(|| format!("no transaction {name}").into())
    }

    /// Sets the wait options of `name` for a statement starting now.
    fn start_statement(&mut self, name: &str) -> Result<(), Box<dyn Error>> {
        let options = self.waits.entry(name.to_string()).or_default().options();
        self.txn(name)?.set_wait(options);
        Ok(())
    }

    /// Waits until the background statement of `name` has finished, or waits for a
    /// transaction still in progress (a state that lasts until the script changes it).
    fn settle(&self, name: &str) -> Result<Settled, Box<dyn Error>> {
        let background = self
            .background
            .get(name)
            .ok_or_else(|| format!("{name} has no background statement"))?;
        let limit = Instant::now() + SETTLE_LIMIT;
        while Instant::now() < limit {
            if background.handle.is_finished() {
                return Ok(Settled::Finished);
            }
            if let Some(holder) = self.mvcc().lock_manager().waiting_for(background.gxid) {
                if TxnStatus::in_progress(self.mvcc().status(holder)?) {
                    return Ok(Settled::Waiting(holder));
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(format!("{name}'s background statement neither finishes nor waits").into())
    }

    /// Waits for the background statement of `name` to finish and returns its outcome.
    fn join(&mut self, name: &str) -> Result<Result<String, MvccError>, Box<dyn Error>> {
        let limit = Instant::now() + SETTLE_LIMIT;
        let background = self
            .background
            .get(name)
            .ok_or_else(|| format!("{name} has no background statement"))?;
        while !background.handle.is_finished() {
            if Instant::now() > limit {
                return Err(format!("{name}'s background statement is still blocked").into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let background = self.background.remove(name).expect("checked above");
        let (txn, result) = background
            .handle
            .join()
            .map_err(|_| format!("{name}'s background statement panicked"))?;
        self.txns.insert(name.to_string(), txn);
        if let Some(wait) = self.waits.get(name) {
            wait.cancel.store(false, Ordering::Relaxed);
        }
        Ok(result)
    }
}

fn show_snapshot(s: &Snapshot) -> String {
    let xip: Vec<String> = s.xip.iter().map(|g| g.to_string()).collect();
    format!("xmin={} xmax={} xip=[{}]", s.xmin, s.xmax, xip.join(","))
}

fn show_row(row: &[u8]) -> String {
    String::from_utf8_lossy(row).into_owned()
}

fn show_pk(pk: &[Value]) -> String {
    let parts: Vec<String> = pk
        .iter()
        .map(|v| match v {
            Value::Text(s) => s.clone(),
            v => format!("{v:?}"),
        })
        .collect();
    parts.join(",")
}

fn mvcc_err(e: MvccError) -> Box<dyn Error> {
    let mut message = e.to_string();
    if let Some(code) = e.sqlstate() {
        message = format!("{message} [{code}]");
    }
    if let Some(detail) = e.detail() {
        message = format!("{message}\nDETAIL: {detail}");
    }
    message.into()
}

fn parse_ms(
    args: &mut goldenscript::ArgumentConsumer,
    key: &str,
) -> Result<Option<Duration>, Box<dyn Error>> {
    Ok(args.lookup_parse::<u64>(key)?.map(Duration::from_millis))
}

impl goldenscript::Runner for Runner {
    fn run(&mut self, command: &goldenscript::Command) -> Result<String, Box<dyn Error>> {
        let mut args = command.consume_args();
        let mut out = String::new();
        let name = command.prefix.clone();
        let named = || name.clone().ok_or("this command needs a tN: prefix");
        match command.name.as_str() {
            "begin" => {
                let name = named()?;
                let (mut rr, mut readonly) = (false, false);
                for arg in args.rest_pos() {
                    match arg.value.as_str() {
                        "rr" => rr = true,
                        "readonly" => readonly = true,
                        other => return Err(format!("unknown begin option {other}").into()),
                    }
                }
                let txn = if readonly {
                    let snapshot = self.snapshot(None);
                    writeln!(out, "readonly {}", show_snapshot(&snapshot))?;
                    self.mvcc().read_only(snapshot)
                } else {
                    let gxid = Gxid(self.next);
                    self.next += 1;
                    let snapshot = self.snapshot(Some(gxid));
                    self.running.insert(gxid);
                    let isolation = if rr {
                        Isolation::RepeatableRead
                    } else {
                        Isolation::ReadCommitted
                    };
                    writeln!(out, "gxid={gxid} {}", show_snapshot(&snapshot))?;
                    self.mvcc().begin(gxid, snapshot, isolation)
                };
                self.waits.insert(name.clone(), WaitConfig::default());
                self.txns.insert(name, txn);
            }
            "snapshot" => {
                let name = named()?;
                let own = self.txn(&name)?.gxid();
                let snapshot = self.snapshot(own);
                writeln!(out, "{}", show_snapshot(&snapshot))?;
                self.txn(&name)?.set_snapshot(snapshot).map_err(mvcc_err)?;
            }
            "drop" => {
                let name = named()?;
                let relation = match (
                    args.lookup_parse::<u64>("table")?,
                    args.lookup_parse::<u64>("index")?,
                ) {
                    (Some(t), None) => Relation::Table(t),
                    (None, Some(i)) => Relation::Index(i),
                    _ => return Err("drop needs table=T or index=I".into()),
                };
                self.txn(&name)?.drop_relation(relation).map_err(mvcc_err)?;
                writeln!(out, "ok")?;
            }
            "defer" => {
                let name = named()?;
                let own = self.txn(&name)?.gxid();
                let fresh = self.snapshot(own);
                let stale = self.txn(&name)?.snapshot().clone();
                let taken = self.taken.clone();
                let fetch: SnapshotFetch = Arc::new(move || {
                    taken.lock().expect("taken").push(fresh.clone());
                    Ok(fresh.clone())
                });
                let txn = self.txn(&name)?;
                txn.defer_snapshot(stale, fetch).map_err(mvcc_err)?;
                txn.one_row_statement();
            }
            "set_wait" => {
                let name = named()?;
                let wait = self.waits.entry(name).or_default();
                wait.lock_timeout = parse_ms(&mut args, "lock_timeout")?.or(wait.lock_timeout);
                if let Some(t) = parse_ms(&mut args, "deadlock_timeout")? {
                    wait.deadlock_timeout = t;
                }
                if let Some(t) = parse_ms(&mut args, "statement_timeout")? {
                    wait.statement_timeout = t;
                }
            }
            "insert" | "update" | "delete" | "lock" | "build" => {
                let name = named()?;
                let table: u64 = args.next_pos().ok_or("TABLE needed")?.parse()?;
                let indexes = self.indexes(table);
                let op = if command.name == "build" {
                    let id: u64 = args.next_pos().ok_or("ID needed")?.parse()?;
                    Op::Build {
                        table,
                        position: self.index_position(table, id)?,
                        indexes,
                    }
                } else {
                    let pk: String = args.lookup_parse("pk")?.ok_or("pk= needed")?;
                    let row: Option<String> = args.lookup_parse("row")?;
                    let row = || row.clone().ok_or("row= needed");
                    match command.name.as_str() {
                        "insert" => Op::Insert {
                            table,
                            pk,
                            row: row()?,
                            indexes,
                        },
                        "update" => Op::Update {
                            table,
                            pk,
                            row: row()?,
                            indexes,
                        },
                        "delete" => Op::Delete { table, pk },
                        _ => {
                            let mode = match args.lookup("mode").map(|a| a.value.as_str()) {
                                Some("update") => RowLockMode::Update,
                                Some("share") => RowLockMode::Share,
                                other => {
                                    return Err(
                                        format!("mode=update|share needed, not {other:?}").into()
                                    )
                                }
                            };
                            Op::Lock { table, pk, mode }
                        }
                    }
                };
                self.start_statement(&name)?;
                if command.tags.contains("bg") {
                    self.idle(&name)?;
                    let mut txn = self.txns.remove(&name).ok_or("no such transaction")?;
                    let gxid = txn.gxid().ok_or("a background statement needs a writer")?;
                    let xmin = txn.snapshot().xmin;
                    let handle = std::thread::spawn(move || {
                        let result = op.run(&mut txn);
                        (txn, result)
                    });
                    self.background
                        .insert(name.clone(), Background { gxid, xmin, handle });
                    match self.settle(&name)? {
                        Settled::Waiting(holder) => writeln!(out, "waiting for {holder}")?,
                        Settled::Finished => {
                            writeln!(out, "{}", self.join(&name)?.map_err(mvcc_err)?)?
                        }
                    }
                } else {
                    let result = op.run(self.txn(&name)?).map_err(mvcc_err)?;
                    writeln!(out, "{result}")?;
                }
            }
            "blocked" => match self.settle(&named()?)? {
                Settled::Waiting(holder) => writeln!(out, "waiting for {holder}")?,
                Settled::Finished => writeln!(out, "done")?,
            },
            "await" => {
                let result = self.join(&named()?)?.map_err(mvcc_err)?;
                writeln!(out, "{result}")?;
            }
            "cancel" => {
                let name = named()?;
                let wait = self.waits.get(&name).ok_or("no such transaction")?;
                wait.cancel.store(true, Ordering::Relaxed);
            }
            "waits" => {
                let names: Vec<String> = self.background.keys().cloned().collect();
                for name in names {
                    self.settle(&name)?;
                }
                let graph = self.mvcc().lock_manager().wait_for_graph();
                if graph.is_empty() {
                    writeln!(out, "no waits")?;
                }
                for (waiter, holder) in graph {
                    writeln!(out, "{waiter} waits for {holder}")?;
                }
            }
            "sleep" => {
                let ms: u64 = args.next_pos().ok_or("MS needed")?.parse()?;
                std::thread::sleep(Duration::from_millis(ms));
            }
            "get" => {
                let name = named()?;
                let table: u64 = args.next_pos().ok_or("TABLE needed")?.parse()?;
                let pk = args.next_pos().ok_or("PK needed")?.value.clone();
                let row = self
                    .txn(&name)?
                    .get(table, &[Value::Text(pk.clone())])
                    .map_err(mvcc_err)?;
                writeln!(
                    out,
                    "{pk} → {}",
                    row.as_deref().map_or("None".into(), show_row)
                )?;
            }
            "scan" => {
                let name = named()?;
                let table: u64 = args.next_pos().ok_or("TABLE needed")?.parse()?;
                for (pk, row) in self.txn(&name)?.scan(table).map_err(mvcc_err)? {
                    writeln!(out, "{} → {}", show_pk(&pk), show_row(&row))?;
                }
            }
            "commit" | "abort" | "prepare" => {
                let name = named()?;
                let txn = self.take(&name)?;
                let gxid = txn.gxid();
                let after = txn.commit_after().to_vec();
                if command.name != "abort" && !after.is_empty() {
                    // The GTM must learn of these commits first (see Transaction::commit_after).
                    if let Some(g) = after.iter().find(|g| self.running.contains(g)) {
                        return Err(format!("{g} must reach the GTM before {name}").into());
                    }
                    let list: Vec<String> = after.iter().map(|g| g.to_string()).collect();
                    writeln!(out, "commit after {}", list.join(","))?;
                }
                match command.name.as_str() {
                    "commit" => txn.commit(),
                    "abort" => txn.abort(),
                    _ => txn.prepare(),
                }
                .map_err(mvcc_err)?;
                if let Some(gxid) = gxid {
                    if command.name == "prepare" {
                        self.prepared.insert(name, gxid);
                    } else {
                        self.running.remove(&gxid);
                    }
                }
            }
            "commit_prepared" | "rollback_prepared" => {
                let name = named()?;
                let gxid = *self.prepared.get(&name).ok_or("not prepared")?;
                if command.name == "commit_prepared" {
                    self.mvcc().commit_prepared(gxid)
                } else {
                    self.mvcc().rollback_prepared(gxid)
                }
                .map_err(mvcc_err)?;
                self.running.remove(&gxid);
            }
            "restart" => {
                if !self.background.is_empty() {
                    return Err("background statements still run".into());
                }
                // Open transactions die with the node; prepared ones survive.
                for txn in std::mem::take(&mut self.txns).into_values() {
                    if let Some(gxid) = txn.gxid() {
                        self.running.remove(&gxid);
                    }
                }
                self.waits.clear();
                self.mvcc = None;
                let mvcc = Mvcc::new((self.open)());
                let aborted = mvcc.recover().map_err(mvcc_err)?;
                let prepared = mvcc.prepared().map_err(mvcc_err)?;
                let list = |g: Vec<Gxid>| {
                    g.iter()
                        .map(|g| g.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                writeln!(
                    out,
                    "recovered: aborted=[{}] prepared=[{}]",
                    list(aborted),
                    list(prepared)
                )?;
                self.mvcc = Some(mvcc);
            }
            "gc" => {
                let budget = args.lookup_parse("budget")?.unwrap_or(1000);
                let global_xmin = self.global_xmin();
                let dropped = self
                    .mvcc()
                    .gc_dropped(global_xmin, budget)
                    .map_err(mvcc_err)?;
                let removed = self
                    .mvcc()
                    .gc(global_xmin, budget, &self.catalog)
                    .map_err(mvcc_err)?;
                write!(
                    out,
                    "global_xmin={global_xmin} removed={}",
                    removed.versions
                )?;
                if removed.entries > 0 {
                    write!(out, " entries={}", removed.entries)?;
                }
                if dropped > 0 {
                    write!(out, " dropped={dropped}")?;
                }
                writeln!(out)?;
            }
            "gc_dirty" => {
                let rows = args.lookup_parse("rows")?.unwrap_or(1000);
                let global_xmin = self.global_xmin();
                let removed = self
                    .mvcc()
                    .gc_dirty(global_xmin, rows, None, &self.catalog)
                    .map_err(mvcc_err)?;
                write!(
                    out,
                    "global_xmin={global_xmin} removed={} dirty={}",
                    removed.versions,
                    self.mvcc().dirty_rows()
                )?;
                if removed.entries > 0 {
                    write!(out, " entries={}", removed.entries)?;
                }
                writeln!(out)?;
            }
            "index" => {
                let table: u64 = args.next_pos().ok_or("TABLE needed")?.parse()?;
                let id: u64 = args.next_pos().ok_or("ID needed")?.parse()?;
                let fields: String = args.lookup_parse("fields")?.ok_or("fields= needed")?;
                let fields: Vec<usize> = fields
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
                let mut spec = IndexSpec {
                    id,
                    orders: vec![Order::Asc; fields.len()],
                    unique: false,
                    nulls_distinct: true,
                };
                for arg in args.rest_pos() {
                    match arg.value.as_str() {
                        "unique" => spec.unique = true,
                        "nulls_not_distinct" => spec.nulls_distinct = false,
                        "desc" => spec.orders = vec![Order::Desc; fields.len()],
                        other => return Err(format!("unknown index option {other}").into()),
                    }
                }
                let indexes = self.catalog.0.entry(table).or_default();
                indexes.specs.push(spec);
                indexes.fields.push(fields);
            }
            "lookup" | "range" => {
                let name = named()?;
                let table: u64 = args.next_pos().ok_or("TABLE needed")?.parse()?;
                let id: u64 = args.next_pos().ok_or("ID needed")?.parse()?;
                let range = if command.name == "lookup" {
                    let values = args.next_pos().ok_or("VALUE needed")?.value.clone();
                    IndexRange::equal(values.split(',').map(field_value).collect())
                } else {
                    let bound = |v: Option<String>| {
                        v.map_or(Bound::Unbounded, |v| Bound::Included(field_value(&v)))
                    };
                    IndexRange {
                        prefix: Vec::new(),
                        lower: bound(args.lookup_parse("from")?),
                        upper: bound(args.lookup_parse("to")?),
                    }
                };
                let position = self.index_position(table, id)?;
                let indexes = self.indexes(table);
                let rows = self
                    .txn(&name)?
                    .index_scan(table, &indexes, position, &range)
                    .map_err(mvcc_err)?;
                if rows.is_empty() {
                    writeln!(out, "no rows")?;
                }
                for (pk, row) in rows {
                    writeln!(out, "{} → {}", show_pk(&pk), show_row(&row))?;
                }
            }
            "dump" => {
                let engine = self.mvcc().engine().clone();
                for item in engine.scan_prefix(Cf::Meta, &KeyPrefix::Dropped.encode()) {
                    let (key, _) = item?;
                    let Key::Dropped { relation_id } = Key::decode(&key)? else {
                        return Err("not a dropped relation key".into());
                    };
                    writeln!(out, "dropped relation {relation_id}")?;
                }
                for item in engine.scan(Cf::Rows, KeyRange::all()) {
                    let (key, value) = item?;
                    let Key::Row {
                        table_id,
                        pk,
                        version,
                    } = Key::decode(&key)?
                    else {
                        return Err("not a row key".into());
                    };
                    let v = mvcc::decode_version(&value).map_err(mvcc_err)?;
                    let deleter = v.deleter.map_or("-".into(), |d| d.to_string());
                    write!(
                        out,
                        "row {table_id}/{} v{version} = {} deleter={deleter}",
                        show_pk(&pk),
                        show_row(&v.row)
                    )?;
                    if !v.lockers.is_empty() {
                        let lockers: Vec<String> = v
                            .lockers
                            .iter()
                            .map(|l| format!("{}:{}", l.gxid, l.mode))
                            .collect();
                        write!(out, " lockers=[{}]", lockers.join(","))?;
                    }
                    writeln!(out)?;
                }
                for item in engine.scan(Cf::Index, KeyRange::all()) {
                    let (key, _) = item?;
                    let Key::Index {
                        index_id,
                        values,
                        pk,
                        ..
                    } = Key::decode(&key)?
                    else {
                        return Err("not an index key".into());
                    };
                    writeln!(
                        out,
                        "index {index_id}/{} → {}",
                        show_pk(&values),
                        show_pk(&pk)
                    )?;
                }
                for item in engine.scan(Cf::TxnStatus, KeyRange::all()) {
                    let (key, value) = item?;
                    let Key::TxnStatus { gxid } = Key::decode(&key)? else {
                        return Err("not a status key".into());
                    };
                    let status = mvcc::decode_status(&value).map_err(mvcc_err)?;
                    writeln!(out, "status {gxid} = {status:?}")?;
                }
            }
            name => return Err(format!("unknown command {name}").into()),
        }
        args.reject_rest()?;
        let mut took = String::new();
        for snapshot in self.taken.lock().expect("taken").drain(..) {
            writeln!(took, "took {}", show_snapshot(&snapshot))?;
        }
        Ok(took + &out)
    }

    fn end_script(&mut self) -> Result<(), Box<dyn Error>> {
        if !self.background.is_empty() {
            let names: Vec<&String> = self.background.keys().collect();
            return Err(format!("background statements never awaited: {names:?}").into());
        }
        Ok(())
    }
}

fn scripts() -> Vec<PathBuf> {
    rxc_tests::script_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/mvcc"))
}

#[test]
fn mvcc_scripts() {
    for path in scripts() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let memory: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let mut memory = Runner::new(Box::new(move || memory.clone()));
        let dir = TempDir::new(&name);
        let db = dir.path().to_path_buf();
        let mut rocks = Runner::new(Box::new(move || {
            Arc::new(RocksEngine::open(&db, &RocksOptions::default()).unwrap())
        }));
        rxc_tests::golden_on_both(&path, &mut memory, &mut rocks, "rocksdb");
    }
}
