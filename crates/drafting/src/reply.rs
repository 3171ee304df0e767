//! The envelope of a reply: subject, recipients, threading headers and the
//! language, all pure functions of the thread.
//!
//! The partner's case system files a reply by its subject, so the subject is
//! the thread's original one (case tag, title, pipe tags, stage word and
//! internal reference intact) behind exactly one reply prefix, however many
//! prefixes the customer's client stacked.

use casebot_core::domain::Direction;
use casebot_core::domain::Lang;
use casebot_core::domain::{DeskConfig, sha256_hex};
use casebot_core::mail::direction::is_engineer;

/// What the envelope needs of one message of the thread.
#[derive(Debug, Clone)]
pub struct EnvelopeMessage {
    pub message_id: String,
    /// A Message-ID casebot made up for a mail without one: never referenced.
    pub synthesized: bool,
    pub direction: Direction,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// The subject without reply prefixes.
    pub base_subject: String,
    /// The case number the subject carries, if any.
    pub case_number: Option<String>,
}

/// Threading and addressing of a reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Envelope {
    pub subject: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Message-ID (without brackets) of the mail answered.
    pub in_reply_to: Option<String>,
    /// Message-IDs (without brackets), oldest first, ending with `in_reply_to`.
    pub references: Vec<String>,
    /// Recipients left out over the cap (`[drafting] max_recipients`).
    pub omitted: usize,
}

/// Most Message-IDs kept in References: the first and the newest ones, as
/// RFC 5322 §3.6.4 suggests trimming, so a long thread stays one header.
const MAX_REFERENCES: usize = 20;

/// Builds the envelope of a reply to `thread` (date order) answering
/// `parent` (an index into `thread`), or the newest human mail.
pub fn envelope(
    thread: &[EnvelopeMessage],
    parent: Option<usize>,
    case_number: Option<&str>,
    reply_prefix: &str,
    desk: &DeskConfig,
    max_recipients: usize,
) -> Envelope {
    let human =
        |m: &&EnvelopeMessage| matches!(m.direction, Direction::Customer | Direction::Engineer);
    let parent = parent.and_then(|i| thread.get(i)).or_else(|| {
        thread
            .iter()
            .rev()
            .filter(human)
            .find(|m| m.direction == Direction::Customer)
            .or_else(|| thread.iter().rev().find(human))
    });

    // The subject of the newest mail that carries the case's own tag; a mail
    // that lost the tag would make the partner's system open a new case.
    let base = thread
        .iter()
        .rev()
        .filter(|m| !m.base_subject.trim().is_empty())
        .find(|m| case_number.is_none() || m.case_number.as_deref() == case_number)
        .or(parent)
        .map(|m| m.base_subject.trim().to_string())
        .unwrap_or_default();
    let subject = format!("{}{}", reply_prefix, base);

    let is_desk = |addr: &str| is_engineer(&addr.to_ascii_lowercase(), desk);
    let mut to: Vec<String> = Vec::new();
    let mut cc: Vec<String> = Vec::new();
    // Each address once over To and Cc (a set: a mail may list 100,000),
    // and no more than the cap in all.
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut omitted = 0usize;
    let mut push = |list: &mut Vec<String>, addr: &str, listed: usize| {
        let addr = addr.trim();
        if addr.is_empty() || is_desk(addr) || !seen.insert(addr.to_ascii_lowercase()) {
            return;
        }
        if listed >= max_recipients {
            omitted += 1;
        } else {
            list.push(addr.to_string());
        }
    };
    if let Some(p) = parent {
        if p.direction == Direction::Engineer {
            // Answering our own mail (a manual draft): the same people again.
            for a in &p.to {
                let listed = to.len();
                push(&mut to, a, listed);
            }
        } else if let Some(from) = &p.from {
            push(&mut to, from, 0);
        }
        for a in p.to.iter().chain(&p.cc) {
            let listed = to.len() + cc.len();
            push(&mut cc, a, listed);
        }
    }
    if to.is_empty() && !cc.is_empty() {
        to.push(cc.remove(0));
    }

    let mut references: Vec<String> = Vec::new();
    for m in thread.iter().filter(human).filter(|m| !m.synthesized) {
        if !references.contains(&m.message_id) {
            references.push(m.message_id.clone());
        }
        if parent.is_some_and(|p| std::ptr::eq(p, m)) {
            break;
        }
    }
    if references.len() > MAX_REFERENCES {
        let tail = references.split_off(references.len() - (MAX_REFERENCES - 1));
        references.truncate(1);
        references.extend(tail);
    }
    Envelope {
        subject,
        to,
        cc,
        in_reply_to: parent
            .filter(|p| !p.synthesized)
            .map(|p| p.message_id.clone()),
        references,
        omitted,
    }
}

