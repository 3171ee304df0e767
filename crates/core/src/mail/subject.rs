//! The partner's subject grammar, as a pure function over a subject line.
//!
//! ```text
//! Re: 回复: [案例号: CAS-08520-Q7Z9R6 ] % |P2|ICBC| title % 初次响应 CMIT:0001077
//! ^^^^^^^^^ ^^^^^^^^^^^^^^^^^^^^^^^^^   ^^^^^^^^^^^^^^^^^^  ^^^^^^^^ ^^^^^^^^^^^^
//! prefixes  case tag                    title with tags     stage    internal ref
//! ```
//!
//! Real mail mixes ASCII and full-width punctuation (`【案例号：…】`, `回复：`),
//! so matching runs on a copy where full-width forms are folded to ASCII. The
//! fold maps one char to one char, which lets [`ParsedSubject::base_subject`]
//! cut the prefixes off the *original* text: a reply must carry the partner's
//! subject exactly as it was, or the partner's system opens a new case.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::domain::Stage;

/// What the subject says about the case. Every field is optional: most mail
/// in the world does not follow the partner's grammar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ParsedSubject {
    /// Reply/forward prefixes in the order they stand (`["Re", "回复"]`).
    pub prefixes: Vec<String>,
    /// Normalised case number (`CAS-08268-Z0X4W9`).
    pub case_id: Option<String>,
    pub title: Option<String>,
    /// `P1`..`P4`, from the first pipe tag that is a priority.
    pub priority: Option<String>,
    /// The first pipe tag that is not the priority.
    pub customer: Option<String>,
    /// All pipe tags as written.
    pub tags: Vec<String>,
    pub stage: Option<String>,
    /// What the stage word means, in whatever language it was written.
    pub stage_kind: Option<Stage>,
    /// `CMIT:0001077`, spaces removed.
    pub internal_ref: Option<String>,
    /// KB numbers named anywhere in the subject (`KB5022286`).
    pub kbs: Vec<String>,
    /// The original subject without its reply prefixes.
    pub base_subject: String,
}

/// A configuration value that does not compile, named by its key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{key}: {message}")]
pub struct GrammarError {
    pub key: String,
    pub message: String,
}

/// The compiled grammar. Build once, parse many.
#[derive(Debug, Clone)]
pub struct SubjectGrammar {
    prefix: Regex,
    labelled_tag: Regex,
    any_tag: Regex,
    case_number_exact: Regex,
    case_number_anywhere: Regex,
    internal_ref: Regex,
    /// Each stage's words, one alternation per stage.
    stages: Vec<(Stage, Regex)>,
    /// Any stage word standing at the end of a text.
    stage_at_end: Regex,
    priority: Regex,
    kb: Regex,
}

fn alternation(words: &[String]) -> String {
    let mut words: Vec<&String> = words.iter().filter(|w| !w.trim().is_empty()).collect();
    // Longest first, so `Fwd` wins over `Fw` and `Case No` over `Case`.
    words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
    words
        .iter()
        .map(|w| regex::escape(&fold_width(w.trim())).replace(' ', r"\s*"))
        .collect::<Vec<_>>()
        .join("|")
}

/// A stage word as a pattern: case, hyphens and spaces between its words do
/// not matter (`Follow-up`, `follow up`, `FOLLOWUP`), and a Latin word
/// matches only whole.
fn stage_pattern(word: &str) -> String {
    let folded = fold_width(word.trim());
    let parts: Vec<String> = folded
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|p| !p.is_empty())
        .map(regex::escape)
        .collect();
    let body = parts.join(r"[\s\-]*");
    if folded.is_ascii() {
        format!(r"\b{body}\b")
    } else {
        body
    }
}

fn build(key: &str, pattern: &str) -> Result<Regex, GrammarError> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| GrammarError {
            key: key.to_string(),
            message: e.to_string(),
        })
}

