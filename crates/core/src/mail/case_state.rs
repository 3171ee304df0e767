//! A case's status, derived from its messages: who owes the next move.
//!
//! Derived, never edited by hand: replaying the same messages in any arrival
//! order gives the same status, because the rule walks them by date.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::{CaseStatus, Direction, MailSignal};

static ARCHIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(暂时归档|归档此案例|归档该案例|archive this case|case (has been|is) archived)",
    )
    .expect("static regex")
});
static THANKS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(谢|感谢|辛苦|thank|好的|收到|ok\b)").expect("static regex"));
/// Words that make a short mail news rather than a thank-you: it reports
/// logs, a result, or asks for something.
static NEWS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(上传|日志|附件|截图|失败|错误|报错|依旧|仍然|还是|问题|请|跟进|怎么|如何|能否|是否|[?？]|upload|log|attach|fail|error|still|please|how|could you|can you)",
    )
    .expect("static regex")
});

/// Longest new text (in chars) that still counts as a mere thank-you.
const ACK_MAX_CHARS: usize = 40;

/// Classifies a mail's new text. `ends_problem` is whether the mail says
/// the problem is over: a resolution phrase in a customer's mail, a
/// closure in the desk's; `carries_evidence` whether the mail has
/// attachments or links (then it is never a mere thank-you).
pub fn mail_signal(
    direction: Direction,
    new_text: &str,
    ends_problem: bool,
    carries_evidence: bool,
) -> Option<MailSignal> {
    match direction {
        Direction::Customer if ends_problem => Some(MailSignal::Resolution),
        Direction::Customer
            if !carries_evidence
                && new_text.chars().filter(|c| !c.is_whitespace()).count() <= ACK_MAX_CHARS
                && THANKS.is_match(new_text)
                && !NEWS.is_match(new_text) =>
        {
            Some(MailSignal::Ack)
        }
        Direction::Engineer if ARCHIVE.is_match(new_text) => Some(MailSignal::Archive),
        Direction::Engineer if ends_problem => Some(MailSignal::Closure),
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
    messages_by_date
        .into_iter()
        .fold(CaseStatus::New, next_status)
}

/// The status after one more message (the SLA engine walks a thread with it).
pub fn next_status(status: CaseStatus, m: StatusInput) -> CaseStatus {
    match (m.direction, m.signal, status) {
        (Direction::Auto | Direction::Bounce, _, s) => s,
        (Direction::Customer, Some(MailSignal::Resolution), _) => CaseStatus::Resolved,
        // A bare "thanks!" hands nothing back to the desk: it neither
        // reopens a closed case nor asks for a reply. Only a case the
        // desk has not answered yet starts waiting on it.
        (Direction::Customer, Some(MailSignal::Ack), CaseStatus::New) => CaseStatus::WaitingOnUs,
        (Direction::Customer, Some(MailSignal::Ack), s) => s,
        (Direction::Customer, _, _) => CaseStatus::WaitingOnUs,
        (Direction::Engineer, Some(MailSignal::Archive), _) => CaseStatus::Archived,
        (Direction::Engineer, Some(MailSignal::Closure), _) => CaseStatus::Resolved,
        // The closure summary after the customer's confirmation.
        (Direction::Engineer, _, CaseStatus::Resolved) => CaseStatus::Resolved,
        (Direction::Engineer, _, _) => CaseStatus::WaitingOnCustomer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    fn m(direction: Direction, text: &str, resolution: bool) -> StatusInput {
        StatusInput {
            direction,
            signal: mail_signal(direction, text, resolution, false),
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
    fn short_news_with_thanks_is_not_a_thank_you() {
        for text in [
            "已按照邮件说明的步骤上传压缩包。请您跟进。谢谢！",
            "见附件，谢谢",
            "还是失败，谢谢",
            "Thanks, logs uploaded.",
        ] {
            assert_eq!(mail_signal(Customer, text, false, false), None, "{text}");
        }
        assert_eq!(mail_signal(Customer, "谢谢", false, true), None);
        assert_eq!(
            mail_signal(Customer, "非常感谢。辛苦了！", false, false),
            Some(MailSignal::Ack)
        );
    }

    #[test]
    fn a_bare_thank_you_keeps_the_ball_with_the_customer() {
        let s = case_status([
            m(Engineer, "已收到您上传的日志，有结果会同步。", false),
            m(Customer, "非常感谢！", false),
        ]);
        assert_eq!(s, CaseStatus::WaitingOnCustomer);
        assert_eq!(
            case_status([m(Customer, "谢谢", false)]),
            CaseStatus::WaitingOnUs
        );
    }

    #[test]
    fn the_desk_s_closure_resolves_and_the_customer_s_news_reopens() {
        let closed = [
            m(Customer, "补丁安装失败", false),
            m(Engineer, "案例总结 …", true),
        ];
        assert_eq!(case_status(closed), CaseStatus::Resolved);
        let thanks = [closed[0], closed[1], m(Customer, "谢谢！", false)];
        assert_eq!(case_status(thanks), CaseStatus::Resolved);
        let reopened = [
            closed[0],
            closed[1],
            m(Customer, "又失败了，日志见附件", false),
        ];
        assert_eq!(case_status(reopened), CaseStatus::WaitingOnUs);
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
