//! The datanode's PostgreSQL wire endpoint (pgwire): startup and authentication, the simple
//! and extended query protocols, and the mapping of rxc values to wire formats.
//!
//! Every connection gets its own handler set owning its session — a [`Backend`]: the
//! datanode's [`Session`], or a coordinator's — and pgwire drives the protocol and calls into
//! it. Text-format values are rendered by rxc's own
//! [`Value::to_text`] (PostgreSQL's output format); binary values use the postgres-types
//! encodings of the matching Rust types.

use crate::auth::Authenticator;
use crate::sql::plan_cache::{PlanSlot, Prepared};
use crate::sql::session::{Node, Session, StatementResult};
use async_trait::async_trait;
use futures::{stream, Sink, SinkExt};
use pgwire::api::auth::driver::AuthOutcome;
use pgwire::api::auth::{
    protocol_negotiation, save_startup_parameters_to_metadata, AuthDriver,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    CopyResponse, DataRowEncoder, DescribePortalResponse, DescribeStatementResponse, FieldFormat,
    FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::{ClientInfo, PgWireServerHandlers, Type, METADATA_DATABASE, METADATA_USER};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::startup::SecretKey;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use rxc_common::auth::AuthMethod;
use rxc_common::sql::error::Result;
use rxc_common::sql::error::{sqlstate, SqlError};
use rxc_common::sql::parse_cache::ParseCache;
use rxc_common::sql::parser::{self, Statement};
use rxc_common::sql::plan::OutputColumn;
use rxc_common::sql::{DataType, Value};
use std::fmt::Debug;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The PostgreSQL version rxc reports (clients key features off it).
pub const SERVER_VERSION: &str = "15.0";

/// A connection's SQL session, which the endpoint drives: what a statement, a Describe, COPY
/// data and the end of the connection do.
#[async_trait]
pub trait Backend: Send + 'static {
    /// What the sessions of a server share (the datanode's [`Node`], a coordinator's cluster).
    type Shared: Cancel + Send + Sync + 'static;

    /// A session for a new connection.
    fn new(shared: &Arc<Self::Shared>) -> Self;
    /// Binds a statement to learn its parameter and result types (Describe).
    async fn describe(
        &mut self,
        stmt: &Statement,
        prepared: &Prepared,
    ) -> Result<(Vec<DataType>, Vec<OutputColumn>)>;
    /// Runs one statement with parameter values (already of the described types).
    async fn execute(
        &mut self,
        stmt: &Statement,
        params: &[Value],
        prepared: Option<Prepared>,
    ) -> Result<StatementResult>;
    /// A chunk of COPY FROM STDIN data.
    async fn copy_data(&mut self, data: &[u8]);
    /// The end of COPY FROM STDIN data: the COPY's result.
    async fn copy_done(&mut self) -> Result<StatementResult>;
    /// The client failed the COPY: the error it ends with.
    async fn copy_fail(&mut self, message: &str) -> SqlError;
    /// The connection ended: abort what is open.
    async fn close(&mut self);
    /// The connection's cancel key (backend pid and secret).
    fn register_cancel_key(&mut self, pid: i32, secret: Vec<u8>);
    /// The startup packet's `options` (`-c name=value ...`).
    fn apply_startup_options(&mut self, options: &str) -> Result<()>;
    /// The role the client logs in as (before its startup options apply).
    fn set_user(&mut self, user: &str);
    /// Whether the session is another rxc node's connection (`rxc.remotetype=coordinator`),
    /// which a smart shutdown does not wait for while it is idle.
    fn is_internal(&self) -> bool;
}

/// Where cancel requests go: the session whose pid and secret key match is cancelled.
pub trait Cancel {
    /// Cancels the statement of the session with this cancel key; whether one matched.
    fn cancel(&self, pid: i32, secret: &[u8]) -> bool;
}

impl Cancel for Node {
    fn cancel(&self, pid: i32, secret: &[u8]) -> bool {
        Node::cancel(self, pid, secret)
    }
}

#[async_trait]
impl Backend for Session {
    type Shared = Node;

    fn new(node: &Arc<Node>) -> Session {
        Session::new(node.clone())
    }

    async fn describe(
        &mut self,
        stmt: &Statement,
        prepared: &Prepared,
    ) -> Result<(Vec<DataType>, Vec<OutputColumn>)> {
        Session::describe(self, stmt, prepared).await
    }

