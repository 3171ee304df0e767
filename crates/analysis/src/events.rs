//! Windows event logs as lines the rules can read.
//!
//! A log collector brings the System, Setup and Application logs as `.evtx`
//! files, or as exports: XML from Event Viewer or `wevtutil qe /f:xml`, or
//! text and CSV whose rendered messages are matched like any text. An `.evtx`
//! holds no message text (that lives in the providers' DLLs on the machine),
//! only each event's provider, id, level, time and data fields, and an XML
//! export holds the same. Both are rendered here into one line per event, in
//! the servicing logs' head format so that times and levels are read as in
//! CBS.log:
//!
//! ```text
//! 2017-07-23 07:25:41, Error EVENT System Microsoft-Windows-WindowsUpdateClient 20: errorCode=0x80248007; updateTitle=… (KB4025342); …
//! ```
//!
//! Times are the records' UTC times. The rules for these lines are in
//! `rules/55-eventlog.toml` (kind `eventlog`).
//!
//! Bounds: the `.evtx` reader is the `evtx` crate, single-threaded, a chunk
//! (64 KiB of records) at a time; the XML reader is `quick-xml` streaming,
//! with one text node or tag held to [`MAX_NODE`]. A rendered line keeps at
//! most [`MAX_FIELDS`] fields of [`MAX_VALUE`] characters, and every reader
//! stops at the bundle's deadline.

use std::io::{BufRead, BufReader, Read, Seek};
use std::time::Instant;

use quick_xml::events::Event as XmlEvent;

/// Fields of one event kept on its line.
pub const MAX_FIELDS: usize = 48;
/// Characters of one field's value kept on its line.
pub const MAX_VALUE: usize = 1024;
/// Bytes of one XML text node or tag; a longer one ends the file with an error.
pub const MAX_NODE: usize = 1 << 20;

/// One event, as much of it as a rule needs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// `2017-07-23T07:25:41.8045046Z` as written.
    pub time: Option<String>,
    pub level: Option<u8>,
    pub channel: String,
    pub provider: String,
    pub id: String,
    /// Data fields (EventData, UserData, and a rendered message if present).
    pub fields: Vec<(String, String)>,
}

impl EventRecord {
    /// The event as one line (with its line break).
    pub fn line(&self) -> String {
        let mut line = String::with_capacity(256);
        if let Some((date, clock)) = self.time.as_deref().and_then(split_time) {
            line.push_str(date);
            line.push(' ');
            line.push_str(clock);
            line.push_str(", ");
            line.push_str(level_name(self.level));
            line.push(' ');
        }
        line.push_str("EVENT ");
        line.push_str(or_dash(&self.channel));
        line.push(' ');
        line.push_str(or_dash(&self.provider));
        line.push(' ');
        line.push_str(or_dash(&self.id));
        line.push(':');
        for (i, (key, value)) in self.fields.iter().enumerate() {
            line.push_str(if i == 0 { " " } else { "; " });
            line.push_str(key);
            line.push('=');
            line.push_str(value);
        }
        line.push('\n');
        line
    }

    fn add_field(&mut self, key: &str, value: &str) {
        let value = one_line(value);
        if value.is_empty() || self.fields.len() >= MAX_FIELDS {
            return;
        }
        let key = if key.is_empty() { "Data" } else { key };
        self.fields.push((one_line(key), value));
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// `2017-07-23T07:25:41.8045046Z` → (`2017-07-23`, `07:25:41`).
fn split_time(time: &str) -> Option<(&str, &str)> {
    let (date, rest) = time.split_once('T')?;
    let clock = rest.get(..8)?;
    let well_formed = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
        && clock.bytes().enumerate().all(|(i, b)| match i {
            2 | 5 => b == b':',
            _ => b.is_ascii_digit(),
        });
    well_formed.then_some((date, clock))
}

/// The event level names Event Viewer shows, as one word.
fn level_name(level: Option<u8>) -> &'static str {
    match level {
        Some(1) => "Critical",
        Some(2) => "Error",
        Some(3) => "Warning",
        Some(5) => "Verbose",
        _ => "Info",
    }
}

/// A value on one line: line breaks and the field separator become spaces,
/// runs of white space one space, at most [`MAX_VALUE`] characters.
fn one_line(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_VALUE));
    let mut space = false;
    for c in value.trim().chars().take(MAX_VALUE) {
        if c.is_whitespace() || c == ';' || c.is_control() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

/// Why an event log could not be read (to its end).
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("not a readable .evtx file: {0}")]
    Evtx(String),
    #[error("not readable XML at byte {at}: {reason}")]
    Xml { at: u64, reason: String },
}

