//! What a template sees: the case, the people, the analysis in the reply's
//! language, similar closed cases and the closure summary, built from plain
//! data (no store, no I/O).
//!
//! Every field is always present (`null` or empty when unknown), so the
//! templates' strict mode catches a misspelt name and nothing else; texts
//! the templates may not hard-code (engineer, portal, credentials) come from
//! config and the case.

use serde::Serialize;

use crate::config::DraftingConfig;
use casebot_analysis::conclude::{Conclusion, Outcome};
use casebot_analysis::rules::RuleSet;
use casebot_core::domain::Direction;
use casebot_core::domain::Lang;
use casebot_core::domain::MailSignal;

use casebot_core::domain::DraftKind;

#[derive(Debug, Clone, Serialize)]
pub struct ReplyContext {
    pub kind: &'static str,
    pub lang: &'static str,
    pub case: CaseFacts,
    pub customer: Customer,
    pub engineer: Engineer,
    pub portal: Portal,
    /// The problem restated (问题定义).
    pub problem: String,
    /// The conclusion the reply is built on; `null` when no log was read.
    pub analysis: Option<AnalysisFacts>,
    /// Closed cases with the same failure, best first.
    pub similar: Vec<SimilarCase>,
    pub closure: Option<ClosureFacts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseFacts {
    /// The partner's case number, else casebot's thread key.
    pub number: String,
    pub title: Option<String>,
    pub priority: Option<String>,
    pub customer: Option<String>,
    pub internal_ref: Option<String>,
    /// KBs named in the title and the logs.
    pub kbs: Vec<String>,
    pub kbs_text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    /// Display name of the person the reply answers, when their mail had one.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Engineer {
    pub name: String,
    pub signature_lines: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Portal {
    pub url: String,
    pub username: String,
    /// Derived per case; `null` when no secret is configured.
    pub password: Option<String>,
    pub log_collector: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Quote {
    /// The line as quoted in a mail: its time stamp exactly once.
    pub display: String,
    pub time: Option<String>,
    pub file: String,
    pub line: u64,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NumberedStep {
    pub n: usize,
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnalysisFacts {
    /// failure | success | unknown
    pub outcome: &'static str,
    pub failed: bool,
    pub succeeded: bool,
    pub class: Option<String>,
    pub class_name: Option<String>,
    /// What the decisive error means.
    pub summary: Option<String>,
    /// The decisive line first, then the chain to the final failure.
    pub decisive: Vec<Quote>,
    pub error_codes: Vec<String>,
    /// `0x80004005 (E_FAIL), …`
    pub codes_text: String,
    pub kbs: Vec<String>,
    pub package: Option<String>,
    pub component: Option<String>,
    pub failing_file: Option<String>,
    pub os_build: Option<String>,
    pub steps: Vec<NumberedStep>,
    pub success: Option<Quote>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimilarCase {
    pub case: String,
    pub class_name: String,
    pub resolution: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClosureFacts {
    /// 问题描述
    pub description: String,
    /// 问题分析
    pub analysis: String,
    /// 问题总结
    pub summary: String,
    /// What the customer said fixed it, in their words.
    pub customer_words: Option<String>,
}

/// One message's words, as the context needs them.
#[derive(Debug, Clone)]
pub struct ThreadText {
    pub direction: Direction,
    pub from_name: Option<String>,
    pub signal: Option<MailSignal>,
    pub new_text: String,
}

/// The case as the context needs it.
#[derive(Debug, Clone, Default)]
pub struct CaseInput {
    pub key: String,
    pub number: Option<String>,
    pub title: Option<String>,
    pub priority: Option<String>,
    pub customer: Option<String>,
    pub internal_ref: Option<String>,
    pub title_kbs: Vec<String>,
}

/// Everything [`build`] reads.
pub struct Inputs<'a> {
    pub kind: DraftKind,
    pub lang: Lang,
    pub case: &'a CaseInput,
    /// Date order; machine mail is skipped.
    pub thread: &'a [ThreadText],
    /// Index into `thread` of the mail answered.
    pub parent: Option<usize>,
    pub conclusion: Option<&'a Conclusion>,
    /// The newest failure of the case (a closure explains what failed).
    pub last_failure: Option<&'a Conclusion>,
    pub similar: Vec<SimilarCase>,
    pub rules: &'a RuleSet,
    pub settings: &'a DraftingConfig,
    pub portal_password: Option<String>,
    /// Who signs: the case owner's profile; `None` falls back on the
    /// configured `engineer_name` and `signature_lines`.
    pub signer: Option<Engineer>,
}

/// Most decisive lines quoted in a mail.
const MAX_QUOTES: usize = 6;
/// Longest quoted line, in characters.
const MAX_QUOTE_CHARS: usize = 400;

pub fn build(inputs: &Inputs<'_>) -> ReplyContext {
    let lang = inputs.lang;
    let case = inputs.case;
    let number = case.number.clone().unwrap_or_else(|| case.key.clone());
    let analysis = inputs
        .conclusion
        .map(|c| analysis_facts(c, inputs.rules, lang));
    let mut kbs = case.title_kbs.clone();
    for c in inputs.conclusion.into_iter().chain(inputs.last_failure) {
        for kb in &c.kbs {
            if !kbs.contains(kb) {
                kbs.push(kb.clone());
            }
        }
    }
    let problem = problem_statement(inputs, lang);
    let closure = (inputs.kind == DraftKind::Closure).then(|| {
        closure_facts(
            inputs,
            &problem,
            inputs.last_failure.or(inputs.conclusion),
            lang,
        )
    });
    let customer_name = inputs
        .parent
        .and_then(|i| inputs.thread.get(i))
        .filter(|m| m.direction == Direction::Customer)
        .or_else(|| {
            inputs
                .thread
                .iter()
                .rev()
                .find(|m| m.direction == Direction::Customer)
        })
        .and_then(|m| m.from_name.clone())
        .map(|n| n.trim().trim_matches('"').to_string())
        .filter(|n| !n.is_empty() && !n.contains('@'));
    let settings = inputs.settings;
    ReplyContext {
        kind: inputs.kind.as_str(),
        lang: lang.tag(),
        case: CaseFacts {
            number: number.clone(),
            title: case.title.clone(),
            priority: case.priority.clone(),
            customer: case.customer.clone(),
            internal_ref: case.internal_ref.clone(),
            kbs_text: kbs.join(if lang == Lang::Zh { "、" } else { ", " }),
            kbs,
        },
        customer: Customer {
            name: customer_name,
        },
        engineer: inputs.signer.clone().unwrap_or_else(|| Engineer {
            name: settings.engineer_name.clone(),
            signature_lines: settings.signature_lines.clone(),
        }),
        portal: Portal {
            url: settings.portal.url.clone(),
            username: settings
                .portal
                .username
                .replace("{case}", &number.to_ascii_lowercase()),
            password: inputs.portal_password.clone(),
            log_collector: settings.log_collector.clone(),
        },
        problem,
        analysis,
        similar: inputs.similar.clone(),
        closure,
    }
}

fn analysis_facts(c: &Conclusion, rules: &RuleSet, lang: Lang) -> AnalysisFacts {
    let root = c.root_cause.as_ref();
    let class = root.map(|r| r.class.clone());
    let class_name = root.map(|r| {
        rules
            .classes
            .get(&r.class)
            .map(|k| k.name.get(lang).to_string())
            .unwrap_or_else(|| r.class_name.clone())
    });
    let summary = root.map(|r| {
        rules
            .rule(&r.rule)
            .map(|rule| rule.explain.get(lang).trim().to_string())
            .unwrap_or_else(|| r.summary.clone())
    });
    let decisive = root
        .map(|r| r.evidence.iter().take(MAX_QUOTES).map(quote).collect())
        .unwrap_or_default();
    let codes_text = c
        .code_details
        .iter()
        .map(|d| match &d.name {
            Some(name) => format!("{} ({name})", d.code),
            None => d.code.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let steps = c
        .next_steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (title, text) = match rules.steps.get(&s.id) {
                Some(step) => (step.title.get(lang), step.text.get(lang)),
                None => (s.title.as_str(), s.text.as_str()),
            };
            NumberedStep {
                n: i + 1,
                title: title.trim().to_string(),
                text: text.trim().to_string(),
            }
        })
        .collect();
    AnalysisFacts {
        outcome: c.outcome.as_str(),
        failed: c.outcome == Outcome::Failure,
        // A success the logs record; "no failure found" is not one.
        succeeded: c.outcome == Outcome::Success && c.success.is_some(),
        class,
        class_name,
        summary,
        decisive,
        error_codes: c.error_codes.clone(),
        codes_text,
        kbs: c.kbs.clone(),
        package: c.failing_package.clone(),
        component: c.failing_component.clone(),
        failing_file: c.failing_file.clone(),
        os_build: c.os_build.clone(),
        steps,
        success: c.success.as_ref().map(quote),
    }
}

fn quote(e: &casebot_analysis::conclude::Evidence) -> Quote {
    let text = e.text.trim();
    let text = match text.char_indices().nth(MAX_QUOTE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    };
    // Log lines carry their own time stamp; pasted fragments may not.
    let display = match &e.time {
        Some(t) if !text.starts_with(|c: char| c.is_ascii_digit()) => format!("{t} {text}"),
        _ => text.clone(),
    };
    Quote {
        display,
        time: e.time.clone(),
        file: e.file.clone(),
        line: e.line,
        text,
    }
}

/// The problem as the desk defined it (the 问题定义 of an earlier mail), or
/// restated from the case title.
fn problem_statement(inputs: &Inputs<'_>, lang: Lang) -> String {
    if let Some(defined) = inputs
        .thread
        .iter()
        .filter(|m| m.direction == Direction::Engineer)
        .find_map(|m| section(&m.new_text, PROBLEM_LABELS))
    {
        return defined;
    }
    let title = inputs
        .case
        .title
        .clone()
        .or_else(|| {
            inputs
                .thread
                .iter()
                .find(|m| m.direction == Direction::Customer)
                .and_then(|m| first_words(&m.new_text))
        })
        .unwrap_or_default();
    match lang {
        Lang::Zh | Lang::ZhTw => format!("用户反馈：{title}"),
        Lang::En => format!("Reported: {title}"),
    }
}

const PROBLEM_LABELS: &[&str] = &[
    "问题定义",
    "问题描述",
    "Problem definition",
    "Problem description",
];
const SUMMARY_LABELS: &[&str] = &["问题总结", "Summary"];
/// Labels that end a section.
const ALL_LABELS: &[&str] = &[
    "问题定义",
    "问题描述",
    "问题范围",
    "下一步动作",
    "问题分析",
    "问题总结",
    "修复建议",
    "日志上传方法",
    "Problem definition",
    "Problem description",
    "Scope",
    "Next steps",
    "Analysis",
    "Summary",
];

/// The text under `labels` (`问题定义: …` up to the next label), if present.
pub fn section(text: &str, labels: &[&str]) -> Option<String> {
    let mut lines = text.lines();
    let mut out: Vec<&str> = Vec::new();
    while let Some(line) = lines.next() {
        let Some(rest) = labelled(line, labels) else {
            continue;
        };
        if !rest.is_empty() {
            out.push(rest);
        }
        for line in lines.by_ref() {
            let t = line.trim();
            if labelled(line, ALL_LABELS).is_some() || SIGN_OFFS.iter().any(|s| t.starts_with(s)) {
                break;
            }
            if t.chars().all(|c| c == '=' || c == '-') && !t.is_empty() {
                continue;
            }
            out.push(t);
        }
        break;
    }
    let joined = out.join("\n").trim().to_string();
    (!joined.is_empty()).then_some(joined)
}

/// Lines that close a mail's body rather than continue a section.
const SIGN_OFFS: &[&str] = &[
    "以上",
    "如有任何问题",
    "此致",
    "祝好",
    "If you have",
    "Best regards",
    "Regards",
    "Kind regards",
];

/// `line` minus its label and colon, when it starts with one of `labels`.
fn labelled<'t>(line: &'t str, labels: &[&str]) -> Option<&'t str> {
    let t = line.trim();
    labels.iter().find_map(|label| {
        let rest = t.strip_prefix(label)?;
        let rest = rest.trim_start();
        let rest = rest.strip_prefix(':').or_else(|| rest.strip_prefix('：'))?;
        Some(rest.trim())
    })
}

fn first_words(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(200).collect())
}

/// The customer's own words in their confirmation, without the greeting.
pub fn customer_words(text: &str) -> Option<String> {
    let mut lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .skip_while(|l| is_greeting(l))
        .collect();
    // A sign-off the signature splitter left behind (祝好, Best regards).
    while lines
        .last()
        .is_some_and(|l| l.chars().count() <= 16 && SIGN_OFFS.iter().any(|s| l.starts_with(s)))
    {
        lines.pop();
    }
    let joined = lines.join("\n");
    let words: String = joined.chars().take(600).collect();
    (!words.trim().is_empty()).then_some(words)
}

fn is_greeting(line: &str) -> bool {
    let l = line.trim_end_matches([',', '，', ':', '：', '!', '！']);
    l.chars().count() <= 24
        && (l.ends_with("您好")
            || l.ends_with("你好")
            || l.starts_with("Hi")
            || l.starts_with("Hello")
            || l.starts_with("Dear"))
}

fn closure_facts(
    inputs: &Inputs<'_>,
    problem: &str,
    failure: Option<&Conclusion>,
    lang: Lang,
) -> ClosureFacts {
    let words = inputs
        .thread
        .iter()
        .rev()
        .find(|m| m.direction == Direction::Customer && m.signal == Some(MailSignal::Resolution))
        .and_then(|m| customer_words(&m.new_text));
    let analysis = match failure.map(|c| analysis_facts(c, inputs.rules, lang)) {
        Some(a) if a.failed => {
            let line = a
                .decisive
                .first()
                .map(|q| q.text.clone())
                .unwrap_or_default();
            match lang {
                Lang::Zh | Lang::ZhTw => format!(
                    "日志显示安装失败的关键错误为：{line}\n{}（{}）。",
                    a.summary.unwrap_or_default(),
                    a.class_name.unwrap_or_default()
                ),
                Lang::En => format!(
                    "The logs show the decisive error: {line}\n{} ({}).",
                    a.summary.unwrap_or_default(),
                    a.class_name.unwrap_or_default()
                ),
            }
        }
        _ => match lang {
            Lang::Zh | Lang::ZhTw => "日志中未发现明确的失败原因。".to_string(),
            Lang::En => "The logs showed no decisive cause.".to_string(),
        },
    };
    let summary = match (lang, &words) {
        (Lang::Zh | Lang::ZhTw, Some(w)) => format!(
            "经用户确认，已成功安装相应补丁，可关闭该案例。用户反馈：{}",
            w.replace('\n', " ")
        ),
        (Lang::Zh | Lang::ZhTw, None) => {
            "经用户确认，已成功安装相应补丁，可关闭该案例。".to_string()
        }
        (Lang::En, Some(w)) => format!(
            "The customer confirmed the update now installs; the case can be closed. In their words: {}",
            w.replace('\n', " ")
        ),
        (Lang::En, None) => {
            "The customer confirmed the update now installs; the case can be closed.".to_string()
        }
    };
    ClosureFacts {
        description: problem.to_string(),
        analysis,
        summary,
        customer_words: words,
    }
}

/// The resolution a closure text states (its 问题总结), for the knowledge
/// entry; `None` when the engineer removed the section.
pub fn stated_resolution(closure_text: &str) -> Option<String> {
    section(closure_text, SUMMARY_LABELS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_end_at_the_next_label_and_skip_rules() {
        let text = "王先生，您好：\n问题定义:\n用户反馈补丁安装失败。\n安装KB5022840失败。\n问题范围:\n我们将协助您。\n";
        assert_eq!(
            section(text, PROBLEM_LABELS).as_deref(),
            Some("用户反馈补丁安装失败。\n安装KB5022840失败。")
        );
        let closure = "问题总结：\n=================\n打开 TrustedInstaller 服务后安装成功。\n以上为此问题的案例总结";
        assert_eq!(
            stated_resolution(closure).as_deref(),
            Some("打开 TrustedInstaller 服务后安装成功。")
        );
        assert_eq!(section("nothing here", PROBLEM_LABELS), None);
    }

    #[test]
    fn customer_words_drop_the_greeting() {
        assert_eq!(
            customer_words("李老师，您好\n问题解决了。\n把TrustedInstaller服务打开。\n祝好")
                .as_deref(),
            Some("问题解决了。\n把TrustedInstaller服务打开。")
        );
    }
}
