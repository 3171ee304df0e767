//! Who a mail is from, in the desk's terms, and whether the customer says the
//! problem is fixed.
//!
//! Auto-replies and bounces must never pass for the customer: an
//! out-of-office answer would otherwise stop the SLA clock and trigger a
//! draft. So the machine signals are checked first, whatever the sender.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::{DeskConfig, Direction};

/// The header facts classification looks at, taken from the parsed mail.
#[derive(Debug, Clone, Default)]
pub struct MailSignals<'a> {
    pub from_address: Option<&'a str>,
    pub subject: &'a str,
    /// `type/subtype` of the top-level part, lower case.
    pub content_type: &'a str,
    /// `report-type` parameter of a multipart/report.
    pub report_type: Option<&'a str>,
    pub auto_submitted: Option<&'a str>,
    pub precedence: Option<&'a str>,
    pub x_autoreply: bool,
    pub return_path_empty: bool,
}

static BOUNCE_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(undeliverable|undelivered mail|delivery status notification \(failure\)|delivery status notification|mail delivery failed|returned mail|failure notice|delivery failure|未送达|无法送达|退信|系统退信)")
        .expect("static regex")
});
static AUTO_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(自动回复|自動回覆|auto[- ]?reply|automatic reply|autoreply|out of (the )?office|休假自动|abwesenheit)")
        .expect("static regex")
});

/// Classifies a mail as customer, engineer, auto-reply or bounce.
pub fn classify(signals: &MailSignals<'_>, desk: &DeskConfig) -> Direction {
    let from = signals.from_address.unwrap_or("").to_ascii_lowercase();
    let local = from.split('@').next().unwrap_or("");
    if signals.content_type == "multipart/report"
        && signals
            .report_type
            .is_none_or(|r| r.eq_ignore_ascii_case("delivery-status"))
        || matches!(local, "mailer-daemon" | "postmaster")
        || (signals.return_path_empty && BOUNCE_SUBJECT.is_match(signals.subject))
        || BOUNCE_SUBJECT.is_match(signals.subject) && local.contains("daemon")
    {
        return Direction::Bounce;
    }
    if signals.content_type == "multipart/report" {
        // Read receipts and other reports are machine mail too.
        return Direction::Auto;
    }
    // Real evidence only: `Precedence: list/bulk` and
    // `X-Auto-Response-Suppress` ride on partners' case systems and mailing
    // lists that carry real words, so alone they prove nothing.
    let auto_header = signals
        .auto_submitted
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("no"))
        || signals.x_autoreply
        || signals
            .precedence
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("auto_reply"));
    if auto_header || AUTO_SUBJECT.is_match(signals.subject) {
        return Direction::Auto;
    }
    if is_engineer(&from, desk) {
        return Direction::Engineer;
    }
    Direction::Customer
}

/// Whether `from` (lower case) is one of the desk's own addresses or domains.
pub fn is_engineer(from: &str, desk: &DeskConfig) -> bool {
    if from.is_empty() {
        return false;
    }
    if desk
        .engineer_addresses
        .iter()
        .any(|a| a.eq_ignore_ascii_case(from))
    {
        return true;
    }
    let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    desk.engineer_domains.iter().any(|d| {
        let d = d.trim_start_matches('@');
        domain.eq_ignore_ascii_case(d)
            || domain.len() > d.len()
                && domain
                    .to_ascii_lowercase()
                    .ends_with(&format!(".{}", d.to_ascii_lowercase()))
    })
}

/// Words that turn a following resolution phrase into its opposite or a question.
const NEGATIONS_ZH: &[&str] = &[
    "没有", "没", "未", "不", "还未", "尚未", "仍未", "是否", "并未", "还没",
];
const NEGATIONS_EN: &[&str] = &[
    "not ",
    "n't ",
    "never ",
    "no longer ",
    "if it ",
    "whether it ",
    "once it ",
];

/// The first configured resolution phrase in `new_text` that is not negated
/// or asked about, or `None`.
pub fn resolution_phrase<'p>(new_text: &str, phrases: &'p [String]) -> Option<&'p str> {
    let lower = new_text.to_lowercase();
    phrases.iter().map(String::as_str).find(|phrase| {
        let phrase_lower = phrase.to_lowercase();
        lower.match_indices(&phrase_lower).any(|(at, _)| {
            let before = &lower[..at];
            let ascii_phrase = phrase_lower.is_ascii();
            if ascii_phrase {
                // Whole words only: "unresolved" is not "resolved".
                if before
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric())
                {
                    return false;
                }
                let window: String = before
                    .chars()
                    .rev()
                    .take(16)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                !NEGATIONS_EN.iter().any(|n| window.contains(n)) && !is_question(&lower[at..])
            } else {
                let window: String = before
                    .chars()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                !NEGATIONS_ZH.iter().any(|n| window.contains(n)) && !is_question(&lower[at..])
            }
        })
    })
}

