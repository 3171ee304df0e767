//! Logging in and out, the case list and the case page.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{self, ClientAddr, Desk, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use super::i18n::{self, UiLang, tr};
use super::layout::{self, local_ts, page, target_cell, urgency_badge};
use super::{AppState, WebError, said};
use casebot_core::sla::{CaseSla, CaseSlaView, evaluate};
use casebot_store::cases::{CaseListRow, CaseQuery, PageRequest};

pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// A language chosen on the login page (remembered in a cookie).
    lang: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

/// Only a path on this desk (no open redirect): `next` is resolved as a
/// browser would, by the URL standard's rules (which drop tabs and new
/// lines, and read `\\` as `/`), against a stand-in origin; anything that
/// leaves that origin gives the case list. What comes back is the parsed
/// path and query, so no control character reaches a header.
fn safe_next(next: Option<&str>) -> String {
    const ORIGIN: &str = "http://desk.invalid/";
    let fallback = || "/cases".to_string();
    let Some(next) = next.filter(|n| n.starts_with('/')) else {
        return fallback();
    };
    let Ok(base) = url::Url::parse(ORIGIN) else {
        return fallback();
    };
    match base.join(next) {
        Ok(url) if url.origin() == base.origin() => match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        },
        _ => fallback(),
    }
}

fn login_form(lang: UiLang, csrf: &str, next: &str, error: Option<&str>) -> Markup {
    page(
        lang,
        &tr!(lang, "login-title"),
        None,
        html! {
            div.login.card {
                h1 { (tr!(lang, "login-heading")) }
                @if let Some(e) = error { p.error { (e) } }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="next" value=(next);
                    label { (tr!(lang, "login-name")) input type="text" name="name" autocomplete="username" required autofocus; }
                    label { (tr!(lang, "login-password")) input type="password" name="password" autocomplete="current-password" required; }
                    button.primary type="submit" { (tr!(lang, "login-submit")) }
                }
            }
        },
    )
}

pub async fn login_page(
    State(state): State<AppState>,
    desk: Option<Desk>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if desk.is_some() {
        return Redirect::to(&next).into_response();
    }
    let secure = state.config.web.secure_cookies;
    let chosen = q.lang.as_deref().and_then(UiLang::parse);
    let lang = chosen
        .or_else(i18n::request_lang)
        .unwrap_or_else(|| state.default_lang());
    let csrf = auth::random_token();
    let mut response = login_form(lang, &csrf, &next, None).into_response();
    let h = response.headers_mut();
    let mut cookies = vec![auth::cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, secure)];
    if let Some(chosen) = chosen {
        cookies.push(auth::cookie(
            i18n::LANG_COOKIE,
            chosen.tag(),
            LANG_COOKIE_SECS,
            secure,
        ));
    }
    for cookie in cookies {
        if let Ok(value) = cookie.parse() {
            h.append(header::SET_COOKIE, value);
        }
    }
    response
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let next = safe_next(form.next.as_deref());
    let cookie_csrf = auth::cookie_value(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if cookie_csrf.is_empty() || !auth::same_token(cookie_csrf, &form.csrf) {
        return Err(WebError::Forbidden(said!("error-login-form-expired")));
    }
    let lang = i18n::request_lang().unwrap_or_else(|| state.default_lang());
    let refuse = |message: String| {
        (
            StatusCode::UNAUTHORIZED,
            login_form(lang, cookie_csrf, &next, Some(&message)),
        )
            .into_response()
    };
    let busy = |retry_after: u64, message: String| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after.to_string())],
            login_form(lang, cookie_csrf, &next, Some(&message)),
        )
            .into_response()
    };
    let name = auth::login_name(&form.name);
    let permit = match state.throttle.admit(&name, client) {
        Ok(permit) => permit,
        Err(refusal) => {
            // `?`: a name is logged escaped, never able to forge a log line.
            tracing::warn!(user = ?name, client = ?client, ?refusal, "login refused");
            return Ok(match refusal {
                auth::Refusal::NameLocked => refuse(tr!(lang, "login-name-locked")),
                auth::Refusal::ClientLimited => busy(300, tr!(lang, "login-client-limited")),
                auth::Refusal::Busy => busy(1, tr!(lang, "login-busy")),
            });
        }
    };
    let checked = auth::authenticate(&state, &name, &form.password).await;
    drop(permit);
    let Some(user) = checked? else {
        tracing::warn!(user = ?name, client = ?client, "login failed");
        return Ok(refuse(tr!(lang, "login-wrong")));
    };
    state.throttle.succeeded(&name, client);
    let token = auth::random_token();
    let expires = casebot_store::now_ts() + state.session_secs();
    state
        .store
        .create_session(
            &auth::token_digest(&token),
            user.id,
            &auth::random_token(),
            expires,
        )
        .await?;
    tracing::info!(user = %user.name, "logged in");
    let secure = state.config.web.secure_cookies;
    let mut response = Redirect::to(&next).into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        auth::cookie(SESSION_COOKIE, &token, state.session_secs(), secure).parse()?,
    );
    h.append(
        header::SET_COOKIE,
        auth::cookie(LOGIN_CSRF_COOKIE, "", 0, secure).parse()?,
    );
    if let Some(lang) = user.language.as_deref().and_then(UiLang::parse) {
        h.append(
            header::SET_COOKIE,
            auth::cookie(i18n::LANG_COOKIE, lang.tag(), LANG_COOKIE_SECS, secure).parse()?,
        );
    }
    Ok(response)
}

