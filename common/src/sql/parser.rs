//! The SQL parser: sqlparser with the PostgreSQL dialect, behind rxc's own statement type.
//!
//! sqlparser parses standard and PostgreSQL SQL into its AST. What it lacks — the two-phase
//! commit statements `PREPARE TRANSACTION 'gid'`, `COMMIT PREPARED 'gid'` and
//! `ROLLBACK PREPARED 'gid'` — the wrapper recognises at the start of each statement and parses
//! with the parser's own token helpers, so a multi-statement string can mix both kinds.
//! `COPY` is parsed by the wrapper too, with PostgreSQL's generic option list (`WITH (FORMAT
//! csv, FREEZE on, ...)`: any option name, a value that may be a word, string, number, `*` or a
//! column list) and the pre-9.0 options (`CSV HEADER`, `DELIMITER AS ','`), which become the
//! same generic options, as PostgreSQL's grammar does; sqlparser's own COPY knows fewer option
//! spellings and reads everything after `FROM STDIN;` as inline data.
//! Postgres-XC's cluster statements (`CREATE/ALTER/DROP NODE`, `CREATE/DROP NODE GROUP`,
//! `EXECUTE DIRECT`, `CLEAN CONNECTION`) are recognised the same way, by their exact leading
//! words, and a CREATE TABLE that sqlparser parsed may go on with Postgres-XC's `DISTRIBUTE BY`
//! and `TO NODE` / `TO GROUP` clauses (sqlparser stops before them).
//! Parse errors become SQLSTATE 42601 with PostgreSQL's wording, `syntax error at or near "x"`.

use super::error::{Result, SqlError};
use super::roles::{RoleChange, RoleOptions};
use crate::gtm::proto::{SeqAlterOptions, SeqOptions};
use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{IsOptional, Parser, ParserError};
use sqlparser::tokenizer::Token;
use std::sync::Arc;

/// A parsed statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    /// A statement sqlparser understands.
    Sql(Arc<ast::Statement>),
    /// `PREPARE TRANSACTION 'gid'`
    PrepareTransaction(String),
    /// `COMMIT PREPARED 'gid'`
    CommitPrepared(String),
    /// `ROLLBACK PREPARED 'gid'`
    RollbackPrepared(String),
    /// `COPY`
    Copy(CopyStatement),
    /// `VACUUM [options] [table, ...]` or `ANALYZE [table, ...]`: the tables named (the
    /// storage reclaims space by itself, so only the names are checked).
    Maintenance {
        /// `VACUUM` or `ANALYZE` (the command tag).
        command: &'static str,
        /// The tables named, if any.
        tables: Vec<String>,
    },
    /// `SET TRANSACTION CONTEXT (GXID n, SNAPSHOT 'xmin:xmax:xip,...', GLOBAL_XMIN n)`: the
    /// transaction context a coordinator gives the next statement on a datanode.
    TransactionContext(Vec<GenericOption>),
    /// `BREAK DEADLOCK gxid`: a coordinator's deadlock detector ends the lock wait of
    /// transaction `gxid` on a datanode with 40P01 (it is the victim of a wait-for cycle
    /// through several datanodes).
    BreakDeadlock(u64),
    /// `CREATE NODE name WITH (TYPE = 'datanode', HOST = 'h', PORT = 15432, PRIMARY, PREFERRED)`:
    /// the options as written (`name [=] value`; the coordinator checks the names).
    CreateNode {
        name: String,
        options: Vec<GenericOption>,
    },
    /// `ALTER NODE name WITH (...)`, options as in `CREATE NODE`.
    AlterNode {
        name: String,
        options: Vec<GenericOption>,
    },
    /// `DROP NODE [IF EXISTS] name`
    DropNode { name: String, if_exists: bool },
    /// `CREATE NODE GROUP name WITH (node, ...)` (parentheses optional: `WITH node, node`).
    CreateNodeGroup { name: String, nodes: Vec<String> },
    /// `DROP NODE GROUP [IF EXISTS] name`
    DropNodeGroup { name: String, if_exists: bool },
    /// `EXECUTE DIRECT ON (node, ...) 'query'` (also `ON node` and `ON NODE node` without
    /// parentheses): the query text, run as it is on the nodes named.
    ExecuteDirect { nodes: Vec<String>, query: String },
    /// `CLEAN CONNECTION TO { NODE (n, ...) | COORDINATOR (n, ...) | ALL } [FORCE]
    /// [FOR [DATABASE] d] [TO [USER] u]`, the FOR and TO parts in either order.
    CleanConnection {
        /// The nodes named (datanodes or coordinators); `None` for `ALL`.
        nodes: Option<Vec<String>>,
        force: bool,
        database: Option<String>,
        user: Option<String>,
    },
    /// `CREATE SEQUENCE [IF NOT EXISTS] name [AS type] [option ...]`, the options in any
    /// order as PostgreSQL takes them (sqlparser wants one order).
    CreateSequence {
        name: String,
        if_not_exists: bool,
        options: SeqOptions,
    },
    /// `ALTER SEQUENCE [IF EXISTS] name { option ... | RENAME TO new }` (sqlparser has no
    /// ALTER SEQUENCE).
    AlterSequence {
        name: String,
        if_exists: bool,
        change: SequenceChange,
    },
    /// `CREATE ROLE | USER | GROUP name [WITH] option ...` (`CREATE USER` implies LOGIN).
    CreateRole { name: String, options: RoleOptions },
    /// `ALTER ROLE | USER | GROUP name { [WITH] option ... | RENAME TO new | SET ... }`.
    AlterRole { name: String, change: RoleChange },
    /// `DROP ROLE | USER | GROUP [IF EXISTS] name, ...`.
    DropRole { names: Vec<String>, if_exists: bool },
    /// `CREATE TABLE ...` followed by Postgres-XC's `DISTRIBUTE BY ...` and/or `TO NODE (...)`
    /// / `TO GROUP g` (a CREATE TABLE without either clause stays [`Statement::Sql`]).
    CreateTable {
        /// The CREATE TABLE without the Postgres-XC clauses: its text is what a datanode runs.
        create: Arc<ast::Statement>,
        distribute: Option<Distribute>,
        to: Option<NodeTarget>,
    },
}

