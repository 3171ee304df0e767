//! `casebot doctor` against real servers: a Dovecot with a company CA's
//! certificate and smtp-sink. It passes on the good setup and names the
//! failing check on each broken one (a wrong password, an unknown CA, a
//! closed SMTP port, a folder that is not there), exit status 1.

use std::path::Path;
use std::process::Command;

use super::mailstack::{DOVECOT_PASSWORD, Dovecot, SmtpSink, TestCa, free_port};
use super::{stderr, stdout, store_url};

#[derive(Clone, Copy)]
struct Setup<'a> {
    imap_port: u16,
    ca_file: &'a Path,
    smtp_port: u16,
    password: &'a str,
    folder: &'a str,
}

/// Runs `casebot doctor --json` on a config made of `s`; the exit code and
/// the checks by name.
fn doctor(dir: &Path, s: &Setup<'_>) -> (i32, serde_json::Map<String, serde_json::Value>) {
    let config = format!(
        r#"[[mailbox]]
name = "desk"
kind = "imap"
host = "127.0.0.1"
port = {imap}
security = "tls"
ca_file = "{ca}"
username_env = "CASEBOT_TEST_DOCTOR_USER"
password_env = "CASEBOT_TEST_DOCTOR_PASSWORD"
folders = ["{folder}"]

[outbox]
from = "support@example.com"
transport = "smtp"
[outbox.smtp]
host = "127.0.0.1"
port = {smtp}
security = "plain"
timeout_secs = 5
username_env = "CASEBOT_TEST_NO_SMTP_USER"

[web]
listen = "127.0.0.1:{web}"
"#,
        imap = s.imap_port,
        ca = s.ca_file.display(),
        folder = s.folder,
        smtp = s.smtp_port,
        web = free_port(),
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_casebot"))
        .args(["--config", "config.toml", "doctor", "--json"])
        .current_dir(dir)
        .env("CASEBOT_DB", store_url(&dir.join("doctor.db")))
        .env("CASEBOT_TEST_DOCTOR_USER", format!("doctor{}", s.imap_port))
        .env("CASEBOT_TEST_DOCTOR_PASSWORD", s.password)
        .env_remove("CASEBOT_CONFIG")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&o), stderr(&o)));
    assert_eq!(report["ok"], o.status.success(), "{report:#}");
    let checks = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap().to_string(), c.clone()))
        .collect();
    (o.status.code().unwrap(), checks)
}

fn failing(checks: &serde_json::Map<String, serde_json::Value>) -> Vec<(&str, &str)> {
    checks
        .iter()
        .filter(|(_, c)| c["ok"] == false)
        .map(|(name, c)| (name.as_str(), c["detail"].as_str().unwrap_or("")))
        .collect()
}

#[test]
fn doctor_passes_on_a_good_setup_and_names_each_broken_check() {
    let ca = TestCa::new();
    let other_ca = TestCa::new();
    let dovecot = Dovecot::start_tls(&ca.chain, &ca.key);
    let sink = SmtpSink::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let good = Setup {
        imap_port: dovecot.tls_port.unwrap(),
        ca_file: &ca.ca,
        smtp_port: sink.port,
        password: DOVECOT_PASSWORD,
        folder: "INBOX",
    };
    let (code, checks) = doctor(dir.path(), &good);
    assert_eq!(code, 0, "{checks:#?}");
    for name in [
        "config",
        "store",
        "rules",
        "templates",
        "mailbox desk",
        "mailbox desk/INBOX",
        "smtp",
        "web desk",
    ] {
        assert_eq!(checks[name]["ok"], true, "{name}: {checks:#?}");
    }
    let mailbox = checks["mailbox desk"]["detail"].as_str().unwrap();
    assert!(
        mailbox.contains("certificate verified") && mailbox.contains("IDLE"),
        "{mailbox}"
    );
    assert!(
        checks["smtp"]["detail"]
            .as_str()
            .unwrap()
            .contains("nothing sent")
    );
    assert!(sink.received().is_empty(), "doctor sent a mail");

    for (broken, expected, words) in [
        (
            Setup {
                password: "wrong",
                ..good
            },
            "mailbox desk",
            "login",
        ),
        (
            Setup {
                ca_file: &other_ca.ca,
                ..good
            },
            "mailbox desk",
            "certificate",
        ),
        (
            Setup {
                smtp_port: free_port(),
                ..good
            },
            "smtp",
            "connect",
        ),
        (
            Setup {
                folder: "NoSuchFolder",
                ..good
            },
            "mailbox desk/NoSuchFolder",
            "SELECT",
        ),
    ] {
        let (code, checks) = doctor(dir.path(), &broken);
        let failed = failing(&checks);
        assert_eq!(code, 1, "{failed:?}");
        assert_eq!(failed.len(), 1, "{expected}: {failed:?}");
        assert_eq!(failed[0].0, expected, "{failed:?}");
        assert!(
            failed[0].1.to_lowercase().contains(&words.to_lowercase()),
            "{expected} should say {words}: {failed:?}"
        );
    }
}
