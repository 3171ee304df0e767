//! The analysis stage of the pipeline: every customer mail's attachments,
//! links and pasted log lines, analysed as one bundle and stored with the case.
//!
//! It runs after filing, both in `casebot import` and in the daemon, so a
//! backfill leaves the store as watching the mailbox would have. A link is
//! fetched only through the bounded client; an SMB path is listed, never
//! opened (the desk cannot reach a customer's share).
//!
//! Two queues: a mail's attachments and pasted lines are read first and
//! recorded at once; its links (a download may take minutes) are fetched
//! from a second queue, after which the mail's analysis is recorded again
//! with them. So a slow download never holds up other mails, a draft or
//! the SLA: the reply is drafted on what was read, and drafted again when
//! the links are in. A link is fetched once per case, with the first
//! customer mail that gave it (quoted history repeats links).

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::config::Config;
use casebot_analysis::bundle::{BundleScan, Item, ItemStatus};
use casebot_analysis::{Analyzer, Report};
use casebot_core::domain::AnalysisStatus;
use casebot_core::mail::links::Link;
use casebot_core::mail::parse::{MailParser, attachment_bytes};
use casebot_store::Store;
use casebot_store::analyses::{AnalysisQueue, AnalysisResult, AnalysisView, PendingAnalysis};
use casebot_store::lease::instance;

/// How many mails are taken from the queue at a time.
const BATCH: i64 = 64;

/// How long a claimed batch is this instance's: past it (a batch of slow
/// downloads), another instance may take the mails over. A claimant that
/// dies on this host is noticed at once.
const CLAIM_SECS: i64 = 15 * 60;

/// What one run of the queue did.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct WorkerCounts {
    pub analysed: u64,
    pub empty: u64,
    pub failed: u64,
}

#[derive(Clone)]
pub struct Worker {
    store: Store,
    analyzer: Analyzer,
    parser: MailParser,
}

impl Worker {
    /// The parser uses the desk's grammar and addresses, as ingest does.
    pub fn new(store: Store, analyzer: Analyzer, config: &Config) -> Result<Worker> {
        Ok(Worker {
            store,
            analyzer,
            parser: MailParser::new(&config.desk, &config.grammar, &config.ingest)?,
        })
    }

    /// Queues what was filed since the last run, then reads the whole
    /// queue, a batch at a time. A batch's logs are read on every core, a
    /// round of as many mails as there are cores at a time, and each
    /// round's results are recorded as it ends: a slow mail (at most its
    /// time limit) holds back only its own round. Mails with links to fetch
    /// are recorded as `fetching` and wait in the fetch queue.
    pub async fn run_pending(&self) -> Result<WorkerCounts> {
        self.store.enqueue_analyses().await?;
        self.run_queue(AnalysisQueue::Read).await
    }

    /// Fetches the links of every mail in the fetch queue and records each
    /// mail's whole analysis.
    pub async fn run_fetches(&self) -> Result<WorkerCounts> {
        self.run_queue(AnalysisQueue::Fetch).await
    }

    /// Both queues, one after the other (commands that run to the end).
    pub async fn run_all(&self) -> Result<WorkerCounts> {
        let read = self.run_pending().await?;
        let fetched = self.run_fetches().await?;
        Ok(WorkerCounts {
            analysed: read.analysed + fetched.analysed,
            empty: read.empty + fetched.empty,
            failed: read.failed + fetched.failed,
        })
    }

    async fn run_queue(&self, queue: AnalysisQueue) -> Result<WorkerCounts> {
        let mut counts = WorkerCounts::default();
        loop {
            let batch = self
                .store
                .claim_analyses(queue, instance::id(), BATCH, CLAIM_SECS, instance::is_dead)
                .await?;
            if batch.is_empty() {
                return Ok(counts);
            }
            let round = std::thread::available_parallelism().map_or(2, usize::from);
            let mut batch = batch.into_iter().peekable();
            while batch.peek().is_some() {
                let mails: Vec<PendingAnalysis> = batch.by_ref().take(round).collect();
                let results = self.analyse_batch(mails, queue).await?;
                count(&mut counts, &results);
                self.store.finish_analyses(instance::id(), &results).await?;
            }
        }
    }

