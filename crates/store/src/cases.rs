//! Reading cases and their threads back out of the store.

use std::collections::HashMap;

use anyhow::Result;
use serde::Serialize;
use sqlx::FromRow;

use casebot_core::domain::{CaseStatus, Direction};
use casebot_core::mail::bounce::Bounce;

use super::terms::is_term_char;
use super::{Store, ts_to_rfc3339};

#[derive(Debug, Clone, FromRow)]
/// A case row as stored; the write path updates its derived fields.
pub(super) struct CaseRow {
    pub(super) id: i64,
    pub(super) key: String,
    pub(super) case_id: Option<String>,
    pub(super) title: Option<String>,
    pub(super) priority: Option<String>,
    pub(super) customer: Option<String>,
    pub(super) stage: Option<String>,
    pub(super) internal_ref: Option<String>,
    pub(super) base_subject: Option<String>,
    #[sqlx(try_from = "String")]
    pub(super) status: CaseStatus,
    pub(super) message_count: i64,
    pub(super) first_message_at: Option<i64>,
    pub(super) last_message_at: Option<i64>,
}

/// A case as listed by `casebot cases`.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub id: i64,
    pub key: String,
    pub case_id: Option<String>,
    pub title: Option<String>,
    pub priority: Option<String>,
    pub customer: Option<String>,
    pub stage: Option<String>,
    pub internal_ref: Option<String>,
    pub base_subject: Option<String>,
    pub status: CaseStatus,
    pub message_count: i64,
    pub first_message_at: Option<String>,
    pub last_message_at: Option<String>,
}

impl From<CaseRow> for CaseSummary {
    fn from(r: CaseRow) -> Self {
        Self {
            id: r.id,
            key: r.key,
            case_id: r.case_id,
            title: r.title,
            priority: r.priority,
            customer: r.customer,
            stage: r.stage,
            internal_ref: r.internal_ref,
            base_subject: r.base_subject,
            status: r.status,
            message_count: r.message_count,
            first_message_at: r.first_message_at.map(ts_to_rfc3339),
            last_message_at: r.last_message_at.map(ts_to_rfc3339),
        }
    }
}

pub(super) const CASE_COLUMNS: &str = "id, key, case_id, title, priority, customer, stage, internal_ref, base_subject, status, \
                            message_count, first_message_at, last_message_at";

#[derive(Debug, Clone, FromRow)]
struct MessageRow {
    id: i64,
    message_id: String,
    in_reply_to: Option<String>,
    subject: String,
    from_name: Option<String>,
    from_address: Option<String>,
    to_json: String,
    cc_json: String,
    date_utc: i64,
    date_offset_minutes: Option<i64>,
    date_source: String,
    #[sqlx(try_from = "String")]
    direction: Direction,
    signal: Option<String>,
    resolution_phrase: Option<String>,
    stage: Option<String>,
    new_text: String,
    quoted_text: String,
    signature: String,
    warnings_json: String,
    thread_rule: String,
    stage_kind: Option<String>,
    bounce_json: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentView {
    /// The MIME part it is in: its address for a download.
    pub part: i64,
    pub filename: Option<String>,
    pub content_type: String,
    pub size: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    pub url: String,
    pub kind: String,
}

/// One message of a case thread.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: i64,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub date: String,
    /// The sender's own offset, e.g. `+08:00`, when the Date header gave one.
    pub date_offset: Option<String>,
    pub date_source: String,
    pub from: serde_json::Value,
    pub to: serde_json::Value,
    pub cc: serde_json::Value,
    pub subject: String,
    pub direction: Direction,
    pub signal: Option<String>,
    pub resolution_signal: bool,
    pub resolution_phrase: Option<String>,
    pub stage: Option<String>,
    /// What the stage word means (`first_response`, `closed` …).
    pub stage_kind: Option<String>,
    pub new_text: String,
    pub quoted_text: String,
    pub signature: String,
    /// For a bounce: the mail it returns, to whom, and why.
    pub bounce: Option<Bounce>,
    pub attachments: Vec<AttachmentView>,
    pub links: Vec<LinkView>,
    pub thread_rule: String,
    pub warnings: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub at: String,
    pub kind: String,
    pub detail: serde_json::Value,
}

/// A case with one page of its thread, oldest first, and its newest events:
/// what a view of any case holds is bounded, however large the case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub case: CaseSummary,
    pub messages: Vec<MessageView>,
    pub events: Vec<EventView>,
    pub thread: ThreadPage,
}

