//! A throwaway PostgreSQL cluster for `casebot bench instances` and the
//! fault tests: `scripts/pg-cluster.sh` (the one the test command uses),
//! built into the binary so that the benchmark runs from anywhere. initdb in
//! a temporary folder under /tmp, a free loopback port, fsync off; stopped
//! and removed when dropped.

use std::process::Command;

use anyhow::{Context, Result, bail};

const SCRIPT: &str = include_str!("../../../scripts/pg-cluster.sh");

pub struct Cluster {
    dir: tempfile::TempDir,
    /// `postgres://casebot@127.0.0.1:PORT`: add `/DATABASE`.
    pub url: String,
}

impl Cluster {
    pub fn start() -> Result<Cluster> {
        // As root the server runs as `postgres`, which must reach the folder.
        let dir = tempfile::Builder::new()
            .prefix("casebot-pg")
            .tempdir_in("/tmp")
            .context("Cannot make a folder for PostgreSQL in /tmp")?;
        let port = super::dovecot::free_port()?.to_string();
        let path = dir.path().to_string_lossy().into_owned();
        let url = script(&["start", &path, &port])?;
        Ok(Cluster { dir, url })
    }

    /// Stops the server (fast) and starts it again on the same port.
    pub fn restart(&self) -> Result<()> {
        script(&["restart", &self.dir.path().to_string_lossy()]).map(drop)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = script(&["stop", &self.dir.path().to_string_lossy()]);
    }
}

/// Runs the script with `args`; its output's first line.
fn script(args: &[&str]) -> Result<String> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(SCRIPT)
        .arg("pg-cluster.sh")
        .args(args)
        .output()
        .context("Cannot run bash for the PostgreSQL cluster")?;
    if !out.status.success() {
        bail!(
            "the throwaway PostgreSQL cluster failed to {}: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
