//! The operator's commands: `backup`, `restore`, `export`, `retention`.
//!
//! SQLite is backed up online (`VACUUM INTO`) and restored by swapping in a
//! checked copy. PostgreSQL is backed up with `pg_dump` in its custom
//! format and checked with `pg_restore --list`; the password goes to those
//! tools in `PGPASSWORD`, never on a command line another user could read.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, anyhow};
use clap::Args;
use serde_json::json;

use super::{Failure, fail, open_store, output};
use crate::config::Config;
use crate::export::ExportFormat;
use casebot_store::backup::{self, Contents};
use casebot_store::{Backend, Store};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write (never overwritten): a SQLite database, or a
    /// pg_dump archive for PostgreSQL.
    pub path: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file `casebot backup` wrote.
    pub path: PathBuf,
    /// Replace a store that already holds cases.
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Case number, thread key or row id.
    pub key: String,
    #[arg(long, value_enum, default_value_t = ExportFormat::Zip)]
    pub format: ExportFormat,
    /// The file to write (never overwritten); default `<case>.mbox` or
    /// `<case>.zip` here.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Remove now; without it, only say what would go.
    #[arg(long)]
    pub apply: bool,
    /// Days a case has been closed; default `[retention] raw_mail_days`.
    #[arg(long)]
    pub days: Option<u32>,
    #[arg(long)]
    pub json: bool,
}

fn print_contents(what: &str, contents: &Contents) {
    eprintln!(
        "{what}: schema {}, {} cases, {} messages ({} raw mails), {} drafts, {} events, {} analyses, {} quarantined, {} accounts",
        contents.schema,
        contents.cases,
        contents.messages,
        contents.raw_messages,
        contents.drafts,
        contents.events,
        contents.analyses,
        contents.quarantine,
        contents.users
    );
}

pub async fn backup(config: &Config, args: BackupArgs) -> Result<u8, Failure> {
    if args.path.exists() {
        return Err(fail(
            4,
            anyhow!(
                "{} exists: a backup never overwrites a file",
                args.path.display()
            ),
        ));
    }
    let store = open_store(config).await?;
    let contents = match store.backend() {
        Backend::Sqlite => store.backup_sqlite(&args.path).await?,
        Backend::Postgres => {
            // The dump reads the snapshot the counts were taken in.
            let snapshot = store.pg_snapshot().await?;
            let (url, path, id) = (
                config.store.url.clone(),
                args.path.clone(),
                snapshot.id.clone(),
            );
            tokio::task::spawn_blocking(move || pg_dump(&url, &path, &id))
                .await
                .map_err(|e| fail(1, anyhow!("the pg_dump task failed: {e}")))??;
            let contents = snapshot.contents.clone();
            drop(snapshot);
            // The archive is whole if pg_restore can list it.
            pg_tool("pg_restore", &config.store.url, &["--list"], &args.path)?;
            contents
        }
    };
    if args.json {
        output::json(&json!({"path": args.path, "contents": contents}))?;
    }
    print_contents(&format!("backed up to {}", args.path.display()), &contents);
    Ok(0)
}

pub async fn restore(config: &Config, args: RestoreArgs) -> Result<u8, Failure> {
    let url = &config.store.url;
    match Backend::of_url(url).map_err(|e| fail(2, e))? {
        Backend::Sqlite => {
            let copy = backup::check_sqlite_copy(&args.path)
                .await
                .map_err(|e| fail(4, e))?;
            let file = backup::sqlite_file(url)
                .ok_or_else(|| fail(2, anyhow!("the store {url} is not a file")))?;
            if file.exists() {
                let store = open_store(config).await?;
                refuse_when_in_use(&store, args.force).await?;
                store.pool().close().await;
            }
            backup::restore_sqlite(&args.path, &file).await?;
            // Opening migrates an older copy to this build's schema.
            let restored = Store::open(url).await?.contents().await?;
            if args.json {
                output::json(&json!({"from": args.path, "copy": copy, "store": restored}))?;
            }
            print_contents(&format!("restored from {}", args.path.display()), &restored);
        }
        Backend::Postgres => {
            let listing =
                pg_tool("pg_restore", url, &["--list"], &args.path).map_err(|e| fail(4, e))?;
            if !listing.contains("_sqlx_migrations") {
                return Err(fail(
                    4,
                    anyhow!("{} is not a casebot store's dump", args.path.display()),
                ));
            }
            let store = open_store(config).await?;
            refuse_when_in_use(&store, args.force).await?;
            store.pool().close().await;
            pg_tool(
                "pg_restore",
                url,
                &[
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--exit-on-error",
                    "--single-transaction",
                ],
                &args.path,
            )?;
            let restored = Store::open(url).await?.contents().await?;
            if restored.schema > backup::newest_schema(Backend::Postgres) {
                return Err(fail(
                    4,
                    anyhow!(
                        "the restored store has schema {}, newer than this casebot knows",
                        restored.schema
                    ),
                ));
            }
            if args.json {
                output::json(&json!({"from": args.path, "store": restored}))?;
            }
            print_contents(&format!("restored from {}", args.path.display()), &restored);
        }
    }
    Ok(0)
}

