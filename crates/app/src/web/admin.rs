//! The team lead's administration of the desk in the browser: accounts,
//! the quarantine, the knowledge entries and the mailboxes' states (and,
//! in `notify.rs`, everyone's notification settings). Every
//! page and action takes [`Lead`]; every action is the same store call as
//! its command (`casebot user …`, `quarantine replay|discard`,
//! `knowledge edit`), checks the form's CSRF token and is logged.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{self, Desk, Lead};
use super::i18n::{UiLang, tr};
use super::layout::{self, page};
use super::{AppState, WebError, said};
use casebot_store::users::Role;

/// A stored RFC 3339 time in the desk's zone and the reader's format.
fn when(state: &AppState, lang: UiLang, at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| lang.datetime(t.with_timezone(&chrono::Utc), state.time_zone()))
        .unwrap_or_else(|_| at.to_string())
}

/// The sections, for the sub-navigation.
const SECTIONS: [(&str, &str); 5] = [
    ("/admin/users", "admin-users"),
    ("/admin/quarantine", "admin-quarantine"),
    ("/admin/knowledge", "admin-knowledge"),
    ("/admin/mailboxes", "admin-mailboxes"),
    ("/admin/notifications", "admin-notifications"),
];

fn section_title(lang: UiLang, id: &str) -> String {
    match id {
        "admin-users" => tr!(lang, "admin-users"),
        "admin-quarantine" => tr!(lang, "admin-quarantine"),
        "admin-knowledge" => tr!(lang, "admin-knowledge"),
        "admin-notifications" => tr!(lang, "admin-notifications"),
        _ => tr!(lang, "admin-mailboxes"),
    }
}

/// An administration page: the sub-navigation, then `body`.
pub(super) fn admin_page(desk: &Desk, section: &str, body: Markup) -> Markup {
    let lang = desk.lang();
    page(
        lang,
        &section_title(lang, section),
        Some(desk),
        html! {
            nav.sub {
                @for (href, id) in SECTIONS {
                    @if id == section { b { (section_title(lang, id)) } } @else { a href=(href) { (section_title(lang, id)) } }
                }
            }
            (body)
        },
    )
}

pub async fn index() -> Redirect {
    Redirect::to("/admin/users")
}

