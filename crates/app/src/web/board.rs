//! The team lead's pages: the SLA board (refreshing itself) and the period
//! report with its chart and CSV export.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{Duration, NaiveDate, Utc};

use casebot_core::sla::calendar::local_midnight;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::auth::{Desk, Lead};
use super::i18n::{UiLang, tr};
use super::layout::{self, page, urgency_badge};
use super::{AppState, WebError, said};
use casebot_core::sla::report::{self, Report};
use casebot_core::sla::{CaseSlaView, Urgency, sort_by_urgency};

#[derive(Debug, Default, Deserialize)]
pub struct BoardParams {
    pub priority: Option<String>,
    pub owner: Option<String>,
    /// Rows listed (the counts cover every case); default [`BOARD_ROWS`].
    pub limit: Option<usize>,
}

/// The most urgent cases the board lists by default: a lead reads the top;
/// the counts above it cover every open case.
pub const BOARD_ROWS: usize = 200;

/// One row of the board, ready to show (the page and `/api/board`): the
/// words (`*_label`, `left`, `due`) in the reader's language, beside the
/// stable values a script can compare.
#[derive(Debug, Serialize)]
pub struct BoardRow {
    pub case_key: String,
    pub title: Option<String>,
    pub priority: String,
    pub owner: Option<String>,
    pub urgency: Urgency,
    pub urgency_label: String,
    pub state: &'static str,
    pub state_label: String,
    /// The target that sets the urgency, and its time left and due time.
    pub target: Option<&'static str>,
    pub target_label: Option<String>,
    pub left: Option<String>,
    pub minutes_left: Option<i64>,
    /// The due time, or the word for paused.
    pub due: String,
}

#[derive(Debug, Serialize)]
pub struct BoardData {
    pub as_of: String,
    pub counts: BTreeMap<&'static str, usize>,
    /// Counts of open cases by priority, then urgency.
    pub by_priority: BTreeMap<String, BTreeMap<&'static str, usize>>,
    pub by_owner: BTreeMap<String, BTreeMap<&'static str, usize>>,
    pub cases: Vec<BoardRow>,
    /// Open cases not listed (beyond the limit).
    pub more: usize,
}

const SHOWN: [Urgency; 4] = [
    Urgency::Breached,
    Urgency::AtRisk,
    Urgency::OnTrack,
    Urgency::Paused,
];

/// Whose cases a board shows: the team lead sees every open case; an
/// engineer the cases they own (by account name or address).
fn visible_to(desk: &Desk) -> Option<Vec<String>> {
    (!desk.is_lead()).then(|| desk.identities())
}

/// The open cases' SLA now, most urgent first, filtered as asked and to
/// what `desk` may see.
pub async fn open_views(
    state: &AppState,
    desk: &Desk,
    params: &BoardParams,
) -> Result<Vec<CaseSlaView>, WebError> {
    let mine = visible_to(desk);
    state.sla.refresh().await?;
    let now = Utc::now();
    let policies = state.sla.policies();
    let wanted = |v: &Option<String>, actual: Option<&str>| {
        v.as_deref()
            .filter(|w| !w.is_empty())
            .is_none_or(|w| actual.is_some_and(|a| a.eq_ignore_ascii_case(w)))
    };
    let mut views: Vec<CaseSlaView> = state
        .sla
        .open()
        .values()
        .map(|s| s.view(policies, now))
        .filter(|v| {
            wanted(&params.priority, Some(&v.priority)) && wanted(&params.owner, v.owner.as_deref())
        })
        .filter(|v| {
            mine.as_ref().is_none_or(|names| {
                v.owner
                    .as_deref()
                    .is_some_and(|o| names.iter().any(|n| n.eq_ignore_ascii_case(o)))
            })
        })
        .collect();
    sort_by_urgency(&mut views);
    Ok(views)
}

