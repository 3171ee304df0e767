//! The outbox: sends approved drafts, at most once, in their thread.
//!
//! Only drafts an engineer approved are ever claimed, and the text sent is
//! checked against the hash recorded at approval. A sender claims one draft
//! at a time with a lease, records when the server starts receiving the
//! message, and records the outcome; failures that certainly delivered
//! nothing are retried with exponential backoff, an interrupted delivery is
//! left to an engineer (see `store::drafts`). Each sent reply is then filed
//! in its case through the ingest pipeline, like any mail of the thread, so
//! the case moves to "waiting on the customer" by the same rule.

pub mod message;
pub mod smtp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::{Config, TransportKind};
use crate::mailbox::RawMail;
use crate::oauth::SignIns;
use crate::stages::filing::Pipeline;
use crate::telemetry::{DraftEvent, Stage};
use casebot_core::domain::Source;
use casebot_store::Store;
use casebot_store::drafts::{DraftRow, sha256_text};
use casebot_store::lease::instance;

/// What one pass of the sender did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SendCounts {
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
    /// Claims of a dead sender released (or failed as uncertain).
    pub recovered: u64,
}

/// The sender; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    pipeline: Pipeline,
    config: Arc<Config>,
    /// `host:pid:start`: who holds a claim, so a restart on this host can
    /// tell a dead sender's claim from a live one's.
    owner: String,
    /// The IMAP account and folder where sent replies are stored, so the
    /// desk's mailbox shows the whole conversation.
    sent_folder: Option<(crate::mailbox::imap::Account, String)>,
    sign_ins: SignIns,
}

impl Outbox {
    /// The sender; `sign_ins` are the mailboxes' OAuth2 sign-ins (SMTP
    /// with `auth = "oauth2"` and the Sent folder use them).
    pub fn new(pipeline: Pipeline, config: Arc<Config>, sign_ins: SignIns) -> Self {
        // The first IMAP mailbox with a Sent folder (whose login is set).
        let sent_folder = config
            .mailboxes
            .iter()
            .filter(|m| m.kind == crate::config::MailboxKind::Imap && !m.sent_folder.is_empty())
            .find_map(|m| {
                let account =
                    crate::mailbox::imap::Account::from_config(&config, m, &sign_ins).ok()?;
                Some((account, m.sent_folder.clone()))
            });
        Outbox {
            store: pipeline.store().clone(),
            pipeline,
            config,
            owner: instance::id().to_string(),
            sent_folder,
            sign_ins,
        }
    }

    /// Sends every approved draft that is due, after releasing the claims of
    /// senders that died.
    pub async fn send_due(&self) -> Result<SendCounts> {
        let mut counts = SendCounts {
            recovered: self
                .store
                .recover_send_claims(|o| self.owner_is_dead(o))
                .await?,
            ..SendCounts::default()
        };
        self.file_missing_copies().await?;
        let lease = (self.config.outbox.smtp.timeout_secs.max(1) * 7 + 30) as i64;
        // One attempt per draft per pass: what fails now is retried by a later pass.
        let pass_start = casebot_store::now_ts();
        while let Some(draft) = self
            .store
            .claim_next_send(&self.owner, lease, pass_start)
            .await?
        {
            match self.send_one(&draft).await? {
                Sent::Yes => counts.sent += 1,
                Sent::Retry => counts.retrying += 1,
                Sent::Failed => counts.failed += 1,
            }
        }
        Ok(counts)
    }

    async fn send_one(&self, d: &DraftRow) -> Result<Sent> {
        let outbox = &self.config.outbox;
        // The gate's promise: what goes out is what was approved.
        if d.approved_sha256.as_deref() != Some(sha256_text(&d.body).as_str()) {
            self.store
                .mark_send_error(
                    d,
                    &self.owner,
                    "the text differs from the approved text; not sent",
                    None,
                )
                .await?;
            return Ok(Sent::Failed);
        }
        let message = match message::build(d, outbox, SystemTime::now()) {
            Ok(m) => m,
            Err(e) => {
                self.store
                    .mark_send_error(d, &self.owner, &e.to_string(), None)
                    .await?;
                return Ok(Sent::Failed);
            }
        };
        let bytes = message.formatted();
        let started = std::time::Instant::now();
        let result = match outbox.transport {
            TransportKind::File => {
                self.write_file(d, &bytes)
                    .await
                    .map_err(|e| smtp::SmtpFailure::NotDelivered {
                        transient: true,
                        message: format!("{e:#}"),
                    })
            }
            TransportKind::Smtp => {
                let login = smtp::SmtpLogin::from_config(&self.config, &self.sign_ins);
                let data_phase = self.store.mark_send_phase(d.id, &self.owner, "data");
                match login {
                    Err(message) => Err(smtp::SmtpFailure::NotDelivered {
                        transient: false,
                        message,
                    }),
                    Ok(login) => smtp::deliver(
                        &outbox.smtp,
                        &login,
                        &outbox.hello(),
                        message.envelope(),
                        &bytes,
                        data_phase,
                    )
                    .await
                    .map(|answer| {
                        format!("smtp {}:{}: {answer}", outbox.smtp.host, outbox.smtp.port)
                    }),
                }
            }
        };
        crate::telemetry::metrics().took(Stage::Send, started.elapsed());
        match result {
            Ok(answer) => {
                self.store
                    .mark_sent(d, &self.owner, serde_json::json!({"transport": answer}))
                    .await?;
                tracing::info!(draft = d.id, case = %d.case_key, "reply sent");
                crate::telemetry::metrics().draft(DraftEvent::Sent);
                self.store_in_sent_folder(d, &bytes).await;
                self.file_copy(d.id, bytes).await;
                Ok(Sent::Yes)
            }
            Err(smtp::SmtpFailure::NotDelivered {
                transient: true,
                message,
            }) if (d.attempts as u64) < u64::from(outbox.max_attempts) => {
                let wait = backoff(d.attempts, outbox.retry_initial_secs, outbox.retry_max_secs);
                let retry_at = casebot_store::now_ts() + wait as i64;
                tracing::warn!(draft = d.id, case = %d.case_key, attempt = d.attempts, error = %message, retry_in_secs = wait, "send failed; will retry");
                self.store
                    .mark_send_error(d, &self.owner, &message, Some(retry_at))
                    .await?;
                Ok(Sent::Retry)
            }
            Err(failure) => {
                let message = match &failure {
                    smtp::SmtpFailure::NotDelivered {
                        transient: true,
                        message,
                    } => {
                        format!("{message} (gave up after {} attempts)", d.attempts)
                    }
                    other => other.to_string(),
                };
                tracing::error!(draft = d.id, case = %d.case_key, error = %message, "send failed");
                crate::telemetry::metrics().draft(DraftEvent::SendFailed);
                self.store
                    .mark_send_error(d, &self.owner, &message, None)
                    .await?;
                Ok(Sent::Failed)
            }
        }
    }

