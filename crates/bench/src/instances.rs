//! `casebot bench instances`: ingest with 1, 2, 3… instances on one
//! PostgreSQL, and how fast a mailbox lease is taken over after SIGKILL.
//!
//! It starts a throwaway Dovecot and PostgreSQL and APPENDs N realistic
//! mails spread over F folders (a thread stays in one folder, as a partner's
//! mail does). The baseline, in the same run, is `mbsync` mirroring the same
//! folders to a Maildir: copying, nothing parsed. Then, for each instance
//! count, it starts that many `casebot serve` processes (this binary) on a
//! fresh database and times them until every mail is stored, and until the
//! analysis and drafting backlogs are empty too. The instances share the
//! folders out by lease ([`casebot_app::daemon::leases`]), so each count gets its
//! own figure.
//!
//! With the most instances running (the last run, so that the mails it
//! adds are in no other run) it then SIGKILLs the holder of the first
//! folder, APPENDs a mail to that folder, and times until the mail is
//! stored: the take-over. It restarts the killed instance, waits until the
//! folders are shared out again, and repeats.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;

use super::dovecot::{Dovecot, PASSWORD};
use super::imap::{append_generated, login, quantile, run_mbsync, which};
use super::postgres::Cluster;
use super::{THREAD_LEN, generate_mail};
use casebot_app::config::Config;
use casebot_app::mailbox::imap::{Account, ImapSession};
use casebot_store::Store;

const USER: &str = "bench";
const MAILBOX: &str = "bench";
const USER_ENV: &str = "CASEBOT_BENCH_IMAP_USER";
const PASSWORD_ENV: &str = "CASEBOT_BENCH_IMAP_PASSWORD";
/// A run that has not stored every mail by then fails, with the instances'
/// last log lines.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize)]
pub struct InstancesFigures {
    pub mails: u64,
    pub folders: usize,
    pub append_s: f64,
    pub mbsync_s: f64,
    pub mbsync_mails_per_sec: f64,
    pub runs: Vec<InstancesRun>,
    pub takeover_ms: Vec<f64>,
    pub takeover_p50_ms: f64,
    pub takeover_max_ms: f64,
}

/// One instance count's figures.
#[derive(Debug, Clone, Serialize)]
pub struct InstancesRun {
    pub instances: usize,
    /// From starting the processes to the first mail stored: start-up,
    /// sharing the folders out, logging in.
    pub first_stored_s: f64,
    /// From starting the processes to every mail stored.
    pub stored_s: f64,
    pub mails_per_sec: f64,
    /// From the first mail stored to the last.
    pub steady_mails_per_sec: f64,
    /// `mails_per_sec` over the one-instance figure.
    pub speedup: f64,
    /// Until the analysis and drafting backlogs are empty too.
    pub caught_up_s: f64,
    pub cases: i64,
}

impl InstancesFigures {
    pub fn describe(&self) -> String {
        let mut out = format!(
            "instances on PostgreSQL: {} mails in {} folders, appended in {:.2} s\n\
             baseline: mbsync (mirror to Maildir) {:.2} s = {:.0} mails/s\n\
             {:>9}  {:>7}  {:>8}  {:>7}  {:>8}  {:>7}  {:>9}  {:>6}\n",
            self.mails,
            self.folders,
            self.append_s,
            self.mbsync_s,
            self.mbsync_mails_per_sec,
            "instances",
            "first s",
            "stored s",
            "mails/s",
            "steady/s",
            "speedup",
            "caught up",
            "cases"
        );
        for run in &self.runs {
            out.push_str(&format!(
                "{:>9}  {:>7.2}  {:>8.2}  {:>7.0}  {:>8.0}  {:>6.2}x  {:>8.2}s  {:>6}\n",
                run.instances,
                run.first_stored_s,
                run.stored_s,
                run.mails_per_sec,
                run.steady_mails_per_sec,
                run.speedup,
                run.caught_up_s,
                run.cases
            ));
        }
        if self.takeover_ms.is_empty() {
            out.push_str("take-over: not measured (it needs --max-instances 2 or more)");
            return out;
        }
        out.push_str(&format!(
            "take-over after SIGKILL ({} instances; kill the first folder's holder, APPEND there, \
             until stored by a survivor), {} rounds: p50 {:.0} ms, max {:.0} ms",
            self.runs.last().map_or(0, |r| r.instances),
            self.takeover_ms.len(),
            self.takeover_p50_ms,
            self.takeover_max_ms
        ));
        out
    }
}

