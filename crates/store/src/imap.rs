//! IMAP checkpoints: per watched folder, its UIDVALIDITY and the highest UID
//! handled, so a restart catches up from where the last run stopped.

use anyhow::Result;
use serde::Serialize;
use sqlx::FromRow;

use super::{Store, now_ts, ts_to_rfc3339};

/// Where a folder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

#[derive(Debug, Clone, FromRow)]
struct Row {
    mailbox: String,
    folder: String,
    uidvalidity: i64,
    last_uid: i64,
    state: String,
    last_error: Option<String>,
    state_since: i64,
    updated_at: i64,
}

/// A folder as `casebot mailboxes` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FolderView {
    pub mailbox: String,
    pub folder: String,
    pub uidvalidity: i64,
    pub last_uid: i64,
    pub state: String,
    pub last_error: Option<String>,
    pub state_since: String,
    pub updated_at: String,
}

/// Every state a watched folder can be in, as the watcher records them.
pub const FOLDER_STATES: [&str; 7] = [
    "connecting",
    "catching_up",
    "idle",
    "polling",
    "reconnecting",
    "needs_login",
    "stopped",
];

impl Store {
    pub async fn imap_checkpoint(&self, mailbox: &str, folder: &str) -> Result<Option<Checkpoint>> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT uidvalidity, last_uid FROM imap_folders WHERE mailbox = $1 AND folder = $2",
        )
        .bind(mailbox)
        .bind(folder)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(v, u)| Checkpoint {
            uidvalidity: v as u32,
            last_uid: u as u32,
        }))
    }

    /// Records the folder's checkpoint (after its mail is handled).
    pub async fn set_imap_checkpoint(
        &self,
        mailbox: &str,
        folder: &str,
        at: Checkpoint,
    ) -> Result<()> {
        let now = now_ts();
        sqlx::query(
            "INSERT INTO imap_folders (mailbox, folder, uidvalidity, last_uid, state, state_since, updated_at) \
             VALUES ($1, $2, $3, $4, 'catching_up', $5, $5) ON CONFLICT (mailbox, folder) DO UPDATE SET \
             uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, updated_at = excluded.updated_at",
        )
        .bind(mailbox)
        .bind(folder)
        .bind(i64::from(at.uidvalidity))
        .bind(i64::from(at.last_uid))
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records the connection state of a folder's watcher (one of
    /// [`FOLDER_STATES`]).
    pub async fn set_imap_state(
        &self,
        mailbox: &str,
        folder: &str,
        state: &str,
        error: Option<&str>,
    ) -> Result<()> {
        let now = now_ts();
        sqlx::query(
            "INSERT INTO imap_folders (mailbox, folder, uidvalidity, last_uid, state, last_error, state_since, updated_at) \
             VALUES ($1, $2, 0, 0, $3, $4, $5, $5) ON CONFLICT (mailbox, folder) DO UPDATE SET \
             state_since = CASE WHEN imap_folders.state = excluded.state THEN imap_folders.state_since ELSE excluded.state_since END, \
             state = excluded.state, last_error = COALESCE(excluded.last_error, imap_folders.last_error), \
             updated_at = excluded.updated_at",
        )
        .bind(mailbox)
        .bind(folder)
        .bind(state)
        .bind(error)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn imap_folders(&self) -> Result<Vec<FolderView>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT mailbox, folder, uidvalidity, last_uid, state, last_error, state_since, updated_at \
             FROM imap_folders ORDER BY mailbox, folder",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| FolderView {
                mailbox: r.mailbox,
                folder: r.folder,
                uidvalidity: r.uidvalidity,
                last_uid: r.last_uid,
                state: r.state,
                last_error: r.last_error,
                state_since: ts_to_rfc3339(r.state_since),
                updated_at: ts_to_rfc3339(r.updated_at),
            })
            .collect())
    }
}
