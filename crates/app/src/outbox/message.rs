//! The reply as a MIME message: exactly the approved text, in the thread.

use std::time::SystemTime;

use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;

use crate::config::OutboxConfig;
use casebot_store::drafts::DraftRow;

/// Why an approved draft cannot become a message: never worth a retry.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("draft {0} has no Message-ID (it was never approved)")]
    NoMessageId(i64),
    #[error("draft {0} has no recipient")]
    NoRecipient(i64),
    #[error("{field} address {address:?} is not valid: {reason}")]
    Address {
        field: &'static str,
        address: String,
        reason: String,
    },
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// Builds the message of an approved draft, dated `date`. Auto-Submitted is
/// left off on purpose: a person approved this reply.
pub fn build(d: &DraftRow, from: &OutboxConfig, date: SystemTime) -> Result<Message, BuildError> {
    let message_id = d
        .message_id
        .as_deref()
        .ok_or(BuildError::NoMessageId(d.id))?;
    let parse = |field: &'static str, address: &str| -> Result<Mailbox, BuildError> {
        address.parse::<Mailbox>().map_err(|e| BuildError::Address {
            field,
            address: address.to_string(),
            reason: e.to_string(),
        })
    };
    let sender = Mailbox::new(
        Some(from.from_name.clone()).filter(|n| !n.is_empty()),
        from.from
            .parse()
            .map_err(|e: lettre::address::AddressError| BuildError::Address {
                field: "From",
                address: from.from.clone(),
                reason: e.to_string(),
            })?,
    );
    let to = d.to();
    if to.is_empty() {
        return Err(BuildError::NoRecipient(d.id));
    }
    let mut builder = Message::builder()
        .from(sender)
        .subject(d.subject.clone())
        .message_id(Some(format!("<{message_id}>")))
        .date(date);
    for a in &to {
        builder = builder.to(parse("To", a)?);
    }
    for a in d.cc() {
        builder = builder.cc(parse("Cc", &a)?);
    }
    if let Some(parent) = &d.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    let references = d.references();
    if !references.is_empty() {
        let joined: Vec<String> = references.iter().map(|r| format!("<{r}>")).collect();
        builder = builder.references(joined.join(" "));
    }
    builder
        .header(ContentType::TEXT_PLAIN)
        .body(d.body.clone())
        .map_err(|e| BuildError::Build(e.to_string()))
}
