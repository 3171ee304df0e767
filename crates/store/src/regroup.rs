//! Fixing misfiled mail: moving mails to another case or a new one,
//! splitting a case at a mail, merging two cases, and undoing any of them.
//!
//! Each is one write transaction under the store's write lock (the same as
//! filing, so several instances on PostgreSQL never interleave): the mails
//! change case, both cases are derived again from the mails they now hold
//! (`casebot_core::mail::regroup`), their pending drafts are withdrawn (the
//! drafting stage decides again), and one `messages_moved` event on each case
//! records who, when, why and exactly which mails, which is what an undo
//! reads. A mail is never copied or dropped: only its `case_id` changes, so
//! threading follows it (a later reply to it is filed where it is now).

use anyhow::{Context, Result, anyhow, bail};
use casebot_core::domain::{CaseStatus, Direction, MailSignal};
use casebot_core::mail::regroup::{StoredFacts, derive};
use casebot_core::mail::subject::ParsedSubject;
use casebot_core::mail::thread::thread_key;
use serde::Serialize;
use sqlx::{AnyConnection, FromRow};

use crate::terms::{Indexed, index_cases};
use crate::{Store, events, now_ts};

/// Where moved mail goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// An existing case (by key, case number or row).
    Case(String),
    /// A new case without a case number (`T-…`).
    NewCase,
}

/// Which operation moved the mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Move,
    Split,
    Merge,
    Undo,
}

/// What an operation did.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Moved {
    /// The event on the case the mail left: what `casebot undo` names.
    pub event: i64,
    pub operation: Operation,
    pub from: String,
    pub to: String,
    /// The mails moved (their rows).
    pub messages: Vec<i64>,
    /// The destination was made by this operation.
    pub new_case: bool,
    pub by: String,
    pub reason: String,
    /// For an undo: the event undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<i64>,
}

#[derive(Debug, FromRow)]
struct CaseRef {
    id: i64,
    key: String,
    merged_into: Option<i64>,
}

#[derive(Debug, FromRow)]
struct FactRow {
    id: i64,
    date_utc: i64,
    direction: String,
    signal: Option<String>,
    subject_json: Option<String>,
}

impl Store {
    /// Moves mails (rows of one case) to another case or a new one.
    pub async fn move_messages(
        &self,
        rows: &[i64],
        to: Destination,
        by: &str,
        reason: &str,
    ) -> Result<Moved> {
        let (by, reason) = who_and_why(by, reason)?;
        let mut rows = rows.to_vec();
        rows.sort_unstable();
        rows.dedup();
        let mut tx = self.begin_write().await?;
        let from = source_of(&mut tx, &rows).await?;
        let moved = regroup(&mut tx, &from, &rows, to, Operation::Move, by, reason, None).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Moves the mail `at` and every later mail of its case into a new case.
    pub async fn split_case(&self, key: &str, at: i64, by: &str, reason: &str) -> Result<Moved> {
        let (by, reason) = who_and_why(by, reason)?;
        let mut tx = self.begin_write().await?;
        let case = case_ref(&mut tx, key).await?;
        let thread: Vec<(i64, i64)> =
            sqlx::query_as("SELECT id, date_utc FROM messages WHERE case_id = $1")
                .bind(case.id)
                .fetch_all(&mut *tx)
                .await?;
        let rows = casebot_core::mail::regroup::split_from(&thread, at).ok_or_else(|| {
            anyhow!(
                "case {} cannot be split at mail {at}: it is not one of its mails, or it is \
                 the first one (nothing would stay)",
                case.key
            )
        })?;
        let moved = regroup(
            &mut tx,
            &case,
            &rows,
            Destination::NewCase,
            Operation::Split,
            by,
            reason,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Moves every mail of `from` into `into`; `from` then points at `into`,
    /// so its key (and its case number in new mail) finds `into`.
    pub async fn merge_cases(
        &self,
        from: &str,
        into: &str,
        by: &str,
        reason: &str,
    ) -> Result<Moved> {
        let (by, reason) = who_and_why(by, reason)?;
        let mut tx = self.begin_write().await?;
        let source = case_ref(&mut tx, from).await?;
        let rows: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM messages WHERE case_id = $1 ORDER BY id")
                .bind(source.id)
                .fetch_all(&mut *tx)
                .await?;
        let moved = regroup(
            &mut tx,
            &source,
            &rows,
            Destination::Case(into.to_string()),
            Operation::Merge,
            by,
            reason,
            None,
        )
        .await?;
        let target = case_ref(&mut tx, &moved.to).await?;
        sqlx::query("UPDATE cases SET merged_into = $1 WHERE id = $2")
            .bind(target.id)
            .bind(source.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Undoes a move, split or merge (named by its `messages_moved` event):
    /// the same mails go back to the case they left; a merged case stands
    /// on its own again. Refused when one of the mails has moved since.
    pub async fn undo_regroup(&self, event: i64, by: &str, reason: &str) -> Result<Moved> {
        let (by, reason) = who_and_why(by, reason)?;
        let mut tx = self.begin_write().await?;
        let detail: Option<String> = sqlx::query_scalar(
            "SELECT detail FROM events WHERE id = $1 AND kind = 'messages_moved'",
        )
        .bind(event)
        .fetch_optional(&mut *tx)
        .await?;
        let done: Moved = detail
            .and_then(|d| serde_json::from_str(&d).ok())
            .filter(|m: &Moved| m.event == event)
            .ok_or_else(|| {
                anyhow!("event {event} is not a move, split or merge that can be undone")
            })?;
        if done.operation == Operation::Undo {
            bail!("event {event} is itself an undo: move the mails again instead");
        }
        let already: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE kind = 'move_undone' AND detail LIKE $1",
        )
        // The detail's keys are sorted: `undoes` is last, so `…:39}` is not `…:390}`.
        .bind(format!("%\"undoes\":{event}}}"))
        .fetch_one(&mut *tx)
        .await?;
        if already > 0 {
            bail!("event {event} was already undone");
        }
        let target = raw_case_ref(&mut tx, &done.to).await?;
        let still_there: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM messages WHERE case_id = $1 AND id IN ({})",
            list(&done.messages)
        ))
        .bind(target.id)
        .fetch_one(&mut *tx)
        .await?;
        if still_there != done.messages.len() as i64 {
            bail!(
                "the mails of event {event} are no longer all in {}: undo the later move first",
                done.to
            );
        }
        let source = raw_case_ref(&mut tx, &done.from).await?;
        if done.operation == Operation::Merge {
            sqlx::query("UPDATE cases SET merged_into = NULL WHERE id = $1")
                .bind(source.id)
                .execute(&mut *tx)
                .await?;
        }
        let source = raw_case_ref(&mut tx, &done.from).await?;
        let moved = regroup(
            &mut tx,
            &target,
            &done.messages,
            Destination::Case(source.key.clone()),
            Operation::Undo,
            by,
            reason,
            Some(event),
        )
        .await?;
        events::event(
            &mut tx,
            Some(target.id),
            None,
            "move_undone",
            serde_json::json!({"undoes": event, "by": by, "reason": reason}),
        )
        .await?;
        tx.commit().await?;
        Ok(moved)
    }
}

/// A status or priority set by hand, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct CaseChange {
    pub case: String,
    pub what: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
    pub by: String,
    pub reason: String,
}

impl Store {
    /// Closes (`Resolved`) or reopens (`WaitingOnUs`) a case by hand. The
    /// SLA follows it as a happening; the next mail goes on from there.
    pub async fn set_case_status(
        &self,
        key: &str,
        status: CaseStatus,
        by: &str,
        reason: &str,
    ) -> Result<CaseChange> {
        let (by, reason) = who_and_why(by, reason)?;
        if !matches!(status, CaseStatus::Resolved | CaseStatus::WaitingOnUs) {
            bail!(
                "a case is closed (resolved) or reopened (waiting_on_us) by hand, not set to {}",
                status.as_str()
            );
        }
        let mut tx = self.begin_write().await?;
        let case = case_ref(&mut tx, key).await?;
        let before: String = sqlx::query_scalar("SELECT status FROM cases WHERE id = $1")
            .bind(case.id)
            .fetch_one(&mut *tx)
            .await?;
        if before == status.as_str() {
            bail!("case {} is already {}", case.key, status.as_str());
        }
        sqlx::query("UPDATE cases SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now_ts())
            .bind(case.id)
            .execute(&mut *tx)
            .await?;
        let to = Some(status.as_str().to_string());
        let change = record_change(
            &mut tx,
            &case,
            "status_set",
            Some(before.clone()),
            to,
            by,
            reason,
        )
        .await?;
        // What drafting and the SLA follow.
        events::event(
            &mut tx,
            Some(case.id),
            None,
            "status_changed",
            serde_json::json!({"from": before, "to": status, "by": by}),
        )
        .await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Sets the case's priority by hand (it stands over the subject's tag),
    /// or with `None` gives it back to the subjects.
    pub async fn set_case_priority(
        &self,
        key: &str,
        priority: Option<&str>,
        by: &str,
        reason: &str,
    ) -> Result<CaseChange> {
        let (by, reason) = who_and_why(by, reason)?;
        let priority = priority.map(|p| p.trim().to_uppercase());
        if let Some(p) = &priority
            && !matches!(p.as_str(), "P1" | "P2" | "P3" | "P4")
        {
            bail!("{p:?} is not a priority (P1 to P4)");
        }
        let mut tx = self.begin_write().await?;
        let case = case_ref(&mut tx, key).await?;
        let before: Option<String> = sqlx::query_scalar("SELECT priority FROM cases WHERE id = $1")
            .bind(case.id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE cases SET priority_set = $1, priority = COALESCE($1, priority) WHERE id = $2",
        )
        .bind(&priority)
        .bind(case.id)
        .execute(&mut *tx)
        .await?;
        if priority.is_none() {
            // The subjects decide again.
            rederive(&mut tx, &case, now_ts()).await?;
        }
        let after: Option<String> = sqlx::query_scalar("SELECT priority FROM cases WHERE id = $1")
            .bind(case.id)
            .fetch_one(&mut *tx)
            .await?;
        let change = record_change(
            &mut tx,
            &case,
            "priority_changed",
            before,
            after,
            by,
            reason,
        )
        .await?;
        tx.commit().await?;
        Ok(change)
    }
}

/// Records a status or priority set by hand, as event `kind`.
async fn record_change(
    conn: &mut AnyConnection,
    case: &CaseRef,
    kind: &'static str,
    from: Option<String>,
    to: Option<String>,
    by: &str,
    reason: &str,
) -> Result<CaseChange> {
    let change = CaseChange {
        case: case.key.clone(),
        what: if kind == "status_set" {
            "status"
        } else {
            "priority"
        },
        from,
        to,
        by: by.to_string(),
        reason: reason.to_string(),
    };
    events::event(conn, Some(case.id), None, kind, serde_json::json!(change)).await?;
    Ok(change)
}

fn who_and_why<'a>(by: &'a str, reason: &'a str) -> Result<(&'a str, &'a str)> {
    let (by, reason) = (by.trim(), reason.trim());
    if by.is_empty() || reason.is_empty() {
        bail!("say who does it (--as) and why (--reason): it is kept in both cases' audit trails");
    }
    Ok((by, reason))
}

fn list(rows: &[i64]) -> String {
    rows.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A case by key, case number (any letter case) or row, following a merge.
async fn case_ref(conn: &mut AnyConnection, key: &str) -> Result<CaseRef> {
    let mut case = raw_case_ref(conn, key).await?;
    // A merged case's mail lives in the case it was merged into.
    for _ in 0..16 {
        let Some(into) = case.merged_into else {
            return Ok(case);
        };
        case = raw_case_ref(conn, &into.to_string()).await?;
    }
    bail!("case {key}: its merges go round in a circle")
}

/// A case by key, case number or row, as it is (merged or not).
async fn raw_case_ref(conn: &mut AnyConnection, key: &str) -> Result<CaseRef> {
    let key = key.trim();
    let by_key: Option<CaseRef> =
        sqlx::query_as("SELECT id, key, merged_into FROM cases WHERE key = $1 OR key = $2")
            .bind(key)
            .bind(key.to_uppercase())
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(c) = by_key {
        return Ok(c);
    }
    if let Ok(row) = key.parse::<i64>() {
        let by_row: Option<CaseRef> =
            sqlx::query_as("SELECT id, key, merged_into FROM cases WHERE id = $1")
                .bind(row)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(c) = by_row {
            return Ok(c);
        }
    }
    bail!("no case {key}")
}

/// The one case all of `rows` belong to.
async fn source_of(conn: &mut AnyConnection, rows: &[i64]) -> Result<CaseRef> {
    if rows.is_empty() {
        bail!("name the mails to move");
    }
    let cases: Vec<(Option<i64>,)> = sqlx::query_as(&format!(
        "SELECT DISTINCT case_id FROM messages WHERE id IN ({})",
        list(rows)
    ))
    .fetch_all(&mut *conn)
    .await?;
    let found: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM messages WHERE id IN ({})",
        list(rows)
    ))
    .fetch_one(&mut *conn)
    .await?;
    if found != rows.len() as i64 {
        bail!(
            "{} of the mails named do not exist",
            rows.len() as i64 - found
        );
    }
    match cases.as_slice() {
        [(Some(case),)] => raw_case_ref(conn, &case.to_string()).await,
        _ => bail!("the mails named are in different cases: move them one case at a time"),
    }
}

