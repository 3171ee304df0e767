//! Internal notes on a case, and the raw mail and attachments a case's
//! page offers for download.
//!
//! A note is for the desk only: no query that drafting or sending uses
//! reads this table, so a note can never reach a customer.

use anyhow::{Result, bail};
use serde::Serialize;

use super::{Store, now_ts, ts_to_rfc3339};

/// The longest note, in bytes: a note is a few paragraphs, not a log.
pub const MAX_NOTE_BYTES: usize = 16 * 1024;
/// Notes listed with a case (the newest).
pub const MAX_VIEW_NOTES: i64 = 200;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Note {
    pub id: i64,
    pub author: String,
    pub body: String,
    #[sqlx(rename = "created_at")]
    #[serde(skip)]
    pub created_ts: i64,
}

/// A note as shown: with its time, and marked internal.
#[derive(Debug, Clone, Serialize)]
pub struct NoteView {
    pub id: i64,
    pub author: String,
    pub body: String,
    pub created_at: String,
    /// Always true: said in the JSON so that no consumer mistakes it for mail.
    pub internal: bool,
}

impl From<Note> for NoteView {
    fn from(n: Note) -> Self {
        NoteView {
            id: n.id,
            author: n.author,
            body: n.body,
            created_at: ts_to_rfc3339(n.created_ts),
            internal: true,
        }
    }
}

/// A mail's stored bytes, for a download.
#[derive(Debug, Clone)]
pub enum RawMail {
    Kept(Vec<u8>),
    /// Retention removed them at this time.
    Removed(i64),
}

/// A note's text as it is kept (trimmed), or why it cannot be one.
pub fn checked_note(body: &str) -> Result<&str, String> {
    let body = body.trim();
    if body.is_empty() {
        return Err("the note is empty".into());
    }
    if body.len() > MAX_NOTE_BYTES {
        return Err(format!(
            "the note is {} bytes; a note holds at most {MAX_NOTE_BYTES}",
            body.len()
        ));
    }
    Ok(body)
}

impl Store {
    /// Adds a note to a case, with an event that names it and its author.
    pub async fn add_note(&self, case_row: i64, author: &str, body: &str) -> Result<NoteView> {
        let body = checked_note(body).map_err(anyhow::Error::msg)?;
        let author = author.trim();
        if author.is_empty() {
            bail!("say who writes the note");
        }
        let mut tx = self.begin_write().await?;
        let now = now_ts();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO notes (case_id, author, body, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(case_row)
        .bind(author)
        .bind(body)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        crate::events::event(
            &mut tx,
            Some(case_row),
            None,
            "note_added",
            serde_json::json!({"note": id, "by": author}),
        )
        .await?;
        tx.commit().await?;
        Ok(NoteView {
            id,
            author: author.to_string(),
            body: body.to_string(),
            created_at: ts_to_rfc3339(now),
            internal: true,
        })
    }

    /// A case's newest notes, oldest first.
    pub async fn case_notes(&self, case_row: i64) -> Result<Vec<NoteView>> {
        let mut notes: Vec<Note> = sqlx::query_as(
            "SELECT id, author, body, created_at FROM notes WHERE case_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(case_row)
        .bind(MAX_VIEW_NOTES)
        .fetch_all(self.pool())
        .await?;
        notes.reverse();
        Ok(notes.into_iter().map(NoteView::from).collect())
    }

    /// The raw bytes of message `message_row` of case `case_row`; `None`
    /// when the case has no such message.
    pub async fn message_raw(&self, case_row: i64, message_row: i64) -> Result<Option<RawMail>> {
        let row: Option<(Vec<u8>, Option<i64>)> = sqlx::query_as(
            "SELECT r.bytes, r.purged_at FROM messages m JOIN raw_messages r ON r.id = m.raw_id \
             WHERE m.id = $1 AND m.case_id = $2",
        )
        .bind(message_row)
        .bind(case_row)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(bytes, purged)| match purged {
            Some(at) => RawMail::Removed(at),
            None => RawMail::Kept(bytes),
        }))
    }
}