/// How long a browser remembers the language chosen (a year).
const LANG_COOKIE_SECS: i64 = 365 * 24 * 3600;

#[derive(Debug, Deserialize)]
pub struct LanguageForm {
    csrf: String,
    language: String,
    /// The page to go back to (the switch's page).
    #[serde(default)]
    back: Option<String>,
}

/// `POST /account/language`: the person's language, kept with their
/// account (and in the browser, for the login page).
pub async fn switch_language(
    State(state): State<AppState>,
    desk: Desk,
    headers: HeaderMap,
    Form(form): Form<LanguageForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let lang = UiLang::parse(&form.language)
        .ok_or_else(|| WebError::Rejected(said!("error-no-language", language = &form.language)))?;
    state
        .store
        .set_language(&desk.user().name, Some(lang.tag()))
        .await?;
    tracing::info!(user = %desk.user().name, language = lang.tag(), "desk language switched");
    // Back to the page the switch was on (a path of this desk only).
    let referer = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        });
    let back = safe_next(form.back.as_deref().or(referer.as_deref()));
    let cookie = auth::cookie(
        i18n::LANG_COOKIE,
        lang.tag(),
        LANG_COOKIE_SECS,
        state.config.web.secure_cookies,
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&back)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    desk: Desk,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    state.store.end_session(&desk.token_digest).await?;
    Ok((
        [(
            header::SET_COOKIE,
            auth::cookie(SESSION_COOKIE, "", 0, state.config.web.secure_cookies),
        )],
        Redirect::to("/login"),
    )
        .into_response())
}

/// The case list's filters, as in its URL.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    pub mine: Option<String>,
    pub waiting: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub customer: Option<String>,
    pub q: Option<String>,
    pub page: Option<i64>,
}

fn flag(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| !v.is_empty() && v != "0")
}

impl ListParams {
    pub fn query(&self, desk: &Desk, limit: i64) -> CaseQuery {
        CaseQuery {
            owners: if flag(&self.mine) {
                desk.identities()
            } else {
                Vec::new()
            },
            waiting_on_us: flag(&self.waiting),
            status: self
                .status
                .as_deref()
                .and_then(casebot_core::domain::CaseStatus::parse),
            priority: self.priority.clone(),
            customer: self.customer.clone(),
            text: self.q.clone(),
            limit,
            offset: (self.page.unwrap_or(1).max(1) - 1) * limit,
        }
    }

    fn link_to_page(&self, page: i64) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("mine", &self.mine),
            ("waiting", &self.waiting),
            ("status", &self.status),
            ("priority", &self.priority),
            ("customer", &self.customer),
            ("q", &self.q),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!("{k}={}", layout::url_encode(v)));
            }
        }
        parts.push(format!("page={page}"));
        format!("/cases?{}", parts.join("&"))
    }
}

/// The SLA of a listed case, read off its stored snapshot at `now`.
pub fn row_sla(
    state: &AppState,
    row: &CaseListRow,
    now: chrono::DateTime<Utc>,
) -> Option<CaseSlaView> {
    let snapshot: CaseSla = serde_json::from_str(row.snapshot.as_deref()?).ok()?;
    Some(snapshot.view(state.sla.policies(), now))
}

