//! Where mail comes from: the sources `casebot import` reads (Maildir, mbox,
//! a folder of .eml files, one .eml) and the Maildir the daemon watches.
//!
//! Sources only read bytes; they never parse. Each mail carries a [`Source`]
//! that says exactly where it was found, which the store keeps as evidence.

pub mod demo;
pub mod imap;
pub mod import;
pub mod maildir;

use chrono::{DateTime, Utc};

use casebot_core::domain::Source;

/// One mail's bytes, where they came from, and when they arrived.
#[derive(Debug, Clone)]
pub struct RawMail {
    pub bytes: Vec<u8>,
    pub source: Source,
    pub arrival: DateTime<Utc>,
}

/// A mail that could not even be read (a file vanished, no permission).
#[derive(Debug, Clone)]
pub struct ReadFailure {
    pub source: Source,
    pub reason: String,
}

pub type ReadResult = Result<RawMail, ReadFailure>;
