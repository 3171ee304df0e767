#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test.
# Run from anywhere. Installs what the tests and benchmarks need from Debian
# when missing (as root): ripgrep, the baseline of `casebot bench analyze`.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v rg >/dev/null 2>&1 || need+=(ripgrep)
if ((${#need[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== apt-get install ${need[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null; }
    else
        echo "warning: missing ${need[*]} (run as root to install); the ripgrep baseline is skipped" >&2
    fi
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets
