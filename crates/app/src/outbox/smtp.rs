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
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use crate::config::{AuthKind, Config, SmtpConfig, SmtpSecurity};

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

/// What an SMTP session logs in with.
#[derive(Clone)]
pub enum SmtpLogin {
    None,
    /// AUTH PLAIN or LOGIN.
    Password(Credentials),
    /// AUTH XOAUTH2 with the access token of a mailbox's OAuth2 sign-in.
    OAuth2 {
        user: String,
        source: std::sync::Arc<crate::oauth::TokenSource>,
    },
}

impl SmtpLogin {
    /// The login `[outbox.smtp]` asks for: its password from the
    /// environment, or the sign-in of the mailbox `oauth2_mailbox` names
    /// (as that mailbox's user).
    pub fn from_config(
        config: &Config,
        sign_ins: &crate::oauth::SignIns,
    ) -> Result<SmtpLogin, String> {
        let cfg = &config.outbox.smtp;
        match cfg.auth {
            AuthKind::Password => Ok(credentials(cfg).map_or(SmtpLogin::None, SmtpLogin::Password)),
            AuthKind::OAuth2 => {
                let mailbox = config
                    .mailboxes
                    .iter()
                    .find(|m| m.name == cfg.oauth2_mailbox)
                    .ok_or_else(|| {
                        format!(
                            "no mailbox {:?} (outbox.smtp.oauth2_mailbox)",
                            cfg.oauth2_mailbox
                        )
                    })?;
                let source = sign_ins
                    .get(&mailbox.name)
                    .ok_or_else(|| format!("mailbox {:?} has no OAuth2 sign-in", mailbox.name))?;
                let user = std::env::var(&mailbox.username_env)
                    .ok()
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| {
                        format!(
                            "the environment variable {} (the user of mailbox {:?}) is not set",
                            mailbox.username_env, mailbox.name
                        )
                    })?;
                Ok(SmtpLogin::OAuth2 { user, source })
            }
        }
    }
}

/// How failures of one SMTP transaction are worded and timed.
struct Transaction<'a> {
    cfg: &'a SmtpConfig,
    login: &'a SmtpLogin,
    server: String,
    timeout: Duration,
}

impl Transaction<'_> {
    fn not_delivered(&self, step: &str, e: &dyn std::fmt::Display, transient: bool) -> SmtpFailure {
        SmtpFailure::NotDelivered {
            transient,
            message: format!("smtp {}: {step}: {e}", self.server),
        }
    }

    /// One command, bounded by the timeout; a refusal says whether a retry may help.
    async fn step<T>(
        &self,
        what: &'static str,
        command: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
        transient_unless_permanent: bool,
    ) -> Result<T, SmtpFailure> {
        match tokio::time::timeout(self.timeout, command).await {
            Err(_) => Err(SmtpFailure::NotDelivered {
                transient: true,
                message: format!("smtp {}: {what}: timed out", self.server),
            }),
            Ok(Err(e)) => {
                let transient = transient_unless_permanent && !e.is_permanent();
                Err(self.not_delivered(what, &e, transient))
            }
            Ok(Ok(answer)) => Ok(answer),
        }
    }

    /// The server's name checked against the web's roots, plus the CAs of
    /// `ca_file` when one is set.
    fn tls(&self) -> Result<TlsParameters, SmtpFailure> {
        let mut builder = TlsParameters::builder(self.cfg.host.clone());
        if let Some(path) = &self.cfg.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                self.not_delivered(
                    &format!("reading the CA file {}", path.display()),
                    &e,
                    false,
                )
            })?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                self.not_delivered(&format!("the CA file {}", path.display()), &e, false)
            })?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| self.not_delivered("TLS setup", &e, false))
    }

    /// Connects, upgrades to TLS as configured, and logs in when a login is
    /// configured (never over a clear connection).
    async fn open(&self, hello: &str) -> Result<AsyncSmtpConnection, SmtpFailure> {
        let cfg = self.cfg;
        let client_id = ClientId::Domain(hello.to_string());
        let implicit = match cfg.security {
            SmtpSecurity::Tls => Some(self.tls()?),
            _ => None,
        };
        let connect = AsyncSmtpConnection::connect_tokio1(
            (cfg.host.as_str(), cfg.port),
            Some(self.timeout),
            &client_id,
            implicit,
            None,
        );
        let mut conn = self.step("connect", connect, true).await?;
        if cfg.security == SmtpSecurity::Starttls {
            if !conn.can_starttls() {
                conn.abort().await;
                return Err(self.not_delivered(
                    "STARTTLS",
                    &"the server does not offer it (security = \"starttls\")",
                    false,
                ));
            }
            let tls = self.tls()?;
            self.step("STARTTLS", conn.starttls(tls, &client_id), false)
                .await?;
        }
        if matches!(self.login, SmtpLogin::None) {
            return Ok(conn);
        }
        if !conn.is_encrypted() && !crate::config::is_loopback(&cfg.host) {
            conn.abort().await;
            return Err(self.not_delivered(
                "AUTH",
                &"refusing to send a password or token over an unencrypted connection",
                false,
            ));
        }
        match self.login {
            SmtpLogin::None => {}
            SmtpLogin::Password(creds) => {
                self.step(
                    "AUTH",
                    conn.auth(&[Mechanism::Plain, Mechanism::Login], creds),
                    true,
                )
                .await?;
            }
            SmtpLogin::OAuth2 { user, source } => {
                let token_failure = |e: crate::oauth::TokenError| match e {
                    crate::oauth::TokenError::Unavailable(m) => {
                        self.not_delivered("OAuth2 token", &m, true)
                    }
                    other => self.not_delivered("OAuth2 token", &other, false),
                };
                let token = source.access_token().await.map_err(token_failure)?;
                let first = self
                    .step(
                        "AUTH XOAUTH2",
                        conn.auth(
                            &[Mechanism::Xoauth2],
                            &Credentials::new(user.clone(), token),
                        ),
                        true,
                    )
                    .await;
                if first.is_err() {
                    // A token the relay refuses is renewed once, on a new session.
                    let token = source.renew().await.map_err(token_failure)?;
                    conn.abort().await;
                    let fresh = Transaction {
                        cfg: self.cfg,
                        login: &SmtpLogin::None,
                        server: self.server.clone(),
                        timeout: self.timeout,
                    };
                    let mut again = Box::pin(fresh.open(hello)).await?;
                    self.step(
                        "AUTH XOAUTH2",
                        again.auth(
                            &[Mechanism::Xoauth2],
                            &Credentials::new(user.clone(), token),
                        ),
                        true,
                    )
                    .await?;
                    return Ok(again);
                }
            }
        }
        Ok(conn)
    }
}

