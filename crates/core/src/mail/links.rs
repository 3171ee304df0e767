//! Links a mail points at: http(s) URLs (in the text or only in an HTML
//! `href`) and UNC paths. Log bundles often arrive this way rather than as
//! attachments.
//!
//! Only the sender's new text counts: quoted history repeats every link of
//! the thread. An HTML link (`<a href=…>点击这里下载</a>`) counts when its
//! text, or its address, stands in the new text.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub url: String,
    /// `http` (http and https) or `unc`.
    pub kind: &'static str,
}

static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)https?://[^\s<>"'`）】」，。、；！？\u{3000}]+"#).expect("static regex")
});
static ANCHOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?is)<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>(.*?)</a\s*>"#)
        .expect("static regex")
});
static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<[^>]*>").expect("static regex"));
static UNC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\\\\[A-Za-z0-9][A-Za-z0-9._$-]*(?:\\[^\\\s<>"'|，。、；）】]+)+\\?"#)
        .expect("static regex")
});

/// Collects links from the new text and from the HTML links whose text
/// stands in it, in order of first appearance, without duplicates (a
/// trailing slash does not make a new link).
pub fn extract_links(text: &str, html: &[&str]) -> Vec<Link> {
    let squeezed_text = squeeze(text);
    let mut out: Vec<Link> = Vec::new();
    // A set: a mail may hold hundreds of thousands of links.
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut push = |url: String, kind: &'static str| {
        let key = url.trim_end_matches('/').to_string();
        if !key.is_empty() && seen.insert(key) {
            out.push(Link { url, kind });
        }
    };
    for m in URL.find_iter(text) {
        push(trim_url(m.as_str()).to_string(), "http");
    }
    for m in UNC.find_iter(text) {
        push(
            m.as_str()
                .trim_end_matches(['.', ',', ')', ';', ':'])
                .to_string(),
            "unc",
        );
    }
    for source in html {
        for c in ANCHOR.captures_iter(source) {
            let raw = c
                .get(1)
                .or(c.get(2))
                .or(c.get(3))
                .map(|g| g.as_str())
                .unwrap_or("");
            let href = decode_entities(raw.trim());
            let label = squeeze(&decode_entities(&TAG.replace_all(&c[4], "")));
            let in_new_text = (!label.is_empty() && squeezed_text.contains(&label))
                || squeezed_text.contains(&squeeze(&href));
            if !in_new_text {
                continue;
            }
            let lower = href.to_ascii_lowercase();
            if lower.starts_with("http://") || lower.starts_with("https://") {
                push(href, "http");
            } else if lower.starts_with("file://") {
                // file://host/share/x is how Outlook links a UNC path.
                let path = href[7..].trim_start_matches('/').replace('/', "\\");
                if !path.is_empty() {
                    push(format!("\\\\{path}"), "unc");
                }
            }
        }
    }
    out
}

/// Sentence punctuation after a URL is not part of it; a closing bracket is
/// only part of it when the URL opened one.
fn trim_url(url: &str) -> &str {
    let mut url = url.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '"']);
    while let Some(stripped) = url.strip_suffix(')') {
        if url.matches('(').count() >= url.matches(')').count() {
            break;
        }
        url = stripped.trim_end_matches(['.', ',', ';', ':']);
    }
    url
}

/// Text without white space, for finding a link's text in the plain text
/// (HTML and its plain rendering wrap and space differently).
fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Every named and numeric character reference, as a browser reads an
/// `href` (html-escape knows the whole HTML5 table).
fn decode_entities(s: &str) -> String {
    html_escape::decode_html_entities(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(links: &[Link]) -> Vec<(&str, &str)> {
        links.iter().map(|l| (l.url.as_str(), l.kind)).collect()
    }

    #[test]
    fn text_urls_trim_punctuation_and_dedupe_trailing_slash() {
        let links = extract_links(
            "请登录https://upload.example.com <https://upload.example.com/> 上传。下载：https://files.example.com/get.php?id=1&token=abc。(see https://example.com/a_(b))",
            &[],
        );
        assert_eq!(
            urls(&links),
            [
                ("https://upload.example.com", "http"),
                ("https://files.example.com/get.php?id=1&token=abc", "http"),
                ("https://example.com/a_(b)", "http"),
            ]
        );
    }

    #[test]
    fn href_only_links_and_entities() {
        let html = r#"<a href="https://logs.example.com/d?id=5&amp;t=x">下载日志</a> <a href='mailto:a@example.com'>m</a> <a href=file://fs01/logs/case1>share</a>"#;
        let links = extract_links("下载日志 share", &[html]);
        assert_eq!(
            urls(&links),
            [
                ("https://logs.example.com/d?id=5&t=x", "http"),
                ("\\\\fs01\\logs\\case1", "unc")
            ]
        );
    }

    #[test]
    fn a_link_only_in_the_quoted_history_is_not_the_mail_s() {
        let html = r#"<p>新的日志：<a href="https://logs.example.com/new.zip">点击这里
            下载</a></p><blockquote><a href="https://logs.example.com/old.zip">旧日志</a></blockquote>"#;
        let links = extract_links("新的日志：点击这里下载", &[html]);
        assert_eq!(urls(&links), [("https://logs.example.com/new.zip", "http")]);
    }

    #[test]
    fn unc_paths() {
        let links = extract_links(
            r"日志在 \\fileserver01\share$\CAS-1\logs.zip ，请查收。源：\\10.0.0.5\windows",
            &[],
        );
        assert_eq!(
            urls(&links),
            [
                (r"\\fileserver01\share$\CAS-1\logs.zip", "unc"),
                (r"\\10.0.0.5\windows", "unc")
            ]
        );
    }
}
