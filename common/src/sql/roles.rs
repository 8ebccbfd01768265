//! Role statements as rxc parses them: `CREATE ROLE | USER | GROUP`, `ALTER ROLE | USER |
//! GROUP` and `DROP ROLE | USER | GROUP` with PostgreSQL's options in any order (sqlparser has
//! no PostgreSQL `CREATE USER` and reads some options differently), written back as SQL for
//! the nodes a coordinator ships them to.

use super::binder::quote_ident;
use super::parser::{parse_name, parse_string, parse_words, Statement};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;
use std::fmt;

/// The options of `CREATE ROLE` / `ALTER ROLE`: only those given are set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleOptions {
    pub superuser: Option<bool>,
    pub createdb: Option<bool>,
    pub createrole: Option<bool>,
    pub inherit: Option<bool>,
    pub login: Option<bool>,
    pub replication: Option<bool>,
    pub bypassrls: Option<bool>,
    /// `CONNECTION LIMIT n` (-1: none).
    pub connection_limit: Option<i64>,
    /// `[ENCRYPTED] PASSWORD 'p'`, or `PASSWORD NULL` (`Some(None)`).
    pub password: Option<Option<String>>,
    /// `VALID UNTIL 'timestamp'`.
    pub valid_until: Option<String>,
    /// A membership clause (`IN ROLE`, `ROLE`, `ADMIN`, `USER`) was given: rxc has no role
    /// membership yet, so the statement is refused.
    pub membership: bool,
}

/// What an `ALTER ROLE` changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// Options.
    Options(RoleOptions),
    /// `RENAME TO new`.
    Rename(String),
    /// `SET name ...` / `RESET name`: per-role settings (refused: not kept yet).
    Settings,
}

fn duplicate() -> ParserError {
    ParserError::ParserError("conflicting or redundant options".into())
}

fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), ParserError> {
    if slot.is_some() {
        return Err(duplicate());
    }
    *slot = Some(value);
    Ok(())
}

/// The flag options: the word that sets each, and the slot it fills.
fn flag<'a>(options: &'a mut RoleOptions, word: &str) -> Option<(&'a mut Option<bool>, bool)> {
    let (name, value) = match word.strip_prefix("no") {
        Some(rest) => (rest, false),
        None => (word, true),
    };
    let slot = match name {
        "superuser" => &mut options.superuser,
        "createdb" => &mut options.createdb,
        "createrole" => &mut options.createrole,
        "inherit" => &mut options.inherit,
        "login" => &mut options.login,
        "replication" => &mut options.replication,
        "bypassrls" => &mut options.bypassrls,
        _ => return None,
    };
    Some((slot, value))
}

/// Role options up to the end of the statement (`WITH` before them is noise).
fn parse_role_options(parser: &mut Parser) -> Result<RoleOptions, ParserError> {
    let _ = parser.parse_keyword(Keyword::WITH);
    let mut options = RoleOptions::default();
    loop {
        let token = parser.peek_token();
        let word = match &token.token {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_lowercase(),
            Token::SemiColon | Token::EOF => return Ok(options),
            _ => return parser.expected("a role option", token),
        };
        if let Some((slot, value)) = flag(&mut options, &word) {
            parser.next_token();
            set(slot, value)?;
            continue;
        }
        if parse_words(parser, &["connection", "limit"]) {
            let negative = parser.consume_token(&Token::Minus);
            let token = parser.next_token();
            let n: i64 = match &token.token {
                Token::Number(n, _) => n
                    .parse()
                    .map_err(|_| ParserError::ParserError(format!("invalid number {n}")))?,
                _ => return parser.expected("a number", token),
            };
            set(&mut options.connection_limit, if negative { -n } else { n })?;
        } else if parse_words(parser, &["encrypted", "password"])
            || parse_words(parser, &["password"])
        {
            let value = if parser.parse_keyword(Keyword::NULL) {
                None
            } else {
                Some(parse_string(parser)?)
            };
            set(&mut options.password, value)?;
        } else if parse_words(parser, &["unencrypted", "password"]) {
            return Err(ParserError::ParserError(
                "UNENCRYPTED PASSWORD is no longer supported".into(),
            ));
        } else if parse_words(parser, &["valid", "until"]) {
            set(&mut options.valid_until, parse_string(parser)?)?;
        } else if parse_words(parser, &["sysid"]) {
            // "SYSID can no longer be specified" (PostgreSQL ignores it).
            parser.next_token();
        } else if parse_words(parser, &["in", "role"])
            || parse_words(parser, &["in", "group"])
            || parse_words(parser, &["role"])
            || parse_words(parser, &["admin"])
            || parse_words(parser, &["user"])
        {
            options.membership = true;
            loop {
                parse_name(parser)?;
                if !parser.consume_token(&Token::Comma) {
                    break;
                }
            }
        } else {
            return parser.expected("a role option", token);
        }
    }
}

