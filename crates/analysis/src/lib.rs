//! Log analysis: from any attached or linked log to a root cause and next steps.
//!
//! - [`rules`]: the rules folder (rules, classes, next steps), loaded and checked;
//! - [`logs`]: what a file is and how its lines begin;
//! - [`scan`]: the streaming scanner that turns a log into findings;
//! - [`codes`] and [`extract`]: codes, KBs, packages, components on a line;
//! - [`conclude`]: findings → outcome, decisive error, class, next steps;
//! - [`bundle`]: zips, cabs, folders and attachments within bounds;
//! - [`fetch`]: the bounded download client for links in mail (the
//!   `download` feature);
//! - [`config`]: the `[analysis]` settings.
//!
//! Everything but `fetch` is synchronous and free of the store: bytes in, a
//! [`Report`] out. The stage that analyses new messages lives in the
//! application (`casebot_app::stages::analysis`).

pub mod bundle;
pub mod cabinet;
pub mod codes;
pub mod conclude;
pub mod config;
pub mod extract;
#[cfg(feature = "download")]
pub mod fetch;
pub mod fuzzing;
pub mod logs;
pub mod rules;
pub mod scan;

use std::path::Path;

use std::sync::Arc;

use serde::Serialize;

pub use config::{AnalysisConfig, DownloadConfig};

use casebot_core::domain::Lang;

use bundle::{BundleScan, Item, Limits, Walker};
use conclude::{ChainLimits, Conclusion};
use rules::{Role, RuleErrors, RuleSet, Severity};
use scan::Finding;

/// The root-cause vocabulary (DOMAIN.md); `classes.toml` must define each.
pub const CLASSES: &[&str] = &[
    "component_store_corruption",
    "source_files_missing",
    "access_denied_or_service_disabled",
    "file_in_use_or_av_lock",
    "security_software_block",
    "reboot_pending",
    "servicing_stack_outdated",
    "insufficient_disk_space",
    "reserved_partition_full",
    "advanced_installer_failure",
    "driver_install_failure",
    "servicing_timeout_hang",
    "not_applicable",
    "wu_network_or_proxy",
    "wsus_server_config",
    "compatibility_block",
    "unknown",
];

/// Findings listed in a report (the evidence is always complete; this caps
/// the list of everything else).
const REPORT_FINDINGS: usize = 500;

/// The whole result of analysing a bundle.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub conclusion: Conclusion,
    /// Failure and success lines in reading order (noise and context left out).
    pub findings: Vec<Finding>,
    pub findings_total: usize,
    /// Lines matched by noise rules, which never count as a cause.
    pub noise_lines: u64,
    /// Every file looked at: scanned, skipped (not a log) or refused.
    pub items: Vec<Item>,
}

impl Report {
    /// Refused or unreadable items, as one line each.
    pub fn errors(&self) -> impl Iterator<Item = String> + '_ {
        self.items
            .iter()
            .filter(|i| i.status == bundle::ItemStatus::Error)
            .map(|i| format!("{}: {}", i.path, i.reason.as_deref().unwrap_or("error")))
    }

    pub fn scanned_logs(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.status == bundle::ItemStatus::Scanned && i.kind != "archive")
            .count()
    }
}

/// Rules plus limits: everything needed to analyse. Cheap to clone.
#[derive(Clone)]
pub struct Analyzer {
    pub rules: Arc<RuleSet>,
    pub limits: Limits,
    pub lang: Lang,
    pub chain: ChainLimits,
    #[cfg(feature = "download")]
    pub fetcher: fetch::Fetcher,
}

/// Why the analyser could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the rules in {dir} do not load:\n{errors}")]
    Rules { dir: String, errors: RuleErrors },
    #[cfg(feature = "download")]
    #[error("{0}")]
    Download(String),
}

