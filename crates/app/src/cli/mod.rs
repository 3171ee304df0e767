//! The command line: `casebot <command>`. Every read command takes `--json`;
//! every command takes `--config PATH`.
//!
//! Exit codes (also in `casebot --help` and docs/desk.md):
//! 0 success · 1 runtime failure (store, I/O) · 2 bad usage or configuration ·
//! 3 not found (case, draft, quarantine entry) · 4 input rejected (a file that
//! is not a mail, a draft not in the state the command needs) · 5 import
//! finished but some mails could not be read.

mod desk;
mod doctor;
mod drafts;
pub mod notifications;
mod operations;
pub mod output;
mod regroup;
mod search;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use casebot_core::domain::CaseStatus;

use crate::config::Config;
use crate::mailbox::import;
use crate::stages::filing::{Counts, Pipeline, Status};
use casebot_core::mail::parse::MailParser;
use casebot_store::Store;

/// The options every command takes. The binary's command line flattens
/// these and [`Command`] into one parser.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file. Without it, ./config.toml is read if present,
    /// else the embedded defaults are used.
    #[arg(long, global = true, value_name = "PATH", env = "CASEBOT_CONFIG")]
    pub config: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// How log lines are written: plain (colour only on a terminal) or json
    /// (one object per line). Default: `[log] format` of the config, else plain.
    #[arg(long, global = true, value_enum, env = "CASEBOT_LOG_FORMAT")]
    pub log_format: Option<crate::config::LogFormat>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch the configured mailboxes, file, analyse and
    /// draft what arrives, and send what engineers approve.
    Serve {
        /// First drop the invented example threads into the configured
        /// Maildir, so a fresh desk has cases and drafts to show.
        #[arg(long)]
        demo: bool,
    },
    /// Import a Maildir, an mbox file, a folder of .eml files or one .eml.
    Import(ImportArgs),
    /// Parse one mail file and show what casebot reads in it (stores nothing).
    Parse(ParseArgs),
    /// List the cases.
    Cases(CasesArgs),
    /// The watched IMAP folders: connection state, UIDVALIDITY, last UID handled.
    Mailboxes {
        #[arg(long)]
        json: bool,
    },
    /// One mailbox's OAuth2 sign-in.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// The `casebot serve` processes on this store: alive or not, and the
    /// leases each holds (which mailbox folders it watches, whether it drafts).
    Instances {
        #[arg(long)]
        json: bool,
    },
    /// Check that everything casebot needs is in place: config, store, rules,
    /// templates, every mailbox, SMTP (nothing is sent), portal, downloads,
    /// the web address. Exit status 0 only when every check passes.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Move mails to another case, or to a new one (--new).
    Move(regroup::MoveArgs),
    /// Split a case: a mail and every later one move to a new case.
    Split(regroup::SplitArgs),
    /// Merge a case into another: its mails move, its key finds the other.
    Merge(regroup::MergeArgs),
    /// Undo a move, split or merge, by the event it printed.
    Undo(regroup::UndoArgs),
    /// Close a case by hand (resolved); the next mail goes on from there.
    Close(regroup::CaseArgs),
    /// Reopen a case by hand (waiting on the desk).
    Reopen(regroup::CaseArgs),
    /// Set a case's priority by hand, over the partner's subject tag (or --clear).
    Priority(regroup::PriorityArgs),
    /// Show one case with its thread and event log.
    Show(ShowArgs),
    /// Full-text search over every mail and analysis (Chinese substrings too),
    /// best match first, one line per case.
    Search(SearchArgs),
    /// Mail that could not be filed: list it or run it through again.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Notices to the desk's people: what was told, and who wants what where.
    #[command(subcommand)]
    Notifications(notifications::NotificationsCommand),
    /// Analyse logs: a file, a folder, a zip or cab bundle, a link, or a case's mail.
    Analyze(AnalyzeArgs),
    /// The rules folder.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// List drafted replies (pending ones wait for an engineer).
    Drafts(drafts::DraftsArgs),
    /// One draft: show, edit, draft anew, retry a failed send.
    #[command(subcommand)]
    Draft(drafts::DraftCommand),
    /// Approve a pending draft for sending (recorded with who and when).
    Approve(drafts::ApproveArgs),
    /// Reject a pending draft, with a reason.
    Reject(drafts::RejectArgs),
    /// Send every approved draft that is due, now (the daemon does this on its own).
    Send {
        /// The counts as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// The reply templates.
    #[command(subcommand)]
    Templates(drafts::TemplatesCommand),
    /// What closed cases taught (their failure and what fixed it).
    #[command(subcommand)]
    Knowledge(drafts::KnowledgeCommand),
    /// Every open case against its SLA, most urgent first; `sla report` for a period's figures.
    Sla(desk::SlaArgs),
    /// Desk accounts for the web desk (engineers and the team lead).
    #[command(subcommand)]
    User(desk::UserCommand),
    /// Give a case to a new owner (the SLA then expects their first mail).
    Assign(desk::AssignArgs),
    /// Add an internal note to a case: for the desk, never sent, never in a draft.
    Note(desk::NoteArgs),
    /// Copy the whole store to a file while the daemon runs (SQLite), or
    /// dump it with pg_dump (PostgreSQL).
    Backup(operations::BackupArgs),
    /// Replace the store with a backup, after checking it (the daemon must
    /// be stopped).
    Restore(operations::RestoreArgs),
    /// Write one case out: its raw mails as mbox, or a zip with the mbox,
    /// case.json (messages, analyses, drafts, events) and the attachments.
    Export(operations::ExportArgs),
    /// Remove the raw mails of long-closed cases (a dry run unless --apply).
    Retention(operations::RetentionArgs),
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A log file, a folder, a .zip/.cab bundle, or an http(s) link.
    #[arg(required_unless_present = "case", conflicts_with = "case")]
    pub target: Option<String>,
    /// Re-analyse every customer mail of this case (number, thread key or id) and store the result.
    #[arg(long, value_name = "KEY")]
    pub case: Option<String>,
    /// Language of explanations and next steps; default from config.
    #[arg(long, value_parser = ["zh-CN", "en"])]
    pub lang: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load and check every rule, class and next step; list every problem with file and line.
    Check {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Maildir, mbox file, folder of .eml files, or one .eml file.
    pub path: PathBuf,
    /// One JSON object per mail on stdout; counts on stderr.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// An .eml file (RFC 5322 message).
    pub file: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CasesArgs {
    /// Only cases with this status.
    #[arg(long, value_parser = word::<CaseStatus>())]
    pub status: Option<CaseStatus>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The words to find: every one must occur (Chinese: any part of the
    /// text of two or more characters; other words also by their start).
    #[arg(required = true)]
    pub words: Vec<String>,
    /// Only cases with this status.
    #[arg(long, value_parser = word::<CaseStatus>())]
    pub status: Option<CaseStatus>,
    /// Only cases owned by this account (its name or address).
    #[arg(long)]
    pub owner: Option<String>,
    #[arg(long)]
    pub priority: Option<String>,
    /// Part of the customer's name.
    #[arg(long)]
    pub customer: Option<String>,
    /// Mails from this date or instant on (the desk's time zone).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Mails before this date or instant.
    #[arg(long, value_name = "DATE")]
    pub before: Option<String>,
    /// Cases shown at most.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Case number (CAS-08268-Z0X4W9), thread key (T-…) or row id.
    pub key: String,
    /// Page of the thread to show (1 is the oldest; default: the newest).
    #[arg(long)]
    pub page: Option<u32>,
    /// Mails per page (at most 200).
    #[arg(long, default_value_t = casebot_store::cases::PageRequest::DEFAULT_PER_PAGE)]
    pub per_page: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Sign a mailbox in (OAuth2 device sign-in): prints the address to open
    /// and the code to type there, waits for the person to approve, and
    /// keeps the refresh token (encrypted) so the daemon can log in.
    Login {
        /// The mailbox's name in config.toml.
        name: String,
        /// The address and code as one JSON line on standard output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined mail with the reason.
    List {
        /// Include mail that a replay already filed.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Run quarantined mail through the pipeline again (after a fix or a config change).
    Replay {
        /// Quarantine entry ids; none means all entries still quarantined.
        ids: Vec<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Decide not to file a quarantined mail (spam, a test): it leaves the
    /// list, its bytes stay, who and why are recorded.
    Discard {
        id: i64,
        /// Why it is not filed.
        #[arg(long)]
        reason: String,
        /// Who decides (a desk account's name).
        #[arg(long = "as", value_name = "NAME")]
        by: String,
        #[arg(long)]
        json: bool,
    },
}

/// A word of the domain an option takes (`--status waiting_on_us`).
pub trait Word: Copy + Send + Sync + 'static {
    const ALL: &'static [Self];
    fn word(self) -> &'static str;
}

macro_rules! words {
    ($($name:ty),*) => {$(
        impl Word for $name {
            const ALL: &'static [Self] = &<$name>::ALL;
            fn word(self) -> &'static str {
                self.as_str()
            }
        }
    )*};
}
impl Word for crate::i18n::UiLang {
    const ALL: &'static [Self] = &crate::i18n::UiLang::ALL;
    fn word(self) -> &'static str {
        self.tag()
    }
}

words!(
    CaseStatus,
    casebot_core::domain::DraftStatus,
    casebot_core::domain::DraftKind
);

/// Clap's parser for a [`Word`]: a typo is a usage error that lists the
/// choices (and `--help` and completions know them).
pub fn word<T: Word>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(T::ALL.iter().map(|w| w.word())).try_map(
        |text: String| {
            T::ALL
                .iter()
                .copied()
                .find(|w| w.word() == text)
                .ok_or_else(|| format!("unknown word {text:?}"))
        },
    )
}

/// A failure with the exit code it should end the process with.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 1,
            error: e.into(),
        }
    }
}

