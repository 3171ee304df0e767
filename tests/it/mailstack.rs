//! Real mail servers for the tests, started on loopback high ports and
//! stopped when their handle drops (also when a test fails).
//!
//! `SmtpSink` is Postfix's smtp-sink: a real SMTP server that accepts
//! everything and dumps each transaction into a file, which the tests parse
//! to check exactly what a client sent. `Dovecot` is an IMAP server with LMTP
//! delivery, and `Postfix` a throwaway Postfix instance that relays mail for
//! example.com and example.cn into that Dovecot, so a reply the desk sends
//! lands in the customer's mailbox. The test script installs all three.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

pub use casebot_bench::dovecot::is_root;

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    casebot_bench::dovecot::free_port().expect("a free loopback port")
}

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The message itself (smtp-sink's own header lines removed).
    pub message: Vec<u8>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.message)
            .expect("a parseable message")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.message);
        let mut value: Option<String> = None;
        for line in text.split("\r\n").flat_map(|l| l.split('\n')) {
            if line.is_empty() {
                break;
            }
            if let Some(v) = value.as_mut()
                && (line.starts_with(' ') || line.starts_with('\t'))
            {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_string());
            }
        }
        value
    }
}

/// Postfix's smtp-sink on a loopback port.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dump: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start(extra: &[&str]) -> SmtpSink {
        Self::start_on(free_port(), extra)
    }

    /// Starts on `port` (a restart after a simulated outage) with extra
    /// smtp-sink options (`-w 4` delays the answer to DATA).
    pub fn start_on(port: u16, extra: &[&str]) -> SmtpSink {
        assert!(
            Path::new(SMTP_SINK).exists(),
            "{SMTP_SINK} is missing: run scripts/test.sh (it installs postfix)"
        );
        let dump = tempfile::tempdir().expect("a dump folder");
        // smtp-sink drops root privileges to `nobody`, who must write here.
        set_mode(dump.path(), 0o777);
        let mut cmd = Command::new(SMTP_SINK);
        if is_root() {
            cmd.args(["-u", "nobody"]);
        }
        cmd.args(["-h", "sink.example.net", "-d"])
            .arg(format!("{}/msg.", dump.path().display()))
            .args(extra)
            .arg(format!("127.0.0.1:{port}"))
            .arg("64")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("smtp-sink starts");
        let sink = SmtpSink { child, port, dump };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "smtp-sink did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sink
    }

    /// Every complete message received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dump.path())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files.into_iter().filter_map(|f| parse_dump(&f)).collect()
    }

    /// Waits up to `secs` for at least `n` messages.
    pub fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A dump file: smtp-sink's X-* lines and its three-line Received header,
/// then the message. A transaction cut short has no message: `None`.
fn parse_dump(path: &Path) -> Option<Received> {
    let bytes = std::fs::read(path).ok()?;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut offset = 0;
    let mut lines = bytes.split_inclusive(|b| *b == b'\n');
    let mut in_received = 0;
    for line in lines.by_ref() {
        let text = String::from_utf8_lossy(line);
        let t = text.trim_end();
        offset += line.len();
        if let Some(v) = t.strip_prefix("X-Mail-Args: ") {
            mail_from = v.to_string();
        } else if let Some(v) = t.strip_prefix("X-Rcpt-Args: ") {
            rcpt_to.push(v.to_string());
        } else if t.starts_with("Received: ") {
            in_received = 1;
        } else if in_received > 0 {
            in_received += 1;
            if in_received == 3 {
                break;
            }
        }
    }
    let message = bytes[offset.min(bytes.len())..].to_vec();
    let complete = in_received == 3
        && message
            .windows(11)
            .any(|w| w.eq_ignore_ascii_case(b"message-id:"));
    complete.then_some(Received {
        message,
        mail_from,
        rcpt_to,
    })
}

/// The product's throwaway Dovecot (IMAP on a loopback port, LMTP on a
/// socket, see `casebot_bench::dovecot`) with the tests' helpers on top.
/// Any user logs in with the password `test`; each test uses its own user
/// name, so it starts with an empty mailbox.
pub struct Dovecot {
    server: casebot_bench::dovecot::Dovecot,
    pub port: u16,
    pub tls_port: Option<u16>,
}

pub const DOVECOT_PASSWORD: &str = casebot_bench::dovecot::PASSWORD;

