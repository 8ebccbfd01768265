//! Roles: the bootstrap superuser `postgres`, the login roles of the `[auth]` configuration,
//! and the roles `CREATE ROLE` makes, stored as rows of a system table in the MVCC layer like
//! the table catalog — so role DDL is transactional (a role created in a block that rolls
//! back never existed, two sessions creating one name conflict like two inserts of one key)
//! and goes through two-phase commit with the rest of a coordinator's DDL.
//!
//! ```text
//!   table 3 (rxc_roles)   pk: [name]  →  postcard(Role)
//! ```
//!
//! A stored row is a role's whole state and wins over a built-in role of the same name
//! (`ALTER ROLE postgres PASSWORD ...` stores `postgres`'s row). [`Roles`] keeps the newest
//! committed roles in memory for authentication and privilege checks, reloaded whenever a
//! transaction that wrote the table commits here.

use super::catalog::storage_error;
use super::session::latest_snapshot;
use super::table::mvcc_error;
use crate::storage::index::NoIndexes;
use crate::storage::keycode::Value as KeyValue;
use crate::storage::locks::RowLockMode;
use crate::storage::mvcc::{Mvcc, MvccError, Transaction};
use rxc_common::auth::SUPERUSER;
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::exec::Row;
use rxc_common::sql::parser::Statement;
use rxc_common::sql::roles::{RoleChange, RoleOptions};
use rxc_common::sql::{DataType, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The table id of the roles.
pub const ROLES_TABLE_ID: u64 = 3;

/// A role and its attributes, as `pg_authid` has them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub superuser: bool,
    pub inherit: bool,
    pub createrole: bool,
    pub createdb: bool,
    pub login: bool,
    pub replication: bool,
    pub bypassrls: bool,
    /// -1: no limit.
    pub connection_limit: i32,
    /// A SCRAM-SHA-256 verifier (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`).
    pub password: Option<String>,
    /// When the password stops being valid (microseconds since the epoch).
    pub valid_until: Option<i64>,
}

impl Role {
    /// A role with PostgreSQL's defaults: INHERIT, nothing else.
    fn new(name: &str) -> Role {
        Role {
            name: name.to_string(),
            superuser: false,
            inherit: true,
            createrole: false,
            createdb: false,
            login: false,
            replication: false,
            bypassrls: false,
            connection_limit: -1,
            password: None,
            valid_until: None,
        }
    }

    /// The bootstrap superuser.
    fn bootstrap() -> Role {
        Role {
            superuser: true,
            createrole: true,
            createdb: true,
            login: true,
            replication: true,
            bypassrls: true,
            ..Role::new(SUPERUSER)
        }
    }

    /// A login role of the `[auth]` configuration (its password stays in the configuration).
    fn configured(name: &str) -> Role {
        Role {
            login: true,
            ..Role::new(name)
        }
    }

    /// Applies the options given (the password already a verifier, see
    /// [`encrypt_password`]).
    fn apply(&mut self, options: &RoleOptions) -> Result<()> {
        let flags = [
            (&mut self.superuser, options.superuser),
            (&mut self.createdb, options.createdb),
            (&mut self.createrole, options.createrole),
            (&mut self.inherit, options.inherit),
            (&mut self.login, options.login),
            (&mut self.replication, options.replication),
            (&mut self.bypassrls, options.bypassrls),
        ];
        for (slot, value) in flags {
            if let Some(v) = value {
                *slot = v;
            }
        }
        if let Some(n) = options.connection_limit {
            self.connection_limit =
                i32::try_from(n).ok().filter(|n| *n >= -1).ok_or_else(|| {
                    SqlError::new(
                        sqlstate::INVALID_PARAMETER_VALUE,
                        format!("invalid connection limit: {n}"),
                    )
                })?;
        }
        if let Some(password) = &options.password {
            self.password = password.clone().filter(|p| !p.is_empty());
        }
        if let Some(until) = &options.valid_until {
            match Value::Text(until.clone()).cast(&DataType::TimestampTz)? {
                Value::TimestampTz(t) => self.valid_until = Some(t.timestamp_micros()),
                _ => return Err(SqlError::internal("VALID UNTIL is not a timestamp")),
            }
        }
        Ok(())
    }
}

