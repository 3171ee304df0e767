//! casebot: the mechanical part of an e-mail driven Windows servicing support
//! desk. See ARCHITECTURE.md for the map; the pipeline, top to bottom:
//!
//! - [`mailbox`]: where mail comes from (Maildir, mbox, .eml);
//! - [`ingest`]: parse, subject grammar, direction, threading, filing;
//! - [`analysis`]: logs → findings → root cause and next steps;
//! - [`store`]: the case store (sqlx), at the bottom;
//! - [`daemon`]: `casebot serve`, wiring the stages together;
//! - [`cli`]: the command line;
//! - [`bench`]: the benchmarks behind `casebot bench`.

pub mod analysis;
pub mod bench;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod ingest;
pub mod mailbox;
pub mod store;
