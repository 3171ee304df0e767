//! `/api/…`: the pages' data as JSON, for the board's refresh and for
//! scripts. Every route needs a login, like the pages (a session cookie
//! from `/login`).

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::Utc;
use serde::Serialize;

use super::auth::{Desk, Lead};
use super::board::{self, BoardParams, ReportParams};
use super::cases::{ListParams, row_sla};
use super::drafts::draft_view;
use super::{AppState, WebError, said};
use casebot_core::sla::{CaseSlaView, report::Report};
use casebot_store::cases::CaseListRow;
use casebot_store::drafts::DraftView;

#[derive(Debug, Serialize)]
pub struct CaseListItem {
    #[serde(flatten)]
    pub case: CaseListRow,
    pub sla: Option<CaseSlaView>,
}

#[derive(Debug, Serialize)]
pub struct CaseList {
    pub total: i64,
    pub page: i64,
    pub cases: Vec<CaseListItem>,
}

/// `GET /api/cases?mine=1&waiting=1&priority=P2&customer=…&q=…&page=N`.
pub async fn cases(
    State(state): State<AppState>,
    desk: Desk,
    Query(params): Query<ListParams>,
) -> Result<Json<CaseList>, WebError> {
    state.sla.refresh().await?;
    let (rows, total) = state
        .store
        .search_cases(&params.query(&desk, super::cases::PAGE_SIZE))
        .await?;
    let now = Utc::now();
    Ok(Json(CaseList {
        total,
        page: params.page.unwrap_or(1).max(1),
        cases: rows
            .into_iter()
            .map(|case| CaseListItem {
                sla: row_sla(&state, &case, now),
                case,
            })
            .collect(),
    }))
}

/// `GET /api/cases/{key}?page=N&per_page=M`: a page of the thread (the
/// newest when not given; `thread` says which and how many), its analyses,
/// the newest conclusion, drafts, similar cases, SLA.
pub async fn case(
    State(state): State<AppState>,
    _desk: Desk,
    Path(key): Path<String>,
    Query(params): Query<super::cases::ThreadParams>,
) -> Result<Json<serde_json::Value>, WebError> {
    Ok(Json(
        super::cases::case_view(&state, &key, params.request()).await?,
    ))
}

/// `GET /api/sla`: the open cases' SLA, most urgent first (what
/// `casebot sla --json` prints): every case for the team lead, their own
/// for an engineer.
pub async fn sla(
    State(state): State<AppState>,
    desk: Desk,
    Query(params): Query<BoardParams>,
) -> Result<Json<Vec<CaseSlaView>>, WebError> {
    Ok(Json(board::open_views(&state, &desk, &params).await?))
}

/// `GET /api/board`: the board as shown (the page's refresh reads it).
pub async fn board(
    State(state): State<AppState>,
    desk: Desk,
    Query(params): Query<BoardParams>,
) -> Result<Json<board::BoardData>, WebError> {
    Ok(Json(board::board_data(&state, &desk, &params).await?))
}

/// `GET /api/report?from=YYYY-MM-DD&to=YYYY-MM-DD` (team lead).
pub async fn report(
    State(state): State<AppState>,
    _lead: Lead,
    Query(params): Query<ReportParams>,
) -> Result<Json<Report>, WebError> {
    Ok(Json(board::period_report(&state, &params).await?))
}

pub async fn draft(
    State(state): State<AppState>,
    _desk: Desk,
    Path(id): Path<i64>,
) -> Result<Json<DraftView>, WebError> {
    Ok(Json(draft_view(&state, id).await?))
}

/// `GET /api/drafts/{id}/snippets`: the text modules of the draft's
/// language, rendered for it (what `::name` inserts in the editor).
pub async fn snippets(
    State(state): State<AppState>,
    _desk: Desk,
    Path(id): Path<i64>,
) -> Result<Json<Vec<crate::stages::drafting::Snippet>>, WebError> {
    let d = state
        .store
        .draft(id)
        .await?
        .ok_or_else(|| WebError::NotFound(said!("error-no-draft", id = id)))?;
    Ok(Json(state.drafter.snippets(&d)))
}