/// A role statement's cleartext password as the SCRAM-SHA-256 verifier stored for it (a
/// verifier stays as it is, as PostgreSQL takes one; an empty password, which clears it, too).
pub fn encrypt_password(stmt: &mut Statement) {
    let (Statement::CreateRole { options, .. }
    | Statement::AlterRole {
        change: RoleChange::Options(options),
        ..
    }) = stmt
    else {
        return;
    };
    if let Some(Some(p)) = &options.password {
        if !p.is_empty() && !p.starts_with("SCRAM-SHA-256$") {
            options.password = Some(Some(crate::auth::scram_verifier(p)));
        }
    }
}

fn key(name: &str) -> Vec<KeyValue> {
    vec![KeyValue::Text(name.to_string())]
}

fn decode(bytes: &[u8]) -> Result<Role> {
    postcard::from_bytes(bytes).map_err(|e| storage_error(format!("bad role entry: {e}")))
}

/// The roles of a node: the built-in ones, and the newest committed state of the stored ones.
#[derive(Debug)]
pub struct Roles {
    builtin: BTreeMap<String, Role>,
    committed: RwLock<Arc<BTreeMap<String, Role>>>,
}

impl Default for Roles {
    fn default() -> Roles {
        Roles::new(&[])
    }
}

impl Roles {
    /// `postgres` and the configured login roles `configured`.
    pub fn new(configured: &[String]) -> Roles {
        let mut builtin = BTreeMap::new();
        for name in configured {
            builtin.insert(name.clone(), Role::configured(name));
        }
        builtin.insert(SUPERUSER.to_string(), Role::bootstrap());
        Roles {
            committed: RwLock::new(Arc::new(builtin.clone())),
            builtin,
        }
    }

    /// Reads the stored roles as the latest local commits left them.
    pub fn load(&self, mvcc: &Mvcc) -> Result<()> {
        let txn = mvcc.read_only(latest_snapshot());
        let roles = self.visible(&txn)?;
        *self.committed.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(roles);
        Ok(())
    }

    /// The role called `name` as committed, if there is one.
    pub fn get(&self, name: &str) -> Option<Role> {
        self.committed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Whether a role called `name` comes from the configuration (or is `postgres`).
    fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains_key(name)
    }

    /// Every role as `txn` sees them: the built-in ones, then the stored rows over them.
    pub fn visible(&self, txn: &Transaction) -> Result<BTreeMap<String, Role>> {
        let mut roles = self.builtin.clone();
        for (_, bytes) in txn.scan(ROLES_TABLE_ID).map_err(mvcc_error)? {
            let role = decode(&bytes)?;
            roles.insert(role.name.clone(), role);
        }
        Ok(roles)
    }

    /// The role called `name` as `txn` sees it, its row locked FOR UPDATE (so DDL on one role
    /// runs one transaction at a time); whether it is stored (else built in).
    fn lock(&self, txn: &mut Transaction, name: &str) -> Result<Option<(Role, bool)>> {
        let row = txn
            .lock_row(ROLES_TABLE_ID, &key(name), RowLockMode::Update)
            .map_err(mvcc_error)?;
        Ok(match row {
            Some(bytes) => Some((decode(&bytes)?, true)),
            None => self.builtin.get(name).map(|r| (r.clone(), false)),
        })
    }

    /// `pg_roles` (with `pg_user`, [`user_rows`]) as `txn` sees it.
    pub fn rows(&self, txn: &Transaction) -> Result<Vec<Row>> {
        Ok(self
            .visible(txn)?
            .into_values()
            .enumerate()
            .map(|(i, r)| {
                vec![
                    Value::Text(r.name.clone()),
                    Value::Bool(r.superuser),
                    Value::Bool(r.inherit),
                    Value::Bool(r.createrole),
                    Value::Bool(r.createdb),
                    Value::Bool(r.login),
                    Value::Bool(r.replication),
                    Value::Int4(r.connection_limit),
                    Value::Text("********".into()),
                    valid_until(&r),
                    Value::Bool(r.bypassrls),
                    Value::Null,
                    Value::Int4(role_oid(&r, i)),
                ]
            })
            .collect())
    }

