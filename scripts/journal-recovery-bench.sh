#!/usr/bin/env bash
# Journal recovery after kill -9: fill N durable records, keep appending, kill -9
# mid-append, then time open (WAL recovery) + full chain verification.
# Usage: scripts/journal-recovery-bench.sh [N=100000] [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
profile=(--release)
[ "${2:-}" = "--debug" ] && profile=()
if [ ${#profile[@]} -gt 0 ]; then
  cargo build -q --release -p kf-audit --example recovery
  bin="${CARGO_TARGET_DIR:-target}/release/examples/recovery"
else
  bin="$(scripts/build-bins.sh)/examples/recovery"
fi
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$bin" fill "$dir/journal.db" "$n" > "$dir/fill.log" &
pid=$!
start=$(date +%s)
# Killed once it appends past N (mid-append), within an hour at most.
deadline=$((start + 3600))
until grep -q "appending past" "$dir/fill.log" 2>/dev/null; do
  sleep 0.2
  kill -0 "$pid" 2>/dev/null || { echo "filler died" >&2; exit 1; }
  [ "$(date +%s)" -lt "$deadline" ] || { kill -9 "$pid"; echo "filler still filling after an hour" >&2; exit 1; }
done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
echo "filled $n records in $(( $(date +%s) - start )) s, killed with -9 mid-append"
"$bin" open "$dir/journal.db"
