//! Counts for `/metrics`: what the store holds, by state.

use anyhow::Result;

use super::Store;

/// Upper bounds (ms) of the analysis-duration histogram's buckets.
pub const ANALYSIS_BUCKETS_MS: [i64; 8] = [10, 50, 100, 250, 500, 1000, 5000, 30000];

#[derive(Debug, Default)]
pub struct StoreCounts {
    pub cases_by_status: Vec<(String, i64)>,
    pub drafts_by_status: Vec<(String, i64)>,
    pub messages_by_direction: Vec<(String, i64)>,
    pub raw_messages: i64,
    pub quarantined: i64,
    /// Cumulative counts per bucket of ANALYSIS_BUCKETS_MS, then the count
    /// and sum of all durations.
    pub analysis_buckets: Vec<i64>,
    pub analysis_count: i64,
    pub analysis_sum_ms: i64,
    pub analyses_by_status: Vec<(String, i64)>,
}

impl Store {
    pub async fn counts_for_metrics(&self) -> Result<StoreCounts> {
        let grouped = |sql: &'static str| async move {
            sqlx::query_as::<_, (String, i64)>(sql)
                .fetch_all(self.pool())
                .await
        };
        let mut c = StoreCounts {
            cases_by_status: grouped(
                "SELECT status, COUNT(*) FROM cases GROUP BY status ORDER BY status",
            )
            .await?,
            drafts_by_status: grouped(
                "SELECT status, COUNT(*) FROM drafts GROUP BY status ORDER BY status",
            )
            .await?,
            messages_by_direction: grouped(
                "SELECT direction, COUNT(*) FROM messages GROUP BY direction ORDER BY direction",
            )
            .await?,
            analyses_by_status: grouped(
                "SELECT status, COUNT(*) FROM analyses GROUP BY status ORDER BY status",
            )
            .await?,
            ..Default::default()
        };
        c.raw_messages = sqlx::query_scalar("SELECT COUNT(*) FROM raw_messages")
            .fetch_one(self.pool())
            .await?;
        c.quarantined =
            sqlx::query_scalar("SELECT COUNT(*) FROM quarantine WHERE released_at IS NULL")
                .fetch_one(self.pool())
                .await?;
        let buckets: Vec<String> = ANALYSIS_BUCKETS_MS
            .iter()
            .map(|b| format!("SUM(CASE WHEN duration_ms <= {b} THEN 1 ELSE 0 END)"))
            .collect();
        let sql = format!(
            "SELECT {}, COUNT(*), CAST(SUM(duration_ms) AS BIGINT) FROM analyses WHERE duration_ms IS NOT NULL",
            buckets.join(", ")
        );
        let row = sqlx::query(&sql).fetch_one(self.pool()).await?;
        use sqlx::Row as _;
        for i in 0..ANALYSIS_BUCKETS_MS.len() {
            c.analysis_buckets
                .push(row.try_get::<Option<i64>, _>(i)?.unwrap_or(0));
        }
        c.analysis_count = row.try_get::<i64, _>(ANALYSIS_BUCKETS_MS.len())?;
        c.analysis_sum_ms = row
            .try_get::<Option<i64>, _>(ANALYSIS_BUCKETS_MS.len() + 1)?
            .unwrap_or(0);
        Ok(c)
    }
}
