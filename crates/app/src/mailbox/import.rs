//! Reading a backfill: a Maildir, an mbox file, a folder of .eml files, or
//! one .eml. Every reader streams: one mail in memory at a time, whatever the
//! size of the archive.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};

use super::{RawMail, ReadFailure, ReadResult};
use casebot_core::domain::Source;

/// What kind of archive a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Maildir,
    Mbox,
    EmlFolder,
    EmlFile,
}

/// An opened archive: its kind, how many mails it holds when that is known
/// up front, and the mails.
pub struct ImportSource {
    pub kind: ImportKind,
    pub len_hint: Option<u64>,
    pub mails: Box<dyn Iterator<Item = ReadResult> + Send>,
}

/// Opens `path` as whatever archive it is.
pub fn open(path: &Path) -> Result<ImportSource> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("Cannot read {}", path.display()))?;
    if meta.is_dir() {
        if path.join("cur").is_dir() || path.join("new").is_dir() {
            let mut files = list_files(&path.join("new"), false)?;
            files.extend(list_files(&path.join("cur"), false)?);
            return Ok(files_source(ImportKind::Maildir, files));
        }
        let files = list_files(path, true)?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("eml")))
            .collect();
        return Ok(files_source(ImportKind::EmlFolder, files));
    }
    if !meta.is_file() {
        bail!("{} is neither a file nor a folder", path.display());
    }
    let mut head = [0u8; 5];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("Cannot read {}", path.display()))?;
    if &head[..n] == b"From " {
        let reader = MboxReader::new(path)?;
        return Ok(ImportSource {
            kind: ImportKind::Mbox,
            len_hint: None,
            mails: Box::new(reader),
        });
    }
    Ok(files_source(ImportKind::EmlFile, vec![path.to_path_buf()]))
}

fn files_source(kind: ImportKind, files: Vec<PathBuf>) -> ImportSource {
    ImportSource {
        kind,
        len_hint: Some(files.len() as u64),
        mails: Box::new(files.into_iter().map(read_file)),
    }
}

/// Regular files below `dir`, sorted by path (Maildir names start with the
/// delivery time, so this is roughly arrival order).
fn list_files(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("Cannot list {}", d.display()))?
        {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let ft = entry.file_type()?;
            if ft.is_dir() && recursive {
                stack.push(entry.path());
            } else if ft.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads one file as one mail.
pub fn read_file(path: PathBuf) -> ReadResult {
    let source = Source::File { path: path.clone() };
    match std::fs::read(&path) {
        Ok(bytes) => Ok(RawMail {
            bytes,
            arrival: modified(&path),
            source,
        }),
        Err(e) => Err(ReadFailure {
            source,
            reason: format!("cannot read: {e}"),
        }),
    }
}

/// The file's modification time, the best arrival time a file offers.
pub fn modified(path: &Path) -> DateTime<Utc> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now())
}

/// Streams the mails of an mbox file (mboxo and mboxrd: `>From ` lines are
/// unescaped by one level).
pub struct MboxReader {
    path: PathBuf,
    reader: BufReader<File>,
    arrival: DateTime<Utc>,
    index: u64,
    offset: u64,
    /// Byte offset of the `From ` line of the mail being read.
    mail_offset: u64,
    started: bool,
    done: bool,
    line: Vec<u8>,
}

impl MboxReader {
    pub fn new(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("Cannot open {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 16, file),
            arrival: modified(path),
            index: 0,
            offset: 0,
            mail_offset: 0,
            started: false,
            done: false,
            line: Vec::new(),
        })
    }
}

impl Iterator for MboxReader {
    type Item = ReadResult;

