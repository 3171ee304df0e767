//! The notification stage: tells the desk's people what needs them.
//!
//! It follows the event log with its own cursor (a customer wrote, a draft
//! waits, a case was assigned, a send failed) and looks at the SLA and the
//! mailboxes every `notify.check_secs` (a target at risk or breached, a
//! login refused). `casebot_core::notify` decides who is told what and
//! when; the store queues each notice once per person, channel and key;
//! the sender claims what is due, words it in each person's language, and
//! sends one message per person and channel: by mail (`email.rs`) or to a
//! chat webhook (`webhook.rs`). A failed delivery is retried with backoff;
//! nothing here ever holds up filing or drafting, which only write events.

pub mod email;
pub mod webhook;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::config::{Config, WebhookConfig};
use crate::i18n::{UiLang, tr};
use crate::oauth::SignIns;
use crate::stages::sla::SlaSnapshots;
use casebot_core::notify::{
    Facts, Notice, People, Preferences, Topic, due_at, for_event, for_mailboxes, for_sla,
};
use casebot_store::Store;
use casebot_store::lease::instance;
use casebot_store::notify::{ClaimedNotice, QueuedNotice};

const CURSOR: &str = "notify";
/// Events read per pass.
const EVENTS_PER_PASS: i64 = 500;
/// Lines in one message; the rest are counted.
const LINES_PER_MESSAGE: usize = 20;

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Worth another try, after `after` seconds when the receiver said so.
    Retry {
        error: String,
        after: Option<u64>,
    },
    /// Never worth another try (a refused address, a hook that is gone).
    Failed(String),
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub messages: usize,
    pub notices: usize,
    pub retried: usize,
    pub failed: usize,
}

/// The notification stage of one process.
pub struct Notifier {
    store: Store,
    config: Arc<Config>,
    sla: Arc<SlaSnapshots>,
    client: reqwest::Client,
    /// Keys this process queued from the SLA and mailbox checks, so a
    /// target that stays breached is not offered to the store every check.
    checked: Mutex<HashSet<(String, String)>>,
    recovered: Mutex<bool>,
    /// For mail through an OAuth2 SMTP login.
    sign_ins: SignIns,
}

