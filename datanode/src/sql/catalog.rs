//! The datanode's catalog: table descriptors stored as rows of a system table in the MVCC
//! layer itself, so DDL is transactional and visible by snapshot like any other write
//! (`CREATE TABLE` in an open transaction is invisible to others until it commits).
//!
//! ```text
//!   table 1 (rxc_tables)      pk: [name]  →  postcard(Table)   (indexes inside the descriptor)
//!   table 2 (rxc_relations)   pk: [name]  →  postcard(owning table's name)
//!   meta "next_object_id"                  →  next table/index id (u64 BE), advanced in blocks
//! ```
//!
//! Object ids come from a counter in `meta`, reserved in blocks of [`ID_BLOCK`] with a
//! synced write, so a crash never hands out an id twice.
//!
//! Tables, primary keys and indexes share one namespace, as PostgreSQL's `pg_class` does:
//! every name a descriptor holds ([`Table::relation_names`]) is a row of `rxc_relations`,
//! written with the descriptor by [`insert_table`], [`update_table`] and [`delete_table`], so
//! two transactions creating one name conflict like any two inserts of one key (the second
//! waits for the first, then fails with 42P07), and `DROP INDEX` finds an index's table.

use super::table::{mvcc_error, RowIndexes};
use crate::storage::gc::Relation;
use crate::storage::index::{IndexCatalog, NoIndexes, TableIndexes};
use crate::storage::keycode::Value as KeyValue;
use crate::storage::keys::Key;
use crate::storage::locks::RowLockMode;
use crate::storage::mvcc::{self, Mvcc, MvccError, Transaction};
use crate::storage::{Cf, WriteBatch};
use rxc_common::sql::catalog::{Catalog, Table};
use rxc_common::sql::error::{Result, SqlError};
use rxc_common::sql::indexes::relation_exists as duplicate_relation;
use rxc_common::txn::Gxid;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The table id of the catalog's own table.
pub const CATALOG_TABLE_ID: u64 = 1;
/// The table id of the relation names.
pub const RELATIONS_TABLE_ID: u64 = 2;
/// The first id handed to user objects.
const FIRST_OBJECT_ID: u64 = 16384;
/// How many ids one durable write reserves.
const ID_BLOCK: u64 = 1000;
const NEXT_ID_KEY: &str = "next_object_id";

/// Hands out table and index ids.
pub struct IdAllocator {
    mvcc: Arc<Mvcc>,
    /// (next id, end of the reserved block)
    state: Mutex<(u64, u64)>,
}

impl IdAllocator {
    /// Reads the counter; the first id handed out is past everything reserved before.
    pub fn open(mvcc: Arc<Mvcc>) -> Result<IdAllocator> {
        let key = Key::Meta {
            name: NEXT_ID_KEY.into(),
        }
        .encode();
        let next = match mvcc.engine().get(Cf::Meta, &key).map_err(storage_error)? {
            Some(bytes) if bytes.len() == 8 => {
                u64::from_be_bytes(bytes.try_into().unwrap_or([0; 8]))
            }
            _ => FIRST_OBJECT_ID,
        };
        Ok(IdAllocator {
            mvcc,
            state: Mutex::new((next, next)),
        })
    }

    /// A new id.
    pub fn next(&self) -> Result<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 == state.1 {
            let end = state.1 + ID_BLOCK;
            let mut batch = WriteBatch::synced();
            let key = Key::Meta {
                name: NEXT_ID_KEY.into(),
            };
            batch.put(Cf::Meta, key.encode(), end.to_be_bytes().to_vec());
            self.mvcc.engine().write(batch).map_err(storage_error)?;
            state.1 = end;
        }
        let id = state.0;
        state.0 += 1;
        Ok(id)
    }
}

pub(crate) fn storage_error(e: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        rxc_common::sql::sqlstate::IO_ERROR,
        format!("storage error: {e}"),
    )
}

fn key(name: &str) -> Vec<KeyValue> {
    vec![KeyValue::Text(name.to_string())]
}

