//! Bundles: a log-collector zip (with zips and .cab files inside), a folder, a
//! single file or a mail attachment, walked within bounds.
//!
//! Nothing from an archive is ever written under its own name, so a `../`
//! entry cannot escape anywhere; it is still refused and reported, because
//! such an entry is a sign of a hostile archive. Every byte read counts
//! against the bundle's budget (total size, entry count, depth) and every
//! member against its own (size, compression ratio), so a zip bomb stops at
//! the first limit with an error that says which.

use std::cell::Cell;
use std::io::{Read, Seek};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::logs::{self, Content};
use super::rules::RuleSet;
use super::scan::{self, FileScan, ScanOptions, read_full as read_up_to};

/// The bounds of one bundle.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    pub max_entries: u64,
    pub max_ratio: u64,
    pub max_depth: u32,
    pub max_findings: usize,
    /// Wall time one bundle may take; what is left after it is not read.
    pub time_limit: Duration,
}

impl Limits {
    pub fn from_config(c: &crate::config::AnalysisConfig) -> Limits {
        Limits {
            max_file_bytes: c.max_file_mb.saturating_mul(1 << 20),
            max_total_bytes: c.max_total_mb.saturating_mul(1 << 20),
            max_entries: c.max_entries,
            max_ratio: c.max_ratio.max(1),
            max_depth: c.max_depth,
            max_findings: c.max_findings,
            time_limit: Duration::from_secs(c.time_limit_secs.max(1)),
        }
    }
}

/// What happened to one file of a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    Scanned,
    /// Not a log (a Process Monitor trace, an image …): listed, not scanned.
    Skipped,
    /// Refused or unreadable; `reason` says why.
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Path inside the bundle (`logs.zip/CBS/CBS.log`).
    pub path: String,
    /// A log kind (`cbs`, `dism` …), `archive`, or what the file is (`procmon`, `image` …).
    pub kind: String,
    pub status: ItemStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<u64>,
    pub findings: usize,
}

impl Item {
    /// A file listed without being scanned (skipped or refused).
    pub fn listed(
        path: &str,
        kind: &str,
        status: ItemStatus,
        reason: Option<String>,
        bytes: u64,
    ) -> Item {
        Item {
            path: path.to_string(),
            kind: kind.to_string(),
            status,
            reason,
            bytes,
            encoding: None,
            lines: None,
            findings: 0,
        }
    }

    /// A scanned log; its warnings become the reason.
    pub fn scanned(path: &str, scan: &FileScan) -> Item {
        Item {
            path: path.to_string(),
            kind: scan.kind.as_str().to_string(),
            status: ItemStatus::Scanned,
            reason: (!scan.warnings.is_empty()).then(|| scan.warnings.join("; ")),
            bytes: scan.bytes,
            encoding: Some(scan.encoding.as_str()),
            lines: Some(scan.lines),
            findings: scan.findings.len(),
        }
    }
}

/// Everything read from one bundle.
#[derive(Debug, Default)]
pub struct BundleScan {
    pub items: Vec<Item>,
    pub scans: Vec<FileScan>,
    /// Why reading stopped before the end (the time limit), if it did.
    pub stopped: Option<String>,
}

impl BundleScan {
    pub fn merge(&mut self, other: BundleScan) {
        let offset = self.scans.len();
        if self.stopped.is_none() {
            self.stopped = other.stopped;
        }
        self.items.extend(other.items);
        self.scans.extend(other.scans.into_iter().map(|mut s| {
            for f in &mut s.findings {
                f.file_index += offset;
            }
            s
        }));
    }
}

const HEAD: usize = 64 << 10;
/// The reason given for what was not read once a bundle's time is up.
pub const TIME_LIMIT: &str = "stopped: time limit";
/// Why a trace, an image or a binary is listed and not scanned.
const NOT_A_LOG: &str = "not a text log";

/// Walks one bundle. Owns the budget shared by everything inside it.
pub struct Walker<'r> {
    rules: &'r RuleSet,
    limits: Limits,
    deadline: Instant,
    total: Cell<u64>,
    entries: u64,
    out: BundleScan,
}