impl Dovecot {
    pub fn start() -> Dovecot {
        let server = casebot_bench::dovecot::Dovecot::start()
            .unwrap_or_else(|e| panic!("{e:#} (run scripts/test.sh)"));
        let port = server.port;
        Dovecot {
            server,
            port,
            tls_port: None,
        }
    }

    /// With STARTTLS on `port` and implicit TLS on `tls_port`.
    pub fn start_tls(chain: &Path, key: &Path) -> Dovecot {
        let server = casebot_bench::dovecot::Dovecot::start_tls(chain, key)
            .unwrap_or_else(|e| panic!("{e:#} (run scripts/test.sh)"));
        let port = server.port;
        let tls_port = server.tls_port;
        Dovecot {
            server,
            port,
            tls_port,
        }
    }

    /// Starts (again) on the same port and mail folder.
    pub fn up(&mut self) {
        self.server.up().unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Stops the server (connections drop, as in an outage).
    pub fn down(&mut self) {
        self.server.down();
    }

    /// Where Dovecot takes local deliveries (LMTP over a Unix socket).
    pub fn lmtp_socket(&self) -> PathBuf {
        self.server.lmtp_socket()
    }

    /// Delivers a message straight into a user's Maildir (as a local
    /// delivery agent would, also while the server is down).
    pub fn deliver_file(&self, user: &str, name: &str, message: &[u8]) {
        self.deliver_to(user, "INBOX", name, message)
    }

    /// Like [`Self::deliver_file`], into `folder` (made if missing; Maildir++:
    /// a folder is a `.name` Maildir inside the user's).
    pub fn deliver_to(&self, user: &str, folder: &str, name: &str, message: &[u8]) {
        let root = self.server.maildir(user);
        let maildir = match folder {
            "INBOX" => root,
            folder => root.join(format!(".{folder}")),
        };
        let new = maildir.join("new");
        std::fs::create_dir_all(&new).unwrap();
        for sub in ["cur", "tmp"] {
            std::fs::create_dir_all(new.parent().unwrap().join(sub)).unwrap();
        }
        let tmp = new.parent().unwrap().join("tmp").join(name);
        std::fs::write(&tmp, message).unwrap();
        std::fs::rename(&tmp, new.join(name)).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(new.parent().unwrap())
            .status();
    }

    /// A logged-in session for `user`.
    pub async fn session(&self, user: &str) -> async_imap::Session<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to dovecot");
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        client
            .login(user, DOVECOT_PASSWORD)
            .await
            .map_err(|(e, _)| e)
            .expect("login")
    }

    /// APPENDs `message` to `folder` of `user` (creating the folder).
    pub async fn append(&self, user: &str, folder: &str, message: &[u8]) {
        let mut s = self.session(user).await;
        let _ = s.create(folder).await;
        s.append(folder, None, None, message).await.expect("APPEND");
        let _ = s.logout().await;
    }

    /// Every message of `folder` with its flags, by UID.
    pub async fn messages(&self, user: &str, folder: &str) -> Vec<(u32, Vec<String>, Vec<u8>)> {
        use futures_util::TryStreamExt;
        let mut s = self.session(user).await;
        if s.select(folder).await.is_err() {
            return Vec::new();
        }
        let fetched: Vec<_> = s
            .uid_fetch("1:*", "(UID FLAGS BODY.PEEK[])")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let out = fetched
            .iter()
            .filter_map(|f| {
                let flags = f.flags().map(|fl| format!("{fl:?}")).collect();
                Some((f.uid?, flags, f.body()?.to_vec()))
            })
            .collect();
        let _ = s.logout().await;
        out
    }
}

/// A throwaway Postfix: its own configuration, queue and log under a
/// temporary folder, SMTP on a loopback port, and every mail for example.com
/// or example.cn handed to a `Dovecot` over LMTP. Stopped on drop.
pub struct Postfix {
    dir: tempfile::TempDir,
    pub port: u16,
    master: Child,
}

impl Postfix {
    pub fn start(dovecot: &Dovecot) -> Postfix {
        Self::start_with(&dovecot.lmtp_socket(), "")
    }

