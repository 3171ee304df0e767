//! Drafted replies: the pending draft of each case, the approval gate, and
//! the send queue.
//!
//! Every state change is one guarded UPDATE (`WHERE status = 'pending'`, or
//! the claim's owner) in a write transaction with its event, so two actors
//! (the drafting stage and an engineer, two senders) can never both win.
//! Sending is at most once: a sender claims a draft with a lease and records
//! how far the SMTP transaction got; a claim that died while the server was
//! receiving the message may have been delivered, and only an engineer may
//! send it again.

use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::{FromRow, Row as _};

use casebot_core::domain::{Direction, DraftKind, DraftOrigin, DraftStatus, MailSignal, Stage};

use super::analyses::AnalysisView;
use super::knowledge::{self, NewKnowledge};
use super::{OptionalWord, Store, events, now_ts, ts_to_rfc3339};

/// A draft row with its case's names.
#[derive(Debug, Clone, FromRow)]
pub struct DraftRow {
    pub id: i64,
    pub case_row: i64,
    pub case_key: String,
    pub case_number: Option<String>,
    #[sqlx(try_from = "String")]
    pub kind: DraftKind,
    #[sqlx(try_from = "String")]
    pub status: DraftStatus,
    #[sqlx(try_from = "String")]
    pub origin: DraftOrigin,
    pub basis: String,
    pub trigger_message_id: Option<i64>,
    pub language: String,
    pub subject: String,
    pub body: String,
    pub facts: String,
    pub to_json: String,
    pub cc_json: String,
    pub in_reply_to: Option<String>,
    pub references_text: String,
    pub revision: i64,
    pub edited_by: Option<String>,
    pub edited_at: Option<i64>,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
    pub approved_sha256: Option<String>,
    pub rejected_by: Option<String>,
    pub rejected_at: Option<i64>,
    pub reject_reason: Option<String>,
    pub message_id: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub claimed_by: Option<String>,
    pub claim_expires_at: Option<i64>,
    pub send_phase: Option<String>,
    pub sent_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const DRAFT_COLUMNS: &str = "d.id, d.case_id AS case_row, c.key AS case_key, c.case_id AS case_number, d.kind, d.status, \
     d.origin, d.basis, d.trigger_message_id, d.language, d.subject, d.body, d.facts, d.to_json, d.cc_json, \
     d.in_reply_to, d.references_text, d.revision, d.edited_by, d.edited_at, d.approved_by, d.approved_at, \
     d.approved_sha256, d.rejected_by, d.rejected_at, d.reject_reason, d.message_id, d.attempts, \
     d.next_attempt_at, d.last_error, d.claimed_by, d.claim_expires_at, d.send_phase, d.sent_at, \
     d.created_at, d.updated_at";

impl DraftRow {
    pub fn to(&self) -> Vec<String> {
        serde_json::from_str(&self.to_json).unwrap_or_default()
    }

    pub fn cc(&self) -> Vec<String> {
        serde_json::from_str(&self.cc_json).unwrap_or_default()
    }

