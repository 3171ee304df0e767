//! Notification settings on the desk: each person chooses which topics
//! reach them on which channel (`/account/notifications`), and the lead
//! sets anyone's and sees what was sent, waits or failed
//! (`/admin/notifications`). The same store calls as `casebot
//! notifications set`; a box left as the channel's default stays "default",
//! so a later change of `[notify]` still reaches that person.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{Desk, Lead};
use super::i18n::{UiLang, tr};
use super::layout::{self, page};
use super::{AppState, WebError, said};
use crate::notify::pref_rows;
use casebot_core::notify::Topic;

/// The form of one person's choices: a row per topic, a box per channel.
async fn settings_form(
    state: &AppState,
    desk: &Desk,
    person: &str,
    action: &str,
) -> Result<Markup, WebError> {
    let lang = desk.lang();
    let chosen = state.store.notify_choices().await?;
    let rows = pref_rows(&state.config, &[person.to_string()], &chosen);
    let channels: Vec<String> = state.config.notify.channel_defaults().into_keys().collect();
    let on: HashMap<(&str, &str), bool> = rows
        .iter()
        .map(|r| ((r.topic, r.channel.as_str()), r.on))
        .collect();
    Ok(html! {
        @if !state.config.notify.enabled { p.muted { (tr!(lang, "notify-disabled")) } }
        @if channels.is_empty() { p.muted { (tr!(lang, "notify-no-channel")) } }
        @else {
            form.card method="post" action=(action) {
                input type="hidden" name="csrf" value=(desk.csrf());
                table id="notify-settings" {
                    thead { tr {
                        th { (tr!(lang, "notify-topic")) }
                        @for c in &channels { th { (channel_label(lang, c)) } }
                    } }
                    tbody {
                        @for topic in Topic::ALL {
                            tr {
                                td { (lang.word("topic", topic.as_str())) }
                                @for c in &channels {
                                    td {
                                        input type="checkbox" name={"c." (topic.as_str()) "." (c)}
                                            checked[on.get(&(topic.as_str(), c.as_str())).copied().unwrap_or(false)];
                                    }
                                }
                            }
                        }
                    }
                }
                p.muted { (tr!(lang, "notify-hint")) }
                button type="submit" { (tr!(lang, "editor-save")) }
            }
        }
    })
}

fn channel_label(lang: UiLang, channel: &str) -> String {
    if channel == "email" {
        tr!(lang, "notify-channel-email")
    } else {
        channel.to_string()
    }
}

