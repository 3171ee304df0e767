//! `casebot bench abuse`: what an outsider can send, against a running
//! daemon. Each input is timed with the peak memory of the process that
//! handles it: a cab bomb and a zip bomb analysed (`casebot analyze`), a mail
//! of 650,000 one-line attachments imported, then 500 bad logins in parallel
//! and 200 half-sent requests held open against `casebot serve`, while a
//! logged-in engineer keeps loading the case list: that user's latency is
//! the figure the desk is judged by.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::dovecot::free_port;
use crate::imap::quantile;

const PASSWORD: &str = "bench-abuse-password";

/// One hostile input and what handling it cost.
#[derive(Debug, Serialize)]
pub struct Attack {
    pub name: String,
    pub seconds: f64,
    pub peak_rss_mb: f64,
    pub outcome: String,
}

#[derive(Debug, Serialize)]
pub struct AbuseFigures {
    pub attacks: Vec<Attack>,
    /// The logged-in engineer's case list during the login flood and the
    /// half-sent requests.
    pub desk_requests: usize,
    pub desk_p50_ms: f64,
    pub desk_p99_ms: f64,
    /// The daemon's peak resident memory over the whole run.
    pub daemon_peak_rss_mb: f64,
}

impl AbuseFigures {
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{:<34} {:>9} {:>12}  OUTCOME\n",
            "ATTACK", "SECONDS", "PEAK RSS MiB"
        );
        for a in &self.attacks {
            out.push_str(&format!(
                "{:<34} {:>9.2} {:>12.1}  {}\n",
                a.name, a.seconds, a.peak_rss_mb, a.outcome
            ));
        }
        out.push_str(&format!(
            "logged-in case list during the flood: {} requests, p50 {:.1} ms, p99 {:.1} ms; daemon peak RSS {:.1} MiB",
            self.desk_requests, self.desk_p50_ms, self.desk_p99_ms, self.daemon_peak_rss_mb
        ));
        out
    }
}

/// Runs `casebot` with `args`; its wall time, peak RSS and exit status.
/// The peak is the child's own high-water mark (`VmHWM`), sampled while it
/// runs: the rusage of a forked child would also count what this process
/// held when it forked.
fn measured(exe: &Path, dir: &Path, db: &str, args: &[&str]) -> Result<(f64, f64, i32, String)> {
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(args)
        .current_dir(dir)
        .env("CASEBOT_DB", db)
        .env_remove("CASEBOT_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let mut peak: f64 = 0.0;
    let status = loop {
        peak = peak.max(peak_rss_of_pid(child.id()));
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = reader.join().unwrap_or_default();
    Ok((
        started.elapsed().as_secs_f64(),
        peak,
        status.code().unwrap_or(-1),
        out,
    ))
}

/// A cabinet of one MSZIP folder: `blocks` copies of one 32 KiB block of
/// `line` repeated, and the files as (name, offset in the folder, size).
/// The tests build their cabs with it too.
pub fn mszip_cab(line: &str, blocks: u32, files: &[(String, u32, u32)]) -> Vec<u8> {
    let text: Vec<u8> = line.bytes().cycle().take(0x8000).collect();
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = deflate.write_all(&text);
    let mut block = b"CK".to_vec();
    block.extend(deflate.finish().unwrap_or_default());
    let names: usize = files.iter().map(|(n, _, _)| 16 + n.len() + 1).sum();
    let (files_at, data_at) = (44u32, 44 + names as u32);
    let mut out = b"MSCF\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    out.extend_from_slice(&files_at.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 3, 1, 1, 0]);
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&data_at.to_le_bytes());
    out.extend_from_slice(&(blocks as u16).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    for (name, start, size) in files {
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(name.as_bytes());
        out.push(0);
    }
    for _ in 0..blocks {
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(block.len() as u16).to_le_bytes());
        out.extend_from_slice(&0x8000u16.to_le_bytes());
        out.extend_from_slice(&block);
    }
    out
}

/// `files` files spread over a folder of `blocks` blocks of log lines.
fn bomb_cab(blocks: u32, files: u32) -> Vec<u8> {
    let step = blocks * 0x8000 / files.max(1);
    let entries: Vec<(String, u32, u32)> = (0..files)
        .map(|i| (format!("logs/CBS_{i:05}.log"), i * step, step.min(4096)))
        .collect();
    mszip_cab(
        "2026-03-01 10:00:00, Info CBS Loaded servicing stack\n",
        blocks,
        &entries,
    )
}

/// A zip whose one member unpacks to `mb` MiB of zeros.
fn bomb_zip(mb: usize) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    w.start_file("CBS/CBS.log", options)?;
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..mb {
        w.write_all(&zeros)?;
    }
    w.finish()?;
    Ok(out.into_inner())
}

