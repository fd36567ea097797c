#!/usr/bin/env bash
# Benchmark smoke runs for CI (scripts/test.sh): every criterion benchmark of
# kf-bench runs once in criterion's test mode, and the yubikit peer
# comparison runs with tiny counts. Checks that the benchmarks work, not how
# fast they are. Real runs: see the commands in crates/kf-bench (README).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n--> %s\n' "$*"; }

PYTHON="${PYTHON:-python3}"
export PYTHON

step "yubikit peer (PyPI yubikey-manager)"
if ! "$PYTHON" -c 'import yubikit.core.smartcard.scp' 2>/dev/null; then
  "$PYTHON" -m pip install --quiet --disable-pip-version-check yubikey-manager
fi
"$PYTHON" -c 'import yubikit.core.smartcard.scp'

step "criterion benches, test mode (each benchmark runs once)"
cargo bench -p kf-bench -- --test

step "yubikit peer script alone, tiny counts"
out="$("$PYTHON" bench/yubikit_scp03_bench.py --rounds 2 --batch 3)"
"$PYTHON" -c 'import json, sys
r = json.loads(sys.argv[1])["results"]
assert len(r) == 6 and all(x["median_ns"] > 0 for x in r), r' "$out"

step "peer-compare, tiny counts"
cargo run --release -p kf-bench --bin peer-compare -- --rounds 2 --batch 3

step "benchmark smoke runs passed"
