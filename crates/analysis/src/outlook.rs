//! Outlook `.msg` files: a mail forwarded as an attachment from Outlook.
//!
//! A `.msg` is an OLE compound file (read with the `cfb` crate) whose
//! streams are MAPI properties named `__substg1.0_<id><type>` ([MS-OXMSG]):
//! the subject, sender and body as strings, each attachment in its own
//! `__attach_version1.0_#NNNNNNNN` storage with its name and its bytes, or a
//! whole message (an attached mail) as a storage of the same layout. This
//! module reads what log analysis needs: the text, and where each
//! attachment's bytes are. The RTF body (compressed) is not read: Outlook
//! writes a plain-text body beside it.

use std::io::{Read, Seek};

use cfb::CompoundFile;

/// MAPI property ids used here.
const SUBJECT: &str = "0037";
const SENDER_NAME: &str = "0C1A";
const SENDER_ADDRESS: &str = "5D01";
const DISPLAY_TO: &str = "0E04";
const BODY: &str = "1000";
const HTML_BODY: &str = "1013";
const ATTACH_LONG_FILENAME: &str = "3707";
const ATTACH_FILENAME: &str = "3704";
const ATTACH_DATA: &str = "3701";

/// Property types: UTF-16LE string, 8-bit string, binary, embedded object.
const UNICODE: &str = "001F";
const STRING8: &str = "001E";
const BINARY: &str = "0102";
const OBJECT: &str = "000D";

/// The most attachments read from one message.
const MAX_ATTACHMENTS: usize = 200;

/// Is this compound file an Outlook message (not a Word or Excel file)?
pub fn is_message<F: Read + Seek>(compound: &CompoundFile<F>) -> bool {
    compound.is_stream("/__properties_version1.0")
        && (compound.is_storage("/__nameid_version1.0")
            || compound
                .read_root_storage()
                .any(|e| e.name().starts_with("__substg1.0_")))
}

/// What a message holds.
#[derive(Debug, Default)]
pub struct Message {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub attachments: Vec<Attachment>,
    /// What could not be read, for the bundle's list.
    pub problems: Vec<String>,
}

impl Message {
    /// The headers an engineer would see, then the body.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for (label, value) in [
            ("From", &self.from),
            ("To", &self.to),
            ("Subject", &self.subject),
        ] {
            if !value.is_empty() {
                text.push_str(label);
                text.push_str(": ");
                text.push_str(value);
                text.push('\n');
            }
        }
        text.push('\n');
        text.push_str(&self.body);
        text
    }
}

#[derive(Debug)]
pub struct Attachment {
    pub name: String,
    pub content: AttachmentContent,
}

#[derive(Debug)]
pub enum AttachmentContent {
    /// The path of the stream that holds the attachment's bytes.
    Stream(String),
    /// The storage of an attached message (same layout as the root).
    Message(String),
    /// Neither (an OLE object, a reference to a file elsewhere): why.
    Unsupported(String),
}

