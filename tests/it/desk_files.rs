//! What a case page offers an engineer beyond the thread: each mail's raw
//! `.eml` and each attachment as downloads with the headers that keep a
//! browser from running them, a text log shown escaped with its decisive
//! lines marked, and internal notes that never reach a customer.

use super::abuse::{add_lead, http_post, login, serve};
use super::{casebot_at, stderr, stdout, store_url};

const CASE: &str = "CAS-40001-NT5FL2";
const LOG_NAME: &str = "CBS_日志.log";
const NOTE: &str = "内部：客户的管理员下周休假 (internal marker 7f3a)";

fn log_text() -> String {
    "2024-03-04 09:00:00, Info                  CBS    Starting TrustedInstaller initialization.\r\n\
     2024-03-04 09:00:01, Info                  CBS    Loaded Servicing Stack v10.0.17763.4974\r\n\
     2024-03-04 09:00:02, Error                 CBS    Failed to resolve package 'Package_for_KB5031361~31bf3856ad364e35~amd64~~17763.4974.1.8' [HRESULT = 0x800f0831 - CBS_E_STORE_CORRUPTION]\r\n\
     2024-03-04 09:00:03, Info                  CBS    <script>alert(1)</script> & more\r\n"
        .to_string()
}

fn customer_mail() -> String {
    use base64::Engine as _;
    let log = base64::engine::general_purpose::STANDARD.encode(log_text());
    format!(
        "From: Zhao Ming <zhao.ming@example.cn>\r\nTo: support@example.com\r\n\
         Subject: [案例号: {CASE} ] % |P2|ACME|补丁KB5031361安装失败 % 初次响应\r\n\
         Message-ID: <files-1@mail.example.cn>\r\nDate: Mon, 4 Mar 2024 09:30:00 +0800\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n您好，补丁安装失败，日志见附件。\r\n\
         --b1\r\nContent-Type: text/plain; name*=UTF-8''CBS_%E6%97%A5%E5%BF%97.log\r\n\
         Content-Disposition: attachment; filename*=UTF-8''CBS_%E6%97%A5%E5%BF%97.log\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{log}\r\n--b1--\r\n"
    )
}

fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next().unwrap_or("");
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// `casebot serve` on `url` with the lead logged in to its desk: the
/// daemon, the desk's port and the lead's session cookie.
fn lead_on_the_desk(dir: &std::path::Path, url: &str) -> (std::process::Child, u16, String) {
    const PASSWORD: &str = "a long enough lead password";
    add_lead(dir, url, PASSWORD);
    let port = super::mailstack::free_port();
    let daemon = serve(dir, url, port, &[], &dir.join("serve.log"));
    let session = login(port, "lead", PASSWORD);
    (daemon, port, format!("casebot_session={session}"))
}

/// A GET with the session `cookie`, the answer as sent.
fn get_as(port: u16, cookie: &str, path: &str) -> (u16, String) {
    super::http_request_raw(
        port,
        &format!("GET {path}"),
        &format!("Cookie: {cookie}\r\n"),
        "",
    )
}

