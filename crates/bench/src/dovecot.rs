//! A throwaway Dovecot for `casebot bench imap` and the integration tests.
//!
//! Its configuration, log, sockets and Maildirs live under a temporary
//! folder; IMAP (no TLS) listens on a free loopback port and LMTP on a Unix
//! socket. Any user name logs in with [`PASSWORD`] and gets an empty Maildir
//! on first use. Run as root, mail is owned by `nobody`; run as anyone else,
//! Dovecot runs rootless as that user (no chroot for its login and anvil
//! processes in either case: this is a server for one benchmark or test on
//! loopback). It is stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const DOVECOT: &str = "/usr/sbin/dovecot";
pub const PASSWORD: &str = "test";

pub struct Dovecot {
    dir: tempfile::TempDir,
    /// IMAP (with STARTTLS when started with a certificate).
    pub port: u16,
    /// IMAP over implicit TLS, when started with a certificate.
    pub tls_port: Option<u16>,
    running: bool,
}

/// A free loopback port (bound, then released for a server to take).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// The name of the user this process runs as.
fn current_user() -> Result<String> {
    command_output("id", &["-un"]).context("Cannot find the name of the current user")
}

/// A command's first output line, if it ran and printed one.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !line.is_empty()).then_some(line)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("Cannot chmod {}", path.display()))
}

impl Dovecot {
    /// Plain IMAP only (no TLS at all).
    pub fn start() -> Result<Dovecot> {
        Self::launch(None, None)
    }

    /// Plain IMAP whose SASL XOAUTH2 and OAUTHBEARER logins are OAuth2
    /// access tokens, each checked by introspection at `introspection_url`
    /// (RFC 7662; the token's `username` must be the login's user); PLAIN
    /// and LOGIN still take the password.
    pub fn start_oauth2(introspection_url: &str) -> Result<Dovecot> {
        Self::launch(None, Some(introspection_url))
    }

    /// IMAP with STARTTLS on `port` and implicit TLS on `tls_port`, with the
    /// PEM certificate chain and key given.
    pub fn start_tls(cert: &Path, key: &Path) -> Result<Dovecot> {
        Self::launch(Some((cert, key)), None)
    }