    pub fn references(&self) -> Vec<String> {
        self.references_text
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    pub fn facts(&self) -> serde_json::Value {
        serde_json::from_str(&self.facts).unwrap_or(serde_json::Value::Null)
    }

    pub fn view(&self) -> DraftView {
        let time = |t: Option<i64>| t.map(ts_to_rfc3339);
        DraftView {
            id: self.id,
            case_key: self.case_key.clone(),
            case_id: self.case_number.clone(),
            kind: self.kind,
            status: self.status,
            origin: self.origin,
            language: self.language.clone(),
            revision: self.revision,
            subject: self.subject.clone(),
            to: self.to(),
            cc: self.cc(),
            in_reply_to: self.in_reply_to.clone(),
            references: self.references(),
            message_id: self.message_id.clone(),
            body: self.body.clone(),
            edited_by: self.edited_by.clone(),
            edited_at: time(self.edited_at),
            approved_by: self.approved_by.clone(),
            approved_at: time(self.approved_at),
            rejected_by: self.rejected_by.clone(),
            rejected_at: time(self.rejected_at),
            reject_reason: self.reject_reason.clone(),
            attempts: self.attempts,
            next_attempt_at: time(self.next_attempt_at),
            last_error: self.last_error.clone(),
            sending: self.claimed_by.is_some(),
            sent_at: time(self.sent_at),
            created_at: ts_to_rfc3339(self.created_at),
            updated_at: ts_to_rfc3339(self.updated_at),
        }
    }
}

/// A draft as `casebot drafts --json` and `draft show --json` print it.
#[derive(Debug, Clone, Serialize)]
pub struct DraftView {
    pub id: i64,
    pub case_key: String,
    /// The partner's case number (null for a thread without one).
    pub case_id: Option<String>,
    pub kind: DraftKind,
    pub status: DraftStatus,
    pub origin: DraftOrigin,
    pub language: String,
    pub revision: i64,
    pub subject: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub message_id: Option<String>,
    pub body: String,
    pub edited_by: Option<String>,
    pub edited_at: Option<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub rejected_by: Option<String>,
    pub rejected_at: Option<String>,
    pub reject_reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    /// A sender holds it right now.
    pub sending: bool,
    pub sent_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A draft as the drafting stage makes it.
#[derive(Debug, Clone)]
pub struct NewDraft {
    pub case_row: i64,
    pub kind: DraftKind,
    pub origin: DraftOrigin,
    pub basis: String,
    pub trigger: Option<i64>,
    pub language: &'static str,
    pub subject: String,
    pub body: String,
    pub facts: serde_json::Value,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
}

/// One message of a case as drafting reads it.
#[derive(Debug, Clone, FromRow)]
pub struct ThreadRow {
    pub id: i64,
    pub message_id: String,
    pub message_id_synthesized: i64,
    #[sqlx(try_from = "String")]
    pub direction: Direction,
    #[sqlx(try_from = "Option<String>")]
    pub signal: OptionalWord<MailSignal>,
    #[sqlx(try_from = "Option<String>")]
    pub stage_kind: OptionalWord<Stage>,
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub to_json: String,
    pub cc_json: String,
    pub subject_json: String,
    pub new_text: String,
    pub date_utc: i64,
}

/// Everything the drafting stage reads about a case.
#[derive(Debug, Clone)]
pub struct DraftingInput {
    pub case: super::cases::CaseSummary,
    pub messages: Vec<ThreadRow>,
    pub analyses: Vec<AnalysisView>,
    pub drafts: Vec<DraftRow>,
}

/// Why a gate operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("no draft {0}")]
    NotFound(i64),
    #[error("draft {id} is {status}, not {expected}")]
    WrongStatus {
        id: i64,
        status: DraftStatus,
        expected: DraftStatus,
    },
    #[error(
        "draft {id} changed since revision {seen} (it is at revision {current}): read it again"
    )]
    Stale { id: i64, seen: i64, current: i64 },
    /// The gate refuses what it was given (an empty reply, a rejection
    /// without a reason).
    #[error("{0}")]
    Refused(String),
    /// The reply's check refused the approval (see the drafting check).
    #[error("{0}")]
    Unfit(casebot_core::domain::Refusal),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl From<sqlx::Error> for GateError {
    fn from(e: sqlx::Error) -> Self {
        GateError::Store(e.into())
    }
}

/// Filters of `casebot drafts`.
#[derive(Debug, Clone, Default)]
pub struct DraftFilter {
    pub status: Option<DraftStatus>,
    pub case_row: Option<i64>,
}

/// What the drafting stage writes of a draft, bound by [`bind_content`] as $1 … $12.
const CONTENT_COLUMNS: &str = "kind, origin, basis, trigger_message_id, language, subject, body, facts, \
     to_json, cc_json, in_reply_to, references_text";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind_content<'q>(q: AnyQuery<'q>, d: &'q NewDraft, to: &'q str, cc: &'q str) -> AnyQuery<'q> {
    q.bind(d.kind.as_str())
        .bind(d.origin.as_str())
        .bind(&d.basis)
        .bind(d.trigger)
        .bind(d.language)
        .bind(&d.subject)
        .bind(&d.body)
        .bind(d.facts.to_string())
        .bind(to)
        .bind(cc)
        .bind(&d.in_reply_to)
        .bind(d.references.join(" "))
}

pub fn sha256_text(text: &str) -> String {
    casebot_core::domain::sha256_hex(text.as_bytes())
}

/// What the analysis and drafting stages still have to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Backlog {
    pub unanalysed: i64,
    pub undrafted: i64,
}

impl Backlog {
    pub fn is_empty(&self) -> bool {
        self.unanalysed == 0 && self.undrafted == 0
    }
}

