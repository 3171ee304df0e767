//! The full-text index (`search_index`): written as mails are filed and
//! analysed, read by `casebot search`, the desk's search page and
//! `/api/search`. The tokens come from `casebot_core::search`; SQLite reads
//! them with FTS5, PostgreSQL as a `tsvector` with a GIN index.
//!
//! A document belongs to a mail (see the migration), and a hit reaches its
//! case through the mail, so the index never needs to follow a mail from
//! one case to another. Only what customers and engineers wrote and what the
//! analysis concluded is indexed: never drafts, notes or accounts.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use casebot_core::domain::CaseStatus;
use casebot_core::search::{Query, Snippet, index_text, snippet};
use serde::Serialize;
use sqlx::{AnyConnection, FromRow};

use crate::messages::select_in;
use crate::sql::{MAX_PARAMS, insert_rows, placeholders};
use crate::{Store, ts_to_rfc3339};

/// The index document of a mail's own text.
pub(crate) fn mail_doc(message_row: i64) -> i64 {
    message_row * 2
}

/// The index document of what the analysis of a mail's logs concluded.
pub(crate) fn analysis_doc(message_row: i64) -> i64 {
    message_row * 2 + 1
}

/// The text of a mail a search reads, in the order a snippet is looked for.
pub(crate) fn mail_parts<'a>(
    subject: Option<&'a str>,
    new_text: Option<&'a str>,
    quoted_text: Option<&'a str>,
    attachments: impl IntoIterator<Item = &'a str>,
    from: [Option<&'a str>; 2],
) -> Vec<&'a str> {
    let mut parts: Vec<&str> = [subject, new_text, quoted_text]
        .into_iter()
        .flatten()
        .collect();
    parts.extend(attachments);
    parts.extend(from.into_iter().flatten());
    parts
}

/// What an analysis says, as a search reads it: the class, the summary,
/// the failing package and component, codes and KBs.
pub(crate) fn analysis_parts(report: Option<&serde_json::Value>, codes: &[String]) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(r) = report {
        for value in [
            &r["root_cause"]["class_name"],
            &r["root_cause"]["summary"],
            &r["failing_package"],
            &r["failing_component"],
        ] {
            if let Some(text) = value.as_str() {
                parts.push(text.to_string());
            }
        }
    }
    parts.extend(codes.iter().cloned());
    parts
}

/// The attachment names of mails, by mail row.
async fn attachment_names(
    conn: &mut AnyConnection,
    rows: &[i64],
) -> Result<HashMap<i64, Vec<String>>> {
    let mut names: HashMap<i64, Vec<String>> = HashMap::new();
    let found: Vec<(i64, Option<String>)> = select_in(
        conn,
        "SELECT message_id, filename FROM attachments WHERE message_id IN",
        "",
        rows,
    )
    .await?;
    for (row, name) in found {
        names.entry(row).or_default().extend(name);
    }
    Ok(names)
}

/// What the analyses of mails say (see [`analysis_parts`]), by mail row.
async fn analysis_texts(
    conn: &mut AnyConnection,
    rows: &[i64],
) -> Result<HashMap<i64, Vec<String>>> {
    let found: Vec<(i64, Option<String>, Option<String>)> = select_in(
        conn,
        "SELECT message_id, report, error_codes FROM analyses WHERE message_id IN",
        "",
        rows,
    )
    .await?;
    Ok(found
        .into_iter()
        .map(|(row, report, codes)| {
            let report = report.and_then(|r| serde_json::from_str(&r).ok());
            let codes: Vec<String> = codes
                .and_then(|c| serde_json::from_str(&c).ok())
                .unwrap_or_default();
            (row, analysis_parts(report.as_ref(), &codes))
        })
        .collect())
}

