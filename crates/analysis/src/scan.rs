//! The streaming log scanner: bytes in, findings out, in bounded memory.
//!
//! Like ripgrep, it does not look at lines one by one: the rules of the log's
//! kind form one multi-pattern regex that runs over a whole buffer, and only a
//! line it matches is taken apart (head, entry, rule, captures, codes). A log
//! is read in 1 MiB blocks; UTF-16 and ANSI logs are transcoded to UTF-8 on the
//! way in, UTF-8 logs are searched as they are. Memory stays flat whatever the
//! size of the log: one block, the findings (capped), and counters.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;

use regex_automata::Input;
use serde::Serialize;

use super::codes::{self, Code};
use super::extract;
use super::logs::{self, Encoding, LineFormat, LogKind};
use super::rules::{KindMatcher, Role, RuleSet, Severity};

const BLOCK: usize = 1 << 20;
/// A "line" longer than this is cut: binary junk must not grow the buffer.
const MAX_LINE: usize = 1 << 20;
/// Lines before a match searched for its entry's head (CSI continues entries
/// on the next line: `[gle=0x80004005]`).
const ENTRY_LOOKBACK_LINES: usize = 8;
const ENTRY_MAX_BYTES: usize = 8 << 10;
/// Text kept of a finding's entry.
const TEXT_MAX_CHARS: usize = 2000;

/// One line (entry) a rule matched.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: String,
    #[serde(skip)]
    pub role: Role,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub file: String,
    /// 1-based line number of the entry's first line.
    pub line: u64,
    pub time: Option<String>,
    pub level: Option<String>,
    /// The log's own component column: CBS, CSI, DISM, Agent …
    pub source: Option<String>,
    pub text: String,
    /// Normalised codes (`0x80073712`).
    pub codes: Vec<String>,
    /// The same codes as the log wrote them, with symbolic names.
    pub code_details: Vec<Code>,
    pub kb: Option<String>,
    pub package: Option<String>,
    /// The servicing component: a WinSxS folder or a CSI identity's name.
    pub component: Option<String>,
    pub file_name: Option<String>,
    pub os_build: Option<String>,
    /// Order of the file within its bundle, for sorting findings without time.
    #[serde(skip)]
    pub file_index: usize,
}

/// The result of scanning one log.
#[derive(Debug, Clone, Serialize)]
pub struct FileScan {
    pub file: String,
    pub kind: LogKind,
    pub encoding: Encoding,
    pub bytes: u64,
    pub lines: u64,
    pub findings: Vec<Finding>,
    /// Findings not kept because of the cap (the oldest go first).
    pub dropped: u64,
    /// Lines matched by noise rules: counted, never a cause.
    pub noise: u64,
    /// Matches per rule id, noise included.
    pub rule_hits: BTreeMap<String, u64>,
    pub warnings: Vec<String>,
}

/// Why a log could not be scanned to its end.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{file}: larger than the limit of {limit_mb} MiB; stopped after reading {read_mb} MiB")]
    TooLarge {
        file: String,
        limit_mb: u64,
        read_mb: u64,
    },
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
}

/// Options of one scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub max_bytes: u64,
    pub max_findings: usize,
    /// Forces the kind instead of deciding from name and content.
    pub kind: Option<LogKind>,
}

/// Turns input bytes into UTF-8 bytes block by block.
struct Decoder {
    inner: Option<encoding_rs::Decoder>,
    replaced: bool,
}

impl Decoder {
    fn new(encoding: Encoding) -> Self {
        let inner = match encoding {
            Encoding::Utf8 => None,
            Encoding::Utf16Le => Some(encoding_rs::UTF_16LE.new_decoder_without_bom_handling()),
            Encoding::Utf16Be => Some(encoding_rs::UTF_16BE.new_decoder_without_bom_handling()),
            Encoding::Ansi => Some(encoding_rs::GB18030.new_decoder_without_bom_handling()),
        };
        Decoder {
            inner,
            replaced: false,
        }
    }