pub async fn board_data(
    state: &AppState,
    desk: &Desk,
    params: &BoardParams,
) -> Result<BoardData, WebError> {
    let views = open_views(state, desk, params).await?;
    let tz = state.time_zone();
    let lang = desk.lang();
    let mut counts: BTreeMap<&'static str, usize> = SHOWN.iter().map(|u| (u.as_str(), 0)).collect();
    let mut by_priority: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    let mut by_owner: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    let limit = params.limit.unwrap_or(BOARD_ROWS);
    let more = views.len().saturating_sub(limit);
    let mut cases = Vec::with_capacity(views.len().min(limit));
    for (n, v) in views.into_iter().enumerate() {
        let u = v.urgency.as_str();
        *counts.entry(u).or_default() += 1;
        *by_priority
            .entry(v.priority.clone())
            .or_default()
            .entry(u)
            .or_default() += 1;
        *by_owner
            .entry(v.owner.clone().unwrap_or_else(|| tr!(lang, "board-nobody")))
            .or_default()
            .entry(u)
            .or_default() += 1;
        if n >= limit {
            continue;
        }
        let worst = v.worst_target();
        cases.push(BoardRow {
            target: worst.map(|(kind, _)| kind.as_str()),
            target_label: worst.map(|(kind, _)| lang.word("target", kind.as_str())),
            left: worst.map(|(_, t)| lang.business_time(t.minutes_left)),
            minutes_left: worst.map(|(_, t)| t.minutes_left),
            due: worst
                .and_then(|(_, t)| t.due.filter(|_| !t.paused))
                .map(|d| lang.datetime(d, tz))
                .unwrap_or_else(|| tr!(lang, "target-paused")),
            case_key: v.case_key,
            title: v.title,
            priority: v.priority,
            owner: v.owner,
            urgency: v.urgency,
            urgency_label: lang.word("urgency", v.urgency.as_str()),
            state: v.state,
            state_label: lang.word("status", v.state),
        });
    }
    Ok(BoardData {
        as_of: lang.datetime(Utc::now(), tz),
        counts,
        by_priority,
        by_owner,
        cases,
        more,
    })
}

