//! The conclusion: from all findings of a bundle to one outcome, one decisive
//! error, one root-cause class and the ordered next steps.
//!
//! It reads the way an engineer reads CBS.log: find the final failure (the
//! last `Failed to …` or final HRESULT), then walk backwards through the chain
//! of failure lines that led to it, stopping at a gap in time or at the start
//! of the servicing session, and take the first fatal error of that chain. A
//! wrapper such as `Failed to add to transaction package … E_FAIL` is never
//! the decisive line when a cause sits under it. A later success overrides an
//! earlier failure (the retry worked). No failure and no success means
//! `unknown`: no guess.

use serde::{Deserialize, Serialize};

use super::codes::{self, Code};
use super::logs;
use super::rules::{Role, RuleSet, Severity};
use super::scan::Finding;
use casebot_core::domain::Lang;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Failure,
    Success,
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Failure => "failure",
            Outcome::Success => "success",
            Outcome::Unknown => "unknown",
        }
    }
}

/// A line quoted as evidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    pub rule: String,
    pub file: String,
    pub line: u64,
    pub time: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootCause {
    pub class: String,
    /// The class in words, in the report's language.
    pub class_name: String,
    /// What the decisive rule says about it, in the report's language.
    pub summary: String,
    /// The decisive rule.
    pub rule: String,
    /// The decisive line first, then the chain to the final failure.
    pub evidence: Vec<Evidence>,
    /// When the class is unknown: what was found (which log, which failing
    /// operation, which code) and what to collect next, in the report's
    /// language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NextStep {
    pub id: String,
    pub title: String,
    pub text: String,
}

/// What the findings add up to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conclusion {
    pub outcome: Outcome,
    pub root_cause: Option<RootCause>,
    pub error_codes: Vec<String>,
    /// The codes as the logs wrote them, with names.
    pub code_details: Vec<Code>,
    pub kbs: Vec<String>,
    pub failing_package: Option<String>,
    pub failing_component: Option<String>,
    pub failing_file: Option<String>,
    pub os_build: Option<String>,
    /// The line that decided a success.
    pub success: Option<Evidence>,
    pub next_steps: Vec<NextStep>,
    /// What an engineer should know about the outcome beyond its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<OutcomeNote>,
    /// The note in the report's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_text: Option<String>,
}

impl Conclusion {
    /// Did the logs settle the question, by a failure or by a line that
    /// records a success? A log in which nothing failed does not: it may
    /// stop before the operation's end.
    pub fn settled(&self) -> bool {
        match self.outcome {
            Outcome::Failure => true,
            Outcome::Success => self.success.is_some(),
            Outcome::Unknown => false,
        }
    }

    /// Marks a conclusion over servicing logs in which nothing failed and
    /// nothing recorded the end: a success as far as the logs go.
    pub fn no_failure_found(&mut self, lang: Lang) {
        self.outcome = Outcome::Success;
        self.set_note(OutcomeNote::NoFailureFound, lang);
    }

    fn set_note(&mut self, note: OutcomeNote, lang: Lang) {
        self.note = Some(note);
        self.note_text = Some(note.text(lang).to_string());
    }
}

/// Why a success needs a word more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeNote {
    /// Servicing logs in which nothing failed and no line records how the
    /// operation ended: the excerpt may stop before its end.
    NoFailureFound,
    /// The operation succeeded and waits for a restart to finish.
    RebootRequired,
}

impl OutcomeNote {
    pub fn text(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (OutcomeNote::NoFailureFound, Lang::Zh | Lang::ZhTw) => {
                "日志中未发现失败；日志没有记录操作的结束，可能在操作完成前就已截取。"
            }
            (OutcomeNote::NoFailureFound, Lang::En) => {
                "No failure found; the log does not record the operation's end, so it may stop before the operation finished."
            }
            (OutcomeNote::RebootRequired, Lang::Zh | Lang::ZhTw) => {
                "操作已成功，需要重启才能完成。"
            }
            (OutcomeNote::RebootRequired, Lang::En) => {
                "The operation succeeded and needs a restart to finish."
            }
        }
    }
}

/// A success line that says the change waits for a restart.
static REBOOT_REQUIRED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)REBOOT_REQUIRED|Reboot required:\s*(?:yes|true)|需要重启|restart (?:is )?required",
    )
    .expect("static regex")
});

/// Knobs of the chain walk.
#[derive(Debug, Clone, Copy)]
pub struct ChainLimits {
    /// Two failure lines further apart than this are not one chain.
    pub gap_secs: i64,
    /// Without time stamps, the same in lines.
    pub gap_lines: u64,
}

impl Default for ChainLimits {
    fn default() -> Self {
        ChainLimits {
            gap_secs: 600,
            gap_lines: 400,
        }
    }
}

fn evidence(f: &Finding) -> Evidence {
    Evidence {
        rule: f.rule.clone(),
        file: f.file.clone(),
        line: f.line,
        time: f.time.clone(),
        text: f.text.clone(),
    }
}