impl Statement {
    /// The command's name for messages (`CREATE NODE`); `SQL` for any statement sqlparser
    /// parsed.
    pub fn command_name(&self) -> &'static str {
        match self {
            Statement::Sql(_) => "SQL",
            Statement::PrepareTransaction(_) => "PREPARE TRANSACTION",
            Statement::CommitPrepared(_) => "COMMIT PREPARED",
            Statement::RollbackPrepared(_) => "ROLLBACK PREPARED",
            Statement::Copy(_) => "COPY",
            Statement::Maintenance { command, .. } => command,
            Statement::TransactionContext(_) => "SET TRANSACTION CONTEXT",
            Statement::BreakDeadlock(_) => "BREAK DEADLOCK",
            Statement::CreateNode { .. } => "CREATE NODE",
            Statement::AlterNode { .. } => "ALTER NODE",
            Statement::DropNode { .. } => "DROP NODE",
            Statement::CreateNodeGroup { .. } => "CREATE NODE GROUP",
            Statement::DropNodeGroup { .. } => "DROP NODE GROUP",
            Statement::ExecuteDirect { .. } => "EXECUTE DIRECT",
            Statement::CleanConnection { .. } => "CLEAN CONNECTION",
            Statement::CreateTable { .. } => "CREATE TABLE",
            Statement::CreateSequence { .. } => "CREATE SEQUENCE",
            Statement::AlterSequence { .. } => "ALTER SEQUENCE",
            Statement::CreateRole { .. } => "CREATE ROLE",
            Statement::AlterRole { .. } => "ALTER ROLE",
            Statement::DropRole { .. } => "DROP ROLE",
        }
    }
}

/// What an `ALTER SEQUENCE` changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SequenceChange {
    /// Options (`RESTART [WITH n]`, `INCREMENT BY n`, `[NO] MINVALUE`, ...): only those given.
    Options(SeqAlterOptions),
    /// `RENAME TO new`.
    Rename(String),
}

/// `DISTRIBUTE BY ...` of a Postgres-XC CREATE TABLE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Distribute {
    /// `REPLICATION`: every row on every node.
    Replication,
    /// `ROUNDROBIN`: rows spread over the nodes in turn.
    RoundRobin,
    /// `HASH (column)`: a row on the node its column's hash picks.
    Hash(String),
    /// `MODULO (column)`: a row on the node its column's value modulo the node count picks.
    Modulo(String),
}

/// `TO NODE (...)` / `TO GROUP g`: where a Postgres-XC table's rows live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeTarget {
    /// `TO NODE (node, ...)`
    Nodes(Vec<String>),
    /// `TO GROUP g`
    Group(String),
}

/// `COPY source FROM|TO target [WITH] (options)`.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyStatement {
    /// The table (and columns), or the query of `COPY (query) TO`.
    pub source: ast::CopySource,
    /// `COPY ... TO` rather than `FROM`.
    pub to: bool,
    /// STDIN, STDOUT, a file or a program.
    pub target: ast::CopyTarget,
    /// The options, in the generic form.
    pub options: Vec<GenericOption>,
}

/// One option of a generic option list (`COPY ... WITH (...)`, `SET TRANSACTION CONTEXT
/// (...)`): its name (lower case) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct GenericOption {
    pub name: String,
    pub value: OptionValue,
}

/// The value of a generic option.
#[derive(Clone, Debug, PartialEq)]
pub enum OptionValue {
    /// No value (`HEADER`, `FREEZE`): true for a boolean option.
    None,
    /// A word, string or number, as written (words in lower case).
    Text(String),
    /// `*` (`FORCE_QUOTE *`).
    Star,
    /// A parenthesized column list.
    Columns(Vec<String>),
}

impl GenericOption {
    fn new(name: &str, value: OptionValue) -> GenericOption {
        GenericOption {
            name: name.to_string(),
            value,
        }
    }
}

/// How deep the parser nests (parenthesised expressions, subqueries) before a statement is
/// 54001 `stack depth limit exceeded`. sqlparser's default of 50 refuses machine-generated
/// WHERE clauses PostgreSQL takes; this many levels fit the runtime threads' stacks
/// ([`crate::net::THREAD_STACK_BYTES`]) with binding and evaluation, in debug builds too.
const RECURSION_LIMIT: usize = 400;

/// Parses one or more `;`-separated statements. Empty input gives no statements.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(sql)
        .map_err(syntax_error)?;
    let mut statements = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            break;
        }
        statements.push(parse_one(&mut parser).map_err(syntax_error)?);
        if !parser.consume_token(&Token::SemiColon) && parser.peek_token().token != Token::EOF {
            let found = parser.peek_token().token.to_string();
            return Err(SqlError::syntax(format!(
                "syntax error at or near \"{found}\""
            )));
        }
    }
    Ok(statements)
}

/// Parses exactly one statement (the extended protocol's Parse message allows one).
pub fn parse_single(sql: &str) -> Result<Option<Statement>> {
    let mut statements = parse(sql)?;
    if statements.len() > 1 {
        return Err(SqlError::syntax(
            "cannot insert multiple commands into a prepared statement",
        ));
    }
    Ok(statements.pop())
}

fn parse_one(parser: &mut Parser) -> Result<Statement, ParserError> {
    if parser.parse_keywords(&[Keyword::PREPARE, Keyword::TRANSACTION]) {
        return Ok(Statement::PrepareTransaction(
            parser.parse_literal_string()?,
        ));
    }
    if parse_words(parser, &["commit", "prepared"]) {
        return Ok(Statement::CommitPrepared(parser.parse_literal_string()?));
    }
    if parse_words(parser, &["rollback", "prepared"]) {
        return Ok(Statement::RollbackPrepared(parser.parse_literal_string()?));
    }
    if parse_words(parser, &["set", "transaction", "context"]) {
        let options = parse_generic_options(parser, false)?;
        return Ok(Statement::TransactionContext(options));
    }
    if parse_words(parser, &["break", "deadlock"]) {
        let token = parser.next_token();
        return match &token.token {
            Token::Number(n, _) => n
                .parse()
                .map(Statement::BreakDeadlock)
                .map_err(|_| ParserError::ParserError(format!("syntax error at or near \"{n}\""))),
            other => Err(ParserError::ParserError(format!(
                "syntax error at or near \"{other}\""
            ))),
        };
    }
    if parse_words(parser, &["create", "sequence"]) {
        return parse_create_sequence(parser);
    }
    if parse_words(parser, &["alter", "sequence"]) {
        return parse_alter_sequence(parser);
    }
    if let Some(statement) = parse_cluster_statement(parser)? {
        return Ok(statement);
    }
    if let Some(statement) = super::roles::parse_role_statement(parser)? {
        return Ok(statement);
    }
    if parser.parse_keyword(Keyword::COPY) {
        return Ok(Statement::Copy(parse_copy(parser)?));
    }
    if let Some(command) = match parser.parse_one_of_keywords(&[Keyword::VACUUM, Keyword::ANALYZE])
    {
        Some(Keyword::VACUUM) => Some("VACUUM"),
        Some(_) => Some("ANALYZE"),
        None => parse_words(parser, &["analyse"]).then_some("ANALYZE"),
    } {
        return parse_maintenance(parser, command);
    }
    match parser.parse_statement()? {
        ast::Statement::CreateTable(create) => parse_create_table_tail(parser, create),
        statement => Ok(Statement::Sql(Arc::new(statement))),
    }
}

