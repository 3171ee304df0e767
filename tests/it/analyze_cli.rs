//! `casebot analyze`, `rules check`, `bench analyze`, and the analysis stage
//! after `import`, as a user runs them.

use std::io::Write;

use base64::Engine;

use super::{casebot, copy_dir, repo, stderr, stdout};

fn write_cbs(dir: &std::path::Path) -> std::path::PathBuf {
    let log = "2023-02-22 15:20:00, Info                  CBS    TI: --- Initializing Trusted Installer ---\n\
2023-02-22 15:21:21, Error                 CSI    00000026 (F) STATUS_CANNOT_DELETE #5665019# from Windows::Rtl::SystemImplementation::CDirectory::DeleteExistingFile(...)[gle=0xd0000121]\n\
2023-02-22 15:21:21, Info                  CBS    Failed to add to transaction package: Package_8885_for_KB5022840~31bf3856ad364e35~amd64~~10.0.1.9 [HRESULT = 0x80004005 - E_FAIL]\n\
2023-02-22 15:21:21, Error                 CBS    Failed to stage execution package: Package_8885_for_KB5022840~31bf3856ad364e35~amd64~~10.0.1.9 [HRESULT = 0x80004005 - E_FAIL]\n";
    let path = dir.join("CBS.log");
    std::fs::write(&path, log).unwrap();
    path
}

#[test]
fn analyze_json_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let log = write_cbs(dir.path());
    let o = casebot(
        &db,
        dir.path(),
        &["analyze", log.to_str().unwrap(), "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for key in [
        "outcome",
        "root_cause",
        "error_codes",
        "kbs",
        "failing_package",
        "failing_component",
        "findings",
        "next_steps",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["outcome"], "failure");
    let rc = &v["root_cause"];
    for key in ["class", "summary", "rule", "evidence"] {
        assert!(rc.get(key).is_some(), "root_cause.{key}");
    }
    assert_eq!(rc["class"], "access_denied_or_service_disabled");
    assert_eq!(v["kbs"][0], "KB5022840");
    let f = &v["findings"][0];
    for key in [
        "rule",
        "severity",
        "file",
        "line",
        "time",
        "text",
        "codes",
        "kb",
        "package",
        "component",
    ] {
        assert!(f.get(key).is_some(), "findings[].{key}");
    }
    assert_eq!(f["line"], 2);
    let step = &v["next_steps"][0];
    assert!(step["id"].is_string() && step["text"].is_string());

    // The readable report quotes the decisive line with its place.
    let o = casebot(
        &db,
        dir.path(),
        &["analyze", log.to_str().unwrap(), "--lang", "en"],
    );
    let text = stdout(&o);
    assert!(text.contains("Outcome: failure"), "{text}");
    assert!(text.contains("CBS.log:2 [2023-02-22T15:21:21]"), "{text}");
    assert!(text.contains("(F) STATUS_CANNOT_DELETE"), "{text}");

    let o = casebot(&db, dir.path(), &["analyze", "/no/such/file.log"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = casebot(&db, dir.path(), &["analyze", "http://127.0.0.1:9/x.zip"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("allowed_hosts"), "{}", stderr(&o));
}

#[test]
fn rules_check_passes_and_names_file_and_line_of_a_broken_rule() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let o = casebot(&db, &repo(), &["rules", "check", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["rules"].as_u64().unwrap() > 100);

    // A copy of the rules with one broken pattern.
    let rules = dir.path().join("rules");
    copy_dir(&repo().join("rules"), &rules);
    let path = rules.join("30-cbs.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let broken = text.replacen(
        r"pattern = '''\(F\) STATUS_CANNOT_DELETE\b'''",
        "pattern = '''(unclosed'''",
        1,
    );
    assert_ne!(text, broken);
    let line = broken
        .lines()
        .position(|l| l.contains("(unclosed"))
        .unwrap()
        + 1;
    std::fs::write(&path, broken).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[analysis]\nrules_dir = \"rules\"\n").unwrap();
    let o = casebot(
        &db,
        dir.path(),
        &["--config", config.to_str().unwrap(), "rules", "check"],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("30-cbs.toml:{line}:")) && err.contains("does not compile"),
        "{err}"
    );
    // Every command that needs the rules refuses to run on them, saying why.
    let o = casebot(
        &db,
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "analyze",
            "config.toml",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("30-cbs.toml"), "{}", stderr(&o));
}

/// A log collector's zip holding the failing CBS.log of [`write_cbs`].
fn cbs_zip(dir: &std::path::Path) -> Vec<u8> {
    let log = std::fs::read(write_cbs(dir)).unwrap();
    let mut zip = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut zip);
        w.start_file("Logs/CBS/CBS.log", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(&log).unwrap();
        w.finish().unwrap();
    }
    zip.into_inner()
}

fn mail_with_zip(zip: &[u8], message_id: &str, body: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(zip);
    let wrapped: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "From: Han Mei <hanmei@partner.example.cn>\r\nTo: support@example.com\r\n\
Subject: =?UTF-8?B?{}?=\r\nMessage-ID: <{message_id}>\r\nDate: Wed, 22 Feb 2023 16:00:00 +0800\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n\r\n--b1\r\n\
Content-Type: application/zip; name=\"logs.zip\"\r\nContent-Disposition: attachment; filename=\"logs.zip\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        base64::engine::general_purpose::STANDARD.encode("[案例号: CAS-10301-LG7X2Q ] % |P2|DEMO-BANK| KB5022840 安装失败 % 初次响应 CMIT:0000301"),
        wrapped.join("\r\n")
    )
}

