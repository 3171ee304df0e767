//! `casebot serve`: the long-running process.
//!
//! It watches every configured mailbox (each IMAP folder in IDLE on its own
//! connection, each Maildir's `new/`) and files what arrives through the
//! same [`Pipeline`] as `casebot import`. The analysis stage runs as two
//! tasks, one reading attachments and pasted lines (woken after each
//! filing), one fetching links (minutes, for a large download); drafting and
//! the SLA are a third, woken after either analysis pass. Each also runs
//! every few seconds, so a mail filed by another command is picked up too,
//! and a slow download never holds up a draft. The sender is its own task, polling for drafts approved from any
//! process, and woken at once by an approval on the web desk. The SLA
//! snapshots are brought up to date after each drafting pass. The web desk
//! is one more task on the same stages, serving `web.listen`.
//! SIGINT/SIGTERM let the batch in hand finish before exiting.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::config::{Config, MailboxKind};
use crate::mailbox::Filer;
use crate::mailbox::imap::{Account, FolderWatcher};
use crate::mailbox::maildir::Maildir;
use crate::notify::Notifier;
use crate::oauth::SignIns;
use crate::outbox::Outbox;
use crate::stages::analysis::Worker;
use crate::stages::drafting::Drafter;
use crate::stages::filing::Pipeline;
use crate::stages::sla::SlaSnapshots;
use casebot_analysis::Analyzer;
use casebot_core::sla::SlaPolicies;
use casebot_store::Store;
use casebot_store::analyses::AnalysisQueue;

pub mod leases;
use leases::{Roster, heartbeat_forever, while_leased};

/// The stages one running desk is made of, built from one store.
pub struct Desk {
    pub pipeline: Pipeline,
    pub worker: Worker,
    pub drafter: Arc<Drafter>,
    pub outbox: Outbox,
    pub sla: Arc<SlaSnapshots>,
    pub notifier: Arc<Notifier>,
    /// The OAuth2 sign-ins of the mailboxes, shared by watchers and sender.
    pub sign_ins: SignIns,
    /// Wakes the sender (an approval on the web desk).
    pub send_now: Arc<Notify>,
    pub config: Arc<Config>,
}

impl Desk {
    /// Every stage over `store`, as `config` sets them up.
    pub fn new(store: Store, analyzer: Analyzer, config: Arc<Config>) -> Result<Desk> {
        let pipeline = Pipeline::new(store.clone(), config.clone())?;
        let drafter = Arc::new(Drafter::new(
            store.clone(),
            analyzer.rules.clone(),
            config.clone(),
        )?);
        let policies =
            SlaPolicies::from_config(&config.sla, &config.desk.time_zone, &config.base_dir)
                .map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
        let sla = Arc::new(SlaSnapshots::new(store.clone(), Arc::new(policies)));
        let sign_ins = SignIns::new(&config, pipeline.store())?;
        let notifier = Arc::new(Notifier::new(
            store.clone(),
            config.clone(),
            sla.clone(),
            sign_ins.clone(),
        )?);
        let worker = Worker::new(store, analyzer, &config)?;
        let outbox = Outbox::new(pipeline.clone(), config.clone(), sign_ins.clone());
        Ok(Desk {
            pipeline,
            worker,
            drafter,
            outbox,
            sla,
            notifier,
            sign_ins,
            send_now: Arc::new(Notify::new()),
            config,
        })
    }
}

/// One source of new mail the daemon watches.
pub enum Watch {
    ImapFolder(Box<FolderWatcher>),
    Maildir {
        maildir: Maildir,
        interval: Duration,
    },
}

/// The watchers the configuration asks for; each wakes `filed` after filing.
pub fn configured_watchers(
    config: &Config,
    pipeline: &Pipeline,
    sign_ins: &SignIns,
    filed: &Arc<Notify>,
) -> Result<Vec<Watch>> {
    let mut watchers = Vec::new();
    for mailbox in &config.mailboxes {
        match mailbox.kind {
            MailboxKind::Imap => {
                let account = Account::from_config(config, mailbox, sign_ins)?;
                for folder in &mailbox.folders {
                    watchers.push(Watch::ImapFolder(Box::new(
                        FolderWatcher::new(
                            account.clone(),
                            mailbox,
                            folder,
                            pipeline.store().clone(),
                            Arc::new(pipeline.clone()),
                            filed.clone(),
                        )
                        .with_max_message_bytes(config.ingest.max_message_bytes),
                    )));
                }
            }
            MailboxKind::Maildir => {
                let path = config.maildir_path(mailbox);
                let maildir = Maildir::open(&mailbox.name, &path, config.ingest.max_message_bytes)?;
                tracing::info!(mailbox = %mailbox.name, path = %path.display(), "watching Maildir");
                watchers.push(Watch::Maildir {
                    maildir,
                    interval: Duration::from_secs(mailbox.poll_interval_secs.max(1)),
                });
            }
        }
    }
    Ok(watchers)
}

