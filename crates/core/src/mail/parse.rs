//! Raw bytes in, a [`ParsedMail`] out: everything the desk needs from a mail,
//! decoded and normalised. Pure: no I/O, no clock except the arrival time the
//! caller passes in.
//!
//! mail-parser does the MIME work. This module repairs what real Chinese mail
//! gets wrong and mail-parser cannot know: bodies declared as `gb2312` that
//! are really UTF-8 (and the reverse), raw 8-bit GBK subjects, dates that do
//! not parse, and missing Message-IDs.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use encoding_rs::Encoding;
use mail_parser::decoders::{base64::base64_decode, quoted_printable::quoted_printable_decode};
use mail_parser::{
    Encoding as TransferEncoding, HeaderValue, Message, MessageParser, MimeHeaders, PartType,
};
use serde::{Deserialize, Serialize};

use super::body::{BodyParts, split_body};
use super::bounce::{Bounce, read_bounce};
use super::direction::{MailSignals, classify};
use super::links::{Link, extract_links};
use super::resolution::{
    closure_phrase, default_closure_phrases, default_resolution_phrases, resolution_phrase,
};
use super::subject::{GrammarConfig, GrammarError, ParsedSubject, SubjectGrammar};
use crate::domain::{DeskConfig, Direction, sha256_hex};

/// A display name and address, both as decoded from the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: Option<String>,
}

/// Where the date of a mail came from, in order of trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DateSource {
    Header,
    Received,
    Arrival,
}

impl DateSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DateSource::Header => "header",
            DateSource::Received => "received",
            DateSource::Arrival => "arrival",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentInfo {
    pub filename: Option<String>,
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
    /// Index of the MIME part in the parsed message, to extract it later
    /// from the stored raw bytes.
    pub part: u32,
}

/// Everything casebot knows about one mail after parsing.
#[derive(Debug, Clone, Serialize)]
pub struct ParsedMail {
    pub message_id: String,
    pub message_id_synthesized: bool,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub date: DateTime<Utc>,
    /// The sender's UTC offset in minutes, when the date came from the header.
    pub date_offset_minutes: Option<i32>,
    pub date_source: DateSource,
    pub subject: String,
    pub subject_info: ParsedSubject,
    pub direction: Direction,
    pub resolution_phrase: Option<String>,
    /// For the desk's own mail: the phrase (or the closed stage) that makes
    /// it the case's closure.
    pub closure_phrase: Option<String>,
    pub body: BodyParts,
    /// Distinct case numbers named anywhere in the text body.
    pub body_case_ids: Vec<String>,
    /// Those of them in the sender's new text.
    pub new_text_case_ids: Vec<String>,
    /// What a bounce says of the mail it returns (bounces only).
    pub bounce: Option<Bounce>,
    pub links: Vec<Link>,
    pub attachments: Vec<AttachmentInfo>,
    /// Repairs and fallbacks applied, in words, for the evidence trail.
    pub warnings: Vec<String>,
    /// Lower-case hex SHA-256 of the raw bytes.
    pub sha256: String,
}

/// Why a mail cannot be handled at all (it goes to quarantine).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("empty message")]
    Empty,
    #[error("message is {size} bytes, over the limit of {limit} bytes (ingest.max_message_bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error(
        "message is {size} bytes, over the limit of {limit} bytes (ingest.max_message_bytes): \
         not read; its first {kept} bytes are kept here, the whole mail stays where it was found"
    )]
    NotRead { size: u64, limit: u64, kept: u64 },
    #[error(
        "{lines} lines that may start a MIME part, over the limit of {limit} (ingest.max_mime_parts)"
    )]
    TooManyParts { lines: u64, limit: u64 },
    #[error("no message header found: not an RFC 5322 mail")]
    NoHeaders,
    #[error("none of From, Subject, Date or Message-ID is present: not a mail")]
    NoMailHeaders,
    #[error("the MIME parser failed on this message: {0}")]
    ParserPanic(String),
}

/// Everything parsing needs besides the bytes, built once from the configuration.
#[derive(Debug, Clone)]
pub struct MailParser {
    grammar: SubjectGrammar,
    desk: DeskConfig,
    ingest: IngestConfig,
}

impl MailParser {
    pub fn new(
        desk: &DeskConfig,
        grammar: &GrammarConfig,
        ingest: &IngestConfig,
    ) -> Result<Self, GrammarError> {
        Ok(Self {
            grammar: SubjectGrammar::new(grammar)?,
            desk: desk.clone(),
            ingest: ingest.clone(),
        })
    }

