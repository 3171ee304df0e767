//! The case store: the bottom of the pipeline, and the only module that
//! speaks SQL.
//!
//! It runs on sqlx's `Any` driver with runtime queries, so one SQL text
//! serves SQLite and PostgreSQL (`$N` placeholders, integer times, JSON as
//! text), and a build never needs a live database. Each backend has its own
//! migrations (`migrations/sqlite`, `migrations/postgres`) defining the same
//! tables. SQLite runs in WAL mode with a busy timeout. Write transactions
//! hold one store-wide lock (`BEGIN IMMEDIATE`, or an advisory lock on
//! PostgreSQL), so writers queue instead of failing, and the event log's
//! ids commit in order on both backends.

pub mod analyses;
pub mod backup;
pub mod cases;
pub mod config;
pub mod drafts;
pub mod events;
pub mod imap;
pub mod knowledge;
pub mod lease;
pub mod messages;
pub mod metrics;
pub mod notes;
pub mod notify;
pub mod oauth;
pub mod quarantine;
pub mod regroup;
pub mod search;
pub mod sla;
mod sql;
mod terms;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use config::{DB_ENV, StoreConfig};

/// A nullable column holding a domain word (`messages.signal`): read with
/// the same check as a required one, so an unknown word is an error, never
/// a silent `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptionalWord<T>(Option<T>);

impl<T> OptionalWord<T> {
    pub fn get(self) -> Option<T> {
        self.0
    }
}

impl<T> TryFrom<Option<String>> for OptionalWord<T>
where
    T: TryFrom<String, Error = casebot_core::domain::UnknownWord>,
{
    type Error = casebot_core::domain::UnknownWord;

    fn try_from(text: Option<String>) -> Result<Self, Self::Error> {
        text.map(T::try_from).transpose().map(OptionalWord)
    }
}

/// Which database the store URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a store URL names, or why it names none.
    pub fn of_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!(
                "unsupported store URL {url:?}: expected sqlite://PATH or postgres://USER@HOST:PORT/DATABASE"
            )
        }
    }
}

/// The key of the PostgreSQL advisory lock that every write transaction
/// holds (see [`Store::begin_write`]); "casebot" in ASCII.
const WRITE_LOCK_KEY: i64 = 0x0063_6173_6562_6f74;

/// A handle on the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Where leases are taken: the PostgreSQL URL (a lease holds a
    /// connection of its own) or the SQLite file (a lock file beside it).
    lease_place: Option<std::sync::Arc<str>>,
}

impl Store {
    /// Opens the store at `url` (creating the SQLite file or the PostgreSQL
    /// database if missing) and runs the migrations.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let store = match backend {
            Backend::Sqlite => Self::open_sqlite(url).await?,
            Backend::Postgres => Self::open_postgres(url).await?,
        };
        store
            .index_unindexed_store()
            .await
            .context("Cannot build the case search index")?;
        Ok(store)
    }

    async fn open_sqlite(url: &str) -> Result<Self> {
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
        sqlx::migrate!("../../migrations/sqlite")
            .run(&pool)
            .await
            .context("Cannot migrate the store")?;
        Ok(Self {
            pool,
            backend: Backend::Sqlite,
            lease_place: path.map(|p| p.display().to_string().into()),
        })
    }

    async fn open_postgres(url: &str) -> Result<Self> {
        use sqlx::migrate::MigrateDatabase;
        let shown = redact_password(url);
        // Several instances may start at once: a lost race to create the
        // database is no error, as long as it exists afterwards.
        if !sqlx::Any::database_exists(url).await.unwrap_or(false)
            && let Err(e) = sqlx::Any::create_database(url).await
            && !sqlx::Any::database_exists(url).await.unwrap_or(false)
        {
            return Err(e).with_context(|| format!("Cannot create the store database at {shown}"));
        }
        let options = AnyConnectOptions::from_str(url)
            .with_context(|| format!("Invalid store URL {shown:?}"))?;
        let pool = AnyPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            // A server restart leaves broken connections in the pool: test
            // each before use, so the next query gets a fresh one.
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .with_context(|| format!("Cannot open the store at {shown}"))?;
        // sqlx's migrator holds an advisory lock while it runs, so instances
        // starting together apply each migration once.
        sqlx::migrate!("../../migrations/postgres")
            .run(&pool)
            .await
            .context("Cannot migrate the store")?;
        Ok(Self {
            pool,
            backend: Backend::Postgres,
            lease_place: Some(url.into()),
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Where the store is, for messages: the SQLite file or the
    /// PostgreSQL URL without its password.
    pub fn location(&self) -> String {
        match self.lease_place.as_deref() {
            Some(place) => redact_password(place),
            None => "(in memory)".into(),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction that holds the store's write lock from
    /// the start. Writers queue instead of failing on a lock upgrade, and
    /// on PostgreSQL (an advisory lock held until commit) the event log's ids
    /// become visible in the order they were given: a stage that follows
    /// the log by id can never step over an event that commits late.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.backend {
            Backend::Sqlite => self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .context("Cannot start a store transaction"),
            Backend::Postgres => {
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .context("Cannot start a store transaction")?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK_KEY)
                    .execute(&mut *tx)
                    .await
                    .context("Cannot take the store's write lock")?;
                Ok(tx)
            }
        }
    }

    /// Starts a transaction for claiming queued jobs: on PostgreSQL it does
    /// not take the write lock (claims lock their rows with `FOR UPDATE
    /// SKIP LOCKED`, see [`Store::skip_locked`]); on SQLite every writer
    /// holds the one lock anyway.
    pub async fn begin_claim(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.backend {
            Backend::Sqlite => self.begin_write().await,
            Backend::Postgres => self
                .pool
                .begin()
                .await
                .context("Cannot start a store transaction"),
        }
    }

    /// The clause that makes a claiming SELECT skip rows another instance
    /// is claiming at that moment (empty on SQLite, which has one writer).
    pub fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// Whether `error` says the store cannot take writes for now (disk full,
/// I/O error, connection lost, server shutting down, pool exhausted), as
/// opposed to refusing this data: the caller should keep what it has and
/// try again later rather than set anything aside.
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let Some(e) = cause.downcast_ref::<sqlx::Error>() else {
            return cause.downcast_ref::<std::io::Error>().is_some();
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                // SQLite: BUSY 5, LOCKED 6, IOERR 10, FULL 13, CANTOPEN 14
                // (extended codes keep the primary one in the low byte).
                // PostgreSQL: classes 08 (connection), 53 (resources:
                // disk full), 57 (operator intervention: shutdown).
                if code.len() == 5 {
                    ["08", "53", "57"].iter().any(|c| code.starts_with(c))
                } else {
                    code.parse::<i32>()
                        .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 13 | 14))
                }
            }
            _ => false,
        }
    })
}

/// The URL with its password replaced, for messages and logs.
pub fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// Holds an exclusive `flock` on `<store>.lock` until dropped.
async fn lock_file(store: &Path) -> Result<std::fs::File> {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    tokio::task::spawn_blocking(move || flock(&path, true))
        .await
        .context("The lock task failed")?
        .map(|file| file.expect("a blocking flock waits until it has the lock"))
}

/// An exclusive lock (`flock` on Unix) on `path`, created if missing.
/// Without `wait`, `None` when another process holds it.
fn flock(path: &Path, wait: bool) -> Result<Option<std::fs::File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("Cannot open the lock file {}", path.display()))?;
    if wait {
        file.lock()
            .with_context(|| format!("Cannot lock {}", path.display()))?;
        return Ok(Some(file));
    }
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("Cannot lock {}", path.display()))
        }
    }
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
