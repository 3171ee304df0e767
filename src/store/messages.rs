//! Writing mail into the store: raw bytes, the message, its case, and what
//! hangs off it. All functions take the caller's transaction, so a mail is
//! filed completely or not at all.

use anyhow::{Context, Result};
use sqlx::{AnyConnection, Row};

use super::now_ts;
use crate::ingest::case_state::{CaseStatus, MailSignal, StatusInput, case_status};
use crate::ingest::direction::Direction;
use crate::ingest::parse::ParsedMail;
use crate::ingest::thread::{KnownMessage, ThreadDecision};
use crate::mailbox::Source;

/// A message already filed, as duplicate detection reports it.
#[derive(Debug, Clone)]
pub struct ExistingMessage {
    pub raw_id: i64,
    pub case_key: String,
}

/// What [`insert`] filed.
#[derive(Debug, Clone)]
pub struct Filed {
    pub message_row: i64,
    pub case_row: i64,
    pub case_key: String,
    pub case_opened: bool,
    /// Thread cases whose messages moved into this case (their parent arrived).
    pub adopted: Vec<String>,
}

/// The message whose raw bytes have this hash, if any.
pub async fn by_sha256(conn: &mut AnyConnection, sha256: &str) -> Result<Option<ExistingMessage>> {
    let row = sqlx::query(
        "SELECT r.id AS raw_id, c.key AS case_key FROM raw_messages r \
         JOIN messages m ON m.raw_id = r.id JOIN cases c ON c.id = m.case_id WHERE r.sha256 = $1",
    )
    .bind(sha256)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| ExistingMessage {
        raw_id: r.get("raw_id"),
        case_key: r.get("case_key"),
    }))
}

/// The message with this Message-ID, if any.
pub async fn by_message_id(
    conn: &mut AnyConnection,
    message_id: &str,
) -> Result<Option<ExistingMessage>> {
    let row = sqlx::query(
        "SELECT m.raw_id AS raw_id, c.key AS case_key FROM messages m \
         JOIN cases c ON c.id = m.case_id WHERE m.message_id = $1",
    )
    .bind(message_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| ExistingMessage {
        raw_id: r.get("raw_id"),
        case_key: r.get("case_key"),
    }))
}

/// The case keys of those of `ids` the store knows.
pub async fn known(conn: &mut AnyConnection, ids: &[&str]) -> Result<Vec<KnownMessage>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT m.message_id AS message_id, c.key AS case_key FROM messages m \
         JOIN cases c ON c.id = m.case_id WHERE m.message_id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|r| KnownMessage {
            message_id: r.get("message_id"),
            case_key: r.get("case_key"),
        })
        .collect())
}