    /// The largest mail that is read at all.
    pub fn max_message_bytes(&self) -> u64 {
        self.ingest.max_message_bytes
    }

    /// Parses one raw mail. `arrival` is when it reached the desk (file time,
    /// IMAP INTERNALDATE), the last resort for a mail without a usable date.
    pub fn parse(&self, raw: &[u8], arrival: DateTime<Utc>) -> Result<ParsedMail, Rejection> {
        parse_mail(raw, arrival, self)
    }
}

fn parse_mail(
    raw: &[u8],
    arrival: DateTime<Utc>,
    ctx: &MailParser,
) -> Result<ParsedMail, Rejection> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Rejection::Empty);
    }
    let size = raw.len() as u64;
    if size > ctx.ingest.max_message_bytes {
        return Err(Rejection::TooLarge {
            size,
            limit: ctx.ingest.max_message_bytes,
        });
    }
    // The MIME parser keeps every part in memory (kilobytes each): a mail of
    // hundreds of thousands of parts would cost gigabytes. Counting the
    // lines that could open a part bounds that before parsing.
    let lines = memchr::memmem::find_iter(raw, b"\n--").count() as u64;
    if lines > ctx.ingest.max_mime_parts {
        return Err(Rejection::TooManyParts {
            lines,
            limit: ctx.ingest.max_mime_parts,
        });
    }
    // mail-parser drops the last line of an encoded body that has no line
    // break after it; parse a copy with one. The stored bytes stay as they were.
    let sha256 = sha256_hex(raw);
    let input: std::borrow::Cow<'_, [u8]> = if raw.ends_with(b"\n") {
        raw.into()
    } else {
        let mut owned = raw.to_vec();
        owned.extend_from_slice(b"\r\n");
        owned.into()
    };
    let raw = input.as_ref();
    // mail-parser promises not to panic; the desk must not die if it does.
    let message = std::panic::catch_unwind(|| MessageParser::default().parse(raw))
        .map_err(|p| Rejection::ParserPanic(panic_text(&p)))?
        .ok_or(Rejection::NoHeaders)?;
    let has_mail_header = message.from().is_some()
        || message.subject().is_some()
        || message.header_raw("Date").is_some()
        || message.message_id().is_some();
    if !has_mail_header {
        return Err(Rejection::NoMailHeaders);
    }
    Ok(build(&message, raw, sha256, arrival, ctx))
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn build(
    message: &Message<'_>,
    raw: &[u8],
    sha256: String,
    arrival: DateTime<Utc>,
    ctx: &MailParser,
) -> ParsedMail {
    let mut warnings = Vec::new();

    let (message_id, message_id_synthesized) =
        match message.message_id().map(clean_id).filter(|s| !s.is_empty()) {
            Some(id) => (id, false),
            None => {
                warnings.push("no Message-ID: synthesised one from the content hash".to_string());
                (format!("{}@casebot.invalid", &sha256[..32]), true)
            }
        };
    let references = id_list(message.references());
    let in_reply_to = id_list(message.in_reply_to()).into_iter().next();

    let subject = decode_subject(message, raw, &mut warnings);
    let subject_info = ctx.grammar.parse(&subject);

    let (date, date_offset_minutes, date_source) = mail_date(message, arrival, &mut warnings);

    let texts = text_bodies(message, raw, &mut warnings);
    let html_sources: Vec<String> = message
        .html_body
        .iter()
        .filter_map(|id| message.parts.get(*id as usize))
        .filter_map(|p| match &p.body {
            PartType::Html(h) => Some(h.to_string()),
            _ => None,
        })
        .collect();
    let full_text = texts.join("\n");
    let body = split_body(&full_text);
    let html_refs: Vec<&str> = html_sources.iter().map(String::as_str).collect();
    let links = extract_links(&body.new_text, &html_refs);
    let body_case_ids = ctx.grammar.case_numbers_in(&full_text);
    let new_text_case_ids = ctx.grammar.case_numbers_in(&body.new_text);

    let from = message.from().and_then(|a| a.first()).map(mailbox);
    let to = message
        .to()
        .map(|a| a.iter().map(mailbox).collect())
        .unwrap_or_default();
    let cc = message
        .cc()
        .map(|a| a.iter().map(mailbox).collect())
        .unwrap_or_default();

    let direction = direction_of(message, &subject, from.as_ref(), &ctx.desk);
    let bounce = (direction == Direction::Bounce).then(|| {
        let mut bounce = read_bounce(message, raw, &full_text);
        bounce.returned_case_id = bounce
            .returned_subject
            .as_deref()
            .and_then(|s| ctx.grammar.parse(s).case_id);
        bounce
    });
    let resolution = match direction {
        Direction::Customer => {
            resolution_phrase(&body.new_text, &ctx.ingest.resolution_phrases).map(str::to_string)
        }
        _ => None,
    };
    let closure = match direction {
        Direction::Engineer => closure_phrase(&body.new_text, &ctx.ingest.closure_phrases)
            .map(str::to_string)
            .or_else(|| {
                (subject_info.stage_kind == Some(crate::domain::Stage::Closed))
                    .then(|| subject_info.stage.clone())
                    .flatten()
            }),
        _ => None,
    };

    let mut attachments = attachment_infos(message);
    let (mut links, mut to, mut cc) = (links, to, cc);
    // What one mail contributes to its case's views is bounded: the rest is
    // counted (its bytes stay in the raw mail, which analysis reads).
    cap(
        &mut attachments,
        MAX_LISTED_ATTACHMENTS,
        "attachments",
        &mut warnings,
    );
    cap(&mut links, MAX_LINKS, "links", &mut warnings);
    cap(
        &mut to,
        MAX_LISTED_RECIPIENTS,
        "To addresses",
        &mut warnings,
    );
    cap(
        &mut cc,
        MAX_LISTED_RECIPIENTS,
        "Cc addresses",
        &mut warnings,
    );

    ParsedMail {
        message_id,
        message_id_synthesized,
        in_reply_to,
        references,
        from,
        to,
        cc,
        date,
        date_offset_minutes,
        date_source,
        subject,
        subject_info,
        direction,
        resolution_phrase: resolution,
        closure_phrase: closure,
        body,
        body_case_ids,
        new_text_case_ids,
        bounce,
        links,
        attachments,
        warnings,
        sha256,
    }
}