/// Moves `rows` from `from` to `to` and derives both cases again.
#[allow(clippy::too_many_arguments)]
async fn regroup(
    conn: &mut AnyConnection,
    from: &CaseRef,
    rows: &[i64],
    to: Destination,
    operation: Operation,
    by: &str,
    reason: &str,
    undoes: Option<i64>,
) -> Result<Moved> {
    if rows.is_empty() {
        bail!("case {} has no mail to move", from.key);
    }
    let now = now_ts();
    let (target, new_case) = match to {
        Destination::Case(key) => (case_ref(conn, &key).await?, false),
        Destination::NewCase => {
            // A thread key of its own, as a thread without a case number has.
            let first: String = sqlx::query_scalar("SELECT message_id FROM messages WHERE id = $1")
                .bind(rows[0])
                .fetch_one(&mut *conn)
                .await?;
            let key = thread_key(&format!("{first}#{}#{now}", from.key));
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO cases (key, case_id, status, created_at, updated_at) \
                 VALUES ($1, NULL, $2, $3, $3) RETURNING id",
            )
            .bind(&key)
            .bind(CaseStatus::New.as_str())
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
            events::event(
                conn,
                Some(id),
                None,
                "case_opened",
                serde_json::json!({"key": key, "by": by}),
            )
            .await?;
            (
                CaseRef {
                    id,
                    key,
                    merged_into: None,
                },
                true,
            )
        }
    };
    if target.id == from.id {
        bail!("the mails are already in case {}", from.key);
    }
    sqlx::query(&format!(
        "UPDATE messages SET case_id = $1 WHERE case_id = $2 AND id IN ({})",
        list(rows)
    ))
    .bind(target.id)
    .bind(from.id)
    .execute(&mut *conn)
    .await
    .context("Cannot move the mails")?;
    // What the cases called for before is decided again from scratch.
    for case in [from.id, target.id] {
        withdraw_pending(
            conn,
            case,
            &format!("mail moved between {} and {}", from.key, target.key),
        )
        .await?;
    }
    let mut moved = Moved {
        event: 0,
        operation,
        from: from.key.clone(),
        to: target.key.clone(),
        messages: rows.to_vec(),
        new_case,
        by: by.to_string(),
        reason: reason.to_string(),
        undoes,
    };
    // The event on the case the mail left is the operation's name.
    moved.event = events::event_id(
        conn,
        Some(from.id),
        None,
        "messages_moved",
        serde_json::json!(moved),
    )
    .await?;
    let detail = serde_json::to_value(&moved)?;
    sqlx::query("UPDATE events SET detail = $1 WHERE id = $2")
        .bind(detail.to_string())
        .bind(moved.event)
        .execute(&mut *conn)
        .await?;
    events::event(conn, Some(target.id), None, "messages_moved", detail).await?;
    for case in [from, &target] {
        rederive(conn, case, now).await?;
    }
    Ok(moved)
}

