//! Which reply a case calls for right now: a pure function of its thread,
//! its analyses and its drafts.
//!
//! The rule follows the case's state, never the order mail arrived in, so a
//! backfill import and a watched mailbox reach the same decision:
//! - waiting on the customer, archived, or only machine mail: no draft;
//! - resolved by the customer and not yet summarised: a closure;
//! - waiting on the desk, never answered (or not since a reassignment): a
//!   scope definition;
//! - waiting on the desk after an answer: next steps, once every log the
//!   customer sent since the desk's last mail has been analysed.

use std::fmt::Write as _;

use casebot_core::domain::{AnalysisStatus, CaseStatus, Direction, DraftKind, MailSignal, Stage};

/// One message as the decision sees it (machine mail included: it is
/// skipped here, so callers need not filter).
#[derive(Debug, Clone)]
pub struct ThreadMessage {
    pub row: i64,
    pub direction: Direction,
    pub signal: Option<MailSignal>,
    pub stage: Option<Stage>,
}

/// One analysis of a customer mail.
#[derive(Debug, Clone)]
pub struct AnalysisState {
    pub message_row: i64,
    pub analysis_row: i64,
    pub status: AnalysisStatus,
}

/// What the drafting stage should do with the case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// No reply is owed: a pending draft, if any, is withdrawn.
    Nothing(&'static str),
    /// A reply is owed but its evidence is still being analysed: leave the
    /// drafts as they are.
    Wait(&'static str),
    Draft {
        kind: DraftKind,
        /// The message the reply answers.
        trigger: i64,
        /// The messages and analyses it is drafted from, as one string: the
        /// same basis is never drafted twice.
        basis: String,
        /// Customer messages the reply answers (since the desk last wrote).
        round: Vec<i64>,
    },
}

/// Decides for a case whose messages are in date order.
pub fn decide(
    status: CaseStatus,
    messages: &[ThreadMessage],
    analyses: &[AnalysisState],
    reassign_stage: Stage,
) -> Want {
    let human: Vec<&ThreadMessage> = messages
        .iter()
        .filter(|m| matches!(m.direction, Direction::Customer | Direction::Engineer))
        .collect();
    let is_desk = |m: &&ThreadMessage| m.direction == Direction::Engineer;
    match status {
        CaseStatus::New => Want::Nothing("only machine mail so far"),
        CaseStatus::WaitingOnCustomer => Want::Nothing("the case waits on the customer"),
        CaseStatus::Archived => Want::Nothing("the case is archived"),
        CaseStatus::Resolved => {
            let Some(at) = human.iter().rposition(|m| {
                m.direction == Direction::Customer && m.signal == Some(MailSignal::Resolution)
            }) else {
                return Want::Nothing("resolved without a customer confirmation");
            };
            if human[at + 1..].iter().any(is_desk) {
                return Want::Nothing("the closure summary was sent");
            }
            let trigger = human[at].row;
            Want::Draft {
                kind: DraftKind::Closure,
                trigger,
                basis: format!("closure:{trigger}"),
                round: vec![trigger],
            }
        }
        CaseStatus::WaitingOnUs => {
            let last_desk = human.iter().rposition(is_desk);
            let round: Vec<&ThreadMessage> = human[last_desk.map_or(0, |i| i + 1)..]
                .iter()
                .copied()
                .filter(|m| m.direction == Direction::Customer)
                .collect();
            let Some(trigger) = round
                .iter()
                .rev()
                .find(|m| m.signal != Some(MailSignal::Ack))
                .or(round.last())
                .map(|m| m.row)
            else {
                return Want::Nothing("no customer mail since the desk's last one");
            };
            let round_rows: Vec<i64> = round.iter().map(|m| m.row).collect();
            let mut basis = String::new();
            let kind = if answered_since_assignment(&human, reassign_stage) {
                DraftKind::NextSteps
            } else {
                DraftKind::Scope
            };
            let _ = write!(basis, "{}:", kind.as_str());
            for row in &round_rows {
                let _ = write!(basis, "m{row}");
                for a in analyses.iter().filter(|a| a.message_row == *row) {
                    if a.status == AnalysisStatus::Pending && kind == DraftKind::NextSteps {
                        return Want::Wait("a log of this round is still being analysed");
                    }
                    let _ = write!(basis, "a{}{}", a.analysis_row, a.status.as_str());
                }
                basis.push(',');
            }
            Want::Draft {
                kind,
                trigger,
                basis,
                round: round_rows,
            }
        }
    }
}

/// Whether the desk has written since the case was last (re)assigned. A
/// reassignment is where the partner's stage word first appears in a run of
/// messages carrying it: replies keep the subject, so every later mail of
/// the thread carries the word too.
fn answered_since_assignment(human: &[&ThreadMessage], reassign_stage: Stage) -> bool {
    let is_reassign = |m: &&ThreadMessage| m.stage == Some(reassign_stage);
    let assigned_at = human
        .iter()
        .rposition(|m| !is_reassign(m))
        .map_or(0, |i| i + 1);
    let since = if human.get(assigned_at).is_some_and(is_reassign) {
        assigned_at
    } else {
        0
    };
    human[since..]
        .iter()
        .any(|m| m.direction == Direction::Engineer)
}

/// Whether a case is due for the archive notice: it waits on the customer,
/// and has for `after_days` business days (`day_minutes` of business time
/// each) since the desk's last mail. `after_days` 0 never proposes one.
pub fn archive_due(
    status: CaseStatus,
    waited_business_minutes: i64,
    day_minutes: i64,
    after_days: u32,
) -> bool {
    status == CaseStatus::WaitingOnCustomer
        && after_days > 0
        && day_minutes > 0
        && waited_business_minutes >= i64::from(after_days) * day_minutes
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;

    const REASSIGN: Stage = Stage::Reassigned;

    fn m(row: i64, direction: Direction, signal: Option<MailSignal>) -> ThreadMessage {
        ThreadMessage {
            row,
            direction,
            signal,
            stage: None,
        }
    }

    fn done(message_row: i64, analysis_row: i64) -> AnalysisState {
        AnalysisState {
            message_row,
            analysis_row,
            status: AnalysisStatus::Done,
        }
    }

    fn kind(want: &Want) -> Option<DraftKind> {
        match want {
            Want::Draft { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    #[test]
    fn a_case_the_desk_never_answered_gets_a_scope() {
        let thread = [m(1, Customer, None), m(2, Auto, None)];
        let want = decide(CaseStatus::WaitingOnUs, &thread, &[], REASSIGN);
        assert_eq!(kind(&want), Some(DraftKind::Scope));
        let Want::Draft { trigger, .. } = want else {
            unreachable!()
        };
        assert_eq!(trigger, 1, "an auto-reply is never the trigger");
    }

    #[test]
    fn logs_after_an_answer_give_next_steps_once_analysed() {
        let thread = [m(1, Engineer, None), m(2, Customer, None)];
        let pending = AnalysisState {
            status: AnalysisStatus::Pending,
            ..done(2, 7)
        };
        assert!(matches!(
            decide(CaseStatus::WaitingOnUs, &thread, &[pending], REASSIGN),
            Want::Wait(_)
        ));
        let want = decide(CaseStatus::WaitingOnUs, &thread, &[done(2, 7)], REASSIGN);
        assert_eq!(kind(&want), Some(DraftKind::NextSteps));
    }

    #[test]
    fn new_evidence_changes_the_basis_not_the_count() {
        let mut thread = vec![m(1, Engineer, None), m(2, Customer, None)];
        let first = decide(CaseStatus::WaitingOnUs, &thread, &[done(2, 7)], REASSIGN);
        thread.push(m(3, Customer, None));
        let second = decide(
            CaseStatus::WaitingOnUs,
            &thread,
            &[done(2, 7), done(3, 8)],
            REASSIGN,
        );
        let basis = |w: &Want| match w {
            Want::Draft { basis, .. } => basis.clone(),
            _ => String::new(),
        };
        assert_ne!(basis(&first), basis(&second));
        assert_eq!(kind(&second), Some(DraftKind::NextSteps));
    }

    #[test]
    fn a_reassigned_case_gets_a_scope_until_the_new_owner_writes() {
        let staged = |row, d, stage: Option<Stage>| ThreadMessage {
            stage,
            ..m(row, d, None)
        };
        let mut thread = vec![
            staged(1, Engineer, None),
            staged(2, Customer, None),
            staged(3, Customer, Some(REASSIGN)),
        ];
        let want = decide(CaseStatus::WaitingOnUs, &thread, &[], REASSIGN);
        assert_eq!(kind(&want), Some(DraftKind::Scope));
        thread.push(staged(4, Engineer, Some(REASSIGN)));
        thread.push(staged(5, Customer, Some(REASSIGN)));
        let want = decide(CaseStatus::WaitingOnUs, &thread, &[], REASSIGN);
        assert_eq!(kind(&want), Some(DraftKind::NextSteps));
    }

    #[test]
    fn resolution_gives_a_closure_until_the_summary_is_sent() {
        let mut thread = vec![
            m(1, Engineer, None),
            m(2, Customer, Some(MailSignal::Resolution)),
        ];
        let want = decide(CaseStatus::Resolved, &thread, &[], REASSIGN);
        assert_eq!(kind(&want), Some(DraftKind::Closure));
        thread.push(m(3, Engineer, None));
        thread.push(m(4, Customer, Some(MailSignal::Ack)));
        assert!(matches!(
            decide(CaseStatus::Resolved, &thread, &[], REASSIGN),
            Want::Nothing(_)
        ));
    }

    #[test]
    fn waiting_on_the_customer_or_archived_has_no_draft() {
        let thread = [m(1, Customer, None), m(2, Engineer, None)];
        for status in [CaseStatus::WaitingOnCustomer, CaseStatus::Archived] {
            assert!(matches!(
                decide(status, &thread, &[], REASSIGN),
                Want::Nothing(_)
            ));
        }
    }
}

#[cfg(test)]
mod archive_tests {
    use super::*;

    #[test]
    fn the_archive_notice_is_due_after_the_business_days_of_waiting() {
        let day = 9 * 60;
        assert!(!archive_due(
            CaseStatus::WaitingOnCustomer,
            5 * day - 1,
            day,
            5
        ));
        assert!(archive_due(CaseStatus::WaitingOnCustomer, 5 * day, day, 5));
        assert!(!archive_due(CaseStatus::WaitingOnUs, 50 * day, day, 5));
        assert!(!archive_due(CaseStatus::Archived, 50 * day, day, 5));
        assert!(
            !archive_due(CaseStatus::WaitingOnCustomer, 50 * day, day, 0),
            "0 turns it off"
        );
    }
}