pub fn fail(code: u8, error: anyhow::Error) -> Failure {
    Failure { code, error }
}

/// Loads the configuration the way every command does.
pub fn load_config(globals: &GlobalArgs) -> Result<Config, Failure> {
    let (path, explicit) = match &globals.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("config.toml"), false),
    };
    Config::load(&path, explicit).map_err(|e| fail(2, e.into()))
}

/// Runs a parsed command line; returns the process exit code.
pub async fn run(globals: &GlobalArgs, command: Command) -> ExitCode {
    finish(dispatch(globals, command).await)
}

/// The exit code of a command's result; a failure is printed first.
pub fn finish(result: Result<u8, Failure>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("casebot: error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

/// `casebot mailbox login NAME`: the device sign-in of an OAuth2 mailbox.
async fn mailbox_login(config: &Config, name: &str, json: bool) -> Result<u8, Failure> {
    use crate::config::{AuthKind, OAuthFlow};
    use crate::oauth::{TokenError, TokenSource};
    let mailbox = config
        .mailboxes
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| {
            fail(
                2,
                anyhow::anyhow!("no mailbox is named {name:?} in the config"),
            )
        })?;
    let oauth = match (&mailbox.auth, &mailbox.oauth2) {
        (AuthKind::OAuth2, Some(o)) if o.flow == OAuthFlow::DeviceCode => o,
        _ => {
            return Err(fail(
                2,
                anyhow::anyhow!(
                    "mailbox {name:?} does not sign in with a device code (auth = \"oauth2\", [mailbox.oauth2] flow = \"device_code\")"
                ),
            ));
        }
    };
    let store = open_store(config).await?;
    let source = TokenSource::new(name, oauth, store)?;
    let signed = source
        .sign_in(|device| {
            if json {
                let line = serde_json::json!({
                    "mailbox": name,
                    "verification_uri": device.verification_uri,
                    "user_code": device.user_code,
                    "expires_in_secs": device.expires_in.as_secs(),
                });
                println!("{line}");
                use std::io::Write as _;
                let _ = std::io::stdout().flush();
            }
            eprintln!(
                "To sign mailbox {name} in, open {} and enter the code {} (within {} minutes). Waiting…",
                device.verification_uri,
                device.user_code,
                device.expires_in.as_secs() / 60
            );
        })
        .await;
    match signed {
        Ok(()) => {
            eprintln!("mailbox {name} is signed in; `casebot serve` logs in with it from now on");
            Ok(0)
        }
        Err(e @ TokenError::Unavailable(_)) => Err(fail(1, anyhow::anyhow!(e))),
        Err(e) => Err(fail(4, anyhow::anyhow!(e))),
    }
}

async fn open_store(config: &Config) -> Result<Store, Failure> {
    Store::open(&config.store.url).await.map_err(Failure::from)
}

async fn dispatch(globals: &GlobalArgs, command: Command) -> Result<u8, Failure> {
    let config = Arc::new(load_config(globals)?);
    match command {
        Command::Serve { demo } => serve_cmd(config, demo).await,
        Command::Import(args) => import_cmd(config, args).await,
        Command::Parse(args) => parse_cmd(&config, args),
        Command::Cases(args) => {
            let store = open_store(&config).await?;
            let mut cases = store.list_cases().await?;
            if let Some(status) = args.status {
                cases.retain(|c| c.status == status);
            }
            if args.json {
                output::json(&cases)?;
            } else {
                output::cases_table(&cases);
            }
            Ok(0)
        }
        Command::Show(args) => show_cmd(&config, args).await,
        Command::Search(args) => search::search_cmd(&config, args).await,
        Command::Doctor { json } => doctor::doctor(&config, json).await,
        Command::Move(args) => regroup::move_cmd(&config, args).await,
        Command::Split(args) => regroup::split_cmd(&config, args).await,
        Command::Merge(args) => regroup::merge_cmd(&config, args).await,
        Command::Undo(args) => regroup::undo_cmd(&config, args).await,
        Command::Close(args) => regroup::status_cmd(&config, args, CaseStatus::Resolved).await,
        Command::Reopen(args) => regroup::status_cmd(&config, args, CaseStatus::WaitingOnUs).await,
        Command::Priority(args) => regroup::priority_cmd(&config, args).await,
        Command::Notifications(command) => notifications::run(&config, command).await,
        Command::Quarantine(QuarantineCommand::List { all, json }) => {
            let store = open_store(&config).await?;
            let entries = store.quarantine_list(all).await?;
            if json {
                output::json(&entries)?;
            } else {
                output::quarantine_table(&entries);
            }
            Ok(0)
        }
        Command::Quarantine(QuarantineCommand::Replay { ids, json }) => {
            replay_cmd(config, ids, json).await
        }
        Command::Quarantine(QuarantineCommand::Discard {
            id,
            reason,
            by,
            json,
        }) => {
            let store = open_store(&config).await?;
            if reason.trim().is_empty() || by.trim().is_empty() {
                return Err(fail(
                    2,
                    anyhow::anyhow!("say who discards it (--as) and why (--reason)"),
                ));
            }
            if !store.quarantine_discard(id, &by, &reason).await? {
                return Err(fail(
                    3,
                    anyhow::anyhow!("quarantine entry {id} does not exist or was already released"),
                ));
            }
            if json {
                output::json(
                    &json!({"id": id, "discarded_by": by.trim(), "reason": reason.trim()}),
                )?;
            }
            eprintln!("quarantine entry {id} discarded");
            Ok(0)
        }
        Command::Analyze(args) => analyze_cmd(&config, args).await,
        Command::Rules(RulesCommand::Check { json }) => rules_check_cmd(&config, json),
        Command::Drafts(args) => drafts::list(&config, args).await,
        Command::Mailboxes { json } => {
            let store = open_store(&config).await?;
            let folders = store.imap_folders().await?;
            if json {
                output::json(&folders)?;
            } else {
                output::mailboxes_table(&folders);
            }
            Ok(0)
        }
        Command::Instances { json } => instances_cmd(&config, json).await,
        Command::Mailbox(MailboxCommand::Login { name, json }) => {
            mailbox_login(&config, &name, json).await
        }
        Command::Draft(command) => drafts::draft(&config, command).await,
        Command::Approve(args) => drafts::approve(&config, args).await,
        Command::Sla(args) => desk::sla(&config, args).await,
        Command::User(command) => desk::user(&config, command).await,
        Command::Assign(args) => desk::assign(&config, args).await,
        Command::Note(args) => desk::note(&config, args).await,
        Command::Reject(args) => drafts::reject(&config, args).await,
        Command::Send { json } => drafts::send(&config, json).await,
        Command::Templates(drafts::TemplatesCommand::Check { json }) => {
            drafts::templates_check(&config, json)
        }
        Command::Knowledge(command) => drafts::knowledge(&config, command).await,
        Command::Backup(args) => operations::backup(&config, args).await,
        Command::Restore(args) => operations::restore(&config, args).await,
        Command::Export(args) => operations::export(&config, args).await,
        Command::Retention(args) => operations::retention(&config, args).await,
    }
}

/// `casebot serve`: the daemon, until SIGINT or SIGTERM.
async fn serve_cmd(config: Arc<Config>, demo: bool) -> Result<u8, Failure> {
    let shutdown = crate::daemon::Shutdown::listen()?;
    if demo {
        drop_demo_threads(&config)?;
    }
    let store = open_store(&config).await?;
    let desk = crate::daemon::Desk::new(store, analyzer(&config, None)?, config.clone())
        .map_err(|e| fail(2, e))?;
    // The location, never the URL: a PostgreSQL URL may carry a password.
    tracing::info!(store = %desk.pipeline.store().location(), "casebot serve starting");
    crate::daemon::serve(config, desk, shutdown).await?;
    Ok(0)
}

/// `casebot show KEY`: a case with its thread, analyses, drafts and similar cases.
async fn show_cmd(config: &Arc<Config>, args: ShowArgs) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    let lang = casebot_core::domain::Lang::parse(&config.analysis.language)
        .unwrap_or(casebot_core::domain::Lang::Zh);
    // Similar closed cases need the rules (class names), not the templates.
    let rules = load_rules(config)?;
    let page = casebot_store::cases::PageRequest::new(args.page, Some(args.per_page));
    let overview = crate::overview::case_overview(&store, &rules, lang, &args.key, page)
        .await?
        .ok_or_else(|| fail(3, anyhow::anyhow!("no case {:?} in the store", args.key)))?;
    if args.json {
        output::json(&overview)?;
    } else {
        output::case_detail(&overview.detail);
        if !overview.analysis.is_null() {
            println!();
            println!("Log analysis:");
            output::analysis_summary(&overview.analysis);
        }
        if !overview.similar.is_empty() {
            println!();
            println!("Similar resolved cases:");
            for s in &overview.similar {
                println!("  {} ({}): {}", s.case, s.class_name, s.resolution);
            }
        }
        if !overview.notes.is_empty() {
            println!();
            println!("Internal notes (never sent):");
            for n in &overview.notes {
                println!(
                    "  [{}] {}: {}",
                    n.created_at,
                    n.author,
                    n.body.replace('\n', "\n    ")
                );
            }
        }
        if !overview.drafts.is_empty() {
            println!();
            println!("Drafts:");
            output::drafts_table(&overview.drafts);
        }
    }
    Ok(0)
}

