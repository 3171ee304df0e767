//! The command line: `casebot <command>`. Every read command takes `--json`;
//! every command takes `--config PATH`.
//!
//! Exit codes (also in the README):
//! 0 success · 1 runtime failure (store, I/O) · 2 bad usage or configuration ·
//! 3 not found (case, draft, quarantine entry) · 4 input rejected (a file that
//! is not a mail, a draft not in the state the command needs) · 5 import
//! finished but some mails could not be read.

mod desk;
mod drafts;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::Config;
use crate::ingest::parse::MailParser;
use crate::ingest::{Counts, Pipeline, Status};
use crate::mailbox::import;
use crate::store::Store;

/// casebot: files a Windows servicing support desk's mail under its cases.
#[derive(Debug, Parser)]
#[command(name = "casebot", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Configuration file. Without it, ./config.toml is read if present,
    /// else the embedded defaults are used.
    #[arg(long, global = true, value_name = "PATH", env = "CASEBOT_CONFIG")]
    pub config: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
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
    /// The `casebot serve` processes on this store: alive or not, and the
    /// leases each holds (which mailbox folders it watches, whether it drafts).
    Instances {
        #[arg(long)]
        json: bool,
    },
    /// Show one case with its thread and event log.
    Show(ShowArgs),
    /// Mail that could not be filed: list it or run it through again.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
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
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A log file, a folder, a .zip/.cab bundle, or an http(s) link.
    #[arg(required_unless_present = "case", conflicts_with = "case")]
    pub target: Option<String>,
    /// Re-analyse every customer mail of this case (number, thread key or id) and store the result.
    #[arg(long, value_name = "KEY")]
    pub case: Option<String>,
    /// Language of explanations and next steps (zh-CN or en); default from config.
    #[arg(long)]
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
    /// Only cases with this status (new, waiting_on_us, waiting_on_customer, resolved, archived).
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Case number (CAS-08268-Z0X4W9), thread key (T-…) or row id.
    pub key: String,
    #[arg(long)]
    pub json: bool,
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
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Generate N realistic mails and time parse + thread + store into SQLite.
    Ingest {
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        /// Print the figures as JSON (the last line).
        #[arg(long)]
        json: bool,
    },
    /// Render every template of a case (scope, next steps, closure, archive)
    /// many times and report the time per case.
    Render {
        #[arg(long, default_value_t = 2000)]
        iterations: u64,
        /// Print the figures as JSON (the last line).
        #[arg(long)]
        json: bool,
    },
    /// Start a throwaway Dovecot, APPEND N realistic mails, and time mbsync
    /// mirroring the folder against casebot catching it up through the whole
    /// pipeline; then the IDLE latency from APPEND to stored draft.
    Imap {
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        /// New cases APPENDed one at a time, in IDLE, for the latency figures.
        #[arg(long, default_value_t = 200)]
        idle_samples: u64,
        /// Print the figures as JSON (the last line).
        #[arg(long)]
        json: bool,
    },
    /// Fill a throwaway store with generated cases, serve the web desk on
    /// loopback and time its pages (case list, search, case page, SLA board)
    /// from one client and from many at once, against /healthz as the baseline.
    Web {
        #[arg(long, default_value_t = 10_000)]
        cases: u64,
        #[arg(long, default_value_t = 10)]
        mails_per_case: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 20)]
        clients: usize,
        /// Requests per page under load (a tenth, at least 20, from one client).
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Print the figures as JSON (the last line).
        #[arg(long)]
        json: bool,
    },
    /// Start a throwaway Dovecot and PostgreSQL, APPEND N mails over several
    /// folders, and time 1, 2, … `casebot serve` processes sharing them out
    /// until every mail is stored (mbsync mirroring the same folders is the
    /// baseline); then SIGKILL a folder's watcher and time its take-over.
    Instances {
        #[arg(long, default_value_t = 12_000)]
        mails: u64,
        #[arg(long, default_value_t = 6)]
        folders: usize,
        /// Runs with 1, 2, … up to this many instances.
        #[arg(long, default_value_t = 3)]
        max_instances: usize,
        /// Take-over rounds (in the last run, with the most instances).
        #[arg(long, default_value_t = 5)]
        takeovers: u64,
        /// Print the figures as JSON (the last line).
        #[arg(long)]
        json: bool,
    },
    /// Generate a CBS.log of the given size with failures spread inside, analyse
    /// it, and time `rg -c` with every rule pattern on the same file.
    Analyze {
        #[arg(long, default_value_t = 1024)]
        size_mb: u64,
        /// Print the figures as JSON (the last line).
        #[arg(long)]
        json: bool,
    },
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