/// Withdraws a case's pending drafts, keeping their text in the trail.
async fn withdraw_pending(conn: &mut AnyConnection, case: i64, why: &str) -> Result<()> {
    let pending: Vec<(i64, String, Option<String>, String)> = sqlx::query_as(
        "SELECT id, kind, edited_by, body FROM drafts WHERE case_id = $1 AND status = 'pending'",
    )
    .bind(case)
    .fetch_all(&mut *conn)
    .await?;
    for (id, kind, edited_by, body) in pending {
        sqlx::query("DELETE FROM drafts WHERE id = $1 AND status = 'pending'")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        events::event(
            conn,
            Some(case),
            None,
            "draft_withdrawn",
            serde_json::json!({"draft": id, "kind": kind, "edited_by": edited_by, "body": body, "reason": why}),
        )
        .await?;
    }
    Ok(())
}

/// A case's fields, status and counts from the mails it holds now; its SLA
/// snapshot is dropped for the SLA stage to redo.
async fn rederive(conn: &mut AnyConnection, case: &CaseRef, now: i64) -> Result<()> {
    let rows: Vec<FactRow> = sqlx::query_as(
        "SELECT id, date_utc, direction, signal, subject_json FROM messages WHERE case_id = $1",
    )
    .bind(case.id)
    .fetch_all(&mut *conn)
    .await?;
    let facts: Vec<StoredFacts> = rows
        .into_iter()
        .map(|r| StoredFacts {
            row: r.id,
            date: r.date_utc,
            direction: Direction::try_from(r.direction).unwrap_or(Direction::Customer),
            signal: r.signal.and_then(|s| MailSignal::try_from(s).ok()),
            subject: r
                .subject_json
                .and_then(|j| serde_json::from_str::<ParsedSubject>(&j).ok())
                .unwrap_or_default(),
        })
        .collect();
    let d = derive(&facts);
    let before: String = sqlx::query_scalar("SELECT status FROM cases WHERE id = $1")
        .bind(case.id)
        .fetch_one(&mut *conn)
        .await?;
    crate::messages::write_derived(conn, case.id, &d, now).await?;
    if before != d.status.as_str() {
        events::event(
            conn,
            Some(case.id),
            None,
            "status_changed",
            serde_json::json!({"from": before, "to": d.status}),
        )
        .await?;
    }
    sqlx::query("DELETE FROM case_sla WHERE case_id = $1")
        .bind(case.id)
        .execute(&mut *conn)
        .await?;
    index_cases(
        conn,
        &[Indexed {
            id: case.id,
            key: &case.key,
            title: d.fields.title.as_deref(),
            internal_ref: d.fields.internal_ref.as_deref(),
        }],
    )
    .await
}
