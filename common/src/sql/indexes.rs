//! Secondary-index descriptors from DDL, shared by the datanode and the coordinator:
//! `CREATE [UNIQUE] INDEX`, UNIQUE constraints (in `CREATE TABLE` and `ALTER TABLE ... ADD`),
//! PostgreSQL's generated names, what `DROP COLUMN` does to indexes, and which unique indexes
//! an `INSERT ... ON CONFLICT` arbitrates on.
//!
//! Names follow PostgreSQL: tables, primary keys and indexes share one namespace (the caller
//! says which names are taken); a generated name is `<table>_<columns>_<label>` (`idx` for an
//! index, `key` for a UNIQUE constraint, `pkey`), cut to fit 63 bytes as `makeObjectName`
//! cuts it, and numbered (`t_a_idx1`, `t_a_idx2`, ...) while taken, as `ChooseRelationName`
//! does. Only B-tree indexes over plain columns exist: expressions, partial indexes, INCLUDE
//! and other access methods are refused with 0A000 (`USING hash` builds a B-tree, which
//! answers the same equality lookups).

use super::binder::{ident_name, object_name};
use super::catalog::{Index, Table};
use super::error::{sqlstate, Result, SqlError};
use super::plan::Arbiter;
use sqlparser::ast;

/// PostgreSQL's longest identifier, in bytes (`NAMEDATALEN - 1`).
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// Says whether a relation name is taken.
pub type NameTaken<'a> = &'a dyn Fn(&str) -> Result<bool>;

/// PostgreSQL's `makeObjectName`: `name1_name2_label`, the longer of the two names cut
/// (character by character) until the whole fits [`MAX_IDENTIFIER_BYTES`].
pub fn make_object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let overhead = label.len() + 1 + usize::from(name2.is_some());
    let available = MAX_IDENTIFIER_BYTES.saturating_sub(overhead);
    let (mut n1, mut n2): (Vec<char>, Vec<char>) = (
        name1.chars().collect(),
        name2.unwrap_or("").chars().collect(),
    );
    let bytes = |c: &[char]| c.iter().map(|c| c.len_utf8()).sum::<usize>();
    while bytes(&n1) + bytes(&n2) > available {
        if bytes(&n1) > bytes(&n2) {
            n1.pop();
        } else {
            n2.pop();
        }
    }
    let mut out: String = n1.into_iter().collect();
    if name2.is_some() {
        out.push('_');
        out.extend(n2);
    }
    out.push('_');
    out.push_str(label);
    out
}

/// PostgreSQL's `ChooseRelationName`: the generated name, or with the label numbered
/// (`idx1`, `idx2`, ...) until `taken` says it is free.
pub fn choose_name(
    name1: &str,
    name2: Option<&str>,
    label: &str,
    taken: NameTaken,
) -> Result<String> {
    let mut candidate = make_object_name(name1, name2, label);
    let mut pass = 0;
    while taken(&candidate)? {
        pass += 1;
        candidate = make_object_name(name1, name2, &format!("{label}{pass}"));
    }
    Ok(candidate)
}

/// The column positions and DESC flags of an index's key columns. `missing` words the error
/// for an unknown column (PostgreSQL's differs between CREATE INDEX and constraints).
fn key_columns(
    table: &Table,
    columns: &[ast::IndexColumn],
    missing: &dyn Fn(&str) -> SqlError,
) -> Result<(Vec<usize>, Vec<bool>)> {
    let mut positions = Vec::new();
    let mut descending = Vec::new();
    for c in columns {
        let name = match &c.column.expr {
            ast::Expr::Identifier(i) => ident_name(i),
            other => {
                return Err(SqlError::unsupported(format!(
                    "index expressions are not supported: {other}"
                )))
            }
        };
        if c.operator_class.is_some() {
            return Err(SqlError::unsupported(
                "index operator classes are not supported",
            ));
        }
        let desc = match &c.column.options.sort {
            None | Some(ast::OrderBySort::Asc) => false,
            Some(ast::OrderBySort::Desc) => true,
            Some(ast::OrderBySort::Using(operator)) => {
                return Err(SqlError::unsupported(format!(
                    "index column order USING {operator} is not supported"
                )))
            }
        };
        // Ascending keys put NULLs last and descending ones first, PostgreSQL's defaults.
        if c.column
            .options
            .nulls_first
            .is_some_and(|first| first != desc)
        {
            return Err(SqlError::unsupported(
                "NULLS FIRST on an ascending (or NULLS LAST on a descending) index column is \
                 not supported",
            ));
        }
        let position = table.column_index(&name).ok_or_else(|| missing(&name))?;
        positions.push(position);
        descending.push(desc);
    }
    Ok((positions, descending))
}