impl Store {
    /// Work filed but not yet through analysis and drafting: customer mails
    /// not yet queued or still queued for analysis, and drafting-relevant
    /// events after the drafting stage's cursor. All zero means the pipeline
    /// has caught up with everything filed.
    pub async fn backlog(&self) -> Result<Backlog> {
        let unanalysed: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM messages WHERE direction = 'customer' \
                       AND id > COALESCE((SELECT MAX(message_id) FROM analyses), 0)) \
                  + (SELECT COUNT(*) FROM analyses WHERE status = 'pending')",
        )
        .fetch_one(self.pool())
        .await?;
        let undrafted = self.undrafted_events().await?;
        Ok(Backlog {
            unanalysed,
            undrafted,
        })
    }

    /// A case's thread (date order), analyses and drafts.
    pub async fn drafting_input(&self, case_row: i64) -> Result<Option<DraftingInput>> {
        let Some(case) = self.case_by_row(case_row).await? else {
            return Ok(None);
        };
        let messages: Vec<ThreadRow> = sqlx::query_as(
            "SELECT id, message_id, message_id_synthesized, direction, signal, stage_kind, from_name, from_address, \
             to_json, cc_json, subject_json, new_text, date_utc FROM messages WHERE case_id = $1 \
             ORDER BY date_utc, id",
        )
        .bind(case_row)
        .fetch_all(self.pool())
        .await
        .with_context(|| format!("Cannot read the thread of case row {case_row}"))?;
        let analyses = self.case_analyses(case_row).await?;
        let drafts = self
            .list_drafts(&DraftFilter {
                case_row: Some(case_row),
                ..DraftFilter::default()
            })
            .await?;
        Ok(Some(DraftingInput {
            case,
            messages,
            analyses,
            drafts,
        }))
    }

    pub async fn list_drafts(&self, filter: &DraftFilter) -> Result<Vec<DraftRow>> {
        let mut sql = format!(
            "SELECT {DRAFT_COLUMNS} FROM drafts d JOIN cases c ON c.id = d.case_id WHERE 1 = 1"
        );
        if filter.status.is_some() {
            sql.push_str(" AND d.status = $1");
        }
        if filter.case_row.is_some() {
            sql.push_str(if filter.status.is_some() {
                " AND d.case_id = $2"
            } else {
                " AND d.case_id = $1"
            });
        }
        sql.push_str(" ORDER BY d.id");
        let mut q = sqlx::query_as::<_, DraftRow>(&sql);
        if let Some(s) = &filter.status {
            q = q.bind(s.as_str());
        }
        if let Some(c) = filter.case_row {
            q = q.bind(c);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    pub async fn draft(&self, id: i64) -> Result<Option<DraftRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {DRAFT_COLUMNS} FROM drafts d JOIN cases c ON c.id = d.case_id WHERE d.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Creates a pending draft. `None` when the case already has one (the
    /// unique index decides, so two writers cannot both create).
    pub async fn create_draft(&self, d: &NewDraft, reason: &str) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let now = now_ts();
        let (to, cc) = (serde_json::to_string(&d.to)?, serde_json::to_string(&d.cc)?);
        let row = bind_content(
            sqlx::query(&format!(
                "INSERT INTO drafts ({CONTENT_COLUMNS}, case_id, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', $14, $14) \
                 ON CONFLICT DO NOTHING RETURNING id"
            )),
            d,
            &to,
            &cc,
        )
        .bind(d.case_row)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .context("Cannot create a draft")?;
        let id: Option<i64> = row.map(|r| r.try_get(0)).transpose()?;
        if let Some(id) = id {
            events::event(
                &mut tx,
                Some(d.case_row),
                d.trigger,
                "draft_created",
                serde_json::json!({"draft": id, "kind": d.kind, "origin": d.origin, "reason": reason}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Replaces a pending draft's content with a new rendering (new
    /// evidence). An engineer's edit it overwrites stays in the event.
    /// False when the draft is no longer pending.
    pub async fn replace_pending(
        &self,
        old: &DraftRow,
        d: &NewDraft,
        reason: &str,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let assignments: Vec<String> = CONTENT_COLUMNS
            .split(", ")
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 1))
            .collect();
        let (to, cc) = (serde_json::to_string(&d.to)?, serde_json::to_string(&d.cc)?);
        let done = bind_content(
            sqlx::query(&format!(
                "UPDATE drafts SET {}, revision = revision + 1, edited_by = NULL, edited_at = NULL, \
                 updated_at = $13 WHERE id = $14 AND status = 'pending'",
                assignments.join(", ")
            )),
            d,
            &to,
            &cc,
        )
        .bind(now_ts())
        .bind(old.id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            let mut detail = serde_json::json!({
                "draft": old.id, "from_kind": old.kind, "kind": d.kind, "reason": reason,
                "revision": old.revision + 1,
            });
            if let Some(by) = &old.edited_by {
                detail["replaced_edit_by"] = by.clone().into();
                detail["replaced_body"] = old.body.clone().into();
            }
            events::event(
                &mut tx,
                Some(old.case_row),
                d.trigger,
                "draft_updated",
                detail,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Deletes a pending draft that nothing calls for any more; its text
    /// stays in the event. A backfill never makes such a draft, so keeping
    /// the row would make a watched store differ from an imported one.
    pub async fn withdraw_draft(&self, old: &DraftRow, reason: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM drafts WHERE id = $1 AND status = 'pending'")
            .bind(old.id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if done {
            events::event(
                &mut tx,
                Some(old.case_row),
                None,
                "draft_withdrawn",
                serde_json::json!({"draft": old.id, "kind": old.kind, "reason": reason,
                    "edited_by": old.edited_by, "body": old.body}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn pending_for_gate(
        &self,
        id: i64,
        revision: Option<i64>,
        expected: DraftStatus,
    ) -> Result<DraftRow, GateError> {
        let d = self.draft(id).await?.ok_or(GateError::NotFound(id))?;
        if d.status != expected {
            return Err(GateError::WrongStatus {
                id,
                status: d.status,
                expected,
            });
        }
        if let Some(seen) = revision
            && seen != d.revision
        {
            return Err(GateError::Stale {
                id,
                seen,
                current: d.revision,
            });
        }
        Ok(d)
    }

    /// An engineer's new text for a pending draft.
    pub async fn edit_draft(
        &self,
        id: i64,
        by: &str,
        subject: Option<&str>,
        body: &str,
    ) -> Result<DraftRow, GateError> {
        let d = self
            .pending_for_gate(id, None, DraftStatus::Pending)
            .await?;
        let subject = subject.unwrap_or(&d.subject);
        let update = sqlx::query(
            "UPDATE drafts SET body = $1, subject = $2, revision = revision + 1, edited_by = $3, edited_at = $4, \
             updated_at = $4 WHERE id = $5 AND status = 'pending' AND revision = $6",
        )
        .bind(body)
        .bind(subject)
        .bind(by)
        .bind(now_ts())
        .bind(id)
        .bind(d.revision);
        let detail = serde_json::json!({"draft": id, "by": by, "revision": d.revision + 1,
            "subject": subject, "body": body});
        self.transition(&d, update, "draft_edited", detail, None)
            .await
    }

    /// Approves a pending draft: freezes its text (hash recorded), mints its
    /// Message-ID and queues it for sending. A closure's knowledge entry is
    /// written in the same transaction: approved, it is known.
    pub async fn approve_draft(
        &self,
        id: i64,
        by: &str,
        revision: Option<i64>,
        check: impl FnOnce(&DraftRow) -> Result<Vec<String>, casebot_core::domain::Refusal>,
        message_id: impl FnOnce(&DraftRow) -> String,
        knowledge: impl FnOnce(&DraftRow) -> Option<NewKnowledge>,
    ) -> Result<DraftRow, GateError> {
        let d = self
            .pending_for_gate(id, revision, DraftStatus::Pending)
            .await?;
        // Checked on the very revision approved: the warnings accepted are
        // recorded with the approval.
        let accepted_warnings = check(&d).map_err(GateError::Unfit)?;
        let sha = sha256_text(&d.body);
        let mid = message_id(&d);
        let learned = knowledge(&d);
        let update = sqlx::query(
            "UPDATE drafts SET status = 'approved', approved_by = $1, approved_at = $2, approved_sha256 = $3, \
             message_id = $4, next_attempt_at = $2, updated_at = $2 \
             WHERE id = $5 AND status = 'pending' AND revision = $6",
        )
        .bind(by)
        .bind(now_ts())
        .bind(&sha)
        .bind(&mid)
        .bind(id)
        .bind(d.revision);
        let mut detail = serde_json::json!({"draft": id, "kind": d.kind, "by": by, "revision": d.revision,
            "sha256": sha, "message_id": mid, "subject": d.subject, "body": d.body});
        if !accepted_warnings.is_empty() {
            detail["accepted_warnings"] = serde_json::json!(accepted_warnings);
        }
        self.transition(
            &d,
            update,
            "draft_approved",
            detail,
            learned.map(|k| (k, by)),
        )
        .await
    }

    pub async fn reject_draft(
        &self,
        id: i64,
        by: &str,
        reason: &str,
    ) -> Result<DraftRow, GateError> {
        let d = self
            .pending_for_gate(id, None, DraftStatus::Pending)
            .await?;
        let update = sqlx::query(
            "UPDATE drafts SET status = 'rejected', rejected_by = $1, rejected_at = $2, reject_reason = $3, \
             updated_at = $2 WHERE id = $4 AND status = 'pending' AND revision = $5",
        )
        .bind(by)
        .bind(now_ts())
        .bind(reason)
        .bind(id)
        .bind(d.revision);
        let detail = serde_json::json!({"draft": id, "kind": d.kind, "by": by, "reason": reason});
        self.transition(&d, update, "draft_rejected", detail, None)
            .await
    }

    /// One gate transition of the pending draft `d`: `update` (guarded by
    /// its status and revision) must change its row, then the event (and a
    /// closure's knowledge) are written in the same transaction. Someone
    /// else's change in between is reported, never overwritten.
    async fn transition<'q>(
        &self,
        d: &DraftRow,
        update: AnyQuery<'q>,
        event: &str,
        detail: serde_json::Value,
        learned: Option<(NewKnowledge, &str)>,
    ) -> Result<DraftRow, GateError> {
        let mut tx = self.begin_write().await?;
        if update.execute(&mut *tx).await?.rows_affected() != 1 {
            return Err(self.gate_race(d.id, DraftStatus::Pending).await);
        }
        events::event(&mut tx, Some(d.case_row), None, event, detail).await?;
        if let Some((k, by)) = learned {
            let kid = knowledge::upsert(&mut tx, &k, by).await?;
            events::event(
                &mut tx,
                Some(d.case_row),
                None,
                "knowledge_recorded",
                serde_json::json!({"knowledge": kid, "draft": d.id, "class": k.class}),
            )
            .await?;
        }
        tx.commit().await?;
        self.reread(d.id).await
    }

    /// Puts a failed draft back in the send queue (an engineer checked that
    /// it was not delivered). The approval and its text are unchanged.
    pub async fn retry_draft(&self, id: i64, by: &str) -> Result<DraftRow, GateError> {
        let d = self.pending_for_gate(id, None, DraftStatus::Failed).await?;
        let mut tx = self.begin_write().await?;
        let now = now_ts();
        sqlx::query(
            "UPDATE drafts SET status = 'approved', attempts = 0, next_attempt_at = $1, send_phase = NULL, \
             claimed_by = NULL, claim_expires_at = NULL, updated_at = $1 WHERE id = $2 AND status = 'failed'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        events::event(
            &mut tx,
            Some(d.case_row),
            None,
            "draft_retry",
            serde_json::json!({"draft": id, "by": by, "last_error": d.last_error}),
        )
        .await?;
        tx.commit().await?;
        self.reread(id).await
    }

    async fn reread(&self, id: i64) -> Result<DraftRow, GateError> {
        self.draft(id).await?.ok_or(GateError::NotFound(id))
    }

    async fn gate_race(&self, id: i64, expected: DraftStatus) -> GateError {
        match self.draft(id).await {
            Ok(Some(d)) if d.status != expected => GateError::WrongStatus {
                id,
                status: d.status,
                expected,
            },
            Ok(Some(d)) => GateError::Stale {
                id,
                seen: d.revision - 1,
                current: d.revision,
            },
            Ok(None) => GateError::NotFound(id),
            Err(e) => GateError::Store(e),
        }
    }

    /// Records an event of a case outside any other change.
    pub async fn case_event(
        &self,
        case_row: i64,
        kind: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut conn = self.pool().acquire().await?;
        events::event(&mut conn, Some(case_row), None, kind, detail).await
    }

    // --- The send queue ---------------------------------------------------

    /// Releases claims whose sender is gone. A claim that got as far as the
    /// message data may have been delivered: that draft fails and waits for
    /// an engineer; any other goes back in the queue. `is_dead` says whether
    /// a claim's owner is known to be gone before its lease ends.
    pub async fn recover_send_claims(&self, is_dead: impl Fn(&str) -> bool) -> Result<u64> {
        let now = now_ts();
        let claimed: Vec<(i64, i64, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT id, case_id, claimed_by, claim_expires_at, send_phase FROM drafts \
             WHERE status = 'approved' AND claimed_by IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?;
        let mut released = 0;
        for (id, case_row, owner, expires, phase) in claimed {
            if expires > now && !is_dead(&owner) {
                continue;
            }
            let mut tx = self.begin_write().await?;
            let (status, kind, error) = if phase.as_deref() == Some("data") {
                (
                    DraftStatus::Failed,
                    "draft_send_uncertain",
                    "the sender stopped while the server was receiving the message: it may have been \
                     delivered. Check the recipient's mailbox, then `casebot draft retry` it if it was not",
                )
            } else {
                (
                    DraftStatus::Approved,
                    "draft_send_interrupted",
                    "the sender stopped before transmitting the message; it will be sent again",
                )
            };
            let n = sqlx::query(
                "UPDATE drafts SET status = $1, claimed_by = NULL, claim_expires_at = NULL, send_phase = NULL, \
                 last_error = $2, updated_at = $3 WHERE id = $4 AND claimed_by = $5",
            )
            .bind(status.as_str())
            .bind(error)
            .bind(now)
            .bind(id)
            .bind(&owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                events::event(
                    &mut tx,
                    Some(case_row),
                    None,
                    kind,
                    serde_json::json!({"draft": id, "owner": owner, "phase": phase}),
                )
                .await?;
                released += 1;
            }
            tx.commit().await?;
        }
        Ok(released)
    }

    /// Claims the next approved draft that is due, for `lease_secs`.
    /// Claims the next approved draft due at or before `due_by` (a send
    /// pass's start, so that a retry the pass itself scheduled waits for the
    /// next pass however slow this one is).
    pub async fn claim_next_send(
        &self,
        owner: &str,
        lease_secs: i64,
        due_by: i64,
    ) -> Result<Option<DraftRow>> {
        let now = now_ts();
        // Two instances never claim the same draft: SQLite has one writer,
        // PostgreSQL skips the row another instance is claiming, and the
        // UPDATE below only takes an unclaimed one.
        let mut tx = self.begin_claim().await?;
        let id: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM drafts WHERE status = 'approved' AND claimed_by IS NULL \
             AND (next_attempt_at IS NULL OR next_attempt_at <= $1) ORDER BY next_attempt_at, id LIMIT 1{}",
            self.skip_locked()
        ))
        .bind(due_by.min(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            tx.commit().await?;
            return Ok(None);
        };
        sqlx::query(
            "UPDATE drafts SET claimed_by = $1, claim_expires_at = $2, send_phase = 'connect', \
             attempts = attempts + 1, updated_at = $3 WHERE id = $4 AND claimed_by IS NULL",
        )
        .bind(owner)
        .bind(now + lease_secs)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let d = self.draft(id).await?;
        Ok(d.filter(|d| d.claimed_by.as_deref() == Some(owner)))
    }

    /// Records that the server is about to receive the message itself.
    pub async fn mark_send_phase(&self, id: i64, owner: &str, phase: &str) -> Result<()> {
        let n = sqlx::query(
            "UPDATE drafts SET send_phase = $1, updated_at = $2 WHERE id = $3 AND claimed_by = $4",
        )
        .bind(phase)
        .bind(now_ts())
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?
        .rows_affected();
        anyhow::ensure!(n == 1, "draft {id} is no longer claimed by this sender");
        Ok(())
    }

    /// The server accepted the message.
    pub async fn mark_sent(
        &self,
        d: &DraftRow,
        owner: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let now = now_ts();
        let n = sqlx::query(
            "UPDATE drafts SET status = 'sent', sent_at = $1, claimed_by = NULL, claim_expires_at = NULL, \
             send_phase = NULL, last_error = NULL, next_attempt_at = NULL, updated_at = $1 \
             WHERE id = $2 AND claimed_by = $3",
        )
        .bind(now)
        .bind(d.id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Another sender took the claim over (this one was thought dead): the
        // draft says what it says, and no event may say otherwise.
        anyhow::ensure!(
            n == 1,
            "draft {}: the server accepted it, but this sender no longer holds its claim; \
             the draft was left as the sender that took it over set it: check it before any resend",
            d.id
        );
        let mut detail = detail;
        detail["draft"] = d.id.into();
        detail["message_id"] = d.message_id.clone().into();
        events::event(&mut tx, Some(d.case_row), None, "draft_sent", detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A send failed. `retry_at` queues it again; `None` fails it for good.
    pub async fn mark_send_error(
        &self,
        d: &DraftRow,
        owner: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let now = now_ts();
        let status = if retry_at.is_some() {
            DraftStatus::Approved
        } else {
            DraftStatus::Failed
        };
        let n = sqlx::query(
            "UPDATE drafts SET status = $1, last_error = $2, next_attempt_at = $3, claimed_by = NULL, \
             claim_expires_at = NULL, send_phase = NULL, updated_at = $4 WHERE id = $5 AND claimed_by = $6",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(retry_at)
        .bind(now)
        .bind(d.id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        anyhow::ensure!(
            n == 1,
            "draft {}: this sender no longer holds its claim; its failure ({error}) is not recorded",
            d.id
        );
        events::event(
            &mut tx,
            Some(d.case_row),
            None,
            if retry_at.is_some() {
                "draft_send_retry"
            } else {
                "draft_send_failed"
            },
            serde_json::json!({"draft": d.id, "attempt": d.attempts, "error": error,
                "retry_at": retry_at.map(ts_to_rfc3339)}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sent drafts whose copy is not filed in their case yet (the process
    /// stopped between the server's acceptance and the filing).
    pub async fn sent_without_copy(&self) -> Result<Vec<DraftRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {DRAFT_COLUMNS} FROM drafts d JOIN cases c ON c.id = d.case_id \
             WHERE d.status = 'sent' AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.message_id = d.message_id) \
             ORDER BY d.id"
        ))
        .fetch_all(self.pool())
        .await?)
    }
}

impl Store {
    /// Cases waiting on the customer whose newest mail is older than
    /// `before` (Unix seconds): the candidates for an archive notice, read
    /// off the (status, last mail) index.
    pub async fn cases_waiting_on_customer_before(&self, before: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM cases WHERE status = 'waiting_on_customer' AND last_message_at < $1 \
             ORDER BY last_message_at",
        )
        .bind(before)
        .fetch_all(self.pool())
        .await?)
    }
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    async fn approved_draft(store: &Store) -> i64 {
        sqlx::query(
            "INSERT INTO cases (key, case_id, status, created_at, updated_at) \
             VALUES ('CAS-00001-AAAAAA', 'CAS-00001-AAAAAA', 'waiting_on_us', 0, 0)",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let draft = NewDraft {
            case_row: 1,
            kind: DraftKind::Scope,
            origin: DraftOrigin::Auto,
            basis: "b".into(),
            trigger: None,
            language: "en",
            subject: "Re: x".into(),
            body: "text".into(),
            facts: serde_json::json!({}),
            to: vec!["a@example.cn".into()],
            cc: Vec::new(),
            in_reply_to: None,
            references: Vec::new(),
        };
        let id = store.create_draft(&draft, "test").await.unwrap().unwrap();
        store
            .approve_draft(
                id,
                "lead",
                None,
                |_| Ok(Vec::new()),
                |_| "m@example.com".into(),
                |_| None,
            )
            .await
            .unwrap();
        id
    }

    #[tokio::test]
    async fn a_sender_that_lost_its_claim_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::open(&url).await.unwrap();
        let id = approved_draft(&store).await;
        let claimed = store
            .claim_next_send("sender-a", 60, now_ts())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, id);
        // Sender A was thought dead: its claim is released and the draft failed.
        sqlx::query("UPDATE drafts SET status = 'failed', claimed_by = NULL WHERE id = $1")
            .bind(id)
            .execute(store.pool())
            .await
            .unwrap();
        let err = store
            .mark_sent(&claimed, "sender-a", serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no longer holds its claim"),
            "{err}"
        );
        assert!(
            store
                .mark_send_error(&claimed, "sender-a", "x", None)
                .await
                .is_err()
        );
        let sent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE kind = 'draft_sent'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(sent, 0);
        assert_eq!(
            store.draft(id).await.unwrap().unwrap().status,
            DraftStatus::Failed
        );
    }
}