/// `GET /admin/users`: every account, a form to add one, and per account
/// its role, language, enabling and a new password.
pub async fn users(State(state): State<AppState>, Lead(desk): Lead) -> Result<Markup, WebError> {
    let users = state.store.users().await?;
    let lang = desk.lang();
    let csrf = desk.csrf();
    Ok(admin_page(
        &desk,
        "admin-users",
        html! {
            h1 { (tr!(lang, "admin-users")) }
            table id="accounts" {
                thead { tr {
                    th { (tr!(lang, "login-name")) } th { (tr!(lang, "admin-display-name")) } th { (tr!(lang, "admin-email")) }
                    th { (tr!(lang, "admin-role")) } th { (tr!(lang, "admin-language")) } th { (tr!(lang, "admin-state")) } th { (tr!(lang, "admin-password")) }
                } }
                tbody {
                    @for u in &users {
                        @let action = format!("/admin/users/{}", layout::url_encode(&u.name));
                        tr data-user=(u.name) {
                            td { b { (u.name) } }
                            td { (u.display_name.as_deref().unwrap_or("–")) }
                            td { (u.email.as_deref().unwrap_or("–")) }
                            td {
                                form.inline method="post" action=(action) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="action" value="role";
                                    select name="value" {
                                        @for role in [Role::Engineer, Role::Lead] {
                                            option value=(role.as_str()) selected[u.role == role] { (lang.word("role", role.as_str())) }
                                        }
                                    }
                                    button type="submit" { (tr!(lang, "admin-change")) }
                                }
                            }
                            td {
                                form.inline method="post" action=(action) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="action" value="language";
                                    select name="value" {
                                        option value="" { (tr!(lang, "admin-desk-default")) }
                                        @for l in UiLang::ALL {
                                            option value=(l.tag()) selected[u.language.as_deref() == Some(l.tag())] { (l.native_name()) }
                                        }
                                    }
                                    button type="submit" { (tr!(lang, "admin-change")) }
                                }
                            }
                            td {
                                form.inline method="post" action=(action) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    @if u.disabled {
                                        span.badge.breached { (tr!(lang, "admin-disabled")) } " "
                                        input type="hidden" name="action" value="enable";
                                        button type="submit" { (tr!(lang, "admin-enable")) }
                                    } @else {
                                        span.badge.on_track { (tr!(lang, "admin-enabled")) } " "
                                        input type="hidden" name="action" value="disable";
                                        button.danger type="submit" disabled[u.name == desk.user().name] { (tr!(lang, "admin-disable")) }
                                    }
                                }
                            }
                            td {
                                form.inline method="post" action=(action) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="action" value="password";
                                    input type="password" name="value" autocomplete="new-password" minlength="10" required placeholder=(tr!(lang, "admin-new-password"));
                                    button type="submit" { (tr!(lang, "admin-set")) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { (tr!(lang, "admin-add-account")) }
            form.filters method="post" action="/admin/users" {
                input type="hidden" name="csrf" value=(csrf);
                label { (tr!(lang, "login-name")) input type="text" name="name" required maxlength="64"; }
                label { (tr!(lang, "admin-role"))
                    select name="role" {
                        @for role in [Role::Engineer, Role::Lead] { option value=(role.as_str()) { (lang.word("role", role.as_str())) } }
                    }
                }
                label { (tr!(lang, "admin-email")) input type="email" name="email"; }
                label { (tr!(lang, "admin-display-name")) input type="text" name="display_name"; }
                label { (tr!(lang, "admin-language"))
                    select name="language" {
                        option value="" { (tr!(lang, "admin-desk-default")) }
                        @for l in UiLang::ALL { option value=(l.tag()) { (l.native_name()) } }
                    }
                }
                label { (tr!(lang, "login-password")) input type="password" name="password" autocomplete="new-password" minlength="10" required; }
                button.primary type="submit" { (tr!(lang, "admin-add")) }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct NewAccountForm {
    csrf: String,
    name: String,
    role: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    language: String,
    password: String,
}

/// `POST /admin/users`: a new account.
pub async fn add_user(
    State(state): State<AppState>,
    Lead(desk): Lead,
    Form(form): Form<NewAccountForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let name = form.name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(WebError::Rejected(said!("error-account-name")));
    }
    let role = Role::parse(&form.role)
        .ok_or_else(|| WebError::Rejected(said!("error-no-role", role = &form.role)))?;
    auth::check_password_strength(&form.password)
        .map_err(|_| WebError::Rejected(said!("error-password-short")))?;
    if state.store.user(name).await?.is_some() {
        return Err(WebError::Rejected(said!(
            "error-account-exists",
            name = name
        )));
    }
    let email = Some(form.email.trim()).filter(|e| !e.is_empty());
    let hash = auth::hash_password(&form.password)?;
    state.store.add_user(name, email, role, &hash).await?;
    let display_name = Some(form.display_name.trim().to_string()).filter(|d| !d.is_empty());
    let profile = casebot_store::users::Profile {
        display_name,
        ..Default::default()
    };
    state.store.set_profile(name, &profile).await?;
    if let Some(lang) = UiLang::parse(&form.language) {
        state.store.set_language(name, Some(lang.tag())).await?;
    }
    if email.is_some() {
        // Mail from this address is now this person's.
        crate::stages::sla::SlaSnapshots::invalidate(&state.store).await?;
    }
    tracing::info!(user = ?name, role = role.as_str(), by = %desk.user().name, "account added on the desk");
    Ok(Redirect::to("/admin/users").into_response())
}

#[derive(Debug, Deserialize)]
pub struct AccountForm {
    csrf: String,
    action: String,
    #[serde(default)]
    value: String,
}

/// `POST /admin/users/{name}`: one change to an account.
pub async fn change_user(
    State(state): State<AppState>,
    Lead(desk): Lead,
    Path(name): Path<String>,
    Form(form): Form<AccountForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let store = &state.store;
    let found = match form.action.as_str() {
        "role" => {
            let role = Role::parse(&form.value)
                .ok_or_else(|| WebError::Rejected(said!("error-no-role", role = &form.value)))?;
            store.set_role(&name, role).await?
        }
        "language" => {
            let lang = UiLang::parse(&form.value).map(UiLang::tag);
            store.set_language(&name, lang).await?
        }
        "disable" if name == desk.user().name => {
            return Err(WebError::Rejected(said!("error-disable-self")));
        }
        "disable" => store.set_user_disabled(&name, true).await?,
        "enable" => store.set_user_disabled(&name, false).await?,
        "password" => {
            auth::check_password_strength(&form.value)
                .map_err(|_| WebError::Rejected(said!("error-password-short")))?;
            // A new password ends the account's sessions (the store does).
            store
                .set_password(&name, &auth::hash_password(&form.value)?)
                .await?
        }
        other => return Err(WebError::Rejected(said!("error-no-action", action = other))),
    };
    if !found {
        return Err(WebError::NotFound(said!("error-no-account", name = &name)));
    }
    tracing::info!(user = ?name, action = %form.action, by = %desk.user().name, "account changed on the desk");
    Ok(Redirect::to("/admin/users").into_response())
}

/// `GET /admin/quarantine`: mail waiting for a decision, and what was decided.
pub async fn quarantine(
    State(state): State<AppState>,
    Lead(desk): Lead,
) -> Result<Markup, WebError> {
    let entries = state.store.quarantine_list(true).await?;
    let lang = desk.lang();
    let waiting: Vec<_> = entries.iter().filter(|e| e.released_at.is_none()).collect();
    let decided: Vec<_> = entries
        .iter()
        .rev()
        .filter(|e| e.released_at.is_some())
        .take(50)
        .collect();
    Ok(admin_page(
        &desk,
        "admin-quarantine",
        html! {
            h1 { (tr!(lang, "admin-quarantine")) }
            p.muted { (tr!(lang, "admin-quarantine-hint")) }
            @if waiting.is_empty() { p { (tr!(lang, "admin-quarantine-empty")) } }
            @else {
                table id="quarantine" {
                    thead { tr { th { "#" } th { (tr!(lang, "admin-reason")) } th { (tr!(lang, "admin-source")) } th.num { (tr!(lang, "admin-size")) } th { (tr!(lang, "admin-since")) } } }
                    tbody {
                        @for e in &waiting {
                            tr {
                                td { a href={"/admin/quarantine/" (e.id)} { (e.id) } }
                                td { (e.reason) }
                                td { small { (e.source) } }
                                td.num { (e.size) }
                                td { (when(&state, lang, &e.created_at)) }
                            }
                        }
                    }
                }
            }
            @if !decided.is_empty() {
                h2 { (tr!(lang, "admin-quarantine-decided")) }
                table {
                    @for e in &decided {
                        tr {
                            td { a href={"/admin/quarantine/" (e.id)} { (e.id) } }
                            td { (e.reason) }
                            td {
                                @match (&e.discarded_by, &e.discard_reason) {
                                    (Some(by), Some(why)) => { (tr!(lang, "admin-discarded-by", by = by, reason = why)) }
                                    _ => { (tr!(lang, "admin-filed")) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// At most this much of a quarantined mail's header block is shown.
const MAX_HEADERS: usize = 16 * 1024;

/// `GET /admin/quarantine/{id}`: one entry, its headers as text, replay
/// and discard.
pub async fn quarantine_entry(
    State(state): State<AppState>,
    Lead(desk): Lead,
    Path(id): Path<i64>,
) -> Result<Markup, WebError> {
    let entry = state
        .store
        .quarantine_list(true)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| WebError::NotFound(said!("error-no-quarantine", id = id)))?;
    let headers = state
        .store
        .quarantined_headers(id, MAX_HEADERS)
        .await?
        .unwrap_or_default();
    let lang = desk.lang();
    let action = format!("/admin/quarantine/{id}");
    Ok(admin_page(
        &desk,
        "admin-quarantine",
        html! {
            h1 { (tr!(lang, "admin-quarantine-entry", id = id)) }
            p { b { (tr!(lang, "admin-reason")) ": " } (entry.reason) }
            p.muted { (entry.source) " · " (entry.size) " · " (when(&state, lang, &entry.created_at)) " · " (tr!(lang, "admin-attempts", count = entry.attempts)) }
            h2 { (tr!(lang, "admin-headers")) }
            pre.card id="raw-headers" { (headers) }
            @if entry.released_at.is_none() {
                form.filters method="post" action=(action) {
                    input type="hidden" name="csrf" value=(desk.csrf());
                    input type="hidden" name="action" value="replay";
                    button.primary type="submit" { (tr!(lang, "admin-replay")) }
                }
                form.filters method="post" action=(action) {
                    input type="hidden" name="csrf" value=(desk.csrf());
                    input type="hidden" name="action" value="discard";
                    label { (tr!(lang, "admin-discard-reason")) input type="text" name="reason" required size="50"; }
                    button.danger type="submit" { (tr!(lang, "admin-discard")) }
                }
            } @else {
                p.notice { (entry.discard_reason.as_ref().map_or_else(|| tr!(lang, "admin-filed"), |why| tr!(lang, "admin-discarded-by", by = entry.discarded_by.as_deref().unwrap_or(""), reason = why))) }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct QuarantineForm {
    csrf: String,
    action: String,
    #[serde(default)]
    reason: String,
}

/// `POST /admin/quarantine/{id}`: replay through the pipeline (as
/// `casebot quarantine replay`), or discard with a reason.
pub async fn quarantine_action(
    State(state): State<AppState>,
    Lead(desk): Lead,
    Path(id): Path<i64>,
    Form(form): Form<QuarantineForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let by = desk.user().name.clone();
    match form.action.as_str() {
        "replay" => {
            let pipeline =
                crate::stages::filing::Pipeline::new(state.store.clone(), state.config.clone())?;
            let report = pipeline
                .replay(id)
                .await?
                .ok_or_else(|| WebError::NotFound(said!("error-no-quarantine", id = id)))?;
            tracing::info!(quarantine = id, status = ?report.status, by = %by, "quarantined mail replayed on the desk");
        }
        "discard" => {
            if form.reason.trim().is_empty() {
                return Err(WebError::Rejected(said!("error-discard-reason")));
            }
            if !state
                .store
                .quarantine_discard(id, &by, &form.reason)
                .await?
            {
                return Err(WebError::NotFound(said!("error-no-quarantine", id = id)));
            }
            tracing::info!(quarantine = id, by = %by, "quarantined mail discarded on the desk");
        }
        other => return Err(WebError::Rejected(said!("error-no-action", action = other))),
    }
    Ok(Redirect::to(&format!("/admin/quarantine/{id}")).into_response())
}

/// `GET /admin/knowledge`: what closed cases taught, each editable.
pub async fn knowledge(
    State(state): State<AppState>,
    Lead(desk): Lead,
) -> Result<Markup, WebError> {
    let entries = state.store.knowledge_list().await?;
    let lang = desk.lang();
    Ok(admin_page(
        &desk,
        "admin-knowledge",
        html! {
            h1 { (tr!(lang, "admin-knowledge")) }
            @if entries.is_empty() { p { (tr!(lang, "case-none-yet")) } }
            @for k in &entries {
                form.card.knowledge method="post" action={"/admin/knowledge/" (k.id)} {
                    input type="hidden" name="csrf" value=(desk.csrf());
                    p {
                        b { "#" (k.id) } " · "
                        a href={"/cases/" (layout::url_encode(&k.case_key))} { (k.case_key) }
                        " · " code { (k.error_codes.join(" ")) } " " (k.kbs.join(" "))
                        @if let Some(by) = &k.updated_by { " · " small { (tr!(lang, "admin-edited-by", by = by)) } }
                    }
                    label { (tr!(lang, "admin-class")) input type="text" name="class" value=(k.class) size="40"; }
                    label { (tr!(lang, "admin-problem")) textarea name="problem" rows="2" { (k.problem) } }
                    label { (tr!(lang, "admin-resolution")) textarea name="resolution" rows="3" { (k.resolution) } }
                    button type="submit" { (tr!(lang, "editor-save")) }
                }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct KnowledgeForm {
    csrf: String,
    class: String,
    problem: String,
    resolution: String,
}

/// `POST /admin/knowledge/{id}`: the lead's correction (as `casebot
/// knowledge edit`), audited on the case.
pub async fn edit_knowledge(
    State(state): State<AppState>,
    Lead(desk): Lead,
    Path(id): Path<i64>,
    Form(form): Form<KnowledgeForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let clean =
        |s: &str| Some(s.replace("\r\n", "\n").trim().to_string()).filter(|s| !s.is_empty());
    let edit = casebot_store::knowledge::KnowledgeEdit {
        class: clean(&form.class),
        problem: clean(&form.problem),
        resolution: clean(&form.resolution),
    };
    state
        .store
        .knowledge_edit(id, &edit, &desk.user().name)
        .await?
        .ok_or_else(|| WebError::NotFound(said!("error-no-knowledge", id = id)))?;
    tracing::info!(knowledge = id, by = %desk.user().name, "knowledge edited on the desk");
    Ok(Redirect::to("/admin/knowledge").into_response())
}

/// `GET /admin/mailboxes`: each watched folder's state, as `casebot
/// mailboxes` shows it.
pub async fn mailboxes(
    State(state): State<AppState>,
    Lead(desk): Lead,
) -> Result<Markup, WebError> {
    let folders = state.store.imap_folders().await?;
    let lang = desk.lang();
    Ok(admin_page(
        &desk,
        "admin-mailboxes",
        html! {
            h1 { (tr!(lang, "admin-mailboxes")) }
            @if folders.is_empty() { p.muted { (tr!(lang, "admin-no-mailbox")) } }
            @else {
                table id="mailboxes" {
                    thead { tr {
                        th { (tr!(lang, "admin-mailbox")) } th { (tr!(lang, "admin-folder")) } th { (tr!(lang, "admin-state")) }
                        th { (tr!(lang, "admin-since")) } th.num { "UIDVALIDITY" } th.num { (tr!(lang, "admin-last-uid")) } th { (tr!(lang, "admin-last-error")) }
                    } }
                    tbody {
                        @for f in &folders {
                            tr {
                                td { (f.mailbox) } td { (f.folder) }
                                td { span class={"badge " (if matches!(f.state.as_str(), "idle" | "polling") { "on_track" } else { "at_risk" })} { (lang.word("mailbox-state", &f.state)) } }
                                td { (when(&state, lang, &f.state_since)) }
                                td.num { (f.uidvalidity) } td.num { (f.last_uid) }
                                td { small { (f.last_error.as_deref().unwrap_or("")) } }
                            }
                        }
                    }
                }
            }
        },
    ))
}
