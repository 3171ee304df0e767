//! The draft editor: read, edit, approve or reject a drafted reply.
//!
//! The subject is shown but not editable: it carries the partner's case tag
//! and title, and a changed subject opens a new case in their system. An
//! approval names the revision the engineer saw, so text changed by someone
//! else in the meantime is never approved unread.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::Desk;
use super::i18n::{self, UiLang, tr};
use super::layout::{self, page};
use super::{AppState, WebError, said};
use casebot_core::domain::{Problem, Refusal};
use casebot_store::drafts::{DraftView, GateError};

fn gate_error(e: GateError) -> WebError {
    match e {
        GateError::NotFound(id) => WebError::NotFound(said!("error-no-draft", id = id)),
        GateError::WrongStatus {
            id,
            status,
            expected,
        } => WebError::Rejected(said!(
            "error-draft-status",
            id = id,
            status = status.as_str(),
            expected = expected.as_str()
        )),
        GateError::Stale { id, seen, current } => WebError::Rejected(said!(
            "error-draft-stale",
            id = id,
            seen = seen,
            current = current
        )),
        GateError::Unfit(refusal) => {
            WebError::Rejected(said!("error-draft-unfit", problems = refusal.to_string()))
        }
        GateError::Refused(why) => WebError::Rejected(said!("error-draft-refused", why = why)),
        GateError::Store(e) => WebError::Internal(e),
    }
}

pub async fn draft_view(state: &AppState, id: i64) -> Result<DraftView, WebError> {
    Ok(state
        .store
        .draft(id)
        .await?
        .ok_or_else(|| WebError::NotFound(said!("error-no-draft", id = id)))?
        .view())
}

#[derive(Debug, Deserialize)]
pub struct EditorQuery {
    done: Option<String>,
}

/// The notice after an action, by its code, told from the draft itself: a
/// link can name an action, never put words on the page.
fn notice(lang: UiLang, code: &str, d: &DraftView) -> Option<String> {
    match code {
        "approved" => Some(tr!(
            lang,
            "editor-approved",
            by = d.approved_by.as_deref().unwrap_or(""),
            message_id = d.message_id.as_deref().unwrap_or("")
        )),
        "saved" => Some(tr!(lang, "editor-saved", revision = d.revision)),
        "rejected" => Some(tr!(lang, "editor-rejected")),
        _ => None,
    }
}

/// One problem of a refused approval, in the person's words, with its place.
fn problem_text(lang: UiLang, p: &Problem) -> String {
    let what = lang.t_args(
        &format!("flaw-{}", p.flaw.code().replace('_', "-")),
        &[("detail", i18n::arg(p.flaw.detail()))],
    );
    let level = lang.word("level", p.level.as_str());
    if p.line == 0 {
        tr!(lang, "problem-in-subject", level = level, what = what)
    } else {
        tr!(
            lang,
            "problem-at",
            line = p.line,
            column = p.column,
            level = level,
            what = what
        )
    }
}

pub async fn editor(
    State(state): State<AppState>,
    desk: Desk,
    Path(id): Path<i64>,
    Query(q): Query<EditorQuery>,
) -> Result<Markup, WebError> {
    editor_page(&state, &desk, id, q.done.as_deref(), None).await
}