/// Records one more place a stored mail was seen.
pub async fn add_source(conn: &mut AnyConnection, raw_id: i64, source: &Source) -> Result<()> {
    sqlx::query("INSERT INTO message_sources (raw_id, source_kind, source, seen_at) VALUES ($1, $2, $3, $4)")
        .bind(raw_id)
        .bind(source.kind())
        .bind(source.to_string())
        .bind(now_ts())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Appends an event to the audit trail.
pub async fn event(
    conn: &mut AnyConnection,
    case_row: Option<i64>,
    message_row: Option<i64>,
    kind: &str,
    detail: serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (case_id, message_id, kind, detail, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(case_row)
    .bind(message_row)
    .bind(kind)
    .bind(detail.to_string())
    .bind(now_ts())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// Files a parsed mail under the decided case: raw bytes, message,
/// references, attachments, links, source, event, and the case's derived
/// fields.
pub async fn insert(
    conn: &mut AnyConnection,
    raw: &[u8],
    mail: &ParsedMail,
    source: &Source,
    decision: &ThreadDecision,
    signal: Option<MailSignal>,
) -> Result<Filed> {
    let now = now_ts();
    let raw_id: i64 = sqlx::query_scalar(
        "INSERT INTO raw_messages (sha256, size, bytes, received_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(&mail.sha256)
    .bind(raw.len() as i64)
    .bind(raw)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .context("Cannot store the raw message")?;

    let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM cases WHERE key = $1")
        .bind(&decision.case_key)
        .fetch_optional(&mut *conn)
        .await?;
    let (case_row, case_opened) = match existing {
        Some(id) => (id, false),
        None => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO cases (key, case_id, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
            )
            .bind(&decision.case_key)
            .bind(&decision.case_id)
            .bind(CaseStatus::New.as_str())
            .bind(now)
            .fetch_one(&mut *conn)
            .await
            .context("Cannot create the case")?;
            (id, true)
        }
    };

    let s = &mail.subject_info;
    let message_row: i64 = sqlx::query_scalar(
        "INSERT INTO messages (raw_id, case_id, message_id, message_id_synthesized, in_reply_to, references_json, \
         subject, subject_json, from_name, from_address, to_json, cc_json, date_utc, date_offset_minutes, date_source, \
         direction, signal, resolution_phrase, stage, new_text, quoted_text, signature, warnings_json, thread_rule, ingested_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25) \
         RETURNING id",
    )
    .bind(raw_id)
    .bind(case_row)
    .bind(&mail.message_id)
    .bind(mail.message_id_synthesized as i64)
    .bind(&mail.in_reply_to)
    .bind(json(&mail.references))
    .bind(&mail.subject)
    .bind(json(s))
    .bind(mail.from.as_ref().and_then(|f| f.name.clone()))
    .bind(mail.from.as_ref().and_then(|f| f.address.clone()))
    .bind(json(&mail.to))
    .bind(json(&mail.cc))
    .bind(mail.date.timestamp())
    .bind(mail.date_offset_minutes.map(i64::from))
    .bind(mail.date_source.as_str())
    .bind(mail.direction.as_str())
    .bind(signal.map(MailSignal::as_str))
    .bind(&mail.resolution_phrase)
    .bind(&s.stage)
    .bind(&mail.body.new_text)
    .bind(&mail.body.quoted_text)
    .bind(&mail.body.signature)
    .bind(json(&mail.warnings))
    .bind(decision.rule.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .context("Cannot store the message")?;

    let refs: Vec<&str> = mail
        .in_reply_to
        .iter()
        .map(String::as_str)
        .chain(mail.references.iter().map(String::as_str))
        .collect();
    for r in dedup(refs) {
        sqlx::query("INSERT INTO message_refs (message_id, ref_id) VALUES ($1, $2)")
            .bind(message_row)
            .bind(r)
            .execute(&mut *conn)
            .await?;
    }
    for a in &mail.attachments {
        sqlx::query("INSERT INTO attachments (message_id, part, filename, content_type, size) VALUES ($1, $2, $3, $4, $5)")
            .bind(message_row)
            .bind(i64::from(a.part))
            .bind(&a.filename)
            .bind(&a.content_type)
            .bind(a.size as i64)
            .execute(&mut *conn)
            .await?;
    }
    for l in &mail.links {
        sqlx::query("INSERT INTO links (message_id, url, kind) VALUES ($1, $2, $3)")
            .bind(message_row)
            .bind(&l.url)
            .bind(l.kind)
            .execute(&mut *conn)
            .await?;
    }
    add_source(conn, raw_id, source).await?;

    if case_opened {
        event(
            conn,
            Some(case_row),
            Some(message_row),
            "case_opened",
            serde_json::json!({ "key": decision.case_key, "case_id": decision.case_id }),
        )
        .await?;
    }
    event(
        conn,
        Some(case_row),
        Some(message_row),
        "message_filed",
        serde_json::json!({
            "message_id": mail.message_id,
            "direction": mail.direction.as_str(),
            "rule": decision.rule.as_str(),
            "source": source.to_string(),
        }),
    )
    .await?;

    let adopted = adopt_orphans(conn, case_row, &mail.message_id).await?;
    update_case_subject(conn, case_row, mail).await?;
    refresh_case(conn, case_row).await?;
    Ok(Filed {
        message_row,
        case_row,
        case_key: decision.case_key.clone(),
        case_opened,
        adopted,
    })
}

fn dedup(ids: Vec<&str>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Children that arrived before this mail started threads of their own;
/// now that their parent is here, they join its case. Only thread cases
/// (no case number) are ever moved, so two numbered cases never merge.
async fn adopt_orphans(
    conn: &mut AnyConnection,
    case_row: i64,
    message_id: &str,
) -> Result<Vec<String>> {
    let orphans: Vec<(i64, String)> = sqlx::query_as(
        "SELECT DISTINCT c.id, c.key FROM message_refs r JOIN messages m ON m.id = r.message_id \
         JOIN cases c ON c.id = m.case_id WHERE r.ref_id = $1 AND c.case_id IS NULL AND c.id <> $2",
    )
    .bind(message_id)
    .bind(case_row)
    .fetch_all(&mut *conn)
    .await?;
    let mut adopted = Vec::new();
    for (orphan_row, orphan_key) in orphans {
        sqlx::query("UPDATE messages SET case_id = $1 WHERE case_id = $2")
            .bind(case_row)
            .bind(orphan_row)
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE events SET case_id = $1 WHERE case_id = $2")
            .bind(case_row)
            .bind(orphan_row)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM cases WHERE id = $1")
            .bind(orphan_row)
            .execute(&mut *conn)
            .await?;
        event(
            conn,
            Some(case_row),
            None,
            "thread_adopted",
            serde_json::json!({ "from": orphan_key, "parent": message_id }),
        )
        .await?;
        adopted.push(orphan_key);
    }
    Ok(adopted)
}

/// Title, priority, customer, stage and reference follow the newest mail
/// that carries them; an older mail only fills gaps.
async fn update_case_subject(
    conn: &mut AnyConnection,
    case_row: i64,
    mail: &ParsedMail,
) -> Result<()> {
    let last: Option<i64> = sqlx::query_scalar("SELECT last_message_at FROM cases WHERE id = $1")
        .bind(case_row)
        .fetch_one(&mut *conn)
        .await?;
    let newest = last.is_none_or(|l| mail.date.timestamp() >= l);
    let s = &mail.subject_info;
    let has_grammar = s.case_id.is_some();
    let base_subject = (has_grammar || last.is_none()).then_some(s.base_subject.as_str());
    let sql = if newest {
        "UPDATE cases SET title = COALESCE($2, title), priority = COALESCE($3, priority), \
         customer = COALESCE($4, customer), stage = COALESCE($5, stage), internal_ref = COALESCE($6, internal_ref), \
         base_subject = COALESCE($7, base_subject) WHERE id = $1"
    } else {
        "UPDATE cases SET title = COALESCE(title, $2), priority = COALESCE(priority, $3), \
         customer = COALESCE(customer, $4), stage = COALESCE(stage, $5), internal_ref = COALESCE(internal_ref, $6), \
         base_subject = COALESCE(base_subject, $7) WHERE id = $1"
    };
    sqlx::query(sql)
        .bind(case_row)
        .bind(&s.title)
        .bind(&s.priority)
        .bind(&s.customer)
        .bind(&s.stage)
        .bind(&s.internal_ref)
        .bind(base_subject)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Recomputes the case's derived fields from its messages.
pub async fn refresh_case(conn: &mut AnyConnection, case_row: i64) -> Result<()> {
    let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT direction, signal, date_utc FROM messages WHERE case_id = $1 ORDER BY date_utc, id",
    )
    .bind(case_row)
    .fetch_all(&mut *conn)
    .await?;
    let status = case_status(rows.iter().map(|(d, s, _)| StatusInput {
        direction: Direction::parse(d).unwrap_or(Direction::Customer),
        signal: s.as_deref().and_then(MailSignal::parse),
    }));
    let first = rows.first().map(|r| r.2);
    let last = rows.last().map(|r| r.2);
    let previous: String = sqlx::query_scalar("SELECT status FROM cases WHERE id = $1")
        .bind(case_row)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE cases SET status = $2, message_count = $3, first_message_at = $4, last_message_at = $5, updated_at = $6 WHERE id = $1",
    )
    .bind(case_row)
    .bind(status.as_str())
    .bind(rows.len() as i64)
    .bind(first)
    .bind(last)
    .bind(now_ts())
    .execute(&mut *conn)
    .await?;
    if previous != status.as_str() {
        event(
            conn,
            Some(case_row),
            None,
            "status_changed",
            serde_json::json!({ "from": previous, "to": status.as_str() }),
        )
        .await?;
    }
    Ok(())
}
