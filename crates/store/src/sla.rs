//! What the SLA engine reads (each case's mails and assignments) and the
//! snapshots it leaves for the desk's pages.

use std::collections::HashMap;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{OptionalWord, Store, events, now_ts};
use casebot_core::domain::{CaseStatus, Direction, MailSignal, Stage};
use casebot_core::sla::{CaseSla, Happening, Timeline};

/// How many ids go into one `IN (…)` list.
const ID_CHUNK: usize = 500;

#[derive(FromRow)]
struct TimelineCase {
    id: i64,
    key: String,
    case_id: Option<String>,
    title: Option<String>,
    customer: Option<String>,
    priority: Option<String>,
}

#[derive(FromRow)]
struct TimelineMail {
    case_id: i64,
    date_utc: i64,
    #[sqlx(try_from = "String")]
    direction: Direction,
    #[sqlx(try_from = "Option<String>")]
    signal: OptionalWord<MailSignal>,
    #[sqlx(try_from = "Option<String>")]
    stage_kind: OptionalWord<Stage>,
    from_address: Option<String>,
}

#[derive(FromRow)]
struct Assignment {
    case_id: i64,
    at: i64,
    detail: String,
}

fn instant(ts: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(ts, 0).unwrap_or_default()
}

fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

impl Store {
    /// The timelines of the given cases (every case when `None`), with each
    /// engineer's address replaced by their desk account's name when one
    /// has it.
    pub async fn sla_timelines(&self, case_rows: Option<&[i64]>) -> Result<Vec<Timeline>> {
        let people = self.people_by_address().await?;
        let chunks: Vec<Option<String>> = match case_rows {
            None => vec![None],
            Some(rows) => rows.chunks(ID_CHUNK).map(|c| Some(id_list(c))).collect(),
        };
        let mut timelines = Vec::new();
        let mut by_case_status = Vec::new();
        for chunk in chunks {
            // `AND column IN (…)` for a chunk of ids, nothing for every case.
            let only = |column: &str| {
                chunk
                    .as_ref()
                    .map(|ids| format!("AND {column} IN ({ids})"))
                    .unwrap_or_default()
            };
            let cases: Vec<TimelineCase> = sqlx::query_as(&format!(
                "SELECT id, key, case_id, title, customer, priority FROM cases WHERE 1 = 1 {}",
                only("id")
            ))
            .fetch_all(self.pool())
            .await?;
            let mails: Vec<TimelineMail> = sqlx::query_as(&format!(
                "SELECT case_id, date_utc, direction, signal, stage_kind, from_address FROM messages \
                 WHERE 1 = 1 {} ORDER BY case_id, date_utc, id",
                only("case_id")
            ))
            .fetch_all(self.pool())
            .await
            .context("Cannot read the mails of the SLA timelines")?;
            let assignments: Vec<Assignment> = sqlx::query_as(&format!(
                "SELECT case_id, at, detail FROM events WHERE kind = 'owner_assigned' {} ORDER BY id",
                only("case_id")
            ))
            .fetch_all(self.pool())
            .await?;
            let statuses: Vec<Assignment> = sqlx::query_as(&format!(
                "SELECT case_id, at, detail FROM events WHERE kind = 'status_set' {} ORDER BY id",
                only("case_id")
            ))
            .fetch_all(self.pool())
            .await?;
            for s in statuses {
                let detail: serde_json::Value = serde_json::from_str(&s.detail).unwrap_or_default();
                if let Some(status) = detail["to"].as_str().and_then(CaseStatus::parse) {
                    by_case_status.push((s.case_id, instant(s.at), status));
                }
            }

            let mut by_case: HashMap<i64, Vec<Happening>> = HashMap::new();
            for (case, at, status) in by_case_status.drain(..) {
                by_case
                    .entry(case)
                    .or_default()
                    .push(Happening::StatusSet { at, status });
            }
            for m in mails {
                let sender = m
                    .from_address
                    .map(|a| people.get(&a.to_ascii_lowercase()).cloned().unwrap_or(a));
                by_case.entry(m.case_id).or_default().push(Happening::Mail {
                    at: instant(m.date_utc),
                    direction: m.direction,
                    signal: m.signal.get(),
                    stage: m.stage_kind.get(),
                    sender,
                });
            }
            for a in assignments {
                let detail: serde_json::Value = serde_json::from_str(&a.detail).unwrap_or_default();
                if let Some(owner) = detail["owner"].as_str() {
                    by_case
                        .entry(a.case_id)
                        .or_default()
                        .push(Happening::Assigned {
                            at: instant(a.at),
                            owner: owner.to_string(),
                        });
                }
            }
            timelines.extend(cases.into_iter().map(|c| Timeline {
                happenings: by_case.remove(&c.id).unwrap_or_default(),
                case_row: c.id,
                case_key: c.key,
                case_id: c.case_id,
                title: c.title,
                customer: c.customer,
                priority: c.priority,
            }));
        }
        Ok(timelines)
    }

