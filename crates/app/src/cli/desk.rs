//! The desk's people and service levels on the command line: `casebot sla`,
//! `casebot sla report`, `casebot user …` and `casebot assign`.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{Context, anyhow};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{Failure, fail, open_store, output};
use crate::config::Config;
use crate::i18n::UiLang;
use casebot_core::sla::{self, SlaPolicies};
use casebot_store::users::Role;

#[derive(Debug, Args)]
pub struct SlaArgs {
    #[command(subcommand)]
    pub command: Option<SlaCommand>,
    /// Evaluate as of this instant instead of now (RFC 3339, or
    /// `YYYY-MM-DD HH:MM` in the desk's time zone); mail after it is ignored.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Also list resolved and archived cases.
    #[arg(long)]
    pub all: bool,
    /// One JSON object per case, in a JSON array, most urgent first.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SlaCommand {
    /// The period's figures: cases opened and closed, first-response times,
    /// targets met per priority and per owner, week by week.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// First day (YYYY-MM-DD in the desk's time zone, or RFC 3339). Default:
    /// seven days before --to.
    #[arg(long)]
    pub from: Option<String>,
    /// Last day, included (YYYY-MM-DD), or an RFC 3339 instant (excluded).
    /// Default: today.
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// The figures as CSV, for a spreadsheet.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a desk account. The password is read from the terminal (asked
    /// twice), or from the first line of standard input when it is not one.
    Add {
        name: String,
        #[arg(long, value_parser = ["engineer", "lead"])]
        role: String,
        /// The address this person sends case mail from (ties their mail to them).
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        profile: ProfileArgs,
        /// The new account as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Change how a person signs their replies, or their address.
    Edit {
        name: String,
        /// The address this person sends case mail from.
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        profile: ProfileArgs,
        /// The account as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List the accounts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set a new password (ends the account's sessions).
    Passwd {
        name: String,
        /// The account as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Disable an account (ends its sessions); `--enable` undoes it.
    Disable {
        name: String,
        #[arg(long)]
        enable: bool,
        /// The account as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// How a person signs the replies of the cases they own.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The name customers read under a reply ("王伟 Wang Wei"); default: the account's name.
    #[arg(long)]
    pub display_name: Option<String>,
    /// A phone number, added under the signature.
    #[arg(long)]
    pub phone: Option<String>,
    /// A line under the name (repeat for several); default: `[drafting] signature_lines`.
    #[arg(long = "signature-line", value_name = "LINE")]
    pub signature_lines: Vec<String>,
    /// The language this person reads the web desk in; default: `[web] language`.
    #[arg(long, value_parser = super::word::<UiLang>())]
    pub language: Option<UiLang>,
}

impl ProfileArgs {
    fn profile(&self, email: Option<&str>) -> casebot_store::users::Profile {
        let clean = |s: &Option<String>| s.as_deref().map(str::trim).map(str::to_string);
        casebot_store::users::Profile {
            display_name: clean(&self.display_name),
            email: email.map(|e| e.trim().to_string()),
            phone: clean(&self.phone),
            signature_lines: (!self.signature_lines.is_empty())
                .then(|| self.signature_lines.clone()),
        }
    }
}

#[derive(Debug, Args)]
pub struct AssignArgs {
    /// Case number, thread key or row id.
    pub case: String,
    /// The new owner (a desk account's name, or an address).
    pub owner: String,
    #[command(flatten)]
    pub actor: super::drafts::Actor,
    /// The case, its new owner and who assigned it, as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn policies(config: &Config) -> Result<SlaPolicies, Failure> {
    SlaPolicies::from_config(&config.sla, &config.desk.time_zone, &config.base_dir)
        .map_err(|(key, message)| fail(2, anyhow!("{key}: {message}")))
}

/// Reads an instant: RFC 3339, `YYYY-MM-DD HH:MM[:SS]` or a date (its
/// midnight) in the desk's time zone.
pub fn parse_instant(text: &str, tz: Tz) -> Result<DateTime<Utc>, Failure> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(casebot_core::sla::calendar::local_midnight(date, tz));
    }
    let local = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| {
            fail(
                2,
                anyhow!("{text:?} is not a time (use 2026-11-23T10:00:00+08:00, \"2026-11-23 10:00\" or 2026-11-23)"),
            )
        })?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| fail(2, anyhow!("{text:?} does not exist in {tz}")))
}

