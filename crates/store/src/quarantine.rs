//! Mail that could not be filed: kept byte for byte with the reason, until a
//! replay files it.

use anyhow::Result;
use serde::Serialize;
use sqlx::{AnyConnection, FromRow};

use super::{Store, now_ts, ts_to_rfc3339};
use casebot_core::domain::Source;

/// Puts a mail in quarantine, or counts one more attempt if it is there.
pub async fn put(
    conn: &mut AnyConnection,
    raw: &[u8],
    sha256: &str,
    source: &Source,
    reason: &str,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO quarantine (sha256, bytes, size, source_kind, source, reason, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (sha256) DO UPDATE SET attempts = quarantine.attempts + 1, reason = excluded.reason \
         RETURNING id",
    )
    .bind(sha256)
    .bind(raw)
    .bind(raw.len() as i64)
    .bind(source.kind())
    .bind(source.to_string())
    .bind(reason)
    .bind(now_ts())
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Marks a quarantined mail as filed by a replay, as the message with this
/// Message-ID (if any).
pub async fn release(conn: &mut AnyConnection, id: i64, message_id: Option<&str>) -> Result<()> {
    sqlx::query(
        "UPDATE quarantine SET released_message_id = (SELECT id FROM messages WHERE message_id = $2), \
         released_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(message_id)
        .bind(now_ts())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
struct Row {
    id: i64,
    sha256: String,
    size: i64,
    source: String,
    reason: String,
    created_at: i64,
    attempts: i64,
    released_at: Option<i64>,
    discarded_by: Option<String>,
    discard_reason: Option<String>,
}

/// A quarantined mail, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineEntry {
    pub id: i64,
    pub sha256: String,
    pub size: i64,
    pub source: String,
    pub reason: String,
    pub created_at: String,
    pub attempts: i64,
    pub released_at: Option<String>,
    /// Set when a person decided not to file it (the bytes stay).
    pub discarded_by: Option<String>,
    pub discard_reason: Option<String>,
}

impl Store {
    /// Quarantined mails, oldest first; `all` includes released ones.
    pub async fn quarantine_list(&self, all: bool) -> Result<Vec<QuarantineEntry>> {
        let sql = if all {
            "SELECT id, sha256, size, source, reason, created_at, attempts, released_at, \
             discarded_by, discard_reason FROM quarantine ORDER BY id"
        } else {
            "SELECT id, sha256, size, source, reason, created_at, attempts, released_at, \
             discarded_by, discard_reason FROM quarantine WHERE released_at IS NULL ORDER BY id"
        };
        let rows: Vec<Row> = sqlx::query_as(sql).fetch_all(self.pool()).await?;
        Ok(rows
            .into_iter()
            .map(|r| QuarantineEntry {
                id: r.id,
                sha256: r.sha256,
                size: r.size,
                source: r.source,
                reason: r.reason,
                created_at: ts_to_rfc3339(r.created_at),
                attempts: r.attempts,
                released_at: r.released_at.map(ts_to_rfc3339),
                discarded_by: r.discarded_by,
                discard_reason: r.discard_reason,
            })
            .collect())
    }

    /// Takes a quarantined mail off the waiting list without filing it,
    /// saying who and why; its bytes stay. False when there is no such
    /// entry waiting.
    pub async fn quarantine_discard(&self, id: i64, by: &str, reason: &str) -> Result<bool> {
        let (by, reason) = (by.trim(), reason.trim());
        if by.is_empty() || reason.is_empty() {
            anyhow::bail!("say who discards quarantine entry {id} and why");
        }
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE quarantine SET released_at = $2, discarded_by = $3, discard_reason = $4 \
             WHERE id = $1 AND released_at IS NULL",
        )
        .bind(id)
        .bind(now_ts())
        .bind(by)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        crate::events::event(
            &mut tx,
            None,
            None,
            "quarantine_discarded",
            serde_json::json!({"quarantine": id, "by": by, "reason": reason}),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The header block of a quarantined mail's kept bytes (at most
    /// `max` bytes of it), as text for a person to read.
    pub async fn quarantined_headers(&self, id: i64, max: usize) -> Result<Option<String>> {
        let bytes: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT bytes FROM quarantine WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(bytes.map(|b| {
            let head = &b[..b.len().min(max)];
            let end = head
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .or_else(|| head.windows(2).position(|w| w == b"\n\n"))
                .unwrap_or(head.len());
            String::from_utf8_lossy(&head[..end]).into_owned()
        }))
    }

    /// Records a mail whose bytes could not be had (an IMAP UID the server
    /// returned no body for): no bytes, the reason, its source; once per
    /// source, counting attempts.
    pub async fn quarantine_unreadable(&self, source: &Source, reason: &str) -> Result<i64> {
        let key = casebot_core::domain::sha256_hex(format!("unreadable {source}").as_bytes());
        let mut tx = self.begin_write().await?;
        let id = put(&mut tx, b"", &key, source, reason).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The kept bytes of a quarantined mail not yet released, with the key
    /// it was kept under: the bytes' SHA-256 when they are the whole mail.
    pub async fn quarantined_bytes(&self, id: i64) -> Result<Option<(Vec<u8>, String)>> {
        Ok(sqlx::query_as(
            "SELECT bytes, sha256 FROM quarantine WHERE id = $1 AND released_at IS NULL",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }
}
