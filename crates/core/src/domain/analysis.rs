//! Where the analysis of one customer mail stands.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisStatus {
    /// Queued (or claimed by a worker): a reply waits for it.
    Pending,
    /// Logs were read and a report drawn.
    Done,
    /// The mail carried nothing to analyse.
    Empty,
    Failed,
}

impl AnalysisStatus {
    pub const ALL: [AnalysisStatus; 4] = [
        AnalysisStatus::Pending,
        AnalysisStatus::Done,
        AnalysisStatus::Empty,
        AnalysisStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisStatus::Pending => "pending",
            AnalysisStatus::Done => "done",
            AnalysisStatus::Empty => "empty",
            AnalysisStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        AnalysisStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}
