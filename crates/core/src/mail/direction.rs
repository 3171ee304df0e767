//! Who a mail is from, in the desk's terms.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