/// `casebot quarantine replay`: runs quarantined mail through filing again.
async fn replay_cmd(config: Arc<Config>, ids: Vec<i64>, json: bool) -> Result<u8, Failure> {
    let store = open_store(&config).await?;
    let pipeline = Pipeline::new(store.clone(), config.clone())?;
    let ids = if ids.is_empty() {
        store
            .quarantine_list(false)
            .await?
            .into_iter()
            .map(|e| e.id)
            .collect()
    } else {
        ids
    };
    let mut missing = false;
    let mut counts = Counts::default();
    for id in ids {
        match pipeline.replay(id).await? {
            Some(report) => {
                counts.add(report.status);
                if json {
                    output::json_line(&json!({ "id": id, "report": report }))?;
                } else {
                    output::report_line(&report);
                }
            }
            None => {
                eprintln!("casebot: quarantine entry {id} does not exist or was already released");
                missing = true;
            }
        }
    }
    eprintln!(
        "replayed: {} filed, {} duplicate, {} still quarantined",
        counts.imported, counts.duplicate, counts.quarantined
    );
    Ok(if missing { 3 } else { 0 })
}

/// `casebot instances`: the serving processes on this store and their leases.
async fn instances_cmd(config: &Arc<Config>, json: bool) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    let now = casebot_store::now_ts();
    let views: Vec<_> = store
        .instances()
        .await?
        .iter()
        .map(|row| row.view(now))
        .collect();
    if json {
        output::json(&views)?;
    } else {
        output::instances_table(&views);
    }
    Ok(0)
}

/// `serve --demo`: the example threads into the first Maildir mailbox.
fn drop_demo_threads(config: &Config) -> Result<(), Failure> {
    let mailbox = config
        .mailboxes
        .iter()
        .find(|m| m.kind == crate::config::MailboxKind::Maildir)
        .ok_or_else(|| {
            fail(
                2,
                anyhow::anyhow!(
                    "--demo drops the example threads into a Maildir, and the configuration watches none"
                ),
            )
        })?;
    let path = config.maildir_path(mailbox);
    let maildir = crate::mailbox::maildir::Maildir::open(
        &mailbox.name,
        &path,
        config.ingest.max_message_bytes,
    )?;
    let dropped = crate::mailbox::demo::drop_examples(&maildir)?;
    // A log line, not a print: under `--log-format json` every line the
    // daemon writes is one JSON object.
    tracing::info!(
        mails = dropped,
        maildir = %path.display(),
        "demo: {dropped} example mails dropped; try `casebot cases` and `casebot drafts`"
    );
    Ok(())
}

async fn import_cmd(config: Arc<Config>, args: ImportArgs) -> Result<u8, Failure> {
    let source =
        import::open(&args.path, config.ingest.max_message_bytes).map_err(|e| fail(2, e))?;
    let analyzer = analyzer(&config, None)?;
    let store = open_store(&config).await?;
    let pipeline = Pipeline::new(store.clone(), config.clone())?;
    let drafter = crate::stages::drafting::Drafter::new(
        store.clone(),
        analyzer.rules.clone(),
        config.clone(),
    )
    .map_err(|e| fail(2, e.into()))?;
    let worker = crate::stages::analysis::Worker::new(store, analyzer, &config)?;
    let bar = output::progress(source.len_hint, "importing");
    let json = args.json;
    let mut out_err = None;
    let counts = pipeline
        .run(source.mails, |report| {
            bar.inc(1);
            if json {
                if let Err(e) = output::json_line(report) {
                    out_err.get_or_insert(e);
                }
            } else if report.status != Status::Imported && report.status != Status::Duplicate {
                bar.suspend(|| output::report_line(report));
            }
        })
        .await?;
    bar.finish_and_clear();
    if let Some(e) = out_err {
        return Err(e.into());
    }
    eprintln!(
        "imported {}, duplicate {}, quarantined {}, failed {} (of {})",
        counts.imported,
        counts.duplicate,
        counts.quarantined,
        counts.failed,
        counts.total()
    );
    // The same stage the daemon runs after filing: a backfill leaves the
    // store as watching the mailbox would have.
    let bar = output::spinner("analysing logs");
    let analysed = worker.run_all().await?;
    bar.finish_and_clear();
    eprintln!(
        "analysed {} mails with logs ({} without anything to analyse, {} failed)",
        analysed.analysed, analysed.empty, analysed.failed
    );
    let drafted = drafter.run().await?;
    eprintln!(
        "drafts: {} created, {} updated, {} withdrawn",
        drafted.created, drafted.updated, drafted.withdrawn
    );
    Ok(if counts.failed > 0 { 5 } else { 0 })
}

/// The configured rules (the built-in copy when the default folder is
/// missing); exit 2 when they do not load.
pub fn load_rules(config: &Config) -> Result<casebot_analysis::rules::RuleSet, Failure> {
    let (dir, rules) =
        casebot_analysis::rules::RuleSet::configured(&config.analysis, &config.base_dir);
    rules.map_err(|e| {
        fail(
            2,
            anyhow::anyhow!("the rules in {} do not load:\n{e}", dir.display()),
        )
    })
}

/// The analyser, in the language asked for (or the configured one).
pub fn analyzer(
    config: &Config,
    lang: Option<&str>,
) -> Result<casebot_analysis::Analyzer, Failure> {
    let mut analyzer = casebot_analysis::Analyzer::new(&config.analysis, &config.base_dir)
        .map_err(|e| fail(2, e.into()))?;
    if let Some(lang) = lang {
        analyzer.lang = casebot_core::domain::Lang::parse(lang)
            .ok_or_else(|| fail(2, anyhow::anyhow!("--lang {lang:?}: expected zh-CN or en")))?;
    }
    Ok(analyzer)
}

async fn analyze_cmd(config: &Arc<Config>, args: AnalyzeArgs) -> Result<u8, Failure> {
    let analyzer = analyzer(config, args.lang.as_deref())?;
    if let Some(key) = &args.case {
        let store = open_store(config).await?;
        let worker = crate::stages::analysis::Worker::new(store, analyzer, config)?;
        let results = worker
            .reanalyze_case(key)
            .await?
            .ok_or_else(|| fail(3, anyhow::anyhow!("no case {key:?} in the store")))?;
        if args.json {
            output::json(&results)?;
        } else {
            output::case_analyses(&results);
        }
        return Ok(0);
    }
    let target = args.target.unwrap_or_default();
    let report = if target.starts_with("http://") || target.starts_with("https://") {
        analyzer
            .analyze_url(&target)
            .await
            .map_err(|e| fail(4, anyhow::anyhow!("{target}: {e}")))?
    } else {
        let path = PathBuf::from(&target);
        if !path.exists() {
            return Err(fail(3, anyhow::anyhow!("{target}: no such file or folder")));
        }
        let bar = output::spinner("analysing");
        let report = tokio::task::spawn_blocking(move || analyzer.analyze_path(&path))
            .await
            .context("The analysis task failed")?;
        bar.finish_and_clear();
        report
    };
    if args.json {
        output::json(&report)?;
    } else {
        output::analysis_report(&report);
    }
    let nothing_read = report.scanned_logs() == 0
        && report
            .items
            .iter()
            .any(|i| i.status == casebot_analysis::bundle::ItemStatus::Error);
    Ok(if nothing_read { 4 } else { 0 })
}