/// Decoded table descriptors shared by every session of a node, so that binding a statement
/// does not read and decode the catalog row of each table it names.
///
/// An entry is the newest committed descriptor of a table (its version has no deleter), with
/// its creator and the catalog epoch it was read at. The epoch moves whenever a transaction
/// that changed the catalog commits here; an entry of an older epoch is stale. A transaction
/// uses an entry only if it has not written the catalog itself and its snapshot counts the
/// entry's creator as finished — then the entry is exactly the version it would read.
#[derive(Debug, Default)]
pub struct CatalogCache {
    epoch: AtomicU64,
    tables: Mutex<HashMap<String, CachedTable>>,
}

#[derive(Debug)]
struct CachedTable {
    epoch: u64,
    creator: Gxid,
    table: Arc<Table>,
}

impl CatalogCache {
    /// Marks every entry stale: a transaction that changed the catalog committed.
    pub fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The catalog epoch: it moves whenever a transaction that changed the catalog commits.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The table called `name` as `txn` sees it, through the cache where that is exact; with
    /// the creator of its descriptor when that descriptor is the newest committed one (what
    /// any transaction that counts the creator as finished reads, until the epoch moves), or
    /// `None` when the answer is particular to `txn` (its own catalog writes, an older
    /// descriptor its snapshot still sees, no such table).
    fn lookup(&self, txn: &Transaction, name: &str) -> Result<(Option<Arc<Table>>, Option<Gxid>)> {
        if txn.has_written(CATALOG_TABLE_ID) {
            return Ok((get_table(txn, name)?.map(Arc::new), None));
        }
        let epoch = self.epoch();
        {
            let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = tables.get(name) {
                if c.epoch == epoch && txn.snapshot().is_finished(c.creator) {
                    return Ok((Some(c.table.clone()), Some(c.creator)));
                }
            }
        }
        let Some(version) = txn
            .get_version(CATALOG_TABLE_ID, &key(name))
            .map_err(mvcc_error)?
        else {
            return Ok((None, None));
        };
        let table = Arc::new(decode_table(name, &version.row)?);
        if version.deleter.is_some() || Some(version.creator) == txn.gxid() {
            return Ok((Some(table), None));
        }
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.insert(
            name.to_string(),
            CachedTable {
                epoch,
                creator: version.creator,
                table: table.clone(),
            },
        );
        Ok((Some(table), Some(version.creator)))
    }
}

/// The catalog as one transaction sees it.
pub struct CatalogView<'a> {
    pub txn: &'a Transaction,
    /// The node's descriptor cache.
    pub cache: &'a CatalogCache,
}

/// Where a descriptor [`CatalogView::lookup`] returns comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A system view: the same for every transaction.
    System,
    /// The newest committed descriptor, with its creator (see [`CatalogCache::lookup`]).
    Newest(Gxid),
    /// Particular to the transaction, or no such table.
    Particular,
}

impl CatalogView<'_> {
    /// The table called `name` and where its descriptor comes from.
    pub(crate) fn lookup(&self, name: &str) -> Result<(Option<Arc<Table>>, Source)> {
        if let Some(view) = super::system::view(name) {
            return Ok((Some(Arc::new(view)), Source::System));
        }
        let (table, creator) = self.cache.lookup(self.txn, name)?;
        Ok((table, creator.map_or(Source::Particular, Source::Newest)))
    }
}

impl Catalog for CatalogView<'_> {
    fn table(&self, name: &str) -> Result<Option<Arc<Table>>> {
        Ok(self.lookup(name)?.0)
    }
}

/// The table called `name`, as `txn` sees the catalog.
pub fn get_table(txn: &Transaction, name: &str) -> Result<Option<Table>> {
    let bytes = txn.get(CATALOG_TABLE_ID, &key(name)).map_err(mvcc_error)?;
    bytes.map(|b| decode_table(name, &b)).transpose()
}

/// The table called `name`, its catalog row locked FOR UPDATE (the newest descriptor under
/// READ COMMITTED), so that DDL changing it runs one transaction at a time.
pub fn lock_table(txn: &mut Transaction, name: &str) -> Result<Option<Table>> {
    let bytes = txn
        .lock_row(CATALOG_TABLE_ID, &key(name), RowLockMode::Update)
        .map_err(mvcc_error)?;
    bytes.map(|b| decode_table(name, &b)).transpose()
}