/// The Postgres-XC cluster statements, told by their exact leading words (unquoted): `CREATE
/// NODE [GROUP]`, `ALTER NODE`, `DROP NODE [GROUP]`, `EXECUTE DIRECT ON`, `CLEAN CONNECTION
/// TO`; `None`, consuming nothing, for any other statement.
fn parse_cluster_statement(parser: &mut Parser) -> Result<Option<Statement>, ParserError> {
    let statement = if parse_words(parser, &["create", "node", "group"]) {
        let name = parse_name(parser)?;
        parser.expect_keyword(Keyword::WITH)?;
        Statement::CreateNodeGroup {
            name,
            nodes: parse_names(parser, true)?,
        }
    } else if parse_words(parser, &["create", "node"]) {
        let name = parse_name(parser)?;
        parser.expect_keyword(Keyword::WITH)?;
        Statement::CreateNode {
            name,
            options: parse_generic_options(parser, true)?,
        }
    } else if parse_words(parser, &["alter", "node"]) {
        let name = parse_name(parser)?;
        parser.expect_keyword(Keyword::WITH)?;
        Statement::AlterNode {
            name,
            options: parse_generic_options(parser, true)?,
        }
    } else if parse_words(parser, &["drop", "node", "group"]) {
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        Statement::DropNodeGroup {
            name: parse_name(parser)?,
            if_exists,
        }
    } else if parse_words(parser, &["drop", "node"]) {
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        Statement::DropNode {
            name: parse_name(parser)?,
            if_exists,
        }
    } else if parse_words(parser, &["execute", "direct", "on"]) {
        let nodes = if parser.peek_token().token == Token::LParen {
            parse_names(parser, false)?
        } else {
            parse_noise_word(parser, "node");
            vec![parse_name(parser)?]
        };
        Statement::ExecuteDirect {
            nodes,
            query: parse_string(parser)?,
        }
    } else if parse_words(parser, &["clean", "connection", "to"]) {
        parse_clean_connection(parser)?
    } else {
        return Ok(None);
    };
    Ok(Some(statement))
}

/// The rest of `CREATE SEQUENCE`: `[IF NOT EXISTS] name [AS type]`, then options; `AS
/// smallint|integer` bounds the sequence by its type.
fn parse_create_sequence(parser: &mut Parser) -> Result<Statement, ParserError> {
    let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = object_name_of(parser)?;
    let bound = if parser.parse_keyword(Keyword::AS) {
        let ty = parser.parse_data_type()?;
        match super::DataType::from_sql(&ty).map_err(|e| ParserError::ParserError(e.message))? {
            super::DataType::Int2 => Some(i16::MAX as i64),
            super::DataType::Int4 => Some(i32::MAX as i64),
            super::DataType::Int8 => None,
            other => {
                return Err(ParserError::ParserError(format!(
                    "sequence type must be smallint, integer, or bigint, not {other}"
                )))
            }
        }
    } else {
        None
    };
    let (given, _) = parse_sequence_options(parser, false)?;
    let mut options = SeqOptions {
        increment: given.increment,
        min_value: given.min_value.flatten(),
        max_value: given.max_value.flatten(),
        start: given.start,
        cache: given.cache,
        cycle: given.cycle.unwrap_or(false),
    };
    if let Some(max) = bound {
        if options.increment.unwrap_or(1) > 0 {
            options.max_value.get_or_insert(max);
        } else {
            options.min_value.get_or_insert(-max - 1);
        }
    }
    Ok(Statement::CreateSequence {
        name,
        if_not_exists,
        options,
    })
}

/// The rest of `ALTER SEQUENCE`: `[IF EXISTS] name`, then `RENAME TO new` or options.
fn parse_alter_sequence(parser: &mut Parser) -> Result<Statement, ParserError> {
    let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let name = object_name_of(parser)?;
    if parser.parse_keywords(&[Keyword::RENAME, Keyword::TO]) {
        return Ok(Statement::AlterSequence {
            name,
            if_exists,
            change: SequenceChange::Rename(object_name_of(parser)?),
        });
    }
    let (options, any) = parse_sequence_options(parser, true)?;
    if !any {
        return parser.expected("an ALTER SEQUENCE option", parser.peek_token());
    }
    Ok(Statement::AlterSequence {
        name,
        if_exists,
        change: SequenceChange::Options(options),
    })
}

/// Sequence options in any order (`RESTART [WITH n]` only when `alter`), and whether there
/// was any; `OWNED BY ...` is accepted and ignored (dropping a table drops its serials'
/// sequences).
fn parse_sequence_options(
    parser: &mut Parser,
    alter: bool,
) -> Result<(SeqAlterOptions, bool), ParserError> {
    let mut options = SeqAlterOptions::default();
    let mut any = false;
    loop {
        if alter && parse_words(parser, &["restart"]) {
            let _ = parser.parse_keyword(Keyword::WITH);
            options.restart = Some(match parser.peek_token().token {
                Token::Number(..) | Token::Minus | Token::Plus => Some(parse_signed(parser)?),
                _ => None,
            });
        } else if parse_words(parser, &["increment"]) {
            let _ = parser.parse_keyword(Keyword::BY);
            options.increment = Some(parse_signed(parser)?);
        } else if parse_words(parser, &["no", "minvalue"]) {
            options.min_value = Some(None);
        } else if parse_words(parser, &["no", "maxvalue"]) {
            options.max_value = Some(None);
        } else if parse_words(parser, &["no", "cycle"]) {
            options.cycle = Some(false);
        } else if parse_words(parser, &["minvalue"]) {
            options.min_value = Some(Some(parse_signed(parser)?));
        } else if parse_words(parser, &["maxvalue"]) {
            options.max_value = Some(Some(parse_signed(parser)?));
        } else if parse_words(parser, &["start"]) {
            let _ = parser.parse_keyword(Keyword::WITH);
            options.start = Some(parse_signed(parser)?);
        } else if parse_words(parser, &["cache"]) {
            options.cache = Some(parse_signed(parser)?);
        } else if parse_words(parser, &["cycle"]) {
            options.cycle = Some(true);
        } else if parse_words(parser, &["owned", "by"]) {
            if !parse_words(parser, &["none"]) {
                parser.parse_object_name(false)?;
            }
        } else {
            break;
        }
        any = true;
    }
    Ok((options, any))
}

