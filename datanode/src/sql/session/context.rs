//! Transaction context from a coordinator.
//!
//! A coordinator connects to a datanode with the startup option
//! `-c rxc.remotetype=coordinator` (as Postgres-XC's pooler sets `remotetype`). On such a
//! connection the datanode never asks the GTM for GXIDs or snapshots and never reports commits
//! to it: the coordinator owns the transaction. It sends the context with the statement it
//! applies to, in the same round trip — in the same simple Query string
//! (`SET TRANSACTION CONTEXT (...); UPDATE ...`) or as a Query message pipelined before the
//! statement's Parse/Bind/Execute:
//!
//! ```sql
//! SET TRANSACTION CONTEXT (GXID 1234, SNAPSHOT '1200:1240:1201,1233', GLOBAL_XMIN 1100)
//! ```
//!
//! `SNAPSHOT` is PostgreSQL's `pg_current_snapshot()` text form; `GXID` is present once the
//! transaction has one (the coordinator takes it at the first write); `GLOBAL_XMIN` defaults to
//! the snapshot's xmin. The context applies to the next statement and stays in force for the
//! rest of its transaction until another arrives: READ COMMITTED sends one per statement,
//! REPEATABLE READ one per transaction. A transaction's first statement without a context, or
//! a write without a GXID, is refused (08P01). The isolation level comes with
//! `BEGIN ISOLATION LEVEL ...`.
//!
//! `SNAPSHOT LATEST` (READ COMMITTED only) leaves the statement's snapshot to the datanode: it
//! begins with the newest GTM snapshot the node has seen — from any coordinator's context or
//! its own fetches — and asks the GTM for one only when a decision needs it, as the node's own
//! clients' statements do (`Transaction::defer_snapshot`). A coordinator sends it for a
//! statement that reaches this node alone: one node's rows need no snapshot shared with other
//! nodes, and a one-row statement then costs no GTM round trip at all. It applies to that
//! statement only, so it comes with every statement that uses it.
//!
//! Ending a transaction is the coordinator's too: `COMMIT` commits locally (after the
//! transactions this one must follow are finished at the GTM, see `commit_after` in the MVCC
//! layer), `PREPARE TRANSACTION` / `COMMIT PREPARED` / `ROLLBACK PREPARED` act locally; the
//! coordinator logs 2PC decisions and reports commits to the GTM once every participant is
//! done, which is what makes a multi-node commit visible everywhere at once.

use super::{gtm_error, Session, StatementResult, Txn};
use rxc_common::sql::error::{sqlstate, Result, SqlError};
use rxc_common::sql::parser::{GenericOption, OptionValue};
use rxc_common::txn::{Gxid, Isolation, Snapshot};

/// A context a coordinator sent, for the next statement.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct CoordinatorContext {
    pub gxid: Option<Gxid>,
    /// `None`: `SNAPSHOT LATEST`.
    pub snapshot: Option<Snapshot>,
}

fn protocol_error(message: impl Into<String>) -> SqlError {
    SqlError::new(sqlstate::PROTOCOL_VIOLATION, message)
}

fn number(option: &GenericOption) -> Result<u64> {
    match &option.value {
        OptionValue::Text(t) => t.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| SqlError::syntax(format!("{} requires a GXID number", option.name)))
}

/// Reads the options of `SET TRANSACTION CONTEXT`.
fn parse_context(options: &[GenericOption]) -> Result<CoordinatorContext> {
    let mut gxid = None;
    let mut snapshot = None;
    let mut global_xmin = None;
    for o in options {
        match o.name.as_str() {
            "gxid" => gxid = Some(Gxid(number(o)?)),
            "global_xmin" => global_xmin = Some(Gxid(number(o)?)),
            "snapshot" => match &o.value {
                OptionValue::Text(t) => snapshot = Some(t.clone()),
                _ => return Err(SqlError::syntax("SNAPSHOT requires a string value")),
            },
            other => {
                return Err(SqlError::syntax(format!(
                    "transaction context option \"{other}\" not recognized"
                )))
            }
        }
    }
    let text =
        snapshot.ok_or_else(|| SqlError::syntax("SET TRANSACTION CONTEXT needs a SNAPSHOT"))?;
    if text.eq_ignore_ascii_case("latest") {
        if global_xmin.is_some() {
            return Err(SqlError::syntax("GLOBAL_XMIN needs a SNAPSHOT, not LATEST"));
        }
        return Ok(CoordinatorContext {
            gxid,
            snapshot: None,
        });
    }
    let xmin_of = |t: &str| t.split(':').next().and_then(|x| x.parse().ok()).map(Gxid);
    let global_xmin = global_xmin.or_else(|| xmin_of(&text)).unwrap_or_default();
    let snapshot = Snapshot::from_text(&text, global_xmin).ok_or_else(|| {
        SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("invalid snapshot \"{text}\" (global_xmin {global_xmin})"),
        )
    })?;
    if let Some(g) = gxid {
        if snapshot.is_finished(g) {
            return Err(SqlError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("GXID {g} is not running in snapshot \"{text}\""),
            ));
        }
    }
    Ok(CoordinatorContext {
        gxid,
        snapshot: Some(snapshot),
    })
}