fn decode_table(name: &str, bytes: &[u8]) -> Result<Table> {
    postcard::from_bytes(bytes)
        .map_err(|e| storage_error(format!("bad catalog entry for {name}: {e}")))
}

/// Every table `txn` sees.
pub fn list_tables(txn: &Transaction) -> Result<Vec<Table>> {
    let rows = txn.scan(CATALOG_TABLE_ID).map_err(mvcc_error)?;
    rows.into_iter()
        .map(|(_, bytes)| decode_table("", &bytes))
        .collect()
}

/// Whether a table, primary key or index called `name` exists, as `txn` sees the catalog.
pub fn relation_exists(txn: &Transaction, name: &str) -> Result<bool> {
    Ok(relation_owner(txn, name)?.is_some())
}

/// The table the relation `name` (a table, a primary key or an index) belongs to.
pub fn relation_owner(txn: &Transaction, name: &str) -> Result<Option<String>> {
    let bytes = txn
        .get(RELATIONS_TABLE_ID, &key(name))
        .map_err(mvcc_error)?;
    bytes
        .map(|b| {
            postcard::from_bytes(&b)
                .map_err(|e| storage_error(format!("bad relation entry for {name}: {e}")))
        })
        .transpose()
}

/// Registers relation names of `table` (42P07 if one is taken).
fn register(txn: &mut Transaction, table: &Table, names: &BTreeSet<&str>) -> Result<()> {
    let owner = postcard::to_allocvec(&table.name).map_err(storage_error)?;
    for name in names {
        match txn.insert(RELATIONS_TABLE_ID, &key(name), owner.clone(), &NoIndexes) {
            Ok(()) => {}
            Err(MvccError::UniqueViolation { .. }) => return Err(duplicate_relation(name)),
            Err(e) => return Err(mvcc_error(e)),
        }
    }
    Ok(())
}

fn unregister(txn: &mut Transaction, names: &BTreeSet<&str>) -> Result<()> {
    for name in names {
        txn.delete(RELATIONS_TABLE_ID, &key(name))
            .map_err(mvcc_error)?;
    }
    Ok(())
}

/// Adds a table (42P07 if its name, or a name of its primary key or indexes, is taken).
pub fn insert_table(txn: &mut Transaction, table: &Table) -> Result<()> {
    let bytes = postcard::to_allocvec(table).map_err(storage_error)?;
    match txn.insert(CATALOG_TABLE_ID, &key(&table.name), bytes, &NoIndexes) {
        Ok(()) => {}
        Err(MvccError::UniqueViolation { .. }) => return Err(duplicate_relation(&table.name)),
        Err(e) => return Err(mvcc_error(e)),
    }
    register(txn, table, &table.relation_names().into_iter().collect())
}

/// Replaces a table's descriptor, registering the relation names it gained and freeing those
/// it lost (against the descriptor it replaces: the newest, under READ COMMITTED).
pub fn update_table(txn: &mut Transaction, table: &Table) -> Result<()> {
    let bytes = postcard::to_allocvec(table).map_err(storage_error)?;
    let replaced = txn
        .update(CATALOG_TABLE_ID, &key(&table.name), bytes, &NoIndexes)
        .map_err(mvcc_error)?;
    let Some(replaced) = replaced else {
        return Err(SqlError::new(
            rxc_common::sql::sqlstate::UNDEFINED_TABLE,
            format!("relation \"{}\" does not exist", table.name),
        ));
    };
    let old = decode_table(&table.name, &replaced)?;
    drop_storage(txn, &old, Some(table))?;
    let old_names: BTreeSet<&str> = old.relation_names().into_iter().collect();
    let new_names: BTreeSet<&str> = table.relation_names().into_iter().collect();
    unregister(txn, &old_names.difference(&new_names).copied().collect())?;
    register(
        txn,
        table,
        &new_names.difference(&old_names).copied().collect(),
    )
}

/// Removes a table's descriptor and its relation names; false if it did not exist.
pub fn delete_table(txn: &mut Transaction, name: &str) -> Result<bool> {
    let deleted = txn
        .delete(CATALOG_TABLE_ID, &key(name))
        .map_err(mvcc_error)?;
    let Some(bytes) = deleted else {
        return Ok(false);
    };
    let table = decode_table(name, &bytes)?;
    drop_storage(txn, &table, None)?;
    unregister(txn, &table.relation_names().into_iter().collect())?;
    Ok(true)
}

