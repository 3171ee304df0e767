//! What an outsider can send to a running daemon: logins under every
//! spelling of a name, a forged log line in a name, and the secrets the
//! daemon was given, which its log must never show.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};

use super::{stderr, store_url};

/// A POST of a form on loopback, from the desk's own origin.
pub(super) fn http_post(port: u16, path: &str, cookie: &str, form: &str) -> (u16, String) {
    let headers = format!(
        "Origin: http://127.0.0.1:{port}\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n"
    );
    super::http_request(port, &format!("POST {path}"), &headers, form)
}

/// `casebot serve` on `url` with the web desk on `port` and `env`, its log
/// in `log`; waits until the desk answers.
pub(super) fn serve(
    dir: &std::path::Path,
    url: &str,
    port: u16,
    env: &[(&str, &str)],
    log: &std::path::Path,
) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_casebot"));
    command
        .arg("serve")
        .current_dir(dir)
        .env("CASEBOT_DB", url)
        .env_remove("CASEBOT_CONFIG")
        .env_remove("RUST_LOG")
        .env("CASEBOT_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command.spawn().unwrap();
    let read_log = || std::fs::read_to_string(log).unwrap_or_default();
    super::wait_until(30, "the web desk", read_log, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && super::http_get(port, "/healthz").0 == 200
    });
    child
}

