//! The SQL parser: sqlparser with the PostgreSQL dialect, behind rxc's own statement type.
//!
//! sqlparser parses standard and PostgreSQL SQL into its AST. What it lacks — the two-phase
//! commit statements `PREPARE TRANSACTION 'gid'`, `COMMIT PREPARED 'gid'` and
//! `ROLLBACK PREPARED 'gid'` — the wrapper recognises at the start of each statement and parses
//! with the parser's own token helpers, so a multi-statement string can mix both kinds.
//! Parse errors become SQLSTATE 42601 with PostgreSQL's wording, `syntax error at or near "x"`.

use super::error::{Result, SqlError};
use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;

/// A parsed statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    /// A statement sqlparser understands.
    Sql(Box<ast::Statement>),
    /// `PREPARE TRANSACTION 'gid'`
    PrepareTransaction(String),
    /// `COMMIT PREPARED 'gid'`
    CommitPrepared(String),
    /// `ROLLBACK PREPARED 'gid'`
    RollbackPrepared(String),
}

/// Parses one or more `;`-separated statements. Empty input gives no statements.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
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
    Ok(Statement::Sql(Box::new(parser.parse_statement()?)))
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
                super::error::sqlstate::PROGRAM_LIMIT_EXCEEDED,
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
}
