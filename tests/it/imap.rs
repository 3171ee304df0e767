//! The daemon against a real Dovecot: mail appended to the watched folder is
//! filed, analysed and drafted within seconds without touching its flags;
//! the watcher survives Dovecot going down and up, resumes from its
//! checkpoint after a restart, and re-reads a folder whose UIDVALIDITY
//! changed without storing anything twice.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::mailstack::Dovecot;
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
        let dir = tempfile::tempdir().unwrap();
        let user = format!("desk{}", super::mailstack::free_port());
        let config = format!(
            r#"[[mailbox]]
name = "desk"
kind = "imap"
host = "127.0.0.1"
port = {port}
security = "plain"
username_env = "{USER_ENV}"
password_env = "{PASSWORD_ENV}"
folders = ["{folder}"]
reconnect_max_secs = 1
fetch_batch = 50

[analysis]
rules_dir = "{rules}"

[drafting]
templates_dir = "{templates}"
"#,
            port = dovecot.port,
            rules = repo().join("rules").display(),
            templates = repo().join("templates").display(),
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Daemon {
            dir,
            user,
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
            .env("CASEBOT_DB", format!("sqlite://{}", self.db().display()))
            .env(USER_ENV, &self.user)
            .env(PASSWORD_ENV, super::mailstack::DOVECOT_PASSWORD)
            .env("RUST_LOG", "casebot=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGTERM, and the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn json(&self, args: &[&str]) -> Value {
        let o = casebot(&self.db(), self.dir.path(), args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_str(&stdout(&o)).unwrap()
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
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; serve log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
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
    let id = draft["id"].as_i64().unwrap().to_string();
    let o = casebot(
        &daemon.db(),
        daemon.dir.path(),
        &["approve", &id, "--as", "Li Desk"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
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
    assert!(daemon.stop().success());
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
    assert!(daemon.stop().success());
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
    assert!(daemon.stop().success(), "SIGTERM ends cleanly");

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
    assert!(daemon.stop().success());
}

/// How many times mail was seen at a source (first deliveries and repeats).
fn sightings(db: &Path) -> i64 {
    let rt = runtime();
    rt.block_on(async {
        let store = casebot::store::Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM message_sources")
            .fetch_one(store.pool())
            .await
            .unwrap()
    })
}
