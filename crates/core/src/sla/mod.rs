//! The SLA engine: how each case stands against its priority's targets.
//!
//! Pure: a case's [`Timeline`] (its mails and manual assignments) and the
//! [`SlaPolicies`] go in, a [`CaseSla`] comes out; [`CaseSla::view`] then
//! reads it at a given instant. The evaluation itself never looks at the
//! clock, so the same timeline gives the same result whenever it is
//! evaluated, and `casebot sla --now` is reproducible.
//!
//! The targets, each a [`Clock`] of business time:
//! - **first response**: from the case's first mail (the engineer's or the
//!   customer's, whichever comes first) to the desk's first mail. When an
//!   engineer mail carries the partner's first-response stage word
//!   (初次响应), that mail is the first response: it is what the partner
//!   measures.
//! - **update**: from a customer mail that hands the case back to the desk
//!   (after the first response) to the desk's next mail.
//! - **handover**: from a reassignment to the new owner's first mail. A
//!   reassignment is either made on the desk (`assign`) or shown by an
//!   engineer mail with the reassignment stage word (案例重新分配) from a
//!   new sender, whose mail is then itself the handover.
//! - **resolution**: all the business time the case waited on the desk,
//!   until the customer confirms the fix or the case is archived. It runs
//!   while the case waits on us and pauses while it waits on the customer.
//!
//! Auto-replies and bounces never move any clock. Stage words count only on
//! the desk's own mails: a customer's reply repeats the subject, stage word
//! and all, of the mail it answers.

pub mod calendar;
pub mod policy;
pub mod report;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use policy::{BusinessDuration, Policy, SlaPolicies};

use crate::domain::{CaseStatus, Direction, MailSignal, Stage};
use crate::mail::case_state::{StatusInput, next_status};
use calendar::BusinessCalendar;

/// Something that happened to a case and may move its clocks.
#[derive(Debug, Clone)]
pub enum Happening {
    Mail {
        at: DateTime<Utc>,
        direction: Direction,
        signal: Option<MailSignal>,
        stage: Option<Stage>,
        /// Who sent it, as an owner is named (a desk user's name when the
        /// address belongs to one, else the address).
        sender: Option<String>,
    },
    /// An engineer or the team lead gave the case to `owner` on the desk.
    Assigned { at: DateTime<Utc>, owner: String },
    /// An engineer closed (resolved) or reopened the case by hand; the next
    /// mail goes on from there.
    StatusSet {
        at: DateTime<Utc>,
        status: CaseStatus,
    },
}

impl Happening {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Happening::Mail { at, .. }
            | Happening::Assigned { at, .. }
            | Happening::StatusSet { at, .. } => *at,
        }
    }
}

/// What the engine needs to know about one case.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub case_row: i64,
    pub case_key: String,
    pub case_id: Option<String>,
    pub title: Option<String>,
    pub customer: Option<String>,
    pub priority: Option<String>,
    /// In any order: the engine sorts by time, keeping the given order for ties.
    pub happenings: Vec<Happening>,
}

/// One target's clock of business time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    pub budget_secs: i64,
    pub started_at: DateTime<Utc>,
    /// Business seconds used up to the last pause (or stop).
    pub used_secs: i64,
    /// The clock is running from this instant; `None` while paused or done.
    pub running_since: Option<DateTime<Utc>>,
    /// When the budget runs (or ran) out, as of the last time the clock ran.
    pub due: DateTime<Utc>,
    /// When the target was met.
    pub met_at: Option<DateTime<Utc>>,
    /// Stopped without being met: the case was closed first, or another
    /// reassignment replaced this one.
    pub cancelled: bool,
}

impl Clock {
    fn start(calendar: &BusinessCalendar, at: DateTime<Utc>, budget_secs: i64) -> Self {
        Clock {
            budget_secs,
            started_at: at,
            used_secs: 0,
            running_since: Some(at),
            due: calendar.add_seconds(at, budget_secs),
            met_at: None,
            cancelled: false,
        }
    }

    fn is_done(&self) -> bool {
        self.met_at.is_some() || self.cancelled
    }

    fn pause(&mut self, calendar: &BusinessCalendar, at: DateTime<Utc>) {
        if let Some(since) = self.running_since.take() {
            self.used_secs += calendar.seconds_between(since, at).max(0);
        }
    }

