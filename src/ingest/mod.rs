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

pub mod body;
pub mod case_state;
pub mod direction;
pub mod links;
pub mod parse;
pub mod subject;
pub mod thread;

use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::config::Config;
use crate::mailbox::{RawMail, ReadResult, Source};
use crate::store::{Store, messages, quarantine};
use case_state::mail_signal;
use parse::{ParseContext, ParsedMail, Rejection, parse_mail, sha256_hex};
use subject::SubjectGrammar;
use thread::{ThreadClues, decide, parent_candidates};

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
    config: Arc<Config>,
    grammar: Arc<SubjectGrammar>,
}

/// Mails per store transaction.
pub const BATCH: usize = 256;

impl Pipeline {
    pub fn new(store: Store, config: Arc<Config>) -> Result<Self> {
        let grammar = SubjectGrammar::new(&config.grammar)?;
        Ok(Self {
            store,
            config,
            grammar: Arc::new(grammar),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Parses one mail (CPU only).
    pub fn prepare(&self, raw: RawMail) -> Prepared {
        let ctx = ParseContext {
            grammar: &self.grammar,
            desk: &self.config.desk,
            ingest: &self.config.ingest,
        };
        let parsed = parse_mail(&raw.bytes, raw.arrival, &ctx);
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
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        if threads < 2 || raws.len() < 8 {
            return raws.into_iter().map(|r| self.prepare(r)).collect();
        }
        let chunk = raws.len().div_ceil(threads);
        let mut chunks: Vec<Vec<RawMail>> = Vec::new();
        let mut iter = raws.into_iter().peekable();
        while iter.peek().is_some() {
            chunks.push(iter.by_ref().take(chunk).collect());
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|c| {
                    scope.spawn(move || c.into_iter().map(|r| self.prepare(r)).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    }

    /// Files a parsed batch: one transaction, or one per mail if the batch
    /// hits a store error.
    pub async fn file_batch(&self, batch: Vec<Prepared>) -> Result<Vec<Report>> {
        let mut tx = self.store.begin_write().await?;
        let mut reports = Vec::with_capacity(batch.len());
        let mut failed = false;
        for item in &batch {
            match file_one(&mut tx, item).await {
                Ok(r) => reports.push(r),
                Err(e) => {
                    tracing::warn!(source = %item.raw.source, error = %e, "store error in batch; retrying mail by mail");
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            tx.commit().await?;
            return Ok(reports);
        }
        tx.rollback().await?;
        let mut reports = Vec::with_capacity(batch.len());
        for item in &batch {
            let mut tx = self.store.begin_write().await?;
            match file_one(&mut tx, item).await {
                Ok(r) => {
                    tx.commit().await?;
                    reports.push(r);
                }
                Err(e) => {
                    tx.rollback().await?;
                    let reason = format!("store error: {e:#}");
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
                    reports.push(report(
                        &item.raw.source,
                        None,
                        None,
                        Status::Quarantined,
                        Some(reason),
                    ));
                }
            }
        }
        Ok(reports)
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
            let row: Option<i64> = match &r.message_id {
                Some(mid) => {
                    sqlx::query_scalar("SELECT id FROM messages WHERE message_id = $1")
                        .bind(mid)
                        .fetch_optional(&mut *tx)
                        .await?
                }
                None => None,
            };
            quarantine::release(&mut tx, id, row).await?;
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

/// Files one prepared mail inside the caller's transaction.
async fn file_one(conn: &mut AnyConnection, item: &Prepared) -> Result<Report> {
    let source = &item.raw.source;
    let mail = match &item.parsed {
        Ok(mail) => mail,
        Err(rejection) => {
            let reason = rejection.to_string();
            quarantine::put(conn, &item.raw.bytes, &item.sha256, source, &reason).await?;
            return Ok(report(
                source,
                None,
                None,
                Status::Quarantined,
                Some(reason),
            ));
        }
    };
    if let Some(existing) = messages::by_sha256(conn, &mail.sha256).await? {
        messages::add_source(conn, existing.raw_id, source).await?;
        return Ok(report(
            source,
            Some(&mail.message_id),
            Some(&existing.case_key),
            Status::Duplicate,
            Some("same bytes as a stored mail".into()),
        ));
    }
    if let Some(existing) = messages::by_message_id(conn, &mail.message_id).await? {
        messages::add_source(conn, existing.raw_id, source).await?;
        return Ok(report(
            source,
            Some(&mail.message_id),
            Some(&existing.case_key),
            Status::Duplicate,
            Some(format!(
                "same Message-ID as a stored mail (content differs, sha256 {})",
                mail.sha256
            )),
        ));
    }
    let clues = ThreadClues {
        message_id: &mail.message_id,
        subject_case_id: mail.subject_info.case_id.as_deref(),
        body_case_ids: &mail.body_case_ids,
        in_reply_to: mail.in_reply_to.as_deref(),
        references: &mail.references,
    };
    let known = messages::known(conn, &parent_candidates(&clues)).await?;
    let decision = decide(&clues, &known);
    let signal = mail_signal(
        mail.direction,
        &mail.body.new_text,
        mail.resolution_phrase.is_some(),
    );
    let filed = messages::insert(conn, &item.raw.bytes, mail, source, &decision, signal).await?;
    Ok(report(
        source,
        Some(&mail.message_id),
        Some(&filed.case_key),
        Status::Imported,
        None,
    ))
}