/// An object name as rxc keys it: the last part, unquoted names folded to lower case.
fn object_name_of(parser: &mut Parser) -> Result<String, ParserError> {
    let name = parser.parse_object_name(false)?;
    super::binder::object_name(&name).map_err(|e| ParserError::ParserError(e.message))
}

/// A signed integer constant (`-5`, `+3`, `10`).
fn parse_signed(parser: &mut Parser) -> Result<i64, ParserError> {
    let negative = match parser.peek_token().token {
        Token::Minus => {
            parser.next_token();
            true
        }
        Token::Plus => {
            parser.next_token();
            false
        }
        _ => false,
    };
    let token = parser.next_token();
    match &token.token {
        Token::Number(n, _) => {
            let text = if negative { format!("-{n}") } else { n.clone() };
            text.parse()
                .map_err(|_| ParserError::ParserError(format!("invalid integer \"{text}\"")))
        }
        _ => parser.expected("an integer", token),
    }
}

/// The rest of `CLEAN CONNECTION TO`: the nodes, `FORCE`, then `FOR [DATABASE] d` and `TO
/// [USER] u` in either order.
fn parse_clean_connection(parser: &mut Parser) -> Result<Statement, ParserError> {
    let nodes = if parse_words(parser, &["all"]) {
        None
    } else if parse_words(parser, &["node"]) || parse_words(parser, &["coordinator"]) {
        Some(parse_names(parser, false)?)
    } else {
        return parser.expected("NODE, COORDINATOR or ALL", parser.peek_token());
    };
    let force = parse_words(parser, &["force"]);
    let (mut database, mut user) = (None, None);
    loop {
        if database.is_none() && parse_words(parser, &["for"]) {
            parse_noise_word(parser, "database");
            database = Some(parse_name(parser)?);
        } else if user.is_none() && parse_words(parser, &["to"]) {
            parse_noise_word(parser, "user");
            user = Some(parse_name(parser)?);
        } else {
            break;
        }
    }
    Ok(Statement::CleanConnection {
        nodes,
        force,
        database,
        user,
    })
}

/// What follows a CREATE TABLE sqlparser parsed: Postgres-XC's `DISTRIBUTE BY { REPLICATION |
/// ROUNDROBIN | HASH (col) | MODULO (col) }`, then `TO NODE (node, ...)` or `TO GROUP g`, each
/// optional, and then (Postgres-XC's CREATE TABLE AS puts them before the query) `AS query
/// [WITH [NO] DATA]`. Without either clause the statement stays [`Statement::Sql`].
fn parse_create_table_tail(
    parser: &mut Parser,
    mut create: ast::CreateTable,
) -> Result<Statement, ParserError> {
    let distribute = if parse_words(parser, &["distribute", "by"]) {
        Some(parse_distribute(parser)?)
    } else {
        None
    };
    let to = if parse_words(parser, &["to", "node"]) {
        Some(NodeTarget::Nodes(parse_names(parser, false)?))
    } else if parse_words(parser, &["to", "group"]) {
        Some(NodeTarget::Group(parse_name(parser)?))
    } else {
        None
    };
    if distribute.is_none() && to.is_none() {
        let plain = ast::Statement::CreateTable(create);
        return Ok(Statement::Sql(Arc::new(plain)));
    }
    if create.query.is_none() && parser.parse_keyword(Keyword::AS) {
        create.query = Some(parser.parse_query()?);
        if parser.parse_keywords(&[Keyword::WITH, Keyword::DATA]) {
            create.with_data = Some(ast::WithData {
                data: true,
                statistics: None,
            });
        } else if parser.parse_keywords(&[Keyword::WITH, Keyword::NO, Keyword::DATA]) {
            create.with_data = Some(ast::WithData {
                data: false,
                statistics: None,
            });
        }
    }
    Ok(Statement::CreateTable {
        create: Arc::new(ast::Statement::CreateTable(create)),
        distribute,
        to,
    })
}

/// The distribution after `DISTRIBUTE BY`.
fn parse_distribute(parser: &mut Parser) -> Result<Distribute, ParserError> {
    let column = |parser: &mut Parser| -> Result<String, ParserError> {
        parser.expect_token(&Token::LParen)?;
        let name = parse_name(parser)?;
        parser.expect_token(&Token::RParen)?;
        Ok(name)
    };
    Ok(if parse_words(parser, &["replication"]) {
        Distribute::Replication
    } else if parse_words(parser, &["roundrobin"]) {
        Distribute::RoundRobin
    } else if parse_words(parser, &["hash"]) {
        Distribute::Hash(column(parser)?)
    } else if parse_words(parser, &["modulo"]) {
        Distribute::Modulo(column(parser)?)
    } else {
        return parser.expected(
            "REPLICATION, ROUNDROBIN, HASH or MODULO",
            parser.peek_token(),
        );
    })
}

/// A name (node, group, column, database, user): an identifier, folded to lower case unless
/// quoted.
pub(super) fn parse_name(parser: &mut Parser) -> Result<String, ParserError> {
    let token = parser.next_token();
    match &token.token {
        Token::Word(w) => Ok(super::binder::ident_name(&w.to_ident(token.span))),
        _ => parser.expected("a name", token),
    }
}