/// Where the benchmark is; the CLI turns this into progress bars.
pub enum Progress {
    Appending {
        done: u64,
        total: u64,
    },
    Mbsync,
    Ingesting {
        instances: usize,
        done: u64,
        total: u64,
    },
    Takeover {
        done: u64,
        total: u64,
    },
}

pub struct Options {
    pub mails: u64,
    pub folders: usize,
    pub max_instances: usize,
    pub takeovers: u64,
}

/// One `casebot serve` of the benchmark's; SIGKILLed when dropped.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn pid(&self) -> i64 {
        i64::from(self.child.id())
    }

    fn kill(&mut self) {
        // SIGKILL; a no-op once it has been waited for.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The end of its log, for an error message.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(6).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How the benchmark starts its instances: this binary, a config of its
/// own in the scratch folder.
struct Launcher {
    exe: PathBuf,
    dir: PathBuf,
    started: usize,
}

impl Launcher {
    fn spawn(&mut self, store_url: &str) -> Result<Serve> {
        self.started += 1;
        let log = self.dir.join(format!("serve-{}.log", self.started));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("Cannot create {}", log.display()))?;
        let child = Command::new(&self.exe)
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .arg("serve")
            .current_dir(&self.dir)
            .env("CASEBOT_DB", store_url)
            .env("CASEBOT_LISTEN", "")
            .env(USER_ENV, USER)
            .env(PASSWORD_ENV, PASSWORD)
            .env("RUST_LOG", "casebot=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("Cannot start {}", self.exe.display()))?;
        Ok(Serve { child, log })
    }
}

fn folder_name(n: usize) -> String {
    if n == 0 {
        "INBOX".into()
    } else {
        format!("Partner{n:02}")
    }
}

/// The instances' config: the mailbox on the throwaway Dovecot, the
/// configured rules and templates, drafts "sent" to files.
fn write_config(config: &Config, dir: &Path, port: u16, folders: &[String]) -> Result<()> {
    let mut text = format!(
        "[[mailbox]]\nname = \"{MAILBOX}\"\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         security = \"plain\"\nusername_env = \"{USER_ENV}\"\npassword_env = \"{PASSWORD_ENV}\"\n\
         folders = {folders:?}\nreconnect_max_secs = 1\n\n\
         [outbox]\ntransport = \"file\"\ndir = \"outbox\"\n"
    );
    // A folder of the user's, when there is one; else the built-in ones.
    // Absolute: the instances run in the scratch folder.
    if let Ok(rules) = std::fs::canonicalize(config.resolve(&config.analysis.rules_dir)) {
        text.push_str(&format!(
            "\n[analysis]\nrules_dir = {:?}\n",
            rules.display().to_string()
        ));
    }
    if let Ok(templates) = std::fs::canonicalize(config.resolve(&config.drafting.templates_dir)) {
        text.push_str(&format!(
            "\n[drafting]\ntemplates_dir = {:?}\n",
            templates.display().to_string()
        ));
    }
    let path = dir.join("config.toml");
    let mut file = std::fs::File::create(&path)
        .with_context(|| format!("Cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

pub async fn instances(
    config: &Config,
    options: Options,
    progress: impl Fn(Progress),
) -> Result<InstancesFigures> {
    let Options {
        mails,
        folders,
        max_instances,
        takeovers,
    } = options;
    ensure!(mails > 0, "--mails must be at least 1");
    ensure!(folders > 0, "--folders must be at least 1");
    ensure!(max_instances > 0, "--max-instances must be at least 1");
    // Held to the end: dropping a server stops it.
    let Servers {
        dovecot: _dovecot,
        postgres,
        names,
        mut launcher,
        mut appender,
        append_s,
        mbsync_s,
    } = servers(config, mails, folders, &progress).await?;

    let mut runs: Vec<InstancesRun> = Vec::new();
    let mut takeover_ms = Vec::new();
    for count in 1..=max_instances {
        let store_url = format!("{}/bench_{count}", postgres.url);
        // Created and migrated before the clock starts.
        let store = Store::open(&store_url).await?;
        let mut serves = (0..count)
            .map(|_| launcher.spawn(&store_url))
            .collect::<Result<Vec<_>>>()?;
        let started = Instant::now();
        let (first_stored_s, stored_s, caught_up_s) =
            ingest(&store, mails, started, &mut serves, |done| {
                progress(Progress::Ingesting {
                    instances: count,
                    done,
                    total: mails,
                })
            })
            .await?;
        let (cases, _, _) = store.counts().await?;
        let mails_per_sec = mails as f64 / stored_s.max(1e-9);
        let speedup = runs
            .first()
            .map_or(1.0, |one| mails_per_sec / one.mails_per_sec.max(1e-9));
        if let Some(one) = runs.first()
            && cases != one.cases
        {
            let first = Store::open(&format!("{}/bench_1", postgres.url)).await?;
            bail!(
                "{count} instances filed {cases} cases where one filed {}; the cases that differ:\n{}",
                one.cases,
                differing_cases(&store, &first).await?.join("\n")
            );
        }
        runs.push(InstancesRun {
            instances: count,
            first_stored_s,
            stored_s,
            mails_per_sec,
            steady_mails_per_sec: mails as f64 / (stored_s - first_stored_s).max(1e-9),
            speedup,
            caught_up_s,
            cases,
        });
        // Last, so that the mails it adds are in no other run.
        if count == max_instances && count >= 2 {
            for round in 0..takeovers {
                progress(Progress::Takeover {
                    done: round,
                    total: takeovers,
                });
                let ms = takeover(
                    &store,
                    &mut serves,
                    &mut launcher,
                    &store_url,
                    &mut appender,
                    &names[0],
                    mails + round,
                )
                .await?;
                takeover_ms.push(ms);
            }
        }
        drop(serves);
        store.pool().close().await;
    }
    let _ = appender.logout().await;
    let mut sorted = takeover_ms.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(InstancesFigures {
        mails,
        folders,
        append_s,
        mbsync_s,
        mbsync_mails_per_sec: mails as f64 / mbsync_s.max(1e-9),
        runs,
        takeover_p50_ms: quantile(&sorted, 0.5),
        takeover_max_ms: sorted.last().copied().unwrap_or(0.0),
        takeover_ms,
    })
}

/// The cases (key, mail count, title) filed by one run and not the other.
async fn differing_cases(ours: &Store, theirs: &Store) -> Result<Vec<String>> {
    let keys = |store: &Store| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_as::<_, (String, i64, Option<String>)>(
                "SELECT key, message_count, title FROM cases ORDER BY key",
            )
            .fetch_all(&pool)
            .await
        }
    };
    let (ours, theirs) = (keys(ours).await?, keys(theirs).await?);
    Ok(ours
        .iter()
        .filter(|c| !theirs.contains(c))
        .chain(theirs.iter().filter(|c| !ours.contains(c)))
        .map(|(key, n, title)| format!("{key} ({n} mails) {}", title.as_deref().unwrap_or("")))
        .take(20)
        .collect())
}

/// What every run shares: the servers, the folders with their mail, the
/// mbsync baseline.
struct Servers {
    dovecot: Dovecot,
    postgres: Cluster,
    names: Vec<String>,
    launcher: Launcher,
    appender: ImapSession,
    append_s: f64,
    mbsync_s: f64,
}

/// Starts Dovecot and PostgreSQL, APPENDs the mails over the folders and
/// times mbsync mirroring them.
async fn servers(
    config: &Config,
    mails: u64,
    folders: usize,
    progress: &impl Fn(Progress),
) -> Result<Servers> {
    let mbsync = which("mbsync")
        .context("mbsync (Debian's isync) is the baseline and is missing: apt-get install isync")?;
    let dovecot = tokio::task::spawn_blocking(Dovecot::start).await??;
    let postgres = tokio::task::spawn_blocking(Cluster::start).await??;
    let scratch = dovecot.scratch();
    std::fs::create_dir_all(&scratch)?;
    let names: Vec<String> = (0..folders).map(folder_name).collect();
    write_config(config, &scratch, dovecot.port, &names)?;
    let launcher = Launcher {
        exe: std::env::current_exe().context("Cannot find this program's path")?,
        dir: scratch.clone(),
        started: 0,
    };

    let account = Account::plain("bench", "127.0.0.1", dovecot.port, USER, PASSWORD);
    let mut appender = login(&dovecot, &account).await?;
    for name in names.iter().skip(1) {
        appender
            .create(name)
            .await
            .with_context(|| format!("Cannot create the folder {name}"))?;
    }
    let started = Instant::now();
    append_generated(
        &mut appender,
        mails,
        |i| &names[((i / THREAD_LEN) % folders as u64) as usize],
        |done| progress(Progress::Appending { done, total: mails }),
    )
    .await?;
    let append_s = started.elapsed().as_secs_f64();
    progress(Progress::Mbsync);
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mbsync_s = run_mbsync(&mbsync, &scratch, dovecot.port, &name_refs, mails).await?;
    Ok(Servers {
        dovecot,
        postgres,
        names,
        launcher,
        appender,
        append_s,
        mbsync_s,
    })
}

async fn stored(store: &Store) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(store.pool())
        .await?)
}

