//! The IMAP watcher: one task per watched folder, in IDLE when the server
//! offers it, resumable by UIDVALIDITY and UID.
//!
//! Each folder's checkpoint (UIDVALIDITY, highest UID handled) lives in the
//! store and moves only after a batch is handled (filed, recognised as a
//! duplicate, or quarantined), so a crash re-reads at most one batch, which
//! the store recognises. A changed UIDVALIDITY re-reads the folder from the
//! start; the store's duplicate detection (Message-ID and content hash)
//! keeps every mail once. Messages are fetched with `BODY.PEEK[]`: watching
//! never changes a flag. Any network or server error drops the connection;
//! the watcher reconnects with exponential backoff and jitter, and logs a
//! state change once, not every attempt.

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_imap::Session;
use async_imap::extensions::idle::IdleResponse;
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::RawMail;
use super::{Filer, Report};
use crate::config::{AuthKind, Config, MailboxConfig, SmtpSecurity};
use crate::telemetry::Stage;
use casebot_core::domain::Source;
use casebot_core::mail::filing::Status;
use casebot_store::Store;
use casebot_store::imap::Checkpoint;

/// Any byte stream an IMAP session runs over (TCP, or TLS over TCP).
pub trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapStream for T {}

pub type ImapSession = Session<Box<dyn ImapStream>>;

/// The server refused the login (a tagged NO): the mailbox needs someone
/// to fix its credentials; the watcher keeps trying with its backoff.
#[derive(Debug, thiserror::Error)]
#[error("the server refused the login: {0}")]
pub struct LoginRefused(String);

/// Connect, greeting, STARTTLS and login each get this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Any other command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// TCP keepalive: first probe after this much silence, then every
/// interval, the connection dropped after this many unanswered probes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

/// How to reach and log in to one IMAP account.
#[derive(Clone)]
pub struct Account {
    pub name: String,
    host: String,
    port: u16,
    security: SmtpSecurity,
    user: String,
    login: Login,
    tls: Option<TlsConnector>,
}

/// How an account proves who it is.
#[derive(Clone)]
enum Login {
    Password(String),
    /// An access token of the mailbox's OAuth2 sign-in, by SASL XOAUTH2 or
    /// OAUTHBEARER, whichever the server offers.
    OAuth2(Arc<crate::oauth::TokenSource>),
}

/// One SASL exchange with a ready initial response: the response first,
/// then nothing (the answer XOAUTH2 expects after an error challenge).
struct Sasl(Option<String>);