/// The editor, with a notice after an action, or with the problems that
/// refused an approval listed above the text they are in.
async fn editor_page(
    state: &AppState,
    desk: &Desk,
    id: i64,
    done: Option<&str>,
    refused: Option<&Refusal>,
) -> Result<Markup, WebError> {
    let d = draft_view(state, id).await?;
    let pending = d.status == casebot_core::domain::DraftStatus::Pending;
    let lang = desk.lang();
    let title = tr!(lang, "draft-title", id = id);
    let tz = state.time_zone();
    let when = |at: Option<&str>| {
        at.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| lang.datetime(t.with_timezone(&chrono::Utc), tz))
            .unwrap_or_default()
    };
    Ok(page(
        lang,
        &title,
        Some(desk),
        html! {
            h1 { (title) " · " (lang.word("kind", d.kind.as_str())) " · " span.badge.paused { (lang.word("draft-status", d.status.as_str())) } }
            p { (tr!(lang, "editor-case")) " " a href={"/cases/" (layout::url_encode(&d.case_key))} { (d.case_key) }
                " · " (tr!(lang, "editor-revision", revision = d.revision)) " · " (tr!(lang, "editor-language", language = &d.language)) }
            @if let Some(done) = done.and_then(|code| notice(lang, code, &d)) { p.notice { (done) } }
            @if let Some(refused) = refused {
                div.error id="refused" {
                    p { b { (tr!(lang, "editor-not-approved")) } }
                    ul { @for problem in &refused.problems { li { (problem_text(lang, problem)) } } }
                    @if refused.only_warnings() { p { (tr!(lang, "editor-only-warnings")) } }
                }
            }
            @if let Some(e) = &d.last_error { p.error { (tr!(lang, "editor-last-error")) " " (e) } }
            div.card {
                p { b { (tr!(lang, "editor-to")) " " } (d.to.join(", ")) }
                @if !d.cc.is_empty() { p { b { (tr!(lang, "editor-cc")) " " } (d.cc.join(", ")) } }
                p { b { (tr!(lang, "editor-subject")) " " } span id="subject" { (d.subject) } }
                @if let Some(r) = &d.in_reply_to { p.muted { (tr!(lang, "editor-in-reply-to")) " " (r) } }
            }
            @if pending {
                form id="editor" method="post" action={"/drafts/" (d.id)} {
                    input type="hidden" name="csrf" value=(desk.csrf());
                    input type="hidden" name="revision" value=(d.revision);
                    textarea name="body" id="body" spellcheck="false" { (d.body) }
                    p {
                        button type="submit" name="action" value="save" { (tr!(lang, "editor-save")) }
                        " "
                        button.primary type="submit" name="action" value="approve" { (tr!(lang, "editor-approve")) }
                        " "
                        label.muted { input type="checkbox" name="accept_warnings" value="1"; " " (tr!(lang, "editor-accept-warnings")) }
                    }
                    p.muted { (tr!(lang, "editor-check-hint")) }
                    h2 { (tr!(lang, "editor-snippets")) }
                    p.muted { (tr!(lang, "editor-snippets-hint")) }
                    ul id="snippets" data-draft=(d.id) data-insert=(tr!(lang, "editor-insert")) data-unusable=(tr!(lang, "editor-snippet-unusable")) {}
                }
                form.filters method="post" action={"/drafts/" (d.id) "/reject"} {
                    input type="hidden" name="csrf" value=(desk.csrf());
                    label { (tr!(lang, "editor-reject-reason")) input type="text" name="reason" required size="50"; }
                    button.danger type="submit" { (tr!(lang, "editor-reject")) }
                }
            } @else {
                pre.card { (d.body) }
                @if let Some(by) = &d.approved_by { p.muted { (tr!(lang, "editor-approved-by", by = by, at = when(d.approved_at.as_deref()))) } }
                @if let Some(at) = &d.sent_at { p.muted { (tr!(lang, "editor-sent-at", at = when(Some(at)))) } }
                @if let Some(by) = &d.rejected_by { p.muted { (tr!(lang, "editor-rejected-by", by = by, reason = d.reject_reason.as_deref().unwrap_or(""))) } }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct SaveForm {
    csrf: String,
    revision: i64,
    body: String,
    action: String,
    /// The "approve despite warnings" box.
    #[serde(default)]
    accept_warnings: Option<String>,
}

/// Saves the text; with `action=approve`, then approves that very revision.
pub async fn save(
    State(state): State<AppState>,
    desk: Desk,
    Path(id): Path<i64>,
    Form(form): Form<SaveForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let by = desk.user().name.clone();
    let current = state
        .store
        .draft(id)
        .await?
        .ok_or_else(|| WebError::NotFound(said!("error-no-draft", id = id)))?;
    if current.revision != form.revision {
        return Err(WebError::Rejected(said!(
            "error-draft-stale",
            id = id,
            seen = form.revision,
            current = current.revision
        )));
    }
    // Browsers send textarea text with CRLF line ends.
    let body = form.body.replace("\r\n", "\n");
    if body.trim().is_empty() {
        return Err(WebError::Rejected(said!("error-reply-empty")));
    }
    let mut revision = current.revision;
    if body != current.body {
        revision = state
            .drafter
            .edit(id, &by, None, &body)
            .await
            .map_err(gate_error)?
            .revision;
    }
    let done = match form.action.as_str() {
        "approve" => {
            let approved = state
                .drafter
                .approve(id, &by, Some(revision), form.accept_warnings.is_some())
                .await;
            let d = match approved {
                // The check's findings belong beside the text, not on an
                // error page: the editor again, with them listed.
                Err(GateError::Unfit(refusal)) => {
                    let page = editor_page(&state, &desk, id, None, Some(&refusal)).await?;
                    return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
                }
                other => other.map_err(gate_error)?,
            };
            state.send_now.notify_one();
            tracing::info!(draft = id, case = %d.case_key, by = ?by, message_id = ?d.message_id, "draft approved on the web desk");
            "approved"
        }
        _ => {
            tracing::debug!(draft = id, revision, "draft saved on the web desk");
            "saved"
        }
    };
    Ok(Redirect::to(&format!("/drafts/{id}?done={done}")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct RejectForm {
    csrf: String,
    reason: String,
}

pub async fn reject(
    State(state): State<AppState>,
    desk: Desk,
    Path(id): Path<i64>,
    Form(form): Form<RejectForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let reason = form.reason.trim();
    if reason.is_empty() {
        return Err(WebError::Rejected(said!("error-reject-reason")));
    }
    state
        .drafter
        .reject(id, &desk.user().name, reason)
        .await
        .map_err(gate_error)?;
    Ok(Redirect::to(&format!("/drafts/{id}?done=rejected")).into_response())
}