/// Which page of a thread to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based; `None` is the last page (the newest mail).
    pub page: Option<u32>,
    pub per_page: u32,
}

impl PageRequest {
    /// Messages on a page unless asked otherwise.
    pub const DEFAULT_PER_PAGE: u32 = 50;
    /// The most a caller may ask for on one page.
    pub const MAX_PER_PAGE: u32 = 200;

    /// The last page, of the default size.
    pub fn newest() -> Self {
        PageRequest {
            page: None,
            per_page: Self::DEFAULT_PER_PAGE,
        }
    }

    /// The first page of the largest size: the whole thread of any case of
    /// up to [`Self::MAX_PER_PAGE`] mails.
    pub fn first_max() -> Self {
        PageRequest {
            page: Some(1),
            per_page: Self::MAX_PER_PAGE,
        }
    }

    /// A page as asked for, the size held to `1..=MAX_PER_PAGE`.
    pub fn new(page: Option<u32>, per_page: Option<u32>) -> Self {
        PageRequest {
            page: page.map(|p| p.max(1)),
            per_page: per_page
                .unwrap_or(Self::DEFAULT_PER_PAGE)
                .clamp(1, Self::MAX_PER_PAGE),
        }
    }
}

/// Where a page sits in its thread.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ThreadPage {
    pub page: u32,
    pub per_page: u32,
    pub pages: u32,
    pub messages_total: i64,
    /// Events of the case; the newest [`MAX_VIEW_EVENTS`] are listed.
    pub events_total: i64,
}

/// Events listed with a case (the newest).
pub const MAX_VIEW_EVENTS: i64 = 200;
/// Characters of a message's new text, quoted history or signature in a view;
/// the raw mail has the rest.
pub const MAX_VIEW_TEXT: usize = 64 << 10;

/// At most [`MAX_VIEW_TEXT`] characters, cut on a character boundary and
/// marked as cut.
fn view_text(text: String) -> String {
    if text.len() <= MAX_VIEW_TEXT {
        return text;
    }
    let mut end = MAX_VIEW_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = text[..end].to_string();
    cut.push_str(&format!(
        "\n[… {} more bytes in the raw mail]",
        text.len() - end
    ));
    cut
}

fn offset_text(minutes: i64) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

