//! Fixing misfiled mail on the store the suite runs on (SQLite, then
//! PostgreSQL): move, split, merge and undo keep every mail exactly once,
//! derive both cases again and re-evaluate their SLA; a later reply to a
//! moved mail follows it; a merged case's key and case number lead to the
//! case it joined; the desk does the same through its forms.

use super::abuse::{add_lead, http_post, login, serve};
use super::{casebot_at, example, stderr, stdout, store_url};

const PASSWORD: &str = "a long enough lead password";

fn json(url: &str, dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let o = casebot_at(url, dir, args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&o)))
}

/// Every case's mails by row: (case key → rows), and every row once.
fn placement(url: &str, dir: &std::path::Path) -> Vec<(String, Vec<i64>)> {
    let cases = json(url, dir, &["cases", "--json"]);
    let mut out = Vec::new();
    for c in cases.as_array().unwrap() {
        let key = c["key"].as_str().unwrap().to_string();
        let show = json(url, dir, &["show", &key, "--json", "--per-page", "200"]);
        let mut rows: Vec<i64> = show["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        rows.sort_unstable();
        assert_eq!(
            rows.len() as i64,
            c["message_count"].as_i64().unwrap(),
            "{key}"
        );
        out.push((key, rows));
    }
    let mut all: Vec<i64> = out.iter().flat_map(|(_, r)| r.clone()).collect();
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), total, "a mail in two cases: {out:?}");
    out
}

fn rows_of(place: &[(String, Vec<i64>)], key: &str) -> Vec<i64> {
    place
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, r)| r.clone())
        .unwrap_or_default()
}

fn reply_to(parent: &str, n: u32) -> String {
    format!(
        "From: Zhang Wei <zhang.wei@example.cn>\r\nTo: support@example.com\r\n\
         Subject: Re: =?utf-8?B?6K+i6Zeu77ya5aaC?=\r\nMessage-ID: <regroup-{n}@mail.example.cn>\r\n\
         In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\nDate: Mon, 6 Mar 2023 12:00:00 +0800\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n还是不行，日志再发一次。\r\n"
    )
}

