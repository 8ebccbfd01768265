//! Index DDL on the datanode: `CREATE [UNIQUE] INDEX`, `DROP INDEX`, UNIQUE constraints added
//! with `ALTER TABLE ... ADD` and dropped with `DROP CONSTRAINT`, and the build of a new index
//! over the table's rows.
//!
//! An index is part of its table's descriptor (`Table::indexes`), so index DDL is a change of
//! the descriptor, transactional like any catalog write; the index name is registered in the
//! relation namespace with it ([`catalog::update_table`]). DDL on one table takes the lock of
//! its catalog row first ([`catalog::lock_table`]), so two transactions changing one table's
//! indexes run one after the other and neither loses the other's change.
//!
//! A new index is built at once, in the creating transaction ([`Transaction::build_index`]):
//! entries for every version of every row that did not abort, a unique index checked row by
//! row as inserts are checked (waiting for writers of the row still in progress), so a
//! duplicate is `could not create unique index "n"` (23505) with `Key (a)=(1) is duplicated.`
//!
//! Not yet: DML running concurrently with the DDL under the old descriptor does not maintain
//! the new index (rxc has no relation locks to keep it out, as PostgreSQL's ShareLock does),
//! and the entries of a dropped index stay in storage (like the rows of a dropped table).

use super::catalog;
use super::session::{Node, StatementResult};
use super::table::{decode_row, key_text, mvcc_error, RowIndexes};
use crate::storage::mvcc::{MvccError, Transaction};
use rxc_common::sql::binder::{ident_name, object_name};
use rxc_common::sql::catalog::{Index, Table};
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::indexes;
use sqlparser::ast;

/// `CREATE [UNIQUE] INDEX [IF NOT EXISTS] [name] ON t (...)`.
pub fn create_index(
    node: &Node,
    txn: &mut Transaction,
    statement: &ast::CreateIndex,
) -> Result<StatementResult> {
    let done = || Ok(StatementResult::Command("CREATE INDEX".into()));
    let name = object_name(&statement.table_name)?;
    let Some(mut table) = catalog::lock_table(txn, &name)? else {
        return Err(SqlError::new(
            sqlstate::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        ));
    };
    let taken = |n: &str| catalog::relation_exists(txn, n);
    let Some(index) = indexes::create_index(&table, statement, &taken)? else {
        return done();
    };
    add_index(node, txn, &mut table, index)?;
    catalog::update_table(txn, &table)?;
    done()
}

/// `ALTER TABLE t ADD [CONSTRAINT n] UNIQUE (...)` on `table` (the caller writes the
/// descriptor back when the whole ALTER TABLE is done).
pub fn add_unique_constraint(
    node: &Node,
    txn: &mut Transaction,
    table: &mut Table,
    unique: &ast::UniqueConstraint,
) -> Result<()> {
    let taken = |n: &str| -> Result<bool> {
        Ok(table.relation_names().contains(&n) || catalog::relation_exists(txn, n)?)
    };
    let index = indexes::unique_constraint(table, None, unique, &taken)?;
    if unique.name.is_some() && taken(&index.name)? {
        return Err(indexes::relation_exists(&index.name));
    }
    add_index(node, txn, table, index)
}

/// Gives `index` an id, adds it to `table` and builds it over the table's rows.
fn add_index(
    node: &Node,
    txn: &mut Transaction,
    table: &mut Table,
    mut index: Index,
) -> Result<()> {
    index.id = node.ids.next()?;
    table.indexes.push(index);
    let position = table.indexes.len() - 1;
    txn.build_index(table.id, &RowIndexes::new(table), position)
        .map_err(|e| build_error(table, &table.indexes[position], e))
}

/// A build's MVCC error as the SQL error: a duplicate is PostgreSQL's `could not create
/// unique index`.
fn build_error(table: &Table, index: &Index, e: MvccError) -> SqlError {
    match e {
        MvccError::UniqueViolation { row, .. } => {
            let mut err = SqlError::new(
                sqlstate::UNIQUE_VIOLATION,
                format!("could not create unique index \"{}\"", index.name),
            );
            if let Ok(row) = decode_row(&row) {
                err = err.with_detail(format!(
                    "Key {} is duplicated.",
                    key_text(table, &index.columns, &row)
                ));
            }
            err
        }
        e => mvcc_error(e),
    }
}

/// `DROP INDEX [IF EXISTS] name, ...`. The index of a constraint goes with the constraint
/// (2BP01 here, as in PostgreSQL).
pub fn drop_indexes(
    txn: &mut Transaction,
    names: &[ast::ObjectName],
    if_exists: bool,
) -> Result<StatementResult> {
    for name in names {
        let name = object_name(name)?;
        let owner = catalog::relation_owner(txn, &name)?;
        let table = match &owner {
            Some(owner) => catalog::lock_table(txn, owner)?,
            None => None,
        };
        let Some(mut table) = table else {
            if if_exists {
                continue;
            }
            return Err(SqlError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("index \"{name}\" does not exist"),
            ));
        };
        if table.name == name {
            return Err(SqlError::new(
                sqlstate::WRONG_OBJECT_TYPE,
                format!("\"{name}\" is not an index"),
            )
            .with_hint("Use DROP TABLE to remove a table."));
        }
        let constraint = table.primary_key_name.as_deref() == Some(name.as_str())
            || table.index(&name).is_some_and(|i| i.constraint);
        if constraint {
            return Err(SqlError::new(
                sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
                format!(
                    "cannot drop index {name} because constraint {name} on table {} requires it",
                    table.name
                ),
            )
            .with_hint(format!(
                "You can drop constraint {name} on table {} instead.",
                table.name
            )));
        }
        table.indexes.retain(|i| i.name != name);
        catalog::update_table(txn, &table)?;
    }
    Ok(StatementResult::Command("DROP INDEX".into()))
}

/// `ALTER TABLE t DROP CONSTRAINT [IF EXISTS] name` on `table`: a UNIQUE constraint (with its
/// index) or a CHECK constraint.
pub fn drop_constraint(table: &mut Table, name: &ast::Ident, if_exists: bool) -> Result<()> {
    let name = ident_name(name);
    if table.primary_key_name.as_deref() == Some(name.as_str()) {
        return Err(SqlError::unsupported(
            "dropping a primary key constraint is not supported",
        ));
    }
    let (indexes, checks) = (table.indexes.len(), table.checks.len());
    table.indexes.retain(|i| !(i.constraint && i.name == name));
    table.checks.retain(|c| c.name != name);
    let dropped = table.indexes.len() < indexes || table.checks.len() < checks;
    if !dropped && !if_exists {
        return Err(SqlError::new(
            sqlstate::UNDEFINED_OBJECT,
            format!(
                "constraint \"{name}\" of relation \"{}\" does not exist",
                table.name
            ),
        ));
    }
    Ok(())
}

/// New ids for `table`'s indexes, for a table whose rows move to a new table id (`ALTER TABLE
/// ADD PRIMARY KEY` re-keys them): the rows' new entries go under the new ids.
pub fn renumber(node: &Node, table: &mut Table) -> Result<()> {
    for index in &mut table.indexes {
        index.id = node.ids.next()?;
    }
    Ok(())
}

/// `table` without its indexes: for rewriting rows whose indexed values do not change.
pub fn without_indexes(table: &Table) -> Table {
    Table {
        indexes: Vec::new(),
        ..table.clone()
    }
}
