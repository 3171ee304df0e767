//! `casebot doctor`: one command that says whether everything casebot
//! needs is in place, each check with a line and a verdict: the config,
//! the store, the rules and templates, every mailbox (connect, TLS, login,
//! each folder, IDLE, UIDVALIDITY against the checkpoint), SMTP (connect,
//! TLS, EHLO, AUTH; nothing is sent), the upload portal's secret, the link
//! download allow-list and the web desk's address. Exit status 0 only when
//! every check passes.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use super::{Failure, output};
use crate::config::{Config, MailboxKind, TransportKind};
use crate::mailbox::imap::Account;
use casebot_store::Store;

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked: `store`, `mailbox work/INBOX`, `smtp` …
    pub check: String,
    pub ok: bool,
    /// What was found, or what is wrong and where.
    pub detail: String,
}

impl Check {
    fn pass(check: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            ok: true,
            detail: detail.into(),
        }
    }

    fn fail(check: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            ok: false,
            detail: detail.into(),
        }
    }

    fn of(check: impl Into<String>, result: anyhow::Result<String>) -> Check {
        match result {
            Ok(detail) => Check::pass(check, detail),
            Err(e) => Check::fail(check, format!("{e:#}")),
        }
    }
}

/// A check that talks to a server is given this long.
const SERVER_TIMEOUT: Duration = Duration::from_secs(20);