/// `CREATE`, `ALTER` or `DROP` followed by `ROLE`, `USER` or `GROUP`: the role statement,
/// or `None`, consuming nothing, for any other statement.
pub(super) fn parse_role_statement(parser: &mut Parser) -> Result<Option<Statement>, ParserError> {
    let kinds = ["role", "user", "group"];
    for verb in ["create", "alter", "drop"] {
        for kind in kinds {
            // `ALTER USER MAPPING`, `DROP USER MAPPING` and `CREATE USER MAPPING` are not roles.
            let mapping = matches!(&parser.peek_nth_token(2).token,
                Token::Word(w) if w.value.eq_ignore_ascii_case("mapping"));
            if mapping || !parse_words(parser, &[verb, kind]) {
                continue;
            }
            return Ok(Some(match verb {
                "create" => {
                    let name = parse_name(parser)?;
                    let mut options = parse_role_options(parser)?;
                    // CREATE USER is CREATE ROLE with LOGIN unless it says otherwise.
                    if kind == "user" && options.login.is_none() {
                        options.login = Some(true);
                    }
                    Statement::CreateRole { name, options }
                }
                "alter" => {
                    let name = parse_name(parser)?;
                    let change = if parser.parse_keywords(&[Keyword::RENAME, Keyword::TO]) {
                        RoleChange::Rename(parse_name(parser)?)
                    } else if parse_words(parser, &["set"]) || parse_words(parser, &["reset"]) {
                        while !matches!(parser.peek_token().token, Token::SemiColon | Token::EOF) {
                            parser.next_token();
                        }
                        RoleChange::Settings
                    } else {
                        RoleChange::Options(parse_role_options(parser)?)
                    };
                    Statement::AlterRole { name, change }
                }
                _ => {
                    let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
                    let mut names = vec![parse_name(parser)?];
                    while parser.consume_token(&Token::Comma) {
                        names.push(parse_name(parser)?);
                    }
                    Statement::DropRole { names, if_exists }
                }
            }));
        }
    }
    Ok(None)
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl fmt::Display for RoleOptions {
    /// The options as SQL (each with a leading space), as the parser reads them back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = [
            ("SUPERUSER", self.superuser),
            ("CREATEDB", self.createdb),
            ("CREATEROLE", self.createrole),
            ("INHERIT", self.inherit),
            ("LOGIN", self.login),
            ("REPLICATION", self.replication),
            ("BYPASSRLS", self.bypassrls),
        ];
        for (word, value) in flags {
            match value {
                Some(true) => write!(f, " {word}")?,
                Some(false) => write!(f, " NO{word}")?,
                None => {}
            }
        }
        if let Some(n) = self.connection_limit {
            write!(f, " CONNECTION LIMIT {n}")?;
        }
        match &self.password {
            Some(Some(p)) => write!(f, " PASSWORD {}", quote_literal(p))?,
            Some(None) => write!(f, " PASSWORD NULL")?,
            None => {}
        }
        if let Some(v) = &self.valid_until {
            write!(f, " VALID UNTIL {}", quote_literal(v))?;
        }
        Ok(())
    }
}

