#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test.
# Run from anywhere; needs only cargo today (later issues add Dovecot and
# Postfix, which this script will install with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets
