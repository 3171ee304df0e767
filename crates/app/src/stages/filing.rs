//! Ingest: raw mail in, filed messages out.
//!
//! ```text
//! RawMail ─► parse (pure, parallel) ─► thread decision (pure) ─► store (one transaction per batch)
//!                └─ Rejection ───────────────────────────────────► quarantine
//! ```
//!
//! The same [`Pipeline`] serves `casebot import`, the daemon and quarantine
//! replay, so a backfill leaves the store exactly as watching would have.
//! Batches amortise transaction cost; if anything in a batch fails in the
//! store, the batch is rolled back and replayed one mail per transaction so a
//! single bad mail is quarantined and never blocks the others.

use std::sync::Arc;

use anyhow::{Context, Result};
use futures_util::future::BoxFuture;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::config::Config;
use crate::mailbox::{Filer, RawMail, ReadResult};
use casebot_core::domain::{Source, sha256_hex};
use casebot_core::mail::filing::{self, Incoming};
use casebot_core::mail::parse::{MailParser, ParsedMail, Rejection};
use casebot_store::{Store, messages, quarantine};

pub use crate::mailbox::Report;
pub use casebot_core::mail::filing::Status;

/// Totals of a run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub imported: u64,
    pub duplicate: u64,
    pub quarantined: u64,
    pub failed: u64,
}

impl Counts {
    pub fn add(&mut self, status: Status) {
        match status {
            Status::Imported => self.imported += 1,
            Status::Duplicate => self.duplicate += 1,
            Status::Quarantined => self.quarantined += 1,
            Status::Failed => self.failed += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.imported + self.duplicate + self.quarantined + self.failed
    }
}

/// A mail after the parse stage.
pub struct Prepared {
    raw: RawMail,
    sha256: String,
    parsed: Result<ParsedMail, Rejection>,
}

/// The ingest pipeline; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    store: Store,
    parser: Arc<MailParser>,
}

/// Mails per store transaction.
pub const BATCH: usize = 256;

