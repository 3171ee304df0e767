//! `casebot bench imap`: the watcher against a real server, next to mbsync.
//!
//! It starts a throwaway Dovecot, APPENDs N realistic mails (the same
//! generator as `bench ingest`) to one folder, then times in the same run
//! (a) `mbsync` (isync) mirroring the folder to a Maildir and (b) casebot
//! catching up the same folder into a fresh store through the whole
//! pipeline: fetch, parse, file, analyse, draft. "Caught up" means the
//! folder's checkpoint reached the last UID and the analysis and drafting
//! backlogs are empty. Then, with casebot in IDLE, it APPENDs one new case at
//! a time (a customer's mail with a zipped CBS.log) and measures the time
//! from APPEND to the case's draft in the store.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;
use tokio::sync::Notify;

use super::dovecot::{Dovecot, PASSWORD};
use super::generate_mail;
use super::oauth::AuthServer;
use casebot_app::config::{
    Config, MailboxConfig, MailboxKind, OAuth2Config, OAuthFlow, OAuthProvider, SmtpSecurity,
    TransportKind,
};
use casebot_app::daemon::{Desk, Watch};
use casebot_app::mailbox::imap::{Account, FolderWatcher, ImapSession};
use casebot_app::oauth::TokenSource;
use casebot_store::Store;

const USER: &str = "bench";
const FOLDER: &str = "INBOX";
/// A probe whose draft has not appeared by then counts as a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Figures of `casebot bench imap`; the last five fields are the ones the
/// summary line carries.
#[derive(Debug, Clone, Serialize)]
pub struct ImapFigures {
    pub count: u64,
    pub append_s: f64,
    pub mbsync_mails_per_sec: f64,
    pub casebot_mails_per_sec: f64,
    pub stored: i64,
    pub cases: i64,
    pub drafts: i64,
    pub idle_samples: usize,
    pub idle_max_ms: f64,
    /// APPEND → the case filed (the server's IDLE notice, fetch, parse, file).
    pub idle_filed_p50_ms: f64,
    pub idle_filed_p99_ms: f64,
    pub casebot_s: f64,
    pub mbsync_s: f64,
    pub mbsync_ratio: f64,
    pub idle_p50_ms: f64,
    pub idle_p99_ms: f64,
}

/// The line `--json` ends with.
#[derive(Debug, Serialize)]
pub struct ImapSummary {
    pub casebot_s: f64,
    pub mbsync_s: f64,
    pub mbsync_ratio: f64,
    pub idle_p50_ms: f64,
    pub idle_p99_ms: f64,
}

impl ImapFigures {
    pub fn summary(&self) -> ImapSummary {
        ImapSummary {
            casebot_s: self.casebot_s,
            mbsync_s: self.mbsync_s,
            mbsync_ratio: self.mbsync_ratio,
            idle_p50_ms: self.idle_p50_ms,
            idle_p99_ms: self.idle_p99_ms,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "imap: {} mails appended in {:.2} s\n\
             catch-up: mbsync (mirror to Maildir) {:.2} s = {:.0} mails/s; \
             casebot (fetch, parse, file, analyse, draft) {:.2} s = {:.0} mails/s; ratio casebot/mbsync {:.2}\n\
             store: {} mails, {} cases, {} drafts\n\
             IDLE, APPEND → stored draft over {} new cases: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms \
             (→ case filed: p50 {:.0} ms, p99 {:.0} ms; Dovecot holds IDLE notices back 500 ms)",
            self.count,
            self.append_s,
            self.mbsync_s,
            self.mbsync_mails_per_sec,
            self.casebot_s,
            self.casebot_mails_per_sec,
            self.mbsync_ratio,
            self.stored,
            self.cases,
            self.drafts,
            self.idle_samples,
            self.idle_p50_ms,
            self.idle_p99_ms,
            self.idle_max_ms,
            self.idle_filed_p50_ms,
            self.idle_filed_p99_ms,
        )
    }
}

/// Where the benchmark is; the CLI turns this into progress bars.
pub enum Progress {
    Appending { done: u64, total: u64 },
    Mbsync,
    CatchingUp { done: u64, total: u64 },
    Idle { done: u64, total: u64 },
}

/// How the benchmark's watcher logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchAuth {
    Password,
    #[value(name = "oauth2")]
    #[serde(rename = "oauth2")]
    OAuth2,
}

