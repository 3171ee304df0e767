//! The store as an operator keeps it: backups, restores, what a store
//! holds, and retention.
//!
//! A SQLite backup is `VACUUM INTO`: one read transaction copies the whole
//! database, so the copy is consistent while the daemon goes on writing
//! (WAL readers never block the writer). A copy is checked before it is
//! trusted: SQLite's integrity and foreign-key checks, and a schema no newer
//! than this build knows (an older one is migrated when the store opens).
//! PostgreSQL is backed up with its own tools; see the CLI's `backup`.

use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use sqlx::ConnectOptions;
use sqlx::any::AnyConnectOptions;

use super::{Backend, Store, now_ts};

/// How much a store holds, and at which schema: what a backup, a restore
/// and a check report, and what a test compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contents {
    /// The newest migration applied.
    pub schema: i64,
    pub cases: i64,
    pub messages: i64,
    pub raw_messages: i64,
    pub drafts: i64,
    pub events: i64,
    pub analyses: i64,
    pub quarantine: i64,
    pub users: i64,
}

/// The newest schema this build can open (its last migration).
pub fn newest_schema(backend: Backend) -> i64 {
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("../../migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("../../migrations/postgres"),
    };
    migrator.iter().map(|m| m.version).max().unwrap_or_default()
}

async fn contents_of(conn: &mut sqlx::AnyConnection) -> Result<Contents> {
    let mut count = async |table: &str| -> Result<i64> {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *conn)
            .await
            .with_context(|| format!("Cannot count the {table}"))
    };
    Ok(Contents {
        cases: count("cases").await?,
        messages: count("messages").await?,
        raw_messages: count("raw_messages").await?,
        drafts: count("drafts").await?,
        events: count("events").await?,
        analyses: count("analyses").await?,
        quarantine: count("quarantine").await?,
        users: count("users").await?,
        schema: sqlx::query_scalar(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&mut *conn)
        .await
        .context("Cannot read the schema version (is this a casebot store?)")?,
    })
}

impl Store {
    /// What this store holds. The counts are over whole tables: for an
    /// operator's command, never for a page or a scrape.
    pub async fn contents(&self) -> Result<Contents> {
        let mut conn = self.pool().acquire().await?;
        contents_of(&mut conn).await
    }

    /// Copies a SQLite store to `dest` (a new file) while others write.
    pub async fn backup_sqlite(&self, dest: &Path) -> Result<Contents> {
        if self.backend() != Backend::Sqlite {
            bail!("backup_sqlite on a PostgreSQL store");
        }
        if dest.exists() {
            bail!(
                "{} exists: a backup never overwrites a file",
                dest.display()
            );
        }
        let target = dest
            .to_str()
            .with_context(|| format!("{} is not a UTF-8 path", dest.display()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(self.pool())
            .await
            .with_context(|| format!("Cannot write the backup to {}", dest.display()))?;
        check_sqlite_copy(dest).await
    }

    /// Removes the raw bytes of the mails of cases closed (resolved or
    /// archived) and unchanged since `closed_before` (Unix seconds); the
    /// parsed messages, analyses, drafts and events stay. With `apply`
    /// false it only reports what it would remove.
    pub async fn retention(&self, closed_before: i64, apply: bool) -> Result<Retention> {
        // A raw mail goes only when every message made from it is in such
        // a case.
        let eligible = "r.purged_at IS NULL \
             AND EXISTS (SELECT 1 FROM messages m WHERE m.raw_id = r.id) \
             AND NOT EXISTS (SELECT 1 FROM messages m JOIN cases c ON c.id = m.case_id \
                 WHERE m.raw_id = r.id \
                 AND NOT (c.status IN ('resolved', 'archived') AND c.updated_at < $1))";
        let mut tx = self.begin_write().await?;
        let (mails, bytes): (i64, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(r.size), 0) AS BIGINT) FROM raw_messages r WHERE {eligible}"
        ))
        .bind(closed_before)
        .fetch_one(&mut *tx)
        .await?;
        let cases: Vec<(i64, String)> = sqlx::query_as(&format!(
            "SELECT DISTINCT c.id, c.key FROM cases c JOIN messages m ON m.case_id = c.id \
             JOIN raw_messages r ON r.id = m.raw_id WHERE {eligible} ORDER BY c.id"
        ))
        .bind(closed_before)
        .fetch_all(&mut *tx)
        .await?;
        if apply && mails > 0 {
            let now = now_ts();
            for (case_row, _) in &cases {
                let removed: i64 = sqlx::query_scalar(&format!(
                    "SELECT COUNT(DISTINCT r.id) FROM raw_messages r JOIN messages m ON m.raw_id = r.id \
                     WHERE m.case_id = $2 AND {eligible}"
                ))
                .bind(closed_before)
                .bind(case_row)
                .fetch_one(&mut *tx)
                .await?;
                crate::events::event(
                    &mut tx,
                    Some(*case_row),
                    None,
                    "retention_removed_raw_mail",
                    serde_json::json!({"mails": removed}),
                )
                .await?;
            }
            sqlx::query(&format!(
                "UPDATE raw_messages SET bytes = $2, purged_at = $3 WHERE id IN \
                 (SELECT r.id FROM raw_messages r WHERE {eligible})"
            ))
            .bind(closed_before)
            .bind(Vec::<u8>::new())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Retention {
            applied: apply,
            mails,
            bytes,
            cases: cases.into_iter().map(|(_, key)| key).collect(),
        })
    }
}

