//! Notifications in the store: what the notification stage reads (events
//! with their cases, the accounts, their choices, the mailboxes that need a
//! login), the queue it writes, and the claims its sender takes.
//!
//! A notice is one row per person, channel and key (`UNIQUE`), inserted
//! with `ON CONFLICT DO NOTHING`: the stage may read an event twice (two
//! instances, a restart before the cursor moved) and the person is still
//! told once. A row goes `pending` → `sending` (claimed) → `sent`, or back
//! to `pending` with a later `due_at` after a failure, or `failed` for good.

use std::collections::HashMap;

use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::FromRow;

use casebot_core::notify::{CaseRef, LoggedEvent, MailboxState, Person, Topic};

use super::sql::placeholders;
use super::{Store, now_ts, ts_to_rfc3339};

/// Every state a notice can be in.
pub const NOTICE_STATES: [&str; 4] = ["pending", "sending", "sent", "failed"];

/// A notice for the queue.
#[derive(Debug, Clone)]
pub struct QueuedNotice {
    pub person: String,
    pub channel: String,
    pub topic: Topic,
    pub key: String,
    pub case_row: Option<i64>,
    /// The facts as JSON (`casebot_core::notify::Facts`).
    pub facts: String,
    pub due_at: i64,
}

/// A claimed notice, with what its channel needs of the person.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedNotice {
    pub id: i64,
    pub person: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub language: Option<String>,
    pub channel: String,
    pub topic: String,
    pub event_key: String,
    pub facts: String,
    pub created_at: i64,
    pub attempts: i64,
}

/// A notice as `casebot notifications list` and the lead's page show it.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeView {
    pub id: i64,
    pub person: String,
    pub channel: String,
    pub topic: String,
    pub event_key: String,
    pub case_key: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub due_at: String,
    pub sent_at: Option<String>,
}

#[derive(Debug, FromRow)]
struct NoticeRow {
    id: i64,
    person: String,
    channel: String,
    topic: String,
    event_key: String,
    case_key: Option<String>,
    state: String,
    attempts: i64,
    last_error: Option<String>,
    created_at: i64,
    due_at: i64,
    sent_at: Option<i64>,
}

#[derive(Debug, FromRow)]
struct EventRow {
    id: i64,
    kind: String,
    detail: String,
    case_id: Option<i64>,
    case_key: Option<String>,
    title: Option<String>,
    customer: Option<String>,
}

