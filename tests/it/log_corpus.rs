//! The analyser scored on real servicing-log excerpts people posted publicly
//! (`tests/corpus/logs`, labelled in `labels.toml` from each post and its
//! resolution). Every excerpt is analysed on its own, under its own file name,
//! as an engineer would attach it; the test prints a line per miss and the
//! accuracy of each field, and fails when a field falls below its floor.
//!
//! Scoring, per field:
//! - outcome: `success` or `failure` as labelled (a bare `unknown` is a miss);
//! - class: the root-cause class; for an excerpt where nothing failed, no
//!   root cause at all;
//! - codes: the first decisive code is one of the labelled ones and every
//!   labelled code is reported; where none is labelled, none is reported;
//! - KB, package, component, file and next step: scored only where labelled.

use std::collections::BTreeMap;
use std::path::Path;

use casebot_analysis::conclude::Outcome;
use casebot_analysis::{Analyzer, Report};
use casebot_app::config::Config;
use serde::Deserialize;

use super::repo;

#[derive(Debug, Deserialize)]
struct Labels {
    excerpt: Vec<Label>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Label {
    file: String,
    source: String,
    licence: String,
    outcome: String,
    #[serde(default)]
    codes: Vec<String>,
    kb: Option<String>,
    package: Option<String>,
    component: Option<String>,
    failing_file: Option<String>,
    class: Option<String>,
    next_step: Option<String>,
    note: String,
}

fn analyzer() -> Analyzer {
    let mut c = Config::default();
    c.analysis.rules_dir = repo().join("rules");
    c.analysis.language = "en".into();
    Analyzer::new(&c.analysis, &c.base_dir).unwrap_or_else(|e| panic!("{e}"))
}

/// A code as a number, so `0x800F081F`, `0x800f081f` and `800f081f` agree.
fn code_value(code: &str) -> Option<u32> {
    let hex = code
        .trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X");
    u32::from_str_radix(hex, 16).ok()
}

fn same_text(reported: Option<&str>, labelled: &str) -> bool {
    reported.is_some_and(|r| {
        let (r, l) = (r.to_lowercase(), labelled.to_lowercase());
        r == l || r.contains(&l) || l.contains(&r)
    })
}

/// One field's tally.
#[derive(Default)]
struct Tally {
    right: usize,
    total: usize,
}

impl Tally {
    fn score(&mut self, right: bool) -> bool {
        self.total += 1;
        self.right += usize::from(right);
        right
    }
    fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            100.0 * self.right as f64 / self.total as f64
        }
    }
}

fn analyze_one(analyzer: &Analyzer, dir: &Path, name: &str) -> Report {
    let work = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join(name), work.path().join(name)).unwrap();
    analyzer.analyze_path(work.path())
}