pub async fn sla(config: &Config, args: SlaArgs) -> Result<u8, Failure> {
    let policies = policies(config)?;
    let tz = policies.time_zone;
    if let Some(SlaCommand::Report(report)) = args.command {
        return sla_report(config, &policies, report).await;
    }
    let now = match &args.now {
        Some(text) => parse_instant(text, tz)?,
        None => Utc::now(),
    };
    let store = open_store(config).await?;
    let timelines = store.sla_timelines(None).await?;
    let mut views: Vec<_> = timelines
        .iter()
        .filter_map(|t| sla::evaluate(t, &policies, Some(now)))
        .map(|s| s.view(&policies, now))
        .filter(|v| args.all || v.urgency != sla::Urgency::Closed)
        .collect();
    sla::sort_by_urgency(&mut views);
    if args.json {
        output::json(&views)?;
    } else {
        output::sla_table(&views, tz, now);
    }
    Ok(0)
}

async fn sla_report(
    config: &Config,
    policies: &SlaPolicies,
    args: ReportArgs,
) -> Result<u8, Failure> {
    let tz = policies.time_zone;
    let to = match &args.to {
        // A bare date is the last day of the period, included.
        Some(text) if NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").is_ok() => {
            parse_instant(text, tz)? + Duration::days(1)
        }
        Some(text) => parse_instant(text, tz)?,
        None => {
            let today = Utc::now().with_timezone(&tz).date_naive();
            parse_instant(&today.to_string(), tz)? + Duration::days(1)
        }
    };
    let from = match &args.from {
        Some(text) => parse_instant(text, tz)?,
        None => to - Duration::days(7),
    };
    if from >= to {
        return Err(fail(2, anyhow!("--from must be before --to")));
    }
    let store = open_store(config).await?;
    let cases: Vec<_> = store
        .sla_timelines(None)
        .await?
        .iter()
        .filter_map(|t| sla::evaluate(t, policies, Some(to)))
        .collect();
    let report = sla::report::report(&cases, policies, from, to);
    if args.json {
        output::json(&report)?;
    } else if args.csv {
        print!("{}", sla::report::to_csv(&report));
    } else {
        output::sla_report(&report);
    }
    Ok(0)
}

/// Reads a new password: twice with echo off on a terminal, else one line.
fn read_new_password(name: &str) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt_hidden(&format!("password for {name}: "))?;
        let again = prompt_hidden("again: ")?;
        if first != again {
            return Err(fail(4, anyhow!("the two passwords differ")));
        }
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("Cannot read the password")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    crate::web::auth::check_password_strength(&password).map_err(|m| fail(4, anyhow!(m)))?;
    Ok(password)
}

/// Prompts on the terminal and reads a line with its echo off (rpassword
/// restores the terminal even when the read fails).
fn prompt_hidden(prompt: &str) -> Result<String, Failure> {
    rpassword::prompt_password(prompt)
        .context("Cannot read the password")
        .map_err(Failure::from)
}

