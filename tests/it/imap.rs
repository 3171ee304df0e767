//! The daemon against a real Dovecot: mail appended to the watched folder is
//! filed, analysed and drafted within seconds without touching its flags;
//! the watcher survives Dovecot going down and up, resumes from its
//! checkpoint after a restart, and re-reads a folder whose UIDVALIDITY
//! changed without storing anything twice.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::mailstack::{Dovecot, Postfix, TestCa};
use super::{casebot, repo, stderr, stdout};

const USER_ENV: &str = "CASEBOT_TEST_IMAP_USER";
const PASSWORD_ENV: &str = "CASEBOT_TEST_IMAP_PASSWORD";

struct Daemon {
    dir: tempfile::TempDir,
    user: String,
    child: Option<Child>,
}

impl Daemon {
    /// A desk watching `folder` of a fresh user on `dovecot`.
    fn new(dovecot: &Dovecot, folder: &str) -> Daemon {
        Self::with_batch(dovecot, folder, 50)
    }

    fn with_batch(dovecot: &Dovecot, folder: &str, fetch_batch: usize) -> Daemon {
        let user = format!("desk{}", super::mailstack::free_port());
        Self::configured(dovecot, folder, fetch_batch, &user, "", "")
    }

    /// A desk logged in as `user`, with `mailbox_extra` added to its
    /// `[[mailbox]]` and `extra` appended to its config.
    fn configured(
        dovecot: &Dovecot,
        folder: &str,
        fetch_batch: usize,
        user: &str,
        mailbox_extra: &str,
        extra: &str,
    ) -> Daemon {
        let connection = format!("port = {}\nsecurity = \"plain\"", dovecot.port);
        Self::build(&connection, folder, fetch_batch, user, mailbox_extra, extra)
    }

