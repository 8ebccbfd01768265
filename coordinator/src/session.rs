//! A client's session on the coordinator.
//!
//! # Transactions
//!
//! The coordinator owns each transaction's context: a snapshot from the GTM for each
//! statement (READ COMMITTED) or for the whole transaction (REPEATABLE READ), and a GXID at
//! the first write. Every participant gets the context in the same round trip as its
//! statement: a datanode as `BEGIN ISOLATION LEVEL ...; SET TRANSACTION CONTEXT (...);
//! <statement>` in one simple Query (the `BEGIN` only the first time, the context only when
//! it changed), the coordinator's own storage (the local participant: catalog changes of DDL,
//! system views) through its local datanode session the same way.
//!
//! A READ COMMITTED statement that reaches one datanode alone takes no GTM snapshot here: it
//! ships with `SNAPSHOT LATEST`, and the datanode decides with the newest snapshot it has,
//! fetching one only when a decision needs it (a point read of a row no recent transaction
//! wrote needs none). A snapshot is shared only where several nodes' rows must agree.
//!
//! Commit: participants that only read are committed (nothing to lose); if one participant
//! wrote, it commits alone (one-phase); if several wrote, two-phase commit — the GID
//! (`<coordinator>:<gxid>`) and participants registered at the GTM, `PREPARE TRANSACTION`
//! on each, the decision logged at the GTM, `COMMIT PREPARED` on each. Then the commit is
//! reported to the GTM: only from then on does any snapshot see the transaction, on every
//! node at once. A participant that fails to prepare rolls the whole transaction back
//! everywhere.
//!
//! # Statements
//!
//! - transaction control, node DDL (`CREATE/ALTER/DROP NODE`, node groups, local to this
//!   coordinator), `pgxc_pool_reload()` / `pgxc_pool_check()`, `CLEAN CONNECTION`,
//!   `EXECUTE DIRECT` are the coordinator's;
//! - `CREATE TABLE` records the table's distribution and creates it on its datanodes and
//!   locally; other table DDL runs on the table's datanodes and locally;
//! - a query or DML on one distributed table is bound locally (names, types, result columns),
//!   then shipped to the nodes that can hold its rows ([`crate::route`]): whole to one node;
//!   to several, rows are concatenated (queries without aggregates, grouping, ordering,
//!   DISTINCT, LIMIT or set operations) and counts summed; INSERT rows are routed one by one;
//! - everything else (no distributed table: system views, SET/SHOW, `SELECT 1`) runs locally.

use crate::catalog::{ClusterCatalog, Contents};
use crate::pool::{Pool, Pooled};
use crate::remote::{self, context_sql, with_params, Answer, Template};
use crate::{gather, pushdown, route};
use async_trait::async_trait;
use rxc_common::cluster::{check_key_type, Distribution, Locator, NodeDef, NodeGroup, NodeKind};
use rxc_common::gtm::client::GtmClient;
use rxc_common::gtm::proto::{Request as GtmRequest, Response as GtmResponse, SessionId};
use rxc_common::sql::binder::object_name;
use rxc_common::sql::catalog::{Column, Table};
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::parser::{
    self, Distribute, GenericOption, NodeTarget, OptionValue, Statement,
};
use rxc_common::sql::plan::OutputColumn;
use rxc_common::sql::roles::role_sql;
use rxc_common::sql::{DataType, Value};
use rxc_common::txn::{Gxid, Isolation, Snapshot};
use rxc_datanode::server::{Backend, Cancel};
use rxc_datanode::sql::plan_cache::Prepared;
use rxc_datanode::sql::roles::encrypt_password;
use rxc_datanode::sql::session::{
    dml_result, gtm_error, is_dml, isolation_from_modes, Node, Session, StatementResult,
};
use sqlparser::ast;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What every session of a coordinator shares.
pub struct Cluster {
    /// The coordinator's name.
    pub name: String,
    /// The coordinator's own storage, catalog and GTM client.
    pub local: Arc<Node>,
    /// Nodes, groups, distributions.
    pub catalog: ClusterCatalog,
    /// Connections to the datanodes.
    pub pool: Pool,
    /// The next node of ROUNDROBIN inserts.
    round_robin: AtomicUsize,
    /// How a CREATE TABLE without DISTRIBUTE BY distributes.
    default_distribution: DefaultDistribution,
    /// GIDs of two-phase commits this coordinator's sessions are running: the in-doubt
    /// resolver leaves them alone ([`crate::resolver`]).
    pub(crate) in_flight: Mutex<HashSet<String>>,
    /// Distributions changed by prepared transactions of other coordinators, by GID: settled
    /// when the transaction commits or rolls back here.
    pending_classes: Mutex<HashMap<String, ClassChanges>>,
    /// Cancel keys of the datanode connections each session's transaction holds, by the
    /// session's backend pid: a cancel request for the session is forwarded to them.
    working: Mutex<HashMap<i32, Vec<tokio_postgres::CancelToken>>>,
}

/// How a table created without DISTRIBUTE BY is distributed (the coordinator's
/// `default_distribution` setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultDistribution {
    /// HASH on the first primary-key column that can be a key, else on the first column
    /// that can, else ROUNDROBIN (Postgres-XC's default).
    #[default]
    Hash,
    /// REPLICATION: every row on every node.
    Replication,
    /// ROUNDROBIN: rows spread in turn.
    RoundRobin,
}

impl Cluster {
    /// The cluster state of coordinator `name` over its local node.
    pub fn new(
        name: String,
        local: Arc<Node>,
        default_distribution: DefaultDistribution,
    ) -> Result<Cluster> {
        let catalog = ClusterCatalog::open(local.mvcc.engine().clone())?;
        let pool = Pool::new(&name);
        let cluster = Cluster {
            name,
            local,
            catalog,
            pool,
            round_robin: AtomicUsize::new(0),
            default_distribution,
            in_flight: Mutex::new(HashSet::new()),
            pending_classes: Mutex::new(HashMap::new()),
            working: Mutex::new(HashMap::new()),
        };
        cluster.forget_stale_classes()?;
        // The pool starts with the catalog's nodes, as after a pgxc_pool_reload().
        cluster
            .pool
            .reload(&cluster.pooled_nodes(&cluster.catalog.snapshot()));
        Ok(cluster)
    }

    /// The nodes the pool connects to: every registered node but this coordinator.
    fn pooled_nodes(&self, contents: &Contents) -> Vec<NodeDef> {
        contents
            .nodes
            .values()
            .filter(|n| n.name != self.name)
            .cloned()
            .collect()
    }

    pub(crate) fn gtm(&self) -> &GtmClient {
        &self.local.gtm
    }

    /// Removes distributions that name no table: left by a CREATE TABLE that rolled back, or
    /// by a DROP TABLE that committed while this coordinator was down.
    fn forget_stale_classes(&self) -> Result<()> {
        let session = Session::new(self.local.clone());
        for table in self.catalog.snapshot().classes.keys() {
            if session.table(table)?.is_none() {
                self.catalog.put_class(table, None)?;
            }
        }
        Ok(())
    }

    /// The node of `dist` (ROUNDROBIN) the next row goes to.
    fn next_round_robin(&self, dist: &Distribution) -> String {
        let turn = self.round_robin.fetch_add(1, Ordering::Relaxed);
        dist.nodes[turn % dist.nodes.len()].clone()
    }

    /// The other coordinators: every DDL runs on them too.
    fn peers(&self, contents: &Contents) -> Vec<String> {
        contents
            .nodes
            .values()
            .filter(|n| n.kind == NodeKind::Coordinator && n.name != self.name)
            .map(|n| n.name.clone())
            .collect()
    }

    /// A session of this coordinator's own storage, as a coordinator's connection to a
    /// datanode (it takes its transaction context from the statements).
    pub(crate) fn local_session(&self) -> Session {
        let mut local = Session::new(self.local.clone());
        let _ = local.apply_startup_options("-c rxc.remotetype=coordinator");
        local
    }
}

/// The distributions a transaction recorded or made obsolete. A table's distribution is
/// written when its CREATE TABLE runs (before the table commits) and must go again if the
/// transaction rolls back; a dropped table's goes once the DROP committed.
#[derive(Default)]
struct ClassChanges {
    created: Vec<String>,
    dropped: Vec<String>,
}

impl ClassChanges {
    fn is_empty(&self) -> bool {
        self.created.is_empty() && self.dropped.is_empty()
    }

    /// Settles the changes once the transaction ended (`committed` or not).
    fn settle(self, catalog: &ClusterCatalog, committed: bool) -> Result<()> {
        let obsolete = if committed {
            self.dropped
        } else {
            self.created
        };
        for table in obsolete {
            catalog.put_class(&table, None)?;
        }
        Ok(())
    }
}

/// Marks a GID as being committed by this coordinator while it lives.
struct InFlight<'a> {
    cluster: &'a Cluster,
    gid: String,
}

impl<'a> InFlight<'a> {
    fn new(cluster: &'a Cluster, gid: &str) -> InFlight<'a> {
        lock(&cluster.in_flight).insert(gid.to_string());
        InFlight {
            cluster,
            gid: gid.to_string(),
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        lock(&self.cluster.in_flight).remove(&self.gid);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cluster-wide lock every DDL transaction holds (at the GTM), so DDL of different
/// coordinators never interleaves.
const DDL_LOCK: &str = "ddl";
/// How long the DDL lock is leased per DDL statement (a coordinator that dies holding it
/// loses it then).
const DDL_LEASE_MS: u64 = 60_000;
/// How long a DDL statement waits for the DDL lock when `lock_timeout` is 0.
const DDL_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl Cancel for Cluster {
    /// Cancels the session's statement here and on every datanode its transaction is using
    /// (each gets a cancel request of its own, as a client would send it).
    fn cancel(&self, pid: i32, secret: &[u8]) -> bool {
        if !self.local.cancel(pid, secret) {
            return false;
        }
        let tokens = lock(&self.working).get(&pid).cloned().unwrap_or_default();
        for token in tokens {
            self.pool.spawn(async move {
                if let Err(e) = token.cancel_query(tokio_postgres::NoTls).await {
                    tracing::debug!(error = %e, "forwarding a cancel request failed");
                }
            });
        }
        true
    }
}

/// A participant other than the coordinator itself: a datanode connection in a transaction.
struct RemotePart {
    conn: Pooled,
    /// The context it was last given (`SET TRANSACTION CONTEXT` text).
    context: String,
    wrote: bool,
    /// Committed already, with the statement (a one-node implicit transaction).
    ended: bool,
}

/// The local participant's state in a transaction.
#[derive(Default)]
struct LocalPart {
    context: String,
    wrote: bool,
}

struct Txn {
    explicit: bool,
    failed: bool,
    isolation: Isolation,
    gxid: Option<Gxid>,
    /// The current statement's snapshot (the transaction's under REPEATABLE READ).
    snapshot: Option<Snapshot>,
    /// The current statement reaches one datanode and leaves its snapshot to it
    /// (`SNAPSHOT LATEST`; READ COMMITTED only).
    latest: bool,
    local: Option<LocalPart>,
    remotes: BTreeMap<String, RemotePart>,
    /// Distributions it recorded or dropped.
    classes: ClassChanges,
    /// Whether it holds the cluster-wide DDL lock.
    ddl_locked: bool,
}

impl Txn {
    fn new(explicit: bool, isolation: Isolation) -> Txn {
        Txn {
            explicit,
            failed: false,
            isolation,
            gxid: None,
            snapshot: None,
            latest: false,
            local: None,
            remotes: BTreeMap::new(),
            classes: ClassChanges::default(),
            ddl_locked: false,
        }
    }
}

/// How long a session must be quiet before the snapshot of its last read-only transaction is
/// released at the GTM (see [`LazyRelease`]).
const RELEASE_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

/// The snapshot a read-only transaction held, released lazily. The GTM holds one snapshot
/// per session and a session's next snapshot replaces its last one, so a session that runs
/// statement after statement never needs a release round trip of its own: a release task
/// sends it once the session has taken no snapshot for [`RELEASE_DELAY`] and none is in use
/// (so an idle session does not hold back `global_xmin`; closing the session releases it too).
#[derive(Default)]
struct LazyRelease {
    /// Bumped whenever the session takes a snapshot or ends a transaction.
    moves: AtomicU64,
    /// A statement of the session holds its snapshot now.
    in_use: AtomicBool,
    /// A release task is waiting.
    armed: AtomicBool,
}

/// One client's session on the coordinator.
pub struct CoordSession {
    cluster: Arc<Cluster>,
    /// The coordinator's own storage, as a coordinator's connection to a datanode.
    local: Session,
    gtm_session: SessionId,
    /// Its read-only transactions' snapshots, released lazily.
    release: Arc<LazyRelease>,
    txn: Option<Txn>,
    /// How deep in statements the coordinator runs for a client's statement (an INSERT's
    /// source query): only the client's own statement may end its transaction.
    nesting: u32,
    /// A session of another coordinator running its DDL here (`rxc.remotetype=coordinator`):
    /// statements run on the local storage as on a datanode.
    peer: bool,
    /// Peer sessions: distributions the current transaction recorded or dropped.
    peer_classes: ClassChanges,
    /// A COPY FROM STDIN into a distributed table in progress.
    copy_in: Option<crate::copy::CopyIn>,
    /// While an EXPLAIN runs its statement: the plan's lines so far (nothing is shipped; each
    /// shipment is recorded instead and answered with no rows).
    explain: Option<Vec<String>>,
    /// The backend pid of the connection's cancel key, once registered.
    pid: Option<i32>,
    /// What the session found out about its client's prepared statements, by tree: each is
    /// looked at once, not at every execution (a simple query's tree is new every time: it
    /// is not kept).
    facts: HashMap<usize, TreeFacts>,
}

/// How many statement trees' facts a session keeps before it forgets them all.
const MAX_TREES: usize = 256;

/// What a statement tree is, found when first asked (see [`CoordSession::facts`]).
struct TreeFacts {
    /// The tree, kept so that its address is not reused while it is a key.
    _tree: Arc<ast::Statement>,
    /// Its shipped text with parameter slots (`None` inside: not templatable).
    template: Option<Option<Template>>,
    /// [`referenced_tables`].
    tables: Option<Result<Arc<[String]>>>,
    /// [`has_subquery`].
    subquery: Option<bool>,
}

/// Runs `sql_for(node)` on each participant, concurrently; each node's result.
async fn on_each<'a>(
    parts: impl Iterator<Item = (&'a String, &'a RemotePart)>,
    sql_for: impl Fn(&str) -> &'a str,
) -> Vec<(&'a str, Result<Vec<Answer>>)> {
    let runs = parts.map(|(node, part)| {
        let sql = sql_for(node);
        async move {
            (
                node.as_str(),
                remote::run(&part.conn.client, node, sql).await,
            )
        }
    });
    futures::future::join_all(runs).await
}

/// The id of the partial rows' relation in a combining query (no table has it).
const PARTIAL_ID: u64 = u64::MAX;

fn isolation_sql(isolation: Isolation) -> &'static str {
    match isolation {
        Isolation::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
        Isolation::RepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
    }
}

/// Parses SQL the coordinator generated itself.
fn own_statement(sql: &str) -> Result<Statement> {
    parser::parse_single(sql)?.ok_or_else(|| SqlError::internal("empty generated statement"))
}

fn command(tag: &str) -> StatementResult {
    StatementResult::Command(tag.to_string())
}

/// A boolean option of node DDL (`PRIMARY`, `PREFERRED = false`).
fn bool_option(o: &GenericOption) -> Result<bool> {
    match &o.value {
        OptionValue::None => Ok(true),
        OptionValue::Text(t) => match t.to_lowercase().as_str() {
            "true" | "on" | "1" | "yes" => Ok(true),
            "false" | "off" | "0" | "no" => Ok(false),
            _ => Err(SqlError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("{} requires a Boolean value", o.name.to_uppercase()),
            )),
        },
        _ => Err(SqlError::syntax(format!(
            "{} requires a Boolean value",
            o.name.to_uppercase()
        ))),
    }
}

fn text_option(o: &GenericOption) -> Result<String> {
    match &o.value {
        OptionValue::Text(t) => Ok(t.clone()),
        _ => Err(SqlError::syntax(format!(
            "{} requires a value",
            o.name.to_uppercase()
        ))),
    }
}

/// Applies `CREATE/ALTER NODE` options to `node`.
fn apply_node_options(node: &mut NodeDef, options: &[GenericOption], create: bool) -> Result<()> {
    let mut kind = None;
    for o in options {
        match o.name.as_str() {
            "type" => {
                kind = Some(match text_option(o)?.to_lowercase().as_str() {
                    "datanode" => NodeKind::Datanode,
                    "coordinator" => NodeKind::Coordinator,
                    other => {
                        return Err(SqlError::new(
                            sqlstate::INVALID_PARAMETER_VALUE,
                            format!("type value is incorrect, specify 'coordinator or 'datanode' (got '{other}')"),
                        ))
                    }
                })
            }
            "host" => node.host = text_option(o)?,
            "port" => {
                node.port = text_option(o)?
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| {
                        SqlError::new(
                            sqlstate::INVALID_PARAMETER_VALUE,
                            "port value is out of range",
                        )
                    })?
            }
            "primary" => node.primary = bool_option(o)?,
            "preferred" => node.preferred = bool_option(o)?,
            other => {
                return Err(SqlError::new(
                    sqlstate::SYNTAX_ERROR,
                    format!("incorrect option: {other}"),
                ))
            }
        }
    }
    match kind {
        Some(k) if create => node.kind = k,
        Some(k) if k != node.kind => {
            return Err(SqlError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("PGXC node {}: cannot alter the node type", node.name),
            ))
        }
        None if create => {
            return Err(SqlError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("PGXC node {}: Node type not specified", node.name),
            ))
        }
        _ => {}
    }
    if node.kind == NodeKind::Coordinator && (node.primary || node.preferred) {
        return Err(SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!(
                "PGXC node {}: cannot be a primary or preferred node, it is a coordinator",
                node.name
            ),
        ));
    }
    Ok(())
}