    /// Delivering to the LMTP socket `lmtp`, with `extra` lines in main.cf
    /// (SMTP AUTH through a Dovecot's auth socket, say).
    pub fn start_with(lmtp: &Path, extra: &str) -> Postfix {
        assert!(
            Path::new("/usr/sbin/postfix").exists(),
            "postfix is missing: run scripts/test.sh (it installs postfix)"
        );
        assert!(
            is_root(),
            "the Postfix tests start Postfix as root (as CI does)"
        );
        let dir = tempfile::tempdir().expect("a Postfix folder");
        set_mode(dir.path(), 0o755);
        let d = dir.path().display();
        std::fs::create_dir_all(dir.path().join("queue")).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let _ = Command::new("chown")
            .arg("postfix")
            .arg(dir.path().join("data"))
            .status();
        let port = free_port();
        let lmtp = lmtp.display();
        // Short retry times: a delivery deferred while Dovecot restarts is
        // tried again within seconds, not minutes.
        let main_cf = format!(
            "compatibility_level = 3.6\nqueue_directory = {d}/queue\ndata_directory = {d}/data\n\
             myhostname = mx.example.net\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n\
             mydestination =\nrelay_domains = example.com, example.cn\n\
             transport_maps = inline:{{ example.com=lmtp:unix:{lmtp}, example.cn=lmtp:unix:{lmtp} }}\n\
             mynetworks = 127.0.0.0/8\nsmtpd_relay_restrictions = permit_mynetworks, reject\n\
             alias_maps =\nalias_database =\nlocal_recipient_maps =\n\
             queue_run_delay = 1s\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\n\
             maillog_file = /dev/stdout\n{extra}"
        );
        std::fs::write(dir.path().join("main.cf"), main_cf).unwrap();
        // Debian's master.cf with SMTP on our port and no chroot anywhere
        // (the queue folder has none of the files a chroot would need).
        let master_cf = std::fs::read_to_string("/etc/postfix/master.cf").expect("master.cf");
        let master_cf: String = master_cf
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if line.starts_with(|c: char| c.is_ascii_lowercase()) && fields.len() >= 8 {
                    if fields[0] == "smtp" && fields[1] == "inet" {
                        return format!("127.0.0.1:{port} inet n - n - - smtpd\n");
                    }
                    let mut fields = fields;
                    fields[4] = "n";
                    return fields.join(" ") + "\n";
                }
                format!("{line}\n")
            })
            .collect();
        std::fs::write(dir.path().join("master.cf"), master_cf).unwrap();
        let status = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(dir.path())
            .arg("set-permissions")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("postfix runs");
        assert!(status.success(), "postfix set-permissions failed");
        let master = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(dir.path())
            .arg("start-fg")
            .stdout(std::fs::File::create(dir.path().join("postfix.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("postfix starts");
        let postfix = Postfix { dir, port, master };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "postfix did not listen on {port}: {}",
                postfix.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        postfix
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    /// Submits `message` over SMTP (as a customer's mail server would).
    pub fn submit(&self, from: &str, to: &[&str], message: &[u8]) {
        use lettre::Transport;
        let envelope = lettre::address::Envelope::new(
            Some(from.parse().expect("a sender address")),
            to.iter()
                .map(|a| a.parse().expect("a recipient address"))
                .collect(),
        )
        .expect("an envelope");
        lettre::SmtpTransport::builder_dangerous("127.0.0.1")
            .port(self.port)
            .build()
            .send_raw(&envelope, message)
            .unwrap_or_else(|e| panic!("postfix refused the mail: {e}\n{}", self.log()));
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(self.dir.path())
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.master.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

/// A company CA and a server certificate it signed for 127.0.0.1 and
/// localhost, made with openssl in a temporary folder.
pub struct TestCa {
    _dir: tempfile::TempDir,
    /// The CA certificate (what `ca_file` trusts).
    pub ca: PathBuf,
    /// The server certificate followed by the CA's.
    pub chain: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("a CA folder");
        set_mode(dir.path(), 0o755);
        let p = |name: &str| dir.path().join(name);
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Example Company CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            p("server.ext"),
            "subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\n\
             keyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        let chain = [
            std::fs::read(p("server.pem")).unwrap(),
            std::fs::read(p("ca.pem")).unwrap(),
        ]
        .concat();
        std::fs::write(p("chain.pem"), chain).unwrap();
        for f in ["chain.pem", "server.key", "ca.pem"] {
            set_mode(&p(f), 0o644);
        }
        TestCa {
            ca: p("ca.pem"),
            chain: p("chain.pem"),
            key: p("server.key"),
            _dir: dir,
        }
    }
}
