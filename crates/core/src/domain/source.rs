//! Where one mail was found: kept with its raw bytes as evidence.

use std::fmt;
use std::path::PathBuf;

/// Where one mail was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A single file: an .eml, or a file in a Maildir being imported.
    File { path: PathBuf },
    /// The `index`-th mail (from 0) of an mbox file, at byte `offset`.
    Mbox {
        path: PathBuf,
        index: u64,
        offset: u64,
    },
    /// A file delivered into a watched Maildir.
    Maildir { mailbox: String, file: String },
    /// A quarantined mail being replayed.
    Quarantine { id: i64 },
    /// A mail made up by the benchmark.
    Generated { index: u64 },
    /// The copy of a reply casebot sent (draft id).
    Sent { draft: i64 },
    /// A message of a watched IMAP folder.
    Imap {
        mailbox: String,
        folder: String,
        uidvalidity: u32,
        uid: u32,
    },
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Source::File { .. } => "file",
            Source::Mbox { .. } => "mbox",
            Source::Maildir { .. } => "maildir",
            Source::Quarantine { .. } => "quarantine",
            Source::Generated { .. } => "generated",
            Source::Sent { .. } => "sent",
            Source::Imap { .. } => "imap",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File { path } => write!(f, "{}", path.display()),
            Source::Mbox {
                path,
                index,
                offset,
            } => write!(f, "{}#{index}@{offset}", path.display()),
            Source::Maildir { mailbox, file } => write!(f, "maildir:{mailbox}/{file}"),
            Source::Quarantine { id } => write!(f, "quarantine:{id}"),
            Source::Generated { index } => write!(f, "generated:{index}"),
            Source::Sent { draft } => write!(f, "sent:draft-{draft}"),
            // RFC 5092's form: the folder, its UIDVALIDITY and the UID.
            Source::Imap {
                mailbox,
                folder,
                uidvalidity,
                uid,
            } => write!(
                f,
                "imap://{mailbox}/{folder};UIDVALIDITY={uidvalidity}/;UID={uid}"
            ),
        }
    }
}