fn mailbox(a: &mail_parser::Addr<'_>) -> Mailbox {
    Mailbox {
        name: a
            .name()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        address: a
            .address()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty()),
    }
}

/// A Message-ID without angle brackets or white space.
pub(crate) fn clean_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// The distinct Message-IDs of an ID-list header.
pub(crate) fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    let ids: Vec<String> = match value {
        HeaderValue::Text(t) => vec![clean_id(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !id.is_empty() && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Keeps the last path component: a name like `../../x.zip` is someone's
/// attempt to write outside the folder it will later be extracted to.
fn safe_file_name(name: &str) -> String {
    name.rsplit(['/', '\\'])
        .next()
        .unwrap_or(name)
        .trim()
        .to_string()
}

/// The subject, repaired when its raw bytes were 8-bit and not UTF-8
/// (mail-parser then substitutes U+FFFD).
fn decode_subject(message: &Message<'_>, raw: &[u8], warnings: &mut Vec<String>) -> String {
    let decoded = message.subject().unwrap_or("").to_string();
    if !decoded.contains('\u{FFFD}') {
        return unfold(&decoded);
    }
    let header = message.parts.first().and_then(|p| {
        p.headers
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case("subject"))
    });
    if let Some(h) = header
        && let Some(bytes) = raw.get(h.offset_start as usize..h.offset_end as usize)
    {
        if bytes.is_ascii() {
            // Encoded words whose label lies: try their bytes as UTF-8.
            if let Some(repaired) = decode_words_as_utf8(bytes) {
                warnings.push("subject encoded words hold UTF-8 under another charset label: decoded as UTF-8".into());
                return unfold(&repaired);
            }
        }
        // The body's declared charset is the sender's own word for it.
        if let Some(charset) = first_text_charset(message).filter(|c| !is_utf8_label(c))
            && let Some(encoding) = Encoding::for_label(charset.as_bytes())
            && let (text, _, false) = encoding.decode(bytes)
        {
            warnings.push(format!("subject had raw 8-bit bytes: decoded as {charset}"));
            return unfold(&text);
        }
        // Nothing declared: the subject's and the body's bytes together say
        // more than a short subject alone.
        let body = undeclared_body_bytes(message, raw);
        let encoding = guess_encoding(&[bytes, &body]);
        if let (text, _, false) = encoding.decode(bytes) {
            warnings.push(format!(
                "subject had raw 8-bit bytes in no declared charset: detected as {}",
                encoding.name()
            ));
            return unfold(&text);
        }
    }
    warnings.push("subject has bytes that decode in no known charset".into());
    unfold(&decoded)
}

/// Decodes RFC 2047 encoded words, reading every payload as UTF-8; `None`
/// unless all of them are valid UTF-8.
fn decode_words_as_utf8(header: &[u8]) -> Option<String> {
    static WORD: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
        regex::bytes::Regex::new(r"=\?[^?\s]+\?([bBqQ])\?([^?\s]*)\?=").expect("static regex")
    });
    let mut out = Vec::new();
    let mut last = 0;
    for c in WORD.captures_iter(header) {
        let whole = c.get(0)?;
        let payload = c.get(2)?.as_bytes();
        let bytes = if c[1].eq_ignore_ascii_case(b"b") {
            base64_decode(payload)?
        } else {
            let spaced: Vec<u8> = payload
                .iter()
                .map(|&b| if b == b'_' { b' ' } else { b })
                .collect();
            quoted_printable_decode(&spaced)?
        };
        // White space between two encoded words is not part of the text.
        let gap = &header[last..whole.start()];
        if last == 0 || !gap.iter().all(u8::is_ascii_whitespace) {
            out.extend_from_slice(gap);
        }
        out.extend_from_slice(&bytes);
        last = whole.end();
    }
    if last == 0 {
        return None;
    }
    out.extend_from_slice(&header[last..]);
    String::from_utf8(out).ok()
}

