#!/usr/bin/env bash
# Builds the Debian package: target/debian/casebot_<version>-1_<arch>.deb.
# Installs cargo-deb first when it is missing (`cargo install`, built with
# this toolchain). Prints the package's path as its last line.
#
# The package holds the binary (debug info split into /usr/lib/debug, so
# backtraces keep their line numbers), /etc/casebot/config.toml (a conffile:
# the repository's config.toml with the paths of an installed system), the
# rules and templates under /usr/share/casebot, the systemd unit, the man
# page and shell completions.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "== cargo install cargo-deb" >&2
    cargo install cargo-deb --version '^3.8' --locked --no-default-features --features gzip --quiet
fi

echo "== cargo build --release --bin casebot" >&2
cargo build --release --locked --bin casebot --quiet

out=target/package
rm -rf "$out" && mkdir -p "$out"
# config.toml with an installed system's paths. Each replacement must
# happen: a renamed key fails the build instead of shipping a wrong path.
sed -e 's|^url = "sqlite://data/casebot.db"$|url = "sqlite:///var/lib/casebot/casebot.db"|' \
    -e 's|^path = "mail"$|path = "/var/lib/casebot/mail"|' \
    -e 's|^rules_dir = "rules"$|rules_dir = "/usr/share/casebot/rules"|' \
    -e 's|^templates_dir = "templates"$|templates_dir = "/usr/share/casebot/templates"|' \
    -e 's|^dir = "outbox"$|dir = "/var/lib/casebot/outbox"|' \
    config.toml > "$out/config.toml"
for want in 'sqlite:///var/lib/casebot/casebot.db' 'path = "/var/lib/casebot/mail"' \
    '/usr/share/casebot/rules' '/usr/share/casebot/templates' 'dir = "/var/lib/casebot/outbox"'; do
    grep -qF "$want" "$out/config.toml" || { echo "error: config.toml: cannot set $want" >&2; exit 1; }
done
bin=target/release/casebot
"$bin" man | gzip -9n > "$out/casebot.1.gz"
"$bin" completions bash > "$out/casebot.bash"
"$bin" completions zsh > "$out/_casebot"
"$bin" completions fish > "$out/casebot.fish"

cargo deb --no-build --locked --quiet >&2
ls -t target/debian/casebot_*.deb | head -n 1
