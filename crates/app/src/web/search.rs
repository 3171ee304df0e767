//! The desk's full-text search: `/search` (the page) and `/api/search`
//! (the same hits as JSON), over every mail and analysis, with the case
//! list's filters and a date range.

use axum::Json;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::Desk;
use super::i18n::tr;
use super::layout::{self, page};
use super::{AppState, WebError};
use casebot_core::domain::CaseStatus;
use casebot_core::sla::calendar::local_midnight;
use casebot_store::search::{HitKind, SearchHit, SearchRequest};

/// The search form, as in its URL.
#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    pub q: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub customer: Option<String>,
    /// "1": only the cases I own.
    pub mine: Option<String>,
    /// Mails from this day on and up to that day (included), YYYY-MM-DD.
    pub from: Option<String>,
    pub to: Option<String>,
}

impl SearchParams {
    fn request(&self, state: &AppState, desk: &Desk) -> Result<SearchRequest, WebError> {
        let tz = state.time_zone();
        let day = super::board::form_day;
        let mine = self
            .mine
            .as_deref()
            .is_some_and(|m| !m.is_empty() && m != "0");
        Ok(SearchRequest {
            text: self.q.clone().unwrap_or_default(),
            status: self.status.as_deref().and_then(CaseStatus::parse),
            owners: if mine { desk.identities() } else { Vec::new() },
            priority: self.priority.clone(),
            customer: self.customer.clone(),
            from: day(&self.from)?.map(|d| local_midnight(d, tz).timestamp()),
            until: day(&self.to)?
                .and_then(|d| d.succ_opt())
                .map(|d| local_midnight(d, tz).timestamp()),
            limit: casebot_store::search::MAX_CASES,
        })
    }
}

/// The hits of a search, `None` when nothing was asked.
async fn hits(
    state: &AppState,
    desk: &Desk,
    params: &SearchParams,
) -> Result<Option<Vec<SearchHit>>, WebError> {
    let request = params.request(state, desk)?;
    if request.text.trim().is_empty() {
        return Ok(None);
    }
    Ok(state.store.search(&request).await?)
}

/// `GET /api/search?q=…`: the hits as JSON (an empty list for no words).
pub async fn api(
    State(state): State<AppState>,
    desk: Desk,
    Query(params): Query<SearchParams>,
) -> Result<Json<Vec<SearchHit>>, WebError> {
    Ok(Json(
        hits(&state, &desk, &params).await?.unwrap_or_default(),
    ))
}

/// `GET /search`: the form and the cases found, each with the text that
/// matched, the match marked.
pub async fn page_handler(
    State(state): State<AppState>,
    desk: Desk,
    Query(params): Query<SearchParams>,
) -> Result<Markup, WebError> {
    let found = hits(&state, &desk, &params).await?;
    let lang = desk.lang();
    let tz = state.time_zone();
    let selected = |a: &Option<String>, b: &str| a.as_deref() == Some(b);
    let when = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| lang.datetime(t.with_timezone(&chrono::Utc), tz))
            .unwrap_or_default()
    };
    Ok(page(
        lang,
        &tr!(lang, "search-title"),
        Some(&desk),
        html! {
            h1 { (tr!(lang, "search-title")) }
            form.filters method="get" action="/search" {
                label { (tr!(lang, "search-words"))
                    input type="search" name="q" value=[params.q.as_deref()] size="40" autofocus
                        placeholder=(tr!(lang, "search-placeholder"));
                }
                label { (tr!(lang, "cases-status"))
                    select name="status" {
                        option value="" { (tr!(lang, "cases-any")) }
                        @for s in CaseStatus::ALL {
                            option value=(s.as_str()) selected[selected(&params.status, s.as_str())] { (lang.word("status", s.as_str())) }
                        }
                    }
                }
                label { (tr!(lang, "cases-priority"))
                    select name="priority" {
                        option value="" { (tr!(lang, "cases-any")) }
                        @for p in ["P1", "P2", "P3", "P4"] {
                            option value=(p) selected[selected(&params.priority, p)] { (p) }
                        }
                    }
                }
                label { (tr!(lang, "cases-customer")) input type="text" name="customer" value=[params.customer.as_deref()] size="12"; }
                label { (tr!(lang, "search-from")) input type="date" name="from" value=[params.from.as_deref()]; }
                label { (tr!(lang, "search-to")) input type="date" name="to" value=[params.to.as_deref()]; }
                label { span { input type="checkbox" name="mine" value="1" checked[params.mine.as_deref() == Some("1")]; " " (tr!(lang, "cases-mine")) } }
                button.primary type="submit" { (tr!(lang, "search-submit")) }
            }
            @match &found {
                None => { p.muted { (tr!(lang, "search-hint")) } }
                Some(hits) if hits.is_empty() => { p.muted { (tr!(lang, "search-none")) } }
                Some(hits) => {
                    p.muted { (tr!(lang, "search-count", count = hits.len())) }
                    ol.hits id="hits" {
                        @for h in hits {
                            li.card {
                                div {
                                    a href={"/cases/" (layout::url_encode(&h.case_key))} { b { (h.case_key) } }
                                    " " (h.title.as_deref().unwrap_or(""))
                                    " · " (lang.word("status", &h.status))
                                    @if let Some(p) = &h.priority { " · " (p) }
                                    @if let Some(c) = &h.customer { " · " (c) }
                                }
                                div.muted {
                                    small {
                                        @match h.kind {
                                            HitKind::Mail => { (tr!(lang, "search-in-mail")) }
                                            HitKind::Analysis => { (tr!(lang, "search-in-analysis")) }
                                        }
                                        " · " (h.from.as_deref().unwrap_or("")) " · " (when(&h.date))
                                        @if h.matches > 1 { " · " (tr!(lang, "search-matches", count = h.matches)) }
                                    }
                                }
                                @if let Some(s) = &h.snippet {
                                    p.snippet { (s.before) mark { (s.hit) } (s.after) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}
