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
    stage_words: Vec<String>,
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
            stage_words: config
                .stage_words
                .iter()
                .map(|w| fold_width(w.trim()))
                .filter(|w| !w.is_empty())
                .collect(),
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
                self.case_number_exact
                    .is_match(&candidate)
                    .then(|| (candidate, c.get(0).map(|g| g.end()).unwrap_or(0)))
            });
        if let Some((case_id, end)) = tag {
            out.case_id = Some(case_id);
            after_tag = &rest[end..];
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
        out.stage = self
            .stage_words
            .iter()
            .filter_map(|w| tail.find(w.as_str()).map(|at| (at, w)))
            .min_by_key(|(at, w)| (*at, std::cmp::Reverse(w.len())))
            .map(|(_, w)| w.clone());

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
        let head = text[..cut].trim_end();
        for word in &self.stage_words {
            if let Some(stripped) = head.strip_suffix(word.as_str())
                && stripped.ends_with(char::is_whitespace)
            {
                cut = stripped.len();
                break;
            }
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
    /// Stage words the partner's system puts after the title.
    pub stage_words: Vec<String>,
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
                "Case No.",
                "Case No",
                "Case",
            ]),
            reply_prefixes: words(&[
                "Re", "回复", "回覆", "答复", "Fw", "Fwd", "转发", "轉寄", "AW", "WG", "SV", "VS",
            ]),
            stage_words: words(&[
                "初次响应",
                "案例重新分配",
                "案例升级",
                "跟进",
                "案例关闭",
                "初次響應",
                "案例升級",
                "跟進",
                "案例關閉",
            ]),
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
