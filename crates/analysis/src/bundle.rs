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
use std::rc::Rc;
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
/// Why a WindowsUpdate.etl is listed and not scanned, with what to do.
pub const ETL_REASON: &str = "an ETW trace (WindowsUpdate.etl): only Windows can decode it; run Get-WindowsUpdateLog on the machine and send the WindowsUpdate.log it writes";
/// The largest mail (.eml or forwarded message) read inside a bundle.
const MAX_MAIL_BYTES: u64 = 64 << 20;

/// Walks one bundle. Owns the budget shared by everything inside it.
pub struct Walker<'r> {
    rules: &'r RuleSet,
    limits: Limits,
    deadline: Instant,
    total: Rc<Cell<u64>>,
    entries: u64,
    out: BundleScan,
}

/// A reader that stops with an error at the member's size or ratio limit, or
/// at the bundle's total budget.
struct Bounded<R> {
    inner: R,
    read: u64,
    limit: u64,
    /// Compressed size of the member, for the ratio check.
    compressed: Option<u64>,
    max_ratio: u64,
    total: Rc<Cell<u64>>,
    max_total: u64,
    deadline: Instant,
}

impl<R: Read> Read for Bounded<R> {
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
            total: Rc::new(Cell::new(0)),
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
                // An XML export of events is rendered first (`scan_text`).
                && !logs::is_event_xml(&scan::decode_head(&head, bom, logs::Encoding::Utf8))
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
        entries.sort_by_cached_key(|p| reading_order(&p.to_string_lossy()));
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
        self.total.set(self.total.get() + n as u64);
        let content = logs::classify(name, &head);
        let opens_in_place = match content {
            Content::Evtx => true,
            Content::Zip | Content::Cab | Content::SevenZip | Content::Compound => {
                depth < self.limits.max_depth
            }
            _ => false,
        };
        if opens_in_place {
            if let Err(e) = file.rewind() {
                return self.error(name, "archive", format!("cannot read: {e}"));
            }
            return match content {
                Content::Zip => self.zip(name, file, depth + 1),
                Content::Cab => self.cab(name, file, len, depth + 1),
                Content::SevenZip => self.sevenz(name, file, len, depth + 1),
                Content::Evtx => self.evtx(name, file),
                _ => self.compound(name, file, depth + 1),
            };
        }
        let mut rest = self.bounded(file, u64::MAX, None);
        self.open(name, head, &mut rest, len, depth);
    }

    /// A reader counted against the bundle's budget and deadline, and
    /// against a member's own size and ratio limits.
    fn bounded<R: Read>(&self, inner: R, limit: u64, compressed: Option<u64>) -> Bounded<R> {
        Bounded {
            inner,
            read: 0,
            limit,
            compressed,
            max_ratio: self.limits.max_ratio,
            total: Rc::clone(&self.total),
            max_total: self.limits.max_total_bytes,
            deadline: self.deadline,
        }
    }

    /// Opens what `head` (the first bytes) says an item is: a log is
    /// scanned, an archive walked, a mail or an event log read.
    fn open(&mut self, name: &str, head: Vec<u8>, rest: &mut dyn Read, size: u64, depth: u32) {
        let content = logs::classify(name, &head);
        let container = matches!(
            content,
            Content::Zip
                | Content::Cab
                | Content::SevenZip
                | Content::Gzip
                | Content::Tar
                | Content::Compound
                | Content::Mail
        );
        if container && depth >= self.limits.max_depth {
            return self.refuse_too_deep(name);
        }
        match content {
            Content::NotALog(label) => {
                let reason = if label == logs::ETL_TRACE {
                    ETL_REASON
                } else {
                    NOT_A_LOG
                };
                self.item(name, label, ItemStatus::Skipped, Some(reason.into()), size)
            }
            Content::Text { encoding, bom } => {
                let result = self.scan_text(name, &head, rest, encoding, bom);
                self.record_scan(name, result);
            }
            Content::Gzip | Content::Tar => {
                // A gzip's ratio is judged against its own size.
                let packed = (size > 0).then_some(size);
                let mut whole = std::io::Cursor::new(head).chain(rest);
                if content == Content::Gzip {
                    self.gzip(name, &mut whole, packed, depth + 1);
                } else {
                    self.tar(name, &mut whole, depth + 1);
                }
            }
            Content::Mail => {
                let mut bytes = head;
                let read = rest
                    .take(MAX_MAIL_BYTES.saturating_sub(bytes.len() as u64) + 1)
                    .read_to_end(&mut bytes);
                match read {
                    Err(e) => self.error(name, "mail", format!("cannot read: {e}")),
                    Ok(_) if bytes.len() as u64 > MAX_MAIL_BYTES => self.error(
                        name,
                        "mail",
                        format!("a mail larger than {} MiB: not read", MAX_MAIL_BYTES >> 20),
                    ),
                    Ok(_) => self.mail(name, &bytes, depth + 1),
                }
            }
            Content::Zip | Content::Cab | Content::SevenZip | Content::Evtx | Content::Compound => {
                // These need to seek: a member is spooled to an anonymous
                // temporary file (bounded like any member), then opened.
                let spooled = tempfile::tempfile().and_then(|mut file| {
                    std::io::Write::write_all(&mut file, &head)?;
                    std::io::copy(rest, &mut file)?;
                    file.rewind()?;
                    Ok(file)
                });
                let file = match spooled {
                    Ok(file) => file,
                    Err(e) => return self.error(name, "archive", e.to_string()),
                };
                match content {
                    Content::Zip => self.zip(name, file, depth + 1),
                    Content::Cab => self.cab(name, file, size, depth + 1),
                    Content::SevenZip => self.sevenz(name, file, size, depth + 1),
                    Content::Evtx => self.evtx(name, file),
                    _ => self.compound(name, file, depth + 1),
                }
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
        let mut options = ScanOptions {
            max_bytes: self.limits.max_file_bytes,
            max_findings: self.limits.max_findings,
            kind: None,
        };
        if logs::is_event_xml(&scan::decode_head(head, bom, encoding)) {
            // Events exported as XML: rendered one line per event, as an .evtx.
            options.kind = Some(logs::LogKind::EventLog);
            let text = scan::Utf8Reader::new(head, bom, rest, encoding);
            let mut lines = super::events::xml_lines(text, self.deadline);
            let scanned = scan::scan(
                self.rules,
                name,
                &[],
                &mut lines,
                logs::Encoding::Utf8,
                0,
                &options,
            );
            return scanned.map(|mut s| {
                s.encoding = encoding;
                s
            });
        }
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
        size: Option<u64>,
        compressed: Option<u64>,
        depth: u32,
    ) {
        if let Some(size) = size
            && size > self.limits.max_file_bytes
        {
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
            && let Some(size) = size
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
        // Declared sizes can lie; the real bytes are counted too.
        let limit = size.unwrap_or(u64::MAX).min(self.limits.max_file_bytes);
        let mut bounded = self.bounded(reader, limit, compressed);
        let mut head = vec![0u8; HEAD];
        let n = match read_up_to(&mut bounded, &mut head) {
            Ok(n) => n,
            Err(e) => return self.error(name, "file", e.to_string()),
        };
        head.truncate(n);
        let size = size.unwrap_or(0);
        self.open(name, head, &mut bounded, size, depth);
    }

    /// Refuses an archive that would unpack to more than `max_ratio` times
    /// its size (what its layout declares, checked before decompressing).
    fn refused_by_ratio(&mut self, name: &str, unpacked: u64, len: u64) -> bool {
        let refused =
            unpacked > 1 << 20 && unpacked > len.max(1).saturating_mul(self.limits.max_ratio);
        if refused {
            self.error(
                name,
                "archive",
                format!(
                    "compression ratio {}:1 above the limit of {}:1: refused",
                    unpacked / len.max(1),
                    self.limits.max_ratio
                ),
            );
        }
        refused
    }

    /// A gzip stream: one member, named after the file without `.gz`.
    fn gzip(&mut self, name: &str, reader: &mut dyn Read, packed: Option<u64>, depth: u32) {
        let base = name.rsplit('/').next().unwrap_or(name);
        let lower = base.to_ascii_lowercase();
        let inner = if let Some(stem) = lower.strip_suffix(".tgz") {
            format!("{}.tar", &base[..stem.len()])
        } else if let Some(stem) = lower
            .strip_suffix(".gz")
            .or_else(|| lower.strip_suffix(".gzip"))
        {
            base[..stem.len()].to_string()
        } else {
            "content".to_string()
        };
        self.item(
            name,
            "archive",
            ItemStatus::Scanned,
            None,
            packed.unwrap_or(0),
        );
        let mut decoder = flate2::read::MultiGzDecoder::new(reader);
        self.member(&join(name, &inner), &mut decoder, None, packed, depth);
    }

    /// A tar stream (ustar, GNU or pax), read entry by entry.
    fn tar(&mut self, name: &str, reader: &mut dyn Read, depth: u32) {
        self.item(name, "archive", ItemStatus::Scanned, None, 0);
        let mut archive = tar::Archive::new(tar_guard::Guard::new(reader));
        let entries = match archive.entries() {
            Ok(entries) => entries,
            Err(e) => return self.error(name, "archive", format!("not a readable tar: {e}")),
        };
        for entry in entries {
            if !self.count_entry(name) {
                return;
            }
            let mut entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    // A tar has no index: after a bad header nothing is found.
                    return self.error(name, "archive", format!("unreadable tar entry: {e}"));
                }
            };
            let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let display = join(name, &raw_name);
            if unsafe_path(&raw_name) {
                self.error(&display, "file", UNSAFE_PATH);
                continue;
            }
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                continue;
            }
            if !(kind.is_file() || kind.is_contiguous()) {
                self.error(&display, "file", "a link or special file: not followed");
                continue;
            }
            let size = entry.size();
            self.member(&display, &mut entry, Some(size), None, depth);
        }
    }

    /// A 7z archive: the header is read within a memory limit, and each
    /// solid block is decompressed once, its files taken in order.
    fn sevenz<R: Read + Seek>(&mut self, name: &str, file: R, len: u64, depth: u32) {
        use sevenz_rust2::{ArchiveReader, EntryDecision, Password};
        let mut reader =
            match ArchiveReader::new_with_memory_limit(file, Password::empty(), SEVENZ_MEMORY_KB) {
                Ok(reader) => reader,
                Err(e) => return self.error(name, "archive", format!("not a readable 7z: {e}")),
            };
        reader.set_thread_count(1);
        let unpacked: u64 = reader
            .archive()
            .files
            .iter()
            .map(|f| f.size())
            .fold(0, u64::saturating_add);
        if self.refused_by_ratio(name, unpacked, len) {
            return;
        }
        self.item(name, "archive", ItemStatus::Scanned, None, unpacked);
        let result = reader.for_each_entries_with_decision(|entry, data| {
            if !self.count_entry(name) {
                return Ok(EntryDecision::Stop);
            }
            if entry.is_directory() {
                return Ok(EntryDecision::Continue);
            }
            let raw_name = entry.name().to_string();
            let display = join(name, &raw_name);
            let mut member = Counted {
                inner: data,
                read: 0,
            };
            if unsafe_path(&raw_name) {
                self.error(&display, "file", UNSAFE_PATH);
            } else {
                self.member(&display, &mut member, Some(entry.size()), None, depth);
            }
            // What the member left unread is decompressed here, counted and
            // timed, so that the reader's own drain has nothing left to do.
            let rest = entry.size().saturating_sub(member.read);
            match self.skip(&mut member.inner, rest) {
                Ok(()) => Ok(EntryDecision::Continue),
                Err(e) => {
                    self.error(&display, "file", format!("cannot read: {e}"));
                    Ok(EntryDecision::Stop)
                }
            }
        });
        if let Err(e) = result {
            let reason = match e {
                sevenz_rust2::Error::PasswordRequired
                | sevenz_rust2::Error::MaybeBadPassword(_) => {
                    "encrypted: cannot be read".to_string()
                }
                e => format!("7z: {e}"),
            };
            self.error(name, "archive", reason);
        }
    }

    /// A Windows event log file: every record rendered as a line and scanned.
    fn evtx<R: Read + Seek>(&mut self, name: &str, file: R) {
        let mut parser = match super::events::open_evtx(file) {
            Ok(parser) => parser,
            Err(e) => return self.error(name, "eventlog", e.to_string()),
        };
        let options = ScanOptions {
            max_bytes: self.limits.max_file_bytes,
            max_findings: self.limits.max_findings,
            kind: Some(logs::LogKind::EventLog),
        };
        let mut lines = super::events::evtx_records(&mut parser, self.deadline);
        let result = scan::scan(
            self.rules,
            name,
            &[],
            &mut lines,
            logs::Encoding::Utf8,
            0,
            &options,
        );
        let skipped = lines.skipped;
        let result = result.map(|mut scan| {
            if skipped > 0 {
                scan.warnings
                    .push(format!("{skipped} damaged records were left out"));
            }
            scan
        });
        self.record_scan(name, result);
    }

    /// An OLE compound file: an Outlook .msg is read (its text and its
    /// attachments); any other (an Office document) is listed.
    fn compound<R: Read + Seek>(&mut self, name: &str, file: R, depth: u32) {
        let mut compound = match cfb::CompoundFile::open(file) {
            Ok(c) => c,
            Err(e) => {
                return self.error(
                    name,
                    "document",
                    format!("not a readable compound file: {e}"),
                );
            }
        };
        if !super::outlook::is_message(&compound) {
            return self.item(
                name,
                "document",
                ItemStatus::Skipped,
                Some(NOT_A_LOG.into()),
                0,
            );
        }
        self.item(name, "mail", ItemStatus::Scanned, None, 0);
        self.outlook_message(name, &mut compound, "/", depth);
    }

    /// One message inside a .msg (the root, or an attached message).
    fn outlook_message<F: Read + Seek>(
        &mut self,
        name: &str,
        compound: &mut cfb::CompoundFile<F>,
        root: &str,
        depth: u32,
    ) {
        use super::outlook;
        let message = outlook::read_message(compound, root, MAX_MAIL_BYTES);
        for problem in &message.problems {
            self.error(name, "mail", problem.clone());
        }
        let text = message.text();
        if !text.trim().is_empty() {
            self.text(&join(name, "message.txt"), &text);
        }
        for attachment in message.attachments {
            if !self.count_entry(name) {
                return;
            }
            let display = join(name, &attachment.name);
            if unsafe_path(&attachment.name) {
                self.error(&display, "file", UNSAFE_PATH);
                continue;
            }
            match attachment.content {
                outlook::AttachmentContent::Stream(path) => {
                    let stream = compound.open_stream(&path);
                    match stream {
                        Ok(mut stream) => {
                            let size = stream.len();
                            self.member(&display, &mut stream, Some(size), None, depth);
                        }
                        Err(e) => self.error(&display, "file", format!("cannot read: {e}")),
                    }
                }
                outlook::AttachmentContent::Message(storage) => {
                    if depth >= self.limits.max_depth {
                        self.refuse_too_deep(&display);
                    } else {
                        self.item(&display, "mail", ItemStatus::Scanned, None, 0);
                        self.outlook_message(&display, compound, &storage, depth + 1);
                    }
                }
                outlook::AttachmentContent::Unsupported(what) => {
                    self.item(&display, "file", ItemStatus::Skipped, Some(what), 0)
                }
            }
        }
    }

    /// A mail (an .eml, or a forwarded message): its text is read like
    /// text pasted into a mail, and its attachments analysed.
    fn mail(&mut self, name: &str, raw: &[u8], depth: u32) {
        let Some(forwarded) = casebot_core::mail::parse::forwarded_message(raw) else {
            return self.error(name, "mail", "not a readable mail");
        };
        self.item(name, "mail", ItemStatus::Scanned, None, raw.len() as u64);
        if !forwarded.text.trim().is_empty() {
            self.text(&join(name, "message.txt"), &forwarded.text);
        }
        for (i, attachment) in forwarded.attachments.into_iter().enumerate() {
            if !self.count_entry(name) {
                return;
            }
            let file_name = attachment
                .filename
                .unwrap_or_else(|| format!("attachment-{}", i + 1));
            let display = join(name, &file_name);
            let size = attachment.bytes.len() as u64;
            self.member(
                &display,
                &mut attachment.bytes.as_slice(),
                Some(size),
                None,
                depth,
            );
        }
    }

    /// Text read from a message or pasted into a mail: every rule applies.
    pub fn text(&mut self, name: &str, text: &str) {
        let scan = scan::scan_text(
            self.rules,
            name,
            text,
            Some(logs::LogKind::Text),
            self.limits.max_findings,
        );
        self.record_scan(name, Ok(scan));
    }

    fn zip<R: Read + Seek>(&mut self, name: &str, file: R, depth: u32) {
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
        let mut order: Vec<usize> = (0..archive.len()).collect();
        order.sort_by_cached_key(|&i| {
            let name = archive.name_for_index(i).and_then(Result::ok);
            reading_order(name.as_deref().unwrap_or(""))
        });
        for i in order {
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
            if entry.enclosed_name().is_none() || unsafe_path(&raw_name) {
                self.error(&display, "file", UNSAFE_PATH);
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
            self.member(&display, &mut entry, Some(size), Some(packed), depth);
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
        if self.refused_by_ratio(name, unpacked, len) {
            return;
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
            if unsafe_path(&f.name) {
                self.error(&display, "file", UNSAFE_PATH);
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
            self.member(&display, &mut member, Some(f.size), None, depth);
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

/// Where a file comes in reading order: rotated CBS logs
/// (`CbsPersist_<yyyymmddhhmmss>.log` or `.cab`) by the time in their names,
/// then the current `CBS.log` they were rotated from; everything else by name.
fn reading_order(path: &str) -> (String, u8, String) {
    let (folder, base) = path.rsplit_once(['/', '\\']).unwrap_or(("", path));
    let lower = base.to_ascii_lowercase();
    match lower.strip_prefix("cbspersist_") {
        Some(stamp) => (format!("{folder}/cbs.log"), 0, stamp.to_string()),
        None => (format!("{folder}/{lower}"), 1, String::new()),
    }
}

/// Why an entry with an unsafe path is refused.
const UNSAFE_PATH: &str = "unsafe path (absolute or with ..): refused";
/// The memory a 7z header and its decoders may take, in KiB.
const SEVENZ_MEMORY_KB: usize = 128 << 10;

/// An absolute path, a drive, or a `..` component: a sign of a hostile
/// archive even though nothing is ever written under an entry's name.
fn unsafe_path(name: &str) -> bool {
    name.split(['/', '\\']).any(|c| c == "..")
        || name.starts_with(['/', '\\'])
        || name.contains(':')
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}/{}", child.replace('\\', "/"))
    }
}

/// The `tar` crate reads a GNU long name, long link or pax header into
/// memory whole, at whatever size the header claims. This reader follows the
/// stream's headers as they pass and refuses such an entry over
/// [`tar_guard::MAX_EXTENSION`], before the crate reads it.
mod tar_guard {
    use std::io::Read;

    /// The largest extension header (long name, long link, pax) accepted.
    pub const MAX_EXTENSION: u64 = 1 << 20;
    const BLOCK: u64 = 512;

    pub struct Guard<R> {
        inner: R,
        /// Offset of the next byte read.
        pos: u64,
        /// Where the next header starts.
        next_header: u64,
        header: [u8; 512],
        filled: usize,
        /// A pax header's data being collected (its size records change the
        /// next entry's size).
        pax: Option<(Vec<u8>, u64)>,
        pax_size: Option<u64>,
    }

    impl<R: Read> Guard<R> {
        pub fn new(inner: R) -> Self {
            Guard {
                inner,
                pos: 0,
                next_header: 0,
                header: [0; 512],
                filled: 0,
                pax: None,
                pax_size: None,
            }
        }

        /// A whole header has passed: where is the next one?
        fn header_done(&mut self) -> std::io::Result<()> {
            let start = self.next_header;
            if self.header.iter().all(|&b| b == 0) {
                self.next_header = start + BLOCK;
                return Ok(());
            }
            let Some(size) = header_size(&self.header[124..136]) else {
                // The tar crate refuses this header itself.
                self.next_header = u64::MAX;
                return Ok(());
            };
            let kind = self.header[156];
            let extension = matches!(kind, b'L' | b'K' | b'x' | b'g');
            if extension && size > MAX_EXTENSION {
                return Err(std::io::Error::other(format!(
                    "a tar extension header of {size} bytes (the limit is {} KiB)",
                    MAX_EXTENSION >> 10
                )));
            }
            let size = if extension {
                size
            } else {
                self.pax_size.take().unwrap_or(size)
            };
            if kind == b'x' {
                self.pax = Some((Vec::with_capacity(size as usize), size));
            }
            self.next_header = start
                .saturating_add(BLOCK)
                .saturating_add(size.div_ceil(BLOCK).saturating_mul(BLOCK));
            Ok(())
        }

        fn pax_data(&mut self, bytes: &[u8]) {
            let Some((data, want)) = self.pax.as_mut() else {
                return;
            };
            let take = bytes.len().min((*want as usize).saturating_sub(data.len()));
            data.extend_from_slice(&bytes[..take]);
            if data.len() as u64 >= *want {
                let text = String::from_utf8_lossy(data);
                self.pax_size = text
                    .lines()
                    .filter_map(|record| record.split_once(' ').map(|(_, kv)| kv))
                    .filter_map(|kv| kv.strip_prefix("size="))
                    .filter_map(|v| v.trim().parse().ok())
                    .next_back();
                self.pax = None;
            }
        }
    }

    /// Octal digits, or GNU's base-256 form (high bit set).
    fn header_size(field: &[u8]) -> Option<u64> {
        if field.first().is_some_and(|b| b & 0x80 != 0) {
            let mut value: u64 = 0;
            for (i, &b) in field.iter().enumerate() {
                let b = if i == 0 { b & 0x7f } else { b };
                value = value.checked_mul(256)?.checked_add(u64::from(b))?;
            }
            return Some(value);
        }
        let text = std::str::from_utf8(field).ok()?;
        let digits = text.trim_matches(|c: char| c == ' ' || c == '\0');
        if digits.is_empty() {
            return Some(0);
        }
        u64::from_str_radix(digits, 8).ok()
    }

    impl<R: Read> Read for Guard<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            let mut offset = 0usize;
            while offset < n {
                let here = self.pos + offset as u64;
                let header_at = self.next_header.saturating_add(self.filled as u64);
                if here < header_at {
                    let skip = (header_at - here).min((n - offset) as u64) as usize;
                    self.pax_data(&buf[offset..offset + skip]);
                    offset += skip;
                    continue;
                }
                let take = (512 - self.filled).min(n - offset);
                self.header[self.filled..self.filled + take]
                    .copy_from_slice(&buf[offset..offset + take]);
                self.filled += take;
                offset += take;
                if self.filled == 512 {
                    self.filled = 0;
                    self.header_done()?;
                }
            }
            self.pos += n as u64;
            Ok(n)
        }
    }
}