#[test]
fn move_split_merge_and_undo_keep_every_mail_once_and_replies_follow() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(&dir.path().join("regroup.db"));
    for thread in ["hardlink", "hashmismatch", "caseless", "storecorrupt"] {
        let o = casebot_at(
            &url,
            dir.path(),
            &["import", example("threads").join(thread).to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let before = placement(&url, dir.path());
    let total: usize = before.iter().map(|(_, r)| r.len()).sum();
    let thread = before
        .iter()
        .find(|(k, _)| k.starts_with("T-"))
        .unwrap()
        .clone();
    let (thread_key, thread_rows) = thread;
    assert_eq!(thread_rows.len(), 3);
    let open = "CAS-10003-SC5K8P";

    // The thread's last mail belongs to the open case.
    let last = thread_rows[2].to_string();
    let moved = json(
        &url,
        dir.path(),
        &[
            "move",
            &last,
            "--to",
            "cas-10003-sc5k8p",
            "--as",
            "lead",
            "--reason",
            "misfiled",
            "--json",
        ],
    );
    assert_eq!(
        (moved["from"].as_str(), moved["to"].as_str()),
        (Some(thread_key.as_str()), Some(open))
    );
    let place = placement(&url, dir.path());
    assert_eq!(place.iter().map(|(_, r)| r.len()).sum::<usize>(), total);
    assert_eq!(rows_of(&place, &thread_key), thread_rows[..2]);
    assert!(rows_of(&place, open).contains(&thread_rows[2]));
    // Both cases carry the event, with who and why.
    for key in [thread_key.as_str(), open] {
        let show = json(&url, dir.path(), &["show", key, "--json"]);
        let event = show["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "messages_moved")
            .unwrap_or_else(|| panic!("{key}: no event"));
        assert_eq!(event["detail"]["by"], "lead");
        assert_eq!(event["detail"]["reason"], "misfiled");
    }
    // A reply to the moved mail follows it.
    let reply = dir.path().join("reply.eml");
    let parent = json(
        &url,
        dir.path(),
        &["show", open, "--json", "--per-page", "200"],
    )["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"].as_i64() == Some(thread_rows[2]))
        .unwrap()["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(&reply, reply_to(&parent, 1)).unwrap();
    let o = casebot_at(
        &url,
        dir.path(),
        &["import", reply.to_str().unwrap(), "--json"],
    );
    assert!(
        stdout(&o).contains(open),
        "the reply went elsewhere: {}",
        stdout(&o)
    );
    // The SLA of both cases is evaluated again: the open case waits on us.
    let sla = json(&url, dir.path(), &["sla", "--json"]);
    assert!(
        sla.as_array()
            .unwrap()
            .iter()
            .any(|c| c["case_key"] == open && c["state"] == "waiting_on_us"),
        "{sla:#}"
    );

    // Undo puts the mail back; a second undo is refused (exit 4).
    let event = moved["event"].as_i64().unwrap().to_string();
    json(
        &url,
        dir.path(),
        &[
            "undo",
            &event,
            "--as",
            "lead",
            "--reason",
            "it was right",
            "--json",
        ],
    );
    assert_eq!(
        rows_of(&placement(&url, dir.path()), &thread_key),
        thread_rows
    );
    let o = casebot_at(
        &url,
        dir.path(),
        &["undo", &event, "--as", "lead", "--reason", "again"],
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));

    // Split the thread at its second mail: a new case with the last two.
    let second = thread_rows[1].to_string();
    let split = json(
        &url,
        dir.path(),
        &[
            "split",
            &thread_key,
            "--at",
            &second,
            "--as",
            "lead",
            "--reason",
            "a second question",
            "--json",
        ],
    );
    assert_eq!(split["new_case"], true);
    let new_key = split["to"].as_str().unwrap().to_string();
    let place = placement(&url, dir.path());
    assert_eq!(rows_of(&place, &thread_key), thread_rows[..1]);
    assert_eq!(rows_of(&place, &new_key), thread_rows[1..]);
    let o = casebot_at(
        &url,
        dir.path(),
        &[
            "split",
            &thread_key,
            "--at",
            &thread_rows[0].to_string(),
            "--as",
            "lead",
            "--reason",
            "x",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(4),
        "a split that leaves nothing: {}",
        stderr(&o)
    );

    // Merge the open case into the hash-mismatch one: its key, and its case
    // number in new mail, lead there; undo brings it back.
    let into = "CAS-10002-HS4X6D";
    let open_rows = rows_of(&placement(&url, dir.path()), open);
    let merged = json(
        &url,
        dir.path(),
        &[
            "merge",
            open,
            into,
            "--as",
            "lead",
            "--reason",
            "same issue",
            "--json",
        ],
    );
    let place = placement(&url, dir.path());
    assert!(
        rows_of(&place, open).is_empty(),
        "the merged case is no longer listed"
    );
    assert_eq!(place.iter().map(|(_, r)| r.len()).sum::<usize>(), total + 1);
    assert_eq!(
        json(&url, dir.path(), &["show", open, "--json"])["key"],
        into
    );
    let numbered = dir.path().join("numbered.eml");
    std::fs::write(
        &numbered,
        "From: Liu Yang <liu.yang@example-power.example.cn>\r\nTo: support@example.com\r\n\
         Subject: =?utf-8?B?W+ahiOS+i+WPtzogQ0FTLTEwMDAzLVNDNUs4UCBd?=\r\n\
         Message-ID: <regroup-2@example-power.example.cn>\r\nDate: Tue, 14 Nov 2023 12:00:00 +0800\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n新的日志。\r\n",
    )
    .unwrap();
    let o = casebot_at(
        &url,
        dir.path(),
        &["import", numbered.to_str().unwrap(), "--json"],
    );
    assert!(
        stdout(&o).contains(into),
        "mail for a merged case: {}",
        stdout(&o)
    );
    json(
        &url,
        dir.path(),
        &[
            "undo",
            &merged["event"].as_i64().unwrap().to_string(),
            "--as",
            "lead",
            "--reason",
            "not the same",
            "--json",
        ],
    );
    let place = placement(&url, dir.path());
    // Its own mails come back; the mail filed for it while it was merged
    // stays where it was filed.
    assert_eq!(rows_of(&place, open), open_rows);
    assert_eq!(
        json(&url, dir.path(), &["show", open, "--json"])["key"],
        open
    );
    // Nothing without a reason.
    let o = casebot_at(
        &url,
        dir.path(),
        &["merge", open, into, "--as", "lead", "--reason", " "],
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));

    // The desk: move the first thread mail into a new case, then undo it.
    add_lead(dir.path(), &url, PASSWORD);
    let port = super::mailstack::free_port();
    let mut daemon = serve(dir.path(), &url, port, &[], &dir.path().join("serve.log"));
    let cookie = format!("casebot_session={}", login(port, "lead", PASSWORD));
    let (_, page) = super::http_get_with(
        port,
        &format!("/cases/{thread_key}"),
        &format!("Cookie: {cookie}\r\n"),
    );
    assert!(page.contains("从此处拆分"), "{page}");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let first = thread_rows[0];
    let (status, answer) = http_post(
        port,
        &format!("/cases/{thread_key}/move"),
        &cookie,
        &format!("csrf={csrf}&mail={first}&to=&reason=x"),
    );
    assert_eq!(status, 422, "neither a case nor a new one: {answer}");
    let (status, answer) = http_post(
        port,
        &format!("/cases/{thread_key}/move"),
        &cookie,
        &format!("csrf={csrf}&mail={first}&to={open}&reason=desk&action=move"),
    );
    assert_eq!(status, 303, "{answer}");
    let show = json(&url, dir.path(), &["show", open, "--json"]);
    let event = show["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["kind"] == "messages_moved" && e["detail"]["reason"] == "desk")
        .unwrap()["detail"]["event"]
        .as_i64()
        .unwrap();
    let (status, answer) = http_post(
        port,
        &format!("/events/{event}/undo"),
        &cookie,
        &format!("csrf={csrf}&reason=back"),
    );
    assert_eq!(status, 303, "{answer}");
    assert_eq!(
        rows_of(&placement(&url, dir.path()), &thread_key),
        thread_rows[..1]
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
}

#[test]
fn a_case_closed_reopened_and_reprioritised_by_hand_and_the_next_mail_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(&dir.path().join("marks.db"));
    let o = casebot_at(
        &url,
        dir.path(),
        &[
            "import",
            example("threads").join("storecorrupt").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let open = "CAS-10003-SC5K8P";
    let sla_of = |key: &str| {
        json(&url, dir.path(), &["sla", "--json", "--all"])
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["case_key"] == key)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(sla_of(open)["state"], "waiting_on_us");

    let closed = json(
        &url,
        dir.path(),
        &[
            "close",
            open,
            "--as",
            "lead",
            "--reason",
            "fixed by phone",
            "--json",
        ],
    );
    assert_eq!(
        (closed["from"].as_str(), closed["to"].as_str()),
        (Some("waiting_on_us"), Some("resolved"))
    );
    assert_eq!(
        json(&url, dir.path(), &["show", open, "--json"])["status"],
        "resolved"
    );
    assert_eq!(
        sla_of(open)["state"],
        "resolved",
        "the SLA follows the close"
    );
    let o = casebot_at(
        &url,
        dir.path(),
        &["close", open, "--as", "lead", "--reason", "again"],
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));

    // The priority set by hand stands over the subject's tag (P1 here).
    json(
        &url,
        dir.path(),
        &[
            "priority",
            open,
            "P4",
            "--as",
            "lead",
            "--reason",
            "the customer said it can wait",
            "--json",
        ],
    );
    assert_eq!(
        json(&url, dir.path(), &["show", open, "--json"])["priority"],
        "P4"
    );
    // A new customer mail reopens the case, and keeps the priority set by hand.
    let mail = dir.path().join("again.eml");
    // Written after the close, as a mail that reopens a case is.
    std::fs::write(
        &mail,
        format!(
            "From: Liu Yang <liu.yang@example-power.example.cn>\r\nTo: support@example.com\r\n\
             Subject: =?utf-8?B?5Zue5aSNOiBb5qGI5L6L5Y+3OiBDQVMtMTAwMDMtU0M1SzhQIF0gJSB8UDF8RVhBTVBMRS1QT1c=?=\r\n\
             Message-ID: <marks-1@example-power.example.cn>\r\nDate: {}\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n问题又出现了，日志见附件。\r\n",
            {
                // A second on, so the mail is not in the close's second.
                std::thread::sleep(std::time::Duration::from_millis(1100));
                chrono::Utc::now().to_rfc2822()
            }
        ),
    )
    .unwrap();
    let o = casebot_at(&url, dir.path(), &["import", mail.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let show = json(&url, dir.path(), &["show", open, "--json"]);
    assert_eq!(show["status"], "waiting_on_us");
    assert_eq!(show["priority"], "P4");
    assert_eq!(sla_of(open)["priority"], "P4");
    assert_eq!(sla_of(open)["state"], "waiting_on_us");
    // Cleared: the subjects decide again.
    json(
        &url,
        dir.path(),
        &[
            "priority",
            open,
            "--clear",
            "--as",
            "lead",
            "--reason",
            "back to the partner's",
            "--json",
        ],
    );
    assert_eq!(
        json(&url, dir.path(), &["show", open, "--json"])["priority"],
        "P1"
    );
    // Reopen needs a closed case; both leave their trail with who and why.
    json(
        &url,
        dir.path(),
        &["close", open, "--as", "lead", "--reason", "done", "--json"],
    );
    json(
        &url,
        dir.path(),
        &[
            "reopen", open, "--as", "lead", "--reason", "not done", "--json",
        ],
    );
    let show = json(&url, dir.path(), &["show", open, "--json"]);
    assert_eq!(show["status"], "waiting_on_us");
    let marks: Vec<&serde_json::Value> = show["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "status_set" || e["kind"] == "priority_changed")
        .collect();
    assert_eq!(marks.len(), 5, "{marks:#?}");
    assert!(marks.iter().all(|e| e["detail"]["by"] == "lead"));
}
