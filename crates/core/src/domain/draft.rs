//! A draft's words: what kind of reply it is, where it stands at the
//! approval gate, and who wrote its text.

use serde::{Deserialize, Serialize};

/// The kinds of reply the templates produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftKind {
    Scope,
    NextSteps,
    Closure,
    Archive,
    /// An engineer's own reply: greeting and signature, the words theirs.
    /// Never chosen by the drafting stage, only asked for.
    Free,
}

impl DraftKind {
    pub const ALL: [DraftKind; 5] = [
        DraftKind::Scope,
        DraftKind::NextSteps,
        DraftKind::Closure,
        DraftKind::Archive,
        DraftKind::Free,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DraftKind::Scope => "scope",
            DraftKind::NextSteps => "next_steps",
            DraftKind::Closure => "closure",
            DraftKind::Archive => "archive",
            DraftKind::Free => "free",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        DraftKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a draft stands at the approval gate. Only `Approved` drafts are
/// ever sent; a pending draft follows the case until an engineer acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftStatus {
    /// Waiting for an engineer (edit, approve, reject).
    Pending,
    /// Approved: the sender may claim it; its text can no longer change.
    Approved,
    Rejected,
    Sent,
    /// A send that cannot be retried on its own: an engineer decides.
    Failed,
}

impl DraftStatus {
    pub const ALL: [DraftStatus; 5] = [
        DraftStatus::Pending,
        DraftStatus::Approved,
        DraftStatus::Rejected,
        DraftStatus::Sent,
        DraftStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DraftStatus::Pending => "pending",
            DraftStatus::Approved => "approved",
            DraftStatus::Rejected => "rejected",
            DraftStatus::Sent => "sent",
            DraftStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        DraftStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who wrote a draft's text: the drafting stage from a template, or an
/// engineer asking for one by hand (which then stands until new mail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftOrigin {
    Auto,
    Manual,
}

impl DraftOrigin {
    pub const ALL: [DraftOrigin; 2] = [DraftOrigin::Auto, DraftOrigin::Manual];

    pub fn as_str(self) -> &'static str {
        match self {
            DraftOrigin::Auto => "auto",
            DraftOrigin::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        DraftOrigin::ALL.into_iter().find(|k| k.as_str() == s)
    }
}
