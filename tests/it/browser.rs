//! The web desk in Debian's headless chromium, driven over WebDriver
//! (chromedriver + fantoccini): a failed login (the browser asks for
//! English), an engineer who reads the desk in its default language,
//! Chinese, on the case list, case page, draft editor and board; a note;
//! a log shown as text and downloads with their safety headers; a free
//! reply with a text module, refused while `{{` is left in it, then
//! approved and received by a real SMTP server (smtp-sink) signed with the
//! engineer's own name; the switch to English; a `<script>` subject shown
//! as text; forged posts refused; a second engineer's approval signed with
//! theirs; the lead's SLA board marking a breached case; logout.
//!
//! With `CASEBOT_SCREENSHOTS=DIR` the test also saves docs/desk.md's
//! screenshots there.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::mailstack::{SmtpSink, free_port};
use super::{casebot, example, repo, stderr};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ENGINEER_PASSWORD: &str = "engineer-pass-1";
const LEAD_PASSWORD: &str = "lead-pass-2026";
const XSS_CASE: &str = "CAS-20001-XSS0A1";
const OPEN_CASE: &str = "CAS-10003-SC5K8P";
const LOG_CASE: &str = "CAS-20002-LOG0A1";
const BIG_CASE: &str = "CAS-20003-BIG0A1";
/// Written in a note: it must never reach a sent mail.
const NOTE_MARK: &str = "NOTE-ONLY-7f3a";

/// A desk with the example threads and a hostile mail, its daemon serving
/// the web desk and sending to `sink`.
struct WebDesk {
    dir: tempfile::TempDir,
    port: u16,
    serve: Option<Child>,
}