/// Runs the whole benchmark with the configured rules and templates.
pub async fn imap(
    config: &Config,
    count: u64,
    idle_samples: u64,
    auth: BenchAuth,
    progress: impl Fn(Progress),
) -> Result<ImapFigures> {
    ensure!(count > 0, "--count must be at least 1");
    let mbsync = which("mbsync")
        .context("mbsync (Debian's isync) is the baseline and is missing: apt-get install isync")?;
    // With OAuth2, a throwaway authorization server issues the watcher's
    // tokens and Dovecot introspects each at login; the appender, mbsync
    // and the probe still log in with the password.
    let auth_server = match auth {
        BenchAuth::Password => None,
        BenchAuth::OAuth2 => {
            let server = tokio::task::spawn_blocking(|| AuthServer::start(3600)).await??;
            server.register("casebot-bench", "bench-secret", Some(USER));
            Some(server)
        }
    };
    let dovecot = match &auth_server {
        None => tokio::task::spawn_blocking(Dovecot::start).await??,
        Some(server) => {
            let url = server.url("/introspect");
            tokio::task::spawn_blocking(move || Dovecot::start_oauth2(&url)).await??
        }
    };
    let scratch = dovecot.scratch();
    std::fs::create_dir_all(&scratch)?;
    let password_account = Account::plain("bench", "127.0.0.1", dovecot.port, USER, PASSWORD);

    let started = Instant::now();
    let mut appender = login(&dovecot, &password_account).await?;
    append_generated(
        &mut appender,
        count,
        |_| FOLDER,
        |done| progress(Progress::Appending { done, total: count }),
    )
    .await?;
    let append_s = started.elapsed().as_secs_f64();

    progress(Progress::Mbsync);
    let mbsync_s = run_mbsync(&mbsync, &scratch, dovecot.port, &[FOLDER], count).await?;

    let store = Store::open(&format!("sqlite://{}", scratch.join("bench.db").display())).await?;
    let mut config = config.clone();
    config.outbox.transport = TransportKind::File;
    config.outbox.dir = scratch.join("outbox");
    let config = Arc::new(config);
    let analyzer = casebot_analysis::Analyzer::new(&config.analysis, &config.base_dir)?;
    let desk = Desk::new(store.clone(), analyzer, config.clone())?;
    let mut mailbox = MailboxConfig::with_defaults("bench", MailboxKind::Imap);
    mailbox.security = SmtpSecurity::Plain;
    mailbox.reconnect_max_secs = 1;
    if let Some(configured) = config
        .mailboxes
        .iter()
        .find(|m| m.kind == MailboxKind::Imap)
    {
        mailbox.fetch_batch = configured.fetch_batch;
    }
    let account = match &auth_server {
        None => password_account,
        Some(server) => {
            let oauth = OAuth2Config {
                provider: OAuthProvider::Custom,
                tenant: String::new(),
                flow: OAuthFlow::ClientCredentials,
                client_id: "casebot-bench".into(),
                client_secret_env: String::new(),
                scopes: vec!["mail".into()],
                token_url: server.url("/token"),
                device_url: String::new(),
                token_key_env: String::new(),
            };
            let source = TokenSource::new("bench", &oauth, store.clone())?
                .with_client_secret("bench-secret");
            Account::plain_oauth2("bench", "127.0.0.1", dovecot.port, USER, Arc::new(source))
        }
    };
    let filed = Arc::new(Notify::new());
    let watcher = FolderWatcher::new(
        account,
        &mailbox,
        FOLDER,
        desk.pipeline.store().clone(),
        Arc::new(desk.pipeline.clone()),
        filed.clone(),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let daemon = tokio::spawn(casebot_app::daemon::run(
        desk,
        vec![Watch::ImapFolder(Box::new(watcher))],
        filed,
        None,
        async {
            let _ = stop_rx.await;
        },
    ));
    let outcome = async {
        let casebot_s = caught_up(&store, count, started, &progress).await?;
        let (cases, stored, _) = store.counts().await?;
        let drafts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM drafts")
            .fetch_one(store.pool())
            .await?;
        let latencies = idle_latencies(&store, &dovecot, idle_samples, &progress).await?;
        anyhow::Ok((casebot_s, stored, cases, drafts, latencies))
    }
    .await;
    let _ = stop_tx.send(());
    daemon.await??;
    let (casebot_s, stored, cases, drafts, latencies) = outcome?;
    let mut drafted: Vec<f64> = latencies.iter().map(|l| l.drafted_ms).collect();
    let mut filed: Vec<f64> = latencies.iter().map(|l| l.filed_ms).collect();
    drafted.sort_by(f64::total_cmp);
    filed.sort_by(f64::total_cmp);
    Ok(ImapFigures {
        count,
        append_s,
        mbsync_mails_per_sec: count as f64 / mbsync_s.max(1e-9),
        casebot_mails_per_sec: count as f64 / casebot_s.max(1e-9),
        stored,
        cases,
        drafts,
        idle_samples: drafted.len(),
        idle_max_ms: drafted.last().copied().unwrap_or(0.0),
        idle_filed_p50_ms: quantile(&filed, 0.50),
        idle_filed_p99_ms: quantile(&filed, 0.99),
        casebot_s,
        mbsync_s,
        mbsync_ratio: casebot_s / mbsync_s.max(1e-9),
        idle_p50_ms: quantile(&drafted, 0.50),
        idle_p99_ms: quantile(&drafted, 0.99),
    })
}

/// Logs in to the throwaway Dovecot; on failure, the error ends with its log.
pub(super) async fn login(dovecot: &Dovecot, account: &Account) -> Result<ImapSession> {
    account.login().await.with_context(|| {
        let log = dovecot.log();
        let tail: Vec<&str> = log.lines().rev().take(8).collect();
        format!(
            "cannot log in to the throwaway Dovecot; the end of its log:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })
}

/// APPENDs the generated mails 0..count, mail i to `folder_of(i)`, and
/// reports how many are done every hundred mails.
pub(super) async fn append_generated<'a>(
    session: &mut ImapSession,
    count: u64,
    folder_of: impl Fn(u64) -> &'a str,
    progress: impl Fn(u64),
) -> Result<()> {
    for i in 0..count {
        let folder = folder_of(i);
        session
            .append(folder, None, None, generate_mail(i))
            .await
            .with_context(|| format!("APPEND of mail {i} to {folder} failed"))?;
        if (i + 1).is_multiple_of(100) || i + 1 == count {
            progress(i + 1);
        }
    }
    Ok(())
}

/// The nearest-rank quantile of sorted figures (0 when there are none).
pub(super) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(super) fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// Mirrors the folders with mbsync (its default durability: it fsyncs) and
/// checks that it really copied every mail.
pub(super) async fn run_mbsync(
    mbsync: &Path,
    scratch: &Path,
    port: u16,
    folders: &[&str],
    count: u64,
) -> Result<f64> {
    let maildir = scratch.join("mbsync");
    std::fs::create_dir_all(&maildir)?;
    let rc = scratch.join("mbsyncrc");
    let mut f = std::fs::File::create(&rc)?;
    write!(
        f,
        "IMAPAccount bench\nHost 127.0.0.1\nPort {port}\nUser {USER}\nPass {PASSWORD}\nSSLType None\nAuthMechs LOGIN\n\n\
         IMAPStore remote\nAccount bench\n\n\
         MaildirStore local\nPath {m}/\nInbox {m}/INBOX\n\n\
         Channel bench\nFar :remote:\nNear :local:\nPatterns {patterns}\nSync Pull\nCreate Near\nSyncState *\n",
        m = maildir.display(),
        patterns = folders.join(" ")
    )?;
    drop(f);
    let mut command = Command::new(mbsync);
    command
        .arg("-c")
        .arg(&rc)
        .arg("-a")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let (out, seconds) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = command.output();
        (out, started.elapsed().as_secs_f64())
    })
    .await?;
    let out = out.context("Cannot run mbsync")?;
    if !out.status.success() {
        bail!(
            "mbsync failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mirrored: u64 = folders
        .iter()
        .flat_map(|folder| ["cur", "new"].map(|sub| maildir.join(folder).join(sub)))
        .map(|dir| {
            std::fs::read_dir(dir)
                .map(|d| d.count() as u64)
                .unwrap_or(0)
        })
        .sum();
    ensure!(
        mirrored == count,
        "mbsync mirrored {mirrored} of {count} mails: the baseline is not comparable"
    );
    Ok(seconds)
}

/// Waits until the folder's checkpoint reached `count` and the analysis and
/// drafting backlogs are empty; returns the seconds since `started`.
async fn caught_up(
    store: &Store,
    count: u64,
    started: Instant,
    progress: &impl Fn(Progress),
) -> Result<f64> {
    loop {
        let last_uid = store
            .imap_checkpoint("bench", FOLDER)
            .await?
            .map(|c| c.last_uid as u64)
            .unwrap_or(0);
        progress(Progress::CatchingUp {
            done: last_uid,
            total: count,
        });
        if last_uid >= count && store.backlog().await?.is_empty() {
            return Ok(started.elapsed().as_secs_f64());
        }
        if let Some(folder) = store.imap_folders().await?.first()
            && folder.state == "reconnecting"
        {
            bail!(
                "the watcher lost its connection during the catch-up: {}",
                folder.last_error.as_deref().unwrap_or("no error recorded")
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// APPENDs `samples` new cases one at a time while the watcher is in IDLE;
/// returns each one's milliseconds from APPEND to its filed case and to its
/// stored draft.
async fn idle_latencies(
    store: &Store,
    dovecot: &Dovecot,
    samples: u64,
    progress: &impl Fn(Progress),
) -> Result<Vec<Latency>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while store
        .imap_folders()
        .await?
        .first()
        .map(|f| f.state.as_str())
        != Some("idle")
    {
        ensure!(
            Instant::now() < deadline,
            "the watcher never went into IDLE"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let account = Account::plain("probe", "127.0.0.1", dovecot.port, USER, PASSWORD);
    let mut session = account.login().await?;
    let zip = super::log_collector_zip();
    let mut latencies = Vec::with_capacity(samples as usize);
    for n in 0..samples {
        let (case, mail) = probe_mail(n, zip);
        let started = Instant::now();
        session
            .append(FOLDER, None, None, &mail)
            .await
            .with_context(|| format!("APPEND of probe {n} failed"))?;
        let mut filed = None;
        loop {
            let (exists, drafted) = case_progress(store, &case).await?;
            if exists && filed.is_none() {
                filed = Some(started.elapsed());
            }
            if drafted {
                break;
            }
            ensure!(
                started.elapsed() < PROBE_TIMEOUT,
                "no draft for probe case {case} within {PROBE_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let drafted = started.elapsed();
        latencies.push(Latency {
            filed_ms: filed.unwrap_or(drafted).as_secs_f64() * 1000.0,
            drafted_ms: drafted.as_secs_f64() * 1000.0,
        });
        progress(Progress::Idle {
            done: n + 1,
            total: samples,
        });
    }
    let _ = session.logout().await;
    Ok(latencies)
}

/// One probe: when its case appeared, and when its draft did.
struct Latency {
    filed_ms: f64,
    drafted_ms: f64,
}

/// Whether the case is filed, and whether it has a draft.
async fn case_progress(store: &Store, case: &str) -> Result<(bool, bool)> {
    let (cases, drafts): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(DISTINCT c.id), COUNT(d.id) FROM cases c LEFT JOIN drafts d ON d.case_id = c.id \
         WHERE c.key = $1",
    )
    .bind(case)
    .fetch_one(store.pool())
    .await?;
    Ok((cases > 0, drafts > 0))
}

/// The `n`-th probe: a customer's first mail of a new case, with the zip.
fn probe_mail(n: u64, zip: &[u8]) -> (String, Vec<u8>) {
    use base64::Engine as _;
    let case = format!("CAS-9{n:04}-PROBE{}", (b'A' + (n % 26) as u8) as char);
    let boundary = format!("=_probe_{n}");
    let mail = format!(
        "From: customer{n}@example.cn\r\nTo: support@example.com\r\n\
         Subject: =?UTF-8?B?{subject}?=\r\n\
         Date: Tue, 12 Mar 2024 10:20:00 +0800\r\nMessage-ID: <probe.{n}@mail.example.cn>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n\
         --{boundary}\r\nContent-Type: application/zip; name=\"logs.zip\"\r\n\
         Content-Disposition: attachment; filename=\"logs.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{attachment}\r\n\
         --{boundary}--\r\n",
        subject = super::B64.encode(format!(
            "[案例号: {case} ] % |P2|示例客户|补丁KB5034441安装失败 % 初次响应 CMIT:{n:07}"
        )),
        body = super::B64.encode("您好：\n补丁安装失败，日志见附件，请协助分析。\n"),
        attachment = super::wrap76(&super::B64.encode(zip)),
    );
    (case, mail.into_bytes())
}

/// The probes must be what they claim: new cases the pipeline drafts for.
#[cfg(test)]
mod tests {
    use super::*;
    use casebot_core::domain::Direction;
    use casebot_core::mail::parse::MailParser;

    #[test]
    fn probe_mails_are_customer_mails_of_new_cases_with_a_readable_log() {
        let zip = crate::log_collector_zip();
        let parser = MailParser::new(
            &Config::default().desk,
            &Config::default().grammar,
            &Config::default().ingest,
        )
        .unwrap();
        let (case, bytes) = probe_mail(3, zip);
        let m = parser.parse(&bytes, chrono::Utc::now()).unwrap();
        assert_eq!(m.subject_info.case_id.as_deref(), Some(case.as_str()));
        assert_eq!(m.direction, Direction::Customer);
        assert_eq!(m.attachments.len(), 1);
        assert_ne!(
            probe_mail(4, zip).0,
            case,
            "each probe is a case of its own"
        );
    }
}
