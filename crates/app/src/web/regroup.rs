//! Fixing misfiled mail on the desk: move a mail to another case or a new
//! one, split a case at a mail, merge a case into another, undo any of
//! them from the audit trail. The same store calls as `casebot move`,
//! `split`, `merge` and `undo`; each needs a reason, kept in both cases'
//! trails with the engineer's name.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::Desk;
use super::layout;
use super::{AppState, WebError, said};
use casebot_core::domain::CaseStatus;
use casebot_store::regroup::{Destination, Moved};

#[derive(Debug, Deserialize)]
pub struct MoveForm {
    csrf: String,
    /// The mail's row.
    mail: i64,
    /// The case it belongs to; empty with `new`.
    #[serde(default)]
    to: String,
    /// "1": into a new case of its own.
    #[serde(default)]
    new: Option<String>,
    /// "split": the mail and every later one, into a new case.
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize)]
pub struct MergeForm {
    csrf: String,
    into: String,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize)]
pub struct UndoForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// A refusal of the store (wrong case, a mail moved since, no reason) is
/// the engineer's to fix: 422 with the store's words.
fn refused(e: anyhow::Error) -> WebError {
    let text = format!("{e:#}");
    if text.starts_with("no case") {
        WebError::NotFound(said!("error-regroup", why = text))
    } else {
        WebError::Rejected(said!("error-regroup", why = text))
    }
}

fn reason_of(reason: &str) -> Result<&str, WebError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(WebError::Rejected(said!("error-regroup-reason")));
    }
    Ok(reason)
}

/// Back to the case the mail went to, at its audit trail.
fn after(moved: &Moved) -> Response {
    Redirect::to(&format!("/cases/{}#events", layout::url_encode(&moved.to))).into_response()
}

/// `POST /cases/{key}/move`: one mail to another case, to a new case, or
/// (`action=split`) it and every later one to a new case.
pub async fn move_mail(
    State(state): State<AppState>,
    desk: Desk,
    Path(key): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let reason = reason_of(&form.reason)?;
    let by = desk.user().name.clone();
    let moved = if form.action == "split" {
        state.store.split_case(&key, form.mail, &by, reason).await
    } else {
        let to = match form.to.trim() {
            "" if form.new.is_some() => Destination::NewCase,
            "" => return Err(WebError::Rejected(said!("error-regroup-target"))),
            key => Destination::Case(key.to_string()),
        };
        state
            .store
            .move_messages(&[form.mail], to, &by, reason)
            .await
    }
    .map_err(refused)?;
    tracing::info!(from = %moved.from, to = %moved.to, mails = moved.messages.len(), by = %by, "mail moved on the desk");
    Ok(after(&moved))
}

/// `POST /cases/{key}/merge`: this case into another.
pub async fn merge(
    State(state): State<AppState>,
    desk: Desk,
    Path(key): Path<String>,
    Form(form): Form<MergeForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let reason = reason_of(&form.reason)?;
    let by = desk.user().name.clone();
    let moved = state
        .store
        .merge_cases(&key, form.into.trim(), &by, reason)
        .await
        .map_err(refused)?;
    tracing::info!(from = %moved.from, to = %moved.to, by = %by, "cases merged on the desk");
    Ok(after(&moved))
}

/// `POST /events/{id}/undo`: a move, split or merge undone.
pub async fn undo(
    State(state): State<AppState>,
    desk: Desk,
    Path(event): Path<i64>,
    Form(form): Form<UndoForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let reason = reason_of(&form.reason)?;
    let by = desk.user().name.clone();
    let moved = state
        .store
        .undo_regroup(event, &by, reason)
        .await
        .map_err(refused)?;
    tracing::info!(event, from = %moved.from, to = %moved.to, by = %by, "move undone on the desk");
    Ok(after(&moved))
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    csrf: String,
    /// `close` or `reopen`.
    action: String,
    #[serde(default)]
    reason: String,
}

/// `POST /cases/{key}/status`: close or reopen by hand.
pub async fn set_status(
    State(state): State<AppState>,
    desk: Desk,
    Path(key): Path<String>,
    Form(form): Form<StatusForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let reason = reason_of(&form.reason)?;
    let status = match form.action.as_str() {
        "close" => CaseStatus::Resolved,
        "reopen" => CaseStatus::WaitingOnUs,
        other => return Err(WebError::Rejected(said!("error-no-action", action = other))),
    };
    let change = state
        .store
        .set_case_status(&key, status, &desk.user().name, reason)
        .await
        .map_err(refused)?;
    tracing::info!(case = %change.case, status = status.as_str(), by = %desk.user().name, "case status set on the desk");
    Ok(Redirect::to(&format!(
        "/cases/{}#events",
        layout::url_encode(&change.case)
    ))
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct PriorityForm {
    csrf: String,
    /// P1..P4, or empty: the subjects decide again.
    #[serde(default)]
    priority: String,
    #[serde(default)]
    reason: String,
}

/// `POST /cases/{key}/priority`: a priority set by hand, or cleared.
pub async fn set_priority(
    State(state): State<AppState>,
    desk: Desk,
    Path(key): Path<String>,
    Form(form): Form<PriorityForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let reason = reason_of(&form.reason)?;
    let priority = Some(form.priority.trim()).filter(|p| !p.is_empty());
    let change = state
        .store
        .set_case_priority(&key, priority, &desk.user().name, reason)
        .await
        .map_err(refused)?;
    tracing::info!(case = %change.case, priority = ?change.to, by = %desk.user().name, "case priority set on the desk");
    Ok(Redirect::to(&format!(
        "/cases/{}#events",
        layout::url_encode(&change.case)
    ))
    .into_response())
}