    /// Analyses every customer mail of a case again and returns the results.
    pub async fn reanalyze_case(&self, key: &str) -> Result<Option<Vec<AnalysisView>>> {
        let Some(case) = self.store.find_case(key).await? else {
            return Ok(None);
        };
        // Queue anything not yet queued first, so the re-queue below cannot
        // hide newer mails from the queue's high-water mark.
        self.store.enqueue_analyses().await?;
        for message in self.store.case_customer_messages(case.id).await? {
            self.store.requeue_analysis(message).await?;
        }
        self.run_all().await?;
        Ok(Some(self.store.case_analyses(case.id).await?))
    }

    /// Analyses a batch; each mail's failure is its result, never the batch's.
    async fn analyse_batch(
        &self,
        batch: Vec<PendingAnalysis>,
        queue: AnalysisQueue,
    ) -> Result<Vec<(PendingAnalysis, AnalysisResult)>> {
        let (parser, analyzer) = (self.parser.clone(), self.analyzer.clone());
        // Parsing and reading logs is CPU work: off the async threads.
        let scanned = tokio::task::spawn_blocking(move || {
            crate::parallel::map(batch, |pending| {
                let started = Instant::now();
                let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    scan_mail(&parser, &analyzer, &pending.raw)
                }))
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the analyser crashed on this mail")));
                (pending, scanned, started.elapsed())
            })
        })
        .await?;
        let mut results = Vec::with_capacity(scanned.len());
        for (pending, scanned, cpu) in scanned {
            let started = Instant::now();
            let outcome = match scanned {
                // A mail whose logs ran out of time is that mail's failure alone.
                Ok((bundle, _)) if bundle.stopped.is_some() => {
                    Err(anyhow::anyhow!(bundle.stopped.unwrap_or_default()))
                }
                Ok((bundle, links)) => {
                    let links = self.not_fetched_before(&pending, links).await?;
                    let fetch = links.iter().any(|l| l.kind == "http");
                    if queue == AnalysisQueue::Read && fetch {
                        // Recorded now; the links come from the fetch queue.
                        let outcome = Ok(self.finish_bundle(bundle, &[]).await?);
                        let duration_ms = (cpu + started.elapsed()).as_millis() as i64;
                        let mut result = result_of(outcome, duration_ms);
                        result.status = AnalysisStatus::Fetching;
                        results.push((pending, result));
                        continue;
                    }
                    self.finish_bundle(bundle, &links).await
                }
                Err(e) => Err(e),
            };
            let duration_ms = (cpu + started.elapsed()).as_millis() as i64;
            results.push((pending, result_of(outcome, duration_ms)));
        }
        Ok(results)
    }

    /// The mail's links without those an earlier mail of its case gave:
    /// those were fetched with that mail.
    async fn not_fetched_before(
        &self,
        pending: &PendingAnalysis,
        links: Vec<Link>,
    ) -> Result<Vec<Link>> {
        if links.is_empty() {
            return Ok(links);
        }
        let earlier = self.store.links_before_in_case(pending.message_row).await?;
        let key = |url: &str| url.trim_end_matches('/').to_string();
        let earlier: std::collections::HashSet<String> = earlier.iter().map(|u| key(u)).collect();
        Ok(links
            .into_iter()
            .filter(|l| !earlier.contains(&key(&l.url)))
            .collect())
    }

    /// Adds the mail's links to its bundle (fetched through the bounded
    /// client) and concludes; `None` when nothing in it is worth a report.
    async fn finish_bundle(
        &self,
        mut bundle: BundleScan,
        links: &[Link],
    ) -> Result<Option<Report>> {
        for link in links {
            match link.kind {
                "http" => match self.analyzer.scan_url(&link.url).await {
                    Ok(scan) => bundle.merge(scan),
                    Err(e) => bundle.items.push(Item::listed(
                        &link.url,
                        "link",
                        ItemStatus::Error,
                        Some(e.to_string()),
                        0,
                    )),
                },
                _ => bundle.items.push(Item::listed(
                    &link.url,
                    "smb_path",
                    ItemStatus::Skipped,
                    Some("a network share path: ask for the files as an upload".into()),
                    0,
                )),
            }
        }
        // Signature images and the like alone are not worth an analysis.
        if bundle.items.iter().all(|i| i.kind == "image") {
            return Ok(None);
        }
        Ok(Some(self.analyzer.report(bundle)))
    }
}