/// `casebot user add lead --role lead` with `password` typed at its prompt.
pub(super) fn add_lead(dir: &std::path::Path, url: &str, password: &str) {
    let args = ["user", "add", "lead", "--role", "lead"];
    let out = super::casebot_with_password(url, dir, &args, password);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Logs `name` in through the login form; returns the session cookie's value.
pub(super) fn login(port: u16, name: &str, password: &str) -> String {
    let (_, page) = super::http_get(port, "/login");
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the login form's token")
        .to_string();
    let form = format!(
        "csrf={token}&next=%2Fcases&name={}&password={}",
        form_escape(name),
        form_escape(password)
    );
    let (status, answer) = super::http_request_raw(
        port,
        "POST /login",
        &format!(
            "Origin: http://127.0.0.1:{port}\r\nCookie: casebot_login={token}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n"
        ),
        &form,
    );
    assert_eq!(status, 303, "{answer}");
    answer
        .split("casebot_session=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("a session cookie")
        .to_string()
}

pub(super) fn form_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The store URL with a password in it: PostgreSQL's test cluster trusts
/// loopback and ignores it; SQLite has none to give.
fn url_with_password(url: &str, password: &str) -> String {
    match url.strip_prefix("postgres://") {
        Some(rest) => match rest.split_once('@') {
            Some((user, host)) => format!("postgres://{user}:{password}@{host}"),
            None => format!("postgres://postgres:{password}@{rest}"),
        },
        None => url.to_string(),
    }
}

#[test]
fn logins_are_normalised_throttled_and_logged_escaped_and_the_log_keeps_no_secret() {
    const DB_SECRET: &str = "db-secret-7f3a";
    const METRICS_SECRET: &str = "metrics-secret-91bc";
    const PORTAL_SECRET: &str = "portal-secret-c402";
    const PASSWORD: &str = "correct horse battery";
    let dir = tempfile::tempdir().unwrap();
    let url = url_with_password(&store_url(&dir.path().join("a.db")), DB_SECRET);
    add_lead(dir.path(), &url, PASSWORD);

    let port = super::mailstack::free_port();
    let log_path = dir.path().join("serve.log");
    let secrets = [
        ("CASEBOT_METRICS_TOKEN", METRICS_SECRET),
        ("CASEBOT_PORTAL_SECRET", PORTAL_SECRET),
    ];
    let serve = serve(dir.path(), &url, port, &secrets, &log_path);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let (_, page) = super::http_get(port, "/login");
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the login form's token")
        .to_string();
    let cookie = format!("casebot_login={token}");
    let login = |name: &str, password: &str| {
        let form = format!(
            "csrf={token}&next=%2Fcases&name={}&password={}",
            form_escape(name),
            form_escape(password)
        );
        http_post(port, "/login", &cookie, &form)
    };

    for _ in 0..5 {
        assert_eq!(login("lead", "wrong guess").0, 401);
    }
    // Every other spelling of the name is the same, locked name.
    for name in [" lead", "lead\t", "\u{3000}lead", "ｌｅａｄ", "LEAD"] {
        let (status, answer) = login(name, PASSWORD);
        assert_eq!(status, 401, "{name:?}: {answer}");
        // The desk speaks its default language, Chinese, before a login.
        assert!(answer.contains("登录失败次数过多"), "{name:?}: {answer}");
    }
    // A name that tries to forge a log line.
    let forged = "x\n2026-01-01T00:00:00.000000Z  INFO casebot: FORGED admin logged in\u{1b}[2J";
    assert_eq!(login(forged, "wrong").0, 401);

    // SAFETY: signalling our own child.
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let status = serve.wait_with_output().unwrap().status;
    assert!(status.success(), "{}", log());
    let log = log();
    assert!(log.contains("login refused"), "{log}");
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00") || l.contains("\u{1b}[2J")),
        "a forged line or escape sequence reached the log:\n{log}"
    );
    for secret in [DB_SECRET, METRICS_SECRET, PORTAL_SECRET, PASSWORD] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn half_sent_requests_are_cut_off_and_the_desk_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = super::mailstack::free_port();
    let log_path = dir.path().join("serve.log");
    let url = store_url(&dir.path().join("s.db"));
    let serve = serve(dir.path(), &url, port, &[], &log_path);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    // 200 clients that send half a request and then nothing.
    let slow: Vec<std::net::TcpStream> = (0..200)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // Everyone else is still served.
    assert_eq!(super::http_get(port, "/healthz").0, 200);
    // The half-sent requests are closed by the server (its header timeout
    // is 10 s; a read here waits up to 30 s for the close).
    let mut closed = 0;
    for mut s in slow {
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(_) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            Err(_) => {}
        }
    }
    assert_eq!(closed, 200, "half-sent requests left open");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    assert!(
        serve.wait_with_output().unwrap().status.success(),
        "{}",
        log()
    );
}

/// A case of 130 mails, one of them with a 300 KB body: every view of it is
/// a page of the thread, never the whole.
#[test]
fn a_huge_case_is_paged_and_every_view_of_it_stays_bounded() {
    const PASSWORD: &str = "paging password";
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(&dir.path().join("p.db"));
    let mut mbox = Vec::new();
    for i in 0..130u32 {
        let body = if i == 7 {
            "日志行 0x800f0922\n".repeat(20_000)
        } else {
            format!("第 {i} 封邮件。\n")
        };
        write!(
            mbox,
            "From customer@example.cn Mon Mar  6 10:00:00 2023\n\
             From: Customer <customer@example.cn>\nTo: support@example.com\n\
             Subject: [案例号: CAS-30001-AB12CD ] % |P2|EXAMPLE| KB5023696 fails\n\
             Date: Mon, 6 Mar 2023 {:02}:{:02}:00 +0800\nMessage-ID: <paging-{i}@example.cn>\n\
             MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{body}\n",
            8 + i / 60,
            i % 60
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("case.mbox"), &mbox).unwrap();
    let casebot = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_casebot"))
            .args(args)
            .current_dir(dir.path())
            .env("CASEBOT_DB", &url)
            .env_remove("CASEBOT_CONFIG")
            .output()
            .unwrap()
    };
    let out = casebot(&["import", "case.mbox"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let show = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["show", "CAS-30001-AB12CD", "--json"];
        all.extend_from_slice(args);
        let out = casebot(&all);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // The default is the newest page of 50.
    let newest = show(&[]);
    assert_eq!(newest["thread"]["messages_total"], 130);
    assert_eq!(newest["thread"]["pages"], 3);
    assert_eq!(newest["thread"]["page"], 3);
    let messages = newest["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 30);
    assert_eq!(
        messages.last().unwrap()["message_id"],
        "paging-129@example.cn"
    );
    // A page size over the limit is held to 200; the huge body is cut.
    let all = show(&["--page", "1", "--per-page", "100000"]);
    assert_eq!(all["thread"]["per_page"], 200);
    let messages = all["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 130);
    let huge = messages[7]["new_text"].as_str().unwrap();
    assert!(huge.len() < 70_000, "{} bytes", huge.len());
    assert!(
        huge.ends_with("more bytes in the raw mail]"),
        "{}",
        &huge[huge.len() - 80..]
    );

    // The web desk and its API page the same way.
    add_lead(dir.path(), &url, PASSWORD);
    let port = super::mailstack::free_port();
    let log_path = dir.path().join("serve.log");
    let serve = serve(dir.path(), &url, port, &[], &log_path);
    let session = login(port, "lead", PASSWORD);
    let get = |path: &str| {
        super::http_get_with(
            port,
            path,
            &format!("Cookie: casebot_session={session}\r\n"),
        )
    };
    let (status, answer) = get("/api/cases/CAS-30001-AB12CD?page=2&per_page=20");
    assert_eq!(status, 200, "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["thread"]["page"], 2);
    assert_eq!(body["thread"]["pages"], 7);
    let ids: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 20);
    assert_eq!(
        (ids[0], ids[19]),
        ("paging-20@example.cn", "paging-39@example.cn")
    );
    let (status, html) = get("/cases/CAS-30001-AB12CD");
    assert_eq!(status, 200);
    assert!(html.contains("第 3 / 3 页"), "no pager");
    assert!(html.contains("/cases/CAS-30001-AB12CD?page=2&amp;per_page=50"));
    assert!(html.len() < 2 << 20, "{} bytes of HTML", html.len());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    serve.wait_with_output().unwrap();
}