    /// Appends the decoded form of `input` to `out`.
    fn push(&mut self, input: &[u8], out: &mut Vec<u8>, last: bool) {
        let Some(decoder) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return;
        };
        let mut read = 0;
        loop {
            let need = decoder
                .max_utf8_buffer_length(input.len() - read)
                .unwrap_or(input.len() * 3 + 16);
            let start = out.len();
            out.resize(start + need, 0);
            let (result, r, w, replaced) =
                decoder.decode_to_utf8(&input[read..], &mut out[start..], last);
            out.truncate(start + w);
            read += r;
            self.replaced |= replaced;
            if result == encoding_rs::CoderResult::InputEmpty {
                break;
            }
        }
    }
}

/// The first few KiB of a head as text, to tell what a text file holds.
pub(crate) fn decode_head(head: &[u8], bom: usize, encoding: Encoding) -> String {
    let sample = &head[bom.min(head.len())..head.len().min(bom + 8192)];
    let mut out = Vec::new();
    Decoder::new(encoding).push(sample, &mut out, false);
    String::from_utf8_lossy(&out).into_owned()
}

/// A reader that yields the UTF-8 form of another reader's text (for readers
/// that parse a text format, such as an event log's XML export).
pub(crate) struct Utf8Reader<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<R: Read> Utf8Reader<R> {
    /// `head` is what was already read of `inner`, BOM included; `bom` bytes
    /// of it are skipped.
    pub(crate) fn new(head: &[u8], bom: usize, inner: R, encoding: Encoding) -> Self {
        let mut decoder = Decoder::new(encoding);
        let mut out = Vec::with_capacity(BLOCK);
        decoder.push(&head[bom.min(head.len())..], &mut out, false);
        Utf8Reader {
            inner,
            decoder,
            input: vec![0u8; BLOCK],
            out,
            pos: 0,
            done: false,
        }
    }
}

impl<R: Read> Read for Utf8Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.out.len() && !self.done {
            self.out.clear();
            self.pos = 0;
            let n = self.inner.read(&mut self.input)?;
            self.done = n == 0;
            self.decoder
                .push(&self.input[..n], &mut self.out, self.done);
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Scans one log. `name` is its path inside the bundle (for reports and for
/// the kind); `head` is what the caller already read of it, `rest` the rest.
pub fn scan(
    rules: &RuleSet,
    name: &str,
    head: &[u8],
    rest: &mut dyn Read,
    encoding: Encoding,
    bom: usize,
    options: &ScanOptions,
) -> Result<FileScan, ScanError> {
    let mut decoder = Decoder::new(encoding);
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK * 2);
    decoder.push(&head[bom.min(head.len())..], &mut buf, false);
    let head_text = String::from_utf8_lossy(&buf[..buf.len().min(64 << 10)]).into_owned();
    let kind = options
        .kind
        .unwrap_or_else(|| logs::kind_of(name, &head_text));
    let matcher = rules.matcher(kind);

    let mut scanner = Scanner {
        rules,
        file: name.to_string(),
        findings: VecDeque::new(),
        max_findings: options.max_findings.max(1),
        dropped: 0,
        noise: 0,
        rule_hits: BTreeMap::new(),
        last_entry_start: None,
    };
    let mut total_in = head.len() as u64;
    let mut lines = LineCount {
        base: 1,
        counted_to: 0,
        before_counted: 0,
    };
    let mut pos = 0usize;
    let mut eof = false;
    let mut input = vec![0u8; BLOCK];
    let mut warnings = Vec::new();

    loop {
        // Search only complete lines, unless the input has ended or a line is absurdly long.
        let complete = if eof {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf[pos..]) {
                Some(i) => pos + i + 1,
                None if buf.len() - pos >= MAX_LINE => buf.len(),
                None => pos,
            }
        };
        pos = scanner.search(matcher, &buf[..complete], pos, &mut lines);
        if eof {
            break;
        }
        // Keep a few lines before `pos` (a later match may continue that entry),
        // drop the rest, then read the next block.
        let keep_from = context_start(&buf, pos);
        if keep_from > 0 {
            lines.drop_prefix(&buf, keep_from);
            buf.drain(..keep_from);
            pos -= keep_from;
            scanner.last_entry_start = scanner
                .last_entry_start
                .and_then(|s| s.checked_sub(keep_from));
        }
        let n = read_full(rest, &mut input).map_err(|source| ScanError::Read {
            file: name.to_string(),
            source,
        })?;
        total_in += n as u64;
        if total_in > options.max_bytes {
            return Err(ScanError::TooLarge {
                file: name.to_string(),
                limit_mb: options.max_bytes >> 20,
                read_mb: total_in >> 20,
            });
        }
        if n == 0 {
            eof = true;
            if matches!(encoding, Encoding::Utf16Le | Encoding::Utf16Be)
                && (total_in - bom as u64) % 2 == 1
            {
                warnings
                    .push("ends in the middle of a UTF-16 character (truncated file)".to_string());
            }
            decoder.push(&[], &mut buf, true);
        } else {
            decoder.push(&input[..n], &mut buf, false);
        }
    }
    let lines =
        lines.base - 1 + count_lines(&buf) + u64::from(!buf.ends_with(b"\n") && !buf.is_empty());
    if decoder.replaced {
        warnings.push(format!(
            "invalid {} sequences were replaced",
            encoding.as_str()
        ));
    }
    if scanner.dropped > 0 {
        warnings.push(format!(
            "{} findings over the cap of {} were not kept (the earliest ones)",
            scanner.dropped, scanner.max_findings
        ));
    }
    Ok(FileScan {
        file: name.to_string(),
        kind,
        encoding,
        bytes: total_in - bom as u64,
        lines,
        findings: scanner.findings.into(),
        dropped: scanner.dropped,
        noise: scanner.noise,
        rule_hits: scanner.rule_hits,
        warnings,
    })
}