fn matrix(
    lang: UiLang,
    title: &str,
    rows: &BTreeMap<String, BTreeMap<&'static str, usize>>,
) -> Markup {
    html! {
        table.matrix {
            thead { tr { th { (title) } @for u in SHOWN { th { (urgency_badge(lang, u)) } } } }
            tbody {
                @for (name, counts) in rows {
                    tr {
                        th { (name) }
                        @for u in SHOWN {
                            @let n = counts.get(u.as_str()).copied().unwrap_or(0);
                            td class=(if n > 0 { u.as_str() } else { "" }) { (n) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn board(
    State(state): State<AppState>,
    desk: Desk,
    Query(params): Query<BoardParams>,
) -> Result<Markup, WebError> {
    let data = board_data(&state, &desk, &params).await?;
    let lang = desk.lang();
    let title = if desk.is_lead() {
        tr!(lang, "board-title")
    } else {
        tr!(lang, "board-title-mine")
    };
    Ok(page(
        lang,
        &title,
        Some(&desk),
        html! {
            h1 { (title) }
            @if !desk.is_lead() { p.muted { (tr!(lang, "board-mine-hint")) } }
            p.muted {
                (tr!(lang, "board-as-of")) " " span id="board-stamp" { (data.as_of) }
                " (" (state.time_zone().name()) ") · "
                (tr!(lang, "board-refresh", secs = state.config.web.board_refresh_secs))
            }
            div.counts {
                @for u in SHOWN {
                    div.card { div.n data-count=(u.as_str()) { (data.counts.get(u.as_str()).copied().unwrap_or(0)) } (urgency_badge(lang, u)) }
                }
            }
            div.halves {
                div { h2 { (tr!(lang, "board-by-priority")) } (matrix(lang, &tr!(lang, "col-priority"), &data.by_priority)) }
                div { h2 { (tr!(lang, "board-by-owner")) } (matrix(lang, &tr!(lang, "col-owner"), &data.by_owner)) }
            }
            h2 { (tr!(lang, "board-cases")) }
            table id="board" data-refresh=(state.config.web.board_refresh_secs) {
                thead { tr {
                    th { (tr!(lang, "col-sla")) } th { (tr!(lang, "col-case")) } th { (tr!(lang, "col-priority")) }
                    th { (tr!(lang, "col-owner")) } th { (tr!(lang, "col-state")) } th { (tr!(lang, "col-target")) }
                    th { (tr!(lang, "col-left")) } th { (tr!(lang, "col-due")) } th { (tr!(lang, "col-title")) }
                } }
                tbody id="board-rows" {
                    @for c in &data.cases {
                        tr class={"row-" (c.urgency.as_str())} {
                            td { (urgency_badge(lang, c.urgency)) }
                            td { a href={"/cases/" (layout::url_encode(&c.case_key))} { (c.case_key) } }
                            td { (c.priority) }
                            td { (c.owner.as_deref().unwrap_or("–")) }
                            td { (c.state_label) }
                            td { (c.target_label.as_deref().unwrap_or("–")) }
                            td class=(c.urgency.as_str()) { (c.left.as_deref().unwrap_or("–")) }
                            td { (c.due) }
                            td { (c.title.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            @if data.more > 0 { p.muted { (tr!(lang, "board-more", count = data.more)) } }
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct ReportParams {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The report over the asked period: dates in the desk's zone, `to`
/// included; by default the last four weeks up to today.
pub async fn period_report(state: &AppState, params: &ReportParams) -> Result<Report, WebError> {
    let tz = state.time_zone();
    let date = form_day;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let last = date(&params.to)?.unwrap_or(today);
    let first = date(&params.from)?.unwrap_or(last - Duration::days(27));
    if first > last || (last - first).num_days() > 3 * 366 {
        return Err(WebError::Rejected(said!("error-period")));
    }
    let from = local_midnight(first, tz);
    let to = local_midnight(last + Duration::days(1), tz);
    let policies = state.sla.policies();
    let cases: Vec<_> = state
        .store
        .sla_timelines(None)
        .await?
        .iter()
        .filter_map(|t| casebot_core::sla::evaluate(t, policies, Some(to)))
        .collect();
    Ok(report::report(&cases, policies, from, to))
}

/// A day typed in a form (`2026-11-23`); nothing typed is `None`.
pub fn form_day(s: &Option<String>) -> Result<Option<NaiveDate>, WebError> {
    match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| WebError::Rejected(said!("error-not-a-date", text = s))),
    }
}

/// Weekly first-response times (bars: median, p90) and targets met (line).
fn chart(lang: UiLang, report: &Report) -> Markup {
    let minutes = |m: i64| lang.business_time(m);
    let weeks = &report.weeks;
    let (w, h, left, bottom, top) = (760.0_f64, 240.0_f64, 48.0_f64, 36.0_f64, 16.0_f64);
    let plot_h = h - bottom - top;
    let max_minutes = weeks
        .iter()
        .filter_map(|w| w.figures.first_response.p90_minutes)
        .max()
        .unwrap_or(60)
        .max(60) as f64;
    let slot = (w - left - 48.0) / weeks.len().max(1) as f64;
    let y_minutes = |m: f64| top + plot_h - plot_h * m / max_minutes;
    let y_pct = |p: f64| top + plot_h - plot_h * p / 100.0;
    let mut line = String::new();
    for (i, wk) in weeks.iter().enumerate() {
        if let Some(p) = wk.figures.met_pct {
            let x = left + slot * (i as f64 + 0.5);
            line.push_str(&format!(
                "{}{x:.1},{:.1} ",
                if line.is_empty() { "M" } else { "L" },
                y_pct(p)
            ));
        }
    }
    html! {
        svg.chart width=(w) height=(h) viewBox={"0 0 " (w) " " (h)} role="img" aria-label=(tr!(lang, "report-chart-label")) {
            text x="4" y=(top + 4.0) { (minutes(max_minutes as i64)) }
            text x="4" y=(top + plot_h) { "0" }
            text x=(w - 44.0) y=(top + 4.0) { "100%" }
            text x=(w - 44.0) y=(top + plot_h) { "0%" }
            line x1=(left) y1=(top + plot_h) x2=(w - 48.0) y2=(top + plot_h) stroke="#d9dee7" {}
            @for (i, wk) in weeks.iter().enumerate() {
                @let x = left + slot * i as f64;
                @let bar = (slot * 0.35).max(2.0);
                @if let Some(p90) = wk.figures.first_response.p90_minutes {
                    rect.bar90 x=(x + slot * 0.5) y=(y_minutes(p90 as f64)) width=(bar) height=(top + plot_h - y_minutes(p90 as f64)) {
                        title { (tr!(lang, "report-p90", time = minutes(p90))) }
                    }
                }
                @if let Some(median) = wk.figures.first_response.median_minutes {
                    rect.bar x=(x + slot * 0.5 - bar) y=(y_minutes(median as f64)) width=(bar) height=(top + plot_h - y_minutes(median as f64)) {
                        title { (tr!(lang, "report-median", time = minutes(median))) }
                    }
                }
                @if let Some(p) = wk.figures.met_pct {
                    circle.dot cx=(x + slot * 0.5) cy=(y_pct(p)) r="3" { title { (tr!(lang, "report-met-pct", pct = format!("{p:.1}"))) } }
                }
                text x=(x + slot * 0.5 - 16.0) y=(h - 18.0) { (wk.starts.format("%m-%d")) }
            }
            @if !line.is_empty() { path.met d=(line) {} }
            text x=(left) y=(h - 4.0) { (tr!(lang, "report-chart-legend")) }
        }
    }
}

fn figures_row(lang: UiLang, name: &str, f: &report::Figures) -> Markup {
    let pct = |p: Option<f64>| p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "–".into());
    let mins = |m: Option<i64>| {
        m.map(|m| lang.business_time(m))
            .unwrap_or_else(|| "–".into())
    };
    html! {
        tr {
            th { (name) }
            td.num { (f.opened) } td.num { (f.closed) }
            td.num { (mins(f.first_response.median_minutes)) } td.num { (mins(f.first_response.p90_minutes)) }
            td.num { (pct(f.first_response_met_pct)) } td.num { (pct(f.met_pct)) } td.num { (f.breaches) }
        }
    }
}

fn figures_table(lang: UiLang, title: &str, rows: Markup) -> Markup {
    html! {
        table {
            thead { tr {
                th { (title) } th.num { (tr!(lang, "report-opened")) } th.num { (tr!(lang, "report-closed")) }
                th.num { (tr!(lang, "report-fr-median")) } th.num { (tr!(lang, "report-fr-p90")) }
                th.num { (tr!(lang, "report-fr-met")) } th.num { (tr!(lang, "report-all-met")) } th.num { (tr!(lang, "report-breaches")) }
            } }
            tbody { (rows) }
        }
    }
}

pub async fn report(
    State(state): State<AppState>,
    Lead(desk): Lead,
    Query(params): Query<ReportParams>,
) -> Result<Markup, WebError> {
    let r = period_report(&state, &params).await?;
    let tz = state.time_zone();
    let first = r.from.with_timezone(&tz).date_naive();
    let last = (r.to - Duration::days(1)).with_timezone(&tz).date_naive();
    let csv = format!("/report.csv?from={first}&to={last}");
    let lang = desk.lang();
    Ok(page(
        lang,
        &tr!(lang, "nav-report"),
        Some(&desk),
        html! {
            h1 { (tr!(lang, "report-heading")) }
            form.filters method="get" action="/report" {
                label { (tr!(lang, "report-from")) input type="date" name="from" value=(first); }
                label { (tr!(lang, "report-to")) input type="date" name="to" value=(last); }
                button type="submit" { (tr!(lang, "report-show")) }
                a href=(csv) { (tr!(lang, "report-csv")) }
            }
            (chart(lang, &r))
            h2 { (tr!(lang, "report-total")) }
            (figures_table(lang, "", figures_row(lang, &tr!(lang, "report-all"), &r.total)))
            h2 { (tr!(lang, "report-per-week")) }
            (figures_table(lang, &tr!(lang, "report-week-of"), html! { @for w in &r.weeks { (figures_row(lang, &w.starts.to_string(), &w.figures)) } }))
            h2 { (tr!(lang, "report-per-priority")) }
            (figures_table(lang, &tr!(lang, "col-priority"), html! { @for g in &r.by_priority { (figures_row(lang, &g.name, &g.figures)) } }))
            h2 { (tr!(lang, "report-per-owner")) }
            (figures_table(lang, &tr!(lang, "col-owner"), html! { @for g in &r.by_owner { (figures_row(lang, &g.name, &g.figures)) } }))
        },
    ))
}

pub async fn report_csv(
    State(state): State<AppState>,
    Lead(_): Lead,
    Query(params): Query<ReportParams>,
) -> Result<impl IntoResponse, WebError> {
    let r = period_report(&state, &params).await?;
    let tz = state.time_zone();
    let name = format!(
        "casebot-sla-{}-{}.csv",
        r.from.with_timezone(&tz).date_naive(),
        (r.to - Duration::days(1)).with_timezone(&tz).date_naive()
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                super::attachment_disposition(&name),
            ),
        ],
        report::to_csv(&r),
    ))
}
