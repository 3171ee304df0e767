//! The desk's words in its people's languages: Fluent message catalogues
//! (`crates/app/locales/<lang>/desk.ftl`, built into the binary), the
//! language of a request, and dates and business time in the locale's
//! format.
//!
//! A logged-in person reads the desk in their account's language (else
//! `[web] language`); before login the `casebot_lang` cookie, else the
//! browser's `Accept-Language`, else `[web] language` decides. The
//! language of a request is also kept for the request's task, so an error
//! page, which has no account at hand, speaks it too.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid, static_loader};
use serde::Serialize;

static_loader! {
    static CATALOGUES = {
        locales: "./locales",
        fallback_language: "en",
        // No Unicode isolation marks around arguments: they would end up
        // in attribute values and in text a person copies.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

static ZH_CN: LanguageIdentifier = langid!("zh-CN");
static EN: LanguageIdentifier = langid!("en");

/// The name of the cookie that remembers a browser's choice before login.
pub const LANG_COOKIE: &str = "casebot_lang";

/// A language the desk speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UiLang {
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

impl UiLang {
    pub const ALL: [UiLang; 2] = [UiLang::ZhCn, UiLang::En];

    /// `zh-CN`, `zh`, `zh-Hans`, `en`, `en-US` … (any letter case).
    pub fn parse(tag: &str) -> Option<UiLang> {
        let tag = tag.trim().to_ascii_lowercase().replace('_', "-");
        let primary = tag.split('-').next().unwrap_or("");
        match primary {
            "zh" => Some(UiLang::ZhCn),
            "en" => Some(UiLang::En),
            _ => None,
        }
    }

    /// The BCP 47 tag: `<html lang>`, the account's setting, the config.
    pub fn tag(self) -> &'static str {
        match self {
            UiLang::ZhCn => "zh-CN",
            UiLang::En => "en",
        }
    }

    /// The language's own name, for the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            UiLang::ZhCn => "中文",
            UiLang::En => "English",
        }
    }

    fn id(self) -> &'static LanguageIdentifier {
        match self {
            UiLang::ZhCn => &ZH_CN,
            UiLang::En => &EN,
        }
    }

    /// The first language of an `Accept-Language` header the desk speaks,
    /// by the header's quality values.
    pub fn from_accept_language(header: &str) -> Option<UiLang> {
        let mut offered: Vec<(f32, UiLang)> = header
            .split(',')
            .take(16)
            .filter_map(|item| {
                let mut parts = item.split(';');
                let lang = UiLang::parse(parts.next()?)?;
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q > 0.0).then_some((q, lang))
            })
            .collect();
        // Stable: among equal qualities the header's order wins.
        offered.sort_by(|a, b| b.0.total_cmp(&a.0));
        offered.first().map(|(_, lang)| *lang)
    }

    /// The message `id`. Messages without arguments are looked up once per
    /// thread and language: a page of 200 rows asks for the same few words
    /// hundreds of times.
    pub fn t(self, id: &str) -> String {
        PLAIN.with(|cache| {
            let mut cache = cache.borrow_mut();
            let table = &mut cache[self as usize];
            if let Some(text) = table.get(id) {
                return text.clone();
            }
            let text = CATALOGUES.lookup(self.id(), id);
            table.insert(id.to_string(), text.clone());
            text
        })
    }

    /// The message `id` with its arguments.
    pub fn t_args(self, id: &str, args: &[(&'static str, FluentValue<'static>)]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue<'static>> = args
            .iter()
            .map(|(name, value)| (Cow::Borrowed(*name), value.clone()))
            .collect();
        CATALOGUES.lookup_with_args(self.id(), id, &args)
    }

    /// Whether this language's own catalogue has `id` (no fallback).
    pub fn has(self, id: &str) -> bool {
        let no_args: Option<&HashMap<String, FluentValue>> = None;
        match CATALOGUES.lookup_single_language(self.id(), id, no_args) {
            Ok(_) => true,
            // The crate does not export its error type: a message that
            // exists but wants arguments fails with "Fluent errors".
            Err(e) => e.to_string().starts_with("Fluent errors"),
        }
    }

    /// A time in the desk's zone, to the minute, as the locale writes it.
    pub fn datetime(self, t: DateTime<Utc>, tz: Tz) -> String {
        t.with_timezone(&tz)
            .format(&self.t("format-datetime"))
            .to_string()
    }

    /// Business minutes as the locale reads them (`3h05m`, `3小时05分`);
    /// whole hours from 100 h on, where minutes no longer matter.
    pub fn business_time(self, minutes: i64) -> String {
        let sign = if minutes < 0 { "−" } else { "" };
        let (hours, rest) = (minutes.abs() / 60, minutes.abs() % 60);
        let hour = self.t("duration-hour-unit");
        if hours >= 100 {
            format!("{sign}{hours}{hour}")
        } else {
            let minute = self.t("duration-minute-unit");
            format!("{sign}{hours}{hour}{rest:02}{minute}")
        }
    }

    /// The label of a stored word (a status, an urgency, a draft kind …):
    /// `prefix-word` from the catalogue, else the word itself, so a word a
    /// newer build stored still shows.
    pub fn word(self, prefix: &str, word: &str) -> String {
        let id = format!("{prefix}-{}", word.replace('_', "-"));
        WORDS.with(|cache| {
            let mut cache = cache.borrow_mut();
            let table = &mut cache[self as usize];
            if let Some(label) = table.get(&id) {
                return label.clone();
            }
            let label = CATALOGUES
                .try_lookup(self.id(), &id)
                .unwrap_or_else(|| word.to_string());
            table.insert(id, label.clone());
            label
        })
    }
}

