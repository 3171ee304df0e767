//! OAuth2 mailboxes against real servers: a Dovecot whose logins are
//! access tokens (its `oauth2` passdb introspects each one) and the
//! throwaway authorization server of `casebot_bench::oauth` on loopback.
//! Client credentials catch up and survive an expired token; a device
//! sign-in done as a person would, a revoked sign-in that leaves its
//! mailbox `needs_login` without losing a mail while another mailbox goes
//! on, and a new sign-in that catches up.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};

use casebot_bench::oauth::AuthServer;

use super::mailstack::Postfix;
use super::{casebot_at, stderr, stdout, store_url, wait_until};

const TOKEN_KEY: &str = "a test key of enough characters for the seal";

fn mail(n: u32, subject: &str) -> Vec<u8> {
    format!(
        "From: 孙丽 <sun.li@example.cn>\r\nTo: desk@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <oauth-{n}@mail.example.cn>\r\nDate: Mon, 7 Dec 2026 09:00:00 +0800\r\n\r\n日志见附件。\r\n"
    )
    .into_bytes()
}

/// The Dovecot of these tests: logins are tokens the server issued.
fn dovecot(server: &AuthServer) -> casebot_bench::dovecot::Dovecot {
    casebot_bench::dovecot::Dovecot::start_oauth2(&server.url("/introspect"))
        .unwrap_or_else(|e| panic!("{e:#} (run scripts/test.sh)"))
}

fn deliver(dovecot: &casebot_bench::dovecot::Dovecot, user: &str, n: u32, subject: &str) {
    let new = dovecot.maildir(user).join("new");
    std::fs::create_dir_all(&new).unwrap();
    for sub in ["cur", "tmp"] {
        std::fs::create_dir_all(dovecot.maildir(user).join(sub)).unwrap();
    }
    let tmp = dovecot.maildir(user).join("tmp").join(format!("{n}.oauth"));
    std::fs::write(&tmp, mail(n, subject)).unwrap();
    std::fs::rename(&tmp, new.join(format!("{n}.oauth"))).unwrap();
    let _ = Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(dovecot.maildir(user))
        .status();
}

fn mailbox(name: &str, port: u16, user_env: &str, oauth: &str) -> String {
    format!(
        r#"[[mailbox]]
name = "{name}"
kind = "imap"
host = "127.0.0.1"
port = {port}
security = "plain"
auth = "oauth2"
username_env = "{user_env}"
folders = ["INBOX"]
reconnect_max_secs = 1
sent_folder = ""
[mailbox.oauth2]
provider = "custom"
{oauth}
"#
    )
}

