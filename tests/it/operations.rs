//! The operator's commands against a running desk: a backup taken while the
//! daemon files a stream of mail restores to a consistent store (everything
//! in it exactly as the live store has it); a backup taken at rest restores
//! to the same store, row for row; an export carries a case's mails, record
//! and attachments; retention removes only long-closed evidence. On SQLite
//! and, in the PostgreSQL pass, through pg_dump and pg_restore.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{casebot_at, stderr, stdout, store_url};

/// A customer mail of case `case`, the `n`-th of the load, with a small log
/// attachment on every tenth.
fn load_mail(n: usize, case: usize) -> String {
    let boundary = format!("b{n}");
    let body = format!("您好，第 {n} 封，补丁安装失败。\r\nFrom the console: error 0x800f081f\r\n");
    let attachment = if n.is_multiple_of(10) {
        format!(
            "--{boundary}\r\nContent-Type: text/plain; name=\"CBS-{n}.log\"\r\n\
             Content-Disposition: attachment; filename=\"CBS-{n}.log\"\r\n\r\n\
             2024-03-04 09:00:00, Error CBS Failed to resolve package [HRESULT = 0x800f0831]\r\n"
        )
    } else {
        String::new()
    };
    format!(
        "From: Zhao Ming <zhao.ming@example.cn>\r\nTo: support@example.com\r\n\
         Subject: [案例号: CAS-3{case:04}-LD0AD{} ] % |P2|ACME|补丁安装失败 % 初次响应\r\n\
         Message-ID: <load-{n}@mail.example.cn>\r\nDate: Mon, 4 Mar 2024 09:{:02}:{:02} +0800\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n{attachment}--{boundary}--\r\n",
        case % 10,
        (n / 60) % 60,
        n % 60
    )
}

/// Every row that matters, as text, by table: what "the same store" means.
async fn rows(url: &str) -> Vec<(String, BTreeSet<String>)> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let mut out = Vec::new();
    for (table, sql) in [
        (
            "cases",
            "SELECT CAST(id AS TEXT) || '|' || key || '|' || status FROM cases",
        ),
        (
            "messages",
            "SELECT CAST(id AS TEXT) || '|' || message_id || '|' || CAST(case_id AS TEXT) || '|' || CAST(raw_id AS TEXT) FROM messages",
        ),
        (
            "raw_messages",
            "SELECT CAST(id AS TEXT) || '|' || sha256 FROM raw_messages",
        ),
        (
            "drafts",
            "SELECT CAST(id AS TEXT) || '|' || CAST(case_id AS TEXT) || '|' || status || '|' || body FROM drafts",
        ),
        (
            "events",
            "SELECT CAST(id AS TEXT) || '|' || COALESCE(CAST(case_id AS TEXT), '') || '|' || kind || '|' || detail FROM events",
        ),
    ] {
        let found: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        out.push((table.to_string(), found.into_iter().collect()));
    }
    pool.close().await;
    out
}

