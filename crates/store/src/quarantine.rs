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
}

impl Store {
    /// Quarantined mails, oldest first; `all` includes released ones.
    pub async fn quarantine_list(&self, all: bool) -> Result<Vec<QuarantineEntry>> {
        let sql = if all {
            "SELECT id, sha256, size, source, reason, created_at, attempts, released_at FROM quarantine ORDER BY id"
        } else {
            "SELECT id, sha256, size, source, reason, created_at, attempts, released_at FROM quarantine \
             WHERE released_at IS NULL ORDER BY id"
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
            })
            .collect())
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
