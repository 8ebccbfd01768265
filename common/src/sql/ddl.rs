//! DDL descriptors from the AST: `CREATE TABLE` becomes a [`Table`] (plus the sequences its
//! serial columns need), shared by the datanode and the coordinator.

use super::binder::{ident_name, object_name};
use super::catalog::{Check, Column, Index, Table};
use super::error::{sqlstate, Result, SqlError};
use super::value::DataType;
use sqlparser::ast;

/// What `CREATE TABLE` asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct TableDefinition {
    /// The table, without ids (the caller assigns `id` and index ids).
    pub table: Table,
    /// Sequences to create for serial columns, by name.
    pub sequences: Vec<String>,
}

fn serial_type(ty: &ast::DataType) -> Option<DataType> {
    let name = ty.to_string().to_lowercase();
    match name.as_str() {
        "serial" | "serial4" => Some(DataType::Int4),
        "bigserial" | "serial8" => Some(DataType::Int8),
        "smallserial" | "serial2" => Some(DataType::Int2),
        _ => None,
    }
}

fn index_columns(table: &Table, columns: &[ast::IndexColumn]) -> Result<Vec<usize>> {
    columns
        .iter()
        .map(|c| {
            let name = match &c.column.expr {
                ast::Expr::Identifier(i) => ident_name(i),
                other => {
                    return Err(SqlError::unsupported(format!(
                        "index expressions are not supported: {other}"
                    )))
                }
            };
            table.column_index(&name).ok_or_else(|| {
                SqlError::new(
                    sqlstate::UNDEFINED_COLUMN,
                    format!("column \"{name}\" named in key does not exist"),
                )
            })
        })
        .collect()
}

/// Converts `CREATE TABLE` into a table definition.
pub fn create_table(ct: &ast::CreateTable) -> Result<TableDefinition> {
    if ct.query.is_some() {
        return Err(SqlError::unsupported("CREATE TABLE AS is not supported"));
    }
    let name = object_name(&ct.name)?;
    let mut table = Table {
        id: 0,
        name: name.clone(),
        columns: Vec::new(),
        primary_key: Vec::new(),
        primary_key_name: None,
        indexes: Vec::new(),
        checks: Vec::new(),
    };
    let mut sequences = Vec::new();
    let mut pk_columns: Option<Vec<usize>> = None;
    let mut uniques: Vec<Vec<usize>> = Vec::new();
    for (i, c) in ct.columns.iter().enumerate() {
        let cname = ident_name(&c.name);
        if table.column_index(&cname).is_some() {
            return Err(SqlError::new(
                sqlstate::DUPLICATE_COLUMN,
                format!("column \"{cname}\" specified more than once"),
            ));
        }
        let (data_type, mut default, mut nullable) = match serial_type(&c.data_type) {
            Some(t) => {
                let seq = format!("{name}_{cname}_seq");
                sequences.push(seq.clone());
                (t, Some(format!("nextval('{seq}')")), false)
            }
            None => (DataType::from_sql(&c.data_type)?, None, true),
        };
        for opt in &c.options {
            match &opt.option {
                ast::ColumnOption::Null => nullable = true,
                ast::ColumnOption::NotNull => nullable = false,
                ast::ColumnOption::Default(e) => default = Some(e.to_string()),
                ast::ColumnOption::PrimaryKey(_) => {
                    if pk_columns.is_some() {
                        return Err(multiple_pk(&name));
                    }
                    pk_columns = Some(vec![i]);
                    nullable = false;
                }
                ast::ColumnOption::Unique(_) => uniques.push(vec![i]),
                ast::ColumnOption::Check(check) => table.checks.push(Check {
                    name: check
                        .name
                        .as_ref()
                        .map(ident_name)
                        .unwrap_or_else(|| format!("{name}_{cname}_check")),
                    expr: check.expr.to_string(),
                }),
                ast::ColumnOption::ForeignKey(_) => {
                    return Err(SqlError::unsupported("foreign keys are not supported"))
                }
                _ => {
                    return Err(SqlError::unsupported(format!(
                        "column option not supported: {}",
                        opt.option
                    )))
                }
            }
        }
        table.columns.push(Column {
            name: cname,
            data_type,
            nullable,
            default,
        });
    }
    for constraint in &ct.constraints {
        match constraint {
            ast::TableConstraint::PrimaryKey(pk) => {
                if pk_columns.is_some() {
                    return Err(multiple_pk(&name));
                }
                let cols = index_columns(&table, &pk.columns)?;
                if let Some(n) = &pk.name {
                    table.primary_key_name = Some(ident_name(n));
                }
                pk_columns = Some(cols);
            }
            ast::TableConstraint::Unique(u) => uniques.push(index_columns(&table, &u.columns)?),
            ast::TableConstraint::Check(check) => table.checks.push(Check {
                name: check
                    .name
                    .as_ref()
                    .map(ident_name)
                    .unwrap_or_else(|| format!("{name}_check")),
                expr: check.expr.to_string(),
            }),
            _ => {
                return Err(SqlError::unsupported(format!(
                    "table constraint not supported: {constraint}"
                )))
            }
        }
    }
    if let Some(cols) = pk_columns {
        set_primary_key(&mut table, cols)?;
    }
    if !uniques.is_empty() {
        // Unique constraints need secondary-index maintenance, which storage lacks yet.
        return Err(SqlError::unsupported(
            "UNIQUE constraints are not supported yet (PRIMARY KEY is)",
        ));
    }
    for cols in uniques {
        let names: Vec<&str> = cols
            .iter()
            .map(|&c| table.columns[c].name.as_str())
            .collect();
        table.indexes.push(Index {
            id: 0,
            name: format!("{name}_{}_key", names.join("_")),
            columns: cols,
            unique: true,
        });
    }
    Ok(TableDefinition { table, sequences })
}

/// Makes `columns` the table's primary key (they become NOT NULL). Key types must have an
/// order-preserving storage encoding.
pub fn set_primary_key(table: &mut Table, columns: Vec<usize>) -> Result<()> {
    for &c in &columns {
        let col = &mut table.columns[c];
        if matches!(col.data_type, DataType::Numeric(_)) {
            return Err(SqlError::unsupported(format!(
                "a numeric column cannot be part of a primary key yet: \"{}\"",
                col.name
            )));
        }
        col.nullable = false;
    }
    if table.primary_key_name.is_none() {
        table.primary_key_name = Some(format!("{}_pkey", table.name));
    }
    table.primary_key = columns;
    Ok(())
}

fn multiple_pk(table: &str) -> SqlError {
    SqlError::new(
        sqlstate::INVALID_TABLE_DEFINITION,
        format!("multiple primary keys for table \"{table}\" are not allowed"),
    )
}
