//! Which case a mail belongs to: a pure decision over the mail and what the
//! store already knows about the messages it refers to.
//!
//! The order is the desk's order of trust:
//! 1. the case number in the subject (the partner's system writes it; for a
//!    bounce, the returned mail's subject counts too);
//! 2. the parent: In-Reply-To, then References from the nearest to the root
//!    (for a bounce, the returned mail itself), to a message the store knows
//!    in a numbered case;
//! 3. a case number in the sender's new text, when it names exactly one
//!    (several means a mail about several cases: guessing would file it
//!    wrong);
//! 4. a known parent in a thread without a number;
//! 5. a case number only in the quoted history or the signature, when it is
//!    the only one: such a number is an older mail's, so it is evidence only
//!    when nothing above decides;
//! 6. otherwise a new thread, keyed by its root Message-ID, so the key is the
//!    same whichever message of the thread arrives first.
//!
//! Two different case numbers never merge: a case number always wins over a
//! parent link.

use serde::Serialize;

use crate::domain::sha256_hex;

/// What the mail says about its own thread.
#[derive(Debug, Clone, Default)]
pub struct ThreadClues<'a> {
    pub message_id: &'a str,
    pub subject_case_id: Option<&'a str>,
    /// Case numbers in the sender's new text.
    pub new_text_case_ids: &'a [String],
    /// Case numbers anywhere in the body, quoted history and signature too.
    pub body_case_ids: &'a [String],
    pub in_reply_to: Option<&'a str>,
    pub references: &'a [String],
    /// For a bounce: the returned mail's Message-ID and References.
    pub returned_message_id: Option<&'a str>,
    pub returned_references: &'a [String],
}

/// A message the store knows, with the key of the case it is filed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownMessage {
    pub message_id: String,
    pub case_key: String,
}

/// Why a mail went where it went; stored with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadRule {
    SubjectCaseNumber,
    BodyCaseNumber,
    InReplyTo,
    References,
    /// A bounce, filed with the mail it returns.
    ReturnedMessage,
    /// A number only the quoted history or the signature named.
    QuotedCaseNumber,
    NewThread,
}