/// A 60 MB mail of 650,000 one-line attachments.
fn many_attachments() -> Vec<u8> {
    let mut raw = String::from(
        "From: Li Lei <li.lei@example.cn>\r\nTo: support@example.com\r\n\
         Subject: [案例号: CAS-99999-ABUSE1 ] % |P2|ACME| many parts % 初次响应\r\n\
         Message-ID: <abuse-many@example.cn>\r\nDate: Sun, 1 Mar 2026 09:00:00 +0800\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nlogs attached\r\n",
    );
    for i in 0..650_000 {
        raw.push_str(&format!(
            "--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"f{i}.txt\"\r\n\r\nx\r\n"
        ));
    }
    raw.push_str("--b--\r\n");
    raw.into_bytes()
}

/// One HTTP/1.1 request on loopback; the status and the whole answer.
fn request(port: u16, head: &str, body: &str) -> Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{head}\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, answer))
}

/// Logs in as `name`; the session cookie.
fn login(port: u16, name: &str, password: &str) -> Result<String> {
    let (_, page) = request(port, "GET /login HTTP/1.1", "")?;
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("no login form")?
        .to_string();
    let form = format!("csrf={token}&next=%2Fcases&name={name}&password={password}");
    let head = format!(
        "POST /login HTTP/1.1\r\nCookie: casebot_login={token}\r\nContent-Type: application/x-www-form-urlencoded"
    );
    let (_, answer) = request(port, &head, &form)?;
    answer
        .lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .find(|c| c.starts_with("casebot_session="))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
        .with_context(|| format!("the login as {name} failed"))
}

fn peak_rss_of_pid(pid: u32) -> f64 {
    crate::peak_rss_mb_of(&pid.to_string())
}

