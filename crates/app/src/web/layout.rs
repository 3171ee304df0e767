//! The page shell, the stylesheet and script, and small formatting helpers
//! shared by the pages.

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::DateTime;
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, html};

use super::auth::Desk;
use super::i18n::{UiLang, tr};
use casebot_core::sla::{TargetView, Urgency};

const STYLESHEET: &str = include_str!("static/desk.css");
const SCRIPT: &str = include_str!("static/desk.js");

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLESHEET,
    )
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        SCRIPT,
    )
}

/// A whole page in `lang`: the navigation, who is logged in, the language
/// switch, and `body`.
pub fn page(lang: UiLang, title: &str, desk: Option<&Desk>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · casebot" }
                link rel="stylesheet" href="/static/desk.css";
                script src="/static/desk.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/cases" { "casebot" }
                    @if let Some(desk) = desk {
                        nav {
                            a href="/cases" { (tr!(lang, "nav-cases")) }
                            a href="/cases?mine=1" { (tr!(lang, "nav-mine")) }
                            a href="/search" { (tr!(lang, "nav-search")) }
                            a href="/board" { (tr!(lang, "nav-board")) }
                            @if desk.is_lead() {
                                a href="/report" { (tr!(lang, "nav-report")) }
                                a href="/admin/users" { (tr!(lang, "nav-admin")) }
                            }
                        }
                        form.language method="post" action="/account/language" {
                            input type="hidden" name="csrf" value=(desk.csrf());
                            @for other in UiLang::ALL.into_iter().filter(|l| *l != lang) {
                                button.link type="submit" name="language" value=(other.tag()) lang=(other.tag()) { (other.native_name()) }
                            }
                        }
                        form.logout method="post" action="/logout" {
                            span.who { (desk.user().name) " · " (lang.word("role", desk.user().role.as_str())) }
                            " " a href="/account/notifications" { (tr!(lang, "nav-notifications")) } " "
                            input type="hidden" name="csrf" value=(desk.csrf());
                            button type="submit" { (tr!(lang, "nav-log-out")) }
                        }
                    } @else {
                        nav.language {
                            @for other in UiLang::ALL.into_iter().filter(|l| *l != lang) {
                                a href={"/login?lang=" (other.tag())} lang=(other.tag()) { (other.native_name()) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn error_page(lang: UiLang, status: StatusCode, message: &str) -> Markup {
    let title = tr!(lang, "error-title", status = status.as_u16());
    page(
        lang,
        &title,
        None,
        html! {
            h1 { (title) }
            p.error { (message) }
            p { a href="/cases" { (tr!(lang, "error-back")) } }
        },
    )
}

/// Percent-encodes a query value.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A stored time (seconds) in the desk's zone, or a dash.
pub fn local_ts(lang: UiLang, ts: Option<i64>, tz: Tz) -> String {
    ts.and_then(|t| DateTime::from_timestamp(t, 0))
        .map(|t| lang.datetime(t, tz))
        .unwrap_or_else(|| "–".into())
}

pub fn urgency_badge(lang: UiLang, u: Urgency) -> Markup {
    html! { span class={"badge " (u.as_str())} { (lang.word("urgency", u.as_str())) } }
}

/// One target as a table cell: time left, due, met.
pub fn target_cell(lang: UiLang, t: Option<&TargetView>, tz: Tz) -> Markup {
    html! {
        @match t {
            None => td.muted { "–" },
            Some(t) => {
                @let class = if t.breached { "breached" } else if t.at_risk { "at_risk" } else if t.met_at.is_some() { "met" } else { "" };
                td class=(class) {
                    @if let Some(met) = t.met_at {
                        @if t.breached {
                            (tr!(lang, "target-met-late", at = lang.datetime(met, tz)))
                        } @else {
                            (tr!(lang, "target-met", at = lang.datetime(met, tz)))
                        }
                    } @else if t.cancelled {
                        (tr!(lang, "target-not-needed"))
                    } @else {
                        (tr!(lang, "target-left", left = lang.business_time(t.minutes_left)))
                        br;
                        small {
                            @match t.due {
                                Some(due) if !t.paused => { (tr!(lang, "target-due", at = lang.datetime(due, tz))) }
                                _ => { (tr!(lang, "target-paused")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            url_encode("/cases?mine=1&q=a b"),
            "/cases%3Fmine%3D1%26q%3Da%20b"
        );
        assert_eq!(url_encode("案"), "%E6%A1%88");
    }

    #[test]
    fn markup_escapes_mail_text() {
        let subject = "<script>alert(1)</script> & \"x\"";
        let rendered = html! { p { (subject) } }.into_string();
        assert_eq!(
            rendered,
            "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;</p>"
        );
    }
}
