//! Two-phase commit on the datanode: `PREPARE TRANSACTION 'gid'` registers the GID at the GTM,
//! records `gid/<gid> → gxid` in `meta` and makes the transaction's writes and locks durable;
//! `COMMIT PREPARED` / `ROLLBACK PREPARED` finish it, also after a restart.

use super::{gtm_error, Session, StatementResult};
use crate::session_thread::blocking;
use crate::sql::table::mvcc_error;
use crate::sql::{catalog, system};
use crate::storage::keys::Key;
use crate::storage::{Cf, WriteBatch};
use rxc_common::sql::error::{sqlstate, Result, SqlError};

impl Session {
    pub(super) async fn prepare_transaction(&mut self, gid: &str) -> Result<StatementResult> {
        if !self.in_transaction_block() {
            return Err(SqlError::new(
                sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                "PREPARE TRANSACTION can only be used in transaction blocks",
            ));
        }
        if self.in_failed_block() {
            self.finish(false).await?;
            return Ok(StatementResult::End("ROLLBACK".into()));
        }
        let Some(mut txn) = self.txn.take() else {
            return Ok(StatementResult::End("ROLLBACK".into()));
        };
        let sequences = std::mem::take(&mut txn.sequences);
        if !sequences.is_empty() {
            self.node
                .prepared_sequences
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(gid.to_string(), sequences);
        }
        let (Some(gxid), Some(m)) = (txn.gxid, txn.mvcc) else {
            // Nothing written: nothing to keep.
            return Ok(StatementResult::End("PREPARE TRANSACTION".into()));
        };
        let key = gid_key(gid);
        if self
            .node
            .mvcc
            .engine()
            .get(Cf::Meta, &key)
            .map_err(catalog::storage_error)?
            .is_some()
        {
            let _ = blocking(move || m.abort()).await;
            let _ = self.report_to_gtm(gxid, false).await;
            return Err(SqlError::new(
                sqlstate::DUPLICATE_PREPARED_TRANSACTION,
                format!("transaction identifier \"{gid}\" is already in use"),
            ));
        }
        // Register at the GTM first, so the GXID outlives this session there (a coordinator
        // registers its transactions itself, with all their participants).
        if !self.from_coordinator {
            self.node
                .gtm
                .prepare(gxid, gid, vec![self.node.name.clone()], &self.node.name)
                .await
                .map_err(gtm_error)?;
        }
        let gid_owned = gid.to_string();
        blocking(move || -> Result<()> {
            // The GID's entry and the status `Prepared` in one synced batch.
            let mut batch = WriteBatch::new();
            let entry = system::encode_gid_entry(gxid, chrono::Utc::now());
            batch.put(Cf::Meta, gid_key(&gid_owned), entry);
            m.prepare_with(batch).map_err(mvcc_error)
        })
        .await
        .map_err(|e| SqlError::internal(format!("prepare task failed: {e}")))??;
        Ok(StatementResult::End("PREPARE TRANSACTION".into()))
    }

    pub(super) async fn finish_prepared(
        &mut self,
        gid: &str,
        commit: bool,
    ) -> Result<StatementResult> {
        if self.in_transaction_block() {
            let what = if commit { "COMMIT" } else { "ROLLBACK" };
            return Err(SqlError::new(
                sqlstate::ACTIVE_SQL_TRANSACTION,
                format!("{what} PREPARED cannot run inside a transaction block"),
            ));
        }
        let tag = StatementResult::Command(if commit {
            "COMMIT PREPARED".into()
        } else {
            "ROLLBACK PREPARED".into()
        });
        let sequences = self
            .node
            .prepared_sequences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(gid);
        let key = gid_key(gid);
        let engine = self.node.mvcc.engine().clone();
        let entry = engine.get(Cf::Meta, &key).map_err(catalog::storage_error)?;
        let gxid = match entry.as_deref().and_then(system::decode_gid_entry) {
            Some((gxid, _)) => gxid,
            None => {
                let Some(sequences) = sequences else {
                    return Err(SqlError::new(
                        sqlstate::UNDEFINED_OBJECT,
                        format!("prepared transaction with identifier \"{gid}\" does not exist"),
                    ));
                };
                // It changed sequences only: nothing was kept here but those changes.
                sequences.settle(&self.node, commit).await;
                return Ok(tag);
            }
        };
        let mvcc = self.node.mvcc.clone();
        blocking(move || -> Result<()> {
            // The outcome and the GID entry's removal in one synced batch.
            let mut batch = WriteBatch::new();
            batch.delete(Cf::Meta, key);
            mvcc.finish_prepared(gxid, commit, batch)
                .map_err(mvcc_error)
        })
        .await
        .map_err(|e| SqlError::internal(format!("task failed: {e}")))??;
        // A prepared transaction may have changed the catalog and the roles.
        self.node.catalog.invalidate();
        if commit {
            self.node.roles.load(&self.node.mvcc)?;
        }
        if let Some(s) = sequences {
            s.settle(&self.node, commit).await;
        }
        if !self.from_coordinator {
            let gtm = self.gtm_client();
            let _ = gtm.decide(gid, commit).await;
            self.report_to_gtm(gxid, commit).await?;
            let _ = gtm.forget(gid).await;
        }
        Ok(tag)
    }
}

fn gid_key(gid: &str) -> Vec<u8> {
    Key::Meta {
        name: system::gid_entry_name(gid),
    }
    .encode()
}