/// Scans a text already in memory (a mail body).
pub fn scan_text(
    rules: &RuleSet,
    name: &str,
    text: &str,
    kind: Option<LogKind>,
    max_findings: usize,
) -> FileScan {
    let options = ScanOptions {
        max_bytes: u64::MAX,
        max_findings,
        kind,
    };
    let mut empty: &[u8] = &[];
    match scan(
        rules,
        name,
        text.as_bytes(),
        &mut empty,
        Encoding::Utf8,
        0,
        &options,
    ) {
        Ok(scan) => scan,
        // Reading from memory cannot fail and has no size limit.
        Err(e) => unreachable!("scanning memory failed: {e}"),
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
pub(crate) fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Counts `\n` bytes. Summing in chunks of 255 lets the compiler vectorise it.
fn count_lines(bytes: &[u8]) -> u64 {
    bytes
        .chunks(255)
        .map(|chunk| chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n')) as u64)
        .sum()
}

/// Where to keep the buffer from: a few lines before `pos`, bounded in bytes.
fn context_start(buf: &[u8], pos: usize) -> usize {
    let floor = pos.saturating_sub(ENTRY_MAX_BYTES);
    let mut start = pos;
    for _ in 0..ENTRY_LOOKBACK_LINES {
        if start <= floor {
            break;
        }
        match memchr::memrchr(b'\n', &buf[floor..start - 1]) {
            Some(i) => start = floor + i + 1,
            None => {
                start = floor;
                break;
            }
        }
    }
    // Never cut inside a line.
    if start > 0 && buf.get(start - 1) != Some(&b'\n') {
        start = memchr::memchr(b'\n', &buf[start..pos.max(start)]).map_or(pos, |i| start + i + 1);
    }
    start.min(pos)
}

fn has_head(line: &[u8]) -> bool {
    // The formats all begin with a four-digit year.
    line.len() >= 19 && line[..4].iter().all(u8::is_ascii_digit) && matches!(line[4], b'-' | b'/')
}

/// An entry is a line with a head plus the continuation lines after it. A match
/// on a continuation line belongs to the entry above it.
fn entry_bounds(buf: &[u8], line_start: usize) -> (usize, usize) {
    let line_end =
        |from: usize| memchr::memchr(b'\n', &buf[from..]).map_or(buf.len(), |i| from + i + 1);
    let mut start = line_start;
    if !has_head(&buf[line_start..]) {
        let mut probe = line_start;
        for _ in 0..ENTRY_LOOKBACK_LINES {
            if probe == 0 || line_start - probe > ENTRY_MAX_BYTES {
                break;
            }
            let prev = memchr::memrchr(b'\n', &buf[..probe - 1]).map_or(0, |i| i + 1);
            if has_head(&buf[prev..]) {
                start = prev;
                break;
            }
            probe = prev;
        }
    }
    let first_end = line_end(start);
    let mut end = if start == line_start {
        first_end
    } else {
        line_end(line_start)
    };
    // Only an entry with a head has continuation lines.
    if has_head(&buf[start..]) {
        for _ in 0..ENTRY_LOOKBACK_LINES {
            if end >= buf.len() || end - start > ENTRY_MAX_BYTES || has_head(&buf[end..]) {
                break;
            }
            let next = line_end(end);
            let next_line = &buf[end..next];
            if next_line.iter().all(u8::is_ascii_whitespace) {
                break;
            }
            end = next;
        }
    }
    (start, end)
}

/// Line numbers of a sliding buffer, counted lazily: only up to where a
/// finding is, never over the whole file.
struct LineCount {
    /// The line number of the buffer's first byte.
    base: u64,
    /// How far into the buffer lines are counted...
    counted_to: usize,
    /// ...and how many lines lie before that point.
    before_counted: u64,
}

impl LineCount {
    /// The line number at `at` (the start of a line) in `buf`.
    fn line_at(&mut self, buf: &[u8], at: usize) -> u64 {
        if at >= self.counted_to {
            self.before_counted += count_lines(&buf[self.counted_to..at]);
            self.counted_to = at;
            self.base + self.before_counted
        } else {
            self.base + self.before_counted - count_lines(&buf[at..self.counted_to])
        }
    }

    /// The buffer loses its first `keep_from` bytes.
    fn drop_prefix(&mut self, buf: &[u8], keep_from: usize) {
        if self.counted_to < keep_from {
            self.before_counted += count_lines(&buf[self.counted_to..keep_from]);
            self.counted_to = keep_from;
        }
        let lines_in_prefix = self.before_counted - count_lines(&buf[keep_from..self.counted_to]);
        self.base += lines_in_prefix;
        self.before_counted -= lines_in_prefix;
        self.counted_to -= keep_from;
    }
}

struct Scanner<'r> {
    rules: &'r RuleSet,

    file: String,
    findings: VecDeque<Finding>,
    max_findings: usize,
    dropped: u64,
    noise: u64,
    rule_hits: BTreeMap<String, u64>,
    last_entry_start: Option<usize>,
}

impl Scanner<'_> {
    /// Takes every match in `buf[pos..]` (complete lines only); returns where
    /// the search stopped.
    fn search(
        &mut self,
        matcher: &KindMatcher,
        buf: &[u8],
        mut pos: usize,
        lines: &mut LineCount,
    ) -> usize {
        let complete = buf.len();
        while pos < complete {
            // Only the end of a match is needed (the line is what counts), so
            // the reverse search for its start is skipped.
            let found = matcher
                .regex
                .search_half(&Input::new(buf).range(pos..complete));
            let Some(m) = found else {
                return complete;
            };
            let end = m.offset().max(pos + 1);
            let line_start = memchr::memrchr(b'\n', &buf[..end - 1]).map_or(0, |i| i + 1);
            let rule = matcher.rule_of[m.pattern().as_usize()];
            let (entry_start, entry_end) = entry_bounds(buf, line_start);
            let line_no = lines.line_at(buf, entry_start);
            self.take(rule, &buf[entry_start..entry_end], entry_start, line_no);
            pos = entry_end.max(end).min(complete);
        }
        pos
    }

    fn take(&mut self, index: usize, entry: &[u8], entry_start: usize, line_no: u64) {
        if self.last_entry_start == Some(entry_start) {
            return;
        }
        self.last_entry_start = Some(entry_start);
        let rule = &self.rules.rules[index];
        *self.rule_hits.entry(rule.id.clone()).or_default() += 1;
        if rule.role == Role::Noise {
            self.noise += 1;
            return;
        }
        let finding = self.finding(index, entry, line_no);
        if self.findings.len() == self.max_findings {
            self.findings.pop_front();
            self.dropped += 1;
        }
        self.findings.push_back(finding);
    }

    fn finding(&self, index: usize, entry: &[u8], line_no: u64) -> Finding {
        let rule = &self.rules.rules[index];
        let text = decode_line(entry);
        let text = clean_pasted(&text);
        let first_line = text.lines().next().unwrap_or("");
        let head = logs::parse_head(first_line);
        let names = |code: &str| self.rules.code_names.get(code).cloned();
        let mut code_details = codes::extract(&text, &names);
        let mut facts = extract::facts(&text);
        if let Some(caps) = rule.regex.captures(text.as_bytes()) {
            let group = |name: &str| {
                caps.name(name)
                    .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
            };
            if let Some(kb) = group("kb") {
                facts.kb = Some(if kb.to_ascii_uppercase().starts_with("KB") {
                    kb.to_ascii_uppercase()
                } else {
                    format!("KB{kb}")
                });
            }
            if let Some(p) = group("package") {
                facts.package = Some(p);
            }
            if let Some(c) = group("component") {
                facts.component = Some(c);
            }
            if let Some(f) = group("file") {
                facts.file_name = Some(extract::base_name(&f).to_string());
            }
            if let Some(c) = group("code") {
                let found = codes::extract(&format!("HRESULT = {c}"), &names);
                let found = if found.is_empty() {
                    codes::extract(&format!("Error: {c}"), &names)
                } else {
                    found
                };
                for code in found.into_iter().rev() {
                    if !code_details.iter().any(|d| d.code == code.code) {
                        code_details.insert(0, code);
                    }
                }
            }
        }
        let mut display: String = text.trim_end().chars().take(TEXT_MAX_CHARS).collect();
        if display.len() < text.trim_end().len() {
            display.push('…');
        }
        Finding {
            rule: rule.id.clone(),
            role: rule.role,
            severity: rule.severity,
            class: rule.class.clone(),
            file: self.file.clone(),
            line: line_no,
            time: head.time,
            level: head.level,
            source: head.component.filter(|_| head.format != LineFormat::None),
            text: display,
            codes: code_details.iter().map(|c| c.code.clone()).collect(),
            code_details,
            kb: facts.kb,
            package: facts.package,
            component: facts.component,
            file_name: facts.file_name,
            os_build: facts.os_build,
            file_index: 0,
        }
    }
}

/// A matched entry as text: UTF-8 when it is, else the ANSI code page.
fn decode_line(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::GB18030
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

/// Mail clients turn `0000002b@2023/2/22:07:21:21.340` into a link and append
/// ` <mailto:…>`; quoting adds `> `. Both are removed from pasted lines.
fn clean_pasted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let mut line = line;
        if i == 0 {
            line = line.trim_start_matches(['>', ' ']);
        }
        let mut rest = line;
        while let Some(at) = rest.find(" <mailto:") {
            out.push_str(&rest[..at]);
            match rest[at..].find('>') {
                Some(end) => rest = &rest[at + end + 1..],
                None => {
                    rest = "";
                }
            }
        }
        out.push_str(rest);
    }
    out.replace('\r', "")
}