impl Pipeline {
    pub fn new(store: Store, config: Arc<Config>) -> Result<Self> {
        Ok(Self {
            store,
            parser: Arc::new(MailParser::new(
                &config.desk,
                &config.grammar,
                &config.ingest,
            )?),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Parses one mail (CPU only).
    pub fn prepare(&self, raw: RawMail) -> Prepared {
        let (parsed, sha256) = match raw.oversize {
            // Not parsed; kept by its head, its size and where it is, so
            // two large mails with the same head are two entries.
            Some(size) => {
                let mut key = raw.bytes.clone();
                // A head that is the whole mail can be replayed as it is.
                if size != raw.bytes.len() as u64 {
                    key.extend_from_slice(format!("\n{size} {}", raw.source).as_bytes());
                }
                let rejection = Rejection::NotRead {
                    size,
                    limit: self.parser.max_message_bytes(),
                    kept: raw.bytes.len() as u64,
                };
                (Err(rejection), sha256_hex(&key))
            }
            None => {
                let parsed = self.parser.parse(&raw.bytes, raw.arrival);
                let sha256 = match &parsed {
                    Ok(p) => p.sha256.clone(),
                    Err(_) => sha256_hex(&raw.bytes),
                };
                (parsed, sha256)
            }
        };
        Prepared {
            raw,
            sha256,
            parsed,
        }
    }

    /// Parses a batch on all cores, keeping its order.
    pub fn prepare_batch(&self, raws: Vec<RawMail>) -> Vec<Prepared> {
        if raws.len() < 8 {
            return raws.into_iter().map(|r| self.prepare(r)).collect();
        }
        crate::parallel::map(raws, |r| self.prepare(r))
    }

    /// Files a parsed batch: one transaction, or one per mail if the batch
    /// hits a store error.
    ///
    /// A store that cannot take anything now (disk full, connection lost)
    /// is an error for the whole batch, never a reason to quarantine a
    /// mail: the caller keeps the mails and files them again later.
    pub async fn file_batch(&self, batch: Vec<Prepared>) -> Result<Vec<Report>> {
        let unavailable = |e: anyhow::Error| {
            e.context(format!(
                "The store at {} cannot take mail now; nothing of this batch of {} was filed",
                self.store.location(),
                batch.len()
            ))
        };
        let mut tx = self.store.begin_write().await.map_err(unavailable)?;
        match file_all(&mut tx, &batch).await {
            Ok(reports) => {
                tx.commit().await.map_err(|e| unavailable(e.into()))?;
                return Ok(reports);
            }
            Err(e) if casebot_store::is_unavailable(&e) => {
                let _ = tx.rollback().await;
                return Err(unavailable(e));
            }
            Err(e) if batch.len() > 1 => {
                tracing::warn!(error = %format!("{e:#}"), "store error in a batch; filing its mails one by one");
                tx.rollback().await?;
            }
            Err(e) => {
                tx.rollback().await?;
                let item = &batch[0];
                return self.quarantine_store_error(item, e).await.map(|r| vec![r]);
            }
        }
        let mut reports = Vec::with_capacity(batch.len());
        for item in &batch {
            let mut tx = self.store.begin_write().await?;
            match file_all(&mut tx, std::slice::from_ref(item)).await {
                Ok(r) => {
                    tx.commit().await?;
                    reports.extend(r);
                }
                Err(e) if casebot_store::is_unavailable(&e) => {
                    let _ = tx.rollback().await;
                    return Err(e.context(format!(
                        "The store at {} cannot take mail now; {} of this batch's mails were filed",
                        self.store.location(),
                        reports.len()
                    )));
                }
                Err(e) => {
                    tx.rollback().await?;
                    reports.push(self.quarantine_store_error(item, e).await?);
                }
            }
        }
        Ok(reports)
    }

    /// A mail the store refused even on its own: keep it, with the reason.
    async fn quarantine_store_error(
        &self,
        item: &Prepared,
        error: anyhow::Error,
    ) -> Result<Report> {
        let reason = format!("store error: {error:#}");
        let mut tx = self.store.begin_write().await?;
        quarantine::put(
            &mut tx,
            &item.raw.bytes,
            &item.sha256,
            &item.raw.source,
            &reason,
        )
        .await?;
        tx.commit().await?;
        Ok(report(
            &item.raw.source,
            None,
            None,
            Status::Quarantined,
            Some(reason),
        ))
    }

    /// Runs a whole source through the pipeline: reading and parsing on
    /// blocking threads, filing on this task, the two overlapping.
    pub async fn run(
        &self,
        mails: Box<dyn Iterator<Item = ReadResult> + Send>,
        mut on_report: impl FnMut(&Report),
    ) -> Result<Counts> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<Prepared>, Vec<Report>)>(2);
        let this = self.clone();
        let producer = tokio::task::spawn_blocking(move || {
            let mut mails = mails;
            loop {
                let mut raws = Vec::with_capacity(BATCH);
                let mut failures = Vec::new();
                let mut bytes = 0usize;
                for item in mails.by_ref() {
                    match item {
                        Ok(raw) => {
                            bytes += raw.bytes.len();
                            raws.push(raw);
                        }
                        Err(f) => failures.push(report(
                            &f.source,
                            None,
                            None,
                            Status::Failed,
                            Some(f.reason),
                        )),
                    }
                    // Bound memory by bytes as well as count: one batch of 30 MB mails is plenty.
                    if raws.len() >= BATCH || bytes >= 64 << 20 {
                        break;
                    }
                }
                if raws.is_empty() && failures.is_empty() {
                    return;
                }
                let prepared = this.prepare_batch(raws);
                if tx.blocking_send((prepared, failures)).is_err() {
                    return;
                }
            }
        });
        let mut counts = Counts::default();
        while let Some((prepared, failures)) = rx.recv().await {
            for r in failures
                .iter()
                .chain(self.file_batch(prepared).await?.iter())
            {
                counts.add(r.status);
                on_report(r);
            }
        }
        producer.await?;
        Ok(counts)
    }

    /// Runs one quarantined mail through the pipeline again.
    pub async fn replay(&self, id: i64) -> Result<Option<Report>> {
        let Some((bytes, key)) = self.store.quarantined_bytes(id).await? else {
            return Ok(None);
        };
        let source = Source::Quarantine { id };
        if sha256_hex(&bytes) != key {
            // A mail over the size limit (only its head kept) or one whose
            // bytes the server never gave: filing what is kept would file a
            // part as if it were the mail.
            let reason = "only part of this mail was kept (or none of it): bring it in again \
                          from where it was found";
            return Ok(Some(report(
                &source,
                None,
                None,
                Status::Quarantined,
                Some(reason.into()),
            )));
        }
        let raw = RawMail::new(bytes, source, chrono::Utc::now());
        let prepared = self.prepare(raw);
        let reports = self.file_batch(vec![prepared]).await?;
        let report = reports.into_iter().next();
        if let Some(r) = &report
            && r.status != Status::Quarantined
        {
            let mut tx = self.store.begin_write().await?;
            quarantine::release(&mut tx, id, r.message_id.as_deref()).await?;
            tx.commit().await?;
        }
        Ok(report)
    }
}

fn report(
    source: &Source,
    message_id: Option<&str>,
    case_key: Option<&str>,
    status: Status,
    reason: Option<String>,
) -> Report {
    Report {
        source: source.to_string(),
        message_id: message_id.map(str::to_string),
        case_key: case_key.map(str::to_string),
        status,
        reason,
    }
}

/// Files prepared mails inside the caller's transaction: the store is asked
/// what the batch needs to know, the core decides (which mails are new, which
/// case each belongs to, what that does to the cases), and the store carries
/// the plans out.
async fn file_all(conn: &mut AnyConnection, items: &[Prepared]) -> Result<Vec<Report>> {
    let incoming: Vec<Incoming> = items
        .iter()
        .map(|i| Incoming {
            raw: &i.raw.bytes,
            sha256: &i.sha256,
            source: &i.raw.source,
            parsed: i.parsed.as_ref(),
        })
        .collect();
    let (shas, ids) = filing::lookups(&incoming);
    let stored = messages::lookup(conn, &shas, &ids).await?;
    let mut batch = filing::plan_batch(&incoming, &stored);
    messages::follow_merges(conn, &mut batch).await?;
    let state = messages::filing_state(conn, &batch.new).await?;
    let cases = filing::plan_cases(&batch.new, &state);
    messages::apply(conn, &batch, &cases).await?;
    Ok(items
        .iter()
        .zip(&batch.outcomes)
        .map(|(item, o)| Report {
            source: item.raw.source.to_string(),
            message_id: o.message_id.clone(),
            // A thread adopted by its late parent now lives under the parent's key.
            case_key: o
                .case_key
                .as_deref()
                .map(|k| cases.final_key(k).to_string()),
            status: o.status,
            reason: o.reason.clone(),
        })
        .collect())
}

/// The watched sources hand their mail to the pipeline through [`Filer`]:
/// parsed on a blocking thread, filed in one batch.
impl Filer for Pipeline {
    fn file(&self, mails: Vec<RawMail>) -> BoxFuture<'_, Result<Vec<Report>>> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let this = self.clone();
            let prepared = tokio::task::spawn_blocking(move || this.prepare_batch(mails))
                .await
                .context("The parse task failed")?;
            let reports = self.file_batch(prepared).await?;
            let telemetry = crate::telemetry::metrics();
            telemetry.took(crate::telemetry::Stage::Filing, started.elapsed());
            for report in &reports {
                telemetry.mail(report.status);
            }
            Ok(reports)
        })
    }
}