impl SubjectGrammar {
    pub fn new(config: &GrammarConfig) -> Result<Self, GrammarError> {
        let case_number = config.case_number.trim();
        if case_number.is_empty() {
            return Err(GrammarError {
                key: "grammar.case_number".into(),
                message: "must not be empty".into(),
            });
        }
        // Validate the user's patterns on their own, so an error points at them.
        build("grammar.case_number", case_number)?;
        build("grammar.internal_ref", &config.internal_ref)?;
        let mut stages = Vec::new();
        let mut every_stage = Vec::new();
        for (stage, words) in config.stages.by_stage() {
            let patterns: Vec<String> = words
                .iter()
                .filter(|w| !w.trim().is_empty())
                .map(|w| stage_pattern(w))
                .collect();
            if patterns.is_empty() {
                continue;
            }
            let key = format!("grammar.stages.{}", stage.as_str());
            stages.push((stage, build(&key, &format!("(?:{})", patterns.join("|")))?));
            every_stage.extend(patterns);
        }
        // Longest first, so `案例重新分配` is not read as a shorter word.
        every_stage.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let stage_at_end = if every_stage.is_empty() {
            r"[^\s\S]".to_string()
        } else {
            format!(r"\s(?:{})\s*$", every_stage.join("|"))
        };
        let prefixes = alternation(&config.reply_prefixes);
        let labels = alternation(&config.case_labels);
        Ok(Self {
            prefix: build(
                "grammar.reply_prefixes",
                &format!(r"^\s*({prefixes})\s*(?:\[\d+\]|\(\d+\))?\s*:\s*"),
            )?,
            labelled_tag: build(
                "grammar.case_labels",
                &format!(r"\[\s*(?:{labels})\s*[:#]?\s*([^\[\]]{{1,60}}?)\s*\]"),
            )?,
            any_tag: build("grammar.case_number", r"\[([^\[\]]{1,60})\]")?,
            case_number_exact: build("grammar.case_number", &format!("^(?:{case_number})$"))?,
            case_number_anywhere: build(
                "grammar.case_number",
                &format!(r"(?:^|[^A-Za-z0-9_-])({case_number})(?:$|[^A-Za-z0-9_-])"),
            )?,
            internal_ref: build("grammar.internal_ref", &config.internal_ref)?,
            stages,
            stage_at_end: build("grammar.stages", &stage_at_end)?,
            priority: build("priority", r"^P\s*([1-9])$")?,
            kb: build("kb", r"KB\s?(\d{6,8})")?,
        })
    }

    /// Splits a decoded subject into its parts. Never fails: what does not
    /// match the grammar is simply absent.
    pub fn parse(&self, subject: &str) -> ParsedSubject {
        let folded = fold_width(subject);
        let mut out = ParsedSubject::default();

        // 1. Stacked reply/forward prefixes.
        let mut rest_start = 0;
        while let Some(m) = self.prefix.captures(&folded[rest_start..]) {
            let whole = m.get(0).map(|g| g.end()).unwrap_or(0);
            if whole == 0 {
                break;
            }
            out.prefixes.push(m[1].to_string());
            rest_start += whole;
        }
        let prefix_chars = folded[..rest_start].chars().count();
        out.base_subject = subject
            .chars()
            .skip(prefix_chars)
            .collect::<String>()
            .trim()
            .to_string();
        let rest = &folded[rest_start..];

        // 2. The case tag: a labelled bracket first, then any bracket holding a
        //    case number, then a bare case number.
        let mut after_tag = rest;
        let tag = self
            .labelled_tag
            .captures_iter(rest)
            .chain(self.any_tag.captures_iter(rest))
            .find_map(|c| {
                let candidate = compact_upper(&c[1]);
                let whole = c.get(0)?;
                self.case_number_exact
                    .is_match(&candidate)
                    .then(|| (candidate, whole.start(), whole.end()))
            });
        if let Some((case_id, start, end)) = tag {
            out.case_id = Some(case_id);
            after_tag = &rest[end..];
            // The partner's subject starts at its case tag: what a mail
            // gateway or a forward put before it ("[EXTERNAL] RE:") is not
            // the partner's and must not go back in a reply.
            if start > 0 {
                let skip = prefix_chars + rest[..start].chars().count();
                out.base_subject = subject
                    .chars()
                    .skip(skip)
                    .collect::<String>()
                    .trim()
                    .to_string();
            }
        } else if let Some(c) = self.case_number_anywhere.captures(rest)
            && let Some(g) = c.get(1)
        {
            // A bare number is part of a free-form subject: the title keeps it.
            out.case_id = Some(compact_upper(g.as_str()));
        }

        // 3. Title between `%…%`, the tail after it holds stage and reference.
        let (title_raw, tail) = match (after_tag.find('%'), after_tag.rfind('%')) {
            (Some(open), Some(close)) if close > open => {
                (&after_tag[open + 1..close], &after_tag[close + 1..])
            }
            (Some(open), _) => self.split_tail(&after_tag[open + 1..]),
            _ => self.split_tail(after_tag),
        };

        out.internal_ref = self.internal_ref.find(tail).map(|m| {
            m.as_str()
                .split_whitespace()
                .collect::<String>()
                .to_uppercase()
        });
        if let Some((stage, m)) = self
            .stages
            .iter()
            .filter_map(|(stage, re)| re.find(tail).map(|m| (*stage, m)))
            .min_by_key(|(_, m)| (m.start(), std::cmp::Reverse(m.len())))
        {
            out.stage = Some(m.as_str().to_string());
            out.stage_kind = Some(stage);
        }

        // 4. Pipe tags at the start of the title: `|P2|ICBC| title`.
        let title_trimmed = title_raw.trim();
        let title = if let Some(inner) = title_trimmed.strip_prefix('|') {
            match inner.rfind('|') {
                Some(last) => {
                    out.tags = inner[..last]
                        .split('|')
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                        .collect();
                    inner[last + 1..].trim()
                }
                None => inner.trim(),
            }
        } else {
            title_trimmed
        };
        for tag in &out.tags {
            match self.priority.captures(tag) {
                Some(p) if out.priority.is_none() => out.priority = Some(format!("P{}", &p[1])),
                _ if out.customer.is_none() && !self.priority.is_match(tag) => {
                    out.customer = Some(tag.clone())
                }
                _ => {}
            }
        }
        if !title.is_empty() {
            out.title = Some(title.to_string());
        }

        for c in self.kb.captures_iter(&folded) {
            let kb = format!("KB{}", &c[1]);
            if !out.kbs.contains(&kb) {
                out.kbs.push(kb);
            }
        }
        out
    }