impl Notifier {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        sla: Arc<SlaSnapshots>,
        sign_ins: SignIns,
    ) -> Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("casebot/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Notifier {
            store,
            config,
            sla,
            client,
            checked: Mutex::default(),
            recovered: Mutex::new(false),
            sign_ins,
        })
    }

    fn enabled(&self) -> bool {
        self.config.notify.enabled
    }

    async fn preferences(&self) -> Result<Preferences> {
        Ok(preferences(
            &self.config,
            self.store.notify_choices().await?,
        ))
    }

    /// Each notice on each channel its person wants, due when its batching
    /// window closes (or the desk opens).
    fn route(
        &self,
        notices: &[Notice],
        prefs: &Preferences,
        people: &People,
        now: DateTime<Utc>,
    ) -> Vec<QueuedNotice> {
        let notify = &self.config.notify;
        let calendar = &self.sla.policies().policy_for(None).calendar;
        let mut out = Vec::new();
        for n in notices {
            let urgent = notify.urgent.iter().any(|u| u == n.topic.as_str());
            let due = due_at(
                now,
                notify.batch_secs as i64,
                notify.quiet_hours.then_some(calendar),
                urgent,
            );
            let has_address = people.resolve(&n.person).is_some_and(|p| p.email.is_some());
            for channel in prefs.channels_for(n) {
                if channel == "email" && !has_address {
                    continue;
                }
                out.push(QueuedNotice {
                    person: n.person.clone(),
                    channel: channel.to_string(),
                    topic: n.topic,
                    key: n.key.clone(),
                    case_row: n.facts.case.as_ref().map(|c| c.row),
                    facts: serde_json::to_string(&n.facts).unwrap_or_default(),
                    due_at: due.timestamp(),
                });
            }
        }
        out
    }

    /// Queues the notices of the events logged since the last pass.
    /// Returns how many were new.
    pub async fn queue_events(&self) -> Result<usize> {
        if !self.enabled() {
            return Ok(0);
        }
        // The first start tells of what happens from now on, not of the
        // store's whole history.
        let Some(mut cursor) = self.store.cursor_if_set(CURSOR).await? else {
            let newest = self.store.newest_event().await?;
            self.store.set_cursor(CURSOR, newest).await?;
            return Ok(0);
        };
        let mut queued = 0;
        loop {
            let (events, next) = self.store.notice_events(cursor, EVENTS_PER_PASS).await?;
            if next <= cursor {
                return Ok(queued);
            }
            let routed = if events.is_empty() {
                Vec::new()
            } else {
                let people = People::new(self.store.notify_people().await?);
                let notices: Vec<Notice> =
                    events.iter().flat_map(|e| for_event(e, &people)).collect();
                let prefs = self.preferences().await?;
                self.route(&notices, &prefs, &people, Utc::now())
            };
            // The notices and the cursor past their events in one transaction.
            queued += self
                .store
                .queue_notices(&routed, Some((CURSOR, next)))
                .await?;
            cursor = next;
            if (events.len() as i64) < EVENTS_PER_PASS {
                return Ok(queued);
            }
        }
    }

    /// Looks at the open cases' SLA and the mailboxes now; queues what is
    /// at risk, breached or refused and was not told yet.
    pub async fn queue_checks(&self) -> Result<usize> {
        if !self.enabled() {
            return Ok(0);
        }
        self.sla.refresh().await?;
        let open = self.sla.open();
        let people = People::new(self.store.notify_people().await?);
        let now = Utc::now();
        let mut notices = for_sla(open.values(), self.sla.policies(), now, &people);
        notices.extend(for_mailboxes(&self.store.mailbox_states().await?, &people));
        let mut checked = self.checked.lock().await;
        notices.retain(|n| !checked.contains(&(n.person.clone(), n.key.clone())));
        if notices.is_empty() {
            return Ok(0);
        }
        let prefs = self.preferences().await?;
        let routed = self.route(&notices, &prefs, &people, now);
        let queued = self.store.queue_notices(&routed, None).await?;
        checked.extend(notices.into_iter().map(|n| (n.person, n.key)));
        Ok(queued)
    }

    /// Sends what is due: one message per person and channel.
    pub async fn deliver_due(&self) -> Result<Delivered> {
        let claimant = instance::id();
        {
            let mut recovered = self.recovered.lock().await;
            if !*recovered {
                let n = self
                    .store
                    .recover_notice_claims(|c| c != claimant && instance::is_dead(c))
                    .await?;
                if n > 0 {
                    tracing::warn!(
                        notices = n,
                        "notices a stopped instance was sending are marked failed, not sent again"
                    );
                }
                *recovered = true;
            }
        }
        let claimed = self
            .store
            .claim_due_notices(claimant, Utc::now().timestamp(), 1000)
            .await?;
        let mut groups: BTreeMap<(String, String), Vec<ClaimedNotice>> = BTreeMap::new();
        for n in claimed {
            groups
                .entry((n.person.clone(), n.channel.clone()))
                .or_default()
                .push(n);
        }
        let mut done = Delivered::default();
        for ((person, channel), group) in groups {
            let ids: Vec<i64> = group.iter().map(|n| n.id).collect();
            let delivery = self.deliver(&channel, &group).await;
            let metrics = crate::telemetry::metrics();
            match delivery {
                Delivery::Sent => {
                    self.store.notices_sent(&ids).await?;
                    metrics.notification(&channel, "sent", ids.len());
                    done.messages += 1;
                    done.notices += ids.len();
                }
                Delivery::Retry { error, after } => {
                    let attempts = group.iter().map(|n| n.attempts).max().unwrap_or(1);
                    let notify = &self.config.notify;
                    let retry_at = (attempts < i64::from(notify.max_attempts)).then(|| {
                        let wait = after.unwrap_or_else(|| {
                            crate::outbox::backoff(
                                attempts,
                                notify.retry_initial_secs,
                                notify.retry_max_secs,
                            )
                        });
                        Utc::now().timestamp() + wait.min(notify.retry_max_secs.max(1)) as i64
                    });
                    tracing::warn!(%person, %channel, attempts, %error, retry = retry_at.is_some(), "a notification was not delivered");
                    let result = if retry_at.is_some() {
                        "retry"
                    } else {
                        "failed"
                    };
                    metrics.notification(&channel, result, ids.len());
                    self.store.notices_not_sent(&ids, &error, retry_at).await?;
                    if retry_at.is_some() {
                        done.retried += ids.len();
                    } else {
                        done.failed += ids.len();
                    }
                }
                Delivery::Failed(error) => {
                    tracing::warn!(%person, %channel, %error, "a notification cannot be delivered");
                    metrics.notification(&channel, "failed", ids.len());
                    self.store.notices_not_sent(&ids, &error, None).await?;
                    done.failed += ids.len();
                }
            }
        }
        Ok(done)
    }

    async fn deliver(&self, channel: &str, group: &[ClaimedNotice]) -> Delivery {
        let text = self.words(group);
        if channel == "email" {
            let Some(to) = group[0].email.as_deref() else {
                return Delivery::Failed(format!("{} has no mail address", group[0].person));
            };
            let name = format!("casebot-notice-{}.{}", group[0].id, group[0].attempts);
            return email::send(&self.config, &self.sign_ins, to, &name, &text).await;
        }
        let Some(hook) = self
            .config
            .notify
            .webhooks
            .iter()
            .find(|w| w.name == channel)
        else {
            return Delivery::Failed(format!("no channel {channel:?} is configured any more"));
        };
        let (url, secret) = match hook_secrets(hook) {
            Ok(s) => s,
            Err(e) => return Delivery::Failed(e),
        };
        let request = webhook::request(
            hook,
            &url,
            secret.as_deref(),
            &text,
            Utc::now().timestamp_millis(),
        );
        webhook::post(&self.client, hook, &request).await
    }

    /// The message for one person's group of notices, in their language.
    fn words(&self, group: &[ClaimedNotice]) -> webhook::Text {
        let first = &group[0];
        let lang = first
            .language
            .as_deref()
            .and_then(UiLang::parse)
            .or_else(|| UiLang::parse(&self.config.web.language))
            .unwrap_or(UiLang::En);
        let tz = self.sla.policies().time_zone;
        let name = first.display_name.clone().unwrap_or(first.person.clone());
        let mut lines = Vec::new();
        let mut notices = Vec::new();
        for n in group {
            let facts: Facts = serde_json::from_str(&n.facts).unwrap_or_default();
            let Some(topic) = Topic::parse(&n.topic) else {
                continue;
            };
            if lines.len() < LINES_PER_MESSAGE {
                lines.push(self.line(lang, tz, topic, &facts));
            }
            notices.push(serde_json::json!({
                // Stable per person and channel: what a receiver dedups on.
                "key": n.event_key,
                "topic": topic.as_str(),
                "case": facts.case.as_ref().map(|c| &c.key),
                "title": facts.case.as_ref().and_then(|c| c.title.as_deref()),
                "target": facts.target.map(|t| t.as_str()),
                "due": facts.due,
                "mailbox": facts.mailbox,
                "error": facts.error,
                "link": facts.case.as_ref().and_then(|c| self.link(&c.key)),
                "at": DateTime::from_timestamp(n.created_at, 0),
            }));
        }
        if group.len() > LINES_PER_MESSAGE {
            lines.push(tr!(
                lang,
                "notice-more",
                count = group.len() - LINES_PER_MESSAGE
            ));
        }
        webhook::Text {
            heading: tr!(lang, "notice-heading", count = group.len(), name = name),
            lines,
            notices,
            person: first.person.clone(),
        }
    }

    fn link(&self, case_key: &str) -> Option<String> {
        let base = self.config.notify.desk_url.trim_end_matches('/');
        (!base.is_empty()).then(|| format!("{base}/cases/{case_key}"))
    }

    fn line(&self, lang: UiLang, tz: chrono_tz::Tz, topic: Topic, facts: &Facts) -> String {
        let case = facts
            .case
            .as_ref()
            .map(|c| {
                let mut label = c.key.clone();
                if let Some(customer) = c.customer.as_deref().filter(|s| !s.is_empty()) {
                    label.push_str(&format!(" |{}|", short(customer, 30)));
                }
                if let Some(title) = c.title.as_deref().filter(|s| !s.is_empty()) {
                    label.push_str(&format!(" {}", short(title, 60)));
                }
                label
            })
            .unwrap_or_default();
        let target = facts
            .target
            .map(|t| lang.word("target", t.as_str()))
            .unwrap_or_default();
        let due = facts.due.map(|d| lang.datetime(d, tz)).unwrap_or_default();
        let error = short(facts.error.as_deref().unwrap_or(""), 200);
        let mut line = match topic {
            Topic::CustomerMail => tr!(lang, "notice-customer-mail", case = case),
            Topic::DraftWaiting => tr!(lang, "notice-draft-waiting", case = case),
            Topic::Assigned => tr!(
                lang,
                "notice-assigned",
                case = case,
                by = facts.by.clone().unwrap_or_default()
            ),
            Topic::SlaAtRisk => {
                tr!(
                    lang,
                    "notice-sla-at-risk",
                    case = case,
                    target = target,
                    due = due
                )
            }
            Topic::SlaBreached => {
                tr!(
                    lang,
                    "notice-sla-breached",
                    case = case,
                    target = target,
                    due = due
                )
            }
            Topic::SendFailed => tr!(lang, "notice-send-failed", case = case, error = error),
            Topic::MailboxNeedsLogin => tr!(
                lang,
                "notice-mailbox-needs-login",
                mailbox = facts.mailbox.clone().unwrap_or_default(),
                error = error
            ),
        };
        if let Some(link) = facts.case.as_ref().and_then(|c| self.link(&c.key)) {
            line.push_str(&format!(" {link}"));
        }
        line
    }
}

