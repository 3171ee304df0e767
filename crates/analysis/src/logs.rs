//! What a file is (which log, which encoding, or not a log at all), and how a
//! log line's head (time stamp, level, component) is read.
//!
//! Pure functions over the first bytes of a file and over single lines; the
//! streaming is in `scan`.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// The log formats the rules are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    /// CBS.log and CbsPersist_*.log (CBS, CSI, DPX … lines).
    Cbs,
    Dism,
    /// WindowsUpdate.log, old text or `Get-WindowsUpdateLog` output.
    WindowsUpdate,
    /// setupact.log / setuperr.log (feature updates, in-place upgrades).
    Setup,
    /// The console output of `sfc /scannow`.
    Sfc,
    /// Windows event log records (.evtx, or an XML export), one line each as
    /// `events` renders them.
    EventLog,
    /// Anything else readable, such as lines pasted into a mail: every rule applies.
    Text,
}

impl LogKind {
    pub const ALL: [LogKind; 7] = [
        LogKind::Cbs,
        LogKind::Dism,
        LogKind::WindowsUpdate,
        LogKind::Setup,
        LogKind::Sfc,
        LogKind::EventLog,
        LogKind::Text,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Cbs => "cbs",
            LogKind::Dism => "dism",
            LogKind::WindowsUpdate => "windowsupdate",
            LogKind::Setup => "setup",
            LogKind::Sfc => "sfc",
            LogKind::EventLog => "eventlog",
            LogKind::Text => "text",
        }
    }

    pub fn parse(name: &str) -> Option<LogKind> {
        LogKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn names() -> String {
        let mut names: Vec<&str> = LogKind::ALL.iter().map(|k| k.as_str()).collect();
        names.push("*");
        names.join(", ")
    }

    /// From the file name alone, when it is one Windows always uses.
    pub fn from_name(name: &str) -> Option<LogKind> {
        let base = name
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(name)
            .to_ascii_lowercase();
        let stem_is = |prefix: &str| base.starts_with(prefix);
        if !(base.ends_with(".log") || base.ends_with(".txt")) {
            return None;
        }
        if stem_is("cbspersist_") || base == "cbs.log" || stem_is("cbs_") {
            Some(LogKind::Cbs)
        } else if stem_is("dism") {
            Some(LogKind::Dism)
        } else if stem_is("windowsupdate") {
            Some(LogKind::WindowsUpdate)
        } else if base == "setupact.log" || base == "setuperr.log" {
            Some(LogKind::Setup)
        } else if stem_is("sfc") {
            Some(LogKind::Sfc)
        } else {
            None
        }
    }
}

/// How a log's bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    /// The system ANSI code page of a Chinese Windows (GBK, read as GB18030).
    Ansi,
}

impl Encoding {
    /// The text of `bytes` (without a byte-order mark) in this encoding;
    /// what cannot be decoded becomes U+FFFD.
    pub fn decode(self, bytes: &[u8]) -> String {
        let encoding = match self {
            Encoding::Utf8 => return String::from_utf8_lossy(bytes).into_owned(),
            Encoding::Utf16Le => encoding_rs::UTF_16LE,
            Encoding::Utf16Be => encoding_rs::UTF_16BE,
            Encoding::Ansi => encoding_rs::GB18030,
        };
        encoding.decode_without_bom_handling(bytes).0.into_owned()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16Le => "utf-16le",
            Encoding::Utf16Be => "utf-16be",
            Encoding::Ansi => "ansi",
        }
    }
}

/// What a file turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Text: scan it. `bom` bytes at the start are skipped.
    Text {
        encoding: Encoding,
        bom: usize,
    },
    Zip,
    Cab,
    SevenZip,
    Gzip,
    Tar,
    /// A Windows event log file (.evtx).
    Evtx,
    /// An OLE compound file: an Outlook .msg, or an Office document.
    Compound,
    /// A mail (an .eml, or a forwarded message/rfc822 attachment).
    Mail,
    /// Not scanned; the label says what it is (`procmon`, `image`, …).
    NotALog(&'static str),
}