fn serve(dir: &std::path::Path, url: &str, env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_casebot"));
    command
        .arg("serve")
        .current_dir(dir)
        .env("CASEBOT_DB", url)
        .env_remove("CASEBOT_CONFIG")
        .env("CASEBOT_LISTEN", "")
        .env("RUST_LOG", "casebot=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("serve.log")).unwrap());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().unwrap()
}

fn stop(mut child: Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

/// The subjects of the cases filed so far.
fn filed(url: &str, dir: &std::path::Path) -> Vec<String> {
    let o = casebot_at(url, dir, &["cases", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cases = v["cases"]
        .as_array()
        .or(v.as_array())
        .cloned()
        .unwrap_or_default();
    cases
        .iter()
        .filter_map(|c| {
            c["title"]
                .as_str()
                .or(c["subject"].as_str())
                .map(str::to_string)
        })
        .collect()
}

/// The checks `casebot doctor --json` failed: (check, detail).
fn failed_checks(o: &std::process::Output) -> Vec<(String, String)> {
    let checks: serde_json::Value = serde_json::from_str(&stdout(o)).unwrap();
    checks["checks"]
        .as_array()
        .or(checks.as_array())
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("check"), text("detail"))
        })
        .collect()
}

fn folder_state(url: &str, dir: &std::path::Path, mailbox: &str) -> String {
    let o = casebot_at(url, dir, &["mailboxes", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .find(|f| f["mailbox"] == mailbox)
        .and_then(|f| f["state"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn client_credentials_catch_up_and_a_dead_token_is_renewed() {
    let server = AuthServer::start(3600).unwrap();
    server.register("casebot-app", "app-secret", Some("shared"));
    let mut dovecot = dovecot(&server);
    deliver(
        &dovecot,
        "shared",
        1,
        "[案例号: CAS-31001-OA1AAA ] % |P2|ACME| KB5034441 安装失败 第一封 %",
    );
    // Replies go out through Postfix, which takes only an authenticated
    // client, and asks the same Dovecot (and so the same tokens).
    let postfix = Postfix::start_with(
        &dovecot.lmtp_socket(),
        &format!(
            "smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\nsmtpd_sasl_path = {}\n\
             mynetworks =\nsmtpd_relay_restrictions = permit_sasl_authenticated, reject\n",
            dovecot.auth_socket().display()
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(&dir.path().join("cc.db"));
    let oauth = format!(
        "flow = \"client_credentials\"\nclient_id = \"casebot-app\"\nclient_secret_env = \"CASEBOT_TEST_OAUTH_SECRET\"\ntoken_url = \"{}\"\n",
        server.url("/token")
    );
    let outbox = format!(
        "[outbox]\nfrom = \"desk@example.com\"\ntransport = \"smtp\"\n[outbox.smtp]\nhost = \"127.0.0.1\"\n\
         port = {}\nsecurity = \"plain\"\nauth = \"oauth2\"\noauth2_mailbox = \"desk\"\ntimeout_secs = 10\n",
        postfix.port
    );
    std::fs::write(
        dir.path().join("config.toml"),
        mailbox("desk", dovecot.port, "CASEBOT_TEST_IMAP_USER", &oauth) + &outbox,
    )
    .unwrap();
    let env = [
        ("CASEBOT_TEST_IMAP_USER", "shared"),
        ("CASEBOT_TEST_OAUTH_SECRET", "app-secret"),
    ];
    let log = dir.path().join("serve.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let daemon = serve(dir.path(), &url, &env);
    wait_until(30, "the first mail", read_log, || {
        filed(&url, dir.path()).iter().any(|s| s.contains("第一封"))
    });
    assert_eq!(folder_state(&url, dir.path(), "desk"), "idle");
    assert_eq!(server.grants("client_credentials"), 1);

    // The reply, approved, goes out over SMTP with AUTH XOAUTH2 and the
    // token the watcher already has.
    let drafts = |status: &str| -> Vec<serde_json::Value> {
        let o = casebot_at(&url, dir.path(), &["drafts", "--status", status, "--json"]);
        serde_json::from_str(&stdout(&o)).unwrap_or_default()
    };
    wait_until(30, "a draft", read_log, || !drafts("pending").is_empty());
    let id = drafts("pending")[0]["id"].as_i64().unwrap().to_string();
    let o = casebot_at(&url, dir.path(), &["approve", &id, "--as", "Li Desk"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let logs = || format!("{}\npostfix:\n{}", read_log(), postfix.log());
    wait_until(30, "the reply sent", logs, || !drafts("sent").is_empty());
    let smtp_log = postfix.log();
    assert!(
        smtp_log.contains("sasl_method=XOAUTH2, sasl_username=shared"),
        "{smtp_log}"
    );
    assert_eq!(
        server.grants("client_credentials"),
        1,
        "one token for IMAP and SMTP"
    );
    let delivered = dovecot.maildir("sun.li@example.cn").join("new");
    wait_until(30, "the reply delivered", logs, || {
        std::fs::read_dir(&delivered)
            .map(|d| d.count())
            .unwrap_or(0)
            == 1
    });
    // The token dies while the watcher idles; the server goes away and
    // comes back, a mail arrives meanwhile: the watcher's cached token is
    // refused, it asks for a new one and catches up.
    server.expire_access_tokens();
    dovecot.down();
    // Dovecot tells its IDLE clients BYE only some seconds after it stops.
    wait_until(40, "the watcher to notice", read_log, || {
        folder_state(&url, dir.path(), "desk") == "reconnecting"
    });
    deliver(&dovecot, "shared", 2, "KB5034441 安装失败 第二封");
    dovecot.up().unwrap();
    wait_until(30, "the second mail", read_log, || {
        filed(&url, dir.path()).iter().any(|s| s.contains("第二封"))
    });
    assert_eq!(server.grants("client_credentials"), 2, "{}", read_log());
    let log_text = read_log();
    assert!(!log_text.contains("testtoken-"), "a token reached the log");
    stop(daemon);

    // Doctor passes on the good setup…
    let doctor = |secret: &str| {
        Command::new(env!("CARGO_BIN_EXE_casebot"))
            .args(["doctor", "--json"])
            .current_dir(dir.path())
            .env("CASEBOT_DB", &url)
            .env_remove("CASEBOT_CONFIG")
            .env("CASEBOT_TEST_IMAP_USER", "shared")
            .env("CASEBOT_TEST_OAUTH_SECRET", secret)
            .output()
            .unwrap()
    };
    let o = doctor("app-secret");
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // …and a wrong secret fails it with the provider's words.
    let o = doctor("not-the-secret");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let failed: Vec<String> = failed_checks(&o)
        .into_iter()
        .map(|(check, detail)| format!("{check}: {detail}"))
        .collect();
    // The mailbox and SMTP share the sign-in: both fail, in the provider's words.
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed[0].starts_with("mailbox desk"), "{failed:?}");
    assert!(failed[1].starts_with("smtp"), "{failed:?}");
    assert!(
        failed.iter().all(|f| f.contains("invalid_client")),
        "{failed:?}"
    );

    // A mail the server received a day after this machine's now: our clock
    // is behind, and doctor says so (and nothing else).
    deliver(&dovecot, "shared", 3, "时钟");
    let newest = dovecot.maildir("shared").join("new").join("3.oauth");
    let status = Command::new("touch")
        .args(["-d", "+1 day"])
        .arg(&newest)
        .status()
        .unwrap();
    assert!(status.success());
    let o = doctor("app-secret");
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let failed = failed_checks(&o);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "mailbox desk clock");
    assert!(failed[0].1.contains("this clock is behind"), "{failed:?}");
}

/// `casebot mailbox login NAME --json`, approved at the server as the person
/// would; returns once it ended.
fn sign_in(
    dir: &std::path::Path,
    url: &str,
    server: &AuthServer,
    name: &str,
    user: &str,
    env: &[(&str, &str)],
) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_casebot"));
    command
        .args(["mailbox", "login", name, "--json"])
        .current_dir(dir)
        .env("CASEBOT_DB", url)
        .env_remove("CASEBOT_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let shown: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert_eq!(
        shown["verification_uri"],
        "https://login.example.com/device"
    );
    assert!(server.approve(shown["user_code"].as_str().unwrap(), user));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_device_sign_in_runs_until_revoked_and_nothing_is_lost() {
    let server = AuthServer::start(3600).unwrap();
    server.register("casebot-desk", "desk-secret", None);
    server.register("casebot-app", "app-secret", Some("other"));
    let mut dovecot = dovecot(&server);
    let dir = tempfile::tempdir().unwrap();
    let url = store_url(&dir.path().join("dc.db"));
    let device = format!(
        "flow = \"device_code\"\nclient_id = \"casebot-desk\"\nclient_secret_env = \"CASEBOT_TEST_DESK_SECRET\"\ntoken_url = \"{}\"\ndevice_url = \"{}\"\ntoken_key_env = \"CASEBOT_TEST_TOKEN_KEY\"\n",
        server.url("/token"),
        server.url("/devicecode")
    );
    let app = format!(
        "flow = \"client_credentials\"\nclient_id = \"casebot-app\"\nclient_secret_env = \"CASEBOT_TEST_APP_SECRET\"\ntoken_url = \"{}\"\n",
        server.url("/token")
    );
    std::fs::write(
        dir.path().join("config.toml"),
        mailbox("desk", dovecot.port, "CASEBOT_TEST_DESK_USER", &device)
            + &mailbox("other", dovecot.port, "CASEBOT_TEST_OTHER_USER", &app),
    )
    .unwrap();
    let env = [
        ("CASEBOT_TEST_DESK_USER", "person"),
        ("CASEBOT_TEST_OTHER_USER", "other"),
        ("CASEBOT_TEST_DESK_SECRET", "desk-secret"),
        ("CASEBOT_TEST_APP_SECRET", "app-secret"),
        ("CASEBOT_TEST_TOKEN_KEY", TOKEN_KEY),
    ];
    // Without the key the refresh token is not kept in clear text: refused
    // before the person is asked anything.
    let o = Command::new(env!("CARGO_BIN_EXE_casebot"))
        .args(["mailbox", "login", "desk"])
        .current_dir(dir.path())
        .env("CASEBOT_DB", &url)
        .env_remove("CASEBOT_CONFIG")
        .env("CASEBOT_TEST_DESK_SECRET", "desk-secret")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("CASEBOT_TEST_TOKEN_KEY"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        server.grants("urn:ietf:params:oauth:grant-type:device_code"),
        0
    );

    sign_in(dir.path(), &url, &server, "desk", "person", &env);
    deliver(&dovecot, "person", 1, "设备登录 第一封");
    deliver(&dovecot, "other", 2, "另一个邮箱 第一封");
    let log = dir.path().join("serve.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let daemon = serve(dir.path(), &url, &env);
    wait_until(30, "both mailboxes' mail", read_log, || {
        let f = filed(&url, dir.path());
        f.iter().any(|s| s.contains("设备登录 第一封"))
            && f.iter().any(|s| s.contains("另一个邮箱 第一封"))
    });
    assert!(
        server.grants("refresh_token") >= 1,
        "the daemon refreshed the stored sign-in"
    );

    // An administrator revokes the person's sign-in; their token dies with
    // it. The mailbox needs a login; the other goes on; nothing is lost.
    server.revoke_user("person");
    dovecot.down();
    wait_until(40, "the watchers to notice", read_log, || {
        folder_state(&url, dir.path(), "desk") != "idle"
            && folder_state(&url, dir.path(), "other") != "idle"
    });
    deliver(&dovecot, "person", 3, "设备登录 第二封");
    deliver(&dovecot, "other", 4, "另一个邮箱 第二封");
    dovecot.up().unwrap();
    wait_until(
        30,
        "needs_login, and the other mailbox's mail",
        read_log,
        || {
            folder_state(&url, dir.path(), "desk") == "needs_login"
                && filed(&url, dir.path())
                    .iter()
                    .any(|s| s.contains("另一个邮箱 第二封"))
        },
    );
    assert!(
        !filed(&url, dir.path())
            .iter()
            .any(|s| s.contains("设备登录 第二封"))
    );
    let o = casebot_at(&url, dir.path(), &["mailboxes", "--json"]);
    assert!(stdout(&o).contains("sign in again"), "{}", stdout(&o));
    // Doctor names the revoked sign-in, and nothing else.
    let mut doctor = Command::new(env!("CARGO_BIN_EXE_casebot"));
    doctor
        .args(["doctor", "--json"])
        .current_dir(dir.path())
        .env("CASEBOT_DB", &url)
        .env_remove("CASEBOT_CONFIG");
    for (k, v) in env {
        doctor.env(k, v);
    }
    let o = doctor.output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let failed = failed_checks(&o);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "mailbox desk");
    assert!(failed[0].1.contains("casebot mailbox login"), "{failed:?}");

    // Signed in again: the watcher logs in and catches up.
    sign_in(dir.path(), &url, &server, "desk", "person", &env);
    wait_until(30, "the mail that waited", read_log, || {
        filed(&url, dir.path())
            .iter()
            .any(|s| s.contains("设备登录 第二封"))
    });
    assert_eq!(folder_state(&url, dir.path(), "desk"), "idle");
    let log_text = read_log();
    assert!(!log_text.contains("testtoken-"), "a token reached the log");
    stop(daemon);
}
