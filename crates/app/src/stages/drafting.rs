//! Drafting: the reply each case calls for, rendered from `templates/`, kept
//! as the case's one pending draft until an engineer approves or rejects it.
//!
//! The stage reads the event log from where it stopped and re-decides every
//! case that changed (a mail filed, an analysis finished, threads merged).
//! The decision ([`decide`]), the envelope ([`reply`]), the template context
//! ([`context`]) and the knowledge signature ([`knowledge`]) are pure; this
//! module only loads their inputs from the store and writes the outcome.

use std::sync::Arc;

use anyhow::Result;
use futures_util::StreamExt;
use serde::Serialize;

use crate::config::Config;
use crate::telemetry::{DraftEvent, Stage};
use casebot_analysis::conclude::Conclusion;
use casebot_analysis::rules::RuleSet;
use casebot_core::domain::{Direction, DraftKind, DraftOrigin, DraftStatus, Lang, MailSignal};
use casebot_core::mail::parse::Mailbox;
use casebot_core::mail::subject::ParsedSubject;
use casebot_store::Store;
use casebot_store::analyses::AnalysisView;
use casebot_store::drafts::{DraftRow, DraftingInput, GateError, NewDraft};
use casebot_store::knowledge::NewKnowledge;

use casebot_drafting::check;
use casebot_drafting::config::SignAs;
use casebot_drafting::context::{self, CaseInput, Inputs, SimilarCase, ThreadText};
use casebot_drafting::decide::{self, AnalysisState, ThreadMessage, Want};
use casebot_drafting::templates::Templates;
use casebot_drafting::{knowledge, reply};

/// Cases re-decided side by side in one pass (the store has four connections).
const CASES_AT_ONCE: usize = 4;

/// What one drafting pass did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DraftCounts {
    pub created: u64,
    pub updated: u64,
    pub withdrawn: u64,
    pub unchanged: u64,
}

/// What happened to one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Withdrawn,
    Unchanged,
}

/// Why drafting could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Templates(#[from] casebot_drafting::templates::LoadError),
    #[error("the rules in {dir} do not load:\n{errors}")]
    Rules {
        dir: String,
        errors: casebot_analysis::rules::RuleErrors,
    },
}

/// The drafting stage; cheap to clone.
#[derive(Clone)]
pub struct Drafter {
    store: Store,
    rules: Arc<RuleSet>,
    templates: Arc<Templates>,
    config: Arc<Config>,
    /// The stage that hands a case to a new engineer, read once.
    reassign_stage: casebot_core::domain::Stage,
}

impl Drafter {
    pub fn new(store: Store, rules: Arc<RuleSet>, config: Arc<Config>) -> Result<Self, SetupError> {
        let templates = Arc::new(Templates::configured(&config.drafting, &config.base_dir)?);
        Ok(Drafter {
            store,
            rules,
            templates,
            reassign_stage: config.sla.reassignment(),
            config,
        })
    }

