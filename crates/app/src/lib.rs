//! casebot's application: everything that does I/O, over the pure crates
//! below it. See ARCHITECTURE.md for the map; the pipeline, top to bottom:
//!
//! - [`mailbox`]: where mail comes from (IMAP in IDLE, Maildir, mbox, .eml),
//!   and the watching of each source;
//! - [`stages`]: the pipeline stages, each executing what the pure crates
//!   decide: filing, analysis, drafting (the approval gate), the SLA snapshots;
//! - [`oauth`]: OAuth2 sign-in of mailboxes (tokens for IMAP and SMTP);
//! - [`outbox`]: approved replies sent at most once, in their thread;
//! - [`notify`]: telling the desk's people what needs them (mail, chat
//!   webhooks), once per event and person;
//! - [`overview`]: the read model of one case (`show`, the case page);
//! - [`daemon`]: `casebot serve`, wiring the stages together;
//! - [`web`]: the web desk (cases, drafts, SLA board, report, API, metrics);
//! - [`cli`]: the command line;
//! - [`config`]: `config.toml`, each section owned by the crate it configures;
//! - [`i18n`]: the desk's words in zh-CN and en (the web desk and notifications);
//! - [`parallel`]: the order-keeping parallel map batch stages use;
//! - [`telemetry`]: the process's counters and latency histograms
//!   (`/metrics`), and how its loops are doing (`/readyz`).

/// The commit this build is from (`unknown` outside a git checkout).
pub const COMMIT: &str = env!("CASEBOT_COMMIT");
/// `--version`: the release and the commit.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CASEBOT_COMMIT"), ")");

pub mod cli;
pub mod config;
pub mod daemon;
pub mod export;
pub mod i18n;
pub mod mailbox;
pub mod notify;
pub mod oauth;
pub mod outbox;
pub mod overview;
pub mod parallel;
mod process;
pub mod stages;
pub mod telemetry;
pub mod web;
