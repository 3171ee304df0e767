//! A case's status, derived from its messages: who owes the next move.
//!
//! Derived, never edited by hand: replaying the same messages in any arrival
//! order gives the same status, because the rule walks them by date.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::direction::Direction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MailSignal {
    /// The customer confirms the fix.
    Resolution,
    /// The engineer archives the case (暂时归档).
    Archive,
    /// A short thank-you that asks for nothing.
    Ack,
}

impl MailSignal {
    pub fn as_str(self) -> &'static str {
        match self {
            MailSignal::Resolution => "resolution",
            MailSignal::Archive => "archive",
            MailSignal::Ack => "ack",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "resolution" => MailSignal::Resolution,
            "archive" => MailSignal::Archive,
            "ack" => MailSignal::Ack,
            _ => return None,
        })
    }
}

static ARCHIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(暂时归档|归档此案例|归档该案例|archive this case|case (has been|is) archived)",
    )
    .expect("static regex")
});
static THANKS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(谢|感谢|辛苦|thank|好的|收到|ok\b)").expect("static regex"));

/// Longest new text (in chars) that still counts as a mere thank-you.
const ACK_MAX_CHARS: usize = 40;

/// Classifies a mail's new text. `resolution` is whether a resolution phrase
/// was found (customer mails only).
pub fn mail_signal(direction: Direction, new_text: &str, resolution: bool) -> Option<MailSignal> {
    match direction {
        Direction::Customer if resolution => Some(MailSignal::Resolution),
        Direction::Customer
            if new_text.chars().filter(|c| !c.is_whitespace()).count() <= ACK_MAX_CHARS
                && THANKS.is_match(new_text) =>
        {
            Some(MailSignal::Ack)
        }
        Direction::Engineer if ARCHIVE.is_match(new_text) => Some(MailSignal::Archive),
        _ => None,
    }
}

/// One message as the status rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct StatusInput {
    pub direction: Direction,
    pub signal: Option<MailSignal>,
}

/// Walks the messages in date order.
pub fn case_status(messages_by_date: impl IntoIterator<Item = StatusInput>) -> CaseStatus {
    let mut status = CaseStatus::New;
    for m in messages_by_date {
        status = match (m.direction, m.signal, status) {
            (Direction::Auto | Direction::Bounce, _, s) => s,
            (Direction::Customer, Some(MailSignal::Resolution), _) => CaseStatus::Resolved,
            // "Thanks!" after the closure does not reopen the case.
            (
                Direction::Customer,
                Some(MailSignal::Ack),
                s @ (CaseStatus::Resolved | CaseStatus::Archived),
            ) => s,
            (Direction::Customer, _, _) => CaseStatus::WaitingOnUs,
            (Direction::Engineer, Some(MailSignal::Archive), _) => CaseStatus::Archived,
            // The closure summary after the customer's confirmation.
            (Direction::Engineer, _, CaseStatus::Resolved) => CaseStatus::Resolved,
            (Direction::Engineer, _, _) => CaseStatus::WaitingOnCustomer,
        };
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    fn m(direction: Direction, text: &str, resolution: bool) -> StatusInput {
        StatusInput {
            direction,
            signal: mail_signal(direction, text, resolution),
        }
    }

    #[test]
    fn seed_shaped_thread_ends_resolved_and_stays_so_after_thanks() {
        let thread = [
            m(Engineer, "问题定义: …", false),
            m(
                Customer,
                "已按照邮件说明的步骤上传压缩包。请您跟进。谢谢！",
                false,
            ),
            m(Engineer, "已收到您上传的日志", false),
            m(Customer, "情况依旧", false),
            m(Customer, "问题解决了。更新已安装成功。", true),
            m(Engineer, "案例总结 …", false),
            m(Customer, "非常感谢。辛苦了！", false),
        ];
        assert_eq!(
            case_status(thread[..4].iter().copied()),
            CaseStatus::WaitingOnUs
        );
        assert_eq!(
            case_status(thread[..5].iter().copied()),
            CaseStatus::Resolved
        );
        assert_eq!(case_status(thread.iter().copied()), CaseStatus::Resolved);
    }

    #[test]
    fn machine_mail_never_moves_the_status() {
        assert_eq!(case_status([m(Auto, "I am out", false)]), CaseStatus::New);
        let s = case_status([
            m(Engineer, "请上传日志", false),
            m(Auto, "自动回复", false),
            m(Bounce, "", false),
        ]);
        assert_eq!(s, CaseStatus::WaitingOnCustomer);
    }

    #[test]
    fn archive_and_reopen() {
        let archived = [
            m(Engineer, "请上传日志", false),
            m(Engineer, "经过您的同意，我将暂时归档此案例。", false),
        ];
        assert_eq!(case_status(archived), CaseStatus::Archived);
        let reopened = [
            m(Engineer, "我将暂时归档此案例。", false),
            m(
                Customer,
                "又出现了同样的错误 0x800f0985，日志已上传，请帮忙分析",
                false,
            ),
        ];
        assert_eq!(case_status(reopened), CaseStatus::WaitingOnUs);
    }
}
