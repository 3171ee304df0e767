//! One SMTP transaction, step by step, so the caller knows how far it got.
//!
//! lettre's transport hides the moment the message data starts; here the
//! caller's `data_phase` runs right after the server said 354, before a byte
//! of the message goes out. A failure before that point certainly delivered
//! nothing; one after it (the connection dropped while the server was
//! receiving) may have, and is reported as uncertain.

use std::future::Future;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use crate::config::{SmtpConfig, SmtpSecurity};

/// How a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpFailure {
    /// Nothing was delivered; `transient` failures are worth a retry.
    NotDelivered { transient: bool, message: String },
    /// The connection broke while the server was receiving the message.
    Uncertain(String),
}

impl std::fmt::Display for SmtpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmtpFailure::NotDelivered { message, .. } => f.write_str(message),
            SmtpFailure::Uncertain(m) => write!(f, "delivery uncertain: {m}"),
        }
    }
}

/// The login, when the configured environment variables hold one.
pub fn credentials(cfg: &SmtpConfig) -> Option<Credentials> {
    let user = std::env::var(&cfg.username_env)
        .ok()
        .filter(|s| !s.is_empty())?;
    let password = std::env::var(&cfg.password_env).unwrap_or_default();
    Some(Credentials::new(user, password))
}

/// Sends `bytes` to the envelope's recipients. Returns the server's answer
/// to the message data.
pub async fn deliver<F>(
    cfg: &SmtpConfig,
    hello: &str,
    envelope: &Envelope,
    bytes: &[u8],
    data_phase: F,
) -> Result<String, SmtpFailure>
where
    F: Future<Output = anyhow::Result<()>>,
{
    let server = format!("{}:{}", cfg.host, cfg.port);
    let timeout = Duration::from_secs(cfg.timeout_secs.max(1));
    let not_delivered =
        |step: &str, e: &dyn std::fmt::Display, transient: bool| SmtpFailure::NotDelivered {
            transient,
            message: format!("smtp {server}: {step}: {e}"),
        };
    let step = |step: &'static str,
                r: Result<
        lettre::transport::smtp::response::Response,
        lettre::transport::smtp::Error,
    >| { r.map_err(|e| not_delivered(step, &e, !e.is_permanent())) };
    let within = |what: &'static str| {
        move |_| SmtpFailure::NotDelivered {
            transient: true,
            message: format!("smtp {}:{}: {what}: timed out", cfg.host, cfg.port),
        }
    };
    let tls = |host: &str| {
        TlsParameters::new(host.to_string()).map_err(|e| not_delivered("TLS setup", &e, false))
    };
    let client_id = ClientId::Domain(hello.to_string());
    let implicit = match cfg.security {
        SmtpSecurity::Tls => Some(tls(&cfg.host)?),
        _ => None,
    };
    let mut conn = tokio::time::timeout(
        timeout,
        AsyncSmtpConnection::connect_tokio1(
            (cfg.host.as_str(), cfg.port),
            Some(timeout),
            &client_id,
            implicit,
            None,
        ),
    )
    .await
    .map_err(within("connect"))?
    .map_err(|e| not_delivered("connect", &e, !e.is_permanent()))?;

    if cfg.security == SmtpSecurity::Starttls {
        if !conn.can_starttls() {
            conn.abort().await;
            return Err(not_delivered(
                "STARTTLS",
                &"the server does not offer it (security = \"starttls\")",
                false,
            ));
        }
        tokio::time::timeout(timeout, conn.starttls(tls(&cfg.host)?, &client_id))
            .await
            .map_err(within("STARTTLS"))?
            .map_err(|e| not_delivered("STARTTLS", &e, false))?;
    }
    if let Some(creds) = credentials(cfg) {
        if !conn.is_encrypted() {
            conn.abort().await;
            return Err(not_delivered(
                "AUTH",
                &"refusing to send the password over an unencrypted connection",
                false,
            ));
        }
        step(
            "AUTH",
            tokio::time::timeout(
                timeout,
                conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds),
            )
            .await
            .map_err(within("AUTH"))?,
        )?;
    }

    let mut options = Vec::new();
    if !bytes.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            conn.abort().await;
            return Err(not_delivered(
                "MAIL",
                &"8-bit message but no 8BITMIME",
                false,
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    step(
        "MAIL FROM",
        tokio::time::timeout(
            timeout,
            conn.command(Mail::new(envelope.from().cloned(), options)),
        )
        .await
        .map_err(within("MAIL FROM"))?,
    )?;
    for rcpt in envelope.to() {
        step(
            "RCPT TO",
            tokio::time::timeout(timeout, conn.command(Rcpt::new(rcpt.clone(), vec![])))
                .await
                .map_err(within("RCPT TO"))?,
        )?;
    }
    step(
        "DATA",
        tokio::time::timeout(timeout, conn.command(Data))
            .await
            .map_err(within("DATA"))?,
    )?;
    if let Err(e) = data_phase.await {
        conn.abort().await;
        return Err(not_delivered("before sending the message", &e, true));
    }
    let answer = match tokio::time::timeout(timeout * 4, conn.message(bytes)).await {
        Err(_) => {
            return Err(SmtpFailure::Uncertain(format!(
                "smtp {server}: no answer to the message data"
            )));
        }
        // The server answered: it refused the message, nothing was delivered.
        Ok(Err(e)) if e.is_permanent() || e.is_transient() => {
            return Err(not_delivered("message", &e, e.is_transient()));
        }
        Ok(Err(e)) => return Err(SmtpFailure::Uncertain(format!("smtp {server}: {e}"))),
        Ok(Ok(response)) => response,
    };
    let _ = tokio::time::timeout(timeout, conn.quit()).await;
    Ok(answer.message().collect::<Vec<_>>().join(" "))
}
