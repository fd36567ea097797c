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
bin="$(scripts/build-bins.sh)"

step "criterion benches, test mode (each benchmark runs once)"
cargo test -q --workspace --all-features --benches

step "peer-compare (runs the yubikit peer script), tiny counts"
"$bin/peer-compare" --rounds 2 --batch 3

step "kf-station bench (end to end vs floor), tiny counts"
"$bin/kf-station" bench --fobs 2 --transport both --json > /dev/null
step "kf-station bench: two vpcd readers at once, modeled link; and the link model"
"$bin/kf-station" bench --transport vpcd --readers 1,2 --fobs 2 --link 848k --level 33
"$bin/kf-station" bench --link-model --level 33

step "kf-klms issuance over mTLS, tiny counts"
"$bin/kf-klms" bench --concurrency 1,8 --requests 16
"$bin/kf-klms" bench --audit --concurrency 1,8 --requests 16

step "sks serve under a connection attack, tiny counts"
"$bin/sks" bench-limits --connections 200 --clients 2 --seconds 1

step "journal durable appends and recovery after kill -9, tiny counts"
"$bin/examples/append_rate" 50
scripts/journal-recovery-bench.sh 200 --debug

step "benchmark smoke runs passed"
