//! Logging in and out, the case list and the case page.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{self, ClientAddr, Desk, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use super::layout::{self, local, local_ts, page, target_cell, urgency_badge};
use super::{AppState, WebError};
use casebot_core::sla::{CaseSla, CaseSlaView, evaluate};
use casebot_store::cases::{CaseListRow, CaseQuery, PageRequest};

pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
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

fn login_form(csrf: &str, next: &str, error: Option<&str>) -> Markup {
    page(
        "Log in",
        None,
        html! {
            div.login.card {
                h1 { "Log in to the desk" }
                @if let Some(e) = error { p.error { (e) } }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="next" value=(next);
                    label { "Name" input type="text" name="name" autocomplete="username" required autofocus; }
                    label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                    button.primary type="submit" { "Log in" }
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
    let csrf = auth::random_token();
    (
        [(
            header::SET_COOKIE,
            auth::cookie(
                LOGIN_CSRF_COOKIE,
                &csrf,
                3600,
                state.config.web.secure_cookies,
            ),
        )],
        login_form(&csrf, &next, None),
    )
        .into_response()
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
        return Err(WebError::Forbidden(
            "the login form expired or came from elsewhere: open the login page again".into(),
        ));
    }
    let refuse = |message: &str| {
        (
            StatusCode::UNAUTHORIZED,
            login_form(cookie_csrf, &next, Some(message)),
        )
            .into_response()
    };
    let busy = |retry_after: u64, message: &str| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after.to_string())],
            login_form(cookie_csrf, &next, Some(message)),
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
                auth::Refusal::NameLocked => {
                    refuse("too many failed logins for this name: wait five minutes")
                }
                auth::Refusal::ClientLimited => busy(
                    300,
                    "too many failed logins from this address: wait five minutes",
                ),
                auth::Refusal::Busy => busy(1, "the desk is busy: try again in a second"),
            });
        }
    };
    let checked = auth::authenticate(&state, &name, &form.password).await;
    drop(permit);
    let Some(user) = checked? else {
        tracing::warn!(user = ?name, client = ?client, "login failed");
        return Ok(refuse("wrong name or password"));
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
    Ok(response)
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
    Ok(page(
        "Cases",
        Some(&desk),
        html! {
            h1 { "Cases" }
            form.filters method="get" action="/cases" {
                label { "Search" input type="search" name="q" value=[params.q.as_deref()] placeholder="CAS-…, KB…, 0x800f…"; }
                label { "Priority"
                    select name="priority" {
                        option value="" { "any" }
                        @for p in ["P1", "P2", "P3", "P4"] {
                            option value=(p) selected[selected(&params.priority, p)] { (p) }
                        }
                    }
                }
                label { "Customer"
                    select name="customer" {
                        option value="" { "any" }
                        @for c in &customers {
                            option value=(c) selected[selected(&params.customer, c)] { (c) }
                        }
                    }
                }
                label { "Status"
                    select name="status" {
                        option value="" { "any" }
                        @for s in ["waiting_on_us", "waiting_on_customer", "resolved", "archived", "new"] {
                            option value=(s) selected[selected(&params.status, s)] { (s) }
                        }
                    }
                }
                label { span { input type="checkbox" name="mine" value="1" checked[flag(&params.mine)]; " mine" } }
                label { span { input type="checkbox" name="waiting" value="1" checked[flag(&params.waiting)]; " waiting on us" } }
                button type="submit" { "Filter" }
            }
            p.muted { (total) " cases" @if pages > 1 { " · page " (page_no) " of " (pages) } }
            table id="cases" {
                thead { tr {
                    th { "Case" } th { "Pri" } th { "Customer" } th { "Title" } th { "Status" }
                    th { "Owner" } th { "SLA" } th { "Next due" } th.num { "Mails" } th { "Last mail" } th { "Draft" }
                } }
                tbody {
                    @for row in &rows {
                        @let sla = row_sla(&state, row, now);
                        tr {
                            td { a href={"/cases/" (layout::url_encode(&row.key))} { (row.key) } }
                            td { (row.priority.as_deref().unwrap_or("–")) }
                            td { (row.customer.as_deref().unwrap_or("–")) }
                            td { (row.title.as_deref().unwrap_or("")) }
                            td { (row.status) }
                            td { (row.owner.as_deref().unwrap_or("–")) }
                            td { @if let Some(s) = &sla { (urgency_badge(s.urgency)) } }
                            td { @if let Some(due) = sla.as_ref().and_then(|s| s.next_due) { (local(due, tz)) } }
                            td.num { (row.message_count) }
                            td { (local_ts(row.last_message_at, tz)) }
                            td { @if let Some(id) = row.pending_draft { a href={"/drafts/" (id)} { "draft " (id) } } }
                        }
                    }
                }
            }
            div.pager {
                @if page_no > 1 { a href=(params.link_to_page(page_no - 1)) { "← newer" } }
                @if page_no < pages { a href=(params.link_to_page(page_no + 1)) { "older →" } }
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
            .ok_or_else(|| WebError::NotFound(format!("no case {key}")))?;
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
fn thread_pager(key: &str, thread: &serde_json::Value) -> Markup {
    let page = thread["page"].as_u64().unwrap_or(1);
    let pages = thread["pages"].as_u64().unwrap_or(1);
    let per_page = thread["per_page"].as_u64().unwrap_or(50);
    let href = |p: u64| format!("/cases/{key}?page={p}&per_page={per_page}");
    html! {
        @if pages > 1 {
            p.pager.muted {
                "Mails " ((page - 1) * per_page + 1) "–" ((page * per_page).min(thread["messages_total"].as_u64().unwrap_or(0)))
                " of " (thread["messages_total"]) " · page " (page) " of " (pages) " · "
                @if page > 1 { a href=(href(1)) { "first" } " · " a href=(href(page - 1)) { "older" } }
                @if page > 1 && page < pages { " · " }
                @if page < pages { a href=(href(page + 1)) { "newer" } " · " a href=(href(pages)) { "newest" } }
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
    let key = text(&v["key"]).to_string();
    let when = |s: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(text(s))
            .map(|t| local(t.with_timezone(&Utc), tz))
            .unwrap_or_default()
    };
    let target = |name: &str| -> Option<casebot_core::sla::TargetView> {
        serde_json::from_value(v["sla"][name].clone()).ok()
    };
    let analysis = &v["analysis"];
    Ok(page(
        &key,
        Some(&desk),
        html! {
            h1 { (key) " " span.muted { (text(&v["title"])) } }
            p.muted {
                "Priority " (text(&v["priority"])) " · customer " (text(&v["customer"]))
                " · status " (text(&v["status"])) " · " (v["message_count"]) " mails"
                @if !text(&v["internal_ref"]).is_empty() { " · " (text(&v["internal_ref"])) }
            }
            div.grid2 {
                div {
                    h2 { "Thread" }
                    (thread_pager(&key, &v["thread"]))
                    @for m in v["messages"].as_array().into_iter().flatten() {
                        (thread_mail(&key, m, &when))
                    }
                    (thread_pager(&key, &v["thread"]))
                }
                div {
                    h2 { "SLA" }
                    @match &v["sla"] {
                        serde_json::Value::Null => { p.muted { "Nothing to measure yet (only machine mail)." } }
                        s => {
                            p { "Owner: " b { (s["owner"].as_str().unwrap_or("nobody")) } " · " (s["state"].as_str().unwrap_or("")) }
                            table {
                                tr { th { "First response" } (target_cell(target("first_response").as_ref(), tz)) }
                                tr { th { "Update" } (target_cell(target("update").as_ref(), tz)) }
                                tr { th { "Handover" } (target_cell(target("handover").as_ref(), tz)) }
                                tr { th { "Resolution" } (target_cell(target("resolution").as_ref(), tz)) }
                            }
                        }
                    }
                    form.filters method="post" action={"/cases/" (layout::url_encode(&key)) "/assign"} {
                        input type="hidden" name="csrf" value=(desk.csrf());
                        label { "Assign to"
                            select name="owner" {
                                @for u in &users { option value=(u.name) { (u.name) } }
                            }
                        }
                        button type="submit" { "Assign" }
                    }
                    h2 id="notes" { "Internal notes" }
                    p.muted { "For the desk only: never sent, never in a draft." }
                    @for n in v["notes"].as_array().into_iter().flatten() {
                        div.note {
                            div.meta { span.badge.paused { "internal" } " " b { (text(&n["author"])) } " · " (when(&n["created_at"])) }
                            pre { (text(&n["body"])) }
                        }
                    }
                    form.note method="post" action={"/cases/" (layout::url_encode(&key)) "/notes"} {
                        input type="hidden" name="csrf" value=(desk.csrf());
                        textarea name="body" rows="3" maxlength="16384" required placeholder="A note for the desk" {}
                        button type="submit" { "Add note" }
                    }
                    h2 { "Drafts" }
                    @let drafts = v["drafts"].as_array().cloned().unwrap_or_default();
                    @if drafts.is_empty() { p.muted { "No draft." } }
                    @for d in &drafts {
                        p { a href={"/drafts/" (d["id"])} { "Draft " (d["id"]) } " · " (text(&d["kind"])) " · " b { (text(&d["status"])) } }
                    }
                    form.filters method="post" action={"/cases/" (layout::url_encode(&key)) "/drafts"} {
                        input type="hidden" name="csrf" value=(desk.csrf());
                        label { "Write a reply"
                            select name="kind" {
                                option value="free" { "free text" }
                                @for kind in casebot_core::domain::DraftKind::ALL.iter().filter(|k| **k != casebot_core::domain::DraftKind::Free) {
                                    option value=(kind.as_str()) { "from the " (kind.as_str()) " template" }
                                }
                            }
                        }
                        button type="submit" { "Start" }
                    }
                    p.muted { "It replaces the case's pending draft, which stays in the audit trail." }
                    h2 { "Log analysis" }
                    (analysis_section(analysis))
                    h2 { "Similar resolved cases" }
                    @let similar = v["similar"].as_array().cloned().unwrap_or_default();
                    @if similar.is_empty() { p.muted { "None yet." } }
                    @for s in &similar {
                        div.card {
                            a href={"/cases/" (layout::url_encode(text(&s["case"])))} { (text(&s["case"])) }
                            " · " (text(&s["class_name"]))
                            p { (text(&s["resolution"])) }
                        }
                    }
                    h2 { "Events" }
                    @if v["thread"]["events_total"].as_i64().unwrap_or(0) > v["events"].as_array().map_or(0, |e| e.len() as i64) {
                        p.muted { "The newest " (v["events"].as_array().map_or(0, |e| e.len())) " of " (v["thread"]["events_total"]) " events." }
                    }
                    details { summary { "audit trail" }
                        table { @for e in v["events"].as_array().into_iter().flatten() {
                            tr { td { (when(&e["at"])) } td { (text(&e["kind"])) } td { small { (e["detail"].to_string()) } } }
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
    key: &str,
    m: &serde_json::Value,
    when: &dyn Fn(&serde_json::Value) -> String,
) -> Markup {
    let mail_url = format!("/cases/{}/mails/{}", layout::url_encode(key), m["id"]);
    html! {
        @let direction = text(&m["direction"]);
        div class={"mail " (direction)} {
            div.meta {
                span { b { (direction) } }
                span { (text(&m["from"]["name"])) " <" (text(&m["from"]["address"])) ">" }
                span { (when(&m["date"])) @if let Some(o) = m["date_offset"].as_str() { " (sent at " (o) ")" } }
                @if let Some(stage) = m["stage"].as_str() { span.badge.paused { (stage) } }
                @if let Some(signal) = m["signal"].as_str() { span.badge.on_track { (signal) } }
                span { a href={(mail_url) "/raw"} { "raw .eml" } }
            }
            div.subject { (text(&m["subject"])) }
            @if let Some(bounce) = m["bounce"].as_object() {
                p.bounce {
                    "A reply to “" (bounce.get("returned_subject").and_then(|s| s.as_str()).unwrap_or("an earlier mail")) "”"
                    @if let Some(to) = bounce.get("recipients").and_then(|r| r.as_array()).filter(|r| !r.is_empty()) {
                        " (to " (to.iter().filter_map(|a| a.as_str()).collect::<Vec<_>>().join(", ")) ")"
                    }
                    " bounced: " (bounce.get("reason").and_then(|s| s.as_str()).unwrap_or("no reason given"))
                }
            }
            pre { (text(&m["new_text"])) }
            @if !text(&m["quoted_text"]).trim().is_empty() {
                details { summary { "quoted history" } pre { (text(&m["quoted_text"])) } }
            }
            @if !text(&m["signature"]).trim().is_empty() {
                details { summary { "signature" } pre { (text(&m["signature"])) } }
            }
            @let attachments = m["attachments"].as_array().cloned().unwrap_or_default();
            @if !attachments.is_empty() {
                p.muted { "Attachments: "
                    @for (i, a) in attachments.iter().enumerate() {
                        @if i > 0 { ", " }
                        @let url = format!("{mail_url}/attachments/{}", a["part"]);
                        a href=(url) { (a["filename"].as_str().unwrap_or("(unnamed)")) }
                        " (" (text(&a["content_type"])) ", " (a["size"]) " bytes"
                        @if looks_like_text(a) { ", " a href={(url) "/text"} { "view" } }
                        ")"
                    }
                }
            }
            @let links = m["links"].as_array().cloned().unwrap_or_default();
            @if !links.is_empty() {
                p.muted { "Links: "
                    @for l in &links { br; code { (text(&l["url"])) } " (" (text(&l["kind"])) ")" }
                }
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
fn analysis_section(analysis: &serde_json::Value) -> Markup {
    html! {
        @if analysis.is_null() { p.muted { "No log analysed yet." } } @else {
            p { "Outcome: " b { (text(&analysis["outcome"])) }
                @if let Some(rc) = analysis.get("root_cause").filter(|r| !r.is_null()) {
                    " · " (text(&rc["class_name"])) " (" code { (text(&rc["class"])) } ")"
                }
            }
            @if let Some(rc) = analysis.get("root_cause").filter(|r| !r.is_null()) {
                p { (text(&rc["summary"])) }
                h3 { "Decisive lines" }
                @for e in rc["evidence"].as_array().into_iter().flatten() {
                    div.muted { small { (text(&e["file"])) ":" (e["line"]) } }
                    pre.evidence { (text(&e["text"])) }
                }
            }
            p { "Codes: " @for c in analysis["error_codes"].as_array().into_iter().flatten() { code { (text(c)) } " " } }
            p { "KBs: " @for k in analysis["kbs"].as_array().into_iter().flatten() { (text(k)) " " } }
            @if let Some(p) = analysis["failing_package"].as_str() { p { "Package: " code { (p) } } }
            @if let Some(c) = analysis["failing_component"].as_str() { p { "Component: " code { (c) } } }
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
        return Err(WebError::Rejected("name an owner".into()));
    }
    // Cases go to desk accounts only: a made-up name would own it unseen.
    let Some(account) = state.store.user(owner).await?.filter(|u| !u.disabled) else {
        return Err(WebError::Rejected(format!(
            "no desk account named {owner:?}"
        )));
    };
    let case = state
        .store
        .find_case(&key)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("no case {key}")))?;
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
        .ok_or_else(|| WebError::Rejected(format!("no reply kind {:?}", form.kind)))?;
    let d = state
        .drafter
        .draft_on_request(&key, kind, &desk.user().name)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("no case {key}")))?;
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
        .ok_or_else(|| WebError::NotFound(format!("no case {key}")))?;
    let body = casebot_store::notes::checked_note(&form.body).map_err(WebError::Rejected)?;
    let note = state
        .store
        .add_note(case.id, &desk.user().name, body)
        .await?;
    tracing::info!(case = %case.key, note = note.id, by = %desk.user().name, "note added");
    Ok(Redirect::to(&format!("/cases/{}#notes", layout::url_encode(&case.key))).into_response())
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
