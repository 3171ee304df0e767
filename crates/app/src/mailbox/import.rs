//! Reading a backfill: a Maildir, an mbox file, a folder of .eml files, or
//! one .eml. Every reader streams: one mail in memory at a time, whatever the
//! size of the archive.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};

use super::{OVERSIZE_HEAD, RawMail, ReadFailure, ReadResult, read_bounded};
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
/// Mails over `max_message_bytes` are not read (see [`RawMail::oversize`]).
pub fn open(path: &Path, max_message_bytes: u64) -> Result<ImportSource> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("Cannot read {}", path.display()))?;
    if meta.is_dir() {
        if path.join("cur").is_dir() || path.join("new").is_dir() {
            let mut files = list_files(&path.join("new"), false)?;
            files.extend(list_files(&path.join("cur"), false)?);
            return Ok(files_source(ImportKind::Maildir, files, max_message_bytes));
        }
        let files = list_files(path, true)?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("eml")))
            .collect();
        return Ok(files_source(
            ImportKind::EmlFolder,
            files,
            max_message_bytes,
        ));
    }
    if !meta.is_file() {
        bail!("{} is neither a file nor a folder", path.display());
    }
    let mut head = [0u8; 5];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("Cannot read {}", path.display()))?;
    if &head[..n] == b"From " {
        let reader = MboxReader::new(path, max_message_bytes)?;
        return Ok(ImportSource {
            kind: ImportKind::Mbox,
            len_hint: None,
            mails: Box::new(reader),
        });
    }
    Ok(files_source(
        ImportKind::EmlFile,
        vec![path.to_path_buf()],
        max_message_bytes,
    ))
}

fn files_source(kind: ImportKind, files: Vec<PathBuf>, limit: u64) -> ImportSource {
    ImportSource {
        kind,
        len_hint: Some(files.len() as u64),
        mails: Box::new(files.into_iter().map(move |f| read_file(f, limit))),
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

/// Reads one file as one mail, or only its head when it is over `limit`.
pub fn read_file(path: PathBuf, limit: u64) -> ReadResult {
    let source = Source::File { path: path.clone() };
    match read_bounded(&path, limit) {
        Ok((bytes, oversize)) => Ok(RawMail {
            oversize,
            ..RawMail::new(bytes, source, modified(&path))
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
    /// Mails larger than this keep only their head.
    limit: u64,
    /// Bytes of the mail being read so far, kept or not.
    mail_size: u64,
}

impl MboxReader {
    pub fn new(path: &Path, limit: u64) -> Result<Self> {
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
            limit,
            mail_size: 0,
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
            // A line is kept only up to the head of an oversize mail: a
            // file without line breaks must not become one huge line.
            let n = match read_line_bounded(&mut self.reader, &mut self.line, OVERSIZE_HEAD) {
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
            self.mail_size += n as u64;
            if self.mail_size <= self.limit {
                mail.extend_from_slice(unescaped);
            } else if mail.len() > OVERSIZE_HEAD {
                // Over the limit: only the head is kept from here on.
                mail.truncate(OVERSIZE_HEAD);
                mail.shrink_to_fit();
            }
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
        let oversize = (self.mail_size > self.limit).then_some(self.mail_size);
        self.mail_size = 0;
        let out = Ok(RawMail {
            oversize,
            ..RawMail::new(mail, self.source(), self.arrival)
        });
        self.index += 1;
        Some(out)
    }
}

/// Reads up to and including the next `\n`, keeping at most `max` bytes of
/// it in `line`; returns how many bytes were consumed.
fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let mut consumed = 0;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(consumed);
        }
        let (take, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&available[..take.min(room)]);
        reader.consume(take);
        consumed += take;
        if done {
            return Ok(consumed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_the_limit_is_not_read_only_its_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.eml");
        let mut mail = b"From: a@example.cn\r\nSubject: big\r\n\r\n".to_vec();
        mail.resize(300_000, b'x');
        std::fs::write(&path, &mail).unwrap();
        let raw = read_file(path.clone(), 100_000).unwrap();
        assert_eq!(raw.oversize, Some(300_000));
        assert_eq!(raw.bytes, mail[..OVERSIZE_HEAD]);
        let raw = read_file(path, 300_000).unwrap();
        assert_eq!((raw.oversize, raw.bytes.len()), (None, 300_000));
    }

    #[test]
    fn an_mbox_mail_over_the_limit_keeps_its_head_and_the_next_mail_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box.mbox");
        // The first mail's body is one 1 MB line without a break.
        let mut mbox = b"From a@example.cn Mon Jan  1 00:00:00 2024\nSubject: big\n\n".to_vec();
        mbox.extend(std::iter::repeat_n(b'x', 1_000_000));
        mbox.extend_from_slice(
            b"\n\nFrom b@example.cn Mon Jan  1 00:00:00 2024\nSubject: small\n\nhi\n",
        );
        std::fs::write(&path, &mbox).unwrap();
        let mails: Vec<RawMail> = MboxReader::new(&path, 100_000)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(mails.len(), 2);
        assert!(mails[0].oversize.is_some_and(|s| s > 1_000_000));
        assert!(
            mails[0].bytes.len() <= 2 * OVERSIZE_HEAD,
            "{}",
            mails[0].bytes.len()
        );
        assert_eq!(mails[1].oversize, None);
        assert_eq!(mails[1].bytes, b"Subject: small\n\nhi\n");
    }

    #[test]
    fn mbox_splits_on_from_lines_and_unescapes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box.mbox");
        std::fs::write(
            &path,
            "From a@example.cn Mon Mar 20 16:54:30 2023\nSubject: one\n\nbody\n>From the log\nFrom inside a line is fine\n\nFrom b@example.cn Mon Mar 20 16:55:30 2023\nSubject: two\n\nsecond\n",
        )
        .unwrap();
        let source = open(&path, u64::MAX).unwrap();
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
        let s = open(&md, u64::MAX).unwrap();
        assert_eq!((s.kind, s.len_hint), (ImportKind::Maildir, Some(2)));

        let eml = dir.path().join("eml");
        std::fs::create_dir_all(eml.join("sub")).unwrap();
        std::fs::write(eml.join("a.eml"), "Subject: a\n\nx\n").unwrap();
        std::fs::write(eml.join("sub/b.EML"), "Subject: b\n\nx\n").unwrap();
        std::fs::write(eml.join("notes.txt"), "not mail").unwrap();
        let s = open(&eml, u64::MAX).unwrap();
        assert_eq!((s.kind, s.len_hint), (ImportKind::EmlFolder, Some(2)));
        assert_eq!(
            open(&eml.join("a.eml"), u64::MAX).unwrap().kind,
            ImportKind::EmlFile
        );
        assert!(open(&dir.path().join("missing"), u64::MAX).is_err());
    }
}