/// Whether a query needs the coordinator to combine the rows of several nodes (aggregates,
/// grouping, ordering, DISTINCT, LIMIT/OFFSET, set operations, window functions).
fn needs_combining(query: &ast::Query) -> bool {
    if query.order_by.is_some() || query.limit_clause.is_some() || query.fetch.is_some() {
        return true;
    }
    let ast::SetExpr::Select(select) = &*query.body else {
        return true;
    };
    if select.distinct.is_some()
        || select.having.is_some()
        || !matches!(&select.group_by, ast::GroupByExpr::Expressions(e, _) if e.is_empty())
    {
        return true;
    }
    // Any function call in the projection may be an aggregate or a window function.
    select.projection.iter().any(|item| {
        let mut found = false;
        let _ = ast::visit_expressions(item, |e| {
            if matches!(e, ast::Expr::Function(_)) {
                found = true;
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        });
        found
    })
}

/// The names a statement's WITH clauses define (they are not tables).
fn cte_names(stmt: &ast::Statement) -> HashSet<String> {
    struct Ctes(HashSet<String>);
    impl ast::Visitor for Ctes {
        type Break = ();
        fn pre_visit_query(&mut self, query: &ast::Query) -> std::ops::ControlFlow<()> {
            if let Some(with) = &query.with {
                for cte in &with.cte_tables {
                    self.0
                        .insert(rxc_common::sql::binder::ident_name(&cte.alias.name));
                }
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut ctes = Ctes(HashSet::new());
    let _ = ast::Visit::visit(stmt, &mut ctes);
    ctes.0
}

/// Whether a statement reads more than its one table's own rows in one place: a subquery,
/// a CTE or a derived table (each node alone could not answer it for a distributed table).
fn has_subquery(stmt: &ast::Statement) -> bool {
    let mut found = matches!(stmt, ast::Statement::Query(q) if q.with.is_some());
    let _ = ast::visit_expressions(stmt, |e| {
        if matches!(
            e,
            ast::Expr::Subquery(_) | ast::Expr::Exists { .. } | ast::Expr::InSubquery { .. }
        ) {
            found = true;
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    struct Derived(bool);
    impl ast::Visitor for Derived {
        type Break = ();
        fn pre_visit_table_factor(&mut self, f: &ast::TableFactor) -> std::ops::ControlFlow<()> {
            if matches!(f, ast::TableFactor::Derived { .. }) {
                self.0 = true;
            }
            std::ops::ControlFlow::Continue(())
        }
        fn pre_visit_query(&mut self, q: &ast::Query) -> std::ops::ControlFlow<()> {
            if q.with.is_some() {
                self.0 = true;
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut derived = Derived(false);
    let _ = ast::Visit::visit(stmt, &mut derived);
    found || derived.0
}

/// The tables a statement names (FROM items, targets, subqueries), without duplicates and
/// without the names its WITH clauses define.
fn referenced_tables(stmt: &ast::Statement) -> Result<Vec<String>> {
    let ctes = cte_names(stmt);
    let mut names = Vec::new();
    let mut error = None;
    let _ = ast::visit_relations(stmt, |name| {
        match object_name(name) {
            Ok(n) => {
                if !names.contains(&n) && !ctes.contains(&n) {
                    names.push(n)
                }
            }
            Err(e) => error = Some(e),
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    match error {
        Some(e) => Err(e),
        None => Ok(names),
    }
}

/// Whether `SELECT f()` calls exactly the function `name` (no FROM, one column).
fn is_function_call(stmt: &ast::Statement, name: &str) -> bool {
    let ast::Statement::Query(q) = stmt else {
        return false;
    };
    let ast::SetExpr::Select(s) = &*q.body else {
        return false;
    };
    if !s.from.is_empty() || s.projection.len() != 1 {
        return false;
    }
    match &s.projection[0] {
        ast::SelectItem::UnnamedExpr(ast::Expr::Function(f))
        | ast::SelectItem::ExprWithAlias {
            expr: ast::Expr::Function(f),
            ..
        } => object_name(&f.name).is_ok_and(|n| n == name),
        _ => false,
    }
}

fn bool_column(name: &str) -> OutputColumn {
    OutputColumn {
        name: name.into(),
        data_type: DataType::Bool,
        table_id: None,
    }
}

fn bool_rows(column: &str, value: bool) -> StatementResult {
    StatementResult::Rows {
        columns: vec![bool_column(column)],
        rows: vec![vec![Value::Bool(value)]],
        tag: "SELECT".into(),
    }
}

impl CoordSession {
    /// A new session of coordinator `cluster`.
    pub fn new(cluster: Arc<Cluster>) -> CoordSession {
        // The local storage takes its context from this session, as a datanode from a
        // coordinator.
        let local = cluster.local_session();
        CoordSession {
            gtm_session: cluster.gtm().new_session(),
            release: Arc::default(),
            cluster,
            local,
            txn: None,
            nesting: 0,
            peer: false,
            peer_classes: ClassChanges::default(),
            copy_in: None,
            explain: None,
            pid: None,
            facts: HashMap::new(),
        }
    }

    fn in_block(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.explicit)
    }

    fn refuse_in_block(&self, what: &str) -> Result<()> {
        if self.in_block() {
            return Err(SqlError::new(
                sqlstate::ACTIVE_SQL_TRANSACTION,
                format!("{what} cannot run inside a transaction block"),
            ));
        }
        Ok(())
    }

    /// Opens the statement's transaction (an implicit one outside a block) and its context:
    /// a snapshot for the statement (READ COMMITTED) or the transaction, a GXID for a write.
    /// A READ COMMITTED statement that reaches `one_node` datanode alone leaves its snapshot
    /// to that node (`SNAPSHOT LATEST`): no GTM round trip but a write's GXID.
    async fn statement_context(&mut self, write: bool, one_node: bool) -> Result<()> {
        if self.txn.is_none() {
            let isolation = self.local.default_isolation()?;
            self.txn = Some(Txn::new(false, isolation));
        }
        let gtm = self.cluster.gtm().clone();
        let session = self.gtm_session;
        let txn = self
            .txn
            .as_mut()
            .ok_or_else(|| SqlError::internal("no txn"))?;
        txn.latest = one_node && txn.isolation == Isolation::ReadCommitted;
        if txn.latest {
            if write && txn.gxid.is_none() {
                let (gxid, _) = gtm.begin(session, txn.isolation).await.map_err(gtm_error)?;
                txn.gxid = Some(gxid);
            }
            return Ok(());
        }
        let fresh = txn.snapshot.is_none() || txn.isolation == Isolation::ReadCommitted;
        if fresh || (write && txn.gxid.is_none()) {
            self.release.in_use.store(true, Ordering::SeqCst);
            self.release.moves.fetch_add(1, Ordering::SeqCst);
        }
        if write && txn.gxid.is_none() {
            if fresh {
                let (gxid, _, snapshot) = gtm
                    .begin_with_snapshot(session, txn.isolation)
                    .await
                    .map_err(gtm_error)?;
                txn.gxid = Some(gxid);
                txn.snapshot = Some(snapshot);
            } else {
                let (gxid, _) = gtm.begin(session, txn.isolation).await.map_err(gtm_error)?;
                txn.gxid = Some(gxid);
            }
        } else if fresh {
            txn.snapshot = Some(gtm.snapshot(session).await.map_err(gtm_error)?);
        }
        Ok(())
    }

    fn context(&self) -> Result<(String, Isolation)> {
        let txn = self
            .txn
            .as_ref()
            .ok_or_else(|| SqlError::internal("no txn"))?;
        if txn.latest {
            return Ok((context_sql(txn.gxid, None), txn.isolation));
        }
        let snapshot = txn
            .snapshot
            .as_ref()
            .ok_or_else(|| SqlError::internal("no snapshot"))?;
        Ok((context_sql(txn.gxid, Some(snapshot)), txn.isolation))
    }

    /// Whether the current statement leaves its snapshot to its node: then its context goes
    /// with it even if unchanged (`SNAPSHOT LATEST` applies to one statement).
    fn snapshot_latest(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.latest)
    }

    /// Runs `sql` on datanode `node` in the transaction (after [`Self::statement_context`]);
    /// returns its answers (one per statement of `sql`).
    async fn ship(&mut self, node: &str, sql: &str, write: bool) -> Result<Vec<Answer>> {
        let mut answers = self
            .ship_all(&[(node.to_string(), sql.to_string())], write)
            .await?;
        answers
            .pop()
            .ok_or_else(|| SqlError::internal(format!("no answer from {node}")))
    }

    /// Runs each `(node, sql)` job in the transaction, the nodes concurrently (one job per
    /// node); returns each job's answers, in order. The first time a node takes part its
    /// statement is preceded by the transaction's BEGIN, and by the context whenever that
    /// changed (one round trip either way).
    async fn ship_all(
        &mut self,
        jobs: &[(String, String)],
        write: bool,
    ) -> Result<Vec<Vec<Answer>>> {
        if let Some(lines) = &mut self.explain {
            return Ok(explain_shipment(lines, jobs, write));
        }
        let (context, isolation) = self.context()?;
        let resend = self.snapshot_latest();
        let txn = self
            .txn
            .as_mut()
            .ok_or_else(|| SqlError::internal("no txn"))?;
        let mut fresh = Vec::new();
        for (node, _) in jobs {
            if !txn.remotes.contains_key(node) {
                let conn = self.cluster.pool.get(node).await?;
                if let Some(pid) = self.pid {
                    lock(&self.cluster.working)
                        .entry(pid)
                        .or_default()
                        .push(conn.client.cancel_token());
                }
                txn.remotes.insert(
                    node.clone(),
                    RemotePart {
                        conn,
                        context: String::new(),
                        wrote: false,
                        ended: false,
                    },
                );
                fresh.push(node.clone());
            }
        }
        let mut runs = Vec::new();
        let mut parts: BTreeMap<&String, &mut RemotePart> = txn.remotes.iter_mut().collect();
        for (node, sql) in jobs {
            let part = parts
                .remove(node)
                .ok_or_else(|| SqlError::internal(format!("{node} twice in one shipment")))?;
            let mut prefix = String::new();
            let mut skip = 0;
            if fresh.contains(node) {
                prefix.push_str(isolation_sql(isolation));
                prefix.push_str("; ");
                skip += 1;
            }
            if resend || part.context != context {
                prefix.push_str(&context);
                prefix.push_str("; ");
                skip += 1;
            }
            part.wrote |= write;
            let text = format!("{prefix}{sql}");
            let context = &context;
            runs.push(async move {
                let answers = remote::run(&part.conn.client, node, &text).await?;
                part.context = context.clone();
                Ok::<_, SqlError>(answers.into_iter().skip(skip).collect::<Vec<_>>())
            });
        }
        futures::future::join_all(runs).await.into_iter().collect()
    }

    /// Runs one shipped statement on `node` and returns its answer.
    async fn ship_one(&mut self, node: &str, sql: &str, write: bool) -> Result<Answer> {
        first_answer(self.ship(node, sql, write).await?)
    }

    /// Runs a statement on the local participant in the transaction (after
    /// [`Self::statement_context`]).
    async fn run_local(
        &mut self,
        stmt: &Statement,
        params: &[Value],
        prepared: Option<Prepared>,
        write: bool,
    ) -> Result<StatementResult> {
        let (context, isolation) = self.context()?;
        let resend = self.snapshot_latest();
        let txn = self
            .txn
            .as_mut()
            .ok_or_else(|| SqlError::internal("no txn"))?;
        if txn.local.is_none() {
            self.local
                .execute(&own_statement(isolation_sql(isolation))?, &[], None)
                .await?;
            txn.local = Some(LocalPart::default());
        }
        let part = txn
            .local
            .as_mut()
            .ok_or_else(|| SqlError::internal("no local participant"))?;
        if resend || part.context != context {
            self.local
                .execute(&own_statement(&context)?, &[], None)
                .await?;
            part.context = context;
        }
        part.wrote |= write;
        self.local.execute(stmt, params, prepared).await
    }

    /// Ends a statement of the session's transaction with its `result`: an implicit
    /// transaction commits when it succeeded; a failure fails the transaction (a block stays
    /// failed until ROLLBACK).
    async fn end_statement<T>(&mut self, result: Result<T>) -> Result<T> {
        let explicit = self.in_block();
        match result {
            Ok(r) => {
                if !explicit {
                    self.finish(true).await?;
                }
                Ok(r)
            }
            Err(e) => {
                if explicit {
                    self.fail_block().await;
                } else {
                    let _ = self.finish(false).await;
                }
                Err(e)
            }
        }
    }

    /// Ends the transaction on every participant: committed (one-phase with one writer,
    /// two-phase with several) or rolled back; then reported to the GTM.
    async fn finish(&mut self, commit: bool) -> Result<()> {
        let Some(mut txn) = self.txn.take() else {
            return Ok(());
        };
        let commit = commit && !txn.failed;
        let writers = txn.remotes.values().filter(|p| p.wrote).count()
            + usize::from(txn.local.as_ref().is_some_and(|l| l.wrote));
        let mut forget = None;
        let result = if !commit {
            self.end_all(&mut txn, "ROLLBACK").await;
            Ok(false)
        } else if writers <= 1 {
            self.commit_one_phase(&mut txn).await
        } else {
            self.commit_two_phase(&mut txn, &mut forget).await
        };
        if let Some(pid) = self.pid {
            lock(&self.cluster.working).remove(&pid);
        }
        for (_, part) in std::mem::take(&mut txn.remotes) {
            self.cluster.pool.put(part.conn);
        }
        let gtm = self.cluster.gtm();
        let committed = matches!(result, Ok(true));
        if txn.gxid.is_some() {
            // The report, the release and a finished two-phase commit's forget in one round
            // trip.
            let release = txn.snapshot.is_some().then_some(self.gtm_session);
            if let Err(e) = gtm
                .end_transaction(txn.gxid, committed, release, forget.as_deref())
                .await
            {
                tracing::warn!(gxid = ?txn.gxid, error = %e, "could not report a transaction's end to the GTM");
                if committed {
                    return Err(gtm_error(e));
                }
            }
            self.release.in_use.store(false, Ordering::SeqCst);
        } else if txn.snapshot.is_some() {
            self.release_later();
        }
        if txn.ddl_locked {
            let _ = gtm.unlock(DDL_LOCK, &self.ddl_holder()).await;
        }
        std::mem::take(&mut txn.classes).settle(&self.cluster.catalog, committed)?;
        result.map(|_| ())
    }

    /// The snapshot of a read-only transaction that ended: released by a task once the
    /// session is quiet (see [`LazyRelease`]).
    fn release_later(&self) {
        let release = &self.release;
        release.in_use.store(false, Ordering::SeqCst);
        release.moves.fetch_add(1, Ordering::SeqCst);
        if release.armed.swap(true, Ordering::SeqCst) {
            return;
        }
        let release = release.clone();
        let gtm = self.cluster.gtm().clone();
        let session = self.gtm_session;
        tokio::spawn(async move {
            loop {
                let seen = release.moves.load(Ordering::SeqCst);
                tokio::time::sleep(RELEASE_DELAY).await;
                if release.in_use.load(Ordering::SeqCst)
                    || release.moves.load(Ordering::SeqCst) != seen
                {
                    continue;
                }
                // Sent before any later snapshot request of the session (one connection,
                // in order), so it never releases a snapshot taken after this check.
                if let Err(e) = gtm.release_snapshot(session).await {
                    tracing::debug!(error = %e, "releasing a session's snapshot failed");
                }
                if release.moves.load(Ordering::SeqCst) == seen {
                    break;
                }
                // A snapshot was taken meanwhile: watch it too.
            }
            release.armed.store(false, Ordering::SeqCst);
        });
    }

    /// Sends `sql` (COMMIT or ROLLBACK) to every participant, errors logged.
    async fn end_all(&mut self, txn: &mut Txn, sql: &str) {
        let remotes = txn.remotes.iter().filter(|(_, p)| !p.ended);
        for (node, result) in on_each(remotes, |_| sql).await {
            if let Err(e) = result {
                tracing::debug!(node, error = %e, "ending a remote transaction failed");
            }
        }
        if txn.local.is_some() {
            if let Ok(stmt) = own_statement(sql) {
                let _ = self.local.execute(&stmt, &[], None).await;
            }
        }
    }

    /// Commits with at most one writer: the readers first (nothing to lose), the writer last;
    /// `Ok(true)` once committed.
    async fn commit_one_phase(&mut self, txn: &mut Txn) -> Result<bool> {
        let writer = txn
            .remotes
            .iter()
            .find(|(_, p)| p.wrote && !p.ended)
            .map(|(n, _)| n.clone());
        let readers = txn.remotes.iter().filter(|(_, p)| !p.wrote && !p.ended);
        for (node, result) in on_each(readers, |_| "COMMIT").await {
            if let Err(e) = result {
                tracing::debug!(node, error = %e, "committing a reader failed");
            }
        }
        if let Some(node) = writer {
            let local_read = txn.local.is_some();
            if local_read {
                self.local
                    .execute(&own_statement("COMMIT")?, &[], None)
                    .await?;
            }
            let part = txn
                .remotes
                .get_mut(&node)
                .ok_or_else(|| SqlError::internal("no writer"))?;
            remote::run(&part.conn.client, &node, "COMMIT").await?;
            return Ok(true);
        }
        if txn.local.is_some() {
            let ended = self
                .local
                .execute(&own_statement("COMMIT")?, &[], None)
                .await?;
            if matches!(&ended, StatementResult::End(tag) if tag == "ROLLBACK") {
                return Err(SqlError::new(
                    sqlstate::TRANSACTION_ROLLBACK,
                    "the coordinator's part of the transaction rolled back",
                ));
            }
        }
        Ok(true)
    }

    /// Two-phase commit over the writers (readers are committed first). Each phase goes to
    /// the participants concurrently. `forget` is set to the GID once every participant has
    /// finished it (the GTM forgets it with the transaction's end report).
    async fn commit_two_phase(
        &mut self,
        txn: &mut Txn,
        forget: &mut Option<String>,
    ) -> Result<bool> {
        let gxid = txn
            .gxid
            .ok_or_else(|| SqlError::internal("writers without a GXID"))?;
        let gid = format!("{}:{}", self.cluster.name, gxid.0);
        let mut participants: Vec<String> = txn
            .remotes
            .iter()
            .filter(|(_, p)| p.wrote)
            .map(|(n, _)| n.clone())
            .collect();
        let local_writes = txn.local.as_ref().is_some_and(|l| l.wrote);
        if local_writes {
            participants.push(self.cluster.name.clone());
        }
        let readers = txn.remotes.iter().filter(|(_, p)| !p.wrote && !p.ended);
        on_each(readers, |_| "COMMIT").await;
        if txn.local.is_some() && !local_writes {
            let _ = self
                .local
                .execute(&own_statement("COMMIT")?, &[], None)
                .await;
        }
        let gtm = self.cluster.gtm().clone();
        let cluster = self.cluster.clone();
        let _in_flight = InFlight::new(&cluster, &gid);
        if let Err(e) = gtm
            .prepare(gxid, &gid, participants.clone(), &self.cluster.name)
            .await
        {
            self.end_all(txn, "ROLLBACK").await;
            return Err(gtm_error(e));
        }
        let prepare = format!("PREPARE TRANSACTION '{gid}'");
        let mut prepared = Vec::new();
        let mut failure = None;
        let writers = txn.remotes.iter().filter(|(_, p)| p.wrote);
        for (node, result) in on_each(writers, |_| prepare.as_str()).await {
            match result {
                Ok(_) => prepared.push(node.to_string()),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        let mut local_prepared = false;
        if failure.is_none() && local_writes {
            match self
                .local
                .execute(&own_statement(&prepare)?, &[], None)
                .await
            {
                Ok(StatementResult::End(tag)) if tag == "PREPARE TRANSACTION" => {
                    local_prepared = true
                }
                Ok(_) => {
                    failure = Some(SqlError::new(
                        sqlstate::TRANSACTION_ROLLBACK,
                        "the coordinator's part of the transaction rolled back",
                    ))
                }
                Err(e) => failure = Some(e),
            }
        }
        rxc_common::failpoint::hit("coordinator-after-prepare");
        let mut commit = failure.is_none();
        if let Err(e) = gtm.decide(&gid, commit).await {
            if commit {
                // Another coordinator's resolver may have decided first (it took this
                // transaction for one of a dead coordinator): its decision stands.
                match gtm.call(GtmRequest::GetPrepared { gid: gid.clone() }).await {
                    Ok(GtmResponse::PreparedOne(Some(t))) if t.decision == Some(true) => {}
                    Ok(GtmResponse::PreparedOne(_)) => {
                        commit = false;
                        failure = Some(SqlError::new(
                            sqlstate::TRANSACTION_ROLLBACK,
                            format!("transaction {gid} was rolled back by the in-doubt resolver"),
                        ));
                    }
                    // Undecided and the GTM unreachable: the prepared parts stay for the
                    // resolver (they hold their rows).
                    _ => return Err(gtm_error(e)),
                }
            }
        }
        if commit {
            rxc_common::failpoint::hit("coordinator-after-decide");
        }
        let finish = if commit {
            format!("COMMIT PREPARED '{gid}'")
        } else {
            format!("ROLLBACK PREPARED '{gid}'")
        };
        let mut finished = true;
        let writers = txn.remotes.iter().filter(|(_, p)| p.wrote);
        let finishes = on_each(writers, |node| {
            if prepared.iter().any(|p| p == node) {
                finish.as_str()
            } else {
                "ROLLBACK"
            }
        });
        for (node, result) in finishes.await {
            if let Err(e) = result {
                finished = false;
                tracing::warn!(node, gid, error = %e, "finishing a prepared transaction failed");
            }
        }
        if local_prepared {
            self.local
                .execute(&own_statement(&finish)?, &[], None)
                .await?;
        } else if local_writes {
            let _ = self
                .local
                .execute(&own_statement("ROLLBACK")?, &[], None)
                .await;
        }
        if finished {
            *forget = Some(gid);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }

    // --- node DDL -------------------------------------------------------------------------

    fn create_node(&self, name: &str, options: &[GenericOption]) -> Result<StatementResult> {
        self.refuse_in_block("CREATE NODE")?;
        let contents = self.cluster.catalog.snapshot();
        if contents.nodes.contains_key(name) {
            return Err(SqlError::new(
                sqlstate::DUPLICATE_OBJECT,
                format!("PGXC Node {name}: object already defined"),
            ));
        }
        let mut node = NodeDef {
            name: name.to_string(),
            kind: NodeKind::Datanode,
            host: "localhost".into(),
            port: 5432,
            primary: false,
            preferred: false,
            id: NodeDef::id_of(name),
        };
        apply_node_options(&mut node, options, true)?;
        check_one_primary(&contents, &node)?;
        self.cluster.catalog.put_node(node)?;
        Ok(command("CREATE NODE"))
    }

    fn alter_node(&self, name: &str, options: &[GenericOption]) -> Result<StatementResult> {
        self.refuse_in_block("ALTER NODE")?;
        let contents = self.cluster.catalog.snapshot();
        let mut node = contents.node(name)?.clone();
        apply_node_options(&mut node, options, false)?;
        check_one_primary(&contents, &node)?;
        self.cluster.catalog.put_node(node)?;
        Ok(command("ALTER NODE"))
    }

    fn drop_node(&self, name: &str, if_exists: bool) -> Result<StatementResult> {
        self.refuse_in_block("DROP NODE")?;
        let contents = self.cluster.catalog.snapshot();
        if !contents.nodes.contains_key(name) {
            if if_exists {
                return Ok(command("DROP NODE"));
            }
            contents.node(name)?;
        }
        if name == self.cluster.name {
            return Err(SqlError::new(
                sqlstate::OBJECT_IN_USE,
                format!("PGXC Node {name}: cannot drop local node"),
            ));
        }
        if let Some((table, _)) = contents.classes.iter().find(|(t, d)| {
            d.nodes.iter().any(|n| n == name) && self.local.table(t).ok().flatten().is_some()
        }) {
            return Err(SqlError::new(
                sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
                format!("cannot drop node {name}: table \"{table}\" is distributed on it"),
            ));
        }
        self.cluster.catalog.delete_node(name)?;
        Ok(command("DROP NODE"))
    }

    fn create_node_group(&self, name: &str, members: &[String]) -> Result<StatementResult> {
        self.refuse_in_block("CREATE NODE GROUP")?;
        let contents = self.cluster.catalog.snapshot();
        if contents.groups.contains_key(name) {
            return Err(SqlError::new(
                sqlstate::DUPLICATE_OBJECT,
                format!("PGXC Group {name}: group already defined"),
            ));
        }
        for m in members {
            if contents.node(m)?.kind != NodeKind::Datanode {
                return Err(SqlError::new(
                    sqlstate::INVALID_PARAMETER_VALUE,
                    format!("PGXC node {m}: only datanodes can be group members"),
                ));
            }
        }
        self.cluster.catalog.put_group(
            name,
            Some(NodeGroup {
                name: name.to_string(),
                members: members.to_vec(),
            }),
        )?;
        Ok(command("CREATE NODE GROUP"))
    }

    fn drop_node_group(&self, name: &str, if_exists: bool) -> Result<StatementResult> {
        self.refuse_in_block("DROP NODE GROUP")?;
        if !self.cluster.catalog.snapshot().groups.contains_key(name) {
            if if_exists {
                return Ok(command("DROP NODE GROUP"));
            }
            return Err(SqlError::new(
                sqlstate::UNDEFINED_OBJECT,
                format!("PGXC Group {name}: group not defined"),
            ));
        }
        self.cluster.catalog.put_group(name, None)?;
        Ok(command("DROP NODE GROUP"))
    }

    fn pool_reload(&self) -> Result<StatementResult> {
        self.refuse_in_block("pgxc_pool_reload")?;
        let contents = self.cluster.catalog.snapshot();
        self.cluster
            .pool
            .reload(&self.cluster.pooled_nodes(&contents));
        Ok(bool_rows("pgxc_pool_reload", true))
    }

    fn pool_check(&self) -> StatementResult {
        let contents = self.cluster.catalog.snapshot();
        let ok = self
            .cluster
            .pool
            .matches(&self.cluster.pooled_nodes(&contents));
        bool_rows("pgxc_pool_check", ok)
    }

    /// `EXECUTE DIRECT ON (nodes) 'query'`: a read-only query on each node, in the current
    /// transaction; the columns come back as text.
    async fn execute_direct(&mut self, nodes: &[String], query: &str) -> Result<StatementResult> {
        let parsed = parser::parse_single(query)?;
        let read_only = matches!(&parsed, Some(Statement::Sql(s)) if matches!(&**s, ast::Statement::Query(q) if q.locks.is_empty()));
        if !read_only {
            return Err(SqlError::unsupported(
                "EXECUTE DIRECT runs only read-only queries (SELECT)",
            ));
        }
        let contents = self.cluster.catalog.snapshot();
        for n in nodes {
            contents.node(n)?;
        }
        let result = self.direct(nodes, query, parsed).await;
        self.end_statement(result).await
    }

    async fn direct(
        &mut self,
        nodes: &[String],
        query: &str,
        parsed: Option<Statement>,
    ) -> Result<StatementResult> {
        {
            self.statement_context(false, nodes.len() == 1 && nodes[0] != self.cluster.name)
                .await?;
            let mut columns = Vec::new();
            let mut rows = Vec::new();
            for node in nodes {
                if *node == self.cluster.name {
                    let stmt = parsed
                        .clone()
                        .ok_or_else(|| SqlError::syntax("empty query"))?;
                    if let StatementResult::Rows {
                        columns: c,
                        rows: r,
                        ..
                    } = self.run_local(&stmt, &[], None, false).await?
                    {
                        columns = c.into_iter().map(|c| c.name).collect();
                        rows.extend(
                            r.into_iter()
                                .map(|row| row.into_iter().map(|v| v.to_text()).collect()),
                        );
                    }
                    continue;
                }
                let answer = self.ship_one(node, query, false).await?;
                columns = answer.columns;
                rows.extend(answer.rows);
            }
            let types = vec![DataType::Text; columns.len()];
            Ok(StatementResult::Rows {
                columns: columns
                    .into_iter()
                    .map(|name| OutputColumn {
                        name,
                        data_type: DataType::Text,
                        table_id: None,
                    })
                    .collect(),
                rows: remote::parse_rows(rows, &types)?,
                tag: "SELECT".into(),
            })
        }
    }

    // --- COPY -------------------------------------------------------------------------------

    /// `COPY`: into or out of a distributed table through the coordinator
    /// ([`crate::copy`]); a table of the coordinator's own on its local storage.
    async fn start_copy(
        &mut self,
        stmt: &Statement,
        copy: &parser::CopyStatement,
    ) -> Result<StatementResult> {
        let table_name = match &copy.source {
            ast::CopySource::Table { table_name, .. } => Some(object_name(table_name)?),
            ast::CopySource::Query(_) => None,
        };
        let contents = self.cluster.catalog.snapshot();
        let distributed = match &table_name {
            Some(t) => contents.classes.contains_key(t) && self.local.table(t)?.is_some(),
            // COPY (query) TO: the query says which tables it reads.
            None => true,
        };
        if !distributed {
            return self.local.execute(stmt, &[], None).await;
        }
        rxc_common::sql::copy::check_target(copy)?;
        let query = rxc_common::sql::copy::out_query(&copy.source)?;
        if copy.to {
            let query = Arc::new(pushdown::parse_statement(&query)?);
            let result = self
                .sql(&Statement::Sql(query.clone()), &query, &[], None)
                .await;
            let result = self.end_statement(result).await?;
            let StatementResult::Rows { columns, rows, .. } = result else {
                return Err(SqlError::internal("COPY query returned no rows"));
            };
            let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
            let (csv, lines) = rxc_common::sql::copy::encode_out(&copy.options, &names, &rows)?;
            return Ok(StatementResult::CopyOut {
                columns: names.len(),
                csv,
                lines,
            });
        }
        let table_name = table_name.ok_or_else(|| SqlError::internal("COPY FROM a query"))?;
        let table = self.local.table(&table_name)?.ok_or_else(|| {
            SqlError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("relation \"{table_name}\" does not exist"),
            )
        })?;
        let columns: Vec<String> = match &copy.source {
            ast::CopySource::Table { columns, .. } if !columns.is_empty() => {
                let names: Vec<String> = columns
                    .iter()
                    .map(rxc_common::sql::binder::ident_name)
                    .collect();
                for n in &names {
                    if table.column_index(n).is_none() {
                        return Err(SqlError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!("column \"{n}\" of relation \"{table_name}\" does not exist"),
                        ));
                    }
                }
                names
            }
            _ => table.columns.iter().map(|c| c.name.clone()).collect(),
        };
        let format = rxc_common::sql::copy::CopyFormat::from_options(&copy.options, &columns)?;
        let csv = format.csv;
        let width = columns.len();
        self.copy_in = Some(crate::copy::CopyIn::new(
            table.name.clone(),
            columns,
            format,
        ));
        Ok(StatementResult::CopyIn {
            columns: width,
            csv,
        })
    }

    /// Inserts the COPY's pending rows, routed as an INSERT; an error stops the COPY.
    async fn copy_batch(&mut self) {
        let Some(copy) = &mut self.copy_in else {
            return;
        };
        let batch = match copy.take_batch() {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                copy.fail(e, 0);
                return;
            }
        };
        let (insert, line) = batch;
        let insert = Arc::new(insert);
        // A statement inside the COPY's: the COPY ends the transaction, not the batch.
        self.nesting += 1;
        let result = self
            .sql(&Statement::Sql(insert.clone()), &insert, &[], None)
            .await;
        self.nesting -= 1;
        if let (Err(e), Some(copy)) = (result, &mut self.copy_in) {
            copy.fail(e, line);
        }
    }

    // --- DDL across coordinators ------------------------------------------------------------

    fn ddl_holder(&self) -> String {
        format!("{}:{}", self.cluster.name, self.gtm_session)
    }

    /// Takes (or renews) the cluster-wide DDL lock for the transaction, after
    /// [`Self::statement_context`]: DDL waits for another coordinator's DDL transaction to
    /// end, up to `lock_timeout` (a minute when unset), then fails with 55P03.
    async fn ddl_lock(&mut self) -> Result<()> {
        let holder = self.ddl_holder();
        let timeout = match self.local.setting_ms("lock_timeout") {
            0 => DDL_LOCK_WAIT,
            ms => std::time::Duration::from_millis(ms),
        };
        let deadline = std::time::Instant::now() + timeout;
        let gtm = self.cluster.gtm().clone();
        let mut pause = std::time::Duration::from_millis(2);
        loop {
            match gtm.lock(DDL_LOCK, &holder, DDL_LEASE_MS).await {
                Ok(()) => break,
                Err(e) if e.code == rxc_common::gtm::proto::ErrorCode::LockBusy => {
                    if std::time::Instant::now() >= deadline {
                        return Err(SqlError::new(
                            sqlstate::LOCK_NOT_AVAILABLE,
                            format!("could not obtain the cluster-wide DDL lock: {}", e.message),
                        ));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(gtm_error(e)),
            }
        }
        if let Some(txn) = &mut self.txn {
            txn.ddl_locked = true;
        }
        Ok(())
    }

    /// Opens a DDL statement: its transaction with a GXID, and the DDL lock.
    async fn ddl_context(&mut self) -> Result<()> {
        self.statement_context(true, false).await?;
        self.ddl_lock().await
    }

    /// Runs DDL `sql` on every other coordinator, in the transaction.
    async fn ddl_on_peers(&mut self, sql: &str) -> Result<()> {
        let peers = self.cluster.peers(&self.cluster.catalog.snapshot());
        if peers.is_empty() {
            return Ok(());
        }
        let jobs = same_on(&peers, sql);
        self.ship_all(&jobs, true).await?;
        Ok(())
    }

    /// A statement of another coordinator's DDL transaction: run on the local storage as a
    /// datanode runs a coordinator's statements; a CREATE TABLE records the distribution it
    /// names, a DROP TABLE removes the table's once the transaction commits.
    async fn peer_statement(
        &mut self,
        stmt: &Statement,
        params: &[Value],
        prepared: Option<Prepared>,
    ) -> Result<StatementResult> {
        match stmt {
            Statement::CreateTable {
                create,
                distribute,
                to,
            } => {
                let ast::Statement::CreateTable(ct) = &**create else {
                    return Err(SqlError::internal("not a CREATE TABLE"));
                };
                let name = object_name(&ct.name)?;
                let result = self
                    .local
                    .execute(&Statement::Sql(create.clone()), &[], None)
                    .await?;
                let table = self
                    .local
                    .table(&name)?
                    .ok_or_else(|| SqlError::internal(format!("table {name} vanished")))?;
                let contents = self.cluster.catalog.snapshot();
                let nodes = self.target_nodes(&contents, to.as_ref())?;
                let locator = self.locator(&table, distribute.as_ref())?;
                self.cluster
                    .catalog
                    .put_class(&name, Some(Distribution { locator, nodes }))?;
                self.peer_classes.created.push(name);
                Ok(result)
            }
            Statement::Sql(ast) => {
                let result = self.local.execute(stmt, params, prepared).await?;
                match &**ast {
                    ast::Statement::Drop {
                        object_type: ast::ObjectType::Table,
                        names,
                        ..
                    } => {
                        for n in names {
                            self.peer_classes.dropped.push(object_name(n)?);
                        }
                    }
                    ast::Statement::Commit { .. } | ast::Statement::Rollback { .. } => {
                        let committed = matches!(&result, StatementResult::End(t) if t == "COMMIT");
                        std::mem::take(&mut self.peer_classes)
                            .settle(&self.cluster.catalog, committed)?;
                    }
                    _ => {}
                }
                Ok(result)
            }
            Statement::PrepareTransaction(gid) => {
                let result = self.local.execute(stmt, params, prepared).await?;
                let changes = std::mem::take(&mut self.peer_classes);
                if !changes.is_empty() {
                    lock(&self.cluster.pending_classes).insert(gid.clone(), changes);
                }
                Ok(result)
            }
            Statement::CommitPrepared(gid) | Statement::RollbackPrepared(gid) => {
                let result = self.local.execute(stmt, params, prepared).await?;
                let changes = lock(&self.cluster.pending_classes).remove(gid);
                if let Some(changes) = changes {
                    changes.settle(
                        &self.cluster.catalog,
                        matches!(stmt, Statement::CommitPrepared(_)),
                    )?;
                }
                Ok(result)
            }
            _ => self.local.execute(stmt, params, prepared).await,
        }
    }

    // --- roles ----------------------------------------------------------------------------

    /// 42501 unless the session's role is a superuser.
    fn require_superuser(&self, what: &str) -> Result<()> {
        if self.local.is_superuser() {
            return Ok(());
        }
        Err(SqlError::new(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            format!("must be superuser to {what}"),
        ))
    }

    /// Role DDL for the whole cluster: checked and run on this coordinator first (as the
    /// session's role), then on every datanode and every other coordinator in the same
    /// transaction, under the cluster-wide DDL lock. A password is turned into its SCRAM
    /// verifier here, once, so every node stores the same verifier and no node is sent the
    /// cleartext.
    async fn role_ddl(&mut self, stmt: &Statement) -> Result<StatementResult> {
        let mut stmt = stmt.clone();
        encrypt_password(&mut stmt);
        self.ddl_context().await?;
        let result = self.run_local(&stmt, &[], None, true).await?;
        let sql = role_sql(&stmt).ok_or_else(|| SqlError::internal("not role DDL"))?;
        let nodes = self.cluster.catalog.snapshot().datanodes();
        let jobs = same_on(&nodes, &sql);
        self.ship_all(&jobs, true).await?;
        self.ddl_on_peers(&sql).await?;
        Ok(result)
    }

    // --- table DDL ------------------------------------------------------------------------

    /// The datanodes of a new table: `TO NODE (...)`, `TO GROUP g`, or every datanode.
    fn target_nodes(&self, contents: &Contents, to: Option<&NodeTarget>) -> Result<Vec<String>> {
        let nodes = match to {
            Some(NodeTarget::Nodes(names)) => {
                for n in names {
                    if contents.node(n)?.kind != NodeKind::Datanode {
                        return Err(SqlError::new(
                            sqlstate::INVALID_PARAMETER_VALUE,
                            format!("PGXC node {n}: not a datanode"),
                        ));
                    }
                }
                names.clone()
            }
            Some(NodeTarget::Group(g)) => contents
                .groups
                .get(g)
                .ok_or_else(|| {
                    SqlError::new(
                        sqlstate::UNDEFINED_OBJECT,
                        format!("PGXC Group {g}: group not defined"),
                    )
                })?
                .members
                .clone(),
            None => contents.datanodes(),
        };
        if nodes.is_empty() {
            return Err(SqlError::new(
                sqlstate::UNDEFINED_OBJECT,
                "no datanode is registered: add one with CREATE NODE ... WITH (TYPE = 'datanode', ...) \
                 and SELECT pgxc_pool_reload()",
            ));
        }
        Ok(nodes)
    }

    /// The locator of a new table: as given, or the default ([`DefaultDistribution`]).
    fn locator(&self, table: &Table, distribute: Option<&Distribute>) -> Result<Locator> {
        let column = |name: &str| {
            table.column_index(name).ok_or_else(|| {
                SqlError::new(
                    sqlstate::UNDEFINED_COLUMN,
                    format!("column \"{name}\" named in DISTRIBUTE BY does not exist"),
                )
            })
        };
        let locator = match distribute {
            Some(Distribute::Replication) => Locator::Replication,
            Some(Distribute::RoundRobin) => Locator::RoundRobin,
            Some(Distribute::Hash(c)) => Locator::Hash(column(c)?),
            Some(Distribute::Modulo(c)) => Locator::Modulo(column(c)?),
            None if self.cluster.default_distribution == DefaultDistribution::Replication => {
                Locator::Replication
            }
            None if self.cluster.default_distribution == DefaultDistribution::RoundRobin => {
                Locator::RoundRobin
            }
            None => {
                let hashable = |i: &usize| {
                    let c = &table.columns[*i];
                    check_key_type(&Locator::Hash(*i), &c.name, &c.data_type).is_ok()
                };
                let pk = table.primary_key.iter().copied().find(|i| hashable(i));
                return Ok(pk
                    .or_else(|| (0..table.columns.len()).find(|i| hashable(i)))
                    .map_or(Locator::RoundRobin, Locator::Hash));
            }
        };
        if let Some(c) = locator.column() {
            let col = &table.columns[c];
            check_key_type(&locator, &col.name, &col.data_type)?;
        }
        Ok(locator)
    }

    async fn create_table(
        &mut self,
        create: &Arc<ast::Statement>,
        distribute: Option<&Distribute>,
        to: Option<&NodeTarget>,
    ) -> Result<StatementResult> {
        let ast::Statement::CreateTable(ct) = &**create else {
            return Err(SqlError::internal("not a CREATE TABLE"));
        };
        let name = object_name(&ct.name)?;
        if ct.query.is_some() {
            return Err(SqlError::unsupported(
                "CREATE TABLE ... AS on a coordinator is not supported yet",
            ));
        }
        if ct.if_not_exists && self.local.table(&name)?.is_some() {
            // Only the notice: nothing changes anywhere.
            return self
                .local_statement(&Statement::Sql(create.clone()), &[], None, true)
                .await;
        }
        let contents = self.cluster.catalog.snapshot();
        let nodes = self.target_nodes(&contents, to)?;
        self.ddl_context().await?;
        let result = self
            .run_local(&Statement::Sql(create.clone()), &[], None, true)
            .await?;
        let table = self
            .local
            .table(&name)?
            .ok_or_else(|| SqlError::internal(format!("table {name} vanished")))?;
        let locator = self.locator(&table, distribute)?;
        self.cluster.catalog.put_class(
            &name,
            Some(Distribution {
                locator: locator.clone(),
                nodes: nodes.clone(),
            }),
        )?;
        if let Some(txn) = &mut self.txn {
            txn.classes.created.push(name.clone());
        }
        let sql = for_datanodes(create, &table)?.to_string();
        let jobs = same_on(&nodes, &sql);
        self.ship_all(&jobs, true).await?;
        // The other coordinators record the same distribution.
        self.ddl_on_peers(&format!(
            "{sql} {}",
            distribute_sql(&table, &locator, &nodes)
        ))
        .await?;
        Ok(result)
    }

    /// DDL on existing tables (DROP TABLE, CREATE INDEX, ALTER TABLE, TRUNCATE): on every
    /// datanode of the tables, then locally.
    async fn table_ddl(
        &mut self,
        ast: &Arc<ast::Statement>,
        tables: &[String],
    ) -> Result<StatementResult> {
        let contents = self.cluster.catalog.snapshot();
        let mut nodes: Vec<String> = Vec::new();
        let mut distributed = Vec::new();
        for t in tables {
            if self.local.table(t)?.is_none() {
                continue;
            }
            if let Some(d) = contents.classes.get(t) {
                distributed.push(t.clone());
                for n in &d.nodes {
                    if !nodes.contains(n) {
                        nodes.push(n.clone());
                    }
                }
            }
        }
        self.ddl_context().await?;
        let sql = ast.to_string();
        let jobs = same_on(&nodes, &sql);
        self.ship_all(&jobs, true).await?;
        if !matches!(&**ast, ast::Statement::Truncate(_)) {
            self.ddl_on_peers(&sql).await?;
        }
        let result = self
            .run_local(&Statement::Sql(ast.clone()), &[], None, true)
            .await?;
        if matches!(&**ast, ast::Statement::Drop { .. }) {
            if let Some(txn) = &mut self.txn {
                txn.classes.dropped.extend(distributed);
            }
        }
        Ok(result)
    }

    // --- queries and DML ------------------------------------------------------------------

    /// A query or DML statement on distributed table `name` (the only table it names).
    async fn distributed_dml(
        &mut self,
        stmt: &Statement,
        ast: &Arc<ast::Statement>,
        table: Arc<Table>,
        dist: Distribution,
        params: &[Value],
        prepared: Option<Prepared>,
    ) -> Result<StatementResult> {
        let kept = prepared.is_some();
        let (param_types, columns, types) = self.describe_here(stmt, params, prepared).await?;
        let contents = self.cluster.catalog.snapshot();
        let write = !matches!(&**ast, ast::Statement::Query(_));
        // INSERT ... VALUES: each row to its node.
        if matches!(&**ast, ast::Statement::Insert(_)) {
            if let ast::Statement::Insert(insert) = with_params(ast, params, &param_types)? {
                return self
                    .insert(&insert, &table, &dist, &contents, params, columns, &types)
                    .await;
            }
        }
        let selection = match &**ast {
            ast::Statement::Update(u) => {
                if let Some(c) = dist.locator.column() {
                    let column = &table.columns[c].name;
                    let updates_key = u.assignments.iter().any(|a| match &a.target {
                        ast::AssignmentTarget::ColumnName(n) => {
                            object_name(n).is_ok_and(|n| n == *column)
                        }
                        ast::AssignmentTarget::Tuple(names) => names
                            .iter()
                            .any(|n| object_name(n).is_ok_and(|n| n == *column)),
                    });
                    if updates_key {
                        return Err(SqlError::unsupported(
                            "Partition column can't be updated in current version",
                        ));
                    }
                }
                u.selection.as_ref()
            }
            ast::Statement::Delete(d) => d.selection.as_ref(),
            ast::Statement::Query(q) => match &*q.body {
                ast::SetExpr::Select(s) => s.selection.as_ref(),
                _ => None,
            },
            _ => None,
        };
        let nodes = route::nodes_for(&table, &dist, &contents.nodes, selection, params, write)?;
        // A subquery over a distributed table needs every node's rows, not one node's.
        let nested = dist.locator != Locator::Replication
            && !matches!(&**ast, ast::Statement::Insert(_))
            && self.has_subquery_of(ast, kept);
        if nested && write {
            return Err(SqlError::unsupported(format!(
                "{} with a subquery over distributed table \"{}\" is not supported yet",
                ast_command(ast),
                table.name
            )));
        }
        if let ast::Statement::Query(q) = &**ast {
            if nested || nodes.len() > 1 && needs_combining(q) {
                if !q.locks.is_empty() {
                    return Err(SqlError::unsupported(
                        "FOR UPDATE/SHARE in a query that combines several datanodes' rows \
                         is not supported yet",
                    ));
                }
                // Only the nodes the WHERE clause leaves.
                let mut dist = dist.clone();
                dist.nodes = nodes;
                return self
                    .gather(ast, vec![(table.clone(), dist)], None, params, &param_types)
                    .await;
            }
        }
        self.statement_context(write, nodes.len() == 1).await?;
        let sql = self.shipped_text(ast, kept, params, &param_types)?;
        // A statement that is its own transaction on one node commits in the same round trip.
        let alone = !self.in_block()
            && self.nesting == 0
            && nodes.len() == 1
            && self
                .txn
                .as_ref()
                .is_some_and(|t| t.remotes.is_empty() && t.local.is_none());
        if alone {
            let answers = self
                .ship(&nodes[0], &format!("{sql}; COMMIT"), write)
                .await?;
            if let Some(part) = self.txn.as_mut().and_then(|t| t.remotes.get_mut(&nodes[0])) {
                part.ended = true;
            }
            let answer = first_answer(answers)?;
            let rows = remote::parse_rows(answer.rows, &types)?;
            return Ok(dml_result(ast, columns, rows, answer.count));
        }
        let replicated_write = write && dist.locator == Locator::Replication;
        let mut answers = Vec::new();
        let mut rest = &nodes[..];
        if replicated_write {
            // The primary first, alone: writers of the same rows queue there, not deadlock.
            answers.push(self.ship_one(&nodes[0], &sql, write).await?);
            rest = &nodes[1..];
        }
        let jobs = same_on(rest, &sql);
        for a in self.ship_all(&jobs, write).await? {
            answers.push(first_answer(a)?);
        }
        // A replicated table's write changes the same rows on every node: report one.
        if replicated_write {
            answers.truncate(1);
        }
        let mut rows = Vec::new();
        let mut count = 0;
        for answer in answers {
            count += answer.count;
            rows.extend(remote::parse_rows(answer.rows, &types)?);
        }
        Ok(dml_result(ast, columns, rows, count))
    }

    /// The text shipped for `ast` with `params` as literals of `types`: rendered from the
    /// statement's template when it has parameters and is `kept` (a client's prepared
    /// statement, whose executions share its template), else displayed.
    fn shipped_text(
        &mut self,
        ast: &Arc<ast::Statement>,
        kept: bool,
        params: &[Value],
        types: &[DataType],
    ) -> Result<String> {
        if params.is_empty() {
            return Ok(ast.to_string());
        }
        let rendered = self.facts(ast, kept).and_then(|f| {
            f.template
                .get_or_insert_with(|| Template::new(ast))
                .as_ref()?
                .render(params, types)
        });
        match rendered {
            Some(text) => Ok(text),
            None => Ok(with_params(ast, params, types)?.to_string()),
        }
    }

    /// The facts kept about tree `ast` if it is `kept` (a client's prepared statement).
    fn facts(&mut self, ast: &Arc<ast::Statement>, kept: bool) -> Option<&mut TreeFacts> {
        if !kept {
            return None;
        }
        let key = Arc::as_ptr(ast) as usize;
        if self.facts.len() >= MAX_TREES && !self.facts.contains_key(&key) {
            self.facts.clear();
        }
        Some(self.facts.entry(key).or_insert_with(|| TreeFacts {
            _tree: ast.clone(),
            template: None,
            tables: None,
            subquery: None,
        }))
    }

    /// [`referenced_tables`] of `ast`, found once per tree if it is `kept`.
    fn tables_of(&mut self, ast: &Arc<ast::Statement>, kept: bool) -> Result<Arc<[String]>> {
        let find = || referenced_tables(ast).map(Arc::from);
        match self.facts(ast, kept) {
            Some(f) => f.tables.get_or_insert_with(find).clone(),
            None => find(),
        }
    }

    /// [`has_subquery`] of `ast`, found once per tree if it is `kept`.
    fn has_subquery_of(&mut self, ast: &Arc<ast::Statement>, kept: bool) -> bool {
        match self.facts(ast, kept) {
            Some(f) => *f.subquery.get_or_insert_with(|| has_subquery(ast)),
            None => has_subquery(ast),
        }
    }

    /// A statement's parameter types, result columns and their types, as the local session
    /// binds it (`prepared` when the client prepared it, else its parameters untyped).
    async fn describe_here(
        &mut self,
        stmt: &Statement,
        params: &[Value],
        prepared: Option<Prepared>,
    ) -> Result<(Vec<DataType>, Vec<OutputColumn>, Vec<DataType>)> {
        let prepared = prepared.unwrap_or_else(|| Prepared {
            param_types: vec![DataType::Unknown; params.len()],
            slot: Arc::default(),
        });
        let (param_types, columns) = self.local.describe(stmt, &prepared).await?;
        let types = columns.iter().map(|c| c.data_type.clone()).collect();
        Ok((param_types, columns, types))
    }

    /// A read-only query shipped whole to each of `nodes`, whose answers together are its
    /// rows: one node holding every row it reads, or the nodes of a co-located join.
    async fn ship_whole(
        &mut self,
        stmt: &Statement,
        ast: &Arc<ast::Statement>,
        nodes: &[String],
        params: &[Value],
        prepared: Option<Prepared>,
    ) -> Result<StatementResult> {
        let kept = prepared.is_some();
        let (param_types, columns, types) = self.describe_here(stmt, params, prepared).await?;
        let sql = self.shipped_text(ast, kept, params, &param_types)?;
        self.statement_context(false, nodes.len() == 1).await?;
        let jobs = same_on(nodes, &sql);
        let mut rows = Vec::new();
        let mut count = 0;
        for answers in self.ship_all(&jobs, false).await? {
            let answer = first_answer(answers)?;
            count += answer.count;
            rows.extend(remote::parse_rows(answer.rows, &types)?);
        }
        Ok(dml_result(ast, columns, rows, count))
    }

    /// A read-only query run at the coordinator over the rows of its tables, fetched from
    /// their nodes (see [`crate::gather`]).
    /// `colocated`: the nodes on which the tables' join runs whole ([`pushdown::colocated`]).
    async fn gather(
        &mut self,
        ast: &Arc<ast::Statement>,
        tables: Vec<(Arc<Table>, Distribution)>,
        colocated: Option<Vec<String>>,
        params: &[Value],
        param_types: &[DataType],
    ) -> Result<StatementResult> {
        let bound = {
            let local = &self.local;
            let lookup = |name: &str| local.table(name);
            gather::bind(&lookup, ast, param_types)?
        };
        let columns = bound.root.columns();
        let shipped = with_params(ast, params, param_types)?;
        self.statement_context(false, false).await?;
        let contents = self.cluster.catalog.snapshot();
        let nodes_of = |dist: &Distribution| match dist.locator {
            Locator::Replication => vec![route::read_node(dist, &contents.nodes)],
            _ => dist.nodes.clone(),
        };
        // One table or a co-located join, aggregated: partial aggregates on the nodes,
        // combined here.
        let partial_nodes = match (tables.as_slice(), colocated) {
            ([(_, dist)], _) => Some(nodes_of(dist)),
            (_, colocated) => colocated,
        };
        if let Some(nodes) = partial_nodes {
            let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
            let all: Vec<&Table> = tables.iter().map(|(t, _)| &**t).collect();
            if let Some((partial, types)) = self.split_aggregate(&shipped, &all, &names) {
                let jobs = same_on(&nodes, &partial.remote);
                let mut rows = Vec::new();
                for answers in self.ship_all(&jobs, false).await? {
                    rows.extend(remote::parse_rows(first_answer(answers)?.rows, &types)?);
                }
                let partial_table = Arc::new(Table {
                    id: PARTIAL_ID,
                    name: pushdown::PARTIAL_TABLE.into(),
                    columns: types
                        .iter()
                        .enumerate()
                        .map(|(j, t)| Column {
                            name: format!("__rxc_c{j}"),
                            data_type: t.clone(),
                            nullable: true,
                            default: None,
                        })
                        .collect(),
                    primary_key: Vec::new(),
                    primary_key_name: None,
                    indexes: Vec::new(),
                    checks: Vec::new(),
                });
                let combine = partial.combine(&types)?;
                self.explain_line(format!(
                    "Coordinator: combine the partial aggregates: {combine}"
                ));
                let lookup = |name: &str| {
                    Ok((name == pushdown::PARTIAL_TABLE).then(|| partial_table.clone()))
                };
                let combining = gather::bind(&lookup, &combine, &[])?;
                let mut fetched = gather::Fetched::default();
                fetched.rows.insert(PARTIAL_ID, rows);
                let output = gather::run(&combining, &[], &mut fetched)?;
                return Ok(StatementResult::Rows {
                    columns,
                    rows: output.rows,
                    tag: "SELECT".into(),
                });
            }
        }
        // Each table fetched with its columns and conditions; one round trip per node.
        let all: Vec<&Table> = tables.iter().map(|(t, _)| &**t).collect();
        let mut per_node: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut fetches = Vec::new();
        for (i, (table, dist)) in tables.iter().enumerate() {
            fetches.push(pushdown::fetch(&shipped, table, &all));
            for node in nodes_of(dist) {
                per_node.entry(node).or_default().push(i);
            }
        }
        let jobs: Vec<(String, String)> = per_node
            .iter()
            .map(|(node, ts)| {
                let sql: Vec<&str> = ts.iter().map(|&i| fetches[i].sql.as_str()).collect();
                (node.clone(), sql.join("; "))
            })
            .collect();
        let mut fetched = gather::Fetched::default();
        for ((_, ts), answers) in per_node.iter().zip(self.ship_all(&jobs, false).await?) {
            if answers.len() != ts.len() {
                return Err(SqlError::internal("a datanode answered a fetch partly"));
            }
            for (&i, answer) in ts.iter().zip(answers) {
                let (table, _) = &tables[i];
                let fetch = &fetches[i];
                let types: Vec<DataType> = fetch
                    .columns
                    .iter()
                    .map(|&c| table.columns[c].data_type.clone())
                    .collect();
                let rows = fetched.rows.entry(table.id).or_default();
                for values in remote::parse_rows(answer.rows, &types)? {
                    let mut row = vec![Value::Null; table.columns.len()];
                    for (&c, v) in fetch.columns.iter().zip(values) {
                        row[c] = v;
                    }
                    rows.push(row);
                }
            }
        }
        self.explain_line(format!(
            "Coordinator: run the query over the fetched rows: {shipped}"
        ));
        let output = gather::run(&bound, params, &mut fetched)?;
        Ok(StatementResult::Rows {
            columns,
            rows: output.rows,
            tag: "SELECT".into(),
        })
    }

    fn explain_line(&mut self, line: String) {
        if let Some(lines) = &mut self.explain {
            lines.push(line);
        }
    }

    /// `EXPLAIN stmt` of a statement over distributed tables: each step, the nodes it runs
    /// on and the remote query text, found by running the statement with every shipment
    /// recorded instead of sent.
    async fn explain_distributed(
        &mut self,
        stmt: &ast::Statement,
        analyze: bool,
    ) -> Result<StatementResult> {
        if analyze {
            return Err(SqlError::unsupported(
                "EXPLAIN ANALYZE of a statement over distributed tables is not supported yet; \
                 EXPLAIN shows its steps",
            ));
        }
        let inner = Arc::new(stmt.clone());
        self.explain = Some(Vec::new());
        self.nesting += 1;
        let result = self
            .sql(&Statement::Sql(inner.clone()), &inner, &[], None)
            .await;
        self.nesting -= 1;
        let lines = self.explain.take().unwrap_or_default();
        result?;
        // The steps run in the order recorded; the coordinator's last.
        let mut out: Vec<Vec<Value>> = lines.into_iter().map(|l| vec![Value::Text(l)]).collect();
        if out.is_empty() {
            out.push(vec![Value::Text("Coordinator: run locally".into())]);
        }
        Ok(StatementResult::Rows {
            columns: vec![OutputColumn {
                name: "QUERY PLAN".into(),
                data_type: DataType::Text,
                table_id: None,
            }],
            rows: out,
            tag: "EXPLAIN".into(),
        })
    }

    /// `stmt` split into partial aggregates ([`pushdown::partial`]) with the types of the
    /// partial columns, when it splits and the partial query binds.
    fn split_aggregate(
        &self,
        stmt: &ast::Statement,
        tables: &[&Table],
        names: &[String],
    ) -> Option<(pushdown::Partial, Vec<DataType>)> {
        let partial = pushdown::partial(stmt, tables, names)?;
        let remote = pushdown::parse_statement(&partial.remote).ok()?;
        let lookup = |name: &str| self.local.table(name);
        let bound = gather::bind(&lookup, &remote, &[]).ok()?;
        let types: Vec<DataType> = bound
            .root
            .columns()
            .into_iter()
            .map(|c| c.data_type)
            .collect();
        (types.len() == partial.width()).then_some((partial, types))
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert(
        &mut self,
        insert: &ast::Insert,
        table: &Table,
        dist: &Distribution,
        contents: &Contents,
        params: &[Value],
        columns: Vec<OutputColumn>,
        types: &[DataType],
    ) -> Result<StatementResult> {
        let stmt = ast::Statement::Insert(insert.clone());
        let Some(insert) = self.routable_insert(insert, table, dist, params).await? else {
            return Ok(dml_result(&stmt, columns, Vec::new(), 0));
        };
        let insert = &insert;
        let values = insert.source.as_ref().and_then(|q| match &*q.body {
            ast::SetExpr::Values(v) => Some(v),
            _ => None,
        });
        // Where each row goes (with its position, for RETURNING in the statement's order).
        let mut per_node: BTreeMap<String, Vec<(usize, Vec<ast::Expr>)>> = BTreeMap::new();
        match (&dist.locator, values) {
            (Locator::Replication, _) => {
                for n in route::write_nodes(dist, &contents.nodes) {
                    per_node.insert(n, Vec::new());
                }
            }
            (locator, None) => {
                // DEFAULT VALUES with no default computed here: one row, on the next node in
                // turn (ROUNDROBIN), or where a NULL distribution value goes.
                let node = match locator.column() {
                    None => self.cluster.next_round_robin(dist),
                    Some(c) => {
                        let p = dist.node_for(&Value::Null, &table.columns[c].data_type)?;
                        dist.nodes[p].clone()
                    }
                };
                per_node.insert(node, vec![(0, Vec::new())]);
            }
            (Locator::RoundRobin, Some(v)) => {
                for (i, row) in v.rows.iter().enumerate() {
                    let node = self.cluster.next_round_robin(dist);
                    per_node
                        .entry(node)
                        .or_default()
                        .push((i, row.content.clone()));
                }
            }
            (locator, Some(v)) => {
                let column = locator.column().unwrap_or(0);
                let position = if insert.columns.is_empty() {
                    Some(column)
                } else {
                    insert
                        .columns
                        .iter()
                        .position(|c| object_name(c).is_ok_and(|c| c == table.columns[column].name))
                };
                for (i, row) in v.rows.iter().enumerate() {
                    let value = route::insert_value(table, column, position, &row.content, params)?;
                    let p = dist.node_for(&value, &table.columns[column].data_type)?;
                    per_node
                        .entry(dist.nodes[p].clone())
                        .or_default()
                        .push((i, row.content.clone()));
                }
            }
        }
        self.statement_context(true, per_node.len() == 1).await?;
        let replicated = dist.locator == Locator::Replication;
        let mut jobs = Vec::new();
        if replicated {
            // In write order: the primary first; every node the same rows (the routable
            // INSERT: its values computed here where they were volatile or read tables).
            let sql = ast::Statement::Insert(insert.clone()).to_string();
            for node in route::write_nodes(dist, &contents.nodes) {
                jobs.push((node, sql.clone()));
            }
        }
        for (node, node_rows) in per_node.iter().filter(|_| !replicated) {
            let sql = {
                let mut part = insert.clone();
                if let Some(q) = &mut part.source {
                    if let ast::SetExpr::Values(v) = &mut *q.body {
                        v.rows = node_rows
                            .iter()
                            .map(|(_, content)| ast::Parens {
                                content: content.clone(),
                                ..v.rows[0].clone()
                            })
                            .collect();
                    }
                }
                ast::Statement::Insert(part).to_string()
            };
            jobs.push((node.clone(), sql));
        }
        let mut answers = Vec::new();
        if replicated {
            // The primary first, alone; every node inserts the same rows: report one.
            answers.push(self.ship_one(&jobs[0].0, &jobs[0].1, true).await?);
            self.ship_all(&jobs[1..], true).await?;
        } else {
            for a in self.ship_all(&jobs, true).await? {
                answers.push(first_answer(a)?);
            }
        }
        let mut count = 0;
        let mut ordered: Vec<(usize, Vec<Value>)> = Vec::new();
        let no_rows = Vec::new();
        let given = per_node.values().chain(std::iter::repeat(&no_rows));
        for (answer, node_rows) in answers.into_iter().zip(given) {
            count += answer.count;
            let rows = remote::parse_rows(answer.rows, types)?;
            // Each node returns its rows in the order it was given them (unless ON CONFLICT
            // skipped some, or the table is replicated: then in node order).
            let exact = !replicated && rows.len() == node_rows.len();
            for (k, row) in rows.into_iter().enumerate() {
                let at = if exact { node_rows[k].0 } else { usize::MAX };
                ordered.push((at, row));
            }
        }
        ordered.sort_by_key(|(at, _)| *at);
        let rows = ordered.into_iter().map(|(_, r)| r).collect();
        Ok(dml_result(&stmt, columns, rows, count))
    }

    /// An INSERT whose rows can be routed: VALUES whose distribution values are constants.
    /// Anything else — a query, VALUES with computed distribution values or subqueries, a
    /// distribution column left to its default (a serial's `nextval`) — is evaluated here
    /// first, once, into VALUES of literals. `None` when the source has no rows.
    async fn routable_insert(
        &mut self,
        insert: &ast::Insert,
        table: &Table,
        dist: &Distribution,
        params: &[Value],
    ) -> Result<Option<ast::Insert>> {
        let Some(source) = &insert.source else {
            // DEFAULT VALUES: the defaults computed here become the row's values (the other
            // columns take their defaults on the datanodes).
            let here = defaults_at_coordinator(table, dist, |_| true)?;
            if here.is_empty() {
                return Ok(Some(insert.clone()));
            }
            let defaults: Vec<&str> = here
                .iter()
                .filter_map(|&c| table.columns[c].default.as_deref())
                .collect();
            let values = values_query(&[format!("({})", defaults.join(", "))])?;
            let mut with_values = insert.clone();
            with_values.columns = here
                .iter()
                .map(|&c| {
                    ast::ObjectName::from(vec![ast::Ident::with_quote(
                        '"',
                        table.columns[c].name.clone(),
                    )])
                })
                .collect();
            with_values.source = Some(values);
            return Box::pin(self.routable_insert(&with_values, table, dist, params)).await;
        };
        let query = ast::Statement::Query(source.clone());
        let plain_values = matches!(&*source.body, ast::SetExpr::Values(_))
            && source.with.is_none()
            && source.order_by.is_none()
            && source.limit_clause.is_none()
            && !has_subquery(&query)
            && !pushdown::calls_volatile(&query)
            && referenced_tables(&query)?.is_empty();
        let column = dist.locator.column();
        let position_of = |c: usize| {
            if insert.columns.is_empty() {
                Some(c)
            } else {
                insert
                    .columns
                    .iter()
                    .position(|n| object_name(n).is_ok_and(|n| n == table.columns[c].name))
            }
        };
        let position = column.and_then(position_of);
        // Columns some row leaves to their default.
        let left_out = |c: usize| match (position_of(c), &*source.body) {
            (None, _) => true,
            (Some(p), ast::SetExpr::Values(v)) => v.rows.iter().any(|r| r.content.len() <= p),
            _ => false,
        };
        let defaults_here = defaults_at_coordinator(table, dist, left_out)?;
        if plain_values && defaults_here.is_empty() {
            let constant = match (column, position, &*source.body) {
                (Some(c), Some(p), ast::SetExpr::Values(v)) => v.rows.iter().all(|r| {
                    r.content.get(p).is_some_and(|e| {
                        route::constant(e, params, &table.columns[c].data_type)
                            .is_ok_and(|v| v.is_some())
                    })
                }),
                _ => true,
            };
            if constant {
                return Ok(Some(insert.clone()));
            }
        }
        // Evaluate the rows here.
        let (types, rows) = self.query_rows(query).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let width = types.len();
        let mut columns: Vec<ast::Ident> = if insert.columns.is_empty() {
            table.columns[..width.min(table.columns.len())]
                .iter()
                .map(|c| ast::Ident::with_quote('"', c.name.clone()))
                .collect()
        } else {
            insert
                .columns
                .iter()
                .map(|n| ast::Ident::with_quote('"', object_name(n).unwrap_or_default()))
                .collect()
        };
        // Text values go as untyped literals: a VALUES list's unknown literals ('2024-01-01'
        // for a date column) take the target column's type, as in PostgreSQL.
        let literal = |v: &Value, t: &DataType| match (t, v.to_text()) {
            (DataType::Text | DataType::Unknown, Some(text)) => {
                ast::Expr::Value(ast::Value::SingleQuotedString(text).into())
            }
            _ => remote::literal_expr(v, t),
        };
        let mut literals: Vec<Vec<ast::Expr>> = rows
            .iter()
            .map(|r| r.iter().zip(&types).map(|(v, t)| literal(v, t)).collect())
            .collect();
        let filled: Vec<&Column> = defaults_here
            .iter()
            .map(|&c| &table.columns[c])
            .filter(|c| !columns.iter().any(|n| n.value == c.name))
            .collect();
        if !filled.is_empty() {
            // The defaults, once per row (each nextval its own value).
            let defaults: Vec<&str> = filled.iter().filter_map(|c| c.default.as_deref()).collect();
            let select = pushdown::parse_statement(&format!("SELECT {}", defaults.join(", ")))?;
            for row in &mut literals {
                let (_, values) = self.query_rows(select.clone()).await?;
                let values = values.into_iter().next().unwrap_or_default();
                for (i, c) in filled.iter().enumerate() {
                    let value = values.get(i).cloned().unwrap_or(Value::Null);
                    row.push(remote::literal_expr(&value, &c.data_type));
                }
            }
            columns.extend(
                filled
                    .iter()
                    .map(|c| ast::Ident::with_quote('"', c.name.clone())),
            );
        }
        let text: Vec<String> = literals
            .iter()
            .map(|r| {
                let items: Vec<String> = r.iter().map(|e| e.to_string()).collect();
                format!("({})", items.join(", "))
            })
            .collect();
        let values = values_query(&text)?;
        let mut routable = insert.clone();
        routable.columns = columns
            .into_iter()
            .map(|i| ast::ObjectName::from(vec![i]))
            .collect();
        routable.source = Some(values);
        Ok(Some(routable))
    }

    /// The rows of a query the coordinator runs (planned and shipped as any client query).
    async fn query_rows(
        &mut self,
        query: ast::Statement,
    ) -> Result<(Vec<DataType>, Vec<Vec<Value>>)> {
        let ast = Arc::new(query);
        let stmt = Statement::Sql(ast.clone());
        self.nesting += 1;
        let result = Box::pin(self.sql(&stmt, &ast, &[], None)).await;
        self.nesting -= 1;
        match result? {
            StatementResult::Rows { columns, rows, .. } => {
                Ok((columns.into_iter().map(|c| c.data_type).collect(), rows))
            }
            _ => Err(SqlError::internal("a query gave no rows")),
        }
    }

    /// A statement the coordinator runs itself, in the transaction.
    async fn local_statement(
        &mut self,
        stmt: &Statement,
        params: &[Value],
        prepared: Option<Prepared>,
        write: bool,
    ) -> Result<StatementResult> {
        self.statement_context(write, false).await?;
        self.run_local(stmt, params, prepared, write).await
    }

    async fn sql(
        &mut self,
        stmt: &Statement,
        ast: &Arc<ast::Statement>,
        params: &[Value],
        prepared: Option<Prepared>,
    ) -> Result<StatementResult> {
        match &**ast {
            ast::Statement::CreateTable(_) => return self.create_table(ast, None, None).await,
            ast::Statement::Drop {
                object_type: ast::ObjectType::Table,
                names,
                ..
            } => {
                let tables = names.iter().map(object_name).collect::<Result<Vec<_>>>()?;
                return self.table_ddl(ast, &tables).await;
            }
            ast::Statement::CreateIndex(ci) => {
                let tables = vec![object_name(&ci.table_name)?];
                return self.table_ddl(ast, &tables).await;
            }
            ast::Statement::AlterTable(at) => {
                let tables = vec![object_name(&at.name)?];
                return self.table_ddl(ast, &tables).await;
            }
            ast::Statement::Truncate(t) => {
                let tables = t
                    .table_names
                    .iter()
                    .map(|n| object_name(&n.name))
                    .collect::<Result<Vec<_>>>()?;
                return self.table_ddl(ast, &tables).await;
            }
            ast::Statement::Drop {
                object_type: ast::ObjectType::Index,
                ..
            } => {
                // The index's table is not named: every datanode that may have it.
                let nodes = self.cluster.catalog.snapshot().datanodes();
                self.ddl_context().await?;
                let mut on_datanodes = (**ast).clone();
                if let ast::Statement::Drop { if_exists, .. } = &mut on_datanodes {
                    *if_exists = true;
                }
                let sql = on_datanodes.to_string();
                let jobs = same_on(&nodes, &sql);
                self.ship_all(&jobs, true).await?;
                self.ddl_on_peers(&ast.to_string()).await?;
                return self.run_local(stmt, &[], None, true).await;
            }
            _ => {}
        }
        if is_dml(ast) {
            let kept = prepared.is_some();
            let contents = self.cluster.catalog.snapshot();
            // An INSERT into a distributed table, whatever its source reads.
            if let ast::Statement::Insert(ast::Insert {
                table: ast::TableObject::TableName(target),
                ..
            }) = &**ast
            {
                let name = object_name(target)?;
                if let (Some(dist), Some(table)) =
                    (contents.classes.get(&name), self.local.table(&name)?)
                {
                    let dist = dist.clone();
                    return self
                        .distributed_dml(stmt, ast, table, dist, params, prepared)
                        .await;
                }
            }
            let tables = self.tables_of(ast, kept)?;
            let mut distributed = Vec::new();
            for t in tables.iter() {
                if let Some(d) = contents.classes.get(t) {
                    if let Some(table) = self.local.table(t)? {
                        distributed.push((table, d.clone()));
                    }
                }
            }
            match distributed.len() {
                0 => {}
                1 if tables.len() == 1 => {
                    let (table, dist) = distributed.remove(0);
                    return self
                        .distributed_dml(stmt, ast, table, dist, params, prepared)
                        .await;
                }
                n if n == tables.len()
                    && matches!(&**ast, ast::Statement::Query(q) if q.locks.is_empty()) =>
                {
                    // Replicated tables only, with a node holding them all: that node has
                    // every row the query reads, so it answers the query whole.
                    if let Some(node) = common_replica(&distributed, &contents) {
                        return self.ship_whole(stmt, ast, &[node], params, prepared).await;
                    }
                    // A co-located join: every node joins its own rows.
                    let pairs: Vec<(&Table, &Distribution)> =
                        distributed.iter().map(|(t, d)| (&**t, d)).collect();
                    let colocated = if self.has_subquery_of(ast, kept) {
                        None
                    } else {
                        pushdown::colocated(ast, &pairs)
                    };
                    if let (Some(nodes), ast::Statement::Query(q)) = (&colocated, &**ast) {
                        if !needs_combining(q) {
                            return self.ship_whole(stmt, ast, nodes, params, prepared).await;
                        }
                    }
                    let param_types = match &prepared {
                        Some(p) => p.param_types.clone(),
                        None => vec![DataType::Unknown; params.len()],
                    };
                    return self
                        .gather(ast, distributed, colocated, params, &param_types)
                        .await;
                }
                _ => {
                    return Err(SqlError::unsupported(
                        "writes naming several tables, or queries joining distributed tables \
                         with the coordinator's own tables, are not supported yet",
                    ))
                }
            }
            let write = !matches!(&**ast, ast::Statement::Query(q) if q.locks.is_empty());
            return self.local_statement(stmt, params, prepared, write).await;
        }
        // Anything else the local node runs as it would on a datanode.
        let write = matches!(&**ast, ast::Statement::Drop { .. });
        self.local_statement(stmt, params, prepared, write).await
    }
}

/// `VALUES row, ...` of rows written as SQL (`(1, 'a')`), as a query.
fn values_query(rows: &[String]) -> Result<Box<ast::Query>> {
    match pushdown::parse_statement(&format!("VALUES {}", rows.join(", ")))? {
        ast::Statement::Query(values) => Ok(values),
        _ => Err(SqlError::internal("VALUES did not parse as a query")),
    }
}

/// The columns an INSERT leaves out (`left_out`) whose defaults it evaluates at the
/// coordinator: the distribution column's (the row's node depends on it), and on a replicated
/// table every volatile one (a serial's `nextval`: every replica must store the same value).
fn defaults_at_coordinator(
    table: &Table,
    dist: &Distribution,
    left_out: impl Fn(usize) -> bool,
) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for (i, c) in table.columns.iter().enumerate() {
        let Some(default) = c.default.as_ref().filter(|_| left_out(i)) else {
            continue;
        };
        let here = if dist.locator.column() == Some(i) {
            true
        } else if dist.locator == Locator::Replication {
            pushdown::calls_volatile(&pushdown::parse_statement(&format!("SELECT {default}"))?)
        } else {
            false
        };
        if here {
            out.push(i);
        }
    }
    Ok(out)
}

/// The jobs of one statement text on each of `nodes` ([`CoordSession::ship_all`]).
fn same_on(nodes: &[String], sql: &str) -> Vec<(String, String)> {
    nodes.iter().map(|n| (n.clone(), sql.to_string())).collect()
}

/// Records shipments in an EXPLAIN's plan (`lines`): the nodes and the remote query text,
/// jobs with the same text on one line; answers each statement with no rows.
fn explain_shipment(
    lines: &mut Vec<String>,
    jobs: &[(String, String)],
    write: bool,
) -> Vec<Vec<Answer>> {
    let mut grouped: Vec<(Vec<&str>, &str)> = Vec::new();
    for (node, sql) in jobs {
        match grouped.iter_mut().find(|(_, s)| *s == sql.as_str()) {
            Some((nodes, _)) => nodes.push(node),
            None => grouped.push((vec![node.as_str()], sql.as_str())),
        }
    }
    let kind = if write {
        "Remote write"
    } else {
        "Remote query"
    };
    for (nodes, sql) in grouped {
        lines.push(format!("{kind} on {}: {sql}", nodes.join(", ")));
    }
    jobs.iter()
        .map(|(_, sql)| {
            let statements = parser::parse(sql).map_or(1, |s| s.len().max(1));
            (0..statements).map(|_| Answer::default()).collect()
        })
        .collect()
}

/// `DISTRIBUTE BY ... TO NODE (...)` of a table, as another coordinator records it.
fn distribute_sql(table: &Table, locator: &Locator, nodes: &[String]) -> String {
    let column = |c: &usize| pushdown::quote(&table.columns[*c].name);
    let by = match locator {
        Locator::Replication => "REPLICATION".to_string(),
        Locator::RoundRobin => "ROUNDROBIN".to_string(),
        Locator::Hash(c) => format!("HASH ({})", column(c)),
        Locator::Modulo(c) => format!("MODULO ({})", column(c)),
    };
    let nodes: Vec<String> = nodes.iter().map(|n| pushdown::quote(n)).collect();
    format!("DISTRIBUTE BY {by} TO NODE ({})", nodes.join(", "))
}

/// The CREATE TABLE a table's datanodes run: serial columns become their integer type with
/// the default the coordinator gave them (`nextval` of the sequence it created at the GTM;
/// sequences are cluster-wide, created once).
fn for_datanodes(create: &ast::Statement, table: &Table) -> Result<ast::Statement> {
    let mut create = create.clone();
    if let ast::Statement::CreateTable(ct) = &mut create {
        for column in &mut ct.columns {
            let ast::DataType::Custom(type_name, _) = &column.data_type else {
                continue;
            };
            let integer = match object_name(type_name)?.as_str() {
                "serial" | "serial4" => ast::DataType::Integer(None),
                "bigserial" | "serial8" => ast::DataType::BigInt(None),
                "smallserial" | "serial2" => ast::DataType::SmallInt(None),
                _ => continue,
            };
            let name = rxc_common::sql::binder::ident_name(&column.name);
            let default = table
                .columns
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.default.clone())
                .ok_or_else(|| {
                    SqlError::internal(format!("serial column {name} has no default"))
                })?;
            column.data_type = integer;
            column.options.push(ast::ColumnOptionDef {
                name: None,
                option: ast::ColumnOption::NotNull,
            });
            column.options.push(ast::ColumnOptionDef {
                name: None,
                option: ast::ColumnOption::Default(pushdown::parse_expr(&default)?),
            });
        }
    }
    Ok(create)
}

/// The node a query over replicated tables only can read whole: one holding every table
/// (its preferred node if it is one), if there is one.
fn common_replica(tables: &[(Arc<Table>, Distribution)], contents: &Contents) -> Option<String> {
    if tables
        .iter()
        .any(|(_, d)| d.locator != Locator::Replication)
    {
        return None;
    }
    let (_, first) = tables.first()?;
    let common: Vec<String> = first
        .nodes
        .iter()
        .filter(|n| tables.iter().all(|(_, d)| d.nodes.contains(n)))
        .cloned()
        .collect();
    let preferred = common
        .iter()
        .find(|n| contents.nodes.get(*n).is_some_and(|d| d.preferred));
    preferred.or(common.first()).cloned()
}

/// The command name of a DML statement, for messages.
fn ast_command(ast: &ast::Statement) -> &'static str {
    match ast {
        ast::Statement::Insert(_) => "INSERT",
        ast::Statement::Update(_) => "UPDATE",
        ast::Statement::Delete(_) => "DELETE",
        _ => "SELECT",
    }
}

/// The answer to a shipped statement (its only one).
fn first_answer(answers: Vec<Answer>) -> Result<Answer> {
    answers
        .into_iter()
        .next()
        .ok_or_else(|| SqlError::internal("a datanode gave no answer"))
}

fn check_one_primary(contents: &Contents, node: &NodeDef) -> Result<()> {
    if node.primary {
        if let Some(other) = contents
            .nodes
            .values()
            .find(|n| n.primary && n.name != node.name)
        {
            return Err(SqlError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!(
                    "PGXC node {}: two nodes cannot be primary ({} is)",
                    node.name, other.name
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a statement the local session handles needs no transaction (SET, SHOW, ...).
fn is_utility(ast: &ast::Statement) -> bool {
    matches!(
        ast,
        ast::Statement::Set(_)
            | ast::Statement::ShowVariable { .. }
            | ast::Statement::ShowVariables { .. }
            | ast::Statement::Discard { .. }
    )
}

impl CoordSession {
    /// Whether `stmt` names a distributed table.
    fn names_distributed(&self, stmt: &ast::Statement) -> bool {
        let contents = self.cluster.catalog.snapshot();
        referenced_tables(stmt).is_ok_and(|tables| {
            tables.iter().any(|t| {
                contents.classes.contains_key(t) && self.local.table(t).ok().flatten().is_some()
            })
        })
    }

    /// A failed statement fails the transaction block it ran in (until ROLLBACK).
    async fn fail_block_on<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() && self.in_block() {
            self.fail_block().await;
        }
        result
    }

    /// Fails the transaction block: as in PostgreSQL, the transaction is rolled back at once
    /// on every participant (its row locks released: a deadlock victim frees the rows the
    /// others wait for), and the block stays failed, ignoring statements until it ends.
    async fn fail_block(&mut self) {
        let Some(isolation) = self.txn.as_ref().map(|t| t.isolation) else {
            return;
        };
        if self.txn.as_ref().is_some_and(|t| t.failed) {
            // Rolled back already (end_statement fails the block, execute checks again).
            return;
        }
        if let Err(e) = self.finish(false).await {
            tracing::debug!(error = %e, "rolling back a failed block");
        }
        let mut failed = Txn::new(true, isolation);
        failed.failed = true;
        self.txn = Some(failed);
    }

    async fn execute_statement(
        &mut self,
        stmt: &Statement,
        params: &[Value],
        prepared: Option<Prepared>,
    ) -> Result<StatementResult> {
        match stmt {
            Statement::Sql(s) => match &**s {
                ast::Statement::StartTransaction { modes, .. } => {
                    let isolation = match isolation_from_modes(modes)? {
                        Some(i) => i,
                        None => self.local.default_isolation()?,
                    };
                    match &mut self.txn {
                        Some(t) if t.explicit => {}
                        _ => self.txn = Some(Txn::new(true, isolation)),
                    }
                    return Ok(StatementResult::Begin);
                }
                ast::Statement::Commit { .. } => {
                    let failed = self.txn.as_ref().is_some_and(|t| t.failed);
                    self.finish(true).await?;
                    let tag = if failed { "ROLLBACK" } else { "COMMIT" };
                    return Ok(StatementResult::End(tag.into()));
                }
                ast::Statement::Rollback {
                    savepoint: None, ..
                } => {
                    self.finish(false).await?;
                    return Ok(StatementResult::End("ROLLBACK".into()));
                }
                _ => {}
            },
            Statement::PrepareTransaction(_)
            | Statement::CommitPrepared(_)
            | Statement::RollbackPrepared(_) => {
                return Err(SqlError::unsupported(
                    "explicit two-phase commit on a coordinator is not supported yet \
                     (the coordinator runs two-phase commit itself for multi-node transactions)",
                ))
            }
            _ => {}
        }
        if self.txn.as_ref().is_some_and(|t| t.failed) {
            return Err(SqlError::new(
                sqlstate::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        // Node DDL, the pool's functions and EXECUTE DIRECT are a superuser's, as in
        // Postgres-XC.
        match stmt {
            Statement::CreateNode { .. }
            | Statement::AlterNode { .. }
            | Statement::DropNode { .. }
            | Statement::CreateNodeGroup { .. }
            | Statement::DropNodeGroup { .. }
            | Statement::CleanConnection { .. }
            | Statement::ExecuteDirect { .. } => {
                self.require_superuser(&format!("use {}", stmt.command_name()))?
            }
            Statement::Sql(ast) if is_function_call(ast, "pgxc_pool_reload") => {
                self.require_superuser("call pgxc_pool_reload()")?
            }
            _ => {}
        }
        match stmt {
            Statement::CreateNode { name, options } => self.create_node(name, options),
            Statement::AlterNode { name, options } => self.alter_node(name, options),
            Statement::DropNode { name, if_exists } => self.drop_node(name, *if_exists),
            Statement::CreateNodeGroup { name, nodes } => self.create_node_group(name, nodes),
            Statement::DropNodeGroup { name, if_exists } => self.drop_node_group(name, *if_exists),
            Statement::CleanConnection { nodes, .. } => {
                self.cluster.pool.clean(nodes.as_deref());
                Ok(command("CLEAN CONNECTION"))
            }
            Statement::ExecuteDirect { nodes, query } => self.execute_direct(nodes, query).await,
            Statement::CreateRole { .. }
            | Statement::AlterRole { .. }
            | Statement::DropRole { .. } => {
                let result = self.role_ddl(stmt).await;
                self.end_statement(result).await
            }
            Statement::TransactionContext(_) | Statement::BreakDeadlock(_) => Err(SqlError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                format!(
                    "{} is for a coordinator's connections to datanodes",
                    stmt.command_name()
                ),
            )),
            Statement::Copy(copy) => self.start_copy(stmt, copy).await,
            Statement::Maintenance { .. } => self.local.execute(stmt, params, prepared).await,
            // Sequences live at the GTM: the local session changes them for the cluster.
            Statement::CreateSequence { .. } => {
                let result = self.local_statement(stmt, params, prepared, true).await;
                self.end_statement(result).await
            }
            Statement::AlterSequence { .. } => {
                let result = self.local_statement(stmt, params, prepared, false).await;
                self.end_statement(result).await
            }
            Statement::CreateTable {
                create,
                distribute,
                to,
            } => {
                let result = self
                    .create_table(create, distribute.as_ref(), to.as_ref())
                    .await;
                self.end_statement(result).await
            }
            Statement::Sql(ast) if is_function_call(ast, "pgxc_pool_reload") => self.pool_reload(),
            Statement::Sql(ast) if is_function_call(ast, "pgxc_pool_check") => {
                Ok(self.pool_check())
            }
            Statement::Sql(ast) if matches!(&**ast, ast::Statement::Explain { .. }) => {
                let ast::Statement::Explain {
                    statement, analyze, ..
                } = &**ast
                else {
                    return Err(SqlError::internal("not an EXPLAIN"));
                };
                let result = if self.names_distributed(statement) {
                    self.explain_distributed(statement, *analyze).await
                } else {
                    self.local_statement(stmt, params, prepared, false).await
                };
                self.end_statement(result).await
            }
            Statement::Sql(ast) if is_utility(ast) => {
                self.local.execute(stmt, params, prepared).await
            }
            Statement::Sql(ast) => {
                let result = self.sql(stmt, ast, params, prepared).await;
                self.end_statement(result).await
            }
            _ => Err(SqlError::internal("unexpected statement")),
        }
    }
}

#[async_trait]
impl Backend for CoordSession {
    type Shared = Cluster;

    fn new(cluster: &Arc<Cluster>) -> CoordSession {
        CoordSession::new(cluster.clone())
    }

    async fn describe(
        &mut self,
        stmt: &Statement,
        prepared: &Prepared,
    ) -> Result<(Vec<DataType>, Vec<OutputColumn>)> {
        match stmt {
            Statement::ExecuteDirect { .. } => Ok((prepared.param_types.clone(), vec![])),
            Statement::Sql(ast) if is_function_call(ast, "pgxc_pool_reload") => {
                Ok((vec![], vec![bool_column("pgxc_pool_reload")]))
            }
            Statement::Sql(ast) if is_function_call(ast, "pgxc_pool_check") => {
                Ok((vec![], vec![bool_column("pgxc_pool_check")]))
            }
            _ if self.peer => self.local.describe(stmt, prepared).await,
            _ => {
                let described = self.local.describe(stmt, prepared).await;
                self.fail_block_on(described).await
            }
        }
    }

    async fn execute(
        &mut self,
        stmt: &Statement,
        params: &[Value],
        prepared: Option<Prepared>,
    ) -> Result<StatementResult> {
        if self.peer {
            return self.peer_statement(stmt, params, prepared).await;
        }
        let result = self.execute_statement(stmt, params, prepared).await;
        let ends = matches!(stmt, Statement::Sql(s) if matches!(&**s,
            ast::Statement::Commit { .. } | ast::Statement::Rollback { .. }));
        if ends {
            result
        } else {
            self.fail_block_on(result).await
        }
    }

    async fn copy_data(&mut self, data: &[u8]) {
        match &mut self.copy_in {
            Some(copy) => {
                if copy.feed(data) {
                    self.copy_batch().await;
                }
            }
            None => self.local.copy_data(data).await,
        }
    }

    async fn copy_done(&mut self) -> Result<StatementResult> {
        let Some(copy) = &mut self.copy_in else {
            return self.local.copy_done().await;
        };
        copy.finish();
        self.copy_batch().await;
        let copy = self
            .copy_in
            .take()
            .ok_or_else(|| SqlError::internal("no COPY in progress"))?;
        let result = match copy.error {
            Some(e) => Err(e),
            None => Ok(StatementResult::Command(format!("COPY {}", copy.rows))),
        };
        self.end_statement(result).await
    }

    async fn copy_fail(&mut self, message: &str) -> SqlError {
        if self.copy_in.take().is_none() {
            return self.local.copy_fail(message).await;
        }
        let e = SqlError::new(
            sqlstate::QUERY_CANCELED,
            format!("COPY from stdin failed: {message}"),
        );
        let failed = self.end_statement::<()>(Err(e.clone())).await;
        failed.err().unwrap_or(e)
    }

    async fn close(&mut self) {
        let _ = self.finish(false).await;
        self.local.close().await;
        let _ = self.cluster.gtm().end_session(self.gtm_session).await;
    }

    fn register_cancel_key(&mut self, pid: i32, secret: Vec<u8>) {
        self.pid = Some(pid);
        self.local.register_cancel_key(pid, secret)
    }

    fn set_user(&mut self, user: &str) {
        self.local.set_user(user)
    }

    fn is_internal(&self) -> bool {
        self.peer
    }

    fn apply_startup_options(&mut self, options: &str) -> Result<()> {
        // `rxc.remotetype=coordinator` marks another coordinator's connection (a peer);
        // the local storage takes its context from statements either way.
        self.local.set_from_coordinator(false);
        let applied = self.local.apply_startup_options(options);
        self.peer = self.local.is_from_coordinator();
        self.local.set_from_coordinator(true);
        applied
    }
}