    /// With the configured rules (for commands that do not analyse).
    pub fn from_config(store: Store, config: Arc<Config>) -> Result<Self, SetupError> {
        let (dir, loaded) = RuleSet::configured(&config.analysis, &config.base_dir);
        let rules = loaded.map_err(|errors| SetupError::Rules {
            dir: dir.display().to_string(),
            errors,
        })?;
        Self::new(store, Arc::new(rules), config)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Re-decides every case that changed since the last pass.
    pub async fn run(&self) -> Result<DraftCounts> {
        let cursor = self.store.cursor("drafting").await?;
        let (cases, newest) = self.store.cases_changed_since(cursor).await?;
        let mut counts = DraftCounts::default();
        // Most cases need no new draft and cost only reads, which SQLite
        // serves side by side: a few cases at a time, each on its own.
        let mut changes = futures_util::stream::iter(cases)
            .map(|case_row| async move {
                let started = std::time::Instant::now();
                let change = self.redraft_case(case_row).await;
                (change, started.elapsed())
            })
            .buffer_unordered(CASES_AT_ONCE);
        let telemetry = crate::telemetry::metrics();
        while let Some((change, took)) = changes.next().await {
            let change = change?;
            if matches!(change, Change::Created | Change::Updated) {
                telemetry.took(Stage::Drafting, took);
            }
            match change {
                Change::Created => {
                    telemetry.draft(DraftEvent::Created);
                    counts.created += 1
                }
                Change::Updated => {
                    telemetry.draft(DraftEvent::Replaced);
                    counts.updated += 1
                }
                Change::Withdrawn => counts.withdrawn += 1,
                Change::Unchanged => counts.unchanged += 1,
            }
        }
        if newest > cursor {
            self.store.set_cursor("drafting", newest).await?;
        }
        Ok(counts)
    }

    /// Brings one case's pending draft in line with what it calls for.
    pub async fn redraft_case(&self, case_row: i64) -> Result<Change> {
        let Some(input) = self.store.drafting_input(case_row).await? else {
            return Ok(Change::Unchanged);
        };
        let status = input.case.status;
        let thread: Vec<ThreadMessage> = input
            .messages
            .iter()
            .map(|m| ThreadMessage {
                row: m.id,
                direction: m.direction,
                signal: m.signal.get(),
                stage: m.stage_kind.get(),
            })
            .collect();
        let states: Vec<AnalysisState> = input
            .analyses
            .iter()
            .map(|a| AnalysisState {
                message_row: a.message_row,
                analysis_row: a.id,
                status: a.status,
            })
            .collect();
        let want = decide::decide(status, &thread, &states, self.reassign_stage);
        let pending = input
            .drafts
            .iter()
            .find(|d| d.status == DraftStatus::Pending);
        let newest_message = input.messages.last().map(|m| m.id);
        // An engineer's own draft, and an archive notice proposed after the
        // waiting, stand until a new mail arrives.
        if let Some(p) = pending
            && (p.origin == DraftOrigin::Manual || p.kind == DraftKind::Archive)
            && p.basis == manual_basis(p.kind, newest_message)
        {
            return Ok(Change::Unchanged);
        }
        match want {
            Want::Wait(_) => Ok(Change::Unchanged),
            Want::Nothing(reason) => match pending {
                Some(p) if self.store.withdraw_draft(p, reason).await? => Ok(Change::Withdrawn),
                _ => Ok(Change::Unchanged),
            },
            Want::Draft {
                kind,
                trigger,
                basis,
                round,
            } => {
                let handled = input.drafts.iter().any(|d| {
                    d.status != DraftStatus::Pending
                        && (d.basis == basis
                            || matches!(d.status, DraftStatus::Approved | DraftStatus::Failed))
                });
                if handled || pending.is_some_and(|p| p.basis == basis) {
                    return Ok(Change::Unchanged);
                }
                let draft = self
                    .render(
                        &input,
                        kind,
                        Some(trigger),
                        &round,
                        basis,
                        DraftOrigin::Auto,
                    )
                    .await?;
                match pending {
                    Some(p) => {
                        let reason = format!("new evidence: {}", draft.basis);
                        Ok(if self.store.replace_pending(p, &draft, &reason).await? {
                            Change::Updated
                        } else {
                            Change::Unchanged
                        })
                    }
                    None => {
                        let reason = format!("the case calls for a {} reply", kind.as_str());
                        Ok(
                            if self.store.create_draft(&draft, &reason).await?.is_some() {
                                Change::Created
                            } else {
                                Change::Unchanged
                            },
                        )
                    }
                }
            }
        }
    }

    /// The text modules of a draft's language, each rendered against the
    /// context the draft was written from (a module that names what the
    /// context lacks says so instead).
    pub fn snippets(&self, d: &DraftRow) -> Vec<Snippet> {
        let context = d.facts().get("context").cloned().unwrap_or_default();
        self.templates
            .snippets(&d.language)
            .into_iter()
            .map(
                |name| match self.templates.render_snippet(&d.language, &name, &context) {
                    Ok(text) => Snippet {
                        name,
                        text: Some(text),
                        error: None,
                    },
                    Err(e) => Snippet {
                        name,
                        text: None,
                        error: Some(e.message),
                    },
                },
            )
            .collect()
    }

    /// The case owner's profile as the reply's signer, when the owner is an
    /// enabled desk account; `None` signs with the configured engineer.
    async fn signer_for(&self, case_row: i64) -> Result<Option<context::Engineer>> {
        let Some(owner) = self.store.case_owner(case_row).await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .user_for_owner(&owner)
            .await?
            .filter(|u| !u.disabled)
            .map(|u| self.signer_of(u)))
    }