/// Connects, upgrades to TLS, says EHLO and logs in exactly as a send
/// does, then quits without sending anything: what `casebot doctor`
/// checks. Returns what was found.
pub async fn probe(
    cfg: &SmtpConfig,
    login: &SmtpLogin,
    hello: &str,
) -> Result<String, SmtpFailure> {
    let t = Transaction {
        cfg,
        login,
        server: format!("{}:{}", cfg.host, cfg.port),
        timeout: Duration::from_secs(cfg.timeout_secs.clamp(1, 30)),
    };
    let mut conn = t.open(hello).await?;
    let found = format!(
        "{}: connected{}, EHLO {hello}{}; nothing sent",
        t.server,
        if conn.is_encrypted() {
            " with TLS, certificate verified"
        } else {
            " without TLS"
        },
        match login {
            SmtpLogin::None => ", no login configured",
            SmtpLogin::Password(_) => ", logged in",
            SmtpLogin::OAuth2 { .. } => ", logged in with an OAuth2 token (XOAUTH2)",
        },
    );
    let _ = conn.quit().await;
    Ok(found)
}

/// Sends `bytes` to the envelope's recipients. Returns the server's answer
/// to the message data.
pub async fn deliver<F>(
    cfg: &SmtpConfig,
    login: &SmtpLogin,
    hello: &str,
    envelope: &Envelope,
    bytes: &[u8],
    data_phase: F,
) -> Result<String, SmtpFailure>
where
    F: Future<Output = anyhow::Result<()>>,
{
    let t = Transaction {
        cfg,
        login,
        server: format!("{}:{}", cfg.host, cfg.port),
        timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
    };
    let mut conn = t.open(hello).await?;
    let mut options = Vec::new();
    if !bytes.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            conn.abort().await;
            return Err(t.not_delivered("MAIL", &"8-bit message but no 8BITMIME", false));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let from = Mail::new(envelope.from().cloned(), options);
    t.step("MAIL FROM", conn.command(from), true).await?;
    for rcpt in envelope.to() {
        let to = Rcpt::new(rcpt.clone(), vec![]);
        t.step("RCPT TO", conn.command(to), true).await?;
    }
    t.step("DATA", conn.command(Data), true).await?;
    if let Err(e) = data_phase.await {
        conn.abort().await;
        return Err(t.not_delivered("before sending the message", &e, true));
    }
    let server = &t.server;
    let answer = match tokio::time::timeout(t.timeout * 4, conn.message(bytes)).await {
        Err(_) => {
            return Err(SmtpFailure::Uncertain(format!(
                "smtp {server}: no answer to the message data"
            )));
        }
        // The server answered: it refused the message, nothing was delivered.
        Ok(Err(e)) if e.is_permanent() || e.is_transient() => {
            return Err(t.not_delivered("message", &e, e.is_transient()));
        }
        Ok(Err(e)) => return Err(SmtpFailure::Uncertain(format!("smtp {server}: {e}"))),
        Ok(Ok(response)) => response,
    };
    let _ = tokio::time::timeout(t.timeout, conn.quit()).await;
    Ok(answer.message().collect::<Vec<_>>().join(" "))
}
