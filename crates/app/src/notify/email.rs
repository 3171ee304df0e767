//! Notices by mail: a short message to the person's own address through the
//! outbox's transport. It carries no case-thread headers and says it is
//! machine mail (`Auto-Submitted`), so it can never join a customer thread
//! or be read as the customer's if it reaches the watched mailbox.

use std::time::SystemTime;

use anyhow::{Context, Result};
use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};

use super::Delivery;
use super::webhook::Text;
use crate::config::{Config, TransportKind};
use crate::outbox::smtp::{self, SmtpFailure};

/// `Auto-Submitted: auto-generated` (RFC 3834).
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// The message for `to`; `name` makes its Message-ID unique.
pub fn message(config: &Config, to: &str, name: &str, text: &Text) -> Result<Message> {
    let from: Mailbox = Mailbox::new(
        Some("casebot".into()),
        config
            .outbox
            .from
            .parse()
            .context("outbox.from is not an address")?,
    );
    let to: Mailbox = to
        .parse()
        .with_context(|| format!("{to:?} is not a mail address"))?;
    let mut body = String::new();
    for line in &text.lines {
        body.push_str(line);
        body.push('\n');
    }
    Message::builder()
        .from(from)
        .to(to)
        .subject(text.heading.clone())
        .message_id(Some(format!("<{name}@{}>", config.outbox.domain())))
        .date(SystemTime::now())
        .header(AutoSubmitted)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .context("cannot build the notice")
}

/// Sends `text` to `to` the way the outbox sends replies; `name` is unique
/// to this message (its Message-ID, its file with the file transport).
pub async fn send(
    config: &Config,
    sign_ins: &crate::oauth::SignIns,
    to: &str,
    name: &str,
    text: &Text,
) -> Delivery {
    let message = match message(config, to, name, text) {
        Ok(m) => m,
        Err(e) => return Delivery::Failed(format!("{e:#}")),
    };
    let bytes = message.formatted();
    let outbox = &config.outbox;
    match outbox.transport {
        TransportKind::File => {
            let dir = config.resolve(&outbox.dir).join("notices");
            let path = dir.join(format!("{name}.eml"));
            let written = tokio::task::spawn_blocking(move || -> Result<()> {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("Cannot create {}", dir.display()))?;
                let tmp = tempfile::NamedTempFile::new_in(&dir)?;
                std::fs::write(tmp.path(), &bytes)?;
                tmp.persist(&path)
                    .with_context(|| format!("Cannot write {}", path.display()))?;
                Ok(())
            })
            .await;
            match written {
                Ok(Ok(())) => Delivery::Sent,
                Ok(Err(e)) => Delivery::Retry {
                    error: format!("{e:#}"),
                    after: None,
                },
                Err(e) => Delivery::Retry {
                    error: e.to_string(),
                    after: None,
                },
            }
        }
        TransportKind::Smtp => {
            let login = match smtp::SmtpLogin::from_config(config, sign_ins) {
                Ok(login) => login,
                Err(e) => return Delivery::Failed(e),
            };
            let delivered = smtp::deliver(
                &outbox.smtp,
                &login,
                &outbox.hello(),
                message.envelope(),
                &bytes,
                async { Ok(()) },
            )
            .await;
            match delivered {
                Ok(_) => Delivery::Sent,
                Err(SmtpFailure::NotDelivered {
                    transient: true,
                    message,
                }) => Delivery::Retry {
                    error: message,
                    after: None,
                },
                Err(SmtpFailure::NotDelivered { message, .. }) => Delivery::Failed(message),
                // The relay may have it: sending again could tell twice.
                Err(e @ SmtpFailure::Uncertain(_)) => Delivery::Failed(e.to_string()),
            }
        }
    }
}
