//! Writing mail into the store: raw bytes, the message, its case, and what
//! hangs off it. All functions take the caller's transaction, so a mail is
//! filed completely or not at all.

use anyhow::{Context, Result};
use std::collections::HashMap;

use sqlx::AnyConnection;

use super::cases::{CASE_COLUMNS, CaseRow};
use super::now_ts;
use casebot_core::domain::{CaseStatus, Direction, MailSignal, Source};
use casebot_core::mail::case_state::{StatusInput, case_status};
use casebot_core::mail::parse::ParsedMail;
use casebot_core::mail::thread::ThreadDecision;

/// A message already in the store, as duplicate detection and threading see it.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub message_id: String,
    pub sha256: String,
    pub raw_id: i64,
    pub case_key: String,
}

/// Stored messages whose raw hash is in `shas` or whose Message-ID is in
/// `ids`: a whole batch's duplicate checks and parent look-ups at once.
pub async fn lookup(
    conn: &mut AnyConnection,
    shas: &[&str],
    ids: &[&str],
) -> Result<Vec<StoredMessage>> {
    let mut out: Vec<StoredMessage> = Vec::new();
    let positional = uses_positional_marks(conn);
    for (column, values) in [("r.sha256", shas), ("m.message_id", ids)] {
        // Chunks keep the statement under every backend's parameter limit.
        for chunk in values.chunks(500) {
            let sql = format!(
                "SELECT m.message_id, r.sha256, r.id AS raw_id, c.key AS case_key FROM messages m \
                 JOIN raw_messages r ON r.id = m.raw_id JOIN cases c ON c.id = m.case_id WHERE {column} IN ({})",
                sequential_marks(positional, 1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, String, i64, String)>(&sql);
            for v in chunk {
                query = query.bind(*v);
            }
            for (message_id, sha256, raw_id, case_key) in query.fetch_all(&mut *conn).await? {
                if !out.iter().any(|m| m.raw_id == raw_id) {
                    out.push(StoredMessage {
                        message_id,
                        sha256,
                        raw_id,
                        case_key,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `$first, $first+1, …` (n of them); `NULL` for none, so `IN (NULL)` matches nothing.
pub(super) fn placeholders(first: usize, n: usize) -> String {
    if n == 0 {
        return "NULL".into();
    }
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Markers for `n` parameters bound once each, in order. SQLite gets
/// anonymous `?`: it resolves a numbered marker by a linear scan of its
/// names, which makes a multi-row insert quadratic in its parameters.
fn sequential_marks(positional: bool, first: usize, n: usize) -> String {
    if positional {
        vec!["?"; n].join(", ")
    } else {
        placeholders(first, n)
    }
}

fn uses_positional_marks(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("sqlite")
}

/// A mail to file, with its case decided.
pub struct NewMessage<'a> {
    pub raw: &'a [u8],
    pub mail: &'a ParsedMail,
    pub source: &'a Source,
    pub decision: ThreadDecision,
    pub signal: Option<MailSignal>,
}

/// One more sighting of a mail stored before or earlier in the same batch
/// (a duplicate delivery), named by the stored raw bytes' hash.
pub struct Sighting<'a> {
    pub sha256: String,
    pub source: &'a Source,
}

/// Raw bytes that repeat a stored Message-ID with other content: kept as
/// evidence (and seen as a sighting), but not filed as another message.
pub struct Variant<'a> {
    pub raw: &'a [u8],
    pub sha256: String,
}

/// What a batch adds to the store.
#[derive(Default)]
pub struct WritePlan<'a> {
    pub new: Vec<NewMessage<'a>>,
    pub variants: Vec<Variant<'a>>,
    pub sightings: Vec<Sighting<'a>>,
}

/// What [`write`] did, per case.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub opened: Vec<String>,
    /// Thread cases whose messages moved into another case (their parent arrived).
    pub adopted: Vec<(String, String)>,
}

/// Writes a batch with a fixed number of statements (plus one update per
/// touched case), whatever the number of mails: the cost of a statement
/// round trip, not of SQLite, bounds ingest throughput.
pub async fn write(conn: &mut AnyConnection, plan: &WritePlan<'_>) -> Result<Written> {
    let now = now_ts();
    let mut written = Written::default();
    if plan.new.is_empty() {
        add_sightings(conn, plan, now).await?;
        return Ok(written);
    }

    // Cases: create the missing ones (RETURNING names only those created),
    // then read every touched case's state.
    let mut keys: Vec<(&str, Option<&str>)> = Vec::new();
    for n in &plan.new {
        if !keys.iter().any(|(k, _)| *k == n.decision.case_key) {
            keys.push((&n.decision.case_key, n.decision.case_id.as_deref()));
        }
    }
    let opened = insert_rows(
        conn,
        "cases (key, case_id, status, created_at, updated_at)",
        "ON CONFLICT (key) DO NOTHING RETURNING key, id",
        &keys,
        |q, (key, case_id)| {
            q.bind(*key)
                .bind(*case_id)
                .bind(CaseStatus::New.as_str())
                .bind(now)
                .bind(now)
        },
    )
    .await
    .context("Cannot create cases")?;
    written.opened = opened.into_iter().map(|(key, _)| key).collect();
    let sql = format!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE key IN ({})",
        placeholders(1, keys.len())
    );
    let mut q = sqlx::query_as::<_, CaseRow>(&sql);
    for (k, _) in &keys {
        q = q.bind(*k);
    }
    let mut cases: Vec<CaseRow> = q.fetch_all(&mut *conn).await?;
    let mut case_rows: HashMap<String, i64> = cases.iter().map(|c| (c.key.clone(), c.id)).collect();

    // Raw bytes, then messages; RETURNING maps rows back by their unique keys.
    let raw_ids: HashMap<String, i64> = insert_rows(
        conn,
        "raw_messages (sha256, size, bytes, received_at)",
        "RETURNING sha256, id",
        &plan.new,
        |q, n| {
            q.bind(&n.mail.sha256)
                .bind(n.raw.len() as i64)
                .bind(n.raw)
                .bind(now)
        },
    )
    .await
    .context("Cannot store raw messages")?
    .into_iter()
    .collect();
    let raw_id = |sha: &str| raw_ids.get(sha).copied();
    let message_rows: HashMap<String, i64> = insert_rows(
        conn,
        "messages (raw_id, case_id, message_id, message_id_synthesized, in_reply_to, references_json, \
         subject, subject_json, from_name, from_address, to_json, cc_json, date_utc, date_offset_minutes, date_source, \
         direction, signal, resolution_phrase, stage, new_text, quoted_text, signature, warnings_json, thread_rule, ingested_at)",
        "RETURNING message_id, id",
        &plan.new,
        |q, n| {
            let m = n.mail;
            q.bind(raw_id(&m.sha256))
                .bind(case_rows.get(&n.decision.case_key).copied())
                .bind(&m.message_id)
                .bind(m.message_id_synthesized as i64)
                .bind(&m.in_reply_to)
                .bind(json(&m.references))
                .bind(&m.subject)
                .bind(json(&m.subject_info))
                .bind(m.from.as_ref().and_then(|f| f.name.clone()))
                .bind(m.from.as_ref().and_then(|f| f.address.clone()))
                .bind(json(&m.to))
                .bind(json(&m.cc))
                .bind(m.date.timestamp())
                .bind(m.date_offset_minutes.map(i64::from))
                .bind(m.date_source.as_str())
                .bind(m.direction.as_str())
                .bind(n.signal.map(MailSignal::as_str))
                .bind(&m.resolution_phrase)
                .bind(&m.subject_info.stage)
                .bind(&m.body.new_text)
                .bind(&m.body.quoted_text)
                .bind(&m.body.signature)
                .bind(json(&m.warnings))
                .bind(n.decision.rule.as_str())
                .bind(now)
        },
    )
    .await
    .context("Cannot store messages")?
    .into_iter()
    .collect();

    // What hangs off each message, one multi-row insert per table.
    let mut refs: Vec<(Option<i64>, &str)> = Vec::new();
    let mut attachments = Vec::new();
    let mut links = Vec::new();
    let mut events: Vec<(Option<i64>, Option<i64>, &str, String)> = Vec::new();
    for n in &plan.new {
        let m = n.mail;
        let row = message_rows.get(&m.message_id).copied();
        let ids = m
            .in_reply_to
            .iter()
            .chain(m.references.iter())
            .map(String::as_str);
        for r in dedup(ids.collect()) {
            refs.push((row, r));
        }
        attachments.extend(m.attachments.iter().map(|a| (row, a)));
        links.extend(m.links.iter().map(|l| (row, l)));
        events.push((
            case_rows.get(&n.decision.case_key).copied(),
            row,
            "message_filed",
            serde_json::json!({
                "message_id": m.message_id,
                "direction": m.direction.as_str(),
                "rule": n.decision.rule.as_str(),
                "source": n.source.to_string(),
            })
            .to_string(),
        ));
    }
    insert_rows(
        conn,
        "message_refs (message_id, ref_id)",
        "",
        &refs,
        |q, (row, r)| q.bind(*row).bind(*r),
    )
    .await?;
    insert_rows(
        conn,
        "attachments (message_id, part, filename, content_type, size)",
        "",
        &attachments,
        |q, (row, a)| {
            q.bind(*row)
                .bind(i64::from(a.part))
                .bind(&a.filename)
                .bind(&a.content_type)
                .bind(a.size as i64)
        },
    )
    .await?;
    insert_rows(
        conn,
        "links (message_id, url, kind)",
        "",
        &links,
        |q, (row, l)| q.bind(*row).bind(&l.url).bind(l.kind),
    )
    .await?;
    insert_rows(
        conn,
        "message_sources (raw_id, source_kind, source, seen_at)",
        "",
        &plan.new,
        |q, n| {
            q.bind(raw_id(&n.mail.sha256))
                .bind(n.source.kind())
                .bind(n.source.to_string())
                .bind(now)
        },
    )
    .await?;
    add_sightings(conn, plan, now).await?;

    // Children that arrived before their parent started threads of their own.
    let decided: HashMap<&str, &str> = plan
        .new
        .iter()
        .map(|n| (n.mail.message_id.as_str(), n.decision.case_key.as_str()))
        .collect();
    let new_ids: Vec<&str> = decided.keys().copied().collect();
    for chunk in new_ids.chunks(MAX_PARAMS) {
        let sql = format!(
            "SELECT DISTINCT r.ref_id, c.id, c.key FROM message_refs r JOIN messages m ON m.id = r.message_id \
             JOIN cases c ON c.id = m.case_id WHERE r.ref_id IN ({}) AND c.case_id IS NULL",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (String, i64, String)>(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for (parent, orphan_row, orphan_key) in q.fetch_all(&mut *conn).await? {
            let Some(&target) = decided.get(parent.as_str()) else {
                continue;
            };
            if target == orphan_key || written.adopted.iter().any(|(from, _)| *from == orphan_key) {
                continue;
            }
            if let Some(&target_row) = case_rows.get(target) {
                adopt(conn, orphan_row, target_row, &orphan_key, &parent).await?;
                written
                    .adopted
                    .push((orphan_key.clone(), target.to_string()));
                cases.retain(|c| c.id != orphan_row);
                case_rows.remove(&orphan_key);
            }
        }
    }

    // Derived case fields: subject fields from the newest mail, status and
    // counts from all of the case's messages.
    let mut mails_by_case: HashMap<&str, Vec<&ParsedMail>> = HashMap::new();
    for n in &plan.new {
        mails_by_case
            .entry(n.decision.case_key.as_str())
            .or_default()
            .push(n.mail);
    }
    let mut reindex = Vec::new();
    for case in &mut cases {
        let mut mine = mails_by_case.remove(case.key.as_str()).unwrap_or_default();
        mine.sort_by_key(|m| m.date);
        let indexed = (case.title.clone(), case.internal_ref.clone());
        for m in mine {
            apply_subject(case, m);
        }
        if written.opened.contains(&case.key)
            || indexed != (case.title.clone(), case.internal_ref.clone())
        {
            reindex.push(case.id);
        }
    }
    let case_ids: Vec<i64> = cases.iter().map(|c| c.id).collect();
    let sql = format!(
        "SELECT case_id, direction, signal, date_utc FROM messages WHERE case_id IN ({}) ORDER BY case_id, date_utc, id",
        placeholders(1, case_ids.len())
    );
    let mut q = sqlx::query_as::<_, (i64, String, Option<String>, i64)>(&sql);
    for id in &case_ids {
        q = q.bind(*id);
    }
    let mut thread_of: HashMap<i64, Vec<(String, Option<String>, i64)>> = HashMap::new();
    for (case_id, direction, signal, date) in q.fetch_all(&mut *conn).await? {
        thread_of
            .entry(case_id)
            .or_default()
            .push((direction, signal, date));
    }
    for case in &cases {
        let rows = thread_of.remove(&case.id).unwrap_or_default();
        let status = case_status(rows.iter().map(|(d, s, _)| StatusInput {
            direction: Direction::parse(d).unwrap_or(Direction::Customer),
            signal: s.as_deref().and_then(MailSignal::parse),
        }));
        sqlx::query(
            "UPDATE cases SET title = $2, priority = $3, customer = $4, stage = $5, internal_ref = $6, base_subject = $7, \
             status = $8, message_count = $9, first_message_at = $10, last_message_at = $11, updated_at = $12 WHERE id = $1",
        )
        .bind(case.id)
        .bind(&case.title)
        .bind(&case.priority)
        .bind(&case.customer)
        .bind(&case.stage)
        .bind(&case.internal_ref)
        .bind(&case.base_subject)
        .bind(status.as_str())
        .bind(rows.len() as i64)
        .bind(rows.first().map(|r| r.2))
        .bind(rows.last().map(|r| r.2))
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if written.opened.contains(&case.key) {
            events.push((
                Some(case.id),
                None,
                "case_opened",
                serde_json::json!({ "key": case.key }).to_string(),
            ));
        }
        if case.status != status {
            events.push((
                Some(case.id),
                None,
                "status_changed",
                serde_json::json!({ "from": case.status, "to": status.as_str() }).to_string(),
            ));
        }
    }
    insert_rows(
        conn,
        "events (case_id, message_id, kind, detail, at)",
        "",
        &events,
        |q, (case, row, kind, detail)| {
            q.bind(*case)
                .bind(*row)
                .bind(*kind)
                .bind(detail.as_str())
                .bind(now)
        },
    )
    .await?;
    index_cases(conn, &cases, &reindex).await?;
    Ok(written)
}

/// Rewrites the search terms (`case_terms`) of the cases in `ids`.
pub(super) async fn index_cases(
    conn: &mut AnyConnection,
    cases: &[CaseRow],
    ids: &[i64],
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    for chunk in ids.chunks(MAX_PARAMS) {
        let sql = format!(
            "DELETE FROM case_terms WHERE case_id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    let wanted: std::collections::HashSet<i64> = ids.iter().copied().collect();
    let terms: Vec<(String, i64)> = cases
        .iter()
        .filter(|c| wanted.contains(&c.id))
        .flat_map(|c| {
            super::cases::case_terms(&c.key, c.title.as_deref(), c.internal_ref.as_deref())
                .into_iter()
                .map(move |term| (term, c.id))
        })
        .collect();
    insert_rows(
        conn,
        "case_terms (term, case_id)",
        "",
        &terms,
        |q, (term, case)| q.bind(term.as_str()).bind(*case),
    )
    .await?;
    Ok(())
}

/// Title, priority, customer, stage and reference follow the newest mail
/// that carries them; an older mail only fills gaps.
fn apply_subject(case: &mut CaseRow, m: &ParsedMail) {
    let s = &m.subject_info;
    let newest = case.last_message_at.is_none_or(|l| m.date.timestamp() >= l);
    let base = (s.case_id.is_some() || case.base_subject.is_none()).then(|| s.base_subject.clone());
    let set = |field: &mut Option<String>, value: &Option<String>| {
        if value.is_some() && (newest || field.is_none()) {
            field.clone_from(value);
        }
    };
    set(&mut case.title, &s.title);
    set(&mut case.priority, &s.priority);
    set(&mut case.customer, &s.customer);
    set(&mut case.stage, &s.stage);
    set(&mut case.internal_ref, &s.internal_ref);
    set(&mut case.base_subject, &base);
    if newest {
        case.last_message_at = Some(m.date.timestamp());
    }
}

/// Parameters per statement: under every backend's limit (SQLite 32,766,
/// PostgreSQL 65,535) and large enough that a whole batch is one statement.
const MAX_PARAMS: usize = 8000;

/// Inserts `rows` in as few multi-row statements as [`MAX_PARAMS`] allows;
/// `bind` binds one row's values. `tail` follows the VALUES list (ON
/// CONFLICT, RETURNING); a `RETURNING key, id` tail's pairs come back.
async fn insert_rows<T>(
    conn: &mut AnyConnection,
    table_and_columns: &str,
    tail: &str,
    rows: &[T],
    bind: impl for<'a> Fn(AnyQuery<'a>, &'a T) -> AnyQuery<'a>,
) -> Result<Vec<(String, i64)>> {
    let columns = table_and_columns.matches(',').count() + 1;
    let positional = uses_positional_marks(conn);
    let mut returned = Vec::new();
    for chunk in rows.chunks((MAX_PARAMS / columns).max(1)) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "({})",
                    sequential_marks(positional, columns * i + 1, columns)
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table_and_columns} VALUES {} {tail}",
            values.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
        for row in chunk {
            q = bind(q, row);
        }
        returned.extend(
            q.fetch_all(&mut *conn)
                .await
                .with_context(|| format!("Cannot insert into {table_and_columns}"))?,
        );
    }
    Ok(returned)
}

type AnyQuery<'a> = sqlx::query::QueryAs<'a, sqlx::Any, (String, i64), sqlx::any::AnyArguments<'a>>;

/// Moves a thread case's messages into `target` and removes the empty case.
async fn adopt(
    conn: &mut AnyConnection,
    orphan_row: i64,
    target_row: i64,
    orphan_key: &str,
    parent: &str,
) -> Result<()> {
    // The orphan's pending draft answered half a thread: it is withdrawn
    // (its text kept in the event, as for any withdrawn draft), and the
    // drafting stage drafts again for the whole case (thread_adopted is one
    // of its triggers).
    let withdrawn: Vec<(i64, String, Option<String>, String)> = sqlx::query_as(
        "SELECT id, kind, edited_by, body FROM drafts WHERE case_id = $1 AND status = 'pending'",
    )
    .bind(orphan_row)
    .fetch_all(&mut *conn)
    .await?;
    for (draft, kind, edited_by, body) in withdrawn {
        event(
            conn,
            Some(orphan_row),
            None,
            "draft_withdrawn",
            serde_json::json!({"draft": draft, "kind": kind, "edited_by": edited_by, "body": body,
                "reason": format!("its thread joined the thread of {parent}")}),
        )
        .await?;
    }
    sqlx::query("DELETE FROM drafts WHERE case_id = $1 AND status = 'pending'")
        .bind(orphan_row)
        .execute(&mut *conn)
        .await?;
    for sql in [
        "UPDATE messages SET case_id = $1 WHERE case_id = $2",
        "UPDATE events SET case_id = $1 WHERE case_id = $2",
        "UPDATE drafts SET case_id = $1 WHERE case_id = $2",
        "UPDATE knowledge SET case_id = $1 WHERE case_id = $2 \
         AND NOT EXISTS (SELECT 1 FROM knowledge WHERE case_id = $1)",
    ] {
        sqlx::query(sql)
            .bind(target_row)
            .bind(orphan_row)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM knowledge WHERE case_id = $1")
        .bind(orphan_row)
        .execute(&mut *conn)
        .await?;
    // Derived data: the adopting case's snapshot is redone from its event.
    for sql in [
        "DELETE FROM case_sla WHERE case_id = $1",
        "DELETE FROM case_terms WHERE case_id = $1",
    ] {
        sqlx::query(sql)
            .bind(orphan_row)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM cases WHERE id = $1")
        .bind(orphan_row)
        .execute(&mut *conn)
        .await?;
    event(
        conn,
        Some(target_row),
        None,
        "thread_adopted",
        serde_json::json!({ "from": orphan_key, "parent": parent }),
    )
    .await
}

/// Keeps variants' bytes, then records duplicate deliveries against the raw
/// bytes they repeat.
async fn add_sightings(conn: &mut AnyConnection, plan: &WritePlan<'_>, now: i64) -> Result<()> {
    for v in &plan.variants {
        sqlx::query(
            "INSERT INTO raw_messages (sha256, size, bytes, received_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&v.sha256)
        .bind(v.raw.len() as i64)
        .bind(v.raw)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    for s in &plan.sightings {
        sqlx::query(
            "INSERT INTO message_sources (raw_id, source_kind, source, seen_at) \
             SELECT id, $2, $3, $4 FROM raw_messages WHERE sha256 = $1",
        )
        .bind(&s.sha256)
        .bind(s.source.kind())
        .bind(s.source.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
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

fn dedup(ids: Vec<&str>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}
