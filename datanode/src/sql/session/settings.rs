//! Session settings: `SET`, `SHOW`, the defaults a session starts with, the isolation level,
//! and the lock and statement timeouts that become the MVCC layer's wait options.

use super::{Session, StatementResult};
use crate::storage::locks::WaitOptions;
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::plan::OutputColumn;
use rxc_common::sql::{DataType, Value};
use rxc_common::txn::Isolation;
use sqlparser::ast;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub fn isolation_from_modes(modes: &[ast::TransactionMode]) -> Result<Option<Isolation>> {
    let mut out = None;
    for m in modes {
        if let ast::TransactionMode::IsolationLevel(level) = m {
            out = Some(match level {
                ast::TransactionIsolationLevel::ReadUncommitted
                | ast::TransactionIsolationLevel::ReadCommitted => Isolation::ReadCommitted,
                ast::TransactionIsolationLevel::RepeatableRead => Isolation::RepeatableRead,
                _ => {
                    return Err(SqlError::unsupported(
                        "SERIALIZABLE isolation is not supported yet; use REPEATABLE READ",
                    ))
                }
            });
        }
    }
    Ok(out)
}

pub(super) fn isolation_name(i: Isolation) -> &'static str {
    match i {
        Isolation::ReadCommitted => "read committed",
        Isolation::RepeatableRead => "repeatable read",
    }
}

impl Session {
    pub fn default_isolation(&self) -> Result<Isolation> {
        match self
            .settings
            .get("default_transaction_isolation")
            .map(String::as_str)
        {
            Some("repeatable read") => Ok(Isolation::RepeatableRead),
            Some("serializable") => Err(SqlError::unsupported(
                "SERIALIZABLE isolation is not supported yet; use REPEATABLE READ",
            )),
            _ => Ok(Isolation::ReadCommitted),
        }
    }

    /// Whether the session is a coordinator's connection (`rxc.remotetype=coordinator`):
    /// transaction context comes with the statements.
    pub fn is_from_coordinator(&self) -> bool {
        self.from_coordinator
    }

    /// Makes the session a coordinator's connection, or a client's.
    pub fn set_from_coordinator(&mut self, yes: bool) {
        self.from_coordinator = yes;
    }

    /// A setting in milliseconds (PostgreSQL's `lock_timeout`, `statement_timeout`,
    /// `deadlock_timeout`: a number of ms, or with a unit `ms`/`s`/`min`); 0 means none.
    pub fn setting_ms(&self, name: &str) -> u64 {
        let Some(v) = self.settings.get(name) else {
            return 0;
        };
        let v = v.trim().trim_matches('\'').to_lowercase();
        let (digits, unit): (String, String) = v.chars().partition(|c| c.is_ascii_digit());
        let n: u64 = digits.parse().unwrap_or(0);
        match unit.trim() {
            "s" => n * 1000,
            "min" => n * 60_000,
            _ => n,
        }
    }

    /// How the next statement waits for row locks.
    pub(super) fn wait_options(&self) -> WaitOptions {
        let lock_timeout = self.setting_ms("lock_timeout");
        let statement_timeout = self.setting_ms("statement_timeout");
        let deadlock_timeout = self.setting_ms("deadlock_timeout");
        WaitOptions {
            lock_timeout: (lock_timeout > 0).then(|| Duration::from_millis(lock_timeout)),
            deadlock_timeout: if deadlock_timeout > 0 {
                Duration::from_millis(deadlock_timeout)
            } else {
                Duration::from_secs(1)
            },
            cancel: Some(self.cancel.clone()),
            deadline: (statement_timeout > 0)
                .then(|| Instant::now() + Duration::from_millis(statement_timeout)),
        }
    }

