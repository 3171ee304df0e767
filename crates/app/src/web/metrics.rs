//! `/metrics` in the Prometheus text format, `/healthz` and `/readyz`.
//!
//! `/metrics` needs a login like everything else, or, for a scraper, the
//! bearer token held in the environment variable `web.metrics_token_env`
//! names. `/healthz` (alive: the process answers and its store does) and
//! `/readyz` (ready: the store answers, every watched IMAP folder is
//! connected, every loop of the daemon passes) need none and show no mail
//! data: only check names and verdicts.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::auth::{Desk, same_token};
use super::{AppState, WebError};
use crate::telemetry::Telemetry;

fn scraper_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Ok(expected) = std::env::var(&state.config.web.metrics_token_env) else {
        return false;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    !expected.is_empty() && given.is_some_and(|g| same_token(g, &expected))
}

pub async fn metrics(
    State(state): State<AppState>,
    desk: Option<Desk>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if desk.is_none() && !scraper_allowed(&state, &headers) {
        return Err(WebError::Unauthorized);
    }
    let telemetry = crate::telemetry::metrics();
    state.sla.refresh().await?;
    set_case_gauges(telemetry, &state);
    let queues = state.store.queue_lengths().await?;
    for (queue, n) in [
        ("analysis", queues.analysis),
        ("analysis_links", queues.analysis_links),
        ("approval", queues.approval),
        ("outbox", queues.outbox),
        ("notifications", queues.notifications),
    ] {
        telemetry
            .queue_length
            .get_or_create(&vec![("queue", queue.to_string())])
            .set(n);
    }
    telemetry.quarantined.set(queues.quarantined);
    set_mailbox_gauges(telemetry, &state.store.imap_folders().await?);
    let body = telemetry
        .encode()
        .map_err(|e| WebError::Internal(anyhow::anyhow!("cannot encode the metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// Open cases by status and priority, and by priority and SLA urgency now,
/// from the SLA stage's in-memory snapshots of the open cases.
fn set_case_gauges(telemetry: &Telemetry, state: &AppState) {
    let now = Utc::now();
    let policies = state.sla.policies();
    let mut by_status: BTreeMap<(&'static str, String), i64> = BTreeMap::new();
    let mut by_urgency: BTreeMap<(String, &'static str), i64> = BTreeMap::new();
    let open = state.sla.open();
    for s in open.values() {
        *by_status
            .entry((s.status.as_str(), s.priority.clone()))
            .or_default() += 1;
        let v = s.view(policies, now);
        *by_urgency
            .entry((v.priority, v.urgency.as_str()))
            .or_default() += 1;
    }
    // Cleared first: a combination no case is in any more reads absent,
    // not its last count.
    telemetry.open_cases.clear();
    for ((status, priority), n) in by_status {
        telemetry
            .open_cases
            .get_or_create(&vec![
                ("status", status.to_string()),
                ("priority", priority),
            ])
            .set(n);
    }
    telemetry.sla_cases.clear();
    for ((priority, urgency), n) in by_urgency {
        telemetry
            .sla_cases
            .get_or_create(&vec![
                ("priority", priority),
                ("urgency", urgency.to_string()),
            ])
            .set(n);
    }
}

/// Each watched folder's state as a one-hot gauge over every state it can
/// be in, so an alert can say `casebot_mailbox_state{state="reconnecting"} == 1`.
fn set_mailbox_gauges(telemetry: &Telemetry, folders: &[casebot_store::imap::FolderView]) {
    telemetry.mailbox_state.clear();
    for f in folders {
        for s in casebot_store::imap::FOLDER_STATES {
            telemetry
                .mailbox_state
                .get_or_create(&vec![
                    ("mailbox", f.mailbox.clone()),
                    ("folder", f.folder.clone()),
                    ("state", s.to_string()),
                ])
                .set(i64::from(f.state == s));
        }
    }
}

pub async fn healthz(State(state): State<AppState>) -> Response {
    match sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(state.store.pool())
        .await
    {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

/// A loop that has not ended a pass well for this long is stuck.
const STUCK_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// One readiness check.
#[derive(Debug, serde::Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = Vec::new();
    let store_ok = sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(state.store.pool())
        .await
        .is_ok();
    checks.push(Check {
        name: "store".into(),
        ok: store_ok,
        detail: if store_ok {
            "answers"
        } else {
            "does not answer"
        }
        .into(),
    });
    // The folder states are kept in the store by whichever instance
    // watches the folder, so this says whether the desk's mail comes in,
    // not whether this instance is the one fetching it.
    let folders = if store_ok {
        state.store.imap_folders().await.unwrap_or_default()
    } else {
        Vec::new()
    };
    for mailbox in state
        .config
        .mailboxes
        .iter()
        .filter(|m| m.kind == crate::config::MailboxKind::Imap)
    {
        for folder in &mailbox.folders {
            let row = folders
                .iter()
                .find(|f| f.mailbox == mailbox.name && &f.folder == folder);
            let state = row.map(|f| f.state.as_str()).unwrap_or("not watched yet");
            checks.push(Check {
                name: format!("mailbox {}/{folder}", mailbox.name),
                ok: matches!(state, "idle" | "polling" | "catching_up"),
                detail: state.to_string(),
            });
        }
    }
    let now = std::time::Instant::now();
    for (name, health) in crate::telemetry::metrics().loops() {
        let (ok, detail) = match (health.failing_since, health.last_ok) {
            (Some(since), _) => (
                false,
                format!("failing for {} s", now.duration_since(since).as_secs()),
            ),
            (None, None) => (false, "no pass yet".to_string()),
            (None, Some(last)) if now.duration_since(last) > STUCK_AFTER => (
                false,
                format!("no pass for {} s", now.duration_since(last).as_secs()),
            ),
            (None, Some(_)) => (true, "passing".to_string()),
        };
        checks.push(Check {
            name: format!("loop {name}"),
            ok,
            detail,
        });
    }
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({"ready": ready, "checks": checks})),
    )
        .into_response()
}
