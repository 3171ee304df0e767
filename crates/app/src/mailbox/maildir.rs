//! The local Maildir the daemon watches (the embedded default mailbox).
//!
//! A mail delivered into `new/` is filed, then moved to `cur/` as Maildir
//! readers do. The move happens only after the store committed, so a crash
//! in between leaves the file in `new/` and the next scan files it again,
//! which the store recognises as a duplicate: nothing is lost or counted twice.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{Notify, watch};

use super::import::modified;
use super::{Filer, RawMail, read_bounded};
use casebot_core::domain::Source;
use casebot_core::mail::filing::Status;

/// Mails read and handed to the filing stage at once.
const BATCH: usize = 256;

/// A Maildir folder: `new/`, `cur/`, `tmp/`.
#[derive(Debug, Clone)]
pub struct Maildir {
    pub name: String,
    pub root: PathBuf,
    /// Files larger than this are not read (`ingest.max_message_bytes`).
    pub max_message_bytes: u64,
}

impl Maildir {
    /// Opens the Maildir, creating its three folders if missing; files over
    /// `max_message_bytes` will not be read.
    pub fn open(name: &str, root: &Path, max_message_bytes: u64) -> Result<Self> {
        for sub in ["new", "cur", "tmp"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("Cannot create {}", dir.display()))?;
        }
        Ok(Self {
            name: name.to_string(),
            root: root.to_path_buf(),
            max_message_bytes,
        })
    }

    /// Files waiting in `new/`, oldest name first.
    pub fn pending(&self) -> Result<Vec<PathBuf>> {
        let dir = self.root.join("new");
        let mut files = Vec::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("Cannot list {}", dir.display()))?
        {
            let entry = entry?;
            if entry.file_type()?.is_file() && !entry.file_name().to_string_lossy().starts_with('.')
            {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }

    /// Moves a handled file from `new/` to `cur/` (flags left empty: casebot
    /// does not mark mail as read).
    pub fn mark_handled(&self, file: &Path) -> Result<()> {
        let Some(name) = file.file_name() else {
            return Ok(());
        };
        let mut target = name.to_string_lossy().into_owned();
        if !target.contains(":2,") {
            target.push_str(":2,");
        }
        let to = self.root.join("cur").join(target);
        std::fs::rename(file, &to)
            .with_context(|| format!("Cannot move {} to {}", file.display(), to.display()))
    }
}

/// Scans `new/` every `interval`, files what it finds, then moves each filed
/// mail to `cur/`.
pub async fn watch(
    maildir: Maildir,
    interval: Duration,
    filer: Arc<dyn Filer>,
    filed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut failing = false;
    let health = crate::telemetry::metrics().loop_started(&format!("maildir:{}", maildir.name));
    loop {
        let scanned = scan_once(&maildir, filer.as_ref()).await;
        health.pass(scanned.is_ok());
        match scanned {
            Ok(n) => {
                if failing {
                    tracing::info!(mailbox = %maildir.name, "Maildir scan works again");
                    failing = false;
                }
                if n > 0 {
                    tracing::info!(mailbox = %maildir.name, mails = n, "filed new mail");
                    filed.notify_one();
                }
            }
            // Log a failure once, not on every tick.
            Err(e) if !failing => {
                tracing::error!(mailbox = %maildir.name, error = %format!("{e:#}"), "Maildir scan failed; retrying");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// Files every mail waiting in `new/`; returns how many it handled. File
/// system work (listing, reading, moving) runs on blocking threads, never on
/// the async workers.
pub async fn scan_once(maildir: &Maildir, filer: &dyn Filer) -> Result<usize> {
    let md = maildir.clone();
    let files = tokio::task::spawn_blocking(move || md.pending()).await??;
    let mut handled = 0;
    for chunk in files.chunks(BATCH) {
        let (md, chunk) = (maildir.clone(), chunk.to_vec());
        let (paths, raws) = tokio::task::spawn_blocking(move || read_files(&md, chunk)).await?;
        let reports = filer.file(raws).await?;
        for report in &reports {
            match report.status {
                Status::Quarantined => {
                    tracing::warn!(source = %report.source, reason = ?report.reason, "quarantined")
                }
                _ => {
                    tracing::debug!(source = %report.source, status = ?report.status, case = ?report.case_key, "filed")
                }
            }
        }
        // Only after the store committed: a crash before this re-files the
        // mail on the next scan, where it is recognised as a duplicate.
        handled += paths.len();
        let md = maildir.clone();
        tokio::task::spawn_blocking(move || {
            paths.iter().try_for_each(|path| md.mark_handled(path))
        })
        .await??;
    }
    Ok(handled)
}

/// Reads a chunk of `new/`; returns the paths read and their mails, in step.
fn read_files(maildir: &Maildir, files: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<RawMail>) {
    let mut paths = Vec::with_capacity(files.len());
    let mut raws = Vec::with_capacity(files.len());
    for path in files {
        match read_bounded(&path, maildir.max_message_bytes) {
            Ok((bytes, oversize)) => {
                let source = Source::Maildir {
                    mailbox: maildir.name.clone(),
                    file: path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                };
                raws.push(RawMail {
                    oversize,
                    ..RawMail::new(bytes, source, modified(&path))
                });
                paths.push(path);
            }
            // Vanished between listing and reading: another reader took it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot read mail file"),
        }
    }
    (paths, raws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_then_handled() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open("local", &dir.path().join("mail"), u64::MAX).unwrap();
        std::fs::write(md.root.join("new/2.x"), "b").unwrap();
        std::fs::write(md.root.join("new/1.x"), "a").unwrap();
        let pending = md.pending().unwrap();
        assert_eq!(pending.len(), 2);
        assert!(pending[0].ends_with("1.x"));
        md.mark_handled(&pending[0]).unwrap();
        assert_eq!(md.pending().unwrap().len(), 1);
        assert!(md.root.join("cur/1.x:2,").exists());
    }
}
