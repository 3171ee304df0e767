//! Leases: "exactly one instance at a time does this" (watches a mailbox
//! folder, runs the drafting stage), for any number of `casebot serve`
//! processes sharing one store.
//!
//! On PostgreSQL a lease is a session advisory lock held on a connection of
//! its own: when its holder dies, even by SIGKILL, the server drops the
//! connection and with it the lock, and the next instance that asks gets
//! it. On SQLite (instances on one machine) it is an `flock` on a file
//! beside the store, which the kernel releases the same way. A lease that
//! cannot be confirmed (the server restarted, the connection broke) is lost:
//! its holder stops the work and asks again like everyone else.

use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use sqlx::Connection;

use super::{Backend, Store, now_ts};

/// How long an instance's row stays alive without a heartbeat: a dead
/// instance on another host counts for this long (one on this host stops
/// counting at once, see [`instance::is_dead`]).
pub const LIVE_SECS: i64 = 5;
/// Rows of instances gone for this long are no longer listed, and an
/// instance starting deletes them.
const FORGET_SECS: i64 = 24 * 3600;

/// A running (or lately running) `casebot serve`, as the store knows it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct InstanceRow {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub started_at: i64,
    pub seen_at: i64,
    /// The leases it holds, one name per line.
    pub leases: String,
}

/// An instance for `casebot instances`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstanceView {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub started_at: String,
    pub seen_at: String,
    pub seen_secs_ago: i64,
    pub alive: bool,
    pub leases: Vec<String>,
}

impl InstanceRow {
    /// Whether it still runs, as far as the store and this host can tell.
    pub fn is_alive(&self, now: i64) -> bool {
        now - self.seen_at <= LIVE_SECS && !instance::is_dead(&self.id)
    }

    pub fn view(&self, now: i64) -> InstanceView {
        InstanceView {
            id: self.id.clone(),
            host: self.host.clone(),
            pid: self.pid,
            started_at: super::ts_to_rfc3339(self.started_at),
            seen_at: super::ts_to_rfc3339(self.seen_at),
            seen_secs_ago: (now - self.seen_at).max(0),
            alive: self.is_alive(now),
            leases: self.leases.lines().map(str::to_string).collect(),
        }
    }
}

impl Store {
    /// Confirms this instance (and the leases it holds) and returns every
    /// instance's row, this one's included.
    pub async fn heartbeat(&self, leases: &[String]) -> Result<Vec<InstanceRow>> {
        let now = now_ts();
        sqlx::query(
            "INSERT INTO instances (id, host, pid, started_at, seen_at, leases) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, leases = excluded.leases",
        )
        .bind(instance::id())
        .bind(instance::host())
        .bind(i64::from(std::process::id()))
        .bind(instance::started_at())
        .bind(now)
        .bind(leases.join("\n"))
        .execute(&self.pool)
        .await
        .context("Cannot record this instance's heartbeat")?;
        self.instances().await
    }

    /// Deletes the rows of instances gone for a day (an instance does this
    /// once, when it starts).
    pub async fn forget_old_instances(&self) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE seen_at < $1")
            .bind(now_ts() - FORGET_SECS)
            .execute(&self.pool)
            .await
            .context("Cannot forget instances gone for a day")?;
        Ok(())
    }

    /// Every instance that confirmed itself within the last day, by start.
    pub async fn instances(&self) -> Result<Vec<InstanceRow>> {
        sqlx::query_as(
            "SELECT id, host, pid, started_at, seen_at, leases FROM instances \
             WHERE seen_at >= $1 ORDER BY started_at, id",
        )
        .bind(now_ts() - FORGET_SECS)
        .fetch_all(&self.pool)
        .await
        .context("Cannot list the instances")
    }

    /// Removes this instance's row (on a clean stop).
    pub async fn forget_this_instance(&self) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(instance::id())
            .execute(&self.pool)
            .await
            .context("Cannot remove this instance's row")?;
        Ok(())
    }
}

/// One lease of this instance's, held or wanted. On PostgreSQL it keeps its
/// connection while it waits, so a standby asks on one connection instead
/// of opening one per attempt.
pub struct Lease {
    store: Store,
    name: String,
    /// The connection the advisory lock lives on (PostgreSQL).
    conn: Option<AnyConnection>,
    held: bool,
    /// The lock file while held (SQLite).
    file: Option<std::fs::File>,
}

