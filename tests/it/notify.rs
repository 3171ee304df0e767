//! Notifications through real receivers: smtp-sink for mail, and an HTTP
//! server this test starts on loopback standing in for the WeCom, DingTalk,
//! Feishu and Teams webhooks and a generic one (each answered the way its
//! product answers). The daemon is stopped and started again in the middle:
//! every notice still arrives once, on every channel its person wants.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::abuse::{add_lead, http_post, login, serve};
use super::mailstack::{SmtpSink, free_port};
use super::{
    casebot_at, casebot_with_password, http_get_with, stderr, stdout, store_url, wait_until,
};

/// One request the receiver took.
#[derive(Debug, Clone)]
struct Hit {
    /// Path and query.
    target: String,
    headers: HashMap<String, String>,
    body: String,
    /// The status it was answered with.
    status: u16,
}

impl Hit {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{}: {e}", self.body))
    }
}

/// An HTTP/1.1 server on loopback that records every request and answers
/// as the product behind its path would.
struct Receiver {
    port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let shared = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let hits = shared.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut headers = HashMap::new();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                        }
                    }
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let mut hits = hits.lock().unwrap();
                    let earlier_flaky = hits
                        .iter()
                        .filter(|h| h.target.starts_with("/flaky"))
                        .count();
                    let (status, extra, answer) = match target.split('?').next().unwrap_or("") {
                        "/wecom" | "/dingtalk" => (200, "", r#"{"errcode":0,"errmsg":"ok"}"#),
                        "/feishu" => (200, "", r#"{"code":0,"msg":"success","data":{}}"#),
                        "/teams" => (202, "", ""),
                        // Busy twice, then well: the sender must come back.
                        "/flaky" if earlier_flaky < 2 => (503, "Retry-After: 1\r\n", "busy"),
                        _ => (200, "", "ok"),
                    };
                    hits.push(Hit {
                        target,
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                        status,
                    });
                    drop(hits);
                    let mut stream = reader.into_inner();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = stream.flush();
                });
            }
        });
        Receiver { port, hits }
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.target.split('?').next() == Some(path))
            .cloned()
            .collect()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), message)
        .as_ref()
        .to_vec()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn percent_decode(text: &str) -> String {
    let mut out = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' && tail.len() >= 2 {
            let hex = std::str::from_utf8(&tail[..2]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            rest = &tail[2..];
        } else {
            out.push(b);
            rest = tail;
        }
    }
    String::from_utf8(out).unwrap()
}

fn customer_mail(n: u32, case: &str, date: &str) -> String {
    format!(
        "From: 钱进 <qian.jin@example.cn>\r\nTo: support@example.com\r\n\
         Subject: 回复: [案例号: {case} ] % |P2|ACME| 更新失败 0x800f0922 %\r\n\
         Message-ID: <notify-{n}@mail.example.cn>\r\nDate: {date}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n您好，更新仍然失败，错误 0x800f0922。\r\n"
    )
}

const SECRETS: [(&str, &str); 3] = [
    ("CASEBOT_TEST_DINGTALK_SECRET", "SEC-dingtalk-test-secret"),
    ("CASEBOT_TEST_FEISHU_SECRET", "feishu-test-secret"),
    ("CASEBOT_TEST_GENERIC_SECRET", "generic-test-secret"),
];

fn config(sink: u16) -> String {
    format!(
        r#"[[mailbox]]
name = "local"
kind = "maildir"
path = "mail"
poll_interval_secs = 1

[desk]
engineer_domains = ["desk.example.com"]

[outbox]
from = "support@example.com"
transport = "smtp"
[outbox.smtp]
host = "127.0.0.1"
port = {sink}
security = "plain"
timeout_secs = 10
username_env = "CASEBOT_TEST_NO_SMTP_USER"

[notify]
batch_secs = 1
quiet_hours = false
retry_initial_secs = 1
check_secs = 1
desk_url = "https://desk.example.com/"

[[notify.webhook]]
name = "wecom"
format = "wecom"
url_env = "CASEBOT_TEST_WECOM_URL"

[[notify.webhook]]
name = "dingtalk"
format = "dingtalk"
url_env = "CASEBOT_TEST_DINGTALK_URL"
secret_env = "CASEBOT_TEST_DINGTALK_SECRET"

[[notify.webhook]]
name = "feishu"
format = "feishu"
url_env = "CASEBOT_TEST_FEISHU_URL"
secret_env = "CASEBOT_TEST_FEISHU_SECRET"

[[notify.webhook]]
name = "teams"
format = "teams"
url_env = "CASEBOT_TEST_TEAMS_URL"

[[notify.webhook]]
name = "generic"
format = "generic"
url_env = "CASEBOT_TEST_GENERIC_URL"
secret_env = "CASEBOT_TEST_GENERIC_SECRET"

[[notify.webhook]]
name = "flaky"
format = "generic"
url_env = "CASEBOT_TEST_FLAKY_URL"
"#
    )
}

