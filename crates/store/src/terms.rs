//! The search terms of each case (`case_terms`): written as cases are
//! filed, read by the case search (`cases.rs`).

use anyhow::Result;
use sqlx::AnyConnection;

use crate::Store;
use crate::sql::{MAX_PARAMS, insert_rows, placeholders};

/// Characters of an indexed term: what case numbers, KBs, error codes and
/// references are made of.
pub(crate) fn is_term_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '_' | '.')
}

/// The index terms of a case (see `case_terms`): its key, its reference and
/// the ASCII words of its title, lower-case, each compound word also by its
/// pieces ("CAS-08520-Q7Z9R6" is also "08520"). "KB5022123安装失败" gives
/// "kb5022123": Chinese text is not indexed, the search scans for it.
pub fn case_terms(key: &str, title: Option<&str>, internal_ref: Option<&str>) -> Vec<String> {
    let mut terms = Vec::new();
    for text in [Some(key), title, internal_ref].into_iter().flatten() {
        let lower = text.to_lowercase();
        for word in lower.split(|c| !is_term_char(c)) {
            let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            if word.len() >= 2 {
                terms.push(word.to_string());
            }
            if word.contains(|c: char| !c.is_ascii_alphanumeric()) {
                terms.extend(
                    word.split(|c: char| !c.is_ascii_alphanumeric())
                        .filter(|piece| piece.len() >= 2)
                        .map(str::to_string),
                );
            }
        }
    }
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// A case as its search terms see it.
pub(crate) struct Indexed<'a> {
    pub id: i64,
    pub key: &'a str,
    pub title: Option<&'a str>,
    pub internal_ref: Option<&'a str>,
}

/// Rewrites the search terms (`case_terms`) of `cases`.
pub(crate) async fn index_cases(conn: &mut AnyConnection, cases: &[Indexed<'_>]) -> Result<()> {
    if cases.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = cases.iter().map(|c| c.id).collect();
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
    let terms: Vec<(String, i64)> = cases
        .iter()
        .flat_map(|c| {
            case_terms(c.key, c.title, c.internal_ref)
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

impl Store {
    /// Fills `case_terms` once for a store filed before the index existed
    /// (its migration cannot split titles into words in SQL).
    pub(super) async fn index_unindexed_store(&self) -> Result<()> {
        let unindexed: bool = sqlx::query_scalar::<_, i64>(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM cases) \
             AND NOT EXISTS (SELECT 1 FROM case_terms) THEN 1 ELSE 0 END",
        )
        .fetch_one(self.pool())
        .await?
            == 1;
        if !unindexed {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        let cases: Vec<(i64, String, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT id, key, title, internal_ref FROM cases")
                .fetch_all(&mut *tx)
                .await?;
        let indexed: Vec<Indexed> = cases
            .iter()
            .map(|(id, key, title, internal_ref)| Indexed {
                id: *id,
                key,
                title: title.as_deref(),
                internal_ref: internal_ref.as_deref(),
            })
            .collect();
        index_cases(&mut tx, &indexed).await?;
        tx.commit().await?;
        Ok(())
    }
}
