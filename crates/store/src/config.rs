//! `[store]`: which database holds the cases.

use serde::Deserialize;

/// The environment variable that overrides `store.url`, so scripts and tests
/// can point any command at a throwaway store.
pub const DB_ENV: &str = "CASEBOT_DB";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` (created if missing). Overridden by `CASEBOT_DB`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/casebot.db".into(),
        }
    }
}
