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
//! Parse errors become SQLSTATE 42601 with PostgreSQL's wording, `syntax error at or near "x"`.

use super::error::{Result, SqlError};
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
        parser.expect_token(&Token::LParen)?;
        let mut options = Vec::new();
        loop {
            options.push(parse_generic_option(parser)?);
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        parser.expect_token(&Token::RParen)?;
        return Ok(Statement::TransactionContext(options));
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
    Ok(Statement::Sql(Arc::new(parser.parse_statement()?)))
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
    if parser.consume_token(&Token::LParen) {
        loop {
            options.push(parse_generic_option(parser)?);
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        parser.expect_token(&Token::RParen)?;
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

/// `name [value]` of the generic COPY option list.
fn parse_generic_option(parser: &mut Parser) -> Result<GenericOption, ParserError> {
    let token = parser.next_token();
    let name = match &token.token {
        Token::Word(w) => w.value.to_lowercase(),
        _ => return parser.expected("COPY option name", token),
    };
    let next = parser.peek_token();
    let value = match next.token.clone() {
        Token::Comma | Token::RParen => OptionValue::None,
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
        _ => return parser.expected("COPY option value", next),
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
fn parse_words(parser: &mut Parser, words: &[&str]) -> bool {
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
}
