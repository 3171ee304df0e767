//! The entry points the fuzz targets (`fuzz/`) drive, one per reader of
//! untrusted bytes. They live in the library so that the inputs the fuzzer
//! once crashed on can be replayed by an ordinary test
//! (`tests/it/fuzz_regressions.rs`) without libFuzzer.
//!
//! Each function must return for any input, in bounded time and memory; a
//! panic, an abort or a hang is a finding. Results are checked where a cheap
//! invariant exists, so that a silent mis-read is a finding too.

use std::sync::LazyLock;

use casebot_core::domain::DeskConfig;
use casebot_core::mail::body::split_body;
use casebot_core::mail::parse::{IngestConfig, MailParser, attachment_bytes};
use casebot_core::mail::subject::{GrammarConfig, SubjectGrammar};

use crate::logs::LogKind;
use crate::{AnalysisConfig, Analyzer};

static GRAMMAR: LazyLock<SubjectGrammar> = LazyLock::new(|| {
    SubjectGrammar::new(&GrammarConfig::default()).expect("the default grammar builds")
});
static PARSER: LazyLock<MailParser> = LazyLock::new(|| {
    MailParser::new(
        &DeskConfig::default(),
        &GrammarConfig::default(),
        &IngestConfig::default(),
    )
    .expect("the default grammar builds")
});
// The built-in rules: the analyser never depends on the fuzzer's folder
// (no folder named `rules` lies under the root).
static ANALYZER: LazyLock<Analyzer> = LazyLock::new(|| {
    Analyzer::new(&AnalysisConfig::default(), std::path::Path::new("/"))
        .expect("the built-in rules load")
});

/// The subject grammar, on any text (the bytes read as lossy UTF-8).
pub fn subject(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = GRAMMAR.parse(&text);
    if let Some(case_id) = &parsed.case_id {
        assert!(!case_id.is_empty(), "an empty case number from {text:?}");
    }
    let _ = GRAMMAR.case_numbers_in(&text);
}

/// Mail parsing and body splitting: the whole mail, its attachments, and the
/// splitter on the raw text as if it were a body.
pub fn mail(data: &[u8]) {
    if let Ok(mail) = PARSER.parse(data, chrono::DateTime::UNIX_EPOCH) {
        assert!(
            !mail.message_id.is_empty(),
            "a mail without a Message-ID key"
        );
    }
    for attachment in attachment_bytes(data) {
        assert!(
            attachment.bytes.len() <= data.len() * 4 + 64,
            "an attachment larger than its encoding"
        );
    }
    let _ = split_body(&String::from_utf8_lossy(data));
}

/// One log reader: the bytes as a file of that kind's usual name, read like
/// an attachment (encoding sniffed, lines scanned, the rules applied, the
/// conclusion drawn).
pub fn log(kind: LogKind, data: &[u8]) {
    let name = match kind {
        LogKind::Cbs => "CBS.log",
        LogKind::Dism => "dism.log",
        LogKind::WindowsUpdate => "WindowsUpdate.log",
        LogKind::Setup => "setupact.log",
        LogKind::Sfc => "sfc.txt",
        LogKind::EventLog => "System.evtx",
        LogKind::Text => "pasted.txt",
    };
    let mut walker = ANALYZER.walker();
    walker.bytes(name, data);
    let _ = ANALYZER.report(walker.finish());
}

/// The archive readers: the bytes named by the first byte (zip, cab, 7z,
/// tar.gz, Outlook .msg), opened with the bundle's limits, every member read.
/// What is read is decided by the bytes' magic, not the name, so every
/// reader (gzip, tar, a mail, an event log too) is reachable from any seed.
pub fn archive(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    const NAMES: [&str; 5] = [
        "logs.zip",
        "logs.cab",
        "logs.7z",
        "logs.tar.gz",
        "forward.msg",
    ];
    let name = NAMES[usize::from(selector) % NAMES.len()];
    let mut walker = ANALYZER.walker();
    walker.bytes(name, bytes);
    let _ = ANALYZER.report(walker.finish());
}

/// The event log readers: the bytes as an .evtx (by its magic) or as an XML
/// export of events, every record rendered and scanned.
pub fn event_log(data: &[u8]) {
    let mut walker = ANALYZER.walker();
    walker.bytes("System.evtx", data);
    let _ = ANALYZER.report(walker.finish());
}