impl Store {
    /// All cases, most recently active first.
    pub async fn list_cases(&self) -> Result<Vec<CaseSummary>> {
        let rows: Vec<CaseRow> = sqlx::query_as(&format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE message_count > 0 ORDER BY last_message_at DESC, id DESC"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(CaseSummary::from).collect())
    }

    /// Finds a case by key (a case number in any letter case, or `T-…`) or
    /// row id; a case merged into another finds that one.
    pub async fn find_case(&self, key: &str) -> Result<Option<CaseSummary>> {
        let Some(found) = self.find_case_as_is(key).await? else {
            return Ok(None);
        };
        let mut case = found;
        for _ in 0..16 {
            let into: Option<i64> =
                sqlx::query_scalar("SELECT merged_into FROM cases WHERE id = $1")
                    .bind(case.id)
                    .fetch_optional(self.pool())
                    .await?
                    .flatten();
            match into {
                Some(row) => match self.case_by_row(row).await? {
                    Some(next) => case = next,
                    None => break,
                },
                None => break,
            }
        }
        Ok(Some(case))
    }

    /// A case by key or row, merged or not.
    async fn find_case_as_is(&self, key: &str) -> Result<Option<CaseSummary>> {
        let key = key.trim();
        let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE key = $1");
        for candidate in [key.to_string(), key.to_uppercase()] {
            let row: Option<CaseRow> = sqlx::query_as(&sql)
                .bind(candidate)
                .fetch_optional(self.pool())
                .await?;
            if let Some(r) = row {
                return Ok(Some(r.into()));
            }
        }
        match key.parse::<i64>() {
            Ok(id) => self.case_by_row(id).await,
            Err(_) => Ok(None),
        }
    }

    /// A case by its row id (what other tables refer to).
    pub async fn case_by_row(&self, id: i64) -> Result<Option<CaseSummary>> {
        let row: Option<CaseRow> =
            sqlx::query_as(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(CaseSummary::from))
    }

    /// A case with its messages (oldest first) and its event log.
    pub async fn case_detail(&self, key: &str, page: PageRequest) -> Result<Option<CaseDetail>> {
        let Some(case) = self.find_case(key).await? else {
            return Ok(None);
        };
        let messages_total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE case_id = $1")
                .bind(case.id)
                .fetch_one(self.pool())
                .await?;
        let per_page = page.per_page.clamp(1, PageRequest::MAX_PER_PAGE);
        let pages =
            u32::try_from((messages_total.max(1) + i64::from(per_page) - 1) / i64::from(per_page))
                .unwrap_or(u32::MAX);
        let number = page.page.unwrap_or(pages).clamp(1, pages);
        let offset = i64::from(number - 1) * i64::from(per_page);
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT id, message_id, in_reply_to, subject, from_name, from_address, to_json, cc_json, date_utc, \
             date_offset_minutes, date_source, direction, signal, resolution_phrase, stage, new_text, quoted_text, \
             signature, warnings_json, thread_rule, stage_kind, bounce_json FROM messages WHERE case_id = $1 \
             ORDER BY date_utc, id LIMIT $2 OFFSET $3",
        )
        .bind(case.id)
        .bind(i64::from(per_page))
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        // Only the page's messages' attachments and links.
        let (first, last) = match (rows.first(), rows.last()) {
            (Some(f), Some(l)) => ((f.date_utc, f.id), (l.date_utc, l.id)),
            _ => ((0, 0), (-1, -1)),
        };
        let on_page = "m.case_id = $1 AND (m.date_utc > $2 OR (m.date_utc = $2 AND m.id >= $3)) \
                       AND (m.date_utc < $4 OR (m.date_utc = $4 AND m.id <= $5))";
        let mut attachments: HashMap<i64, Vec<AttachmentView>> = HashMap::new();
        let attachment_rows: Vec<(i64, i64, Option<String>, String, i64)> = sqlx::query_as(&format!(
            "SELECT a.message_id, a.part, a.filename, a.content_type, a.size FROM attachments a \
             JOIN messages m ON m.id = a.message_id WHERE {on_page} ORDER BY a.id"
        ))
        .bind(case.id)
        .bind(first.0)
        .bind(first.1)
        .bind(last.0)
        .bind(last.1)
        .fetch_all(self.pool())
        .await?;
        for (message, part, filename, content_type, size) in attachment_rows {
            attachments
                .entry(message)
                .or_default()
                .push(AttachmentView {
                    part,
                    filename,
                    content_type,
                    size,
                });
        }
        let mut links: HashMap<i64, Vec<LinkView>> = HashMap::new();
        let link_rows: Vec<(i64, String, String)> = sqlx::query_as(&format!(
            "SELECT l.message_id, l.url, l.kind FROM links l JOIN messages m ON m.id = l.message_id \
             WHERE {on_page} ORDER BY l.id"
        ))
        .bind(case.id)
        .bind(first.0)
        .bind(first.1)
        .bind(last.0)
        .bind(last.1)
        .fetch_all(self.pool())
        .await?;
        for (message, url, kind) in link_rows {
            links
                .entry(message)
                .or_default()
                .push(LinkView { url, kind });
        }
        let events_total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE case_id = $1")
                .bind(case.id)
                .fetch_one(self.pool())
                .await?;
        let mut events: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT at, kind, detail FROM events WHERE case_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(case.id)
        .bind(MAX_VIEW_EVENTS)
        .fetch_all(self.pool())
        .await?;
        events.reverse();
        let parse = |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::Null);
        let messages = rows
            .into_iter()
            .map(|m| MessageView {
                id: m.id,
                attachments: attachments.remove(&m.id).unwrap_or_default(),
                links: links.remove(&m.id).unwrap_or_default(),
                message_id: m.message_id,
                in_reply_to: m.in_reply_to,
                date: ts_to_rfc3339(m.date_utc),
                date_offset: m.date_offset_minutes.map(offset_text),
                date_source: m.date_source,
                from: serde_json::json!({ "name": m.from_name, "address": m.from_address }),
                to: parse(&m.to_json),
                cc: parse(&m.cc_json),
                subject: m.subject,
                direction: m.direction,
                resolution_signal: m.signal.as_deref() == Some("resolution"),
                signal: m.signal,
                resolution_phrase: m.resolution_phrase,
                stage: m.stage,
                stage_kind: m.stage_kind,
                bounce: m
                    .bounce_json
                    .as_deref()
                    .and_then(|b| serde_json::from_str(b).ok()),
                new_text: view_text(m.new_text),
                quoted_text: view_text(m.quoted_text),
                signature: view_text(m.signature),
                thread_rule: m.thread_rule,
                warnings: parse(&m.warnings_json),
            })
            .collect::<Vec<_>>();
        let events = events
            .into_iter()
            .map(|(at, kind, detail)| EventView {
                at: ts_to_rfc3339(at),
                kind,
                detail: parse(&detail),
            })
            .collect();
        Ok(Some(CaseDetail {
            case,
            messages,
            events,
            thread: ThreadPage {
                page: number,
                per_page,
                pages,
                messages_total,
                events_total,
            },
        }))
    }

    /// Counts for a quick look: cases, messages, quarantined mails.
    pub async fn counts(&self) -> Result<(i64, i64, i64)> {
        let cases: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases")
            .fetch_one(self.pool())
            .await?;
        let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
            .fetch_one(self.pool())
            .await?;
        let quarantined: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM quarantine WHERE released_at IS NULL")
                .fetch_one(self.pool())
                .await?;
        Ok((cases, messages, quarantined))
    }
}