/// A phrase followed by a question mark in the same clause is a question.
fn is_question(from_phrase: &str) -> bool {
    for c in from_phrase.chars().take(24) {
        match c {
            '?' | '？' | '吗' => return true,
            '。' | '.' | '\n' | '！' | '!' | '，' | ',' | ';' | '；' => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::parse::IngestConfig;

    fn desk() -> DeskConfig {
        DeskConfig {
            engineer_addresses: vec!["support@example.com".into()],
            engineer_domains: vec!["desk.example.com".into()],
            ..DeskConfig::default()
        }
    }

    fn signals(from: &str, subject: &'static str) -> MailSignals<'static> {
        MailSignals {
            from_address: Some(Box::leak(from.to_string().into_boxed_str())),
            subject,
            content_type: "text/plain",
            ..Default::default()
        }
    }

    #[test]
    fn people() {
        assert_eq!(
            classify(&signals("support@example.com", "Re: x"), &desk()),
            Direction::Engineer
        );
        assert_eq!(
            classify(&signals("li@desk.example.com", "Re: x"), &desk()),
            Direction::Engineer
        );
        assert_eq!(
            classify(&signals("li@cn.desk.example.com", "Re: x"), &desk()),
            Direction::Engineer
        );
        assert_eq!(
            classify(&signals("li@notdesk.example.com", "Re: x"), &desk()),
            Direction::Customer
        );
        assert_eq!(
            classify(&signals("wang@example.cn", "Re: x"), &desk()),
            Direction::Customer
        );
    }

    #[test]
    fn auto_replies_by_header_and_subject() {
        let mut s = signals("wang@example.cn", "Re: x");
        s.auto_submitted = Some("auto-replied");
        assert_eq!(classify(&s, &desk()), Direction::Auto);
        s.auto_submitted = Some("no");
        assert_eq!(classify(&s, &desk()), Direction::Customer);
        let mut s = signals("wang@example.cn", "Re: x");
        s.x_autoreply = true;
        assert_eq!(classify(&s, &desk()), Direction::Auto);
        let mut s = signals("wang@example.cn", "Re: x");
        s.precedence = Some("auto_reply");
        assert_eq!(classify(&s, &desk()), Direction::Auto);
        assert_eq!(
            classify(
                &signals("wang@example.cn", "自动回复: [案例号:CAS-1]"),
                &desk()
            ),
            Direction::Auto
        );
        assert_eq!(
            classify(&signals("wang@example.cn", "Out of Office: x"), &desk()),
            Direction::Auto
        );
        // An engineer's own out-of-office is still auto.
        assert_eq!(
            classify(
                &signals("li@desk.example.com", "Automatic reply: x"),
                &desk()
            ),
            Direction::Auto
        );
    }

    #[test]
    fn list_and_suppress_headers_alone_are_not_machine_mail() {
        // A partner's case system and a mailing list send real words with these.
        for precedence in ["list", "bulk", "junk"] {
            let mut s = signals("wang@example.cn", "Re: [案例号:CAS-1] 日志已上传");
            s.precedence = Some(precedence);
            assert_eq!(classify(&s, &desk()), Direction::Customer, "{precedence}");
        }
        let mut s = signals("wang@example.cn", "Re: x");
        s.precedence = Some("list");
        s.auto_submitted = Some("auto-generated");
        assert_eq!(classify(&s, &desk()), Direction::Auto);
    }

    #[test]
    fn bounces() {
        let mut s = signals(
            "MAILER-DAEMON@mx.example.cn",
            "Undelivered Mail Returned to Sender",
        );
        assert_eq!(classify(&s, &desk()), Direction::Bounce);
        s.from_address = Some("someone@example.cn");
        s.content_type = "multipart/report";
        s.report_type = Some("delivery-status");
        assert_eq!(classify(&s, &desk()), Direction::Bounce);
        s.report_type = Some("disposition-notification");
        assert_eq!(classify(&s, &desk()), Direction::Auto);
        let mut s = signals("postmaster@example.cn", "x");
        assert_eq!(classify(&s, &desk()), Direction::Bounce);
        s.from_address = Some("noreply@example.cn");
        s.subject = "Undeliverable: Re: [案例号:CAS-1]";
        s.return_path_empty = true;
        assert_eq!(classify(&s, &desk()), Direction::Bounce);
    }

    #[test]
    fn resolution_phrases() {
        let phrases = IngestConfig::default().resolution_phrases;
        let yes = [
            "李老师，您好\n问题解决了。更新已安装成功。非常感谢！",
            "补丁已安装成功",
            "可以关闭案例了",
            "Thanks, it works now.",
            "The issue is resolved after enabling the service.",
        ];
        for t in yes {
            assert!(resolution_phrase(t, &phrases).is_some(), "{t}");
        }
        let no = [
            "问题没有解决，情况依旧",
            "还是未解决",
            "问题是否已解决？",
            "问题解决了吗？",
            "The issue is not resolved.",
            "still unresolved",
            "Is it resolved?",
            "第二次上传完毕。",
            "",
        ];
        for t in no {
            assert_eq!(resolution_phrase(t, &phrases), None, "{t}");
        }
    }
}
