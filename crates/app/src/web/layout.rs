//! The page shell, the stylesheet and script, and small formatting helpers
//! shared by the pages.

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, html};

use super::auth::Desk;
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

/// A whole page: the navigation, who is logged in, and `body`.
pub fn page(title: &str, desk: Option<&Desk>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
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
                            a href="/cases" { "Cases" }
                            a href="/cases?mine=1" { "Mine" }
                            a href="/board" { "SLA board" }
                            @if desk.is_lead() {
                                a href="/report" { "Report" }
                            }
                        }
                        form.logout method="post" action="/logout" {
                            span.who { (desk.user().name) " · " (desk.user().role.as_str()) }
                            input type="hidden" name="csrf" value=(desk.csrf());
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn error_page(status: StatusCode, message: &str) -> Markup {
    page(
        status.canonical_reason().unwrap_or("Error"),
        None,
        html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p.error { (message) }
            p { a href="/cases" { "Back to the cases" } }
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

/// A time in the desk's zone, to the minute.
pub fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

pub fn local_ts(ts: Option<i64>, tz: Tz) -> String {
    ts.and_then(|t| DateTime::from_timestamp(t, 0))
        .map(|t| local(t, tz))
        .unwrap_or_else(|| "–".into())
}

pub use casebot_core::sla::business_time as minutes;

pub fn urgency_badge(u: Urgency) -> Markup {
    html! { span class={"badge " (u.as_str())} { (u.label()) } }
}

/// One target as a table cell: time left, due, met.
pub fn target_cell(t: Option<&TargetView>, tz: Tz) -> Markup {
    html! {
        @match t {
            None => td.muted { "–" },
            Some(t) => {
                @let class = if t.breached { "breached" } else if t.at_risk { "at_risk" } else if t.met_at.is_some() { "met" } else { "" };
                td class=(class) {
                    @if let Some(met) = t.met_at {
                        "met " (local(met, tz))
                        @if t.breached { " (late)" }
                    } @else if t.cancelled {
                        "not needed"
                    } @else {
                        (minutes(t.minutes_left)) " left"
                        br;
                        small {
                            @match t.due {
                                Some(due) if !t.paused => { "due " (local(due, tz)) }
                                _ => { "paused" }
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
