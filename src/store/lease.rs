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

use super::{Backend, Store};

/// A held lease; dropping it releases it.
pub struct Lease {
    name: String,
    hold: Hold,
}

enum Hold {
    Postgres(AnyConnection),
    File(#[allow(dead_code)] std::fs::File),
    /// An in-memory SQLite store: one process, nothing to share.
    Alone,
}

/// The advisory-lock key of a lease name: stable across instances and builds.
fn key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("casebot lease {name}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("eight bytes"))
}

impl Store {
    /// Takes the lease `name` if no other instance holds it.
    pub async fn try_lease(&self, name: &str) -> Result<Option<Lease>> {
        let hold = match (self.backend, self.lease_place.as_deref()) {
            (_, None) => Some(Hold::Alone),
            (Backend::Postgres, Some(url)) => {
                let mut conn = AnyConnection::connect(url)
                    .await
                    .context("Cannot connect to take a lease")?;
                let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(key(name))
                    .fetch_one(&mut conn)
                    .await
                    .context("Cannot ask for a lease")?;
                if taken {
                    Some(Hold::Postgres(conn))
                } else {
                    let _ = conn.close().await;
                    None
                }
            }
            (Backend::Sqlite, Some(path)) => {
                let path = format!("{path}.lease-{:016x}", key(name) as u64);
                tokio::task::spawn_blocking(move || try_lock_file(&path))
                    .await
                    .context("The lease task failed")??
                    .map(Hold::File)
            }
        };
        Ok(hold.map(|hold| Lease {
            name: name.to_string(),
            hold,
        }))
    }
}

impl Lease {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Confirms the lease is still held; an error means it is lost.
    pub async fn confirm(&mut self) -> Result<()> {
        match &mut self.hold {
            Hold::Postgres(conn) => tokio::time::timeout(Duration::from_secs(5), conn.ping())
                .await
                .map_err(|_| anyhow::anyhow!("the store did not answer within 5 s"))?
                .with_context(|| format!("the lease {} is lost", self.name)),
            Hold::File(_) | Hold::Alone => Ok(()),
        }
    }
}

/// An exclusive, non-blocking `flock` on `path` (created if missing).
fn try_lock_file(path: &str) -> Result<Option<std::fs::File>> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("Cannot open the lease file {path}"))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(file));
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(error).with_context(|| format!("Cannot lock {path}"))
    }
}

/// Who claims a job: this process, as `host:pid:start`, so that an instance
/// on the same host can tell a dead claimant's job from a live one's at once
/// (on another host, the claim's lease has to run out).
pub mod instance {
    use std::sync::LazyLock;
    use std::time::SystemTime;

    static ID: LazyLock<String> = LazyLock::new(|| {
        let start = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{}:{}:{start}", this_host(), std::process::id())
    });

    /// This process's claimant name.
    pub fn id() -> &'static str {
        &ID
    }

    /// Whether `owner` is known to be gone: a process of this host that no
    /// longer runs.
    pub fn is_dead(owner: &str) -> bool {
        let mut parts = owner.rsplitn(3, ':');
        let (_start, pid, host) = (parts.next(), parts.next(), parts.next());
        let Some(pid) = pid.and_then(|p| p.parse::<i32>().ok()) else {
            return false;
        };
        owner != id() && host == Some(this_host().as_str()) && !process_alive(pid)
    }

    fn this_host() -> String {
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
            let host = super::this_host();
            assert!(super::is_dead(&format!("{host}:{pid}:1")));
            assert!(
                !super::is_dead(&format!("elsewhere:{pid}:1")),
                "another host's claim waits for its lease"
            );
        }
    }
}