    fn next(&mut self) -> Option<ReadResult> {
        if self.done {
            return None;
        }
        let mut mail: Vec<u8> = Vec::new();
        let mut previous_blank = true;
        loop {
            self.line.clear();
            let n = match self.reader.read_until(b'\n', &mut self.line) {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Some(Err(ReadFailure {
                        source: self.source(),
                        reason: format!("cannot read: {e}"),
                    }));
                }
            };
            let line_offset = self.offset;
            self.offset += n as u64;
            if n == 0 {
                self.done = true;
                return self.finish(mail);
            }
            if self.line.starts_with(b"From ") && previous_blank {
                if self.started {
                    let out = self.finish(std::mem::take(&mut mail));
                    self.mail_offset = line_offset;
                    return out;
                }
                self.started = true;
                self.mail_offset = line_offset;
                continue;
            }
            previous_blank = self.line == b"\n" || self.line == b"\r\n";
            let unescaped = match self.line.iter().position(|&b| b != b'>') {
                Some(i) if i > 0 && self.line[i..].starts_with(b"From ") => &self.line[1..],
                _ => &self.line[..],
            };
            mail.extend_from_slice(unescaped);
        }
    }
}

impl MboxReader {
    fn source(&self) -> Source {
        Source::Mbox {
            path: self.path.clone(),
            index: self.index,
            offset: self.mail_offset,
        }
    }

    /// Ends a mail: drops the blank separator line before the next `From `.
    fn finish(&mut self, mut mail: Vec<u8>) -> Option<ReadResult> {
        if mail.ends_with(b"\r\n\r\n") {
            mail.truncate(mail.len() - 2);
        } else if mail.ends_with(b"\n\n") {
            mail.truncate(mail.len() - 1);
        }
        if mail.iter().all(|b| b.is_ascii_whitespace()) && !self.started {
            return None;
        }
        let out = Ok(RawMail {
            bytes: mail,
            source: self.source(),
            arrival: self.arrival,
        });
        self.index += 1;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_splits_on_from_lines_and_unescapes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box.mbox");
        std::fs::write(
            &path,
            "From a@example.cn Mon Mar 20 16:54:30 2023\nSubject: one\n\nbody\n>From the log\nFrom inside a line is fine\n\nFrom b@example.cn Mon Mar 20 16:55:30 2023\nSubject: two\n\nsecond\n",
        )
        .unwrap();
        let source = open(&path).unwrap();
        assert_eq!(source.kind, ImportKind::Mbox);
        let mails: Vec<RawMail> = source.mails.map(Result::unwrap).collect();
        assert_eq!(mails.len(), 2);
        assert_eq!(
            String::from_utf8_lossy(&mails[0].bytes),
            "Subject: one\n\nbody\nFrom the log\nFrom inside a line is fine\n"
        );
        assert_eq!(
            String::from_utf8_lossy(&mails[1].bytes),
            "Subject: two\n\nsecond\n"
        );
        let Source::Mbox {
            index: 1, offset, ..
        } = mails[1].source.clone()
        else {
            panic!("wrong source {:?}", mails[1].source);
        };
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text[offset as usize..].starts_with("From b@example.cn"));
    }

    #[test]
    fn maildir_and_eml_folder() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("md");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(md.join(sub)).unwrap();
        }
        std::fs::write(md.join("new/1.host"), "Subject: a\n\nx\n").unwrap();
        std::fs::write(md.join("cur/2.host:2,S"), "Subject: b\n\nx\n").unwrap();
        std::fs::write(md.join("tmp/3.host"), "Subject: partial\n").unwrap();
        let s = open(&md).unwrap();
        assert_eq!((s.kind, s.len_hint), (ImportKind::Maildir, Some(2)));

        let eml = dir.path().join("eml");
        std::fs::create_dir_all(eml.join("sub")).unwrap();
        std::fs::write(eml.join("a.eml"), "Subject: a\n\nx\n").unwrap();
        std::fs::write(eml.join("sub/b.EML"), "Subject: b\n\nx\n").unwrap();
        std::fs::write(eml.join("notes.txt"), "not mail").unwrap();
        let s = open(&eml).unwrap();
        assert_eq!((s.kind, s.len_hint), (ImportKind::EmlFolder, Some(2)));
        assert_eq!(open(&eml.join("a.eml")).unwrap().kind, ImportKind::EmlFile);
        assert!(open(&dir.path().join("missing")).is_err());
    }
}