/// A restore replaces everything: never under a running daemon, and over
/// cases only when asked to.
async fn refuse_when_in_use(store: &Store, force: bool) -> Result<(), Failure> {
    let now = casebot_store::now_ts();
    if let Some(live) = store.instances().await?.iter().find(|i| i.is_alive(now)) {
        return Err(fail(
            4,
            anyhow!(
                "casebot serve runs on this store ({} pid {}): stop it before a restore",
                live.host,
                live.pid
            ),
        ));
    }
    let held = store.contents().await?;
    if held.cases > 0 && !force {
        return Err(fail(
            4,
            anyhow!(
                "the store holds {} cases: --force replaces them with the backup",
                held.cases
            ),
        ));
    }
    Ok(())
}

pub async fn export(config: &Config, args: ExportArgs) -> Result<u8, Failure> {
    let store = open_store(config).await?;
    let path = args.output.unwrap_or_else(|| {
        let extension = match args.format {
            ExportFormat::Mbox => "mbox",
            ExportFormat::Zip => "zip",
        };
        // A key is a case number or T-…; nothing in it leaves the folder.
        let name: String = args
            .key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        PathBuf::from(format!("{name}.{extension}"))
    });
    let exported = crate::export::export_case(&store, &args.key, args.format, &path)
        .await?
        .ok_or_else(|| fail(3, anyhow!("no case {:?} in the store", args.key)))?;
    if args.json {
        output::json(&exported)?;
    }
    eprintln!(
        "case {}: {} mails{} and {} attachments written to {} ({} bytes)",
        exported.case,
        exported.mails,
        if exported.removed_by_retention > 0 {
            format!(
                " ({} removed by retention, listed only)",
                exported.removed_by_retention
            )
        } else {
            String::new()
        },
        exported.attachments,
        exported.path.display(),
        exported.bytes
    );
    Ok(0)
}

pub async fn retention(config: &Config, args: RetentionArgs) -> Result<u8, Failure> {
    let days = args.days.unwrap_or(config.retention.raw_mail_days);
    if days == 0 {
        return Err(fail(
            2,
            anyhow!("retention is off: set [retention] raw_mail_days, or pass --days"),
        ));
    }
    let store = open_store(config).await?;
    let cutoff = casebot_store::now_ts() - i64::from(days) * 86_400;
    let report = store.retention(cutoff, args.apply).await?;
    if args.json {
        output::json(&report)?;
    }
    eprintln!(
        "{} {} raw mails ({} bytes) of {} cases closed more than {days} days ago{}",
        if report.applied {
            "removed"
        } else {
            "would remove"
        },
        report.mails,
        report.bytes,
        report.cases.len(),
        if report.applied {
            ""
        } else {
            " (a dry run: --apply removes them)"
        }
    );
    Ok(0)
}

/// `pg_dump` of the store at `url` into `path` (custom format), reading
/// the exported `snapshot`.
fn pg_dump(url: &str, path: &Path, snapshot: &str) -> Result<(), Failure> {
    let (dbname, password) = split_password(url)?;
    let mut command = Command::new("pg_dump");
    command
        .args([
            "--format=custom",
            "--no-owner",
            "--snapshot",
            snapshot,
            "--file",
        ])
        .arg(path)
        .arg("--dbname")
        .arg(dbname);
    run_pg(command, password, "pg_dump").map(|_| ())
}

/// `tool ARGS… PATH` against the store at `url` (pg_restore).
fn pg_tool(tool: &str, url: &str, args: &[&str], path: &Path) -> anyhow::Result<String> {
    let (dbname, password) = split_password(url)?;
    let mut command = Command::new(tool);
    command.args(args);
    if !args.contains(&"--list") {
        command.arg("--dbname").arg(dbname);
    }
    command.arg(path);
    run_pg(command, password, tool).map_err(|f| f.error)
}

fn run_pg(mut command: Command, password: Option<String>, tool: &str) -> Result<String, Failure> {
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let out = command.output().map_err(|e| {
        fail(
            1,
            anyhow!(
                "cannot run {tool} ({e}): install the PostgreSQL client (Debian: postgresql-client)"
            ),
        )
    })?;
    if !out.status.success() {
        return Err(fail(
            1,
            anyhow!(
                "{tool} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The URL without its password, and the password.
fn split_password(url: &str) -> anyhow::Result<(String, Option<String>)> {
    let mut parsed = url::Url::parse(url).context("Invalid store URL")?;
    let password = parsed.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    let _ = parsed.set_password(None);
    Ok((parsed.to_string(), password))
}