/// Waits until the first mail is stored, until `mails` are, then until the
/// backlogs are empty: the three times in seconds since `started`.
async fn ingest(
    store: &Store,
    mails: u64,
    started: Instant,
    serves: &mut [Serve],
    progress: impl Fn(u64),
) -> Result<(f64, f64, f64)> {
    let mut first_s = None;
    let mut stored_s = None;
    loop {
        for serve in serves.iter_mut() {
            if let Ok(Some(status)) = serve.child.try_wait() {
                bail!(
                    "an instance stopped ({status}); the end of its log:\n{}",
                    serve.log_tail()
                );
            }
        }
        let n = stored(store).await?;
        progress(n.max(0) as u64);
        if first_s.is_none() && n > 0 {
            first_s = Some(started.elapsed().as_secs_f64());
        }
        if stored_s.is_none() && n as u64 >= mails {
            stored_s = Some(started.elapsed().as_secs_f64());
        }
        if let Some(stored_s) = stored_s
            && store.backlog().await?.is_empty()
        {
            let first_s = first_s.unwrap_or(stored_s);
            return Ok((first_s, stored_s, started.elapsed().as_secs_f64()));
        }
        if started.elapsed() > RUN_TIMEOUT {
            let logs: Vec<String> = serves.iter().map(Serve::log_tail).collect();
            bail!(
                "after {} s, {n} of {mails} mails stored; the instances' last log lines:\n{}",
                RUN_TIMEOUT.as_secs(),
                logs.join("\n--\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills the instance watching `folder`, APPENDs mail number `i` to it, and
/// returns the milliseconds from the kill to the mail stored. Then restarts
/// the killed instance and waits until the folders are shared out again.
async fn takeover(
    store: &Store,
    serves: &mut [Serve],
    launcher: &mut Launcher,
    store_url: &str,
    appender: &mut ImapSession,
    folder: &str,
    i: u64,
) -> Result<f64> {
    let lease = format!("imap {MAILBOX}/{folder}");
    let holder_pid = wait_until(store, "an instance to hold the first folder", |rows| {
        rows.iter()
            .find(|(_, leases)| leases.iter().any(|l| *l == lease))
            .map(|(pid, _)| *pid)
    })
    .await?;
    let index = serves
        .iter()
        .position(|s| s.pid() == holder_pid)
        .context("the folder's holder is not one of the benchmark's instances")?;
    let before = stored(store).await?;
    let killed = Instant::now();
    serves[index].kill();
    appender
        .append(folder, None, None, generate_mail(i))
        .await
        .with_context(|| format!("APPEND of mail {i} failed"))?;
    while stored(store).await? <= before {
        ensure!(
            killed.elapsed() < TAKEOVER_TIMEOUT,
            "no instance took the folder over within {} s; the survivor's last log lines:\n{}",
            TAKEOVER_TIMEOUT.as_secs(),
            serves
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != index)
                .map(|(_, s)| s.log_tail())
                .collect::<Vec<_>>()
                .join("\n--\n")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ms = killed.elapsed().as_secs_f64() * 1000.0;
    serves[index] = launcher.spawn(store_url)?;
    let live = serves.len();
    wait_until(store, "the folders to be shared out again", |rows| {
        (rows.len() == live
            && rows
                .iter()
                .all(|(_, leases)| leases.iter().any(|l| l.starts_with("imap "))))
        .then_some(())
    })
    .await?;
    Ok(ms)
}

/// Polls the live instances' rows (pid and leases) until `ready` says yes.
async fn wait_until<T>(
    store: &Store,
    what: &str,
    ready: impl Fn(&[(i64, Vec<&str>)]) -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + TAKEOVER_TIMEOUT;
    loop {
        let now = casebot_store::now_ts();
        let rows = store.instances().await?;
        let live: Vec<(i64, Vec<&str>)> = rows
            .iter()
            .filter(|r| r.is_alive(now))
            .map(|r| (r.pid, r.leases.lines().collect()))
            .collect();
        if let Some(value) = ready(&live) {
            return Ok(value);
        }
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
