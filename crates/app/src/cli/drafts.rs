//! The approval gate on the command line: list, read, edit, approve, reject
//! and send drafts; check the templates; read and correct the knowledge.

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{Failure, fail, load_rules, open_store, output};
use crate::config::Config;
use crate::outbox::Outbox;
use crate::stages::drafting::Drafter;
use crate::stages::filing::Pipeline;
use casebot_core::domain::{DraftKind, DraftStatus};
use casebot_store::drafts::{DraftFilter, DraftRow, GateError};
use casebot_store::knowledge::KnowledgeEdit;

#[derive(Debug, Args)]
pub struct DraftsArgs {
    /// Only drafts in this status.
    #[arg(long, value_parser = super::word::<DraftStatus>())]
    pub status: Option<DraftStatus>,
    /// Only drafts of this case (number, thread key or row id).
    #[arg(long, value_name = "KEY")]
    pub case: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// Who acts: `--as NAME`, or the CASEBOT_ENGINEER environment variable.
#[derive(Debug, Args)]
pub struct Actor {
    /// The engineer's name, recorded in the case's audit trail.
    #[arg(long = "as", value_name = "NAME", env = "CASEBOT_ENGINEER")]
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum DraftCommand {
    /// Show one draft: headers, text, and where it stands.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Edit a pending draft's text in $EDITOR (or take it from --file / stdin).
    Edit {
        id: i64,
        #[command(flatten)]
        actor: Actor,
        /// Read the new text from this file (`-` for standard input) instead of opening $EDITOR.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// A new subject as well (keep the partner's case tag in it).
        #[arg(long)]
        subject: Option<String>,
        /// The draft as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Draft a reply of the given kind for a case now (e.g. an archive
    /// notice); it replaces the case's pending draft.
    New {
        /// Case number, thread key or row id.
        case: String,
        /// The kind of reply: a template's, or `free` (greeting, your words
        /// in place of <TEXT>, signature).
        #[arg(long, value_parser = super::word::<DraftKind>())]
        kind: DraftKind,
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        json: bool,
    },
    /// The text modules (templates/snippets/<lang>/) rendered for a draft.
    Snippets {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Queue a failed draft for sending again (after checking it was not delivered).
    Retry {
        id: i64,
        #[command(flatten)]
        actor: Actor,
        /// The draft as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    pub id: i64,
    #[command(flatten)]
    pub actor: Actor,
    /// Approve only if the draft is still at this revision (the one you read).
    #[arg(long)]
    pub revision: Option<i64>,
    /// Send it right away instead of leaving it to the daemon.
    #[arg(long)]
    pub send: bool,
    /// Approve although the check found warnings (no greeting, no
    /// signature); recorded with the approval. Errors always refuse.
    #[arg(long)]
    pub accept_warnings: bool,
    /// The draft as JSON on stdout (after the send, with `--send`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    pub id: i64,
    #[command(flatten)]
    pub actor: Actor,
    /// Why; recorded with the rejection.
    #[arg(long)]
    pub reason: String,
    /// The draft as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Render every template against sample cases; list every error.
    Check {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KnowledgeCommand {
    /// What closed cases taught: class, error signature, what fixed it.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One entry, by id or case number.
    Show {
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Correct an entry.
    Edit {
        id: i64,
        #[command(flatten)]
        actor: Actor,
        /// What fixed it, as it should be suggested to later cases.
        #[arg(long)]
        resolution: Option<String>,
        /// The root-cause class (see rules/classes.toml).
        #[arg(long)]
        class: Option<String>,
        #[arg(long)]
        problem: Option<String>,
        /// The corrected entry as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn gate_failure(e: GateError) -> Failure {
    match e {
        GateError::NotFound(_) => fail(3, e.into()),
        GateError::WrongStatus { .. }
        | GateError::Stale { .. }
        | GateError::Refused(_)
        | GateError::Unfit(_) => fail(4, e.into()),
        GateError::Store(e) => Failure::from(e),
    }
}

async fn drafter(config: &Arc<Config>) -> Result<Drafter, Failure> {
    let store = open_store(config).await?;
    Drafter::from_config(store, config.clone()).map_err(|e| fail(2, e.into()))
}

pub async fn list(config: &Arc<Config>, args: DraftsArgs) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    let case_row = match &args.case {
        Some(key) => Some(
            store
                .find_case(key)
                .await?
                .ok_or_else(|| fail(3, anyhow::anyhow!("no case {key:?} in the store")))?
                .id,
        ),
        None => None,
    };
    let drafts = store
        .list_drafts(&DraftFilter {
            status: args.status,
            case_row,
        })
        .await?;
    let views: Vec<_> = drafts.iter().map(DraftRow::view).collect();
    if args.json {
        output::json(&views)?;
    } else {
        output::drafts_table(&views);
    }
    Ok(0)
}

pub async fn draft(config: &Arc<Config>, command: DraftCommand) -> Result<u8, Failure> {
    match command {
        DraftCommand::Show { id, json } => {
            let store = open_store(config).await?;
            let d = store
                .draft(id)
                .await?
                .ok_or_else(|| fail(3, anyhow::anyhow!("no draft {id}")))?;
            if json {
                output::json(&d.view())?;
            } else {
                output::draft_detail(&d.view());
            }
            Ok(0)
        }
        DraftCommand::Edit {
            id,
            actor,
            file,
            subject,
            json,
        } => {
            let store = open_store(config).await?;
            let d = store
                .draft(id)
                .await?
                .ok_or_else(|| fail(3, anyhow::anyhow!("no draft {id}")))?;
            if d.status != DraftStatus::Pending {
                return Err(fail(
                    4,
                    anyhow::anyhow!(
                        "draft {id} is {}, not pending: only a pending draft can be edited",
                        d.status
                    ),
                ));
            }
            let body = match file {
                Some(path) if path.as_os_str() == "-" => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .context("Cannot read the new text from standard input")?;
                    text
                }
                Some(path) => std::fs::read_to_string(&path)
                    .with_context(|| format!("Cannot read {}", path.display()))?,
                None => edit_in_editor(&d.body)?,
            };
            if body.trim().is_empty() {
                return Err(fail(
                    4,
                    anyhow::anyhow!(
                        "the new text is empty; nothing changed (reject the draft instead)"
                    ),
                ));
            }
            if body == d.body && subject.as_ref().is_none_or(|s| *s == d.subject) {
                if json {
                    output::json(&d.view())?;
                }
                eprintln!("draft {id}: no change");
                return Ok(0);
            }
            let d = drafter(config)
                .await?
                .edit(id, &actor.name, subject.as_deref(), &body)
                .await
                .map_err(gate_failure)?;
            if json {
                output::json(&d.view())?;
            }
            eprintln!(
                "draft {id}: edited by {} (revision {})",
                actor.name, d.revision
            );
            Ok(0)
        }
        DraftCommand::New {
            case,
            kind,
            actor,
            json,
        } => {
            let drafter = drafter(config).await?;
            let d = drafter
                .draft_on_request(&case, kind, &actor.name)
                .await?
                .ok_or_else(|| fail(3, anyhow::anyhow!("no case {case:?} in the store")))?;
            if json {
                output::json(&d.view())?;
            } else {
                output::draft_detail(&d.view());
            }
            Ok(0)
        }
        DraftCommand::Snippets { id, json } => {
            let drafter = drafter(config).await?;
            let d = drafter
                .store()
                .draft(id)
                .await?
                .ok_or_else(|| fail(3, anyhow::anyhow!("no draft {id}")))?;
            let snippets = drafter.snippets(&d);
            if json {
                output::json(&snippets)?;
            } else {
                for s in &snippets {
                    match (&s.text, &s.error) {
                        (Some(text), _) => println!("::{}\n{text}\n", s.name),
                        (None, error) => println!(
                            "::{} (not for this draft: {})\n",
                            s.name,
                            error.as_deref().unwrap_or("")
                        ),
                    }
                }
            }
            Ok(0)
        }
        DraftCommand::Retry { id, actor, json } => {
            let d = drafter(config)
                .await?
                .retry(id, &actor.name)
                .await
                .map_err(gate_failure)?;
            if json {
                output::json(&d.view())?;
            }
            eprintln!("draft {id}: queued for sending again");
            Ok(0)
        }
    }
}

/// Opens $VISUAL or $EDITOR (else vi) on the text; returns what was saved.
fn edit_in_editor(text: &str) -> Result<String, Failure> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let file = tempfile::Builder::new()
        .prefix("casebot-draft-")
        .suffix(".txt")
        .tempfile()
        .context("Cannot create a temporary file for the editor")?;
    std::fs::write(file.path(), text).context("Cannot write the draft for the editor")?;
    // The editor setting may carry arguments (`code --wait`).
    let mut parts = editor.split_whitespace();
    let program = parts.next().unwrap_or("vi");
    let status = std::process::Command::new(program)
        .args(parts)
        .arg(file.path())
        .status()
        .with_context(|| format!("Cannot start the editor {editor:?}"))?;
    if !status.success() {
        return Err(fail(
            4,
            anyhow::anyhow!("the editor {editor:?} exited with {status}; nothing changed"),
        ));
    }
    Ok(std::fs::read_to_string(file.path()).context("Cannot read the edited draft")?)
}

pub async fn approve(config: &Arc<Config>, args: ApproveArgs) -> Result<u8, Failure> {
    let drafter = drafter(config).await?;
    let d = drafter
        .approve(
            args.id,
            &args.actor.name,
            args.revision,
            args.accept_warnings,
        )
        .await
        .map_err(gate_failure)?;
    eprintln!(
        "draft {}: approved by {} ({} for case {}, Message-ID <{}>)",
        d.id,
        args.actor.name,
        d.kind,
        d.case_number.as_deref().unwrap_or(&d.case_key),
        d.message_id.as_deref().unwrap_or("")
    );
    if !args.send {
        if args.json {
            output::json(&d.view())?;
        }
        eprintln!("queued: `casebot serve` sends it, or run `casebot send`");
        return Ok(0);
    }
    let code = send(config, false).await?;
    if args.json
        && let Some(sent) = drafter.store().draft(d.id).await?
    {
        output::json(&sent.view())?;
    }
    Ok(code)
}

pub async fn reject(config: &Arc<Config>, args: RejectArgs) -> Result<u8, Failure> {
    if args.reason.trim().is_empty() {
        return Err(fail(2, anyhow::anyhow!("--reason must say why")));
    }
    let d = drafter(config)
        .await?
        .reject(args.id, &args.actor.name, &args.reason)
        .await
        .map_err(gate_failure)?;
    if args.json {
        output::json(&d.view())?;
    }
    eprintln!("draft {}: rejected by {}", args.id, args.actor.name);
    Ok(0)
}

/// Sends every approved draft that is due, once.
pub async fn send(config: &Arc<Config>, json: bool) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    let pipeline = Pipeline::new(store, config.clone())?;
    let sign_ins = crate::oauth::SignIns::new(config, pipeline.store())?;
    let counts = Outbox::new(pipeline, config.clone(), sign_ins)
        .send_due()
        .await?;
    if json {
        output::json_line(&counts)?;
    }
    eprintln!(
        "sent {}, retrying later {}, failed {}",
        counts.sent, counts.retrying, counts.failed
    );
    Ok(if counts.failed > 0 { 1 } else { 0 })
}

pub fn templates_check(config: &Arc<Config>, json: bool) -> Result<u8, Failure> {
    let rules = load_rules(config)?;
    let (origin, problems) = match casebot_drafting::templates::Templates::configured(
        &config.drafting,
        &config.base_dir,
    ) {
        Ok(t) => (
            t.origin.display().to_string(),
            t.check(&rules, &config.drafting),
        ),
        Err(e) => (e.origin.clone(), e.problems),
    };
    let samples = casebot_drafting::templates::samples(&rules, &config.drafting).len();
    if json {
        output::json(
            &json!({"ok": problems.is_empty(), "dir": origin, "renders": samples, "errors": problems}),
        )?;
    } else if problems.is_empty() {
        println!("{origin}: {samples} renders (every kind × language × sample case): OK");
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!("{} problem(s) in {origin}", problems.len());
    }
    Ok(if problems.is_empty() { 0 } else { 2 })
}

pub async fn knowledge(config: &Arc<Config>, command: KnowledgeCommand) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    match command {
        KnowledgeCommand::List { json } => {
            let entries = store.knowledge_list().await?;
            if json {
                output::json(&entries)?;
            } else {
                output::knowledge_table(&entries);
            }
        }
        KnowledgeCommand::Show { key, json } => {
            let entry = store
                .knowledge_entry(&key)
                .await?
                .ok_or_else(|| fail(3, anyhow::anyhow!("no knowledge entry {key:?}")))?;
            if json {
                output::json(&entry)?;
            } else {
                output::knowledge_detail(&entry);
            }
        }
        KnowledgeCommand::Edit {
            id,
            actor,
            resolution,
            class,
            problem,
            json,
        } => {
            if let Some(class) = &class {
                let (_, rules) = casebot_analysis::rules::RuleSet::configured(
                    &config.analysis,
                    &config.base_dir,
                );
                let known = rules.map(|r| r.classes.contains_key(class)).unwrap_or(true);
                if !known {
                    return Err(fail(
                        2,
                        anyhow::anyhow!("--class {class:?} is not a class of rules/classes.toml"),
                    ));
                }
            }
            let edit = KnowledgeEdit {
                class,
                resolution,
                problem,
            };
            let entry = store
                .knowledge_edit(id, &edit, &actor.name)
                .await?
                .ok_or_else(|| fail(3, anyhow::anyhow!("no knowledge entry {id}")))?;
            if json {
                output::json(&entry)?;
            }
            eprintln!("knowledge entry {id}: corrected by {}", actor.name);
        }
    }
    Ok(0)
}