/// Each mail's bytes hash to the sha256 the store keeps for it.
async fn raw_mail_hashes_hold(url: &str) -> usize {
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let raws: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT sha256, bytes FROM raw_messages")
        .fetch_all(&pool)
        .await
        .unwrap();
    for (sha, bytes) in &raws {
        assert_eq!(&casebot_core::domain::sha256_hex(bytes), sha);
    }
    pool.close().await;
    raws.len()
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_during_load_restores_a_consistent_store_and_export_and_retention_work() {
    let dir = tempfile::tempdir().unwrap();
    let live = store_url(&dir.path().join("live.db"));
    let maildir = dir.path().join("mail");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(
        dir.path().join("config.toml"),
        "[[mailbox]]\nname = \"desk\"\nkind = \"maildir\"\npath = \"mail\"\npoll_interval_secs = 1\n\
         [web]\nlisten = \"\"\n",
    )
    .unwrap();
    let cli = |url: &str, args: &[&str]| {
        let mut all = vec!["--config", "config.toml"];
        all.extend(args);
        casebot_at(url, dir.path(), &all)
    };
    let serve = std::process::Command::new(env!("CARGO_BIN_EXE_casebot"))
        .args(["--config", "config.toml", "serve"])
        .current_dir(dir.path())
        .env("CASEBOT_DB", &live)
        .env_remove("CASEBOT_CONFIG")
        .env_remove("CASEBOT_LISTEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // The load: 400 mails over 40 cases, a few at a time.
    const MAILS: usize = 400;
    let loader = {
        let maildir = maildir.clone();
        std::thread::spawn(move || {
            for n in 0..MAILS {
                let tmp = maildir.join("tmp").join(format!("{n}.eml"));
                std::fs::write(&tmp, load_mail(n, n % 40)).unwrap();
                std::fs::rename(&tmp, maildir.join("new").join(format!("{n}.eml"))).unwrap();
                if n % 20 == 19 {
                    std::thread::sleep(Duration::from_millis(150));
                }
            }
        })
    };
    let filed = |url: &str| -> i64 {
        let o = cli(url, &["cases", "--json"]);
        serde_json::from_str::<serde_json::Value>(&stdout(&o))
            .ok()
            .and_then(|v| v.as_array().cloned())
            .map(|cases| {
                cases
                    .iter()
                    .map(|c| c["message_count"].as_i64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    // Mid-load: some mail is in, more is coming.
    let deadline = Instant::now() + Duration::from_secs(60);
    while filed(&live) < 60 {
        assert!(Instant::now() < deadline, "the daemon files nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
    let during = dir.path().join("during.backup");
    let taken = json(&cli(&live, &["backup", during.to_str().unwrap(), "--json"]));
    loader.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while filed(&live) < MAILS as i64 {
        assert!(Instant::now() < deadline, "not every mail filed");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let drafting and analysis settle, then stop the daemon.
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let out = serve.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let during_count = taken["contents"]["messages"].as_i64().unwrap();
    assert!(
        during_count > 0 && during_count < MAILS as i64,
        "the backup was taken mid-load: {taken}"
    );

    // The mid-load backup restores to a store whose every row is the live
    // store's row, and whose counts are what the backup said it held.
    let restored_during = store_url(&dir.path().join("restored-during.db"));
    let restored = json(&cli(
        &restored_during,
        &["restore", during.to_str().unwrap(), "--json"],
    ));
    for table in ["cases", "messages", "raw_messages", "drafts", "events"] {
        assert_eq!(
            restored["store"][table], taken["contents"][table],
            "{table}: {restored}"
        );
    }
    let live_rows = rows(&live).await;
    for ((table, got), (_, all)) in rows(&restored_during).await.iter().zip(&live_rows) {
        // Drafts may not have been made yet at that instant.
        assert!(
            table == "drafts" || !got.is_empty(),
            "{table} is empty in the mid-load backup"
        );
        let foreign: Vec<_> = got.difference(all).take(3).collect();
        assert!(
            foreign.is_empty(),
            "{table}: rows the live store never had: {foreign:?}"
        );
    }
    assert_eq!(
        raw_mail_hashes_hold(&restored_during).await as i64,
        taken["contents"]["raw_messages"].as_i64().unwrap()
    );

    // At rest: backup and restore give the same store, row for row.
    let at_rest = dir.path().join("at-rest.backup");
    json(&cli(
        &live,
        &["backup", at_rest.to_str().unwrap(), "--json"],
    ));
    let restored_at_rest = store_url(&dir.path().join("restored-at-rest.db"));
    json(&cli(
        &restored_at_rest,
        &["restore", at_rest.to_str().unwrap(), "--json"],
    ));
    assert!(
        live_rows.iter().all(|(_, r)| !r.is_empty()),
        "every table has rows at rest"
    );
    assert_eq!(rows(&restored_at_rest).await, live_rows);
    assert_eq!(raw_mail_hashes_hold(&restored_at_rest).await, MAILS);
    // A restore over cases needs --force; a backup never overwrites.
    let o = cli(&restored_at_rest, &["restore", at_rest.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let o = cli(&live, &["backup", at_rest.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    // Something that is not a backup is refused, and the store kept.
    let junk = dir.path().join("junk.backup");
    std::fs::write(&junk, b"not a database at all").unwrap();
    let o = cli(
        &restored_at_rest,
        &["restore", junk.to_str().unwrap(), "--force"],
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(rows(&restored_at_rest).await, live_rows);

    export_and_retention(dir.path(), &live, &cli).await;
}

/// An export of one case, as mbox and as zip; then retention, dry run and
/// applied, on a case closed long ago.
async fn export_and_retention(
    dir: &Path,
    live: &str,
    cli: &dyn Fn(&str, &[&str]) -> std::process::Output,
) {
    let case = "CAS-30000-LD0AD0";
    let mbox = dir.join("case.mbox");
    let e = json(&cli(
        live,
        &[
            "export",
            case,
            "--format",
            "mbox",
            "-o",
            mbox.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(e["mails"], 10, "{e}");
    let text = std::fs::read_to_string(&mbox).unwrap();
    assert_eq!(
        text.matches("\nFrom zhao.ming@example.cn ").count() + 1,
        10,
        "one From line per mail"
    );
    assert!(text.contains("\n>From the console"), "mboxrd quoting");
    let zip_path = dir.join("case.zip");
    let e = json(&cli(
        live,
        &["export", case, "-o", zip_path.to_str().unwrap(), "--json"],
    ));
    assert_eq!(
        e["attachments"], 10,
        "every tenth mail of 400 over 40 cases: {e}"
    );
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert!(names.contains(&format!("{case}/case.json")), "{names:?}");
    assert!(names.contains(&format!("{case}/mails.mbox")), "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&format!("{case}/attachments/")) && n.ends_with(".log")),
        "{names:?}"
    );
    let document: serde_json::Value =
        serde_json::from_reader(zip.by_name(&format!("{case}/case.json")).unwrap()).unwrap();
    assert_eq!(document["messages"].as_array().unwrap().len(), 10);
    assert!(!document["events"].as_array().unwrap().is_empty());
    let o = cli(live, &["export", "CAS-99999-NOPE00"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));

    // Retention: nothing is closed yet.
    let o = cli(live, &["retention", "--days", "30", "--json"]);
    assert_eq!(json(&o)["mails"], 0);
    // Close one case and age it by a year.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(live).await.unwrap();
    sqlx::query(
        "UPDATE cases SET status = 'resolved', updated_at = updated_at - 31536000 WHERE key = $1",
    )
    .bind(case)
    .execute(&pool)
    .await
    .unwrap();
    let dry = json(&cli(live, &["retention", "--days", "30", "--json"]));
    assert_eq!(dry["mails"], 10, "{dry}");
    assert_eq!(dry["applied"], false);
    assert_eq!(dry["cases"], serde_json::json!([case]));
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM raw_messages WHERE purged_at IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 400, "a dry run removes nothing");
    let applied = json(&cli(
        live,
        &["retention", "--days", "30", "--apply", "--json"],
    ));
    assert_eq!(applied["mails"], 10, "{applied}");
    let emptied: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM raw_messages WHERE purged_at IS NOT NULL AND size > 0",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(emptied, 10);
    pool.close().await;
    // The case and its messages as read stay; its export lists what went.
    let shown = json(&cli(live, &["show", case, "--json"]));
    assert_eq!(shown["thread"]["messages_total"], 10);
    let after = dir.join("after.zip");
    let e = json(&cli(
        live,
        &["export", case, "-o", after.to_str().unwrap(), "--json"],
    ));
    assert_eq!(e["removed_by_retention"], 10, "{e}");
    assert_eq!(e["attachments"], 0, "{e}");
    assert_eq!(
        json(&cli(live, &["retention", "--days", "30", "--json"]))["mails"],
        0,
        "done once"
    );
}