/// Counts a round's results and logs each mail's end.
fn count(counts: &mut WorkerCounts, results: &[(PendingAnalysis, AnalysisResult)]) {
    for (pending, result) in results {
        match result.status {
            AnalysisStatus::Done => counts.analysed += 1,
            AnalysisStatus::Empty => counts.empty += 1,
            // Counted when its links are in.
            AnalysisStatus::Fetching | AnalysisStatus::Pending => {}
            AnalysisStatus::Failed => counts.failed += 1,
        }
        let outcome = match result.status {
            AnalysisStatus::Done => result.outcome.as_deref().unwrap_or("done"),
            AnalysisStatus::Empty => "empty",
            AnalysisStatus::Failed => "failed",
            AnalysisStatus::Fetching | AnalysisStatus::Pending => "",
        };
        if !outcome.is_empty() {
            let took = std::time::Duration::from_millis(result.duration_ms.max(0) as u64);
            crate::telemetry::metrics().analysis(outcome, took);
        }
        if result.status == AnalysisStatus::Failed {
            tracing::warn!(case = %pending.case_key, message = pending.message_row, error = ?result.error, "analysis failed");
        } else if result.status == AnalysisStatus::Done {
            tracing::info!(
                case = %pending.case_key,
                message = pending.message_row,
                outcome = ?result.outcome,
                class = ?result.class,
                ms = result.duration_ms,
                "mail analysed"
            );
        }
    }
}

/// Parses a stored mail and reads its attachments and pasted log lines; its
/// links are returned to be fetched (async) by the caller.
fn scan_mail(
    parser: &MailParser,
    analyzer: &Analyzer,
    raw: &[u8],
) -> Result<(BundleScan, Vec<Link>)> {
    let mail = parser
        .parse(raw, chrono::Utc::now())
        .map_err(|r| anyhow::anyhow!("the mail no longer parses: {r}"))?;
    let mut walker = analyzer.walker();
    for attachment in attachment_bytes(raw) {
        let name = attachment
            .filename
            .clone()
            .unwrap_or_else(|| format!("attachment-{}", attachment.part));
        walker.bytes(&name, &attachment.bytes);
    }
    let mut bundle = walker.finish();
    let pasted = analyzer.scan_pasted("mail body", &mail.body.new_text);
    if pasted.scans.iter().any(|s| !s.findings.is_empty()) {
        bundle.merge(pasted);
    }
    Ok((bundle, mail.links))
}

/// What to record for one mail's analysis.
fn result_of(outcome: Result<Option<Report>>, duration_ms: i64) -> AnalysisResult {
    let bare = |status, error| AnalysisResult {
        status,
        outcome: None,
        class: None,
        rule: None,
        error_codes: Vec::new(),
        kbs: Vec::new(),
        report: None,
        error,
        duration_ms,
    };
    match outcome {
        Err(e) => bare(AnalysisStatus::Failed, Some(format!("{e:#}"))),
        Ok(None) => bare(AnalysisStatus::Empty, None),
        Ok(Some(report)) => {
            let c = &report.conclusion;
            AnalysisResult {
                status: AnalysisStatus::Done,
                outcome: Some(c.outcome.as_str().to_string()),
                class: c.root_cause.as_ref().map(|r| r.class.clone()),
                rule: c.root_cause.as_ref().map(|r| r.rule.clone()),
                error_codes: c.error_codes.clone(),
                kbs: c.kbs.clone(),
                error: {
                    let errors: Vec<String> = report.errors().collect();
                    (!errors.is_empty()).then(|| errors.join("; "))
                },
                report: serde_json::to_value(&report).ok(),
                duration_ms,
            }
        }
    }
}