    async fn execute(
        &mut self,
        stmt: &Statement,
        params: &[Value],
        prepared: Option<Prepared>,
    ) -> Result<StatementResult> {
        Session::execute(self, stmt, params, prepared).await
    }

    async fn copy_data(&mut self, data: &[u8]) {
        Session::copy_data(self, data).await
    }

    async fn copy_done(&mut self) -> Result<StatementResult> {
        Session::copy_done(self).await
    }

    async fn copy_fail(&mut self, message: &str) -> SqlError {
        Session::copy_fail(self, message).await
    }

    async fn close(&mut self) {
        Session::close(self).await
    }

    fn register_cancel_key(&mut self, pid: i32, secret: Vec<u8>) {
        Session::register_cancel_key(self, pid, secret)
    }

    fn apply_startup_options(&mut self, options: &str) -> Result<()> {
        Session::apply_startup_options(self, options)
    }

    fn set_user(&mut self, user: &str) {
        Session::set_user(self, user)
    }

    fn is_internal(&self) -> bool {
        self.is_from_coordinator()
    }
}

fn error_info(e: &SqlError) -> ErrorInfo {
    let mut info = ErrorInfo::new("ERROR".into(), e.code.into(), e.message.clone());
    info.detail = e.detail.clone();
    info.hint = e.hint.clone();
    info.where_context = e.context.clone();
    info
}

fn user_error(e: &SqlError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

/// The wire type of a column.
fn wire_type(t: &DataType) -> Type {
    Type::from_oid(t.oid()).unwrap_or(Type::TEXT)
}

fn field_info(columns: &[OutputColumn], format: &Format) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            FieldInfo::new(
                c.name.clone(),
                c.table_id.map(|t| t as i32),
                None,
                wire_type(&c.data_type),
                format.format_for(i),
            )
            .with_type_modifier(c.data_type.typmod())
            .with_type_size(c.data_type.len())
        })
        .collect()
}

/// Encodes one value into the row being built.
fn encode_value(enc: &mut DataRowEncoder, field: &FieldInfo, v: &Value) -> PgWireResult<()> {
    let ty = field.datatype().clone();
    let options = field.format_options().clone();
    if field.format() == FieldFormat::Text {
        return enc.encode_field_with_type_and_format(
            &v.to_text(),
            &ty,
            FieldFormat::Text,
            &options,
        );
    }
    let f = FieldFormat::Binary;
    match v {
        Value::Null => enc.encode_field_with_type_and_format(&None::<i32>, &ty, f, &options),
        Value::Bool(b) => enc.encode_field_with_type_and_format(b, &ty, f, &options),
        Value::Int2(i) => enc.encode_field_with_type_and_format(i, &ty, f, &options),
        Value::Int4(i) => enc.encode_field_with_type_and_format(i, &ty, f, &options),
        Value::Int8(i) => enc.encode_field_with_type_and_format(i, &ty, f, &options),
        Value::Float4(x) => enc.encode_field_with_type_and_format(x, &ty, f, &options),
        Value::Float8(x) => enc.encode_field_with_type_and_format(x, &ty, f, &options),
        Value::Numeric(d) => enc.encode_field_with_type_and_format(d, &ty, f, &options),
        Value::Text(s) => enc.encode_field_with_type_and_format(s, &ty, f, &options),
        Value::Date(d) => enc.encode_field_with_type_and_format(d, &ty, f, &options),
        Value::Timestamp(t) => enc.encode_field_with_type_and_format(t, &ty, f, &options),
        Value::TimestampTz(t) => enc.encode_field_with_type_and_format(t, &ty, f, &options),
        Value::Bytea(b) => enc.encode_field_with_type_and_format(b, &ty, f, &options),
    }
}

fn rows_response(
    columns: &[OutputColumn],
    rows: Vec<Vec<Value>>,
    format: &Format,
    tag: &str,
) -> PgWireResult<Response> {
    let fields = Arc::new(field_info(columns, format));
    let mut encoder = DataRowEncoder::new(fields.clone());
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        for (i, v) in row.iter().enumerate() {
            encode_value(&mut encoder, &fields[i], v)?;
        }
        out.push(Ok(encoder.take_row()));
    }
    let mut response = QueryResponse::new(fields, stream::iter(out));
    response.set_command_tag(tag);
    Ok(Response::Query(response))
}