    fn launch(tls: Option<(&Path, &Path)>, oauth2: Option<&str>) -> Result<Dovecot> {
        if !Path::new(DOVECOT).exists() {
            bail!(
                "{DOVECOT} is missing: install Debian's dovecot-imapd and dovecot-lmtpd (scripts/test.sh does, as root)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("casebot-dovecot-")
            .tempdir()
            .context("Cannot create a folder for Dovecot")?;
        set_mode(dir.path(), 0o755)?;
        let mail = dir.path().join("mail");
        std::fs::create_dir_all(dir.path().join("run"))?;
        std::fs::create_dir_all(dir.path().join("state"))?;
        std::fs::create_dir_all(&mail)?;
        let port = free_port()?;
        let (ssl, tls_port) = match tls {
            None => ("ssl = no\n".to_string(), None),
            Some((cert, key)) => {
                let tls_port = free_port()?;
                (
                    format!(
                        "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n",
                        cert.display(),
                        key.display()
                    ),
                    Some(tls_port),
                )
            }
        };
        let imaps_port = tls_port.unwrap_or(0);
        let d = dir.path().display();
        // As root, mail processes run as `nobody`, which must create each
        // user's Maildir; rootless, everything runs as the caller.
        let (users, owner) = if is_root() {
            set_mode(&mail, 0o777)?;
            (String::new(), "uid=nobody gid=nogroup".to_string())
        } else {
            let me = current_user()?;
            let group = command_output("id", &["-gn"])
                .with_context(|| format!("Cannot find the group of {me}"))?;
            // SAFETY: getuid and getgid have no preconditions.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            (
                format!(
                    "default_internal_user = {me}\ndefault_internal_group = {group}\ndefault_login_user = {me}\n"
                ),
                format!("uid={uid} gid={gid}"),
            )
        };
        // LMTP checks a recipient with a userdb lookup, which a static userdb
        // answers by asking the passdb; an oauth2 passdb cannot be asked
        // without a token, so every user is let in.
        let all_users = if oauth2.is_some() {
            " allow_all_users=yes"
        } else {
            ""
        };
        let (mechanisms, passdb) = match oauth2 {
            None => (
                "plain login",
                format!("passdb {{\n  driver = static\n  args = password={PASSWORD}\n}}\n"),
            ),
            Some(url) => {
                let ext = dir.path().join("oauth2.conf.ext");
                std::fs::write(
                    &ext,
                    format!(
                        "introspection_mode = post\nintrospection_url = {url}\n\
                         username_attribute = username\nactive_attribute = active\nactive_value = true\n"
                    ),
                )?;
                // Postfix asks this passdb too, through the auth socket
                // (`smtpd_sasl_type = dovecot`), so SMTP AUTH takes the same tokens.
                (
                    "plain login xoauth2 oauthbearer",
                    // The password of the static passdb still works for PLAIN
                    // and LOGIN (the benchmark's appender and mbsync); a token
                    // is no password, so XOAUTH2 goes on to the oauth2 passdb.
                    format!(
                        "passdb {{\n  driver = static\n  args = password={PASSWORD}\n}}\n\
                         passdb {{\n  driver = oauth2\n  args = {}\n}}\n\
                         service auth {{\n  unix_listener auth-client {{\n    mode = 0666\n  }}\n}}\n",
                        ext.display()
                    ),
                )
            }
        };
        let config = format!(
            "protocols = imap lmtp\nlisten = 127.0.0.1\nbase_dir = {d}/run\ninstance_name = casebot-dovecot-{port}\n\
             {users}{ssl}disable_plaintext_auth = no\nauth_mechanisms = {mechanisms}\nauth_failure_delay = 0secs\n\
             log_path = {d}/dovecot.log\nfirst_valid_uid = 1\nmail_location = maildir:{d}/mail/%u\nmail_fsync = never\n\
             state_dir = {d}/state\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = {imaps_port}\n  }}\n}}\n\
             service lmtp {{\n  unix_listener lmtp {{\n    mode = 0666\n  }}\n}}\n\
             service anvil {{\n  chroot =\n  unix_listener anvil-auth-penalty {{\n    mode = 0\n  }}\n}}\n\
             {passdb}\
             userdb {{\n  driver = static\n  args = {owner} home={d}/mail/%u{all_users}\n}}\n"
        );
        std::fs::write(dir.path().join("dovecot.conf"), config)?;
        let mut dovecot = Dovecot {
            dir,
            port,
            tls_port,
            running: false,
        };
        dovecot.up()?;
        Ok(dovecot)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    /// Starts (again) on the same port and mail folder.
    pub fn up(&mut self) -> Result<()> {
        let status = Command::new(DOVECOT)
            .arg("-c")
            .arg(self.conf())
            .status()
            .context("Cannot run dovecot")?;
        if !status.success() {
            bail!("dovecot did not start ({status}): {}", self.log());
        }
        self.running = true;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                bail!("dovecot did not listen on {}: {}", self.port, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the server (connections drop, as in an outage).
    pub fn down(&mut self) {
        let _ = Command::new(DOVECOT)
            .arg("-c")
            .arg(self.conf())
            .arg("stop")
            .status();
        self.running = false;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Where Dovecot takes local deliveries (LMTP over a Unix socket).
    pub fn lmtp_socket(&self) -> PathBuf {
        self.dir.path().join("run").join("lmtp")
    }

    /// Dovecot's authentication socket (Postfix's `smtpd_sasl_path`).
    pub fn auth_socket(&self) -> PathBuf {
        self.dir.path().join("run").join("auth-client")
    }

    /// The Maildir of `user` (it exists once the user logged in or got mail).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("mail").join(user)
    }

    /// A folder for the caller's own files next to the server's (it goes
    /// when the server does).
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if self.running {
            self.down();
        }
    }
}