pub async fn list(
    State(state): State<AppState>,
    desk: Desk,
    Query(params): Query<ListParams>,
) -> Result<Markup, WebError> {
    state.sla.refresh().await?;
    let (rows, total) = state
        .store
        .search_cases(&params.query(&desk, PAGE_SIZE))
        .await?;
    let customers = state.store.case_customers().await?;
    let tz = state.time_zone();
    let now = Utc::now();
    let page_no = params.page.unwrap_or(1).max(1);
    let pages = (total + PAGE_SIZE - 1) / PAGE_SIZE;
    let selected = |a: &Option<String>, b: &str| a.as_deref() == Some(b);
    let lang = desk.lang();
    Ok(page(
        lang,
        &tr!(lang, "cases-title"),
        Some(&desk),
        html! {
            h1 { (tr!(lang, "cases-title")) }
            form.filters method="get" action="/cases" {
                label { (tr!(lang, "cases-search")) input type="search" name="q" value=[params.q.as_deref()] placeholder="CAS-…, KB…, 0x800f…"; }
                label { (tr!(lang, "cases-priority"))
                    select name="priority" {
                        option value="" { (tr!(lang, "cases-any")) }
                        @for p in ["P1", "P2", "P3", "P4"] {
                            option value=(p) selected[selected(&params.priority, p)] { (p) }
                        }
                    }
                }
                label { (tr!(lang, "cases-customer"))
                    select name="customer" {
                        option value="" { (tr!(lang, "cases-any")) }
                        @for c in &customers {
                            option value=(c) selected[selected(&params.customer, c)] { (c) }
                        }
                    }
                }
                label { (tr!(lang, "cases-status"))
                    select name="status" {
                        option value="" { (tr!(lang, "cases-any")) }
                        @for s in ["waiting_on_us", "waiting_on_customer", "resolved", "archived", "new"] {
                            option value=(s) selected[selected(&params.status, s)] { (lang.word("status", s)) }
                        }
                    }
                }
                label { span { input type="checkbox" name="mine" value="1" checked[flag(&params.mine)]; " " (tr!(lang, "cases-mine")) } }
                label { span { input type="checkbox" name="waiting" value="1" checked[flag(&params.waiting)]; " " (tr!(lang, "cases-waiting")) } }
                button type="submit" { (tr!(lang, "cases-filter")) }
            }
            p.muted {
                (tr!(lang, "cases-count", count = total))
                @if pages > 1 { " · " (tr!(lang, "cases-page-of", page = page_no, pages = pages)) }
            }
            table id="cases" {
                thead { tr {
                    th { (tr!(lang, "col-case")) } th { (tr!(lang, "col-priority")) } th { (tr!(lang, "col-customer")) }
                    th { (tr!(lang, "col-title")) } th { (tr!(lang, "col-status")) } th { (tr!(lang, "col-owner")) }
                    th { (tr!(lang, "col-sla")) } th { (tr!(lang, "col-next-due")) } th.num { (tr!(lang, "col-mails")) }
                    th { (tr!(lang, "col-last-mail")) } th { (tr!(lang, "col-draft")) }
                } }
                tbody {
                    @for row in &rows {
                        @let sla = row_sla(&state, row, now);
                        tr {
                            td { a href={"/cases/" (layout::url_encode(&row.key))} { (row.key) } }
                            td { (row.priority.as_deref().unwrap_or("–")) }
                            td { (row.customer.as_deref().unwrap_or("–")) }
                            td { (row.title.as_deref().unwrap_or("")) }
                            td { (lang.word("status", row.status.as_str())) }
                            td { (row.owner.as_deref().unwrap_or("–")) }
                            td { @if let Some(s) = &sla { (urgency_badge(lang, s.urgency)) } }
                            td { @if let Some(due) = sla.as_ref().and_then(|s| s.next_due) { (lang.datetime(due, tz)) } }
                            td.num { (row.message_count) }
                            td { (local_ts(lang, row.last_message_at, tz)) }
                            td { @if let Some(id) = row.pending_draft { a href={"/drafts/" (id)} { (tr!(lang, "cases-draft-link", id = id)) } } }
                        }
                    }
                }
            }
            div.pager {
                @if page_no > 1 { a href=(params.link_to_page(page_no - 1)) { (tr!(lang, "pager-newer")) } }
                @if page_no < pages { a href=(params.link_to_page(page_no + 1)) { (tr!(lang, "pager-older")) } }
            }
        },
    ))
}

