//! Analysis results: the queue of customer mails to analyse and what the
//! analysis concluded, per mail and per case.
//!
//! The queue is derived from the messages themselves: every customer mail
//! newer than the newest one already queued gets a `pending` row, so a mail
//! filed by `import`, by the daemon or by a quarantine replay is analysed the
//! same way, and a crash between filing and analysing loses nothing.

use anyhow::Result;
use serde::Serialize;
use sqlx::FromRow;

use casebot_core::domain::AnalysisStatus;

use super::{Store, events, now_ts, ts_to_rfc3339};

/// A queued analysis with what it needs: the mail's raw bytes.
#[derive(Debug, Clone, FromRow)]
pub struct PendingAnalysis {
    pub id: i64,
    pub message_row: i64,
    pub case_row: i64,
    /// The case's key, for the log lines about this analysis.
    pub case_key: String,
    pub raw: Vec<u8>,
}

/// What to record when an analysis ends.
#[derive(Debug, Clone)]
pub struct AnalysisResult {
    /// Done, empty or failed: where the analysis ended.
    pub status: AnalysisStatus,
    pub outcome: Option<String>,
    pub class: Option<String>,
    pub rule: Option<String>,
    pub error_codes: Vec<String>,
    pub kbs: Vec<String>,
    pub report: Option<serde_json::Value>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Debug, Clone, FromRow)]
struct Row {
    id: i64,
    message_row: i64,
    message_id: String,
    #[sqlx(try_from = "String")]
    status: AnalysisStatus,
    outcome: Option<String>,
    class: Option<String>,
    rule: Option<String>,
    error_codes: Option<String>,
    kbs: Option<String>,
    report: Option<String>,
    error: Option<String>,
    duration_ms: Option<i64>,
    updated_at: i64,
}

/// One mail's analysis, as listed with its case.
#[derive(Debug, Clone, Serialize)]
pub struct AnalysisView {
    pub id: i64,
    pub message_row: i64,
    pub message_id: String,
    pub status: AnalysisStatus,
    pub outcome: Option<String>,
    pub class: Option<String>,
    pub rule: Option<String>,
    pub error_codes: Vec<String>,
    pub kbs: Vec<String>,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    pub analysed_at: String,
    pub report: Option<serde_json::Value>,
}

impl From<Row> for AnalysisView {
    fn from(r: Row) -> Self {
        let list = |s: Option<String>| -> Vec<String> {
            s.and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default()
        };
        AnalysisView {
            id: r.id,
            message_row: r.message_row,
            message_id: r.message_id,
            status: r.status,
            outcome: r.outcome,
            class: r.class,
            rule: r.rule,
            error_codes: list(r.error_codes),
            kbs: list(r.kbs),
            error: r.error,
            duration_ms: r.duration_ms,
            analysed_at: ts_to_rfc3339(r.updated_at),
            report: r.report.and_then(|s| serde_json::from_str(&s).ok()),
        }
    }
}

/// A case's current conclusion among its analyses (oldest mail first): the
/// newest one that concluded something (failure or success), else the newest
/// finished one.
pub fn newest_conclusion(analyses: &[AnalysisView]) -> Option<&AnalysisView> {
    let finished = || analyses.iter().rev().filter(|a| a.status.has_report());
    finished()
        .find(|a| matches!(a.outcome.as_deref(), Some("failure" | "success")))
        .or_else(|| finished().next())
}

/// The two queues of the analysis stage: mails to read, and mails whose
/// links are still to fetch (slow, so they never hold up the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalysisQueue {
    Read,
    Fetch,
}

impl AnalysisQueue {
    /// The status of the analyses waiting in this queue.
    pub fn status(self) -> AnalysisStatus {
        match self {
            AnalysisQueue::Read => AnalysisStatus::Pending,
            AnalysisQueue::Fetch => AnalysisStatus::Fetching,
        }
    }
}

/// Claims of one analysis before it fails for good (see `claim_analyses`).
pub const MAX_CLAIMS: i64 = 3;

const VIEW_COLUMNS: &str = "a.id, a.message_id AS message_row, m.message_id, a.status, a.outcome, a.class, a.rule, \
     a.error_codes, a.kbs, a.report, a.error, a.duration_ms, a.updated_at";

impl Store {
    /// Queues every customer mail filed since the last call. Returns how many.
    pub async fn enqueue_analyses(&self) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let now = now_ts();
        let done = sqlx::query(
            "INSERT INTO analyses (message_id, status, attempts, created_at, updated_at) \
             SELECT m.id, 'pending', 0, $1, $1 FROM messages m \
             WHERE m.direction = 'customer' \
               AND m.id > COALESCE((SELECT MAX(message_id) FROM analyses), 0) \
             ORDER BY m.id",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Queues one mail again (re-analysis), whatever its state.
    pub async fn requeue_analysis(&self, message_row: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO analyses (message_id, status, attempts, created_at, updated_at) \
             VALUES ($1, 'pending', 0, $2, $2) \
             ON CONFLICT (message_id) DO UPDATE SET status = 'pending', attempts = 0, claimed_by = NULL, \
             claim_expires_at = NULL, updated_at = excluded.updated_at",
        )
        .bind(message_row)
        .bind(now_ts())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` queued analyses for `owner` (this instance) for
    /// `lease_secs`, oldest first, and returns them with the raw mail. A
    /// claim whose holder `is_dead` or whose time ran out is taken over; a
    /// mail whose analysis was claimed [`MAX_CLAIMS`] times without ending
    /// (it stopped its instance each time) fails instead of looping.
    pub async fn claim_analyses(
        &self,
        queue: AnalysisQueue,
        owner: &str,
        limit: i64,
        lease_secs: i64,
        is_dead: impl Fn(&str) -> bool,
    ) -> Result<Vec<PendingAnalysis>> {
        let now = now_ts();
        let holders: Vec<String> = sqlx::query_scalar(
            &format!(
                "SELECT DISTINCT claimed_by FROM analyses WHERE status = '{}' AND claimed_by IS NOT NULL",
                queue.status().as_str()
            ),
        )
        .fetch_all(self.pool())
        .await?;
        let mut tx = self.begin_claim().await?;
        for dead in holders.iter().filter(|h| is_dead(h)) {
            sqlx::query(&format!(
                "UPDATE analyses SET claimed_by = NULL, claim_expires_at = NULL \
                 WHERE status = '{}' AND claimed_by = $1",
                queue.status().as_str()
            ))
            .bind(dead)
            .execute(&mut *tx)
            .await?;
        }
        let claimable = format!(
            "status = '{}' AND (claimed_by IS NULL OR claim_expires_at < $1)",
            queue.status().as_str()
        );
        let ids: Vec<(i64, i64)> = sqlx::query_as(&format!(
            "SELECT id, attempts FROM analyses WHERE {claimable} ORDER BY id LIMIT $2{}",
            self.skip_locked()
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let (ids, worn): (Vec<_>, Vec<_>) = ids.into_iter().partition(|(_, a)| *a < MAX_CLAIMS);
        for (id, _) in &worn {
            sqlx::query(
                "UPDATE analyses SET status = 'failed', claimed_by = NULL, claim_expires_at = NULL, \
                 error = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(format!(
                "the analysis was started {MAX_CLAIMS} times and never ended (its instance stopped each time)"
            ))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for (id, _) in &ids {
            sqlx::query(
                "UPDATE analyses SET claimed_by = $2, claim_expires_at = $3, attempts = attempts + 1 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(owner)
            .bind(now + lease_secs)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT a.id, a.message_id AS message_row, m.case_id AS case_row, c.key AS case_key, r.bytes AS raw \
             FROM analyses a JOIN messages m ON m.id = a.message_id JOIN raw_messages r ON r.id = m.raw_id \
             JOIN cases c ON c.id = m.case_id \
             WHERE a.id IN ({}) AND a.claimed_by = $1 ORDER BY a.id",
            crate::sql::placeholders(2, ids.len())
        );
        let mut q = sqlx::query_as(&sql).bind(owner);
        for (id, _) in &ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// Records the end of a batch of analyses `owner` claimed, and each in
    /// its case's event log, in one transaction. An analysis whose claim
    /// another instance took over meanwhile is left to that instance.
    pub async fn finish_analyses(
        &self,
        owner: &str,
        results: &[(PendingAnalysis, AnalysisResult)],
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for (pending, result) in results {
            finish_one(&mut tx, owner, pending, result).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every analysis of a case's mails, oldest mail first (reports included).
    pub async fn case_analyses(&self, case_row: i64) -> Result<Vec<AnalysisView>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {VIEW_COLUMNS} FROM analyses a JOIN messages m ON m.id = a.message_id \
             WHERE m.case_id = $1 ORDER BY m.date_utc, m.id"
        ))
        .bind(case_row)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(AnalysisView::from).collect())
    }

    /// The analyses of the given messages of a case (one page of its
    /// thread), in thread order.
    pub async fn analyses_of_messages(
        &self,
        case_row: i64,
        message_rows: &[i64],
    ) -> Result<Vec<AnalysisView>> {
        if message_rows.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..message_rows.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let sql = format!(
            "SELECT {VIEW_COLUMNS} FROM analyses a JOIN messages m ON m.id = a.message_id \
             WHERE m.case_id = $1 AND a.message_id IN ({}) ORDER BY m.date_utc, m.id",
            marks.join(", ")
        );
        let mut query = sqlx::query_as::<_, Row>(&sql).bind(case_row);
        for id in message_rows {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        Ok(rows.into_iter().map(AnalysisView::from).collect())
    }

    /// The case's conclusion as [`newest_conclusion`] picks it, read without
    /// loading every analysis of the case.
    pub async fn case_conclusion(&self, case_row: i64) -> Result<Option<AnalysisView>> {
        for outcome_clause in ["AND a.outcome IN ('failure', 'success')", ""] {
            let row: Option<Row> = sqlx::query_as(&format!(
                "SELECT {VIEW_COLUMNS} FROM analyses a JOIN messages m ON m.id = a.message_id \
                 WHERE m.case_id = $1 AND a.status IN ('{}', '{}') {outcome_clause} \
                 ORDER BY m.date_utc DESC, m.id DESC, a.id DESC LIMIT 1",
                AnalysisStatus::Done.as_str(),
                AnalysisStatus::Fetching.as_str(),
            ))
            .bind(case_row)
            .fetch_optional(self.pool())
            .await?;
            if let Some(row) = row {
                return Ok(Some(AnalysisView::from(row)));
            }
        }
        Ok(None)
    }

    /// The links of the case's customer mails filed before this one: a link
    /// is fetched once per case, with the first mail that gave it.
    pub async fn links_before_in_case(&self, message_row: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT l.url FROM links l JOIN messages m ON m.id = l.message_id \
             WHERE m.direction = 'customer' AND m.id < $1 \
             AND m.case_id = (SELECT case_id FROM messages WHERE id = $1)",
        )
        .bind(message_row)
        .fetch_all(self.pool())
        .await?)
    }

    /// Row ids of a case's customer mails, oldest first.
    pub async fn case_customer_messages(&self, case_row: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM messages WHERE case_id = $1 AND direction = 'customer' ORDER BY date_utc, id",
        )
        .bind(case_row)
        .fetch_all(self.pool())
        .await?)
    }
}

/// One analysis's result and its event, inside the caller's transaction.
async fn finish_one(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    owner: &str,
    pending: &PendingAnalysis,
    result: &AnalysisResult,
) -> Result<()> {
    let updated = sqlx::query(
        "UPDATE analyses SET status = $2, outcome = $3, class = $4, rule = $5, \
         error_codes = $6, kbs = $7, report = $8, error = $9, duration_ms = $10, updated_at = $11, \
         claimed_by = NULL, claim_expires_at = NULL WHERE id = $1 AND claimed_by = $12",
    )
    .bind(pending.id)
    .bind(result.status.as_str())
    .bind(result.outcome.as_deref())
    .bind(result.class.as_deref())
    .bind(result.rule.as_deref())
    .bind(serde_json::to_string(&result.error_codes)?)
    .bind(serde_json::to_string(&result.kbs)?)
    .bind(result.report.as_ref().map(|r| r.to_string()))
    .bind(result.error.as_deref())
    .bind(result.duration_ms)
    .bind(now_ts())
    .bind(owner)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 0 {
        tracing::warn!(
            case = %pending.case_key,
            message = pending.message_row,
            "analysis claim taken over by another instance; its result is theirs to record"
        );
        return Ok(());
    }
    replace_terms(tx, pending.message_row, result).await?;
    if result.status != AnalysisStatus::Empty {
        events::event(
            tx,
            Some(pending.case_row),
            Some(pending.message_row),
            "analysis_finished",
            serde_json::json!({
                "status": result.status,
                "outcome": result.outcome,
                "class": result.class,
                "rule": result.rule,
                "error_codes": result.error_codes,
                "kbs": result.kbs,
                "error": result.error,
            }),
        )
        .await?;
    }
    Ok(())
}

/// Indexes the analysis's KBs and error codes for the case search (see
/// `analysis_terms`) and its conclusion for the full-text search,
/// replacing what an earlier analysis of the mail found.
async fn replace_terms(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    message_row: i64,
    result: &AnalysisResult,
) -> Result<()> {
    sqlx::query("DELETE FROM analysis_terms WHERE message_id = $1")
        .bind(message_row)
        .execute(&mut **tx)
        .await?;
    let mut terms: Vec<String> = result
        .kbs
        .iter()
        .chain(&result.error_codes)
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    terms.sort_unstable();
    terms.dedup();
    for term in terms {
        sqlx::query("INSERT INTO analysis_terms (term, message_id) VALUES ($1, $2)")
            .bind(term)
            .bind(message_row)
            .execute(&mut **tx)
            .await?;
    }
    // And the full-text search reads what the analysis concluded.
    let parts = crate::search::analysis_parts(result.report.as_ref(), &result.error_codes);
    let text = casebot_core::search::index_text(parts.iter().map(String::as_str));
    crate::search::put_docs(tx, &[(crate::search::analysis_doc(message_row), text)]).await
}
