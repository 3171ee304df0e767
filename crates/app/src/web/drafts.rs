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
use super::layout::{self, page};
use super::{AppState, WebError};
use casebot_store::drafts::{DraftView, GateError};

fn gate_error(e: GateError) -> WebError {
    match e {
        GateError::NotFound(id) => WebError::NotFound(format!("no draft {id}")),
        GateError::Store(e) => WebError::Internal(e),
        other => WebError::Rejected(other.to_string()),
    }
}

pub async fn draft_view(state: &AppState, id: i64) -> Result<DraftView, WebError> {
    Ok(state
        .store
        .draft(id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("no draft {id}")))?
        .view())
}

#[derive(Debug, Deserialize)]
pub struct EditorQuery {
    done: Option<String>,
}

/// The notice after an action, by its code, told from the draft itself: a
/// link can name an action, never put words on the page.
fn notice(code: &str, d: &DraftView) -> Option<String> {
    match code {
        "approved" => Some(format!(
            "Approved by {}; it is being sent (Message-ID {}).",
            d.approved_by.as_deref().unwrap_or(""),
            d.message_id.as_deref().unwrap_or("")
        )),
        "saved" => Some(format!("Saved as revision {}.", d.revision)),
        "rejected" => Some("Rejected.".into()),
        _ => None,
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
    refused: Option<&str>,
) -> Result<Markup, WebError> {
    let d = draft_view(state, id).await?;
    let pending = d.status == casebot_core::domain::DraftStatus::Pending;
    Ok(page(
        &format!("Draft {id}"),
        Some(desk),
        html! {
            h1 { "Draft " (d.id) " · " (d.kind) " · " span.badge.paused { (d.status) } }
            p { "Case " a href={"/cases/" (layout::url_encode(&d.case_key))} { (d.case_key) }
                " · revision " (d.revision) " · language " (d.language) }
            @if let Some(done) = done.and_then(|code| notice(code, &d)) { p.notice { (done) } }
            @if let Some(refused) = refused {
                div.error id="refused" {
                    p { b { "Not approved. The text was saved; fix these and approve again:" } }
                    ul { @for line in refused.lines().skip(1) { li { (line.trim()) } } }
                }
            }
            @if let Some(e) = &d.last_error { p.error { "Last send attempt: " (e) } }
            div.card {
                p { b { "To: " } (d.to.join(", ")) }
                @if !d.cc.is_empty() { p { b { "Cc: " } (d.cc.join(", ")) } }
                p { b { "Subject: " } span id="subject" { (d.subject) } }
                @if let Some(r) = &d.in_reply_to { p.muted { "In reply to " (r) } }
            }
            @if pending {
                form id="editor" method="post" action={"/drafts/" (d.id)} {
                    input type="hidden" name="csrf" value=(desk.csrf());
                    input type="hidden" name="revision" value=(d.revision);
                    textarea name="body" id="body" spellcheck="false" { (d.body) }
                    p {
                        button type="submit" name="action" value="save" { "Save" }
                        " "
                        button.primary type="submit" name="action" value="approve" { "Approve and send" }
                        " "
                        label.muted { input type="checkbox" name="accept_warnings" value="1"; " approve despite warnings (no greeting or signature; recorded)" }
                    }
                    p.muted { "Before it is sent the text is checked: template syntax or a fill-in such as <KB> left in it refuses the approval." }
                    h2 { "Text modules" }
                    p.muted { "Type ::name and a space in the text, or insert one at the cursor." }
                    ul id="snippets" data-draft=(d.id) {}
                }
                form.filters method="post" action={"/drafts/" (d.id) "/reject"} {
                    input type="hidden" name="csrf" value=(desk.csrf());
                    label { "Reason for rejecting" input type="text" name="reason" required size="50"; }
                    button.danger type="submit" { "Reject" }
                }
            } @else {
                pre.card { (d.body) }
                @if let Some(by) = &d.approved_by { p.muted { "Approved by " (by) " at " (d.approved_at.as_deref().unwrap_or("")) } }
                @if let Some(at) = &d.sent_at { p.muted { "Sent at " (at) } }
                @if let Some(by) = &d.rejected_by { p.muted { "Rejected by " (by) ": " (d.reject_reason.as_deref().unwrap_or("")) } }
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
        .ok_or_else(|| WebError::NotFound(format!("no draft {id}")))?;
    if current.revision != form.revision {
        return Err(WebError::Rejected(format!(
            "draft {id} changed since you opened it (revision {} → {}): open it again",
            form.revision, current.revision
        )));
    }
    // Browsers send textarea text with CRLF line ends.
    let body = form.body.replace("\r\n", "\n");
    if body.trim().is_empty() {
        return Err(WebError::Rejected("the reply is empty".into()));
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
                Err(GateError::Refused(problems)) => {
                    let page = editor_page(&state, &desk, id, None, Some(&problems)).await?;
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
        return Err(WebError::Rejected("say why the draft is rejected".into()));
    }
    state
        .drafter
        .reject(id, &desk.user().name, reason)
        .await
        .map_err(gate_error)?;
    Ok(Redirect::to(&format!("/drafts/{id}?done=rejected")).into_response())
}
