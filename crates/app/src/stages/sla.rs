//! Keeps the stored SLA snapshots in step with the cases.
//!
//! The engine's result does not depend on the current time, so it only has
//! to be redone when a case changes: a mail filed, a status changed, an
//! owner assigned. This follows the event log with a cursor, like the
//! drafting stage, and redoes everything when the policy changes (the
//! config's `[sla]`, the time zone, a holiday file, or a desk account's
//! address, which changes whose mail is whose).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use anyhow::Result;
use tokio::sync::Mutex;

use casebot_core::domain::CaseStatus;
use casebot_core::sla::{CaseSla, SlaPolicies, evaluate};
use casebot_store::Store;

const CURSOR: &str = "sla";
const FINGERPRINT_KEY: &str = "sla_fingerprint";

/// How far into the event log this process's open snapshots are current.
#[derive(Debug, Default)]
struct Known {
    loaded: bool,
    cursor: i64,
}

/// The SLA stage: shared by the daemon's loop and the web desk's pages.
///
/// Besides the stored snapshots it keeps the open cases' snapshots in
/// memory, so a board of thousands of open cases is computed without
/// reading and decoding them from the store on every request. The memory
/// follows the event log with its own cursor, so it stays right when
/// another process (another instance, a command) changed cases.
#[derive(Debug)]
pub struct SlaSnapshots {
    store: Store,
    policies: Arc<SlaPolicies>,
    fingerprint: String,
    /// One refresh at a time in this process; others wait and find nothing left to do.
    running: Mutex<Known>,
    open: RwLock<Arc<HashMap<i64, CaseSla>>>,
}

impl SlaSnapshots {
    pub fn new(store: Store, policies: Arc<SlaPolicies>) -> Self {
        let fingerprint = casebot_core::domain::sha256_hex(format!("{policies:?}").as_bytes());
        Self {
            store,
            policies,
            fingerprint,
            running: Mutex::new(Known::default()),
            open: RwLock::new(Arc::default()),
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

    /// The open cases' snapshots as of the last refresh.
    pub fn open(&self) -> Arc<HashMap<i64, CaseSla>> {
        self.open.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Redoes the snapshots of the cases that changed; returns how many.
    pub async fn refresh(&self) -> Result<usize> {
        let mut known = self.running.lock().await;
        let stored = self.store.setting(FINGERPRINT_KEY).await?;
        let everything = stored.as_deref() != Some(self.fingerprint.as_str());
        if !everything && !known.loaded {
            // Another start already evaluated everything under this policy.
            known.cursor = self.store.cursor(CURSOR).await?;
            let open = self.store.open_sla_snapshots().await?;
            self.publish(open.into_iter().map(|s| (s.case_row, s)).collect());
            known.loaded = true;
        }
        let cursor = if everything { 0 } else { known.cursor };
        let (changed, newest) = self.store.sla_changes_since(cursor).await?;
        if !everything && changed.is_empty() {
            known.cursor = newest;
            return Ok(0);
        }
        let timelines = if everything {
            self.store.sla_timelines(None).await?
        } else {
            self.store.sla_timelines(Some(&changed)).await?
        };
        let evaluated: Vec<CaseSla> = timelines
            .iter()
            .filter_map(|t| evaluate(t, &self.policies, None))
            .collect();
        let measured: HashSet<i64> = evaluated.iter().map(|s| s.case_row).collect();
        let touched: Vec<i64> = if everything {
            self.store.sla_snapshot_rows().await?
        } else {
            changed
        };
        let gone: Vec<i64> = touched
            .iter()
            .copied()
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
        let mut open: HashMap<i64, CaseSla> = if everything {
            HashMap::new()
        } else {
            (*self.open()).clone()
        };
        for row in touched.iter().chain(&measured) {
            open.remove(row);
        }
        let count = evaluated.len();
        open.extend(
            evaluated
                .into_iter()
                .filter(|s| !matches!(s.status, CaseStatus::Resolved | CaseStatus::Archived))
                .map(|s| (s.case_row, s)),
        );
        self.publish(open);
        known.cursor = newest;
        known.loaded = true;
        Ok(count)
    }

    fn publish(&self, open: HashMap<i64, CaseSla>) {
        *self.open.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(open);
    }
}
