//! `/metrics` in the Prometheus text format, and `/healthz`.
//!
//! `/metrics` needs a login like everything else, or, for a scraper, the
//! bearer token held in the environment variable `web.metrics_token_env`
//! names. `/healthz` says only whether the store answers: it shows no data.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::auth::{Desk, same_token};
use super::{AppState, WebError};
use casebot_core::sla::Urgency;
use casebot_store::metrics::ANALYSIS_BUCKETS_MS;

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

/// A label value in the exposition format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub async fn metrics(
    State(state): State<AppState>,
    desk: Option<Desk>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if desk.is_none() && !scraper_allowed(&state, &headers) {
        return Err(WebError::Unauthorized);
    }
    let counts = state.store.counts_for_metrics().await?;
    state.sla.refresh().await?;
    let by_urgency = urgency_counts(&state);
    let folders = state.store.imap_folders().await?;

    let mut out = String::new();
    section(
        &mut out,
        "casebot_cases",
        "gauge",
        "Cases by status.",
        lines("casebot_cases", "status", &counts.cases_by_status),
    );
    section(
        &mut out,
        "casebot_drafts",
        "gauge",
        "Drafts by status (pending ones wait for an engineer).",
        lines("casebot_drafts", "status", &counts.drafts_by_status),
    );
    section(
        &mut out,
        "casebot_messages_ingested",
        "counter",
        "Mails filed, by direction.",
        lines(
            "casebot_messages_ingested",
            "direction",
            &counts.messages_by_direction,
        ),
    );
    section(
        &mut out,
        "casebot_raw_messages",
        "counter",
        "Distinct raw mails kept as evidence.",
        format!("casebot_raw_messages {}\n", counts.raw_messages),
    );
    section(
        &mut out,
        "casebot_quarantined",
        "gauge",
        "Mails in quarantine, not yet replayed.",
        format!("casebot_quarantined {}\n", counts.quarantined),
    );
    section(
        &mut out,
        "casebot_sla_open_cases",
        "gauge",
        "Open cases by priority and SLA urgency (breached, at_risk, on_track, paused).",
        sla_lines(&by_urgency),
    );
    let breaches: usize = by_urgency
        .iter()
        .filter(|((_, u), _)| *u == Urgency::Breached.as_str())
        .map(|(_, n)| n)
        .sum();
    section(
        &mut out,
        "casebot_sla_breaches",
        "gauge",
        "Open cases with a breached SLA target.",
        format!("casebot_sla_breaches {breaches}\n"),
    );
    section(
        &mut out,
        "casebot_imap_folder_state",
        "gauge",
        "Each watched IMAP folder's connection state (1 for the current one).",
        imap_lines(&folders),
    );
    section(
        &mut out,
        "casebot_analysis_duration_seconds",
        "histogram",
        "Time spent analysing each mail's logs.",
        analysis_histogram(&counts),
    );
    section(
        &mut out,
        "casebot_analyses",
        "gauge",
        "Analyses by status.",
        lines("casebot_analyses", "status", &counts.analyses_by_status),
    );
    section(
        &mut out,
        "casebot_uptime_seconds",
        "gauge",
        "Seconds since this web desk started.",
        format!(
            "casebot_uptime_seconds {}\n",
            state.started.elapsed().as_secs()
        ),
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

/// Open cases by priority and urgency, read now from the SLA snapshots.
fn urgency_counts(state: &AppState) -> std::collections::BTreeMap<(String, &'static str), usize> {
    let now = Utc::now();
    let policies = state.sla.policies();
    let mut by_urgency = std::collections::BTreeMap::new();
    for s in state.sla.open().values() {
        let v = s.view(policies, now);
        *by_urgency
            .entry((v.priority, v.urgency.as_str()))
            .or_default() += 1;
    }
    by_urgency
}

/// One metric: its help and type lines, then its samples.
fn section(out: &mut String, name: &str, kind: &str, help: &str, samples: String) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    out.push_str(&samples);
}

/// One sample per row, labelled `key`.
fn lines(name: &str, key: &str, rows: &[(String, i64)]) -> String {
    rows.iter()
        .map(|(k, n)| format!("{name}{{{key}=\"{}\"}} {n}\n", label(k)))
        .collect()
}

/// Open cases by priority and urgency, one sample each.
fn sla_lines(by_urgency: &std::collections::BTreeMap<(String, &'static str), usize>) -> String {
    let mut lines = String::new();
    for ((priority, urgency), n) in by_urgency {
        let _ = writeln!(
            lines,
            "casebot_sla_open_cases{{priority=\"{}\",urgency=\"{urgency}\"}} {n}",
            label(priority)
        );
    }
    lines
}

/// Each folder's state as a one-hot gauge over every state it can be in.
fn imap_lines(folders: &[casebot_store::imap::FolderView]) -> String {
    let states = [
        "connecting",
        "catching_up",
        "idle",
        "polling",
        "reconnecting",
        "stopped",
    ];
    let mut lines = String::new();
    for f in folders {
        for s in states {
            let _ = writeln!(
                lines,
                "casebot_imap_folder_state{{mailbox=\"{}\",folder=\"{}\",state=\"{s}\"}} {}",
                label(&f.mailbox),
                label(&f.folder),
                u8::from(f.state == s)
            );
        }
    }
    lines
}

/// The analysis durations as a cumulative histogram in seconds.
fn analysis_histogram(counts: &casebot_store::metrics::StoreCounts) -> String {
    let mut hist = String::new();
    for (bound, n) in ANALYSIS_BUCKETS_MS.iter().zip(&counts.analysis_buckets) {
        let _ = writeln!(
            hist,
            "casebot_analysis_duration_seconds_bucket{{le=\"{}\"}} {n}",
            *bound as f64 / 1000.0
        );
    }
    let _ = writeln!(
        hist,
        "casebot_analysis_duration_seconds_bucket{{le=\"+Inf\"}} {}\ncasebot_analysis_duration_seconds_sum {}\ncasebot_analysis_duration_seconds_count {}",
        counts.analysis_count,
        counts.analysis_sum_ms as f64 / 1000.0,
        counts.analysis_count
    );
    hist
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
