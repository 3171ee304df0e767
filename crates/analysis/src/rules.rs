//! The rule set: `rules/*.toml` (rules), `rules/classes.toml` (the root-cause
//! vocabulary) and `rules/steps/*.toml` (next steps), loaded and checked.
//!
//! Rules are data so that an engineer can add one without a rebuild. They are
//! applied in file-name order, then in order inside a file, and the first rule
//! that matches a line wins: specific rules go first, generic ones last, as
//! SetupDiag orders its rules. Every problem found while loading is reported
//! with the file, line and column it comes from, and all of them are collected
//! so that `casebot rules check` can list every mistake in one run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use regex_automata::meta;
use serde::Deserialize;
use toml::Spanned;

use super::codes;
use super::logs::LogKind;
use crate::config::AnalysisConfig;
use casebot_core::domain::Lang;

/// What a rule's line means for the conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A candidate for the decisive error.
    #[default]
    Cause,
    /// An error that only reports a lower one (`Failed to add to transaction
    /// package … E_FAIL`): part of the chain, never the decisive line when a
    /// cause is present.
    Wrapper,
    /// The final failure an engineer starts reading backwards from.
    Final,
    /// The operation succeeded.
    Success,
    /// Benign noise: counted, never a cause.
    Noise,
    /// Facts (servicing stack version, build) without a verdict.
    Context,
    /// The start of a servicing session: the chain never reaches past it.
    Session,
}

/// How bad a line is, in the rule's judgement (not the log's level: many
/// decisive CBS lines are logged at Info).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    #[default]
    Error,
    Fatal,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Fatal => "fatal",
        }
    }
}

/// A text in both languages of the desk.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bilingual {
    pub zh: String,
    pub en: String,
}

impl Bilingual {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh | Lang::ZhTw => &self.zh,
            Lang::En => &self.en,
        }
    }
}

/// One loaded rule.
#[derive(Debug)]
pub struct Rule {
    pub id: String,
    /// Empty: every kind.
    pub kinds: Vec<LogKind>,
    pub role: Role,
    pub severity: Severity,
    pub class: Option<String>,
    pub explain: Bilingual,
    pub steps: Vec<String>,
    /// The codes a `codes = [...]` rule stands for (normalised).
    pub codes: Vec<String>,
    /// The pattern as matched (generated for `codes` rules).
    pub pattern: String,
    /// Used on a matched line only, for its named captures.
    pub regex: regex::bytes::Regex,
    /// `file:line` of the rule, for reports and `rules check`.
    pub origin: String,
}

impl Rule {
    pub fn applies_to(&self, kind: LogKind) -> bool {
        kind == LogKind::Text || self.kinds.is_empty() || self.kinds.contains(&kind)
    }
}

/// One next step an engineer can ask the customer to take.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub title: Bilingual,
    pub text: Bilingual,
}

/// One root-cause class of the vocabulary.
#[derive(Debug, Clone)]
pub struct Class {
    pub id: String,
    pub name: Bilingual,
    /// Steps that follow from the class whatever rule concluded it.
    pub steps: Vec<String>,
}

/// Everything in the rules folder, compiled.
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub steps: BTreeMap<String, Step>,
    pub classes: BTreeMap<String, Class>,
    /// Code (normalised) → symbolic name, from the `names` of code rules.
    pub code_names: HashMap<String, String>,
    /// Code (normalised) → class, from code rules.
    pub code_classes: HashMap<String, String>,
    matchers: Vec<(LogKind, KindMatcher)>,
    pub dir: PathBuf,
}

/// All rules for one log kind in one multi-pattern regex: a search over a
/// whole buffer finds the next line that any rule matches, the way ripgrep
/// searches, instead of trying every rule on every line.
pub struct KindMatcher {
    pub regex: meta::Regex,
    /// Pattern id → index in `RuleSet::rules`.
    pub rule_of: Vec<usize>,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("steps", &self.steps.len())
            .field("classes", &self.classes.len())
            .finish()
    }
}

/// A problem in a rules file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every problem found in a rules folder.
#[derive(Debug)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    #[serde(default)]
    kinds: Vec<Spanned<String>>,
    #[serde(default)]
    role: Role,
    #[serde(default)]
    severity: Severity,
    class: Option<Spanned<String>>,
    pattern: Option<Spanned<String>>,
    #[serde(default)]
    codes: Vec<Spanned<String>>,
    /// Symbolic names of the codes, in the same order (`CBS_E_SOURCE_MISSING`).
    #[serde(default)]
    names: Vec<String>,
    explain: Bilingual,
    #[serde(default)]
    steps: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassFile {
    class: Vec<Spanned<RawClass>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    id: Spanned<String>,
    zh: String,
    en: String,
    #[serde(default)]
    steps: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: Spanned<String>,
    title: Bilingual,
    zh: String,
    en: String,
}