/// The wire response of a statement's result.
pub fn to_response(result: StatementResult, format: &Format) -> PgWireResult<Response> {
    Ok(match result {
        StatementResult::Rows { columns, rows, tag } => {
            rows_response(&columns, rows, format, &tag)?
        }
        StatementResult::Command(tag) => Response::Execution(Tag::new(&tag)),
        StatementResult::Begin => Response::TransactionStart(Tag::new("BEGIN")),
        StatementResult::End(tag) => Response::TransactionEnd(Tag::new(&tag)),
        StatementResult::CopyIn { columns, .. } => {
            Response::CopyIn(CopyResponse::new(0, columns, stream::empty()))
        }
        StatementResult::CopyOut { columns, lines, .. } => {
            let data = lines.into_iter().map(|line| Ok(CopyData::new(line.into())));
            Response::CopyOut(CopyResponse::new(0, columns, stream::iter(data)))
        }
    })
}

/// Decodes the parameters of a portal to values of the described types.
fn decode_params(
    portal: &Portal<ParsedStatement>,
    types: &[DataType],
) -> std::result::Result<Vec<Value>, SqlError> {
    let mut out = Vec::with_capacity(portal.parameters.len());
    for (i, raw) in portal.parameters.iter().enumerate() {
        let ty = types.get(i).cloned().unwrap_or(DataType::Text);
        let Some(bytes) = raw else {
            out.push(Value::Null);
            continue;
        };
        if !portal.parameter_format.is_binary(i) {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                SqlError::new(
                    sqlstate::INVALID_TEXT_REPRESENTATION,
                    "invalid UTF-8 in parameter",
                )
            })?;
            out.push(Value::parse(text, &ty)?);
            continue;
        }
        let wire = wire_type(&ty);
        let bad = |e: PgWireError| {
            SqlError::new(
                sqlstate::INVALID_BINARY_REPRESENTATION,
                format!(
                    "incorrect binary data format in bind parameter {}: {e}",
                    i + 1
                ),
            )
        };
        let v = match ty {
            DataType::Bool => portal
                .parameter::<bool>(i, &wire)
                .map_err(bad)?
                .map(Value::Bool),
            DataType::Int2 => portal
                .parameter::<i16>(i, &wire)
                .map_err(bad)?
                .map(Value::Int2),
            DataType::Int4 => portal
                .parameter::<i32>(i, &wire)
                .map_err(bad)?
                .map(Value::Int4),
            DataType::Int8 => portal
                .parameter::<i64>(i, &wire)
                .map_err(bad)?
                .map(Value::Int8),
            DataType::Float4 => portal
                .parameter::<f32>(i, &wire)
                .map_err(bad)?
                .map(Value::Float4),
            DataType::Float8 => portal
                .parameter::<f64>(i, &wire)
                .map_err(bad)?
                .map(Value::Float8),
            DataType::Numeric(_) => portal
                .parameter::<rust_decimal::Decimal>(i, &wire)
                .map_err(bad)?
                .map(Value::Numeric),
            DataType::Date => portal
                .parameter::<chrono::NaiveDate>(i, &wire)
                .map_err(bad)?
                .map(Value::Date),
            DataType::Timestamp => portal
                .parameter::<chrono::NaiveDateTime>(i, &wire)
                .map_err(bad)?
                .map(Value::Timestamp),
            DataType::TimestampTz => portal
                .parameter::<chrono::DateTime<chrono::FixedOffset>>(i, &wire)
                .map_err(bad)?
                .map(|t| Value::TimestampTz(t.with_timezone(&chrono::Utc))),
            DataType::Bytea => portal
                .parameter::<Vec<u8>>(i, &wire)
                .map_err(bad)?
                .map(Value::Bytea),
            DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Unknown => portal
                .parameter::<String>(i, &Type::TEXT)
                .map_err(bad)?
                .map(Value::Text),
        };
        out.push(v.unwrap_or(Value::Null).cast_assign(&ty)?);
    }
    Ok(out)
}

