//! Integration tests: one binary, a module per area. Each test gets its own
//! throwaway store: a SQLite file, or with `CASEBOT_TEST_POSTGRES` set to a
//! server's URL (`postgres://USER@HOST:PORT`, as `scripts/test.sh` starts
//! one), a database of its own on that server. CLI tests run the real
//! `casebot` binary.

mod abuse;
mod admin;
mod analysis;
mod analyze_cli;
mod browser;
mod cli;
mod corpus;
mod desk_files;
mod doctor;
mod drafting;
mod faults;
mod fixtures;
mod formats;
mod fuzz_regressions;
mod imap;
mod log_corpus;
mod mailstack;
mod notify;
mod oauth;
mod operations;
mod package;
mod real_mail;
mod regroup;
mod rules;
mod search;
mod threads;

use std::path::{Path, PathBuf};
use std::process::Output;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// The shipped example threads (`examples/`), also the tests' threads.
pub fn example(rel: &str) -> PathBuf {
    repo().join("examples").join(rel)
}

/// The URL of a test's store, named by a path in the test's own folder:
/// that SQLite file, or a PostgreSQL database named after the path, which
/// the store creates when first opened.
pub fn store_url(db: &Path) -> String {
    match std::env::var("CASEBOT_TEST_POSTGRES") {
        Ok(server) if !server.is_empty() => {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            db.hash(&mut hasher);
            format!("{}/t{:016x}", server.trim_end_matches('/'), hasher.finish())
        }
        _ => format!("sqlite://{}", db.display()),
    }
}

/// Runs SQL statements on the store at `url` (what a test cannot do
/// through casebot: age a case, forget an index).
pub fn execute_sql(url: &str, statements: &[&str]) {
    sqlx::any::install_default_drivers();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::AnyPool::connect(url).await.unwrap();
        for sql in statements {
            sqlx::query(sql)
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        pool.close().await;
    });
}

/// Runs `casebot` with `args` against the test store named by `db` (see
/// [`store_url`]), from `cwd`.
pub fn casebot(db: &Path, cwd: &Path, args: &[&str]) -> Output {
    casebot_at(&store_url(db), cwd, args)
}

/// Runs `casebot` with `args` against the store at `url`, from `cwd`.
pub fn casebot_at(url: &str, cwd: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_casebot"))
        .args(args)
        .current_dir(cwd)
        .env("CASEBOT_DB", url)
        .env_remove("CASEBOT_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("casebot runs")
}

/// Copies a folder tree (a rules folder to break in a test).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON lines of an `import --json` run.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// A plain HTTP/1.1 GET on loopback: the status and the whole answer
/// (headers lower-cased, then the body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    http_get_with(port, path, "")
}

/// [`http_get`] with extra header lines (each ending in `\r\n`).
pub fn http_get_with(port: u16, path: &str, headers: &str) -> (u16, String) {
    http_request(port, &format!("GET {path}"), headers, "")
}

/// One HTTP/1.1 request (`"GET /path"`, `"POST /path"`) with extra header
/// lines and a body: the status and the whole answer (headers lower-cased).
pub fn http_request(port: u16, line: &str, headers: &str, body: &str) -> (u16, String) {
    let (status, answer) = http_request_raw(port, line, headers, body);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (status, format!("{}\r\n\r\n{body}", head.to_lowercase()))
}

/// [`http_request`] with the answer as sent (a cookie's value keeps its case).
pub fn http_request_raw(port: u16, line: &str, headers: &str, body: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let length = if body.is_empty() {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    write!(
        stream,
        "{line} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}{length}Connection: close\r\n\r\n{body}"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// Waits up to `secs` for `done`, polling every 200 ms; else fails, showing
/// `log` (a daemon's log).
pub fn wait_until(secs: u64, what: &str, log: impl Fn() -> String, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; serve log:\n{}",
            log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A `/metrics` answer (head and body) checked by Prometheus's own parser
/// and linter, `promtool check metrics`, and for the names the operations
/// guide documents.
pub fn check_metrics(answer: &str) {
    use std::io::Write as _;
    let body = answer.split_once("\r\n\r\n").map_or(answer, |(_, b)| b);
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    match promtool {
        Ok(mut child) => {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(body.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool check metrics: {}{}\n{body}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is missing in CI: {e}"
            );
            eprintln!(
                "WARNING: promtool (Debian package prometheus) is missing: /metrics is not checked by Prometheus's parser ({e})"
            );
        }
    }
    for name in [
        "casebot_build_info",
        "casebot_mails_total",
        "casebot_drafts_total",
        "casebot_analyses_total",
        "casebot_filing_duration_seconds_bucket",
        "casebot_analysis_duration_seconds_bucket",
        "casebot_draft_duration_seconds_count",
        "casebot_send_duration_seconds_count",
        "casebot_imap_idle_to_filed_seconds_count",
        "casebot_open_cases",
        "casebot_sla_open_cases",
        "casebot_queue_length",
        "casebot_quarantined",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    ] {
        assert!(
            body.lines().any(|l| l.starts_with(name)),
            "{name} missing from /metrics:\n{body}"
        );
    }
}

/// The samples of one metric in a `/metrics` body: (labels, value).
pub fn samples(answer: &str, name: &str) -> Vec<(String, f64)> {
    answer
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?;
            if !(labels.is_empty() || labels.starts_with('{')) {
                return None;
            }
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Runs `casebot` with `args` against the store at `url`, typing `password`
/// at its prompt (a `user add` or `user passwd`).
pub fn casebot_with_password(url: &str, cwd: &Path, args: &[&str], password: &str) -> Output {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_casebot"))
        .args(args)
        .current_dir(cwd)
        .env("CASEBOT_DB", url)
        .env_remove("CASEBOT_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("casebot runs");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().expect("casebot ends")
}
