//! The reply templates (`templates/`, handlebars) and their check.
//!
//! Strict mode: a name the context does not have is an error at render,
//! never a blank or a literal `{{placeholder}}` in a customer's mail. Mail is
//! plain text, so nothing is HTML-escaped. Each language has its own folder
//! (`zh-CN/`, `en/`) with one template per reply kind and the `greeting` and
//! `signature` partials (`{{> zh-CN/greeting}}`).

use std::path::{Path, PathBuf};

use handlebars::Handlebars;

use super::context::{self, CaseInput, Inputs, ReplyContext, SimilarCase, ThreadText};
use crate::config::DraftingConfig;
use casebot_analysis::conclude::{ChainLimits, Conclusion, conclude};
use casebot_analysis::rules::RuleSet;
use casebot_analysis::scan::scan_text;
use casebot_core::domain::Direction;
use casebot_core::domain::DraftKind;
use casebot_core::domain::Lang;
use casebot_core::domain::MailSignal;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_templates.rs"));
}

pub const LANGS: [Lang; 3] = [Lang::Zh, Lang::ZhTw, Lang::En];
/// Partials every language folder must have besides one template per kind.
pub const PARTIALS: [&str; 2] = ["greeting", "signature"];
/// The folder of text modules, `snippets/<lang>/<name>.hbs`.
pub const SNIPPETS: &str = "snippets";

/// What a template of `lang` reads: the context as composed, or for
/// Traditional Chinese with every sentence casebot composed (in Simplified)
/// turned Traditional.
fn in_script(lang: &str, context: &impl serde::Serialize) -> serde_json::Value {
    let mut value = serde_json::to_value(context).unwrap_or(serde_json::Value::Null);
    if Lang::parse(lang) == Some(Lang::ZhTw) {
        crate::hant::value_to_traditional(&mut value);
    }
    value
}