/// Filters of the desk's case list. Text matches are case-insensitive and
/// literal (`%` and `_` mean themselves).
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    /// Owned by any of these (a person's name and address).
    pub owners: Vec<String>,
    /// Only cases waiting on the desk.
    pub waiting_on_us: bool,
    pub status: Option<CaseStatus>,
    pub priority: Option<String>,
    /// Part of the customer's name.
    pub customer: Option<String>,
    /// Part of a case number, title, KB or error code found in its logs.
    pub text: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// A row of the desk's case list.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct CaseListRow {
    pub id: i64,
    pub key: String,
    pub case_id: Option<String>,
    pub title: Option<String>,
    pub priority: Option<String>,
    pub customer: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: CaseStatus,
    pub message_count: i64,
    pub last_message_at: Option<i64>,
    pub owner: Option<String>,
    /// The stored SLA snapshot (JSON), read by the page at its own instant.
    #[serde(skip)]
    pub snapshot: Option<String>,
    pub pending_draft: Option<i64>,
}

pub(crate) fn like_pattern(text: &str) -> String {
    let escaped = text
        .trim()
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// The prefixes under which a searched word sits in the term indexes, or
/// `None` when the text is not one ASCII word (it is then matched anywhere
/// in the title by a scan). Bare digits also look for the `kb` form and bare
/// hex for the `0x` form the log readers store ("5034441" finds KB5034441).
fn term_prefixes(text: &str) -> Option<Vec<String>> {
    let word = text
        .trim()
        .trim_matches(|c: char| c.is_ascii_punctuation())
        .to_lowercase();
    if word.is_empty() || !word.chars().all(is_term_char) {
        return None;
    }
    let mut prefixes = vec![word.clone()];
    if word.bytes().all(|b| b.is_ascii_digit()) {
        prefixes.push(format!("kb{word}"));
    }
    if word.len() >= 4 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
        prefixes.push(format!("0x{word}"));
    }
    Some(prefixes)
}

