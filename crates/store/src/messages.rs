//! Filing mail into the store: what filing needs to know ([`lookup`],
//! [`filing_state`]) and carrying out the plans `casebot_core::mail::filing`
//! decides ([`apply`]). All functions take the caller's transaction, so a
//! batch is filed completely or not at all; none of them decides anything.

use std::collections::HashMap;

use anyhow::{Context, Result};
use sqlx::AnyConnection;

use casebot_core::domain::{DraftKind, MailSignal, Stage};
use casebot_core::mail::filing::{
    BatchPlan, CaseFields, CasePlan, FilingState, NewMessage, Orphan, PendingDraft, StoredCase,
    StoredMessage, ThreadEntry,
};
use casebot_core::mail::thread::is_case_key;

use super::cases::{CASE_COLUMNS, CaseRow};
use super::now_ts;
use super::quarantine;
use super::sql::{MAX_PARAMS, dedup, insert_rows, json, sequential_marks, uses_positional_marks};
use super::terms::{Indexed, index_cases};

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

/// `SELECT … WHERE column IN (values)` in chunks under the parameter limit.
pub(crate) async fn select_in<T, V>(
    conn: &mut AnyConnection,
    sql_before_list: &str,
    sql_after_list: &str,
    values: &[V],
) -> Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    V: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Clone + Send,
{
    let mut out = Vec::new();
    let positional = uses_positional_marks(conn);
    for chunk in values.chunks(MAX_PARAMS) {
        let sql = format!(
            "{sql_before_list} ({}) {sql_after_list}",
            sequential_marks(positional, 1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, T>(&sql);
        for v in chunk {
            q = q.bind(v.clone());
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// What the store holds of the cases the batch's new mails touch: those
/// cases, the cases waiting for one of the new mails as their parent, the
/// cases of the new mails' known parents, the messages of all of them, and
/// the pending drafts of those without a case number.
pub async fn filing_state(conn: &mut AnyConnection, new: &[NewMessage<'_>]) -> Result<FilingState> {
    let mut keys: Vec<&str> = new
        .iter()
        .flat_map(|n| {
            std::iter::once(n.decision.case_key.as_str())
                .chain(n.parents.iter().map(|p| p.case_key.as_str()))
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let new_ids: Vec<String> = new.iter().map(|n| n.mail.message_id.clone()).collect();
    let orphans: Vec<(String, String)> = select_in(
        conn,
        "SELECT DISTINCT r.ref_id, c.key FROM message_refs r JOIN messages m ON m.id = r.message_id \
         JOIN cases c ON c.id = m.case_id WHERE r.ref_id IN",
        "",
        &new_ids,
    )
    .await
    .context("Cannot look for threads waiting for their parent")?;
    keys.extend(orphans.iter().map(|(_, key)| key.as_str()));
    keys.sort_unstable();
    keys.dedup();
    let thread_keys: Vec<String> = keys
        .iter()
        .filter(|k| !is_case_key(k))
        .map(|k| k.to_string())
        .collect();

    let keys: Vec<String> = keys.into_iter().map(str::to_string).collect();
    let rows: Vec<CaseRow> = select_in(
        conn,
        &format!("SELECT {CASE_COLUMNS} FROM cases WHERE key IN"),
        "",
        &keys,
    )
    .await
    .context("Cannot read the batch's cases")?;
    let mut state = FilingState::default();
    let row_keys: HashMap<i64, String> = rows.iter().map(|r| (r.id, r.key.clone())).collect();
    for r in rows {
        state.cases.insert(r.key.clone(), stored_case(r));
    }
    let ids: Vec<i64> = row_keys.keys().copied().collect();
    let thread: Vec<ThreadRow> = select_in(
        conn,
        "SELECT case_id, id, direction, signal, date_utc FROM messages WHERE case_id IN",
        "",
        &ids,
    )
    .await
    .context("Cannot read the threads of the batch's cases")?;
    for m in thread {
        if let Some(key) = row_keys.get(&m.case_id) {
            state
                .threads
                .entry(key.clone())
                .or_default()
                .push(ThreadEntry {
                    row: m.id,
                    direction: m.direction,
                    signal: m.signal.get(),
                    date: m.date_utc,
                });
        }
    }
    let pending: Vec<PendingRow> = select_in(
        conn,
        "SELECT c.key, d.id, d.kind, d.edited_by, d.body FROM drafts d JOIN cases c ON c.id = d.case_id \
         WHERE d.status = 'pending' AND c.key IN",
        "ORDER BY d.id",
        &thread_keys,
    )
    .await
    .context("Cannot read the pending drafts of threads without a case number")?;
    for d in pending {
        state.pending.entry(d.key).or_default().push(PendingDraft {
            id: d.id,
            kind: d.kind,
            edited_by: d.edited_by,
            body: d.body,
        });
    }
    state.orphans = orphans
        .into_iter()
        .map(|(parent, key)| Orphan { parent, key })
        .collect();
    Ok(state)
}

#[derive(sqlx::FromRow)]
struct ThreadRow {
    case_id: i64,
    id: i64,
    #[sqlx(try_from = "String")]
    direction: casebot_core::domain::Direction,
    #[sqlx(try_from = "Option<String>")]
    signal: super::OptionalWord<MailSignal>,
    date_utc: i64,
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    key: String,
    id: i64,
    #[sqlx(try_from = "String")]
    kind: DraftKind,
    edited_by: Option<String>,
    body: String,
}

fn stored_case(r: CaseRow) -> StoredCase {
    StoredCase {
        key: r.key,
        case_id: r.case_id,
        fields: CaseFields {
            title: r.title,
            priority: r.priority,
            customer: r.customer,
            stage: r.stage,
            internal_ref: r.internal_ref,
            base_subject: r.base_subject,
        },
        status: r.status,
        last_message_at: r.last_message_at,
    }
}

/// Carries out a batch's plans: quarantined mails, new cases, raw bytes and
/// messages with what hangs off them, sightings, adoptions, the cases'
/// derived fields, the events and the search terms. A fixed number of
/// statements (plus a few per touched case), whatever the number of mails:
/// the cost of a statement round trip, not of SQLite, bounds ingest.
pub async fn apply(
    conn: &mut AnyConnection,
    batch: &BatchPlan<'_>,
    cases: &CasePlan,
) -> Result<()> {
    let now = now_ts();
    for q in &batch.quarantined {
        quarantine::put(conn, q.raw, q.sha256, q.source, &q.reason).await?;
    }
    insert_rows(
        conn,
        "cases (key, case_id, status, created_at, updated_at)",
        "ON CONFLICT (key) DO NOTHING",
        &cases.open,
        |q, (key, case_id)| {
            q.bind(key.as_str())
                .bind(case_id.as_deref())
                .bind(casebot_core::domain::CaseStatus::New.as_str())
                .bind(now)
                .bind(now)
        },
    )
    .await
    .context("Cannot create cases")?;
    let mut keys: Vec<String> = cases.updates.iter().map(|u| u.key.clone()).collect();
    keys.extend(cases.adoptions.iter().map(|a| a.from.clone()));
    let case_rows: HashMap<String, i64> =
        select_in::<(String, i64), _>(conn, "SELECT key, id FROM cases WHERE key IN", "", &keys)
            .await?
            .into_iter()
            .collect();
    let message_rows = insert_messages(conn, batch, cases, &case_rows, now).await?;
    add_sightings(conn, batch, now).await?;
    for a in &cases.adoptions {
        if let (Some(&from), Some(&into)) = (case_rows.get(&a.from), case_rows.get(&a.into)) {
            adopt(conn, from, into, &a.withdrawn).await?;
        }
    }
    update_cases(conn, cases, &case_rows, now).await?;
    insert_rows(
        conn,
        "events (case_id, message_id, kind, detail, at)",
        "",
        &cases.events,
        |q, e| {
            q.bind(case_rows.get(&e.case_key).copied())
                .bind(
                    e.message_id
                        .as_ref()
                        .and_then(|m| message_rows.get(m))
                        .copied(),
                )
                .bind(e.kind)
                .bind(e.detail.to_string())
                .bind(now)
        },
    )
    .await?;
    let indexed: Vec<Indexed> = cases
        .updates
        .iter()
        .filter(|u| cases.reindex.contains(&u.key))
        .filter_map(|u| {
            Some(Indexed {
                id: *case_rows.get(&u.key)?,
                key: &u.key,
                title: u.fields.title.as_deref(),
                internal_ref: u.fields.internal_ref.as_deref(),
            })
        })
        .collect();
    index_cases(conn, &indexed).await
}

/// Mail naming a case that was merged into another is filed in that one
/// (see `regroup.rs`): the batch's decisions and outcomes are rewritten to
/// the case each merge leads to.
pub async fn follow_merges(conn: &mut AnyConnection, batch: &mut BatchPlan<'_>) -> Result<()> {
    let mut keys: Vec<String> = batch
        .new
        .iter()
        .map(|n| n.decision.case_key.clone())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut redirect: HashMap<String, String> = HashMap::new();
    // A merge into a case that was merged in turn: follow, boundedly.
    for _ in 0..16 {
        let pairs: Vec<(String, String)> = select_in(
            conn,
            "SELECT m.key, t.key FROM cases m JOIN cases t ON t.id = m.merged_into WHERE m.key IN",
            "",
            &keys,
        )
        .await?;
        if pairs.is_empty() {
            break;
        }
        keys = pairs.iter().map(|(_, to)| to.clone()).collect();
        for (from, to) in pairs {
            for target in redirect.values_mut().filter(|t| **t == from) {
                target.clone_from(&to);
            }
            redirect.entry(from).or_insert(to);
        }
    }
    if redirect.is_empty() {
        return Ok(());
    }
    for n in &mut batch.new {
        if let Some(to) = redirect.get(&n.decision.case_key) {
            n.decision.case_id = (!to.starts_with("T-")).then(|| to.clone());
            n.decision.case_key.clone_from(to);
        }
    }
    for o in &mut batch.outcomes {
        if let Some(to) = o.case_key.as_ref().and_then(|k| redirect.get(k)) {
            o.case_key = Some(to.clone());
        }
    }
    Ok(())
}

/// Raw bytes, then messages, then what hangs off each message. Returns each
/// new message's row by its Message-ID.
async fn insert_messages(
    conn: &mut AnyConnection,
    batch: &BatchPlan<'_>,
    cases: &CasePlan,
    case_rows: &HashMap<String, i64>,
    now: i64,
) -> Result<HashMap<String, i64>> {
    let raw_ids: HashMap<String, i64> = insert_rows(
        conn,
        "raw_messages (sha256, size, bytes, received_at)",
        "RETURNING sha256, id",
        &batch.new,
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
         direction, signal, resolution_phrase, stage, stage_kind, new_text, quoted_text, signature, warnings_json, thread_rule, bounce_json, ingested_at)",
        "RETURNING message_id, id",
        &batch.new,
        |q, n| {
            let m = n.mail;
            q.bind(raw_id(&m.sha256))
                .bind(case_rows.get(cases.final_key(&n.decision.case_key)).copied())
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
                .bind(m.subject_info.stage_kind.map(Stage::as_str))
                .bind(&m.body.new_text)
                .bind(&m.body.quoted_text)
                .bind(&m.body.signature)
                .bind(json(&m.warnings))
                .bind(n.decision.rule.as_str())
                .bind(m.bounce.as_ref().map(json))
                .bind(now)
        },
    )
    .await
    .context("Cannot store messages")?
    .into_iter()
    .collect();
    insert_parts(conn, batch, &message_rows, &raw_ids, now).await?;
    // The search index follows filing in the same transaction.
    let docs: Vec<(i64, String)> = batch
        .new
        .iter()
        .filter_map(|n| {
            let m = n.mail;
            let row = *message_rows.get(&m.message_id)?;
            let from = m.from.as_ref();
            let parts = crate::search::mail_parts(
                Some(&m.subject),
                Some(&m.body.new_text),
                Some(&m.body.quoted_text),
                m.attachments.iter().filter_map(|a| a.filename.as_deref()),
                [
                    from.and_then(|f| f.name.as_deref()),
                    from.and_then(|f| f.address.as_deref()),
                ],
            );
            Some((
                crate::search::mail_doc(row),
                casebot_core::search::index_text(parts),
            ))
        })
        .collect();
    crate::search::put_docs(conn, &docs).await?;
    Ok(message_rows)
}

/// What hangs off each new message (references, attachments, links, where
/// it was found), one multi-row insert per table.
async fn insert_parts(
    conn: &mut AnyConnection,
    batch: &BatchPlan<'_>,
    message_rows: &HashMap<String, i64>,
    raw_ids: &HashMap<String, i64>,
    now: i64,
) -> Result<()> {
    let mut refs: Vec<(Option<i64>, &str)> = Vec::new();
    let mut attachments = Vec::new();
    let mut links = Vec::new();
    for n in &batch.new {
        let m = n.mail;
        let row = message_rows.get(&m.message_id).copied();
        let returned = m.bounce.iter().flat_map(|b| {
            b.returned_message_id
                .iter()
                .chain(b.returned_references.iter())
        });
        let ids = m
            .in_reply_to
            .iter()
            .chain(m.references.iter())
            .chain(returned)
            .map(String::as_str);
        for r in dedup(ids.collect()) {
            refs.push((row, r));
        }
        attachments.extend(m.attachments.iter().map(|a| (row, a)));
        links.extend(m.links.iter().map(|l| (row, l)));
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
        &batch.new,
        |q, n| {
            q.bind(raw_ids.get(&n.mail.sha256).copied())
                .bind(n.source.kind())
                .bind(n.source.to_string())
                .bind(now)
        },
    )
    .await?;
    Ok(())
}

/// Writes each case's derived fields as the plan computed them.
async fn update_cases(
    conn: &mut AnyConnection,
    cases: &CasePlan,
    case_rows: &HashMap<String, i64>,
    now: i64,
) -> Result<()> {
    for u in &cases.updates {
        let Some(&row) = case_rows.get(&u.key) else {
            continue;
        };
        let derived = casebot_core::mail::regroup::Derived {
            fields: u.fields.clone(),
            status: u.status,
            message_count: u.message_count,
            first_message_at: u.first_message_at,
            last_message_at: u.last_message_at,
        };
        write_derived(conn, row, &derived, now).await?;
    }
    Ok(())
}

/// Writes what a case is, derived from its messages (by filing, or again
/// after mail moved); a priority set by hand stands over the subjects'.
pub(crate) async fn write_derived(
    conn: &mut AnyConnection,
    row: i64,
    d: &casebot_core::mail::regroup::Derived,
    now: i64,
) -> Result<()> {
    let f = &d.fields;
    sqlx::query(
        "UPDATE cases SET title = $2, priority = COALESCE(priority_set, $3), customer = $4, stage = $5, \
         internal_ref = $6, base_subject = $7, status = $8, message_count = $9, first_message_at = $10, \
         last_message_at = $11, updated_at = $12 WHERE id = $1",
    )
    .bind(row)
    .bind(&f.title)
    .bind(&f.priority)
    .bind(&f.customer)
    .bind(&f.stage)
    .bind(&f.internal_ref)
    .bind(&f.base_subject)
    .bind(d.status.as_str())
    .bind(d.message_count)
    .bind(d.first_message_at)
    .bind(d.last_message_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves a thread case's messages, events, drafts and knowledge into
/// `target`, withdraws its pending drafts (their texts stay in the plan's
/// events) and removes the empty case with what was derived from it.
async fn adopt(
    conn: &mut AnyConnection,
    orphan_row: i64,
    target_row: i64,
    withdrawn: &[PendingDraft],
) -> Result<()> {
    for d in withdrawn {
        sqlx::query("DELETE FROM drafts WHERE id = $1 AND status = 'pending'")
            .bind(d.id)
            .execute(&mut *conn)
            .await?;
    }
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
    // Derived data: the adopting case's snapshot is redone from its event.
    for sql in [
        "DELETE FROM knowledge WHERE case_id = $1",
        "DELETE FROM case_sla WHERE case_id = $1",
        "DELETE FROM case_terms WHERE case_id = $1",
        "DELETE FROM cases WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(orphan_row)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Keeps variants' bytes, then records duplicate deliveries against the raw
/// bytes they repeat.
async fn add_sightings(conn: &mut AnyConnection, plan: &BatchPlan<'_>, now: i64) -> Result<()> {
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