/// A reader that stops with an error at the member's size or ratio limit, or
/// at the bundle's total budget.
struct Bounded<'a, R> {
    inner: R,
    read: u64,
    limit: u64,
    /// Compressed size of the member, for the ratio check.
    compressed: Option<u64>,
    max_ratio: u64,
    total: &'a Cell<u64>,
    max_total: u64,
    deadline: Instant,
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        self.total.set(self.total.get() + n as u64);
        let refuse = |message: String| Err(std::io::Error::other(message));
        if self.read > self.limit {
            return refuse(format!(
                "member larger than the limit of {} MiB",
                self.limit >> 20
            ));
        }
        if let Some(compressed) = self.compressed
            && self.read > 1 << 20
            && self.read > compressed.max(1).saturating_mul(self.max_ratio)
        {
            return refuse(format!(
                "compression ratio above {}:1 ({} bytes packed, more than {} unpacked): refused as a zip bomb",
                self.max_ratio, compressed, self.read
            ));
        }
        if self.total.get() > self.max_total {
            return refuse(format!(
                "bundle larger than the limit of {} MiB in total",
                self.max_total >> 20
            ));
        }
        if Instant::now() > self.deadline {
            return refuse(TIME_LIMIT.to_string());
        }
        Ok(n)
    }
}

impl<'r> Walker<'r> {
    pub fn new(rules: &'r RuleSet, limits: Limits) -> Self {
        Walker {
            rules,
            limits,
            deadline: Instant::now() + limits.time_limit,
            total: Cell::new(0),
            entries: 0,
            out: BundleScan::default(),
        }
    }

    pub fn finish(mut self) -> BundleScan {
        if self.out.stopped.is_none() && Instant::now() > self.deadline {
            self.out.stopped = Some(self.stopped_reason());
        }
        self.out
    }

    /// What a bundle that ran out of time says.
    fn stopped_reason(&self) -> String {
        format!(
            "{TIME_LIMIT} of {} s: the rest of the bundle was not read",
            self.limits.time_limit.as_secs()
        )
    }

    /// True once the bundle's time is up: the item is listed as not read.
    fn out_of_time(&mut self, name: &str) -> bool {
        if Instant::now() <= self.deadline {
            return false;
        }
        if self.out.stopped.is_none() {
            self.out.stopped = Some(self.stopped_reason());
        }
        self.error(name, "file", TIME_LIMIT);
        true
    }

    fn item(
        &mut self,
        path: &str,
        kind: &str,
        status: ItemStatus,
        reason: Option<String>,
        bytes: u64,
    ) {
        self.out
            .items
            .push(Item::listed(path, kind, status, reason, bytes));
    }

    fn error(&mut self, path: &str, kind: &str, reason: impl Into<String>) {
        self.item(path, kind, ItemStatus::Error, Some(reason.into()), 0);
    }