/// The column positions of a constraint's key (PRIMARY KEY, UNIQUE), which has no column
/// orders.
pub(super) fn constraint_columns(
    table: &Table,
    columns: &[ast::IndexColumn],
) -> Result<Vec<usize>> {
    Ok(key_columns(table, columns, &constraint_column_missing)?.0)
}

fn constraint_column_missing(name: &str) -> SqlError {
    SqlError::new(
        sqlstate::UNDEFINED_COLUMN,
        format!("column \"{name}\" named in key does not exist"),
    )
}

/// The `<columns>` part of a generated index name: the column names joined by `_`.
fn columns_part(table: &Table, columns: &[usize]) -> String {
    let names: Vec<&str> = columns
        .iter()
        .map(|&c| table.columns[c].name.as_str())
        .collect();
    names.join("_")
}

/// `CREATE [UNIQUE] INDEX [IF NOT EXISTS] [name] ON table [USING btree] (col [ASC|DESC], ...)`
/// as a descriptor of `table`'s new index (its `id` still 0). `None` when IF NOT EXISTS
/// names an existing relation: nothing to do.
pub fn create_index(
    table: &Table,
    statement: &ast::CreateIndex,
    taken: NameTaken,
) -> Result<Option<Index>> {
    match &statement.using {
        None | Some(ast::IndexType::BTree) => {}
        Some(ast::IndexType::Hash) if statement.unique => {
            return Err(SqlError::unsupported(
                "access method \"hash\" does not support unique indexes",
            ))
        }
        Some(ast::IndexType::Hash) => {}
        Some(ast::IndexType::Custom(name)) => {
            return Err(SqlError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("access method \"{}\" does not exist", ident_name(name)),
            ))
        }
        Some(other) => {
            return Err(SqlError::unsupported(format!(
                "access method \"{}\" is not supported",
                other.to_string().to_lowercase()
            )))
        }
    }
    if statement.predicate.is_some() {
        return Err(SqlError::unsupported("partial indexes are not supported"));
    }
    if !statement.include.is_empty() {
        return Err(SqlError::unsupported("INCLUDE columns are not supported"));
    }
    if !statement.with.is_empty() || !statement.index_options.is_empty() {
        return Err(SqlError::unsupported(
            "index storage options are not supported",
        ));
    }
    let (columns, descending) = key_columns(table, &statement.columns, &|name| {
        SqlError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column \"{name}\" does not exist"),
        )
    })?;
    let name = match &statement.name {
        Some(name) => {
            let name = object_name(name)?;
            if taken(&name)? {
                if statement.if_not_exists {
                    return Ok(None);
                }
                return Err(relation_exists(&name));
            }
            name
        }
        None => choose_name(
            &table.name,
            Some(&columns_part(table, &columns)),
            "idx",
            taken,
        )?,
    };
    Ok(Some(Index {
        id: 0,
        name,
        columns,
        descending,
        unique: statement.unique,
        nulls_distinct: statement.nulls_distinct != Some(false),
        constraint: false,
    }))
}

/// A UNIQUE constraint of `table` (named `name`, else `<table>_<columns>_key` chosen free of
/// `taken`) as an index descriptor (its `id` still 0).
pub fn unique_constraint(
    table: &Table,
    name: Option<&ast::Ident>,
    unique: &ast::UniqueConstraint,
    taken: NameTaken,
) -> Result<Index> {
    if !unique.include.is_empty() {
        return Err(SqlError::unsupported("INCLUDE columns are not supported"));
    }
    if unique.characteristics.as_ref().is_some_and(|c| {
        c.deferrable == Some(true) || c.initially == Some(ast::DeferrableInitial::Deferred)
    }) {
        return Err(SqlError::unsupported(
            "deferrable UNIQUE constraints are not supported",
        ));
    }
    let (columns, descending) = key_columns(table, &unique.columns, &constraint_column_missing)?;
    let name = match name.or(unique.name.as_ref()) {
        Some(name) => ident_name(name),
        None => choose_name(
            &table.name,
            Some(&columns_part(table, &columns)),
            "key",
            taken,
        )?,
    };
    Ok(Index {
        id: 0,
        name,
        columns,
        descending,
        unique: true,
        nulls_distinct: !matches!(unique.nulls_distinct, ast::NullsDistinctOption::NotDistinct),
        constraint: true,
    })
}

