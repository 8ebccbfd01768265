//! Golden scripts for the MVCC layer (`tests/scripts/mvcc/*`). Every script runs against the
//! memory engine and against RocksDB (in a temporary directory), and both must produce the
//! recorded output. Rewrite the expected output with
//! `UPDATE_GOLDENFILES=1 cargo test -p rxc-datanode --test mvcc_scripts` and review the diff.
//!
//! The runner plays a tiny GTM: a GXID counter (from 3) and the set of running GXIDs, from which
//! it takes snapshots. A prefix `tN:` names a transaction. Primary keys are one text value, rows
//! are text.
//!
//! ```text
//! tN: begin [rr] [readonly]        a writer (READ COMMITTED unless rr) or a reader; prints its
//!                                  GXID and snapshot
//! tN: snapshot                     a fresh snapshot (READ COMMITTED: the next statement)
//! tN: insert TABLE pk=PK row=ROW   tN: update TABLE pk=PK row=ROW   tN: delete TABLE pk=PK
//! tN: get TABLE PK                 tN: scan TABLE
//! tN: commit | abort | prepare     tN: commit_prepared | rollback_prepared   (also after restart)
//! restart                          drops every transaction and the Mvcc, reopens the engine (the
//!                                  same object for memory), runs recover
//! gc [budget=N]                    GC with the oldest xmin of the open snapshots
//! dump                             every row version and status, decoded
//! ```

use rxc_common::txn::{Gxid, Isolation, Snapshot};
use rxc_datanode::storage::keycode::Value;
use rxc_datanode::storage::keys::Key;
use rxc_datanode::storage::mvcc::{self, Mvcc, MvccError, Transaction};
use rxc_datanode::storage::{Cf, Engine, KeyRange, MemoryEngine, RocksEngine, RocksOptions};
use rxc_tests::TempDir;
use std::collections::{BTreeSet, HashMap};
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Open = Box<dyn Fn() -> Arc<dyn Engine>>;

struct Runner {
    open: Open,
    mvcc: Option<Mvcc>,
    /// The fake GTM: the next GXID and the running ones.
    next: u64,
    running: BTreeSet<Gxid>,
    txns: HashMap<String, Transaction>,
    /// GXIDs of prepared transactions, by name.
    prepared: HashMap<String, Gxid>,
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
            prepared: HashMap::new(),
        }
    }

    fn mvcc(&self) -> &Mvcc {
        self.mvcc.as_ref().expect("mvcc is open")
    }

    /// The oldest xmin any open transaction holds, or the next GXID.
    fn global_xmin(&self) -> Gxid {
        let held = self.txns.values().map(|t| t.snapshot().xmin);
        held.chain([self.running.first().copied().unwrap_or(Gxid(self.next))])
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

    fn txn(&mut self, name: &str) -> Result<&mut Transaction, Box<dyn Error>> {
        self.txns
            .get_mut(name)
            .ok_or_else(|| format!("no transaction {name}").into())
    }

    fn take(&mut self, name: &str) -> Result<Transaction, Box<dyn Error>> {
        self.txns
            .remove(name)
            .ok_or_else(|| format!("no transaction {name}").into())
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
    match e.sqlstate() {
        Some(code) => format!("{e} [{code}]").into(),
        None => format!("{e}").into(),
    }
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
                self.txns.insert(name, txn);
            }
            "snapshot" => {
                let name = named()?;
                let own = self.txn(&name)?.gxid();
                let snapshot = self.snapshot(own);
                writeln!(out, "{}", show_snapshot(&snapshot))?;
                self.txn(&name)?.set_snapshot(snapshot).map_err(mvcc_err)?;
            }
            "insert" | "update" | "delete" => {
                let name = named()?;
                let table: u64 = args.next_pos().ok_or("TABLE needed")?.parse()?;
                let pk: String = args.lookup_parse("pk")?.ok_or("pk= needed")?;
                let pk = vec![Value::Text(pk)];
                let row: Option<String> = args.lookup_parse("row")?;
                let txn = self.txn(&name)?;
                let result = match command.name.as_str() {
                    "insert" => txn
                        .insert(table, &pk, row.ok_or("row= needed")?.into_bytes())
                        .map(|()| true),
                    "update" => txn.update(table, &pk, row.ok_or("row= needed")?.into_bytes()),
                    _ => txn.delete(table, &pk),
                };
                let found = result.map_err(mvcc_err)?;
                writeln!(out, "{}", if found { "ok" } else { "not found" })?;
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
                // Open transactions die with the node; prepared ones survive.
                for txn in std::mem::take(&mut self.txns).into_values() {
                    if let Some(gxid) = txn.gxid() {
                        self.running.remove(&gxid);
                    }
                }
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
                let removed = self.mvcc().gc(global_xmin, budget).map_err(mvcc_err)?;
                writeln!(out, "global_xmin={global_xmin} removed={removed}")?;
            }
            "dump" => {
                let engine = self.mvcc().engine().clone();
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
                    writeln!(
                        out,
                        "row {table_id}/{} v{version} = {} deleter={deleter}",
                        show_pk(&pk),
                        show_row(&v.row)
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
        Ok(out)
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