fn is_failure(f: &Finding) -> bool {
    matches!(f.role, Role::Cause | Role::Wrapper | Role::Final) && f.severity >= Severity::Warning
}

/// Sorts findings into reading order: timed lines by time (files merged), then
/// untimed lines (a mail's pasted text) in file order after them, because a
/// log's own time stamps are better evidence than prose.
pub fn order(findings: &mut [Finding]) {
    fn key(f: &Finding) -> (bool, Option<&str>, usize, u64) {
        (f.time.is_none(), f.time.as_deref(), f.file_index, f.line)
    }
    findings.sort_by(|a, b| key(a).cmp(&key(b)));
}

/// Are `earlier` and `later` close enough to be links of one chain?
fn linked(earlier: &Finding, later: &Finding, limits: ChainLimits) -> bool {
    match (
        earlier.time.as_deref().and_then(logs::seconds),
        later.time.as_deref().and_then(logs::seconds),
    ) {
        (Some(a), Some(b)) => (b - a).abs() <= limits.gap_secs,
        _ => {
            earlier.file_index == later.file_index
                && later.line.saturating_sub(earlier.line) <= limits.gap_lines
        }
    }
}

/// Concludes over findings already in reading order (see [`order`]).
pub fn conclude(
    findings: &[Finding],
    rules: &RuleSet,
    lang: Lang,
    limits: ChainLimits,
) -> Conclusion {
    let mut conclusion = Conclusion {
        outcome: Outcome::Unknown,
        root_cause: None,
        error_codes: Vec::new(),
        code_details: Vec::new(),
        kbs: Vec::new(),
        failing_package: None,
        failing_component: None,
        failing_file: None,
        os_build: None,
        success: None,
        next_steps: Vec::new(),
        note: None,
        note_text: None,
    };
    conclusion.os_build = findings.iter().rev().find_map(|f| f.os_build.clone());
    let anchor = match settled_by(findings) {
        Settled::Success(s) => {
            conclusion.outcome = Outcome::Success;
            conclusion.success = Some(evidence(&findings[s]));
            if REBOOT_REQUIRED.is_match(&findings[s].text) {
                conclusion.set_note(OutcomeNote::RebootRequired, lang);
            }
            conclusion.kbs = unique(
                findings[..=s]
                    .iter()
                    .rev()
                    .filter_map(|f| f.kb.clone())
                    .take(1),
            );
            return conclusion;
        }
        Settled::Nothing => return conclusion,
        Settled::Failure(anchor) => anchor,
    };
    let (session_start, chain) = chain_to(findings, anchor, limits);
    let decisive = decisive_in(findings, &chain, anchor);
    let from_decisive: Vec<usize> = chain.iter().copied().filter(|&i| i >= decisive).collect();
    let class = class_of(findings, rules, decisive, &from_decisive);

    conclusion.outcome = Outcome::Failure;
    chain_facts(
        &mut conclusion,
        findings,
        &from_decisive,
        session_start..=anchor,
    );
    let decisive_rule = rules.rule(&findings[decisive].rule);
    let class_info = rules.classes.get(&class);
    let mut evidence_lines: Vec<Evidence> = from_decisive
        .iter()
        .take(12)
        .map(|&i| evidence(&findings[i]))
        .collect();
    if !from_decisive.iter().take(12).any(|&i| i == anchor) {
        evidence_lines.push(evidence(&findings[anchor]));
    }
    conclusion.root_cause = Some(RootCause {
        class_name: class_info
            .map(|c| c.name.get(lang).to_string())
            .unwrap_or_else(|| class.clone()),
        class,
        summary: decisive_rule
            .map(|r| r.explain.get(lang).to_string())
            .unwrap_or_default(),
        rule: findings[decisive].rule.clone(),
        evidence: evidence_lines,
        detail: None,
    });

    // Steps: the decisive rule's own, the class's, then those of the chain.
    let mut step_ids: Vec<String> = Vec::new();
    let mut add = |ids: &[String]| {
        for id in ids {
            if !step_ids.contains(id) {
                step_ids.push(id.clone());
            }
        }
    };
    if let Some(rule) = decisive_rule {
        add(&rule.steps);
    }
    if let Some(c) = class_info {
        add(&c.steps);
    }
    for &i in &from_decisive {
        if let Some(rule) = rules.rule(&findings[i].rule) {
            add(&rule.steps);
        }
    }
    conclusion.next_steps = step_ids
        .iter()
        .filter_map(|id| rules.steps.get(id))
        .map(|s| NextStep {
            id: s.id.clone(),
            title: s.title.get(lang).to_string(),
            text: s.text.get(lang).to_string(),
        })
        .collect();
    conclusion
}

/// How the findings end.
enum Settled {
    /// In a success (at this finding) that no failure follows.
    Success(usize),
    /// In a failure: the chain is read back from this finding.
    Failure(usize),
    /// Neither a failure nor a success was found.
    Nothing,
}