/// Runs every attack; see the module's text.
pub fn abuse(progress: impl Fn(&str)) -> Result<AbuseFigures> {
    let exe: PathBuf = std::env::current_exe().context("Cannot find this program's path")?;
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite://{}", dir.path().join("abuse.db").display());
    let mut attacks = Vec::new();

    for (name, file, bytes) in [
        (
            "cab: 20,000 files in one folder",
            "many.cab",
            bomb_cab(2500, 20_000),
        ),
        (
            "cab: 2 GiB folder in a few MB",
            "big.cab",
            bomb_cab(0xffff, 20),
        ),
        ("zip: 4 GiB of zeros", "bomb.zip", bomb_zip(4096)?),
    ] {
        progress(name);
        let path = dir.path().join(file);
        std::fs::write(&path, bytes)?;
        let (seconds, rss, code, out) = measured(
            &exe,
            dir.path(),
            &db,
            &["analyze", path.to_str().unwrap_or(""), "--json"],
        )?;
        let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let items = report["items"].as_array().cloned().unwrap_or_default();
        let reason = items
            .iter()
            .find_map(|i| i["reason"].as_str().map(str::to_string))
            .unwrap_or_else(|| {
                let scanned = items.iter().filter(|i| i["status"] == "scanned").count();
                let unpacked = items.first().and_then(|i| i["bytes"].as_u64()).unwrap_or(0);
                format!("{scanned} items read, {} MiB decompressed", unpacked >> 20)
            });
        attacks.push(Attack {
            name: name.into(),
            seconds,
            peak_rss_mb: rss,
            outcome: format!("exit {code}: {reason}"),
        });
    }

    progress("650,000 attachments");
    let mails = dir.path().join("mails");
    std::fs::create_dir(&mails)?;
    std::fs::write(mails.join("many.eml"), many_attachments())?;
    let (seconds, rss, code, _) = measured(
        &exe,
        dir.path(),
        &db,
        &["import", mails.to_str().unwrap_or("")],
    )?;
    attacks.push(Attack {
        name: "mail: 650,000 attachments".into(),
        seconds,
        peak_rss_mb: rss,
        outcome: format!("exit {code}"),
    });

    // The desk: an account, then the daemon.
    let mut add = Command::new(&exe)
        .args(["user", "add", "bench.lead", "--role", "lead"])
        .current_dir(dir.path())
        .env("CASEBOT_DB", &db)
        .env_remove("CASEBOT_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = add.stdin.take() {
        writeln!(stdin, "{PASSWORD}")?;
    }
    add.wait()?;
    let port = free_port()?;
    let mut serve = Command::new(&exe)
        .arg("serve")
        .current_dir(dir.path())
        .env("CASEBOT_DB", &db)
        .env_remove("CASEBOT_CONFIG")
        .env("CASEBOT_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = flood(port, serve.id(), progress);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let _ = serve.wait();
    let (desk, peak) = result?;
    let (n, mut ms) = (desk.len(), desk);
    ms.sort_by(f64::total_cmp);
    Ok(AbuseFigures {
        attacks,
        desk_requests: n,
        desk_p50_ms: quantile(&ms, 0.5),
        desk_p99_ms: quantile(&ms, 0.99),
        daemon_peak_rss_mb: peak,
    })
}

/// 500 bad logins in parallel and 200 half-sent requests, while a
/// logged-in engineer loads the case list; that engineer's latencies (ms)
/// and the daemon's peak RSS.
fn flood(port: u16, pid: u32, progress: impl Fn(&str)) -> Result<(Vec<f64>, f64)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while request(port, "GET /healthz HTTP/1.1", "")
        .map(|r| r.0)
        .unwrap_or(0)
        != 200
    {
        if Instant::now() > deadline {
            bail!("the daemon's web desk did not come up");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let session = login(port, "bench.lead", PASSWORD)?;
    progress("500 bad logins, 200 half-sent requests");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let desk = {
        let (stop, session) = (stop.clone(), session.clone());
        std::thread::spawn(move || {
            let mut ms = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let head = format!("GET /cases HTTP/1.1\r\nCookie: {session}");
                if matches!(request(port, &head, ""), Ok((200, _))) {
                    ms.push(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
            ms
        })
    };
    let slow: Vec<std::net::TcpStream> = (0..200)
        .filter_map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.write_all(b"GET /cases HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .ok()?;
            Some(s)
        })
        .collect();
    let logins: Vec<_> = (0..500)
        .map(|i| {
            std::thread::spawn(move || {
                let name = if i % 2 == 0 {
                    "bench.lead".to_string()
                } else {
                    format!("nobody{i}")
                };
                login(port, &name, "wrong-password").is_ok()
            })
        })
        .collect();
    let admitted = logins
        .into_iter()
        .filter_map(|t| t.join().ok())
        .filter(|ok| *ok)
        .count();
    if admitted > 0 {
        bail!("{admitted} logins with a wrong password succeeded");
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let ms = desk
        .join()
        .map_err(|_| anyhow::anyhow!("the desk client panicked"))?;
    drop(slow);
    Ok((ms, peak_rss_of_pid(pid)))
}