impl Store {
    /// The events after `after` that may call for a notice (at most
    /// `limit`), each with its case and the case's owner now; and the id
    /// to read on from.
    pub async fn notice_events(&self, after: i64, limit: i64) -> Result<(Vec<LoggedEvent>, i64)> {
        let kinds = casebot_core::notify::EVENT_KINDS
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        // The window ends at the newest event now, so events of kinds that
        // concern nobody still move the cursor.
        let newest = self.newest_event().await?;
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT e.id, e.kind, e.detail, e.case_id, c.key AS case_key, c.title, c.customer \
             FROM events e LEFT JOIN cases c ON c.id = e.case_id \
             WHERE e.id > $1 AND e.id <= $2 AND e.kind IN ({kinds}) ORDER BY e.id LIMIT $3"
        ))
        .bind(after)
        .bind(newest)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let next = if rows.len() as i64 == limit {
            rows.last().map_or(newest, |r| r.id)
        } else {
            newest
        };
        let mut owners: HashMap<i64, Option<String>> = HashMap::new();
        let mut events = Vec::with_capacity(rows.len());
        for r in rows {
            let case = match (r.case_id, r.case_key) {
                (Some(row), Some(key)) => {
                    let owner = match owners.get(&row) {
                        Some(o) => o.clone(),
                        None => {
                            let o = self.case_owner(row).await?;
                            owners.insert(row, o.clone());
                            o
                        }
                    };
                    Some(CaseRef {
                        row,
                        key,
                        title: r.title,
                        customer: r.customer,
                        owner,
                    })
                }
                _ => None,
            };
            events.push(LoggedEvent {
                id: r.id,
                kind: r.kind,
                case,
                detail: serde_json::from_str(&r.detail).unwrap_or_default(),
            });
        }
        Ok((events, next))
    }

    /// Every desk account, as notifications see them.
    pub async fn notify_people(&self) -> Result<Vec<Person>> {
        let rows: Vec<(String, Option<String>, String, i64)> =
            sqlx::query_as("SELECT name, email, role, disabled FROM users ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(name, email, role, disabled)| Person {
                name,
                email: email.filter(|e| !e.trim().is_empty()),
                lead: role == "lead",
                disabled: disabled != 0,
            })
            .collect())
    }

    /// Every choice people made: (person, topic, channel, on).
    pub async fn notify_choices(&self) -> Result<Vec<(String, Topic, String, bool)>> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT u.name, p.topic, p.channel, p.enabled FROM notify_prefs p \
             JOIN users u ON u.id = p.user_id ORDER BY u.name, p.topic, p.channel",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(name, topic, channel, on)| {
                let topic = Topic::try_from(topic)
                    .map_err(|e| anyhow::anyhow!("notify_prefs.topic: {e}"))?;
                Ok((name, topic, channel, on != 0))
            })
            .collect()
    }

    /// Records `person`'s choice for `topic` on `channel`; `None` goes back
    /// to the channel's default. `false` when there is no such account.
    pub async fn set_notify_choice(
        &self,
        person: &str,
        topic: Topic,
        channel: &str,
        on: Option<bool>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let user: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
            .bind(person)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(user) = user else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM notify_prefs WHERE user_id = $1 AND topic = $2 AND channel = $3")
            .bind(user)
            .bind(topic.as_str())
            .bind(channel)
            .execute(&mut *tx)
            .await?;
        if let Some(on) = on {
            sqlx::query(
                "INSERT INTO notify_prefs (user_id, topic, channel, enabled) VALUES ($1, $2, $3, $4)",
            )
            .bind(user)
            .bind(topic.as_str())
            .bind(channel)
            .bind(i64::from(on))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Queues `notices` (those already queued for the same person, channel
    /// and key are left alone) and, in the same transaction, moves the
    /// cursor `name` to `position`. Returns how many were new.
    pub async fn queue_notices(
        &self,
        notices: &[QueuedNotice],
        cursor: Option<(&str, i64)>,
    ) -> Result<usize> {
        let mut tx = self.begin_write().await?;
        let now = now_ts();
        let mut new = 0;
        for n in notices {
            let done = sqlx::query(
                "INSERT INTO notifications (user_id, channel, topic, event_key, case_id, facts, \
                 created_at, due_at, state, attempts) \
                 SELECT id, $1, $2, $3, $4, $5, $6, $7, 'pending', 0 FROM users WHERE name = $8 \
                 ON CONFLICT (user_id, channel, event_key) DO NOTHING",
            )
            .bind(&n.channel)
            .bind(n.topic.as_str())
            .bind(&n.key)
            .bind(n.case_row)
            .bind(&n.facts)
            .bind(now)
            .bind(n.due_at)
            .bind(&n.person)
            .execute(&mut *tx)
            .await
            .context("Cannot queue a notification")?;
            new += done.rows_affected() as usize;
        }
        if let Some((name, position)) = cursor {
            sqlx::query(
                "INSERT INTO cursors (name, position) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            )
            .bind(name)
            .bind(position)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(new)
    }

    /// Claims up to `limit` notices due by `now` for `claimant`. Two
    /// instances never claim the same row (one writer on SQLite; rows
    /// being claimed are skipped on PostgreSQL).
    pub async fn claim_due_notices(
        &self,
        claimant: &str,
        now: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedNotice>> {
        // The loop asks every two seconds; a read answers the usual "nothing
        // due" without taking the store's write lock (SQLite's claim does).
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM notifications WHERE state = 'pending' AND due_at <= $1 LIMIT 1",
        )
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_claim().await?;
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM notifications WHERE state = 'pending' AND due_at <= $1 \
             ORDER BY id LIMIT $2{}",
            self.skip_locked()
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let list = placeholders(2, ids.len());
        let claim = format!(
            "UPDATE notifications SET state = 'sending', claimed_by = $1, attempts = attempts + 1 \
             WHERE state = 'pending' AND id IN ({list})"
        );
        let mut q = sqlx::query(&claim).bind(claimant);
        for id in &ids {
            q = q.bind(id);
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        let read = format!(
            "SELECT n.id, u.name AS person, u.email, u.display_name, u.language, n.channel, \
             n.topic, n.event_key, n.facts, n.created_at, n.attempts \
             FROM notifications n JOIN users u ON u.id = n.user_id \
             WHERE n.claimed_by = $1 AND n.state = 'sending' AND n.id IN ({list}) ORDER BY n.id"
        );
        let mut q = sqlx::query_as::<_, ClaimedNotice>(&read).bind(claimant);
        for id in &ids {
            q = q.bind(id);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// Marks notices delivered.
    pub async fn notices_sent(&self, ids: &[i64]) -> Result<()> {
        self.settle_notices(ids, "sent", None, None).await
    }

    /// Marks notices not delivered: due again at `retry_at`, or failed for
    /// good without one.
    pub async fn notices_not_sent(
        &self,
        ids: &[i64],
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<()> {
        let state = if retry_at.is_some() {
            "pending"
        } else {
            "failed"
        };
        self.settle_notices(ids, state, Some(error), retry_at).await
    }

    async fn settle_notices(
        &self,
        ids: &[i64],
        state: &str,
        error: Option<&str>,
        due_at: Option<i64>,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let now = now_ts();
        let list = placeholders(6, ids.len());
        let settle = format!(
            "UPDATE notifications SET state = $1, last_error = COALESCE($2, last_error), \
             due_at = COALESCE($3, due_at), sent_at = CASE WHEN $4 = 'sent' THEN $5 ELSE sent_at END, \
             claimed_by = NULL WHERE id IN ({list})"
        );
        let mut q = sqlx::query(&settle)
            .bind(state)
            .bind(error)
            .bind(due_at)
            .bind(state)
            .bind(now);
        for id in ids {
            q = q.bind(id);
        }
        q.execute(self.pool()).await?;
        Ok(())
    }

    /// Notices a dead claimant was sending end `failed`: the message may
    /// have gone out, and a person is told at most once.
    pub async fn recover_notice_claims(&self, is_dead: impl Fn(&str) -> bool) -> Result<u64> {
        let claimants: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT claimed_by FROM notifications WHERE state = 'sending' AND claimed_by IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?;
        let mut recovered = 0;
        for claimant in claimants.into_iter().filter(|c| is_dead(c)) {
            recovered += sqlx::query(
                "UPDATE notifications SET state = 'failed', claimed_by = NULL, \
                 last_error = 'interrupted while sending; not sent again, so nobody is told twice' \
                 WHERE state = 'sending' AND claimed_by = $1",
            )
            .bind(&claimant)
            .execute(self.pool())
            .await?
            .rows_affected();
        }
        Ok(recovered)
    }

    /// The newest notices, of one person or of everyone.
    pub async fn notices(&self, person: Option<&str>, limit: i64) -> Result<Vec<NoticeView>> {
        let rows: Vec<NoticeRow> = sqlx::query_as(
            "SELECT n.id, u.name AS person, n.channel, n.topic, n.event_key, c.key AS case_key, \
             n.state, n.attempts, n.last_error, n.created_at, n.due_at, n.sent_at \
             FROM notifications n JOIN users u ON u.id = n.user_id \
             LEFT JOIN cases c ON c.id = n.case_id \
             WHERE ($1 IS NULL OR u.name = $1) ORDER BY n.id DESC LIMIT $2",
        )
        .bind(person)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| NoticeView {
                id: r.id,
                person: r.person,
                channel: r.channel,
                topic: r.topic,
                event_key: r.event_key,
                case_key: r.case_key,
                state: r.state,
                attempts: r.attempts,
                last_error: r.last_error,
                created_at: ts_to_rfc3339(r.created_at),
                due_at: ts_to_rfc3339(r.due_at),
                sent_at: r.sent_at.map(ts_to_rfc3339),
            })
            .collect())
    }

    /// The watched folders and whether each needs a login.
    pub async fn mailbox_states(&self) -> Result<Vec<MailboxState>> {
        let rows: Vec<(String, String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT mailbox, folder, state, state_since, last_error FROM imap_folders ORDER BY mailbox, folder",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(mailbox, folder, state, since, error)| MailboxState {
                mailbox,
                folder,
                needs_login: state == "needs_login",
                since,
                error,
            })
            .collect())
    }
}
