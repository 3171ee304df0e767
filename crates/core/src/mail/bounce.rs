//! What a bounce says: which mail came back, to whom it was not delivered,
//! and why. A delivery status notification (RFC 3464: multipart/report with
//! message/delivery-status and the returned message/rfc822 or
//! text/rfc822-headers) says it in fields; an older MTA's "failure notice"
//! says it in prose with the returned headers pasted below, so those are
//! looked for in its text as well.
//!
//! The returned mail's Message-ID and References let threading file the
//! bounce with the mail it returns, whichever of the two arrives first.

use std::sync::LazyLock;

use mail_parser::{Message, MessageParser, MimeHeaders};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::parse::{clean_id, id_list, transfer_decoded};

/// A bounce's account of the mail it returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounce {
    pub returned_message_id: Option<String>,
    #[serde(default)]
    pub returned_references: Vec<String>,
    pub returned_subject: Option<String>,
    /// The case number in the returned mail's subject.
    pub returned_case_id: Option<String>,
    /// The recipients the mail did not reach.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The enhanced status code (`5.1.1`).
    pub status: Option<String>,
    /// The remote server's words, or the status and action when it gave none.
    pub reason: Option<String>,
}

/// Longest reason kept: remote servers write paragraphs.
const MAX_REASON_CHARS: usize = 300;
/// Recipients listed per bounce.
const MAX_RECIPIENTS: usize = 20;

static STATUS_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([245]\.\d{1,3}\.\d{1,3})\b").expect("static regex"));
/// The first line of a returned header block pasted into a bounce's text.
static PASTED_HEADERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?mi)^(Return-Path|Received|From|Message-ID|Subject|Date|To):[ \t]")
        .expect("static regex")
});
static PROSE_REASON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(said:|user unknown|does not exist|mailbox (is )?(full|unavailable)|quota|rejected|denied|not found|无法|不存在|拒绝)")
        .expect("static regex")
});

/// Reads a bounce. `text` is the mail's decoded text body, for bounces
/// without report parts.
pub fn read_bounce(message: &Message<'_>, raw: &[u8], text: &str) -> Bounce {
    let mut bounce = Bounce::default();
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let kind = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase();
        let Some(body) = transfer_decoded(part, raw) else {
            continue;
        };
        match kind.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                read_status_fields(&String::from_utf8_lossy(&body), &mut bounce);
            }
            "message/rfc822"
            | "message/global"
            | "text/rfc822-headers"
            | "message/rfc822-headers"
                if bounce.returned_message_id.is_none() =>
            {
                read_returned_headers(&body, &mut bounce);
            }
            _ => {}
        }
    }
    if bounce.returned_message_id.is_none()
        && let Some(m) = PASTED_HEADERS.find(text)
    {
        read_returned_headers(&text.as_bytes()[m.start()..], &mut bounce);
    }
    if bounce.reason.is_none() {
        bounce.reason = prose_reason(text);
    }
    if bounce.status.is_none() {
        bounce.status = bounce
            .reason
            .as_deref()
            .and_then(|r| STATUS_CODE.captures(r))
            .map(|c| c[1].to_string());
    }
    bounce
}

/// The per-recipient fields of a delivery-status part.
fn read_status_fields(text: &str, bounce: &mut Bounce) {
    for (name, value) in unfolded_fields(text) {
        match name.to_ascii_lowercase().as_str() {
            "final-recipient" | "original-recipient" => {
                let address = value
                    .rsplit(';')
                    .next()
                    .unwrap_or(&value)
                    .trim()
                    .to_string();
                let address = address.trim_matches(['<', '>']).to_ascii_lowercase();
                if !address.is_empty()
                    && !bounce.recipients.contains(&address)
                    && bounce.recipients.len() < MAX_RECIPIENTS
                {
                    bounce.recipients.push(address);
                }
            }
            "status" if bounce.status.is_none() => {
                bounce.status = STATUS_CODE.captures(&value).map(|c| c[1].to_string());
            }
            "diagnostic-code" if bounce.reason.is_none() => {
                let words = value.split_once(';').map_or(value.as_str(), |(_, w)| w);
                bounce.reason = Some(short(words));
            }
            _ => {}
        }
    }
}