    /// How `user` signs: their display name (else account name), their
    /// signature lines (else the desk's), and their phone.
    fn signer_of(&self, user: casebot_store::users::User) -> context::Engineer {
        let mut lines = if user.signature_lines.is_empty() {
            self.config.drafting.signature_lines.clone()
        } else {
            user.signature_lines
        };
        if let Some(phone) = user.phone
            && !lines.iter().any(|l| l.contains(&phone))
        {
            lines.push(phone);
        }
        context::Engineer {
            name: user.display_name.unwrap_or(user.name),
            signature_lines: lines,
        }
    }

    /// Proposes the archive notice (暂时归档) for every case that has waited
    /// on the customer for its priority's `archive_after` business days
    /// since the desk's last mail, once per such wait: a new mail starts a
    /// new wait, and replaces a pending notice with what the case then
    /// calls for. Returns how many were drafted.
    pub async fn propose_archives(
        &self,
        policies: &casebot_core::sla::SlaPolicies,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize> {
        let settings = &self.config.drafting;
        let shortest = settings
            .archive_after_priority
            .values()
            .copied()
            .chain(std::iter::once(settings.archive_after))
            .filter(|d| *d > 0)
            .min();
        let Some(shortest) = shortest else {
            return Ok(0);
        };
        // A business day is never shorter than a calendar day: waits
        // shorter than that many calendar days cannot be due.
        let before = now.timestamp() - i64::from(shortest) * 86_400;
        let mut proposed = 0;
        for case_row in self.store.cases_waiting_on_customer_before(before).await? {
            let Some(input) = self.store.drafting_input(case_row).await? else {
                continue;
            };
            let Some(newest) = input.messages.last() else {
                continue;
            };
            let basis = manual_basis(DraftKind::Archive, Some(newest.id));
            if input
                .drafts
                .iter()
                .any(|d| d.status == DraftStatus::Pending || d.basis == basis)
            {
                continue;
            }
            let policy = policies.policy_for(input.case.priority.as_deref());
            let after = settings
                .archive_after_priority
                .get(&policy.priority)
                .copied()
                .unwrap_or(settings.archive_after);
            let since = chrono::DateTime::from_timestamp(newest.date_utc, 0).unwrap_or(now);
            let waited = policy.calendar.minutes_between(since, now);
            if !decide::archive_due(
                input.case.status,
                waited,
                policy.calendar.day_minutes(),
                after,
            ) {
                continue;
            }
            let draft = self
                .render(
                    &input,
                    DraftKind::Archive,
                    None,
                    &[],
                    basis,
                    DraftOrigin::Auto,
                )
                .await?;
            let reason = format!("the case has waited on the customer {after} business days");
            if self.store.create_draft(&draft, &reason).await?.is_some() {
                crate::telemetry::metrics().draft(DraftEvent::Created);
                proposed += 1;
            }
        }
        Ok(proposed)
    }

    /// An engineer asks for a draft of `kind` (an archive notice, or another
    /// kind than the stage chose); it replaces the case's pending draft.
    pub async fn draft_on_request(
        &self,
        case_key: &str,
        kind: DraftKind,
        by: &str,
    ) -> Result<Option<DraftRow>> {
        let Some(case) = self.store.find_case(case_key).await? else {
            return Ok(None);
        };
        let Some(input) = self.store.drafting_input(case.id).await? else {
            return Ok(None);
        };
        let newest = input.messages.last().map(|m| m.id);
        let trigger = input
            .messages
            .iter()
            .rev()
            .find(|m| m.direction == Direction::Customer)
            .map(|m| m.id);
        let draft = self
            .render(
                &input,
                kind,
                trigger,
                &[],
                manual_basis(kind, newest),
                DraftOrigin::Manual,
            )
            .await?;
        let reason = format!("requested by {by}");
        let id = match input
            .drafts
            .iter()
            .find(|d| d.status == DraftStatus::Pending)
        {
            Some(p) => {
                anyhow::ensure!(
                    self.store.replace_pending(p, &draft, &reason).await?,
                    "draft {} changed while drafting; try again",
                    p.id
                );
                p.id
            }
            None => self
                .store
                .create_draft(&draft, &reason)
                .await?
                .ok_or_else(|| anyhow::anyhow!("another pending draft appeared; try again"))?,
        };
        crate::telemetry::metrics().draft(DraftEvent::Created);
        self.store.draft(id).await
    }

    /// Renders a draft of `kind` for the case in `input`.
    async fn render(
        &self,
        input: &DraftingInput,
        kind: DraftKind,
        trigger: Option<i64>,
        round: &[i64],
        basis: String,
        origin: DraftOrigin,
    ) -> Result<NewDraft> {
        let case = &input.case;
        let subjects: Vec<ParsedSubject> = input
            .messages
            .iter()
            .map(|m| serde_json::from_str(&m.subject_json).unwrap_or_default())
            .collect();
        let human: Vec<&casebot_store::drafts::ThreadRow> = input
            .messages
            .iter()
            .filter(|m| matches!(m.direction, Direction::Customer | Direction::Engineer))
            .collect();
        let texts: Vec<ThreadText> = human
            .iter()
            .map(|m| ThreadText {
                direction: m.direction,
                from_name: m.from_name.clone(),
                signal: m.signal.get(),
                new_text: m.new_text.clone(),
            })
            .collect();
        let parent = trigger.and_then(|t| human.iter().position(|m| m.id == t));
        let customer_text = human
            .iter()
            .rev()
            .find(|m| m.direction == Direction::Customer)
            .map(|m| m.new_text.as_str());
        let lang = reply::language(
            &self.config.drafting.language,
            customer_text,
            case.title.as_deref(),
        );

        let conclusions: Vec<(i64, Conclusion)> = input
            .analyses
            .iter()
            .filter(|a| a.status.has_report())
            .filter_map(|a| Some((a.message_row, conclusion_of(a)?)))
            .collect();
        let (conclusion, last_failure) = pick_conclusions(&conclusions, round, kind);
        let similar = match (kind, conclusion) {
            (DraftKind::Scope | DraftKind::NextSteps, Some(c)) => {
                self.similar(c, case.id, lang).await?
            }
            _ => Vec::new(),
        };
        let case_input = CaseInput {
            key: case.key.clone(),
            number: case.case_id.clone(),
            title: case.title.clone(),
            priority: case.priority.clone(),
            customer: case.customer.clone(),
            internal_ref: case.internal_ref.clone(),
            title_kbs: title_kbs(&subjects),
        };
        let number = case.case_id.clone().unwrap_or_else(|| case.key.clone());
        let inputs = Inputs {
            kind,
            lang,
            case: &case_input,
            thread: &texts,
            parent,
            conclusion,
            last_failure,
            similar,
            rules: &self.rules,
            settings: &self.config.drafting,
            portal_password: portal_password(&self.config, &number),
            signer: self.signer_for(case.id).await?,
        };
        let ctx = context::build(&inputs);
        let body = self.templates.render(&ctx)?;

        let envelope_thread = envelope_thread(input, subjects);
        let parent_index = trigger.and_then(|t| input.messages.iter().position(|m| m.id == t));
        let envelope = reply::envelope(
            &envelope_thread,
            parent_index,
            case.case_id.as_deref(),
            &self.config.drafting.reply_prefix,
            &self.config.desk,
            self.config.drafting.max_recipients.max(1),
        );
        let mut facts = facts(&ctx, last_failure.or(conclusion), &texts);
        // What the text modules the engineer inserts are rendered against.
        facts["context"] = serde_json::to_value(&ctx)?;
        if envelope.omitted > 0 {
            // Shown to the engineer with the draft; never in the reply.
            facts["omitted_recipients"] = envelope.omitted.into();
        }
        Ok(NewDraft {
            case_row: case.id,
            kind,
            origin,
            basis,
            trigger,
            language: lang.tag(),
            subject: envelope.subject,
            body,
            facts,
            to: envelope.to,
            cc: envelope.cc,
            in_reply_to: envelope.in_reply_to,
            references: envelope.references,
        })
    }

    /// Closed cases whose failure looks like `conclusion`, best first.
    pub async fn similar(
        &self,
        conclusion: &Conclusion,
        case_row: i64,
        lang: Lang,
    ) -> Result<Vec<SimilarCase>> {
        crate::overview::similar_cases(&self.store, &self.rules, conclusion, case_row, lang).await
    }

    /// Edits a pending draft's text (and, from the CLI, its subject): the
    /// gate's first door, for the CLI and the web desk alike.
    pub async fn edit(
        &self,
        id: i64,
        by: &str,
        subject: Option<&str>,
        body: &str,
    ) -> Result<DraftRow, GateError> {
        if body.trim().is_empty() {
            return Err(GateError::Refused(format!(
                "draft {id}: the reply is empty (reject the draft instead)"
            )));
        }
        self.store.edit_draft(id, by, subject, body).await
    }

    /// Rejects a pending draft; the reason is kept with it.
    pub async fn reject(&self, id: i64, by: &str, reason: &str) -> Result<DraftRow, GateError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(GateError::Refused(format!(
                "draft {id}: say why it is rejected"
            )));
        }
        let d = self.store.reject_draft(id, by, reason).await?;
        crate::telemetry::metrics().draft(DraftEvent::Rejected);
        Ok(d)
    }

    /// Queues a failed draft for sending again, once an engineer has checked
    /// it was not delivered.
    pub async fn retry(&self, id: i64, by: &str) -> Result<DraftRow, GateError> {
        self.store.retry_draft(id, by).await
    }

    /// Approves a draft (the CLI and the web desk both come here), after
    /// checking its text (see [`check`]): errors refuse it, warnings too
    /// unless `accept_warnings`, and the warnings accepted are recorded with
    /// the approval. A closure records what the case taught in the same
    /// transaction.
    pub async fn approve(
        &self,
        id: i64,
        by: &str,
        revision: Option<i64>,
        accept_warnings: bool,
    ) -> Result<DraftRow, GateError> {
        let (revision, signers) = self.sign(id, by, revision).await?;
        let domain = self.config.outbox.domain().to_string();
        let now = chrono::Utc::now();
        self.store
            .approve_draft(
                id,
                by,
                revision,
                |d| self.check_before_approval(d, &signers, accept_warnings),
                |d| {
                    let seed = format!(
                        "{}/{}/{}/{}",
                        d.id,
                        d.revision,
                        now.timestamp_nanos_opt().unwrap_or(0),
                        std::process::id()
                    );
                    reply::mint_message_id(&d.case_key, &seed, &domain)
                },
                learned_from,
            )
            .await
            .inspect(|_| crate::telemetry::metrics().draft(DraftEvent::Approved))
    }

    /// Puts the right signature at the end of the text before it is
    /// approved, as a recorded edit: the case owner's now (they may have
    /// been assigned after the draft was written), or with `sign_as =
    /// "approver"` the approver's, when they have an account. A signature
    /// an engineer rewrote is left as it is. Returns the revision to approve
    /// and the names a signature may carry (the configured engineer, the
    /// approver, the owner's and the approver's profile names).
    async fn sign(
        &self,
        id: i64,
        by: &str,
        revision: Option<i64>,
    ) -> Result<(Option<i64>, Vec<String>), GateError> {
        let mut names = vec![self.config.drafting.engineer_name.clone(), by.to_string()];
        let Some(d) = self.store.draft(id).await? else {
            return Err(GateError::NotFound(id));
        };
        if revision.is_some_and(|expected| expected != d.revision) {
            // The gate reports the stale revision in its own words.
            return Ok((revision, names));
        }
        let desk = context::Engineer {
            name: self.config.drafting.engineer_name.clone(),
            signature_lines: self.config.drafting.signature_lines.clone(),
        };
        let owner = self.signer_for(d.case_row).await?;
        let approver = self
            .store
            .user(by)
            .await?
            .filter(|u| !u.disabled)
            .map(|u| self.signer_of(u));
        names.extend(owner.iter().chain(&approver).map(|e| e.name.clone()));
        let wanted = match (self.config.drafting.sign_as, &approver, &owner) {
            (SignAs::Approver, Some(a), _) => a.clone(),
            (_, _, Some(o)) => o.clone(),
            _ => desk.clone(),
        };
        let block = |e: &context::Engineer| {
            std::iter::once(e.name.as_str())
                .chain(e.signature_lines.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let target = block(&wanted);
        let found = [Some(desk), owner, approver]
            .into_iter()
            .flatten()
            .map(|e| block(&e))
            .filter(|b| *b != target)
            .filter_map(|b| d.body.rfind(&b).map(|at| (at, b)))
            .max_by_key(|(at, _)| *at);
        // Only a signature at the end: the same words earlier are text.
        let Some((at, old)) = found.filter(|(at, old)| d.body[at + old.len()..].trim().is_empty())
        else {
            return Ok((revision, names));
        };
        let body = format!("{}{target}{}", &d.body[..at], &d.body[at + old.len()..]);
        let signed = self.store.edit_draft(id, by, None, &body).await?;
        Ok((Some(signed.revision), names))
    }

    /// The approval's check of `d`: the warnings to record, or why not.
    fn check_before_approval(
        &self,
        d: &DraftRow,
        signers: &[String],
        accept_warnings: bool,
    ) -> Result<Vec<String>, casebot_core::domain::Refusal> {
        let lang = Lang::parse(&d.language).unwrap_or(Lang::Zh);
        let expected = |signer: &str| {
            check::check_reply(
                &d.subject,
                &d.body,
                &check::Expected {
                    fill_ins: self.templates.fill_ins(lang.tag()),
                    signer,
                    lang,
                },
            )
        };
        // Signed by the configured engineer (the template's signature) or
        // by whoever approves it, who may have put their own name.
        let problems = signers
            .iter()
            .map(|signer| expected(signer))
            .min_by_key(Vec::len)
            .unwrap_or_default();
        let refused = problems
            .iter()
            .any(|p| p.level == check::Level::Error || !accept_warnings);
        if refused {
            let mut problems = problems;
            // Errors first: they are what must change.
            problems.sort_by_key(|p| p.level != check::Level::Error);
            return Err(casebot_core::domain::Refusal {
                draft: d.id,
                problems,
            });
        }
        let warnings = problems.iter().map(ToString::to_string).collect();
        Ok(warnings)
    }
}

/// A text module as the editor offers it: `::name` inserts `text`.
#[derive(Debug, Clone, Serialize)]
pub struct Snippet {
    pub name: String,
    pub text: Option<String>,
    /// Why it cannot be used with this draft (strict rendering).
    pub error: Option<String>,
}

/// The conclusion a reply speaks of: the newest that concluded something in
/// this round of mails (else the newest of the round); a closure or archive
/// mail falls back on the case's last failure, which is returned as well.
fn pick_conclusions<'c>(
    conclusions: &'c [(i64, Conclusion)],
    round: &[i64],
    kind: DraftKind,
) -> (Option<&'c Conclusion>, Option<&'c Conclusion>) {
    let concluded = |c: &Conclusion| c.settled();
    let in_round = |row: &i64| round.is_empty() || round.contains(row);
    let conclusion = conclusions
        .iter()
        .rev()
        .filter(|(row, _)| in_round(row))
        .find(|(_, c)| concluded(c))
        .or_else(|| conclusions.iter().rev().find(|(row, _)| in_round(row)))
        .map(|(_, c)| c);
    let last_failure = conclusions
        .iter()
        .rev()
        .find(|(_, c)| c.outcome.as_str() == "failure")
        .map(|(_, c)| c);
    let conclusion = match kind {
        DraftKind::Closure | DraftKind::Archive => conclusion.or(last_failure),
        _ => conclusion,
    };
    (conclusion, last_failure)
}