/// Records a submitted settings form for `person`: a box that matches the
/// channel's default goes back to the default.
async fn save(
    state: &AppState,
    person: &str,
    form: &HashMap<String, String>,
) -> Result<bool, WebError> {
    let defaults = state.config.notify.channel_defaults();
    for (channel, topics) in &defaults {
        for topic in Topic::ALL {
            let checked = form.contains_key(&format!("c.{}.{channel}", topic.as_str()));
            let choice = (checked != topics.contains(&topic)).then_some(checked);
            if !state
                .store
                .set_notify_choice(person, topic, channel, choice)
                .await?
            {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The newest notices as a table.
fn notices_table(
    state: &AppState,
    lang: UiLang,
    list: &[casebot_store::notify::NoticeView],
) -> Markup {
    let when = |at: &str| {
        chrono::DateTime::parse_from_rfc3339(at)
            .map(|t| lang.datetime(t.with_timezone(&chrono::Utc), state.time_zone()))
            .unwrap_or_else(|_| at.to_string())
    };
    html! {
        @if list.is_empty() { p.muted { (tr!(lang, "notify-none-yet")) } }
        @else {
            table id="notices" {
                thead { tr {
                    th { (tr!(lang, "notify-person")) } th { (tr!(lang, "notify-topic")) } th { (tr!(lang, "notify-channel")) }
                    th { (tr!(lang, "notify-case")) } th { (tr!(lang, "admin-state")) } th { (tr!(lang, "notify-when")) }
                    th.num { (tr!(lang, "notify-attempts")) } th { (tr!(lang, "admin-last-error")) }
                } }
                tbody {
                    @for n in list {
                        tr {
                            td { (n.person) }
                            td { (lang.word("topic", &n.topic)) }
                            td { (channel_label(lang, &n.channel)) }
                            td { @if let Some(key) = &n.case_key { a href={"/cases/" (layout::url_encode(key))} { (key) } } }
                            td { span class={"badge " (if n.state == "failed" { "breached" } else if n.state == "sent" { "on_track" } else { "at_risk" })} { (lang.word("notice-state", &n.state)) } }
                            td { (when(n.sent_at.as_deref().unwrap_or(&n.due_at))) }
                            td.num { (n.attempts) }
                            td { small { (n.last_error.as_deref().unwrap_or("")) } }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /account/notifications`: my settings and what I was sent lately.
pub async fn mine(State(state): State<AppState>, desk: Desk) -> Result<Markup, WebError> {
    let lang = desk.lang();
    let name = desk.user().name.clone();
    let form = settings_form(&state, &desk, &name, "/account/notifications").await?;
    let recent = state.store.notices(Some(&name), 20).await?;
    Ok(page(
        lang,
        &tr!(lang, "notify-title"),
        Some(&desk),
        html! {
            h1 { (tr!(lang, "notify-title")) }
            @if desk.user().email.is_none() { p.muted { (tr!(lang, "notify-no-address")) } }
            (form)
            h2 { (tr!(lang, "notify-recent")) }
            (notices_table(&state, lang, &recent))
        },
    ))
}

/// `POST /account/notifications`.
pub async fn save_mine(
    State(state): State<AppState>,
    desk: Desk,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    desk.check_csrf(form.get("csrf").map_or("", String::as_str))?;
    save(&state, &desk.user().name, &form).await?;
    tracing::info!(user = %desk.user().name, "notification settings changed");
    Ok(Redirect::to("/account/notifications").into_response())
}

#[derive(Debug, Deserialize)]
pub struct PersonQuery {
    person: Option<String>,
}

/// `GET /admin/notifications[?person=NAME]`: anyone's settings, and the
/// newest notices of everyone.
pub async fn admin(
    State(state): State<AppState>,
    Lead(desk): Lead,
    Query(q): Query<PersonQuery>,
) -> Result<Markup, WebError> {
    let lang = desk.lang();
    let users = state.store.users().await?;
    let person = q
        .person
        .filter(|p| users.iter().any(|u| &u.name == p))
        .unwrap_or_else(|| desk.user().name.clone());
    let action = format!("/admin/notifications/{}", layout::url_encode(&person));
    let form = settings_form(&state, &desk, &person, &action).await?;
    let recent = state.store.notices(None, 100).await?;
    Ok(super::admin::admin_page(
        &desk,
        "admin-notifications",
        html! {
            h1 { (tr!(lang, "admin-notifications")) }
            nav.sub {
                @for u in &users {
                    @if u.name == person { b { (u.name) } }
                    @else { a href={"/admin/notifications?person=" (layout::url_encode(&u.name))} { (u.name) } }
                }
            }
            (form)
            h2 { (tr!(lang, "notify-recent")) }
            (notices_table(&state, lang, &recent))
        },
    ))
}

/// `POST /admin/notifications/{name}`.
pub async fn admin_save(
    State(state): State<AppState>,
    Lead(desk): Lead,
    Path(person): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    desk.check_csrf(form.get("csrf").map_or("", String::as_str))?;
    if !save(&state, &person, &form).await? {
        return Err(WebError::NotFound(said!(
            "error-no-account",
            name = &person
        )));
    }
    tracing::info!(user = %person, by = %desk.user().name, "notification settings changed by the lead");
    Ok(Redirect::to(&format!(
        "/admin/notifications?person={}",
        layout::url_encode(&person)
    ))
    .into_response())
}