fn settled_by(findings: &[Finding]) -> Settled {
    let last_error = |from: usize| {
        findings
            .iter()
            .enumerate()
            .skip(from)
            .filter(|(_, f)| {
                matches!(f.role, Role::Cause | Role::Wrapper) && f.severity >= Severity::Error
            })
            .map(|(i, _)| i)
            .next_back()
    };
    let last_final = findings.iter().rposition(|f| f.role == Role::Final);
    let last_success = findings.iter().rposition(|f| f.role == Role::Success);
    // A success after a failure settles it when it is about the same update
    // (or either does not say which): a later success of another KB does not.
    let settles = |success: usize, failure: usize| {
        findings[failure + 1..=success].iter().any(|s| {
            s.role == Role::Success
                && match (&s.kb, &findings[failure].kb) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        })
    };
    let anchor = match (last_final, last_success) {
        (Some(f), Some(s)) if s > f && settles(s, f) => None,
        (Some(f), _) => Some(f),
        (None, Some(s)) => last_error(s + 1),
        (None, None) => last_error(0),
    };
    match (anchor, last_success) {
        (Some(anchor), _) => Settled::Failure(anchor),
        (None, Some(s)) => Settled::Success(s),
        (None, None) => Settled::Nothing,
    }
}

/// The failures linked to the anchor, oldest first, within the anchor's
/// session (the chain never crosses its start); and where that session starts.
fn chain_to(findings: &[Finding], anchor: usize, limits: ChainLimits) -> (usize, Vec<usize>) {
    let session_start = findings[..anchor]
        .iter()
        .rposition(|f| f.role == Role::Session && f.file_index == findings[anchor].file_index)
        .map_or(0, |i| i + 1);
    let mut chain = vec![anchor];
    let mut newest = anchor;
    for i in (session_start..anchor).rev() {
        let f = &findings[i];
        if !is_failure(f) {
            continue;
        }
        if !linked(f, &findings[newest], limits) {
            break;
        }
        chain.push(i);
        newest = i;
    }
    chain.reverse();
    (session_start, chain)
}

/// The chain's decisive finding: a fatal cause, else the first cause error
/// with a class, else the first cause error, else the first classed line.
fn decisive_in(findings: &[Finding], chain: &[usize], anchor: usize) -> usize {
    let first =
        |test: &dyn Fn(&Finding) -> bool| chain.iter().copied().find(|&i| test(&findings[i]));
    first(&|f| f.role == Role::Cause && f.severity == Severity::Fatal)
        .or_else(|| {
            first(&|f| f.role == Role::Cause && f.severity >= Severity::Error && f.class.is_some())
        })
        .or_else(|| first(&|f| f.role == Role::Cause && f.severity >= Severity::Error))
        .or_else(|| first(&|f| f.class.is_some()))
        .unwrap_or(anchor)
}

/// The root-cause class: the decisive line's, else its codes', else the
/// first in the chain after it; `unknown` when nothing names one.
fn class_of(
    findings: &[Finding],
    rules: &RuleSet,
    decisive: usize,
    from_decisive: &[usize],
) -> String {
    let code_class = |f: &Finding| {
        f.codes
            .iter()
            .find_map(|c| rules.code_classes.get(c).cloned())
    };
    findings[decisive]
        .class
        .clone()
        .or_else(|| code_class(&findings[decisive]))
        .or_else(|| {
            from_decisive
                .iter()
                .find_map(|&i| findings[i].class.clone())
        })
        .or_else(|| from_decisive.iter().find_map(|&i| code_class(&findings[i])))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Codes, KBs, package, component, file and build of the chain from its
/// decisive line on; the KB falls back to the session's latest.
fn chain_facts(
    conclusion: &mut Conclusion,
    findings: &[Finding],
    from_decisive: &[usize],
    session: std::ops::RangeInclusive<usize>,
) {
    let mut details: Vec<Code> = Vec::new();
    for &i in from_decisive {
        for code in &findings[i].code_details {
            if !details.iter().any(|d| d.code == code.code) {
                details.push(code.clone());
            }
        }
    }
    // What failed before what only relays it (stable: the chain's order stays).
    details.sort_by_key(|d| codes::is_generic(&d.code));
    conclusion.error_codes = details.iter().map(|d| d.code.clone()).collect();
    conclusion.code_details = details;
    conclusion.kbs = unique(from_decisive.iter().filter_map(|&i| findings[i].kb.clone()));
    if conclusion.kbs.is_empty() {
        conclusion.kbs = unique(
            findings[session]
                .iter()
                .rev()
                .filter_map(|f| f.kb.clone())
                .take(1),
        );
    }
    let first = |field: &dyn Fn(&Finding) -> Option<String>| {
        from_decisive.iter().find_map(|&i| field(&findings[i]))
    };
    conclusion.failing_package = first(&|f| f.package.clone());
    conclusion.failing_component = first(&|f| f.component.clone());
    conclusion.failing_file = first(&|f| f.file_name.clone());
    if let Some(build) = first(&|f| f.os_build.clone()) {
        conclusion.os_build = Some(build);
    }
}

fn unique(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}