/// A statement prepared with Parse: the parsed form, or nothing for an empty query.
#[derive(Clone, Debug)]
pub struct ParsedStatement {
    statement: Option<Statement>,
    /// Its bound plan, kept across Describe, Bind and Execute.
    plan: Arc<PlanSlot>,
}

/// Parses Parse messages with rxc's parser.
#[derive(Debug, Default)]
pub struct RxcQueryParser;

#[async_trait]
impl QueryParser for RxcQueryParser {
    type Statement = ParsedStatement;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<ParsedStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let statement = parser::parse_single(sql).map_err(|e| user_error(&e))?;
        Ok(Some(ParsedStatement {
            statement,
            plan: Arc::default(),
        }))
    }

    fn get_parameter_types(&self, _stmt: &ParsedStatement) -> PgWireResult<Vec<Type>> {
        Ok(vec![])
    }

    fn get_result_schema(
        &self,
        _stmt: &ParsedStatement,
        _column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(vec![])
    }
}

/// The handlers of one connection.
pub struct Connection<S: Backend> {
    session: Arc<Mutex<S>>,
    parser: Arc<RxcQueryParser>,
    /// Simple queries' trees by shape (literals masked).
    simple_queries: std::sync::Mutex<ParseCache>,
}

impl<S: Backend> Connection<S> {
    /// Handlers for a new connection to the server sharing `shared`.
    pub fn new(shared: &Arc<S::Shared>) -> Arc<Connection<S>> {
        Arc::new(Connection {
            session: Arc::new(Mutex::new(S::new(shared))),
            parser: Arc::new(RxcQueryParser),
            simple_queries: std::sync::Mutex::default(),
        })
    }

    /// A prepared statement's parameter types as Parse gave them, and its plan slot.
    fn prepared(stmt: &StoredStatement<ParsedStatement>) -> Prepared {
        Prepared {
            param_types: stmt
                .parameter_types
                .iter()
                .map(|t| {
                    t.as_ref()
                        .and_then(|t| DataType::from_oid(t.oid()))
                        .unwrap_or(DataType::Unknown)
                })
                .collect(),
            slot: stmt.statement.plan.clone(),
        }
    }
}