/// A file's text, kept to turn byte spans into lines.
struct Source {
    path: PathBuf,
    text: String,
}

impl Source {
    fn error(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> RuleError {
        let (line, column) = line_col(&self.text, span.start);
        RuleError {
            file: self.path.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, RuleError> {
        toml::from_str(&self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            self.error(span, e.message().trim_end().to_string())
        })
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

/// Patterns are compiled line-oriented: `^` and `$` are line boundaries and a
/// `\r` before the line break is not part of the line.
fn syntax() -> regex_automata::util::syntax::Config {
    regex_automata::util::syntax::Config::new()
        .multi_line(true)
        .crlf(true)
}

fn compile_one(pattern: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::RegexBuilder::new(&ascii_word_boundaries(pattern))
        .multi_line(true)
        .crlf(true)
        .size_limit(4 << 20)
        .build()
        .map_err(|e| e.to_string())
}

/// A rule's pattern as one of its kind's matcher: anchored to the start of
/// its line (see [`RuleSet::load_from`]), with ASCII word boundaries.
fn line_pattern(pattern: &str) -> String {
    format!("^[^\\n]*?(?:{})", ascii_word_boundaries(pattern))
}

/// Rewrites `\b` and `\B` (outside classes) to their ASCII forms.
///
/// A Unicode word boundary makes the lazy DFA give up at the first non-ASCII
/// byte, and the scan falls back to the PikeVM, a hundred times slower: one
/// Chinese line or stray binary byte in a log was enough. The ASCII boundary
/// is also the right one here, since a code written straight after Chinese
/// text (`错误0x80070002`) starts a word.
fn ascii_word_boundaries(pattern: &str) -> std::borrow::Cow<'_, str> {
    if !pattern.contains("\\b") && !pattern.contains("\\B") {
        return pattern.into();
    }
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(escaped) = chars.next() else {
                    out.push(c);
                    break;
                };
                if class_depth == 0 && matches!(escaped, 'b' | 'B') {
                    out.push_str("(?-u:\\");
                    out.push(escaped);
                    // `\b{start}` and its kin keep their braces inside the group.
                    if chars.peek() == Some(&'{') {
                        for c in chars.by_ref() {
                            out.push(c);
                            if c == '}' {
                                break;
                            }
                        }
                    }
                    out.push(')');
                } else {
                    out.push(c);
                    out.push(escaped);
                }
            }
            '[' => {
                class_depth += 1;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal, not the end.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
                if chars.peek() == Some(&']') {
                    out.push(chars.next().unwrap_or(']'));
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.into()
}

/// Where rule files come from: a folder on disk, or the copy built into the binary.
enum Files<'a> {
    Disk,
    Embedded(&'a [(&'a str, &'a str)]),
}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_rules.rs"));
}

impl RuleSet {
    /// Loads and checks the folder. Every problem is returned, not just the first.
    pub fn load(dir: &Path) -> Result<RuleSet, RuleErrors> {
        Self::load_from(dir, Files::Disk)
    }

    /// The rules `config` names. When the setting is the default and that
    /// folder is missing (a binary run outside the repository), the copy
    /// built into the binary; a folder set explicitly must exist. Returns
    /// where the rules came from, for messages.
    pub fn configured(
        settings: &AnalysisConfig,
        base_dir: &Path,
    ) -> (PathBuf, Result<RuleSet, RuleErrors>) {
        let dir = base_dir.join(&settings.rules_dir);
        if !dir.exists() && settings.rules_dir == Path::new("rules") {
            (PathBuf::from("<built-in rules>"), Self::embedded())
        } else {
            let loaded = Self::load(&dir);
            (dir, loaded)
        }
    }

    /// The rules shipped with this build (the repository's `rules/` at compile time).
    pub fn embedded() -> Result<RuleSet, RuleErrors> {
        Self::load_from(
            Path::new("<built-in rules>"),
            Files::Embedded(embedded::EMBEDDED_RULES),
        )
    }

    fn load_from(dir: &Path, files: Files<'_>) -> Result<RuleSet, RuleErrors> {
        let mut loader = Loader {
            dir,
            files,
            errors: Vec::new(),
        };
        let rule_files = loader.listing(dir).map_err(|e| RuleErrors(vec![e]))?;
        // Steps first: rules and classes refer to them.
        let steps = loader.steps();
        let classes = loader.classes(&steps);
        let loaded = loader.rules(&rule_files, &steps, &classes);
        let mut errors = loader.errors;
        if loaded.rules.is_empty() && errors.is_empty() {
            errors.push(RuleError {
                file: dir.to_path_buf(),
                line: 0,
                column: 0,
                message: "no rules found (expected *.toml files with [[rule]] tables)".into(),
            });
        }
        if !errors.is_empty() {
            return Err(RuleErrors(errors));
        }
        let matchers = build_matchers(dir, &loaded.rules)?;
        Ok(RuleSet {
            rules: loaded.rules,
            steps,
            classes,
            code_names: loaded.code_names,
            code_classes: loaded.code_classes,
            matchers,
            dir: dir.to_path_buf(),
        })
    }

    /// The matcher for a log kind.
    pub fn matcher(&self, kind: LogKind) -> &KindMatcher {
        self.matchers
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, m)| m)
            .unwrap_or(&self.matchers[0].1)
    }

    /// The first rule (in rule order) for `kind` that matches `line`.
    pub fn first_match(&self, kind: LogKind, line: &[u8]) -> Option<usize> {
        let matcher = self.matcher(kind);
        matcher
            .regex
            .search_half(&regex_automata::Input::new(line))
            .map(|m| matcher.rule_of[m.pattern().as_usize()])
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Every rule's pattern as the matcher reads it (ASCII word boundaries),
    /// with named groups made non-capturing so that they can be joined into
    /// one regex (as the ripgrep baseline needs).
    pub fn plain_patterns(&self) -> Vec<String> {
        let named = regex::Regex::new(r"\(\?P?<[A-Za-z_][A-Za-z0-9_]*>").expect("static regex");
        self.rules
            .iter()
            .map(|r| {
                named
                    .replace_all(&ascii_word_boundaries(&r.pattern), "(?:")
                    .into_owned()
            })
            .collect()
    }
}

/// Reads a rules folder (from disk or the built-in copy), collecting every
/// problem with its file and line rather than stopping at the first.
struct Loader<'a> {
    dir: &'a Path,
    files: Files<'a>,
    errors: Vec<RuleError>,
}

/// The rules of a folder, and what their codes say.
struct LoadedRules {
    rules: Vec<Rule>,
    code_names: HashMap<String, String>,
    code_classes: HashMap<String, String>,
}

impl Loader<'_> {
    /// The `.toml` files of a folder, sorted.
    fn listing(&self, sub: &Path) -> Result<Vec<PathBuf>, RuleError> {
        let mut found: Vec<PathBuf> = match &self.files {
            Files::Disk => std::fs::read_dir(sub)
                .map_err(|e| RuleError {
                    file: sub.to_path_buf(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read the rules folder: {e}"),
                })?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Files::Embedded(list) => {
                let rel = sub.strip_prefix(self.dir).unwrap_or(sub);
                list.iter()
                    .map(|(p, _)| Path::new(p))
                    .filter(|p| {
                        p.parent() == Some(rel)
                            || (rel.as_os_str().is_empty() && p.parent() == Some(Path::new("")))
                    })
                    .map(|p| self.dir.join(p))
                    .collect()
            }
        };
        found.sort();
        Ok(found)
    }

    fn read(&self, path: &Path) -> Result<Source, RuleError> {
        let text = match &self.files {
            Files::Disk => std::fs::read_to_string(path).map_err(|e| e.to_string()),
            Files::Embedded(list) => {
                let rel = path.strip_prefix(self.dir).unwrap_or(path);
                list.iter()
                    .find(|(p, _)| Path::new(p) == rel)
                    .map(|(_, t)| t.to_string())
                    .ok_or_else(|| "not in the built-in rules".to_string())
            }
        };
        text.map(|text| Source {
            path: path.to_path_buf(),
            text,
        })
        .map_err(|e| RuleError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        })
    }

