#!/usr/bin/env bash
# Benchmark smoke runs for CI (scripts/test.sh): every criterion benchmark of
# kf-bench runs once in criterion's test mode, and the yubikit peer
# comparison runs with tiny counts. Checks that the benchmarks work, not how
# fast they are. Real runs: see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n--> %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }

PYTHON="${PYTHON:-python3}"
export PYTHON

step "yubikit peer (PyPI yubikey-manager)"
if ! "$PYTHON" -c 'import yubikit.core.smartcard.scp' 2>/dev/null; then
  "$PYTHON" -m pip install --quiet --disable-pip-version-check yubikey-manager
fi
"$PYTHON" -c 'import yubikit.core.smartcard.scp'

# `cargo test --benches` runs criterion benches in test mode (each benchmark
# once) with the test profile, reusing what `cargo test` already built
# instead of compiling the dependency tree again with the release profile.
step "criterion benches, test mode (each benchmark runs once)"
cargo test -p kf-bench --benches

step "yubikit peer script alone, tiny counts"
out="$("$PYTHON" bench/yubikit_scp03_bench.py --rounds 2 --batch 3)"
"$PYTHON" -c 'import json, sys
r = json.loads(sys.argv[1])["results"]
assert len(r) == 6 and all(x["median_ns"] > 0 for x in r), r' "$out"

step "peer-compare, tiny counts"
cargo run -p kf-bench --bin peer-compare -- --rounds 2 --batch 3

step "kf-station bench (end to end vs floor), tiny counts"
cargo run -q -p kf-station --features pcsc -- bench --fobs 2 --transport both --json > /dev/null

step "kf-klms issuance over mTLS, tiny counts"
cargo run -q -p kf-bench --bin klms-bench -- --concurrency 1,8 --requests 16

step "journal durable appends and recovery after kill -9, tiny counts"
cargo run -q -p kf-audit --example append_rate -- 50
scripts/journal-recovery-bench.sh 200 --debug

step "benchmark smoke runs passed"
