//! `casebot export`: one case out of the store, for an escalation, a
//! colleague without access, or an archive outside casebot.
//!
//! Two shapes. `mbox` is the case's mails exactly as they arrived, in
//! thread order (mboxrd: a body line starting with `From ` gets a `>`, so
//! any mail reader splits it back into the same mails). `zip` holds that
//! mbox, `case.json` (the case, every message as read, every analysis with
//! its full report, every draft and every event) and the attachments as
//! files. Mails are read from the store one at a time, so an export costs
//! one mail's memory whatever the case's size.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use casebot_store::Store;
use casebot_store::backup::CaseMail;
use casebot_store::cases::PageRequest;

/// The shape of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// The raw mails as one mbox file.
    Mbox,
    /// The mbox, case.json and the attachments, in one zip.
    Zip,
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    pub case: String,
    pub format: ExportFormat,
    pub path: PathBuf,
    pub mails: usize,
    /// Mails whose bytes retention removed: listed in case.json, not in the mbox.
    pub removed_by_retention: usize,
    pub attachments: usize,
    pub bytes: u64,
}

/// Writes case `key` to `path`; `None` when there is no such case.
pub async fn export_case(
    store: &Store,
    key: &str,
    format: ExportFormat,
    path: &Path,
) -> Result<Option<Exported>> {
    let Some(case) = store.find_case(key).await? else {
        return Ok(None);
    };
    let mails = store.case_mails(case.id).await?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| {
            format!(
                "Cannot create {} (an export never overwrites)",
                path.display()
            )
        })?;
    let mut out = Exported {
        case: case.key.clone(),
        format,
        path: path.to_path_buf(),
        mails: mails.len(),
        removed_by_retention: mails.iter().filter(|m| m.purged_at.is_some()).count(),
        attachments: 0,
        bytes: 0,
    };
    match format {
        ExportFormat::Mbox => {
            let mut writer = std::io::BufWriter::new(file);
            for mail in &mails {
                if mail.purged_at.is_none() {
                    let bytes = store.raw_bytes(mail.raw_row).await?;
                    write_mboxrd(&mut writer, mail, &bytes)?;
                }
            }
            writer.flush()?;
        }
        ExportFormat::Zip => {
            let mut zip = zip::ZipWriter::new(file);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(true);
            zip.start_file(format!("{}/case.json", case.key), options)?;
            let document = case_document(store, &case.key, case.id).await?;
            serde_json::to_writer_pretty(&mut zip, &document)?;
            // Entries are written one after another: each mail's
            // attachments first, then the mbox, reading each mail twice
            // rather than holding more than one in memory.
            for (n, mail) in mails.iter().enumerate() {
                if mail.purged_at.is_some() {
                    continue;
                }
                let bytes = store.raw_bytes(mail.raw_row).await?;
                for a in casebot_core::mail::parse::attachment_bytes(&bytes) {
                    let name = a.filename.unwrap_or_else(|| format!("part-{}", a.part));
                    zip.start_file(
                        format!("{}/attachments/{:03}-{name}", case.key, n + 1),
                        options,
                    )?;
                    zip.write_all(&a.bytes)?;
                    out.attachments += 1;
                }
            }
            zip.start_file(format!("{}/mails.mbox", case.key), options)?;
            for mail in mails.iter().filter(|m| m.purged_at.is_none()) {
                let bytes = store.raw_bytes(mail.raw_row).await?;
                write_mboxrd(&mut zip, mail, &bytes)?;
            }
            zip.finish()?;
        }
    }
    out.bytes = std::fs::metadata(path)?.len();
    Ok(Some(out))
}

/// `case.json`: the case with its whole thread, analyses, drafts, events.
async fn case_document(store: &Store, key: &str, case_row: i64) -> Result<serde_json::Value> {
    let mut messages = Vec::new();
    let mut page = 1;
    let mut summary = None;
    loop {
        let request = PageRequest::new(Some(page), Some(PageRequest::MAX_PER_PAGE));
        let Some(detail) = store.case_detail(key, request).await? else {
            break;
        };
        let pages = detail.thread.pages;
        messages.extend(detail.messages);
        summary = Some(detail.case);
        if page >= pages {
            break;
        }
        page += 1;
    }
    let drafts: Vec<_> = store
        .list_drafts(&casebot_store::drafts::DraftFilter {
            case_row: Some(case_row),
            ..Default::default()
        })
        .await?
        .iter()
        .map(casebot_store::drafts::DraftRow::view)
        .collect();
    Ok(serde_json::json!({
        "case": summary,
        "messages": messages,
        "analyses": store.case_analyses(case_row).await?,
        "drafts": drafts,
        "events": store.case_events(case_row).await?,
        "exported_at": Utc::now().to_rfc3339(),
    }))
}

/// One mail in mboxrd: its `From ` line, its lines with every `>*From `
/// quoted once more, and a blank line.
fn write_mboxrd(out: &mut impl Write, mail: &CaseMail, bytes: &[u8]) -> std::io::Result<()> {
    let sender = mail
        .from_address
        .as_deref()
        .filter(|a| !a.is_empty() && !a.contains(char::is_whitespace))
        .unwrap_or("MAILER-DAEMON");
    let date = DateTime::<Utc>::from_timestamp(mail.date_utc, 0).unwrap_or_default();
    writeln!(out, "From {sender} {}", date.format("%a %b %e %H:%M:%S %Y"))?;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let quotes = line.iter().take_while(|b| **b == b'>').count();
        if line[quotes..].starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
    }
    if !bytes.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mboxrd_quotes_from_lines_at_any_depth_and_ends_each_mail() {
        let mail = CaseMail {
            message_row: 1,
            raw_row: 1,
            message_id: "a@example.com".into(),
            from_address: Some("li.wei@example.cn".into()),
            date_utc: 1_700_000_000,
            purged_at: None,
        };
        let mut out = Vec::new();
        write_mboxrd(
            &mut out,
            &mail,
            b"Subject: x\r\n\r\nFrom here\r\n>From there\r\nok",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From li.wei@example.cn Tue Nov 14 22:13:20 2023\n\
             Subject: x\r\n\r\n>From here\r\n>>From there\r\nok\n\n"
        );
    }
}