impl Session {
    /// `SET TRANSACTION CONTEXT (...)`: only a coordinator's connection may send it.
    pub(super) fn set_context(&mut self, options: &[GenericOption]) -> Result<StatementResult> {
        if !self.from_coordinator {
            return Err(SqlError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                "SET TRANSACTION CONTEXT is accepted only on a coordinator's connection \
                 (startup option -c rxc.remotetype=coordinator)",
            ));
        }
        self.pending_context = Some(parse_context(options)?);
        Ok(StatementResult::Command("SET".into()))
    }

    /// `BREAK DEADLOCK gxid`: only a coordinator's connection may send it (its deadlock
    /// detector); a transaction that is not waiting here is left alone.
    pub(super) fn break_deadlock(&mut self, gxid: u64) -> Result<StatementResult> {
        if !self.from_coordinator {
            return Err(SqlError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                "BREAK DEADLOCK is accepted only on a coordinator's connection \
                 (startup option -c rxc.remotetype=coordinator)",
            ));
        }
        let broken = self.node.mvcc.locks().break_wait(Gxid(gxid));
        if broken {
            tracing::info!(gxid, "lock wait ended to break a deadlock across datanodes");
        }
        Ok(StatementResult::Command("BREAK DEADLOCK".into()))
    }

    /// Opens the statement's transaction state from the coordinator's context (no GTM
    /// round trip): a writer from its GXID, a reader from its snapshot. With `SNAPSHOT
    /// LATEST` the statement begins deferred, with the node's newest snapshot (fetched now
    /// only if the node has none yet).
    pub(super) async fn apply_coordinator_context(&mut self, write: bool) -> Result<()> {
        let pending = self.pending_context.take();
        let isolation = self.default_isolation()?;
        let mvcc = self.node.mvcc.clone();
        let latest = matches!(&pending, Some(c) if c.snapshot.is_none());
        let txn_isolation = self.txn.as_ref().map_or(isolation, |t| t.isolation);
        if latest && txn_isolation != Isolation::ReadCommitted {
            return Err(protocol_error(
                "SNAPSHOT LATEST is for READ COMMITTED transactions only",
            ));
        }
        let pending = match pending {
            Some(CoordinatorContext {
                gxid,
                snapshot: None,
            }) => {
                let newest = self.node.snapshots.newest();
                let stale = match newest {
                    Some(s) => s,
                    None => {
                        let gtm = self.gtm_client();
                        self.node.snapshots.get(&gtm).await.map_err(gtm_error)?
                    }
                };
                Some((gxid, stale))
            }
            Some(CoordinatorContext {
                gxid,
                snapshot: Some(snapshot),
            }) => {
                // Any GTM snapshot predates what begins after it arrived here.
                self.node.snapshots.note(&snapshot);
                Some((gxid, snapshot))
            }
            None => None,
        };
        let txn = self.txn.get_or_insert_with(|| Txn::new(false, isolation));
        match pending {
            Some((gxid, snapshot)) => match (gxid, txn.gxid) {
                (Some(g), None) => {
                    txn.gxid = Some(g);
                    txn.mvcc = Some(mvcc.begin(g, snapshot, txn.isolation));
                }
                (Some(g), Some(h)) if g != h => {
                    return Err(protocol_error(format!(
                        "transaction context names GXID {g}, but this transaction is GXID {h}"
                    )))
                }
                (_, Some(_)) => match &mut txn.mvcc {
                    Some(m) => m
                        .set_snapshot(snapshot)
                        .map_err(crate::sql::table::mvcc_error)?,
                    None => return Err(SqlError::internal("writer without MVCC transaction")),
                },
                (None, None) => txn.mvcc = Some(mvcc.read_only(snapshot)),
            },
            None if txn.mvcc.is_none() => {
                return Err(protocol_error(
                    "no transaction context: a coordinator sends SET TRANSACTION CONTEXT \
                     before a transaction's first statement",
                ))
            }
            None => {}
        }
        if write && txn.gxid.is_none() {
            return Err(protocol_error(
                "a write needs a GXID in its transaction context",
            ));
        }
        if latest {
            let m = txn
                .mvcc
                .as_mut()
                .ok_or_else(|| SqlError::internal("no MVCC transaction"))?;
            m.defer(self.snapshot_fetch.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(name: &str, value: &str) -> GenericOption {
        GenericOption {
            name: name.into(),
            value: OptionValue::Text(value.into()),
        }
    }

    #[test]
    fn context_options_are_checked() {
        let c = parse_context(&[option("gxid", "15"), option("snapshot", "10:20:12,15")]).unwrap();
        assert_eq!(c.gxid, Some(Gxid(15)));
        let snapshot = c.snapshot.unwrap();
        assert_eq!(snapshot.global_xmin, Gxid(10));
        assert_eq!(snapshot.xip, vec![Gxid(12), Gxid(15)]);
        let c = parse_context(&[option("snapshot", "10:20:"), option("global_xmin", "8")]).unwrap();
        assert_eq!(
            (c.gxid, c.snapshot.map(|s| s.global_xmin)),
            (None, Some(Gxid(8)))
        );
        let c = parse_context(&[option("gxid", "15"), option("snapshot", "latest")]).unwrap();
        assert_eq!((c.gxid, c.snapshot), (Some(Gxid(15)), None));
        for (options, code) in [
            (vec![option("gxid", "15")], "42601"),
            (
                vec![option("snapshot", "10:20:"), option("bogus", "1")],
                "42601",
            ),
            (vec![option("snapshot", "20:10:")], "22023"),
            (
                vec![option("snapshot", "latest"), option("global_xmin", "8")],
                "42601",
            ),
            (
                vec![option("gxid", "9"), option("snapshot", "10:20:")],
                "22023",
            ),
            (
                vec![option("gxid", "x"), option("snapshot", "10:20:")],
                "42601",
            ),
        ] {
            assert_eq!(
                parse_context(&options).unwrap_err().code,
                code,
                "{options:?}"
            );
        }
    }
}
