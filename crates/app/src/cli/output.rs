//! What the commands print: JSON for scripts, aligned text for people.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::json;

use crate::stages::filing::Report;
use casebot_core::mail::parse::{ParsedMail, offset_of};
use casebot_store::cases::{CaseDetail, CaseSummary};
use casebot_store::quarantine::QuarantineEntry;

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

/// One progress bar per phase of a long job, each replacing the last
/// (hidden when stderr is not a terminal, as [`progress`]).
#[derive(Default)]
pub struct PhaseBars {
    current: std::sync::Mutex<Option<(&'static str, ProgressBar)>>,
}

impl PhaseBars {
    pub fn show(&self, phase: &'static str, len: Option<u64>, position: u64) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().map(|(p, _)| *p) != Some(phase) {
            if let Some((_, bar)) = current.take() {
                bar.finish_and_clear();
            }
            let bar = progress(len, phase);
            if len.is_none() {
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
            }
            *current = Some((phase, bar));
        }
        if let Some((_, bar)) = current.as_ref() {
            bar.set_position(position);
        }
    }

    pub fn finish(&self) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, bar)) = current.take() {
            bar.finish_and_clear();
        }
    }
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
            "stage_kind": s.stage_kind,
            "internal_ref": s.internal_ref,
            "tags": s.tags,
            "kbs": s.kbs,
            "prefixes": s.prefixes,
        },
        "body_case_ids": m.body_case_ids,
        "new_text_case_ids": m.new_text_case_ids,
        "direction": m.direction,
        "bounce": m.bounce,
        "resolution_signal": m.resolution_phrase.is_some(),
        "resolution_phrase": m.resolution_phrase,
        "closure_phrase": m.closure_phrase,
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
    if let Some(b) = &m.bounce {
        println!("Bounce:     {}", bounce_line(b));
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

pub fn short(s: &str, max: usize) -> String {
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
    let t = &d.thread;
    if t.pages > 1 {
        println!(
            "page {} of {} ({} mails a page; --page N for another)",
            t.page, t.pages, t.per_page
        );
    }
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
        if let Some(b) = &m.bounce {
            println!("   {}", bounce_line(b));
        }
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

/// "a reply to X (to Y) bounced: reason", as the desk says it.
fn bounce_line(b: &casebot_core::mail::bounce::Bounce) -> String {
    let to = if b.recipients.is_empty() {
        String::new()
    } else {
        format!(" (to {})", b.recipients.join(", "))
    };
    format!(
        "a reply to {:?}{to} bounced: {}",
        b.returned_subject.as_deref().unwrap_or("an earlier mail"),
        b.reason.as_deref().unwrap_or("no reason given")
    )
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

/// The readable form of an analysis: the verdict, the decisive lines quoted
/// with file, line and time, the facts, the numbered next steps, the files.
pub fn analysis_report(r: &casebot_analysis::Report) {
    use casebot_analysis::bundle::ItemStatus;
    let c = &r.conclusion;
    println!("Outcome: {}", c.outcome.as_str());
    if let Some(note) = &c.note_text {
        println!("  {note}");
    }
    if let Some(rc) = &c.root_cause {
        println!("Root cause: {} ({})", rc.class, rc.class_name);
        if !rc.summary.is_empty() {
            println!("  {}", rc.summary);
        }
        if let Some(detail) = &rc.detail {
            println!("  {detail}");
        }
        println!("Decisive rule: {}", rc.rule);
        println!("Evidence:");
        for (i, e) in rc.evidence.iter().enumerate() {
            let marker = if i == 0 { ">" } else { " " };
            println!(
                "{marker} {}:{}{}",
                e.file,
                e.line,
                e.time
                    .as_deref()
                    .map(|t| format!(" [{t}]"))
                    .unwrap_or_default()
            );
            for line in e.text.lines().take(4) {
                println!("    {}", short(line, 400));
            }
        }
    }
    if let Some(s) = &c.success {
        println!("Success line: {}:{}", s.file, s.line);
        println!("    {}", short(&s.text, 400));
    }
    if !c.code_details.is_empty() {
        let codes: Vec<String> = c
            .code_details
            .iter()
            .map(|d| {
                let mut s = d.code.clone();
                if !d.raw.eq_ignore_ascii_case(&d.code) && Some(&d.raw) != d.name.as_ref() {
                    s.push_str(&format!(" (logged as {})", d.raw));
                }
                if let Some(n) = &d.name {
                    s.push_str(&format!(" {n}"));
                }
                s
            })
            .collect();
        println!("Error codes: {}", codes.join(", "));
    }
    if !c.kbs.is_empty() {
        println!("KBs: {}", c.kbs.join(", "));
    }
    for (label, value) in [
        ("Failing package", &c.failing_package),
        ("Failing component", &c.failing_component),
        ("Failing file", &c.failing_file),
        ("OS build", &c.os_build),
    ] {
        if let Some(v) = value {
            println!("{label}: {v}");
        }
    }
    if !c.next_steps.is_empty() {
        println!("Next steps:");
        for (i, step) in c.next_steps.iter().enumerate() {
            println!("  {}. {} [{}]", i + 1, step.title, step.id);
            for line in step.text.lines() {
                println!("     {line}");
            }
        }
    }
    let scanned = r
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Scanned)
        .count();
    let skipped = r
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Skipped)
        .count();
    let refused = r
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Error)
        .count();
    println!(
        "Files: {scanned} read, {skipped} not logs, {refused} refused; {} findings, {} noise lines ignored",
        r.findings_total, r.noise_lines
    );
    for item in &r.items {
        let status = match item.status {
            ItemStatus::Scanned => "read",
            ItemStatus::Skipped => "skipped",
            ItemStatus::Error => "REFUSED",
        };
        let lines = item
            .lines
            .map(|l| format!(" {l} lines"))
            .unwrap_or_default();
        let reason = item
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        println!("  {status:8} {:14} {}{lines}{reason}", item.kind, item.path);
    }
}

