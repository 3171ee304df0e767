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

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::config::Config;
use crate::mailbox::{RawMail, ReadResult};
use casebot_core::domain::{Source, sha256_hex};
use casebot_core::mail::case_state::mail_signal;
use casebot_core::mail::parse::{MailParser, ParsedMail, Rejection};
use casebot_core::mail::thread::{KnownMessage, ThreadClues, decide, parent_candidates};
use casebot_store::{Store, messages, quarantine};

/// What happened to one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Imported,
    Duplicate,
    Quarantined,
    /// Could not even be read; nothing was stored.
    Failed,
}

/// One line of `casebot import --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub message_id: Option<String>,
    pub case_key: Option<String>,
    pub status: Status,
    pub reason: Option<String>,
}

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
        let parsed = self.parser.parse(&raw.bytes, raw.arrival);
        let sha256 = match &parsed {
            Ok(p) => p.sha256.clone(),
            Err(_) => sha256_hex(&raw.bytes),
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
        let Some(bytes) = self.store.quarantined_bytes(id).await? else {
            return Ok(None);
        };
        let raw = RawMail {
            bytes,
            source: Source::Quarantine { id },
            arrival: chrono::Utc::now(),
        };
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

/// Files prepared mails inside the caller's transaction: look-ups for the
/// whole batch, decisions in memory (the batch's own mails count as known
/// parents and as duplicates), then one write plan.
async fn file_all(conn: &mut AnyConnection, items: &[Prepared]) -> Result<Vec<Report>> {
    let parsed: Vec<&ParsedMail> = items
        .iter()
        .filter_map(|i| i.parsed.as_ref().ok())
        .collect();
    let shas: Vec<&str> = parsed.iter().map(|m| m.sha256.as_str()).collect();
    let mut ids: Vec<&str> = Vec::new();
    for m in &parsed {
        ids.push(&m.message_id);
        ids.extend(parent_candidates(&clues(m)));
    }
    ids.sort_unstable();
    ids.dedup();
    let stored = messages::lookup(conn, &shas, &ids).await?;

    // message_id → (case key, raw sha) for everything known so far.
    let mut known: HashMap<String, (String, String)> = stored
        .iter()
        .map(|s| (s.message_id.clone(), (s.case_key.clone(), s.sha256.clone())))
        .collect();
    let mut by_sha: HashMap<String, String> = stored
        .iter()
        .map(|s| (s.sha256.clone(), s.case_key.clone()))
        .collect();

    let mut plan = messages::WritePlan::default();
    let mut reports = Vec::with_capacity(items.len());
    for item in items {
        let source = &item.raw.source;
        let mail = match &item.parsed {
            Ok(mail) => mail,
            Err(rejection) => {
                let reason = rejection.to_string();
                quarantine::put(conn, &item.raw.bytes, &item.sha256, source, &reason).await?;
                reports.push(report(
                    source,
                    None,
                    None,
                    Status::Quarantined,
                    Some(reason),
                ));
                continue;
            }
        };
        if let Some(case_key) = by_sha.get(&mail.sha256) {
            plan.sightings.push(messages::Sighting {
                sha256: mail.sha256.clone(),
                source,
            });
            reports.push(report(
                source,
                Some(&mail.message_id),
                Some(case_key),
                Status::Duplicate,
                Some("same bytes as a stored mail".into()),
            ));
            continue;
        }
        if let Some((case_key, _)) = known.get(&mail.message_id) {
            // Other bytes under a known Message-ID: keep them as evidence.
            plan.variants.push(messages::Variant {
                raw: &item.raw.bytes,
                sha256: mail.sha256.clone(),
            });
            plan.sightings.push(messages::Sighting {
                sha256: mail.sha256.clone(),
                source,
            });
            by_sha.insert(mail.sha256.clone(), case_key.clone());
            reports.push(report(
                source,
                Some(&mail.message_id),
                Some(case_key),
                Status::Duplicate,
                Some(format!(
                    "same Message-ID as a stored mail (content differs, sha256 {})",
                    mail.sha256
                )),
            ));
            continue;
        }
        let clues = clues(mail);
        let parents: Vec<KnownMessage> = parent_candidates(&clues)
            .into_iter()
            .filter_map(|id| {
                known.get(id).map(|(key, _)| KnownMessage {
                    message_id: id.to_string(),
                    case_key: key.clone(),
                })
            })
            .collect();
        let decision = decide(&clues, &parents);
        known.insert(
            mail.message_id.clone(),
            (decision.case_key.clone(), mail.sha256.clone()),
        );
        by_sha.insert(mail.sha256.clone(), decision.case_key.clone());
        reports.push(report(
            source,
            Some(&mail.message_id),
            Some(&decision.case_key),
            Status::Imported,
            None,
        ));
        plan.new.push(messages::NewMessage {
            raw: &item.raw.bytes,
            mail,
            source,
            signal: mail_signal(
                mail.direction,
                &mail.body.new_text,
                mail.resolution_phrase.is_some(),
                !mail.attachments.is_empty() || !mail.links.is_empty(),
            ),
            decision,
        });
    }
    let written = messages::write(conn, &plan).await?;
    // A thread adopted by its late parent now lives under the parent's key.
    for (from, to) in &written.adopted {
        for r in reports
            .iter_mut()
            .filter(|r| r.case_key.as_deref() == Some(from))
        {
            r.case_key = Some(to.clone());
        }
    }
    Ok(reports)
}

fn clues(mail: &ParsedMail) -> ThreadClues<'_> {
    ThreadClues {
        message_id: &mail.message_id,
        subject_case_id: mail.subject_info.case_id.as_deref(),
        body_case_ids: &mail.body_case_ids,
        in_reply_to: mail.in_reply_to.as_deref(),
        references: &mail.references,
    }
}
