#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, one after another:
#   fuzz/run.sh [SECONDS] [TARGET...]        (default 600 s, every target)
# Seeds the corpora first (seed.py). A crash stops its target and leaves the
# input in fuzz/artifacts/TARGET/; each run's last lines go to fuzz/logs/.
# cargo-fuzz wants a nightly compiler; RUSTC_BOOTSTRAP lets the machine's
# stable one accept the sanitizer flags.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
export RUSTC_BOOTSTRAP=1
# As the recorded runs: the targets keep their rules and parser in statics.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
python3 seed.py
cargo fuzz build -O
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
mkdir -p logs
for t in "${targets[@]}"; do
    echo "== $t: $secs s"
    status=0
    cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=4096 -print_final_stats=1 >"logs/$t.log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^#[0-9]+.*DONE|^SUMMARY|panicked at' "logs/$t.log" | tail -6 || true
    echo "   corpus: $(ls "corpus/$t" | wc -l) inputs; exit $status"
done
