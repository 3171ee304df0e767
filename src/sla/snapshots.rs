//! Keeps the stored SLA snapshots in step with the cases.
//!
//! The engine's result does not depend on the current time, so it only has
//! to be redone when a case changes: a mail filed, a status changed, an
//! owner assigned. This follows the event log with a cursor, like the
//! drafting stage, and redoes everything when the policy changes (the
//! config's `[sla]`, the time zone, a holiday file, or a desk account's
//! address, which changes whose mail is whose).

use std::sync::Arc;

use anyhow::Result;
use tokio::sync::Mutex;

use super::{SlaPolicies, evaluate};
use crate::store::Store;

const CURSOR: &str = "sla";
const FINGERPRINT_KEY: &str = "sla_fingerprint";

/// The SLA stage: shared by the daemon's loop and the web desk's pages.
#[derive(Debug)]
pub struct SlaSnapshots {
    store: Store,
    policies: Arc<SlaPolicies>,
    fingerprint: String,
    /// One refresh at a time in this process; others wait and find nothing left to do.
    running: Mutex<()>,
}

impl SlaSnapshots {
    pub fn new(store: Store, policies: Arc<SlaPolicies>) -> Self {
        let fingerprint = crate::ingest::parse::sha256_hex(format!("{policies:?}").as_bytes());
        Self {
            store,
            policies,
            fingerprint,
            running: Mutex::new(()),
        }
    }

    pub fn policies(&self) -> &Arc<SlaPolicies> {
        &self.policies
    }

    /// Makes every recomputation happen on the next refresh (after a desk
    /// account's address changed).
    pub async fn invalidate(store: &Store) -> Result<()> {
        store.set_setting(FINGERPRINT_KEY, "").await
    }

    /// Redoes the snapshots of the cases that changed; returns how many.
    pub async fn refresh(&self) -> Result<usize> {
        let _one_at_a_time = self.running.lock().await;
        let stored = self.store.setting(FINGERPRINT_KEY).await?;
        let everything = stored.as_deref() != Some(self.fingerprint.as_str());
        let cursor = if everything {
            0
        } else {
            self.store.cursor(CURSOR).await?
        };
        let (changed, newest) = self.store.sla_changes_since(cursor).await?;
        if !everything && changed.is_empty() {
            return Ok(0);
        }
        let timelines = if everything {
            self.store.sla_timelines(None).await?
        } else {
            self.store.sla_timelines(Some(&changed)).await?
        };
        let evaluated: Vec<_> = timelines
            .iter()
            .filter_map(|t| evaluate(t, &self.policies, None))
            .collect();
        let measured: std::collections::HashSet<i64> =
            evaluated.iter().map(|s| s.case_row).collect();
        let gone: Vec<i64> = if everything {
            self.store.sla_snapshot_rows().await?
        } else {
            changed
        }
        .into_iter()
        .filter(|row| !measured.contains(row))
        .collect();
        self.store
            .save_sla(&evaluated, &gone, &self.fingerprint)
            .await?;
        self.store.set_cursor(CURSOR, newest).await?;
        if everything {
            self.store
                .set_setting(FINGERPRINT_KEY, &self.fingerprint)
                .await?;
        }
        Ok(evaluated.len())
    }
}
