//! Filing decided in memory: which mails of a batch are new, duplicates or
//! quarantined ([`plan_batch`]), and what the new ones do to their cases
//! ([`plan_cases`]): the cases to open, the subject fields and status each
//! case ends with, the thread cases adopted by a late parent (and the
//! pending drafts withdrawn with them), the events to log, the cases to
//! index again. Both are functions over what the store returned; the store
//! carries the plans out in one transaction and decides nothing itself.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::case_state::{StatusInput, case_status, mail_signal};
use super::parse::{ParsedMail, Rejection};
use super::subject::ParsedSubject;
use super::thread::{
    KnownMessage, ThreadClues, ThreadDecision, decide, is_case_key, parent_candidates,
};
use crate::domain::{CaseStatus, Direction, DraftKind, MailSignal, Source};

/// What happened to one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Imported,
    Duplicate,
    Quarantined,
    /// Could not even be read; nothing was stored.
    Failed,
}

/// A message already in the store, as duplicate detection and threading see it.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub message_id: String,
    pub sha256: String,
    pub raw_id: i64,
    pub case_key: String,
}

/// One mail of a batch, after parsing.
pub struct Incoming<'a> {
    pub raw: &'a [u8],
    pub sha256: &'a str,
    pub source: &'a Source,
    pub parsed: Result<&'a ParsedMail, &'a Rejection>,
}

/// A mail to file, with its case decided.
pub struct NewMessage<'a> {
    pub raw: &'a [u8],
    pub mail: &'a ParsedMail,
    pub source: &'a Source,
    pub decision: ThreadDecision,
    pub signal: Option<MailSignal>,
    /// The parents the store knew, with their cases.
    pub parents: Vec<KnownMessage>,
}

/// One more sighting of a mail stored before or earlier in the same batch
/// (a duplicate delivery), named by the stored raw bytes' hash.
pub struct Sighting<'a> {
    pub sha256: String,
    pub source: &'a Source,
}

/// Raw bytes that repeat a stored Message-ID with other content: kept as
/// evidence (and seen as a sighting), but not filed as another message.
pub struct Variant<'a> {
    pub raw: &'a [u8],
    pub sha256: String,
}

/// A mail that could not be parsed: kept with its reason.
pub struct Quarantined<'a> {
    pub raw: &'a [u8],
    pub sha256: &'a str,
    pub source: &'a Source,
    pub reason: String,
}

/// What became of one mail of the batch, in the batch's order.
#[derive(Debug, Clone)]
pub struct MailOutcome {
    pub message_id: Option<String>,
    pub case_key: Option<String>,
    pub status: Status,
    pub reason: Option<String>,
}

/// What a batch adds to the store.
#[derive(Default)]
pub struct BatchPlan<'a> {
    pub new: Vec<NewMessage<'a>>,
    pub variants: Vec<Variant<'a>>,
    pub sightings: Vec<Sighting<'a>>,
    pub quarantined: Vec<Quarantined<'a>>,
    pub outcomes: Vec<MailOutcome>,
}

/// The clues threading reads in a mail.
pub fn clues(mail: &ParsedMail) -> ThreadClues<'_> {
    let bounce = mail.bounce.as_ref();
    ThreadClues {
        message_id: &mail.message_id,
        subject_case_id: mail
            .subject_info
            .case_id
            .as_deref()
            .or(bounce.and_then(|b| b.returned_case_id.as_deref())),
        new_text_case_ids: &mail.new_text_case_ids,
        body_case_ids: &mail.body_case_ids,
        in_reply_to: mail.in_reply_to.as_deref(),
        references: &mail.references,
        returned_message_id: bounce.and_then(|b| b.returned_message_id.as_deref()),
        returned_references: bounce.map_or(&[], |b| b.returned_references.as_slice()),
    }
}