    /// `steps/*.toml`: each file one next step, named like its file.
    fn steps(&mut self) -> BTreeMap<String, Step> {
        let mut steps = BTreeMap::new();
        let files = match self.listing(&self.dir.join("steps")) {
            Ok(files) => files,
            Err(e) => {
                self.errors.push(e);
                return steps;
            }
        };
        for path in files {
            let (source, raw) = match self
                .read(&path)
                .and_then(|s| s.parse::<RawStep>().map(|r| (s, r)))
            {
                Ok(pair) => pair,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if raw.id.get_ref() != stem {
                self.errors.push(source.error(
                    raw.id.span(),
                    format!(
                        "step id {:?} must match the file name {stem:?}",
                        raw.id.get_ref()
                    ),
                ));
            }
            for (lang, text) in [("zh", &raw.zh), ("en", &raw.en)] {
                if text.trim().is_empty() {
                    self.errors
                        .push(source.error(raw.id.span(), format!("step has no {lang} text")));
                }
            }
            steps.insert(
                raw.id.get_ref().clone(),
                Step {
                    id: raw.id.into_inner(),
                    title: raw.title,
                    text: Bilingual {
                        zh: raw.zh.trim_end().to_string(),
                        en: raw.en.trim_end().to_string(),
                    },
                },
            );
        }
        steps
    }

    /// Every step a class or rule names must exist.
    fn check_steps(
        &mut self,
        steps: &BTreeMap<String, Step>,
        source: &Source,
        list: &[Spanned<String>],
    ) {
        for step in list {
            if !steps.contains_key(step.get_ref()) {
                self.errors.push(source.error(
                    step.span(),
                    format!(
                        "unknown next step {:?} (no file steps/{}.toml)",
                        step.get_ref(),
                        step.get_ref()
                    ),
                ));
            }
        }
    }

    /// `classes.toml`: the root-cause classes with their names and steps.
    fn classes(&mut self, steps: &BTreeMap<String, Step>) -> BTreeMap<String, Class> {
        let mut classes = BTreeMap::new();
        let file = self
            .read(&self.dir.join("classes.toml"))
            .and_then(|source| source.parse::<ClassFile>().map(|f| (source, f)));
        let (source, file) = match file {
            Ok(pair) => pair,
            Err(e) => {
                self.errors.push(e);
                return classes;
            }
        };
        for raw in file.class {
            let raw = raw.into_inner();
            self.check_steps(steps, &source, &raw.steps);
            if classes.contains_key(raw.id.get_ref()) {
                self.errors.push(source.error(
                    raw.id.span(),
                    format!("class {:?} is defined twice", raw.id.get_ref()),
                ));
            }
            classes.insert(
                raw.id.get_ref().clone(),
                Class {
                    id: raw.id.into_inner(),
                    name: Bilingual {
                        zh: raw.zh,
                        en: raw.en,
                    },
                    steps: raw.steps.into_iter().map(Spanned::into_inner).collect(),
                },
            );
        }
        classes
    }

    /// Every other `*.toml`: `[[rule]]` tables, compiled and checked.
    fn rules(
        &mut self,
        rule_files: &[PathBuf],
        steps: &BTreeMap<String, Step>,
        classes: &BTreeMap<String, Class>,
    ) -> LoadedRules {
        let mut loaded = LoadedRules {
            rules: Vec::new(),
            code_names: HashMap::new(),
            code_classes: HashMap::new(),
        };
        let mut seen_ids: HashMap<String, String> = HashMap::new();
        for path in rule_files.iter().filter(|p| !p.ends_with("classes.toml")) {
            let (source, file) = match self
                .read(path)
                .and_then(|s| s.parse::<RuleFile>().map(|f| (s, f)))
            {
                Ok(pair) => pair,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            for spanned in file.rule {
                let rule_span = spanned.span();
                let (line, _) = line_col(&source.text, rule_span.start);
                let raw = spanned.into_inner();
                // Steps named by rules are checked with the rule file's spans.
                self.check_steps(steps, &source, &raw.steps);
                let origin = format!(
                    "{}:{line}",
                    path.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default()
                );
                let Some(CompiledRule { rule, names }) =
                    compile_rule(&source, raw, origin, classes, &mut self.errors)
                else {
                    continue;
                };
                if let Some(previous) = seen_ids.insert(rule.id.clone(), rule.origin.clone()) {
                    self.errors.push(RuleError {
                        file: path.clone(),
                        line,
                        column: 1,
                        message: format!("rule id {:?} is already used at {previous}", rule.id),
                    });
                }
                for (i, code) in rule.codes.iter().enumerate() {
                    if let Some(class) = &rule.class {
                        loaded
                            .code_classes
                            .entry(code.clone())
                            .or_insert_with(|| class.clone());
                    }
                    if let Some(name) = names.get(i) {
                        loaded
                            .code_names
                            .entry(code.clone())
                            .or_insert_with(|| name.clone());
                    }
                }
                loaded.rules.push(rule);
            }
        }
        loaded
    }
}

/// One multi-pattern regex per log kind over the rules that apply to it.
fn build_matchers(dir: &Path, rules: &[Rule]) -> Result<Vec<(LogKind, KindMatcher)>, RuleErrors> {
    let mut matchers = Vec::new();
    for kind in LogKind::ALL {
        let members: Vec<usize> = (0..rules.len())
            .filter(|&i| rules[i].applies_to(kind))
            .collect();
        // Each pattern is anchored to the start of its line, so that every
        // match on a line starts at the same place and leftmost-first
        // semantics pick the rule that comes first: the first rule that
        // matches a line wins, in one pass, without a second RegexSet.
        let patterns: Vec<String> = members
            .iter()
            .map(|&i| line_pattern(&rules[i].pattern))
            .collect();
        let regex = meta::Regex::builder()
            .syntax(syntax())
            .configure(
                meta::Config::new()
                    .nfa_size_limit(Some(64 << 20))
                    .hybrid_cache_capacity(8 << 20)
                    .which_captures(regex_automata::nfa::thompson::WhichCaptures::Implicit),
            )
            .build_many(&patterns)
            .map_err(|e| {
                RuleErrors(vec![RuleError {
                    file: dir.to_path_buf(),
                    line: 0,
                    column: 0,
                    message: format!("the {} rules do not compile together: {e}", kind.as_str()),
                }])
            })?;
        matchers.push((
            kind,
            KindMatcher {
                regex,
                rule_of: members,
            },
        ));
    }
    Ok(matchers)
}

/// A rule and the symbolic names its `codes` carry.
struct CompiledRule {
    rule: Rule,
    names: Vec<String>,
}

fn compile_rule(
    source: &Source,
    raw: RawRule,
    origin: String,
    classes: &BTreeMap<String, Class>,
    errors: &mut Vec<RuleError>,
) -> Option<CompiledRule> {
    let before = errors.len();
    let id = raw.id.get_ref().trim().to_string();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        errors.push(source.error(
            raw.id.span(),
            format!("rule id {id:?} must be letters, digits, '-', '_' or '.'"),
        ));
    }
    let kinds = rule_kinds(source, &raw.kinds, errors);
    let class = match &raw.class {
        Some(c) if !classes.contains_key(c.get_ref()) && !classes.is_empty() => {
            errors.push(source.error(
                c.span(),
                format!("unknown class {:?} (not in classes.toml)", c.get_ref()),
            ));
            None
        }
        Some(c) => Some(c.get_ref().clone()),
        None => None,
    };
    if matches!(raw.role, Role::Noise | Role::Success | Role::Session) && class.is_some() {
        errors.push(
            source.error(
                raw.class
                    .as_ref()
                    .map(|c| c.span())
                    .unwrap_or(raw.id.span()),
                format!("a {:?} rule cannot name a root-cause class", raw.role),
            ),
        );
    }
    let codes = rule_codes(source, &raw.codes, errors);
    if !raw.names.is_empty() && raw.names.len() != raw.codes.len() {
        errors.push(source.error(raw.id.span(), "names must list one symbolic name per code"));
    }
    let pattern = rule_pattern(source, &raw, &codes, errors);
    for (lang, text) in [("zh", &raw.explain.zh), ("en", &raw.explain.en)] {
        if text.trim().is_empty() {
            errors.push(source.error(raw.id.span(), format!("explain.{lang} is empty")));
        }
    }
    let mut seen = HashSet::new();
    for step in &raw.steps {
        if !seen.insert(step.get_ref().as_str()) {
            errors.push(source.error(
                step.span(),
                format!("step {:?} is listed twice", step.get_ref()),
            ));
        }
    }
    if errors.len() > before {
        return None;
    }
    let regex = compile_one(&pattern).ok()?;
    Some(CompiledRule {
        names: raw.names,
        rule: Rule {
            id,
            kinds,
            role: raw.role,
            severity: raw.severity,
            class,
            explain: raw.explain,
            steps: raw.steps.into_iter().map(Spanned::into_inner).collect(),
            codes,
            pattern,
            regex,
            origin,
        },
    })
}

/// The log kinds a rule applies to; `*` (or none) is every kind.
fn rule_kinds(
    source: &Source,
    names: &[Spanned<String>],
    errors: &mut Vec<RuleError>,
) -> Vec<LogKind> {
    let mut kinds = Vec::new();
    for kind in names.iter().filter(|k| k.get_ref() != "*") {
        match LogKind::parse(kind.get_ref()) {
            Some(k) => kinds.push(k),
            None => errors.push(source.error(
                kind.span(),
                format!(
                    "unknown log kind {:?} (expected one of {})",
                    kind.get_ref(),
                    LogKind::names()
                ),
            )),
        }
    }
    if names.iter().any(|k| k.get_ref() == "*") {
        kinds.clear();
    }
    kinds
}

fn rule_codes(
    source: &Source,
    written: &[Spanned<String>],
    errors: &mut Vec<RuleError>,
) -> Vec<String> {
    let mut codes = Vec::new();
    for code in written {
        match codes::Code::parse_config(code.get_ref()) {
            Some(c) => codes.push(c),
            None => errors.push(source.error(
                code.span(),
                format!(
                    "{:?} is not a code (0x followed by 8 hex digits)",
                    code.get_ref()
                ),
            )),
        }
    }
    codes
}

/// The rule's own pattern (checked), or one built from its codes.
fn rule_pattern(
    source: &Source,
    raw: &RawRule,
    codes: &[String],
    errors: &mut Vec<RuleError>,
) -> String {
    match (&raw.pattern, codes.is_empty()) {
        (Some(p), _) => {
            let text = p.get_ref().clone();
            if let Err(e) = compile_one(&text) {
                errors.push(source.error(p.span(), format!("pattern does not compile: {e}")));
            } else if regex::bytes::Regex::new(&text).is_ok_and(|r| r.is_match(b"")) {
                errors.push(source.error(
                    p.span(),
                    "pattern matches an empty line: it would match everything",
                ));
            }
            text
        }
        (None, false) => codes::pattern_for(codes, &raw.names),
        (None, true) => {
            errors.push(source.error(raw.id.span(), "a rule needs a pattern or codes"));
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("steps")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const CLASSES: &str = "[[class]]\nid = \"component_store_corruption\"\nzh = \"组件存储损坏\"\nen = \"Component store corruption\"\nsteps = [\"sfc\"]\n";
    const STEP: &str = "id = \"sfc\"\ntitle.zh = \"运行 SFC\"\ntitle.en = \"Run SFC\"\nzh = \"sfc /scannow\"\nen = \"sfc /scannow\"\n";

    #[test]
    fn a_bad_rule_is_reported_with_file_and_line() {
        let dir = folder(&[
            ("classes.toml", CLASSES),
            ("steps/sfc.toml", STEP),
            (
                "10-x.toml",
                "[[rule]]\nid = \"a\"\npattern = 'ok'\nexplain.zh = \"x\"\nexplain.en = \"x\"\n\n[[rule]]\nid = \"b\"\nclass = \"no_such_class\"\npattern = '(unclosed'\nexplain.zh = \"x\"\nexplain.en = \"x\"\nsteps = [\"nope\"]\n",
            ),
        ]);
        let errors = RuleSet::load(dir.path()).unwrap_err().0;
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|e| e.contains("10-x.toml:9:") && e.contains("unknown class")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("10-x.toml:10:") && e.contains("does not compile")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("10-x.toml:13:") && e.contains("unknown next step")),
            "{text:?}"
        );
    }

    #[test]
    fn a_toml_syntax_error_names_the_line() {
        let dir = folder(&[
            ("classes.toml", CLASSES),
            ("steps/sfc.toml", STEP),
            (
                "20-y.toml",
                "[[rule]]\nid = \"a\"\npattern = 'x'\nexplain = { zh = \"x\", en = \"x\" }\nseverity = \"loud\"\n",
            ),
        ]);
        let errors = RuleSet::load(dir.path()).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 5, "{}", errors[0]);
        assert!(errors[0].message.contains("loud"), "{}", errors[0]);
    }