fn fail(code: u8, error: anyhow::Error) -> Failure {
    Failure { code, error }
}

/// Loads the configuration the way every command does.
pub fn load_config(cli: &Cli) -> Result<Config, Failure> {
    let (path, explicit) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("config.toml"), false),
    };
    Config::load(&path, explicit).map_err(|e| fail(2, e.into()))
}

/// Runs a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("casebot: error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

async fn open_store(config: &Config) -> Result<Store, Failure> {
    Store::open(&config.store.url).await.map_err(Failure::from)
}

async fn dispatch(cli: Cli) -> Result<u8, Failure> {
    let config = Arc::new(load_config(&cli)?);
    match cli.command {
        Command::Serve { demo } => {
            let shutdown = crate::daemon::Shutdown::listen()?;
            if demo {
                drop_demo_threads(&config)?;
            }
            let store = open_store(&config).await?;
            let desk = crate::daemon::Desk::new(store, analyzer(&config, None)?, config.clone())
                .map_err(|e| fail(2, e))?;
            tracing::info!(store = %config.store.url, "casebot serve starting");
            crate::daemon::serve(config, desk, shutdown).await?;
            Ok(0)
        }
        Command::Import(args) => import_cmd(config, args).await,
        Command::Parse(args) => parse_cmd(&config, args),
        Command::Cases(args) => {
            let store = open_store(&config).await?;
            let mut cases = store.list_cases().await?;
            if let Some(status) = &args.status {
                cases.retain(|c| &c.status == status);
            }
            if args.json {
                output::json(&cases)?;
            } else {
                output::cases_table(&cases);
            }
            Ok(0)
        }
        Command::Show(args) => {
            let store = open_store(&config).await?;
            let lang = crate::analysis::rules::Lang::parse(&config.analysis.language)
                .unwrap_or(crate::analysis::rules::Lang::Zh);
            // Similar closed cases need the rules (class names), not the templates.
            let rules = load_rules(&config)?;
            let overview = crate::drafting::case_overview(&store, &rules, lang, &args.key)
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
                if !overview.drafts.is_empty() {
                    println!();
                    println!("Drafts:");
                    output::drafts_table(&overview.drafts);
                }
            }
            Ok(0)
        }
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
                        eprintln!(
                            "casebot: quarantine entry {id} does not exist or was already released"
                        );
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
        Command::Instances { json } => {
            let store = open_store(&config).await?;
            let now = crate::store::now_ts();
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
        Command::Draft(command) => drafts::draft(&config, command).await,
        Command::Approve(args) => drafts::approve(&config, args).await,
        Command::Sla(args) => desk::sla(&config, args).await,
        Command::User(command) => desk::user(&config, command).await,
        Command::Assign(args) => desk::assign(&config, args).await,
        Command::Reject(args) => drafts::reject(&config, args).await,
        Command::Send { json } => drafts::send(&config, json).await,
        Command::Templates(drafts::TemplatesCommand::Check { json }) => {
            drafts::templates_check(&config, json)
        }
        Command::Knowledge(command) => drafts::knowledge(&config, command).await,
        Command::Bench(BenchCommand::Render { iterations, json }) => {
            let rules = load_rules(&config)?;
            let templates = crate::drafting::templates::Templates::configured(&config)
                .map_err(|e| fail(2, e.into()))?;
            let figures = crate::bench::render(&templates, &rules, &config.drafting, iterations)?;
            println!("{}", figures.describe());
            if json {
                output::json_line(&figures)?;
            }
            Ok(0)
        }
        Command::Bench(BenchCommand::Imap {
            count,
            idle_samples,
            json,
        }) => {
            let bars = output::PhaseBars::default();
            let figures = crate::bench::imap::imap(&config, count, idle_samples, |p| {
                use crate::bench::imap::Progress;
                match p {
                    Progress::Appending { done, total } => {
                        bars.show("appending", Some(total), done)
                    }
                    Progress::Mbsync => bars.show("mbsync mirroring", None, 0),
                    Progress::CatchingUp { done, total } => {
                        bars.show("casebot catching up", Some(total), done)
                    }
                    Progress::Idle { done, total } => bars.show("IDLE latency", Some(total), done),
                }
            })
            .await?;
            bars.finish();
            println!("{}", figures.describe());
            if json {
                output::json_line(&figures)?;
                output::json_line(&figures.summary())?;
            }
            Ok(0)
        }
        Command::Bench(BenchCommand::Instances {
            mails,
            folders,
            max_instances,
            takeovers,
            json,
        }) => {
            use crate::bench::instances::{Options, Progress};
            let bars = output::PhaseBars::default();
            let options = Options {
                mails,
                folders,
                max_instances,
                takeovers,
            };
            let bench = crate::bench::instances::instances(&config, options, |p| match p {
                Progress::Appending { done, total } => bars.show("appending", Some(total), done),
                Progress::Mbsync => bars.show("mbsync mirroring", None, 0),
                Progress::Ingesting {
                    instances,
                    done,
                    total,
                } => bars.show(
                    match instances {
                        1 => "1 instance storing",
                        2 => "2 instances storing",
                        3 => "3 instances storing",
                        _ => "instances storing",
                    },
                    Some(total),
                    done,
                ),
                Progress::Takeover { done, total } => bars.show("take-over", Some(total), done),
            });
            // On Ctrl-C the benchmark is dropped, which stops its servers
            // and instances.
            let figures = tokio::select! {
                figures = bench => figures?,
                _ = tokio::signal::ctrl_c() => return Err(fail(130, anyhow::anyhow!("interrupted"))),
            };
            bars.finish();
            println!("{}", figures.describe());
            if json {
                output::json_line(&figures)?;
            }
            Ok(0)
        }
        Command::Bench(BenchCommand::Analyze { size_mb, json }) => {
            let dir = tempfile::tempdir().context("Cannot create a temporary folder")?;
            let analyzer = analyzer(&config, None)?;
            let figures = crate::bench::analyze(&analyzer, size_mb, dir.path())?;
            println!("{}", figures.describe());
            if json {
                output::json_line(&figures.summary())?;
            }
            Ok(0)
        }
        Command::Bench(BenchCommand::Web {
            cases,
            mails_per_case,
            clients,
            requests,
            json,
        }) => {
            let dir = tempfile::tempdir().context("Cannot create a temporary folder")?;
            let bars = output::PhaseBars::default();
            let figures = crate::bench::web::web(
                cases,
                mails_per_case,
                clients,
                requests,
                dir.path(),
                |phase, done, of| bars.show(phase, Some(of), done),
            )
            .await?;
            bars.finish();
            println!(
                "web: {} cases, {} mails filed in {:.1} s; {} open; every case's SLA evaluated in {:.2} s",
                figures.cases,
                figures.messages,
                figures.fill_s,
                figures.open_cases,
                figures.sla_all_s
            );
            println!(
                "{:<28} {:>7} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "PAGE",
                "CLIENTS",
                "REQUESTS",
                "ERRORS",
                "P50 ms",
                "P99 ms",
                "MAX ms",
                "REQ/S",
                "BYTES"
            );
            for p in &figures.pages {
                println!(
                    "{:<28} {:>7} {:>8} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.0} {:>9}",
                    p.page,
                    p.clients,
                    p.requests,
                    p.errors,
                    p.p50_ms,
                    p.p99_ms,
                    p.max_ms,
                    p.per_sec,
                    p.bytes
                );
            }
            if json {
                output::json_line(&figures)?;
            }
            Ok(if figures.pages.iter().any(|p| p.errors > 0) {
                1
            } else {
                0
            })
        }
        Command::Bench(BenchCommand::Ingest { count, json }) => {
            let dir = tempfile::tempdir().context("Cannot create a temporary folder")?;
            let bar = output::progress(Some(count), "generating and ingesting");
            let figures = crate::bench::ingest(count, dir.path(), |n| bar.set_position(n)).await?;
            bar.finish_and_clear();
            println!(
                "ingest: {} mails in {:.2} s = {:.0} mails/s; peak RSS {:.1} MiB; {} cases; store {:.1} MiB ({} imported, {} duplicate, {} quarantined)",
                figures.count,
                figures.seconds,
                figures.mails_per_sec,
                figures.peak_rss_mb,
                figures.cases,
                figures.store_mb,
                figures.imported,
                figures.duplicate,
                figures.quarantined
            );
            if json {
                output::json_line(&figures)?;
            }
            Ok(0)
        }
    }
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
    let maildir = crate::mailbox::maildir::Maildir::open(&mailbox.name, &path)?;
    let dropped = crate::mailbox::demo::drop_examples(&maildir)?;
    tracing::info!(mails = dropped, maildir = %path.display(), "demo: example threads dropped");
    eprintln!(
        "casebot: demo: {dropped} example mails dropped into {}; try `casebot cases` and `casebot drafts`",
        path.display()
    );
    Ok(())
}