#[test]
fn downloads_are_safe_the_log_view_marks_decisive_lines_and_notes_stay_internal() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(&dir.path().join("files.db"));
    let raw = customer_mail();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::write(dir.path().join("in/1.eml"), &raw).unwrap();
    let o = casebot_at(&url, dir.path(), &["import", "in"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shown = |url: &str| -> serde_json::Value {
        let o = casebot_at(url, dir.path(), &["show", CASE, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    let case = shown(&url);
    let mail = &case["messages"][0];
    let message_row = mail["id"].as_i64().unwrap();
    let part = mail["attachments"][0]["part"].as_i64().unwrap();
    assert_eq!(mail["attachments"][0]["filename"], LOG_NAME);
    let decisive: Vec<i64> = case["analysis"]["root_cause"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["file"] == LOG_NAME)
        .filter_map(|e| e["line"].as_i64())
        .collect();
    assert!(
        decisive.contains(&3),
        "the failing line is decisive: {:#}",
        case["analysis"]
    );

    let (mut daemon, port, cookie) = lead_on_the_desk(dir.path(), &url);
    let get = |path: &str| get_as(port, &cookie, path);
    let mail_url = format!("/cases/{CASE}/mails/{message_row}");

    // The raw mail, byte for byte, as a download that runs nothing.
    let (status, answer) = get(&format!("{mail_url}/raw"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(body(&answer), raw);
    assert_eq!(
        header(&answer, "content-disposition"),
        Some(format!("attachment; filename=\"{CASE}-{message_row}.eml\"; filename*=UTF-8''{CASE}-{message_row}.eml").as_str())
    );
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("content-security-policy", "sandbox; default-src 'none'"),
        ("content-type", "message/rfc822"),
    ] {
        assert_eq!(header(&answer, name), Some(value), "{answer}");
    }
    // The attachment: its bytes, its UTF-8 name, never its declared type.
    let (status, answer) = get(&format!("{mail_url}/attachments/{part}"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(body(&answer), log_text());
    assert_eq!(
        header(&answer, "content-type"),
        Some("application/octet-stream")
    );
    assert!(
        header(&answer, "content-disposition")
            .unwrap()
            .ends_with("filename*=UTF-8''CBS_%E6%97%A5%E5%BF%97.log"),
        "{answer}"
    );
    assert_eq!(
        header(&answer, "content-security-policy"),
        Some("sandbox; default-src 'none'")
    );
    // The text view: escaped, numbered, the decisive line marked.
    let (status, answer) = get(&format!("{mail_url}/attachments/{part}/text"));
    assert_eq!(status, 200, "{answer}");
    let page = body(&answer);
    for line in &decisive {
        assert!(
            page.contains(&format!("<mark class=\"decisive\" id=\"L{line}\">")),
            "line {line} is not marked: {page}"
        );
    }
    assert!(
        !page.contains("<mark class=\"decisive\" id=\"L4\">"),
        "only decisive lines are marked"
    );
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    // Only for this case's mails, and only with a login.
    assert_eq!(
        get(&format!("/cases/CAS-99999-NOPE00/mails/{message_row}/raw")).0,
        404
    );
    assert_eq!(get(&format!("{mail_url}/attachments/99")).0, 404);
    let (status, answer) = super::http_get(port, &format!("{mail_url}/raw"));
    assert_eq!(status, 303, "{answer}");
    assert!(
        !answer.contains("Zhao Ming"),
        "nothing of the mail without a login"
    );
    // The case page links them.
    let (_, page) = get(&format!("/cases/{CASE}"));
    assert!(page.contains(&format!("href=\"{mail_url}/raw\"")), "{page}");
    assert!(page.contains(&format!("href=\"{mail_url}/attachments/{part}/text\"")));

    // A note from the desk, and one from the command line.
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let form = format!("csrf={csrf}&body={}", super::abuse::form_escape(NOTE));
    let (status, answer) = http_post(port, &format!("/cases/{CASE}/notes"), &cookie, &form);
    assert_eq!(status, 303, "{answer}");
    let (status, _) = http_post(
        port,
        &format!("/cases/{CASE}/notes"),
        &cookie,
        "csrf=forged&body=x",
    );
    assert_eq!(status, 403, "a note needs the session's CSRF token");
    let (status, _) = http_post(
        port,
        &format!("/cases/{CASE}/notes"),
        &cookie,
        &format!("csrf={csrf}&body=%20%20"),
    );
    assert_eq!(status, 422, "an empty note is refused");
    let o = casebot_at(
        &url,
        dir.path(),
        &[
            "note",
            CASE,
            "call the customer on Monday",
            "--as",
            "lead",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let note: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(note["internal"], true);
    let case = shown(&url);
    let notes = case["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0]["body"], NOTE);
    assert_eq!(notes[0]["author"], "lead");
    assert_eq!(
        case["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "note_added")
            .count(),
        2,
        "each note is in the audit trail"
    );
    let (_, page) = get(&format!("/cases/{CASE}"));
    assert!(
        page.contains("internal marker 7f3a"),
        "the note is on the case page"
    );

    // The case's reply goes out without either note.
    let o = casebot_at(&url, dir.path(), &["drafts", "--json"]);
    let drafts: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let draft = drafts
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["case_key"] == CASE)
        .expect("a draft");
    let id = draft["id"].to_string();
    let o = casebot_at(
        &url,
        dir.path(),
        &["approve", &id, "--as", "lead", "--send"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut sent = String::new();
    for entry in std::fs::read_dir(dir.path().join("outbox")).unwrap() {
        sent.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.unwrap().path()).unwrap(),
        ));
    }
    assert!(sent.contains(CASE), "the reply was sent: {sent}");
    assert!(
        !sent.contains("7f3a") && !sent.contains("Monday"),
        "a note went out: {sent}"
    );

    // After retention the raw mail is gone, and the download says so.
    super::execute_sql(
        &url,
        &[&format!(
            "UPDATE cases SET status = 'resolved', updated_at = updated_at - 31536000 WHERE key = '{CASE}'"
        )],
    );
    let o = casebot_at(&url, dir.path(), &["retention", "--days", "30", "--apply"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (status, answer) = get(&format!("{mail_url}/raw"));
    assert_eq!(status, 410, "{answer}");
    assert!(answer.contains("保留策略"), "{answer}");

    // SAFETY: signalling our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    daemon.wait().unwrap();
}

/// `casebot user add NAME --role ROLE --email ADDR` with `password` typed in.
fn add_user(dir: &std::path::Path, url: &str, name: &str, role: &str, email: &str, password: &str) {
    let args = ["user", "add", name, "--role", role, "--email", email];
    let out = super::casebot_with_password(url, dir, &args, password);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The SLA board is the team lead's view of every open case; an engineer's
/// board (and `/api/board`, `/api/sla`) holds the cases they own.
#[test]
fn the_board_shows_an_engineer_their_own_cases_and_the_lead_every_case() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(&dir.path().join("board.db"));
    let threads = super::example("threads");
    let o = casebot_at(&url, dir.path(), &["import", threads.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    const PASSWORD: &str = "a long enough password";
    add_lead(dir.path(), &url, PASSWORD);
    // The example open case's mail comes from this engineer's address.
    add_user(
        dir.path(),
        &url,
        "chen.desk",
        "engineer",
        "chen.desk@desk.example.com",
        PASSWORD,
    );
    add_user(
        dir.path(),
        &url,
        "li.new",
        "engineer",
        "li.new@desk.example.com",
        PASSWORD,
    );
    let port = super::mailstack::free_port();
    let mut daemon = serve(dir.path(), &url, port, &[], &dir.path().join("serve.log"));
    let board_of = |name: &str| -> Vec<String> {
        let session = login(port, name, PASSWORD);
        let cookie = format!("Cookie: casebot_session={session}\r\n");
        let (status, answer) = super::http_get_with(port, "/api/board", &cookie);
        assert_eq!(status, 200, "{answer}");
        let board: serde_json::Value = serde_json::from_str(body(&answer)).unwrap();
        let keys: Vec<String> = board["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["case_key"].as_str().unwrap().to_string())
            .collect();
        let (_, answer) = super::http_get_with(port, "/api/sla", &cookie);
        let sla: serde_json::Value = serde_json::from_str(body(&answer)).unwrap();
        let sla_keys: Vec<String> = sla
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["case_key"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(keys, sla_keys, "/api/sla shows {name} what the board does");
        keys
    };
    let lead = board_of("lead");
    assert!(lead.contains(&"CAS-10003-SC5K8P".to_string()), "{lead:?}");
    assert!(lead.len() >= 2, "the lead sees every open case: {lead:?}");
    assert_eq!(board_of("chen.desk"), vec!["CAS-10003-SC5K8P".to_string()]);
    assert!(board_of("li.new").is_empty(), "nothing of others' cases");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    daemon.wait().unwrap();
}

/// An engineer writes their own reply: a free draft holds the greeting, a
/// <TEXT> fill-in and the signature; the text modules render for the
/// draft's case; approval refuses the unfilled <TEXT>, then sends the words
/// written, through the same gate and outbox.
#[test]
fn a_free_reply_with_a_text_module_goes_through_the_same_gate() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(&dir.path().join("free.db"));
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::write(dir.path().join("in/1.eml"), customer_mail()).unwrap();
    let o = casebot_at(&url, dir.path(), &["import", "in"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (mut daemon, port, cookie) = lead_on_the_desk(dir.path(), &url);
    let get = |path: &str| get_as(port, &cookie, path);
    let (_, page) = get(&format!("/cases/{CASE}"));
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    assert!(page.contains("撰写回复"), "{page}");
    let (status, answer) = http_post(
        port,
        &format!("/cases/{CASE}/drafts"),
        &cookie,
        &format!("csrf={csrf}&kind=free"),
    );
    assert_eq!(status, 303, "{answer}");
    let location = header(&answer, "location").unwrap().to_string();
    let id: i64 = location.trim_start_matches("/drafts/").parse().unwrap();
    let (_, editor) = get(&location);
    assert!(
        editor.contains("id=\"snippets\""),
        "the editor offers the text modules"
    );
    let (status, answer) = get(&format!("/api/drafts/{id}"));
    assert_eq!(status, 200, "{answer}");
    let draft: serde_json::Value = serde_json::from_str(body(&answer)).unwrap();
    assert_eq!(draft["kind"], "free");
    let text = draft["body"].as_str().unwrap().to_string();
    assert!(text.contains("<TEXT>") && text.contains("您好"), "{text}");

    let (status, answer) = get(&format!("/api/drafts/{id}/snippets"));
    assert_eq!(status, 200, "{answer}");
    let snippets: serde_json::Value = serde_json::from_str(body(&answer)).unwrap();
    let collect = snippets
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "collect-logs")
        .expect("the collect-logs module");
    let module = collect["text"].as_str().unwrap();
    assert!(
        module.contains("https://upload.example.com/") && module.contains("LogCollector.zip"),
        "rendered for the case: {module}"
    );
    assert!(!module.contains("{{"), "{module}");
    let follow = snippets
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "follow-up")
        .unwrap();
    assert!(follow["text"].as_str().unwrap().contains(CASE), "{follow}");

    // Approved on the desk with <TEXT> unfilled: the editor again, the
    // problem listed with its place, nothing approved.
    let form = format!(
        "csrf={csrf}&revision={}&action=approve&body={}",
        draft["revision"],
        super::abuse::form_escape(&text)
    );
    let (status, answer) = http_post(port, &format!("/drafts/{id}"), &cookie, &form);
    assert_eq!(status, 422, "{answer}");
    assert!(answer.contains("id=\"refused\""), "{answer}");
    assert!(answer.contains("占位符 &lt;TEXT&gt; 尚未填写"), "{answer}");
    assert!(
        answer.contains("<textarea"),
        "the text stays in front of the engineer"
    );
    // <TEXT> unfilled: refused on the command line too.
    let id_text = id.to_string();
    let o = casebot_at(&url, dir.path(), &["approve", &id_text, "--as", "lead"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("<TEXT>"), "{}", stderr(&o));
    // The engineer's words, with the module, through the same gate and outbox.
    let file = dir.path().join("free.txt");
    std::fs::write(
        &file,
        text.replace("<TEXT>", &format!("我们看了您的日志。\n{module}")),
    )
    .unwrap();
    let o = casebot_at(
        &url,
        dir.path(),
        &[
            "draft",
            "edit",
            &id_text,
            "--as",
            "lead",
            "--file",
            file.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = casebot_at(
        &url,
        dir.path(),
        &["approve", &id_text, "--as", "lead", "--send"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut sent = String::new();
    for entry in std::fs::read_dir(dir.path().join("outbox")).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        sent.push_str(&parsed.body_text(0).unwrap_or_default());
    }
    assert!(sent.contains("我们看了您的日志。"), "{sent}");
    assert!(!sent.contains("<TEXT>"), "{sent}");
    // The command line starts one too.
    let o = casebot_at(
        &url,
        dir.path(),
        &[
            "draft", "new", CASE, "--kind", "free", "--as", "lead", "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = casebot_at(
        &url,
        dir.path(),
        &[
            "draft",
            "snippets",
            &serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["id"].to_string(),
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("collect-logs"), "{}", stdout(&o));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    daemon.wait().unwrap();
}