    /// A desk whose `[[mailbox]]` reaches the server as `connection` says
    /// (port, security, CA file).
    fn build(
        connection: &str,
        folder: &str,
        fetch_batch: usize,
        user: &str,
        mailbox_extra: &str,
        extra: &str,
    ) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let mut config = format!(
            r#"[[mailbox]]
name = "desk"
kind = "imap"
host = "127.0.0.1"
{connection}
username_env = "{USER_ENV}"
password_env = "{PASSWORD_ENV}"
folders = ["{folder}"]
reconnect_max_secs = 1
fetch_batch = {fetch_batch}
{mailbox_extra}

[analysis]
rules_dir = "{rules}"

[drafting]
templates_dir = "{templates}"
"#,
            rules = repo().join("rules").display(),
            templates = repo().join("templates").display(),
        );
        config.push_str(extra);
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Daemon {
            dir,
            user: user.to_string(),
            child: None,
        }
    }

    fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("casebot.db")
    }

    fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_casebot"))
            .arg("serve")
            .current_dir(self.dir.path())
            .env("CASEBOT_DB", super::store_url(&self.db()))
            .env(USER_ENV, &self.user)
            .env(PASSWORD_ENV, super::mailstack::DOVECOT_PASSWORD)
            .env("CASEBOT_LISTEN", "")
            .env("RUST_LOG", "casebot=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGTERM; true when it exited cleanly (the log is printed if not).
    fn stop(&mut self) -> bool {
        let mut child = self.child.take().expect("running");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        if !status.success() {
            eprintln!("serve exited with {status}; its log:\n{}", self.log());
        }
        status.success()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn json(&self, args: &[&str]) -> Value {
        let o = casebot(&self.db(), self.dir.path(), args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_str(&stdout(&o)).unwrap()
    }

    /// Approves a draft as an engineer would, from the command line.
    fn approve(&self, draft: &Value) {
        let id = draft["id"].as_i64().unwrap().to_string();
        let o = casebot(
            &self.db(),
            self.dir.path(),
            &["approve", &id, "--as", "Li Desk"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }

    fn message_count(&self) -> usize {
        self.json(&["cases", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["message_count"].as_u64().unwrap() as usize)
            .sum()
    }

    /// Waits up to `secs` for `done`, else fails with the daemon's log.
    fn wait(&self, secs: u64, what: &str, done: impl Fn() -> bool) {
        super::wait_until(secs, what, || self.log(), done);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `n` generated mails appended to INBOX in one session.
async fn append_generated(dovecot: &Dovecot, user: &str, n: u64) {
    let mut s = dovecot.session(user).await;
    for i in 0..n {
        s.append("INBOX", None, None, casebot_bench::generate_mail(i))
            .await
            .expect("APPEND");
    }
    let _ = s.logout().await;
}

fn mail(n: u32, case: &str, attachment: Option<Vec<u8>>) -> Vec<u8> {
    let subject =
        format!("[案例号:{case}] % |P2|ACME|示例用户补丁安装失败 % 初次响应 CMIT:0004001");
    let b = lettre::Message::builder()
        .from("赵明 <zhao.ming@example.cn>".parse().unwrap())
        .to("support@example.com".parse().unwrap())
        .subject(subject)
        .message_id(Some(format!("<imap-{case}-{n}@mail.example.cn>")));
    let text = lettre::message::SinglePart::plain(format!("您好，第{n}封：安装失败，请协助分析。"));
    let m = match attachment {
        Some(zip) => b
            .multipart(
                lettre::message::MultiPart::mixed()
                    .singlepart(text)
                    .singlepart(lettre::message::Attachment::new("logs.zip".into()).body(
                        zip,
                        lettre::message::header::ContentType::parse("application/zip").unwrap(),
                    )),
            )
            .unwrap(),
        None => b.singlepart(text).unwrap(),
    };
    m.formatted()
}

#[test]
fn appended_mail_is_filed_analysed_and_drafted_within_seconds_flags_untouched() {
    let dovecot = Dovecot::start();
    let mut daemon = Daemon::new(&dovecot, "INBOX");
    daemon.start();
    let rt = runtime();
    let zip = super::analysis::zip(&[(
        "Logs/CBS/CBS.log",
        super::analysis::hard_link_log().as_bytes(),
    )]);
    rt.block_on(dovecot.append(
        &daemon.user,
        "INBOX",
        &mail(1, "CAS-30001-IM4P01", Some(zip)),
    ));
    let started = Instant::now();
    daemon.wait(20, "a pending draft", || {
        daemon.json(&["drafts", "--json"]).as_array().unwrap().len() == 1
    });
    eprintln!("appended → drafted in {:?}", started.elapsed());
    let case = daemon.json(&["show", "CAS-30001-IM4P01", "--json"]);
    assert_eq!(
        case["analysis"]["root_cause"]["class"],
        "access_denied_or_service_disabled"
    );
    let draft = &daemon.json(&["drafts", "--json"])[0];
    assert_eq!(draft["kind"], "scope");
    assert!(
        draft["body"]
            .as_str()
            .unwrap()
            .contains("STATUS_CANNOT_DELETE")
    );
    // BODY.PEEK[]: the customer's mail is still unread on the server.
    let messages = rt.block_on(dovecot.messages(&daemon.user, "INBOX"));
    assert_eq!(messages.len(), 1);
    assert!(
        !messages[0].1.iter().any(|f| f.contains("Seen")),
        "{:?}",
        messages[0].1
    );
    let folders = daemon.json(&["mailboxes", "--json"]);
    assert_eq!(folders[0]["state"], "idle", "{folders:#}");
    assert_eq!(folders[0]["last_uid"], 1);

    // Approved, the reply is sent (file transport here) and stored in the
    // desk's Sent folder, read.
    daemon.approve(draft);
    daemon.wait(20, "the reply in the Sent folder", || {
        !rt.block_on(dovecot.messages(&daemon.user, "Sent"))
            .is_empty()
    });
    let sent = rt.block_on(dovecot.messages(&daemon.user, "Sent"));
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].1.iter().any(|f| f.contains("Seen")),
        "{:?}",
        sent[0].1
    );
    let text = String::from_utf8_lossy(&sent[0].2);
    assert!(
        text.contains("In-Reply-To: <imap-CAS-30001-IM4P01-1@mail.example.cn>"),
        "{text}"
    );
    // The watcher of INBOX does not see the Sent copy as new mail.
    assert_eq!(
        daemon.message_count(),
        2,
        "the customer's mail and the filed reply"
    );
    assert!(daemon.stop());
}

/// The whole round trip through real servers: a customer's mail goes over
/// SMTP through Postfix into the desk's mailbox on Dovecot; the daemon files,
/// analyses and drafts it; once approved, the reply goes out through Postfix
/// into the customer's mailbox on the same Dovecot, threaded, and a copy
/// lands in the desk's Sent folder.
#[test]
fn a_customer_mail_through_postfix_is_answered_into_the_customers_mailbox() {
    const DESK: &str = "support@example.com";
    const CUSTOMER: &str = "zhao.ming@example.cn";
    const CASE: &str = "CAS-30009-E2EPFX";
    let dovecot = Dovecot::start();
    let postfix = Postfix::start(&dovecot);
    let outbox = format!(
        "\n[outbox]\nfrom = \"{DESK}\"\nfrom_name = \"Example Desk\"\ntransport = \"smtp\"\n\
         [outbox.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\ntimeout_secs = 10\n\
         username_env = \"CASEBOT_TEST_NO_SMTP_USER\"\n",
        postfix.port
    );
    let mut daemon = Daemon::configured(&dovecot, "INBOX", 50, DESK, "", &outbox);
    daemon.start();
    let zip = super::analysis::zip(&[(
        "Logs/CBS/CBS.log",
        super::analysis::hard_link_log().as_bytes(),
    )]);
    let customer_mail = mail(1, CASE, Some(zip));
    let started = Instant::now();
    postfix.submit(CUSTOMER, &[DESK], &customer_mail);
    daemon.wait(30, "a pending draft", || {
        daemon.json(&["drafts", "--json"]).as_array().unwrap().len() == 1
    });
    eprintln!(
        "SMTP → Postfix → Dovecot → drafted in {:?}",
        started.elapsed()
    );
    let case = daemon.json(&["show", CASE, "--json"]);
    assert_eq!(
        case["analysis"]["root_cause"]["class"], "access_denied_or_service_disabled",
        "the attached log was analysed"
    );
    let draft = &daemon.json(&["drafts", "--json"])[0];
    daemon.approve(draft);

    let rt = runtime();
    daemon.wait(30, "the reply in the customer's mailbox", || {
        !rt.block_on(dovecot.messages(CUSTOMER, "INBOX")).is_empty()
    });
    let inbox = rt.block_on(dovecot.messages(CUSTOMER, "INBOX"));
    assert_eq!(inbox.len(), 1, "one reply, sent once");
    let reply = mail_parser::MessageParser::default()
        .parse(&inbox[0].2)
        .expect("the reply parses");
    let original = format!("imap-{CASE}-1@mail.example.cn");
    assert_eq!(reply.in_reply_to().as_text(), Some(original.as_str()));
    let references: Vec<String> = match reply.references().as_text_list() {
        Some(list) => list.iter().map(|r| r.to_string()).collect(),
        None => reply
            .references()
            .as_text()
            .map(str::to_string)
            .into_iter()
            .collect(),
    };
    assert!(references.contains(&original), "{references:?}");
    let subject = reply.subject().unwrap();
    assert!(
        subject.starts_with("Re: ")
            && subject.contains(&format!(
                "[案例号:{CASE}] % |P2|ACME|示例用户补丁安装失败 %"
            )),
        "the partner's tags intact: {subject}"
    );
    assert!(
        reply.body_text(0).unwrap().contains("STATUS_CANNOT_DELETE"),
        "the analysis is in the reply"
    );
    let reply_id = reply.message_id().unwrap().to_string();

    daemon.wait(20, "the copy in the desk's Sent folder", || {
        !rt.block_on(dovecot.messages(DESK, "Sent")).is_empty()
    });
    let sent = rt.block_on(dovecot.messages(DESK, "Sent"));
    assert_eq!(sent.len(), 1);
    let copy = mail_parser::MessageParser::default()
        .parse(&sent[0].2)
        .unwrap();
    assert_eq!(copy.message_id(), Some(reply_id.as_str()));
    assert!(sent[0].1.iter().any(|f| f.contains("Seen")));
    let case = daemon.json(&["show", CASE, "--json"]);
    assert_eq!(case["status"], "waiting_on_customer", "{case:#}");
    assert!(daemon.stop());
}

#[test]
fn dovecot_down_and_up_during_idle_mail_that_arrived_meanwhile_is_picked_up() {
    let mut dovecot = Dovecot::start();
    let mut daemon = Daemon::new(&dovecot, "INBOX");
    daemon.start();
    let rt = runtime();
    rt.block_on(dovecot.append(&daemon.user, "INBOX", &mail(1, "CAS-30002-DOWNUP", None)));
    daemon.wait(20, "the first mail", || daemon.message_count() == 1);
    daemon.wait(10, "IDLE", || {
        daemon.json(&["mailboxes", "--json"])[0]["state"] == "idle"
    });

    dovecot.down();
    // Dovecot tells its IDLE clients BYE only some seconds after it stops.
    daemon.wait(40, "the watcher to notice", || {
        daemon.json(&["mailboxes", "--json"])[0]["state"] == "reconnecting"
    });
    // Mail delivered locally while IMAP is down.
    dovecot.deliver_file(
        &daemon.user,
        "1700000001.M1.test",
        &mail(2, "CAS-30002-DOWNUP", None),
    );
    dovecot.up();
    daemon.wait(20, "the mail that arrived during the outage", || {
        daemon.message_count() == 2
    });
    daemon.wait(10, "IDLE again", || {
        daemon.json(&["mailboxes", "--json"])[0]["state"] == "idle"
    });
    let log = daemon.log();
    let lost = log.matches("IMAP connection lost").count();
    assert!(
        lost <= 2,
        "a state change is logged once, not every attempt ({lost}):\n{log}"
    );
    assert!(log.contains("IMAP connection back"), "{log}");
    assert!(daemon.stop());
}

#[test]
fn a_restart_resumes_from_the_checkpoint_and_a_new_uidvalidity_stores_nothing_twice() {
    let dovecot = Dovecot::start();
    let mut daemon = Daemon::new(&dovecot, "Cases");
    let rt = runtime();
    for n in 1..=3 {
        rt.block_on(dovecot.append(&daemon.user, "Cases", &mail(n, "CAS-30003-RESUME", None)));
    }
    daemon.start();
    daemon.wait(20, "three mails", || daemon.message_count() == 3);
    assert!(daemon.stop(), "SIGTERM ends cleanly");

    // Two more while the daemon is stopped: it catches up from UID 4.
    for n in 4..=5 {
        rt.block_on(dovecot.append(&daemon.user, "Cases", &mail(n, "CAS-30003-RESUME", None)));
    }
    daemon.start();
    daemon.wait(20, "five mails", || daemon.message_count() == 5);
    let sightings = sightings(&daemon.db());
    assert_eq!(
        sightings, 5,
        "each mail fetched once: the restart resumed at the checkpoint"
    );
    let before = daemon.json(&["mailboxes", "--json"])[0]["uidvalidity"].clone();

    // The folder is deleted and made again (a new UIDVALIDITY) with the same
    // five mails and one new one: only the new one is stored.
    rt.block_on(async {
        let mut s = dovecot.session(&daemon.user).await;
        s.delete("Cases").await.unwrap();
        s.create("Cases").await.unwrap();
        let _ = s.logout().await;
    });
    for n in 1..=6 {
        rt.block_on(dovecot.append(&daemon.user, "Cases", &mail(n, "CAS-30003-RESUME", None)));
    }
    daemon.wait(30, "the sixth mail", || daemon.message_count() == 6);
    let after = daemon.json(&["mailboxes", "--json"])[0].clone();
    assert_ne!(after["uidvalidity"], before, "{after:#}");
    daemon.wait(10, "the checkpoint", || {
        daemon.json(&["mailboxes", "--json"])[0]["last_uid"] == 6
    });
    assert_eq!(daemon.message_count(), 6, "nothing stored twice");
    assert!(daemon.stop());
}

/// How many times mail was seen at a source (first deliveries and repeats).
fn sightings(db: &Path) -> i64 {
    let rt = runtime();
    rt.block_on(async {
        let store = casebot_store::Store::open(&super::store_url(db))
            .await
            .unwrap();
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM message_sources")
            .fetch_one(store.pool())
            .await
            .unwrap()
    })
}

#[test]
fn killed_ten_times_during_a_thousand_mail_catch_up_every_mail_is_stored_once() {
    const N: u64 = 1000;
    let dovecot = Dovecot::start();
    // Small batches, so the kills land in the middle of the catch-up.
    let mut daemon = Daemon::with_batch(&dovecot, "INBOX", 10);
    let rt = runtime();
    rt.block_on(append_generated(&dovecot, &daemon.user, N));
    // SIGKILL at varied moments of the catch-up, ten times.
    for round in 0..10u64 {
        daemon.start();
        std::thread::sleep(Duration::from_millis(80 + (round * 37) % 120));
        let mut child = daemon.child.take().unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
    }
    let stored_before_last_start = daemon.message_count();
    daemon.start();
    daemon.wait(180, "the whole catch-up", || {
        daemon.json(&["mailboxes", "--json"])[0]["last_uid"] == N
    });
    let stored = daemon.message_count() as u64;
    let quarantined = daemon
        .json(&["quarantine", "list", "--json"])
        .as_array()
        .unwrap()
        .len();
    let seen = sightings(&daemon.db()) as u64;
    eprintln!(
        "delivered {N}, stored {stored} (before the last start: {stored_before_last_start}), \
         duplicates stored 0, re-read after a kill {}, quarantined {quarantined}, lost {}",
        seen - stored,
        N - stored
    );
    assert!(
        (stored_before_last_start as u64) < N,
        "the kills landed during the catch-up"
    );
    assert_eq!(stored, N, "every mail stored exactly once");
    assert_eq!(quarantined, 0, "nothing quarantined that should not be");
    assert!(daemon.stop());
}

#[test]
fn a_thirty_megabyte_mail_and_a_mail_the_parser_rejects_do_not_stop_the_rest() {
    let dovecot = Dovecot::start();
    let user = format!("desk{}", super::mailstack::free_port());
    let mut daemon = Daemon::configured(
        &dovecot,
        "INBOX",
        50,
        &user,
        "handled_keyword = \"$CasebotFiled\"\nquarantine_folder = \"Quarantine\"",
        "",
    );
    let rt = runtime();
    let big = {
        let blob: Vec<u8> = (0..30 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        lettre::Message::builder()
            .from("赵明 <zhao.ming@example.cn>".parse().unwrap())
            .to("support@example.com".parse().unwrap())
            .subject("[案例号:CAS-30005-BIGMAI] %大附件% 跟进 CMIT:0004005")
            .message_id(Some("<big@mail.example.cn>".into()))
            .multipart(
                lettre::message::MultiPart::mixed()
                    .singlepart(lettre::message::SinglePart::plain(
                        "日志见附件（30 MB）。".to_string(),
                    ))
                    .singlepart(
                        lettre::message::Attachment::new("memory.dmp".into()).body(
                            blob,
                            lettre::message::header::ContentType::parse("application/octet-stream")
                                .unwrap(),
                        ),
                    ),
            )
            .unwrap()
            .formatted()
    };
    assert!(big.len() > 30_000_000);
    // No header casebot can use: the parser rejects it (quarantine, bytes kept).
    let rejected = b"\x00\x01\x02 this is not a mail at all\r\n\r\n\xff\xfe".to_vec();
    rt.block_on(async {
        dovecot
            .append(&daemon.user, "INBOX", &mail(1, "CAS-30005-BIGMAI", None))
            .await;
        dovecot.append(&daemon.user, "INBOX", &big).await;
        dovecot.append(&daemon.user, "INBOX", &rejected).await;
        dovecot
            .append(&daemon.user, "INBOX", &mail(2, "CAS-30005-BIGMAI", None))
            .await;
    });
    daemon.start();
    daemon.wait(60, "all four handled", || {
        daemon.json(&["mailboxes", "--json"])[0]["last_uid"] == 4
    });
    assert_eq!(
        daemon.message_count(),
        3,
        "the two small mails and the 30 MB one"
    );
    let q = daemon.json(&["quarantine", "list", "--json"]);
    let q = q.as_array().unwrap();
    assert_eq!(q.len(), 1, "{q:#?}");
    assert!(
        q[0]["source"].as_str().unwrap().contains(";UID=3"),
        "{:#}",
        q[0]
    );
    let case = daemon.json(&["show", "CAS-30005-BIGMAI", "--json"]);
    let sizes: Vec<i64> = case["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| {
            m["attachments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["size"].as_i64().unwrap())
        })
        .collect();
    assert!(sizes.iter().any(|s| *s >= 30 * 1024 * 1024), "{sizes:?}");

    // On the server: the filed mails carry the keyword, the rejected one
    // does not and has a copy in the quarantine folder; nothing was removed.
    let inbox = rt.block_on(dovecot.messages(&daemon.user, "INBOX"));
    let flagged: Vec<u32> = inbox
        .iter()
        .filter(|(_, flags, _)| flags.iter().any(|f| f.contains("CasebotFiled")))
        .map(|(uid, _, _)| *uid)
        .collect();
    assert_eq!(
        flagged,
        vec![1, 2, 4],
        "{:?}",
        inbox.iter().map(|m| (m.0, &m.1)).collect::<Vec<_>>()
    );
    let quarantine = rt.block_on(dovecot.messages(&daemon.user, "Quarantine"));
    assert_eq!(quarantine.len(), 1);
    // (Dovecot stored the NUL byte as 0x80 on APPEND; the copy is its own.)
    assert_eq!(quarantine[0].2, inbox[2].2, "a copy of the rejected mail");
    assert_eq!(inbox.len(), 4, "nothing moved or deleted");
    assert!(daemon.stop());
}

/// A mail expunged by another client after the watcher's UID SEARCH listed
/// it: FETCH answers without it. The watcher asks once more, then keeps a
/// record in the quarantine, and only then moves its checkpoint past it.
#[test]
fn a_mail_deleted_between_search_and_fetch_is_quarantined_not_skipped() {
    const N: u32 = 400;
    let dovecot = Dovecot::start();
    // One mail a batch: the catch-up takes long enough to delete the last
    // mail after the search listed it and before its fetch.
    let mut daemon = Daemon::with_batch(&dovecot, "INBOX", 1);
    let rt = runtime();
    rt.block_on(append_generated(&dovecot, &daemon.user, u64::from(N)));
    daemon.start();
    daemon.wait(60, "the catch-up to start", || {
        daemon.json(&["mailboxes", "--json"])[0]["last_uid"]
            .as_u64()
            .is_some_and(|u| u >= 2)
    });
    rt.block_on(async {
        use futures_util::TryStreamExt;
        let mut s = dovecot.session(&daemon.user).await;
        s.select("INBOX").await.expect("SELECT");
        s.uid_store(N.to_string(), "+FLAGS.SILENT (\\Deleted)")
            .await
            .expect("STORE")
            .try_collect::<Vec<_>>()
            .await
            .expect("STORE answers");
        s.expunge()
            .await
            .expect("EXPUNGE")
            .try_collect::<Vec<_>>()
            .await
            .expect("EXPUNGE answers");
        let _ = s.logout().await;
    });
    let progress = daemon.json(&["mailboxes", "--json"])[0]["last_uid"].clone();
    assert!(
        progress.as_u64().is_some_and(|u| u < u64::from(N) - 50),
        "the catch-up was too quick for this test ({progress})"
    );
    daemon.wait(120, "the whole catch-up", || {
        daemon.json(&["mailboxes", "--json"])[0]["last_uid"] == N
    });
    assert_eq!(daemon.message_count(), N as usize - 1);
    let q = daemon.json(&["quarantine", "list", "--json"]);
    let q = q.as_array().unwrap();
    assert_eq!(q.len(), 1, "{q:#?}");
    let entry = q[0].to_string();
    assert!(entry.contains(&format!(";UID={N}")), "{entry}");
    assert!(entry.contains("returned no body"), "{entry}");
    assert!(daemon.stop());
}

/// A mail over `ingest.max_message_bytes` is never downloaded whole: its
/// size is asked first, only its first 64 KiB are fetched and quarantined,
/// and the mails around it are filed.
#[test]
fn a_mail_over_the_size_limit_is_not_downloaded_only_its_head_is_kept() {
    let dovecot = Dovecot::start();
    let user = format!("desk{}", super::mailstack::free_port());
    let mut daemon = Daemon::configured(
        &dovecot,
        "INBOX",
        50,
        &user,
        "",
        "\n[ingest]\nmax_message_bytes = 1000000\n",
    );
    let rt = runtime();
    let big = mail(2, "CAS-30006-SIZEIT", Some(vec![b'x'; 3 << 20]));
    assert!(big.len() > 3_000_000);
    rt.block_on(async {
        dovecot
            .append(&daemon.user, "INBOX", &mail(1, "CAS-30006-SIZEIT", None))
            .await;
        dovecot.append(&daemon.user, "INBOX", &big).await;
        dovecot
            .append(&daemon.user, "INBOX", &mail(3, "CAS-30006-SIZEIT", None))
            .await;
    });
    daemon.start();
    daemon.wait(60, "all three handled", || {
        daemon.json(&["mailboxes", "--json"])[0]["last_uid"] == 3
    });
    assert_eq!(daemon.message_count(), 2, "the two small mails are filed");
    let q = daemon.json(&["quarantine", "list", "--json"]);
    let q = q.as_array().unwrap();
    assert_eq!(q.len(), 1, "{q:#?}");
    let entry = q[0].to_string();
    assert!(entry.contains(";UID=2"), "{entry}");
    assert!(entry.contains("not read"), "{entry}");
    assert!(entry.contains("65536"), "only the head is kept: {entry}");
    let log = daemon.log();
    assert!(log.contains("only its head is kept"), "{log}");
    assert!(daemon.stop());
}

/// `casebot bench imap` end to end on a small count: its own Dovecot,
/// mbsync as the baseline, every mail through the pipeline, and the summary
/// line the issue names last.
#[cfg(feature = "bench")]
#[test]
fn bench_imap_measures_both_catch_ups_and_the_idle_latency() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_casebot"))
        .args([
            "bench",
            "imap",
            "--count",
            "60",
            "--idle-samples",
            "3",
            "--json",
        ])
        .current_dir(dir.path())
        .env_remove("CASEBOT_CONFIG")
        .env_remove("CASEBOT_DB")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with('{')).collect();
    let figures: Value = serde_json::from_str(lines[lines.len() - 2]).unwrap();
    let summary: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    assert_eq!(
        figures["stored"], 60,
        "every mail through the pipeline: {figures:#}"
    );
    assert_eq!(figures["idle_samples"], 3);
    let mut keys: Vec<&str> = summary
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "casebot_s",
            "idle_p50_ms",
            "idle_p99_ms",
            "mbsync_ratio",
            "mbsync_s"
        ],
        "{summary}"
    );
    assert!(
        lines[lines.len() - 1].starts_with("{\"casebot_s\":"),
        "in the documented order"
    );
    for key in [
        "casebot_s",
        "mbsync_s",
        "mbsync_ratio",
        "idle_p50_ms",
        "idle_p99_ms",
    ] {
        assert!(summary[key].as_f64().unwrap() > 0.0, "{key}: {summary}");
    }
    let ratio = summary["casebot_s"].as_f64().unwrap() / summary["mbsync_s"].as_f64().unwrap();
    assert!((ratio - summary["mbsync_ratio"].as_f64().unwrap()).abs() < 1e-9);
    assert!(out.contains("IDLE, APPEND → stored draft"), "{out}");
}

/// The production paths: implicit TLS and STARTTLS against a Dovecot whose
/// certificate comes from a company CA that only `ca_file` trusts; without
/// it the certificate is refused and nothing is read.
#[test]
fn tls_and_starttls_work_with_a_company_ca_and_an_unknown_certificate_is_refused() {
    let ca = TestCa::new();
    let dovecot = Dovecot::start_tls(&ca.chain, &ca.key);
    let rt = runtime();
    let ca_file = format!("ca_file = \"{}\"", ca.ca.display());
    let tls_port = dovecot.tls_port.unwrap();
    for (n, (security, port)) in [("tls", tls_port), ("starttls", dovecot.port)]
        .into_iter()
        .enumerate()
    {
        let user = format!("tls{n}{}", super::mailstack::free_port());
        let connection = format!("port = {port}\nsecurity = \"{security}\"\n{ca_file}");
        let mut daemon = Daemon::build(&connection, "INBOX", 50, &user, "", "");
        daemon.start();
        let case = format!("CAS-3001{n}-TLSOK{n}");
        rt.block_on(dovecot.append(&user, "INBOX", &mail(1, &case, None)));
        daemon.wait(20, &format!("the mail over {security}"), || {
            daemon.message_count() == 1
        });
        assert!(daemon.stop(), "{security}");
    }

    // The web's roots alone do not know the company CA.
    let user = format!("untrusted{}", super::mailstack::free_port());
    let connection = format!("port = {tls_port}\nsecurity = \"tls\"");
    let mut daemon = Daemon::build(&connection, "INBOX", 50, &user, "", "");
    rt.block_on(dovecot.append(&user, "INBOX", &mail(1, "CAS-30019-NOTRST", None)));
    daemon.start();
    daemon.wait(20, "the refused certificate", || {
        let folders = daemon.json(&["mailboxes", "--json"]);
        folders[0]["state"] == "reconnecting"
            && folders[0]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("certificate"))
    });
    assert_eq!(
        daemon.message_count(),
        0,
        "nothing read over an untrusted connection"
    );
    assert!(daemon.stop());
}