    fn resume(&mut self, calendar: &BusinessCalendar, at: DateTime<Utc>) {
        if self.running_since.is_some() || self.is_done() {
            return;
        }
        self.running_since = Some(at);
        let left = self.budget_secs - self.used_secs;
        if left > 0 {
            self.due = calendar.add_seconds(at, left);
        }
    }

    fn meet(&mut self, calendar: &BusinessCalendar, at: DateTime<Utc>) {
        if !self.is_done() {
            self.pause(calendar, at);
            self.met_at = Some(at);
        }
    }

    fn cancel(&mut self, calendar: &BusinessCalendar, at: DateTime<Utc>) {
        if !self.is_done() {
            self.pause(calendar, at);
            self.cancelled = true;
        }
    }

    /// A closed case reopens: its resolution clock runs again.
    fn reopen(&mut self) {
        self.met_at = None;
        self.cancelled = false;
    }

    /// Business seconds used by `now`.
    fn used_at(&self, calendar: &BusinessCalendar, now: DateTime<Utc>) -> i64 {
        self.used_secs
            + self
                .running_since
                .map_or(0, |since| calendar.seconds_between(since, now).max(0))
    }

    /// Met within its budget.
    pub fn met_in_time(&self) -> bool {
        self.met_at.is_some() && self.used_secs <= self.budget_secs
    }

    /// How the target stands at `now`.
    pub fn view(
        &self,
        calendar: &BusinessCalendar,
        now: DateTime<Utc>,
        at_risk: f64,
    ) -> TargetView {
        let used = self.used_at(calendar, now);
        let left = self.budget_secs - used;
        let running = self.running_since.is_some();
        let breached = left < 0 || (running && now > self.due);
        let at_risk =
            !breached && !self.is_done() && used as f64 >= at_risk * self.budget_secs as f64;
        TargetView {
            due: (running || self.is_done() || left < 0).then_some(self.due),
            minutes_left: left.div_euclid(60),
            budget_minutes: self.budget_secs / 60,
            used_minutes: used / 60,
            breached,
            at_risk,
            paused: !running && !self.is_done(),
            met_at: self.met_at,
            cancelled: self.cancelled,
        }
    }
}

/// A target as seen at one instant (what `casebot sla --json` prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetView {
    /// When the budget runs out; `None` while the clock is paused with
    /// budget left (it has no due time until it runs again).
    pub due: Option<DateTime<Utc>>,
    /// Business minutes left; negative when overdue.
    pub minutes_left: i64,
    pub budget_minutes: i64,
    pub used_minutes: i64,
    pub breached: bool,
    pub at_risk: bool,
    pub paused: bool,
    pub met_at: Option<DateTime<Utc>>,
    pub cancelled: bool,
}

/// Which target a finished clock measured (kept for the period report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    FirstResponse,
    Update,
    Handover,
    Resolution,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::FirstResponse => "first_response",
            TargetKind::Update => "update",
            TargetKind::Handover => "handover",
            TargetKind::Resolution => "resolution",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TargetKind::FirstResponse => "first response",
            TargetKind::Update => "update",
            TargetKind::Handover => "handover",
            TargetKind::Resolution => "resolution",
        }
    }
}

/// Business minutes as people read them: `3h05m`, `−1h20m`; whole hours
/// from 100 h on, where minutes no longer matter.
pub fn business_time(minutes: i64) -> String {
    let sign = if minutes < 0 { "−" } else { "" };
    let (h, rest) = (minutes.abs() / 60, minutes.abs() % 60);
    if h >= 100 {
        format!("{sign}{h}h")
    } else {
        format!("{sign}{h}h{rest:02}m")
    }
}

/// A case evaluated against its policy: independent of the current time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseSla {
    pub case_row: i64,
    pub case_key: String,
    pub case_id: Option<String>,
    pub title: Option<String>,
    pub customer: Option<String>,
    /// The priority the policy was taken from (the default one when the
    /// subject names none).
    pub priority: String,
    pub status: CaseStatus,
    pub owner: Option<String>,
    /// When the case's clock started (its first mail from a person).
    pub started_at: Option<DateTime<Utc>>,
    /// When the case was resolved or archived (cleared when it reopens).
    pub closed_at: Option<DateTime<Utc>>,
    pub first_response: Option<Clock>,
    pub update: Option<Clock>,
    pub handover: Option<Clock>,
    pub resolution: Option<Clock>,
    /// Earlier update and handover clocks, finished.
    pub history: Vec<(TargetKind, Clock)>,
}

