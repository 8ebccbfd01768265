//! Golden scripts for the storage engines (`tests/scripts/engine/*`). Every script runs against
//! the memory engine and against RocksDB (in a temporary directory), and both must produce the
//! recorded output. Rewrite the expected output with
//! `UPDATE_GOLDENFILES=1 cargo test -p rxc-datanode --test engine_scripts` and review the diff.
//!
//! Keys and values are byte strings; in quoted arguments `\xNN` is one byte. Output shows
//! printable ASCII as is and quotes anything else with `\xNN` escapes.
//!
//! ```text
//! write [sync=BOOL] CF.KEY=VALUE | CF.KEY ...   one batch: puts (=) and deletes → its LSN
//! get CF.KEY...                                  values (or None)
//! scan CF [from=K] [after=K] [to=K] [through=K] [prefix=P] [reverse]
//!                                                keys in [from, to) / (after, through] ...
//! dump                                           every column family
//! lsn                                            the latest LSN
//! updates_since LSN                              the WAL stream after LSN
//! put_row TABLE PK VERSION VALUE                 a row version under its keycode key (integer pk)
//! scan_rows TABLE [pk=PK]                        a table's row versions, keys decoded
//! ```
//!
//! Column families: `meta`, `rows`, `index`, `txn_status`.

use rxc_common::txn::Gxid;
use rxc_datanode::storage::keycode::Value;
use rxc_datanode::storage::keys::{Key, KeyPrefix};
use rxc_datanode::storage::{
    Cf, Engine, KeyRange, MemoryEngine, RocksEngine, RocksOptions, WriteBatch, WriteOp,
};
use rxc_tests::TempDir;
use std::error::Error;
use std::fmt::Write as _;
use std::ops::Bound;
use std::path::{Path, PathBuf};

struct Runner {
    engine: Box<dyn Engine>,
}

/// A script argument as bytes: each char is one byte (`\xNN` escapes give any byte).
fn bytes(s: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| format!("{c:?} is not a byte").into()))
        .collect()
}

/// Bytes for output: as is if plain, else quoted with escapes.
fn show(b: &[u8]) -> String {
    let plain = |c: &u8| c.is_ascii_alphanumeric() || b"_-./@".contains(c);
    if !b.is_empty() && b.iter().all(plain) {
        return String::from_utf8_lossy(b).into_owned();
    }
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'"' | b'\\' => write!(s, "\\{}", c as char).unwrap(),
            0x20..=0x7e => s.push(c as char),
            _ => write!(s, "\\x{c:02x}").unwrap(),
        }
    }
    s.push('"');
    s
}

/// Splits `cf.key` into the column family and the key.
fn cf_key(s: &str) -> Result<(Cf, Vec<u8>), Box<dyn Error>> {
    let (cf, key) = s
        .split_once('.')
        .ok_or(format!("expected CF.KEY, got {s:?}"))?;
    let cf = Cf::from_name(cf).ok_or(format!("unknown column family {cf:?}"))?;
    Ok((cf, bytes(key)?))
}

fn show_op(op: &WriteOp) -> String {
    match op {
        WriteOp::Put { cf, key, value } => format!("put {cf}.{}={}", show(key), show(value)),
        WriteOp::Delete { cf, key } => format!("delete {cf}.{}", show(key)),
    }
}

impl Runner {
    fn scan_output(
        &self,
        cf: Cf,
        range: KeyRange,
        reverse: bool,
    ) -> Result<String, Box<dyn Error>> {
        let iter = if reverse {
            self.engine.scan_rev(cf, range)
        } else {
            self.engine.scan(cf, range)
        };
        let mut out = String::new();
        for item in iter {
            let (key, value) = item?;
            writeln!(out, "{cf}.{} = {}", show(&key), show(&value))?;
        }
        Ok(out)
    }
}