/// The raw hashes and Message-IDs whose stored messages [`plan_batch`]
/// needs: the batch's own, and every parent its mails name.
pub fn lookups<'a>(items: &[Incoming<'a>]) -> (Vec<&'a str>, Vec<&'a str>) {
    let parsed: Vec<&ParsedMail> = items.iter().filter_map(|i| i.parsed.ok()).collect();
    let shas = parsed.iter().map(|m| m.sha256.as_str()).collect();
    let mut ids: Vec<&str> = Vec::new();
    for m in &parsed {
        ids.push(&m.message_id);
        ids.extend(parent_candidates(&clues(m)));
    }
    ids.sort_unstable();
    ids.dedup();
    (shas, ids)
}

/// Decides each mail of a batch against what is stored: the batch's own
/// mails count as known parents and as duplicates of each other.
pub fn plan_batch<'a>(items: &[Incoming<'a>], stored: &[StoredMessage]) -> BatchPlan<'a> {
    // message_id → case key, and raw sha → case key, for everything known so far.
    let mut known: HashMap<String, String> = stored
        .iter()
        .map(|s| (s.message_id.clone(), s.case_key.clone()))
        .collect();
    let mut by_sha: HashMap<String, String> = stored
        .iter()
        .map(|s| (s.sha256.clone(), s.case_key.clone()))
        .collect();
    let mut plan = BatchPlan::default();
    for item in items {
        let outcome =
            |status, message_id: Option<&str>, case_key: Option<&str>, reason| MailOutcome {
                message_id: message_id.map(str::to_string),
                case_key: case_key.map(str::to_string),
                status,
                reason,
            };
        let mail = match item.parsed {
            Ok(mail) => mail,
            Err(rejection) => {
                let reason = rejection.to_string();
                plan.outcomes.push(outcome(
                    Status::Quarantined,
                    None,
                    None,
                    Some(reason.clone()),
                ));
                plan.quarantined.push(Quarantined {
                    raw: item.raw,
                    sha256: item.sha256,
                    source: item.source,
                    reason,
                });
                continue;
            }
        };
        if let Some(case_key) = by_sha.get(&mail.sha256) {
            plan.sightings.push(Sighting {
                sha256: mail.sha256.clone(),
                source: item.source,
            });
            plan.outcomes.push(outcome(
                Status::Duplicate,
                Some(&mail.message_id),
                Some(case_key),
                Some("same bytes as a stored mail".into()),
            ));
            continue;
        }
        if let Some(case_key) = known.get(&mail.message_id).cloned() {
            // Other bytes under a known Message-ID: keep them as evidence.
            plan.variants.push(Variant {
                raw: item.raw,
                sha256: mail.sha256.clone(),
            });
            plan.sightings.push(Sighting {
                sha256: mail.sha256.clone(),
                source: item.source,
            });
            plan.outcomes.push(outcome(
                Status::Duplicate,
                Some(&mail.message_id),
                Some(&case_key),
                Some(format!(
                    "same Message-ID as a stored mail (content differs, sha256 {})",
                    mail.sha256
                )),
            ));
            by_sha.insert(mail.sha256.clone(), case_key);
            continue;
        }
        let clues = clues(mail);
        let parents: Vec<KnownMessage> = parent_candidates(&clues)
            .into_iter()
            .filter_map(|id| {
                known.get(id).map(|key| KnownMessage {
                    message_id: id.to_string(),
                    case_key: key.clone(),
                })
            })
            .collect();
        let decision = decide(&clues, &parents);
        known.insert(mail.message_id.clone(), decision.case_key.clone());
        by_sha.insert(mail.sha256.clone(), decision.case_key.clone());
        plan.outcomes.push(outcome(
            Status::Imported,
            Some(&mail.message_id),
            Some(&decision.case_key),
            None,
        ));
        plan.new.push(NewMessage {
            raw: item.raw,
            mail,
            source: item.source,
            signal: mail_signal(
                mail.direction,
                &mail.body.new_text,
                mail.resolution_phrase.is_some() || mail.closure_phrase.is_some(),
                !mail.attachments.is_empty() || !mail.links.is_empty(),
            ),
            decision,
            parents,
        });
    }
    plan
}

/// The fields a case takes from its subjects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFields {
    pub title: Option<String>,
    pub priority: Option<String>,
    pub customer: Option<String>,
    pub stage: Option<String>,
    pub internal_ref: Option<String>,
    pub base_subject: Option<String>,
}