fn unfold(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim_start)
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string()
}

fn first_text_charset(message: &Message<'_>) -> Option<String> {
    message
        .parts
        .iter()
        .filter_map(|p| p.content_type())
        .find_map(|ct| ct.attribute("charset"))
        .map(|c| c.to_ascii_lowercase())
}

/// The mail's date: the Date header when valid and plausible, else the
/// newest Received header, else the arrival time. Says which in a warning.
fn mail_date(
    message: &Message<'_>,
    arrival: DateTime<Utc>,
    warnings: &mut Vec<String>,
) -> (DateTime<Utc>, Option<i32>, DateSource) {
    let plausible = |d: &mail_parser::DateTime| d.is_valid() && (1990..=2200).contains(&d.year);
    if let Some(d) = message.date().filter(|d| plausible(d))
        && let Some(utc) = Utc.timestamp_opt(d.to_timestamp(), 0).single()
    {
        let sign = if d.tz_before_gmt { -1 } else { 1 };
        let offset = sign * (d.tz_hour as i32 * 60 + d.tz_minute as i32);
        return (utc, Some(offset), DateSource::Header);
    }
    let raw_date = message.header_raw("Date").map(|s| s.trim().to_string());
    let what = match &raw_date {
        Some(v) => format!("Date header {v:?} is malformed"),
        None => "no Date header".to_string(),
    };
    if let Some(d) = message
        .received_all()
        .filter_map(|r| r.date)
        .find(|d| plausible(d))
        && let Some(utc) = Utc.timestamp_opt(d.to_timestamp(), 0).single()
    {
        warnings.push(format!("{what}: used the newest Received header"));
        return (utc, None, DateSource::Received);
    }
    warnings.push(format!("{what}: used the arrival time"));
    (arrival, None, DateSource::Arrival)
}

/// One attachment's decoded bytes, for the analysis stage.
#[derive(Debug, Clone)]
pub struct AttachmentBytes {
    pub part: u32,
    pub filename: Option<String>,
    pub bytes: Vec<u8>,
}

/// The decoded contents of a parsed mail's attachments (a forwarded
/// message's raw bytes included).
fn attachments_of(message: &Message<'_>) -> Vec<AttachmentBytes> {
    message
        .attachments
        .iter()
        .filter_map(|id| message.parts.get(*id as usize).map(|p| (*id, p)))
        .map(|(id, part)| AttachmentBytes {
            part: id,
            filename: part.attachment_name().map(safe_file_name),
            bytes: part.contents().to_vec(),
        })
        .collect()
}

/// The decoded contents of every attachment of a raw mail. A mail the parser
/// cannot read (or panics on) has none.
pub fn attachment_bytes(raw: &[u8]) -> Vec<AttachmentBytes> {
    let parsed = std::panic::catch_unwind(|| {
        let message = MessageParser::default().parse(raw)?;
        Some(attachments_of(&message))
    });
    parsed.ok().flatten().unwrap_or_default()
}