    /// Desk accounts by the (lower-case) address they send from.
    async fn people_by_address(&self) -> Result<HashMap<String, String>> {
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT name, email FROM users WHERE email IS NOT NULL")
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(name, email)| email.map(|e| (e.to_ascii_lowercase(), name)))
            .collect())
    }

    /// Records that `owner` now owns the case (an `owner_assigned` event,
    /// which the SLA engine reads as a reassignment).
    pub async fn assign_owner(&self, case_row: i64, owner: &str, by: &str) -> Result<()> {
        let mut conn = self.pool().acquire().await?;
        events::event(
            &mut conn,
            Some(case_row),
            None,
            "owner_assigned",
            serde_json::json!({ "owner": owner, "by": by }),
        )
        .await
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Replaces the snapshots of `evaluated` cases; `gone` are cases with
    /// nothing to measure (or merged away), whose snapshots are dropped.
    pub async fn save_sla(
        &self,
        evaluated: &[CaseSla],
        gone: &[i64],
        fingerprint: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let now = now_ts();
        for chunk in gone.chunks(ID_CHUNK) {
            sqlx::query(&format!(
                "DELETE FROM case_sla WHERE case_id IN ({})",
                id_list(chunk)
            ))
            .execute(&mut *tx)
            .await?;
        }
        for sla in evaluated {
            let next_due = [
                &sla.first_response,
                &sla.update,
                &sla.handover,
                &sla.resolution,
            ]
            .into_iter()
            .flatten()
            .filter(|c| c.running_since.is_some())
            .map(|c| c.due.timestamp())
            .min();
            sqlx::query(
                "INSERT INTO case_sla (case_id, owner, status, priority, next_due, snapshot, fingerprint, computed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (case_id) DO UPDATE SET owner = excluded.owner, status = excluded.status, \
                 priority = excluded.priority, next_due = excluded.next_due, snapshot = excluded.snapshot, \
                 fingerprint = excluded.fingerprint, computed_at = excluded.computed_at",
            )
            .bind(sla.case_row)
            .bind(&sla.owner)
            .bind(sla.status.as_str())
            .bind(&sla.priority)
            .bind(next_due)
            .bind(serde_json::to_string(sla).context("Cannot encode an SLA snapshot")?)
            .bind(fingerprint)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The cases that have a snapshot.
    pub async fn sla_snapshot_rows(&self) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar("SELECT case_id FROM case_sla")
            .fetch_all(self.pool())
            .await?)
    }

    /// Snapshots of cases that are not closed (what the board shows).
    pub async fn open_sla_snapshots(&self) -> Result<Vec<CaseSla>> {
        let texts: Vec<String> = sqlx::query_scalar(
            "SELECT snapshot FROM case_sla WHERE status NOT IN ('resolved', 'archived')",
        )
        .fetch_all(self.pool())
        .await?;
        texts
            .iter()
            .map(|t| serde_json::from_str(t).context("A stored SLA snapshot is unreadable"))
            .collect()
    }
}