/// A stored case as filing sees it.
#[derive(Debug, Clone)]
pub struct StoredCase {
    pub key: String,
    /// The partner's case number; `None` for a thread case (`T-…`).
    pub case_id: Option<String>,
    pub fields: CaseFields,
    pub status: CaseStatus,
    pub last_message_at: Option<i64>,
}

/// A stored message as a case's status sees it.
#[derive(Debug, Clone, Copy)]
pub struct ThreadEntry {
    /// The message's row: stored messages keep their order among equal dates.
    pub row: i64,
    pub direction: Direction,
    pub signal: Option<MailSignal>,
    pub date: i64,
}

/// A stored case with a message that names `parent`, a Message-ID of the
/// batch: its thread began before its parent arrived.
#[derive(Debug, Clone)]
pub struct Orphan {
    pub parent: String,
    pub key: String,
}

/// A pending draft of a stored case.
#[derive(Debug, Clone, Serialize)]
pub struct PendingDraft {
    pub id: i64,
    pub kind: DraftKind,
    pub edited_by: Option<String>,
    pub body: String,
}

/// What the store holds of the cases a batch touches, read in the batch's
/// transaction.
#[derive(Debug, Clone, Default)]
pub struct FilingState {
    /// The touched cases that exist, every orphan's case, and the cases of
    /// the new mails' known parents.
    pub cases: HashMap<String, StoredCase>,
    /// Each of those cases' stored messages.
    pub threads: HashMap<String, Vec<ThreadEntry>>,
    pub orphans: Vec<Orphan>,
    /// The pending drafts of each of those cases without a case number.
    pub pending: HashMap<String, Vec<PendingDraft>>,
}

/// A thread without a case number moving into the case it is linked to:
/// the case of its late parent, or the numbered case a reply opened.
#[derive(Debug, Clone)]
pub struct Adoption {
    pub from: String,
    pub into: String,
    pub parent: String,
    /// Pending drafts of `from`: they answered half a thread, so they are
    /// withdrawn (the drafting stage drafts again for the whole case).
    pub withdrawn: Vec<PendingDraft>,
}

/// A case's derived state after the batch.
#[derive(Debug, Clone)]
pub struct CaseUpdate {
    pub key: String,
    pub fields: CaseFields,
    pub status: CaseStatus,
    pub message_count: i64,
    pub first_message_at: Option<i64>,
    pub last_message_at: Option<i64>,
}

/// An event for the audit trail; `message_id` names a message of the batch.
#[derive(Debug, Clone)]
pub struct PlannedEvent {
    pub case_key: String,
    pub message_id: Option<String>,
    pub kind: &'static str,
    pub detail: serde_json::Value,
}

/// What the batch does to its cases.
#[derive(Debug, Clone, Default)]
pub struct CasePlan {
    /// Cases to create: key and case number.
    pub open: Vec<(String, Option<String>)>,
    pub adoptions: Vec<Adoption>,
    pub updates: Vec<CaseUpdate>,
    /// In the order they are to be logged.
    pub events: Vec<PlannedEvent>,
    /// Cases whose search terms must be written again.
    pub reindex: Vec<String>,
}

impl CasePlan {
    /// Where a case key ends up: its adopter's key if it was adopted.
    pub fn final_key<'k>(&'k self, key: &'k str) -> &'k str {
        self.adoptions
            .iter()
            .find(|a| a.from == key)
            .map_or(key, |a| a.into.as_str())
    }
}