#[async_trait]
impl<S: Backend> SimpleQueryHandler for Connection<S> {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let parsed = self
            .simple_queries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .parse(query);
        let statements = match parsed {
            Ok(s) => s,
            Err(e) => return Ok(vec![Response::Error(Box::new(error_info(&e)))]),
        };
        let mut session = self.session.lock().await;
        let mut out = Vec::with_capacity(statements.len());
        for stmt in &statements {
            match session.execute(stmt, &[], None).await {
                Ok(r) => out.push(to_response(r, &Format::UnifiedText)?),
                Err(e) => {
                    out.push(Response::Error(Box::new(error_info(&e))));
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl<S: Backend> ExtendedQueryHandler for Connection<S> {
    type Statement = ParsedStatement;
    type QueryParser = RxcQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let Some(stmt) = &portal.statement.statement.statement else {
            return Ok(Response::EmptyQuery);
        };
        let mut session = self.session.lock().await;
        let prepared = Self::prepared(&portal.statement);
        let result = async {
            let (types, _) = session.describe(stmt, &prepared).await?;
            let params = decode_params(portal, &types)?;
            session.execute(stmt, &params, Some(prepared)).await
        }
        .await;
        match result {
            Ok(r) => to_response(r, &portal.result_column_format),
            Err(e) => Ok(Response::Error(Box::new(error_info(&e)))),
        }
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let Some(stmt) = &target.statement.statement else {
            return Ok(DescribeStatementResponse::new(vec![], vec![]));
        };
        let mut session = self.session.lock().await;
        let (params, columns) = session
            .describe(stmt, &Self::prepared(target))
            .await
            .map_err(|e| user_error(&e))?;
        Ok(DescribeStatementResponse::new(
            params.iter().map(wire_type).collect(),
            field_info(&columns, &Format::UnifiedText),
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let Some(stmt) = &portal.statement.statement.statement else {
            return Ok(DescribePortalResponse::new(vec![]));
        };
        let mut session = self.session.lock().await;
        let (_, columns) = session
            .describe(stmt, &Self::prepared(&portal.statement))
            .await
            .map_err(|e| user_error(&e))?;
        Ok(DescribePortalResponse::new(field_info(
            &columns,
            &portal.result_column_format,
        )))
    }
}

#[async_trait]
impl<S: Backend> CopyHandler for Connection<S> {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.session.lock().await.copy_data(&copy_data.data).await;
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let result = self.session.lock().await.copy_done().await;
        match result {
            Ok(StatementResult::Command(tag)) => {
                client
                    .send(PgWireBackendMessage::CommandComplete(Tag::new(&tag).into()))
                    .await?;
                Ok(())
            }
            Ok(_) => Err(user_error(&SqlError::internal("unexpected COPY result"))),
            Err(e) => Err(user_error(&e)),
        }
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let e = self.session.lock().await.copy_fail(&fail.message).await;
        user_error(&e)
    }
}

/// Startup: the role must exist and the database be `postgres`; the first rule of the
/// authentication settings that matches the client's address and role picks the method
/// (loopback trust and SCRAM-SHA-256 for everyone else by default), which pgwire's
/// [`AuthDriver`] runs. The startup packet's `options` (`-c name=value`) become session
/// settings.
pub struct Startup<S: Backend> {
    session: Arc<Mutex<S>>,
    auth: Arc<Authenticator>,
    driver: Arc<AuthDriver<DefaultServerParameterProvider>>,
}

/// The ParameterStatus values rxc reports at startup.
pub fn server_parameters() -> DefaultServerParameterProvider {
    let mut parameters = DefaultServerParameterProvider::default();
    parameters.server_version = SERVER_VERSION.into();
    parameters.time_zone = "UTC".into();
    parameters.date_style = "ISO, MDY".into();
    parameters
}

impl<S: Backend> Startup<S> {
    /// Completes the startup once the method accepted the client.
    async fn after<C>(&self, client: &mut C, outcome: AuthOutcome) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let AuthOutcome::Authenticated { final_message, .. } = outcome {
            self.driver
                .complete_authentication(client, final_message)
                .await?;
            let (pid, secret) = client.pid_and_secret_key();
            self.session
                .lock()
                .await
                .register_cancel_key(pid, secret_bytes(&secret));
            let _ = client.flush().await;
        }
        Ok(())
    }
}

#[async_trait]
impl<S: Backend> StartupHandler for Startup<S> {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let startup = match message {
            PgWireFrontendMessage::Startup(startup) => startup,
            PgWireFrontendMessage::PasswordMessageFamily(m) => {
                let outcome = self.driver.advance_authentication(client, m).await?;
                return self.after(client, outcome).await;
            }
            _ => return Ok(()),
        };
        protocol_negotiation(client, &startup).await?;
        save_startup_parameters_to_metadata(client, &startup);
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let database = client
            .metadata()
            .get(METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| user.clone());
        let host = client.socket_addr().ip();
        let config = self.auth.config();
        let entry = format!("host \"{host}\", user \"{user}\", database \"{database}\"");
        let method = match config.method(host, &user) {
            None => {
                return Err(fatal(
                    sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                    format!("no pg_hba.conf entry for {entry}"),
                ))
            }
            Some(AuthMethod::Reject) => {
                return Err(fatal(
                    sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                    format!("pg_hba.conf rejects connection for {entry}"),
                ))
            }
            Some(m) => m,
        };
        match self.auth.role(&user) {
            None => {
                return Err(fatal(
                    sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                    format!("role \"{user}\" does not exist"),
                ))
            }
            Some(false) => {
                return Err(fatal(
                    sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                    format!("role \"{user}\" is not permitted to log in"),
                ))
            }
            Some(true) => {}
        }
        if database != "postgres" {
            return Err(fatal(
                sqlstate::INVALID_CATALOG_NAME,
                format!("database \"{database}\" does not exist"),
            ));
        }
        self.session.lock().await.set_user(&user);
        if let Some(options) = client.metadata().get("options").cloned() {
            self.session
                .lock()
                .await
                .apply_startup_options(&options)
                .map_err(|e| fatal(e.code, e.message))?;
        }
        let mechanism = self.auth.mechanism(method, &user);
        let outcome = self.driver.begin_authentication(client, mechanism).await?;
        self.after(client, outcome).await
    }
}

fn secret_bytes(secret: &SecretKey) -> Vec<u8> {
    match secret {
        SecretKey::I32(i) => i.to_be_bytes().to_vec(),
        SecretKey::Bytes(b) => b.to_vec(),
    }
}

/// Cancel requests (a connection of their own): the node sets the cancel flag of the
/// session whose pid and secret key match; the statement stops with 57014 at its next check
/// (between rows, or while it waits for a lock).
pub struct Canceller<T: Cancel> {
    shared: Arc<T>,
}

#[async_trait]
impl<T: Cancel + Send + Sync + 'static> CancelHandler for Canceller<T> {
    async fn on_cancel_request(&self, request: CancelRequest) {
        if !self
            .shared
            .cancel(request.pid, &secret_bytes(&request.secret_key))
        {
            tracing::debug!(pid = request.pid, "cancel request matched no session");
        }
    }
}

/// What every connection's handlers share: the server's shared state, the authentication
/// methods and the startup driver.
pub struct Frontend<S: Backend> {
    shared: Arc<S::Shared>,
    auth: Arc<Authenticator>,
    driver: Arc<AuthDriver<DefaultServerParameterProvider>>,
}

impl<S: Backend> Frontend<S> {
    /// The front end of a server sharing `shared`, authenticating clients with `auth`.
    pub fn new(shared: Arc<S::Shared>, auth: Authenticator) -> Arc<Frontend<S>> {
        Arc::new(Frontend {
            shared,
            auth: Arc::new(auth),
            driver: Arc::new(AuthDriver::new(server_parameters())),
        })
    }
}

/// The handler set pgwire asks for, per connection.
pub struct Handlers<S: Backend> {
    connection: Arc<Connection<S>>,
    frontend: Arc<Frontend<S>>,
}

impl<S: Backend> Handlers<S> {
    /// Handlers for a new connection.
    pub fn new(frontend: &Arc<Frontend<S>>) -> Handlers<S> {
        Handlers {
            connection: Connection::new(&frontend.shared),
            frontend: frontend.clone(),
        }
    }
}

impl<S: Backend> PgWireServerHandlers for Handlers<S> {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.connection.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.connection.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::new(Startup {
            session: self.connection.session.clone(),
            auth: self.frontend.auth.clone(),
            driver: self.frontend.driver.clone(),
        })
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.connection.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::new(Canceller {
            shared: self.frontend.shared.clone(),
        })
    }
}