/// The records of an `.evtx` file, rendered; damaged records are counted in
/// `skipped` and left out (an `.evtx` copied from a live system often has a
/// dirty last chunk).
pub struct EvtxLines<I> {
    records: I,
    line: PendingLine,
    deadline: Instant,
    pub skipped: u64,
}

/// A rendered line being handed out through `Read`, a buffer's worth at a time.
#[derive(Default)]
struct PendingLine {
    bytes: Vec<u8>,
    pos: usize,
}

impl PendingLine {
    fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn set(&mut self, record: &EventRecord) {
        self.bytes = record.line().into_bytes();
        self.pos = 0;
    }

    fn take_into(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.bytes.len() - self.pos);
        buf[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        n
    }
}

/// Opens an `.evtx` file; call [`EvtxLines`] over its records with
/// [`evtx_records`].
pub fn open_evtx<R: Read + Seek>(file: R) -> Result<evtx::EvtxParser<R>, EventsError> {
    // Single-threaded: the crate is built without its rayon feature.
    let settings = evtx::ParserSettings::new()
        .separate_json_attributes(false)
        .validate_checksums(false);
    evtx::EvtxParser::from_read_seek(file)
        .map(|p| p.with_configuration(settings))
        .map_err(|e| EventsError::Evtx(e.to_string()))
}

/// The parser's records as a byte stream of rendered lines.
pub fn evtx_records<R: Read + Seek>(
    parser: &mut evtx::EvtxParser<R>,
    deadline: Instant,
) -> EvtxLines<impl Iterator<Item = Option<EventRecord>> + '_> {
    let records = parser
        .records_json_value()
        .map(|r| r.ok().map(|r| from_json(&r.data)));
    EvtxLines {
        records,
        line: PendingLine::default(),
        deadline,
        skipped: 0,
    }
}

impl<I: Iterator<Item = Option<EventRecord>>> Read for EvtxLines<I> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.line.is_empty() {
            if Instant::now() > self.deadline {
                return Err(std::io::Error::other(crate::bundle::TIME_LIMIT));
            }
            match self.records.next() {
                None => return Ok(0),
                Some(None) => self.skipped += 1,
                Some(Some(record)) => self.line.set(&record),
            }
        }
        Ok(self.line.take_into(buf))
    }
}

/// One record as the `evtx` crate gives it in JSON (attributes under
/// `#attributes`, element text under `#text` when the element has both).
pub fn from_json(value: &serde_json::Value) -> EventRecord {
    use serde_json::Value;
    let event = value.get("Event").unwrap_or(value);
    let system = event.get("System");
    let field = |name: &str| system.and_then(|s| s.get(name));
    let text = |v: Option<&Value>| -> String {
        match v {
            Some(Value::Object(o)) => o.get("#text").map(scalar).unwrap_or_default(),
            Some(v) => scalar(v),
            None => String::new(),
        }
    };
    let attribute = |v: Option<&Value>, name: &str| -> Option<String> {
        v?.get("#attributes")?.get(name).map(scalar)
    };
    let mut record = EventRecord {
        time: attribute(field("TimeCreated"), "SystemTime"),
        level: text(field("Level")).parse().ok(),
        channel: text(field("Channel")),
        provider: attribute(field("Provider"), "Name").unwrap_or_default(),
        id: text(field("EventID")),
        fields: Vec::new(),
    };
    for part in ["EventData", "UserData"] {
        if let Some(data) = event.get(part) {
            flatten_json(&mut record, "", data, 0);
        }
    }
    record
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Data fields by their innermost name; lists repeat the name.
fn flatten_json(record: &mut EventRecord, key: &str, value: &serde_json::Value, depth: u32) {
    use serde_json::Value;
    if depth > 8 || record.fields.len() >= MAX_FIELDS {
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match k.as_str() {
                    "#attributes" => continue,
                    "#text" => flatten_json(record, key, v, depth + 1),
                    _ => flatten_json(record, k, v, depth + 1),
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                flatten_json(record, key, v, depth + 1);
            }
        }
        v => record.add_field(key, &scalar(v)),
    }
}

/// Where in an `<Event>` the XML reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Outside,
    System,
    /// EventData, UserData, or RenderingInfo's message.
    Data,
    Other,
}

