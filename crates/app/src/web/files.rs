//! What a case page offers to download: each mail's raw `.eml` and each
//! attachment, and a text attachment shown as escaped text with the lines
//! the analysis found decisive marked.
//!
//! This is the customer's content, so it is served to logged-in users only
//! and never as part of the desk: a download is `application/octet-stream`
//! (never the type the mail declared) with `Content-Disposition:
//! attachment`, `nosniff` and a sandbox CSP, so a browser saves it and runs
//! nothing in it. The text view escapes every character (maud) and reads at
//! most [`MAX_VIEW_BYTES`].

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::auth::Desk;
use super::i18n::tr;
use super::{AppState, WebError, attachment_disposition, layout, said};
use casebot_analysis::logs::{Content, classify};
use casebot_store::notes::RawMail;

/// The most of one attachment the text view shows.
pub const MAX_VIEW_BYTES: usize = 4 << 20;

/// A case's mail, by its row, checked to belong to the case.
async fn raw_of(
    state: &AppState,
    key: &str,
    message_row: i64,
) -> Result<(String, Vec<u8>), WebError> {
    let case = state
        .store
        .find_case(key)
        .await?
        .ok_or_else(|| WebError::NotFound(said!("error-no-case", key = key)))?;
    match state.store.message_raw(case.id, message_row).await? {
        None => Err(WebError::NotFound(said!(
            "error-no-mail",
            key = key,
            mail = message_row
        ))),
        Some(RawMail::Removed(at)) => Err(WebError::Gone(said!(
            "error-raw-removed",
            at = casebot_store::ts_to_rfc3339(at)
        ))),
        Some(RawMail::Kept(bytes)) => Ok((case.key, bytes)),
    }
}

/// The answer for a download: the bytes, saved by the browser, never shown.
fn download(name: &str, content_type: &'static str, bytes: Vec<u8>) -> Response {
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&attachment_disposition(name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    response
}

/// `GET /cases/{key}/mails/{id}/raw`: the mail exactly as it arrived.
pub async fn raw_mail(
    State(state): State<AppState>,
    _desk: Desk,
    Path((key, message_row)): Path<(String, i64)>,
) -> Result<Response, WebError> {
    let (key, bytes) = raw_of(&state, &key, message_row).await?;
    Ok(download(
        &format!("{key}-{message_row}.eml"),
        "message/rfc822",
        bytes,
    ))
}

/// One attachment's decoded bytes and its name.
async fn attachment_of(
    state: &AppState,
    key: &str,
    message_row: i64,
    part: u32,
) -> Result<(String, Vec<u8>), WebError> {
    let (_, raw) = raw_of(state, key, message_row).await?;
    let found = tokio::task::spawn_blocking(move || {
        casebot_core::mail::parse::attachment_bytes(&raw)
            .into_iter()
            .find(|a| a.part == part)
    })
    .await
    .map_err(|e| WebError::Internal(e.into()))?
    .ok_or_else(|| {
        WebError::NotFound(said!(
            "error-no-attachment",
            mail = message_row,
            part = part
        ))
    })?;
    let name = found
        .filename
        .unwrap_or_else(|| format!("attachment-{message_row}-{part}"));
    Ok((name, found.bytes))
}

/// `GET /cases/{key}/mails/{id}/attachments/{part}`: the attachment.
pub async fn attachment(
    State(state): State<AppState>,
    _desk: Desk,
    Path((key, message_row, part)): Path<(String, i64, u32)>,
) -> Result<Response, WebError> {
    let (name, bytes) = attachment_of(&state, &key, message_row, part).await?;
    Ok(download(&name, "application/octet-stream", bytes))
}

/// `GET /cases/{key}/mails/{id}/attachments/{part}/text`: a text log as
/// escaped, numbered lines; the analysis's decisive lines of this file are
/// marked and can be linked to (`#L123`).
pub async fn attachment_text(
    State(state): State<AppState>,
    desk: Desk,
    Path((key, message_row, part)): Path<(String, i64, u32)>,
) -> Result<Response, WebError> {
    let (name, bytes) = attachment_of(&state, &key, message_row, part).await?;
    let head = &bytes[..bytes.len().min(64 * 1024)];
    let Content::Text { encoding, bom } = classify(&name, head) else {
        return Err(WebError::Rejected(said!("error-not-text", name = &name)));
    };
    let shown = &bytes[bom.min(bytes.len())..bytes.len().min(MAX_VIEW_BYTES)];
    let text = encoding.decode(shown);
    let cut = bytes.len() > MAX_VIEW_BYTES;
    let marked = decisive_lines(&state, &key, message_row, &name).await?;
    let download_url = format!(
        "/cases/{}/mails/{message_row}/attachments/{part}",
        layout::url_encode(&key)
    );
    let lang = desk.lang();
    let body = html! {
        h1 { (name) }
        p.muted {
            a href={"/cases/" (layout::url_encode(&key))} { (key) } " · "
            a href=(download_url) { (tr!(lang, "file-download")) } " · "
            (encoding.as_str()) " · " (tr!(lang, "bytes", count = bytes.len()))
            @if !marked.is_empty() { " · " (tr!(lang, "file-decisive-marked", count = marked.len())) }
        }
        @if cut { p.muted { (tr!(lang, "file-cut", mib = MAX_VIEW_BYTES >> 20)) } }
        pre.log {
            @for (n, line) in text.lines().enumerate() {
                @let number = n + 1;
                @if marked.contains(&number) {
                    mark.decisive id={"L" (number)} { span.lineno { (number) } (line) } "\n"
                } @else {
                    span id={"L" (number)} { span.lineno { (number) } (line) } "\n"
                }
            }
        }
    };
    Ok(layout::page(lang, &name, Some(&desk), body).into_response())
}

/// The line numbers the mail's analysis quotes from the file `name`.
async fn decisive_lines(
    state: &AppState,
    key: &str,
    message_row: i64,
    name: &str,
) -> Result<BTreeSet<usize>, WebError> {
    let Some(case) = state.store.find_case(key).await? else {
        return Ok(BTreeSet::new());
    };
    let analyses = state
        .store
        .analyses_of_messages(case.id, &[message_row])
        .await?;
    let mut lines = BTreeSet::new();
    for report in analyses.iter().filter_map(|a| a.report.as_ref()) {
        let quoted = report["findings"].as_array().into_iter().flatten().chain(
            report["root_cause"]["evidence"]
                .as_array()
                .into_iter()
                .flatten(),
        );
        for item in quoted {
            if item["file"].as_str() == Some(name)
                && let Some(line) = item["line"].as_u64()
            {
                lines.insert(line as usize);
            }
        }
    }
    Ok(lines)
}
