//! `casebot bench …`: the benchmark commands, in a build with `--features
//! bench`. Each prints its figures (and, with `--json`, one JSON line).

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use casebot_app::cli::{self, Failure, GlobalArgs, fail, output};
use casebot_app::config::Config;

/// Benchmarks that print figures.
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
        /// How the watcher logs in: `password`, or `oauth2` (SASL XOAUTH2
        /// with a token from a throwaway authorization server, checked by
        /// Dovecot's oauth2 passdb at each login).
        #[arg(long, value_enum, default_value = "password")]
        auth: crate::imap::BenchAuth,
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
    /// Hostile input against the bounds: cab and zip bombs analysed, a mail
    /// of 650,000 attachments imported, then 500 bad logins and 200
    /// half-sent requests against a running daemon while a logged-in
    /// engineer loads the case list; time and peak RSS of each.
    Abuse {
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

/// Runs one benchmark command; returns the process exit code.
pub async fn run(globals: &GlobalArgs, command: BenchCommand) -> ExitCode {
    let result = async {
        let config = cli::load_config(globals)?;
        dispatch(&config, command).await
    };
    cli::finish(result.await)
}

async fn dispatch(config: &Config, command: BenchCommand) -> Result<u8, Failure> {
    let config = config.clone();
    match command {
        BenchCommand::Abuse { json } => {
            let bar = output::spinner("abuse");
            let figures = tokio::task::spawn_blocking(move || {
                crate::abuse::abuse(|phase| bar.set_message(phase.to_string()))
            })
            .await
            .context("The abuse benchmark panicked")??;
            println!("{}", figures.describe());
            if json {
                output::json_line(&figures)?;
            }
            Ok(0)
        }
        BenchCommand::Render { iterations, json } => {
            let rules = cli::load_rules(&config)?;
            let templates = casebot_drafting::templates::Templates::configured(
                &config.drafting,
                &config.base_dir,
            )
            .map_err(|e| fail(2, e.into()))?;
            let figures = crate::render(&templates, &rules, &config.drafting, iterations)?;
            println!("{}", figures.describe());
            if json {
                output::json_line(&figures)?;
            }
            Ok(0)
        }
        BenchCommand::Imap {
            count,
            idle_samples,
            auth,
            json,
        } => {
            let bars = output::PhaseBars::default();
            let figures = crate::imap::imap(&config, count, idle_samples, auth, |p| {
                use crate::imap::Progress;
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
        BenchCommand::Instances {
            mails,
            folders,
            max_instances,
            takeovers,
            json,
        } => {
            let options = crate::instances::Options {
                mails,
                folders,
                max_instances,
                takeovers,
            };
            instances(&config, options, json).await
        }
        BenchCommand::Analyze { size_mb, json } => {
            let dir = tempfile::tempdir().context("Cannot create a temporary folder")?;
            let analyzer = cli::analyzer(&config, None)?;
            let figures = crate::analyze(&analyzer, size_mb, dir.path())?;
            println!("{}", figures.describe());
            if json {
                output::json_line(&figures.summary())?;
            }
            Ok(0)
        }
        BenchCommand::Web {
            cases,
            mails_per_case,
            clients,
            requests,
            json,
        } => web(cases, mails_per_case, clients, requests, json).await,
        BenchCommand::Ingest { count, json } => {
            let dir = tempfile::tempdir().context("Cannot create a temporary folder")?;
            let bar = output::progress(Some(count), "generating and ingesting");
            let figures = crate::ingest(count, dir.path(), |n| bar.set_position(n)).await?;
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

/// `bench web`: page times of the web desk over a generated store.
async fn web(
    cases: u64,
    mails_per_case: u64,
    clients: usize,
    requests: usize,
    json: bool,
) -> Result<u8, Failure> {
    let dir = tempfile::tempdir().context("Cannot create a temporary folder")?;
    let bars = output::PhaseBars::default();
    let figures = crate::web::web(
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
        figures.cases, figures.messages, figures.fill_s, figures.open_cases, figures.sla_all_s
    );
    println!(
        "{:<28} {:>7} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "PAGE", "CLIENTS", "REQUESTS", "ERRORS", "P50 ms", "P99 ms", "MAX ms", "REQ/S", "BYTES"
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

/// `bench instances`: 1, 2, … serving processes sharing the folders out.
async fn instances(
    config: &Config,
    options: crate::instances::Options,
    json: bool,
) -> Result<u8, Failure> {
    use crate::instances::Progress;
    let bars = output::PhaseBars::default();
    let bench = crate::instances::instances(config, options, |p| match p {
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