/// Runs the configured desk until SIGINT or SIGTERM.
pub async fn serve(config: Arc<Config>, desk: Desk, shutdown: Shutdown) -> Result<()> {
    let filed = Arc::new(Notify::new());
    let watchers = configured_watchers(&config, &desk.pipeline, &desk.sign_ins, &filed)?;
    let web = match config.web.listen.as_str() {
        "" => None,
        address => Some(TcpListener::bind(address).await.with_context(|| {
            format!("Cannot serve the web desk on {address} (web.listen, or CASEBOT_LISTEN)")
        })?),
    };
    run(desk, watchers, filed, web, shutdown.wait()).await
}

/// Runs the stages, `watchers` and the web desk (on `web`, when given)
/// until `stop` completes, then lets each finish what it has in hand.
/// `filed` is the notification the watchers were made with: it wakes the
/// analysis and drafting stages.
pub async fn run(
    desk: Desk,
    watchers: Vec<Watch>,
    filed: Arc<Notify>,
    web: Option<TcpListener>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(listener) = web {
        let state = crate::web::AppState {
            store: desk.pipeline.store().clone(),
            config: desk.config.clone(),
            drafter: desk.drafter.clone(),
            sla: desk.sla.clone(),
            send_now: desk.send_now.clone(),
            throttle: Default::default(),
        };
        let mut web_stop = stop_rx.clone();
        tasks.push(tokio::spawn(crate::web::serve(
            listener,
            state,
            async move {
                let _ = web_stop.changed().await;
            },
        )));
    }
    let store = desk.pipeline.store().clone();
    let roster = Arc::new(Roster::new(watchers.len()));
    tasks.push(tokio::spawn(heartbeat_forever(
        store.clone(),
        roster.clone(),
        stop_rx.clone(),
    )));
    // filed → read queue → (fetch queue) → drafting and SLA; each stage
    // wakes the next, and each also runs every few seconds on its own.
    let (to_fetch, analysed) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    tasks.push(tokio::spawn(analyse_forever(
        desk.worker.clone(),
        AnalysisQueue::Read,
        filed.clone(),
        vec![to_fetch.clone(), analysed.clone()],
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(analyse_forever(
        desk.worker,
        AnalysisQueue::Fetch,
        to_fetch,
        vec![analysed.clone()],
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(draft_forever(
        desk.drafter,
        desk.sla,
        roster.clone(),
        analysed,
        stop_rx.clone(),
    )));
    if desk.config.retention.raw_mail_days > 0 {
        tasks.push(tokio::spawn(retention_forever(
            store.clone(),
            desk.config.retention.raw_mail_days,
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(index_backlog(store.clone(), stop_rx.clone())));
    if desk.config.notify.enabled {
        tasks.push(tokio::spawn(notify_forever(
            desk.notifier,
            Duration::from_secs(desk.config.notify.check_secs.max(1)),
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(send_forever(
        desk.outbox,
        desk.send_now,
        stop_rx.clone(),
    )));
    for watcher in watchers {
        tasks.push(match watcher {
            Watch::ImapFolder(folder) => {
                let folder: Arc<FolderWatcher> = Arc::from(folder);
                tokio::spawn(while_leased(
                    store.clone(),
                    roster.clone(),
                    folder.lease_name(),
                    stop_rx.clone(),
                    move |stop| {
                        let folder = folder.clone();
                        async move { folder.run(stop).await }
                    },
                ))
            }
            Watch::Maildir { maildir, interval } => {
                let filer: Arc<dyn Filer> = Arc::new(desk.pipeline.clone());
                let filed = filed.clone();
                tokio::spawn(while_leased(
                    store.clone(),
                    roster.clone(),
                    format!("maildir {}", maildir.root.display()),
                    stop_rx.clone(),
                    move |stop| {
                        crate::mailbox::maildir::watch(
                            maildir.clone(),
                            interval,
                            filer.clone(),
                            filed.clone(),
                            stop,
                        )
                    },
                ))
            }
        });
    }
    // Under systemd (Type=notify): ready now that the store is migrated,
    // the web desk listens and every watcher runs. Elsewhere a no-op.
    notify_service_manager(&[sd_notify::NotifyState::Ready]);
    if let Some(period) = sd_notify::watchdog_enabled() {
        tasks.push(tokio::spawn(watchdog_forever(period, stop_rx.clone())));
    }
    stop.await;
    tracing::info!("shutting down: finishing the mail in hand");
    notify_service_manager(&[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    for t in tasks {
        t.await??;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Opt-in retention: once a minute after the start, then once a day, the
/// raw mails of cases closed longer than `days` are removed. Every instance
/// may do it; the second finds nothing left.
async fn retention_forever(store: Store, days: u32, mut stop: watch::Receiver<bool>) -> Result<()> {
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return Ok(()),
        }
        wait = Duration::from_secs(24 * 3600);
        let cutoff = casebot_store::now_ts() - i64::from(days) * 86_400;
        match store.retention(cutoff, true).await {
            Ok(r) if r.mails > 0 => tracing::info!(
                mails = r.mails,
                bytes = r.bytes,
                cases = r.cases.len(),
                days,
                "retention: raw mails of long-closed cases removed"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "retention failed; trying again tomorrow")
            }
        }
    }
}

/// Indexes for the full-text search the mails filed before the index
/// existed, newest first, a batch at a time so filing never waits long for
/// the store; new mail is indexed as it is filed. Every instance may do it:
/// the cursor moves past what one indexed, and writing a document twice
/// leaves one.
async fn index_backlog(store: Store, stop: watch::Receiver<bool>) -> Result<()> {
    let mut total = 0;
    while !*stop.borrow() {
        match store.index_backlog(500).await {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "search index backlog failed; the search misses older mail until a restart");
                return Ok(());
            }
        }
        tokio::task::yield_now().await;
    }
    if total > 0 {
        tracing::info!(mails = total, "search index: older mails indexed");
    }
    Ok(())
}

/// How often the drafting stage looks for cases due for the archive notice.
const ARCHIVE_SWEEP: Duration = Duration::from_secs(600);

/// Tells systemd (through `NOTIFY_SOCKET`) how the service is doing.
fn notify_service_manager(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// Pings systemd's watchdog at half its period while the runtime runs: a
/// runtime that stops scheduling stops the pings, and systemd restarts the
/// service.
async fn watchdog_forever(period: Duration, mut stop: watch::Receiver<bool>) -> Result<()> {
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tokio::select! {
            _ = tick.tick() => notify_service_manager(&[sd_notify::NotifyState::Watchdog]),
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// One queue of the analysis stage: reads (or fetches) every queued mail,
/// then wakes the stages after it, then waits to be woken (or a few
/// seconds). A store error is logged once and retried.
async fn analyse_forever(
    worker: Worker,
    queue: AnalysisQueue,
    wake: Arc<Notify>,
    then: Vec<Arc<Notify>>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let what = match queue {
        AnalysisQueue::Read => "reading logs",
        AnalysisQueue::Fetch => "fetching links",
    };
    let mut failing = false;
    let health = crate::telemetry::metrics().loop_started(match queue {
        AnalysisQueue::Read => "analysis",
        AnalysisQueue::Fetch => "analysis_links",
    });
    loop {
        let started = std::time::Instant::now();
        let pass = match queue {
            AnalysisQueue::Read => worker.run_pending().await,
            AnalysisQueue::Fetch => worker.run_fetches().await,
        };
        health.pass(pass.is_ok());
        match pass {
            Ok(counts) => {
                if failing {
                    tracing::info!("analysis ({what}) works again");
                }
                failing = false;
                if counts.analysed + counts.failed > 0 {
                    tracing::info!(
                        analysed = counts.analysed,
                        failed = counts.failed,
                        ms = started.elapsed().as_millis() as u64,
                        "analysis stage ran ({what})"
                    );
                }
                for next in &then {
                    next.notify_one();
                }
            }
            Err(e) if !failing => {
                tracing::error!(error = %format!("{e:#}"), "analysis ({what}) failed; retrying");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// The drafting stage and the SLA snapshots: re-decides the drafts of every
/// case that changed, then waits for the next analysis (or a few seconds).
/// A store error is logged once and retried.
async fn draft_forever(
    drafter: Arc<Drafter>,
    sla: Arc<SlaSnapshots>,
    roster: Arc<Roster>,
    analysed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut failing = false;
    // The drafting stage follows the event log with one shared cursor: only
    // the instance holding this lease drafts. Analysis is claimed per mail
    // and runs on every instance.
    let mut drafting_lease = drafter.store().lease(leases::DRAFTING);
    let mut drafting = false;
    let health = crate::telemetry::metrics().loop_started("drafting");
    // Waits are measured in business days: a sweep every few minutes is
    // plenty, and the first one runs at the start.
    let mut next_archive_sweep = std::time::Instant::now();
    loop {
        let pass = async {
            let started = std::time::Instant::now();
            let holds = drafting_lease.hold().await?;
            if holds != drafting {
                tracing::info!(
                    drafts = holds,
                    "drafting lease {}",
                    if holds { "taken" } else { "lost" }
                );
                drafting = holds;
                roster.set_held(leases::DRAFTING, holds);
            }
            let mut drafted = if holds {
                drafter.run().await?
            } else {
                Default::default()
            };
            if holds && std::time::Instant::now() >= next_archive_sweep {
                drafted.created += drafter
                    .propose_archives(sla.policies(), chrono::Utc::now())
                    .await? as u64;
                next_archive_sweep = std::time::Instant::now() + ARCHIVE_SWEEP;
            }
            sla.refresh().await?;
            anyhow::Ok((drafted, started.elapsed().as_millis() as u64))
        };
        let pass = pass.await;
        health.pass(pass.is_ok());
        match pass {
            Ok((drafted, drafting_ms)) => {
                if failing {
                    tracing::info!("drafting works again");
                }
                failing = false;
                if drafted.created + drafted.updated + drafted.withdrawn > 0 {
                    tracing::info!(
                        created = drafted.created,
                        updated = drafted.updated,
                        withdrawn = drafted.withdrawn,
                        ms = drafting_ms,
                        "drafting stage ran"
                    );
                }
            }
            Err(e) if !failing => {
                tracing::error!(error = %format!("{e:#}"), "drafting failed; retrying");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = analysed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// The sender: every two seconds, sends what engineers approved (from any
/// process) and what is due for a retry. A send in progress finishes before
/// the process stops.
async fn send_forever(
    outbox: Outbox,
    send_now: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut failing = false;
    let health = crate::telemetry::metrics().loop_started("outbox");
    loop {
        let pass = outbox.send_due().await;
        health.pass(pass.is_ok());
        match pass {
            Ok(counts) => {
                if failing {
                    tracing::info!("the sender works again");
                }
                failing = false;
                if counts.sent + counts.retrying + counts.failed + counts.recovered > 0 {
                    tracing::info!(
                        sent = counts.sent,
                        retrying = counts.retrying,
                        failed = counts.failed,
                        recovered = counts.recovered,
                        "sender ran"
                    );
                }
            }
            Err(e) if !failing => {
                tracing::error!(error = %format!("{e:#}"), "sender failed; retrying");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = send_now.notified() => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// The notification stage: every two seconds it queues the notices of new
/// events and sends what is due; every `check_every` it looks at the SLA and
/// the mailboxes too. Every instance may run it: a notice is queued once per
/// person, channel and key, and each is claimed by one sender. A stop waits
/// for the messages in hand.
async fn notify_forever(
    notifier: Arc<Notifier>,
    check_every: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let health = crate::telemetry::metrics().loop_started("notify");
    let mut failing = false;
    let mut last_check: Option<std::time::Instant> = None;
    loop {
        let check = last_check.is_none_or(|t| t.elapsed() >= check_every);
        let pass = async {
            let mut queued = notifier.queue_events().await?;
            if check {
                queued += notifier.queue_checks().await?;
            }
            anyhow::Ok((queued, notifier.deliver_due().await?))
        }
        .await;
        health.pass(pass.is_ok());
        match pass {
            Ok((queued, delivered)) => {
                if check {
                    last_check = Some(std::time::Instant::now());
                }
                if failing {
                    tracing::info!("notifications work again");
                }
                failing = false;
                if queued + delivered.notices + delivered.retried + delivered.failed > 0 {
                    tracing::info!(
                        queued,
                        messages = delivered.messages,
                        notices = delivered.notices,
                        retrying = delivered.retried,
                        failed = delivered.failed,
                        "notifications ran"
                    );
                }
            }
            Err(e) if !failing => {
                tracing::error!(error = %format!("{e:#}"), "notifications failed; retrying");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// SIGINT and SIGTERM, listened to from the moment this is made: create it
/// first thing, so a stop during start-up is a clean stop too.
pub struct Shutdown {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    pub fn listen() -> Result<Shutdown> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Shutdown {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Completes at the first SIGINT or SIGTERM.
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