/// Decides from the name and the first bytes (a few KiB are enough).
pub fn classify(name: &str, head: &[u8]) -> Content {
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Content::Zip;
    }
    if head.starts_with(b"MSCF") {
        return Content::Cab;
    }
    if head.starts_with(b"7z\xBC\xAF\x27\x1C") {
        return Content::SevenZip;
    }
    if head.starts_with(b"\x1f\x8b") {
        return Content::Gzip;
    }
    if head.get(257..262) == Some(b"ustar") {
        return Content::Tar;
    }
    if head.starts_with(b"ElfFile\0") {
        return Content::Evtx;
    }
    if head.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        return Content::Compound;
    }
    let magic: &[(&[u8], &'static str)] = &[
        (b"PML_", "procmon"),
        (b"\x89PNG", "image"),
        (b"\xFF\xD8\xFF", "image"),
        (b"GIF8", "image"),
        (b"MDMP", "memory_dump"),
        (b"PAGEDU64", "memory_dump"),
        (b"Rar!", "unsupported_archive"),
        (b"%PDF", "document"),
        (b"MZ", "executable"),
    ];
    if let Some((_, label)) = magic.iter().find(|(m, _)| head.starts_with(m)) {
        return Content::NotALog(label);
    }
    match ext {
        "pml" => return Content::NotALog("procmon"),
        "etl" => return Content::NotALog(ETL_TRACE),
        // The pre-Vista format (`LfLe` records); an .evtx is read by its magic.
        "evt" => return Content::NotALog("legacy_event_log"),
        "png" | "jpg" | "jpeg" | "gif" | "bmp" | "webp" | "tif" | "tiff" => {
            return Content::NotALog("image");
        }
        "dmp" => return Content::NotALog("memory_dump"),
        _ => {}
    }
    if head.starts_with(b"\xEF\xBB\xBF") {
        return Content::Text {
            encoding: Encoding::Utf8,
            bom: 3,
        };
    }
    if head.starts_with(b"\xFF\xFE") {
        return Content::Text {
            encoding: Encoding::Utf16Le,
            bom: 2,
        };
    }
    if head.starts_with(b"\xFE\xFF") {
        return Content::Text {
            encoding: Encoding::Utf16Be,
            bom: 2,
        };
    }
    if let Some(encoding) = utf16_without_bom(head) {
        return Content::Text { encoding, bom: 0 };
    }
    if looks_binary(head) {
        return Content::NotALog("binary");
    }
    let encoding = match std::str::from_utf8(head) {
        Ok(_) => Encoding::Utf8,
        // A multi-byte character cut at the end of the sample is still UTF-8.
        Err(e) if e.error_len().is_none() => Encoding::Utf8,
        Err(_) => Encoding::Ansi,
    };
    if ext == "eml" || looks_like_mail(head) {
        return Content::Mail;
    }
    Content::Text { encoding, bom: 0 }
}

/// The label of a Windows ETW trace (WindowsUpdate.etl): binary, readable
/// only by Windows' own decoder.
pub const ETL_TRACE: &str = "etl_trace";

/// A mail starts with header fields and has at least two of those every
/// mail carries before its first empty line; a log never does.
fn looks_like_mail(head: &[u8]) -> bool {
    const MAIL_FIELDS: &[&str] = &[
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "received",
        "mime-version",
        "return-path",
    ];
    let text = String::from_utf8_lossy(&head[..head.len().min(16 << 10)]);
    let mut known = 0;
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((field, _)) = line.split_once(':') else {
            return false;
        };
        let field_ok = !field.is_empty()
            && field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !field_ok || (i == 0 && field.len() > 40) {
            return false;
        }
        if MAIL_FIELDS.contains(&field.to_ascii_lowercase().as_str()) {
            known += 1;
        }
    }
    known >= 2
}

/// Does a text (its first characters) hold Windows events exported as XML
/// (Event Viewer's "Save as XML", `wevtutil qe /f:xml`, `Get-WinEvent |
/// ForEach ToXml`)?
pub fn is_event_xml(head: &str) -> bool {
    let start = head.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let start = start.get(..start.len().min(4096)).unwrap_or(start);
    (start.starts_with("<?xml") || start.starts_with("<Event"))
        && start.contains("<Event")
        && start.contains("schemas.microsoft.com/win/2004/08/events/event")
}

/// ASCII text written as UTF-16 has a zero in every other byte.
fn utf16_without_bom(head: &[u8]) -> Option<Encoding> {
    let sample = &head[..head.len().min(512) & !1];
    if sample.len() < 16 {
        return None;
    }
    let pairs = sample.len() / 2;
    let zero_odd = sample.chunks(2).filter(|p| p[1] == 0 && p[0] != 0).count();
    let zero_even = sample.chunks(2).filter(|p| p[0] == 0 && p[1] != 0).count();
    if zero_odd * 10 >= pairs * 8 {
        Some(Encoding::Utf16Le)
    } else if zero_even * 10 >= pairs * 8 {
        Some(Encoding::Utf16Be)
    } else {
        None
    }
}