/// A mail found inside another (an attached .eml, a forwarded
/// message/rfc822 part): what log analysis reads of it.
#[derive(Debug, Clone)]
pub struct ForwardedMessage {
    /// Its headers as an engineer sees them, then its text body.
    pub text: String,
    pub attachments: Vec<AttachmentBytes>,
}

/// Reads a mail's text and attachments; `None` when the parser cannot read
/// it (or panics on it).
pub fn forwarded_message(raw: &[u8]) -> Option<ForwardedMessage> {
    std::panic::catch_unwind(|| {
        let message = MessageParser::default().parse(raw)?;
        let mut text = String::new();
        let from = message
            .from()
            .and_then(|a| a.first())
            .map(|a| match (a.name(), a.address()) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (n, e) => n.or(e).unwrap_or_default().to_string(),
            });
        for (label, value) in [
            ("From", from),
            ("Subject", message.subject().map(str::to_string)),
            ("Date", message.date().map(|d| d.to_rfc3339())),
        ] {
            if let Some(value) = value {
                text.push_str(&format!("{label}: {value}\n"));
            }
        }
        text.push('\n');
        let mut warnings = Vec::new();
        text.push_str(&text_bodies(&message, raw, &mut warnings).join("\n"));
        let attachments = attachments_of(&message);
        Some(ForwardedMessage { text, attachments })
    })
    .ok()
    .flatten()
}

/// The text of every part of the text body, in order, with HTML-only parts
/// turned into text and charset mistakes repaired.
fn text_bodies(message: &Message<'_>, raw: &[u8], warnings: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for id in &message.text_body {
        let Some(part) = message.parts.get(*id as usize) else {
            continue;
        };
        let text = match &part.body {
            PartType::Text(t) => repair_charset(part, raw, t, warnings),
            PartType::Html(h) => {
                let h = repair_charset(part, raw, h, warnings);
                mail_parser::decoders::html::html_to_text(&h)
            }
            _ => continue,
        };
        out.push(text);
    }
    out
}

/// Re-decodes a text part whose declared charset is wrong: UTF-8 bytes
/// declared as a legacy charset, or legacy (GB18030-family) bytes declared
/// as UTF-8 or not declared at all.
fn repair_charset(
    part: &mail_parser::MessagePart<'_>,
    raw: &[u8],
    decoded: &str,
    warnings: &mut Vec<String>,
) -> String {
    let declared = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(|c| c.trim().to_ascii_lowercase());
    let Some(bytes) = transfer_decoded(part, raw) else {
        return decoded.to_string();
    };
    if bytes.is_ascii() {
        return decoded.to_string();
    }
    let declared_utf8 = declared
        .as_deref()
        .is_none_or(|c| c == "utf-8" || c == "utf8" || c == "us-ascii");
    match std::str::from_utf8(&bytes) {
        Ok(utf8) if !declared_utf8 && !is_utf16(declared.as_deref()) => {
            warnings.push(format!(
                "body declared as {} is valid UTF-8: decoded as UTF-8",
                declared.as_deref().unwrap_or("?")
            ));
            utf8.to_string()
        }
        Err(_) if declared_utf8 => {
            let encoding = guess_encoding(&[&bytes]);
            match encoding.decode(&bytes) {
                (text, _, false) => {
                    warnings.push(format!(
                        "body declared as {} is not valid UTF-8: detected as {}",
                        declared.as_deref().unwrap_or("no charset"),
                        encoding.name()
                    ));
                    text.into_owned()
                }
                _ => decoded.to_string(),
            }
        }
        // A legacy label that the bytes do not fit (Big5 sent as gb2312):
        // believe the bytes.
        Err(_) => {
            let label = declared.as_deref().unwrap_or_default();
            let misfits = !is_utf16(declared.as_deref())
                && Encoding::for_label(label.as_bytes())
                    .is_some_and(|e| e.decode_without_bom_handling(&bytes).1);
            if !misfits {
                return decoded.to_string();
            }
            let guessed = guess_encoding(&[&bytes]);
            match guessed.decode_without_bom_handling(&bytes) {
                (text, false) => {
                    warnings.push(format!(
                        "body declared as {label} does not decode as {label}: detected as {}",
                        guessed.name()
                    ));
                    text.into_owned()
                }
                _ => decoded.to_string(),
            }
        }
        _ => decoded.to_string(),
    }
}

fn is_utf8_label(charset: &str) -> bool {
    matches!(charset, "utf-8" | "utf8" | "us-ascii" | "ascii")
}