/// The channels' defaults of `config` with the people's `chosen` over them.
pub fn preferences(
    config: &Config,
    chosen: impl IntoIterator<Item = (String, Topic, String, bool)>,
) -> Preferences {
    let mut prefs = Preferences {
        defaults: config.notify.channel_defaults(),
        ..Preferences::default()
    };
    for (person, topic, channel, on) in chosen {
        prefs.chosen.insert((person, topic, channel), on);
    }
    prefs
}

/// One account's topic on one channel.
#[derive(Debug, Serialize)]
pub struct PrefRow {
    pub person: String,
    pub topic: &'static str,
    pub channel: String,
    pub on: bool,
    /// Chosen by the person (else the channel's default).
    pub chosen: bool,
}

/// Every account's topics on every configured channel.
pub fn pref_rows(
    config: &Config,
    people: &[String],
    chosen: &[(String, Topic, String, bool)],
) -> Vec<PrefRow> {
    let prefs = preferences(config, chosen.iter().cloned());
    let mut rows = Vec::new();
    for person in people {
        for topic in Topic::ALL {
            for channel in prefs.defaults.keys() {
                rows.push(PrefRow {
                    person: person.clone(),
                    topic: topic.as_str(),
                    channel: channel.clone(),
                    on: prefs.wants(person, topic, channel),
                    chosen: prefs
                        .chosen
                        .contains_key(&(person.clone(), topic, channel.clone())),
                });
            }
        }
    }
    rows
}

/// A hook's URL and signing secret from their environment variables.
fn hook_secrets(hook: &WebhookConfig) -> Result<(String, Option<String>), String> {
    let url = std::env::var(&hook.url_env)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            format!(
                "webhook {}: the environment variable {} (its URL) is not set",
                hook.name, hook.url_env
            )
        })?;
    let secret = if hook.secret_env.is_empty() {
        None
    } else {
        Some(
            std::env::var(&hook.secret_env)
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    format!(
                        "webhook {}: the environment variable {} (its signing secret) is not set",
                        hook.name, hook.secret_env
                    )
                })?,
        )
    };
    Ok((url, secret))
}

/// At most `max` characters of mail text, on one line.
fn short(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: String = one_line.chars().take(max).collect();
    if one_line.chars().count() > max {
        out.push('…');
    }
    out
}