/// NUL bytes, or many control characters, in what should be text.
fn looks_binary(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let sample = &head[..head.len().min(8192)];
    if sample.contains(&0) {
        return true;
    }
    let control = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
        .count();
    control * 20 > sample.len()
}

/// Decides the kind of a text from its name, then from its first lines.
pub fn kind_of(name: &str, head: &str) -> LogKind {
    LogKind::from_name(name).unwrap_or_else(|| sniff(head))
}

/// The kind of a text of unknown origin, from the heads of its lines.
pub fn sniff(head: &str) -> LogKind {
    let (mut cbs, mut dism, mut setup, mut wu) = (0, 0, 0, 0);
    for line in head.lines().take(400) {
        let parsed = parse_head(line);
        match parsed.component.as_deref() {
            Some("CBS" | "CSI" | "DPX" | "TI" | "CBS_LOG") => cbs += 1,
            Some("DISM") => dism += 1,
            Some("SP" | "MOUPG" | "PANTHR" | "SETUP" | "CONX" | "MIG" | "SYSPRP") => setup += 1,
            _ if parsed.format == LineFormat::WindowsUpdate => wu += 1,
            _ => {}
        }
    }
    let best = [
        (cbs, LogKind::Cbs),
        (dism, LogKind::Dism),
        (setup, LogKind::Setup),
        (wu, LogKind::WindowsUpdate),
    ]
    .into_iter()
    .max_by_key(|(n, _)| *n)
    .filter(|(n, _)| *n >= 2);
    if let Some((_, kind)) = best {
        return kind;
    }
    if head.contains("Windows Resource Protection") || head.contains("Windows 资源保护") {
        return LogKind::Sfc;
    }
    LogKind::Text
}

/// The line formats a head can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// `2023-02-22 15:21:21, Error CSI …` (CBS, DISM, setup logs).
    Servicing,
    /// WindowsUpdate.log, both the old and the `Get-WindowsUpdateLog` layout.
    WindowsUpdate,
    /// No recognised head: a continuation line or free text.
    None,
}

/// The head of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineHead {
    pub format: LineFormat,
    /// ISO 8601 without a zone (logs write the machine's local time).
    pub time: Option<String>,
    pub level: Option<String>,
    pub component: Option<String>,
    /// Byte offset of the message after the head.
    pub message_start: usize,
}

static SERVICING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}), ([A-Za-z]+)\s+(?:\[0x[0-9a-fA-F]+\]\s+)?([A-Za-z_]+)\s+")
        .expect("static regex")
});
static WU_OLD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d{4}-\d{2}-\d{2})\t(\d{2}:\d{2}:\d{2}):(\d{3})\t\s*\d+\t[0-9a-fA-F]+\t(\w+)\t\s*",
    )
    .expect("static regex")
});
static WU_NEW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{4})/(\d{2})/(\d{2}) (\d{2}:\d{2}:\d{2})\.(\d+) +\d+ +\d+ +(\S+) +")
        .expect("static regex")
});

/// Reads the head of a line in any of the known formats.
pub fn parse_head(line: &str) -> LineHead {
    if let Some(c) = SERVICING.captures(line) {
        return LineHead {
            format: LineFormat::Servicing,
            time: Some(format!("{}T{}", &c[1], &c[2])),
            level: Some(c[3].to_string()),
            component: Some(c[4].to_string()),
            message_start: c.get(0).map_or(0, |m| m.end()),
        };
    }
    if let Some(c) = WU_OLD.captures(line) {
        return LineHead {
            format: LineFormat::WindowsUpdate,
            time: Some(format!("{}T{}.{}", &c[1], &c[2], &c[3])),
            level: None,
            component: Some(c[4].to_string()),
            message_start: c.get(0).map_or(0, |m| m.end()),
        };
    }
    if let Some(c) = WU_NEW.captures(line) {
        return LineHead {
            format: LineFormat::WindowsUpdate,
            time: Some(format!("{}-{}-{}T{}.{}", &c[1], &c[2], &c[3], &c[4], &c[5])),
            level: None,
            component: Some(c[6].to_string()),
            message_start: c.get(0).map_or(0, |m| m.end()),
        };
    }
    LineHead {
        format: LineFormat::None,
        time: None,
        level: None,
        component: None,
        message_start: 0,
    }
}