    /// Distinct case numbers named anywhere in a text (a mail body), in order.
    pub fn case_numbers_in(&self, text: &str) -> Vec<String> {
        let folded = fold_width(text);
        let mut out: Vec<String> = Vec::new();
        for c in self.case_number_anywhere.captures_iter(&folded) {
            if let Some(g) = c.get(1) {
                let id = compact_upper(g.as_str());
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        out
    }

    /// Without a closing `%` the title runs until the internal reference or a
    /// stage word standing at the end.
    fn split_tail<'a>(&self, text: &'a str) -> (&'a str, &'a str) {
        let mut cut = text.len();
        if let Some(m) = self.internal_ref.find(text) {
            cut = m.start();
        }
        if let Some(m) = self.stage_at_end.find(&text[..cut]) {
            cut = m.start();
        }
        (&text[..cut], &text[cut..])
    }
}

/// Folds full-width ASCII forms, the ideographic space and CJK brackets to
/// ASCII, one char for one char.
pub fn fold_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            '【' | '〔' => '[',
            '】' | '〕' => ']',
            _ => c,
        })
        .collect()
}

/// A case number as written, without spaces, in upper case.
fn compact_upper(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase()
}

#[cfg(test)]
#[path = "subject_tests.rs"]
mod tests;

/// The partner's subject grammar. See `ingest::subject`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrammarConfig {
    /// Regex for a normalised case number (matched case-insensitively, after
    /// full-width characters are folded and spaces inside the tag removed).
    pub case_number: String,
    /// Labels that may stand before the case number inside the brackets.
    pub case_labels: Vec<String>,
    /// Reply and forward prefixes (a trailing `:` or `：` is implied).
    pub reply_prefixes: Vec<String>,
    /// The words the partner's system puts after the title, per stage.
    pub stages: StageWords,
    /// Regex for the partner's internal reference.
    pub internal_ref: String,
}

impl Default for GrammarConfig {
    fn default() -> Self {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
        Self {
            case_number: r"CAS-\d{5}-[A-Z0-9]{6}".into(),
            case_labels: words(&[
                "案例号",
                "案例號",
                "案例編號",
                "Case Number",
                "Case No.",
                "Case No",
                "Case ID",
                "Case #",
                "Case",
            ]),
            reply_prefixes: words(&[
                "Re", "回复", "回覆", "答复", "Fw", "Fwd", "转发", "轉寄", "AW", "WG", "SV", "VS",
            ]),
            stages: StageWords::default(),
            internal_ref: r"CMIT\s*:\s*\d+".into(),
        }
    }
}

impl GrammarConfig {
    /// Checks that every pattern compiles; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        SubjectGrammar::new(self)
            .map(drop)
            .map_err(|e| (e.key, e.message))
    }
}

/// `[grammar.stages]`: the words of each stage, in every language the
/// partner's system writes. Case, hyphens and spaces inside a word do not
/// matter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StageWords {
    pub first_response: Vec<String>,
    pub follow_up: Vec<String>,
    pub reassigned: Vec<String>,
    pub escalated: Vec<String>,
    pub closed: Vec<String>,
}

impl StageWords {
    pub fn by_stage(&self) -> [(Stage, &[String]); 5] {
        [
            (Stage::FirstResponse, &self.first_response),
            (Stage::FollowUp, &self.follow_up),
            (Stage::Reassigned, &self.reassigned),
            (Stage::Escalated, &self.escalated),
            (Stage::Closed, &self.closed),
        ]
    }

    /// The stage a configured name (`first_response`) or word (初次响应,
    /// "First response") stands for.
    pub fn stage_of(&self, name_or_word: &str) -> Option<Stage> {
        let wanted = name_or_word.trim();
        Stage::parse(wanted).or_else(|| {
            let pattern = format!("^{}$", stage_pattern(wanted));
            let re = build("stage", &pattern).ok()?;
            self.by_stage().into_iter().find_map(|(stage, words)| {
                words
                    .iter()
                    .any(|w| re.is_match(&fold_width(w.trim())))
                    .then_some(stage)
            })
        })
    }
}

impl Default for StageWords {
    fn default() -> Self {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
        Self {
            first_response: words(&["初次响应", "初次響應", "首次响应", "First response"]),
            follow_up: words(&["跟进", "跟進", "Follow-up", "Following up"]),
            reassigned: words(&["案例重新分配", "重新分配", "Case reassigned", "Reassigned"]),
            escalated: words(&["案例升级", "案例升級", "Case escalated", "Escalated"]),
            closed: words(&["案例关闭", "案例關閉", "Case closed"]),
        }
    }
}