/// A Fluent argument from a number or a text.
pub fn arg(value: impl IntoArg) -> FluentValue<'static> {
    value.into_arg()
}

/// What can be a message's argument.
pub trait IntoArg {
    fn into_arg(self) -> FluentValue<'static>;
}

macro_rules! number_arg {
    ($($t:ty),*) => {$(
        impl IntoArg for $t {
            fn into_arg(self) -> FluentValue<'static> {
                FluentValue::from(self)
            }
        }
    )*};
}
number_arg!(i64, u64, usize, u32, i32, u16);

impl IntoArg for String {
    fn into_arg(self) -> FluentValue<'static> {
        FluentValue::from(self)
    }
}

impl IntoArg for &str {
    fn into_arg(self) -> FluentValue<'static> {
        FluentValue::from(self.to_string())
    }
}

impl IntoArg for &String {
    fn into_arg(self) -> FluentValue<'static> {
        FluentValue::from(self.clone())
    }
}

/// `tr!(lang, "id")` or `tr!(lang, "id", name = value, …)`: a message of
/// the catalogue in `lang`.
macro_rules! tr {
    ($lang:expr, $id:literal) => {
        $lang.t($id)
    };
    ($lang:expr, $id:literal, $($name:ident = $value:expr),+ $(,)?) => {
        $lang.t_args($id, &[$((stringify!($name), $crate::i18n::arg($value))),+])
    };
}
pub(crate) use tr;

thread_local! {
    /// Messages without arguments, per language (see [`UiLang::t`]).
    static PLAIN: std::cell::RefCell<[HashMap<String, String>; 2]> = Default::default();
    /// Labels of stored words, per language (see [`UiLang::word`]).
    static WORDS: std::cell::RefCell<[HashMap<String, String>; 2]> = Default::default();
}

tokio::task_local! {
    /// The language of the request being answered (see the module's doc).
    static REQUEST_LANG: Cell<UiLang>;
}

/// Runs `f` with `lang` as the request's language.
pub async fn with_request_lang<F: std::future::Future>(lang: UiLang, f: F) -> F::Output {
    REQUEST_LANG.scope(Cell::new(lang), f).await
}

/// Sets the request's language (the logged-in account's).
pub fn set_request_lang(lang: UiLang) {
    let _ = REQUEST_LANG.try_with(|cell| cell.set(lang));
}