    #[test]
    fn first_rule_in_order_wins() {
        let dir = folder(&[
            ("classes.toml", CLASSES),
            ("steps/sfc.toml", STEP),
            (
                "10-a.toml",
                "[[rule]]\nid = \"noise\"\nrole = \"noise\"\npattern = 'SQM:'\nexplain = { zh = \"x\", en = \"x\" }\n",
            ),
            (
                "20-b.toml",
                "[[rule]]\nid = \"code\"\ncodes = [\"0x80004005\"]\nnames = [\"E_FAIL\"]\nclass = \"component_store_corruption\"\nexplain = { zh = \"x\", en = \"x\" }\n",
            ),
        ]);
        let set = RuleSet::load(dir.path()).unwrap();
        let line = b"2023-01-01 10:00:00, Info CBS SQM: Failed to start upload [HRESULT = 0x80004005 - E_FAIL]";
        assert_eq!(
            set.rules[set.first_match(LogKind::Cbs, line).unwrap()].id,
            "noise"
        );
        let line = b"2023-01-01 10:00:00, Info CBS Failed to do it [HRESULT = 0x80004005 - E_FAIL]";
        assert_eq!(
            set.rules[set.first_match(LogKind::Cbs, line).unwrap()].id,
            "code"
        );
        assert_eq!(
            set.code_names.get("0x80004005").map(String::as_str),
            Some("E_FAIL")
        );
        assert_eq!(
            set.code_classes.get("0x80004005").map(String::as_str),
            Some("component_store_corruption")
        );
    }