/// The advisory-lock key of a lease name: stable across instances and builds.
fn key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("casebot lease {name}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("eight bytes"))
}

impl Store {
    /// The lease `name`, not yet held: [`Lease::hold`] takes it.
    pub fn lease(&self, name: &str) -> Lease {
        Lease {
            store: self.clone(),
            name: name.to_string(),
            conn: None,
            held: false,
            file: None,
        }
    }
}

impl Lease {
    /// Whether this instance holds the lease now: confirms it if held, else
    /// asks for it. A lease that cannot be confirmed (the connection broke,
    /// the server restarted) is lost, and the error says why; the next call
    /// asks again like any other instance.
    pub async fn hold(&mut self) -> Result<bool> {
        let outcome = self.try_hold().await;
        if outcome.is_err() {
            self.release();
        }
        outcome
    }

    async fn try_hold(&mut self) -> Result<bool> {
        match (self.store.backend, self.store.lease_place.clone()) {
            // An in-memory SQLite store: one process, nothing to share.
            (_, None) => self.held = true,
            (Backend::Postgres, Some(url)) => {
                let conn = match &mut self.conn {
                    Some(conn) => conn,
                    None => self.conn.insert(
                        AnyConnection::connect(&url)
                            .await
                            .context("Cannot connect to ask for a lease")?,
                    ),
                };
                if self.held {
                    tokio::time::timeout(Duration::from_secs(5), conn.ping())
                        .await
                        .map_err(|_| anyhow::anyhow!("the store did not answer within 5 s"))?
                        .with_context(|| format!("the lease {} is lost", self.name))?;
                } else {
                    self.held = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                        .bind(key(&self.name))
                        .fetch_one(conn)
                        .await
                        .context("Cannot ask for a lease")?;
                }
            }
            // The kernel keeps an flock for as long as the file is open.
            (Backend::Sqlite, Some(path)) if !self.held => {
                let path = format!("{path}.lease-{:016x}", key(&self.name) as u64);
                self.file = tokio::task::spawn_blocking(move || super::flock(path.as_ref(), false))
                    .await
                    .context("The lease task failed")??;
                self.held = self.file.is_some();
            }
            (Backend::Sqlite, Some(_)) => {}
        }
        Ok(self.held)
    }

    /// Gives the lease up (dropping the lease does too).
    pub fn release(&mut self) {
        self.held = false;
        self.conn = None;
        self.file = None;
    }
}

/// Who claims a job: this process, as `host:pid:start`, so that an instance
/// on the same host can tell a dead claimant's job from a live one's at once
/// (on another host, the claim's lease has to run out).
pub mod instance {
    use std::sync::LazyLock;
    use std::time::SystemTime;

    static START: LazyLock<std::time::Duration> = LazyLock::new(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
    });
    static ID: LazyLock<String> =
        LazyLock::new(|| format!("{}:{}:{}", host(), std::process::id(), START.as_nanos()));

    /// This process's claimant name.
    pub fn id() -> &'static str {
        &ID
    }

    /// When this process started, in Unix seconds.
    pub fn started_at() -> i64 {
        START.as_secs() as i64
    }

    /// Whether `owner` is known to be gone: a process of this host that no
    /// longer runs.
    pub fn is_dead(owner: &str) -> bool {
        let mut parts = owner.rsplitn(3, ':');
        let (_start, pid, host) = (parts.next(), parts.next(), parts.next());
        let Some(pid) = pid.and_then(|p| p.parse::<i32>().ok()) else {
            return false;
        };
        owner != id() && host == Some(self::host().as_str()) && !process_alive(pid)
    }

    /// This machine's name.
    pub fn host() -> String {
        hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into())
    }

    fn process_alive(pid: i32) -> bool {
        // SAFETY: kill with signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn this_process_is_alive_and_a_finished_one_is_dead() {
            assert!(!super::is_dead(super::id()));
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            child.wait().unwrap();
            let host = super::host();
            assert!(super::is_dead(&format!("{host}:{pid}:1")));
            assert!(
                !super::is_dead(&format!("elsewhere:{pid}:1")),
                "another host's claim waits for its lease"
            );
        }
    }
}
