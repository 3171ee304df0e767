//! `casebot move`, `split`, `merge` and `undo`: fixing misfiled mail from
//! the command line, each recorded with who and why in both cases' audit
//! trails, each undoable by the event it prints; and `close`, `reopen` and
//! `priority`, a case's status and priority set by hand.

use std::sync::Arc;

use anyhow::anyhow;
use clap::Args;

use super::{Failure, fail, open_store, output};
use crate::config::Config;
use casebot_store::Store;
use casebot_store::regroup::{Destination, Moved};

/// Who does it and why (both required: the audit trail keeps them).
#[derive(Debug, Args)]
pub struct Why {
    /// Who does it (a desk account's name).
    #[arg(long = "as", value_name = "NAME")]
    pub by: String,
    /// Why: kept in both cases' audit trails.
    #[arg(long)]
    pub reason: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MoveArgs {
    /// The mails to move: row ids (as `show --json` lists them) or Message-IDs.
    #[arg(required = true)]
    pub mails: Vec<String>,
    /// The case they belong to.
    #[arg(long, conflicts_with = "new", required_unless_present = "new")]
    pub to: Option<String>,
    /// Into a new case of their own.
    #[arg(long)]
    pub new: bool,
    #[command(flatten)]
    pub why: Why,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// The case to split.
    pub case: String,
    /// The first mail of the new case (row id or Message-ID); it and every
    /// later mail move.
    #[arg(long)]
    pub at: String,
    #[command(flatten)]
    pub why: Why,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The case that goes away: its mails move, its key finds the other.
    pub from: String,
    /// The case that stays.
    pub into: String,
    #[command(flatten)]
    pub why: Why,
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The event a move, split or merge printed.
    pub event: i64,
    #[command(flatten)]
    pub why: Why,
}

#[derive(Debug, Args)]
pub struct CaseArgs {
    /// Case number, thread key or row id.
    pub case: String,
    #[command(flatten)]
    pub why: Why,
}

#[derive(Debug, Args)]
pub struct PriorityArgs {
    /// Case number, thread key or row id.
    pub case: String,
    /// P1 to P4: it stands over the partner's subject tag.
    #[arg(required_unless_present = "clear", conflicts_with = "clear")]
    pub priority: Option<String>,
    /// Give the priority back to the subjects.
    #[arg(long)]
    pub clear: bool,
    #[command(flatten)]
    pub why: Why,
}

/// `close` and `reopen`: a status set by hand; the next mail goes on from it.
pub async fn status_cmd(
    config: &Arc<Config>,
    args: CaseArgs,
    status: casebot_core::domain::CaseStatus,
) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    let change = store
        .set_case_status(&args.case, status, &args.why.by, &args.why.reason)
        .await
        .map_err(refused)?;
    changed(&change, args.why.json)
}

pub async fn priority_cmd(config: &Arc<Config>, args: PriorityArgs) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    let change = store
        .set_case_priority(
            &args.case,
            args.priority.as_deref(),
            &args.why.by,
            &args.why.reason,
        )
        .await
        .map_err(refused)?;
    changed(&change, args.why.json)
}

fn changed(change: &casebot_store::regroup::CaseChange, json: bool) -> Result<u8, Failure> {
    if json {
        output::json(change)?;
    } else {
        println!(
            "{}: {} {} → {}",
            change.case,
            change.what,
            change.from.as_deref().unwrap_or("–"),
            change.to.as_deref().unwrap_or("–")
        );
    }
    Ok(0)
}

/// A mail's row from a row id or a Message-ID (with or without `<>`).
async fn mail_row(store: &Store, mail: &str) -> Result<i64, Failure> {
    if let Ok(row) = mail.trim().parse::<i64>() {
        return Ok(row);
    }
    let id = mail.trim().trim_start_matches('<').trim_end_matches('>');
    let row: Option<i64> = sqlx::query_scalar("SELECT id FROM messages WHERE message_id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(anyhow::Error::from)?;
    row.ok_or_else(|| fail(3, anyhow!("no mail {mail}")))
}

fn report(moved: &Moved, json: bool) -> Result<u8, Failure> {
    if json {
        output::json(moved)?;
    } else {
        let undo = match moved.operation {
            casebot_store::regroup::Operation::Undo => String::new(),
            _ => format!(": `casebot undo {}` moves them back", moved.event),
        };
        println!(
            "{} mail(s) moved from {} to {}{} (event {}{undo})",
            moved.messages.len(),
            moved.from,
            moved.to,
            if moved.new_case { ", a new case" } else { "" },
            moved.event,
        );
    }
    Ok(0)
}

/// A refusal (the mails, the cases, the undo do not allow it) is exit 4.
fn refused(e: anyhow::Error) -> Failure {
    let text = format!("{e:#}");
    if text.starts_with("no case") || text.starts_with("no mail") || text.contains("do not exist") {
        fail(3, e)
    } else {
        fail(4, e)
    }
}

pub async fn move_cmd(config: &Arc<Config>, args: MoveArgs) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    let mut rows = Vec::new();
    for mail in &args.mails {
        rows.push(mail_row(&store, mail).await?);
    }
    let to = match args.to {
        Some(key) => Destination::Case(key),
        None => Destination::NewCase,
    };
    let moved = store
        .move_messages(&rows, to, &args.why.by, &args.why.reason)
        .await
        .map_err(refused)?;
    report(&moved, args.why.json)
}

pub async fn split_cmd(config: &Arc<Config>, args: SplitArgs) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    let at = mail_row(&store, &args.at).await?;
    let moved = store
        .split_case(&args.case, at, &args.why.by, &args.why.reason)
        .await
        .map_err(refused)?;
    report(&moved, args.why.json)
}

pub async fn merge_cmd(config: &Arc<Config>, args: MergeArgs) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    let moved = store
        .merge_cases(&args.from, &args.into, &args.why.by, &args.why.reason)
        .await
        .map_err(refused)?;
    report(&moved, args.why.json)
}

pub async fn undo_cmd(config: &Arc<Config>, args: UndoArgs) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    let moved = store
        .undo_regroup(args.event, &args.why.by, &args.why.reason)
        .await
        .map_err(refused)?;
    report(&moved, args.why.json)
}