impl ThreadRule {
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadRule::SubjectCaseNumber => "subject_case_number",
            ThreadRule::BodyCaseNumber => "body_case_number",
            ThreadRule::InReplyTo => "in_reply_to",
            ThreadRule::References => "references",
            ThreadRule::ReturnedMessage => "returned_message",
            ThreadRule::QuotedCaseNumber => "quoted_case_number",
            ThreadRule::NewThread => "new_thread",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadDecision {
    /// The case key: the case number, or `T-…` for a thread without one.
    pub case_key: String,
    /// The partner's case number, when the key is one.
    pub case_id: Option<String>,
    pub rule: ThreadRule,
}

/// The Message-IDs whose case the store should be asked for, nearest first.
pub fn parent_candidates<'a>(clues: &ThreadClues<'a>) -> Vec<&'a str> {
    let mut ids: Vec<&str> = Vec::new();
    for id in clues
        .in_reply_to
        .into_iter()
        .chain(clues.references.iter().rev().map(String::as_str))
        .chain(clues.returned_message_id)
        .chain(clues.returned_references.iter().rev().map(String::as_str))
    {
        if id != clues.message_id && !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// Decides the case of a mail. `known` holds the store's answer for
/// [`parent_candidates`], in any order.
pub fn decide(clues: &ThreadClues<'_>, known: &[KnownMessage]) -> ThreadDecision {
    if let Some(case_id) = clues.subject_case_id {
        return numbered(case_id, ThreadRule::SubjectCaseNumber);
    }
    let parent = nearest_known_parent(clues, known);
    if let Some(decision) = parent.as_ref().filter(|d| d.case_id.is_some()) {
        return decision.clone();
    }
    if let [only] = clues.new_text_case_ids {
        return numbered(only, ThreadRule::BodyCaseNumber);
    }
    if let Some(decision) = parent {
        return decision;
    }
    if clues.new_text_case_ids.is_empty()
        && let [only] = clues.body_case_ids
    {
        return numbered(only, ThreadRule::QuotedCaseNumber);
    }
    let root = clues
        .references
        .first()
        .map(String::as_str)
        .or(clues.in_reply_to)
        .or(clues.returned_references.first().map(String::as_str))
        .or(clues.returned_message_id)
        .unwrap_or(clues.message_id);
    ThreadDecision {
        case_key: thread_key(root),
        case_id: None,
        rule: ThreadRule::NewThread,
    }
}

/// The case of the nearest parent the store knows, with the rule that found it.
fn nearest_known_parent(clues: &ThreadClues<'_>, known: &[KnownMessage]) -> Option<ThreadDecision> {
    parent_candidates(clues)
        .into_iter()
        .enumerate()
        .find_map(|(i, id)| {
            let k = known.iter().find(|k| k.message_id == id)?;
            let returned = clues.returned_message_id == Some(id)
                || clues.returned_references.iter().any(|r| r == id);
            let rule = if i == 0 && clues.in_reply_to == Some(id) {
                ThreadRule::InReplyTo
            } else if returned {
                ThreadRule::ReturnedMessage
            } else {
                ThreadRule::References
            };
            Some(ThreadDecision {
                case_key: k.case_key.clone(),
                case_id: is_case_key(&k.case_key).then(|| k.case_key.clone()),
                rule,
            })
        })
}

fn numbered(case_id: &str, rule: ThreadRule) -> ThreadDecision {
    ThreadDecision {
        case_key: case_id.to_string(),
        case_id: Some(case_id.to_string()),
        rule,
    }
}

/// The stable key of a thread without a case number.
pub fn thread_key(root_message_id: &str) -> String {
    format!("T-{}", &sha256_hex(root_message_id.as_bytes())[..12])
}

/// Thread keys start with `T-`; every other key is a case number.
pub fn is_case_key(key: &str) -> bool {
    !key.starts_with("T-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(id: &str, key: &str) -> KnownMessage {
        KnownMessage {
            message_id: id.into(),
            case_key: key.into(),
        }
    }

    #[test]
    fn subject_case_number_wins_over_parent_in_another_case() {
        let refs = vec!["a@x".to_string()];
        let clues = ThreadClues {
            message_id: "b@x",
            subject_case_id: Some("CAS-00002-BBBBBB"),
            in_reply_to: Some("a@x"),
            references: &refs,
            ..Default::default()
        };
        let d = decide(&clues, &[known("a@x", "CAS-00001-AAAAAA")]);
        assert_eq!(d.case_key, "CAS-00002-BBBBBB");
        assert_eq!(d.rule, ThreadRule::SubjectCaseNumber);
    }

    #[test]
    fn body_case_number_only_when_exactly_one() {
        let one = vec!["CAS-00003-CCCCCC".to_string()];
        let two = vec![
            "CAS-00003-CCCCCC".to_string(),
            "CAS-00004-DDDDDD".to_string(),
        ];
        let clues = ThreadClues {
            message_id: "c@x",
            new_text_case_ids: &one,
            body_case_ids: &one,
            ..Default::default()
        };
        assert_eq!(decide(&clues, &[]).rule, ThreadRule::BodyCaseNumber);
        let clues = ThreadClues {
            message_id: "c@x",
            new_text_case_ids: &two,
            body_case_ids: &two,
            ..Default::default()
        };
        assert_eq!(decide(&clues, &[]).rule, ThreadRule::NewThread);
    }

    #[test]
    fn parent_by_in_reply_to_then_nearest_reference() {
        let refs = vec!["root@x".to_string(), "mid@x".to_string()];
        let clues = ThreadClues {
            message_id: "new@x",
            in_reply_to: Some("mid@x"),
            references: &refs,
            ..Default::default()
        };
        let d = decide(
            &clues,
            &[known("root@x", "T-1"), known("mid@x", "CAS-00005-EEEEEE")],
        );
        assert_eq!(
            (d.case_key.as_str(), d.rule),
            ("CAS-00005-EEEEEE", ThreadRule::InReplyTo)
        );
        assert_eq!(d.case_id.as_deref(), Some("CAS-00005-EEEEEE"));
        let d = decide(&clues, &[known("root@x", "T-1")]);
        assert_eq!(
            (d.case_key.as_str(), d.rule, d.case_id),
            ("T-1", ThreadRule::References, None)
        );
    }

    #[test]
    fn new_thread_key_is_the_same_whichever_message_comes_first() {
        let root = ThreadClues {
            message_id: "root@x",
            ..Default::default()
        };
        let refs = vec!["root@x".to_string()];
        let reply = ThreadClues {
            message_id: "reply@x",
            in_reply_to: Some("root@x"),
            references: &refs,
            ..Default::default()
        };
        assert_eq!(decide(&root, &[]).case_key, decide(&reply, &[]).case_key);
        assert!(decide(&root, &[]).case_key.starts_with("T-"));
    }

    #[test]
    fn a_message_never_is_its_own_parent() {
        let refs = vec!["self@x".to_string()];
        let clues = ThreadClues {
            message_id: "self@x",
            in_reply_to: Some("self@x"),
            references: &refs,
            ..Default::default()
        };
        assert!(parent_candidates(&clues).is_empty());
    }

    #[test]
    fn a_number_in_quoted_history_never_outranks_a_known_parent() {
        let quoted = vec!["CAS-00009-QQQQQQ".to_string()];
        let refs = vec!["p@x".to_string()];
        let clues = ThreadClues {
            message_id: "n@x",
            in_reply_to: Some("p@x"),
            references: &refs,
            body_case_ids: &quoted,
            ..Default::default()
        };
        // A parent in a numbered case, and one in a caseless thread, both win.
        let d = decide(&clues, &[known("p@x", "CAS-00005-EEEEEE")]);
        assert_eq!(
            (d.case_key.as_str(), d.rule),
            ("CAS-00005-EEEEEE", ThreadRule::InReplyTo)
        );
        let d = decide(&clues, &[known("p@x", "T-1")]);
        assert_eq!(
            (d.case_key.as_str(), d.rule),
            ("T-1", ThreadRule::InReplyTo)
        );
        // Nothing else decides: the quoted number is evidence.
        let d = decide(&clues, &[]);
        assert_eq!(
            (d.case_key.as_str(), d.rule),
            ("CAS-00009-QQQQQQ", ThreadRule::QuotedCaseNumber)
        );
    }

    #[test]
    fn a_number_in_the_new_text_outranks_a_caseless_parent_not_a_numbered_one() {
        let said = vec!["CAS-00009-NNNNNN".to_string()];
        let clues = ThreadClues {
            message_id: "n@x",
            in_reply_to: Some("p@x"),
            new_text_case_ids: &said,
            body_case_ids: &said,
            ..Default::default()
        };
        let d = decide(&clues, &[known("p@x", "T-1")]);
        assert_eq!(
            (d.case_key.as_str(), d.rule),
            ("CAS-00009-NNNNNN", ThreadRule::BodyCaseNumber)
        );
        let d = decide(&clues, &[known("p@x", "CAS-00005-EEEEEE")]);
        assert_eq!(d.case_key, "CAS-00005-EEEEEE");
    }

    #[test]
    fn a_bounce_goes_with_the_mail_it_returns_or_that_mail_s_thread() {
        let returned_refs = vec!["root@x".to_string()];
        let clues = ThreadClues {
            message_id: "dsn@mx",
            returned_message_id: Some("reply@x"),
            returned_references: &returned_refs,
            ..Default::default()
        };
        let d = decide(&clues, &[known("reply@x", "CAS-00005-EEEEEE")]);
        assert_eq!(
            (d.case_key.as_str(), d.rule),
            ("CAS-00005-EEEEEE", ThreadRule::ReturnedMessage)
        );
        // Before the returned mail is known, the key is its thread's.
        let reply = ThreadClues {
            message_id: "reply@x",
            in_reply_to: Some("root@x"),
            references: &returned_refs,
            ..Default::default()
        };
        assert_eq!(decide(&clues, &[]).case_key, decide(&reply, &[]).case_key);
    }
}
