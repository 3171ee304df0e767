//! Fixing misfiled mail: what a case is after mail moves in or out of it,
//! and which mails a split takes. The store moves the rows; this says what
//! the cases become, by the same rules filing uses (subject fields from the
//! newest mail that carries them, status from every message by date).

use super::case_state::{StatusInput, case_status};
use super::filing::{CaseFields, apply_subject_fields};
use super::subject::ParsedSubject;
use crate::domain::{CaseStatus, Direction, MailSignal};

/// A stored message as a case's derivation needs it.
#[derive(Debug, Clone)]
pub struct StoredFacts {
    pub row: i64,
    pub date: i64,
    pub direction: Direction,
    pub signal: Option<MailSignal>,
    pub subject: ParsedSubject,
}

/// A case's derived state, from the messages it holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub fields: CaseFields,
    pub status: CaseStatus,
    pub message_count: i64,
    pub first_message_at: Option<i64>,
    pub last_message_at: Option<i64>,
}

/// What a case is, given its messages (in any order). No message: a new,
/// empty case (a case merged away, or emptied by a move).
pub fn derive(messages: &[StoredFacts]) -> Derived {
    let mut ordered: Vec<&StoredFacts> = messages.iter().collect();
    ordered.sort_by_key(|m| (m.date, m.row));
    let mut fields = CaseFields::default();
    let mut last = None;
    for m in &ordered {
        apply_subject_fields(&mut fields, &mut last, &m.subject, m.date);
    }
    Derived {
        fields,
        status: case_status(ordered.iter().map(|m| StatusInput {
            direction: m.direction,
            signal: m.signal,
        })),
        message_count: ordered.len() as i64,
        first_message_at: ordered.first().map(|m| m.date),
        last_message_at: ordered.last().map(|m| m.date),
    }
}

/// The messages a split at `at` takes into a new case: that one and every
/// later one (by date, then row); `None` when `at` is not in the case or is
/// its first message (a split must leave something behind).
pub fn split_from(messages: &[(i64, i64)], at: i64) -> Option<Vec<i64>> {
    let mut ordered = messages.to_vec();
    ordered.sort_by_key(|&(row, date)| (date, row));
    let start = ordered.iter().position(|&(row, _)| row == at)?;
    (start > 0).then(|| ordered[start..].iter().map(|&(row, _)| row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(row: i64, date: i64, direction: Direction, title: Option<&str>) -> StoredFacts {
        StoredFacts {
            row,
            date,
            direction,
            signal: None,
            subject: ParsedSubject {
                title: title.map(str::to_string),
                priority: Some(format!("P{row}")),
                base_subject: format!("subject {row}"),
                ..Default::default()
            },
        }
    }

    #[test]
    fn a_case_is_what_its_messages_say_in_date_order() {
        let d = derive(&[
            facts(3, 300, Direction::Customer, None),
            facts(1, 100, Direction::Customer, Some("old title")),
            facts(2, 200, Direction::Engineer, Some("new title")),
        ]);
        assert_eq!(d.fields.title.as_deref(), Some("new title"));
        assert_eq!(d.fields.priority.as_deref(), Some("P3"));
        assert_eq!(d.status, CaseStatus::WaitingOnUs);
        assert_eq!(
            (d.message_count, d.first_message_at, d.last_message_at),
            (3, Some(100), Some(300))
        );
        let empty = derive(&[]);
        assert_eq!((empty.message_count, empty.status), (0, CaseStatus::New));
    }

    #[test]
    fn a_split_takes_the_message_and_everything_after_it() {
        let thread = [(10, 100), (12, 300), (11, 200), (13, 300)];
        assert_eq!(split_from(&thread, 11), Some(vec![11, 12, 13]));
        assert_eq!(split_from(&thread, 13), Some(vec![13]));
        assert_eq!(split_from(&thread, 10), None, "nothing would stay");
        assert_eq!(split_from(&thread, 99), None);
    }
}