/// How urgent a case is at one instant, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Breached,
    AtRisk,
    OnTrack,
    /// Waiting on the customer: no clock runs.
    Paused,
    Closed,
}

impl Urgency {
    /// How people read it on the board.
    pub fn label(self) -> &'static str {
        match self {
            Urgency::Breached => "breached",
            Urgency::AtRisk => "at risk",
            Urgency::OnTrack => "on track",
            Urgency::Paused => "paused",
            Urgency::Closed => "closed",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Breached => "breached",
            Urgency::AtRisk => "at_risk",
            Urgency::OnTrack => "on_track",
            Urgency::Paused => "paused",
            Urgency::Closed => "closed",
        }
    }
}

/// A case's SLA at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSlaView {
    pub case_key: String,
    pub case_id: Option<String>,
    pub title: Option<String>,
    pub customer: Option<String>,
    pub priority: String,
    pub owner: Option<String>,
    /// waiting_on_us | waiting_on_customer | resolved | archived
    pub state: &'static str,
    pub urgency: Urgency,
    pub started_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The earliest due time of a target still running.
    pub next_due: Option<DateTime<Utc>>,
    /// The fewest business minutes left of any unmet target.
    pub minutes_left: Option<i64>,
    pub first_response: Option<TargetView>,
    pub update: Option<TargetView>,
    pub handover: Option<TargetView>,
    pub resolution: Option<TargetView>,
}

impl CaseSla {
    /// Every clock the case ever ran, finished ones included.
    pub fn clocks(&self) -> impl Iterator<Item = (TargetKind, &Clock)> {
        [
            (TargetKind::FirstResponse, &self.first_response),
            (TargetKind::Update, &self.update),
            (TargetKind::Handover, &self.handover),
            (TargetKind::Resolution, &self.resolution),
        ]
        .into_iter()
        .filter_map(|(kind, clock)| clock.as_ref().map(|c| (kind, c)))
        .chain(self.history.iter().map(|(kind, clock)| (*kind, clock)))
    }

    /// The clocks that have not finished.
    fn open_clocks(&self) -> impl Iterator<Item = &Clock> {
        [
            &self.first_response,
            &self.update,
            &self.handover,
            &self.resolution,
        ]
        .into_iter()
        .flatten()
        .filter(|c| !c.is_done())
    }

    pub fn view(&self, policies: &SlaPolicies, now: DateTime<Utc>) -> CaseSlaView {
        let policy = policies.policy_for(Some(&self.priority));
        let view = |c: &Option<Clock>| {
            c.as_ref()
                .map(|c| c.view(&policy.calendar, now, policies.at_risk))
        };
        let first_response = view(&self.first_response);
        let update = view(&self.update);
        let handover = view(&self.handover);
        let resolution = view(&self.resolution);
        let unmet: Vec<&TargetView> = [&first_response, &update, &handover, &resolution]
            .into_iter()
            .flatten()
            .filter(|t| t.met_at.is_none() && !t.cancelled)
            .collect();
        let closed = matches!(self.status, CaseStatus::Resolved | CaseStatus::Archived);
        let urgency = if closed {
            Urgency::Closed
        } else if unmet.iter().any(|t| t.breached) {
            Urgency::Breached
        } else if unmet.iter().any(|t| t.at_risk) {
            Urgency::AtRisk
        } else if self.open_clocks().any(|c| c.running_since.is_some()) {
            Urgency::OnTrack
        } else {
            Urgency::Paused
        };
        CaseSlaView {
            case_key: self.case_key.clone(),
            case_id: self.case_id.clone(),
            title: self.title.clone(),
            customer: self.customer.clone(),
            priority: self.priority.clone(),
            owner: self.owner.clone(),
            state: match self.status {
                // A case whose first mail was the customer's and that has no
                // answer yet is waiting on us like any other.
                CaseStatus::New | CaseStatus::WaitingOnUs => "waiting_on_us",
                other => other.as_str(),
            },
            urgency,
            started_at: self.started_at,
            closed_at: self.closed_at,
            next_due: self
                .open_clocks()
                .filter(|c| c.running_since.is_some())
                .map(|c| c.due)
                .min(),
            minutes_left: unmet.iter().map(|t| t.minutes_left).min(),
            first_response,
            update,
            handover,
            resolution,
        }
    }
}

