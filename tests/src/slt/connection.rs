//! One sqllogictest database connection over tokio-postgres, in either protocol mode — the
//! way sqllogictest-engines' `postgres` engine does it (without its MySQL dependencies).
//!
//! - [`Protocol::Simple`]: the text `Query` message; fields arrive as PostgreSQL's text.
//!   Only the first statement's rows count, as in sqllogictest-engines.
//! - [`Protocol::Extended`]: Parse/Describe/Bind/Execute with no parameters and binary
//!   results; every field is turned back into PostgreSQL's text by [`super::format`], and the
//!   column types are reported (`I`, `R`, `T`, `?`), so one expectation serves both modes.
//!
//! Errors display as `db error: SQLSTATE: message` (one line, without detail or hint):
//! `statement error db error` matches any server error, as in the SQLite corpus, and the
//! expectation that `RXC_SLT_OVERRIDE` writes pins both the SQLSTATE and the message.

use super::format::{self, NULL};
use async_trait::async_trait;
use bytes::BytesMut;
use futures::{pin_mut, StreamExt};
use sqllogictest::{DBOutput, DefaultColumnType};
use std::fmt;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Which PostgreSQL query protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The simple query protocol (text results).
    Simple,
    /// The extended query protocol (prepared statements, binary results).
    Extended,
}

impl Protocol {
    /// Both modes, in the order files run in.
    pub const ALL: [Protocol; 2] = [Protocol::Simple, Protocol::Extended];

    /// `simple` or `extended`; also the engine name `skipif`/`onlyif` can test.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Simple => "simple",
            Protocol::Extended => "extended",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error of a statement: the server's, or the client's when there is no SQLSTATE.
#[derive(Debug)]
pub struct SltError(tokio_postgres::Error);

impl SltError {
    /// The SQLSTATE, for a server error.
    pub fn sqlstate(&self) -> Option<&str> {
        self.0.code().map(|c| c.code())
    }
}

impl fmt::Display for SltError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_db_error() {
            Some(db) => write!(f, "db error: {}: {}", db.code().code(), db.message()),
            None => write!(f, "{}", self.0),
        }
    }
}

impl std::error::Error for SltError {}

impl From<tokio_postgres::Error> for SltError {
    fn from(e: tokio_postgres::Error) -> Self {
        SltError(e)
    }
}

/// A connection to one database, in one protocol mode.
pub struct Connection {
    client: Client,
    protocol: Protocol,
    driver: JoinHandle<()>,
}

impl Connection {
    /// Connects with a tokio-postgres connection string.
    pub async fn connect(conninfo: &str, protocol: Protocol) -> Result<Connection, SltError> {
        let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await?;
        let driver = tokio::spawn(async move {
            // The error, if any, reaches the client as a closed connection.
            let _ = connection.await;
        });
        Ok(Connection {
            client,
            protocol,
            driver,
        })
    }

    async fn run_simple(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let mut rows = Vec::new();
        let mut count = 0;
        for message in self.client.simple_query(sql).await? {
            match message {
                SimpleQueryMessage::Row(row) => rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).map_or(NULL.to_string(), format::text_field))
                        .collect::<Vec<_>>(),
                ),
                SimpleQueryMessage::CommandComplete(n) => {
                    count = n;
                    break;
                }
                _ => {}
            }
        }
        if rows.is_empty() {
            return Ok(DBOutput::StatementComplete(count));
        }
        let types = vec![DefaultColumnType::Any; rows[0].len()];
        Ok(DBOutput::Rows { types, rows })
    }

    async fn run_extended(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let statement = self.client.prepare(sql).await?;
        let stream = self
            .client
            .query_raw(&statement, std::iter::empty::<&(dyn ToSql + Sync)>())
            .await?;
        pin_mut!(stream);
        let mut raw_rows = Vec::new();
        while let Some(row) = stream.next().await {
            let row = row?;
            let values = (0..row.len())
                .map(|i| {
                    row.try_get::<_, Option<RawValue>>(i)
                        .map(|v| v.map(|v| v.0))
                })
                .collect::<Result<Vec<_>, _>>()?;
            raw_rows.push(values);
        }
        let columns = statement.columns();
        if raw_rows.is_empty() {
            if let Some(count) = stream.rows_affected().filter(|_| columns.is_empty()) {
                return Ok(DBOutput::StatementComplete(count));
            }
        }
        let mut rows = Vec::with_capacity(raw_rows.len());
        for raw_row in raw_rows {
            let mut row = Vec::with_capacity(raw_row.len());
            for (column, raw) in columns.iter().zip(raw_row) {
                row.push(match raw {
                    None => NULL.to_string(),
                    Some(raw) => self.text_of(column.type_(), &raw).await?,
                });
            }
            rows.push(row);
        }
        let types = columns
            .iter()
            .map(|c| format::column_type(c.type_()))
            .collect();
        Ok(DBOutput::Rows { types, rows })
    }

    /// The text of a binary value: decoded here, or by the server (`$1::text`) for a type
    /// [`format::format_binary`] does not know.
    async fn text_of(&self, ty: &Type, raw: &[u8]) -> Result<String, SltError> {
        if let Some(text) = format::format_binary(ty, raw) {
            return Ok(text.unwrap_or_else(|e| format!("<undecodable {e}>")));
        }
        let cast = self
            .client
            .prepare_typed("SELECT $1::text", std::slice::from_ref(ty))
            .await?;
        let row = self.client.query_one(&cast, &[&TypedRaw(raw)]).await?;
        Ok(format::text_field(row.get::<_, &str>(0)))
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for Connection {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        match self.protocol {
            Protocol::Simple => self.run_simple(sql).await,
            Protocol::Extended => self.run_extended(sql).await,
        }
    }

    async fn shutdown(&mut self) {
        self.driver.abort();
    }

    fn engine_name(&self) -> &str {
        self.protocol.name()
    }

    async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await
    }

    async fn run_command(command: std::process::Command) -> std::io::Result<std::process::Output> {
        tokio::process::Command::from(command).output().await
    }

    fn error_sql_state(err: &SltError) -> Option<String> {
        err.sqlstate().map(str::to_string)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A result field's binary bytes, whatever its type.
struct RawValue(Vec<u8>);

impl<'a> FromSql<'a> for RawValue {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawValue(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Binary bytes sent back as a parameter of the type they came as.
#[derive(Debug)]
struct TypedRaw<'a>(&'a [u8]);

impl ToSql for TypedRaw<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