pub async fn doctor(config: &Arc<Config>, json: bool) -> Result<u8, Failure> {
    let mut checks = vec![Check::pass(
        "config",
        format!(
            "loaded and valid (relative paths from {})",
            config.base_dir.display()
        ),
    )];
    let store = store_check(config, &mut checks).await;
    rules_and_templates(config, &mut checks);
    for mailbox in &config.mailboxes {
        match mailbox.kind {
            MailboxKind::Maildir => checks.push(maildir_check(config, mailbox)),
            MailboxKind::Imap => imap_checks(config, mailbox, store.as_ref(), &mut checks).await,
        }
    }
    checks.push(smtp_check(config, store.as_ref()).await);
    checks.push(portal_check(config));
    checks.push(download_check(config));
    checks.push(web_check(config, store.as_ref()).await);
    let failed = checks.iter().filter(|c| !c.ok).count();
    if json {
        output::json(&serde_json::json!({"ok": failed == 0, "checks": checks}))?;
    } else {
        for c in &checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            println!("{mark} {:<28} {}", c.check, c.detail);
        }
        if failed == 0 {
            println!("everything checked passes");
        } else {
            println!("{failed} check(s) failed");
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Opens the store (running its migrations, as `serve` would) and proves
/// it writable with a transaction that changes nothing.
async fn store_check(config: &Config, checks: &mut Vec<Check>) -> Option<Store> {
    let url = redacted(&config.store.url);
    let store = match Store::open(&config.store.url).await {
        Ok(store) => store,
        Err(e) => {
            checks.push(Check::fail("store", format!("{url}: {e:#}")));
            return None;
        }
    };
    let writable = async {
        let mut tx = store.begin_write().await?;
        sqlx::query("UPDATE cursors SET position = position WHERE name = 'search_backfill'")
            .execute(&mut *tx)
            .await?;
        tx.rollback().await?;
        anyhow::Ok(())
    };
    checks.push(match writable.await {
        Ok(()) => Check::pass(
            "store",
            format!("{url}: open, migrations current, writable"),
        ),
        Err(e) => Check::fail("store", format!("{url}: open but not writable: {e:#}")),
    });
    Some(store)
}

/// A store URL without its password.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn rules_and_templates(config: &Config, checks: &mut Vec<Check>) {
    let (dir, loaded) =
        casebot_analysis::rules::RuleSet::configured(&config.analysis, &config.base_dir);
    let rules = match loaded {
        Ok(set) => {
            checks.push(Check::pass(
                "rules",
                format!("{}: {} rules", dir.display(), set.rules.len()),
            ));
            set
        }
        Err(e) => {
            checks.push(Check::fail("rules", format!("{}: {e:#}", dir.display())));
            return;
        }
    };
    let templates =
        casebot_drafting::templates::Templates::configured(&config.drafting, &config.base_dir);
    checks.push(match templates {
        Ok(t) => {
            let problems = t.check(&rules, &config.drafting);
            match problems.first() {
                None => Check::pass(
                    "templates",
                    format!("{}: every sample renders", t.origin.display()),
                ),
                Some(first) => Check::fail(
                    "templates",
                    format!(
                        "{}: {} problem(s), first: {first}",
                        t.origin.display(),
                        problems.len()
                    ),
                ),
            }
        }
        Err(e) => Check::fail(
            "templates",
            format!(
                "{}: {}",
                e.origin,
                e.problems
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
        ),
    });
}

fn maildir_check(config: &Config, mailbox: &crate::config::MailboxConfig) -> Check {
    let name = format!("mailbox {}", mailbox.name);
    let Some(path) = mailbox.path.as_deref().map(|p| config.resolve(p)) else {
        return Check::fail(name, "a maildir mailbox needs a path");
    };
    // `serve` makes the folders of a new Maildir; one that exists must be usable.
    if !path.exists() {
        return Check::pass(
            name,
            format!("{}: made by casebot serve at start", path.display()),
        );
    }
    let missing: Vec<&str> = ["new", "cur", "tmp"]
        .into_iter()
        .filter(|sub| !path.join(sub).is_dir())
        .collect();
    if !missing.is_empty() {
        return Check::fail(
            name,
            format!(
                "{}: not a Maildir (no {})",
                path.display(),
                missing.join(", ")
            ),
        );
    }
    let probe = path
        .join("tmp")
        .join(format!(".casebot-doctor-{}", std::process::id()));
    match std::fs::write(&probe, b"").and_then(|()| std::fs::remove_file(&probe)) {
        Ok(()) => Check::pass(name, format!("{}: a writable Maildir", path.display())),
        Err(e) => Check::fail(
            name,
            format!("{}: cannot write in tmp/: {e}", path.display()),
        ),
    }
}

/// Connect, TLS and login; then each folder: SELECT, its UIDVALIDITY
/// against the checkpoint; IDLE offered.
async fn imap_checks(
    config: &Config,
    mailbox: &crate::config::MailboxConfig,
    store: Option<&Store>,
    checks: &mut Vec<Check>,
) {
    let name = format!("mailbox {}", mailbox.name);
    let server = format!(
        "{}:{}",
        mailbox.host.as_deref().unwrap_or(""),
        mailbox.imap_port()
    );
    let sign_ins = match store {
        Some(store) => crate::oauth::SignIns::new(config, store).unwrap_or_default(),
        None => crate::oauth::SignIns::default(),
    };
    let account = match Account::from_config(config, mailbox, &sign_ins) {
        Ok(account) => account,
        Err(e) => {
            checks.push(Check::fail(name, format!("{e:#}")));
            return;
        }
    };
    let session = tokio::time::timeout(SERVER_TIMEOUT, account.login()).await;
    let mut session = match session {
        Err(_) => {
            checks.push(Check::fail(
                name,
                format!("{server}: no answer within {} s", SERVER_TIMEOUT.as_secs()),
            ));
            return;
        }
        Ok(Err(e)) => {
            checks.push(Check::fail(name, format!("{e:#}")));
            return;
        }
        Ok(Ok(session)) => session,
    };
    let security = match mailbox.security {
        crate::config::SmtpSecurity::Tls => "TLS, certificate verified",
        crate::config::SmtpSecurity::Starttls => "STARTTLS, certificate verified",
        crate::config::SmtpSecurity::Plain => "no TLS (loopback)",
    };
    let idle = match session.capabilities().await {
        Ok(caps) if caps.has_str("IDLE") => "IDLE offered".to_string(),
        Ok(_) if mailbox.idle => "no IDLE: the watcher polls".to_string(),
        Ok(_) => "IDLE not used".to_string(),
        Err(e) => format!("CAPABILITY failed: {e}"),
    };
    checks.push(Check::pass(
        name.clone(),
        format!("{server}: connected ({security}), logged in, {idle}"),
    ));
    let mut selected_folder = None;
    for folder in &mailbox.folders {
        let check = format!("{name}/{folder}");
        let selected = session
            .select(folder)
            .await
            .with_context(|| format!("SELECT {folder}"));
        if selected.is_ok() && selected_folder.is_none() {
            selected_folder = Some(folder);
        }
        let result = match selected {
            Err(e) => Err(e),
            Ok(m) => {
                let validity = m.uid_validity.unwrap_or(0);
                let stored = match store {
                    Some(store) => store
                        .imap_checkpoint(&mailbox.name, folder)
                        .await
                        .ok()
                        .flatten(),
                    None => None,
                };
                match stored {
                    None => Ok(format!(
                        "{} mails, UIDVALIDITY {validity}; no checkpoint yet: the first run catches up",
                        m.exists
                    )),
                    Some(c) if c.uidvalidity == validity => Ok(format!(
                        "{} mails, UIDVALIDITY {validity} as checkpointed, last UID handled {}",
                        m.exists, c.last_uid
                    )),
                    Some(c) => Err(anyhow::anyhow!(
                        "UIDVALIDITY is {validity} but the checkpoint has {}: the folder was \
                         recreated; casebot serve reads it again from the start (duplicates are \
                         recognised)",
                        c.uidvalidity
                    )),
                }
            }
        };
        checks.push(Check::of(check, result));
    }
    // On a folder that selected: one that does not exist is its own check.
    if let Some(folder) = selected_folder {
        checks.push(clock_check(&name, folder, &mut session).await);
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
}

/// This machine's clock against the IMAP server's: the newest mail of
/// `folder` was received at its INTERNALDATE by the server's clock, so a
/// time after our now means our clock is behind (business time, the SLA's
/// due times and a token's lifetime would all be off). IMAP has no command
/// that tells the server's time, so a clock ahead of the server's cannot be
/// seen here.
async fn clock_check(
    name: &str,
    folder: &str,
    session: &mut crate::mailbox::imap::ImapSession,
) -> Check {
    use futures_util::TryStreamExt as _;
    let check = format!("{name} clock");
    let newest = async {
        session.select(folder).await?;
        let fetched: Vec<_> = session
            .uid_fetch("*", "INTERNALDATE")
            .await?
            .try_collect()
            .await?;
        anyhow::Ok(fetched.iter().filter_map(|f| f.internal_date()).max())
    };
    match tokio::time::timeout(SERVER_TIMEOUT, newest).await {
        Err(_) => Check::fail(check, "no answer to UID FETCH * (INTERNALDATE)"),
        Ok(Err(e)) => Check::fail(check, format!("UID FETCH * (INTERNALDATE): {e:#}")),
        Ok(Ok(None)) => Check::pass(check, format!("{folder} is empty: nothing to compare with")),
        Ok(Ok(Some(received))) => {
            let ahead = received.with_timezone(&chrono::Utc) - chrono::Utc::now();
            if ahead > chrono::Duration::minutes(5) {
                Check::fail(
                    check,
                    format!(
                        "the server received the newest mail of {folder} at {received}, {} minutes after this machine's now: this clock is behind (set it with NTP); business time and SLA due times would be wrong",
                        ahead.num_minutes()
                    ),
                )
            } else {
                Check::pass(
                    check,
                    format!(
                        "not behind the server's (the newest mail of {folder} was received at {received})"
                    ),
                )
            }
        }
    }
}

async fn smtp_check(config: &Config, store: Option<&Store>) -> Check {
    if config.outbox.transport != TransportKind::Smtp {
        return Check::pass(
            "smtp",
            format!(
                "not used: replies go to {}",
                config.resolve(&config.outbox.dir).display()
            ),
        );
    }
    let sign_ins = match store {
        Some(store) => crate::oauth::SignIns::new(config, store).unwrap_or_default(),
        None => crate::oauth::SignIns::default(),
    };
    let login = match crate::outbox::smtp::SmtpLogin::from_config(config, &sign_ins) {
        Ok(login) => login,
        Err(e) => return Check::fail("smtp", e),
    };
    match crate::outbox::smtp::probe(&config.outbox.smtp, &login, &config.outbox.hello()).await {
        Ok(found) => Check::pass("smtp", found),
        Err(e) => Check::fail("smtp", e.to_string()),
    }
}

fn portal_check(config: &Config) -> Check {
    let env = &config.drafting.portal.secret_env;
    match std::env::var(env) {
        Ok(secret) if secret.len() >= 16 => Check::pass(
            "upload portal",
            format!(
                "{}: per-case passwords from {env}",
                config.drafting.portal.url
            ),
        ),
        Ok(secret) if !secret.is_empty() => Check::fail(
            "upload portal",
            format!("{env} holds {} characters; use at least 16", secret.len()),
        ),
        _ => Check::pass(
            "upload portal",
            format!("{env} is not set: replies say the portal password comes separately"),
        ),
    }
}

fn download_check(config: &Config) -> Check {
    let d = &config.analysis.download;
    for network in &d.allowed_networks {
        if !valid_cidr(network) {
            return Check::fail(
                "link downloads",
                format!("analysis.download.allowed_networks: {network:?} is not a network (CIDR)"),
            );
        }
    }
    if d.allowed_hosts.is_empty() {
        Check::pass(
            "link downloads",
            "no host allowed: links in mail are listed, never fetched",
        )
    } else {
        Check::pass(
            "link downloads",
            format!(
                "from {} (at most {} MiB, {} s)",
                d.allowed_hosts.join(", "),
                d.max_mb,
                d.timeout_secs
            ),
        )
    }
}

/// `10.20.0.0/16`, `fd00::/8`: an address and a prefix length that fits it.
fn valid_cidr(text: &str) -> bool {
    let Some((addr, bits)) = text.trim().split_once('/') else {
        return false;
    };
    match (addr.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
        _ => false,
    }
}

/// The web desk's address parses and can be listened on, or is already
/// listened on by a `casebot serve` of this store.
async fn web_check(config: &Config, store: Option<&Store>) -> Check {
    let listen = config.web.listen.trim();
    if listen.is_empty() {
        return Check::pass("web desk", "not served ([web] listen is empty)");
    }
    let addr: std::net::SocketAddr = match listen.parse() {
        Ok(addr) => addr,
        Err(_) => return Check::fail("web desk", format!("{listen:?} is not an address:port")),
    };
    match tokio::net::TcpListener::bind(addr).await {
        Ok(_) => Check::pass("web desk", format!("http://{addr}/ can be served")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let serving = match store {
                Some(store) => store.instances().await.ok().is_some_and(|rows| {
                    let now = casebot_store::now_ts();
                    rows.iter().any(|r| r.view(now).alive)
                }),
                None => false,
            };
            if serving {
                Check::pass(
                    "web desk",
                    format!("http://{addr}/ is served by a running casebot serve"),
                )
            } else {
                Check::fail("web desk", format!("{addr} is in use by another program"))
            }
        }
        Err(e) => Check::fail("web desk", format!("cannot listen on {addr}: {e}")),
    }
}