    /// The file transport: `outbox/<draft>-<message id>.eml`, written whole
    /// or not at all (temporary file, then rename), so a retry rewrites the
    /// same file instead of adding a second one.
    async fn write_file(&self, d: &DraftRow, bytes: &[u8]) -> Result<String> {
        let dir = self.config.resolve(&self.config.outbox.dir);
        let name: String = d
            .message_id
            .as_deref()
            .unwrap_or("")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path: PathBuf = dir.join(format!("{:06}-{name}.eml", d.id));
        let bytes = bytes.to_vec();
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || -> Result<()> {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("Cannot create the outbox folder {}", dir.display()))?;
            let tmp = tempfile::NamedTempFile::new_in(&dir)
                .with_context(|| format!("Cannot write into {}", dir.display()))?;
            std::fs::write(tmp.path(), &bytes)?;
            tmp.persist(&path)
                .with_context(|| format!("Cannot write {}", path.display()))?;
            Ok(())
        })
        .await
        .context("The outbox writer failed")??;
        Ok(format!("file {shown}"))
    }

    /// APPENDs the sent reply to the IMAP Sent folder (\Seen). The reply
    /// is out either way: a failure is logged and recorded in the case's
    /// events, never retried by sending again.
    async fn store_in_sent_folder(&self, d: &DraftRow, bytes: &[u8]) {
        let Some((account, folder)) = &self.sent_folder else {
            return;
        };
        if let Err(e) = crate::mailbox::imap::append_sent(account, folder, bytes).await {
            let error = format!("{e:#}");
            tracing::warn!(draft = d.id, case = %d.case_key, %folder, %error, "cannot store the reply in the Sent folder");
            let _ = self
                .store
                .case_event(
                    d.case_row,
                    "sent_copy_failed",
                    serde_json::json!({"draft": d.id, "folder": folder, "error": error}),
                )
                .await;
        }
    }

    /// Files the sent reply in its case. A failure here is logged, not
    /// fatal: the reply is out, and the next pass files the copy again.
    async fn file_copy(&self, draft: i64, bytes: Vec<u8>) {
        let raw = RawMail::new(bytes, Source::Sent { draft }, chrono::Utc::now());
        let prepared = self.pipeline.prepare(raw);
        if let Err(e) = self.pipeline.file_batch(vec![prepared]).await {
            tracing::warn!(draft, error = %format!("{e:#}"), "cannot file the sent reply yet");
        }
    }

    /// Sent replies whose copy never reached the case (the process stopped
    /// in between) are rebuilt from the draft, dated when they were sent.
    async fn file_missing_copies(&self) -> Result<()> {
        for d in self.store.sent_without_copy().await? {
            let sent =
                SystemTime::UNIX_EPOCH + Duration::from_secs(d.sent_at.unwrap_or(0).max(0) as u64);
            if let Ok(m) = message::build(&d, &self.config.outbox, sent) {
                self.file_copy(d.id, m.formatted()).await;
            }
        }
        Ok(())
    }

    fn owner_is_dead(&self, owner: &str) -> bool {
        owner != self.owner && instance::is_dead(owner)
    }
}

enum Sent {
    Yes,
    Retry,
    Failed,
}

/// Seconds before retry number `attempts`: doubling from `initial`, capped.
pub fn backoff(attempts: i64, initial: u64, max: u64) -> u64 {
    let exp = attempts.clamp(1, 32) as u32 - 1;
    initial
        .max(1)
        .saturating_mul(1u64 << exp.min(20))
        .min(max.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1, 30, 1800), 30);
        assert_eq!(backoff(2, 30, 1800), 60);
        assert_eq!(backoff(4, 30, 1800), 240);
        assert_eq!(backoff(30, 30, 1800), 1800);
    }
}
