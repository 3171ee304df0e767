//! Where mail comes from: the sources `casebot import` reads (Maildir, mbox,
//! a folder of .eml files, one .eml) and the Maildir the daemon watches.
//!
//! Sources only read bytes; they never parse. Each mail carries a [`Source`]
//! that says exactly where it was found, which the store keeps as evidence.
//! A watched source (an IMAP folder, a Maildir) hands what it reads to the
//! filing stage through [`Filer`], and moves its checkpoint only after the
//! batch is filed.

pub mod demo;
pub mod imap;
pub mod import;
pub mod maildir;

use anyhow::Result;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;

use casebot_core::domain::Source;
use casebot_core::mail::filing::Status;

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

/// One line of `casebot import --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub message_id: Option<String>,
    pub case_key: Option<String>,
    pub status: Status,
    pub reason: Option<String>,
}

/// The filing stage, as a watched source sees it: a batch of raw mail goes
/// in, what became of each mail comes back in the same order. Sources never
/// parse; everything the mail means is decided behind this interface.
pub trait Filer: Send + Sync {
    fn file(&self, mails: Vec<RawMail>) -> BoxFuture<'_, Result<Vec<Report>>>;
}