/// What filing `new` does to the cases, given what the store holds.
pub fn plan_cases(new: &[NewMessage<'_>], state: &FilingState) -> CasePlan {
    let mut plan = CasePlan::default();
    // The touched cases in order of first appearance, existing or not.
    let mut touched: Vec<(&str, Option<&str>)> = Vec::new();
    for n in new {
        if !touched.iter().any(|(k, _)| *k == n.decision.case_key) {
            touched.push((&n.decision.case_key, n.decision.case_id.as_deref()));
        }
    }
    let mut cases: Vec<StoredCase> = Vec::new();
    for (key, case_id) in &touched {
        match state.cases.get(*key) {
            Some(c) => cases.push(c.clone()),
            None => {
                plan.open
                    .push((key.to_string(), case_id.map(str::to_string)));
                cases.push(StoredCase {
                    key: key.to_string(),
                    case_id: case_id.map(str::to_string),
                    fields: CaseFields::default(),
                    status: CaseStatus::New,
                    last_message_at: None,
                });
            }
        }
    }
    adopt_linked_threads(new, state, &mut plan);
    let adopted: HashSet<&str> = plan.adoptions.iter().map(|a| a.from.as_str()).collect();
    cases.retain(|c| !adopted.contains(c.key.as_str()));
    // A stored case that adopts a thread changes too, touched or not.
    for a in &plan.adoptions {
        if !cases.iter().any(|c| c.key == a.into)
            && let Some(c) = state.cases.get(&a.into)
        {
            cases.push(c.clone());
        }
    }

    for a in &plan.adoptions {
        for d in &a.withdrawn {
            plan.events.push(PlannedEvent {
                case_key: a.into.clone(),
                message_id: None,
                kind: "draft_withdrawn",
                detail: serde_json::json!({"draft": d.id, "kind": d.kind, "edited_by": d.edited_by,
                    "body": d.body, "reason": format!("its thread joined the thread of {}", a.parent)}),
            });
        }
        plan.events.push(PlannedEvent {
            case_key: a.into.clone(),
            message_id: None,
            kind: "thread_adopted",
            detail: serde_json::json!({ "from": a.from, "parent": a.parent }),
        });
    }
    for n in new {
        plan.events.push(PlannedEvent {
            case_key: plan.final_key(&n.decision.case_key).to_string(),
            message_id: Some(n.mail.message_id.clone()),
            kind: "message_filed",
            detail: serde_json::json!({
                "message_id": n.mail.message_id,
                "direction": n.mail.direction.as_str(),
                "rule": n.decision.rule.as_str(),
                "source": n.source.to_string(),
            }),
        });
        if let Some(b) = &n.mail.bounce {
            plan.events.push(PlannedEvent {
                case_key: plan.final_key(&n.decision.case_key).to_string(),
                message_id: Some(n.mail.message_id.clone()),
                kind: "reply_bounced",
                detail: serde_json::json!({
                    "returned_message_id": b.returned_message_id,
                    "returned_subject": b.returned_subject,
                    "recipients": b.recipients,
                    "status": b.status,
                    "reason": b.reason,
                }),
            });
        }
    }
    for case in cases {
        update_case(case, new, state, &mut plan);
    }
    plan
}

/// Moves every thread without a case number that the batch links to
/// another case into it. A link is a message naming another as its parent
/// (or, for a bounce, as the mail it returns), where at least one of the two
/// is new: a stored child waiting for a new parent, a new child of a new
/// parent, a new child of a stored parent. Of the two cases a link joins,
/// the one without a number moves into the other: a thread into its
/// parent's thread, a caseless first mail into the case its reply opened.
/// Two numbered cases never merge.
fn adopt_linked_threads(new: &[NewMessage<'_>], state: &FilingState, plan: &mut CasePlan) {
    let decided: HashMap<&str, &str> = new
        .iter()
        .map(|n| (n.mail.message_id.as_str(), n.decision.case_key.as_str()))
        .collect();
    // (child's case, parent's case, parent's Message-ID)
    let mut links: Vec<(String, String, String)> = Vec::new();
    for o in &state.orphans {
        if let Some(parent_case) = decided.get(o.parent.as_str()) {
            links.push((o.key.clone(), parent_case.to_string(), o.parent.clone()));
        }
    }
    for n in new {
        let child = &n.decision.case_key;
        for parent in parent_candidates(&clues(n.mail)) {
            if let Some(parent_case) = decided.get(parent) {
                links.push((child.clone(), parent_case.to_string(), parent.to_string()));
            }
        }
        for p in &n.parents {
            links.push((child.clone(), p.case_key.clone(), p.message_id.clone()));
        }
    }
    for (child, parent, via) in links {
        let (from, into) = if !is_case_key(&child) {
            (child, parent)
        } else if !is_case_key(&parent) {
            (parent, child)
        } else {
            continue;
        };
        // Where `into` already went, if it moved earlier in this plan.
        let into = plan.final_key(&into).to_string();
        if from == into || plan.adoptions.iter().any(|a| a.from == from) {
            continue;
        }
        for earlier in plan.adoptions.iter_mut().filter(|a| a.into == from) {
            earlier.into.clone_from(&into);
        }
        plan.adoptions.push(Adoption {
            withdrawn: state.pending.get(&from).cloned().unwrap_or_default(),
            from,
            into,
            parent: via,
        });
    }
}

/// Subject fields from the batch's mails of the case, status and counts
/// from every message it now holds.
fn update_case(
    mut case: StoredCase,
    new: &[NewMessage<'_>],
    state: &FilingState,
    plan: &mut CasePlan,
) {
    let mut mine: Vec<&ParsedMail> = new
        .iter()
        .filter(|n| n.decision.case_key == case.key)
        .map(|n| n.mail)
        .collect();
    mine.sort_by_key(|m| m.date);
    let indexed = (case.fields.title.clone(), case.fields.internal_ref.clone());
    for m in mine {
        apply_subject(&mut case, m);
    }
    let opened = plan.open.iter().any(|(k, _)| *k == case.key);
    if opened || indexed != (case.fields.title.clone(), case.fields.internal_ref.clone()) {
        plan.reindex.push(case.key.clone());
    }

    // Stored messages first among equal dates (their rows are older), then
    // the batch's in its order.
    let from_cases: Vec<&str> = std::iter::once(case.key.as_str())
        .chain(
            plan.adoptions
                .iter()
                .filter(|a| a.into == case.key)
                .map(|a| a.from.as_str()),
        )
        .collect();
    let mut thread: Vec<(i64, i64, Direction, Option<MailSignal>)> = from_cases
        .iter()
        .flat_map(|k| state.threads.get(*k).into_iter().flatten())
        .map(|e| (e.date, e.row, e.direction, e.signal))
        .collect();
    for (i, n) in new.iter().enumerate() {
        if from_cases.contains(&n.decision.case_key.as_str()) {
            let row = i64::MAX - (new.len() - i) as i64;
            thread.push((n.mail.date.timestamp(), row, n.mail.direction, n.signal));
        }
    }
    thread.sort_by_key(|(date, row, _, _)| (*date, *row));
    let status = case_status(
        thread
            .iter()
            .map(|&(_, _, direction, signal)| StatusInput { direction, signal }),
    );
    if opened {
        plan.events.push(PlannedEvent {
            case_key: case.key.clone(),
            message_id: None,
            kind: "case_opened",
            detail: serde_json::json!({ "key": case.key }),
        });
    }
    if case.status != status {
        plan.events.push(PlannedEvent {
            case_key: case.key.clone(),
            message_id: None,
            kind: "status_changed",
            detail: serde_json::json!({ "from": case.status, "to": status }),
        });
    }
    plan.updates.push(CaseUpdate {
        key: case.key,
        fields: case.fields,
        status,
        message_count: thread.len() as i64,
        first_message_at: thread.first().map(|t| t.0),
        last_message_at: thread.last().map(|t| t.0),
    });
}

fn apply_subject(case: &mut StoredCase, m: &ParsedMail) {
    apply_subject_fields(
        &mut case.fields,
        &mut case.last_message_at,
        &m.subject_info,
        m.date.timestamp(),
    );
}

/// Title, priority, customer, stage and reference follow the newest mail
/// that carries them; an older mail only fills gaps. `last` is the date of
/// the newest mail applied so far.
pub(crate) fn apply_subject_fields(
    f: &mut CaseFields,
    last: &mut Option<i64>,
    s: &ParsedSubject,
    date: i64,
) {
    let newest = last.is_none_or(|l| date >= l);
    let base = (s.case_id.is_some() || f.base_subject.is_none()).then(|| s.base_subject.clone());
    let set = |field: &mut Option<String>, value: &Option<String>| {
        if value.is_some() && (newest || field.is_none()) {
            field.clone_from(value);
        }
    };
    set(&mut f.title, &s.title);
    set(&mut f.priority, &s.priority);
    set(&mut f.customer, &s.customer);
    set(&mut f.stage, &s.stage);
    set(&mut f.internal_ref, &s.internal_ref);
    set(&mut f.base_subject, &base);
    if newest {
        *last = Some(date);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::DeskConfig;
    use crate::mail::parse::{IngestConfig, MailParser};
    use crate::mail::subject::GrammarConfig;

    fn parse(headers: &str) -> ParsedMail {
        let parser = MailParser::new(
            &DeskConfig::default(),
            &GrammarConfig::default(),
            &IngestConfig::default(),
        )
        .unwrap();
        let raw = format!("{headers}\r\n\r\n您好，补丁安装失败。\r\n");
        let arrival = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
        parser.parse(raw.as_bytes(), arrival).unwrap()
    }

    fn plan<'a>(
        mails: &'a [ParsedMail],
        source: &'a Source,
        stored: &[StoredMessage],
    ) -> BatchPlan<'a> {
        let items: Vec<Incoming> = mails
            .iter()
            .map(|m| Incoming {
                raw: b"",
                sha256: &m.sha256,
                source,
                parsed: Ok(m),
            })
            .collect();
        plan_batch(&items, stored)
    }

    const CUSTOMER: &str = "From: Li Lei <li.lei@example.cn>\r\nTo: support@example.com";
    const DESK: &str = "From: Desk <support@example.com>\r\nTo: li.lei@example.cn";

    #[test]
    fn a_new_case_is_opened_with_its_subject_fields_and_status() {
        let mails = [parse(&format!(
            "{CUSTOMER}\r\nMessage-ID: <a@example.cn>\r\nDate: Sun, 1 Mar 2026 09:00:00 +0800\r\n\
             Subject: [案例号: CAS-01234-A1B2C3 ] % |P2|ACME| KB5034441 安装失败 % 初次响应"
        ))];
        let source = Source::Generated { index: 0 };
        let batch = plan(&mails, &source, &[]);
        assert_eq!(batch.outcomes[0].status, Status::Imported);
        let cases = plan_cases(&batch.new, &FilingState::default());
        assert_eq!(
            cases.open,
            [(
                "CAS-01234-A1B2C3".to_string(),
                Some("CAS-01234-A1B2C3".to_string())
            )]
        );
        let u = &cases.updates[0];
        assert_eq!(u.status, CaseStatus::WaitingOnUs);
        assert_eq!(u.fields.priority.as_deref(), Some("P2"));
        assert_eq!(u.fields.customer.as_deref(), Some("ACME"));
        assert_eq!(u.message_count, 1);
        let kinds: Vec<&str> = cases.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["message_filed", "case_opened", "status_changed"]);
        assert_eq!(cases.reindex, ["CAS-01234-A1B2C3"]);
    }

    #[test]
    fn a_late_parent_adopts_the_thread_that_waited_for_it_and_withdraws_its_draft() {
        // The desk's reply, with the case number, arrives after a customer
        // mail that answered it (filed before under a thread key).
        let mails = [parse(&format!(
            "{DESK}\r\nMessage-ID: <desk@example.com>\r\nDate: Sun, 1 Mar 2026 10:00:00 +0800\r\n\
             Subject: [案例号: CAS-01234-A1B2C3 ] % |P2|ACME| 日志 % 初次响应"
        ))];
        let source = Source::Generated { index: 0 };
        let batch = plan(&mails, &source, &[]);
        let orphan = "T-orphan".to_string();
        let state = FilingState {
            cases: HashMap::from([(
                orphan.clone(),
                StoredCase {
                    key: orphan.clone(),
                    case_id: None,
                    fields: CaseFields::default(),
                    status: CaseStatus::WaitingOnUs,
                    last_message_at: Some(1_772_340_000),
                },
            )]),
            threads: HashMap::from([(
                orphan.clone(),
                vec![ThreadEntry {
                    row: 7,
                    direction: Direction::Customer,
                    signal: None,
                    date: 1_772_340_000 + 7200,
                }],
            )]),
            orphans: vec![Orphan {
                parent: "desk@example.com".into(),
                key: orphan.clone(),
            }],
            pending: HashMap::from([(
                orphan.clone(),
                vec![PendingDraft {
                    id: 3,
                    kind: DraftKind::NextSteps,
                    edited_by: None,
                    body: "text".into(),
                }],
            )]),
        };
        let cases = plan_cases(&batch.new, &state);
        assert_eq!(cases.adoptions.len(), 1);
        let a = &cases.adoptions[0];
        assert_eq!(
            (a.from.as_str(), a.into.as_str()),
            ("T-orphan", "CAS-01234-A1B2C3")
        );
        assert_eq!(a.withdrawn[0].id, 3);
        assert_eq!(cases.final_key("T-orphan"), "CAS-01234-A1B2C3");
        // The adopter counts both mails; the customer's answer is the newest.
        let u = &cases.updates[0];
        assert_eq!(u.key, "CAS-01234-A1B2C3");
        assert_eq!(u.message_count, 2);
        assert_eq!(u.status, CaseStatus::WaitingOnUs);
        let kinds: Vec<&str> = cases.events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                "draft_withdrawn",
                "thread_adopted",
                "message_filed",
                "case_opened",
                "status_changed"
            ]
        );
        assert!(
            cases
                .events
                .iter()
                .all(|e| e.case_key == "CAS-01234-A1B2C3")
        );
    }

    #[test]
    fn a_child_before_its_numbered_parent_in_one_batch_joins_the_parents_case() {
        let mails = [
            parse(&format!(
                "{CUSTOMER}\r\nMessage-ID: <child@example.cn>\r\nIn-Reply-To: <desk@example.com>\r\n\
                 Date: Sun, 1 Mar 2026 11:00:00 +0800\r\nSubject: Re: 日志"
            )),
            parse(&format!(
                "{DESK}\r\nMessage-ID: <desk@example.com>\r\nDate: Sun, 1 Mar 2026 10:00:00 +0800\r\n\
                 Subject: [案例号: CAS-01234-A1B2C3 ] % |P2|ACME| 日志 % 初次响应"
            )),
        ];
        let source = Source::Generated { index: 0 };
        let batch = plan(&mails, &source, &[]);
        let cases = plan_cases(&batch.new, &FilingState::default());
        assert_eq!(cases.adoptions.len(), 1);
        let child_key = batch.outcomes[0].case_key.as_deref().unwrap();
        assert_eq!(cases.final_key(child_key), "CAS-01234-A1B2C3");
        assert_eq!(cases.updates.len(), 1);
        assert_eq!(cases.updates[0].message_count, 2);
        assert_eq!(cases.updates[0].status, CaseStatus::WaitingOnUs);
    }

    #[test]
    fn a_duplicate_and_a_variant_are_seen_not_filed() {
        let mails = [parse(&format!(
            "{CUSTOMER}\r\nMessage-ID: <a@example.cn>\r\nDate: Sun, 1 Mar 2026 09:00:00 +0800\r\nSubject: x"
        ))];
        let source = Source::Generated { index: 0 };
        let same = StoredMessage {
            message_id: "a@example.cn".into(),
            sha256: mails[0].sha256.clone(),
            raw_id: 1,
            case_key: "T-a".into(),
        };
        let batch = plan(&mails, &source, std::slice::from_ref(&same));
        assert_eq!(batch.outcomes[0].status, Status::Duplicate);
        assert!(batch.new.is_empty() && batch.variants.is_empty());
        assert_eq!(batch.sightings.len(), 1);
        let other = StoredMessage {
            sha256: "0".repeat(64),
            ..same
        };
        let batch = plan(&mails, &source, &[other]);
        assert_eq!(batch.outcomes[0].status, Status::Duplicate);
        assert_eq!(batch.variants.len(), 1);
    }
}