fn rules_check_cmd(config: &Config, json: bool) -> Result<u8, Failure> {
    // What analysis would use, the built-in copy included.
    let (dir, loaded) =
        casebot_analysis::rules::RuleSet::configured(&config.analysis, &config.base_dir);
    match loaded {
        Ok(set) => {
            let mut files: std::collections::BTreeMap<String, usize> = Default::default();
            for rule in &set.rules {
                let file = rule.origin.split(':').next().unwrap_or("").to_string();
                *files.entry(file).or_default() += 1;
            }
            if json {
                output::json(&json!({
                    "ok": true,
                    "dir": dir.display().to_string(),
                    "rules": set.rules.len(),
                    "files": files,
                    "classes": set.classes.len(),
                    "steps": set.steps.len(),
                    "errors": [],
                }))?;
            } else {
                println!(
                    "{}: {} rules in {} files, {} classes, {} next steps: OK",
                    dir.display(),
                    set.rules.len(),
                    files.len(),
                    set.classes.len(),
                    set.steps.len()
                );
                for (file, n) in files {
                    println!("  {file:24} {n} rules");
                }
            }
            Ok(0)
        }
        Err(errors) => {
            if json {
                let list: Vec<_> = errors
                    .0
                    .iter()
                    .map(|e| json!({"file": e.file.display().to_string(), "line": e.line, "column": e.column, "message": e.message}))
                    .collect();
                output::json(
                    &json!({"ok": false, "dir": dir.display().to_string(), "errors": list}),
                )?;
            } else {
                for e in &errors.0 {
                    eprintln!("{e}");
                }
                eprintln!("{} problem(s) in {}", errors.0.len(), dir.display());
            }
            Ok(2)
        }
    }
}

fn parse_cmd(config: &Config, args: ParseArgs) -> Result<u8, Failure> {
    let raw = std::fs::read(&args.file)
        .with_context(|| format!("Cannot read {}", args.file.display()))?;
    let parser = MailParser::new(&config.desk, &config.grammar, &config.ingest)?;
    let arrival = import::modified(&args.file);
    let mail = parser
        .parse(&raw, arrival)
        .map_err(|r| fail(4, anyhow::anyhow!("{}: {r}", args.file.display())))?;
    if args.json {
        output::json(&output::parse_view(&mail))?;
    } else {
        output::parsed_mail(&mail);
    }
    Ok(0)
}