impl WebDesk {
    fn start(sink: &SmtpSink) -> WebDesk {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = format!(
            r#"[desk]
engineer_addresses = ["support@example.com"]
engineer_domains = ["desk.example.com"]

[analysis]
rules_dir = "{rules}"

[drafting]
templates_dir = "{templates}"
sign_as = "approver"

[outbox]
from = "support@example.com"
transport = "smtp"
[outbox.smtp]
host = "127.0.0.1"
port = {smtp}
security = "plain"
timeout_secs = 10
username_env = "CASEBOT_TEST_NO_SMTP_USER"

[web]
listen = "127.0.0.1:{port}"
board_refresh_secs = 5
"#,
            rules = repo().join("rules").display(),
            templates = repo().join("templates").display(),
            smtp = sink.port,
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let desk = WebDesk {
            dir,
            port,
            serve: None,
        };
        for thread in ["hardlink", "hashmismatch", "caseless", "storecorrupt"] {
            desk.ok(&["import", example("threads").join(thread).to_str().unwrap()]);
        }
        for (name, mail) in [("hostile.eml", hostile_mail()), ("log.eml", log_mail())] {
            let path = desk.dir.path().join(name);
            std::fs::write(&path, mail).unwrap();
            desk.ok(&["import", path.to_str().unwrap()]);
        }
        // A mail over a small size limit waits in the quarantine, for the
        // lead to replay on the desk (the daemon has the default limit).
        let big = desk.dir.path().join("big.eml");
        std::fs::write(&big, big_mail()).unwrap();
        std::fs::write(
            desk.dir.path().join("small.toml"),
            "[ingest]\nmax_message_bytes = 1000\n",
        )
        .unwrap();
        desk.ok(&["--config", "small.toml", "import", big.to_str().unwrap()]);
        let engineer = [
            "--display-name",
            "王伟 Wang Wei",
            "--signature-line",
            "Windows 更新支持组",
        ];
        desk.add_user("wang.eng", "engineer", ENGINEER_PASSWORD, &engineer);
        let second = [
            "--display-name",
            "李娜 Li Na",
            "--signature-line",
            "Windows 更新支持组",
        ];
        desk.add_user("li.eng", "engineer", ENGINEER_PASSWORD, &second);
        desk.add_user("zhou.lead", "lead", LEAD_PASSWORD, &[]);
        let mut desk = desk;
        desk.serve = Some(
            Command::new(env!("CARGO_BIN_EXE_casebot"))
                .arg("serve")
                .current_dir(desk.dir.path())
                .env("CASEBOT_DB", super::store_url(&desk.db()))
                .env_remove("CASEBOT_LISTEN")
                .env("RUST_LOG", "casebot=info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(desk.dir.path().join("serve.log")).unwrap())
                .spawn()
                .unwrap(),
        );
        desk.wait(60, "the open case's draft", || {
            desk.json(&["drafts", "--status", "pending", "--json"])
                .as_array()
                .is_some_and(|a| a.iter().any(|d| d["case_key"] == OPEN_CASE))
        });
        desk.wait(20, "the web desk", || {
            std::net::TcpStream::connect(("127.0.0.1", desk.port)).is_ok()
        });
        desk
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("casebot.db")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = casebot(&self.db(), self.dir.path(), args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        super::stdout(&o)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn add_user(&self, name: &str, role: &str, password: &str, profile: &[&str]) {
        let mut args = vec!["user", "add", name, "--role", role];
        args.extend(profile);
        self.user_command(&args, password);
    }

    /// Runs a `user` command that reads a password from standard input.
    fn user_command(&self, args: &[&str], password: &str) {
        let url = super::store_url(&self.db());
        let out = super::casebot_with_password(&url, self.dir.path(), args, password);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn wait(&self, secs: u64, what: &str, done: impl Fn() -> bool) {
        super::wait_until(secs, what, || self.log(), done);
    }
}

impl Drop for WebDesk {
    fn drop(&mut self) {
        if let Some(mut c) = self.serve.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A customer mail whose subject and body try to run script in the desk.
fn hostile_mail() -> Vec<u8> {
    let subject = format!(
        "[案例号:{XSS_CASE}] % |P2|EXAMPLE-BANK|<script>window.__xss=1</script>补丁失败 % CMIT:0009001"
    );
    lettre::Message::builder()
        .from("钱芳 <qian.fang@example.cn>".parse().unwrap())
        .to("support@example.com".parse().unwrap())
        .subject(subject)
        .message_id(Some("<hostile-1@mail.example.cn>".into()))
        // Monday 2023-11-20 10:00 in Shanghai: long overdue by now.
        .date(std::time::UNIX_EPOCH + Duration::from_secs(1_700_445_600))
        .body("您好，<img src=x onerror=\"window.__xss=2\"> 安装失败。".to_string())
        .unwrap()
        .formatted()
}

/// A customer mail with a text log attached: a case to download from.
fn log_mail() -> Vec<u8> {
    use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
    let log = "2024-03-04 09:00:01, Info                  CBS    Starting TrustedInstaller\r\n\
               2024-03-04 09:00:02, Error                 CBS    Failed to pin deployment while resolving Update [HRESULT = 0x800f0831 - CBS_E_STORE_CORRUPTION]\r\n";
    lettre::Message::builder()
        .from("孙丽 <sun.li@example.cn>".parse().unwrap())
        .to("support@example.com".parse().unwrap())
        .subject(format!(
            "[案例号: {LOG_CASE} ] % |P3|EXAMPLE-BANK|补丁安装失败 % CMIT:0009002"
        ))
        .message_id(Some("<log-1@mail.example.cn>".into()))
        .date(std::time::SystemTime::now())
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain("您好，日志见附件。".to_string()))
                .singlepart(Attachment::new("CBS 日志.log".to_string()).body(
                    log.as_bytes().to_vec(),
                    ContentType::parse("text/plain").unwrap(),
                )),
        )
        .unwrap()
        .formatted()
}

/// A customer mail of a new case, a few KiB long.
fn big_mail() -> String {
    format!(
        "From: Zhou Min <zhou.min@example.cn>\r\nTo: support@example.com\r\n\
         Subject: [案例号: {BIG_CASE} ] % |P3|EXAMPLE-BANK|补丁安装失败 %\r\n\
         Message-ID: <big-1@mail.example.cn>\r\nDate: Mon, 4 Mar 2024 09:00:00 +0800\r\n\r\n{}\r\n",
        "日志见附件。".repeat(400)
    )
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "chromium and chromium-driver are missing: run scripts/test.sh (it installs them)"
        );
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver {
            child,
            port,
            profile: tempfile::tempdir().unwrap(),
        }
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1400,1000", "--lang=en-US",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ]
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn login(b: &Client, desk: &WebDesk, name: &str, password: &str) {
    b.goto(&desk.url("/login")).await.unwrap();
    b.find(Locator::Css("input[name=name]"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    b.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    b.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits for the browser to reach `path` (a click's navigation may still be
/// under way when WebDriver returns).
async fn arrive(b: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let url = b.current_url().await.unwrap();
        if url.path() == path {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected to be at {path}, still at {url}: {}",
            body_text(b).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's text; retried while a navigation replaces the document.
async fn body_text(b: &Client) -> String {
    let mut last_error = None;
    for _ in 0..50 {
        match b.find(Locator::Css("body")).await {
            Ok(body) => match body.text().await {
                Ok(text) => return text,
                Err(e) => last_error = Some(e),
            },
            Err(e) => last_error = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page never settled: {last_error:?}")
}

/// Waits until the page's text contains `needle` (after a click's
/// navigation), and returns the text.
async fn wait_text(b: &Client, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = body_text(b).await;
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never appeared in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's `<html lang>`.
async fn html_lang(b: &Client) -> String {
    b.find(Locator::Css("html"))
        .await
        .unwrap()
        .attr("lang")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// A GET of the desk with the browser's session cookie: the status and the
/// answer's head, lower-cased.
async fn fetch_head(b: &Client, desk: &WebDesk, path: &str) -> (u16, String) {
    let session = b.get_named_cookie("casebot_session").await.unwrap();
    let cookie = format!("Cookie: casebot_session={}\r\n", session.value());
    let (status, answer) = super::http_get_with(desk.port, path, &cookie);
    let head = answer.split("\r\n\r\n").next().unwrap_or("").to_string();
    (status, head)
}

/// Sets the editor's text (as if typed over) and puts the cursor at `at`.
async fn set_editor(b: &Client, text: &str, at: usize) {
    b.execute(
        "const t = document.getElementById('body'); t.value = arguments[0]; \
         t.focus(); t.setSelectionRange(arguments[1], arguments[1]);",
        vec![json!(text), json!(at)],
    )
    .await
    .unwrap();
}

async fn type_into(b: &Client, css: &str, text: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn screenshot(b: &Client, name: &str) {
    if let Ok(dir) = std::env::var("CASEBOT_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        b.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
        let png = b.screenshot().await.unwrap();
        std::fs::write(Path::new(&dir).join(name), png).unwrap();
    }
}

/// Serves one page from another origin that posts a form to the desk on
/// load, as a hostile site would.
fn forger(target: String) -> u16 {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4).flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let page = format!(
                "<!doctype html><html><body><form method=post action=\"{target}\">\
                 <input name=owner value=mallory><input name=csrf value=guessed></form>\
                 <script>document.forms[0].submit()</script></body></html>"
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    port
}

#[test]
fn an_engineer_and_the_lead_work_the_desk_in_chromium() {
    let sink = SmtpSink::start(&[]);
    let desk = WebDesk::start(&sink);
    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let b = driver.browser().await;

        // Nothing without a login.
        b.goto(&desk.url("/board")).await.unwrap();
        assert!(b.current_url().await.unwrap().path().starts_with("/login"));

        // A wrong password: refused, still on the login page, in the
        // browser's language (English) as nobody is logged in.
        login(&b, &desk, "wang.eng", "not-the-password").await;
        wait_text(&b, "wrong name or password").await;
        assert_eq!(b.current_url().await.unwrap().path(), "/login");
        assert_eq!(html_lang(&b).await, "en");

        // The engineer logs in and reads the desk in its language, Chinese.
        login(&b, &desk, "wang.eng", ENGINEER_PASSWORD).await;
        arrive(&b, "/cases").await;
        let list = wait_text(&b, OPEN_CASE).await;
        assert_eq!(html_lang(&b).await, "zh-CN");
        for label in ["案例", "优先级", "负责人", "最近邮件", "筛选", "我的案例", "退出"] {
            assert!(list.contains(label), "no {label} on the case list:\n{list}");
        }
        assert!(!list.contains("Last mail"), "English on the Chinese list");
        screenshot(&b, "case-list-zh.png").await;
        b.goto(&desk.url("/board")).await.unwrap();
        let board = wait_text(&b, "我的 SLA 看板").await;
        assert!(board.contains("按优先级") && board.contains("最紧急"), "{board}");
        b.goto(&desk.url("/cases")).await.unwrap();
        b.find(Locator::LinkText(OPEN_CASE))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let page = wait_text(&b, "关键日志行").await;
        assert!(page.contains("0x800f0831"), "{page}");
        for label in ["邮件往来", "内部备注", "撰写回复", "日志分析", "分配给"] {
            assert!(page.contains(label), "no {label} on the case page");
        }
        // The customer's signature is folded away until asked for.
        let folded = b
            .find(Locator::XPath("//details[summary='签名']/pre"))
            .await
            .unwrap();
        assert!(!folded.is_displayed().await.unwrap(), "the signature is unfolded");

        // An internal note: on the timeline, marked internal.
        type_into(&b, "form.note textarea", &format!("客户要求周五前解决 {NOTE_MARK}")).await;
        click(&b, "form.note button").await;
        let page = wait_text(&b, NOTE_MARK).await;
        assert!(page.contains("内部"), "{page}");
        screenshot(&b, "case-page.png").await;

        // A log attachment: viewed as escaped text with its decisive line
        // marked; it and the raw mail download with safe headers.
        b.goto(&desk.url(&format!("/cases/{LOG_CASE}"))).await.unwrap();
        wait_text(&b, "CBS 日志.log").await;
        let attachment = b
            .find(Locator::Css("a[href*='/attachments/']:not([href$='/text'])"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        let raw = b
            .find(Locator::Css("a[href$='/raw']"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        for (path, kind) in [(&attachment, "application/octet-stream"), (&raw, "message/rfc822")] {
            let (status, head) = fetch_head(&b, &desk, path).await;
            assert_eq!(status, 200, "{path}: {head}");
            assert!(head.contains(&format!("content-type: {kind}")), "{head}");
            assert!(head.contains("content-disposition: attachment;"), "{head}");
            assert!(head.contains("x-content-type-options: nosniff"), "{head}");
            assert!(head.contains("content-security-policy: sandbox"), "{head}");
        }
        let (_, head) = fetch_head(&b, &desk, &attachment).await;
        assert!(head.contains("filename*=utf-8''cbs%20%e6%97%a5%e5%bf%97.log"), "{head}");
        // Without a login, nothing.
        let (status, _) = super::http_get(desk.port, &raw);
        assert_eq!(status, 303, "a raw mail without a login");
        b.find(Locator::LinkText("查看")).await.unwrap().click().await.unwrap();
        let view = wait_text(&b, "CBS_E_STORE_CORRUPTION").await;
        assert!(view.contains("下载"), "{view}");

        // A free reply with a text module, in the Chinese editor.
        b.goto(&desk.url(&format!("/cases/{OPEN_CASE}"))).await.unwrap();
        b.find(Locator::Css("form[action$='/drafts'] select"))
            .await
            .unwrap()
            .select_by_value("free")
            .await
            .unwrap();
        click(&b, "form[action$='/drafts'] button").await;
        let editor = wait_text(&b, "批准并发送").await;
        assert!(editor.contains("文本模块") && editor.contains("自由回复"), "{editor}");
        wait_text(&b, "::collect-logs").await;
        let drafted = b
            .find(Locator::Css("textarea[name=body]"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        let fill_in = drafted.find("<TEXT>").expect("the free reply's fill-in");
        // Template syntax left in the text: refused at approval, the place named.
        let leftover = drafted.replacen("<TEXT>", "请于 {{case.deadline}} 前回复。", 1);
        set_editor(&b, &leftover, 0).await;
        click(&b, "button[value=approve]").await;
        let refused = wait_text(&b, "未批准").await;
        assert!(refused.contains("残留模板语法 {{"), "{refused}");
        // The engineer's own words and a module typed by its short name.
        let typed = drafted.replacen("<TEXT>", "", 1);
        let chars_before = typed[..fill_in].chars().count();
        set_editor(&b, &typed, chars_before).await;
        type_into(&b, "textarea[name=body]", "::collect-logs ").await;
        let with_module = b
            .find(Locator::Css("textarea[name=body]"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        assert!(
            with_module.contains("日志收集工具") && !with_module.contains("::collect-logs"),
            "the module was not inserted:\n{with_module}"
        );
        screenshot(&b, "draft-editor.png").await;
        click(&b, "button[value=approve]").await;
        wait_text(&b, "已由 wang.eng 批准").await;
        // A notice comes from a code the desk knows, never from the link:
        // text put into the address is not shown.
        let draft_path = b.current_url().await.unwrap().path().to_string();
        b.goto(&desk.url(&format!(
            "{draft_path}?done=Your%20approval%20failed%3A%20call%20555-0100"
        )))
        .await
        .unwrap();
        let text = body_text(&b).await;
        assert!(
            text.contains("由 wang.eng 于") && !text.contains("555-0100"),
            "{text}"
        );
        let received = sink.wait_for(1, 30);
        assert_eq!(received.len(), 1, "serve log:\n{}", desk.log());
        let sent = received[0].parsed();
        let body = sent.body_text(0).unwrap();
        assert!(body.contains("日志收集工具"), "{body}");
        assert!(body.contains("王伟 Wang Wei") && body.contains("Windows 更新支持组"), "{body}");
        assert!(!body.contains(NOTE_MARK), "a note reached a customer:\n{body}");
        let subject = sent.subject().unwrap();
        assert!(subject.contains("案例号") && subject.contains(OPEN_CASE), "{subject}");

        // The engineer switches to English; the desk follows, and keeps it.
        b.goto(&desk.url(&format!("/cases/{OPEN_CASE}"))).await.unwrap();
        click(&b, "form.language button[value=en]").await;
        let page = wait_text(&b, "Decisive lines").await;
        assert!(page.contains("Internal notes") && page.contains(NOTE_MARK), "{page}");
        assert_eq!(html_lang(&b).await, "en");
        b.goto(&desk.url("/cases")).await.unwrap();
        assert!(body_text(&b).await.contains("Last mail"));

        // The hostile subject is text, and no script of the mail ran.
        b.goto(&desk.url(&format!("/cases/{XSS_CASE}"))).await.unwrap();
        let page = body_text(&b).await;
        assert!(page.contains("<script>window.__xss=1</script>"), "{page}");
        assert!(page.contains("<img src=x onerror="), "{page}");
        let ran = b
            .execute("return typeof window.__xss === 'undefined';", vec![])
            .await
            .unwrap();
        assert_eq!(ran, json!(true), "a mail's script ran in the desk");
        b.goto(&desk.url("/cases?q=xss0a1")).await.unwrap();
        assert!(body_text(&b).await.contains("<script>window.__xss=1</script>"));

        // A post from another site is refused, and changes nothing.
        let forged = forger(desk.url(&format!("/cases/{OPEN_CASE}/assign")));
        b.goto(&format!("http://127.0.0.1:{forged}/")).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.current_url().await.unwrap().port() != Some(desk.port) {
            assert!(Instant::now() < deadline, "the forged form was not posted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        wait_text(&b, "cross-site request refused").await;
        // A same-site post with a wrong token is refused too.
        b.goto(&desk.url(&format!("/cases/{OPEN_CASE}"))).await.unwrap();
        b.execute(
            "document.querySelector('form[action$=\"/assign\"] input[name=csrf]').value = 'forged';",
            vec![],
        )
        .await
        .unwrap();
        b.find(Locator::Css("form[action$='/assign'] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_text(&b, "CSRF token").await;
        let show = desk.json(&["show", OPEN_CASE, "--json"]);
        assert!(
            !show["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "owner_assigned"),
            "a forged post assigned the case"
        );

        // The engineer may not read the lead's report.
        b.goto(&desk.url("/report")).await.unwrap();
        wait_text(&b, "for the team lead").await;

        // Log out; a second engineer approves another case's draft: the
        // reply is signed with their name.
        b.goto(&desk.url("/cases")).await.unwrap();
        click(&b, "form.logout button").await;
        arrive(&b, "/login").await;
        b.goto(&desk.url("/cases")).await.unwrap();
        arrive(&b, "/login").await;
        let other = desk
            .json(&["drafts", "--status", "pending", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["case_key"] != OPEN_CASE && d["case_key"] != LOG_CASE)
            .map(|d| d["id"].clone())
            .expect("another case's pending draft");
        login(&b, &desk, "li.eng", ENGINEER_PASSWORD).await;
        arrive(&b, "/cases").await;
        b.goto(&desk.url(&format!("/drafts/{other}"))).await.unwrap();
        wait_text(&b, "批准并发送").await;
        click(&b, "input[name=accept_warnings]").await;
        click(&b, "button[value=approve]").await;
        wait_text(&b, "已由 li.eng 批准").await;
        let received = sink.wait_for(2, 30);
        let second = received[1].parsed();
        let second = second.body_text(0).unwrap();
        assert!(second.contains("李娜 Li Na"), "{second}");
        assert!(!second.contains("王伟"), "{second}");
        assert!(!second.contains(NOTE_MARK), "{second}");
        click(&b, "form.logout button").await;
        arrive(&b, "/login").await;

        // The lead logs in and sees the breached case on the board.
        login(&b, &desk, "zhou.lead", LEAD_PASSWORD).await;
        arrive(&b, "/cases").await;
        b.goto(&desk.url("/board")).await.unwrap();
        let row = b
            .find(Locator::XPath(&format!(
                "//tbody[@id='board-rows']/tr[td/a[text()='{XSS_CASE}']]"
            )))
            .await
            .unwrap();
        assert_eq!(row.attr("class").await.unwrap().as_deref(), Some("row-breached"));
        assert!(row.text().await.unwrap().contains("已超时"));
        // The board refreshes itself from /api/board (every 5 s here).
        b.execute("document.getElementById('board-rows').replaceChildren();", vec![])
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let rows = b
                .find_all(Locator::Css("#board-rows tr.row-breached"))
                .await
                .unwrap();
            if !rows.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "the board did not refresh itself");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        screenshot(&b, "sla-board.png").await;
        // The quarantine: the lead replays the waiting mail on the desk.
        b.goto(&desk.url("/admin/quarantine")).await.unwrap();
        let quarantine = wait_text(&b, "隔离区").await;
        assert!(quarantine.contains("max_message_bytes"), "{quarantine}");
        click(&b, "#quarantine a").await;
        wait_text(&b, BIG_CASE).await;
        screenshot(&b, "quarantine.png").await;
        click(&b, "form input[value=replay] + button").await;
        wait_text(&b, "已通过重新处理归档").await;
        assert_eq!(desk.json(&["show", BIG_CASE, "--json"])["case_id"], BIG_CASE);
        // Misfiled mail: the log mail moves into the replayed case, which
        // is then merged into the hostile mail's case.
        let xss_mails = desk.json(&["show", XSS_CASE, "--json"])["message_count"]
            .as_i64()
            .unwrap();
        b.goto(&desk.url(&format!("/cases/{LOG_CASE}"))).await.unwrap();
        wait_text(&b, "移动或拆分").await;
        click(&b, "details.regroup summary").await;
        type_into(&b, "details.regroup input[name=to]", BIG_CASE).await;
        type_into(&b, "details.regroup input[name=reason]", "同一客户的同一问题").await;
        click(&b, "details.regroup button[value=move]").await;
        arrive(&b, &format!("/cases/{BIG_CASE}")).await;
        wait_text(&b, "CBS 日志.log").await;
        type_into(&b, "form[action$='/merge'] input[name=into]", XSS_CASE).await;
        type_into(&b, "form[action$='/merge'] input[name=reason]", "重复的案例").await;
        click(&b, "form[action$='/merge'] button").await;
        arrive(&b, &format!("/cases/{XSS_CASE}")).await;
        wait_text(&b, "CBS 日志.log").await;
        let merged = desk.json(&["show", XSS_CASE, "--json"]);
        assert_eq!(merged["message_count"], xss_mails + 2, "{merged:#}");
        // The merged case's key leads to the case it joined.
        assert_eq!(desk.json(&["show", BIG_CASE, "--json"])["key"], XSS_CASE);
        b.goto(&desk.url("/report?from=2023-11-01&to=2023-11-30")).await.unwrap();
        let report = body_text(&b).await;
        assert!(report.contains("按负责人") && report.contains("导出 CSV"), "{report}");
        b.find(Locator::Css("svg.chart")).await.unwrap();
        // A new password ends the account's sessions at once.
        desk.user_command(&["user", "passwd", "zhou.lead"], "another-lead-pass");
        b.goto(&desk.url("/board")).await.unwrap();
        arrive(&b, "/login").await;
        b.close().await.unwrap();
    });
}
