//! The process's own counters and latency histograms, for `/metrics`.
//!
//! Counters and histograms live in memory and are bumped where the work
//! happens, so a scrape costs a few microseconds however large the store
//! is. They are per process, as Prometheus expects: each `casebot serve`
//! instance is scraped on its own, and a restart starts them from zero
//! (`rate()` and `increase()` handle that). Gauges (open cases, queues,
//! mailbox states) are set at scrape time from state the daemon already
//! follows; see `web::metrics`.
//!
//! One registry per process, reached through [`metrics()`]: the stages that
//! count are many and deep, and a counter is per process by definition.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// A metric's labels: fixed names, values from the data.
pub type Labels = Vec<(&'static str, String)>;

/// What happened to a draft, as `casebot_drafts_total{event}` counts it.
#[derive(Debug, Clone, Copy)]
pub enum DraftEvent {
    Created,
    Replaced,
    Approved,
    Rejected,
    Sent,
    SendFailed,
}

impl DraftEvent {
    const ALL: [DraftEvent; 6] = [
        DraftEvent::Created,
        DraftEvent::Replaced,
        DraftEvent::Approved,
        DraftEvent::Rejected,
        DraftEvent::Sent,
        DraftEvent::SendFailed,
    ];

    fn as_str(self) -> &'static str {
        match self {
            DraftEvent::Created => "created",
            DraftEvent::Replaced => "replaced",
            DraftEvent::Approved => "approved",
            DraftEvent::Rejected => "rejected",
            DraftEvent::Sent => "sent",
            DraftEvent::SendFailed => "send_failed",
        }
    }
}

/// The stage whose latency a histogram measures.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// Parsing and storing one batch of mail.
    Filing,
    /// Reading one mail's logs.
    Analysis,
    /// Deciding and rendering one case's draft.
    Drafting,
    /// One delivery attempt of an approved reply.
    Send,
    /// From an IDLE wake-up to the new mail being filed.
    IdleToFiled,
}

/// Every counter, histogram and scrape-time gauge of the process.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    mails: Family<Labels, Counter>,
    analyses: Family<Labels, Counter>,
    drafts: Family<Labels, Counter>,
    imap_reconnects: Family<Labels, Counter>,
    imap_auth_failures: Family<Labels, Counter>,
    notifications: Family<Labels, Counter>,
    filing: Histogram,
    analysis: Histogram,
    drafting: Histogram,
    send: Histogram,
    idle_to_filed: Histogram,
    /// Set by the scrape: open cases by status and priority.
    pub open_cases: Family<Labels, Gauge>,
    /// Set by the scrape: open cases by priority and SLA urgency.
    pub sla_cases: Family<Labels, Gauge>,
    /// Set by the scrape: work waiting, by queue.
    pub queue_length: Family<Labels, Gauge>,
    /// Set by the scrape: mail kept in quarantine, not replayed.
    pub quarantined: Gauge,
    /// Set by the scrape: each watched mailbox folder's state (one-hot).
    pub mailbox_state: Family<Labels, Gauge>,
    /// The daemon's loops, for `/readyz`.
    loops: Mutex<BTreeMap<String, LoopHealth>>,
}

/// Keeps a loop in `/readyz` while it runs.
#[derive(Debug)]
pub struct LoopGuard {
    telemetry: &'static Telemetry,
    name: String,
}

impl LoopGuard {
    /// The loop ended a pass, well or not.
    pub fn pass(&self, ok: bool) {
        self.telemetry.loop_pass(&self.name, ok);
    }
}

impl Drop for LoopGuard {
    fn drop(&mut self) {
        self.telemetry.loops_mut().remove(&self.name);
    }
}

/// How one of the daemon's loops is doing.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopHealth {
    /// When its last pass ended well; `None` before the first.
    pub last_ok: Option<Instant>,
    /// Since when its passes fail, while they do.
    pub failing_since: Option<Instant>,
}

/// The process's telemetry.
pub fn metrics() -> &'static Telemetry {
    static TELEMETRY: LazyLock<Telemetry> = LazyLock::new(Telemetry::new);
    &TELEMETRY
}

/// 1 ms to about 65 s, in factors of four: the range of every stage.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 9))
}