/// Records the relations of `old` that `new` (its replacement; none when the table is
/// dropped) no longer has — the table's id, re-keyed or dropped, and dropped indexes — for
/// garbage collection to remove their rows and entries once no snapshot sees them.
fn drop_storage(txn: &mut Transaction, old: &Table, new: Option<&Table>) -> Result<()> {
    if new.is_none_or(|t| t.id != old.id) {
        txn.drop_relation(Relation::Table(old.id))
            .map_err(mvcc_error)?;
    }
    for index in &old.indexes {
        if new.is_none_or(|t| !t.indexes.iter().any(|i| i.id == index.id)) {
            txn.drop_relation(Relation::Index(index.id))
                .map_err(mvcc_error)?;
        }
    }
    Ok(())
}

/// The indexes of every table, for [`Mvcc::gc`]: the catalog as the latest commits left it,
/// read once per GC call.
pub struct GcCatalog<'a> {
    mvcc: &'a Mvcc,
    tables: OnceLock<HashMap<u64, Table>>,
}

impl<'a> GcCatalog<'a> {
    /// The catalog of `mvcc`'s node.
    pub fn new(mvcc: &'a Mvcc) -> Self {
        GcCatalog {
            mvcc,
            tables: OnceLock::new(),
        }
    }
}

impl IndexCatalog for GcCatalog<'_> {
    fn table_indexes(&self, table_id: u64) -> mvcc::Result<Option<Box<dyn TableIndexes + '_>>> {
        if self.tables.get().is_none() {
            let reader = self.mvcc.read_only(super::session::latest_snapshot());
            let tables = list_tables(&reader)
                .map_err(|e| crate::storage::StorageError::InvalidData(e.message))?;
            let _ = self
                .tables
                .set(tables.into_iter().map(|t| (t.id, t)).collect());
        }
        let table = self.tables.get().and_then(|t| t.get(&table_id));
        Ok(table
            .filter(|t| !t.indexes.is_empty())
            .map(|t| Box::new(RowIndexes::new(t)) as Box<dyn TableIndexes + '_>))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::table::TxnStorage;
    use crate::storage::keys::KeyPrefix;
    use crate::storage::MemoryEngine;
    use rxc_common::sql::catalog::{Column, Index};
    use rxc_common::sql::exec::Storage;
    use rxc_common::sql::expr::SeqCall;
    use rxc_common::sql::{DataType, Value};
    use rxc_common::txn::{Gxid, Isolation, Snapshot};

    fn snapshot(next: u64) -> Snapshot {
        Snapshot {
            xmin: Gxid(next),
            xmax: Gxid(next),
            xip: Vec::new(),
            global_xmin: Gxid(next),
        }
    }

    /// Table `t (id int PRIMARY KEY, v int)` with an index on `v`, under these ids.
    fn table(id: u64, index_id: u64) -> Table {
        let column = |name: &str| Column {
            name: name.into(),
            data_type: DataType::Int4,
            nullable: true,
            default: None,
        };
        Table {
            id,
            name: "t".into(),
            columns: vec![column("id"), column("v")],
            primary_key: vec![0],
            primary_key_name: Some("t_pkey".into()),
            indexes: vec![Index {
                id: index_id,
                name: "t_v_idx".into(),
                columns: vec![1],
                descending: vec![false],
                unique: false,
                nulls_distinct: true,
                constraint: false,
            }],
            checks: Vec::new(),
        }
    }

    /// GC learns a table's indexes from the catalog and removes the entries of values no
    /// version carries any more.
    #[test]
    fn gc_removes_the_entries_of_old_values() {
        let mvcc = Mvcc::new(Arc::new(MemoryEngine::new()));
        mvcc.recover().unwrap();
        let table = table(20, 21);
        let mut row_ids = 0;
        let no_sequences =
            |_: &SeqCall, _: &[Value]| -> Result<Value> { Err(SqlError::internal("no sequences")) };
        let row = |id: i32, v: i32| vec![Value::Int4(id), Value::Int4(v)];
        for (gxid, old, new) in [(3, None, row(1, 10)), (4, Some(row(1, 10)), row(1, 11))] {
            let mut txn = mvcc.begin(Gxid(gxid), snapshot(gxid), Isolation::ReadCommitted);
            if gxid == 3 {
                insert_table(&mut txn, &table).unwrap();
            }
            let mut storage = TxnStorage {
                txn: &mut txn,
                row_ids: &mut row_ids,
                sequences: &no_sequences,
                interrupt: crate::storage::locks::WaitOptions::default(),
                roles: &crate::sql::roles::Roles::default(),
            };
            match old {
                None => storage.insert(&table, &new).unwrap(),
                Some(old) => {
                    storage
                        .update(&table, &[Value::Int4(1)].to_vec(), &old, &new)
                        .unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let entries = || {
            mvcc.engine()
                .scan(Cf::Index, crate::storage::KeyRange::all())
                .count()
        };
        assert_eq!(entries(), 2);
        let stats = mvcc.gc(Gxid(5), 1000, &GcCatalog::new(&mvcc)).unwrap();
        assert_eq!((stats.versions, stats.entries), (1, 1));
        let (key, _) = mvcc
            .engine()
            .scan(Cf::Index, crate::storage::KeyRange::all())
            .next()
            .unwrap()
            .unwrap();
        let Key::Index { values, .. } = Key::decode(&key).unwrap() else {
            panic!("not an index entry")
        };
        assert_eq!(values, vec![KeyValue::Int(11)]);
    }

    /// A re-keyed table's old id and old index ids, and a dropped table's ids, are recorded by
    /// the catalog change itself; GC then removes their rows and entries, and the records.
    #[test]
    fn dropped_and_rekeyed_relations_are_collected() {
        let mvcc = Mvcc::new(Arc::new(MemoryEngine::new()));
        mvcc.recover().unwrap();
        let keys =
            |cf: Cf, prefix: KeyPrefix| mvcc.engine().scan_prefix(cf, &prefix.encode()).count();
        let stored = || {
            (
                keys(Cf::Rows, KeyPrefix::Row { table_id: 20 })
                    + keys(Cf::Rows, KeyPrefix::Row { table_id: 30 }),
                keys(Cf::Index, KeyPrefix::Index { index_id: 21 })
                    + keys(Cf::Index, KeyPrefix::Index { index_id: 31 }),
                keys(Cf::Meta, KeyPrefix::Dropped),
            )
        };
        let mut row_ids = 0;
        let no_sequences =
            |_: &SeqCall, _: &[Value]| -> Result<Value> { Err(SqlError::internal("no sequences")) };
        // Created with two rows (GXID 3), re-keyed under new ids (4), dropped (5).
        for gxid in 3..=5 {
            let mut txn = mvcc.begin(Gxid(gxid), snapshot(gxid), Isolation::ReadCommitted);
            let current = match gxid {
                3 => {
                    insert_table(&mut txn, &table(20, 21)).unwrap();
                    table(20, 21)
                }
                4 => {
                    update_table(&mut txn, &table(30, 31)).unwrap();
                    table(30, 31)
                }
                _ => {
                    assert!(delete_table(&mut txn, "t").unwrap());
                    txn.commit().unwrap();
                    break;
                }
            };
            let mut storage = TxnStorage {
                txn: &mut txn,
                row_ids: &mut row_ids,
                sequences: &no_sequences,
                interrupt: crate::storage::locks::WaitOptions::default(),
                roles: &crate::sql::roles::Roles::default(),
            };
            for id in 1..=2 {
                storage
                    .insert(&current, &vec![Value::Int4(id), Value::Int4(id * 10)])
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        // Rows and entries under both ids; the old ids and the dropped ones recorded.
        assert_eq!(stored(), (4, 4, 2 + 2));
        // Below GXID 5 only the re-key's old ids are out of every snapshot's sight.
        let dropped = mvcc.gc_dropped(Gxid(5), 1000).unwrap();
        assert_eq!(dropped, 4, "the re-key's old ids (dropped by GXID 4) go");
        assert_eq!(stored(), (2, 2, 2));
        assert_eq!(mvcc.gc_dropped(Gxid(6), 1000).unwrap(), 4);
        assert_eq!(stored(), (0, 0, 0));
    }
}