/// The thread as reply headers are drawn from it.
fn envelope_thread(
    input: &DraftingInput,
    subjects: Vec<ParsedSubject>,
) -> Vec<reply::EnvelopeMessage> {
    let addresses = |json: &str| -> Vec<String> {
        serde_json::from_str::<Vec<Mailbox>>(json)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|b| b.address)
            .collect()
    };
    input
        .messages
        .iter()
        .zip(subjects)
        .map(|(m, subject)| reply::EnvelopeMessage {
            message_id: m.message_id.clone(),
            synthesized: m.message_id_synthesized != 0,
            direction: m.direction,
            from: m.from_address.clone(),
            to: addresses(&m.to_json),
            cc: addresses(&m.cc_json),
            base_subject: subject.base_subject,
            case_number: subject.case_id,
        })
        .collect()
}

/// The manual draft's basis: its kind and the newest mail it saw.
fn manual_basis(kind: DraftKind, newest_message: Option<i64>) -> String {
    format!("manual:{kind}:m{}", newest_message.unwrap_or(0))
}

fn conclusion_of(a: &AnalysisView) -> Option<Conclusion> {
    serde_json::from_value(a.report.clone()?).ok()
}

/// KBs named in the thread's subjects, first mention first.
fn title_kbs(subjects: &[ParsedSubject]) -> Vec<String> {
    let mut kbs: Vec<String> = Vec::new();
    for kb in subjects.iter().flat_map(|s| &s.kbs) {
        if !kbs.contains(kb) {
            kbs.push(kb.clone());
        }
    }
    kbs
}