impl CaseSlaView {
    /// The unmet target with the least time left: the one that sets the
    /// case's urgency.
    pub fn worst_target(&self) -> Option<(TargetKind, &TargetView)> {
        [
            (TargetKind::FirstResponse, &self.first_response),
            (TargetKind::Update, &self.update),
            (TargetKind::Handover, &self.handover),
            (TargetKind::Resolution, &self.resolution),
        ]
        .into_iter()
        .filter_map(|(kind, t)| t.as_ref().map(|t| (kind, t)))
        .filter(|(_, t)| t.met_at.is_none() && !t.cancelled)
        .min_by_key(|(_, t)| t.minutes_left)
    }
}

/// Sorts views most urgent first: breached, at risk, on track, paused,
/// closed; within each, the least time left, then the higher priority.
pub fn sort_by_urgency(views: &mut [CaseSlaView]) {
    views.sort_by(|a, b| {
        (
            a.urgency,
            a.minutes_left.unwrap_or(i64::MAX),
            &a.priority,
            &a.case_key,
        )
            .cmp(&(
                b.urgency,
                b.minutes_left.unwrap_or(i64::MAX),
                &b.priority,
                &b.case_key,
            ))
    });
}

fn same_person(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Evaluates a case from what happened up to `until` (everything when
/// `None`). `None` when no person has written yet (only machine mail): there
/// is nothing to measure.
pub fn evaluate(
    timeline: &Timeline,
    policies: &SlaPolicies,
    until: Option<DateTime<Utc>>,
) -> Option<CaseSla> {
    let policy = policies.policy_for(timeline.priority.as_deref());
    let mut happenings: Vec<&Happening> = timeline
        .happenings
        .iter()
        .filter(|h| until.is_none_or(|u| h.at() <= u))
        .collect();
    happenings.sort_by_key(|h| h.at());
    // The partner's marked first response, else the desk's first mail.
    let first_response_index = happenings
        .iter()
        .position(|h| is_engineer_mail(h) && has_stage(h, policies.first_response_stage))
        .or_else(|| happenings.iter().position(|h| is_engineer_mail(h)));

    let mut walk = Walk {
        policies,
        policy,
        handover_owner: None,
        sla: CaseSla {
            case_row: timeline.case_row,
            case_key: timeline.case_key.clone(),
            case_id: timeline.case_id.clone(),
            title: timeline.title.clone(),
            customer: timeline.customer.clone(),
            priority: policy.priority.clone(),
            status: CaseStatus::New,
            owner: None,
            started_at: None,
            closed_at: None,
            first_response: None,
            update: None,
            handover: None,
            resolution: None,
            history: Vec::new(),
        },
    };
    for (index, happening) in happenings.iter().enumerate() {
        match happening {
            Happening::Assigned { owner, at } => walk.assigned(*at, owner),
            Happening::StatusSet { at, status } => walk.status_set(*at, *status),
            Happening::Mail {
                direction: Direction::Auto | Direction::Bounce,
                ..
            } => {}
            Happening::Mail { .. } => {
                walk.person_mail(happening, Some(index) == first_response_index)
            }
        }
    }
    walk.sla.started_at?;
    Some(walk.sla)
}

fn is_engineer_mail(h: &Happening) -> bool {
    matches!(
        h,
        Happening::Mail {
            direction: Direction::Engineer,
            ..
        }
    )
}

fn has_stage(h: &Happening, wanted: Stage) -> bool {
    matches!(h, Happening::Mail { stage: Some(stage), .. } if *stage == wanted)
}

/// A case's clocks, walked through its happenings in time order.
struct Walk<'a> {
    policies: &'a SlaPolicies,
    policy: &'a Policy,
    sla: CaseSla,
    /// The new owner who still owes the customer an introduction.
    handover_owner: Option<String>,
}

impl Walk<'_> {
    fn assigned(&mut self, at: DateTime<Utc>, owner: &str) {
        let (sla, cal) = (&mut self.sla, &self.policy.calendar);
        if sla.owner.as_deref().is_some_and(|o| same_person(o, owner)) {
            return;
        }
        sla.owner = Some(owner.to_string());
        if let Some(mut previous) = sla.handover.take() {
            previous.cancel(cal, at);
            sla.history.push((TargetKind::Handover, previous));
        }
        // A closed case or one not started owes no introduction.
        if sla.started_at.is_some() && sla.closed_at.is_none() {
            sla.handover = Some(Clock::start(cal, at, self.policy.first_response));
            self.handover_owner = Some(owner.to_string());
        }
    }

    /// A status set by hand: the resolution clock follows it as it follows
    /// a mail (a close stops it and the other clocks, a reopen resumes it).
    fn status_set(&mut self, at: DateTime<Utc>, status: CaseStatus) {
        if self.sla.started_at.is_none() {
            return;
        }
        self.sla.status = status;
        self.follow_resolution(at);
    }

    /// A customer's or an engineer's mail.
    fn person_mail(&mut self, happening: &Happening, is_first_response: bool) {
        let Happening::Mail {
            at,
            direction,
            signal,
            sender,
            ..
        } = happening
        else {
            return;
        };
        let at = *at;
        let (cal, policy) = (&self.policy.calendar, self.policy);
        if self.sla.started_at.is_none() {
            self.sla.started_at = Some(at);
            self.sla.first_response = Some(Clock::start(cal, at, policy.first_response));
            self.sla.resolution = Some(Clock::start(cal, at, policy.resolution));
        }
        let before = self.sla.status;
        self.sla.status = next_status(
            before,
            StatusInput {
                direction: *direction,
                signal: *signal,
            },
        );
        if *direction == Direction::Engineer {
            self.engineer_mail(happening, sender.as_deref(), at, is_first_response);
        } else if self.sla.status == CaseStatus::WaitingOnUs
            && before != CaseStatus::WaitingOnUs
            && self.sla.first_response.as_ref().is_some_and(Clock::is_done)
        {
            if let Some(done) = self.sla.update.take() {
                self.sla.history.push((TargetKind::Update, done));
            }
            self.sla.update = Some(Clock::start(cal, at, policy.update));
        }
        self.follow_resolution(at);
    }

    fn engineer_mail(
        &mut self,
        happening: &Happening,
        sender: Option<&str>,
        at: DateTime<Utc>,
        is_first_response: bool,
    ) {
        let (sla, cal) = (&mut self.sla, &self.policy.calendar);
        if let Some(sender) = sender {
            let reassigned = has_stage(happening, self.policies.reassignment_stage);
            let new_sender = sla.owner.as_deref().is_none_or(|o| !same_person(o, sender));
            if sla.owner.is_none() || (reassigned && new_sender) {
                sla.owner = Some(sender.to_string());
            }
            let introduces = self
                .handover_owner
                .as_deref()
                .is_some_and(|o| same_person(o, sender))
                || (reassigned && new_sender);
            if introduces && let Some(handover) = sla.handover.as_mut() {
                handover.meet(cal, at);
                self.handover_owner = None;
            }
        }
        if is_first_response && let Some(first) = sla.first_response.as_mut() {
            first.meet(cal, at);
        }
        if let Some(update) = sla.update.as_mut() {
            update.meet(cal, at);
        }
    }

    /// The resolution clock follows who owes the next move; nothing more is
    /// owed on a closed case.
    fn follow_resolution(&mut self, at: DateTime<Utc>) {
        let (sla, cal) = (&mut self.sla, &self.policy.calendar);
        if let Some(resolution) = sla.resolution.as_mut() {
            match sla.status {
                CaseStatus::WaitingOnUs | CaseStatus::New => {
                    if sla.closed_at.take().is_some() {
                        resolution.reopen();
                    }
                    resolution.resume(cal, at);
                }
                CaseStatus::WaitingOnCustomer => resolution.pause(cal, at),
                CaseStatus::Resolved | CaseStatus::Archived => {
                    if sla.closed_at.is_none() {
                        sla.closed_at = Some(at);
                        resolution.meet(cal, at);
                    }
                }
            }
        }
        if sla.closed_at.is_some() {
            for clock in [&mut sla.first_response, &mut sla.update, &mut sla.handover]
                .into_iter()
                .flatten()
            {
                clock.cancel(cal, at);
            }
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_support;
