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
    /// The mail's real size when it is over `ingest.max_message_bytes`: it
    /// was not read, `bytes` holds only its head, and filing quarantines it
    /// unparsed (the whole mail stays in its source).
    pub oversize: Option<u64>,
}

impl RawMail {
    pub fn new(bytes: Vec<u8>, source: Source, arrival: DateTime<Utc>) -> Self {
        Self {
            bytes,
            source,
            arrival,
            oversize: None,
        }
    }
}

/// What is kept of a mail over the size limit: enough to see who sent it.
pub const OVERSIZE_HEAD: usize = 64 * 1024;

/// Reads a mail file, checking its size first: a file over `limit` bytes
/// is not read, only its head (see [`RawMail::oversize`]). A file that grows
/// while it is read is still read no further than the limit.
pub fn read_bounded(path: &std::path::Path, limit: u64) -> std::io::Result<(Vec<u8>, Option<u64>)> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let mut bytes = Vec::new();
    if size > limit {
        file.take(OVERSIZE_HEAD as u64).read_to_end(&mut bytes)?;
        return Ok((bytes, Some(size)));
    }
    bytes.reserve(size as usize);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        bytes.truncate(OVERSIZE_HEAD);
        return Ok((bytes, Some(limit.saturating_add(1))));
    }
    Ok((bytes, None))
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