/// The facts a draft was made from: what a closure leaves as knowledge.
fn facts(
    ctx: &context::ReplyContext,
    failure: Option<&Conclusion>,
    thread: &[ThreadText],
) -> serde_json::Value {
    let signature = failure.and_then(knowledge::signature);
    let customer_words = thread
        .iter()
        .rev()
        .find(|m| m.direction == Direction::Customer && m.signal == Some(MailSignal::Resolution))
        .and_then(|m| context::customer_words(&m.new_text));
    serde_json::json!({
        "problem": ctx.problem,
        "kbs": ctx.case.kbs,
        "signature": signature,
        "customer_words": customer_words,
    })
}

/// What an approved closure teaches, when its case had a failure to learn from.
fn learned_from(d: &DraftRow) -> Option<NewKnowledge> {
    if d.kind != DraftKind::Closure {
        return None;
    }
    let facts = d.facts();
    let sig: knowledge::Signature = serde_json::from_value(facts.get("signature")?.clone()).ok()?;
    let customer_words = facts
        .get("customer_words")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let resolution = context::stated_resolution(&d.body)
        .or_else(|| customer_words.clone())
        .unwrap_or_default();
    let kbs = facts
        .get("kbs")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    Some(NewKnowledge {
        case_row: d.case_row,
        case_key: d.case_number.clone().unwrap_or_else(|| d.case_key.clone()),
        draft_id: Some(d.id),
        class: sig.class,
        rule: sig.rule,
        error_codes: sig.codes,
        component: sig.component,
        package: sig.package,
        kbs,
        problem: facts
            .get("problem")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
        resolution,
        customer_words,
    })
}

/// The per-case upload password: HMAC-SHA256 of the case number under the
/// secret in the configured environment variable, so the portal can derive
/// the same one. `None` when the secret is not set.
pub fn portal_password(config: &Config, case_number: &str) -> Option<String> {
    let secret = std::env::var(&config.drafting.portal.secret_env).ok()?;
    if secret.is_empty() {
        return None;
    }
    let mac = hmac_sha256(
        secret.as_bytes(),
        case_number.to_ascii_uppercase().as_bytes(),
    );
    // No look-alike characters: the customer may type it from a phone call.
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    Some(
        mac.as_ref()
            .iter()
            .take(12)
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect(),
    )
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> ring::hmac::Tag {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