/// A spinner on stderr for work without a known length, drawn only on a terminal.
pub fn spinner(message: &'static str) -> ProgressBar {
    let bar = progress(None, message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// `casebot analyze --case`: one line per mail, then the newest conclusion.
pub fn case_analyses(list: &[casebot_store::analyses::AnalysisView]) {
    if list.is_empty() {
        println!("No customer mail in this case.");
        return;
    }
    for a in list {
        println!(
            "{:6} {:8} {:8} {:34} {}",
            a.message_row,
            a.status,
            a.outcome.as_deref().unwrap_or("-"),
            a.class.as_deref().unwrap_or("-"),
            short(&a.message_id, 60)
        );
        if let Some(e) = &a.error {
            println!("       {}", short(e, 200));
        }
    }
    if let Some(latest) = casebot_store::analyses::newest_conclusion(list)
        && let Some(report) = &latest.report
    {
        println!();
        println!("Newest conclusion (message {}):", latest.message_row);
        analysis_summary(report);
    }
}

/// A stored report (JSON), in a few lines: outcome, class, decisive line, steps.
pub fn analysis_summary(report: &serde_json::Value) {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    println!("  outcome: {}", s(&report["outcome"]));
    if let Some(rc) = report.get("root_cause").filter(|v| !v.is_null()) {
        println!(
            "  root cause: {} ({})",
            s(&rc["class"]),
            s(&rc["class_name"])
        );
        if let Some(e) = rc["evidence"].get(0) {
            println!(
                "  decisive: {}:{} {}",
                s(&e["file"]),
                e["line"],
                short(&s(&e["text"]), 300)
            );
        }
    }
    let list = |key: &str| -> String {
        report[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    if !list("error_codes").is_empty() {
        println!("  codes: {}", list("error_codes"));
    }
    if !list("kbs").is_empty() {
        println!("  KBs: {}", list("kbs"));
    }
    if let Some(steps) = report["next_steps"].as_array() {
        for (i, step) in steps.iter().enumerate() {
            println!("  {}. {} [{}]", i + 1, s(&step["title"]), s(&step["id"]));
        }
    }
}

pub fn drafts_table(drafts: &[casebot_store::drafts::DraftView]) {
    if drafts.is_empty() {
        println!("no drafts");
        return;
    }
    println!(
        "{:>5}  {:<18} {:<10} {:<9} {:>3}  {:<20} detail",
        "ID", "CASE", "KIND", "STATUS", "REV", "UPDATED"
    );
    for d in drafts {
        let detail = match d.status.as_str() {
            "pending" => d.edited_by.as_ref().map(|b| format!("edited by {b}")),
            "approved" if d.attempts > 0 => Some(format!(
                "attempt {} failed: {}; next {}",
                d.attempts,
                d.last_error.as_deref().unwrap_or("?"),
                d.next_attempt_at.as_deref().unwrap_or("now")
            )),
            "approved" => d
                .approved_by
                .as_ref()
                .map(|b| format!("approved by {b}, waiting to be sent")),
            "rejected" => Some(format!(
                "by {}: {}",
                d.rejected_by.as_deref().unwrap_or("?"),
                d.reject_reason.as_deref().unwrap_or("")
            )),
            "sent" => d.sent_at.as_ref().map(|t| format!("sent {t}")),
            "failed" => d.last_error.clone(),
            _ => None,
        };
        println!(
            "{:>5}  {:<18} {:<10} {:<9} {:>3}  {:<20} {}",
            d.id,
            short(d.case_id.as_deref().unwrap_or(&d.case_key), 18),
            d.kind,
            d.status,
            d.revision,
            d.updated_at,
            short(&detail.unwrap_or_default(), 80)
        );
    }
}

pub fn draft_detail(d: &casebot_store::drafts::DraftView) {
    println!(
        "Draft {} · {} · {} · revision {}",
        d.id, d.kind, d.status, d.revision
    );
    println!("Case:     {}", d.case_id.as_deref().unwrap_or(&d.case_key));
    println!("Subject:  {}", d.subject);
    println!("To:       {}", d.to.join(", "));
    if !d.cc.is_empty() {
        println!("Cc:       {}", d.cc.join(", "));
    }
    if let Some(parent) = &d.in_reply_to {
        println!("Replying: <{parent}>");
    }
    if let Some(mid) = &d.message_id {
        println!("Message-ID: <{mid}>");
    }
    if let (Some(by), Some(at)) = (&d.edited_by, &d.edited_at) {
        println!("Edited:   by {by} at {at}");
    }
    if let (Some(by), Some(at)) = (&d.approved_by, &d.approved_at) {
        println!("Approved: by {by} at {at}");
    }
    if let (Some(by), Some(at)) = (&d.rejected_by, &d.rejected_at) {
        println!(
            "Rejected: by {by} at {at}: {}",
            d.reject_reason.as_deref().unwrap_or("")
        );
    }
    if let Some(at) = &d.sent_at {
        println!("Sent:     {at}");
    }
    if let Some(e) = &d.last_error {
        println!("Last error (attempt {}): {e}", d.attempts);
    }
    println!("{}", "-".repeat(72));
    print!("{}", d.body);
    if !d.body.ends_with('\n') {
        println!();
    }
}

pub fn knowledge_table(entries: &[casebot_store::knowledge::KnowledgeEntry]) {
    if entries.is_empty() {
        println!("no knowledge yet: it is recorded when a closure is approved");
        return;
    }
    println!("{:>4}  {:<18} {:<34} resolution", "ID", "CASE", "CLASS");
    for k in entries {
        println!(
            "{:>4}  {:<18} {:<34} {}",
            k.id,
            short(&k.case_key, 18),
            short(&k.class, 34),
            short(&k.resolution.replace('\n', " "), 80)
        );
    }
}

pub fn knowledge_detail(k: &casebot_store::knowledge::KnowledgeEntry) {
    println!("Knowledge {} · case {}", k.id, k.case_key);
    println!("Class:      {}", k.class);
    if let Some(rule) = &k.rule {
        println!("Rule:       {rule}");
    }
    if !k.error_codes.is_empty() {
        println!("Codes:      {}", k.error_codes.join(", "));
    }
    if let Some(c) = &k.component {
        println!("Component:  {c}");
    }
    if let Some(p) = &k.package {
        println!("Package:    {p}");
    }
    if !k.kbs.is_empty() {
        println!("KBs:        {}", k.kbs.join(", "));
    }
    println!("Problem:    {}", k.problem);
    println!("Resolution: {}", k.resolution);
    if let Some(w) = &k.customer_words {
        println!("Customer:   {w}");
    }
    println!(
        "Recorded {}, updated {}{}",
        k.created_at,
        k.updated_at,
        k.updated_by
            .as_ref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default()
    );
}

pub fn mailboxes_table(folders: &[casebot_store::imap::FolderView]) {
    if folders.is_empty() {
        println!("no IMAP folder watched yet");
        return;
    }
    println!(
        "{:<12} {:<16} {:<13} {:>11} {:>8}  {:<20} LAST ERROR",
        "MAILBOX", "FOLDER", "STATE", "UIDVALIDITY", "LAST UID", "SINCE"
    );
    for f in folders {
        println!(
            "{:<12} {:<16} {:<13} {:>11} {:>8}  {:<20} {}",
            short(&f.mailbox, 12),
            short(&f.folder, 16),
            f.state,
            f.uidvalidity,
            f.last_uid,
            f.state_since,
            f.last_error.as_deref().unwrap_or("")
        );
    }
}

pub fn instances_table(instances: &[casebot_store::lease::InstanceView]) {
    if instances.is_empty() {
        println!("no instance has run on this store in the last day");
        return;
    }
    println!(
        "{:<24} {:>8} {:<5} {:<20} {:>9}  LEASES",
        "HOST", "PID", "STATE", "STARTED", "SEEN"
    );
    for i in instances {
        println!(
            "{:<24} {:>8} {:<5} {:<20} {:>8}s  {}",
            short(&i.host, 24),
            i.pid,
            if i.alive { "alive" } else { "gone" },
            i.started_at,
            i.seen_secs_ago,
            i.leases.join(", ")
        );
    }
}

pub fn sla_table(
    views: &[casebot_core::sla::CaseSlaView],
    tz: chrono_tz::Tz,
    now: chrono::DateTime<chrono::Utc>,
) {
    println!(
        "as of {} ({tz}); times left are business time",
        now.with_timezone(&tz).format("%Y-%m-%d %H:%M")
    );
    if views.is_empty() {
        println!("no open cases");
        return;
    }
    println!(
        "{:<18} {:<3} {:<9} {:<20} {:<16} {:>9}  {:<16} OWNER",
        "KEY", "PRI", "URGENCY", "STATE", "NEXT DUE", "LEFT", "TARGET"
    );
    for v in views {
        let worst = v.worst_target();
        println!(
            "{:<18} {:<3} {:<9} {:<20} {:<16} {:>9}  {:<16} {}",
            v.case_key,
            v.priority,
            v.urgency.as_str(),
            v.state,
            match (v.urgency, v.next_due) {
                (casebot_core::sla::Urgency::Closed, _) => "-".into(),
                (_, Some(d)) => d.with_timezone(&tz).format("%m-%d %H:%M").to_string(),
                (_, None) => "paused".into(),
            },
            worst
                .map(|(_, t)| casebot_core::sla::business_time(t.minutes_left))
                .unwrap_or_else(|| "-".into()),
            worst.map(|(kind, _)| kind.as_str()).unwrap_or("-"),
            v.owner.as_deref().unwrap_or("-"),
        );
    }
}

pub fn sla_report(r: &casebot_core::sla::report::Report) {
    let tz: chrono_tz::Tz = r.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let day = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
    };
    println!("period {} – {} ({})", day(r.from), day(r.to), r.time_zone);
    let pct = |p: Option<f64>| p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "-".into());
    let mins = |m: Option<i64>| {
        m.map(casebot_core::sla::business_time)
            .unwrap_or_else(|| "-".into())
    };
    let line = |name: &str, f: &casebot_core::sla::report::Figures| {
        println!(
            "{:<22} {:>6} {:>6} {:>10} {:>10} {:>9} {:>9} {:>8}",
            short(name, 22),
            f.opened,
            f.closed,
            mins(f.first_response.median_minutes),
            mins(f.first_response.p90_minutes),
            pct(f.first_response_met_pct),
            pct(f.met_pct),
            f.breaches
        );
    };
    let header = |title: &str| {
        println!(
            "\n{:<22} {:>6} {:>6} {:>10} {:>10} {:>9} {:>9} {:>8}",
            title, "OPENED", "CLOSED", "1ST MEDIAN", "1ST P90", "1ST MET", "ALL MET", "BREACHES"
        )
    };
    header("TOTAL");
    line("all", &r.total);
    header("WEEK");
    for w in &r.weeks {
        line(&w.starts.to_string(), &w.figures);
    }
    header("PRIORITY");
    for g in &r.by_priority {
        line(&g.name, &g.figures);
    }
    header("OWNER");
    for g in &r.by_owner {
        line(&g.name, &g.figures);
    }
}