/// The request's language, when answering one.
pub fn request_lang() -> Option<UiLang> {
    REQUEST_LANG.try_with(Cell::get).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn ids(lang: UiLang) -> BTreeSet<String> {
        let path = format!(
            "{}/locales/{}/desk.ftl",
            env!("CARGO_MANIFEST_DIR"),
            lang.tag()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_lowercase()))
            .filter_map(|l| l.split_once(" =").map(|(id, _)| id.trim().to_string()))
            .collect()
    }

    #[test]
    fn both_catalogues_have_the_same_messages() {
        let (zh, en) = (ids(UiLang::ZhCn), ids(UiLang::En));
        assert!(zh.len() > 100, "{}", zh.len());
        let only_zh: Vec<_> = zh.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&zh).collect();
        assert!(
            only_zh.is_empty() && only_en.is_empty(),
            "only in zh-CN: {only_zh:?}; only in en: {only_en:?}"
        );
        for lang in UiLang::ALL {
            for id in &zh {
                assert!(lang.has(id), "{} cannot format {id}", lang.tag());
            }
        }
    }

    /// Every `tr!(…, "id"` in the desk's code names a message both
    /// catalogues have: a typo is a failing test, not a page showing a key.
    #[test]
    fn every_message_the_code_asks_for_exists() {
        let known = ids(UiLang::En);
        let mut asked = 0;
        let dirs =
            ["/src/web", "/src/notify"].map(|d| format!("{}{d}", env!("CARGO_MANIFEST_DIR")));
        let files = dirs
            .iter()
            .flat_map(|dir| std::fs::read_dir(dir).unwrap())
            .map(|entry| entry.unwrap().path());
        for path in files {
            // This file's own calls are its tests.
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("i18n.rs") {
                continue;
            }
            let code = std::fs::read_to_string(&path).unwrap();
            let calls = code
                .match_indices("tr!(")
                .chain(code.match_indices("said!("));
            for (at, _) in calls {
                // `include_str!(` is not a call of `tr!`.
                let before = code[..at].chars().next_back().unwrap_or(' ');
                if before.is_alphanumeric() || before == '_' {
                    continue;
                }
                let rest = &code[at..];
                let Some(open) = rest.find('"') else { continue };
                let id: String = rest[open + 1..].chars().take_while(|c| *c != '"').collect();
                if id == "id" {
                    continue; // this doc comment and the macro itself
                }
                asked += 1;
                assert!(known.contains(&id), "{}: no message {id:?}", path.display());
            }
        }
        assert!(asked > 100, "{asked}");
    }

    /// Every word the store keeps that the desk shows has a label in both
    /// languages.
    #[test]
    fn every_stored_word_has_a_label() {
        use casebot_core::domain::{CaseStatus, Direction, DraftKind, DraftStatus, Level, Stage};
        use casebot_core::sla::{TargetKind, Urgency};
        let mut words: Vec<(&str, &str)> = Vec::new();
        words.extend(CaseStatus::ALL.map(|w| ("status", w.as_str())));
        words.extend(DraftKind::ALL.map(|w| ("kind", w.as_str())));
        words.extend(DraftStatus::ALL.map(|w| ("draft-status", w.as_str())));
        words.extend(Stage::ALL.map(|w| ("stage", w.as_str())));
        words.extend(
            [
                Direction::Customer,
                Direction::Engineer,
                Direction::Auto,
                Direction::Bounce,
            ]
            .map(|w| ("direction", w.as_str())),
        );
        words.extend(
            [
                Urgency::Breached,
                Urgency::AtRisk,
                Urgency::OnTrack,
                Urgency::Paused,
                Urgency::Closed,
            ]
            .map(|w| ("urgency", w.as_str())),
        );
        words.extend(
            [
                TargetKind::FirstResponse,
                TargetKind::Update,
                TargetKind::Handover,
                TargetKind::Resolution,
            ]
            .map(|w| ("target", w.as_str())),
        );
        words.extend([Level::Error, Level::Warning].map(|w| ("level", w.as_str())));
        words.extend(["engineer", "lead"].map(|w| ("role", w)));
        words.extend(casebot_store::imap::FOLDER_STATES.map(|w| ("mailbox-state", w)));
        words.extend(casebot_core::notify::Topic::ALL.map(|t| ("topic", t.as_str())));
        words.extend(casebot_store::notify::NOTICE_STATES.map(|w| ("notice-state", w)));
        for lang in UiLang::ALL {
            for (prefix, word) in &words {
                let id = format!("{prefix}-{}", word.replace('_', "-"));
                assert!(lang.has(&id), "{}: no label {id}", lang.tag());
            }
        }
    }

    #[test]
    fn languages_come_from_tags_and_browsers() {
        assert_eq!(UiLang::parse("zh-CN"), Some(UiLang::ZhCn));
        assert_eq!(UiLang::parse("zh_Hans"), Some(UiLang::ZhCn));
        assert_eq!(UiLang::parse("EN-gb"), Some(UiLang::En));
        assert_eq!(UiLang::parse("fr"), None);
        assert_eq!(
            UiLang::from_accept_language("fr-FR,fr;q=0.9,en-US;q=0.8,zh;q=0.7"),
            Some(UiLang::En)
        );
        assert_eq!(
            UiLang::from_accept_language("en;q=0.5, zh-CN"),
            Some(UiLang::ZhCn)
        );
        assert_eq!(UiLang::from_accept_language("de, *;q=0.1"), None);
    }

    #[test]
    fn times_and_words_follow_the_locale() {
        let t = DateTime::parse_from_rfc3339("2026-03-02T01:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(UiLang::ZhCn.datetime(t, tz), "2026年3月2日 09:05");
        assert_eq!(UiLang::En.datetime(t, tz), "2 Mar 2026 09:05");
        assert_eq!(UiLang::ZhCn.business_time(185), "3小时05分");
        assert_eq!(UiLang::En.business_time(-80), "−1h20m");
        assert_eq!(UiLang::En.business_time(6000), "100h");
        assert_eq!(UiLang::ZhCn.word("status", "waiting_on_us"), "待我方处理");
        assert_eq!(UiLang::ZhCn.word("status", "someday"), "someday");
        assert_eq!(tr!(UiLang::En, "cases-count", count = 1usize), "1 case");
    }
}