/// Reads the message stored under `root` (`/` for the file itself); no
/// string property is read beyond `max_bytes`.
pub fn read_message<F: Read + Seek>(
    compound: &mut CompoundFile<F>,
    root: &str,
    max_bytes: u64,
) -> Message {
    let root = root.trim_end_matches('/');
    let mut message = Message {
        subject: string(compound, root, SUBJECT, max_bytes).unwrap_or_default(),
        from: sender(compound, root, max_bytes),
        to: string(compound, root, DISPLAY_TO, max_bytes).unwrap_or_default(),
        body: string(compound, root, BODY, max_bytes).unwrap_or_default(),
        ..Message::default()
    };
    if message.body.trim().is_empty()
        && let Some(html) = binary_text(compound, root, HTML_BODY, max_bytes)
    {
        message.body = html_to_text(&html);
    }
    let storages: Vec<String> =
        match compound.read_storage(if root.is_empty() { "/" } else { root }) {
            Ok(entries) => entries
                .filter(|e| e.is_storage() && e.name().starts_with("__attach_version1.0_#"))
                .map(|e| e.path().to_string_lossy().into_owned())
                .collect(),
            Err(e) => {
                message
                    .problems
                    .push(format!("cannot list the message: {e}"));
                Vec::new()
            }
        };
    if storages.len() > MAX_ATTACHMENTS {
        message.problems.push(format!(
            "{} attachments: only the first {MAX_ATTACHMENTS} are read",
            storages.len()
        ));
    }
    for (i, storage) in storages.into_iter().take(MAX_ATTACHMENTS).enumerate() {
        let name = string(compound, &storage, ATTACH_LONG_FILENAME, 4096)
            .or_else(|| string(compound, &storage, ATTACH_FILENAME, 4096))
            .map(|n| n.replace(['/', '\\'], "_"))
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("attachment-{}", i + 1));
        let data = property_path(&storage, ATTACH_DATA, BINARY);
        let embedded = property_path(&storage, ATTACH_DATA, OBJECT);
        let content = if compound.is_stream(&data) {
            AttachmentContent::Stream(data)
        } else if compound.is_storage(&embedded) {
            AttachmentContent::Message(embedded)
        } else {
            AttachmentContent::Unsupported(
                "an OLE object or a link to a file: no bytes in the message".to_string(),
            )
        };
        message.attachments.push(Attachment { name, content });
    }
    message
}

fn property_path(storage: &str, id: &str, kind: &str) -> String {
    format!("{storage}/__substg1.0_{id}{kind}")
}

/// A string property in either of its types.
fn string<F: Read + Seek>(
    compound: &mut CompoundFile<F>,
    storage: &str,
    id: &str,
    max_bytes: u64,
) -> Option<String> {
    if let Some(bytes) = stream_bytes(compound, &property_path(storage, id, UNICODE), max_bytes) {
        let (text, _) = encoding_rs::UTF_16LE.decode_without_bom_handling(&bytes);
        return Some(text.trim_end_matches('\0').to_string());
    }
    let bytes = stream_bytes(compound, &property_path(storage, id, STRING8), max_bytes)?;
    // 8-bit strings are in the sender's code page; a Chinese Outlook's is GBK.
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text.to_string(),
        Err(_) => encoding_rs::GB18030
            .decode_without_bom_handling(&bytes)
            .0
            .into_owned(),
    };
    Some(text.trim_end_matches('\0').to_string())
}

fn binary_text<F: Read + Seek>(
    compound: &mut CompoundFile<F>,
    storage: &str,
    id: &str,
    max_bytes: u64,
) -> Option<String> {
    let bytes = stream_bytes(compound, &property_path(storage, id, BINARY), max_bytes)?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn sender<F: Read + Seek>(compound: &mut CompoundFile<F>, storage: &str, max_bytes: u64) -> String {
    let name = string(compound, storage, SENDER_NAME, max_bytes).unwrap_or_default();
    match string(compound, storage, SENDER_ADDRESS, max_bytes) {
        Some(address) if !address.is_empty() && address != name => {
            format!("{name} <{address}>").trim().to_string()
        }
        _ => name,
    }
}

fn stream_bytes<F: Read + Seek>(
    compound: &mut CompoundFile<F>,
    path: &str,
    max_bytes: u64,
) -> Option<Vec<u8>> {
    if !compound.is_stream(path) {
        return None;
    }
    let stream = compound.open_stream(path).ok()?;
    let mut bytes = Vec::new();
    stream.take(max_bytes).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Tags dropped, character references decoded, block ends as lines:
/// enough to scan an HTML-only body for log lines.
fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let name = tag.trim_start_matches('/').to_ascii_lowercase();
                if ["br", "p", "div", "tr", "li"]
                    .iter()
                    .any(|t| name.split([' ', '/']).next() == Some(t))
                {
                    out.push('\n');
                }
            }
            (true, c) => {
                if tag.len() < 16 {
                    tag.push(c);
                }
            }
            (false, c) => out.push(c),
        }
    }
    html_escape::decode_html_entities(&out).replace('\u{a0}', " ")
}