impl Analyzer {
    /// The analyser `settings` describe; relative paths in them are
    /// resolved against `base_dir` (the config file's folder).
    pub fn new(settings: &AnalysisConfig, base_dir: &Path) -> Result<Analyzer, SetupError> {
        let (dir, loaded) = RuleSet::configured(settings, base_dir);
        let rules = loaded.map_err(|errors| SetupError::Rules {
            dir: dir.display().to_string(),
            errors,
        })?;
        Ok(Analyzer {
            rules: Arc::new(rules),
            limits: Limits::from_config(settings),
            lang: Lang::parse(&settings.language).unwrap_or(Lang::Zh),
            chain: ChainLimits {
                gap_secs: settings.chain_gap_secs as i64,
                ..ChainLimits::default()
            },
            #[cfg(feature = "download")]
            fetcher: fetch::Fetcher::new(&settings.download).map_err(SetupError::Download)?,
        })
    }

    pub fn walker(&self) -> Walker<'_> {
        Walker::new(&self.rules, self.limits)
    }

    /// A file, a folder or an archive on disk.
    pub fn analyze_path(&self, path: &Path) -> Report {
        let mut walker = self.walker();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        walker.path(path, &name);
        self.report(walker.finish())
    }

    /// Text pasted into a mail: every rule applies.
    pub fn scan_pasted(&self, name: &str, text: &str) -> BundleScan {
        let scan = scan::scan_text(
            &self.rules,
            name,
            text,
            Some(logs::LogKind::Text),
            self.limits.max_findings,
        );
        let item = Item::scanned(name, &scan);
        BundleScan {
            items: vec![item],
            scans: vec![scan],
            stopped: None,
        }
    }

    /// A link: checked, downloaded within bounds, then analysed like a file.
    #[cfg(feature = "download")]
    pub async fn analyze_url(&self, url: &str) -> Result<Report, fetch::FetchError> {
        let scan = self.scan_url(url).await?;
        Ok(self.report(scan))
    }

    #[cfg(feature = "download")]
    pub async fn scan_url(&self, url: &str) -> Result<BundleScan, fetch::FetchError> {
        let download = self.fetcher.fetch(url).await?;
        let this = self.clone();
        let name = download.name.clone();
        let len = download.bytes;
        tokio::task::spawn_blocking(move || {
            let mut walker = this.walker();
            walker.seekable_file(&name, download.file, len);
            walker.finish()
        })
        .await
        .map_err(|e| fetch::FetchError::Network(format!("analysis task failed: {e}")))
    }

    /// Draws the conclusion over everything scanned.
    pub fn report(&self, bundle: BundleScan) -> Report {
        let noise_lines = bundle.scans.iter().map(|s| s.noise).sum();
        let mut findings: Vec<Finding> =
            bundle.scans.into_iter().flat_map(|s| s.findings).collect();
        conclude::order(&mut findings);
        let mut conclusion = conclude::conclude(&findings, &self.rules, self.lang, self.chain);
        // Servicing logs in which nothing failed say so; text that is not a
        // servicing log (a mail's prose) says nothing at all.
        let saw_servicing_log = noise_lines > 0
            || findings.iter().any(|f| f.role != Role::Noise)
            || bundle.items.iter().any(|i| {
                i.status == bundle::ItemStatus::Scanned
                    && logs::LogKind::parse(&i.kind).is_some_and(|k| k != logs::LogKind::Text)
            });
        if conclusion.outcome == conclude::Outcome::Unknown && saw_servicing_log {
            conclusion.no_failure_found(self.lang);
        }
        let listed: Vec<Finding> = findings
            .into_iter()
            .filter(|f| {
                matches!(
                    f.role,
                    Role::Cause | Role::Wrapper | Role::Final | Role::Success
                )
            })
            .filter(|f| f.severity >= Severity::Warning || f.role == Role::Success)
            .collect();
        let findings_total = listed.len();
        // Keep the latest ones: the conclusion is drawn near the end.
        let skip = findings_total.saturating_sub(REPORT_FINDINGS);
        Report {
            conclusion,
            findings: listed.into_iter().skip(skip).collect(),
            findings_total,
            noise_lines,
            items: bundle.items,
        }
    }
}
