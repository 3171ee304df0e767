//! The full-text search on the store the suite runs on (SQLite, then
//! PostgreSQL): Chinese substrings in bodies and attachment names, error
//! codes and KB prefixes, the filters, nothing from notes; mail filed before
//! the index existed indexed by the daemon; the desk's page marks the match
//! and escapes the mail's text.

use super::abuse::{add_lead, login, serve};
use super::{casebot_at, stderr, stdout, store_url};

const PASSWORD: &str = "a long enough lead password";

/// A customer's mail of case `key` with `body` and, if named, a text
/// attachment.
fn mail(key: &str, n: u32, body: &str, attachment: Option<&str>) -> String {
    let head = format!(
        "From: Qian Fang <qian.fang@example.cn>\r\nTo: support@example.com\r\n\
         Subject: [案例号: {key} ] % |P2|EXAMPLE-BANK|月度补丁问题 % 初次响应\r\n\
         Message-ID: <search-{n}@mail.example.cn>\r\nDate: Mon, 4 Mar 2024 09:{n:02}:00 +0800\r\n\
         MIME-Version: 1.0\r\n"
    );
    match attachment {
        None => format!("{head}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"),
        Some(name) => format!(
            "{head}Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
             --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\r\nlog line\r\n--b1--\r\n"
        ),
    }
}

fn search(url: &str, dir: &std::path::Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["search", "--json"];
    all.extend(args);
    let o = casebot_at(url, dir, &all);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str::<serde_json::Value>(&stdout(&o))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn keys(hits: &[serde_json::Value]) -> Vec<&str> {
    hits.iter()
        .map(|h| h["case_key"].as_str().unwrap())
        .collect()
}

#[test]
fn chinese_substrings_codes_and_attachment_names_are_found_notes_never() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(&dir.path().join("search.db"));
    let inbox = dir.path().join("in");
    std::fs::create_dir_all(&inbox).unwrap();
    let mails = [
        mail(
            "CAS-50001-SR1AAA",
            1,
            "您好，服务器的累积更新一直安装失败，错误代码 0x800f0922，KB5034441 也装不上。",
            None,
        ),
        mail(
            "CAS-50002-SR2BBB",
            2,
            "你好，日志已上传，请查收。<script>alert(1)</script>",
            Some("机房服务器更新记录.txt"),
        ),
        mail(
            "CAS-50003-SR3CCC",
            3,
            "Hello, the update fails with 0x80070643.",
            None,
        ),
    ];
    for (n, m) in mails.iter().enumerate() {
        std::fs::write(inbox.join(format!("{n}.eml")), m).unwrap();
    }
    let o = casebot_at(&url, dir.path(), &["import", inbox.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A Chinese substring in the middle of a body, not at a word start.
    let hits = search(&url, dir.path(), &["累积更新一直安装"]);
    assert_eq!(keys(&hits), ["CAS-50001-SR1AAA"]);
    assert_eq!(hits[0]["snippet"]["hit"], "累积更新一直安装");
    assert_eq!(hits[0]["kind"], "mail");
    // Two characters are enough; an attachment's name is searched too.
    assert_eq!(
        keys(&search(&url, dir.path(), &["更新记录"])),
        ["CAS-50002-SR2BBB"]
    );
    let both = search(&url, dir.path(), &["服务器"]);
    assert_eq!(both.len(), 2, "{both:#?}");
    // Every word must occur; an error code; a KB by its start.
    assert_eq!(
        keys(&search(&url, dir.path(), &["服务器", "0x800f0922"])),
        ["CAS-50001-SR1AAA"]
    );
    assert_eq!(
        keys(&search(&url, dir.path(), &["kb5034"])),
        ["CAS-50001-SR1AAA"]
    );
    assert_eq!(
        keys(&search(&url, dir.path(), &["0X80070643"])),
        ["CAS-50003-SR3CCC"]
    );
    // Filters: a customer no case has, and a date range.
    assert!(search(&url, dir.path(), &["服务器", "--customer", "nobody"]).is_empty());
    assert_eq!(
        search(
            &url,
            dir.path(),
            &["服务器", "--since", "2024-03-04", "--before", "2024-03-05"]
        )
        .len(),
        2
    );
    assert!(search(&url, dir.path(), &["服务器", "--since", "2024-03-05"]).is_empty());
    // What the desk writes for itself is not searched.
    let o = casebot_at(
        &url,
        dir.path(),
        &[
            "note",
            "CAS-50003-SR3CCC",
            "--as",
            "lead",
            "内部备注独有的词语 zq7marker",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(search(&url, dir.path(), &["独有的词语"]).is_empty());
    assert!(search(&url, dir.path(), &["zq7marker"]).is_empty());
    // Nothing to search for is a usage error, not every case.
    let o = casebot_at(&url, dir.path(), &["search", "，。"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // Mail filed before the index existed: the daemon indexes it.
    forget_the_index(&url);
    assert!(search(&url, dir.path(), &["服务器"]).is_empty());
    add_lead(dir.path(), &url, PASSWORD);
    let port = super::mailstack::free_port();
    let mut daemon = serve(dir.path(), &url, port, &[], &dir.path().join("serve.log"));
    super::wait_until(
        30,
        "the older mail indexed",
        || std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default(),
        || search(&url, dir.path(), &["服务器"]).len() == 2,
    );

    // The desk's page: the match marked, the mail's text escaped.
    let cookie = format!(
        "Cookie: casebot_session={}\r\n",
        login(port, "lead", PASSWORD)
    );
    let (status, page) =
        super::http_get_with(port, "/search?q=%E8%AF%B7%E6%9F%A5%E6%94%B6", &cookie);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<mark>请查收</mark>"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert(1)"), "{page}");
    let (status, json) = super::http_get_with(port, "/api/search?q=kb5034", &cookie);
    assert_eq!(status, 200);
    assert!(json.contains("CAS-50001-SR1AAA"), "{json}");
    let (status, _) = super::http_get(port, "/api/search?q=kb5034");
    assert_eq!(status, 401, "the search needs a login");
    let _ = daemon.kill();
    let _ = daemon.wait();
}

/// Empties the index and sets its backlog cursor, as a store upgraded from
/// a build without the search is.
fn forget_the_index(url: &str) {
    super::execute_sql(
        url,
        &[
            "DELETE FROM search_index",
            "UPDATE cursors SET position = (SELECT MAX(id) FROM messages) WHERE name = 'search_backfill'",
        ],
    );
}