/// The events of an XML export (UTF-8 input: see `scan::Utf8Reader`), as a
/// byte stream of rendered lines.
pub struct XmlLines<R: BufRead> {
    reader: quick_xml::Reader<NodeLimit<R>>,
    buf: Vec<u8>,
    line: PendingLine,
    deadline: Instant,
    done: bool,
}

/// Reads `input` (UTF-8) as an XML export of events, as rendered lines.
pub fn xml_lines<R: Read>(input: R, deadline: Instant) -> XmlLines<BufReader<R>> {
    let mut reader = quick_xml::Reader::from_reader(NodeLimit {
        inner: BufReader::new(input),
        since_markup: 0,
    });
    reader.config_mut().check_end_names = false;
    XmlLines {
        reader,
        buf: Vec::new(),
        line: PendingLine::default(),
        deadline,
        done: false,
    }
}

impl<R: BufRead> XmlLines<R> {
    fn error(&self, reason: impl std::fmt::Display) -> std::io::Error {
        std::io::Error::other(
            EventsError::Xml {
                at: self.reader.buffer_position(),
                reason: reason.to_string(),
            }
            .to_string(),
        )
    }

    /// Reads up to the end of the next `<Event>`; `None` at the end.
    fn next_event(&mut self) -> std::io::Result<Option<EventRecord>> {
        let mut record: Option<EventRecord> = None;
        let mut section = Section::Outside;
        // The element whose text is being read, and its `Name` attribute.
        let mut element = String::new();
        let mut name_attr = String::new();
        let mut text = String::new();
        loop {
            if Instant::now() > self.deadline {
                return Err(std::io::Error::other(crate::bundle::TIME_LIMIT));
            }
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(e) => e,
                Err(e) => return Err(self.error(e)),
            };
            match event {
                XmlEvent::Eof => return Ok(None),
                XmlEvent::Start(tag) | XmlEvent::Empty(tag) => {
                    let local = String::from_utf8_lossy(tag.local_name().as_ref()).into_owned();
                    let attr = |name: &[u8]| {
                        tag.attributes()
                            .flatten()
                            .find(|a| a.key.local_name().as_ref() == name)
                            .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                    };
                    match (&mut record, local.as_str()) {
                        (None, "Event") => {
                            record = Some(EventRecord::default());
                            section = Section::Outside;
                        }
                        (None, _) => {}
                        (Some(_), "System") => section = Section::System,
                        (Some(_), "EventData" | "UserData") => section = Section::Data,
                        (Some(_), "RenderingInfo") => section = Section::Other,
                        (Some(r), "Provider") if section == Section::System => {
                            r.provider = attr(b"Name").unwrap_or_default();
                        }
                        (Some(r), "TimeCreated") if section == Section::System => {
                            r.time = attr(b"SystemTime");
                        }
                        (Some(_), _) => {
                            element = local;
                            name_attr = attr(b"Name").unwrap_or_default();
                            text.clear();
                        }
                    }
                }
                // The input is UTF-8 already (see `scan::Utf8Reader`).
                XmlEvent::Text(t) if record.is_some() && text.len() < MAX_VALUE * 4 => {
                    text.push_str(&String::from_utf8_lossy(&t));
                }
                XmlEvent::CData(t) if record.is_some() && text.len() < MAX_VALUE * 4 => {
                    text.push_str(&String::from_utf8_lossy(&t));
                }
                XmlEvent::GeneralRef(r) if record.is_some() => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c),
                        _ => match &r[..] {
                            b"lt" => Some('<'),
                            b"gt" => Some('>'),
                            b"amp" => Some('&'),
                            b"apos" => Some('\''),
                            b"quot" => Some('"'),
                            _ => None,
                        },
                    };
                    text.extend(resolved);
                }
                XmlEvent::End(tag) => {
                    let local = tag.local_name();
                    let Some(r) = record.as_mut() else {
                        continue;
                    };
                    match local.as_ref() {
                        b"Event" => return Ok(record),
                        b"System" | b"EventData" | b"UserData" | b"RenderingInfo" => {
                            section = Section::Outside;
                            continue;
                        }
                        _ => {}
                    }
                    if element.as_bytes() != local.as_ref() {
                        continue;
                    }
                    match (section, element.as_str()) {
                        (Section::System, "EventID") => r.id = text.trim().to_string(),
                        (Section::System, "Level") => r.level = text.trim().parse().ok(),
                        (Section::System, "Channel") => r.channel = text.trim().to_string(),
                        (Section::Data, "Data") => r.add_field(&name_attr, &text),
                        (Section::Data, key) => r.add_field(key, &text),
                        (Section::Other, "Message") => r.add_field("Message", &text),
                        _ => {}
                    }
                    element.clear();
                    text.clear();
                }
                _ => {}
            }
        }
    }
}

