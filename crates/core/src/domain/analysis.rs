//! Where the analysis of one customer mail stands.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisStatus {
    /// Queued (or claimed by a worker): a reply waits for it.
    Pending,
    /// Attachments and pasted lines were read and a report drawn; the
    /// mail's links are still being fetched. A reply does not wait for
    /// them: it is drafted again when they are in.
    Fetching,
    /// Logs were read and a report drawn.
    Done,
    /// The mail carried nothing to analyse.
    Empty,
    Failed,
}

impl AnalysisStatus {
    pub const ALL: [AnalysisStatus; 5] = [
        AnalysisStatus::Pending,
        AnalysisStatus::Fetching,
        AnalysisStatus::Done,
        AnalysisStatus::Empty,
        AnalysisStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisStatus::Pending => "pending",
            AnalysisStatus::Fetching => "fetching",
            AnalysisStatus::Done => "done",
            AnalysisStatus::Empty => "empty",
            AnalysisStatus::Failed => "failed",
        }
    }

    /// Whether a report is there to read (perhaps without the links yet).
    pub fn has_report(self) -> bool {
        matches!(self, AnalysisStatus::Done | AnalysisStatus::Fetching)
    }

    pub fn parse(s: &str) -> Option<Self> {
        AnalysisStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}