/// Which page of a thread to show: `?page=N&per_page=M` (the last page,
/// 50 mails, when not given).
#[derive(Debug, Default, Deserialize)]
pub struct ThreadParams {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

impl ThreadParams {
    pub fn request(&self) -> PageRequest {
        PageRequest::new(self.page, self.per_page)
    }
}

/// Everything the case page shows, gathered once (the API returns it as JSON).
pub async fn case_view(
    state: &AppState,
    key: &str,
    page: PageRequest,
) -> Result<serde_json::Value, WebError> {
    let lang = casebot_core::domain::Lang::parse(&state.config.analysis.language)
        .unwrap_or(casebot_core::domain::Lang::Zh);
    let overview =
        crate::overview::case_overview(&state.store, state.drafter.rules(), lang, key, page)
            .await?
            .ok_or_else(|| WebError::NotFound(said!("error-no-case", key = key)))?;
    let now = Utc::now();
    let policies = state.sla.policies();
    let sla = state
        .store
        .sla_timelines(Some(&[overview.detail.case.id]))
        .await?
        .first()
        .and_then(|t| evaluate(t, policies, Some(now)))
        .map(|s| s.view(policies, now));
    let mut value = serde_json::to_value(&overview)?;
    value["sla"] = serde_json::to_value(&sla)?;
    Ok(value)
}

/// Links to the other pages of a long thread (nothing for one page).
fn thread_pager(lang: UiLang, key: &str, thread: &serde_json::Value) -> Markup {
    let page = thread["page"].as_u64().unwrap_or(1);
    let pages = thread["pages"].as_u64().unwrap_or(1);
    let per_page = thread["per_page"].as_u64().unwrap_or(50);
    let total = thread["messages_total"].as_u64().unwrap_or(0);
    let href = |p: u64| format!("/cases/{key}?page={p}&per_page={per_page}");
    html! {
        @if pages > 1 {
            p.pager.muted {
                (tr!(lang, "thread-range", first = (page - 1) * per_page + 1, last = (page * per_page).min(total), total = total))
                " · " (tr!(lang, "cases-page-of", page = page, pages = pages)) " · "
                @if page > 1 { a href=(href(1)) { (tr!(lang, "thread-first")) } " · " a href=(href(page - 1)) { (tr!(lang, "thread-older")) } }
                @if page > 1 && page < pages { " · " }
                @if page < pages { a href=(href(page + 1)) { (tr!(lang, "thread-newer")) } " · " a href=(href(pages)) { (tr!(lang, "thread-newest")) } }
            }
        }
    }
}

fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or("")
}

