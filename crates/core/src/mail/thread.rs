//! Which case a mail belongs to: a pure decision over the mail and what the
//! store already knows about the messages it refers to.
//!
//! The order is the desk's order of trust:
//! 1. the case number in the subject (the partner's system writes it);
//! 2. a case number in the body, only when the subject has none and the body
//!    names exactly one (several means a mail about several cases: guessing
//!    would file it wrong);
//! 3. the parent: In-Reply-To, then References from the nearest to the root,
//!    to a message the store knows;
//! 4. otherwise a new thread, keyed by its root Message-ID, so the key is the
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
    pub body_case_ids: &'a [String],
    pub in_reply_to: Option<&'a str>,
    pub references: &'a [String],
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
    NewThread,
}

impl ThreadRule {
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadRule::SubjectCaseNumber => "subject_case_number",
            ThreadRule::BodyCaseNumber => "body_case_number",
            ThreadRule::InReplyTo => "in_reply_to",
            ThreadRule::References => "references",
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
    if let [only] = clues.body_case_ids {
        return numbered(only, ThreadRule::BodyCaseNumber);
    }
    for (i, id) in parent_candidates(clues).into_iter().enumerate() {
        if let Some(k) = known.iter().find(|k| k.message_id == id) {
            let rule = if i == 0 && clues.in_reply_to == Some(id) {
                ThreadRule::InReplyTo
            } else {
                ThreadRule::References
            };
            return ThreadDecision {
                case_key: k.case_key.clone(),
                case_id: is_case_key(&k.case_key).then(|| k.case_key.clone()),
                rule,
            };
        }
    }
    let root = clues
        .references
        .first()
        .map(String::as_str)
        .or(clues.in_reply_to)
        .unwrap_or(clues.message_id);
    ThreadDecision {
        case_key: thread_key(root),
        case_id: None,
        rule: ThreadRule::NewThread,
    }
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
            body_case_ids: &one,
            ..Default::default()
        };
        assert_eq!(decide(&clues, &[]).rule, ThreadRule::BodyCaseNumber);
        let clues = ThreadClues {
            message_id: "c@x",
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
}