async fn import_cmd(config: Arc<Config>, args: ImportArgs) -> Result<u8, Failure> {
    let source = import::open(&args.path).map_err(|e| fail(2, e))?;
    let analyzer = analyzer(&config, None)?;
    let store = open_store(&config).await?;
    let pipeline = Pipeline::new(store.clone(), config.clone())?;
    let drafter =
        crate::drafting::Drafter::new(store.clone(), analyzer.rules.clone(), config.clone())
            .map_err(|e| fail(2, e.into()))?;
    let worker = crate::analysis::worker::Worker::new(store, analyzer, &config)?;
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
    let analysed = worker.run_pending().await?;
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
fn load_rules(config: &Config) -> Result<crate::analysis::rules::RuleSet, Failure> {
    let (dir, rules) = crate::analysis::rules::RuleSet::configured(config);
    rules.map_err(|e| {
        fail(
            2,
            anyhow::anyhow!("the rules in {} do not load:\n{e}", dir.display()),
        )
    })
}

/// The analyser, in the language asked for (or the configured one).
fn analyzer(config: &Config, lang: Option<&str>) -> Result<crate::analysis::Analyzer, Failure> {
    let mut analyzer = crate::analysis::Analyzer::new(config).map_err(|e| fail(2, e.into()))?;
    if let Some(lang) = lang {
        analyzer.lang = crate::analysis::rules::Lang::parse(lang)
            .ok_or_else(|| fail(2, anyhow::anyhow!("--lang {lang:?}: expected zh-CN or en")))?;
    }
    Ok(analyzer)
}

async fn analyze_cmd(config: &Arc<Config>, args: AnalyzeArgs) -> Result<u8, Failure> {
    let analyzer = analyzer(config, args.lang.as_deref())?;
    if let Some(key) = &args.case {
        let store = open_store(config).await?;
        let worker = crate::analysis::worker::Worker::new(store, analyzer, config)?;
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
            .any(|i| i.status == crate::analysis::bundle::ItemStatus::Error);
    Ok(if nothing_read { 4 } else { 0 })
}

fn rules_check_cmd(config: &Config, json: bool) -> Result<u8, Failure> {
    // What analysis would use, the built-in copy included.
    let (dir, loaded) = crate::analysis::rules::RuleSet::configured(config);
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
    let parser = MailParser::new(config)?;
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