pub async fn case_page(
    State(state): State<AppState>,
    desk: Desk,
    Path(key): Path<String>,
    Query(params): Query<ThreadParams>,
) -> Result<Markup, WebError> {
    let v = case_view(&state, &key, params.request()).await?;
    let users = state.store.users().await?;
    let tz = state.time_zone();
    let lang = desk.lang();
    let key = text(&v["key"]).to_string();
    let when = |s: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(text(s))
            .map(|t| lang.datetime(t.with_timezone(&Utc), tz))
            .unwrap_or_default()
    };
    let target = |name: &str| -> Option<casebot_core::sla::TargetView> {
        serde_json::from_value(v["sla"][name].clone()).ok()
    };
    let analysis = &v["analysis"];
    let case_url = format!("/cases/{}", layout::url_encode(&key));
    Ok(page(
        lang,
        &key,
        Some(&desk),
        html! {
            h1 { (key) " " span.muted { (text(&v["title"])) } }
            p.muted {
                (tr!(lang, "case-facts",
                    priority = text(&v["priority"]),
                    customer = text(&v["customer"]),
                    status = lang.word("status", text(&v["status"])),
                    mails = v["message_count"].as_u64().unwrap_or(0)))
                @if !text(&v["internal_ref"]).is_empty() { " · " (text(&v["internal_ref"])) }
            }
            div.grid2 {
                div {
                    h2 { (tr!(lang, "case-thread")) }
                    (thread_pager(lang, &key, &v["thread"]))
                    @for m in v["messages"].as_array().into_iter().flatten() {
                        (thread_mail(lang, &key, m, &when, desk.csrf()))
                    }
                    (thread_pager(lang, &key, &v["thread"]))
                }
                div {
                    h2 { (tr!(lang, "case-sla")) }
                    @match &v["sla"] {
                        serde_json::Value::Null => { p.muted { (tr!(lang, "case-sla-nothing")) } }
                        s => {
                            p {
                                (tr!(lang, "case-owner")) " " b { (s["owner"].as_str().map(str::to_string).unwrap_or_else(|| tr!(lang, "case-nobody"))) }
                                " · " (lang.word("status", s["state"].as_str().unwrap_or("")))
                            }
                            table {
                                @for kind in ["first_response", "update", "handover", "resolution"] {
                                    tr { th { (lang.word("target", kind)) } (target_cell(lang, target(kind).as_ref(), tz)) }
                                }
                            }
                        }
                    }
                    form.filters method="post" action={(case_url) "/assign"} {
                        input type="hidden" name="csrf" value=(desk.csrf());
                        label { (tr!(lang, "case-assign-to"))
                            select name="owner" {
                                @for u in &users { option value=(u.name) { (u.name) } }
                            }
                        }
                        button type="submit" { (tr!(lang, "case-assign")) }
                    }
                    @let closed = matches!(text(&v["status"]), "resolved" | "archived");
                    form.filters method="post" action={(case_url) "/status"} {
                        input type="hidden" name="csrf" value=(desk.csrf());
                        label { (tr!(lang, "regroup-reason")) input type="text" name="reason" required size="24"; }
                        @if closed {
                            button type="submit" name="action" value="reopen" { (tr!(lang, "case-reopen")) }
                        } @else {
                            button type="submit" name="action" value="close" { (tr!(lang, "case-close")) }
                        }
                    }
                    form.filters method="post" action={(case_url) "/priority"} {
                        input type="hidden" name="csrf" value=(desk.csrf());
                        label { (tr!(lang, "cases-priority"))
                            select name="priority" {
                                option value="" { (tr!(lang, "case-priority-subject")) }
                                @for p in ["P1", "P2", "P3", "P4"] {
                                    option value=(p) selected[text(&v["priority"]) == p] { (p) }
                                }
                            }
                        }
                        label { (tr!(lang, "regroup-reason")) input type="text" name="reason" required size="24"; }
                        button type="submit" { (tr!(lang, "case-set-priority")) }
                    }
                    form.filters method="post" action={(case_url) "/merge"} {
                        input type="hidden" name="csrf" value=(desk.csrf());
                        label { (tr!(lang, "regroup-merge-into")) input type="text" name="into" required size="20" placeholder="CAS-…"; }
                        label { (tr!(lang, "regroup-reason")) input type="text" name="reason" required size="24"; }
                        button type="submit" { (tr!(lang, "regroup-merge")) }
                    }
                    h2 id="notes" { (tr!(lang, "notes-title")) }
                    p.muted { (tr!(lang, "notes-hint")) }
                    @for n in v["notes"].as_array().into_iter().flatten() {
                        div.note {
                            div.meta { span.badge.paused { (tr!(lang, "notes-internal")) } " " b { (text(&n["author"])) } " · " (when(&n["created_at"])) }
                            pre { (text(&n["body"])) }
                        }
                    }
                    form.note method="post" action={(case_url) "/notes"} {
                        input type="hidden" name="csrf" value=(desk.csrf());
                        textarea name="body" rows="3" maxlength="16384" required placeholder=(tr!(lang, "notes-placeholder")) {}
                        button type="submit" { (tr!(lang, "notes-add")) }
                    }
                    h2 { (tr!(lang, "case-drafts")) }
                    @let drafts = v["drafts"].as_array().cloned().unwrap_or_default();
                    @if drafts.is_empty() { p.muted { (tr!(lang, "case-no-draft")) } }
                    @for d in &drafts {
                        p {
                            a href={"/drafts/" (d["id"])} { (tr!(lang, "draft-title", id = d["id"].as_i64().unwrap_or(0))) }
                            " · " (lang.word("kind", text(&d["kind"]))) " · " b { (lang.word("draft-status", text(&d["status"]))) }
                        }
                    }
                    form.filters method="post" action={(case_url) "/drafts"} {
                        input type="hidden" name="csrf" value=(desk.csrf());
                        label { (tr!(lang, "case-write-reply"))
                            select name="kind" {
                                option value="free" { (tr!(lang, "case-free-text")) }
                                @for kind in casebot_core::domain::DraftKind::ALL.iter().filter(|k| **k != casebot_core::domain::DraftKind::Free) {
                                    option value=(kind.as_str()) { (tr!(lang, "case-from-template", kind = lang.word("kind", kind.as_str()))) }
                                }
                            }
                        }
                        button type="submit" { (tr!(lang, "case-start")) }
                    }
                    p.muted { (tr!(lang, "case-replaces-pending")) }
                    h2 { (tr!(lang, "case-analysis")) }
                    (analysis_section(lang, analysis))
                    h2 { (tr!(lang, "case-similar")) }
                    @let similar = v["similar"].as_array().cloned().unwrap_or_default();
                    @if similar.is_empty() { p.muted { (tr!(lang, "case-none-yet")) } }
                    @for s in &similar {
                        div.card {
                            a href={"/cases/" (layout::url_encode(text(&s["case"])))} { (text(&s["case"])) }
                            " · " (text(&s["class_name"]))
                            p { (text(&s["resolution"])) }
                        }
                    }
                    h2 id="events" { (tr!(lang, "case-events")) }
                    @let shown = v["events"].as_array().map_or(0, |e| e.len());
                    @let total = v["thread"]["events_total"].as_u64().unwrap_or(0);
                    @if total > shown as u64 {
                        p.muted { (tr!(lang, "case-events-newest", shown = shown, total = total)) }
                    }
                    details { summary { (tr!(lang, "case-audit-trail")) }
                        table { @for e in v["events"].as_array().into_iter().flatten() {
                            tr {
                                td { (when(&e["at"])) } td { (lang.word("event", text(&e["kind"]))) } td { small { (e["detail"].to_string()) } }
                                td {
                                    @if text(&e["kind"]) == "messages_moved" && e["detail"]["operation"] != "undo" {
                                        @if let Some(id) = e["detail"]["event"].as_i64() {
                                            form.inline method="post" action={"/events/" (id) "/undo"} {
                                                input type="hidden" name="csrf" value=(desk.csrf());
                                                input type="text" name="reason" required size="14" placeholder=(tr!(lang, "regroup-reason"));
                                                button type="submit" { (tr!(lang, "regroup-undo")) }
                                            }
                                        }
                                    }
                                }
                            }
                        } }
                    }
                }
            }
        },
    ))
}