/// What retention removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Serialize)]
pub struct Retention {
    pub applied: bool,
    /// Raw mails whose bytes go.
    pub mails: i64,
    pub bytes: i64,
    /// The cases they belong to.
    pub cases: Vec<String>,
}

/// Opens a SQLite store file read-only and checks it: integrity, foreign
/// keys, and a schema this build can open.
pub async fn check_sqlite_copy(path: &Path) -> Result<Contents> {
    sqlx::any::install_default_drivers();
    if !path.is_file() {
        bail!("{} is not a file", path.display());
    }
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut conn = AnyConnectOptions::from_str(&url)
        .with_context(|| format!("Invalid path {}", path.display()))?
        .connect()
        .await
        .with_context(|| format!("{} is not a SQLite database", path.display()))?;
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .with_context(|| format!("{} is not a SQLite database", path.display()))?;
    if integrity != ["ok"] {
        bail!(
            "{} is damaged: {}",
            path.display(),
            integrity.into_iter().take(5).collect::<Vec<_>>().join("; ")
        );
    }
    let dangling: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pragma_foreign_key_check")
        .fetch_one(&mut conn)
        .await?;
    if dangling > 0 {
        bail!(
            "{}: {dangling} rows point at rows that do not exist",
            path.display()
        );
    }
    let contents = contents_of(&mut conn).await?;
    let newest = newest_schema(Backend::Sqlite);
    if contents.schema > newest {
        bail!(
            "{} has schema {}, newer than this casebot knows ({newest}): restore it with the casebot that wrote it",
            path.display(),
            contents.schema
        );
    }
    Ok(contents)
}

/// Puts a checked copy in place of the SQLite store file `store`: written
/// beside it first, then renamed over it, so a crash leaves either the old
/// store or the new one. The store's WAL files go with the old store.
pub async fn restore_sqlite(copy: &Path, store: &Path) -> Result<Contents> {
    let contents = check_sqlite_copy(copy).await?;
    let mut staging = store.as_os_str().to_owned();
    staging.push(".restoring");
    let staging = std::path::PathBuf::from(staging);
    if let Some(parent) = store.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("Cannot create {}", parent.display()))?;
    }
    std::fs::copy(copy, &staging)
        .with_context(|| format!("Cannot copy {} to {}", copy.display(), staging.display()))?;
    std::fs::File::open(&staging)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("Cannot sync {}", staging.display()))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = store.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("Cannot remove {}", side.display()));
            }
        }
    }
    std::fs::rename(&staging, store)
        .with_context(|| format!("Cannot move the copy to {}", store.display()))?;
    Ok(contents)
}

/// One mail of a case, for an export: what the mbox `From ` line needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseMail {
    pub message_row: i64,
    pub raw_row: i64,
    pub message_id: String,
    pub from_address: Option<String>,
    pub date_utc: i64,
    /// When retention removed its bytes; `None` while they are kept.
    pub purged_at: Option<i64>,
}

impl Store {
    /// A case's mails in thread order, without their bytes (see
    /// [`Store::raw_bytes`]): an export streams them one at a time.
    pub async fn case_mails(&self, case_row: i64) -> Result<Vec<CaseMail>> {
        Ok(sqlx::query_as(
            "SELECT m.id AS message_row, r.id AS raw_row, m.message_id, m.from_address, m.date_utc, \
             r.purged_at FROM messages m JOIN raw_messages r ON r.id = m.raw_id \
             WHERE m.case_id = $1 ORDER BY m.date_utc, m.id",
        )
        .bind(case_row)
        .fetch_all(self.pool())
        .await?)
    }

    /// One raw mail's bytes, exactly as they arrived.
    pub async fn raw_bytes(&self, raw_row: i64) -> Result<Vec<u8>> {
        Ok(
            sqlx::query_scalar("SELECT bytes FROM raw_messages WHERE id = $1")
                .bind(raw_row)
                .fetch_one(self.pool())
                .await?,
        )
    }
}

impl Store {
    /// Every event of a case, oldest first (an export's audit trail).
    pub async fn case_events(&self, case_row: i64) -> Result<Vec<crate::cases::EventView>> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT at, kind, detail FROM events WHERE case_id = $1 ORDER BY id")
                .bind(case_row)
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(at, kind, detail)| crate::cases::EventView {
                at: crate::ts_to_rfc3339(at),
                kind,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
            })
            .collect())
    }
}

/// The file a `sqlite://` store URL names (`None` for memory or another backend).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// A PostgreSQL snapshot held open for `pg_dump --snapshot`: the dump and
/// the counts of [`Contents`] then describe the same instant, however much
/// the daemon writes meanwhile.
pub struct PgSnapshot {
    /// Kept open until the dump has read everything.
    _tx: sqlx::Transaction<'static, sqlx::Any>,
    pub id: String,
    pub contents: Contents,
}

impl Store {
    /// Exports a repeatable-read snapshot of a PostgreSQL store.
    pub async fn pg_snapshot(&self) -> Result<PgSnapshot> {
        if self.backend() != Backend::Postgres {
            bail!("pg_snapshot on a SQLite store");
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .context("Cannot start a snapshot")?;
        let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut *tx)
            .await
            .context("Cannot export a snapshot")?;
        let contents = contents_of(&mut tx).await?;
        Ok(PgSnapshot {
            _tx: tx,
            id,
            contents,
        })
    }
}