/// The store's notices, oldest first.
fn notices(url: &str, dir: &Path) -> Vec<serde_json::Value> {
    let o = casebot_at(
        url,
        dir,
        &["notifications", "list", "--limit", "1000", "--json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).unwrap();
    list.reverse();
    list
}

/// (person, topic, key) of each notice a generic hook's successful posts
/// carried; the key names what it tells of (an event, a target's due time).
fn generic_notices(hits: &[Hit]) -> Vec<(String, String, String)> {
    hits.iter()
        .filter(|h| h.status == 200)
        .flat_map(|h| {
            let body = h.json();
            let person = body["person"].as_str().unwrap().to_string();
            body["notices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| {
                    (
                        person.clone(),
                        n["topic"].as_str().unwrap().to_string(),
                        format!(
                            "{}:{}:{}",
                            n["case"].as_str().unwrap_or("-"),
                            n["target"].as_str().unwrap_or("-"),
                            n["key"].as_str().unwrap()
                        ),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn each_notice_reaches_each_wanted_channel_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(&dir.path().join("notify.db"));
    let sink = SmtpSink::start(&[]);
    let receiver = Receiver::start();
    std::fs::write(dir.path().join("config.toml"), config(sink.port)).unwrap();
    let maildir = dir.path().join("mail");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let env_urls: Vec<(String, String)> =
        ["wecom", "dingtalk", "feishu", "teams", "generic", "flaky"]
            .iter()
            .map(|name| {
                let query = match *name {
                    "wecom" => "?key=wecom-group-key",
                    "dingtalk" => "?access_token=dingtalk-token",
                    _ => "",
                };
                (
                    format!("CASEBOT_TEST_{}_URL", name.to_uppercase()),
                    receiver.url(&format!("/{name}{query}")),
                )
            })
            .collect();
    let mut env: Vec<(&str, &str)> = env_urls
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend(SECRETS);

    // Two old cases (their first response long overdue), filed before the
    // daemon ever ran; A is Alice's already.
    let inbox = dir.path().join("before");
    std::fs::create_dir_all(&inbox).unwrap();
    let old = "Mon, 4 Mar 2024 09:00:00 +0800";
    std::fs::write(
        inbox.join("a.eml"),
        customer_mail(1, "CAS-70001-NT1AAA", old),
    )
    .unwrap();
    std::fs::write(
        inbox.join("b.eml"),
        customer_mail(2, "CAS-70002-NT2BBB", old),
    )
    .unwrap();
    let o = casebot_at(&url, dir.path(), &["import", inbox.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    add_lead(dir.path(), &url, "a long enough lead password");
    let o = casebot_with_password(
        &url,
        dir.path(),
        &[
            "user",
            "add",
            "alice",
            "--role",
            "engineer",
            "--email",
            "alice@desk.example.com",
            "--language",
            "en",
        ],
        "alice's long password",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = casebot_at(
        &url,
        dir.path(),
        &["assign", "CAS-70001-NT1AAA", "alice", "--as", "lead"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Alice wants no customer mail on Teams; a wrong topic or channel is refused.
    let o = casebot_at(
        &url,
        dir.path(),
        &[
            "notifications",
            "set",
            "alice",
            "customer_mail",
            "teams",
            "off",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = casebot_at(
        &url,
        dir.path(),
        &["notifications", "set", "alice", "lunch", "teams", "off"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = casebot_at(
        &url,
        dir.path(),
        &["notifications", "set", "alice", "assigned", "pager", "on"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let prefs = casebot_at(
        &url,
        dir.path(),
        &["notifications", "prefs", "--person", "alice", "--json"],
    );
    let prefs: Vec<serde_json::Value> = serde_json::from_str(&stdout(&prefs)).unwrap();
    let teams_mail = prefs
        .iter()
        .find(|p| p["topic"] == "customer_mail" && p["channel"] == "teams")
        .unwrap();
    assert_eq!(
        (teams_mail["on"].as_bool(), teams_mail["chosen"].as_bool()),
        (Some(false), Some(true))
    );

    // First start: the breaches now are told (Alice for A, the lead for
    // both); the assignment before the start is history, not news.
    let port = free_port();
    let log = dir.path().join("serve1.log");
    let read_log = || {
        let seen: Vec<(String, usize)> = [
            "/wecom",
            "/dingtalk",
            "/feishu",
            "/teams",
            "/generic",
            "/flaky",
        ]
        .iter()
        .map(|p| (p.to_string(), receiver.hits(p).len()))
        .collect();
        format!(
            "{}\nreceived: {seen:?}, mails {}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            sink.received().len()
        )
    };
    let mut daemon = serve(dir.path(), &url, port, &env, &log);
    wait_until(60, "the breaches on every channel", read_log, || {
        ["/wecom", "/dingtalk", "/feishu", "/teams", "/generic"]
            .iter()
            .all(|p| receiver.hits(p).len() >= 2)
            && receiver
                .hits("/flaky")
                .iter()
                .filter(|h| h.status == 200)
                .count()
                >= 2
            && !sink.received().is_empty()
    });
    let told = generic_notices(&receiver.hits("/generic"));
    let has = |person: &str, topic: &str, case_target: &str| {
        told.iter()
            .any(|(p, t, k)| p == person && t == topic && k.starts_with(case_target))
    };
    assert!(
        has("alice", "sla_breached", "CAS-70001-NT1AAA:first_response:"),
        "{told:?}"
    );
    assert!(
        has("lead", "sla_breached", "CAS-70002-NT2BBB:first_response:"),
        "{told:?}"
    );
    assert!(
        !told
            .iter()
            .any(|(p, _, c)| p == "alice" && c.starts_with("CAS-70002")),
        "B is not Alice's: {told:?}"
    );
    assert!(!told.iter().any(|(_, t, _)| t == "assigned"), "{told:?}");

    // Now the lead gives B to Alice: she is told, on every channel.
    let o = casebot_at(
        &url,
        dir.path(),
        &["assign", "CAS-70002-NT2BBB", "alice", "--as", "lead"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    wait_until(30, "the assignment", read_log, || {
        generic_notices(&receiver.hits("/generic"))
            .iter()
            .any(|(p, t, _)| p == "alice" && t == "assigned")
    });
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();

    // While it is down, the customer writes three times in A.
    for n in 0..3 {
        let name = format!("170000000{n}.M{n}P1.test");
        std::fs::write(
            maildir.join("tmp").join(&name),
            customer_mail(10 + n, "CAS-70001-NT1AAA", "Mon, 7 Dec 2026 09:00:00 +0800"),
        )
        .unwrap();
        std::fs::rename(
            maildir.join("tmp").join(&name),
            maildir.join("new").join(&name),
        )
        .unwrap();
    }
    let log = dir.path().join("serve2.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut daemon = serve(dir.path(), &url, port, &env, &log);
    wait_until(60, "the customer's mails told", read_log, || {
        generic_notices(&receiver.hits("/generic"))
            .iter()
            .filter(|(p, t, _)| p == "alice" && t == "customer_mail")
            .count()
            >= 3
            && sink.received().iter().any(|m| {
                m.parsed()
                    .body_text(0)
                    .is_some_and(|t| t.contains("the customer wrote"))
            })
    });
    // The desk: Alice's own settings (in English, her language), changed
    // by the form; the lead's page of everyone's; engineers kept out.
    let alice = format!(
        "casebot_session={}",
        login(port, "alice", "alice's long password")
    );
    let (status, page) = http_get_with(
        port,
        "/account/notifications",
        &format!("Cookie: {alice}\r\n"),
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("A customer wrote in my case"), "{page}");
    assert!(
        page.contains(r#"name="c.customer_mail.teams">"#),
        "unticked: {page}"
    );
    assert!(
        page.contains(r#"name="c.customer_mail.email" checked>"#),
        "{page}"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    // Everything ticked but assignments by mail.
    let mut form = format!("csrf={csrf}");
    for topic in [
        "customer_mail",
        "draft_waiting",
        "assigned",
        "sla_at_risk",
        "sla_breached",
        "send_failed",
        "mailbox_needs_login",
    ] {
        for channel in [
            "email", "wecom", "dingtalk", "feishu", "teams", "generic", "flaky",
        ] {
            if (topic, channel) != ("assigned", "email") {
                form.push_str(&format!("&c.{topic}.{channel}=on"));
            }
        }
    }
    let (status, _) = http_post(port, "/account/notifications", &alice, &form);
    assert_eq!(status, 303);
    let prefs = casebot_at(
        &url,
        dir.path(),
        &["notifications", "prefs", "--person", "alice", "--json"],
    );
    let prefs: Vec<serde_json::Value> = serde_json::from_str(&stdout(&prefs)).unwrap();
    let pref = |topic: &str, channel: &str| {
        let p = prefs
            .iter()
            .find(|p| p["topic"] == topic && p["channel"] == channel)
            .unwrap();
        (p["on"].as_bool().unwrap(), p["chosen"].as_bool().unwrap())
    };
    assert_eq!(pref("assigned", "email"), (false, true));
    assert_eq!(
        pref("customer_mail", "teams"),
        (true, false),
        "back to the default"
    );
    assert_eq!(pref("customer_mail", "email"), (true, false));
    let (status, _) = http_get_with(
        port,
        "/admin/notifications",
        &format!("Cookie: {alice}\r\n"),
    );
    assert_eq!(status, 403);
    let lead = format!(
        "casebot_session={}",
        login(port, "lead", "a long enough lead password")
    );
    let (status, page) = http_get_with(
        port,
        "/admin/notifications?person=alice",
        &format!("Cookie: {lead}\r\n"),
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("CAS-70001-NT1AAA") && page.contains("/admin/notifications/alice"),
        "{page}"
    );

    // Let any duplicate arrive before counting.
    std::thread::sleep(Duration::from_secs(3));
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();

    // Every notice in the store was delivered, and each exactly once.
    let stored = notices(&url, dir.path());
    assert!(stored.iter().all(|n| n["state"] == "sent"), "{stored:#?}");
    for channel in ["generic", "flaky"] {
        let path = format!("/{channel}");
        let mut carried = generic_notices(&receiver.hits(&path));
        let count = carried.len();
        carried.sort();
        carried.dedup();
        assert_eq!(carried.len(), count, "{channel}: a notice told twice");
        let in_store = stored.iter().filter(|n| n["channel"] == channel).count();
        assert_eq!(count, in_store, "{channel}: {carried:?}");
    }
    // The flaky hook was retried after its 503s, without a duplicate.
    let flaky = receiver.hits("/flaky");
    assert_eq!(flaky.iter().filter(|h| h.status == 503).count(), 2);
    assert!(
        stored
            .iter()
            .any(|n| n["channel"] == "flaky" && n["attempts"].as_i64() >= Some(2)),
        "{stored:#?}"
    );
    // The three mails went out together: one message per channel.
    let customer = |h: &Hit| h.body.contains("the customer wrote");
    for path in ["/wecom", "/dingtalk", "/feishu"] {
        let with = receiver
            .hits(path)
            .into_iter()
            .filter(customer)
            .collect::<Vec<_>>();
        assert_eq!(with.len(), 1, "{path}: {with:#?}");
        assert_eq!(
            with[0].body.matches("the customer wrote").count(),
            3,
            "{path}"
        );
    }
    assert!(
        !receiver.hits("/teams").iter().any(customer),
        "Alice turned these off on Teams"
    );

    // Each product's shape and signature.
    for h in receiver.hits("/wecom") {
        let b = h.json();
        assert_eq!(b["msgtype"], "text");
        assert!(
            b["text"]["content"]
                .as_str()
                .unwrap()
                .starts_with("casebot"),
            "{b}"
        );
        assert!(h.target.contains("key=wecom-group-key"));
    }
    for h in receiver.hits("/dingtalk") {
        let b = h.json();
        assert_eq!(b["msgtype"], "text");
        let query: HashMap<&str, &str> = h
            .target
            .split_once('?')
            .unwrap()
            .1
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        assert_eq!(query["access_token"], "dingtalk-token");
        let ts = query["timestamp"];
        let secret = SECRETS[0].1;
        let expected = b64(&hmac(
            secret.as_bytes(),
            format!("{ts}\n{secret}").as_bytes(),
        ));
        assert_eq!(
            percent_decode(query["sign"]),
            expected,
            "DingTalk's signature"
        );
    }
    for h in receiver.hits("/feishu") {
        let b = h.json();
        assert_eq!(b["msg_type"], "text");
        assert!(
            b["content"]["text"].as_str().unwrap().contains("CAS-7000"),
            "{b}"
        );
        let ts = b["timestamp"].as_str().unwrap();
        let secret = SECRETS[1].1;
        let expected = b64(&hmac(format!("{ts}\n{secret}").as_bytes(), b""));
        assert_eq!(
            b["sign"].as_str(),
            Some(expected.as_str()),
            "Feishu's signature"
        );
    }
    for h in receiver.hits("/teams") {
        let b = h.json();
        assert_eq!(b["type"], "message");
        let card = &b["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert!(card["content"]["body"].as_array().unwrap().len() >= 2);
    }
    for h in receiver.hits("/generic") {
        let sig = &h.headers["x-casebot-signature"];
        let (t, v1) = sig.split_once(",v1=").unwrap();
        let t = t.strip_prefix("t=").unwrap();
        let mac = hmac(
            SECRETS[2].1.as_bytes(),
            format!("{t}.{}", h.body).as_bytes(),
        );
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(v1, hex, "the generic hook's signature");
        for n in h.json()["notices"].as_array().unwrap() {
            assert_eq!(
                n["link"].as_str(),
                Some(
                    format!(
                        "https://desk.example.com/cases/{}",
                        n["case"].as_str().unwrap()
                    )
                    .as_str()
                )
            );
        }
    }

    // Mail: to Alice only (the lead has no address), machine mail, no thread,
    // in her language, and the case numbers never in the desk's subject grammar.
    let mails = sink.received();
    assert!(!mails.is_empty());
    for m in &mails {
        assert_eq!(m.rcpt_to, ["<alice@desk.example.com>"]);
        let text = String::from_utf8_lossy(&m.message);
        assert!(text.contains("Auto-Submitted: auto-generated"), "{text}");
        assert!(
            !text.contains("In-Reply-To") && !text.contains("References"),
            "{text}"
        );
        let parsed = m.parsed();
        assert!(parsed.subject().unwrap().starts_with("casebot: "), "{text}");
        assert!(!parsed.subject().unwrap().contains("案例号"));
    }
    let all_mail: String = mails
        .iter()
        .map(|m| m.parsed().body_text(0).unwrap_or_default().into_owned())
        .collect();
    for (what, times) in [("the customer wrote", 3), ("is yours now", 1)] {
        assert_eq!(all_mail.matches(what).count(), times, "{what}: {all_mail}");
    }
    // A's breach from the start, and B's once it became hers.
    assert!(all_mail.matches("overdue").count() >= 2, "{all_mail}");
}

/// A mailbox whose login the server refuses is `needs_login` (in `casebot
/// mailboxes`, on `/metrics`) while the watcher keeps trying, and the lead
/// is told once, however many times the login is refused.
#[test]
fn a_refused_login_tells_the_lead_once() {
    let dovecot = super::mailstack::Dovecot::start();
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(&dir.path().join("login.db"));
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            r#"[[mailbox]]
name = "desk"
kind = "imap"
host = "127.0.0.1"
port = {}
security = "plain"
username_env = "CASEBOT_TEST_IMAP_USER"
password_env = "CASEBOT_TEST_IMAP_PASSWORD"
folders = ["INBOX"]
reconnect_max_secs = 1

[notify]
batch_secs = 1
quiet_hours = false
check_secs = 1

[[notify.webhook]]
name = "ops"
format = "generic"
url_env = "CASEBOT_TEST_OPS_URL"
"#,
            dovecot.port
        ),
    )
    .unwrap();
    add_lead(dir.path(), &url, "a long enough lead password");
    let hook = receiver.url("/generic");
    let env = [
        ("CASEBOT_TEST_IMAP_USER", "refused"),
        ("CASEBOT_TEST_IMAP_PASSWORD", "not the password"),
        ("CASEBOT_TEST_OPS_URL", hook.as_str()),
    ];
    let port = free_port();
    let log = dir.path().join("serve.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut daemon = serve(dir.path(), &url, port, &env, &log);
    let lead = format!(
        "casebot_session={}",
        login(port, "lead", "a long enough lead password")
    );
    let refusals = || {
        let (_, metrics) = http_get_with(port, "/metrics", &format!("Cookie: {lead}\r\n"));
        metrics
            .lines()
            .find(|l| l.starts_with("casebot_imap_auth_failures_total{mailbox=\"desk\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    wait_until(30, "three refused logins", read_log, || refusals() >= 3);
    let (_, metrics) = http_get_with(port, "/metrics", &format!("Cookie: {lead}\r\n"));
    assert!(
        metrics.contains(
            r#"casebot_mailbox_state{mailbox="desk",folder="INBOX",state="needs_login"} 1"#
        ),
        "{metrics}"
    );
    wait_until(30, "the lead told", read_log, || {
        !generic_notices(&receiver.hits("/generic")).is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    let told = generic_notices(&receiver.hits("/generic"));
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        (told[0].0.as_str(), told[0].1.as_str()),
        ("lead", "mailbox_needs_login")
    );
    let body = receiver.hits("/generic")[0].json();
    assert_eq!(body["notices"][0]["mailbox"], "desk/INBOX");
    assert!(
        body["text"].as_str().unwrap().contains("desk/INBOX"),
        "{body}"
    );
    let o = casebot_at(&url, dir.path(), &["mailboxes", "--json"]);
    let folders: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(folders[0]["state"], "needs_login", "{folders}");
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
}
