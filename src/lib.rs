//! casebot: the mechanical part of an e-mail driven Windows servicing support
//! desk. See ARCHITECTURE.md for the map; the pipeline, top to bottom:
//!
//! - [`mailbox`]: where mail comes from (IMAP in IDLE, Maildir, mbox, .eml);
//! - [`ingest`]: parse, subject grammar, direction, threading, filing;
//! - [`analysis`]: logs → findings → root cause and next steps;
//! - [`drafting`]: the reply each case calls for, from `templates/`;
//! - [`outbox`]: approved replies sent at most once, in their thread;
//! - [`store`]: the case store (sqlx), at the bottom;
//! - [`daemon`]: `casebot serve`, wiring the stages together;
//! - [`cli`]: the command line;
//! - [`bench`]: the benchmarks behind `casebot bench`;
//! - [`sla`]: service levels, business hours and the period report;
//! - [`web`]: the web desk (cases, drafts, SLA board, report, API, metrics);
//! - [`parallel`]: the order-keeping parallel map batch stages use;
//! - [`fuzzing`]: the readers of untrusted bytes, as the fuzz targets drive them.

pub mod analysis;
pub mod bench;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod drafting;
pub mod fuzzing;
pub mod ingest;
pub mod mailbox;
pub mod outbox;
pub mod parallel;
pub mod sla;
pub mod store;
pub mod web;