    /// Statements that touch neither storage nor the GTM (SET, SHOW, DISCARD).
    pub(super) fn utility(&mut self, stmt: &ast::Statement) -> Result<Option<StatementResult>> {
        Ok(Some(match stmt {
            ast::Statement::Set(set) => {
                self.set(set)?;
                StatementResult::Command("SET".into())
            }
            ast::Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ");
                let value = match name.as_str() {
                    "transaction isolation level" | "transaction_isolation" => {
                        let i = match &self.txn {
                            Some(t) => t.isolation,
                            None => self.default_isolation()?,
                        };
                        isolation_name(i).to_string()
                    }
                    other => self.settings.get(other).cloned().ok_or_else(|| {
                        SqlError::new(
                            sqlstate::UNDEFINED_OBJECT,
                            format!("unrecognized configuration parameter \"{other}\""),
                        )
                    })?,
                };
                StatementResult::Rows {
                    columns: vec![OutputColumn {
                        name,
                        data_type: DataType::Text,
                        table_id: None,
                    }],
                    rows: vec![vec![Value::Text(value)]],
                    tag: "SHOW".into(),
                }
            }
            ast::Statement::Discard { .. } => StatementResult::Command("DISCARD ALL".into()),
            _ => return Ok(None),
        }))
    }

    /// `SET name = value` (also from the startup packet's options).
    fn set_variable(&mut self, name: &str, value: String) -> Result<()> {
        let value = if value.eq_ignore_ascii_case("default") {
            default_settings().remove(name).unwrap_or_default()
        } else {
            value
        };
        if name == "default_transaction_isolation" || name == "transaction_isolation" {
            let v = value.to_lowercase();
            if v == "serializable" {
                return Err(SqlError::unsupported(
                    "SERIALIZABLE isolation is not supported yet; use REPEATABLE READ",
                ));
            }
            if name == "transaction_isolation" {
                if let Some(t) = &mut self.txn {
                    t.isolation = if v == "repeatable read" {
                        Isolation::RepeatableRead
                    } else {
                        Isolation::ReadCommitted
                    };
                }
                return Ok(());
            }
        }
        self.settings.insert(name.to_string(), value);
        Ok(())
    }

    /// Applies the startup packet's `options` (`-c name=value`, `--name=value`), as
    /// PostgreSQL does; `rxc.remotetype=coordinator` marks a coordinator's connection.
    pub fn apply_startup_options(&mut self, options: &str) -> Result<()> {
        let words = split_options(options);
        let mut words = words.iter().map(String::as_str);
        while let Some(word) = words.next() {
            let assignment = match word {
                "-c" => words.next().unwrap_or_default(),
                w if w.starts_with("--") => &w[2..],
                w if w.starts_with("-c") => &w[2..],
                w => {
                    return Err(SqlError::new(
                        sqlstate::PROTOCOL_VIOLATION,
                        format!("invalid command-line argument for server process: {w}"),
                    ))
                }
            };
            let Some((name, value)) = assignment.split_once('=') else {
                return Err(SqlError::new(
                    sqlstate::SYNTAX_ERROR,
                    format!("-c {assignment} requires a value"),
                ));
            };
            let name = name.to_lowercase().replace('-', "_");
            if name == "rxc.remotetype" {
                self.from_coordinator = value.eq_ignore_ascii_case("coordinator");
                // A coordinator's connection hands out transaction context: a superuser's.
                if self.from_coordinator && !self.is_superuser() {
                    return Err(SqlError::new(
                        sqlstate::INSUFFICIENT_PRIVILEGE,
                        "must be superuser to connect as a coordinator (rxc.remotetype)",
                    ));
                }
                continue;
            }
            self.set_variable(&name, value.to_string())?;
        }
        Ok(())
    }

    fn set(&mut self, set: &ast::Set) -> Result<()> {
        match set {
            ast::Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = variable.to_string().to_lowercase();
                let value = values
                    .iter()
                    .map(|v| match v {
                        ast::Expr::Value(v) => match &v.value {
                            ast::Value::SingleQuotedString(s) => s.clone(),
                            other => other.to_string(),
                        },
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                self.set_variable(&name, value)
            }
            ast::Set::SetTimeZone { value, .. } => {
                let v = value.to_string().trim_matches('\'').to_string();
                self.settings.insert("timezone".into(), v);
                Ok(())
            }
            ast::Set::SetTransaction { modes, .. } => {
                if let Some(i) = isolation_from_modes(modes)? {
                    if let Some(t) = &mut self.txn {
                        t.isolation = i;
                    }
                }
                Ok(())
            }
            ast::Set::SetNames { .. } | ast::Set::SetNamesDefault {} => Ok(()),
            _ => Err(SqlError::unsupported(format!("{set} is not supported"))),
        }
    }
}

/// The settings a session starts with (what `SET x = DEFAULT` returns to).
pub(super) fn default_settings() -> BTreeMap<String, String> {
    [
        ("client_encoding", "UTF8"),
        ("datestyle", "ISO, MDY"),
        ("timezone", "UTC"),
        ("extra_float_digits", "1"),
        ("default_transaction_isolation", "read committed"),
        ("standard_conforming_strings", "on"),
        ("integer_datetimes", "on"),
        ("server_version", "15.0"),
        ("server_encoding", "UTF8"),
        ("application_name", ""),
        ("search_path", "\"$user\", public"),
        ("statement_timeout", "0"),
        ("lock_timeout", "0"),
        ("deadlock_timeout", "1s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The words of a startup packet's `options`, split as PostgreSQL's `pg_split_opts` does: at
/// whitespace, a backslash taking the next character (a space, a backslash) as it is — libpq
/// users write `PGOPTIONS='-c default_transaction_isolation=repeatable\ read'`.
fn split_options(options: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut escaped = false;
    for c in options.chars() {
        if escaped {
            word.get_or_insert_with(String::new).push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
            word.get_or_insert_with(String::new);
        } else if c.is_whitespace() {
            words.extend(word.take());
        } else {
            word.get_or_insert_with(String::new).push(c);
        }
    }
    words.extend(word);
    words
}

#[cfg(test)]
mod tests {
    use super::split_options;

    #[test]
    fn startup_options_split_at_unescaped_whitespace() {
        assert_eq!(
            split_options("  -c default_transaction_isolation=repeatable\\ read  -cx=a\\\\b "),
            [
                "-c",
                "default_transaction_isolation=repeatable read",
                "-cx=a\\b"
            ]
        );
        assert!(split_options("   ").is_empty());
    }
}