/// A role statement as SQL text (`None` for other statements); the text parses back to the
/// same statement.
pub fn role_sql(stmt: &Statement) -> Option<String> {
    Some(match stmt {
        Statement::CreateRole { name, options } => {
            format!("CREATE ROLE {}{options}", quote_ident(name))
        }
        Statement::AlterRole {
            name,
            change: RoleChange::Options(options),
        } => format!("ALTER ROLE {}{options}", quote_ident(name)),
        Statement::AlterRole {
            name,
            change: RoleChange::Rename(to),
        } => format!(
            "ALTER ROLE {} RENAME TO {}",
            quote_ident(name),
            quote_ident(to)
        ),
        Statement::DropRole { names, if_exists } => format!(
            "DROP ROLE {}{}",
            if *if_exists { "IF EXISTS " } else { "" },
            names
                .iter()
                .map(|n| quote_ident(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse_single;
    use super::*;

    fn parse(sql: &str) -> Statement {
        parse_single(sql).unwrap().unwrap()
    }

    #[test]
    fn role_statements_parse_with_options_in_any_order() {
        let Statement::CreateRole { name, options } = parse(
            "CREATE USER Alice WITH PASSWORD 'it''s' NOSUPERUSER CONNECTION LIMIT 3 \
             VALID UNTIL '2030-01-01' CREATEDB",
        ) else {
            panic!("not a CREATE ROLE")
        };
        assert_eq!(name, "alice");
        assert_eq!(options.login, Some(true), "CREATE USER logs in");
        assert_eq!(options.superuser, Some(false));
        assert_eq!(options.createdb, Some(true));
        assert_eq!(options.connection_limit, Some(3));
        assert_eq!(options.password, Some(Some("it's".into())));
        assert_eq!(options.valid_until.as_deref(), Some("2030-01-01"));
        let Statement::CreateRole { options, .. } = parse("CREATE ROLE r NOLOGIN PASSWORD NULL")
        else {
            panic!("not a CREATE ROLE")
        };
        assert_eq!(options.login, Some(false));
        assert_eq!(options.password, Some(None));
        assert!(matches!(
            parse("ALTER ROLE r RENAME TO \"S\""),
            Statement::AlterRole { change: RoleChange::Rename(to), .. } if to == "S"
        ));
        assert!(matches!(
            parse("ALTER USER r SET search_path = a"),
            Statement::AlterRole {
                change: RoleChange::Settings,
                ..
            }
        ));
        assert!(matches!(
            parse("DROP ROLE IF EXISTS a, b"),
            Statement::DropRole { names, if_exists: true } if names == ["a", "b"]
        ));
        let Statement::CreateRole { options, .. } = parse("CREATE ROLE m IN ROLE a, b") else {
            panic!("not a CREATE ROLE")
        };
        assert!(options.membership);
        for bad in [
            "CREATE ROLE r LOGIN LOGIN",
            "CREATE ROLE r PASSWORD 'a' PASSWORD 'b'",
            "CREATE ROLE r FLY",
        ] {
            assert!(parse_single(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn role_statements_round_trip_through_their_sql() {
        for sql in [
            "CREATE ROLE \"a b\" SUPERUSER NOLOGIN CONNECTION LIMIT -1 PASSWORD 'x''y' \
             VALID UNTIL 'infinity'",
            "ALTER ROLE r NOCREATEROLE PASSWORD NULL",
            "ALTER ROLE r RENAME TO s",
            "DROP ROLE IF EXISTS a, \"B\"",
        ] {
            let stmt = parse(sql);
            let text = role_sql(&stmt).unwrap();
            assert_eq!(parse(&text), stmt, "{sql} → {text}");
        }
    }
}
