//! Sequence DDL: `CREATE SEQUENCE`, `ALTER SEQUENCE`, `DROP SEQUENCE`.
//!
//! A sequence lives at the GTM, one for the whole cluster (its definition and its values), so
//! every node and coordinator sees the same sequences and no value is handed out twice. The
//! DDL is transactional as in PostgreSQL where it matters: a sequence created in a
//! transaction that rolls back is dropped at the GTM again, and a `DROP SEQUENCE` takes effect
//! at the GTM only when its transaction commits (also through two-phase commit). `ALTER
//! SEQUENCE` takes effect at once, like `setval`.

use super::statement::sequence_error;
use super::{Node, Session, StatementResult};
use rxc_common::gtm::proto::SeqOptions;
use rxc_common::sql::binder::object_name;
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::parser::{SequenceChange, Statement};
use sqlparser::ast;

/// The sequences a transaction created or dropped, settled at the GTM when it ends.
#[derive(Debug, Default)]
pub(crate) struct SequenceChanges {
    created: Vec<String>,
    pub(super) dropped: Vec<String>,
}

impl SequenceChanges {
    pub(super) fn is_empty(&self) -> bool {
        self.created.is_empty() && self.dropped.is_empty()
    }

    /// Makes the changes final at the GTM once their transaction ended: the dropped ones go if
    /// it committed, the created ones if it did not.
    pub(super) async fn settle(self, node: &Node, committed: bool) {
        let gone = if committed {
            self.dropped
        } else {
            self.created
        };
        for name in gone {
            if let Err(e) = node.gtm.drop_sequence(&name, true).await {
                tracing::warn!(sequence = name, error = %e, "dropping a sequence at the GTM failed");
            }
            node.forget_sequence(&name);
        }
    }
}

impl Session {
    /// `CREATE`, `ALTER` and `DROP SEQUENCE` (`None` for any other statement).
    pub(super) async fn sequence_ddl(
        &mut self,
        stmt: &Statement,
    ) -> Result<Option<StatementResult>> {
        let ast = match stmt {
            Statement::CreateSequence {
                name,
                if_not_exists,
                options,
            } => {
                return self
                    .create_sequence(name, options.clone(), *if_not_exists)
                    .await
                    .map(Some)
            }
            Statement::AlterSequence {
                name,
                if_exists,
                change,
            } => {
                return self
                    .alter_sequence(name, *if_exists, change)
                    .await
                    .map(Some)
            }
            Statement::Sql(ast) => ast,
            _ => return Ok(None),
        };
        match &**ast {
            // sqlparser takes a CREATE SEQUENCE only when rxc's parser did not: a temporary one.
            ast::Statement::CreateSequence { .. } => Err(SqlError::unsupported(
                "temporary sequences are not supported",
            )),
            ast::Statement::Drop {
                object_type: ast::ObjectType::Sequence,
                if_exists,
                names,
                cascade,
                ..
            } => {
                if *cascade {
                    return Err(SqlError::unsupported("DROP SEQUENCE ... CASCADE"));
                }
                let names = names.iter().map(object_name).collect::<Result<Vec<_>>>()?;
                self.drop_sequences(&names, *if_exists).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    /// `CREATE SEQUENCE`: at the GTM at once, dropped again if its transaction rolls back.
    async fn create_sequence(
        &mut self,
        name: &str,
        options: SeqOptions,
        if_not_exists: bool,
    ) -> Result<StatementResult> {
        let done = StatementResult::Command("CREATE SEQUENCE".into());
        if self.table(name)?.is_some() {
            if if_not_exists {
                return Ok(done);
            }
            return Err(already_exists(name));
        }
        match self.node.gtm.create_sequence(name, options).await {
            Ok(()) => {}
            Err(e) if if_not_exists && e.code.sqlstate() == sqlstate::DUPLICATE_TABLE => {
                return Ok(done)
            }
            Err(e) => return Err(sequence_error(e)),
        }
        self.node.forget_sequence(name);
        if let Some(txn) = self.txn.as_mut().filter(|t| t.explicit) {
            txn.sequences.created.push(name.to_string());
        }
        Ok(done)
    }

    async fn drop_sequences(
        &mut self,
        names: &[String],
        if_exists: bool,
    ) -> Result<StatementResult> {
        let mut existing = Vec::new();
        for name in names {
            match self.node.gtm.sequence(name).await {
                Ok(_) => existing.push(name.clone()),
                Err(e) if e.code.sqlstate() == sqlstate::UNDEFINED_TABLE => {
                    if !if_exists {
                        return Err(SqlError::new(
                            sqlstate::UNDEFINED_TABLE,
                            format!("sequence \"{name}\" does not exist"),
                        ));
                    }
                }
                Err(e) => return Err(sequence_error(e)),
            }
        }
        for name in &existing {
            self.session_sequences
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(name);
        }
        let changes = SequenceChanges {
            created: Vec::new(),
            dropped: existing,
        };
        match self.txn.as_mut().filter(|t| t.explicit) {
            Some(txn) => txn.sequences.dropped.extend(changes.dropped),
            None => changes.settle(&self.node, true).await,
        }
        Ok(StatementResult::Command("DROP SEQUENCE".into()))
    }

    /// The sequences a `DROP TABLE` drops with its tables: those of their serial columns
    /// (a column whose default is `nextval('<table>_<column>_seq')`, the name the serial
    /// gave it), as PostgreSQL drops the sequences a table's columns own.
    pub(super) fn owned_sequences(&self, stmt: &ast::Statement) -> Result<Vec<String>> {
        let ast::Statement::Drop {
            object_type: ast::ObjectType::Table,
            names,
            ..
        } = stmt
        else {
            return Ok(Vec::new());
        };
        let mut owned = Vec::new();
        for name in names {
            let Some(table) = self.table(&object_name(name)?)? else {
                continue;
            };
            for column in &table.columns {
                let sequence = format!("{}_{}_seq", table.name, column.name);
                if column.default.as_deref() == Some(&format!("nextval('{sequence}')")) {
                    owned.push(sequence);
                }
            }
        }
        Ok(owned)
    }

    /// `ALTER SEQUENCE`: at the GTM, at once.
    async fn alter_sequence(
        &mut self,
        name: &str,
        if_exists: bool,
        change: &SequenceChange,
    ) -> Result<StatementResult> {
        let done = Ok(StatementResult::Command("ALTER SEQUENCE".into()));
        let result = match change {
            SequenceChange::Options(options) => {
                self.node.gtm.alter_sequence(name, options.clone()).await
            }
            SequenceChange::Rename(to) => {
                if self.table(to)?.is_some() {
                    return Err(already_exists(to));
                }
                self.node.gtm.rename_sequence(name, to).await
            }
        };
        match result {
            Ok(()) => {}
            Err(e) if if_exists && e.code.sqlstate() == sqlstate::UNDEFINED_TABLE => return done,
            Err(e) => return Err(sequence_error(e)),
        }
        // Values this node cached are from before the change.
        self.node.forget_sequence(name);
        done
    }
}

fn already_exists(name: &str) -> SqlError {
    SqlError::new(
        sqlstate::DUPLICATE_TABLE,
        format!("relation \"{name}\" already exists"),
    )
}
