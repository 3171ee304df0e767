//! The event log: every change to a case, in commit order (writers hold
//! the store's write lock, so ids commit in order), and the cursors of the
//! stages that follow it (drafting, the SLA snapshots).

use anyhow::Result;
use sqlx::AnyConnection;

use super::{Store, now_ts};

/// Event kinds that can change what a case calls for.
pub(crate) const DRAFTING_TRIGGERS: &str = "'message_filed', 'status_changed', 'analysis_finished', \
     'thread_adopted', 'case_opened', 'messages_moved'";

/// Event kinds after which a case's SLA must be evaluated again.
pub const SLA_TRIGGERS: &str = "'message_filed', 'status_changed', 'thread_adopted', 'case_opened', \
     'owner_assigned', 'messages_moved', 'status_set', 'priority_changed'";

/// Appends an event to the audit trail.
pub async fn event(
    conn: &mut AnyConnection,
    case_row: Option<i64>,
    message_row: Option<i64>,
    kind: &str,
    detail: serde_json::Value,
) -> Result<()> {
    event_id(conn, case_row, message_row, kind, detail)
        .await
        .map(|_| ())
}

/// Appends an event to the audit trail; returns its id.
pub async fn event_id(
    conn: &mut AnyConnection,
    case_row: Option<i64>,
    message_row: Option<i64>,
    kind: &str,
    detail: serde_json::Value,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO events (case_id, message_id, kind, detail, at) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id",
    )
    .bind(case_row)
    .bind(message_row)
    .bind(kind)
    .bind(detail.to_string())
    .bind(now_ts())
    .fetch_one(&mut *conn)
    .await?)
}

impl Store {
    /// Where stage `name` stopped reading the event log.
    pub async fn cursor(&self, name: &str) -> Result<i64> {
        let pos: Option<i64> = sqlx::query_scalar("SELECT position FROM cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(pos.unwrap_or(0))
    }

    /// Where stage `name` stopped reading, if it ever started.
    pub async fn cursor_if_set(&self, name: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT position FROM cursors WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// The newest event's id (0 in an empty log).
    pub async fn newest_event(&self) -> Result<i64> {
        let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
            .fetch_one(self.pool())
            .await?;
        Ok(newest.unwrap_or(0))
    }

    pub async fn set_cursor(&self, name: &str, position: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO cursors (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        )
        .bind(name)
        .bind(position)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Drafting-relevant events after the drafting stage's cursor.
    pub(crate) async fn undrafted_events(&self) -> Result<i64> {
        let cursor = self.cursor("drafting").await?;
        Ok(sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM events WHERE id > $1 AND case_id IS NOT NULL AND kind IN ({DRAFTING_TRIGGERS})"
        ))
        .bind(cursor)
        .fetch_one(self.pool())
        .await?)
    }

    /// Cases with drafting-relevant events after `cursor`, and the newest
    /// event id seen (the next cursor).
    pub async fn cases_changed_since(&self, cursor: i64) -> Result<(Vec<i64>, i64)> {
        self.cases_with_events_since(cursor, DRAFTING_TRIGGERS)
            .await
    }

    /// The cases whose SLA-relevant events are newer than `cursor`, and the
    /// newest event id.
    pub async fn sla_changes_since(&self, cursor: i64) -> Result<(Vec<i64>, i64)> {
        self.cases_with_events_since(cursor, SLA_TRIGGERS).await
    }

    /// The cases with events of the `kinds` (an SQL list of quoted names)
    /// after `cursor`, and the newest event id: what a stage that follows
    /// the event log has to redo.
    async fn cases_with_events_since(&self, cursor: i64, kinds: &str) -> Result<(Vec<i64>, i64)> {
        let newest = self.newest_event().await?;
        let cases: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT case_id FROM events WHERE id > $1 AND id <= $2 AND case_id IS NOT NULL \
             AND kind IN ({kinds}) ORDER BY case_id"
        ))
        .bind(cursor)
        .bind(newest)
        .fetch_all(self.pool())
        .await?;
        Ok((cases, newest))
    }
}
