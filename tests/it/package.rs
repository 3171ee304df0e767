//! The Debian package as an operator installs it. `scripts/test.sh` builds
//! it (`scripts/package.sh`) and names it in `CASEBOT_TEST_DEB`; this test
//! installs it with dpkg into this machine, runs the installed binary as
//! the `casebot` user against the installed config (as the unit does, with
//! the test as its service manager), verifies the unit with
//! `systemd-analyze verify`, then removes the package (the data stays) and
//! purges it (nothing stays).
//!
//! It changes the machine, so it runs only as root and only when the
//! package was built for it; anywhere else it says loudly that it skipped.

use std::path::Path;
use std::process::{Command, Output};

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} does not run: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let o = run(program, args);
    assert!(
        o.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn user_exists(name: &str) -> bool {
    run("getent", &["passwd", name]).status.success()
}

/// The installed binary on the installed config, as the service user.
fn as_service(args: &[&str]) -> Command {
    use std::os::unix::process::CommandExt as _;
    let id = |flag: &str| ok("id", &[flag, "casebot"]).trim().parse::<u32>().unwrap();
    let mut command = Command::new("/usr/bin/casebot");
    command
        .args(["--config", "/etc/casebot/config.toml"])
        .args(args)
        .uid(id("-u"))
        .gid(id("-g"))
        .current_dir("/var/lib/casebot")
        .env_remove("CASEBOT_DB")
        .env_remove("CASEBOT_CONFIG");
    command
}

#[test]
fn the_package_installs_runs_as_a_service_and_purges_clean() {
    if std::env::var_os("CASEBOT_TEST_POSTGRES").is_some() {
        // The package ships SQLite's configuration; the SQLite pass ran it.
        return;
    }
    let Some(deb) = std::env::var_os("CASEBOT_TEST_DEB") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI builds the package: CASEBOT_TEST_DEB must be set"
        );
        eprintln!(
            "WARNING: the package test is skipped: set CASEBOT_TEST_DEB to a .deb from scripts/package.sh (as root)"
        );
        return;
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        eprintln!("WARNING: the package test is skipped: dpkg needs root");
        return;
    }
    let deb = deb.to_string_lossy().into_owned();
    // A run interrupted before its purge left the package behind.
    let _ = run("dpkg", &["--purge", "casebot"]);

    ok("dpkg", &["--install", &deb]);
    // What it installed, where an operator looks for it.
    let binary = Path::new("/usr/bin/casebot");
    let size = std::fs::metadata(binary).unwrap().len();
    assert!(
        size < 64 << 20,
        "the installed binary is {size} bytes: debug info belongs in /usr/lib/debug"
    );
    let conffiles = ok(
        "dpkg-query",
        &["--show", "--showformat=${Conffiles}", "casebot"],
    );
    assert!(
        conffiles.contains("/etc/casebot/config.toml"),
        "{conffiles}"
    );
    for path in [
        "/usr/share/casebot/rules/30-cbs.toml",
        "/usr/share/casebot/templates/zh-CN",
        "/usr/share/man/man1/casebot.1.gz",
        "/usr/share/bash-completion/completions/casebot",
        "/usr/lib/systemd/system/casebot.service",
        "/usr/share/doc/casebot/README.md",
    ] {
        assert!(Path::new(path).exists(), "{path} missing");
    }
    assert!(user_exists("casebot"), "the casebot system user");
    let state = ok("stat", &["--format=%U:%G %a", "/var/lib/casebot"]);
    assert_eq!(state.trim(), "casebot:casebot 750");
    let secrets = ok("stat", &["--format=%U:%G %a", "/etc/casebot/env"]);
    assert_eq!(secrets.trim(), "root:casebot 640");

    // The unit, as systemd reads it.
    let verify = run(
        "systemd-analyze",
        &["verify", "/usr/lib/systemd/system/casebot.service"],
    );
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "systemd-analyze verify: {said}");
    assert!(!said.contains("casebot.service:"), "{said}");

    // The installed binary on the installed config, as the service user,
    // the way the unit starts it.
    for check in [&["rules", "check"][..], &["templates", "check"][..]] {
        let o = as_service(check).output().unwrap();
        assert!(
            o.status.success(),
            "{check:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    serve_once_as_the_unit_would();
    assert!(Path::new("/var/lib/casebot/casebot.db").exists());

    // remove: the program goes, the store and the configuration stay.
    ok("dpkg", &["--remove", "casebot"]);
    assert!(!binary.exists());
    assert!(Path::new("/var/lib/casebot/casebot.db").exists());
    assert!(Path::new("/etc/casebot/config.toml").exists());
    // purge: nothing stays.
    ok("dpkg", &["--purge", "casebot"]);
    for gone in ["/var/lib/casebot", "/etc/casebot"] {
        assert!(!Path::new(gone).exists(), "{gone} survived the purge");
    }
    assert!(!user_exists("casebot"), "the user survived the purge");
}

/// `casebot serve` as the casebot user with the unit's working folder:
/// READY=1 on the notify socket, /healthz and /readyz answer, SIGTERM ends
/// it cleanly.
fn serve_once_as_the_unit_would() {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o777)).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let port = super::mailstack::free_port();
    let child = as_service(&["serve"])
        .env("CASEBOT_LISTEN", format!("127.0.0.1:{port}"))
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 64];
    let n = socket.recv(&mut buf).expect("READY=1 within a minute");
    assert_eq!(&buf[..n], b"READY=1\n");
    assert_eq!(super::http_get(port, "/healthz").0, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = super::http_get(port, "/readyz");
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {body}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains('\x1b'), "colour in a service's log: {log:?}");
}