/// `Name: value` fields with their continuation lines joined.
fn unfolded_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':')
            && !name.trim().is_empty()
            && !name.contains(' ')
        {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

/// Message-ID, References and Subject of the returned mail's headers.
fn read_returned_headers(bytes: &[u8], bounce: &mut Bounce) {
    let Some(headers) = MessageParser::default().parse_headers(bytes) else {
        return;
    };
    bounce.returned_message_id = headers
        .message_id()
        .map(clean_id)
        .filter(|id| !id.is_empty());
    let mut refs = id_list(headers.references());
    for id in id_list(headers.in_reply_to()) {
        if !refs.contains(&id) {
            refs.push(id);
        }
    }
    bounce.returned_references = refs;
    bounce.returned_subject = headers.subject().map(|s| s.trim().to_string());
}

/// The first line of a prose bounce that says why.
fn prose_reason(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| PROSE_REASON.is_match(l))?;
    // A remote server's answer wraps over the following indented lines.
    let mut reason = lines[at].trim().to_string();
    for l in lines[at + 1..]
        .iter()
        .take_while(|l| l.starts_with([' ', '\t']))
    {
        reason.push(' ');
        reason.push_str(l.trim());
    }
    Some(short(&reason))
}

fn short(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() <= MAX_REASON_CHARS {
        return s;
    }
    let mut cut: String = s.chars().take(MAX_REASON_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str) -> Bounce {
        let message = MessageParser::default().parse(raw.as_bytes()).unwrap();
        let text: String = message
            .text_bodies()
            .map(|p| String::from_utf8_lossy(p.contents()).into_owned())
            .collect::<Vec<_>>()
            .join("\n");
        read_bounce(&message, raw.as_bytes(), &text)
    }

    const DSN: &str = "From: MAILER-DAEMON@mx.example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n\
        Message-ID: <dsn-1@mx.example.com>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
        --B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
        --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n\
        Final-Recipient: rfc822; li.lei@example.cn\r\nAction: failed\r\nStatus: 5.1.1\r\n\
        Diagnostic-Code: smtp; 550 5.1.1 <li.lei@example.cn>: Recipient address\r\n rejected: User unknown\r\n\r\n\
        --B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@example.com\r\n\
        Subject: Re: [案例号:CAS-10002-HS4X6D] %t% 跟进\r\nMessage-ID: <reply-7@example.com>\r\n\
        In-Reply-To: <cust-3@example.cn>\r\nReferences: <root-1@example.cn> <cust-3@example.cn>\r\n\r\n--B--\r\n";

    #[test]
    fn a_dsn_names_the_returned_mail_the_recipient_and_the_reason() {
        let b = read(DSN);
        assert_eq!(
            b.returned_message_id.as_deref(),
            Some("reply-7@example.com")
        );
        assert_eq!(
            b.returned_references,
            ["root-1@example.cn", "cust-3@example.cn"]
        );
        assert_eq!(
            b.returned_subject.as_deref(),
            Some("Re: [案例号:CAS-10002-HS4X6D] %t% 跟进")
        );
        assert_eq!(b.recipients, ["li.lei@example.cn"]);
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
        assert_eq!(
            b.reason.as_deref(),
            Some("550 5.1.1 <li.lei@example.cn>: Recipient address rejected: User unknown")
        );
    }

    #[test]
    fn a_prose_failure_notice_with_pasted_headers() {
        let raw = "From: MAILER-DAEMON@mx.example.cn\r\nSubject: failure notice\r\n\r\n\
            Hi. This is the qmail-send program at mx.example.cn.\r\n\
            <wang@example.cn>:\r\nRemote host said: 552 5.2.2 mailbox full\r\n  quota exceeded\r\n\r\n\
            --- Below this line is a copy of the message.\r\n\r\n\
            Received: from desk.example.com\r\nMessage-ID: <r-9@example.com>\r\nSubject: Re: logs\r\n\r\nbody\r\n";
        let b = read(raw);
        assert_eq!(b.returned_message_id.as_deref(), Some("r-9@example.com"));
        assert_eq!(b.returned_subject.as_deref(), Some("Re: logs"));
        assert_eq!(
            b.reason.as_deref(),
            Some("Remote host said: 552 5.2.2 mailbox full quota exceeded")
        );
        assert_eq!(b.status.as_deref(), Some("5.2.2"));
    }

    #[test]
    fn the_corpus_bounces_read_without_a_fault() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/mime");
        let Ok(entries) = std::fs::read_dir(dir) else {
            eprintln!("SKIPPED: no corpus at {dir}");
            return;
        };
        let mut read_any = false;
        for entry in entries.flatten() {
            let raw = std::fs::read(entry.path()).unwrap();
            if !String::from_utf8_lossy(&raw).contains("delivery-status") {
                continue;
            }
            if let Some(message) = MessageParser::default().parse(&raw) {
                let b = read_bounce(&message, &raw, "");
                read_any |= b.status.is_some() || !b.recipients.is_empty();
            }
        }
        assert!(read_any, "no delivery-status part in {dir} was read");
    }
}
