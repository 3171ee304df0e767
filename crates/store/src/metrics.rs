//! The few figures `/metrics` asks the store for: how much work waits.
//!
//! Each is a count over an index range of rows still waiting (pending
//! analyses, pending and approved drafts, unreleased quarantine, notices not
//! yet delivered), never a
//! scan of a whole table: a scrape costs the same at a hundred cases and at
//! a hundred thousand.

use anyhow::Result;

use super::Store;

/// Work waiting, by queue.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct QueueLengths {
    /// Mails whose logs wait to be read.
    pub analysis: i64,
    /// Analyses waiting for their download links.
    pub analysis_links: i64,
    /// Drafts waiting for an engineer's approval.
    pub approval: i64,
    /// Approved replies not yet sent.
    pub outbox: i64,
    /// Mails kept in quarantine, not replayed.
    pub quarantined: i64,
    /// Notices not yet delivered (waiting for their window, opening hours
    /// or a retry).
    pub notifications: i64,
}

impl Store {
    pub async fn queue_lengths(&self) -> Result<QueueLengths> {
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(self.pool())
                .await
        };
        Ok(QueueLengths {
            analysis: count("SELECT COUNT(*) FROM analyses WHERE status = 'pending'").await?,
            analysis_links: count("SELECT COUNT(*) FROM analyses WHERE status = 'fetching'")
                .await?,
            approval: count("SELECT COUNT(*) FROM drafts WHERE status = 'pending'").await?,
            outbox: count("SELECT COUNT(*) FROM drafts WHERE status = 'approved'").await?,
            quarantined: count("SELECT COUNT(*) FROM quarantine WHERE released_at IS NULL").await?,
            notifications: count(
                "SELECT COUNT(*) FROM notifications WHERE state IN ('pending', 'sending')",
            )
            .await?,
        })
    }
}