/// Logs at least this large are split across threads when on disk.
pub const PARALLEL_MIN_BYTES: u64 = 64 << 20;

/// Reads `[pos, end)` of a file with positioned reads, so that several
/// threads can read one file at once.
struct RangeReader<'f> {
    file: &'f std::fs::File,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The start of the first entry at or after `from`: after a line break, at a
/// line with a head (so that no entry is cut in two), else after the break.
fn split_point(file: &std::fs::File, from: u64, len: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut window = vec![0u8; (1 << 20).min((len - from) as usize)];
    let n = file.read_at(&mut window, from)?;
    let window = &window[..n];
    let mut first_break = None;
    for i in memchr::memchr_iter(b'\n', window) {
        let next = &window[i + 1..];
        first_break.get_or_insert(i + 1);
        if has_head(next) {
            return Ok(from + i as u64 + 1);
        }
    }
    Ok(first_break.map_or(len, |i| from + i as u64))
}

/// Scans a UTF-8 log on disk in parallel parts, one per core, and joins the
/// results as if it had been read in one pass: line numbers continue across
/// parts and the findings cap keeps the newest ones. A CBS.log of a gigabyte
/// is common, and the scan is CPU-bound: this is where the cores help.
pub fn scan_file_parallel(
    rules: &RuleSet,
    name: &str,
    file: &std::fs::File,
    len: u64,
    head: &[u8],
    bom: usize,
    options: &ScanOptions,
) -> Result<FileScan, ScanError> {
    if len > options.max_bytes {
        return Err(ScanError::TooLarge {
            file: name.to_string(),
            limit_mb: options.max_bytes >> 20,
            read_mb: len >> 20,
        });
    }
    let read_error = |source| ScanError::Read {
        file: name.to_string(),
        source,
    };
    let kind = options.kind.unwrap_or_else(|| {
        logs::kind_of(name, &String::from_utf8_lossy(&head[bom.min(head.len())..]))
    });
    let parts = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4) as u64;
    let mut bounds = vec![bom as u64];
    for k in 1..parts {
        let at = split_point(file, (len * k / parts).max(bounds[bounds.len() - 1]), len)
            .map_err(read_error)?;
        if at > bounds[bounds.len() - 1] && at < len {
            bounds.push(at);
        }
    }
    bounds.push(len);
    let part_options = ScanOptions {
        kind: Some(kind),
        ..options.clone()
    };
    let results: Vec<Result<FileScan, ScanError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let (start, end) = (w[0], w[1]);
                let part_options = &part_options;
                scope.spawn(move || {
                    let mut reader = RangeReader {
                        file,
                        pos: start,
                        end,
                    };
                    scan(
                        rules,
                        name,
                        b"",
                        &mut reader,
                        Encoding::Utf8,
                        0,
                        part_options,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(result) => result,
                Err(_) => Err(ScanError::Read {
                    file: name.to_string(),
                    source: std::io::Error::other("a scanning thread panicked"),
                }),
            })
            .collect()
    });
    let mut joined: Option<FileScan> = None;
    for result in results {
        let mut part = result?;
        match joined.as_mut() {
            None => joined = Some(part),
            Some(all) => {
                for f in &mut part.findings {
                    f.line += all.lines;
                }
                all.lines += part.lines;
                all.bytes += part.bytes;
                all.noise += part.noise;
                all.dropped += part.dropped;
                all.findings.append(&mut part.findings);
                for (rule, n) in part.rule_hits {
                    *all.rule_hits.entry(rule).or_default() += n;
                }
                for w in part.warnings {
                    if !all.warnings.contains(&w) {
                        all.warnings.push(w);
                    }
                }
            }
        }
    }
    let mut scan = joined.ok_or_else(|| read_error(std::io::Error::other("empty file")))?;
    let cap = options.max_findings.max(1);
    if scan.findings.len() > cap {
        let excess = scan.findings.len() - cap;
        scan.findings.drain(..excess);
        scan.dropped += excess as u64;
    }
    scan.kind = kind;
    scan.bytes = len - bom as u64;
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines() {
        assert_eq!(count_lines(b"a\nb\nc"), 2);
        assert_eq!(count_lines(&vec![b'\n'; 1000]), 1000);
    }

    #[test]
    fn entry_takes_continuation_lines() {
        let buf = b"2023-02-22 15:21:21, Error CSI 0000002e (F) E_FAIL #1# from X\n[gle=0x80004005]\n2023-02-22 15:21:22, Info CBS next\n";
        let (s, e) = entry_bounds(buf, 0);
        assert_eq!(
            &buf[s..e],
            b"2023-02-22 15:21:21, Error CSI 0000002e (F) E_FAIL #1# from X\n[gle=0x80004005]\n"
        );
        // A match on the continuation line belongs to the entry above.
        let cont = buf.iter().position(|&b| b == b'[').unwrap();
        assert_eq!(entry_bounds(buf, cont), (s, e));
    }

    #[test]
    fn pasted_mailto_artifacts_are_removed() {
        assert_eq!(
            clean_pasted(
                "> 2023-02-22 15:21:21, Info CSI 0000002b@2023/2/22:07:21:21.340 <mailto:0000002b@2023/2/22:07:21:21.340>  Begin"
            ),
            "2023-02-22 15:21:21, Info CSI 0000002b@2023/2/22:07:21:21.340  Begin"
        );
    }

    #[test]
    fn context_start_is_a_line_start() {
        let buf = b"one\ntwo\nthree\nfour\n";
        let at = context_start(buf, buf.len());
        assert!(at == 0 || buf[at - 1] == b'\n');
    }
}