/// `(name, ...)`; with `parens_optional` also `name, ...`.
fn parse_names(parser: &mut Parser, parens_optional: bool) -> Result<Vec<String>, ParserError> {
    let parens = parser.consume_token(&Token::LParen);
    if !parens && !parens_optional {
        return parser.expected("(", parser.peek_token());
    }
    let mut names = Vec::new();
    loop {
        names.push(parse_name(parser)?);
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    if parens {
        parser.expect_token(&Token::RParen)?;
    }
    Ok(names)
}

/// Consumes the optional `word` (`NODE` of `ON NODE dn1`) when a name follows it (a word other
/// than the `FOR` and `TO` that start CLEAN CONNECTION's other parts); else the word is itself
/// the name and stays.
fn parse_noise_word(parser: &mut Parser, word: &str) {
    let name_follows = match &parser.peek_nth_token(1).token {
        Token::Word(w) => {
            w.quote_style.is_some()
                || !(w.value.eq_ignore_ascii_case("for") || w.value.eq_ignore_ascii_case("to"))
        }
        _ => false,
    };
    if name_follows {
        parse_words(parser, &[word]);
    }
}

/// A string constant: `'...'`, `E'...'`, `U&'...'` or `$$...$$`.
pub(super) fn parse_string(parser: &mut Parser) -> Result<String, ParserError> {
    let token = parser.next_token();
    match token.token {
        Token::SingleQuotedString(s)
        | Token::EscapedStringLiteral(s)
        | Token::UnicodeStringLiteral(s) => Ok(s),
        Token::DollarQuotedString(s) => Ok(s.value),
        _ => parser.expected("string constant", token),
    }
}

/// The rest of `VACUUM` / `ANALYZE`: options (parenthesized, or the old keywords), then
/// table names, each with an optional column list.
fn parse_maintenance(parser: &mut Parser, command: &'static str) -> Result<Statement, ParserError> {
    if parser.consume_token(&Token::LParen) {
        let mut depth = 1;
        while depth > 0 {
            match parser.next_token().token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::EOF => return parser.expected(")", parser.peek_token()),
                _ => {}
            }
        }
    }
    while parser
        .parse_one_of_keywords(&[
            Keyword::FULL,
            Keyword::FREEZE,
            Keyword::VERBOSE,
            Keyword::ANALYZE,
        ])
        .is_some()
        || parse_words(parser, &["analyse"])
    {}
    let mut tables = Vec::new();
    while matches!(parser.peek_token().token, Token::Word(_)) {
        tables.push(
            super::binder::object_name(&parser.parse_object_name(false)?)
                .map_err(|e| ParserError::ParserError(e.message))?,
        );
        parser.parse_parenthesized_column_list(IsOptional::Optional, false)?;
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    Ok(Statement::Maintenance { command, tables })
}

/// The rest of a COPY statement after `COPY`.
fn parse_copy(parser: &mut Parser) -> Result<CopyStatement, ParserError> {
    let source = if parser.consume_token(&Token::LParen) {
        let query = parser.parse_query()?;
        parser.expect_token(&Token::RParen)?;
        ast::CopySource::Query(query)
    } else {
        ast::CopySource::Table {
            table_name: parser.parse_object_name(false)?,
            columns: parser.parse_parenthesized_column_list(IsOptional::Optional, false)?,
        }
    };
    let to = match parser.parse_one_of_keywords(&[Keyword::FROM, Keyword::TO]) {
        Some(Keyword::TO) => true,
        Some(_) => false,
        None => return parser.expected("FROM or TO", parser.peek_token()),
    };
    let target = if parser.parse_keyword(Keyword::STDIN) {
        ast::CopyTarget::Stdin
    } else if parser.parse_keyword(Keyword::STDOUT) {
        ast::CopyTarget::Stdout
    } else if parser.parse_keyword(Keyword::PROGRAM) {
        ast::CopyTarget::Program {
            command: parser.parse_literal_string()?,
        }
    } else {
        ast::CopyTarget::File {
            filename: parser.parse_literal_string()?,
        }
    };
    let with = parser.parse_keyword(Keyword::WITH);
    let mut options = Vec::new();
    if parser.peek_token().token == Token::LParen {
        options = parse_generic_options(parser, false)?;
    } else {
        while let Some(option) = parse_copy_legacy_option(parser)? {
            options.push(option);
        }
        if with && options.is_empty() {
            return parser.expected("COPY option", parser.peek_token());
        }
    }
    Ok(CopyStatement {
        source,
        to,
        target,
        options,
    })
}

/// A parenthesized generic option list, `(option, ...)`; with `equals`, each option may be
/// written `name = value` too (as `CREATE NODE` takes them).
fn parse_generic_options(
    parser: &mut Parser,
    equals: bool,
) -> Result<Vec<GenericOption>, ParserError> {
    parser.expect_token(&Token::LParen)?;
    let mut options = Vec::new();
    loop {
        options.push(parse_generic_option(parser, equals)?);
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen)?;
    Ok(options)
}

/// `name [value]` of a generic option list; with `equals` also `name = value`.
fn parse_generic_option(parser: &mut Parser, equals: bool) -> Result<GenericOption, ParserError> {
    let token = parser.next_token();
    let name = match &token.token {
        Token::Word(w) => w.value.to_lowercase(),
        _ => return parser.expected("option name", token),
    };
    let eq = equals && parser.consume_token(&Token::Eq);
    let next = parser.peek_token();
    let value = match next.token.clone() {
        Token::Comma | Token::RParen if !eq => OptionValue::None,
        Token::Mul => {
            parser.next_token();
            OptionValue::Star
        }
        Token::LParen => OptionValue::Columns(
            parser
                .parse_parenthesized_column_list(IsOptional::Mandatory, false)?
                .iter()
                .map(super::binder::ident_name)
                .collect(),
        ),
        Token::Word(w) => {
            parser.next_token();
            OptionValue::Text(if w.quote_style.is_some() {
                w.value
            } else {
                w.value.to_lowercase()
            })
        }
        Token::SingleQuotedString(s) => {
            parser.next_token();
            OptionValue::Text(s)
        }
        Token::Number(n, _) => {
            parser.next_token();
            OptionValue::Text(n)
        }
        _ => return parser.expected("option value", next),
    };
    Ok(GenericOption { name, value })
}

/// One pre-9.0 COPY option (`BINARY`, `DELIMITER [AS] 'c'`, `NULL [AS] 's'`, `CSV`, `HEADER`,
/// `QUOTE [AS] 'q'`, `ESCAPE [AS] 'e'`, `FORCE QUOTE cols|*`, `FORCE NOT NULL cols`), as its
/// generic option; `None` at the end of the statement.
fn parse_copy_legacy_option(parser: &mut Parser) -> Result<Option<GenericOption>, ParserError> {
    let text = |parser: &mut Parser| -> Result<OptionValue, ParserError> {
        let _ = parser.parse_keyword(Keyword::AS);
        Ok(OptionValue::Text(parser.parse_literal_string()?))
    };
    let word = |s: &str| OptionValue::Text(s.to_string());
    let columns = |parser: &mut Parser| -> Result<OptionValue, ParserError> {
        if parser.consume_token(&Token::Mul) {
            return Ok(OptionValue::Star);
        }
        let mut names = Vec::new();
        loop {
            names.push(super::binder::ident_name(&parser.parse_identifier()?));
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        Ok(OptionValue::Columns(names))
    };
    let option = if parser.parse_keyword(Keyword::BINARY) {
        GenericOption::new("format", word("binary"))
    } else if parser.parse_keyword(Keyword::CSV) {
        GenericOption::new("format", word("csv"))
    } else if parser.parse_keyword(Keyword::HEADER) {
        GenericOption::new("header", OptionValue::None)
    } else if parser.parse_keyword(Keyword::DELIMITER) {
        GenericOption::new("delimiter", text(parser)?)
    } else if parser.parse_keyword(Keyword::NULL) {
        GenericOption::new("null", text(parser)?)
    } else if parser.parse_keyword(Keyword::QUOTE) {
        GenericOption::new("quote", text(parser)?)
    } else if parser.parse_keyword(Keyword::ESCAPE) {
        GenericOption::new("escape", text(parser)?)
    } else if parser.parse_keywords(&[Keyword::FORCE, Keyword::QUOTE]) {
        GenericOption::new("force_quote", columns(parser)?)
    } else if parser.parse_keywords(&[Keyword::FORCE, Keyword::NOT, Keyword::NULL]) {
        GenericOption::new("force_not_null", columns(parser)?)
    } else {
        return Ok(None);
    };
    Ok(Some(option))
}

/// Consumes `words` (unquoted, any case) if the next tokens are exactly them; sqlparser has no
/// keyword for every word rxc needs (`PREPARED`).
pub(super) fn parse_words(parser: &mut Parser, words: &[&str]) -> bool {
    let matches = words.iter().enumerate().all(|(i, w)| {
        matches!(&parser.peek_nth_token(i).token,
            Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
    });
    if matches {
        for _ in words {
            parser.next_token();
        }
    }
    matches
}

/// Maps a sqlparser error to PostgreSQL's `syntax error at or near "x"` where the offending
/// token is known, else the parser's own message.
fn syntax_error(e: ParserError) -> SqlError {
    let message = match &e {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.clone(),
        ParserError::RecursionLimitExceeded => {
            return SqlError::new(
                super::error::sqlstate::STATEMENT_TOO_COMPLEX,
                "stack depth limit exceeded",
            )
        }
    };
    if let Some(found) = message.split(", found: ").nth(1) {
        let token = found.split(" at Line:").next().unwrap_or(found).trim();
        if token == "EOF" {
            return SqlError::syntax("syntax error at end of input");
        }
        return SqlError::syntax(format!("syntax error at or near \"{token}\""));
    }
    SqlError::syntax(format!("syntax error: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_phase_statements_mix_with_sql() {
        let parsed = parse("BEGIN; PREPARE TRANSACTION 'g1'; COMMIT PREPARED 'g1';").unwrap();
        assert_eq!(parsed.len(), 3);
        assert!(
            matches!(&parsed[0], Statement::Sql(s) if matches!(**s, ast::Statement::StartTransaction { .. }))
        );
        assert_eq!(parsed[1], Statement::PrepareTransaction("g1".into()));
        assert_eq!(parsed[2], Statement::CommitPrepared("g1".into()));
        assert_eq!(
            parse("rollback prepared 'x y'").unwrap(),
            vec![Statement::RollbackPrepared("x y".into())]
        );
        // Ordinary COMMIT and ROLLBACK still parse as such.
        assert!(matches!(&parse("commit").unwrap()[0], Statement::Sql(_)));
        assert!(matches!(&parse("rollback").unwrap()[0], Statement::Sql(_)));
    }

    #[test]
    fn syntax_errors_name_the_token() {
        let e = parse("SELEC 1").unwrap_err();
        assert_eq!(e.code, "42601");
        assert_eq!(e.message, "syntax error at or near \"SELEC\"");
        let e = parse("SELECT 1 +").unwrap_err();
        assert_eq!(e.message, "syntax error at end of input");
        let e = parse("PREPARE TRANSACTION 42").unwrap_err();
        assert_eq!(e.code, "42601");
        assert!(parse("").unwrap().is_empty());
        assert!(parse(" ; ;").unwrap().is_empty());
        assert!(parse_single("select 1; select 2").is_err());
    }

    #[test]
    fn nesting_beyond_the_limit_is_statement_too_complex() {
        let nested = |n: usize| format!("SELECT {}1{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&nested(RECURSION_LIMIT - 10)).is_ok());
        let e = parse(&nested(100_000)).unwrap_err();
        assert_eq!(e.code, crate::sql::error::sqlstate::STATEMENT_TOO_COMPLEX);
        assert_eq!(e.message, "stack depth limit exceeded");
    }

    fn one(sql: &str) -> Statement {
        let mut parsed = parse(sql).unwrap();
        assert_eq!(parsed.len(), 1, "{sql}");
        parsed.pop().unwrap()
    }

    fn syntax_error_message(sql: &str) -> String {
        let e = parse(sql).unwrap_err();
        assert_eq!(e.code, "42601", "{sql}: {}", e.message);
        e.message
    }

    fn text(name: &str, value: &str) -> GenericOption {
        GenericOption::new(name, OptionValue::Text(value.into()))
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn create_and_alter_node_take_options_with_or_without_equals() {
        assert_eq!(
            one("CREATE NODE dn1 WITH (TYPE = 'datanode', HOST = 'h', PORT = 15432, PRIMARY, PREFERRED)"),
            Statement::CreateNode {
                name: "dn1".into(),
                options: vec![
                    text("type", "datanode"),
                    text("host", "h"),
                    text("port", "15432"),
                    GenericOption::new("primary", OptionValue::None),
                    GenericOption::new("preferred", OptionValue::None),
                ],
            }
        );
        // Without `=`, words lower-cased, quoted names kept; option names are not checked.
        assert_eq!(
            one(r#"create node "DN_One" with (type coordinator, Primary = TRUE, whatever 'X')"#),
            Statement::CreateNode {
                name: "DN_One".into(),
                options: vec![
                    text("type", "coordinator"),
                    text("primary", "true"),
                    text("whatever", "X"),
                ],
            }
        );
        assert_eq!(
            one("ALTER NODE Dn1 WITH (PORT = 15433, PREFERRED = false)"),
            Statement::AlterNode {
                name: "dn1".into(),
                options: vec![text("port", "15433"), text("preferred", "false")],
            }
        );
        assert_eq!(
            syntax_error_message("CREATE NODE dn1 (HOST 'h')"),
            "syntax error at or near \"(\""
        );
        assert_eq!(
            syntax_error_message("CREATE NODE dn1 WITH (PORT = )"),
            "syntax error at or near \")\""
        );
        assert_eq!(
            syntax_error_message("CREATE NODE dn1 WITH ()"),
            "syntax error at or near \")\""
        );
        assert_eq!(
            syntax_error_message("ALTER NODE dn1 WITH (PORT 1"),
            "syntax error at end of input"
        );
        assert_eq!(
            syntax_error_message("CREATE NODE 'dn1' WITH (PORT 1)"),
            "syntax error at or near \"'dn1'\""
        );
        // COPY's generic options take no `=`, as in PostgreSQL.
        assert_eq!(
            syntax_error_message("COPY t FROM STDIN WITH (FORMAT = csv)"),
            "syntax error at or near \"=\""
        );
    }

    #[test]
    fn drop_node_and_node_groups() {
        assert_eq!(
            one("DROP NODE dn1"),
            Statement::DropNode {
                name: "dn1".into(),
                if_exists: false
            }
        );
        assert_eq!(
            one("drop node if exists \"Dn1\""),
            Statement::DropNode {
                name: "Dn1".into(),
                if_exists: true
            }
        );
        assert_eq!(
            one("CREATE NODE GROUP g1 WITH (dn1, DN2)"),
            Statement::CreateNodeGroup {
                name: "g1".into(),
                nodes: names(&["dn1", "dn2"]),
            }
        );
        assert_eq!(
            one("CREATE NODE GROUP g1 WITH dn1, dn2, dn3"),
            Statement::CreateNodeGroup {
                name: "g1".into(),
                nodes: names(&["dn1", "dn2", "dn3"]),
            }
        );
        assert_eq!(
            one("DROP NODE GROUP g1"),
            Statement::DropNodeGroup {
                name: "g1".into(),
                if_exists: false
            }
        );
        assert_eq!(
            one("DROP NODE GROUP IF EXISTS g1"),
            Statement::DropNodeGroup {
                name: "g1".into(),
                if_exists: true
            }
        );
        assert_eq!(
            syntax_error_message("CREATE NODE GROUP g1 WITH (dn1, )"),
            "syntax error at or near \")\""
        );
        assert_eq!(
            syntax_error_message("CREATE NODE GROUP g1 (dn1)"),
            "syntax error at or near \"(\""
        );
        assert_eq!(
            syntax_error_message("DROP NODE dn1 dn2"),
            "syntax error at or near \"dn2\""
        );
        assert_eq!(
            syntax_error_message("DROP NODE"),
            "syntax error at end of input"
        );
    }

    #[test]
    fn execute_direct_names_nodes_and_a_query_string() {
        let direct = |nodes: &[&str], query: &str| Statement::ExecuteDirect {
            nodes: names(nodes),
            query: query.into(),
        };
        assert_eq!(
            one("EXECUTE DIRECT ON (dn1, DN2) 'SELECT ''a'' FROM t'"),
            direct(&["dn1", "dn2"], "SELECT 'a' FROM t")
        );
        assert_eq!(
            one("execute direct on dn1 'select 1'"),
            direct(&["dn1"], "select 1")
        );
        assert_eq!(
            one("EXECUTE DIRECT ON NODE dn1 $$select 'x'$$"),
            direct(&["dn1"], "select 'x'")
        );
        // NODE followed by the query is the node's name.
        assert_eq!(
            one("EXECUTE DIRECT ON NODE E'select\\t1'"),
            direct(&["node"], "select\t1")
        );
        assert_eq!(
            syntax_error_message("EXECUTE DIRECT ON dn1 select"),
            "syntax error at or near \"select\""
        );
        assert_eq!(
            syntax_error_message("EXECUTE DIRECT ON (dn1 'select 1'"),
            "syntax error at or near \"'select 1'\""
        );
        assert_eq!(
            syntax_error_message("EXECUTE DIRECT ON dn1"),
            "syntax error at end of input"
        );
        // EXECUTE of a prepared statement named `direct` is still PostgreSQL's EXECUTE.
        for sql in ["EXECUTE direct", "EXECUTE direct (1, 'a')"] {
            assert!(
                matches!(&one(sql), Statement::Sql(s) if matches!(**s, ast::Statement::Execute { .. })),
                "{sql}"
            );
        }
    }

    #[test]
    fn clean_connection_forms() {
        let clean = |nodes: Option<&[&str]>, force, database: Option<&str>, user: Option<&str>| {
            Statement::CleanConnection {
                nodes: nodes.map(names),
                force,
                database: database.map(str::to_string),
                user: user.map(str::to_string),
            }
        };
        assert_eq!(
            one("CLEAN CONNECTION TO ALL"),
            clean(None, false, None, None)
        );
        assert_eq!(
            one("CLEAN CONNECTION TO ALL FORCE FOR DATABASE Db1 TO USER \"Ann\""),
            clean(None, true, Some("db1"), Some("Ann"))
        );
        assert_eq!(
            one("clean connection to node (dn1, dn2) to user ann for database db1"),
            clean(Some(&["dn1", "dn2"]), false, Some("db1"), Some("ann"))
        );
        assert_eq!(
            one("CLEAN CONNECTION TO COORDINATOR (co1) FORCE TO USER ann"),
            clean(Some(&["co1"]), true, None, Some("ann"))
        );
        // Postgres-XC's short forms, and DATABASE / USER as the names themselves.
        assert_eq!(
            one("CLEAN CONNECTION TO NODE (dn1) FOR db1 TO ann"),
            clean(Some(&["dn1"]), false, Some("db1"), Some("ann"))
        );
        assert_eq!(
            one("CLEAN CONNECTION TO ALL FOR database TO user"),
            clean(None, false, Some("database"), Some("user"))
        );
        assert_eq!(
            syntax_error_message("CLEAN CONNECTION TO dn1"),
            "syntax error at or near \"dn1\""
        );
        assert_eq!(
            syntax_error_message("CLEAN CONNECTION TO NODE dn1"),
            "syntax error at or near \"dn1\""
        );
        assert_eq!(
            syntax_error_message("CLEAN CONNECTION TO ALL FOR db1 FOR db2"),
            "syntax error at or near \"FOR\""
        );
        assert_eq!(
            syntax_error_message("CLEAN CONNECTION TO ALL FOR"),
            "syntax error at end of input"
        );
    }

    #[test]
    fn sqlparser_stops_a_create_table_before_distribute() {
        // sqlparser's own statement ends where DISTRIBUTE begins; its whole-string parse then
        // wants the end of the statement there.
        let dialect = PostgreSqlDialect {};
        let sql = "CREATE TABLE t (a int) DISTRIBUTE BY HASH(a)";
        let mut parser = Parser::new(&dialect).try_with_sql(sql).unwrap();
        assert!(matches!(
            parser.parse_statement().unwrap(),
            ast::Statement::CreateTable(_)
        ));
        assert!(matches!(
            &parser.peek_token().token,
            Token::Word(w) if w.keyword == Keyword::DISTRIBUTE
        ));
        let e = Parser::parse_sql(&dialect, sql).unwrap_err().to_string();
        assert!(e.contains("found: DISTRIBUTE"), "{e}");
    }

    #[test]
    fn create_table_with_distribution_and_node_target() {
        let create = |sql: &str| match one(sql) {
            Statement::CreateTable {
                create,
                distribute,
                to,
            } => {
                assert!(matches!(*create, ast::Statement::CreateTable(_)));
                (distribute, to)
            }
            other => panic!("{sql}: {other:?}"),
        };
        assert_eq!(
            create("CREATE TABLE t (a int, b text) DISTRIBUTE BY HASH(a)"),
            (Some(Distribute::Hash("a".into())), None)
        );
        assert_eq!(
            create("create table t (a int) distribute by modulo (\"A\") to node (dn1, DN2)"),
            (
                Some(Distribute::Modulo("A".into())),
                Some(NodeTarget::Nodes(names(&["dn1", "dn2"])))
            )
        );
        assert_eq!(
            create("CREATE TABLE t (a int) DISTRIBUTE BY REPLICATION TO GROUP G1"),
            (
                Some(Distribute::Replication),
                Some(NodeTarget::Group("g1".into()))
            )
        );
        assert_eq!(
            create("CREATE TABLE t (a int) DISTRIBUTE BY ROUNDROBIN"),
            (Some(Distribute::RoundRobin), None)
        );
        assert_eq!(
            create("CREATE TABLE t (a int) TO NODE (dn1)"),
            (None, Some(NodeTarget::Nodes(names(&["dn1"]))))
        );
        assert_eq!(
            create("CREATE TABLE IF NOT EXISTS t (a int PRIMARY KEY) TO GROUP g1"),
            (None, Some(NodeTarget::Group("g1".into())))
        );
        // Postgres-XC's CREATE TABLE AS: the clauses before the query.
        let Statement::CreateTable {
            create, distribute, ..
        } = one("CREATE TABLE t2 DISTRIBUTE BY HASH(a) AS SELECT 1 AS a WITH NO DATA")
        else {
            panic!("not a Postgres-XC CREATE TABLE");
        };
        assert_eq!(distribute, Some(Distribute::Hash("a".into())));
        assert_eq!(
            create.to_string(),
            "CREATE TABLE t2 AS SELECT 1 AS a WITH NO DATA"
        );

        assert_eq!(
            syntax_error_message("CREATE TABLE t (a int) DISTRIBUTE BY RANGE (a)"),
            "syntax error at or near \"RANGE\""
        );
        assert_eq!(
            syntax_error_message("CREATE TABLE t (a int) DISTRIBUTE BY HASH a"),
            "syntax error at or near \"a\""
        );
        assert_eq!(
            syntax_error_message("CREATE TABLE t (a int) DISTRIBUTE BY HASH (a, b)"),
            "syntax error at or near \",\""
        );
        assert_eq!(
            syntax_error_message("CREATE TABLE t (a int) DISTRIBUTE BY"),
            "syntax error at end of input"
        );
        assert_eq!(
            syntax_error_message("CREATE TABLE t (a int) TO NODE dn1"),
            "syntax error at or near \"dn1\""
        );
        assert_eq!(
            syntax_error_message("CREATE TABLE t (a int) TO dn1"),
            "syntax error at or near \"TO\""
        );
        // TO comes after DISTRIBUTE BY, once.
        assert_eq!(
            syntax_error_message("CREATE TABLE t (a int) TO NODE (dn1) DISTRIBUTE BY HASH(a)"),
            "syntax error at or near \"DISTRIBUTE\""
        );
    }

    #[test]
    fn plain_create_table_stays_sql() {
        for sql in [
            "CREATE TABLE t (a int)",
            "CREATE TABLE node (node int, \"group\" text)",
            "CREATE TABLE t AS SELECT 1 AS a",
        ] {
            assert!(
                matches!(&one(sql), Statement::Sql(s) if matches!(**s, ast::Statement::CreateTable(_))),
                "{sql}"
            );
        }
    }

    #[test]
    fn create_table_text_without_the_clauses_parses_again() {
        let sql = "CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance bigint \
                   DEFAULT 0) DISTRIBUTE BY HASH(id) TO NODE (dn1, dn2)";
        let Statement::CreateTable { create, .. } = one(sql) else {
            panic!("not a Postgres-XC CREATE TABLE");
        };
        let text = create.to_string();
        assert!(!text.to_uppercase().contains("DISTRIBUTE"), "{text}");
        assert!(!text.to_uppercase().contains(" TO "), "{text}");
        let Statement::Sql(again) = one(&text) else {
            panic!("{text} did not parse as plain SQL");
        };
        assert_eq!(*again, *create);
        assert_eq!(again.to_string(), text);
    }

    #[test]
    fn cluster_statements_mix_with_sql() {
        let parsed = parse(
            "CREATE NODE dn1 WITH (TYPE = 'datanode', PORT = 15432);
             CREATE TABLE node (a int);
             CREATE TABLE t (a int) DISTRIBUTE BY HASH(a); SELECT 1;
             CREATE TABLE u (a int) TO GROUP g;
             EXECUTE DIRECT ON dn1 'SELECT 1; SELECT 2';
             CLEAN CONNECTION TO ALL;
             DROP TABLE node; DROP NODE dn1",
        )
        .unwrap();
        let commands: Vec<&str> = parsed.iter().map(Statement::command_name).collect();
        assert_eq!(
            commands,
            [
                "CREATE NODE",
                "SQL",
                "CREATE TABLE",
                "SQL",
                "CREATE TABLE",
                "EXECUTE DIRECT",
                "CLEAN CONNECTION",
                "SQL",
                "DROP NODE"
            ]
        );
        assert!(
            matches!(&parsed[7], Statement::Sql(s) if matches!(**s, ast::Statement::Drop { .. }))
        );
        assert_eq!(
            parsed[5],
            Statement::ExecuteDirect {
                nodes: names(&["dn1"]),
                query: "SELECT 1; SELECT 2".into()
            }
        );
        // Only the exact unquoted words start a cluster statement.
        assert_eq!(
            syntax_error_message("DROP \"NODE\" dn1"),
            "syntax error at or near \"\"NODE\"\""
        );
        // A cluster statement must end where the statement does.
        assert_eq!(
            syntax_error_message("DROP NODE dn1 SELECT 1"),
            "syntax error at or near \"SELECT\""
        );
    }
}