    #[test]
    fn the_shipped_rules_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let set = RuleSet::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(set.rules.len() > 40, "{}", set.rules.len());
        for class in crate::CLASSES {
            assert!(
                set.classes.contains_key(*class),
                "class {class} missing from classes.toml"
            );
        }
    }

    #[test]
    fn word_boundaries_are_rewritten_to_ascii_outside_classes_only() {
        assert_eq!(
            ascii_word_boundaries(r"\bEFI\b|x\By"),
            r"(?-u:\b)EFI(?-u:\b)|x(?-u:\B)y"
        );
        assert_eq!(
            ascii_word_boundaries(r"a\\b"),
            r"a\\b",
            "an escaped backslash"
        );
        assert_eq!(ascii_word_boundaries(r"\b{start}x"), r"(?-u:\b{start})x");
        assert_eq!(ascii_word_boundaries(r"[]\b]\b"), r"[]\b](?-u:\b)");
        assert_eq!(ascii_word_boundaries(r"[^]a]\b"), r"[^]a](?-u:\b)");
        assert!(matches!(
            ascii_word_boundaries("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn chinese_text_around_a_code_neither_hides_it_nor_slows_the_matcher_down() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let set = RuleSet::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        let rule_id = |line: &str| {
            set.first_match(LogKind::Text, line.as_bytes())
                .map(|i| set.rules[i].id.as_str())
        };
        // The code written straight after Chinese text starts a word.
        // (0x8badf00d: a code that no code rule knows.)
        assert_eq!(
            rule_id("更新安装错误0x8badf00d"),
            Some("generic.error-code")
        );
        assert_eq!(
            rule_id("安装失败，错误代码 0x8badf00d。"),
            Some("generic.error-code")
        );
        // A code inside a longer hex word is still not a code.
        assert_eq!(rule_id("错误 0x8badf00d1"), None);
        // Every kind's patterns must build as one lazy DFA that searches
        // non-ASCII text without quitting: a Unicode boundary left anywhere
        // fails the build (the DFA cannot decide it), and the matcher would
        // fall back to the PikeVM on every line.
        use regex_automata::{hybrid::dfa::DFA, nfa::thompson};
        let mut haystack = "日志行 ".repeat(2_000).into_bytes();
        haystack.extend_from_slice("\n错误0x80070002\n".as_bytes());
        for kind in LogKind::ALL {
            let patterns: Vec<String> = set
                .rules
                .iter()
                .filter(|r| r.applies_to(kind))
                .map(|r| line_pattern(&r.pattern))
                .collect();
            let dfa = DFA::builder()
                .syntax(syntax())
                .thompson(thompson::Config::new().nfa_size_limit(Some(64 << 20)))
                .configure(DFA::config().cache_capacity(8 << 20))
                .build_many(&patterns)
                .unwrap_or_else(|e| panic!("the {} rules as one lazy DFA: {e}", kind.as_str()));
            let mut cache = dfa.create_cache();
            let found = dfa.try_search_fwd(&mut cache, &regex_automata::Input::new(&haystack));
            assert!(matches!(found, Ok(Some(_))), "{}: {found:?}", kind.as_str());
        }
    }
}