/// A template that does not load or does not render, with where.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TemplateProblem {
    pub template: String,
    /// The sample the render was tried with (empty for load errors).
    pub sample: String,
    pub message: String,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.sample.is_empty() {
            write!(f, "{}: {}", self.template, self.message)
        } else {
            write!(
                f,
                "{} (sample {}): {}",
                self.template, self.sample, self.message
            )
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the templates in {origin} do not load:\n{}", list(.problems))]
pub struct LoadError {
    pub origin: String,
    pub problems: Vec<TemplateProblem>,
}

fn list(problems: &[TemplateProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A template failed at render time (strict mode).
#[derive(Debug, thiserror::Error)]
#[error("template {template}: {message}")]
pub struct RenderError {
    pub template: String,
    pub message: String,
}

/// The loaded templates.
pub struct Templates {
    registry: Handlebars<'static>,
    /// The fill-in marks (`<KB>`) each language's templates write, which
    /// approval refuses to send unfilled (see [`crate::check`]).
    fill_ins: std::collections::HashMap<String, Vec<String>>,
    /// Where they came from, for messages.
    pub origin: PathBuf,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The templates `settings` name, relative to `base_dir` (the config
    /// file's folder); the built-in copy when the setting is the default and
    /// that folder is missing.
    pub fn configured(settings: &DraftingConfig, base_dir: &Path) -> Result<Templates, LoadError> {
        let dir = base_dir.join(&settings.templates_dir);
        if !dir.exists() && settings.templates_dir == Path::new("templates") {
            Self::embedded()
        } else {
            Self::load(&dir)
        }
    }

    pub fn embedded() -> Result<Templates, LoadError> {
        let files = embedded::EMBEDDED_TEMPLATES
            .iter()
            .map(|(p, text)| (p.to_string(), text.to_string()))
            .collect();
        Self::from_files(PathBuf::from("<built-in templates>"), files)
    }

    /// Loads every `.hbs` file under `dir` (`zh-CN/scope.hbs` is `zh-CN/scope`),
    /// and the optional text modules under `snippets/<lang>/`.
    pub fn load(dir: &Path) -> Result<Templates, LoadError> {
        let mut files = Vec::new();
        let mut problems = Vec::new();
        for lang in LANGS {
            let sub = dir.join(lang.tag());
            match std::fs::read_dir(&sub) {
                Ok(entries) => read_hbs(dir, entries, &mut files, &mut problems),
                Err(e) => problems.push(TemplateProblem {
                    template: sub.display().to_string(),
                    sample: String::new(),
                    message: format!("cannot read the folder: {e}"),
                }),
            }
            if let Ok(entries) = std::fs::read_dir(dir.join(SNIPPETS).join(lang.tag())) {
                read_hbs(dir, entries, &mut files, &mut problems);
            }
        }
        if !problems.is_empty() {
            return Err(LoadError {
                origin: dir.display().to_string(),
                problems,
            });
        }
        Self::from_files(dir.to_path_buf(), files)
    }

    fn from_files(origin: PathBuf, files: Vec<(String, String)>) -> Result<Templates, LoadError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        // Plain-text mail: `<` and `&` are the customer's, not markup.
        registry.register_escape_fn(handlebars::no_escape);
        registry.set_prevent_indent(true);
        let mut problems = Vec::new();
        let mut fill_ins: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (path, text) in files {
            let name = path.trim_end_matches(".hbs").replace('\\', "/");
            let lang_of = name
                .strip_prefix(SNIPPETS)
                .map_or(name.as_str(), |s| s.trim_start_matches('/'));
            if let Some((lang, _)) = lang_of.split_once('/') {
                let marks = fill_ins.entry(lang.to_string()).or_default();
                for mark in crate::check::fill_ins(&text) {
                    if !marks.contains(&mark) {
                        marks.push(mark);
                    }
                }
            }
            if let Err(e) = registry.register_template_string(&name, text) {
                problems.push(TemplateProblem {
                    template: path,
                    sample: String::new(),
                    message: e.to_string(),
                });
            }
        }
        for lang in LANGS {
            let names = DraftKind::ALL.iter().map(|k| k.as_str()).chain(PARTIALS);
            for name in names {
                let full = format!("{}/{name}", lang.tag());
                if !registry.has_template(&full) {
                    problems.push(TemplateProblem {
                        template: format!("{full}.hbs"),
                        sample: String::new(),
                        message: "missing".into(),
                    });
                }
            }
        }
        if problems.is_empty() {
            Ok(Templates {
                registry,
                fill_ins,
                origin,
            })
        } else {
            Err(LoadError {
                origin: origin.display().to_string(),
                problems,
            })
        }
    }

    /// The fill-in marks the templates of language `lang` (`zh-CN`) write.
    pub fn fill_ins(&self, lang: &str) -> &[String] {
        self.fill_ins.get(lang).map_or(&[], Vec::as_slice)
    }

    /// The names of the text modules of language `lang`, sorted.
    pub fn snippets(&self, lang: &str) -> Vec<String> {
        let prefix = format!("{SNIPPETS}/{lang}/");
        let mut names: Vec<String> = self
            .registry
            .get_templates()
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// Renders text module `name` of language `lang` against a reply's
    /// context (strict: a name the context lacks is an error).
    pub fn render_snippet(
        &self,
        lang: &str,
        name: &str,
        context: &impl serde::Serialize,
    ) -> Result<String, RenderError> {
        let full = format!("{SNIPPETS}/{lang}/{name}");
        if !self.registry.has_template(&full) {
            return Err(RenderError {
                template: format!("{full}.hbs"),
                message: "no such text module".into(),
            });
        }
        let text = self
            .registry
            .render(&full, &in_script(lang, context))
            .map_err(|e| RenderError {
                template: format!("{full}.hbs"),
                message: e.to_string(),
            })?;
        Ok(tidy(&text).trim_end().to_string())
    }

    /// Renders the body of a reply.
    pub fn render(&self, context: &ReplyContext) -> Result<String, RenderError> {
        let name = format!("{}/{}", context.lang, context.kind);
        let text = self
            .registry
            .render(&name, &in_script(context.lang, context))
            .map_err(|e| RenderError {
                template: format!("{name}.hbs"),
                message: e.to_string(),
            })?;
        Ok(tidy(&text))
    }

    /// Renders every template against every sample; each failure is listed.
    pub fn check(&self, rules: &RuleSet, settings: &DraftingConfig) -> Vec<TemplateProblem> {
        let mut problems = Vec::new();
        for sample in samples(rules, settings) {
            match self.render(&sample.context) {
                Ok(text) => {
                    let template = format!("{}/{}.hbs", sample.context.lang, sample.context.kind);
                    if text.trim().is_empty() {
                        problems.push(TemplateProblem {
                            template,
                            sample: sample.name.clone(),
                            message: "renders to nothing".into(),
                        });
                    } else if text.contains("{{") || text.contains("}}") {
                        problems.push(TemplateProblem {
                            template,
                            sample: sample.name.clone(),
                            message: "leaves a literal {{…}} in the mail".into(),
                        });
                    }
                }
                Err(e) => problems.push(TemplateProblem {
                    template: e.template,
                    sample: sample.name.clone(),
                    message: e.message,
                }),
            }
            // Every text module renders against every sample of its language.
            for name in self.snippets(sample.context.lang) {
                if let Err(e) = self.render_snippet(sample.context.lang, &name, &sample.context) {
                    problems.push(TemplateProblem {
                        template: e.template,
                        sample: sample.name.clone(),
                        message: e.message,
                    });
                }
            }
        }
        problems
    }
}

/// Reads the `.hbs` files of one folder, named by their path under `dir`.
fn read_hbs(
    dir: &Path,
    entries: std::fs::ReadDir,
    files: &mut Vec<(String, String)>,
    problems: &mut Vec<TemplateProblem>,
) {
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "hbs") {
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                files.push((rel.display().to_string(), text));
            }
            Err(e) => problems.push(TemplateProblem {
                template: path.display().to_string(),
                sample: String::new(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
}

/// Trailing spaces off, at most one blank line in a row (conditional blocks
/// leave gaps), one final newline.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.trim_start_matches(['\n', '\r']).lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// One sample context for the check and the benchmark.
pub struct Sample {
    pub name: String,
    pub context: ReplyContext,
}

/// An invented CBS excerpt (the hard-link failure shape), analysed with the
/// real rules so the samples carry what a real analysis carries.
const SAMPLE_CBS: &str = "\
2024-03-05 10:12:01, Info                  CBS    Starting TrustedInstaller initialization.
2024-03-05 10:14:21, Error                 CSI    00000026 (F) STATUS_CANNOT_DELETE #112233# from Windows::Rtl::SystemImplementation::CDirectory::DeleteExistingFile(...)[gle=0xd0000121]
2024-03-05 10:14:21, Info                  CSI    00000028 Error STATUS_CANNOT_DELETE while executing operation HardLinkFile on [l:120]'\\SystemRoot\\WinSxS\\amd64_microsoft-windows-example.resources_31bf3856ad364e35_10.0.17763.5000_en-us_0123456789abcdef\\example.dll.mui'
2024-03-05 10:14:21, Info                  CBS    Failed to add to transaction package: Package_101_for_KB5099999~31bf3856ad364e35~amd64~~10.0.1.9 [HRESULT = 0x80004005 - E_FAIL]
2024-03-05 10:14:21, Error                 CBS    Failed to stage execution package: Package_101_for_KB5099999~31bf3856ad364e35~amd64~~10.0.1.9 [HRESULT = 0x80004005 - E_FAIL]
";

const SAMPLE_SUCCESS: &str = "\
2024-03-06 09:00:01, Info                  CBS    Starting TrustedInstaller initialization.
2024-03-06 09:20:00, Info                  CBS    Exec: Processing complete.  Session: 31000000_1234567890, Package: Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.5000.1.0 [HRESULT = 0x00000000 - S_OK]
";

fn sample_conclusion(rules: &RuleSet, text: &str) -> Conclusion {
    let scan = scan_text(rules, "CBS.log", text, None, 1000);
    conclude(&scan.findings, rules, Lang::Zh, ChainLimits::default())
}

/// One situation a sample case is in.
struct Situation<'a> {
    name: &'static str,
    case: &'a CaseInput,
    conclusion: Option<&'a Conclusion>,
    /// With similar cases, a portal password and the case's failure.
    rich: bool,
    thread: &'a [ThreadText],
}

/// Every kind × language × situation the templates must handle.
pub fn samples(rules: &RuleSet, settings: &DraftingConfig) -> Vec<Sample> {
    let failure = sample_conclusion(rules, SAMPLE_CBS);
    let success = sample_conclusion(rules, SAMPLE_SUCCESS);
    let case = CaseInput {
        key: "CAS-99999-SAMPLE".into(),
        number: Some("CAS-99999-SAMPLE".into()),
        title: Some("示例用户反馈补丁KB5099999安装失败".into()),
        priority: Some("P2".into()),
        customer: Some("EXAMPLE".into()),
        internal_ref: Some("CMIT:0000001".into()),
        title_kbs: vec!["KB5099999".into()],
    };
    let bare = CaseInput {
        key: "T-0123456789ab".into(),
        ..CaseInput::default()
    };
    let thread = vec![
        ThreadText {
            direction: Direction::Engineer,
            from_name: Some("Desk".into()),
            signal: None,
            new_text: "问题定义:\n示例补丁安装失败。\n问题范围:\n…".into(),
        },
        ThreadText {
            direction: Direction::Customer,
            from_name: Some("示例客户".into()),
            signal: Some(MailSignal::Resolution),
            new_text: "您好\n问题解决了，打开 Windows Modules Installer 服务后安装成功。".into(),
        },
    ];
    let similar = vec![SimilarCase {
        case: "CAS-99998-EARLY1".into(),
        class_name: "权限不足或服务被禁用".into(),
        resolution: "打开 TrustedInstaller 服务后安装成功。".into(),
    }];
    let mut out = Vec::new();
    for lang in LANGS {
        for kind in DraftKind::ALL {
            let situations = [
                Situation {
                    name: "failure",
                    case: &case,
                    conclusion: Some(&failure),
                    rich: true,
                    thread: &thread,
                },
                Situation {
                    name: "success",
                    case: &case,
                    conclusion: Some(&success),
                    rich: false,
                    thread: &thread[..1],
                },
                Situation {
                    name: "nothing-known",
                    case: &bare,
                    conclusion: None,
                    rich: false,
                    thread: &[],
                },
            ];
            for Situation {
                name,
                case,
                conclusion,
                rich,
                thread,
            } in situations
            {
                let inputs = Inputs {
                    kind,
                    lang,
                    case,
                    thread,
                    parent: thread.len().checked_sub(1),
                    conclusion,
                    last_failure: conclusion.filter(|_| rich),
                    similar: if rich { similar.clone() } else { Vec::new() },
                    rules,
                    settings,
                    portal_password: rich.then(|| "Sample-Pass-1".to_string()),
                    // An owner's own profile signs the rich samples.
                    signer: rich.then(|| context::Engineer {
                        name: "王工 Wang Gong".into(),
                        signature_lines: vec![
                            "示例技术支持部".into(),
                            "Tel: +86-10-5550-0001".into(),
                        ],
                    }),
                };
                out.push(Sample {
                    name: name.to_string(),
                    context: context::build(&inputs),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(scope: &str) -> Vec<(String, String)> {
        let mut files = Vec::new();
        for lang in LANGS.map(Lang::tag) {
            for kind in DraftKind::ALL {
                let text = if kind == DraftKind::Scope { scope } else { "x" };
                files.push((format!("{lang}/{}.hbs", kind.as_str()), text.to_string()));
            }
            for p in PARTIALS {
                files.push((
                    format!("{lang}/{p}.hbs"),
                    format!("[{p} {{{{customer.name}}}}]"),
                ));
            }
        }
        files
    }

    fn rules() -> RuleSet {
        RuleSet::embedded().expect("built-in rules")
    }

    #[test]
    fn a_missing_variable_is_an_error_never_a_blank() {
        let t = Templates::from_files("t".into(), files("Case {{case.numbr}}\n")).unwrap();
        let problems = t.check(&rules(), &DraftingConfig::default());
        assert!(!problems.is_empty());
        assert!(
            problems.iter().all(|p| p.template.ends_with("/scope.hbs")),
            "{problems:?}"
        );
        assert!(problems[0].message.contains("numbr"), "{}", problems[0]);
    }

    #[test]
    fn partials_and_plain_text_are_not_escaped() {
        let t = Templates::from_files(
            "t".into(),
            files("{{> zh-CN/greeting}}\n\n\n\n{{case.title}} <{{case.number}}> & co   \n"),
        )
        .unwrap();
        let samples = samples(&rules(), &DraftingConfig::default());
        let zh_scope = samples
            .iter()
            .find(|s| s.context.lang == "zh-CN" && s.context.kind == "scope")
            .unwrap();
        let text = t.render(&zh_scope.context).unwrap();
        assert_eq!(
            text,
            "[greeting 示例客户]\n\n示例用户反馈补丁KB5099999安装失败 <CAS-99999-SAMPLE> & co\n"
        );
    }

    /// A Traditional Chinese reply reads what casebot composed (in
    /// Simplified) in Traditional characters; names and codes stay.
    #[test]
    fn traditional_replies_read_traditional_text() {
        let t = Templates::from_files(
            "t".into(),
            files("{{> zh-TW/greeting}}\n{{problem}} {{case.number}}\n"),
        )
        .unwrap();
        let samples = samples(&rules(), &DraftingConfig::default());
        let scope = |lang: &str| {
            samples
                .iter()
                .find(|s| s.context.lang == lang && s.context.kind == "scope")
                .unwrap()
        };
        let simplified = t.render(&scope("zh-CN").context).unwrap();
        let traditional = t.render(&scope("zh-TW").context).unwrap();
        assert!(simplified.contains("示例补丁安装失败"), "{simplified}");
        assert!(traditional.contains("示例補丁安裝失敗"), "{traditional}");
        assert!(traditional.contains("[greeting 示例客戶]"), "{traditional}");
        assert!(traditional.contains("CAS-99999-SAMPLE"), "{traditional}");
    }

    #[test]
    fn a_syntax_error_and_a_missing_template_name_the_file() {
        let mut f = files("{{#if case.title}}unclosed\n");
        f.retain(|(p, _)| p != "en/closure.hbs");
        let err = Templates::from_files("t".into(), f)
            .unwrap_err()
            .to_string();
        assert!(err.contains("zh-CN/scope.hbs"), "{err}");
        assert!(err.contains("en/closure.hbs: missing"), "{err}");
    }

    #[test]
    fn the_shipped_templates_render_every_sample() {
        let t = Templates::embedded().expect("shipped templates load");
        let problems = t.check(&rules(), &DraftingConfig::default());
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn samples_carry_a_real_analysis() {
        let samples = samples(&rules(), &DraftingConfig::default());
        let failure = samples.iter().find(|s| s.name == "failure").unwrap();
        let analysis = failure.context.analysis.as_ref().unwrap();
        assert!(analysis.failed, "{analysis:?}");
        assert!(analysis.decisive[0].text.contains("STATUS_CANNOT_DELETE"));
        assert!(!analysis.steps.is_empty());
        let success = samples.iter().find(|s| s.name == "success").unwrap();
        assert!(success.context.analysis.as_ref().unwrap().succeeded);
    }
}