/// chardetng's guess for bytes in no (or a wrong) declared charset: Big5,
/// GBK/GB18030, Shift_JIS, EUC-KR, UTF-8 and the rest, by the whole sample.
fn guess_encoding(samples: &[&[u8]]) -> &'static Encoding {
    let mut detector = chardetng::EncodingDetector::new();
    for sample in samples {
        detector.feed(sample, false);
    }
    detector.feed(&[], true);
    detector.guess(None, true)
}

/// The raw bytes of the text parts that declare no charset, up to 64 KiB:
/// more evidence for guessing a raw subject's charset.
fn undeclared_body_bytes(message: &Message<'_>, raw: &[u8]) -> Vec<u8> {
    const MAX_SAMPLE: usize = 64 * 1024;
    let mut out = Vec::new();
    for id in &message.text_body {
        let Some(part) = message.parts.get(*id as usize) else {
            continue;
        };
        let declared = part.content_type().and_then(|ct| ct.attribute("charset"));
        if declared.is_none()
            && let Some(bytes) = transfer_decoded(part, raw)
        {
            out.extend_from_slice(&bytes[..bytes.len().min(MAX_SAMPLE - out.len())]);
        }
        if out.len() >= MAX_SAMPLE {
            break;
        }
    }
    out
}

fn is_utf16(charset: Option<&str>) -> bool {
    charset
        .is_some_and(|c| c.starts_with("utf-16") || c.starts_with("utf16") || c.starts_with("ucs"))
}

/// The part's body bytes after undoing its transfer encoding.
pub(crate) fn transfer_decoded(part: &mail_parser::MessagePart<'_>, raw: &[u8]) -> Option<Vec<u8>> {
    let bytes = raw.get(part.offset_body as usize..part.offset_end as usize)?;
    match part.encoding {
        TransferEncoding::None => Some(bytes.to_vec()),
        TransferEncoding::Base64 => base64_decode(bytes),
        TransferEncoding::QuotedPrintable => quoted_printable_decode(bytes),
    }
}

/// The fixed offset a date was written in, for display.
pub fn offset_of(minutes: Option<i32>) -> Option<FixedOffset> {
    minutes.and_then(|m| FixedOffset::east_opt(m * 60))
}

/// Who the mail is from, in the desk's terms, from its headers.
fn direction_of(
    message: &Message<'_>,
    subject: &str,
    from: Option<&Mailbox>,
    desk: &DeskConfig,
) -> Direction {
    let content_type = message
        .content_type()
        .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase())
        .unwrap_or_else(|| "text/plain".into());
    let report_type = message
        .content_type()
        .and_then(|ct| ct.attribute("report-type"));
    let header_text = |name: &'static str| message.header_raw(name).map(str::trim);
    let return_path_empty = header_text("Return-Path").is_some_and(|v| v == "<>" || v.is_empty());
    let signals = MailSignals {
        from_address: from.and_then(|m| m.address.as_deref()),
        subject,
        content_type: &content_type,
        report_type,
        auto_submitted: header_text("Auto-Submitted"),
        precedence: header_text("Precedence"),
        x_autoreply: header_text("X-Autoreply").is_some() || header_text("X-Autorespond").is_some(),
        return_path_empty,
    };
    classify(&signals, desk)
}

/// Name, type and size of every attachment part.
fn attachment_infos(message: &Message<'_>) -> Vec<AttachmentInfo> {
    message
        .attachments
        .iter()
        .filter_map(|id| message.parts.get(*id as usize).map(|p| (*id, p)))
        .map(|(id, part)| AttachmentInfo {
            filename: part.attachment_name().map(safe_file_name),
            content_type: part
                .content_type()
                .map(|ct| {
                    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("octet-stream"))
                        .to_ascii_lowercase()
                })
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: part.len() as u64,
            part: id,
        })
        .collect()
}

/// Attachments listed per mail (all of them are still analysed, within
/// the bundle's bounds), links kept per mail, addresses kept per header.
const MAX_LISTED_ATTACHMENTS: usize = 200;
const MAX_LINKS: usize = 100;
const MAX_LISTED_RECIPIENTS: usize = 500;