/// Accepts clients on `listener` until `shutdown`: each connection is served on a session
/// thread of its own ([`crate::session_thread`]) with handlers from `frontend`.
///
/// On a smart shutdown the listener closes (new connections are refused) and this returns once
/// no client session is left, or at a fast shutdown, whichever comes first. Other nodes' idle
/// connections (a coordinator's pool) do not hold a smart shutdown up; one running a statement
/// does, until the statement ends. Sessions still open when this returns end with the process,
/// their open transactions aborted.
pub async fn serve_clients<S: Backend>(
    listener: tokio::net::TcpListener,
    frontend: Arc<Frontend<S>>,
    shutdown: rxc_common::shutdown::Shutdown,
) {
    let mut sessions: Vec<std::sync::Weak<Mutex<S>>> = Vec::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                let handlers = Handlers::new(&frontend);
                let session = handlers.connection.session.clone();
                sessions.retain(|s| s.strong_count() > 0);
                sessions.push(Arc::downgrade(&session));
                let spawned = crate::session_thread::spawn(socket, move |socket| async move {
                    if let Err(e) = crate::wire::serve(socket, handlers).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    // The client is gone: abort its open transaction and end its GTM
                    // session, here, before the session thread's runtime ends.
                    session.lock().await.close().await;
                });
                if let Err(e) = spawned {
                    tracing::warn!(%peer, error = %e, "cannot start a session thread");
                }
            }
            _ = shutdown.wait() => break,
        }
    }
    drop(listener);
    if shutdown.is_fast() {
        return;
    }
    let mut logged = None;
    loop {
        let clients = sessions
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            // A session whose lock is taken is running a statement (or starting up).
            .filter(|s| s.try_lock().map_or(true, |s| !s.is_internal()))
            .count();
        if clients == 0 {
            return;
        }
        if logged != Some(clients) {
            tracing::info!(
                clients,
                "smart shutdown: waiting for client sessions to end"
            );
            logged = Some(clients);
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            _ = shutdown.wait_fast() => return,
        }
    }
}
