//! DDL descriptors from the AST: `CREATE TABLE` becomes a [`Table`] (plus the sequences its
//! serial columns need), shared by the datanode and the coordinator. Its UNIQUE constraints
//! become indexes as [`indexes`](super::indexes) describes: PostgreSQL's generated names, and a
//! constraint that repeats the primary key or an earlier one dropped.

use super::binder::{ident_name, object_name};
use super::catalog::{Check, Column, Index, Table};
use super::error::{sqlstate, Result, SqlError};
use super::indexes::{self, NameTaken};
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

/// Converts `CREATE TABLE` into a table definition. `taken` says which relation names exist
/// already, for the names of the primary key and UNIQUE constraints PostgreSQL generates.
pub fn create_table(ct: &ast::CreateTable, taken: NameTaken) -> Result<TableDefinition> {
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
    // UNIQUE constraints: the constraint's name (column constraints name it outside the
    // constraint) and the constraint.
    let mut uniques: Vec<(Option<ast::Ident>, ast::UniqueConstraint)> = Vec::new();
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
                ast::ColumnOption::Unique(u) => {
                    let mut u = u.clone();
                    u.columns = vec![ast::IndexColumn::from(c.name.clone())];
                    uniques.push((opt.name.clone(), u));
                }
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
                let cols = indexes::constraint_columns(&table, &pk.columns)?;
                if let Some(n) = &pk.name {
                    table.primary_key_name = Some(ident_name(n));
                }
                pk_columns = Some(cols);
            }
            ast::TableConstraint::Unique(u) => uniques.push((None, u.clone())),
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
    // Names the table itself holds count as taken, as the catalog's do.
    let taken_here = |table: &Table, n: &str| -> Result<bool> {
        Ok(table.relation_names().contains(&n) || taken(n)?)
    };
    if let Some(cols) = pk_columns {
        if table.primary_key_name.is_none() {
            let pkey = indexes::choose_name(&name, None, "pkey", &|n| taken_here(&table, n))?;
            table.primary_key_name = Some(pkey);
        }
        set_primary_key(&mut table, cols)?;
    }
    for (constraint_name, unique) in &uniques {
        let index = indexes::unique_constraint(&table, constraint_name.as_ref(), unique, &|n| {
            taken_here(&table, n)
        })?;
        let pk = Index {
            columns: table.primary_key.clone(),
            descending: vec![false; table.primary_key.len()],
            ..index.clone()
        };
        let repeats = (!table.has_row_id() && indexes::same_key(&index, &pk))
            || table.indexes.iter().any(|i| indexes::same_key(i, &index));
        if repeats {
            continue;
        }
        if table.relation_names().contains(&index.name.as_str()) {
            return Err(indexes::relation_exists(&index.name));
        }
        table.indexes.push(index);
    }
    Ok(TableDefinition { table, sequences })
}

/// Makes `columns` the table's primary key (they become NOT NULL).
pub fn set_primary_key(table: &mut Table, columns: Vec<usize>) -> Result<()> {
    for &c in &columns {
        table.columns[c].nullable = false;
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
