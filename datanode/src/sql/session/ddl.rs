//! DDL on the datanode: CREATE/DROP TABLE, TRUNCATE, ALTER TABLE (and CREATE/DROP INDEX, in
//! [`index`](crate::sql::index)). Table descriptors are rows of the MVCC catalog, so DDL is
//! transactional; ALTER TABLE rewrites the rows it changes inside the same transaction.

use super::statement::{storage, Sequences};
use super::{Node, StatementResult};
use crate::sql::catalog::{self, CatalogView};
use crate::sql::index;
use crate::storage::mvcc::Transaction;
use rxc_common::gtm::proto::SeqOptions;
use rxc_common::sql::binder;
use rxc_common::sql::catalog::Table;
use rxc_common::sql::ddl;
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::exec::{Row, Storage};
use rxc_common::sql::expr::SeqCall;
use rxc_common::sql::{DataType, Value};
use sqlparser::ast;

/// Runs `stmt` if it is DDL; `None` for every other statement.
pub(super) fn run(
    node: &Node,
    sequences: Sequences<'_>,
    txn: &mut Transaction,
    row_ids: &mut u32,
    stmt: &ast::Statement,
) -> Option<Result<StatementResult>> {
    Some(match stmt {
        ast::Statement::CreateTable(ct) => create_table(node, txn, ct),
        ast::Statement::CreateIndex(ci) => index::create_index(node, txn, ci),
        ast::Statement::Drop {
            object_type: ast::ObjectType::Index,
            if_exists,
            names,
            ..
        } => index::drop_indexes(txn, names, *if_exists),
        ast::Statement::Drop {
            object_type: ast::ObjectType::Table,
            if_exists,
            names,
            ..
        } => drop_tables(txn, names, *if_exists),
        ast::Statement::Truncate(t) => truncate(node, sequences, txn, row_ids, t),
        ast::Statement::AlterTable(alter) => alter_table(node, sequences, txn, row_ids, alter),
        _ => return None,
    })
}

fn drop_tables(
    txn: &mut Transaction,
    names: &[ast::ObjectName],
    if_exists: bool,
) -> Result<StatementResult> {
    for name in names {
        let name = binder::object_name(name)?;
        if !catalog::delete_table(txn, &name)? && !if_exists {
            return Err(SqlError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("table \"{name}\" does not exist"),
            ));
        }
    }
    Ok(StatementResult::Command("DROP TABLE".into()))
}

fn truncate(
    node: &Node,
    sequences: Sequences<'_>,
    txn: &mut Transaction,
    row_ids: &mut u32,
    t: &ast::Truncate,
) -> Result<StatementResult> {
    for target in &t.table_names {
        let name = binder::object_name(&target.name)?;
        let table = catalog::get_table(txn, &name)?.ok_or_else(|| {
            SqlError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("relation \"{name}\" does not exist"),
            )
        })?;
        let mut storage = storage(node, sequences, txn, row_ids);
        for (id, row) in Storage::scan(&mut storage, &table)? {
            Storage::delete(&mut storage, &table, &id, &row)?;
        }
    }
    Ok(StatementResult::Command("TRUNCATE TABLE".into()))
}

fn create_table(
    node: &Node,
    txn: &mut Transaction,
    ct: &ast::CreateTable,
) -> Result<StatementResult> {
    let def = ddl::create_table(ct, &|name| catalog::relation_exists(txn, name))?;
    let mut table: Table = def.table;
    if ct.if_not_exists && catalog::relation_exists(txn, &table.name)? {
        return Ok(StatementResult::Command("CREATE TABLE".into()));
    }
    table.id = node.ids.next()?;
    for index in &mut table.indexes {
        index.id = node.ids.next()?;
    }
    catalog::insert_table(txn, &table)?;
    for seq in def.sequences {
        let gtm = node.gtm.clone();
        node.wait_gtm(async move { gtm.create_sequence(&seq, SeqOptions::default()).await })?
            .map_err(super::statement::sequence_error)?;
    }
    Ok(StatementResult::Command("CREATE TABLE".into()))
}

