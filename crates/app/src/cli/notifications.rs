//! `casebot notifications`: what was told to whom, and who wants what.

use std::sync::Arc;

use anyhow::anyhow;
use clap::{Subcommand, ValueEnum};

use super::{Failure, fail, open_store, output};
use crate::config::Config;
use crate::notify::pref_rows;
use casebot_core::notify::Topic;

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// The newest notices: to whom, on which channel, sent or waiting or failed.
    List {
        /// Only this account's.
        #[arg(long)]
        person: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Which topics reach each account on each channel (their choices over
    /// the channels' defaults in `[notify]`).
    Prefs {
        #[arg(long)]
        person: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Turn a topic on or off for an account on a channel, or back to the default.
    Set {
        person: String,
        /// customer_mail, draft_waiting, assigned, sla_at_risk, sla_breached,
        /// send_failed, mailbox_needs_login, or `all`.
        topic: String,
        /// `email` or a webhook's name from `[[notify.webhook]]`.
        channel: String,
        choice: Choice,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Choice {
    On,
    Off,
    Default,
}

pub async fn run(config: &Arc<Config>, command: NotificationsCommand) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    match command {
        NotificationsCommand::List {
            person,
            limit,
            json,
        } => {
            let list = store
                .notices(person.as_deref(), limit.clamp(1, 10_000))
                .await?;
            if json {
                output::json(&list)?;
            } else {
                for n in &list {
                    println!(
                        "{:>6}  {:<12} {:<10} {:<20} {:<18} {:<8} {}{}",
                        n.id,
                        n.person,
                        n.channel,
                        n.topic,
                        n.case_key.as_deref().unwrap_or("-"),
                        n.state,
                        n.sent_at.as_deref().unwrap_or(&n.due_at),
                        n.last_error
                            .as_deref()
                            .map(|e| format!("  {}", output::short(e, 80)))
                            .unwrap_or_default(),
                    );
                }
            }
            Ok(0)
        }
        NotificationsCommand::Prefs { person, json } => {
            let people: Vec<String> = store
                .users()
                .await?
                .into_iter()
                .map(|u| u.name)
                .filter(|n| person.as_deref().is_none_or(|p| p == n))
                .collect();
            if let Some(p) = &person
                && people.is_empty()
            {
                return Err(fail(3, anyhow!("no desk account is named {p:?}")));
            }
            let rows = pref_rows(config, &people, &store.notify_choices().await?);
            if json {
                output::json(&rows)?;
            } else {
                for r in &rows {
                    println!(
                        "{:<12} {:<20} {:<10} {}{}",
                        r.person,
                        r.topic,
                        r.channel,
                        if r.on { "on" } else { "off" },
                        if r.chosen { "" } else { " (default)" }
                    );
                }
            }
            Ok(0)
        }
        NotificationsCommand::Set {
            person,
            topic,
            channel,
            choice,
            json,
        } => {
            let topics: Vec<Topic> = if topic == "all" {
                Topic::ALL.to_vec()
            } else {
                vec![Topic::parse(&topic).ok_or_else(|| {
                    fail(
                        2,
                        anyhow!(
                            "{topic:?} is not a topic ({}, or all)",
                            Topic::ALL.map(|t| t.as_str()).join(", ")
                        ),
                    )
                })?]
            };
            if !config.notify.channel_defaults().contains_key(&channel) {
                return Err(fail(
                    2,
                    anyhow!(
                        "{channel:?} is not a configured channel (email, or a [[notify.webhook]] name)"
                    ),
                ));
            }
            let on = match choice {
                Choice::On => Some(true),
                Choice::Off => Some(false),
                Choice::Default => None,
            };
            for t in &topics {
                if !store.set_notify_choice(&person, *t, &channel, on).await? {
                    return Err(fail(3, anyhow!("no desk account is named {person:?}")));
                }
            }
            if json {
                output::json(&serde_json::json!({
                    "person": person, "channel": channel,
                    "topics": topics.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                    "on": on,
                }))?;
            } else {
                eprintln!("{person}: {topic} on {channel} is now {choice:?}");
            }
            Ok(0)
        }
    }
}