#[test]
fn import_analyses_attachments_and_pasted_lines_and_show_has_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let zip = cbs_zip(dir.path());
    let mails = dir.path().join("mails");
    std::fs::create_dir(&mails).unwrap();
    std::fs::write(
        mails.join("1.eml"),
        mail_with_zip(&zip, "a1@partner.example.cn", "日志已上传，请帮忙分析。"),
    )
    .unwrap();
    // A reply that pastes the DISM console output into its text.
    std::fs::write(
        mails.join("2.eml"),
        "From: Han Mei <hanmei@partner.example.cn>\r\nTo: support@example.com\r\n\
Subject: =?UTF-8?B?5Zue5aSNOiBb5qGI5L6L5Y+3OiBDQVMtMTAzMDEtTEc3WDJRIF0gJSB8UDJ8REVNTy1CQU5LfCBLQjUwMjI4NDAg5a6J6KOF5aSx6LSlICUg6Lef6L+b?=\r\n\
Message-ID: <a2@partner.example.cn>\r\nIn-Reply-To: <a1@partner.example.cn>\r\nDate: Thu, 23 Feb 2023 10:00:00 +0800\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
按要求执行了 DISM，结果如下：\r\n\r\nError: 14098\r\n\r\nThe component store has been corrupted.\r\n",
    )
    .unwrap();
    let o = casebot(&db, dir.path(), &["import", mails.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("analysed 2 mails"), "{}", stderr(&o));

    let o = casebot(&db, dir.path(), &["show", "CAS-10301-LG7X2Q", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let analyses = v["analyses"].as_array().unwrap();
    assert_eq!(analyses.len(), 2, "{analyses:?}");
    assert_eq!(analyses[0]["class"], "access_denied_or_service_disabled");
    assert_eq!(analyses[1]["class"], "component_store_corruption");
    assert_eq!(analyses[1]["error_codes"][0], "0x80073712");
    // The case's current conclusion is the newest one.
    assert_eq!(
        v["analysis"]["root_cause"]["class"],
        "component_store_corruption"
    );
    let events: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        events.iter().filter(|k| **k == "analysis_finished").count(),
        2,
        "{events:?}"
    );

    // Re-analysis of the case is a command, and idempotent.
    let o = casebot(
        &db,
        dir.path(),
        &["analyze", "--case", "CAS-10301-LG7X2Q", "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let again: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(again.as_array().unwrap().len(), 2);
    assert_eq!(again[0]["class"], "access_denied_or_service_disabled");
    let o = casebot(&db, dir.path(), &["analyze", "--case", "CAS-99999-NOPE99"]);
    assert_eq!(o.status.code(), Some(3));
}

// `casebot bench` exists only in a build with `--features bench`, as the
// test command builds it.
#[cfg(feature = "bench")]
#[test]
fn bench_analyze_prints_figures_and_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = casebot(
        &dir.path().join("t.db"),
        &repo(),
        &["bench", "analyze", "--size-mb", "4", "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    for key in ["mb_per_sec", "ripgrep_ratio", "peak_rss_mb"] {
        assert!(last.get(key).is_some(), "{key} in {last}");
    }
    assert!(last["mb_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(last["outcome"], "failure");
    assert_eq!(last["class"], "access_denied_or_service_disabled");
}

/// A mail whose logs run past the time limit fails alone: the mail after
/// it in the same import is analysed as usual.
#[test]
fn a_mail_past_the_analysis_time_limit_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    std::fs::write(
        dir.path().join("config.toml"),
        "[analysis]\ntime_limit_secs = 1\nmax_ratio = 1000000\nmax_file_mb = 1048576\nmax_total_mb = 1048576\n",
    )
    .unwrap();
    // A 2 GiB log folded into a few MB: within the raised bounds, far past one second.
    let line = "2026-03-01 10:00:00, Info CBS Loaded servicing stack\n";
    let bomb = super::analysis::mszip_cab(line, 0xffff, &[("CBS.log".into(), 0, 0x7fff_0000)]);
    let zip = cbs_zip(dir.path());
    let mails = dir.path().join("mails");
    std::fs::create_dir(&mails).unwrap();
    std::fs::write(
        mails.join("1.eml"),
        mail_with_zip(&bomb, "slow1@partner.example.cn", "日志已上传。"),
    )
    .unwrap();
    std::fs::write(
        mails.join("2.eml"),
        mail_with_zip(&zip, "fast2@partner.example.cn", "再传一份日志。"),
    )
    .unwrap();
    let config = dir.path().join("config.toml");
    let config = config.to_str().unwrap();
    let o = casebot(
        &db,
        dir.path(),
        &["--config", config, "import", mails.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let o = casebot(&db, dir.path(), &["show", "CAS-10301-LG7X2Q", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let analyses = v["analyses"].as_array().unwrap();
    assert_eq!(analyses.len(), 2, "{analyses:?}");
    let by_id = |id: &str| {
        analyses
            .iter()
            .find(|a| a["message_id"] == id)
            .unwrap_or_else(|| panic!("no analysis of {id}: {analyses:?}"))
    };
    let slow = by_id("slow1@partner.example.cn");
    assert_eq!(slow["status"], "failed", "{slow}");
    assert!(
        slow["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("stopped: time limit of 1 s"),
        "{slow}"
    );
    let fast = by_id("fast2@partner.example.cn");
    assert_eq!(fast["status"], "done", "{fast}");
    assert_eq!(fast["class"], "access_denied_or_service_disabled", "{fast}");
}