    /// A file or a folder on disk.
    pub fn path(&mut self, path: &Path, display: &str) {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => return self.error(display, "file", format!("cannot read: {e}")),
        };
        if meta.file_type().is_symlink() {
            return self.error(display, "file", "symbolic link: not followed");
        }
        if meta.is_dir() {
            return self.dir(path, display);
        }
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) => return self.error(display, "file", format!("cannot open: {e}")),
        };
        // A big plain log on disk is scanned on every core.
        if meta.len() >= scan::PARALLEL_MIN_BYTES {
            let mut head = vec![0u8; HEAD];
            match read_up_to(&mut file, &mut head) {
                Ok(n) => head.truncate(n),
                Err(e) => return self.error(display, "file", format!("cannot read: {e}")),
            }
            if let Content::Text {
                encoding: logs::Encoding::Utf8,
                bom,
            } = logs::classify(display, &head)
            {
                self.total.set(self.total.get() + meta.len());
                if self.total.get() > self.limits.max_total_bytes {
                    return self.error(
                        display,
                        "log",
                        format!(
                            "bundle larger than the limit of {} MiB in total",
                            self.limits.max_total_bytes >> 20
                        ),
                    );
                }
                let options = ScanOptions {
                    max_bytes: self.limits.max_file_bytes,
                    max_findings: self.limits.max_findings,
                    kind: None,
                };
                let result = scan::scan_file_parallel(
                    self.rules,
                    display,
                    &file,
                    meta.len(),
                    &head,
                    bom,
                    &options,
                );
                return self.record_scan(display, result);
            }
            if let Err(e) = file.rewind() {
                return self.error(display, "file", format!("cannot read: {e}"));
            }
        }
        self.seekable(display, file, meta.len(), 0)
    }

    fn dir(&mut self, path: &Path, display: &str) {
        let mut entries: Vec<_> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(e) => return self.error(display, "folder", format!("cannot list: {e}")),
        };
        entries.sort();
        for entry in entries {
            if !self.count_entry(display) {
                return;
            }
            let name = entry
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.path(&entry, &join(display, &name));
        }
    }

    /// Lists an archive nested beyond `max_depth` as refused.
    fn refuse_too_deep(&mut self, name: &str) {
        let reason = format!(
            "archives nested deeper than {}: not opened",
            self.limits.max_depth
        );
        self.error(name, "archive", reason);
    }

    /// Counts one more entry against the bundle; false once over the limit.
    fn count_entry(&mut self, display: &str) -> bool {
        if self.out_of_time(display) {
            return false;
        }
        self.entries += 1;
        if self.entries == self.limits.max_entries + 1 {
            self.error(
                display,
                "archive",
                format!(
                    "more than {} entries in the bundle: the rest is not read",
                    self.limits.max_entries
                ),
            );
        }
        self.entries <= self.limits.max_entries
    }

    /// Bytes in memory (a mail attachment).
    pub fn bytes(&mut self, name: &str, bytes: &[u8]) {
        self.seekable(name, std::io::Cursor::new(bytes), bytes.len() as u64, 0);
    }

    /// A downloaded or spooled file.
    pub fn seekable_file(&mut self, name: &str, file: std::fs::File, len: u64) {
        self.seekable(name, file, len, 0);
    }

    /// A file that can seek: archives are opened in place.
    fn seekable<R: Read + Seek>(&mut self, name: &str, mut file: R, len: u64, depth: u32) {
        let mut head = vec![0u8; HEAD];
        let n = match read_up_to(&mut file, &mut head) {
            Ok(n) => n,
            Err(e) => return self.error(name, "file", format!("cannot read: {e}")),
        };
        head.truncate(n);
        match logs::classify(name, &head) {
            Content::Zip | Content::Cab if depth >= self.limits.max_depth => {
                self.refuse_too_deep(name)
            }
            Content::Zip => match file.rewind() {
                Ok(()) => self.zip(name, file, len, depth + 1),
                Err(e) => self.error(name, "archive", format!("cannot read: {e}")),
            },
            Content::Cab => match file.rewind() {
                Ok(()) => self.cab(name, file, len, depth + 1),
                Err(e) => self.error(name, "archive", format!("cannot read: {e}")),
            },
            Content::NotALog(label) => self.item(
                name,
                label,
                ItemStatus::Skipped,
                Some(NOT_A_LOG.into()),
                len,
            ),
            Content::Text { encoding, bom } => {
                let total = &self.total;
                total.set(total.get() + n as u64);
                let mut rest = Bounded {
                    inner: file,
                    read: n as u64,
                    limit: u64::MAX,
                    compressed: None,
                    max_ratio: u64::MAX,
                    total,
                    max_total: self.limits.max_total_bytes,
                    deadline: self.deadline,
                };
                let result = self.scan_text(name, &head, &mut rest, encoding, bom);
                self.record_scan(name, result);
            }
        }
    }

    fn scan_text(
        &self,
        name: &str,
        head: &[u8],
        rest: &mut dyn Read,
        encoding: logs::Encoding,
        bom: usize,
    ) -> Result<FileScan, scan::ScanError> {
        let options = ScanOptions {
            max_bytes: self.limits.max_file_bytes,
            max_findings: self.limits.max_findings,
            kind: None,
        };
        scan::scan(self.rules, name, head, rest, encoding, bom, &options)
    }

    fn record_scan(&mut self, name: &str, result: Result<FileScan, scan::ScanError>) {
        match result {
            Ok(scan) => {
                self.out.items.push(Item::scanned(name, &scan));
                let index = self.out.scans.len();
                let mut scan = scan;
                for f in &mut scan.findings {
                    f.file_index = index;
                }
                self.out.scans.push(scan);
            }
            Err(e) => {
                let reason = match e {
                    scan::ScanError::TooLarge {
                        limit_mb, read_mb, ..
                    } => {
                        format!(
                            "larger than the limit of {limit_mb} MiB (stopped after {read_mb} MiB)"
                        )
                    }
                    scan::ScanError::Read { source, .. } => source.to_string(),
                };
                self.error(name, "log", reason);
            }
        }
    }

    /// A member of an archive, read once from the start.
    fn member(
        &mut self,
        name: &str,
        reader: &mut dyn Read,
        size: u64,
        compressed: Option<u64>,
        depth: u32,
    ) {
        if size > self.limits.max_file_bytes {
            return self.error(
                name,
                "file",
                format!(
                    "{} MiB: larger than the limit of {} MiB",
                    size >> 20,
                    self.limits.max_file_bytes >> 20
                ),
            );
        }
        if let Some(packed) = compressed
            && size > 1 << 20
            && size > packed.max(1).saturating_mul(self.limits.max_ratio)
        {
            return self.error(
                name,
                "file",
                format!(
                    "compression ratio {}:1 above the limit of {}:1: refused as a zip bomb",
                    size / packed.max(1),
                    self.limits.max_ratio
                ),
            );
        }
        let limits = self.limits;
        let total = &self.total;
        let mut bounded = Bounded {
            inner: reader,
            read: 0,
            // Declared sizes can lie; the real bytes are counted too.
            limit: size.min(limits.max_file_bytes),
            compressed,
            max_ratio: limits.max_ratio,
            total,
            max_total: limits.max_total_bytes,
            deadline: self.deadline,
        };
        let mut head = vec![0u8; HEAD];
        let n = match read_up_to(&mut bounded, &mut head) {
            Ok(n) => n,
            Err(e) => return self.error(name, "file", e.to_string()),
        };
        head.truncate(n);
        match logs::classify(name, &head) {
            content @ (Content::Zip | Content::Cab) => {
                if depth >= self.limits.max_depth {
                    return self.refuse_too_deep(name);
                }
                // Archives need to seek: spool the member to an anonymous
                // temporary file (bounded like any member), then open it.
                let spooled = tempfile::tempfile().and_then(|mut file| {
                    std::io::Write::write_all(&mut file, &head)?;
                    std::io::copy(&mut bounded, &mut file)?;
                    file.rewind()?;
                    Ok(file)
                });
                match spooled {
                    Ok(file) if content == Content::Zip => self.zip(name, file, size, depth + 1),
                    Ok(file) => self.cab(name, file, size, depth + 1),
                    Err(e) => self.error(name, "archive", e.to_string()),
                }
            }
            Content::NotALog(label) => self.item(
                name,
                label,
                ItemStatus::Skipped,
                Some(NOT_A_LOG.into()),
                size,
            ),
            Content::Text { encoding, bom } => {
                let result = self.scan_text(name, &head, &mut bounded, encoding, bom);
                self.record_scan(name, result);
            }
        }
    }

    fn zip<R: Read + Seek>(&mut self, name: &str, file: R, _len: u64, depth: u32) {
        let mut archive = match zip::ZipArchive::new(file) {
            Ok(a) => a,
            Err(e) => return self.error(name, "archive", format!("not a readable zip: {e}")),
        };
        self.item(
            name,
            "archive",
            ItemStatus::Scanned,
            None,
            archive.decompressed_size().unwrap_or(0) as u64,
        );
        for i in 0..archive.len() {
            if !self.count_entry(name) {
                return;
            }
            let mut entry = match archive.by_index(i) {
                Ok(e) => e,
                Err(e) => {
                    self.error(
                        &format!("{name}/#{i}"),
                        "file",
                        format!("unreadable entry: {e}"),
                    );
                    continue;
                }
            };
            let raw_name = match entry.name() {
                Ok(n) => n.into_owned(),
                Err(e) => {
                    self.error(
                        &format!("{name}/#{i}"),
                        "file",
                        format!("unreadable entry name: {e}"),
                    );
                    continue;
                }
            };
            let display = join(name, &raw_name);
            if entry.enclosed_name().is_none() || raw_name.split(['/', '\\']).any(|c| c == "..") {
                self.error(
                    &display,
                    "file",
                    "unsafe path (absolute or with ..): refused",
                );
                continue;
            }
            if entry.is_dir() {
                continue;
            }
            if entry.encrypted() {
                self.error(&display, "file", "encrypted: cannot be read");
                continue;
            }
            let (size, packed) = (entry.size(), entry.compressed_size());
            self.member(&display, &mut entry, size, Some(packed), depth);
        }
    }

    fn cab<R: Read + Seek>(&mut self, name: &str, mut file: R, len: u64, depth: u32) {
        let layout = match super::cabinet::read_layout(&mut file) {
            Ok(layout) => layout,
            Err(reason) => {
                return self.error(name, "archive", format!("not a readable cab: {reason}"));
            }
        };
        // What decompressing every folder costs, whatever the files claim.
        let unpacked = layout.unpacked;
        if unpacked > 1 << 20 && unpacked > len.max(1).saturating_mul(self.limits.max_ratio) {
            return self.error(
                name,
                "archive",
                format!(
                    "compression ratio {}:1 above the limit of {}:1: refused",
                    unpacked / len.max(1),
                    self.limits.max_ratio
                ),
            );
        }
        self.item(name, "archive", ItemStatus::Scanned, None, unpacked);
        for (index, folder) in layout.folders.iter().enumerate() {
            let mut files: Vec<&super::cabinet::FileEntry> = layout
                .files
                .iter()
                .filter(|f| f.folder == Some(index))
                .collect();
            files.sort_by_key(|f| f.start);
            if !files.is_empty() && !self.cab_folder(name, &mut file, folder, &files, depth) {
                return;
            }
        }
        for f in layout.files.iter().filter(|f| f.folder.is_none()) {
            let display = join(name, &f.name);
            self.error(&display, "file", "continued in another cabinet: not read");
        }
    }

    /// Decompresses one folder once, taking its files (in order) as the
    /// stream passes them. Every decompressed byte, skipped or read, counts
    /// against the bundle's total. `false` when the bundle must stop.
    fn cab_folder<R: Read + Seek>(
        &mut self,
        name: &str,
        file: &mut R,
        folder: &super::cabinet::FolderLayout,
        files: &[&super::cabinet::FileEntry],
        depth: u32,
    ) -> bool {
        let mut stream = match super::cabinet::FolderStream::new(file, folder) {
            Ok(stream) => stream,
            Err(reason) => {
                for f in files {
                    self.error(
                        &join(name, &f.name),
                        "file",
                        format!("cannot read: {reason}"),
                    );
                }
                return true;
            }
        };
        let mut position = 0u64;
        for f in files {
            if !self.count_entry(name) {
                return false;
            }
            let display = join(name, &f.name);
            if f.name.split(['/', '\\']).any(|c| c == "..")
                || f.name.starts_with(['/', '\\'])
                || f.name.contains(':')
            {
                self.error(
                    &display,
                    "file",
                    "unsafe path (absolute or with ..): refused",
                );
                continue;
            }
            if f.start < position {
                self.error(&display, "file", "overlaps the file before it: not read");
                continue;
            }
            if let Err(e) = self.skip(&mut stream, f.start - position) {
                self.error(&display, "file", format!("cannot read: {e}"));
                return self.total.get() <= self.limits.max_total_bytes;
            }
            let mut member = Counted {
                inner: (&mut stream).take(f.size),
                read: 0,
            };
            self.member(&display, &mut member, f.size, None, depth);
            // What the member left unread is still decompressed to go on.
            let rest = f.size - member.read;
            position = f.start + f.size;
            if let Err(e) = self.skip(&mut member.inner, rest) {
                self.error(&display, "file", format!("cannot read: {e}"));
                return self.total.get() <= self.limits.max_total_bytes;
            }
        }
        true
    }

    /// Reads and drops `n` bytes, counted against the bundle's total.
    fn skip(&self, reader: &mut dyn Read, n: u64) -> std::io::Result<()> {
        let mut buf = vec![0u8; 64 << 10];
        let mut left = n;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let got = reader.read(&mut buf[..want])?;
            if got == 0 {
                return Err(std::io::Error::other("the folder's data ends early"));
            }
            left -= got as u64;
            self.total.set(self.total.get() + got as u64);
            if self.total.get() > self.limits.max_total_bytes {
                return Err(std::io::Error::other(format!(
                    "bundle larger than the limit of {} MiB in total",
                    self.limits.max_total_bytes >> 20
                )));
            }
            if Instant::now() > self.deadline {
                return Err(std::io::Error::other(TIME_LIMIT));
            }
        }
        Ok(())
    }
}

/// A reader that counts what was read through it.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}/{}", child.replace('\\', "/"))
    }
}
