//! The command line as a user runs it: JSON shapes, exit codes, config errors,
//! quarantine and replay, the CASEBOT_DB override.

use super::{casebot, fixture, json_lines, stderr, stdout};

fn assert_keys(value: &serde_json::Value, keys: &[&str]) {
    for key in keys {
        assert!(value.get(key).is_some(), "missing {key} in {value}");
    }
}

#[test]
fn parse_json_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let o = casebot(
        &db,
        dir.path(),
        &[
            "parse",
            fixture("mail/folded_subject.eml").to_str().unwrap(),
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_keys(
        &v,
        &[
            "message_id",
            "in_reply_to",
            "references",
            "from",
            "to",
            "cc",
            "date",
            "subject",
            "case",
            "direction",
            "resolution_signal",
            "body",
            "log_links",
            "attachments",
        ],
    );
    assert_keys(
        &v["case"],
        &[
            "case_id",
            "title",
            "priority",
            "customer",
            "stage",
            "internal_ref",
        ],
    );
    assert_eq!(v["case"]["case_id"], "CAS-10004-QX9W3R");
    assert_eq!(v["from"]["address"], "zhang.wei@example.cn");
    assert_eq!(v["direction"], "customer");
    assert!(!db.exists(), "parse must not touch the store");
    let o = casebot(&db, dir.path(), &["parse", "/dev/null"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
}

#[test]
fn import_cases_show_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let threads = super::example("threads");
    let o = casebot(
        &db,
        dir.path(),
        &["import", threads.to_str().unwrap(), "--json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 20);
    assert!(
        lines
            .iter()
            .all(|l| l["status"] == "imported" && l["case_key"].is_string())
    );
    assert!(stderr(&o).contains("imported 20"));
    if super::store_url(&db).starts_with("sqlite:") {
        assert!(db.exists(), "CASEBOT_DB must be used");
    }

    let o = casebot(
        &db,
        dir.path(),
        &["import", threads.to_str().unwrap(), "--json"],
    );
    assert!(json_lines(&o).iter().all(|l| l["status"] == "duplicate"));

    let o = casebot(&db, dir.path(), &["cases", "--json"]);
    let cases: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(cases.len(), 4);
    let a = cases
        .iter()
        .find(|c| c["key"] == "CAS-10001-HL7Q2M")
        .unwrap();
    assert_keys(
        a,
        &[
            "case_id",
            "title",
            "priority",
            "customer",
            "stage",
            "status",
            "message_count",
            "first_message_at",
            "last_message_at",
        ],
    );
    assert_eq!(a["message_count"], 10);

    let o = casebot(&db, dir.path(), &["show", "CAS-10002-HS4X6D", "--json"]);
    assert!(o.status.success());
    let d: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let dates: Vec<&str> = d["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["date"].as_str().unwrap())
        .collect();
    let mut sorted = dates.clone();
    sorted.sort();
    assert_eq!(dates, sorted, "messages in order");
    let o = casebot(&db, dir.path(), &["show", "CAS-00000-NOPE00"]);
    assert_eq!(o.status.code(), Some(3));
    let o = casebot(&db, dir.path(), &["cases"]);
    assert!(stdout(&o).contains("CAS-10001-HL7Q2M") && stdout(&o).contains("resolved"));
}

#[test]
fn quarantine_keeps_bytes_and_replay_files_after_a_config_change() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let big = dir.path().join("big.eml");
    let raw = format!(
        "From: a@example.cn\r\nSubject: [案例号:CAS-12121-QQQQQQ] %big%\r\nMessage-ID: <big@x>\r\n\r\n{}\r\n",
        "x".repeat(4000)
    );
    std::fs::write(&big, &raw).unwrap();
    std::fs::write(
        dir.path().join("small.toml"),
        "[ingest]\nmax_message_bytes = 1000\n",
    )
    .unwrap();
    let o = casebot(
        &db,
        dir.path(),
        &[
            "--config",
            "small.toml",
            "import",
            big.to_str().unwrap(),
            "--json",
        ],
    );
    let lines = json_lines(&o);
    assert_eq!(lines[0]["status"], "quarantined");
    assert!(
        lines[0]["reason"]
            .as_str()
            .unwrap()
            .contains("max_message_bytes")
    );

    let o = casebot(&db, dir.path(), &["quarantine", "list", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["size"], raw.len());
    // With the default limit, the replay files it.
    let o = casebot(&db, dir.path(), &["quarantine", "replay", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"imported\""), "{}", stdout(&o));
    let o = casebot(&db, dir.path(), &["quarantine", "list", "--json"]);
    assert_eq!(stdout(&o).trim(), "[]");
    let o = casebot(&db, dir.path(), &["show", "CAS-12121-QQQQQQ", "--json"]);
    assert!(o.status.success());
    let o = casebot(&db, dir.path(), &["quarantine", "replay", "999"]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn config_errors_name_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[store]\nurl = \"sqlite://x.db\"\n[desk]\nengineer_adresses = []\n",
    )
    .unwrap();
    let o = casebot(
        &dir.path().join("x.db"),
        dir.path(),
        &["--config", "bad.toml", "cases"],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("engineer_adresses") && err.contains("line 4"),
        "{err}"
    );
    let o = casebot(
        &dir.path().join("x.db"),
        dir.path(),
        &["--config", "missing.toml", "cases"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.toml"));
}

#[test]
fn the_shipped_config_toml_loads_and_help_works() {
    let dir = tempfile::tempdir().unwrap();
    let config = super::repo().join("config.toml");
    let o = casebot(
        &dir.path().join("x.db"),
        dir.path(),
        &["--config", config.to_str().unwrap(), "cases", "--json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for args in [
        &["--help"][..],
        &["import", "--help"],
        &["quarantine", "replay", "--help"],
        #[cfg(feature = "bench")]
        &["bench", "ingest", "--help"],
    ] {
        let o = casebot(&dir.path().join("x.db"), dir.path(), args);
        assert!(
            o.status.success() && stdout(&o).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn mbox_import() {
    let dir = tempfile::tempdir().unwrap();
    let mut mbox = Vec::new();
    for name in ["01.eml", "02.eml", "03.eml"] {
        mbox.extend_from_slice(b"From sender@example.cn Mon Mar  6 10:00:00 2023\n");
        let raw = std::fs::read(super::example(&format!("threads/caseless/{name}"))).unwrap();
        mbox.extend_from_slice(&raw);
        mbox.extend_from_slice(b"\n\n");
    }
    std::fs::write(dir.path().join("box.mbox"), mbox).unwrap();
    let db = dir.path().join("m.db");
    let o = casebot(&db, dir.path(), &["import", "box.mbox", "--json"]);
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 3, "{}", stderr(&o));
    assert!(
        lines
            .iter()
            .all(|l| l["status"] == "imported" && l["case_key"] == lines[0]["case_key"])
    );
    assert!(lines[1]["source"].as_str().unwrap().contains("box.mbox#1@"));
}

/// The README's first command on a fresh folder: no config file, the
/// embedded defaults, and `--demo` gives the desk the example threads.
#[test]
fn serve_demo_on_a_bare_folder_files_the_example_threads_once() {
    let dir = tempfile::tempdir().unwrap();
    // The embedded default store, whatever store the other tests use.
    let db = format!("sqlite://{}", dir.path().join("data/casebot.db").display());
    let port = super::mailstack::free_port();
    let start = |log_format: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_casebot"))
            .args(["serve", "--demo", "--log-format", log_format])
            .current_dir(dir.path())
            .env_remove("CASEBOT_DB")
            .env_remove("CASEBOT_CONFIG")
            .env("CASEBOT_LISTEN", format!("127.0.0.1:{port}"))
            .env("CASEBOT_METRICS_TOKEN", "scrape-token-for-the-test")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let stop = |child: std::process::Child| {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let examples: usize = ["hardlink", "hashmismatch", "caseless", "storecorrupt"]
        .iter()
        .map(|t| {
            std::fs::read_dir(super::example("threads").join(t))
                .unwrap()
                .count()
        })
        .sum();
    let cases = || -> Vec<serde_json::Value> {
        let o = super::casebot_at(&db, dir.path(), &["cases", "--json"]);
        if !o.status.success() {
            return Vec::new();
        }
        serde_json::from_str::<serde_json::Value>(&stdout(&o))
            .map(|v| v.as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    };
    let filed = || -> usize {
        cases()
            .iter()
            .map(|c| c["message_count"].as_u64().unwrap_or(0) as usize)
            .sum()
    };
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };

    let serve = start("plain");
    wait("every example mail filed", &|| filed() == examples);
    // The web desk answers, and only behind a login.
    assert_eq!(super::http_get(port, "/healthz").0, 200);
    let (status, head) = super::http_get(port, "/cases");
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /login?next=/cases"), "{head}");
    // No inline script may run in any answer.
    let (_, health) = super::http_get(port, "/healthz");
    assert!(
        health.contains("content-security-policy: default-src 'none'; script-src 'self';"),
        "{health}"
    );
    // /metrics: refused without a login or the scraper's token, served with it.
    assert_eq!(super::http_get(port, "/metrics").0, 401);
    let wrong = "Authorization: Bearer not-the-token\r\n";
    assert_eq!(super::http_get_with(port, "/metrics", wrong).0, 401);
    let right = "Authorization: Bearer scrape-token-for-the-test\r\n";
    let (status, metrics) = super::http_get_with(port, "/metrics", right);
    assert_eq!(status, 200, "{metrics}");
    // The open example case: its log analysed, its next steps drafted.
    wait("the open case's draft", &|| {
        let o = super::casebot_at(&db, dir.path(), &["drafts", "--json"]);
        o.status.success()
            && serde_json::from_str::<serde_json::Value>(&stdout(&o))
                .map(|v| v.as_array().is_some_and(|a| a.len() == 1))
                .unwrap_or(false)
    });
    // The counters follow: the open case's draft is counted as created.
    let created = || {
        let (_, metrics) = super::http_get_with(port, "/metrics", right);
        super::samples(&metrics, "casebot_drafts_total")
            .iter()
            .any(|(labels, v)| labels.contains("event=\"created\"") && *v == 1.0)
    };
    wait("the draft counted", &created);
    let (_, metrics) = super::http_get_with(port, "/metrics", right);
    super::check_metrics(&metrics);
    // Every mail of the demo counted in memory as it was filed.
    let filed_total: f64 = super::samples(&metrics, "casebot_mails_total")
        .iter()
        .filter(|(labels, _)| labels.contains("result=\"filed\""))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(filed_total as usize, examples, "{metrics}");
    // Ready: the store answers, the Maildir loop and every stage pass.
    let ready = || {
        let (status, body) = super::http_get(port, "/readyz");
        (status, body)
    };
    wait("ready", &|| ready().0 == 200);
    let (_, body) = ready();
    for check in [
        "\"store\"",
        "loop maildir:",
        "loop analysis",
        "loop drafting",
        "loop outbox",
    ] {
        assert!(body.contains(check), "{check} missing: {body}");
    }
    let o = super::casebot_at(&db, dir.path(), &["show", "CAS-10003-SC5K8P", "--json"]);
    let case: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        case["analysis"]["root_cause"]["class"], "component_store_corruption",
        "{:#}",
        case["analysis"]
    );
    let o = super::casebot_at(&db, dir.path(), &["drafts", "--json"]);
    let drafts: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(drafts[0]["case_key"], "CAS-10003-SC5K8P", "{drafts:#}");
    assert!(
        drafts[0]["body"].as_str().unwrap().contains("KB5031361"),
        "the draft names the half-installed update: {}",
        drafts[0]["body"]
    );
    let log = stop(serve);
    assert!(
        log.contains(&format!("{examples} example mails dropped")),
        "{log}"
    );
    // Not on a terminal: no colour escape codes for the journal to show.
    assert!(
        !log.contains('\x1b'),
        "escape codes in a piped log: {log:?}"
    );
    // A line about one case names it.
    let analysed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("mail analysed"))
        .collect();
    assert!(!analysed.is_empty(), "{log}");
    assert!(
        analysed
            .iter()
            .all(|l| l.contains("case=CAS-") || l.contains("case=T-")),
        "{analysed:#?}"
    );
    assert_eq!(cases().len(), 4, "four example threads, four cases");

    // A second demo start drops nothing new and stores nothing twice; its
    // log is one JSON object per line.
    let serve = start("json");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let log = stop(serve);
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    let dropped = events
        .iter()
        .find(|e| e["mails"] == 0)
        .unwrap_or_else(|| panic!("no demo line: {log}"));
    assert_eq!(dropped["level"], "INFO", "{dropped}");
    assert!(dropped["timestamp"].is_string(), "{dropped}");
    assert!(
        dropped["message"]
            .as_str()
            .unwrap()
            .contains("0 example mails dropped"),
        "{dropped}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "casebot serve starting"),
        "{log}"
    );
    assert_eq!(filed(), examples);
}

/// `casebot sla --now` is reproducible: the example threads evaluated as of
/// one instant, in JSON, most urgent first; `sla report` gives the period.
#[test]
fn sla_as_of_an_instant_and_the_period_report() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sla.db");
    for thread in ["hardlink", "hashmismatch", "caseless", "storecorrupt"] {
        let o = casebot(
            &db,
            dir.path(),
            &[
                "import",
                super::example("threads").join(thread).to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let sla = |now: &str| -> Vec<serde_json::Value> {
        let o = casebot(&db, dir.path(), &["sla", "--now", now, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    // The customer's mail with the logs came at 11:05 (+08:00); P1 owes an
    // update within 2 business hours.
    let at_noon = sla("2023-11-14 12:00");
    let open = &at_noon[0];
    assert_eq!(open["case_key"], "CAS-10003-SC5K8P");
    assert_eq!(open["priority"], "P1");
    assert_eq!(open["state"], "waiting_on_us");
    assert_eq!(open["owner"], "chen.desk@desk.example.com");
    assert_eq!(open["update"]["minutes_left"], 65);
    assert_eq!(open["update"]["due"], "2023-11-14T05:05:00Z");
    assert_eq!(open["update"]["breached"], false);
    // At 12:45, 100 of 120 minutes are used: at risk (80 %).
    let later = sla("2023-11-14T04:45:00Z");
    assert_eq!(later[0]["update"]["at_risk"], true);
    assert_eq!(later[0]["urgency"], "at_risk");
    // The next morning it has breached: 6 h 55 min on the 14th and one
    // hour on the 15th make 475 minutes used of 120.
    let next_day = sla("2023-11-15 10:00");
    assert_eq!(next_day[0]["update"]["breached"], true);
    assert_eq!(next_day[0]["update"]["minutes_left"], -355);
    // The same instant gives the same answer.
    assert_eq!(sla("2023-11-15 10:00"), next_day);
    // Closed cases are listed only with --all.
    assert!(next_day.iter().all(|c| c["state"] != "resolved"));

    let o = casebot(
        &db,
        dir.path(),
        &[
            "sla",
            "report",
            "--from",
            "2023-01-01",
            "--to",
            "2023-12-31",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["opened"], 4);
    assert_eq!(report["closed"], 2);
    assert!(report["by_priority"].as_array().unwrap().len() >= 3);
    let o = casebot(
        &db,
        dir.path(),
        &[
            "sla",
            "report",
            "--from",
            "2023-01-01",
            "--to",
            "2023-12-31",
            "--csv",
        ],
    );
    assert!(stdout(&o).starts_with("group,name,opened,closed,"));
    let o = casebot(&db, dir.path(), &["sla", "--now", "yesterday-ish"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not a time"), "{}", stderr(&o));
}

/// Accounts: a short password is refused, a taken name too; a disabled
/// account is listed as such.
#[test]
fn desk_accounts_from_the_command_line() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("users.db");
    let add = |name: &str, password: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_casebot"))
            .args([
                "user",
                "add",
                name,
                "--role",
                "engineer",
                "--email",
                "wu.desk@desk.example.com",
            ])
            .current_dir(dir.path())
            .env("CASEBOT_DB", super::store_url(&db))
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let short = add("wu", "short");
    assert_eq!(short.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 10"));
    assert!(add("wu", "long enough password").status.success());
    assert_eq!(add("wu", "long enough password").status.code(), Some(4));
    let o = casebot(&db, dir.path(), &["user", "disable", "wu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = casebot(&db, dir.path(), &["user", "list", "--json"]);
    let users: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(users[0]["name"], "wu");
    assert_eq!(users[0]["disabled"], true);
    assert!(
        users[0].get("password_hash").is_none(),
        "the hash is never printed"
    );
    let o = casebot(&db, dir.path(), &["user", "disable", "nobody"]);
    assert_eq!(o.status.code(), Some(3));
}

/// The command line checks what it can before running: a word that is not
/// one of an option's choices is a usage error listing them; every command
/// that changes something says what it did as JSON with `--json`;
/// completions and the man page come from the same definitions as `--help`,
/// which lists the exit codes.
#[test]
fn options_are_checked_and_changes_answer_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    for (args, choice) in [
        (&["cases", "--status", "waiting"][..], "waiting_on_us"),
        (&["drafts", "--status", "pendng"][..], "pending"),
        (
            &["draft", "new", "X", "--kind", "summary", "--as", "Li"][..],
            "next_steps",
        ),
        (&["analyze", "x.log", "--lang", "fr"][..], "zh-CN"),
    ] {
        let o = casebot(&db, dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("possible values") && stderr(&o).contains(choice),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let help = casebot(&db, dir.path(), &["--help"]);
    assert!(stdout(&help).contains("Exit codes:"), "{}", stdout(&help));
    assert!(stdout(&help).contains("3  not found"), "{}", stdout(&help));
    let bash = casebot(&db, dir.path(), &["completions", "bash"]);
    assert!(bash.status.success());
    assert!(
        stdout(&bash).contains("complete -F _casebot"),
        "{}",
        stdout(&bash)
    );
    assert!(
        stdout(&bash).contains("waiting_on_customer"),
        "choices complete too"
    );
    let man = casebot(&db, dir.path(), &["man"]);
    assert!(stdout(&man).contains(".TH casebot 1"), "{}", stdout(&man));

    // assign: a human line by default, JSON with --json.
    let threads = super::example("threads");
    assert!(
        casebot(&db, dir.path(), &["import", threads.to_str().unwrap()])
            .status
            .success()
    );
    let add = super::casebot_with_password(
        &super::store_url(&db),
        dir.path(),
        &["user", "add", "lin.eng", "--role", "engineer", "--json"],
        "a long enough password",
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let user: serde_json::Value = serde_json::from_slice(&add.stdout).unwrap();
    assert_eq!(user["name"], "lin.eng");
    let args = ["assign", "CAS-10003-SC5K8P", "lin.eng", "--as", "Zhou"];
    let o = casebot(&db, dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    let o = casebot(&db, dir.path(), &[&args[..], &["--json"]].concat());
    let assigned: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(assigned["owner"], "lin.eng", "{assigned}");
    let o = casebot(&db, dir.path(), &["user", "disable", "lin.eng", "--json"]);
    let user: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(user["disabled"], true, "{user}");
}

/// Under systemd (Type=notify, WatchdogSec): `serve` says READY=1 once it
/// runs, pings the watchdog at half its period, and says STOPPING=1 on
/// SIGTERM. The test is the service manager: it owns NOTIFY_SOCKET.
#[test]
fn serve_tells_the_service_manager_it_is_ready_alive_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let port = super::mailstack::free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_casebot"))
        .arg("serve")
        .current_dir(dir.path())
        .env(
            "CASEBOT_DB",
            super::store_url(&dir.path().join("notify.db")),
        )
        .env_remove("CASEBOT_CONFIG")
        .env("CASEBOT_LISTEN", format!("127.0.0.1:{port}"))
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let mut next = || {
        let n = socket.recv(&mut buf).expect("a notification within 30 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next(), "READY=1\n");
    // Ready means serving: the web desk answers now.
    assert_eq!(super::http_get(port, "/healthz").0, 200);
    // Pings every half second; two in a row show it keeps pinging.
    assert_eq!(next(), "WATCHDOG=1\n");
    assert_eq!(next(), "WATCHDOG=1\n");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut said = next();
    while said == "WATCHDOG=1\n" {
        said = next();
    }
    assert_eq!(said, "STOPPING=1\n");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
