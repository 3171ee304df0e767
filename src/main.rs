//! The `casebot` binary: parses the command line, sets up logging, runs.
//!
//! The commands live in the application crate (`casebot_app::cli`); a build
//! with `--features bench` adds `casebot bench …` from the benchmark crate,
//! which the shipped binary does not contain.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use casebot_app::cli::{Command, GlobalArgs};
use casebot_app::config::LogFormat;

/// The exit codes, as `--help` shows them (the same list is in docs/desk.md).
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  runtime failure (the store, a server, a file)
  2  bad usage or configuration
  3  not found (case, draft, account, quarantine entry)
  4  input refused (not a mail, a draft in the wrong state, a weak password)
  5  an import finished, but some mails could not be read";

/// casebot: files a Windows servicing support desk's mail under its cases.
#[derive(Debug, Parser)]
#[command(
    name = "casebot",
    version = casebot_app::VERSION,
    about,
    long_about = None,
    propagate_version = true,
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(flatten)]
    globals: GlobalArgs,

    #[command(subcommand)]
    command: TopCommand,
}

#[derive(Debug, Subcommand)]
enum TopCommand {
    #[command(flatten)]
    Desk(Command),
    /// Print a shell completion script: `casebot completions bash >
    /// /etc/bash_completion.d/casebot` (or zsh, fish).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `casebot man | man -l -`.
    Man,
    /// Benchmarks that print figures.
    #[cfg(feature = "bench")]
    #[command(subcommand)]
    Bench(casebot_bench::cli::BenchCommand),
}

fn main() -> ExitCode {
    // A closed pipe (`casebot analyze … | head`) ends the process quietly, as
    // for any Unix filter, instead of a panic in println!.
    // SAFETY: called first thing, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match &cli.command {
        TopCommand::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "casebot",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        TopCommand::Man => {
            return match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("casebot: error: cannot write the man page: {e}");
                    ExitCode::from(1)
                }
            };
        }
        _ => {}
    }
    let serving = matches!(cli.command, TopCommand::Desk(Command::Serve { .. }));
    let default_level = match (cli.globals.verbose, serving) {
        (0, false) => "warn",
        (0, true) | (1, _) => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("casebot={default_level},warn")));
    // A config that cannot be read is reported by the command itself; the
    // log only needs its format.
    let format = cli.globals.log_format.unwrap_or_else(|| {
        casebot_app::cli::load_config(&cli.globals)
            .map(|c| c.log.format)
            .unwrap_or_default()
    });
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Flattened: the event's fields sit beside `message`, not under
        // `fields`, which is what log shippers index.
        LogFormat::Json => logger
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        // Escape codes only where a person reads them; a journal or a file
        // gets clean lines.
        LogFormat::Plain => logger.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("casebot: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        match cli.command {
            TopCommand::Desk(command) => casebot_app::cli::run(&cli.globals, command).await,
            TopCommand::Completions { .. } | TopCommand::Man => ExitCode::SUCCESS,
            #[cfg(feature = "bench")]
            TopCommand::Bench(command) => casebot_bench::cli::run(&cli.globals, command).await,
        }
    })
}