impl<R: BufRead> Read for XmlLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.line.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.next_event()? {
                None => self.done = true,
                Some(record) => self.line.set(&record),
            }
        }
        Ok(self.line.take_into(buf))
    }
}

/// Refuses a run of more than [`MAX_NODE`] bytes without `<` or `>`: the XML
/// reader holds a whole text node or tag in memory.
struct NodeLimit<R> {
    inner: R,
    since_markup: usize,
}

impl<R: BufRead> Read for NodeLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for NodeLimit<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.since_markup > MAX_NODE {
            return Err(std::io::Error::other(format!(
                "a text node or tag longer than {} KiB",
                MAX_NODE >> 10
            )));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        // Count what is handed on: runs without markup grow, markup resets.
        if let Ok(available) = self.inner.fill_buf() {
            let taken = &available[..amount.min(available.len())];
            match memchr::memrchr2(b'<', b'>', taken) {
                Some(i) => self.since_markup = taken.len() - i - 1,
                None => self.since_markup += taken.len(),
            }
        }
        self.inner.consume(amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_line_in_the_servicing_head_format() {
        let mut record = EventRecord {
            time: Some("2017-07-23T07:25:41.8045046Z".into()),
            level: Some(2),
            channel: "System".into(),
            provider: "Microsoft-Windows-WindowsUpdateClient".into(),
            id: "20".into(),
            fields: Vec::new(),
        };
        record.add_field("errorCode", "0x80248007");
        record.add_field("updateTitle", "Update; for\nWindows  (KB4025342)");
        let line = record.line();
        assert_eq!(
            line,
            "2017-07-23 07:25:41, Error EVENT System Microsoft-Windows-WindowsUpdateClient 20: errorCode=0x80248007; updateTitle=Update for Windows (KB4025342)\n"
        );
        let head = crate::logs::parse_head(&line);
        assert_eq!(head.time.as_deref(), Some("2017-07-23T07:25:41"));
        assert_eq!(head.level.as_deref(), Some("Error"));
    }

    #[test]
    fn an_xml_export_gives_one_line_per_event_with_named_and_user_data() {
        let xml = "<?xml version=\"1.0\"?><Events>\
            <Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>\
            <Provider Name='Microsoft-Windows-Servicing' Guid='{x}'/><EventID>3</EventID><Level>2</Level>\
            <TimeCreated SystemTime='2021-09-15T10:00:00.000Z'/><Channel>Setup</Channel></System>\
            <UserData><CbsPackageChangeState xmlns='x'><PackageIdentifier>KB5005565</PackageIdentifier>\
            <ErrorCode>0x800f0922</ErrorCode></CbsPackageChangeState></UserData></Event>\
            <Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>\
            <Provider Name='Microsoft-Windows-WindowsUpdateClient'/><EventID Qualifiers='0'>19</EventID>\
            </System><EventData><Data Name='updateTitle'>A &amp; B (KB1)</Data></EventData>\
            <RenderingInfo Culture='en-US'><Message>Installation Successful</Message></RenderingInfo></Event>\
            </Events>";
        let mut out = String::new();
        xml_lines(
            xml.as_bytes(),
            Instant::now() + std::time::Duration::from_secs(60),
        )
        .read_to_string(&mut out)
        .expect("reads");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(
            lines[0],
            "2021-09-15 10:00:00, Error EVENT Setup Microsoft-Windows-Servicing 3: PackageIdentifier=KB5005565; ErrorCode=0x800f0922"
        );
        assert_eq!(
            lines[1],
            "EVENT - Microsoft-Windows-WindowsUpdateClient 19: updateTitle=A & B (KB1); Message=Installation Successful"
        );
    }

    #[test]
    fn a_huge_text_node_is_refused_not_buffered() {
        let mut xml = String::from("<Events><Event><EventData><Data>");
        xml.push_str(&"x".repeat(3 * MAX_NODE));
        xml.push_str("</Data></EventData></Event></Events>");
        let mut out = String::new();
        let err = xml_lines(
            xml.as_bytes(),
            Instant::now() + std::time::Duration::from_secs(60),
        )
        .read_to_string(&mut out)
        .expect_err("refused");
        assert!(err.to_string().contains("longer than"), "{err}");
    }
}
