//! `COPY ... FROM STDIN` and `COPY ... TO STDOUT` on the datanode.
//!
//! COPY FROM opens the statement's transaction (a GXID at once: it writes), binds an
//! `INSERT INTO t (cols) VALUES ($1, ...)` once as a template, and then, as `CopyData` arrives,
//! decodes rows ([`CopyDecoder`]), turns each field into a value of its column's type, and runs
//! the template over batches of [`BATCH_ROWS`] rows — so defaults, serial columns, NOT NULL and
//! CHECK constraints and key uniqueness behave exactly as for INSERT. An error stops the COPY:
//! the remaining data is read and dropped, and the error (with PostgreSQL's `COPY t, line n`
//! context) is reported when the client ends the data; the transaction is then failed. Outside a
//! transaction block the whole COPY is one transaction, committed at `CopyDone`.
//!
//! COPY TO runs `SELECT cols FROM t` (or the COPY's query) and encodes each row as one line.

use super::{Session, StatementResult};
use crate::sql::catalog::CatalogView;
use crate::sql::session::statement::storage;
use rxc_common::sql::binder;
use rxc_common::sql::binder::quote_ident;
use rxc_common::sql::catalog::Catalog;
use rxc_common::sql::copy::{self, CopyDecoder, CopyFormat, CopyRow};
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::exec;
use rxc_common::sql::expr::{Expr, SeqCall};
use rxc_common::sql::parser::{self, CopyStatement, GenericOption, Statement};
use rxc_common::sql::plan::{BoundQuery, Plan};
use rxc_common::sql::{DataType, Value};
use sqlparser::ast;

/// Rows inserted per executor run while copying in.
const BATCH_ROWS: usize = 1000;

/// A COPY FROM STDIN in progress.
pub(super) struct CopyIn {
    table: String,
    columns: Vec<String>,
    types: Vec<DataType>,
    /// `INSERT INTO t (cols) VALUES ($1, ...)`, bound; its source is replaced per batch.
    template: BoundQuery,
    decoder: CopyDecoder,
    pending: Vec<CopyRow>,
    rows: u64,
    error: Option<SqlError>,
}

fn copy_source(source: &ast::CopySource) -> Result<(String, Vec<String>)> {
    match source {
        ast::CopySource::Table {
            table_name,
            columns,
        } => Ok((
            binder::object_name(table_name)?,
            columns.iter().map(binder::ident_name).collect(),
        )),
        ast::CopySource::Query(_) => Err(SqlError::syntax(
            "COPY (query) FROM is not valid; COPY FROM needs a table",
        )),
    }
}