/// Writes (or rewrites) index documents `(doc, text)`.
pub(crate) async fn put_docs(conn: &mut AnyConnection, docs: &[(i64, String)]) -> Result<()> {
    if docs.is_empty() {
        return Ok(());
    }
    let postgres = conn.backend_name().eq_ignore_ascii_case("postgresql");
    if !postgres {
        // FTS5 has no upsert: the old document goes first.
        let ids: Vec<i64> = docs.iter().map(|(doc, _)| *doc).collect();
        for chunk in ids.chunks(MAX_PARAMS) {
            let sql = format!(
                "DELETE FROM search_index WHERE rowid IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *conn).await?;
        }
    }
    if !postgres {
        // One multi-row statement a chunk, as filing writes its rows.
        insert_rows(
            conn,
            "search_index (rowid, tokens)",
            "",
            docs,
            |q, (doc, text)| q.bind(*doc).bind(text.as_str()),
        )
        .await?;
        return Ok(());
    }
    for (doc, text) in docs {
        sqlx::query(
            "INSERT INTO search_index (doc_id, tokens) VALUES ($1, to_tsvector('simple', $2)) \
             ON CONFLICT (doc_id) DO UPDATE SET tokens = EXCLUDED.tokens",
        )
        .bind(*doc)
        .bind(text.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What a search asks: the words, and the case list's filters.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub text: String,
    pub status: Option<CaseStatus>,
    /// Owned by any of these (account names and addresses).
    pub owners: Vec<String>,
    pub priority: Option<String>,
    /// Part of the customer's name.
    pub customer: Option<String>,
    /// Mails dated from (inclusive) and before (exclusive), Unix seconds.
    pub from: Option<i64>,
    pub until: Option<i64>,
    /// Cases returned, best first.
    pub limit: usize,
}

/// Where a hit was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HitKind {
    Mail,
    Analysis,
}

/// A case a search found, with its best mail and why it matched.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub case_key: String,
    pub title: Option<String>,
    pub status: String,
    pub priority: Option<String>,
    pub customer: Option<String>,
    /// The mail (its row) and what of it matched.
    pub message_row: i64,
    pub kind: HitKind,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub date: String,
    /// The matching text around the first place a query word occurs.
    pub snippet: Option<Snippet>,
    /// Documents of this case that matched (among the best 200).
    pub matches: usize,
}

#[derive(Debug, FromRow)]
struct HitRow {
    doc: i64,
    key: String,
    title: Option<String>,
    status: String,
    priority: Option<String>,
    customer: Option<String>,
    subject: Option<String>,
    from_name: Option<String>,
    from_address: Option<String>,
    date_utc: i64,
    new_text: Option<String>,
    quoted_text: Option<String>,
}

/// A value bound to the search's statement.
enum Bound {
    Text(String),
    Int(i64),
}

/// Documents the index ranks before the filters read them: a query that
/// matches most of the mail costs the same as one that matches this many.
const MAX_CANDIDATES: i64 = 2000;
/// Documents ranked before they are grouped by case.
const MAX_DOCS: i64 = 200;
/// Where an outsider's long page stops: cases shown at most.
pub const MAX_CASES: usize = 100;

impl Store {
    /// The cases whose mail (or its analysis) holds every word of the
    /// request, best first, each with its best match. `None`: the request
    /// holds nothing to search for.
    pub async fn search(&self, r: &SearchRequest) -> Result<Option<Vec<SearchHit>>> {
        let Some(query) = Query::parse(&r.text) else {
            return Ok(None);
        };
        let postgres = self.backend() == crate::Backend::Postgres;
        let mut binds: Vec<Bound> = Vec::new();
        let mut bind = |value: Bound| {
            binds.push(value);
            format!("${}", binds.len())
        };
        // The best candidates first, ranked inside the index (FTS5's `rank`
        // is bm25, lower is better; PostgreSQL's rank is negated to sort the
        // same way). Without a filter only the best are joined to their
        // cases; with one, every match is, so a filter never hides a case.
        let filtered = r.status.is_some()
            || r.priority.as_ref().is_some_and(|p| !p.trim().is_empty())
            || r.customer.as_ref().is_some_and(|c| !c.trim().is_empty())
            || !r.owners.is_empty()
            || r.from.is_some()
            || r.until.is_some();
        let limit = if filtered {
            String::new()
        } else {
            format!("LIMIT {MAX_CANDIDATES}")
        };
        let candidates = if postgres {
            let q = bind(Bound::Text(query.tsquery()));
            format!(
                "SELECT doc_id AS doc, -ts_rank(tokens, to_tsquery('simple', {q})) AS score \
                 FROM search_index WHERE tokens @@ to_tsquery('simple', {q}) \
                 ORDER BY score {limit}"
            )
        } else {
            format!(
                "SELECT rowid AS doc, rank AS score FROM search_index \
                 WHERE search_index MATCH {} ORDER BY rank {limit}",
                bind(Bound::Text(query.fts5()))
            )
        };
        let mut conditions = vec!["1 = 1".to_string()];
        if let Some(status) = r.status {
            conditions.push(format!(
                "c.status = {}",
                bind(Bound::Text(status.as_str().into()))
            ));
        }
        if let Some(p) = r.priority.as_ref().filter(|p| !p.trim().is_empty()) {
            let p = Bound::Text(p.trim().to_uppercase());
            conditions.push(format!("UPPER(c.priority) = {}", bind(p)));
        }
        if let Some(customer) = r.customer.as_ref().filter(|c| !c.trim().is_empty()) {
            let pattern = Bound::Text(crate::cases::like_pattern(customer));
            conditions.push(format!(
                "LOWER(c.customer) LIKE {} ESCAPE '\\'",
                bind(pattern)
            ));
        }
        if !r.owners.is_empty() {
            let list: Vec<String> = r
                .owners
                .iter()
                .map(|o| bind(Bound::Text(o.to_lowercase())))
                .collect();
            conditions.push(format!(
                "c.id IN (SELECT case_id FROM case_sla WHERE LOWER(owner) IN ({}))",
                list.join(", ")
            ));
        }
        if let Some(from) = r.from {
            conditions.push(format!("m.date_utc >= {}", bind(Bound::Int(from))));
        }
        if let Some(until) = r.until {
            conditions.push(format!("m.date_utc < {}", bind(Bound::Int(until))));
        }
        let sql = format!(
            "SELECT s.doc, c.key, c.title, c.status, c.priority, c.customer, m.subject, \
             m.from_name, m.from_address, m.date_utc, m.new_text, m.quoted_text \
             FROM ({candidates}) s JOIN messages m ON m.id = s.doc / 2 JOIN cases c ON c.id = m.case_id \
             WHERE {} ORDER BY s.score, m.date_utc DESC LIMIT {MAX_DOCS}",
            conditions.join(" AND "),
        );
        let mut q = sqlx::query_as::<_, HitRow>(&sql);
        for value in &binds {
            q = match value {
                Bound::Text(t) => q.bind(t.as_str()),
                Bound::Int(n) => q.bind(*n),
            };
        }
        let rows = q.fetch_all(self.pool()).await?;
        self.hits(rows, &query, r.limit.clamp(1, MAX_CASES))
            .await
            .map(Some)
    }

    /// The best document of each case, in rank order, with its snippet.
    async fn hits(&self, rows: Vec<HitRow>, query: &Query, limit: usize) -> Result<Vec<SearchHit>> {
        let mut per_case: HashMap<String, usize> = HashMap::new();
        for row in &rows {
            *per_case.entry(row.key.clone()).or_default() += 1;
        }
        let mut seen = HashSet::new();
        let best: Vec<HitRow> = rows
            .into_iter()
            .filter(|row| seen.insert(row.key.clone()))
            .take(limit)
            .collect();
        let message_rows: Vec<i64> = best.iter().map(|r| r.doc / 2).collect();
        let mut conn = self.pool().acquire().await?;
        let names = attachment_names(&mut conn, &message_rows).await?;
        let analysis_rows: Vec<i64> = best
            .iter()
            .filter(|r| r.doc % 2 == 1)
            .map(|r| r.doc / 2)
            .collect();
        let reports = analysis_texts(&mut conn, &analysis_rows).await?;
        Ok(best
            .into_iter()
            .map(|row| {
                let message_row = row.doc / 2;
                let kind = if row.doc % 2 == 1 {
                    HitKind::Analysis
                } else {
                    HitKind::Mail
                };
                let attachments = names.get(&message_row).cloned().unwrap_or_default();
                let texts: Vec<String> = match kind {
                    HitKind::Mail => mail_parts(
                        row.subject.as_deref(),
                        row.new_text.as_deref(),
                        row.quoted_text.as_deref(),
                        attachments.iter().map(String::as_str),
                        [row.from_name.as_deref(), row.from_address.as_deref()],
                    )
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                    HitKind::Analysis => reports.get(&message_row).cloned().unwrap_or_default(),
                };
                let from = match (&row.from_name, &row.from_address) {
                    (Some(n), Some(a)) => Some(format!("{n} <{a}>")),
                    (None, a) => a.clone(),
                    (n, None) => n.clone(),
                };
                SearchHit {
                    matches: per_case.get(&row.key).copied().unwrap_or(1),
                    case_key: row.key,
                    title: row.title,
                    status: row.status,
                    priority: row.priority,
                    customer: row.customer,
                    message_row,
                    kind,
                    subject: row.subject,
                    from,
                    date: ts_to_rfc3339(row.date_utc),
                    snippet: texts.iter().find_map(|t| snippet(t, query)),
                }
            })
            .collect())
    }

    /// Indexes up to `batch` mails filed before the index existed (newest
    /// first), with their analyses; returns how many, 0 once all are.
    pub async fn index_backlog(&self, batch: i64) -> Result<usize> {
        let through = self.cursor("search_backfill").await?;
        if through <= 0 {
            return Ok(0);
        }
        #[derive(FromRow)]
        struct Mail {
            id: i64,
            subject: Option<String>,
            from_name: Option<String>,
            from_address: Option<String>,
            new_text: Option<String>,
            quoted_text: Option<String>,
        }
        let mails: Vec<Mail> = sqlx::query_as(
            "SELECT id, subject, from_name, from_address, new_text, quoted_text FROM messages \
             WHERE id <= $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(through)
        .bind(batch.max(1))
        .fetch_all(self.pool())
        .await?;
        let ids: Vec<i64> = mails.iter().map(|m| m.id).collect();
        let mut conn = self.pool().acquire().await?;
        let names = attachment_names(&mut conn, &ids).await?;
        let mut docs: Vec<(i64, String)> = Vec::with_capacity(mails.len() * 2);
        for m in &mails {
            let attachments = names.get(&m.id).cloned().unwrap_or_default();
            let parts = mail_parts(
                m.subject.as_deref(),
                m.new_text.as_deref(),
                m.quoted_text.as_deref(),
                attachments.iter().map(String::as_str),
                [m.from_name.as_deref(), m.from_address.as_deref()],
            );
            docs.push((mail_doc(m.id), index_text(parts)));
        }
        for (row, parts) in analysis_texts(&mut conn, &ids).await? {
            docs.push((
                analysis_doc(row),
                index_text(parts.iter().map(String::as_str)),
            ));
        }
        drop(conn);
        let next = mails.last().map_or(0, |m| m.id - 1);
        let mut tx = self.begin_write().await?;
        put_docs(&mut tx, &docs).await?;
        sqlx::query("UPDATE cursors SET position = $1 WHERE name = 'search_backfill'")
            .bind(next)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(mails.len())
    }
}