impl async_imap::Authenticator for Sasl {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.0.take().unwrap_or_default()
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The account of an `imap` mailbox; the login comes from the
    /// environment variables it names.
    pub fn from_config(
        config: &Config,
        mailbox: &MailboxConfig,
        sign_ins: &crate::oauth::SignIns,
    ) -> Result<Account> {
        let env = |var: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .with_context(|| {
                    format!(
                        "mailbox {:?}: the environment variable {var} (its IMAP login) is not set",
                        mailbox.name
                    )
                })
        };
        let tls = match mailbox.security {
            SmtpSecurity::Plain => None,
            _ => Some(tls_connector(
                mailbox
                    .ca_file
                    .as_deref()
                    .map(|p| config.resolve(p))
                    .as_deref(),
            )?),
        };
        Ok(Account {
            name: mailbox.name.clone(),
            host: mailbox.host.clone().unwrap_or_default(),
            port: mailbox.imap_port(),
            security: mailbox.security,
            user: env(&mailbox.username_env)?,
            login: match mailbox.auth {
                AuthKind::Password => Login::Password(env(&mailbox.password_env)?),
                AuthKind::OAuth2 => {
                    Login::OAuth2(sign_ins.get(&mailbox.name).with_context(|| {
                        format!("mailbox {:?}: no OAuth2 sign-in", mailbox.name)
                    })?)
                }
            },
            tls,
        })
    }

    /// An account on a server without TLS that logs in with an OAuth2
    /// access token from `source` (`casebot bench imap --auth oauth2`).
    pub fn plain_oauth2(
        name: &str,
        host: &str,
        port: u16,
        user: &str,
        source: Arc<crate::oauth::TokenSource>,
    ) -> Account {
        Account {
            login: Login::OAuth2(source),
            ..Account::plain(name, host, port, user, "")
        }
    }

    /// An account on a server without TLS (a throwaway server on loopback,
    /// as `casebot bench imap` starts).
    pub fn plain(name: &str, host: &str, port: u16, user: &str, password: &str) -> Account {
        Account {
            name: name.to_string(),
            host: host.to_string(),
            port,
            security: SmtpSecurity::Plain,
            user: user.to_string(),
            login: Login::Password(password.to_string()),
            tls: None,
        }
    }

    /// Connects and logs in.
    pub async fn login(&self) -> Result<ImapSession> {
        let server = format!("{}:{}", self.host, self.port);
        let tcp = within(
            CONNECT_TIMEOUT,
            "connect",
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await?
        .with_context(|| format!("Cannot connect to {server}"))?;
        let _ = tcp.set_nodelay(true);
        // A server or NAT that vanishes without a FIN would otherwise go
        // unnoticed in IDLE until the renewal (25 minutes): TCP keepalive
        // probes find it within about a minute and a half.
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_RETRIES);
        if let Err(e) = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive) {
            tracing::debug!(error = %e, "cannot set TCP keepalive");
        }
        let stream: Box<dyn ImapStream> = match (&self.security, &self.tls) {
            (SmtpSecurity::Tls, Some(tls)) => Box::new(self.handshake(tls, tcp).await?),
            (SmtpSecurity::Starttls, Some(tls)) => {
                let mut client = async_imap::Client::new(tcp);
                greeting(&mut client).await?;
                within(
                    CONNECT_TIMEOUT,
                    "STARTTLS",
                    client.run_command_and_check_ok("STARTTLS", None),
                )
                .await?
                .with_context(|| format!("{server} refused STARTTLS"))?;
                Box::new(self.handshake(tls, client.into_inner()).await?)
            }
            _ => Box::new(tcp),
        };
        let mut client = async_imap::Client::new(stream);
        if self.security != SmtpSecurity::Starttls {
            greeting(&mut client).await?;
        }
        let password = match &self.login {
            Login::Password(p) => p,
            Login::OAuth2(source) => return self.authenticate(client, source, &server).await,
        };
        within(CONNECT_TIMEOUT, "LOGIN", client.login(&self.user, password))
            .await?
            .map_err(|(e, _)| {
                crate::telemetry::metrics().imap_auth_failure(&self.name);
                // The server answered and said no: the credentials, not the
                // network. Anything else (a dropped connection) is not a refusal.
                match e {
                    async_imap::error::Error::No(answer) => {
                        anyhow::Error::new(LoginRefused(answer))
                    }
                    other => anyhow::Error::new(other),
                }
            })
            .with_context(|| format!("{server}: login as {} failed", self.user))
    }

    /// SASL XOAUTH2 (or OAUTHBEARER) with an access token; a token the
    /// server refuses is renewed once and tried again, and a refusal of
    /// the new one, or a sign-in the provider refuses, is `LoginRefused`.
    async fn authenticate(
        &self,
        mut client: async_imap::Client<Box<dyn ImapStream>>,
        source: &crate::oauth::TokenSource,
        server: &str,
    ) -> Result<ImapSession> {
        use crate::oauth::TokenError;
        let mechanisms =
            within(CONNECT_TIMEOUT, "CAPABILITY", auth_mechanisms(&mut client)).await??;
        let xoauth2 = mechanisms.iter().any(|m| m.eq_ignore_ascii_case("XOAUTH2"));
        let oauthbearer = mechanisms
            .iter()
            .any(|m| m.eq_ignore_ascii_case("OAUTHBEARER"));
        if !xoauth2 && !oauthbearer {
            bail!(
                "{server} offers neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER (it offers {mechanisms:?})"
            );
        }
        let refused = |e: TokenError| match e {
            TokenError::NeedsLogin(m) | TokenError::Refused(m) => {
                crate::telemetry::metrics().imap_auth_failure(&self.name);
                anyhow::Error::new(LoginRefused(m))
            }
            TokenError::Unavailable(m) => anyhow::anyhow!(m),
        };
        let mut token = source.access_token().await.map_err(refused)?;
        for attempt in 0..2 {
            let (mechanism, response) = if xoauth2 {
                ("XOAUTH2", crate::oauth::xoauth2(&self.user, &token))
            } else {
                (
                    "OAUTHBEARER",
                    crate::oauth::oauthbearer(&self.user, &self.host, self.port, &token),
                )
            };
            match within(
                CONNECT_TIMEOUT,
                "AUTHENTICATE",
                client.authenticate(mechanism, Sasl(Some(response))),
            )
            .await?
            {
                Ok(session) => return Ok(session),
                Err((async_imap::error::Error::No(answer), back)) if attempt == 0 => {
                    tracing::info!(mailbox = %self.name, %answer, "the server refused the access token; renewing it");
                    client = back;
                    token = source.renew().await.map_err(refused)?;
                }
                Err((async_imap::error::Error::No(answer), _)) => {
                    crate::telemetry::metrics().imap_auth_failure(&self.name);
                    return Err(anyhow::Error::new(LoginRefused(format!(
                        "{answer} (a fresh access token was refused too: is the app granted access to this mailbox?)"
                    ))))
                    .with_context(|| format!("{server}: {mechanism} as {} failed", self.user));
                }
                Err((e, _)) => {
                    return Err(e)
                        .with_context(|| format!("{server}: {mechanism} as {} failed", self.user));
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn handshake(
        &self,
        tls: &TlsConnector,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = ServerName::try_from(self.host.clone())
            .with_context(|| format!("{:?} is not a valid TLS server name", self.host))?;
        within(CONNECT_TIMEOUT, "TLS handshake", tls.connect(name, tcp))
            .await?
            .with_context(|| format!("TLS with {}:{} failed", self.host, self.port))
    }
}

/// The SASL mechanisms a server offers before login (`AUTH=…` of CAPABILITY).
async fn auth_mechanisms(client: &mut async_imap::Client<impl ImapStream>) -> Result<Vec<String>> {
    use async_imap::imap_proto::{Capability, RequestId, Response};
    use tokio::io::AsyncWriteExt as _;
    // async-imap runs tagged commands only after login; before it, the
    // command is written to the stream with a tag of our own.
    let tag = RequestId("CBCAP".into());
    let stream = client.get_mut();
    stream.write_all(b"CBCAP CAPABILITY\r\n").await?;
    stream.flush().await?;
    let mut found = Vec::new();
    loop {
        let Some(answer) = client.read_response().await? else {
            bail!("the connection closed during CAPABILITY");
        };
        match answer.parsed() {
            Response::Capabilities(caps) => found.extend(caps.iter().filter_map(|c| match c {
                Capability::Auth(m) => Some(m.to_string()),
                _ => None,
            })),
            Response::Done { tag: done, .. } if *done == tag => return Ok(found),
            _ => {}
        }
    }
}

async fn greeting(client: &mut async_imap::Client<impl ImapStream>) -> Result<()> {
    within(CONNECT_TIMEOUT, "greeting", client.read_response())
        .await?
        .context("No greeting from the IMAP server")?
        .context("The IMAP server closed the connection before its greeting")?;
    Ok(())
}

/// rustls with the web's roots, plus a PEM file of extra CAs (a company CA).
fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("Cannot read the CA file {}", path.display()))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.with_context(|| format!("Bad certificate in {}", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("Unusable certificate in {}", path.display()))?;
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS setup")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| anyhow::anyhow!("{what}: no answer within {} s", limit.as_secs()))
}

/// Watches one folder of one account.
pub struct FolderWatcher {
    account: Account,
    folder: String,
    store: Store,
    filer: Arc<dyn Filer>,
    filed: Arc<Notify>,
    idle: bool,
    idle_renew: Duration,
    poll: Duration,
    batch: usize,
    reconnect_max: Duration,
    handled_keyword: Option<String>,
    quarantine_folder: Option<String>,
    /// Mails larger than this (by RFC822.SIZE, asked first) are not
    /// downloaded: their first 64 KiB are quarantined (`ingest.max_message_bytes`).
    max_message_bytes: u64,
    /// The last state written to the store, so it is written on change only.
    state: std::sync::Mutex<String>,
}

impl FolderWatcher {
    pub fn new(
        account: Account,
        mailbox: &MailboxConfig,
        folder: &str,
        store: Store,
        filer: Arc<dyn Filer>,
        filed: Arc<Notify>,
    ) -> FolderWatcher {
        FolderWatcher {
            account,
            folder: folder.to_string(),
            store,
            filer,
            filed,
            idle: mailbox.idle,
            idle_renew: Duration::from_secs(mailbox.idle_renew_secs.clamp(10, 29 * 60)),
            poll: Duration::from_secs(mailbox.poll_interval_secs.max(1)),
            batch: mailbox.fetch_batch.max(1),
            reconnect_max: Duration::from_secs(mailbox.reconnect_max_secs.max(1)),
            handled_keyword: mailbox.handled_keyword.clone().filter(|k| !k.is_empty()),
            quarantine_folder: mailbox.quarantine_folder.clone().filter(|f| !f.is_empty()),
            max_message_bytes: casebot_core::mail::parse::IngestConfig::default().max_message_bytes,
            state: std::sync::Mutex::new(String::new()),
        }
    }

    /// Sets the size over which a mail is not downloaded whole.
    pub fn with_max_message_bytes(mut self, limit: u64) -> FolderWatcher {
        self.max_message_bytes = limit;
        self
    }

    /// The name of the lease that makes one instance the folder's watcher.
    pub fn lease_name(&self) -> String {
        format!("imap {}/{}", self.account.name, self.folder)
    }

    /// Runs until `stop` turns true: connects, catches up, waits, and
    /// reconnects after any error.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Result<()> {
        let mut failures = 0u32;
        let mut last_error = String::new();
        let mut refused = false;
        while !*stop.borrow() {
            // A mailbox whose login was refused stays `needs_login` while it
            // tries again, so the state (and its start) tells one episode.
            if !refused {
                self.set_state("connecting", None).await;
            }
            match self.session(&mut stop, &mut failures).await {
                Ok(()) => break,
                Err(e) => {
                    let message = format!("{e:#}");
                    if message != last_error {
                        tracing::warn!(mailbox = %self.account.name, folder = %self.folder, error = %message, "IMAP connection lost; reconnecting");
                        last_error = message.clone();
                    }
                    refused = e.downcast_ref::<LoginRefused>().is_some();
                    let state = if refused {
                        "needs_login"
                    } else {
                        "reconnecting"
                    };
                    self.set_state(state, Some(&message)).await;
                    crate::telemetry::metrics().imap_reconnect(&self.account.name);
                    failures = failures.saturating_add(1);
                    let wait = reconnect_delay(failures, self.reconnect_max, jitter_seed());
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => break,
                    }
                }
            }
        }
        self.set_state("stopped", None).await;
        Ok(())
    }

    /// One connection's life. `Ok` only when asked to stop.
    async fn session(&self, stop: &mut watch::Receiver<bool>, failures: &mut u32) -> Result<()> {
        let mut session = self.account.login().await?;
        let can_idle = self.idle
            && within(COMMAND_TIMEOUT, "CAPABILITY", session.capabilities())
                .await??
                .has_str("IDLE");
        if *failures > 0 {
            tracing::info!(mailbox = %self.account.name, folder = %self.folder, "IMAP connection back");
        } else {
            tracing::info!(mailbox = %self.account.name, folder = %self.folder, idle = can_idle, "watching IMAP folder");
        }
        *failures = 0;
        // When IDLE last said new mail is there, until it is filed.
        let mut woke_at: Option<std::time::Instant> = None;
        loop {
            let selected = within(COMMAND_TIMEOUT, "SELECT", session.select(&self.folder))
                .await?
                .with_context(|| format!("Cannot select {:?}", self.folder))?;
            let uidvalidity = selected
                .uid_validity
                .context("the server sent no UIDVALIDITY")?;
            self.catch_up(&mut session, uidvalidity, stop, woke_at.take())
                .await?;
            // Unsolicited responses (EXISTS, EXPUNGE) are not needed: every
            // wake-up re-reads the folder by UID.
            while session.unsolicited_responses.try_recv().is_ok() {}
            if *stop.borrow() {
                let _ = within(CONNECT_TIMEOUT, "LOGOUT", session.logout()).await;
                return Ok(());
            }
            if can_idle {
                self.set_state("idle", None).await;
                let mut idle = session.idle();
                within(COMMAND_TIMEOUT, "IDLE", idle.init()).await??;
                let (wait, interrupt) = idle.wait_with_timeout(self.idle_renew);
                let woke = tokio::select! {
                    r = wait => Some(r?),
                    _ = stop.changed() => None,
                };
                drop(interrupt);
                if matches!(woke, Some(IdleResponse::NewData(_))) {
                    woke_at = Some(std::time::Instant::now());
                }
                if woke == Some(IdleResponse::ManualInterrupt) {
                    // Nobody interrupted: the server closed the stream.
                    bail!("the server closed the connection during IDLE");
                }
                session = within(COMMAND_TIMEOUT, "DONE", idle.done()).await??;
            } else {
                self.set_state("polling", None).await;
                tokio::select! {
                    _ = tokio::time::sleep(self.poll) => {}
                    _ = stop.changed() => {}
                }
                within(COMMAND_TIMEOUT, "NOOP", session.noop()).await??;
            }
        }
    }

    /// Files every message above the checkpoint, a batch at a time; the
    /// batch in hand is finished even when asked to stop.
    async fn catch_up(
        &self,
        session: &mut ImapSession,
        uidvalidity: u32,
        stop: &watch::Receiver<bool>,
        woke_at: Option<std::time::Instant>,
    ) -> Result<()> {
        let store = &self.store;
        let name = &self.account.name;
        let checkpoint = store.imap_checkpoint(name, &self.folder).await?;
        let from = match checkpoint {
            Some(c) if c.uidvalidity == uidvalidity => c.last_uid.saturating_add(1),
            Some(c) if c.uidvalidity != 0 => {
                tracing::warn!(mailbox = %name, folder = %self.folder, old = c.uidvalidity, new = uidvalidity,
                    "UIDVALIDITY changed: reading the folder again (mail already stored is recognised)");
                1
            }
            _ => 1,
        };
        let mut uids: Vec<u32> = within(
            COMMAND_TIMEOUT,
            "UID SEARCH",
            session.uid_search(format!("UID {from}:*")),
        )
        .await??
        .into_iter()
        // `n:*` always names the newest message, even below n.
        .filter(|u| *u >= from)
        .collect();
        uids.sort_unstable();
        if uids.is_empty() {
            if checkpoint.is_none_or(|c| c.uidvalidity != uidvalidity) {
                self.save_checkpoint(uidvalidity, from - 1).await?;
            }
            return Ok(());
        }
        self.set_state("catching_up", None).await;
        for chunk in uids.chunks(self.batch) {
            let set = uid_set(chunk);
            let fetch_started = std::time::Instant::now();
            // Sizes first: a mail over the limit is never downloaded whole.
            let sizes = fetch_sizes(session, &set).await?;
            let oversize: Vec<(u32, u64)> = sizes
                .iter()
                .copied()
                .filter(|(_, size)| *size > self.max_message_bytes)
                .collect();
            let wanted: Vec<u32> = chunk
                .iter()
                .copied()
                .filter(|u| !oversize.iter().any(|(o, _)| o == u))
                .collect();
            let mut fetched = if wanted.is_empty() {
                Vec::new()
            } else {
                fetch_bodies(session, &uid_set(&wanted), BODY).await?
            };
            // A UID the server answered without a body: asked once more on
            // its own, then quarantined with the reason, so the checkpoint
            // never moves past a mail that was neither filed nor kept.
            let missing: Vec<u32> = wanted
                .iter()
                .copied()
                .filter(|u| !fetched.iter().any(|(f, _)| f == u))
                .collect();
            for uid in missing {
                match fetch_bodies(session, &uid.to_string(), BODY).await?.pop() {
                    Some(mail) => fetched.push(mail),
                    None => self.quarantine_unreadable(uidvalidity, uid).await?,
                }
            }
            let mut heads = Vec::new();
            for (uid, size) in oversize {
                match fetch_bodies(session, &uid.to_string(), HEAD).await?.pop() {
                    Some((uid, head)) => heads.push((uid, head, size)),
                    None => self.quarantine_unreadable(uidvalidity, uid).await?,
                }
            }
            let arrival = chrono::Utc::now();
            let source = |uid: u32| Source::Imap {
                mailbox: name.clone(),
                folder: self.folder.clone(),
                uidvalidity,
                uid,
            };
            let mut fetched_uids: Vec<u32> = fetched.iter().map(|(uid, _)| *uid).collect();
            let mut raws: Vec<RawMail> = fetched
                .into_iter()
                .map(|(uid, bytes)| RawMail::new(bytes, source(uid), arrival))
                .collect();
            for (uid, head, size) in heads {
                tracing::warn!(mailbox = %name, folder = %self.folder, uid, size, limit = self.max_message_bytes,
                    "a mail over the size limit: only its head is kept, in the quarantine");
                fetched_uids.push(uid);
                let mut raw = RawMail::new(head, source(uid), arrival);
                raw.oversize = Some(size);
                raws.push(raw);
            }
            let count = raws.len();
            let file_started = std::time::Instant::now();
            let reports = self.filer.file(raws).await?;
            let file_ms = file_started.elapsed().as_millis() as u64;
            // Before the checkpoint moves: a failure here re-reads the batch,
            // which the store recognises, and marks it again.
            self.mark_on_server(session, &fetched_uids, &reports)
                .await?;
            let last_uid = chunk.last().copied().unwrap_or(from);
            self.save_checkpoint(uidvalidity, last_uid).await?;
            if count > 0 {
                tracing::info!(
                    mailbox = %name,
                    folder = %self.folder,
                    mails = count,
                    last_uid,
                    fetch_ms = (file_started - fetch_started).as_millis() as u64,
                    // Parsing and storing: the filing stage's share.
                    file_ms,
                    "filed IMAP mail"
                );
                self.filed.notify_one();
                if let Some(woke) = woke_at {
                    crate::telemetry::metrics().took(Stage::IdleToFiled, woke.elapsed());
                }
            }
            if *stop.borrow() {
                break;
            }
        }
        Ok(())
    }

    /// Keeps a record of a UID whose body the server would not give.
    async fn quarantine_unreadable(&self, uidvalidity: u32, uid: u32) -> Result<()> {
        let source = Source::Imap {
            mailbox: self.account.name.clone(),
            folder: self.folder.clone(),
            uidvalidity,
            uid,
        };
        let reason = "the IMAP server returned no body for UID FETCH (BODY.PEEK[]), twice; \
                      the mail may have been deleted meanwhile";
        tracing::warn!(mailbox = %self.account.name, folder = %self.folder, uid, "{reason}: quarantined");
        self.store.quarantine_unreadable(&source, reason).await?;
        Ok(())
    }

    /// What the configuration asks the server to show of a filed batch: a
    /// flag on each mail filed, a copy of each mail quarantined in the
    /// quarantine folder. Nothing is moved or deleted.
    async fn mark_on_server(
        &self,
        session: &mut ImapSession,
        uids: &[u32],
        reports: &[Report],
    ) -> Result<()> {
        let (mut filed, mut quarantined) = (Vec::new(), Vec::new());
        for (uid, report) in uids.iter().zip(reports) {
            match report.status {
                Status::Imported | Status::Duplicate => filed.push(*uid),
                Status::Quarantined | Status::Failed => quarantined.push(*uid),
            }
        }
        // FETCH answers in the server's order; a UID set wants them sorted.
        filed.sort_unstable();
        quarantined.sort_unstable();
        if let Some(flag) = &self.handled_keyword
            && !filed.is_empty()
        {
            within(COMMAND_TIMEOUT, "UID STORE", async {
                session
                    .uid_store(uid_set(&filed), format!("+FLAGS.SILENT ({flag})"))
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?
            .with_context(|| format!("Cannot set {flag} on filed mail"))?;
        }
        if let Some(folder) = &self.quarantine_folder
            && !quarantined.is_empty()
        {
            let set = uid_set(&quarantined);
            let copied =
                within(COMMAND_TIMEOUT, "UID COPY", session.uid_copy(&set, folder)).await?;
            if copied.is_err() {
                // Most likely the folder does not exist yet.
                let _ = within(COMMAND_TIMEOUT, "CREATE", session.create(folder)).await?;
                within(COMMAND_TIMEOUT, "UID COPY", session.uid_copy(&set, folder))
                    .await?
                    .with_context(|| format!("Cannot copy quarantined mail to {folder:?}"))?;
            }
            tracing::info!(mailbox = %self.account.name, folder = %self.folder, to = %folder, mails = quarantined.len(), "quarantined mail copied on the server");
        }
        Ok(())
    }

    async fn save_checkpoint(&self, uidvalidity: u32, last_uid: u32) -> Result<()> {
        self.store
            .set_imap_checkpoint(
                &self.account.name,
                &self.folder,
                Checkpoint {
                    uidvalidity,
                    last_uid,
                },
            )
            .await
    }

    async fn set_state(&self, state: &str, error: Option<&str>) {
        {
            let Ok(mut last) = self.state.lock() else {
                return;
            };
            if *last == state && error.is_none() {
                return;
            }
            *last = state.to_string();
        }
        if let Err(e) = self
            .store
            .set_imap_state(&self.account.name, &self.folder, state, error)
            .await
        {
            tracing::debug!(error = %format!("{e:#}"), "cannot record the IMAP state");
        }
    }
}

/// A UID set for a sorted list: runs collapse into `a:b`.
/// The whole mail, without setting `\\Seen`.
const BODY: &str = "(UID BODY.PEEK[])";
/// The first 64 KiB of a mail too large to download (`mailbox::OVERSIZE_HEAD`).
const HEAD: &str = "(UID BODY.PEEK[]<0.65536>)";

/// The sizes (RFC822.SIZE) of the UIDs in `set`.
async fn fetch_sizes(session: &mut ImapSession, set: &str) -> Result<Vec<(u32, u64)>> {
    within(COMMAND_TIMEOUT, "UID FETCH (RFC822.SIZE)", async {
        session
            .uid_fetch(set, "(UID RFC822.SIZE)")
            .await?
            .try_filter_map(|f| async move {
                Ok(match (f.uid, f.size) {
                    (Some(uid), Some(size)) => Some((uid, u64::from(size))),
                    _ => None,
                })
            })
            .try_collect()
            .await
    })
    .await?
    .map_err(Into::into)
}

/// The bodies (`what`: [`BODY`] or [`HEAD`]) of the UIDs in `set` that the
/// server returned with one.
async fn fetch_bodies(
    session: &mut ImapSession,
    set: &str,
    what: &str,
) -> Result<Vec<(u32, Vec<u8>)>> {
    within(COMMAND_TIMEOUT, "UID FETCH", async {
        session
            .uid_fetch(set, what)
            .await?
            .try_filter_map(|f| async move {
                Ok(match (f.uid, f.body()) {
                    (Some(uid), Some(body)) => Some((uid, body.to_vec())),
                    _ => None,
                })
            })
            .try_collect()
            .await
    })
    .await?
    .map_err(Into::into)
}

pub fn uid_set(sorted: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// Exponential backoff from 1 s, capped, with up to ±25 % jitter so many
/// watchers do not reconnect in step.
pub fn reconnect_delay(failures: u32, max: Duration, seed: u64) -> Duration {
    let base = Duration::from_secs(1u64 << failures.saturating_sub(1).min(16)).min(max);
    let spread = base.as_millis() as u64 / 4;
    let jitter = if spread == 0 {
        0
    } else {
        seed % (2 * spread + 1)
    };
    (base + Duration::from_millis(jitter)).saturating_sub(Duration::from_millis(spread))
}

fn jitter_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos) ^ u64::from(std::process::id()).rotate_left(17)
}

/// Stores a sent reply in the account's Sent folder, marked \Seen.
pub async fn append_sent(account: &Account, folder: &str, message: &[u8]) -> Result<()> {
    let mut session = account.login().await?;
    let flags = Some("(\\Seen)");
    let first = within(
        COMMAND_TIMEOUT,
        "APPEND",
        session.append(folder, flags, None, message),
    )
    .await?;
    if first.is_err() {
        // Most likely [TRYCREATE]: the folder does not exist yet.
        let _ = within(COMMAND_TIMEOUT, "CREATE", session.create(folder)).await?;
        within(
            COMMAND_TIMEOUT,
            "APPEND",
            session.append(folder, flags, None, message),
        )
        .await?
        .with_context(|| format!("Cannot append to {folder:?}"))?;
    }
    let _ = within(CONNECT_TIMEOUT, "LOGOUT", session.logout()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_collapse_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let max = Duration::from_secs(300);
        for seed in [0, 7, 1_000_003] {
            let first = reconnect_delay(1, max, seed);
            assert!(first >= Duration::from_millis(750) && first <= Duration::from_millis(1250));
            let later = reconnect_delay(20, max, seed);
            assert!(
                later >= Duration::from_secs(225) && later <= Duration::from_secs(375),
                "{later:?}"
            );
        }
        assert_ne!(reconnect_delay(5, max, 1), reconnect_delay(5, max, 2));
    }
}
