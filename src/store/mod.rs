//! The case store: the bottom of the pipeline, and the only module that
//! speaks SQL.
//!
//! It runs on sqlx's `Any` driver with runtime queries, so one SQL text
//! serves SQLite now and PostgreSQL later (`$N` placeholders, INTEGER times,
//! JSON as text), and a build never needs a live database. SQLite runs in WAL
//! mode with a busy timeout; write transactions start with `BEGIN IMMEDIATE`
//! so that two writers queue on the lock instead of failing on upgrade.

pub mod analyses;
pub mod cases;
pub mod drafts;
pub mod imap;
pub mod knowledge;
pub mod messages;
pub mod metrics;
pub mod quarantine;
pub mod sla;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Which database the store URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
}

/// A handle on the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating if needed) the store at `url` and runs the migrations.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            anyhow::bail!(
                "unsupported store URL {url:?}: expected sqlite://PATH (PostgreSQL is planned)"
            )
        };
        let (url, path) = prepare_sqlite_url(url)?;
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("Invalid store URL {url:?}"))?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers (the CLI, the web desk) work while the
                    // daemon writes; NORMAL sync is safe in WAL mode.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("Cannot open the store at {url}"))?;
        // Two processes opening a new store at once (the daemon and a
        // command) would both apply the same migration; SQLite has no
        // advisory lock, so a lock file beside the store serialises them.
        let _lock = match &path {
            Some(p) => Some(lock_file(p).await?),
            None => None,
        };
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .context("Cannot migrate the store")?;
        let store = Self { pool, backend };
        store
            .index_unindexed_store()
            .await
            .context("Cannot build the case search index")?;
        Ok(store)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction that holds the write lock from the start.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let statement = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
        };
        self.pool
            .begin_with(statement)
            .await
            .context("Cannot start a store transaction")
    }
}

/// Holds an exclusive `flock` on `<store>.lock` until dropped.
async fn lock_file(store: &Path) -> Result<std::fs::File> {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    tokio::task::spawn_blocking(move || -> Result<std::fs::File> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("Cannot open the lock file {}", path.display()))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("Cannot lock {}", path.display()));
        }
        Ok(file)
    })
    .await
    .context("The lock task failed")?
}

/// Adds `mode=rwc` and creates the parent folder, so a fresh machine needs
/// nothing prepared. Also returns the file's path (none for `:memory:`).
fn prepare_sqlite_url(url: &str) -> Result<(String, Option<std::path::PathBuf>)> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path != ":memory:"
        && !path.is_empty()
        && let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("Cannot create the store folder {}", parent.display()))?;
    }
    let mut query = query.to_string();
    if !query.contains("mode=") {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("mode=rwc");
    }
    let file = (path != ":memory:" && !path.is_empty()).then(|| std::path::PathBuf::from(path));
    Ok((format!("sqlite://{path}?{query}"), file))
}

/// Now, as stored: Unix seconds.
pub fn now_ts() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Unix seconds as an RFC 3339 UTC string, for output.
pub fn ts_to_rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
