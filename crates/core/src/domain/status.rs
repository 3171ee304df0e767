//! Where a case stands, and what one mail says beyond its direction.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Only machine mail so far.
    New,
    WaitingOnUs,
    WaitingOnCustomer,
    Resolved,
    Archived,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 5] = [
        CaseStatus::New,
        CaseStatus::WaitingOnUs,
        CaseStatus::WaitingOnCustomer,
        CaseStatus::Resolved,
        CaseStatus::Archived,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        CaseStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::New => "new",
            CaseStatus::WaitingOnUs => "waiting_on_us",
            CaseStatus::WaitingOnCustomer => "waiting_on_customer",
            CaseStatus::Resolved => "resolved",
            CaseStatus::Archived => "archived",
        }
    }
}

/// What a mail's new text says, beyond its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailSignal {
    /// The customer confirms the fix.
    Resolution,
    /// The engineer archives the case (暂时归档).
    Archive,
    /// The desk's closure mail (案例总结, "we will close this case").
    Closure,
    /// A short thank-you that asks for nothing.
    Ack,
}

impl MailSignal {
    pub fn as_str(self) -> &'static str {
        match self {
            MailSignal::Resolution => "resolution",
            MailSignal::Archive => "archive",
            MailSignal::Closure => "closure",
            MailSignal::Ack => "ack",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "resolution" => MailSignal::Resolution,
            "archive" => MailSignal::Archive,
            "closure" => MailSignal::Closure,
            "ack" => MailSignal::Ack,
            _ => return None,
        })
    }
}