/// Seconds since an arbitrary epoch for a head's time, to measure gaps.
pub fn seconds(time: &str) -> Option<i64> {
    let (date, clock) = time.split_once('T')?;
    let clock = clock.get(..8)?;
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let clock = chrono::NaiveTime::parse_from_str(clock, "%H:%M:%S").ok()?;
    Some(date.and_time(clock).and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servicing_head() {
        let h = parse_head(
            "2023-02-22 15:21:21, Error                 CSI    00000026 (F) STATUS_CANNOT_DELETE",
        );
        assert_eq!(h.time.as_deref(), Some("2023-02-22T15:21:21"));
        assert_eq!(h.level.as_deref(), Some("Error"));
        assert_eq!(h.component.as_deref(), Some("CSI"));
        assert_eq!(
            &"2023-02-22 15:21:21, Error                 CSI    00000026 (F) STATUS_CANNOT_DELETE"
                [h.message_start..],
            "00000026 (F) STATUS_CANNOT_DELETE"
        );
    }

    #[test]
    fn windows_update_heads() {
        let old = parse_head(
            "2016-01-08\t10:15:32:123\t 952\t1a4c\tAgent\t  * WARNING: Exit code = 0x8024402C",
        );
        assert_eq!(old.time.as_deref(), Some("2016-01-08T10:15:32.123"));
        assert_eq!(old.component.as_deref(), Some("Agent"));
        let new = parse_head(
            "2019/01/14 09:47:26.1234567 1234  5678  Handler         CBS called Error with 0x800f0922,",
        );
        assert_eq!(new.time.as_deref(), Some("2019-01-14T09:47:26.1234567"));
        assert_eq!(new.component.as_deref(), Some("Handler"));
        assert_eq!(
            seconds("2019-01-14T09:47:26.1234567"),
            seconds("2019-01-14T09:47:26")
        );
    }

    #[test]
    fn classify_by_magic_and_encoding() {
        assert_eq!(classify("x.zip", b"PK\x03\x04rest"), Content::Zip);
        assert_eq!(classify("persist.cab", b"MSCF\0\0"), Content::Cab);
        assert_eq!(
            classify("trace.pml", b"PML_\x09\0"),
            Content::NotALog("procmon")
        );
        assert_eq!(
            classify("shot.png", b"\x89PNG\r\n"),
            Content::NotALog("image")
        );
        assert_eq!(
            classify("x.bin", b"\0\x01\x02\x03garbage\0\0"),
            Content::NotALog("binary")
        );
        assert_eq!(
            classify("CBS.log", "\u{feff}2023".as_bytes()),
            Content::Text {
                encoding: Encoding::Utf8,
                bom: 3
            }
        );
        assert_eq!(
            classify("sfc.txt", b"\xFF\xFEW\0i\0"),
            Content::Text {
                encoding: Encoding::Utf16Le,
                bom: 2
            }
        );
        let utf16: Vec<u8> = "2023-01-01 10:00:00, Info CBS x"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert_eq!(
            classify("a.log", &utf16),
            Content::Text {
                encoding: Encoding::Utf16Le,
                bom: 0
            }
        );
        assert_eq!(
            classify("a.log", b"\xb0\xb2\xd7\xb0 ok"),
            Content::Text {
                encoding: Encoding::Ansi,
                bom: 0
            }
        );
    }

    #[test]
    fn kinds_from_names_and_content() {
        assert_eq!(
            LogKind::from_name("Logs/CBS/CbsPersist_20230222072121.log"),
            Some(LogKind::Cbs)
        );
        assert_eq!(
            LogKind::from_name("C:\\Windows\\Logs\\DISM\\dism.log"),
            Some(LogKind::Dism)
        );
        assert_eq!(LogKind::from_name("setuperr.log"), Some(LogKind::Setup));
        assert_eq!(LogKind::from_name("notes.txt"), None);
        let cbs = "2023-02-22 15:21:21, Info                  CBS    x\n2023-02-22 15:21:21, Info                  CSI    y\n";
        assert_eq!(sniff(cbs), LogKind::Cbs);
        assert_eq!(
            sniff("Windows Resource Protection did not find any integrity violations."),
            LogKind::Sfc
        );
        assert_eq!(sniff("hello"), LogKind::Text);
    }
}
