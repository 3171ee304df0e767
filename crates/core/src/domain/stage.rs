//! The partner's case stages, as its system writes them after a subject's
//! title (初次响应, "Follow-up", 案例關閉 …). One word, whatever the language
//! or spelling: the SLA and drafting decide on the stage, never on its text.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    FirstResponse,
    FollowUp,
    Reassigned,
    Escalated,
    Closed,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::FirstResponse,
        Stage::FollowUp,
        Stage::Reassigned,
        Stage::Escalated,
        Stage::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::FirstResponse => "first_response",
            Stage::FollowUp => "follow_up",
            Stage::Reassigned => "reassigned",
            Stage::Escalated => "escalated",
            Stage::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Stage::ALL.into_iter().find(|k| k.as_str() == s)
    }
}