#[test]
fn public_log_corpus_is_labelled_and_scored() {
    let dir = repo().join("tests/corpus/logs");
    let labels: Labels =
        toml::from_str(&std::fs::read_to_string(dir.join("labels.toml")).unwrap()).unwrap();

    // The corpus itself: every file labelled once, every label has a file,
    // a source and a licence note, and the mix the corpus promises.
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "labels.toml" && n != "README.md")
        .collect();
    files.sort();
    let mut labelled: Vec<String> = labels.excerpt.iter().map(|l| l.file.clone()).collect();
    labelled.sort();
    assert_eq!(files, labelled, "every excerpt has exactly one label");
    for l in &labels.excerpt {
        assert!(l.source.starts_with("https://"), "{}: source", l.file);
        assert!(!l.licence.is_empty() && !l.note.is_empty(), "{}", l.file);
        assert!(
            matches!(l.outcome.as_str(), "success" | "failure"),
            "{}: outcome {}",
            l.file,
            l.outcome
        );
        assert_eq!(l.outcome == "success", l.class.is_none(), "{}", l.file);
    }
    let succeeded = labels
        .excerpt
        .iter()
        .filter(|l| l.outcome == "success")
        .count();
    let long = labels
        .excerpt
        .iter()
        .filter(|l| {
            std::fs::read_to_string(dir.join(&l.file))
                .map(|t| t.lines().count() >= 80)
                .unwrap_or(false)
        })
        .count();
    assert!(
        labels.excerpt.len() >= 60,
        "{} excerpts",
        labels.excerpt.len()
    );
    assert!(succeeded >= 15, "{succeeded} excerpts where nothing failed");
    assert!(long >= 10, "{long} excerpts of 80 lines or more");

    let analyzer = analyzer();
    let mut tally: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut misses: Vec<String> = Vec::new();
    let mut success_called_failure = 0;
    for l in &labels.excerpt {
        let report = analyze_one(&analyzer, &dir, &l.file);
        let c = &report.conclusion;
        let mut miss = |field: &'static str, right: bool, got: String| {
            if !tally.entry(field).or_default().score(right) {
                misses.push(format!("{:<52} {field:<9} got {got}", l.file));
            }
        };

        let outcome = match c.outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        };
        miss("outcome", outcome == l.outcome, outcome.to_string());
        if l.outcome == "success" && outcome == "failure" {
            success_called_failure += 1;
        }

        let class = c.root_cause.as_ref().map(|r| r.class.as_str());
        miss(
            "class",
            class == l.class.as_deref(),
            format!("{class:?}, labelled {:?}", l.class),
        );

        let reported: Vec<u32> = c.error_codes.iter().filter_map(|c| code_value(c)).collect();
        let wanted: Vec<u32> = l.codes.iter().filter_map(|c| code_value(c)).collect();
        let codes_right = if wanted.is_empty() {
            reported.is_empty()
        } else {
            reported.first().is_some_and(|f| wanted.contains(f))
                && wanted.iter().all(|w| reported.contains(w))
        };
        miss(
            "codes",
            codes_right,
            format!("{:?}, labelled {:?}", c.error_codes, l.codes),
        );

        if let Some(kb) = &l.kb {
            miss(
                "kb",
                c.kbs.iter().any(|k| k.eq_ignore_ascii_case(kb)),
                format!("{:?}", c.kbs),
            );
        }
        if let Some(package) = &l.package {
            miss(
                "package",
                same_text(c.failing_package.as_deref(), package),
                format!("{:?}", c.failing_package),
            );
        }
        if let Some(component) = &l.component {
            miss(
                "component",
                same_text(c.failing_component.as_deref(), component),
                format!("{:?}", c.failing_component),
            );
        }
        if let Some(file) = &l.failing_file {
            miss(
                "file",
                same_text(c.failing_file.as_deref(), file),
                format!("{:?}", c.failing_file),
            );
        }
        if let Some(step) = &l.next_step {
            miss(
                "next_step",
                c.next_steps.iter().any(|s| &s.id == step),
                format!(
                    "{:?}",
                    c.next_steps
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                ),
            );
        }
    }

    println!("corpus: {} excerpts", labels.excerpt.len());
    for m in &misses {
        println!("miss  {m}");
    }
    for (field, t) in &tally {
        println!(
            "score {field:<9} {:>5.1} %  ({}/{})",
            t.percent(),
            t.right,
            t.total
        );
    }

    // Floors: the figures the analyser reaches today (docs/rules-and-templates.md, "Log analysis
    // on real logs"), so that a change that loses ground fails here.
    let floors = [
        ("outcome", 95.0),
        ("class", 90.0),
        ("codes", 90.0),
        ("kb", 80.0),
        ("package", 75.0),
        ("component", 70.0),
        ("file", 75.0),
        ("next_step", 90.0),
    ];
    for (field, floor) in floors {
        let got = tally.get(field).map_or(100.0, Tally::percent);
        assert!(got >= floor, "{field}: {got:.1} % is below {floor} %");
    }
    assert_eq!(
        success_called_failure, 0,
        "an excerpt where nothing failed was reported as a failure"
    );
}