fn alter_table(
    node: &Node,
    sequences: Sequences<'_>,
    txn: &mut Transaction,
    row_ids: &mut u32,
    alter: &ast::AlterTable,
) -> Result<StatementResult> {
    let name = binder::object_name(&alter.name)?;
    let Some(mut table) = catalog::lock_table(txn, &name)? else {
        if alter.if_exists {
            return Ok(StatementResult::Command("ALTER TABLE".into()));
        }
        return Err(SqlError::new(
            sqlstate::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        ));
    };
    for op in &alter.operations {
        match op {
            ast::AlterTableOperation::AddConstraint {
                constraint: ast::TableConstraint::PrimaryKey(pk),
                ..
            } => {
                if !table.primary_key.is_empty() {
                    return Err(SqlError::new(
                        sqlstate::INVALID_TABLE_DEFINITION,
                        format!("multiple primary keys for table \"{name}\" are not allowed"),
                    ));
                }
                let mut cols = Vec::new();
                for c in &pk.columns {
                    let cname = match &c.column.expr {
                        ast::Expr::Identifier(i) => binder::ident_name(i),
                        other => {
                            return Err(SqlError::unsupported(format!(
                                "key expressions are not supported: {other}"
                            )))
                        }
                    };
                    cols.push(table.column_index(&cname).ok_or_else(|| {
                        SqlError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!("column \"{cname}\" of relation \"{name}\" does not exist"),
                        )
                    })?);
                }
                if let Some(n) = &pk.name {
                    table.primary_key_name = Some(binder::ident_name(n));
                }
                // Re-key every row under a new table id.
                let old = table.clone();
                ddl::set_primary_key(&mut table, cols)?;
                table.id = node.ids.next()?;
                index::renumber(node, &mut table)?;
                let rows = {
                    let mut s = storage(node, sequences, txn, row_ids);
                    Storage::scan(&mut s, &old)?
                };
                let mut s = storage(node, sequences, txn, row_ids);
                for (_, row) in rows {
                    for &c in &table.primary_key {
                        if row[c].is_null() {
                            return Err(SqlError::new(
                                sqlstate::NOT_NULL_VIOLATION,
                                format!(
                                    "column \"{}\" of relation \"{name}\" contains null values",
                                    table.columns[c].name
                                ),
                            ));
                        }
                    }
                    Storage::insert(&mut s, &table, &row).map_err(|e| {
                        if e.code == sqlstate::UNIQUE_VIOLATION {
                            SqlError::new(
                                sqlstate::UNIQUE_VIOLATION,
                                format!(
                                    "could not create unique index \"{}\"",
                                    table.primary_key_name.clone().unwrap_or_default()
                                ),
                            )
                            .with_detail(
                                e.detail
                                    .clone()
                                    .unwrap_or_default()
                                    .replace(" already exists", " is duplicated"),
                            )
                        } else {
                            e
                        }
                    })?;
                }
            }
            ast::AlterTableOperation::AddConstraint {
                constraint: ast::TableConstraint::Unique(unique),
                ..
            } => index::add_unique_constraint(node, txn, &mut table, unique)?,
            ast::AlterTableOperation::DropConstraint {
                if_exists, name, ..
            } => index::drop_constraint(&mut table, name, *if_exists)?,
            ast::AlterTableOperation::AddColumn { column_def, .. } => {
                let cname = binder::ident_name(&column_def.name);
                if table.column_index(&cname).is_some() {
                    return Err(SqlError::new(
                        sqlstate::DUPLICATE_COLUMN,
                        format!("column \"{cname}\" of relation \"{name}\" already exists"),
                    ));
                }
                let data_type = DataType::from_sql(&column_def.data_type)?;
                let mut nullable = true;
                let mut default = None;
                for o in &column_def.options {
                    match &o.option {
                        ast::ColumnOption::NotNull => nullable = false,
                        ast::ColumnOption::Null => nullable = true,
                        ast::ColumnOption::Default(e) => default = Some(e.to_string()),
                        other => {
                            return Err(SqlError::unsupported(format!(
                                "column option not supported in ADD COLUMN: {other}"
                            )))
                        }
                    }
                }
                // Existing rows get the default (or NULL), rewritten in place.
                let fill = match &default {
                    Some(sql) => {
                        let view = CatalogView {
                            txn,
                            cache: &node.catalog,
                        };
                        let e = binder::bind_default(&view, sql, &data_type)?;
                        struct NoContext;
                        impl rxc_common::sql::expr::EvalContext for NoContext {
                            fn param(&self, _: usize) -> Result<Value> {
                                Err(SqlError::internal("no parameters here"))
                            }
                            fn outer(&self, _: usize, _: usize) -> Result<Value> {
                                Err(SqlError::internal("no outer rows here"))
                            }
                            fn subquery(&mut self, _: usize, _: &[Value]) -> Result<Vec<Row>> {
                                Err(SqlError::internal("no subqueries here"))
                            }
                            fn sequence(&mut self, _: &SeqCall, _: &[Value]) -> Result<Value> {
                                Err(SqlError::unsupported(
                                    "ADD COLUMN with a volatile default is not supported",
                                ))
                            }
                        }
                        e.eval(&[], &mut NoContext)?
                    }
                    None => Value::Null,
                };
                let old = table.clone();
                table.columns.push(rxc_common::sql::catalog::Column {
                    name: cname.clone(),
                    data_type,
                    nullable,
                    default,
                });
                let rows = {
                    let mut s = storage(node, sequences, txn, row_ids);
                    Storage::scan(&mut s, &old)?
                };
                if !nullable && fill.is_null() && !rows.is_empty() {
                    return Err(SqlError::new(
                        sqlstate::NOT_NULL_VIOLATION,
                        format!("column \"{cname}\" of relation \"{name}\" contains null values"),
                    ));
                }
                let mut s = storage(node, sequences, txn, row_ids);
                for (id, row) in rows {
                    let mut new = row.clone();
                    new.push(fill.clone());
                    Storage::update(&mut s, &table, &id, &row, &new)?;
                }
            }
            ast::AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for column_name in column_names {
                    let cname = binder::ident_name(column_name);
                    let Some(index) = table.column_index(&cname) else {
                        if *if_exists {
                            continue;
                        }
                        return Err(SqlError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!("column \"{cname}\" of relation \"{name}\" does not exist"),
                        ));
                    };
                    if table.primary_key.contains(&index) {
                        return Err(SqlError::unsupported(
                            "dropping a primary key column is not supported",
                        ));
                    }
                    let old = table.clone();
                    table.columns.remove(index);
                    for pk in &mut table.primary_key {
                        if *pk > index {
                            *pk -= 1;
                        }
                    }
                    rxc_common::sql::indexes::drop_column(&mut table, index);
                    let rows = {
                        let mut s = storage(node, sequences, txn, row_ids);
                        Storage::scan(&mut s, &old)?
                    };
                    // The remaining indexes' values do not change: no index work.
                    let rewrite = index::without_indexes(&table);
                    let mut s = storage(node, sequences, txn, row_ids);
                    for (id, row) in rows {
                        let mut new = row.clone();
                        new.remove(index);
                        Storage::update(&mut s, &rewrite, &id, &row, &new)?;
                    }
                }
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "ALTER TABLE operation not supported: {other}"
                )))
            }
        }
    }
    catalog::update_table(txn, &table)?;
    Ok(StatementResult::Command("ALTER TABLE".into()))
}
