//! Catalog descriptors the binder resolves names against: tables, their columns, keys,
//! indexes and constraints. Where descriptors live (the datanode's storage, the coordinator's
//! cluster catalog) is the [`Catalog`] implementor's business.
//!
//! Defaults and CHECK constraints are kept as SQL text and bound when a statement uses them,
//! so a descriptor serialises as plain data.

use super::error::Result;
use super::value::DataType;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A column of a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// The column name (folded to lower case unless quoted).
    pub name: String,
    /// The type.
    pub data_type: DataType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The DEFAULT expression as SQL text, e.g. `nextval('t_id_seq')` for a serial.
    pub default: Option<String>,
}

/// A secondary index (a B-tree over column values, as PostgreSQL's default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// The index's storage id.
    pub id: u64,
    /// The index name (a relation name, unique among tables and indexes).
    pub name: String,
    /// Indexed column positions, in key order.
    pub columns: Vec<usize>,
    /// Per indexed column: whether it is descending (`DESC`, NULLs first); ascending columns
    /// put NULLs last.
    pub descending: Vec<bool>,
    /// Whether the index enforces uniqueness (UNIQUE constraint or index).
    pub unique: bool,
    /// Whether NULLs are distinct for uniqueness (true unless `NULLS NOT DISTINCT`).
    pub nulls_distinct: bool,
    /// Whether the index implements a UNIQUE constraint (dropped with the constraint, not
    /// with DROP INDEX).
    pub constraint: bool,
}

impl Index {
    /// The indexed columns' names in `table`, for messages and EXPLAIN.
    pub fn column_names<'t>(&self, table: &'t Table) -> Vec<&'t str> {
        self.columns
            .iter()
            .map(|&c| table.columns.get(c).map_or("?", |col| col.name.as_str()))
            .collect()
    }
}

/// A CHECK constraint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The constraint name (`<table>_<column>_check` or `<table>_check` as PostgreSQL names
    /// them, unless given).
    pub name: String,
    /// The boolean expression as SQL text.
    pub expr: String,
}

/// A table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// The table's storage id.
    pub id: u64,
    /// The table name.
    pub name: String,
    /// The columns, in order.
    pub columns: Vec<Column>,
    /// Primary-key column positions; empty when the table has none (rows are then keyed by a
    /// hidden row id).
    pub primary_key: Vec<usize>,
    /// The primary key constraint's name (`<table>_pkey`).
    pub primary_key_name: Option<String>,
    /// Secondary indexes, UNIQUE constraints included.
    pub indexes: Vec<Index>,
    /// CHECK constraints.
    pub checks: Vec<Check>,
}

impl Table {
    /// The position of column `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Whether rows are keyed by a hidden row id.
    pub fn has_row_id(&self) -> bool {
        self.primary_key.is_empty()
    }

    /// The secondary index called `name`.
    pub fn index(&self, name: &str) -> Option<&Index> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// Every relation name the table holds: its own, its primary key's and its indexes'
    /// (PostgreSQL keeps them in one namespace).
    pub fn relation_names(&self) -> Vec<&str> {
        let mut names = vec![self.name.as_str()];
        names.extend(self.primary_key_name.as_deref());
        names.extend(self.indexes.iter().map(|i| i.name.as_str()));
        names
    }
}

/// Name resolution for the binder.
pub trait Catalog {
    /// The table called `name`, as the current transaction sees the catalog.
    fn table(&self, name: &str) -> Result<Option<Arc<Table>>>;
}