    /// `pg_user`: the roles that can log in.
    pub fn user_rows(&self, txn: &Transaction) -> Result<Vec<Row>> {
        Ok(self
            .visible(txn)?
            .into_values()
            .enumerate()
            .filter(|(_, r)| r.login)
            .map(|(i, r)| {
                vec![
                    Value::Text(r.name.clone()),
                    Value::Int4(role_oid(&r, i)),
                    Value::Bool(r.createdb),
                    Value::Bool(r.superuser),
                    Value::Bool(r.replication),
                    Value::Bool(r.bypassrls),
                    Value::Text("********".into()),
                    valid_until(&r),
                    Value::Null,
                ]
            })
            .collect())
    }
}

fn valid_until(role: &Role) -> Value {
    role.valid_until
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map_or(Value::Null, Value::TimestampTz)
}

/// A role's oid as the views show it: 10 for the bootstrap superuser (as PostgreSQL's), else
/// a number past the reserved ones, by name order.
fn role_oid(role: &Role, position: usize) -> i32 {
    if role.name == SUPERUSER {
        10
    } else {
        16384 + position as i32
    }
}

fn denied(message: impl Into<String>) -> SqlError {
    SqlError::new(sqlstate::INSUFFICIENT_PRIVILEGE, message)
}

fn no_role(name: &str) -> SqlError {
    SqlError::new(
        sqlstate::UNDEFINED_OBJECT,
        format!("role \"{name}\" does not exist"),
    )
}

/// Refuses a name PostgreSQL reserves (42939).
fn check_name(name: &str) -> Result<()> {
    let reserved = |detail: Option<&str>| {
        let e = SqlError::new(
            sqlstate::RESERVED_NAME,
            format!("role name \"{name}\" is reserved"),
        );
        match detail {
            Some(d) => e.with_detail(d),
            None => e,
        }
    };
    if name.starts_with("pg_") {
        return Err(reserved(Some(
            "Role names starting with \"pg_\" are reserved.",
        )));
    }
    if matches!(
        name,
        "public" | "none" | "current_user" | "session_user" | "current_role"
    ) {
        return Err(reserved(None));
    }
    Ok(())
}

/// Options only a superuser may give or change, as PostgreSQL checks them.
fn check_superuser_options(actor: &Role, options: &RoleOptions, verb: &str) -> Result<()> {
    if actor.superuser {
        return Ok(());
    }
    if options.superuser.is_some() {
        return Err(denied(format!("must be superuser to {verb} superusers")));
    }
    if options.replication.is_some() {
        return Err(denied(format!(
            "must be superuser to {verb} replication users"
        )));
    }
    if options.bypassrls.is_some() {
        return Err(denied(format!(
            "must be superuser to {verb} bypassrls users"
        )));
    }
    Ok(())
}

fn refuse_membership(options: &RoleOptions) -> Result<()> {
    if options.membership {
        return Err(SqlError::unsupported(
            "role membership (IN ROLE, ROLE, ADMIN, USER) is not supported yet",
        ));
    }
    Ok(())
}

fn store(txn: &mut Transaction, role: &Role, stored: bool) -> Result<()> {
    let bytes = postcard::to_allocvec(role).map_err(storage_error)?;
    let result = if stored {
        txn.update(ROLES_TABLE_ID, &key(&role.name), bytes, &NoIndexes)
            .map(|_| ())
    } else {
        txn.insert(ROLES_TABLE_ID, &key(&role.name), bytes, &NoIndexes)
    };
    match result {
        Ok(()) => Ok(()),
        Err(MvccError::UniqueViolation { .. }) => Err(SqlError::new(
            sqlstate::DUPLICATE_OBJECT,
            format!("role \"{}\" already exists", role.name),
        )),
        Err(e) => Err(mvcc_error(e)),
    }
}