impl Session {
    /// Starts a `COPY` statement: COPY FROM STDIN enters copy-in mode, COPY TO STDOUT returns
    /// its data at once.
    pub(super) async fn start_copy(&mut self, copy: &CopyStatement) -> Result<StatementResult> {
        copy::check_target(copy)?;
        if copy.to {
            return self.copy_out(&copy.source, &copy.options).await;
        }
        let (table_name, mut columns) = copy_source(&copy.source)?;
        let prepared = self
            .on_blocking_thread(true, move |node, txn, _| {
                let view = CatalogView {
                    txn,
                    cache: &node.catalog,
                };
                let table = Catalog::table(&view, &table_name)?.ok_or_else(|| {
                    SqlError::new(
                        sqlstate::UNDEFINED_TABLE,
                        format!("relation \"{table_name}\" does not exist"),
                    )
                })?;
                if columns.is_empty() {
                    columns = table.columns.iter().map(|c| c.name.clone()).collect();
                }
                let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
                let quoted: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    quote_ident(&table.name),
                    quoted.join(", "),
                    params.join(", ")
                );
                let Some(Statement::Sql(insert)) = parser::parse_single(&sql)? else {
                    return Err(SqlError::internal("COPY template did not parse"));
                };
                let template =
                    binder::bind(&view, &insert, &vec![DataType::Unknown; columns.len()])?;
                Ok((table.name.clone(), columns, template))
            })
            .await;
        let (table, columns, template) = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.fail().await;
                return Err(e);
            }
        };
        let format = CopyFormat::from_options(&copy.options, &columns);
        let format = match format {
            Ok(f) => f,
            Err(e) => {
                self.fail().await;
                return Err(e);
            }
        };
        let csv = format.csv;
        let types = template.params.clone();
        self.copy_in = Some(CopyIn {
            table,
            columns: columns.clone(),
            types,
            template,
            decoder: CopyDecoder::new(format),
            pending: Vec::new(),
            rows: 0,
            error: None,
        });
        Ok(StatementResult::CopyIn {
            columns: columns.len(),
            csv,
        })
    }

    /// Whether a COPY FROM STDIN is in progress.
    pub fn in_copy(&self) -> bool {
        self.copy_in.is_some()
    }

    /// Takes a chunk of COPY data.
    pub async fn copy_data(&mut self, data: &[u8]) {
        let Some(copy) = &mut self.copy_in else {
            return;
        };
        if copy.error.is_some() {
            return;
        }
        if let Err(e) = copy.decoder.feed(data, &mut copy.pending) {
            let line = copy.decoder.line() + 1;
            copy.error = Some(e.with_context(format!("COPY {}, line {line}", copy.table)));
            return;
        }
        if copy.pending.len() >= BATCH_ROWS {
            self.insert_pending().await;
        }
    }

    /// The client ended the data: inserts what is left and ends the statement (committing it
    /// outside a transaction block). Returns the command tag.
    pub async fn copy_done(&mut self) -> Result<StatementResult> {
        if let Some(copy) = &mut self.copy_in {
            if copy.error.is_none() {
                if let Err(e) = copy.decoder.finish(&mut copy.pending) {
                    copy.error = Some(e.with_context(format!("COPY {}", copy.table)));
                }
            }
        }
        self.insert_pending().await;
        let Some(copy) = self.copy_in.take() else {
            return Err(SqlError::internal("no COPY in progress"));
        };
        if let Some(e) = copy.error {
            self.fail().await;
            return Err(e);
        }
        if !self.in_transaction_block() {
            self.finish(true).await?;
        }
        Ok(StatementResult::Command(format!("COPY {}", copy.rows)))
    }

    /// The client gave up the COPY (CopyFail).
    pub async fn copy_fail(&mut self, message: &str) -> SqlError {
        self.copy_in = None;
        self.fail().await;
        SqlError::new(
            sqlstate::QUERY_CANCELED,
            format!("COPY from stdin failed: {message}"),
        )
    }

    /// Inserts the decoded rows waiting in the COPY, unless it already failed.
    async fn insert_pending(&mut self) {
        let Some(copy) = &mut self.copy_in else {
            return;
        };
        if copy.error.is_some() || copy.pending.is_empty() {
            copy.pending.clear();
            return;
        }
        let batch = std::mem::take(&mut copy.pending);
        let first_line = batch.first().map(|(_, l)| *l).unwrap_or(0);
        let plan = match values_for(copy, batch) {
            Ok(rows) => with_source(&copy.template, rows),
            Err(e) => {
                copy.error = Some(e);
                return;
            }
        };
        let n = match &plan.root {
            Plan::Insert { source, .. } => match &**source {
                Plan::Values { rows, .. } => rows.len() as u64,
                _ => 0,
            },
            _ => 0,
        };
        let session_sequences = self.session_sequences.clone();
        let result = self
            .on_blocking_thread(true, move |node, txn, row_ids| {
                super::statement::snapshot_for(txn, &plan)?;
                let sequences = &|call: &SeqCall, args: &[Value]| {
                    super::statement::sequence_call(node, &session_sequences, call, args)
                };
                let mut storage = storage(node, sequences, txn, row_ids);
                exec::execute(&plan, &[], &mut storage).map(|_| ())
            })
            .await;
        let Some(copy) = &mut self.copy_in else {
            return;
        };
        match result {
            Ok(()) => copy.rows += n,
            Err(e) => {
                let context = format!("COPY {}, line {first_line}", copy.table);
                copy.error = Some(if e.context.is_none() {
                    e.with_context(context)
                } else {
                    e
                });
            }
        }
    }

    /// `COPY t [(cols)] TO STDOUT` / `COPY (query) TO STDOUT`.
    async fn copy_out(
        &mut self,
        source: &ast::CopySource,
        options: &[GenericOption],
    ) -> Result<StatementResult> {
        let sql = copy::out_query(source)?;
        let Some(query) = parser::parse_single(&sql)? else {
            return Err(SqlError::internal("COPY query did not parse"));
        };
        let Statement::Sql(query) = query else {
            return Err(SqlError::syntax("COPY needs a query"));
        };
        let result = self.run_statement(query, Vec::new(), None).await?;
        let StatementResult::Rows { columns, rows, .. } = result else {
            return Err(SqlError::internal("COPY query returned no rows"));
        };
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        let (csv, lines) = copy::encode_out(options, &names, &rows)?;
        Ok(StatementResult::CopyOut {
            columns: columns.len(),
            csv,
            lines,
        })
    }
}

/// The batch's rows as constant rows of the COPY's column types.
fn values_for(copy: &CopyIn, batch: Vec<CopyRow>) -> Result<Vec<Vec<Expr>>> {
    let mut out = Vec::with_capacity(batch.len());
    for (fields, line) in batch {
        let context = |column: Option<(&str, &str)>| match column {
            Some((name, text)) => {
                format!(
                    "COPY {}, line {line}, column {name}: \"{text}\"",
                    copy.table
                )
            }
            None => format!("COPY {}, line {line}", copy.table),
        };
        copy::check_width(fields.len(), &copy.columns, || context(None))?;
        let mut row = Vec::with_capacity(fields.len());
        for (i, field) in fields.into_iter().enumerate() {
            let value = match field {
                None => Value::Null,
                Some(text) => Value::parse(&text, &copy.types[i])
                    .map_err(|e| e.with_context(context(Some((&copy.columns[i], &text)))))?,
            };
            row.push(Expr::Constant(value));
        }
        out.push(row);
    }
    Ok(out)
}

/// The template with `rows` as its VALUES.
fn with_source(template: &BoundQuery, rows: Vec<Vec<Expr>>) -> BoundQuery {
    let mut plan = template.clone();
    if let Plan::Insert { source, .. } = &mut plan.root {
        let columns = source.columns();
        **source = Plan::Values { rows, columns };
    }
    plan
}