impl Telemetry {
    fn new() -> Self {
        let mut t = Telemetry {
            registry: Registry::default(),
            mails: Family::default(),
            analyses: Family::default(),
            drafts: Family::default(),
            imap_reconnects: Family::default(),
            imap_auth_failures: Family::default(),
            notifications: Family::default(),
            filing: latency(),
            analysis: latency(),
            drafting: latency(),
            send: latency(),
            idle_to_filed: latency(),
            open_cases: Family::default(),
            sla_cases: Family::default(),
            queue_length: Family::default(),
            quarantined: Gauge::default(),
            mailbox_state: Family::default(),
            loops: Mutex::default(),
        };
        // Every label value known in advance starts at zero, so a series
        // exists (and `rate()` works) before its first event.
        for result in ["filed", "duplicate", "quarantined", "failed"] {
            let _ = t.mails.get_or_create(&vec![("result", result.to_string())]);
        }
        for outcome in ["failure", "success", "unknown", "empty", "failed"] {
            let _ = t
                .analyses
                .get_or_create(&vec![("outcome", outcome.to_string())]);
        }
        for event in DraftEvent::ALL {
            let _ = t
                .drafts
                .get_or_create(&vec![("event", event.as_str().to_string())]);
        }
        // `process_*` is the convention every client library follows,
        // unprefixed; everything else is casebot's own.
        t.registry
            .register_collector(Box::new(crate::process::ProcessCollector));
        let own = t.registry.sub_registry_with_prefix("casebot");
        own.register(
            "mails",
            "Mails taken in, by result (filed, duplicate, quarantined, failed)",
            t.mails.clone(),
        );
        own.register(
            "analyses",
            "Mail analyses ended, by outcome (the root-cause outcome, empty or failed)",
            t.analyses.clone(),
        );
        own.register(
            "notifications",
            "Notices to the desk's people, by channel and result (sent, retry, failed)",
            t.notifications.clone(),
        );
        own.register(
            "drafts",
            "Draft events: created, replaced, approved, rejected, sent, send_failed",
            t.drafts.clone(),
        );
        own.register(
            "imap_reconnects",
            "IMAP connections lost and tried again, by mailbox",
            t.imap_reconnects.clone(),
        );
        own.register(
            "imap_auth_failures",
            "IMAP logins the server refused, by mailbox",
            t.imap_auth_failures.clone(),
        );
        let histograms = [
            (
                "filing_duration",
                "Parsing and storing one batch of mail",
                &t.filing,
            ),
            ("analysis_duration", "Reading one mail's logs", &t.analysis),
            (
                "draft_duration",
                "Deciding and rendering one case's new draft",
                &t.drafting,
            ),
            (
                "send_duration",
                "One delivery attempt of an approved reply",
                &t.send,
            ),
            (
                "imap_idle_to_filed",
                "From an IMAP IDLE wake-up to its new mail being filed",
                &t.idle_to_filed,
            ),
        ];
        for (name, help, histogram) in histograms {
            own.register_with_unit(name, help, Unit::Seconds, histogram.clone());
        }
        own.register(
            "open_cases",
            "Open cases by status and priority",
            t.open_cases.clone(),
        );
        own.register(
            "sla_open_cases",
            "Open cases by priority and SLA urgency (breached, at_risk, on_track, paused)",
            t.sla_cases.clone(),
        );
        own.register(
            "queue_length",
            "Work waiting: analysis, analysis_links, approval (pending drafts), outbox (approved, unsent)",
            t.queue_length.clone(),
        );
        own.register(
            "quarantined",
            "Mails kept in quarantine and not replayed",
            t.quarantined.clone(),
        );
        own.register(
            "mailbox_state",
            "Each watched IMAP folder's state; 1 for the one it is in",
            t.mailbox_state.clone(),
        );
        own.register(
            "build",
            "The running casebot's version and commit",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("commit", crate::COMMIT.to_string()),
            ]),
        );
        t
    }

    /// The registry, for the encoder.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn mail(&self, result: casebot_core::mail::filing::Status) {
        let result = match result {
            casebot_core::mail::filing::Status::Imported => "filed",
            casebot_core::mail::filing::Status::Duplicate => "duplicate",
            casebot_core::mail::filing::Status::Quarantined => "quarantined",
            casebot_core::mail::filing::Status::Failed => "failed",
        };
        self.mails
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
    }

    pub fn analysis(&self, outcome: &str, took: Duration) {
        self.analyses
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
        self.analysis.observe(took.as_secs_f64());
    }

    pub fn draft(&self, event: DraftEvent) {
        self.drafts
            .get_or_create(&vec![("event", event.as_str().to_string())])
            .inc();
    }

    pub fn imap_reconnect(&self, mailbox: &str) {
        self.imap_reconnects
            .get_or_create(&vec![("mailbox", mailbox.to_string())])
            .inc();
    }

    /// `count` notices to one channel ended `result` (sent, retry, failed).
    pub fn notification(&self, channel: &str, result: &str, count: usize) {
        self.notifications
            .get_or_create(&vec![
                ("channel", channel.to_string()),
                ("result", result.to_string()),
            ])
            .inc_by(count as u64);
    }

    pub fn imap_auth_failure(&self, mailbox: &str) {
        self.imap_auth_failures
            .get_or_create(&vec![("mailbox", mailbox.to_string())])
            .inc();
    }

    pub fn took(&self, stage: Stage, took: Duration) {
        let histogram = match stage {
            Stage::Filing => &self.filing,
            Stage::Analysis => &self.analysis,
            Stage::Drafting => &self.drafting,
            Stage::Send => &self.send,
            Stage::IdleToFiled => &self.idle_to_filed,
        };
        histogram.observe(took.as_secs_f64());
    }

    /// A daemon loop starts: `/readyz` waits for its first good pass, and
    /// forgets the loop when the guard is dropped (the loop ended, or handed
    /// its lease to another instance).
    pub fn loop_started(&'static self, name: &str) -> LoopGuard {
        self.loops_mut()
            .insert(name.to_string(), LoopHealth::default());
        LoopGuard {
            telemetry: self,
            name: name.to_string(),
        }
    }

    fn loop_pass(&self, name: &str, ok: bool) {
        let now = Instant::now();
        let mut loops = self.loops_mut();
        let health = loops.entry(name.to_string()).or_default();
        if ok {
            health.last_ok = Some(now);
            health.failing_since = None;
        } else if health.failing_since.is_none() {
            health.failing_since = Some(now);
        }
    }

    /// Every loop of this process and how it is doing.
    pub fn loops(&self) -> BTreeMap<String, LoopHealth> {
        self.loops_mut().clone()
    }

    fn loops_mut(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, LoopHealth>> {
        self.loops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The whole exposition in the Prometheus text format (0.0.4), which
    /// every scraper and `promtool` read.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
