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
pub mod events;
pub mod extract;
#[cfg(feature = "download")]
pub mod fetch;
pub mod fuzzing;
pub mod logs;
pub mod outlook;
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

/// The step for a WindowsUpdate.etl that only Windows can decode.
const ETL_STEP: &str = "decode-windowsupdate-etl";

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
        let mut walker = self.walker();
        walker.text(name, text);
        walker.finish()
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

    /// Steps that follow from what was sent rather than from what failed: an
    /// ETW trace is answered with the command that decodes it, unless the
    /// decoded log is there already.
    fn add_collection_steps(&self, conclusion: &mut Conclusion, items: &[Item]) {
        let has_etl = items.iter().any(|i| i.kind == logs::ETL_TRACE);
        let has_wu_log = items
            .iter()
            .any(|i| i.kind == logs::LogKind::WindowsUpdate.as_str());
        if !has_etl || has_wu_log || conclusion.next_steps.iter().any(|s| s.id == ETL_STEP) {
            return;
        }
        if let Some(step) = self.rules.steps.get(ETL_STEP) {
            conclusion.next_steps.insert(
                0,
                conclude::NextStep {
                    id: step.id.clone(),
                    title: step.title.get(self.lang).to_string(),
                    text: step.text.get(self.lang).to_string(),
                },
            );
        }
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
        self.add_collection_steps(&mut conclusion, &bundle.items);
        if let Some(root) = conclusion.root_cause.as_mut()
            && root.class == "unknown"
        {
            root.detail = Some(unknown_detail(
                root,
                &conclusion.code_details,
                &bundle.items,
                self.lang,
            ));
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

/// The report of a failure no rule could classify: the log and line, the
/// failing operation, the code, which logs were read and which are missing.
fn unknown_detail(
    root: &conclude::RootCause,
    codes: &[codes::Code],
    items: &[Item],
    lang: Lang,
) -> String {
    let decisive = root.evidence.first();
    let place = decisive
        .map(|e| match &e.time {
            Some(t) => format!("{}:{} ({t})", e.file, e.line),
            None => format!("{}:{}", e.file, e.line),
        })
        .unwrap_or_default();
    let operation = decisive
        .and_then(|e| failing_operation(&e.text, lang))
        .unwrap_or_else(|| root.rule.clone());
    let code = codes
        .first()
        .map(|c| match &c.name {
            Some(name) => format!("{} ({name})", c.code),
            None => c.code.clone(),
        })
        .unwrap_or_else(|| "-".to_string());
    let read: std::collections::BTreeSet<&str> = items
        .iter()
        .filter(|i| i.status == bundle::ItemStatus::Scanned)
        .filter_map(|i| logs::LogKind::parse(&i.kind))
        .map(|k| k.as_str())
        .collect();
    let wanted = [
        (logs::LogKind::Cbs, "CBS.log + CbsPersist_*"),
        (logs::LogKind::Dism, "dism.log"),
        (
            logs::LogKind::WindowsUpdate,
            "WindowsUpdate.log (Get-WindowsUpdateLog)",
        ),
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(k, _)| !read.contains(k.as_str()))
        .map(|(_, what)| *what)
        .collect();
    let read = read.into_iter().collect::<Vec<_>>().join(", ");
    match lang {
        Lang::Zh | Lang::ZhTw => {
            let mut text = format!(
                "未能归入已知原因类别。失败出现在 {place}：{operation}，错误码 {code}。已读取的日志：{read}。"
            );
            if missing.is_empty() {
                text.push_str(
                    "请在失败时间点前后查看上述日志的完整内容，并确认该错误码对应的组件。",
                );
            } else {
                text.push_str(&format!("请补充收集：{}。", missing.join("、")));
            }
            text
        }
        Lang::En => {
            let mut text = format!(
                "Not a known class. The failure is at {place}: {operation}, code {code}. Logs read: {read}."
            );
            if missing.is_empty() {
                text.push_str(
                    " Read these logs in full around the failure and find the component the code belongs to.",
                );
            } else {
                text.push_str(&format!(" Collect next: {}.", missing.join("; ")));
            }
            text
        }
    }
}

/// What a failure line says failed: `Failed to …`, an event's provider and
/// id, or the message after the line's head.
fn failing_operation(line: &str, lang: Lang) -> Option<String> {
    static FAILED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)(failed (?:to |while |in )?[^\[\]\.;:,()]{3,80})")
            .expect("static regex")
    });
    static EVENT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"EVENT (\S+) (\S+) (\d+):").expect("static regex")
    });
    if let Some(c) = EVENT.captures(line) {
        return Some(match lang {
            Lang::Zh | Lang::ZhTw => format!("{} 日志中 {} 的事件 {}", &c[1], &c[2], &c[3]),
            Lang::En => format!("event {} of {} ({})", &c[3], &c[2], &c[1]),
        });
    }
    if let Some(c) = FAILED.captures(line) {
        return Some(c[1].trim().to_string());
    }
    let head = logs::parse_head(line);
    let message = line.get(head.message_start..)?.trim();
    (!message.is_empty()).then(|| message.chars().take(100).collect())
}
