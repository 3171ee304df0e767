#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test.
# Run from anywhere. Installs what the tests and benchmarks need from Debian
# when missing (as root): ripgrep (the baseline of `casebot bench analyze`),
# postfix (its smtp-sink is the SMTP server the sending tests talk to) and
# dovecot-imapd (the IMAP server the watcher tests start), chromium and
# chromium-driver (the browser test drives the web desk in them) with a
# Chinese font, postgresql
# (the integration tests run a second time on PostgreSQL), prometheus (its
# promtool checks /metrics).
# As root it also builds the Debian package (installing cargo-deb when
# missing), which a test installs, runs, removes and purges.
# Each test starts its own mail servers on loopback; this script starts one
# throwaway PostgreSQL cluster (scripts/pg-cluster.sh) for the second run and
# removes it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v rg >/dev/null 2>&1 || need+=(ripgrep)
[ -x /usr/sbin/smtp-sink ] || need+=(postfix)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
[ -x /usr/lib/dovecot/lmtp ] || need+=(dovecot-lmtpd)
command -v mbsync >/dev/null 2>&1 || need+=(isync)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# A Chinese font, so the browser test's screenshots of the Chinese desk
# show characters (chromium has none of its own).
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if ((${#need[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== apt-get install ${need[*]}"
        # Postfix asks how to configure itself; the tests run their own.
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        install() {
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
        }
        install || { apt-get update -q >/dev/null && install; }
    elif [ ! -x /usr/sbin/smtp-sink ] || [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/bin/chromedriver ] \
        || ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
        echo "error: missing ${need[*]}: run this script as root once to install them" >&2
        exit 1
    else
        echo "warning: missing ${need[*]} (run as root to install); the ripgrep baseline is skipped" >&2
    fi
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --workspace --all-targets --features bench -- -D warnings"
cargo clippy --workspace --all-targets --features bench --quiet -- -D warnings
# The shipped binary, without the benchmarks, is linted on its own too.
cargo clippy --bin casebot --quiet -- -D warnings
echo "== the pure crates: no async runtime, database, network client or web server"
for crate in casebot-core casebot-analysis casebot-drafting; do
    if cargo tree -p "$crate" -e normal --prefix none | grep -E '^(tokio|sqlx|reqwest|axum|hyper|lettre) '; then
        echo "error: $crate depends on the crates above" >&2
        exit 1
    fi
done
if [ "$(id -u)" = 0 ]; then
    echo "== the Debian package (scripts/package.sh), for the package test"
    CASEBOT_TEST_DEB="$PWD/$(bash scripts/package.sh | tail -n 1)"
    export CASEBOT_TEST_DEB
else
    echo "warning: not root: the package test is skipped (dpkg installs into this machine)" >&2
fi

echo "== cargo test (SQLite)"
# With the benchmarks: the tests run `casebot bench …` and use their servers.
# Four at a time on two cores: most tests wait on the servers they started
# (Dovecot, Postfix, a daemon), not on the CPU.
cargo test --workspace --all-targets --features bench -- --test-threads 4

echo "== cargo test --test it (PostgreSQL)"
pgdir=$(mktemp -d /tmp/casebot-pg.XXXXXX)
chmod 755 "$pgdir"
cluster="$pgdir/c1"
trap 'bash scripts/pg-cluster.sh stop "$cluster"; rm -rf "$pgdir"' EXIT
# A random port may be taken by another process: up to three tries.
pgurl=""
for attempt in 1 2 3; do
    cluster="$pgdir/c$attempt"
    if pgurl=$(bash scripts/pg-cluster.sh start "$cluster" $((40000 + RANDOM % 20000))); then
        break
    fi
    echo "PostgreSQL did not start (try $attempt): $(tail -n 3 "$cluster/server.log" 2>/dev/null)" >&2
    bash scripts/pg-cluster.sh stop "$cluster"
    pgurl=""
done
[ -n "$pgurl" ] || { echo "error: PostgreSQL would not start" >&2; exit 1; }
CASEBOT_TEST_POSTGRES=$pgurl cargo test --features bench --test it -- --test-threads 4
