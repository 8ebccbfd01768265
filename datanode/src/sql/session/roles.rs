//! Role DDL in a session: `CREATE ROLE`, `ALTER ROLE` and `DROP ROLE` run in the session's
//! transaction (with a GXID, as any write) against the roles table, checked against the
//! privileges of the session's role; the node's roles are reloaded when the transaction
//! commits ([`Session::finish`]).

use super::{Session, StatementResult};
use crate::sql::roles::{self, encrypt_password};
use rxc_common::sql::error::Result;
use rxc_common::sql::parser::Statement;

impl Session {
    /// Runs `stmt` if it is role DDL; `None` for any other statement.
    pub(super) async fn role_ddl(&mut self, stmt: &Statement) -> Option<Result<StatementResult>> {
        if !matches!(
            stmt,
            Statement::CreateRole { .. } | Statement::AlterRole { .. } | Statement::DropRole { .. }
        ) {
            return None;
        }
        let mut stmt = stmt.clone();
        encrypt_password(&mut stmt);
        let tag = stmt.command_name();
        let result = match self.actor() {
            Ok(actor) => {
                let session_user = self.user.clone();
                let node_roles = self.node.roles.clone();
                self.on_blocking_thread(true, move |_, txn, _| match &stmt {
                    Statement::CreateRole { name, options } => {
                        roles::create(&node_roles, txn, &actor, name, options)
                    }
                    Statement::AlterRole { name, change } => {
                        roles::alter(&node_roles, txn, &actor, &session_user, name, change)
                    }
                    Statement::DropRole { names, if_exists } => {
                        roles::drop(&node_roles, txn, &actor, &session_user, names, *if_exists)
                    }
                    _ => Ok(()),
                })
                .await
            }
            Err(e) => Err(e),
        };
        let result = result.map(|()| StatementResult::Command(tag.to_string()));
        Some(self.end_statement(result).await)
    }
}