/// Keeps the first `max` items and says how many more there were.
fn cap<T>(items: &mut Vec<T>, max: usize, what: &str, warnings: &mut Vec<String>) {
    if items.len() > max {
        warnings.push(format!(
            "{} {what}: only the first {max} are listed",
            items.len()
        ));
        items.truncate(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> ParsedMail {
        let parser = MailParser::new(
            &DeskConfig::default(),
            &GrammarConfig::default(),
            &IngestConfig::default(),
        )
        .unwrap();
        parser
            .parse(raw, Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap())
            .unwrap()
    }

    /// A mail written in `encoding` with no charset anywhere: raw 8-bit
    /// subject and body.
    fn undeclared(encoding: &'static Encoding, subject: &str, body: &str) -> Vec<u8> {
        let mut raw = b"From: a@example.cn\r\nTo: support@example.com\r\nSubject: ".to_vec();
        raw.extend_from_slice(&encoding.encode(subject).0);
        raw.extend_from_slice(b"\r\nMessage-ID: <u@example.cn>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
        raw.extend_from_slice(&encoding.encode(body).0);
        raw.extend_from_slice(b"\r\n");
        raw
    }

    #[test]
    fn undeclared_big5_shift_jis_euc_kr_and_gbk_are_detected_not_assumed() {
        let cases: [(&'static Encoding, &str, &str); 4] = [
            (
                encoding_rs::BIG5,
                "回覆: 伺服器更新安裝失敗",
                "您好，我們的伺服器安裝更新時失敗，錯誤代碼 0x800f0922。請協助處理，謝謝！附件是記錄檔。",
            ),
            (
                encoding_rs::SHIFT_JIS,
                "更新プログラムのインストール失敗",
                "お世話になっております。更新プログラムのインストールに失敗しました。ログを添付しますので、ご確認ください。",
            ),
            (
                encoding_rs::EUC_KR,
                "업데이트 설치 실패",
                "안녕하세요. 서버에 업데이트를 설치하는 중에 오류가 발생했습니다. 로그를 첨부합니다. 확인 부탁드립니다.",
            ),
            (
                encoding_rs::GBK,
                "回复: 服务器补丁安装失败",
                "您好，我们的服务器安装补丁时失败，错误代码 0x800f0922。请协助处理，谢谢！附件是日志文件。",
            ),
        ];
        for (encoding, subject, body) in cases {
            let m = parse(&undeclared(encoding, subject, body));
            assert_eq!(m.subject, subject, "{}: {:?}", encoding.name(), m.warnings);
            assert_eq!(
                m.body.new_text,
                body,
                "{}: {:?}",
                encoding.name(),
                m.warnings
            );
        }
    }

    #[test]
    fn a_legacy_label_the_bytes_do_not_fit_is_not_believed() {
        let body = "您好，我們的伺服器安裝更新時失敗，錯誤代碼 0x800f0922。請協助處理，謝謝！附件是記錄檔。";
        let mut raw =
            b"From: a@example.cn\r\nSubject: x\r\nContent-Type: text/plain; charset=euc-kr\r\n\r\n"
                .to_vec();
        raw.extend_from_slice(&encoding_rs::BIG5.encode(body).0);
        raw.extend_from_slice(b"\r\n");
        let m = parse(&raw);
        assert_eq!(m.body.new_text, body, "{:?}", m.warnings);
        assert!(
            m.warnings.iter().any(|w| w.contains("detected as Big5")),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn a_mail_of_too_many_parts_is_refused_before_parsing() {
        let mut raw = String::from(
            "From: a@example.cn\r\nSubject: many\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
        );
        for i in 0..10_001 {
            raw.push_str(&format!("--b\r\nContent-Type: text/plain\r\n\r\n{i}\r\n"));
        }
        let parser = MailParser::new(
            &DeskConfig::default(),
            &GrammarConfig::default(),
            &IngestConfig::default(),
        )
        .unwrap();
        assert!(matches!(
            parser.parse(raw.as_bytes(), Utc::now()),
            Err(Rejection::TooManyParts {
                lines: 10_001,
                limit: 10_000
            })
        ));
    }

    #[test]
    fn one_mail_contributes_a_bounded_list() {
        let mut raw = String::from(
            "From: a@example.cn\r\nTo: support@example.com\r\nSubject: many\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nsee https://a.example.com/1 https://a.example.com/1/\r\n",
        );
        for i in 0..650 {
            raw.push_str(&format!(
                "--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"f{i}.log\"\r\n\r\nx\r\n"
            ));
        }
        raw.push_str("--b--\r\n");
        let m = parse(raw.as_bytes());
        assert_eq!(m.attachments.len(), 200);
        assert!(
            m.warnings
                .iter()
                .any(|w| w == "650 attachments: only the first 200 are listed"),
            "{:?}",
            m.warnings
        );
        assert_eq!(m.links.len(), 1, "the same link twice is one");
    }

    #[test]
    fn utf8_declared_as_gb2312_is_repaired() {
        let raw = "From: a@example.cn\r\nSubject: x\r\nContent-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: 8bit\r\n\r\n问题解决了，谢谢\r\n";
        let m = parse(raw.as_bytes());
        assert_eq!(m.body.new_text, "问题解决了，谢谢");
        assert!(
            m.warnings.iter().any(|w| w.contains("valid UTF-8")),
            "{:?}",
            m.warnings
        );
        assert!(m.resolution_phrase.is_some());
    }

    #[test]
    fn undeclared_gbk_body_and_raw_8bit_subject_are_repaired() {
        let (body, _, _) = encoding_rs::GBK.encode("日志已上传");
        let (subj, _, _) = encoding_rs::GBK.encode("回复: 补丁失败");
        let mut raw = b"From: a@example.cn\r\nSubject: ".to_vec();
        raw.extend_from_slice(&subj);
        raw.extend_from_slice(b"\r\nContent-Type: text/plain\r\n\r\n");
        raw.extend_from_slice(&body);
        let m = parse(&raw);
        assert_eq!(m.body.new_text, "日志已上传");
        assert_eq!(m.subject, "回复: 补丁失败");
    }

    #[test]
    fn missing_message_id_is_synthesised_deterministically() {
        let raw = b"From: a@example.cn\r\nSubject: x\r\nDate: Mon, 20 Mar 2023 16:54:30 +0800\r\n\r\nhello\r\n";
        let a = parse(raw);
        let b = parse(raw);
        assert!(a.message_id_synthesized);
        assert_eq!(a.message_id, b.message_id);
        assert!(a.message_id.ends_with("@casebot.invalid"));
        assert_eq!(a.date.to_rfc3339(), "2023-03-20T08:54:30+00:00");
        assert_eq!(a.date_offset_minutes, Some(480));
        assert_ne!(
            parse(b"From: a@example.cn\r\nSubject: y\r\n\r\nhello\r\n").message_id,
            a.message_id
        );
    }

    #[test]
    fn malformed_date_falls_back_to_received_then_arrival() {
        let raw = b"Received: from mx.example.cn by mx.example.com; Tue, 21 Mar 2023 03:41:49 +0000\r\nFrom: a@example.cn\r\nDate: yesterday afternoon\r\nSubject: x\r\n\r\nhi\r\n";
        let m = parse(raw);
        assert_eq!(m.date_source, DateSource::Received);
        assert_eq!(m.date.to_rfc3339(), "2023-03-21T03:41:49+00:00");
        assert!(
            m.warnings.iter().any(|w| w.contains("malformed")),
            "{:?}",
            m.warnings
        );
        let m = parse(b"From: a@example.cn\r\nDate: 99 Foo 2023\r\nSubject: x\r\n\r\nhi\r\n");
        assert_eq!(m.date_source, DateSource::Arrival);
        assert_eq!(m.date.to_rfc3339(), "2024-01-02T03:04:05+00:00");
    }

    #[test]
    fn rejections() {
        let ingest = IngestConfig {
            max_message_bytes: 100,
            ..IngestConfig::default()
        };
        let parser =
            MailParser::new(&DeskConfig::default(), &GrammarConfig::default(), &ingest).unwrap();
        let now = Utc::now();
        assert_eq!(parser.parse(b"  \r\n", now).unwrap_err(), Rejection::Empty);
        assert!(matches!(
            parser.parse(&[b'a'; 200], now),
            Err(Rejection::TooLarge { size: 200, .. })
        ));
        assert!(parser.parse(b"\x00\x01\x02 binary garbage", now).is_err());
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Larger mails are quarantined unparsed (their bytes are still kept).
    pub max_message_bytes: u64,
    /// Mails with more lines that could open a MIME part (`--…`) are
    /// quarantined unparsed too: parsing holds every part in memory.
    pub max_mime_parts: u64,
    /// Phrases in a customer's new text that confirm the fix.
    pub resolution_phrases: Vec<String>,
    /// Phrases in the desk's new text that close the case (案例总结).
    pub closure_phrases: Vec<String>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024 * 1024,
            max_mime_parts: 10_000,
            resolution_phrases: default_resolution_phrases(),
            closure_phrases: default_closure_phrases(),
        }
    }
}
