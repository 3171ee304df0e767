//! Knowledge from closed cases: one entry per case, written when its
//! closure is approved, read and corrected by engineers, matched against
//! new failures by the drafting stage.

use anyhow::Result;
use serde::Serialize;
use sqlx::{AnyConnection, FromRow};

use super::{Store, events, now_ts, ts_to_rfc3339};

/// What a closure teaches.
#[derive(Debug, Clone)]
pub struct NewKnowledge {
    pub case_row: i64,
    pub case_key: String,
    pub draft_id: Option<i64>,
    pub class: String,
    pub rule: Option<String>,
    pub error_codes: Vec<String>,
    pub component: Option<String>,
    pub package: Option<String>,
    pub kbs: Vec<String>,
    pub problem: String,
    pub resolution: String,
    pub customer_words: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
struct Row {
    id: i64,
    case_row: i64,
    case_key: String,
    draft_id: Option<i64>,
    class: String,
    rule: Option<String>,
    error_codes: String,
    component: Option<String>,
    package: Option<String>,
    kbs: String,
    problem: String,
    resolution: String,
    customer_words: Option<String>,
    created_at: i64,
    updated_at: i64,
    updated_by: Option<String>,
}

/// A knowledge entry as listed and shown.
#[derive(Debug, Clone, Serialize)]
pub struct KnowledgeEntry {
    pub id: i64,
    #[serde(skip)]
    pub case_row: i64,
    pub case_key: String,
    pub draft_id: Option<i64>,
    pub class: String,
    pub rule: Option<String>,
    pub error_codes: Vec<String>,
    pub component: Option<String>,
    pub package: Option<String>,
    pub kbs: Vec<String>,
    pub problem: String,
    pub resolution: String,
    pub customer_words: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub updated_by: Option<String>,
}

impl From<Row> for KnowledgeEntry {
    fn from(r: Row) -> Self {
        let list = |s: &str| serde_json::from_str(s).unwrap_or_default();
        KnowledgeEntry {
            id: r.id,
            case_row: r.case_row,
            case_key: r.case_key,
            draft_id: r.draft_id,
            class: r.class,
            rule: r.rule,
            error_codes: list(&r.error_codes),
            component: r.component,
            package: r.package,
            kbs: list(&r.kbs),
            problem: r.problem,
            resolution: r.resolution,
            customer_words: r.customer_words,
            created_at: ts_to_rfc3339(r.created_at),
            updated_at: ts_to_rfc3339(r.updated_at),
            updated_by: r.updated_by,
        }
    }
}

const COLUMNS: &str = "id, case_id AS case_row, case_key, draft_id, class, rule, error_codes, component, package, kbs, problem, \
     resolution, customer_words, created_at, updated_at, updated_by";

/// Writes (or rewrites, for a case closed again) a case's entry.
pub async fn upsert(conn: &mut AnyConnection, k: &NewKnowledge, by: &str) -> Result<i64> {
    let now = now_ts();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO knowledge (case_id, case_key, draft_id, class, rule, error_codes, component, package, kbs, \
         problem, resolution, customer_words, created_at, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14) \
         ON CONFLICT (case_id) DO UPDATE SET draft_id = excluded.draft_id, class = excluded.class, \
         rule = excluded.rule, error_codes = excluded.error_codes, component = excluded.component, \
         package = excluded.package, kbs = excluded.kbs, problem = excluded.problem, \
         resolution = excluded.resolution, customer_words = excluded.customer_words, \
         updated_at = excluded.updated_at, updated_by = excluded.updated_by RETURNING id",
    )
    .bind(k.case_row)
    .bind(&k.case_key)
    .bind(k.draft_id)
    .bind(&k.class)
    .bind(&k.rule)
    .bind(serde_json::to_string(&k.error_codes)?)
    .bind(&k.component)
    .bind(&k.package)
    .bind(serde_json::to_string(&k.kbs)?)
    .bind(&k.problem)
    .bind(&k.resolution)
    .bind(&k.customer_words)
    .bind(now)
    .bind(by)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// An engineer's correction of an entry; unset fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct KnowledgeEdit {
    pub class: Option<String>,
    pub resolution: Option<String>,
    pub problem: Option<String>,
}

impl Store {
    pub async fn knowledge_list(&self) -> Result<Vec<KnowledgeEntry>> {
        let rows: Vec<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM knowledge ORDER BY id"))
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().map(KnowledgeEntry::from).collect())
    }

    /// An entry by id or by its case's key.
    pub async fn knowledge_entry(&self, key: &str) -> Result<Option<KnowledgeEntry>> {
        let row: Option<Row> = match key.trim().parse::<i64>() {
            Ok(id) => {
                sqlx::query_as(&format!("SELECT {COLUMNS} FROM knowledge WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?
            }
            Err(_) => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM knowledge WHERE UPPER(case_key) = UPPER($1)"
                ))
                .bind(key.trim())
                .fetch_optional(self.pool())
                .await?
            }
        };
        Ok(row.map(KnowledgeEntry::from))
    }

    /// Entries of one root-cause class (the candidates for a new failure).
    pub async fn knowledge_of_class(&self, class: &str) -> Result<Vec<KnowledgeEntry>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM knowledge WHERE class = $1 ORDER BY id"
        ))
        .bind(class)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(KnowledgeEntry::from).collect())
    }

    /// Applies an engineer's correction; `None` when there is no such entry.
    pub async fn knowledge_edit(
        &self,
        id: i64,
        edit: &KnowledgeEdit,
        by: &str,
    ) -> Result<Option<KnowledgeEntry>> {
        let mut tx = self.begin_write().await?;
        let case_row: Option<i64> = sqlx::query_scalar(
            "UPDATE knowledge SET class = COALESCE($1, class), resolution = COALESCE($2, resolution), \
             problem = COALESCE($3, problem), updated_at = $4, updated_by = $5 WHERE id = $6 RETURNING case_id",
        )
        .bind(&edit.class)
        .bind(&edit.resolution)
        .bind(&edit.problem)
        .bind(now_ts())
        .bind(by)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(case_row) = case_row else {
            return Ok(None);
        };
        events::event(
            &mut tx,
            Some(case_row),
            None,
            "knowledge_edited",
            serde_json::json!({"knowledge": id, "by": by, "class": edit.class,
                "resolution": edit.resolution, "problem": edit.problem}),
        )
        .await?;
        tx.commit().await?;
        self.knowledge_entry(&id.to_string()).await
    }
}
