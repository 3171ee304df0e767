//! What the commands print: JSON for scripts, aligned text for people.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::json;

use crate::ingest::Report;
use crate::ingest::parse::{ParsedMail, offset_of};
use crate::store::cases::{CaseDetail, CaseSummary};
use crate::store::quarantine::QuarantineEntry;

pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

pub fn json_line<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A progress bar on stderr, drawn only on a terminal.
pub fn progress(len: Option<u64>, message: &'static str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} ({per_sec}, {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {pos} ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_message(message);
    bar
}

/// The `casebot parse --json` object.
pub fn parse_view(m: &ParsedMail) -> serde_json::Value {
    let s = &m.subject_info;
    json!({
        "message_id": m.message_id,
        "message_id_synthesized": m.message_id_synthesized,
        "in_reply_to": m.in_reply_to,
        "references": m.references,
        "from": m.from.as_ref().map(|f| json!({"name": f.name, "address": f.address}))
            .unwrap_or(json!({"name": null, "address": null})),
        "to": m.to,
        "cc": m.cc,
        "date": m.date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "date_offset": offset_of(m.date_offset_minutes).map(|o| o.to_string()),
        "date_source": m.date_source,
        "subject": m.subject,
        "case": {
            "case_id": s.case_id,
            "title": s.title,
            "priority": s.priority,
            "customer": s.customer,
            "stage": s.stage,
            "internal_ref": s.internal_ref,
            "tags": s.tags,
            "kbs": s.kbs,
            "prefixes": s.prefixes,
        },
        "body_case_ids": m.body_case_ids,
        "direction": m.direction,
        "resolution_signal": m.resolution_phrase.is_some(),
        "resolution_phrase": m.resolution_phrase,
        "body": {
            "new_text": m.body.new_text,
            "quoted_text": m.body.quoted_text,
            "signature": m.body.signature,
        },
        "log_links": m.links.iter().map(|l| l.url.as_str()).collect::<Vec<_>>(),
        "links": m.links,
        "attachments": m.attachments.iter().map(|a| json!({
            "filename": a.filename, "content_type": a.content_type, "size": a.size,
        })).collect::<Vec<_>>(),
        "warnings": m.warnings,
        "sha256": m.sha256,
    })
}

pub fn parsed_mail(m: &ParsedMail) {
    let s = &m.subject_info;
    let from = m
        .from
        .as_ref()
        .map(|f| {
            format!(
                "{} <{}>",
                f.name.as_deref().unwrap_or(""),
                f.address.as_deref().unwrap_or("")
            )
        })
        .unwrap_or_default();
    println!("Subject:    {}", m.subject);
    println!("From:       {from}  [{}]", m.direction.as_str());
    println!(
        "Date:       {} ({})",
        m.date.to_rfc3339(),
        m.date_source.as_str()
    );
    println!(
        "Message-ID: {}{}",
        m.message_id,
        if m.message_id_synthesized {
            " (synthesised)"
        } else {
            ""
        }
    );
    println!(
        "Case:       {}  title={:?} priority={} customer={} stage={} ref={}",
        s.case_id.as_deref().unwrap_or("-"),
        s.title.as_deref().unwrap_or(""),
        s.priority.as_deref().unwrap_or("-"),
        s.customer.as_deref().unwrap_or("-"),
        s.stage.as_deref().unwrap_or("-"),
        s.internal_ref.as_deref().unwrap_or("-"),
    );
    if let Some(p) = &m.resolution_phrase {
        println!("Resolution: yes ({p:?})");
    }
    for a in &m.attachments {
        println!(
            "Attachment: {} ({}, {} bytes)",
            a.filename.as_deref().unwrap_or("(unnamed)"),
            a.content_type,
            a.size
        );
    }
    for l in &m.links {
        println!("Link:       {} [{}]", l.url, l.kind);
    }
    for w in &m.warnings {
        println!("Warning:    {w}");
    }
    println!("\n{}", m.body.new_text);
    if !m.body.quoted_text.is_empty() {
        println!(
            "\n[quoted history: {} lines]",
            m.body.quoted_text.lines().count()
        );
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

pub fn cases_table(cases: &[CaseSummary]) {
    if cases.is_empty() {
        println!("no cases yet");
        return;
    }
    println!(
        "{:<18} {:<3} {:<20} {:>4}  {:<20} {:<10} TITLE",
        "KEY", "PRI", "STATUS", "MSGS", "LAST MAIL", "CUSTOMER"
    );
    for c in cases {
        println!(
            "{:<18} {:<3} {:<20} {:>4}  {:<20} {:<10} {}",
            c.key,
            c.priority.as_deref().unwrap_or("-"),
            c.status,
            c.message_count,
            c.last_message_at.as_deref().unwrap_or("-"),
            short(c.customer.as_deref().unwrap_or("-"), 10),
            short(c.title.as_deref().unwrap_or(""), 60)
        );
    }
}

pub fn case_detail(d: &CaseDetail) {
    let c = &d.case;
    println!("{}  {}", c.key, c.title.as_deref().unwrap_or(""));
    println!(
        "status {} · priority {} · customer {} · stage {} · ref {} · {} messages",
        c.status,
        c.priority.as_deref().unwrap_or("-"),
        c.customer.as_deref().unwrap_or("-"),
        c.stage.as_deref().unwrap_or("-"),
        c.internal_ref.as_deref().unwrap_or("-"),
        c.message_count
    );
    for m in &d.messages {
        let from = m.from["name"]
            .as_str()
            .or(m.from["address"].as_str())
            .unwrap_or("?");
        println!(
            "\n── {} · {} · {}{}",
            m.date,
            m.direction,
            from,
            if m.resolution_signal {
                " · RESOLVED"
            } else {
                ""
            }
        );
        for line in m.new_text.lines() {
            println!("   {line}");
        }
        for a in &m.attachments {
            println!(
                "   [attachment] {} ({}, {} bytes)",
                a.filename.as_deref().unwrap_or("(unnamed)"),
                a.content_type,
                a.size
            );
        }
        for l in &m.links {
            println!("   [link] {}", l.url);
        }
    }
}

pub fn quarantine_table(entries: &[QuarantineEntry]) {
    if entries.is_empty() {
        println!("quarantine is empty");
        return;
    }
    for e in entries {
        println!(
            "{:>5}  {}  {:>9} B  {}{}\n       reason: {}",
            e.id,
            e.created_at,
            e.size,
            e.source,
            e.released_at
                .as_deref()
                .map(|r| format!("  (released {r})"))
                .unwrap_or_default(),
            e.reason
        );
    }
}

pub fn report_line(r: &Report) {
    eprintln!(
        "{:<11} {}{}",
        format!("{:?}", r.status).to_lowercase(),
        r.source,
        r.reason
            .as_deref()
            .map(|s| format!(": {s}"))
            .unwrap_or_default()
    );
}
