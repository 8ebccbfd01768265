//! Bound statements kept with the prepared statement they came from, so that the Describe,
//! Bind and Execute of a prepared statement (pgbench `-M prepared`, any driver's statement
//! cache) bind it once instead of every time.
//!
//! A plan is reused only when binding again would give the same plan: the same parameter
//! types, the same catalog epoch (no transaction that changed the catalog has committed on
//! the node since — [`CatalogCache::epoch`](super::catalog::CatalogCache::epoch)), a transaction that has not written the catalog
//! itself, and a snapshot that counts as finished the creator of every table descriptor the
//! plan was bound against — then each descriptor is exactly the one the binder would read
//! (see [`CatalogCache`](super::catalog::CatalogCache)). A plan bound against anything particular to one transaction (its
//! own DDL, an older descriptor its snapshot still sees, a name that is not a table) is not
//! kept. As in PostgreSQL, a statement whose rows change shape when it is bound again (a
//! column added under `SELECT *`, a column's type changed) fails with 0A000 "cached plan
//! must not change result type".

use super::catalog::{CatalogView, Source, CATALOG_TABLE_ID};
use rxc_common::sql::binder;
use rxc_common::sql::catalog::{Catalog, Table};
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::plan::BoundQuery;
use rxc_common::sql::DataType;
use rxc_common::txn::Gxid;
use sqlparser::ast;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// A prepared statement's parameter types as Parse gave them, and the slot of its plan.
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    /// `Unknown` where the client left a type unspecified.
    pub param_types: Vec<DataType>,
    /// Its bound plan, when one is kept.
    pub slot: Arc<PlanSlot>,
}

/// The slot of one prepared statement for its bound plan.
#[derive(Debug, Default)]
pub struct PlanSlot {
    plan: Mutex<Option<CachedPlan>>,
}

#[derive(Debug)]
struct CachedPlan {
    epoch: u64,
    param_types: Vec<DataType>,
    /// The creators of the descriptors it was bound against.
    creators: Vec<Gxid>,
    bound: Arc<BoundQuery>,
}

/// Binds `stmt` with `param_types` as `view` sees the catalog, reusing (and filling) `slot`
/// where that gives the same plan.
pub fn bind(
    view: &CatalogView,
    stmt: &ast::Statement,
    param_types: &[DataType],
    slot: Option<&PlanSlot>,
) -> Result<Arc<BoundQuery>> {
    let Some(slot) = slot else {
        return Ok(Arc::new(binder::bind(view, stmt, param_types)?));
    };
    let epoch = view.cache.epoch();
    let own_catalog = view.txn.has_written(CATALOG_TABLE_ID);
    if !own_catalog {
        let plan = slot.plan.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = plan.as_ref() {
            if p.epoch == epoch
                && p.param_types == param_types
                && p.creators
                    .iter()
                    .all(|&c| view.txn.snapshot().is_finished(c))
            {
                return Ok(p.bound.clone());
            }
        }
    }
    let recording = Recording {
        view,
        creators: RefCell::new(Some(Vec::new())),
    };
    let bound = Arc::new(binder::bind(&recording, stmt, param_types)?);
    let mut plan = slot.plan.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(old) = plan.as_ref().filter(|p| p.param_types == param_types) {
        if !same_row_type(&old.bound, &bound) {
            return Err(SqlError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "cached plan must not change result type",
            ));
        }
    }
    *plan = recording.creators.into_inner().map(|creators| CachedPlan {
        epoch,
        param_types: param_types.to_vec(),
        creators,
        bound: bound.clone(),
    });
    Ok(bound)
}

/// Whether two plans return rows of the same column names and types (what a client that
/// described the statement once expects).
fn same_row_type(a: &BoundQuery, b: &BoundQuery) -> bool {
    let (a, b) = (a.root.columns(), b.root.columns());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x.name == y.name && x.data_type == y.data_type)
}

/// A catalog view that notes where each descriptor came from: `None` once one was
/// particular to the transaction.
struct Recording<'a, 'v> {
    view: &'a CatalogView<'v>,
    creators: RefCell<Option<Vec<Gxid>>>,
}

impl Catalog for Recording<'_, '_> {
    fn table(&self, name: &str) -> Result<Option<Arc<Table>>> {
        let (table, source) = self.view.lookup(name)?;
        let mut creators = self.creators.borrow_mut();
        match source {
            Source::System => {}
            Source::Newest(c) => {
                if let Some(list) = creators.as_mut() {
                    list.push(c);
                }
            }
            Source::Particular => *creators = None,
        }
        Ok(table)
    }
}