/// Whether `a` and `b` are the same index definition (PostgreSQL drops a UNIQUE constraint
/// of `CREATE TABLE` that repeats an earlier one or the primary key).
pub fn same_key(a: &Index, b: &Index) -> bool {
    a.columns == b.columns && a.descending == b.descending && a.nulls_distinct == b.nulls_distinct
}

/// `ALTER TABLE ... DROP COLUMN` on indexes: those over the column go (PostgreSQL drops
/// indexes and constraints that use it), the others' positions past it shift down.
pub fn drop_column(table: &mut Table, column: usize) {
    table.indexes.retain(|i| !i.columns.contains(&column));
    for index in &mut table.indexes {
        for c in &mut index.columns {
            if *c > column {
                *c -= 1;
            }
        }
    }
}

/// The unique indexes an `INSERT ... ON CONFLICT` arbitrates on, as PostgreSQL infers them:
/// with a column list, every unique index (the primary key included) whose columns are
/// exactly those; with `ON CONSTRAINT n`, the primary key or UNIQUE constraint `n`; with no
/// target (DO NOTHING only), every unique index.
pub fn arbiters(
    table: &Table,
    target: Option<&ast::ConflictTarget>,
    do_update: bool,
) -> Result<Vec<Arbiter>> {
    let mut unique: Vec<(Arbiter, Vec<usize>, Option<&str>)> = Vec::new();
    if !table.has_row_id() {
        unique.push((
            Arbiter::PrimaryKey,
            table.primary_key.clone(),
            table.primary_key_name.as_deref(),
        ));
    }
    for index in table.indexes.iter().filter(|i| i.unique) {
        let constraint = index.constraint.then_some(index.name.as_str());
        unique.push((Arbiter::Index(index.id), index.columns.clone(), constraint));
    }
    match target {
        None if do_update => Err(SqlError::syntax(
            "ON CONFLICT DO UPDATE requires inference specification or constraint name",
        )
        .with_hint("For example, ON CONFLICT (column_name).")),
        None => Ok(unique.into_iter().map(|(a, _, _)| a).collect()),
        Some(ast::ConflictTarget::Columns(columns)) => {
            let mut wanted = Vec::new();
            for c in columns {
                let name = ident_name(c);
                let position = table.column_index(&name).ok_or_else(|| {
                    SqlError::new(
                        sqlstate::UNDEFINED_COLUMN,
                        format!("column \"{name}\" does not exist"),
                    )
                })?;
                wanted.push(position);
            }
            wanted.sort_unstable();
            wanted.dedup();
            let found: Vec<Arbiter> = unique
                .into_iter()
                .filter(|(_, cols, _)| {
                    let mut cols = cols.clone();
                    cols.sort_unstable();
                    cols.dedup();
                    cols == wanted
                })
                .map(|(a, _, _)| a)
                .collect();
            if found.is_empty() {
                return Err(SqlError::new(
                    sqlstate::INVALID_COLUMN_REFERENCE,
                    "there is no unique or exclusion constraint matching the ON CONFLICT \
                     specification",
                ));
            }
            Ok(found)
        }
        Some(ast::ConflictTarget::OnConstraint(name)) => {
            let name = object_name(name)?;
            unique
                .into_iter()
                .find(|(_, _, constraint)| *constraint == Some(name.as_str()))
                .map(|(a, _, _)| vec![a])
                .ok_or_else(|| {
                    SqlError::new(
                        sqlstate::UNDEFINED_OBJECT,
                        format!(
                            "constraint \"{name}\" for table \"{}\" does not exist",
                            table.name
                        ),
                    )
                })
        }
    }
}

/// 42P07 for a relation name in use.
pub fn relation_exists(name: &str) -> SqlError {
    SqlError::new(
        sqlstate::DUPLICATE_TABLE,
        format!("relation \"{name}\" already exists"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_fit_like_postgres() {
        assert_eq!(make_object_name("t", Some("a_b"), "key"), "t_a_b_key");
        assert_eq!(make_object_name("t", None, "pkey"), "t_pkey");
        // As PostgreSQL 15 names them (checked there).
        let table = "a".repeat(49);
        let column = "b".repeat(44);
        assert_eq!(
            make_object_name(&table, Some(&column), "key"),
            format!("{}_{}_key", "a".repeat(29), "b".repeat(29))
        );
        assert_eq!(
            make_object_name(&table, Some(&column), "idx1"),
            format!("{}_{}_idx1", "a".repeat(29), "b".repeat(28))
        );
        let taken = |n: &str| Ok(n == "u_a_key" || n == "u_a_key1");
        assert_eq!(
            choose_name("u", Some("a"), "key", &taken).unwrap(),
            "u_a_key2"
        );
    }
}