pub async fn user(config: &Config, command: UserCommand) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    match command {
        UserCommand::Edit {
            name,
            email,
            profile,
            json,
        } => {
            let mut user = store
                .set_profile(&name, &profile.profile(email.as_deref()))
                .await?
                .ok_or_else(|| fail(3, anyhow!("no user named {name:?}")))?;
            if let Some(lang) = profile.language {
                store.set_language(&name, Some(lang.tag())).await?;
                user.language = Some(lang.tag().to_string());
            }
            if email.is_some() {
                // Mail from this address is now this person's.
                crate::stages::sla::SlaSnapshots::invalidate(&store).await?;
            }
            if json {
                output::json(&user)?;
            }
            eprintln!("{} updated", user.name);
            Ok(0)
        }
        UserCommand::Add {
            name,
            role,
            email,
            profile,
            json,
        } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err(fail(
                    2,
                    anyhow!("a user name is 1 to 64 printable characters"),
                ));
            }
            let role =
                Role::parse(&role).ok_or_else(|| fail(2, anyhow!("unknown role {role:?}")))?;
            if store.user(&name).await?.is_some() {
                return Err(fail(4, anyhow!("a user named {name:?} already exists")));
            }
            let password = read_new_password(&name)?;
            let hash = crate::web::auth::hash_password(&password)?;
            let mut user = store
                .add_user(&name, email.as_deref().map(str::trim), role, &hash)
                .await?;
            if let Some(with_profile) = store.set_profile(&name, &profile.profile(None)).await? {
                user = with_profile;
            }
            if let Some(lang) = profile.language {
                store.set_language(&name, Some(lang.tag())).await?;
                user.language = Some(lang.tag().to_string());
            }
            if user.email.is_some() {
                // Mail from this address is now this person's.
                crate::stages::sla::SlaSnapshots::invalidate(&store).await?;
            }
            if json {
                output::json(&user)?;
            }
            eprintln!("added {} ({})", user.name, user.role.as_str());
            Ok(0)
        }
        UserCommand::List { json } => {
            let users = store.users().await?;
            if json {
                output::json(&users)?;
            } else {
                for u in &users {
                    println!(
                        "{:<20} {:<9} {:<30} {}",
                        u.name,
                        u.role.as_str(),
                        u.email.as_deref().unwrap_or("-"),
                        if u.disabled { "disabled" } else { "" }
                    );
                }
            }
            Ok(0)
        }
        UserCommand::Passwd { name, json } => {
            if store.user(&name).await?.is_none() {
                return Err(fail(3, anyhow!("no user named {name:?}")));
            }
            let password = read_new_password(&name)?;
            let hash = crate::web::auth::hash_password(&password)?;
            store.set_password(&name, &hash).await?;
            if json && let Some(user) = store.user(&name).await? {
                output::json(&user)?;
            }
            eprintln!("password of {name} changed; their sessions ended");
            Ok(0)
        }
        UserCommand::Disable { name, enable, json } => {
            if !store.set_user_disabled(&name, !enable).await? {
                return Err(fail(3, anyhow!("no user named {name:?}")));
            }
            if json && let Some(user) = store.user(&name).await? {
                output::json(&user)?;
            }
            eprintln!(
                "{name} {}",
                if enable {
                    "enabled"
                } else {
                    "disabled; their sessions ended"
                }
            );
            Ok(0)
        }
    }
}

pub async fn assign(config: &Config, args: AssignArgs) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    let case = store
        .find_case(&args.case)
        .await?
        .ok_or_else(|| fail(3, anyhow!("no case {:?} in the store", args.case)))?;
    let owner = args.owner.trim();
    if owner.is_empty() {
        return Err(fail(2, anyhow!("the owner is empty")));
    }
    // Cases go to desk accounts only: a made-up name would own it unseen.
    if store.user(owner).await?.is_none_or(|u| u.disabled) {
        return Err(fail(
            4,
            anyhow!("no desk account named {owner:?} (see `casebot user list`)"),
        ));
    }
    store.assign_owner(case.id, owner, &args.actor.name).await?;
    if args.json {
        output::json_line(&json!({"case": case.key, "owner": owner, "by": args.actor.name}))?;
    } else {
        eprintln!("case {}: owner {owner} (by {})", case.key, args.actor.name);
    }
    Ok(0)
}

#[derive(Debug, Args)]
pub struct NoteArgs {
    /// Case number, thread key or row id.
    pub case: String,
    /// The note. Without it, it is read from --file, or from standard input.
    pub text: Option<String>,
    /// Read the note from this file (`-` for standard input).
    #[arg(long, value_name = "PATH", conflicts_with = "text")]
    pub file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub actor: super::drafts::Actor,
    /// The note as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `casebot note`: an internal note on a case.
pub async fn note(config: &Config, args: NoteArgs) -> Result<u8, Failure> {
    let text = match (&args.text, &args.file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) if path.as_os_str() != "-" => std::fs::read_to_string(path)
            .with_context(|| format!("Cannot read {}", path.display()))?,
        _ => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("Cannot read the note from standard input")?;
            text
        }
    };
    let body = casebot_store::notes::checked_note(&text).map_err(|m| fail(4, anyhow!(m)))?;
    let store = open_store(config).await?;
    let case = store
        .find_case(&args.case)
        .await?
        .ok_or_else(|| fail(3, anyhow!("no case {:?} in the store", args.case)))?;
    let note = store.add_note(case.id, &args.actor.name, body).await?;
    if args.json {
        output::json(&note)?;
    }
    eprintln!(
        "case {}: internal note {} added by {}",
        case.key, note.id, note.author
    );
    Ok(0)
}