impl goldenscript::Runner for Runner {
    fn run(&mut self, command: &goldenscript::Command) -> Result<String, Box<dyn Error>> {
        let mut args = command.consume_args();
        let mut out = String::new();
        match command.name.as_str() {
            "write" => {
                let mut batch = WriteBatch::new();
                batch.sync = args.lookup_parse("sync")?.unwrap_or(false);
                for arg in args.rest() {
                    match &arg.key {
                        Some(key) => {
                            let (cf, key) = cf_key(key)?;
                            batch.put(cf, key, bytes(&arg.value)?);
                        }
                        None => {
                            let (cf, key) = cf_key(&arg.value)?;
                            batch.delete(cf, key);
                        }
                    }
                }
                let lsn = self.engine.write(batch)?;
                writeln!(out, "lsn={lsn}")?;
            }
            "get" => {
                for arg in args.rest_pos() {
                    let (cf, key) = cf_key(&arg.value)?;
                    let value = self.engine.get(cf, &key)?;
                    let value = value.as_deref().map_or("None".to_string(), show);
                    writeln!(out, "{cf}.{} = {value}", show(&key))?;
                }
            }
            "scan" => {
                let (mut cf, mut range, mut reverse) = (None, KeyRange::all(), false);
                for arg in &command.args {
                    let value = || bytes(&arg.value);
                    match arg.key.as_deref() {
                        None if arg.value == "reverse" => reverse = true,
                        None if cf.is_none() => {
                            cf = Some(Cf::from_name(&arg.value).ok_or("unknown column family")?)
                        }
                        Some("from") => range.start = Bound::Included(value()?),
                        Some("after") => range.start = Bound::Excluded(value()?),
                        Some("to") => range.end = Bound::Excluded(value()?),
                        Some("through") => range.end = Bound::Included(value()?),
                        Some("prefix") => range = KeyRange::prefix(&value()?),
                        _ => return Err(format!("unexpected argument {arg:?}").into()),
                    }
                }
                let cf = cf.ok_or("scan needs a column family")?;
                return self.scan_output(cf, range, reverse);
            }
            "dump" => {
                for cf in Cf::ALL {
                    out.push_str(&self.scan_output(cf, KeyRange::all(), false)?);
                }
                return Ok(out);
            }
            "lsn" => writeln!(out, "lsn={}", self.engine.latest_lsn())?,
            "updates_since" => {
                let lsn = args
                    .next_pos()
                    .ok_or("updates_since needs an LSN")?
                    .parse()?;
                for item in self.engine.updates_since(lsn)? {
                    let (lsn, batch) = item?;
                    let ops: Vec<String> = batch.ops.iter().map(show_op).collect();
                    writeln!(out, "{lsn}: {}", ops.join(", "))?;
                }
            }
            "put_row" => {
                let mut num = || -> Result<i64, Box<dyn Error>> {
                    args.next_pos()
                        .ok_or("put_row TABLE PK VERSION VALUE")?
                        .parse()
                };
                let (table_id, pk, version) = (num()? as u64, num()?, num()? as u64);
                let value = args
                    .next_pos()
                    .ok_or("put_row needs a value")?
                    .value
                    .clone();
                let key = Key::Row {
                    table_id,
                    pk: vec![Value::Int(pk)],
                    version: Gxid(version),
                };
                let mut batch = WriteBatch::synced();
                batch.put(key.cf(), key.encode(), bytes(&value)?);
                writeln!(out, "lsn={}", self.engine.write(batch)?)?;
            }
            "scan_rows" => {
                let table_id: u64 = args.next_pos().ok_or("scan_rows TABLE")?.parse()?;
                let prefix = match args.lookup_parse::<i64>("pk")? {
                    Some(pk) => KeyPrefix::RowVersions {
                        table_id,
                        pk: vec![Value::Int(pk)],
                    },
                    None => KeyPrefix::Row { table_id },
                };
                for item in self.engine.scan_prefix(prefix.cf(), &prefix.encode()) {
                    let (key, value) = item?;
                    let Key::Row { pk, version, .. } = Key::decode(&key)? else {
                        return Err("not a row key".into());
                    };
                    writeln!(out, "{pk:?} version={version} = {}", show(&value))?;
                }
            }
            name => return Err(format!("unknown command {name}").into()),
        }
        args.reject_rest()?;
        Ok(out)
    }
}

fn scripts() -> Vec<PathBuf> {
    rxc_tests::script_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/engine"))
}

#[test]
fn engine_scripts() {
    for path in scripts() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut memory = Runner {
            engine: Box::new(MemoryEngine::new()),
        };
        let dir = TempDir::new(&name);
        let engine = RocksEngine::open(dir.path(), &RocksOptions::default()).unwrap();
        let mut rocks = Runner {
            engine: Box::new(engine),
        };
        rxc_tests::golden_on_both(&path, &mut memory, &mut rocks, "rocksdb");
    }
}