/// One mail of the thread: headers, new text, folded quote and signature,
/// attachments and links.
fn thread_mail(
    lang: UiLang,
    key: &str,
    m: &serde_json::Value,
    when: &dyn Fn(&serde_json::Value) -> String,
    csrf: &str,
) -> Markup {
    let mail_url = format!("/cases/{}/mails/{}", layout::url_encode(key), m["id"]);
    html! {
        @let direction = text(&m["direction"]);
        div class={"mail " (direction)} {
            div.meta {
                span { b { (lang.word("direction", direction)) } }
                span { (text(&m["from"]["name"])) " <" (text(&m["from"]["address"])) ">" }
                span { (when(&m["date"])) @if let Some(o) = m["date_offset"].as_str() { " " (tr!(lang, "mail-sent-at", offset = o)) } }
                @if let Some(stage) = m["stage"].as_str() { span.badge.paused { (lang.word("stage", stage)) } }
                @if let Some(signal) = m["signal"].as_str() { span.badge.on_track { (lang.word("signal", signal)) } }
                span { a href={(mail_url) "/raw"} { (tr!(lang, "mail-raw")) } }
            }
            (regroup_forms(lang, key, m["id"].as_i64().unwrap_or(0), csrf))
            div.subject { (text(&m["subject"])) }
            @if let Some(bounce) = m["bounce"].as_object() {
                @let returned = bounce.get("returned_subject").and_then(|s| s.as_str()).map(str::to_string).unwrap_or_else(|| tr!(lang, "bounce-earlier-mail"));
                @let to = bounce.get("recipients").and_then(|r| r.as_array()).map(|r| r.iter().filter_map(|a| a.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default();
                @let reason = bounce.get("reason").and_then(|s| s.as_str()).map(str::to_string).unwrap_or_else(|| tr!(lang, "bounce-no-reason"));
                p.bounce { (tr!(lang, "bounce-text", subject = returned, to = to, reason = reason)) }
            }
            pre { (text(&m["new_text"])) }
            @if !text(&m["quoted_text"]).trim().is_empty() {
                details { summary { (tr!(lang, "mail-quoted")) } pre { (text(&m["quoted_text"])) } }
            }
            @if !text(&m["signature"]).trim().is_empty() {
                details { summary { (tr!(lang, "mail-signature")) } pre { (text(&m["signature"])) } }
            }
            @let attachments = m["attachments"].as_array().cloned().unwrap_or_default();
            @if !attachments.is_empty() {
                p.muted { (tr!(lang, "mail-attachments")) " "
                    @for (i, a) in attachments.iter().enumerate() {
                        @if i > 0 { ", " }
                        @let url = format!("{mail_url}/attachments/{}", a["part"]);
                        a href=(url) { (a["filename"].as_str().map(str::to_string).unwrap_or_else(|| tr!(lang, "mail-unnamed"))) }
                        " (" (text(&a["content_type"])) ", " (tr!(lang, "bytes", count = a["size"].as_u64().unwrap_or(0)))
                        @if looks_like_text(a) { ", " a href={(url) "/text"} { (tr!(lang, "mail-view")) } }
                        ")"
                    }
                }
            }
            @let links = m["links"].as_array().cloned().unwrap_or_default();
            @if !links.is_empty() {
                p.muted { (tr!(lang, "mail-links"))
                    @for l in &links { br; code { (text(&l["url"])) } " (" (text(&l["kind"])) ")" }
                }
            }
        }
    }
}

/// Moving one mail (to a case or a new one) and splitting the case at it,
/// folded away until asked for.
fn regroup_forms(lang: UiLang, key: &str, mail: i64, csrf: &str) -> Markup {
    let action = format!("/cases/{}/move", layout::url_encode(key));
    html! {
        details.regroup {
            summary { (tr!(lang, "regroup-title")) }
            form.filters method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="mail" value=(mail);
                label { (tr!(lang, "regroup-move-to")) input type="text" name="to" size="20" placeholder="CAS-…"; }
                label { span { input type="checkbox" name="new" value="1"; " " (tr!(lang, "regroup-new-case")) } }
                label { (tr!(lang, "regroup-reason")) input type="text" name="reason" required size="30"; }
                button type="submit" name="action" value="move" { (tr!(lang, "regroup-move")) }
                button type="submit" name="action" value="split" { (tr!(lang, "regroup-split")) }
            }
        }
    }
}

/// Whether an attachment is worth offering as text (the view itself checks
/// the bytes).
fn looks_like_text(a: &serde_json::Value) -> bool {
    let name = text(&a["filename"]).to_ascii_lowercase();
    text(&a["content_type"]).starts_with("text/")
        || [".log", ".txt", ".csv", ".xml", ".ini", ".inf"]
            .iter()
            .any(|e| name.ends_with(e))
}

/// The newest conclusion: outcome, class, decisive lines, codes, next steps.
fn analysis_section(lang: UiLang, analysis: &serde_json::Value) -> Markup {
    html! {
        @if analysis.is_null() { p.muted { (tr!(lang, "analysis-none")) } } @else {
            p { (tr!(lang, "analysis-outcome")) " " b { (lang.word("outcome", text(&analysis["outcome"]))) }
                @if let Some(rc) = analysis.get("root_cause").filter(|r| !r.is_null()) {
                    " · " (text(&rc["class_name"])) " (" code { (text(&rc["class"])) } ")"
                }
            }
            @if let Some(rc) = analysis.get("root_cause").filter(|r| !r.is_null()) {
                p { (text(&rc["summary"])) }
                h3 { (tr!(lang, "analysis-decisive")) }
                @for e in rc["evidence"].as_array().into_iter().flatten() {
                    div.muted { small { (text(&e["file"])) ":" (e["line"]) } }
                    pre.evidence { (text(&e["text"])) }
                }
            }
            p { (tr!(lang, "analysis-codes")) " " @for c in analysis["error_codes"].as_array().into_iter().flatten() { code { (text(c)) } " " } }
            p { (tr!(lang, "analysis-kbs")) " " @for k in analysis["kbs"].as_array().into_iter().flatten() { (text(k)) " " } }
            @if let Some(p) = analysis["failing_package"].as_str() { p { (tr!(lang, "analysis-package")) " " code { (p) } } }
            @if let Some(c) = analysis["failing_component"].as_str() { p { (tr!(lang, "analysis-component")) " " code { (c) } } }
            ol {
                @for s in analysis["next_steps"].as_array().into_iter().flatten() {
                    li { b { (text(&s["title"])) } br; (text(&s["text"])) }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AssignForm {
    csrf: String,
    owner: String,
}

pub async fn assign(
    State(state): State<AppState>,
    desk: Desk,
    Path(key): Path<String>,
    Form(form): Form<AssignForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let owner = form.owner.trim();
    if owner.is_empty() || owner.len() > 200 {
        return Err(WebError::Rejected(said!("error-name-owner")));
    }
    // Cases go to desk accounts only: a made-up name would own it unseen.
    let Some(account) = state.store.user(owner).await?.filter(|u| !u.disabled) else {
        return Err(WebError::Rejected(said!("error-no-account", name = owner)));
    };
    let case = state
        .store
        .find_case(&key)
        .await?
        .ok_or_else(|| WebError::NotFound(said!("error-no-case", key = &key)))?;
    state
        .store
        .assign_owner(case.id, &account.name, &desk.user().name)
        .await?;
    tracing::info!(case = %case.key, owner = ?account.name, by = ?desk.user().name, "owner assigned");
    Ok(Redirect::to(&format!("/cases/{}", layout::url_encode(&case.key))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct NewDraftForm {
    csrf: String,
    kind: String,
}

/// `POST /cases/{key}/drafts`: an engineer starts a reply of their own
/// (free text) or from any template; it opens in the editor.
pub async fn new_draft(
    State(state): State<AppState>,
    desk: Desk,
    Path(key): Path<String>,
    Form(form): Form<NewDraftForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let kind = casebot_core::domain::DraftKind::parse(&form.kind)
        .ok_or_else(|| WebError::Rejected(said!("error-no-kind", kind = &form.kind)))?;
    let d = state
        .drafter
        .draft_on_request(&key, kind, &desk.user().name)
        .await?
        .ok_or_else(|| WebError::NotFound(said!("error-no-case", key = &key)))?;
    tracing::info!(case = %d.case_key, draft = d.id, kind = kind.as_str(), by = %desk.user().name, "reply started on the desk");
    Ok(Redirect::to(&format!("/drafts/{}", d.id)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct NoteForm {
    csrf: String,
    body: String,
}

/// `POST /cases/{key}/notes`: an internal note, by the logged-in engineer.
pub async fn add_note(
    State(state): State<AppState>,
    desk: Desk,
    Path(key): Path<String>,
    Form(form): Form<NoteForm>,
) -> Result<Response, WebError> {
    desk.check_csrf(&form.csrf)?;
    let case = state
        .store
        .find_case(&key)
        .await?
        .ok_or_else(|| WebError::NotFound(said!("error-no-case", key = &key)))?;
    let body = checked_note(&form.body)?;
    let note = state
        .store
        .add_note(case.id, &desk.user().name, body)
        .await?;
    tracing::info!(case = %case.key, note = note.id, by = %desk.user().name, "note added");
    Ok(Redirect::to(&format!("/cases/{}#notes", layout::url_encode(&case.key))).into_response())
}

/// A note's text, trimmed; empty or too long is refused in the person's
/// words.
fn checked_note(body: &str) -> Result<&str, WebError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(WebError::Rejected(said!("error-note-empty")));
    }
    if body.len() > casebot_store::notes::MAX_NOTE_BYTES {
        return Err(WebError::Rejected(said!(
            "error-note-too-long",
            bytes = body.len(),
            max = casebot_store::notes::MAX_NOTE_BYTES
        )));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_the_desk_whatever_the_spelling() {
        for (next, expected) in [
            ("/cases/CAS-1?q=a", "/cases/CAS-1?q=a"),
            ("/board", "/board"),
            ("/\t/evil.example/x", "/cases"),
            ("//evil.example/x", "/cases"),
            ("/\\evil.example", "/cases"),
            ("/\n/evil.example", "/cases"),
            ("https://evil.example/", "/cases"),
            ("cases", "/cases"),
        ] {
            assert_eq!(safe_next(Some(next)), expected, "{next:?}");
        }
        // A new line inside a path is encoded, never written into a header.
        assert!(!safe_next(Some("/cases\nSet-Cookie: x")).contains('\n'));
    }
}
