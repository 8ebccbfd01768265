//! `COPY` through the coordinator.
//!
//! `COPY t FROM STDIN` into a distributed table: the coordinator decodes the client's data
//! (text or CSV, PostgreSQL's formats: [`rxc_common::sql::copy`]) and every
//! [`BATCH_ROWS`] rows turns the batch into one `INSERT INTO t (cols) VALUES ...` of literals,
//! run as the session's own INSERT would be — each row to the datanode its distribution value
//! hashes to (all of them for a replicated table), one multi-row INSERT per node, the nodes
//! concurrently; defaults, constraints and serial columns behave as for INSERT. The COPY is
//! one statement of the session's transaction (outside a block, one transaction, committed
//! when the data ends; two-phase when several datanodes took rows). An error stops it: the
//! rest of the data is read and dropped, and the error, with PostgreSQL's `COPY t, line n`
//! context, is reported when the data ends.
//!
//! `COPY t TO STDOUT` / `COPY (query) TO STDOUT` runs `SELECT ... FROM t` (or the query)
//! through the coordinator and encodes the rows.
//!
//! A COPY of a table of the coordinator's own (no distribution) runs on its local storage.

use rxc_common::sql::binder::quote_ident;
use rxc_common::sql::copy::{check_width, CopyDecoder, CopyFormat, CopyRow};
use rxc_common::sql::error::{Result, SqlError};
use sqlparser::ast;

/// Rows per INSERT batch.
pub const BATCH_ROWS: usize = 1000;

/// A COPY FROM STDIN into a distributed table, in progress.
pub struct CopyIn {
    pub table: String,
    pub columns: Vec<String>,
    pub decoder: CopyDecoder,
    pub pending: Vec<CopyRow>,
    pub rows: u64,
    pub error: Option<SqlError>,
}

impl CopyIn {
    pub fn new(table: String, columns: Vec<String>, format: CopyFormat) -> CopyIn {
        CopyIn {
            table,
            columns,
            decoder: CopyDecoder::new(format),
            pending: Vec::new(),
            rows: 0,
            error: None,
        }
    }

    /// Takes a chunk of data; returns whether a batch is ready.
    pub fn feed(&mut self, data: &[u8]) -> bool {
        if self.error.is_some() {
            return false;
        }
        if let Err(e) = self.decoder.feed(data, &mut self.pending) {
            let line = self.decoder.line() + 1;
            self.fail(e, line);
            return false;
        }
        self.pending.len() >= BATCH_ROWS
    }

    /// The data ended: decodes what is left.
    pub fn finish(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.decoder.finish(&mut self.pending) {
                self.error = Some(e.with_context(format!("COPY {}", self.table)));
            }
        }
    }

    /// Records the COPY's error (the first one) at `line`.
    pub fn fail(&mut self, e: SqlError, line: u64) {
        if self.error.is_none() {
            let context = format!("COPY {}, line {line}", self.table);
            self.error = Some(if e.context.is_none() {
                e.with_context(context)
            } else {
                e
            });
        }
        self.pending.clear();
    }

    /// The pending rows as one INSERT of literals (text, as PostgreSQL takes an untyped
    /// literal for any column type), with the first row's line; `None` when there are none.
    pub fn take_batch(&mut self) -> Result<Option<(ast::Statement, u64)>> {
        if self.error.is_some() || self.pending.is_empty() {
            self.pending.clear();
            return Ok(None);
        }
        let batch = std::mem::take(&mut self.pending);
        let first_line = batch[0].1;
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            quote_ident(&self.table),
            self.columns
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (i, (fields, line)) in batch.iter().enumerate() {
            check_width(fields.len(), &self.columns, || {
                format!("COPY {}, line {line}", self.table)
            })?;
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for (j, f) in fields.iter().enumerate() {
                if j > 0 {
                    sql.push_str(", ");
                }
                match f {
                    None => sql.push_str("NULL"),
                    Some(text) => {
                        sql.push('\'');
                        sql.push_str(&text.replace('\'', "''"));
                        sql.push('\'');
                    }
                }
            }
            sql.push(')');
        }
        self.rows += batch.len() as u64;
        Ok(Some((crate::pushdown::parse_statement(&sql)?, first_line)))
    }
}
