//! SQL helpers shared by the store's modules: parameter marks for either
//! backend, and multi-row inserts that bind a whole batch in few statements.

use anyhow::{Context, Result};
use sqlx::AnyConnection;

/// `$first, $first+1, …` (n of them); `NULL` for none, so `IN (NULL)` matches nothing.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
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
pub(crate) fn sequential_marks(positional: bool, first: usize, n: usize) -> String {
    if positional {
        vec!["?"; n].join(", ")
    } else {
        placeholders(first, n)
    }
}

pub(crate) fn uses_positional_marks(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("sqlite")
}

/// Parameters per statement: under every backend's limit (SQLite 32,766,
/// PostgreSQL 65,535) and large enough that a whole batch is one statement.
pub(crate) const MAX_PARAMS: usize = 8000;

/// Inserts `rows` in as few multi-row statements as [`MAX_PARAMS`] allows;
/// `bind` binds one row's values. `tail` follows the VALUES list (ON
/// CONFLICT, RETURNING); a `RETURNING key, id` tail's pairs come back.
pub(crate) async fn insert_rows<T>(
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

pub(crate) type AnyQuery<'a> =
    sqlx::query::QueryAs<'a, sqlx::Any, (String, i64), sqlx::any::AnyArguments<'a>>;

pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

pub(crate) fn dedup(ids: Vec<&str>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}