impl Store {
    /// One page of cases matching `q`, most recently active first, and how
    /// many match in all.
    pub async fn search_cases(&self, q: &CaseQuery) -> Result<(Vec<CaseListRow>, i64)> {
        let mut conditions: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        let mut bind = |value: String| {
            binds.push(value);
            format!("${}", binds.len())
        };
        if !q.owners.is_empty() {
            let list: Vec<String> = q.owners.iter().map(|o| bind(o.to_lowercase())).collect();
            conditions.push(format!(
                "c.id IN (SELECT case_id FROM case_sla WHERE LOWER(owner) IN ({}))",
                list.join(", ")
            ));
        }
        if q.waiting_on_us {
            conditions.push("c.status IN ('waiting_on_us', 'new')".into());
        }
        if let Some(status) = q.status {
            conditions.push(format!("c.status = {}", bind(status.as_str().to_string())));
        }
        if let Some(priority) = q.priority.as_ref().filter(|s| !s.is_empty()) {
            conditions.push(format!(
                "UPPER(c.priority) = {}",
                bind(priority.to_uppercase())
            ));
        }
        if let Some(customer) = q.customer.as_ref().filter(|s| !s.trim().is_empty()) {
            conditions.push(format!(
                "LOWER(c.customer) LIKE {} ESCAPE '\\'",
                bind(like_pattern(customer))
            ));
        }
        if let Some(text) = q.text.as_ref().filter(|s| !s.trim().is_empty()) {
            match term_prefixes(text) {
                // A prefix range per spelling, over the case and log terms.
                Some(prefixes) => {
                    let ranges: Vec<String> = prefixes
                        .into_iter()
                        .map(|prefix| {
                            let upper = format!("{prefix}{}", char::MAX);
                            format!("(t.term >= {} AND t.term < {})", bind(prefix), bind(upper))
                        })
                        .collect();
                    let ranges = ranges.join(" OR ");
                    conditions.push(format!(
                        "(c.id IN (SELECT t.case_id FROM case_terms t WHERE {ranges}) \
                         OR c.id IN (SELECT m.case_id FROM analysis_terms t \
                         JOIN messages m ON m.id = t.message_id WHERE {ranges}))"
                    ));
                }
                None => {
                    let p = bind(like_pattern(text));
                    conditions.push(format!(
                        "(LOWER(c.title) LIKE {p} ESCAPE '\\' OR LOWER(c.customer) LIKE {p} ESCAPE '\\')"
                    ));
                }
            }
        }
        // A case merged away or emptied by a move holds no mail: not listed.
        // Unfiltered, the few empty cases are counted off the whole (two
        // index reads instead of a scan of every case).
        let unfiltered = conditions.is_empty();
        conditions.push("c.message_count > 0".into());
        let filter = format!("WHERE {}", conditions.join(" AND "));
        let total = if unfiltered {
            let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases")
                .fetch_one(self.pool())
                .await?;
            let empty: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE message_count = 0")
                    .fetch_one(self.pool())
                    .await?;
            all - empty
        } else {
            let count_sql = format!("SELECT COUNT(*) FROM cases c {filter}");
            let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
            for b in &binds {
                count = count.bind(b);
            }
            count.fetch_one(self.pool()).await?
        };
        let sql = format!(
            "SELECT c.id, c.key, c.case_id, c.title, c.priority, c.customer, c.status, c.message_count, \
             c.last_message_at, s.owner, s.snapshot, \
             (SELECT MIN(d.id) FROM drafts d WHERE d.case_id = c.id AND d.status = 'pending') AS pending_draft \
             FROM cases c LEFT JOIN case_sla s ON s.case_id = c.id {filter} \
             ORDER BY c.last_message_at DESC, c.id DESC LIMIT {} OFFSET {}",
            q.limit.clamp(1, 500),
            q.offset.max(0)
        );
        let mut rows = sqlx::query_as::<_, CaseListRow>(&sql);
        for b in &binds {
            rows = rows.bind(b);
        }
        let rows = rows.fetch_all(self.pool()).await?;
        Ok((rows, total))
    }

    /// The customers named in cases, for the list's filter menu.
    pub async fn case_customers(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT customer FROM cases WHERE customer IS NOT NULL ORDER BY customer LIMIT 500",
        )
        .fetch_all(self.pool())
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_is_indexed_by_its_key_reference_and_ascii_title_words() {
        let terms = crate::terms::case_terms(
            "cas-08520-q7z9r6",
            Some("用户反馈补丁KB5022123安装失败, 0x800f0985。Windows Server 2019"),
            Some("CMIT:0001077"),
        );
        for expected in [
            "cas-08520-q7z9r6",
            "08520",
            "q7z9r6",
            "kb5022123",
            "0x800f0985",
            "windows",
            "2019",
            "cmit:0001077",
            "0001077",
        ] {
            assert!(
                terms.contains(&expected.to_string()),
                "{expected} in {terms:?}"
            );
        }
        assert!(
            terms.iter().all(|t| t.is_ascii() && t.len() >= 2),
            "{terms:?}"
        );
    }

    #[test]
    fn one_ascii_word_is_a_term_and_other_text_is_scanned() {
        assert_eq!(term_prefixes(" KB5034441 ").unwrap(), ["kb5034441"]);
        assert_eq!(
            term_prefixes("5034441").unwrap(),
            ["5034441", "kb5034441", "0x5034441"]
        );
        assert_eq!(
            term_prefixes("800F0922").unwrap(),
            ["800f0922", "0x800f0922"]
        );
        assert_eq!(term_prefixes("CAS-08520").unwrap(), ["cas-08520"]);
        assert_eq!(term_prefixes("\"0x80073712,\"").unwrap(), ["0x80073712"]);
        assert!(term_prefixes("安装失败").is_none());
        assert!(term_prefixes("KB 5034441").is_none());
        assert!(term_prefixes("KB5034441安装").is_none());
    }
}