/// `CREATE ROLE` by `actor` (the session's role).
pub fn create(
    roles: &Roles,
    txn: &mut Transaction,
    actor: &Role,
    name: &str,
    options: &RoleOptions,
) -> Result<()> {
    check_name(name)?;
    if !actor.superuser && !actor.createrole {
        return Err(denied("permission denied to create role"));
    }
    check_superuser_options(actor, options, "create")?;
    refuse_membership(options)?;
    if roles.lock(txn, name)?.is_some() {
        return Err(SqlError::new(
            sqlstate::DUPLICATE_OBJECT,
            format!("role \"{name}\" already exists"),
        ));
    }
    let mut role = Role::new(name);
    role.apply(options)?;
    store(txn, &role, false)
}

/// `ALTER ROLE` by `actor`, in a session logged in as `session_user`.
pub fn alter(
    roles: &Roles,
    txn: &mut Transaction,
    actor: &Role,
    session_user: &str,
    name: &str,
    change: &RoleChange,
) -> Result<()> {
    let (mut role, stored) = roles.lock(txn, name)?.ok_or_else(|| no_role(name))?;
    match change {
        RoleChange::Settings => Err(SqlError::unsupported(
            "per-role settings (ALTER ROLE ... SET) are not supported yet",
        )),
        RoleChange::Rename(to) => {
            if name == session_user {
                return Err(SqlError::unsupported("session user cannot be renamed"));
            }
            if roles.is_builtin(name) {
                return Err(SqlError::unsupported(format!(
                    "role \"{name}\" is built in (the bootstrap superuser or a role of the \
                     [auth] configuration) and cannot be renamed"
                )));
            }
            check_name(to)?;
            if role.superuser && !actor.superuser {
                return Err(denied("must be superuser to rename superusers"));
            }
            if !actor.superuser && !actor.createrole {
                return Err(denied("permission denied to rename role"));
            }
            if roles.lock(txn, to)?.is_some() {
                return Err(SqlError::new(
                    sqlstate::DUPLICATE_OBJECT,
                    format!("role \"{to}\" already exists"),
                ));
            }
            txn.delete(ROLES_TABLE_ID, &key(name)).map_err(mvcc_error)?;
            // A renamed role keeps its SCRAM verifier: unlike MD5, it does not salt with the name.
            role.name = to.clone();
            store(txn, &role, false)
        }
        RoleChange::Options(options) => {
            refuse_membership(options)?;
            let only_password = RoleOptions {
                password: options.password.clone(),
                ..RoleOptions::default()
            } == *options;
            let own_password = only_password && actor.name == name;
            if !actor.superuser && !own_password {
                if role.superuser {
                    return Err(denied(
                        "must be superuser to alter superuser roles or change superuser attribute",
                    ));
                }
                check_superuser_options(actor, options, "alter")?;
                if !actor.createrole {
                    return Err(denied("permission denied"));
                }
            }
            if name == SUPERUSER && options.superuser == Some(false) {
                return Err(denied("permission denied to alter role")
                    .with_detail("The bootstrap user must have the SUPERUSER attribute."));
            }
            role.apply(options)?;
            store(txn, &role, stored)
        }
    }
}

/// `DROP ROLE` by `actor`, in a session logged in as `session_user`.
pub fn drop(
    roles: &Roles,
    txn: &mut Transaction,
    actor: &Role,
    session_user: &str,
    names: &[String],
    if_exists: bool,
) -> Result<()> {
    if !actor.superuser && !actor.createrole {
        return Err(denied("permission denied to drop role"));
    }
    for name in names {
        let Some((role, stored)) = roles.lock(txn, name)? else {
            if if_exists {
                continue;
            }
            return Err(no_role(name));
        };
        if name == &actor.name {
            return Err(SqlError::new(
                sqlstate::OBJECT_IN_USE,
                "current user cannot be dropped",
            ));
        }
        if name == session_user {
            return Err(SqlError::new(
                sqlstate::OBJECT_IN_USE,
                "session user cannot be dropped",
            ));
        }
        if roles.is_builtin(name) {
            return Err(SqlError::new(
                sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
                format!("cannot drop role {name} because it is required by the database system"),
            )
            .with_detail("It is the bootstrap superuser or a role of the [auth] configuration."));
        }
        if role.superuser && !actor.superuser {
            return Err(denied("must be superuser to drop superusers"));
        }
        if stored {
            txn.delete(ROLES_TABLE_ID, &key(name)).map_err(mvcc_error)?;
        }
    }
    Ok(())
}
