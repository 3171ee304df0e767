//! The team lead's administration in the browser's place (plain HTTP with
//! the lead's session): accounts added and changed, a quarantined mail's
//! headers shown escaped, replayed into its case and another discarded with
//! a reason, a knowledge entry corrected; engineers kept out.

use super::abuse::{add_lead, form_escape, http_post, login, serve};
use super::{casebot_at, stderr, stdout, store_url};

const PASSWORD: &str = "a long enough lead password";

fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form's CSRF token")
        .to_string()
}

fn big_mail(n: u32, subject: &str) -> String {
    format!(
        "From: Sun Li <sun.li@example.cn>\r\nTo: support@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <admin-{n}@mail.example.cn>\r\nDate: Mon, 4 Mar 2024 09:00:00 +0800\r\n\r\n{}\r\n",
        "日志".repeat(1000)
    )
}

#[test]
fn the_lead_runs_accounts_quarantine_and_knowledge_from_the_desk() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(&dir.path().join("admin.db"));
    // Two mails over a small size limit: quarantined.
    std::fs::write(
        dir.path().join("small.toml"),
        "[ingest]\nmax_message_bytes = 1000\n",
    )
    .unwrap();
    let inbox = dir.path().join("in");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(
        inbox.join("1.eml"),
        big_mail(
            1,
            "[案例号: CAS-60001-AD1AAA ] % |P2|ACME|<b>补丁</b>失败 %",
        ),
    )
    .unwrap();
    std::fs::write(inbox.join("2.eml"), big_mail(2, "spam <script>x</script>")).unwrap();
    let o = casebot_at(
        &url,
        dir.path(),
        &["--config", "small.toml", "import", inbox.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list = casebot_at(&url, dir.path(), &["quarantine", "list", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(list.len(), 2, "{list:#?}");
    let (first, second) = (
        list[0]["id"].as_i64().unwrap(),
        list[1]["id"].as_i64().unwrap(),
    );

    add_lead(dir.path(), &url, PASSWORD);
    let port = super::mailstack::free_port();
    let mut daemon = serve(dir.path(), &url, port, &[], &dir.path().join("serve.log"));
    let cookie = format!("casebot_session={}", login(port, "lead", PASSWORD));
    let get = |path: &str| super::http_get_with(port, path, &format!("Cookie: {cookie}\r\n"));

    // Accounts: add an engineer, make them read English, then lead, then
    // a new password; the lead cannot disable themselves.
    let (status, page) = get("/admin/users");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("添加账户"),
        "the desk's default language: {page}"
    );
    let csrf = csrf_of(&page);
    let form = format!(
        "csrf={csrf}&name=zhang.eng&role=engineer&email=zhang.eng%40desk.example.com&display_name={}&language=en&password=engineer-pass-9",
        form_escape("张伟 Zhang Wei")
    );
    let (status, answer) = http_post(port, "/admin/users", &cookie, &form);
    assert_eq!(status, 303, "{answer}");
    let users = casebot_at(&url, dir.path(), &["user", "list", "--json"]);
    let users: Vec<serde_json::Value> = serde_json::from_str(&stdout(&users)).unwrap();
    let zhang = users.iter().find(|u| u["name"] == "zhang.eng").unwrap();
    assert_eq!(zhang["display_name"], "张伟 Zhang Wei");
    assert_eq!(zhang["language"], "en");
    assert_eq!(zhang["role"], "engineer");
    // The engineer logs in (in English) and is kept out of the administration.
    let engineer = format!(
        "casebot_session={}",
        login(port, "zhang.eng", "engineer-pass-9")
    );
    let (status, page) =
        super::http_get_with(port, "/admin/users", &format!("Cookie: {engineer}\r\n"));
    assert_eq!(status, 403);
    assert!(page.contains("this page is for the team lead"), "{page}");
    let (status, _) = http_post(
        port,
        "/admin/users/zhang.eng",
        &engineer,
        &format!("csrf={csrf}&action=role&value=lead"),
    );
    assert_eq!(status, 403, "an engineer made themselves lead");
    for (action, value) in [("role", "lead"), ("password", "another-pass-10")] {
        let (status, answer) = http_post(
            port,
            "/admin/users/zhang.eng",
            &cookie,
            &format!("csrf={csrf}&action={action}&value={value}"),
        );
        assert_eq!(status, 303, "{action}: {answer}");
    }
    // The new password ended the engineer's session.
    let (status, _) = super::http_get_with(port, "/api/cases", &format!("Cookie: {engineer}\r\n"));
    assert_eq!(status, 401);
    let (status, answer) = http_post(
        port,
        "/admin/users/lead",
        &cookie,
        &format!("csrf={csrf}&action=disable"),
    );
    assert_eq!(status, 422, "{answer}");
    let (status, _) = http_post(
        port,
        "/admin/users/nobody",
        &cookie,
        &format!("csrf={csrf}&action=enable"),
    );
    assert_eq!(status, 404);

    // The quarantine: headers as text, escaped; a replay files the first
    // (the daemon runs with the default size limit), the second is discarded.
    let (status, page) = get("/admin/quarantine");
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("/admin/quarantine/{first}")),
        "{page}"
    );
    let (status, page) = get(&format!("/admin/quarantine/{second}"));
    assert_eq!(status, 200);
    assert!(
        page.contains("spam &lt;script&gt;x&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>x"), "{page}");
    let (status, answer) = http_post(
        port,
        &format!("/admin/quarantine/{first}"),
        &cookie,
        &format!("csrf={csrf}&action=replay"),
    );
    assert_eq!(status, 303, "{answer}");
    let o = casebot_at(&url, dir.path(), &["show", "CAS-60001-AD1AAA", "--json"]);
    assert!(
        o.status.success(),
        "the replay filed the mail: {}",
        stderr(&o)
    );
    let (status, _) = http_post(
        port,
        &format!("/admin/quarantine/{second}"),
        &cookie,
        &format!("csrf={csrf}&action=discard&reason=%20"),
    );
    assert_eq!(status, 422, "a discard needs a reason");
    let (status, _) = http_post(
        port,
        &format!("/admin/quarantine/{second}"),
        &cookie,
        &format!(
            "csrf={csrf}&action=discard&reason={}",
            form_escape("垃圾邮件")
        ),
    );
    assert_eq!(status, 303);
    let all = casebot_at(&url, dir.path(), &["quarantine", "list", "--all", "--json"]);
    let all: Vec<serde_json::Value> = serde_json::from_str(&stdout(&all)).unwrap();
    let discarded = all.iter().find(|e| e["id"] == second).unwrap();
    assert_eq!(discarded["discarded_by"], "lead");
    assert_eq!(discarded["discard_reason"], "垃圾邮件");
    let waiting = casebot_at(&url, dir.path(), &["quarantine", "list", "--json"]);
    assert_eq!(stdout(&waiting).trim(), "[]");
    // Decided is decided: a second replay finds nothing.
    let (status, _) = http_post(
        port,
        &format!("/admin/quarantine/{second}"),
        &cookie,
        &format!("csrf={csrf}&action=replay"),
    );
    assert_eq!(status, 404);

    // Mailboxes: the Maildir default has no IMAP state to show.
    let (status, page) = get("/admin/mailboxes");
    assert_eq!(status, 200);
    assert!(page.contains("没有监视的 IMAP 邮箱"), "{page}");
    let (status, page) = get("/admin/knowledge");
    assert_eq!(status, 200, "{page}");

    let _ = daemon.kill();
    let _ = daemon.wait();
}