/// The reply's language: the configured one, or with `auto` the customer's
/// (Chinese characters in their newest words, else in the case title;
/// Traditional characters give Traditional Chinese).
pub fn language(setting: &str, customer_text: Option<&str>, title: Option<&str>) -> Lang {
    match setting {
        "zh-CN" => Lang::Zh,
        "zh-TW" => Lang::ZhTw,
        "en" => Lang::En,
        _ => {
            let text = customer_text
                .filter(|t| t.chars().any(char::is_alphabetic))
                .or(title)
                .unwrap_or("");
            if han_count(text) >= 2 {
                if crate::hant::is_traditional(text) {
                    Lang::ZhTw
                } else {
                    Lang::Zh
                }
            } else {
                Lang::En
            }
        }
    }
}

fn han_count(text: &str) -> usize {
    text.chars()
        .filter(|c| matches!(*c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF))
        .count()
}

/// A fresh Message-ID (without brackets) under the desk's domain. `seed`
/// makes it unique (the draft and the moment of approval); the hash keeps
/// the draft's content out of the header.
pub fn mint_message_id(case_key: &str, seed: &str, domain: &str) -> String {
    let hex = &sha256_hex(seed.as_bytes())[..16];
    let local: String = case_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("casebot.{local}.{hex}@{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    const BASE: &str = "[案例号: CAS-20001-AB12CD ] % |P2|ACME|示例用户反馈补丁KB5022286安装失败 % 初次响应 CMIT:0003001";

    fn msg(
        id: &str,
        direction: Direction,
        from: &str,
        to: &[&str],
        cc: &[&str],
    ) -> EnvelopeMessage {
        EnvelopeMessage {
            message_id: id.into(),
            synthesized: false,
            direction,
            from: Some(from.into()),
            to: to.iter().map(|s| s.to_string()).collect(),
            cc: cc.iter().map(|s| s.to_string()).collect(),
            base_subject: BASE.into(),
            case_number: Some("CAS-20001-AB12CD".into()),
        }
    }

    fn desk() -> DeskConfig {
        DeskConfig {
            engineer_addresses: vec!["support@example.com".into()],
            engineer_domains: vec!["desk.example.com".into()],
            time_zone: "Asia/Shanghai".into(),
        }
    }

    #[test]
    fn recipients_are_listed_once_and_capped_in_linear_time() {
        let many: Vec<String> = (0..100_000).map(|i| format!("p{i}@example.cn")).collect();
        let thread = [EnvelopeMessage {
            message_id: "a@example.cn".into(),
            synthesized: false,
            direction: Direction::Customer,
            from: Some("li.lei@example.cn".into()),
            to: vec!["support@example.com".into(), "P1@EXAMPLE.CN".into()],
            cc: many,
            base_subject: "x".into(),
            case_number: None,
        }];
        let e = envelope(&thread, None, None, "Re: ", &desk(), 50);
        assert_eq!(e.to, ["li.lei@example.cn"]);
        assert_eq!(e.to.len() + e.cc.len(), 50);
        assert_eq!(e.cc[0], "P1@EXAMPLE.CN");
        assert!(!e.cc.iter().any(|a| a == "p1@example.cn"), "listed twice");
        assert_eq!(e.omitted, 100_001 - 50);
    }

    #[test]
    fn one_prefix_tags_intact_desk_never_a_recipient() {
        let thread = [
            msg(
                "e1@desk.example.com",
                Engineer,
                "li@desk.example.com",
                &["cust@example.cn"],
                &["cases@partner.example.net"],
            ),
            msg(
                "c1@example.cn",
                Customer,
                "cust@example.cn",
                &["support@example.com"],
                &[
                    "cases@partner.example.net",
                    "li@desk.example.com",
                    "boss@example.cn",
                ],
            ),
            msg(
                "ooo@example.cn",
                Auto,
                "cust@example.cn",
                &["support@example.com"],
                &[],
            ),
        ];
        let e = envelope(&thread, None, Some("CAS-20001-AB12CD"), "Re: ", &desk(), 50);
        assert_eq!(e.subject, format!("Re: {BASE}"));
        assert_eq!(e.to, ["cust@example.cn"]);
        assert_eq!(e.cc, ["cases@partner.example.net", "boss@example.cn"]);
        assert_eq!(e.in_reply_to.as_deref(), Some("c1@example.cn"));
        assert_eq!(e.references, ["e1@desk.example.com", "c1@example.cn"]);
    }

    #[test]
    fn a_parent_that_lost_the_tag_does_not_lose_it_for_the_reply() {
        let mut lost = msg("c2@example.cn", Customer, "cust@example.cn", &[], &[]);
        lost.base_subject = "还是失败".into();
        lost.case_number = None;
        let thread = [
            msg("c1@example.cn", Customer, "cust@example.cn", &[], &[]),
            lost,
        ];
        let e = envelope(
            &thread,
            Some(1),
            Some("CAS-20001-AB12CD"),
            "Re: ",
            &desk(),
            50,
        );
        assert_eq!(e.subject, format!("Re: {BASE}"));
        assert_eq!(e.in_reply_to.as_deref(), Some("c2@example.cn"));
    }

    #[test]
    fn long_threads_keep_the_first_and_newest_references() {
        let thread: Vec<_> = (0..30)
            .map(|i| {
                msg(
                    &format!("m{i}@example.cn"),
                    Customer,
                    "cust@example.cn",
                    &[],
                    &[],
                )
            })
            .collect();
        let e = envelope(&thread, None, None, "Re: ", &desk(), 50);
        assert_eq!(e.references.len(), MAX_REFERENCES);
        assert_eq!(e.references[0], "m0@example.cn");
        assert_eq!(
            e.references.last().map(String::as_str),
            Some("m29@example.cn")
        );
    }

    #[test]
    fn language_follows_the_customer() {
        assert_eq!(
            language(
                "auto",
                Some("Still failing, logs attached."),
                Some("补丁安装失败")
            ),
            Lang::En
        );
        assert_eq!(language("auto", Some("情况依旧"), None), Lang::Zh);
        assert_eq!(language("auto", None, Some("补丁安装失败")), Lang::Zh);
        assert_eq!(
            language("auto", Some("補丁還是裝不上，請協助"), None),
            Lang::ZhTw
        );
        assert_eq!(language("auto", None, Some("更新安裝失敗")), Lang::ZhTw);
        assert_eq!(language("zh-TW", Some("hello"), None), Lang::ZhTw);
        assert_eq!(language("en", Some("情况依旧"), None), Lang::En);
    }

    #[test]
    fn message_ids_are_ours_and_unique() {
        let a = mint_message_id("CAS-20001-AB12CD", "draft 1 at 10", "example.com");
        let b = mint_message_id("CAS-20001-AB12CD", "draft 1 at 11", "example.com");
        assert!(
            a.starts_with("casebot.cas-20001-ab12cd.") && a.ends_with("@example.com"),
            "{a}"
        );
        assert_ne!(a, b);
    }
}
